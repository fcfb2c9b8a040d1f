//! The journal's on-disk format: segment headers, seal records and entries.
//!
//! A journal is a directory of segment files named by the sequence of their
//! first entry (`00000000000000001234.rcj`, twenty digits so that names sort
//! as numbers). Each segment is
//!
//! ```text
//! offset 0     header (HEADER_LEN bytes): identity of the ring recorded
//!              (name, slot size, flags, schema), the segment's first
//!              sequence, its clocks, a CRC32C of all of it
//!        SEAL_AT  seal record, written when the segment is closed: entry,
//!              message and gap counts, last sequence, time range, a CRC32C
//! offset HEADER_LEN  entries, each `stride` bytes:
//!              tag u32 (kind << 28 | payload length), crc u32,
//!              seq u64, time u64, payload (slot size rounded up to 8)
//! ```
//!
//! Every entry has the same size (`stride`), so entry `i` is at a known
//! offset: a reader maps a segment and views it as an array (numpy does
//! exactly that), seeks by sequence or time with a binary search, and
//! steps over a damaged entry without losing its footing. The cost is that
//! a short message of a raw ring takes a whole slot's room.
//!
//! An entry's CRC32C covers its tag, sequence, time and payload bytes. The
//! writer appends entries with `pwrite`, so a process killed mid-write
//! leaves at most a torn last entry, which fails its CRC (or is cut short)
//! and is recognised as the unwritten tail. A *gap entry* stands for
//! messages the recorder never saw (a lossy ring lapped it, or it was down):
//! its sequence is the first one missing, its payload the count.

use std::fmt;

/// First bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"RCJRNL01";
/// Version of the layout below.
pub const VERSION: u32 = 1;
/// Bytes before the first entry (one page: entries start page-aligned).
pub const HEADER_LEN: usize = 4096;
/// Where the seal record starts inside the header.
pub const SEAL_AT: usize = 3968;
/// First bytes of a seal record.
pub const SEAL_MAGIC: [u8; 8] = *b"RCJSEAL1";
/// Bytes of the immutable header covered by its CRC (stored right after).
const HEADER_CRC_AT: usize = 3960;
/// Bytes of a seal record covered by its CRC (stored right after).
const SEAL_CRC_AT: usize = SEAL_AT + 72;
/// Suffix of segment files.
pub const SEGMENT_SUFFIX: &str = ".rcj";

/// Bytes of an entry before its payload: tag, crc, sequence, time.
pub const ENTRY_HEADER: usize = 24;
/// The kind is stored in the top bits of the tag, the length below.
pub const KIND_SHIFT: u32 = 28;
/// Mask of the payload length in a tag.
pub const LEN_MASK: u32 = (1 << KIND_SHIFT) - 1;
/// Longest ring name stored.
pub const MAX_NAME_LEN: usize = 256;
/// Longest schema stored.
pub const MAX_SCHEMA_LEN: usize = 2048;

// Where the header's fields are.
const NAME_AT: usize = 96;
const SCHEMA_AT: usize = NAME_AT + MAX_NAME_LEN;
const _: () = assert!(SCHEMA_AT + MAX_SCHEMA_LEN <= HEADER_CRC_AT);
const _: () = assert!(HEADER_CRC_AT + 4 <= SEAL_AT);
const _: () = assert!(SEAL_CRC_AT + 4 <= HEADER_LEN);

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A message of the ring: payload as published.
    Message = 1,
    /// Messages the recorder never saw: the payload is their count (u64).
    Gap = 2,
}

impl Kind {
    fn from_tag(tag: u32) -> Option<Kind> {
        match tag >> KIND_SHIFT {
            1 => Some(Kind::Message),
            2 => Some(Kind::Gap),
            _ => None,
        }
    }
}

/// Entry size for a ring of `slot_size`-byte messages.
pub fn stride(slot_size: u32) -> usize {
    ENTRY_HEADER + (slot_size as usize).max(8).next_multiple_of(8)
}

/// The file name of the segment starting at `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_SUFFIX}")
}

/// The first sequence a segment file name stands for, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The ring a journal records: what a replay needs to make the same ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingDescription {
    /// The ring's name.
    pub name: String,
    /// Largest message (exact size on fixed-size rings).
    pub slot_size: u32,
    /// The ring's `FLAG_*` bits (fixed size, bounded, multi-producer, timestamps).
    pub flags: u32,
    /// The ring's slots.
    pub capacity: u64,
    /// The ring's schema (a numpy dtype description, or empty for bytes).
    pub schema: Vec<u8>,
}

