"""A subscriber group's consumer against a plain subscriber, per message, from Python.

    python benches/py_group.py [--messages N] [--trials T]

One process, pinned to its first CPU. For each ring kind (64-byte numpy
records, and raw 64-byte bytes messages) and each receive path, a ring is
pre-filled with N messages and read out to the end by

- a native ``Subscriber`` (``try_recv()``, ``recv()`` or ``recv_batch(64)``
  in a plain loop), then
- one consumer of a ``SubscriberGroup`` of one consumer (the default buffer
  of 4096), through the same call,

and the rates (messages/s) and their ratio, group / subscriber, are printed;
each figure is the median of T trials, alternating subscriber and group runs
so that both see the same machine. A last row per kind has three consumers
of one group taking turns of 512 messages (every consumer reads every
message: the rate counts deliveries). Rings live in a temporary directory
(under /dev/shm when it exists), removed at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
from _pybench import DTYPE, now_ns, pin, records

import ringcast

BATCH = 64
TURN = 512


def read_singly(read: Callable[[], Any], n: int) -> float:
    """Seconds for ``n`` calls of ``read`` (each must deliver a message)."""
    t0 = now_ns()
    for _ in range(n):
        read()
    return (now_ns() - t0) / 1e9


def read_batches(read: Callable[[int], Any], n: int) -> float:
    t0 = now_ns()
    got = 0
    while got < n:
        got += len(read(BATCH))
    return (now_ns() - t0) / 1e9


def read_turns(consumers: list[Any], n: int) -> float:
    """Three consumers of one group take turns of TURN messages each."""
    t0 = now_ns()
    for start in range(0, n, TURN):
        k = min(TURN, n - start)
        for c in consumers:
            read = c.try_recv
            for _ in range(k):
                read()
    return (now_ns() - t0) / 1e9


PATHS: dict[str, Callable[[Any, int], float]] = {
    "try_recv()": lambda end, n: read_singly(end.try_recv, n),
    "recv()": lambda end, n: read_singly(end.recv, n),
    f"recv_batch({BATCH})": lambda end, n: read_batches(end.recv_batch, n),
}


def fill(pub: ringcast.Publisher, typed: bool, n: int) -> None:
    if typed:
        pub.publish_batch(records(n))
    else:
        pub.publish_batch(records(n).view(np.uint8).reshape(n, DTYPE.itemsize))


def one_run(ring_dir: str, name: str, typed: bool, n: int, path: str, group: bool) -> float:
    """Messages per second of one read-out of n pre-filled messages."""
    dtype = DTYPE if typed else None
    if group:
        g = ringcast.SubscriberGroup(name, ["a"], dir=ring_dir, dtype=dtype)
        end: Any = g["a"]
    else:
        g = None
        end = ringcast.Subscriber.attach(name, dir=ring_dir, dtype=dtype)
    pub = ringcast.Publisher.attach(name, dir=ring_dir, dtype=dtype)
    try:
        fill(pub, typed, n)
        seconds = PATHS[path](end, n)
        if end.received != n:
            raise RuntimeError(f"{path}: read {end.received} of {n} messages")
    finally:
        pub.close()
        (g or end).close()
    return n / seconds


def turns_run(ring_dir: str, name: str, typed: bool, n: int) -> float:
    dtype = DTYPE if typed else None
    with ringcast.SubscriberGroup(name, ["a", "b", "c"], dir=ring_dir, dtype=dtype) as g:
        pub = ringcast.Publisher.attach(name, dir=ring_dir, dtype=dtype)
        fill(pub, typed, n)
        pub.close()
        consumers = [g[c] for c in g.consumers]
        seconds = read_turns(consumers, n)
        if any(c.received != n for c in consumers):
            raise RuntimeError("three consumers: a consumer missed messages")
    return 3 * n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000, help="per run (default 200000)")
    parser.add_argument("--trials", type=int, default=5, help="runs per figure (default 5)")
    args = parser.parse_args()
    n, trials = args.messages, args.trials
    if n < 1 or trials < 1:
        parser.error("--messages and --trials must be at least 1")
    cpus = sorted(os.sched_getaffinity(0))
    pinned = pin(cpus[0])
    capacity = 1 << max(10, (n - 1).bit_length())  # never lapped: nothing lost
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    ring_dir = tempfile.mkdtemp(prefix="ringcast-groupbench-", dir=base)
    rows: list[tuple[str, float, float | None]] = []
    try:
        for typed in (True, False):
            kind = "64-byte records" if typed else "raw 64-byte messages"
            name = "typed" if typed else "raw"
            creator = ringcast.Publisher.create(
                name,
                capacity=capacity,
                dir=ring_dir,
                **({"dtype": DTYPE} if typed else {"slot_size": DTYPE.itemsize}),
            )
            creator.close()
            for path in PATHS:
                sub_rates, group_rates = [], []
                for _ in range(trials):
                    sub_rates.append(one_run(ring_dir, name, typed, n, path, False))
                    group_rates.append(one_run(ring_dir, name, typed, n, path, True))
                rows.append(
                    (
                        f"{kind}, {path}",
                        statistics.median(sub_rates),
                        statistics.median(group_rates),
                    )
                )
            turns = statistics.median(turns_run(ring_dir, name, typed, n) for _ in range(trials))
            rows.append((f"{kind}, 3 consumers, try_recv() in turns", turns, None))
    finally:
        shutil.rmtree(ring_dir, ignore_errors=True)

    print(
        f"ringcast {ringcast.__version__}, Python {platform.python_version()}, numpy "
        f"{np.__version__}; {n} messages per run, median of {trials}; cpu {cpus[0]} "
        f"({'pinned' if pinned else 'NOT pinned'})"
    )
    print(f"{'path':<50} {'Subscriber/s':>13} {'group/s':>10} {'group/sub':>10}")
    for label, sub_rate, group_rate in rows:
        if group_rate is None:
            # (the group alone: deliveries per second over all three consumers)
            print(f"{label:<50} {'':>13} {sub_rate / 1e6:>9.2f}M {'':>10}")
        else:
            print(
                f"{label:<50} {sub_rate / 1e6:>12.2f}M {group_rate / 1e6:>9.2f}M "
                f"{group_rate / sub_rate:>9.2f}x"
            )


if __name__ == "__main__":
    main()
