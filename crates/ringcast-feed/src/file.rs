//! The ITCH file format (as NASDAQ publishes its daily files): messages
//! back to back, each preceded by its length as a big-endian `u16`.
//!
//! Readers count every frame in their [`Counts`] and go on after a frame
//! that does not decode (the length prefix says where the next one starts);
//! they stop at a truncated tail (a prefix or frame cut short by the end of
//! the input), which is counted once and reported once.

use std::fmt;
use std::io::{self, Read, Write};

use crate::itch::{decode, DecodeError, Message, OwnedMessage};
use crate::stats::Counts;

/// Bytes of the length prefix before each message.
pub const PREFIX_LEN: usize = 2;

/// Why a frame of a file yields no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The frame was whole but did not decode (the reader goes on).
    Decode {
        /// Byte offset of the frame's length prefix in the input.
        offset: u64,
        /// What was wrong.
        error: DecodeError,
    },
    /// The input ended inside a length prefix or a frame (the reader stops).
    TruncatedTail {
        /// Byte offset of the cut frame's length prefix.
        offset: u64,
        /// Bytes the frame needed, prefix included (0 if the prefix itself
        /// was cut).
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Decode { offset, error } => write!(f, "at byte {offset}: {error}"),
            ReadError::TruncatedTail {
                offset,
                needed,
                available,
            } => write!(
                f,
                "at byte {offset}: input ends inside a frame ({available} of {needed} bytes)"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// Appends `message` to `out` as one frame of an ITCH file. `false` (and
/// nothing appended) when the message is longer than a `u16` can say.
pub fn append_frame(out: &mut Vec<u8>, message: &[u8]) -> bool {
    let Ok(len) = u16::try_from(message.len()) else {
        return false;
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    true
}

/// Reads an ITCH file held in memory, zero-copy: an iterator of
/// `Result<Message<'a>, ReadError>`.
#[derive(Clone, Debug)]
pub struct SliceReader<'a> {
    input: &'a [u8],
    /// Offset of the next length prefix; `input.len()` once done.
    at: usize,
    counts: Counts,
}

impl<'a> SliceReader<'a> {
    /// A reader of `input` from its first byte.
    pub fn new(input: &'a [u8]) -> Self {
        SliceReader {
            input,
            at: 0,
            counts: Counts::new(),
        }
    }

    /// What was read so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Byte offset of the next frame.
    pub fn offset(&self) -> usize {
        self.at
    }

    /// The next whole frame (the message bytes, prefix excluded), or the
    /// truncated tail; `None` at the end. Counts only bytes and tails;
    /// [`Iterator::next`] also decodes and counts the frame.
    #[inline]
    pub fn next_frame(&mut self) -> Option<Result<&'a [u8], ReadError>> {
        let rest = &self.input[self.at..];
        if rest.is_empty() {
            return None;
        }
        let offset = self.at as u64;
        let frame = match rest {
            [hi, lo, body @ ..] => {
                let len = u16::from_be_bytes([*hi, *lo]) as usize;
                body.get(..len).ok_or(ReadError::TruncatedTail {
                    offset,
                    needed: PREFIX_LEN + len,
                    available: rest.len(),
                })
            }
            _ => Err(ReadError::TruncatedTail {
                offset,
                needed: 0,
                available: rest.len(),
            }),
        };
        match frame {
            Ok(body) => {
                self.at += PREFIX_LEN + body.len();
                self.counts.bytes += (PREFIX_LEN + body.len()) as u64;
            }
            Err(_) => {
                self.at = self.input.len();
                self.counts.bytes += rest.len() as u64;
                self.counts.truncated_tail += 1;
            }
        }
        Some(frame)
    }
}

impl<'a> Iterator for SliceReader<'a> {
    type Item = Result<Message<'a>, ReadError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.at as u64;
        Some(match self.next_frame()? {
            Ok(frame) => {
                let decoded = decode(frame);
                self.counts.count(&decoded);
                decoded.map_err(|error| ReadError::Decode { offset, error })
            }
            Err(tail) => Err(tail),
        })
    }
}

