//! The stamp-in-slot publish/read protocol, independent of where slots live.
//!
//! The same functions run on a shared-memory ring (`ring::RingMap`) and, under
//! `--cfg loom`, on in-process slots that loom model-checks. Names of the steps
//! match the actions of the TLA+ models in `tla/` (SpmcRing, MpmcRing,
//! BoundedRing and the shared reader, RingReader); `tla/README.md` maps each
//! action to the function that implements it.
//!
//! Writer (single producer): `Begin` stores the odd stamp, a release fence
//! orders it before the payload, `WritePayload` stores the words, `Commit`
//! stores the even stamp (release), `Advance` publishes the cursor (release).
//!
//! Writer (multi-producer): `Claim` takes sequences with a fetch-add (or, on
//! bounded rings, a compare-exchange) on the cursor, `WaitPreviousLap` waits
//! until the slot holds the completed previous lap, then `Begin`,
//! `WritePayload` and `Commit` as above; there is no `Advance`, the cursor
//! already counts claimed sequences. A slot whose producer died after `Claim`
//! is `DeclareLost`: a survivor moves its stamp to [`stamp::lost`] with one
//! compare-exchange, and readers skip it and count it as lost.
//!
//! Writer (single producer) declaring sequences lost: `DeclareLostRun`
//! advances the cursor over them (release) first, then `StampLost` stores
//! their [`stamp::lost`] stamps (release); see [`publish_lost`].
//!
//! Reader: `CheckStamp` loads the stamp (acquire); on the expected even value it
//! copies the payload, issues an acquire fence and `Recheck`s the stamp. If any
//! payload word came from a later write, the writer's release fence
//! synchronises with the reader's acquire fence, so the recheck must see the
//! later odd (or even) stamp: equal stamps prove the copy is whole.

pub mod copy;
pub mod room;
pub mod stamp;

use self::stamp::{Observed, SlotState};
use crate::sync::{fence, AtomicU64, Ordering};

/// One slot as seen by the protocol: stamp, payload length and payload words.
#[derive(Clone, Copy)]
pub struct SlotRef<'a> {
    /// The slot's stamp (see [`crate::protocol::stamp`]).
    pub stamp: &'a AtomicU64,
    /// Length in bytes of the payload of the message in the slot.
    pub len: &'a AtomicU64,
    /// The message's publish time (ns), on rings that carry one. Written and
    /// read like a payload word: inside the stamp's odd/even window.
    pub time: Option<&'a AtomicU64>,
    /// Payload storage; its byte length is the ring's maximum message size
    /// rounded up to whole words.
    pub words: &'a [AtomicU64],
    /// Largest valid message length (the ring's slot size).
    pub max_len: usize,
    /// Every valid message is exactly `max_len` bytes (fixed-size rings).
    pub exact: bool,
}

/// A ring of slots plus the publisher cursor.
pub trait Slots {
    /// Number of slots (a power of two).
    fn capacity(&self) -> u64;
    /// The slot that message `seq` goes into.
    fn slot(&self, seq: u64) -> SlotRef<'_>;
    /// Number of messages published so far (the next sequence to be written).
    fn cursor(&self) -> &AtomicU64;
}

/// Writes message `seq`, published at `time` (ignored by rings without
/// timestamps), into its slot and advances the cursor to `seq + 1`.
///
/// Caller guarantees: it is the only writer of this ring, `seq` is the current
/// cursor, and `msg` fits the slot.
#[inline]
pub fn publish<S: Slots + ?Sized>(ring: &S, seq: u64, msg: &[u8], time: u64) {
    write_slot(ring.slot(seq), seq, msg, time);
    // Advance
    ring.cursor().store(seq + 1, Ordering::Release);
}

