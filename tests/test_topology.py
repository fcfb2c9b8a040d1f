"""Pipelines and diamonds of stage processes (ringcast.Pipeline, ringcast.Diamond).

Streams carry the checksummed records of ``_workers``: every record's ``seq``
is its position in the source's stream and its checksum covers the rest, so
the last stage proves that every message arrived whole, once and in order.
Stage functions live at module level (stages run in forked, or spawned,
processes); sinks report what they saw through ``finish`` (``results``).
"""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ringcast
from _workers import REC, StreamCheck, checksum, make_records
from ringcast import _topology

ROOT = Path(__file__).resolve().parent.parent
PROGRESS = np.dtype([("seq", "<u8")])
OTHER = np.dtype([("seq", "<u8"), ("price", "<f8")])
MILLION = 1_000_000


# Stage functions ---------------------------------------------------------------------------


def source(total: int, batch: int = 16384, pace: float = 0.0):
    """Records 0..total-1 in numpy batches (`pace`: seconds slept between batches)."""
    for start in range(0, total, batch):
        yield make_records(start, min(batch, total - start))
        if pace:
            time.sleep(pace)


def endless(pace: float = 0.001):
    """One record per `pace` seconds, until the topology is stopped."""
    seq = 0
    while True:
        yield make_records(seq, 1)[0]
        seq += 1
        time.sleep(pace)


def relay(msg: Any) -> Any:
    """Passes messages (or batches) on unchanged."""
    return msg


def checked_relay(batch: np.ndarray, state: dict[str, int]) -> np.ndarray:
    """Counts records whose checksum is wrong, then passes the batch on."""
    state["bad"] += int(np.count_nonzero(checksum(batch) != batch["checksum"]))
    state["received"] += len(batch)
    return batch


def counters(ctx: ringcast.StageContext) -> dict[str, int]:
    return {"bad": 0, "received": 0}


def counters_result(state: dict[str, int]) -> dict[str, int]:
    return state


def check_setup(ctx: ringcast.StageContext) -> StreamCheck:
    return StreamCheck()


def check(msgs: Any, state: StreamCheck) -> None:
    """Sink: order, gaps and checksum of every record (one or a batch)."""
    state.add(np.atleast_1d(msgs))


def check_result(state: StreamCheck) -> dict[str, Any]:
    return {
        "received": state.received,
        "bad": state.bad_checksums,
        "out_of_order": state.out_of_order,
        "gaps": state.gaps,
        "first": state.first,
        "last": state.last,
    }


def sink_stage(batch: int | None = 8192, name: str = "sink") -> ringcast.Stage:
    return ringcast.Stage(check, name=name, batch=batch, setup=check_setup, finish=check_result)


def explode_at(seq: int, msg: Any) -> Any:
    """Raises on record `seq` (per-message stage)."""
    if int(msg["seq"]) == seq:
        raise ValueError(f"boom at {seq}")
    return msg


def explode_once(seq: int, batch: np.ndarray, ctx: ringcast.StageContext) -> np.ndarray:
    """Raises on the batch holding record `seq`, in the stage's first process only."""
    if ctx.restarts == 0 and seq in batch["seq"]:
        raise ValueError(f"boom at {seq}")
    return batch


def explode_always(batch: np.ndarray) -> np.ndarray:
    raise RuntimeError("always broken")


def keep_ctx(ctx: ringcast.StageContext) -> ringcast.StageContext:
    return ctx


class Dedup:
    """A sink that accepts re-delivered records (seq <= last seen, as after a
    stage was killed and resumed) but no gap and no damaged record."""

    def __init__(self, ctx: ringcast.StageContext) -> None:
        self.last = -1
        self.unique = 0
        self.duplicates = 0
        self.gaps = 0
        self.bad = 0

    def add(self, batch: np.ndarray) -> None:
        self.bad += int(np.count_nonzero(checksum(batch) != batch["checksum"]))
        for s in batch["seq"].tolist():
            if s <= self.last:
                self.duplicates += 1
            else:
                self.gaps += s - self.last - 1
                self.unique += 1
                self.last = s

    def result(self) -> dict[str, int]:
        return dict(vars(self))


def dedup_add(batch: np.ndarray, state: Dedup) -> None:
    state.add(batch)


def dedup_result(state: Dedup) -> dict[str, int]:
    return state.result()


def branch_progress(pause_every: int, batch: np.ndarray, state: dict[str, int]) -> np.ndarray:
    """A diamond branch: checks the batch (or record), then publishes one
    progress record (the last sequence it processed); optionally slow."""
    batch = np.atleast_1d(batch)
    state["bad"] += int(np.count_nonzero(checksum(batch) != batch["checksum"]))
    state["received"] += len(batch)
    if pause_every and state["received"] // pause_every != (state["received"] - len(batch)) // (
        pause_every
    ):
        time.sleep(0.002)
    return np.array([(batch["seq"][-1],)], dtype=PROGRESS)


