"""``ringcast serve`` across processes: items killed with SIGKILL are
restarted and reported, a crash loop backs off, a stalled stage is
restarted, SIGTERM stops everything within the deadline leaving no process
and no ring, SIGHUP adds and removes rings live (and refuses what cannot
change live), and the demo runs as a service."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import ringcast

TESTS = Path(__file__).resolve().parent


class Service:
    """A ``ringcast serve`` process and its log lines (with arrival times)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ringcast", "serve", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def log(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, pattern: str, timeout: float = 60.0, start: int = 0) -> re.Match[str]:
        """The first log line from index ``start`` on matching ``pattern``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, line in self.lines[start:]:
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no log line matching {pattern!r} in {timeout} s:\n{self.log()}")

    def index(self, pattern: str) -> int:
        """Index of the last log line matching ``pattern`` (-1: none)."""
        found = [i for i, (_, line) in enumerate(self.lines) if re.search(pattern, line)]
        return found[-1] if found else -1

    def pids(self) -> dict[str, int]:
        """The latest pid of every item started so far."""
        out = {}
        for _, line in self.lines:
            m = re.search(r" (\S+): started \(pid (\d+)\)", line)
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def stop(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def services() -> Iterator[list[Service]]:
    running: list[Service] = []
    yield running
    for s in running:
        s.kill()


def _config(tmp_path: Path, ring_dir: str, body: str, **service: object) -> Path:
    keys = {"dir": ring_dir, "path": [str(TESTS)], "restart_backoff": 0.1, **service}
    head = "[service]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in keys.items())
    path = tmp_path / "svc.toml"
    path.write_text(head + body)
    return path


def _toml(v: object) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)


RING = """
[rings."t.a"]
dtype = [["seq", "<u8"], ["value", "<f8"]]
capacity = 1024
"""

COUNTER = """
[stages.counter]
function = "_serve_stages:counter"
args = { ring = "t.a" }
writes = ["t.a"]
"""

READER = """
[stages.reader]
function = "_serve_stages:reader"
args = { ring = "t.a" }
reads = ["t.a"]
latency = "test"
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie of ours would still answer; the service reaps its children.
    return False


def _free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_killed_stage_is_restarted_and_its_ring_goes_on(
    tmp_path: Path, ring_dir: str, services: list[Service]
) -> None:
    svc = Service(str(_config(tmp_path, ring_dir, RING + COUNTER + READER)))
    services.append(svc)
    svc.wait_for(r"ready \(3 items\)")
    before = svc.pids()["stages.counter"]
    with ringcast.Subscriber.attach("t.a", dir=ring_dir, start="latest") as sub:
        first = sub.recv(timeout=10)["seq"]
        os.kill(before, signal.SIGKILL)
        svc.wait_for(r"stages.counter: killed by SIGKILL after [\d.]+ s; restart 1 in 0.10 s")
        svc.wait_for(r"stages.counter: ready", start=svc.index("restart 1 in"))
        after = svc.pids()["stages.counter"]
        assert after != before
        # The restarted publisher continues the ring's sequence: the reader
        # sees later sequences, each value still equal to its sequence.
        deadline = time.monotonic() + 10
        last = first
        while last < first + 50 and time.monotonic() < deadline:
            try:
                m = sub.recv(timeout=1)
            except ringcast.PublisherDied:
                continue
            assert m["value"] == float(m["seq"])
            last = m["seq"]
        assert last >= first + 50
    assert svc.pids()["stages.reader"]  # the reader was not restarted
    assert svc.index("stages.reader: .*restart") == -1, svc.log()
    assert svc.stop() == 0


def test_a_killed_feed_handler_is_restarted_on_its_rings(
    tmp_path: Path, ring_dir: str, services: list[Service]
) -> None:
    group = f"239.255.{os.getpid() % 250}.{(os.getpid() >> 8) % 250 + 1}:{_free_port()}"
    body = f'\n[feeds.f]\ngroup = "{group}"\nbus = "md"\n\n[books.f]\nbus = "md"\n'
    svc = Service(str(_config(tmp_path, ring_dir, body)))
    services.append(svc)
    svc.wait_for(r"ready \(2 items\)")
    assert "md.itch" in ringcast.list_rings(ring_dir)
    handler = svc.pids()["feeds.f"]
    os.kill(handler, signal.SIGKILL)
    svc.wait_for(r"feeds.f: killed by SIGKILL after [\d.]+ s; restart 1 in")
    svc.wait_for(r"feeds.f: ready", start=svc.index("feeds.f: killed"))
    assert svc.pids()["feeds.f"] != handler
    assert "md.itch" in ringcast.list_rings(ring_dir)
    assert svc.stop() == 0
    assert ringcast.list_rings(ring_dir) == []
    assert os.listdir(ring_dir) == []


