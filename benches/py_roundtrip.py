"""ringcast from Python: round-trip latency and throughput between two processes.

    python benches/py_roundtrip.py [--messages N]

Process A (this one, pinned to the first CPU) and process B (a spawned
child, pinned to the second) exchange 64-byte structured numpy records:

- round trip: A publishes into ring "ping", B receives (``sub.recv()``) and
  publishes the record back into ring "pong", A receives; p50/p99 in µs over
  N round trips after a warm-up, timed with ``time.perf_counter_ns`` in A;
  then the same with ``recv_into`` preallocated 1-record arrays on both sides
  (no record objects created, and B republishes an array of the ring's own
  dtype object);
- one-way throughput of single messages (``publish`` / ``recv``) and of the
  batch path (``publish_batch`` of 4096 records, ``recv_batch_into`` a
  preallocated array), as messages/s: what A published and what B delivered,
  with B's received and lost counts (a ring never blocks its publisher: a
  slower reader is lapped and loses messages, and says how many);
- the peer, measured in the same run: ``multiprocessing.Pipe`` round trip
  (``send_bytes``/``recv_bytes`` of 64 bytes) and one-way throughput;
- per-call costs of the Python API, in one process, for reference.

Rings live in a temporary directory (under /dev/shm when it exists), removed
at the end.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from _pybench import DTYPE, Child, latency_stats, now_ns, pin, records, time_until_closed

import ringcast

BATCH = 4096
ROUND_TRIP_CAPACITY = 1 << 12
THROUGHPUT_CAPACITY = 1 << 16


# ----------------------------------------------------------- children ----


def ring_echo(conn: Connection, ring_dir: str, into: bool) -> None:
    """B of the round trip: every record from "ping" goes back into "pong",
    as ``publish(recv())`` or, with ``into``, through ``recv_into`` a
    preallocated 1-record array of the dtype "pong" was created with."""
    sub = ringcast.Subscriber.attach("ping", dir=ring_dir, start="oldest")
    pub = ringcast.Publisher.create("pong", dtype=DTYPE, capacity=ROUND_TRIP_CAPACITY, dir=ring_dir)
    conn.send("ready")
    recv, recv_into, publish = sub.recv, sub.recv_into, pub.publish
    buf = np.empty(1, dtype=DTYPE)
    try:
        if into:
            while True:
                recv_into(buf)
                publish(buf)
        else:
            while True:
                publish(recv())
    except ringcast.RingClosed:
        pass
    pub.unlink()
    pub.close()
    conn.send({"received": sub.received, "lost": sub.lost})


def ring_sink(conn: Connection, ring_dir: str, name: str, batch: bool) -> None:
    """B of a throughput run: reads until the publisher closes the ring."""
    sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
    conn.send("ready")
    if batch:
        out = np.empty(BATCH, dtype=DTYPE)
        first, seconds = time_until_closed(functools.partial(sub.recv_batch_into, out, None))
    else:
        _, seconds = time_until_closed(sub.recv)
        first = 1
    # The first delivery happened before t0: it is not counted in the rate.
    conn.send({"received": sub.received, "lost": sub.lost, "first": first, "seconds": seconds})


def pipe_echo(conn: Connection, peer: Connection) -> None:
    conn.send("ready")
    recv_bytes, send_bytes = peer.recv_bytes, peer.send_bytes
    while True:
        msg = recv_bytes()
        if not msg:
            break
        send_bytes(msg)
    conn.send({})


def pipe_sink(conn: Connection, reader: Connection) -> None:
    conn.send("ready")
    recv_bytes = reader.recv_bytes
    recv_bytes()
    t0 = now_ns()
    received = 1
    while recv_bytes():
        received += 1
    t1 = now_ns()
    conn.send({"received": received, "lost": 0, "seconds": (t1 - t0) / 1e9})


# ---------------------------------------------------------------- runs ----


def run_ring_round_trip(ring_dir: str, cpus: tuple, n: int, warmup: int, into: bool) -> dict:
    ping = ringcast.Publisher.create(
        "ping", dtype=DTYPE, capacity=ROUND_TRIP_CAPACITY, dir=ring_dir
    )
    child = Child(ring_echo, cpus[1], ring_dir, into)
    child.expect("ready")
    pong = ringcast.Subscriber.attach("pong", dir=ring_dir, start="oldest")
    rec = records(1)  # a 1-record array of the ring's own dtype: the fast publish path
    publish, recv, recv_into = ping.publish, pong.recv, pong.recv_into
    back = np.empty(1, dtype=DTYPE)
    samples, first_lap = [], []
    for i in range(warmup + n):
        rec["seq"] = i
        t0 = now_ns()
        publish(rec)
        if into:
            recv_into(back)
        else:
            back = recv()
        t1 = now_ns()
        if i >= warmup:
            samples.append(t1 - t0)
        elif i < ROUND_TRIP_CAPACITY:
            first_lap.append(t1 - t0)
        if back["seq"] != i:
            raise RuntimeError(f"round trip {i} came back as {back['seq']}")
    ping.unlink()
    ping.close()
    stats = child.expect("stats")
    child.join()
    lost = stats["lost"] + pong.lost
    pong.close()
    out = latency_stats(samples)
    out["lost"] = lost
    out["first_lap"] = latency_stats(first_lap)
    out["first_lap"]["lost"] = 0
    return out


def run_pipe_round_trip(cpus: tuple, n: int, warmup: int) -> dict:
    ours, theirs = mp.get_context("spawn").Pipe()  # duplex: a socketpair
    child = Child(pipe_echo, cpus[1], theirs)
    child.expect("ready")
    theirs.close()
    msg = records(1).tobytes()
    send_bytes, recv_bytes = ours.send_bytes, ours.recv_bytes
    samples = []
    for i in range(warmup + n):
        t0 = now_ns()
        send_bytes(msg)
        recv_bytes()
        t1 = now_ns()
        if i >= warmup:
            samples.append(t1 - t0)
    send_bytes(b"")
    child.expect("done")
    child.join()
    out = latency_stats(samples)
    out["lost"] = 0
    return out


def run_ring_throughput(ring_dir: str, cpus: tuple, total: int, batch: bool, trial: int) -> dict:
    name = f"tp-{'batch' if batch else 'single'}-{trial}"
    pub = ringcast.Publisher.create(name, dtype=DTYPE, capacity=THROUGHPUT_CAPACITY, dir=ring_dir)
    child = Child(ring_sink, cpus[1], ring_dir, name, batch)
    child.expect("ready")
    if batch:
        block = records(BATCH)
        publish_batch = pub.publish_batch
        t0 = now_ns()
        for _ in range(total // BATCH):
            publish_batch(block)
        t1 = now_ns()
        total = total // BATCH * BATCH
    else:
        rec = records(1)
        publish = pub.publish
        t0 = now_ns()
        for _ in range(total):
            publish(rec)
        t1 = now_ns()
    pub.unlink()  # before close(): a closed Publisher refuses unlink()
    pub.close()
    stats = child.expect("stats")
    child.join()
    first = stats["first"]  # delivered before B's clock started
    return {
        "messages": total,
        "published_per_s": total / ((t1 - t0) / 1e9),
        "delivered_per_s": (stats["received"] - first) / stats["seconds"],
        "received": stats["received"],
        "lost": stats["lost"],
    }


def run_pipe_throughput(cpus: tuple, total: int) -> dict:
    reader, writer = mp.get_context("spawn").Pipe(duplex=False)  # an os.pipe
    child = Child(pipe_sink, cpus[1], reader)
    child.expect("ready")
    reader.close()
    msg = records(1).tobytes()
    send_bytes = writer.send_bytes
    t0 = now_ns()
    for _ in range(total):
        send_bytes(msg)
    t1 = now_ns()
    send_bytes(b"")
    stats = child.expect("stats")
    child.join()
    return {
        "messages": total,
        "published_per_s": total / ((t1 - t0) / 1e9),
        "delivered_per_s": (stats["received"] - 1) / stats["seconds"],
        "received": stats["received"],
        "lost": 0,
    }


def best_of(trials: list[dict]) -> dict:
    """The median trial by delivered rate, with the spread of all trials."""
    trials = sorted(trials, key=lambda t: t["delivered_per_s"])
    out = dict(trials[len(trials) // 2])
    out["trial_rates"] = [t["delivered_per_s"] for t in trials]
    return out


def call_costs(ring_dir: str, reps: int) -> dict[str, float]:
    """ns per call of the Python API, in one process (bound methods called in a
    plain loop, so the figures include ~20-30 ns of loop and call overhead:
    see the first row); reads come from a pre-filled ring."""
    pub = ringcast.Publisher.create(
        "costs", dtype=DTYPE, capacity=THROUGHPUT_CAPACITY, dir=ring_dir
    )
    arr = records(1)
    reps = min(reps, THROUGHPUT_CAPACITY - 1)
    out: dict[str, float] = {}

    def timed(label: str, fn: Callable[..., object], arg: Any = None, n: int = reps) -> None:
        t0 = now_ns()
        if arg is None:
            for _ in range(n):
                fn()
        else:
            for _ in range(n):
                fn(arg)
        out[label] = (now_ns() - t0) / n

    timed("(baseline: loop + len(bytes))", len, b"x")
    timed("publish(1-record array)", pub.publish, arr)
    timed("publish(bytes)", pub.publish, arr.tobytes())
    timed("publish(numpy.void record)", pub.publish, arr[0])
    timed("publish(tuple)", pub.publish, arr[0].item())
    # A dtype equal to the ring's but another object, as a relay process gets
    # from Subscriber.attach (the dtype is rebuilt from the ring header).
    twin = arr.astype(np.dtype(DTYPE.descr))
    timed("publish(1-record array, equal dtype object)", pub.publish, twin)
    timed("publish(numpy.void, equal dtype object)", pub.publish, twin[0])

    def filled() -> ringcast.Subscriber:
        sub = ringcast.Subscriber.attach("costs", dir=ring_dir, start="latest")
        pub.publish_batch(records(reps))
        return sub

    with filled() as sub:
        timed("try_recv() -> numpy.void", sub.try_recv)
    with filled() as sub:
        timed("recv() -> numpy.void", sub.recv)
    with filled() as sub:
        timed("recv_into(1-record array)", sub.recv_into, np.empty(1, dtype=DTYPE))
    with ringcast.Subscriber.attach("costs", dir=ring_dir, start="latest") as sub:
        timed("try_recv() on an empty ring", sub.try_recv)
    n_batches = max(1, reps // BATCH)
    timed("publish_batch(4096), per record", pub.publish_batch, records(BATCH), n_batches)
    out["publish_batch(4096), per record"] /= BATCH
    with ringcast.Subscriber.attach("costs", dir=ring_dir, start="latest") as sub:
        pub.publish_batch(records(n_batches * BATCH))
        outbuf = np.empty(BATCH, dtype=DTYPE)
        timed("recv_batch_into(4096), per record", sub.recv_batch_into, outbuf, n_batches)
        out["recv_batch_into(4096), per record"] /= BATCH
    pub.unlink()
    pub.close()
    return out


# ---------------------------------------------------------------- main ----


def fmt_rate(r: float) -> str:
    return f"{r / 1e6:.2f}M"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--messages",
        type=int,
        default=20_000,
        help="round trips per latency measurement (default 20000); single-message "
        "throughput moves 50 x N messages, the batch path 400 x N",
    )
    args = parser.parse_args()
    n = args.messages
    if n < 1:
        parser.error("--messages must be at least 1")
    # At least two laps of the rings: the first lap of a fresh ring takes a page
    # fault every 4 KiB in both processes (shown separately); steady state after.
    warmup = max(n // 10, 2 * ROUND_TRIP_CAPACITY)
    single_total = 50 * n
    batch_total = max(BATCH, 400 * n // BATCH * BATCH)
    trials = 3

    cpus_available = sorted(os.sched_getaffinity(0))
    if len(cpus_available) >= 2:
        cpus: tuple = (cpus_available[0], cpus_available[1])
    else:
        print("warning: fewer than two CPUs available; running unpinned", file=sys.stderr)
        cpus = (None, None)
    pinned = pin(cpus[0])

    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    ring_dir = tempfile.mkdtemp(prefix="ringcast-pybench-", dir=base)
    started = time.monotonic()
    try:
        ring_rt = run_ring_round_trip(ring_dir, cpus, n, warmup, into=False)
        ring_rt_into = run_ring_round_trip(ring_dir, cpus, n, warmup, into=True)
        pipe_rt = run_pipe_round_trip(cpus, n, warmup)
        single = best_of(
            [run_ring_throughput(ring_dir, cpus, single_total, False, t) for t in range(trials)]
        )
        batched = best_of(
            [run_ring_throughput(ring_dir, cpus, batch_total, True, t) for t in range(trials)]
        )
        pipe_tp = best_of([run_pipe_throughput(cpus, single_total) for _ in range(trials)])
        costs = call_costs(ring_dir, 50_000)
    finally:
        shutil.rmtree(ring_dir, ignore_errors=True)
    elapsed = time.monotonic() - started

    print(
        f"ringcast {ringcast.__version__} from Python {platform.python_version()}, "
        f"numpy {np.__version__}; 64-byte records; processes on cpus "
        f"{cpus[0]} and {cpus[1]} ({'pinned' if pinned else 'NOT pinned'}); {elapsed:.1f} s"
    )
    print()
    print(f"Round trip A -> B -> A, µs ({n} round trips after {warmup} warm-up)")
    print(
        f"{'path':<52} {'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>9} {'min':>7} "
        f"{'lost':>5} {'samples':>8}"
    )
    for label, r in (
        ("ringcast publish -> recv -> publish -> recv", ring_rt),
        (f"  same, first lap of the fresh rings ({ROUND_TRIP_CAPACITY})", ring_rt["first_lap"]),
        ("ringcast publish -> recv_into -> publish -> recv_into", ring_rt_into),
        ("multiprocessing.Pipe send_bytes/recv_bytes", pipe_rt),
    ):
        print(
            f"{label:<52} {r['p50_us']:>8.2f} {r['p99_us']:>8.2f} {r['p999_us']:>8.2f} "
            f"{r['max_us']:>9.1f} {r['min_us']:>7.2f} {r['lost']:>5} {r['samples']:>8}"
        )
    print(
        f"Pipe / ringcast round trip (recv): p50 {pipe_rt['p50_us'] / ring_rt['p50_us']:.2f}x, "
        f"p99 {pipe_rt['p99_us'] / ring_rt['p99_us']:.2f}x (ringcast is that many times faster)"
    )
    print(
        f"Pipe / ringcast round trip (recv_into): "
        f"p50 {pipe_rt['p50_us'] / ring_rt_into['p50_us']:.2f}x, "
        f"p99 {pipe_rt['p99_us'] / ring_rt_into['p99_us']:.2f}x"
    )
    print()
    print(f"One-way throughput, messages/s (median of {trials} trials; min..max delivered/s)")
    print(
        f"{'path':<52} {'published/s':>12} {'delivered/s':>12} {'received':>10} "
        f"{'lost':>10} {'lost %':>7}  trials"
    )
    rows = (
        (f"ringcast publish / recv, {single_total} msgs", single),
        (f"ringcast publish_batch / recv_batch_into, {batch_total}", batched),
        (f"multiprocessing.Pipe, {single_total} msgs", pipe_tp),
    )
    for label, r in rows:
        lo, hi = r["trial_rates"][0], r["trial_rates"][-1]
        print(
            f"{label:<52} {fmt_rate(r['published_per_s']):>12} "
            f"{fmt_rate(r['delivered_per_s']):>12} {r['received']:>10} {r['lost']:>10} "
            f"{100 * r['lost'] / r['messages']:>7.1f}  {fmt_rate(lo)}..{fmt_rate(hi)}"
        )
    for label, r in rows[:2]:
        pub_ratio = r["published_per_s"] / pipe_tp["published_per_s"]
        del_ratio = r["delivered_per_s"] / pipe_tp["delivered_per_s"]
        name = label.split(",")[0]
        print(f"{name} / Pipe: published {pub_ratio:.1f}x, delivered {del_ratio:.1f}x")
    print()
    print("Python API call costs, ns per call (one process, no second core involved)")
    for label, ns in costs.items():
        print(f"  {label:<48} {ns:>8.0f}")


if __name__ == "__main__":
    main()
