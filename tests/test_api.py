"""The Python API in one process: message forms, receive forms, properties."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import ringcast
from _workers import REC, make_records

Q = np.dtype([("seq", "<u8"), ("bid", "<f8"), ("ask", "<f8"), ("sym", "S8")])


@pytest.fixture
def typed(ring_dir):
    with ringcast.Publisher.create("q", dtype=Q, capacity=16, dir=ring_dir) as pub:
        with ringcast.Subscriber.attach("q", dir=ring_dir) as sub:
            yield pub, sub


@pytest.fixture
def raw(ring_dir):
    with ringcast.Publisher.create("r", slot_size=32, capacity=16, dir=ring_dir) as pub:
        with ringcast.Subscriber.attach("r", dir=ring_dir) as sub:
            yield pub, sub


def test_typed_ring_accepts_every_message_form(typed):
    pub, sub = typed
    arr = np.array([(1, 1.5, 1.6, b"AAPL")], dtype=Q)
    pub.publish((0, 1.0, 1.1, b"MSFT"))  # tuple
    pub.publish(arr[0])  # numpy record
    pub.publish(np.array((2, 2.0, 2.1, b"IBM"), dtype=Q))  # 0-d array
    pub.publish(arr.tobytes())  # bytes of one record
    pub.publish(memoryview(bytearray(arr.tobytes())))  # any buffer
    got = sub.recv_batch(10)
    assert got.dtype == Q
    assert list(got["seq"]) == [0, 1, 2, 1, 1]
    assert got[0]["sym"] == b"MSFT"
    assert pub.sequence == 5


def test_typed_receive_forms(typed):
    pub, sub = typed
    pub.publish_batch(np.array([(i, i, i, b"X") for i in range(6)], dtype=Q))
    rec = sub.try_recv()
    assert isinstance(rec, np.void) and rec.dtype == Q and rec["seq"] == 0
    assert sub.recv(timeout=0)["seq"] == 1
    buf = np.zeros(1, dtype=Q)
    assert sub.recv_into(buf) == Q.itemsize and buf[0]["seq"] == 2
    assert sub.try_recv_into(buf) == Q.itemsize and buf[0]["seq"] == 3
    out = np.zeros(8, dtype=Q)
    assert sub.recv_batch_into(out) == 2
    assert list(out["seq"][:2]) == [4, 5]
    assert sub.try_recv() is None and sub.try_recv_into(buf) is None
    assert sub.recv_batch(4).shape == (0,)
    assert sub.recv_batch_into(out) == 0
    assert (sub.received, sub.lost, sub.position, sub.lag) == (6, 0, 6, 0)


def test_raw_ring_variable_lengths(raw):
    pub, sub = raw
    msgs = [b"", b"a", b"x" * 8, b"y" * 9, b"z" * 32]
    for m in msgs:
        pub.publish(m)
    assert [sub.recv(timeout=1) for _ in msgs] == msgs
    pub.publish_batch([b"one", bytearray(b"two"), memoryview(b"three")])
    assert sub.recv_batch(10) == [b"one", b"two", b"three"]
    pub.publish_batch(np.arange(12, dtype=np.uint8).reshape(3, 4))
    out = np.zeros((4, 32), dtype=np.uint8)
    lengths = np.zeros(4, dtype=np.int64)
    assert sub.recv_batch_into(out, lengths=lengths) == 3
    assert list(lengths[:3]) == [4, 4, 4] and list(out[2, :4]) == [8, 9, 10, 11]
    buf = bytearray(32)
    pub.publish(b"hello")
    assert sub.recv_into(buf) == 5 and buf[:5] == b"hello"
    assert sub.dtype is None and pub.dtype is None


def test_batch_sequences(typed, raw):
    """``seqs=`` receives each row's ring sequence: a lap before or inside
    the batch shows as a jump, and the lengths of raw rows still arrive."""
    pub, sub = typed
    pub.publish_batch(np.array([(i, i, i, b"X") for i in range(40)], dtype=Q))  # 16 slots
    out = np.zeros(32, dtype=Q)
    seqs = np.full(33, 7, dtype=np.uint64)
    n = sub.recv_batch_into(out, seqs=seqs)
    assert n > 0 and list(seqs[:n]) == list(out["seq"][:n]) == list(range(40 - n, 40))
    assert seqs[n] == 7 and sub.lost == 40 - n
    rpub, rsub = raw
    rpub.publish_batch([b"a", b"bb", b"ccc"])
    rows = np.zeros((4, 32), np.uint8)
    lengths = np.zeros(4, np.int64)
    seqs = np.zeros(4, np.uint64)
    assert rsub.recv_batch_into(rows, lengths=lengths, seqs=seqs) == 3
    assert list(lengths[:3]) == [1, 2, 3] and list(seqs[:3]) == [0, 1, 2]
    for bad, match in (
        (np.zeros(4, np.int64), "seqs must be a 1-D native-endian uint64 array"),
        (np.zeros(3, np.uint64), "at least 4 entries"),
        (np.zeros((4, 1), np.uint64), "1-D"),
        (np.zeros(4, ">u8"), "native-endian"),
        (lengths.view(np.uint64), "lengths and seqs must not share memory"),
        (np.frombuffer(bytearray(40), np.uint64, 4, 4), "not aligned"),
    ):
        with pytest.raises(ringcast.InvalidArgument, match=match):
            rsub.recv_batch_into(rows, lengths=lengths, seqs=bad)


def test_iteration_ends_when_publisher_closes(typed):
    pub, sub = typed
    pub.publish_batch(np.zeros(3, dtype=Q))
    pub.close()
    assert len(list(sub)) == 3
    assert sub.publisher_closed
    with pytest.raises(ringcast.RingClosed):
        sub.recv(timeout=5)
    with pytest.raises(ringcast.RingClosed):
        sub.recv_batch(5)
    with pytest.raises(ringcast.RingClosed, match="is closed"):
        pub.publish((0, 0, 0, b""))
    pub.close()  # idempotent


def test_lapping_in_process_counts_exact_loss(ring_dir):
    with ringcast.Publisher.create("lap", dtype=REC, capacity=8, dir=ring_dir) as pub:
        sub = ringcast.Subscriber.attach("lap", dir=ring_dir)
        pub.publish_batch(make_records(0, 100))
        got = sub.recv_batch(100)
        # Resumes at the oldest safe message (93) plus an eighth of the ring.
        assert list(got["seq"]) == list(range(94, 100))
        assert sub.lost == 94 and sub.received == 6
        assert sub.received + sub.lost == sub.position - sub.start_sequence


def test_timeout_raises_timeout_error(typed):
    _, sub = typed
    t0 = time.monotonic()
    with pytest.raises(ringcast.Timeout):
        sub.recv(timeout=0.05)
    assert time.monotonic() - t0 >= 0.05
    with pytest.raises(TimeoutError):  # also a built-in TimeoutError
        sub.recv_into(np.zeros(1, dtype=Q), timeout=0.01)
    assert len(sub.recv_batch(4, timeout=0.01)) == 0
    with pytest.raises(ringcast.InvalidArgument, match="timeout"):
        sub.recv(timeout=-1)


def test_blocking_recv_releases_the_gil(typed):
    pub, sub = typed
    counter = 0
    stop = False

    def spin():
        nonlocal counter
        while not stop:
            counter += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        with pytest.raises(ringcast.Timeout):
            sub.recv(timeout=0.3)
        seen = counter
        assert seen > 10_000, f"other thread ran only {seen} iterations while recv() waited"
        threading.Timer(0.1, pub.publish, args=((7, 0, 0, b"T"),)).start()
        assert sub.recv(timeout=5)["seq"] == 7
    finally:
        stop = True
        t.join()


def test_properties_and_repr(typed, ring_dir):
    pub, sub = typed
    assert pub.name == sub.name == "q"
    assert str(pub.path).startswith(ring_dir) and pub.path == sub.path
    assert (pub.capacity, pub.slot_size, sub.capacity, sub.slot_size) == (16, 32, 16, 32)
    assert pub.dtype == sub.dtype == Q and sub.fixed_size
    assert "md" not in repr(sub) and "q" in repr(pub)
    assert sub.publisher_alive and not sub.publisher_closed and sub.generation == 1
    assert ringcast.list_rings(ring_dir) == ["q"]
    sub.close()
    assert sub.closed and "closed" in repr(sub)
    with pytest.raises(ringcast.RingClosed, match="attach a new one"):
        sub.try_recv()


def test_attach_with_expected_dtype(typed, ring_dir):
    ringcast.Subscriber.attach("q", dir=ring_dir, dtype=Q).close()
    with pytest.raises(ringcast.SchemaMismatch, match="float64"):
        ringcast.Subscriber.attach("q", dir=ring_dir, dtype=np.float64)


def test_unlink_removes_the_file_but_not_attached_readers(ring_dir):
    pub = ringcast.Publisher.create("u", slot_size=8, capacity=4, dir=ring_dir)
    sub = ringcast.Subscriber.attach("u", dir=ring_dir)
    pub.unlink()
    assert ringcast.list_rings(ring_dir) == []
    pub.publish(b"still")
    assert sub.recv(timeout=1) == b"still"
    with pytest.raises(ringcast.RingNotFound):
        ringcast.Subscriber.attach("u", dir=ring_dir)
    pub.close()


def test_ringcast_dir_environment_variable(ring_dir, monkeypatch):
    monkeypatch.setenv("RINGCAST_DIR", ring_dir)
    assert ringcast.default_dir() == ring_dir
    with ringcast.Publisher.create("env", slot_size=8, capacity=4) as pub:
        assert str(pub.path).startswith(ring_dir)
        ringcast.Subscriber.attach("env").close()


def test_mode_is_applied_exactly(ring_dir):
    import os
    import stat

    with ringcast.Publisher.create("m", slot_size=8, capacity=4, dir=ring_dir, mode=0o640) as pub:
        assert stat.S_IMODE(os.stat(pub.path).st_mode) == 0o640


def test_unlink_after_close_and_try_methods_after_the_end(ring_dir):
    pub = ringcast.Publisher.create("end", slot_size=8, capacity=4, dir=ring_dir)
    sub = ringcast.Subscriber.attach("end", dir=ring_dir)
    pub.publish(b"x")
    pub.close()
    pub.unlink()  # still possible after close
    assert ringcast.list_rings(ring_dir) == []
    assert sub.try_recv_into(bytearray(8)) == 1
    # Non-blocking calls report "nothing waiting"; blocking ones say the stream ended.
    assert sub.try_recv_into(bytearray(8)) is None
    assert sub.try_recv() is None
    with pytest.raises(ringcast.RingClosed):
        sub.recv_into(bytearray(8), timeout=0)


def test_relaying_records_between_rings_of_equal_dtypes(ring_dir):
    """A subscriber's dtype is rebuilt from the ring header: equal to, not the
    same object as, the downstream publisher's. Relaying must just work."""
    with (
        ringcast.Publisher.create("up", dtype=Q, capacity=8, dir=ring_dir) as up,
        ringcast.Publisher.create("down", dtype=Q, capacity=8, dir=ring_dir) as down,
    ):
        relay = ringcast.Subscriber.attach("up", dir=ring_dir)
        sink = ringcast.Subscriber.attach("down", dir=ring_dir)
        assert relay.dtype == down.dtype and relay.dtype is not down.dtype
        up.publish_batch(np.array([(i, i, i, b"R") for i in range(3)], dtype=Q))
        down.publish(relay.recv(timeout=1))  # a numpy.void record
        down.publish_batch(relay.recv_batch(2))  # an array
        assert list(sink.recv_batch(8)["seq"]) == [0, 1, 2]
        other = np.dtype([("seq", "<u8"), ("bid", "<f8"), ("ask", "<f8"), ("sym", "S4")])
        with pytest.raises(ringcast.SchemaMismatch, match="astype"):
            down.publish(np.zeros(1, dtype=other)[0])
