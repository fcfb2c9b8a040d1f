"""Stage functions the service tests run under ``ringcast serve``."""

from __future__ import annotations

import signal
import time

import numpy as np

import ringcast
from ringcast.serve import ServiceContext


def counter(ctx: ServiceContext, ring: str, every: float = 0.001) -> None:
    """Publishes 0, 1, 2, ... into ``ring`` (continuing after a restart)."""
    with ctx.publisher(ring) as pub:
        seq = pub.sequence
        while not ctx.stopping():
            pub.publish((seq, float(seq)))
            seq += 1
            ctx.processed()
            time.sleep(every)


def reader(ctx: ServiceContext, ring: str) -> dict[str, int]:
    """Reads ``ring`` until it closes; checks every value is its sequence."""
    with ctx.subscribe(ring) as sub:
        while not ctx.stopping():
            try:
                m = sub.recv(timeout=0.1)
            except (ringcast.Timeout, ringcast.PublisherDied):
                continue  # a dead publisher is restarted by the service
            except ringcast.RingClosed:
                break
            assert m["value"] == float(m["seq"]), m
            ctx.processed()
            ctx.latency.record(1000)
        return {"received": sub.received, "lost": sub.lost}


def idle(ctx: ServiceContext) -> None:
    """Does nothing but stay healthy."""
    while not ctx.stopping():
        time.sleep(0.02)


def crash(ctx: ServiceContext, after: float = 0.0) -> None:
    time.sleep(after)
    raise RuntimeError(f"stage crashed on purpose (restart {ctx.restarts})")


def stall(ctx: ServiceContext, after: float = 0.5) -> None:
    """Healthy for ``after`` seconds, then stuck without a heartbeat."""
    end = time.monotonic() + after
    while time.monotonic() < end:
        ctx.stopping()
        time.sleep(0.02)
    while True:
        time.sleep(1)


def stubborn(ctx: ServiceContext) -> None:
    """Ignores SIGTERM: only the shutdown deadline's SIGKILL stops it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        ctx.processed(0)
        time.sleep(0.02)


def batch_writer(ctx: ServiceContext, ring: str) -> None:
    with ctx.publisher(ring) as pub:
        out = np.zeros(8, pub.dtype)
        while not ctx.stopping():
            pub.publish_batch(out)
            time.sleep(0.01)
