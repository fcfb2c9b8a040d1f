"""Stages for examples/serve/quotes.toml: a synthetic quote source and a
mid-price strategy, as ``ringcast serve`` runs them (``def f(ctx, **args)``;
``ctx`` is a :class:`ringcast.serve.ServiceContext`)."""

from __future__ import annotations

import time

import numpy as np

import ringcast
from ringcast.serve import ServiceContext


def quotes(ctx: ServiceContext, ring: str, rate: float = 10_000.0, batch: int = 64) -> None:
    """Publishes ``rate`` quotes per second (in batches) into ``ring``, a
    ring the service created; a restarted source continues its sequence."""
    with ctx.publisher(ring) as pub:
        out = np.zeros(batch, pub.dtype)
        seq = pub.sequence
        rng = np.random.default_rng(seq)
        next_at = time.monotonic()
        while not ctx.stopping():
            out["seq"] = np.arange(seq, seq + batch)
            out["ts_ns"] = time.monotonic_ns()
            mid = 100.0 + rng.standard_normal(batch).cumsum() * 0.01
            out["bid"], out["ask"] = mid - 0.005, mid + 0.005
            pub.publish_batch(out)
            seq += batch
            ctx.processed(batch)
            next_at += batch / rate
            time.sleep(max(0.0, next_at - time.monotonic()))


def mids(ctx: ServiceContext, ring: str) -> dict[str, int]:
    """Reads quotes, keeps the last mid price and times each quote from its
    publication to here (``latency = "publish_to_strategy"`` in the config
    exports it as ringcast_latency_seconds)."""
    chunk = None
    with ctx.subscribe(ring, wait=ringcast.WaitStrategy.park()) as sub:
        chunk = np.zeros(1024, sub.dtype)
        while not ctx.stopping():
            try:
                n = sub.recv_batch_into(chunk, timeout=0.1)
            except ringcast.RingClosed:
                break
            if n:
                q = chunk[:n]
                ctx.latency.record_many(time.monotonic_ns() - q["ts_ns"].astype(np.int64))
                ctx.processed(n)
                ctx.report(mid=float((q["bid"][-1] + q["ask"][-1]) / 2), lost=sub.lost)
        return {"received": sub.received, "lost": sub.lost}
