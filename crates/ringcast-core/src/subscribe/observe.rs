//! Observers of every message a subscriber reads: the hook through which
//! latency recording (crate `ringcast-latency`) sees publish and receive
//! times without the ring core depending on a histogram library.
//!
//! A subscriber without an observer pays one `Option` test per read; with
//! one, one clock read per receive call (a batch reads the clock once, when
//! its first message is read) and one dynamic call per message.

use super::Subscriber;
use crate::error::ArgumentError;
use std::any::Any;

/// Told the publish time and the receive time of every message its
/// subscriber reads (both ns on [`crate::sys::clock`]); only rings with
/// timestamps have observers.
pub trait ReceiveObserver: Any + Send + Sync {
    /// One message read: published at `published_ns`, read at `received_ns`.
    fn observe(&mut self, published_ns: u64, received_ns: u64);

    /// This observer as `Any`, so its owner can get its own type back.
    fn as_any(&self) -> &dyn Any;

    /// This observer as `Any`, mutably.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl Subscriber {
    /// Hands every message read from now on to `observer`, replacing any
    /// observer; `None` stops observing. Fails on rings without timestamps.
    pub fn set_observer(
        &mut self,
        observer: Option<Box<dyn ReceiveObserver>>,
    ) -> Result<(), ArgumentError> {
        if observer.is_some() && !self.ring.layout().timestamps() {
            return Err(ArgumentError::LatencyWithoutTimestamps {
                name: self.ring.name().to_owned(),
            });
        }
        self.observer = observer;
        Ok(())
    }

    /// The observer, while observing.
    pub fn observer(&self) -> Option<&dyn ReceiveObserver> {
        self.observer.as_deref()
    }

    /// The observer, mutably.
    pub fn observer_mut(&mut self) -> Option<&mut dyn ReceiveObserver> {
        self.observer.as_deref_mut()
    }

    /// Tells the observer, if any, about the message just read; `now` is the
    /// receive time, read from the clock if still 0 (so that a batch reads
    /// the clock once).
    #[inline]
    pub(super) fn observe_now(&mut self, now: &mut u64) {
        if let Some(observer) = &mut self.observer {
            if *now == 0 {
                *now = crate::sys::clock::now_ns();
            }
            observer.observe(self.pos.time, *now);
        }
    }
}