class GateCheck:
    """The gated stage D of a diamond. For every record it receives it proves
    that both branches had processed it already, two ways:

    * the branches publish their progress (after processing, before asking
      for more), so every progress record up to D's sequence must already be
      in their output rings: drained without waiting;
    * (every `info_every` batches) the ring's subscriber table must show both
      branches' processed progress past it.
    """

    def __init__(self, ctx: ringcast.StageContext, info_every: int) -> None:
        assert ctx.subscriber is not None
        self.input = ctx.subscriber.name
        self.dir = ctx.dir
        self.branches = {b: ctx.attach(b) for b in ("b", "c")}
        self.seen = {b: -1 for b in self.branches}
        self.stream = StreamCheck()
        self.violations = 0
        self.info_checks = 0
        self.info_violations = 0
        self.info_every = info_every
        self.batches = 0

    def add(self, batch: np.ndarray) -> None:
        batch = np.atleast_1d(batch)
        self.stream.add(batch)
        hi = int(batch["seq"][-1])
        for name, sub in self.branches.items():
            while self.seen[name] < hi:
                got = sub.recv_batch(4096, timeout=0)
                if len(got) == 0:
                    break
                self.seen[name] = int(got["seq"].max())
            if self.seen[name] < hi:
                self.violations += 1
        self.batches += 1
        if self.info_every and self.batches % self.info_every == 0:
            recs = ringcast.ring_info(self.input, dir=self.dir)["subscribers"]
            processed = {r["stage"]: r["processed"] for r in recs if r["stage"] in self.branches}
            for name, sub in self.branches.items():
                if name in processed:
                    self.info_checks += 1
                    self.info_violations += processed[name] <= hi
                # The table lists live records only: a branch may be missing
                # once it finished, which it does only after closing its output.
                elif not sub.publisher_closed:
                    self.info_violations += 1

    def result(self) -> dict[str, Any]:
        return {
            "received": self.stream.received,
            "bad": self.stream.bad_checksums,
            "out_of_order": self.stream.out_of_order,
            "gaps": self.stream.gaps,
            "last": self.stream.last,
            "violations": self.violations,
            "info_checks": self.info_checks,
            "info_violations": self.info_violations,
            "branch_progress": dict(self.seen),
        }


def gate_setup(info_every: int, ctx: ringcast.StageContext) -> GateCheck:
    return GateCheck(ctx, info_every)


def gate_add(batch: Any, state: GateCheck) -> None:
    state.add(batch)


def gate_result(state: GateCheck) -> dict[str, Any]:
    return state.result()


def spawn_source():
    yield from source(5000, 1000)


def upper(msg: bytes) -> bytes:
    return msg.upper()


def bytes_source():
    for i in range(3000):
        yield f"quote-{i}".encode()


def collect_setup(ctx: ringcast.StageContext) -> list[bytes]:
    return []


def collect(msgs: Any, state: list[bytes]) -> None:
    state.extend(msgs if isinstance(msgs, list) else [msgs])


def collect_result(state: list[bytes]) -> list[bytes]:
    return state


def cpus_result() -> list[int]:
    return sorted(ringcast.thread_cpus())


def nothing(msg: Any) -> None:
    return None


# Helpers ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_stage_outlives_its_test():
    """A test that fails half way must not leave stage processes running into
    the next tests (which check that no child process exists)."""
    yield
    _topology._stop_all()


def status(topology: ringcast.Topology) -> dict[str, ringcast.StageStatus]:
    return {s.name: s for s in topology.stages}


