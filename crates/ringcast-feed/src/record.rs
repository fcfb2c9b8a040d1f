//! Fixed-size, little-endian records: what a decoded ITCH message becomes
//! before it is published to a ring, and the machine-readable description
//! of each record's fields from which the Python side builds numpy dtypes.
//!
//! Layout of every record (one per message type, see
//! [`crate::itch::MessageType::record`]):
//!
//! | offset | field | kind |
//! |---|---|---|
//! | 0 | `recv_ns` | `u64`, receive time (the caller's clock) |
//! | 8 | `timestamp` | `u64`, ITCH ns since midnight (48 bits on the wire) |
//! | 16 | `stock_locate` | `u16` |
//! | 18 | `tracking_number` | `u16` |
//! | 20.. | the message body | each field at its wire offset + 9, same width |
//!
//! Invariants: the body keeps the wire order and widths, so a body field at
//! wire offset `o` sits at record offset `o + RECORD_BODY_SHIFT`; integers
//! are little-endian; ASCII fields are copied as they are (space-padded);
//! prices stay the raw fixed-point integers (scale in [`FieldKind::scale`]);
//! the record is zero-padded to a multiple of 8 bytes ([`record_size`]).
//! Fields are packed (a numpy dtype with explicit offsets): no padding
//! between fields, none implicit anywhere.

use std::fmt;

/// Record offset of a body field minus its wire offset: the 11-byte ITCH
/// header (type, locate, tracking, 6-byte timestamp) becomes a 20-byte
/// record header (`recv_ns`, 8-byte timestamp, locate, tracking).
pub const RECORD_BODY_SHIFT: usize = 20 - 11;

/// The size of the record of a message of `wire_len` bytes (type byte
/// included): header widened by [`RECORD_BODY_SHIFT`], rounded up to 8.
pub const fn record_size(wire_len: usize) -> usize {
    (wire_len + RECORD_BODY_SHIFT).div_ceil(8) * 8
}

/// The largest record of any message type (the 50-byte NOII message).
pub const MAX_RECORD_SIZE: usize = 64;

/// How a field is stored on the wire (big-endian) and in the record
/// (little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// One ASCII character (spec "Alpha", length 1); `u8` in Rust.
    Char,
    /// `N` ASCII bytes, left-justified, space-padded (spec "Alpha").
    Ascii(usize),
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Price(4): `u32` fixed point, 4 implied decimals (`1234500` = 123.45).
    Price4,
    /// Price(8): `u64` fixed point, 8 implied decimals (MWCB levels).
    Price8,
    /// Nanoseconds since midnight: 6 bytes on the wire, `u64` in records.
    Timestamp,
    /// `N` opaque bytes (a whole message in a [`RAW_MESSAGE`] record);
    /// numpy `V<N>`, so trailing zero bytes are kept.
    Bytes(usize),
}

impl FieldKind {
    /// Bytes the field takes on the wire.
    pub const fn wire_width(self) -> usize {
        match self {
            FieldKind::Char => 1,
            FieldKind::Ascii(n) | FieldKind::Bytes(n) => n,
            FieldKind::U16 => 2,
            FieldKind::U32 | FieldKind::Price4 => 4,
            FieldKind::U64 | FieldKind::Price8 => 8,
            FieldKind::Timestamp => 6,
        }
    }

    /// Bytes the field takes in a record.
    pub const fn record_width(self) -> usize {
        match self {
            FieldKind::Timestamp => 8,
            other => other.wire_width(),
        }
    }

    /// Implied decimal places of a price (0 for everything else): the value
    /// is `raw / 10^scale`.
    pub const fn scale(self) -> u32 {
        match self {
            FieldKind::Price4 => 4,
            FieldKind::Price8 => 8,
            _ => 0,
        }
    }

    /// The numpy type string of the field in a record: `"S1"`, `"S8"`,
    /// `"<u2"`, `"<u4"`, `"<u8"`.
    pub fn numpy(self) -> String {
        match self {
            FieldKind::Char => "S1".to_string(),
            FieldKind::Ascii(n) => format!("S{n}"),
            FieldKind::Bytes(n) => format!("V{n}"),
            other => format!("<u{}", other.record_width()),
        }
    }
}

