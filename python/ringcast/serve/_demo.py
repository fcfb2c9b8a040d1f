"""``ringcast serve --demo``: the pipeline of ``ringcast demo`` as a service
(a generated ITCH day sent over loopback multicast, the feed handler, the
book builder and strategy stages), declared as a configuration like any
other, so that everything the service does can be watched on it."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from .. import itch
from .._api import WaitStrategy, default_dir
from ..errors import RingClosed
from . import _config
from ._child import ServiceContext

TEMPLATE = """\
[service]
name = "demo"
dir = {dir!r}

[senders.day]
file = {day!r}
group = {group!r}
rate = {rate!r}
retransmit = {server!r}
drop = {drop!r}
linger = 5.0

[feeds.nasdaq]
group = {group!r}
bus = {bus!r}
retransmit = {server!r}
capacity = {capacity}

[books.nasdaq]
bus = {bus!r}
capacity = {capacity}
"""

STRATEGY = """
[stages.strategy{i}]
function = "ringcast.serve._demo:strategy"
args = {{ ring = "{bus}.book" }}
reads = ["{bus}.book"]
latency = "wire_to_strategy"
"""


def config(
    work: str,
    *,
    dir: str | None,
    rate: float,
    duration: float,
    strategies: int,
    seed: int,
    drop: float,
    capacity: int,
) -> _config.ServiceConfig:
    """Generates the day into ``work`` and declares the demo pipeline."""
    from ..demo import _free_port

    messages = int(rate * duration)
    if not 1000 <= messages <= 50_000_000:
        raise _config.ConfigError(
            "--demo",
            None,
            "",
            f"rate x duration is {messages:,} messages; "
            "give 1,000 to 50,000,000 (the day is a temporary file)",
        )
    day = os.path.join(work, "day.itch")
    itch.generate(day, seed=seed, messages=messages)
    pid = os.getpid()
    text = TEMPLATE.format(
        dir=default_dir(dir),
        day=day,
        rate=float(rate),
        drop=float(drop),
        capacity=capacity,
        group=f"239.255.{pid % 250}.{(pid >> 8) % 250 + 1}:{_free_port()}",
        server=f"127.0.0.1:{_free_port()}",
        bus=f"demo{pid}",
    )
    text += "".join(STRATEGY.format(i=i, bus=f"demo{pid}") for i in range(1, strategies + 1))
    return _config.parse(text, "--demo", base_dir=work)


def strategy(ctx: ServiceContext, ring: str) -> dict[str, Any]:
    """A strategy stage: reads book updates until the book builder closes
    its ring, timing each from the kernel's receive of its packet (wire) to
    here, and counting them."""
    chunk = np.zeros(1 << 14, itch.BOOK_UPDATE)
    with ctx.subscribe(ring, dtype=itch.BOOK_UPDATE, wait=WaitStrategy.park()) as sub:
        while not ctx.stopping():
            try:
                n = sub.recv_batch_into(chunk, timeout=0.1)
            except RingClosed:
                break
            if n:
                ctx.latency.record_many(time.monotonic_ns() - chunk["recv_ns"][:n].astype(np.int64))
                ctx.processed(n)
                ctx.report(received=sub.received, lost=sub.lost)
        return {"received": sub.received, "lost": sub.lost}
