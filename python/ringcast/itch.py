"""NASDAQ TotalView-ITCH 5.0: record dtypes, ITCH files, and the MoldUDP64 feed.

Every one of the 23 message types becomes one fixed-size little-endian
record: ``recv_ns`` (receive time, ``time.monotonic_ns()`` clock; 0 in
records read from a file), the 48-bit ITCH ``timestamp`` widened to u64
(ns since midnight), ``stock_locate``, ``tracking_number``, then the
message's fields in wire order at their wire widths. Prices stay the raw
fixed-point integers (4 implied decimals; 8 for MWCB levels): see
:func:`price`. The dtypes are module constants named after the spec
(``ADD_ORDER``, ``ORDER_EXECUTED``, ...) and in :data:`MESSAGE_TYPES`.

The feed handler (:func:`handle`, ``ringcast feed handle``) publishes each
type into its own ring on a :class:`ringcast.Bus`, topic = the type's
``name`` (``md.add_order``), so strategies subscribe by topic and get
these dtypes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _native, _schema
from .errors import InvalidArgument

__all__ = [
    "MESSAGE_TYPES",
    "MessageType",
    "books",
    "decode_report",
    "generate",
    "handle",
    "message_type",
    "price",
    "read_file",
    "read_pcap",
    "replay",
    "send",
]


@dataclass(frozen=True)
class MessageType:
    """One ITCH 5.0 message type and its record."""

    byte: str
    """The type byte, e.g. ``"A"``."""
    name: str
    """Snake-case name, e.g. ``"add_order"``: also the topic of its ring."""
    const_name: str
    """The module constant holding its dtype, e.g. ``"ADD_ORDER"``."""
    length: int
    """Message length on the wire, type byte included."""
    dtype: np.dtype
    """The record's dtype."""
    scales: dict[str, int]
    """Implied decimal places of the price fields (``price / 10**scale``)."""


def _load() -> dict[str, MessageType]:
    types = {}
    for t in _native.itch_types():
        dtype = _schema.decode(f"numpy:{t['descr']}".encode(), repr(t["name"]))
        assert dtype is not None and dtype.itemsize == t["record_size"]
        scales = {name: scale for name, _, _, scale in t["fields"] if scale}
        types[t["byte"]] = MessageType(
            t["byte"], t["name"], t["const_name"], t["length"], dtype, scales
        )
    return types


MESSAGE_TYPES: dict[str, MessageType] = _load()
"""Every message type by its type byte, in the spec's order."""

for _t in MESSAGE_TYPES.values():
    globals()[_t.const_name] = _t.dtype
    __all__.append(_t.const_name)
del _t

for _name, _descr in _native.feed_record_descrs():
    globals()[_name] = _schema.decode(f"numpy:{_descr}".encode(), _name)
    __all__.append(_name)
del _name, _descr

RAW_MESSAGE: np.dtype
"""The in-order stream ring ``<bus>.itch``: ``recv_ns``, MoldUDP64
``sequence``, ``length`` and the message's wire bytes (``message``, void)."""
BOOK_UPDATE: np.dtype
"""The book ring ``<bus>.book``: one record per price-level change, with the
top of book after it and the causing message's ``recv_ns``."""


def message_type(which: str) -> MessageType:
    """The message type with type byte ``which`` (``"A"``) or name (``"add_order"``)."""
    if isinstance(which, str):
        if which in MESSAGE_TYPES:
            return MESSAGE_TYPES[which]
        for t in MESSAGE_TYPES.values():
            if which in (t.name, t.const_name):
                return t
    raise InvalidArgument(
        f"no ITCH 5.0 message type {which!r}; use a type byte (e.g. 'A') or name (e.g. "
        f"'add_order'): {', '.join(t.byte for t in MESSAGE_TYPES.values())}"
    )


def price(raw: Any, scale: int = 4) -> Any:
    """A fixed-point price field as float(s): ``raw / 10**scale`` (4 decimals;
    8 for MWCB levels). Works on scalars and numpy arrays."""
    return np.asarray(raw, dtype=np.float64) / 10**scale if np.ndim(raw) else raw / 10**scale


def generate(
    path: str | os.PathLike[str],
    *,
    seed: int,
    messages: int,
    symbols: int | None = None,
    halts: int | None = None,
) -> int:
    """Write a realistic trading day of ``messages`` messages to ITCH file
    ``path``, the same bytes for the same ``seed``: a universe of ``symbols``
    stocks (default one per 500 messages) with skewed activity, the system
    events of a day, the stock directory, order lifecycles (adds, partial
    executions, cancels, replaces, deletes), trades, opening and closing
    crosses with imbalance messages, and ``halts`` trading halts; busy at the
    open and the close. Returns the messages written."""
    return _native.itch_generate(
        os.fspath(path), seed=seed, messages=messages, symbols=symbols, halts=halts
    )


