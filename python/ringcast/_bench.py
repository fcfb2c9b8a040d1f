"""``ringcast bench``: one-way latency and throughput between real processes.

A publisher process sends fixed-size messages at a fixed rate (or flat out)
into a ring with timestamps; subscriber processes read them and record each
message's latency into an HdrHistogram, handing one histogram per interval
to this process, which prints progress, the standard percentile
distribution at the end, and optionally writes an HdrHistogram interval log
and a percentile plot.

Paced messages carry the time they were due, so a publisher that falls
behind charges its delay to every message it held up: the figures are free
of coordinated omission. The loops run in Rust (``_native.bench_publish``,
``_native.bench_read``) with the GIL released; the Python workers around
them only start them and report once per interval.

Workers are this module run as ``python -m ringcast._bench worker ROLE``,
talking JSON lines: the orchestrator sends the start time on stdin, workers
report on stdout.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from . import _native
from ._native import IntervalLog, LatencyHistogram
from .errors import InvalidArgument, RingError

RING = "bench"
# Time the workers get to start (interpreter, imports, ring creation).
STARTUP_TIMEOUT = 30.0
WAITS = ("spin", "yield", "park", "adaptive")


@dataclass
class BenchOptions:
    """What to measure; the CLI flags of ``ringcast bench``."""

    duration: float = 10.0
    warmup: float = 1.0
    rate: float | None = 100_000.0  # messages/s; None: flat out
    size: int = 64
    subscribers: int = 1
    capacity: int = 1 << 16
    bounded: bool = False
    wait: str = "spin"
    pub_cpu: int | None = None
    sub_cpus: list[int] = field(default_factory=list)
    interval: float = 1.0
    highest: float = 60.0
    dir: str | None = None

    def check(self) -> None:
        """Refuses impossible settings with the flag to fix."""
        if not (self.duration > 0 and math.isfinite(self.duration)):
            raise InvalidArgument(f"--duration must be > 0 seconds, got {self.duration}")
        if not (self.warmup >= 0 and math.isfinite(self.warmup)):
            raise InvalidArgument(f"--warmup must be >= 0 seconds, got {self.warmup}")
        if self.rate is not None and not (self.rate > 0 and math.isfinite(self.rate)):
            raise InvalidArgument(f"--rate must be > 0 messages/s (0: flat out), got {self.rate}")
        if not 1 <= self.size <= _native.MAX_SLOT_SIZE:
            raise InvalidArgument(
                f"--size must be 1..{_native.MAX_SLOT_SIZE} bytes, got {self.size}"
            )
        if self.subscribers < 1:
            raise InvalidArgument(f"--subscribers must be >= 1, got {self.subscribers}")
        if self.capacity < 2 or self.capacity & (self.capacity - 1):
            raise InvalidArgument(f"--capacity must be a power of two >= 2, got {self.capacity}")
        if self.wait not in WAITS:
            raise InvalidArgument(f"--wait must be one of {', '.join(WAITS)}, got {self.wait!r}")
        if not 0.01 <= self.interval <= 3600:
            raise InvalidArgument(f"--interval must be 0.01..3600 seconds, got {self.interval}")
        if not self.highest > 0:
            raise InvalidArgument(f"--highest must be > 0 seconds, got {self.highest}")


@dataclass
class BenchResult:
    """What a run measured (after the warmup)."""

    options: BenchOptions
    histogram: LatencyHistogram
    published: int
    received: int  # over all subscribers
    lost: int
    mismatched: int
    seconds: float
    max_behind_ns: int
    late: int
    intervals: int
    cpus: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """The figures as plain data (``--json``)."""
        h = self.histogram
        percentiles = {
            str(p): h.value_at_percentile(p) if h.count else None
            for p in (50.0, 90.0, 99.0, 99.9, 99.99, 100.0)
        }
        return {
            "options": asdict(self.options),
            "published": self.published,
            "received": self.received,
            "lost": self.lost,
            "mismatched": self.mismatched,
            "seconds": self.seconds,
            "received_per_second": self.received / self.seconds if self.seconds else 0.0,
            "publisher_max_behind_ns": self.max_behind_ns,
            "publisher_late": self.late,
            "latency_ns": {
                "count": h.count,
                "min": h.min,
                "mean": h.mean,
                "max": h.max,
                "percentiles": percentiles,
            },
            "histogram": h.encode(),
            "cpus": self.cpus,
        }


# ------------------------------------------------------------ workers ----


def _wait_strategy(kind: str) -> Any:
    from ._api import WaitStrategy

    return {
        "spin": WaitStrategy.busy_spin,
        "yield": WaitStrategy.yielding,
        "park": WaitStrategy.park,
        "adaptive": lambda: WaitStrategy.adaptive(spin=10_000, yield_=100),
    }[kind]()


def _say(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def _publisher_worker(opts: BenchOptions) -> None:
    from ._api import Publisher
    from ._native import bench_publish

    pub = Publisher.create(
        RING,
        capacity=opts.capacity,
        slot_size=opts.size,
        dir=opts.dir,
        bounded=opts.bounded,
        wait=_wait_strategy(opts.wait),
        pin_cpu=opts.pub_cpu,
        timestamps=True,
    )
    _say(event="ready", pid=os.getpid())
    go = json.loads(sys.stdin.readline())
    run = bench_publish(
        pub, size=opts.size, rate=opts.rate, start_ns=go["start_ns"], end_ns=go["end_ns"]
    )
    pub.close()
    _say(event="done", **run)


def _subscriber_worker(opts: BenchOptions, index: int) -> None:
    from ._api import Subscriber
    from ._native import bench_read

    cpu = opts.sub_cpus[index] if index < len(opts.sub_cpus) else None
    sub = Subscriber.attach(RING, dir=opts.dir, wait=_wait_strategy(opts.wait), pin_cpu=cpu)
    sub.record_latency(highest=opts.highest)
    _say(event="ready", pid=os.getpid())
    go = json.loads(sys.stdin.readline())
    start, step = go["start_ns"], go["interval_ns"]
    k = 0
    while True:
        k += 1
        run = bench_read(sub, deadline_ns=start + k * step)
        hist = sub.latency_interval()
        _say(event="interval", k=k, hist=hist.encode(), **run)
        if run["ended"]:
            break
    sub.close()


def worker_main(argv: list[str]) -> int:
    """Entry of a worker process: ``worker publisher|subscriber OPTIONS [INDEX]``."""
    role, options = argv[1], BenchOptions(**json.loads(argv[2]))
    try:
        if role == "publisher":
            _publisher_worker(options)
        else:
            _subscriber_worker(options, int(argv[3]))
    except RingError as e:
        _say(event="error", error=f"{type(e).__name__}: {e}")
        return 1
    return 0


# ------------------------------------------------------- orchestrator ----


class _Worker:
    """One worker process and a thread turning its stdout into events."""

    def __init__(self, name: str, args: list[str], events: queue.Queue):
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ringcast._bench", "worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(events,), daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _pump(self, events: queue.Queue) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                events.put((self.name, json.loads(line)))
            except json.JSONDecodeError:
                self.stderr.append(line)
        events.put((self.name, {"event": "exit"}))

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def failure(self) -> str:
        """What the worker printed on stderr, last lines."""
        text = "".join(self.stderr).strip().splitlines()
        return "\n".join(text[-15:]) or f"exit status {self.proc.poll()}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class BenchError(RingError):
    """A bench worker failed; the message carries its error output."""


def _default_cpus(opts: BenchOptions) -> None:
    """Publisher on the first CPU this process may use, subscribers on the
    others in turn, unless set; unpinned on a single CPU."""
    from ._memory import thread_cpus

    cpus = sorted(thread_cpus())
    if len(cpus) < 2:
        return
    if opts.pub_cpu is None:
        opts.pub_cpu = cpus[0]
    if not opts.sub_cpus:
        others = [c for c in cpus if c != opts.pub_cpu] or cpus
        opts.sub_cpus = [others[i % len(others)] for i in range(opts.subscribers)]


def _warn_if_crowded(opts: BenchOptions, out: TextIO | None) -> None:
    """Says so when spinning processes outnumber the CPUs they may use: their
    latency then measures the scheduler's time slices, not the ring."""
    from ._memory import thread_cpus

    cpus = len(thread_cpus())
    busy = 1 + opts.subscribers
    if out is not None and opts.wait == "spin" and busy > cpus:
        print(
            f"note: {busy} spinning processes on {cpus} CPU(s): they take turns on the "
            "CPUs, so the latency measured is mostly time slicing; use fewer "
            "--subscribers or --wait park",
            file=out,
            flush=True,
        )


