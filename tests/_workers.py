"""Code that runs in child processes of the cross-process tests.

Messages are 64-byte records whose ``seq`` field equals their ring sequence
number and whose ``checksum`` covers every other word, so a subscriber can
prove each message is whole and in its place.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from typing import Any

import numpy as np

import ringcast

REC = np.dtype(
    [("seq", "<u8"), ("pid", "<u4"), ("pad", "<u4"), ("payload", "<u8", (5,)), ("checksum", "<u8")]
)
K = np.uint64(0x9E3779B97F4A7C15)


def make_records(start: int, n: int) -> np.ndarray:
    recs = np.zeros(n, dtype=REC)
    seq = np.arange(start, start + n, dtype=np.uint64)
    recs["seq"] = seq
    recs["pid"] = os.getpid()
    recs["payload"] = seq[:, None] * K + np.arange(1, 6, dtype=np.uint64)[None, :]
    recs["checksum"] = checksum(recs)
    return recs


def checksum(recs: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        acc = recs["seq"] * K
        acc ^= np.bitwise_xor.reduce(recs["payload"], axis=1)
        return acc ^ recs["pid"].astype(np.uint64)


class StreamCheck:
    """Checks a subscriber's stream: order, checksums, and exact loss accounting."""

    def __init__(self) -> None:
        self.received = 0
        self.bad_checksums = 0
        self.out_of_order = 0
        self.gaps = 0
        self.last: int | None = None
        self.first: int | None = None

    def add(self, recs: np.ndarray) -> None:
        if len(recs) == 0:
            return
        seqs = recs["seq"].astype(np.int64)
        self.bad_checksums += int(np.count_nonzero(checksum(recs) != recs["checksum"]))
        steps = np.diff(seqs)
        self.out_of_order += int(np.count_nonzero(steps <= 0))
        self.gaps += int(np.sum(steps[steps > 1] - 1))
        if self.last is not None:
            step = int(seqs[0]) - self.last
            if step <= 0:
                self.out_of_order += 1
            else:
                self.gaps += step - 1
        if self.first is None:
            self.first = int(seqs[0])
        self.last = int(seqs[-1])
        self.received += len(recs)

    def result(self, sub: ringcast.Subscriber) -> dict[str, Any]:
        return {
            "received": self.received,
            "bad_checksums": self.bad_checksums,
            "out_of_order": self.out_of_order,
            "gaps": self.gaps,
            "first": self.first,
            "last": self.last,
            "sub_received": sub.received,
            "sub_lost": sub.lost,
            "position": sub.position,
            "start": sub.start_sequence,
        }


def publish_in_batches(pub, total, batch, pace_every=0) -> float:
    """Publishes records 0..total-1 in batches; returns the longest a batch
    took (seconds). `pace_every`: pause briefly after that many records."""
    sent, longest = 0, 0.0
    while sent < total:
        n = min(batch, total - sent)
        t0 = time.monotonic()
        pub.publish_batch(make_records(sent, n))
        longest = max(longest, time.monotonic() - t0)
        sent += n
        if pace_every and sent % pace_every == 0:
            time.sleep(0.0005)
    return longest


def publish_stream(
    ring_dir, name, total, batch, capacity, ready, go, pace_every=0, create_opts=None
):
    """Creates the ring (with `create_opts`), waits for `go`, publishes
    `total` records, closes."""
    opts = create_opts or {}
    with ringcast.Publisher.create(name, dtype=REC, capacity=capacity, dir=ring_dir, **opts) as pub:
        ready.set()
        go.wait(30)
        publish_in_batches(pub, total, batch, pace_every)
        pub.unlink()


def subscribe_stream(
    ring_dir, name, results, attached, slow=False, start="oldest", attach_opts=None
):
    """Reads until the publisher closes the ring; reports what it saw."""
    read_all(
        ring_dir,
        name,
        results,
        attached,
        pause=0.002 if slow else 0.0,
        batch=64 if slow else 8192,
        start=start,
        attach_opts=attach_opts,
    )


def hold_publisher(ring_dir, name, n, ready, create_opts=None):
    """Publishes `n` records, then hangs until killed (a crashing feed handler)."""
    opts = create_opts or {}
    pub = ringcast.Publisher.create(name, dtype=REC, capacity=1024, dir=ring_dir, **opts)
    pub.publish_batch(make_records(0, n))
    ready.set()
    while True:
        time.sleep(1)


