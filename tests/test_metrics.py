"""The service's metrics (issue 19): ``/metrics`` in the Prometheus
exposition format, ``/status.json`` and the status page ``/``.

* The exposition of rings made by other processes, and of a supervisor's
  status (feed report, latency), carries exactly the rings' own counters and
  the reported figures, and ``promtool check metrics`` accepts it.
* A real Prometheus server scrapes ``ringcast serve`` and answers a query
  for a ring's published total with the count published into it.
* Headless Chromium loads the status page of a running ``ringcast serve``:
  its DOM shows the service's rings and items (and a screenshot is taken).

promtool and prometheus come from Debian's ``prometheus`` package, Chromium
from ``chromium``; scripts/test.sh installs both.
"""

from __future__ import annotations

import contextlib
import errno
import html.parser
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import ringcast
from ringcast import _host_stats
from ringcast.serve._http import MetricsAddressError, start_http
from ringcast.serve._metrics import LATENCY_BUCKETS

DTYPE = np.dtype([("seq", "<u8"), ("value", "<f8")])


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: apt-get install {package} (scripts/test.sh does)"
    return path


def _get(url: str, timeout: float = 10.0) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:  # not there yet
            last = e
        else:
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition: (name, labels) -> value."""
    out = {}
    for fam in text_string_to_metric_families(exposition):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(
    exp: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    key = (name, frozenset(labels.items()))
    assert key in exp, f"no sample {name}{labels}; have: " + ", ".join(
        f"{n}{dict(ls)}" for n, ls in exp if n == name
    )
    return exp[key]


def test_counts_at_or_below_count_to_the_histograms_resolution() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(9, 2.5, 50_000).astype(np.int64) + 1
    hist = ringcast.LatencyHistogram()  # 3 significant digits
    hist.record_many(values)
    bounds = [0, 1, 100, 999, 1000, 12_345, 10**6, 3 * 10**7, 10**9, 10**12]
    counts = hist.counts_at_or_below(bounds)
    for bound, got in zip(bounds, counts, strict=True):
        low = int((values <= bound * (1 - 1e-3)).sum())
        high = int((values <= bound * (1 + 1e-3)).sum())
        assert low <= got <= high, (bound, low, got, high)
    assert counts == sorted(counts) and counts[-1] == len(values)
    assert ringcast.LatencyHistogram().counts_at_or_below([1, 10**9]) == [0, 0]


# --- rings held by other processes -------------------------------------------------------

# A process holding ring ends, driven by one command a line on stdin, one
# JSON answer a line on stdout.
HOLDER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import ringcast

    DTYPE = np.dtype([("seq", "<u8"), ("value", "<f8")])
    dir = sys.argv[1]
    pubs, subs = {}, {}
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "create":
            name, capacity, mode, producers, *liveness = args
            pubs[name] = ringcast.Publisher.create(
                name, dtype=DTYPE, capacity=int(capacity), dir=dir,
                bounded=mode == "bounded", producers=producers,
                liveness_timeout=float(liveness[0]) if liveness else None)
        elif cmd == "attach":
            name, stage, *wait = args
            subs[name] = ringcast.Subscriber.attach(
                name, dir=dir, start="oldest", stage=None if stage == "-" else stage,
                wait=getattr(ringcast.WaitStrategy, wait[0])() if wait else None)
        elif cmd == "publish":
            name, n = args
            pub = pubs[name]
            first = pub.sequence
            recs = np.zeros(int(n), DTYPE)
            recs["seq"] = np.arange(first, first + int(n))
            pub.publish_batch(recs)
        elif cmd == "read":
            name, n = args
            sub = subs[name]
            got = 0
            while got < int(n):
                got += len(sub.recv_batch(int(n) - got, timeout=5.0))
            if sub.stage is not None:
                sub.commit()
        elif cmd == "counters":
            out = {"pid": __import__("os").getpid(), "pubs": {}, "subs": {}}
            for name, p in pubs.items():
                out["pubs"][name] = {"published": p.published, "sequence": p.sequence,
                                     "evictions": p.evictions}
            for name, s in subs.items():
                out["subs"][name] = {"position": s.position, "received": s.received,
                                     "lost": s.lost, "lag": s.lag}
            print(json.dumps(out), flush=True)
            continue
        print(json.dumps("ok"), flush=True)
    """
)


