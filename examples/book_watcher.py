"""A strategy on the ITCH feed: follows one stock's top of book.

Reads the stock directory the feed handler published (``<bus>.stock_directory``)
to find the stock's locate code, then the book builder's updates
(``<bus>.book``) and prints the top of book whenever it changes, with the
time from the kernel's receive of the packet to here. Run after
``ringcast feed handle --bus md ...`` and ``ringcast feed book --bus md``.
"""

from __future__ import annotations

import argparse
import sys
import time

import ringcast
import ringcast.itch as itch


def locate_of(bus: ringcast.Bus, symbol: str) -> int | None:
    """The stock locate code of ``symbol``, from the directory the handler published."""
    with bus.subscribe("stock_directory", start="oldest") as directory:
        while True:
            try:
                _, rec = directory.recv(timeout=1.0)
            except (ringcast.Timeout, ringcast.RingClosed):
                return None
            if rec["stock"].decode().strip() == symbol:
                return int(rec["stock_locate"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bus", default="md", help="the feed handler's bus")
    parser.add_argument("--symbol", default="AAPL", help="stock to follow")
    parser.add_argument("--dir", default=None, help="ring directory")
    args = parser.parse_args(argv)
    bus = ringcast.Bus(args.bus, dir=args.dir)
    locate = locate_of(bus, args.symbol)
    if locate is None:
        print(f"{args.symbol} is not in the stock directory of bus {args.bus!r}", file=sys.stderr)
        return 1
    top = None
    with bus.subscribe("book", start="oldest") as book:
        for _, u in book:  # ends when the book builder closes its ring
            if u["stock_locate"] != locate:
                continue
            now = (u["best_bid"], u["best_bid_shares"], u["best_ask"], u["best_ask_shares"])
            if now != top:
                top = now
                wire_us = (time.monotonic_ns() - int(u["recv_ns"])) / 1e3
                print(
                    f"{args.symbol} {u['best_bid_shares']} @ {itch.price(int(u['best_bid'])):.4f}"
                    f" / {u['best_ask_shares']} @ {itch.price(int(u['best_ask'])):.4f}"
                    f"  ({wire_us:.0f} us from the wire)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
