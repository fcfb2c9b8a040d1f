//! A validated ring file mapped into this process: the shared piece under both
//! [`crate::Publisher`] and [`crate::Subscriber`].

use crate::error::{Error, Result};
use crate::format::layout::{
    self, Header, Layout, ProducerRecord, SlotHead, SubscriberRecord, CLAIM_PENDING,
    PUBLISHER_CLOSED, RECORD_ACTIVE, RECORD_FREE, RECORD_JOINING, SLOT_OVERHEAD,
};
use crate::format::stage_name::{self as stage, StageName};
use crate::protocol::stamp::{self, Observed};
use crate::protocol::{SlotRef, Slots};
use crate::shm::backing::RingFile;
use crate::shm::guard::Revoked;
use crate::shm::hugepages::{self, Backing};
use crate::shm::mapping::Mapping;
use crate::sys::liveness;
use crate::sys::{futex, membarrier as barrier};
use crate::wait::{MAX_PARK, UNFENCED_PARK};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A mapped ring whose layout has been validated; all accessors stay in bounds.
pub(crate) struct RingMap {
    // Field order matters: the mapping must be unmapped before the file (and
    // with it a publisher's lock) goes away.
    map: Mapping,
    file: File,
    layout: Layout,
    path: PathBuf,
    /// Where the bytes are: `path`, or the hugetlbfs file it links to.
    bytes_at: PathBuf,
    backing: Backing,
    name: String,
    mask: u64,
    stride: usize,
    header_len: usize,
    payload_words: usize,
    /// Offset of the payload in a slot: head, then the time word if any.
    payload_offset: usize,
    /// Multi-producer rings: a recovery through this mapping declared
    /// abandoned messages lately, so its readers recover the next stuck
    /// slots at once (see [`StuckWatch`]). Process-local.
    pub(crate) recovering: AtomicBool,
    /// The process that mapped the ring.
    mapped_by: u32,
}

impl RingMap {
    /// Maps a ring file (already open) and validates it as a ring.
    pub(crate) fn open(ring_file: RingFile, name: &str) -> Result<Self> {
        let path = &ring_file.path;
        let file_len = ring_file
            .file
            .metadata()
            .map_err(|e| Error::io("inspect", path, e))?
            .len();
        layout::check_file_len(file_len, path)?;
        let map = Mapping::map(&ring_file.file, file_len as usize)
            .map_err(|e| Error::io("map", path, e))?;
        // SAFETY: the mapping holds at least size_of::<Header>() bytes (checked
        // above), is page aligned, and Header consists of atomics only.
        let header = unsafe { &*map.as_ptr().cast::<Header>() };
        let backing = hugepages::backing_of(&ring_file.file);
        let granule = if backing.huge { backing.page_size } else { 1 };
        let layout = layout::read_layout(header, file_len, granule, path)?;
        Ok(Self::from_parts(map, ring_file, backing, layout, name))
    }

    /// Wraps a mapping whose header was just initialised for `layout`.
    pub(crate) fn from_parts(
        map: Mapping,
        ring_file: RingFile,
        backing: Backing,
        layout: Layout,
        name: &str,
    ) -> Self {
        let granule = if backing.huge { backing.page_size } else { 1 };
        assert!(
            map.len() as u64 == layout.file_len_on(granule),
            "mapping does not match layout"
        );
        Self {
            map,
            file: ring_file.file,
            path: ring_file.path,
            bytes_at: ring_file.bytes_at,
            backing,
            mask: layout.capacity - 1,
            stride: layout.slot_stride(),
            header_len: layout.header_len(),
            payload_words: layout.payload_words(),
            payload_offset: layout.slot_overhead(),
            layout,
            name: name.to_owned(),
            recovering: AtomicBool::new(false),
            mapped_by: std::process::id(),
        }
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: validated at construction: the mapping starts with a Header.
        unsafe { &*self.map.as_ptr().cast::<Header>() }
    }

