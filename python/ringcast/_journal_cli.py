"""``ringcast record``, ``ringcast replay`` and ``ringcast journal info|verify``."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from typing import Any

import numpy as np

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _size(text: str) -> int:
    """``256M``, ``1G``, ``65536``: bytes."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"a size such as 256M or 1G, got {text!r}")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))


def _duration(text: str) -> float:
    """``30s``, ``5m``, ``1h``, ``0.5``: seconds."""
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"a duration such as 500ms, 30s, 5m or 1h, got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def _fsync(text: str) -> str | float:
    if text in ("never", "always"):
        return text
    try:
        return _duration(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"never, always, or an interval such as 1s or 200ms, got {text!r}"
        ) from None


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"max, 1 (recorded pace) or a factor > 0, got {text!r}")
    return value


def add_parsers(commands: Any) -> None:
    """Adds ``record``, ``replay`` and ``journal`` to the ``ringcast`` parser."""
    rec = commands.add_parser(
        "record",
        help="record a ring into a journal (crash-safe, resumable)",
        description="Records every message of ring NAME with its sequence and publish time "
        "into the journal directory DIR, as a durable stage of the ring (on a bounded ring "
        "nothing is lost; restarted, it resumes after the journal's last entry). Messages a "
        "lossy ring overwrote before they were recorded become gap entries of the exact size. "
        "Stops when the publisher closes the ring (--follow: keeps going) or on Ctrl-C/SIGTERM, "
        "sealing the journal.",
    )
    rec.add_argument("name", help="ring to record")
    rec.add_argument("--dir", required=True, help="journal directory (made if missing)")
    rec.add_argument("--ring-dir", default=None, help="ring directory (default: $RINGCAST_DIR)")
    rec.add_argument("--stage", default="journal", help="the recorder's stage name (journal)")
    rec.add_argument(
        "--first", choices=("oldest", "latest"), default="oldest",
        help="a new journal starts with the oldest message in the ring (default) or the next",
    )  # fmt: skip
    rec.add_argument("--segment-size", type=_size, default=256 << 20, help="roll at (256M)")
    rec.add_argument("--segment-age", type=_duration, default=None, help="roll at age (e.g. 1h)")
    rec.add_argument(
        "--fsync", type=_fsync, default=1.0,
        help="never, always (before messages count as recorded), or an interval (default 1s)",
    )  # fmt: skip
    rec.add_argument("--follow", action="store_true", help="keep recording across publishers")
    rec.add_argument("--json", action="store_true", help="print the final report as JSON")
    rec.add_argument("--quiet", action="store_true", help="no progress lines")

    rep = commands.add_parser(
        "replay",
        help="publish a journal into a ring at the recorded pace, faster, or flat out",
        description="Publishes the messages of journal DIR into ring NAME (made with the "
        "recorded ring's shape, or taken over if it has it), in recorded order: deterministic. "
        "Times for --from/--until: ISO 8601 (naive = UTC), a time of day HH:MM[:SS] on the "
        "journal's first (UTC) day, +30s from its first message, or #N for sequence N.",
    )
    rep.add_argument("journal", metavar="DIR", help="journal directory")
    rep.add_argument("--to", required=True, metavar="NAME", help="ring to publish into")
    rep.add_argument("--ring-dir", default=None, help="ring directory (default: $RINGCAST_DIR)")
    rep.add_argument(
        "--speed", type=_speed, default=None,
        help="max (default), 1 (the recorded pace), or N times the recorded pace",
    )  # fmt: skip
    rep.add_argument("--from", dest="start", default=None, help="first message (time or #seq)")
    rep.add_argument("--until", dest="end", default=None, help="stop before (time or #seq)")
    rep.add_argument(
        "--original-times", action="store_true",
        help="messages carry their recorded publish times (default: when replayed)",
    )  # fmt: skip
    rep.add_argument("--capacity", type=int, default=None, help="slots of a new ring")
    lossy = rep.add_mutually_exclusive_group()
    lossy.add_argument("--bounded", dest="bounded", action="store_true", default=None)
    lossy.add_argument("--lossy", dest="bounded", action="store_false")
    rep.add_argument("--subscribers", type=int, default=0, help="wait for N subscribers first")
    rep.add_argument(
        "--no-verify", dest="verify", action="store_false",
        help="skip each entry's CRC check (a journal `ringcast journal verify` passed)",
    )  # fmt: skip
    rep.add_argument("--json", action="store_true", help="print the report as JSON")
    rep.add_argument("--quiet", action="store_true", help="no progress lines")

    jr = commands.add_parser("journal", help="inspect and verify journals")
    sub = jr.add_subparsers(dest="journal_command", required=True)
    info = sub.add_parser("info", help="what a journal holds")
    info.add_argument("journal", metavar="DIR")
    info.add_argument("--json", action="store_true")
    ver = sub.add_parser(
        "verify",
        help="check every entry; exit 1 if anything is damaged or missing",
        description="Checks every entry's CRC32C, every segment's header and seal, and the "
        "sequence from first to last: what cannot be read is reported with its exact range.",
    )
    ver.add_argument("journal", metavar="DIR")
    ver.add_argument("--json", action="store_true")


