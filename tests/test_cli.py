"""The command line, end to end, in fresh interpreter processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ringcast

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


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


def test_list_goes_on_past_dangling_links_and_other_files(ring_dir):
    """A huge-page ring whose file was removed by hand leaves a dangling
    link under its name: `ringcast list` says so and lists the rest."""
    os.symlink("/dev/hugepages/gone.ring", os.path.join(ring_dir, "a.dangling.ring"))
    os.mkfifo(os.path.join(ring_dir, "b.fifo.ring"))
    with ringcast.Publisher.create("c.real", slot_size=8, capacity=8, dir=ring_dir):
        done = run_cli("list", "--dir", ring_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["a.dangling", "b.fifo", "c.real"]
    assert "dangling link" in lines[0] and "not a ring file" in lines[1]
    assert "bytes" in lines[2]


def test_demo_refuses_bad_settings_before_starting_anything(ring_dir):
    t0 = time.monotonic()
    done = run_cli("demo", "--capacity", "3", "--dir", ring_dir, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert time.monotonic() - t0 < 10
    assert "power of two" in done.stderr and "Traceback" not in done.stderr
    assert os.listdir(ring_dir) == []
    for args, says in (
        (["--messages", "60000000"], "1,000 to 50,000,000 messages"),
        (["--drop", "70"], "percentage from 0 to 50"),
    ):
        done = run_cli("demo", *args, "--dir", ring_dir, timeout=60)
        assert done.returncode == 2 and says in done.stderr, done.stderr
        assert os.listdir(ring_dir) == []


def test_ctrl_c_on_the_demo_stops_everything_quietly(ring_dir):
    """As a terminal does: SIGINT to the whole process group."""
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ringcast",
            "demo",
            "--rate",
            "5000",
            "--messages",
            "200000",
            "--dir",
            ring_dir,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert "ringcast demo:" in demo.stdout.readline()  # running
        time.sleep(0.5)
        os.killpg(demo.pid, signal.SIGINT)
        _, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    assert demo.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err, err
    assert os.listdir(ring_dir) == [], "the ring file was left behind"
    # Nothing of the process group is left running (multiprocessing's
    # resource tracker leaves once it sees the demo gone).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(demo.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        survivors = subprocess.run(
            ["ps", "-o", "pid,stat,args", "-g", str(demo.pid)], capture_output=True, text=True
        ).stdout
        raise AssertionError(f"demo processes survived:\n{survivors}")


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_examples_print_help_instead_of_running(example):
    done = subprocess.run(
        [sys.executable, str(example), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:"), done.stdout


def test_feed_handler_and_strategy_examples_talk(ring_dir):
    pace = ["--rate", "2000", "--seconds", "0.5"]
    feed = subprocess.run(
        [sys.executable, str(EXAMPLES / "feed_handler.py"), "--dir", ring_dir, *pace],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert feed.returncode == 0, feed.stderr
    published = int(feed.stdout.split("published ")[-1].split()[0])
    strategy = subprocess.run(
        [sys.executable, str(EXAMPLES / "strategy.py"), "--dir", ring_dir, "--start", "oldest"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert strategy.returncode == 0, strategy.stderr
    assert f"feed closed: received {published}, lost 0" in strategy.stdout, strategy.stdout


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
