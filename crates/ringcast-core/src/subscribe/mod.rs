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

mod builder;
pub mod group;
pub(crate) mod readiness;

pub use builder::SubscriberBuilder;
pub mod stage;

use self::stage::Gate;
use crate::error::{Error, Result};
use crate::format::layout::{Layout, SubscriberRecord, RECORD_ACTIVE, RECORD_EVICTED};
use crate::format::stage_name::{self as stage_name, StageName};
use crate::latency::{LatencyRecorder, RecorderConfig};
use crate::memory::{EndMemory, MemoryOptions, MemoryReport};
use crate::protocol::stamp::MAX_SEQ;
use crate::protocol::{self, ReadFault, ReaderPosition, Slots};
use crate::shm::ring::PublisherStatus;
use crate::shm::ring::{unix_now_ns, RingMap, StuckWatch};
use crate::subscribe::readiness::ReadinessFd;
use crate::sys::clock;
use crate::wait::{Step, Waiter};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
}

/// How a wait ended (other than by the end of the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEnd {
    /// A message can be read (or a lap detected).
    Ready,
    /// The deadline passed.
    Deadline,
    /// The between-slices callback asked to stop.
    Stopped,
}

/// What a subscriber has told its user about the death of its publisher:
/// each publisher's death (a generation of the ring's publisher side) is
/// reported once, by the first blocking wait that finds it; waits after that
/// go on waiting, for a publisher that takes the ring over. Shared with
/// wait handles and the readiness thread.
#[derive(Debug, Default)]
pub(crate) struct DeathWatch {
    /// The generation whose death was reported, plus one; 0: none.
    reported: AtomicU64,
}

impl DeathWatch {
    /// The publisher side of `ring` is dead and that has not been reported
    /// yet: `(pid, generation)`. Costs a lock test (a syscall per producer
    /// record on multi-producer rings): call it from slow paths only.
    pub(crate) fn unreported(&self, ring: &RingMap) -> Option<(u32, u64)> {
        let (pid, generation) = ring.publisher_death()?;
        (self.reported.load(Ordering::Acquire) != generation + 1).then_some((pid, generation))
    }

    /// The error reporting a death found by [`DeathWatch::unreported`],
    /// which counts as reported from now on.
    pub(crate) fn report(&self, ring: &RingMap, pid: u32, generation: u64) -> Error {
        self.reported.store(generation + 1, Ordering::Release);
        Error::PublisherDied {
            name: ring.name().to_owned(),
            pid,
        }
    }
}

/// How long a blocking wait runs before it first asks whether the publisher
/// died (a lock test), and how often after that: never in the way of a
/// message that arrives within the first millisecond.
const DEATH_CHECK_AFTER: Duration = Duration::from_millis(1);
const DEATH_CHECK_EVERY: Duration = Duration::from_millis(50);

/// Most dead producers' slots one read recovers before returning (see
/// [`StuckWatch`]); the next read goes on.
const MAX_RECOVERIES_PER_READ: u32 = 4096;

/// How long a slot may claim a lap beyond the cursor while being written
/// before the ring is taken for damaged (see
/// [`protocol::ReadFault::Unverified`]): stores become visible to other
/// CPUs in nanoseconds.
const UNVERIFIED_GRACE: Duration = Duration::from_millis(10);

/// The error for a subscriber evicted from a bounded ring, if it was.
fn evicted(ring: &RingMap, record: usize, position: u64) -> Result<()> {
    if ring.layout().bounded()
        && ring.record(record).state.load(Ordering::Relaxed) == RECORD_EVICTED
    {
        return Err(Error::Evicted {
            name: ring.name().to_owned(),
            position,
        });
    }
    Ok(())
}

/// A subscriber's position on its ring, for waiting without the subscriber.
#[derive(Clone)]
pub struct WaitHandle {
    ring: Arc<RingMap>,
    record: usize,
    position: u64,
    gate: Option<Gate>,
    death: Arc<DeathWatch>,
}