class Holder:
    def __init__(self, ring_dir: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, ring_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid

    def __call__(self, *cmd: object) -> Any:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(" ".join(map(str, cmd)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"holder {self.pid} died on {cmd}"
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def holders(ring_dir: str) -> Iterator[Callable[[], Holder]]:
    made: list[Holder] = []

    def make() -> Holder:
        made.append(Holder(ring_dir))
        return made[-1]

    yield make
    for h in made:
        h.close()


def feed_report() -> dict[str, Any]:
    """A feed handler's progress report, as ringcast.itch.handle passes it."""
    return {
        "session": "TESTSESS01",
        "first": 1,
        "lines": [
            {
                "group": "239.1.1.1:30001",
                "packets": 1200,
                "first": 9000,
                "duplicates": 8000,
                "bad_packets": 1,
                "kernel_drops": 0,
                "receive_buffer": 1 << 20,
            },
            {
                "group": "239.1.1.2:30001",
                "packets": 1100,
                "first": 1000,
                "duplicates": 9000,
                "bad_packets": 0,
                "kernel_drops": None,
                "receive_buffer": 1 << 20,
            },
        ],
        "delivered": 10_000,
        "gaps": 7,
        "filled_by_line": 40,
        "recovered": 25,
        "requests": 3,
        "answers": 4,
        "unrecovered": [(500, 503), (900, 901)],
        "lost": 4,
        "heartbeats": 12,
        "other_session": 0,
        "ended": False,
        "next_sequence": 10_005,
        "published": 10_000,
        "unrouted": 0,
        "decoded": {
            "messages": 10_000,
            "errors": 2,
            "bytes": 350_000,
            "by_type": {"add_order": 6000, "order_executed": 3000, "order_delete": 1000},
            "error_kinds": {"empty": 0, "unknown_type": 2, "wrong_length": 0, "truncated_tail": 0},
        },
    }


# Latencies (ns) the fake stage reports: none on a bucket bound, so every
# bucket's count is exact whatever the histogram's resolution.
LATENCIES_NS = [180, 700, 3_300, 3_300, 40_000, 66_000, 1_700_000, 30_000_000]


def fake_status(ring_names: list[str]) -> dict[str, Any]:
    hist = ringcast.LatencyHistogram()
    for v in LATENCIES_NS:
        hist.record(v)
    now = time.time()
    items = [
        {
            "name": name,
            "kind": "ring",
            "state": "running",
            "pid": None,
            "restarts": 0,
            "started_unix": now - 60,
            "last_exit": None,
            "report": {},
            "latency": None,
        }
        for name in ring_names
    ]
    items += [
        {
            "name": "nasdaq",
            "kind": "feed",
            "state": "running",
            "pid": 4242,
            "restarts": 2,
            "started_unix": now - 30,
            "last_exit": "killed by SIGKILL",
            "report": feed_report(),
            "latency": None,
        },
        {
            "name": "book",
            "kind": "books",
            "state": "backoff",
            "pid": None,
            "restarts": 5,
            "started_unix": None,
            "last_exit": "exited with status 1",
            "report": {
                "messages": 900,
                "updates": 1500,
                "book_errors": 1,
                "bad_records": 0,
                "lost": 3,
                "live_orders": 77,
                "ended": False,
            },
            "latency": None,
        },
        {
            "name": "strat",
            "kind": "stage",
            "state": "running",
            "pid": 4343,
            "restarts": 0,
            "started_unix": now - 20,
            "last_exit": None,
            "report": {"processed": 123_456},
            "latency": {"hdr": hist.encode(), "what": "wire_to_strategy"},
        },
    ]
    return {
        "service": {
            "name": "unit",
            "pid": os.getpid(),
            "started_unix": now - 61,
            "config": "unit.toml",
            "state": "running",
            "reloads": 1,
            "last_reload_error": None,
        },
        "items": items,
    }


@pytest.fixture
def rings_of_others(ring_dir: str, holders: Callable[[], Holder]) -> dict[str, Any]:
    """Four rings made by two processes, with subscribers in both: a lossy
    ring whose subscriber was lapped, a bounded one read in part by a stage,
    a multi-producer one, and a bounded one whose stalled subscriber was
    evicted. Returns every end's own counters."""
    a, b = holders(), holders()
    a("create", "md.quotes", 256, "lossy", "one")
    a("create", "md.trades", 1024, "bounded", "one")
    a("create", "md.many", 64, "lossy", "many")
    a("create", "md.slow", 64, "bounded", "one", 0.3)
    b("attach", "md.slow", "-")
    b("attach", "md.quotes", "-", "park")
    a("attach", "md.trades", "-")
    b("attach", "md.trades", "strat")
    a("publish", "md.quotes", 1000)  # laps b's subscriber (capacity 256)
    a("publish", "md.trades", 700)
    a("publish", "md.many", 10)
    a("publish", "md.slow", 65)  # the 65th waits 0.3 s for b's subscriber, then evicts it
    b("read", "md.quotes", 100)
    a("read", "md.trades", 700)
    b("read", "md.trades", 250)
    return {"a": a("counters"), "b": b("counters")}


@pytest.fixture
def unit_server(ring_dir: str, rings_of_others: dict[str, Any]) -> Iterator[Any]:
    names = ["md.quotes", "md.trades", "md.many", "md.slow"]
    server = start_http("127.0.0.1", 0, ring_dir, lambda: fake_status(names))
    try:
        yield server
    finally:
        server.close()


def test_the_exposition_carries_the_rings_own_counters(
    unit_server: Any, rings_of_others: dict[str, Any], ring_dir: str
) -> None:
    status, ctype, body = _get(unit_server.url + "metrics")
    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    exp = samples(body.decode())
    a, b = rings_of_others["a"], rings_of_others["b"]
    for name, pub in a["pubs"].items():
        assert value(exp, "ringcast_ring_published_messages_total", ring=name) == pub["published"]
        assert pub["published"] == pub["sequence"]
        assert value(exp, "ringcast_ring_evictions_total", ring=name) == pub["evictions"]
        assert value(exp, "ringcast_publisher_up", ring=name) == 1
        assert value(exp, "ringcast_publisher_closed", ring=name) == 0
    assert value(exp, "ringcast_ring_capacity_messages", ring="md.quotes") == 256
    assert value(exp, "ringcast_ring_slot_size_bytes", ring="md.quotes") == DTYPE.itemsize
    assert value(exp, "ringcast_ring_subscribers", ring="md.quotes") == 1
    assert value(exp, "ringcast_ring_subscribers", ring="md.trades") == 2
    assert value(exp, "ringcast_ring_subscribers", ring="md.many") == 0
    assert value(exp, "ringcast_ring_info", ring="md.trades", mode="bounded", producers="one",
                 timestamps="false") == 1  # fmt: skip
    assert value(exp, "ringcast_ring_info", ring="md.many", mode="lossy", producers="many",
                 timestamps="false") == 1  # fmt: skip

    # Every subscriber, as its own process counts (one per ring and process).
    snap = _host_stats.snapshot(ring_dir)
    index = {
        (r["name"], s["pid"]): (str(s["index"]), s["stage"] or "")
        for r in snap["rings"]
        for s in r["subscribers"]
    }
    snap_subs = {(r["name"], str(s["index"])): s for r in snap["rings"] for s in r["subscribers"]}
    seen = 0
    for holder in (a, b):
        for ring, own in holder["subs"].items():
            if ring == "md.slow":
                continue  # evicted: below
            sub, stage = index[(ring, holder["pid"])]
            labels = {"ring": ring, "subscriber": sub, "pid": str(holder["pid"]), "stage": stage}
            assert value(exp, "ringcast_subscriber_position", **labels) == own["position"]
            assert value(exp, "ringcast_subscriber_lag_messages", **labels) == own["lag"]
            received = value(exp, "ringcast_subscriber_received_messages_total", **labels)
            assert received == own["received"]
            assert value(exp, "ringcast_subscriber_lost_messages_total", **labels) == own["lost"]
            assert value(exp, "ringcast_subscriber_up", **labels) == 1
            assert value(exp, "ringcast_subscriber_evicted", **labels) == 0
            (wait,) = [
                dict(ls)["wait"]
                for n, ls in exp
                if n == "ringcast_subscriber_wait_info" and set(labels.items()) <= ls
            ]
            assert wait == ("park" if ring == "md.quotes" else snap_subs[(ring, sub)]["wait"])
            assert value(exp, "ringcast_subscriber_parked_threads", **labels) == 0
            seen += 1
    assert seen == 3
    # The lapped subscriber lost what the ring no longer held.
    quotes = b["subs"]["md.quotes"]
    assert quotes["lost"] > 0 and quotes["received"] == 100
    assert quotes["received"] + quotes["lost"] == quotes["position"]
    assert b["subs"]["md.trades"]["lag"] == 450
    (producer,) = [k for k in exp if k[0] == "ringcast_producer_published_messages_total"]
    assert exp[producer] == 10 and ("ring", "md.many") in producer[1]
    # The stalled subscriber of md.slow was evicted; its record stays (and
    # says so) until its process notices.
    assert a["pubs"]["md.slow"]["evictions"] == 1
    assert value(exp, "ringcast_ring_evictions_total", ring="md.slow") == 1
    slow = [k for k in exp if k[0] == "ringcast_subscriber_evicted" and ("ring", "md.slow") in k[1]]
    assert [exp[k] for k in slow] == [1]
    assert ("pid", str(b["pid"])) in slow[0][1]
    assert value(exp, "ringcast_rings_unreadable") == 0


def test_the_exposition_carries_the_status_reports(unit_server: Any) -> None:
    exp = samples(_get(unit_server.url + "metrics")[2].decode())
    rep = feed_report()
    f = {"feed": "nasdaq"}
    for i, line in enumerate(rep["lines"]):
        lf = {**f, "line": "AB"[i]}
        assert value(exp, "ringcast_feed_packets_total", **lf) == line["packets"]
        assert value(exp, "ringcast_feed_line_wins_total", **lf) == line["first"]
        assert value(exp, "ringcast_feed_duplicate_messages_total", **lf) == line["duplicates"]
        assert value(exp, "ringcast_feed_line_info", group=line["group"], **lf) == 1
    assert value(exp, "ringcast_feed_kernel_dropped_packets_total", feed="nasdaq", line="A") == 0
    assert not any(  # unknown for line B: no sample rather than a made-up 0
        k[0] == "ringcast_feed_kernel_dropped_packets_total" and ("line", "B") in k[1] for k in exp
    )
    for mtype, n in rep["decoded"]["by_type"].items():
        assert value(exp, "ringcast_feed_messages_total", type=mtype, **f) == n
    assert value(exp, "ringcast_feed_gaps_total", **f) == 7
    assert value(exp, "ringcast_feed_recovered_messages_total", **f) == 25
    assert value(exp, "ringcast_feed_unrecovered_messages_total", **f) == 4
    assert value(exp, "ringcast_feed_line_filled_messages_total", **f) == 40
    assert value(exp, "ringcast_feed_delivered_messages_total", **f) == 10_000
    assert value(exp, "ringcast_feed_decode_errors_total", **f) == 2
    assert value(exp, "ringcast_books_updates_total", books="book") == 1500
    assert value(exp, "ringcast_books_live_orders", books="book") == 77
    assert value(exp, "ringcast_stage_processed_messages_total", stage="strat") == 123_456

    assert value(exp, "ringcast_item_restarts_total", item="nasdaq", kind="feed") == 2
    assert value(exp, "ringcast_item_up", item="nasdaq", kind="feed") == 1
    assert value(exp, "ringcast_item_up", item="book", kind="books") == 0
    assert value(exp, "ringcast_item_state", item="book", kind="books", state="backoff") == 1
    assert value(exp, "ringcast_item_state", item="book", kind="books", state="running") == 0
    assert value(exp, "ringcast_service_info", service="unit", config="unit.toml",
                 pid=str(os.getpid())) == 1  # fmt: skip
    assert value(exp, "ringcast_service_reloads_total", service="unit") == 1
    assert value(exp, "ringcast_service_state", service="unit", state="running") == 1

    # The latency histogram: cumulative bucket counts of the reported values.
    lat = {"item": "strat", "kind": "stage", "what": "wire_to_strategy"}
    for bound in LATENCY_BUCKETS:
        expected = sum(1 for v in LATENCIES_NS if v <= bound * 1e9)
        le = next(
            dict(ls)["le"]
            for n, ls in exp
            if n == "ringcast_latency_seconds_bucket" and math.isclose(float(dict(ls)["le"]), bound)
        )
        assert value(exp, "ringcast_latency_seconds_bucket", le=le, **lat) == expected, bound
    assert value(exp, "ringcast_latency_seconds_bucket", le="+Inf", **lat) == len(LATENCIES_NS)
    assert value(exp, "ringcast_latency_seconds_count", **lat) == len(LATENCIES_NS)
    total = value(exp, "ringcast_latency_seconds_sum", **lat)
    assert math.isclose(total, sum(LATENCIES_NS) / 1e9, rel_tol=2e-3), total
    assert value(exp, "ringcast_scrape_duration_seconds") > 0
    assert value(exp, "ringcast_scrape_errors_total", source="status") == 0


def test_promtool_accepts_the_exposition(unit_server: Any, tmp_path: Path) -> None:
    promtool = _tool("promtool", "prometheus")
    body = _get(unit_server.url + "metrics")[2]
    (tmp_path / "metrics.txt").write_bytes(body)
    done = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    # promtool prints lint problems (names, units, _total) even with status 0.
    assert not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


def test_openmetrics_is_served_to_who_asks(unit_server: Any) -> None:
    req = urllib.request.Request(
        unit_server.url + "metrics", headers={"Accept": "application/openmetrics-text"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("application/openmetrics-text")
        body = r.read().decode()
    assert body.rstrip().endswith("# EOF")
    assert "ringcast_ring_published_messages_total" in body


def test_status_json_has_the_rings_rates_and_latency(unit_server: Any) -> None:
    status, ctype, body = _get(unit_server.url + "status.json")
    assert status == 200 and ctype == "application/json"
    first = json.loads(body)
    assert first["service"]["name"] == "unit"
    assert {i["name"] for i in first["items"]} >= {"nasdaq", "book", "strat"}
    rings = {r["name"]: r for r in first["rings"]}
    assert set(rings) == {"md.quotes", "md.trades", "md.many", "md.slow"}
    assert rings["md.quotes"]["published"] == 1000
    assert rings["md.quotes"]["rate"] is None  # nothing to take a rate from yet
    lat = first["latency"]["strat"]
    assert lat["what"] == "wire_to_strategy" and lat["count"] == len(LATENCIES_NS)
    ps = [p for p, _ in lat["percentiles"]]
    assert ps[0] == 50 and math.isclose(ps[-1], 99.99) and ps == sorted(ps)
    assert {90.0, 99.0, 99.9} <= {round(p, 6) for p in ps}
    secs = [s for _, s in lat["percentiles"]]
    assert secs == sorted(secs) and secs[-1] == pytest.approx(30e-3, rel=1e-3)
    time.sleep(0.6)
    second = json.loads(_get(unit_server.url + "status.json")[2])
    rings = {r["name"]: r for r in second["rings"]}
    assert rings["md.quotes"]["rate"] == 0  # nothing published meanwhile
    assert all(s["rate"] == 0 for s in rings["md.trades"]["subscribers"])


def test_routes_and_content_types(unit_server: Any) -> None:
    status, ctype, body = _get(unit_server.url)
    assert status == 200 and ctype == "text/html; charset=utf-8"
    assert b"status.json" in body and b"<svg" in body
    assert b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")  # nothing fetched
    status, _, body = _get(unit_server.url + "nothing-here")
    assert status == 404 and b"/metrics" in body
    req = urllib.request.Request(unit_server.url + "metrics", method="HEAD")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and r.read() == b""


def test_a_status_that_fails_still_leaves_the_rings(ring_dir: str) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("supervisor bug")

    with start_http("127.0.0.1", 0, ring_dir, broken) as server:
        exp = samples(_get(server.url + "metrics")[2].decode())
        assert value(exp, "ringcast_scrape_errors_total", source="status") == 1
        st = json.loads(_get(server.url + "status.json")[2])
        assert st["service"] is None and "supervisor bug" in st["status_error"]


def test_binding_errors_name_the_address_and_the_remedy(
    ring_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_http("127.0.0.1", 0, ring_dir, None) as server:
        host, port = server.address
        assert host == "127.0.0.1" and port > 0
        with pytest.raises(MetricsAddressError, match=f"^cannot serve metrics on 127.0.0.1:{port}: "
                           "Address already in use; .*choose another port") as e:  # fmt: skip
            start_http("127.0.0.1", port, ring_dir, None)
        assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(MetricsAddressError, match="not one of this machine's"):
        start_http("192.0.2.1", 0, ring_dir, None)  # TEST-NET-1: bound to nothing, no traffic

    def unknown(*args: Any, **kwargs: Any) -> Any:  # no resolver asked
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    with pytest.raises(MetricsAddressError, match=r"unknown host 'metrics\.example'"):
        start_http("metrics.example", 0, ring_dir, None)


# --- ringcast serve, scraped by Prometheus and shown in Chromium --------------------------

STAGE = textwrap.dedent(
    '''
    import time

    import numpy as np


    def follow(ctx, ring):
        """Reads everything of `ring`; times each message from the
        monotonic ns its publisher put in `value`."""
        with ctx.subscribe(ring, timeout=120.0) as sub:
            chunk = np.zeros(256, sub.dtype)
            while not ctx.stopping():
                n = sub.recv_batch_into(chunk, timeout=0.1)
                if n:
                    sent = chunk["value"][:n].astype(np.int64)
                    ctx.latency.record_many(time.monotonic_ns() - sent)
                    ctx.processed(n)
    '''
)

CONFIG = """\
[service]
name = "metrics-test"
dir = "{dir}"
path = ["{path}"]

[rings."t.a"]
capacity = 1024
dtype = [["seq", "<u8"], ["value", "<f8"]]

[rings."t.b"]
capacity = 64
dtype = [["seq", "<u8"], ["value", "<f8"]]

[stages.follower]
function = "metrics_stage:follow"
args = {{ ring = "t.a" }}
reads = ["t.a"]
latency = "publish_to_follower"
"""

PUBLISHED = 1000  # <= the capacity: the follower loses none, however late it reads


@pytest.fixture
def service(ring_dir: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``ringcast serve`` with rings t.a and t.b and a stage following t.a;
    PUBLISHED messages published into t.a (by this test process, which keeps
    the publisher open). Yields its metrics URL, ring directory and process."""
    (tmp_path / "metrics_stage.py").write_text(STAGE)
    config = tmp_path / "svc.toml"
    config.write_text(CONFIG.format(dir=ring_dir, path=tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ringcast", "serve", str(config), "--metrics", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    url: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout
        for line in proc.stdout:
            lines.append(line)
            if m := re.search(r"metrics on (http://\S+/)", line):
                url.append(m.group(1))
            if re.match(r"ringcast serve: (\S+ )?ready\b", line):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    pub = None
    try:
        assert ready.wait(60), "ringcast serve did not get ready:\n" + "".join(lines)
        assert url, "no metrics URL printed:\n" + "".join(lines)
        pub = ringcast.Publisher.attach("t.a", dir=ring_dir)
        recs = np.zeros(PUBLISHED, DTYPE)
        recs["seq"] = np.arange(PUBLISHED)
        for i in range(0, PUBLISHED, 100):
            recs["value"][i : i + 100] = time.monotonic_ns()
            pub.publish_batch(recs[i : i + 100])
        yield {"url": url[0], "dir": ring_dir, "proc": proc, "lines": lines}
    finally:
        if pub is not None:
            pub.close()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)


def _status(url: str) -> dict[str, Any]:
    return json.loads(_get(url + "status.json")[2])


def _processed(url: str, item: str) -> int:
    st = _status(url)
    return next(i["report"].get("processed", 0) for i in st["items"] if i["name"] == item)


@pytest.fixture
def prometheus(tmp_path: Path, service: dict[str, Any]) -> Iterator[str]:
    """A Prometheus server scraping the service every second; its URL."""
    binary = _tool("prometheus", "prometheus")
    target = urllib.parse.urlsplit(service["url"]).netloc
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: ringcast\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for("Prometheus ready", lambda: _get(url + "/-/ready")[0] == 200, 60)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _query(prom: str, promql: str) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"query": promql})
    status, _, body = _get(f"{prom}/api/v1/query?{q}")
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", answer
    return answer["data"]["result"]


def test_prometheus_scrapes_ringcast_serve(
    service: dict[str, Any], prometheus: str, tmp_path: Path
) -> None:
    url, ring_dir = service["url"], service["dir"]
    _wait_for("the follower read everything", lambda: _processed(url, "follower") == PUBLISHED)

    def published() -> float | None:
        result = _query(prometheus, 'ringcast_ring_published_messages_total{ring="t.a"}')
        return float(result[0]["value"][1]) if result else None

    assert _wait_for("Prometheus has t.a's total", lambda: published() == PUBLISHED) is True
    # The same figure from the ring itself and from the snapshot `ringcast stat` shows.
    assert ringcast.ring_info("t.a", ring_dir)["cursor"] == PUBLISHED
    snap = {r["name"]: r for r in _host_stats.snapshot(ring_dir)["rings"]}
    assert snap["t.a"]["published"] == PUBLISHED
    # `ringcast stat --json` says the same as the metrics.
    stat = subprocess.run(
        [sys.executable, "-m", "ringcast", "stat", "--json", "--dir", ring_dir,
         "--interval", "0.1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert stat.returncode == 0, stat.stderr
    rings = {r["name"]: r for r in json.loads(stat.stdout)["rings"]}
    assert rings["t.a"]["published"] == PUBLISHED and rings["t.b"]["published"] == 0
    (follower,) = rings["t.a"]["subscribers"]
    assert follower["received"] == PUBLISHED and follower["lag"] == 0
    exp = samples(_get(url + "metrics")[2].decode())
    labels = {"ring": "t.a", "subscriber": str(follower["index"]),
              "pid": str(follower["pid"]), "stage": ""}  # fmt: skip
    assert value(exp, "ringcast_subscriber_received_messages_total", **labels) == PUBLISHED
    assert value(exp, "ringcast_subscriber_position", **labels) == follower["position"]
    assert value(exp, "ringcast_ring_subscribers", ring="t.a") == 1
    assert value(exp, "ringcast_ring_capacity_messages", ring="t.b") == rings["t.b"]["capacity"]
    # The target is up, and the stage's processed total and latency arrived.
    (up,) = _query(prometheus, 'up{job="ringcast"}')
    assert up["value"][1] == "1"

    def follower_total() -> bool:
        r = _query(prometheus, 'ringcast_stage_processed_messages_total{stage="follower"}')
        return bool(r) and float(r[0]["value"][1]) == PUBLISHED

    _wait_for("Prometheus has the follower's processed total", follower_total)
    (count,) = _query(prometheus, 'ringcast_latency_seconds_count{item="follower"}')
    assert float(count["value"][1]) == PUBLISHED
    (p99,) = _query(
        prometheus, "histogram_quantile(0.99, ringcast_latency_seconds_bucket{item='follower'})"
    )
    assert 0 < float(p99["value"][1]) < 60


class _Dom(html.parser.HTMLParser):
    """The elements of a dumped DOM, with their attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        e = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.elements.append(e)
        if tag not in ("meta", "input", "br", "line", "link"):
            self._open.append(e)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for e in self._open:
            e["text"] += data

    def find(self, tag: str, **attrs: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.elements
            if e["tag"] == tag
            and all(
                (e["attrs"].get(k.replace("_", "-")) or "").split()[:1] == [v]
                or e["attrs"].get(k.replace("_", "-")) == v
                for k, v in attrs.items()
            )
        ]


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium not found: apt-get install chromium (scripts/test.sh does)"
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--virtual-time-budget=5000", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_status_page_shows_the_running_service(service: dict[str, Any], tmp_path: Path) -> None:
    url = service["url"]
    _wait_for("the follower read everything", lambda: _processed(url, "follower") == PUBLISHED)
    profile = tmp_path / "chromium-profile"
    done = _chromium(f"--user-data-dir={profile}", "--dump-dom", url)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Dom()
    dom.feed(done.stdout)
    (title,) = dom.find("span", id="service-name")
    assert title["text"] == "metrics-test"
    assert dom.find("span", id="service-state")[0]["text"] == "running"
    rings = {e["attrs"]["data-ring"]: e for e in dom.find("tr", **{"class": "ring"})}
    assert set(rings) == {"t.a", "t.b"}, done.stdout[-3000:]
    assert rings["t.a"]["attrs"]["data-published"] == str(PUBLISHED)
    assert rings["t.a"]["attrs"]["data-subscribers"] == "1"
    assert rings["t.b"]["attrs"]["data-published"] == "0"
    assert f"{PUBLISHED:,}" in rings["t.a"]["text"]
    subs = dom.find("tr", **{"class": "subscriber"})
    assert [s["attrs"]["data-ring"] for s in subs] == ["t.a"]
    items = {e["attrs"]["data-item"]: e for e in dom.find("tr") if "data-item" in e["attrs"]}
    assert set(items) == {"t.a", "t.b", "follower"}
    assert items["follower"]["attrs"]["data-state"] == "running"
    assert items["follower"]["attrs"]["data-kind"] == "stage"
    lines = dom.find("path", **{"class": "latency-line"})
    assert [p["attrs"]["data-item"] for p in lines] == ["follower"]
    assert "hidden" in dom.find("div", id="error")[0]["attrs"]  # no error shown

    shot = tmp_path / "status.png"
    done = _chromium(f"--user-data-dir={profile}", "--window-size=1200,900",
                     f"--screenshot={shot}", url)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    with contextlib.suppress(OSError):  # kept for a person to look at, when asked
        if os.environ.get("RINGCAST_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["RINGCAST_KEEP_SCREENSHOT"])
