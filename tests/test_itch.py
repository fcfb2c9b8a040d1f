"""ITCH 5.0 records and files: the dtypes as rings store them, the generated
day (deterministic, realistic, every message type), every field of every
message against an independent decoder (PyPI ``itchfeed``), bad files, and
the ``ringcast feed generate|decode`` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ringcast
import ringcast.itch as itch
from ringcast import _schema

# The independent decoder, pure Python: its C++ backend (itchcpp) is the
# same authors' code, so the pure one is the second opinion.
os.environ["ITCH_NO_CPP"] = "1"
from itch.parser import MessageParser

DAY_MESSAGES = 1_000_000


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("itch") / "day.itch"
    assert itch.generate(path, seed=42, messages=DAY_MESSAGES) == DAY_MESSAGES
    return str(path)


def test_every_type_has_a_record_dtype_that_rings_store_as_is():
    assert len(itch.MESSAGE_TYPES) == 23
    lengths = {t.byte: t.length for t in itch.MESSAGE_TYPES.values()}
    assert lengths == {
        "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
        "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
        "Q": 40, "B": 19, "I": 50, "N": 20, "O": 48,
    }  # fmt: skip
    for t in itch.MESSAGE_TYPES.values():
        dt = t.dtype
        assert dt is getattr(itch, t.const_name)
        assert dt.names[:4] == ("recv_ns", "timestamp", "stock_locate", "tracking_number")
        assert dt.itemsize % 8 == 0 and dt.itemsize <= 64
        # The header form a ring stores is numpy's own: a Bus publisher made
        # in Python with this dtype and the handler's ring are the same ring.
        assert _schema.decode(_schema.encode(dt), t.name) == dt
    assert itch.ADD_ORDER.names[4:] == (
        "order_reference_number",
        "buy_sell_indicator",
        "shares",
        "stock",
        "price",
    )
    assert itch.MESSAGE_TYPES["A"].scales == {"price": 4}
    assert itch.MESSAGE_TYPES["V"].scales == {f"level{i}": 8 for i in (1, 2, 3)}
    assert itch.message_type("add_order") is itch.message_type("A")
    with pytest.raises(ringcast.InvalidArgument, match=r"no ITCH 5\.0 message type 'Z'"):
        itch.message_type("Z")
    assert itch.price(1234500) == 123.45


def test_the_generator_is_deterministic_by_seed(tmp_path):
    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    itch.generate(a, seed=5, messages=50_000)
    itch.generate(b, seed=5, messages=50_000)
    itch.generate(c, seed=6, messages=50_000)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_a_generated_day_looks_like_a_day(day):
    recs = itch.read_file(day)
    counts = {name: len(r) for name, r in recs.items()}
    assert sum(counts.values()) == DAY_MESSAGES
    # Every message type occurs.
    assert all(counts[t.name] > 0 for t in itch.MESSAGE_TYPES.values()), counts
    # Order flow dominates; adds and deletes lead it, as in real days.
    assert counts["add_order"] > counts["order_executed"] > counts["trade"] > 0
    assert counts["order_delete"] > counts["order_cancel"]
    times = np.concatenate([r["timestamp"] for r in recs.values()])
    # From the start of messages (03:05) to the end of messages (20:05).
    assert times.min() >= 3 * 3600 * 10**9 and times.max() <= (20 * 3600 + 5 * 60) * 10**9
    # Busy open and close: the first and last half hour of regular trading
    # each hold more messages than the half hour around noon.
    adds = recs["add_order"]["timestamp"] / 1e9 / 3600
    open_, noon, close = (np.count_nonzero((adds >= h) & (adds < h + 0.5)) for h in (9.5, 12, 15.5))
    assert open_ > noon and close > noon, (open_, noon, close)
    # Activity is skewed: the busiest 10% of stocks carry most adds.
    per_stock = np.bincount(recs["add_order"]["stock_locate"])
    top = np.sort(per_stock)[::-1]
    assert top[: max(1, len(top) // 10)].sum() > 0.4 * top.sum()


def _fields_in_wire_order(msg) -> list:
    """itchfeed's values of a message, its header fields left out, in the
    order its class unpacks them (which is the wire order)."""
    skip = {"stock_locate", "tracking_number", "timestamp", "message_type", "description",
            "message_format", "message_pack_format", "message_size", "price_precision"}  # fmt: skip
    return [v for k, v in vars(msg).items() if k not in skip]


def test_every_field_of_every_message_matches_an_independent_decoder(day):
    """The whole generated day decoded by ringcast and by itchfeed (pure
    Python): the same messages, the same header and field values."""
    ours = itch.read_file(day)
    at = {name: 0 for name in ours}
    by_byte = {t.byte: t for t in itch.MESSAGE_TYPES.values()}
    n = 0
    with open(day, "rb") as f:
        for msg in MessageParser().parse_file(f):
            t = by_byte[msg.message_type.decode()]
            rec = ours[t.name][at[t.name]]
            at[t.name] += 1
            n += 1
            assert (rec["timestamp"], rec["stock_locate"], rec["tracking_number"]) == (
                msg.timestamp,
                msg.stock_locate,
                msg.tracking_number,
            ), (n, t.name)
            body = [rec[name] for name in t.dtype.names[4:]]
            theirs = _fields_in_wire_order(msg)
            assert len(body) == len(theirs), (t.name, t.dtype.names, vars(msg))
            for name, mine, other in zip(t.dtype.names[4:], body, theirs, strict=True):
                mine = mine.item() if hasattr(mine, "item") else mine
                if isinstance(other, bytes):
                    # numpy drops trailing NULs of byte strings; ITCH pads with spaces.
                    assert mine == other.rstrip(b"\0"), (n, t.name, name, mine, other)
                else:
                    assert mine == other, (n, t.name, name, mine, other)
    assert n == DAY_MESSAGES and sum(at.values()) == n


def test_bad_frames_are_counted_and_located_never_fatal(tmp_path):
    path = tmp_path / "bad.itch"
    good = tmp_path / "good.itch"
    itch.generate(good, seed=1, messages=100)
    data = bytearray(good.read_bytes())
    # Frame 0 is a 12-byte system event: make its type unknown, then append a
    # frame of the wrong length for its type, then a cut-off tail.
    data[2] = ord("Z")
    data += b"\x00\x05A1234" + b"\x00\x30S"
    path.write_bytes(bytes(data))
    report = itch.decode_report(path)
    assert report["messages"] == 99
    assert report["error_kinds"] == {
        "empty": 0, "unknown_type": 1, "wrong_length": 1, "truncated_tail": 1
    }  # fmt: skip
    offsets = [o for o, _ in report["first_errors"]]
    assert offsets[0] == 0 and "unknown ITCH message type 0x5a" in report["first_errors"][0][1]
    assert "is 5 bytes, expected 36" in report["first_errors"][1][1]
    assert offsets[2] == len(data) - 3
    recs = itch.read_file(path)
    assert sum(len(r) for r in recs.values()) == 99
    with pytest.raises(ringcast.FeedError, match="cannot read ITCH file"):
        itch.decode_report(tmp_path / "missing.itch")


def ringcast_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ringcast", *args], capture_output=True, text=True, timeout=120
    )


def test_feed_generate_and_decode_commands(tmp_path):
    path = tmp_path / "cli.itch"
    out = ringcast_cli("feed", "generate", "--out", str(path), "--seed", "3", "--messages", "20000")
    assert out.returncode == 0 and "wrote 20,000 messages" in out.stdout, out.stderr
    out = ringcast_cli("feed", "decode", str(path), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["messages"] == 20_000 and report["errors"] == 0
    assert report["by_type"]["add_order"] > 0
    out = ringcast_cli("feed", "decode", str(path))
    assert out.returncode == 0 and "20,000 messages, 0 errors" in out.stdout
    path.write_bytes(path.read_bytes() + b"\x00")
    out = ringcast_cli("feed", "decode", str(path))
    assert out.returncode == 1 and "truncated_tail 1" in out.stdout
    out = ringcast_cli("feed", "decode", str(tmp_path / "nope.itch"))
    assert out.returncode == 1 and "cannot read ITCH file" in out.stderr
    assert "Traceback" not in out.stderr
