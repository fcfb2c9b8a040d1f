"""The MoldUDP64 feed across processes, over loopback multicast: a generated
day arrives complete and in order in the rings, packets skipped on purpose
come back through retransmission or the other line, what cannot come back
is reported exactly, a killed handler resumes where its rings stop, and the
book builder's books equal a plain-Python reference after every message."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

import ringcast
import ringcast.itch as itch

ctx = mp.get_context("spawn")

# Every test its own multicast groups and ports, so tests never hear each other.
GROUP = "239.255.79.{}:{}"


def frames(path: str) -> list[bytes]:
    """The messages of an ITCH file, in order (a reader of the file format
    written here, independent of ringcast's)."""
    data = open(path, "rb").read()
    out, at = [], 0
    while at < len(data):
        (n,) = struct.unpack_from(">H", data, at)
        out.append(data[at + 2 : at + 2 + n])
        at += 2 + n
    return out


def packets(messages: list[bytes], max_payload: int = 1400) -> list[range]:
    """The sequence numbers of each full MoldUDP64 packet a flat-out sender
    makes: 20-byte header, then 2-byte length + message, greedily."""
    out, first, size = [], 1, 20
    for seq, m in enumerate(messages, start=1):
        if size + 2 + len(m) > max_payload:
            out.append(range(first, seq))
            first, size = seq, 20
        size += 2 + len(m)
    out.append(range(first, len(messages) + 1))
    return out


def handle_in_child(kwargs, ready, results) -> None:
    try:
        results.put(itch.handle(**kwargs, ready=ready.set))
    except BaseException as e:  # reported to the test
        results.put(repr(e))
        ready.set()


def books_in_child(bus, ring_dir, ready, results) -> None:
    try:
        results.put(itch.books(bus, dir=ring_dir, capacity=1 << 19, ready=ready.set))
    except BaseException as e:
        results.put(repr(e))
        ready.set()


def start_handler(**kwargs):
    ready, results = ctx.Event(), ctx.Queue()
    p = ctx.Process(target=handle_in_child, args=(kwargs, ready, results))
    p.start()
    assert ready.wait(30), "the handler did not start"
    return p, results


def finish(p, results, timeout=60):
    report = results.get(timeout=timeout)
    p.join(10)
    assert isinstance(report, dict), report
    return report


def read_all(ring: str, ring_dir: str, dtype=None) -> np.ndarray:
    """Everything in a closed ring, oldest first (none lost)."""
    with ringcast.Subscriber.attach(ring, dir=ring_dir, start="oldest", dtype=dtype) as sub:
        parts = []
        try:
            while True:
                parts.append(sub.recv_batch(1 << 16, timeout=0).copy())
        except ringcast.RingClosed:
            pass
        assert sub.lost == 0
        return np.concatenate(parts) if parts else np.zeros(0, sub.dtype)


def wait_for_handler(handler: subprocess.Popen, ring_dir: str) -> None:
    """Waits until a CLI handler has made its rings (it joins its groups
    right after), failing with its stderr if it exits instead."""
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(ring_dir, "md.itch.ring")):
        assert time.monotonic() < deadline and handler.poll() is None, handler.stderr.read()
        time.sleep(0.05)
    time.sleep(0.2)


def stream_records(ring_dir: str, bus: str = "md") -> np.ndarray:
    """Everything in the handler's in-order stream ring."""
    return read_all(f"{bus}.itch", ring_dir, itch.RAW_MESSAGE)


def assert_stream_is(recs: np.ndarray, messages: list[bytes], seqs) -> None:
    seqs = list(seqs)
    assert list(recs["sequence"]) == seqs
    for rec, seq in zip(recs, seqs, strict=True):
        m = messages[seq - 1]
        assert rec["length"] == len(m) and bytes(rec["message"])[: len(m)] == m, seq


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("feed") / "day.itch")
    itch.generate(path, seed=11, messages=200_000)
    return path, frames(path)


