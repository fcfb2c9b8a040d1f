"""Latency tooling: publish timestamps, LatencyHistogram against known
distributions and the ``hdrhistogram`` package, interval logs read back by
``hdrh.log.HistogramLogReader``, and ``ringcast bench`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

import ringcast
from ringcast import IntervalLog, LatencyHistogram


def _stamped(ring_dir, name="lat", **kw):
    pub = ringcast.Publisher.create(
        name, capacity=256, slot_size=64, dir=ring_dir, timestamps=True, **kw
    )
    sub = ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest")
    return pub, sub


# ------------------------------------------------- the histogram itself ----


def test_percentiles_of_a_known_distribution_within_the_precision():
    rng = np.random.default_rng(7)
    # Lognormal around 2 us with a long tail: the shape latencies have.
    values = rng.lognormal(mean=np.log(2_000), sigma=0.8, size=200_000).astype(np.int64) + 1
    h = LatencyHistogram(digits=3)
    for v in values.tolist():
        h.record(v)
    assert h.count == len(values)
    for p in (1, 10, 50, 90, 99, 99.9, 99.99):
        exact = np.percentile(values, p, method="inverted_cdf")
        got = h.value_at_percentile(p)
        assert abs(got - exact) <= exact * 0.001 + 1, (p, got, exact)
    assert abs(h.mean - values.mean()) <= values.mean() * 0.001
    assert h.min <= values.min() <= h.min * 1.001 + 1
    assert h.max >= values.max()


def test_matches_the_hdrhistogram_package_fed_the_same_values():
    rng = np.random.default_rng(11)
    values = rng.integers(1, 5_000_000, size=50_000).tolist()
    ours = LatencyHistogram(highest=60.0, digits=3)
    theirs = HdrHistogram(1, 60 * 10**9, 3)
    for v in values:
        ours.record(v)
        theirs.record_value(v)
    for p in (50, 90, 99, 99.9, 100):
        assert ours.value_at_percentile(p) == theirs.get_value_at_percentile(p), p
    # Our encoding decodes there, and theirs here, losslessly.
    decoded = HdrHistogram.decode(ours.encode())
    assert decoded.get_total_count() == len(values)
    assert decoded.get_value_at_percentile(99) == theirs.get_value_at_percentile(99)
    back = LatencyHistogram.decode(theirs.encode().decode())
    assert back.count == len(values)
    assert back.value_at_percentile(99.9) == ours.value_at_percentile(99.9)
    conv = ours.to_hdrh()
    assert isinstance(conv, HdrHistogram)
    assert conv.get_total_count() == len(values)


def test_coordinated_omission_correction_with_an_expected_interval():
    # Messages due every 1 us; one stalled for 100 us. Corrected, the stall
    # also stands for the 99 messages that would have been sent meanwhile.
    plain, corrected = LatencyHistogram(), LatencyHistogram(expected_interval=1e-6)
    for h in (plain, corrected):
        for _ in range(1000):
            h.record(500)
        h.record(100_000)
    assert plain.count == 1001
    assert corrected.count == 1001 + 99
    assert plain.value_at_percentile(99) < 1_000
    assert corrected.value_at_percentile(99) > 50_000


def test_intervals_add_and_bad_arguments():
    h = LatencyHistogram()
    h.record(10)
    first = h.take_interval()
    h.record(20)
    h.record(30)
    assert (first.count, h.take_interval().count, h.count) == (1, 2, 3)
    merged = LatencyHistogram()
    merged.add(first)
    merged.add(h.encode())
    assert merged.count == 4
    with pytest.raises(ringcast.InvalidArgument, match="between 0 and 100"):
        h.value_at_percentile(101)
    with pytest.raises(ringcast.InvalidArgument, match="significant digits"):
        LatencyHistogram(digits=7)
    with pytest.raises(ringcast.InvalidArgument, match="positive number of seconds"):
        LatencyHistogram(highest=-1)
    with pytest.raises(ringcast.InvalidArgument, match="not an encoded HdrHistogram"):
        LatencyHistogram.decode("definitely not")
    with pytest.raises(ringcast.InvalidArgument, match="takes a LatencyHistogram"):
        h.add(3.5)
    small = LatencyHistogram(highest=1e-6)
    big = LatencyHistogram()
    big.record(10**9)
    with pytest.raises(ringcast.InvalidArgument, match="larger highest value"):
        small.add(big)
    with pytest.raises(ringcast.InvalidArgument, match="unit must be"):
        h.percentile_distribution(unit="fortnights")
    # Too large values are kept at the top, and counted.
    small.record(10**6)
    assert (small.count, small.saturated) == (1, 1)


def test_percentile_distribution_is_the_standard_table():
    h = LatencyHistogram()
    for v in range(1, 10_001):
        h.record(v * 100)
    text = h.percentile_distribution(unit="us")
    lines = text.splitlines()
    assert lines[0].split() == ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    rows = [line.split() for line in lines[2:] if line and not line.startswith("#")]
    values = [float(r[0]) for r in rows]
    assert values == sorted(values)
    assert rows[-1][1] == "1.000000000000" and rows[-1][2] == "10000"
    median = next(r for r in rows if float(r[1]) >= 0.5)
    assert abs(float(median[0]) - 500.0) < 1.0  # us
    assert "#[Max     =     1000.447" in text or "#[Max     =     1000." in text


# ------------------------------------------------------ ring timestamps ----


def test_messages_carry_publish_times_and_due_times(ring_dir):
    pub, sub = _stamped(ring_dir)
    with pub, sub:
        assert pub.timestamps and sub.timestamps
        assert sub.last_time is None
        before = time.monotonic_ns()
        pub.publish(b"a")
        after = time.monotonic_ns()
        pub.publish_at(b"b", 42)
        assert sub.recv() == b"a"
        assert before <= sub.last_time <= after
        assert sub.recv() == b"b"
        assert sub.last_time == 42
        info = ringcast.ring_info("lat", ring_dir)
        assert info["timestamps"] and info["slot_stride"] == 128
        out = subprocess.run(
            [sys.executable, "-m", "ringcast", "info", "lat", "--dir", ring_dir],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "single-producer, timestamps" in out.stdout


def test_subscriber_records_each_message_latency(ring_dir):
    pub, sub = _stamped(ring_dir)
    with pub, sub:
        sub.record_latency()
        now = time.monotonic_ns()
        # Due 1..50 ms ago: each latency is at least that much.
        for ms in range(1, 51):
            pub.publish_at(b"x" * 64, now - ms * 1_000_000)
        got = sub.recv_batch(100)
        assert len(got) == 50
        lat = sub.latency()
        assert lat.count == 50
        assert lat.min >= 1_000_000 and lat.max >= 50_000_000
        assert lat.max < 1_000_000_000
        assert sub.latency_interval().count == 50
        pub.publish(b"y")
        sub.recv()
        assert sub.latency_interval().count == 1
        final = sub.stop_latency()
        assert final.count == 51
        with pytest.raises(ringcast.InvalidArgument, match="record_latency"):
            sub.latency()


def test_rings_without_timestamps_say_how_to_get_them(ring_dir):
    pub = ringcast.Publisher.create("plain", capacity=16, slot_size=8, dir=ring_dir)
    sub = ringcast.Subscriber.attach("plain", dir=ring_dir)
    with pub, sub:
        assert not pub.timestamps
        with pytest.raises(ringcast.InvalidArgument, match="timestamps"):
            pub.publish_at(b"x", 1)
        with pytest.raises(ringcast.InvalidArgument, match="timestamps"):
            sub.record_latency()
        pub.publish(b"x")
        sub.recv()
        assert sub.last_time is None
    with pytest.raises(ringcast.InvalidArgument, match="timestamps must be"):
        ringcast.Publisher.create("p2", capacity=16, slot_size=8, dir=ring_dir, timestamps=1)


def test_interval_log_reads_back_with_hdrhistogram(tmp_path):
    path = tmp_path / "run.hlog"
    start_unix_ns = 1_700_000_000_000_000_000
    intervals = []
    with IntervalLog(path, start_unix_ns=start_unix_ns, comment="test run") as log:
        for i in range(3):
            h = LatencyHistogram()
            for v in range(1, 1001 * (i + 1)):
                h.record(v * 10)
            log.append(h, float(i), 1.0)
            intervals.append(h)
    reader = HistogramLogReader(str(path), HdrHistogram(1, 60 * 10**9, 3))
    for i, h in enumerate(intervals):
        got = reader.get_next_interval_histogram()
        assert got is not None, i
        assert got.get_total_count() == h.count
        assert got.get_value_at_percentile(99) == h.value_at_percentile(99)
        assert got.get_start_time_stamp() == pytest.approx((1_700_000_000.0 + i) * 1000)
    assert reader.get_start_time_sec() == pytest.approx(1_700_000_000.0)
    assert reader.get_next_interval_histogram() is None
    with pytest.raises(ringcast.InvalidArgument, match="closed"):
        log.append(intervals[0], 9.0, 1.0)


# ------------------------------------------------------ ringcast bench ----


def _bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ringcast", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _bench_dirs() -> set[str]:
    """The `ringcast bench` ring directories in /dev/shm now (any process's)."""
    return {p for p in os.listdir("/dev/shm") if p.startswith("ringcast-bench-")}


def test_bench_end_to_end_with_log_plot_and_progress(tmp_path):
    log, png = tmp_path / "bench.hlog", tmp_path / "bench.png"
    # Other processes on the machine (another user's bench, a killed one) may
    # have ring directories of their own: only this run's count.
    before = _bench_dirs()
    out = _bench(
        "--duration",
        "1",
        "--warmup",
        "0.5",
        "--interval",
        "0.25",
        "--rate",
        "20000",
        "--log",
        str(log),
        "--plot",
        str(png),
    )
    assert out.returncode == 0, out.stderr
    # Progress: one line per measured interval while it ran.
    progress = [line for line in out.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 4, out.stderr
    assert "msg/s" in progress[0] and "p99" in progress[0]
    assert "Value     Percentile TotalCount 1/(1-Percentile)" in out.stdout
    assert "0 mismatched" in out.stdout
    assert "coordinated omission corrected" in out.stdout
    # The log holds every measured message, interval by interval.
    reader = HistogramLogReader(str(log), HdrHistogram(1, 60 * 10**9, 3))
    counts = []
    while (h := reader.get_next_interval_histogram()) is not None:
        counts.append(h.get_total_count())
    assert len(counts) == 4
    total = int(out.stdout.split(" received")[0].rsplit(": ", 1)[1].replace(",", ""))
    assert sum(counts) == total
    assert 20_000 * 0.9 <= total <= 20_000 * 1.1 + 100
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # No ring is left behind.
    assert not _bench_dirs() - before


def test_bench_flat_out_bounded_json_loses_nothing():
    out = _bench(
        "--duration",
        "1",
        "--warmup",
        "0",
        "--rate",
        "0",
        "--bounded",
        "--subscribers",
        "2",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["lost"] == 0 and result["mismatched"] == 0
    # Two subscribers each read everything published.
    assert result["received"] == 2 * result["published"]
    assert result["latency_ns"]["count"] == result["received"]
    assert HdrHistogram.decode(result["histogram"]).get_total_count() == result["received"]
    assert result["received_per_second"] > 100_000


def test_bench_in_a_given_directory_runs_again_and_leaves_nothing(ring_dir):
    for _ in range(2):
        out = _bench("--duration", "0.3", "--warmup", "0", "--dir", ring_dir, "--json")
        assert out.returncode == 0, out.stderr
    assert os.listdir(ring_dir) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--rate", "-5"], "--rate must be > 0"),
        (["--capacity", "1000"], "power of two"),
        (["--sub-cpu", "x"], "--sub-cpu takes CPU numbers"),
        (["--pub-cpu", "4095"], "CPU 4095"),
        (["--warmup", "-1"], "--warmup must be >= 0"),
        (["--interval", "0.001"], "--interval must be 0.01..3600"),
    ],
)
def test_bench_refuses_bad_settings_clearly(args, says):
    out = _bench("--duration", "0.2", "--warmup", "0", *args, timeout=60)
    assert out.returncode != 0
    assert says in out.stderr, out.stderr


def test_tooling_refusals_say_what_to_do(tmp_path, ring_dir, monkeypatch):
    from ringcast import _bench, _native

    with pytest.raises(ringcast.RingError, match="cannot write the interval log"):
        IntervalLog(tmp_path / "missing" / "run.hlog")
    with ringcast.Publisher.create(
        "small", capacity=16, slot_size=16, dir=ring_dir, timestamps=True
    ) as pub:
        with pytest.raises(ringcast.MessageTooLarge, match="do not fit the ring's 16-byte slots"):
            _native.bench_publish(pub, size=64, rate=None, start_ns=0, end_ns=0)
    empty = _bench.BenchResult(
        options=_bench.BenchOptions(),
        histogram=LatencyHistogram(),
        published=0,
        received=0,
        lost=0,
        mismatched=0,
        seconds=0.0,
        max_behind_ns=0,
        late=0,
        intervals=0,
        cpus={},
    )
    with pytest.raises(ringcast.InvalidArgument, match="nothing to plot"):
        _bench.plot(empty, str(tmp_path / "x.png"))
    # Optional packages that are missing are named with the pip command.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ringcast.InvalidArgument, match="pip install matplotlib"):
        _bench.plot(empty, str(tmp_path / "x.png"))
    monkeypatch.setitem(sys.modules, "hdrh.histogram", None)
    with pytest.raises(ImportError, match="pip install hdrhistogram"):
        LatencyHistogram().to_hdrh()
