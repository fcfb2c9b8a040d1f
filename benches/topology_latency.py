"""End-to-end latency and throughput through topologies of stage processes,
against one ring measured the same way in the same run.

Topologies (every stage a Python process built with ringcast.Pipeline /
ringcast.Diamond; the middle stages forward each record unchanged):

  single ring   source -> sink                       (1 hop)
  pipeline      source -> relay -> sink              (3 stages, 2 hops)
  diamond       source -> {left, right} -> sink      (sink gated after both branches)

Latency: the source publishes paced records stamped with time.monotonic_ns()
at their due time (so a source that falls behind is charged for it: no
coordinated omission); the sink records now - stamp per record in an
HdrHistogram. Throughput: the source publishes arrays of records flat out,
the stages work in batches, and the sink times first to last record.

Run:  python benches/topology_latency.py [--rate 5000] [--seconds 4]
          [--messages 2000000] [--wait park|adaptive|yielding|busy_spin] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import numpy as np

import ringcast

REC = np.dtype([("seq", "<u8"), ("ts", "<i8"), ("payload", "<u8", (6,))])  # 64 bytes
BATCH = 1024


def paced_source(rate: int, seconds: float) -> Any:
    """Records due every 1/rate s, each stamped with its due time."""

    def source() -> Any:
        n = int(rate * seconds)
        period = 1e9 / rate
        rec = np.zeros((), dtype=REC)
        t0 = time.monotonic_ns() + 20_000_000
        for i in range(n):
            due = t0 + int(i * period)
            while time.monotonic_ns() < due:
                pass
            rec["seq"] = i
            rec["ts"] = due
            yield rec

    return source


def flat_source(total: int) -> Any:
    """Arrays of BATCH records, flat out, stamped when sent."""

    def source() -> Any:
        block = np.zeros(BATCH, dtype=REC)
        base = np.arange(BATCH, dtype=np.uint64)
        for start in range(0, total, BATCH):
            n = min(BATCH, total - start)
            block["seq"][:n] = base[:n] + np.uint64(start)
            block["ts"][:n] = time.monotonic_ns()
            yield block[:n]

    return source


def relay(msg: Any) -> Any:
    return msg


def sink_setup(ctx: Any) -> dict[str, Any]:
    return {"hist": ringcast.LatencyHistogram(), "n": 0, "bad": 0, "first": 0, "last": 0}


def sink(msg: Any, state: dict[str, Any]) -> None:
    now = time.monotonic_ns()
    if msg.shape:  # a batch
        if state["n"] == 0:
            state["first"] = now
        seq = msg["seq"]
        state["bad"] += int(seq[0]) != state["n"] or int(seq[-1]) != state["n"] + len(seq) - 1
        state["n"] += len(msg)
        state["last"] = now
        return
    state["bad"] += int(msg["seq"]) != state["n"]
    state["n"] += 1
    state["hist"].record_since(int(msg["ts"]), now)


def sink_finish(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "hist": state["hist"].encode(),
        "n": state["n"],
        "bad": state["bad"],
        "seconds": (state["last"] - state["first"]) / 1e9,
    }


def build(shape: str, name: str, source: Any, batch: int | None, wait: Any) -> Any:
    src = ringcast.Stage(source, name="source", dtype=REC, wait=wait)
    end = ringcast.Stage(
        sink, name="sink", setup=sink_setup, finish=sink_finish, batch=batch, wait=wait
    )

    def mid(stage_name: str) -> Any:
        return ringcast.Stage(relay, name=stage_name, dtype=REC, batch=batch, wait=wait)

    if shape == "single ring":
        return ringcast.Pipeline(name, [src, end], capacity=1 << 14)
    if shape == "pipeline":
        return ringcast.Pipeline(name, [src, mid("relay"), end], capacity=1 << 14)
    return ringcast.Diamond(
        name,
        source=src,
        branches=[
            ringcast.Stage(relay, name="left", batch=batch, wait=wait),
            ringcast.Stage(relay, name="right", batch=batch, wait=wait),
        ],
        then=end,
        capacity=1 << 14,
    )


def run(shape: str, source: Any, batch: int | None, wait: Any) -> dict[str, Any]:
    name = f"bench-topo-{os.getpid()}"
    with build(shape, name, source, batch, wait) as topo:  # starts it
        topo.join(timeout=600)
        out = topo.results["sink"]
    out["hist"] = ringcast.LatencyHistogram.decode(out["hist"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=5_000, help="paced messages per second")
    ap.add_argument("--seconds", type=float, default=4.0, help="paced run length")
    ap.add_argument("--messages", type=int, default=2_000_000, help="flat-out run length")
    ap.add_argument(
        "--wait",
        choices=["park", "adaptive", "yielding", "busy_spin"],
        default="park",
        help="every stage's wait strategy (park: right when stages outnumber CPUs)",
    )
    ap.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.messages = 0.5, 200_000
    shapes = ["single ring", "pipeline", "diamond"]
    wait = getattr(ringcast.WaitStrategy, args.wait)()
    rows: dict[str, dict[str, Any]] = {}
    for shape in shapes:
        lat = run(shape, paced_source(args.rate, args.seconds), None, wait)
        thr = run(shape, flat_source(args.messages), BATCH, wait)
        h = lat["hist"]
        rows[shape] = {
            "p50_us": h.value_at_percentile(50) / 1e3,
            "p99_us": h.value_at_percentile(99) / 1e3,
            "p999_us": h.value_at_percentile(99.9) / 1e3,
            "max_us": h.max / 1e3,
            "latency_messages": lat["n"],
            "throughput_mps": thr["n"] / thr["seconds"] if thr["seconds"] > 0 else 0.0,
            "throughput_messages": thr["n"],
            "out_of_order": lat["bad"] + thr["bad"],
        }
    if args.json:
        print(json.dumps(rows))
        return
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs; paced {args.rate:,} msg/s for "
        f"{args.seconds} s; flat out {args.messages:,} messages in batches of {BATCH}; "
        f"wait {args.wait}"
    )
    single = rows["single ring"]
    print(
        f"{'topology':<12} {'p50 us':>8} {'p99 us':>9} {'p99.9 us':>9} {'max us':>9} "
        f"{'x single p50':>12} {'M msg/s':>8} {'x single':>8}"
    )
    for shape, r in rows.items():
        print(
            f"{shape:<12} {r['p50_us']:>8.1f} {r['p99_us']:>9.1f} {r['p999_us']:>9.1f} "
            f"{r['max_us']:>9.0f} {r['p50_us'] / single['p50_us']:>12.2f} "
            f"{r['throughput_mps'] / 1e6:>8.2f} "
            f"{r['throughput_mps'] / single['throughput_mps']:>8.2f}"
        )
    bad = sum(r["out_of_order"] for r in rows.values())
    if bad:
        raise SystemExit(f"{bad} records arrived out of order or missing")


if __name__ == "__main__":
    main()
