//! A publisher's view of the room left in a bounded ring.
//!
//! Scanning every subscriber record on every publish would cost a cache miss
//! per subscriber, so a publisher caches the limit the last scan gave (the
//! first sequence it may not write) and rescans only when it reaches that
//! limit or when a subscriber has joined since (the ring's gate epoch moved).
//! A joining subscriber bumps the epoch and then issues the expedited
//! membarrier (see [`crate::sys::membarrier`]), so a publisher either sees the bump
//! before its next write or had already published everything the joiner's
//! cursor read covers.
//!
//! While blocked, a publisher also judges the subscribers that block it
//! ([`crate::protocol::room::Progress`]): a dead one (its record lock is gone) is
//! released at once, a live one that has not moved for the ring's liveness
//! limit is marked evicted. Several publishers (multi-producer rings) may
//! judge the same subscriber: the eviction is a compare-exchange on its
//! record state, so it is counted once.

use super::patience::Patience;
use crate::error::{PublishError, Result};
use crate::format::layout::{RECORD_ACTIVE, RECORD_EVICTED};
use crate::protocol::room::{self, Progress, Verdict};
use crate::shm::ring::RingMap;
use crate::wait::{Step, WaitStrategy, Waiter, PUBLISHER_POLL_PAUSES};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often a blocked publisher checks the liveness of what blocks it.
pub(crate) const JUDGE_EVERY: Duration = Duration::from_millis(5);
/// A spinning publisher reads the clock (deadline, judging, its mapping's
/// health) every this many polls (about every two microseconds).
const CLOCK_EVERY: u32 = 4;

/// A publisher's cached gate of a bounded ring.
pub(crate) struct Room {
    watermark: u64,
    liveness_ns: u64,
    /// First sequence not writable as of the last scan.
    limit: u64,
    /// Gate epoch the last scan saw.
    epoch: u64,
    /// Per subscriber record: its progress while it blocks us.
    progress: Vec<Progress>,
    /// Reference point of the monotonic clock used for progress judgments.
    clock_origin: Instant,
    /// When blocking subscribers may be judged again.
    next_judge: Instant,
}

impl Room {
    /// The gate of `ring` (a bounded ring), scanned once.
    pub(crate) fn new(ring: &RingMap) -> Self {
        let layout = ring.layout();
        let mut room = Self {
            watermark: layout.watermark,
            liveness_ns: layout.liveness_timeout_ns,
            limit: 0,
            epoch: 0,
            progress: vec![Progress::default(); layout.max_subscribers as usize],
            clock_origin: Instant::now(),
            next_judge: Instant::now(),
        };
        room.rescan(ring, None);
        room
    }

    /// How many of `want` messages starting at `first` may be written now.
    /// Cheap while the cached limit allows it. Never more than the
    /// watermark: the epoch is looked at again at least that often, so a
    /// subscriber that joins during a long batch is protected from the
    /// batch's next stretch on (see `Subscriber::attach`).
    ///
    /// TLA+ (BoundedRing): `Reserve` then `Room`.
    #[inline]
    pub(crate) fn room(&mut self, ring: &RingMap, first: u64, want: u64) -> u64 {
        let epoch = ring.header().table.0.epoch.load(Ordering::Relaxed);
        if first >= self.limit || epoch != self.epoch {
            self.rescan(ring, None);
        }
        room::room(first, self.limit, want.min(self.watermark))
    }

    /// Judges the subscribers that block sequence `target`, at most every
    /// [`JUDGE_EVERY`]; returns whether a judgment ran.
    pub(crate) fn judge_if_due(&mut self, ring: &RingMap, target: u64, now: Instant) -> bool {
        if now < self.next_judge {
            return false;
        }
        self.next_judge = now + JUDGE_EVERY;
        self.rescan(ring, Some(target));
        true
    }

    /// Messages that may be written from `first` on, as of the last scan.
    pub(crate) fn free(&self, first: u64) -> u64 {
        self.limit.saturating_sub(first)
    }

