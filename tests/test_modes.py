"""Bounded and multi-producer rings between real processes: zero loss under
backpressure, exactly-once delivery from many producers, and crashed or
stalled peers on either side."""

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
    ProducerCheck,
    blocked_publish,
    kill,
    make_records,
    produce,
    produce_batch_then_stop,
    produce_then_stop,
    publish_bounded,
    read_all,
    read_then_stall,
)

ctx = mp.get_context("spawn")


def start(target, *args, **kwargs):
    p = ctx.Process(target=target, args=args, kwargs=kwargs)
    p.start()
    return p


def joined(procs, timeout=60):
    for p in procs:
        p.join(timeout)
        assert p.exitcode == 0, f"{p.name} exited with {p.exitcode}"


def test_bounded_million_messages_slow_subscriber_loses_nothing(ring_dir):
    total = 1_000_000
    results = ctx.Queue()
    ready, go = ctx.Event(), ctx.Event()
    opts = {"capacity": 4096, "bounded": True}
    pub = start(publish_bounded, ring_dir, "bnd", total, 1000, opts, ready, go, results)
    assert ready.wait(30)
    subs = []
    for pause in (0.0, 0.0, 0.001):  # the third one is slow: 1 ms per 256 messages
        attached = ctx.Event()
        subs.append(start(read_all, ring_dir, "bnd", results, attached, pause=pause, batch=256))
        assert attached.wait(30)
    go.set()
    got = [results.get(timeout=240) for _ in range(4)]
    joined([pub, *subs])
    publisher = next(r for r in got if r.get("publisher"))
    assert publisher["evictions"] == 0
    for r in (r for r in got if not r.get("publisher")):
        assert r["sub_lost"] == 0, r
        assert r["received"] == r["sub_received"] == total, r
        assert r["bad_checksums"] == 0 and r["out_of_order"] == 0 and r["gaps"] == 0, r
        assert (r["first"], r["last"]) == (0, total - 1), r
    # With that slow reader a lossy ring of this size would have lapped it.
    print(f"longest publisher wait: {publisher['longest_wait']:.3f} s")


@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "lossy"])
def test_four_producers_every_message_once_per_producer_order(ring_dir, bounded):
    per_producer, producers = 250_000, 4
    name = "mp"
    creator = ringcast.Publisher.create(
        name, dtype=REC, capacity=1 << 14, dir=ring_dir, producers="many", bounded=bounded
    )
    results = ctx.Queue()
    readers = []
    for _ in range(2):
        attached = ctx.Event()
        readers.append(start(read_all, ring_dir, name, results, attached, by_producer=True))
        assert attached.wait(30)
    go = ctx.Event()
    writers = []
    for _ in range(producers):
        ready = ctx.Event()
        writers.append(start(produce, ring_dir, name, per_producer, 100, ready, go))
        assert ready.wait(30)
    assert creator.producer_count == producers + 1
    creator.close()  # the last producer to finish closes the stream
    go.set()
    got = [results.get(timeout=240) for _ in readers]
    joined(writers + readers)
    total = per_producer * producers
    for r in got:
        assert r["bad_checksums"] == 0 and r["out_of_order"] == 0, r
        assert len(r["per_producer"]) == producers, r
        assert r["received"] == r["sub_received"], r
        assert r["sub_received"] + r["sub_lost"] == total, r  # exact accounting
        if bounded:
            assert r["sub_lost"] == 0 and r["gaps"] == 0, r
            assert all(n == per_producer for n in r["per_producer"].values()), r
        else:
            # Every skipped message is counted: what a producer's counter
            # skipped is part of what the ring says was lost.
            assert r["gaps"] <= r["sub_lost"], r
    creator.unlink()


def bounded_ring(ring_dir, name, **kw):
    return ringcast.Publisher.create(name, dtype=REC, capacity=64, dir=ring_dir, bounded=True, **kw)


