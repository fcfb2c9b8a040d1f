"""What the metrics of ``ringcast serve`` cost (issue 19): the time of one
scrape of ``/metrics`` and ``/status.json`` for many rings, and what scraping
does to a publisher.

    python benches/metrics_scrape.py [--rings 100] [--subscribers 8]
        [--processes 4] [--scrapes 30] [--rounds 5] [--window 1.0]

Rings: ``--rings`` lossy rings of 64-byte records (capacity 4096), 1000
messages published into each by this process, and ``--subscribers`` per
ring attached from ``--processes`` other processes (each holds its share of
every ring's subscribers and has read 100 messages of each). The server is
the one ``ringcast serve`` runs (``start_http``), in this process, with a
status of one item per ring plus four stages reporting latency histograms.

1. Scrape time: ``--scrapes`` GETs of ``/metrics`` (text format, and
   OpenMetrics as Prometheus asks for it) and of ``/status.json`` over
   loopback, one after another (each reads every ring file and the status),
   the ring snapshot alone and the collector alone (the metric families,
   before prometheus_client encodes them); min / median / max in ms.
2. Hot path: a publisher process pinned to CPU 0 publishes flat out
   (``_native.bench_publish``, the Rust loop, no Python per message) into a
   ring with a subscriber, in windows of ``--window`` s, while this process,
   pinned to CPU 1, does one of: nothing; a Python busy loop (the control:
   CPU 1 busy, no ring touched); ring snapshots back to back (what a scrape
   does to the rings, the hot one among them, as fast as it can); scrapes
   of ``/metrics`` back to back; one scrape a second (Prometheus' default
   interval is 15 s). The phases alternate for ``--rounds`` rounds; medians
   of msgs/s are printed. A cost of scraping on the hot path would show as
   the snapshot rows falling below the busy-loop row.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from _pybench import DTYPE, pin

import ringcast
from ringcast import _host_stats
from ringcast._native import bench_publish
from ringcast.serve._http import start_http
from ringcast.serve._metrics import ServiceCollector

PER_RING = 1000
READ = 100


def hold_subscribers(ring_dir: str, names: list[str], n: int, conn: Connection) -> None:
    subs = []
    for name in names:
        for _ in range(n):
            sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
            got = 0
            while got < READ:
                got += len(sub.recv_batch(READ - got, timeout=5.0))
            subs.append(sub)
    conn.send(len(subs))
    conn.recv()  # until told to go
    for s in subs:
        s.close()


def publish_flat_out(ring_dir: str, name: str, window: float, conn: Connection) -> None:
    pin(0)
    pub = ringcast.Publisher.attach(name, dir=ring_dir)
    conn.send("ready")
    while conn.recv() == "go":
        start = time.monotonic_ns()
        run = bench_publish(pub, size=DTYPE.itemsize, rate=None, start_ns=start,
                            end_ns=start + int(window * 1e9))  # fmt: skip
        conn.send(run["published"] / window)
    pub.close()


def status_of(names: list[str]) -> Any:
    hists = []
    rng = np.random.default_rng(1)
    for _ in range(4):
        h = ringcast.LatencyHistogram()
        h.record_many(rng.lognormal(10, 1.0, 100_000).astype(np.int64))
        hists.append(h.encode())
    started = time.time()

    def status() -> dict[str, Any]:
        items = [
            {"name": n, "kind": "ring", "state": "running", "pid": None, "restarts": 0,
             "started_unix": started, "last_exit": None, "report": {}, "latency": None}
            for n in names
        ]  # fmt: skip
        items += [
            {"name": f"strategy{i}", "kind": "stage", "state": "running", "pid": os.getpid(),
             "restarts": 0, "started_unix": started, "last_exit": None,
             "report": {"processed": 1000 * i}, "latency": {"hdr": h, "what": "wire_to_strategy"}}
            for i, h in enumerate(hists)
        ]  # fmt: skip
        return {
            "service": {"name": "bench", "pid": os.getpid(), "started_unix": started,
                        "config": "bench.toml", "state": "running", "reloads": 0,
                        "last_reload_error": None},
            "items": items,
        }  # fmt: skip

    return status


def ms(xs: list[float]) -> str:
    return f"{min(xs) * 1e3:7.1f} {statistics.median(xs) * 1e3:7.1f} {max(xs) * 1e3:7.1f}"


def timed(fn: Any, n: int) -> tuple[list[float], Any]:
    out, last = [], None
    for _ in range(n):
        t = time.perf_counter()
        last = fn()
        out.append(time.perf_counter() - t)
    return out, last


# What Prometheus 2.x sends, so it gets OpenMetrics.
OPENMETRICS = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def get(url: str, accept: str | None = None) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rings", type=int, default=100)
    ap.add_argument("--subscribers", type=int, default=8)
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--scrapes", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--window", type=float, default=1.0)
    args = ap.parse_args()
    assert args.subscribers % args.processes == 0, "--subscribers must divide by --processes"

    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    ring_dir = tempfile.mkdtemp(prefix="ringcast-metrics-bench-", dir=base)
    ctx = mp.get_context("spawn")
    children: list[Any] = []
    pubs = []
    try:
        names = [f"bench.r{i:03d}" for i in range(args.rings)]
        recs = np.zeros(PER_RING, DTYPE)
        recs["seq"] = np.arange(PER_RING)
        for name in names:
            pub = ringcast.Publisher.create(name, dtype=DTYPE, capacity=4096, dir=ring_dir)
            pub.publish_batch(recs)
            pubs.append(pub)
        conns = []
        for _ in range(args.processes):
            here, there = ctx.Pipe()
            p = ctx.Process(
                target=hold_subscribers,
                args=(ring_dir, names, args.subscribers // args.processes, there),
                daemon=True,
            )
            p.start()
            children.append(p)
            conns.append(here)
        held = sum(c.recv() for c in conns)
        assert held == args.rings * args.subscribers, held

        pin(1)
        status = status_of(names)
        server = start_http("127.0.0.1", 0, ring_dir, status)
        url = server.url
        snap_t, snap = timed(lambda: _host_stats.snapshot(ring_dir), args.scrapes)
        assert sum(len(r["subscribers"]) for r in snap["rings"]) == held
        collector = ServiceCollector(ring_dir, status)
        collect_t, _ = timed(lambda: list(collector.collect()), args.scrapes)
        get(url + "metrics")  # warm
        metrics_t, body = timed(lambda: get(url + "metrics"), args.scrapes)
        om_t, _ = timed(lambda: get(url + "metrics", OPENMETRICS), args.scrapes)
        status_t, status_body = timed(lambda: get(url + "status.json"), args.scrapes)
        lines = [x for x in body.decode().splitlines() if x and not x.startswith("#")]

        print(f"ringcast {ringcast.__version__}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, {platform.machine()}")  # fmt: skip
        print(
            f"{args.rings} rings x {args.subscribers} subscribers ({held} in {args.processes} "
            f"processes), {len(names) + 4} status items, 4 latency histograms"
        )
        print(f"/metrics: {len(body):,} bytes, {len(lines):,} samples; "
              f"/status.json: {len(status_body):,} bytes")  # fmt: skip
        print(f"\n{args.scrapes} scrapes, one after another     min  median     max (ms)")
        print(f"  ring snapshot alone (_host_stats)  {ms(snap_t)}")
        print(f"  collector alone (no encoding)      {ms(collect_t)}")
        print(f"  GET /metrics (text format)         {ms(metrics_t)}")
        print(f"  GET /metrics (OpenMetrics)         {ms(om_t)}")
        print(f"  GET /status.json                   {ms(status_t)}")

        # Hot path: a flat-out publisher while scraping.
        hot = "bench.hot"
        ringcast.Publisher.create(hot, dtype=DTYPE, capacity=65536, dir=ring_dir).close()
        reader = ringcast.Subscriber.attach(hot, dir=ring_dir)  # attached, never reads (lossy)
        here, there = ctx.Pipe()
        p = ctx.Process(target=publish_flat_out, args=(ring_dir, hot, args.window, there))
        p.start()
        children.append(p)
        assert here.recv() == "ready"
        snapshot_hot = lambda: _host_stats.snapshot(ring_dir)  # noqa: E731
        actions: dict[str, tuple[Any, float]] = {  # what CPU 1 does, and its pause
            "idle": (None, 0.0),
            "busy loop (control)": (lambda: sum(range(10_000)), 0.0),
            "snapshots back to back": (snapshot_hot, 0.0),
            "/metrics back to back": (lambda: get(url + "metrics"), 0.0),
            "/metrics once a second": (lambda: get(url + "metrics"), 1.0),
        }
        phases: dict[str, list[float]] = {phase: [] for phase in actions}
        done = dict.fromkeys(actions, 0)  # actions finished within the windows
        for _ in range(args.rounds):
            for phase, (action, pause) in actions.items():
                stop = threading.Event()

                def work(action: Any = action, pause: float = pause, phase: str = phase,
                         stop: threading.Event = stop) -> None:  # fmt: skip
                    while action is not None and not stop.is_set():
                        action()
                        done[phase] += 1
                        if pause:
                            stop.wait(pause)

                t = threading.Thread(target=work)
                here.send("go")
                t.start()
                phases[phase].append(here.recv())
                stop.set()
                t.join()
        here.send("stop")
        p.join(30)
        reader.close()
        print(
            f"\nflat-out publisher on CPU 0 while this process, on CPU 1, does each of these; "
            f"{args.rounds} rounds of {args.window:g} s; median Mmsgs/s (min-max)"
        )
        for phase, rates in phases.items():
            per = done[phase] / (args.rounds * args.window)
            med, lo, hi = (f(rates) / 1e6 for f in (statistics.median, min, max))
            print(f"  {phase:<24} {med:7.2f}  ({lo:.2f}-{hi:.2f})  {per:6.1f} a second")
        server.close()
        for c in conns:
            c.send("go")
    finally:
        for pub in pubs:
            pub.close()
        for p in children:
            p.join(10)
            if p.is_alive():
                p.kill()
        shutil.rmtree(ring_dir, ignore_errors=True)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