/// How a wait on several subscribers ended (see [`wait_any`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyEnd {
    /// The handle at this index can be read (or a lap detected), or its
    /// stream ended.
    Ready(usize),
    /// The deadline passed.
    Deadline,
    /// The between-slices callback asked to stop.
    Stopped,
}

impl WaitHandle {
    /// Waits until the message at the handle's position can be read,
    /// following `waiter`'s strategy, until `deadline`. With `slice`, calls
    /// `between` every `slice` of waiting and stops when it returns `false`
    /// (bindings use this to run signal handlers). A parked waiter stays
    /// registered across slices. Fails with [`Error::Closed`] once the
    /// publisher has closed the ring and everything has been read, and with
    /// [`Error::PublisherDied`] (once per publisher) when it died instead.
    pub fn wait(
        &self,
        deadline: Option<Instant>,
        waiter: &mut Waiter,
        slice: Option<Duration>,
        between: impl FnMut() -> bool,
    ) -> Result<WaitEnd> {
        match wait_any(std::slice::from_ref(self), deadline, waiter, slice, between) {
            Ok(AnyEnd::Ready(_)) if self.readable() => Ok(WaitEnd::Ready),
            Ok(AnyEnd::Ready(_)) => Err(Error::Closed {
                name: self.ring.name().to_owned(),
            }),
            Ok(AnyEnd::Deadline) => Ok(WaitEnd::Deadline),
            Ok(AnyEnd::Stopped) => Ok(WaitEnd::Stopped),
            Err((_, e)) => Err(e),
        }
    }

    /// The message at the handle's position can be read (or a lap detected).
    fn readable(&self) -> bool {
        stage::readable(&self.ring, self.gate.as_ref(), self.position)
    }

    /// Nothing more to wait for: a message, or the end of the stream.
    fn settled(&self) -> bool {
        self.readable() || self.ring.ended_at(self.position)
    }

    /// What makes waiting on this handle pointless other than a message:
    /// its mapping was revoked, it was evicted, or (looked at only when
    /// `deaths`) its publisher died and nothing is left to read.
    fn trouble(&self, deaths: bool) -> Result<()> {
        self.ring.usable()?;
        evicted(&self.ring, self.record, self.position)?;
        if deaths {
            if let Some((pid, generation)) = self.death.unreported(&self.ring) {
                if !self.readable() {
                    return Err(self.death.report(&self.ring, pid, generation));
                }
            }
        }
        Ok(())
    }
}

