"""The public Publisher and Subscriber classes.

They subclass the native classes of ``ringcast._native``: the hot paths
(``publish``, ``try_recv``, ``recv_into``, ``recv_batch_into``, ...) are the
native methods themselves, one call with no Python frame in between. This
module adds only what runs once: argument handling of ``create`` and
``attach``, and the numpy dtype stored in the ring header.

Each argument is checked once. Here: what only Python sees (the dtype, and
that flags are bools, counts are ints, ``wait`` is a WaitStrategy). The
native layer: what it converts into core values (names such as
``producers="many"``, seconds, ``start``) and combinations the core's options
cannot hold. The core: every range and rule (capacity, slot size, table
sizes, watermark, mode bits, names), with the messages the errors carry.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import numpy as np

from . import _native, _schema
from ._memory import MemoryReport
from .errors import HugePagesWarning, InvalidArgument, RingClosed, Timeout

__all__ = [
    "Publisher",
    "Subscriber",
    "WaitStrategy",
    "default_dir",
    "list_rings",
    "trust",
    "trusted",
]

WaitStrategy = _native.WaitStrategy
T = TypeVar("T")

StrPath = str | os.PathLike[str]

# Widths of the native integer arguments: a value that fits is passed on,
# and the core decides whether it is in range.
_U32 = 2**32 - 1
_U64 = 2**64 - 1


def _dir_arg(dir: StrPath | None) -> str | None:
    return None if dir is None else os.fspath(dir)


def _check_int(name: str, value: Any, low: int, high: int, what: str = "") -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or not low <= value <= high
    ):
        what = what or f"an integer between {low} and {high}"
        raise InvalidArgument(f"{name} must be {what}, got {value!r}")


def _deadline(timeout: Any) -> float | None:
    """``time.monotonic()`` deadline for ``timeout`` seconds (None: none)."""
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float | np.integer | np.floating)
        or math.isnan(timeout)
        or timeout < 0
    ):
        raise InvalidArgument(
            f"timeout must be None (wait forever) or a number of seconds >= 0, got {timeout!r}"
        )
    if math.isinf(timeout) or timeout > 1e9:
        return None
    return time.monotonic() + float(timeout)


def _check_cpu(name: str, cpu: Any) -> None:
    if cpu is not None:
        _check_int(name, cpu, 0, 2**31 - 1, "a CPU number >= 0 (see os.cpu_count())")


def _check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool: flags are never guessed from other values
    (``bounded="no"`` would otherwise be true)."""
    if not isinstance(value, bool | np.bool_):
        raise InvalidArgument(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_end_memory(lock_memory: Any, prefault: Any, pin_cpu: Any) -> None:
    """Checks the memory options every end (publisher or subscriber) takes."""
    _check_bool("lock_memory", lock_memory)
    _check_bool("prefault", prefault)
    _check_cpu("pin_cpu", pin_cpu)


_SIZE_UNITS = {"": 0, "K": 10, "M": 20, "G": 30}


def _page_size(value: Any) -> int | None:
    """A huge page size: bytes, or text such as "2M" or "1G"."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().upper().removesuffix("IB").removesuffix("B")
        unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
        digits = text[: len(text) - len(unit)]
        if digits.isdigit():
            return int(digits) << _SIZE_UNITS[unit]
    elif isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0:
        return int(value)
    raise InvalidArgument(
        f'huge_page_size must be a size in bytes or text such as "2M" or "1G", got {value!r}'
    )


def _check_wait(wait: Any) -> None:
    if wait is not None and not isinstance(wait, WaitStrategy):
        raise InvalidArgument(
            f"wait must be a ringcast.WaitStrategy (e.g. WaitStrategy.park()), got {wait!r}"
        )


E = TypeVar("E", "Publisher", "Subscriber")


def _adopt_schema(end: E, name: str, dtype: Any) -> E:
    """Gives a publisher or subscriber that opened an existing ring the
    ring's dtype, after checking it against the ``dtype`` the caller expects;
    on any error the end is closed before the error propagates."""
    try:
        found = _schema.decode(end.schema, repr(name))
        if dtype is not None:
            _schema.check_expected(found, dtype, repr(name))
    except BaseException:
        end.close()
        raise
    if found is not None:
        end._set_dtype(found)
    return end


class _RingEnd:
    """What publishers and subscribers share on the Python side."""

    __slots__ = ()

    def __reduce__(self) -> Any:
        raise TypeError(
            f"a ringcast.{type(self).__name__} cannot be pickled or sent to another process "
            "(it is this process's end of the ring): pass the ring's name and open it there "
            "by name (Subscriber.attach(name), Publisher.attach(name))"
        )

    @property
    def memory(self) -> MemoryReport:
        """Where the ring's memory is (page size, huge pages, NUMA node of its
        pages) and what this end did to it (locked, prefaulted, pinned)."""
        return MemoryReport._from_native(self._memory())  # type: ignore[attr-defined]


class _AsyncMessages:
    """``async for msg in reader``: messages until the ring closes. For
    classes with ``recv_async()``."""

    __slots__ = ()

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.recv_async()  # type: ignore[attr-defined]
        except RingClosed:
            raise StopAsyncIteration from None


class Publisher(_native.Publisher, _RingEnd):
    """A writer of a ring. Create the ring with :meth:`Publisher.create`; join
    a multi-producer ring (or take over a single-producer one whose publisher
    is gone) with :meth:`Publisher.attach`."""

    @classmethod
    def create(
        cls,
        name: str,
        *,
        capacity: int,
        slot_size: int | None = None,
        dtype: Any = None,
        dir: StrPath | None = None,
        mode: int = 0o600,
        exist_ok: bool = False,
        max_subscribers: int | None = None,
        bounded: bool = False,
        watermark: int | None = None,
        liveness_timeout: float = _native.DEFAULT_LIVENESS_TIMEOUT,
        producers: Literal["one", "many"] = "one",
        max_producers: int | None = None,
        claim_timeout: float = _native.DEFAULT_CLAIM_TIMEOUT,
        wait: WaitStrategy | None = None,
        huge_pages: Literal["off", "prefer", "require"] = "off",
        huge_page_size: int | str | None = None,
        huge_dir: StrPath | None = None,
        lock_memory: bool = False,
        prefault: bool = True,
        numa_node: int | None = None,
        numa_cpu: int | None = None,
        pin_cpu: int | None = None,
        timestamps: bool = False,
        heads_apart: bool = False,
    ) -> Publisher:
        """Create ring ``name`` (a file in ``dir``, default ``$RINGCAST_DIR`` or
        ``/dev/shm/ringcast``) and become its publisher.

        Give ``dtype`` (a numpy dtype, usually structured: every message is one
        record) or ``slot_size`` (raw bytes messages of up to that many bytes).
        ``capacity`` is the number of slots, a power of two. With
        ``exist_ok=True`` an existing ring of the same layout is taken over and
        its sequence continues (a publisher restarting after a crash); a ring
        with a live publisher is always refused with :class:`PublisherExists`.

        Modes, fixed at creation:

        * ``bounded=True``: the publisher never overwrites a message that a
          live subscriber has not read; it runs at most ``watermark``
          (default: ``capacity``) messages ahead of the slowest subscriber.
          :meth:`publish` then waits for room (``wait`` says how: spin, yield,
          park), :meth:`try_publish` raises :class:`RingFull`. A subscriber
          that dies, or stops reading for ``liveness_timeout`` seconds while
          the publisher waits on it, is evicted (see ``evictions``).
        * ``producers="many"``: any number (up to ``max_producers``, default
          16) of publishers in any processes, joined with
          :meth:`Publisher.attach`. Subscribers see every message in sequence
          order. A producer that dies between claiming a sequence and
          committing it costs that one message: after ``claim_timeout``
          seconds readers find its owner dead, skip it and count it in
          ``lost``. A live producer is never skipped, however slow.
        * ``timestamps=True``: every message carries its publish time (ns of
          ``time.monotonic_ns()``; 8 bytes per slot, one clock read per
          publish call). Subscribers read it as ``last_time`` and record
          latency histograms with :meth:`Subscriber.record_latency`;
          :meth:`publish_at` sets the time explicitly (the time a paced
          message was due: latency free of coordinated omission).
        * ``heads_apart=True``: keep the slots' heads (stamp and length, 16
          bytes each) in a table after the slots instead of at the front of
          each slot. Worth it where a head costs its slot a second cache line
          (49-64 bytes of record, 113-128, ...): a 64-byte stream then moves
          one line a message instead of two, about twice the throughput. Off
          by default: with the head in the slot a caught-up reader gets its
          message ~10 ns sooner. ``ring_info()["heads_apart"]`` says which a
          ring has.

        Memory (see :attr:`memory` for what took effect, ``ringcast info`` from
        any process):

        * ``huge_pages="require"``: the ring lives on huge pages (a file on a
          hugetlbfs mount, linked under its name so subscribers attach as to
          any ring), or :class:`HugePagesUnavailable` says what to configure
          (``vm.nr_hugepages``, the mount). ``"prefer"`` falls back to normal
          pages with a :class:`HugePagesWarning`. ``huge_page_size`` (``"2M"``,
          ``"1G"``; default 2 MiB, 1 GiB pages for rings of at least 1 GiB
          when the host has them) and ``huge_dir`` (a directory on hugetlbfs;
          default ``$RINGCAST_HUGE_DIR`` or ``ringcast/`` on the mount) refine it.
        * ``lock_memory=True``: ``mlock`` the ring in this process, or
          :class:`MemoryLockFailed` with the size needed and RLIMIT_MEMLOCK.
        * ``prefault`` (default True): fault every page in now, so the first
          messages pay no page faults.
        * ``numa_node=N`` or ``numa_cpu=C`` (the node of CPU C): bind the ring's
          pages to that node (:class:`NumaNodeUnavailable` if it does not exist).
        * ``pin_cpu=C``: pin the calling thread to CPU C first (as
          :func:`ringcast.pin_thread`), so its pages also land on C's node.
        """
        if (dtype is None) == (slot_size is None):
            raise InvalidArgument(
                "give dtype= (a numpy dtype, for typed records) or slot_size= (for raw "
                "bytes messages), exactly one of them"
            )
        dt = None
        schema = b""
        if dtype is not None:
            dt = _schema.check_dtype(dtype)
            slot_size = dt.itemsize
            schema = _schema.encode(dt)
        _check_int("capacity", capacity, 0, _U64)
        _check_int("slot_size", slot_size, 0, _U32)
        _check_int("mode", mode, 0, _U32, "permission bits such as 0o600")
        for arg, value, width in (
            ("max_subscribers", max_subscribers, _U32),
            ("watermark", watermark, _U64),
            ("max_producers", max_producers, _U32),
        ):
            if value is not None:
                _check_int(arg, value, 0, width)
        _check_wait(wait)
        _check_end_memory(lock_memory, prefault, pin_cpu)
        if numa_node is not None:
            _check_int("numa_node", numa_node, 0, 2**31 - 1, "a NUMA node number >= 0")
        _check_cpu("numa_cpu", numa_cpu)
        _check_bool("timestamps", timestamps)
        _check_bool("heads_apart", heads_apart)
        _check_bool("bounded", bounded)
        _check_bool("exist_ok", exist_ok)
        pub = cls(
            name,
            capacity=capacity,
            slot_size=slot_size,
            fixed_size=dt is not None,
            schema=schema,
            dir=_dir_arg(dir),
            mode=mode,
            exist_ok=bool(exist_ok),
            max_subscribers=max_subscribers,
            bounded=bool(bounded),
            watermark=watermark,
            liveness_timeout=liveness_timeout,
            producers=producers,
            max_producers=max_producers,
            claim_timeout=claim_timeout,
            wait=wait,
            huge_pages=huge_pages,
            huge_page_size=_page_size(huge_page_size),
            huge_dir=_dir_arg(huge_dir),
            lock_memory=bool(lock_memory),
            prefault=bool(prefault),
            numa_node=numa_node,
            numa_cpu=numa_cpu,
            pin_cpu=pin_cpu,
            timestamps=bool(timestamps),
            heads_apart=bool(heads_apart),
        )
        if dt is not None:
            pub._set_dtype(dt)
        fallback = pub.memory.huge_pages_fallback if huge_pages == "prefer" else None
        if fallback is not None:
            warnings.warn(
                f"ring {name!r} uses normal pages: {fallback}", HugePagesWarning, stacklevel=2
            )
        return pub

    @classmethod
    def attach(
        cls,
        name: str,
        *,
        dir: StrPath | None = None,
        dtype: Any = None,
        wait: WaitStrategy | None = None,
        lock_memory: bool = False,
        prefault: bool = False,
        pin_cpu: int | None = None,
    ) -> Publisher:
        """Open the existing ring ``name`` as a publisher: one more producer of
        a ``producers="many"`` ring, or the new publisher of a single-producer
        ring whose publisher is gone (:class:`PublisherExists` while it lives).
        The layout, dtype, modes and memory placement come from the ring;
        ``dtype``, when given, must match (else :class:`SchemaMismatch`).
        ``lock_memory``, ``prefault`` and ``pin_cpu`` act on this process as
        in :meth:`create`."""
        _check_wait(wait)
        _check_end_memory(lock_memory, prefault, pin_cpu)
        end = cls(
            name,
            dir=_dir_arg(dir),
            wait=wait,
            attach=True,
            lock_memory=lock_memory,
            prefault=prefault,
            pin_cpu=pin_cpu,
        )
        return _adopt_schema(end, name, dtype)


class Subscriber(_native.Subscriber, _RingEnd, _AsyncMessages):
    """One reader of a ring. Attach with :meth:`Subscriber.attach`."""

    @classmethod
    def attach(
        cls,
        name: str,
        *,
        dir: StrPath | None = None,
        start: Literal["latest", "oldest", "resume"] | int = "latest",
        dtype: Any = None,
        wait: WaitStrategy | None = None,
        lock_memory: bool = False,
        prefault: bool = False,
        pin_cpu: int | None = None,
        stage: str | None = None,
        after: Iterable[str] = (),
    ) -> Subscriber:
        """Attach to ring ``name``; its dtype and sizes come from the ring header.

        ``start="latest"`` reads messages published from now on, ``"oldest"``
        begins with the oldest message still in the ring, an integer begins at
        that sequence number (messages already overwritten count as lost),
        ``"resume"`` (stages only) where the last stage of that name stopped.

        Stages and gating (the Disruptor's dependency barrier, across
        processes): ``stage="b"`` names this subscriber a stage of the ring
        (names are unique per ring, else :class:`StageExists`) and publishes
        how far it has *processed* the stream: a message counts as processed
        once the stage asks for the next one, or calls :meth:`commit`.
        ``after=("b", "c")`` reads a message only once stages ``b`` and ``c``
        have both processed it; a stage that has not attached yet, or has
        died, holds it back at the progress it last published (see
        :meth:`upstream`). A gated subscriber waiting on its stages is never
        evicted from a bounded ring for it.
        ``dtype``, when given, must match the ring's (else :class:`SchemaMismatch`).
        ``wait`` says how blocking receives wait (default
        ``WaitStrategy.adaptive()``: spin, then yield, then park).
        ``pin_cpu=C`` pins the calling thread to CPU C, ``lock_memory=True``
        locks the ring in RAM in this process (:class:`MemoryLockFailed` when
        RLIMIT_MEMLOCK is too low), ``prefault=True`` faults every page in now.
        """
        if stage is not None and not isinstance(stage, str):
            raise InvalidArgument(f"stage must be a name (str) or None, got {stage!r}")
        after = [after] if isinstance(after, str) else list(after)
        if not all(isinstance(a, str) for a in after):
            raise InvalidArgument(f"after must be stage names (str), got {after!r}")
        _check_wait(wait)
        _check_end_memory(lock_memory, prefault, pin_cpu)
        end = cls(
            name,
            dir=_dir_arg(dir),
            start=start,
            wait=wait,
            lock_memory=lock_memory,
            prefault=prefault,
            pin_cpu=pin_cpu,
            stage=stage,
            after=after,
        )
        return _adopt_schema(end, name, dtype)

    # asyncio (and uvloop): the event loop watches a readiness file descriptor
    # that a helper thread signals when the next message can be read, so a
    # waiting coroutine costs no CPU and never blocks the loop.

    async def recv_async(self, timeout: float | None = None) -> Any:
        """The next message, awaiting it up to ``timeout`` seconds (None:
        forever). Raises :class:`Timeout`, or :class:`RingClosed` once the
        publisher closed the ring and everything has been read."""
        return await self._when_ready(self.try_recv, timeout)

    async def recv_batch_async(self, max_n: int, timeout: float | None = None) -> Any:
        """Up to ``max_n`` messages, awaiting the first up to ``timeout``
        seconds (None: forever); then everything already there."""

        def attempt() -> Any:
            batch = self.recv_batch(max_n, timeout=0)
            return batch if len(batch) else None

        return await self._when_ready(attempt, timeout)

    def close(self) -> None:
        """Detach from the ring and free the subscriber record. Idempotent.

        A coroutine awaiting this subscriber is woken and raises
        :class:`RingClosed`; the subscriber is released as it unwinds (so the
        event loop never watches a closed descriptor)."""
        waiting = self.__dict__.get("_async_wait")
        if waiting is not None:
            loop, ready = waiting
            self._close_requested = True
            loop.call_soon_threadsafe(_set_done, ready)
            return
        super().close()

    async def _when_ready(self, attempt: Callable[[], T | None], timeout: float | None) -> T:
        """Runs ``attempt`` until it returns something, awaiting readiness in between."""
        result = attempt()
        if result is not None:
            return result
        if self.__dict__.get("_async_wait") is not None:
            raise RuntimeError(
                f"another task is already awaiting subscriber {self.name!r}; attach one "
                "subscriber per task"
            )
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        fd = self._readiness_fd()
        while True:
            if self.ended:
                raise RingClosed(
                    f"the publisher of ring {self.name!r} closed it and every message has been read"
                )
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise Timeout(f"no message on ring {self.name!r} within {timeout}s")
            ready = loop.create_future()
            self._async_wait = (loop, ready)
            loop.add_reader(fd, _set_done, ready)
            try:
                self._arm_readiness()
                async with asyncio.timeout(remaining):
                    await ready
            except TimeoutError:
                # uvloop rounds timers to milliseconds and may fire a hair
                # early: the deadline check at the top of the loop decides.
                pass
            finally:
                loop.remove_reader(fd)
                self._async_wait = None
                if self.__dict__.pop("_close_requested", False):
                    super().close()
                if not self.closed:
                    self._clear_readiness()
            if self.closed:
                raise RingClosed(f"subscriber of ring {self.name!r} was closed while awaited")
            result = attempt()
            if result is not None:
                return result
            # Woken with nothing to read: the readiness thread also wakes us
            # when the publisher died (a lock test, so only asked now).
            self._check_publisher()  # PublisherDied, once per publisher


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def default_dir(dir: StrPath | None = None) -> str:
    """The ring directory in use: ``dir``, else ``$RINGCAST_DIR``, else ``/dev/shm/ringcast``."""
    return os.fspath(_native.resolve_dir(_dir_arg(dir)))


def list_rings(dir: StrPath | None = None) -> list[str]:
    """Names of the rings in the ring directory, sorted."""
    return _native.list_rings(_dir_arg(dir))


def trust(*who: str | int) -> None:
    """Trust the ring files and ring directories of these users and groups
    for the rest of this process, beyond its own user and root: user names or
    uids, ``"@group"`` names or gids (``RINGCAST_TRUST`` says the same,
    comma-separated). A ring owned by anyone else is refused with
    :class:`UntrustedRing`: in a shared ring directory any user may create a
    file under a ring's name."""
    if not who:
        raise InvalidArgument('trust() needs at least one user or "@group"')
    for one in who:
        if isinstance(one, bool) or not isinstance(one, str | int):
            raise InvalidArgument(f'trust() takes user names, uids or "@group" names, got {one!r}')
        _native.trust(str(one))


def trusted() -> dict[str, list[int]]:
    """The uids and gids trusted beyond this process's user and root
    (``RINGCAST_TRUST`` and :func:`trust`)."""
    users, groups = _native.trusted()
    return {"users": list(users), "groups": list(groups)}
