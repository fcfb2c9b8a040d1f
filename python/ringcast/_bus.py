"""Typed topics: a bus names a family of rings, and a wildcard subscription
reads every ring of the family that matches, including ones created later.

A feed handler usually publishes several streams (quotes, trades, one per
venue...) and a strategy wants some of them without knowing in advance which
rings exist. The bus gives those streams one namespace (topic ``t`` of bus
``md`` is the ring ``md.t``, so ``ringcast list`` and ``ringcast info`` see
them as plain rings), and :class:`TopicSubscriber` turns many rings into one
fair, topic-labelled stream that waits without burning a core. Everything here
is built on :class:`Publisher` and :class:`Subscriber`; nothing new is stored
in the rings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import re
import threading
import time
import warnings
from typing import Any, Literal

import numpy as np

from . import _native, _schema
from ._api import (
    Publisher,
    StrPath,
    Subscriber,
    WaitStrategy,
    _check_bool,
    _check_wait,
    _deadline,
    _set_done,
    default_dir,
    list_rings,
)
from ._memory import ring_info
from .errors import (
    Evicted,
    IncompatibleVersion,
    InvalidArgument,
    InvalidName,
    PublisherExists,
    RingClosed,
    RingCorrupt,
    RingError,
    RingNotFound,
    RingPermissionError,
    RingWarning,
    SchemaMismatch,
    Timeout,
)

__all__ = ["Bus", "TopicInfo", "TopicSubscriber", "TopicSubscriberInfo"]

_MAX_RING_NAME = _native.MAX_NAME_LEN  # bytes
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
# A bus name leaves room for a dot and a topic of at least one character.
_BUS_RULE = f'use 1-{_MAX_RING_NAME - 2} characters from A-Z a-z 0-9 _ - (no dots), e.g. "md"'
_TOPIC_RULE = (
    "use letters, digits, '_' and '-' in tokens separated by single dots, e.g. "
    '"quotes" or "quotes.nyse"'
)
_PATTERN_RULE = (
    "use dot-separated tokens of letters, digits, '_' and '-', where a token may be '*' "
    "(exactly one token) and the last token may be '>' (one or more tokens), e.g. "
    '"quotes.*" or "quotes.>"'
)
# Errors that make a ring unreadable whoever asks: listing and wildcard
# subscriptions skip such a ring with a warning instead of failing as a whole.
_UNREADABLE = (RingCorrupt, IncompatibleVersion, RingPermissionError)


def _check_bus_name(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidName(f"a bus name is a str; {_BUS_RULE}; got {name!r}")
    if not _TOKEN.fullmatch(name) or len(name) > _MAX_RING_NAME - 2:
        raise InvalidName(f"invalid bus name {name!r}: {_BUS_RULE}")
    return name


def _topic_problem(topic: str) -> str | None:
    """Why ``topic`` is not a topic name, or None when it is one."""
    if not topic:
        return "it is empty"
    tokens = topic.split(".")
    if any(t in ("*", ">") for t in tokens):
        return "wildcards ('*', '>') only go in Bus.subscribe() and Bus.topics() patterns"
    if topic.startswith(".") or topic.endswith("."):
        return "it starts or ends with '.'"
    if "" in tokens:
        return "it has an empty token ('..')"
    if not all(_TOKEN.fullmatch(t) for t in tokens):
        return "it contains characters other than letters, digits, '.', '_' and '-'"
    return None


def _pattern_tokens(pattern: Any) -> tuple[str, ...]:
    """The tokens of a subscription pattern, checked."""
    if not isinstance(pattern, str):
        raise InvalidName(f"a topic pattern is a str; {_PATTERN_RULE}; got {pattern!r}")
    tokens = tuple(pattern.split("."))
    for i, t in enumerate(tokens):
        if t == ">" and i != len(tokens) - 1:
            raise InvalidName(
                f"invalid topic pattern {pattern!r}: '>' may only be the last token; "
                f"{_PATTERN_RULE}"
            )
        if t not in ("*", ">") and not _TOKEN.fullmatch(t):
            raise InvalidName(f"invalid topic pattern {pattern!r}: {_PATTERN_RULE}")
    return tokens


def _matches(tokens: tuple[str, ...], topic: str) -> bool:
    """Whether ``topic`` matches a pattern (NATS rules on dot-separated tokens)."""
    parts = topic.split(".")
    for i, want in enumerate(tokens):
        if want == ">":
            return len(parts) > i
        if i >= len(parts) or (want != "*" and want != parts[i]):
            return False
    return len(parts) == len(tokens)


def _check_topic_dtype(found: np.dtype[Any] | None, want: np.dtype[Any], where: str) -> None:
    """Raises SchemaMismatch naming the topic and both dtypes when a topic is
    not of the dtype the reader expects."""
    if found is None:
        raise SchemaMismatch(
            f"{where} carries raw bytes messages but records of dtype {want} were expected; "
            "subscribe without dtype=, or have its publisher create it with that dtype"
        )
    if found != want:
        raise SchemaMismatch(
            f"{where} holds records of dtype {found} but dtype {want} was expected; subscribe "
            "with the topic's dtype, or without dtype="
        )


def _describe_dtype(dtype: np.dtype[Any] | None, slot_size: int) -> str:
    if dtype is None:
        return f"raw bytes messages (slot_size={slot_size})"
    return f"records of dtype {dtype}"


@dataclasses.dataclass(frozen=True)
class TopicSubscriberInfo:
    """One subscriber of a topic, as the ring records it: enough to see who
    reads a topic, how far behind it is, and whether it loses messages."""

    pid: int
    alive: bool
    """Whether the subscriber's process still runs (a dead one holds its record until reclaimed)."""
    state: str
    """The record's state, e.g. ``"active"`` (``"evicted"`` on bounded rings)."""
    position: int
    """Sequence number of the next message it reads."""
    received: int
    lost: int
    stage: str | None = None
    """The subscriber's stage name, when the ring records stage names."""
    processed: int | None = None
    """Messages its stage finished, when the ring records stages."""


