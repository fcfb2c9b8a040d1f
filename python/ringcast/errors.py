"""Exceptions raised by ringcast.

Every exception derives from :class:`RingError`; where a built-in exception
says the same thing (a missing file, a timeout, a bad value) the ringcast one
derives from it too, so ``except FileNotFoundError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "BufferTooSmall",
    "Evicted",
    "IncompatibleVersion",
    "InvalidArgument",
    "InvalidName",
    "MessageTooLarge",
    "ProducerTableFull",
    "PublisherExists",
    "RingClosed",
    "RingCorrupt",
    "RingError",
    "RingExists",
    "RingFull",
    "RingNotFound",
    "RingPermissionError",
    "SchemaMismatch",
    "SubscriberTableFull",
    "Timeout",
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


class Timeout(RingError, TimeoutError):
    """No message arrived before the timeout, or a bounded ring stayed full
    until a publish timeout."""
