//! A subscriber: one reader of a ring, in any process.
//!
//! Subscribers never write to slots. Each one claims a record in the ring's
//! subscriber table (released on drop, reclaimed from dead processes) and
//! mirrors its position and counters there, so that monitoring tools see
//! every reader's lag and loss. On lossy rings that is all: a subscriber never
//! blocks the publisher (though a spinning reader does cost it cache-line
//! transfers). On bounded rings the position gates the publishers, so it is
//! stored with release ordering after every read and parked publishers are
//! woken; a subscriber that stops reading for the ring's liveness limit is
//! evicted and told so on its next read.

mod attach;
mod builder;
pub mod group;
mod observe;
mod read;
pub(crate) mod readiness;
mod wait;

pub use builder::SubscriberBuilder;
pub use observe::ReceiveObserver;
pub mod stage;

pub(crate) use wait::DeathWatch;
pub use wait::{wait_any, AnyEnd, WaitEnd, WaitHandle};

use self::stage::Dependencies;
use crate::error::{RecvError, Result, RingFault};
use crate::format::layout::{Layout, SubscriberRecord, RECORD_EVICTED};
use crate::format::stage_name::StageName;
use crate::memory::{EndMemory, MemoryReport};
use crate::protocol::{ReaderPosition, Slots};
use crate::shm::ring::PublisherStatus;
use crate::shm::ring::{RingMap, StuckWatch};
use crate::subscribe::readiness::ReadinessFd;
use crate::wait::WaitStrategy;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Whether a subscriber record's state word says its subscriber was evicted.
#[inline]
fn is_evicted(state: &AtomicU32) -> bool {
    state.load(Ordering::Relaxed) == RECORD_EVICTED
}

/// The error for a subscriber evicted from a bounded ring, if it was.
fn evicted(ring: &RingMap, record: usize, position: u64) -> Result<(), RecvError> {
    if ring.layout().bounded() && is_evicted(&ring.record(record).state) {
        return Err(RecvError::Evicted {
            name: ring.name().to_owned(),
            position,
        });
    }
    Ok(())
}

/// Where a durable consumer that has no place yet starts (a recorder's new
/// journal, a bridge sender's new stage); once it has a place, it resumes
/// there instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstMessage {
    /// With the oldest message still in the ring.
    #[default]
    Oldest,
    /// With the next message published.
    Latest,
}

impl From<FirstMessage> for Start {
    fn from(first: FirstMessage) -> Start {
        match first {
            FirstMessage::Oldest => Start::Oldest,
            FirstMessage::Latest => Start::Latest,
        }
    }
}

/// Where a new subscriber starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// With the next message published after attaching.
    Latest,
    /// With the oldest message still in the ring.
    Oldest,
    /// At this sequence number (messages already overwritten count as lost).
    At(u64),
    /// Stages: where the last subscriber with this stage name stopped
    /// processing, as its record remembers; else with the oldest message.
    Resume,
}

/// A subscriber's part in a topology of stages (see [`crate::subscribe::stage`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageOptions {
    /// Name this subscriber as a stage of the ring: its processing progress
    /// is published for subscribers gated after it. Unique per ring.
    pub name: Option<String>,
    /// Read a message only once every stage named here has processed it.
    pub after: Vec<String>,
    /// A durable stage (a recorder, say) releases a bounded ring's slots
    /// only as it *processes* messages (commits), not as it reads them, and
    /// if it dies the ring keeps its place for the liveness timeout instead
    /// of releasing it at once: restarted within that time under the same
    /// name, it takes its record back and nothing it had not processed was
    /// overwritten. Needs a stage name.
    pub durable: bool,
}

/// One reader of a ring.
pub struct Subscriber {
    ring: Arc<RingMap>,
    pos: ReaderPosition,
    record: usize,
    /// Created on first use by event-loop integrations.
    readiness: Option<ReadinessFd>,
    /// Process that attached: a forked child must not free the parent's record.
    owner_pid: u32,
    /// Bounded ring: the position gates publishers.
    bounded: bool,
    /// This process takes part in the asymmetric barrier (bounded rings:
    /// readers are the fast side of the space handshake).
    membarrier_registered: bool,
    /// Multi-producer rings: recovery of slots whose producer died.
    stuck: StuckWatch,
    /// What this subscriber did to its thread and mapping.
    end_memory: EndMemory,
    /// Told the publish and receive time of every message read (rings with
    /// timestamps), when set (see [`observe`]).
    observer: Option<Box<dyn ReceiveObserver>>,
    /// Stages: the name, and the progress last published.
    stage: Option<(StageName, u64)>,
    /// A durable stage: the record's position (what bounded publishers
    /// wait for) is the committed progress, not the read position.
    durable: bool,
    /// Gated subscribers: the upstream stages, and the position the gate
    /// last held us at (mirrored as the record's `gate_wait`).
    deps: Option<Dependencies>,
    gate_wait: u64,
    /// This process takes part in the asymmetric barrier as the fast side
    /// of waking gated readers after a commit.
    commit_membarrier: bool,
    /// Where and since when the next slot has claimed a lap beyond the
    /// cursor (see [`Subscriber::unverified_lap`]).
    unverified: Option<(u64, Instant)>,
    /// Which publisher deaths were reported.
    death: Arc<DeathWatch>,
    /// Given up by [`Subscriber::abandon`]: dropped without committing or
    /// releasing its record.
    abandoned: bool,
}

