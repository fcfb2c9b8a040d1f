"""A minimal feed handler: publishes synthetic quotes into ring "md.quotes".

Run it, then `python examples/strategy.py` in other terminals.
"""

from __future__ import annotations

import time

import numpy as np

import ringcast

QUOTE = np.dtype([("seq", "<u8"), ("ts_ns", "<u8"), ("bid", "<f8"), ("ask", "<f8")])


def main(rate: float = 10_000, seconds: float = 10.0) -> None:
    # exist_ok: a restarted feed handler continues the ring's sequence.
    pub = ringcast.Publisher.create("md.quotes", dtype=QUOTE, capacity=1 << 16, exist_ok=True)
    with pub:
        print(f"publishing into {pub.path} ({rate:,.0f}/s for {seconds:g} s)")
        first = pub.sequence
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            if pub.sequence - first < elapsed * rate:  # paced: publish when due
                seq = pub.sequence
                mid = 100 + np.sin(seq / 1000)
                pub.publish((seq, time.monotonic_ns(), mid - 0.01, mid + 0.01))
        print(f"published {pub.sequence} quotes in total")


if __name__ == "__main__":
    main()
