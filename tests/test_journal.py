"""Capture and replay: `ringcast record` / `replay` / `journal`, and
`ringcast.Journal`, across real processes.

- round trip: 1M checksummed messages recorded from another process's ring
  and replayed into a new ring arrive identical, in order; a paced replay
  keeps the recorded timing;
- crash safety: the recorder SIGKILLed at random points 20 times on a
  bounded ring: every time the journal reads as a prefix (a torn tail is
  reported, then repaired), and in the end nothing is missing or doubled;
- damage: flipped and cut bytes are reported by `verify` with the exact
  sequences, skipped by readers and replays;
- gaps: a lapped recorder writes gap entries whose sizes equal its lost count;
- research: numpy arrays and a Parquet export equal what was published.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _journal_workers import publish_paced, publish_then_hang

import ringcast
from _workers import REC, checksum, make_records
from ringcast.journal import Journal

ctx = mp.get_context("spawn")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ringcast", *args]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=timeout)


def start_publisher(ring_dir, name, total, *, batch=1000, rate=0, **opts):
    ready = ctx.Event()
    p = ctx.Process(target=publish_paced, args=(ring_dir, name, total, batch, rate, ready, opts))
    p.start()
    assert ready.wait(30), "the publisher did not start"
    return p


def record(ring_dir, name, journal, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli("record", name, "--dir", str(journal), "--ring-dir", ring_dir, "--quiet", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_attached(ring_dir, name: str, pid: int, timeout: float = 30) -> None:
    """Waits until process `pid` holds a live subscriber record of ring `name`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        subs = ringcast.ring_info(name, ring_dir)["subscribers"]
        if any(s["pid"] == pid and s["alive"] for s in subs):
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} did not attach to {name} within {timeout} s")


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out)


def assert_whole(recs: np.ndarray, seqs: np.ndarray, first: int, n: int) -> None:
    """`recs` are exactly records first..first+n-1 (their checksums hold)."""
    assert len(recs) == n
    np.testing.assert_array_equal(recs["seq"], np.arange(first, first + n, dtype=np.uint64))
    np.testing.assert_array_equal(seqs, recs["seq"])
    assert np.array_equal(checksum(recs), recs["checksum"])


def read_ring(ring_dir, name, results, attached) -> None:
    """Reads ring `name` until it closes; sends (records, receive times) back."""
    while True:
        try:
            sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
            break
        except ringcast.RingNotFound:
            time.sleep(0.001)
    attached.set()
    parts, recv = [], []
    with sub:
        while True:
            try:
                got = sub.recv_batch(65536, timeout=5.0)
            except ringcast.RingClosed:
                break
            now = time.monotonic_ns()
            if len(got):
                parts.append(np.asarray(got).copy())
                recv.append(np.full(len(got), now, dtype=np.int64))
    recs = np.concatenate(parts) if parts else np.empty(0, REC)
    results.put((recs, np.concatenate(recv) if recv else np.empty(0, np.int64)))