class _Stop(Exception):
    """SIGTERM: end the recording or replay cleanly."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Stop


def _rate(n: float, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s" if seconds > 0 else "-"


def run(args: argparse.Namespace) -> int:
    from . import journal

    if args.command == "journal":
        if args.journal_command == "info":
            report = journal.Journal(args.journal).info()
            print(json.dumps(report, indent=2) if args.json else _info_text(report))
            return 0
        report = journal.verify(args.journal)
        print(json.dumps(report, indent=2) if args.json else _verify_text(report))
        return 0 if report["intact"] else 1

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.command == "record":
            return _record(args)
        return _replay(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _progress(kind: str, quiet: bool) -> Any:
    if quiet:
        return None

    def show(r: dict[str, Any]) -> None:
        if kind == "record":
            line = (
                f"recorded {r['recorded']:,} ({_rate(r['recorded'], r['elapsed'])}), "
                f"lag {r['lag']:,}, gaps {r['gaps']} ({r['lost']:,} lost), "
                f"{r['segments']} segments, {r['bytes'] / 2**20:,.1f} MiB"
            )
        else:
            line = f"published {r['published']:,} ({_rate(r['published'], r['elapsed'])})"
        print(f"ringcast {kind}: {line}", file=sys.stderr, flush=True)

    return show


def _to_the_end(done: str, job: Any) -> tuple[dict[str, Any], str]:
    """Runs a recording or replay: its report and how it ended (``done``, or
    "stopped" by Ctrl-C/SIGTERM, which end it cleanly with a report)."""
    try:
        return job(), done
    except (KeyboardInterrupt, _Stop) as e:
        report = getattr(e, "report", None)
        if report is None:
            raise
        return report, "stopped"


def _record(args: argparse.Namespace) -> int:
    from . import journal

    report, how = _to_the_end(
        "the ring closed",
        lambda: journal.record(
            args.name,
            args.dir,
            dir=args.ring_dir,
            stage=args.stage,
            first=args.first,
            segment_bytes=args.segment_size,
            segment_age=args.segment_age,
            fsync=args.fsync,
            follow=args.follow,
            progress=_progress("record", args.quiet),
        ),
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rec = report["recovery"]
    if rec["segment"]:
        print(
            f"repaired {rec['segment']}: kept {rec['kept_entries']} entries, sealed off "
            f"{rec['cut_entries']} torn entries and {rec['cut_bytes']} bytes after them"
        )
    lat = report["latency_ns"]
    latency = (
        f"; publish -> written p50 {lat['p50'] / 1e3:,.1f} us, p99 {lat['p99'] / 1e3:,.1f} us"
        if lat
        else ""
    )
    print(
        f"{how}: recorded {report['recorded']:,} messages from sequence {report['started_at']} "
        f"({_rate(report['recorded'], report['elapsed'])}), {report['gaps']} gaps "
        f"({report['lost']:,} messages lost by the ring), journal goes on at "
        f"{report['next_seq']}{latency}"
    )
    return 0


def _bound(text: str | None, j: Any) -> dict[str, Any]:
    """``--from``/``--until`` as replay() keywords."""
    if text is None:
        return {}
    if text.startswith("#"):
        try:
            return {"seq": int(text[1:])}
        except ValueError:
            raise SystemExit(f"ringcast replay: {text!r} is not #SEQUENCE") from None
    if text.startswith("+") or re.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?", text):
        first, _ = j._ends()  # the first message, read in place (no copy)
        if first is None:
            raise SystemExit("ringcast replay: the journal holds no message")
        if text.startswith("+"):
            return {"time": first[1] + int(_duration(text[1:]) * 1e9)}
        day = str(j.wall_time(first[1]))[:10]
        return {"time": np.datetime64(f"{day}T{text}", "ns")}
    return {"time": text}


def _replay(args: argparse.Namespace) -> int:
    from . import journal

    j = journal.Journal(args.journal)
    start, end = _bound(args.start, j), _bound(args.end, j)
    report, how = _to_the_end(
        "replayed",
        lambda: journal.replay(
            args.journal,
            args.to,
            dir=args.ring_dir,
            speed=args.speed,
            start_seq=start.get("seq"),
            start_time=start.get("time"),
            end_seq=end.get("seq"),
            end_time=end.get("time"),
            original_times=args.original_times,
            capacity=args.capacity,
            bounded=args.bounded,
            subscribers=args.subscribers,
            verify=args.verify,
            progress=_progress("replay", args.quiet),
        ),
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    late = f", at most {report['max_late'] * 1e6:,.0f} us late" if args.speed else ""
    print(
        f"{how}: {report['published']:,} messages (recorded sequences {report['first_seq']} to "
        f"{report['end_seq']}) in {report['elapsed']:.3f} s "
        f"({_rate(report['published'], report['elapsed'])}; recorded over "
        f"{report['recorded_span']:.3f} s){late}"
    )
    if report["gaps"]:
        print(
            f"  {report['gaps']} gaps: {report['gap_messages']:,} messages the recording lost "
            "(not replayed)"
        )
    for u in report["unreadable"]:
        print(f"  unreadable: {_unreadable_text(u)}")
    return 0


def _unreadable_text(u: dict[str, Any]) -> str:
    count = f"{u['count']:,} messages" if u["count"] is not None else "an unknown number"
    end = u["to_seq"] if u["to_seq"] is not None else "?"
    return f"sequences {u['from_seq']}..{end} ({count}): {'; '.join(u['why'])}"


def _info_text(r: dict[str, Any]) -> str:
    lines = [
        f"journal {r['dir']}: ring {r['ring']!r}, dtype {r['dtype'] or 'bytes'}, "
        f"{r['slot_size']}-byte slots",
        f"  {r['messages']:,} messages, sequences {r['first_seq']} to {r['last_seq']}",
        f"  {r['gaps']} gaps ({r['lost']:,} messages lost), {r['damaged']} damaged entries",
        f"  {r['segments']} segments ({r['open_segments']} open), {r['bytes'] / 2**20:,.1f} MiB",
    ]
    if r["first_time"]:
        lines.append(f"  published {r['first_time']} to {r['last_time']} (UTC)")
    return "\n".join(lines)


def _verify_text(r: dict[str, Any]) -> str:
    state = "intact" if r["intact"] else "DAMAGED"
    lines = [
        f"journal {r['dir']} ({r['ring']!r}): {state}; {r['messages']:,} messages, "
        f"{r['gaps']} gaps ({r['lost']:,} lost when recording), {r['damaged']} damaged entries"
    ]
    if r["open"]:
        lines.append(
            "  the last segment is open: its recorder is running, or died (the next recorder "
            "repairs and seals it)"
        )
    for s in r["segments"]:
        problems = []
        if s["header_problem"]:
            problems.append(f"header: {s['header_problem']}")
        if s["damaged"]:
            problems.append(f"{s['damaged']} damaged entries")
        if s["partial_bytes"]:
            problems.append(f"last entry cut short ({s['partial_bytes']} bytes)")
        if s["seal_mismatch"]:
            problems.append(f"seal: {s['seal_mismatch']}")
        if problems:
            lines.append(f"  {s['path']}: {'; '.join(problems)}")
        if s["sealed_off_bytes"]:
            lines.append(
                f"  {s['path']}: {s['sealed_off_bytes']} bytes of a torn tail sealed off by "
                "the recorder that repaired it (accounted then; not read)"
            )
    for u in r["unreadable"]:
        lines.append(f"  unreadable: {_unreadable_text(u)}")
    if r["out_of_order"]:
        lines.append(f"  {r['out_of_order']} entries out of sequence order")
    return "\n".join(lines)
