//! Building ITCH messages field by field (for the generator, the tests and
//! anything that replays synthetic data). The builder writes big-endian in
//! the table's field order; [`MessageBuilder::finish`] refuses a message
//! whose length is not its type's, so a builder call sequence that misses
//! or adds a field is caught on the first message.

use super::{DecodeError, MessageType, MAX_MESSAGE_LEN};
use crate::wire::u48_be;

/// One message under construction.
#[derive(Clone, Copy, Debug)]
pub struct MessageBuilder {
    buf: [u8; MAX_MESSAGE_LEN],
    /// Bytes appended so far (may exceed the buffer: the excess is not
    /// stored, only counted, and `finish` refuses it).
    len: usize,
    kind: MessageType,
}

impl MessageBuilder {
    /// A message of type `kind` with its 11-byte header.
    pub fn new(kind: MessageType, stock_locate: u16, tracking_number: u16, timestamp: u64) -> Self {
        MessageBuilder {
            buf: [0; MAX_MESSAGE_LEN],
            len: 0,
            kind,
        }
        .char(kind.byte())
        .u16(stock_locate)
        .u16(tracking_number)
        .bytes(&u48_be(timestamp))
    }

    fn bytes(mut self, b: &[u8]) -> Self {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + b.len()) {
            dst.copy_from_slice(b);
        }
        self.len += b.len();
        self
    }

    /// Appends one ASCII character.
    pub fn char(self, c: u8) -> Self {
        self.bytes(&[c])
    }

    /// Appends an ASCII field of `N` bytes: `text` left-justified and
    /// space-padded (cut to `N`).
    pub fn ascii<const N: usize>(self, text: &str) -> Self {
        self.bytes(&crate::wire::padded::<N>(text))
    }

    /// Appends a big-endian `u16`.
    pub fn u16(self, v: u16) -> Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian `u32` (also Price(4)).
    pub fn u32(self, v: u32) -> Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian `u64` (also Price(8)).
    pub fn u64(self, v: u64) -> Self {
        self.bytes(&v.to_be_bytes())
    }

    /// The finished message, or `WrongLength` when the fields appended do
    /// not add up to the type's length.
    pub fn finish(&self) -> Result<&[u8], DecodeError> {
        let expected = self.kind.length();
        if self.len == expected {
            Ok(&self.buf[..expected])
        } else {
            Err(DecodeError::WrongLength {
                type_byte: self.kind.byte(),
                expected,
                got: self.len,
            })
        }
    }
}