/// Reads an ITCH file from any [`Read`], through its own buffer. Messages
/// borrow the buffer, so the zero-copy way is a lending loop over
/// [`StreamReader::next_message`]; as an [`Iterator`] it yields copies
/// ([`OwnedMessage`]).
pub struct StreamReader<R> {
    source: R,
    /// Holds at least one whole frame (prefix + up to 65,535 bytes).
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Offset in the input of `buf[start]`.
    offset: u64,
    counts: Counts,
}

impl<R: Read> StreamReader<R> {
    /// A reader of `source` with a 256 KiB buffer.
    pub fn new(source: R) -> Self {
        StreamReader {
            source,
            buf: vec![0; 1 << 18],
            start: 0,
            end: 0,
            offset: 0,
            counts: Counts::new(),
        }
    }

    /// What was read so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Makes at least `need` unread bytes available (`need` at most
    /// `PREFIX_LEN + u16::MAX`, which the buffer holds); `false` when the
    /// input ends first.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        if self.start + need > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < need {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The next message or frame error; `Ok(None)` at the end of the
    /// input. I/O errors of the source are returned as they are.
    pub fn next_message(&mut self) -> io::Result<Option<Result<Message<'_>, ReadError>>> {
        let offset = self.offset;
        let whole = self.fill(PREFIX_LEN)? && {
            let len = u16::from_be_bytes([self.buf[self.start], self.buf[self.start + 1]]) as usize;
            self.fill(PREFIX_LEN + len)?
        };
        let available = self.end - self.start;
        if !whole {
            if available == 0 {
                return Ok(None);
            }
            let needed = if available < PREFIX_LEN {
                0
            } else {
                PREFIX_LEN
                    + u16::from_be_bytes([self.buf[self.start], self.buf[self.start + 1]]) as usize
            };
            self.start = self.end;
            self.offset += available as u64;
            self.counts.bytes += available as u64;
            self.counts.truncated_tail += 1;
            return Ok(Some(Err(ReadError::TruncatedTail {
                offset,
                needed,
                available,
            })));
        }
        let len = u16::from_be_bytes([self.buf[self.start], self.buf[self.start + 1]]) as usize;
        let frame = &self.buf[self.start + PREFIX_LEN..self.start + PREFIX_LEN + len];
        self.start += PREFIX_LEN + len;
        self.offset += (PREFIX_LEN + len) as u64;
        self.counts.bytes += (PREFIX_LEN + len) as u64;
        let decoded = decode(frame);
        self.counts.count(&decoded);
        Ok(Some(
            decoded.map_err(|error| ReadError::Decode { offset, error }),
        ))
    }
}

