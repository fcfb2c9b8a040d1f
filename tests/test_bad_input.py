"""Every documented error, each raised by a real case, with a message that says what to do."""

from __future__ import annotations

import multiprocessing as mp
import os
import struct

import numpy as np
import pytest

import ringcast
from _workers import REC, as_nobody

ctx = mp.get_context("spawn")


def ring_file(ring_dir, name="bad"):
    with ringcast.Publisher.create(name, dtype=REC, capacity=64, dir=ring_dir) as pub:
        return str(pub.path)


def test_every_error_derives_from_ring_error():
    for name in ringcast.errors.__all__:
        cls = getattr(ringcast, name)
        base = ringcast.RingWarning if issubclass(cls, Warning) else ringcast.RingError
        assert issubclass(cls, base), name
    assert issubclass(ringcast.HugePagesWarning, ringcast.RingWarning)


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "nul\0byte", "sp ace", "x" * 201])
def test_invalid_names(ring_dir, name):
    with pytest.raises(ringcast.InvalidName, match=r"md\.quotes"):
        ringcast.Publisher.create(name, slot_size=8, capacity=4, dir=ring_dir)
    with pytest.raises(ringcast.InvalidName):
        ringcast.Subscriber.attach(name, dir=ring_dir)


def test_ring_not_found_lists_what_is_there(ring_dir):
    ring_file(ring_dir, "present")
    with pytest.raises(ringcast.RingNotFound, match="rings there: present") as e:
        ringcast.Subscriber.attach("absent", dir=ring_dir)
    assert isinstance(e.value, FileNotFoundError)


def test_ring_exists_without_exist_ok(ring_dir):
    ring_file(ring_dir, "twice")
    with pytest.raises(ringcast.RingExists, match="exist_ok=True"):
        ringcast.Publisher.create("twice", dtype=REC, capacity=64, dir=ring_dir)


def test_publisher_exists_in_same_process(ring_dir):
    with ringcast.Publisher.create("one", dtype=REC, capacity=64, dir=ring_dir):
        for exist_ok in (False, True):
            with pytest.raises(ringcast.PublisherExists, match=f"pid {os.getpid()}"):
                ringcast.Publisher.create(
                    "one", dtype=REC, capacity=64, dir=ring_dir, exist_ok=exist_ok
                )


def test_schema_mismatch_cases(ring_dir):
    ring_file(ring_dir, "s")
    with pytest.raises(ringcast.SchemaMismatch, match=r"capacity=64"):
        ringcast.Publisher.create("s", dtype=REC, capacity=128, dir=ring_dir, exist_ok=True)
    with pytest.raises(ringcast.SchemaMismatch):
        ringcast.Publisher.create("s", dtype=np.float64, capacity=64, dir=ring_dir, exist_ok=True)
    with ringcast.Publisher.create("s", dtype=REC, capacity=64, dir=ring_dir, exist_ok=True) as pub:
        with pytest.raises(ringcast.SchemaMismatch, match="astype"):
            pub.publish(np.zeros(8, dtype=np.float64))
        with pytest.raises(ringcast.SchemaMismatch):
            pub.publish_batch(np.zeros(3, dtype=[("a", "<u8")]))
        sub = ringcast.Subscriber.attach("s", dir=ring_dir)
        with pytest.raises(ringcast.SchemaMismatch, match=r"numpy\.empty"):
            sub.recv_batch_into(np.zeros(4, dtype=np.float64))
        with pytest.raises(ringcast.SchemaMismatch, match=r"raw bytes|dtype"):
            ringcast.Subscriber.attach("s", dir=ring_dir, dtype=[("x", "u1")])


def test_message_sizes(ring_dir):
    with ringcast.Publisher.create("sz", slot_size=16, capacity=4, dir=ring_dir) as pub:
        with pytest.raises(ringcast.MessageTooLarge, match="larger slot_size"):
            pub.publish(b"x" * 17)
        with pytest.raises(ringcast.MessageTooLarge, match="nothing was published"):
            pub.publish_batch([b"ok", b"y" * 17])
        assert pub.sequence == 0  # the batch was refused whole
        sub = ringcast.Subscriber.attach("sz", dir=ring_dir, start="oldest")
        pub.publish(b"z" * 12)
        with pytest.raises(ringcast.BufferTooSmall, match="nothing was consumed"):
            sub.recv_into(bytearray(4), timeout=1)
        assert sub.recv_into(bytearray(16), timeout=1) == 12
    with ringcast.Publisher.create("typed", dtype=REC, capacity=4, dir=ring_dir) as pub:
        with pytest.raises(ringcast.InvalidArgument, match="64-byte records"):
            pub.publish(b"short")
        with pytest.raises(ringcast.InvalidArgument, match="publish_batch"):
            pub.publish(np.zeros(2, dtype=REC))


