//! The single producer: the only writer of its ring, so the sequence is its
//! own counter and a message is written with `Begin`, `WritePayload`,
//! `Commit` and `Advance` (TLA+ SpmcRing; BoundedRing when the ring is
//! bounded); sequences declared lost with `DeclareLostRun` and `StampLost`
//! (SpmcRing). Being the only one is enforced across processes by an
//! exclusive `flock` on the ring file, held for the publisher's lifetime
//! (see [`super::Publisher::create`]).

use super::bounded::Room;
use crate::protocol::{self, stamp};
use crate::shm::ring::RingMap;

/// The single producer's side of a ring.
pub(super) struct Single {
    /// The sequence the next message gets (mirrors the shared cursor, which
    /// only this producer moves).
    pub(super) next: u64,
    /// Bounded rings: the cached room (see [`super::bounded`]).
    pub(super) room: Option<Room>,
}

impl Single {
    /// Up to `want` sequences that may be written now: `(first, n)`, or
    /// `None` when a bounded ring has no room.
    #[inline]
    pub(super) fn reserve(&mut self, ring: &RingMap, want: u64) -> Option<(u64, u64)> {
        let n = match &mut self.room {
            Some(room) => room.room(ring, self.next, want),
            None => want,
        };
        (n > 0).then_some((self.next, n))
    }

    /// Whether `count` more sequences keep the cursor within
    /// [`stamp::MAX_SEQ`] (readers take a cursor beyond it for damage).
    #[inline]
    pub(super) fn fits(&self, count: u64) -> bool {
        self.next
            .checked_add(count)
            .is_some_and(|end| end <= stamp::MAX_SEQ)
    }

    /// Writes messages `first .. first + n` (reserved by
    /// [`Single::reserve`]); message `first + j` is `msg_at(j)`, published
    /// at `time_at(j)`.
    #[inline]
    pub(super) fn write<'m>(
        &mut self,
        ring: &RingMap,
        first: u64,
        n: u64,
        msg_at: impl Fn(u64) -> &'m [u8],
        time_at: impl Fn(u64) -> u64,
    ) {
        for j in 0..n {
            protocol::publish(ring, first + j, msg_at(j), time_at(j));
        }
        self.next = first + n;
    }

    /// Declares sequences `first .. first + n` (reserved by
    /// [`Single::reserve`]) lost: `protocol::publish_lost`.
    #[inline]
    pub(super) fn write_lost(&mut self, ring: &RingMap, first: u64, n: u64) {
        protocol::publish_lost(ring, first, n);
        self.next = first + n;
    }
}
