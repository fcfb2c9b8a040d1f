"""Start-up and shutdown times of ``ringcast serve``.

    python benches/serve_lifecycle.py [--runs 5] [--rings 100] [--stages 4]

Each run starts ``ringcast serve`` on a generated config (``--rings`` rings
of 64-byte slots x 4096, ``--stages`` reader/writer stage pairs, each pair on
its own ring) and times (1) from the command's start to its ``ready`` line
(every ring created, every stage process started and ready), (2) from
SIGTERM to the command's exit (every stage drained and stopped, every ring
removed). Prints min / median / max over the runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = """
import time

def writer(ctx, ring):
    with ctx.publisher(ring) as pub:
        while not ctx.stopping():
            pub.publish(b"x" * 64)
            time.sleep(0.001)

def reader(ctx, ring):
    import ringcast
    with ctx.subscribe(ring) as sub:
        while not ctx.stopping():
            try:
                sub.recv(timeout=0.1)
            except ringcast.Timeout:
                pass
            except ringcast.RingClosed:
                return
            ctx.processed()
"""


def config(work: Path, rings: int, stages: int) -> Path:
    text = f'[service]\ndir = "{work / "rings"}"\npath = ["{work}"]\n'
    for i in range(rings):
        text += f'\n[rings."bench.r{i}"]\nslot_size = 64\ncapacity = 4096\n'
    for i in range(stages):
        text += (
            f'\n[stages.w{i}]\nfunction = "bench_stages:writer"\nargs = {{ ring = "bench.r{i}" }}'
            f'\nwrites = ["bench.r{i}"]\n'
            f'\n[stages.r{i}]\nfunction = "bench_stages:reader"\nargs = {{ ring = "bench.r{i}" }}'
            f'\nreads = ["bench.r{i}"]\n'
        )
    (work / "bench_stages.py").write_text(STAGES)
    path = work / "svc.toml"
    path.write_text(text)
    return path


def one_run(path: Path) -> tuple[float, float]:
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ringcast", "serve", str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if " ready (" in line:
            break
    else:
        raise RuntimeError(f"ringcast serve exited with {proc.wait()} before it was ready")
    ready = time.monotonic() - t0
    time.sleep(0.5)
    t1 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.stdout.read()
    code = proc.wait()
    stopped = time.monotonic() - t1
    if code != 0:
        raise RuntimeError(f"ringcast serve exited with {code}")
    return ready, stopped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rings", type=int, default=100)
    ap.add_argument("--stages", type=int, default=4, help="writer/reader pairs")
    args = ap.parse_args()
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    work = Path(tempfile.mkdtemp(prefix="ringcast-bench-", dir=base))
    try:
        path = config(work, max(args.rings, args.stages), args.stages)
        runs = [one_run(path) for _ in range(args.runs)]
        left = os.listdir(work / "rings")
        assert not left, f"rings left behind: {left}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    items = max(args.rings, args.stages) + 2 * args.stages
    print(f"ringcast serve: {max(args.rings, args.stages)} rings + {2 * args.stages} stage "
          f"processes ({items} items), {args.runs} runs, {os.cpu_count()} CPUs")  # fmt: skip
    for label, values in (("start-up to ready", [r for r, _ in runs]),
                          ("SIGTERM to exit  ", [s for _, s in runs])):  # fmt: skip
        print(f"  {label}: min {min(values):.3f} s  median {statistics.median(values):.3f} s  "
              f"max {max(values):.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