def process_gone(pid: int) -> bool:
    """No such process, or only its zombie (a dead child of a reaper)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def assert_nothing_left(topology: ringcast.Topology, ring_dir: str, pids: list[int]) -> None:
    assert all(process_gone(pid) for pid in pids), [p for p in pids if not process_gone(p)]
    assert os.listdir(ring_dir) == []
    assert not any(s.alive for s in topology.stages)
    assert not topology.running


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def three_stage(name: str, ring_dir: str, total: int, **options: Any) -> ringcast.Pipeline:
    return ringcast.Pipeline(
        name,
        [
            ringcast.Stage(functools.partial(source, total), name="source", dtype=REC),
            ringcast.Stage(
                checked_relay,
                name="relay",
                dtype=REC,
                batch=8192,
                setup=counters,
                finish=counters_result,
            ),
            sink_stage(),
        ],
        dir=ring_dir,
        **options,
    )


def expect_stream(result: dict[str, Any], total: int) -> None:
    assert result == {
        "received": total,
        "bad": 0,
        "out_of_order": 0,
        "gaps": 0,
        "first": 0,
        "last": total - 1,
    }


# A million messages, bounded, end to end -------------------------------------------------------


@pytest.mark.timeout(60)
def test_pipeline_carries_a_million_checksummed_messages_without_loss(ring_dir):
    p = three_stage("p1m", ring_dir, MILLION)
    t0 = time.perf_counter()
    with p:
        p.join(timeout=45)
    elapsed = time.perf_counter() - t0
    expect_stream(p.results["sink"], MILLION)
    assert p.results["relay"] == {"bad": 0, "received": MILLION}
    st = status(p)
    assert st["source"].published == MILLION
    for name in ("relay", "sink"):
        assert (st[name].received, st[name].lost, st[name].processed) == (MILLION, 0, MILLION)
        assert st[name].state == "done" and st[name].exitcode == 0
    assert st["relay"].published == MILLION
    assert os.listdir(ring_dir) == []
    print(
        f"\n3-stage pipeline: {MILLION:,} messages in {elapsed:.2f}s ({MILLION / elapsed:,.0f}/s)"
    )


@pytest.mark.timeout(60)
def test_diamond_carries_a_million_messages_and_the_join_never_overtakes(ring_dir):
    d = ringcast.Diamond(
        "d1m",
        source=ringcast.Stage(functools.partial(source, MILLION), name="a", dtype=REC),
        branches=[
            ringcast.Stage(
                functools.partial(branch_progress, 0),
                name=name,
                dtype=PROGRESS,
                batch=8192,
                setup=counters,
                finish=counters_result,
            )
            for name in ("b", "c")
        ],
        then=ringcast.Stage(
            gate_add,
            name="d",
            batch=8192,
            setup=functools.partial(gate_setup, 8),
            finish=gate_result,
        ),
        dir=ring_dir,
    )
    t0 = time.perf_counter()
    with d:
        d.join(timeout=45)
    elapsed = time.perf_counter() - t0
    r = d.results["d"]
    assert (r["received"], r["bad"], r["out_of_order"], r["gaps"], r["last"]) == (
        MILLION,
        0,
        0,
        0,
        MILLION - 1,
    )
    assert r["violations"] == 0 and r["info_violations"] == 0, r
    assert r["info_checks"] > 0
    assert d.results["b"] == d.results["c"] == {"bad": 0, "received": MILLION}
    st = status(d)
    for name in ("b", "c", "d"):
        assert (st[name].received, st[name].lost) == (MILLION, 0)
    assert st["d"].input == st["b"].input == st["c"].input == "d1m.a"
    assert os.listdir(ring_dir) == []
    print(f"\ndiamond: {MILLION:,} messages in {elapsed:.2f}s ({MILLION / elapsed:,.0f}/s)")


@pytest.mark.timeout(60)
def test_gated_stage_waits_for_a_slow_branch_message_by_message(ring_dir):
    """Per-message stages, branch b much slower than the join would run: every
    single record the join reads must already be processed by b and c."""
    total = 20_000
    d = ringcast.Diamond(
        "gate",
        source=ringcast.Stage(functools.partial(source, total, 500), name="a", dtype=REC),
        branches=[
            ringcast.Stage(
                functools.partial(branch_progress, pause),
                name=name,
                dtype=PROGRESS,
                setup=counters,
                finish=counters_result,
            )
            for name, pause in (("b", 200), ("c", 0))
        ],
        then=ringcast.Stage(
            gate_add, name="d", setup=functools.partial(gate_setup, 97), finish=gate_result
        ),
        dir=ring_dir,
        capacity=4096,
    )
    with d:
        d.join(timeout=45)
    r = d.results["d"]
    assert (r["received"], r["bad"], r["gaps"], r["out_of_order"]) == (total, 0, 0, 0)
    assert r["violations"] == 0 and r["info_violations"] == 0, r
    assert r["info_checks"] >= total // 97 - 1
    assert r["branch_progress"] == {"b": total - 1, "c": total - 1}


# Lossy rings: exact accounting -------------------------------------------------------------


def slow_relay(batch: np.ndarray) -> np.ndarray:
    time.sleep(0.001)
    return batch


@pytest.mark.timeout(60)
def test_lossy_pipeline_accounts_for_every_message(ring_dir):
    total = 200_000
    p = ringcast.Pipeline(
        "lossy",
        [
            ringcast.Stage(functools.partial(source, total, 4096), name="source", dtype=REC),
            ringcast.Stage(slow_relay, name="relay", dtype=REC, batch=256),
            sink_stage(batch=64),
        ],
        dir=ring_dir,
        bounded=False,
        capacity=1024,
    )
    with p:
        p.join(timeout=45)
    st = status(p)
    assert st["source"].published == total
    for name, upstream in (("relay", "source"), ("sink", "relay")):
        s = st[name]
        assert s.received + s.lost == st[upstream].published, s
        assert s.position == st[upstream].published and s.start == 0
    assert st["relay"].lost > 0  # the test did lap the slow stage
    assert st["relay"].published == st["relay"].received
    r = p.results["sink"]
    # Every record that arrived is whole and in order; records lost on the way
    # show as gaps in the source's numbering, no more than both stages lost.
    assert r["received"] == st["sink"].received
    assert r["bad"] == 0 and r["out_of_order"] == 0
    assert (
        r["gaps"] + (r["first"] or 0) + (total - 1 - r["last"])
        == st["relay"].lost + st["sink"].lost
    )


# Failures --------------------------------------------------------------------------------


def endless_pipeline(name: str, ring_dir: str, **options: Any) -> ringcast.Pipeline:
    return ringcast.Pipeline(
        name,
        [
            ringcast.Stage(endless, dtype=REC),
            ringcast.Stage(relay, dtype=REC),
            ringcast.Stage(nothing, name="sink"),
        ],
        dir=ring_dir,
        **options,
    )


@pytest.mark.timeout(60)
def test_a_killed_stage_is_reported_within_a_second_and_nothing_is_left(ring_dir):
    p = endless_pipeline("kill", ring_dir).start()
    wait_for(lambda: (status(p)["sink"].received or 0) > 20, 10, "messages to flow")
    pids = [s.pid for s in p.stages]
    assert all(s.alive for s in p.stages)
    killed_at = time.monotonic()
    os.kill(status(p)["relay"].pid, signal.SIGKILL)
    with pytest.raises(ringcast.StageFailed) as info:
        p.join(timeout=10)
    assert time.monotonic() - killed_at < 1.0
    assert info.value.stage == "relay"
    assert "SIGKILL" in str(info.value) and "SIGKILL" in info.value.traceback
    assert_nothing_left(p, ring_dir, pids)
    st = status(p)
    assert st["relay"].state == "failed" and st["relay"].exitcode == -signal.SIGKILL
    assert st["endless"].state == st["sink"].state == "stopped"
    with pytest.raises(ringcast.StageFailed):  # the failure stays reported
        p.join()


@pytest.mark.timeout(60)
def test_two_topologies_and_other_children_do_not_confuse_the_supervisors(ring_dir):
    """multiprocessing polls (waitpid) every child of the process whenever a
    Process starts or active_children() runs, from the calling thread; the
    supervisors must still see how each of their stages ended."""
    other = ringcast.Pipeline(
        "other", [SRC, ringcast.Stage(relay, dtype=REC), sink_stage()], dir=ring_dir
    )
    with endless_pipeline("victim", ring_dir) as p:
        wait_for(lambda: (status(p)["sink"].received or 0) > 5, 10, "messages to flow")
        os.kill(status(p)["relay"].pid, signal.SIGKILL)
        deadline = time.monotonic() + 1.0
        while p.running and time.monotonic() < deadline:
            mp.active_children()  # reaps from this thread, racing the supervisor
        with pytest.raises(ringcast.StageFailed, match="SIGKILL"):
            p.join(timeout=5)
        with other:
            other.join(timeout=20)
    expect_stream(other.results["sink"], 10)
    assert os.listdir(ring_dir) == []


@pytest.mark.timeout(60)
def test_a_raising_stage_fails_the_topology_with_its_traceback(ring_dir):
    p = ringcast.Pipeline(
        "raise",
        [
            ringcast.Stage(functools.partial(source, 5000, 100), name="source", dtype=REC),
            ringcast.Stage(functools.partial(explode_at, 1234), name="relay", dtype=REC),
            sink_stage(),
        ],
        dir=ring_dir,
    ).start()
    pids = [s.pid for s in p.stages]
    with pytest.raises(ringcast.StageFailed) as info:
        p.join(timeout=20)
    e = info.value
    assert e.stage == "relay"
    assert "ValueError: boom at 1234" in e.traceback
    assert "explode_at" in e.traceback  # the stage's own frame
    assert "'relay'" in str(e) and "ValueError: boom at 1234" in str(e)
    assert p.failures == [e]
    assert_nothing_left(p, ring_dir, pids)


@pytest.mark.timeout(60)
def test_context_manager_raises_a_failure_nobody_joined(ring_dir):
    with pytest.raises(ringcast.StageFailed, match="always broken"):
        with ringcast.Pipeline(
            "cm",
            [
                ringcast.Stage(functools.partial(source, 100), name="source", dtype=REC),
                ringcast.Stage(explode_always, dtype=REC, batch=10),
                sink_stage(),
            ],
            dir=ring_dir,
        ) as p:
            wait_for(lambda: not p.running, 10, "the failure to stop the topology")
    assert os.listdir(ring_dir) == []


@pytest.mark.timeout(60)
def test_restart_resumes_a_raising_stage_exactly_where_it_stopped(ring_dir):
    total = 200_000
    p = ringcast.Pipeline(
        "restart",
        [
            ringcast.Stage(functools.partial(source, total, 2000), name="source", dtype=REC),
            ringcast.Stage(
                functools.partial(explode_once, 100_000),
                name="relay",
                dtype=REC,
                batch=4096,
                setup=keep_ctx,
            ),
            sink_stage(),
        ],
        dir=ring_dir,
        capacity=4096,
        on_failure="restart",
    )
    with p:
        p.join(timeout=45)
    # The failed batch was never published and is read again: exactly once.
    expect_stream(p.results["sink"], total)
    st = status(p)
    assert st["relay"].restarts == 1 and st["relay"].state == "done"
    assert st["sink"].received == total and st["sink"].lost == 0
    assert len(p.failures) == 1 and "ValueError: boom at 100000" in p.failures[0].traceback
    assert os.listdir(ring_dir) == []


@pytest.mark.timeout(60)
def test_restart_after_sigkill_resumes_and_the_topology_completes(ring_dir):
    total = 300_000
    p = ringcast.Pipeline(
        "rekill",
        [
            # Paced so that the relay is killed mid-stream, and small rings so
            # that the source would lap a dead relay if nothing held it back.
            ringcast.Stage(functools.partial(source, total, 1000, 0.001), name="src", dtype=REC),
            ringcast.Stage(relay, name="relay", dtype=REC, batch=512),
            ringcast.Stage(dedup_add, name="sink", batch=512, setup=Dedup, finish=dedup_result),
        ],
        dir=ring_dir,
        capacity=1024,
        on_failure="restart",
    ).start()
    wait_for(lambda: (status(p)["sink"].processed or 0) > 30_000, 20, "the sink to get going")
    first_pid = status(p)["relay"].pid
    os.kill(first_pid, signal.SIGKILL)
    wait_for(lambda: status(p)["relay"].restarts == 1, 2, "the restart")
    p.join(timeout=45)
    r = p.results["sink"]
    assert r["unique"] == total and r["gaps"] == 0 and r["bad"] == 0 and r["last"] == total - 1
    st = status(p)
    assert st["relay"].restarts == 1 and st["relay"].pid != first_pid
    assert "SIGKILL" in p.failures[0].traceback and p.failures[0].stage == "relay"
    assert process_gone(first_pid)
    assert os.listdir(ring_dir) == []


def resumable_source(total: int, fail_at: int, ctx: ringcast.StageContext):
    """A source that continues where its ring ends (after a restart) and
    raises once, in its first process, before publishing record `fail_at`."""
    assert ctx.publisher is not None
    for start in range(ctx.publisher.sequence, total, 1000):
        if ctx.restarts == 0 and start <= fail_at < start + 1000:
            raise OSError(f"feed lost at {fail_at}")
        yield make_records(start, min(1000, total - start))


@pytest.mark.timeout(60)
def test_a_restarted_source_takes_its_ring_over_and_continues(ring_dir):
    total = 50_000
    p = ringcast.Pipeline(
        "resrc",
        [
            ringcast.Stage(
                functools.partial(resumable_source, total, 20_500),
                name="feed",
                dtype=REC,
                setup=keep_ctx,
            ),
            sink_stage(),
        ],
        dir=ring_dir,
        on_failure="restart",
    )
    with p:
        p.join(timeout=30)
    expect_stream(p.results["sink"], total)
    assert status(p)["feed"].restarts == 1 and status(p)["feed"].published == total
    assert "OSError: feed lost at 20500" in p.failures[0].traceback


def broken_setup(ctx: ringcast.StageContext) -> None:
    raise KeyError("no such instrument")


def slow_setup(ctx: ringcast.StageContext) -> None:
    time.sleep(30)


@pytest.mark.timeout(60)
def test_a_stage_that_cannot_start_fails_start(ring_dir):
    p = ringcast.Pipeline(
        "nostart",
        [SRC, ringcast.Stage(nothing, name="sink", setup=broken_setup)],
        dir=ring_dir,
        on_failure="restart",  # a stage that cannot start is not restarted
    )
    with pytest.raises(ringcast.StageFailed, match="while the topology was starting") as info:
        p.start()
    assert info.value.stage == "sink" and "KeyError: 'no such instrument'" in info.value.traceback
    assert not p.running
    no_children_and_no_rings(ring_dir)

    slow = ringcast.Pipeline(
        "slowstart",
        [SRC, ringcast.Stage(nothing, name="sink", setup=slow_setup)],
        dir=ring_dir,
        ready_timeout=0.5,
    )
    t0 = time.monotonic()
    with pytest.raises(ringcast.StageFailed, match=r"\['sink'\] not ready within 0.5s"):
        slow.start()
    assert time.monotonic() - t0 < 5
    no_children_and_no_rings(ring_dir)


@pytest.mark.timeout(60)
def test_restart_gives_up_after_max_restarts(ring_dir):
    p = ringcast.Pipeline(
        "giveup",
        [
            ringcast.Stage(functools.partial(source, 1000, 100), name="source", dtype=REC),
            ringcast.Stage(explode_always, dtype=REC, batch=10),
            sink_stage(),
        ],
        dir=ring_dir,
        on_failure="restart",
        max_restarts=2,
    ).start()
    with pytest.raises(ringcast.StageFailed, match="after 2 restarts") as info:
        p.join(timeout=30)
    assert info.value.stage == "explode_always"
    assert len(p.failures) == 3
    assert all("RuntimeError: always broken" in f.traceback for f in p.failures)
    assert os.listdir(ring_dir) == []


@pytest.mark.timeout(60)
def test_stop_ends_every_stage_and_removes_the_rings(ring_dir):
    p = endless_pipeline("stop", ring_dir).start()
    try:
        assert sorted(os.listdir(ring_dir)) == ["stop.endless.ring", "stop.relay.ring"]
        assert p.rings == {"endless": "stop.endless", "relay": "stop.relay"}
        wait_for(lambda: (status(p)["sink"].received or 0) > 10, 10, "messages to flow")
        st = status(p)
        assert all(s.alive and s.state == "running" for s in st.values())
        assert st["relay"].received > 0 and st["relay"].lost == 0
        assert st["relay"].processed <= st["relay"].position
        assert st["endless"].published > 0 and st["relay"].published > 0
        assert [s.role for s in p.stages] == ["source", "stage", "sink"]
        pids = [s.pid for s in p.stages]
        t0 = time.monotonic()
    finally:
        p.stop(timeout=2)
    assert time.monotonic() - t0 < 1.5  # SIGTERM was enough
    assert_nothing_left(p, ring_dir, pids)
    assert {s.state for s in p.stages} == {"stopped"}
    p.join()  # stopped, not failed
    p.stop()  # idempotent


@pytest.mark.timeout(60)
def test_stages_die_with_their_parent(ring_dir):
    script = textwrap.dedent(
        f"""
        import json, sys, time
        import numpy as np
        import ringcast
        REC = np.dtype([("seq", "<u8")])

        def forever():
            i = 0
            while True:
                yield (i,)
                i += 1
                time.sleep(0.001)

        p = ringcast.Pipeline("orphans", [ringcast.Stage(forever, dtype=REC),
                                          ringcast.Stage(lambda m: m, name="mid", dtype=REC),
                                          ringcast.Stage(lambda m: None, name="end")],
                              dir={ring_dir!r}).start()
        print(json.dumps([s.pid for s in p.stages]), flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = json.loads(parent.stdout.readline())
        assert len(pids) == 3 and not any(process_gone(p) for p in pids)
    finally:
        parent.kill()
        parent.wait()
    wait_for(lambda: all(process_gone(p) for p in pids), 3, "orphaned stages to die")
    # Its rings stay behind (nobody could remove them); a new topology of the
    # same name replaces them, as they have no live end.
    assert sorted(os.listdir(ring_dir)) == ["orphans.forever.ring", "orphans.mid.ring"]
    p = ringcast.Pipeline(
        "orphans",
        [
            ringcast.Stage(functools.partial(source, 1000, 100), name="forever", dtype=REC),
            ringcast.Stage(relay, name="mid", dtype=REC),
            sink_stage(batch=None, name="end"),
        ],
        dir=ring_dir,
    )
    with p:
        p.join(timeout=20)
    expect_stream(p.results["end"], 1000)


@pytest.mark.timeout(60)
def test_a_running_topology_of_the_same_name_is_refused(ring_dir):
    with endless_pipeline("twice", ring_dir) as first:
        second = endless_pipeline("twice", ring_dir)
        with pytest.raises(ringcast.RingExists, match=r"twice\.endless"):
            second.start()
        assert first.running and all(s.alive for s in first.stages)
    assert os.listdir(ring_dir) == []


# Refusals before any process runs ------------------------------------------------------------


def no_children_and_no_rings(ring_dir: str) -> None:
    assert mp.active_children() == []
    assert os.listdir(ring_dir) == []


def test_dtype_mismatch_is_refused_at_start_naming_both_stages(ring_dir):
    p = ringcast.Pipeline(
        "schema",
        [
            ringcast.Stage(functools.partial(source, 10), name="feed", dtype=REC),
            ringcast.Stage(relay, name="normalise", dtype=REC, input_dtype=REC),
            ringcast.Stage(nothing, name="risk", input_dtype=OTHER),
        ],
        dir=ring_dir,
    )
    with pytest.raises(ringcast.SchemaMismatch) as info:
        p.start()
    msg = str(info.value)
    assert "'risk'" in msg and "'normalise'" in msg
    assert str(OTHER) in msg and str(REC) in msg
    no_children_and_no_rings(ring_dir)
    assert not p.running

    raw = ringcast.Diamond(
        "schema2",
        source=ringcast.Stage(bytes_source, slot_size=64),
        branches=[ringcast.Stage(nothing, name="b", input_dtype=REC)],
        dir=ring_dir,
    )
    with pytest.raises(ringcast.SchemaMismatch, match="raw bytes"):
        raw.start()
    no_children_and_no_rings(ring_dir)


def test_unavailable_cpu_is_refused_at_start(ring_dir):
    bad = max(os.sched_getaffinity(0)) + 1
    p = ringcast.Pipeline(
        "cpu",
        [
            ringcast.Stage(functools.partial(source, 10), dtype=REC),
            ringcast.Stage(nothing, cpu=bad),
        ],
        dir=ring_dir,
    )
    with pytest.raises(ringcast.CpuUnavailable, match=f"cpu={bad}"):
        p.start()
    no_children_and_no_rings(ring_dir)


def f(msg: Any) -> Any:
    return msg


SRC = ringcast.Stage(functools.partial(source, 10), name="src", dtype=REC)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ringcast.Stage(42), "callable"),
        (lambda: ringcast.Stage("no_such_module_xyz:fn"), "cannot import module"),
        (lambda: ringcast.Stage("os:no_such_function"), "no attribute"),
        (lambda: ringcast.Stage("os.path"), "module:function"),
        (lambda: ringcast.Stage("os:sep"), "not callable"),
        (lambda: ringcast.Stage(lambda m: m), "give name="),
        (lambda: ringcast.Stage(f, name="bad name"), "stage name"),
        (lambda: ringcast.Stage(f, name="x" * 33), "stage name"),
        (lambda: ringcast.Stage(f, dtype=REC, slot_size=8), "not both"),
        (lambda: ringcast.Stage(f, slot_size=0), "slot_size"),
        (lambda: ringcast.Stage(f, dtype=object), "Python objects"),
        (lambda: ringcast.Stage(f, batch=0), "batch"),
        (lambda: ringcast.Stage(f, wait="park"), "WaitStrategy"),
        (lambda: ringcast.Stage(f, cpu=-1), "cpu"),
        (lambda: ringcast.Stage(f, setup="os:nope"), "setup"),
        (lambda: ringcast.Pipeline("p", []), "source and at least one more"),
        (lambda: ringcast.Pipeline("p", [SRC]), "source and at least one more"),
        (lambda: ringcast.Pipeline("p", SRC), "list"),
        (lambda: ringcast.Pipeline("p", [SRC, 3]), "stages\\[1\\]"),
        (lambda: ringcast.Pipeline("p", [f, f]), "publishes nothing"),
        (lambda: ringcast.Pipeline("p", [SRC, f, f]), "two stages are named 'f'"),
        (lambda: ringcast.Pipeline("p", [SRC, nothing, f]), "publishes nothing"),
        (lambda: ringcast.Pipeline("p", [SRC, f], on_failure="ignore"), "on_failure"),
        (lambda: ringcast.Pipeline("p", [SRC, f], capacity=1000), "power of two"),
        (lambda: ringcast.Pipeline("p", [SRC, f], start_method="forkserver"), "start_method"),
        (lambda: ringcast.Pipeline("p", [SRC, f], max_restarts=-1), "max_restarts"),
        (lambda: ringcast.Pipeline("p", [SRC, f], bounded="yes"), "bounded"),
        (lambda: ringcast.Pipeline("p", [SRC, f], ready_timeout=0), "ready_timeout"),
        (lambda: ringcast.Pipeline(".hidden", [SRC, f]), "name"),
        (lambda: ringcast.Pipeline("a/b", [SRC, f]), "name"),
        (
            lambda: ringcast.Pipeline(
                "p", [ringcast.Stage(functools.partial(source, 1), dtype=REC, batch=8), f]
            ),
            "source stage",
        ),
        (lambda: ringcast.Diamond("d", source=SRC, branches=[]), "at least one branch"),
        (lambda: ringcast.Diamond("d", source=[], branches=[f]), "empty"),
        (lambda: ringcast.Diamond("d", source=SRC, branches=[f, f]), "two stages"),
        (lambda: ringcast.Diamond("d", source=SRC, branches=f), "list"),
    ],
)
def test_bad_arguments_are_refused_clearly(make, match):
    with pytest.raises(ringcast.InvalidArgument, match=match):
        make()


