//! Multi-producer rings: recovery from producers that died between claiming
//! a sequence and committing it (TLA+ MpmcRing: `ProducerRecovers`,
//! `ReaderRecovers`).

use super::RingMap;
use crate::format::layout::CLAIM_PENDING;
use crate::protocol::stamp::{self, Observed};
use crate::protocol::Slots;
use crate::sys::liveness;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl RingMap {
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

    /// Multi-producer rings: how long a claimed slot is waited on before its
    /// producer's liveness is checked.
    pub(crate) fn claim_deadline(&self) -> Duration {
        Duration::from_nanos(self.layout.claim_timeout_ns)
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