impl RingDescription {
    /// The description of a ring, from its layout.
    pub fn of(name: &str, layout: &ringcast_core::Layout) -> RingDescription {
        RingDescription {
            name: name.to_owned(),
            slot_size: layout.slot_size,
            flags: layout.flags,
            capacity: layout.capacity,
            schema: layout.schema.clone(),
        }
    }

    /// Whether the ring's messages carry publish times.
    pub fn timestamps(&self) -> bool {
        self.flags & ringcast_core::format::layout::FLAG_TIMESTAMPS != 0
    }

    /// Whether every message is exactly `slot_size` bytes.
    pub fn fixed_size(&self) -> bool {
        self.flags & ringcast_core::format::layout::FLAG_FIXED_SIZE != 0
    }

    /// What differs between two descriptions that makes one journal unable
    /// to hold both rings' messages (name, slot size, schema), if anything.
    pub fn clash(&self, other: &RingDescription) -> Option<String> {
        if self.name != other.name {
            return Some(format!(
                "it records ring {:?}, not {:?}",
                self.name, other.name
            ));
        }
        if self.slot_size != other.slot_size {
            return Some(format!(
                "its messages are up to {} bytes, ring {:?} has {}-byte slots",
                self.slot_size, other.name, other.slot_size
            ));
        }
        let kept = ringcast_core::format::layout::FLAG_TIMESTAMPS
            | ringcast_core::format::layout::FLAG_FIXED_SIZE;
        if self.flags & kept != other.flags & kept {
            let what = |flags: u32| {
                format!(
                    "{} messages {} publish times",
                    if flags & ringcast_core::format::layout::FLAG_FIXED_SIZE != 0 {
                        "fixed-size"
                    } else {
                        "variable-size"
                    },
                    if flags & ringcast_core::format::layout::FLAG_TIMESTAMPS != 0 {
                        "with"
                    } else {
                        "without"
                    }
                )
            };
            return Some(format!(
                "it holds {}, ring {:?} has {}",
                what(self.flags),
                other.name,
                what(other.flags)
            ));
        }
        if self.schema != other.schema {
            return Some(format!(
                "its schema {:?} is not ring {:?}'s {:?}",
                String::from_utf8_lossy(&self.schema),
                other.name,
                String::from_utf8_lossy(&other.schema)
            ));
        }
        None
    }
}

/// A segment's immutable header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The ring recorded.
    pub ring: RingDescription,
    /// Bytes per entry.
    pub stride: u32,
    /// Sequence of the segment's first entry (also its file name).
    pub first_seq: u64,
    /// Which segment of the journal this is (0, 1, ...).
    pub number: u64,
    /// Wall clock (CLOCK_REALTIME ns) when the segment was made.
    pub created_unix_ns: u64,
    /// Entry times (CLOCK_MONOTONIC ns of the recording host) plus this are
    /// wall clock times: taken when the segment was made.
    pub clock_offset_ns: i64,
}

/// A segment's seal: written once the segment is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seal {
    /// Entries in the segment.
    pub entries: u64,
    /// Of which messages.
    pub messages: u64,
    /// Of which gap entries.
    pub gaps: u64,
    /// Messages the gap entries stand for.
    pub lost: u64,
    /// Sequence after the last entry's (the next segment's first).
    pub end_seq: u64,
    /// Publish time of the first and last message (0 if none).
    pub first_time: u64,
    pub last_time: u64,
    /// Wall clock when the seal was written.
    pub sealed_unix_ns: u64,
}

/// Why a header or seal cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The file is shorter than a header.
    Short { len: u64 },
    /// Not a journal segment (or its first bytes were overwritten).
    Magic,
    /// Written by another version of the format.
    Version { version: u32 },
    /// The header's CRC does not match (bytes changed on disk).
    Checksum,
    /// Fields out of range (a damaged header whose CRC happens to match).
    Field(String),
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderProblem::Short { len } => {
                write!(
                    f,
                    "it is {len} bytes, shorter than a segment header ({HEADER_LEN})"
                )
            }
            HeaderProblem::Magic => write!(f, "it does not start with a journal segment's magic"),
            HeaderProblem::Version { version } => write!(
                f,
                "it has format version {version}; this ringcast reads version {VERSION}"
            ),
            HeaderProblem::Checksum => write!(f, "its header fails its CRC32C (bytes changed)"),
            HeaderProblem::Field(what) => write!(f, "its header is damaged: {what}"),
        }
    }
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The little-endian u32 at `at` (the caller checked the length).
pub fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