def test_misuse_of_the_lifecycle_is_refused(ring_dir):
    p = ringcast.Pipeline("life", [SRC, ringcast.Stage(lambda m: m, name="x")], dir=ring_dir)
    with pytest.raises(ringcast.InvalidArgument, match="not started"):
        p.join()
    spawn = ringcast.Pipeline(
        "spawn", [SRC, ringcast.Stage(lambda m: m, name="x")], dir=ring_dir, start_method="spawn"
    )
    with pytest.raises(ringcast.InvalidArgument, match="spawn"):
        spawn.start()
    no_children_and_no_rings(ring_dir)
    p.start()
    with pytest.raises(ringcast.InvalidArgument, match="already started"):
        p.start()
    p.join(timeout=20)


# Options ------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_spawn_with_module_function_strings_and_wait_strategies(ring_dir):
    p = ringcast.Pipeline(
        "spawned",
        [
            ringcast.Stage("test_topology:spawn_source", dtype=REC),
            ringcast.Stage(
                "test_topology:relay",
                dtype=REC,
                batch=100,
                wait=ringcast.WaitStrategy.adaptive(spin=10, yield_=5),
            ),
            ringcast.Stage(
                "test_topology:check",
                name="sink",
                setup="test_topology:check_setup",
                finish="test_topology:check_result",
                wait=ringcast.WaitStrategy.park(),
            ),
        ],
        dir=ring_dir,
        start_method="spawn",
    )
    with p:
        p.join(timeout=45)
    expect_stream(p.results["sink"], 5000)


