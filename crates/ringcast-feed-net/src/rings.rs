//! Decoded ITCH records into typed rings: one ring per message type, named
//! `<bus>.<type name>` (`md.add_order`, ...) so that `ringcast.Bus(bus)`
//! subscribes to them by topic, each holding that type's fixed-size
//! little-endian record (dtype in the ring header, `recv_ns` first); and
//! the whole stream in order, every message as received, in `<bus>.itch`
//! ([`RAW_MESSAGE`] records: what order books and journals read).

use crate::handler::{Deliver, DeliverError};
use ringcast_core::{CreateOptions, Patience, Publisher, Start, Subscriber};
use ringcast_feed::itch::{decode, MessageType};
use ringcast_feed::record::{raw_record, RecordLayout, MAX_RECORD_SIZE, RAW_MESSAGE};
use ringcast_feed::stats::Counts;
use std::ops::Range;
use std::path::PathBuf;

/// How the topic rings are made.
#[derive(Debug, Clone)]
pub struct TopicOptions {
    /// The bus: the first part of every ring name.
    pub bus: String,
    /// The ring directory (`None`: `RINGCAST_DIR`, else the default).
    pub dir: Option<PathBuf>,
    /// Slots per ring.
    pub capacity: u64,
    /// Bounded rings (a slow subscriber holds the handler back) instead of
    /// lossy ones.
    pub bounded: bool,
    /// The message types that get a ring; empty: all of them.
    pub types: Vec<MessageType>,
    /// Slots of the in-order `<bus>.itch` ring of every message; 0: none.
    pub stream_capacity: u64,
}

impl TopicOptions {
    /// Lossy rings of 65,536 slots for every message type on bus `bus`.
    pub fn new(bus: &str) -> Self {
        Self {
            bus: bus.to_owned(),
            dir: None,
            capacity: 1 << 16,
            bounded: false,
            types: Vec::new(),
            stream_capacity: 1 << 18,
        }
    }
}

/// The ring of message type `t` on bus `bus`.
pub fn ring_name(bus: &str, t: MessageType) -> String {
    format!("{bus}.{}", t.name())
}

/// The in-order ring of every message on bus `bus`.
pub fn stream_name(bus: &str) -> String {
    format!("{bus}.itch")
}

/// The schema a ring of `layout`'s records carries: its numpy dtype, as
/// the Python side stores dtypes.
pub fn schema(layout: &RecordLayout) -> Vec<u8> {
    format!("numpy:{}", layout.npy_descr()).into_bytes()
}

/// A ring of `layout`'s records with publish times, taken over (its
/// sequence continued) if it exists with that layout.
pub(crate) fn record_ring(
    name: &str,
    layout: &RecordLayout,
    capacity: u64,
    bounded: bool,
    dir: Option<&std::path::Path>,
) -> Result<Publisher, ringcast_core::OpenError> {
    let mut create = CreateOptions::new(capacity, layout.size as u32);
    create.fixed_size = true;
    create.schema = schema(layout);
    create.dir = dir.map(|d| d.to_owned());
    create.exist_ok = true;
    create.timestamps = true;
    if bounded {
        create.bounded = Some(capacity);
    }
    Publisher::create(name, &create)
}

/// The MoldUDP64 sequence of the last record (number `count - 1`) of the
/// stream ring of `bus`.
fn last_sequence(
    bus: &str,
    dir: Option<&std::path::Path>,
    count: u64,
) -> Result<u64, ringcast_core::Error> {
    let mut reader = Subscriber::attach(&stream_name(bus), dir, Start::At(count - 1))?;
    let mut raw = [0u8; ringcast_feed::record::RAW_MESSAGE_SIZE];
    match reader.try_recv(&mut raw)? {
        Some(_) => Ok(u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes"))),
        None => Ok(0),
    }
}

/// Publishes each message it is given as its type's record.
pub struct TopicRings {
    publishers: Vec<Option<Publisher>>,
    stream: Option<Publisher>,
    /// The MoldUDP64 sequence after the last message in the stream ring
    /// when it was taken over (1 for a new ring).
    next_sequence: u64,
    buf: [u8; MAX_RECORD_SIZE],
    counts: Counts,
    published: u64,
    unrouted: u64,
    lost: u64,
}

impl TopicRings {
    /// Creates (or takes over, continuing their sequence) the rings.
    pub fn create(options: &TopicOptions) -> Result<Self, ringcast_core::Error> {
        let types: Vec<MessageType> = if options.types.is_empty() {
            MessageType::ALL.to_vec()
        } else {
            options.types.clone()
        };
        let mut publishers: Vec<Option<Publisher>> =
            (0..MessageType::ALL.len()).map(|_| None).collect();
        let dir = options.dir.as_deref();
        for t in types {
            publishers[t.index()] = Some(record_ring(
                &ring_name(&options.bus, t),
                t.record(),
                options.capacity,
                options.bounded,
                dir,
            )?);
        }
        let stream = match options.stream_capacity {
            0 => None,
            n => Some(record_ring(
                &stream_name(&options.bus),
                &RAW_MESSAGE,
                n,
                options.bounded,
                dir,
            )?),
        };
        let next_sequence = match &stream {
            Some(p) if p.sequence() > 0 => last_sequence(&options.bus, dir, p.sequence())? + 1,
            _ => 1,
        };
        Ok(Self {
            publishers,
            stream,
            next_sequence,
            buf: [0; MAX_RECORD_SIZE],
            counts: Counts::new(),
            published: 0,
            unrouted: 0,
            lost: 0,
        })
    }

    /// The MoldUDP64 sequence number to go on from: one past the last
    /// message the stream ring holds from an earlier run of the handler (a
    /// restarted handler resumes there), 1 for new rings.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Messages by type, and the ones that did not decode.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Records published.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// Messages of types without a ring.
    pub fn unrouted(&self) -> u64 {
        self.unrouted
    }

    /// Messages the handler declared lost.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Closes every ring (subscribers see the end of the stream).
    pub fn close(self) {
        for p in self.publishers.into_iter().flatten().chain(self.stream) {
            p.close();
        }
    }
}

impl Deliver for TopicRings {
    #[inline]
    fn message(&mut self, seq: u64, message: &[u8], recv_ns: u64) -> Result<(), DeliverError> {
        // One clock read for both rings (a read costs 20-40 ns on a VM).
        let now = ringcast_core::sys::clock::now_ns();
        let decoded = decode(message);
        self.counts.count(&decoded);
        if let Ok(m) = decoded {
            match &mut self.publishers[m.message_type().index()] {
                Some(publisher) => {
                    let n = m
                        .write_record(recv_ns, &mut self.buf)
                        .expect("records fit MAX_RECORD_SIZE");
                    publisher.publish_at(&self.buf[..n], now, Patience::forever())?;
                    self.published += 1;
                }
                None => self.unrouted += 1,
            }
        }
        // The stream goes last: a message in it is in its type's ring too,
        // so a restarted handler resumes after the stream's last message.
        if let (Some(stream), Some(raw)) = (&mut self.stream, raw_record(recv_ns, seq, message)) {
            stream.publish_at(&raw, now, Patience::forever())?;
        }
        Ok(())
    }

    fn lost(&mut self, lost: Range<u64>) -> Result<(), DeliverError> {
        self.lost += lost.end - lost.start;
        Ok(())
    }
}
