//! The ring file format: header, subscriber table and slots, and validation.
//!
//! ```text
//! offset 0            Header (identity, layout, modes, publisher state, schema)
//! size_of::<Header>   SubscriberRecord x max_subscribers (64 bytes each)
//!                     ProducerRecord x max_producers (64 bytes each)
//! header_len          slot 0, slot 1, ... slot capacity-1 (slot_stride bytes each)
//! heads_offset        (heads apart only) head 0, head 1, ... (16 bytes each)
//! ```
//! `header_len` is rounded up to a page so slots start page aligned; every slot
//! is a whole number of cache lines. A slot's head is its stamp (8 bytes) and
//! payload length (8 bytes); the time word (rings with timestamps), then the
//! payload words, follow it in the slot. Rings created with their heads apart
//! ([`Layout::heads_apart`]) keep the heads in a table after the slots (four
//! to a line) and a slot holds only its data: where a head would make a slot
//! one cache line longer (a 64-byte payload: 80 bytes, two lines), a reader
//! then moves one line a message plus a quarter of a head line, not two.
//! Nothing in the file is a pointer. Every field is an
//! atomic, so a process that scribbles on the file concurrently can make us
//! refuse the ring but can never make us read memory in a racy way.
//!
//! A file is trusted only after [`read_layout`] has checked magic, version, a
//! checksum over the immutable fields, each field's range, and the file size.

use crate::error::{ArgumentError, OpenError, Result, RingFault};
use std::mem::{offset_of, size_of};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// First eight bytes of every ring file.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RINGCAST");
/// Format version this build reads and writes. 7: a single producer holds
/// a lock on [`PUBLISHER_LOCK_OFFSET`] (older publishers hold none, and
/// would look dead to newer subscribers). 8: a ring may keep its slot
/// heads apart ([`FLAG_HEADS_APART`]); a version 7 reader would look for
/// them in the slots (and take the header for damaged).
pub const VERSION: u32 = 8;
/// Cache line size the layout pads to.
pub const CACHE_LINE: usize = 64;
/// Granularity `header_len` is rounded to.
pub const PAGE: usize = 4096;
/// Bytes of a slot's head: stamp and length (in front of the slot's data,
/// or in the head table when the heads are apart).
pub const SLOT_OVERHEAD: usize = 16;
/// Largest schema description, in bytes.
pub const MAX_SCHEMA_LEN: usize = 2048;
/// Largest payload of one slot.
pub const MAX_SLOT_SIZE: u32 = 1 << 24;
/// Largest number of slots.
pub const MAX_CAPACITY: u64 = 1 << 32;
/// Largest subscriber table.
pub const MAX_SUBSCRIBERS: u32 = 4096;
/// Subscriber table size when the creator does not choose one.
pub const DEFAULT_MAX_SUBSCRIBERS: u32 = 128;
/// Largest ring file accepted (64 GiB).
pub const MAX_FILE_LEN: u64 = 1 << 36;

/// Flag: every message is exactly `slot_size` bytes (typed rings).
pub const FLAG_FIXED_SIZE: u32 = 1;
/// Flag: bounded (backpressure) ring: publishers never overwrite a message a
/// live registered subscriber has not read.
pub const FLAG_BOUNDED: u32 = 2;
/// Flag: several producers publish into the ring, claiming sequences with a
/// fetch-add on the cursor.
pub const FLAG_MULTI_PRODUCER: u32 = 4;
/// Flag: every slot carries the message's publish time (a [`TIME_WORD`]
/// right before the payload: after the slot head, or first in the slot when
/// the heads are apart), for latency measurement.
pub const FLAG_TIMESTAMPS: u32 = 8;
/// Flag: the slots' heads (stamp, length) are in a head table after the
/// slots instead of at the front of each slot (see [`Layout::heads_apart`]).
pub const FLAG_HEADS_APART: u32 = 16;
const KNOWN_FLAGS: u32 =
    FLAG_FIXED_SIZE | FLAG_BOUNDED | FLAG_MULTI_PRODUCER | FLAG_TIMESTAMPS | FLAG_HEADS_APART;
/// Bytes of the publish-time word of rings with [`FLAG_TIMESTAMPS`].
pub const TIME_WORD: usize = 8;
/// Largest producer table of a multi-producer ring.
pub const MAX_PRODUCERS: u32 = 1024;
/// Producer table size when the creator does not choose one.
pub const DEFAULT_MAX_PRODUCERS: u32 = 16;
/// Default liveness limit of bounded rings: a subscriber that holds the
/// publisher back without reading for this long is evicted.
pub const DEFAULT_LIVENESS_TIMEOUT_NS: u64 = 5_000_000_000;
/// Default deadline after which a claimed, uncommitted slot whose producer
/// died is declared lost.
pub const DEFAULT_CLAIM_TIMEOUT_NS: u64 = 100_000_000;

/// Subscriber record state: free.
pub const RECORD_FREE: u32 = 0;
/// Subscriber record state: claimed, position not yet valid.
pub const RECORD_JOINING: u32 = 1;
/// Subscriber record state: reading; in a bounded ring its position gates
/// the publishers.
pub const RECORD_ACTIVE: u32 = 2;
/// Subscriber record state: evicted from a bounded ring for holding the
/// publishers back; no longer gates them.
pub const RECORD_EVICTED: u32 = 3;

