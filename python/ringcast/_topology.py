"""Topologies of stage processes connected by rings: :class:`Pipeline` and :class:`Diamond`.

Both are thin builders over one mechanism, :class:`Topology`: a list of
stage specifications, each naming the stage whose output ring it reads (its
*upstream*) and the stages it is gated *after* on that ring. Every stage runs
in its own process, publishes into its own ring (``"<topology>.<stage>"``),
and attaches to its upstream's ring as a named stage, so that

* gated readers (``after=``) see a message only once every named stage has
  processed it (the Disruptor's dependency barrier, across processes), and
* a restarted stage resumes where its predecessor stopped processing
  (``start="resume"``) and takes its output ring over (``exist_ok=True``
  continues the sequence), so downstream stages never notice the restart
  beyond a delay.

The parent supervises: a thread watches every stage's process sentinel and
result pipe, so a stage that raises or is killed is seen within milliseconds;
the policy (``on_failure``) then stops the topology or restarts the stage.

Start-up is a handshake so that a bounded topology loses nothing: every stage
creates its output ring, then (once all rings exist) every stage attaches to
its input at sequence 0 and runs its ``setup``, and only when all are ready is
the source told to begin.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import importlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import re
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from . import _native, _schema
from ._api import Publisher, Subscriber, WaitStrategy, default_dir
from ._memory import pin_thread, ring_info
from ._native import LatencyHistogram
from .errors import (
    CpuUnavailable,
    InvalidArgument,
    PublisherDied,
    RingClosed,
    RingError,
    RingExists,
    RingNotFound,
    SchemaMismatch,
    StageFailed,
    Timeout,
)

__all__ = ["Diamond", "Pipeline", "Stage", "StageContext", "StageStatus", "Topology"]

StrPath = str | os.PathLike[str]
Target = Callable[..., Any] | str

_STAGE_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{_native.MAX_STAGE_NAME_LEN}}}\Z")
_STAGE_RULE = f"1 to {_native.MAX_STAGE_NAME_LEN} letters, digits, '.', '_' or '-'"
# A topology name prefixes ring names ("<topology>.<stage>"), which may not
# start with '.' and are at most 200 bytes.
_TOPOLOGY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,159}\Z")
_TARGET = re.compile(r"([A-Za-z_][\w.]*):([A-Za-z_][\w.]*)\Z")

_EXIT_FAILED = 1  # a stage raised; its traceback went to the parent first
_EXIT_TERMINATED = 128 + signal.SIGTERM  # a stage ended by SIGTERM (stop())
_EXIT_UNKNOWN = 255  # a stage whose exit status another waiter took
_PR_SET_PDEATHSIG = 1


# Specifications ----------------------------------------------------------------------------


def _load_target(target: Target, what: str) -> Callable[..., Any]:
    """The callable ``target`` names: itself, or the object a ``"module:function"``
    string points at (imported now, so that a typo fails in the parent, not
    in a stage process)."""
    if callable(target):
        return target
    if not isinstance(target, str):
        raise InvalidArgument(
            f'{what} must be a callable or a "module:function" string, got {target!r}'
        )
    m = _TARGET.match(target)
    if m is None:
        raise InvalidArgument(
            f'{what} must be a callable or a "module:function" string such as '
            f'"mypkg.stages:normalise", got {target!r}'
        )
    module_name, attr = m.groups()
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise InvalidArgument(
            f"{what} {target!r}: cannot import module {module_name!r}: {e}"
        ) from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InvalidArgument(
                f"{what} {target!r}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    if not callable(obj):
        raise InvalidArgument(f"{what} {target!r} is not callable: it is {type(obj).__name__}")
    return obj


def _target_name(target: Target) -> str | None:
    """A default stage name: the function's name (or the part after ':')."""
    if isinstance(target, str):
        return target.rpartition(":")[2].rpartition(".")[2]
    inner = getattr(target, "func", target)  # functools.partial
    name = getattr(inner, "__name__", None)
    return name if isinstance(name, str) and _STAGE_NAME.match(name) else None


