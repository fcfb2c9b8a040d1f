//! `Publisher::builder(name)`: the ring's options named one by one, ending in
//! what to do about an existing ring of that name.
//!
//! ```no_run
//! use ringcast_core::Publisher;
//! let mut ticks = Publisher::builder("ticks")
//!     .capacity(4096)
//!     .slot_size(64)
//!     .bounded(4096)
//!     .timestamps(true)
//!     .open_or_create()?;
//! ticks.publish(b"hello")?;
//! # Ok::<(), ringcast_core::Error>(())
//! ```

use super::{CreateOptions, Producers, Publisher};
use crate::error::{OpenError, Result};
use crate::memory::MemoryOptions;
use crate::shm::backing::Placement;
use crate::wait::WaitStrategy;
use std::path::PathBuf;
use std::time::Duration;

/// Options of a ring and of its publisher, checked when the ring is created
/// or opened (see [`Publisher::builder`]).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until create(), open_or_create() or attach()"]
pub struct PublisherBuilder {
    name: String,
    opts: CreateOptions,
}

impl Publisher {
    /// Starts describing ring `name`: by default a lossy, single-producer
    /// ring of 1024 slots of 64 bytes, variable-size messages, no timestamps.
    pub fn builder(name: impl Into<String>) -> PublisherBuilder {
        PublisherBuilder {
            name: name.into(),
            opts: CreateOptions::new(1024, 64),
        }
    }
}

impl PublisherBuilder {
    /// Number of slots: a power of two, at least 2.
    pub fn capacity(mut self, slots: u64) -> Self {
        self.opts.capacity = slots;
        self
    }

    /// Largest message, in bytes.
    pub fn slot_size(mut self, bytes: u32) -> Self {
        self.opts.slot_size = bytes;
        self
    }

    /// Every message is exactly `slot_size` bytes of the type `schema`
    /// describes (stored in the ring for subscribers).
    pub fn records(mut self, schema: impl Into<Vec<u8>>) -> Self {
        self.opts.fixed_size = true;
        self.opts.schema = schema.into();
        self
    }

    /// Subscriber table size.
    pub fn max_subscribers(mut self, n: u32) -> Self {
        self.opts.max_subscribers = Some(n);
        self
    }

    /// Ring directory (default `$RINGCAST_DIR` or `/dev/shm/ringcast`).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.opts.dir = Some(dir.into());
        self
    }

    /// Permission bits of a new ring file (default 0o600).
    pub fn mode(mut self, mode: u32) -> Self {
        self.opts.mode = mode;
        self
    }

    /// A bounded ring: publishers stay at most `watermark` messages ahead of
    /// the slowest live subscriber (1..=capacity); nothing is overwritten.
    pub fn bounded(mut self, watermark: u64) -> Self {
        self.opts.bounded = Some(watermark);
        self
    }

    /// Bounded rings: evict a subscriber that holds publishers back without
    /// reading for this long.
    pub fn liveness_timeout(mut self, timeout: Duration) -> Self {
        self.opts.liveness_timeout = timeout;
        self
    }

    /// Up to `max` concurrent producers in any processes.
    pub fn many_producers(mut self, max: u32) -> Self {
        self.opts.producers = Producers::Many { max };
        self
    }

    /// Multi-producer rings: how long a claimed slot may stay unwritten
    /// before its producer's liveness is checked.
    pub fn claim_timeout(mut self, timeout: Duration) -> Self {
        self.opts.claim_timeout = timeout;
        self
    }

    /// How this publisher waits for room in a full bounded ring.
    pub fn wait(mut self, strategy: WaitStrategy) -> Self {
        self.opts.wait = strategy;
        self
    }

    /// Where a new ring's memory comes from (huge pages, NUMA node).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.opts.placement = placement;
        self
    }

    /// What the publisher does to its thread and mapping when it opens the
    /// ring (pin, lock, prefault).
    pub fn memory(mut self, memory: MemoryOptions) -> Self {
        self.opts.memory = memory;
        self
    }

    /// Every message carries its publish time.
    pub fn timestamps(mut self, on: bool) -> Self {
        self.opts.timestamps = on;
        self
    }

    /// The slots' heads apart, in a table after the slots
    /// ([`CreateOptions::heads_apart`]): one line a 64-byte message instead
    /// of two, for ~10 ns more one-way latency to a caught-up reader.
    pub fn heads_apart(mut self, on: bool) -> Self {
        self.opts.heads_apart = on;
        self
    }

    /// Creates the ring; fails with [`crate::OpenError::Exists`] if the name is
    /// taken.
    pub fn create(mut self) -> Result<Publisher, OpenError> {
        self.opts.exist_ok = false;
        Publisher::create(&self.name, &self.opts)
    }

    /// Creates the ring, or takes over (single producer) / joins (many
    /// producers) an existing ring of the same layout.
    pub fn open_or_create(mut self) -> Result<Publisher, OpenError> {
        self.opts.exist_ok = true;
        Publisher::create(&self.name, &self.opts)
    }

    /// Opens the existing ring, whatever its layout (the layout options
    /// given are not used; `dir`, `wait` and `memory` are).
    pub fn attach(self) -> Result<Publisher, OpenError> {
        Publisher::attach_with(
            &self.name,
            self.opts.dir.as_deref(),
            self.opts.wait,
            &self.opts.memory,
        )
    }

    /// The options as they stand.
    pub fn options(&self) -> &CreateOptions {
        &self.opts
    }
}