def feed_until_killed(ring_dir, name, n, ready, producers="one"):
    """A feed handler that creates (or takes over, or joins) ring `name`,
    publishes `n` records continuing the ring's sequence, then hangs until
    killed."""
    if producers == "many":
        try:
            pub = ringcast.Publisher.attach(name, dir=ring_dir, dtype=REC)
        except ringcast.RingNotFound:
            pub = ringcast.Publisher.create(
                name, dtype=REC, capacity=1024, dir=ring_dir, producers="many"
            )
    else:
        pub = ringcast.Publisher.create(name, dtype=REC, capacity=1024, dir=ring_dir, exist_ok=True)
    start = pub.sequence
    pub.publish_batch(make_records(start, n))
    ready.set()
    while True:
        time.sleep(1)


def try_create(ring_dir, name, results):
    """Tries to become a second publisher; reports the exception."""
    try:
        ringcast.Publisher.create(name, dtype=REC, capacity=1024, dir=ring_dir, exist_ok=True)
        results.put(("ok", ""))
    except ringcast.RingError as e:
        results.put((type(e).__name__, str(e)))


def blocked_recv(ring_dir, name, ready):
    """Blocks in recv() until interrupted."""
    take_ctrl_c()
    sub = ringcast.Subscriber.attach(name, dir=ring_dir)
    ready.set()
    try:
        sub.recv()
    except KeyboardInterrupt:
        os._exit(42)
    os._exit(1)


def as_nobody(action, ring_dir, name, results):
    """Drops root privileges, then attaches to or creates ring `name`
    (for the permission tests)."""
    os.setgid(65534)
    os.setuid(65534)
    try:
        if action == "create":
            ringcast.Publisher.create(name, slot_size=8, capacity=8, dir=ring_dir).close()
        else:
            ringcast.Subscriber.attach(name, dir=ring_dir)
        results.put(("ok", ""))
    except ringcast.RingError as e:
        results.put((type(e).__name__, str(e)))