    /// Rescans the subscriber table and refreshes the cached limit. With
    /// `blocked_at`, also judges every subscriber that blocks that sequence
    /// (releasing dead ones, evicting stalled ones). Returns how many
    /// subscribers were evicted. TLA+ (BoundedRing): `StartScan`, then
    /// `ScanRecord` once per record.
    #[inline(never)]
    pub(crate) fn rescan(&mut self, ring: &RingMap, blocked_at: Option<u64>) -> usize {
        // The epoch is read before the positions: a join after this load is
        // caught by the next call.
        self.epoch = ring.header().table.0.epoch.load(Ordering::Acquire);
        let now_ns = self.clock_origin.elapsed().as_nanos() as u64;
        let mut slowest: Option<u64> = None;
        let mut evicted = 0;
        for i in 0..ring.records_in_use() {
            let rec = ring.record(i);
            if rec.state.load(Ordering::Acquire) != RECORD_ACTIVE {
                self.progress[i].reset();
                continue;
            }
            // Acquire: the subscriber stored its position after copying the
            // messages below it out; we overwrite them only after this load.
            let position = rec.position.load(Ordering::Acquire);
            let owner = rec.attached_unix_ns.load(Ordering::Relaxed);
            match blocked_at {
                // A subscriber waiting for a message that is not committed
                // (a multi-producer slot still being written), or held back
                // by its upstream stages (see `crate::subscribe::stage`), is not stalled.
                // A dead durable stage waiting there is judged below like
                // any that keeps its place: it never moves again.
                Some(seq)
                    if room::blocks(position, seq, self.watermark)
                        && (!ring.readable_at(position)
                            || rec.gate_wait.load(Ordering::Relaxed) == position + 1)
                        && (ring.record_owner_alive(i) || !ring.keeps_place(rec)) =>
                {
                    self.progress[i].reset();
                    if !ring.record_owner_alive(i) && ring.release_if_dead(i) {
                        evicted += 1;
                        continue;
                    }
                }
                Some(seq) if room::blocks(position, seq, self.watermark) => {
                    // A dead durable stage keeps its place: judged like a
                    // live one, it is evicted once it has not moved for the
                    // liveness timeout (not released at once). TLA+
                    // (BoundedRing): `ScanRecord` with `KeepsPlace`.
                    let alive = ring.record_owner_alive(i) || ring.keeps_place(rec);
                    match self.progress[i].judge(owner, position, alive, now_ns, self.liveness_ns) {
                        Verdict::Wait => {}
                        Verdict::EvictDead => {
                            self.progress[i].reset();
                            if ring.release_if_dead(i) {
                                evicted += 1;
                                continue;
                            }
                        }
                        Verdict::EvictStalled => {
                            self.progress[i].reset();
                            if evict(ring, i, owner, position) {
                                evicted += 1;
                            }
                            continue;
                        }
                    }
                }
                Some(_) => self.progress[i].reset(),
                None => {}
            }
            slowest = Some(slowest.map_or(position, |s| s.min(position)));
        }
        self.limit = room::limit(slowest, self.watermark);
        evicted
    }
}

/// Position of the slowest active subscriber, as the records say now
/// (`None`: nobody gates the ring). No judging, no caching.
pub(crate) fn slowest_active(ring: &RingMap) -> Option<u64> {
    (0..ring.records_in_use())
        .map(|i| ring.record(i))
        .filter(|rec| rec.state.load(Ordering::Acquire) == RECORD_ACTIVE)
        .map(|rec| rec.position.load(Ordering::Acquire))
        .min()
}