    /// Subscriber record `i` (< max_subscribers).
    pub(crate) fn record(&self, i: usize) -> &SubscriberRecord {
        assert!(i < self.layout.max_subscribers as usize);
        let offset = Layout::subscriber_offset(i);
        // SAFETY: the table lies between the Header and header_len, inside the
        // validated mapping; offsets are multiples of 64, records are atomics.
        unsafe { &*self.map.as_ptr().add(offset).cast::<SubscriberRecord>() }
    }

    /// Producer record `i` (< max_producers).
    pub(crate) fn producer(&self, i: usize) -> &ProducerRecord {
        assert!(i < self.layout.max_producers as usize);
        let offset = self.layout.producer_offset(i);
        // SAFETY: the producer table follows the subscriber table and ends
        // before header_len (Layout::header_len), inside the validated mapping;
        // offsets are multiples of 64, records are atomics.
        unsafe { &*self.map.as_ptr().add(offset).cast::<ProducerRecord>() }
    }

    /// Subscriber records that may be in use: those below the high mark.
    pub(crate) fn records_in_use(&self) -> usize {
        (self.header().gates.0.records_high.load(Ordering::Acquire) as usize)
            .min(self.layout.max_subscribers as usize)
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Where the ring's bytes are (the hugetlbfs file of a huge-page ring).
    pub(crate) fn bytes_at(&self) -> &Path {
        &self.bytes_at
    }

    /// The filesystem the ring's bytes are on.
    pub(crate) fn backing(&self) -> Backing {
        self.backing
    }

    /// The whole mapping (for memory control).
    pub(crate) fn mapping(&self) -> &Mapping {
        &self.map
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Largest payload in bytes.
    pub(crate) fn slot_size(&self) -> usize {
        self.layout.slot_size as usize
    }

    /// What the ring says about its publisher side.
    pub(crate) fn publisher_status(&self) -> PublisherStatus {
        let p = &self.header().publisher.0;
        let pid = p.pid.load(Ordering::Relaxed);
        let live = self.publishers_live();
        let closed = p.state.load(Ordering::Acquire) == PUBLISHER_CLOSED;
        PublisherStatus {
            pid,
            alive: !closed && live,
            closed,
            generation: p.generation.load(Ordering::Acquire),
            cursor: self.cursor().load(Ordering::Acquire),
        }
    }

    /// Whether a publisher process holds the ring: the single producer's
    /// lock on [`layout::PUBLISHER_LOCK_OFFSET`], or any producer's record
    /// lock (exact: the kernel drops a lock when its holder dies, whatever
    /// became of its pid).
    pub(crate) fn publishers_live(&self) -> bool {
        if self.layout.multi_producer() {
            self.live_producers(None) > 0
        } else {
            liveness::held_by_other(&self.file, layout::PUBLISHER_LOCK_OFFSET)
        }
    }

    /// The publisher side died without closing the ring: the pid and
    /// generation of the last publisher, if so. The lock is tested before
    /// the state is loaded: a publisher that closes stores CLOSED before its
    /// lock goes, and one that takes over takes its lock before it stores
    /// its generation, so neither is ever taken for dead.
    pub(crate) fn publisher_death(&self) -> Option<(u32, u64)> {
        if self.publishers_live() {
            return None;
        }
        let p = &self.header().publisher.0;
        if p.state.load(Ordering::Acquire) != layout::PUBLISHER_OPEN {
            return None; // closed cleanly (or never opened)
        }
        Some((
            p.pid.load(Ordering::Relaxed),
            p.generation.load(Ordering::Acquire),
        ))
    }
}

/// Readiness: what waiting subscribers (and readiness threads) ask of a ring,
/// and how the publisher wakes them.
impl RingMap {
    /// Whether a reader at `position` would get a message (or detect that it
    /// was lapped) right now: one stamp load.
    #[inline]
    pub(crate) fn readable_at(&self, position: u64) -> bool {
        let stamp = self.slot(position).stamp.load(Ordering::Acquire);
        stamp::observe(stamp, position) != Observed::NotYet
    }

    /// The publisher closed the ring and a reader at `position` has read it all.
    pub(crate) fn ended_at(&self, position: u64) -> bool {
        self.header().publisher.0.state.load(Ordering::Acquire) == PUBLISHER_CLOSED
            && !self.readable_at(position)
            && self.cursor().load(Ordering::Acquire) <= position
    }

    /// Counts the caller (subscriber record `record`) among the ring's
    /// waiters until the returned guard is dropped; see [`Parked`].
    pub(crate) fn register_parked(&self, record: usize) -> Parked<'_> {
        let notify = &self.header().notify.0;
        self.record(record).parked.fetch_add(1, Ordering::Relaxed);
        notify.waiters.fetch_add(1, Ordering::SeqCst);
        let fenced = barrier::reader_side();
        Parked {
            ring: self,
            record,
            fenced,
        }
    }

    /// Publisher side of [`Parked`], first half: after a publish, whether
    /// nobody is parked (the common case: one load). `registered`: this
    /// process takes part in the asymmetric barrier.
    #[inline]
    pub(crate) fn nobody_parked(&self, registered: bool) -> bool {
        barrier::publisher_side(registered);
        self.header().notify.0.waiters.load(Ordering::Relaxed) == 0
    }

    /// Fails if this mapping was revoked (see [`crate::shm::guard`]): its file
    /// shrank under it, or this process is a fork() child of the one that
    /// mapped it. One load of the mapping's guard entry.
    #[inline]
    pub(crate) fn usable(&self) -> Result<()> {
        match self.map.revoked() {
            None => Ok(()),
            Some(why) => Err(self.revoked_error(why)),
        }
    }

    #[cold]
    fn revoked_error(&self, why: Revoked) -> Error {
        match why {
            Revoked::Truncated => Error::corrupt(
                &self.path,
                "its file shrank (was it truncated?) while this process had it mapped, so \
                 its memory is gone here",
            ),
            Revoked::Forked => Error::UsedAfterFork {
                name: self.name.clone(),
                mapped_by: self.mapped_by,
            },
        }
    }

    /// Publisher side of [`Parked`]: after a publish (or close), wake
    /// parked readers if there are any. `registered`: this process takes part
    /// in the asymmetric barrier. Costs a load (plus a fence when not
    /// registered) while nobody is parked.
    /// Returns `false` when the waiter count was non-zero but nobody was
    /// asleep (a hint that a dead process left its count behind).
    #[inline]
    pub(crate) fn wake_parked(&self, registered: bool) -> bool {
        self.nobody_parked(registered) || self.wake_all_parked() != 0
    }

    /// Wakes every thread parked on this ring, in every process; returns how
    /// many were asleep.
    pub(crate) fn wake_all_parked(&self) -> usize {
        let notify = &self.header().notify.0;
        notify.wake_seq.fetch_add(1, Ordering::Release);
        futex::wake_all(&notify.wake_seq, true)
    }

    /// Frees the subscriber records whose owners died (their byte lock is
    /// gone), taking their parked counts out of the waiter count (so that the
    /// publisher stops waking nobody) and counting the eviction when the dead
    /// subscriber gated a bounded ring. `own`: a record this ring mapping
    /// holds itself, never touched. Returns how many records were freed.
    pub(crate) fn release_dead_records(&self, own: Option<usize>) -> usize {
        (0..self.records_in_use())
            .filter(|&i| Some(i) != own && self.release_if_dead(i))
            .count()
    }

    /// Frees subscriber record `i` if its owner is dead. The sweeper takes
    /// the record's lock before cleaning, so a record a live process has just
    /// claimed (lock first, then pid) is never touched.
    pub(crate) fn release_if_dead(&self, i: usize) -> bool {
        let rec = self.record(i);
        let offset = Layout::subscriber_offset(i);
        if rec.pid.load(Ordering::Acquire) == 0 || liveness::held_by_other(&self.file, offset) {
            return false;
        }
        if !liveness::try_lock(&self.file, offset).unwrap_or(false) {
            return false;
        }
        let freed = rec.pid.load(Ordering::Acquire) != 0;
        if freed {
            self.clean_record(rec);
        }
        liveness::unlock(&self.file, offset);
        freed
    }

    /// Resets a record whose owner is gone (caller holds its lock).
    pub(crate) fn clean_record(&self, rec: &SubscriberRecord) {
        let state = rec.state.swap(RECORD_FREE, Ordering::AcqRel);
        if self.layout.bounded() && state == RECORD_ACTIVE {
            self.header()
                .gates
                .0
                .evictions
                .fetch_add(1, Ordering::Relaxed);
        }
        rec.memory.store(0, Ordering::Relaxed);
        let stale = rec.parked.swap(0, Ordering::AcqRel);
        if stale != 0 {
            decrement(&self.header().notify.0.waiters, stale);
        }
        rec.pid.store(0, Ordering::Release);
    }

    /// Claims a free subscriber record (or one whose owner died) and returns
    /// its index and whether it remembers `stage` (a stage resuming). The
    /// record stays `RECORD_JOINING` (gating nobody) until the caller has
    /// stored its position.
    ///
    /// A stage takes the record that carries its name, if one does (its
    /// progress is remembered there; a live owner means the name is taken:
    /// [`Error::StageExists`]). Anyone else takes a record that remembers no
    /// stage if there is one, so remembered progress lasts as long as the
    /// table has room, and makes a record it takes forget its stage.
    pub(crate) fn claim_record(&self, stage: Option<&StageName>) -> Result<(usize, bool)> {
        if let Some(name) = stage {
            if let Some(i) = find_stage(self, name) {
                if self.try_claim_record(i)? {
                    return Ok((i, true));
                }
                return Err(self.stage_taken(name, i));
            }
        }
        let n = self.layout.max_subscribers as usize;
        for take_remembered in [false, true] {
            for i in 0..n {
                if !take_remembered && stage::named(self.record(i)) {
                    continue;
                }
                if self.try_claim_record(i)? {
                    stage::forget(self.record(i), 0);
                    return Ok((i, false));
                }
            }
        }
        Err(Error::SubscriberTableFull {
            name: self.name.clone(),
            max_subscribers: n as u32,
        })
    }

    /// The error for stage `name`, held by record `i`.
    pub(crate) fn stage_taken(&self, name: &StageName, i: usize) -> Error {
        Error::StageExists {
            name: self.name.clone(),
            stage: name.as_string(),
            pid: self.record(i).pid.load(Ordering::Relaxed),
        }
    }

    /// Claims subscriber record `i` if nobody alive holds it: takes its
    /// lock, cleans what a dead owner left, marks it with our pid.
    fn try_claim_record(&self, i: usize) -> Result<bool> {
        let offset = Layout::subscriber_offset(i);
        if self.record(i).pid.load(Ordering::Relaxed) != 0
            && liveness::held_by_other(&self.file, offset)
        {
            return Ok(false);
        }
        if !liveness::try_lock(&self.file, offset)
            .map_err(|e| Error::io("lock a subscriber record of", &self.path, e))?
        {
            return Ok(false);
        }
        let rec = self.record(i);
        if rec.pid.load(Ordering::Acquire) != 0 {
            self.clean_record(rec); // its owner died: we hold its lock now
        }
        rec.state.store(RECORD_JOINING, Ordering::Relaxed);
        rec.gate_wait.store(0, Ordering::Relaxed);
        rec.pid.store(std::process::id(), Ordering::Release);
        self.header()
            .gates
            .0
            .records_high
            .fetch_max(i as u32 + 1, Ordering::AcqRel);
        Ok(true)
    }

    /// Gives up subscriber record `i` (claimed through this mapping).
    pub(crate) fn release_record(&self, i: usize) {
        let rec = self.record(i);
        rec.memory.store(0, Ordering::Relaxed);
        rec.state.store(RECORD_FREE, Ordering::Release);
        rec.pid.store(0, Ordering::Release);
        liveness::unlock(&self.file, Layout::subscriber_offset(i));
    }

    /// Whether the owner of subscriber record `i` is alive (holds its lock).
    pub(crate) fn record_owner_alive(&self, i: usize) -> bool {
        liveness::held_by_other(&self.file, Layout::subscriber_offset(i))
    }
}

/// Multi-producer rings: the producer table and recovery from producers that
/// died between claiming and committing.
impl RingMap {
    /// Claims a producer record (free, or left by a dead producer).
    pub(crate) fn claim_producer(&self) -> Result<usize> {
        let n = self.layout.max_producers as usize;
        for i in 0..n {
            let offset = self.layout.producer_offset(i);
            if !liveness::try_lock(&self.file, offset)
                .map_err(|e| Error::io("lock a producer record of", &self.path, e))?
            {
                continue;
            }
            let rec = self.producer(i);
            rec.claim.store(layout::CLAIM_IDLE, Ordering::Relaxed);
            rec.claim_end.store(0, Ordering::Relaxed);
            rec.published.store(0, Ordering::Relaxed);
            rec.attached_unix_ns.store(unix_now_ns(), Ordering::Relaxed);
            rec.pid.store(std::process::id(), Ordering::Release);
            return Ok(i);
        }
        Err(Error::ProducerTableFull {
            name: self.name.clone(),
            max_producers: n as u32,
        })
    }

