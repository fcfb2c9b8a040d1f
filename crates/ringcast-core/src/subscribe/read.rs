//! Reading: one message or a batch of rows, lap and loss accounting,
//! recovery of slots abandoned by dead producers, damage checks, stage
//! progress, and the observer's view of each message.

use super::{evicted, is_evicted, Subscriber};
use crate::error::{ArgumentError, RecvError, Result, RingFault};
use crate::protocol::stamp::{self, Observed, MAX_SEQ};
use crate::protocol::{self, ReadFault, SlotRead, Slots};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Most dead producers' slots one read recovers before returning (see
/// [`StuckWatch`]); the next read goes on.
pub(super) const MAX_RECOVERIES_PER_READ: u32 = 4096;

/// How long a slot may claim a lap beyond the cursor while being written
/// before the ring is taken for damaged (see
/// [`protocol::ReadFault::Unverified`]): stores become visible to other
/// CPUs in nanoseconds.
pub(super) const UNVERIFIED_GRACE: Duration = Duration::from_millis(10);

impl Subscriber {
    /// Stages: publishes that every message read so far is processed, so
    /// that subscribers gated after this stage may read them. Every receive
    /// and wait does this first (a message counts as processed once the
    /// stage asks for the next one); call it directly to release messages
    /// earlier. A no-op for subscribers that are not stages.
    #[inline]
    pub fn commit(&mut self) {
        // Most subscribers are not stages: one test, no call.
        if self.stage.is_some() {
            self.commit_stage();
        }
    }

    /// [`Subscriber::commit`] of a stage.
    #[inline(never)]
    fn commit_stage(&mut self) {
        let next = self.pos.next;
        if let Some((_, committed)) = &mut self.stage {
            if *committed != next {
                *committed = next;
                // Release: the work on every message below `next` happens
                // before a gated reader that sees this reads them.
                protocol::commit_progress(&self.ring.record(self.record).processed, next);
                self.ring.wake_parked(self.commit_membarrier);
                // TLA+ (BoundedRing): `Commit` of a durable stage, then `Mirror`.
                if self.durable {
                    self.mirror();
                }
            }
        }
    }

    /// Copies position and counters into the shared subscriber record. On
    /// bounded rings this hands the slots read back to the publishers.
    /// TLA+ (BoundedRing): `Mirror`.
    #[inline]
    pub(super) fn mirror(&self) {
        let rec = self.record();
        rec.received.store(self.pos.received, Ordering::Relaxed);
        rec.lost.store(self.pos.lost, Ordering::Relaxed);
        // A durable stage holds on to what it read until it has processed it
        // (TLA+ (BoundedRing): `Mirror` publishes `committed` for `Durable`).
        let released = match &self.stage {
            Some((_, committed)) if self.durable => *committed,
            _ => self.pos.next,
        };
        // Release: every copy out of the slots below `released` (and, for a
        // durable stage, the work on them) happens before a publisher that
        // sees this position overwrites them.
        rec.position.store(released, Ordering::Release);
        if self.bounded {
            self.ring.wake_space_waiters(self.membarrier_registered);
        }
    }

    /// Reads the next message into `out` without waiting; `None` when caught up.
    #[inline]
    pub fn try_recv(&mut self, out: &mut [u8]) -> Result<Option<usize>, RecvError> {
        self.commit();
        let got = self.read_one(out)?;
        if got.is_some() {
            self.mirror();
            self.observe_now(&mut 0);
        }
        Ok(got)
    }

    /// Publish time (ns on [`crate::sys::clock`]) of the last message read; `None`
    /// on rings without timestamps or before the first message.
    pub fn time(&self) -> Option<u64> {
        (self.ring.layout().timestamps() && self.pos.received > 0).then_some(self.pos.time)
    }

    /// One read. The two common cases, the next message is there or not
    /// yet, take a short path; everything else (a gate, a lap, lost slots,
    /// a multi-producer ring's recovery, a fault, a revoked mapping) the
    /// full one, which reads the same slot again (nothing was consumed).
    /// The full path's set-up (its many cases) is what a spinning reader's
    /// empty poll would otherwise pay every time.
    #[inline]
    pub(super) fn read_one(&mut self, out: &mut [u8]) -> Result<Option<usize>, RecvError> {
        if self.bounded {
            // TLA+ (BoundedRing): Read, "told evicted before it reads".
            evicted(&self.ring, self.record, self.pos.next)?;
        }
        if self.deps.is_none() {
            let next = self.pos.next;
            match protocol::read_slot(self.ring.slot(next), next, out) {
                SlotRead::Copied { len, time } => {
                    self.pos.delivered(time);
                    return Ok(Some(len));
                }
                SlotRead::NotYet if self.simply_nothing() => return Ok(None),
                _ => {}
            }
        }
        self.read_fully(out)
    }

