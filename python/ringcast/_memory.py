"""Memory control from Python: thread pinning, the memory report of a
publisher or subscriber, and ``ringcast info``.

The work happens in the Rust core; this module gives its answers Python
types and formats them for people.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import _native
from .errors import InvalidArgument

__all__ = ["MemoryReport", "host_memory", "pin_thread", "ring_info", "thread_cpus"]


@dataclasses.dataclass(frozen=True)
class MemoryReport:
    """Where a ring's memory is and what this end (publisher or subscriber)
    did to it. ``pages_by_node`` counts a sample of up to 1024 pages spread
    over the ring, as this process maps them."""

    bytes_at: str
    """The file holding the ring's bytes (a hugetlbfs file for huge-page rings)."""
    page_size: int
    """Size of the pages under the ring, in bytes."""
    huge_pages: bool
    mapped_bytes: int
    locked: bool
    """This end locked the ring in RAM (``lock_memory=True``)."""
    prefaulted: bool
    """This end faulted every page in when it opened the ring."""
    pinned_cpu: int | None
    """The CPU this end's thread was pinned to when it opened the ring."""
    numa_node: int | None
    """The NUMA node the ring's creator bound it to."""
    numa_nodes_online: tuple[int, ...]
    pages_by_node: dict[int, int]
    pages_sampled: int | None
    """Pages asked about; None when the kernel has no NUMA support."""
    pages_not_resident: int | None
    huge_pages_fallback: str | None
    """Why a ``huge_pages="prefer"`` ring got normal pages."""

    @classmethod
    def _from_native(cls, d: dict[str, Any]) -> MemoryReport:
        d = dict(d)
        d["bytes_at"] = os.fspath(d["bytes_at"])
        d["numa_nodes_online"] = tuple(d["numa_nodes_online"])
        return cls(**d)


def _cpu_set(cpus: int | Iterable[int]) -> set[int]:
    if isinstance(cpus, int | np.integer | str) or not isinstance(cpus, Iterable):
        items = [cpus]
    else:
        items = list(cpus)
    for c in items:
        if isinstance(c, bool) or not isinstance(c, int | np.integer) or c < 0:
            raise InvalidArgument(f"a CPU is a number >= 0 (see os.cpu_count()), got {c!r}")
    return {int(c) for c in items}


def pin_thread(cpus: int | Iterable[int]) -> set[int]:
    """Pin the calling thread to one CPU (or a set of CPUs); returns the CPUs
    it could run on before, for :func:`pin_thread` to restore later.
    Raises :class:`CpuUnavailable` for a CPU that does not exist, is offline
    or is outside the process's cpuset."""
    return _native.pin_thread(_cpu_set(cpus))


def thread_cpus() -> set[int]:
    """The CPUs the calling thread may run on."""
    return _native.thread_cpus()


def host_memory() -> dict[str, Any]:
    """What this host offers: huge page pools (page size, total, available),
    hugetlbfs mounts, RLIMIT_MEMLOCK (bytes; None = unlimited), online CPUs
    and NUMA nodes."""
    return _native.host_memory()


def ring_info(name: str, dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Everything ``ringcast info`` shows about ring ``name``: layout, memory
    (page size, huge pages, NUMA node of its pages), publisher, producers and
    subscribers with what each did to its mapping. Reads only; attaches nothing."""
    info = _native.inspect(name, None if dir is None else os.fspath(dir))
    info["path"] = os.fspath(info["path"])
    info["bytes_at"] = os.fspath(info["bytes_at"])
    info["schema"] = info["schema"].decode("utf-8", "replace")
    return info


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} bytes"


def _end_memory(e: dict[str, Any]) -> str:
    parts = ["locked" if e["locked"] else "not locked"]
    if e["prefaulted"]:
        parts.append("prefaulted")
    if e["pinned_cpu"] is not None:
        parts.append(f"pinned to CPU {e['pinned_cpu']}")
    return ", ".join(parts)


def _nodes(info: dict[str, Any]) -> str:
    if info["pages_sampled"] is None:
        return "unknown (kernel without NUMA support)"
    sampled = info["pages_sampled"]
    parts = [f"node {n}: {c}/{sampled}" for n, c in sorted(info["pages_by_node"].items())]
    if info["pages_not_resident"]:
        parts.append(f"not resident: {info['pages_not_resident']}/{sampled}")
    return ", ".join(parts) or "no pages resident"


def format_info(info: dict[str, Any]) -> str:
    """``ring_info``'s answer as ``ringcast info`` prints it."""
    lines = [f"ring {info['name']!r}"]

    def row(key: str, value: object) -> None:
        lines.append(f"  {key + ':':<14}{value}")

    row("path", info["path"])
    if info["bytes_at"] != info["path"]:
        row("bytes at", info["bytes_at"])
    kind = "fixed-size" if info["fixed_size"] else "variable-size"
    modes = [f"bounded (watermark {info['watermark']})" if info["bounded"] else "lossy"]
    modes.append("multi-producer" if info["producers"] == "many" else "single-producer")
    if info["timestamps"]:
        modes.append("timestamps")
    row(
        "layout",
        f"{info['capacity']} slots x {info['slot_size']} bytes ({kind}), "
        f"stride {info['slot_stride']}, header {info['header_len']} bytes"
        + (", slot heads apart (in a table after the slots)" if info["heads_apart"] else ""),
    )
    row("modes", ", ".join(modes))
    row("schema", info["schema"] or "raw bytes")
    row("file", f"{info['file_len']:,} bytes ({info['ring_bytes']:,} used)")
    fs = "hugetlbfs" if info["huge_pages"] else "tmpfs" if info["tmpfs"] else "other filesystem"
    row("pages", f"{_size(info['page_size'])} ({fs})")
    online = ",".join(map(str, info["numa_nodes_online"]))
    bound = info["numa_node"]
    row("numa", f"bound to node {bound}" if bound is not None else "no binding (kernel default)")
    row("nodes", f"{_nodes(info)}; host nodes online: {online}")
    pub = info["publisher"]
    state = "closed" if pub["closed"] else "alive" if pub["alive"] else "gone (crashed?)"
    row(
        "publisher",
        f"pid {pub['pid']}, {state}, generation {pub['generation']}, {_end_memory(pub)}",
    )
    row("cursor", f"{info['cursor']:,} messages published")
    if info["bounded"]:
        row("evictions", info["evictions"])
    for p in info["producer_records"]:
        row(
            f"producer {p['index']}",
            f"pid {p['pid']}, {'alive' if p['alive'] else 'dead'}, "
            f"{p['count']:,} published, {_end_memory(p)}",
        )
    if not info["subscribers"]:
        row("subscribers", "none")
    for s in info["subscribers"]:
        lag = max(0, info["cursor"] - s["position"])
        stage = f"stage {s['stage']!r} processed {s['processed']:,}, " if s["stage"] else ""
        parked = f" ({s['parked']} parked now)" if s["parked"] else ""
        row(
            f"subscriber {s['index']}",
            f"pid {s['pid']}, {'alive' if s['alive'] else 'dead'}, {stage}"
            f"{s['state']}, position {s['position']:,} (lag {lag:,}), received "
            f"{s['count']:,}, lost {s['lost']:,}, wait {s['wait']}{parked}, {_end_memory(s)}",
        )
    for stage, processed in sorted(info["departed_stages"].items()):
        row("departed", f"stage {stage!r} processed {processed:,} (its subscriber left)")
    return "\n".join(lines)
