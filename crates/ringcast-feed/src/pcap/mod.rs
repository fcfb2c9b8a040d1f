//! Packet captures: pcapng written and read, classic libpcap files read,
//! and the IPv4 + UDP headers around a captured datagram.
//!
//! The feed handler writes what it receives as a pcapng file (one Section
//! Header Block, one Interface Description Block per socket, one Enhanced
//! Packet Block per datagram, timestamps in nanoseconds), which tshark and
//! Wireshark read; the sender replays such a file, or one from tcpdump or
//! Wireshark, byte for byte.
//!
//! - [`ipv4`]: an IPv4 + UDP header for a datagram (what the writer puts
//!   before each payload), and the UDP datagram inside a captured frame of
//!   the common link types (Ethernet with or without VLAN tags, raw IP,
//!   Linux cooked captures);
//! - [`writer`]: [`PcapngWriter`], over any `Write` (give it a buffered
//!   one: it makes one `write_all` per block);
//! - [`reader`]: [`CaptureReader`], over the bytes of a pcapng file or a
//!   classic pcap file (either byte order, microsecond or nanosecond
//!   times); a file cut inside a block (its writer was killed) gives its
//!   complete packets, then [`CaptureError::Truncated`] saying how many.
//!
//! Formats, as specified by the IETF drafts "PCAP Capture File Format" and
//! "PCAP Now Generic (pcapng) Capture File Format" (opsawg): a pcapng block
//! is `type: u32, total length: u32, body, total length: u32`, lengths a
//! multiple of 4, in the byte order the section's header declares.

use std::fmt;

pub mod ipv4;
pub mod reader;
pub mod writer;

pub use ipv4::{udp_in_frame, UdpDatagram};
pub use reader::{pcapng_append_offset, CaptureFormat, CaptureReader, Frame, Interface};
pub use writer::PcapngWriter;

#[cfg(test)]
mod tests;

/// Link type of Ethernet frames.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// Link type of raw IP packets, no link header (what the writer uses: the
/// handler receives datagrams, not frames, and tshark decodes these).
pub const LINKTYPE_RAW: u16 = 101;
/// Link type of Linux "cooked" captures (`tcpdump -i any`, older).
pub const LINKTYPE_LINUX_SLL: u16 = 113;
/// Link type of raw IPv4 packets.
pub const LINKTYPE_IPV4: u16 = 228;
/// Link type of Linux "cooked" captures, version 2 (`tcpdump -i any`).
pub const LINKTYPE_LINUX_SLL2: u16 = 276;

/// Why bytes are not a capture, or where one stops being readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureError {
    /// The file does not start with a pcap or pcapng magic number.
    NotACapture {
        /// Its first bytes (fewer when the file is shorter).
        start: Vec<u8>,
    },
    /// A pcap or pcapng variant this reader does not know.
    Unsupported {
        /// What, and where.
        what: String,
    },
    /// The file ends inside a block (or record): its writer was stopped
    /// mid-write. Everything before `offset` was read.
    Truncated {
        /// Packets read before the cut.
        packets: u64,
        /// Where the cut block starts: the file's complete part ends here.
        offset: u64,
        /// Bytes the cut block needs (its header when that is cut too).
        needed: u64,
        /// Bytes the file holds from `offset` on.
        available: u64,
    },
    /// A block (or record) whose own fields contradict each other.
    Corrupt {
        /// Packets read before it.
        packets: u64,
        /// Where the block starts.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::NotACapture { start } if start.is_empty() => f.write_str(
                "the file is empty, not a packet capture: give a pcapng or pcap file (from \
                 `ringcast feed handle --capture`, tcpdump -w, tshark -w or Wireshark)",
            ),
            CaptureError::NotACapture { start } => {
                write!(f, "not a packet capture: the file starts with ")?;
                for b in start {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(
                    ", not a pcapng (0a0d0d0a) or pcap (a1b2c3d4, a1b23c4d, either byte \
                     order) magic number: give a file from `ringcast feed handle --capture`, \
                     tcpdump -w, tshark -w or Wireshark",
                )
            }
            CaptureError::Unsupported { what } => write!(
                f,
                "unsupported capture: {what}; convert it with `editcap -F pcapng IN OUT` \
                 (Wireshark's tools)"
            ),
            CaptureError::Truncated {
                packets,
                offset,
                needed,
                available,
            } => write!(
                f,
                "the capture is cut short: after {packets} complete packets, the block at \
                 byte {offset} needs {needed} bytes and the file holds {available} from \
                 there (its writer was stopped mid-write); the {packets} packets before it \
                 are intact"
            ),
            CaptureError::Corrupt {
                packets,
                offset,
                what,
            } => write!(
                f,
                "the capture is damaged at byte {offset}, after {packets} packets: {what}"
            ),
        }
    }
}

impl std::error::Error for CaptureError {}