class Stage:
    """One stage of a topology: what its process runs and what it publishes.

    ``fn`` is a callable or an importable ``"module:function"`` string (use the
    string form, or a module-level function, with ``start_method="spawn"``):

    * the **source** (first stage) is called once, ``fn()``, and returns an
      iterable of messages: numpy records, tuples, numpy arrays of records
      (published as one batch: the fast way) or bytes (raw rings). When it is
      exhausted the source closes its ring and the stream drains through the
      topology.
    * every **other stage** is called per message, ``fn(msg)``, or with
      ``batch=N`` per numpy array of up to N records, ``fn(batch)`` (a list of
      bytes on raw rings). It returns what to publish downstream: None
      (nothing), a record or tuple, an array or list of records, or bytes. A
      stage without ``dtype``/``slot_size`` is a sink: its return value is
      ignored.

    ``dtype`` is the record dtype of the stage's output ring; ``slot_size``
    makes it a raw ring of bytes messages of up to that size instead.
    ``input_dtype`` declares the dtype the stage expects to read; a topology
    whose upstream publishes another dtype is refused at ``start()`` with
    :class:`SchemaMismatch` before any process runs.

    ``setup``, when given, runs once in the stage's process after it attached
    to its rings and before the first message; it receives a
    :class:`StageContext` and returns a state object, which is then passed to
    ``fn`` as its last argument (``fn(state)`` for the source, ``fn(msg,
    state)`` otherwise) and to ``finish``. ``finish`` runs once the input
    ended (after the last message, before the output ring is closed); what
    it returns (picklable) is sent to the parent as
    ``topology.results[name]`` -- how a sink reports totals.

    ``wait`` is the :class:`WaitStrategy` of the stage's blocking receives
    and of its publishes into a full bounded ring; ``cpu`` pins the stage's
    thread to that CPU (checked against the parent's affinity at
    ``start()``: :class:`CpuUnavailable`). ``name`` defaults to the
    function's name (1 to 32 letters, digits, '.', '_' or '-'; it names the
    stage on its input ring and the stage's output ring).
    """

    def __init__(
        self,
        fn: Target,
        *,
        name: str | None = None,
        dtype: Any = None,
        slot_size: int | None = None,
        input_dtype: Any = None,
        batch: int | None = None,
        setup: Target | None = None,
        finish: Target | None = None,
        wait: WaitStrategy | None = None,
        cpu: int | None = None,
    ) -> None:
        _load_target(fn, "fn")
        if setup is not None:
            _load_target(setup, "setup")
        if finish is not None:
            _load_target(finish, "finish")
        if name is None:
            name = _target_name(fn)
            if name is None:
                raise InvalidArgument(
                    f"cannot name a stage after {fn!r}; give name= ({_STAGE_RULE})"
                )
        if not isinstance(name, str) or not _STAGE_NAME.match(name):
            raise InvalidArgument(f"stage name {name!r} is not usable: use {_STAGE_RULE}")
        if dtype is not None and slot_size is not None:
            raise InvalidArgument(
                f"stage {name!r}: give dtype= (records) or slot_size= (raw bytes), not both"
            )
        self.dtype: np.dtype | None = None if dtype is None else _schema.check_dtype(dtype)
        """Record dtype of the output ring (None: raw bytes or no output)."""
        if slot_size is not None and (
            isinstance(slot_size, bool) or not isinstance(slot_size, int) or slot_size <= 0
        ):
            raise InvalidArgument(
                f"stage {name!r}: slot_size must be a positive number of bytes, got {slot_size!r}"
            )
        self.input_dtype: np.dtype | None = (
            None if input_dtype is None else _schema.check_dtype(input_dtype)
        )
        if batch is not None and (
            isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 1 << 24
        ):
            raise InvalidArgument(
                f"stage {name!r}: batch must be None (one message per call) or a number of "
                f"messages between 1 and {1 << 24}, got {batch!r}"
            )
        if wait is not None and not isinstance(wait, WaitStrategy):
            raise InvalidArgument(
                f"stage {name!r}: wait must be a ringcast.WaitStrategy, got {wait!r}"
            )
        if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, int) or cpu < 0):
            raise InvalidArgument(f"stage {name!r}: cpu must be a CPU number >= 0, got {cpu!r}")
        self.fn = fn
        self.name: str = name
        self.slot_size = slot_size
        self.batch = batch
        self.setup = setup
        self.finish = finish
        self.wait = wait
        self.cpu = cpu

    @property
    def publishes(self) -> bool:
        """Whether the stage has an output ring."""
        return self.dtype is not None or self.slot_size is not None

    def _output_text(self) -> str:
        if self.dtype is not None:
            return f"dtype {self.dtype}"
        if self.slot_size is not None:
            return f"raw bytes (slot_size={self.slot_size})"
        return "nothing"

    def __repr__(self) -> str:
        return f"Stage({self.fn!r}, name={self.name!r}, output={self._output_text()})"


def _as_stage(spec: Stage | Target, what: str) -> Stage:
    """Lets a plain callable or "module:function" stand for ``Stage(fn)``."""
    if isinstance(spec, Stage):
        return spec
    if callable(spec) or isinstance(spec, str):
        return Stage(spec)
    raise InvalidArgument(
        f'{what} must be a ringcast.Stage, a callable or a "module:function" string, got {spec!r}'
    )


@dataclasses.dataclass(frozen=True)
class _Node:
    """A stage placed in a topology: which ring it reads, after which stages."""

    stage: Stage
    upstream: str | None  # the stage whose output ring this one reads; None: the source
    after: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.stage.name


@dataclasses.dataclass(frozen=True)
class StageContext:
    """What a stage's ``setup`` gets: where the stage sits and its open ring ends."""

    topology: str
    stage: str
    dir: str
    """The ring directory of the topology."""
    restarts: int
    """0 in the stage's first process; n in its n-th restart."""
    subscriber: Subscriber | None
    """The stage's input (None for the source). A restarted stage resumed at
    ``subscriber.position``."""
    publisher: Publisher | None
    """The stage's output (None for a sink). A restarted stage continues the
    ring's sequence: ``publisher.sequence`` messages are already in it."""
    rings: Mapping[str, str]
    """Output ring name of every publishing stage of the topology, by stage name."""

    def attach(self, stage: str, **kwargs: Any) -> Subscriber:
        """A subscriber of another stage's output ring (``start=0`` unless
        given), e.g. for a gated stage that also reads its upstream branches'
        results. Attached in ``setup``, before the source begins, it misses
        nothing."""
        if stage not in self.rings:
            raise InvalidArgument(
                f"stage {stage!r} of topology {self.topology!r} has no output ring; "
                f"stages with one: {sorted(self.rings)}"
            )
        kwargs.setdefault("start", 0)
        return Subscriber.attach(self.rings[stage], dir=self.dir, **kwargs)


