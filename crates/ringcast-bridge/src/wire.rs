//! The bridge's frames: what one Aeron message carries between a sender and
//! its receivers. Pure bytes, no Aeron: encoded by the sender, decoded (and
//! checked, since they come off a network) by the receiver.
//!
//! Every frame starts with a 16-byte header: magic (`RCB1`), kind, three
//! reserved bytes, and the sender's *incarnation* (a random number per
//! sender run, so a receiver tells a restarted sender from the same one).
//! All integers are little-endian.
//!
//! | kind | after the header |
//! |------|------------------|
//! | `HELLO` | next seq, capacity, source ring created (ns), slot size, flags, name length, schema length, name, schema |
//! | `DATA`  | first seq, count, then per message: time u64, length u32, 0 u32, payload padded to 8 bytes |
//! | `GAP`   | first seq, count, cause: sequences the sender will never send |
//! | `TICK`  | next seq, the source ring's cursor: sent when idle, so lag and silence are told apart |
//! | `END`   | next seq: the source's publisher closed its ring and everything before was sent |
//!
//! A `DATA` frame holds consecutive sequences only: wherever the sender's
//! subscriber skipped (the source lapped it) a `GAP` frame says so first.
//! The receiver therefore knows, for every sequence, whether it was
//! delivered, announced lost by the sender, or never arrived.

use std::fmt;

/// `RCB1`: a ringcast bridge frame, format 1.
pub const MAGIC: u32 = u32::from_le_bytes(*b"RCB1");
/// Bytes of the common header.
pub const HEADER_LEN: usize = 16;
/// Bytes before each message's payload in a `DATA` frame.
pub const ENTRY_HEADER_LEN: usize = 16;
/// Bytes of a `DATA` frame before its first entry.
pub const DATA_PREFIX_LEN: usize = HEADER_LEN + 16;

const KIND_HELLO: u8 = 1;
const KIND_DATA: u8 = 2;
const KIND_GAP: u8 = 3;
const KIND_TICK: u8 = 4;
const KIND_END: u8 = 5;

/// Why a sender skipped sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapCause {
    /// The source ring overwrote them before the sender read them (a lossy
    /// source lapped the bridge), or they were declared lost in the source
    /// ring itself: the sender's subscriber counted them lost.
    SourceLost = 1,
}

impl GapCause {
    fn from_u32(v: u32) -> Option<GapCause> {
        (v == 1).then_some(GapCause::SourceLost)
    }
}

/// The source ring's shape, as a receiver needs it to make (or check) the
/// ring it publishes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The next sequence the sender sends.
    pub next_seq: u64,
    /// The source ring's capacity (the default for the far ring).
    pub capacity: u64,
    /// When the source ring was made (ns since the Unix epoch): a ring made
    /// anew restarts its sequences.
    pub source_created_ns: u64,
    pub slot_size: u32,
    /// The source ring's `FLAG_*` bits.
    pub flags: u32,
    /// The source ring's name.
    pub name: String,
    /// The source ring's schema (numpy dtype description; empty for bytes).
    pub schema: Vec<u8>,
}

/// One decoded frame; `Data` borrows the frame's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    Hello(Hello),
    Data(Data<'a>),
    Gap {
        first_seq: u64,
        count: u64,
        cause: GapCause,
    },
    Tick {
        next_seq: u64,
        source_cursor: u64,
    },
    End {
        next_seq: u64,
    },
}

/// The messages of a `DATA` frame: `count` consecutive sequences from
/// `first_seq`. Every entry was checked to lie inside the frame.
#[derive(Clone, PartialEq, Eq)]
pub struct Data<'a> {
    pub first_seq: u64,
    pub count: u32,
    entries: &'a [u8],
}

impl fmt::Debug for Data<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Data")
            .field("first_seq", &self.first_seq)
            .field("count", &self.count)
            .finish()
    }
}