impl<R: Read> Iterator for StreamReader<R> {
    type Item = io::Result<Result<OwnedMessage, ReadError>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_message() {
            Ok(Some(item)) => Some(Ok(item.map(|m| OwnedMessage::new(&m)))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Writes an ITCH file: each message with its length prefix.
pub struct Writer<W> {
    sink: W,
    messages: u64,
}

impl<W: Write> Writer<W> {
    /// A writer into `sink` (wrap files in a `BufWriter`).
    pub fn new(sink: W) -> Self {
        Writer { sink, messages: 0 }
    }

    /// Writes one message (any bytes up to 65,535 of them; the writer does
    /// not judge them, so bad input for tests can be written too).
    pub fn write_message(&mut self, message: &[u8]) -> io::Result<()> {
        let len = u16::try_from(message.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "an ITCH frame holds at most 65535 bytes",
            )
        })?;
        self.sink.write_all(&len.to_be_bytes())?;
        self.sink.write_all(message)?;
        self.messages += 1;
        Ok(())
    }

    /// Messages written.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Flushes and returns the sink.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.sink.flush()?;
        Ok(self.sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::itch::{MessageBuilder, MessageType};

    fn delete(reference: u64) -> Vec<u8> {
        MessageBuilder::new(MessageType::OrderDelete, 1, 0, reference)
            .u64(reference)
            .finish()
            .unwrap()
            .to_vec()
    }

    /// A file with good messages around an empty frame, an unknown type and
    /// a wrong length, then a tail cut inside a frame.
    fn damaged_file() -> Vec<u8> {
        let mut w = Writer::new(Vec::new());
        w.write_message(&delete(1)).unwrap();
        w.write_message(&[]).unwrap();
        w.write_message(b"Zzz").unwrap();
        w.write_message(&delete(2)[..10]).unwrap();
        w.write_message(&delete(3)).unwrap();
        assert_eq!(w.messages(), 5);
        let mut file = w.into_inner().unwrap();
        file.extend_from_slice(&[0, 19, b'D', 0, 1]);
        file
    }

    #[test]
    fn slice_reader_goes_on_after_bad_frames_and_stops_at_the_tail() {
        let file = damaged_file();
        let mut r = SliceReader::new(&file);
        let got: Vec<_> = r.by_ref().collect();
        assert_eq!(got.len(), 6);
        assert!(matches!(got[0], Ok(Message::OrderDelete(d)) if d.order_reference_number() == 1));
        assert_eq!(
            got[1],
            Err(ReadError::Decode {
                offset: 21,
                error: DecodeError::Empty
            })
        );
        assert_eq!(
            got[2],
            Err(ReadError::Decode {
                offset: 23,
                error: DecodeError::UnknownType(b'Z')
            })
        );
        assert!(matches!(
            got[3],
            Err(ReadError::Decode {
                error: DecodeError::WrongLength { got: 10, .. },
                ..
            })
        ));
        assert!(matches!(got[4], Ok(Message::OrderDelete(d)) if d.order_reference_number() == 3));
        assert_eq!(
            got[5],
            Err(ReadError::TruncatedTail {
                offset: 61,
                needed: 21,
                available: 5
            })
        );
        let c = r.counts();
        assert_eq!(
            (
                c.messages(),
                c.empty,
                c.unknown_type,
                c.wrong_length,
                c.truncated_tail
            ),
            (2, 1, 1, 1, 1)
        );
        assert_eq!(c.bytes, file.len() as u64);
        assert_eq!(r.next(), None);
    }

    #[test]
    fn a_lone_byte_is_a_truncated_prefix() {
        let mut r = SliceReader::new(&[7]);
        assert_eq!(
            r.next(),
            Some(Err(ReadError::TruncatedTail {
                offset: 0,
                needed: 0,
                available: 1
            }))
        );
        assert_eq!(r.next(), None);
        assert_eq!(SliceReader::new(&[]).count(), 0);
    }

    /// A source that hands out at most 3 bytes per read, with an interruption.
    struct Trickle<'a>(&'a [u8], bool);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "again"));
            }
            let n = buf.len().min(3).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn stream_reader_agrees_with_slice_reader() {
        let file = damaged_file();
        let expected: Vec<String> = SliceReader::new(&file).map(|r| format!("{r:?}")).collect();
        let mut s = StreamReader::new(Trickle(&file, false));
        let mut got = Vec::new();
        while let Some(item) = s.next_message().unwrap() {
            got.push(format!("{item:?}"));
        }
        assert_eq!(got, expected);
        // As an iterator of copies: the same messages and errors.
        let owned: Vec<String> = StreamReader::new(&file[..])
            .map(|item| format!("{:?}", item.unwrap()))
            .collect();
        assert_eq!(owned, expected);
        let mut r = SliceReader::new(&file);
        r.by_ref().for_each(drop);
        assert_eq!(s.counts(), r.counts());
    }

    #[test]
    fn stream_reader_crosses_buffer_boundaries() {
        // More than a buffer's worth of maximal frames.
        let mut file = Vec::new();
        let frame = vec![b'Z'; u16::MAX as usize];
        for _ in 0..6 {
            assert!(append_frame(&mut file, &frame));
            assert!(append_frame(&mut file, &delete(9)));
        }
        assert!(!append_frame(&mut file, &vec![0; 70_000]));
        let mut s = StreamReader::new(&file[..]);
        let mut n = 0;
        while let Some(item) = s.next_message().unwrap() {
            n += 1;
            assert_eq!(item.is_ok(), n % 2 == 0);
        }
        assert_eq!((s.counts().messages(), s.counts().unknown_type), (6, 6));
        assert_eq!(s.counts().bytes, file.len() as u64);
        let mut w = Writer::new(Vec::new());
        assert!(w.write_message(&vec![0; 70_000]).is_err());
    }
}
