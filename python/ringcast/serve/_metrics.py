"""The service's metrics in the Prometheus exposition format.

:class:`ServiceCollector` is a ``prometheus_client`` custom collector: every
scrape reads the ring files of the ring directory (``_host_stats.snapshot``,
which attaches nothing, so the rings' publishers and subscribers never see a
scrape) and the supervisor's ``status()``. Nothing is counted on the hot
path: the rings keep their own counters in their files, and the feed, book
and stage processes report theirs to the supervisor.

Every name, its type and labels are listed in docs/metrics.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from .. import _host_stats
from .._native import LatencyHistogram
from ._supervisor import STATES

__all__ = [
    "ITEM_STATES",
    "LATENCY_BUCKETS",
    "ServiceCollector",
    "latency_percentiles",
    "make_registry",
]

log = logging.getLogger("ringcast.serve")

Status = Callable[[], dict[str, Any]]

ITEM_STATES = STATES  # the supervisor's, one sample each
SERVICE_STATES = ("starting", "running", "stopping")

# Upper bounds (seconds) of the latency histograms' buckets: 1-2.5-5 steps
# from 100 ns to 10 s. Fixed, so every scrape has the same series.
LATENCY_BUCKETS: tuple[float, ...] = (
    *(round(m * 10.0**e, 12) for e in range(-7, 1) for m in (1.0, 2.5, 5.0)),
    10.0,
)

# Percentiles of the status page's latency plot: 50, then ten points a
# decade of 1/(1 - p) up to 99.99 (90, 99, 99.9 and 99.99 among them).
PLOT_PERCENTILES: tuple[float, ...] = (
    50.0,
    *(round(100.0 * (1.0 - 10.0 ** (-j / 10.0)), 6) for j in range(4, 41)),
)


def _label(value: object) -> str:
    return "" if value is None else str(value)


class _Families:
    """The metric families of one scrape, made on first use, in order."""

    def __init__(self) -> None:
        self._by_name: dict[str, Metric] = {}

    def _get(self, kind: type[Metric], name: str, doc: str, labels: Sequence[str]) -> Metric:
        fam = self._by_name.get(name)
        if fam is None:
            fam = kind(name, doc, labels=list(labels))
            self._by_name[name] = fam
        return fam

    def gauge(self, name: str, doc: str, labels: dict[str, str], value: float) -> None:
        fam = self._get(GaugeMetricFamily, name, doc, list(labels))
        fam.add_metric(list(labels.values()), value)  # type: ignore[attr-defined]

    def counter(self, name: str, doc: str, labels: dict[str, str], value: float) -> None:
        fam = self._get(CounterMetricFamily, name, doc, list(labels))
        fam.add_metric(list(labels.values()), value)  # type: ignore[attr-defined]

    def info(self, name: str, doc: str, labels: dict[str, str], info: dict[str, str]) -> None:
        fam = self._get(InfoMetricFamily, name, doc, list(labels))
        fam.add_metric(list(labels.values()), info)  # type: ignore[attr-defined]

    def histogram(
        self,
        name: str,
        doc: str,
        labels: dict[str, str],
        buckets: list[tuple[str, float]],
        sum_value: float,
    ) -> None:
        fam = self._get(HistogramMetricFamily, name, doc, list(labels))
        fam.add_metric(list(labels.values()), buckets, sum_value)  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._by_name.values())


def _ring_metrics(m: _Families, ring: dict[str, Any]) -> None:
    r = {"ring": ring["name"]}
    m.counter(
        "ringcast_ring_published_messages",
        "Messages published into the ring (its publish cursor).",
        r,
        ring["published"],
    )
    m.gauge("ringcast_ring_capacity_messages", "Slots of the ring.", r, ring["capacity"])
    m.gauge("ringcast_ring_slot_size_bytes", "Largest message of the ring.", r, ring["slot_size"])
    m.gauge(
        "ringcast_ring_subscribers",
        "Subscriber records in use (attached subscribers, live or dead).",
        r,
        len(ring["subscribers"]),
    )
    m.counter(
        "ringcast_ring_evictions",
        "Subscribers evicted from the (bounded) ring.",
        r,
        ring["evictions"],
    )
    m.info(
        "ringcast_ring",
        "The ring's modes.",
        r,
        {
            "mode": _label(ring["mode"]),
            "producers": _label(ring["producers"]),
            "timestamps": "true" if ring["timestamps"] else "false",
        },
    )
    pub = ring["publisher"]
    m.gauge(
        "ringcast_publisher_up",
        "1 while the ring's publisher process lives.",
        r,
        1 if pub["alive"] else 0,
    )
    m.gauge(
        "ringcast_publisher_closed",
        "1 once the publisher closed the ring (the stream ended).",
        r,
        1 if pub["closed"] else 0,
    )
    for p in ring["producer_records"]:
        pl = {"ring": ring["name"], "producer": str(p["index"]), "pid": str(p["pid"])}
        m.counter(
            "ringcast_producer_published_messages",
            "Messages a producer of a multi-producer ring published.",
            pl,
            p["published"],
        )
        m.gauge(
            "ringcast_producer_up",
            "1 while the producer process lives.",
            pl,
            1 if p["alive"] else 0,
        )
    for s in ring["subscribers"]:
        sl = {
            "ring": ring["name"],
            "subscriber": str(s["index"]),
            "pid": str(s["pid"]),
            "stage": _label(s.get("stage")),
        }
        m.gauge(
            "ringcast_subscriber_position",
            "Sequence number of the next message the subscriber reads.",
            sl,
            s["position"],
        )
        m.gauge(
            "ringcast_subscriber_lag_messages",
            "Messages published and not yet read by the subscriber.",
            sl,
            s["lag"],
        )
        m.counter(
            "ringcast_subscriber_received_messages",
            "Messages the subscriber received.",
            sl,
            s["received"],
        )
        m.counter(
            "ringcast_subscriber_lost_messages",
            "Messages the subscriber lost (lapped by the publisher, or with a dead producer).",
            sl,
            s["lost"],
        )
        m.gauge(
            "ringcast_subscriber_up",
            "1 while the subscriber process lives.",
            sl,
            1 if s["alive"] else 0,
        )
        m.gauge(
            "ringcast_subscriber_evicted",
            "1 once the subscriber was evicted from its bounded ring.",
            sl,
            1 if s["state"] == "evicted" else 0,
        )
        m.info(
            "ringcast_subscriber_wait",
            "The wait strategy the subscriber declared (spin, yield, park, adaptive, unknown).",
            sl,
            {"wait": _label(s.get("wait") or "unknown")},
        )
        parked = _num(s, "parked")
        if parked is not None:
            m.gauge(
                "ringcast_subscriber_parked_threads",
                "Threads of the subscriber asleep on the ring's futex, waiting for a message.",
                sl,
                parked,
            )


def _num(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return v


def _export(
    m: _Families,
    report: dict[str, Any],
    labels: dict[str, str],
    counters: Sequence[tuple[str, str, str]] = (),
    gauges: Sequence[tuple[str, str, str]] = (),
) -> None:
    """The numeric ``report`` keys named in ``counters``/``gauges``
    (``(key, metric, doc)``) as samples; keys the report lacks are left out."""
    for table, add in ((counters, m.counter), (gauges, m.gauge)):
        for key, metric, doc in table:
            v = _num(report, key)
            if v is not None:
                add(metric, doc, labels, v)


def _feed_metrics(m: _Families, name: str, report: dict[str, Any]) -> None:
    f = {"feed": name}
    for i, line in enumerate(report.get("lines") or ()):
        ll = {"feed": name, "line": "AB"[i] if i < 2 else str(i)}
        m.info(
            "ringcast_feed_line",
            "The multicast group of a feed line (A, B).",
            ll,
            {"group": _label(line.get("group"))},
        )
        per_line = (
            ("packets", "ringcast_feed_packets", "Datagrams the line received."),
            (
                "first",
                "ringcast_feed_line_wins",
                "Messages the line delivered first (its A/B arbitration wins).",
            ),
            (
                "duplicates",
                "ringcast_feed_duplicate_messages",
                "Messages the line brought that were already there.",
            ),
            ("bad_packets", "ringcast_feed_bad_packets", "Datagrams that were not MoldUDP64."),
            (
                "kernel_drops",
                "ringcast_feed_kernel_dropped_packets",
                "Datagrams the kernel dropped for want of receive buffer.",
            ),
        )
        buffer = (
            "receive_buffer",
            "ringcast_feed_receive_buffer_bytes",
            "Receive buffer the kernel gave the line.",
        )
        _export(m, line, ll, counters=per_line, gauges=[buffer])
    decoded = report.get("decoded") or {}
    for mtype, n in sorted((decoded.get("by_type") or {}).items()):
        m.counter(
            "ringcast_feed_messages",
            "Messages decoded, by ITCH message type.",
            {"feed": name, "type": str(mtype)},
            n,
        )
    v = _num(decoded, "errors")
    if v is not None:
        m.counter("ringcast_feed_decode_errors", "Messages that could not be decoded.", f, v)
    per_feed = (
        ("delivered", "ringcast_feed_delivered_messages", "Messages delivered in order."),
        ("gaps", "ringcast_feed_gaps", "Sequence gaps found."),
        (
            "filled_by_line",
            "ringcast_feed_line_filled_messages",
            "Messages of gaps filled by the other line.",
        ),
        (
            "recovered",
            "ringcast_feed_recovered_messages",
            "Messages of gaps filled by the retransmission server.",
        ),
        (
            "lost",
            "ringcast_feed_unrecovered_messages",
            "Messages of gaps that could not be recovered.",
        ),
        ("requests", "ringcast_feed_retransmit_requests", "Retransmission requests sent."),
        (
            "answers",
            "ringcast_feed_retransmit_packets",
            "Packets received from the retransmission server.",
        ),
        ("heartbeats", "ringcast_feed_heartbeats", "Heartbeats received."),
        ("published", "ringcast_feed_published_messages", "Records published into the rings."),
    )
    next_sequence = (
        "next_sequence",
        "ringcast_feed_next_sequence",
        "The next sequence number expected.",
    )
    _export(m, report, f, counters=per_feed, gauges=[next_sequence])


def _journal_metrics(m: _Families, name: str, report: dict[str, Any]) -> None:
    """A recorder's report (``ringcast record``'s progress)."""
    j = {"journal": name}
    _export(
        m,
        report,
        j,
        counters=(
            ("recorded", "ringcast_journal_recorded_messages", "Messages written to the journal."),
            (
                "lost",
                "ringcast_journal_lost_messages",
                "Messages in gap entries (the ring lapped the recorder).",
            ),
            ("gaps", "ringcast_journal_gaps", "Gap entries written."),
            ("bytes", "ringcast_journal_written_bytes", "Bytes written to segment files."),
            ("syncs", "ringcast_journal_syncs", "fdatasync calls."),
        ),
        gauges=(
            ("segments", "ringcast_journal_segments", "Segments started by the running recorder."),
            ("lag", "ringcast_journal_lag_messages", "Messages published but not yet recorded."),
        ),
    )
    for q in ("p50", "p99", "max"):
        v = _num(report.get("latency_ns") or {}, q)
        if v is not None:
            m.gauge(
                "ringcast_journal_write_latency_seconds",
                "From publish to written (page cache), per message, since the recorder started.",
                {**j, "quantile": q},
                v / 1e9,
            )


def _bridge_metrics(m: _Families, name: str, report: dict[str, Any]) -> None:
    """A bridge's report (``ringcast bridge send|recv``'s progress) and its
    Aeron media driver's counters."""
    b = {"bridge": name}
    if "connected" in report:
        report = {**report, "connected": int(bool(report["connected"]))}
    if "sent" in report:  # the sending end
        counters: tuple[tuple[str, str, str], ...] = (
            ("sent", "ringcast_bridge_sent_messages", "Messages sent on Aeron."),
            ("frames", "ringcast_bridge_sent_frames", "Aeron messages (frames) sent."),
            ("bytes", "ringcast_bridge_sent_bytes", "Bytes of the frames sent."),
            (
                "source_lost",
                "ringcast_bridge_source_lost_messages",
                "Messages the source ring lost before the sender read them (announced).",
            ),
            (
                "back_pressure",
                "ringcast_bridge_back_pressure_events",
                "Offers refused by Aeron's flow control or a full term (once per offer).",
            ),
            ("disconnects", "ringcast_bridge_disconnects", "Times no receiver was connected."),
        )
        gauges: tuple[tuple[str, str, str], ...] = (
            ("lag", "ringcast_bridge_lag_messages", "Messages in the source not yet sent."),
            ("connected", "ringcast_bridge_connected", "1 while a receiver is connected."),
        )
    else:
        counters = (
            ("delivered", "ringcast_bridge_delivered_messages", "Messages published here."),
            ("bytes", "ringcast_bridge_received_bytes", "Bytes of the frames received."),
            (
                "lost_source",
                "ringcast_bridge_lost_source_messages",
                "Declared lost here: the source lost them before the sender read them.",
            ),
            (
                "lost_network",
                "ringcast_bridge_lost_network_messages",
                "Declared lost here: never arrived within one sender's stream.",
            ),
            (
                "lost_restart",
                "ringcast_bridge_lost_restart_messages",
                "Declared lost here: sent while a receiver or sender was restarting.",
            ),
            ("duplicates", "ringcast_bridge_duplicate_messages", "Messages received twice."),
            ("bad_frames", "ringcast_bridge_bad_frames", "Frames refused as damaged or foreign."),
            ("senders", "ringcast_bridge_senders", "Sender runs heard from."),
        )
        gauges = (("lag", "ringcast_bridge_lag_messages", "Messages at the source not yet here."),)
    _export(m, report, b, counters=counters, gauges=gauges)
    driver = report.get("driver") or {}
    _export(
        m,
        driver,
        b,
        counters=(
            ("naks_sent", "ringcast_bridge_aeron_naks_sent", "Aeron NAKs sent (loss seen)."),
            ("naks_received", "ringcast_bridge_aeron_naks_received", "Aeron NAKs received."),
            (
                "retransmits_sent",
                "ringcast_bridge_aeron_retransmits_sent",
                "Aeron retransmissions sent (answers to NAKs).",
            ),
            (
                "flow_control_limits",
                "ringcast_bridge_aeron_flow_control_limits",
                "Times the Aeron sender was held back by its receivers' windows.",
            ),
            ("errors", "ringcast_bridge_aeron_errors", "Errors the Aeron media driver logged."),
        ),
        gauges=(),
    )
    for q in ("p50", "p99", "max"):
        v = _num(report.get("latency_ns") or {}, q)
        if v is not None:
            m.gauge(
                "ringcast_bridge_latency_seconds",
                "From the source's publish to the publish here, per message (hosts' clocks).",
                {**b, "quantile": q},
                v / 1e9,
            )


