"""Capture and replay: journals of rings, and reading them for research.

A *journal* is a directory holding every message of one ring with its
sequence and publish time, checked by a CRC32C per entry, with gap entries for
messages the recorder never saw (a lossy ring lapped it)::

    ringcast.record("md.quotes", "/data/2026-12-04/quotes")      # until the ring closes
    ringcast.replay("/data/2026-12-04/quotes", "md.quotes", speed=1.0)

    j = ringcast.Journal("/data/2026-12-04/quotes")
    m = j.messages()                 # m.seq, m.time, m.records (the ring's dtype)
    j.to_parquet("quotes.parquet")   # pandas / polars read it (needs pyarrow)

Recording and replaying run in Rust (``ringcast-journal``) on a thread of
their own; this module parses arguments and maps segment files into numpy.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _native, _schema
from .errors import InvalidArgument

__all__ = ["Journal", "Messages", "Segment", "record", "replay", "verify"]

StrPath = str | os.PathLike[str]

# Entry kinds (the top bits of an entry's tag).
_MESSAGE = 1
_GAP = 2


def record(
    ring: str,
    journal: StrPath,
    *,
    dir: StrPath | None = None,
    stage: str = "journal",
    first: str = "oldest",
    segment_bytes: int = 256 << 20,
    segment_age: float | None = None,
    fsync: str | float = 1.0,
    batch: int = 4096,
    follow: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
    progress_every: float = 1.0,
) -> dict[str, Any]:
    """Records ring ``ring`` (in ring directory ``dir``) into the journal
    directory ``journal`` and returns the report.

    The recorder is a durable stage named ``stage`` of the ring: on a bounded
    ring nothing is lost, and a recorder restarted within the ring's
    liveness timeout resumes where it stopped. A journal that has entries
    goes on after its last one; a new one starts with the ``first`` message
    still in the ring ("oldest") or the next one published ("latest").
    Segments roll at ``segment_bytes`` or ``segment_age`` seconds. ``fsync``:
    "never", "always" (every write, before the messages count as recorded),
    or seconds between syncs. Returns once the publisher has closed the ring
    and everything is recorded (``follow=True``: keeps waiting for a new
    publisher), or on Ctrl-C, which ends the recording cleanly and raises
    KeyboardInterrupt with the final report as its ``report`` attribute.
    """
    return _native.journal_record(
        ring,
        os.fspath(journal),
        dir=None if dir is None else os.fspath(dir),
        stage=stage,
        first=first,
        segment_bytes=segment_bytes,
        segment_age=segment_age,
        fsync=fsync,
        batch=batch,
        follow=follow,
        progress=progress,
        progress_every=progress_every,
    )


def replay(
    journal: StrPath,
    ring: str,
    *,
    dir: StrPath | None = None,
    speed: float | None = None,
    start_seq: int | None = None,
    end_seq: int | None = None,
    start_time: Any = None,
    end_time: Any = None,
    original_times: bool = False,
    capacity: int | None = None,
    bounded: bool | None = None,
    subscribers: int = 0,
    verify: bool = True,
    progress: Callable[[dict[str, Any]], None] | None = None,
    progress_every: float = 1.0,
) -> dict[str, Any]:
    """Publishes the journal's messages into ring ``ring`` and returns the report.

    ``speed=None`` publishes flat out; ``1.0`` keeps the recorded pace
    (inter-message timing), ``n`` plays it n times faster. Select a part
    with ``start_seq``/``end_seq`` (recorded sequences, end excluded) or
    ``start_time``/``end_time`` (datetime, numpy.datetime64, ISO text, or
    monotonic ns of the recording host as int). The ring is made with the
    recorded ring's shape (``capacity``/``bounded`` override), or taken over
    if it exists with that shape. Messages carry the time they were (due to
    be) published, or their recorded time with ``original_times``. With
    ``subscribers=n`` publishing starts once n subscribers are attached.
    ``verify=False`` skips each entry's CRC check (for a journal
    :func:`verify` passed): about twice as fast flat out.
    """
    if start_seq is not None and start_time is not None:
        raise InvalidArgument("give start_seq or start_time, not both")
    if end_seq is not None and end_time is not None:
        raise InvalidArgument("give end_seq or end_time, not both")
    offset = None
    if start_time is not None or end_time is not None:
        offset = Journal(journal, check=False).clock_offset_ns

    def bound(seq: int | None, time: Any) -> tuple[str, int] | None:
        if seq is not None:
            return ("seq", int(seq))
        if time is not None:
            # Before the recording host's clock began: from its beginning.
            return ("time", max(0, _monotonic_ns(time, offset)))
        return None

    return _native.journal_replay(
        os.fspath(journal),
        ring,
        dir=None if dir is None else os.fspath(dir),
        speed=speed,
        start=bound(start_seq, start_time),
        until=bound(end_seq, end_time),
        original_times=original_times,
        capacity=capacity,
        bounded=bounded,
        subscribers=subscribers,
        verify=verify,
        progress=progress,
        progress_every=progress_every,
    )


def verify(journal: StrPath) -> dict[str, Any]:
    """Checks every entry of the journal; the report says what cannot be
    read, exactly (``intact`` is True when nothing is damaged or missing)."""
    return _native.journal_verify(os.fspath(journal))


def _monotonic_ns(value: Any, offset: int | None) -> int:
    """A publish-time bound: monotonic ns as given (int), or a wall time
    (datetime, numpy.datetime64, ISO text; naive means UTC) moved onto the
    recording host's monotonic clock."""
    if isinstance(value, bool):
        raise InvalidArgument(f"a time bound must be a time, got {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, str):
        try:
            value = np.datetime64(value, "ns")
        except ValueError:
            raise InvalidArgument(
                f"time {value!r} is not ISO 8601 (e.g. 2026-12-04T14:30:00.5, UTC)"
            ) from None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.UTC).replace(tzinfo=None)
        value = np.datetime64(value, "ns")
    if isinstance(value, np.datetime64):
        assert offset is not None
        return int(value.astype("datetime64[ns]").astype(np.int64)) - offset
    raise InvalidArgument(
        f"a time bound must be a datetime, numpy.datetime64, ISO text or monotonic ns, "
        f"got {value!r}"
    )


