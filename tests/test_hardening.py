"""What a hostile file, a forked child, a dead peer or another thread can do,
and what ringcast does about it."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import struct
import threading
import time

import numpy as np
import pytest

import ringcast
from _workers import RingMemory, attach_and_read, kill, park_forever

ctx = mp.get_context("spawn")
HEADER_SIZE = 2432
SCHEMA_OFFSET = 384
MODES_OFFSET = 256
WAITERS_OFFSET = 196


def fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def forge(path: str, *, schema: bytes | None = None, flags: int | None = None) -> None:
    """Rewrites header fields and recomputes the checksum, as anyone with
    write access to the file could."""
    with open(path, "r+b") as f:
        head = bytearray(f.read(HEADER_SIZE))
        if schema is not None:
            struct.pack_into("<I", head, 40, len(schema))
            head[SCHEMA_OFFSET : SCHEMA_OFFSET + 2048] = schema.ljust(2048, b"\0")
        if flags is not None:
            struct.pack_into("<I", head, 32, flags)
        version, header_len = struct.unpack_from("<II", head, 8)
        capacity, slot_size, stride, flg, subs, schema_len = struct.unpack_from("<QIIIII", head, 16)
        fields = struct.pack(
            "<IIQIIIII", version, header_len, capacity, slot_size, stride, flg, subs, schema_len
        )
        modes = bytes(head[MODES_OFFSET : MODES_OFFSET + 28])  # watermark, timeouts, producers
        schema_bytes = bytes(head[SCHEMA_OFFSET : SCHEMA_OFFSET + schema_len])
        struct.pack_into("<Q", head, 48, fnv1a(fields + modes + schema_bytes))
        f.seek(0)
        f.write(head)


def attach_in_child(ring_dir: str, name: str) -> tuple[str, str]:
    receiver, sender = ctx.Pipe(duplex=False)
    p = ctx.Process(target=attach_and_read, args=(ring_dir, name, sender))
    p.start()
    p.join(30)
    assert p.exitcode == 0, f"the subscriber process crashed (exit code {p.exitcode})"
    return receiver.recv()


@pytest.mark.parametrize(
    ("schema", "flags"),
    [
        (b"numpy:'|O'", None),  # object references: pointers read from shared memory
        (b"numpy:'|V4096'", None),  # larger than the 8-byte slots
        (b"numpy:'<u8'", 0),  # a dtype on a variable-size ring
        (b"numpy:[('a', '|O')]", None),
        (b"numpy:__import__('os')", None),  # not a literal: never evaluated
        (b"numpy:[()]", None),  # numpy's reader raised IndexError on these
        (b"numpy:[('a',)]", None),
        (b"numpy:" + b"[" * 100 + b"'<u8'" + b"]" * 100, None),  # deep nesting
        (b"numpy:[('a', '<u8', (1099511627776,))]", None),  # a huge shape
        (b"numpy:[('a', '<u8', -1)]", None),
        (b"numpy:'\xff\xfe'", None),  # not UTF-8
    ],
)
def test_forged_dtype_in_header_is_refused(ring_dir, schema, flags):
    with ringcast.Publisher.create("forged", dtype="<u8", capacity=8, dir=ring_dir) as pub:
        pub.publish(np.uint64(7))
        forge(str(pub.path), schema=schema, flags=flags)
        kind, msg = attach_in_child(ring_dir, "forged")
    assert kind == "RingCorrupt", msg


def slot0_len_offset(path) -> int:
    """Offset of slot 0's length word: its head (read from the header) + the stamp."""
    ring = RingMemory(path)
    try:
        return ring.head(0) + 8
    finally:
        ring.close()


@pytest.mark.parametrize("typed", [False, True])
def test_impossible_slot_length_is_refused_without_consuming(ring_dir, typed):
    kwargs = {"dtype": "<u8"} if typed else {"slot_size": 8}
    with ringcast.Publisher.create("len", capacity=8, dir=ring_dir, **kwargs) as pub:
        sub = ringcast.Subscriber.attach("len", dir=ring_dir)
        pub.publish(b"12345678")
        with open(pub.path, "r+b") as f:
            f.seek(slot0_len_offset(pub.path))
            f.write(struct.pack("<Q", 4 if typed else 40))
        for _ in range(2):
            with pytest.raises(ringcast.RingCorrupt, match="claims"):
                sub.recv(timeout=1)
        assert sub.received == 0 and sub.position == 0


def test_start_beyond_any_sequence_is_refused(ring_dir):
    with ringcast.Publisher.create("big", slot_size=8, capacity=8, dir=ring_dir):
        for start in (2**62, 2**63 - 1, 2**64 - 1):
            with pytest.raises(ringcast.InvalidArgument, match="start"):
                ringcast.Subscriber.attach("big", dir=ring_dir, start=start)


def test_forked_child_leaves_the_parents_ring_alone(ring_dir):
    pub = ringcast.Publisher.create("fork", slot_size=8, capacity=8, dir=ring_dir)
    sub = ringcast.Subscriber.attach("fork", dir=ring_dir)
    pid = os.fork()
    if pid == 0:  # the child drops its copies and exits normally
        del pub, sub
        import gc

        gc.collect()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sub.publisher_alive and not sub.publisher_closed
    pub.publish(b"after")
    assert sub.recv(timeout=1) == b"after"
    assert read_u32(str(pub.path), HEADER_SIZE) == os.getpid()  # record 0 is still ours
    pub.close()


