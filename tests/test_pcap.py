"""The feed handler's wire capture (pcapng) and its replay, across processes
over loopback multicast: tshark decodes the capture's MoldUDP64 exactly as
the sender sent it, a replayed capture reproduces the same decoded stream in
a second handler's rings, and a handler SIGKILLed while capturing leaves a
capture that reads back (ringcast's reader and tshark) up to its torn tail.

tshark (Debian: the tshark package) decodes MoldUDP64 only when told the
port (``-d udp.port==PORT,moldudp64``: Wireshark 4.0's dissector is not
heuristic). Without tshark those checks skip, unless RINGCAST_REQUIRE_TSHARK
is set (CI), where its absence fails."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import ringcast
import ringcast.itch as itch

# Every test its own groups and ports (test_feed.py uses 239.255.79.x, 475xx).
GROUP = "239.255.81.{}:{}"
CLI = [sys.executable, "-m", "ringcast", "feed"]


def frames(path: str) -> list[bytes]:
    """The messages of an ITCH file, in order."""
    data = open(path, "rb").read()
    out, at = [], 0
    while at < len(data):
        (n,) = struct.unpack_from(">H", data, at)
        out.append(data[at + 2 : at + 2 + n])
        at += 2 + n
    return out


def packets(messages: list[bytes], max_payload: int = 1400) -> list[range]:
    """The sequence numbers of each MoldUDP64 packet a flat-out sender makes
    (20-byte header, then 2-byte length + message, greedily)."""
    out, first, size = [], 1, 20
    for seq, m in enumerate(messages, start=1):
        if size + 2 + len(m) > max_payload:
            out.append(range(first, seq))
            first, size = seq, 20
        size += 2 + len(m)
    out.append(range(first, len(messages) + 1))
    return out


@pytest.fixture(scope="module")
def small_day(tmp_path_factory):
    # Small enough that a flat-out send fits the handler's socket buffer.
    path = str(tmp_path_factory.mktemp("pcap") / "small.itch")
    itch.generate(path, seed=12, messages=20_000)
    return path, frames(path)


@pytest.fixture(scope="module")
def tshark() -> str | None:
    """tshark's path, or None (then tshark checks skip) when it is not
    installed and RINGCAST_REQUIRE_TSHARK is not set."""
    path = shutil.which("tshark")
    if path is None:
        assert not os.environ.get("RINGCAST_REQUIRE_TSHARK"), (
            "RINGCAST_REQUIRE_TSHARK is set but tshark is not installed "
            "(apt-get install tshark; scripts/test.sh does)"
        )
    return path


def need(tshark_path: str | None) -> str:
    if tshark_path is None:
        pytest.skip("tshark is not installed (apt-get install tshark)")
    return tshark_path


def tshark_rows(tshark_path: str, capture: str, ports: list[int]) -> tuple[list[dict], str]:
    """Every packet tshark decodes in `capture`, MoldUDP64 on `ports`: its
    IP addresses, IP header checksum status, and MoldUDP64 header and
    message blocks; and tshark's stderr (it reads a cut file up to the cut,
    then says so and exits 2)."""
    fields = ["ip.src", "ip.dst", "udp.dstport", "ip.checksum.status", "moldudp64.session",
              "moldudp64.sequence", "moldudp64.count", "moldudp64.msgseq", "moldudp64.msglen",
              "moldudp64.msgdata"]  # fmt: skip
    cmd = [tshark_path, "-n", "-r", capture, "-o", "ip.check_checksum:TRUE", "-T", "fields",
           "-E", "separator=;"]  # fmt: skip
    for port in ports:
        cmd += ["-d", f"udp.port=={port},moldudp64"]
    for f in fields:
        cmd += ["-e", f]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 2), done.stderr
    rows = []
    for line in done.stdout.splitlines():
        values = dict(zip(fields, line.split(";"), strict=True))

        def listed(key: str, values: dict[str, str] = values) -> list[str]:
            return [v for v in values[key].split(",") if v]

        rows.append(
            {
                "src": values["ip.src"],
                "dst": f"{values['ip.dst']}:{values['udp.dstport']}",
                "checksum_good": values["ip.checksum.status"] == "1",
                "session": values["moldudp64.session"].rstrip(),
                "sequence": int(values["moldudp64.sequence"]),
                "count": int(values["moldudp64.count"]),
                "msgseq": [int(v) for v in listed("moldudp64.msgseq")],
                "msglen": [int(v) for v in listed("moldudp64.msglen")],
                "msgdata": [bytes.fromhex(v) for v in listed("moldudp64.msgdata")],
            }
        )
    return rows, done.stderr


def start_cli_handler(args: list[str], ring_dir: str, bus: str = "md") -> subprocess.Popen:
    """`ringcast feed handle` in its own process, once its rings exist (it
    joins its groups right after)."""
    handler = subprocess.Popen(
        [*CLI, "handle", "--bus", bus, "--dir", ring_dir, "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(ring_dir, f"{bus}.itch.ring")):
        assert time.monotonic() < deadline and handler.poll() is None, handler.stderr.read()
        time.sleep(0.05)
    time.sleep(0.2)
    return handler


def finish_cli(handler: subprocess.Popen, timeout: float = 60) -> dict:
    try:
        out, err = handler.communicate(timeout=timeout)
    finally:
        handler.kill()
    assert out, err
    return json.loads(out)


def stream(ring_dir: str, bus: str = "md") -> np.ndarray:
    """The handler's in-order stream ring, whole (none lost)."""
    with ringcast.Subscriber.attach(
        f"{bus}.itch", dir=ring_dir, start="oldest", dtype=itch.RAW_MESSAGE
    ) as sub:
        parts = []
        try:
            while True:
                parts.append(sub.recv_batch(1 << 16, timeout=0).copy())
        except ringcast.RingClosed:
            pass
        assert sub.lost == 0
        return np.concatenate(parts) if parts else np.zeros(0, itch.RAW_MESSAGE)


