"""A minimal feed handler: publishes synthetic quotes into ring "md.quotes".

Run it, then `python examples/strategy.py` in other terminals. Kill it and
start it again: it takes the ring over and continues the sequence.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import ringcast

QUOTE = np.dtype([("seq", "<u8"), ("ts_ns", "<u8"), ("bid", "<f8"), ("ask", "<f8")])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10_000, help="quotes per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to publish")
    parser.add_argument("--name", default="md.quotes", help="ring name")
    parser.add_argument("--dir", default=None, help="ring directory")
    args = parser.parse_args(argv)
    if not (args.rate > 0 and args.seconds > 0):
        parser.error("--rate and --seconds must be positive")
    # exist_ok: a restarted feed handler continues the ring's sequence.
    pub = ringcast.Publisher.create(
        args.name, dtype=QUOTE, capacity=1 << 16, dir=args.dir, exist_ok=True
    )
    with pub:
        print(f"publishing into {pub.path} ({args.rate:,.0f}/s for {args.seconds:g} s)")
        first = pub.sequence
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < args.seconds:
            if pub.sequence - first < elapsed * args.rate:  # paced: publish when due
                seq = pub.sequence
                mid = 100 + np.sin(seq / 1000)
                pub.publish((seq, time.monotonic_ns(), mid - 0.01, mid + 0.01))
        print(f"published {pub.sequence} quotes in total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