/// Producer record claim word: no claim in progress.
pub const CLAIM_IDLE: u64 = u64::MAX;
/// Producer record claim word: a claim is being made (sequence not known yet).
pub const CLAIM_PENDING: u64 = u64::MAX - 1;

/// Publisher state: a publisher holds the ring open (or died holding it).
pub const PUBLISHER_OPEN: u32 = 1;
/// Publisher state: the last publisher closed the ring cleanly.
pub const PUBLISHER_CLOSED: u32 = 2;

/// Offset of the byte a single-producer ring's publisher holds an
/// open-file-description lock on (see [`crate::sys::liveness`]) while it has the
/// ring open: subscribers test it to tell a dead publisher from a quiet one.
pub(crate) const PUBLISHER_LOCK_OFFSET: usize = 128;

/// One cache line of its own, so the field does not share a line with others.
#[repr(C, align(64))]
pub(crate) struct Line<T>(pub T);

/// What the publisher tells subscribers about itself.
#[repr(C)]
pub(crate) struct PublisherState {
    /// Pid of the current (or last) publisher; 0 when closed.
    pub pid: AtomicU32,
    /// [`PUBLISHER_OPEN`] or [`PUBLISHER_CLOSED`].
    pub state: AtomicU32,
    /// Bumped every time a publisher opens the ring (create or take-over).
    pub generation: AtomicU64,
    /// What the current publisher did to its mapping (`EndMemory`, see the `memory` module).
    pub memory: AtomicU32,
    /// NUMA node the creator bound the ring's pages to, plus one; 0: none.
    pub numa_node: AtomicU32,
}

/// How parked subscribers and the publisher find each other.
#[repr(C)]
pub(crate) struct NotifyState {
    /// Futex word parked subscribers sleep on; the publisher bumps it (and
    /// makes the wake syscall) when `waiters` is non-zero.
    pub wake_seq: AtomicU32,
    /// Subscribers (or readiness threads) parked or about to park.
    pub waiters: AtomicU32,
}

/// Immutable parameters of the ring's modes (covered by the checksum).
#[repr(C)]
pub(crate) struct ModeConfig {
    /// Bounded rings: most messages a publisher may be ahead of the slowest
    /// live registered subscriber (1..=capacity); 0 on lossy rings.
    pub watermark: AtomicU64,
    /// Bounded rings: how long a subscriber may hold publishers back without
    /// reading before it is evicted.
    pub liveness_timeout_ns: AtomicU64,
    /// Multi-producer rings: how long a claimed slot may stay uncommitted,
    /// its producer dead, before it is declared lost.
    pub claim_timeout_ns: AtomicU64,
    /// Entries in the producer table (0 on single-producer rings).
    pub max_producers: AtomicU32,
    pub reserved: AtomicU32,
}

/// Mutable state of bounded rings.
#[repr(C)]
pub(crate) struct TableState {
    /// Bumped when a subscriber joins a bounded ring: publishers then rescan
    /// the table instead of trusting their cached slowest position.
    pub epoch: AtomicU64,
    /// Subscribers evicted so far (dead, or holding publishers back too long).
    pub evictions: AtomicU64,
    /// Futex word blocked publishers sleep on; subscribers bump it (and make
    /// the wake syscall) after reading when `space_waiters` is non-zero.
    pub space_seq: AtomicU32,
    /// Publishers parked waiting for space.
    pub space_waiters: AtomicU32,
    /// One past the highest subscriber record ever claimed: scans stop there.
    pub records_high: AtomicU32,
    pub reserved: AtomicU32,
}

/// The fixed-size front of a ring file.
#[repr(C, align(64))]
pub(crate) struct Header {
    pub magic: AtomicU64,
    pub version: AtomicU32,
    pub header_len: AtomicU32,
    pub capacity: AtomicU64,
    pub slot_size: AtomicU32,
    pub slot_stride: AtomicU32,
    pub flags: AtomicU32,
    pub max_subscribers: AtomicU32,
    pub schema_len: AtomicU32,
    pub reserved: AtomicU32,
    pub layout_checksum: AtomicU64,
    pub created_unix_ns: AtomicU64,
    /// Number of messages published: the next sequence to be written.
    pub cursor: Line<AtomicU64>,
    pub publisher: Line<PublisherState>,
    pub notify: Line<NotifyState>,
    pub modes: Line<ModeConfig>,
    pub table: Line<TableState>,
    pub schema: [AtomicU64; MAX_SCHEMA_LEN / 8],
}

