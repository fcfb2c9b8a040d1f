"""A ring file truncated while mapped, and publishers and subscribers
inherited through fork(): the next call fails with a clear error, close()
and exit stay clean, and the parent's ring is never disturbed. Each case
runs in a child process whose exit status is checked (a SIGBUS shows as a
negative exit code)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import pickle
import threading
import time

import numpy as np
import pytest

import ringcast
from _workers import REC, make_records, run_isolated

ctx = mp.get_context("spawn")


def ended(call) -> tuple[str, float]:
    t0 = time.monotonic()
    try:
        call()
        name = "ok"
    except ringcast.RingError as e:
        name = type(e).__name__
    return name, time.monotonic() - t0


def truncate_under(ring_dir: str, name: str, end: str, size: str, then: str, mode: str) -> dict:
    """Opens `end` ("subscriber" or "publisher") of ring `name`, truncates
    the ring file (to nothing, or to its header), then does `then`: every
    call, only close(), or nothing (exit with the end open)."""
    if end == "publisher":
        obj = ringcast.Publisher.attach(name, dir=ring_dir)
    else:
        obj = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
    path = obj.path
    header_len = int.from_bytes(open(path, "rb").read(16)[12:16], "little")
    os.truncate(path, 0 if size == "empty" else header_len)
    results = {}
    if then == "calls":
        if end == "publisher":
            rec = make_records(0, 1)[0]
            results["publish"] = ended(lambda: obj.publish(rec, timeout=1))
            results["publish_batch"] = ended(lambda: obj.publish_batch(make_records(0, 4)))
            results["try_publish"] = ended(lambda: obj.try_publish(rec))
            results["sequence"] = ended(lambda: obj.sequence)
        else:
            results["try_recv"] = ended(obj.try_recv)
            results["recv(timeout=1)"] = ended(lambda: obj.recv(timeout=1))
            results["recv_batch_into"] = ended(lambda: obj.recv_batch_into(np.empty(4, REC)))
            results["recv_async"] = ended(lambda: asyncio.run(obj.recv_async(timeout=1)))
            results["lag"] = ended(lambda: obj.lag)
    if then != "exit":
        obj.close()
    return results


@pytest.mark.parametrize("mode", ["lossy", "bounded", "many"])
@pytest.mark.parametrize("end", ["subscriber", "publisher"])
@pytest.mark.parametrize("size", ["empty", "header only"])
def test_truncation_while_mapped_is_ring_corrupt_not_sigbus(ring_dir, mode, end, size):
    opts = {"bounded": mode == "bounded", "producers": "many" if mode == "many" else "one"}
    pub = ringcast.Publisher.create("trunc", dtype=REC, capacity=64, dir=ring_dir, **opts)
    pub.publish_batch(make_records(0, 10))
    if end == "publisher" and mode != "many":
        pub.close()  # the child takes the single-producer ring over
    results = run_isolated(truncate_under, ring_dir, "trunc", end, size, "calls", mode)
    pub.close()
    assert results, "no call was made"
    for call, (name, seconds) in results.items():
        assert name == "RingCorrupt", (call, name)
        assert seconds < 1.5, (call, seconds)


@pytest.mark.parametrize("then", ["close", "exit"])
@pytest.mark.parametrize("end", ["subscriber", "publisher"])
def test_close_and_exit_after_truncation_are_clean(ring_dir, end, then):
    """close() (or interpreter exit with the end still open) is the first
    touch of the lost memory."""
    pub = ringcast.Publisher.create("gone", dtype=REC, capacity=64, dir=ring_dir)
    pub.publish_batch(make_records(0, 10))
    if end == "publisher":
        pub.close()
    run_isolated(truncate_under, ring_dir, "gone", end, "empty", then, "lossy")
    pub.close()


def park_then_report(ring_dir: str, name: str, how: str, conn) -> None:
    sub = ringcast.Subscriber.attach(name, dir=ring_dir, wait=ringcast.WaitStrategy.park())
    conn.send("waiting")
    t0 = time.monotonic()
    try:
        if how == "async":
            asyncio.run(sub.recv_async())
        else:
            sub.recv()
        conn.send(("returned", time.monotonic() - t0))
    except ringcast.RingError as e:
        conn.send((type(e).__name__, time.monotonic() - t0))
    sub.close()


@pytest.mark.parametrize("how", ["recv", "async"])
def test_a_waiting_subscriber_learns_of_the_truncation(ring_dir, how):
    with ringcast.Publisher.create("parked", dtype=REC, capacity=64, dir=ring_dir) as pub:
        here, there = ctx.Pipe()
        child = ctx.Process(target=park_then_report, args=(ring_dir, "parked", how, there))
        child.start()
        assert here.recv() == "waiting"
        time.sleep(0.3)
        t0 = time.monotonic()
        os.truncate(pub.path, 0)
        assert here.poll(10), "the waiting subscriber never returned"
        name, _ = here.recv()
        noticed = time.monotonic() - t0
        child.join(10)
        assert child.exitcode == 0, child.exitcode
        assert name == "RingCorrupt" and noticed < 2.0, (name, noticed)
        print(f"a waiting {how} learned of the truncation in {noticed:.3f} s")
        # This process's publisher finds out on its next publish.
        with pytest.raises(ringcast.RingCorrupt, match="shrank"):
            pub.publish(make_records(0, 1)[0])


# --- fork() ---------------------------------------------------------------


def use_inherited(kind: str, pub, sub, results) -> None:
    """Runs in a forked child: every operation on the inherited ends fails
    with UsedAfterFork; a subscriber attached here works."""
    out = {}
    if pub is not None:
        rec = make_records(1000, 1)[0]
        out["publish"] = ended(lambda: pub.publish(rec))
        out["publish_batch"] = ended(lambda: pub.publish_batch(make_records(1000, 4)))
        out["sequence"] = ended(lambda: pub.sequence)
    if sub is not None:
        out["try_recv"] = ended(sub.try_recv)
        out["recv"] = ended(lambda: sub.recv(timeout=1))
        out["recv_batch"] = ended(lambda: sub.recv_batch(64, timeout=1))
        out["position"] = ended(lambda: sub.position)
    own = ringcast.Subscriber.attach(pub.name if pub else sub.name, dir=os.environ["RING_DIR"])
    out["own subscriber"] = ("ok" if own.position >= 0 else "?", 0.0)
    own.close()
    for obj in (pub, sub):
        if obj is not None:
            obj.close()
    results.put(out)
    results.close()
    results.join_thread()


@pytest.mark.parametrize("how", ["multiprocessing", "os.fork"])
@pytest.mark.parametrize("bounded", [False, True])
def test_inherited_ends_refuse_everything_in_a_forked_child(ring_dir, monkeypatch, how, bounded):
    monkeypatch.setenv("RING_DIR", ring_dir)
    fork = mp.get_context("fork")
    pub = ringcast.Publisher.create(
        "forked", dtype=REC, capacity=1024, dir=ring_dir, bounded=bounded
    )
    sub = ringcast.Subscriber.attach("forked", dir=ring_dir, start="oldest")
    pub.publish_batch(make_records(0, 100))
    results = fork.Queue()
    if how == "os.fork":
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                use_inherited("fork", pub, sub, results)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    else:
        child = fork.Process(target=use_inherited, args=("mp", pub, sub, results))
        child.start()
        child.join(30)
        assert child.exitcode == 0, child.exitcode
    out = results.get(timeout=10)
    for op, (name, _) in out.items():
        assert name == ("ok" if op == "own subscriber" else "UsedAfterFork"), (op, name)
    # The parent's ends are untouched: nothing published by the child, the
    # subscriber's record and position its own, every message there.
    assert pub.sequence == 100 and sub.position == 0 and sub.lost == 0
    pub.publish_batch(make_records(100, 100))
    got = sub.recv_batch(1000, timeout=1)
    assert list(got["seq"]) == list(range(200)) and sub.lost == 0
    sub.close()
    pub.close()


def test_the_error_says_what_to_do(ring_dir):
    pub = ringcast.Publisher.create("told", slot_size=8, capacity=8, dir=ring_dir)
    pid = os.fork()
    if pid == 0:
        try:
            pub.publish(b"x")
        except ringcast.UsedAfterFork as e:
            text = str(e)
            ok = "fork()" in text and "spawn" in text and str(os.getppid()) in text
            os._exit(0 if ok else 3)
        os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    pub.close()


def receive_end(end) -> None:
    pass


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_ends_cannot_be_sent_to_another_process(ring_dir, method):
    """Sending a publisher or subscriber to a child (spawn, forkserver:
    pickled) is refused at once, with what to do instead."""
    with ringcast.Publisher.create("sent", slot_size=8, capacity=8, dir=ring_dir) as pub:
        sub = ringcast.Subscriber.attach("sent", dir=ring_dir)
        for end in (pub, sub):
            with pytest.raises(TypeError, match="attach"):
                pickle.dumps(end)
            p = mp.get_context(method).Process(target=receive_end, args=(end,))
            with pytest.raises(TypeError, match="by name"):
                p.start()
        sub.close()


def test_a_thread_started_before_fork_is_not_confused(ring_dir):
    """The parent keeps publishing from a thread while children fork off."""
    with ringcast.Publisher.create("threads", dtype=REC, capacity=1 << 12, dir=ring_dir) as pub:
        sub = ringcast.Subscriber.attach("threads", dir=ring_dir, start="oldest")
        stop = threading.Event()
        sent = [0]

        def publish():
            while not stop.is_set() and sent[0] < 2000:
                pub.publish(make_records(sent[0], 1)[0])
                sent[0] += 1

        t = threading.Thread(target=publish)
        t.start()
        for _ in range(5):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        stop.set()
        t.join()
        got = sub.recv_batch(4096, timeout=1)
        assert list(got["seq"]) == list(range(sent[0])) and sub.lost == 0
        sub.close()
