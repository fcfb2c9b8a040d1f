"""ITCH decode throughput side by side (issue 18): ringcast against the PyPI
``itchfeed`` parser, with its C++ backend (``itchcpp``) and without it
(``ITCH_NO_CPP=1``, pure Python), in one run on one machine.

A generated day (``ringcast.itch.generate``, seed 1) is written to a
temporary ITCH file, then timed, file -> records, one core each:

- ``ringcast read_file``: ``ringcast.itch.read_file(path)``, every message
  decoded into its type's numpy record array (the Python API);
- ``ringcast Rust records``: ``cargo run --release -p ringcast-benches --bin
  feed_decode -- --json`` (the same generator and seed, built in memory),
  its ``records`` stage (file bytes -> little-endian records, one thread);
- ``itchfeed + itchcpp``: ``MessageParser().parse_file(f)`` over the whole
  file, reading each message's ``timestamp`` (C++ backend);
- ``itchfeed pure``: the same with ``ITCH_NO_CPP=1``, on the first
  ``--pure-messages`` messages only (a subsample: the pure-Python parser
  takes about 10 µs a message), stated in the output.

Each peer runs in its own process (the backend is chosen at import).
Figures are the best and the median of ``--rounds`` rounds, messages per
second; ratios are ringcast's best against each peer's best.

    python benches/feed_peers.py [--messages 2000000] [--rounds 5] [--cpp-rounds 3]
        [--pure-messages 100000] [--pure-rounds 3] [--no-rust] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peer_main(path: str, rounds: int) -> None:
    """In a child process: time itchfeed's parse_file over ``path``."""
    import itch
    from itch.parser import MessageParser

    times, count = [], 0
    for _ in range(rounds):
        count, touched = 0, 0
        start = time.perf_counter()
        with open(path, "rb") as f:
            for m in MessageParser().parse_file(f):
                count += 1
                touched ^= m.timestamp
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "messages": count,
                "seconds": times,
                "cpp": bool(itch.USING_CPP_BACKEND),
                "version": itch.__version__,
            }
        )
    )


def head(src: str, dst: str, messages: int) -> int:
    """Copies the first ``messages`` messages of ITCH file ``src`` to ``dst``."""
    data = open(src, "rb").read()
    at = 0
    for _ in range(messages):
        if at >= len(data):
            break
        (n,) = struct.unpack_from(">H", data, at)
        at += 2 + n
    with open(dst, "wb") as f:
        f.write(data[:at])
    return messages


def figures(messages: int, times: list[float]) -> dict:
    rates = [messages / t for t in times]
    return {
        "messages": messages,
        "rounds": len(times),
        "best_msgs_per_s": max(rates),
        "median_msgs_per_s": statistics.median(rates),
        "best_ns_per_msg": 1e9 / max(rates),
    }


def run_peer(path: str, rounds: int, pure: bool) -> dict:
    env = dict(os.environ)
    if pure:
        env["ITCH_NO_CPP"] = "1"
    else:
        env.pop("ITCH_NO_CPP", None)
    out = subprocess.run(
        [sys.executable, __file__, "--peer", path, "--rounds", str(rounds)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    if got["cpp"] == pure:
        raise SystemExit(f"itchfeed backend is not the one asked for: {got}")
    result = figures(got["messages"], got["seconds"])
    result["version"] = got["version"]
    return result


def run_rust(messages: int, rounds: int) -> dict | None:
    cmd = [
        "cargo", "run", "--quiet", "--release", "-p", "ringcast-benches", "--bin",
        "feed_decode", "--", "--messages", str(messages), "--rounds", str(rounds), "--json",
    ]  # fmt: skip
    try:
        out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"feed_decode did not run: {e}", file=sys.stderr)
        return None
    got = json.loads(out.strip().splitlines()[-1])
    rate = got["records"]["msgs_per_s"]
    return {
        "messages": got["messages"],
        "rounds": got["rounds"],
        "best_msgs_per_s": rate,
        "median_msgs_per_s": None,
        "best_ns_per_msg": 1e9 / rate,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=2_000_000)
    p.add_argument("--pure-messages", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cpp-rounds", type=int, default=3)
    p.add_argument("--pure-rounds", type=int, default=3)
    p.add_argument("--no-rust", action="store_true", help="skip the cargo feed_decode run")
    p.add_argument("--json", action="store_true")
    p.add_argument("--peer", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.peer:
        peer_main(a.peer, a.rounds)
        return

    import numpy as np

    import ringcast.itch as itch

    results: dict[str, dict | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        day = os.path.join(tmp, "day.itch")
        itch.generate(day, seed=1, messages=a.messages)
        small = os.path.join(tmp, "head.itch")
        head(day, small, a.pure_messages)

        times, count = [], 0
        for _ in range(a.rounds):
            start = time.perf_counter()
            recs = itch.read_file(day)
            times.append(time.perf_counter() - start)
            count = sum(len(r) for r in recs.values())
            assert all(isinstance(r, np.ndarray) for r in recs.values())
            del recs
        results["ringcast read_file"] = figures(count, times)
        results["ringcast Rust records"] = None if a.no_rust else run_rust(a.messages, a.rounds)
        results["itchfeed + itchcpp"] = run_peer(day, a.cpp_rounds, pure=False)
        results["itchfeed pure"] = run_peer(small, a.pure_rounds, pure=True)

    peers = [results["itchfeed + itchcpp"], results["itchfeed pure"]]
    fastest_peer = max(r["best_msgs_per_s"] for r in peers if r)
    for name in ("ringcast read_file", "ringcast Rust records"):
        r = results[name]
        if r:
            r["vs_fastest_peer"] = r["best_msgs_per_s"] / fastest_peer
            r["vs_itchcpp"] = r["best_msgs_per_s"] / peers[0]["best_msgs_per_s"]
            r["vs_pure"] = r["best_msgs_per_s"] / peers[1]["best_msgs_per_s"]
    meta = {
        "messages": a.messages,
        "pure_messages": a.pure_messages,
        "rounds": a.rounds,
        "cpp_rounds": a.cpp_rounds,
        "pure_rounds": a.pure_rounds,
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "note": "itchfeed pure: the first pure_messages messages of the day only",
    }
    if a.json:
        print(json.dumps({"meta": meta, "results": results}, indent=1))
        return
    print(
        f"{a.messages:,} messages (itchfeed pure: first {a.pure_messages:,}), "
        f"{os.cpu_count()} CPUs, load {meta['loadavg'][0]:.1f}, one core each"
    )
    print(f"{'':24} {'best M/s':>9} {'median':>8} {'ns/msg':>8} {'x itchcpp':>10} {'x pure':>8}")
    for name, r in results.items():
        if r is None:
            print(f"{name:24} (not run)")
            continue
        med = r["median_msgs_per_s"]
        print(
            f"{name:24} {r['best_msgs_per_s'] / 1e6:9.2f} "
            f"{'' if med is None else f'{med / 1e6:.2f}':>8} {r['best_ns_per_msg']:8.1f} "
            f"{r.get('vs_itchcpp', float('nan')):10.1f} {r.get('vs_pure', float('nan')):8.0f}"
        )


if __name__ == "__main__":
    main()
