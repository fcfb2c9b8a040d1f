"""ringcast vs its peers from Python, between two processes, in one run.

    python benches/py_peers.py [--messages N] [--quick] [--json] [--peers a,b]

Every measurement runs between two fresh processes, A (pinned to the first
CPU) and B (pinned to the second), each using the transport's own Python API
with 64-byte messages; this process only starts them, collects their results
and kills them at a deadline, so a transport that hangs (e.g. an iceoryx2
publisher waiting forever on a dead subscriber, with the GIL held) costs that
one measurement, never the run. Measured, for ringcast and its peers
(iceoryx2, pyzmq over ipc://, faster-fifo, multiprocessing Pipe and Queue):

- round trip: A sends, B echoes, A receives; p50/p99/p99.9 in µs over N
  round trips after a warm-up, timed in A with ``time.perf_counter_ns``;
- one-way throughput of single messages: messages/s A sent and B delivered
  (for lossy transports also how many were lost), median of 3 trials, each
  at most 50 x N messages or 1 s of sending (the cap keeps slow peers from
  stretching the run; a default run takes about a minute);
- the batch paths (ringcast ``publish_batch``/``recv_batch_into`` of record
  arrays and 256 KiB raw messages, iceoryx2 slices, faster-fifo
  ``put_many``/``get_many``) in records/s;
- ratios of ringcast to each peer, from the numbers of this same run.

A peer that cannot be imported or fails is reported as "not measured" with
the reason. Rings, sockets and iceoryx2's files live in a temporary directory
(under /dev/shm when it exists), removed at the end; what a SIGKILLed run
left there is removed by the next one. On a 2-CPU host anything else running
skews every figure, so the CPU time other processes took during the run is
measured (from /proc/stat, minus what A, B and this process used) and shown.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import glob
import importlib
import importlib.metadata
import json
import multiprocessing.connection
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from _pybench import (
    DTYPE,
    Child,
    latency_stats,
    mp_context,
    now_ns,
    records,
    time_until_closed,
    two_cpus,
)

import ringcast

MSG_BYTES = DTYPE.itemsize  # 64
RT_CAPACITY = 1 << 10  # ringcast round-trip rings: 64 KiB, lapped during the warm-up
TP_CAPACITY = 1 << 16  # ringcast throughput rings: 4 MiB
BATCH = 4096  # records per batch call on every batch path
BLOB_CAPACITY = 16  # ringcast raw ring of 256 KiB messages: 4 MiB
CHUNK = 1024  # single-message senders look at the clock once per CHUNK messages
IOX_TP_BUFFER = 4096  # iceoryx2 subscriber buffer (samples) for one-way runs
IOX_BATCH_BUFFER = 16  # iceoryx2 subscriber buffer (256 KiB slices) for the batch run
FF_QUEUE_BYTES = 1 << 22  # faster-fifo shared buffer: 4 MiB, as ringcast's throughput ring
MPQ_MAXSIZE = TP_CAPACITY  # multiprocessing.Queue bound (messages) for one-way runs
BLOCK_FOREVER = 1e6  # seconds: "no timeout" for APIs that insist on one

# peer -> (module to import, distribution name for the version)
PEERS = {
    "ringcast": ("ringcast", "ringcast"),
    "iceoryx2": ("iceoryx2", "iceoryx2"),
    "zmq": ("zmq", "pyzmq"),
    "faster_fifo": ("faster_fifo", "faster-fifo"),
    "mp_pipe": ("multiprocessing", None),
    "mp_queue": ("multiprocessing", None),
}


@dataclass(frozen=True)
class Env:
    """Where the transports of one run keep their files (picklable, for the children)."""

    tmp: str
    iox_prefix: str


class Quote(ctypes.Structure):
    """iceoryx2's payload type: the 64-byte record of ``DTYPE`` as a ctypes struct."""

    _fields_ = (
        ("ts_ns", ctypes.c_int64),
        ("seq", ctypes.c_uint64),
        ("bid", ctypes.c_double),
        ("ask", ctypes.c_double),
        ("bid_qty", ctypes.c_uint32),
        ("ask_qty", ctypes.c_uint32),
        ("symbol", ctypes.c_char * 8),
        ("venue", ctypes.c_char * 8),
        ("flags", ctypes.c_uint64),
    )

    @staticmethod
    def type_name() -> str:
        return "ringcast_bench::Quote"


assert ctypes.sizeof(Quote) == MSG_BYTES


def one_message() -> bytes:
    """The 64 bytes every transport carries (a ``DTYPE`` record)."""
    return records(1).tobytes()