def test_a_crash_loop_backs_off_and_is_reported(
    tmp_path: Path, ring_dir: str, services: list[Service]
) -> None:
    body = '\n[stages.bad]\nfunction = "_serve_stages:crash"\n'
    cfg = _config(tmp_path, ring_dir, body, restart_backoff=0.2, crash_loop_restarts=3)
    svc = Service(str(cfg))
    services.append(svc)
    svc.wait_for(r"stages.bad: .*restart 4 in 1.60 s", timeout=90)
    log = svc.log()
    delays = [float(d) for d in re.findall(r"restart \d+ in ([\d.]+) s", log)]
    assert delays[:3] == [0.2, 0.4, 1.6], log
    assert re.search(r"stages.bad: CRASH LOOP: 3 failures in 60 s, last: exited with status 1 "
                     r"\(RuntimeError: stage crashed on purpose \(restart 2\)\); restarts keep "
                     r"backing off \(next in 0.8 s\)", log), log  # fmt: skip
    # Each restart waited at least its delay after the failure before it.
    svc.wait_for(r"stages.bad: started", start=svc.index("restart 4 in"))
    exits = [t for t, line in svc.lines if re.search("stages.bad: (exited|CRASH LOOP)", line)]
    starts = [t for t, line in svc.lines if "stages.bad: started" in line]
    for i, delay in enumerate([0.2, 0.4, 0.8, 1.6]):
        assert starts[i + 1] - exits[i] >= delay - 0.02, (i, starts, exits)
    assert svc.stop() == 0


def test_a_stalled_stage_is_killed_and_restarted(
    tmp_path: Path, ring_dir: str, services: list[Service]
) -> None:
    body = '\n[stages.stuck]\nfunction = "_serve_stages:stall"\n'
    svc = Service(str(_config(tmp_path, ring_dir, body, health_timeout=1.0)))
    services.append(svc)
    svc.wait_for(r"stages.stuck: no progress for 1\.\d s \(health_timeout = 1\); killing it")
    svc.wait_for(r"stages.stuck: killed by SIGKILL \(stalled: no progress for 1\.\d s\)")
    svc.wait_for(r"stages.stuck: started", start=svc.index("killed by SIGKILL"))
    assert svc.stop() == 0


def test_sigterm_drains_and_stops_everything_leaving_nothing(
    tmp_path: Path, ring_dir: str, services: list[Service]
) -> None:
    group = f"239.255.{os.getpid() % 250}.{(os.getpid() >> 8) % 250 + 2}:{_free_port()}"
    body = RING + COUNTER + READER + (
        '\n[stages.idle]\nfunction = "_serve_stages:idle"\n'
        f'\n[feeds.f]\ngroup = "{group}"\nbus = "md"\n\n[books.f]\nbus = "md"\n'
    )  # fmt: skip
    svc = Service(str(_config(tmp_path, ring_dir, body, shutdown_timeout=10.0)))
    services.append(svc)
    svc.wait_for(r"ready \(6 items\)")
    pids = svc.pids()
    assert len(pids) == 5, svc.log()
    assert {"t.a", "md.itch", "md.book"} <= set(ringcast.list_rings(ring_dir)), svc.log()
    time.sleep(0.5)
    t0 = time.monotonic()
    assert svc.stop() == 0, svc.log()
    took = time.monotonic() - t0
    assert took < 10.0, svc.log()
    assert all(_gone(pid) for pid in pids.values()), (pids, svc.log())
    assert os.listdir(ring_dir) == [], svc.log()
    # The writer was stopped first; the reader was not signalled before the
    # writer had gone (it reads to the end of the closed ring and ends).
    log = svc.log()
    assert log.index("stages.counter: SIGTERM") < log.index("stages.counter: stopped"), log
    if "stages.reader: SIGTERM" in log:
        assert log.index("stages.counter: stopped") < log.index("stages.reader: SIGTERM"), log
    assert re.search(r"stopped in \d+\.\d\d s", log)


