"""The bridge against Aeron alone, side by side in one run, between two
network namespaces joined by a switch (tests/netns.py), with and without
loss (nftables dropping a share of the datagrams into the receiving host).

Round trip: Aeron's own ping-pong (64-byte messages) against ring -> Aeron
-> ring -> Aeron -> ring. Throughput: Aeron's own (one offer per 64-byte
message) against a ring published flat out, bridged, read from the far
ring. Rounds alternate the two so that the machine's load falls on both.

    cargo build --release -p ringcast-benches --bin bridge
    python benches/bridge.py [--rounds 3] [--pings 20000] [--messages 2000000] \
        [--loss 2] [--idle backoff]

Needs root (namespaces) and nftables (the loss). ``--idle`` is how every
polling loop waits, Aeron's drivers and the bridges alike: ``spin`` is
what a host with a core per busy thread runs; on a 2-core machine the
bridged round trip has 8 busy threads (a driver, a sender, a receiver and
the application on each host), so ``backoff`` is the default.

Prints one table; figures and the machine go into docs/benchmarks.md
("Bridge across hosts").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from netns import Hosts  # noqa: E402

BIN = os.path.join(ROOT, "target", "release", "bridge")
PORT = 40600


def last_json(text: str) -> dict[str, Any]:
    lines = text.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def pair(hosts: Hosts, server: list[str], client: list[str]) -> tuple[dict, dict]:
    """Runs ``server`` in host 1 and ``client`` in host 0; their JSON lines."""
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    srv = hosts[1].popen([BIN, *server], **pipes)
    time.sleep(0.3)
    cli = hosts[0].popen([BIN, *client], **pipes)
    print(f"  {client[0]} -> {server[0]}", file=sys.stderr, flush=True)
    out, err = cli.communicate(timeout=300)
    if cli.returncode != 0:
        srv.kill()
        raise SystemExit(f"{client[0]} failed: {err}")
    sout, serr = srv.communicate(timeout=60)
    if srv.returncode != 0:
        raise SystemExit(f"{server[0]} failed: {serr}")
    return last_json(out), last_json(sout)


def round_trip(hosts: Hosts, kind: str, pings: int) -> dict[str, Any]:
    a, b = hosts[0].addr, hosts[1].addr
    to_b, to_a = f"aeron:udp?endpoint={b}:{PORT}", f"aeron:udp?endpoint={a}:{PORT + 1}"
    server = "aeron-pong" if kind == "aeron" else "bridge-echo"
    client = "aeron-ping" if kind == "aeron" else "bridge-ping"
    out, _ = pair(hosts, [server, to_b, to_a], [client, to_b, to_a, str(pings)])
    return out["rtt"]


def throughput(hosts: Hosts, kind: str, messages: int) -> float:
    ch = f"aeron:udp?endpoint={hosts[1].addr}:{PORT + 2}"
    _, sink = pair(hosts, [f"{kind}-sink", ch, str(messages)], [f"{kind}-blast", ch, str(messages)])
    if sink.get("lost", 0):
        raise SystemExit(f"the bridged ring lost {sink['lost']} messages: Aeron should recover all")
    return float(sink["rate"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pings", type=int, default=20_000)
    p.add_argument("--messages", type=int, default=2_000_000)
    p.add_argument(
        "--loss", type=float, default=2.0, help="%% of datagrams each host drops (0: skip)"
    )
    p.add_argument("--idle", choices=("spin", "backoff", "sleep"), default="backoff")
    args = p.parse_args()
    if not os.path.exists(BIN):
        raise SystemExit("build it first: cargo build --release -p ringcast-benches --bin bridge")
    os.environ["RINGCAST_BENCH_IDLE"] = args.idle
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    with Hosts(2) as hosts:
        for loss in [0.0] + ([args.loss] if args.loss else []):
            for h in hosts:
                h.clear_drops()
                if loss:
                    h.drop_incoming(loss)
            for _ in range(args.rounds):
                for kind in ("aeron", "bridge"):
                    rtt = round_trip(hosts, kind, args.pings)
                    rate = throughput(hosts, kind, args.messages)
                    r = results.setdefault((f"{loss:g}%", kind), {"p50": [], "p99": [], "rate": []})
                    r["p50"].append(rtt["p50_ns"] / 1e3)
                    r["p99"].append(rtt["p99_ns"] / 1e3)
                    r["rate"].append(rate / 1e6)
        dropped = sum(h.counters() for h in hosts)
    load = os.getloadavg()[0]
    print(
        f"# bridge vs Aeron between two namespaces, 64-byte messages, idle {args.idle}, "
        f"{args.rounds} rounds (median [min-max]); {dropped:,} datagrams dropped by the "
        f"loss rules; load {load:.1f} on {os.cpu_count()} CPUs"
    )
    print("| loss | what | RTT p50 us | RTT p99 us | 64 B msgs/s (M) |")
    print("|---|---|---|---|---|")
    med = statistics.median
    for (loss, kind), r in results.items():
        cells = [
            f"{med(v):.2f} [{min(v):.2f}-{max(v):.2f}]" for v in (r["p50"], r["p99"], r["rate"])
        ]
        print(f"| {loss} | {kind} | " + " | ".join(cells) + " |")
    for loss in sorted({k[0] for k in results}):
        a, b = results[(loss, "aeron")], results[(loss, "bridge")]
        print(
            f"loss {loss}: bridge adds {med(b['p50']) - med(a['p50']):+.2f} us to the RTT p50; "
            f"throughput {med(b['rate']) / med(a['rate']):.2f}x Aeron's own"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
