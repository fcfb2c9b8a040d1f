"""The MoldUDP64 feed end to end over loopback multicast (issue 18): sender,
feed handler, order-book builder and a strategy, each its own process, at a
list of rates, with the retransmission server on.

Per rate, a generated day (``ringcast.itch.generate``, seed 1) of about
``--seconds`` worth of messages (at most ``--max-messages``) is sent by
``ringcast.itch.send`` at that rate (``max``: flat out). Reported:

- sent: the sender's achieved rate (messages / its elapsed time);
- handled: the handler's delivery rate while data flowed (delivered
  messages between its first progress report with data and its end, over
  that time: its ``progress`` ticks come every 50 ms);
- kernel drops on the handler's socket, gaps, messages recovered by
  retransmission, unrecovered (must be 0);
- wire -> ring: publish time of an ``<bus>.add_order`` record (the ring's
  timestamp) minus its ``recv_ns`` (the kernel's receive time of its
  packet), one sample per batch the strategy reads (the last record);
- wire -> strategy: the strategy's ``time.monotonic_ns()`` right after
  ``recv_batch`` minus ``recv_ns``, every add-order record
  (``LatencyHistogram.record_many``);
- book updates per second of the book builder (reading ``<bus>.itch``)
  while data flowed, and its lost messages (its input ring is lossy).

``--stages handler`` runs only sender and handler (no book builder, no
strategy: nothing competes with the handler for the two CPUs).

    python benches/feed_pipeline.py [--rates 100k,500k,1M,2M,5M,max] [--seconds 3]
        [--repeats 1] [--stages all|handler] [--receive-buffer-mb 64] [--books-catch-up] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import tempfile
import time

ctx = mp.get_context("spawn")
GROUP = "239.255.81.{}:{}"
PERCENTILES = (50.0, 99.0, 99.9)


def handler_child(kwargs, ready, results) -> None:
    import ringcast.itch as itch

    ticks: list[tuple[float, int]] = []
    usage = []

    def on_ready():
        # CPU counted from here: making (and prefaulting) the rings is not
        # receiving.
        usage.append(resource.getrusage(resource.RUSAGE_SELF))
        ready.set()

    try:
        report = itch.handle(
            **kwargs,
            ready=on_ready,
            progress=lambda r: ticks.append((time.monotonic(), r["delivered"])),
            progress_every=0.01,
        )
        ticks.append((time.monotonic(), report["delivered"]))
        report["ticks"] = ticks
        after, before = resource.getrusage(resource.RUSAGE_SELF), usage[0]
        report["cpu"] = {
            "user_s": after.ru_utime - before.ru_utime,
            "sys_s": after.ru_stime - before.ru_stime,
            "voluntary_switches": after.ru_nvcsw - before.ru_nvcsw,
            "involuntary_switches": after.ru_nivcsw - before.ru_nivcsw,
            "minor_faults": after.ru_minflt - before.ru_minflt,
        }
        results.put(report)
    except BaseException as e:
        results.put(repr(e))
        ready.set()


def books_child(bus, ring_dir, ready, results) -> None:
    import ringcast.itch as itch

    ticks: list[tuple[float, int, int]] = []
    try:
        report = itch.books(
            bus,
            dir=ring_dir,
            capacity=1 << 18,
            ready=ready.set,
            progress=lambda r: ticks.append((time.monotonic(), r["messages"], r["updates"])),
            progress_every=0.01,
        )
        ticks.append((time.monotonic(), report["messages"], report["updates"]))
        report["ticks"] = ticks
        results.put(report)
    except BaseException as e:
        results.put(repr(e))
        ready.set()


def strategy_child(bus, ring_dir, ready, results) -> None:
    import numpy as np

    import ringcast

    try:
        ring = ringcast.LatencyHistogram(highest=60.0, digits=3)
        strat = ringcast.LatencyHistogram(highest=60.0, digits=3)
        deadline = time.monotonic() + 30
        while True:
            try:
                sub = ringcast.Subscriber.attach(f"{bus}.add_order", dir=ring_dir, start="oldest")
                break
            except ringcast.RingcastError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        ready.set()
        with sub:
            while True:
                try:
                    batch = sub.recv_batch(4096, timeout=0.1)
                except ringcast.RingClosed:
                    break
                if len(batch):
                    now = time.monotonic_ns()
                    recv_ns = batch["recv_ns"].astype(np.int64)
                    strat.record_many(now - recv_ns)
                    ring.record_many(np.array([sub.last_time - int(recv_ns[-1])], np.int64))
            results.put(
                {
                    "received": sub.received,
                    "lost": sub.lost,
                    "wire_to_ring": ring.encode(),
                    "wire_to_strategy": strat.encode(),
                }
            )
    except BaseException as e:
        results.put(repr(e))
        ready.set()


def percentiles(encoded: str) -> dict:
    import ringcast

    h = ringcast.LatencyHistogram.decode(encoded)
    out = {f"p{p:g}": h.value_at_percentile(p) for p in PERCENTILES}
    out.update(count=h.count, max=h.max, negative=h.negative)
    return out


def rate_arg(text: str) -> float | None:
    text = text.strip().lower()
    if text in ("max", "flat"):
        return None
    scale = {"k": 1e3, "m": 1e6}.get(text[-1], 1)
    return float(text.rstrip("km")) * scale


def active_rate(ticks, column: int = 1) -> float | None:
    """Count per second between the first tick with data and the last."""
    started = [t for t in ticks if t[column] > 0]
    if len(started) < 2:
        return None
    (t0, *c0), (t1, *c1) = started[0], started[-1]
    return (c1[column - 1] - c0[column - 1]) / (t1 - t0) if t1 > t0 else None


def run_one(
    path: str, messages: int, rate: float | None, n: int, stages: str, tmp: str, rcvbuf: int
) -> dict:
    import ringcast.itch as itch

    ring_dir = tempfile.mkdtemp(dir=tmp)
    group = GROUP.format(1 + n % 250, 48000 + 2 * n)
    server = f"127.0.0.1:{48001 + 2 * n}"
    bus = "md"
    procs, queues = [], {}

    def start(name, target, args):
        ready, results = ctx.Event(), ctx.Queue()
        p = ctx.Process(target=target, args=(*args, ready, results))
        p.start()
        if not ready.wait(30):
            raise SystemExit(f"{name} did not start")
        procs.append(p)
        queues[name] = results

    start(
        "handler",
        handler_child,
        (
            dict(
                group=group,
                bus=bus,
                dir=ring_dir,
                retransmit=server,
                idle_timeout=20.0,
                capacity=1 << 18,
                stream_capacity=1 << 20,
                receive_buffer=rcvbuf,
            ),
        ),
    )
    if stages == "all":
        start("books", books_child, (bus, ring_dir))
        start("strategy", strategy_child, (bus, ring_dir))
    time.sleep(0.2)
    # The server must outlast the recovery of whatever the handler dropped.
    linger = max(3.0, 1.5 * messages / 1e6)
    sent = itch.send(path, group, rate=rate, retransmit=server, linger=linger)
    out: dict = {"rate": rate, "messages": messages}
    for name, q in queues.items():
        got = q.get(timeout=120)
        if not isinstance(got, dict):
            raise SystemExit(f"{name} failed: {got}")
        out[name] = got
    for p in procs:
        p.join(10)
    h = out["handler"]
    row = {
        "target": rate,
        "messages": messages,
        "sent_rate": sent["messages"] / sent["elapsed"],
        "sender_max_behind_s": sent["max_behind"],
        "handled_rate": active_rate(h["ticks"]),
        "delivered": h["delivered"],
        "kernel_drops": h["lines"][0]["kernel_drops"],
        "receive_buffer": h["lines"][0]["receive_buffer"],
        "gaps": h["gaps"],
        "recovered": h["recovered"],
        "unrecovered": h["lost"],
        "unrecovered_ranges": h["unrecovered"],
        "requests": h["requests"],
        "packets": h["lines"][0]["packets"],
        "handler_cpu": h["cpu"],
    }
    if "books" in out:
        b = out["books"]
        row.update(
            book_messages=b["messages"],
            book_updates=b["updates"],
            book_lost=b["lost"],
            book_errors=b["book_errors"],
            book_updates_per_s=active_rate(b["ticks"], column=2),
        )
    if "strategy" in out:
        s = out["strategy"]
        row.update(
            strategy_received=s["received"],
            strategy_lost=s["lost"],
            wire_to_ring=percentiles(s["wire_to_ring"]),
            wire_to_strategy=percentiles(s["wire_to_strategy"]),
        )
    return row


def books_catch_up(path: str, tmp: str, n: int) -> dict:
    """The book builder's own speed: the handler fills a stream ring that
    holds the whole day (at 500k msgs/s), the ring is closed, then the book
    builder reads it from the oldest message, its input never waiting."""
    import ringcast.itch as itch

    ring_dir = tempfile.mkdtemp(dir=tmp)
    group = GROUP.format(1 + n % 250, 48000 + 2 * n)
    server = f"127.0.0.1:{48001 + 2 * n}"
    ready, results = ctx.Event(), ctx.Queue()
    kw = dict(group=group, bus="md", dir=ring_dir, retransmit=server, idle_timeout=20.0)
    kw["stream_capacity"] = 1 << 22
    p = ctx.Process(target=handler_child, args=(kw, ready, results))
    p.start()
    ready.wait(30)
    time.sleep(0.2)
    itch.send(path, group, rate=500_000, retransmit=server, linger=1.0)
    h = results.get(timeout=120)
    p.join(10)
    t = time.monotonic()
    b = itch.books("md", dir=ring_dir, capacity=1 << 18)
    s = time.monotonic() - t
    return {
        "messages": b["messages"],
        "updates": b["updates"],
        "seconds": s,
        "msgs_per_s": b["messages"] / s,
        "updates_per_s": b["updates"] / s,
        "handler_lost": h["lost"] if isinstance(h, dict) else h,
    }


def fmt_rate(r: float | None) -> str:
    return "max" if r is None else (f"{r / 1e6:g}M" if r >= 1e6 else f"{r / 1e3:g}k")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="100k,500k,1M,2M,5M,max")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--max-messages", type=int, default=5_000_000)
    p.add_argument("--min-messages", type=int, default=300_000)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--stages", choices=("all", "handler"), default="all")
    p.add_argument("--receive-buffer-mb", type=int, default=64)
    p.add_argument("--books-catch-up", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    import ringcast.itch as itch

    rates = [rate_arg(r) for r in a.rates.split(",")]
    rows, n = [], int(time.time()) % 100
    with tempfile.TemporaryDirectory() as tmp:
        days: dict[int, str] = {}
        for rate in rates:
            want = a.max_messages if rate is None else int(rate * a.seconds)
            messages = max(a.min_messages, min(a.max_messages, want))
            if messages not in days:
                days[messages] = os.path.join(tmp, f"day{messages}.itch")
                itch.generate(days[messages], seed=1, messages=messages)
            for rep in range(a.repeats):
                n += 1
                row = run_one(
                    days[messages], messages, rate, n, a.stages, tmp, a.receive_buffer_mb << 20
                )
                row["repeat"] = rep
                rows.append(row)
                if not a.json:
                    print_row(row)
        catch_up = None
        if a.books_catch_up:
            n += 1
            m = min(a.max_messages, 2_000_000)
            path = days.get(m) or os.path.join(tmp, "catchup.itch")
            if m not in days:
                itch.generate(path, seed=1, messages=m)
            catch_up = books_catch_up(path, tmp, n)
            if not a.json:
                print(
                    f"books catch-up: {catch_up['messages']:,} messages in "
                    f"{catch_up['seconds']:.2f} s: {catch_up['msgs_per_s'] / 1e6:.2f} M msgs/s, "
                    f"{catch_up['updates_per_s'] / 1e6:.2f} M updates/s"
                )
    summary = summarize(rows)
    meta = {
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "stages": a.stages,
        "receive_buffer_mb": a.receive_buffer_mb,
    }
    if a.json:
        print(
            json.dumps(
                {"meta": meta, "runs": rows, "summary": summary, "books_catch_up": catch_up},
                indent=1,
            )
        )
    else:
        print(f"{os.cpu_count()} CPUs, load {meta['loadavg'][0]:.1f}; min/median per rate:")
        for s in summary:
            print(json.dumps(s))


def print_row(r: dict) -> None:
    def us(d: dict | None, k: str) -> str:
        return "-" if d is None else f"{d[k] / 1e3:.0f}"

    w2r, w2s = r.get("wire_to_ring"), r.get("wire_to_strategy")
    cpu = r["handler_cpu"]
    book = r.get("book_updates_per_s")
    print(
        f"{fmt_rate(r['target']):>5}: sent {r['sent_rate'] / 1e6:5.2f}M/s "
        f"handled {(r['handled_rate'] or 0) / 1e6:5.2f}M/s drops {r['kernel_drops']} "
        f"gaps {r['gaps']} recovered {r['recovered']} unrecovered {r['unrecovered']} | "
        f"w->ring us {us(w2r, 'p50')}/{us(w2r, 'p99')}/{us(w2r, 'p99.9')} "
        f"w->strat us {us(w2s, 'p50')}/{us(w2s, 'p99')}/{us(w2s, 'p99.9')} | "
        f"books {'-' if book is None else f'{book / 1e6:.2f}M'} upd/s "
        f"lost {r.get('book_lost', '-')} strat lost {r.get('strategy_lost', '-')} | "
        f"handler cpu usr {cpu['user_s']:.2f}s sys {cpu['sys_s']:.2f}s "
        f"vcsw {cpu['voluntary_switches']} ivcsw {cpu['involuntary_switches']} "
        f"faults {cpu['minor_faults']} packets {r['packets']}",
        flush=True,
    )


def summarize(rows: list[dict]) -> list[dict]:
    out = []
    for target in dict.fromkeys(r["target"] for r in rows):
        rs = [r for r in rows if r["target"] == target]

        def mm(values):
            values = [v for v in values if v is not None]
            return (min(values), statistics.median(values)) if values else None

        s = {
            "target": fmt_rate(target),
            "repeats": len(rs),
            "handled_rate_min_median": mm(r["handled_rate"] for r in rs),
            "sent_rate_min_median": mm(r["sent_rate"] for r in rs),
            "kernel_drops_max": max((r["kernel_drops"] or 0) for r in rs),
            "unrecovered_max": max(r["unrecovered"] for r in rs),
            "recovered_max": max(r["recovered"] for r in rs),
        }
        for key in ("wire_to_ring", "wire_to_strategy"):
            if rs[0].get(key):
                for pct in PERCENTILES:
                    s[f"{key}_p{pct:g}_ns_min_median"] = mm(r[key][f"p{pct:g}"] for r in rs)
        if rs[0].get("book_updates_per_s") is not None:
            s["book_updates_per_s_min_median"] = mm(r["book_updates_per_s"] for r in rs)
        out.append(s)
    return out


if __name__ == "__main__":
    main()
