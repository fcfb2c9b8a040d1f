"""``ringcast stat``: a live, top-like view of every ring on the host, read
from the ring files (see :mod:`ringcast._host_stats`, the figures it shows),
so it works without ``ringcast serve``.

On a terminal the view refreshes in place every ``--interval`` seconds;
elsewhere (a pipe, a file) a plain table is printed every interval.
``--once`` prints one table, its rates measured over one interval, and
``--json`` prints ``with_rates(snapshot(), snapshot())`` of that interval.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from . import _host_stats

__all__ = ["run", "view"]

COLUMNS = (
    ("NAME", "left"),
    ("MODE", "left"),
    ("PID", "right"),
    ("STATUS", "left"),
    ("CAPACITY", "right"),
    ("SUBS", "right"),
    ("EVICTED", "right"),
    ("PUBLISHED/POS", "right"),
    ("MSG/S", "right"),
    ("LAG", "right"),
    ("LAG %", "right"),
    ("LOST", "right"),
    ("LOST/S", "right"),
    ("WAIT", "left"),
    ("PARKED", "right"),
)


def _rate(r: float | None) -> str:
    return "-" if r is None else f"{r:,.0f}"


def _publisher(ring: dict[str, Any]) -> str:
    pub = ring["publisher"]
    if pub["alive"]:
        return "alive"
    return "closed" if pub["closed"] else "dead"


def ring_row(ring: dict[str, Any]) -> list[str]:
    """A ring's row: name, mode, publisher pid and status, capacity,
    subscribers, evictions, messages published and per second."""
    pid = ring["publisher"]["pid"]
    return [
        ring["name"],
        f"{ring['mode']}, {ring['producers']} producer{'s' if ring['producers'] == 'many' else ''}",
        "-" if pid is None else str(pid),
        _publisher(ring),
        f"{ring['capacity']:,}",
        str(len(ring["subscribers"])),
        f"{ring['evictions']:,}",
        f"{ring['published']:,}",
        _rate(ring.get("rate")),
        *[""] * 6,
    ]


def subscriber_row(ring: dict[str, Any], sub: dict[str, Any]) -> list[str]:
    """A subscriber's row, under its ring's: index (and stage), pid,
    alive or dead (and its state when not active), position, messages per
    second, lag (and as a share of the capacity), lost, lost per second,
    wait strategy, threads parked."""
    status = "alive" if sub["alive"] else "dead"
    if sub["state"] != "active":
        status += f", {sub['state']}"
    name = f"  #{sub['index']}" + (f" stage {sub['stage']}" if sub["stage"] else "")
    return [
        name,
        "",
        str(sub["pid"]),
        status,
        "",
        "",
        "",
        f"{sub['position']:,}",
        _rate(sub.get("rate")),
        f"{sub['lag']:,}",
        f"{100 * sub['lag'] / ring['capacity']:.1f}%",
        f"{sub['lost']:,}",
        _rate(sub.get("lost_rate")),
        sub["wait"],
        str(sub["parked"]),
    ]


def view(figures: dict[str, Any], interval: float, live: bool) -> Any:
    """The figures (a snapshot, with rates or not) as rich renderables."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    rings = figures["rings"]
    stamp = time.strftime("%H:%M:%S", time.localtime(figures["time"]))
    every = f"every {interval:g} s, Ctrl-C quits" if live else f"rates over {interval:g} s"
    head = Text(
        f"ringcast stat  {figures['dir']}  {stamp}  {len(rings)} ring"
        f"{'' if len(rings) == 1 else 's'}  ({every})",
        style="bold",
    )
    parts: list[Any] = [head]
    if rings:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for title, justify in COLUMNS:
            table.add_column(title, justify=justify, no_wrap=title == "NAME")  # type: ignore[arg-type]
        for ring in rings:
            table.add_row(*ring_row(ring), style="bold")
            for sub in ring["subscribers"]:
                table.add_row(*subscriber_row(ring, sub))
        parts.append(table)
    else:
        parts.append(Text(f"no rings in {figures['dir']}"))
    for bad in figures["unreadable"]:
        parts.append(Text(f"unreadable {bad['name']}: {bad['error']}", style="red"))
    return Group(*parts)


def _console(out: TextIO) -> Any:
    from rich.console import Console

    # Not a terminal: wide enough that rows are never folded.
    return Console(file=out, width=None if out.isatty() else 240, highlight=False)


def run(
    dir: str | None,
    interval: float,
    once: bool,
    as_json: bool,
    out: TextIO = sys.stdout,
) -> int:
    """``ringcast stat``; returns the exit status. Ctrl-C is the caller's."""
    try:
        directory = _host_stats.ring_dir(dir)
        if as_json or once:
            first = _host_stats.snapshot(directory)
            time.sleep(interval)
            figures = _host_stats.with_rates(first, _host_stats.snapshot(directory))
            if as_json:
                print(json.dumps(figures, indent=2), file=out)
            else:
                _console(out).print(view(figures, interval, live=False))
            return 0
        if out.isatty():
            _live(directory, interval, out)
        else:
            _stream(directory, interval, out)
    except OSError as e:
        print(f"ringcast stat: {e}", file=sys.stderr)
        return 1
    return 0


def _live(directory: str, interval: float, out: TextIO) -> None:
    """Refreshes the view in place until Ctrl-C."""
    from rich.live import Live

    console = _console(out)
    previous = _host_stats.snapshot(directory)
    figures = _host_stats.with_rates(None, previous)
    with Live(view(figures, interval, True), console=console, auto_refresh=False) as screen:
        while True:
            time.sleep(interval)
            current = _host_stats.snapshot(directory)
            screen.update(view(_host_stats.with_rates(previous, current), interval, True))
            screen.refresh()
            previous = current


def _stream(directory: str, interval: float, out: TextIO) -> None:
    """Prints a plain table every interval until Ctrl-C (not a terminal)."""
    console = _console(out)
    previous = _host_stats.snapshot(directory)
    while True:
        time.sleep(interval)
        current = _host_stats.snapshot(directory)
        console.print(view(_host_stats.with_rates(previous, current), interval, False))
        console.print()
        out.flush()
        previous = current
