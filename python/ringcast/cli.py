"""The ``ringcast`` command line (also ``python -m ringcast``)."""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__, _api


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ringcast", description="Shared-memory market-data fan-out rings."
    )
    parser.add_argument("--version", action="version", version=f"ringcast {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="run a feed handler and N strategy processes over one ring"
    )
    demo.add_argument("--subscribers", "-n", type=_positive(int), default=3)
    demo.add_argument("--rate", type=_positive(float), default=100_000, help="quotes per second")
    demo.add_argument("--duration", type=_positive(float), default=3.0, help="seconds")
    demo.add_argument("--capacity", type=_positive(int), default=1 << 16, help="ring slots")
    demo.add_argument(
        "--dir", default=None, help="ring directory (default: $RINGCAST_DIR or /dev/shm/ringcast)"
    )

    listing = commands.add_parser("list", help="list the rings in the ring directory")
    listing.add_argument("--dir", default=None)

    args = parser.parse_args(argv)
    if args.command == "demo":
        from . import demo as demo_module

        ok = demo_module.run(
            subscribers=args.subscribers,
            rate=args.rate,
            duration=args.duration,
            capacity=args.capacity,
            dir=args.dir,
        )
        return 0 if ok else 1
    if args.command == "list":
        directory = _api.default_dir(args.dir)
        for name in _api.list_rings(directory):
            size = os.path.getsize(os.path.join(directory, name + ".ring"))
            print(f"{name}\t{size:,} bytes")
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


def run() -> int:
    """Console-script entry: ``main`` with a quiet exit when stdout is closed early."""
    try:
        return main()
    except BrokenPipeError:  # e.g. `ringcast list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(run())
