//! `Subscriber::builder(name)`: where to start, which stage this is and
//! which it follows, and what to do to the thread and mapping, then attach.
//!
//! ```no_run
//! use ringcast_core::{Start, Subscriber};
//! let mut risk = Subscriber::builder("orders")
//!     .start(Start::Resume)
//!     .stage("risk")
//!     .after(["pricing"])
//!     .attach()?;
//! let mut buf = [0u8; 64];
//! let _ = risk.try_recv(&mut buf)?;
//! # Ok::<(), ringcast_core::Error>(())
//! ```

use super::{StageOptions, Start, Subscriber};
use crate::error::{OpenError, Result};
use crate::memory::MemoryOptions;
use std::path::PathBuf;

/// How to attach to a ring (see [`Subscriber::builder`]).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until attach()"]
pub struct SubscriberBuilder {
    name: String,
    dir: Option<PathBuf>,
    start: Start,
    memory: MemoryOptions,
    stage: StageOptions,
}

impl Subscriber {
    /// Starts describing a subscriber of ring `name`: by default it starts
    /// with the next message published, is no stage and follows none.
    pub fn builder(name: impl Into<String>) -> SubscriberBuilder {
        SubscriberBuilder {
            name: name.into(),
            dir: None,
            start: Start::Latest,
            memory: MemoryOptions::default(),
            stage: StageOptions::default(),
        }
    }
}

impl SubscriberBuilder {
    /// Ring directory (default `$RINGCAST_DIR` or `/dev/shm/ringcast`).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Where in the stream to start.
    pub fn start(mut self, start: Start) -> Self {
        self.start = start;
        self
    }

    /// Name this subscriber as a stage of the ring.
    pub fn stage(mut self, name: impl Into<String>) -> Self {
        self.stage.name = Some(name.into());
        self
    }

    /// Read a message only once every stage named here has processed it.
    pub fn after<S: Into<String>>(mut self, stages: impl IntoIterator<Item = S>) -> Self {
        self.stage.after = stages.into_iter().map(Into::into).collect();
        self
    }

    /// A durable stage (see [`StageOptions::durable`]): on a bounded ring
    /// its unprocessed messages outlive its death for the liveness timeout.
    pub fn durable(mut self, on: bool) -> Self {
        self.stage.durable = on;
        self
    }

    /// What the subscriber does to its thread and mapping when it attaches.
    pub fn memory(mut self, memory: MemoryOptions) -> Self {
        self.memory = memory;
        self
    }

    /// Attaches to the ring.
    pub fn attach(self) -> Result<Subscriber, OpenError> {
        Subscriber::attach_stage(
            &self.name,
            self.dir.as_deref(),
            self.start,
            &self.memory,
            &self.stage,
        )
    }
}