@dataclasses.dataclass(frozen=True)
class StageStatus:
    """A snapshot of one stage: its process and its counters.

    Counters belong to the stage's current (or last) process: ``received``
    and ``lost`` are its input subscriber's (``received + lost == position -
    start``), ``processed`` the sequence below which it has processed its
    input, ``published`` the sequence of its output ring (messages in it)."""

    name: str
    role: Literal["source", "stage", "sink"]
    state: Literal["new", "starting", "running", "done", "failed", "stopped"]
    pid: int | None
    alive: bool
    exitcode: int | None
    restarts: int
    input: str | None
    """Name of the ring the stage reads (None for the source)."""
    output: str | None
    """Name of the ring the stage publishes into (None for a sink)."""
    received: int | None = None
    lost: int | None = None
    start: int | None = None
    position: int | None = None
    processed: int | None = None
    published: int | None = None


# The stage process ------------------------------------------------------------------------


@dataclasses.dataclass
class _Plan:
    """Everything a stage process needs (pickled for ``start_method="spawn"``)."""

    topology: str
    node: _Node
    dir: str
    input: str | None
    output: str | None
    rings: dict[str, str]
    capacity: int
    bounded: bool
    liveness_timeout: float
    timestamps: bool
    restarts: int
    parent_pid: int


class _Terminated(BaseException):
    """Raised by the SIGTERM handler of a stage process, so that the stage's
    own ``finally`` blocks run before it exits."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent goes away, so a
    crashed supervisor leaves no orphan stage spinning on a ring. (The
    parent is the thread that created this process; see Topology.start.)"""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(_EXIT_TERMINATED)


def _publish(pub: Publisher, out: Any) -> None:
    """Publishes what a stage returned: nothing, one message, or many."""
    if out is None:
        return
    if (isinstance(out, np.ndarray) and out.ndim >= 1) or isinstance(out, list):
        pub.publish_batch(out)
    else:
        pub.publish(out)


def _stage_main(plan: _Plan, conn: multiprocessing.connection.Connection) -> None:
    """Body of a stage process. Protocol with the supervisor: send "created"
    once the output ring exists, wait for "attach", attach to the input and
    run setup, send "ready", (source) wait for "go", run, send "done".
    A failure sends the traceback and exits without closing the input, so a
    restarted stage resumes at the last message that was fully processed."""
    _die_with_parent(plan.parent_pid)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    stage = plan.node.stage
    try:
        try:
            _run_stage(plan, stage, conn)
        except _Terminated:
            _flush()
            os._exit(_EXIT_TERMINATED)
    except BaseException:
        text = traceback.format_exc()
        with contextlib.suppress(BaseException):
            conn.send(("failed", text))
        _flush()
        os._exit(_EXIT_FAILED)
    _flush()
    os._exit(0)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _expect(conn: multiprocessing.connection.Connection, what: str) -> None:
    msg = conn.recv()
    if msg != what:
        raise RuntimeError(f"stage protocol: expected {what!r} from the supervisor, got {msg!r}")


def _run_stage(plan: _Plan, stage: Stage, conn: multiprocessing.connection.Connection) -> None:
    if stage.cpu is not None:
        pin_thread(stage.cpu)
    fn = _load_target(stage.fn, "fn")
    setup = None if stage.setup is None else _load_target(stage.setup, "setup")
    finish = None if stage.finish is None else _load_target(stage.finish, "finish")
    restarted = plan.restarts > 0
    pub = None
    if plan.output is not None:
        pub = Publisher.create(
            plan.output,
            dtype=stage.dtype,
            slot_size=stage.slot_size,
            capacity=plan.capacity,
            dir=plan.dir,
            exist_ok=restarted,  # a restart takes the ring over and continues its sequence
            bounded=plan.bounded,
            liveness_timeout=plan.liveness_timeout,
            wait=stage.wait,
            timestamps=plan.timestamps,
        )
    conn.send(("created",))
    _expect(conn, "attach")
    sub = None
    if plan.input is not None:
        sub = Subscriber.attach(
            plan.input,
            dir=plan.dir,
            start="resume" if restarted else 0,
            stage=stage.name,
            after=plan.node.after,
            wait=stage.wait,
        )
        if plan.timestamps:
            sub.record_latency()
    ctx = StageContext(
        topology=plan.topology,
        stage=stage.name,
        dir=plan.dir,
        restarts=plan.restarts,
        subscriber=sub,
        publisher=pub,
        rings=plan.rings,
    )
    extra: tuple[Any, ...] = () if setup is None else (setup(ctx),)
    conn.send(("ready",))
    if sub is None:
        assert pub is not None
        _expect(conn, "go")
        for item in fn(*extra):
            _publish(pub, item)
    else:
        for msg in _inputs(sub, stage.batch):
            out = fn(msg, *extra)
            if pub is not None:
                _publish(pub, out)
    result = None if finish is None else finish(*extra)
    counters: dict[str, int] = {}
    latency = None
    if sub is not None:
        counters.update(
            received=sub.received,
            lost=sub.lost,
            start=sub.start_sequence,
            position=sub.position,
            processed=sub.position,  # closing commits everything read
        )
        if plan.timestamps:
            latency = sub.latency().encode()
    if pub is not None:
        counters["published"] = pub.sequence
        pub.close()  # downstream drains what is left, then sees the end
    if sub is not None:
        sub.close()
    conn.send(("done", result, counters, latency))


def _inputs(sub: Subscriber, batch: int | None) -> Iterator[Any]:
    """A stage's input: messages (or batches of up to `batch`) until the
    stream ends. An upstream stage that dies is the supervisor's business
    (it stops or restarts it): this stage waits for the restart."""
    while True:
        try:
            yield sub.recv() if batch is None else sub.recv_batch(batch, timeout=None)
        except PublisherDied:
            continue
        except RingClosed:
            return


# The supervisor ---------------------------------------------------------------------------