def test_killed_subscriber_is_evicted_and_the_others_lose_nothing(ring_dir):
    total = 20_000
    with bounded_ring(ring_dir, "kill9", liveness_timeout=2.0) as pub:
        results = ctx.Queue()
        attached = ctx.Event()
        good = start(read_all, ring_dir, "kill9", results, attached, batch=16)
        assert attached.wait(30)
        victim_end, conn = ctx.Pipe()
        attached = ctx.Event()
        victim = start(read_then_stall, ring_dir, "kill9", attached, 10, conn)
        assert attached.wait(30)
        pub.publish_batch(make_records(0, 10))
        assert victim_end.recv() == ("read", 10)
        kill(victim)
        t0 = time.monotonic()
        sent, longest = 10, 0.0
        while sent < total:
            t = time.monotonic()
            n = min(100, total - sent)
            pub.publish_batch(make_records(sent, n), timeout=10)
            longest = max(longest, time.monotonic() - t)
            sent += n
        assert pub.evictions == 1
        # A dead subscriber is found by its lost record lock, well within the limit.
        assert longest < 1.0, longest
        print(f"publisher stalled {longest:.3f} s at most; ran {time.monotonic() - t0:.2f} s")
    r = results.get(timeout=60)
    joined([good])
    assert r["sub_lost"] == 0 and r["received"] == total and r["gaps"] == 0, r
    assert r["bad_checksums"] == 0 and r["out_of_order"] == 0, r


def test_stalled_subscriber_is_evicted_after_the_liveness_limit(ring_dir):
    limit = 0.5
    with bounded_ring(ring_dir, "stall", liveness_timeout=limit) as pub:
        stalled_end, conn = ctx.Pipe()
        attached = ctx.Event()
        stalled = start(read_then_stall, ring_dir, "stall", attached, 10, conn)
        assert attached.wait(30)
        # The stall begins after this (the subscriber reads these 10 first),
        # and the eviction at least a limit later, however the wait is
        # split between the calls below.
        began = time.monotonic()
        pub.publish_batch(make_records(0, 10))
        assert stalled_end.recv() == ("read", 10)
        pub.publish_batch(make_records(10, 64))  # fills the ring
        with pytest.raises(ringcast.RingFull):
            pub.try_publish(make_records(74, 1)[0])
        with pytest.raises(ringcast.Timeout, match="stayed full"):
            pub.publish(make_records(74, 1)[0], timeout=0.1)
        assert pub.evictions == 0
        t0 = time.monotonic()
        pub.publish(make_records(74, 1)[0], timeout=10)
        done = time.monotonic()
        assert done - began >= limit * 0.99, done - began
        assert done - t0 < limit + 1.0, done - t0
        assert pub.evictions == 1 and pub.subscriber_count == 0
        stalled_end.send("go on")
        kind, msg = stalled_end.recv()
        joined([stalled])
    assert kind == "Evicted", msg
    assert "liveness_timeout" in msg


def multi_producer_ring(ring_dir, name, claim_timeout, **opts):
    """A 1024-slot multi-producer ring of records, for the crash tests."""
    return ringcast.Publisher.create(
        name,
        dtype=REC,
        capacity=1024,
        dir=ring_dir,
        producers="many",
        claim_timeout=claim_timeout,
        **opts,
    )


def test_producer_killed_between_claim_and_commit_costs_exactly_one_message(ring_dir):
    claim_timeout = 0.2
    name = "claimkill"
    with multi_producer_ring(ring_dir, name, claim_timeout) as survivor:
        sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
        ready = ctx.Event()
        before = 50
        victim = start(produce_then_stop, ring_dir, name, before, ready)
        assert ready.wait(30)
        _, status = os.waitpid(victim.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), "the producer should have stopped itself mid-write"
        # The survivor publishes after the stuck slot.
        survivor.publish_batch(make_records(0, 100))
        check = ProducerCheck()
        out = np.empty(1000, dtype=REC)
        n = sub.recv_batch_into(out, timeout=5)
        check.add(out[:n])
        assert check.received == before
        # A stopped (live) producer is never skipped, however long it takes.
        time.sleep(3 * claim_timeout)
        assert sub.try_recv() is None and sub.lost == 0
        kill(victim)
        t0 = time.monotonic()
        while check.received < before + 100:
            n = sub.recv_batch_into(out, timeout=5)
            check.add(out[:n])
        recovered = time.monotonic() - t0
        assert sub.lost == 1, "exactly the message being written is lost"
        assert check.bad_checksums == 0 and check.out_of_order == 0 and check.gaps == 0
        assert sub.received + sub.lost == sub.position - sub.start_sequence
        assert recovered < claim_timeout + 1.0, recovered
        # The ring goes on: later messages flow past the lost slot's lap too.
        for k in range(20):
            survivor.publish_batch(make_records(100 + 100 * k, 100))
            check.add(sub.recv_batch(1000, timeout=5))
        assert check.received == before + 2100 and check.gaps == 0
        assert sub.lost == 1
        sub.close()
        survivor.unlink()


