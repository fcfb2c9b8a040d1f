"""``ringcast demo``: one feed handler, N strategies, one ring, real processes.

The feed handler publishes synthetic quotes at a fixed rate, each carrying its
publish time (CLOCK_MONOTONIC, which all processes on a host share). Every
strategy checks ordering and a per-quote checksum, and measures one-way
latency as receive time minus publish time.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._api import Publisher, Subscriber
from .errors import RingClosed

QUOTE = np.dtype(
    [
        ("seq", "<u8"),
        ("ts_ns", "<u8"),
        ("symbol", "S8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("bid_size", "<u4"),
        ("ask_size", "<u4"),
        ("checksum", "<u8"),
    ]
)
SYMBOLS = np.array([b"AAPL", b"MSFT", b"NVDA", b"AMZN", b"GOOG", b"META", b"TSLA", b"AVGO"])
MAX_BURST = 64
IDLE_SLEEP = 50e-6


def quote_checksum(q: np.ndarray) -> np.ndarray:
    """What the ``checksum`` field of each quote must hold."""
    bits = q["bid"].view(np.uint64) ^ q["ask"].view(np.uint64)
    return q["seq"] ^ (q["ts_ns"] << np.uint64(1)) ^ bits ^ q["bid_size"].astype(np.uint64)


@dataclass
class DemoConfig:
    name: str
    dir: str | None
    subscribers: int
    rate: float
    duration: float
    capacity: int


def _child() -> None:
    """What every demo process does first: leave Ctrl-C to the parent, which
    stops the children and removes the ring (one message, no tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def feed_handler(cfg: DemoConfig, ready: Any, go: Any, report: Any) -> None:
    """Publishes quotes at ``cfg.rate`` per second for ``cfg.duration`` seconds
    into the ring the parent created."""
    _child()
    rng = np.random.default_rng(1)
    with Publisher.attach(cfg.name, dtype=QUOTE, dir=cfg.dir) as pub:
        ready.set()
        go.wait()
        burst = np.zeros(MAX_BURST, dtype=QUOTE)
        t0 = time.monotonic_ns()
        end = t0 + int(cfg.duration * 1e9)
        sent = 0
        while True:
            now = time.monotonic_ns()
            if now >= end:
                break
            due = min(int((now - t0) * cfg.rate / 1e9) - sent, MAX_BURST)
            if due <= 0:
                # Leave the cores to the strategies: on a small host a
                # spinning feed handler would measure the scheduler instead.
                time.sleep(IDLE_SLEEP)
                continue
            q = burst[:due]
            q["seq"] = np.arange(sent, sent + due)
            q["symbol"] = SYMBOLS[q["seq"] % len(SYMBOLS)]
            mid = 100.0 + rng.standard_normal(due).cumsum() * 0.01
            q["bid"], q["ask"] = mid - 0.01, mid + 0.01
            q["bid_size"] = rng.integers(1, 1000, due)
            q["ask_size"] = rng.integers(1, 1000, due)
            q["ts_ns"] = time.monotonic_ns()
            q["checksum"] = quote_checksum(q)
            if due == 1:
                pub.publish(q[0])
            else:
                pub.publish_batch(q)
            sent += due
        elapsed = (time.monotonic_ns() - t0) / 1e9
        report.put(("feed", {"published": pub.sequence, "seconds": elapsed}))


class QuoteCheck:
    """Order, checksum and latency of received quotes, checked in chunks so
    that the receive loop itself does almost nothing per batch."""

    def __init__(self) -> None:
        self.latencies: list[np.ndarray] = []
        self.bad = 0
        self.out_of_order = 0
        self.last = -1

    def add(self, quotes: np.ndarray, received_ns: np.ndarray) -> None:
        if len(quotes) == 0:
            return
        self.latencies.append(received_ns - quotes["ts_ns"].astype(np.int64))
        self.bad += int(np.count_nonzero(quote_checksum(quotes) != quotes["checksum"]))
        seqs = quotes["seq"].astype(np.int64)
        self.out_of_order += int(np.count_nonzero(np.diff(seqs) <= 0)) + int(seqs[0] <= self.last)
        self.last = int(seqs[-1])

    def percentiles_us(self) -> dict[str, float]:
        lat = np.concatenate(self.latencies) if self.latencies else np.zeros(0, np.int64)
        if len(lat) == 0:
            return {"p50": np.nan, "p99": np.nan, "p999": np.nan, "max": np.nan}
        p50, p99, p999 = np.percentile(lat, [50, 99, 99.9]) / 1e3
        return {"p50": p50, "p99": p99, "p999": p999, "max": lat.max() / 1e3}


CHUNK = 1 << 18


def strategy(cfg: DemoConfig, index: int, attached: Any, report: Any) -> None:
    """Reads quotes until the feed closes; checks and times each one.

    Quotes land straight in a preallocated chunk (``recv_batch_into``); each
    batch adds only its end index and receive time to two lists.
    """
    _child()
    check = QuoteCheck()
    chunk = np.empty(CHUNK, dtype=QUOTE)
    with Subscriber.attach(cfg.name, dir=cfg.dir, start="oldest", dtype=QUOTE) as sub:
        attached.set()
        ends: list[int] = []
        times: list[int] = []
        filled = 0
        done = False
        while not done:
            try:
                filled += sub.recv_batch_into(chunk[filled:], timeout=None)
                ends.append(filled)
                times.append(time.monotonic_ns())
            except RingClosed:
                done = True
            if filled == CHUNK or (done and filled):
                counts = np.diff(np.array([0, *ends]))
                check.add(chunk[:filled], np.repeat(np.array(times, np.int64), counts))
                filled = 0
                ends.clear()
                times.clear()
        report.put(
            (
                index,
                {
                    "received": sub.received,
                    "lost": sub.lost,
                    "position": sub.position,
                    "bad": check.bad,
                    "out_of_order": check.out_of_order,
                    **check.percentiles_us(),
                },
            )
        )


def run(
    subscribers: int = 3,
    rate: float = 100_000,
    duration: float = 3.0,
    capacity: int = 1 << 16,
    dir: str | None = None,
    out: Any = print,
) -> bool:
    """Runs the demo; prints a summary; returns whether every check passed.

    The ring is created here, before any process starts, so that a bad
    argument is one error at once; it is removed at the end, and when the
    run is interrupted (KeyboardInterrupt is raised again once the children
    are stopped)."""
    cfg = DemoConfig(f"demo.quotes.{os.getpid()}", dir, subscribers, rate, duration, capacity)
    ring = Publisher.create(cfg.name, dtype=QUOTE, capacity=capacity, dir=dir)
    ring.close()  # the feed handler takes it over
    ctx = mp.get_context("spawn")
    ready, go, report = ctx.Event(), ctx.Event(), ctx.Queue()
    feed = ctx.Process(target=feed_handler, args=(cfg, ready, go, report), name="feed-handler")
    procs = [feed]
    try:
        feed.start()
        if not ready.wait(30):
            raise RuntimeError("the feed handler did not create its ring within 30 s")
        for i in range(subscribers):
            attached = ctx.Event()
            p = ctx.Process(
                target=strategy, args=(cfg, i + 1, attached, report), name=f"strategy-{i + 1}"
            )
            p.start()
            procs.append(p)
            if not attached.wait(30):
                raise RuntimeError(f"strategy {i + 1} did not attach within 30 s")
        out(
            f"ringcast demo: 1 feed handler -> {subscribers} strategies, {rate:,.0f} quotes/s "
            f"for {duration:g} s; ring {cfg.name!r} of {capacity:,} slots x {QUOTE.itemsize} B"
        )
        cpus = len(os.sched_getaffinity(0))
        if subscribers + 1 > cpus:
            out(
                f"note: {subscribers + 1} processes share {cpus} CPUs and a waiting strategy "
                "spins before it sleeps, so the latency figures include time spent waiting "
                "for a CPU (run with fewer --subscribers to see the ring itself)"
            )
        go.set()
        results = dict(report.get(timeout=duration + 120) for _ in range(subscribers + 1))
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.terminate()
        raise
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(5)
        ring.unlink()
    feed_stats = results.pop("feed")
    published = feed_stats["published"]
    out(
        f"published {published:,} quotes in {feed_stats['seconds']:.2f} s "
        f"({published / feed_stats['seconds']:,.0f}/s)"
    )
    header = (
        f"{'strategy':>8} {'received':>10} {'lost':>8} {'torn':>5} {'order':>5} "
        f"{'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9} {'max us':>9}"
    )
    out(header)
    ok = True
    for i in sorted(results):
        r = results[i]
        exact = r["received"] + r["lost"] == published == r["position"]
        ok &= exact and r["bad"] == 0 and r["out_of_order"] == 0
        out(
            f"{i:>8} {r['received']:>10,} {r['lost']:>8,} {r['bad']:>5} {r['out_of_order']:>5} "
            f"{r['p50']:>8.1f} {r['p99']:>8.1f} {r['p999']:>9.1f} {r['max']:>9.1f}"
            + ("" if exact else "  received + lost != published!")
        )
    out(
        "all checks passed: every quote whole and in order, received + lost = published"
        if ok
        else "CHECKS FAILED"
    )
    return ok