@dataclasses.dataclass(frozen=True)
class TopicInfo:
    """What a topic is and who uses it, read from its ring without attaching,
    so that tools and dashboards can watch a bus without taking part in it."""

    topic: str
    ring: str
    """The ring's name (``bus.topic``), for ``ringcast info``."""
    dtype: np.dtype[Any] | None
    """The records' dtype; None when the topic carries raw bytes."""
    slot_size: int
    capacity: int
    bounded: bool
    producers: str
    """``"one"`` or ``"many"``."""
    timestamps: bool
    published: int
    """Messages published so far (the ring's cursor)."""
    publisher_pid: int
    publisher_alive: bool
    publisher_closed: bool
    subscribers: tuple[TopicSubscriberInfo, ...]


class Bus:
    """A namespace of topics in one ring directory.

    Topic ``t`` of bus ``md`` is the ring ``md.t``: the bus adds no files of
    its own, so every ring tool keeps working, and a bus is only a name
    (creating one touches nothing). Bus names have no dots, which keeps
    ``md.quotes.nyse`` unambiguously topic ``quotes.nyse`` of bus ``md``.
    """

    __slots__ = ("_dir", "_name")

    def __init__(self, name: str, dir: StrPath | None = None) -> None:
        """``dir`` is the ring directory (default: :func:`ringcast.default_dir`)."""
        self._name = _check_bus_name(name)
        if dir is not None and (not isinstance(dir, str | os.PathLike) or not os.fspath(dir)):
            raise InvalidArgument(
                f"dir must be a ring directory path (str or os.PathLike) or None, got {dir!r}"
            )
        self._dir = default_dir(dir)

    @property
    def name(self) -> str:
        """The bus name: the first token of every ring name of the bus."""
        return self._name

    @property
    def dir(self) -> str:
        """The ring directory the topics live in, resolved when the bus was made."""
        return self._dir

    def __repr__(self) -> str:
        return f"Bus({self._name!r}, dir={self._dir!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bus):
            return NotImplemented
        return (self._name, self._dir) == (other._name, other._dir)

    def __hash__(self) -> int:
        return hash((self._name, self._dir))

    def ring_name(self, topic: str) -> str:
        """The ring that holds ``topic`` (what ``ringcast info`` takes)."""
        if not isinstance(topic, str):
            raise InvalidName(f"a topic name is a str; {_TOPIC_RULE}; got {topic!r}")
        problem = _topic_problem(topic)
        if problem is not None:
            raise InvalidName(f"invalid topic name {topic!r}: {problem}; {_TOPIC_RULE}")
        ring = f"{self._name}.{topic}"
        if len(ring) > _MAX_RING_NAME:
            raise InvalidName(
                f"topic name {topic!r} is too long for bus {self._name!r}: bus name, dot and "
                f"topic together may have at most {_MAX_RING_NAME} characters"
            )
        return ring

    def _where(self, topic: str) -> str:
        return f"topic {topic!r} of bus {self._name!r} (ring {self._name}.{topic})"

    # -- publishing -------------------------------------------------------

    def publisher(
        self,
        topic: str,
        *,
        dtype: Any = None,
        slot_size: int | None = None,
        capacity: int = 1 << 16,
        **kwargs: Any,
    ) -> Publisher:
        """Become the publisher of ``topic``, creating it if needed.

        A feed handler that restarts must find its topics as it left them, so
        an existing topic of the same layout is taken over and its sequence
        continues (a live publisher is still refused with
        :class:`PublisherExists`). A topic of another layout is never
        reinterpreted: :class:`SchemaMismatch` names the topic, the dtype it
        holds and the dtype requested. Other keyword arguments (``bounded``,
        ``producers``, ``timestamps``, ``wait``, memory options...) are those of
        :meth:`Publisher.create`.
        """
        ring = self.ring_name(topic)
        for key in ("name", "dir", "exist_ok"):
            if key in kwargs:
                raise InvalidArgument(
                    f"{key}= is not a Bus.publisher() argument: the bus decides the ring's "
                    "name and directory and always takes an existing topic over; give "
                    "dir= to Bus() instead"
                )
        try:
            return Publisher.create(
                ring,
                dtype=dtype,
                slot_size=slot_size,
                capacity=capacity,
                dir=self._dir,
                exist_ok=True,
                **kwargs,
            )
        except (SchemaMismatch, PublisherExists) as e:
            # The native message speaks of ring layouts; say which topic and
            # which dtypes instead. A layout difference wins over a live
            # publisher: stopping that publisher would not make it work.
            mismatch = self._layout_mismatch(topic, dtype, slot_size, capacity, kwargs)
            if mismatch is not None:
                raise mismatch from e
            raise type(e)(f"topic {topic!r} of bus {self._name!r}: {e}") from e

    def _layout_mismatch(
        self,
        topic: str,
        dtype: Any,
        slot_size: int | None,
        capacity: int,
        kwargs: dict[str, Any],
    ) -> SchemaMismatch | None:
        """A SchemaMismatch saying how the existing topic differs from what
        was requested, or None when it does not differ (or is gone)."""
        ring = f"{self._name}.{topic}"
        try:
            info = ring_info(ring, self._dir)
            have = _schema.decode(info["schema"].encode(), repr(ring))
        except RingError:
            return None
        want = None if dtype is None else _schema.check_dtype(dtype)
        want_slot = want.itemsize if want is not None else slot_size
        fix = (
            f"or, once its publisher and subscribers are gone, remove {info['path']} so that "
            "the topic is created anew"
        )
        if want != have or (want is None and want_slot != info["slot_size"]):
            return SchemaMismatch(
                f"{self._where(topic)} holds {_describe_dtype(have, info['slot_size'])} but "
                f"{_describe_dtype(want, want_slot or 0)} were requested; publish with the "
                f"topic's {'dtype' if have is not None else 'slot_size'}, {fix}"
            )
        bounded = _check_bool("bounded", kwargs.get("bounded", False))
        producers = kwargs.get("producers", "one")
        requested: dict[str, Any] = {
            "capacity": capacity,
            "bounded": bounded,
            "producers": producers,
            "timestamps": _check_bool("timestamps", kwargs.get("timestamps", False)),
            "heads_apart": _check_bool("heads_apart", kwargs.get("heads_apart", False)),
        }
        if bounded:
            requested["watermark"] = kwargs.get("watermark") or capacity
        if producers == "many":
            requested["max_producers"] = (
                kwargs.get("max_producers") or _native.DEFAULT_MAX_PRODUCERS
            )
        if kwargs.get("max_subscribers") is not None:
            requested["max_subscribers"] = kwargs["max_subscribers"]
        differ = [k for k, v in requested.items() if info.get(k) != v]
        if not differ:
            return None
        holds = ", ".join(f"{k}={info.get(k)!r}" for k in differ)
        asked = ", ".join(f"{k}={requested[k]!r}" for k in differ)
        return SchemaMismatch(
            f"{self._where(topic)} has {holds} but {asked} was requested (the dtype is the "
            f"same); pass the topic's {', '.join(differ)}, {fix}"
        )

    # -- one topic ----------------------------------------------------------

    def subscriber(self, topic: str, *, dtype: Any = None, **kwargs: Any) -> Subscriber:
        """Read one topic, as :meth:`Subscriber.attach` reads one ring.

        ``dtype``, when given, must be the topic's (else :class:`SchemaMismatch`
        naming the topic and both dtypes); other keyword arguments (``start``,
        ``wait``, memory options...) are those of :meth:`Subscriber.attach`.
        A missing topic raises :class:`RingNotFound` listing the topics the
        bus does have, since a typo is the usual cause.
        """
        ring = self.ring_name(topic)
        if "dir" in kwargs:
            raise InvalidArgument(
                "dir= is not a Bus.subscriber() argument: the bus decides the directory; "
                "give dir= to Bus() instead"
            )
        want = None if dtype is None else _schema.check_dtype(dtype)
        try:
            sub = Subscriber.attach(ring, dir=self._dir, **kwargs)
        except RingNotFound as e:
            raise RingNotFound(self._not_found(topic)) from e
        if want is not None:
            try:
                _check_topic_dtype(sub.dtype, want, self._where(topic))
            except BaseException:
                sub.close()
                raise
        return sub

    def _topic_names(self) -> list[str]:
        prefix = self._name + "."
        return [
            r[len(prefix) :]
            for r in list_rings(self._dir)
            if r.startswith(prefix) and _topic_problem(r[len(prefix) :]) is None
        ]

    def _not_found(self, topic: str) -> str:
        names = self._topic_names()
        there = (
            f"its topics: {', '.join(names)}"
            if names
            else "the bus has no topics there yet: start the topic's publisher first, or give "
            "Bus(dir=...) (or $RINGCAST_DIR) if its rings live elsewhere"
        )
        return (
            f"bus {self._name!r} has no topic {topic!r} (no ring {self._name}.{topic} in "
            f"{self._dir}); {there}"
        )

    # -- many topics --------------------------------------------------------

    def topics(self, pattern: str | None = None) -> list[TopicInfo]:
        """The bus's topics (those matching ``pattern``, if given), sorted by
        name, with layout, publisher and subscribers. Reads only: listing
        never attaches, so it cannot disturb a bounded topic's publisher.

        A topic removed while listing is left out; one whose ring cannot be
        read (corrupt, newer format, no permission) is left out with a
        :class:`RingWarning` naming it, so one bad file does not hide the rest.
        """
        tokens = None if pattern is None else _pattern_tokens(pattern)
        out = []
        for topic in self._topic_names():
            if tokens is not None and not _matches(tokens, topic):
                continue
            ring = f"{self._name}.{topic}"
            try:
                info = ring_info(ring, self._dir)
                dtype = _schema.decode(info["schema"].encode(), repr(ring))
            except RingNotFound:
                continue
            except _UNREADABLE as e:
                warnings.warn(
                    f"skipping topic {topic!r} of bus {self._name!r}: {e}",
                    RingWarning,
                    stacklevel=2,
                )
                continue
            pub = info["publisher"]
            out.append(
                TopicInfo(
                    topic=topic,
                    ring=ring,
                    dtype=dtype,
                    slot_size=info["slot_size"],
                    capacity=info["capacity"],
                    bounded=info["bounded"],
                    producers=info["producers"],
                    timestamps=info["timestamps"],
                    published=info["cursor"],
                    publisher_pid=pub["pid"],
                    publisher_alive=pub["alive"],
                    publisher_closed=pub["closed"],
                    subscribers=tuple(
                        TopicSubscriberInfo(
                            pid=s["pid"],
                            alive=s["alive"],
                            state=s["state"],
                            position=s["position"],
                            received=s["count"],
                            lost=s["lost"],
                            stage=s.get("stage"),
                            processed=s.get("processed"),
                        )
                        for s in info["subscribers"]
                    ),
                )
            )
        return out

    def subscribe(
        self,
        pattern: str,
        *,
        dtype: Any = None,
        start: Literal["latest", "oldest"] | int = "latest",
        wait: WaitStrategy | None = None,
        rescan: float | None = 0.1,
    ) -> TopicSubscriber:
        """Read every topic matching ``pattern`` as one stream of ``(topic,
        message)`` pairs, including topics created later.

        Patterns follow NATS on dot-separated tokens: ``*`` matches exactly
        one token, a final ``>`` one or more (``quotes.*`` matches
        ``quotes.nyse`` but not ``quotes.nyse.open``; ``quotes.>`` matches
        both); a pattern without wildcards is one topic, which may not exist
        yet. ``dtype``, when given, must be every matched topic's dtype.
        ``start`` applies to the topics that exist now; a topic that appears
        later is read from its oldest message, since all of it was published
        after this call. New topics are looked for at most every ``rescan``
        seconds while receiving (None: only the topics that exist now).
        ``wait`` says how blocking receives wait, as for a
        :class:`Subscriber`.
        """
        return TopicSubscriber(self, pattern, dtype=dtype, start=start, wait=wait, rescan=rescan)