/// One subscriber's entry in the ring's table: its position (which gates
/// publishers of bounded rings) and counters for monitoring, and on its
/// second line the stage name and progress other subscribers gate on (see
/// [`crate::subscribe::stage`]). Owned by whoever holds the record's byte lock (see
/// [`crate::sys::liveness`]); written by the owner, except `state`, which a
/// publisher may set to [`RECORD_EVICTED`]. The stage line outlives its
/// owner: a dead or departed stage's last progress still holds back the
/// subscribers gated on it, and a restarted stage resumes from it.
#[repr(C, align(64))]
pub(crate) struct SubscriberRecord {
    /// Pid of the owner (informational; liveness is the byte lock); 0 when free.
    pub pid: AtomicU32,
    /// How many of the owner's threads are counted in `NotifyState::waiters`
    /// right now, so that the count can be repaired if the owner dies parked.
    pub parked: AtomicU32,
    pub start: AtomicU64,
    pub position: AtomicU64,
    pub received: AtomicU64,
    pub lost: AtomicU64,
    pub attached_unix_ns: AtomicU64,
    /// `RECORD_*`.
    pub state: AtomicU32,
    /// What the owner did to its mapping (`EndMemory`, see the `memory` module).
    pub memory: AtomicU32,
    /// Gated subscribers: one past the position at which its gate last held
    /// it back (0: never). A blocked publisher does not count a subscriber
    /// whose `gate_wait` is its position plus one as stalled: it waits for
    /// its upstream stages, not for itself.
    pub gate_wait: AtomicU64,
    /// Stages: messages processed (every sequence below it); gated
    /// subscribers read a sequence only once it is below this.
    pub processed: AtomicU64,
    /// Stages: the stage name, NUL-padded; all zero for plain subscribers.
    pub stage: [AtomicU64; crate::format::stage_name::NAME_WORDS],
    /// How the owner waits for messages, as it declared it, for monitoring
    /// (`WaitStrategy::record_code`; 0: not declared, as in files written
    /// before this word existed, which were zero here).
    pub wait: AtomicU64,
    /// Durable stages (see `crate::subscribe::stage`): 1 while the record
    /// belongs to one, so that on a bounded ring its death does not release
    /// the messages it has not processed (0 in files written before).
    pub durable: AtomicU64,
    pub reserved: [AtomicU64; 1],
}

/// One producer's entry in a multi-producer ring's table. Its `claim` words
/// say which sequences the producer owns but has not committed, so that a
/// reader stuck on a slot can tell a slow live producer (wait) from a dead
/// one (declare the slot lost).
#[repr(C, align(64))]
pub(crate) struct ProducerRecord {
    /// Pid of the owner (informational; liveness is the byte lock); 0 when free.
    pub pid: AtomicU32,
    /// What the owner did to its mapping (`EndMemory`, see the `memory` module).
    pub memory: AtomicU32,
    /// First sequence of the claim in progress, [`CLAIM_PENDING`] while a
    /// claim is being made, [`CLAIM_IDLE`] otherwise.
    pub claim: AtomicU64,
    /// One past the last sequence of the claim in progress.
    pub claim_end: AtomicU64,
    /// Messages committed by this producer.
    pub published: AtomicU64,
    pub attached_unix_ns: AtomicU64,
}

// The format is shared between builds and processes: pin it down.
const _: () = {
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, version) == 8);
    assert!(offset_of!(Header, capacity) == 16);
    assert!(offset_of!(Header, layout_checksum) == 48);
    assert!(offset_of!(Header, cursor) == 64);
    assert!(offset_of!(Header, publisher) == 128);
    assert!(PUBLISHER_LOCK_OFFSET == offset_of!(Header, publisher));
    assert!(offset_of!(Header, notify) == 192);
    assert!(offset_of!(Header, modes) == 256);
    assert!(offset_of!(Header, table) == 320);
    assert!(offset_of!(Header, schema) == 384);
    assert!(size_of::<Header>() == 384 + MAX_SCHEMA_LEN);
    assert!(size_of::<Header>() % CACHE_LINE == 0);
    assert!(size_of::<SubscriberRecord>() == 2 * CACHE_LINE);
    assert!(offset_of!(SubscriberRecord, gate_wait) == 56);
    assert!(offset_of!(SubscriberRecord, processed) == CACHE_LINE);
    assert!(offset_of!(SubscriberRecord, stage) == CACHE_LINE + 8);
    assert!(offset_of!(SubscriberRecord, wait) == CACHE_LINE + 40);
    assert!(size_of::<ProducerRecord>() == CACHE_LINE);
    assert!(size_of::<PublisherState>() <= CACHE_LINE);
    // Slots: a SlotHead at the start of each (or in the head table), payload
    // words after it, each slot a whole number of cache lines starting on a
    // page boundary; the head table starts on a line boundary after them.
    assert!(offset_of!(SlotHead, stamp) == 0);
    assert!(offset_of!(SlotHead, len) == 8);
    assert!(size_of::<SlotHead>() == SLOT_OVERHEAD);
    assert!(std::mem::align_of::<SlotHead>() == 8);
    assert!(SLOT_OVERHEAD % 8 == 0 && SLOT_OVERHEAD + TIME_WORD < CACHE_LINE);
    assert!(TIME_WORD == 8);
    assert!(CACHE_LINE.is_power_of_two() && PAGE % CACHE_LINE == 0);
    // The largest slot's stride fits the header's u32 field.
    assert!(
        (SLOT_OVERHEAD + TIME_WORD + MAX_SLOT_SIZE as usize).next_multiple_of(CACHE_LINE)
            <= u32::MAX as usize
    );
    // The largest tables fit below the u32 header_len.
    assert!(
        size_of::<Header>()
            + MAX_SUBSCRIBERS as usize * size_of::<SubscriberRecord>()
            + MAX_PRODUCERS as usize * size_of::<ProducerRecord>()
            < u32::MAX as usize
    );
};