def run(
    opts: BenchOptions,
    *,
    pin: bool = True,
    log_path: str | None = None,
    progress: TextIO | None = sys.stderr,
) -> BenchResult:
    """Runs one benchmark; progress lines go to ``progress`` (None: quiet)."""
    opts.check()
    if pin:
        _default_cpus(opts)
    _warn_if_crowded(opts, progress)
    own_dir = opts.dir is None
    if own_dir:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        opts.dir = tempfile.mkdtemp(prefix="ringcast-bench-", dir=base)
    events: queue.Queue = queue.Queue()
    workers: list[_Worker] = []
    log = None
    try:
        config = json.dumps(asdict(opts))
        publisher = _Worker("publisher", ["publisher", config], events)
        workers.append(publisher)
        _await_ready([publisher], events)
        subscribers = [
            _Worker(f"subscriber {i}", ["subscriber", config, str(i)], events)
            for i in range(opts.subscribers)
        ]
        workers += subscribers
        _await_ready(subscribers, events)
        interval_ns = round(opts.interval * 1e9)
        warmup_intervals = math.ceil(opts.warmup / opts.interval - 1e-9)
        start_ns = time.monotonic_ns() + 200_000_000
        end_ns = start_ns + round((opts.warmup + opts.duration) * 1e9)
        for s in subscribers:
            s.send({"start_ns": start_ns, "interval_ns": interval_ns})
        publisher.send({"start_ns": start_ns, "end_ns": end_ns})
        if log_path is not None:
            mode = f"{opts.rate:,.0f} msg/s" if opts.rate else "flat out"
            log = IntervalLog(
                log_path,
                start_unix_ns=time.time_ns()
                + (start_ns - time.monotonic_ns())
                + warmup_intervals * interval_ns,
                comment=f"ringcast bench: {opts.size}-byte messages, {mode}, "
                f"{opts.subscribers} subscriber(s), one-way latency in ns",
            )
        return _collect(
            opts,
            publisher,
            subscribers,
            events,
            log,
            warmup_intervals,
            start_ns,
            end_ns,
            progress,
        )
    finally:
        if log is not None:
            log.close()
        for w in workers:
            w.stop()
        if own_dir:
            shutil.rmtree(opts.dir, ignore_errors=True)
            opts.dir = None
        else:  # the next run in the same directory makes its ring anew
            with contextlib.suppress(FileNotFoundError):
                os.unlink(_native.ring_path(RING, opts.dir))


