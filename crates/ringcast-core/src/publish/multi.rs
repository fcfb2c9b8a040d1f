//! One of several producers (TLA+ MpmcRing). Each holds a record in the
//! ring's producer table (its byte lock tells survivors it is alive) and
//! claims sequences on the shared cursor: it announces a claim in its record
//! first, so that a reader who sees the cursor past the claimed sequences
//! also sees that a live producer owns them. It then waits, slot by slot,
//! until the slot holds the completed previous lap (`WaitPreviousLap`),
//! enters it (`Begin`), writes and commits. A producer that died after
//! claiming is recovered by survivors after the ring's claim deadline: its
//! slots are declared lost (see `RingMap::recover_abandoned`).

use super::bounded::Room;
use super::patience::Patience;
use crate::error::{PublishError, Result, RingFault};
use crate::format::layout::{CLAIM_IDLE, CLAIM_PENDING};
use crate::protocol::{self, stamp, Entered, Slots};
use crate::shm::ring::{Recovery, RingMap};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often a producer stuck entering a slot looks again for dead
/// producers of its earlier laps, once the claim deadline has passed.
const RECOVER_EVERY: Duration = Duration::from_millis(10);

/// A producer's side of a multi-producer ring.
pub(super) struct Multi {
    /// Our record in the producer table.
    pub(super) index: usize,
    /// Bounded rings: the cached room (see [`super::bounded`]).
    pub(super) room: Option<Room>,
    /// Test hook: stop this process (SIGSTOP) after entering the slot of
    /// this sequence, to simulate a producer dying mid-write.
    #[cfg(feature = "test-hooks")]
    pub(super) stop_after_claim: Option<u64>,
    /// Test hook: stop this process (SIGSTOP) while closing, once the other
    /// producers no longer count this one and before it closes the stream.
    #[cfg(feature = "test-hooks")]
    pub(super) stop_while_leaving: bool,
}

/// Why a write stopped before its claim was done.
#[derive(Debug)]
pub(super) enum Stop {
    /// The claim got a sequence beyond any a ring reaches: the shared cursor
    /// was damaged.
    CursorDamaged { seq: u64 },
    /// Sequence `seq` could not be entered; the claim `seq .. end` was
    /// abandoned after `written` messages of it went out.
    Abandoned {
        why: Blocked,
        seq: u64,
        end: u64,
        written: u64,
    },
}

/// Why a producer could not enter the slot of a message it claimed.
#[derive(Debug)]
pub(super) enum Blocked {
    /// The patience ran out while a live producer held the previous lap.
    Stalled,
    /// The slot holds a stamp no protocol step leaves there.
    Damaged { observed: u64 },
    /// The ring's mapping was revoked (see [`crate::shm::guard`]).
    Revoked(RingFault),
}

impl Multi {
    /// Claims up to `want` sequences that may be written now: `(first, n)`
    /// with `n >= 1`, or `None` when a bounded ring has no room.
    #[inline]
    pub(super) fn reserve(&mut self, ring: &RingMap, want: u64) -> Option<(u64, u64)> {
        let rec = ring.producer(self.index);
        let Some(room) = &mut self.room else {
            // Claim: announce first, so that a reader who sees the cursor
            // past our sequences also sees that a live producer owns them.
            // TLA+ (MpmcRing): Announce, Claim, RecordClaim.
            rec.claim.store(CLAIM_PENDING, Ordering::Relaxed);
            let first = protocol::claim(ring, want);
            rec.claim_end.store(first + want, Ordering::Relaxed);
            rec.claim.store(first, Ordering::Release);
            return Some((first, want));
        };
        loop {
            // Bounded: claim only what fits, with a compare-exchange, so a
            // claimed sequence never waits for room (it could not be given
            // back on a timeout).
            let first = ring.cursor().load(Ordering::Acquire);
            let n = room.room(ring, first, want);
            if n == 0 {
                return None;
            }
            rec.claim_end.store(first + n, Ordering::Relaxed);
            rec.claim.store(first, Ordering::Release);
            if ring
                .cursor()
                .compare_exchange_weak(first, first + n, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Some((first, n));
            }
            rec.claim.store(CLAIM_IDLE, Ordering::Release);
        }
    }

