//! How long a publish may wait, and what it does while it waits: the one
//! description of patience that the bounded wait for room
//! ([`super::bounded`]) and the multi-producer wait for a slot's previous lap
//! ([`super::multi`]) both honour.

use std::time::{Duration, Instant};

/// How long a publish may wait, and what it does while it waits.
///
/// A publish waits for two things: room in a bounded ring that is full
/// (only with `wait_for_room`), and, on multi-producer rings, the producer
/// of the previous lap of a slot it claimed (normally nanoseconds; longer
/// only while that producer is descheduled or stopped: a dead one is
/// recovered after the ring's claim deadline). Both waits end at `deadline`
/// and when `between` (called every `slice` of waiting) returns `false`.
/// A claimed sequence cannot be given back: one still unwritten when the
/// wait ends is abandoned (subscribers count it lost once its slot frees up)
/// and the publish fails with [`crate::PublishError::SlotStalled`].
pub struct Patience<'a> {
    /// Bounded rings: wait for room when the ring is full; `false`: fail
    /// with [`crate::PublishError::RingFull`] at once.
    pub wait_for_room: bool,
    /// When to give up waiting (`None`: never); then fail with
    /// [`crate::PublishError::Timeout`] (room) or [`crate::PublishError::SlotStalled`].
    pub deadline: Option<Instant>,
    /// How often to call `between` while waiting.
    pub slice: Option<Duration>,
    /// Called between slices; `false` ends the wait as the deadline would.
    /// Bindings use it to run signal handlers.
    pub between: Option<&'a mut dyn FnMut() -> bool>,
}

impl Patience<'_> {
    /// Never wait for room (a full bounded ring fails at once); wait for a
    /// slot's previous lap as long as it takes.
    pub const fn never() -> Patience<'static> {
        Patience {
            wait_for_room: false,
            deadline: None,
            slice: None,
            between: None,
        }
    }

    /// Wait as long as it takes.
    pub const fn forever() -> Patience<'static> {
        Self::until(None)
    }

    /// Wait until `deadline` (`None`: forever).
    pub const fn until(deadline: Option<Instant>) -> Patience<'static> {
        Patience {
            wait_for_room: true,
            deadline,
            slice: None,
            between: None,
        }
    }

    /// One look at the clock while waiting: whether to give up now (the
    /// deadline passed, or `between` said stop at the end of a slice).
    /// `slice_end`: when the current slice ends.
    pub(super) fn gives_up(&mut self, now: Instant, slice_end: &mut Option<Instant>) -> bool {
        if self.deadline.is_some_and(|d| now >= d) {
            return true;
        }
        if let (Some(end), Some(slice), Some(between)) =
            (*slice_end, self.slice, self.between.as_mut())
        {
            if now >= end {
                if !between() {
                    return true;
                }
                *slice_end = Some(Instant::now() + slice);
            }
        }
        false
    }
}
