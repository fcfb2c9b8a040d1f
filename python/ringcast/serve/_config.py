"""The service's configuration: a TOML file read with :mod:`tomllib`, every
key checked against one table of key specifications per section, errors
naming the file, line and key, and saying what to write instead.

Sections (see ``examples/serve/*.toml`` and ``docs/serve.md``)::

    [service]              name, dir, metrics, timeouts, restart backoff
    [rings.NAME]           rings the service creates (stages publish into them)
    [feeds.NAME]           ITCH MoldUDP64 feed handlers (``ringcast feed handle``)
    [books.NAME]           order-book builders (``ringcast feed book``)
    [senders.NAME]         MoldUDP64 senders of an ITCH file (demo, tests)
    [stages.NAME]          user stages: ``function = "module:function"``
    [journals.NAME]        recorders of a ring into a journal (``ringcast record``)
    [bridges.NAME]         a ring sent to other hosts on Aeron, or received from one
                           (``ringcast bridge send|recv``; ``role = "send"|"recv"``)

Items start in dependency order: rings first, then whatever writes a ring
before whatever reads it (a feed before the books of its bus, a ring's
writers before its journal, ``reads``/``writes`` of stages, explicit
``after``); senders last.
"""

from __future__ import annotations

import difflib
import importlib.util
import ipaddress
import math
import os
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _schema
from ..errors import InvalidArgument

# An item's or a bus's name (ring names are made of them).
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
KINDS = ("rings", "feeds", "books", "senders", "stages", "journals", "bridges")
RESTART_POLICIES = ("on-failure", "always", "never")


class ConfigError(InvalidArgument):
    """A configuration file that cannot run: ``where`` is ``FILE:LINE``,
    ``key`` the dotted key (quoted parts as TOML writes them)."""

    def __init__(self, source: str, line: int | None, key: str, problem: str) -> None:
        self.source = source
        self.line = line
        self.key = key
        self.problem = problem
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