def test_creation_arguments(ring_dir):
    for kwargs, match in [
        ({"capacity": 1000, "slot_size": 8}, "power of two.*512 or 1024"),
        ({"capacity": 1, "slot_size": 8}, "power of two"),
        ({"capacity": 8, "slot_size": 0}, "slot_size"),
        ({"capacity": 8}, "exactly one"),
        ({"capacity": 8, "slot_size": 8, "dtype": REC}, "exactly one"),
        ({"capacity": 8, "dtype": object}, "Python objects"),
        ({"capacity": 8, "dtype": "not-a-dtype"}, "numpy dtype"),
        ({"capacity": 8, "slot_size": 8, "max_subscribers": 0}, "max_subscribers"),
        ({"capacity": 8, "slot_size": 8, "mode": 0o7777}, "mode"),
        ({"capacity": -1, "slot_size": 8}, "capacity"),
    ]:
        with pytest.raises(ringcast.InvalidArgument, match=match):
            ringcast.Publisher.create("args", dir=ring_dir, **kwargs)
    with pytest.raises(ringcast.InvalidArgument, match="start"):
        ringcast.Subscriber.attach("args", dir=ring_dir, start="newest")
    with pytest.raises(ringcast.InvalidArgument, match="not a directory"):
        ringcast.Publisher.create("x", slot_size=8, capacity=4, dir=ring_file(ring_dir))


