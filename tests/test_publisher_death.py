"""A strategy learns that its feed handler died, without polling: blocking
receives raise PublisherDied once everything it published has been read
(once per publisher), a timeout says the publisher is dead, and a publisher
that takes the ring over resumes the stream for the same subscriber."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time

import pytest

import ringcast
from _workers import REC, feed_until_killed, kill

ctx = mp.get_context("spawn")


def start_feed(ring_dir, name, n, producers="one"):
    ready = ctx.Event()
    p = ctx.Process(target=feed_until_killed, args=(ring_dir, name, n, ready, producers))
    p.start()
    assert ready.wait(30), "the feed handler did not start"
    return p


@pytest.mark.parametrize("producers", ["one", "many"])
def test_iteration_raises_publisher_died_after_the_last_message(ring_dir, producers):
    feed = start_feed(ring_dir, "md", 5, producers)
    sub = ringcast.Subscriber.attach("md", dir=ring_dir, start="oldest")
    assert sub.publisher_alive
    kill(feed)
    assert not sub.publisher_alive and not sub.publisher_closed
    got = []
    t0 = time.monotonic()
    with pytest.raises(ringcast.PublisherDied, match=f"pid {feed.pid}") as died:
        for q in sub:
            got.append(int(q["seq"]))
    assert got == [0, 1, 2, 3, 4], "every message it published is delivered first"
    took = time.monotonic() - t0
    assert took < 1.0
    print(f"PublisherDied {took:.3f} s after the kill")
    assert "exist_ok=True" in str(died.value) and not isinstance(died.value, ringcast.RingClosed)
    # Reported once: a timed wait now times out, and says why nothing came.
    t0 = time.monotonic()
    with pytest.raises(ringcast.Timeout, match="died and no publisher has taken the ring over"):
        sub.recv(timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 1.5
    # A publisher that takes over resumes the stream; its own death is news again.
    feed = start_feed(ring_dir, "md", 3, producers)
    assert [int(q["seq"]) for q in sub.recv_batch(10, timeout=5)] == [5, 6, 7]
    assert sub.lost == 0
    kill(feed)
    with pytest.raises(ringcast.PublisherDied):
        sub.recv(timeout=5)
    sub.close()


def test_recv_with_a_timeout_raises_publisher_died_not_timeout(ring_dir):
    feed = start_feed(ring_dir, "md2", 1)
    sub = ringcast.Subscriber.attach("md2", dir=ring_dir)  # latest: nothing to read
    kill(feed)
    t0 = time.monotonic()
    with pytest.raises(ringcast.PublisherDied):
        sub.recv(timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert sub.try_recv() is None  # try_ calls never raise it
    sub.close()


def test_async_iteration_learns_of_the_death(ring_dir):
    feed = start_feed(ring_dir, "md3", 2)
    sub = ringcast.Subscriber.attach("md3", dir=ring_dir, start="oldest")

    async def strategy():
        seen = []
        try:
            async for q in sub:
                seen.append(int(q["seq"]))
                if len(seen) == 2:
                    kill(feed)
        except ringcast.PublisherDied:
            return seen, "died"
        return seen, "ended"

    t0 = time.monotonic()
    assert asyncio.run(asyncio.wait_for(strategy(), 10)) == ([0, 1], "died")
    assert time.monotonic() - t0 < 2.0
    sub.close()


def test_a_clean_close_is_still_the_end_of_the_stream(ring_dir):
    with ringcast.Publisher.create("closed", dtype=REC, capacity=8, dir=ring_dir) as pub:
        sub = ringcast.Subscriber.attach("closed", dir=ring_dir)
    assert list(sub) == [] and sub.publisher_closed and not sub.publisher_alive
    pub.unlink()
    sub.close()


def test_a_quiet_live_publisher_is_not_dead(ring_dir):
    with ringcast.Publisher.create("quiet", dtype=REC, capacity=8, dir=ring_dir):
        sub = ringcast.Subscriber.attach("quiet", dir=ring_dir)
        with pytest.raises(ringcast.Timeout) as t:
            sub.recv(timeout=0.3)
        assert "died" not in str(t.value) and sub.publisher_alive
        sub.close()