    /// [`Subscriber::read_one`]'s full path (after the eviction check).
    #[inline(never)]
    fn read_fully(&mut self, out: &mut [u8]) -> Result<Option<usize>, RecvError> {
        let mut limit = u64::MAX;
        if let Some(deps) = &self.deps {
            limit = deps.limit(&self.ring, self.pos.next);
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
    pub(super) fn read_below(
        &mut self,
        out: &mut [u8],
        limit: u64,
    ) -> Result<Option<usize>, RecvError> {
        match self.step(out, limit) {
            Ok(Some(len)) => Ok(Some(len)),
            Ok(None) => self.nothing_to_read(out, limit),
            Err(fault) => self.fault(fault, out.len()),
        }
    }

    /// One protocol read below `limit`; slots skipped (lost) are handed back
    /// in the record at once.
    #[inline]
    pub(super) fn step(
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
    pub(super) fn nothing_to_read(
        &mut self,
        out: &mut [u8],
        limit: u64,
    ) -> Result<Option<usize>, RecvError> {
        if self.simply_nothing() {
            return Ok(None);
        }
        if self.ring.layout().multi_producer() {
            return self.recover(out, limit);
        }
        // A single producer, so the magic is gone: say why.
        self.ring.usable()?;
        Ok(None)
    }

    /// Nothing to read means just that: a single producer (a multi-producer
    /// ring may have dead producers' slots to recover) and a live mapping.
    #[inline]
    fn simply_nothing(&self) -> bool {
        !self.ring.layout().multi_producer()
            && self.ring.header().magic.load(Ordering::Relaxed) != 0
    }

    /// Multi-producer rings, nothing to read: recover the slots of dead
    /// producers (TLA+ MpmcRing: ReaderRecovers, after the claim deadline
    /// or at once while the mapping is hot), a bounded number per call so
    /// that a call returns promptly whatever the ring holds.
    #[cold]
    pub(super) fn recover(
        &mut self,
        out: &mut [u8],
        limit: u64,
    ) -> Result<Option<usize>, RecvError> {
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
    pub(super) fn fault(
        &mut self,
        fault: ReadFault,
        len: usize,
    ) -> Result<Option<usize>, RecvError> {
        match fault {
            ReadFault::TooSmall(needed) => Err(RecvError::BufferTooSmall { len, needed }),
            ReadFault::BadLength(claimed) => Err(self
                .damage(format!(
                    "the slot of message {} claims {claimed} bytes in a ring of {}{}-byte messages",
                    self.pos.next,
                    if self.ring.layout().fixed_size() {
                        ""
                    } else {
                        "up to "
                    },
                    self.ring.slot_size()
                ))
                .into()),
            ReadFault::Damaged { claims, cursor } => Err(self.damaged_stamp(claims, cursor).into()),
            ReadFault::Unverified { claims, cursor } => self.unverified_lap(claims, cursor),
        }
    }

    /// The error for damaged ring memory found at this subscriber's position.
    #[cold]
    pub(super) fn damage(&self, detail: String) -> RingFault {
        RingFault::corrupt(self.ring.path(), detail)
    }

    /// The error for a slot stamp that the protocol cannot have written.
    #[cold]
    pub(super) fn damaged_stamp(&self, claims: u64, cursor: u64) -> RingFault {
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
    pub(super) fn unverified_lap(
        &mut self,
        claims: u64,
        cursor: u64,
    ) -> Result<Option<usize>, RecvError> {
        let now = Instant::now();
        let position = self.pos.next;
        match self.unverified {
            Some((at, since)) if at == position => {
                if now.saturating_duration_since(since) >= UNVERIFIED_GRACE {
                    return Err(self
                        .damage(format!(
                        "the slot of message {position} has claimed to be written with message \
                         {claims}, beyond the {cursor} messages published, for {} ms",
                        UNVERIFIED_GRACE.as_millis()
                    ))
                        .into());
                }
            }
            _ => self.unverified = Some((position, now)),
        }
        Ok(None)
    }

    /// Tells blocked publishers (through the record) that the gate, not this
    /// subscriber, holds it at its position: it is not stalled.
    #[cold]
    pub(super) fn note_gate_wait(&mut self) {
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
    ) -> Result<usize, RecvError> {
        self.read_rows(out, row, max, |i, len, _, _| lengths(i, len))
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
    ) -> Result<usize, RecvError> {
        let max = seqs.len();
        self.read_rows(out, row, max, |i, len, seq, _| {
            seqs[i] = seq;
            lengths(i, len);
        })
    }

    /// [`Subscriber::try_recv_rows_seq`] that also stores the publish time
    /// of message `i` in `times[i]` (0 on rings without timestamps): what a
    /// recorder keeps of each message. Reads at most `seqs.len().min(times.len())`.
    pub fn try_recv_rows_timed(
        &mut self,
        out: &mut [u8],
        row: usize,
        seqs: &mut [u64],
        times: &mut [u64],
        mut lengths: impl FnMut(usize, usize),
    ) -> Result<usize, RecvError> {
        let max = seqs.len().min(times.len());
        // A slot without a time word reads as time 0.
        self.read_rows(out, row, max, |i, len, seq, time| {
            seqs[i] = seq;
            times[i] = time;
            lengths(i, len);
        })
    }

    /// The batch read behind [`Subscriber::try_recv_rows`]: `delivered(i,
    /// len, seq, time)` for every row.
    #[inline]
    pub(super) fn read_rows(
        &mut self,
        out: &mut [u8],
        row: usize,
        max: usize,
        mut delivered: impl FnMut(usize, usize, u64, u64),
    ) -> Result<usize, RecvError> {
        if row == 0 {
            return Err(ArgumentError::EmptyRows.into());
        }
        self.commit();
        let (mut n, caught_up) = self.read_run(out, row, max, &mut delivered);
        // Returning here, not falling through an empty general loop, keeps an
        // empty poll at 37 instructions (48 through the loop's set-up).
        if caught_up {
            if n > 0 {
                self.mirror();
            }
            return Ok(n);
        }
        // The stretch stopped short: the rest of the batch, message by
        // message the general way.
        let mut fault = None;
        let mut now = 0;
        for chunk in out.chunks_exact_mut(row).take(max).skip(n) {
            match self.read_one(chunk) {
                Ok(Some(len)) => {
                    self.observe_now(&mut now);
                    // A read delivers the message at the position it leaves
                    // behind: skips happen before it, never after.
                    delivered(n, len, self.pos.next - 1, self.pos.time);
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

    /// A batch's common stretch: the messages that are simply there, one
    /// after the other, read slot by slot with the ring's geometry and the
    /// position in registers (what `read_one` per message reloads and
    /// stores every time). Stops at the first slot that is anything else
    /// (a lap, a lost or abandoned slot, damage, an eviction), which the
    /// caller reads again the general way: nothing is consumed there.
    /// Returns how many rows it filled and whether it stopped because the
    /// reader is caught up (the batch is then done). Gated subscribers and
    /// subscribers with an observer take the general way only.
    ///
    /// Same protocol steps as `read_one` (TLA+ BoundedRing `Read`: the
    /// eviction check before every read; RingReader `ReadStep`).
    #[inline(always)]
    fn read_run(
        &mut self,
        out: &mut [u8],
        row: usize,
        max: usize,
        delivered: &mut impl FnMut(usize, usize, u64, u64),
    ) -> (usize, bool) {
        if self.deps.is_some() || self.observer.is_some() {
            return (0, false);
        }
        let ring = &*self.ring;
        // An empty poll (the spinning reader's usual case) ends here, before
        // the stretch is set up: one stamp load a batch. Relaxed: nothing is
        // read on the strength of it (read_slot loads it again, acquiring).
        // An evicted subscriber goes on, to be told so.
        let peek = ring.slot(self.pos.next).stamp.load(Ordering::Relaxed);
        if matches!(stamp::observe(peek, self.pos.next), Observed::NotYet)
            && self.simply_nothing()
            && evicted(ring, self.record, self.pos.next).is_ok()
        {
            return (0, true);
        }
        let state = self.bounded.then(|| &ring.record(self.record).state);
        let slots = ring.slot_geometry();
        let start = self.pos.next;
        let mut next = start;
        let mut time = self.pos.time;
        let mut caught_up = false;
        for chunk in out.chunks_exact_mut(row).take(max) {
            if state.is_some_and(is_evicted) {
                break;
            }
            match protocol::read_slot(slots.slot(next), next, chunk) {
                SlotRead::Copied { len, time: t } => {
                    delivered((next - start) as usize, len, next, t);
                    time = t;
                    next += 1;
                }
                SlotRead::NotYet => {
                    caught_up = self.simply_nothing();
                    break;
                }
                _ => break,
            }
        }
        let n = next - start;
        self.pos.next = next;
        self.pos.received += n;
        self.pos.time = time;
        (n as usize, caught_up)
    }
}
