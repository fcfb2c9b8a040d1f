"""A market-data diamond: feed handler -> normaliser -> two strategies -> risk.

::

    feed --> normalise --+--> momentum  --> md.momentum (signals)
                         +--> meanrev   --> md.meanrev  (signals)
                         +--> risk, gated after momentum and meanrev

Every stage is its own process; each arrow is a shared-memory ring. The two
strategies read the normalised quotes independently. Risk reads the same
quotes, but the ring's dependency barrier lets it see a quote only once both
strategies have processed it, so by then their signals for that quote are
already in their rings: risk folds them into net positions and checks that
it never got ahead of either strategy. End-to-end latency is measured from
the ``ts_ns`` the feed handler stamps on each raw quote to risk's receive.

Run it: ``python examples/market_diamond.py [--quotes N] [--batch N]``
(rings go to ``$RINGCAST_DIR``, default ``/dev/shm/ringcast``).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from typing import Any

import numpy as np

import ringcast

SYMBOLS = 8
RAW = np.dtype(
    [
        ("seq", "<u8"),
        ("ts_ns", "<u8"),
        ("symbol", "<u4"),
        ("bid_ticks", "<i8"),
        ("ask_ticks", "<i8"),
    ]
)
QUOTE = np.dtype(
    [("seq", "<u8"), ("ts_ns", "<u8"), ("symbol", "<u4"), ("bid", "<f8"), ("ask", "<f8")]
)
# A signal; side 0 marks "processed every quote up to seq" (one per batch),
# so that risk can prove it is never ahead of a strategy.
SIGNAL = np.dtype([("seq", "<u8"), ("symbol", "<u4"), ("side", "<i1"), ("qty", "<i4")])
TICK = 0.01


def feed(quotes: int, batch: int, rate: float):
    """The feed handler: a random walk of bid/ask ticks for 8 symbols, in
    batches, at ``rate`` quotes per second (0: flat out)."""
    rng = np.random.default_rng(7)
    mid = np.full(SYMBOLS, 10_000, dtype=np.int64)
    t0 = time.monotonic()
    for start in range(0, quotes, batch):
        if rate:
            ahead = t0 + start / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        n = min(batch, quotes - start)
        raw = np.empty(n, RAW)
        raw["seq"] = np.arange(start, start + n)
        raw["symbol"] = rng.integers(0, SYMBOLS, n)
        steps = rng.integers(-2, 3, n)
        for s in range(SYMBOLS):  # walk each symbol's mid through its quotes
            mask = raw["symbol"] == s
            walk = mid[s] + np.cumsum(steps[mask])
            raw["bid_ticks"][mask] = walk - 1
            raw["ask_ticks"][mask] = walk + 1
            if walk.size:
                mid[s] = walk[-1]
        raw["ts_ns"] = time.monotonic_ns()
        yield raw


def normalise(raw: np.ndarray) -> np.ndarray:
    """Ticks to prices, and a sanity filter (crossed quotes are dropped)."""
    ok = raw["bid_ticks"] < raw["ask_ticks"]
    out = np.empty(int(ok.sum()), QUOTE)
    for field in ("seq", "ts_ns", "symbol"):
        out[field] = raw[field][ok]
    out["bid"] = raw["bid_ticks"][ok] * TICK
    out["ask"] = raw["ask_ticks"][ok] * TICK
    return out


def per_symbol(ctx: ringcast.StageContext) -> np.ndarray:
    """A strategy's state: one price per symbol (NaN: none yet)."""
    return np.full(SYMBOLS, np.nan)


def signals(quotes: np.ndarray, side: np.ndarray) -> np.ndarray:
    """The signals of one batch, followed by its progress marker."""
    hit = side != 0
    out = np.zeros(int(hit.sum()) + 1, SIGNAL)
    out["seq"][:-1] = quotes["seq"][hit]
    out["symbol"][:-1] = quotes["symbol"][hit]
    out["side"][:-1] = side[hit]
    out["qty"][:-1] = 100
    out["seq"][-1] = quotes["seq"][-1]
    return out