def decoded(recs: np.ndarray) -> list[tuple[int, bytes]]:
    """(sequence, message bytes) of stream records: what was decoded,
    without the receive times."""
    return [(int(r["sequence"]), bytes(r["message"])[: int(r["length"])]) for r in recs]


def test_tshark_decodes_the_capture_and_a_replay_reproduces_the_stream(small_day, tmp_path, tshark):
    """Line A complete, line B skipping packets, sent flat out: the capture
    holds every datagram of both lines with their real addresses; tshark
    decodes each line's MoldUDP64 packets exactly as the sender made them
    (session, sequence numbers, counts, message bytes); then the capture,
    replayed at its own pace to its captured group (line A by default),
    gives a second handler exactly the first one's decoded stream."""
    path, messages = small_day
    (a, port_a), (b, port_b) = (GROUP.format(1, 47601), 47601), (GROUP.format(2, 47602), 47602)
    capture = str(tmp_path / "wire.pcapng")
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    full = packets(messages)
    skipped_b = list(range(1, len(full), 5))
    handler = start_cli_handler(
        ["--group", a, "--group-b", b, "--capture", capture, "--idle-timeout", "20"],
        str(first_dir),
    )
    try:
        sent = itch.send(path, a, group_b=b, drop_b=skipped_b, linger=0.0)
    finally:
        first = finish_cli(handler)
    assert sent["packets"] == len(full) and sent["dropped"] == [0, len(skipped_b)]
    assert first["ended"] and first["lost"] == 0 and first["delivered"] == len(messages)
    la, lb = first["lines"]
    assert first["captured"] == la["packets"] + lb["packets"]
    # Line A: every message packet; B: the rest; and the end of session on
    # a line (the handler ends at the first one, so the other line's may
    # arrive after it stopped capturing).
    ends = (la["packets"] - len(full), lb["packets"] - (len(full) - len(skipped_b)))
    assert set(ends) <= {0, 1} and sum(ends) >= 1, ends

    # ringcast's own reader: every datagram, its addresses, kernel times in order.
    cap = itch.read_pcap(capture)
    assert cap["error"] is None and cap["format"] == "pcapng"
    assert cap["packets"] == first["captured"] == len(cap["datagrams"])
    names = [name for _, name in cap["interfaces"]]
    assert names == [f"ringcast line A {a}", f"ringcast line B {b}"]
    by_line = {0: [], 1: []}
    for t, iface, source, destination, payload in cap["datagrams"]:
        assert destination == (a, b)[iface] and source.startswith("127.0.0.1:")
        by_line[iface].append((t, payload))
    for line in by_line.values():
        times = [t for t, _ in line]
        assert times == sorted(times) and abs(times[0] / 1e9 - time.time()) < 300

    if tshark is None:
        pytest.skip("tshark is not installed: the capture read back, tshark not checked")
    rows, _ = tshark_rows(tshark, capture, [port_a, port_b])
    assert len(rows) == first["captured"]
    assert all(r["checksum_good"] and r["src"] == "127.0.0.1" for r in rows)
    kept_b = [p for i, p in enumerate(full) if i not in set(skipped_b)]
    for dst, line_packets in ((a, full), (b, kept_b)):
        mine = [r for r in rows if r["dst"] == dst]
        assert all(r["session"] == "RINGCAST" for r in mine)
        data = [r for r in mine if r["count"] not in (0, 0xFFFF)]
        assert [(r["sequence"], r["count"]) for r in data] == [
            (p.start, len(p)) for p in line_packets
        ]
        for r, p in zip(data, line_packets, strict=True):
            assert r["msgseq"] == list(p)
            assert r["msglen"] == [len(messages[s - 1]) for s in p]
            assert r["msgdata"] == [messages[s - 1] for s in p]
        ends = [r for r in mine if r["count"] == 0xFFFF]
        assert [e["sequence"] for e in ends] == [len(messages) + 1]

    # The replay: line A alone by default, to its captured group, at its pace.
    handler = start_cli_handler(["--group", a, "--idle-timeout", "20"], str(second_dir))
    try:
        replayed = subprocess.run(
            [*CLI, "send", "--pcap", capture, "--speed", "1", "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        second = finish_cli(handler)
    assert replayed.returncode == 0, replayed.stderr
    replayed = json.loads(replayed.stdout)
    assert replayed["destination"] == a and replayed["others"] == lb["packets"]
    assert replayed["packets"] == la["packets"] and replayed["messages"] == len(messages)
    assert replayed["capture_error"] is None
    assert second["ended"] and second["lost"] == 0 and second["delivered"] == len(messages)
    assert second["lines"][0]["packets"] == la["packets"]
    assert second["lines"][0]["duplicates"] == 0, "line B was not replayed"
    want = decoded(stream(str(first_dir)))
    assert want == [(s, m) for s, m in enumerate(messages, start=1)]
    assert decoded(stream(str(second_dir))) == want
    assert second["decoded"] == first["decoded"]


def test_a_handler_killed_while_capturing_leaves_a_capture_readable_to_its_torn_tail(
    small_day, tmp_path, tshark
):
    """SIGKILL mid-day: the capture reads back (ringcast's reader and tshark
    agree) with every message packet up to where it stops, in order, from
    sequence 1; cut inside its last block it reads as exactly one packet
    fewer and a Truncated error, and tshark reads the same packets then
    says it was cut. Replayed, it gives a handler exactly those messages. A
    handler restarted on the capture appends to it after the last complete
    block: the whole file reads without error."""
    path, messages = small_day
    group, port = GROUP.format(3, 47603), 47603
    server = "127.0.0.1:47604"
    capture = str(tmp_path / "killed.pcapng")
    ring_dir = tmp_path / "rings"
    ring_dir.mkdir()
    args = ["--group", group, "--capture", capture, "--retransmit", server]
    handler = start_cli_handler([*args, "--idle-timeout", "20"], str(ring_dir))
    sender = subprocess.Popen(
        [*CLI, "send", path, "--group", group, "--retransmit", server, "--rate", "10000",
         "--linger", "15", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(0.8)
        handler.send_signal(signal.SIGKILL)
        handler.wait(10)
        killed = open(capture, "rb").read()

        cap = itch.read_pcap(capture)
        # Killed between blocks or inside one: either way an exact account.
        assert cap["error"] is None or cap["truncated"], cap["error"]
        n = cap["packets"]
        assert n > 10, "the handler flushed what it captured every 100 ms"
        data = [p for *_, p in cap["datagrams"]]
        heads = [struct.unpack_from(">QH", p, 10) for p in data]
        # Paced packets: each starts where the one before ended, from 1.
        runs = [(s, c) for s, c in heads if c not in (0, 0xFFFF)]
        starts = [1] + [s + c for s, c in runs[:-1]]
        assert [s for s, _ in runs] == starts, "from sequence 1, none missing"

        # Cut inside its last complete block: one packet fewer, and the cut
        # reported.
        complete = len(killed)
        if cap["error"] is not None:
            complete = int(re.search(r"the block at byte (\d+)", cap["error"]).group(1))
        torn = str(tmp_path / "torn.pcapng")
        with open(torn, "wb") as f:
            f.write(killed[: complete - 7])
        cut = itch.read_pcap(torn)
        assert cut["truncated"] and cut["packets"] == n - 1
        assert f"after {n - 1} complete packets" in cut["error"]
        assert [p for *_, p in cut["datagrams"]] == data[:-1]

        if tshark is not None:
            rows, _ = tshark_rows(tshark, capture, [port])
            assert [(r["sequence"], r["count"]) for r in rows] == heads
            rows, err = tshark_rows(tshark, torn, [port])
            assert [(r["sequence"], r["count"]) for r in rows] == heads[:-1]
            assert "cut short" in err, err

        # The torn capture replayed (to another group): exactly its messages.
        again_dir = tmp_path / "again"
        again_dir.mkdir()
        other = GROUP.format(4, 47605)
        h2 = start_cli_handler(["--group", other, "--idle-timeout", "2"], str(again_dir))
        try:
            replayed = subprocess.run(
                [*CLI, "send", "--pcap", torn, "--group", other, "--json"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        finally:
            second = finish_cli(h2)
        assert replayed.returncode == 0, replayed.stderr
        report = json.loads(replayed.stdout)
        assert "after" in report["capture_error"] and report["destination"] == group
        count = sum(c for s, c in heads[:-1] if c not in (0, 0xFFFF))
        assert report["messages"] == count == second["delivered"]
        assert decoded(stream(str(again_dir))) == [
            (s, messages[s - 1]) for s in range(1, count + 1)
        ]

        # Restarted on its rings and its capture: it resumes and appends.
        restarted = start_cli_handler([*args, "--idle-timeout", "20"], str(ring_dir))
        resumed = finish_cli(restarted, timeout=90)
    finally:
        sender.kill()
        sender.wait(10)
    assert resumed["ended"] and resumed["lost"] == 0, resumed
    whole = itch.read_pcap(capture)
    assert whole["error"] is None
    kept = cap["packets"]
    assert whole["packets"] == kept + resumed["captured"]
    assert [p for *_, p in whole["datagrams"][:kept]] == data
    line, retransmissions = [name for _, name in whole["interfaces"]]
    assert line == f"ringcast line A {group}"
    assert retransmissions.startswith("ringcast retransmissions to 127.0.0.1:")
    if tshark is not None:
        # Retransmissions come from the server's port.
        rows, err = tshark_rows(tshark, capture, [port, 47604])
        assert len(rows) == whole["packets"], err
        assert [(r["sequence"], r["count"]) for r in rows[: len(heads)]] == heads


def test_bad_capture_arguments_say_what_to_do(small_day, tmp_path, ring_dir):
    path, _ = small_day
    group = GROUP.format(5, 47606)
    both = subprocess.run(
        [*CLI, "send", path, "--pcap", path, "--group", group], capture_output=True, text=True
    )
    neither = subprocess.run([*CLI, "send", "--group", group], capture_output=True, text=True)
    for done in (both, neither):
        assert done.returncode == 1 and "an ITCH file or --pcap CAPTURE" in done.stderr
    with pytest.raises(ringcast.FeedError, match="cannot read capture file"):
        itch.replay(tmp_path / "missing.pcapng")
    with pytest.raises(ringcast.FeedError, match="not a packet capture"):
        itch.replay(path)
    with pytest.raises(ringcast.FeedError, match="is empty"):
        (tmp_path / "empty.pcapng").write_bytes(b"")
        itch.replay(tmp_path / "empty.pcapng")
    # A classic pcap file holding one ARP frame: no UDP at all.
    arp = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    arp += struct.pack("<IIII", 1, 0, 42, 42) + bytes(12) + b"\x08\x06" + bytes(28)
    (tmp_path / "arp.pcap").write_bytes(arp)
    with pytest.raises(ringcast.FeedError, match="no IPv4 UDP datagram"):
        itch.replay(tmp_path / "arp.pcap")
    cap = itch.read_pcap(tmp_path / "arp.pcap")
    assert cap["format"] == "pcap" and cap["packets"] == 1 and cap["datagrams"] == []

    # A real capture, asked for a stream it does not have.
    capture = tmp_path / "one.pcapng"
    h = start_cli_handler(["--group", group, "--capture", str(capture), "--idle-timeout", "5"],
                          ring_dir)  # fmt: skip
    itch.send(path, group)
    finish_cli(h)
    with pytest.raises(ringcast.FeedError, match=f"its streams are: {group} "):
        itch.replay(capture, stream="239.9.9.9:1")
    with pytest.raises(ringcast.FeedError, match="no datagram to a multicast group on port 5"):
        itch.replay(capture, stream="5")
    with pytest.raises(ringcast.InvalidArgument, match="ADDRESS:PORT"):
        itch.replay(capture, stream="nowhere")
    done = subprocess.run(
        [*CLI, "send", "--pcap", str(capture), "--retransmit", "127.0.0.1:0"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1 and "no retransmission server" in done.stderr

    # Where a capture cannot go: nothing is made.
    other_dir = tmp_path / "rings"
    other_dir.mkdir()
    with pytest.raises(ringcast.InvalidArgument, match="does not exist"):
        itch.handle(group, bus="md", dir=other_dir, capture=tmp_path / "no" / "cap.pcapng")
    with pytest.raises(ringcast.InvalidArgument, match="is a directory"):
        itch.handle(group, bus="md", dir=other_dir, capture=tmp_path)
    assert ringcast.list_rings(str(other_dir)) == []
    # An existing file that is not pcapng is never written over.
    with pytest.raises(ringcast.FeedError, match="move it away"):
        itch.handle(group, bus="md", dir=other_dir, capture=path, idle_timeout=0.1)
    assert frames(path) == small_day[1]


def test_a_served_feed_takes_a_capture_path_relative_to_its_config(tmp_path):
    from ringcast.serve._config import ConfigError, parse

    text = '[feeds.md]\ngroup = "239.1.1.1:31001"\nbus = "md"\ncapture = "{}"\n'
    with pytest.raises(ConfigError, match=r"svc.toml:4: .*capture.*no directory") as e:
        parse(text.format("caps/md.pcapng"), "svc.toml", base_dir=str(tmp_path))
    assert e.value.line == 4
    (tmp_path / "caps").mkdir()
    cfg = parse(text.format("caps/md.pcapng"), "svc.toml", base_dir=str(tmp_path))
    (item,) = cfg.items.values()
    assert item.options["capture"] == str(tmp_path / "caps" / "md.pcapng")