/// `DeclareLostRun`, then `StampLost` per sequence (TLA+ SpmcRing): the
/// single producer declares sequences `first ..
/// first + n` lost (messages it will never have: lost upstream of a
/// bridge, say). Readers skip them and count them lost, exactly as if a
/// dead producer's claims had been declared.
///
/// The cursor goes first: it is stored (release) before any lost stamp
/// (release), the reverse of [`publish`]. A reader that acquires `lost(s)`
/// therefore loads a cursor past `s`, which is what
/// [`try_read_below`] demands of an `Abandoned` slot (it takes a lost
/// stamp the cursor does not cover for damage), and a lost stamp of a
/// later lap (`Lapped`, covered) never claims more than the cursor. A
/// reader that sees the advanced cursor but a slot's old stamp finds an
/// older lap there: `NotYet`, and it waits (a single-producer ring has no
/// stuck-slot recovery, and its wake-ups come after the stamps, from the
/// publisher). A reader copying an older lap whose relaxed recheck sees
/// the lost stamp has no ordering with the cursor store: it may load the
/// old cursor, below the lap it saw, which `try_read_below` reports as
/// `Unverified` (retried; damage only if it persists), as for a publish's
/// odd stamp. Stamps only grow: every sequence declared is at least the
/// cursor before, so above every lap its slot held.
///
/// Only the last `capacity` sequences are stamped: a slot's stamp would be
/// overwritten by a later lap of the same run anyway, and a reader that
/// expects one of the skipped sequences finds a later lap's lost stamp in
/// its slot (`Lapped`, covered by the cursor), resyncs and counts every
/// sequence it skips as lost. Bounded rings never declare more than their
/// watermark at a time, so there every sequence is stamped.
///
/// Caller guarantees: it is the only writer of this ring, `first` is the
/// current cursor and `first + n` is at most `stamp::MAX_SEQ + 1`.
#[inline]
pub fn publish_lost<S: Slots + ?Sized>(ring: &S, first: u64, n: u64) {
    let end = first + n;
    // DeclareLostRun: the cursor, before any stamp (see above).
    ring.cursor().store(end, Ordering::Release);
    for seq in end.saturating_sub(ring.capacity()).max(first)..end {
        // StampLost. Ascending: should the producer die part way, what is left
        // unstamped is the top of the run, which a takeover stamps (see
        // `Publisher::open`).
        ring.slot(seq)
            .stamp
            .store(stamp::lost(seq), Ordering::Release);
    }
}

/// A single producer taking over a ring: stamps lost the top of a
/// [`publish_lost`] run that a producer dying part way left unstamped
/// (the cursor already covers it), so that readers waiting there move on.
/// Returns how many slots it stamped.
///
/// Every sequence below the cursor was committed or declared before the
/// cursor passed it, except such a run, whose stamps are stored in
/// ascending order: the unstamped sequences are the last ones before the
/// cursor. So the scan goes down from `cursor - 1` and stops at the first
/// slot that holds its sequence (one load when nothing is missing), or a
/// ring's worth down (earlier laps of those slots are overwritten anyway).
///
/// Caller guarantees: it is the only writer of this ring.
pub fn finish_lost_run<S: Slots + ?Sized>(ring: &S) -> u64 {
    let cursor = ring.cursor().load(Ordering::Acquire);
    let mut stamped = 0;
    for seq in (cursor.saturating_sub(ring.capacity())..cursor).rev() {
        let slot = ring.slot(seq);
        if stamp::progress(slot.stamp.load(Ordering::Acquire)) >= stamp::complete(seq) {
            break;
        }
        slot.stamp.store(stamp::lost(seq), Ordering::Release);
        stamped += 1;
    }
    stamped
}

/// A slot its writer has entered (`Begin` done, its stamp odd) and not yet
/// committed. The only way to write a payload or commit, so a commit always
/// pairs with the begin of the same slot and sequence; dropping it without
/// committing leaves the slot as a dead writer would (readers recover it).
#[must_use = "an entered slot stays odd until committed"]
pub struct Entered<'a> {
    slot: SlotRef<'a>,
    seq: u64,
}

impl<'a> Entered<'a> {
    /// `WritePayload`: the length, the time (if the ring carries one) and
    /// the payload words.
    #[inline]
    pub fn write_payload(&self, msg: &[u8], time: u64) {
        debug_assert!(msg.len() <= self.slot.words.len() * 8);
        self.slot.len.store(msg.len() as u64, Ordering::Relaxed);
        if let Some(word) = self.slot.time {
            word.store(time, Ordering::Relaxed);
        }
        copy::store_bytes(self.slot.words, msg);
    }

    /// `Commit`: the message is complete; the writer is out of the slot.
    #[inline]
    pub fn commit(self) {
        self.slot
            .stamp
            .store(stamp::complete(self.seq), Ordering::Release);
    }

    /// `WritePayload` then `Commit`.
    #[inline]
    pub fn finish(self, msg: &[u8], time: u64) {
        self.write_payload(msg, time);
        self.commit();
    }

