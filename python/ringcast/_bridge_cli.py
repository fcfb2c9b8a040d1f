"""``ringcast bridge send`` and ``ringcast bridge recv``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from ._journal_cli import _duration, _on_sigterm, _rate, _size, _to_the_end

_CHANNELS = (
    "aeron:udp?endpoint=HOST:PORT (unicast to the receiving host), "
    "aeron:udp?endpoint=GROUP:PORT|interface=ADDRESS (multicast), or aeron:ipc (this host)"
)


def _driver_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", required=True, help=f"Aeron channel: {_CHANNELS}")
    p.add_argument("--stream", type=int, default=1001, help="Aeron stream id (1001)")
    p.add_argument(
        "--aeron-dir", default=None,
        help="use a running Aeron media driver with this directory (default: one embedded in "
        "the bridge, in a directory of its own under /dev/shm)",
    )  # fmt: skip
    p.add_argument(
        "--term-length", type=_size, default=None,
        help="embedded driver: term buffer length (power of two, 64K to 1G; Aeron's 16M)",
    )  # fmt: skip
    p.add_argument(
        "--idle", choices=("spin", "backoff", "sleep"), default="backoff",
        help="embedded driver: how it idles (spin: lowest latency, takes a core)",
    )  # fmt: skip
    p.add_argument("--ring-dir", default=None, help="ring directory (default: $RINGCAST_DIR)")
    p.add_argument("--json", action="store_true", help="print the final report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def add_parser(commands: Any) -> None:
    """Adds ``bridge send|recv`` to the ``ringcast`` parser."""
    bridge = commands.add_parser(
        "bridge",
        help="carry a ring to other hosts on Aeron",
        description="A ring carried across hosts on Aeron: `bridge send` on the source ring's "
        "host, `bridge recv` on each receiving host (multicast: many at once). The receiving "
        "ring gets the source's dtype, sequences and publish times; whatever never arrives is "
        "counted lost there, exactly, with its cause in the receiver's report.",
    )
    sub = bridge.add_subparsers(dest="bridge_command", required=True, metavar="send|recv")
    send = sub.add_parser(
        "send",
        help="send a ring on an Aeron channel",
        description="Sends every message of ring NAME on the channel, as a durable stage of "
        "the ring (a bounded ring is held back by a slow receiver; restarted, the sender "
        "resumes where it stopped). Ends when the ring's publisher closes it and everything "
        "was sent (--follow: keeps going), or on Ctrl-C/SIGTERM.",
    )
    send.add_argument("name", help="ring to send")
    _driver_args(send)
    send.add_argument("--stage", default="bridge", help="the sender's stage name (bridge)")
    send.add_argument(
        "--first", choices=("oldest", "latest"), default="oldest",
        help="a new sender starts with the oldest message in the ring (default) or the next",
    )  # fmt: skip
    send.add_argument(
        "--connect-timeout", type=_duration, default=None,
        help="fail if no receiver connected within this (e.g. 10s; default: wait)",
    )  # fmt: skip
    send.add_argument(
        "--linger", type=_duration, default=1.0,
        help="after the ring closed, keep the publication open this long (1s)",
    )  # fmt: skip
    send.add_argument("--follow", action="store_true", help="go on across publisher restarts")
    recv = sub.add_parser(
        "recv",
        help="receive an Aeron channel into a ring",
        description="Receives a bridged ring into ring NAME (default: the source's name), "
        "made with the source's dtype (or taken over if it exists with that shape). Runs until "
        "Ctrl-C/SIGTERM, or with --until-end until the sender's source closed.",
    )
    _driver_args(recv)
    recv.add_argument("--ring", default=None, help="the receiving ring (default: the source's)")
    recv.add_argument("--capacity", type=int, default=None, help="slots (default: the source's)")
    recv.add_argument(
        "--bounded", action="store_true",
        help="make the ring bounded: a slow local subscriber holds the sender back",
    )  # fmt: skip
    recv.add_argument(
        "--until-end", action="store_true",
        help="end once the sender's source closed and everything arrived",
    )  # fmt: skip
    recv.add_argument(
        "--idle-timeout", type=_duration, default=None,
        help="fail if nothing arrived within this (e.g. 10s; default: wait)",
    )  # fmt: skip


def _progress(kind: str, quiet: bool) -> Any:
    if quiet:
        return None

    def show(r: dict[str, Any]) -> None:
        d = r["driver"]
        if kind == "send":
            line = (
                f"sent {r['sent']:,} ({_rate(r['sent'], r['elapsed'])}), lag {r['lag']:,}, "
                f"source lost {r['source_lost']:,}, back pressure {r['back_pressure']:,}, "
                f"NAKs received {d['naks_received']:,}, retransmits {d['retransmits_sent']:,}"
                + ("" if r["connected"] else ", no receiver")
            )
        else:
            line = (
                f"delivered {r['delivered']:,} ({_rate(r['delivered'], r['elapsed'])}), "
                f"lost {r['lost']:,}, lag {r['lag']:,}, NAKs sent {d['naks_sent']:,}"
            )
        print(f"ringcast bridge {kind}: {line}", file=sys.stderr, flush=True)

    return show


def _common(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        stream=args.stream,
        dir=args.ring_dir,
        aeron_dir=args.aeron_dir,
        term_length=args.term_length,
        idle=args.idle,
        progress=_progress(args.bridge_command, args.quiet),
    )


def run(args: argparse.Namespace) -> int:
    from . import bridge

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.bridge_command == "send":
            report, how = _to_the_end(
                "the ring closed",
                lambda: bridge.send(
                    args.name,
                    args.channel,
                    stage=args.stage,
                    first=args.first,
                    connect_timeout=args.connect_timeout,
                    linger=args.linger,
                    follow=args.follow,
                    **_common(args),
                ),
            )
        else:
            report, how = _to_the_end(
                "the source ended",
                lambda: bridge.recv(
                    args.channel,
                    ring=args.ring,
                    capacity=args.capacity,
                    bounded=args.bounded,
                    until_end=args.until_end,
                    idle_timeout=args.idle_timeout,
                    **_common(args),
                ),
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{how}: {_summary(args.bridge_command, report)}")
    return 0


def _summary(kind: str, r: dict[str, Any]) -> str:
    d = r["driver"]
    if kind == "send":
        return (
            f"sent {r['sent']:,} messages of {r['ring']!r} from sequence {r['started_at']} "
            f"({_rate(r['sent'], r['elapsed'])}) in {r['frames']:,} frames; "
            f"{r['source_lost']:,} lost by the source before they were read; "
            f"{r['back_pressure']:,} back-pressure events; NAKs received {d['naks_received']:,}, "
            f"retransmits {d['retransmits_sent']:,}"
        )
    lat = r["latency_ns"]
    latency = (
        f"; source -> here p50 {lat['p50'] / 1e3:,.1f} us, p99 {lat['p99'] / 1e3:,.1f} us"
        if lat
        else ""
    )
    return (
        f"delivered {r['delivered']:,} messages into {r['ring']!r} "
        f"({_rate(r['delivered'], r['elapsed'])}); lost {r['lost']:,} (source "
        f"{r['lost_source']:,}, network {r['lost_network']:,}, restarts {r['lost_restart']:,}); "
        f"{r['duplicates']:,} duplicates dropped; NAKs sent {d['naks_sent']:,}{latency}"
    )