/// The little-endian u64 at `at` (the caller checked the length).
pub fn get_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

impl SegmentHeader {
    /// The header as the first `HEADER_LEN` bytes of a segment file
    /// (an empty seal area).
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER_LEN];
        buf[..8].copy_from_slice(&MAGIC);
        put_u32(&mut buf, 8, VERSION);
        put_u32(&mut buf, 12, HEADER_LEN as u32);
        put_u32(&mut buf, 16, self.stride);
        put_u32(&mut buf, 20, self.ring.slot_size);
        put_u32(&mut buf, 24, self.ring.flags);
        put_u32(&mut buf, 28, self.ring.schema.len() as u32);
        put_u64(&mut buf, 32, self.first_seq);
        put_u64(&mut buf, 40, self.number);
        put_u64(&mut buf, 48, self.created_unix_ns);
        put_u64(&mut buf, 56, self.clock_offset_ns as u64);
        put_u64(&mut buf, 64, self.ring.capacity);
        put_u32(&mut buf, 72, self.ring.name.len() as u32);
        buf[NAME_AT..NAME_AT + self.ring.name.len()].copy_from_slice(self.ring.name.as_bytes());
        buf[SCHEMA_AT..SCHEMA_AT + self.ring.schema.len()].copy_from_slice(&self.ring.schema);
        let crc = crc32c::crc32c(&buf[..HEADER_CRC_AT]);
        put_u32(&mut buf, HEADER_CRC_AT, crc);
        buf
    }

    /// Reads and checks a header; `file_len` is the whole file's length.
    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, HeaderProblem> {
        if buf.len() < HEADER_LEN {
            return Err(HeaderProblem::Short {
                len: buf.len() as u64,
            });
        }
        if buf[..8] != MAGIC {
            return Err(HeaderProblem::Magic);
        }
        let version = get_u32(buf, 8);
        if version != VERSION {
            return Err(HeaderProblem::Version { version });
        }
        if crc32c::crc32c(&buf[..HEADER_CRC_AT]) != get_u32(buf, HEADER_CRC_AT) {
            return Err(HeaderProblem::Checksum);
        }
        let field = |what: String| Err(HeaderProblem::Field(what));
        if get_u32(buf, 12) as usize != HEADER_LEN {
            return field(format!("header length {}", get_u32(buf, 12)));
        }
        let slot_size = get_u32(buf, 20);
        let stride_found = get_u32(buf, 16);
        if slot_size == 0
            || slot_size > ringcast_core::format::layout::MAX_SLOT_SIZE
            || stride_found as usize != stride(slot_size)
        {
            return field(format!("slot size {slot_size}, entry size {stride_found}"));
        }
        let schema_len = get_u32(buf, 28) as usize;
        let name_len = get_u32(buf, 72) as usize;
        if schema_len > MAX_SCHEMA_LEN || name_len > MAX_NAME_LEN {
            return field(format!(
                "schema length {schema_len}, name length {name_len}"
            ));
        }
        let Ok(name) = std::str::from_utf8(&buf[NAME_AT..NAME_AT + name_len]) else {
            return field("the ring name is not UTF-8".to_owned());
        };
        Ok(SegmentHeader {
            ring: RingDescription {
                name: name.to_owned(),
                slot_size,
                flags: get_u32(buf, 24),
                capacity: get_u64(buf, 64),
                schema: buf[SCHEMA_AT..SCHEMA_AT + schema_len].to_vec(),
            },
            stride: stride_found,
            first_seq: get_u64(buf, 32),
            number: get_u64(buf, 40),
            created_unix_ns: get_u64(buf, 48),
            clock_offset_ns: get_u64(buf, 56) as i64,
        })
    }
}

impl Seal {
    /// Counts entry `e` in: entries, messages (and their time range) or
    /// gaps (and what they stand for), end sequence. What the writer keeps
    /// for the seal, recovery recounts, and `verify` checks against.
    pub fn add(&mut self, e: &Entry<'_>) {
        self.entries += 1;
        self.end_seq = e.end_seq();
        match e.body {
            Body::Message(_) => {
                if self.messages == 0 {
                    self.first_time = e.time;
                }
                self.last_time = e.time;
                self.messages += 1;
            }
            Body::Gap(n) => {
                self.gaps += 1;
                self.lost += n;
            }
        }
    }