def chunks(total: int) -> int:
    return max(1, total // CHUNK)


# ------------------------------------------------------- child helpers ----
# A and B of each measurement are functions run in a child by
# _pybench.Child: target(conn, sync, *args). `sync` is a pipe between A and
# B for the set-up hand-shake and the end of a run; the returned dict goes to
# the parent over `conn`.


def iox_node(env: Env) -> Any:
    """An iceoryx2 node whose files live in this run's temporary directory, and
    that installs no signal handlers (so SIGTERM still ends the process)."""
    import iceoryx2 as iox2

    iox2.set_log_level(iox2.LogLevel.Error)
    cfg = iox2.config.default()
    cfg.global_cfg.root_path = iox2.Path.new(os.path.join(env.tmp, "iceoryx2") + "/")
    cfg.global_cfg.prefix = iox2.FileName.new(env.iox_prefix)
    return (
        iox2.NodeBuilder.new()
        .config(cfg)
        .signal_handling_mode(iox2.SignalHandlingMode.Disabled)
        .create(iox2.ServiceType.Ipc)
    )


def iox_service(node: Any, name: str, payload: Any) -> Any:
    import iceoryx2 as iox2

    return node.service_builder(iox2.ServiceName.new(name)).publish_subscribe(payload)


def timed_rounds(one_round: Callable[[int], int], n: int, warmup: int, cap_s: float) -> list[int]:
    """Runs ``one_round(i)`` (which returns its own duration in ns) warmup + n
    times, stopping early once ``cap_s`` seconds of measured rounds passed."""
    samples: list[int] = []
    for i in range(warmup):
        one_round(i)
    deadline = now_ns() + int(cap_s * 1e9)
    for i in range(warmup, warmup + n):
        samples.append(one_round(i))
        if not i & 63 and now_ns() > deadline:
            break
    return samples


def byte_round_trips(
    send: Callable[[Any], Any], recv: Callable[[], Any], n: int, warmup: int, cap_s: float
) -> dict:
    """A's side of a round trip over a message-passing API: ``send`` one
    64-byte message, ``recv`` the echo; then sends the end marker
    (``b""``). The latency statistics, no loss."""
    msg = one_message()

    def one(i: int) -> int:
        t0 = now_ns()
        send(msg)
        recv()
        return now_ns() - t0

    samples = timed_rounds(one, n, warmup, cap_s)
    send(b"")
    out = latency_stats(samples)
    out["lost"] = 0
    return out


# ------------------------------------------------------ round trip: A/B ----


def rt_ringcast_a(
    conn: Connection,
    sync: Connection,
    env: Env,
    tag: str,
    bounded: bool,
    n: int,
    w: int,
    cap: float,
) -> dict:
    ping = ringcast.Publisher.create(
        f"{tag}-ping", dtype=DTYPE, capacity=RT_CAPACITY, dir=env.tmp, bounded=bounded
    )
    try:
        sync.send("created")
        sync.recv()
        pong = ringcast.Subscriber.attach(f"{tag}-pong", dir=env.tmp, start="oldest", prefault=True)
        rec, back = records(1), np.empty(1, dtype=DTYPE)
        publish, recv_into = ping.publish, pong.recv_into
        samples: list[int] = []
        deadline = None
        for i in range(w + n):
            rec["seq"] = i
            t0 = now_ns()
            publish(rec)
            recv_into(back)
            t1 = now_ns()
            if back["seq"] != i:
                raise RuntimeError(f"round trip {i} came back as {back['seq']}")
            if i >= w:
                samples.append(t1 - t0)
                if deadline is None:
                    deadline = t1 + int(cap * 1e9)
                elif not i & 63 and t1 > deadline:
                    break
        out = latency_stats(samples)
        out["lost"] = pong.lost
        pong.close()
        return out
    finally:
        ping.unlink()
        ping.close()


def rt_ringcast_b(conn: Connection, sync: Connection, env: Env, tag: str, bounded: bool) -> dict:
    sync.recv()
    sub = ringcast.Subscriber.attach(f"{tag}-ping", dir=env.tmp, start="oldest", prefault=True)
    pub = ringcast.Publisher.create(
        f"{tag}-pong", dtype=DTYPE, capacity=RT_CAPACITY, dir=env.tmp, bounded=bounded
    )
    sync.send("ready")
    buf = np.empty(1, dtype=DTYPE)
    recv_into, publish = sub.recv_into, pub.publish
    try:
        while True:
            recv_into(buf)
            publish(buf)
    except ringcast.RingClosed:
        pass
    finally:
        pub.unlink()
        pub.close()
    return {"lost_b": sub.lost}


def rt_iceoryx2_a(
    conn: Connection, sync: Connection, env: Env, tag: str, n: int, warmup: int, cap: float
) -> dict:
    node = iox_node(env)
    pub = iox_service(node, f"{tag}/ping", Quote).create().publisher_builder().create()
    sub = iox_service(node, f"{tag}/pong", Quote).create().subscriber_builder().create()
    sync.send("created")
    sync.recv()
    pub.update_connections()
    msg = Quote.from_buffer_copy(one_message())
    addr, seq_of = ctypes.addressof(msg), ctypes.c_uint64.from_address
    loan, receive, memmove = pub.loan_uninit, sub.receive, ctypes.memmove
    samples: list[int] = []
    deadline = None
    for i in range(warmup + n):
        msg.seq = i
        t0 = now_ns()
        sample = loan()
        memmove(sample.payload_ptr, addr, MSG_BYTES)
        sample.assume_init().send()
        back = receive()
        while back is None:
            back = receive()
        t1 = now_ns()
        got = seq_of(back.payload_ptr + 8).value
        del back  # hands the sample back to the publisher's pool
        if got != i:
            raise RuntimeError(f"round trip {i} came back as {got}")
        if i >= warmup:
            samples.append(t1 - t0)
            if deadline is None:
                deadline = t1 + int(cap * 1e9)
            elif not i & 63 and t1 > deadline:
                break
    sync.send("stop")
    out = latency_stats(samples)
    out["lost"] = 0
    return out


def rt_iceoryx2_b(conn: Connection, sync: Connection, env: Env, tag: str) -> dict:
    sync.recv()  # A created the services
    node = iox_node(env)
    sub = iox_service(node, f"{tag}/ping", Quote).open().subscriber_builder().create()
    pub = iox_service(node, f"{tag}/pong", Quote).open().publisher_builder().create()
    pub.update_connections()
    sync.send("ready")
    receive, loan, memmove, poll = sub.receive, pub.loan_uninit, ctypes.memmove, sync.poll
    idle = 0
    while True:
        sample = receive()
        if sample is None:
            # No blocking receive in iceoryx2's Python API: poll. The stop
            # message is looked for rarely, so it costs the echo ~nothing.
            idle += 1
            if not idle & 4095 and poll():
                break
            continue
        out = loan()
        memmove(out.payload_ptr, sample.payload_ptr, MSG_BYTES)
        out.assume_init().send()
    return {}


def rt_zmq_a(
    conn: Connection, sync: Connection, env: Env, addr: str, n: int, warmup: int, cap: float
) -> dict:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.linger = 0
    try:
        sock.bind(addr)
        sync.send("bound")
        sync.recv()
        return byte_round_trips(sock.send, sock.recv, n, warmup, cap)
    finally:
        sock.close()
        ctx.term()


def rt_zmq_b(conn: Connection, sync: Connection, env: Env, addr: str) -> dict:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.linger = 0
    try:
        sync.recv()
        sock.connect(addr)
        sync.send("ready")
        send, recv = sock.send, sock.recv
        while msg := recv():
            send(msg)
    finally:
        sock.close()
        ctx.term()
    return {}


def rt_queues_a(
    conn: Connection, sync: Connection, env: Env, q_out: Any, q_in: Any, n: int, w: int, cap: float
) -> dict:
    """A of the round trip over two queues (faster-fifo or multiprocessing):
    both have put(obj) and get(block, timeout)."""
    return byte_round_trips(q_out.put, functools.partial(q_in.get, True, BLOCK_FOREVER), n, w, cap)


def rt_queues_b(conn: Connection, sync: Connection, env: Env, q_in: Any, q_out: Any) -> dict:
    put, get = q_out.put, q_in.get
    while msg := get(True, BLOCK_FOREVER):
        put(msg)
    return {}


def rt_pipe_a(
    conn: Connection, sync: Connection, env: Env, end: Connection, n: int, w: int, cap: float
) -> dict:
    return byte_round_trips(end.send_bytes, end.recv_bytes, n, w, cap)


def rt_pipe_b(conn: Connection, sync: Connection, env: Env, end: Connection) -> dict:
    send_bytes, recv_bytes = end.send_bytes, end.recv_bytes
    while msg := recv_bytes():
        send_bytes(msg)
    return {}


# ------------------------------------------------ one-way throughput: A/B ----
# A returns {"sent", "send_s"}; B returns {"received", "recv_s", "lost"?}
# where recv_s runs from B's first delivery to the end of the stream, and
# that first delivery (`first` messages) is not counted in B's rate.


def send_loop(send: Callable[[Any], Any], msg: Any, total: int, cap: float) -> tuple[int, float]:
    """Calls ``send(msg)`` up to ``total`` times, in CHUNKs between looks at
    the clock, stopping after ``cap`` s; returns (sent, seconds). The loop is
    the same as ringcast's inline one: nothing added per message."""
    deadline = now_ns() + int(cap * 1e9)
    sent = 0
    t0 = now_ns()
    for _ in range(chunks(total)):
        for _ in range(CHUNK):
            send(msg)
        sent += CHUNK
        if now_ns() > deadline:
            break
    return sent, (now_ns() - t0) / 1e9


def tp_ringcast_a(
    conn: Connection,
    sync: Connection,
    env: Env,
    name: str,
    bounded: bool,
    mode: str,
    total: int,
    cap: float,
) -> dict:
    """A of ringcast one-way runs; ``mode`` is "single" or "single-recv"
    (publish a 1-record array; B reads with recv_into or recv), "batch"
    (publish_batch of BATCH records) or "blob" (publish one BATCH-record
    array as one 256 KiB message of a raw ring)."""
    if mode == "blob":
        pub = ringcast.Publisher.create(
            name, slot_size=BATCH * MSG_BYTES, capacity=BLOB_CAPACITY, dir=env.tmp, bounded=bounded
        )
    else:
        pub = ringcast.Publisher.create(
            name, dtype=DTYPE, capacity=TP_CAPACITY, dir=env.tmp, bounded=bounded
        )
    try:
        sync.send("created")
        sync.recv()
        deadline = now_ns() + int(cap * 1e9)
        sent = 0
        if mode.startswith("single"):
            rec, publish = records(1), pub.publish
            t0 = now_ns()
            for _ in range(chunks(total)):
                for _ in range(CHUNK):
                    publish(rec)
                sent += CHUNK
                if now_ns() > deadline:
                    break
        else:
            block = records(BATCH)
            send = pub.publish_batch if mode == "batch" else pub.publish
            t0 = now_ns()
            for _ in range(max(1, total // BATCH)):
                send(block)
                sent += BATCH
                if now_ns() > deadline:
                    break
        t1 = now_ns()
    finally:
        pub.unlink()  # before close(): a closed Publisher refuses unlink()
        pub.close()
    return {"sent": sent, "send_s": (t1 - t0) / 1e9}


def tp_ringcast_b(conn: Connection, sync: Connection, env: Env, name: str, mode: str) -> dict:
    sync.recv()
    sub = ringcast.Subscriber.attach(name, dir=env.tmp, start="oldest", prefault=True)
    sync.send("ready")
    if mode == "batch":
        out = np.empty(BATCH, dtype=DTYPE)
        # The first call may take fewer than BATCH; it is not timed.
        first, secs = time_until_closed(functools.partial(sub.recv_batch_into, out, None))
    else:
        if mode == "single-recv":
            read = sub.recv
        else:  # single: one record; blob: one message of BATCH records
            read = functools.partial(sub.recv_into, np.empty(BATCH if mode == "blob" else 1, DTYPE))
        _, secs = time_until_closed(read)
        first = 1
    scale = BATCH if mode == "blob" else 1  # counted in records
    return {
        "received": sub.received * scale,
        "first": first * scale,
        "recv_s": secs,
        "lost": sub.lost * scale,
    }


def tp_iceoryx2_a(
    conn: Connection,
    sync: Connection,
    env: Env,
    tag: str,
    lossless: bool,
    batch: bool,
    total: int,
    cap: float,
) -> dict:
    import iceoryx2 as iox2

    node = iox_node(env)
    payload = iox2.Slice[Quote] if batch else Quote
    service = (
        iox_service(node, tag, payload)
        .enable_safe_overflow(not lossless)
        .subscriber_max_buffer_size(IOX_BATCH_BUFFER if batch else IOX_TP_BUFFER)
        .create()
    )
    builder = service.publisher_builder()
    if batch:
        builder = builder.initial_max_slice_len(BATCH)
    if lossless:
        builder = builder.backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
    pub = builder.create()
    sync.send("created")
    sync.recv()
    pub.update_connections()
    memmove, deadline, sent = ctypes.memmove, now_ns() + int(cap * 1e9), 0
    if batch:
        block = records(BATCH)
        addr, loan_slice = block.ctypes.data, pub.loan_slice_uninit
        t0 = now_ns()
        for _ in range(max(1, total // BATCH)):
            sample = loan_slice(BATCH)
            memmove(sample.payload_ptr, addr, BATCH * MSG_BYTES)
            sample.assume_init().send()
            sent += BATCH
            if now_ns() > deadline:
                break
    else:
        msg = Quote.from_buffer_copy(one_message())
        addr, loan = ctypes.addressof(msg), pub.loan_uninit
        t0 = now_ns()
        for _ in range(chunks(total)):
            for _ in range(CHUNK):
                sample = loan()
                memmove(sample.payload_ptr, addr, MSG_BYTES)
                sample.assume_init().send()
            sent += CHUNK
            if now_ns() > deadline:
                break
    t1 = now_ns()
    sync.send("done")  # everything sent is in B's buffer (or was overwritten there)
    return {"sent": sent, "send_s": (t1 - t0) / 1e9}


def tp_iceoryx2_b(conn: Connection, sync: Connection, env: Env, tag: str, batch: bool) -> dict:
    import iceoryx2 as iox2

    sync.recv()  # A created the service
    node = iox_node(env)
    payload = iox2.Slice[Quote] if batch else Quote
    service = iox_service(node, tag, payload).open()
    sub = (
        service.subscriber_builder()
        .buffer_size(IOX_BATCH_BUFFER if batch else IOX_TP_BUFFER)
        .create()
    )
    sync.send("ready")
    receive, poll, memmove = sub.receive, sync.poll, ctypes.memmove
    out = np.empty(BATCH, dtype=DTYPE)
    dst = out.ctypes.data
    sample = receive()
    while sample is None:
        sample = receive()
    t0 = now_ns()
    if batch:
        first = got = sample.header.number_of_elements
        memmove(dst, sample.payload_ptr, got * MSG_BYTES)
    else:
        first = got = 1  # the sample itself is the delivery: zero-copy
    del sample
    idle, done = 0, False
    while True:
        sample = receive()
        if sample is not None:
            if batch:
                k = sample.header.number_of_elements
                memmove(dst, sample.payload_ptr, k * MSG_BYTES)
                got += k
            else:
                got += 1
            continue
        if done:
            break  # drained after A said it is done
        idle += 1
        if not idle & 63 and poll():
            done = True
    t1 = now_ns()
    return {"received": got, "first": first, "recv_s": (t1 - t0) / 1e9}


def tp_zmq_a(
    conn: Connection, sync: Connection, env: Env, addr: str, total: int, cap: float
) -> dict:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.linger = 0
    try:
        sock.bind(addr)
        sync.send("bound")
        sync.recv()
        msg, send = one_message(), sock.send
        sent, secs = send_loop(send, msg, total, cap)
        send(b"")
        sync.recv()  # B got everything: closing now loses nothing
    finally:
        sock.close()
        ctx.term()
    return {"sent": sent, "send_s": secs}


def tp_zmq_b(conn: Connection, sync: Connection, env: Env, addr: str) -> dict:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.linger = 0
    try:
        sync.recv()
        sock.connect(addr)
        sync.send("ready")
        recv = sock.recv
        recv()
        t0 = now_ns()
        got = 1
        while recv():
            got += 1
        t1 = now_ns()
        sync.send("got all")
    finally:
        sock.close()
        ctx.term()
    return {"received": got, "first": 1, "recv_s": (t1 - t0) / 1e9}


def tp_queue_a(
    conn: Connection, sync: Connection, env: Env, q: Any, many: bool, total: int, cap: float
) -> dict:
    """A of faster-fifo / multiprocessing.Queue runs; ``many``: put_many of
    BATCH messages (faster-fifo's batch path)."""
    msg = one_message()
    if many:
        block, put_many = [msg] * BATCH, q.put_many
        deadline, sent = now_ns() + int(cap * 1e9), 0
        t0 = now_ns()
        for _ in range(max(1, total // BATCH)):
            put_many(block, True, BLOCK_FOREVER)
            sent += BATCH
            if now_ns() > deadline:
                break
        secs = (now_ns() - t0) / 1e9
    else:
        sent, secs = send_loop(q.put, msg, total, cap)
    q.put(None)
    return {"sent": sent, "send_s": secs}


def tp_queue_b(conn: Connection, sync: Connection, env: Env, q: Any, many: bool) -> dict:
    if many:
        get_many = q.get_many
        got = first = len(get_many(True, BLOCK_FOREVER, BATCH))
        t0 = now_ns()
        while True:
            msgs = get_many(True, BLOCK_FOREVER, BATCH)
            if msgs[-1] is None:
                got += len(msgs) - 1
                break
            got += len(msgs)
    else:
        get = q.get
        get(True, BLOCK_FOREVER)
        got = first = 1
        t0 = now_ns()
        while get(True, BLOCK_FOREVER) is not None:
            got += 1
    t1 = now_ns()
    return {"received": got, "first": first, "recv_s": (t1 - t0) / 1e9}


def tp_pipe_a(
    conn: Connection, sync: Connection, env: Env, writer: Connection, total: int, cap: float
) -> dict:
    sent, secs = send_loop(writer.send_bytes, one_message(), total, cap)
    writer.send_bytes(b"")
    return {"sent": sent, "send_s": secs}


def tp_pipe_b(conn: Connection, sync: Connection, env: Env, reader: Connection) -> dict:
    recv_bytes = reader.recv_bytes
    recv_bytes()
    t0 = now_ns()
    got = 1
    while recv_bytes():
        got += 1
    t1 = now_ns()
    return {"received": got, "first": 1, "recv_s": (t1 - t0) / 1e9}


# ------------------------------------------------------------- parent ----


def role(conn: Connection, sync: Connection, env: Env, fn: Callable[..., dict], *args: Any) -> dict:
    """Runs A or B and adds the CPU time this process used, so the parent can
    tell how much CPU other processes on the host took during the run."""
    result = fn(conn, sync, env, *args)
    t = os.times()
    result["cpu_s"] = t.user + t.system
    return result


def helpers_cpu_s() -> float:
    """CPU time of multiprocessing's own helper processes (the forkserver that
    forks every A and B, the resource tracker): ours, not "other processes".
    Their pids are private attributes, so this is best effort."""
    from multiprocessing import forkserver, resource_tracker

    total = 0.0
    for pid in (
        getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None),
        getattr(getattr(resource_tracker, "_resource_tracker", None), "_pid", None),
    ):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, TypeError):
            pass
    return total


def cpu_busy_s() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole host so far, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


class Run:
    """One benchmark run: the two CPUs, the temporary directory, the limits."""

    def __init__(self, env: Env, cpus: tuple, n: int, quick: bool) -> None:
        self.env, self.cpus, self.n = env, cpus, n
        self.warmup = max(n // 10, 2 * RT_CAPACITY)
        self.single_total = 50 * n
        self.batch_total = max(BATCH, 400 * n // BATCH * BATCH)
        self.trials = 1 if quick else 3
        self.rt_cap = 0.5 if quick else 4.0  # seconds of measured round trips, at most
        self.tp_cap = 0.25 if quick else 1.0  # seconds of sending per throughput trial
        self.grace = 20.0 if quick else 40.0  # set-up allowance before a pair is killed
        self.serial = 0
        self.children_cpu_s = 0.0  # CPU time A and B processes used, for the interference estimate

    def tag(self, what: str) -> str:
        """A fresh name for a ring, socket or service: nothing is reused."""
        self.serial += 1
        return f"{what}-{self.serial}"

    def pair(
        self,
        a: Callable[..., Any],
        a_args: tuple,
        b: Callable[..., Any],
        b_args: tuple,
        limit: float,
        handed_over: tuple = (),
    ) -> tuple[dict, dict]:
        """Runs A (first CPU) and B (second CPU) until both returned a result;
        kills both if either fails or ``limit`` + grace seconds pass."""
        ctx = mp_context()
        sync_a, sync_b = ctx.Pipe()
        children: dict[str, Child] = {}
        ok = False
        try:
            children["B"] = Child(role, self.cpus[1], sync_b, self.env, b, *b_args)
            children["A"] = Child(role, self.cpus[0], sync_a, self.env, a, *a_args)
            for end in (sync_a, sync_b, *handed_over):
                end.close()  # the children hold them now; EOF must reach the other side
            results = self._collect(children, limit + self.grace)
            ok = True
            self.children_cpu_s += results["A"].pop("cpu_s") + results["B"].pop("cpu_s")
            return results["A"], results["B"]
        finally:
            for end in (sync_a, sync_b):
                end.close()
            for child in children.values():
                child.close(grace=2.0 if ok else 0.1)

    def _collect(self, children: dict[str, Child], timeout: float) -> dict[str, dict]:
        """Both results, or an error naming what failed. After a first failure
        the other process gets a moment to report too, since the root cause
        may be there (A's broken pipe is often B's crash)."""
        deadline = time.monotonic() + timeout
        waiting = {child.conn: name for name, child in children.items()}
        results: dict[str, dict] = {}
        errors: list[str] = []
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if errors:
                    break
                raise TimeoutError(
                    f"no result from {' and '.join(sorted(waiting.values()))} "
                    f"within {timeout:.0f} s: killed"
                )
            for conn in multiprocessing.connection.wait(list(waiting), remaining):
                name = waiting.pop(conn)  # type: ignore[call-overload]
                child = children[name]
                try:
                    msg = conn.recv()  # type: ignore[union-attr]
                except EOFError:
                    child.proc.join(1.0)
                    msg = RuntimeError(f"exited (code {child.proc.exitcode}) without a result")
                if isinstance(msg, BaseException):
                    errors.append(f"{ROLE[name]}: {type(msg).__name__}: {msg}")
                    deadline = min(deadline, time.monotonic() + 0.5)
                else:
                    results[name] = msg
        if errors:
            raise RuntimeError("; ".join(errors))
        return results


ROLE = {"A": "A (sender)", "B": "B (receiver/echo)"}


@dataclass
class Measurement:
    section: str  # "round_trip", "single", "batch"
    key: str
    peer: str
    label: str
    config: str
    run: Callable[[Run], dict]


def throughput(a: dict, b: dict) -> dict:
    sent, received = a["sent"], b["received"]
    lost = b["lost"] if "lost" in b else sent - received
    return {
        "sent": sent,
        "published_per_s": sent / a["send_s"] if a["send_s"] > 0 else None,
        "delivered_per_s": (received - b["first"]) / b["recv_s"] if b["recv_s"] > 0 else None,
        "received": received,
        "lost": lost,
    }


def m_rt_ringcast(bounded: bool) -> Callable[[Run], dict]:
    def run(r: Run) -> dict:
        tag = r.tag("rt")
        a, b = r.pair(
            rt_ringcast_a,
            (tag, bounded, r.n, r.warmup, r.rt_cap),
            rt_ringcast_b,
            (tag, bounded),
            r.rt_cap,
        )
        a["lost"] += b["lost_b"]
        return a

    return run


def m_rt_iceoryx2(r: Run) -> dict:
    tag = r.tag("rt")
    a, _ = r.pair(rt_iceoryx2_a, (tag, r.n, r.warmup, r.rt_cap), rt_iceoryx2_b, (tag,), r.rt_cap)
    return a


def m_rt_zmq(r: Run) -> dict:
    addr = "ipc://" + os.path.join(r.env.tmp, r.tag("zmq-rt"))
    a, _ = r.pair(rt_zmq_a, (addr, r.n, r.warmup, r.rt_cap), rt_zmq_b, (addr,), r.rt_cap)
    return a


def m_rt_faster_fifo(r: Run) -> dict:
    import faster_fifo

    ping, pong = faster_fifo.Queue(FF_QUEUE_BYTES), faster_fifo.Queue(FF_QUEUE_BYTES)
    args = (r.n, r.warmup, r.rt_cap)
    a, _ = r.pair(rt_queues_a, (ping, pong, *args), rt_queues_b, (ping, pong), r.rt_cap)
    return a


def m_rt_mp_queue(r: Run) -> dict:
    ctx = mp_context()
    ping, pong = ctx.Queue(), ctx.Queue()
    args = (r.n, r.warmup, r.rt_cap)
    a, _ = r.pair(rt_queues_a, (ping, pong, *args), rt_queues_b, (ping, pong), r.rt_cap)
    return a


def m_rt_pipe(r: Run) -> dict:
    ours, theirs = mp_context().Pipe()  # duplex: a socketpair
    args = (r.n, r.warmup, r.rt_cap)
    a, _ = r.pair(rt_pipe_a, (ours, *args), rt_pipe_b, (theirs,), r.rt_cap, (ours, theirs))
    return a


def m_tp_ringcast(bounded: bool, mode: str) -> Callable[[Run], dict]:
    def run(r: Run) -> dict:
        name = r.tag(f"tp-{mode}")
        total = r.single_total if mode.startswith("single") else r.batch_total
        a, b = r.pair(
            tp_ringcast_a,
            (name, bounded, mode, total, r.tp_cap),
            tp_ringcast_b,
            (name, mode),
            r.tp_cap,
        )
        return throughput(a, b)

    return run


def m_tp_iceoryx2(lossless: bool, batch: bool) -> Callable[[Run], dict]:
    def run(r: Run) -> dict:
        tag = r.tag("tp")
        total = r.batch_total if batch else r.single_total
        a, b = r.pair(
            tp_iceoryx2_a,
            (tag, lossless, batch, total, r.tp_cap),
            tp_iceoryx2_b,
            (tag, batch),
            r.tp_cap,
        )
        return throughput(a, b)

    return run


def m_tp_zmq(r: Run) -> dict:
    addr = "ipc://" + os.path.join(r.env.tmp, r.tag("zmq-tp"))
    a, b = r.pair(tp_zmq_a, (addr, r.single_total, r.tp_cap), tp_zmq_b, (addr,), r.tp_cap)
    return throughput(a, b)


def m_tp_faster_fifo(many: bool) -> Callable[[Run], dict]:
    def run(r: Run) -> dict:
        import faster_fifo

        q = faster_fifo.Queue(FF_QUEUE_BYTES)
        total = r.batch_total if many else r.single_total
        a, b = r.pair(tp_queue_a, (q, many, total, r.tp_cap), tp_queue_b, (q, many), r.tp_cap)
        return throughput(a, b)

    return run


def m_tp_mp_queue(r: Run) -> dict:
    # Bounded, as a feed would be: unbounded, put() only appends to a list (a
    # feeder thread writes the pipe), A "sends" 10x faster than B can take,
    # and B spends ~10 s per trial draining what the time cap did not stop.
    q = mp_context().Queue(maxsize=MPQ_MAXSIZE)
    a, b = r.pair(
        tp_queue_a, (q, False, r.single_total, r.tp_cap), tp_queue_b, (q, False), r.tp_cap
    )
    return throughput(a, b)


def m_tp_pipe(r: Run) -> dict:
    reader, writer = mp_context().Pipe(duplex=False)  # an os.pipe
    a, b = r.pair(
        tp_pipe_a,
        (writer, r.single_total, r.tp_cap),
        tp_pipe_b,
        (reader,),
        r.tp_cap,
        (reader, writer),
    )
    return throughput(a, b)


IOX_SEND = "loan_uninit() + ctypes.memmove of 64 B + assume_init().send()"

MEASUREMENTS = [
    # --- round trip
    Measurement("round_trip", "ringcast", "ringcast", "ringcast publish / recv_into",
                f"lossy rings, capacity {RT_CAPACITY}, dtype of 64-byte records; publish(1-record "
                "array), recv_into(1-record array), default adaptive wait (spin, yield, park)",
                m_rt_ringcast(False)),
    Measurement("round_trip", "ringcast_bounded", "ringcast", "ringcast bounded=True",
                f"as above with bounded=True (lossless) rings, capacity {RT_CAPACITY}",
                m_rt_ringcast(True)),
    Measurement("round_trip", "iceoryx2", "iceoryx2", "iceoryx2 publish-subscribe",
                f"ipc service per direction, payload ctypes struct Quote (64 B), default service "
                f"settings (subscriber buffer 2, safe overflow); send = {IOX_SEND}; receive() "
                "busy-polled (the Python API has no blocking receive)",
                m_rt_iceoryx2),
    Measurement("round_trip", "zmq", "zmq", "pyzmq PAIR ipc://",
                "one PAIR socket pair over ipc://, send(64 B bytes)/recv(), copy=True, "
                "default HWM", m_rt_zmq),
    Measurement("round_trip", "faster_fifo", "faster_fifo", "faster-fifo Queue x2",
                f"two faster_fifo.Queue({FF_QUEUE_BYTES}) (one per direction), put/get of 64 B "
                "bytes (default pickle)", m_rt_faster_fifo),
    Measurement("round_trip", "mp_pipe", "mp_pipe", "multiprocessing.Pipe",
                "duplex Pipe (socketpair), send_bytes/recv_bytes of 64 B", m_rt_pipe),
    Measurement("round_trip", "mp_queue", "mp_queue", "multiprocessing.Queue x2",
                "two multiprocessing.Queue() (one per direction), put/get of 64 B bytes",
                m_rt_mp_queue),
    # --- single-message one-way throughput
    Measurement("single", "ringcast", "ringcast", "ringcast lossy publish / recv_into",
                f"lossy ring, capacity {TP_CAPACITY} (4 MiB); publish(1-record array) / "
                "recv_into(1-record array); a lapped reader loses messages and counts them",
                m_tp_ringcast(False, "single")),
    Measurement("single", "ringcast_bounded", "ringcast", "ringcast bounded=True",
                f"bounded ring (lossless: publisher waits), capacity {TP_CAPACITY}",
                m_tp_ringcast(True, "single")),
    Measurement("single", "ringcast_recv", "ringcast", "ringcast lossy, B uses recv()",
                "as ringcast lossy, B reads with recv() (a new numpy.void per message); "
                "not used in the ratios", m_tp_ringcast(False, "single-recv")),
    Measurement("single", "ringcast_bounded_recv", "ringcast", "ringcast bounded, B uses recv()",
                "as ringcast bounded=True, B reads with recv(); not used in the ratios",
                m_tp_ringcast(True, "single-recv")),
    Measurement("single", "iceoryx2", "iceoryx2", "iceoryx2 safe overflow (lossy)",
                f"payload Quote, subscriber buffer {IOX_TP_BUFFER}, enable_safe_overflow(True); "
                f"{IOX_SEND}; receive() busy-polled, the sample is the delivery (zero-copy)",
                m_tp_iceoryx2(False, False)),
    Measurement("single", "iceoryx2_lossless", "iceoryx2", "iceoryx2 lossless",
                "as above with enable_safe_overflow(False) and backpressure "
                "RetryUntilDelivered", m_tp_iceoryx2(True, False)),
    Measurement("single", "zmq", "zmq", "pyzmq PUSH/PULL ipc://",
                "PUSH (bind) -> PULL (connect) over ipc://, send(64 B)/recv(), default HWM 1000",
                m_tp_zmq),
    Measurement("single", "faster_fifo", "faster_fifo", "faster-fifo put / get",
                f"faster_fifo.Queue({FF_QUEUE_BYTES}), put/get of 64 B bytes",
                m_tp_faster_fifo(False)),
    Measurement("single", "mp_pipe", "mp_pipe", "multiprocessing.Pipe",
                "Pipe(duplex=False) (os.pipe), send_bytes/recv_bytes of 64 B", m_tp_pipe),
    Measurement("single", "mp_queue", "mp_queue", "multiprocessing.Queue",
                f"multiprocessing.Queue(maxsize={MPQ_MAXSIZE}), put/get of 64 B bytes (put "
                "hands off to a feeder thread: 'sent' is the enqueue rate)", m_tp_mp_queue),
    # --- batch paths, in 64-byte records per second
    Measurement("batch", "ringcast", "ringcast", "ringcast lossy publish_batch / recv_batch_into",
                f"lossy ring, capacity {TP_CAPACITY}; publish_batch(numpy array of {BATCH} "
                f"records) / recv_batch_into(preallocated {BATCH}-record array); every record is "
                "its own ring message", m_tp_ringcast(False, "batch")),
    Measurement("batch", "ringcast_bounded", "ringcast", "ringcast bounded batch",
                "as above with a bounded=True (lossless) ring", m_tp_ringcast(True, "batch")),
    Measurement("batch", "ringcast_blob", "ringcast", "ringcast 256 KiB raw messages",
                f"bounded raw ring, slot_size {BATCH * MSG_BYTES}, capacity {BLOB_CAPACITY}: "
                f"publish(array of {BATCH} records) as ONE message / recv_into(array): the same "
                "unit as iceoryx2's slice", m_tp_ringcast(True, "blob")),
    Measurement("batch", "iceoryx2_slice", "iceoryx2", "iceoryx2 Slice[Quote] of 4096",
                f"payload iceoryx2.Slice[Quote], initial_max_slice_len {BATCH}, lossless "
                f"(safe overflow off, RetryUntilDelivered), subscriber buffer {IOX_BATCH_BUFFER}; "
                f"loan_slice_uninit({BATCH}) + memmove 256 KiB + send; receive() + memmove out",
                m_tp_iceoryx2(True, True)),
    Measurement("batch", "faster_fifo", "faster_fifo", "faster-fifo put_many / get_many",
                f"faster_fifo.Queue({FF_QUEUE_BYTES}); put_many(list of {BATCH} 64 B bytes) / "
                f"get_many(max_messages_to_get={BATCH})", m_tp_faster_fifo(True)),
]  # fmt: skip


def median_trial(trials: list[dict]) -> dict:
    """The median trial by delivered rate, with the rates of all trials."""
    trials = sorted(trials, key=lambda t: t["delivered_per_s"] or 0.0)
    out = dict(trials[len(trials) // 2])
    out["trial_rates"] = [t["delivered_per_s"] for t in trials]
    return out


def measure(m: Measurement, r: Run, unavailable: dict[str, str]) -> dict:
    """Runs one measurement (all its trials); never raises an Exception: what
    fails is reported as {"not_measured": reason}."""
    if m.peer in unavailable:
        return {"not_measured": unavailable[m.peer], "config": m.config}
    trials = 1 if m.section == "round_trip" else r.trials
    results, failures = [], []
    for _ in range(trials):
        try:
            results.append(m.run(r))
        except Exception as e:
            failures.append(f"{type(e).__name__}: {e}")
            if isinstance(e, TimeoutError):
                break  # a hang would only repeat
    if not results:
        return {"not_measured": failures[0], "config": m.config}
    out = results[0] if m.section == "round_trip" else median_trial(results)
    out["config"] = m.config
    if failures:
        out["failed_trials"] = failures
    return out


# ---------------------------------------------------------------- ratios ----


def ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or not den:
        return None
    return num / den


def field(results: dict, section: str, key: str, name: str) -> float | None:
    entry = results.get(section, {}).get(key)
    if not entry or "not_measured" in entry:
        return None
    return entry.get(name)


def ratios(results: dict) -> dict:
    """Ratios of this run: the targets, then ringcast against every peer."""
    rc_p50 = field(results, "round_trip", "ringcast", "p50_us")
    out: dict[str, Any] = {"targets": {}, "round_trip": {}, "single": {}, "batch": {}}
    t = out["targets"]
    frac = ratio(rc_p50, field(results, "round_trip", "iceoryx2", "p50_us"))
    met = None if frac is None else frac <= 0.2
    t["rt_p50_ringcast_over_iceoryx2"] = {"value": frac, "target": "<= 0.2", "met": met}
    for rc_key, iox_key in (("ringcast", "iceoryx2"), ("ringcast_bounded", "iceoryx2_lossless")):
        x = ratio(
            field(results, "single", rc_key, "delivered_per_s"),
            field(results, "single", iox_key, "delivered_per_s"),
        )
        met = None if x is None else x >= 10
        t[f"single_{rc_key}_over_{iox_key}"] = {"value": x, "target": ">= 10", "met": met}
    for key in ("ringcast", "ringcast_bounded"):
        rate = field(results, "batch", key, "delivered_per_s")
        met = None if rate is None else rate >= 20e6
        t[f"batch_{key}_delivered_per_s"] = {"value": rate, "target": ">= 20e6", "met": met}
    for key in results.get("round_trip", {}):
        if key == "ringcast":
            continue
        out["round_trip"][key] = {
            f"{p}_peer_over_ringcast": ratio(
                field(results, "round_trip", key, f"{p}_us"),
                field(results, "round_trip", "ringcast", f"{p}_us"),
            )
            for p in ("p50", "p99", "p999")
        }
    for section, bases in (
        ("single", ("ringcast", "ringcast_bounded")),
        ("batch", ("ringcast", "ringcast_bounded")),
    ):
        for key in results.get(section, {}):
            if key.startswith("ringcast"):
                continue
            peer_rate = field(results, section, key, "delivered_per_s")
            out[section][key] = {
                f"{base}_over_peer": ratio(
                    field(results, section, base, "delivered_per_s"), peer_rate
                )
                for base in bases
            }
    return out


# ---------------------------------------------------------------- output ----


def fmt_rate(r: float | None) -> str:
    return "-" if r is None else f"{r / 1e6:.2f}M"


def fmt_x(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}x"


def print_report(results: dict, meta: dict, by_key: dict) -> None:
    print(
        f"ringcast vs peers from Python {meta['python']}: processes A and B on cpus "
        f"{meta['cpus'][0]} and {meta['cpus'][1]} ({'pinned' if meta['pinned'] else 'NOT pinned'}"
        f"), {MSG_BYTES}-byte messages; {meta['elapsed_s']:.1f} s"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    other, steal = meta["other_processes_cpu_s"], meta["steal_cpu_s"]
    print(
        f"start method {meta['start_method']}; CPU time taken by other processes during the "
        f"run: {'?' if other is None else f'{other:.1f}'} s of "
        f"{meta['host_cpus'] * meta['elapsed_s']:.0f} CPU-s on {meta['host_cpus']} CPUs "
        f"(hypervisor steal "
        f"{'?' if steal is None else f'{steal:.1f}'} s)"
    )
    capacity = meta["host_cpus"] * meta["elapsed_s"]
    if capacity and (other or 0) + (steal or 0) > 0.05 * capacity:
        print(
            "WARNING: other processes (or the hypervisor) took more than 5% of the CPUs "
            "during this run; every figure below is disturbed by them"
        )
    if meta["unavailable"]:
        for peer, why in meta["unavailable"].items():
            print(f"not measured: {peer}: {why}")
    print()

    print(
        f"Round trip A -> B -> A, µs ({meta['round_trips']} round trips after "
        f"{meta['warmup']} warm-up, at most {meta['rt_cap_s']:g} s of them)"
    )
    print(
        f"{'transport':<34} {'p50':>8} {'p99':>8} {'p99.9':>8} {'max':>9} {'min':>7} "
        f"{'samples':>8} {'lost':>5}"
    )
    for key, r in results["round_trip"].items():
        label = by_key["round_trip", key].label
        if "not_measured" in r:
            print(f"{label:<34} not measured: {r['not_measured']}")
            continue
        print(
            f"{label:<34} {r['p50_us']:>8.2f} {r['p99_us']:>8.2f} {r['p999_us']:>8.2f} "
            f"{r['max_us']:>9.1f} {r['min_us']:>7.2f} {r['samples']:>8} {r['lost']:>5}"
        )
    print()

    for section, title in (
        (
            "single",
            f"One-way single-message throughput (each trial at most {meta['single_total']} "
            f"messages or {meta['tp_cap_s']:g} s of sending; median of {meta['trials']} trials)",
        ),
        (
            "batch",
            f"Batch paths, one-way, in 64-byte records/s (batches of {BATCH}; at most "
            f"{meta['batch_total']} records or {meta['tp_cap_s']:g} s; median of "
            f"{meta['trials']} trials)",
        ),
    ):
        print(title)
        print(
            f"{'transport':<48} {'sent/s':>9} {'deliv/s':>9} {'sent':>9} {'received':>9} "
            f"{'lost':>8} {'lost%':>6}  trials (delivered/s)"
        )
        for key, r in results[section].items():
            label = by_key[section, key].label
            if "not_measured" in r:
                print(f"{label:<48} not measured: {r['not_measured']}")
                continue
            rates = "..".join(fmt_rate(x) for x in (r["trial_rates"][0], r["trial_rates"][-1]))
            lost_pct = 100 * r["lost"] / r["sent"] if r["sent"] else 0.0
            print(
                f"{label:<48} {fmt_rate(r['published_per_s']):>9} "
                f"{fmt_rate(r['delivered_per_s']):>9} {r['sent']:>9} {r['received']:>9} "
                f"{r['lost']:>8} {lost_pct:>6.1f}  {rates}"
            )
            if r.get("failed_trials"):
                print(f"{'':<48} failed trials: {'; '.join(r['failed_trials'])}")
        print()

    q = results["ratios"]
    t = q["targets"]

    def verdict(entry: dict) -> str:
        return {True: "MET", False: "NOT MET", None: "not measured"}[entry["met"]]

    print("Ratios, all from this run")
    e = t["rt_p50_ringcast_over_iceoryx2"]
    print(
        f"  round trip p50, ringcast / iceoryx2: {fmt_x(e['value'], 3)} "
        f"(target <= 0.2): {verdict(e)}"
    )
    for rc_key, iox_key, what in (
        ("ringcast", "iceoryx2", "lossy vs lossy"),
        ("ringcast_bounded", "iceoryx2_lossless", "lossless vs lossless"),
    ):
        e = t[f"single_{rc_key}_over_{iox_key}"]
        print(
            f"  single-message delivered/s, ringcast / iceoryx2 ({what}): {fmt_x(e['value'])} "
            f"(target >= 10x): {verdict(e)}"
        )
    for key, what in (("ringcast", "lossy"), ("ringcast_bounded", "bounded, lossless")):
        e = t[f"batch_{key}_delivered_per_s"]
        print(
            f"  ringcast batch path ({what}) delivered: {fmt_rate(e['value'])}/s "
            f"(target >= 20M/s): {verdict(e)}"
        )
    print("  round trip, peer / ringcast (how many times slower the peer is):")
    for key, x in q["round_trip"].items():
        label = by_key["round_trip", key].label
        print(
            f"    {label:<34} p50 {fmt_x(x['p50_peer_over_ringcast']):>8}  "
            f"p99 {fmt_x(x['p99_peer_over_ringcast']):>8}  "
            f"p99.9 {fmt_x(x['p999_peer_over_ringcast']):>8}"
        )
    for section, what in (("single", "single-message"), ("batch", "batch path")):
        print(f"  {what} delivered/s, ringcast lossy / peer and ringcast bounded / peer:")
        for key, x in q[section].items():
            label = by_key[section, key].label
            print(
                f"    {label:<46} {fmt_x(x['ringcast_over_peer']):>8} "
                f"{fmt_x(x['ringcast_bounded_over_peer']):>8}"
            )
    print()
    print("Configuration")
    for section in ("round_trip", "single", "batch"):
        for key, r in results[section].items():
            print(f"  [{section}] {by_key[section, key].label}: {r['config']}")


# ------------------------------------------------------------------ main ----


def check_peers(wanted: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Imports each peer's module: (versions, {peer: why it is unavailable})."""
    versions: dict[str, str] = {"python": platform.python_version(), "numpy": np.__version__}
    unavailable: dict[str, str] = {}
    for peer in wanted:
        module, dist = PEERS[peer]
        try:
            mod = importlib.import_module(module)
        except Exception as e:
            unavailable[peer] = f"import {module} failed: {type(e).__name__}: {e}"
            continue
        if dist:
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                versions[dist] = getattr(mod, "__version__", "?")
        if module == "zmq":
            versions["libzmq"] = mod.zmq_version()
    return versions, unavailable


def can_pin(cpus: tuple) -> bool:
    """Whether this process may pin itself to each of ``cpus`` (its children do)."""
    if cpus[0] is None:
        return False
    before = os.sched_getaffinity(0)
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
        return True
    except OSError:
        return False
    finally:
        os.sched_setaffinity(0, before)


def remove_stale(base: str | None) -> None:
    """Removes what earlier runs that were SIGKILLed left behind (nothing is
    left to clean up after them): files named with the pid of a dead run."""
    if base is None:
        return
    for path in glob.glob(os.path.join(base, "ringcast-peers-*-*")) + glob.glob(
        os.path.join(base, "rcpeers*_*")
    ):
        name = os.path.basename(path)
        pid = name.removeprefix("ringcast-peers-").removeprefix("rcpeers").split("-")[0]
        pid = pid.split("_")[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # that run is alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


def remove_leftovers(env: Env) -> None:
    """Removes the temporary directory and iceoryx2's shared memory objects,
    which it names with this run's own prefix under /dev/shm."""
    shutil.rmtree(env.tmp, ignore_errors=True)
    for path in glob.glob(os.path.join("/dev/shm", env.iox_prefix + "*")):
        try:
            os.unlink(path)
        except OSError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--messages",
        type=int,
        default=None,
        help="round trips per latency measurement (default 20000, --quick 2000); "
        "single-message throughput trials send up to 50 x N messages, batch trials "
        "400 x N records (each also capped in time)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        help=f"comma-separated subset of {','.join(PEERS)} (default: all)",
    )
    args = parser.parse_args()
    n = args.messages if args.messages is not None else (2000 if args.quick else 20_000)
    if n < 1:
        parser.error("--messages must be at least 1")
    wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
    if unknown := [p for p in wanted if p not in PEERS]:
        parser.error(f"unknown peers {unknown}; choose from {list(PEERS)}")
    if "ringcast" not in wanted:
        wanted.insert(0, "ringcast")  # every ratio is against it

    # SIGTERM unwinds like Ctrl-C, so the children are reaped and files removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    versions, unavailable = check_peers(wanted)
    preload = ["numpy", "ringcast"] + [
        PEERS[p][0] for p in wanted if p not in unavailable and PEERS[p][0] != "multiprocessing"
    ]
    mp_context(preload)
    cpus = two_cpus()
    pinned = can_pin(cpus)
    busy_before = cpu_busy_s()

    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    remove_stale(base)
    env = Env(
        tmp=tempfile.mkdtemp(prefix=f"ringcast-peers-{os.getpid()}-", dir=base),
        iox_prefix=f"rcpeers{os.getpid()}_",
    )
    run = Run(env, cpus, n, args.quick)
    selected = [m for m in MEASUREMENTS if m.peer in wanted]
    by_key = {(m.section, m.key): m for m in selected}
    results: dict[str, Any] = {"round_trip": {}, "single": {}, "batch": {}}
    progress = sys.stderr.isatty()
    started = time.monotonic()
    try:
        for m in selected:
            if progress:
                print(f"  {m.section}: {m.label} ...", file=sys.stderr, flush=True)
            results[m.section][m.key] = measure(m, run, unavailable)
    finally:
        remove_leftovers(env)
    elapsed = time.monotonic() - started
    busy_after = cpu_busy_s()
    other_cpu = steal = None
    if busy_before and busy_after:
        t = os.times()
        ours = run.children_cpu_s + t.user + t.system + helpers_cpu_s()
        other_cpu = max(0.0, busy_after[0] - busy_before[0] - ours)
        steal = busy_after[1] - busy_before[1]
    results["ratios"] = ratios(results)
    meta = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": list(cpus),
        "pinned": pinned,
        "host_cpus": os.cpu_count(),
        "other_processes_cpu_s": other_cpu,
        "steal_cpu_s": steal,
        "start_method": mp_context().get_start_method(),
        "message_bytes": MSG_BYTES,
        "round_trips": n,
        "warmup": run.warmup,
        "rt_cap_s": run.rt_cap,
        "single_total": run.single_total,
        "batch_total": run.batch_total,
        "tp_cap_s": run.tp_cap,
        "trials": run.trials,
        "quick": args.quick,
        "elapsed_s": elapsed,
        "versions": versions,
        "unavailable": unavailable,
    }
    if args.json:
        json.dump({"meta": meta, **results}, sys.stdout, indent=1)
        print()
    else:
        print_report(results, meta, by_key)


if __name__ == "__main__":
    main()