    /// Gives up producer record `i` (claimed through this mapping).
    pub(crate) fn release_producer(&self, i: usize) {
        let rec = self.producer(i);
        rec.claim.store(layout::CLAIM_IDLE, Ordering::Release);
        rec.pid.store(0, Ordering::Release);
        liveness::unlock(&self.file, self.layout.producer_offset(i));
    }

    /// Whether the owner of producer record `i` is alive (holds its lock).
    pub(crate) fn producer_owner_alive(&self, i: usize) -> bool {
        liveness::held_by_other(&self.file, self.layout.producer_offset(i))
    }

    /// Producers other than the one holding record `own` that are alive.
    pub(crate) fn live_producers(&self, own: Option<usize>) -> usize {
        (0..self.layout.max_producers as usize)
            .filter(|&i| {
                Some(i) != own
                    && self.producer(i).pid.load(Ordering::Acquire) != 0
                    && liveness::held_by_other(&self.file, self.layout.producer_offset(i))
            })
            .count()
    }

    /// A reader (or producer) waits on the slot of message `seq`: if the
    /// producers whose writes the slot is stuck on are dead, declare their
    /// messages lost. `include_seq: false` (a producer waiting to enter its
    /// own `seq`) only ever declares earlier laps. Says whether something
    /// was declared or the slot moved, and (to a producer) whether the slot
    /// holds a stamp no protocol step leaves there.
    ///
    /// The slot is stuck on lap `stuck` ([`stamp::blocking_lap`]: `seq`
    /// itself, or an earlier lap of the slot); every lap from there to the
    /// last one the caller may get past (for a reader the newest lap below
    /// the cursor, for a producer `seq - capacity`) was claimed and not
    /// committed. The laps before
    /// the first one a live producer owns, or may be about to own, are all
    /// abandoned: the latest of them is declared lost with one
    /// compare-exchange from the stamp observed, which lets the next lap in
    /// and tells readers of the skipped laps that they were lapped. So a
    /// whole dead claim (or a cursor moved far ahead) costs one declaration
    /// per slot, not one per lap.
    ///
    /// Producers announce a claim in their record before making it
    /// (`CLAIM_PENDING`, then the claimed range), and the claim's release
    /// orders the announcement before it: having seen the cursor past the
    /// message, we see its owner's announcement (or a later state). A live
    /// producer is never robbed of its slot, so a slot never has two
    /// writers, and stamps never go backwards.
    ///
    /// TLA+ (MpmcRing): `RecoverStart` (cursor and stamp), `RecoverScan`
    /// (one producer record per step), `RecoverDeclare`.
    pub(crate) fn recover_abandoned(&self, seq: u64, include_seq: bool) -> Recovery {
        let cursor = self.cursor().load(Ordering::Acquire);
        if !self.layout.multi_producer() || cursor <= seq {
            return Recovery::Nothing;
        }
        let capacity = self.capacity();
        let slot = self.slot(seq);
        let observed = slot.stamp.load(Ordering::Acquire);
        if include_seq && stamp::observe(observed, seq) != Observed::NotYet {
            return Recovery::Recovered;
        }
        let Some(stuck) = stamp::blocking_lap(observed, seq, capacity) else {
            // Not a stamp the protocol leaves in a slot its readers or next
            // producer wait on: another slot's, or a lap the waiter's own.
            return if include_seq {
                Recovery::Nothing // a reader: it waits, within its timeout
            } else {
                Recovery::Damaged { observed }
            };
        };
        // A reader may get past every claimed lap of the slot (the newest
        // below the cursor); a producer only up to the lap before its own.
        let target = if include_seq {
            Some(seq + (cursor - 1 - seq) / capacity * capacity)
        } else {
            seq.checked_sub(capacity)
        };
        let Some(mut last) = target.filter(|&last| stuck <= last) else {
            return Recovery::Nothing;
        };
        for i in 0..self.layout.max_producers as usize {
            let rec = self.producer(i);
            if rec.pid.load(Ordering::Acquire) == 0 {
                continue;
            }
            let first = rec.claim.load(Ordering::Acquire);
            let end = rec.claim_end.load(Ordering::Acquire);
            let owned = if first == CLAIM_PENDING {
                Some(stuck) // its claim is not known yet: it may own anything
            } else {
                stamp::first_owned_lap(stuck, last, first, end, capacity)
            };
            let Some(lap) = owned else { continue };
            if liveness::held_by_other(&self.file, self.layout.producer_offset(i)) {
                if lap == stuck {
                    return Recovery::Nothing; // a live producer is (or may be) writing it
                }
                last = lap - capacity;
            }
        }
        let declared = crate::protocol::declare_lost(slot, last, observed);
        if declared {
            // Readers parked on the ring wait for this slot.
            self.wake_all_parked();
        }
        if declared || slot.stamp.load(Ordering::Acquire) != observed {
            Recovery::Recovered
        } else {
            Recovery::Nothing
        }
    }
}

/// What [`RingMap::recover_abandoned`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// Nothing to declare now (a live producer owns the slot, or nothing is stuck).
    Nothing,
    /// Abandoned messages were declared lost, or the slot moved meanwhile.
    Recovered,
    /// A producer waits on a slot holding a stamp no protocol step leaves
    /// there: damaged ring memory.
    Damaged {
        /// The stamp found.
        observed: u64,
    },
}