/// A slot's head: its stamp (see [`crate::protocol::stamp`]) and the length
/// of the message in it. At the front of the slot (the payload words follow),
/// or in the head table when the heads are apart ([`Layout::heads_apart`]).
#[repr(C)]
pub(crate) struct SlotHead {
    pub stamp: AtomicU64,
    pub len: AtomicU64,
}

/// The immutable shape of a ring, as chosen by its creator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Number of slots; a power of two, at least 2.
    pub capacity: u64,
    /// Largest message in bytes (exact message size for fixed-size rings).
    pub slot_size: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Entries in the subscriber table.
    pub max_subscribers: u32,
    /// Opaque description of the message type (the Python layer stores a
    /// numpy dtype description here); empty for raw byte rings.
    pub schema: Vec<u8>,
    /// Bounded rings: most unread messages a publisher may be ahead of the
    /// slowest live subscriber (1..=capacity). 0 on lossy rings.
    pub watermark: u64,
    /// Bounded rings: eviction limit for a subscriber that stops reading.
    pub liveness_timeout_ns: u64,
    /// Multi-producer rings: deadline for a dead producer's claimed slot.
    pub claim_timeout_ns: u64,
    /// Entries in the producer table; 0 on single-producer rings.
    pub max_producers: u32,
}

impl Layout {
    /// Checks a layout requested by a creator; errors say which argument to fix.
    pub fn check(&self) -> Result<(), ArgumentError> {
        self.problem().map_or(Ok(()), Err)
    }

    /// What is wrong with this layout, if anything.
    fn problem(&self) -> Option<ArgumentError> {
        let c = self.capacity;
        if c < 2 || !c.is_power_of_two() || c > MAX_CAPACITY {
            return Some(ArgumentError::Capacity {
                capacity: c,
                max: MAX_CAPACITY,
            });
        }
        let out_of_range = |argument, value: u32, max: u32, unit| ArgumentError::OutOfRange {
            argument,
            value: value.into(),
            max: max.into(),
            unit,
        };
        if self.slot_size == 0 || self.slot_size > MAX_SLOT_SIZE {
            return Some(out_of_range(
                "slot_size",
                self.slot_size,
                MAX_SLOT_SIZE,
                " bytes",
            ));
        }
        if self.max_subscribers == 0 || self.max_subscribers > MAX_SUBSCRIBERS {
            return Some(out_of_range(
                "max_subscribers",
                self.max_subscribers,
                MAX_SUBSCRIBERS,
                "",
            ));
        }
        if self.flags & !KNOWN_FLAGS != 0 {
            return Some(ArgumentError::UnknownFlags { flags: self.flags });
        }
        if self.bounded() {
            if self.watermark == 0 || self.watermark > c {
                return Some(ArgumentError::Watermark {
                    watermark: self.watermark,
                    capacity: c,
                });
            }
            if self.liveness_timeout_ns == 0 {
                return Some(ArgumentError::NotPositive {
                    argument: "liveness_timeout",
                });
            }
        } else if self.watermark != 0 || self.liveness_timeout_ns != 0 {
            return Some(ArgumentError::OnlyFor {
                arguments: "watermark and liveness_timeout",
                rings: "bounded",
            });
        }
        if self.multi_producer() {
            if self.max_producers == 0 || self.max_producers > MAX_PRODUCERS {
                return Some(out_of_range(
                    "max_producers",
                    self.max_producers,
                    MAX_PRODUCERS,
                    "",
                ));
            }
            if self.claim_timeout_ns == 0 {
                return Some(ArgumentError::NotPositive {
                    argument: "claim_timeout",
                });
            }
        } else if self.max_producers != 0 || self.claim_timeout_ns != 0 {
            return Some(ArgumentError::OnlyFor {
                arguments: "max_producers and claim_timeout",
                rings: "multi-producer",
            });
        }
        if self.schema.len() > MAX_SCHEMA_LEN {
            return Some(ArgumentError::SchemaTooLong {
                len: self.schema.len(),
                max: MAX_SCHEMA_LEN,
            });
        }
        if self.file_len() > MAX_FILE_LEN {
            return Some(ArgumentError::RingTooLarge {
                capacity: c,
                slot_size: self.slot_size,
                file_len: self.file_len(),
                max: MAX_FILE_LEN,
            });
        }
        None
    }

    /// Every message must be exactly `slot_size` bytes.
    pub fn fixed_size(&self) -> bool {
        self.flags & FLAG_FIXED_SIZE != 0
    }

    /// Publishers wait for the slowest subscriber instead of overwriting.
    pub fn bounded(&self) -> bool {
        self.flags & FLAG_BOUNDED != 0
    }

    /// Several producers may publish.
    pub fn multi_producer(&self) -> bool {
        self.flags & FLAG_MULTI_PRODUCER != 0
    }