def take_ctrl_c() -> None:
    """Makes SIGINT raise KeyboardInterrupt here even when this process was
    started with SIGINT ignored (as children of a background job are), so
    that the Ctrl-C tests test ringcast, not how the suite was launched."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def kill(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)


def publish_bursts(ring_dir, name, total, ready, go, seed=1):
    """Publishes `total` records in bursts of random size with random gaps,
    so that a parked subscriber has to be woken over and over."""
    rng = np.random.default_rng(seed)
    with ringcast.Publisher.create(name, dtype=REC, capacity=1 << 17, dir=ring_dir) as pub:
        ready.set()
        go.wait(30)
        sent = 0
        while sent < total:
            n = int(min(rng.integers(1, 64), total - sent))
            if n == 1:
                pub.publish(make_records(sent, 1)[0])
            else:
                pub.publish_batch(make_records(sent, n))
            sent += n
            gap = rng.choice([0.0, 0.0, 1e-5, 1e-4, 1e-3])
            if gap:
                time.sleep(gap)
        pub.unlink()


def blocked_recv_timed(ring_dir, name, wait_kind, ready, conn):
    """Blocks in recv() with the given wait strategy; reports over `conn` when
    the KeyboardInterrupt arrived (CLOCK_MONOTONIC, shared by all processes)."""
    take_ctrl_c()
    wait = getattr(ringcast.WaitStrategy, wait_kind)()
    sub = ringcast.Subscriber.attach(name, dir=ring_dir, wait=wait)
    ready.set()
    try:
        sub.recv()
    except KeyboardInterrupt:
        conn.send(time.monotonic())  # synchronous, unlike Queue.put
        os._exit(42)
    os._exit(1)


def attach_and_read(ring_dir, name, conn):
    """Attaches and reads once in a child, so that a crash shows as an exit code."""
    try:
        sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
        sub.try_recv()
        conn.send(("ok", ""))
    except ringcast.RingError as e:
        conn.send((type(e).__name__, str(e)))


def park_forever(ring_dir, name, ready):
    """A subscriber parked on an idle ring (to be killed by the test)."""
    sub = ringcast.Subscriber.attach(name, dir=ring_dir, wait=ringcast.WaitStrategy.park())
    ready.set()
    sub.recv()


# Bounded and multi-producer rings ---------------------------------------------


class ProducerCheck:
    """Checks a multi-producer stream: per producer (the record's ``pid``),
    its own counters (the ``seq`` field) must come strictly in order, each
    record whole; with ``exact`` nothing may be missing."""

    def __init__(self) -> None:
        self.received = 0
        self.bad_checksums = 0
        self.out_of_order = 0
        self.gaps = 0
        self.last: dict[int, int] = {}

    def add(self, recs: np.ndarray) -> None:
        if len(recs) == 0:
            return
        self.received += len(recs)
        self.bad_checksums += int(np.count_nonzero(checksum(recs) != recs["checksum"]))
        for pid in np.unique(recs["pid"]):
            seqs = recs["seq"][recs["pid"] == pid].astype(np.int64)
            prev = self.last.get(int(pid), -1)
            steps = np.diff(np.concatenate(([prev], seqs)))
            self.out_of_order += int(np.count_nonzero(steps <= 0))
            self.gaps += int(np.sum(steps[steps > 1] - 1))
            self.last[int(pid)] = int(seqs[-1])

    def result(self, sub: ringcast.Subscriber) -> dict[str, Any]:
        return {
            "received": self.received,
            "bad_checksums": self.bad_checksums,
            "out_of_order": self.out_of_order,
            "gaps": self.gaps,
            "per_producer": {pid: last + 1 for pid, last in self.last.items()},
            "sub_received": sub.received,
            "sub_lost": sub.lost,
            "position": sub.position,
            "start": sub.start_sequence,
        }


def publish_bounded(ring_dir, name, total, batch, opts, ready, go, results):
    """Creates a ring with `opts`, waits for `go`, publishes `total` records
    in batches, reports how long the longest batch waited, closes."""
    with ringcast.Publisher.create(name, dtype=REC, dir=ring_dir, **opts) as pub:
        ready.set()
        go.wait(60)
        longest = publish_in_batches(pub, total, batch)
        results.put({"publisher": True, "longest_wait": longest, "evictions": pub.evictions})
        pub.unlink()


def read_all(
    ring_dir,
    name,
    results,
    attached,
    *,
    by_producer=False,
    pause=0.0,
    batch=8192,
    start="oldest",
    attach_opts=None,
):
    """Reads until every producer closed the ring; reports what it saw (and,
    under "memory", the subscriber's memory report).
    `pause`: seconds slept after each batch (a slow subscriber)."""
    check = ProducerCheck() if by_producer else StreamCheck()
    opts = attach_opts or {}
    with ringcast.Subscriber.attach(name, dir=ring_dir, start=start, **opts) as sub:
        memory = dataclasses.asdict(sub.memory)
        attached.set()
        out = np.empty(batch, dtype=REC)
        while True:
            try:
                n = sub.recv_batch_into(out, timeout=None)
            except ringcast.RingClosed:
                break
            check.add(out[:n])
            if pause:
                time.sleep(pause)
        results.put({**check.result(sub), "memory": memory})


def produce(ring_dir, name, total, batch, ready, go):
    """Joins a multi-producer ring and publishes `total` records numbered
    0..total-1 (its own counter, in the ``seq`` field)."""
    with ringcast.Publisher.attach(name, dir=ring_dir, dtype=REC) as pub:
        ready.set()
        go.wait(60)
        publish_in_batches(pub, total, batch)


def produce_then_stop(ring_dir, name, before, ready):
    """Joins a multi-producer ring, publishes `before` records, then claims
    one more and stops itself (SIGSTOP) in the middle of writing it."""
    pub = ringcast.Publisher.attach(name, dir=ring_dir, dtype=REC)
    recs = make_records(0, before + 1)
    for rec in recs[:before]:
        pub.publish(rec)
    pub._stop_after_claim(pub.sequence)
    ready.set()
    pub.publish(recs[before])  # never returns: the test kills us meanwhile
    os._exit(3)


def produce_batch_then_stop(ring_dir, name, before, batch, stop_at, ready):
    """Joins a multi-producer ring, publishes `before` records, then claims a
    batch of `batch` records in one claim and stops itself (SIGSTOP) while
    writing its record `stop_at`: the rest of the claim is never written."""
    pub = ringcast.Publisher.attach(name, dir=ring_dir, dtype=REC)
    recs = make_records(0, before + batch)
    for rec in recs[:before]:
        pub.publish(rec)
    pub._stop_after_claim(pub.sequence + stop_at)
    ready.set()
    pub.publish_batch(recs[before:])  # never returns: the test kills us meanwhile
    os._exit(3)


def read_then_stall(ring_dir, name, attached, first, conn):
    """A bounded-ring subscriber that reads `first` records, reports, then
    stops reading (alive) until the test says go on (or kills it); then it
    reads again and reports what that raised."""
    sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
    attached.set()
    got = 0
    while got < first:
        got += len(sub.recv_batch(first - got, timeout=30))
    conn.send(("read", got))
    conn.recv()  # stalled here: alive, not reading
    try:
        while True:
            sub.recv(timeout=5)
    except ringcast.RingError as e:
        conn.send((type(e).__name__, str(e)))


def blocked_publish(ring_dir, name, ready):
    """Blocks in publish() on a full bounded ring (its own subscriber never
    reads) until interrupted."""
    take_ctrl_c()
    pub = ringcast.Publisher.create(name, slot_size=8, capacity=8, dir=ring_dir, bounded=True)
    sub = ringcast.Subscriber.attach(name, dir=ring_dir)
    pub.publish_batch([b"x"] * 8)
    ready.set()
    try:
        pub.publish(b"blocked")
    except KeyboardInterrupt:
        os._exit(42 if sub.received == 0 else 2)
    os._exit(1)


def lock_with_low_memlock(ring_dir, name, role, limit, results):
    """Drops root (whose CAP_IPC_LOCK ignores the limit), lowers
    RLIMIT_MEMLOCK to `limit` bytes, then creates (role "create") or attaches
    to ring `name` with lock_memory=True; reports the outcome."""
    import resource

    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (limit, limit))
    try:
        if role == "create":
            ringcast.Publisher.create(
                name, slot_size=1000, capacity=1024, dir=ring_dir, mode=0o666, lock_memory=True
            ).close()
        else:
            ringcast.Subscriber.attach(name, dir=ring_dir, lock_memory=True).close()
        results.put(("ok", ""))
    except ringcast.RingError as e:
        results.put((type(e).__name__, str(e)))


# --- Running dangerous cases in a child process -------------------------------


def _run_and_report(conn, fn, args) -> None:
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as e:  # reported, not raised: the exit status is checked
        conn.send(("raised", f"{type(e).__name__}: {e}"))
    conn.close()


def run_isolated(fn, *args, timeout: float = 60.0):
    """Runs ``fn(*args)`` in a fresh (spawned) process and returns its result.

    The child must exit normally: a crash (SIGBUS, SIGSEGV, abort) or a hang
    past ``timeout`` fails the calling test with the signal or the time, and
    an exception in the child fails it with the exception."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_run_and_report, args=(sender, fn, args))
    p.start()
    sender.close()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join(10)
        raise AssertionError(f"{fn.__name__} did not return within {timeout} s")
    assert p.exitcode == 0, f"{fn.__name__}: the child died with exit code {p.exitcode}"
    status, value = receiver.recv()
    assert status == "ok", f"{fn.__name__} raised in the child: {value}"
    return value


class RingMemory:
    """A ring file's bytes, mapped for forging what a damaged or hostile file
    holds (the layout is read from the header, as `format/layout.rs` writes it)."""

    CURSOR = 64
    FLAG_HEADS_APART = 16

    def __init__(self, path) -> None:
        import mmap
        import struct

        self._struct = struct
        self._file = open(path, "r+b")
        self.map = mmap.mmap(self._file.fileno(), 0)
        self.header_len = struct.unpack_from("<I", self.map, 12)[0]
        self.capacity = struct.unpack_from("<Q", self.map, 16)[0]
        self.stride = struct.unpack_from("<I", self.map, 28)[0]
        flags = struct.unpack_from("<I", self.map, 32)[0]
        # Where the slot heads (stamp, length) are: in the head table after
        # the slots on rings created with heads_apart=True, else at the front
        # of each slot.
        if flags & self.FLAG_HEADS_APART:
            self.heads_offset = self.header_len + self.capacity * self.stride
            self.head_stride = 16
        else:
            self.heads_offset = self.header_len
            self.head_stride = self.stride

    def head(self, slot: int) -> int:
        """Offset of slot `slot`'s head: its stamp, then its length word."""
        return self.heads_offset + slot * self.head_stride

    def u64(self, offset: int, value: int | None = None) -> int:
        if value is not None:
            self._struct.pack_into("<Q", self.map, offset, value)
        return self._struct.unpack_from("<Q", self.map, offset)[0]

    def stamp(self, slot: int, value: int | None = None) -> int:
        return self.u64(self.head(slot), value)

    def cursor(self, value: int | None = None) -> int:
        return self.u64(self.CURSOR, value)

    def close(self) -> None:
        self.map.close()
        self._file.close()


def writing(seq: int) -> int:
    """The stamp of a slot while message `seq` is written (`protocol/stamp.rs`)."""
    return 2 * seq + 1


def complete(seq: int) -> int:
    """The stamp of a slot holding message `seq`."""
    return 2 * seq + 2


def lost(seq: int) -> int:
    """The stamp of a slot whose message `seq` was declared lost."""
    return complete(seq) | 1 << 63
