//! Parsing a MoldUDP64 packet without copying: the header's length is
//! checked at once (its fields are decoded on access), the message blocks
//! as they are iterated.

use crate::wire::{be_u16, bytes_at};

use super::{
    MoldError, Session, BLOCK_PREFIX_LEN, END_OF_SESSION_COUNT, HEADER_LEN, HEARTBEAT_COUNT,
};

/// What a packet is, from its count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// Carries `count` messages (1..=0xFFFE).
    Messages,
    /// No messages; its sequence is the next one to come.
    Heartbeat,
    /// The session is over; its sequence is one past the last message.
    EndOfSession,
}

/// A packet of at least 20 bytes: a view of its header (fields decoded on
/// access) and of the blocks after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    header: &'a [u8; HEADER_LEN],
    /// Everything after the header.
    payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Reads the header of `bytes`; `ShortPacket` below 20 bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MoldError> {
        let Some((header, payload)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(MoldError::ShortPacket { len: bytes.len() });
        };
        Ok(Packet { header, payload })
    }

    /// The session name (10 bytes, space-padded).
    pub fn session(&self) -> &'a Session {
        bytes_at(self.header, 0)
    }

    /// Sequence number of the first message (of the next message for a
    /// heartbeat or end of session).
    pub fn sequence(&self) -> u64 {
        u64::from_be_bytes(*bytes_at(self.header, 10))
    }

    /// The raw count field.
    pub fn count(&self) -> u16 {
        be_u16(*bytes_at(self.header, 18))
    }

    /// Messages, heartbeat or end of session.
    pub fn kind(&self) -> PacketKind {
        match self.count() {
            HEARTBEAT_COUNT => PacketKind::Heartbeat,
            END_OF_SESSION_COUNT => PacketKind::EndOfSession,
            _ => PacketKind::Messages,
        }
    }

    /// Messages carried (0 for heartbeats and end of session).
    pub fn message_count(&self) -> u16 {
        match self.kind() {
            PacketKind::Messages => self.count(),
            _ => 0,
        }
    }

    /// The sequence number after this packet's messages.
    pub fn next_sequence(&self) -> u64 {
        self.sequence().wrapping_add(self.message_count() as u64)
    }

    /// The message blocks, in order.
    pub fn blocks(&self) -> Blocks<'a> {
        Blocks {
            rest: self.payload,
            index: 0,
            count: self.message_count(),
            failed: false,
        }
    }

    /// Checks every block fits and nothing follows the last one.
    pub fn validate(&self) -> Result<(), MoldError> {
        let mut blocks = self.blocks();
        for block in blocks.by_ref() {
            block?;
        }
        match blocks.rest.len() {
            0 => Ok(()),
            len => Err(MoldError::TrailingBytes { len }),
        }
    }
}

/// The message blocks of a packet: `Ok(message bytes)` for each block the
/// count announces, or one `ShortBlock` error after which iteration ends.
#[derive(Clone, Debug)]
pub struct Blocks<'a> {
    rest: &'a [u8],
    /// Blocks yielded so far.
    index: u16,
    /// Blocks announced.
    count: u16,
    failed: bool,
}

impl<'a> Blocks<'a> {
    /// Bytes not yet consumed (after the last block: trailing bytes).
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Blocks<'a> {
    type Item = Result<&'a [u8], MoldError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.index == self.count {
            return None;
        }
        let index = self.index;
        let available = self.rest.len();
        let Some((len, body)) = self.rest.split_first_chunk::<BLOCK_PREFIX_LEN>() else {
            self.failed = true;
            return Some(Err(MoldError::ShortBlock {
                index,
                needed: 0,
                available,
            }));
        };
        let len = u16::from_be_bytes(*len) as usize;
        let Some((message, rest)) = body.split_at_checked(len) else {
            self.failed = true;
            return Some(Err(MoldError::ShortBlock {
                index,
                needed: BLOCK_PREFIX_LEN + len,
                available,
            }));
        };
        self.rest = rest;
        self.index += 1;
        Some(Ok(message))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            (0, Some(0))
        } else {
            (0, Some((self.count - self.index) as usize))
        }
    }
}
