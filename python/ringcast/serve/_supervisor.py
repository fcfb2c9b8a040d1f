"""The supervisor of ``ringcast serve``: creates the declared rings, starts
every process item in dependency order (each layer once the one before is
ready), restarts what crashes or stalls with exponential backoff (a crash
loop is reported, in the log, the status and the metrics), applies an
edited configuration on SIGHUP, and on SIGTERM (or Ctrl-C) drains and stops
everything within ``shutdown_timeout``, then removes the rings it made.

One thread runs it all (:meth:`Supervisor.run`): signals only set flags and
wake it through :func:`signal.set_wakeup_fd`; the metrics server's thread
reads :meth:`Supervisor.status` under a lock.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._api import Publisher, list_rings
from ..errors import RingError
from . import _config
from ._config import ConfigError, Item, ServiceConfig

TICK = 0.05
# What an item can be doing (its status "state"; one metric sample each).
STATES = ("starting", "running", "backoff", "crash_loop", "stopping", "stopped", "exited")


@dataclass
class Running:
    """What the supervisor knows of one item."""

    item: Item
    state: str = "starting"
    proc: subprocess.Popen[bytes] | None = None
    reports: Any = None  # the read end of the item's report pipe
    buffer: bytes = b""
    restarts: int = 0
    started_unix: float | None = None
    started: float = 0.0
    last_heard: float = 0.0
    ready: bool = False
    last_exit: str | None = None
    error: str | None = None
    report: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] | None = None
    failures: collections.deque[float] = field(default_factory=collections.deque)
    next_start: float | None = None
    crash_loop: bool = False  # crash_loop_restarts failures within crash_loop_window
    retiring: bool = False  # removed from the config, or the service stops
    replacement: Item | None = None  # restart with these options once exited

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def status(self) -> dict[str, Any]:
        return {
            "name": self.item.name,
            "kind": {
                "rings": "ring",
                "feeds": "feed",
                "senders": "sender",
                "stages": "stage",
                "journals": "journal",
                "bridges": "bridge",
            }.get(self.item.kind, self.item.kind),
            "id": self.item.id,
            "state": self.state,
            "pid": self.proc.pid if self.alive and self.proc else None,
            "restarts": self.restarts,
            "crash_loop": self.crash_loop,
            "started_unix": self.started_unix,
            "last_exit": self.last_exit,
            "error": self.error,
            "report": self.report,
            "latency": self.latency,
        }


def _print(line: str) -> None:
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
    print(f"ringcast serve: {stamp} {line}", flush=True)


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class Supervisor:
    def __init__(
        self,
        config: ServiceConfig,
        *,
        metrics: tuple[str, int] | None = None,
        log: Callable[[str], Any] | None = None,
    ) -> None:
        self.config = config
        self.service = config.service
        self.dir = config.service["dir"]
        self.metrics_address = metrics or config.service["metrics"]
        self.running: dict[str, Running] = {}
        self.lock = threading.RLock()
        self.state = "starting"
        self.started_unix = time.time()
        self.reloads = 0
        self.last_reload_error: str | None = None
        self.http: Any = None
        self._log = log or _print
        self._selector = selectors.DefaultSelector()
        self._stop_requested = False
        self._reload_requested = False
        self._lock_fd: int | None = None
        self._lock_path = ""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)

    # --- what the metrics server reads -------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                "service": {
                    "name": self.service["name"],
                    "pid": os.getpid(),
                    "started_unix": self.started_unix,
                    "config": self.config.source,
                    "dir": self.dir,
                    "state": self.state,
                    "reloads": self.reloads,
                    "last_reload_error": self.last_reload_error,
                },
                "items": [r.status() for r in self.running.values()],
            }

    # --- running ------------------------------------------------------------------------

    def run(self) -> int:
        """Starts everything, supervises until SIGTERM/SIGINT, stops
        everything; 0 when all stopped in time and cleanly."""
        old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        old_fd = signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        try:
            self._check_dir()
            self._lock()
            if self.metrics_address is not None:
                self._start_http()
            self._start_items(self.config.order())
            if not self._stop_requested:
                with self.lock:
                    self.state = "running"
                n = sum(1 for r in self.running.values())
                self._log(f"ready ({n} items)")
            while not self._stop_requested:
                if self._reload_requested:
                    self._reload_requested = False
                    self.reload()
                self._pump(TICK)
                self._supervise()
            return self._shutdown()
        finally:
            signal.set_wakeup_fd(old_fd)
            for s, h in old.items():
                signal.signal(s, h)
            if self.http is not None:
                self.http.close()
            self._unlock()
            self._selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _on_stop(self, signum: int, frame: Any) -> None:
        self._stop_requested = True

    def _on_reload(self, signum: int, frame: Any) -> None:
        self._reload_requested = True

    def _lock(self) -> None:
        """One service of a name per ring directory: a second would take
        over the first's rings. The lock (``.serve-NAME.lock``, holding the
        pid) goes with the process, however it ends."""
        path = os.path.join(self.dir, f".serve-{self.service['name']}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(
                self.config.source,
                self.config.lines.get(("service", "name")),
                "service.name",
                f"service {self.service['name']!r} already runs in {self.dir} (pid {other}): "
                "stop it first, or give this one another name or dir",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd, self._lock_path = fd, path

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._lock_path)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _check_dir(self) -> None:
        try:
            os.makedirs(self.dir, mode=0o755, exist_ok=True)
            problem = None if os.access(self.dir, os.W_OK | os.X_OK) else "not writable"
        except OSError as e:
            problem = e.strerror or str(e)
        if problem is not None:
            raise ConfigError(
                self.config.source,
                self.config.lines.get(("service", "dir")),
                "service.dir",
                f"cannot create rings in {self.dir} ({problem} for uid {os.getuid()}): "
                "give a directory this user can create or owns",
            )

    def _start_http(self) -> None:
        from ._http import start_http

        host, port = self.metrics_address
        self.http = start_http(host, port, self.dir, self.status)
        h, p = self.http.address
        self._log(f"metrics on http://{h}:{p}/")

    # --- starting items ----------------------------------------------------------------

    def _start_items(self, layers: list[list[Item]]) -> None:
        """Starts layer after layer; a layer is started once each of its
        items is ready, has exited, or ``start_timeout`` passed."""
        for layer in layers:
            if self._stop_requested:
                return
            for item in layer:
                r = Running(item)
                with self.lock:
                    self.running[item.id] = r
                self._start(r)
            deadline = time.monotonic() + self.service["start_timeout"]
            waiting = [self.running[i.id] for i in layer if i.process]
            while not self._stop_requested and time.monotonic() < deadline:
                if all(r.ready or not r.alive for r in waiting):
                    break
                self._pump(TICK)
                self._supervise()
            for r in waiting:
                if r.alive and not r.ready:
                    self._log(
                        f"{r.item.id}: not ready after {self.service['start_timeout']:g} s; "
                        "starting what depends on it anyway"
                    )

    def _start(self, r: Running) -> None:
        item = r.item
        now = time.monotonic()
        r.started, r.started_unix, r.last_heard, r.next_start = now, time.time(), now, None
        r.ready, r.error = False, None
        if not item.process:
            try:
                self._create_ring(item)
            except RingError as e:
                r.state, r.error = "exited", str(e)
                self._log(f"{item.id}: cannot create the ring: {e}")
                return
            r.state, r.ready = "running", True
            self._log(f"{item.id}: created")
            return
        read_fd, write_fd = os.pipe()
        spec = {
            "kind": item.kind,
            "name": item.name,
            "options": item.options,
            "dir": self.dir,
            "restarts": r.restarts,
            "parent": os.getpid(),
        }
        env = dict(os.environ, RINGCAST_SERVE_REPORT_FD=str(write_fd))
        if self.service["path"]:
            env["PYTHONPATH"] = os.pathsep.join(
                [*self.service["path"], *filter(None, [os.environ.get("PYTHONPATH")])]
            )
        # Children start with SIGINT/SIGTERM blocked (the mask survives
        # exec) until they have installed their own handlers.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            r.proc = subprocess.Popen(
                [sys.executable, "-m", "ringcast.serve", json.dumps(spec, default=str)],
                pass_fds=(write_fd,),
                env=env,
                stdin=subprocess.DEVNULL,
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        r.reports = read_fd
        r.buffer = b""
        self._selector.register(read_fd, selectors.EVENT_READ, r)
        r.state = "starting"
        self._log(f"{item.id}: started (pid {r.proc.pid})")

    def _create_ring(self, item: Item) -> None:
        o = item.options
        pub = Publisher.create(
            item.name,
            capacity=o["capacity"],
            dtype=o["dtype"],
            slot_size=o["slot_size"],
            dir=self.dir,
            mode=o["mode_bits"],
            exist_ok=True,
            bounded=o["mode"] == "bounded",
            producers=o["producers"],
            max_subscribers=o["max_subscribers"],
            max_producers=o["max_producers"],
            watermark=o["watermark"],
            timestamps=o["timestamps"],
            huge_pages=o["huge_pages"],
            numa_node=o["numa_node"],
            prefault=o["prefault"],
        )
        # The service is not a publisher: the ring waits, closed, for the
        # stage (or program) that publishes into it.
        pub.close()

    # --- events from the items --------------------------------------------------------

    def _pump(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            r = key.data
            if r is None:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 512)
                continue
            try:
                chunk = os.read(key.fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                self._close_reports(r)
                continue
            r.buffer += chunk
            *lines, r.buffer = r.buffer.split(b"\n")
            for line in lines:
                self._event(r, line)

    def _close_reports(self, r: Running) -> None:
        if r.reports is not None:
            self._selector.unregister(r.reports)
            os.close(r.reports)
            r.reports = None

    def _event(self, r: Running, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            return
        with self.lock:
            r.last_heard = time.monotonic()
            kind = event.get("event")
            if kind == "ready":
                r.ready = True
                if r.state == "starting":
                    r.state = "running"
                self._log(f"{r.item.id}: ready")
            elif kind == "report":
                r.report = event.get("report") or {}
                if event.get("latency"):
                    r.latency = event["latency"]
                if r.state == "starting":
                    r.state = "running"
            elif kind == "failed":
                r.error = str(event.get("error"))

    # --- supervision ------------------------------------------------------------------

    def _supervise(self) -> None:
        now = time.monotonic()
        health = self.service["health_timeout"]
        for r in list(self.running.values()):
            if r.proc is not None and r.proc.returncode is None:
                code = r.proc.poll()
                if code is not None:
                    self._pump(0)  # the last reports, if any
                    self._exited(r, code)
                elif (
                    health > 0
                    and r.ready
                    and r.item.kind != "senders"
                    and not r.retiring
                    and now - r.last_heard > health
                ):
                    self._log(
                        f"{r.item.id}: no progress for {now - r.last_heard:.1f} s "
                        f"(health_timeout = {health:g}); killing it"
                    )
                    r.error = f"stalled: no progress for {now - r.last_heard:.1f} s"
                    r.proc.kill()
            elif r.next_start is not None and now >= r.next_start and not r.retiring:
                r.restarts += 1
                self._start(r)

    def _exited(self, r: Running, code: int) -> None:
        with self.lock:
            self._close_reports(r)
            how = _describe(code)
            r.last_exit = how + (f" ({r.error})" if r.error else "")
            ran = time.monotonic() - r.started
            if r.replacement is not None:  # changed by a reload: start anew
                r.item, r.replacement = r.replacement, None
                r.restarts += 1
                self._log(f"{r.item.id}: {how}; restarting with its new configuration")
                self._start(r)
                return
            if r.retiring:
                r.state = "stopped"
                self._log(f"{r.item.id}: stopped ({how})")
                return
            policy = r.item.options.get("restart", "on-failure")
            if policy == "never" or (code == 0 and policy == "on-failure"):
                r.state = "exited"
                self._log(
                    f"{r.item.id}: {r.last_exit} after {ran:.1f} s; not restarted "
                    f"(restart = {policy!r})"
                )
                return
            now = time.monotonic()
            window = self.service["crash_loop_window"]
            r.failures.append(now)
            while r.failures and now - r.failures[0] > window:
                r.failures.popleft()
            delay = min(
                self.service["restart_backoff"] * 2 ** (len(r.failures) - 1),
                self.service["restart_backoff_max"],
            )
            r.next_start = now + delay
            looping = len(r.failures) >= self.service["crash_loop_restarts"]
            entered, r.crash_loop = looping and not r.crash_loop, looping
            if entered:
                self._log(
                    f"{r.item.id}: CRASH LOOP: {len(r.failures)} failures in "
                    f"{window:g} s, last: {r.last_exit}; restarts keep backing off "
                    f"(next in {delay:.1f} s)"
                )
            else:
                self._log(
                    f"{r.item.id}: {r.last_exit} after {ran:.1f} s; restart "
                    f"{r.restarts + 1} in {delay:.2f} s" + (" (crash loop)" if looping else "")
                )
            r.state = "crash_loop" if looping else "backoff"

    # --- reload -------------------------------------------------------------------------

    def reload(self) -> bool:
        """Applies the edited configuration file: items added are started,
        items removed are stopped (and their rings removed), changed process
        items restart with their new options. Nothing is applied when the
        file is invalid or asks for a change that cannot apply live (a ring's
        layout, the ring directory, the metrics address): the reason is
        logged and kept in the status."""
        try:
            new = _config.load(self.config.source)
            problems = self._live_problems(new)
            if problems:
                raise ConfigError(
                    self.config.source, None, "", "not applied: " + "; ".join(problems)
                )
        except ConfigError as e:
            with self.lock:
                self.last_reload_error = str(e)
            self._log(f"reload refused: {e}")
            return False
        old_items = self.config.items
        added = [i for layer in new.order() for i in layer if i.id not in old_items]
        removed = [i for i in old_items if i not in new.items]
        changed = [
            i for i in new.items if i in old_items and new.items[i].options != old_items[i].options
        ]
        with self.lock:
            self.config = new
            self.service = new.service
            self.reloads += 1
            self.last_reload_error = None
        for item_id in removed:
            self._retire(self.running[item_id])
        for item_id in changed:
            r = self.running[item_id]
            if not r.item.process:
                r.item = new.items[item_id]  # only live keys (keep) changed
            elif r.alive:
                r.replacement = new.items[item_id]
                r.proc.terminate()  # type: ignore[union-attr]
            else:
                r.item, r.next_start = new.items[item_id], time.monotonic()
        for item in added:
            r = Running(item)
            with self.lock:
                self.running[item.id] = r
            self._start(r)
        for item_id in new.items:
            self.running[item_id].item.deps = new.items[item_id].deps
        self._log(
            f"reloaded {self.config.source}: {len(added)} added, {len(removed)} removed, "
            f"{len(changed)} changed"
        )
        return True

    def _live_problems(self, new: ServiceConfig) -> list[str]:
        problems = []
        for key, spec in _config.SECTIONS["service"].items():
            if not spec.live and new.service[key] != self.config.service[key]:
                problems.append(
                    f"service.{key} changed ({self.config.service[key]!r} -> "
                    f"{new.service[key]!r}): restart the service for that"
                )
        for item_id, item in new.items.items():
            old = self.config.items.get(item_id)
            if old is None:
                continue
            specs = _config.SECTIONS[item.kind]
            for key, spec in specs.items():
                if not spec.live and _differs(item.options[key], old.options[key]):
                    problems.append(
                        f"{item_id}.{key} changed ({_shown(old.options[key])} -> "
                        f"{_shown(item.options[key])}): a ring's layout cannot change while it "
                        "runs; remove it, reload, add it back and reload again"
                    )
        return problems

    def _retire(self, r: Running) -> None:
        """Stops a removed item; its rings go once its process has."""
        r.retiring = True
        r.next_start = None
        if r.alive:
            r.state = "stopping"
            r.proc.terminate()  # type: ignore[union-attr]
            deadline = time.monotonic() + self.service["shutdown_timeout"]
            while r.alive and time.monotonic() < deadline:
                self._pump(TICK)
                self._supervise()
            if r.alive:
                r.proc.kill()  # type: ignore[union-attr]
                r.proc.wait()  # type: ignore[union-attr]
                self._exited(r, r.proc.returncode)  # type: ignore[union-attr]
        self._remove_rings([r.item])
        with self.lock:
            del self.running[r.item.id]
        self._log(f"{r.item.id}: removed")

    # --- stopping -------------------------------------------------------------------------

    def _stop_layers(self) -> list[tuple[list[Running], bool]]:
        """Process items in the order data flows: senders before the feeds
        they send to, feeds before their books, writers before readers; with
        whether the layer has upstream items (the first has none)."""
        items = {i: r for i, r in self.running.items() if r.item.process}
        upstream: dict[str, set[str]] = {i: set() for i in items}
        for i, r in items.items():
            for d in r.item.deps:
                if d not in items:
                    continue
                if r.item.kind == "senders":
                    upstream[d].add(i)  # the sender feeds its feed handler
                else:
                    upstream[i].add(d)
        layers, done = [], set()
        while len(done) < len(items):
            layer = [i for i in items if i not in done and upstream[i] <= done]
            if not layer:  # a cycle cannot be configured; stop the rest together
                layer = [i for i in items if i not in done]
            layers.append(([items[i] for i in layer], any(upstream[i] for i in layer)))
            done.update(layer)
        return layers

    def _shutdown(self) -> int:
        """Drains and stops: each layer's sources get SIGTERM at once; an
        item with upstream items first gets ``drain_timeout`` to finish
        reading what they left (they end when their rings close); whatever
        is left at ``shutdown_timeout`` is killed. Then the rings go."""
        t0 = time.monotonic()
        with self.lock:
            self.state = "stopping"
        self._log("stopping")
        deadline = t0 + self.service["shutdown_timeout"]
        for r in self.running.values():
            r.retiring, r.next_start = True, None
        for layer, has_upstream in self._stop_layers():
            grace = min(time.monotonic() + self.service["drain_timeout"], deadline)
            if has_upstream:
                self._wait(layer, grace)
            for r in layer:
                if r.alive:
                    r.state = "stopping"
                    self._log(f"{r.item.id}: SIGTERM")
                    r.proc.terminate()  # type: ignore[union-attr]
            self._wait(layer, deadline)
        killed = []
        for r in self.running.values():
            if r.alive:
                killed.append(r.item.id)
                r.proc.kill()  # type: ignore[union-attr]
                r.proc.wait()  # type: ignore[union-attr]
                self._exited(r, r.proc.returncode)  # type: ignore[union-attr]
        if killed:
            self._log(
                f"killed after shutdown_timeout ({self.service['shutdown_timeout']:g} s): "
                + ", ".join(killed)
            )
        self._remove_rings([r.item for r in self.running.values()])
        with self.lock:
            self.state = "stopped"
        self._log(f"stopped in {time.monotonic() - t0:.2f} s")
        return 1 if killed else 0

    def _wait(self, runs: list[Running], deadline: float) -> None:
        while any(r.alive for r in runs) and time.monotonic() < deadline:
            self._pump(TICK)
            self._supervise()

    def _remove_rings(self, items: list[Item]) -> None:
        try:
            present = list_rings(self.dir)
        except (RingError, OSError):
            return
        for item in items:
            for name in item.owned_rings(present):
                _remove_ring(name, self.dir)
            if item.kind == "feeds" and not item.options["keep"]:
                _remove_tmp(self.dir, f".{item.options['bus']}.")


def _remove_ring(name: str, dir: str) -> None:
    """Removes a ring's file (and its huge-page file behind the link)."""
    from .._memory import ring_info
    from .._native import ring_path

    paths = [os.fspath(ring_path(name, dir))]
    with contextlib.suppress(RingError, OSError):
        at = os.fspath(ring_info(name, dir)["bytes_at"])
        if at not in paths:
            paths.append(at)
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _remove_tmp(dir: str, prefix: str) -> None:
    """Half-made ring files (``.<name>.<pid>.<n>.tmp``) of a killed creator."""
    with contextlib.suppress(OSError), os.scandir(dir) as entries:
        for e in entries:
            if e.name.startswith(prefix) and e.name.endswith(".tmp"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(e.path)


def _differs(a: Any, b: Any) -> bool:
    try:
        return bool(a != b)
    except (TypeError, ValueError):
        return True


def _shown(v: Any) -> str:
    return str(v) if hasattr(v, "descr") else repr(v)