class _Run:
    """The supervisor's record of one stage: its current process and what it reported."""

    def __init__(self, node: _Node) -> None:
        self.node = node
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: multiprocessing.connection.Connection | None = None
        self.state: str = "new"
        self.phase = ""  # "", "created", "ready", "running": handshake progress
        self.restarts = 0
        self.exitcode: int | None = None
        self.traceback = ""
        self.result: Any = None
        self.final: dict[str, int] = {}
        self.latency: str | None = None

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def alive(self) -> bool:
        # From what the supervisor recorded, never by polling the process:
        # two threads polling one child race in waitpid, and the loser takes
        # the child for still running.
        return self.process is not None and self.exitcode is None


def _reap(proc: multiprocessing.process.BaseProcess) -> int:
    """The exit code of a stage process that has ended (its sentinel is readable).

    multiprocessing polls every child of the process whenever any Process
    starts (and in active_children()), from whatever thread does so; when
    that poll reaps our child first, our waitpid fails and the exit code
    appears only once the other thread records it. So wait for it."""
    proc.join()
    deadline = time.monotonic() + 2.0
    while proc.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.001)
    code = proc.exitcode
    return _EXIT_UNKNOWN if code is None else code


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    if code == _EXIT_TERMINATED:
        return "was terminated (SIGTERM)"
    if code == _EXIT_UNKNOWN:
        return "ended before finishing its stream (exit status unknown)"
    return f"exited with code {code} before finishing its stream"


