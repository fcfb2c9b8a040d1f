"""Wake-up latency of each wait strategy, between two processes.

A publisher process sends one timestamped message every ``--gap`` seconds
(long enough for a parking subscriber to fall asleep); a subscriber process
receives with one strategy and records receive time minus publish time
(CLOCK_MONOTONIC is shared by all processes of a host). The same is measured
for asyncio and uvloop (``recv_async``) and, as a peer, for a blocking
``multiprocessing.Pipe`` receive. The subscriber's CPU share while waiting is
the other half of the trade-off.

    python benches/wakeup.py [--samples N] [--gap SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import tempfile
import time

import numpy as np

import ringcast

MSG = np.dtype([("ts_ns", "<i8"), ("seq", "<u8"), ("pad", "<u8", (6,))])
MODES = ["busy_spin", "yielding", "adaptive", "park", "asyncio", "uvloop", "Pipe (peer)"]


def pin(cpu: int) -> None:
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        pass


def receive(mode: str, ring_dir: str, samples: int, ready, conn) -> None:
    """Subscriber side: receive `samples` messages; send back latencies and CPU share."""
    pin(1)
    lat = np.empty(samples, dtype=np.int64)
    if mode == "Pipe (peer)":
        ready.set()
        cpu0, wall0 = time.process_time(), time.monotonic()
        for i in range(samples):
            ts = int.from_bytes(conn.recv_bytes(), "little")
            lat[i] = time.monotonic_ns() - ts
    else:
        kind = mode if mode in ("busy_spin", "yielding", "park", "adaptive") else "adaptive"
        if mode in ("asyncio", "uvloop"):
            kind = "park"  # the event loop itself is the waiter
        sub = ringcast.Subscriber.attach(
            "wake", dir=ring_dir, wait=getattr(ringcast.WaitStrategy, kind)()
        )
        ready.set()
        cpu0, wall0 = time.process_time(), time.monotonic()
        if mode in ("asyncio", "uvloop"):

            async def main():
                for i in range(samples):
                    m = await sub.recv_async()
                    lat[i] = time.monotonic_ns() - int(m["ts_ns"])

            if mode == "uvloop":
                import uvloop

                uvloop.run(main())
            else:
                asyncio.run(main())
        else:
            for i in range(samples):
                m = sub.recv()
                lat[i] = time.monotonic_ns() - int(m["ts_ns"])
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    conn.send_bytes(lat.tobytes())
    conn.send(cpu)


def run_mode(mode: str, samples: int, gap: float) -> tuple[np.ndarray, float]:
    ctx = mp.get_context("spawn")
    ring_dir = tempfile.mkdtemp(prefix="ringcast-wake-", dir="/dev/shm")
    ready = ctx.Event()
    ours, theirs = ctx.Pipe()
    pub = None
    if mode != "Pipe (peer)":
        pub = ringcast.Publisher.create("wake", dtype=MSG, capacity=1024, dir=ring_dir)
    p = ctx.Process(target=receive, args=(mode, ring_dir, samples, ready, theirs))
    p.start()
    ready.wait(30)
    time.sleep(0.2)
    rec = np.zeros(1, dtype=MSG)[0]
    for i in range(samples):
        time.sleep(gap)
        now = time.monotonic_ns()
        if pub is None:
            ours.send_bytes(now.to_bytes(8, "little"))
        else:
            rec["ts_ns"], rec["seq"] = now, i
            pub.publish(rec)
    lat = np.frombuffer(ours.recv_bytes(), dtype=np.int64)
    cpu = ours.recv()
    p.join(30)
    if pub is not None:
        pub.unlink()
        pub.close()
    os.rmdir(ring_dir)
    return lat, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--gap", type=float, default=0.002, help="seconds between messages")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=MODES, metavar="MODE")
    args = ap.parse_args()
    pin(0)
    print(
        f"ringcast {ringcast.__version__}: wake-up latency, publisher on cpu 0, subscriber on "
        f"cpu 1, one message every {args.gap * 1e3:g} ms, {args.samples} samples per row"
    )
    print(f"{'mode':<14}{'p50 us':>9}{'p99 us':>9}{'p99.9 us':>10}{'max us':>9}{'sub CPU':>9}")
    results = {}
    for mode in args.modes:
        lat, cpu = run_mode(mode, args.samples, args.gap)
        us = lat / 1e3
        p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
        results[mode] = p50
        print(f"{mode:<14}{p50:>9.2f}{p99:>9.2f}{p999:>10.2f}{us.max():>9.1f}{cpu:>9.1%}")
    base = results.get("busy_spin")
    if base:
        print(
            "p50 relative to busy_spin: "
            + ", ".join(f"{m} {v / base:.1f}x" for m, v in results.items())
        )


if __name__ == "__main__":
    main()
