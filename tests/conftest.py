"""Shared fixtures: a private ring directory per test, in /dev/shm when possible."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

import ringcast


@pytest.fixture
def ring_dir() -> Iterator[str]:
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="ringcast-test-", dir=base)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def free_huge_pages(page_size: int) -> tuple[int, str | None]:
    """Free huge pages of `page_size` bytes and a hugetlbfs mount of that size."""
    host = ringcast.host_memory()
    free = sum(p["available"] for p in host["huge_page_pools"] if p["page_size"] == page_size)
    mount = next(
        (str(m["path"]) for m in host["hugetlbfs_mounts"] if m["page_size"] == page_size), None
    )
    return free, mount


@pytest.fixture
def huge_dir() -> Iterator[str | None]:
    """A private directory on the host's 2 MiB hugetlbfs mount, or None when
    the host has no free 2 MiB huge pages or no such mount (then tests check
    the refusal instead). With RINGCAST_REQUIRE_HUGE_PAGES=1 (CI, which
    reserves pages first) having none is a failure."""
    free, mount = free_huge_pages(2 << 20)
    if free < 8 or mount is None:
        assert not os.environ.get("RINGCAST_REQUIRE_HUGE_PAGES"), (
            "RINGCAST_REQUIRE_HUGE_PAGES is set but this host has no free 2 MiB huge pages "
            f"on a hugetlbfs mount: {ringcast.host_memory()}"
        )
        yield None
        return
    d = tempfile.mkdtemp(prefix="ringcast-test-", dir=mount)
    os.chmod(d, 0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
