"""Memory control across processes: huge pages, mlock, prefault, NUMA
placement, core pinning, ``ringcast info``, and every refusal path.

Where the host cannot grant something (no huge pages, a single NUMA node),
the test checks the documented refusal or report instead; CI reserves huge
pages first and sets RINGCAST_REQUIRE_HUGE_PAGES=1 so that their absence
fails (see the ``huge_dir`` fixture)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import ringcast
from _workers import REC, hold_publisher, kill, lock_with_low_memlock, make_records
from conftest import free_huge_pages
from test_crossprocess import assert_exact, run_stream

ctx = mp.get_context("spawn")
MIB2 = 2 << 20
GIB = 1 << 30
ALLOWED = sorted(ringcast.thread_cpus())


def _files(d: str) -> list[str]:
    return sorted(os.listdir(d))


def test_huge_page_ring_across_processes_locked_and_pinned(ring_dir, huge_dir):
    if huge_dir is None:
        with pytest.raises(ringcast.HugePagesUnavailable, match="huge"):
            ringcast.Publisher.create(
                "hp", slot_size=64, capacity=1024, dir=ring_dir, huge_pages="require"
            )
        return
    total = 300_000
    seen = {}

    def inspect():
        seen.update(ringcast.ring_info("hp", ring_dir))

    results = run_stream(
        ring_dir,
        "hp",
        total=total,
        capacity=1 << 14,
        subscribers=[False, False],
        create_opts={
            "huge_pages": "require",
            "huge_dir": huge_dir,
            "lock_memory": True,
            "pin_cpu": ALLOWED[0],
        },
        attach_opts=[
            {"lock_memory": True, "prefault": True, "pin_cpu": ALLOWED[-1]},
            {"prefault": True},
        ],
        while_attached=inspect,
    )
    for r in results:
        assert_exact(r, total)
        mem = r["memory"]
        assert mem["huge_pages"] and mem["page_size"] == MIB2, mem
        assert mem["bytes_at"].startswith(huge_dir), mem
        assert mem["prefaulted"]
    assert sorted(r["memory"]["locked"] for r in results) == [False, True]
    assert seen["huge_pages"] and seen["page_size"] == MIB2
    assert seen["file_len"] % MIB2 == 0 and seen["file_len"] >= seen["ring_bytes"]
    pub = seen["publisher"]
    assert pub["locked"] and pub["prefaulted"] and pub["pinned_cpu"] == ALLOWED[0]
    subs = sorted(seen["subscribers"], key=lambda s: s["locked"])
    assert [s["locked"] for s in subs] == [False, True]
    assert subs[1]["pinned_cpu"] == ALLOWED[-1]
    # The publisher unlinked the ring: its name and its huge-page file are gone.
    assert _files(ring_dir) == [] and _files(huge_dir) == []


def test_huge_page_publisher_killed_then_taken_over(ring_dir, huge_dir):
    # Without huge pages on this host: the same crash and takeover on the
    # fallback pages of huge_pages="prefer".
    opts = {"huge_pages": "require", "huge_dir": huge_dir} if huge_dir else {"huge_pages": "prefer"}
    ready = ctx.Event()
    proc = ctx.Process(target=hold_publisher, args=(ring_dir, "crash", 500, ready, opts))
    proc.start()
    assert ready.wait(30)
    sub = ringcast.Subscriber.attach("crash", dir=ring_dir, start="oldest")
    kill(proc)
    assert not sub.publisher_alive
    with ringcast.Publisher.create(
        "crash", dtype=REC, capacity=1024, dir=ring_dir, exist_ok=True, **opts
    ) as pub:
        assert pub.memory.huge_pages == (huge_dir is not None)
        pub.publish_batch(make_records(500, 100))
        got = sub.recv_batch(1000)
        assert list(got["seq"]) == list(range(600))
        pub.unlink()
    sub.close()
    assert _files(huge_dir or ring_dir) == []


def test_one_gib_pages_where_the_host_offers_them(ring_dir):
    free, mount = free_huge_pages(GIB)
    if free < 1 or mount is None:
        with pytest.raises(ringcast.HugePagesUnavailable, match="1 GiB"):
            ringcast.Publisher.create(
                "g", slot_size=64, capacity=64, dir=ring_dir, huge_pages="require",
                huge_page_size="1G",
            )  # fmt: skip
        return
    with ringcast.Publisher.create(
        "g", slot_size=64, capacity=64, dir=ring_dir, huge_pages="require", huge_page_size="1G"
    ) as pub:
        assert pub.memory.page_size == GIB
        with ringcast.Subscriber.attach("g", dir=ring_dir) as sub:
            pub.publish(b"one gib")
            assert sub.recv(timeout=5) == b"one gib"
            assert sub.memory.page_size == GIB
        pub.unlink()


def test_prefer_falls_back_with_a_warning_that_says_why(ring_dir, tmp_path):
    with pytest.warns(ringcast.HugePagesWarning, match="not on a hugetlbfs filesystem"):
        pub = ringcast.Publisher.create(
            "p", slot_size=64, capacity=64, dir=ring_dir, huge_pages="prefer", huge_dir=tmp_path
        )
    with pub:
        report = pub.memory
        assert not report.huge_pages and "hugetlbfs" in report.huge_pages_fallback
        with ringcast.Subscriber.attach("p", dir=ring_dir) as sub:
            pub.publish(b"x")
            assert sub.recv(timeout=5) == b"x"


def test_require_refusals_name_what_to_configure(ring_dir, tmp_path):
    cases = [
        ({"huge_dir": tmp_path}, "RINGCAST_HUGE_DIR"),
        ({"huge_page_size": 4 << 20}, "offers no 4 MiB huge pages"),
    ]
    # More 2 MiB pages than the host has free: the pool must be raised.
    free, _ = free_huge_pages(MIB2)
    big = {"slot_size": (free + 2) * 32 + 64, "capacity": 1 << 16}
    for extra, expected in cases:
        with pytest.raises(ringcast.HugePagesUnavailable, match=expected):
            ringcast.Publisher.create(
                "r", slot_size=64, capacity=64, dir=ring_dir, huge_pages="require", **extra
            )
    with pytest.raises(ringcast.HugePagesUnavailable, match=r"nr_hugepages|mount") as err:
        ringcast.Publisher.create("r", dir=ring_dir, huge_pages="require", **big)
    assert isinstance(err.value, OSError)
    assert _files(ring_dir) == []


def test_a_normal_ring_is_not_taken_over_by_a_huge_page_requirement(ring_dir, huge_dir):
    ringcast.Publisher.create("n", slot_size=8, capacity=8, dir=ring_dir).close()
    opts = {"huge_dir": huge_dir} if huge_dir else {}
    with pytest.raises(ringcast.HugePagesUnavailable, match=r"normal pages|huge"):
        ringcast.Publisher.create(
            "n", slot_size=8, capacity=8, dir=ring_dir, exist_ok=True, huge_pages="require", **opts
        )


def test_bad_memory_arguments_are_refused(ring_dir):
    base = {"slot_size": 8, "capacity": 8, "dir": ring_dir}
    for bad, match in [
        ({"huge_pages": "yes"}, "huge_pages must be"),
        ({"huge_pages": "require", "huge_page_size": "2Q"}, "huge_page_size must be"),
        ({"huge_pages": "require", "huge_page_size": 12345}, "not a page size"),
        ({"huge_page_size": "2M"}, "apply only with huge_pages"),
        ({"lock_memory": 1}, "lock_memory must be True or False"),
        ({"prefault": None}, "prefault must be True or False"),
        ({"numa_node": -1}, "numa_node must be"),
        ({"numa_node": 0, "numa_cpu": 0}, "not both"),
        ({"pin_cpu": "0"}, "pin_cpu must be"),
    ]:
        with pytest.raises(ringcast.InvalidArgument, match=match):
            ringcast.Publisher.create("bad", **base, **bad)
    assert _files(ring_dir) == []


def test_lock_memory_refused_under_a_low_rlimit_names_the_limit(ring_dir):
    os.chmod(ring_dir, 0o1777)  # shared like the default directory (sticky)
    results = ctx.Queue()
    limit = 64 << 10
    p = ctx.Process(target=lock_with_low_memlock, args=(ring_dir, "lk", "create", limit, results))
    p.start()
    kind, msg = results.get(timeout=60)
    p.join(30)
    assert kind == "MemoryLockFailed", msg
    assert f"RLIMIT_MEMLOCK is {limit} bytes" in msg and "ulimit -l" in msg, msg
    assert _files(ring_dir) == []
    # A subscriber asking to lock a ring bigger than its limit is refused the same way.
    with ringcast.Publisher.create(
        "lk", slot_size=1000, capacity=1024, dir=ring_dir, mode=0o666
    ) as pub:
        p = ctx.Process(
            target=lock_with_low_memlock, args=(ring_dir, "lk", "attach", limit, results)
        )
        p.start()
        kind, msg = results.get(timeout=60)
        p.join(30)
        assert kind == "MemoryLockFailed", msg
        assert str(pub.memory.mapped_bytes) in msg
        assert pub.subscriber_count == 0  # the refused subscriber left no record


def test_lock_and_prefault_are_reported_by_every_end(ring_dir):
    with ringcast.Publisher.create(
        "lp", slot_size=64, capacity=256, dir=ring_dir, lock_memory=True
    ) as pub:
        assert pub.memory.locked and pub.memory.prefaulted
        locked = ringcast.Subscriber.attach("lp", dir=ring_dir, lock_memory=True)
        touched = ringcast.Subscriber.attach("lp", dir=ring_dir, prefault=True)
        with locked, touched:
            assert (locked.memory.locked, locked.memory.prefaulted) == (True, False)
            assert (touched.memory.locked, touched.memory.prefaulted) == (False, True)
            # A prefaulted end has every sampled page resident.
            assert touched.memory.pages_not_resident in (0, None)
            info = ringcast.ring_info("lp", ring_dir)
            assert sorted((s["locked"], s["prefaulted"]) for s in info["subscribers"]) == [
                (False, True),
                (True, False),
            ]
    no_prefault = ringcast.Publisher.create(
        "np", slot_size=64, capacity=256, dir=ring_dir, prefault=False
    )
    with no_prefault:
        assert not no_prefault.memory.prefaulted


def test_numa_placement_is_applied_and_reported(ring_dir):
    nodes = ringcast.host_memory()["numa_nodes_online"]
    node = sorted(nodes)[-1]
    with ringcast.Publisher.create(
        "nu", slot_size=64, capacity=1024, dir=ring_dir, numa_node=node
    ) as pub:
        report = pub.memory
        assert report.numa_node == node
        assert report.numa_nodes_online == tuple(sorted(nodes))
        if report.pages_sampled is not None:  # a kernel with NUMA support
            assert report.pages_by_node == {node: report.pages_sampled}
        assert ringcast.ring_info("nu", ring_dir)["numa_node"] == node
    with ringcast.Publisher.create(
        "nc", slot_size=64, capacity=64, dir=ring_dir, numa_cpu=ALLOWED[-1]
    ) as pub:
        assert pub.memory.numa_node in nodes
    with pytest.raises(ringcast.NumaNodeUnavailable, match="online nodes are"):
        ringcast.Publisher.create("nx", slot_size=8, capacity=8, dir=ring_dir, numa_node=4000)
    with pytest.raises(ringcast.CpuUnavailable, match="does not exist or is offline"):
        ringcast.Publisher.create("nx", slot_size=8, capacity=8, dir=ring_dir, numa_cpu=100_000)
    assert not os.path.exists(os.path.join(ring_dir, "nx.ring"))


def _in_thread(fn):
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the caller
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_pin_thread_pins_only_the_calling_thread():
    before = ringcast.thread_cpus()
    cpu = ALLOWED[-1]

    def pin_and_look():
        previous = ringcast.pin_thread(cpu)
        return previous, ringcast.thread_cpus()

    previous, pinned = _in_thread(pin_and_look)
    assert previous == before and pinned == {cpu}
    assert ringcast.thread_cpus() == before  # this thread was not moved
    assert _in_thread(lambda: ringcast.pin_thread(ALLOWED)) == before


def test_bad_cores_are_refused_with_the_cores_that_exist(ring_dir):
    for cpu in (os.cpu_count() + 64, 1 << 20):
        with pytest.raises(ringcast.CpuUnavailable, match="online CPUs"):
            _in_thread(lambda cpu=cpu: ringcast.pin_thread(cpu))
    for bad in (-1, "1", 1.5, True):
        with pytest.raises(ringcast.InvalidArgument, match="CPU"):
            ringcast.pin_thread(bad)
    with pytest.raises(ringcast.InvalidArgument, match="at least one CPU"):
        ringcast.pin_thread([])
    with pytest.raises(ringcast.CpuUnavailable):
        _in_thread(
            lambda: ringcast.Publisher.create(
                "pc", slot_size=8, capacity=8, dir=ring_dir, pin_cpu=1 << 20
            )
        )
    assert _files(ring_dir) == []
    with ringcast.Publisher.create("pc", slot_size=8, capacity=8, dir=ring_dir):
        with pytest.raises(ringcast.CpuUnavailable):
            _in_thread(lambda: ringcast.Subscriber.attach("pc", dir=ring_dir, pin_cpu=1 << 20))


def test_pinned_subscriber_in_its_own_thread_reads_everything(ring_dir):
    with ringcast.Publisher.create("pt", dtype=REC, capacity=1 << 13, dir=ring_dir) as pub:

        def read():
            with ringcast.Subscriber.attach(
                "pt", dir=ring_dir, pin_cpu=ALLOWED[-1], prefault=True
            ) as sub:
                started.set()
                got = []
                while len(got) < 5000:
                    got.extend(sub.recv_batch(1000, timeout=10)["seq"].tolist())
                return got, ringcast.thread_cpus(), sub.memory.pinned_cpu

        started = threading.Event()
        result = {}
        t = threading.Thread(target=lambda: result.update(v=read()))
        t.start()
        assert started.wait(30)
        for i in range(0, 5000, 500):
            pub.publish_batch(make_records(i, 500))
        t.join(60)
        got, cpus, pinned = result["v"]
        assert got == list(range(5000))
        assert cpus == {ALLOWED[-1]} and pinned == ALLOWED[-1]


def test_info_command_reports_layout_memory_and_ends(ring_dir):
    with ringcast.Publisher.create(
        "inf", dtype=REC, capacity=256, dir=ring_dir, bounded=True, lock_memory=True
    ) as pub, ringcast.Subscriber.attach(
        "inf", dir=ring_dir, prefault=True, wait=ringcast.WaitStrategy.yielding()
    ):  # fmt: skip
        pub.publish_batch(make_records(0, 10))
        cmd = [sys.executable, "-m", "ringcast", "info", "inf", "--dir", ring_dir]
        text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        for expected in (
            "256 slots x 64 bytes (fixed-size), stride 128",
            "bounded (watermark 256)",
            "4 KiB (tmpfs)",
            "locked, prefaulted",
            "subscriber 0:",
            "position 0 (lag 10)",
            "wait yield,",
            "10 messages published",
        ):
            assert expected in text, text
        data = json.loads(
            subprocess.run([*cmd, "--json"], capture_output=True, text=True, check=True).stdout
        )
        assert data["capacity"] == 256 and data["page_size"] == 4096
        assert data["publisher"]["locked"] and data["publisher"]["pid"] == os.getpid()
        assert data["subscribers"][0]["prefaulted"] and not data["subscribers"][0]["locked"]
        assert (data["subscribers"][0]["wait"], data["subscribers"][0]["parked"]) == ("yield", 0)
        assert "seq" in data["schema"]
        # Inspecting attached nothing.
        assert pub.subscriber_count == 1
    missing = subprocess.run(
        [sys.executable, "-m", "ringcast", "info", "nope", "--dir", ring_dir],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "no ring named 'nope'" in missing.stderr.replace('"', "'")


def test_first_message_after_prefault_pays_no_page_fault(ring_dir):
    """With prefault (the default) the publisher's first writes to every slot
    take no page fault; without it, they take about one per page touched."""
    import resource

    def faults_publishing(prefault: bool, name: str) -> int:
        with ringcast.Publisher.create(
            name, slot_size=4000, capacity=256, dir=ring_dir, prefault=prefault
        ) as pub:
            msg = np.zeros(4000, dtype=np.uint8).tobytes()
            before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
            for _ in range(256):
                pub.publish(msg)
            return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cold = _in_thread(lambda: faults_publishing(False, "cold"))
        warm = _in_thread(lambda: faults_publishing(True, "warm"))
    assert warm == 0, (warm, cold)
    assert cold >= 200, (warm, cold)


@pytest.mark.parametrize("heads_apart", [False, True])
def test_slot_heads_in_slots_or_apart_carry_the_same_records(ring_dir, heads_apart):
    """A 64-byte record's head costs its slot a second line: heads_apart=True
    puts the heads in a table after the slots (one line a slot). A lapped
    reader gets every record it did not lose exactly, and counts the rest,
    from either layout."""
    dt = np.dtype([("seq", "<u8"), ("rest", "<u8", (7,))])
    with ringcast.Publisher.create(
        "heads", dtype=dt, capacity=64, dir=ring_dir, heads_apart=heads_apart
    ) as pub:
        info = ringcast.ring_info("heads", ring_dir)
        assert info["heads_apart"] is heads_apart
        assert info["slot_stride"] == (64 if heads_apart else 128)
        slots_end = info["header_len"] + 64 * info["slot_stride"]
        assert info["heads_offset"] == (slots_end if heads_apart else info["header_len"])
        assert info["ring_bytes"] == slots_end + (64 * 16 if heads_apart else 0)
        sub = ringcast.Subscriber.attach("heads", dir=ring_dir)
        recs = np.zeros(100, dtype=dt)
        recs["seq"] = np.arange(100)
        recs["rest"] = np.arange(100)[:, None] * 7 + np.arange(7)
        pub.publish_batch(recs)  # laps the 64-slot ring
        got = sub.recv_batch(200, timeout=0)
        assert sub.lost >= 36 and sub.lost + len(got) == 100
        assert (got == recs[sub.lost :]).all()
        pub.publish_batch(recs[:10])
        assert (sub.recv_batch(200, timeout=0) == recs[:10]).all()
    text = subprocess.run(
        [sys.executable, "-m", "ringcast", "info", "heads", "--dir", ring_dir],
        capture_output=True,
        text=True,
    ).stdout
    assert ("slot heads apart" in text) is heads_apart