    /// Every slot carries its message's publish time.
    pub fn timestamps(&self) -> bool {
        self.flags & FLAG_TIMESTAMPS != 0
    }

    /// The slots' heads are kept apart from their data, in a table after
    /// the slots ([`FLAG_HEADS_APART`], asked for with
    /// [`crate::CreateOptions::heads_apart`]). A reader or writer then
    /// touches the slot's data lines plus a quarter of a head line a
    /// message; where a head in the slot would add a whole line (data of 49
    /// to 64 bytes, 113 to 128, ...) that is about twice the 1 -> 1
    /// throughput of 64-byte messages, but a caught-up reader then waits
    /// for two lines that are not neighbours (~10 ns more one-way;
    /// docs/benchmarks.md, "Slot heads apart").
    pub fn heads_apart(&self) -> bool {
        self.flags & FLAG_HEADS_APART != 0
    }

    /// Bytes in front of the payload within a slot: the head (unless the
    /// heads are apart), then the time word on rings with timestamps.
    pub fn slot_overhead(&self) -> usize {
        self.time_offset() + if self.timestamps() { TIME_WORD } else { 0 }
    }

    /// Offset of the time word (rings with timestamps) within a slot.
    pub fn time_offset(&self) -> usize {
        if self.heads_apart() {
            0
        } else {
            SLOT_OVERHEAD
        }
    }

    /// Offset of slot 0's head in the file: the head table after the slots,
    /// or the front of slot 0.
    pub fn heads_offset(&self) -> u64 {
        let slots = self.header_len() as u64;
        if self.heads_apart() {
            slots.saturating_add(self.capacity.saturating_mul(self.slot_stride() as u64))
        } else {
            slots
        }
    }

    /// Bytes from one slot's head to the next.
    pub fn head_stride(&self) -> usize {
        if self.heads_apart() {
            SLOT_OVERHEAD
        } else {
            self.slot_stride()
        }
    }

    /// Offset of subscriber record `i` in the file.
    pub(crate) fn subscriber_offset(i: usize) -> usize {
        size_of::<Header>() + i * size_of::<SubscriberRecord>()
    }

    /// Offset of producer record `i` in the file.
    pub(crate) fn producer_offset(&self, i: usize) -> usize {
        Self::subscriber_offset(self.max_subscribers as usize) + i * size_of::<ProducerRecord>()
    }

    /// Bytes from one slot to the next: overhead plus payload, whole cache lines.
    pub fn slot_stride(&self) -> usize {
        (self.slot_overhead() + self.slot_size as usize).next_multiple_of(CACHE_LINE)
    }

    /// Payload words per slot.
    pub fn payload_words(&self) -> usize {
        (self.slot_stride() - self.slot_overhead()) / 8
    }

    /// Offset of slot 0: header plus record tables, rounded up to a page.
    pub fn header_len(&self) -> usize {
        self.producer_offset(self.max_producers as usize)
            .next_multiple_of(PAGE)
    }

    /// Bytes the ring needs: header, tables, slots and, when the heads are
    /// apart, the head table. Either way the last head ends the file (in
    /// its slot, or last in the table after the slots).
    pub fn file_len(&self) -> u64 {
        self.heads_offset()
            .saturating_add(self.capacity.saturating_mul(self.head_stride() as u64))
    }

    /// Size of the ring file on a filesystem whose files are whole pages of
    /// `page` bytes (hugetlbfs); the ring's bytes come first, the rest of the
    /// last page is unused. Normal filesystems: `page` is 1.
    pub fn file_len_on(&self, page: u64) -> u64 {
        self.file_len().next_multiple_of(page.max(1))
    }

    /// Checksum over every immutable header field and the schema.
    fn checksum(&self) -> u64 {
        let mut h = Fnv1a::new();
        h.write(&VERSION.to_le_bytes());
        h.write(&(self.header_len() as u32).to_le_bytes());
        h.write(&self.capacity.to_le_bytes());
        h.write(&self.slot_size.to_le_bytes());
        h.write(&(self.slot_stride() as u32).to_le_bytes());
        h.write(&self.flags.to_le_bytes());
        h.write(&self.max_subscribers.to_le_bytes());
        h.write(&(self.schema.len() as u32).to_le_bytes());
        h.write(&self.watermark.to_le_bytes());
        h.write(&self.liveness_timeout_ns.to_le_bytes());
        h.write(&self.claim_timeout_ns.to_le_bytes());
        h.write(&self.max_producers.to_le_bytes());
        h.write(&self.schema);
        h.finish()
    }

    /// Short human description, used in mismatch errors.
    pub fn describe(&self) -> String {
        let kind = if self.fixed_size() {
            "fixed-size"
        } else {
            "variable-size"
        };
        let mut modes = String::new();
        if self.bounded() {
            modes += &format!(" bounded(watermark={})", self.watermark);
        }
        if self.multi_producer() {
            modes += &format!(" producers=many(max {})", self.max_producers);
        }
        if self.timestamps() {
            modes += " timestamps";
        }
        if self.heads_apart() {
            modes += " heads-apart";
        }
        format!(
            "capacity={} slot_size={} ({kind}){modes} schema={}",
            self.capacity,
            self.slot_size,
            if self.schema.is_empty() {
                "raw bytes".to_owned()
            } else {
                String::from_utf8_lossy(&self.schema).into_owned()
            }
        )
    }
}

