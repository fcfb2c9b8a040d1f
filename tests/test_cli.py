"""The command line, end to end, in fresh interpreter processes."""

from __future__ import annotations

import subprocess
import sys

import ringcast


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ringcast", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_runs_end_to_end(ring_dir):
    done = run_cli(
        "demo", "--subscribers", "2", "--rate", "20000", "--duration", "0.5", "--dir", ring_dir
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "all checks passed" in out
    assert "p99.9 us" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2  # one summary row per strategy
    assert ringcast.list_rings(ring_dir) == []  # the demo cleans up its ring


def test_list_shows_rings(ring_dir):
    with ringcast.Publisher.create("md.trades", slot_size=32, capacity=8, dir=ring_dir):
        done = run_cli("list", "--dir", ring_dir)
    assert done.returncode == 0
    assert done.stdout.startswith("md.trades\t")


def test_bad_arguments_are_refused():
    done = run_cli("demo", "--subscribers", "0")
    assert done.returncode == 2
    assert "must be > 0" in done.stderr


def test_console_script_is_installed():
    from pathlib import Path

    script = Path(sys.executable).parent / "ringcast"
    assert script.exists(), f"pip did not install the ringcast console script at {script}"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("ringcast ")