def read_u32(path: str, offset: int) -> int:
    with open(path, "rb") as f:
        f.seek(offset)
        return struct.unpack("<I", f.read(4))[0]


def test_subscriber_killed_while_parked_is_forgotten(ring_dir):
    pub = ringcast.Publisher.create("dead", slot_size=8, capacity=8, dir=ring_dir)
    ready = ctx.Event()
    p = ctx.Process(target=park_forever, args=(ring_dir, "dead", ready))
    p.start()
    assert ready.wait(30)
    deadline = time.monotonic() + 5
    while read_u32(str(pub.path), WAITERS_OFFSET) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert read_u32(str(pub.path), WAITERS_OFFSET) == 1
    kill(p)
    assert read_u32(str(pub.path), WAITERS_OFFSET) == 1  # left behind by the dead process
    ringcast.Subscriber.attach("dead", dir=ring_dir).close()  # attaching sweeps dead records
    assert read_u32(str(pub.path), WAITERS_OFFSET) == 0
    pub.close()


def test_close_from_another_thread_ends_a_blocked_recv(ring_dir):
    with ringcast.Publisher.create("thr", slot_size=8, capacity=8, dir=ring_dir):
        for wait in (ringcast.WaitStrategy.park(), ringcast.WaitStrategy.busy_spin()):
            sub = ringcast.Subscriber.attach("thr", dir=ring_dir, wait=wait)
            threading.Timer(0.1, sub.close).start()
            t0 = time.monotonic()
            with pytest.raises(ringcast.RingClosed, match="closed"):
                sub.recv(timeout=10)
            assert time.monotonic() - t0 < 2
            assert sub.closed


def test_close_while_a_coroutine_awaits(ring_dir):
    with ringcast.Publisher.create("aclose", slot_size=8, capacity=8, dir=ring_dir):
        sub = ringcast.Subscriber.attach("aclose", dir=ring_dir)

        async def main():
            waiter = asyncio.create_task(sub.recv_async())
            await asyncio.sleep(0.05)
            sub.close()
            with pytest.raises(ringcast.RingClosed):
                await asyncio.wait_for(waiter, 2)
            assert sub.closed

        asyncio.run(main())

        sub2 = ringcast.Subscriber.attach("aclose", dir=ring_dir)

        async def cancel():
            waiter = asyncio.create_task(sub2.recv_async())
            await asyncio.sleep(0.05)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter

        asyncio.run(cancel())
        sub2.close()


def test_symlinked_ring_is_refused(ring_dir, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"x" * 100)
    os.symlink(target, os.path.join(ring_dir, "link.ring"))
    with pytest.raises(ringcast.RingCorrupt, match="symbolic link"):
        ringcast.Subscriber.attach("link", dir=ring_dir)
    with pytest.raises(ringcast.RingCorrupt, match="symbolic link"):
        ringcast.Publisher.create("link", slot_size=8, capacity=8, dir=ring_dir, exist_ok=True)


def test_ring_of_another_user_is_not_taken_over(ring_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the ring file to another user")
    with ringcast.Publisher.create("theirs", slot_size=8, capacity=8, dir=ring_dir) as pub:
        path = str(pub.path)
    os.chown(path, 65534, 65534)
    with pytest.raises(ringcast.RingPermissionError, match="owned by uid 65534"):
        ringcast.Publisher.create("theirs", slot_size=8, capacity=8, dir=ring_dir, exist_ok=True)


def test_temp_files_of_dead_creators_are_swept(ring_dir):
    stale = os.path.join(ring_dir, ".swept.4194303.123.tmp")  # above pid_max: never alive
    with open(stale, "wb") as f:
        f.write(b"left by a creator killed mid-way")
    ringcast.Publisher.create("swept", slot_size=8, capacity=8, dir=ring_dir).close()
    assert not os.path.exists(stale)


def test_raw_batches_of_empty_rows_and_record_shape_checks(ring_dir):
    with ringcast.Publisher.create("rows", slot_size=8, capacity=16, dir=ring_dir) as pub:
        sub = ringcast.Subscriber.attach("rows", dir=ring_dir)
        assert pub.publish_batch(np.zeros((5, 0), dtype=np.uint8)) == 5
        assert sub.recv_batch(10) == [b""] * 5
        with pytest.raises(ringcast.InvalidArgument, match="2-D"):
            sub.recv_batch_into(np.zeros(8, dtype=np.uint8))
        with pytest.raises(ringcast.InvalidArgument, match="native-endian"):
            sub.recv_batch_into(np.zeros((2, 8), np.uint8), lengths=np.zeros(2, ">i8"))
    with ringcast.Publisher.create("recs", dtype="<u8", capacity=16, dir=ring_dir):
        sub = ringcast.Subscriber.attach("recs", dir=ring_dir)
        with pytest.raises(ringcast.InvalidArgument, match="1-D"):
            sub.recv_batch_into(np.zeros((2, 2), dtype="<u8"))
    with pytest.raises(ringcast.InvalidArgument, match="sub-array"):
        ringcast.Publisher.create("sub", dtype=("<f8", (3,)), capacity=8, dir=ring_dir)
    for bad in ({"capacity": 2**64}, {"capacity": 8, "max_subscribers": "3"}):
        with pytest.raises(ringcast.InvalidArgument):
            ringcast.Publisher.create("args", slot_size=8, dir=ring_dir, **bad)