@pytest.mark.parametrize("bounded", [False, True])
def test_producer_killed_inside_a_batch_costs_one_claim_timeout(ring_dir, bounded):
    """A producer dies with most of a 512-message claim unwritten: readers
    skip the whole claimed range in about one claim_timeout (not one per
    message), and count exactly the unwritten messages lost."""
    claim_timeout, batch, stop_at, before = 0.2, 512, 100, 20
    name = "batchkill"
    with multi_producer_ring(ring_dir, name, claim_timeout, bounded=bounded) as survivor:
        sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
        ready = ctx.Event()
        victim = start(produce_batch_then_stop, ring_dir, name, before, batch, stop_at, ready)
        assert ready.wait(30)
        _, status = os.waitpid(victim.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), "the producer should have stopped itself mid-batch"
        survivor.publish_batch(make_records(0, 100))  # claimed after the batch
        check = ProducerCheck()
        out = np.empty(2048, dtype=REC)
        while check.received < before + stop_at:
            check.add(out[: sub.recv_batch_into(out, timeout=5)])
        assert check.received == before + stop_at and sub.lost == 0
        kill(victim)
        t0 = time.monotonic()
        while check.received < before + stop_at + 100:
            check.add(out[: sub.recv_batch_into(out, timeout=5)])
        recovered = time.monotonic() - t0
        assert sub.lost == batch - stop_at, "exactly the unwritten rest of the claim is lost"
        assert check.bad_checksums == 0 and check.out_of_order == 0 and check.gaps == 0
        assert sub.received + sub.lost == sub.position - sub.start_sequence
        assert recovered < 2 * claim_timeout + 0.8, recovered
        print(f"readers past the dead batch in {recovered:.3f} s")
        sub.close()
        survivor.unlink()


def test_bounded_ring_refuses_bad_modes(ring_dir):
    with pytest.raises(ringcast.InvalidArgument, match="watermark"):
        ringcast.Publisher.create("w", slot_size=8, capacity=8, dir=ring_dir, watermark=4)
    with pytest.raises(ringcast.InvalidArgument, match="watermark"):
        ringcast.Publisher.create(
            "w", slot_size=8, capacity=8, dir=ring_dir, bounded=True, watermark=9
        )
    with pytest.raises(ringcast.InvalidArgument, match="liveness_timeout"):
        ringcast.Publisher.create(
            "w", slot_size=8, capacity=8, dir=ring_dir, bounded=True, liveness_timeout=0
        )
    with pytest.raises(ringcast.InvalidArgument, match="producers"):
        ringcast.Publisher.create("w", slot_size=8, capacity=8, dir=ring_dir, producers="two")
    with pytest.raises(ringcast.InvalidArgument, match="max_producers"):
        ringcast.Publisher.create("w", slot_size=8, capacity=8, dir=ring_dir, max_producers=2)
    with pytest.raises(ringcast.InvalidArgument, match="max_producers"):
        ringcast.Publisher.create(
            "w", slot_size=8, capacity=8, dir=ring_dir, producers="many", max_producers=0
        )
    with pytest.raises(ringcast.InvalidArgument, match="claim_timeout"):
        ringcast.Publisher.create(
            "w", slot_size=8, capacity=8, dir=ring_dir, producers="many", claim_timeout=-1
        )
    with pytest.raises(ringcast.InvalidArgument, match="WaitStrategy"):
        ringcast.Publisher.create("w", slot_size=8, capacity=8, dir=ring_dir, wait="spin")
    with pytest.raises(ringcast.InvalidArgument, match="WaitStrategy"):
        ringcast.Publisher.attach("w", dir=ring_dir, wait="spin")
    with pytest.raises(ringcast.InvalidArgument, match="timeout"):
        with ringcast.Publisher.create("t", slot_size=8, capacity=8, dir=ring_dir) as pub:
            pub.publish(b"x", timeout=-1)
    assert ringcast.list_rings(ring_dir) == ["t"]


