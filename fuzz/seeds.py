"""Writes the seed corpus of the fuzz targets (fuzz/seeds/<target>/) from
real ringcast output: ring headers of every mode, the schemas numpy writes,
encoded histograms, and damage scripts for whole ring files.

Run from the repository root with ringcast installed: python fuzz/seeds.py
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

import ringcast

SEEDS = Path(__file__).resolve().parent / "seeds"


def save(target: str, data: bytes) -> None:
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def headers() -> None:
    modes = [
        {"slot_size": 24},
        {"dtype": np.dtype([("seq", "<u8"), ("px", "<f8")])},
        {"slot_size": 100, "bounded": True, "watermark": 8},
        {"slot_size": 8, "producers": "many", "max_producers": 3},
        {"slot_size": 64, "timestamps": True, "max_subscribers": 7},
        {"slot_size": 64, "bounded": True, "heads_apart": True},
        {"slot_size": 24, "timestamps": True, "producers": "many", "heads_apart": True},
    ]
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
        for i, opts in enumerate(modes):
            with ringcast.Publisher.create(f"s{i}", capacity=16, dir=d, **opts) as pub:
                raw = Path(pub.path).read_bytes()
                if pub.schema:
                    save("schema", pub.schema)
                pub.unlink()
            save("layout", struct.pack("<Q", len(raw)) + raw[:4096])


def schemas() -> None:
    for dt in [
        "<u8",
        "|S16",
        [("a", "<i4", (2, 3)), ("b", [("x", "<u2"), ("y", "|b1")])],
        [(("Price", "px"), "<f8"), ("t", "<M8[ns]"), ("u", "<U4")],
        np.dtype({"names": ["a", "b"], "formats": ["<u4", "<u8"], "offsets": [0, 8]}),
    ]:
        save("schema", ringcast._schema.encode(np.dtype(dt)))
    save("schema", b"numpy:[('a', '|O')]")
    save("schema", b"numpy:" + b"[" * 20 + b"'<u8'" + b"]" * 20)


def histograms() -> None:
    rng = np.random.default_rng(1)
    for n, scale in [(1, 1.0), (100, 1e3), (10_000, 1e6)]:
        h = ringcast.LatencyHistogram()
        for v in rng.lognormal(np.log(scale), 1.0, n):
            h.record(int(v) + 1)
        save("histogram", h.encode().encode())


def ring_files() -> None:
    # mode, capacity, count, then 10-byte (offset, word) damage operations.
    def op(at: int, word: int) -> bytes:
        return struct.pack("<HQ", at, word & (1 << 64) - 1)

    save("ring_file", bytes([0, 2, 10]))
    save("ring_file", bytes([2, 1, 5]) + op(0, 0))
    save("ring_file", bytes([3, 3, 19]) + op(0xFFFF, 4096))
    save("ring_file", bytes([1, 2, 12]) + op(8, 1 << 62) + op(40, 7))
    save("ring_file", bytes([6, 4, 7]) + op(700, 2 * 10**12 + 2) + op(2000, 3))
    # Mode bit 3: slot heads apart. With 128 subscriber records the slots
    # (24 bytes of payload: 64 a slot) start at 20480; the head table follows.
    save("ring_file", bytes([8, 2, 9]) + op(20480 + 8 * 64 + 8, 5))  # head 0's length
    save("ring_file", bytes([15, 3, 17]) + op(20480 + 16 * 64 + 32, 1 << 40))  # head 2's stamp


if __name__ == "__main__":
    headers()
    schemas()
    histograms()
    ring_files()
    for target in sorted(SEEDS.iterdir()):
        print(f"{target.name}: {len(list(target.iterdir()))} seeds")