impl fmt::Display for FieldKind {
    /// The kind as the description names it: `ascii[1]`, `ascii[8]`,
    /// `u16`, `u32`, `u64`; prices as `u32` / `u64` with their scale noted
    /// (`u32/1e4`), timestamps as `u64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldKind::Char => write!(f, "ascii[1]"),
            FieldKind::Ascii(n) => write!(f, "ascii[{n}]"),
            FieldKind::Bytes(n) => write!(f, "bytes[{n}]"),
            FieldKind::U16 => write!(f, "u16"),
            FieldKind::U32 => write!(f, "u32"),
            FieldKind::U64 | FieldKind::Timestamp => write!(f, "u64"),
            FieldKind::Price4 => write!(f, "u32/1e4"),
            FieldKind::Price8 => write!(f, "u64/1e8"),
        }
    }
}

/// One field of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordField {
    /// Field name (snake case, the spec's name).
    pub name: &'static str,
    /// Storage and meaning.
    pub kind: FieldKind,
    /// Byte offset inside the record.
    pub offset: usize,
}

/// The description of one message type's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLayout {
    /// The ITCH message type byte (`b'A'`).
    pub type_byte: u8,
    /// Snake-case name (`"add_order"`).
    pub name: &'static str,
    /// Upper-case constant name the Python side exports (`"ADD_ORDER"`).
    pub const_name: &'static str,
    /// Record size in bytes (a multiple of 8).
    pub size: usize,
    /// Every field, in offset order, none overlapping.
    pub fields: &'static [RecordField],
}

impl RecordLayout {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&RecordField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// A numpy dtype description in Python literal syntax:
    /// `{'names': [...], 'formats': [...], 'offsets': [...], 'itemsize': N}`.
    pub fn numpy_dtype(&self) -> String {
        let list = |f: &dyn Fn(&RecordField) -> String| {
            self.fields.iter().map(f).collect::<Vec<_>>().join(", ")
        };
        format!(
            "{{'names': [{}], 'formats': [{}], 'offsets': [{}], 'itemsize': {}}}",
            list(&|f| format!("'{}'", f.name)),
            list(&|f| format!("'{}'", f.kind.numpy())),
            list(&|f| f.offset.to_string()),
            self.size
        )
    }

    /// The record's dtype as numpy's `.npy` format writes it
    /// (`numpy.lib.format.dtype_to_descr`), in Python literal syntax:
    /// `[('recv_ns', '<u8'), ..., ('', '|V3')]`, padding as unnamed void
    /// fields. This is the form a ring header stores a dtype in (after
    /// `numpy:`), so rings made here and in Python compare equal.
    pub fn npy_descr(&self) -> String {
        let mut parts = Vec::with_capacity(self.fields.len() + 1);
        let mut at = 0;
        let pad = |parts: &mut Vec<String>, from: usize, to: usize| {
            if to > from {
                parts.push(format!("('', '|V{}')", to - from));
            }
        };
        for f in self.fields {
            pad(&mut parts, at, f.offset);
            let code = match f.kind {
                FieldKind::Char | FieldKind::Ascii(_) => format!("|S{}", f.kind.record_width()),
                FieldKind::Bytes(n) => format!("|V{n}"),
                other => format!("<u{}", other.record_width()),
            };
            parts.push(format!("('{}', '{code}')", f.name));
            at = f.offset + f.kind.record_width();
        }
        pad(&mut parts, at, self.size);
        format!("[{}]", parts.join(", "))
    }
}

/// The four header fields every record starts with.
pub(crate) const HEADER_FIELDS: [RecordField; 4] = [
    RecordField {
        name: "recv_ns",
        kind: FieldKind::U64,
        offset: 0,
    },
    RecordField {
        name: "timestamp",
        kind: FieldKind::Timestamp,
        offset: 8,
    },
    RecordField {
        name: "stock_locate",
        kind: FieldKind::U16,
        offset: 16,
    },
    RecordField {
        name: "tracking_number",
        kind: FieldKind::U16,
        offset: 18,
    },
];

/// A record of any type, by value: the bytes and how many of them are used.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RecordBuf {
    bytes: [u8; MAX_RECORD_SIZE],
    len: usize,
}