def test_watermark_limits_how_far_the_publisher_runs_ahead(ring_dir):
    with ringcast.Publisher.create(
        "wm", slot_size=8, capacity=16, dir=ring_dir, bounded=True, watermark=4
    ) as pub:
        assert (pub.bounded, pub.watermark, pub.producers) == (True, 4, "one")
        # Nobody attached: nothing gates the publisher.
        pub.publish_batch([b"x"] * 100)
        sub = ringcast.Subscriber.attach("wm", dir=ring_dir)
        for i in range(4):
            pub.try_publish(bytes([i]))
        with pytest.raises(ringcast.RingFull, match="slowest subscriber"):
            pub.try_publish(b"full")
        with pytest.raises(ringcast.Timeout, match="2 of the 3 messages were published"):
            sub.recv()
            sub.recv()
            pub.publish_batch([b"a", b"b", b"c"], timeout=0.05)
        assert [sub.recv(timeout=1) for _ in range(4)] == [b"\x02", b"\x03", b"a", b"b"]
        sub.close()  # deregisters at once: the publisher runs free again
        pub.publish_batch([b"y"] * 100, timeout=0)


def test_second_producer_on_a_single_producer_ring_is_refused(ring_dir):
    with ringcast.Publisher.create("sp", slot_size=8, capacity=8, dir=ring_dir) as pub:
        with pytest.raises(ringcast.PublisherExists, match="single-producer"):
            ringcast.Publisher.attach("sp", dir=ring_dir)
        pub.publish(b"1")
    # Once it is gone, attach takes the ring over and continues its sequence.
    with ringcast.Publisher.attach("sp", dir=ring_dir) as again:
        assert again.sequence == 1 and again.producers == "one"
    with pytest.raises(ringcast.RingNotFound):
        ringcast.Publisher.attach("nope", dir=ring_dir)


def test_producer_table_full_and_attach_dtype_check(ring_dir):
    with ringcast.Publisher.create(
        "pt", dtype=REC, capacity=8, dir=ring_dir, producers="many", max_producers=2
    ) as first:
        with ringcast.Publisher.attach("pt", dir=ring_dir) as second:
            assert second.dtype == REC and first.producer_count == 2
            with pytest.raises(ringcast.ProducerTableFull, match="max_producers"):
                ringcast.Publisher.attach("pt", dir=ring_dir)
        with pytest.raises(ringcast.SchemaMismatch):
            ringcast.Publisher.attach("pt", dir=ring_dir, dtype="<u8")
        single = ringcast.Publisher.create("pt2", slot_size=8, capacity=8, dir=ring_dir)
        with pytest.raises(ringcast.InvalidArgument, match="multi-producer"):
            single._stop_after_claim(1)
        single.close()


def test_multi_producer_stream_ends_when_the_last_producer_closes(ring_dir):
    a = ringcast.Publisher.create("end", slot_size=8, capacity=8, dir=ring_dir, producers="many")
    b = ringcast.Publisher.attach("end", dir=ring_dir)
    sub = ringcast.Subscriber.attach("end", dir=ring_dir)
    a.publish(b"a")
    a.close()
    b.publish(b"b")
    assert [sub.recv(timeout=1), sub.recv(timeout=1)] == [b"a", b"b"]
    with pytest.raises(ringcast.Timeout):
        sub.recv(timeout=0.05)  # b still produces: not ended
    b.close()
    with pytest.raises(ringcast.RingClosed):
        sub.recv(timeout=1)


def test_blocked_publish_is_interrupted_by_ctrl_c(ring_dir):
    ready = ctx.Event()
    p = start(blocked_publish, ring_dir, "ctrlc", ready)
    assert ready.wait(30)
    time.sleep(0.2)  # let it block
    os.kill(p.pid, signal.SIGINT)
    p.join(10)
    assert p.exitcode == 42


def test_async_subscriber_recovers_a_dead_producers_slot(ring_dir):
    import asyncio

    name = "asyncclaim"
    with ringcast.Publisher.create(
        name, dtype=REC, capacity=64, dir=ring_dir, producers="many", claim_timeout=0.1
    ) as survivor:
        sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
        ready = ctx.Event()
        victim = start(produce_then_stop, ring_dir, name, 5, ready)
        assert ready.wait(30)
        _, status = os.waitpid(victim.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        kill(victim)
        survivor.publish_batch(make_records(0, 3))

        async def read(n):
            got = 0
            while got < n:
                got += len(await sub.recv_batch_async(64, timeout=5))
            return got

        # Nothing wakes an awaiting subscriber for a dead producer's slot:
        # its readiness thread must recover the slot itself.
        assert asyncio.run(read(8)) == 8
        assert sub.lost == 1
        sub.close()
        survivor.unlink()
