"""Exceptions raised by ringcast.

Every exception derives from :class:`RingError`; where a built-in exception
says the same thing (a missing file, a timeout, a bad value) the ringcast one
derives from it too, so ``except FileNotFoundError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "BridgeChannelError",
    "BridgeError",
    "BridgeNotConnected",
    "BridgeSchemaClash",
    "BufferTooSmall",
    "CpuUnavailable",
    "Evicted",
    "FeedError",
    "HugePagesUnavailable",
    "HugePagesWarning",
    "IncompatibleVersion",
    "InvalidArgument",
    "InvalidName",
    "JournalError",
    "JournalLocked",
    "JournalMismatch",
    "JournalNotFound",
    "MemoryLockFailed",
    "MessageTooLarge",
    "NumaNodeUnavailable",
    "ProducerTableFull",
    "PublisherDied",
    "PublisherExists",
    "RingClosed",
    "RingCorrupt",
    "RingError",
    "RingExists",
    "RingFull",
    "RingNotFound",
    "RingPermissionError",
    "RingWarning",
    "SchemaMismatch",
    "StageExists",
    "StageFailed",
    "SubscriberTableFull",
    "Timeout",
    "UnknownConsumer",
    "UntrustedRing",
    "UsedAfterFork",
]


class RingError(Exception):
    """Base class of every ringcast error."""


class InvalidName(RingError, ValueError):
    """The ring name is empty, too long, or has characters that are not allowed."""


class InvalidArgument(RingError, ValueError):
    """An argument is out of range (capacity, slot_size, dtype, timeout, ...)."""


class RingNotFound(RingError, FileNotFoundError):
    """No ring of that name exists in the ring directory."""


class RingExists(RingError, FileExistsError):
    """A ring of that name already exists (pass ``exist_ok=True`` to take it over)."""


class PublisherExists(RingError):
    """Another live process publishes into this single-producer ring."""


class SchemaMismatch(RingError, TypeError):
    """Messages, arrays or an existing ring do not have the expected layout or dtype."""


class MessageTooLarge(RingError, ValueError):
    """A message is larger than the ring's slot size."""


class BufferTooSmall(RingError, ValueError):
    """The buffer passed to receive into cannot hold the next message (nothing was consumed)."""


class RingCorrupt(RingError):
    """The ring file is truncated, damaged, or not a ringcast ring."""


class IncompatibleVersion(RingError):
    """The ring file was written by an incompatible version of ringcast."""


class RingPermissionError(RingError, PermissionError):
    """The operating system refused access to the ring file or directory."""


class UntrustedRing(RingPermissionError):
    """The ring file (or ring directory) belongs to a user this process does
    not trust: in a shared ring directory anyone may create a file under any
    ring name. The message names the owner and how to trust them
    (``RINGCAST_TRUST``, :func:`ringcast.trust`) or avoid them (a private
    ring directory)."""


class SubscriberTableFull(RingError):
    """Every subscriber record of the ring is held by a live subscriber."""


class ProducerTableFull(RingError):
    """Every producer record of the multi-producer ring is held by a live producer."""


class RingFull(RingError, BlockingIOError):
    """A bounded ring has no room: publishing now would overwrite a message a
    live subscriber has not read (``try_publish``)."""


class Evicted(RingError):
    """This subscriber was evicted from a bounded ring for holding its
    publishers back longer than the ring's ``liveness_timeout``."""


class RingClosed(RingError):
    """The publisher closed the ring and every message has been read, or the
    object itself was closed."""


class UsedAfterFork(RingError):
    """A publisher or subscriber was used in a ``fork()`` child of the process
    that opened it (as multiprocessing's "fork" start method hands them
    over): the child has no part in the ring. Open a new one in the child."""


class PublisherDied(RingError):
    """The ring's publisher (every producer of a ``producers="many"`` ring)
    died without closing it, and everything it published has been read.
    Raised once per publisher by blocking receives (``recv``, iteration,
    ``recv_async``, ``recv_batch`` with a timeout); receiving again waits for
    a publisher that takes the ring over (``exist_ok=True``), whose messages
    continue the stream. Not a :class:`RingClosed`: the stream did not end,
    its source failed."""


class Timeout(RingError, TimeoutError):
    """No message arrived before the timeout, or a bounded ring stayed full
    until a publish timeout."""


class HugePagesUnavailable(RingError, OSError):
    """A ring created with ``huge_pages="require"`` cannot have huge pages; the
    message says what to configure (``vm.nr_hugepages``, a hugetlbfs mount,
    ``RINGCAST_HUGE_DIR``)."""


class MemoryLockFailed(RingError, OSError):
    """``lock_memory=True`` could not lock the ring in RAM; the message gives the
    size needed and the current ``RLIMIT_MEMLOCK``."""


class CpuUnavailable(RingError, ValueError):
    """A thread cannot be pinned to (or a ring placed near) that CPU: it does not
    exist, is offline, or the process's cpuset does not allow it."""


class NumaNodeUnavailable(RingError, ValueError):
    """A ring cannot be placed on that NUMA node: the host has no such online node."""


class StageExists(RingError):
    """A live subscriber already holds that stage name on the ring (stage
    names are unique per ring, so that gating on them is unambiguous)."""


class StageFailed(RingError):
    """A stage of a :class:`ringcast.Pipeline` or :class:`ringcast.Diamond`
    raised or died; the message names the stage and carries its traceback
    (or the signal that killed it)."""

    def __init__(self, message: str, *, stage: str = "", traceback: str = "") -> None:
        super().__init__(message)
        self.stage = stage
        """Name of the stage that failed."""
        self.traceback = traceback
        """The stage's traceback text, or how its process ended."""


class UnknownConsumer(InvalidArgument, KeyError):
    """No consumer of that name in the :class:`ringcast.SubscriberGroup`. A
    ``KeyError`` too, so ``group[name]`` behaves like a mapping lookup."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""


class FeedError(RingError, OSError):
    """The market-data feed failed: an ITCH file that cannot be read or
    sent, a multicast group that cannot be joined, a socket error. The
    message names the file, group or address."""


class RingWarning(UserWarning):
    """Base class of ringcast's warnings."""


class HugePagesWarning(RingWarning):
    """A ring created with ``huge_pages="prefer"`` got normal pages; the message
    says why and what to configure."""


class JournalError(RingError):
    """A journal could not be written or read (a file system error says which file)."""


class JournalNotFound(JournalError, FileNotFoundError):
    """The directory holds no journal (no readable segment file)."""


class JournalLocked(JournalError):
    """Another recorder is writing the journal (it holds the directory's lock)."""


class JournalMismatch(JournalError, SchemaMismatch):
    """The journal records another ring, or one of another slot size or schema."""


class BridgeError(RingError):
    """A bridge across hosts failed: Aeron (its media driver, a publication
    or subscription) or the ring it carries. The message says which."""


class BridgeChannelError(BridgeError, ValueError):
    """An Aeron channel URI that is malformed or that Aeron refuses (an
    address that is not this host's, a port in use)."""


class BridgeNotConnected(BridgeError, TimeoutError):
    """No receiver connected to a sender (or nothing arrived at a receiver)
    within the time allowed: the endpoint is unreachable or not listening."""


class BridgeSchemaClash(BridgeError, SchemaMismatch):
    """The receiving ring exists with another shape than the source ring's
    (nothing was created or changed)."""
