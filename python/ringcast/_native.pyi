"""Type stubs of the native extension ``ringcast._native``.

Users normally import :class:`ringcast.Publisher` and :class:`ringcast.Subscriber`,
which subclass these classes and add ``Publisher.create`` / ``Subscriber.attach``.
"""

from collections.abc import Callable, Iterable
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt

FORMAT_VERSION: int
DEFAULT_DIR: str
DEFAULT_MAX_SUBSCRIBERS: int
MAX_GROUP_BUFFER: int
DEFAULT_MAX_PRODUCERS: int
DEFAULT_LIVENESS_TIMEOUT: float
DEFAULT_CLAIM_TIMEOUT: float
MAX_SLOT_SIZE: int
MAX_NAME_LEN: int
MAX_STAGE_NAME_LEN: int
MAX_UPSTREAM: int
__version__: str

def resolve_dir(dir: str | PathLike[str] | None = None) -> Path: ...
def list_rings(dir: str | PathLike[str] | None = None) -> list[str]: ...
def ring_path(name: str, dir: str | PathLike[str] | None = None) -> Path: ...
def inspect(name: str, dir: str | PathLike[str] | None = None) -> dict[str, Any]: ...
def trust(spec: str) -> None: ...
def trusted() -> tuple[list[int], list[int]]: ...
def schema_problem(schema: bytes) -> str | None: ...
def pin_thread(cpus: set[int]) -> set[int]: ...
def thread_cpus() -> set[int]: ...
def host_memory() -> dict[str, Any]: ...
def wait_any(
    subscribers: list[Subscriber],
    timeout: float | None = None,
    wait: WaitStrategy | None = None,
    stop: Callable[[], bool] | None = None,
) -> int | None:
    """Waits until one of ``subscribers`` has something for its next receive
    (a message, the end of its stream, its eviction): its index, or None at
    the timeout or once ``stop()`` returns True."""

Message = np.void | np.generic | bytes

