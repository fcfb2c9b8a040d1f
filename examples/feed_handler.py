"""A minimal feed handler: publishes synthetic quotes into ring "md.quotes".

Run it, then `python examples/strategy.py` in other terminals.
"""

from __future__ import annotations

import time

import numpy as np

import ringcast

QUOTE = np.dtype([("seq", "<u8"), ("ts_ns", "<u8"), ("bid", "<f8"), ("ask", "<f8")])


def main(rate: float = 10_000, seconds: float = 10.0) -> None:
    with ringcast.Publisher.create("md.quotes", dtype=QUOTE, capacity=1 << 16, exist_ok=True) as pub:
        print(f"publishing into {pub.path} ({rate:,.0f}/s for {seconds:g} s)")
        start = time.monotonic()
        seq = pub.sequence
        while (elapsed := time.monotonic() - start) < seconds:
            if seq - pub.sequence < 0 or pub.sequence < elapsed * rate:
                mid = 100 + np.sin(seq / 1000)
                pub.publish((seq, time.monotonic_ns(), mid - 0.01, mid + 0.01))
                seq += 1
        print(f"published {pub.sequence} quotes in total")


if __name__ == "__main__":
    main()
