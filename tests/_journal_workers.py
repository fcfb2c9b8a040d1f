"""Publishers of the journal tests, run in child processes.

Records are ``_workers.REC``: ``seq`` equals the ring sequence and
``checksum`` covers the rest, so a journal (and a replay of it) can be
checked message by message.
"""

from __future__ import annotations

import time

import ringcast
from _workers import REC, make_records


def publish_paced(ring_dir, name, total, batch, rate, ready, opts) -> None:
    """Creates ring ``name`` (REC records, timestamps, ``opts``), waits for a
    subscriber (the recorder), publishes records 0..total-1 in batches at
    ``rate`` messages a second (0: flat out), then closes the ring."""
    with ringcast.Publisher.create(name, dtype=REC, dir=ring_dir, timestamps=True, **opts) as pub:
        ready.set()
        deadline = time.monotonic() + 60
        while pub.subscriber_count == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        start = time.monotonic()
        sent = 0
        while sent < total:
            n = min(batch, total - sent)
            pub.publish_batch(make_records(sent, n))
            sent += n
            if rate:
                ahead = start + sent / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)


def publish_then_hang(ring_dir, name, n, ready) -> None:
    """Creates ring ``name``, publishes records 0..n-1 once a subscriber is
    attached, then waits to be killed (never closing the ring)."""
    pub = ringcast.Publisher.create(name, dtype=REC, dir=ring_dir, capacity=4096, timestamps=True)
    ready.set()
    while pub.subscriber_count == 0:
        time.sleep(0.001)
    time.sleep(0.3)
    pub.publish_batch(make_records(0, n))
    while True:
        time.sleep(1)
