"""The service's configuration: every key of every section is checked, and a
wrong one is reported with its file, line and key; the example configs load;
items start in dependency order."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ringcast import InvalidArgument, itch
from ringcast.serve import ConfigError, load, parse
from ringcast.serve._config import SECTIONS, _bool

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "serve"

# The smallest valid table of each section (a wrong key is added to it).
BASE = {
    "service": ("[service]", {}),
    "rings": ('[rings."t.a"]', {"capacity": "64", "slot_size": "8"}),
    "feeds": ("[feeds.f]", {"group": '"239.1.1.1:30001"', "bus": '"b"'}),
    "books": ("[books.b]", {"bus": '"b"'}),
    "senders": ("[senders.s]", {"file": '"day.itch"', "group": '"239.1.1.1:30001"'}),
    "stages": ("[stages.s]", {"function": '"json:dumps"'}),
    "journals": ("[journals.j]", {"ring": '"t.a"', "dir": '"tape"'}),
    "bridges": (
        "[bridges.b]",
        {"role": '"recv"', "channel": '"aeron:udp?endpoint=127.0.0.1:40123"'},
    ),
}


def _text(section: str, override: dict[str, str]) -> tuple[str, dict[str, int]]:
    """The section's table with ``override`` keys; the line of each key."""
    header, keys = BASE[section]
    keys = {**keys, **override}
    lines = ["# a comment first", "", header]
    where = {}
    for k, v in keys.items():
        lines.append(f"{k} = {v}")
        where[k] = len(lines)
    return "\n".join(lines) + "\n", where


@pytest.fixture
def day_dir(tmp_path: Path) -> Path:
    (tmp_path / "day.itch").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize(
    "section,key",
    [(s, k) for s, keys in SECTIONS.items() for k in keys],
    ids=lambda v: str(v),
)
def test_every_key_is_checked_and_a_wrong_one_names_its_line(
    section: str, key: str, day_dir: Path
) -> None:
    spec = SECTIONS[section][key]
    bad = '"yes"' if spec.check is _bool else "true"
    text, where = _text(section, {key: bad})
    with pytest.raises(ConfigError) as e:
        parse(text, "svc.toml", base_dir=str(day_dir))
    assert e.value.line == where[key], str(e.value)
    assert e.value.key.endswith(key)
    assert str(e.value).startswith(f"svc.toml:{where[key]}: ")
    assert isinstance(e.value, InvalidArgument)


@pytest.mark.parametrize("section", list(BASE))
def test_the_base_tables_are_valid(section: str, day_dir: Path) -> None:
    text, _ = _text(section, {})
    cfg = parse(text, "svc.toml", base_dir=str(day_dir))
    if section != "service":
        assert len(cfg.items) == 1


@pytest.mark.parametrize(
    "section,text,line,key,words",
    [
        ("rings", '[rings."t.a"]\ncapacity = 64\nslot_size = 8\ncapcity = 3\n', 4,
         'rings."t.a".capcity', 'did you mean "capacity"'),
        ("rings", '[rings."t.a"]\ncapacity = 100\nslot_size = 8\n', 2,
         'rings."t.a".capacity', "power of two"),
        ("rings", '[rings."t.a"]\ncapacity = 64\n', 1, 'rings."t.a"', '"dtype"'),
        ("rings", '[rings."t.a"]\ncapacity = 64\ndtype = "<u8"\nslot_size = 8\n', 1,
         'rings."t.a"', "exactly one"),
        ("rings", '[rings."t.a"]\ncapacity = 64\ndtype = [["a", "nope"]]\n', 3,
         'rings."t.a".dtype', "numpy dtype"),
        ("rings", '[rings."t.a"]\ncapacity = 64\nslot_size = 8\nwatermark = 8\n', 4,
         'rings."t.a".watermark', 'mode = "bounded"'),
        ("rings", '[rings.x]\ncapacity = 64\nslot_size = 8\n\n[ringz.y]\na = 1\n', 5,
         "ringz", 'did you mean "rings"'),
        ("feeds", '[feeds.f]\nbus = "b"\ngroup = "10.0.0.1:30001"\n', 3, "feeds.f.group",
         "multicast"),
        ("feeds", '[feeds.f]\nbus = "b"\n', 1, "feeds.f", 'missing key "group"'),
        ("stages", '[stages.s]\nfunction = "no_such_module_xyz:run"\n', 2,
         "stages.s.function", "cannot find module"),
        ("stages", '[stages.s]\nfunction = "json"\n', 2, "stages.s.function",
         '"module:function"'),
        ("stages", '[stages.s]\nfunction = "json:dumps"\nafter = ["stages.t"]\n', 3,
         "stages.s.after", 'no item "stages.t"'),
        ("stages", '[stages.s]\nfunction = "json:dumps"\nwrites = [\n "a = 1",\n "b"]\nx = 1\n', 6,
         "stages.s.x", "unknown key"),
        ("senders", '[senders.s]\ngroup = "239.1.1.1:1"\nfile = "nope.itch"\n', 3,
         "senders.s.file", "ringcast feed generate"),
        ("service", '[service]\nmetrics = "localhost"\n', 2, "service.metrics", "HOST:PORT"),
        ("service", "[service]\nname = \n", 2, "", "not valid TOML"),
    ],
)  # fmt: skip
def test_wrong_configs_name_key_line_and_remedy(
    section: str, text: str, line: int, key: str, words: str, day_dir: Path
) -> None:
    with pytest.raises(ConfigError) as e:
        parse(text, "svc.toml", base_dir=str(day_dir))
    assert e.value.line == line, str(e.value)
    assert e.value.key == key, str(e.value)
    assert words in str(e.value)


