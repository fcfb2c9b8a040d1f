"""Rings in a directory shared with other users: a ring name squatted by
another user, symbolic links and FIFOs planted under ring names, and ring
directories others can rewrite. ringcast never opens what it does not
trust, and says who made it and what to do. The other user is `nobody`
(uid 65534), so these tests need root."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest

import ringcast
from _workers import run_isolated

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


@pytest.fixture
def shared_dir(ring_dir):
    """The ring directory as the default one is: world-writable, sticky."""
    os.chmod(ring_dir, 0o1777)
    return ring_dir


def as_nobody(fn, *args):
    """Runs fn(*args) as uid/gid 65534 in a child process."""
    return run_isolated(_as_nobody, fn, *args)


def _as_nobody(fn, *args):
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    return fn(*args)


def squat(ring_dir: str, name: str) -> str:
    """Creates ring `name` (a perfectly valid one) and leaves."""
    pub = ringcast.Publisher.create(name, slot_size=8, capacity=8, dir=ring_dir, mode=0o666)
    pub.publish(b"forged!!")
    path = str(pub.path)
    pub.close()
    return path


def plant(path: str, kind: str, target: str = "") -> None:
    if kind == "fifo":
        os.mkfifo(path, 0o666)
    else:
        os.symlink(target, path)


def attach_outcome(name: str, ring_dir: str) -> tuple[str, str]:
    try:
        ringcast.Subscriber.attach(name, dir=ring_dir).close()
        return "ok", ""
    except ringcast.RingError as e:
        return type(e).__name__, str(e)


def test_a_squatted_ring_name_is_refused_and_the_message_names_the_squatter(shared_dir):
    path = as_nobody(squat, shared_dir, "md.quotes")
    assert os.stat(path).st_uid == NOBODY
    with pytest.raises(ringcast.UntrustedRing) as refused:
        ringcast.Subscriber.attach("md.quotes", dir=shared_dir)
    text = str(refused.value)
    assert "uid 65534" in text and "nobody" in text and "RINGCAST_TRUST=nobody" in text
    assert isinstance(refused.value, PermissionError)
    # The real publisher is refused too, and told why and what to do.
    with pytest.raises(ringcast.UntrustedRing, match="ring directory only you"):
        ringcast.Publisher.create("md.quotes", slot_size=8, capacity=8, dir=shared_dir)
    with pytest.raises(ringcast.UntrustedRing):
        ringcast.Publisher.create(
            "md.quotes", slot_size=8, capacity=8, dir=shared_dir, exist_ok=True
        )
    with pytest.raises(ringcast.UntrustedRing):
        ringcast.ring_info("md.quotes", dir=shared_dir)


def trusting_attach(ring_dir: str, name: str, how: str) -> str:
    if how == "call":
        ringcast.trust("nobody")
    with ringcast.Subscriber.attach(name, dir=ring_dir, start="oldest") as sub:
        return bytes(sub.recv(timeout=1)).decode()


@pytest.mark.parametrize("how", ["env", "call", "group"])
def test_a_trusted_owner_is_used(shared_dir, monkeypatch, how):
    as_nobody(squat, shared_dir, "theirs")
    if how == "env":
        monkeypatch.setenv("RINGCAST_TRUST", "nobody")
    elif how == "group":
        monkeypatch.setenv("RINGCAST_TRUST", f"@{NOBODY}")
    assert run_isolated(trusting_attach, shared_dir, "theirs", how) == "forged!!"


def fifo_never_opened(ring_dir: str, name: str, fifo: str) -> dict:
    """Attaches (and creates with exist_ok) under a name that leads to a
    FIFO, while a reader waits on the FIFO: if ringcast opened it for
    writing, the reader's open would complete."""
    opened = threading.Event()

    def reader():
        fd = os.open(fifo, os.O_RDONLY)
        opened.set()
        os.close(fd)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    out = {}
    t0 = time.monotonic()
    out["attach"] = attach_outcome(name, ring_dir)[0]
    try:
        ringcast.Publisher.create(name, slot_size=8, capacity=8, dir=ring_dir, exist_ok=True)
        out["create"] = "ok"
    except ringcast.RingError as e:
        out["create"] = type(e).__name__
    out["seconds"] = time.monotonic() - t0
    out["fifo opened"] = opened.wait(0.2)
    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # releases the reader
    os.close(fd)
    t.join(5)
    return out


