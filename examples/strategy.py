"""A minimal strategy: reads ring "md.quotes" and prints a line per second."""

from __future__ import annotations

import time

import ringcast


def main() -> None:
    with ringcast.Subscriber.attach("md.quotes", start="latest") as sub:
        print(f"attached to {sub.path}: dtype {sub.dtype}")
        last_report = time.monotonic()
        for quote in sub:  # ends when the feed handler closes the ring
            now = time.monotonic()
            if now - last_report >= 1.0:
                lat_us = (time.monotonic_ns() - int(quote["ts_ns"])) / 1e3
                print(
                    f"seq {quote['seq']} bid {quote['bid']:.2f} ask {quote['ask']:.2f} "
                    f"latency {lat_us:.1f} us received {sub.received} lost {sub.lost}"
                )
                last_report = now
        print(f"feed closed: received {sub.received}, lost {sub.lost}")


if __name__ == "__main__":
    main()