def test_a_cycle_and_two_writers_of_a_single_producer_ring_are_refused() -> None:
    cycle = (
        '[stages.a]\nfunction = "json:dumps"\nafter = ["stages.b"]\n'
        '[stages.b]\nfunction = "json:dumps"\nafter = ["stages.a"]\n'
    )
    with pytest.raises(ConfigError, match=r"cycle: stages\.a -> stages\.b") as e:
        parse(cycle, "svc.toml")
    assert e.value.line == 1
    two = (
        '[rings.r]\ncapacity = 64\nslot_size = 8\n'
        '[stages.a]\nfunction = "json:dumps"\nwrites = ["r"]\n'
        '[stages.b]\nfunction = "json:dumps"\nwrites = ["r"]\n'
    )  # fmt: skip
    with pytest.raises(ConfigError, match='producers = "many"') as e:
        parse(two, "svc.toml")
    assert e.value.line == 9
    many = two.replace("slot_size = 8", 'slot_size = 8\nproducers = "many"')
    assert len(parse(many, "svc.toml").items) == 3


def test_items_start_in_dependency_order(day_dir: Path) -> None:
    text = """
[senders.day]
file = "day.itch"
group = "239.1.1.1:30001"
[feeds.f]
group = "239.1.1.1:30001"
bus = "md"
[books.f]
bus = "md"
[rings.signals]
capacity = 64
slot_size = 8
[stages.strategy]
function = "json:dumps"
reads = ["md.book"]
writes = ["signals"]
[stages.sink]
function = "json:dumps"
reads = ["signals"]
"""
    cfg = parse(text, "svc.toml", base_dir=str(day_dir))
    order = [[i.id for i in layer] for layer in cfg.order()]
    assert order == [
        ["feeds.f", "rings.signals"],
        ["books.f"],
        ["stages.strategy"],
        ["stages.sink"],
        ["senders.day"],
    ]


