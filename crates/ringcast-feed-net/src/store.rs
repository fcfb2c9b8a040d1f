//! What a sender sends, in memory: a trading day's messages by MoldUDP64
//! sequence number (what the sender packs and its retransmission server
//! answers from), or the datagrams of one stream of a packet capture (sent
//! again as they were captured).

use ringcast_feed::file::SliceReader;
use ringcast_feed::itch::HEADER_LEN;
use ringcast_feed::mold::{Packet, PacketKind};
use ringcast_feed::pcap::{udp_in_frame, CaptureError, CaptureReader};
use ringcast_feed::stats::Report;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddrV4;
use std::ops::Range;

/// The messages of an ITCH file, sequence 1 first. Frames are kept as
/// they are, including ones that do not decode (a sender replays its input
/// byte for byte); what they are is in [`MessageStore::report`].
pub struct MessageStore {
    bytes: Vec<u8>,
    /// Start of each message in `bytes` (its length prefix skipped), and
    /// one past the end of the last.
    starts: Vec<usize>,
    report: Report,
}

/// Why a file cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The file ends inside a frame: the bytes from `offset` on.
    TruncatedTail { offset: u64 },
    /// No messages at all.
    Empty,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::TruncatedTail { offset } => write!(
                f,
                "the ITCH file ends inside a message (at byte {offset}): it was cut short; \
                 write it again, or cut it at that byte to send what precedes"
            ),
            StoreError::Empty => f.write_str(
                "the ITCH file holds no messages (expected 2-byte big-endian lengths, each \
                 followed by a message); make one with `ringcast feed generate`",
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl MessageStore {
    /// The messages of an ITCH file's bytes (2-byte big-endian length
    /// before each message).
    pub fn from_itch(bytes: Vec<u8>) -> Result<Self, StoreError> {
        let mut reader = SliceReader::new(&bytes);
        let mut starts = Vec::new();
        let mut end = 0;
        while let Some(frame) = reader.next_frame() {
            match frame {
                Ok(body) => {
                    let start = reader.offset() - body.len();
                    starts.push(start);
                    end = reader.offset();
                }
                Err(_) => return Err(StoreError::TruncatedTail { offset: end as u64 }),
            }
        }
        if starts.is_empty() {
            return Err(StoreError::Empty);
        }
        // Count every frame by type (and any that do not decode).
        let mut counted = SliceReader::new(&bytes);
        for _ in counted.by_ref() {}
        let report = counted.counts().report();
        starts.push(end + 2);
        Ok(Self {
            bytes,
            starts,
            report,
        })
    }

    /// Messages held (sequence numbers 1 to this).
    pub fn len(&self) -> u64 {
        (self.starts.len() - 1) as u64
    }

    /// No messages (never true of a store that was made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Message `seq` (1-based), or `None` past the end.
    #[inline]
    pub fn get(&self, seq: u64) -> Option<&[u8]> {
        let i = usize::try_from(seq.checked_sub(1)?).ok()?;
        let start = *self.starts.get(i)?;
        let next = *self.starts.get(i + 1)?;
        // The next message's start is 2 bytes (its length prefix) past
        // this one's end.
        Some(&self.bytes[start..next - 2])
    }

    /// The ITCH timestamp (ns since midnight) of message `seq`, for
    /// sending at the original pace; `None` for frames too short to have one.
    pub fn timestamp(&self, seq: u64) -> Option<u64> {
        let m = self.get(seq)?;
        let t: &[u8; 6] = m.get(5..HEADER_LEN)?.try_into().ok()?;
        Some(t.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    /// What the file holds: messages by type, frames that do not decode.
    pub fn report(&self) -> &Report {
        &self.report
    }
}

/// Which stream of a capture to replay: the datagrams to one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamChoice {
    /// The multicast stream of the capture's first interface (the lowest
    /// numbered one that saw multicast), its first destination there: line
    /// A in a capture by `ringcast feed handle --capture`, the first
    /// multicast destination in a one-interface capture from other tools.
    First,
    /// The datagrams sent to this address and port.
    Destination(SocketAddrV4),
    /// The datagrams sent to the first multicast group the capture has
    /// with this destination port.
    Port(u16),
}

/// One datagram to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Replayed {
    /// Capture time, ns since the Unix epoch.
    timestamp_ns: u64,
    /// Its payload in `CapturedStream::payloads`.
    payload: Range<usize>,
    /// MoldUDP64 messages in it (0: a heartbeat, an end of session, or
    /// not MoldUDP64 at all: replayed byte for byte all the same).
    messages: u64,
    /// Messages in the datagrams before it (for pacing by message rate).
    messages_before: u64,
}

/// The datagrams of one stream of a packet capture, in capture order.
pub struct CapturedStream {
    payloads: Vec<u8>,
    datagrams: Vec<Replayed>,
    destination: SocketAddrV4,
    /// Datagrams to other destinations, left out.
    others: u64,
    /// Where reading stopped early (a cut or damaged tail), if it did.
    tail: Option<CaptureError>,
}

/// Why a capture cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// Not a capture this reader reads.
    Capture(CaptureError),
    /// A capture without any IPv4 UDP datagram.
    NoUdp {
        /// Packets it holds.
        packets: u64,
    },
    /// No datagram goes where the choice says.
    NoSuchStream {
        /// What was asked for.
        wanted: String,
        /// The capture's destinations and their datagram counts.
        streams: Vec<(SocketAddrV4, u64)>,
    },
    /// A datagram of the stream was not captured whole (a snap length cut it).
    Incomplete {
        /// Its number in the capture (0 is the first packet).
        packet: u64,
        /// Bytes captured of its payload.
        captured: usize,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Capture(e) => e.fmt(f),
            ReplayError::NoUdp { packets } => write!(
                f,
                "the capture holds {packets} packets but no IPv4 UDP datagram to replay: \
                 capture the feed with `ringcast feed handle --capture FILE` or `tcpdump -i \
                 IFACE -w FILE udp`"
            ),
            ReplayError::NoSuchStream { wanted, streams } => {
                write!(f, "the capture holds no datagram {wanted}; its streams are")?;
                for (i, (to, n)) in streams.iter().take(20).enumerate() {
                    write!(f, "{} {to} ({n} datagrams)", if i == 0 { ":" } else { "," })?;
                }
                f.write_str(": choose one of them (`ringcast feed send --pcap FILE --pcap-stream ADDR:PORT`)")
            }
            ReplayError::Incomplete { packet, captured } => write!(
                f,
                "packet {packet} of the capture holds only the first {captured} bytes of its \
                 datagram (a snap length cut it): replaying it would send a damaged packet; \
                 capture again without a snap length (tcpdump -s 0)"
            ),
        }
    }
}

