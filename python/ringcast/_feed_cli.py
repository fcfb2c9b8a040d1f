"""``ringcast feed ...``: generate, decode, send and handle NASDAQ ITCH 5.0
over MoldUDP64 (the functions of :mod:`ringcast.itch` on the command line)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _drop(text: str) -> float | list[int]:
    """``--drop 5`` (percent) or ``--drop 3,7,8`` (packet numbers)."""
    try:
        if "," in text or text.startswith("#"):
            return [int(p) for p in text.lstrip("#").split(",") if p]
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a percentage (e.g. 5) or packet numbers (e.g. 3,7,8), got {text!r}"
        ) from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"a percentage between 0 and 100, got {text}")
    return value


def add_parser(commands: Any) -> None:
    """Adds ``feed`` and its subcommands to the ``ringcast`` parser."""
    feed = commands.add_parser(
        "feed",
        help="NASDAQ TotalView-ITCH 5.0 over MoldUDP64: generate, decode, send, handle, book",
        description="Market data in: generate a realistic ITCH day, decode ITCH files, send "
        "one as MoldUDP64 multicast (with a retransmission server), and run the feed "
        "handler that publishes every message into typed rings on a bus.",
    )
    sub = feed.add_subparsers(dest="feed_command", required=True)

    gen = sub.add_parser("generate", help="write a generated trading day as an ITCH file")
    gen.add_argument("--out", required=True, help="ITCH file to write")
    gen.add_argument("--seed", type=int, default=1, help="same seed, same bytes (default 1)")
    gen.add_argument("--messages", type=int, default=1_000_000, help="messages (default 1M)")
    gen.add_argument("--symbols", type=int, default=None, help="stocks (default: messages/500)")
    gen.add_argument("--halts", type=int, default=None, help="trading halts (default 2)")

    dec = sub.add_parser(
        "decode", help="count an ITCH file's messages by type and report bad frames"
    )
    dec.add_argument("file", help="ITCH file (2-byte big-endian length before each message)")
    dec.add_argument("--json", action="store_true", help="print JSON")
    dec.add_argument("--max-errors", type=int, default=20, help="bad frames listed (default 20)")

    send = sub.add_parser(
        "send",
        help="send an ITCH file as MoldUDP64 multicast, or replay a packet capture",
        description="Send an ITCH file as MoldUDP64 multicast (with a retransmission "
        "server), or replay a capture (--pcap): the UDP payloads of one captured stream byte "
        "for byte, by default line A's (the multicast group of the capture's first "
        "interface; line B and retransmissions are left out), to the captured group or "
        "--group, paced by --speed (times the capture's pace), --rate, or flat out.",
    )
    send.add_argument("file", nargs="?", default=None, help="ITCH file (or give --pcap)")
    send.add_argument(
        "--pcap", default=None, help="replay this capture (pcapng or pcap) instead of a file"
    )
    send.add_argument(
        "--pcap-stream",
        default=None,
        help="the captured stream to replay: its destination ADDRESS:PORT, or PORT "
        "(default: line A, the first interface's multicast group)",
    )
    send.add_argument(
        "--group",
        default=None,
        help="multicast ADDRESS:PORT of line A (required with a file; with --pcap default: "
        "the captured destination)",
    )
    send.add_argument("--group-b", default=None, help="ADDRESS:PORT of line B (same stream)")
    pace = send.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, default=None, help="messages per second")
    pace.add_argument(
        "--speed",
        type=float,
        default=None,
        help="times the day's own pace, or the capture's with --pcap (1: real time)",
    )
    send.add_argument(
        "--retransmit",
        default=None,
        help="serve retransmission requests on this ADDRESS:PORT (port 0: any, printed)",
    )
    send.add_argument(
        "--linger", type=float, default=5.0, help="seconds to go on serving after the end"
    )
    send.add_argument("--drop", type=_drop, default=None, help="skip line A packets on purpose")
    send.add_argument("--drop-b", type=_drop, default=None, help="skip line B packets")
    send.add_argument("--seed", type=int, default=1, help="seed of the --drop choices")
    send.add_argument("--session", default="RINGCAST", help="MoldUDP64 session name")
    send.add_argument("--interface", default="127.0.0.1", help="interface address to send from")
    send.add_argument("--ttl", type=int, default=0, help="multicast TTL (0: this host only)")
    send.add_argument("--json", action="store_true", help="print the report as JSON")

    handle = sub.add_parser(
        "handle", help="receive MoldUDP64 and publish every message into typed rings"
    )
    handle.add_argument("--group", required=True, help="multicast ADDRESS:PORT of line A")
    handle.add_argument("--group-b", default=None, help="ADDRESS:PORT of line B")
    handle.add_argument("--bus", required=True, help="bus name: rings are BUS.<message type>")
    handle.add_argument("--retransmit", default=None, help="retransmission server ADDRESS:PORT")
    handle.add_argument("--dir", default=None, help="ring directory")
    handle.add_argument("--capacity", type=int, default=1 << 16, help="slots per ring")
    handle.add_argument(
        "--bounded", action="store_true", help="lossless rings (slow readers hold it back)"
    )
    handle.add_argument(
        "--types", default=None, help="only these message types (e.g. A,F,E,C,X,D,U)"
    )
    handle.add_argument(
        "--idle-timeout", type=float, default=None, help="stop after this long without data"
    )
    handle.add_argument("--session", default=None, help="follow only this session")
    handle.add_argument("--interface", default="127.0.0.1", help="interface to join on")
    handle.add_argument(
        "--arbitration", type=float, default=0.001, help="seconds a gap waits for line B"
    )
    handle.add_argument(
        "--capture",
        default=None,
        metavar="FILE.pcapng",
        help="write every datagram received (both lines, retransmissions, duplicates) to a "
        "pcapng file (appended to when it exists)",
    )
    handle.add_argument("--json", action="store_true", help="print the report as JSON")

    pcap = sub.add_parser(
        "pcap", help="summarize a packet capture: MoldUDP64 streams, sequence ranges, damage"
    )
    pcap.add_argument("file", help="pcapng or pcap file")
    pcap.add_argument("--json", action="store_true", help="print JSON")

    book = sub.add_parser(
        "book", help="build order books from a handler's stream into the BUS.book ring"
    )
    book.add_argument("--bus", required=True, help="bus of the feed handler")
    book.add_argument("--dir", default=None, help="ring directory")
    book.add_argument("--capacity", type=int, default=1 << 16, help="slots of the book ring")
    book.add_argument("--bounded", action="store_true", help="lossless book ring")
    book.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Runs ``ringcast feed <subcommand>``."""
    from . import itch
    from .errors import InvalidArgument

    command = args.feed_command
    if command == "generate":
        n = itch.generate(
            args.out,
            seed=args.seed,
            messages=args.messages,
            symbols=args.symbols,
            halts=args.halts,
        )
        print(f"wrote {n:,} messages to {args.out} (seed {args.seed})")
        return 0
    if command == "decode":
        report = itch.decode_report(args.file, max_errors=args.max_errors)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(_decode_text(report))
        return 0 if report["errors"] == 0 else 1
    if command == "send":

        def ready(addr: str | None) -> None:
            if addr is not None and not args.json:
                print(f"retransmission server on {addr}", file=sys.stderr, flush=True)

        if (args.file is None) == (args.pcap is None):
            raise InvalidArgument(
                "give what to send: an ITCH file or --pcap CAPTURE (one of them, not both)"
            )
        if args.pcap is not None:
            return _replay(args, itch)
        if args.group is None:
            raise InvalidArgument("give --group ADDRESS:PORT (line A) to send an ITCH file to")
        if args.pcap_stream is not None:
            raise InvalidArgument("--pcap-stream chooses a stream of --pcap; there is none")
        report = itch.send(
            args.file,
            args.group,
            group_b=args.group_b,
            rate=args.rate,
            speed=args.speed,
            retransmit=args.retransmit,
            linger=args.linger,
            drop=args.drop,
            drop_b=args.drop_b,
            drop_seed=args.seed,
            session=args.session,
            interface=args.interface,
            ttl=args.ttl,
            ready=ready,
        )
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            rate = report["messages"] / report["elapsed"] if report["elapsed"] else 0
            print(
                f"sent {report['messages']:,} messages in {report['packets']:,} packets "
                f"in {report['elapsed']:.2f} s ({rate:,.0f} msgs/s); skipped on purpose "
                f"{report['dropped']}; answered {report['requests']:,} retransmission "
                f"requests ({report['retransmitted']:,} messages)"
            )
        return 0
    if command == "handle":
        report = itch.handle(
            args.group,
            bus=args.bus,
            group_b=args.group_b,
            dir=args.dir,
            capacity=args.capacity,
            bounded=args.bounded,
            types=args.types.split(",") if args.types else None,
            retransmit=args.retransmit,
            arbitration=args.arbitration,
            idle_timeout=args.idle_timeout,
            session=args.session,
            interface=args.interface,
            capture=args.capture,
        )
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(_handle_text(report))
        return 0 if report["lost"] == 0 and report["ended"] else 1
    if command == "pcap":
        summary = pcap_summary(itch.read_pcap(args.file))
        if args.json:
            print(json.dumps(summary, indent=2))
        else:
            print(_pcap_text(args.file, summary))
        return 0 if summary["error"] is None else 1
    if command == "book":
        report = itch.books(args.bus, dir=args.dir, capacity=args.capacity, bounded=args.bounded)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(
                f"{report['messages']:,} messages, {report['updates']:,} book updates, "
                f"{report['live_orders']:,} orders live; book errors {report['book_errors']:,}, "
                f"stream lost {report['lost']:,}"
            )
        return 0 if report["book_errors"] == 0 and report["lost"] == 0 else 1
    raise AssertionError(command)


