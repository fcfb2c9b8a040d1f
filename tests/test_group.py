"""Subscriber groups: one native subscriber (one ring record, one read of the
ring) serving several consumers of one process, each at its own pace, with
exact per-consumer loss accounting."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import random
import signal
import threading
import time
from typing import Any

import numpy as np
import pytest
import uvloop

import ringcast
from _workers import (
    REC,
    StreamCheck,
    checksum,
    make_records,
    produce_batch_then_stop,
    publish_stream,
)

ctx = mp.get_context("spawn")

# A consumer that waits for a slower one in the same thread waits forever:
# fail fast instead.
pytestmark = pytest.mark.timeout(60)


def fill_until_full(pub: ringcast.Publisher, start: int) -> int:
    """try_publish records numbered from `start` until RingFull; returns how many."""
    n = 0
    while True:
        try:
            pub.try_publish(make_records(start + n, 1)[0])
        except ringcast.RingFull:
            return n
        n += 1


def assert_accounting(c: ringcast.GroupConsumer) -> None:
    start = c.group.start_sequence
    assert c.received + c.lost == c.position - start, c


class Checked:
    """Reads a consumer while checking, at every read, that its counters
    describe exactly the messages it gets (seq field == ring sequence)."""

    def __init__(self, c: ringcast.GroupConsumer) -> None:
        self.c = c
        self.seqs: list[np.ndarray] = []
        self.bad = 0

    def _before(self) -> tuple[int, int, int, int]:
        c = self.c
        return c.buffered, c.position, c.lost, c.received

    def _check(self, before: tuple[int, int, int, int], recs: np.ndarray) -> None:
        buffered, position, lost, received = before
        c = self.c
        seqs = recs["seq"].astype(np.int64)
        if buffered:
            # The next message was buffered: its sequence was known.
            assert int(seqs[0]) == position, (c.name, int(seqs[0]), position)
            assert lost == position - c.group.start_sequence - received
        else:
            assert int(seqs[0]) >= position, (c.name, int(seqs[0]), position)
        assert np.all(np.diff(seqs) > 0), c.name
        self.bad += int(np.count_nonzero(checksum(recs) != recs["checksum"]))
        self.seqs.append(seqs)
        assert c.position > int(seqs[-1])
        if c.buffered:
            # (Else position and lost follow the group's reads of the ring,
            # which other threads may make between the two lookups.)
            assert_accounting(c)

    def one(self, timeout: float | None = 0.0) -> bool:
        before = self._before()
        m = self.c.try_recv() if timeout == 0.0 else self.c.recv(timeout=timeout)
        if m is None:
            return False
        recs = np.array([m], dtype=REC)
        self._check(before, recs)
        return True

    def batch(self, max_n: int, timeout: float | None = 0.0) -> int:
        before = self._before()
        recs = self.c.recv_batch(max_n, timeout=timeout)
        if len(recs):
            self._check(before, recs)
        return len(recs)

    def all(self) -> np.ndarray:
        return np.concatenate(self.seqs) if self.seqs else np.empty(0, np.int64)


def test_one_subscriber_record_serves_every_consumer(ring_dir):
    pub = ringcast.Publisher.create("one", dtype=REC, capacity=1024, dir=ring_dir)
    with ringcast.SubscriberGroup("one", ["a", "b", "c"], dir=ring_dir) as g:
        assert len(ringcast.ring_info("one", ring_dir)["subscribers"]) == 1
        pub.publish_batch(make_records(0, 300))
        for name in g.consumers:
            got = g[name].recv_batch(1000)
            assert list(got["seq"]) == list(range(300))
        info = ringcast.ring_info("one", ring_dir)
        assert len(info["subscribers"]) == 1
        assert info["subscribers"][0]["position"] == 300  # the ring was read once
        assert g.received == 300 and g.lost == 0
    assert ringcast.ring_info("one", ring_dir)["subscribers"] == []


def _consume(c: ringcast.GroupConsumer, style: str, total: int, out: dict[str, Any]) -> None:
    """Reads `c` until the stream ends, in one of three styles (speeds)."""
    try:
        check = StreamCheck()
        if style == "fast":
            while True:
                try:
                    check.add(c.recv_batch(4096, timeout=None))
                except ringcast.RingClosed:
                    break
        elif style == "medium":
            while True:
                try:
                    check.add(c.recv_batch(300, timeout=None))
                except ringcast.RingClosed:
                    break
                time.sleep(0.0001)
        else:  # one message at a time, pausing now and then
            recs = np.empty(total, REC)
            n = 0
            for m in c:
                recs[n] = m
                n += 1
                if n % 25_000 == 0:
                    time.sleep(0.02)
            check.add(recs[:n])
        out[c.name] = (check, c.received, c.lost, c.position, c.lag)
    except BaseException as e:
        out[c.name] = e


def test_bounded_ring_every_consumer_gets_every_message(ring_dir):
    """A publisher process and 3 consumer threads at different speeds: the
    slowest holds the group back, the bounded ring holds the publisher back,
    nobody loses anything."""
    total, capacity = 240_000, 4096
    ready, go = ctx.Event(), ctx.Event()
    opts = {"bounded": True, "liveness_timeout": 120.0}
    pub = ctx.Process(
        target=publish_stream,
        args=(ring_dir, "bnd", total, 2000, capacity, ready, go, 0, opts),
    )
    pub.start()
    try:
        assert ready.wait(60), "publisher did not start"
        g = ringcast.SubscriberGroup(
            "bnd", ["fast", "medium", "slow"], dir=ring_dir, dtype=REC, buffer=2048
        )
        out: dict[str, Any] = {}
        threads = [
            threading.Thread(target=_consume, args=(g[n], n, total, out)) for n in g.consumers
        ]
        for t in threads:
            t.start()
        go.set()
        assert len(ringcast.ring_info("bnd", ring_dir)["subscribers"]) == 1
        for t in threads:
            t.join(120)
            assert not t.is_alive()
    finally:
        go.set()
        pub.join(60)
    assert pub.exitcode == 0
    for name in ("fast", "medium", "slow"):
        r = out[name]
        assert not isinstance(r, BaseException), r
        check, received, lost, position, lag = r
        assert check.received == total, name
        assert (check.gaps, check.out_of_order, check.bad_checksums) == (0, 0, 0), name
        assert (check.first, check.last) == (0, total - 1), name
        assert (received, lost, position, lag) == (total, 0, total, 0), name
    assert (g.received, g.lost, g.position, g.buffered) == (total, 0, total, 0)
    g.close()


def test_slow_consumer_holds_the_group_back_on_a_bounded_ring(ring_dir):
    capacity, buffer = 64, 32
    pub = ringcast.Publisher.create(
        "hold", dtype=REC, capacity=capacity, dir=ring_dir, bounded=True
    )
    g = ringcast.SubscriberGroup("hold", ["fast", "slow"], dir=ring_dir, buffer=buffer)
    fast, slow = g["fast"], g["slow"]
    sent = fill_until_full(pub, 0)
    assert sent == capacity
    # The group reads only as far as the slowest consumer allows...
    assert list(fast.recv_batch(1000)["seq"]) == list(range(buffer))
    assert len(fast.recv_batch(1000)) == 0 and fast.try_recv() is None
    assert (g.buffered, g.position) == (buffer, buffer)
    # ...so the publisher gets exactly the buffer's worth of room, no more.
    sent += fill_until_full(pub, sent)
    assert sent == capacity + buffer
    assert len(fast.recv_batch(1000)) == 0
    assert (fast.position, fast.lag, fast.received, fast.lost) == (buffer, capacity, buffer, 0)
    assert (slow.position, slow.lag, slow.received, slow.lost) == (0, sent, 0, 0)
    # The slow consumer reads 10: room for exactly 10 more, all the way up.
    assert list(slow.recv_batch(10)["seq"]) == list(range(10))
    assert list(fast.recv_batch(1000)["seq"]) == list(range(buffer, buffer + 10))
    assert fill_until_full(pub, sent) == 10
    sent += 10
    # Nothing was lost anywhere; everyone still gets everything in order.
    pub.close()
    got = {n: [] for n in g.consumers}
    while not all(g[n].ended for n in g.consumers):
        for n in g.consumers:
            if not g[n].ended:  # (blocking here would wait for the other one forever)
                got[n] += list(g[n].recv_batch(7)["seq"])
    assert got["fast"] == list(range(buffer + 10, sent))
    assert got["slow"] == list(range(10, sent))
    assert g.lost == 0 and g.received == sent
    g.close()


def test_lossy_ring_lapping_exact_accounting(ring_dir):
    """Random interleavings of publishing and reading on a small lossy ring:
    the group is lapped over and over; at every read each consumer's
    position and lost count describe exactly the messages it gets, and all
    consumers see the same stream."""
    rng = random.Random(7)
    pub = ringcast.Publisher.create("lap", dtype=REC, capacity=64, dir=ring_dir)
    g = ringcast.SubscriberGroup("lap", ["a", "b", "c"], dir=ring_dir, buffer=48)
    readers = [Checked(g[n]) for n in g.consumers]
    sent = 0
    for _ in range(3000):
        n = rng.choice([0, 0, 1, 5, 20, 60, 150])
        if n:
            pub.publish_batch(make_records(sent, n))
            sent += n
        for r in readers:
            for _ in range(rng.choice([0, 1, 2])):
                if rng.random() < 0.5:
                    r.one()
                else:
                    r.batch(rng.choice([1, 3, 16, 100]))
    pub.close()
    while not all(r.c.ended for r in readers):
        for r in readers:
            if not r.c.ended:
                r.batch(rng.choice([1, 5, 40]))
    streams = [r.all() for r in readers]
    for r, seqs in zip(readers, streams, strict=True):
        c = r.c
        assert r.bad == 0
        assert c.received == len(seqs) and c.received + c.lost == sent == c.position
        assert np.array_equal(seqs, streams[0]), "every consumer sees the same stream"
    assert g.lost == readers[0].c.lost > 0 and g.received == readers[0].c.received > 0
    # Lapping found messages and lost ones, both in large numbers.
    assert g.lost > sent // 4 and g.received > sent // 10
    g.close()


def _read_checked(r: Checked, style: str, errors: list[BaseException]) -> None:
    try:
        while True:
            try:
                if style == "one":
                    r.one(timeout=None)
                else:
                    r.batch(64 if style == "small" else 1000, timeout=None)
                    if style == "small":
                        time.sleep(0.00005)
            except ringcast.RingClosed:
                return
    except BaseException as e:
        errors.append(e)
        r.c.group.close()  # the others would wait for this one forever


def test_lossy_ring_lapping_with_threads(ring_dir):
    """A publisher thread outruns 3 consumer threads on a lossy ring: counts
    stay exact and every consumer sees the same stream."""
    total = 200_000
    pub = ringcast.Publisher.create("lapt", dtype=REC, capacity=256, dir=ring_dir)
    g = ringcast.SubscriberGroup("lapt", ["one", "small", "big"], dir=ring_dir, buffer=200)
    readers = {n: Checked(g[n]) for n in g.consumers}
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_read_checked, args=(readers[n], n, errors)) for n in g.consumers
    ]
    for t in threads:
        t.start()
    records = make_records(0, total)
    # Chunks the consumers can about keep up with, paced, and now and then a
    # burst of many laps at once.
    i = 0
    while i < total:
        n = 3000 if i % 40_000 == 0 else 200
        pub.publish_batch(records[i : i + n])
        i += n
        time.sleep(0.0002)
    pub.close()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    assert not errors, errors
    streams = {n: r.all() for n, r in readers.items()}
    for n, r in readers.items():
        assert r.bad == 0
        assert r.c.received + r.c.lost == total == r.c.position
        assert np.array_equal(streams[n], streams["one"])
    assert g.received + g.lost == total
    assert g.lost > 0 and g.received > 0
    g.close()


def test_a_dead_producers_range_skipped_mid_batch_is_placed_exactly(ring_dir):
    """A producer dies with most of a claimed batch unwritten, and a survivor
    publishes after it: one batch read delivers messages on both sides of
    the skipped range. The group's consumers, and a plain subscriber's
    ``seqs=``, say exactly where the gap is."""
    claim_timeout, before, batch, stop_at, after = 0.1, 20, 300, 50, 100
    name = "dead"
    survivor = ringcast.Publisher.create(
        name, dtype=REC, capacity=1024, dir=ring_dir, producers="many", claim_timeout=claim_timeout
    )
    g = ringcast.SubscriberGroup(name, ["a", "b"], dir=ring_dir, start="oldest", buffer=1000)
    first, second = (
        ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest") for _ in range(2)
    )
    ready = ctx.Event()
    victim = ctx.Process(
        target=produce_batch_then_stop, args=(ring_dir, name, before, batch, stop_at, ready)
    )
    victim.start()
    assert ready.wait(30)
    _, status = os.waitpid(victim.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status), "the producer should have stopped itself mid-batch"
    # Ring sequences: the victim's 0..69 written, 70..319 claimed and never
    # written; the survivor's 320..419 (their `seq` fields say the same).
    survivor.publish_batch(make_records(before + batch, after))
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(10)
    # One reader finds the dead producer and declares its range lost: from
    # then on every reader skips it without waiting, inside one batch.
    got = 0
    while got < before + stop_at + after:
        got += len(first.recv_batch(1000, timeout=5))
    assert first.lost == batch - stop_at
    expected = list(range(before + stop_at)) + list(range(before + batch, before + batch + after))
    out = np.zeros(1000, REC)
    seqs = np.zeros(1000, np.uint64)
    n = second.recv_batch_into(out, seqs=seqs)
    assert n == len(expected) and list(seqs[:n]) == expected == list(out["seq"][:n])
    a, b = g["a"], g["b"]
    recs = a.recv_batch(1000)  # the group's one read of the ring
    assert list(recs["seq"]) == expected and g.received == len(expected)
    assert (a.received, a.lost, a.position) == (len(expected), batch - stop_at, 420)
    positions = []
    while b.buffered:
        positions.append(b.position)
        assert int(b.recv()["seq"]) == positions[-1]
        assert b.received + b.lost == b.position - g.start_sequence
    assert positions == expected
    assert (b.received, b.lost, g.lost) == (a.received, a.lost, a.lost)
    for end in (first, second, g, survivor):
        end.close()


def test_counters(ring_dir):
    pub = ringcast.Publisher.create("cnt", dtype=REC, capacity=256, dir=ring_dir)
    pub.publish_batch(make_records(0, 5))  # before the group: not seen with "latest"
    g = ringcast.SubscriberGroup("cnt", ["x", "y"], dir=ring_dir, buffer=16)
    x, y = g["x"], g["y"]
    assert g.start_sequence == 5 and g.dtype == REC and g.buffer == 16
    assert (g.received, g.lost, g.position, g.lag, g.buffered) == (0, 0, 5, 0, 0)
    pub.publish_batch(make_records(5, 20))
    assert (x.position, x.lag, g.lag) == (5, 20, 20)
    assert int(x.recv()["seq"]) == 5
    assert (g.received, g.position, g.buffered) == (16, 21, 16)  # read up to the buffer
    assert (x.received, x.position, x.lag, x.buffered) == (1, 6, 19, 15)
    assert (y.received, y.position, y.lag, y.buffered) == (0, 5, 20, 16)
    assert len(x.recv_batch(100)) == 15  # the rest waits for y to make room
    assert x.try_recv() is None
    assert list(y.recv_batch(4)["seq"]) == [5, 6, 7, 8]
    assert list(x.recv_batch(100)["seq"]) == [21, 22, 23, 24]
    assert (x.received, x.lost, x.position, x.lag) == (20, 0, 25, 0)
    assert (g.received, g.lost, g.position, g.lag, g.buffered) == (20, 0, 25, 0, 16)
    for c in (x, y):
        assert_accounting(c)
    assert "x" in g and "z" not in g and len(g) == 2 and g.consumers == ("x", "y")
    assert g.consumer("y") is y and y.group is g and y.name == "y" and y.dtype == REC
    assert "received=20" in repr(x) and "'cnt'" in repr(g)
    g.close()
    assert g.closed and x.received == 20  # counters stay readable


def test_iteration_ends_when_the_publisher_closes(ring_dir):
    pub = ringcast.Publisher.create("end", dtype=REC, capacity=256, dir=ring_dir)
    g = ringcast.SubscriberGroup("end", ["a", "b", "c"], dir=ring_dir, start="oldest")
    pub.publish_batch(make_records(0, 50))
    got: dict[str, list[int]] = {}
    # "c" waits in another thread, blocked on the ring until the close.
    waiter = threading.Thread(target=lambda: got.update(c=[int(m["seq"]) for m in g["c"]]))
    waiter.start()
    time.sleep(0.1)
    pub.publish_batch(make_records(50, 50))
    time.sleep(0.1)
    assert waiter.is_alive()
    pub.close()
    waiter.join(10)
    assert not waiter.is_alive()
    for n in ("a", "b"):
        got[n] = [int(m["seq"]) for m in g[n]]
    assert got == {n: list(range(100)) for n in "abc"}
    for n in "abc":
        c = g[n]
        assert c.ended and c.try_recv() is None
        with pytest.raises(ringcast.RingClosed):
            c.recv(timeout=1)
        with pytest.raises(ringcast.RingClosed):
            c.recv_batch(10)
    g.close()


def test_raw_bytes_ring(ring_dir):
    pub = ringcast.Publisher.create("raw", slot_size=40, capacity=64, dir=ring_dir)
    g = ringcast.SubscriberGroup("raw", ["p", "q"], dir=ring_dir, buffer=8)
    assert g.dtype is None
    msgs = [b"m%d-" % i + b"x" * (i % 30) for i in range(30)]
    for m in msgs[:20]:
        pub.publish(m)
    p, q = g["p"], g["q"]
    assert p.recv() == msgs[0] and p.try_recv() == msgs[1]
    got_p = [msgs[0], msgs[1]]
    got_q: list[bytes] = []
    # Batches of 5 cross the end of the 8-slot buffer over and over.
    while len(got_q) < 20:
        batch = q.recv_batch(5)
        assert isinstance(batch, list) and all(isinstance(b, bytes) for b in batch)
        got_q += batch
        got_p += p.recv_batch(5)
    for m in msgs[20:]:
        pub.publish(m)
    pub.close()
    while not (p.ended and q.ended):
        got_p += p.recv_batch(3) if not p.ended else []
        got_q += q.recv_batch(4) if not q.ended else []
    assert got_p == msgs and got_q == msgs
    for c in (p, q):
        with pytest.raises(ringcast.RingClosed):
            c.recv_batch(5, timeout=None)
    assert (p.lost, q.lost, g.lost) == (0, 0, 0)
    g.close()


def test_typed_batches_wrap_around_the_buffer(ring_dir):
    pub = ringcast.Publisher.create("wrap", dtype=REC, capacity=1024, dir=ring_dir)
    g = ringcast.SubscriberGroup("wrap", ["a", "b"], dir=ring_dir, buffer=10)
    pub.publish_batch(make_records(0, 500))
    pub.close()
    a, b = g["a"], g["b"]
    got_a: list[np.ndarray] = []
    got_b: list[np.ndarray] = []
    while not (a.ended and b.ended):
        if not a.ended:
            got_a.append(a.recv_batch(7))
        if not b.ended:
            got_b.append(b.recv_batch(3))
    for got in (got_a, got_b):
        recs = np.concatenate(got)
        assert list(recs["seq"]) == list(range(500))
        assert np.all(checksum(recs) == recs["checksum"])
    g.close()


def test_bounded_start_oldest_counts_what_was_overwritten(ring_dir):
    pub = ringcast.Publisher.create("old", dtype=REC, capacity=64, dir=ring_dir, bounded=True)
    pub.publish_batch(make_records(0, 200))  # nobody attached: nothing holds it back
    g = ringcast.SubscriberGroup("old", ["a", "b"], dir=ring_dir, start="oldest", buffer=100)
    assert g.start_sequence == 200 - 64
    assert len(g["a"].recv_batch(10)) == 10  # the group reads the 64 old ones...
    pub.publish_batch(make_records(200, 30))  # ...so that there is room for these
    pub.close()
    for n in g.consumers:
        c = g[n]
        seqs = [int(m["seq"]) for m in c]
        assert seqs == list(range(146 if n == "a" else 136, 230))
        assert (c.received, c.lost, c.position) == (94, 0, 230)
    g.close()


def test_bounded_start_at_an_overwritten_sequence(ring_dir):
    """Messages overwritten before the group attached are lost exactly as a
    plain subscriber loses them."""
    pub = ringcast.Publisher.create("ow", dtype=REC, capacity=64, dir=ring_dir, bounded=True)
    pub.publish_batch(make_records(0, 200))
    g = ringcast.SubscriberGroup("ow", ["a", "b"], dir=ring_dir, start=0, buffer=100)
    plain = ringcast.Subscriber.attach("ow", dir=ring_dir, start=0)
    expected = [int(m["seq"]) for m in plain.recv_batch(1000)]
    assert 0 < expected[0] and expected[-1] == 199  # the plain one lost the oldest
    for n in g.consumers:
        c = g[n]
        assert [int(s) for s in c.recv_batch(1000)["seq"]] == expected
        assert (c.received, c.lost, c.position) == (plain.received, plain.lost, 200)
    plain.close()
    g.close()
    pub.close()


def test_multi_producer_ring(ring_dir):
    pub = ringcast.Publisher.create("many", dtype=REC, capacity=128, dir=ring_dir, producers="many")
    other = ringcast.Publisher.attach("many", dir=ring_dir)
    g = ringcast.SubscriberGroup("many", ["a", "b"], dir=ring_dir, buffer=50)
    a, b = Checked(g["a"]), Checked(g["b"])
    for i in range(0, 300, 3):
        pub.publish_batch(make_records(i, 2))
        other.publish(make_records(i + 2, 1)[0])
        if i % 60 == 0:
            a.batch(1000)
            b.batch(1000)
    while a.batch(33) + b.batch(17):
        pass
    assert np.array_equal(a.all(), b.all())
    for c in (g["a"], g["b"]):
        assert c.received + c.lost == 300 - g.start_sequence
    other.close()
    pub.close()
    g.close()


def test_close_wakes_blocked_consumers_and_frees_the_record(ring_dir):
    pub = ringcast.Publisher.create("cls", dtype=REC, capacity=64, dir=ring_dir)
    g = ringcast.SubscriberGroup("cls", ["a", "b", "c"], dir=ring_dir)
    outcome: dict[str, str] = {}

    def block(name: str) -> None:
        try:
            g[name].recv()
            outcome[name] = "message"
        except ringcast.RingClosed:
            outcome[name] = "closed"

    # One waits inside the native subscriber, the others on the group.
    threads = [threading.Thread(target=block, args=(n,)) for n in g.consumers]
    for t in threads:
        t.start()
    time.sleep(0.2)
    assert all(t.is_alive() for t in threads)
    t0 = time.monotonic()
    g.close()
    for t in threads:
        t.join(5)
    assert time.monotonic() - t0 < 1.0
    assert outcome == {"a": "closed", "b": "closed", "c": "closed"}
    assert ringcast.ring_info("cls", ring_dir)["subscribers"] == []
    for op in (lambda c: c.try_recv(), lambda c: c.recv(0), lambda c: c.recv_batch(1)):
        with pytest.raises(ringcast.RingClosed):
            op(g["a"])
    with pytest.raises(ringcast.RingClosed):
        _ = g["a"].lag
    g.close()  # idempotent
    with ringcast.SubscriberGroup("cls", ["z"], dir=ring_dir) as g2:
        assert not g2.closed
    assert g2.closed
    pub.close()


def test_idle_waiting_costs_no_cpu(ring_dir):
    pub = ringcast.Publisher.create("idle", dtype=REC, capacity=64, dir=ring_dir)
    g = ringcast.SubscriberGroup("idle", ["a", "b", "c"], dir=ring_dir)
    timeouts: list[str] = []

    def wait(name: str) -> None:
        try:
            g[name].recv(timeout=0.8)
        except ringcast.Timeout:
            timeouts.append(name)

    threads = [threading.Thread(target=wait, args=(n,)) for n in g.consumers]
    cpu0, t0 = time.process_time(), time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    assert sorted(timeouts) == ["a", "b", "c"]
    assert 0.75 < wall < 3.0
    assert cpu < 0.3 * wall, f"3 idle consumers used {cpu:.3f}s CPU in {wall:.3f}s"
    g.close()
    pub.close()


def test_waiting_consumers_wake_promptly(ring_dir):
    """One consumer's thread waits on the ring, the others on the group:
    all wake when a message arrives, not at their next poll."""
    pub = ringcast.Publisher.create("wake", slot_size=8, capacity=64, dir=ring_dir)
    g = ringcast.SubscriberGroup("wake", ["a", "b", "c"], dir=ring_dir)
    rounds = 12
    sent: list[float] = []
    delays: dict[str, list[float]] = {n: [] for n in g.consumers}

    def wait(name: str) -> None:
        for i in range(rounds):
            g[name].recv(timeout=10)
            delays[name].append(time.monotonic() - sent[i])

    threads = [threading.Thread(target=wait, args=(n,)) for n in g.consumers]
    for t in threads:
        t.start()
    for _ in range(rounds):
        time.sleep(0.03)
        sent.append(time.monotonic())
        pub.publish(b"x")
    for t in threads:
        t.join(20)
    for name, d in delays.items():
        assert len(d) == rounds
        assert sorted(d)[rounds // 2] < 0.015, (name, d)  # polls are 50 ms apart
    g.close()
    pub.close()


def test_timeouts(ring_dir):
    pub = ringcast.Publisher.create("tmo", slot_size=8, capacity=64, dir=ring_dir)
    g = ringcast.SubscriberGroup("tmo", ["a"], dir=ring_dir)
    a = g["a"]
    t0 = time.monotonic()
    with pytest.raises(ringcast.Timeout):
        a.recv(timeout=0.1)
    assert 0.09 < time.monotonic() - t0 < 2
    assert a.recv_batch(10) == [] and a.try_recv() is None
    with pytest.raises(TimeoutError):  # ringcast.Timeout is a TimeoutError
        a.recv(timeout=0)
    g.close()
    pub.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_async_consumers(ring_dir, loop):
    pub = ringcast.Publisher.create("aio", dtype=REC, capacity=256, dir=ring_dir)
    g = ringcast.SubscriberGroup("aio", ["a", "b"], dir=ring_dir)

    async def main() -> tuple[list[int], list[int], int]:
        # A cancelled receive takes nothing: the message goes to the next one.
        pending = asyncio.create_task(g["a"].recv_async())
        await asyncio.sleep(0.05)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        with pytest.raises(ringcast.Timeout):
            await g["a"].recv_async(timeout=0.05)

        async def produce() -> None:
            for start in range(0, 400, 50):
                pub.publish_batch(make_records(start, 50))
                await asyncio.sleep(0.005)
            pub.close()

        async def read_b() -> list[int]:
            out: list[int] = []
            while len(out) < 400:
                out += [int(s) for s in (await g["b"].recv_batch_async(64, timeout=5))["seq"]]
            return out

        task = asyncio.create_task(produce())
        b_task = asyncio.create_task(read_b())
        a_seqs = [int(m["seq"]) async for m in g["a"]]
        await task
        b_seqs = await b_task
        with pytest.raises(ringcast.RingClosed):
            await g["b"].recv_async()
        return a_seqs, b_seqs, g["a"].lost

    runner = uvloop.run if loop == "uvloop" else asyncio.run
    a_seqs, b_seqs, lost = runner(asyncio.wait_for(main(), 30))
    assert a_seqs == b_seqs == list(range(400)) and lost == 0
    g.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"consumers": []}, "at least one consumer"),
        ({"consumers": "abc"}, "list of names"),
        ({"consumers": b"ab"}, "list of names"),
        ({"consumers": 3}, "list of names"),
        ({"consumers": ["a", "b", "a"]}, r"unique, \['a'\] repeat"),
        ({"consumers": ["a", ""]}, "non-empty strings"),
        ({"consumers": ["a", 1]}, "non-empty strings"),
        ({"buffer": 0}, "buffer must be a number of messages between 1 and"),
        ({"buffer": -5}, "buffer must be"),
        ({"buffer": 1.5}, "buffer must be"),
        ({"buffer": True}, "buffer must be"),
        ({"buffer": (1 << 20) + 1}, "buffer must be"),
        ({"start": -1}, "start must be"),
        ({"wait": "park"}, "wait must be a ringcast.WaitStrategy"),
    ],
)
def test_bad_arguments(ring_dir, kwargs, match):
    ringcast.Publisher.create("bad", dtype=REC, capacity=64, dir=ring_dir)
    args = {"consumers": ["a", "b"], "dir": ring_dir, **kwargs}
    with pytest.raises(ringcast.InvalidArgument, match=match):
        ringcast.SubscriberGroup("bad", **args)
    # Nothing was left attached.
    assert ringcast.ring_info("bad", ring_dir)["subscribers"] == []


def test_bad_arguments_after_creation(ring_dir):
    ringcast.Publisher.create("bad2", dtype=REC, capacity=64, dir=ring_dir)
    with pytest.raises(ringcast.SchemaMismatch):
        ringcast.SubscriberGroup("bad2", ["a"], dir=ring_dir, dtype=np.dtype("<u8"))
    with pytest.raises(ringcast.RingNotFound):
        ringcast.SubscriberGroup("nope", ["a"], dir=ring_dir)
    g = ringcast.SubscriberGroup("bad2", ["risk", "pnl"], dir=ring_dir)
    for lookup in (lambda: g["nope"], lambda: g.consumer("nope"), lambda: g[0]):
        with pytest.raises(KeyError) as e:
            lookup()
        assert isinstance(e.value, ringcast.InvalidArgument)
        assert "['risk', 'pnl']" in str(e.value)
    c = g["risk"]
    for bad in (0, -1, 1.5, "10", None):
        with pytest.raises(ringcast.InvalidArgument, match="max_n must be"):
            c.recv_batch(bad)  # type: ignore[arg-type]
    for bad in (-1, float("nan"), "1", True):
        with pytest.raises(ringcast.InvalidArgument, match="timeout must be None"):
            c.recv(timeout=bad)  # type: ignore[arg-type]
        with pytest.raises(ringcast.InvalidArgument, match="timeout must be None"):
            c.recv_batch(5, timeout=bad)  # type: ignore[arg-type]
    g.close()
