//! The atomics the ring protocol is written against.
//!
//! Under `--cfg loom` the protocol modules (`stamp`, `copy`, `protocol`) are
//! compiled against loom's model-checked atomics so that loom can explore every
//! interleaving and weak-memory outcome of the publish/read protocol. Everything
//! that touches real shared memory is compiled out in that configuration.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU64};

pub(crate) use std::sync::atomic::Ordering;