@pytest.fixture(scope="module")
def small_day(tmp_path_factory):
    # Small enough that a flat-out send fits the handler's socket buffer:
    # nothing is lost but what the test skips.
    path = str(tmp_path_factory.mktemp("feed") / "small.itch")
    itch.generate(path, seed=12, messages=20_000)
    return path, frames(path)


def test_a_day_arrives_complete_and_in_order_in_the_rings(day, ring_dir):
    """CLI handler in its own process, sender in this one: every message in
    the stream ring once, in order, byte for byte; every typed ring holds
    exactly the records of its type, stamped with receive times."""
    path, messages = day
    group, server = GROUP.format(1, 47501), "127.0.0.1:47502"
    handler = subprocess.Popen(
        [sys.executable, "-m", "ringcast", "feed", "handle", "--group", group, "--bus", "md",
         "--dir", ring_dir, "--retransmit", server, "--idle-timeout", "20", "--json",
         "--capacity", str(1 << 18)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_handler(handler, ring_dir)
        sent = itch.send(path, group, retransmit=server, rate=400_000, linger=3.0)
        out, err = handler.communicate(timeout=60)
    finally:
        handler.kill()
    assert handler.returncode == 0, err
    report = json.loads(out)
    assert sent["messages"] == len(messages) == report["delivered"] == report["published"]
    assert report["ended"] and report["lost"] == 0 and report["unrecovered"] == []
    assert report["session"] == "RINGCAST" and report["first"] == 1
    assert_stream_is(stream_records(ring_dir), messages, range(1, len(messages) + 1))
    expected = itch.read_file(path)
    for t in itch.MESSAGE_TYPES.values():
        want = expected[t.name]
        if not len(want):
            continue
        got = read_all(f"md.{t.name}", ring_dir, t.dtype)
        assert len(got) == len(want), t.name
        assert (got["recv_ns"] > 0).all()
        # Field by field: numpy copies of records leave their padding undefined.
        for field in t.dtype.names[1:]:
            assert np.array_equal(got[field], want[field]), (t.name, field)


def test_skipped_packets_come_back_through_retransmission(day, ring_dir):
    path, messages = day
    group, server = GROUP.format(2, 47503), "127.0.0.1:47504"
    p, results = start_handler(
        group=group, bus="md", dir=ring_dir, retransmit=server, idle_timeout=20
    )
    sent = itch.send(path, group, retransmit=server, rate=400_000, drop=5.0, linger=3.0)
    report = finish(p, results)
    assert sent["dropped"][0] > 50 and sent["requests"] > 0
    assert report["gaps"] > 0 and report["recovered"] >= sent["dropped"][0]
    assert report["lost"] == 0 and report["delivered"] == len(messages) and report["ended"]
    assert_stream_is(stream_records(ring_dir), messages, range(1, len(messages) + 1))


def test_what_cannot_come_back_is_reported_exactly(small_day, ring_dir):
    """No retransmission server: the skipped packets' messages are lost, and
    the report names exactly their sequence ranges (the last packet's loss
    is found from the end-of-session packet)."""
    path, messages = small_day
    group = GROUP.format(3, 47505)
    full = packets(messages)
    skipped = [3, 7, 8, len(full) - 1]
    p, results = start_handler(group=group, bus="md", dir=ring_dir, idle_timeout=20)
    sent = itch.send(path, group, drop=skipped)
    report = finish(p, results)
    assert sent["packets"] == len(full) and sent["dropped"] == [4]
    lost = [full[3], range(full[7].start, full[8].stop), full[-1]]
    assert report["unrecovered"] == [(r.start, r.stop) for r in lost]
    assert report["lost"] == sum(len(r) for r in lost)
    assert report["delivered"] + report["lost"] == len(messages) and report["ended"]
    missing = {s for r in lost for s in r}
    kept = [s for s in range(1, len(messages) + 1) if s not in missing]
    assert_stream_is(stream_records(ring_dir), messages, kept)


def test_two_lines_with_loss_on_each_lose_nothing(small_day, ring_dir):
    """Line A and line B each skip packets, never the same ones, and there
    is no retransmission server: the first copy of each message wins and
    nothing is lost."""
    path, messages = small_day
    a, b = GROUP.format(4, 47506), GROUP.format(5, 47507)
    n = len(packets(messages))
    p, results = start_handler(
        group=a, group_b=b, bus="md", dir=ring_dir, idle_timeout=20, arbitration=0.05
    )
    sent = itch.send(path, a, group_b=b, drop=list(range(0, n, 7)), drop_b=list(range(3, n, 7)))
    report = finish(p, results)
    assert sent["dropped"][0] > 0 and sent["dropped"][1] > 0
    la, lb = report["lines"]
    assert la["first"] > 0 and lb["first"] > 0 and report["filled_by_line"] > 0
    assert la["first"] + lb["first"] == len(messages)
    assert report["lost"] == 0 and report["ended"]
    assert_stream_is(stream_records(ring_dir), messages, range(1, len(messages) + 1))


def test_a_killed_handler_resumes_where_its_rings_stop(day, ring_dir):
    """SIGKILL the handler mid-day, start it again: it takes its rings over,
    goes on after the last message of the stream ring, and asks the server
    for what it missed meanwhile: the stream holds every message once."""
    path, messages = day
    group, server = GROUP.format(6, 47508), "127.0.0.1:47509"
    kwargs = dict(group=group, bus="md", dir=ring_dir, retransmit=server, idle_timeout=20)
    first, _ = start_handler(**kwargs)
    sender = ctx.Process(
        target=itch.send,
        args=(path, group),
        kwargs=dict(retransmit=server, rate=100_000, linger=15.0),
    )
    sender.start()
    try:
        time.sleep(0.8)
        first.kill()
        first.join(10)
        time.sleep(0.2)
        again, results = start_handler(**kwargs)
        report = finish(again, results, timeout=90)
    finally:
        sender.kill()
        sender.join(10)
    assert 1 < report["first"] < len(messages), report["first"]
    assert report["lost"] == 0 and report["ended"], report
    assert report["delivered"] == len(messages) - report["first"] + 1
    assert_stream_is(stream_records(ring_dir), messages, range(1, len(messages) + 1))


# -- order books ---------------------------------------------------------------

WIRE = {  # after the type byte: locate, tracking, 6-byte time, then the body
    "A": ">HH6sQcI8sI", "F": ">HH6sQcI8sI4s", "E": ">HH6sQIQ", "C": ">HH6sQIQcI",
    "X": ">HH6sQI", "D": ">HH6sQ", "U": ">HH6sQQII",
}  # fmt: skip


def reference_updates(messages: list[bytes]) -> list[tuple]:
    """Book updates from a dict-of-levels rebuilt message by message: after
    each change, (locate, side, price, level shares, level orders, best bid,
    its shares, best ask, its shares, cause)."""
    orders: dict[int, list] = {}
    books: dict[int, dict[bytes, dict[int, list[int]]]] = {}
    out = []

    def change(locate, side, price, shares, count, cause):
        levels = books.setdefault(locate, {b"B": {}, b"S": {}})[side]
        level = levels.setdefault(price, [0, 0])
        level[0] += shares
        level[1] += count
        after = tuple(level)
        if level[0] == 0:
            del levels[price]
        bids, asks = books[locate][b"B"], books[locate][b"S"]
        bid = max(bids) if bids else 0
        ask = min(asks) if asks else 0
        out.append((locate, side, price, *after, bid, bids[bid][0] if bids else 0,
                    ask, asks[ask][0] if asks else 0, cause))  # fmt: skip

    def take(ref, shares, cause):
        o = orders[ref]
        shares = o[3] if shares is None else shares
        o[3] -= shares
        gone = o[3] == 0
        if gone:
            del orders[ref]
        change(o[0], o[1], o[2], -shares, -1 if gone else 0, cause)
        return o

    for m in messages:
        kind = chr(m[0])
        if kind not in WIRE:
            continue
        f = struct.unpack(WIRE[kind], m[1:])
        locate, cause = f[0], m[0:1]
        if kind in "AF":
            ref, side, shares, price = f[3], f[4], f[5], f[7]
            orders[ref] = [locate, side, price, shares]
            change(locate, side, price, shares, 1, cause)
        elif kind in "EC":
            take(f[3], f[4], cause)
        elif kind == "X":
            take(f[3], f[4], cause)
        elif kind == "D":
            take(f[3], None, cause)
        else:  # U: the old order leaves, the new one joins its side
            old = take(f[3], None, cause)
            new_ref, shares, price = f[4], f[5], f[6]
            orders[new_ref] = [old[0], old[1], price, shares]
            change(old[0], old[1], price, shares, 1, cause)
    return out


def test_books_equal_a_plain_reference_after_every_message(day, ring_dir):
    """Handler, book builder and this test in three processes: every book
    update the builder published equals the reference's, in order."""
    path, messages = day
    group, server = GROUP.format(7, 47510), "127.0.0.1:47511"
    handler, handled = start_handler(
        group=group, bus="md", dir=ring_dir, retransmit=server, idle_timeout=20,
        stream_capacity=1 << 19,
    )  # fmt: skip
    ready, results = ctx.Event(), ctx.Queue()
    builder = ctx.Process(target=books_in_child, args=("md", ring_dir, ready, results))
    builder.start()
    assert ready.wait(30)
    itch.send(path, group, retransmit=server, rate=400_000, linger=3.0)
    assert finish(handler, handled)["lost"] == 0
    report = finish(builder, results)
    want = reference_updates(messages)
    assert report["book_errors"] == 0 and report["lost"] == 0 and report["ended"]
    assert report["messages"] == len(messages) and report["updates"] == len(want)
    got = read_all("md.book", ring_dir, itch.BOOK_UPDATE)
    assert len(got) == len(want)
    fields = ("stock_locate", "side", "price", "level_shares", "level_orders", "best_bid",
              "best_bid_shares", "best_ask", "best_ask_shares", "cause")  # fmt: skip
    columns = [got[f].tolist() for f in fields]
    for i, (mine, ref) in enumerate(zip(zip(*columns, strict=True), want, strict=True)):
        assert mine == ref, (i, mine, ref)
    assert (got["recv_ns"] > 0).all()


# -- across network namespaces -------------------------------------------------


@pytest.fixture
def two_hosts():
    """Two network namespaces ("hosts") joined by a veth pair, each with a
    multicast route over it: (exchange, handler host, their addresses).
    Needs root (CAP_NET_ADMIN) and iproute2; CI has both and sets
    RINGCAST_REQUIRE_NETNS=1, so there a missing capability fails."""
    tag = f"rc{os.getpid() % 100000}"
    ns_a, ns_b, addr_a, addr_b = f"{tag}a", f"{tag}b", "10.78.0.1", "10.78.0.2"
    steps = [
        ["ip", "netns", "add", ns_a],
        ["ip", "netns", "add", ns_b],
        ["ip", "link", "add", f"{tag}x", "type", "veth", "peer", "name", f"{tag}y"],
        ["ip", "link", "set", f"{tag}x", "netns", ns_a],
        ["ip", "link", "set", f"{tag}y", "netns", ns_b],
        ["ip", "-n", ns_a, "addr", "add", f"{addr_a}/24", "dev", f"{tag}x"],
        ["ip", "-n", ns_b, "addr", "add", f"{addr_b}/24", "dev", f"{tag}y"],
        ["ip", "-n", ns_a, "link", "set", f"{tag}x", "up"],
        ["ip", "-n", ns_b, "link", "set", f"{tag}y", "up"],
        ["ip", "-n", ns_a, "route", "add", "239.0.0.0/8", "dev", f"{tag}x"],
        ["ip", "-n", ns_b, "route", "add", "239.0.0.0/8", "dev", f"{tag}y"],
    ]
    made = []
    try:
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                assert not os.environ.get("RINGCAST_REQUIRE_NETNS"), (step, done.stderr)
                pytest.skip(f"cannot make network namespaces here: {done.stderr.strip()}")
            if step[:3] == ["ip", "netns", "add"]:
                made.append(step[3])
        yield ns_a, ns_b, addr_a, addr_b
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_the_feed_crosses_hosts_in_network_namespaces(day, ring_dir, two_hosts):
    """The exchange (sender, retransmission server) in one namespace, the
    handler in another, multicast over a veth pair between them, packets
    skipped on purpose: everything arrives, in order."""
    path, messages = day
    ns_a, ns_b, addr_a, addr_b = two_hosts
    group, server = "239.78.0.1:47520", f"{addr_a}:47521"
    cli = [sys.executable, "-m", "ringcast", "feed"]
    handler = subprocess.Popen(
        ["ip", "netns", "exec", ns_b, *cli, "handle", "--group", group, "--interface", addr_b,
         "--bus", "md", "--dir", ring_dir, "--retransmit", server, "--idle-timeout", "20",
         "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_handler(handler, ring_dir)
        sent = subprocess.run(
            ["ip", "netns", "exec", ns_a, *cli, "send", path, "--group", group, "--interface",
             addr_a, "--ttl", "1", "--retransmit", server, "--rate", "200000", "--drop", "2",
             "--linger", "3", "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        out, err = handler.communicate(timeout=60)
    finally:
        handler.kill()
    assert handler.returncode == 0, err
    report, sent = json.loads(out), json.loads(sent.stdout)
    assert sent["dropped"][0] > 0 and report["recovered"] > 0
    assert report["delivered"] == len(messages) and report["lost"] == 0 and report["ended"]
    assert report["lines"][0]["group"] == group
    assert_stream_is(stream_records(ring_dir), messages, range(1, len(messages) + 1))


def test_bad_feed_arguments_say_what_to_do_and_make_nothing(small_day, ring_dir, tmp_path):
    path, _ = small_day
    group = GROUP.format(8, 47530)
    bad_send = [
        (dict(group="239.1.1.1"), "IPv4 ADDRESS:PORT"),
        (dict(group="10.0.0.1:5000"), "not a multicast group"),
        (dict(rate=1000, speed=2.0), "not both"),
        (dict(rate=-5), "positive numbers"),
        (dict(drop=150.0), "between 0 and 100"),
        (dict(drop="x"), "a list of packet numbers"),
        (dict(session="ELEVEN_CHARS"), "1 to 10 printable ASCII"),
        (dict(interface="nowhere"), "address of a local interface"),
        (dict(retransmit="127.0.0.1"), "IPv4 ADDRESS:PORT"),
        (dict(linger=-1.0), "seconds"),
    ]
    for kwargs, match in bad_send:
        args = {"group": group, **kwargs}
        with pytest.raises(ringcast.InvalidArgument, match=match):
            itch.send(path, args.pop("group"), **args)
    with pytest.raises(ringcast.FeedError, match="cannot read ITCH file"):
        itch.send(tmp_path / "missing.itch", group)
    cut = tmp_path / "cut.itch"
    cut.write_bytes(open(path, "rb").read()[:-3])
    with pytest.raises(ringcast.FeedError, match="cut short"):
        itch.send(cut, group)
    bad_handle = [
        (dict(group="10.0.0.1:5000"), "not a multicast group"),
        (dict(types=["Z"]), "no ITCH 5.0 message type"),
        (dict(session="ELEVEN_CHARS"), "1 to 10 printable ASCII"),
        (dict(request_timeout=0), "positive number of seconds"),
    ]
    for kwargs, match in bad_handle:
        args = {"group": group, **kwargs}
        with pytest.raises(ringcast.InvalidArgument, match=match):
            itch.handle(args.pop("group"), bus="md", dir=ring_dir, **args)
    assert ringcast.list_rings(ring_dir) == [], "a refused handler made rings"
    with pytest.raises(ringcast.RingNotFound, match=r"md\.itch"):
        itch.books("md", dir=ring_dir)
