//! Counting what a reader saw: messages per type and each kind of error,
//! and a plain report of them.
//!
//! Invariant kept by every reader in this crate: each frame it consumes is
//! counted exactly once, as a message of its type or as one error, so
//! `frames() == messages() + decode errors`; a truncated tail (the bytes
//! after the last whole frame) is counted once, separately.

use std::fmt;

use crate::itch::{DecodeError, Message, MessageType};

/// Per-type message counts and per-kind error counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Messages of each type, indexed by [`MessageType::index`].
    pub by_type: [u64; MessageType::COUNT],
    /// Zero-length frames.
    pub empty: u64,
    /// Frames whose type byte is not an ITCH 5.0 type.
    pub unknown_type: u64,
    /// Frames of a known type but not its length.
    pub wrong_length: u64,
    /// Inputs that ended inside a frame (at most one per input).
    pub truncated_tail: u64,
    /// Bytes consumed, frames and framing included.
    pub bytes: u64,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            by_type: [0; MessageType::COUNT],
            empty: 0,
            unknown_type: 0,
            wrong_length: 0,
            truncated_tail: 0,
            bytes: 0,
        }
    }
}

impl Counts {
    /// No counts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one decoded frame (a message or its error).
    #[inline]
    pub fn count(&mut self, decoded: &Result<Message<'_>, DecodeError>) {
        match decoded {
            Ok(m) => self.by_type[m.message_type().index()] += 1,
            Err(e) => self.count_error(e),
        }
    }

    /// Counts one frame that failed to decode.
    pub fn count_error(&mut self, error: &DecodeError) {
        match error {
            DecodeError::Empty => self.empty += 1,
            DecodeError::UnknownType(_) => self.unknown_type += 1,
            DecodeError::WrongLength { .. } | DecodeError::WrongType { .. } => {
                self.wrong_length += 1
            }
        }
    }

    /// Messages of type `t`.
    pub fn of(&self, t: MessageType) -> u64 {
        self.by_type[t.index()]
    }

    /// Messages decoded, all types.
    pub fn messages(&self) -> u64 {
        self.by_type.iter().sum()
    }

    /// Frames that failed to decode.
    pub fn decode_errors(&self) -> u64 {
        self.empty + self.unknown_type + self.wrong_length
    }

    /// Frames consumed: messages plus decode errors.
    pub fn frames(&self) -> u64 {
        self.messages() + self.decode_errors()
    }

    /// Every error, truncated tails included.
    pub fn errors(&self) -> u64 {
        self.decode_errors() + self.truncated_tail
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counts) {
        for (a, b) in self.by_type.iter_mut().zip(other.by_type.iter()) {
            *a += b;
        }
        self.empty += other.empty;
        self.unknown_type += other.unknown_type;
        self.wrong_length += other.wrong_length;
        self.truncated_tail += other.truncated_tail;
        self.bytes += other.bytes;
    }

    /// A snapshot for people and programs.
    pub fn report(&self) -> Report {
        Report {
            messages: self.messages(),
            errors: self.errors(),
            bytes: self.bytes,
            by_type: MessageType::ALL
                .iter()
                .map(|&t| (t.name(), t.byte() as char, self.of(t)))
                .filter(|&(_, _, n)| n > 0)
                .collect(),
            empty: self.empty,
            unknown_type: self.unknown_type,
            wrong_length: self.wrong_length,
            truncated_tail: self.truncated_tail,
        }
    }
}

/// What a reader saw, as a plain struct (its `Display` is a small table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Messages decoded.
    pub messages: u64,
    /// Errors of every kind.
    pub errors: u64,
    /// Bytes consumed.
    pub bytes: u64,
    /// `(name, type byte, count)` of every type seen, in spec order.
    pub by_type: Vec<(&'static str, char, u64)>,
    /// Zero-length frames.
    pub empty: u64,
    /// Unknown type bytes.
    pub unknown_type: u64,
    /// Frames of the wrong length.
    pub wrong_length: u64,
    /// Truncated tails.
    pub truncated_tail: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} messages, {} errors, {} bytes",
            self.messages, self.errors, self.bytes
        )?;
        for (name, byte, n) in &self.by_type {
            writeln!(f, "  {byte} {name:<28} {n:>12}")?;
        }
        if self.errors > 0 {
            writeln!(
                f,
                "  errors: empty {}, unknown type {}, wrong length {}, truncated tail {}",
                self.empty, self.unknown_type, self.wrong_length, self.truncated_tail
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::itch::decode;

    #[test]
    fn each_frame_counts_once_and_totals_add_up() {
        let mut c = Counts::new();
        let delete = crate::itch::MessageBuilder::new(MessageType::OrderDelete, 1, 0, 0)
            .u64(9)
            .finish()
            .unwrap()
            .to_vec();
        for frame in [&delete[..], &delete[..], &[][..], b"?", &delete[..5]] {
            c.count(&decode(frame));
        }
        c.truncated_tail += 1;
        assert_eq!(c.of(MessageType::OrderDelete), 2);
        assert_eq!((c.empty, c.unknown_type, c.wrong_length), (1, 1, 1));
        assert_eq!(
            (c.messages(), c.decode_errors(), c.frames(), c.errors()),
            (2, 3, 5, 4)
        );
        let mut twice = c.clone();
        twice.merge(&c);
        assert_eq!(twice.frames(), 10);
        let r = c.report();
        assert_eq!(r.by_type, vec![("order_delete", 'D', 2)]);
        let shown = r.to_string();
        assert!(
            shown.contains("2 messages, 4 errors") && shown.contains("truncated tail 1"),
            "{shown}"
        );
    }
}