def moves(quotes: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Each quote's mid minus the previous mid of its symbol (updates ``last``)."""
    mid = (quotes["bid"] + quotes["ask"]) / 2
    prev = np.empty_like(mid)
    for s in range(SYMBOLS):
        mask = quotes["symbol"] == s
        m = mid[mask]
        if m.size:
            prev[mask] = np.concatenate(([last[s]], m[:-1]))
            last[s] = m[-1]
    return np.nan_to_num(mid - prev)


def momentum(quotes: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Buys a rise of at least two ticks, sells a fall."""
    d = moves(quotes, last)
    return signals(quotes, np.where(d >= 2 * TICK, 1, np.where(d <= -2 * TICK, -1, 0)))


def meanrev(quotes: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Fades a mid more than three ticks away from its symbol's mean over the
    previous batch (``means``, updated)."""
    mid = (quotes["bid"] + quotes["ask"]) / 2
    away = mid - means[quotes["symbol"]]
    side = np.where(away > 3 * TICK, -1, np.where(away < -3 * TICK, 1, 0))
    for s in range(SYMBOLS):
        m = mid[quotes["symbol"] == s]
        if m.size:
            means[s] = m.mean()
    return signals(quotes, side)


class Risk:
    """Net positions from both strategies' signals, a position limit, and
    end-to-end latency; checks for every batch that both strategies had
    processed it (their progress markers are already there)."""

    LIMIT = 5_000

    def __init__(self, ctx: ringcast.StageContext) -> None:
        self.strategies = {name: ctx.attach(name) for name in ("momentum", "meanrev")}
        self.progress = dict.fromkeys(self.strategies, -1)
        self.signals = dict.fromkeys(self.strategies, 0)
        self.position = np.zeros(SYMBOLS, np.int64)
        self.breaches = 0
        self.quotes = 0
        self.ahead = 0
        self.latency = ringcast.LatencyHistogram()

    def on_quotes(self, quotes: np.ndarray) -> None:
        now = time.monotonic_ns()
        for ts in quotes["ts_ns"].tolist():
            self.latency.record(now - ts)
        self.quotes += len(quotes)
        hi = int(quotes["seq"][-1])
        for name, sub in self.strategies.items():
            while self.progress[name] < hi:
                got = sub.recv_batch(4096, timeout=0)  # never waits: it must be there
                if len(got) == 0:
                    break
                trades = got[got["side"] != 0]
                np.add.at(self.position, trades["symbol"], trades["side"] * trades["qty"])
                self.signals[name] += len(trades)
                markers = got["seq"][got["side"] == 0]
                if markers.size:
                    self.progress[name] = int(markers.max())
            self.ahead += self.progress[name] < hi
        self.breaches += int(np.count_nonzero(np.abs(self.position) > self.LIMIT))

    def summary(self) -> dict[str, Any]:
        h = self.latency
        return {
            "quotes": self.quotes,
            "signals": dict(self.signals),
            "position": self.position.tolist(),
            "breaches": self.breaches,
            "ahead": self.ahead,
            "latency_us": {p: h.value_at_percentile(p) / 1e3 for p in (50.0, 99.0, 99.9, 100.0)},
        }


def risk(quotes: np.ndarray, state: Risk) -> None:
    state.on_quotes(quotes)


def risk_summary(state: Risk) -> dict[str, Any]:
    return state.summary()


def build(quotes: int, batch: int, rate: float) -> ringcast.Diamond:
    Stage = ringcast.Stage
    return ringcast.Diamond(
        "md",
        source=[
            Stage(functools.partial(feed, quotes, batch, rate), name="feed", dtype=RAW),
            Stage(normalise, dtype=QUOTE, input_dtype=RAW, batch=batch),
        ],
        branches=[
            Stage(s, dtype=SIGNAL, input_dtype=QUOTE, batch=batch, setup=per_symbol)
            for s in (momentum, meanrev)
        ],
        then=Stage(risk, input_dtype=QUOTE, batch=batch, setup=Risk, finish=risk_summary),
        capacity=1 << 14,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rate", type=float, default=200_000, help="quotes/s; 0: flat out")
    args = parser.parse_args(argv)
    diamond = build(args.quotes, args.batch, args.rate)
    t0 = time.perf_counter()
    with diamond:
        diamond.join(timeout=120)
    elapsed = time.perf_counter() - t0
    r = diamond.results["risk"]
    print(f"{args.quotes:,} quotes through 5 processes in {elapsed:.2f}s")
    for s in diamond.stages:
        cells = [("received", s.received), ("lost", s.lost), ("published", s.published)]
        text = "  ".join(f"{k} {'-' if v is None else f'{v:,}'}" for k, v in cells)
        print(f"  {s.name:<10} {s.role:<6} {text}")
    lat = ", ".join(f"p{p:g} {v:,.0f}" for p, v in r["latency_us"].items())
    print(
        f"risk saw {r['quotes']:,} quotes, signals {r['signals']}, net positions "
        f"{r['position']}, limit breaches {r['breaches']}"
    )
    print(f"feed -> risk latency (us): {lat}")
    if r["ahead"]:
        print(f"ERROR: risk was ahead of a strategy {r['ahead']} times")
        return 1
    print("risk was never ahead of both strategies")
    return 0


if __name__ == "__main__":
    sys.exit(main())
