//! A message by value: for iterators that cannot lend (a stream reader
//! turned iterator, the generator) and for keeping messages past their
//! buffer. Invariant: it only ever holds bytes that decoded.

use super::{decode, Message, MAX_MESSAGE_LEN};

/// One whole ITCH message, copied (at most 50 bytes, no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OwnedMessage {
    bytes: [u8; MAX_MESSAGE_LEN],
    len: u8,
}

impl OwnedMessage {
    /// A copy of `message`.
    pub fn new(message: &Message<'_>) -> Self {
        let src = message.bytes();
        let mut bytes = [0; MAX_MESSAGE_LEN];
        bytes[..src.len()].copy_from_slice(src);
        OwnedMessage {
            bytes,
            len: src.len() as u8,
        }
    }

    /// The message bytes (type byte first, no length prefix).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The typed view of the message.
    pub fn message(&self) -> Message<'_> {
        decode(self.as_bytes()).expect("an owned message holds bytes that decoded")
    }
}

impl std::fmt::Debug for OwnedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.message().fmt(f)
    }
}