    /// The seal record (written at `SEAL_AT`).
    pub fn encode(&self) -> [u8; HEADER_LEN - SEAL_AT] {
        let mut rec = [0u8; HEADER_LEN - SEAL_AT];
        rec[..8].copy_from_slice(&SEAL_MAGIC);
        let fields = [
            self.entries,
            self.messages,
            self.gaps,
            self.lost,
            self.end_seq,
            self.first_time,
            self.last_time,
            self.sealed_unix_ns,
        ];
        for (i, v) in fields.iter().enumerate() {
            put_u64(&mut rec, 8 + 8 * i, *v);
        }
        let crc = crc32c::crc32c(&rec[..SEAL_CRC_AT - SEAL_AT]);
        put_u32(&mut rec, SEAL_CRC_AT - SEAL_AT, crc);
        rec
    }

    /// The seal in a header, if one was written and is intact.
    pub fn decode(header: &[u8]) -> Option<Seal> {
        let rec = header.get(SEAL_AT..HEADER_LEN)?;
        if rec[..8] != SEAL_MAGIC
            || crc32c::crc32c(&rec[..SEAL_CRC_AT - SEAL_AT]) != get_u32(rec, SEAL_CRC_AT - SEAL_AT)
        {
            return None;
        }
        let f = |i: usize| get_u64(rec, 8 + 8 * i);
        Some(Seal {
            entries: f(0),
            messages: f(1),
            gaps: f(2),
            lost: f(3),
            end_seq: f(4),
            first_time: f(5),
            last_time: f(6),
            sealed_unix_ns: f(7),
        })
    }
}

/// One entry, read from its bytes and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Sequence of the message (gap: of the first message missing).
    pub seq: u64,
    /// Publish time (CLOCK_MONOTONIC ns; 0 on rings without timestamps).
    pub time: u64,
    /// A message's payload, or a gap.
    pub body: Body<'a>,
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// A message as published.
    Message(&'a [u8]),
    /// `count` messages never recorded, from the entry's sequence on.
    Gap(u64),
}

impl Entry<'_> {
    /// The sequence after this entry's messages.
    pub fn end_seq(&self) -> u64 {
        match self.body {
            Body::Message(_) => self.seq + 1,
            Body::Gap(count) => self.seq + count,
        }
    }
}

/// Why an entry's bytes are not an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryProblem {
    /// All zero: nothing was written here.
    Empty,
    /// The tag names no kind, or a length beyond the slot.
    Tag,
    /// The CRC does not match the bytes.
    Checksum,
}

pub use crate::crc::entry_crc;

/// Writes an entry into `out` (exactly `stride` bytes, zeroed beyond the
/// payload), CRC included.
#[inline]
pub fn encode_entry(out: &mut [u8], seq: u64, time: u64, kind: Kind, payload: &[u8]) {
    let tag = encode_entry_unstamped(out, seq, time, kind, payload);
    put_u32(
        out,
        4,
        entry_crc(tag, &out[8..ENTRY_HEADER + payload.len()]),
    );
}

/// [`encode_entry`] without its CRC (left 0), returning the tag: for a
/// writer that stamps the CRCs of a whole batch side by side
/// ([`crate::crc::stamp`]) before the batch is written.
#[inline]
pub fn encode_entry_unstamped(
    out: &mut [u8],
    seq: u64,
    time: u64,
    kind: Kind,
    payload: &[u8],
) -> u32 {
    debug_assert!(payload.len() + ENTRY_HEADER <= out.len());
    let len = payload.len();
    let tag = ((kind as u32) << KIND_SHIFT) | len as u32;
    put_u32(out, 0, tag);
    put_u32(out, 4, 0);
    put_u64(out, 8, seq);
    put_u64(out, 16, time);
    out[ENTRY_HEADER..ENTRY_HEADER + len].copy_from_slice(payload);
    out[ENTRY_HEADER + len..].fill(0);
    tag
}

/// Reads the entry in `bytes` (one stride), checking its tag against
/// `slot_size` and its CRC.
#[inline]
pub fn decode_entry(bytes: &[u8], slot_size: u32) -> Result<Entry<'_>, EntryProblem> {
    decode_entry_checked(bytes, slot_size, true)
}

