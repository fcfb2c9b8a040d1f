"""A ring bridged across hosts on Aeron (`ringcast bridge send|recv`).

The hosts are network namespaces joined by a switch (tests/netns.py): the
sender runs in one, each receiver in another, and real UDP crosses between
them. The source ring's publisher and the far ring's subscriber are this
test process (rings are files; only the bridge crosses the "network").
Every message carries its sequence and a checksum of it, so the far side
checks order, completeness and content, and every loss must be accounted:
received + lost == published, with the far subscriber's own ``lost`` equal
to what the receiver's report says, by cause.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest

import ringcast
from netns import Hosts
from ringcast.errors import PublisherDied, RingClosed

pytestmark = pytest.mark.timeout(240)

two_hosts = Hosts.fixture(2)
three_hosts = Hosts.fixture(3)

DT = np.dtype([("seq", "<u8"), ("check", "<u8"), ("pad", "V48")])  # 64 bytes
MUL = np.uint64(0x9E3779B97F4A7C15)
CLI = [sys.executable, "-m", "ringcast", "bridge"]
PORT = 40456


def check_of(seq: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return seq.astype(np.uint64) * MUL


def aeron_dirs() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith("aeron-ringcast-")}


class Source:
    """The source ring's publisher, on a thread: ``n`` messages in batches,
    at most ``rate`` a second (None: flat out), then closes the ring."""

    def __init__(self, d: str, *, capacity: int = 1 << 14, bounded: bool = True):
        self.pub = ringcast.Publisher.create(
            "md", dtype=DT, capacity=capacity, dir=d, bounded=bounded, timestamps=True
        )
        self.thread: threading.Thread | None = None

    def start(self, n: int, rate: float | None = None, batch: int = 1000, first: int = 0) -> None:
        """Publishes sequences ``first`` to ``n - 1``."""

        def run() -> None:
            a = np.zeros(batch, DT)
            began = time.perf_counter()
            i = first
            while i < n:
                k = min(batch, n - i)
                seq = np.arange(i, i + k, dtype=np.uint64)
                a["seq"][:k], a["check"][:k] = seq, check_of(seq)
                self.pub.publish_batch(a[:k])
                i += k
                if rate:
                    ahead = (i - first) / rate - (time.perf_counter() - began)
                    if ahead > 0:
                        time.sleep(ahead)
            self.pub.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(timeout=120)


def start_recv(host: Any, channel: str, d: str, *extra: str) -> subprocess.Popen[str]:
    argv = [*CLI, "recv", "--channel", channel, "--ring", "far", "--ring-dir", d,
            "--json", "--quiet", *extra]  # fmt: skip
    return host.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_send(host: Any, channel: str, d: str, *extra: str) -> subprocess.Popen[str]:
    argv = [*CLI, "send", "md", "--channel", channel, "--ring-dir", d, "--json", "--quiet",
            "--connect-timeout", "20s", *extra]  # fmt: skip
    return host.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def report_of(proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out)


def attach_far(d: str, procs: list[subprocess.Popen[str]]) -> ringcast.Subscriber:
    """The far ring's subscriber, as soon as the receiver made the ring
    (when the sender's hello arrived), before anything is published."""
    deadline = time.monotonic() + 30
    while "far" not in ringcast.list_rings(d):
        for p in procs:
            if p.poll() is not None:
                _, err = p.communicate()
                pytest.fail(f"a bridge process ended early: {err}")
        assert time.monotonic() < deadline, "the receiver never made the far ring"
        time.sleep(0.01)
    return ringcast.Subscriber.attach("far", dir=d, start="oldest")


def read_far(sub: ringcast.Subscriber, *, across_receivers: bool = False) -> int:
    """Reads the far ring to its end, checking every message (order,
    checksum); returns how many arrived. With ``across_receivers`` a
    receiver's death is not the end (the next one takes the ring over)."""
    got, last = 0, -1
    while True:
        try:
            b = sub.recv_batch(8192, timeout=30)
        except RingClosed:
            return got
        except PublisherDied:
            if across_receivers:
                continue
            raise
        if not len(b):
            continue
        seq = b["seq"].astype(np.int64)
        assert seq[0] > last and (np.diff(seq) > 0).all(), "out of order"
        assert (b["check"] == check_of(b["seq"])).all(), "a damaged message"
        last = int(seq[-1])
        got += len(b)


def channel(host: Any, port: int = PORT) -> str:
    return f"aeron:udp?endpoint={host.addr}:{port}"


def test_a_million_messages_cross_two_hosts_complete_and_in_order(two_hosts, tmp_path):
    src, far = str(tmp_path / "src"), str(tmp_path / "far")
    os.mkdir(src), os.mkdir(far)
    n = 1_000_000
    source = Source(src)
    ch = channel(two_hosts[1])
    rx = start_recv(two_hosts[1], ch, far, "--until-end", "--bounded")
    tx = start_send(two_hosts[0], ch, src)
    sub = attach_far(far, [rx, tx])
    source.start(n)
    got = read_far(sub)
    source.join()
    sent, received = report_of(tx), report_of(rx)
    assert got == n and sub.lost == 0
    assert sent["sent"] == n and sent["ended"] and sent["source_lost"] == 0
    assert received["delivered"] == n and received["lost"] == 0 and received["ended"]
    assert received["next_seq"] == n and received["bad_frames"] == 0
    assert received["driver"]["bytes_received"] >= n * 64
    # The far ring has the source's dtype, and each message its publish time.
    assert sub.dtype == DT


def test_under_loss_and_reordering_aeron_recovers_everything(two_hosts, tmp_path):
    """3% of the datagrams into the receiving host dropped (nftables), and
    a relay reordering a tenth of them: NAKs and retransmissions make up
    for every one; nothing is lost."""
    src, far = str(tmp_path / "src"), str(tmp_path / "far")
    os.mkdir(src), os.mkdir(far)
    n = 1_000_000
    a, b = two_hosts
    # Sender -> relay (b, PORT) -> receiver (b, PORT + 1); status messages
    # and NAKs go back through the relay.
    with b.relay(PORT, b.addr, PORT + 1, reorder=10, seed=7) as relay:
        b.drop_incoming(3, udp_port=PORT + 1)
        source = Source(src)
        rx = start_recv(b, channel(b, PORT + 1), far, "--until-end", "--bounded")
        tx = start_send(a, channel(b, PORT), src)
        sub = attach_far(far, [rx, tx])
        source.start(n)
        got = read_far(sub)
        source.join()
        sent, received = report_of(tx), report_of(rx)
        counts = relay.stop()
    dropped = b.counters()
    assert got == n and sub.lost == 0
    assert received["delivered"] == n and received["lost"] == 0
    assert dropped > 0 and counts["to_target"]["reordered"] > 0
    # Aeron's own recovery did it.
    assert received["driver"]["naks_sent"] > 0
    assert sent["driver"]["retransmits_sent"] > 0


def test_a_receiver_killed_and_restarted_reports_the_gap_exactly(two_hosts, tmp_path):
    """The receiver is SIGKILLed mid-stream and started again: what was sent
    while it was gone is declared lost in the far ring, and the far
    subscriber (which goes on across receivers) counts exactly what the new
    receiver reports."""
    src, far = str(tmp_path / "src"), str(tmp_path / "far")
    os.mkdir(src), os.mkdir(far)
    n = 400_000
    a, b = two_hosts
    ch = channel(b)
    source = Source(src, bounded=False, capacity=1 << 16)
    rx = start_recv(b, ch, far, "--bounded")
    tx = start_send(a, ch, src)
    sub = attach_far(far, [rx, tx])
    result: dict[str, int] = {}
    reader = threading.Thread(
        target=lambda: result.update(got=read_far(sub, across_receivers=True))
    )
    reader.start()
    source.start(n, rate=100_000)
    while sub.position < n // 4:
        time.sleep(0.01)
    rx.send_signal(signal.SIGKILL)
    rx.wait()
    time.sleep(1.0)
    rx2 = start_recv(b, ch, far, "--bounded", "--until-end")
    source.join()
    reader.join(timeout=120)
    sent, received = report_of(tx), report_of(rx2)
    assert result["got"] + sub.lost == n
    assert received["lost"] == sub.lost > 0
    assert received["lost_restart"] + received["lost_source"] == sub.lost
    # Whatever the source lapped while the sender waited is announced by it.
    assert received["lost_source"] == sent["source_lost"] == sent["ring_lost"]


def test_a_lossy_source_lapping_the_sender_is_reported_exactly_on_the_far_side(two_hosts, tmp_path):
    src, far = str(tmp_path / "src"), str(tmp_path / "far")
    os.mkdir(src), os.mkdir(far)
    n = 1_000_000
    a, b = two_hosts
    ch = channel(b)
    source = Source(src, bounded=False, capacity=1024)
    rx = start_recv(b, ch, far, "--until-end", "--bounded")
    tx = start_send(a, ch, src)
    sub = attach_far(far, [rx, tx])
    source.start(n)  # flat out into 1024 slots: the sender is lapped
    got = read_far(sub)
    source.join()
    sent, received = report_of(tx), report_of(rx)
    assert sent["source_lost"] > 0
    assert got + sub.lost == n
    assert sub.lost == received["lost"] == received["lost_source"] == sent["source_lost"]
    assert received["lost_network"] == received["lost_restart"] == 0
    assert sent["source_lost"] == sent["ring_lost"]
    assert received["delivered"] == got == sent["sent"]


def test_a_stalled_far_reader_back_pressures_a_bounded_source(two_hosts, tmp_path):
    """Bounded all the way: the far ring waits for its reader, the receiver
    stops taking from Aeron, Aeron's flow control stops the sender, the
    sender stops reading the source, and the source's publisher waits. What
    is held on the way is bounded (two rings and Aeron's small windows), and
    once the reader goes on everything arrives."""
    src, far = str(tmp_path / "src"), str(tmp_path / "far")
    os.mkdir(src), os.mkdir(far)
    a, b = two_hosts
    ch = channel(b)
    cap, term = 4096, "65536"  # Aeron's windows: half a term, ~400 messages
    source = Source(src, capacity=cap)
    rx = start_recv(b, ch, far, "--until-end", "--bounded", "--capacity", str(cap),
                    "--term-length", term)  # fmt: skip
    tx = start_send(a, ch, src, "--term-length", term)
    sub = attach_far(far, [rx, tx])  # attached, and reads nothing yet
    one = np.zeros(1, DT)
    published = 0
    while True:
        one["seq"], one["check"] = published, check_of(np.uint64(published))
        try:
            source.pub.publish(one[0], timeout=1.0)
        except ringcast.errors.Timeout:
            break
        published += 1
        assert published < 20 * cap, "the source was never held back"
    # Held: the far ring is full (its writer, the receiver, waits), the
    # source is full (the sender's stage is a ring behind), and what is in
    # between (Aeron's windows, the sender's batch) is small.
    far_ring, source_ring = ringcast.ring_info("far", dir=far), ringcast.ring_info("md", dir=src)
    assert far_ring["cursor"] == cap
    assert source_ring["cursor"] == published
    (stage,) = source_ring["subscribers"]
    assert stage["stage"] == "bridge" and published - stage["position"] == cap
    assert published < 2 * cap + 4000, published
    n = published + 100_000
    source.start(n, first=published)
    got = read_far(sub)
    source.join()
    sent, received = report_of(tx), report_of(rx)
    assert got == n and sub.lost == 0 and received["lost"] == 0
    assert sent["back_pressure"] > 0


def test_multicast_reaches_two_hosts_at_once(three_hosts, tmp_path):
    src = str(tmp_path / "src")
    os.mkdir(src)
    n = 300_000
    a = three_hosts[0]
    group = f"239.77.{os.getpid() % 250}.1:{PORT}"  # data on an odd address
    # fc=min: the sender goes at the pace of the slower receiver.
    tx_channel = f"aeron:udp?endpoint={group}|interface={a.addr}|fc=min"
    source = Source(src)
    receivers, subs = [], []
    for host in three_hosts[1:]:
        far = str(tmp_path / f"far-{host.index}")
        os.mkdir(far)
        rx_channel = f"aeron:udp?endpoint={group}|interface={host.addr}"
        receivers.append((start_recv(host, rx_channel, far, "--until-end", "--bounded"), far))
    tx = start_send(a, tx_channel, src)
    for rx, far in receivers:
        subs.append(attach_far(far, [rx, tx]))
    source.start(n)
    counts: list[int] = [0, 0]

    def reader(i: int) -> None:
        counts[i] = read_far(subs[i])

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    source.join()
    sent = report_of(tx)
    assert sent["sent"] == n
    for (rx, _), sub, got in zip(receivers, subs, counts, strict=True):
        report = report_of(rx)
        assert got == n and sub.lost == 0
        assert report["delivered"] == n and report["lost"] == 0


def run_cli(host: Any, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return host.run([*CLI, *argv], capture_output=True, text=True, timeout=timeout)


def test_bad_input_says_what_to_do_and_makes_nothing(two_hosts, tmp_path):
    src, far = str(tmp_path / "src"), str(tmp_path / "far")
    os.mkdir(src), os.mkdir(far)
    a, b = two_hosts
    Source(src)  # the source ring "md" exists
    before = aeron_dirs()
    bad_channels = [
        ("udp://10.0.0.1:40000", 'starts with "aeron:"'),
        ("aeron:tcp?endpoint=10.0.0.1:40000", "neither udp nor ipc"),
        ("aeron:udp?interface=10.0.0.1", "needs endpoint=HOST:PORT"),
        ("aeron:udp?endpoint=10.0.0.1", "is not HOST:PORT"),
    ]
    for ch, said in bad_channels:
        for argv in (["send", "md", "--channel", ch, "--ring-dir", src],
                     ["recv", "--channel", ch, "--ring-dir", far]):  # fmt: skip
            done = run_cli(a, *argv)
            assert done.returncode == 1 and said in done.stderr, (argv, done.stderr)
            assert "bad channel" in done.stderr and done.stderr.count("\n") == 1
    # An address that is not the receiving host's: Aeron refuses to bind it.
    done = run_cli(b, "recv", "--channel", f"aeron:udp?endpoint={a.addr}:{PORT}", "--ring-dir", far)
    assert done.returncode == 1 and "bad channel" in done.stderr, done.stderr
    # Nobody listening at the endpoint.
    done = run_cli(a, "send", "md", "--channel", channel(b), "--ring-dir", src,
                   "--connect-timeout", "2s")  # fmt: skip
    assert done.returncode == 1 and "no receiver connected" in done.stderr, done.stderr
    # The sender left no stage behind on the source ring.
    assert ringcast.ring_info("md", dir=src)["subscribers"] == []
    # No such source ring.
    done = run_cli(a, "send", "nosuch", "--channel", channel(b), "--ring-dir", src)
    assert done.returncode == 1 and "nosuch" in done.stderr
    # A receiving ring of another shape: refused, and left as it was.
    other = ringcast.Publisher.create("far", dtype=np.dtype("<f8"), capacity=64, dir=far)
    created = ringcast.ring_info("far", dir=far)["created_unix_ns"]
    rx = start_recv(b, channel(b), far, "--idle-timeout", "20s")
    tx = start_send(a, channel(b), src)
    _, err = rx.communicate(timeout=60)
    tx.send_signal(signal.SIGTERM)  # a sender stops cleanly, its report printed
    stopped = json.loads(tx.communicate(timeout=30)[0])
    assert tx.returncode == 0 and stopped["sent"] == 0
    assert rx.returncode == 1 and "exists with another shape" in err, err
    info = ringcast.ring_info("far", dir=far)
    assert info["created_unix_ns"] == created and info["slot_size"] == 8
    other.close()
    assert ringcast.list_rings(far) == ["far"]
    # Nothing of Aeron's left behind by the failed bridges.
    assert aeron_dirs() <= before
