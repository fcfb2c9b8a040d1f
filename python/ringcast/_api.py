"""The public Publisher and Subscriber classes.

They subclass the native classes of ``ringcast._native``: the hot paths
(``publish``, ``try_recv``, ``recv_into``, ``recv_batch_into``, ...) are the
native methods themselves, one call with no Python frame in between. This
module adds only what runs once: argument handling of ``create`` and
``attach``, and the numpy dtype stored in the ring header.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np

from . import _native, _schema
from .errors import InvalidArgument

__all__ = ["Publisher", "Subscriber", "default_dir", "list_rings"]

StrPath = str | os.PathLike[str]


def _dir_arg(dir: StrPath | None) -> str | None:
    return None if dir is None else os.fspath(dir)


class Publisher(_native.Publisher):
    """The single writer of a ring. Create one with :meth:`Publisher.create`."""

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
    ) -> Publisher:
        """Create ring ``name`` (a file in ``dir``, default ``$RINGCAST_DIR`` or
        ``/dev/shm/ringcast``) and become its only publisher.

        Give ``dtype`` (a numpy dtype, usually structured: every message is one
        record) or ``slot_size`` (raw bytes messages of up to that many bytes).
        ``capacity`` is the number of slots, a power of two. With
        ``exist_ok=True`` an existing ring of the same layout is taken over and
        its sequence continues (a publisher restarting after a crash); a ring
        with a live publisher is always refused with :class:`PublisherExists`.
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
        for arg, value in (("capacity", capacity), ("slot_size", slot_size)):
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 0:
                raise InvalidArgument(f"{arg} must be a non-negative integer, got {value!r}")
        if max_subscribers is not None and not 0 < max_subscribers <= 4096:
            raise InvalidArgument(
                f"max_subscribers must be between 1 and 4096, got {max_subscribers!r}"
            )
        if not 0 <= mode <= 0o777:
            raise InvalidArgument(f"mode must be permission bits such as 0o600, got {mode:#o}")
        if slot_size is not None and slot_size >= 2**32:
            raise InvalidArgument(f"slot_size {slot_size} is out of range (at most 16 MiB)")
        pub = cls(
            name,
            capacity=capacity,
            slot_size=slot_size,
            fixed_size=dt is not None,
            schema=schema,
            dir=_dir_arg(dir),
            mode=mode,
            exist_ok=exist_ok,
            max_subscribers=max_subscribers,
        )
        if dt is not None:
            pub._set_dtype(dt)
        return pub


class Subscriber(_native.Subscriber):
    """One reader of a ring. Attach with :meth:`Subscriber.attach`."""

    @classmethod
    def attach(
        cls,
        name: str,
        *,
        dir: StrPath | None = None,
        start: Literal["latest", "oldest"] | int = "latest",
        dtype: Any = None,
    ) -> Subscriber:
        """Attach to ring ``name``; its dtype and sizes come from the ring header.

        ``start="latest"`` reads messages published from now on, ``"oldest"``
        begins with the oldest message still in the ring, an integer begins at
        that sequence number (messages already overwritten count as lost).
        ``dtype``, when given, must match the ring's (else :class:`SchemaMismatch`).
        """
        if isinstance(start, bool) or (isinstance(start, int | np.integer) and start < 0):
            raise InvalidArgument(
                f'start must be "latest", "oldest" or a sequence number >= 0, got {start!r}'
            )
        sub = cls(name, dir=_dir_arg(dir), start=start)
        try:
            found = _schema.decode(sub.schema, repr(name))
            if dtype is not None:
                _schema.check_expected(found, dtype, repr(name))
        except BaseException:
            sub.close()
            raise
        if found is not None:
            sub._set_dtype(found)
        return sub


def default_dir(dir: StrPath | None = None) -> str:
    """The ring directory in use: ``dir``, else ``$RINGCAST_DIR``, else ``/dev/shm/ringcast``."""
    return os.fspath(_native.resolve_dir(_dir_arg(dir)))


def list_rings(dir: StrPath | None = None) -> list[str]:
    """Names of the rings in the ring directory, sorted."""
    return _native.list_rings(_dir_arg(dir))
