"""``ringcast demo``: a trading day through the whole pipeline, in real processes.

A generated NASDAQ TotalView-ITCH 5.0 day is sent as MoldUDP64 over loopback
multicast (a few packets skipped on purpose, a retransmission server
answering for them); the feed handler recovers the gaps and publishes every
message into typed rings on a bus (``<bus>.add_order``, ...) and, in order,
into ``<bus>.itch``; the book builder keeps every instrument's price levels
and publishes each change into ``<bus>.book``; strategy processes read the
book updates, keep the top of book, and time each update from the kernel's
receive of its packet (wire) to their own read (strategy). A live view shows
message rates by type, gaps and recoveries, ring lag and loss, latency
percentiles and the busiest books; a summary and the checks come at the end.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import itch
from ._api import Subscriber, WaitStrategy, default_dir, list_rings
from ._native import LatencyHistogram
from .errors import InvalidArgument, RingClosed

REPORT_EVERY = 0.25
MAX_MESSAGES = 50_000_000
TOP_BOOKS = 8


@dataclass
class DemoConfig:
    """What one run does."""

    messages: int
    rate: float
    strategies: int
    seed: int
    drop: float
    capacity: int
    dir: str | None
    bus: str = ""
    group: str = ""
    server: str = ""
    day: str = ""

    def check(self) -> None:
        if self.capacity < 2 or self.capacity & (self.capacity - 1):
            raise InvalidArgument(
                f"--capacity must be a power of two >= 2 (ring slots), got {self.capacity}"
            )
        if not 0 <= self.drop <= 50:
            raise InvalidArgument(f"--drop is a percentage from 0 to 50, got {self.drop}")
        if not 1000 <= self.messages <= MAX_MESSAGES:
            raise InvalidArgument(
                f"the day holds 1,000 to {MAX_MESSAGES:,} messages (generated into a temporary "
                f"file, ~32 bytes each), got {self.messages:,}: lower --rate or --duration, or "
                "give --messages"
            )


def _child() -> None:
    """What every demo process does first: leave Ctrl-C to the parent, which
    stops the children and removes the rings (one message, no tracebacks).
    Children start with SIGINT blocked (see :func:`_start`); ignoring it
    discards one that came meanwhile."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _start(process: Any) -> None:
    """Starts a child with SIGINT blocked (the mask survives exec), so that a
    Ctrl-C while the child's interpreter starts cannot interrupt it before it
    ignores SIGINT; the parent gets that Ctrl-C once unblocked."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _CtrlC:
    """Remembers a Ctrl-C even when the KeyboardInterrupt it raises is
    swallowed: Python runs signal handlers between bytecodes, and one that
    lands inside a finalizer (multiprocessing unlinking a semaphore) is
    printed as "Exception ignored" and lost. The parent raises it again at its
    next check, so a Ctrl-C always stops the run."""

    def __init__(self) -> None:
        self.hit = False
        self._old: Any = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)

    def restore(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)

    def _handle(self, signum: int, frame: Any) -> None:
        self.hit = True
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.hit:
            raise KeyboardInterrupt


def _run_child(name: str, reports: Any, call: Any) -> None:
    """Runs one stage; its final report (or its error) goes to the parent."""
    _child()
    try:
        reports.put((name, "done", call()))
    except BaseException as e:
        reports.put((name, "failed", f"{type(e).__name__}: {e}"))


def handler_stage(cfg: DemoConfig, ready: Any, reports: Any) -> None:
    _run_child(
        "handler",
        reports,
        lambda: itch.handle(
            cfg.group,
            bus=cfg.bus,
            dir=cfg.dir,
            retransmit=cfg.server,
            capacity=cfg.capacity,
            stream_capacity=max(cfg.capacity, 1 << 18),
            idle_timeout=30.0,
            ready=ready.set,
            progress=lambda r: reports.put(("handler", "progress", r)),
            progress_every=REPORT_EVERY,
        ),
    )


def book_stage(cfg: DemoConfig, ready: Any, reports: Any) -> None:
    _run_child(
        "books",
        reports,
        lambda: itch.books(
            cfg.bus,
            dir=cfg.dir,
            capacity=cfg.capacity,
            ready=ready.set,
            progress=lambda r: reports.put(("books", "progress", r)),
            progress_every=REPORT_EVERY,
        ),
    )


def sender_stage(cfg: DemoConfig, go: Any, reports: Any) -> None:
    def send() -> dict[str, Any]:
        go.wait()
        return itch.send(
            cfg.day,
            cfg.group,
            rate=cfg.rate,
            retransmit=cfg.server,
            drop=cfg.drop or None,
            drop_seed=cfg.seed,
            linger=5.0,
        )

    _run_child("sender", reports, send)


def strategy_stage(cfg: DemoConfig, index: int, attached: Any, reports: Any) -> None:
    """Reads book updates until the book builder closes its ring: times each
    update from wire to here as it arrives, and keeps the top of book per
    instrument (the bookkeeping runs once per report, on the batches read
    since, so that reading keeps up on a small host). Waits by parking: with
    more processes than CPUs, a spinning reader takes the CPU the stages
    upstream need."""
    _child()
    name = f"strategy {index}"
    try:
        latency = LatencyHistogram(highest=60.0)
        updates = np.zeros(1 << 16, np.int64)
        top_fields = ("best_bid", "best_bid_shares", "best_ask", "best_ask_shares")
        tops = np.zeros((1 << 16, len(top_fields)), np.int64)
        # Updates land straight in a preallocated chunk (recv_batch_into):
        # no array per batch, no concatenation (slow for records).
        chunk = np.zeros(1 << 16, itch.BOOK_UPDATE)
        filled = 0
        next_report = time.monotonic() + REPORT_EVERY
        with Subscriber.attach(
            f"{cfg.bus}.book", dir=cfg.dir, start="oldest", dtype=itch.BOOK_UPDATE,
            wait=WaitStrategy.park(),
        ) as sub:  # fmt: skip
            attached.set()

            def book_keeping() -> None:
                nonlocal filled
                if filled:
                    batch = chunk[:filled]
                    filled = 0
                    locs = batch["stock_locate"]
                    updates[:] += np.bincount(locs, minlength=len(updates))
                    # The last update of each book in the batch.
                    _, from_end = np.unique(locs[::-1], return_index=True)
                    last = len(batch) - 1 - from_end
                    for i, f in enumerate(top_fields):
                        tops[locs[last], i] = batch[f][last]

            def report(kind: str) -> None:
                book_keeping()
                busiest = np.argpartition(updates, -TOP_BOOKS)[-TOP_BOOKS:]
                busiest = busiest[np.argsort(updates[busiest])[::-1]]
                reports.put(
                    (
                        name,
                        kind,
                        {
                            "received": sub.received,
                            "lost": sub.lost,
                            "position": sub.position,
                            "latency": latency.encode(),
                            "tops": [
                                (int(loc), int(updates[loc]), tuple(tops[loc].tolist()))
                                for loc in busiest
                                if updates[loc]
                            ],
                        },
                    )
                )

            while True:
                try:
                    n = sub.recv_batch_into(chunk[filled:], timeout=REPORT_EVERY)
                except RingClosed:
                    break
                if n:
                    wire = chunk["recv_ns"][filled : filled + n].astype(np.int64)
                    latency.record_many(time.monotonic_ns() - wire)
                    filled += n
                    if filled == len(chunk):
                        book_keeping()
                if time.monotonic() >= next_report:
                    report("progress")
                    next_report = time.monotonic() + REPORT_EVERY
            report("done")
    except BaseException as e:
        reports.put((name, "failed", f"{type(e).__name__}: {e}"))
        attached.set()


@dataclass
class Board:
    """What the parent knows of every stage, for the view and the summary."""

    cfg: DemoConfig
    symbols: dict[int, str]
    started: float = field(default_factory=time.monotonic)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    _last_counts: dict[str, int] = field(default_factory=dict)
    _last_time: float = field(default_factory=time.monotonic)

    def take(self, stage: str, kind: str, body: Any) -> None:
        if kind == "failed":
            self.failed[stage] = body
            return
        self.latest[stage] = body
        if kind == "done":
            self.done[stage] = body
        if stage == "handler":
            now = time.monotonic()
            counts = body["decoded"]["by_type"]
            dt = max(now - self._last_time, 1e-3)
            self.rates = {k: (v - self._last_counts.get(k, 0)) / dt for k, v in counts.items()}
            self._last_counts, self._last_time = dict(counts), now

    def latency(self) -> LatencyHistogram:
        total = LatencyHistogram(highest=60.0)
        for stage, body in self.latest.items():
            if stage.startswith("strategy"):
                total.add(body["latency"])
        return total

    def finished(self) -> bool:
        return bool(self.failed) or len(self.done) == 3 + self.cfg.strategies


def _view(board: Board) -> Any:
    """The live view (rich renderables)."""
    from rich.columns import Columns
    from rich.panel import Panel
    from rich.table import Table

    h = board.latest.get("handler", {})
    b = board.latest.get("books", {})
    elapsed = time.monotonic() - board.started
    feed = Table(title="feed handler", expand=True)
    feed.add_column("message type")
    feed.add_column("count", justify="right")
    feed.add_column("per s", justify="right")
    counts = h.get("decoded", {}).get("by_type", {})
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:10]:
        feed.add_row(name, f"{n:,}", f"{board.rates.get(name, 0):,.0f}")
    lines = h.get("lines", [{}])
    gaps = Table(title="gaps and recovery", expand=True)
    gaps.add_column("")
    gaps.add_column("", justify="right")
    for label, value in (
        ("delivered", h.get("delivered", 0)),
        ("packets", lines[0].get("packets", 0)),
        ("gaps", h.get("gaps", 0)),
        ("recovered", h.get("recovered", 0)),
        ("requests", h.get("requests", 0)),
        ("lost", h.get("lost", 0)),
        ("kernel drops", lines[0].get("kernel_drops") or 0),
    ):
        gaps.add_row(label, f"{value:,}")
    rings = Table(title="rings", expand=True)
    rings.add_column("reader")
    rings.add_column("read", justify="right")
    rings.add_column("lag", justify="right")
    rings.add_column("lost", justify="right")
    published = b.get("updates", 0)
    rings.add_row(
        "book builder", f"{b.get('messages', 0):,}",
        f"{max(h.get('delivered', 0) - b.get('messages', 0), 0):,}", f"{b.get('lost', 0):,}",
    )  # fmt: skip
    for i in range(1, board.cfg.strategies + 1):
        s = board.latest.get(f"strategy {i}", {})
        rings.add_row(
            f"strategy {i}", f"{s.get('received', 0):,}",
            f"{max(published - s.get('position', 0), 0):,}", f"{s.get('lost', 0):,}",
        )  # fmt: skip
    lat = board.latency()
    latency = Table(title="wire -> strategy latency (us)", expand=True)
    for col in ("p50", "p99", "p99.9", "max", "updates"):
        latency.add_column(col, justify="right")
    if lat.count:
        latency.add_row(
            *(f"{lat.value_at_percentile(p) / 1e3:,.1f}" for p in (50, 99, 99.9)),
            f"{lat.max / 1e3:,.1f}",
            f"{lat.count:,}",
        )
    books = Table(title="busiest books (strategy 1)", expand=True)
    for col in ("symbol", "updates", "bid", "size", "ask", "size"):
        books.add_column(col, justify="right" if col != "symbol" else "left")
    for loc, n, (bid, bid_size, ask, ask_size) in board.latest.get("strategy 1", {}).get(
        "tops", []
    ):
        books.add_row(
            board.symbols.get(loc, str(loc)), f"{n:,}", f"{bid / 1e4:,.2f}" if bid else "-",
            f"{bid_size:,}", f"{ask / 1e4:,.2f}" if ask else "-", f"{ask_size:,}",
        )  # fmt: skip
    title = (
        f"ringcast demo: {board.cfg.messages:,} ITCH messages at {board.cfg.rate:,.0f}/s, "
        f"{elapsed:.1f} s"
    )
    return Panel(
        Columns([feed, gaps, rings, latency, books], expand=True, equal=False), title=title
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(
    messages: int | None = None,
    rate: float = 250_000,
    duration: float = 4.0,
    strategies: int = 2,
    seed: int = 1,
    drop: float = 0.5,
    capacity: int = 1 << 16,
    dir: str | None = None,
    live: bool | None = None,
    out: Any = print,
) -> bool:
    """Runs the demo; prints the summary; returns whether every check passed.

    The day is ``messages`` messages (default: ``rate * duration``) sent at
    ``rate`` per second. Everything is made before any process starts, so a
    bad argument is one error at once; the rings and the day file are
    removed at the end, and when the run is interrupted (KeyboardInterrupt
    is raised again once the children are stopped)."""
    cfg = DemoConfig(
        messages=int(messages or rate * duration), rate=rate, strategies=strategies,
        seed=seed, drop=drop, capacity=capacity, dir=default_dir(dir),
    )  # fmt: skip
    cfg.check()
    if live is None:
        live = sys.stdout.isatty()
    cfg.bus = f"demo{os.getpid()}"
    port = _free_port()
    cfg.group = f"239.255.{os.getpid() % 250}.{(os.getpid() >> 8) % 250 + 1}:{port}"
    cfg.server = f"127.0.0.1:{_free_port()}"
    work = tempfile.mkdtemp(prefix="ringcast-demo-")
    cfg.day = os.path.join(work, "day.itch")
    ctx = mp.get_context("spawn")
    reports = ctx.Queue()
    procs: list[Any] = []
    ctrl_c = _CtrlC()
    try:
        ctrl_c.install()
        itch.generate(cfg.day, seed=seed, messages=cfg.messages)
        directory = itch.read_file(cfg.day, types=["R"])["stock_directory"]
        symbols = {int(r["stock_locate"]): r["stock"].decode().strip() for r in directory}
        out(
            f"ringcast demo: generated ITCH day of {cfg.messages:,} messages "
            f"({len(symbols):,} stocks) -> MoldUDP64 {cfg.group} ({drop:g}% of packets "
            f"skipped on purpose, retransmission server {cfg.server}) -> feed handler -> "
            f"rings {cfg.bus}.* -> book builder -> {strategies} strategies"
        )
        stages = 4 + strategies
        cpus = len(os.sched_getaffinity(0))
        if stages > cpus:
            out(
                f"note: {stages} processes (sender, handler, book builder, {strategies} "
                f"strategies, this view) share {cpus} CPUs: latency figures include time "
                "spent waiting for a CPU"
            )
        for target, args in (
            (handler_stage, (cfg,)),
            (book_stage, (cfg,)),
            *((strategy_stage, (cfg, i)) for i in range(1, strategies + 1)),
        ):
            ready = ctx.Event()
            p = ctx.Process(target=target, args=(*args, ready, reports))
            _start(p)
            procs.append(p)
            if not ready.wait(30):
                raise RuntimeError(f"{p.name} did not start within 30 s")
            ctrl_c.check()
        go = ctx.Event()
        sender = ctx.Process(target=sender_stage, args=(cfg, go, reports))
        _start(sender)
        procs.append(sender)
        board = Board(cfg, symbols)
        go.set()
        deadline = time.monotonic() + cfg.messages / rate + 120
        _watch(board, reports, live, deadline, ctrl_c.check)
        ctrl_c.check()
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.terminate()
        raise
    finally:
        ctrl_c.restore()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(5)
        _remove_rings(cfg)
        shutil.rmtree(work, ignore_errors=True)
    return _summary(board, out)


def _watch(board: Board, reports: Any, live: bool, deadline: float, check: Any) -> None:
    """Takes the stages' reports until every stage is done (or one failed),
    showing them live when asked to; ``check`` raises a Ctrl-C that was
    swallowed meanwhile."""

    def drain(wait: float) -> None:
        check()
        try:
            board.take(*reports.get(timeout=wait))
            while True:
                board.take(*reports.get_nowait())
        except queue.Empty:
            pass

    if not live:
        while not board.finished() and time.monotonic() < deadline:
            drain(REPORT_EVERY)
        return
    from rich.live import Live

    with Live(_view(board), refresh_per_second=4, transient=False) as view:
        while not board.finished() and time.monotonic() < deadline:
            drain(REPORT_EVERY)
            view.update(_view(board))


def _remove_rings(cfg: DemoConfig) -> None:
    """Removes the bus's rings, and the half-made file of a ring whose
    creation a stopped stage did not finish (``.<name>.<pid>.<n>.tmp``)."""
    from .serve._supervisor import _remove_ring, _remove_tmp

    for name in list_rings(cfg.dir):
        if name.startswith(f"{cfg.bus}."):
            _remove_ring(name, cfg.dir)
    _remove_tmp(cfg.dir, f".{cfg.bus}.")


def _summary(board: Board, out: Any) -> bool:
    cfg = board.cfg
    if board.failed:
        for stage, why in board.failed.items():
            out(f"{stage} failed: {why}")
        return False
    if not board.finished():
        out("CHECKS FAILED: the stages did not finish in time")
        return False
    s, h, b = board.done["sender"], board.done["handler"], board.done["books"]
    out(
        f"sent {s['messages']:,} messages in {s['packets']:,} packets in {s['elapsed']:.2f} s "
        f"({s['messages'] / max(s['elapsed'], 1e-9):,.0f}/s), {s['dropped'][0]:,} packets "
        f"skipped on purpose"
    )
    line = h["lines"][0]
    out(
        f"feed handler: {h['delivered']:,} delivered in order, {h['gaps']:,} gaps, "
        f"{h['recovered']:,} recovered by retransmission, {h['lost']:,} lost; "
        f"{line['kernel_drops'] or 0:,} datagrams dropped by the kernel"
    )
    out(
        f"book builder: {b['messages']:,} messages, {b['updates']:,} book updates, "
        f"{b['live_orders']:,} orders live at the close, {b['book_errors']:,} book errors"
    )
    out(
        f"{'strategy':>8} {'updates':>10} {'lost':>8} {'p50 us':>8} {'p99 us':>8} "
        f"{'p99.9 us':>9} {'max us':>9}"
    )
    ok = h["delivered"] == s["messages"] and h["lost"] == 0 and h["ended"]
    ok &= b["book_errors"] == 0 and b["lost"] == 0 and b["messages"] == s["messages"]
    for i in range(1, cfg.strategies + 1):
        r = board.done[f"strategy {i}"]
        lat = LatencyHistogram.decode(r["latency"])
        exact = r["received"] + r["lost"] == b["updates"] == r["position"]
        ok &= exact
        p = [lat.value_at_percentile(q) / 1e3 for q in (50, 99, 99.9)]
        out(
            f"{i:>8} {r['received']:>10,} {r['lost']:>8,} {p[0]:>8.1f} {p[1]:>8.1f} "
            f"{p[2]:>9.1f} {lat.max / 1e3:>9.1f}"
            + ("" if exact else "  received + lost != published!")
        )
    out(
        "all checks passed: every message delivered in order (gaps recovered), books applied "
        "without error, every book update received or counted lost"
        if ok
        else "CHECKS FAILED"
    )
    return ok
