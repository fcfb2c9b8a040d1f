"""asyncio and uvloop subscribers: ordering, cancellation, timeouts, several
subscribers in one loop, a publisher in another process."""

from __future__ import annotations

import asyncio
import multiprocessing as mp

import numpy as np
import pytest
import uvloop

import ringcast
from _workers import REC, StreamCheck, make_records, publish_bursts

ctx = mp.get_context("spawn")


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    """Runs a coroutine to completion on the default loop or on uvloop."""
    if request.param == "uvloop":
        return lambda coro: uvloop.run(asyncio.wait_for(coro, 60))
    return lambda coro: asyncio.run(asyncio.wait_for(coro, 60))


def test_messages_arrive_in_order(ring_dir, run):
    pub = ringcast.Publisher.create("order", dtype=REC, capacity=1 << 12, dir=ring_dir)
    sub = ringcast.Subscriber.attach("order", dir=ring_dir)

    async def main():
        async def produce():
            for start in range(0, 2000, 100):
                pub.publish_batch(make_records(start, 100))
                await asyncio.sleep(0.001)
            pub.close()

        task = asyncio.create_task(produce())
        seqs = [int(m["seq"]) async for m in sub]
        await task
        return seqs

    assert run(main()) == list(range(2000))
    assert sub.ended and sub.lost == 0


def test_cancelled_receive_leaves_the_subscriber_usable(ring_dir, run):
    pub = ringcast.Publisher.create("cancel", slot_size=8, capacity=64, dir=ring_dir)
    sub = ringcast.Subscriber.attach("cancel", dir=ring_dir)

    async def main():
        pending = asyncio.create_task(sub.recv_async())
        await asyncio.sleep(0.05)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        asyncio.get_running_loop().call_later(0.02, pub.publish, b"after")
        return await sub.recv_async(timeout=5)

    assert run(main()) == b"after"
    assert sub.received == 1


def test_timeouts(ring_dir, run):
    pub = ringcast.Publisher.create("quiet", slot_size=8, capacity=8, dir=ring_dir)
    sub = ringcast.Subscriber.attach("quiet", dir=ring_dir)

    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(ringcast.Timeout):
            await sub.recv_async(timeout=0.1)
        with pytest.raises(TimeoutError):
            await sub.recv_batch_async(10, timeout=0.05)
        return loop.time() - t0

    # Not before the two timeouts (0.1 + 0.05 s) ran out. uvloop's loop.time()
    # counts whole milliseconds as floats: 150 ms may read 0.14999999999964.
    assert 0.15 - 1e-9 <= run(main()) < 2
    pub.close()


def test_batches_and_the_end_of_the_stream(ring_dir, run):
    pub = ringcast.Publisher.create("batch", dtype=REC, capacity=1024, dir=ring_dir)
    sub = ringcast.Subscriber.attach("batch", dir=ring_dir)

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, pub.publish_batch, make_records(0, 300))
        first = await sub.recv_batch_async(1000)
        loop.call_later(0.02, pub.close)
        with pytest.raises(ringcast.RingClosed):
            await sub.recv_batch_async(1000)
        return first

    assert list(run(main())["seq"]) == list(range(300))


def test_one_waiter_per_subscriber(ring_dir, run):
    pub = ringcast.Publisher.create("one", slot_size=8, capacity=8, dir=ring_dir)
    sub = ringcast.Subscriber.attach("one", dir=ring_dir)

    async def main():
        first = asyncio.create_task(sub.recv_async(timeout=1))
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="one subscriber per task"):
            await sub.recv_async(timeout=1)
        first.cancel()

    run(main())
    pub.close()


def test_several_subscribers_and_a_publisher_in_another_process(ring_dir, run):
    total = 30_000
    ready, go = ctx.Event(), ctx.Event()
    pub = ctx.Process(target=publish_bursts, args=(ring_dir, "multi", total, ready, go, 3))
    pub.start()
    assert ready.wait(30)
    subs = [ringcast.Subscriber.attach("multi", dir=ring_dir, start="oldest") for _ in range(3)]

    async def consume(sub):
        check = StreamCheck()
        while True:
            try:
                batch = await sub.recv_batch_async(512, timeout=30)
            except ringcast.RingClosed:
                return check
            check.add(batch)

    async def main():
        tasks = [asyncio.create_task(consume(s)) for s in subs]
        await asyncio.sleep(0.01)
        go.set()
        return await asyncio.gather(*tasks)

    checks = run(main())
    pub.join(30)
    assert pub.exitcode == 0
    for check, sub in zip(checks, subs, strict=True):
        assert (check.received, check.bad_checksums, check.out_of_order) == (total, 0, 0)
        assert sub.received == total and sub.lost == 0


def test_async_iteration_of_records(ring_dir, run):
    pub = ringcast.Publisher.create("recs", dtype=REC, capacity=64, dir=ring_dir)
    sub = ringcast.Subscriber.attach("recs", dir=ring_dir)

    async def main():
        pub.publish_batch(make_records(0, 5))
        pub.close()
        return [m async for m in sub]

    got = run(main())
    assert [int(m["seq"]) for m in got] == list(range(5))
    assert all(isinstance(m, np.void) for m in got)
