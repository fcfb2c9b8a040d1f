"""Shared fixtures: a private ring directory per test, in /dev/shm when possible."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture
def ring_dir() -> Iterator[str]:
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="ringcast-test-", dir=base)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