/// Writes a fresh header for `layout` into a zero-filled, not yet visible file.
pub(crate) fn init_header(header: &Header, layout: &Layout, now_unix_ns: u64) {
    let r = Ordering::Relaxed;
    header.version.store(VERSION, r);
    header.header_len.store(layout.header_len() as u32, r);
    header.capacity.store(layout.capacity, r);
    header.slot_size.store(layout.slot_size, r);
    header.slot_stride.store(layout.slot_stride() as u32, r);
    header.flags.store(layout.flags, r);
    header.max_subscribers.store(layout.max_subscribers, r);
    header.schema_len.store(layout.schema.len() as u32, r);
    crate::protocol::copy::store_bytes(&header.schema, &layout.schema);
    let modes = &header.modes.0;
    modes.watermark.store(layout.watermark, r);
    modes
        .liveness_timeout_ns
        .store(layout.liveness_timeout_ns, r);
    modes.claim_timeout_ns.store(layout.claim_timeout_ns, r);
    modes.max_producers.store(layout.max_producers, r);
    header.layout_checksum.store(layout.checksum(), r);
    header.created_unix_ns.store(now_unix_ns, r);
    header.cursor.0.store(0, r);
    // Magic last: a file with a zero magic was never finished.
    header.magic.store(MAGIC, Ordering::Release);
}

/// Reads and validates the layout of a mapped ring file of `file_len` bytes.
///
/// # Safety contract (checked by the caller)
/// `header` points into a mapping of at least `min(file_len, size_of::<Header>())`
/// bytes; this function refuses files shorter than the header before any read.
/// `granule`: the page size of a filesystem whose files are whole pages
/// (hugetlbfs), else 1.
pub(crate) fn read_layout(
    header: &Header,
    file_len: u64,
    granule: u64,
    path: &Path,
) -> Result<Layout, OpenError> {
    let r = Ordering::Relaxed;
    let magic = header.magic.load(Ordering::Acquire);
    if magic != MAGIC {
        let what = if magic == 0 {
            "its magic number is zero (creation never finished, or not a ring)".to_owned()
        } else {
            format!(
                "its first bytes are {:02x?}, not \"RINGCAST\"",
                magic.to_le_bytes()
            )
        };
        return Err(RingFault::corrupt(path, what).into());
    }
    let version = header.version.load(r);
    if version != VERSION {
        return Err(OpenError::IncompatibleVersion {
            path: path.to_owned(),
            found: version,
            supported: VERSION,
        });
    }
    let schema_len = header.schema_len.load(r) as usize;
    if schema_len > MAX_SCHEMA_LEN {
        return Err(RingFault::corrupt(
            path,
            format!("schema length {schema_len} exceeds {MAX_SCHEMA_LEN}"),
        )
        .into());
    }
    let mut schema = vec![0u8; schema_len];
    crate::protocol::copy::load_bytes(&header.schema, &mut schema);
    let layout = Layout {
        capacity: header.capacity.load(r),
        slot_size: header.slot_size.load(r),
        flags: header.flags.load(r),
        max_subscribers: header.max_subscribers.load(r),
        schema,
        watermark: header.modes.0.watermark.load(r),
        liveness_timeout_ns: header.modes.0.liveness_timeout_ns.load(r),
        claim_timeout_ns: header.modes.0.claim_timeout_ns.load(r),
        max_producers: header.modes.0.max_producers.load(r),
    };
    if header.reserved.load(r) != 0
        || header.modes.0.reserved.load(r) != 0
        || header.layout_checksum.load(r) != layout.checksum()
        || header.header_len.load(r) as usize != layout.header_len()
        || header.slot_stride.load(r) as usize != layout.slot_stride()
    {
        return Err(RingFault::corrupt(
            path,
            "its header checksum does not match its layout fields",
        )
        .into());
    }
    if let Some(problem) = layout.problem() {
        return Err(
            RingFault::corrupt(path, format!("its layout is impossible: {problem}")).into(),
        );
    }
    if file_len != layout.file_len_on(granule) {
        return Err(RingFault::corrupt(
            path,
            format!(
                "it has {file_len} bytes but its layout ({}) needs exactly {} (truncated or extended)",
                layout.describe(),
                layout.file_len_on(granule)
            ),
        ).into());
    }
    Ok(layout)
}

/// The layout a ring file's first bytes describe, validated exactly as
/// opening the ring validates it (`file_len`: the file's size; `granule`:
/// the page size of a filesystem whose files are whole pages, else 1).
/// For tools that inspect ring images, and for fuzzing the validation.
pub fn parse_header(
    bytes: &[u8],
    file_len: u64,
    granule: u64,
    path: &Path,
) -> Result<Layout, OpenError> {
    let words = size_of::<Header>() / 8;
    // A 64-byte aligned copy made of atomics, as the mapped header is.
    let lines: Box<[Line<[AtomicU64; 8]>]> =
        (0..words / 8).map(|_| Line(Default::default())).collect();
    let copied = bytes.len().min(size_of::<Header>());
    for (i, chunk) in bytes[..copied].chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        lines[i / 8].0[i % 8].store(u64::from_le_bytes(word), Ordering::Relaxed);
    }
    check_file_len(file_len.min(copied as u64), path)?;
    // SAFETY: `lines` is 64-byte aligned, exactly size_of::<Header>() bytes
    // (asserted at compile time to be whole lines), and made only of
    // atomics, like Header itself.
    let header = unsafe { &*lines.as_ptr().cast::<Header>() };
    read_layout(header, file_len, granule, path)
}

