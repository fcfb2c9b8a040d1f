"""How a numpy dtype is stored in a ring header and read back.

The description is the one the ``.npy`` file format uses
(``numpy.lib.format.dtype_to_descr``): stable across numpy versions, and read
back with ``ast.literal_eval``, which never executes code from the file.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from . import _native
from .errors import InvalidArgument, RingCorrupt, SchemaMismatch

PREFIX = b"numpy:"


def check_dtype(dtype: Any) -> np.dtype:
    """The numpy dtype for ``dtype``, refusing types that cannot live in shared memory."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise InvalidArgument(
            f"dtype={dtype!r} is not a numpy dtype: {e}; pass e.g. "
            "numpy.dtype([('price', 'f8'), ('qty', 'u4')])"
        ) from e
    if dt.hasobject:
        raise InvalidArgument(
            f"dtype {dt} holds Python objects, which cannot be shared between processes; "
            "use fixed-size fields (numbers, 'S16' byte strings, 'U8' text)"
        )
    if dt.itemsize == 0:
        raise InvalidArgument(f"dtype {dt} has size 0; records need at least one byte")
    if dt.subdtype is not None:
        raise InvalidArgument(
            f"dtype {dt} is a bare sub-array, which numpy cannot round-trip through the ring "
            f"header; wrap it in a field: numpy.dtype([('values', {dt.subdtype[0].str!r}, "
            f"{dt.subdtype[1]})])"
        )
    return dt


def encode(dt: np.dtype) -> bytes:
    """The header description of ``dt``."""
    return PREFIX + repr(npy_format.dtype_to_descr(dt)).encode()


def decode(schema: bytes, where: str) -> np.dtype | None:
    """The dtype stored in a ring header, or None for a raw bytes ring.

    The header is not trusted: a dtype that could not have been created by
    ``check_dtype`` (object references, size 0, ...) is refused as corrupt.
    The native layer also checks its size against the ring's slots."""
    if not schema:
        return None
    if not schema.startswith(PREFIX):
        raise RingCorrupt(
            f"ring {where} has a schema this version does not understand ({schema[:40]!r}); "
            "upgrade ringcast to the publisher's version"
        )
    # Checked by the native parser first (bounded, fuzzed): only a literal
    # numpy can read as a fixed-size record type reaches literal_eval.
    problem = _native.schema_problem(schema)
    if problem is None:
        try:
            dt = npy_format.descr_to_dtype(ast.literal_eval(schema[len(PREFIX) :].decode()))
            return check_dtype(dt)
        except Exception as e:  # whatever numpy makes of it, the header is at fault
            problem = f"{type(e).__name__}: {e}"
    raise RingCorrupt(
        f"ring {where} has an unusable dtype description ({problem}); unlink it and let the "
        "publisher create it anew"
    )


def check_expected(found: np.dtype | None, expected: Any, where: str) -> None:
    """Raises SchemaMismatch naming both dtypes when ``found`` is not ``expected``."""
    want = check_dtype(expected)
    if found is None:
        raise SchemaMismatch(
            f"ring {where} carries raw bytes but dtype {want} was expected; attach without "
            "dtype=, or have the publisher create the ring with that dtype"
        )
    if found != want:
        raise SchemaMismatch(
            f"ring {where} holds records of dtype {found} but dtype {want} was expected; "
            "use the publisher's dtype"
        )
