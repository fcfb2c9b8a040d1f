"""Reading a journal into numpy, beside plain numpy files of the same
records, in one run.

    python benches/journal_numpy.py [--messages 10000000] [--dir /var/tmp]

A bounded ring of 64-byte records (8 fields of u8) with timestamps is
recorded by ``ringcast.journal.record`` (the Rust recorder on its own
thread) while this process publishes into it; then, one after another:

- ``numpy.ndarray.tofile`` of the same records (the write baseline), and the
  recorder's own rate from its report;
- ``Journal(dir).messages()`` (every CRC checked at open, records copied out
  of the mapping), ``Journal(dir, check=False)``, a zero-copy ``view()`` of a
  segment summed over one field (every page touched);
- ``numpy.fromfile`` and ``numpy.memmap`` of the plain file (the read baselines);
- ``Journal.to_parquet`` (pyarrow), when installed.

The files stay in the page cache (as right after a day's recording); each
step starts after ``os.sync()``, with nothing dirty left from the one before.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time

import numpy as np

import ringcast
from ringcast.journal import Journal

REC = np.dtype([(f"f{i}", "<u8") for i in range(8)])


def timed(fn):
    # Nothing dirty left from the step before (its write-back would
    # throttle this step's writes on a disk file system).
    os.sync()
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def row(what: str, n: int, seconds: float, nbytes: int) -> None:
    print(
        f"{what:<52} {n / seconds / 1e6:8.2f} M msgs/s  {nbytes / seconds / 1e9:6.2f} GB/s"
        f"  ({seconds:.3f} s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10_000_000)
    ap.add_argument("--dir", default="/var/tmp", help="where the journal and files go")
    args = ap.parse_args()
    n = args.messages
    base = tempfile.mkdtemp(prefix="ringcast-bench-", dir=args.dir)
    rings = tempfile.mkdtemp(prefix="ringcast-bench-rings-")
    try:
        data = np.zeros(n, dtype=REC)
        data["f0"] = np.arange(n)
        for i in range(1, 8):
            data[f"f{i}"] = np.arange(n) * i
        print(f"{n:,} records of {REC.itemsize} bytes; files under {base}\n")

        journal = os.path.join(base, "journal")
        pub = ringcast.Publisher.create(
            "bench", dtype=REC, capacity=1 << 16, bounded=True, timestamps=True, dir=rings
        )
        report: dict = {}
        rec = threading.Thread(
            target=lambda: report.update(
                ringcast.journal.record("bench", journal, dir=rings, fsync="never")
            )
        )
        rec.start()
        while pub.subscriber_count == 0:
            time.sleep(0.001)
        time.sleep(0.2)  # the recorder's probe left, the recorder joined
        t = time.perf_counter()
        for at in range(0, n, 65536):
            pub.publish_batch(data[at : at + 65536])
        pub.close()
        rec.join()
        recorded = time.perf_counter() - t
        assert report["recorded"] == n and report["gaps"] == 0, report
        stride = 24 + REC.itemsize
        row("record: Python publisher -> ring -> recorder", n, recorded, n * stride)
        plain = os.path.join(base, "plain.npy.raw")
        _, s = timed(lambda: data.tofile(plain))
        row("baseline: numpy tofile (same records, 64 B each)", n, s, n * REC.itemsize)
        print()

        m, s = timed(lambda: Journal(journal).messages())
        assert np.array_equal(m.records, data)
        row("Journal(dir).messages(): CRCs checked, copied", n, s, n * stride)
        m, s = timed(lambda: Journal(journal, check=False).messages())
        row("Journal(dir, check=False).messages()", n, s, n * stride)
        j = Journal(journal, check=False)

        def view_sum() -> int:
            return sum(int(j.view(k)["payload"]["f1"].sum()) for k in range(len(j.segments)))

        total, s = timed(view_sum)
        assert total == int(data["f1"].sum())
        row("Journal.view(k) zero-copy, one field summed", n, s, n * stride)
        back, s = timed(lambda: np.fromfile(plain, dtype=REC))
        assert np.array_equal(back, data)
        row("baseline: numpy fromfile", n, s, n * REC.itemsize)

        def memmap_sum() -> int:
            return int(np.memmap(plain, dtype=REC, mode="r")["f1"].sum())

        total, s = timed(memmap_sum)
        assert total == int(data["f1"].sum())
        row("baseline: numpy memmap, one field summed", n, s, n * REC.itemsize)
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            print("(pyarrow not installed: no Parquet figure)")
        else:
            _, s = timed(lambda: j.to_parquet(os.path.join(base, "out.parquet")))
            row("Journal.to_parquet()", n, s, n * REC.itemsize)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(rings, ignore_errors=True)


if __name__ == "__main__":
    main()