# --- key specifications ---------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One key of a section: its check turns the TOML value into what the
    service uses, or raises ValueError with what was expected."""

    check: Callable[[Any], Any]
    default: Any = None
    required: bool = False
    live: bool = True  # False: a change needs the item removed and added again


def _type_name(v: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(v), type(v).__name__)


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a non-empty string, got {_type_name(v)} {v!r}")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {_type_name(v)} {v!r}")
    return v


def _int(low: int, high: int = 2**63 - 1, what: str = "") -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise ValueError(
                f"expected an integer from {low:,} to {high:,}{what}, got {_type_name(v)} {v!r}"
            )
        return v

    return check


def _power_of_two(v: Any) -> int:
    n = _int(2, 1 << 32, " (ring slots)")(v)
    if n & (n - 1):
        raise ValueError(
            f"expected a power of two (ring slots), got {n:,}: try {1 << n.bit_length():,}"
        )
    return n


def _seconds(low: float = 0.0) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not math.isfinite(v)
            or v < low
        ):
            raise ValueError(f"expected seconds >= {low:g} (a number), got {_type_name(v)} {v!r}")
        return float(v)

    return check


def _choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise ValueError(f"expected one of {', '.join(map(repr, options))}, got {v!r}")
        return str(v)

    return check


def parse_address(v: Any) -> tuple[str, int]:
    """``HOST:PORT``, or ``PORT`` / ``:PORT`` on loopback (port 0: any free
    port)."""
    text = _str(v)
    host, _, port = text.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9464 (or a port), got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _group(v: Any) -> str:
    """A multicast ``GROUP:PORT``."""
    text = _str(v)
    host, _, port = text.rpartition(":")
    try:
        multicast = ipaddress.ip_address(host).is_multicast
    except ValueError:
        multicast = False
    if not multicast or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"expected a multicast GROUP:PORT such as 239.1.1.1:30001, got {text!r}")
    return text


def _server(v: Any) -> str:
    host, port = parse_address(v)
    if port == 0:
        raise ValueError(f"expected HOST:PORT with a port, got {v!r}")
    return f"{host}:{port}"


def _function(v: Any) -> str:
    text = _str(v)
    if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", text):
        raise ValueError(f'expected "module:function" such as "mypkg.signals:run", got {text!r}')
    return text


def _names(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise ValueError(f"expected an array of names (strings), got {v!r}")
    return list(v)


def _table(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError(f"expected a table (keyword arguments), got {_type_name(v)} {v!r}")
    return dict(v)


def _dtype(v: Any) -> np.dtype:
    """A numpy dtype: a string (``"<u8"``) or an array of ``[name, type]`` or
    ``[name, type, count]`` fields."""
    try:
        if isinstance(v, str):
            dt = np.dtype(v)
        elif isinstance(v, list) and v and all(isinstance(f, list) for f in v):
            dt = np.dtype([tuple(f) for f in v])
        else:
            raise TypeError("not a string or an array of [name, type] fields")
        return _schema.check_dtype(dt)
    except (TypeError, ValueError, InvalidArgument) as e:
        raise ValueError(
            f'expected a numpy dtype: "<u8", or fields [["seq", "<u8"], ["px", "<f8"]] ({e})'
        ) from None


def _channel(v: Any) -> str:
    text = _str(v)
    from .._native import bridge_check_channel

    problem = bridge_check_channel(text)
    if problem:
        raise ValueError(problem)
    return text


def _fsync(v: Any) -> str | float:
    """A journal's fsync policy: "never", "always", or seconds between syncs."""
    if v in ("never", "always"):
        return str(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 3600:
        raise ValueError(f'expected "never", "always" or seconds between syncs (e.g. 1), got {v!r}')
    return float(v)


def _percent(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 50:
        raise ValueError(f"expected a percentage from 0 to 50, got {v!r}")
    return float(v)


_RESTART = {"restart": Key(_choice(*RESTART_POLICIES), "on-failure"), "after": Key(_names, [])}

SECTIONS: dict[str, dict[str, Key]] = {
    "service": {
        "name": Key(_str, "ringcast", live=False),
        "path": Key(_names, [], live=False),
        "dir": Key(_str, None, live=False),
        "metrics": Key(parse_address, None, live=False),
        "shutdown_timeout": Key(_seconds(0.1), 10.0),
        "drain_timeout": Key(_seconds(0.0), 2.0),
        "start_timeout": Key(_seconds(0.1), 15.0),
        "health_timeout": Key(_seconds(0.0), 10.0),
        "restart_backoff": Key(_seconds(0.01), 0.5),
        "restart_backoff_max": Key(_seconds(0.01), 30.0),
        "crash_loop_restarts": Key(_int(1, 1000), 5),
        "crash_loop_window": Key(_seconds(0.1), 60.0),
    },
    "rings": {
        "dtype": Key(_dtype, live=False),
        "slot_size": Key(_int(1, 1 << 24, " (bytes)"), live=False),
        "capacity": Key(_power_of_two, required=True, live=False),
        "mode": Key(_choice("lossy", "bounded"), "lossy", live=False),
        "producers": Key(_choice("one", "many"), "one", live=False),
        "max_subscribers": Key(_int(1, 4096), None, live=False),
        "max_producers": Key(_int(1, 1024), None, live=False),
        "watermark": Key(_int(1), None, live=False),
        "timestamps": Key(_bool, False, live=False),
        "huge_pages": Key(_choice("off", "prefer", "require"), "off", live=False),
        "numa_node": Key(_int(0, 2**31 - 1), None, live=False),
        "prefault": Key(_bool, True, live=False),
        "mode_bits": Key(_int(0, 0o777, " (permission bits such as 0o640)"), 0o600, live=False),
        "keep": Key(_bool, False),
    },
    "feeds": {
        "group": Key(_group, required=True),
        "group_b": Key(_group, None),
        "bus": Key(_str, required=True),
        "interface": Key(_str, "127.0.0.1"),
        "retransmit": Key(_server, None),
        "capacity": Key(_power_of_two, 1 << 16),
        "stream_capacity": Key(_power_of_two, 1 << 18),
        "bounded": Key(_bool, False),
        "types": Key(_names, None),
        "session": Key(_str, None),
        "receive_buffer": Key(_int(1 << 16, 1 << 31, " (bytes)"), 64 << 20),
        "arbitration": Key(_seconds(0.0), 0.001),
        "request_timeout": Key(_seconds(0.001), 0.02),
        "max_requests": Key(_int(1, 1000), 5),
        # A pcapng wire capture of every datagram received (relative to the
        # config file; appended to across restarts).
        "capture": Key(_str, None),
        "keep": Key(_bool, False),
        **_RESTART,
    },
    "books": {
        "bus": Key(_str, required=True),
        "capacity": Key(_power_of_two, 1 << 16),
        "bounded": Key(_bool, False),
        "keep": Key(_bool, False),
        **_RESTART,
    },
    "senders": {
        "file": Key(_str, required=True),
        "group": Key(_group, required=True),
        "group_b": Key(_group, None),
        "rate": Key(_seconds(1.0), None),
        "retransmit": Key(_server, None),
        "drop": Key(_percent, None),
        "linger": Key(_seconds(0.0), 5.0),
        "interface": Key(_str, "127.0.0.1"),
        "session": Key(_str, "RINGCAST"),
        **_RESTART,
    },
    "stages": {
        "function": Key(_function, required=True),
        "args": Key(_table, {}),
        "reads": Key(_names, []),
        "writes": Key(_names, []),
        "latency": Key(_str, None),
        **_RESTART,
    },
    "journals": {
        "ring": Key(_str, required=True),
        "dir": Key(_str, required=True),
        "stage": Key(_str, "journal"),
        "first": Key(_choice("oldest", "latest"), "oldest"),
        "fsync": Key(_fsync, 1.0),
        "segment_size": Key(_int(1 << 16, 1 << 40, " (bytes)"), 256 << 20),
        "segment_age": Key(_seconds(1.0), None),
        **_RESTART,
    },
    "bridges": {
        "role": Key(_choice("send", "recv"), required=True),
        "channel": Key(_channel, required=True),
        "stream": Key(_int(1, 2**31 - 1), 1001),
        # send: the ring sent (required); recv: the ring received into
        # (default: the source ring's name).
        "ring": Key(_str, None),
        "stage": Key(_str, "bridge"),
        "first": Key(_choice("oldest", "latest"), "oldest"),
        "linger": Key(_seconds(0.0), 1.0),
        "capacity": Key(_int(2, 2**40, " (slots, a power of two)"), None),
        "bounded": Key(_bool, False),
        "aeron_dir": Key(_str, None),
        "term_length": Key(_int(64 << 10, 1 << 30, " (bytes, a power of two)"), None),
        "idle": Key(_choice("spin", "backoff", "sleep"), "backoff"),
        **_RESTART,
    },
}


BRIDGE_DEFAULTS = {k: v.default for k, v in SECTIONS["bridges"].items()}

# --- where keys are ---------------------------------------------------------------------

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY_PART = rf"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(
        p[1:-1] if p[:1] in "\"'" else p
        for p in (m.group(0) for m in re.finditer(_KEY_PART, dotted))
    )


def locate(text: str) -> dict[tuple[str, ...], int]:
    """The line of every table header and key assignment, by its full key
    path (``("rings", "md.q", "capacity")``). Lines inside multi-line arrays
    and strings are skipped, so a value's own text is never taken for a key."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    depth = 0  # open brackets of a multi-line value
    in_string: str | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if in_string:
            if in_string in line:
                in_string = None
            continue
        if depth == 0:
            header = re.fullmatch(rf"\[\[?\s*({_DOTTED})\s*\]\]?\s*(#.*)?", line)
            if header:
                table = _parts(header.group(1))
                for k in range(1, len(table) + 1):  # [a.b] also defines a
                    lines.setdefault(table[:k], n)
                continue
            assign = re.match(rf"({_DOTTED})\s*=\s*(.*)", line)
            if not assign:
                continue
            lines.setdefault(table + _parts(assign.group(1)), n)
            value = assign.group(2)
        else:
            value = line
        for quote in ('"""', "'''"):
            if value.count(quote) % 2:
                in_string = quote
        unquoted = re.sub(_QUOTED, "", value.split("#")[0] if '"' not in value else value)
        depth = max(
            depth
            + unquoted.count("[")
            + unquoted.count("{")
            - unquoted.count("]")
            - unquoted.count("}"),
            0,
        )
    return lines


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(p if re.fullmatch(_BARE, p) else f'"{p}"' for p in path)


# --- the checked configuration --------------------------------------------------------------


@dataclass
class Item:
    """One thing the service runs: a ring it creates, or a process it
    supervises. ``options`` are the checked keys; ``deps`` the items that
    start before it (by id, ``"kind.name"``)."""

    kind: str
    name: str
    options: dict[str, Any]
    line: int | None = None
    deps: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.kind}.{self.name}"

    @property
    def process(self) -> bool:
        return self.kind != "rings"

    def writes(self) -> list[str]:
        """Ring names (``bus.*`` patterns for a feed's bus) this item writes."""
        o = self.options
        return {
            "rings": [self.name],
            "feeds": [f"{o.get('bus')}.*"],
            "books": [f"{o.get('bus')}.book"],
            "stages": list(o.get("writes", [])),
            "bridges": [o["ring"]] if o.get("role") == "recv" and o.get("ring") else [],
        }.get(self.kind, [])

    def owned_rings(self, all_rings: list[str]) -> list[str]:
        """The ring files of this item the service removes when it stops
        (unless ``keep = true``)."""
        if self.options.get("keep"):
            return []
        if self.kind == "feeds":
            bus = self.options["bus"]
            return [r for r in all_rings if r.startswith(f"{bus}.") and r != f"{bus}.book"]
        if self.kind in ("rings", "books"):
            return [w for w in self.writes() if w in all_rings]
        return []


