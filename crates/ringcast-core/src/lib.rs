//! ringcast-core: rings in shared memory, one or many producers, many
//! consumers, lossy or bounded.
//!
//! A ring is one file (by default under `/dev/shm/ringcast`) that a publisher
//! creates and any number of subscribers in other processes map. Messages go
//! into fixed slots guarded by a per-slot stamp (a seqlock per slot): readers
//! never block the publisher, a reader that falls a whole ring behind is lapped
//! and learns exactly how many messages it lost.
//!
//! Module map:
//! - [`stamp`]: stamp encoding and the reader's verdict on a stamp;
//! - [`copy`]: race-free word-wise payload copies;
//! - [`protocol`]: the publish/read protocol over any [`protocol::Slots`];
//! - [`layout`]: the file format and its validation; [`schema`]: the
//!   message schema in the header, checked before anyone decodes it;
//! - [`hugepages`], [`memory`], [`placement`]: huge pages, locking,
//!   prefaulting, NUMA nodes and CPU pinning;
//! - [`info`]: what `ringcast info` reports about a ring;
//! - [`guard`]: ring mappings revoked (not crashed) when their file shrinks
//!   or the process forks; [`trust`]: whose ring files this process uses;
//! - [`clock`], [`latency`], [`interval_log`]: publish timestamps,
//!   HdrHistogram latency recording and interval logs; [`loadgen`]: the
//!   paced publisher and recording reader behind `ringcast bench`;
//! - [`gate`]: bounded rings' room arithmetic and eviction decisions;
//! - [`stage`]: named stages and the dependency barrier between them;
//! - [`Publisher`] / [`Subscriber`]: the shared-memory ring end points.
//!
//! Under `--cfg loom` only the protocol modules are built, against loom's
//! atomics, for model checking.

pub mod copy;
pub mod protocol;
pub mod stamp;
mod sync;

#[cfg(not(loom))]
mod backing;
#[cfg(not(loom))]
mod barrier;
#[cfg(not(loom))]
pub mod clock;
#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
mod futex;
#[cfg(not(loom))]
pub mod gate;
#[cfg(not(loom))]
pub mod guard;
#[cfg(not(loom))]
pub mod hugepages;
#[cfg(not(loom))]
pub mod info;
#[cfg(not(loom))]
pub mod interval_log;
#[cfg(not(loom))]
pub mod latency;
#[cfg(not(loom))]
pub mod layout;
#[cfg(not(loom))]
mod liveness;
#[cfg(not(loom))]
pub mod loadgen;
#[cfg(not(loom))]
mod mapping;
#[cfg(not(loom))]
pub mod memory;
#[cfg(not(loom))]
pub mod name;
#[cfg(not(loom))]
pub mod placement;
#[cfg(not(loom))]
mod publisher;
#[cfg(not(loom))]
mod readiness;
#[cfg(not(loom))]
mod ring;
#[cfg(not(loom))]
mod room;
#[cfg(not(loom))]
pub mod schema;
#[cfg(not(loom))]
pub mod stage;
#[cfg(not(loom))]
mod subscriber;
#[cfg(not(loom))]
pub mod trust;
#[cfg(not(loom))]
pub mod wait;

#[cfg(not(loom))]
pub use backing::{Placement, RingIdentity};
#[cfg(not(loom))]
pub use error::{Error, Result};
#[cfg(not(loom))]
pub use hugepages::HugePages;
#[cfg(not(loom))]
pub use latency::{LatencyHistogram, LatencyRecorder, RecorderConfig};
#[cfg(not(loom))]
pub use layout::Layout;
#[cfg(not(loom))]
pub use memory::{EndMemory, MemoryOptions, MemoryReport};
#[cfg(not(loom))]
pub use publisher::{CreateOptions, Patience, Producers, Publisher};
#[cfg(not(loom))]
pub use subscriber::{PublisherStatus, StageOptions, Start, Subscriber, WaitEnd, WaitHandle};
#[cfg(not(loom))]
pub use wait::{WaitStrategy, Waiter};