def test_truncated_ring_file_is_refused(ring_dir):
    path = ring_file(ring_dir)
    with open(path, "rb") as f:
        good = f.read()
    for size in (0, 100, len(good) // 2, len(good) - 1):
        with open(path, "wb") as f:
            f.write(good[:size])
        with pytest.raises(ringcast.RingCorrupt, match=r"truncated|bytes") as e:
            ringcast.Subscriber.attach("bad", dir=ring_dir)
        assert "unlink it" in str(e.value)


def test_random_header_is_refused(ring_dir):
    path = ring_file(ring_dir)
    size = os.path.getsize(path)
    rng = np.random.default_rng(7)
    for _ in range(20):
        with open(path, "r+b") as f:
            f.write(rng.bytes(4096))
        assert os.path.getsize(path) == size
        with pytest.raises(ringcast.RingCorrupt):
            ringcast.Subscriber.attach("bad", dir=ring_dir)


def test_damaged_fields_are_refused(ring_dir):
    path = ring_file(ring_dir)
    with open(path, "r+b") as f:
        f.seek(16)  # capacity
        f.write(struct.pack("<Q", 128))
    with pytest.raises(ringcast.RingCorrupt, match="checksum"):
        ringcast.Subscriber.attach("bad", dir=ring_dir)
    with pytest.raises(ringcast.RingCorrupt):
        ringcast.Publisher.create("bad", dtype=REC, capacity=64, dir=ring_dir, exist_ok=True)


def test_other_version_is_incompatible(ring_dir):
    path = ring_file(ring_dir)
    with open(path, "r+b") as f:
        f.seek(8)
        f.write(struct.pack("<I", ringcast.FORMAT_VERSION + 1))
    newer = ringcast.FORMAT_VERSION + 1
    with pytest.raises(ringcast.IncompatibleVersion, match=rf"version {newer}.*same ringcast"):
        ringcast.Subscriber.attach("bad", dir=ring_dir)


def test_not_a_ring_at_all(ring_dir):
    with open(os.path.join(ring_dir, "text.ring"), "w") as f:
        f.write("hello " * 2000)
    with pytest.raises(ringcast.RingCorrupt, match="RINGCAST"):
        ringcast.Subscriber.attach("text", dir=ring_dir)


def test_subscriber_table_full(ring_dir):
    with ringcast.Publisher.create(
        "full", slot_size=8, capacity=4, dir=ring_dir, max_subscribers=2
    ):
        a = ringcast.Subscriber.attach("full", dir=ring_dir)
        b = ringcast.Subscriber.attach("full", dir=ring_dir)
        with pytest.raises(ringcast.SubscriberTableFull, match="max_subscribers"):
            ringcast.Subscriber.attach("full", dir=ring_dir)
        a.close()
        ringcast.Subscriber.attach("full", dir=ring_dir).close()
        b.close()


def test_buffers_that_cannot_be_used(ring_dir):
    with ringcast.Publisher.create("buf", slot_size=8, capacity=4, dir=ring_dir) as pub:
        sub = ringcast.Subscriber.attach("buf", dir=ring_dir)
        with pytest.raises(TypeError, match="bytes-like"):
            pub.publish(12345)
        pub.publish(b"1234")
        with pytest.raises(BufferError):
            sub.recv_into(b"read-only bytes", timeout=1)
        with pytest.raises(ringcast.InvalidArgument, match="read-only"):
            ro = np.zeros(8, dtype=np.uint8)
            ro.flags.writeable = False
            sub.recv_into(ro, timeout=1)
        with pytest.raises(ringcast.InvalidArgument, match="C-contiguous"):
            pub.publish(np.zeros((4, 4), dtype=np.uint8)[:, 0])
        assert sub.recv(timeout=1) == b"1234"  # nothing was lost to the errors


def test_permission_denied(ring_dir):
    """Another user cannot open a 0o600 ring. As root (which ignores permission
    bits) the attach runs in a child that switched to the user nobody."""
    os.chmod(ring_dir, 0o755)
    path = ring_file(ring_dir, "private")  # mode 0o600
    if os.geteuid() == 0:
        results = ctx.Queue()
        p = ctx.Process(target=as_nobody, args=("attach", ring_dir, "private", results))
        p.start()
        kind, msg = results.get(timeout=30)
        p.join(10)
    else:
        os.chmod(path, 0)
        try:
            ringcast.Subscriber.attach("private", dir=ring_dir)
            kind, msg = "ok", ""
        except ringcast.RingError as e:
            kind, msg = type(e).__name__, str(e)
    assert kind == "RingPermissionError", msg
    assert "mode=0o660" in msg


def run_as_nobody(action: str, ring_dir: str, name: str) -> tuple[str, str]:
    results = ctx.Queue()
    p = ctx.Process(target=as_nobody, args=(action, ring_dir, name, results))
    p.start()
    got = results.get(timeout=30)
    p.join(10)
    return got


def test_creating_in_a_directory_one_cannot_write(ring_dir):
    if os.geteuid() != 0:
        os.chmod(ring_dir, 0o555)
        with pytest.raises(ringcast.RingPermissionError, match="create files in"):
            ringcast.Publisher.create("nowrite", slot_size=8, capacity=8, dir=ring_dir)
        return
    os.chmod(ring_dir, 0o755)  # root's directory: nobody may not create files there
    kind, msg = run_as_nobody("create", ring_dir, "nowrite")
    assert kind == "RingPermissionError", msg
    assert f"create files in {ring_dir}" in msg


def test_full_filesystem_is_reported_at_creation(tmp_path):
    """The ring's pages are reserved when it is created, so a full /dev/shm is
    an error then, not a crash on first write."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o size=1m tmpfs {mnt}") != 0:
        pytest.skip("needs root and mount(2) to make a 1 MiB filesystem")
    try:
        with pytest.raises(ringcast.RingError, match=r"not enough space.*lower capacity"):
            ringcast.Publisher.create("big", slot_size=1024, capacity=1 << 12, dir=mnt)
        assert os.listdir(mnt) == []  # the temporary file is gone too
    finally:
        os.system(f"umount {mnt}")


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("bounded", "no"),
        ("bounded", 1),
        ("exist_ok", "yes"),
        ("timestamps", "False"),
        ("heads_apart", "yes"),
    ],
)
def test_flags_must_be_booleans(ring_dir, flag, value):
    """bounded="no" used to make a bounded ring (any non-empty string is true)."""
    with pytest.raises(ringcast.InvalidArgument, match=f"{flag} must be True or False"):
        ringcast.Publisher.create("flags", slot_size=8, capacity=8, dir=ring_dir, **{flag: value})
    assert ringcast.list_rings(ring_dir) == []
    if flag != "exist_ok":  # not a Bus.publisher() argument
        bus = ringcast.Bus("b", dir=ring_dir)
        with pytest.raises(ringcast.InvalidArgument, match=f"{flag} must be True or False"):
            bus.publisher("t", slot_size=8, capacity=8, **{flag: value})


@pytest.mark.parametrize("ticks", [0, 101, 2**20])
def test_percentile_distribution_ticks_are_bounded(ticks):
    h = ringcast.LatencyHistogram()
    h.record(1000)
    with pytest.raises(ringcast.InvalidArgument, match="ticks must be between 1 and 100"):
        h.percentile_distribution("us", ticks)
    assert "Percentile" in h.percentile_distribution("us", 100)


def test_close_from_another_thread_ends_a_publish_waiting_for_room(ring_dir):
    """It used to raise RuntimeError("Already borrowed") in the closing thread."""
    import threading
    import time

    pub = ringcast.Publisher.create("full", slot_size=8, capacity=4, dir=ring_dir, bounded=True)
    sub = ringcast.Subscriber.attach("full", dir=ring_dir)  # never reads
    for _ in range(4):
        pub.publish(b"x")
    outcome = {}

    def publish():
        t0 = time.monotonic()
        try:
            pub.publish(b"y", timeout=30)
            outcome["ended"] = "published"
        except ringcast.RingError as e:
            outcome["ended"] = type(e).__name__
            outcome["message"] = str(e)
        outcome["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=publish)
    t.start()
    time.sleep(0.3)
    with pytest.raises(ringcast.RingError, match="busy"):
        pub.sequence  # noqa: B018 (the getter itself is under test)
    pub.close()  # from this thread, while the other waits
    t.join(10)
    assert not t.is_alive()
    assert outcome["ended"] == "RingClosed", outcome
    assert "closed while this publish waited" in outcome["message"]
    assert outcome["seconds"] < 1.5
    assert pub.closed
    with pytest.raises(ringcast.RingClosed):
        pub.publish(b"z")
    sub.close()


def test_a_page_size_given_as_huge_pages_says_where_it_goes(ring_dir):
    with pytest.raises(ringcast.InvalidArgument, match=r"huge_page_size='1G'"):
        ringcast.Publisher.create("hp", slot_size=8, capacity=8, dir=ring_dir, huge_pages="1G")