/// Notices a reader that has waited on one claimed slot of a multi-producer
/// ring for the claim deadline, and asks the ring to recover the slot (it is
/// declared lost if its producer died; see [`RingMap::recover_abandoned`]).
///
/// Once a recovery has declared something, the mapping is *hot*
/// ([`RingMap::recovering`]): the next slots its readers wait on are
/// recovered at once, without waiting for the deadline again, until a
/// recovery finds nothing to declare (a live producer owns the slot, or
/// nothing is stuck). A producer that died inside a batch of `n` messages so
/// costs its readers one deadline, not `n`. The deadline only spares live
/// producers the liveness checks; what is declared is decided by liveness
/// alone, whenever it is asked.
#[derive(Debug, Clone)]
pub(crate) struct StuckWatch {
    seq: u64,
    since: Option<Instant>,
    polls: u32,
}

/// Polls of an empty slot between two looks at the clock. Looking at every
/// poll would add a clock read (~20 ns) to every message of a spinning
/// reader; a reader polling every few ms notices a dead producer after
/// `2 * POLLS_PER_CLOCK` polls plus the claim deadline.
const POLLS_PER_CLOCK: u32 = 16;

impl StuckWatch {
    pub(crate) const fn new() -> Self {
        Self {
            seq: u64::MAX,
            since: None,
            polls: 0,
        }
    }

