//! Readiness for event loops (asyncio, uvloop): an eventfd that becomes
//! readable when a subscriber can read.
//!
//! An event loop can only watch file descriptors, and the publisher (another
//! process) cannot write to this process's eventfd. So a helper thread bridges
//! the two: when armed with a position it parks on the ring's futex exactly
//! like a parked subscriber, and once the message at that position can be read
//! (or the stream ended) it writes the eventfd and disarms. The eventfd stays
//! readable until cleared (level-triggered), so an event loop cannot miss it;
//! a stale signal only causes a spurious wake-up, after which the caller
//! polls the ring, finds nothing, and arms again.

use crate::error::{Result, RingFault};
use crate::shm::ring::{RingMap, StuckWatch};
use crate::subscribe::stage::{self, Dependencies};
use crate::subscribe::DeathWatch;
use crate::sys::eventfd::EventFd;
use crate::sys::futex;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// State shared between a subscriber and its readiness thread.
struct Shared {
    ring: Arc<RingMap>,
    record: usize,
    /// The subscriber's dependency barrier, if it is gated.
    deps: Option<Dependencies>,
    /// Which publisher deaths the subscriber reported.
    death: Arc<DeathWatch>,
    /// Position to wait for, set when arming.
    position: AtomicU64,
    /// 1 while armed; also the futex word the idle thread sleeps on.
    armed: AtomicU32,
    stop: AtomicBool,
    efd: EventFd,
}

/// An eventfd plus the thread that signals it.
pub(crate) struct ReadinessFd {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl ReadinessFd {
    pub(crate) fn new(
        ring: Arc<RingMap>,
        record: usize,
        deps: Option<Dependencies>,
        death: Arc<DeathWatch>,
    ) -> Result<Self, RingFault> {
        let efd =
            EventFd::new().map_err(|e| RingFault::io("create an eventfd for", ring.path(), e))?;
        let shared = Arc::new(Shared {
            ring,
            record,
            deps,
            death,
            position: AtomicU64::new(0),
            armed: AtomicU32::new(0),
            stop: AtomicBool::new(false),
            efd,
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ringcast-readiness".into())
            .spawn(move || run(&worker))
            .map_err(|e| RingFault::io("start the readiness thread for", shared.ring.path(), e))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.shared.efd.as_raw_fd()
    }

    /// Signal the fd once the message at `position` can be read.
    pub(crate) fn arm(&self, position: u64) {
        self.shared.position.store(position, Ordering::Relaxed);
        self.shared.armed.store(1, Ordering::Release);
        futex::wake_all(&self.shared.armed, false);
    }

    /// Consumes a pending signal, if any.
    pub(crate) fn clear(&self) {
        self.shared.efd.clear();
    }
}

impl ReadinessFd {
    /// Drops this value in a forked child, where the thread does not exist:
    /// nothing is stopped or joined, only the child's descriptor is closed.
    pub(crate) fn abandon(mut self) {
        drop(self.thread.take());
        self.shared.stop.store(true, Ordering::Release);
    }
}

impl Drop for ReadinessFd {
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return; // abandoned
        };
        self.shared.stop.store(true, Ordering::Release);
        // A non-zero `armed` makes a sleep that is about to start return at once.
        self.shared.armed.store(2, Ordering::Release);
        futex::wake_all(&self.shared.armed, false);
        // The thread may be parked on the ring: wake the ring's sleepers
        // (others just look again and park anew).
        self.shared.ring.wake_all_parked();
        let _ = thread.join();
    }
}

fn run(s: &Shared) {
    let stopped = || s.stop.load(Ordering::Acquire);
    while !stopped() {
        if s.armed.load(Ordering::Acquire) == 0 {
            futex::wait(&s.armed, 0, Some(Duration::from_secs(1)), false);
            continue;
        }
        let position = s.position.load(Ordering::Relaxed);
        // A revoked mapping (see `crate::shm::guard`) or a publisher's unreported
        // death signals too: the caller's next read or check reports it.
        let done = || {
            stage::readable(&s.ring, s.deps.as_ref(), position)
                || s.ring.ended_at(position)
                || s.ring.usable().is_err()
        };
        let dead = || s.death.unreported(&s.ring).is_some();
        if !done() && !dead() {
            let parked = s.ring.register_parked(s.record);
            let multi = s.ring.layout().multi_producer();
            let mut stuck = StuckWatch::new();
            // The publisher's death is looked at after each sleep (parks
            // end within MAX_PARK), not before every look at the ring.
            while !stopped() && !done() && !dead() {
                // Multi-producer: wake up in time to recover a slot whose
                // producer died (nobody would wake us for it).
                let recheck = multi.then(|| Instant::now() + s.ring.claim_deadline());
                parked.sleep(recheck, done);
                stuck.nothing_at(&s.ring, position, Some(Instant::now()));
            }
        }
        if stopped() {
            return;
        }
        s.armed.store(0, Ordering::Release);
        s.efd.signal();
    }
}