class _Topic:
    """One attached topic: its subscriber, and what earlier subscribers of the
    same topic (before an eviction, or before its ring was replaced) counted."""

    __slots__ = ("base_lost", "base_received", "file_id", "sub", "topic")

    def __init__(self, topic: str, sub: Subscriber) -> None:
        self.topic = topic
        self.sub = sub
        self.file_id = _file_id(os.fspath(sub.path))
        self.base_received = 0
        self.base_lost = 0

    def counts(self) -> tuple[int, int]:
        """(received, lost) over every subscriber the topic had."""
        if self.sub.closed:
            return self.base_received, self.base_lost
        return self.base_received + self.sub.received, self.base_lost + self.sub.lost

    def retire(self) -> None:
        """Closes the subscriber, keeping its counts."""
        self.base_received, self.base_lost = self.counts()
        self.sub.close()

    def replace(self, sub: Subscriber) -> None:
        self.retire()
        self.sub = sub
        self.file_id = _file_id(os.fspath(sub.path))


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class TopicSubscriber:
    """Every topic of a bus that matches a pattern, read as one stream of
    ``(topic, message)`` pairs. Make one with :meth:`Bus.subscribe`.

    Delivery is round-robin over the topics that have messages, so a busy
    topic never starves a quiet one; order within a topic is the topic's
    own. Blocking receives spin briefly (as ``wait`` says) and then sleep on
    the topics' readiness descriptors, so an idle subscriber costs no CPU.
    A topic whose publisher closed it and that has been read to the end is
    no longer polled but stays in :attr:`topics` and the counters (and is
    read again if a publisher reopens it). Iteration, sync or async, ends
    once every attached topic has ended and no new one appeared. A bounded
    topic that evicts this subscription for falling behind raises
    :class:`Evicted` once; the topic is then read on from where it stopped,
    what was overwritten meanwhile counting as lost.

    Use one TopicSubscriber from one thread (or one task); :meth:`close` may
    be called from anywhere and wakes a receive that is waiting.
    """

    def __init__(
        self,
        bus: Bus,
        pattern: str,
        *,
        dtype: Any = None,
        start: Literal["latest", "oldest"] | int = "latest",
        wait: WaitStrategy | None = None,
        rescan: float | None = 0.1,
    ) -> None:
        """Prefer :meth:`Bus.subscribe`, which documents the arguments."""
        if not isinstance(bus, Bus):
            raise InvalidArgument(f"bus must be a ringcast.Bus, got {bus!r}")
        self._tokens = _pattern_tokens(pattern)
        if not (
            start in ("latest", "oldest")
            or (isinstance(start, int | np.integer) and not isinstance(start, bool) and start >= 0)
        ):
            raise InvalidArgument(
                f'start must be "latest", "oldest" or a sequence number >= 0, got {start!r}'
            )
        _check_wait(wait)
        if rescan is not None and (
            isinstance(rescan, bool)
            or not isinstance(rescan, int | float | np.integer | np.floating)
            or not 0 < rescan < 1e9
        ):
            raise InvalidArgument(
                "rescan must be a positive number of seconds (how often to look for new "
                f"topics) or None (never look), got {rescan!r}"
            )
        self._bus = bus
        self._pattern = pattern
        self._dtype = None if dtype is None else _schema.check_dtype(dtype)
        self._wait = wait
        self._rescan = None if rescan is None else float(rescan)
        self._next_scan = math.inf
        self._topics: dict[str, _Topic] = {}
        self._active: list[_Topic] = []  # polled, in round-robin order
        self._ended: list[_Topic] = []
        self._refused: set[str] = set()  # other dtype, or unreadable: left out
        self._next = 0
        self._lock = threading.Lock()
        self._waiting = False
        self._close_requested = False
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._final: tuple[dict[str, int], dict[str, int]] | None = None
        try:
            self._scan(start=start, initial=True)
        except BaseException:
            self._close_now()
            raise

    # -- what it reads ------------------------------------------------------

    @property
    def bus(self) -> Bus:
        """The bus the topics belong to."""
        return self._bus

    @property
    def pattern(self) -> str:
        """The subscription pattern."""
        return self._pattern

    @property
    def topics(self) -> list[str]:
        """Names of the attached topics (ended ones included), sorted."""
        return sorted(self._topics)

    @property
    def received(self) -> dict[str, int]:
        """Messages delivered so far, per topic."""
        if self._final is not None:
            return dict(self._final[0])
        return {t: e.counts()[0] for t, e in sorted(self._topics.items())}

    @property
    def lost(self) -> dict[str, int]:
        """Messages lost so far (lapped, or lost with a dead producer), per topic."""
        if self._final is not None:
            return dict(self._final[1])
        return {t: e.counts()[1] for t, e in sorted(self._topics.items())}

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._final is not None

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._topics)} topics"
        return f"<TopicSubscriber bus={self._bus.name!r} pattern={self._pattern!r} {state}>"

    # -- finding topics -----------------------------------------------------

    def _scan(self, *, start: Literal["latest", "oldest"] | int, initial: bool) -> None:
        """Attaches the matching topics not attached yet and sorts the attached
        ones into active and ended."""
        if self._rescan is not None:
            self._next_scan = time.monotonic() + self._rescan
        bus = self._bus
        if not initial:
            self._sort_ended()
        for topic in bus._topic_names():
            if topic in self._topics or topic in self._refused or not _matches(self._tokens, topic):
                continue
            entry = self._attach(topic, start, initial)
            if entry is not None:
                self._topics[topic] = entry
                self._active.append(entry)

    def _attach(
        self, topic: str, start: Literal["latest", "oldest"] | int, initial: bool
    ) -> _Topic | None:
        """Attaches ``topic``; None when it vanished or cannot be read. A topic
        that fails later (another dtype, ...) is raised once and left out, so
        that the topics already read go on."""
        try:
            return _Topic(topic, self._open(topic, start))
        except RingNotFound:
            return None  # removed since it was listed
        except _UNREADABLE as e:
            self._refused.add(topic)
            warnings.warn(
                f"skipping topic {topic!r} of bus {self._bus.name!r} (pattern "
                f"{self._pattern!r}): {e}",
                RingWarning,
                stacklevel=2,
            )
            return None
        except RingError:
            if not initial:
                self._refused.add(topic)
            raise

    def _sort_ended(self) -> None:
        """Moves topics that ended out of the polled set, and back in when a
        publisher reopened them. An ended topic whose ring was removed and
        created anew is read again from the new ring's oldest message."""
        still: list[_Topic] = []
        for e in self._active:
            (self._ended if e.sub.ended else still).append(e)
        self._active = still
        ended: list[_Topic] = []
        mismatch: SchemaMismatch | None = None
        for e in self._ended:
            if not e.sub.ended:
                self._active.append(e)
                continue
            now = _file_id(os.fspath(e.sub.path))
            if now is None or now == e.file_id:
                ended.append(e)
                continue
            try:
                sub = self._open(e.topic, "oldest")
            except SchemaMismatch as err:
                e.file_id = now  # not retried for this file; raised once
                mismatch = err
                ended.append(e)
                continue
            except RingError:
                ended.append(e)  # retried at the next scan
                continue
            e.replace(sub)
            self._active.append(e)
        self._ended = ended
        if mismatch is not None:
            raise mismatch

    def _open(self, topic: str, start: Literal["latest", "oldest"] | int) -> Subscriber:
        """A subscriber of ``topic``, checked against the expected dtype."""
        bus = self._bus
        sub = Subscriber.attach(bus.ring_name(topic), dir=bus.dir, start=start, wait=self._wait)
        if self._dtype is not None:
            try:
                _check_topic_dtype(sub.dtype, self._dtype, bus._where(topic))
            except BaseException:
                sub.close()
                raise
        return sub

    def _scan_if_due(self) -> None:
        if time.monotonic() >= self._next_scan:
            self._scan(start="oldest", initial=False)

    def _finished(self) -> bool:
        """Whether every attached topic ended and a last look found no new one."""
        if self._active or not self._topics:
            return False
        self._sort_ended()
        if self._rescan is not None and not self._active:
            self._scan(start="oldest", initial=False)
        return not self._active

    # -- receiving ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._final is not None:
            raise RingClosed(f"topic subscriber {self._pattern!r} is closed; subscribe again")

    def _poll(self) -> tuple[str, Any] | None:
        """One round-robin pass: the next message of the first topic, after
        the one served last, that has a message."""
        active = self._active
        n = len(active)
        first = self._next
        for k in range(n):
            i = (first + k) % n
            entry = active[i]
            try:
                msg = entry.sub.try_recv()
            except Evicted as e:
                raise self._rejoin(i, entry) from e
            if msg is not None:
                self._next = i + 1
                return entry.topic, msg
        return None

    def _rejoin(self, index: int, entry: _Topic) -> Evicted:
        """Attaches an evicted topic again where its subscriber stopped (or at
        the oldest message still there), and the error that tells the caller,
        once, that it fell behind."""
        position = entry.sub.position
        try:
            sub = self._open(entry.topic, "oldest")
            if sub.start_sequence < position:  # nothing unread was overwritten
                sub.close()
                sub = self._open(entry.topic, position)
            skipped = max(0, sub.start_sequence - position)
            entry.replace(sub)
            entry.base_lost += skipped
            then = (
                f"it is read again from sequence {sub.start_sequence} on, and the {skipped} "
                "messages overwritten meanwhile count as lost"
            )
        except RingError as again:
            del self._active[index]
            entry.retire()
            then = f"attaching to it again failed, so it is no longer read: {again}"
        return Evicted(
            f"{self._bus._where(entry.topic)} evicted this subscription for holding its "
            f"bounded publisher back longer than the topic's liveness_timeout; {then}"
        )

    def try_recv(self) -> tuple[str, Any] | None:
        """The next ``(topic, message)``, or None when no topic has one. Never blocks."""
        self._check_open()
        if time.monotonic() >= self._next_scan:
            self._scan(start="oldest", initial=False)
        return self._poll()

    def recv(self, timeout: float | None = None) -> tuple[str, Any]:
        """The next ``(topic, message)``, waiting up to ``timeout`` seconds
        (None: forever). Raises :class:`Timeout`, or :class:`RingClosed` once
        every attached topic has ended (or the subscriber was closed).

        The wait is one native wait on every topic at once, as ``wait``
        says: ``busy_spin`` and ``yielding`` poll every topic until a message
        comes, ``adaptive`` polls for its ``spin`` + ``yield_`` looks at all
        the topics and ``park`` not at all before sleeping until a topic has
        a message."""
        deadline = _deadline(timeout)
        got = self.try_recv()
        while got is None:
            got, limit = self._look(deadline, timeout)
            if got is None:
                self._sleep(limit)
        return got

    def _look(
        self, deadline: float | None, timeout: float | None
    ) -> tuple[tuple[str, Any] | None, float]:
        """One look at every topic: the next ``(topic, message)``, else how
        long the caller may sleep before looking again (inf: no limit).
        Raises at the end of the stream and at the deadline."""
        self._scan_if_due()
        if self._finished():
            raise self._ended_error()
        got = self._poll()
        if got is not None:
            return got, 0.0
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise self._timeout(timeout)
        return None, min(math.inf if deadline is None else deadline, self._next_scan) - now

    def _timeout(self, timeout: float | None) -> Timeout:
        return Timeout(f"no message on topics {self._pattern!r} within {timeout}s")

    def _ended_error(self) -> RingClosed:
        return RingClosed(
            f"every topic matching {self._pattern!r} ({', '.join(self.topics)}) was closed by "
            "its publisher and has been read to the end"
        )

    def _arm(self) -> list[_Topic] | None:
        """Arms the readiness descriptor of every active topic; None when a
        topic turned out to have ended (the caller looks again instead of
        sleeping: an ended topic's descriptor would wake it at once)."""
        armed: list[_Topic] = []
        for e in self._active:
            if e.sub.ended:
                for a in armed:
                    a.sub._clear_readiness()
                self._sort_ended()
                return None
            e.sub._arm_readiness()
            armed.append(e)
        return armed

    def _begin_wait(self) -> None:
        """From here until _end_wait, close() only asks the waiter to close."""
        with self._lock:
            self._check_open()
            self._waiting = True

    def _end_wait(self, armed: list[_Topic]) -> None:
        with self._lock:
            self._waiting = False
            close = self._close_requested
        for e in armed:
            if not e.sub.closed:
                e.sub._clear_readiness()
        try:
            os.eventfd_read(self._wake_fd)
        except BlockingIOError:
            pass
        if close:
            self._close_now()

    def _sleep(self, seconds: float) -> None:
        """Waits until a topic may have a message, close() is called, or
        ``seconds`` (inf: no limit) pass."""
        self._begin_wait()
        try:
            if any(e.sub.ended for e in self._active):
                # (an ended topic would end the wait at once: look again)
                self._sort_ended()
            else:
                _native.wait_any(
                    [e.sub for e in self._active],
                    None if math.isinf(seconds) else max(0.0, seconds),
                    self._wait,
                    lambda: self._close_requested,
                )
        finally:
            self._end_wait([])
        self._check_open()

    def __iter__(self) -> TopicSubscriber:
        return self

    def __next__(self) -> tuple[str, Any]:
        """The next ``(topic, message)``; the iteration ends once every
        attached topic has ended (or the subscriber was closed)."""
        try:
            return self.recv()
        except RingClosed:
            raise StopIteration from None

    # -- asyncio --------------------------------------------------------------

    async def recv_async(self, timeout: float | None = None) -> tuple[str, Any]:
        """The next ``(topic, message)``, awaiting it up to ``timeout`` seconds
        (None: forever) without blocking the event loop or spending CPU while
        idle. Raises :class:`Timeout`, or :class:`RingClosed` once every
        attached topic has ended (or the subscriber was closed)."""
        deadline = _deadline(timeout)
        got = self.try_recv()
        if got is not None:
            return got
        if self._waiting:
            raise RuntimeError(
                f"another task is already awaiting topic subscriber {self._pattern!r}; "
                "subscribe once per task"
            )
        loop = asyncio.get_running_loop()
        while True:
            got, limit = self._look(deadline, timeout)
            if got is not None:
                return got
            self._begin_wait()
            armed: list[_Topic] = []
            fds: list[int] = []
            try:
                found = self._arm()
                if found is not None:
                    armed = found
                    ready = loop.create_future()
                    for fd in (self._wake_fd, *(e.sub._readiness_fd() for e in armed)):
                        loop.add_reader(fd, _set_done, ready)
                        fds.append(fd)
                    async with asyncio.timeout(None if math.isinf(limit) else limit):
                        await ready
            except TimeoutError:
                pass
            finally:
                for fd in fds:
                    loop.remove_reader(fd)
                self._end_wait(armed)
            self._check_open()

    def __aiter__(self) -> TopicSubscriber:
        return self

    async def __anext__(self) -> tuple[str, Any]:
        """As ``__next__``, awaiting instead of blocking."""
        try:
            return await self.recv_async()
        except RingClosed:
            raise StopAsyncIteration from None

    # -- closing ----------------------------------------------------------------

    def close(self) -> None:
        """Detach from every topic. Idempotent. A receive waiting in another
        thread or task is woken and raises :class:`RingClosed`; the counters
        keep their final values."""
        with self._lock:
            if self._final is not None:
                return
            if self._waiting:
                self._close_requested = True
                os.eventfd_write(self._wake_fd, 1)
                return
        self._close_now()

    def _close_now(self) -> None:
        with self._lock:
            if self._final is not None:
                return
            counts: tuple[dict[str, int], dict[str, int]] = ({}, {})
            for t, e in sorted(self._topics.items()):
                counts[0][t], counts[1][t] = e.counts()
                e.sub.close()
            self._final = counts
            self._active = []
            self._ended = []
            os.close(self._wake_fd)

    def __enter__(self) -> TopicSubscriber:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # The subscribers free themselves; the wake-up descriptor is ours.
        if getattr(self, "_final", True) is None:
            try:
                os.close(self._wake_fd)
            except OSError:
                pass