/// [`WaitHandle::wait`] on several handles at once (of one ring or of
/// several): until one of them can be read or its stream ended, the
/// deadline passes, or `between` (called every `slice`) says stop. Spins
/// and yields over all of them as `waiter` says, then parks on every ring
/// at once. A handle that cannot be waited on (see [`WaitHandle::wait`]:
/// revoked, evicted, its publisher's death reported now) ends the wait with
/// its index and the error.
pub fn wait_any(
    handles: &[WaitHandle],
    deadline: Option<Instant>,
    waiter: &mut Waiter,
    slice: Option<Duration>,
    mut between: impl FnMut() -> bool,
) -> std::result::Result<AnyEnd, (usize, Error)> {
    let mut parked = Vec::new();
    let mut slice_end = slice.map(|s| Instant::now() + s);
    let mut polls = 0u32;
    let mut stuck = vec![StuckWatch::new(); handles.len()];
    // Multi-producer rings: wake up in time to check a stuck slot.
    let claim_deadline = handles
        .iter()
        .filter(|h| h.ring.layout().multi_producer())
        .map(|h| h.ring.claim_deadline())
        .min();
    let settled = || handles.iter().position(WaitHandle::settled);
    let mut death_check = Instant::now() + DEATH_CHECK_AFTER;
    loop {
        if let Some(i) = settled() {
            waiter.reset();
            return Ok(AnyEnd::Ready(i));
        }
        let step = waiter.next_step();
        // Reading the clock costs more than a poll: spinners look every 64.
        if step != Step::Spin || polls % 64 == 0 {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(AnyEnd::Deadline);
            }
            let deaths = now >= death_check;
            if deaths {
                death_check = now + DEATH_CHECK_EVERY;
            }
            for (i, h) in handles.iter().enumerate() {
                h.trouble(deaths).map_err(|e| (i, e))?;
            }
            let mut recovered = false;
            for (h, watch) in handles.iter().zip(&mut stuck) {
                recovered |= watch.nothing_at(&h.ring, h.position, Some(now));
            }
            if recovered {
                continue;
            }
            if let (Some(end), Some(s)) = (slice_end, slice) {
                if now >= end {
                    if !between() {
                        return Ok(AnyEnd::Stopped);
                    }
                    slice_end = Some(Instant::now() + s);
                }
            }
        }
        polls = polls.wrapping_add(1);
        match step {
            Step::Spin => std::hint::spin_loop(),
            Step::Yield => std::thread::yield_now(),
            Step::Park => {
                let recheck = claim_deadline.map(|d| Instant::now() + d);
                let until = [deadline, slice_end, recheck].into_iter().flatten().min();
                if parked.is_empty() {
                    parked = handles
                        .iter()
                        .map(|h| h.ring.register_parked(h.record))
                        .collect();
                }
                crate::shm::ring::sleep_any(&parked, until, || settled().is_some());
            }
        }
    }
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
    barrier_registered: bool,
    /// Multi-producer rings: recovery of slots whose producer died.
    stuck: StuckWatch,
    /// What this subscriber did to its thread and mapping.
    end_memory: EndMemory,
    /// Records `now - publish time` of every message read (rings with
    /// timestamps), when asked to.
    recorder: Option<Box<LatencyRecorder>>,
    /// Stages: the name, and the progress last published.
    stage: Option<(StageName, u64)>,
    /// Gated subscribers: the upstream stages, and the position the gate
    /// last held us at (mirrored as the record's `gate_wait`).
    gate: Option<Gate>,
    gate_wait: u64,
    /// This process takes part in the asymmetric barrier as the fast side
    /// of waking gated readers after a commit.
    commit_barrier: bool,
    /// Where and since when the next slot has claimed a lap beyond the
    /// cursor (see [`Subscriber::unverified_lap`]).
    unverified: Option<(u64, Instant)>,
    /// Which publisher deaths were reported.
    death: Arc<DeathWatch>,
}

impl Subscriber {
    /// Attaches to ring `name`; layout and schema come from the ring header.
    pub fn attach(name: &str, dir: Option<&Path>, start: Start) -> Result<Self> {
        Self::attach_with(name, dir, start, &MemoryOptions::default())
    }

    /// [`Subscriber::attach`], pinning the calling thread, locking and
    /// prefaulting the mapping as `memory` says.
    pub fn attach_with(
        name: &str,
        dir: Option<&Path>,
        start: Start,
        memory: &MemoryOptions,
    ) -> Result<Self> {
        Self::attach_stage(name, dir, start, memory, &StageOptions::default())
    }

    /// [`Subscriber::attach_with`] as a stage and/or gated after stages, as
    /// `stage` says (see [`crate::subscribe::stage`]).
    pub fn attach_stage(
        name: &str,
        dir: Option<&Path>,
        start: Start,
        memory: &MemoryOptions,
        stage: &StageOptions,
    ) -> Result<Self> {
        let own = stage.name.as_deref().map(StageName::new).transpose()?;
        let after = Gate::check_names(&stage.after, own.as_ref())?;
        if start == Start::Resume && own.is_none() {
            return Err(Error::InvalidArgument(
                "start=\"resume\" resumes a named stage; give the subscriber a stage name".into(),
            ));
        }
        crate::memory::pinned(memory, || {
            Self::attach_pinned(name, dir, start, memory, own, after)
        })
    }

