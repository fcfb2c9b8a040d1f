"""The service's HTTP port: ``/metrics`` (Prometheus exposition),
``/status.json`` (what the status page shows) and ``/`` (the status page).

A :class:`StatusServer` is a ``ThreadingHTTPServer`` on a daemon thread.
Every request reads the ring files and the supervisor's ``status()`` when it
comes; nothing is cached but the previous ring snapshot (for rates).
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.exposition import choose_encoder

from .. import _host_stats
from ..errors import RingError
from . import _metrics, _page

__all__ = ["MetricsAddressError", "StatusServer", "start_http"]

log = logging.getLogger("ringcast.serve")

# Rates on the status page are taken over at least this long (several pages
# polling at once do not shorten it).
_MIN_RATE_INTERVAL = 0.5


class MetricsAddressError(RingError, OSError):
    """The metrics address cannot be used (bad form, unknown host, port in
    use, no permission)."""


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], family: int, app: StatusServer) -> None:
        self.address_family = family
        self.app = app
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "ringcast-serve"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, head: bool) -> None:
        path = urlsplit(self.path).path
        app = self.server.app
        try:
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept") or "")
                body = encoder(app.registry)
                self._send(200, body, content_type, head)
            elif path == "/status.json":
                body = json.dumps(app.status_json(), default=str).encode()
                self._send(200, body, "application/json", head)
            elif path in ("/", "/index.html"):
                self._send(200, _page.PAGE.encode(), "text/html; charset=utf-8", head)
            else:
                text = f"not found: {path} (try /, /metrics or /status.json)\n"
                self._send(404, text.encode(), "text/plain; charset=utf-8", head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:
            log.exception("serving %s failed", path)
            text = f"{type(e).__name__}: {e}\n".encode()
            try:
                self._send(500, text, "text/plain; charset=utf-8", head)
            except OSError:
                pass

    def do_GET(self) -> None:
        self._route(head=False)

    def do_HEAD(self) -> None:
        self._route(head=True)


class StatusServer:
    """The metrics and status page server; see :func:`start_http`."""

    def __init__(
        self,
        host: str,
        port: int,
        ring_dir: str | None,
        status: Callable[[], dict[str, Any]] | None,
    ) -> None:
        self.ring_dir = ring_dir
        self.status = status
        self.registry = _metrics.make_registry(ring_dir, status)
        self._prev_lock = threading.Lock()
        self._prev: dict[str, Any] | None = None
        where = f"{_format_host(host)}:{port}"
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as e:
            raise MetricsAddressError(
                f"cannot serve metrics on {where}: unknown host {host!r} ({e.strerror}); "
                "give an address of this machine, e.g. 127.0.0.1:9464"
            ) from e
        family, _, _, _, sockaddr = infos[0]
        try:
            self._server = _Server(sockaddr[:2], family, self)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                hint = "another process listens there: choose another port (or 0 for any free one)"
            elif e.errno == errno.EACCES:
                hint = "ports below 1024 need privileges: choose a port above 1023"
            elif e.errno == errno.EADDRNOTAVAIL:
                hint = "that address is not one of this machine's: use 127.0.0.1 or a local address"
            else:
                hint = "choose another address"
            err = MetricsAddressError(f"cannot serve metrics on {where}: {e.strerror}; {hint}")
            err.errno = e.errno
            raise err from e
        bound = self._server.server_address
        self.address: tuple[str, int] = (str(bound[0]), int(bound[1]))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"ringcast-metrics-{self.address[1]}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://HOST:PORT/``."""
        return f"http://{_format_host(self.address[0])}:{self.address[1]}/"

    def status_json(self) -> dict[str, Any]:
        """What ``/status.json`` answers."""
        status: dict[str, Any] = {"service": None, "items": []}
        status_error = None
        if self.status is not None:
            try:
                status = self.status()
            except Exception as e:
                log.warning("status() failed: %s", e, exc_info=True)
                status_error = f"{type(e).__name__}: {e}"
        rings_error = None
        try:
            cur = _host_stats.snapshot(self.ring_dir)
        except OSError as e:  # the ring directory is missing or unreadable
            rings_error = str(e)
            cur = {"time": time.time(), "monotonic": time.monotonic(), "dir": self.ring_dir,
                   "rings": [], "unreadable": []}  # fmt: skip
        with self._prev_lock:
            prev = self._prev
            rated = _host_stats.with_rates(prev, cur)
            if prev is None or cur["monotonic"] - prev["monotonic"] >= _MIN_RATE_INTERVAL:
                self._prev = cur
        latency: dict[str, Any] = {}
        for item in status.get("items") or ():
            hist = _metrics.decode_latency(item)
            if hist is not None:
                latency[item["name"]] = {
                    "what": item["latency"].get("what"),
                    "count": hist.count,
                    "percentiles": _metrics.latency_percentiles(hist),
                }
        return {
            "time": cur["time"],
            "dir": cur["dir"],
            "service": status.get("service"),
            "items": status.get("items") or [],
            "status_error": status_error,
            "rings_error": rings_error,
            "rings": rated["rings"],
            "unreadable": rated["unreadable"],
            "latency": latency,
        }

    def close(self) -> None:
        """Stops serving and frees the port. Idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> StatusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_http(
    host: str,
    port: int,
    ring_dir: str | None,
    status: Callable[[], dict[str, Any]] | None,
) -> StatusServer:
    """Serves ``/metrics``, ``/status.json`` and ``/`` on ``host:port`` (port
    0: any free port; ``.address`` has the one bound) from a daemon thread,
    reading the rings of ``ring_dir`` and the supervisor's ``status()`` at
    each request. Raises :class:`MetricsAddressError` naming the address and
    what to do when it cannot be bound."""
    return StatusServer(host, port, ring_dir, status)