    /// Writes the claimed messages `first .. first + n` (message `first + j`
    /// is `msg_at(j)`, published at `time_at(j)`), then ends the claim. On a [`Stop`] the rest of the
    /// claim is given up: our record stops claiming it, so once the slots
    /// free up their messages are declared lost like a dead producer's.
    #[inline]
    pub(super) fn write<'m>(
        &mut self,
        ring: &RingMap,
        first: u64,
        n: u64,
        msg_at: impl Fn(u64) -> &'m [u8],
        time_at: impl Fn(u64) -> u64,
        patience: &mut Patience<'_>,
    ) -> Result<(), Stop> {
        for j in 0..n {
            let seq = first + j;
            if seq > stamp::MAX_SEQ {
                let rec = ring.producer(self.index);
                rec.claim.store(CLAIM_IDLE, Ordering::Release);
                return Err(Stop::CursorDamaged { seq });
            }
            let entered = match enter(ring, seq, patience) {
                Ok(entered) => entered,
                Err(why) => {
                    self.end_claim(ring, j);
                    return Err(Stop::Abandoned {
                        why,
                        seq,
                        end: first + n,
                        written: j,
                    });
                }
            };
            #[cfg(feature = "test-hooks")]
            if self.stop_after_claim == Some(seq) {
                crate::sys::process::stop_self();
            }
            entered.finish(msg_at(j), time_at(j));
        }
        self.end_claim(ring, n);
        Ok(())
    }

    /// Counts `written` messages of the claim as ours and ends the claim.
    fn end_claim(&self, ring: &RingMap, written: u64) {
        let rec = ring.producer(self.index);
        // Only we write our record: no read-modify-write needed.
        let published = rec.published.load(Ordering::Relaxed);
        rec.published.store(published + written, Ordering::Relaxed);
        // TLA+ (MpmcRing): Release.
        rec.claim.store(CLAIM_IDLE, Ordering::Release);
    }

    /// Messages this producer has published.
    pub(super) fn published(&self, ring: &RingMap) -> u64 {
        ring.producer(self.index).published.load(Ordering::Relaxed)
    }
}

impl Stop {
    /// The error a publish that stopped reports; `published` of the
    /// `requested` messages of the call went out before the stop.
    pub(super) fn into_error(
        self,
        ring: &RingMap,
        published: usize,
        requested: usize,
    ) -> PublishError {
        match self {
            Stop::CursorDamaged { seq } => RingFault::corrupt(
                ring.path(),
                format!("its cursor {seq} is beyond any possible sequence"),
            )
            .into(),
            Stop::Abandoned {
                why,
                seq,
                end,
                written,
            } => {
                let published = published + written as usize;
                match why {
                    Blocked::Revoked(e) => e.into(),
                    Blocked::Damaged { observed } => RingFault::corrupt(
                        ring.path(),
                        format!(
                            "the slot of message {seq} holds stamp {observed:#x}, which no \
                             producer leaves in a slot whose next message is claimed \
                             ({published} of the {requested} messages were published)"
                        ),
                    )
                    .into(),
                    Blocked::Stalled => PublishError::SlotStalled {
                        name: ring.name().to_owned(),
                        seq,
                        abandoned: end - seq,
                        published,
                        requested,
                    },
                }
            }
        }
    }

    /// Whether subscribers parked on the abandoned slots must be woken to
    /// learn of the loss.
    pub(super) fn wakes_readers(&self) -> bool {
        matches!(self, Stop::Abandoned { .. })
    }
}

/// `WaitPreviousLap` then `Begin`: enters the slot of `seq` (claimed by us)
/// once it holds the completed previous lap. That lap's producer is normally
/// a few nanoseconds from committing; if it died, the slot is declared lost
/// after the ring's claim deadline and we go on.
#[inline]
fn enter<'r>(
    ring: &'r RingMap,
    seq: u64,
    patience: &mut Patience<'_>,
) -> Result<Entered<'r>, Blocked> {
    match protocol::try_enter(ring, seq) {
        Some(entered) => Ok(entered),
        None => enter_slow(ring, seq, patience),
    }
}

/// TLA+ (MpmcRing): `Enter` retried, and `ProducerRecovers` after the claim
/// deadline (then every [`RECOVER_EVERY`]). An error when `patience` ran out
/// first (a live producer holds the previous lap) or the slot holds what no
/// producer can have left there.
#[cold]
fn enter_slow<'r>(
    ring: &'r RingMap,
    seq: u64,
    patience: &mut Patience<'_>,
) -> Result<Entered<'r>, Blocked> {
    let since = Instant::now();
    let mut recover_at = since + ring.claim_deadline();
    let mut slice_end = patience.slice.map(|s| since + s);
    let mut polls = 0u32;
    loop {
        // Look (loads) until it seems free, then try to take it.
        if protocol::previous_lap_done(ring, seq) {
            if let Some(entered) = protocol::try_enter(ring, seq) {
                return Ok(entered);
            }
        }
        polls = polls.wrapping_add(1);
        if polls < 1000 {
            std::hint::spin_loop();
            continue;
        }
        if polls < 1100 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
        let now = Instant::now();
        ring.usable().map_err(Blocked::Revoked)?;
        if now >= recover_at {
            // Never our own `seq`: only earlier laps of the slot.
            if let Recovery::Damaged { observed } = ring.recover_abandoned(seq, false) {
                return Err(Blocked::Damaged { observed });
            }
            recover_at = now + RECOVER_EVERY;
        }
        if patience.gives_up(now, &mut slice_end) {
            return Err(Blocked::Stalled);
        }
    }
}