@pytest.mark.parametrize("planted", ["fifo", "link to fifo", "own fifo", "link to device"])
def test_planted_fifos_links_and_devices_are_never_opened(shared_dir, planted):
    name = os.path.join(shared_dir, "x.ring")
    fifo = os.path.join(shared_dir, "trap.fifo")
    if planted == "fifo":
        as_nobody(plant, name, "fifo")
        fifo = name
    elif planted == "link to fifo":
        as_nobody(plant, fifo, "fifo")
        as_nobody(plant, name, "link", fifo)
    elif planted == "own fifo":
        os.mkfifo(name)  # ours, so trusted: still not a ring
        fifo = name
    else:
        os.mkfifo(fifo)  # a bystander; the link leads to a device
        as_nobody(plant, name, "link", "/dev/null")
    out = run_isolated(fifo_never_opened, shared_dir, "x", fifo)
    assert not out["fifo opened"], out
    assert out["seconds"] < 2.0, out
    expected = "RingCorrupt" if planted == "own fifo" else "UntrustedRing"
    assert out["attach"] == expected and out["create"] == expected, out


def test_a_link_planted_to_our_own_ring_is_refused(shared_dir):
    """Another user's link under a new name, pointing at our real ring."""
    with ringcast.Publisher.create("real", slot_size=8, capacity=8, dir=shared_dir) as pub:
        as_nobody(plant, os.path.join(shared_dir, "alias.ring"), "link", str(pub.path))
        kind, msg = attach_outcome("alias", shared_dir)
        assert kind == "UntrustedRing" and "nobody" in msg, msg


def test_a_ring_directory_others_can_rewrite_is_refused(ring_dir):
    os.chmod(ring_dir, 0o777)  # no sticky bit: anyone may rename our rings
    with pytest.raises(ringcast.RingPermissionError, match="sticky"):
        ringcast.Publisher.create("r", slot_size=8, capacity=8, dir=ring_dir)
    os.chmod(ring_dir, 0o1777)
    with ringcast.Publisher.create("r", slot_size=8, capacity=8, dir=ring_dir):
        os.chmod(ring_dir, 0o777)
        with pytest.raises(ringcast.RingPermissionError, match="sticky"):
            ringcast.Subscriber.attach("r", dir=ring_dir)
        os.chmod(ring_dir, 0o1777)


def test_a_ring_directory_of_another_user_is_refused(ring_dir):
    inner = os.path.join(ring_dir, "theirs")
    os.mkdir(inner, 0o755)
    os.chown(inner, NOBODY, NOBODY)
    with pytest.raises(ringcast.UntrustedRing, match="ring directory owned by uid 65534"):
        ringcast.Subscriber.attach("x", dir=inner)


def test_trust_refuses_unknown_names():
    with pytest.raises(ringcast.InvalidArgument, match="no user named"):
        ringcast.trust("no-such-user-on-this-host")
    with pytest.raises(ringcast.InvalidArgument, match="no group named"):
        ringcast.trust("@no-such-group-on-this-host")


def test_the_default_directory_is_shared_and_sticky(monkeypatch):
    """What the default directory's permissions are: anyone may create
    rings, only a ring's owner may remove or replace it."""
    monkeypatch.delenv("RINGCAST_DIR", raising=False)
    with ringcast.Publisher.create(f"test.default.{os.getpid()}", slot_size=8, capacity=8) as pub:
        pub.unlink()
    mode = stat.S_IMODE(os.stat(ringcast.default_dir()).st_mode)
    assert mode == 0o1777, oct(mode)