def read_file(
    path: str | os.PathLike[str], types: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Every message of ITCH file ``path`` (2-byte big-endian length before
    each message, as NASDAQ publishes them) as records: one array per type
    name, in file order, ``recv_ns`` 0 (``types``: only these, by byte or
    name). Frames that do not decode are skipped (see :func:`decode_report`)."""
    only = None if types is None else [message_type(t).name for t in types]
    out = _native.itch_read(os.fspath(path), records=True, max_errors=0, types=only)
    # Each type's records arrive as one uint8 array (its memory made in
    # Rust, not copied): viewed as records, not copied again.
    return {name: raw.view(message_type(name).dtype) for name, raw in out["records"].items()}


def decode_report(path: str | os.PathLike[str], max_errors: int = 20) -> dict[str, Any]:
    """What ITCH file ``path`` holds: ``messages``, ``errors``, ``bytes``,
    ``by_type`` (name -> count), ``error_kinds`` and the first ``max_errors``
    errors as ``(byte offset, what)``."""
    out = _native.itch_read(os.fspath(path), records=False, max_errors=max_errors)
    report: dict[str, Any] = out["report"]
    report["first_errors"] = out["errors"]
    return report


def send(
    path: str | os.PathLike[str],
    group: str,
    *,
    group_b: str | None = None,
    rate: float | None = None,
    speed: float | None = None,
    retransmit: str | None = None,
    linger: float = 0.0,
    drop: float | Sequence[int] | None = None,
    drop_b: float | Sequence[int] | None = None,
    drop_seed: int = 1,
    session: str = "RINGCAST",
    interface: str = "127.0.0.1",
    ttl: int = 0,
    max_payload: int = 1400,
    heartbeat: float = 1.0,
    ready: Callable[[str | None], Any] | None = None,
) -> dict[str, Any]:
    """Send ITCH file ``path`` as MoldUDP64 to multicast ``group``
    (``"239.1.1.1:31001"``; ``group_b``: the same stream on a second line).

    ``rate`` messages per second, or ``speed`` times the day's own pace by
    its timestamps, or flat out. ``retransmit="127.0.0.1:0"`` serves
    retransmission requests there (port 0: any; ``ready`` is called with the
    address once bound) and ``linger`` seconds after the end of the session.
    ``drop``/``drop_b`` skip packets on purpose (a percentage, seeded by
    ``drop_seed``, or packet numbers). Returns the sender's report."""
    return _native.feed_send(
        os.fspath(path),
        [group] if group_b is None else [group, group_b],
        interface=interface,
        ttl=ttl,
        rate=rate,
        speed=speed,
        max_payload=max_payload,
        heartbeat=heartbeat,
        retransmit=retransmit,
        linger=linger,
        drops=[drop, drop_b],
        drop_seed=drop_seed,
        session=session,
        ready=ready,
    )


def handle(
    group: str,
    *,
    bus: str,
    group_b: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    capacity: int = 1 << 16,
    stream_capacity: int = 1 << 18,
    bounded: bool = False,
    types: Sequence[str] | None = None,
    retransmit: str | None = None,
    arbitration: float = 0.001,
    request_timeout: float = 0.02,
    max_requests: int = 5,
    idle_timeout: float | None = None,
    session: str | None = None,
    interface: str = "127.0.0.1",
    receive_buffer: int = 64 << 20,
    capture: str | os.PathLike[str] | None = None,
    ready: Callable[[], Any] | None = None,
    progress: Callable[[dict[str, Any]], Any] | None = None,
    progress_every: float = 0.25,
) -> dict[str, Any]:
    """Run a feed handler: join ``group`` (and ``group_b``: first copy of each
    message wins), recover gaps from the ``retransmit`` server, and publish
    each message's record, stamped with its kernel receive time, to the ring
    of its type on bus ``bus`` (``types``: only these, by byte or name), and
    every message in sequence order into ``<bus>.itch`` (:data:`RAW_MESSAGE`
    records; ``stream_capacity`` slots, 0: none), which order books read.
    Existing rings are taken over: a restarted handler goes on after the last
    message of ``<bus>.itch`` (``first`` in the report), asking the
    retransmission server for what it missed.

    Returns when the session ended and every message is delivered or
    declared lost (or after ``idle_timeout`` seconds without data): a report
    with per-line counts, gaps, ``recovered``, the exact ``unrecovered``
    sequence ranges, and messages decoded by type. ``ready`` is called once
    the rings exist and the groups are joined; ``progress`` with the report
    so far every ``progress_every`` seconds.

    ``capture="feed.pcapng"`` writes every datagram received, on both lines
    and from the retransmission server, duplicates and damaged ones too, to
    a pcapng file (kernel receive times; appended to when it exists; read it
    with tshark, :func:`read_pcap`, or replay it with :func:`replay`);
    ``captured`` in the report counts them."""
    if not isinstance(bus, str):
        raise InvalidArgument(f"bus must be a bus name (str), got {bus!r}")
    return _native.feed_handle(
        [group] if group_b is None else [group, group_b],
        bus=bus,
        dir=None if dir is None else os.fspath(dir),
        capacity=capacity,
        stream_capacity=stream_capacity,
        bounded=bounded,
        types=None if types is None else [message_type(t).name for t in types],
        interface=interface,
        retransmit=retransmit,
        arbitration=arbitration,
        request_timeout=request_timeout,
        max_requests=max_requests,
        idle_timeout=idle_timeout,
        session=session,
        receive_buffer=receive_buffer,
        capture=None if capture is None else os.fspath(capture),
        ready=ready,
        progress=progress,
        progress_every=progress_every,
    )


def replay(
    pcap: str | os.PathLike[str],
    group: str | None = None,
    *,
    group_b: str | None = None,
    stream: str | None = None,
    rate: float | None = None,
    speed: float | None = None,
    drop: float | Sequence[int] | None = None,
    drop_b: float | Sequence[int] | None = None,
    drop_seed: int = 1,
    interface: str = "127.0.0.1",
    ttl: int = 0,
    ready: Callable[[str | None], Any] | None = None,
) -> dict[str, Any]:
    """Replay a packet capture (pcapng or pcap, e.g. from ``handle(...,
    capture=...)`` or tcpdump): the UDP payloads of one of its streams, byte
    for byte (MoldUDP64 heartbeats and end of session included), to
    ``group`` (default: the destination they were captured with; ``group_b``
    too if given).

    The stream is the datagrams to one destination: by default the
    multicast group of the capture's first interface (line A of a handler's
    capture: line B and retransmissions are left out), or ``stream``
    (``"ADDR:PORT"``, or ``"PORT"``: the first multicast group on that
    port). Paced by ``rate`` messages per second, ``speed`` times the
    capture's own pace, or flat out; no retransmission server. Returns the
    sender's report with ``destination``, ``others`` (datagrams left out)
    and ``capture_error`` (where a cut capture stopped, else None)."""
    groups = [] if group is None else [group] if group_b is None else [group, group_b]
    if group is None and group_b is not None:
        raise InvalidArgument("group_b needs group (line A) too")
    return _native.feed_replay(
        os.fspath(pcap),
        groups,
        stream=stream,
        interface=interface,
        ttl=ttl,
        rate=rate,
        speed=speed,
        drops=[drop, drop_b],
        drop_seed=drop_seed,
        ready=ready,
    )


def read_pcap(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The IPv4 UDP datagrams of a capture (pcapng or pcap): ``{"format",
    "packets", "datagrams": [(timestamp_ns, interface, source, destination,
    payload bytes), ...], "interfaces": [(link_type, name), ...], "error":
    None or why reading stopped early, "truncated": whether the file was cut
    (a killed writer: every packet before the cut is read)}``."""
    return _native.pcap_read(os.fspath(path))


def books(
    bus: str,
    *,
    dir: str | os.PathLike[str] | None = None,
    capacity: int = 1 << 16,
    bounded: bool = False,
    ready: Callable[[], Any] | None = None,
    progress: Callable[[dict[str, Any]], Any] | None = None,
    progress_every: float = 0.25,
) -> dict[str, Any]:
    """Run the order-book builder of bus ``bus``: read the handler's in-order
    stream ``<bus>.itch`` from its oldest message, keep a price-level book
    per instrument, and publish one :data:`BOOK_UPDATE` per level change into
    ``<bus>.book``. Returns when the stream ends: messages, updates,
    ``book_errors`` (messages a lossy stream made unappliable), ``lost``,
    ``handler_deaths`` (the handler died without closing the stream: the
    builder waits for a restarted handler, which continues the stream);
    ``progress`` gets the report so far every ``progress_every`` seconds."""
    if not isinstance(bus, str):
        raise InvalidArgument(f"bus must be a bus name (str), got {bus!r}")
    return _native.feed_books(
        bus,
        dir=None if dir is None else os.fspath(dir),
        capacity=capacity,
        bounded=bounded,
        ready=ready,
        progress=progress,
        progress_every=progress_every,
    )
