"""A ring carried across hosts on Aeron (reliable UDP, multicast or IPC).

On the host of the source ring::

    ringcast.bridge.send("md.quotes", "aeron:udp?endpoint=10.0.0.2:40456")

On the receiving host (the ring is made with the source's dtype, and every
message keeps its source sequence and publish time)::

    ringcast.bridge.recv("aeron:udp?endpoint=10.0.0.2:40456", ring="md.quotes")

Loss is accounted end to end: what the source overwrote before the sender
read it, what the network lost beyond Aeron's recovery, and what was sent
while the receiver was down are declared lost in the far ring, so its
subscribers count them in ``lost`` exactly, and the receiver's report says
which was which. Both ends run in Rust (``ringcast-bridge``, Aeron's C media
driver embedded, or an external driver with ``aeron_dir``) on a thread of
their own; Ctrl-C ends them cleanly with the report attached to the
exception (``e.report``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from . import _native

__all__ = ["DEFAULT_STREAM", "recv", "send"]

StrPath = str | os.PathLike[str]

#: The Aeron stream id bridges use unless told otherwise.
DEFAULT_STREAM = 1001


def send(
    ring: str,
    channel: str,
    *,
    stream: int = DEFAULT_STREAM,
    dir: StrPath | None = None,
    stage: str = "bridge",
    first: str = "oldest",
    batch: int = 1024,
    connect_timeout: float | None = None,
    linger: float = 1.0,
    follow: bool = False,
    aeron_dir: str | None = None,
    term_length: int | None = None,
    idle: str = "backoff",
    progress: Callable[[dict[str, Any]], None] | None = None,
    progress_every: float = 1.0,
) -> dict[str, Any]:
    """Sends ring ``ring`` (in ring directory ``dir``) on the Aeron
    ``channel``/``stream`` and returns the report.

    The sender is a durable stage named ``stage`` of the ring: on a bounded
    ring a slow receiver holds the ring's publisher back (Aeron's flow
    control, then the ring's), and a sender restarted within the ring's
    liveness timeout resumes where it stopped. A new stage starts with the
    ``first`` message still in the ring ("oldest") or the next one
    ("latest"). It waits for a receiver to connect (``connect_timeout``
    seconds at most, then :class:`~ringcast.errors.BridgeNotConnected`).
    Returns once the ring's publisher closed it and everything was sent
    (then keeps the publication ``linger`` seconds for retransmissions);
    ``follow=True`` keeps going across publisher restarts until Ctrl-C.
    ``aeron_dir``: use a running media driver instead of the embedded one;
    ``term_length`` and ``idle`` ("spin", "backoff", "sleep") tune the
    embedded one.
    """
    return _native.bridge_send(
        ring,
        channel,
        stream=stream,
        dir=None if dir is None else os.fspath(dir),
        stage=stage,
        first=first,
        batch=batch,
        connect_timeout=connect_timeout,
        linger=linger,
        follow=follow,
        aeron_dir=aeron_dir,
        term_length=term_length,
        idle=idle,
        progress=progress,
        progress_every=progress_every,
    )


def recv(
    channel: str,
    *,
    stream: int = DEFAULT_STREAM,
    ring: str | None = None,
    dir: StrPath | None = None,
    capacity: int | None = None,
    bounded: bool = False,
    until_end: bool = False,
    idle_timeout: float | None = None,
    aeron_dir: str | None = None,
    term_length: int | None = None,
    idle: str = "backoff",
    progress: Callable[[dict[str, Any]], None] | None = None,
    progress_every: float = 1.0,
) -> dict[str, Any]:
    """Receives the Aeron ``channel``/``stream`` into ring ``ring`` (default:
    the source ring's name) in ring directory ``dir``, and returns the report.

    The ring is made with the source's dtype, slot size and flags
    (``capacity``: the source's unless given; ``bounded=True``: a slow local
    subscriber holds the sender back), or taken over if it exists with that
    shape (another shape: :class:`~ringcast.errors.BridgeSchemaClash`, and
    nothing is created or changed). Runs until Ctrl-C, or with
    ``until_end=True`` until the sender says its source closed and
    everything arrived. ``idle_timeout``: fail with
    :class:`~ringcast.errors.BridgeNotConnected` when nothing arrived in
    that many seconds.
    """
    return _native.bridge_recv(
        channel,
        stream=stream,
        ring=ring,
        dir=None if dir is None else os.fspath(dir),
        capacity=capacity,
        bounded=bounded,
        until_end=until_end,
        idle_timeout=idle_timeout,
        aeron_dir=aeron_dir,
        term_length=term_length,
        idle=idle,
        progress=progress,
        progress_every=progress_every,
    )