def test_sigterm_kills_what_ignores_it_at_the_deadline(
    tmp_path: Path, ring_dir: str, services: list[Service]
) -> None:
    body = '\n[stages.stubborn]\nfunction = "_serve_stages:stubborn"\n'
    svc = Service(str(_config(tmp_path, ring_dir, body, shutdown_timeout=1.5)))
    services.append(svc)
    svc.wait_for(r"ready \(1 items\)")
    pid = svc.pids()["stages.stubborn"]
    t0 = time.monotonic()
    assert svc.stop() == 1
    assert time.monotonic() - t0 < 1.5 + 2.0
    assert _gone(pid)
    assert "killed after shutdown_timeout (1.5 s): stages.stubborn" in svc.log()


def test_sighup_adds_and_removes_rings_live_and_refuses_what_cannot_change(
    tmp_path: Path, ring_dir: str, services: list[Service]
) -> None:
    cfg = _config(tmp_path, ring_dir, RING + COUNTER)
    head = cfg.read_text()
    svc = Service(str(cfg))
    services.append(svc)
    svc.wait_for(r"ready \(2 items\)")
    counter = svc.pids()["stages.counter"]
    ring_b = '\n[rings."t.b"]\nslot_size = 32\ncapacity = 64\n'
    cfg.write_text(head + ring_b)
    svc.proc.send_signal(signal.SIGHUP)
    svc.wait_for(r"reloaded .*: 1 added, 0 removed, 0 changed")
    assert {"t.a", "t.b"} <= set(ringcast.list_rings(ring_dir))
    assert ringcast.ring_info("t.b", ring_dir)["capacity"] == 64

    # A ring's layout cannot change live: nothing of the file is applied.
    n = len(svc.lines)
    cfg.write_text(head.replace("capacity = 1024", "capacity = 2048") + ring_b)
    svc.proc.send_signal(signal.SIGHUP)
    m = svc.wait_for(r"reload refused: .*", start=n)
    assert "rings.t.a.capacity changed (1024 -> 2048): a ring's layout cannot change" in m.group(0)
    assert ringcast.ring_info("t.a", ring_dir)["capacity"] == 1024

    # A broken file is refused with its line; the service goes on.
    n = len(svc.lines)
    cfg.write_text(head + ring_b + "\n[stages.x]\nfunktion = 1\n")
    svc.proc.send_signal(signal.SIGHUP)
    m = svc.wait_for(r"reload refused: .*", start=n)
    line = len((head + ring_b).splitlines()) + 3
    assert f"svc.toml:{line}: stages.x.funktion: unknown key" in m.group(0)

    # Removing the stage and ring t.a: the stage stops, the ring goes; t.b stays.
    n = len(svc.lines)
    cfg.write_text(head.replace(RING, "").replace(COUNTER, "") + ring_b)
    svc.proc.send_signal(signal.SIGHUP)
    svc.wait_for(r"reloaded .*: 0 added, 2 removed, 0 changed", start=n)
    assert "t.a" not in ringcast.list_rings(ring_dir)
    assert "t.b" in ringcast.list_rings(ring_dir)
    assert _gone(counter)
    assert svc.proc.poll() is None
    assert svc.stop() == 0
    assert os.listdir(ring_dir) == []


def test_the_demo_runs_as_a_service(ring_dir: str, services: list[Service]) -> None:
    svc = Service("--demo", "--duration", "2", "--rate", "20000", "--strategies", "1",
                  "--dir", ring_dir)  # fmt: skip
    services.append(svc)
    svc.wait_for(r"ready \(4 items\)", timeout=120)
    svc.wait_for(r"stages.strategy1: exited with status 0", timeout=120)
    svc.wait_for(r"feeds.nasdaq: exited with status 0", timeout=60)
    assert svc.stop() == 0
    assert os.listdir(ring_dir) == [], svc.log()
    assert not re.search(r"restart \d+ in|killed", svc.log()), svc.log()


