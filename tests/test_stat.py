"""``ringcast stat`` and the figures it shares with the metrics
(``ringcast._host_stats``), against rings that other processes publish
into and read: the figures are the rings' own counters, rates follow the
traffic, wait strategies and deaths show, a damaged ring file is listed as
unreadable without failing, and the live and plain views show the rings."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ringcast
from ringcast import _host_stats

WORKER = str(Path(__file__).with_name("_stat_worker.py"))

TOP_KEYS = {"time", "monotonic", "dir", "rings", "unreadable"}
RING_KEYS = {
    "name", "path", "capacity", "slot_size", "schema", "mode", "producers", "timestamps",
    "published", "evictions", "publisher", "producer_records", "subscribers", "rate",
}  # fmt: skip
SUB_KEYS = {
    "index", "pid", "alive", "state", "stage", "position", "lag", "received", "lost",
    "wait", "parked", "rate", "lost_rate",
}  # fmt: skip


class Worker:
    """A publisher or subscriber process speaking _stat_worker's protocol."""

    def __init__(self, role: str, name: str, dir: str, **opts: Any) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, role, name, dir, json.dumps(opts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self.reply(60)
        assert ready["ready"], ready
        self.pid: int = ready["pid"]

    def reply(self, timeout: float = 60) -> dict[str, Any]:
        assert self.proc.stdout is not None
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert r, f"worker {self.proc.args} did not answer in {timeout} s"
        line = self.proc.stdout.readline()
        assert line, f"worker {self.proc.args} exited with {self.proc.wait()}"
        return json.loads(line)

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def ask(self, timeout: float = 60, **cmd: Any) -> dict[str, Any]:
        self.send(**cmd)
        return self.reply(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


def stat(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ringcast", "stat", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def stat_json(dir: str, interval: float = 0.2) -> dict[str, Any]:
    return json.loads(stat("--json", "--dir", dir, "--interval", str(interval)).stdout)


def by_name(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in figures["rings"]}


def sub_of(ring: dict[str, Any], pid: int) -> dict[str, Any]:
    (found,) = [s for s in ring["subscribers"] if s["pid"] == pid]
    return found


class Host:
    """Rings made and used by other processes, as on a host:

    - ``a.lossy``: a lossy ring (64 slots) with an active adaptive
      subscriber that is stage ``risk``, two lazy ones (busy_spin,
      yielding) that get lapped, and one killed with SIGKILL;
    - ``b.bounded``: a bounded ring (16 slots, liveness 0.5 s) with an active
      parking subscriber and a lazy one that gets evicted;
    - ``c.mp``: a multi-producer ring with two producer processes and a
      subscriber blocked in ``recv()`` (parked);
    - ``d.closed``: its publisher closed it (and lives on);
    - ``e.dead``: its publisher was killed;
    - ``junk``: a ring file that is not a ring.
    """

    def __init__(self, dir: str) -> None:
        self.dir = dir
        self.workers: list[Worker] = []
        self.a = self.pub("a.lossy", create={"capacity": 64})
        self.a_stage = self.sub("a.lossy", wait="adaptive", stage="risk", mode="active")
        self.a_spin = self.sub("a.lossy", wait="busy_spin", mode="lazy")
        self.a_yield = self.sub("a.lossy", wait="yielding", mode="lazy")
        # Not parking: a publisher sweeps the record of a reader that died
        # parked (it would be woken in vain on every publish).
        self.a_dead = self.sub("a.lossy", wait="yielding", mode="active")
        self.b = self.pub("b.bounded", create={"capacity": 16, "bounded": True,
                                               "liveness_timeout": 0.5})  # fmt: skip
        self.b_park = self.sub("b.bounded", wait="park", mode="active")
        self.b_lazy = self.sub("b.bounded", wait="yielding", mode="lazy")
        self.c1 = self.pub("c.mp", create={"capacity": 256, "producers": "many"})
        self.c2 = self.pub("c.mp", attach=True)
        self.c_block = self.sub("c.mp", wait="park", mode="block")
        self.d = self.pub("d.closed", create={"capacity": 8})
        self.e = self.pub("e.dead", create={"capacity": 8})

        self.a.ask(cmd="publish", n=100)
        self.settle(self.a, [self.a_dead])
        self.dead_counters = self.a_dead.ask(cmd="report")
        self.a_dead.kill()
        self.b.ask(cmd="publish", n=200)  # held back by b_lazy until it is evicted
        self.c1.ask(cmd="publish", n=70)
        self.c2.ask(cmd="publish", n=50)
        self.d.ask(cmd="publish", n=5)
        self.d.ask(cmd="close")
        self.e.ask(cmd="publish", n=3)
        self.e.kill()
        Path(dir, "junk.ring").write_bytes(b"not a ring" * 500)

    def pub(self, name: str, **opts: Any) -> Worker:
        w = Worker("pub", name, self.dir, **opts)
        self.workers.append(w)
        return w

    def sub(self, name: str, **opts: Any) -> Worker:
        w = Worker("sub", name, self.dir, **opts)
        self.workers.append(w)
        return w

    def settle(self, pub: Worker, subs: list[Worker]) -> None:
        """Waits until the active subscribers ``subs`` read everything ``pub`` published."""
        target = pub.ask(cmd="report")["sequence"]
        deadline = time.monotonic() + 30
        while any(s.ask(cmd="report")["position"] < target for s in subs):
            assert time.monotonic() < deadline, "the subscribers did not catch up"
            time.sleep(0.05)

    def close(self) -> None:
        for w in self.workers:
            w.kill()


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="ringcast-stat-", dir=base)
    h = Host(d)
    try:
        yield h
    finally:
        h.close()
        shutil.rmtree(d, ignore_errors=True)


def test_figures_are_the_rings_own_counters(host):
    host.a.ask(cmd="publish", n=150)
    host.settle(host.a, [host.a_stage])
    a_seq = host.a.ask(cmd="report")["sequence"]
    own = {w.pid: w.ask(cmd="report") for w in (host.a_stage, host.a_spin, host.a_yield)}
    b_seq = host.b.ask(cmd="report")["sequence"]
    host.settle(host.b, [host.b_park])
    own[host.b_park.pid] = host.b_park.ask(cmd="report")
    own[host.b_lazy.pid] = host.b_lazy.ask(cmd="report")
    producers = {w.pid: w.ask(cmd="report") for w in (host.c1, host.c2)}

    figures = stat_json(host.dir)
    assert set(figures) == TOP_KEYS
    assert figures["dir"] == host.dir
    assert [r["name"] for r in figures["rings"]] == ["a.lossy", "b.bounded", "c.mp",
                                                      "d.closed", "e.dead"]  # fmt: skip
    for ring in figures["rings"]:
        assert set(ring) == RING_KEYS, ring["name"]
        assert set(ring["publisher"]) == {"pid", "alive", "closed"}
        for s in ring["subscribers"]:
            assert set(s) == SUB_KEYS
            assert s["lag"] == max(0, ring["published"] - s["position"])
        for p in ring["producer_records"]:
            assert set(p) == {"index", "pid", "alive", "published"}
    rings = by_name(figures)

    a = rings["a.lossy"]
    assert (a["mode"], a["producers"], a["capacity"], a["slot_size"]) == ("lossy", "one", 64, 8)
    assert a["published"] == a_seq >= 250
    assert a["publisher"] == {"pid": host.a.pid, "alive": True, "closed": False}
    for pid, counters in own.items():
        if pid in (host.b_park.pid, host.b_lazy.pid):
            continue
        s = sub_of(a, pid)
        assert (s["received"], s["lost"], s["position"]) == (
            counters["received"], counters["lost"], counters["position"],
        ), s  # fmt: skip
        assert s["alive"] and s["state"] == "active" and s["lag"] == 0
        assert s["received"] + s["lost"] == a_seq
    assert sub_of(a, host.a_spin.pid)["lost"] > 0, "a lazy reader of 64 slots is lapped"
    assert sub_of(a, host.a_stage.pid)["stage"] == "risk"
    assert sub_of(a, host.a_spin.pid)["stage"] is None
    waits = {s["pid"]: s["wait"] for s in a["subscribers"]}
    assert waits == {
        host.a_stage.pid: "adaptive",
        host.a_spin.pid: "spin",
        host.a_yield.pid: "yield",
        host.a_dead.pid: "yield",
    }
    dead = sub_of(a, host.a_dead.pid)
    assert not dead["alive"] and dead["state"] == "active"
    assert (dead["received"], dead["lost"], dead["position"]) == (
        host.dead_counters["received"], host.dead_counters["lost"],
        host.dead_counters["position"],
    )  # fmt: skip
    assert dead["position"] == 100 and dead["lag"] == a_seq - 100

    b = rings["b.bounded"]
    assert (b["mode"], b["producers"]) == ("bounded", "one")
    assert b["published"] == b_seq == 200
    assert b["evictions"] == 1
    park = sub_of(b, host.b_park.pid)
    assert (park["received"], park["lost"], park["position"], park["wait"]) == (
        200, 0, 200, "park",
    )  # fmt: skip
    lazy = sub_of(b, host.b_lazy.pid)
    assert own[host.b_lazy.pid]["evicted"]
    assert lazy["alive"] and lazy["state"] == "evicted" and lazy["wait"] == "yield"
    assert (lazy["received"], lazy["lost"], lazy["position"]) == (
        own[host.b_lazy.pid]["received"], own[host.b_lazy.pid]["lost"],
        own[host.b_lazy.pid]["position"],
    )  # fmt: skip

    c = rings["c.mp"]
    assert c["producers"] == "many"
    assert c["published"] == 120
    assert all(p["sequence"] == 120 for p in producers.values())
    assert {p["pid"]: p["published"] for p in c["producer_records"]} == {
        pid: p["published"] for pid, p in producers.items()
    }
    assert sorted(p["published"] for p in producers.values()) == [50, 70]
    assert all(p["alive"] for p in c["producer_records"])
    assert c["publisher"]["alive"] and not c["publisher"]["closed"]

    d = rings["d.closed"]
    assert d["published"] == 5
    assert d["publisher"]["closed"] and not d["publisher"]["alive"]
    assert d["subscribers"] == []
    e = rings["e.dead"]
    assert e["published"] == 3
    assert e["publisher"] == {"pid": host.e.pid, "alive": False, "closed": False}

    assert [u["name"] for u in figures["unreadable"]] == ["junk"]
    assert "not a valid ringcast ring" in figures["unreadable"][0]["error"]

    # Nothing moved during the interval: every rate is zero, none missing.
    for ring in figures["rings"]:
        assert ring["rate"] == 0.0, ring["name"]
        for s in ring["subscribers"]:
            assert s["rate"] == 0.0 and s["lost_rate"] == 0.0


def test_a_parked_reader_shows_parked_and_its_changed_wait(host):
    deadline = time.monotonic() + 30
    while True:
        c = by_name(_host_stats.snapshot(host.dir))["c.mp"]
        block = sub_of(c, host.c_block.pid)
        if block["parked"] == 1:
            break
        assert time.monotonic() < deadline, block
        time.sleep(0.05)
    assert block["wait"] == "park" and block["lag"] == 0
    assert host.a_yield.ask(cmd="wait", kind="park") == {}
    a = by_name(_host_stats.snapshot(host.dir))["a.lossy"]
    assert sub_of(a, host.a_yield.pid)["wait"] == "park"
    assert host.a_yield.ask(cmd="wait", kind="yielding") == {}
    a = by_name(_host_stats.snapshot(host.dir))["a.lossy"]
    assert sub_of(a, host.a_yield.pid)["wait"] == "yield"


def test_rates_follow_a_running_publisher(host):
    rate = 2000
    host.a.send(cmd="pace", seconds=3.0, rate=rate)
    time.sleep(0.5)
    figures = stat_json(host.dir, interval=1.5)
    host.a.reply()
    a = by_name(figures)["a.lossy"]
    print(f"publisher at {rate}/s measured at {a['rate']:.0f}/s")
    assert 0.5 * rate < a["rate"] < 1.5 * rate
    reader = sub_of(a, host.a_stage.pid)
    assert 0.5 * rate < reader["rate"] < 1.5 * rate
    assert reader["lost_rate"] == 0.0
    assert sub_of(a, host.a_spin.pid)["rate"] == 0.0, "a lazy reader reads nothing"
    # (The dead reader's record may be gone: a publisher whose wakes of
    # parked readers keep finding nobody asleep sweeps dead records.)
    assert by_name(figures)["b.bounded"]["rate"] == 0.0


def test_with_rates_matches_by_index_and_pid_and_needs_a_previous_figure():
    def snap(mono, published, subs):
        ring = {"name": "r", "path": "/r.ring", "published": published, "subscribers": subs}
        return {"time": 0.0, "monotonic": mono, "dir": "/", "rings": [ring], "unreadable": []}

    def sub(index, pid, received, lost):
        return {"index": index, "pid": pid, "received": received, "lost": lost}

    first = snap(10.0, 100, [sub(0, 7, 90, 10), sub(1, 8, 0, 0)])
    second = snap(12.0, 300, [sub(0, 7, 250, 30), sub(1, 9, 5, 0)])
    got = _host_stats.with_rates(first, second)["rings"][0]
    assert got["rate"] == 100.0
    assert (got["subscribers"][0]["rate"], got["subscribers"][0]["lost_rate"]) == (90.0, 10.0)
    assert got["subscribers"][1]["rate"] is None, "another pid in record 1: a new subscriber"
    assert _host_stats.with_rates(None, second)["rings"][0]["rate"] is None
    remade = _host_stats.with_rates(second, snap(13.0, 5, []))["rings"][0]
    assert remade["rate"] is None, "a counter that went back: a ring made anew"
    assert "rate" not in second["rings"][0], "the snapshots are not changed"


def test_snapshot_of_a_vanishing_ring_lists_it_unreadable(ring_dir, monkeypatch):
    pub = ringcast.Publisher.create("here", dir=ring_dir, slot_size=8, capacity=8)
    real = ringcast.list_rings
    monkeypatch.setattr(ringcast._api, "list_rings", lambda d=None: [*real(d), "gone"])
    figures = _host_stats.snapshot(ring_dir)
    assert [r["name"] for r in figures["rings"]] == ["here"]
    assert [u["name"] for u in figures["unreadable"]] == ["gone"]
    assert 'no ring named "gone"' in figures["unreadable"][0]["error"]
    pub.close()


def test_once_prints_a_table_of_rings_and_subscribers(host):
    out = stat("--once", "--dir", host.dir, "--interval", "0.1").stdout
    for text in ("a.lossy", "b.bounded", "c.mp", "d.closed", "e.dead", "stage risk",
                 "evicted", "closed", "dead", "adaptive", "spin", "yield", "park",
                 "unreadable junk", "PUBLISHED/POS", "LAG %"):  # fmt: skip
        assert text in out, f"{text!r} not in\n{out}"
    assert f"{host.a.ask(cmd='report')['sequence']:,}" in out
    lines = out.splitlines()
    ring_line = next(line for line in lines if line.startswith("a.lossy"))
    assert "lossy, one producer" in ring_line and str(host.a.pid) in ring_line
    assert "bounded" in next(line for line in lines if line.startswith("b.bounded"))


def test_no_rings_and_bad_directories(ring_dir, tmp_path):
    done = stat("--once", "--dir", ring_dir, "--interval", "0.05")
    assert "no rings in" in done.stdout
    empty = json.loads(stat("--json", "--dir", ring_dir, "--interval", "0.05").stdout)
    assert empty["rings"] == [] and empty["unreadable"] == []
    missing = stat("--once", "--dir", str(tmp_path / "nope"), check=False)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.startswith("ringcast stat: no ring directory")
    assert "--dir" in missing.stderr and len(missing.stderr.splitlines()) == 1
    file = tmp_path / "file"
    file.write_text("x")
    not_dir = stat("--json", "--dir", str(file), check=False)
    assert not_dir.returncode == 1 and "is not a directory" in not_dir.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--interval", "0"], "must be > 0"),
        (["--interval", "-1"], "must be > 0"),
        (["--interval", "nan"], "must be > 0"),
        (["--interval", "soon"], "must be a number of seconds"),
        (["--interval", "1e9"], "at most 3600"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_are_refused(args, says):
    done = stat(*args, check=False)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def _small_ring(ring_dir: str) -> tuple[Any, Any]:
    pub = ringcast.Publisher.create("live.view", dir=ring_dir, slot_size=8, capacity=8)
    sub = ringcast.Subscriber.attach("live.view", dir=ring_dir, wait=ringcast.WaitStrategy.park())
    pub.publish(b"12345678")
    return pub, sub


def test_live_view_on_a_terminal_refreshes_until_ctrl_c(ring_dir):
    pub, sub = _small_ring(ring_dir)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ringcast", "stat", "--dir", ring_dir, "--interval", "0.2"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "200", "LINES": "40"},
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    try:
        while out.count(b"ringcast stat ") < 4 and time.monotonic() < deadline:
            if select.select([master], [], [], 1)[0]:
                out += os.read(master, 65536)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = out.decode(errors="replace")
    assert text.count("ringcast stat ") >= 4, text
    assert "live.view" in text and "park" in text
    assert "Traceback" not in text and "interrupted" in text
    sub.close()
    pub.close()


def test_plain_tables_stream_when_not_a_terminal(ring_dir):
    pub, sub = _small_ring(ring_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ringcast", "stat", "--dir", ring_dir, "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 60
    while len([line for line in seen if line.startswith("ringcast stat ")]) < 2:
        assert time.monotonic() < deadline, seen
        seen.append(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip() == "ringcast stat: interrupted"
    text = "".join(seen)
    assert "\x1b[" not in text, "no terminal codes in a pipe"
    assert "live.view" in text and "alive" in text
    sub.close()
    pub.close()
