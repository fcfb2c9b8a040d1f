"""ringcast: low-latency market-data fan-out through shared-memory rings.

A feed handler creates a ring and publishes into it::

    pub = ringcast.Publisher.create("md.quotes", dtype=QUOTE, capacity=1 << 16)
    pub.publish(record)

and any number of strategy processes on the same host read it::

    with ringcast.Subscriber.attach("md.quotes") as sub:
        for quote in sub:
            ...
"""

from __future__ import annotations

from . import _native, bridge, errors, itch, journal
from ._api import Publisher, Subscriber, WaitStrategy, default_dir, list_rings, trust, trusted
from ._bus import Bus, TopicInfo, TopicSubscriber, TopicSubscriberInfo
from ._group import GroupConsumer, SubscriberGroup
from ._memory import MemoryReport, host_memory, pin_thread, ring_info, thread_cpus
from ._native import IntervalLog, LatencyHistogram
from ._topology import Diamond, Pipeline, Stage, StageContext, StageStatus, Topology
from .errors import *  # noqa: F403  (every exception, listed in errors.__all__)
from .journal import Journal

__version__: str = _native.__version__
FORMAT_VERSION: int = _native.FORMAT_VERSION

__all__ = [
    "FORMAT_VERSION",
    "Bus",
    "Diamond",
    "GroupConsumer",
    "IntervalLog",
    "Journal",
    "LatencyHistogram",
    "MemoryReport",
    "Pipeline",
    "Publisher",
    "Stage",
    "StageContext",
    "StageStatus",
    "Subscriber",
    "SubscriberGroup",
    "TopicInfo",
    "TopicSubscriber",
    "TopicSubscriberInfo",
    "Topology",
    "WaitStrategy",
    "__version__",
    "bridge",
    "default_dir",
    "host_memory",
    "itch",
    "journal",
    "list_rings",
    "pin_thread",
    "ring_info",
    "thread_cpus",
    "trust",
    "trusted",
    *errors.__all__,
]