def _books_metrics(m: _Families, name: str, report: dict[str, Any]) -> None:
    b = {"books": name}
    counters = (
        ("messages", "ringcast_books_messages", "Messages of the in-order stream applied."),
        ("updates", "ringcast_books_updates", "Book updates (level changes) published."),
        (
            "book_errors",
            "ringcast_books_errors",
            "Messages a lossy stream made impossible to apply.",
        ),
        ("bad_records", "ringcast_books_bad_records", "Records of the stream that were not valid."),
        ("lost", "ringcast_books_lost_messages", "Messages of the stream lost before the books."),
        (
            "handler_deaths",
            "ringcast_books_handler_deaths",
            "Times the feed handler died without closing the stream (the builder waits).",
        ),
    )
    live = ("live_orders", "ringcast_books_live_orders", "Orders live in the books.")
    _export(m, report, b, counters=counters, gauges=[live])


def _latency_metrics(m: _Families, item: dict[str, Any], hist: LatencyHistogram) -> None:
    bounds_ns = [round(b * 1e9) for b in LATENCY_BUCKETS]
    counts = hist.counts_at_or_below(bounds_ns)
    buckets = [(repr(b), float(c)) for b, c in zip(LATENCY_BUCKETS, counts, strict=True)]
    buckets.append(("+Inf", float(hist.count)))
    m.histogram(
        "ringcast_latency_seconds",
        "Latency measured by an item since it started (what: from where to where).",
        {
            "item": item["name"],
            "kind": _label(item.get("kind")),
            "what": _label(item["latency"].get("what")),
        },
        buckets,
        hist.mean * hist.count / 1e9,
    )