/// Marks subscriber record `i` evicted (once, whoever asks) if it still
/// holds the subscriber judged (same owner, same position); it then gates
/// nobody and its owner's next read reports the eviction.
fn evict(ring: &RingMap, i: usize, owner: u64, position: u64) -> bool {
    let rec = ring.record(i);
    if rec.attached_unix_ns.load(Ordering::Acquire) != owner
        || rec.position.load(Ordering::Acquire) != position
    {
        return false; // it moved, or the record changed hands
    }
    let won = rec
        .state
        .compare_exchange(
            RECORD_ACTIVE,
            RECORD_EVICTED,
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_ok();
    if won {
        ring.header()
            .table
            .0
            .evictions
            .fetch_add(1, Ordering::Relaxed);
        // If the evicted subscriber is parked, let it find out now.
        ring.wake_all_parked();
    }
    won
}

/// Waits (per `patience`) until bounded `ring` may have room for the
/// publisher whose next sequence `next()` tells, judging the subscribers
/// that block it. `done` of `count` messages went out.
pub(super) fn wait_for_room(
    ring: &RingMap,
    room: &mut Room,
    next: impl Fn() -> u64 + Copy,
    strategy: WaitStrategy,
    patience: &mut Patience<'_>,
    done: usize,
    count: usize,
) -> Result<(), PublishError> {
    // Hysteresis: resume once a sixteenth of the watermark is free, not
    // at the first free slot. A publisher resuming slot by slot would
    // pull the reader's record line (and the reader pull it back) for
    // every message; waiting for a few lines' worth of room lets both
    // run in streaks. At the deadline any room at all will do. The
    // subscribers judged are those that block the sequence waited for.
    // TLA+ (BoundedRing): Wait, ScanRecord with a judge target, Resume.
    let resume_at = (ring.layout().watermark / 16).max(1);
    if !patience.wait_for_room {
        // Even without waiting, dead and stalled subscribers must not
        // gate the ring forever: judge them (at most every few ms).
        let first = next();
        if room.judge_if_due(ring, first, Instant::now()) && room.free(first) > 0 {
            return Ok(());
        }
        return Err(PublishError::RingFull {
            name: ring.name().to_owned(),
            published: done,
            requested: count,
        });
    }
    let deadline = patience.deadline;
    let timeout = || PublishError::Timeout {
        name: ring.name().to_owned(),
        published: done,
        requested: count,
    };
    let mut waiter = Waiter::new(strategy);
    let mut parked = None;
    let mut slice_end = patience.slice.map(|s| Instant::now() + s);
    let mut polls = 0u32;
    loop {
        // One poll of the strategy is one look at the positions. Each look
        // costs the readers a cache miss, so a spinning publisher looks
        // every PUBLISHER_POLL_PAUSES pauses, not flat out.
        let step = waiter.next_step();
        let first = next();
        room.rescan(ring, None);
        if room.free(first) >= resume_at {
            return Ok(());
        }
        // The clock costs more than a look: spinners read it every
        // CLOCK_EVERY polls (deadline, judging, the mapping's health).
        if step != Step::Spin || polls % CLOCK_EVERY == 0 {
            let now = Instant::now();
            if room.judge_if_due(ring, first + resume_at - 1, now) && room.free(first) >= resume_at
            {
                return Ok(());
            }
            if deadline.is_some_and(|d| now >= d) {
                return if room.free(first) > 0 {
                    Ok(())
                } else {
                    Err(timeout())
                };
            }
            ring.usable()?;
            if patience.gives_up(now, &mut slice_end) {
                return Err(timeout());
            }
        }
        polls = polls.wrapping_add(1);
        match step {
            Step::Spin => {
                for _ in 0..PUBLISHER_POLL_PAUSES {
                    std::hint::spin_loop();
                }
            }
            Step::Yield => std::thread::yield_now(),
            Step::Park => {
                let until = [deadline, slice_end, Some(Instant::now() + JUDGE_EVERY)]
                    .into_iter()
                    .flatten()
                    .min();
                parked
                    .get_or_insert_with(|| ring.register_space_waiter())
                    .sleep(until, || {
                        // Positions only: no rescan here (it needs &mut).
                        let limit = room::limit(slowest_active(ring), ring.layout().watermark);
                        room::room(next(), limit, resume_at) >= resume_at
                    });
            }
        }
    }
}