@dataclass(frozen=True)
class Segment:
    """One segment file of a journal."""

    path: str
    first_seq: int
    entries: int
    sealed: bool
    #: Indices of entries that fail their CRC (left out of every array).
    damaged: np.ndarray
    #: Why its header cannot be read (then it is left out), or None.
    header_problem: str | None


@dataclass(frozen=True)
class Messages:
    """Messages of a journal as arrays: ``seq[i]``, ``time[i]`` (publish
    time, monotonic ns of the recording host) and ``records[i]`` (the ring's
    dtype; on a raw bytes ring a 2-D uint8 array with ``lengths``)."""

    seq: np.ndarray
    time: np.ndarray
    records: np.ndarray
    lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.seq)

    def payloads(self) -> list[bytes]:
        """Each message's bytes as published."""
        if self.lengths is None:
            return [r.tobytes() for r in self.records]
        return [bytes(r[:n]) for r, n in zip(self.records, self.lengths, strict=True)]


class Journal:
    """A journal directory, opened for reading.

    ``Journal(dir)`` maps every segment read-only and (``check=True``, the
    default) checks every entry's CRC once, so that damaged entries are left
    out of every array (``verify()`` gives the account of what they held).
    Arrays of one segment (:meth:`view`) are zero-copy memory maps;
    selections across segments (:meth:`messages`) are copies.
    """

    def __init__(self, dir: StrPath, *, check: bool = True) -> None:
        self.dir = os.fspath(dir)
        info = _native.journal_open(self.dir, check)
        self.ring: str = info["ring"]
        self.slot_size: int = info["slot_size"]
        self.capacity: int = info["capacity"]
        self.timestamps: bool = info["timestamps"]
        self._schema: bytes = info["schema"]
        #: The ring's numpy dtype, or None for a raw bytes ring.
        self.dtype: np.dtype | None = _schema.decode(self._schema, f"journal {self.dir}")
        self._header_len: int = info["header_len"]
        self._kind_shift: int = info["kind_shift"]
        self.segments: list[Segment] = []
        self._strides: list[int] = []
        offsets = []
        for s in info["segments"]:
            self.segments.append(
                Segment(
                    path=s["path"],
                    first_seq=s.get("first_seq", s["named_seq"]),
                    entries=s["entries"],
                    sealed=s["seal"] is not None,
                    damaged=np.asarray(s["damaged"], dtype=np.int64),
                    header_problem=s["header_problem"],
                )
            )
            self._strides.append(s["stride"])
            if s["header_problem"] is None:
                offsets.append(s["clock_offset_ns"])
        #: Add to a publish time to get Unix time in ns (taken when the first
        #: segment was made; the monotonic clock restarts at a reboot).
        self.clock_offset_ns: int = offsets[0]
        stride = next(st for st, s in zip(self._strides, self.segments, strict=True)
                      if s.header_problem is None)  # fmt: skip
        payload = self.dtype if self.dtype is not None else np.dtype(("u1", stride - 24))
        #: One entry of a segment file, as numpy sees it.
        self.entry_dtype = np.dtype(
            {
                "names": ["tag", "crc", "seq", "time", "payload"],
                "formats": ["<u4", "<u4", "<u8", "<u8", payload],
                "offsets": [0, 4, 8, 16, 24],
                "itemsize": stride,
            }
        )

    def __repr__(self) -> str:
        return (
            f"Journal({self.dir!r}, ring={self.ring!r}, segments={len(self.segments)}, "
            f"dtype={self.dtype})"
        )

    def view(self, segment: int) -> np.ndarray:
        """Every entry of segment ``segment`` as a read-only memory map
        (fields tag, crc, seq, time, payload), zero-copy. ``tag >> 28`` is
        the kind (1: message, 2: gap of ``payload`` messages as u8), its low
        bits the message length; entries listed in ``segments[k].damaged``
        fail their CRC."""
        seg = self.segments[segment]
        if seg.header_problem is not None or seg.entries == 0:
            return np.empty(0, dtype=self.entry_dtype)
        return np.memmap(
            seg.path, dtype=self.entry_dtype, mode="r", offset=self._header_len,
            shape=(seg.entries,),
        )  # fmt: skip

    def _kind_mask(self, k: int, kind: int) -> tuple[np.ndarray, np.ndarray]:
        """Segment ``k``'s entries and which are readable entries of ``kind``."""
        entries = self.view(k)
        mask = (entries["tag"] >> self._kind_shift) == kind
        mask[self.segments[k].damaged] = False
        return entries, mask

    def _selected(self, k: int, kind: int, start_seq, end_seq, start_ns, end_ns) -> np.ndarray:
        entries, mask = self._kind_mask(k, kind)
        if len(entries) == 0:
            return entries
        if start_seq is not None:
            mask &= entries["seq"] >= start_seq
        if end_seq is not None:
            mask &= entries["seq"] < end_seq
        if start_ns is not None:
            mask &= entries["time"] >= start_ns
        if end_ns is not None:
            mask &= entries["time"] < end_ns
        if mask.all():
            return entries
        return entries[mask]

    def messages(
        self,
        *,
        start_seq: int | None = None,
        end_seq: int | None = None,
        start_time: Any = None,
        end_time: Any = None,
    ) -> Messages:
        """The messages (not gaps, not damaged entries) whose sequence is in
        ``[start_seq, end_seq)`` and publish time in ``[start_time,
        end_time)`` (datetime, numpy.datetime64, ISO text, or monotonic ns).
        A whole journal of one undamaged segment without gaps comes back as
        zero-copy views of the memory map."""
        start_ns = None if start_time is None else _monotonic_ns(start_time, self.clock_offset_ns)
        end_ns = None if end_time is None else _monotonic_ns(end_time, self.clock_offset_ns)
        parts = [
            self._selected(k, _MESSAGE, start_seq, end_seq, start_ns, end_ns)
            for k in range(len(self.segments))
        ]
        parts = [p for p in parts if len(p)]
        if len(parts) == 1:
            # One segment's rows (a zero-copy view when nothing is left out).
            rows = parts[0]
            seq, time, records, tags = rows["seq"], rows["time"], rows["payload"], rows["tag"]
        else:
            # Filled field by field: numpy concatenates padded record types slowly.
            total = sum(len(p) for p in parts)
            seq = np.empty(total, dtype="<u8")
            time = np.empty(total, dtype="<u8")
            records = np.empty(total, dtype=self.entry_dtype["payload"])
            tags = np.empty(total, dtype="<u4")
            at = 0
            for p in parts:
                end = at + len(p)
                seq[at:end], time[at:end] = p["seq"], p["time"]
                records[at:end], tags[at:end] = p["payload"], p["tag"]
                at = end
        lengths = None
        if self.dtype is None:
            # Clamped to the row (an unchecked damaged entry may claim more).
            lengths = np.minimum(
                tags & ((1 << self._kind_shift) - 1), self.entry_dtype["payload"].shape[0]
            ).astype(np.uint32)
        return Messages(seq=seq, time=time, records=records, lengths=lengths)

    def gaps(self) -> np.ndarray:
        """The gap entries: ``seq`` of the first message missing and ``count``."""
        # The count is the payload's first 8 bytes: the same memory seen as
        # (seq, count) pairs.
        pairs = np.dtype(
            {"names": ["seq", "count"], "formats": ["<u8", "<u8"], "offsets": [8, 24],
             "itemsize": self.entry_dtype.itemsize}
        )  # fmt: skip
        parts = [self._selected(k, _GAP, None, None, None, None).view(pairs)
                 for k in range(len(self.segments))]  # fmt: skip
        out = np.empty(sum(len(p) for p in parts), dtype=[("seq", "<u8"), ("count", "<u8")])
        at = 0
        for p in parts:
            out["seq"][at : at + len(p)] = p["seq"]
            out["count"][at : at + len(p)] = p["count"]
            at += len(p)
        return out

    def __len__(self) -> int:
        """Messages (not gaps, not damaged entries); no copy."""
        return sum(int(self._kind_mask(k, _MESSAGE)[1].sum()) for k in range(len(self.segments)))

    def _ends(self) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """(seq, time) of the first and the last message, without copying."""
        first = last = None
        for k in range(len(self.segments)):
            entries, mask = self._kind_mask(k, _MESSAGE)
            at = np.flatnonzero(mask)
            if len(at):
                e = entries[at[-1]]
                last = (int(e["seq"]), int(e["time"]))
                if first is None:
                    e = entries[at[0]]
                    first = (int(e["seq"]), int(e["time"]))
        return first, last

    def __iter__(self) -> Iterator[tuple[int, int, Any]]:
        """``(seq, publish time, message)`` for every message, in order: a
        numpy record on typed rings, bytes on raw rings."""
        for k in range(len(self.segments)):
            rows = self._selected(k, _MESSAGE, None, None, None, None)
            for row in rows:
                if self.dtype is None:
                    n = int(row["tag"]) & ((1 << self._kind_shift) - 1)
                    yield int(row["seq"]), int(row["time"]), row["payload"][:n].tobytes()
                else:
                    yield int(row["seq"]), int(row["time"]), row["payload"]

    def wall_time(self, time: np.ndarray | int) -> np.ndarray:
        """Publish times as numpy datetime64[ns] (UTC)."""
        return (np.asarray(time, dtype=np.int64) + self.clock_offset_ns).astype("datetime64[ns]")

    def verify(self) -> dict[str, Any]:
        """See :func:`verify`."""
        return verify(self.dir)

    def info(self) -> dict[str, Any]:
        """What ``ringcast journal info`` shows."""
        seal_free = [s for s in self.segments if not s.sealed]
        first, last = self._ends()
        gaps = self.gaps()
        stamped = self.timestamps and first is not None and last is not None
        return {
            "dir": self.dir,
            "ring": self.ring,
            "dtype": None if self.dtype is None else str(self.dtype),
            "slot_size": self.slot_size,
            "timestamps": self.timestamps,
            "segments": len(self.segments),
            "open_segments": len(seal_free),
            "bytes": sum(os.path.getsize(s.path) for s in self.segments),
            "messages": len(self),
            "gaps": len(gaps),
            "lost": int(gaps["count"].sum()),
            "damaged": int(sum(len(s.damaged) for s in self.segments)),
            "first_seq": first[0] if first else None,
            "last_seq": last[0] if last else None,
            "first_time": str(self.wall_time(first[1])) if stamped and first else None,
            "last_time": str(self.wall_time(last[1])) if stamped and last else None,
        }

    # -- research export -----------------------------------------------------

    def to_arrow(self, **selection: Any) -> Any:
        """The messages (see :meth:`messages` for the selection) as a
        pyarrow Table: ``seq``, ``publish_time`` (timestamp[ns, UTC]) and one
        column per field of the ring's dtype (``data`` on raw rings). A field
        named ``seq`` or ``publish_time`` makes those two ``journal_seq`` and
        ``journal_publish_time``. Needs pyarrow (``pip install
        ringcast[parquet]``)."""
        pa = _pyarrow()
        m = self.messages(**selection)
        fields = [] if self.dtype is None or self.dtype.names is None else list(self.dtype.names)
        prefix = "journal_" if {"seq", "publish_time"} & set(fields) else ""
        columns: dict[str, Any] = {
            prefix + "seq": pa.array(np.ascontiguousarray(m.seq)),
            prefix + "publish_time": pa.array(
                self.wall_time(m.time), type=pa.timestamp("ns", tz="UTC")
            ),
        }
        if self.dtype is None:
            assert m.lengths is not None
            columns["data"] = _binary_column(pa, np.asarray(m.records), m.lengths)
        elif self.dtype.names is None:
            columns["value"] = _arrow_column(pa, np.asarray(m.records))
        else:
            for name in fields:
                columns[name] = _arrow_column(pa, np.asarray(m.records[name]))
        return pa.table(columns)

    def to_parquet(self, path: StrPath, **selection: Any) -> None:
        """Writes :meth:`to_arrow` to a Parquet file (pandas: ``read_parquet``,
        polars: ``read_parquet``)."""
        import pyarrow.parquet as pq

        pq.write_table(self.to_arrow(**selection), os.fspath(path))

    def to_pandas(self, **selection: Any) -> Any:
        """:meth:`to_arrow` as a pandas DataFrame."""
        return self.to_arrow(**selection).to_pandas()


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise InvalidArgument(
            "Parquet and Arrow export need pyarrow: pip install 'ringcast[parquet]' "
            "(or pip install pyarrow)"
        ) from None
    return pyarrow


def _arrow_column(pa: Any, col: np.ndarray) -> Any:
    """One field of the ring's dtype as an Arrow array (sub-arrays become
    fixed-size lists, byte strings binary, text strings)."""
    col = np.ascontiguousarray(col)
    if col.ndim > 1:
        width = int(np.prod(col.shape[1:]))
        flat = _arrow_column(pa, col.reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, width)
    if col.dtype.kind == "S":
        # numpy drops trailing NULs of fixed byte strings: variable binary.
        return pa.array(col.tolist(), type=pa.binary())
    if col.dtype.kind == "V":
        return pa.array([bytes(v) for v in col], type=pa.binary(col.dtype.itemsize))
    return pa.array(col)


def _binary_column(pa: Any, rows: np.ndarray, lengths: np.ndarray) -> Any:
    """Raw messages (rows of a 2-D uint8 array, each ``lengths[i]`` long) as
    an Arrow binary array, built from one buffer of offsets and one of bytes."""
    rows = np.ascontiguousarray(rows).reshape(len(lengths), -1)
    keep = np.arange(rows.shape[1]) < lengths[:, None]
    data = rows[keep]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.large_binary(),
        len(lengths),
        [None, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())],
    )