def decode_latency(item: dict[str, Any]) -> LatencyHistogram | None:
    """The item's latency histogram, or None (none, or undecodable: logged)."""
    lat = item.get("latency")
    if not lat or not lat.get("hdr"):
        return None
    try:
        return LatencyHistogram.decode(lat["hdr"])
    except Exception as e:
        log.warning("latency of item %r cannot be decoded: %s", item.get("name"), e)
        return None


def latency_percentiles(hist: LatencyHistogram) -> list[list[float]]:
    """``[[percentile, seconds], ...]`` for the status page's plot."""
    if hist.count == 0:
        return []
    return [[p, hist.value_at_percentile(p) / 1e9] for p in PLOT_PERCENTILES]


def _item_metrics(m: _Families, item: dict[str, Any]) -> None:
    il = {"item": item["name"], "kind": _label(item.get("kind"))}
    state = item.get("state")
    m.gauge(
        "ringcast_item_up", "1 while the item's process runs.", il, 1 if state == "running" else 0
    )
    for s in ITEM_STATES:
        m.gauge(
            "ringcast_item_state",
            "1 for the item's state in the supervisor.",
            {**il, "state": s},
            1 if state == s else 0,
        )
    m.counter(
        "ringcast_item_restarts",
        "Times the supervisor restarted the item.",
        il,
        item.get("restarts") or 0,
    )
    if item.get("started_unix") is not None:
        m.gauge(
            "ringcast_item_start_time_seconds",
            "When the item's process started, seconds since the Unix epoch.",
            il,
            item["started_unix"],
        )
    report = item.get("report") or {}
    kind = item.get("kind")
    if kind == "feed":
        _feed_metrics(m, item["name"], report)
    elif kind in ("books", "book"):
        _books_metrics(m, item["name"], report)
    elif kind == "journal":
        _journal_metrics(m, item["name"], report)
    elif kind == "bridge":
        _bridge_metrics(m, item["name"], report)
    elif kind == "stage":
        v = _num(report, "processed")
        if v is not None:
            m.counter(
                "ringcast_stage_processed_messages",
                "Messages the stage processed.",
                {"stage": item["name"]},
                v,
            )
    hist = decode_latency(item)
    if hist is not None:
        _latency_metrics(m, item, hist)


