//! Bounded rings: how far publishers may run ahead of the slowest subscriber,
//! and when a subscriber that holds them back is evicted.
//!
//! Pure arithmetic and decisions, kept apart from the shared memory so that
//! property tests can cover them exhaustively.
//!
//! A subscriber's `position` is the next sequence it will read; every message
//! below it has been copied out. Message `seq` overwrites `seq - capacity`, so
//! a publisher may write `seq` when `seq < position + watermark` for every
//! live registered subscriber (`watermark <= capacity`): with
//! `watermark == capacity` the ring is used fully, a smaller watermark keeps
//! some slots of slack.

/// First sequence a publisher may NOT write while the slowest live
/// subscriber is at `slowest` (`None`: no subscriber gates the ring).
#[inline]
pub fn limit(slowest: Option<u64>, watermark: u64) -> u64 {
    slowest.map_or(u64::MAX, |p| p.saturating_add(watermark))
}

/// How many of `want` messages starting at `first` fit under `limit`.
#[inline]
pub fn room(first: u64, limit: u64, want: u64) -> u64 {
    limit.saturating_sub(first).min(want)
}

/// Whether a subscriber at `position` stops a publisher from writing `seq`.
#[inline]
pub fn blocks(position: u64, seq: u64, watermark: u64) -> bool {
    seq >= position.saturating_add(watermark)
}

/// What a blocked publisher remembers about a subscriber's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Owner (an identity of the record's current subscriber) and position
    /// last seen, and when (monotonic ns) they were first seen.
    seen: Option<(u64, u64, u64)>,
}

/// A blocked publisher's decision about one subscriber that blocks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep waiting for it.
    Wait,
    /// Its owner is dead: evict it now.
    EvictDead,
    /// It has not moved for the liveness limit: evict it.
    EvictStalled,
}

impl Progress {
    /// Judges a blocking subscriber (`owner` identifies who holds the
    /// record) seen at `position` at time `now_ns`. A subscriber that moved
    /// since the last look, or a new owner, starts a new grace period; one
    /// that has not moved for `liveness_ns` is evicted.
    pub fn judge(
        &mut self,
        owner: u64,
        position: u64,
        alive: bool,
        now_ns: u64,
        liveness_ns: u64,
    ) -> Verdict {
        if !alive {
            return Verdict::EvictDead;
        }
        match self.seen {
            Some((o, p, since)) if o == owner && p == position => {
                if now_ns.saturating_sub(since) >= liveness_ns {
                    Verdict::EvictStalled
                } else {
                    Verdict::Wait
                }
            }
            _ => {
                self.seen = Some((owner, position, now_ns));
                Verdict::Wait
            }
        }
    }

    /// Forgets the subscriber (it stopped blocking, left, or was replaced).
    pub fn reset(&mut self) {
        self.seen = None;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stalled_subscriber_is_evicted_after_the_limit_only() {
        let mut p = Progress::default();
        assert_eq!(p.judge(1, 10, true, 1_000, 500), Verdict::Wait);
        assert_eq!(p.judge(1, 10, true, 1_499, 500), Verdict::Wait);
        assert_eq!(p.judge(1, 11, true, 1_600, 500), Verdict::Wait, "moved");
        assert_eq!(p.judge(1, 11, true, 2_099, 500), Verdict::Wait);
        assert_eq!(p.judge(2, 11, true, 2_100, 500), Verdict::Wait, "new owner");
        assert_eq!(p.judge(2, 11, true, 2_600, 500), Verdict::EvictStalled);
        assert_eq!(p.judge(2, 11, false, 2_600, 500), Verdict::EvictDead);
        p.reset();
        assert_eq!(p.judge(2, 11, true, 9_000, 500), Verdict::Wait);
    }

    proptest! {
        /// The gate admits exactly the sequences that overwrite nothing a
        /// subscriber still needs: `seq` may be written iff no subscriber is
        /// more than `watermark - 1` messages behind it, so the slot of `seq`
        /// (which held `seq - capacity`) was already read by all of them.
        #[test]
        fn gate_never_overwrites_unread(
            positions in proptest::collection::vec(0u64..1 << 40, 0..6),
            cap_log in 1u32..20, w_frac in 1u64..=64, first in 0u64..1 << 41, want in 1u64..1 << 20,
        ) {
            let capacity = 1u64 << cap_log;
            let watermark = (capacity * w_frac).div_ceil(64).clamp(1, capacity);
            let lim = limit(positions.iter().copied().min(), watermark);
            let n = room(first, lim, want);
            prop_assert!(n <= want);
            for seq in first..first + n.min(1 << 12) {
                for &p in &positions {
                    prop_assert!(!blocks(p, seq, watermark));
                    // The overwritten message `seq - capacity` is below p.
                    prop_assert!(seq < p + capacity);
                }
            }
            // Maximal: the next sequence is refused by someone (unless all fit).
            if n < want {
                prop_assert!(positions.iter().any(|&p| blocks(p, first + n, watermark)));
            }
        }

        /// Eviction of a live subscriber happens exactly when it has not moved
        /// for the limit, whatever the order of observations.
        #[test]
        fn eviction_needs_a_full_stall(
            steps in proptest::collection::vec((0u64..4, 0u64..400), 1..40), liveness in 1u64..1000,
        ) {
            let mut p = Progress::default();
            let (mut now, mut since, mut last) = (0u64, 0u64, None);
            for (pos, dt) in steps {
                now += dt;
                if last != Some(pos) { since = now; last = Some(pos); }
                let v = p.judge(7, pos, true, now, liveness);
                prop_assert_eq!(v == Verdict::EvictStalled, now - since >= liveness);
                prop_assert_ne!(v, Verdict::EvictDead);
            }
        }
    }
}
