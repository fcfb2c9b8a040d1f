"""Subscriber groups: one read of a ring serving several consumers in one process.

A process that hands the same stream to N components (a risk check, a PnL
book, a recorder...) could attach N subscribers, but each one is a record in
the ring's subscriber table (a bounded resource, scanned by bounded-ring
publishers on every gate check) and each copies every message out of the
shared ring. A :class:`SubscriberGroup` attaches ONE native subscriber, reads
the ring once into a process-local buffer, and lets each named consumer
advance its own cursor through that buffer.

The buffer is bounded by the slowest consumer: the group reads from the ring
only into free space, ``space = buffer - (newest buffered - slowest
consumer)``. A slow consumer therefore holds the whole group back, which on a
bounded ring holds the publisher back (nothing is lost) and on a lossy ring
lets the publisher lap the group (every consumer loses the same messages).

Exact loss accounting. The native subscriber counts messages it skipped, but
a batch read can skip in the middle of the batch (``protocol::try_read``
resynchronises after a lap, and multi-producer rings skip slots of dead
producers, on any row of ``try_recv_rows``), and the batch does not say
where. So the group keeps, for every buffered message, its ring sequence.
It reads in batches where nothing can be skipped inside one (bounded
single-producer rings) or practically nothing can (lossy rings: batches
sized by the distance to the lap point), checks every batch (the position
must move by exactly the number delivered) and drops, counted lost, the rare
batch that skipped inside anyway. Elsewhere (multi-producer rings, a lossy
ring at the point of being lapped) it reads one message at a time, which
always tells the sequence (``position - 1`` after the read). See
:meth:`SubscriberGroup._fill`.

Threads. Consumers may be used from different threads. A consumer that has
a message buffered takes it without any shared lock (its cursor is its own;
buffered slots do not change until every consumer has passed them). The
group's lock guards the rest: reading the ring, the sequence runs, waiting.
Whoever needs data and finds the ring reader free becomes the reader. Nobody
holds the group's lock while blocking: the reader blocks inside the native
subscriber (which releases the GIL and parks per its ``WaitStrategy``) with
the lock released, everyone else waits on a condition variable with a short
poll.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import threading
import time
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np

from ._api import StrPath, Subscriber, WaitStrategy, _check_int, _deadline
from ._memory import ring_info
from .errors import InvalidArgument, RingClosed, RingError, Timeout, UnknownConsumer

__all__ = ["GroupConsumer", "SubscriberGroup"]

MAX_BUFFER = 1 << 20
"""Largest ``buffer`` (messages). The buffer is allocated up front (typed
rings: ``buffer * itemsize`` bytes), so a typo should not take the host's RAM."""

_POLL = 0.05
"""Longest a consumer sleeps on the condition variable before looking again
(closed group, deadline). Wake-ups normally come from notifications; the poll
only bounds the damage of a missed one, and costs nothing measurable."""

_ASYNC_SLICE = 0.1
"""Longest an executor thread waits on behalf of an awaiting coroutine. A
cancelled coroutine's thread finishes its slice on its own (it only waits,
it never takes a message, so nothing is lost); short slices keep the
executor, and ``asyncio.run``'s shutdown, from waiting long for it."""