impl std::error::Error for ReplayError {}

impl CapturedStream {
    /// The stream `choice` picks among the UDP datagrams of capture
    /// `bytes` (a pcapng or pcap file). A capture cut short or damaged
    /// after some packets gives the datagrams before the damage
    /// ([`CapturedStream::tail`] says where it stopped).
    pub fn from_capture(bytes: &[u8], choice: StreamChoice) -> Result<Self, ReplayError> {
        // First pass: every UDP datagram's interface, destination, and
        // whether it is multicast; the choice is made on all of them.
        let mut reader = CaptureReader::new(bytes).map_err(ReplayError::Capture)?;
        let mut tail = None;
        let mut udp = Vec::new();
        for (number, frame) in reader.by_ref().enumerate() {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    tail = Some(e);
                    break;
                }
            };
            if let Some(d) = udp_in_frame(frame.link_type, frame.data) {
                udp.push((number as u64, frame, d));
            }
        }
        if udp.is_empty() {
            return Err(match tail {
                Some(e) if reader.packets() == 0 => ReplayError::Capture(e),
                _ => ReplayError::NoUdp {
                    packets: reader.packets(),
                },
            });
        }
        let multicast = |d: &SocketAddrV4| d.ip().is_multicast();
        let destination = match choice {
            StreamChoice::First => udp
                .iter()
                .filter(|(_, _, d)| multicast(&d.destination))
                .min_by_key(|(n, f, _)| (f.interface, *n))
                .map(|(_, _, d)| d.destination),
            StreamChoice::Destination(to) => udp
                .iter()
                .any(|(_, _, d)| d.destination == to)
                .then_some(to),
            StreamChoice::Port(port) => udp
                .iter()
                .map(|(_, _, d)| d.destination)
                .find(|to| multicast(to) && to.port() == port),
        };
        let Some(destination) = destination else {
            let mut streams = BTreeMap::new();
            for (_, _, d) in &udp {
                *streams.entry(d.destination).or_insert(0u64) += 1;
            }
            let wanted = match choice {
                StreamChoice::First => "to a multicast group".to_owned(),
                StreamChoice::Destination(to) => format!("to {to}"),
                StreamChoice::Port(port) => format!("to a multicast group on port {port}"),
            };
            return Err(ReplayError::NoSuchStream {
                wanted,
                streams: streams.into_iter().collect(),
            });
        };
        let mut this = Self {
            payloads: Vec::new(),
            datagrams: Vec::new(),
            destination,
            others: 0,
            tail,
        };
        let mut messages_before = 0;
        for (number, frame, d) in udp {
            if d.destination != destination {
                this.others += 1;
                continue;
            }
            if !d.complete {
                return Err(ReplayError::Incomplete {
                    packet: number,
                    captured: d.payload.len(),
                });
            }
            let messages = match Packet::parse(d.payload) {
                Ok(p) if p.kind() == PacketKind::Messages => u64::from(p.message_count()),
                _ => 0,
            };
            let start = this.payloads.len();
            this.payloads.extend_from_slice(d.payload);
            this.datagrams.push(Replayed {
                timestamp_ns: frame.timestamp_ns,
                payload: start..this.payloads.len(),
                messages,
                messages_before,
            });
            messages_before += messages;
        }
        Ok(this)
    }

    /// Datagrams to replay.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    /// No datagrams (never true of a stream that was made).
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Datagram `i`: its capture time (ns since the Unix epoch), payload,
    /// MoldUDP64 messages in it and in the datagrams before it.
    pub fn get(&self, i: usize) -> Option<(u64, &[u8], u64, u64)> {
        let d = self.datagrams.get(i)?;
        Some((
            d.timestamp_ns,
            &self.payloads[d.payload.clone()],
            d.messages,
            d.messages_before,
        ))
    }

    /// Where the stream's datagrams were sent.
    pub fn destination(&self) -> SocketAddrV4 {
        self.destination
    }

    /// Datagrams of the capture to other destinations, left out.
    pub fn others(&self) -> u64 {
        self.others
    }

    /// Where reading the capture stopped early, if it did.
    pub fn tail(&self) -> Option<&CaptureError> {
        self.tail.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_feed::file::append_frame;

    #[test]
    fn messages_by_sequence_and_their_times() {
        let mut bytes = Vec::new();
        let mut m1 = vec![b'S', 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, b'O'];
        append_frame(&mut bytes, &m1);
        m1[10] = 3;
        append_frame(&mut bytes, &m1);
        append_frame(&mut bytes, b"?");
        let store = MessageStore::from_itch(bytes).unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(store.get(0), None);
        assert_eq!(store.get(2), Some(&m1[..]));
        assert_eq!(store.get(3), Some(&b"?"[..]));
        assert_eq!(store.get(4), None);
        assert_eq!(store.timestamp(1), Some(0x0102));
        assert_eq!(store.timestamp(2), Some(0x0103));
        assert_eq!(store.timestamp(3), None);
        assert_eq!(store.report().unknown_type, 1);
    }

    #[test]
    fn cut_and_empty_files_are_refused_with_a_remedy() {
        let mut bytes = Vec::new();
        append_frame(&mut bytes, b"S0123456789O");
        bytes.extend_from_slice(&[0, 12, b'S']);
        let e = MessageStore::from_itch(bytes).err().unwrap();
        assert_eq!(e, StoreError::TruncatedTail { offset: 14 });
        assert!(e.to_string().contains("cut short"));
        let e = MessageStore::from_itch(Vec::new()).err().unwrap();
        assert!(e.to_string().contains("ringcast feed generate"));
    }
}