    /// [`Subscriber::attach_stage`] once the thread is pinned.
    fn attach_pinned(
        name: &str,
        dir: Option<&Path>,
        start: Start,
        memory: &MemoryOptions,
        own: Option<StageName>,
        after: Vec<StageName>,
    ) -> Result<Self> {
        let file = crate::shm::backing::open_named(name, dir)?;
        let path = file.path.clone();
        let ring = Arc::new(RingMap::open(file, name)?);
        let end_memory = crate::memory::settle(&ring, memory)?;
        if let Start::At(seq) = start {
            if seq > MAX_SEQ {
                return Err(Error::InvalidArgument(format!(
                    "start sequence {seq} is beyond the largest sequence a ring can reach ({MAX_SEQ})"
                )));
            }
        }
        let cursor = ring.cursor().load(Ordering::Acquire);
        if cursor > MAX_SEQ {
            return Err(Error::corrupt(
                &path,
                format!("its cursor {cursor} is beyond any possible sequence"),
            ));
        }
        // Records of dead processes first: they may hold parked counts that
        // make the publisher wake nobody on every publish.
        ring.release_dead_records(None);
        // TLA+ (BoundedRing): Attach (the cursor above), then JoinStep:
        // claim, first mirror, ACTIVE, epoch bump, Latest re-read.
        let (record, remembered) = ring.claim_record(own.as_ref())?;
        let oldest = cursor.saturating_sub(ring.capacity());
        let first = match start {
            Start::Latest => cursor,
            Start::Oldest => oldest,
            Start::At(seq) => seq,
            Start::Resume if remembered => ring.record(record).processed.load(Ordering::Acquire),
            Start::Resume => oldest,
        };
        let bounded = ring.layout().bounded();
        let sub = Self {
            ring,
            pos: ReaderPosition::starting_at(first),
            record,
            readiness: None,
            owner_pid: std::process::id(),
            bounded,
            barrier_registered: bounded && crate::sys::membarrier::publisher_registered(),
            stuck: StuckWatch::new(),
            end_memory,
            recorder: None,
            stage: own.map(|name| (name, first)),
            gate: (!after.is_empty()).then(|| Gate::new(after)),
            gate_wait: 0,
            unverified: None,
            death: Arc::default(),
            commit_barrier: own.is_some() && crate::sys::membarrier::publisher_registered(),
        };
        if let Some((name, _)) = &sub.stage {
            sub.claim_stage_name(name, remembered)?;
        }
        let rec = sub.record();
        rec.memory.store(end_memory.encode(), Ordering::Relaxed);
        rec.start.store(first, Ordering::Relaxed);
        rec.attached_unix_ns.store(unix_now_ns(), Ordering::Relaxed);
        sub.mirror();
        // Gate from now on: publishers look at the epoch at least every
        // `watermark` messages and rescan when it moved. After the membarrier
        // each publisher either sees the new epoch before its next stretch of
        // writes, or began that stretch at a sequence no later than the
        // cursor we read below; a stretch starting at `f` overwrites only
        // messages before `f`. So with `Latest` we start at that cursor and
        // lose nothing; an older start may find early messages overwritten
        // meanwhile, which are counted as lost.
        rec.state.store(RECORD_ACTIVE, Ordering::Release);
        let mut sub = sub;
        if bounded {
            let gates = &sub.ring.header().gates.0;
            gates.epoch.fetch_add(1, Ordering::SeqCst);
            crate::sys::membarrier::reader_side();
            if start == Start::Latest {
                let now = sub.ring.cursor().load(Ordering::Acquire).max(first);
                sub.pos = ReaderPosition::starting_at(now);
                sub.record().start.store(now, Ordering::Relaxed);
                sub.mirror();
                sub.commit();
            }
        }
        Ok(sub)
    }

    fn record(&self) -> &SubscriberRecord {
        self.ring.record(self.record)
    }