def _service_metrics(m: _Families, service: dict[str, Any]) -> None:
    sl = {"service": _label(service.get("name"))}
    m.info(
        "ringcast_service",
        "The service: its configuration file and supervisor pid.",
        sl,
        {"config": _label(service.get("config")), "pid": _label(service.get("pid"))},
    )
    if service.get("started_unix") is not None:
        m.gauge(
            "ringcast_service_start_time_seconds",
            "When the service started, seconds since the Unix epoch.",
            sl,
            service["started_unix"],
        )
    for s in SERVICE_STATES:
        m.gauge(
            "ringcast_service_state",
            "1 for the service's state.",
            {**sl, "state": s},
            1 if service.get("state") == s else 0,
        )
    m.counter(
        "ringcast_service_reloads",
        "Configuration reloads applied.",
        sl,
        service.get("reloads") or 0,
    )
    m.gauge(
        "ringcast_service_reload_failed",
        "1 when the last configuration reload was refused.",
        sl,
        1 if service.get("last_reload_error") else 0,
    )


class ServiceCollector(Collector):
    """Reads the rings of ``ring_dir`` and the supervisor's ``status()`` at
    every scrape (``status`` None: rings only)."""

    def __init__(self, ring_dir: str | None, status: Status | None) -> None:
        self.ring_dir = ring_dir
        self.status = status
        self._errors_lock = threading.Lock()
        self._errors = {"rings": 0, "status": 0}

    def describe(self) -> Iterable[Metric]:
        return []  # names vary with the rings: nothing to check at registration

    def _failed(self, source: str, e: BaseException) -> None:
        log.warning("metrics: reading the %s failed: %s", source, e, exc_info=True)
        with self._errors_lock:
            self._errors[source] += 1

    def collect(self) -> Iterator[Metric]:
        start = time.perf_counter()
        m = _Families()
        try:
            snap = _host_stats.snapshot(self.ring_dir)
        except Exception as e:
            self._failed("rings", e)
        else:
            for ring in snap["rings"]:
                _ring_metrics(m, ring)
            m.gauge(
                "ringcast_rings_unreadable",
                "Ring files of the ring directory that could not be read.",
                {},
                len(snap["unreadable"]),
            )
        if self.status is not None:
            try:
                status = self.status()
            except Exception as e:
                self._failed("status", e)
            else:
                _service_metrics(m, status.get("service") or {})
                for item in status.get("items") or ():
                    _item_metrics(m, item)
        with self._errors_lock:
            errors = dict(self._errors)
        for source, n in errors.items():
            m.counter(
                "ringcast_scrape_errors",
                "Scrapes that could not read the rings or the supervisor's status.",
                {"source": source},
                n,
            )
        m.gauge(
            "ringcast_scrape_duration_seconds",
            "Time this scrape took to read the rings and the status.",
            {},
            time.perf_counter() - start,
        )
        yield from m


def make_registry(ring_dir: str | None, status: Status | None) -> CollectorRegistry:
    """A registry holding the service's collector (and the supervisor
    process's own ``process_*`` metrics)."""
    from prometheus_client import ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(ring_dir, status))
    ProcessCollector(registry=registry)
    return registry