    /// The sequence being written.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// `Begin`: marks the slot as being written with message `seq`.
///
/// Caller guarantees: it is the only writer of this slot now (the single
/// producer; multi-producer owners enter with [`try_enter`]).
#[inline]
pub fn begin(slot: SlotRef<'_>, seq: u64) -> Entered<'_> {
    slot.stamp.store(stamp::writing(seq), Ordering::Relaxed);
    // Orders the odd stamp before every payload store (pairs with the
    // reader's acquire fence before its recheck).
    fence(Ordering::Release);
    Entered { slot, seq }
}

/// `Begin`, `WritePayload` and `Commit` of message `seq`.
///
/// Caller guarantees: it is the only writer of this slot now (the single
/// producer), and `msg` fits the slot.
#[inline]
pub fn write_slot(slot: SlotRef<'_>, seq: u64, msg: &[u8], time: u64) {
    begin(slot, seq).finish(msg, time);
}

/// `Claim` of a lossy multi-producer ring: takes `n` consecutive sequences,
/// returning the first. The release half orders the claimant's earlier
/// stores (its claim announcement) before the claim for whoever sees it.
#[inline]
pub fn claim<S: Slots + ?Sized>(ring: &S, n: u64) -> u64 {
    ring.cursor().fetch_add(n, Ordering::AcqRel)
}

/// `WaitPreviousLap` (one look): whether the slot of `seq` may be entered by
/// its multi-producer owner.
#[inline]
pub fn previous_lap_done<S: Slots + ?Sized>(ring: &S, seq: u64) -> bool {
    let stamp = ring.slot(seq).stamp.load(Ordering::Acquire);
    stamp::previous_lap_done(stamp, seq, ring.capacity())
}

/// `WaitPreviousLap` and `Begin` in one step, for the multi-producer owner of
/// `seq`: moves the slot's stamp from the completed (or lost) previous lap,
/// or empty on the first lap, to "writing `seq`" with a compare-exchange.
/// `None`: the previous lap is not done yet; nothing was changed.
///
/// One read-modify-write takes the slot's cache line exclusively at once;
/// a load followed by a store would fetch it twice while readers spin on it.
#[inline]
pub fn try_enter<S: Slots + ?Sized>(ring: &S, seq: u64) -> Option<Entered<'_>> {
    let slot = ring.slot(seq);
    let enter = |from| {
        slot.stamp.compare_exchange(
            from,
            stamp::writing(seq),
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
    };
    let expected = stamp::previous_lap(seq, ring.capacity());
    let entered = match enter(expected) {
        Ok(_) => true,
        // The only other "done" previous lap is one declared lost (rare: a
        // producer died).
        Err(actual) => {
            actual != expected
                && stamp::previous_lap_done(actual, seq, ring.capacity())
                && enter(actual).is_ok()
        }
    };
    if !entered {
        return None;
    }
    // As in `begin`: the odd stamp before every payload store.
    fence(Ordering::Release);
    Some(Entered { slot, seq })
}

/// `DeclareLost`: marks the slot of `seq` lost if it still holds `observed`
/// (a stamp on which readers of `seq` wait). Returns `false` when the slot
/// changed meanwhile (its message arrived, or someone else declared).
///
/// One compare-exchange and no payload: nobody is ever inside the slot on
/// the declarer's behalf, so two survivors declaring at once cannot both
/// win, and neither can touch the next lap's message.
///
/// Caller guarantees: no live producer owns or is claiming `seq` (see
/// `RingMap::recover_abandoned`).
pub fn declare_lost(slot: SlotRef<'_>, seq: u64, observed: u64) -> bool {
    slot.stamp
        .compare_exchange(
            observed,
            stamp::lost(seq),
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// Outcome of one attempt to read message `seq` from its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRead {
    /// The whole message was copied to the front of `out`.
    Copied {
        /// Its length in bytes.
        len: usize,
        /// Its publish time (0 on rings without timestamps).
        time: u64,
    },
    /// The message is not complete yet.
    NotYet,
    /// The message was overwritten by a later lap before or during the copy:
    /// the slot's stamp now claims message `by`.
    Lapped {
        /// The sequence the slot's stamp claims.
        by: u64,
        /// The stamp was a complete (or lost) one loaded with acquire
        /// ordering, which was stored (with release ordering) after its lap
        /// was claimed under the cursor: a cursor loaded now covers `by`.
        /// Not so for an odd stamp (a single producer stores it relaxed),
        /// or for the recheck's relaxed load.
        covered: bool,
    },
    /// The message is intact but longer than `out`; nothing was consumed.
    TooSmall(usize),
    /// The slot was declared lost (its producer died before committing).
    Abandoned,
    /// The stamp is valid but the stored length is impossible (larger than
    /// the slot, or not the record size of a fixed-size ring): the ring memory
    /// was damaged by something that does not follow the protocol.
    BadLength(u64),
}

/// Tries to read message `seq` from `slot` into `out`.
#[inline(always)]
pub fn read_slot(slot: SlotRef<'_>, seq: u64, out: &mut [u8]) -> SlotRead {
    // CheckStamp
    let first = slot.stamp.load(Ordering::Acquire);
    match stamp::observe(first, seq) {
        Observed::Ready => {}
        Observed::NotYet => return SlotRead::NotYet,
        Observed::Lapped => return lapped_by(first, true),
        Observed::Abandoned => return SlotRead::Abandoned,
    }
    let len = slot.len.load(Ordering::Relaxed);
    let max = slot.max_len.min(slot.words.len() * 8);
    // The length may be torn garbage until the recheck passes: bound the copy
    // by both the slot and the destination, and judge it only afterwards.
    let n = (len.min(max as u64) as usize).min(out.len());
    copy::load_bytes(&slot.words[..copy::words_for(n)], &mut out[..n]);
    let time = slot.time.map_or(0, |word| word.load(Ordering::Relaxed));
    fence(Ordering::Acquire);
    // Recheck
    let second = slot.stamp.load(Ordering::Relaxed);
    if second != first {
        // Stamps of a slot only grow: a changed stamp is a later lap.
        return lapped_by(second, false);
    }
    if len > max as u64 || (slot.exact && len != max as u64) {
        // Judged before anything is consumed, so the reader stays put.
        SlotRead::BadLength(len)
    } else if len as usize > out.len() {
        SlotRead::TooSmall(len as usize)
    } else {
        SlotRead::Copied {
            len: len as usize,
            time,
        }
    }
}

/// The [`SlotRead::Lapped`] verdict for a slot whose stamp is `stamp`;
/// `acquired`: the stamp was loaded with acquire ordering.
#[inline]
fn lapped_by(stamp: u64, acquired: bool) -> SlotRead {
    match stamp::decode(stamp) {
        SlotState::Writing(by) => SlotRead::Lapped { by, covered: false },
        SlotState::Complete(by) | SlotState::Lost(by) => SlotRead::Lapped {
            by,
            covered: acquired,
        },
        // A stamp never goes back to empty: claim what no slot can hold,
        // which the reader reports as damage.
        SlotState::Empty => SlotRead::Lapped {
            by: u64::MAX,
            covered: true,
        },
    }
}

/// A reader's position in the stream and its exact accounting.
///
/// Invariant: `received + lost == next - start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderPosition {
    /// Sequence the reader started at.
    pub start: u64,
    /// Next sequence the reader expects.
    pub next: u64,
    /// Messages delivered.
    pub received: u64,
    /// Messages skipped because the publisher lapped the reader, or because
    /// their producer died before committing them.
    pub lost: u64,
    /// Publish time of the last message delivered (0 on rings without
    /// timestamps, and before the first message).
    pub time: u64,
}

impl ReaderPosition {
    /// The message at `next`, published at `time`, was delivered.
    #[inline]
    pub fn delivered(&mut self, time: u64) {
        self.next += 1;
        self.received += 1;
        self.time = time;
    }

    /// A reader that will read `start` next.
    pub const fn starting_at(start: u64) -> Self {
        Self {
            start,
            next: start,
            received: 0,
            lost: 0,
            time: 0,
        }
    }
}

/// Why a read could not deliver a message that is in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFault {
    /// The next message needs a buffer of this many bytes; nothing consumed.
    TooSmall(usize),
    /// The slot's stored length is impossible (damaged ring memory).
    BadLength(u64),
    /// The slot of the next message claims a message that cannot be there:
    /// one of another slot, or one beyond the cursor (which every lap of a
    /// slot is claimed under before it is committed or declared lost), or
    /// the cursor itself is beyond any sequence. Damaged or hostile ring
    /// memory; nothing consumed.
    Damaged {
        /// The sequence the slot's stamp claims.
        claims: u64,
        /// The cursor as loaded after the stamp.
        cursor: u64,
    },
    /// The slot of the next message is being written with a later lap that
    /// the cursor, as loaded, does not cover yet. A single producer stores
    /// its odd stamp without release ordering, so this is not proof of
    /// damage: the cursor may merely not be visible yet. The caller retries;
    /// one that persists (real stores become visible in nanoseconds) is
    /// damage. Nothing consumed.
    Unverified {
        /// The sequence the slot's stamp claims.
        claims: u64,
        /// The cursor as loaded after the stamp.
        cursor: u64,
    },
}

/// Most messages one [`try_read_below`] call skips (declared lost, or
/// lapped) before returning `Ok(None)` with the skips counted, so that a
/// call returns promptly whatever the ring holds; the next call goes on.
pub const MAX_SKIPS_PER_READ: u32 = 1 << 16;

/// Stages (see `crate::subscribe::stage`): publishes that every message below `next`
/// has been processed. Release: the stage's work on those messages (copying
/// them out, publishing its own results) happens before a gated reader that
/// loads this progress with [`load_progress`] reads them.
#[inline]
pub fn commit_progress(progress: &AtomicU64, next: u64) {
    progress.store(next, Ordering::Release);
}

/// Gated readers: how far a stage has processed (pairs with
/// [`commit_progress`]); the reader reads only below it, with
/// [`try_read_below`].
#[inline]
pub fn load_progress(progress: &AtomicU64) -> u64 {
    progress.load(Ordering::Acquire)
}

/// Reads the reader's next message into `out`, skipping (and counting) messages
/// lost to lapping. Returns the length copied, or `None` when the reader has
/// caught up with the publisher.
#[inline]
pub fn try_read<S: Slots + ?Sized>(
    ring: &S,
    pos: &mut ReaderPosition,
    out: &mut [u8],
) -> Result<Option<usize>, ReadFault> {
    try_read_below(ring, pos, out, u64::MAX)
}

/// [`try_read`] for a gated reader: reads only messages below `limit` (the
/// sequence its upstream stages have all processed; see `crate::subscribe::stage`),
/// `None` when the next one is not below it. A lap may move the reader past
/// `limit`: the messages skipped are lost either way, and what follows
/// waits for the gate.
#[inline]
pub fn try_read_below<S: Slots + ?Sized>(
    ring: &S,
    pos: &mut ReaderPosition,
    out: &mut [u8],
    limit: u64,
) -> Result<Option<usize>, ReadFault> {
    // Counted (and bounded) only on the skipping arms: a read that delivers
    // or finds nothing pays nothing for it.
    let mut skips = 0u32;
    loop {
        if pos.next >= limit {
            return Ok(None);
        }
        match read_slot(ring.slot(pos.next), pos.next, out) {
            SlotRead::Copied { len, time } => {
                pos.delivered(time);
                return Ok(Some(len));
            }
            SlotRead::NotYet => return Ok(None),
            SlotRead::Abandoned => {
                // Declared lost by a survivor that saw the cursor past it
                // before its release compare-exchange: the cursor covers it.
                let cursor = ring.cursor().load(Ordering::Acquire);
                if cursor <= pos.next {
                    return Err(ReadFault::Damaged {
                        claims: pos.next,
                        cursor,
                    });
                }
                pos.next += 1;
                pos.lost += 1;
                skips += 1;
                if skips >= MAX_SKIPS_PER_READ {
                    return Ok(None);
                }
            }
            SlotRead::Lapped { by, covered } => {
                // Resync. Every lap of a slot is claimed under the cursor
                // before its stamp is stored (single producer: the cursor
                // reached it; multi-producer: the claim's fetch-add), and a
                // complete or lost stamp is stored with release ordering
                // after that, so once such a stamp is acquired the cursor
                // loaded now covers `by`. A stamp that claims more, or a
                // sequence of another slot, was not written by the
                // protocol: the jump stays O(1) and exact only for stamps
                // that pass this check.
                let cursor = ring.cursor().load(Ordering::Acquire);
                let capacity = ring.capacity();
                let foreign = by % capacity != pos.next % capacity || by <= pos.next;
                if foreign || cursor > stamp::MAX_SEQ || (by > cursor && covered) {
                    return Err(ReadFault::Damaged { claims: by, cursor });
                }
                if by > cursor {
                    return Err(ReadFault::Unverified { claims: by, cursor });
                }
                // `by >= pos.next + capacity` and `by <= cursor`: the jump
                // lands past `pos.next`, at most at the cursor.
                let next = stamp::resync_after_lap(pos.next, cursor, capacity);
                pos.lost += next - pos.next;
                pos.next = next;
                skips += 1;
                if skips >= MAX_SKIPS_PER_READ {
                    return Ok(None);
                }
            }
            SlotRead::TooSmall(n) => return Err(ReadFault::TooSmall(n)),
            SlotRead::BadLength(n) => return Err(ReadFault::BadLength(n)),
        }
    }
}
