//! Waiting for the next message: one subscriber or many at once
//! ([`wait_any`]), the death of the publisher reported once per publisher,
//! and readiness descriptors for event loops.

use super::stage::Dependencies;
use super::{evicted, stage, Subscriber};
use crate::error::{RecvError, Result};
use crate::shm::ring::{RingMap, StuckWatch};
use crate::subscribe::readiness::ReadinessFd;
use crate::wait::{Step, Waiter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    pub(crate) fn report(&self, ring: &RingMap, pid: u32, generation: u64) -> RecvError {
        self.reported.store(generation + 1, Ordering::Release);
        RecvError::PublisherDied {
            name: ring.name().to_owned(),
            pid,
        }
    }
}

/// How long a blocking wait runs before it first asks whether the publisher
/// died (a lock test), and how often after that: never in the way of a
/// message that arrives within the first millisecond.
pub(super) const DEATH_CHECK_AFTER: Duration = Duration::from_millis(1);

pub(super) const DEATH_CHECK_EVERY: Duration = Duration::from_millis(50);

/// A subscriber's position on its ring, for waiting without the subscriber.
#[derive(Clone)]
pub struct WaitHandle {
    ring: Arc<RingMap>,
    record: usize,
    position: u64,
    deps: Option<Dependencies>,
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
    /// registered across slices. Fails with [`RecvError::Closed`] once the
    /// publisher has closed the ring and everything has been read, and with
    /// [`RecvError::PublisherDied`] (once per publisher) when it died instead.
    pub fn wait(
        &self,
        deadline: Option<Instant>,
        waiter: &mut Waiter,
        slice: Option<Duration>,
        between: impl FnMut() -> bool,
    ) -> Result<WaitEnd, RecvError> {
        match wait_any(std::slice::from_ref(self), deadline, waiter, slice, between) {
            Ok(AnyEnd::Ready(_)) if self.readable() => Ok(WaitEnd::Ready),
            Ok(AnyEnd::Ready(_)) => Err(RecvError::Closed {
                name: self.ring.name().to_owned(),
            }),
            Ok(AnyEnd::Deadline) => Ok(WaitEnd::Deadline),
            Ok(AnyEnd::Stopped) => Ok(WaitEnd::Stopped),
            Err((_, e)) => Err(e),
        }
    }

    /// The message at the handle's position can be read (or a lap detected).
    pub(super) fn readable(&self) -> bool {
        stage::readable(&self.ring, self.deps.as_ref(), self.position)
    }

    /// Nothing more to wait for: a message, or the end of the stream.
    pub(super) fn settled(&self) -> bool {
        self.readable() || self.ring.ended_at(self.position)
    }

    /// What makes waiting on this handle pointless other than a message:
    /// its mapping was revoked, it was evicted, or (looked at only when
    /// `deaths`) its publisher died and nothing is left to read.
    pub(super) fn trouble(&self, deaths: bool) -> Result<(), RecvError> {
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
) -> Result<AnyEnd, (usize, RecvError)> {
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
                // Wake for the next death check too: a parked waiter with a
                // deadline (or none) would otherwise sleep through its
                // publisher's death, and a caller polling with short
                // deadlines would never be told.
                let until = [deadline, slice_end, recheck, Some(death_check)]
                    .into_iter()
                    .flatten()
                    .min();
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

impl Subscriber {
    /// Waits for a message until `deadline` (`None`: forever), following
    /// `waiter`'s strategy. Fails with [`RecvError::Timeout`] at the deadline and
    /// with [`RecvError::Closed`] once the publisher has closed and all is read.
    pub fn wait_readable(
        &mut self,
        deadline: Option<Instant>,
        waiter: &mut Waiter,
    ) -> Result<(), RecvError> {
        self.commit();
        match self.wait_handle().wait(deadline, waiter, None, || true)? {
            WaitEnd::Ready => Ok(()),
            WaitEnd::Deadline | WaitEnd::Stopped => Err(RecvError::Timeout),
        }
    }

    /// What a wait needs, detached from the subscriber: bindings wait on it
    /// without holding the subscriber itself (so it can be closed meanwhile).
    pub fn wait_handle(&self) -> WaitHandle {
        WaitHandle {
            ring: self.ring.clone(),
            record: self.record,
            position: self.pos.next,
            deps: self.deps.clone(),
            death: self.death.clone(),
        }
    }

    /// Whether a read now would deliver a message or detect a lap (cheap: one
    /// stamp load).
    #[inline]
    pub fn available(&self) -> bool {
        stage::readable(&self.ring, self.deps.as_ref(), self.pos.next)
    }

    /// The publisher closed the ring and this subscriber has read everything.
    pub fn ended(&self) -> bool {
        self.ring.ended_at(self.pos.next)
    }

    /// A file descriptor for event loops that becomes readable when this
    /// subscriber can read (or the stream ended), once armed with
    /// [`Subscriber::arm_readiness`]. Created on first use; it runs one
    /// helper thread that parks on the ring on the subscriber's behalf.
    pub fn readiness_fd(&mut self) -> Result<std::os::fd::RawFd, RecvError> {
        if self.readiness.is_none() {
            self.readiness = Some(ReadinessFd::new(
                self.ring.clone(),
                self.record,
                self.deps.clone(),
                self.death.clone(),
            )?);
        }
        Ok(self.readiness.as_ref().expect("just created").fd())
    }

    /// Asks for the readiness fd to become readable as soon as the message
    /// at the current position can be read (at once if it already can).
    pub fn arm_readiness(&mut self) -> Result<(), RecvError> {
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

    /// Fails with [`RecvError::PublisherDied`] if the publisher died without
    /// closing the ring, this subscriber has read everything it published,
    /// and that was not reported yet (then it counts as reported). For event
    /// loops, which wait on [`Subscriber::readiness_fd`] instead of
    /// [`Subscriber::wait_readable`]. A lock test: not for hot paths.
    pub fn check_publisher(&self) -> Result<(), RecvError> {
        match self.death.unreported(&self.ring) {
            Some((pid, generation)) if !self.available() => {
                Err(self.death.report(&self.ring, pid, generation))
            }
            _ => Ok(()),
        }
    }
}