impl<'a> Data<'a> {
    /// The messages, in order: `(time, payload)`.
    pub fn messages(&self) -> impl Iterator<Item = (u64, &'a [u8])> + 'a {
        let mut rest = self.entries;
        (0..self.count).map(move |_| {
            // Checked by `decode`: every entry is whole.
            let time = u64_at(rest, 0);
            let len = u32_at(rest, 8) as usize;
            let payload = &rest[ENTRY_HEADER_LEN..ENTRY_HEADER_LEN + len];
            rest = &rest[ENTRY_HEADER_LEN + padded(len)..];
            (time, payload)
        })
    }
}

/// A frame that is not one: what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than its header or than its kind's fixed part.
    Short {
        len: usize,
    },
    /// Not a ringcast bridge frame (another application on the stream).
    BadMagic(u32),
    UnknownKind(u8),
    /// An entry or a string runs past the frame's end, or the frame has
    /// bytes past its last entry.
    BadLength(String),
    /// A field holds a value no sender writes.
    BadValue(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Short { len } => write!(f, "a frame of {len} bytes is too short"),
            FrameError::BadMagic(m) => write!(
                f,
                "not a ringcast bridge frame (magic {m:#010x}): is another application \
                 publishing on this channel and stream?"
            ),
            FrameError::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            FrameError::BadLength(what) | FrameError::BadValue(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for FrameError {}

/// Rounds a payload length up to whole 8-byte words.
pub const fn padded(len: usize) -> usize {
    (len + 7) & !7
}

/// Bytes one message of `len` bytes takes in a `DATA` frame.
pub const fn entry_len(len: usize) -> usize {
    ENTRY_HEADER_LEN + padded(len)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

/// The incarnation of a frame's sender, if the frame has a whole header.
pub fn incarnation(frame: &[u8]) -> Option<u64> {
    (frame.len() >= HEADER_LEN && u32_at(frame, 0) == MAGIC).then(|| u64_at(frame, 8))
}

/// Decodes and checks one frame.
pub fn decode(frame: &[u8]) -> Result<Frame<'_>, FrameError> {
    let need = |n: usize| {
        if frame.len() < n {
            Err(FrameError::Short { len: frame.len() })
        } else {
            Ok(())
        }
    };
    need(HEADER_LEN)?;
    let magic = u32_at(frame, 0);
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    let body = &frame[HEADER_LEN..];
    let exact = |n: usize, what: &str| {
        need(HEADER_LEN + n)?;
        if body.len() != n {
            return Err(FrameError::BadLength(format!(
                "a {what} frame is {} bytes, not {}",
                frame.len(),
                HEADER_LEN + n
            )));
        }
        Ok(())
    };
    match frame[4] {
        KIND_HELLO => {
            need(HEADER_LEN + 40)?;
            let name_len = u16_at(body, 32) as usize;
            let schema_len = u16_at(body, 34) as usize;
            if body.len() != 40 + name_len + schema_len {
                return Err(FrameError::BadLength(format!(
                    "a hello frame of {} bytes does not hold a {name_len}-byte name and a \
                     {schema_len}-byte schema",
                    frame.len()
                )));
            }
            let name = std::str::from_utf8(&body[40..40 + name_len])
                .map_err(|_| FrameError::BadValue("the ring name is not UTF-8".into()))?;
            let hello = Hello {
                next_seq: u64_at(body, 0),
                capacity: u64_at(body, 8),
                source_created_ns: u64_at(body, 16),
                slot_size: u32_at(body, 24),
                flags: u32_at(body, 28),
                name: name.to_owned(),
                schema: body[40 + name_len..].to_vec(),
            };
            if hello.slot_size == 0 || !hello.capacity.is_power_of_two() {
                return Err(FrameError::BadValue(format!(
                    "a hello frame describes a ring of {} slots of {} bytes",
                    hello.capacity, hello.slot_size
                )));
            }
            Ok(Frame::Hello(hello))
        }
        KIND_DATA => {
            need(DATA_PREFIX_LEN)?;
            let first_seq = u64_at(body, 0);
            let count = u32_at(body, 8);
            let entries = &frame[DATA_PREFIX_LEN..];
            // Every entry must be whole, and nothing may follow the last.
            let mut at = 0usize;
            for i in 0..count {
                if entries.len() < at + ENTRY_HEADER_LEN {
                    return Err(FrameError::BadLength(format!(
                        "a data frame says {count} messages but ends inside the header of \
                         message {i}"
                    )));
                }
                let len = u32_at(entries, at + 8) as usize;
                if entries.len() < at + entry_len(len) {
                    return Err(FrameError::BadLength(format!(
                        "message {i} of a data frame claims {len} bytes, past the frame's end"
                    )));
                }
                at += entry_len(len);
            }
            if at != entries.len() {
                return Err(FrameError::BadLength(format!(
                    "a data frame has {} bytes after its {count} messages",
                    entries.len() - at
                )));
            }
            if count == 0 || first_seq.checked_add(count as u64).is_none() {
                return Err(FrameError::BadValue(format!(
                    "a data frame of {count} messages from sequence {first_seq}"
                )));
            }
            Ok(Frame::Data(Data {
                first_seq,
                count,
                entries,
            }))
        }
        KIND_GAP => {
            exact(24, "gap")?;
            let (first_seq, count) = (u64_at(body, 0), u64_at(body, 8));
            let cause = GapCause::from_u32(u32_at(body, 16))
                .ok_or_else(|| FrameError::BadValue("unknown gap cause".into()))?;
            if count == 0 || first_seq.checked_add(count).is_none() {
                return Err(FrameError::BadValue(format!(
                    "a gap of {count} messages from sequence {first_seq}"
                )));
            }
            Ok(Frame::Gap {
                first_seq,
                count,
                cause,
            })
        }
        KIND_TICK => {
            exact(16, "tick")?;
            Ok(Frame::Tick {
                next_seq: u64_at(body, 0),
                source_cursor: u64_at(body, 8),
            })
        }
        KIND_END => {
            exact(8, "end")?;
            Ok(Frame::End {
                next_seq: u64_at(body, 0),
            })
        }
        other => Err(FrameError::UnknownKind(other)),
    }
}

/// Writes frames into one reusable buffer: a sender's encoder.
#[derive(Debug)]
pub struct Encoder {
    incarnation: u64,
    buf: Vec<u8>,
    /// `DATA` being built: its first sequence and message count.
    data: Option<(u64, u32)>,
}

impl Encoder {
    pub fn new(incarnation: u64) -> Encoder {
        Encoder {
            incarnation,
            buf: Vec::with_capacity(64 * 1024),
            data: None,
        }
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    fn start(&mut self, kind: u8) {
        self.data = None;
        self.buf.clear();
        self.buf.extend_from_slice(&MAGIC.to_le_bytes());
        self.buf.extend_from_slice(&[kind, 0, 0, 0]);
        self.buf.extend_from_slice(&self.incarnation.to_le_bytes());
    }

    fn put_u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `HELLO` frame.
    pub fn hello(&mut self, h: &Hello) -> &[u8] {
        self.start(KIND_HELLO);
        self.put_u64(h.next_seq);
        self.put_u64(h.capacity);
        self.put_u64(h.source_created_ns);
        self.put_u32(h.slot_size);
        self.put_u32(h.flags);
        // Ring names are at most 255 bytes and schemas 2 KiB (ringcast-core
        // refuses longer ones), so both fit a u16.
        let name_len = u16::try_from(h.name.len()).expect("ring names are short");
        let schema_len = u16::try_from(h.schema.len()).expect("schemas are short");
        self.buf.extend_from_slice(&name_len.to_le_bytes());
        self.buf.extend_from_slice(&schema_len.to_le_bytes());
        self.put_u32(0);
        self.buf.extend_from_slice(h.name.as_bytes());
        self.buf.extend_from_slice(&h.schema);
        &self.buf
    }

    pub fn gap(&mut self, first_seq: u64, count: u64, cause: GapCause) -> &[u8] {
        self.start(KIND_GAP);
        self.put_u64(first_seq);
        self.put_u64(count);
        self.put_u32(cause as u32);
        self.put_u32(0);
        &self.buf
    }

    pub fn tick(&mut self, next_seq: u64, source_cursor: u64) -> &[u8] {
        self.start(KIND_TICK);
        self.put_u64(next_seq);
        self.put_u64(source_cursor);
        &self.buf
    }

    pub fn end(&mut self, next_seq: u64) -> &[u8] {
        self.start(KIND_END);
        self.put_u64(next_seq);
        &self.buf
    }

    /// Starts a `DATA` frame whose first message is `first_seq`.
    pub fn begin_data(&mut self, first_seq: u64) {
        self.start(KIND_DATA);
        self.put_u64(first_seq);
        self.put_u64(0); // count (filled in by `push`), reserved
        self.data = Some((first_seq, 0));
    }

    /// The frame last encoded (or being built).
    pub fn current(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes the frame being built holds.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Adds the next message (sequence `first_seq + count`) to the `DATA`
    /// frame being built.
    pub fn push(&mut self, time: u64, payload: &[u8]) {
        let (_, count) = self.data.as_mut().expect("begin_data first");
        *count += 1;
        let count = *count;
        self.buf[HEADER_LEN + 8..HEADER_LEN + 12].copy_from_slice(&count.to_le_bytes());
        self.put_u64(time);
        self.put_u32(payload.len() as u32);
        self.put_u32(0);
        self.buf.extend_from_slice(payload);
        self.buf
            .resize(self.buf.len() + padded(payload.len()) - payload.len(), 0);
    }

    /// The `DATA` frame built so far: its first sequence, message count and
    /// bytes.
    pub fn data(&self) -> Option<(u64, u32, &[u8])> {
        self.data
            .filter(|(_, n)| *n > 0)
            .map(|(first, n)| (first, n, &self.buf[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            next_seq: 7,
            capacity: 1024,
            source_created_ns: 99,
            slot_size: 64,
            flags: 0b101,
            name: "md.quotes".into(),
            schema: b"[('px','<f8')]".to_vec(),
        }
    }

    #[test]
    fn every_frame_round_trips() {
        let mut e = Encoder::new(42);
        assert_eq!(decode(e.hello(&hello())), Ok(Frame::Hello(hello())));
        assert_eq!(incarnation(e.hello(&hello())), Some(42));
        assert_eq!(
            decode(e.gap(10, 5, GapCause::SourceLost)),
            Ok(Frame::Gap {
                first_seq: 10,
                count: 5,
                cause: GapCause::SourceLost
            })
        );
        assert_eq!(
            decode(e.tick(3, 4)),
            Ok(Frame::Tick {
                next_seq: 3,
                source_cursor: 4
            })
        );
        assert_eq!(decode(e.end(9)), Ok(Frame::End { next_seq: 9 }));
        e.begin_data(100);
        e.push(1, b"abc");
        e.push(2, &[7u8; 16]);
        e.push(3, b"");
        let (first, n, bytes) = e.data().unwrap();
        assert_eq!((first, n), (100, 3));
        let Ok(Frame::Data(d)) = decode(bytes) else {
            panic!("not data")
        };
        assert_eq!(d.first_seq, 100);
        let got: Vec<_> = d.messages().collect();
        assert_eq!(
            got,
            vec![(1, &b"abc"[..]), (2, &[7u8; 16][..]), (3, &b""[..])]
        );
    }

    #[test]
    fn damaged_frames_are_refused_with_a_reason() {
        let mut e = Encoder::new(1);
        e.begin_data(0);
        e.push(1, b"12345678");
        let good = e.data().unwrap().2.to_vec();
        // One byte short, one byte long.
        assert!(matches!(
            decode(&good[..good.len() - 1]),
            Err(FrameError::BadLength(_))
        ));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(decode(&long), Err(FrameError::BadLength(_))));
        // A length past the end.
        let mut lying = good.clone();
        lying[DATA_PREFIX_LEN + 8] = 200;
        assert!(matches!(decode(&lying), Err(FrameError::BadLength(_))));
        let mut magic = good.clone();
        magic[0] ^= 1;
        assert!(matches!(decode(&magic), Err(FrameError::BadMagic(_))));
        let mut kind = good;
        kind[4] = 77;
        assert_eq!(decode(&kind), Err(FrameError::UnknownKind(77)));
        assert_eq!(decode(b"RCB1"), Err(FrameError::Short { len: 4 }));
        assert!(matches!(
            decode(e.gap(1, 0, GapCause::SourceLost)),
            Err(FrameError::BadValue(_))
        ));
    }
}
