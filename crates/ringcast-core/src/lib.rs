//! ringcast-core: rings in shared memory, one or many producers, many
//! consumers, lossy or bounded.
//!
//! A ring is one file (by default under `/dev/shm/ringcast`) that a publisher
//! creates and any number of subscribers in other processes map. Messages go
//! into fixed slots guarded by a per-slot stamp (a seqlock per slot): readers
//! never block the publisher, a reader that falls a whole ring behind is lapped
//! and learns exactly how many messages it lost.
//!
//! Layers, each depending only on the ones above it in this list (see
//! `docs/design.md`, "Map of the code"):
//! - [`protocol`]: the publish/read protocol over any [`protocol::Slots`]:
//!   stamps, word copies, bounded-ring room arithmetic. The only layer loom
//!   model-checks (`--cfg loom` builds nothing else);
//! - [`sys`]: every raw system call (futex, membarrier, byte locks, clock,
//!   CPU and NUMA placement, mappings, files, the SIGBUS and fork handlers,
//!   eventfds, users and groups);
//! - [`format`]: the ring file's layout, schema and names;
//! - [`shm`]: ring files made, found, trusted, mapped and guarded; the mapped
//!   ring with its tables, notification and recovery;
//! - [`memory`]: huge pages, locking, prefaulting and NUMA binding of a
//!   mapped ring;
//! - [`wait`]: how an end waits (spin, yield, park);
//! - [`publish`] ([`Publisher`]) and [`subscribe`] ([`Subscriber`], stages
//!   and the dependency barrier): the ring ends;
//! - [`info`]: what `ringcast info` reports.
//!
//! Latency histograms, interval logs and the load generator behind
//! `ringcast bench` are the crate `ringcast-latency`, which sees each
//! message through a [`ReceiveObserver`]: the core has no histogram
//! dependency.

pub mod protocol;
mod sync;

#[cfg(not(loom))]
mod error;
#[cfg(not(loom))]
pub mod format;
#[cfg(not(loom))]
pub mod info;
#[cfg(not(loom))]
pub mod memory;
#[cfg(not(loom))]
pub mod publish;
#[cfg(not(loom))]
pub mod shm;
#[cfg(not(loom))]
pub mod subscribe;
#[cfg(not(loom))]
pub mod sys;
#[cfg(not(loom))]
pub mod wait;

#[cfg(not(loom))]
pub use error::{
    ArgumentError, Error, OpenError, PlacementError, PublishError, RecvError, Result, RingFault,
};
#[cfg(not(loom))]
pub use format::layout::Layout;
#[cfg(not(loom))]
pub use memory::{EndMemory, MemoryOptions, MemoryReport};
#[cfg(not(loom))]
pub use publish::{CreateOptions, Patience, Producers, Publisher, PublisherBuilder};
#[cfg(not(loom))]
pub use shm::backing::{Placement, RingIdentity};
#[cfg(not(loom))]
pub use shm::hugepages::HugePages;
#[cfg(not(loom))]
pub use shm::ring::PublisherStatus;
#[cfg(not(loom))]
pub use subscribe::{
    wait_any, AnyEnd, FirstMessage, ReceiveObserver, StageOptions, Start, Subscriber,
    SubscriberBuilder, WaitEnd, WaitHandle,
};
#[cfg(not(loom))]
pub use wait::{WaitStrategy, Waiter};
