"""One supervised item in its own process: ``python -m ringcast.serve
SPEC_JSON``. It reports to the supervisor through the file descriptor in
``$RINGCAST_SERVE_REPORT_FD``, one JSON object per line:

* ``{"event": "ready"}``: the item's rings exist and it is running;
* ``{"event": "report", "report": {...}, "latency": {...} | null}``: its
  figures so far, at most every :data:`REPORT_EVERY` seconds. A report is
  also the item's heartbeat: it is sent from the item's own loop, so a
  stuck loop stops reporting and the supervisor restarts the item after
  ``health_timeout``;
* ``{"event": "failed", "error": "..."}`` before a non-zero exit.

SIGTERM asks the item to stop: feed handlers, book builders and senders stop
at once and close their rings (readers then drain them to the end); a stage
sees :meth:`ServiceContext.stopping` turn true.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from .. import bridge, itch, journal
from .._api import Publisher, Subscriber
from .._native import LatencyHistogram
from .._topology import _die_with_parent, _load_target
from ..errors import RingClosed, RingError

REPORT_EVERY = 0.25
EXIT_FAILED = 1


class _Stop(BaseException):
    """Raised by SIGTERM in items whose loop is native (it checks for
    signals every 50 ms): the loop closes its rings and returns."""


class ServiceContext:
    """What a stage function gets as its first argument::

        def run(ctx, **args):
            sub = ctx.subscribe("md.book")
            while not ctx.stopping():
                batch = sub.recv_batch(1024, timeout=0.1)
                ...
                ctx.processed(len(batch))

    Every call of :meth:`stopping` and :meth:`processed` is a heartbeat: a
    stage that makes neither for ``health_timeout`` seconds is restarted.
    """

    def __init__(self, name: str, dir: str, restarts: int, latency: str | None, out: Any) -> None:
        self.name = name
        """The stage's name in the configuration."""
        self.dir = dir
        """The service's ring directory."""
        self.restarts = restarts
        """0 in the stage's first process, n after n restarts."""
        self.latency = LatencyHistogram(highest=60.0)
        """Record latencies (ns) here; exported as ``ringcast_latency_seconds``
        when the stage's ``latency = "what"`` is set."""
        self._latency_what = latency
        self._out = out
        self._processed = 0
        self._fields: dict[str, Any] = {}
        self._stop = False
        self._next = 0.0

    def stopping(self) -> bool:
        """True once the service asked this stage to stop (SIGTERM)."""
        self._tick()
        return self._stop

    def processed(self, n: int = 1) -> None:
        """Counts ``n`` more messages processed."""
        self._processed += n
        self._tick()

    def report(self, **fields: int | float | str) -> None:
        """Adds figures of the stage's own to its reports (and its status)."""
        self._fields.update(fields)
        self._tick()

    def subscribe(self, ring: str, timeout: float = 10.0, **kwargs: Any) -> Subscriber:
        """Attaches to ``ring`` in the service's directory (``start="oldest"``
        unless given) once it has a publisher: a ring the service created
        waits, closed, for the stage that publishes into it."""
        kwargs.setdefault("start", "oldest")
        deadline = time.monotonic() + timeout
        from .._memory import ring_info

        while True:
            try:
                info = ring_info(ring, self.dir)
                if not info["publisher"]["closed"] or info["cursor"] > 0:
                    break
            except RingError:
                pass
            if time.monotonic() > deadline:
                raise RingClosed(f"ring {ring!r} has had no publisher for {timeout:g} s")
            if self.stopping():
                raise _Stop()
            time.sleep(0.01)
        return Subscriber.attach(ring, dir=self.dir, **kwargs)

    def publisher(self, ring: str, **kwargs: Any) -> Publisher:
        """The publisher end of ``ring`` (one the service created, or any)."""
        return Publisher.attach(ring, dir=self.dir, **kwargs)

    def _tick(self) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + REPORT_EVERY
            self.send_report()

    def send_report(self) -> None:
        latency = None
        if self._latency_what:
            latency = {"hdr": self.latency.encode(), "what": self._latency_what}
        report = {"processed": self._processed, **self._fields}
        self._out.send({"event": "report", "report": report, "latency": latency})


class _Reports:
    """The line-per-event pipe to the supervisor."""

    def __init__(self, fd: int) -> None:
        self._f = os.fdopen(fd, "w", buffering=1)

    def send(self, event: dict[str, Any]) -> None:
        try:
            self._f.write(json.dumps(event, default=_plain) + "\n")
        except BrokenPipeError:  # the supervisor is gone: so are we, soon
            os._exit(EXIT_FAILED)