impl Subscriber {
    fn record(&self) -> &SubscriberRecord {
        self.ring.record(self.record)
    }

    /// Fails if this subscriber can no longer be used: its ring file shrank
    /// under it ([`RingFault::Corrupt`]), or this process is a fork() child of
    /// the one that attached it ([`RingFault::UsedAfterFork`]). Receiving finds
    /// this out by itself; this is for everything else.
    pub fn check_usable(&self) -> Result<(), RingFault> {
        self.ring.usable()
    }

    /// Sequence of the next message this subscriber will read.
    pub fn position(&self) -> u64 {
        self.pos.next
    }

    /// Sequence this subscriber started at.
    pub fn start(&self) -> u64 {
        self.pos.start
    }

    /// Messages delivered so far.
    pub fn received(&self) -> u64 {
        self.pos.received
    }

    /// Whether this subscriber was evicted from its bounded ring.
    pub fn evicted(&self) -> bool {
        evicted(&self.ring, self.record, self.pos.next).is_err()
    }

    /// Messages skipped because the publisher lapped this subscriber, or
    /// because their producer died before committing them.
    pub fn lost(&self) -> u64 {
        self.pos.lost
    }

    /// The sequence the next message published will carry.
    pub fn cursor(&self) -> u64 {
        self.ring.cursor().load(Ordering::Acquire)
    }

    /// Messages published but not yet read (may exceed capacity when lapped).
    pub fn lag(&self) -> u64 {
        self.ring
            .cursor()
            .load(Ordering::Acquire)
            .saturating_sub(self.pos.next)
    }

    /// What the ring header says about the publisher.
    pub fn publisher_status(&self) -> PublisherStatus {
        self.ring.publisher_status()
    }

    /// Where the ring's memory is and what this subscriber did to it (locked,
    /// prefaulted, pinned), with the NUMA node of a sample of its pages.
    pub fn memory(&self) -> MemoryReport {
        crate::memory::report(&self.ring, self.end_memory, None)
    }

    /// The ring's layout (capacity, slot size, schema).
    pub fn layout(&self) -> &Layout {
        self.ring.layout()
    }

    /// Path of the ring file.
    pub fn path(&self) -> &Path {
        self.ring.path()
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        self.ring.name()
    }

    /// This subscriber's stage name, if it is a stage.
    pub fn stage(&self) -> Option<String> {
        self.stage.as_ref().map(|(name, _)| name.as_string())
    }

    /// Stages: messages processed as published to gated readers (every
    /// sequence below it). 0 for subscribers that are not stages.
    pub fn processed(&self) -> u64 {
        self.stage.as_ref().map_or(0, |(_, committed)| *committed)
    }

    /// Records in this subscriber's record how it waits for messages, for
    /// monitoring (`ringcast info`, `ringcast stat`): the strategy is handed
    /// to each receive, so the caller declares the one it uses, when it
    /// attaches and whenever it changes. Not declared, it shows as unknown.
    /// Costs one store; receiving never touches the word.
    /// A fork() child's copy declares nothing (the record is the parent's).
    pub fn declare_wait(&self, strategy: WaitStrategy) {
        if std::process::id() != self.owner_pid {
            return;
        }
        self.record()
            .wait
            .store(strategy.record_code(), Ordering::Relaxed);
    }

    /// The stages this subscriber is gated after, in the order given.
    pub fn after(&self) -> Vec<String> {
        self.deps
            .as_ref()
            .map(Dependencies::names)
            .unwrap_or_default()
    }

    /// Gives this subscriber up as if its process had died here: nothing read
    /// since the last commit is committed, and its record is not released.
    /// A durable stage thus keeps its place on a bounded ring for its
    /// successor (in this process or another), and is evicted after the
    /// liveness timeout if none comes (it no longer moves). For a recorder
    /// that failed to write what it had read: dropping it would commit that.
    pub fn abandon(mut self) {
        self.readiness = None;
        self.abandoned = true;
    }

    /// Each upstream stage with its published progress (`None`: no record
    /// of the ring carries its name, which holds this subscriber back).
    pub fn upstream(&self) -> Vec<(String, Option<u64>)> {
        self.deps
            .as_ref()
            .map(|g| g.progress(&self.ring))
            .unwrap_or_default()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if std::process::id() != self.owner_pid {
            // A forked child's copy: the record (and any readiness thread,
            // which does not exist in the child) belong to the parent.
            if let Some(r) = self.readiness.take() {
                r.abandon();
            }
            return;
        }
        if self.abandoned {
            return;
        }
        // Stop the readiness thread before the record is given up.
        self.readiness = None;
        self.commit();
        self.mirror();
        self.ring.release_record(self.record);
        if self.bounded {
            // A publisher blocked on us may go on now.
            self.ring.wake_space_waiters(self.membarrier_registered);
        }
    }
}
