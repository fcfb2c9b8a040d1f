//! What a ring is created with: its layout, its modes, and what the
//! publisher does to its thread and memory.

use crate::format::layout::{
    Layout, DEFAULT_CLAIM_TIMEOUT_NS, DEFAULT_LIVENESS_TIMEOUT_NS, DEFAULT_MAX_PRODUCERS,
    DEFAULT_MAX_SUBSCRIBERS, FLAG_BOUNDED, FLAG_FIXED_SIZE, FLAG_HEADS_APART, FLAG_MULTI_PRODUCER,
    FLAG_TIMESTAMPS,
};
use crate::memory::MemoryOptions;
use crate::shm::backing::Placement;
use crate::wait::WaitStrategy;
use std::path::PathBuf;
use std::time::Duration;

/// Who may publish into a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Producers {
    /// One publisher at a time (enforced); the fastest mode.
    #[default]
    One,
    /// Up to `max` concurrent producers in any processes.
    Many {
        /// Size of the ring's producer table.
        max: u32,
    },
}

/// How to create (or take over) a ring.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Number of slots; a power of two, at least 2.
    pub capacity: u64,
    /// Largest message in bytes (the exact size when `fixed_size`).
    pub slot_size: u32,
    /// Every message is exactly `slot_size` bytes (typed records).
    pub fixed_size: bool,
    /// Description of the message type, stored in the ring for subscribers.
    pub schema: Vec<u8>,
    /// Subscriber table size; `None` means the default at creation and "any"
    /// when taking over an existing ring.
    pub max_subscribers: Option<u32>,
    /// Ring directory; `None` means `$RINGCAST_DIR` or `/dev/shm/ringcast`.
    pub dir: Option<PathBuf>,
    /// Permission bits of a new ring file.
    pub mode: u32,
    /// Take over (single producer) or join (multi-producer) an existing ring
    /// of the same layout instead of failing.
    pub exist_ok: bool,
    /// Bounded ring: `Some(watermark)`, the most unread messages a publisher
    /// may be ahead of the slowest live subscriber (1..=capacity). `None`:
    /// lossy ring (slow subscribers are lapped).
    pub bounded: Option<u64>,
    /// Bounded rings: a subscriber holding publishers back without reading
    /// for this long is evicted.
    pub liveness_timeout: Duration,
    /// Who may publish.
    pub producers: Producers,
    /// Multi-producer rings: how long a reader waits on a claimed slot before
    /// checking whether its producer died (and declaring the slot lost).
    pub claim_timeout: Duration,
    /// How this publisher waits when a bounded ring is full. Its polls look
    /// at every subscriber's position, so while spinning it polls once every
    /// [`crate::wait::PUBLISHER_POLL_PAUSES`] pauses (a subscriber polls
    /// once a pause): `spin: N` spins that many times `N` pauses.
    pub wait: WaitStrategy,
    /// Where a new ring's memory comes from: huge pages, NUMA node.
    pub placement: Placement,
    /// What this publisher does to its thread and mapping (pin, lock,
    /// prefault) when it opens the ring.
    pub memory: MemoryOptions,
    /// Every message carries its publish time (ns on [`crate::sys::clock`]), for
    /// latency measurement; costs one clock read per publish call and 8
    /// bytes per slot.
    pub timestamps: bool,
    /// Keep the slots' heads (stamp, length) apart, in a table after the
    /// slots, instead of at the front of each slot ([`Layout::heads_apart`]).
    /// Worth it where a head in the slot costs the slot a cache line: 49 to
    /// 64 bytes of data (time word and payload), 113 to 128, ...; a 64-byte
    /// stream then moves one line a message instead of two, about twice the
    /// throughput. Off by default: with the head in the slot a caught-up
    /// reader gets its message ~10 ns sooner (head and data arrive as one
    /// pair of neighbouring lines).
    pub heads_apart: bool,
}

impl CreateOptions {
    /// Options for a raw, variable-size, lossy single-producer ring.
    pub fn new(capacity: u64, slot_size: u32) -> Self {
        Self {
            capacity,
            slot_size,
            fixed_size: false,
            schema: Vec::new(),
            max_subscribers: None,
            dir: None,
            mode: 0o600,
            exist_ok: false,
            bounded: None,
            liveness_timeout: Duration::from_nanos(DEFAULT_LIVENESS_TIMEOUT_NS),
            producers: Producers::One,
            claim_timeout: Duration::from_nanos(DEFAULT_CLAIM_TIMEOUT_NS),
            wait: WaitStrategy::default(),
            placement: Placement::default(),
            memory: MemoryOptions {
                prefault: true,
                ..MemoryOptions::default()
            },
            timestamps: false,
            heads_apart: false,
        }
    }

    pub(super) fn layout(&self) -> Layout {
        let mut flags = if self.fixed_size { FLAG_FIXED_SIZE } else { 0 };
        if self.timestamps {
            flags |= FLAG_TIMESTAMPS;
        }
        let (mut watermark, mut liveness_timeout_ns) = (0, 0);
        if let Some(w) = self.bounded {
            flags |= FLAG_BOUNDED;
            watermark = w;
            liveness_timeout_ns = duration_ns(self.liveness_timeout);
        }
        let (mut max_producers, mut claim_timeout_ns) = (0, 0);
        if let Producers::Many { max } = self.producers {
            flags |= FLAG_MULTI_PRODUCER;
            max_producers = max;
            claim_timeout_ns = duration_ns(self.claim_timeout);
        }
        if self.heads_apart {
            flags |= FLAG_HEADS_APART;
        }
        Layout {
            capacity: self.capacity,
            slot_size: self.slot_size,
            flags,
            max_subscribers: self.max_subscribers.unwrap_or(DEFAULT_MAX_SUBSCRIBERS),
            schema: self.schema.clone(),
            watermark,
            liveness_timeout_ns,
            claim_timeout_ns,
            max_producers,
        }
    }
}

impl Producers {
    /// Many producers with the default table size.
    pub const fn many() -> Self {
        Producers::Many {
            max: DEFAULT_MAX_PRODUCERS,
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
