//! Parking and waking across processes: what waiting subscribers (and
//! readiness threads) ask of a ring and how the publisher wakes them; on
//! bounded rings, the mirror-image handshake between blocked publishers and
//! readers that free space.

use super::RingMap;
use crate::format::layout::PUBLISHER_CLOSED;
use crate::protocol::stamp::{self, Observed};
use crate::protocol::Slots;
use crate::sys::{futex, membarrier};
use crate::wait::{MAX_PARK, UNFENCED_PARK};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

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
        let fenced = membarrier::reader_side();
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
        membarrier::publisher_side(registered);
        self.header().notify.0.waiters.load(Ordering::Relaxed) == 0
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

    /// Reader side, after storing a new position: wake publishers parked
    /// waiting for space, if any. `registered`: see [`barrier`].
    #[inline]
    pub(crate) fn wake_space_waiters(&self, registered: bool) {
        let table = &self.header().table.0;
        membarrier::publisher_side(registered);
        if table.space_waiters.load(Ordering::Relaxed) != 0 {
            table.space_seq.fetch_add(1, Ordering::Release);
            futex::wake_all(&table.space_seq, true);
        }
    }

    /// Counts the caller among the publishers waiting for space.
    pub(crate) fn register_space_waiter(&self) -> SpaceParked<'_> {
        self.header()
            .table
            .0
            .space_waiters
            .fetch_add(1, Ordering::SeqCst);
        SpaceParked {
            ring: self,
            fenced: membarrier::reader_side(),
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
        sleep_any(std::slice::from_ref(self), deadline, done)
    }
}

/// [`Parked::sleep`] on several rings at once: until any of them wakes its
/// parked readers (each wake-up word is loaded before `done` is asked, as
/// for one ring), `deadline` passes or [`MAX_PARK`] elapses.
pub(crate) fn sleep_any(
    parked: &[Parked<'_>],
    deadline: Option<Instant>,
    done: impl FnOnce() -> bool,
) {
    let seen: Vec<(&AtomicU32, u32)> = parked
        .iter()
        .map(|p| {
            let word = &p.ring.header().notify.0.wake_seq;
            (word, word.load(Ordering::Acquire))
        })
        .collect();
    if done() {
        return;
    }
    let fenced = parked.iter().all(|p| p.fenced);
    let mut timeout = if fenced { MAX_PARK } else { UNFENCED_PARK };
    if let Some(d) = deadline {
        timeout = timeout.min(d.saturating_duration_since(Instant::now()));
    }
    if !timeout.is_zero() {
        futex::wait_any(&seen, Some(timeout), true, UNFENCED_PARK);
    }
}

/// A publisher counted among the ring's space waiters (uncounted on drop):
/// the mirror image of [`Parked`], with readers storing positions and
/// publishers parking.
pub(crate) struct SpaceParked<'a> {
    ring: &'a RingMap,
    fenced: bool,
}

impl SpaceParked<'_> {
    /// Sleeps until a reader moves, `until` passes, or [`MAX_PARK`] elapses;
    /// returns at once when `has_room()` already holds.
    pub(crate) fn sleep(&self, until: Option<Instant>, has_room: impl FnOnce() -> bool) {
        let table = &self.ring.header().table.0;
        let seen = table.space_seq.load(Ordering::Acquire);
        if has_room() {
            return;
        }
        let mut timeout = if self.fenced { MAX_PARK } else { UNFENCED_PARK };
        if let Some(d) = until {
            timeout = timeout.min(d.saturating_duration_since(Instant::now()));
        }
        if !timeout.is_zero() {
            futex::wait(&table.space_seq, seen, Some(timeout), true);
        }
    }
}

impl Drop for SpaceParked<'_> {
    fn drop(&mut self) {
        decrement(&self.ring.header().table.0.space_waiters, 1);
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
pub(super) fn decrement(counter: &std::sync::atomic::AtomicU32, n: u32) {
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}
