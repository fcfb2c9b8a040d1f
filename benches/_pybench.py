"""Helpers shared by the Python benchmarks (py_roundtrip.py, py_peers.py).

The 64-byte record type, pinning, percentiles, and :class:`Child`: a peer
process that is pinned to one CPU, dies with its parent, and is always
reaped (terminated, then killed) when the benchmark is done with it.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

import ringcast

DTYPE = np.dtype(
    [
        ("ts_ns", "<i8"),
        ("seq", "<u8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("bid_qty", "<u4"),
        ("ask_qty", "<u4"),
        ("symbol", "S8"),
        ("venue", "S8"),
        ("flags", "<u8"),
    ]
)
assert DTYPE.itemsize == 64

now_ns = time.perf_counter_ns

_PR_SET_PDEATHSIG = 1


def pin(cpu: int | None) -> bool:
    """Pins this process to ``cpu``; False (and runs unpinned) if that fails."""
    if cpu is None:
        return False
    try:
        os.sched_setaffinity(0, {cpu})
        return True
    except (AttributeError, OSError) as e:
        print(f"warning: pinning to cpu {cpu} failed ({e}); continuing unpinned", file=sys.stderr)
        return False


def two_cpus() -> tuple[int | None, int | None]:
    """The first two CPUs this process may run on, or (None, None) with a warning."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        return cpus[0], cpus[1]
    print("warning: fewer than two CPUs available; running unpinned", file=sys.stderr)
    return None, None


def die_with_parent() -> None:
    """Asks Linux to SIGKILL this process when its parent dies, so a benchmark
    that is killed leaves no spinning peer behind (best effort: no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def percentile(sorted_values: np.ndarray, p: float) -> float:
    """Nearest-rank percentile of an already sorted array."""
    rank = int(np.ceil(p / 100.0 * len(sorted_values)))
    return float(sorted_values[min(max(rank, 1), len(sorted_values)) - 1])


def latency_stats(samples_ns: list[int]) -> dict[str, float]:
    v = np.sort(np.asarray(samples_ns, dtype=np.int64))
    return {
        "samples": len(v),
        "p50_us": percentile(v, 50) / 1e3,
        "p99_us": percentile(v, 99) / 1e3,
        "p999_us": percentile(v, 99.9) / 1e3,
        "max_us": float(v[-1]) / 1e3,
        "min_us": float(v[0]) / 1e3,
    }


def time_until_closed(read: Callable[[], Any]) -> tuple[Any, float]:
    """Calls ``read()`` until the ring is closed and read out; the clock
    starts after the first call, whose result is returned with the seconds
    the other calls took (the loop calls ``read`` itself: no extra frame
    per message)."""
    first = read()
    t0 = now_ns()
    try:
        while True:
            read()
    except ringcast.RingClosed:
        return first, (now_ns() - t0) / 1e9


def records(n: int) -> np.ndarray:
    r = np.zeros(n, dtype=DTYPE)
    r["seq"] = np.arange(n, dtype=np.uint64)
    r["bid"] = 100.25
    r["ask"] = 100.5
    r["symbol"] = b"ESZ6"
    r["venue"] = b"XCME"
    return r


_context: Any = None


def mp_context(preload: list[str] | None = None) -> Any:
    """The multiprocessing context for peers: "forkserver" when available (a
    child starts in a few ms, with ``preload`` already imported), else "spawn".
    Never "fork": a forked copy of a process holding native threads or rings
    is not a clean peer. Chosen once per process."""
    global _context
    if _context is None:
        try:
            _context = mp.get_context("forkserver")
            _context.set_forkserver_preload(["__main__", *(preload or [])])
        except ValueError:
            _context = mp.get_context("spawn")
    return _context


class Child:
    """A peer process pinned to ``cpu``, talking over a control pipe.

    ``target(conn, *args)`` runs in the child; what it returns, if not None,
    is sent back over ``conn`` when it is done; an exception there is sent back
    (as an exception object when it pickles, else as its text) and raised by
    :meth:`expect`. Use :meth:`close` (or ``with``) so that the child is
    always reaped, even when the benchmark fails half-way.
    """

    def __init__(self, target: Callable[..., Any], cpu: int | None, *args: Any) -> None:
        ctx = mp_context()
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(
            target=_child_main, args=(target, cpu, child_conn, *args), daemon=True
        )
        self.proc.start()
        child_conn.close()

    def expect(self, what: str, timeout: float = 60.0) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"child did not send {what!r} within {timeout}s")
        try:
            msg = self.conn.recv()
        except EOFError:
            self.proc.join(1.0)
            raise RuntimeError(
                f"child exited (code {self.proc.exitcode}) before sending {what!r}"
            ) from None
        if isinstance(msg, BaseException):
            raise RuntimeError(f"child failed while we waited for {what!r}: {msg}") from msg
        return msg

    def join(self, timeout: float = 60.0) -> None:
        self.proc.join(timeout)
        if self.proc.exitcode != 0:
            raise RuntimeError(f"child exited with {self.proc.exitcode}")

    def close(self, grace: float = 2.0) -> None:
        """Reaps the child: waits ``grace`` seconds, then SIGTERM, then SIGKILL."""
        if self.proc.pid is not None:
            self.proc.join(grace)
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(grace)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(grace)
        self.conn.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _child_main(target: Callable[..., Any], cpu: int | None, conn: Connection, *args: Any) -> None:
    die_with_parent()
    pin(cpu)
    try:
        result = target(conn, *args)
        if result is not None:
            conn.send(result)
    except BaseException as e:
        # The parent reports the exception; the traceback goes to stderr once
        # (not again from multiprocessing), and Ctrl-C stays quiet.
        if not isinstance(e, KeyboardInterrupt):
            traceback.print_exc()
        try:
            conn.send(e)
        except Exception:
            conn.send(RuntimeError(f"{type(e).__name__}: {e}"))
        sys.exit(1)
