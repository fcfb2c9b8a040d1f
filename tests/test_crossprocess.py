"""The ring between real processes: ordering, integrity, exact loss, crashes."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

import ringcast
from _workers import (
    REC,
    StreamCheck,
    blocked_recv,
    hold_publisher,
    kill,
    make_records,
    publish_stream,
    subscribe_stream,
    try_create,
)

ctx = mp.get_context("spawn")


def run_stream(
    ring_dir,
    name,
    *,
    total,
    capacity,
    subscribers,
    batch=1000,
    pace_every=0,
    create_opts=None,
    attach_opts=None,
    while_attached=None,
):
    """Publishes `total` records from one process to one process per entry
    of `subscribers` (True: a slow one); returns each subscriber's report.
    `attach_opts`: one dict per subscriber. `while_attached()` runs once all
    are attached, before publishing starts."""
    ready, go = ctx.Event(), ctx.Event()
    results = ctx.Queue()
    pub = ctx.Process(
        target=publish_stream,
        args=(ring_dir, name, total, batch, capacity, ready, go, pace_every, create_opts),
    )
    pub.start()
    assert ready.wait(30), "publisher did not start"
    subs = []
    for i, slow in enumerate(subscribers):
        attached = ctx.Event()
        opts = attach_opts[i] if attach_opts else None
        p = ctx.Process(
            target=subscribe_stream,
            args=(ring_dir, name, results, attached, slow, "oldest", opts),
        )
        p.start()
        assert attached.wait(30), "subscriber did not attach"
        subs.append(p)
    if while_attached is not None:
        try:
            while_attached()
        except BaseException:
            go.set()
            raise
    go.set()
    out = [results.get(timeout=240) for _ in subs]
    for p in [pub, *subs]:
        p.join(30)
        assert p.exitcode == 0
    return out


def assert_exact(r, total):
    assert r["bad_checksums"] == 0, r
    assert r["out_of_order"] == 0, r
    assert r["received"] == r["sub_received"], r
    # Every sequence skipped, before the first message or between two, was counted.
    assert r["first"] - r["start"] + r["gaps"] == r["sub_lost"], r
    assert r["sub_received"] + r["sub_lost"] == total, r
    assert r["last"] == total - 1, r  # the stream ends with the last message


def test_million_messages_three_subscribers(ring_dir):
    total = 1_000_000
    results = run_stream(
        ring_dir,
        "million",
        total=total,
        capacity=1 << 16,
        subscribers=[False] * 3,
        pace_every=50_000,
    )
    for r in results:
        assert_exact(r, total)
    print("received/lost per subscriber:", [(r["sub_received"], r["sub_lost"]) for r in results])


def test_slow_subscriber_is_lapped_and_counts_exact_loss(ring_dir):
    total = 200_000
    fast, slow = run_stream(
        ring_dir,
        "lapped",
        total=total,
        capacity=1024,
        subscribers=[False, True],
        batch=256,
        pace_every=4096,
    )
    # The queue delivers in completion order: the slow one finishes last.
    assert slow["sub_lost"] > 0, "the slow subscriber should have been lapped"
    for r in (fast, slow):
        assert_exact(r, total)


def test_late_subscriber_starts_where_documented(ring_dir):
    with ringcast.Publisher.create("late", dtype=REC, capacity=1024, dir=ring_dir) as pub:
        pub.publish_batch(make_records(0, 5000))
        latest = ringcast.Subscriber.attach("late", dir=ring_dir)
        oldest = ringcast.Subscriber.attach("late", dir=ring_dir, start="oldest")
        at = ringcast.Subscriber.attach("late", dir=ring_dir, start=4500)
        gone = ringcast.Subscriber.attach("late", dir=ring_dir, start=100)
        assert latest.try_recv() is None
        assert oldest.recv(timeout=1)["seq"] == 5000 - 1024
        assert at.recv(timeout=1)["seq"] == 4500
        pub.publish(make_records(5000, 1))
        assert latest.recv(timeout=1)["seq"] == 5000
        assert (oldest.lost, at.lost, latest.lost) == (0, 0, 0)
        # Sequence 100 was overwritten long ago: the subscriber resumes an
        # eighth of the ring past the oldest message the publisher cannot be
        # overwriting, and counts every message it skipped.
        first = gone.recv(timeout=1)
        assert first["seq"] == 5001 - 1024 + 1 + 1024 // 8
        assert gone.lost == first["seq"] - 100


def test_publisher_crash_then_restart_continues_the_sequence(ring_dir):
    ready = ctx.Event()
    p = ctx.Process(target=hold_publisher, args=(ring_dir, "crash", 700, ready))
    p.start()
    assert ready.wait(30)
    sub = ringcast.Subscriber.attach("crash", dir=ring_dir, start="oldest")
    assert sub.publisher_alive
    kill(p)
    assert not sub.publisher_alive
    assert not sub.publisher_closed  # a crash is not a clean close
    with ringcast.Publisher.create(
        "crash", dtype=REC, capacity=1024, dir=ring_dir, exist_ok=True
    ) as pub:
        assert pub.sequence == 700
        assert pub.generation == 2
        pub.publish_batch(make_records(700, 300))
    check = StreamCheck()
    for rec in sub:
        check.add(np.array([rec], dtype=REC))
    assert (check.received, check.bad_checksums, check.out_of_order) == (1000, 0, 0)
    assert sub.lost == 0 and sub.generation == 2


def test_second_publisher_in_another_process_is_refused(ring_dir):
    results = ctx.Queue()
    with ringcast.Publisher.create("single", dtype=REC, capacity=1024, dir=ring_dir):
        p = ctx.Process(target=try_create, args=(ring_dir, "single", results))
        p.start()
        kind, msg = results.get(timeout=30)
        p.join(10)
    assert kind == "PublisherExists"
    assert f"pid {os.getpid()}" in msg


def test_lock_of_killed_publisher_is_released(ring_dir):
    ready = ctx.Event()
    p = ctx.Process(target=hold_publisher, args=(ring_dir, "held", 10, ready))
    p.start()
    assert ready.wait(30)
    with pytest.raises(ringcast.PublisherExists):
        ringcast.Publisher.create("held", dtype=REC, capacity=1024, dir=ring_dir, exist_ok=True)
    kill(p)
    ringcast.Publisher.create("held", dtype=REC, capacity=1024, dir=ring_dir, exist_ok=True).close()


def test_ctrl_c_interrupts_a_blocked_recv(ring_dir):
    pub = ringcast.Publisher.create("intr", slot_size=8, capacity=8, dir=ring_dir)
    ready = ctx.Event()
    p = ctx.Process(target=blocked_recv, args=(ring_dir, "intr", ready))
    p.start()
    assert ready.wait(30)
    time.sleep(0.3)  # let it reach the blocking wait
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGINT)
    p.join(5)
    elapsed = time.monotonic() - t0
    pub.close()
    assert p.exitcode == 42, "recv() did not raise KeyboardInterrupt"
    assert elapsed < 1.0, f"KeyboardInterrupt took {elapsed:.3f}s"