    /// Called when a read at `seq` found nothing; `now`: a clock reading the
    /// caller already has (else one is taken every [`POLLS_PER_CLOCK`] calls).
    /// Returns `true` when the slot was recovered (read again).
    pub(crate) fn nothing_at(&mut self, ring: &RingMap, seq: u64, now: Option<Instant>) -> bool {
        if !ring.layout().multi_producer() {
            return false;
        }
        if ring.recovering.load(Ordering::Relaxed) {
            if ring.recover_abandoned(seq, true) == Recovery::Recovered {
                return true;
            }
            ring.recovering.store(false, Ordering::Relaxed);
        }
        if seq != self.seq {
            *self = Self::new();
            self.seq = seq;
        }
        self.polls = self.polls.wrapping_add(1);
        let now = match now {
            Some(now) => now,
            None if self.polls % POLLS_PER_CLOCK == 0 => Instant::now(),
            None => return false,
        };
        let since = *self.since.get_or_insert(now);
        if now.saturating_duration_since(since) < ring.claim_deadline() {
            return false;
        }
        self.since = Some(now);
        let recovered = ring.recover_abandoned(seq, true) == Recovery::Recovered;
        ring.recovering.store(recovered, Ordering::Relaxed);
        recovered
    }
}

impl RingMap {
    /// Multi-producer rings: how long a claimed slot is waited on before its
    /// producer's liveness is checked.
    pub(crate) fn claim_deadline(&self) -> Duration {
        Duration::from_nanos(self.layout.claim_timeout_ns)
    }
}