def test_the_example_configs_load(tmp_path: Path) -> None:
    examples = sorted(EXAMPLES.glob("*.toml"))
    assert len(examples) >= 2
    for path in examples:
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        for py in EXAMPLES.glob("*.py"):
            shutil.copy(py, tmp_path / py.name)
        cfg = load(copy)
        assert cfg.items, path
        out = subprocess.run(
            [sys.executable, "-m", "ringcast", "serve", str(copy), "--check"],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert "1. " in out.stdout


def test_the_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[service]\nname = "x"\n\n[rings.r]\ncapacity = 3\nslot_size = 8\n')
    out = subprocess.run(
        [sys.executable, "-m", "ringcast", "serve", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"ringcast serve: {bad}:5: rings.r.capacity: expected a power of two (ring slots), "
        "got 3: try 4"
    )
    missing = subprocess.run(
        [sys.executable, "-m", "ringcast", "serve", str(tmp_path / "none.toml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 2 and "no such file" in missing.stderr
    neither = subprocess.run(
        [sys.executable, "-m", "ringcast", "serve"], capture_output=True, text=True, timeout=60
    )
    assert neither.returncode == 2 and "CONFIG.toml or --demo" in neither.stderr


def test_a_sender_file_is_relative_to_the_config(tmp_path: Path) -> None:
    itch.generate(tmp_path / "day.itch", seed=1, messages=1000)
    cfg_path = tmp_path / "svc.toml"
    cfg_path.write_text('[senders.s]\nfile = "day.itch"\ngroup = "239.1.1.1:30001"\n')
    cwd = os.getcwd()
    try:
        os.chdir("/")
        cfg = load(cfg_path)
    finally:
        os.chdir(cwd)
    assert cfg.items["senders.s"].options["file"] == str(tmp_path / "day.itch")


def test_a_ring_directory_that_cannot_be_made_is_refused_with_its_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = tmp_path / "svc.toml"
    cfg.write_text(f'[service]\nname = "x"\ndir = "{blocker}/rings"\n')
    out = subprocess.run(
        [sys.executable, "-m", "ringcast", "serve", str(cfg)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == (
        f"ringcast serve: {cfg}:3: service.dir: cannot create rings in {blocker}/rings "
        f"(Not a directory for uid {os.getuid()}): give a directory this user can create or owns"
    )


def test_a_journal_starts_after_the_writers_of_its_ring(day_dir: Path) -> None:
    cfg = parse(
        '[rings."md.q"]\ncapacity = 64\nslot_size = 8\n'
        '[stages.w]\nfunction = "json:dumps"\nwrites = ["md.q"]\n'
        '[feeds.f]\ngroup = "239.1.1.1:30001"\nbus = "fx"\n'
        '[journals.q]\nring = "md.q"\ndir = "tape"\nfsync = "always"\n'
        '[journals.itch]\nring = "fx.itch"\ndir = "itch"\n',
        "svc.toml",
        base_dir=str(day_dir),
    )
    assert cfg.items["journals.q"].deps == ["rings.md.q", "stages.w"]
    assert cfg.items["journals.itch"].deps == ["feeds.f"]
    assert cfg.items["journals.q"].options["dir"] == str(day_dir / "tape")
    with pytest.raises(ConfigError, match='fsync: expected "never", "always"'):
        parse('[journals.q]\nring = "a"\ndir = "t"\nfsync = "sometimes"\n', "svc.toml")


def test_bridges_start_after_their_ring_and_say_what_is_wrong(day_dir: Path) -> None:
    cfg = parse(
        '[rings."md.q"]\ncapacity = 64\nslot_size = 8\n'
        '[stages.w]\nfunction = "json:dumps"\nwrites = ["md.q"]\n'
        '[bridges.out]\nrole = "send"\nring = "md.q"\n'
        'channel = "aeron:udp?endpoint=10.0.0.2:40456"\n'
        '[bridges.in]\nrole = "recv"\nring = "md.far"\nbounded = true\n'
        'channel = "aeron:udp?endpoint=10.0.0.1:40457"\n'
        '[stages.r]\nfunction = "json:dumps"\nreads = ["md.far"]\n',
        "svc.toml",
        base_dir=str(day_dir),
    )
    assert cfg.items["bridges.out"].deps == ["rings.md.q", "stages.w"]
    assert cfg.items["stages.r"].deps == ["bridges.in"]
    ch = 'channel = "aeron:udp?endpoint=10.0.0.2:40456"\n'
    for body, said in [
        ('[bridges.b]\nrole = "send"\n' + ch, 'svc.toml:1: bridges.b: a sending bridge needs ring'),
        ('[bridges.b]\nrole = "recv"\nstage = "x"\n' + ch,
         'bridges.b.stage: only for role = "send"'),
        ('[bridges.b]\nrole = "send"\nring = "a"\nbounded = true\n' + ch,
         'bridges.b.bounded: only for role = "recv"'),
        ('[bridges.b]\nrole = "recv"\ncapacity = 1000\n' + ch,
         "bridges.b.capacity: a power of two, not 1,000"),
        ('[bridges.b]\nrole = "recv"\nchannel = "udp://10.0.0.2:40456"\n',
         'svc.toml:3: bridges.b.channel: bad channel "udp://10.0.0.2:40456": an Aeron channel '
         'starts with "aeron:"'),
        ('[bridges.b]\nrole = "both"\n' + ch, "bridges.b.role: expected"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError, match=re.escape(said)):
            parse(body, "svc.toml")
