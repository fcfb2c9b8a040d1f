"""An asyncio strategy reading two topics of bus "md", quotes and trades, as
one stream: ``bus.subscribe("*")`` hands it ``(topic, message)`` pairs, fairly
interleaved, and awaiting them costs no CPU while the feed is quiet.

    python examples/async_two_topics.py --demo     # starts its own feed handler process
    python examples/async_two_topics.py            # reads a running feed handler's md.quotes
                                                   # and md.trades (Ctrl-C to stop)

With ``--demo`` it exits 0 once it has read ``--count`` messages of each topic,
each one in order and none lost (the topics are bounded, so the feed handler
waits for the strategy rather than overwriting what it has not read).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import ringcast

QUOTE = np.dtype([("seq", "<u8"), ("ts_ns", "<u8"), ("bid", "<f8"), ("ask", "<f8")])
TRADE = np.dtype([("seq", "<u8"), ("ts_ns", "<u8"), ("price", "<f8"), ("qty", "<u4")])


def feed_handler(dir: str, count: int, rate: float) -> None:
    """The demo's feed handler (a separate process): publishes ``count``
    quotes and ``count`` trades, ``rate`` of each per second, once the
    strategy has attached, then closes both topics, which ends the strategy's
    ``async for``. Each message carries the time it was due, so the latency
    the strategy reports includes any delay of the feed handler itself."""
    bus = ringcast.Bus("md", dir=dir)
    with (
        bus.publisher("quotes", dtype=QUOTE, capacity=1024, bounded=True) as quotes,
        bus.publisher("trades", dtype=TRADE, capacity=1024, bounded=True) as trades,
    ):
        deadline = time.monotonic() + 30
        while quotes.subscriber_count == 0 or trades.subscriber_count == 0:
            if time.monotonic() > deadline:
                sys.exit("feed handler: no strategy attached within 30 s")
            time.sleep(0.005)
        start = time.monotonic_ns()
        for i in range(count):
            due = start + int(i * 1e9 / rate)
            while (ahead := due - time.monotonic_ns()) > 0:
                if ahead > 1_000_000:
                    time.sleep((ahead - 500_000) / 1e9)  # sleep, then spin the last bit
            mid = 100.0 + math.sin(i / 500.0)
            quotes.publish((i, due, mid - 0.01, mid + 0.01), timeout=10)
            trades.publish((i, due, mid, 100 + i % 7 * 100), timeout=10)


@dataclass
class Book:
    """What the strategy keeps per topic: enough to prove the stream whole."""

    received: int = 0
    out_of_order: int = 0
    latencies_ns: list[int] = field(default_factory=list)

    def add(self, msg: Any) -> None:
        if int(msg["seq"]) != self.received:
            self.out_of_order += 1
        self.received += 1
        self.latencies_ns.append(time.monotonic_ns() - int(msg["ts_ns"]))

    def median_us(self) -> float:
        return float(np.median(self.latencies_ns)) / 1e3 if self.latencies_ns else math.nan


async def strategy(bus: ringcast.Bus, count: int | None) -> tuple[dict[str, Book], int]:
    """Reads quotes and trades until both topics closed (or ``count`` of
    each); returns the books and how often a heartbeat task got to run."""
    books = {"quotes": Book(), "trades": Book()}
    mid = math.nan
    notional = volume = 0.0
    beats = 0

    async def heartbeat() -> None:
        # Proof that awaiting the topics never blocks the event loop.
        nonlocal beats
        while True:
            await asyncio.sleep(0.01)
            beats += 1

    beat = asyncio.create_task(heartbeat())
    try:
        with bus.subscribe("*", start="oldest") as sub:
            async for topic, msg in sub:
                book = books.get(topic)
                if book is None:
                    continue  # another topic of the bus: not ours
                book.add(msg)
                if topic == "quotes":
                    mid = (float(msg["bid"]) + float(msg["ask"])) / 2
                else:
                    notional += float(msg["price"]) * int(msg["qty"])
                    volume += int(msg["qty"])
                if count is not None and all(b.received >= count for b in books.values()):
                    break
            lost = sub.lost
    finally:
        beat.cancel()
    for topic, book in books.items():
        print(
            f"{topic}: {book.received} received, {lost.get(topic, 0)} lost, "
            f"{'in order' if book.out_of_order == 0 else f'{book.out_of_order} out of order'}, "
            f"median latency {book.median_us():.1f} us"
        )
    vwap = notional / volume if volume else math.nan
    print(f"last mid {mid:.4f}, trade VWAP {vwap:.4f} over {volume:,.0f} shares")
    print(f"event loop stayed responsive: {beats} heartbeats while receiving")
    return books, sum(lost.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="start a feed handler process too")
    parser.add_argument("--count", type=int, default=None, help="messages per topic to read")
    parser.add_argument("--rate", type=float, default=20_000, help="demo: messages/s per topic")
    parser.add_argument("--dir", default=None, help="ring directory (demo: a temporary one)")
    args = parser.parse_args(argv)
    if not args.demo:
        bus = ringcast.Bus("md", dir=args.dir)
        print(f"reading md.quotes and md.trades in {bus.dir} (Ctrl-C to stop)")
        try:
            asyncio.run(strategy(bus, args.count))
        except KeyboardInterrupt:
            pass
        return 0

    count = args.count if args.count is not None else 10_000
    if count < 1 or not args.rate > 0:
        parser.error("--count and --rate must be positive")
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    dir = args.dir or tempfile.mkdtemp(prefix="ringcast-demo-", dir=shm)
    feed = mp.get_context("spawn").Process(target=feed_handler, args=(dir, count, args.rate))
    feed.start()
    try:
        started = time.monotonic()
        books, lost = asyncio.run(
            asyncio.wait_for(strategy(ringcast.Bus("md", dir=dir), count), 60)
        )
        print(f"{2 * count} messages in {time.monotonic() - started:.2f} s")
        feed.join(30)
    finally:
        if feed.is_alive():
            feed.kill()
        if args.dir is None:
            shutil.rmtree(dir, ignore_errors=True)
    whole = lost == 0 and all(b.received == count and b.out_of_order == 0 for b in books.values())
    if feed.exitcode != 0 or not whole:
        print(f"FAILED: feed handler exit code {feed.exitcode}, every message read: {whole}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
