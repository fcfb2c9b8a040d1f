"""The typed topic bus: topics as rings, dtype checks, listing, wildcard
subscriptions across processes (every message checked), asyncio, waiting
without spinning, and refusal of bad names and arguments."""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing as mp
import os
import re
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import uvloop

import ringcast
from ringcast import _bus

ctx = mp.get_context("spawn")
REPO = Path(__file__).resolve().parent.parent

MSG = np.dtype(
    [("seq", "<u8"), ("topic_id", "<u4"), ("pad", "<u4"), ("value", "<u8"), ("check", "<u8")]
)
OTHER = np.dtype([("price", "<f8"), ("qty", "<u4")])
K = np.uint64(0x9E3779B97F4A7C15)


def make_msgs(topic_id: int, start: int, n: int) -> np.ndarray:
    """Records whose ``seq`` is their place in the topic and whose ``check``
    covers the other fields, so a reader can prove each one whole and placed."""
    msgs = np.zeros(n, MSG)
    msgs["seq"] = np.arange(start, start + n, dtype=np.uint64)
    msgs["topic_id"] = topic_id
    with np.errstate(over="ignore"):
        msgs["value"] = msgs["seq"] * K + np.uint64(topic_id)
    msgs["check"] = check_of(msgs)
    return msgs


