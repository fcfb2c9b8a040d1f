"""Wait strategies across processes: wake-ups, idle CPU, interrupts."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import struct
import threading
import time

import numpy as np
import pytest

import ringcast
from _workers import REC, StreamCheck, blocked_recv_timed, publish_bursts
from ringcast import WaitStrategy

ctx = mp.get_context("spawn")
STRATEGIES = {
    "busy_spin": WaitStrategy.busy_spin(),
    "yielding": WaitStrategy.yielding(),
    "park": WaitStrategy.park(),
    "adaptive": WaitStrategy.adaptive(spin=100, yield_=10),
}
WAITERS_OFFSET = 196  # Header.notify.waiters (see docs/design.md)


def test_strategy_values():
    assert (
        repr(WaitStrategy.adaptive(spin=5, yield_=7)) == "WaitStrategy.adaptive(spin=5, yield_=7)"
    )
    assert WaitStrategy.park() == WaitStrategy.park() != WaitStrategy.busy_spin()
    assert [s.kind for s in STRATEGIES.values()] == list(STRATEGIES)
    with pytest.raises(ringcast.InvalidArgument, match="spin"):
        WaitStrategy.adaptive(spin=-1)
    with pytest.raises(ringcast.InvalidArgument, match="WaitStrategy"):
        ringcast.Subscriber.attach("x", wait="park")


def test_wait_strategy_is_settable(ring_dir):
    with ringcast.Publisher.create("w", slot_size=8, capacity=8, dir=ring_dir):
        sub = ringcast.Subscriber.attach("w", dir=ring_dir)
        assert sub.wait.kind == "adaptive"
        sub.wait = WaitStrategy.park()
        assert sub.wait == WaitStrategy.park()


@pytest.mark.parametrize("kind", ["park", "adaptive"])
def test_parked_subscriber_wakes_for_every_burst(ring_dir, kind):
    total = 100_000
    ready, go = ctx.Event(), ctx.Event()
    pub = ctx.Process(target=publish_bursts, args=(ring_dir, "bursts", total, ready, go))
    pub.start()
    assert ready.wait(30)
    sub = ringcast.Subscriber.attach("bursts", dir=ring_dir, start="oldest", wait=STRATEGIES[kind])
    go.set()
    check = StreamCheck()
    out = np.empty(256, dtype=REC)
    while True:
        try:
            n = sub.recv_batch_into(out, timeout=30)
        except ringcast.RingClosed:
            break
        check.add(out[:n])
    pub.join(30)
    assert pub.exitcode == 0
    assert (check.received, check.bad_checksums, check.out_of_order, check.gaps) == (total, 0, 0, 0)
    assert sub.received == total and sub.lost == 0


def cpu_share_while_blocked(sub: ringcast.Subscriber, seconds: float) -> float:
    t_cpu, t_wall = time.thread_time(), time.monotonic()
    with pytest.raises(ringcast.Timeout):
        sub.recv(timeout=seconds)
    return (time.thread_time() - t_cpu) / (time.monotonic() - t_wall)


@pytest.mark.parametrize("kind", ["park", "adaptive"])
def test_idle_parked_subscriber_uses_almost_no_cpu(ring_dir, kind):
    with ringcast.Publisher.create("idle", slot_size=8, capacity=8, dir=ring_dir):
        sub = ringcast.Subscriber.attach("idle", dir=ring_dir, wait=STRATEGIES[kind])
        share = cpu_share_while_blocked(sub, 2.0)
    assert share < 0.05, f"{kind} used {share:.1%} of a core while idle"


def test_idle_busy_spin_subscriber_burns_a_core(ring_dir):
    with ringcast.Publisher.create("spin", slot_size=8, capacity=8, dir=ring_dir):
        sub = ringcast.Subscriber.attach("spin", dir=ring_dir, wait=WaitStrategy.busy_spin())
        share = cpu_share_while_blocked(sub, 1.0)
    # On a loaded host the spinning thread may be preempted: demand most of a core.
    assert share > 0.6, f"busy_spin used only {share:.1%} of a core"


def read_waiters(path: str) -> int:
    with open(path, "rb") as f:
        f.seek(WAITERS_OFFSET)
        return struct.unpack("<I", f.read(4))[0]


def test_waiter_count_gates_the_wake_syscall(ring_dir):
    """The publisher makes the wake syscall only while the ring's waiter count
    is non-zero: a parked subscriber raises it, and it falls back to zero."""
    pub = ringcast.Publisher.create("gate", slot_size=8, capacity=8, dir=ring_dir)
    sub = ringcast.Subscriber.attach("gate", dir=ring_dir, wait=WaitStrategy.park())
    path = str(pub.path)
    assert read_waiters(path) == 0
    got = []
    t = threading.Thread(target=lambda: got.append(sub.recv(timeout=5)))
    t.start()
    deadline = time.monotonic() + 5
    while read_waiters(path) == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert read_waiters(path) == 1
    pub.publish(b"wake")
    t.join(5)
    assert got == [b"wake"]
    assert read_waiters(path) == 0
    pub.close()


def test_close_wakes_parked_subscribers(ring_dir):
    pub = ringcast.Publisher.create("closing", slot_size=8, capacity=8, dir=ring_dir)
    sub = ringcast.Subscriber.attach("closing", dir=ring_dir, wait=WaitStrategy.park())
    threading.Timer(0.1, pub.close).start()
    t0 = time.monotonic()
    with pytest.raises(ringcast.RingClosed):
        sub.recv(timeout=5)
    assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("kind", list(STRATEGIES))
def test_ctrl_c_ends_a_blocked_recv_within_100ms(ring_dir, kind):
    pub = ringcast.Publisher.create("intr", slot_size=8, capacity=8, dir=ring_dir)
    ready = ctx.Event()
    receiver, sender = ctx.Pipe(duplex=False)
    p = ctx.Process(target=blocked_recv_timed, args=(ring_dir, "intr", kind, ready, sender))
    p.start()
    assert ready.wait(30)
    time.sleep(0.3)  # let it reach the blocking wait (and park)
    sent = time.monotonic()
    os.kill(p.pid, signal.SIGINT)
    assert receiver.poll(5), "no KeyboardInterrupt reported"
    caught = receiver.recv()
    p.join(5)
    pub.close()
    assert p.exitcode == 42, "recv() did not raise KeyboardInterrupt"
    assert caught - sent < 0.1, f"KeyboardInterrupt took {caught - sent:.3f}s with {kind}"


def test_wait_strategy_counts_and_pickling():
    import pickle

    adaptive = ringcast.WaitStrategy.adaptive(spin=5, yield_=7)
    assert (adaptive.spin, adaptive.yield_) == (5, 7)
    park = ringcast.WaitStrategy.park()
    assert (park.spin, park.yield_) == (None, None)
    for w in (adaptive, park, ringcast.WaitStrategy.busy_spin(), ringcast.WaitStrategy.yielding()):
        assert pickle.loads(pickle.dumps(w)) == w