def _plain(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, (set, tuple)):
        return list(v)
    return str(v)


def _progress(out: _Reports) -> Any:
    return lambda report: out.send({"event": "report", "report": report, "latency": None})


def _ready(out: _Reports) -> Any:
    return lambda *_: out.send({"event": "ready"})


def run_feed(spec: dict[str, Any], out: _Reports) -> Any:
    o = spec["options"]
    return itch.handle(
        o["group"],
        bus=o["bus"],
        group_b=o["group_b"],
        dir=spec["dir"],
        capacity=o["capacity"],
        stream_capacity=o["stream_capacity"],
        bounded=o["bounded"],
        types=o["types"],
        retransmit=o["retransmit"],
        arbitration=o["arbitration"],
        request_timeout=o["request_timeout"],
        max_requests=o["max_requests"],
        session=o["session"],
        interface=o["interface"],
        receive_buffer=o["receive_buffer"],
        capture=o["capture"],
        ready=_ready(out),
        progress=_progress(out),
        progress_every=REPORT_EVERY,
    )


def run_books(spec: dict[str, Any], out: _Reports) -> Any:
    o = spec["options"]
    return itch.books(
        o["bus"],
        dir=spec["dir"],
        capacity=o["capacity"],
        bounded=o["bounded"],
        ready=_ready(out),
        progress=_progress(out),
        progress_every=REPORT_EVERY,
    )


def run_sender(spec: dict[str, Any], out: _Reports) -> Any:
    o = spec["options"]
    return itch.send(
        o["file"],
        o["group"],
        group_b=o["group_b"],
        rate=o["rate"],
        retransmit=o["retransmit"],
        drop=o["drop"],
        linger=o["linger"],
        session=o["session"],
        interface=o["interface"],
        ready=_ready(out),
    )


def run_stage(spec: dict[str, Any], out: _Reports) -> Any:
    o = spec["options"]
    function = _load_target(o["function"], f"stage {spec['name']!r} function")
    ctx = ServiceContext(spec["name"], spec["dir"], spec["restarts"], o["latency"], out)
    signal.signal(signal.SIGTERM, lambda *_: setattr(ctx, "_stop", True))
    out.send({"event": "ready"})
    try:
        result = function(ctx, **o["args"])
    finally:
        ctx.send_report()
    return result


def run_journal(spec: dict[str, Any], out: _Reports) -> Any:
    o = spec["options"]
    out.send({"event": "ready"})
    # Follows the ring across publisher restarts; SIGTERM ends it (the
    # journal sealed) through the _Stop raised in its signal handler.
    return journal.record(
        o["ring"],
        o["dir"],
        dir=spec["dir"],
        stage=o["stage"],
        first=o["first"],
        segment_bytes=o["segment_size"],
        segment_age=o["segment_age"],
        fsync=o["fsync"],
        follow=True,
        progress=_progress(out),
        progress_every=REPORT_EVERY,
    )


def run_bridge(spec: dict[str, Any], out: _Reports) -> Any:
    o = spec["options"]
    out.send({"event": "ready"})
    common = dict(
        stream=o["stream"],
        dir=spec["dir"],
        aeron_dir=o["aeron_dir"],
        term_length=o["term_length"],
        idle=o["idle"],
        progress=_progress(out),
        progress_every=REPORT_EVERY,
    )
    # Both ends go on until SIGTERM (the _Stop raised in its handler ends
    # them cleanly): a sender across publisher restarts, a receiver across
    # sender restarts.
    if o["role"] == "send":
        return bridge.send(
            o["ring"],
            o["channel"],
            stage=o["stage"],
            first=o["first"],
            linger=o["linger"],
            follow=True,
            **common,
        )
    return bridge.recv(
        o["channel"], ring=o["ring"], capacity=o["capacity"], bounded=o["bounded"], **common
    )


RUNNERS = {
    "feeds": run_feed,
    "books": run_books,
    "senders": run_sender,
    "stages": run_stage,
    "journals": run_journal,
    "bridges": run_bridge,
}


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Stop()


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    _die_with_parent(spec["parent"])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's
    signal.signal(signal.SIGTERM, _on_sigterm)
    out = _Reports(int(os.environ["RINGCAST_SERVE_REPORT_FD"]))
    try:
        # A SIGTERM that came while starting is delivered here.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        result = RUNNERS[spec["kind"]](spec, out)
    except _Stop:
        return 0
    except BaseException as e:
        out.send({"event": "failed", "error": f"{type(e).__name__}: {e}"})
        raise
    if isinstance(result, dict):
        out.send({"event": "report", "report": result, "latency": None})
    return 0