# How the group may read the ring without losing track of sequences.
_GATED = "gated"  # bounded single-producer ring: nothing is skipped mid-batch
_LOSSY = "lossy"  # lossy single-producer ring: batches while far from a lap
_SINGLE = "single"  # multi-producer (or unknown) ring: one message at a time


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _consumer_names(consumers: Any) -> tuple[str, ...]:
    hint = "pass a list of unique non-empty names, e.g. consumers=['risk', 'pnl', 'recorder']"
    if isinstance(consumers, str | bytes) or not isinstance(consumers, Iterable):
        raise InvalidArgument(f"consumers must be a list of names; {hint}; got {consumers!r}")
    names = tuple(consumers)
    if not names:
        raise InvalidArgument(f"a group needs at least one consumer; {hint}")
    for n in names:
        if not isinstance(n, str) or not n:
            raise InvalidArgument(f"consumer names must be non-empty strings; {hint}; got {n!r}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidArgument(f"consumer names must be unique, {dupes} repeat; {hint}")
    return names


class SubscriberGroup:
    """One subscriber of ring ``ring`` shared by the named ``consumers`` of
    this process: the ring is read once (one record in its subscriber table)
    into a buffer of up to ``buffer`` messages, and every consumer reads every
    message from there at its own pace. ``group["name"]`` is a consumer.

    ``dir``, ``dtype``, ``start`` and ``wait`` are as for
    :meth:`Subscriber.attach`. The buffer never runs more than ``buffer``
    messages ahead of the slowest consumer: on a bounded ring a consumer that
    stops reading stops the publisher once the ring and the buffer are full
    (and, if the publisher *waits* on it for the ring's ``liveness_timeout``,
    gets the whole group evicted); on a lossy ring the publisher laps the
    group and every consumer counts the same messages as ``lost``.

    Consumers may live in different threads. Within one thread, do not block
    one consumer (``recv``, iteration, ``timeout=None``) while a slower one
    of the same thread holds the buffer full: only that slower consumer can
    make room, so the wait would never end. Read such consumers with
    ``try_recv`` / ``recv_batch(n)`` (timeout 0) in turn instead.
    """

    def __init__(
        self,
        ring: str,
        consumers: Iterable[str],
        *,
        dir: StrPath | None = None,
        dtype: Any = None,
        start: Literal["latest", "oldest"] | int = "latest",
        wait: WaitStrategy | None = None,
        buffer: int = 4096,
    ) -> None:
        names = _consumer_names(consumers)
        _check_int(
            "buffer",
            buffer,
            1,
            MAX_BUFFER,
            f"a number of messages between 1 and {MAX_BUFFER} (default 4096)",
        )
        sub = Subscriber.attach(ring, dir=dir, start=start, dtype=dtype, wait=wait)
        try:
            self._setup(sub, names, int(buffer), dir)
        except BaseException:
            sub.close()
            raise

    def _setup(
        self, sub: Subscriber, names: tuple[str, ...], size: int, dir: StrPath | None
    ) -> None:
        self._sub = sub
        self._name = sub.name
        self._size = size
        self._capacity = sub.capacity
        self._dtype: np.dtype[Any] | None = sub.dtype
        self._start = sub.start_sequence
        # Mirrors of the native subscriber as of the last commit: other
        # threads read these, never the native counters, which run ahead
        # while the reader holds a message it has not committed yet.
        self._ring_pos = sub.position
        # Buffer: absolute index i (messages buffered so far) lives in slot
        # i % size. Consumers' cursors are absolute indices.
        self._head = 0
        if self._dtype is not None:
            self._buf: np.ndarray[Any, Any] = np.zeros(size, self._dtype)
            self._bytes = memoryview(self._buf.view(np.uint8))
            self._rows: list[memoryview | None] = [None] * size
            self._raw: list[bytes] = []
        else:
            self._raw = [b""] * size
        # Ring sequences of buffered messages, as the start of each run of
        # consecutive sequences: message i has seq
        # brk_seq[j] + (i - brk_idx[j]) for the last brk_idx[j] <= i.
        self._brk_idx = [0]
        self._brk_seq = [self._start]
        self._tail_seq = self._start  # sequence the next buffered message has if none is lost
        self._discarded = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiting = 0  # threads in self._cond.wait
        self._wake_room = max(1, min(size // 8, 512))  # see _made_room
        self._reading = False  # a thread reads the ring with the lock released
        self._closed = False
        self._mode, self._gated_from = self._read_mode(sub, dir)
        self._consumers = {n: GroupConsumer(self, n) for n in names}
        self._order = tuple(self._consumers.values())

    @staticmethod
    def _read_mode(sub: Subscriber, dir: StrPath | None) -> tuple[str, int]:
        """How this ring can be read in batches without losing track of
        sequences, and from which sequence on.

        * Bounded single-producer ring: the publisher never overwrites a
          message at or after this subscriber's (mirrored) position, so
          nothing is skipped mid-batch; but messages before the cursor seen
          at attach (``start="oldest"`` or a sequence) may still be
          overwritten by a stretch the publisher began before it saw the new
          subscriber, so those are read one at a time.
        * Lossy single-producer ring: a lap can happen on any row of a batch;
          batches shrink as the group nears the lap point (see ``_fill``).
        * Multi-producer rings: a dead producer's slot is skipped wherever
          it is met, at any lag, so every message is read on its own.

        The mode comes from the ring header (``ring_info``); when that cannot
        be read, or does not show this subscriber (the name now names another
        ring file), the group falls back to one message at a time.
        """
        try:
            info = ring_info(sub.name, dir)
        except RingError:
            return _SINGLE, 0
        if info.get("producers") != "one":
            return _SINGLE, 0
        if not info.get("bounded"):
            return _LOSSY, 0
        position = sub.position
        mine = any(
            s.get("pid") == os.getpid()
            and s.get("position") == position
            and s.get("state") == "active"
            for s in info.get("subscribers", ())
        )
        if not mine:
            return _SINGLE, 0
        return _GATED, position + sub.lag

    # -- public view of the group --------------------------------------------

    @property
    def name(self) -> str:
        """The ring's name."""
        return self._name

    @property
    def dtype(self) -> np.dtype[Any] | None:
        """numpy dtype of the records, or None for a raw bytes ring."""
        return self._dtype

    @property
    def consumers(self) -> tuple[str, ...]:
        """Names of the consumers, in the order given."""
        return tuple(self._consumers)

    @property
    def buffer(self) -> int:
        """Most messages held for consumers (ahead of the slowest one)."""
        return self._size

    @property
    def buffered(self) -> int:
        """Messages read from the ring that some consumer has not read yet."""
        with self._lock:
            return self._head - self._slowest()

    @property
    def start_sequence(self) -> int:
        """Sequence the group (and every consumer) started at."""
        return self._start

    @property
    def received(self) -> int:
        """Messages read from the ring into the buffer (each message once,
        however many consumers read it)."""
        return self._head

    @property
    def lost(self) -> int:
        """Messages no consumer will ever see: lapped by the publisher,
        skipped with a dead producer, or dropped by the group (see
        :meth:`_fill`). ``received + lost == position - start_sequence``."""
        with self._lock:
            return self._ring_pos - self._start - self._head

    @property
    def position(self) -> int:
        """Sequence of the next message the group reads from the ring."""
        return self._ring_pos

    @property
    def lag(self) -> int:
        """Messages published that the group has not read from the ring yet."""
        with self._lock:
            return max(0, self._cursor() - self._ring_pos)

    @property
    def closed(self) -> bool:
        return self._closed

    def consumer(self, name: str) -> GroupConsumer:
        """The consumer called ``name``."""
        if not isinstance(name, str):
            raise UnknownConsumer(
                f"consumers are named by strings, got {name!r}; names: {list(self._consumers)}"
            )
        try:
            return self._consumers[name]
        except KeyError:
            raise UnknownConsumer(
                f"ring {self._name!r} group has no consumer {name!r}; its consumers are "
                f"{list(self._consumers)} (fixed when the group is created)"
            ) from None

    __getitem__ = consumer

    def __contains__(self, name: object) -> bool:
        return name in self._consumers

    def __len__(self) -> int:
        return len(self._consumers)

    def close(self) -> None:
        """Detach from the ring (frees the subscriber record). Idempotent.
        Consumers blocked in another thread raise :class:`RingClosed` shortly
        after; counters stay readable."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._sub.close()
            self._cond.notify_all()

    def __enter__(self) -> SubscriberGroup:
        return self

    def __exit__(self, *exc_info: object) -> bool:
        self.close()
        return False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"position={self._ring_pos}"
        return (
            f"<ringcast.SubscriberGroup {self._name!r} consumers={list(self._consumers)} "
            f"{state} received={self._head}>"
        )

    # -- internals (called with self._lock held unless said otherwise) ---------

    def _slowest(self) -> int:
        return min(c._idx for c in self._order)

    def _space(self, slowest: int | None = None) -> int:
        if slowest is None:
            slowest = self._slowest()
        return self._size - (self._head - slowest)

    def _cursor(self) -> int:
        """Messages published so far, as the native subscriber sees them now."""
        if self._closed:
            raise RingClosed(f"the subscriber group of ring {self._name!r} is closed")
        return self._sub.position + self._sub.lag

    def _seq_at(self, idx: int) -> int:
        """Ring sequence of buffered message ``idx`` (absolute index), or of
        the next message the group will buffer when ``idx == head``."""
        if idx >= self._head:
            return self._ring_pos
        j = bisect.bisect_right(self._brk_idx, idx) - 1
        return self._brk_seq[j] + (idx - self._brk_idx[j])

    def _row(self, slot: int) -> memoryview:
        """Writable bytes of buffer slot ``slot`` (typed rings), made once."""
        row = self._rows[slot]
        if row is None:
            size = self._buf.itemsize
            row = self._rows[slot] = self._bytes[slot * size : (slot + 1) * size]
        return row

    def _notify(self) -> None:
        if self._waiting:
            self._cond.notify_all()

    def _check_open(self) -> None:
        if self._closed:
            raise RingClosed(
                f"the subscriber group of ring {self._name!r} is closed; create a new group"
            )

    def _append(self, seq: int) -> None:
        """Records that the next buffered message (index head) has ``seq``."""
        if seq != self._tail_seq:
            self._brk_idx.append(self._head)
            self._brk_seq.append(seq)
        self._tail_seq = seq + 1

    def _prune(self, slowest: int) -> None:
        """Forgets sequence runs every consumer has passed (keeps the one the
        slowest consumer is in)."""
        j = bisect.bisect_right(self._brk_idx, slowest) - 1
        if j > 0:
            del self._brk_idx[:j]
            del self._brk_seq[:j]

    def _fill(self) -> bool:
        """Reads what the ring has now into free buffer space, without
        waiting; returns whether anything changed (messages buffered, or the
        ring position moved past lost messages). Caller: lock held, nobody
        reading.

        Batches are exact when the group's position moved by exactly the
        number of messages they delivered. When a batch delivered messages
        *and* skipped some, the skipped ones may sit anywhere between them.
        Batches are sized so that this practically cannot happen (see the
        lossy case below); it still can on a lossy ring when this thread is
        descheduled mid-batch while the publisher writes the rest of a lap,
        or on a bounded ring in the instant of being evicted. Then the group
        drops the whole batch and counts it lost: wrong sequences would make
        every consumer's ``lost`` and ``position`` lie, a few more lost
        messages on a ring already lapping the group do not.
        """
        slowest = self._slowest()
        space = self._space(slowest)
        if space <= 0:
            return False
        self._prune(slowest)
        slot = self._head % self._size
        room = min(space, self._size - slot)  # contiguous free slots
        p0 = self._ring_pos
        sub = self._sub
        if self._mode == _GATED and p0 >= self._gated_from:
            batch = True
        elif self._mode == _LOSSY:
            # A lap at the k-th message of a batch needs the publisher to
            # write (capacity - lag) + k messages while this thread copies k.
            # Batches of at most a quarter of the distance to the lap point
            # leave it needing to be over 3 times faster than the copy (it
            # is not: both are a memcpy plus stamps) unless this thread is
            # descheduled mid-batch. Closer than 8 messages to the lap, or
            # past it, messages are read one at a time.
            safe = (self._capacity - sub.lag) // 4
            batch = safe >= 2
            if batch:
                room = min(room, safe)
        else:
            batch = False
            if self._mode == _GATED:
                room = min(room, self._gated_from - p0)
        if not batch or room == 1:
            return self._fill_singly(slot, room)
        try:
            if self._dtype is not None:
                n = sub.recv_batch_into(self._buf[slot : slot + room], timeout=0)
            else:
                got = sub.recv_batch(room, timeout=0)
                n = len(got)
                self._raw[slot : slot + n] = got
        except RingClosed:
            n = 0  # the stream ended; the caller looks at `ended`
        p1 = sub.position
        if n and p1 - p0 != n:
            self._discarded += n
            n = 0
        if n:
            self._append(p0)
            self._tail_seq = p0 + n
            self._head += n
        self._ring_pos = p1
        if n or p1 != p0:
            self._notify()
            return True
        return False

    def _fill_singly(self, slot: int, room: int) -> bool:
        """Reads up to ``room`` messages one at a time into slots ``slot``...,
        learning each one's sequence from the position after it."""
        sub = self._sub
        p0 = self._ring_pos
        h0 = head = self._head
        tail = self._tail_seq
        brk_idx, brk_seq = self._brk_idx, self._brk_seq
        try:
            for i in range(slot, slot + room):
                if self._dtype is not None:
                    if sub.try_recv_into(self._rows[i] or self._row(i)) is None:
                        break
                else:
                    msg = sub.try_recv()
                    if msg is None:
                        break
                    self._raw[i] = msg  # type: ignore[assignment]
                seq = sub.position - 1
                if seq != tail:  # (as _append, inlined: this runs per message)
                    brk_idx.append(head)
                    brk_seq.append(seq)
                tail = seq + 1
                head += 1
        finally:
            self._head, self._tail_seq = head, tail
            if not sub.closed:
                self._ring_pos = sub.position
        if self._head != h0 or self._ring_pos != p0:
            self._notify()
            return True
        return False

    def _read_blocking(self, timeout: float | None) -> None:
        """Waits up to ``timeout`` for one message and buffers it. Caller:
        lock held and ``self._reading`` set; the lock is released during the
        wait (the buffer slot written is free and only the reader writes, so
        no one else touches it meanwhile)."""
        slot = self._head % self._size
        sub = self._sub
        got = None
        self._lock.release()
        try:
            if self._dtype is not None:
                sub.recv_into(self._row(slot), timeout=timeout)
            else:
                self._raw[slot] = sub.recv(timeout=timeout)  # type: ignore[assignment]
            got = True
        except (Timeout, RingClosed):
            pass  # the caller's loop sorts out deadline, end of stream, close
        finally:
            self._lock.acquire()
            self._reading = False
            if not self._closed:
                pos = sub.position
                if got:
                    self._append(pos - 1)
                    self._head += 1
                self._ring_pos = pos
            self._notify()

    def _receive(
        self, c: GroupConsumer, want: int | None, deadline: float | None, wait: bool
    ) -> Any:
        """Messages for consumer ``c``: one message when ``want`` is None, a
        batch of up to ``want`` (array or list), or, for ``want == 0``, just
        True once ``c`` has a message buffered. None when nothing came by
        ``deadline``, or at once when not ``wait``. When waiting, raises
        RingClosed once the stream ended (the publisher closed the ring and
        ``c`` read everything); always when the group is closed.

        Caller: holds ``c._lock`` (not the group's lock).
        """
        avail = self._head - c._idx
        if avail and (not want or avail >= want) and not self._closed:
            # Fast path, without the group's lock: buffered messages are
            # written before ``_head`` moves past them and stay put until
            # every consumer, ``c`` included, has read them. Taking the
            # shared lock for every message would make consumer threads hand
            # it (and the GIL with it) to each other at every message.
            return self._deliver(c, want, locked=False) if want != 0 else True
        with self._lock:
            while True:
                self._check_open()
                avail = self._head - c._idx
                if avail and want and avail < want and not self._reading:
                    try:
                        self._fill()  # top a batch up with what the ring has now
                    except RingError:
                        pass  # (raised again by the read that finds nothing buffered)
                    avail = self._head - c._idx
                if avail:
                    return self._deliver(c, want, locked=True) if want != 0 else True
                if not self._reading:
                    if self._fill():
                        continue
                    if not wait:
                        return None
                    if self._space() > 0 and self._sub.ended:
                        raise RingClosed(
                            f"the publisher of ring {self._name!r} closed it and consumer "
                            f"{c._name!r} has read every message"
                        )
                elif not wait:
                    return None
                remaining = _remaining(deadline)
                if remaining is not None and remaining <= 0:
                    return None
                if not self._reading and self._space() > 0:
                    self._reading = True
                    self._read_blocking(remaining)
                    continue
                # Someone else reads the ring, or the buffer is full and
                # waits for the slowest consumer: either one notifies. The
                # count goes up before the last look, so that a consumer
                # making room without the lock either is seen here or sees
                # the count (and notifies).
                self._waiting += 1
                try:
                    if self._reading or self._space() <= 0:
                        self._cond.wait(_POLL if remaining is None else min(remaining, _POLL))
                finally:
                    self._waiting -= 1

    def _deliver(self, c: GroupConsumer, want: int | None, locked: bool) -> Any:
        """Hands consumer ``c`` one message (``want`` None) or up to ``want``
        as a batch, and moves its cursor. Copies: a slot is reused once every
        consumer has passed it. ``locked``: the caller holds the group's lock."""
        idx = c._idx
        size = self._size
        slot = idx % size
        dt = self._dtype
        # Typed copies go through bytes: numpy copies structured records
        # field by field (ndarray.copy, np.void.copy: ~1.5 us for one record,
        # ~7x a memcpy for a batch), a bytearray is one memcpy and numpy
        # records over it are as writable as any.
        if want is None:
            n = 1
            if dt is not None:
                out: Any = np.frombuffer(bytearray(self._rows[slot] or self._row(slot)), dt)[0]
            else:
                out = self._raw[slot]
        else:
            n = min(want, self._head - idx)
            end = slot + n
            if dt is not None:
                item = dt.itemsize
                if end <= size:
                    data = bytearray(self._bytes[slot * item : end * item])
                else:
                    data = bytearray(self._bytes[slot * item :])
                    data += self._bytes[: (end - size) * item]
                out = np.frombuffer(data, dt)
            elif end <= size:
                out = self._raw[slot:end]
            else:
                out = self._raw[slot:] + self._raw[: end - size]
        c._idx = idx + n
        if self._waiting:
            self._made_room(idx, locked)
        return out

    def _made_room(self, old_idx: int, locked: bool) -> None:
        """A consumer moved on from ``old_idx`` while threads wait: wake them
        if that freed enough buffer space for the group to read a stretch.
        Waking a consumer waiting for room at every single message the
        slowest one takes would have it read one message per wake-up, a
        thread switch each; below the threshold waiters find the room at
        their next poll."""
        slowest = self._slowest()
        before = self._space(min(old_idx, slowest))
        if before < self._wake_room <= self._space(slowest):
            if locked:
                self._cond.notify_all()
            else:
                with self._lock:
                    self._cond.notify_all()


class GroupConsumer:
    """One consumer of a :class:`SubscriberGroup`: reads every message of the
    group's stream in order, at its own pace. Obtain with ``group["name"]``.

    ``received + lost == position - start_sequence`` holds at every moment;
    ``lost`` counts the messages this consumer will never see before the one
    it reads next (the same messages for every consumer of the group).

    Each consumer is meant to be read by one thread at a time (any thread);
    calls from several threads at once are serialised (``try_recv`` then
    returns None rather than wait for the other call).
    """

    __slots__ = ("_group", "_idx", "_lock", "_name")

    def __init__(self, group: SubscriberGroup, name: str) -> None:
        self._group = group
        self._name = name
        self._idx = 0  # messages this consumer has read (absolute buffer index)
        # Serialises this consumer's reads (its cursor moves without the
        # group's lock on the fast path); never contended by other consumers.
        self._lock = threading.Lock()

    def _call(self, want: int | None, deadline: float | None, wait: bool) -> Any:
        """``group._receive`` holding this consumer's lock; None when the lock
        is busy past the deadline (at once when not ``wait``)."""
        if not wait:
            got = self._lock.acquire(blocking=False)
        else:
            remaining = _remaining(deadline)
            got = self._lock.acquire(timeout=-1 if remaining is None else max(0.0, remaining))
        if not got:
            return None
        try:
            return self._group._receive(self, want, deadline, wait)
        finally:
            self._lock.release()

    @property
    def name(self) -> str:
        return self._name

    @property
    def group(self) -> SubscriberGroup:
        return self._group

    @property
    def dtype(self) -> np.dtype[Any] | None:
        return self._group._dtype

    @property
    def received(self) -> int:
        """Messages this consumer has read."""
        return self._idx

    @property
    def position(self) -> int:
        """Ring sequence of the next message this consumer reads."""
        g = self._group
        with g._lock:
            return g._seq_at(self._idx)

    @property
    def lost(self) -> int:
        """Messages lost before :attr:`position` (lapped, or dropped by the group)."""
        g = self._group
        with g._lock:
            idx = self._idx
            return g._seq_at(idx) - g._start - idx

    @property
    def lag(self) -> int:
        """Messages published that this consumer has not read yet."""
        g = self._group
        with g._lock:
            return max(0, g._cursor() - g._seq_at(self._idx))

    @property
    def buffered(self) -> int:
        """Messages in the group's buffer that this consumer has not read yet."""
        return self._group._head - self._idx

    @property
    def ended(self) -> bool:
        """True once the publisher closed the ring and this consumer has read
        everything."""
        g = self._group
        with g._lock:
            g._check_open()
            return self._idx == g._head and not g._reading and g._sub.ended

    def _next_buffered(self) -> Any:
        """The next message if it is buffered and this consumer's lock is
        free, else None: the per-message fast path of ``recv``/``try_recv``
        in as few Python calls as possible."""
        g = self._group
        if self._idx < g._head and not g._closed and self._lock.acquire(False):
            try:
                if self._idx < g._head:
                    return g._deliver(self, None, locked=False)
            finally:
                self._lock.release()
        return None

    def try_recv(self) -> Any:
        """The next message (numpy record, or bytes for raw rings), or None if
        none is waiting. Never blocks (also None while another thread is
        waiting on the ring for the group)."""
        msg = self._next_buffered()
        if msg is None:
            msg = self._call(None, None, False)
        return msg

    def recv(self, timeout: float | None = None) -> Any:
        """The next message, waiting up to ``timeout`` seconds (None:
        forever). Raises :class:`Timeout`, or :class:`RingClosed` once the
        publisher closed the ring and this consumer has read everything."""
        msg = self._next_buffered()
        if msg is not None:
            return msg
        msg = self._call(None, _deadline(timeout), True)
        if msg is None:
            raise Timeout(f"no message for consumer {self._name!r} within {timeout}s")
        return msg

    def recv_batch(self, max_n: int, timeout: float | None = 0.0) -> Any:
        """Up to ``max_n`` messages: waits up to ``timeout`` seconds (default 0:
        do not wait; None: forever) for the first, then takes what is there.
        A numpy array of the ring's dtype, or a list of bytes for raw rings;
        empty at the deadline. Raises :class:`RingClosed` once the stream has
        ended for this consumer."""
        _check_int("max_n", max_n, 1, 2**62, "a number of messages >= 1")
        got = self._call(int(max_n), _deadline(timeout), True)
        if got is None:
            return [] if self._group._dtype is None else np.empty(0, self._group._dtype)
        return got

    def __iter__(self) -> GroupConsumer:
        return self

    def __next__(self) -> Any:
        try:
            return self.recv()
        except RingClosed:
            raise StopIteration from None

    # asyncio (and uvloop): the waiting happens in an executor thread, in
    # slices; a slice never takes a message, it only waits until this
    # consumer has one buffered, so cancelling the coroutine loses nothing.
    # The event loop's own attempts never wait, not even for this
    # consumer's lock.

    async def _recv_async(self, want: int | None, timeout: float | None) -> Any:
        deadline = _deadline(timeout)
        while True:
            got = self._call(want, time.monotonic(), True)  # (waits for nothing)
            if got is not None and (want is None or len(got)):
                return got
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                raise Timeout(f"no message for consumer {self._name!r} within {timeout}s")
            slice_ = _ASYNC_SLICE if remaining is None else min(remaining, _ASYNC_SLICE)
            await asyncio.to_thread(self._call, 0, time.monotonic() + slice_, True)

    async def recv_async(self, timeout: float | None = None) -> Any:
        """The next message, awaiting it up to ``timeout`` seconds (None:
        forever). Raises :class:`Timeout`, or :class:`RingClosed` at the end."""
        return await self._recv_async(None, timeout)

    async def recv_batch_async(self, max_n: int, timeout: float | None = None) -> Any:
        """Up to ``max_n`` messages, awaiting the first up to ``timeout``
        seconds (None: forever); then everything already there."""
        _check_int("max_n", max_n, 1, 2**62, "a number of messages >= 1")
        return await self._recv_async(int(max_n), timeout)

    def __aiter__(self) -> GroupConsumer:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.recv_async()
        except RingClosed:
            raise StopAsyncIteration from None

    def __repr__(self) -> str:
        return (
            f"<ringcast.GroupConsumer {self._name!r} of ring {self._group._name!r} "
            f"received={self._idx}>"
        )