/// [`decode_entry`], checking the CRC only with `crc` (the tag is always
/// checked: a reader never trusts a length beyond the slot).
#[inline]
pub fn decode_entry_checked(
    bytes: &[u8],
    slot_size: u32,
    crc: bool,
) -> Result<Entry<'_>, EntryProblem> {
    let tag = get_u32(bytes, 0);
    let len = (tag & LEN_MASK) as usize;
    let kind = match Kind::from_tag(tag) {
        Some(kind) if len <= (slot_size as usize).max(8) && ENTRY_HEADER + len <= bytes.len() => {
            kind
        }
        _ if tag == 0 && bytes.iter().all(|&b| b == 0) => return Err(EntryProblem::Empty),
        _ => return Err(EntryProblem::Tag),
    };
    if kind == Kind::Gap && len != 8 {
        return Err(EntryProblem::Tag);
    }
    if crc && entry_crc(tag, &bytes[8..ENTRY_HEADER + len]) != get_u32(bytes, 4) {
        return Err(EntryProblem::Checksum);
    }
    let payload = &bytes[ENTRY_HEADER..ENTRY_HEADER + len];
    let seq = get_u64(bytes, 8);
    let body = match kind {
        Kind::Message => Body::Message(payload),
        Kind::Gap => Body::Gap(get_u64(payload, 0)),
    };
    // What the writer can never write (a sequence past the last, an empty
    // gap) is not an entry, whatever its CRC says: every sequence stays
    // accounted for exactly once.
    let count = match body {
        Body::Message(_) => 1,
        Body::Gap(n) => n,
    };
    if count == 0 || seq.checked_add(count).is_none() {
        return Err(EntryProblem::Tag);
    }
    Ok(Entry {
        seq,
        time: get_u64(bytes, 16),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> RingDescription {
        RingDescription {
            name: "quotes".into(),
            slot_size: 20,
            flags: 9,
            capacity: 1024,
            schema: b"numpy:'<u8'".to_vec(),
        }
    }

    #[test]
    fn header_and_seal_round_trip_and_damage_is_caught() {
        let header = SegmentHeader {
            ring: ring(),
            stride: stride(20) as u32,
            first_seq: 77,
            number: 3,
            created_unix_ns: 5,
            clock_offset_ns: -12,
        };
        let mut bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header.clone()));
        assert_eq!(Seal::decode(&bytes), None);
        let seal = Seal {
            entries: 10,
            messages: 9,
            gaps: 1,
            lost: 4,
            end_seq: 91,
            first_time: 1,
            last_time: 2,
            sealed_unix_ns: 3,
        };
        bytes[SEAL_AT..].copy_from_slice(&seal.encode());
        assert_eq!(Seal::decode(&bytes), Some(seal));
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        let mut torn = bytes.clone();
        torn[SEAL_AT + 20] ^= 1;
        assert_eq!(Seal::decode(&torn), None);
        bytes[NAME_AT] ^= 0x20;
        assert_eq!(SegmentHeader::decode(&bytes), Err(HeaderProblem::Checksum));
        assert_eq!(
            SegmentHeader::decode(&bytes[..100]),
            Err(HeaderProblem::Short { len: 100 })
        );
    }

    #[test]
    fn entries_round_trip_and_every_flipped_bit_is_caught() {
        let s = stride(20);
        assert_eq!(s, 48);
        let mut buf = vec![0u8; s];
        assert_eq!(decode_entry(&buf, 20), Err(EntryProblem::Empty));
        encode_entry(&mut buf, 5, 9, Kind::Message, b"hello");
        let e = decode_entry(&buf, 20).unwrap();
        assert_eq!(
            (e.seq, e.time, e.body),
            (5, 9, Body::Message(&b"hello"[..]))
        );
        for bit in 0..(ENTRY_HEADER + 5) * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_entry(&bad, 20).is_err(), "bit {bit}");
        }
        encode_entry(&mut buf, 6, 0, Kind::Gap, &40u64.to_le_bytes());
        let e = decode_entry(&buf, 20).unwrap();
        assert_eq!((e.body, e.end_seq()), (Body::Gap(40), 46));
        // Whole, CRC and all, but impossible: never taken for an entry.
        encode_entry(&mut buf, 6, 0, Kind::Gap, &(u64::MAX - 2).to_le_bytes());
        assert_eq!(decode_entry(&buf, 20), Err(EntryProblem::Tag));
        encode_entry(&mut buf, 6, 0, Kind::Gap, &0u64.to_le_bytes());
        assert_eq!(decode_entry(&buf, 20), Err(EntryProblem::Tag));
        encode_entry(&mut buf, u64::MAX, 0, Kind::Message, b"x");
        assert_eq!(decode_entry(&buf, 20), Err(EntryProblem::Tag));
    }

    #[test]
    fn segment_names_sort_as_numbers() {
        assert_eq!(segment_name(1234), "00000000000000001234.rcj");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("1234.rcj"), None);
        assert_eq!(parse_segment_name("0000000000000000123x.rcj"), None);
    }
}
