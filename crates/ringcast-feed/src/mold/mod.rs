//! MoldUDP64: how ITCH messages travel over UDP multicast.
//!
//! A packet is a 20-byte header — session (10 ASCII bytes), the sequence
//! number of its first message (`u64`), a message count (`u16`) — and then
//! `count` message blocks, each a `u16` length and the message. All
//! integers big-endian. Count 0 is a heartbeat (its sequence is the next
//! one to come), 0xFFFF the end of the session. A retransmission request
//! sent back to the server has the same 20-byte form (session, first
//! sequence wanted, how many).
//!
//! - [`packet`]: zero-copy parsing ([`Packet`], [`Blocks`]);
//! - [`builder`]: packing messages into packets of at most a payload size,
//!   heartbeats and end-of-session packets ([`PacketBuilder`]);
//! - [`request`]: retransmission requests ([`RetransmitRequest`]);
//! - [`sequence`]: the receiver's accounting of gaps and duplicates
//!   ([`SequenceTracker`]).

use std::fmt;

pub mod builder;
pub mod packet;
pub mod request;
pub mod sequence;

pub use builder::PacketBuilder;
pub use packet::{Blocks, Packet, PacketKind};
pub use request::RetransmitRequest;
pub use sequence::{PacketVerdict, SequenceTracker};

#[cfg(test)]
mod tests;

/// Bytes of the session name.
pub const SESSION_LEN: usize = 10;
/// Bytes of a packet header (and of a retransmission request).
pub const HEADER_LEN: usize = 20;
/// Bytes of a message block's length field.
pub const BLOCK_PREFIX_LEN: usize = 2;
/// The count of a heartbeat packet.
pub const HEARTBEAT_COUNT: u16 = 0;
/// The count of an end-of-session packet.
pub const END_OF_SESSION_COUNT: u16 = 0xFFFF;
/// The most messages one packet can carry (0xFFFF means end of session).
pub const MAX_COUNT: u16 = 0xFFFE;
/// Default largest packet (UDP payload) the builder makes, header
/// included: fits an Ethernet MTU with IP and UDP headers to spare.
pub const DEFAULT_MAX_PAYLOAD: usize = 1400;

/// A MoldUDP64 session name: 10 ASCII bytes, space-padded.
pub type Session = [u8; SESSION_LEN];

/// Why bytes are not a well-formed packet or request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoldError {
    /// Fewer bytes than a header (or a request of the wrong size).
    ShortPacket {
        /// Bytes received.
        len: usize,
    },
    /// A message block runs past the end of the packet.
    ShortBlock {
        /// Index of the block in its packet (0-based).
        index: u16,
        /// Bytes the block needs, length field included (0 when the
        /// length field itself is cut).
        needed: usize,
        /// Bytes left in the packet.
        available: usize,
    },
    /// Bytes left over after the last block the count announces.
    TrailingBytes {
        /// How many.
        len: usize,
    },
    /// A message too long for a block, or a packet limit too small for it.
    TooLong {
        /// The message length.
        len: usize,
    },
}

impl fmt::Display for MoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoldError::ShortPacket { len } => write!(
                f,
                "MoldUDP64 packet of {len} bytes is shorter than its header"
            ),
            MoldError::ShortBlock {
                index,
                needed,
                available,
            } => {
                write!(
                    f,
                    "MoldUDP64 block {index} needs {needed} bytes, {available} left"
                )
            }
            MoldError::TrailingBytes { len } => {
                write!(f, "{len} bytes after the last MoldUDP64 block")
            }
            MoldError::TooLong { len } => {
                write!(f, "a {len}-byte message does not fit a MoldUDP64 packet")
            }
        }
    }
}

impl std::error::Error for MoldError {}

/// The 20-byte header shared by packets and requests.
pub(crate) fn header(session: &Session, sequence: u64, count: u16) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..SESSION_LEN].copy_from_slice(session);
    h[10..18].copy_from_slice(&sequence.to_be_bytes());
    h[18..20].copy_from_slice(&count.to_be_bytes());
    h
}

/// Session, sequence and count of a 20-byte header.
pub(crate) fn parse_header(h: &[u8; HEADER_LEN]) -> (Session, u64, u16) {
    let session: &Session = crate::wire::bytes_at(h, 0);
    let sequence = u64::from_be_bytes(*crate::wire::bytes_at(h, 10));
    let count = crate::wire::be_u16(*crate::wire::bytes_at(h, 18));
    (*session, sequence, count)
}