def _await_ready(workers: list[_Worker], events: queue.Queue) -> None:
    waiting = {w.name: w for w in workers}
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while waiting:
        name, event = _next_event(events, deadline, waiting)
        if name not in waiting:
            continue
        if event["event"] == "ready":
            del waiting[name]
        else:
            raise _failed(waiting[name], event)


def _next_event(events: queue.Queue, deadline: float, workers: dict[str, _Worker]) -> tuple:
    try:
        return events.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        names = ", ".join(workers)
        raise BenchError(f"bench workers did not answer in time: {names}") from None


def _failed(worker: _Worker, event: dict[str, Any]) -> BenchError:
    if event.get("event") == "error":
        return BenchError(f"{worker.name}: {event['error']}")
    worker.proc.wait(timeout=5)
    return BenchError(f"{worker.name} failed:\n{worker.failure()}")


def _collect(
    opts: BenchOptions,
    publisher: _Worker,
    subscribers: list[_Worker],
    events: queue.Queue,
    log: IntervalLog | None,
    warmup_intervals: int,
    start_ns: int,
    end_ns: int,
    progress: TextIO | None,
) -> BenchResult:
    """Gathers interval reports until the publisher is done and every
    subscriber saw the end of the stream."""
    by_name = {w.name: w for w in [publisher, *subscribers]}
    total = LatencyHistogram(highest=opts.highest)
    # Interval k -> subscriber name -> its report of interval k.
    pending: dict[int, dict[str, dict[str, Any]]] = {}
    ended_at: dict[str, int] = {}  # subscriber -> its last interval
    counts = {"received": 0, "lost": 0, "mismatched": 0}
    done: dict[str, Any] | None = None
    measured = 0
    last = warmup_intervals + math.ceil(opts.duration / opts.interval - 1e-9)
    # The stream ends at end_ns; allow the readers a few intervals to drain.
    deadline = time.monotonic() + (end_ns - time.monotonic_ns()) / 1e9 + 30 + 3 * opts.interval
    while done is None or len(ended_at) < len(subscribers):
        name, event = _next_event(events, deadline, by_name)
        kind = event["event"]
        if kind == "done":
            done = event
        elif kind == "interval":
            # Messages read after the last full interval (in flight at the
            # end) belong to it.
            k = min(event["k"], last)
            if name in pending.get(k, {}):
                _merge_report(pending[k][name], event)
            else:
                pending.setdefault(k, {})[name] = event
            if event["ended"]:
                ended_at[name] = k
        elif name not in ended_at and not (name == "publisher" and done is not None):
            raise _failed(by_name[name], event)
        # Interval k is complete once each subscriber reported it or ended before it.
        for k in sorted(pending):
            reports = pending[k]
            if any(s.name not in reports and ended_at.get(s.name, k) >= k for s in subscribers):
                break
            if k == last and len(ended_at) < len(subscribers):
                break
            del pending[k]
            if k <= warmup_intervals:
                continue
            measured += 1
            hist = LatencyHistogram(highest=opts.highest)
            for r in reports.values():
                hist.add(r["hist"])
                for key in counts:
                    counts[key] += r[key]
            total.add(hist)
            if log is not None:
                log.append(hist, (k - 1 - warmup_intervals) * opts.interval, opts.interval)
            if progress is not None:
                _progress_line(progress, opts, k - warmup_intervals, hist, reports.values())
    assert done is not None
    for w in [publisher, *subscribers]:
        w.proc.wait(timeout=10)
    return BenchResult(
        options=opts,
        histogram=total,
        published=done["published"],
        received=counts["received"],
        lost=counts["lost"],
        mismatched=counts["mismatched"],
        seconds=min(measured * opts.interval, opts.duration),
        max_behind_ns=done["max_behind_ns"],
        late=done["late"],
        intervals=measured,
        cpus={"publisher": opts.pub_cpu, "subscribers": opts.sub_cpus},
    )


