"""What a scraped ``ringcast serve`` costs the rings' hot path, in one run.

    python benches/metrics_hot_path.py [--rounds 3] [--duration 3] [--scrape-every 0.25]

Starts ``ringcast serve`` on an empty config whose ring directory is the one
``ringcast bench`` then uses, so every scrape of ``/metrics`` reads the
benchmark's ring (header, cursor, subscriber records) while its publisher
and subscriber run. Alternates rounds without scraping and with a scraper
fetching ``/metrics`` every ``--scrape-every`` seconds (Prometheus' default
is 15 s; 0.25 s is 60x harsher), each round measuring:

* flat out: ``ringcast bench --rate 0`` (publisher on CPU 0, subscriber on
  CPU 1), messages/s the subscriber received;
* paced: ``ringcast bench --rate 100000``, one-way latency p50 / p99 (ns).

Prints every round and the median ratio scraped / not scraped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path


def bench(ring_dir: str, duration: float, rate: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "ringcast", "bench", "--dir", ring_dir, "--duration",
         str(duration), "--warmup", "0.5", "--rate", str(rate), "--json", "-q"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


class Scraper(threading.Thread):
    def __init__(self, url: str, every: float) -> None:
        super().__init__(daemon=True)
        self.url, self.every, self.stop, self.times = url, every, threading.Event(), []

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            with urllib.request.urlopen(self.url, timeout=30) as r:
                r.read()
            self.times.append(time.perf_counter() - t0)
            self.stop.wait(self.every)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--scrape-every", type=float, default=0.25)
    args = ap.parse_args()
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    work = Path(tempfile.mkdtemp(prefix="ringcast-bench-", dir=base))
    ring_dir = str(work / "rings")
    os.mkdir(ring_dir)
    cfg = work / "svc.toml"
    cfg.write_text(f'[service]\nname = "bench"\ndir = "{ring_dir}"\n')
    serve = subprocess.Popen(
        [sys.executable, "-m", "ringcast", "serve", str(cfg), "--metrics", "127.0.0.1:0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        url = None
        for line in serve.stdout:
            if "metrics on " in line:
                url = line.split("metrics on ")[1].strip() + "metrics"
            if " ready (" in line:
                break
        assert url, "ringcast serve did not start its metrics server"
        rows = []
        for r in range(args.rounds):
            for scraped in (False, True):
                scraper = Scraper(url, args.scrape_every) if scraped else None
                if scraper:
                    scraper.start()
                flat = bench(ring_dir, args.duration, 0)
                paced = bench(ring_dir, args.duration, 100_000)
                scrapes = 0
                if scraper:
                    scraper.stop.set()
                    scraper.join()
                    scrapes = len(scraper.times)
                pct = paced["latency_ns"]["percentiles"]
                rows.append((scraped, flat["received_per_second"], pct["50.0"], pct["99.0"]))
                print(f"round {r + 1} {'scraped    ' if scraped else 'not scraped'}: flat out "
                      f"{flat['received_per_second'] / 1e6:6.2f} M msgs/s   paced 100k/s p50 "
                      f"{pct['50.0']:>8,} ns  p99 {pct['99.0']:>11,} ns"
                      + (f"   ({scrapes} scrapes)" if scraped else ""), flush=True)  # fmt: skip
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
        shutil.rmtree(work, ignore_errors=True)

    def med(scraped: bool, i: int) -> float:
        return statistics.median(row[i] for row in rows if row[0] == scraped)

    print(f"median ratio scraped / not scraped ({os.cpu_count()} CPUs): flat out "
          f"{med(True, 1) / med(False, 1):.2f}x, p50 {med(True, 2) / med(False, 2):.2f}x, "
          f"p99 {med(True, 3) / med(False, 3):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
