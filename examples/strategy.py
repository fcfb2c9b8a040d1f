"""A minimal strategy: reads ring "md.quotes" and prints a line per second.

If the feed handler dies, it says so and waits for a restarted one (which
takes the ring over and continues the stream); it ends when the feed
handler closes the ring.
"""

from __future__ import annotations

import argparse
import sys
import time

import ringcast


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="md.quotes", help="ring name")
    parser.add_argument("--dir", default=None, help="ring directory")
    parser.add_argument("--start", choices=["latest", "oldest"], default="latest")
    args = parser.parse_args(argv)
    with ringcast.Subscriber.attach(args.name, dir=args.dir, start=args.start) as sub:
        print(f"attached to {sub.path}: dtype {sub.dtype}")
        last_report = time.monotonic()
        while True:
            try:
                for quote in sub:  # ends when the feed handler closes the ring
                    now = time.monotonic()
                    if now - last_report >= 1.0:
                        lat_us = (time.monotonic_ns() - int(quote["ts_ns"])) / 1e3
                        print(
                            f"seq {quote['seq']} bid {quote['bid']:.2f} ask {quote['ask']:.2f} "
                            f"latency {lat_us:.1f} us received {sub.received} lost {sub.lost}"
                        )
                        last_report = now
                break
            except ringcast.PublisherDied as e:
                print(f"feed handler died ({e}); waiting for it to come back")
        print(f"feed closed: received {sub.received}, lost {sub.lost}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
