"""``Publisher.publish_lost``: the single producer declares sequences lost,
and subscribers count them lost exactly (a bridge republishing another
ring's messages with their original sequences)."""

from __future__ import annotations

import numpy as np
import pytest

import ringcast


def publish_seqs(pub: ringcast.Publisher, n: int) -> None:
    for _ in range(n):
        pub.publish(pub.sequence.to_bytes(8, "little"))


def read_all(sub: ringcast.Subscriber) -> list[int]:
    rows = np.zeros((64, 8), np.uint8)
    seqs = np.zeros(64, np.uint64)
    n = sub.recv_batch_into(rows, seqs=seqs)
    for row, seq in zip(rows[:n], seqs[:n], strict=True):
        assert int.from_bytes(row.tobytes(), "little") == seq
    return [int(s) for s in seqs[:n]]


@pytest.mark.parametrize("bounded", [False, True])
def test_subscriber_counts_declared_sequences_lost(ring_dir, bounded):
    with ringcast.Publisher.create(
        "l", slot_size=8, capacity=16, bounded=bounded, dir=ring_dir
    ) as pub:
        with ringcast.Subscriber.attach("l", dir=ring_dir) as sub:
            publish_seqs(pub, 5)
            assert pub.publish_lost(7) == 5
            assert pub.sequence == 12
            publish_seqs(pub, 3)
            assert read_all(sub) == [0, 1, 2, 3, 4, 12, 13, 14]
            assert (sub.received, sub.lost, sub.position) == (8, 7, 15)
            assert pub.publish_lost(0) == 15


def test_more_than_the_ring_and_the_errors(ring_dir):
    with ringcast.Publisher.create("big", slot_size=8, capacity=8, dir=ring_dir) as pub:
        with ringcast.Subscriber.attach("big", dir=ring_dir) as sub:
            publish_seqs(pub, 2)
            assert read_all(sub) == [0, 1]
            assert pub.publish_lost(1000) == 2
            publish_seqs(pub, 1)
            assert read_all(sub) == [1002]
            assert (sub.received, sub.lost) == (3, 1000)
            with pytest.raises(ringcast.InvalidArgument, match="largest"):
                pub.publish_lost(1 << 63)
            with pytest.raises(OverflowError):
                pub.publish_lost(-1)
    with ringcast.Publisher.create(
        "mp", slot_size=8, capacity=8, producers="many", dir=ring_dir
    ) as pub:
        with pytest.raises(ringcast.InvalidArgument, match="only producer"):
            pub.publish_lost(3)


def test_full_bounded_ring(ring_dir):
    with ringcast.Publisher.create(
        "full", slot_size=8, capacity=8, bounded=True, dir=ring_dir
    ) as pub:
        with ringcast.Subscriber.attach("full", dir=ring_dir) as sub:
            publish_seqs(pub, 8)
            with pytest.raises(ringcast.Timeout):
                pub.publish_lost(2, timeout=0.02)
            assert read_all(sub) == list(range(8))
            assert pub.publish_lost(2, timeout=0) == 8
            publish_seqs(pub, 1)
            assert read_all(sub) == [10]
            assert (sub.received, sub.lost) == (9, 2)