/// Bounded rings: the space handshake between blocked publishers and readers.
impl RingMap {
    /// Reader side, after storing a new position: wake publishers parked
    /// waiting for space, if any. `registered`: see [`barrier`].
    #[inline]
    pub(crate) fn wake_space_waiters(&self, registered: bool) {
        let gates = &self.header().gates.0;
        barrier::publisher_side(registered);
        if gates.space_waiters.load(Ordering::Relaxed) != 0 {
            gates.space_seq.fetch_add(1, Ordering::Release);
            futex::wake_all(&gates.space_seq, true);
        }
    }
}

/// A reader counted among a ring's waiters (uncounted on drop).
///
/// No wake-up is lost: the waiter count is raised before the slot is checked,
/// the publisher stores the message before it reads the count, and a
/// store-load barrier separates each pair (see [`crate::sys::membarrier`]). So either
/// the reader's check sees the message, or the publisher sees the waiter,
/// bumps `wake_seq` and wakes the futex; a bump between the reader's load of
/// `wake_seq` and its sleep makes the sleep return at once. One barrier, at
/// registration, covers every sleep while the guard lives.
pub(crate) struct Parked<'a> {
    ring: &'a RingMap,
    record: usize,
    /// The reader-side barrier ran; if not, sleeps are kept short.
    fenced: bool,
}