def test_a_million_messages_round_trip_identical_and_in_order(ring_dir, tmp_path):
    journal = tmp_path / "j"
    total = 1_000_000
    pub = start_publisher(ring_dir, "md.in", total, batch=4096, capacity=1 << 14, bounded=True)
    rec = record(ring_dir, "md.in", journal, "--json", "--segment-size", "16M")
    report = finish(rec)
    pub.join(30)
    assert (report["recorded"], report["gaps"], report["ring_lost"]) == (total, 0, 0)
    assert report["segments"] >= 3  # rolled by size
    verified = run_cli("journal", "verify", str(journal))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact; 1,000,000 messages" in verified.stdout

    j = Journal(journal)
    m = j.messages()
    assert_whole(m.records, m.seq, 0, total)

    results, attached = ctx.Queue(), ctx.Event()
    reader = ctx.Process(target=read_ring, args=(ring_dir, "md.out", results, attached))
    reader.start()
    done = run_cli(
        "replay", str(journal), "--to", "md.out", "--ring-dir", ring_dir, "--bounded",
        "--subscribers", "1", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    replayed = json.loads(done.stdout)
    assert (replayed["published"], replayed["first_seq"], replayed["end_seq"]) == (total, 0, total)
    recs, _ = results.get(timeout=60)
    reader.join(10)
    # The same payloads, sequences and order: a new ring numbers from 0 too.
    assert_whole(recs, recs["seq"], 0, total)


def test_a_paced_replay_keeps_the_recorded_timing(ring_dir, tmp_path):
    """2,000 messages over ~1 s, replayed at speed 1 and 4: each message is
    due at the recorded offset (divided by the speed) and goes out close to it."""
    journal = tmp_path / "j"
    pub = start_publisher(ring_dir, "md.slow", 2000, batch=10, rate=2000, capacity=4096)
    report = finish(record(ring_dir, "md.slow", journal, "--json"))
    pub.join(10)
    assert report["recorded"] == 2000
    recorded = Journal(journal).messages()
    span = (recorded.time[-1] - recorded.time[0]) / 1e9
    assert 0.8 < span < 3.0

    for speed in (1, 4):
        results, attached = ctx.Queue(), ctx.Event()
        name = f"md.paced{speed}"
        reader = ctx.Process(target=read_ring, args=(ring_dir, name, results, attached))
        reader.start()
        t0 = time.monotonic()
        done = run_cli(
            "replay", str(journal), "--to", name, "--ring-dir", ring_dir, "--speed", str(speed),
            "--subscribers", "1", "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        r = json.loads(done.stdout)
        recs, recv = results.get(timeout=60)
        reader.join(10)
        assert r["published"] == 2000 and len(recs) == 2000
        # Each message arrives at its recorded offset / speed (within 30 ms).
        expected = (recorded.time - recorded.time[0]) / speed / 1e9
        arrived = (recv - recv[0]) / 1e9
        assert np.abs(arrived - expected).max() < 0.03, np.abs(arrived - expected).max()
        # Tolerance: the replay lasts the recorded span / speed within 5% + 50 ms,
        # and no message went out more than 20 ms after it was due.
        assert abs(r["elapsed"] - span / speed) < 0.05 * span / speed + 0.05, (r, span)
        assert r["max_late"] < 0.02, r
        assert time.monotonic() - t0 < span / speed + 10


def verify_prefix(journal) -> tuple[int, dict]:
    """After a crash: the journal reads as records 0..n-1 with at most an
    unflushed (torn) tail, reported as such; returns n."""
    v = ringcast.journal.verify(journal)
    assert v["damaged"] == 0 or v["open"], v
    for u in v["unreadable"]:
        assert u["to_seq"] is None, f"damage inside the journal: {v}"
    m = Journal(journal).messages()
    n = len(m)
    assert_whole(m.records, m.seq, 0, n)
    return n, v


def test_a_recorder_killed_20_times_loses_nothing_on_a_bounded_ring(ring_dir, tmp_path):
    journal = tmp_path / "j"
    total = 200_000
    rng = random.Random(20)
    # Liveness timeout far beyond a restart: the dead recorder keeps its place.
    # The publisher outlasts the 20 kills (each after the recorder attached,
    # 0.3-1 s apart): a kill once everything is recorded finds no open segment.
    pub = start_publisher(
        ring_dir, "md.crash", total, batch=200, rate=12_000, capacity=4096, bounded=True,
        liveness_timeout=60.0,
    )  # fmt: skip
    recorded_before, torn_tails, repaired = 0, 0, 0
    for kill in range(20):
        rec = record(ring_dir, "md.crash", journal, "--fsync", "never")
        # Kill it at a random point of its recording, not of its start-up
        # (an interpreter start can take longer than the shortest sleeps).
        wait_attached(ring_dir, "md.crash", rec.pid)
        time.sleep(rng.uniform(0.05, 0.6))
        rec.send_signal(signal.SIGKILL)
        rec.wait(10)
        if not journal.exists() or not any(journal.glob("*.rcj")):
            continue  # killed before its first segment
        n, v = verify_prefix(journal)
        assert n >= recorded_before, f"kill {kill}: the journal shrank"
        recorded_before = n
        torn_tails += any(s["partial_bytes"] for s in v["segments"])
        repaired += v["open"]
    assert repaired >= 15, "most kills should land while a segment is open"
    final = finish(record(ring_dir, "md.crash", journal, "--json"), timeout=120)
    pub.join(30)
    assert final["ended"] and final["gaps"] == 0 and final["ring_lost"] == 0, final
    v = ringcast.journal.verify(journal)
    assert v["intact"] and not v["open"], v
    assert (v["messages"], v["gaps"], v["first_seq"], v["end_seq"]) == (total, 0, 0, total)
    m = Journal(journal).messages()
    assert_whole(m.records, m.seq, 0, total)
    print(f"20 kills: {repaired} left an open segment, {torn_tails} a cut-short entry")


def test_a_lapped_recorder_writes_gaps_equal_to_its_lost_count(ring_dir, tmp_path):
    journal = tmp_path / "j"
    with ringcast.Publisher.create(
        "md.lossy", dtype=REC, capacity=1024, dir=ring_dir, timestamps=True
    ) as pub:
        rec = record(ring_dir, "md.lossy", journal, "--json")
        deadline = time.monotonic() + 30
        while pub.subscriber_count == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.3)  # the probe left, the recorder itself attached
        sent = 0
        for burst in (1000, 5000, 1000, 9000, 500):
            if burst > 1024:
                rec.send_signal(signal.SIGSTOP)
            pub.publish_batch(make_records(sent, burst))
            sent += burst
            if burst > 1024:
                rec.send_signal(signal.SIGCONT)
            time.sleep(0.3)
    report = finish(rec)
    assert report["gaps"] >= 2
    assert report["lost"] == report["ring_lost"] > 0
    j = Journal(journal)
    gaps = j.gaps()
    assert int(gaps["count"].sum()) == report["lost"]
    m = j.messages()
    assert len(m) + report["lost"] == sent == report["recorded"] + report["lost"]
    assert np.array_equal(checksum(m.records), m.records["checksum"])
    np.testing.assert_array_equal(m.records["seq"], m.seq)
    # Every sequence is a message or inside exactly one gap.
    covered = np.zeros(sent, dtype=np.int32)
    covered[m.seq.astype(np.int64)] += 1
    for seq, count in gaps:
        covered[int(seq) : int(seq) + int(count)] += 1
    assert (covered == 1).all()


def test_damage_is_reported_exactly_skipped_by_readers_and_replays(ring_dir, tmp_path):
    journal = tmp_path / "j"
    total = 30_000
    pub = start_publisher(ring_dir, "md.dmg", total, capacity=4096, bounded=True)
    finish(record(ring_dir, "md.dmg", journal, "--json", "--segment-size", "256K"))
    pub.join(10)
    j = Journal(journal)
    assert len(j.segments) >= 3
    stride = j.entry_dtype.itemsize
    first = j.segments[1]
    # Flip a byte in the 10th entry of the second segment.
    with open(first.path, "r+b") as f:
        f.seek(4096 + 9 * stride + 40)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0xFF]))
    lost_seq = first.first_seq + 9
    # Cut the last segment in the middle of an entry.
    last = j.segments[-1]
    size = os.path.getsize(last.path)
    os.truncate(last.path, size - stride // 2)
    v = run_cli("journal", "verify", str(journal))
    assert v.returncode == 1
    assert f"sequences {lost_seq}..{lost_seq + 1} (1 messages): 1 damaged entry" in v.stdout
    assert "cut short" in v.stdout
    report = ringcast.journal.verify(journal)
    assert report["damaged"] == 1
    assert report["unreadable"][0]["count"] == 1
    # The cut entry is the last message: its range is pinned by the seal.
    tail = report["unreadable"][-1]
    assert (tail["from_seq"], tail["to_seq"]) == (total - 1, total), report
    m = Journal(journal).messages()
    assert len(m) == total - 2
    assert lost_seq not in set(m.seq.tolist())
    assert np.array_equal(checksum(m.records), m.records["checksum"])
    done = run_cli("replay", str(journal), "--to", "md.dmg2", "--ring-dir", ring_dir, "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["published"] == total - 2
    assert [(u["from_seq"], u["to_seq"]) for u in r["unreadable"]] == [
        (lost_seq, lost_seq + 1),
        (total - 1, total),
    ]


def test_a_journal_open_in_python_survives_the_repair_of_its_torn_tail(ring_dir, tmp_path):
    """A research notebook has the journal mapped while a restarted recorder
    repairs the segment a crash left open: the repair seals the torn tail off
    without shortening the file, so the notebook's arrays stay readable (a
    cut file under a memory map is SIGBUS, which would kill this process)."""
    journal = tmp_path / "j"
    pub = start_publisher(ring_dir, "md.torn", 3000, capacity=4096, bounded=True)
    finish(record(ring_dir, "md.torn", journal, "--json"))
    pub.join(10)
    last = Journal(journal).segments[-1].path
    stride = Journal(journal).entry_dtype.itemsize
    with open(last, "r+b") as f:  # a crash: no seal, a bad whole entry, half an entry
        f.seek(3968)
        f.write(bytes(128))
        f.seek(4096 + 2999 * stride)
        entry = bytearray(f.read(stride))
        entry[40] ^= 0xFF
        f.seek(0, os.SEEK_END)
        f.write(bytes(entry) + bytes(entry[: stride // 2]))
    size = os.path.getsize(last)
    notebook = Journal(journal)
    mapped = notebook.view(len(notebook.segments) - 1)
    assert len(mapped) == 3001 and list(notebook.segments[-1].damaged) == [3000]
    repaired = finish(record(ring_dir, "md.torn", journal, "--json"))
    assert repaired["recovery"]["cut_entries"] == 1, repaired
    assert os.path.getsize(last) == size
    assert mapped.view(np.uint8).sum() > 0  # touches every mapped byte
    m = notebook.messages()
    assert_whole(m.records, m.seq, 0, 3000)
    v = ringcast.journal.verify(journal)
    assert v["intact"] and not v["open"], v
    assert v["segments"][-1]["sealed_off_bytes"] == stride + stride // 2
    text = run_cli("journal", "verify", str(journal)).stdout
    assert f"{stride + stride // 2} bytes of a torn tail sealed off" in text


def test_numpy_and_parquet_equal_what_was_published(ring_dir, tmp_path):
    import pandas
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    quote = np.dtype(
        [("sym", "S8"), ("bid", "<f8"), ("ask", "<f8"), ("size", "<u4"), ("levels", "<i2", (3,))]
    )
    rng = np.random.default_rng(7)
    sent = np.zeros(5000, dtype=quote)
    sent["sym"] = rng.choice([b"AAPL", b"MSFT", b"SPY", b"QQQQQQQQ"], 5000)
    sent["bid"] = rng.normal(100, 5, 5000)
    sent["ask"] = sent["bid"] + 0.01
    sent["size"] = rng.integers(1, 10_000, 5000)
    sent["levels"] = rng.integers(-500, 500, (5000, 3))
    journal = tmp_path / "j"
    with ringcast.Publisher.create(
        "md.q", dtype=quote, capacity=8192, dir=ring_dir, timestamps=True
    ) as pub:
        pub.publish_batch(sent)
    report = ringcast.journal.record("md.q", journal, dir=ring_dir)
    assert report["recorded"] == 5000 and report["ended"]
    j = ringcast.Journal(journal)
    assert j.dtype == quote
    m = j.messages()
    assert np.array_equal(np.asarray(m.records), sent)
    np.testing.assert_array_equal(m.seq, np.arange(5000))
    # One segment, nothing left out: a zero-copy view of the mapping.
    assert isinstance(m.records.base, np.memmap) or isinstance(m.records, np.memmap)
    part = j.messages(start_seq=100, end_seq=200)
    assert np.array_equal(np.asarray(part.records), sent[100:200])
    by_time = j.messages(start_time=int(m.time[300]))
    assert int(by_time.seq[0]) <= 300

    j.to_parquet(tmp_path / "q.parquet")
    table = pq.read_table(tmp_path / "q.parquet")
    assert table.column_names == ["seq", "publish_time", "sym", "bid", "ask", "size", "levels"]
    assert table.column("seq").to_pylist() == list(range(5000))
    assert table.column("sym").to_pylist() == sent["sym"].tolist()
    np.testing.assert_array_equal(table.column("bid").to_numpy(), sent["bid"])
    np.testing.assert_array_equal(table.column("size").to_numpy(), sent["size"])
    assert table.column("levels").to_pylist() == sent["levels"].tolist()
    assert table.schema.field("publish_time").type == pa.timestamp("ns", tz="UTC")

    frame = pandas.read_parquet(tmp_path / "q.parquet")
    np.testing.assert_array_equal(frame["ask"].to_numpy(), sent["ask"])
    assert frame["sym"].tolist() == sent["sym"].tolist()
    # polars reads the same file (its own Parquet reader, not pyarrow's).
    polars = pl.read_parquet(tmp_path / "q.parquet")
    assert polars["seq"].to_list() == list(range(5000))
    np.testing.assert_array_equal(polars["bid"].to_numpy(), sent["bid"])
    assert polars["sym"].to_list() == sent["sym"].tolist()
    assert polars["levels"].to_list() == sent["levels"].tolist()
    assert polars.schema["publish_time"] == pl.Datetime("ns", "UTC")

    # A raw bytes ring of messages of every length.
    payloads = [bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in rng.integers(0, 60, 700)]
    with ringcast.Publisher.create(
        "md.raw", slot_size=64, capacity=1024, dir=ring_dir, timestamps=True
    ) as pub:
        for p in payloads:
            pub.publish(p)
    ringcast.journal.record("md.raw", tmp_path / "raw", dir=ring_dir)
    raw = ringcast.Journal(tmp_path / "raw")
    assert raw.dtype is None
    assert raw.messages().payloads() == payloads
    assert [msg for _, _, msg in raw] == payloads
    assert raw.to_arrow().column("data").to_pylist() == payloads


def test_bad_input_says_what_to_do(ring_dir, tmp_path):
    missing = run_cli("record", "md.none", "--dir", str(tmp_path / "j"), "--ring-dir", ring_dir)
    assert missing.returncode == 1
    assert "md.none" in missing.stderr and "Traceback" not in missing.stderr
    not_journal = run_cli("journal", "info", str(tmp_path))
    assert not_journal.returncode == 1
    assert "is not a ringcast journal" in not_journal.stderr
    assert "ringcast record" in not_journal.stderr

    journal = tmp_path / "j"
    with ringcast.Publisher.create("md.a", dtype=REC, capacity=64, dir=ring_dir) as pub:
        pub.publish_batch(make_records(0, 10))
    ringcast.journal.record("md.a", journal, dir=ring_dir)
    with ringcast.Publisher.create("md.b", slot_size=16, capacity=64, dir=ring_dir) as pub:
        pub.publish(b"x")
    with pytest.raises(ringcast.JournalMismatch, match=r'records ring "md\.a"'):
        ringcast.journal.record("md.b", journal, dir=ring_dir)
    # No timestamps recorded: only flat out.
    with pytest.raises(ringcast.InvalidArgument, match="speed max"):
        ringcast.journal.replay(journal, "md.c", dir=ring_dir, speed=1.0)
    # The target ring exists with another shape: refused, nothing published.
    with pytest.raises(ringcast.SchemaMismatch):
        ringcast.journal.replay(journal, "md.b", dir=ring_dir)
    with pytest.raises(ringcast.InvalidArgument, match="positive number of seconds"):
        ringcast.journal.record("md.a", tmp_path / "other", dir=ring_dir, fsync="sometimes")
    with pytest.raises(ringcast.InvalidArgument, match="speed must be a positive number"):
        ringcast.journal.replay(journal, "md.c", dir=ring_dir, speed=0.0)
    # The ring made anew (its sequences restarted) behind a journal that went further.
    with ringcast.Publisher.create(
        "md.a", dtype=REC, capacity=64, dir=ring_dir, exist_ok=True
    ) as old:
        old.unlink()
    with ringcast.Publisher.create("md.a", dtype=REC, capacity=64, dir=ring_dir) as pub:
        pub.publish_batch(make_records(0, 3))
        with pytest.raises(ringcast.JournalMismatch, match="made anew"):
            ringcast.journal.record("md.a", journal, dir=ring_dir)
    bad = run_cli("replay", str(journal), "--to", "md.x", "--speed", "0")
    assert bad.returncode == 2 and "a factor > 0" in bad.stderr
    bad = run_cli("record", "md.a", "--dir", str(journal), "--fsync", "sometimes")
    assert bad.returncode == 2 and "never, always, or an interval" in bad.stderr


def test_a_second_recorder_is_refused_while_the_first_runs(ring_dir, tmp_path):
    journal = tmp_path / "j"
    pub = ringcast.Publisher.create("md.two", dtype=REC, capacity=64, dir=ring_dir)
    first = record(ring_dir, "md.two", journal)
    try:
        deadline = time.monotonic() + 20
        while not (journal / ".lock").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        second = run_cli("record", "md.two", "--dir", str(journal), "--ring-dir", ring_dir)
        assert second.returncode == 1
        assert f"is being written by process {first.pid}" in second.stderr
    finally:
        pub.close()
        first.communicate(timeout=30)


def test_a_following_recorder_outlives_its_publishers_death(ring_dir, tmp_path):
    """``--follow`` (what ``ringcast serve`` runs): a SIGKILLed publisher is
    not the end; the recorder goes on with the publisher that takes over."""
    journal = tmp_path / "j"
    ready = ctx.Event()
    first = ctx.Process(target=publish_then_hang, args=(ring_dir, "md.f", 1000, ready))
    first.start()
    assert ready.wait(30)
    rec = record(ring_dir, "md.f", journal, "--follow", "--json")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if journal.exists() and any(journal.glob("*.rcj")) and len(Journal(journal)) == 1000:
            break
        time.sleep(0.05)
    first.kill()
    first.join(10)
    time.sleep(0.5)
    assert rec.poll() is None, rec.communicate()
    with ringcast.Publisher.create(
        "md.f", dtype=REC, dir=ring_dir, capacity=4096, timestamps=True, exist_ok=True
    ) as second:
        assert second.sequence == 1000
        second.publish_batch(make_records(1000, 1000))
    deadline = time.monotonic() + 30
    while len(Journal(journal)) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    rec.send_signal(signal.SIGTERM)
    report = finish(rec)
    assert (report["recorded"], report["gaps"]) == (2000, 0), report
    v = ringcast.journal.verify(journal)
    assert v["intact"] and v["messages"] == 2000, v