def test_a_second_service_of_the_same_name_and_dir_is_refused(
    tmp_path: Path, ring_dir: str, services: list[Service]
) -> None:
    cfg = _config(tmp_path, ring_dir, RING)
    first = Service(str(cfg))
    services.append(first)
    first.wait_for(r"ready \(1 items\)")
    second = subprocess.run(
        [sys.executable, "-m", "ringcast", "serve", str(cfg)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 2
    assert f"service 'ringcast' already runs in {ring_dir} (pid {first.proc.pid})" in second.stderr
    assert "t.a" in ringcast.list_rings(ring_dir)
    assert first.stop() == 0
    assert os.listdir(ring_dir) == []


def _status(url: str) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(url + "status.json", timeout=10) as r:
        return json.loads(r.read())


def test_a_feed_handler_killed_mid_day_loses_nothing_downstream(
    tmp_path: Path, ring_dir: str, services: list[Service]
) -> None:
    """The whole pipeline under the service: the handler is SIGKILLed while
    the day is sent; it is restarted, resumes after the last message of its
    stream and recovers the rest by retransmission; the book builder waits
    for it (not restarted) and the strategy reads every book update."""
    ringcast.itch.generate(tmp_path / "day.itch", seed=3, messages=300_000)
    pid = os.getpid()
    group = f"239.255.{pid % 250}.{(pid >> 8) % 250 + 3}:{_free_port()}"
    server = f"127.0.0.1:{_free_port()}"
    body = f"""
[senders.day]
file = "{tmp_path / "day.itch"}"
group = "{group}"
rate = 60000.0
retransmit = "{server}"
linger = 8.0

[feeds.f]
group = "{group}"
bus = "md"
retransmit = "{server}"
stream_capacity = 1048576

[books.f]
bus = "md"
capacity = 1048576

[stages.strategy]
function = "ringcast.serve._demo:strategy"
args = {{ ring = "md.book" }}
reads = ["md.book"]
"""
    svc = Service(str(_config(tmp_path, ring_dir, body)), "--metrics", "127.0.0.1:0")
    services.append(svc)
    url = svc.wait_for(r"metrics on (http://\S+/)").group(1)
    svc.wait_for(r"ready \(4 items\)", timeout=120)
    handler = svc.pids()["feeds.f"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a third of the day in
        feed = next(i for i in _status(url)["items"] if i["id"] == "feeds.f")
        if feed["report"].get("delivered", 0) >= 100_000:
            break
        time.sleep(0.05)
    os.kill(handler, signal.SIGKILL)
    svc.wait_for(r"feeds.f: killed by SIGKILL after [\d.]+ s; restart 1 in")
    svc.wait_for(r"stages.strategy: exited with status 0", timeout=120)
    items = {i["id"]: i for i in _status(url)["items"]}
    feed, books = items["feeds.f"]["report"], items["books.f"]["report"]
    assert items["feeds.f"]["restarts"] == 1 and items["books.f"]["restarts"] == 0, svc.log()
    # The restarted handler delivered the rest of the day, all of it.
    assert feed["unrecovered"] == [] and feed["lost"] == 0, feed
    assert 0 < feed["delivered"] <= 200_000, feed
    assert books["messages"] == 300_000, books
    assert books["lost"] == 0 and books["book_errors"] == 0 and books["bad_records"] == 0, books
    assert books["handler_deaths"] == 1 and books["ended"], books
    strategy = items["stages.strategy"]["report"]
    assert strategy["received"] == books["updates"] and strategy["lost"] == 0, strategy
    assert svc.stop() == 0
    assert os.listdir(ring_dir) == [], svc.log()


def test_a_journal_records_through_a_kill_and_replays_into_a_strategy(
    tmp_path: Path, ring_dir: str, services: list[Service]
) -> None:
    """A day recorded by ``ringcast serve``: the recorder is SIGKILLed and
    restarted mid-way and the journal still holds every message (the ring is
    bounded and the recorder a durable stage); it replays into a strategy's
    ring and opens in pandas."""
    journal = tmp_path / "tape"
    body = (
        RING.replace("capacity = 1024", 'capacity = 1024\nmode = "bounded"\ntimestamps = true')
        + COUNTER
        + f'\n[journals.tape]\nring = "t.a"\ndir = "{journal}"\nfsync = "never"\n'
    )
    svc = Service(str(_config(tmp_path, ring_dir, body)))
    services.append(svc)
    svc.wait_for(r"ready \(3 items\)")
    time.sleep(1.0)
    os.kill(svc.pids()["journals.tape"], signal.SIGKILL)
    svc.wait_for(r"journals.tape: killed by SIGKILL after [\d.]+ s; restart 1 in")
    svc.wait_for(r"journals.tape: ready", start=svc.index("restart 1 in"))
    time.sleep(1.5)
    assert svc.stop() == 0, svc.log()

    v = ringcast.journal.verify(journal)
    assert v["intact"] and not v["open"], v
    assert v["gaps"] == 0 and v["messages"] > 1000, v
    j = ringcast.Journal(journal)
    m = j.messages()
    first = int(m.seq[0])
    assert (m.seq == first + np.arange(len(m))).all(), "a message is missing or doubled"
    assert (m.records["value"] == m.records["seq"]).all()

    # Replayed flat out into the ring a strategy reads: the same stream.
    def strategy(out: list) -> None:
        while True:
            try:
                sub = ringcast.Subscriber.attach("t.replay", dir=ring_dir, start="oldest")
                break
            except ringcast.RingNotFound:
                time.sleep(0.005)
        with sub:
            while True:
                try:
                    out.append(np.asarray(sub.recv_batch(4096, timeout=5)).copy())
                except ringcast.RingClosed:
                    return

    got: list = []
    reader = threading.Thread(target=strategy, args=(got,))
    reader.start()
    r = ringcast.journal.replay(journal, "t.replay", dir=ring_dir, bounded=True, subscribers=1)
    reader.join(30)
    assert r["published"] == len(m)
    assert np.array_equal(np.concatenate(got), np.asarray(m.records))

    import pandas

    frame = j.to_pandas()
    assert isinstance(frame, pandas.DataFrame)
    assert frame["seq"].tolist() == m.seq.tolist()
    assert frame["value"].tolist() == m.records["value"].tolist()


def test_a_bridge_pair_carries_a_ring_through_a_receiver_kill_with_its_metrics(
    tmp_path: Path, ring_dir: str, services: list[Service]
) -> None:
    """A ring sent and received on Aeron (loopback) by ``ringcast serve``:
    the receiving bridge is SIGKILLed and restarted by the service; a
    strategy reading the far ring sees every message in order or counted
    lost, and /metrics exports both ends' counters and Aeron's."""
    import urllib.request

    port = 41000 + os.getpid() % 20000
    ch = f"aeron:udp?endpoint=127.0.0.1:{port}"
    body = (
        RING.replace("capacity = 1024", 'capacity = 1024\nmode = "bounded"\ntimestamps = true')
        + COUNTER
        + f'\n[bridges.out]\nrole = "send"\nring = "t.a"\nchannel = "{ch}"\n'
        + f'\n[bridges.in]\nrole = "recv"\nring = "t.far"\nchannel = "{ch}"\nbounded = true\n'
    )
    svc = Service(str(_config(tmp_path, ring_dir, body, metrics="127.0.0.1:0")))
    services.append(svc)
    svc.wait_for(r"ready \(4 items\)")
    url = svc.wait_for(r"metrics on (http://\S+/)").group(1)
    while "t.far" not in ringcast.list_rings(ring_dir):
        time.sleep(0.01)
    sub = ringcast.Subscriber.attach("t.far", dir=ring_dir, start="oldest")
    got: list = []

    def read(until: float) -> None:
        while time.monotonic() < until:
            try:
                got.append(np.asarray(sub.recv_batch(4096, timeout=0.2)).copy())
            except ringcast.PublisherDied:
                continue

    read(time.monotonic() + 1.5)
    os.kill(svc.pids()["bridges.in"], signal.SIGKILL)
    svc.wait_for(r"bridges.in: killed by SIGKILL after [\d.]+ s; restart 1 in")
    svc.wait_for(r"bridges.in: ready", start=svc.index("restart 1 in"))
    read(time.monotonic() + 2.5)
    metrics = urllib.request.urlopen(url + "metrics", timeout=10).read().decode()
    assert svc.stop() == 0, svc.log()
    seq = np.concatenate(got)["seq"].astype(np.int64)
    assert (np.diff(seq) > 0).all() and len(seq) > 1000
    assert (np.concatenate(got)["value"] == seq).all()
    # Every sequence from the first to the last is received or counted lost.
    assert len(seq) + sub.lost == seq[-1] - seq[0] + 1
    for name in (
        'ringcast_bridge_sent_messages_total{bridge="out"}',
        'ringcast_bridge_delivered_messages_total{bridge="in"}',
        'ringcast_bridge_aeron_retransmits_sent_total{bridge="out"}',
        'ringcast_bridge_lost_restart_messages_total{bridge="in"}',
        'ringcast_bridge_connected{bridge="out"}',
        'ringcast_item_restarts_total{item="in",kind="bridge"} 1',
    ):
        assert name in metrics, name