impl Parked<'_> {
    /// Sleeps until the publisher publishes or closes (or an upstream stage
    /// commits), `deadline` passes or [`MAX_PARK`] elapses; returns at once
    /// if `done` (the reader can read, or the stream ended) already holds.
    pub(crate) fn sleep(&self, deadline: Option<Instant>, done: impl FnOnce() -> bool) {
        let notify = &self.ring.header().notify.0;
        let seen = notify.wake_seq.load(Ordering::Acquire);
        if done() {
            return;
        }
        let mut timeout = if self.fenced { MAX_PARK } else { UNFENCED_PARK };
        if let Some(d) = deadline {
            timeout = timeout.min(d.saturating_duration_since(Instant::now()));
        }
        if !timeout.is_zero() {
            futex::wait(&notify.wake_seq, seen, Some(timeout), true);
        }
    }
}

/// A publisher counted among the ring's space waiters (uncounted on drop):
/// the mirror image of [`Parked`], with readers storing positions and
/// publishers parking.
pub(crate) struct SpaceParked<'a> {
    ring: &'a RingMap,
    fenced: bool,
}

impl RingMap {
    /// Counts the caller among the publishers waiting for space.
    pub(crate) fn register_space_waiter(&self) -> SpaceParked<'_> {
        self.header()
            .gates
            .0
            .space_waiters
            .fetch_add(1, Ordering::SeqCst);
        SpaceParked {
            ring: self,
            fenced: barrier::reader_side(),
        }
    }
}

