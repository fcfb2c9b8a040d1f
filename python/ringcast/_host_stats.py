"""The figures of every ring on the host, read from the ring files: the one
source of ``ringcast stat``, the Prometheus metrics and the status page.

Reading never attaches: each ring is inspected like ``ringcast info`` does
(no record claimed, nothing written), so monitoring works without
``ringcast serve`` and never disturbs publishers or subscribers.

:func:`snapshot` takes the figures at one instant; :func:`with_rates` adds
rates from two snapshots. Both are plain dicts of str, int, float, bool and
None (JSON as they are)::

    {"time": unix seconds, "monotonic": time.monotonic(), "dir": str,
     "rings": [RING, ...],                     # sorted by name
     "unreadable": [{"name": str, "error": str}, ...]}

    RING = {"name", "path", "capacity", "slot_size", "schema" (str, "" for
            raw byte rings), "mode": "lossy" | "bounded",
            "producers": "one" | "many", "timestamps": bool,
            "published": int, "evictions": int,
            "publisher": {"pid": int | None, "alive": bool, "closed": bool},
            "producer_records": [{"index", "pid", "alive", "published"}],
            "subscribers": [SUB, ...]}
    SUB  = {"index", "pid", "alive", "state", "stage": str | None,
            "position", "lag", "received", "lost", "wait", "parked": int}

``published`` is the ring's cursor. On a single-producer ring that is the
number of messages published. On a multi-producer ring it is the number of
sequences *claimed*: it runs ahead of what is readable by the claims being
written at that instant, and it counts the sequences of a producer that died
between claim and commit, which the subscribers count as lost.
``producer_records`` gives each attached producer's own committed count
(records of producers that left are not listed, so they need not add up).

``publisher``: ``pid`` of the current or last publisher (None if none ever
opened the ring), ``alive`` (a publisher process holds the ring open, judged
by the kernel's locks, not by the pid), ``closed`` (the last one closed it
cleanly). Neither alive nor closed: the publisher died.

A subscriber's ``state`` is ``"joining"``, ``"active"`` or ``"evicted"``
(bounded rings); ``alive`` is false for a subscriber whose process died
(its record stays until someone attaches or a bounded publisher sweeps it).
``position`` is the next sequence it reads, ``lag`` = ``published`` -
``position`` (at least 0; beyond ``capacity`` once it has been lapped),
``received`` the messages it read, ``lost`` those it skipped (lapped, or
their producer died). ``wait`` is the wait strategy it declared:
``"spin"``, ``"yield"``, ``"park"``, ``"adaptive"``, or ``"unknown"``
(subscribers that did not declare one, e.g. of builds before the field);
``parked`` is how many of its threads sleep on the ring's futex now.
"""

from __future__ import annotations

import os
import time
from typing import Any

from . import _api, _memory
from .errors import RingError

__all__ = ["snapshot", "with_rates"]


def ring_dir(dir: str | os.PathLike[str] | None = None) -> str:
    """The ring directory in use (``dir``, else ``$RINGCAST_DIR``, else
    ``/dev/shm/ringcast``), checked: ``NotADirectoryError``,
    ``FileNotFoundError`` or ``PermissionError`` with a message saying what
    to do when it cannot be read."""
    directory = _api.default_dir(dir)
    if not os.path.exists(directory):
        raise FileNotFoundError(
            f"no ring directory {directory} (no ring was created there yet): start a "
            "publisher, or pass --dir (or set RINGCAST_DIR) to the directory its rings are in"
        )
    if not os.path.isdir(directory):
        raise NotADirectoryError(
            f"{directory} is not a directory: pass --dir (or set RINGCAST_DIR) to a ring directory"
        )
    if not os.access(directory, os.R_OK | os.X_OK):
        raise PermissionError(
            f"ring directory {directory} cannot be read by this user: run as its owner "
            "(or root), or pass --dir (or set RINGCAST_DIR) to a directory you can read"
        )
    return directory


def _ring(info: dict[str, Any]) -> dict[str, Any]:
    published = info["cursor"]
    pub = info["publisher"]
    return {
        "name": info["name"],
        "path": info["path"],
        "capacity": info["capacity"],
        "slot_size": info["slot_size"],
        "schema": info["schema"],
        "mode": "bounded" if info["bounded"] else "lossy",
        "producers": info["producers"],
        "timestamps": info["timestamps"],
        "published": published,
        "evictions": info["evictions"],
        "publisher": {
            "pid": pub["pid"] or None,
            "alive": pub["alive"],
            "closed": pub["closed"],
        },
        "producer_records": [
            {"index": p["index"], "pid": p["pid"], "alive": p["alive"], "published": p["count"]}
            for p in info["producer_records"]
        ],
        "subscribers": [
            {
                "index": s["index"],
                "pid": s["pid"],
                "alive": s["alive"],
                "state": s["state"],
                "stage": s["stage"],
                "position": s["position"],
                "lag": max(0, published - s["position"]),
                "received": s["count"],
                "lost": s["lost"],
                "wait": s["wait"],
                "parked": s["parked"],
            }
            for s in info["subscribers"]
        ],
    }


def snapshot(dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The figures of every ring in the ring directory now (see the module's
    documentation). A ring that vanishes, is damaged or cannot be read goes
    to ``"unreadable"`` with the reason; a ring directory that is missing or
    cannot be read raises ``OSError`` (see :func:`ring_dir`)."""
    directory = ring_dir(dir)
    now, mono = time.time(), time.monotonic()
    rings: list[dict[str, Any]] = []
    unreadable: list[dict[str, str]] = []
    for name in sorted(_api.list_rings(directory)):
        try:
            rings.append(_ring(_memory.ring_info(name, directory)))
        except (RingError, OSError, ValueError) as e:
            unreadable.append({"name": name, "error": str(e)})
    return {
        "time": now,
        "monotonic": mono,
        "dir": directory,
        "rings": rings,
        "unreadable": unreadable,
    }


def _per_second(before: int, after: int, seconds: float) -> float | None:
    if seconds <= 0 or after < before:
        return None
    return (after - before) / seconds


def with_rates(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """``current`` (a :func:`snapshot`) with rates measured since ``previous``
    (an earlier snapshot, or None): each ring gets ``"rate"`` (messages
    published per second) and each subscriber ``"rate"`` (messages it got
    through per second: received plus lost) and ``"lost_rate"`` (messages
    lost per second). A rate is None where there is nothing to compare: no
    previous snapshot, a ring or subscriber (matched by index and pid) new
    since, or a counter that went back (the ring was made anew). Returns a
    new dict; neither argument is changed."""
    seconds = current["monotonic"] - previous["monotonic"] if previous else 0.0
    before = {(r["name"], r["path"]): r for r in previous["rings"]} if previous else {}
    rings = []
    for ring in current["rings"]:
        old = before.get((ring["name"], ring["path"]))
        rate = None if old is None else _per_second(old["published"], ring["published"], seconds)
        old_subs = {(s["index"], s["pid"]): s for s in old["subscribers"]} if old else {}
        subs = []
        for sub in ring["subscribers"]:
            was = old_subs.get((sub["index"], sub["pid"]))
            read = lost = None
            if was is not None and rate is not None:
                read = _per_second(
                    was["received"] + was["lost"], sub["received"] + sub["lost"], seconds
                )
                lost = _per_second(was["lost"], sub["lost"], seconds)
            subs.append({**sub, "rate": read, "lost_rate": lost})
        rings.append({**ring, "rate": rate, "subscribers": subs})
    return {**current, "rings": rings}