@dataclass
class ServiceConfig:
    source: str
    service: dict[str, Any]
    items: dict[str, Item]
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    def order(self) -> list[list[Item]]:
        """The items in start layers: every item after all of its deps."""
        done: set[str] = set()
        layers: list[list[Item]] = []
        left = dict(self.items)
        while left:
            layer = [i for i in left.values() if all(d in done for d in i.deps)]
            if not layer:  # checked in parse(): cannot happen
                raise ConfigError(self.source, None, "", "the items' dependencies form a cycle")
            layers.append(sorted(layer, key=lambda i: i.id))
            for i in layer:
                done.add(i.id)
                del left[i.id]
        return layers


def _matches(pattern: str, ring: str) -> bool:
    return ring.startswith(pattern[:-1]) if pattern.endswith("*") else pattern == ring


def load(path: str | os.PathLike[str]) -> ServiceConfig:
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(
            source,
            None,
            "",
            "no such file: give the path of a TOML config (examples/serve/demo.toml is one)",
        ) from None
    except OSError as e:
        raise ConfigError(source, None, "", f"cannot read it ({e.strerror})") from None
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        raise ConfigError(source, None, "", f"not UTF-8 text (byte {e.start})") from None
    return parse(text, source)


def parse(text: str, source: str = "<config>", base_dir: str | None = None) -> ServiceConfig:
    """Checks every key of a configuration; the first problem raises
    :class:`ConfigError` naming its line and key. Relative file paths (a
    sender's ``file``) are taken from ``base_dir``, default the file's
    directory."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(
            source, int(m.group(1)) if m else None, "", f"not valid TOML: {e}"
        ) from None
    lines = locate(text)

    def fail(path: tuple[str, ...], problem: str) -> ConfigError:
        line = None
        for n in range(len(path), 0, -1):
            line = lines.get(path[:n])
            if line:
                break
        return ConfigError(source, line, _dotted(path), problem)

    def check_keys(path: tuple[str, ...], table: Any, specs: dict[str, Key]) -> dict[str, Any]:
        if not isinstance(table, dict):
            raise fail(path, f"expected a table ([{_dotted(path)}]), got {_type_name(table)}")
        out: dict[str, Any] = {}
        for key, value in table.items():
            if key not in specs:
                close = difflib.get_close_matches(key, specs, n=1)
                hint = f'did you mean "{close[0]}"? ' if close else ""
                raise fail(
                    (*path, key), f"unknown key; {hint}the keys here are: " + ", ".join(specs)
                )
            try:
                out[key] = specs[key].check(value)
            except ValueError as e:
                raise fail((*path, key), str(e)) from None
        for key, spec in specs.items():
            if key not in out:
                if spec.required:
                    raise fail(path, f'missing key "{key}"')
                out[key] = spec.default
        return out

    for section in doc:
        if section not in SECTIONS:
            close = difflib.get_close_matches(section, SECTIONS, n=1)
            hint = f'did you mean "{close[0]}"? ' if close else ""
            raise fail(
                (section,), f"unknown section; {hint}the sections are: " + ", ".join(SECTIONS)
            )
    service = check_keys(("service",), doc.get("service", {}), SECTIONS["service"])
    if service["dir"] is None:
        from .._api import default_dir

        service["dir"] = default_dir(None)
    base = base_dir if base_dir is not None else os.path.dirname(os.path.abspath(source))
    service["path"] = [os.path.join(base, os.path.expanduser(p)) for p in service["path"]]
    for p in service["path"]:
        if p not in sys.path:
            sys.path.insert(0, p)  # stage modules are looked for (not imported) below

    items: dict[str, Item] = {}
    for kind in KINDS:
        tables = doc.get(kind, {})
        if not isinstance(tables, dict):
            raise fail((kind,), f"expected tables [{kind}.NAME], got {_type_name(tables)}")
        for name, table in tables.items():
            path = (kind, name)
            if not re.fullmatch(_NAME, name):
                raise fail(path, "a name is letters, digits, '_', '-' and '.'")
            options = check_keys(path, table, SECTIONS[kind])
            item = Item(kind, name, options, lines.get(path))
            _check_item(item, fail, base)
            items[item.id] = item
    _link(items, fail)
    return ServiceConfig(source, service, items, lines)


def _check_item(item: Item, fail: Callable[..., ConfigError], base: str) -> None:
    o, path = item.options, (item.kind, item.name)
    if item.kind == "rings":
        if (o["dtype"] is None) == (o["slot_size"] is None):
            raise fail(path, 'give "dtype" (typed records) or "slot_size" (raw bytes), exactly one')
        if o["watermark"] is not None and o["mode"] != "bounded":
            raise fail((*path, "watermark"), 'only bounded rings have one: add mode = "bounded"')
        if o["watermark"] is not None and o["watermark"] > o["capacity"]:
            raise fail((*path, "watermark"), f"at most the capacity ({o['capacity']:,})")
        if o["max_producers"] is not None and o["producers"] != "many":
            raise fail((*path, "max_producers"), 'only with producers = "many"')
    if item.kind == "senders":
        o["file"] = os.path.join(base, os.path.expanduser(o["file"]))
        if not os.path.isfile(o["file"]):
            raise fail(
                (*path, "file"),
                f"no such file {o['file']}: make an ITCH day with "
                "`ringcast feed generate FILE` (paths are relative to the config file)",
            )
    if item.kind == "feeds" and o["capture"] is not None:
        o["capture"] = os.path.join(base, os.path.expanduser(o["capture"]))
        if not os.path.isdir(os.path.dirname(o["capture"])):
            raise fail(
                (*path, "capture"),
                f"no directory {os.path.dirname(o['capture'])} for the capture file: make it, "
                "or give another path (relative to the config file)",
            )
    if item.kind == "stages":
        module = o["function"].partition(":")[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise fail(
                (*path, "function"),
                f"cannot find module {module!r}: install it, or "
                "add its directory to service.path (relative to the config file)",
            )
    if item.kind == "journals":
        o["dir"] = os.path.join(base, os.path.expanduser(o["dir"]))
        if os.path.exists(o["dir"]) and not os.path.isdir(o["dir"]):
            raise fail((*path, "dir"), f"{o['dir']} exists and is not a directory")
    if item.kind == "bridges":
        send = o["role"] == "send"
        if send and o["ring"] is None:
            raise fail(path, 'a sending bridge needs ring = "NAME" (the ring it sends)')
        only = ("stage", "first", "linger") if not send else ("capacity", "bounded")
        for key in only:
            if o[key] != BRIDGE_DEFAULTS[key]:
                other = "send" if not send else "recv"
                raise fail((*path, key), f'only for role = "{other}"')
        if o["capacity"] is not None and o["capacity"] & (o["capacity"] - 1):
            raise fail((*path, "capacity"), f"a power of two, not {o['capacity']:,}")
        if o["term_length"] is not None and o["term_length"] & (o["term_length"] - 1):
            raise fail((*path, "term_length"), f"a power of two, not {o['term_length']:,}")
        if o["aeron_dir"] is not None and o["term_length"] is not None:
            raise fail((*path, "term_length"), "configures the embedded driver: not with aeron_dir")
    if "bus" in o and not re.fullmatch(_NAME, o["bus"]):
        raise fail((*path, "bus"), "a bus name is letters, digits, '_', '-' and '.'")


def _link(items: dict[str, Item], fail: Callable[..., ConfigError]) -> None:
    """Finds every item's dependencies; refuses two writers of one
    single-producer ring, unknown ``after`` names and cycles."""
    writers: dict[str, list[Item]] = {}
    for item in items.values():
        for w in item.writes():
            writers.setdefault(w, []).append(item)
    for item in items.values():
        deps: set[str] = set()
        for name in item.options.get("after") or []:
            if name not in items:
                close = difflib.get_close_matches(name, items, n=1)
                hint = f'; did you mean "{close[0]}"?' if close else ""
                raise fail(
                    (item.kind, item.name, "after"),
                    f'no item "{name}" (write KIND.NAME, such as "feeds.nasdaq"){hint}',
                )
            deps.add(name)
        reads = list(item.options.get("reads") or [])
        if item.kind == "books":
            reads.append(f"{item.options['bus']}.itch")
        if item.kind == "journals" or (item.kind == "bridges" and item.options["role"] == "send"):
            reads.append(item.options["ring"])
        for ring in reads + [w for w in item.writes() if item.kind == "stages"]:
            for pattern, ws in writers.items():
                if _matches(pattern, ring):
                    deps.update(
                        w.id for w in ws if w.id != item.id and (w.kind == "rings" or ring in reads)
                    )
        if item.kind == "senders":
            # A sender is a source of test or demo data: it starts once
            # every other item is ready (nothing reads a ring too late).
            deps.update(i for i, other in items.items() if other.kind != "senders")
        item.deps = sorted(deps)
    for ring, ws in writers.items():
        procs = [w for w in ws if w.kind != "rings"]
        declared = [w for w in ws if w.kind == "rings"]
        if declared and declared[0].options["producers"] == "one" and len(procs) > 1:
            raise fail(
                (procs[1].kind, procs[1].name, "writes"),
                f'ring "{ring}" has one producer and {procs[0].id} writes it already '
                '(declare it with producers = "many")',
            )
    # A cycle: some items can never start.
    done: set[str] = set()
    left = set(items)
    while left:
        ready = {i for i in left if all(d in done for d in items[i].deps)}
        if not ready:
            stuck = sorted(left)
            item = items[stuck[0]]
            raise fail(
                (item.kind, item.name), "its dependencies form a cycle: " + " -> ".join(stuck)
            )
        done |= ready
        left -= ready