_LIVE: weakref.WeakSet[Topology] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Stops topologies still running when the interpreter exits, so that no
    stage process and no ring file outlives the program."""
    for topology in list(_LIVE):
        with contextlib.suppress(Exception):
            topology.stop()


class Topology:
    """Stage processes connected by rings; build one with :class:`Pipeline`
    or :class:`Diamond`.

    Options (keywords of both builders):

    * ``capacity`` (default 65536): slots of every ring; ``bounded`` (default
      True): publishers wait for the slowest stage, so nothing is lost
      (False: lossy rings, a slow stage is lapped and counts what it lost);
      ``liveness_timeout``: seconds a bounded ring waits on a stage that
      stopped reading before evicting it (the stage then fails with
      :class:`Evicted`).
    * ``dir``: the ring directory (default ``$RINGCAST_DIR`` or
      ``/dev/shm/ringcast``). Rings are named ``"<name>.<stage>"``.
    * ``on_failure``: ``"stop"`` (default) stops every stage when one raises
      or dies, and :meth:`join` raises :class:`StageFailed`; ``"restart"``
      starts a failed stage again (at most ``max_restarts`` times per stage):
      it resumes its input where it stopped processing and continues its
      output ring's sequence.
    * ``start_method``: ``"fork"`` (default; fast, stage functions may be
      closures) or ``"spawn"`` (a fresh interpreter per stage; stage
      functions must be importable: module-level functions or
      ``"module:function"`` strings).
    * ``latency``: rings carry publish timestamps and every receiving stage
      records the latency of its input hop (:meth:`latency`).
    * ``ready_timeout``: seconds :meth:`start` waits for every stage to attach.
    """

    def __init__(
        self,
        name: str,
        nodes: Sequence[_Node],
        *,
        capacity: int = 1 << 16,
        bounded: bool = True,
        dir: StrPath | None = None,
        on_failure: Literal["stop", "restart"] = "stop",
        max_restarts: int = 3,
        start_method: Literal["fork", "spawn"] = "fork",
        latency: bool = False,
        liveness_timeout: float = _native.DEFAULT_LIVENESS_TIMEOUT,
        ready_timeout: float = 30.0,
    ) -> None:
        kind = type(self).__name__
        if not isinstance(name, str) or not _TOPOLOGY_NAME.match(name):
            raise InvalidArgument(
                f"{kind} name {name!r} is not usable: use 1 to 160 letters, digits, '.', '_' "
                "or '-', not starting with '.' (it prefixes the names of its rings)"
            )
        if (
            isinstance(capacity, bool)
            or not isinstance(capacity, int)
            or capacity < 2
            or capacity & (capacity - 1)
        ):
            raise InvalidArgument(f"capacity must be a power of two >= 2, got {capacity!r}")
        if not isinstance(bounded, bool):
            raise InvalidArgument(f"bounded must be True or False, got {bounded!r}")
        if on_failure not in ("stop", "restart"):
            raise InvalidArgument(f'on_failure must be "stop" or "restart", got {on_failure!r}')
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise InvalidArgument(f"max_restarts must be an integer >= 0, got {max_restarts!r}")
        if start_method not in ("fork", "spawn"):
            raise InvalidArgument(f'start_method must be "fork" or "spawn", got {start_method!r}')
        if not isinstance(latency, bool):
            raise InvalidArgument(f"latency must be True or False, got {latency!r}")
        for what, value in (
            ("liveness_timeout", liveness_timeout),
            ("ready_timeout", ready_timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidArgument(f"{what} must be a positive number of seconds, got {value!r}")
        self._check_graph(kind, nodes)
        self.name = name
        self.dir = default_dir(dir)
        """The ring directory."""
        self.capacity = capacity
        self.bounded = bounded
        self.on_failure = on_failure
        self.max_restarts = max_restarts
        self.start_method = start_method
        self.latency_enabled = latency
        self.liveness_timeout = float(liveness_timeout)
        self.ready_timeout = float(ready_timeout)
        self._nodes = list(nodes)
        self._runs = {node.name: _Run(node) for node in nodes}
        self.rings: dict[str, str] = {
            node.name: f"{name}.{node.name}" for node in nodes if node.stage.publishes
        }
        """Output ring name of every publishing stage, by stage name."""
        self.failures: list[StageFailed] = []
        """Every failure seen, in order, including those of restarted stages."""
        self._failure: StageFailed | None = None  # the one that stopped the topology
        self._failure_seen = False
        self._started = False
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._stopping = False
        self._stop_timeout = 2.0
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._ctx: Any = None
        self._guards: list[Subscriber] = []
        self._guard_thread: threading.Thread | None = None
        self._guard_stop = threading.Event()

    @staticmethod
    def _check_graph(kind: str, nodes: Sequence[_Node]) -> None:
        """Refuses a graph that could not run: duplicate names, a reader of a
        stage that publishes nothing, options that make no sense for a source."""
        if not nodes:
            raise InvalidArgument(f"{kind}: no stages")
        seen: dict[str, _Node] = {}
        for i, node in enumerate(nodes):
            stage = node.stage
            if node.name in seen:
                raise InvalidArgument(
                    f"{kind}: two stages are named {node.name!r}; give each a distinct name="
                )
            if node.upstream is None:
                if i != 0:
                    raise InvalidArgument(f"{kind}: only the first stage may be the source")
                if not stage.publishes:
                    raise InvalidArgument(
                        f"{kind}: source stage {node.name!r} publishes nothing; give it dtype= "
                        "(records) or slot_size= (raw bytes)"
                    )
                if stage.batch is not None or stage.input_dtype is not None:
                    raise InvalidArgument(
                        f"{kind}: source stage {node.name!r} reads no ring, so batch= and "
                        "input_dtype= do not apply (a source yields numpy arrays to publish "
                        "batches)"
                    )
            else:
                up = seen.get(node.upstream)
                if up is None:
                    raise InvalidArgument(
                        f"{kind}: stage {node.name!r} reads {node.upstream!r}, which is not an "
                        "earlier stage"
                    )
                if not up.stage.publishes:
                    raise InvalidArgument(
                        f"{kind}: stage {node.name!r} reads the output of stage {up.name!r}, "
                        f"which publishes nothing; give {up.name!r} dtype= or slot_size="
                    )
                for dep in node.after:
                    other = seen.get(dep)
                    if other is None or other.upstream != node.upstream:
                        raise InvalidArgument(
                            f"{kind}: stage {node.name!r} is gated after {dep!r}, which is not "
                            "an earlier stage reading the same ring"
                        )
            seen[node.name] = node

    # Starting -------------------------------------------------------------------------

    def _ring_path(self, ring: str) -> str:
        return os.fspath(_native.ring_path(ring, self.dir))

    def _check_start(self) -> None:
        """Everything that can be refused before a process runs: dtypes along
        every edge, CPUs, rings left over, picklability for spawn."""
        by_name = {node.name: node for node in self._nodes}
        for node in self._nodes:
            if node.upstream is None or node.stage.input_dtype is None:
                continue
            up = by_name[node.upstream].stage
            if up.dtype != node.stage.input_dtype:
                raise SchemaMismatch(
                    f"{type(self).__name__} {self.name!r}: stage {node.name!r} expects input "
                    f"dtype {node.stage.input_dtype} but stage {up.name!r} publishes "
                    f"{up._output_text()}"
                )
        allowed = os.sched_getaffinity(0)
        for node in self._nodes:
            cpu = node.stage.cpu
            if cpu is not None and cpu not in allowed:
                raise CpuUnavailable(
                    f"stage {node.name!r}: cpu={cpu} is not available to this process "
                    f"(it may run on CPUs {sorted(allowed)})"
                )
        if self.start_method == "spawn":
            for node in self._nodes:
                try:
                    pickle.dumps(node.stage)
                except Exception as e:
                    raise InvalidArgument(
                        f"stage {node.name!r} cannot be sent to a spawned process ({e}); with "
                        'start_method="spawn" give module-level functions or "module:function" '
                        'strings, or use start_method="fork"'
                    ) from e
        for ring in self.rings.values():  # last: it may remove files
            self._clear_stale_ring(ring)

    def _clear_stale_ring(self, ring: str) -> None:
        """A ring left by a topology of the same name that crashed (no live
        publisher, no live subscriber) is removed; a live one is refused."""
        path = self._ring_path(ring)
        try:
            info = ring_info(ring, dir=self.dir)
        except RingNotFound:
            return
        except RingError:
            info = None  # unreadable: a crash while creating it
        # Liveness is the ends' own locks in the ring file (see ring_info),
        # not their pids, which a zombie passes.
        if info is not None and (
            info["publisher"]["alive"] or any(s["alive"] for s in info["subscribers"])
        ):
            raise RingExists(
                f"ring {ring!r} of {type(self).__name__} {self.name!r} is in use at {path}: "
                "another topology of that name is running"
            )
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def start(self) -> Topology:
        """Start every stage and return once all are attached and the source
        has been told to begin; raises :class:`StageFailed` if a stage failed
        to start (the topology is then stopped).

        Stage processes are created by the calling thread and die with it
        (``PR_SET_PDEATHSIG``): start a topology from a thread that outlives
        it, normally the main thread."""
        with self._lock:
            if self._started:
                raise InvalidArgument(
                    f"{type(self).__name__} {self.name!r} was already started (or stopped); "
                    "build a new one to run again"
                )
            self._check_start()
            self._started = True
        self._ctx = multiprocessing.get_context(self.start_method)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        _LIVE.add(self)
        self._thread = threading.Thread(
            target=self._supervise, name=f"ringcast-{self.name}", daemon=True
        )
        try:
            for run in self._runs.values():
                self._spawn(run)
        except BaseException:
            self._stopping = True  # the supervisor ends what did start, and removes rings
            self._thread.start()
            self._finished.wait()
            raise
        self._thread.start()
        # The supervisor sets one or the other (it enforces ready_timeout).
        while not (self._ready.is_set() or self._finished.is_set()):
            self._finished.wait(0.02)
        if not self._ready.is_set() and self._failure is not None:
            # Failures after the start belong to join().
            self._failure_seen = True
            self._finished.wait()
            raise self._failure.with_traceback(None)
        return self

    def _spawn(self, run: _Run) -> None:
        node = run.node
        plan = _Plan(
            topology=self.name,
            node=node,
            dir=self.dir,
            input=None if node.upstream is None else self.rings[node.upstream],
            output=self.rings.get(node.name),
            rings=dict(self.rings),
            capacity=self.capacity,
            bounded=self.bounded,
            liveness_timeout=self.liveness_timeout,
            timestamps=self.latency_enabled,
            restarts=run.restarts,
            parent_pid=os.getpid(),
        )
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_stage_main,
            args=(plan, child_end),
            name=f"ringcast:{self.name}.{node.name}",
            daemon=False,
        )
        proc.start()
        child_end.close()
        run.process, run.conn = proc, parent_end
        run.state, run.phase, run.exitcode, run.traceback = "starting", "", None, ""

    # Supervising (the supervisor thread) -------------------------------------------------

    def _supervise(self) -> None:
        try:
            self._watch()
        except BaseException as e:  # a bug here must not leave stages running
            text = traceback.format_exc()
            self._fail(None, f"stopped: its supervisor failed ({e!r})", text, text)
        finally:
            self._shutdown()
            self._finished.set()

    def _watch(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not self._stopping:
            runs = list(self._runs.values())
            if all(r.state == "done" and not r.alive for r in runs):
                return
            if not self._ready.is_set() and time.monotonic() > deadline:
                slow = [r.name for r in runs if r.phase != "ready"]
                how = f"did not start: {slow} not ready within {self.ready_timeout}s"
                self._fail(slow[0] if slow else None, how, "", how)
                return
            waitables: dict[Any, tuple[str, _Run | None]] = {self._wake_r: ("wake", None)}
            for r in runs:
                if r.conn is not None:
                    waitables[r.conn] = ("conn", r)
                if r.process is not None and r.exitcode is None:
                    waitables[r.process.sentinel] = ("exit", r)
            ready = multiprocessing.connection.wait(list(waitables), timeout=0.25)
            exited = []
            for obj in ready:
                what, run = waitables[obj]
                if what == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                elif what == "conn":
                    self._drain(run)  # type: ignore[arg-type]
                else:
                    exited.append(run)
            for run in exited:  # after the messages: a traceback comes before the exit
                if run is not None and run.exitcode is None:
                    self._exited(run)
                if self._stopping:
                    return

    def _drain(self, run: _Run) -> None:
        conn = run.conn
        if conn is None:
            return
        try:
            while conn.poll():
                self._message(run, conn.recv())
        except (EOFError, OSError):
            run.conn = None
            conn.close()

    def _message(self, run: _Run, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "created":
            run.phase = "created"
            if self._ready.is_set():  # a restarted stage: no one else to wait for
                self._send(run, "attach")
            elif all(r.phase == "created" for r in self._runs.values()):
                self._start_guards()
                for r in self._runs.values():
                    self._send(r, "attach")
        elif kind == "ready":
            run.phase = "ready"
            if self._ready.is_set():
                run.state, run.phase = "running", "running"
                if run.node.upstream is None:
                    self._send(run, "go")
            elif all(r.phase == "ready" for r in self._runs.values()):
                for r in self._runs.values():
                    r.state, r.phase = "running", "running"
                self._send(self._runs[self._nodes[0].name], "go")
                self._ready.set()
        elif kind == "done":
            _, run.result, run.final, run.latency = msg
            run.state = "done"
        elif kind == "failed":
            run.traceback = msg[1]

    def _send(self, run: _Run, what: str) -> None:
        if run.conn is not None:
            with contextlib.suppress(OSError):
                run.conn.send(what)

    def _exited(self, run: _Run) -> None:
        assert run.process is not None
        run.exitcode = _reap(run.process)
        self._drain(run)
        if run.state == "done" and run.exitcode == 0:
            return
        if self._stopping:
            run.state = "stopped"
            return
        run.state = "failed"
        how = "raised" if run.traceback else _describe_exit(run.exitcode)
        tb = run.traceback or f"the stage process (pid {run.process.pid}) {how}"
        restartable = (
            self._ready.is_set()
            and self.on_failure == "restart"
            and run.restarts < self.max_restarts
        )
        if restartable:
            self.failures.append(self._error(run.name, how, run.traceback, tb))
            if run.conn is not None:
                run.conn.close()
                run.conn = None
            run.restarts += 1
            self._spawn(run)
            return
        if self._ready.is_set() and self.on_failure == "restart":
            how += f" (after {run.restarts} restarts, max_restarts={self.max_restarts})"
        elif not self._ready.is_set():
            how += " while the topology was starting"
        self._fail(run.name, how, run.traceback, tb)

    def _error(self, stage: str | None, how: str, details: str, tb: str) -> StageFailed:
        """A StageFailed whose message names the stage and says what happened,
        followed by the stage's traceback when it raised."""
        where = f"stage {stage!r} of " if stage else ""
        text = f"{where}{type(self).__name__} {self.name!r} {how}"
        if details:
            text += ":\n" + details.rstrip()
        return StageFailed(text, stage=stage or "", traceback=tb)

    def _fail(self, stage: str | None, how: str, details: str, tb: str) -> None:
        failure = self._error(stage, how, details, tb)
        self.failures.append(failure)
        if self._failure is None:
            self._failure = failure
        self._stopping = True

    def _start_guards(self) -> None:
        """With ``on_failure="restart"`` on bounded rings, holds every ring's
        publisher back at what all its readers have *processed*.

        A bounded publisher waits only for live subscribers: while a stage is
        dead (between its crash and its restart) nothing would stop its
        upstream from overwriting the messages the stage will resume at. A
        guard is a subscriber in this process gated after every stage that
        reads the ring; a gate holds at a dead stage's remembered progress,
        so the guard (live, hence waited for) cannot move past it, nor can the
        publisher run more than a ring ahead of it. The guard only drains
        what the gate lets through; it costs a copy of each message."""
        if not (self.bounded and self.on_failure == "restart"):
            return
        for stage, ring in self.rings.items():
            readers = tuple(n.name for n in self._nodes if n.upstream == stage)
            if readers:
                guard = Subscriber.attach(
                    ring, dir=self.dir, start=0, after=readers, wait=WaitStrategy.park()
                )
                self._guards.append(guard)
        self._guard_thread = threading.Thread(
            target=self._guard_loop, name=f"ringcast-{self.name}-guard", daemon=True
        )
        self._guard_thread.start()

    def _guard_loop(self) -> None:
        # Polls instead of blocking: a parked reader would make every publish
        # of the ring pay a futex wake.
        active = list(self._guards)
        while active and not self._guard_stop.is_set():
            moved = False
            for guard in list(active):
                try:
                    while len(guard.recv_batch(8192, timeout=0)):
                        moved = True
                except RingError:  # RingClosed at the end of the stream
                    active.remove(guard)
            if not moved:
                self._guard_stop.wait(0.0005)

    def _shutdown(self) -> None:
        """Ends every stage process (SIGTERM, then SIGKILL after the stop
        timeout), reaps them and removes the rings."""
        self._stopping = True
        procs = [r.process for r in self._runs.values() if r.process is not None and r.alive]
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        # Liveness from the sentinels (readable once the process is gone),
        # not from polling: see _reap.
        deadline = time.monotonic() + self._stop_timeout
        pending = {p.sentinel: p for p in procs}
        while pending and time.monotonic() < deadline:
            for done in multiprocessing.connection.wait(
                list(pending), timeout=max(0.0, deadline - time.monotonic())
            ):
                del pending[done]  # type: ignore[arg-type]
        for p in pending.values():
            with contextlib.suppress(Exception):
                p.kill()
        for run in self._runs.values():
            if run.process is not None and run.exitcode is None:
                run.exitcode = _reap(run.process)
                self._drain(run)
                if run.state not in ("done", "failed"):
                    run.state = "stopped"
            if run.conn is not None:
                run.conn.close()
                run.conn = None
        self._guard_stop.set()
        if self._guard_thread is not None:
            self._guard_thread.join()
        for guard in self._guards:
            guard.close()
        for ring in self.rings.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._ring_path(ring))
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        _LIVE.discard(self)

    # Public control --------------------------------------------------------------------------

    def join(self, timeout: float | None = None) -> None:
        """Wait until the source ended, every stage drained its input and
        exited, and the rings were removed. Raises :class:`StageFailed` if a
        stage failed (and was not restarted) or :class:`Timeout` when
        ``timeout`` seconds pass first (the topology keeps running)."""
        if not self._started:
            raise InvalidArgument(f"{type(self).__name__} {self.name!r} was not started")
        if not self._finished.wait(timeout):
            raise Timeout(f"{type(self).__name__} {self.name!r} still running after {timeout}s")
        if self._thread is not None:
            self._thread.join()
        if self._failure is not None:
            self._failure_seen = True
            raise self._failure.with_traceback(None)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop now: SIGTERM every stage process, SIGKILL those still running
        after ``timeout`` seconds, reap them and remove the rings.
        Idempotent; does not raise a stage's failure (see :meth:`join`)."""
        if not self._started:
            self._started = True  # a stopped topology cannot be started
            self._finished.set()
            return
        self._stop_timeout = float(timeout)
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"s")
        self._finished.wait()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Topology:
        if not self._started:
            self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.stop()
        if exc_type is None and self._failure is not None and not self._failure_seen:
            self._failure_seen = True
            raise self._failure.with_traceback(None)

    # Introspection ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the topology was started and has not finished or stopped."""
        return self._started and not self._finished.is_set()

    @property
    def results(self) -> dict[str, Any]:
        """What each finished stage's ``finish`` returned, by stage name."""
        return {r.name: r.result for r in self._runs.values() if r.state == "done"}

    def latency(self, stage: str) -> LatencyHistogram | None:
        """Latency of stage ``stage``'s input hop (upstream publish to this
        stage's receive, ns) once the stage finished; None without
        ``latency=True``."""
        run = self._runs.get(stage)
        if run is None:
            raise InvalidArgument(f"no stage {stage!r} in {type(self).__name__} {self.name!r}")
        return None if run.latency is None else LatencyHistogram.decode(run.latency)

    @property
    def stages(self) -> list[StageStatus]:
        """Status and counters of every stage, in topology order: live
        counters from the rings' subscriber tables while the stage runs, its
        final counters once it finished."""
        infos: dict[str, dict[str, Any] | None] = {}

        def info(ring: str) -> dict[str, Any] | None:
            if ring not in infos:
                try:
                    infos[ring] = ring_info(ring, dir=self.dir)
                except RingError:
                    infos[ring] = None
            return infos[ring]

        out = []
        for run in self._runs.values():
            node = run.node
            ring_in = None if node.upstream is None else self.rings[node.upstream]
            ring_out = self.rings.get(node.name)
            role: Literal["source", "stage", "sink"] = (
                "source" if ring_in is None else "stage" if ring_out else "sink"
            )
            proc = run.process
            pid = None if proc is None else proc.pid
            counters: dict[str, int | None] = dict(run.final)
            if run.alive and pid is not None:
                if ring_in is not None and (i := info(ring_in)) is not None:
                    for rec in i["subscribers"]:
                        if rec["pid"] == pid and rec["alive"]:
                            counters.update(
                                received=rec["count"],
                                lost=rec["lost"],
                                position=rec["position"],
                                processed=rec["processed"],
                            )
                if ring_out is not None and (o := info(ring_out)) is not None:
                    counters["published"] = o["cursor"]
            out.append(
                StageStatus(
                    name=run.name,
                    role=role,
                    state=run.state,  # type: ignore[arg-type]
                    pid=pid,
                    alive=run.alive,
                    exitcode=run.exitcode if proc is not None else None,
                    restarts=run.restarts,
                    input=ring_in,
                    output=ring_out,
                    received=counters.get("received"),
                    lost=counters.get("lost"),
                    start=counters.get("start"),
                    position=counters.get("position"),
                    processed=counters.get("processed"),
                    published=counters.get("published"),
                )
            )
        return out

    def __repr__(self) -> str:
        state = "running" if self.running else "finished" if self._finished.is_set() else "new"
        return f"<{type(self).__name__} {self.name!r} {[n.name for n in self._nodes]} {state}>"


