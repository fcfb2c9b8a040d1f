"""Stages and gating (the dependency barrier) across processes.

Stages B and C read ring ``events`` and, before asking for the next event,
publish their result for it into their own rings; reader D is gated after
both. For every event D reads it must find B's and C's results for that
event already published (a non-blocking read), which is only guaranteed if
D never overtakes either stage.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

import ringcast
from _workers import REC, StreamCheck, make_records
from ringcast._memory import format_info

ctx = mp.get_context("spawn")
RESULT = np.dtype([("seq", "<u8"), ("stage", "<u8")])


def stage_worker(ring_dir, stage, total, attached, start="oldest"):
    """Stage `stage`: reads events, publishes one result per event into ring
    `stage`, and so commits each event only after its result is out."""
    with (
        ringcast.Publisher.create(
            stage, dtype=RESULT, capacity=1 << 12, dir=ring_dir, exist_ok=True
        ) as out,
        ringcast.Subscriber.attach(
            "events", dir=ring_dir, stage=stage, start=start, dtype=REC
        ) as sub,
    ):
        attached.set()
        result = np.zeros((), dtype=RESULT)
        result["stage"] = ord(stage)
        for rec in sub:
            result["seq"] = rec["seq"]
            out.publish(result)
            if sub.position >= total:
                sub.commit()


def joiner_worker(ring_dir, total, attached, results):
    """Reader D, gated after b and c: every event it reads must already have
    both results published."""
    check = StreamCheck()
    early = 0
    outs = {s: ringcast.Subscriber.attach(s, dir=ring_dir, start=0) for s in "bc"}
    with ringcast.Subscriber.attach(
        "events", dir=ring_dir, after=("b", "c"), start=0, dtype=REC
    ) as sub:
        attached.set()
        while check.received < total:
            batch = sub.recv_batch(256, timeout=30)
            check.add(batch)
            for seq in batch["seq"]:
                for out in outs.values():
                    got = out.try_recv()
                    if got is None or int(got["seq"]) != int(seq):
                        early += 1
        results.put({**check.result(sub), "early": early})
    for out in outs.values():
        out.close()


def start_workers(ring_dir, total, stages="bc"):
    results = ctx.Queue()
    events = {s: ctx.Event() for s in [*stages, "d"]}
    procs = {
        s: ctx.Process(target=stage_worker, args=(ring_dir, s, total, events[s])) for s in stages
    }
    # The result rings must exist before D attaches to them.
    for s in stages:
        procs[s].start()
        assert events[s].wait(30), f"stage {s} did not attach"
    procs["d"] = ctx.Process(target=joiner_worker, args=(ring_dir, total, events["d"], results))
    procs["d"].start()
    assert events["d"].wait(30), "D did not attach"
    return procs, results


def publish(pub, start, n, batch=1024):
    sent = start
    while sent < start + n:
        k = min(batch, start + n - sent)
        pub.publish_batch(make_records(sent, k))
        sent += k


@pytest.mark.timeout(180)
def test_gated_reader_never_overtakes_its_stages_across_processes(ring_dir):
    total = 200_000
    with ringcast.Publisher.create(
        "events", dtype=REC, capacity=1 << 10, dir=ring_dir, bounded=True
    ) as pub:
        procs, results = start_workers(ring_dir, total)
        publish(pub, 0, total)
        r = results.get(timeout=120)
    for p in procs.values():
        p.join(30)
        assert p.exitcode == 0, p
    assert r["early"] == 0, f"D read {r['early']} events before both stages processed them"
    assert (r["received"], r["gaps"], r["bad_checksums"], r["out_of_order"]) == (total, 0, 0, 0)
    assert r["sub_lost"] == 0


@pytest.mark.timeout(180)
def test_killed_stage_holds_the_gate_and_resumes(ring_dir):
    total = 40_000
    with ringcast.Publisher.create(
        "events", dtype=REC, capacity=1 << 10, dir=ring_dir, bounded=True
    ) as pub:
        procs, results = start_workers(ring_dir, total)
        publish(pub, 0, total // 2)
        os.kill(procs["b"].pid, signal.SIGKILL)
        procs["b"].join(10)
        # D stops at b's last progress, which b's record remembers (as a dead
        # subscriber until someone sweeps the table, then as departed).
        info = ringcast.ring_info("events", ring_dir)
        dead_b = [s for s in info["subscribers"] if s["stage"] == "b"]
        assert [s["alive"] for s in dead_b] in ([False], []), dead_b
        progress = dead_b[0]["processed"] if dead_b else info["departed_stages"]["b"]
        time.sleep(0.3)
        info = ringcast.ring_info("events", ring_dir)
        (d,) = [s for s in info["subscribers"] if s["pid"] == procs["d"].pid]
        assert d["position"] <= progress < total // 2, (d, progress)
        attached = ctx.Event()
        procs["b"] = ctx.Process(
            target=stage_worker, args=(ring_dir, "b", total, attached, "resume")
        )
        procs["b"].start()
        assert attached.wait(30)
        publish(pub, total // 2, total - total // 2)
        r = results.get(timeout=120)
    for p in procs.values():
        p.join(30)
        assert p.exitcode in (0, -signal.SIGKILL), p
    # The restarted b redoes what the killed one read but had not committed,
    # so its result ring may repeat events; D sees every event exactly once.
    assert (r["received"], r["gaps"], r["bad_checksums"], r["out_of_order"]) == (total, 0, 0, 0)


def test_stage_names_are_unique_and_checked(ring_dir):
    with ringcast.Publisher.create("events", dtype=REC, capacity=64, dir=ring_dir):
        with ringcast.Subscriber.attach("events", dir=ring_dir, stage="b") as b:
            assert (b.stage, b.after, b.processed) == ("b", (), b.position)
            with pytest.raises(ringcast.StageExists, match='stage named "b"'):
                ringcast.Subscriber.attach("events", dir=ring_dir, stage="b")
            info = ringcast.ring_info("events", ring_dir)
            assert [s["stage"] for s in info["subscribers"]] == ["b"]
        for bad in ("", "a b", "x" * 33):
            with pytest.raises(ringcast.InvalidArgument, match="letters, digits"):
                ringcast.Subscriber.attach("events", dir=ring_dir, stage=bad)
        with pytest.raises(ringcast.InvalidArgument, match="after itself"):
            ringcast.Subscriber.attach("events", dir=ring_dir, stage="d", after=("d",))
        with pytest.raises(ringcast.InvalidArgument, match="twice"):
            ringcast.Subscriber.attach("events", dir=ring_dir, after=("b", "b"))
        with pytest.raises(ringcast.InvalidArgument, match="stage name"):
            ringcast.Subscriber.attach("events", dir=ring_dir, start="resume")
        with pytest.raises(ringcast.InvalidArgument, match="after must be"):
            ringcast.Subscriber.attach("events", dir=ring_dir, after=(1,))
        with pytest.raises(ringcast.InvalidArgument, match="stage must be"):
            ringcast.Subscriber.attach("events", dir=ring_dir, stage=3)


def test_commit_releases_and_info_shows_stages(ring_dir):
    with ringcast.Publisher.create("events", dtype=REC, capacity=64, dir=ring_dir) as pub:
        b = ringcast.Subscriber.attach("events", dir=ring_dir, stage="b", start=0)
        d = ringcast.Subscriber.attach("events", dir=ring_dir, after="b", start=0)
        assert d.after == ("b",)
        pub.publish_batch(make_records(0, 3))
        assert d.try_recv() is None
        assert b.recv(timeout=1)["seq"] == 0
        assert d.try_recv() is None, "b has not asked for the next event yet"
        b.commit()
        assert (b.processed, d.upstream()) == (1, [("b", 1)])
        assert d.recv(timeout=1)["seq"] == 0
        assert d.try_recv() is None
        text = format_info(ringcast.ring_info("events", ring_dir))
        assert "stage 'b' processed 1" in text
        b.close()  # closing commits everything read
        info = ringcast.ring_info("events", ring_dir)
        assert info["departed_stages"] == {"b": 1}
        assert "departed" in format_info(info)
        d.close()


async def _gated_async(ring_dir):
    with ringcast.Publisher.create("events", dtype=REC, capacity=64, dir=ring_dir) as pub:
        b = ringcast.Subscriber.attach("events", dir=ring_dir, stage="b", start=0)
        d = ringcast.Subscriber.attach("events", dir=ring_dir, after=("b",), start=0)
        pub.publish_batch(make_records(0, 2))
        b.recv(timeout=1)
        b.recv(timeout=1)
        import asyncio

        got = asyncio.ensure_future(d.recv_async(timeout=5))
        await asyncio.sleep(0.05)
        first = await got  # event 0 was committed by b's second receive
        waiting = asyncio.ensure_future(d.recv_async(timeout=5))
        await asyncio.sleep(0.1)
        assert not waiting.done(), "the readiness thread ignored the gate"
        b.commit()
        second = await waiting
        b.close()
        d.close()
        return int(first["seq"]), int(second["seq"])


def test_gated_recv_async_waits_for_the_stage(ring_dir):
    import asyncio

    assert asyncio.run(_gated_async(ring_dir)) == (0, 1)
