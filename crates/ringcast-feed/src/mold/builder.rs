//! Packing messages into MoldUDP64 packets.
//!
//! Invariants: every packet the builder returns is at most `max_payload`
//! bytes (header included) and carries 1..=0xFFFE messages; sequence
//! numbers run on without gap or repeat from the first one, so packet
//! `k+1` starts where packet `k` ends.

use super::{
    header, MoldError, Session, BLOCK_PREFIX_LEN, DEFAULT_MAX_PAYLOAD, END_OF_SESSION_COUNT,
    HEADER_LEN, MAX_COUNT,
};

/// Builds the packets of one session.
#[derive(Clone, Debug)]
pub struct PacketBuilder {
    session: Session,
    /// Sequence of the first message of the packet being filled.
    sequence: u64,
    max_payload: usize,
    /// The packet being filled, its header written when it is finished.
    buf: Vec<u8>,
    count: u16,
}

impl PacketBuilder {
    /// A builder for `session` whose first message has sequence
    /// `first_sequence` (1 at the start of a session), with packets of at
    /// most [`DEFAULT_MAX_PAYLOAD`] bytes.
    pub fn new(session: Session, first_sequence: u64) -> Self {
        Self::with_max_payload(session, first_sequence, DEFAULT_MAX_PAYLOAD)
    }

    /// As [`PacketBuilder::new`], with packets of at most `max_payload`
    /// bytes (header included).
    pub fn with_max_payload(session: Session, first_sequence: u64, max_payload: usize) -> Self {
        let mut buf = Vec::with_capacity(max_payload);
        buf.resize(HEADER_LEN, 0);
        PacketBuilder {
            session,
            sequence: first_sequence,
            max_payload,
            buf,
            count: 0,
        }
    }

    /// Sequence number the next message added will get.
    pub fn next_sequence(&self) -> u64 {
        self.sequence + self.count as u64
    }

    /// Messages in the packet being filled.
    pub fn pending(&self) -> u16 {
        self.count
    }

    /// Adds `message`. When it does not fit in the packet being filled,
    /// that packet is finished and returned, and `message` starts the next
    /// one. `TooLong` (nothing changed) when it would not fit even alone.
    pub fn push(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>, MoldError> {
        let block = BLOCK_PREFIX_LEN + message.len();
        let Ok(len) = u16::try_from(message.len()) else {
            return Err(MoldError::TooLong { len: message.len() });
        };
        if HEADER_LEN + block > self.max_payload {
            return Err(MoldError::TooLong { len: message.len() });
        }
        let full = self.buf.len() + block > self.max_payload || self.count == MAX_COUNT;
        let finished = if full { self.flush() } else { None };
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(message);
        self.count += 1;
        Ok(finished)
    }

    /// Finishes and returns the packet being filled, if it holds a message.
    pub fn flush(&mut self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        self.buf[..HEADER_LEN].copy_from_slice(&header(&self.session, self.sequence, self.count));
        let mut packet = Vec::with_capacity(self.max_payload);
        packet.resize(HEADER_LEN, 0);
        std::mem::swap(&mut packet, &mut self.buf);
        self.sequence += self.count as u64;
        self.count = 0;
        Some(packet)
    }

    /// A heartbeat: no messages, the sequence of the next message (call
    /// after [`PacketBuilder::flush`], or it announces the pending ones as
    /// still to come).
    pub fn heartbeat(&self) -> [u8; HEADER_LEN] {
        header(&self.session, self.sequence, 0)
    }

    /// The end-of-session packet (its sequence: one past the last message
    /// flushed).
    pub fn end_of_session(&self) -> [u8; HEADER_LEN] {
        header(&self.session, self.sequence, END_OF_SESSION_COUNT)
    }
}