class RingEnd:
    """What every end of a ring has: the base of Publisher and Subscriber."""

    @property
    def name(self) -> str:
        """The ring's name."""
    @property
    def path(self) -> Path:
        """Path of the ring file."""
    @property
    def capacity(self) -> int:
        """Number of slots."""
    @property
    def slot_size(self) -> int:
        """Largest message in bytes (the record size of typed rings)."""
    @property
    def fixed_size(self) -> bool:
        """Whether every message is exactly ``slot_size`` bytes (typed rings)."""
    @property
    def schema(self) -> bytes:
        """Schema description stored in the ring (empty for raw rings)."""
    @property
    def dtype(self) -> np.dtype[Any] | None:
        """numpy dtype of the records, or None for a raw bytes ring."""
    @property
    def timestamps(self) -> bool:
        """Whether every message carries its publish time."""
    @property
    def bounded(self) -> bool:
        """Whether publishers wait for the slowest subscriber."""
    @property
    def watermark(self) -> int | None:
        """Most unread messages a publisher may be ahead (bounded rings)."""
    @property
    def producers(self) -> str:
        """\"one\" or \"many\"."""
    @property
    def closed(self) -> bool:
        """Whether ``close()`` has been called."""
    def _memory(self) -> dict[str, Any]: ...
    def _set_dtype(self, dtype: np.dtype[Any]) -> None: ...
    def close(self) -> None:
        """Close this end: a publisher's close ends the stream for subscribers
        that read everything; a subscriber's frees its subscriber record."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

class Publisher(RingEnd):
    def __new__(
        cls,
        name: str,
        *,
        capacity: int = 0,
        slot_size: int = 0,
        fixed_size: bool = False,
        schema: bytes | None = None,
        dir: str | PathLike[str] | None = None,
        mode: int = 0o600,
        exist_ok: bool = False,
        max_subscribers: int | None = None,
        bounded: bool = False,
        watermark: int | None = None,
        liveness_timeout: float | None = None,
        producers: str = "one",
        max_producers: int | None = None,
        claim_timeout: float | None = None,
        wait: WaitStrategy | None = None,
        attach: bool = False,
        huge_pages: str = "off",
        huge_page_size: int | None = None,
        huge_dir: str | None = None,
        lock_memory: bool = False,
        prefault: bool | None = None,
        numa_node: int | None = None,
        numa_cpu: int | None = None,
        pin_cpu: int | None = None,
        timestamps: bool = False,
        heads_apart: bool = False,
    ) -> Self: ...
    def _stop_after_claim(self, seq: int) -> None:
        """Test hook: SIGSTOP this process right after claiming ``seq``."""
    def publish(self, msg: Any, timeout: float | None = None) -> None:
        """Publish one message: bytes-like of the message size, a numpy record or
        0-d array of the ring's dtype, or a tuple of field values. A full
        bounded ring is waited on up to ``timeout`` seconds (None: forever),
        then :class:`Timeout` is raised."""
    def publish_at(self, msg: Any, time: int, timeout: float | None = None) -> None:
        """Publish one message carrying ``time`` (ns of ``time.monotonic_ns()``)
        as its publish time: the time it was due (no coordinated omission) or
        an upstream event time. Needs a ring created with ``timestamps=True``."""
    def try_publish(self, msg: Any) -> None:
        """Publish one message if there is room now; else raise :class:`RingFull`."""
    def publish_lost(self, count: int, timeout: float | None = None) -> int:
        """Declare the next ``count`` sequences lost (single-producer rings only):
        the sequence moves past them without messages and every subscriber
        counts them in ``lost``, as if lapped over them. Returns the first
        sequence declared. A full bounded ring is waited on up to ``timeout``
        seconds (None: forever), as by :meth:`publish_batch`."""
    def publish_batch(
        self, batch: npt.ArrayLike | Iterable[Any], timeout: float | None = None
    ) -> int:
        """Publish many messages; return how many. Every message is checked first.
        A full bounded ring is waited on up to ``timeout`` seconds in all."""
    @property
    def published(self) -> int:
        """Messages this publisher has published."""
    @property
    def evictions(self) -> int:
        """Subscribers evicted from this bounded ring so far."""
    @property
    def subscriber_count(self) -> int:
        """Subscribers attached now."""
    @property
    def producer_count(self) -> int:
        """Producers attached now."""
    @property
    def sequence(self) -> int:
        """Sequence number the next message gets (= messages published so far)."""
    @property
    def generation(self) -> int:
        """How many publishers have opened this ring, this one included."""
    def unlink(self) -> None:
        """Remove the ring file; attached subscribers keep reading what is there."""

class WaitStrategy:
    """How a subscriber waits for the next message."""

    @staticmethod
    def busy_spin() -> WaitStrategy:
        """Poll continuously: lowest wake-up latency, one core at 100%."""
    @staticmethod
    def yielding() -> WaitStrategy:
        """Poll, yielding the CPU between polls."""
    @staticmethod
    def park() -> WaitStrategy:
        """Sleep on a futex in the ring until the publisher wakes the subscriber."""
    @staticmethod
    def adaptive(spin: int = 2000, yield_: int = 100) -> WaitStrategy:
        """Spin for ``spin`` polls, yield for ``yield_`` polls, then park.

        A subscriber polls once a pause; a bounded publisher waiting for room
        looks at its subscribers' positions once every 16 pauses, so its
        ``spin`` polls last 16 times as long."""
    @property
    def kind(self) -> Literal["busy_spin", "yielding", "park", "adaptive"]: ...
    @property
    def spin(self) -> int | None:
        """Adaptive strategies: polls spent spinning (None otherwise)."""
    @property
    def yield_(self) -> int | None:
        """Adaptive strategies: polls spent yielding (None otherwise)."""
    def __eq__(self, other: object) -> bool: ...

class Subscriber(RingEnd):
    def __new__(
        cls,
        name: str,
        *,
        dir: str | PathLike[str] | None = None,
        start: Literal["latest", "oldest", "resume"] | int | None = None,
        wait: WaitStrategy | None = None,
        lock_memory: bool = False,
        prefault: bool = False,
        pin_cpu: int | None = None,
        stage: str | None = None,
        after: list[str] = ...,
    ) -> Self: ...
    def _readiness_fd(self) -> int: ...
    def _arm_readiness(self) -> None: ...
    def _clear_readiness(self) -> None: ...
    def _check_publisher(self) -> None: ...
    @property
    def wait(self) -> WaitStrategy:
        """How blocking receives wait (settable; declared in the subscriber's
        record for ``ringcast info`` and ``ringcast stat``)."""
    @wait.setter
    def wait(self, value: WaitStrategy) -> None: ...
    @property
    def ended(self) -> bool:
        """True once the publisher closed the ring and everything has been read."""
    def try_recv(self) -> Message | None:
        """The next message, or None if none is waiting. Never blocks."""
    def recv(self, timeout: float | None = None) -> Message:
        """The next message, waiting up to ``timeout`` seconds (None: forever).
        Raises Timeout, or RingClosed once the stream has ended."""
    def try_recv_into(self, buf: Any) -> int | None:
        """Copy the next message into ``buf``; its length, or None. Never blocks."""
    def recv_into(self, buf: Any, timeout: float | None = None) -> int:
        """Copy the next message into ``buf``, waiting; return its length."""
    def recv_batch(self, max_n: int, timeout: float | None = 0.0) -> npt.NDArray[Any] | list[bytes]:
        """Up to ``max_n`` messages (array of the ring's dtype, or list of bytes for
        raw rings), waiting up to ``timeout`` for the first."""
    def recv_batch_into(
        self,
        out: npt.NDArray[Any],
        timeout: float | None = 0.0,
        lengths: npt.NDArray[np.int64] | npt.NDArray[np.uint64] | None = None,
        seqs: npt.NDArray[np.uint64] | None = None,
    ) -> int:
        """Fill ``out`` with up to ``len(out)`` messages; return the count.
        ``seqs[i]``, when given, receives the ring sequence of row ``i``."""
    @property
    def last_time(self) -> int | None:
        """Publish time (ns) of the last message read; None without timestamps."""
    def record_latency(
        self, *, highest: float = 60.0, digits: int = 3, expected_interval: float | None = None
    ) -> None:
        """Record receive time minus publish time of every message read from now
        on into an HdrHistogram (up to ``highest`` seconds, ``digits``
        significant digits; ``expected_interval`` seconds adds the samples a
        stalled publisher omitted)."""
    def latency(self) -> LatencyHistogram:
        """Everything recorded since ``record_latency()`` (a copy)."""
    def latency_interval(self) -> LatencyHistogram:
        """What was recorded since the last call; it stays in ``latency()``."""
    def stop_latency(self) -> LatencyHistogram:
        """Stop recording; everything recorded."""
    @property
    def stage(self) -> str | None:
        """This subscriber's stage name on the ring (None: not a stage)."""
    @property
    def after(self) -> tuple[str, ...]:
        """The stages this subscriber is gated after."""
    @property
    def processed(self) -> int:
        """Stages: messages processed as gated subscribers see it."""
    def commit(self) -> None:
        """Stages: publish that every message received so far is processed."""
    def upstream(self) -> list[tuple[str, int | None]]:
        """Each upstream stage with its published progress (None: absent)."""
    @property
    def position(self) -> int:
        """Sequence number of the next message this subscriber reads."""
    @property
    def start_sequence(self) -> int: ...
    @property
    def received(self) -> int: ...
    @property
    def lost(self) -> int:
        """Messages skipped by lapping or lost with a dead producer;
        received + lost == position - start_sequence."""
    @property
    def evicted(self) -> bool:
        """Whether this subscriber was evicted from its bounded ring."""
    @property
    def lag(self) -> int: ...
    @property
    def publisher_pid(self) -> int: ...
    @property
    def publisher_alive(self) -> bool: ...
    @property
    def publisher_closed(self) -> bool: ...
    @property
    def generation(self) -> int: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> Message: ...