/// Refuses a file too short to hold a header, or longer than any ring,
/// before anything is mapped or read.
pub(crate) fn check_file_len(file_len: u64, path: &Path) -> Result<(), RingFault> {
    if file_len < min_file_len() {
        return Err(RingFault::corrupt(
            path,
            format!(
                "it has {file_len} bytes, less than a ring header ({} bytes): truncated",
                min_file_len()
            ),
        ));
    }
    if file_len > MAX_FILE_LEN {
        return Err(RingFault::corrupt(
            path,
            format!("it has {file_len} bytes, more than any ring"),
        ));
    }
    Ok(())
}

/// Smallest file that can hold a header.
pub(crate) const fn min_file_len() -> u64 {
    size_of::<Header>() as u64
}

/// 64-bit FNV-1a: tiny, dependency-free, good enough to catch damage.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A header-sized, 64-byte aligned scratch buffer to build headers in.
    struct Scratch(Box<[Line<[AtomicU64; 8]>]>);

    impl Scratch {
        fn new() -> Self {
            let lines = size_of::<Header>() / CACHE_LINE;
            Self((0..lines).map(|_| Line(Default::default())).collect())
        }
        fn header(&self) -> &Header {
            // SAFETY: the buffer is 64-byte aligned, exactly size_of::<Header>()
            // bytes, and made only of atomics like Header itself.
            unsafe { &*self.0.as_ptr().cast::<Header>() }
        }
        fn word(&self, i: usize) -> &AtomicU64 {
            &self.0[i / 8].0[i % 8]
        }
    }

    fn layout_strategy() -> impl Strategy<Value = Layout> {
        (
            1u32..20,
            1u32..5000,
            any::<bool>(),
            1u32..300,
            proptest::collection::vec(any::<u8>(), 0..200),
            (any::<bool>(), any::<bool>(), 1u64..u64::MAX, 1u32..100),
            (any::<bool>(), any::<bool>()),
        )
            .prop_map(
                |(
                    cap_log,
                    slot_size,
                    fixed,
                    subs,
                    schema,
                    (bounded, many, w, producers),
                    (timestamps, apart),
                )| {
                    let capacity = 1u64 << cap_log;
                    let mut l = plain(capacity, slot_size);
                    l.flags = if fixed { FLAG_FIXED_SIZE } else { 0 };
                    if timestamps {
                        l.flags |= FLAG_TIMESTAMPS;
                    }
                    if apart {
                        l.flags |= FLAG_HEADS_APART;
                    }
                    l.max_subscribers = subs;
                    l.schema = schema;
                    if bounded {
                        l.flags |= FLAG_BOUNDED;
                        l.watermark = 1 + w % capacity;
                        l.liveness_timeout_ns = w;
                    }
                    if many {
                        l.flags |= FLAG_MULTI_PRODUCER;
                        l.max_producers = producers;
                        l.claim_timeout_ns = w;
                    }
                    l
                },
            )
    }

    fn plain(capacity: u64, slot_size: u32) -> Layout {
        Layout {
            capacity,
            slot_size,
            flags: 0,
            max_subscribers: 1,
            schema: vec![],
            watermark: 0,
            liveness_timeout_ns: 0,
            claim_timeout_ns: 0,
            max_producers: 0,
        }
    }

    #[test]
    fn mode_parameters_are_checked() {
        let mut l = plain(8, 8);
        l.flags = FLAG_BOUNDED;
        l.liveness_timeout_ns = 1;
        for (w, ok) in [(0, false), (1, true), (8, true), (9, false)] {
            l.watermark = w;
            assert_eq!(l.check().is_ok(), ok, "watermark {w}");
        }
        let mut l = plain(8, 8);
        l.watermark = 4;
        assert!(l
            .check()
            .unwrap_err()
            .to_string()
            .contains("only to bounded"));
        let mut l = plain(8, 8);
        l.flags = FLAG_MULTI_PRODUCER;
        l.claim_timeout_ns = 1;
        assert!(l.check().unwrap_err().to_string().contains("max_producers"));
        l.max_producers = 4;
        l.check().unwrap();
        assert!(l.header_len() >= l.producer_offset(4));
    }

    #[test]
    fn capacity_errors_say_power_of_two() {
        for cap in [0, 1, 3, 1000, (1 << 33)] {
            let l = plain(cap, 8);
            let msg = l.check().unwrap_err().to_string();
            assert!(msg.contains("power of two"), "{msg}");
        }
        let l = plain(1000, 8);
        assert!(l.check().unwrap_err().to_string().contains("512 or 1024"));
    }

    #[test]
    fn slots_are_whole_cache_lines() {
        for slot_size in [1, 8, 48, 49, 64, 1000] {
            let l = plain(2, slot_size);
            assert_eq!(l.slot_stride() % CACHE_LINE, 0);
            assert!(l.payload_words() * 8 >= slot_size as usize);
            assert_eq!(l.header_len() % PAGE, 0);
        }
    }

    /// With the heads apart, every slot is the fewest cache lines its data
    /// (time word and payload) needs; with every head in its slot, the
    /// fewest lines head and data need. Either way heads, time words and
    /// payloads of all slots are disjoint and inside the file.
    #[test]
    fn a_slot_is_the_fewest_lines_its_data_needs() {
        for (timestamps, apart) in [(false, false), (true, false), (false, true), (true, true)] {
            for slot_size in 1..=300u32 {
                let mut l = plain(4, slot_size);
                if timestamps {
                    l.flags |= FLAG_TIMESTAMPS;
                }
                if apart {
                    l.flags |= FLAG_HEADS_APART;
                }
                assert_eq!(l.heads_apart(), apart);
                let data = slot_size as usize + if timestamps { TIME_WORD } else { 0 };
                let stride = l.slot_stride();
                let lines = if !apart { SLOT_OVERHEAD + data } else { data };
                assert_eq!(stride, lines.next_multiple_of(CACHE_LINE), "{slot_size}");
                assert_eq!(l.slot_overhead() + 8 * l.payload_words(), stride);
                assert!(8 * l.payload_words() >= slot_size as usize);
                // Byte ranges [start, end) of every field of every slot.
                let mut ranges = Vec::new();
                for i in 0..l.capacity as usize {
                    let head = l.heads_offset() as usize + i * l.head_stride();
                    let slot = l.header_len() + i * stride;
                    assert_eq!(head % 8, 0);
                    ranges.push((head, head + SLOT_OVERHEAD));
                    if timestamps {
                        let t = slot + l.time_offset();
                        ranges.push((t, t + TIME_WORD));
                    }
                    ranges.push((slot + l.slot_overhead(), slot + stride));
                }
                ranges.sort();
                for w in ranges.windows(2) {
                    assert!(
                        w[0].1 <= w[1].0,
                        "{slot_size}: {:?} overlaps {:?}",
                        w[0],
                        w[1]
                    );
                }
                assert!(ranges[0].0 >= l.header_len());
                assert_eq!(ranges.last().unwrap().1 as u64, l.file_len(), "{slot_size}");
            }
        }
    }

    proptest! {
        #[test]
        fn header_round_trips(layout in layout_strategy()) {
            let s = Scratch::new();
            init_header(s.header(), &layout, 7);
            let back = read_layout(s.header(), layout.file_len(), 1, Path::new("t")).unwrap();
            prop_assert_eq!(back, layout);
        }

        /// Damage to any immutable header word (identity line, mode line) is
        /// refused, never accepted as a different layout.
        #[test]
        fn damaged_header_is_refused(layout in layout_strategy(), word in (0usize..10).prop_map(|w| if w < 6 { w } else { 26 + w }), bit in 0u32..64) {
            let s = Scratch::new();
            init_header(s.header(), &layout, 7);
            s.word(word).fetch_xor(1 << bit, Ordering::Relaxed);
            let res = read_layout(s.header(), layout.file_len(), 1, Path::new("t"));
            prop_assert!(matches!(res, Err(OpenError::Fault(RingFault::Corrupt { .. }) | OpenError::IncompatibleVersion { .. })), "{:?}", res);
        }

        /// A schema byte flipped is caught by the checksum.
        #[test]
        fn damaged_schema_is_refused(layout in layout_strategy(), bit in 0u32..64) {
            prop_assume!(!layout.schema.is_empty());
            let s = Scratch::new();
            init_header(s.header(), &layout, 7);
            s.header().schema[0].fetch_xor(1 << bit, Ordering::Relaxed);
            let flipped_padding = (bit / 8) as usize >= layout.schema.len();
            let res = read_layout(s.header(), layout.file_len(), 1, Path::new("t"));
            prop_assert_eq!(res.is_err(), !flipped_padding);
        }

        /// Random bytes never pass as a ring and never panic.
        #[test]
        fn random_headers_are_refused(words in proptest::collection::vec(any::<u64>(), size_of::<Header>() / 8), len: u64) {
            let s = Scratch::new();
            for (i, w) in words.iter().enumerate() {
                s.word(i).store(*w, Ordering::Relaxed);
            }
            prop_assert!(read_layout(s.header(), len, 1, Path::new("t")).is_err());
        }

        /// A wrong file size (truncated or extended) is refused.
        #[test]
        fn wrong_file_size_is_refused(layout in layout_strategy(), delta in 1u64..1_000_000, grow: bool) {
            let s = Scratch::new();
            init_header(s.header(), &layout, 7);
            let len = if grow { layout.file_len() + delta } else { layout.file_len().saturating_sub(delta) };
            let msg = read_layout(s.header(), len, 1, Path::new("t")).unwrap_err().to_string();
            prop_assert!(msg.contains("truncated"), "{}", msg);
        }
    }
}
