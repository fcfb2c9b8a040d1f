"""Whatever a damaged or hostile ring file holds, every call returns within
its timeout (try_ calls at once), Ctrl-C works, and what cannot have been
written by the protocol is reported as RingCorrupt. Each case runs in a
child process whose exit status is checked."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

import ringcast
from _workers import (
    REC,
    RingMemory,
    blocked_recv,
    complete,
    kill,
    lost,
    make_records,
    run_isolated,
    take_ctrl_c,
    writing,
)

ctx = mp.get_context("spawn")
FAR = 1 << 50  # laps far beyond anything published, yet valid sequences


def outcome(call):
    """(exception name or "ok", seconds taken, result) of `call()`."""
    t0 = time.monotonic()
    try:
        result = call()
        name = "ok"
    except ringcast.RingError as e:
        result, name = str(e), type(e).__name__
    return name, time.monotonic() - t0, result


def every_receive(ring_dir: str, name: str, start: str = "latest", forever: bool = True) -> dict:
    """Tries each way of receiving on a subscriber attached at `start`
    (those without a timeout only if `forever`); returns how each ended and
    how long it took."""
    sub = ringcast.Subscriber.attach(name, dir=ring_dir, start=start)
    ways = {
        "try_recv": lambda: [sub.try_recv() for _ in range(3)],
        "recv(timeout=1)": lambda: sub.recv(timeout=1),
        "recv()": lambda: sub.recv(),
        "next(iter)": lambda: next(iter(sub)),
        "recv_batch(timeout=1)": lambda: sub.recv_batch(16, timeout=1),
        "recv_into(timeout=1)": lambda: sub.recv_into(np.empty(1, REC), timeout=1),
        "recv_async(timeout=1)": lambda: asyncio.run(sub.recv_async(timeout=1)),
    }
    if not forever:
        del ways["recv()"], ways["next(iter)"]
    results = {way: outcome(call)[:2] for way, call in ways.items()}
    results["received"] = sub.received
    results["lost"] = sub.lost
    sub.close()
    return results


@pytest.fixture
def ring(ring_dir):
    pub = ringcast.Publisher.create("hostile", dtype=REC, capacity=8, dir=ring_dir)
    pub.publish_batch(make_records(0, 10))
    memory = RingMemory(pub.path)
    yield pub, memory
    memory.close()
    pub.close()


@pytest.mark.parametrize(
    "forgery",
    [
        "complete-far-lap",  # a complete lap of the slot, far beyond the cursor
        "lost-far-lap",  # a declared-lost lap beyond the cursor
        "lost-next",  # the very message expected, declared lost, yet never published
        "other-slot",  # a message that belongs to another slot
        "writing-far-lap",  # being written with a far lap: unverifiable at first
    ],
)
def test_slot_stamps_from_beyond_the_cursor_are_corruption(ring, ring_dir, forgery):
    _, memory = ring
    for slot in range(memory.capacity):
        lap = FAR * memory.capacity + slot
        memory.stamp(
            slot,
            {
                "complete-far-lap": complete(lap),
                "lost-far-lap": lost(lap),
                "lost-next": lost(10 + (slot - 10) % memory.capacity),
                "other-slot": complete(10 + (slot + 1) % memory.capacity),
                "writing-far-lap": writing(lap),
            }[forgery],
        )
    results = run_isolated(every_receive, ring_dir, "hostile", timeout=30)
    assert results.pop("received") == 0 and results.pop("lost") == 0
    took = {way: f"{ended} {seconds * 1e3:.2f} ms" for way, (ended, seconds) in results.items()}
    print(forgery, took)
    for way, (ended, seconds) in results.items():
        if way == "try_recv":
            # Never blocks: None for an unverifiable write, the error otherwise.
            expected = "ok" if forgery == "writing-far-lap" else "RingCorrupt"
            assert ended == expected and seconds < 0.5, (way, ended, seconds)
        else:
            assert ended == "RingCorrupt" and seconds < 0.9, (way, ended, seconds)


def test_a_run_of_lost_stamps_is_skipped_in_bounded_time(ring, ring_dir):
    """Every slot says its message was declared lost: the reader skips them
    (counted lost, each was published) and then waits as usual."""
    _, memory = ring
    for seq in range(10 - memory.capacity, 10):
        memory.stamp(seq % memory.capacity, lost(seq))
    results = run_isolated(every_receive, ring_dir, "hostile", "oldest", False, timeout=30)
    assert results.pop("received") == 0 and results.pop("lost") == memory.capacity
    assert results["try_recv"][0] == "ok" and results["try_recv"][1] < 0.5
    for way in ("recv(timeout=1)", "recv_batch(timeout=1)", "recv_async(timeout=1)"):
        ended, seconds = results[way]
        if way == "recv_batch(timeout=1)":
            assert ended == "ok" and seconds < 2.0, (way, ended, seconds)  # an empty batch
        else:
            assert ended == "Timeout" and 0.9 < seconds < 2.0, (way, ended, seconds)


def test_ctrl_c_ends_a_receive_that_a_forged_ring_keeps_waiting(ring, ring_dir):
    """Stamps that can only say "not yet" (an earlier, odd lap of another
    slot) keep a reader waiting, as a quiet feed would: Ctrl-C ends it."""
    _, memory = ring
    for slot in range(memory.capacity):
        memory.stamp(slot, writing(3))
    ready = ctx.Event()
    reader = ctx.Process(target=blocked_recv, args=(ring_dir, "hostile", ready))
    reader.start()
    assert ready.wait(30)
    time.sleep(0.3)
    t0 = time.monotonic()
    os.kill(reader.pid, signal.SIGINT)
    reader.join(10)
    assert reader.exitcode == 42, f"exit code {reader.exitcode}: no KeyboardInterrupt"
    assert time.monotonic() - t0 < 2.0


def read_after_forged_cursor(ring_dir: str, name: str, cursor: int) -> dict:
    """Attaches at the oldest message, then the cursor is forged to `cursor`;
    reports how reading and publishing end."""
    pub = ringcast.Publisher.attach(name, dir=ring_dir)
    sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
    memory = RingMemory(pub.path)
    memory.cursor(cursor)
    read = outcome(lambda: sub.recv_batch(64, timeout=1))
    published = outcome(lambda: pub.publish(make_records(0, 1)[0], timeout=1))
    memory.close()
    return {"read": read[:2], "publish": published[:2]}


def test_a_cursor_beyond_any_sequence_is_corruption(ring_dir):
    with ringcast.Publisher.create(
        "cursor", dtype=REC, capacity=8, dir=ring_dir, producers="many"
    ) as pub:
        pub.publish_batch(make_records(0, 3))
        results = run_isolated(read_after_forged_cursor, ring_dir, "cursor", 1 << 63, timeout=30)
    assert results["read"][0] in ("ok", "RingCorrupt"), results  # the 3 records, or the error
    assert results["publish"][0] == "RingCorrupt" and results["publish"][1] < 0.5, results


def test_a_cursor_forged_beyond_any_sequence_under_a_lapped_reader(ring, ring_dir):
    """Attach refuses such a cursor; one forged later is caught at the lap."""
    _, memory = ring
    sub = ringcast.Subscriber.attach("hostile", dir=ring_dir)  # at 10
    memory.stamp(10 % memory.capacity, complete(10 + memory.capacity))  # a real-looking lap
    memory.cursor(1 << 63)
    with pytest.raises(ringcast.RingCorrupt, match="beyond any possible sequence"):
        sub.try_recv()
    assert sub.position == 10 and sub.lost == 0
    sub.close()


def test_a_producer_finding_its_own_slot_forged_gets_ring_corrupt(ring_dir):
    """The slot of the next claim already says its message is complete:
    no producer leaves that there. After the claim deadline the publish
    fails with RingCorrupt instead of waiting for ever."""
    with ringcast.Publisher.create(
        "own", dtype=REC, capacity=8, dir=ring_dir, producers="many", claim_timeout=0.05
    ) as pub:
        pub.publish_batch(make_records(0, 10))
        memory = RingMemory(pub.path)
        memory.stamp(10 % memory.capacity, complete(10))
        t0 = time.monotonic()
        with pytest.raises(ringcast.RingCorrupt, match="no producer leaves"):
            pub.publish(make_records(10, 1)[0], timeout=5)
        assert time.monotonic() - t0 < 1.0
        memory.close()


def mp_cursor_jump(ring_dir: str, name: str, jump: int) -> dict:
    """A multi-producer ring's cursor moved `jump` ahead of what was
    published: the next publish and the next receive return promptly, and
    the reader counts exactly the jumped-over sequences as lost."""
    pub = ringcast.Publisher.attach(name, dir=ring_dir)
    sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
    first = [int(r["seq"]) for r in sub.recv_batch(64, timeout=1)]
    memory = RingMemory(pub.path)
    before = memory.cursor()
    memory.cursor(before + jump)
    memory.close()
    published = outcome(lambda: pub.publish(make_records(99, 1)[0], timeout=5))
    got = outcome(lambda: int(sub.recv(timeout=5)["seq"]))
    return {
        "first": first,
        "publish": published[:2],
        "recv": got,
        "lost": sub.lost,
        "position": sub.position,
        "before": before,
    }


def test_a_multi_producer_cursor_moved_far_ahead_costs_one_claim_timeout(ring_dir):
    with ringcast.Publisher.create(
        "jump", dtype=REC, capacity=16, dir=ring_dir, producers="many", claim_timeout=0.1
    ) as pub:
        pub.publish_batch(make_records(0, 10))
        jump = 10**12
        r = run_isolated(mp_cursor_jump, ring_dir, "jump", jump, timeout=60)
    assert r["first"] == list(range(10))
    assert r["publish"][0] == "ok" and r["publish"][1] < 1.0, r
    print(f"cursor jump: publish {r['publish'][1]:.3f} s, next recv {r['recv'][1]:.3f} s")
    ended, seconds, seq = r["recv"]
    assert ended == "ok" and seq == 99 and seconds < 1.0, r
    # Exact: every sequence the cursor jumped over is counted lost, nothing else.
    assert r["lost"] == jump and r["position"] == r["before"] + jump + 1, r


def stall_behind_a_stopped_producer(ring_dir: str, name: str, ready, stopped_pid) -> dict:
    """Publishes into the slot whose previous lap a stopped (live) producer
    holds: each kind of call ends as it must."""
    take_ctrl_c()
    pub = ringcast.Publisher.attach(name, dir=ring_dir)
    results = {}
    # The stopped producer holds message 0's slot: every message of that
    # slot (capacity 4: 4, 8, 12) waits for it, after 3 that do not.
    pub.publish_batch(make_records(1, 3))
    results["timeout=0.3"] = outcome(lambda: pub.publish(make_records(4, 1)[0], timeout=0.3))[:2]
    pub.publish_batch(make_records(5, 3))
    results["try_publish"] = outcome(lambda: pub.try_publish(make_records(8, 1)[0]))[:2]
    pub.publish_batch(make_records(9, 3))
    ready.set()
    t0 = time.monotonic()
    try:
        pub.publish(make_records(12, 1)[0])  # no timeout: until Ctrl-C
        results["forever"] = ("returned", time.monotonic() - t0)
    except KeyboardInterrupt:
        results["forever"] = ("KeyboardInterrupt", time.monotonic() - t0)
    return results


def stop_after_claim(ring_dir: str, name: str, claimed) -> None:
    """Claims message 0 of a multi-producer ring and stops (SIGSTOP) inside
    its slot: a live producer that never commits."""
    pub = ringcast.Publisher.attach(name, dir=ring_dir)
    pub._stop_after_claim(0)
    claimed.set()
    pub.publish(make_records(0, 1)[0])


def test_a_stalled_live_producer_holds_publishes_only_as_long_as_asked(ring_dir):
    with ringcast.Publisher.create(
        "stall", dtype=REC, capacity=4, dir=ring_dir, producers="many", claim_timeout=0.1
    ):
        claimed = ctx.Event()
        stopped = ctx.Process(target=stop_after_claim, args=(ring_dir, "stall", claimed))
        stopped.start()
        assert claimed.wait(30)
        deadline = time.monotonic() + 10
        while os.waitpid(stopped.pid, os.WNOHANG | os.WUNTRACED) == (0, 0):
            assert time.monotonic() < deadline, "the producer did not stop"
            time.sleep(0.01)
        ready = ctx.Event()
        receiver, sender = ctx.Pipe(duplex=False)
        waiter = ctx.Process(
            target=_report,
            args=(sender, stall_behind_a_stopped_producer, ring_dir, "stall", ready, stopped.pid),
        )
        waiter.start()
        assert ready.wait(30)
        time.sleep(0.3)
        os.kill(waiter.pid, signal.SIGINT)
        waiter.join(10)
        kill(stopped)
        assert waiter.exitcode == 0, waiter.exitcode
        results = receiver.recv()
    ended, seconds = results["timeout=0.3"]
    assert ended == "Timeout" and 0.25 < seconds < 1.5, results
    ended, seconds = results["try_publish"]
    assert ended == "Timeout" and seconds < 1.5, results
    ended, seconds = results["forever"]
    assert ended == "KeyboardInterrupt" and seconds < 3.0, results


def _report(conn, fn, *args) -> None:
    conn.send(fn(*args))
    conn.close()


def read_under_scribbling(ring_dir: str, name: str, seed: int, rounds: int) -> dict:
    """A subscriber reads with timeouts while random words of the ring's
    stamps, cursor, lengths and records are overwritten between calls. Every
    call must end within its timeout; the errors must be ringcast's."""
    rng = np.random.default_rng(seed)
    pub = ringcast.Publisher.attach(name, dir=ring_dir)
    memory = RingMemory(pub.path)
    ends: dict[str, int] = {}
    slowest = 0.0
    for _ in range(rounds):
        try:
            sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
        except ringcast.RingError as e:
            ends[type(e).__name__] = ends.get(type(e).__name__, 0) + 1
            memory.cursor(int(rng.integers(0, 1 << 20)))
            continue
        for _ in range(4):
            target = rng.integers(0, 4)
            if target == 0:
                memory.cursor(int(rng.integers(0, 1 << 62)))
            elif target == 1:
                word = rng.integers(0, 1 << 63, dtype=np.uint64)
                memory.stamp(int(rng.integers(0, memory.capacity)), int(word))
            elif target == 2:
                slot = int(rng.integers(0, memory.capacity))
                memory.stamp(slot, complete(int(rng.integers(0, 1 << 40))))
            else:
                length_word = memory.head(int(rng.integers(0, memory.capacity))) + 8
                memory.u64(length_word, int(rng.integers(0, 1 << 16)))
            for call in (
                sub.try_recv,
                lambda s=sub: s.recv(timeout=0.02),
                lambda s=sub: s.recv_batch(8, timeout=0.02),
            ):
                ended, seconds, _ = outcome(call)
                slowest = max(slowest, seconds)
                ends[ended] = ends.get(ended, 0) + 1
            try:
                pub.publish_batch(make_records(0, 3))
            except ringcast.RingError as e:
                ends["publish " + type(e).__name__] = 1
        sub.close()
    memory.close()
    return {"ends": ends, "slowest": slowest}


@pytest.mark.parametrize(
    ("producers", "heads_apart"), [("one", False), ("many", False), ("one", True), ("many", True)]
)
def test_random_scribbling_never_freezes_or_crashes(ring_dir, producers, heads_apart):
    with ringcast.Publisher.create(
        "scribble",
        dtype=REC,
        capacity=16,
        dir=ring_dir,
        producers=producers,
        claim_timeout=0.05,
        heads_apart=heads_apart,
    ) as pub:
        pub.publish_batch(make_records(0, 20))
    r = run_isolated(read_under_scribbling, ring_dir, "scribble", 7, 30, timeout=120)
    # 0.02 s timeouts; a multi-producer claim deadline of 0.05 s on top, and noise.
    assert r["slowest"] < 1.0, r
    assert set(r["ends"]) <= {
        "ok",
        "Timeout",
        "RingCorrupt",
        "publish RingCorrupt",
        "publish Timeout",
    }, r