def _replay(args: argparse.Namespace, itch: Any) -> int:
    """``ringcast feed send --pcap``: the options a replay has no use for
    are refused, not ignored."""
    from .errors import InvalidArgument

    unused = [
        name
        for name, given in (
            ("--retransmit", args.retransmit is not None),
            ("--session", args.session != "RINGCAST"),
        )
        if given
    ]
    if unused:
        raise InvalidArgument(
            f"{', '.join(unused)}: a replay sends the captured packets as they are, with no "
            "retransmission server; leave it out"
        )
    report = itch.replay(
        args.pcap,
        args.group,
        group_b=args.group_b,
        stream=args.pcap_stream,
        rate=args.rate,
        speed=args.speed,
        drop=args.drop,
        drop_b=args.drop_b,
        drop_seed=args.seed,
        interface=args.interface,
        ttl=args.ttl,
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if report["capture_error"]:
        print(f"ringcast feed send: warning: {report['capture_error']}", file=sys.stderr)
    rate = report["messages"] / report["elapsed"] if report["elapsed"] else 0
    print(
        f"replayed {report['packets']:,} datagrams captured to {report['destination']} "
        f"({report['messages']:,} messages) in {report['elapsed']:.2f} s ({rate:,.0f} msgs/s); "
        f"left out {report['others']:,} datagrams of other streams; skipped on purpose "
        f"{report['dropped']}"
    )
    return 0


def pcap_summary(capture: dict[str, Any]) -> dict[str, Any]:
    """Per destination of a capture's UDP datagrams: how many, MoldUDP64
    sessions, messages, heartbeats, ends of session, and the sequence
    numbers of the first and last message."""
    import struct

    streams: dict[str, dict[str, Any]] = {}
    for _time, _iface, _source, destination, payload in capture["datagrams"]:
        s = streams.setdefault(
            destination,
            {"datagrams": 0, "sessions": [], "messages": 0, "heartbeats": 0,
             "end_of_session": 0, "not_moldudp64": 0, "first": None, "last": None},
        )  # fmt: skip
        s["datagrams"] += 1
        if len(payload) < 20:
            s["not_moldudp64"] += 1
            continue
        session = payload[:10].decode("ascii", "replace").rstrip()
        sequence, count = struct.unpack_from(">QH", payload, 10)
        if session not in s["sessions"]:
            s["sessions"].append(session)
        if count == 0:
            s["heartbeats"] += 1
        elif count == 0xFFFF:
            s["end_of_session"] += 1
        else:
            s["messages"] += count
            s["first"] = sequence if s["first"] is None else min(s["first"], sequence)
            last = sequence + count - 1
            s["last"] = last if s["last"] is None else max(s["last"], last)
    return {
        "format": capture["format"],
        "packets": capture["packets"],
        "udp_datagrams": len(capture["datagrams"]),
        "streams": streams,
        "error": capture["error"],
        "truncated": capture["truncated"],
    }


def _pcap_text(path: str, s: dict[str, Any]) -> str:
    lines = [
        f"{path}: {s['format']}, {s['packets']:,} packets, {s['udp_datagrams']:,} UDP datagrams"
    ]
    for to, st in s["streams"].items():
        seqs = f", sequences {st['first']}..{st['last']}" if st["first"] is not None else ""
        lines.append(
            f"  to {to}: {st['datagrams']:,} datagrams, {st['messages']:,} messages{seqs}, "
            f"{st['heartbeats']:,} heartbeats, {st['end_of_session']} ends of session; "
            f"sessions {', '.join(st['sessions']) or '-'}"
        )
    if s["error"]:
        lines.append(f"stopped early: {s['error']}")
    return "\n".join(lines)


def _decode_text(report: dict[str, Any]) -> str:
    lines = [
        f"{report['messages']:,} messages, {report['errors']:,} errors, {report['bytes']:,} bytes"
    ]
    lines += [f"  {name:<32} {n:>12,}" for name, n in report["by_type"].items()]
    if report["errors"]:
        kinds = ", ".join(f"{k} {v}" for k, v in report["error_kinds"].items() if v)
        lines.append(f"errors: {kinds}")
        lines += [f"  at byte {offset}: {what}" for offset, what in report["first_errors"]]
    return "\n".join(lines)


def _handle_text(r: dict[str, Any]) -> str:
    lines = [
        f"session {r['session']!r}: {r['delivered']:,} messages delivered, "
        f"{r['published']:,} records published; ended: {r['ended']}",
    ]
    for name, line in zip("AB", r["lines"], strict=False):
        lines.append(
            f"  line {name} {line['group']}: {line['packets']:,} packets, first for "
            f"{line['first']:,} messages, {line['duplicates']:,} duplicates, "
            f"{line['bad_packets']} bad, kernel drops {line['kernel_drops']}"
        )
    lines.append(
        f"  gaps {r['gaps']:,}: filled by the other line {r['filled_by_line']:,}, recovered "
        f"by retransmission {r['recovered']:,} ({r['requests']:,} requests), lost {r['lost']:,}"
    )
    if r["unrecovered"]:
        shown = ", ".join(f"{a}..{b - 1}" for a, b in r["unrecovered"][:10])
        more = len(r["unrecovered"]) - 10
        lines.append(f"  unrecovered: {shown}{f' (+{more} more)' if more > 0 else ''}")
    return "\n".join(lines)
