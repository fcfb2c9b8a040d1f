//! The ring's record tables: subscriber records (claimed, released, judged
//! dead by their byte locks, carrying stage names) and, on multi-producer
//! rings, producer records.

use super::notify::decrement;
use super::{unix_now_ns, RingMap};
use crate::error::{OpenError, Result, RingFault};
use crate::format::layout::{
    self, Layout, SubscriberRecord, RECORD_ACTIVE, RECORD_FREE, RECORD_JOINING,
};
use crate::format::stage_name::{self as stage, StageName};
use crate::sys::liveness;
use std::sync::atomic::Ordering;

impl RingMap {
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
    ///
    /// A dead durable stage's active record on a bounded ring is not freed:
    /// it keeps its place (only its parked count is repaired) until its
    /// stage comes back or a blocked publisher evicts it as stalled.
    pub(crate) fn release_if_dead(&self, i: usize) -> bool {
        let rec = self.record(i);
        let offset = Layout::subscriber_offset(i);
        if rec.pid.load(Ordering::Acquire) == 0 || liveness::held_by_other(&self.file, offset) {
            return false;
        }
        if !liveness::try_lock(&self.file, offset).unwrap_or(false) {
            return false;
        }
        let dead = rec.pid.load(Ordering::Acquire) != 0;
        let freed = dead && !self.keeps_place(rec);
        if freed {
            self.clean_record(rec);
        } else if dead {
            self.repair_parked(rec);
        }
        liveness::unlock(&self.file, offset);
        freed
    }

    /// Whether a record whose owner died keeps gating: a durable stage's
    /// active record on a bounded ring. TLA+ (BoundedRing): `KeepsPlace`
    /// (`ScanRecord` and `Judgeable` evict such a record like a stalled one,
    /// never release it).
    pub(crate) fn keeps_place(&self, rec: &SubscriberRecord) -> bool {
        self.layout.bounded()
            && rec.durable.load(Ordering::Relaxed) == 1
            && rec.state.load(Ordering::Acquire) == RECORD_ACTIVE
    }

    /// Takes a dead owner's parked count out of the waiter count.
    fn repair_parked(&self, rec: &SubscriberRecord) {
        let stale = rec.parked.swap(0, Ordering::AcqRel);
        if stale != 0 {
            decrement(&self.header().notify.0.waiters, stale);
        }
    }

    /// Resets a record whose owner is gone (caller holds its lock).
    pub(crate) fn clean_record(&self, rec: &SubscriberRecord) {
        let state = rec.state.swap(RECORD_FREE, Ordering::AcqRel);
        if self.layout.bounded() && state == RECORD_ACTIVE {
            self.header()
                .table
                .0
                .evictions
                .fetch_add(1, Ordering::Relaxed);
        }
        rec.memory.store(0, Ordering::Relaxed);
        rec.durable.store(0, Ordering::Relaxed);
        self.repair_parked(rec);
        rec.pid.store(0, Ordering::Release);
    }