class SubscriberGroup:
    """One subscriber shared by named consumers; see ``ringcast.SubscriberGroup``."""

    def __new__(cls, subscriber: Subscriber, consumers: list[str], buffer: int) -> Self:
        """Takes ``subscriber`` over (it reads as closed from then on)."""
    @property
    def name(self) -> str: ...
    @property
    def dtype(self) -> np.dtype[Any] | None: ...
    @property
    def consumers(self) -> tuple[str, ...]: ...
    @property
    def buffer(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    @property
    def start_sequence(self) -> int: ...
    @property
    def received(self) -> int: ...
    @property
    def lost(self) -> int: ...
    @property
    def position(self) -> int: ...
    @property
    def lag(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...

class GroupConsumer:
    """One consumer of a native ``SubscriberGroup``."""

    def __new__(cls, group: SubscriberGroup, name: str) -> Self: ...
    @property
    def name(self) -> str: ...
    def try_recv(self) -> Message | None: ...
    def recv(self, timeout: float | None = None) -> Message: ...
    def recv_batch(
        self, max_n: int, timeout: float | None = 0.0
    ) -> npt.NDArray[Any] | list[bytes]: ...
    def _poll(self, max_n: int | None = None) -> Any:
        """The next message or up to ``max_n``, without waiting; None if none."""
    def _wait_ready(self, timeout: float | None) -> bool:
        """Waits until a message is buffered for this consumer; takes nothing."""
    @property
    def received(self) -> int: ...
    @property
    def position(self) -> int: ...
    @property
    def lost(self) -> int: ...
    @property
    def lag(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    @property
    def ended(self) -> bool: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> Message: ...

class LatencyHistogram:
    """Latencies in nanoseconds as an HdrHistogram; ``encode()`` /
    ``to_hdrh()`` interoperate with the ``hdrhistogram`` package."""

    def __new__(
        cls, *, highest: float = 60.0, digits: int = 3, expected_interval: float | None = None
    ) -> Self: ...
    def record(self, value_ns: int) -> None: ...
    def record_many(self, values_ns: npt.NDArray[np.int64]) -> None:
        """Many latencies (ns) at once; negative ones count in ``negative``."""
    def record_since(self, sent_ns: int, now_ns: int | None = None) -> None: ...
    def take_interval(self) -> LatencyHistogram: ...
    def add(self, other: LatencyHistogram | str | bytes) -> None: ...
    def encode(self) -> str: ...
    @staticmethod
    def decode(encoded: str, *, digits: int | None = None) -> LatencyHistogram: ...
    def to_hdrh(self) -> Any:
        """An ``hdrh.histogram.HdrHistogram`` with the same values."""
    def value_at_percentile(self, percentile: float) -> int: ...
    def counts_at_or_below(self, values_ns: list[int]) -> list[int]:
        """For each value (ns), how many recorded values are at or below it
        (the bucket holding the value counts whole)."""
    def percentile_distribution(
        self, unit: Literal["ns", "us", "ms", "s"] = "us", ticks: int = 5
    ) -> str: ...
    def reset(self) -> None: ...
    @property
    def count(self) -> int: ...
    def __len__(self) -> int: ...
    @property
    def min(self) -> int: ...
    @property
    def max(self) -> int: ...
    @property
    def mean(self) -> float: ...
    @property
    def stdev(self) -> float: ...
    @property
    def saturated(self) -> int: ...
    @property
    def negative(self) -> int: ...
    @property
    def highest(self) -> int: ...
    @property
    def digits(self) -> int: ...

class IntervalLog:
    """An HdrHistogram interval log (read by ``hdrh.log.HistogramLogReader``)."""

    def __new__(
        cls,
        path: str | PathLike[str],
        *,
        start_unix_ns: int | None = None,
        comment: str = "ringcast latency, values in ns",
    ) -> Self: ...
    def append(
        self, histogram: LatencyHistogram, start: float, length: float, tag: str | None = None
    ) -> None: ...
    @property
    def path(self) -> Path: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

def bench_publish(
    publisher: Publisher, *, size: int, rate: float | None, start_ns: int, end_ns: int
) -> dict[str, int]: ...
def bench_read(subscriber: Subscriber, *, deadline_ns: int) -> dict[str, Any]: ...

# -- NASDAQ ITCH 5.0 and MoldUDP64 (ringcast.itch is the API) ---------------

def itch_types() -> list[dict[str, Any]]: ...
def itch_read(
    path: str, *, records: bool = True, max_errors: int = 20, types: list[str] | None = None
) -> dict[str, Any]: ...
def itch_generate(
    path: str, *, seed: int, messages: int, symbols: int | None = None, halts: int | None = None
) -> int: ...
def feed_record_descrs() -> list[tuple[str, str]]: ...
def feed_send(
    path: str,
    groups: list[str],
    *,
    interface: str = "127.0.0.1",
    ttl: int = 0,
    rate: float | None = None,
    speed: float | None = None,
    max_payload: int = 1400,
    heartbeat: float = 1.0,
    retransmit: str | None = None,
    linger: float = 0.0,
    drops: list[Any] | None = None,
    drop_seed: int = 1,
    session: str = "RINGCAST",
    ready: Any = None,
) -> dict[str, Any]: ...
def feed_replay(
    pcap: str,
    groups: list[str],
    *,
    stream: str | None = None,
    interface: str = "127.0.0.1",
    ttl: int = 0,
    rate: float | None = None,
    speed: float | None = None,
    drops: list[Any] | None = None,
    drop_seed: int = 1,
    ready: Any = None,
) -> dict[str, Any]: ...
def pcap_read(path: str) -> dict[str, Any]: ...
def feed_handle(
    groups: list[str],
    *,
    bus: str,
    dir: str | None = None,
    capacity: int = 65536,
    stream_capacity: int = 262144,
    bounded: bool = False,
    types: list[str] | None = None,
    interface: str = "127.0.0.1",
    retransmit: str | None = None,
    arbitration: float = 0.001,
    request_timeout: float = 0.02,
    max_requests: int = 5,
    idle_timeout: float | None = None,
    session: str | None = None,
    receive_buffer: int = 67108864,
    capture: str | None = None,
    ready: Any = None,
    progress: Any = None,
    progress_every: float = 0.25,
) -> dict[str, Any]: ...
def feed_books(
    bus: str,
    *,
    dir: str | None = None,
    capacity: int = 65536,
    bounded: bool = False,
    ready: Any = None,
    progress: Any = None,
    progress_every: float = 0.25,
) -> dict[str, Any]: ...
def bridge_send(
    ring: str,
    channel: str,
    *,
    stream: int = 1001,
    dir: str | None = None,
    stage: str = "bridge",
    first: str = "oldest",
    batch: int = 1024,
    connect_timeout: float | None = None,
    linger: float = 1.0,
    follow: bool = False,
    aeron_dir: str | None = None,
    term_length: int | None = None,
    idle: str = "backoff",
    progress: Callable[[dict[str, Any]], object] | None = None,
    progress_every: float = 1.0,
) -> dict[str, Any]: ...
def bridge_check_channel(channel: str) -> str | None: ...
def bridge_recv(
    channel: str,
    *,
    stream: int = 1001,
    ring: str | None = None,
    dir: str | None = None,
    capacity: int | None = None,
    bounded: bool = False,
    until_end: bool = False,
    idle_timeout: float | None = None,
    aeron_dir: str | None = None,
    term_length: int | None = None,
    idle: str = "backoff",
    progress: Callable[[dict[str, Any]], object] | None = None,
    progress_every: float = 1.0,
) -> dict[str, Any]: ...
def journal_record(
    ring: str,
    journal: str,
    *,
    dir: str | None = None,
    stage: str = "journal",
    first: str = "oldest",
    segment_bytes: int = 268435456,
    segment_age: float | None = None,
    fsync: str | float | None = None,
    batch: int = 4096,
    follow: bool = False,
    progress: Callable[[dict[str, Any]], object] | None = None,
    progress_every: float = 1.0,
) -> dict[str, Any]: ...
def journal_replay(
    journal: str,
    ring: str,
    *,
    dir: str | None = None,
    speed: float | None = None,
    start: tuple[str, int] | None = None,
    until: tuple[str, int] | None = None,
    original_times: bool = False,
    capacity: int | None = None,
    bounded: bool | None = None,
    subscribers: int = 0,
    verify: bool = True,
    progress: Callable[[dict[str, Any]], object] | None = None,
    progress_every: float = 1.0,
) -> dict[str, Any]: ...
def journal_open(dir: str, check: bool = True) -> dict[str, Any]: ...
def journal_verify(dir: str) -> dict[str, Any]: ...