impl RecordBuf {
    /// Wraps the first `len` bytes of `bytes` (`len <= MAX_RECORD_SIZE`,
    /// held by every caller: they pass a record size from the table).
    pub(crate) fn new(bytes: [u8; MAX_RECORD_SIZE], len: usize) -> Self {
        debug_assert!(len <= MAX_RECORD_SIZE);
        RecordBuf {
            bytes,
            len: len.min(MAX_RECORD_SIZE),
        }
    }

    /// The record's bytes (its type's [`RecordLayout::size`] of them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Debug for RecordBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordBuf({:02x?})", self.as_bytes())
    }
}

/// Little-endian field readers over record bytes, for tests and consumers
/// that hold a record without numpy. `None` when the field does not fit.
pub fn read_le(record: &[u8], field: &RecordField) -> Option<u64> {
    let bytes = record.get(field.offset..field.offset + field.kind.record_width())?;
    match field.kind {
        FieldKind::Char | FieldKind::Ascii(_) | FieldKind::Bytes(_) => None,
        _ => {
            let mut wide = [0u8; 8];
            wide[..bytes.len()].copy_from_slice(bytes);
            Some(u64::from_le_bytes(wide))
        }
    }
}

/// Size of a [`RAW_MESSAGE`] record.
pub const RAW_MESSAGE_SIZE: usize = 72;

/// Any message as received, in sequence order: the feed handler's `itch`
/// topic, from which order books and journals take the whole stream in
/// order (the per-type topics each hold one type). `message` holds the
/// `length` wire bytes (big-endian, as sent), zero-padded.
pub const RAW_MESSAGE: RecordLayout = RecordLayout {
    type_byte: 0,
    name: "raw_message",
    const_name: "RAW_MESSAGE",
    size: RAW_MESSAGE_SIZE,
    fields: &[
        RecordField {
            name: "recv_ns",
            kind: FieldKind::U64,
            offset: 0,
        },
        RecordField {
            name: "sequence",
            kind: FieldKind::U64,
            offset: 8,
        },
        RecordField {
            name: "length",
            kind: FieldKind::U16,
            offset: 16,
        },
        RecordField {
            name: "message",
            kind: FieldKind::Bytes(crate::itch::MAX_MESSAGE_LEN),
            offset: 18,
        },
    ],
};

/// The [`RAW_MESSAGE`] record of `message` (MoldUDP64 sequence `sequence`,
/// received at `recv_ns`); `None` when it is longer than any ITCH message.
pub fn raw_record(recv_ns: u64, sequence: u64, message: &[u8]) -> Option<[u8; RAW_MESSAGE_SIZE]> {
    let body = 18;
    if message.len() > crate::itch::MAX_MESSAGE_LEN {
        return None;
    }
    let mut out = [0u8; RAW_MESSAGE_SIZE];
    out[0..8].copy_from_slice(&recv_ns.to_le_bytes());
    out[8..16].copy_from_slice(&sequence.to_le_bytes());
    out[16..18].copy_from_slice(&(message.len() as u16).to_le_bytes());
    out[body..body + message.len()].copy_from_slice(message);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_eight() {
        assert_eq!(record_size(12), 24);
        assert_eq!(record_size(36), 48);
        assert_eq!(record_size(50), 64);
        assert_eq!(record_size(19), 32);
    }

    #[test]
    fn kinds_name_their_storage() {
        assert_eq!(FieldKind::Ascii(8).to_string(), "ascii[8]");
        assert_eq!(FieldKind::Price4.to_string(), "u32/1e4");
        assert_eq!(FieldKind::Price4.numpy(), "<u4");
        assert_eq!(FieldKind::Timestamp.numpy(), "<u8");
        assert_eq!(FieldKind::Char.numpy(), "S1");
        assert_eq!(FieldKind::Price8.scale(), 8);
        assert_eq!(FieldKind::U32.scale(), 0);
    }

    #[test]
    fn read_le_refuses_text_and_short_records() {
        let f = RecordField {
            name: "x",
            kind: FieldKind::U32,
            offset: 2,
        };
        assert_eq!(read_le(&[0, 0, 1, 2, 0, 0], &f), Some(0x0201));
        assert_eq!(read_le(&[0, 0, 1, 2, 0], &f), None);
        let t = RecordField {
            name: "s",
            kind: FieldKind::Ascii(2),
            offset: 0,
        };
        assert_eq!(read_le(b"AB", &t), None);
    }
}