def check_of(msgs: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (msgs["seq"] * K) ^ msgs["value"] ^ (msgs["topic_id"].astype(np.uint64) << 40)


def msg_ok(msg: np.void) -> bool:
    return bool(check_of(np.array([msg], MSG))[0] == msg["check"])


def publish_topic(dir, topic, topic_id, total, ready, go, wait_for=None):
    """Child process: creates ``topic`` (bounded: nothing is overwritten
    unread), says so, and publishes ``total`` checked records on ``go``."""
    if wait_for is not None:
        assert wait_for.wait(30)
    pub = ringcast.Bus("md", dir=dir).publisher(topic, dtype=MSG, capacity=1024, bounded=True)
    ready.set()
    assert go.wait(30)
    for start in range(0, total, 500):
        pub.publish_batch(make_msgs(topic_id, start, min(500, total - start)), timeout=30)
    pub.close()


def publish_later(dir, topic, delay):
    """Child process: publishes one record into an existing multi-producer
    topic after ``delay`` s."""
    time.sleep(delay)
    bus = ringcast.Bus("md", dir=dir)
    with bus.publisher(topic, dtype=MSG, capacity=64, producers="many") as pub:
        pub.publish(make_msgs(0, 0, 1)[0])


def publish_then_hang(dir, topic, ready):
    """Child process: creates ``topic``, publishes one record, then waits to
    be killed (a publisher that dies without closing its ring)."""
    bus = ringcast.Bus("md", dir=dir)
    pub = bus.publisher(topic, dtype=MSG, capacity=64)
    pub.publish(make_msgs(0, 0, 1)[0])
    ready.set()
    time.sleep(60)


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    """Runs a coroutine on the default loop or on uvloop, within 30 s."""
    if request.param == "uvloop":
        return lambda coro: uvloop.run(asyncio.wait_for(coro, 30))
    return lambda coro: asyncio.run(asyncio.wait_for(coro, 30))


def recv_until(sub, pred, timeout=5.0):
    """Receives (discarding) until ``pred()`` holds."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        sub.try_recv()
        time.sleep(0.01)


# -- one topic ----------------------------------------------------------------


def test_typed_topic_is_a_ring_named_bus_dot_topic(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    assert bus.name == "md" and bus.dir == ring_dir
    assert bus.ring_name("quotes.nyse") == "md.quotes.nyse"
    with bus.publisher("quotes.nyse", dtype=MSG, capacity=256) as pub:
        assert isinstance(pub, ringcast.Publisher) and pub.name == "md.quotes.nyse"
        with bus.subscriber("quotes.nyse", dtype=MSG, start="oldest") as sub:
            assert isinstance(sub, ringcast.Subscriber) and sub.dtype == MSG
            pub.publish_batch(make_msgs(1, 0, 10))
            got = sub.recv_batch(100)
            assert got.dtype == MSG and list(got["seq"]) == list(range(10))
        # The dtype lives in the ring: a reader needs no dtype= to get records.
        with bus.subscriber("quotes.nyse", start="oldest") as sub:
            assert sub.dtype == MSG and int(sub.recv(timeout=1)["seq"]) == 0
    assert "md.quotes.nyse" in ringcast.list_rings(ring_dir)
    assert ringcast.ring_info("md.quotes.nyse", ring_dir)["cursor"] == 10
    out = subprocess.run(
        [sys.executable, "-m", "ringcast", "info", "md.quotes.nyse", "--dir", ring_dir],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and "md.quotes.nyse" in out.stdout, out.stderr


def test_raw_topic_carries_bytes(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    with bus.publisher("log", slot_size=32, capacity=16) as pub:
        sub = bus.subscriber("log", start="oldest")
        pub.publish(b"hello")
        assert sub.recv(timeout=1) == b"hello" and sub.dtype is None
        sub.close()


def test_attach_with_other_dtype_names_topic_and_both_dtypes(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    with bus.publisher("quotes", dtype=MSG, capacity=16), bus.publisher("raw", slot_size=8):
        with pytest.raises(ringcast.SchemaMismatch) as e:
            bus.subscriber("quotes", dtype=OTHER)
        assert "'quotes'" in str(e.value) and str(MSG) in str(e.value)
        assert str(OTHER) in str(e.value)
        with pytest.raises(
            ringcast.SchemaMismatch, match=r"'raw'.*raw bytes.*" + re.escape(str(OTHER))
        ):
            bus.subscriber("raw", dtype=OTHER)
        # The refused subscriber let its record go.
        assert ringcast.ring_info("md.quotes", ring_dir)["subscribers"] == []


@pytest.mark.parametrize("live", [False, True], ids=["closed", "live"])
def test_publisher_with_other_layout_is_refused_naming_both(ring_dir, live):
    bus = ringcast.Bus("md", dir=ring_dir)
    first = bus.publisher("quotes", dtype=MSG, capacity=64)
    raw = bus.publisher("raw", slot_size=16, capacity=64)
    if not live:
        first.close()
        raw.close()
    # Another dtype wins over a live publisher: stopping it would not help.
    with pytest.raises(ringcast.SchemaMismatch) as e:
        bus.publisher("quotes", dtype=OTHER, capacity=64)
    msg = str(e.value)
    assert "'quotes'" in msg and str(MSG) in msg and str(OTHER) in msg, msg
    assert "md.quotes.ring" in msg  # what to remove to start over
    with pytest.raises(ringcast.SchemaMismatch, match=r"'quotes'.*raw bytes.*slot_size=16"):
        bus.publisher("quotes", slot_size=16, capacity=64)
    with pytest.raises(ringcast.SchemaMismatch) as e:
        bus.publisher("raw", dtype=OTHER, capacity=64)
    assert "'raw'" in str(e.value) and "raw bytes" in str(e.value) and str(OTHER) in str(e.value)
    with pytest.raises(ringcast.SchemaMismatch, match=r"slot_size=16.*slot_size=32"):
        bus.publisher("raw", slot_size=32, capacity=64)
    # Same dtype, other layout: the message says which setting differs.
    with pytest.raises(ringcast.SchemaMismatch, match=r"'quotes'.*capacity=64.*capacity=65536"):
        bus.publisher("quotes", dtype=MSG)
    with pytest.raises(ringcast.SchemaMismatch, match=r"bounded=False.*bounded=True"):
        bus.publisher("quotes", dtype=MSG, capacity=64, bounded=True)
    with pytest.raises(ringcast.SchemaMismatch, match=r"heads_apart=False.*heads_apart=True"):
        bus.publisher("quotes", dtype=MSG, capacity=64, heads_apart=True)
    first.close()
    raw.close()


def test_publisher_takes_over_a_closed_topic_and_refuses_a_live_one(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    sub = None
    with bus.publisher("quotes", dtype=MSG, capacity=64) as pub:
        sub = bus.subscriber("quotes", start="oldest")
        pub.publish_batch(make_msgs(0, 0, 5))
        with pytest.raises(ringcast.PublisherExists, match=r"topic 'quotes' of bus 'md'"):
            bus.publisher("quotes", dtype=MSG, capacity=64)
    with bus.publisher("quotes", dtype=MSG, capacity=64) as again:
        assert again.sequence == 5  # the sequence continues
        again.publish_batch(make_msgs(0, 5, 5))
    assert [int(m["seq"]) for m in sub] == list(range(10))
    sub.close()


def test_missing_topic_lists_the_bus_topics(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    with pytest.raises(ringcast.RingNotFound, match="no topics there yet"):
        bus.subscriber("quotes")
    with bus.publisher("quotes", dtype=MSG, capacity=16), bus.publisher("trades", slot_size=8):
        ringcast.Bus("other", dir=ring_dir).publisher("x", slot_size=8).close()
        with pytest.raises(ringcast.RingNotFound) as e:
            bus.subscriber("qoutes")
        assert "'qoutes'" in str(e.value) and "its topics: quotes, trades" in str(e.value)
        assert isinstance(e.value, FileNotFoundError)


# -- listing ------------------------------------------------------------------


def test_topics_reports_layout_publisher_and_subscribers(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    pub = bus.publisher("quotes.a", dtype=MSG, capacity=128, bounded=True, timestamps=True)
    raw = bus.publisher("log", slot_size=48, capacity=16, producers="many")
    ringcast.Bus("mdx", dir=ring_dir).publisher("quotes.a", slot_size=8).close()  # other bus
    ringcast.Publisher.create("md", slot_size=8, capacity=16, dir=ring_dir).close()  # no topic
    sub = bus.subscriber("quotes.a", start="oldest")
    pub.publish_batch(make_msgs(0, 0, 7))
    for _ in range(3):
        sub.recv(timeout=1)
    raw.close()

    topics = bus.topics()
    assert [t.topic for t in topics] == ["log", "quotes.a"]
    log, quotes = topics
    assert isinstance(quotes, ringcast.TopicInfo)
    assert quotes.ring == "md.quotes.a" and quotes.dtype == MSG and quotes.slot_size == MSG.itemsize
    assert (quotes.capacity, quotes.bounded, quotes.producers, quotes.timestamps) == (
        128,
        True,
        "one",
        True,
    )
    assert quotes.published == 7
    assert quotes.publisher_pid == os.getpid() and quotes.publisher_alive
    assert not quotes.publisher_closed
    (s,) = quotes.subscribers
    assert isinstance(s, ringcast.TopicSubscriberInfo)
    assert (s.pid, s.alive, s.state, s.position, s.received, s.lost) == (
        os.getpid(),
        True,
        "active",
        3,
        3,
        0,
    )
    assert log.dtype is None and log.slot_size == 48 and log.producers == "many"
    assert log.publisher_closed and log.subscribers == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        quotes.topic = "x"  # type: ignore[misc]
    assert [t.topic for t in bus.topics("quotes.*")] == ["quotes.a"]
    assert bus.topics("nothing.*") == []
    sub.close()
    pub.close()


def test_topics_skips_vanished_and_warns_about_corrupt_rings(ring_dir, monkeypatch):
    bus = ringcast.Bus("md", dir=ring_dir)
    for t in ("a", "gone"):
        bus.publisher(t, slot_size=8, capacity=16).close()
    Path(ring_dir, "md.bad.ring").write_bytes(b"not a ring at all")
    real = _bus.ring_info

    def vanishing(name, dir=None):
        if name == "md.gone":  # removed between the listing and the read
            raise ringcast.RingNotFound(f"no ring named {name!r}")
        return real(name, dir)

    monkeypatch.setattr(_bus, "ring_info", vanishing)
    with pytest.warns(ringcast.RingWarning, match=r"skipping topic 'bad' of bus 'md'.*truncated"):
        topics = bus.topics()
    assert [t.topic for t in topics] == ["a"]
    # A wildcard subscription skips the corrupt topic the same way.
    with pytest.warns(ringcast.RingWarning, match="'bad'"):
        sub = bus.subscribe("*")
    assert sub.topics == ["a", "gone"]
    sub.close()


def test_a_topic_with_a_forged_schema_is_skipped_not_fatal(ring_dir):
    """A header schema numpy cannot read (it raised IndexError out of the
    listing) costs that one topic, with a warning, not the whole bus."""
    from test_hardening import forge

    bus = ringcast.Bus("md", dir=ring_dir)
    bus.publisher("good", dtype="<u8", capacity=16).close()
    with bus.publisher("bad", dtype="<u8", capacity=16) as pub:
        forge(str(pub.path), schema=b"numpy:[()]")
    with pytest.warns(ringcast.RingWarning, match=r"skipping topic 'bad'.*dtype description"):
        topics = bus.topics()
    assert [t.topic for t in topics] == ["good"]


PATTERN_CASES = {
    None: ["quotes", "quotes.a", "quotes.a.x", "quotes.b", "trades.a"],
    "quotes": ["quotes"],
    "quotes.*": ["quotes.a", "quotes.b"],
    "quotes.>": ["quotes.a", "quotes.a.x", "quotes.b"],
    "*.a": ["quotes.a", "trades.a"],
    "*": ["quotes"],
    ">": ["quotes", "quotes.a", "quotes.a.x", "quotes.b", "trades.a"],
    "*.*.x": ["quotes.a.x"],
    "quotes.*.>": ["quotes.a.x"],
    "quotes.c": [],
}


def test_patterns_follow_nats_rules(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    for t in PATTERN_CASES[None]:
        bus.publisher(t, slot_size=8, capacity=16).close()
    ringcast.Bus("mdx", dir=ring_dir).publisher("quotes.a", slot_size=8, capacity=16).close()
    for pattern, want in PATTERN_CASES.items():
        assert [t.topic for t in bus.topics(pattern)] == want, pattern
        if pattern is not None:
            with bus.subscribe(pattern) as sub:
                assert sub.topics == want, pattern


# -- wildcard subscriptions ---------------------------------------------------


def test_wildcard_reads_every_message_of_topics_published_by_other_processes(ring_dir):
    """quotes.a/b/c exist at subscribe(); quotes.d appears after it; other
    topics publish too and must not show up. Every record is checked."""
    total = 20_000
    bus = ringcast.Bus("md", dir=ring_dir)
    go, subscribed = ctx.Event(), ctx.Event()
    names = ["quotes.a", "quotes.b", "quotes.c", "quotes.d"]
    ready = [ctx.Event() for _ in names]
    procs = [
        ctx.Process(
            target=publish_topic,
            args=(ring_dir, t, i, total, ready[i], go, subscribed if t == "quotes.d" else None),
        )
        for i, t in enumerate(names)
    ]
    for p in procs:
        p.start()
    try:
        for e in ready[:3]:
            assert e.wait(30), "publisher did not start"
        noise = [
            bus.publisher("quotes.a.deep", dtype=MSG, capacity=64),
            bus.publisher("trades.a", dtype=MSG, capacity=64),
            bus.publisher("quotes", dtype=MSG, capacity=64),
            ringcast.Bus("mdx", dir=ring_dir).publisher("quotes.a", dtype=MSG, capacity=64),
        ]
        listed = {t.topic: t for t in bus.topics("quotes.*")}
        assert sorted(listed) == names[:3]
        for i, t in enumerate(names[:3]):
            assert listed[t].publisher_pid == procs[i].pid and listed[t].publisher_alive

        sub = bus.subscribe("quotes.*", dtype=MSG, start="oldest")
        assert sub.topics == names[:3]
        assert any(s.pid == os.getpid() for s in bus.topics("quotes.a")[0].subscribers)
        subscribed.set()
        assert ready[3].wait(30)
        recv_until(sub, lambda: "quotes.d" in sub.topics)  # created after subscribe()
        for n in noise:
            n.publish_batch(make_msgs(9, 0, 10))
        go.set()

        expected = dict.fromkeys(names, 0)
        bad = []
        for topic, msg in sub:  # ends when all four publishers closed
            tid = names.index(topic)
            if int(msg["topic_id"]) != tid or int(msg["seq"]) != expected[topic] or not msg_ok(msg):
                bad.append((topic, msg))
            expected[topic] += 1
        assert bad == []
        assert expected == dict.fromkeys(names, total)
        assert sub.received == dict.fromkeys(names, total)
        assert sub.lost == dict.fromkeys(names, 0)
        assert sub.topics == names
        sub.close()
        for n in noise:
            n.close()
    finally:
        go.set()
        subscribed.set()
        for p in procs:
            p.join(30)
    assert [p.exitcode for p in procs] == [0] * 4


def test_delivery_is_round_robin_over_topics(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    pubs = [bus.publisher(t, dtype=MSG, capacity=512) for t in ("x.a", "x.b", "x.c")]
    pubs[0].publish_batch(make_msgs(0, 0, 300))  # a busy topic
    pubs[1].publish_batch(make_msgs(1, 0, 20))
    pubs[2].publish_batch(make_msgs(2, 0, 20))
    with bus.subscribe("x.*", start="oldest") as sub:
        first = [sub.recv(timeout=1)[0] for _ in range(60)]
        # The quiet topics are served as often as the busy one while they have messages.
        assert first.count("x.b") == 20 and first.count("x.c") == 20
        assert first[:6] == ["x.a", "x.b", "x.c"] * 2
        rest = [sub.try_recv() for _ in range(281)]
        assert [t for t, _ in rest[:-1]] == ["x.a"] * 280 and rest[-1] is None
    for p in pubs:
        p.close()


def test_start_applies_to_existing_topics_and_new_topics_start_at_oldest(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    a = bus.publisher("q.a", dtype=MSG, capacity=64)
    a.publish_batch(make_msgs(0, 0, 3))
    sub = bus.subscribe("q.*", start="latest", rescan=0.05)
    assert sub.try_recv() is None
    a.publish(make_msgs(0, 3, 1)[0])
    topic, msg = sub.recv(timeout=1)
    assert topic == "q.a" and int(msg["seq"]) == 3
    b = bus.publisher("q.b", dtype=MSG, capacity=64)
    b.publish_batch(make_msgs(1, 0, 4))  # before the subscriber has seen q.b
    got = [sub.recv(timeout=2) for _ in range(4)]
    assert [(t, int(m["seq"])) for t, m in got] == [("q.b", i) for i in range(4)]
    sub.close()
    a.close()
    b.close()


def test_gt_matches_deeper_topics_and_single_topic_pattern_waits_for_it(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    with (
        bus.subscribe("quotes.>", rescan=0.05) as deep,
        bus.subscribe("quotes.x", rescan=0.05) as one,
    ):
        assert deep.topics == [] and one.topics == []
        pubs = {t: bus.publisher(t, dtype=MSG, capacity=64) for t in ("quotes.x", "quotes.y.z")}
        other = bus.publisher("quotes", dtype=MSG, capacity=64)
        other.publish(make_msgs(5, 0, 1)[0])
        for i, p in enumerate(pubs.values()):
            p.publish(make_msgs(i, 0, 1)[0])
        got = sorted(deep.recv(timeout=2)[0] for _ in range(2))
        assert got == ["quotes.x", "quotes.y.z"]
        assert one.recv(timeout=2)[0] == "quotes.x"
        assert deep.try_recv() is None and one.try_recv() is None
        assert deep.topics == ["quotes.x", "quotes.y.z"] and one.topics == ["quotes.x"]
        for p in [*pubs.values(), other]:
            p.close()


def test_iteration_ends_when_every_publisher_closed(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    a = bus.publisher("t.a", dtype=MSG, capacity=64)
    b = bus.publisher("t.b", dtype=MSG, capacity=64)
    sub = bus.subscribe("t.*")

    def feed():
        for i in range(20):
            a.publish(make_msgs(0, i, 1)[0])
            time.sleep(0.002)
        a.close()  # t.b still open: iteration goes on
        time.sleep(0.2)
        b.publish_batch(make_msgs(1, 0, 5))
        b.close()

    t = threading.Thread(target=feed)
    t.start()
    got = [topic for topic, _ in sub]
    t.join()
    assert got.count("t.a") == 20 and got.count("t.b") == 5
    with pytest.raises(ringcast.RingClosed, match=r"every topic matching 't\.\*'"):
        sub.recv(timeout=1)
    sub.close()

    # Before ending, one last look for new topics (however long the rescan period).
    c = bus.publisher("u.c", dtype=MSG, capacity=64)
    sub = bus.subscribe("u.*", rescan=600)
    c.publish_batch(make_msgs(0, 0, 3))
    c.close()
    d = bus.publisher("u.d", dtype=MSG, capacity=64)
    d.publish_batch(make_msgs(1, 0, 2))
    d.close()
    want = [("u.c", 0), ("u.c", 1), ("u.c", 2), ("u.d", 0), ("u.d", 1)]
    assert [(t, int(m["seq"])) for t, m in sub] == want
    sub.close()


def test_ended_topic_is_read_again_when_reopened_or_recreated(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    pub = bus.publisher("t.a", dtype=MSG, capacity=64)
    sub = bus.subscribe("t.*", rescan=0.05)
    pub.publish_batch(make_msgs(0, 0, 2))
    pub.close()
    assert [int(m["seq"]) for _, m in sub] == [0, 1]
    with bus.publisher("t.a", dtype=MSG, capacity=64) as again:  # takes the topic over
        again.publish(make_msgs(0, 2, 1)[0])
        assert int(sub.recv(timeout=2)[1]["seq"]) == 2
    assert list(sub) == []
    Path(ring_dir, "md.t.a.ring").unlink()
    with bus.publisher("t.a", dtype=MSG, capacity=64) as fresh:  # a new ring of that name
        fresh.publish_batch(make_msgs(0, 0, 2))
        assert [int(sub.recv(timeout=2)[1]["seq"]) for _ in range(2)] == [0, 1]
    assert list(sub) == []
    assert sub.received == {"t.a": 5} and sub.lost == {"t.a": 0}
    sub.close()


def test_dtype_is_checked_for_every_matched_topic(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    a = bus.publisher("q.a", dtype=MSG, capacity=64)
    b = bus.publisher("q.b", dtype=OTHER, capacity=64)
    with pytest.raises(ringcast.SchemaMismatch) as e:
        bus.subscribe("q.*", dtype=MSG)
    assert "'q.b'" in str(e.value) and str(MSG) in str(e.value) and str(OTHER) in str(e.value)
    assert ringcast.ring_info("md.q.a", ring_dir)["subscribers"] == []  # nothing left attached
    b.close()
    Path(ring_dir, "md.q.b.ring").unlink()

    sub = bus.subscribe("q.*", dtype=MSG, rescan=0.05)
    raw = bus.publisher("q.raw", slot_size=8, capacity=16)
    # A topic of another dtype that appears later is raised once, then left out.
    with pytest.raises(
        ringcast.SchemaMismatch, match=r"'q.raw'.*raw bytes.*" + re.escape(str(MSG))
    ):
        sub.recv(timeout=2)
    a.publish(make_msgs(0, 0, 1)[0])
    assert sub.recv(timeout=2)[0] == "q.a"
    assert sub.topics == ["q.a"]
    sub.close()
    a.close()
    raw.close()


def test_eviction_from_a_bounded_topic_is_raised_once_then_reading_goes_on(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    slow = bus.publisher("b", dtype=MSG, capacity=16, bounded=True, liveness_timeout=0.2)
    other = bus.publisher("ok", dtype=MSG, capacity=64)
    sub = bus.subscribe("*")
    slow.publish_batch(make_msgs(0, 0, 40), timeout=10)  # waits 0.2 s, then evicts `sub`
    assert slow.evictions == 1
    other.publish(make_msgs(1, 0, 1)[0])
    with pytest.raises(
        ringcast.Evicted, match=r"topic 'b' of bus 'md'.*from sequence 24 on.*24 messages"
    ):
        while True:
            sub.recv(timeout=2)
    got = []
    while (m := sub.try_recv()) is not None:
        got.append((m[0], int(m[1]["seq"])))
    assert [s for t, s in got if t == "b"] == list(range(24, 40))  # what the ring still held
    assert sub.received["ok"] == 1 and sub.lost["ok"] == 0  # the other topic was unaffected
    assert sub.received["b"] == 16 and sub.lost["b"] == 24
    slow.publish(make_msgs(0, 40, 1)[0], timeout=5)  # the new subscriber is not evicted
    assert sub.recv(timeout=2)[0] == "b"
    sub.close()
    slow.close()
    other.close()


def test_wait_strategies_all_deliver(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    pub = bus.publisher("w", dtype=MSG, capacity=64)
    for wait in (
        ringcast.WaitStrategy.busy_spin(),
        ringcast.WaitStrategy.yielding(),
        ringcast.WaitStrategy.park(),
        ringcast.WaitStrategy.adaptive(spin=10, yield_=5),
    ):
        with bus.subscribe("w", wait=wait) as sub:
            threading.Timer(0.05, pub.publish, (make_msgs(0, 1, 1)[0],)).start()
            assert sub.recv(timeout=5)[0] == "w"
            with pytest.raises(ringcast.Timeout):
                sub.recv(timeout=0.05)
    pub.close()


# -- waiting --------------------------------------------------------------------


def test_blocking_recv_sleeps_instead_of_spinning(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    pubs = [bus.publisher(t, dtype=MSG, capacity=64) for t in ("s.a", "s.b", "s.c")]
    with bus.subscribe("s.*") as sub:
        cpu, wall = time.process_time(), time.monotonic()
        with pytest.raises(ringcast.Timeout, match=r"'s.\*' within 0.5s"):
            sub.recv(timeout=0.5)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    assert 0.5 <= wall < 1.5
    assert cpu < 0.15, f"{cpu:.3f} s of CPU in a {wall:.3f} s wait"
    for p in pubs:
        p.close()


def test_blocked_recv_wakes_for_a_message_from_another_process(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    # A multi-producer topic, so that the child can publish while it stays open here.
    mine = bus.publisher("late", dtype=MSG, capacity=64, producers="many")
    quiet = bus.publisher("quiet", dtype=MSG, capacity=64)
    with bus.subscribe(">", wait=ringcast.WaitStrategy.park()) as sub:
        p = ctx.Process(target=publish_later, args=(ring_dir, "late", 0.5))
        p.start()
        try:
            cpu, wall = time.process_time(), time.monotonic()
            topic, msg = sub.recv(timeout=20)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            assert topic == "late" and msg_ok(msg)
            assert cpu < 0.3 * wall, f"{cpu:.3f} s of CPU in a {wall:.3f} s wait"
        finally:
            p.join(30)
    assert p.exitcode == 0
    mine.close()
    quiet.close()


def test_a_dead_publisher_costs_a_waiting_receive_no_cpu(ring_dir):
    """A topic whose publisher died is reported to the wait once; the wait
    then sleeps on, for a publisher that takes the topic over."""
    bus = ringcast.Bus("md", dir=ring_dir)
    ready = ctx.Event()
    p = ctx.Process(target=publish_then_hang, args=(ring_dir, "dead", ready))
    p.start()
    try:
        assert ready.wait(30)
        with bus.subscribe("dead", start="oldest", wait=ringcast.WaitStrategy.park()) as sub:
            os.kill(p.pid, 9)
            p.join(10)
            assert sub.recv(timeout=5)[0] == "dead"
            cpu, wall = time.process_time(), time.monotonic()
            with pytest.raises(ringcast.Timeout):
                sub.recv(timeout=0.6)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            assert cpu < 0.3 * wall, f"{cpu:.3f} s of CPU in a {wall:.3f} s wait"
    finally:
        p.kill()
        p.join(10)


def test_close_wakes_a_receive_blocked_in_another_thread(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    pub = bus.publisher("c", dtype=MSG, capacity=64)
    # No rescans: only close() itself can wake the waiting thread.
    sub = bus.subscribe("c", wait=ringcast.WaitStrategy.park(), rescan=None)
    errors = []

    def blocked():
        try:
            sub.recv(timeout=20)
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.2)
    started = time.monotonic()
    sub.close()
    t.join(5)
    assert not t.is_alive() and time.monotonic() - started < 2
    assert len(errors) == 1 and isinstance(errors[0], ringcast.RingClosed)
    assert sub.closed and sub.received == {"c": 0}
    with pytest.raises(ringcast.RingClosed):
        sub.try_recv()
    assert list(sub) == []
    sub.close()  # idempotent
    assert ringcast.ring_info("md.c", ring_dir)["subscribers"] == []
    pub.close()


# -- asyncio --------------------------------------------------------------------


def test_async_wildcard_receive(ring_dir, run):
    bus = ringcast.Bus("md", dir=ring_dir)
    a = bus.publisher("quotes.a", dtype=MSG, capacity=256)
    b = bus.publisher("quotes.b.c", dtype=MSG, capacity=256)

    def feed():
        for i in range(0, 200, 10):
            a.publish_batch(make_msgs(0, i, 10))
            b.publish_batch(make_msgs(1, i, 10))
            time.sleep(0.002)
        d = bus.publisher("quotes.d", dtype=MSG, capacity=256)  # appears while awaited
        time.sleep(0.15)
        d.publish_batch(make_msgs(2, 0, 50))
        for p in (a, b, d):
            p.close()

    async def main():
        sub = bus.subscribe("quotes.>", dtype=MSG, rescan=0.05)
        feeder = threading.Thread(target=feed)
        feeder.start()
        seen: dict[str, list[int]] = {}
        async for topic, msg in sub:
            assert msg_ok(msg)
            seen.setdefault(topic, []).append(int(msg["seq"]))
        feeder.join()
        sub.close()
        return seen

    seen = run(main())
    assert seen == {
        "quotes.a": list(range(200)),
        "quotes.b.c": list(range(200)),
        "quotes.d": list(range(50)),
    }


def test_async_timeout_and_close_cost_no_cpu(ring_dir, run):
    bus = ringcast.Bus("md", dir=ring_dir)
    pub = bus.publisher("a", dtype=MSG, capacity=64)

    async def main():
        sub = bus.subscribe("*", rescan=None)  # only close() can wake the waiting task
        cpu, wall = time.process_time(), time.monotonic()
        with pytest.raises(ringcast.Timeout):
            await sub.recv_async(timeout=0.5)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        assert 0.5 <= wall < 1.5 and cpu < 0.15, (cpu, wall)

        asyncio.get_running_loop().call_later(0.05, pub.publish, make_msgs(0, 0, 1)[0])
        topic, msg = await sub.recv_async(timeout=5)
        assert topic == "a" and int(msg["seq"]) == 0

        pending = asyncio.create_task(sub.recv_async())  # a cancelled wait leaves it usable
        await asyncio.sleep(0.05)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        asyncio.get_running_loop().call_later(0.05, pub.publish, make_msgs(0, 1, 1)[0])
        assert int((await sub.recv_async(timeout=5))[1]["seq"]) == 1

        waiter = asyncio.create_task(sub.recv_async())
        await asyncio.sleep(0.1)
        with pytest.raises(RuntimeError, match="already awaiting"):
            await sub.recv_async()
        sub.close()  # wakes the waiting task
        with pytest.raises(ringcast.RingClosed):
            await waiter
        assert sub.closed and sub.received == {"a": 2}
        assert [x async for x in sub] == []

    run(main())
    pub.close()


# -- bad input ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a.b", "a b", "a/b", "x" * 199, "*", 5, None])
def test_bad_bus_names(ring_dir, name):
    with pytest.raises(ringcast.InvalidName, match=r"A-Z a-z 0-9 _ -"):
        ringcast.Bus(name, dir=ring_dir)


@pytest.mark.parametrize(
    "topic", ["", ".a", "a.", "a..b", "a b", "a/b", "é", "a.*", ">", "x" * 198, 7]
)
def test_bad_topic_names(ring_dir, topic):
    bus = ringcast.Bus("md", dir=ring_dir)
    with pytest.raises(ringcast.InvalidName, match=r"letters, digits|at most 200|wildcards"):
        bus.publisher(topic, slot_size=8, capacity=16)
    with pytest.raises(ringcast.InvalidName):
        bus.subscriber(topic)
    assert ringcast.list_rings(ring_dir) == []


@pytest.mark.parametrize("pattern", ["", "a.>.b", ">.a", "a*", "a.b*", "a..b", ".a", "a.", 3])
def test_bad_patterns(ring_dir, pattern):
    bus = ringcast.Bus("md", dir=ring_dir)
    with pytest.raises(ringcast.InvalidName, match=r"'\*' \(exactly one token\)"):
        bus.subscribe(pattern)
    with pytest.raises(ringcast.InvalidName):
        bus.topics(pattern)


def test_bad_arguments(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    bad = [
        (lambda: ringcast.Bus("md", dir=5), "dir must be"),
        (lambda: ringcast.Bus("md", dir=""), "dir must be"),
        (lambda: bus.publisher("a", capacity=16), "exactly one"),
        (lambda: bus.publisher("a", dtype=MSG, slot_size=8, capacity=16), "exactly one"),
        (lambda: bus.publisher("a", dtype=object, capacity=16), "Python objects"),
        (lambda: bus.publisher("a", dtype=MSG, capacity="big"), "capacity"),
        (lambda: bus.publisher("a", dtype=MSG, capacity=16, dir=ring_dir), "dir= is not"),
        (lambda: bus.publisher("a", dtype=MSG, capacity=16, exist_ok=False), "exist_ok= is"),
        (lambda: bus.publisher("a", dtype=MSG, capacity=16, producers="all"), "producers"),
        (lambda: bus.subscriber("a", dir=ring_dir), "dir= is not"),
        (lambda: bus.subscriber("a", dtype="no such dtype"), "not a numpy dtype"),
        (lambda: bus.subscribe("a", dtype="no such dtype"), "not a numpy dtype"),
        (lambda: bus.subscribe("a", start="newest"), "start must be"),
        (lambda: bus.subscribe("a", start=-1), "start must be"),
        (lambda: bus.subscribe("a", start=True), "start must be"),
        (lambda: bus.subscribe("a", wait="park"), "WaitStrategy"),
        (lambda: bus.subscribe("a", rescan=0), "rescan must be"),
        (lambda: bus.subscribe("a", rescan=-1.0), "rescan must be"),
        (lambda: bus.subscribe("a", rescan="1"), "rescan must be"),
    ]
    for call, match in bad:
        with pytest.raises((ringcast.InvalidArgument, ringcast.InvalidName), match=match):
            call()
    assert ringcast.list_rings(ring_dir) == []
    with bus.subscribe("a") as sub:
        for timeout in (-1, "1", True, float("nan")):
            with pytest.raises(ringcast.InvalidArgument, match="timeout must be"):
                sub.recv(timeout=timeout)
    with pytest.raises(ringcast.InvalidArgument, match="bus must be"):
        ringcast.TopicSubscriber("md", "a")  # type: ignore[arg-type]


# -- the example ------------------------------------------------------------------


DEMO_ARGS = ["--demo", "--count", "3000"]


def test_async_two_topics_example_runs_its_demo():
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "async_two_topics.py"), *DEMO_ARGS],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "quotes: 3000 received, 0 lost, in order" in out.stdout, out.stdout
    assert "trades: 3000 received, 0 lost, in order" in out.stdout, out.stdout


def test_no_warnings_on_a_clean_bus(ring_dir):
    bus = ringcast.Bus("md", dir=ring_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with bus.publisher("a", slot_size=8, capacity=16):
            assert [t.topic for t in bus.topics()] == ["a"]
            bus.subscribe(">").close()
