"""Subscriber groups: one read of a ring serving several consumers in one process.

A process that hands the same stream to N components (a risk check, a PnL
book, a recorder...) could attach N subscribers, but each one is a record in
the ring's subscriber table (a bounded resource, scanned by bounded-ring
publishers on every gate check) and each copies every message out of the
shared ring. A :class:`SubscriberGroup` attaches ONE subscriber, reads the
ring once into a process-local buffer, and lets each named consumer advance
its own cursor through that buffer.

The buffer is bounded by the slowest consumer: the group reads from the
ring only into free space, ``space = buffer - (newest buffered - slowest
consumer)``. A slow consumer therefore holds the whole group back, which on a
bounded ring holds the publisher back (nothing is lost) and on a lossy ring
lets the publisher lap the group (every consumer loses the same messages).

Loss is exact: the group reads in batches that report the ring sequence of
every message (a lap, or a dead producer's slots, may be skipped between
any two), so each consumer's ``position`` and ``lost`` describe exactly the
messages it gets.

All of that is native (``crates/ringcast-core/src/subscribe/group.rs``,
bound in ``crates/ringcast-py/src/group.rs``): ``try_recv``, ``recv``,
``recv_batch`` and iteration are the native methods themselves. Consumers
may be used from different threads; a blocked consumer waits with the GIL
released, and one with messages buffered never waits behind it. This module
adds the arguments, the ring's dtype (from :meth:`Subscriber.attach`) and the
asyncio methods.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np

from . import _native
from ._api import _U64, StrPath, Subscriber, WaitStrategy, _AsyncMessages, _check_int, _deadline
from .errors import InvalidArgument, Timeout, UnknownConsumer

__all__ = ["GroupConsumer", "SubscriberGroup"]

MAX_BUFFER: int = _native.MAX_GROUP_BUFFER
"""Largest ``buffer`` (messages). Memory for it is reserved up front (``buffer``
times the ring's slot size), so a typo should not take the host's RAM."""

_ASYNC_SLICE = 0.1
"""Longest an executor thread waits on behalf of an awaiting coroutine. A
cancelled coroutine's thread finishes its slice on its own (it only waits,
it never takes a message, so nothing is lost); short slices keep the
executor, and ``asyncio.run``'s shutdown, from waiting long for it."""


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
        # An int here; the core checks the range (1 to MAX_BUFFER).
        _check_int(
            "buffer",
            buffer,
            0,
            _U64,
            f"a number of messages between 1 and {MAX_BUFFER} (default 4096)",
        )
        sub = Subscriber.attach(ring, dir=dir, start=start, dtype=dtype, wait=wait)
        try:
            # Takes the subscriber over, with the dtype it adopted.
            self._native = _native.SubscriberGroup(sub, list(names), int(buffer))
        except BaseException:
            sub.close()
            raise
        self._consumers = {n: GroupConsumer._in(self, n) for n in names}

    @property
    def name(self) -> str:
        """The ring's name."""
        return self._native.name

    @property
    def dtype(self) -> np.dtype[Any] | None:
        """numpy dtype of the records, or None for a raw bytes ring."""
        return self._native.dtype

    @property
    def consumers(self) -> tuple[str, ...]:
        """Names of the consumers, in the order given."""
        return tuple(self._consumers)

    @property
    def buffer(self) -> int:
        """Most messages held for consumers (ahead of the slowest one)."""
        return self._native.buffer

    @property
    def buffered(self) -> int:
        """Messages read from the ring that some consumer has not read yet."""
        return self._native.buffered

    @property
    def start_sequence(self) -> int:
        """Sequence the group (and every consumer) started at."""
        return self._native.start_sequence

    @property
    def received(self) -> int:
        """Messages read from the ring into the buffer (each message once,
        however many consumers read it)."""
        return self._native.received

    @property
    def lost(self) -> int:
        """Messages no consumer will ever see: lapped by the publisher, or
        skipped with a dead producer. ``received + lost == position -
        start_sequence``."""
        return self._native.lost

    @property
    def position(self) -> int:
        """Sequence of the next message the group reads from the ring."""
        return self._native.position

    @property
    def lag(self) -> int:
        """Messages published that the group has not read from the ring yet."""
        return self._native.lag

    @property
    def closed(self) -> bool:
        return self._native.closed

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
                f"ring {self.name!r} group has no consumer {name!r}; its consumers are "
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
        self._native.close()

    def __enter__(self) -> SubscriberGroup:
        return self

    def __exit__(self, *exc_info: object) -> bool:
        self.close()
        return False

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"position={self.position}"
        return (
            f"<ringcast.SubscriberGroup {self.name!r} consumers={list(self._consumers)} "
            f"{state} received={self.received}>"
        )


class GroupConsumer(_native.GroupConsumer, _AsyncMessages):
    """One consumer of a :class:`SubscriberGroup`: reads every message of the
    group's stream in order, at its own pace. Obtain with ``group["name"]``.

    ``received + lost == position - start_sequence`` holds at every moment;
    ``lost`` counts the messages this consumer will never see before the one
    it reads next (the same messages for every consumer of the group).

    ``try_recv()``, ``recv(timeout=None)`` (raises :class:`Timeout`, or
    :class:`RingClosed` once the publisher closed the ring and this consumer
    has read everything), ``recv_batch(max_n, timeout=0.0)`` (a numpy array
    of the ring's dtype, or a list of bytes for raw rings; empty at the
    deadline) and iteration are native. Each consumer is meant to be read
    by one thread at a time (any thread); calls from several threads at
    once are serialised.
    """

    __slots__ = ("_group",)

    @classmethod
    def _in(cls, group: SubscriberGroup, name: str) -> GroupConsumer:
        c = cls(group._native, name)
        c._group = group
        return c

    @property
    def group(self) -> SubscriberGroup:
        return self._group

    @property
    def dtype(self) -> np.dtype[Any] | None:
        return self._group.dtype

    # asyncio (and uvloop): the waiting happens in an executor thread, in
    # slices; a slice never takes a message, it only waits until this
    # consumer has one buffered, so cancelling the coroutine loses nothing.
    # The event loop's own attempts never wait.

    async def _recv_async(self, max_n: int | None, timeout: float | None) -> Any:
        deadline = _deadline(timeout)
        while True:
            got = self._poll(max_n)  # RingClosed once the stream has ended
            if got is not None:
                return got
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                raise Timeout(f"no message for consumer {self.name!r} within {timeout}s")
            slice_ = _ASYNC_SLICE if remaining is None else min(remaining, _ASYNC_SLICE)
            await asyncio.to_thread(self._wait_ready, slice_)

    async def recv_async(self, timeout: float | None = None) -> Any:
        """The next message, awaiting it up to ``timeout`` seconds (None:
        forever). Raises :class:`Timeout`, or :class:`RingClosed` at the end."""
        return await self._recv_async(None, timeout)

    async def recv_batch_async(self, max_n: int, timeout: float | None = None) -> Any:
        """Up to ``max_n`` messages, awaiting the first up to ``timeout``
        seconds (None: forever); then everything already there."""
        # max_n is checked by the first (native) attempt, before any wait.
        return await self._recv_async(max_n, timeout)

    def __repr__(self) -> str:
        return (
            f"<ringcast.GroupConsumer {self.name!r} of ring {self._group.name!r} "
            f"received={self.received}>"
        )
