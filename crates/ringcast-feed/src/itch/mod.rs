//! ITCH 5.0 messages: the type table, zero-copy typed views and [`decode`].
//!
//! - `messages.rs` is the table (type byte, length, names, every field's
//!   kind and wire offset); `define.rs` generates the views, the
//!   [`Message`] enum, [`MessageType`] and [`decode`] from it;
//! - a view (`AddOrder<'a>`, ...) wraps `&'a [u8; LEN]` of exactly its
//!   type's length, so every accessor is a bounds-check-free big-endian
//!   load; `to_record` turns it into its little-endian record
//!   ([`crate::record`]).
//!
//! [`decode`] never panics: any byte string is a message or a
//! [`DecodeError`].

use std::fmt;

#[macro_use]
pub(crate) mod define;
mod encode;
mod messages;
mod owned;

pub use encode::MessageBuilder;
pub use owned::OwnedMessage;

pub use messages::*;

/// Length of the header every message starts with: type (1), stock locate
/// (2), tracking number (2), timestamp (6).
pub const HEADER_LEN: usize = 11;

/// The longest message (Net Order Imbalance Indicator, 50 bytes).
pub const MAX_MESSAGE_LEN: usize = 50;

/// Why bytes are not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// No bytes at all (a zero-length frame).
    Empty,
    /// The type byte names no ITCH 5.0 message.
    UnknownType(u8),
    /// The type is known but the frame is not its length.
    WrongLength {
        /// The type byte.
        type_byte: u8,
        /// The type's length.
        expected: usize,
        /// The frame's length.
        got: usize,
    },
    /// A well-formed message of another type than the one asked for
    /// (only from a view's `from_bytes`).
    WrongType {
        /// The type byte asked for.
        expected: u8,
        /// The type byte found.
        got: u8,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Empty => write!(f, "empty ITCH message"),
            DecodeError::UnknownType(t) => write!(f, "unknown ITCH message type 0x{t:02x}"),
            DecodeError::WrongLength {
                type_byte,
                expected,
                got,
            } => write!(
                f,
                "ITCH message '{}' is {got} bytes, expected {expected}",
                type_byte.escape_ascii()
            ),
            DecodeError::WrongType { expected, got } => write!(
                f,
                "ITCH message is '{}', expected '{}'",
                got.escape_ascii(),
                expected.escape_ascii()
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The expected length of a message whose type byte is `type_byte`, for
/// framing without decoding.
#[inline]
pub const fn message_length(type_byte: u8) -> Option<usize> {
    match MessageType::from_byte(type_byte) {
        Some(t) => Some(t.length()),
        None => None,
    }
}

#[cfg(test)]
mod tests;