def _chain(stages: Sequence[Stage]) -> list[_Node]:
    """A source followed by stages that each read the one before."""
    nodes = [_Node(stages[0], None)]
    nodes += [_Node(s, stages[i].name) for i, s in enumerate(stages[1:])]
    return nodes


class Pipeline(Topology):
    """A chain of stages, each in its own process: ``A -> B -> C ...``.

    ``stages[0]`` is the source; each later stage reads the output ring of the
    one before it. Items may be :class:`Stage` objects, or plain callables /
    ``"module:function"`` strings (a ``Stage`` with defaults: named after the
    function, publishing nothing -- fine for the sink). See
    :class:`Topology` for the options.

    ::

        with ringcast.Pipeline("md", [
            ringcast.Stage(feed, dtype=RAW),
            ringcast.Stage(normalise, dtype=QUOTE, batch=1024),
            ringcast.Stage(record, finish=summary),
        ]) as p:
            p.join()
        print(p.results["record"])
    """

    def __init__(self, name: str, stages: Sequence[Stage | Target], **options: Any) -> None:
        if isinstance(stages, str | Stage) or not isinstance(stages, Sequence):
            raise InvalidArgument(
                f"Pipeline stages must be a list of ringcast.Stage (source first), got {stages!r}"
            )
        specs = [_as_stage(s, f"stages[{i}]") for i, s in enumerate(stages)]
        if len(specs) < 2:
            raise InvalidArgument(
                f"a Pipeline needs a source and at least one more stage, got {len(specs)} stage(s)"
            )
        super().__init__(name, _chain(specs), **options)