def _merge_report(into: dict[str, Any], later: dict[str, Any]) -> None:
    """Adds a subscriber's later interval report to an earlier one."""
    hist = LatencyHistogram.decode(into["hist"])
    hist.add(later["hist"])
    into["hist"] = hist.encode()
    for key in ("received", "lost", "mismatched"):
        into[key] += later[key]
    into["ended"] = later["ended"]


def _progress_line(
    out: TextIO, opts: BenchOptions, k: int, hist: LatencyHistogram, reports: Any
) -> None:
    reports = list(reports)
    received = sum(r["received"] for r in reports)
    lost = sum(r["lost"] for r in reports)
    elapsed = min(k * opts.interval, opts.duration)
    if hist.count:
        lat = (
            f"p50 {hist.value_at_percentile(50) / 1e3:8.2f} us  "
            f"p99 {hist.value_at_percentile(99) / 1e3:8.2f} us  "
            f"max {hist.max / 1e3:10.2f} us"
        )
    else:
        lat = "no messages"
    print(
        f"[{elapsed:6.1f}/{opts.duration:.1f} s] {received / opts.interval:14,.0f} msg/s  "
        f"{lat}  lost {lost:,}",
        file=out,
        flush=True,
    )


# ------------------------------------------------------------- report ----


def report(result: BenchResult, unit: str = "us") -> str:
    """The human report: settings, throughput, loss, percentile distribution."""
    o = result.options
    mode = (
        f"{o.rate:,.0f} msg/s, due-time stamps (coordinated omission corrected)"
        if (o.rate)
        else "flat out, send-time stamps (latency includes queueing)"
    )
    ring = "bounded (lossless)" if o.bounded else "lossy"
    lines = [
        f"ringcast bench: {o.size}-byte messages, {mode}",
        f"  ring: {o.capacity} slots, {ring}; wait {o.wait}; "
        f"{o.subscribers} subscriber(s); publisher CPU {_cpu(o.pub_cpu)}, "
        f"subscriber CPUs {', '.join(_cpu(c) for c in o.sub_cpus) or 'unpinned'}",
        f"  measured {result.seconds:.1f} s after {o.warmup:.1f} s warmup: "
        f"{result.received:,} received ({result.received / max(result.seconds, 1e-9):,.0f}/s), "
        f"{result.lost:,} lost, {result.mismatched} mismatched",
    ]
    if o.rate:
        lines.append(
            f"  publisher: {result.late:,} messages sent > 1 us late, "
            f"worst {result.max_behind_ns / 1e3:,.1f} us behind schedule"
        )
    lines.append(f"\nOne-way latency ({unit}):\n")
    lines.append(result.histogram.percentile_distribution(unit=unit))
    return "\n".join(lines)