impl SpaceParked<'_> {
    /// Sleeps until a reader moves, `until` passes, or [`MAX_PARK`] elapses;
    /// returns at once when `has_room()` already holds.
    pub(crate) fn sleep(&self, until: Option<Instant>, has_room: impl FnOnce() -> bool) {
        let gates = &self.ring.header().gates.0;
        let seen = gates.space_seq.load(Ordering::Acquire);
        if has_room() {
            return;
        }
        let mut timeout = if self.fenced { MAX_PARK } else { UNFENCED_PARK };
        if let Some(d) = until {
            timeout = timeout.min(d.saturating_duration_since(Instant::now()));
        }
        if !timeout.is_zero() {
            futex::wait(&gates.space_seq, seen, Some(timeout), true);
        }
    }
}

impl Drop for SpaceParked<'_> {
    fn drop(&mut self) {
        decrement(&self.ring.header().gates.0.space_waiters, 1);
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        decrement(&self.ring.header().notify.0.waiters, 1);
        decrement(&self.ring.record(self.record).parked, 1);
    }
}

/// Subtracts `n` from a counter without wrapping below zero (counters in a
/// shared file may have been repaired, or damaged, by someone else).
fn decrement(counter: &std::sync::atomic::AtomicU32, n: u32) {
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

impl Slots for RingMap {
    #[inline]
    fn capacity(&self) -> u64 {
        self.layout.capacity
    }

    #[inline]
    fn slot(&self, seq: u64) -> SlotRef<'_> {
        let offset = self.header_len + (seq & self.mask) as usize * self.stride;
        // SAFETY: `seq & mask < capacity`, so the slot lies inside the validated
        // mapping (header_len + capacity * stride <= mapping length). Slots are
        // 64-byte aligned (page-aligned start, stride a multiple of 64), a
        // SlotHead (two atomic words, layout asserted at compile time) starts
        // each, the time word follows it on rings with timestamps, and
        // `payload_words` words follow within the stride
        // (payload_offset + 8 * payload_words == stride). All are accessed
        // only atomically.
        unsafe {
            let base = self.map.as_ptr().add(offset);
            let head = &*base.cast::<SlotHead>();
            SlotRef {
                stamp: &head.stamp,
                len: &head.len,
                time: (self.payload_offset > SLOT_OVERHEAD)
                    .then(|| &*base.add(SLOT_OVERHEAD).cast::<AtomicU64>()),
                words: std::slice::from_raw_parts(
                    base.add(self.payload_offset).cast::<AtomicU64>(),
                    self.payload_words,
                ),
                max_len: self.layout.slot_size as usize,
                exact: self.layout.fixed_size(),
            }
        }
    }

    #[inline]
    fn cursor(&self) -> &AtomicU64 {
        &self.header().cursor.0
    }
}

/// Nanoseconds since the Unix epoch (for informational timestamps only).
pub(crate) fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The record of `ring` that carries stage `name`, if any.
pub(crate) fn find_stage(ring: &RingMap, name: &StageName) -> Option<usize> {
    (0..ring.records_in_use()).find(|&i| name.held_by(ring.record(i)))
}

/// What a subscriber can tell about the publisher side of its ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublisherStatus {
    /// Pid of the current or last publisher.
    pub pid: u32,
    /// A publisher has the ring open and its process exists.
    pub alive: bool,
    /// The last publisher closed the ring cleanly.
    pub closed: bool,
    /// How many times a publisher has opened the ring.
    pub generation: u64,
    /// Messages published so far.
    pub cursor: u64,
}