class Diamond(Topology):
    """Fan-out and a gated join, the Disruptor's diamond: ``A -> {B, C} -> D``.

    ``source`` (a stage, or a chain of stages given as a list: the last one's
    ring is the fan-out point) publishes events into one ring. Every stage of
    ``branches`` reads that ring independently, each as a named stage on it;
    ``then`` reads the same ring gated after all branches: it sees an event
    only once every branch has processed it, even across processes. Branches
    given an output ``dtype`` publish their results into rings of their own
    (``topology.rings[branch]``, readable by ``then`` through
    :meth:`StageContext.attach`). See :class:`Topology` for the options.

    ::

        ringcast.Diamond("md", source=Stage(feed, dtype=QUOTE),
                         branches=[Stage(momentum), Stage(meanrev)],
                         then=Stage(risk))
    """

    def __init__(
        self,
        name: str,
        *,
        source: Stage | Target | Sequence[Stage | Target],
        branches: Sequence[Stage | Target],
        then: Stage | Target | None = None,
        **options: Any,
    ) -> None:
        if isinstance(source, Sequence) and not isinstance(source, str):
            chain = [_as_stage(s, f"source[{i}]") for i, s in enumerate(source)]
            if not chain:
                raise InvalidArgument("Diamond source is an empty list; give at least one stage")
        else:
            chain = [_as_stage(source, "source")]
        if isinstance(branches, str | Stage) or not isinstance(branches, Sequence):
            raise InvalidArgument(
                f"Diamond branches must be a list of ringcast.Stage, got {branches!r}"
            )
        fan = [_as_stage(b, f"branches[{i}]") for i, b in enumerate(branches)]
        if not fan:
            raise InvalidArgument("a Diamond needs at least one branch")
        readers = len(fan) + (then is not None)
        if readers > _native.MAX_UPSTREAM:
            # The gate of `then` (and the restart guard, gated after every
            # reader of the ring) names at most MAX_UPSTREAM stages.
            raise InvalidArgument(
                f"a Diamond's fan-out ring is read by at most {_native.MAX_UPSTREAM} stages "
                f"(branches and then), got {readers}"
            )
        nodes = _chain(chain)
        hub = chain[-1].name
        nodes += [_Node(b, hub) for b in fan]
        if then is not None:
            nodes.append(_Node(_as_stage(then, "then"), hub, tuple(b.name for b in fan)))
        super().__init__(name, nodes, **options)