@pytest.mark.timeout(60)
def test_raw_bytes_stages_per_message_and_in_batches(ring_dir):
    p = ringcast.Pipeline(
        "raw",
        [
            ringcast.Stage(bytes_source, slot_size=32),
            ringcast.Stage(upper, slot_size=32),
            ringcast.Stage(
                collect, batch=64, setup=collect_setup, finish=collect_result, name="sink"
            ),
        ],
        dir=ring_dir,
        capacity=256,
    )
    with p:
        p.join(timeout=30)
    assert p.results["sink"] == [f"QUOTE-{i}".encode() for i in range(3000)]


@pytest.mark.timeout(60)
def test_fan_out_without_a_gated_stage(ring_dir):
    d = ringcast.Diamond(
        "fan",
        source=ringcast.Stage(functools.partial(source, 30_000, 1000), name="a", dtype=REC),
        branches=[sink_stage(name=n) for n in ("x", "y", "z")],
        dir=ring_dir,
        capacity=1024,
    )
    with d:
        d.join(timeout=30)
    for n in ("x", "y", "z"):
        expect_stream(d.results[n], 30_000)
    assert d.rings == {"a": "fan.a"}


@pytest.mark.timeout(60)
def test_pinned_stage_runs_on_its_cpu(ring_dir):
    cpu = max(os.sched_getaffinity(0))
    p = ringcast.Pipeline(
        "pinned",
        [
            ringcast.Stage(functools.partial(source, 100), name="source", dtype=REC, cpu=cpu),
            ringcast.Stage(nothing, name="sink", cpu=cpu, finish=cpus_result),
        ],
        dir=ring_dir,
    )
    with p:
        p.join(timeout=20)
    assert p.results["sink"] == [cpu]


@pytest.mark.timeout(60)
def test_latency_option_records_every_hop(ring_dir):
    total = 2000
    p = three_stage("lat", ring_dir, total, latency=True)
    with p:
        p.join(timeout=30)
    expect_stream(p.results["sink"], total)
    assert p.latency("source") is None
    for stage in ("relay", "sink"):
        h = p.latency(stage)
        assert h is not None and h.count == total and h.min >= 0
    with pytest.raises(ringcast.InvalidArgument, match="no stage"):
        p.latency("nope")


# The example ------------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_market_diamond_example_runs(ring_dir):
    env = {**os.environ, "RINGCAST_DIR": ring_dir}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "market_diamond.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "risk saw" in out.stdout and "never ahead of both strategies" in out.stdout
    assert os.listdir(ring_dir) == []