    /// Claims a free subscriber record (or one whose owner died) and returns
    /// its index and whether it remembers `stage` (a stage resuming). The
    /// record stays `RECORD_JOINING` (gating nobody) until the caller has
    /// stored its position.
    ///
    /// A stage takes the record that carries its name, if one does (its
    /// progress is remembered there; a live owner means the name is taken:
    /// [`OpenError::StageExists`]). Anyone else takes a record that remembers no
    /// stage if there is one, so remembered progress lasts as long as the
    /// table has room, and makes a record it takes forget its stage.
    ///
    /// A durable stage taking back the record of its dead durable
    /// predecessor keeps it active, at its position: the publisher never
    /// sees the record go and overwrites nothing the predecessor had not
    /// processed.
    pub(crate) fn claim_record(
        &self,
        stage: Option<&StageName>,
        durable: bool,
    ) -> Result<(usize, bool), OpenError> {
        if let Some(name) = stage {
            if let Some(i) = find_stage(self, name) {
                if self.try_claim_record(i, durable)? {
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
                // A durable stage's place is its successor's alone.
                if self.keeps_place(self.record(i)) {
                    continue;
                }
                if self.try_claim_record(i, false)? {
                    stage::forget(self.record(i), 0);
                    return Ok((i, false));
                }
            }
        }
        Err(OpenError::SubscriberTableFull {
            name: self.name.clone(),
            max_subscribers: n as u32,
        })
    }

    /// The error for stage `name`, held by record `i`.
    pub(crate) fn stage_taken(&self, name: &StageName, i: usize) -> OpenError {
        OpenError::StageExists {
            name: self.name.clone(),
            stage: name.as_string(),
            pid: self.record(i).pid.load(Ordering::Relaxed),
        }
    }

    /// Claims subscriber record `i` if nobody alive holds it: takes its
    /// lock, cleans what a dead owner left, marks it with our pid.
    /// `take_place`: a durable stage taking its own record back keeps it
    /// active if its predecessor's place was kept (TLA+ (BoundedRing):
    /// `Takeover`).
    fn try_claim_record(&self, i: usize, take_place: bool) -> Result<bool, RingFault> {
        let offset = Layout::subscriber_offset(i);
        if self.record(i).pid.load(Ordering::Relaxed) != 0
            && liveness::held_by_other(&self.file, offset)
        {
            return Ok(false);
        }
        if !liveness::try_lock(&self.file, offset)
            .map_err(|e| RingFault::io("lock a subscriber record of", &self.path, e))?
        {
            return Ok(false);
        }
        let rec = self.record(i);
        let dead_owner = rec.pid.load(Ordering::Acquire) != 0;
        if dead_owner && take_place && self.keeps_place(rec) {
            // Still active: the publisher goes on waiting for this position.
            // TLA+ (BoundedRing): `Takeover`.
            self.repair_parked(rec);
        } else {
            if dead_owner {
                self.clean_record(rec); // its owner died: we hold its lock now
            }
            rec.state.store(RECORD_JOINING, Ordering::Relaxed);
        }
        rec.gate_wait.store(0, Ordering::Relaxed);
        rec.wait.store(0, Ordering::Relaxed); // until the new owner declares it
        rec.pid.store(std::process::id(), Ordering::Release);
        self.header()
            .table
            .0
            .records_high
            .fetch_max(i as u32 + 1, Ordering::AcqRel);
        Ok(true)
    }

    /// Gives up subscriber record `i` (claimed through this mapping).
    pub(crate) fn release_record(&self, i: usize) {
        let rec = self.record(i);
        rec.memory.store(0, Ordering::Relaxed);
        rec.durable.store(0, Ordering::Relaxed);
        rec.state.store(RECORD_FREE, Ordering::Release);
        rec.pid.store(0, Ordering::Release);
        liveness::unlock(&self.file, Layout::subscriber_offset(i));
    }

    /// Whether the owner of subscriber record `i` is alive (holds its lock).
    pub(crate) fn record_owner_alive(&self, i: usize) -> bool {
        liveness::held_by_other(&self.file, Layout::subscriber_offset(i))
    }

    /// Claims a producer record (free, or left by a dead producer).
    pub(crate) fn claim_producer(&self) -> Result<usize, OpenError> {
        let n = self.layout.max_producers as usize;
        for i in 0..n {
            let offset = self.layout.producer_offset(i);
            if !liveness::try_lock(&self.file, offset)
                .map_err(|e| RingFault::io("lock a producer record of", &self.path, e))?
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
        Err(OpenError::ProducerTableFull {
            name: self.name.clone(),
            max_producers: n as u32,
        })
    }

    /// Starts giving up producer record `i` (claimed through this mapping):
    /// the other producers stop counting it ([`RingMap::live_producers`]),
    /// but subscribers, who test the lock alone
    /// ([`RingMap::publishers_live`]), see it alive until
    /// [`RingMap::release_producer`].
    pub(crate) fn leave_producer(&self, i: usize) {
        let rec = self.producer(i);
        rec.claim.store(layout::CLAIM_IDLE, Ordering::Release);
        // SeqCst, as the loads in `live_producers`: of several producers
        // leaving at once, the last one to store here sees every other gone.
        rec.pid.store(0, Ordering::SeqCst);
    }

    /// Gives up producer record `i` (after [`RingMap::leave_producer`]).
    pub(crate) fn release_producer(&self, i: usize) {
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
                    && self.producer(i).pid.load(Ordering::SeqCst) != 0
                    && liveness::held_by_other(&self.file, self.layout.producer_offset(i))
            })
            .count()
    }
}

/// The record of `ring` that carries stage `name`, if any.
pub(crate) fn find_stage(ring: &RingMap, name: &StageName) -> Option<usize> {
    (0..ring.records_in_use()).find(|&i| name.held_by(ring.record(i)))
}