def _cpu(cpu: int | None) -> str:
    return "unpinned" if cpu is None else str(cpu)


def plot(result: BenchResult, path: str) -> None:
    """Writes the percentile plot (latency against 1/(1-percentile), log
    scale, as HdrHistogram plots are drawn) to the PNG file ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise InvalidArgument(
            f"--plot needs matplotlib: pip install matplotlib (or 'ringcast[bench]') ({e})"
        ) from None
    h = result.histogram
    if not h.count:
        raise InvalidArgument("nothing was measured, so there is nothing to plot")
    nines = min(6.0, math.log10(max(h.count, 10)))
    xs = [10 ** (nines * i / 400) for i in range(401)]
    ys = [h.value_at_percentile(100.0 * (1 - 1 / x)) / 1e3 for x in xs]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    o = result.options
    ax.plot(
        xs, ys, label=f"ringcast, {o.size} B, " + (f"{o.rate:,.0f}/s" if o.rate else "flat out")
    )
    ax.set_xscale("log")
    # Medians in hundreds of ns and stalls in ms: both readable only on a log axis.
    ax.set_yscale("log")
    ticks = [10**i for i in range(int(nines) + 1)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([_percentile_label(t) for t in ticks])
    ax.set_xlabel("percentile")
    ax.set_ylabel("one-way latency (us)")
    ax.set_title("ringcast bench: latency by percentile")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _percentile_label(x: float) -> str:
    p = 100 * (1 - 1 / x)
    return f"{p:.{max(0, round(math.log10(x)) - 2)}f}%"


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "worker":
        sys.exit(worker_main(sys.argv[1:]))
    sys.exit("usage: ringcast bench ... (this module runs bench workers)")