    /// Publishes this stage's name and starting progress in its record; a
    /// stage that lost a race with a same-named stage attaching at the same
    /// moment (the lower record wins) gets [`Error::StageExists`].
    fn claim_stage_name(&self, name: &StageName, remembered: bool) -> Result<()> {
        let rec = self.record();
        // Progress first, then the name (see `stage_name::forget`).
        protocol::commit_progress(&rec.processed, self.pos.next);
        if !remembered {
            name.write_to(rec);
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        let rival = (0..self.record)
            .find(|&i| name.held_by(self.ring.record(i)) && self.ring.record_owner_alive(i));
        if let Some(i) = rival {
            stage_name::forget(self.record(), 0);
            return Err(self.ring.stage_taken(name, i));
        }
        Ok(())
    }

    /// Stages: publishes that every message read so far is processed, so
    /// that subscribers gated after this stage may read them. Every receive
    /// and wait does this first (a message counts as processed once the
    /// stage asks for the next one); call it directly to release messages
    /// earlier. A no-op for subscribers that are not stages.
    #[inline]
    pub fn commit(&mut self) {
        let next = self.pos.next;
        if let Some((_, committed)) = &mut self.stage {
            if *committed != next {
                *committed = next;
                // Release: the work on every message below `next` happens
                // before a gated reader that sees this reads them.
                protocol::commit_progress(&self.ring.record(self.record).processed, next);
                self.ring.wake_parked(self.commit_barrier);
            }
        }
    }

    /// Copies position and counters into the shared subscriber record. On
    /// bounded rings this hands the slots read back to the publishers.
    /// TLA+ (BoundedRing): `Mirror`.
    #[inline]
    fn mirror(&self) {
        let rec = self.record();
        rec.received.store(self.pos.received, Ordering::Relaxed);
        rec.lost.store(self.pos.lost, Ordering::Relaxed);
        // Release: every copy out of the slots below `next` happens before a
        // publisher that sees this position overwrites them.
        rec.position.store(self.pos.next, Ordering::Release);
        if self.bounded {
            self.ring.wake_space_waiters(self.barrier_registered);
        }
    }

    /// Reads the next message into `out` without waiting; `None` when caught up.
    #[inline]
    pub fn try_recv(&mut self, out: &mut [u8]) -> Result<Option<usize>> {
        self.commit();
        let got = self.read_one(out)?;
        if got.is_some() {
            self.mirror();
            self.record_latency_now(&mut 0);
        }
        Ok(got)
    }

    /// Records the latency of the message just read, if recording; `now` is
    /// the receive time, read from the clock if still 0 (so that a batch
    /// reads the clock once).
    #[inline]
    fn record_latency_now(&mut self, now: &mut u64) {
        if let Some(recorder) = &mut self.recorder {
            if *now == 0 {
                *now = clock::now_ns();
            }
            recorder.record_since(self.pos.time, *now);
        }
    }

    /// Publish time (ns on [`crate::sys::clock`]) of the last message read; `None`
    /// on rings without timestamps or before the first message.
    pub fn time(&self) -> Option<u64> {
        (self.ring.layout().timestamps() && self.pos.received > 0).then_some(self.pos.time)
    }

    /// Starts recording the latency (receive time minus publish time) of
    /// every message read from now on into a [`LatencyRecorder`] of shape
    /// `config`, replacing any recorder; `None` stops recording. Batches
    /// read the clock once, when their first message is read. Fails on rings
    /// without timestamps.
    pub fn record_latency(&mut self, config: Option<RecorderConfig>) -> Result<()> {
        let Some(config) = config else {
            self.recorder = None;
            return Ok(());
        };
        if !self.ring.layout().timestamps() {
            return Err(Error::InvalidArgument(format!(
                "ring '{}' carries no publish times, so latency cannot be recorded; \
                 create it with timestamps enabled",
                self.ring.name()
            )));
        }
        self.recorder = Some(Box::new(LatencyRecorder::new(config)?));
        Ok(())
    }

    /// The latency recorder, while recording.
    pub fn recorder(&self) -> Option<&LatencyRecorder> {
        self.recorder.as_deref()
    }

    /// The latency recorder, to take intervals from or reset.
    pub fn recorder_mut(&mut self) -> Option<&mut LatencyRecorder> {
        self.recorder.as_deref_mut()
    }

    #[inline]
    fn read_one(&mut self, out: &mut [u8]) -> Result<Option<usize>> {
        if self.bounded {
            // TLA+ (BoundedRing): Read, "told evicted before it reads".
            evicted(&self.ring, self.record, self.pos.next)?;
        }
        let mut limit = u64::MAX;
        if let Some(gate) = &self.gate {
            limit = gate.limit(&self.ring, self.pos.next);
            if limit <= self.pos.next {
                self.note_gate_wait();
                return Ok(None);
            }
        }
        self.read_below(out, limit)
    }

    /// One read below `limit`; what a damaged slot or a stuck one means is
    /// sorted out off the message path.
    #[inline]
    fn read_below(&mut self, out: &mut [u8], limit: u64) -> Result<Option<usize>> {
        match self.step(out, limit) {
            Ok(Some(len)) => Ok(Some(len)),
            Ok(None) => self.nothing_to_read(out, limit),
            Err(fault) => self.fault(fault, out.len()),
        }
    }

    /// One protocol read below `limit`; slots skipped (lost) are handed back
    /// in the record at once.
    #[inline]
    fn step(
        &mut self,
        out: &mut [u8],
        limit: u64,
    ) -> std::result::Result<Option<usize>, ReadFault> {
        let before = self.pos.lost;
        let got = protocol::try_read_below(&*self.ring, &mut self.pos, out, limit);
        if self.pos.lost != before {
            self.mirror();
        }
        got
    }

    /// Nothing to read at this subscriber's position. A revoked mapping (see
    /// [`crate::shm::guard`]) reads as zeros, so a zero magic number is the hint
    /// to ask why (a live ring's header always holds the magic).
    #[inline]
    fn nothing_to_read(&mut self, out: &mut [u8], limit: u64) -> Result<Option<usize>> {
        if self.ring.layout().multi_producer() {
            return self.recover(out, limit);
        }
        if self.ring.header().magic.load(Ordering::Relaxed) == 0 {
            self.ring.usable()?;
        }
        Ok(None)
    }

    /// Multi-producer rings, nothing to read: recover the slots of dead
    /// producers (TLA+ MpmcRing: ReaderRecovers, after the claim deadline
    /// or at once while the mapping is hot), a bounded number per call so
    /// that a call returns promptly whatever the ring holds.
    #[cold]
    fn recover(&mut self, out: &mut [u8], limit: u64) -> Result<Option<usize>> {
        for _ in 0..MAX_RECOVERIES_PER_READ {
            if !self.stuck.nothing_at(&self.ring, self.pos.next, None) {
                break;
            }
            match self.step(out, limit) {
                Ok(Some(len)) => return Ok(Some(len)),
                Ok(None) => {}
                Err(fault) => return self.fault(fault, out.len()),
            }
        }
        self.ring.usable()?;
        Ok(None)
    }

    /// What a read fault means for the caller (`len`: its buffer's size).
    #[cold]
    fn fault(&mut self, fault: ReadFault, len: usize) -> Result<Option<usize>> {
        match fault {
            ReadFault::TooSmall(needed) => Err(Error::BufferTooSmall { len, needed }),
            ReadFault::BadLength(claimed) => Err(self.damage(format!(
                "the slot of message {} claims {claimed} bytes in a ring of {}{}-byte messages",
                self.pos.next,
                if self.ring.layout().fixed_size() {
                    ""
                } else {
                    "up to "
                },
                self.ring.slot_size()
            ))),
            ReadFault::Damaged { claims, cursor } => Err(self.damaged_stamp(claims, cursor)),
            ReadFault::Unverified { claims, cursor } => self.unverified_lap(claims, cursor),
        }
    }

    /// The error for damaged ring memory found at this subscriber's position.
    #[cold]
    fn damage(&self, detail: String) -> Error {
        Error::corrupt(self.ring.path(), detail)
    }

    /// The error for a slot stamp that the protocol cannot have written.
    #[cold]
    fn damaged_stamp(&self, claims: u64, cursor: u64) -> Error {
        let position = self.pos.next;
        let detail = if cursor > MAX_SEQ {
            format!("its cursor {cursor} is beyond any possible sequence")
        } else if claims == position {
            format!(
                "the slot of message {position} says it was declared lost, but only {cursor} \
                 messages were published"
            )
        } else if claims == u64::MAX || claims < position {
            format!("the stamp of the slot of message {position} went backwards")
        } else if claims % self.ring.capacity() != position % self.ring.capacity() {
            format!(
                "the slot of message {position} claims message {claims}, which belongs to \
                 another slot"
            )
        } else {
            format!(
                "the slot of message {position} claims message {claims}, beyond the \
                 {cursor} messages published"
            )
        };
        self.damage(detail)
    }

    /// A slot being written with a lap the cursor does not cover yet: not
    /// yet (a single producer's odd stamp may be seen before its cursor),
    /// or damage once it has persisted for [`UNVERIFIED_GRACE`].
    #[cold]
    fn unverified_lap(&mut self, claims: u64, cursor: u64) -> Result<Option<usize>> {
        let now = Instant::now();
        let position = self.pos.next;
        match self.unverified {
            Some((at, since)) if at == position => {
                if now.saturating_duration_since(since) >= UNVERIFIED_GRACE {
                    return Err(self.damage(format!(
                        "the slot of message {position} has claimed to be written with message \
                         {claims}, beyond the {cursor} messages published, for {} ms",
                        UNVERIFIED_GRACE.as_millis()
                    )));
                }
            }
            _ => self.unverified = Some((position, now)),
        }
        Ok(None)
    }

    /// Tells blocked publishers (through the record) that the gate, not this
    /// subscriber, holds it at its position: it is not stalled.
    #[cold]
    fn note_gate_wait(&mut self) {
        let wait = self.pos.next + 1;
        if self.gate_wait != wait {
            self.gate_wait = wait;
            self.record().gate_wait.store(wait, Ordering::Relaxed);
        }
    }

    /// Reads up to `max` messages without waiting, message `i` into
    /// `out[i*row .. (i+1)*row]`, and reports each one's length to `lengths`.
    /// Returns how many were read. A fault (a message longer than `row`, a
    /// damaged slot) ends the batch early and is raised only when it concerns
    /// the batch's first message, so no delivered message is ever lost to an
    /// error; nothing is consumed for the faulty message.
    pub fn try_recv_rows(
        &mut self,
        out: &mut [u8],
        row: usize,
        max: usize,
        mut lengths: impl FnMut(usize, usize),
    ) -> Result<usize> {
        self.read_rows(out, row, max, |i, len, _| lengths(i, len))
    }

    /// [`Subscriber::try_recv_rows`] of up to `seqs.len()` messages that
    /// also stores the ring sequence of message `i` in `seqs[i]`. Messages
    /// may be lost between any two rows (a lap, or the slots of a dead
    /// producer, skipped mid-batch): the sequences say exactly where.
    pub fn try_recv_rows_seq(
        &mut self,
        out: &mut [u8],
        row: usize,
        seqs: &mut [u64],
        mut lengths: impl FnMut(usize, usize),
    ) -> Result<usize> {
        let max = seqs.len();
        self.read_rows(out, row, max, |i, len, seq| {
            seqs[i] = seq;
            lengths(i, len);
        })
    }

    /// The batch read behind [`Subscriber::try_recv_rows`]: `delivered(i,
    /// len, seq)` for every row.
    #[inline]
    fn read_rows(
        &mut self,
        out: &mut [u8],
        row: usize,
        max: usize,
        mut delivered: impl FnMut(usize, usize, u64),
    ) -> Result<usize> {
        if row == 0 {
            return Err(Error::InvalidArgument(
                "rows of 0 bytes cannot hold messages".into(),
            ));
        }
        self.commit();
        let mut n = 0;
        let mut fault = None;
        let mut now = 0;
        for chunk in out.chunks_exact_mut(row).take(max) {
            match self.read_one(chunk) {
                Ok(Some(len)) => {
                    self.record_latency_now(&mut now);
                    // A read delivers the message at the position it leaves
                    // behind: skips happen before it, never after.
                    delivered(n, len, self.pos.next - 1);
                    n += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    fault = Some(e);
                    break;
                }
            }
        }
        if n > 0 {
            self.mirror();
        }
        match fault {
            Some(e) if n == 0 => Err(e),
            _ => Ok(n),
        }
    }

    /// Waits for a message until `deadline` (`None`: forever), following
    /// `waiter`'s strategy. Fails with [`Error::Timeout`] at the deadline and
    /// with [`Error::Closed`] once the publisher has closed and all is read.
    pub fn wait_readable(&mut self, deadline: Option<Instant>, waiter: &mut Waiter) -> Result<()> {
        self.commit();
        match self.wait_handle().wait(deadline, waiter, None, || true)? {
            WaitEnd::Ready => Ok(()),
            WaitEnd::Deadline | WaitEnd::Stopped => Err(Error::Timeout),
        }
    }

    /// What a wait needs, detached from the subscriber: bindings wait on it
    /// without holding the subscriber itself (so it can be closed meanwhile).
    pub fn wait_handle(&self) -> WaitHandle {
        WaitHandle {
            ring: self.ring.clone(),
            record: self.record,
            position: self.pos.next,
            gate: self.gate.clone(),
            death: self.death.clone(),
        }
    }

    /// Whether a read now would deliver a message or detect a lap (cheap: one
    /// stamp load).
    #[inline]
    pub fn available(&self) -> bool {
        stage::readable(&self.ring, self.gate.as_ref(), self.pos.next)
    }

    /// The publisher closed the ring and this subscriber has read everything.
    pub fn ended(&self) -> bool {
        self.ring.ended_at(self.pos.next)
    }

    /// A file descriptor for event loops that becomes readable when this
    /// subscriber can read (or the stream ended), once armed with
    /// [`Subscriber::arm_readiness`]. Created on first use; it runs one
    /// helper thread that parks on the ring on the subscriber's behalf.
    pub fn readiness_fd(&mut self) -> Result<std::os::fd::RawFd> {
        if self.readiness.is_none() {
            self.readiness = Some(ReadinessFd::new(
                self.ring.clone(),
                self.record,
                self.gate.clone(),
                self.death.clone(),
            )?);
        }
        Ok(self.readiness.as_ref().expect("just created").fd())
    }

    /// Asks for the readiness fd to become readable as soon as the message
    /// at the current position can be read (at once if it already can).
    pub fn arm_readiness(&mut self) -> Result<()> {
        self.commit();
        self.readiness_fd()?;
        self.readiness
            .as_ref()
            .expect("created above")
            .arm(self.pos.next);
        Ok(())
    }

    /// Consumes a pending readiness signal (call when the fd became readable).
    pub fn clear_readiness(&self) {
        if let Some(r) = &self.readiness {
            r.clear();
        }
    }

    /// Fails with [`Error::PublisherDied`] if the publisher died without
    /// closing the ring, this subscriber has read everything it published,
    /// and that was not reported yet (then it counts as reported). For event
    /// loops, which wait on [`Subscriber::readiness_fd`] instead of
    /// [`Subscriber::wait_readable`]. A lock test: not for hot paths.
    pub fn check_publisher(&self) -> Result<()> {
        match self.death.unreported(&self.ring) {
            Some((pid, generation)) if !self.available() => {
                Err(self.death.report(&self.ring, pid, generation))
            }
            _ => Ok(()),
        }
    }

    /// Fails if this subscriber can no longer be used: its ring file shrank
    /// under it ([`Error::Corrupt`]), or this process is a fork() child of
    /// the one that attached it ([`Error::UsedAfterFork`]). Receiving finds
    /// this out by itself; this is for everything else.
    pub fn check_usable(&self) -> Result<()> {
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

    /// The stages this subscriber is gated after, in the order given.
    pub fn after(&self) -> Vec<String> {
        self.gate.as_ref().map(Gate::names).unwrap_or_default()
    }

    /// Each upstream stage with its published progress (`None`: no record
    /// of the ring carries its name, which holds this subscriber back).
    pub fn upstream(&self) -> Vec<(String, Option<u64>)> {
        self.gate
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
        // Stop the readiness thread before the record is given up.
        self.readiness = None;
        self.commit();
        self.mirror();
        self.ring.release_record(self.record);
        if self.bounded {
            // A publisher blocked on us may go on now.
            self.ring.wake_space_waiters(self.barrier_registered);
        }
    }
}
