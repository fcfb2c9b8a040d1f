//! The receiver's accounting: for every sequence of the source ring, was it
//! delivered into the far ring, announced lost by the sender, or never
//! arrived (and why)? Pure: the receiver feeds it the runs of sequences
//! that frames carry and does what the returned [`Plan`] says.
//!
//! Invariant: `next` is the far ring's next sequence, and every sequence
//! below it was either published there or declared lost there, each
//! exactly once; so the far ring's subscribers count in `lost` exactly what
//! [`Loss::total_declared`] says, and `delivered + total_declared == next`.

/// Why sequences the far ring declared lost never arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The sender announced them (`GAP`): the source ring lost them before
    /// the sender read them (it lapped the bridge).
    Source,
    /// A jump inside one sender's stream: Aeron gave up on them (a receiver
    /// that fell too far behind rejoins the stream further on).
    Network,
    /// A jump across a sender restart or a receiver restart: sent while
    /// this receiver was not there, or read and lost by a dead sender.
    Restart,
    /// The far ring was made by this receiver and aligned to the source's
    /// sequences: they were published before the bridge carried anything.
    BeforeStart,
}

/// Sequences declared lost in the far ring, by cause, and duplicates
/// dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loss {
    pub source: u64,
    pub network: u64,
    pub restart: u64,
    pub before_start: u64,
    /// Messages that arrived again (a restarted sender resends what it
    /// read but had not committed): dropped, not published twice.
    pub duplicates: u64,
}

impl Loss {
    /// Lost on the way: everything but the alignment of a new ring.
    pub fn lost(&self) -> u64 {
        self.source + self.network + self.restart
    }

    /// Everything declared lost in the far ring.
    pub fn total_declared(&self) -> u64 {
        self.lost() + self.before_start
    }

    fn add(&mut self, cause: Cause, n: u64) {
        match cause {
            Cause::Source => self.source += n,
            Cause::Network => self.network += n,
            Cause::Restart => self.restart += n,
            Cause::BeforeStart => self.before_start += n,
        }
    }
}

/// What to do with a run of sequences that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Declare this many sequences lost first (the hole before the run).
    pub hole: u64,
    pub hole_cause: Cause,
    /// Then skip this many of the run's first messages (duplicates).
    pub skip: u64,
    /// Then deliver (or, for a `GAP` run, declare lost) the rest.
    pub take: u64,
}

/// The far ring's position and the losses so far.
#[derive(Debug, Clone)]
pub struct Sequencer {
    next: u64,
    /// Cause of the next hole.
    pending: Cause,
    loss: Loss,
    delivered: u64,
}

impl Sequencer {
    /// `next`: the far ring's cursor. `new_ring`: this receiver made it
    /// (the first hole aligns it, [`Cause::BeforeStart`]); otherwise it
    /// existed and the first hole is what was missed while no receiver
    /// ran ([`Cause::Restart`]).
    pub fn new(next: u64, new_ring: bool) -> Sequencer {
        Sequencer {
            next,
            pending: if new_ring {
                Cause::BeforeStart
            } else {
                Cause::Restart
            },
            loss: Loss::default(),
            delivered: 0,
        }
    }

    pub fn next(&self) -> u64 {
        self.next
    }

    pub fn loss(&self) -> Loss {
        self.loss
    }

    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// A new sender (another incarnation) starts talking: the next hole is
    /// a restart's. Not for the first sender of a new ring.
    pub fn sender_changed(&mut self) {
        if self.pending != Cause::BeforeStart {
            self.pending = Cause::Restart;
        }
    }

    /// A run `[first, first + count)` arrived: messages (`announced_lost`
    /// false) or a `GAP` (true). Returns what to do; the caller must do it
    /// (publish or declare) before the next call.
    pub fn run(&mut self, first: u64, count: u64, announced_lost: bool) -> Plan {
        let end = first.saturating_add(count);
        let hole = first.saturating_sub(self.next);
        let hole_cause = self.pending;
        let skip = self.next.saturating_sub(first).min(count);
        let take = count - skip;
        self.loss.add(hole_cause, hole);
        self.loss.duplicates += if announced_lost { 0 } else { skip };
        if announced_lost {
            self.loss.add(Cause::Source, take);
        } else {
            self.delivered += take;
        }
        self.next = self.next.max(end);
        if count > 0 {
            self.pending = Cause::Network;
        }
        Plan {
            hole,
            hole_cause,
            skip,
            take,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_new_ring_aligns_then_counts_each_cause() {
        let mut s = Sequencer::new(0, true);
        let p = s.run(100, 10, false);
        assert_eq!(
            (p.hole, p.hole_cause, p.skip, p.take),
            (100, Cause::BeforeStart, 0, 10)
        );
        let p = s.run(115, 5, true); // a hole, then an announced gap
        assert_eq!((p.hole, p.hole_cause, p.take), (5, Cause::Network, 5));
        s.sender_changed();
        let p = s.run(118, 10, false); // a restarted sender resends 2
        assert_eq!((p.hole, p.skip, p.take), (0, 2, 8));
        s.sender_changed();
        let p = s.run(140, 1, false);
        assert_eq!((p.hole, p.hole_cause), (12, Cause::Restart));
        let l = s.loss();
        assert_eq!(
            (l.before_start, l.network, l.source, l.restart, l.duplicates),
            (100, 5, 5, 12, 2)
        );
        assert_eq!(s.delivered() + l.total_declared(), s.next());
    }

    #[test]
    fn an_existing_ring_counts_its_first_hole_as_a_restart() {
        let mut s = Sequencer::new(50, false);
        let p = s.run(60, 1, false);
        assert_eq!((p.hole, p.hole_cause), (10, Cause::Restart));
        // Old messages of a sender that restarted further back: all dropped.
        let p = s.run(10, 20, false);
        assert_eq!((p.hole, p.skip, p.take), (0, 20, 0));
    }

    proptest! {
        /// Whatever runs arrive, in whatever order: every sequence below
        /// `next` is delivered or declared exactly once.
        #[test]
        fn every_sequence_is_accounted_once(
            runs in prop::collection::vec((0u64..200, 0u64..20, any::<bool>(), any::<bool>()), 0..60),
            start in 0u64..50,
            new_ring in any::<bool>(),
        ) {
            let mut s = Sequencer::new(start, new_ring);
            let mut state = vec![0u8; 400]; // 0 none, 1 delivered, 2 declared
            for (first, count, gap, restart) in runs {
                if restart {
                    s.sender_changed();
                }
                let before = s.next();
                let p = s.run(first, count, gap);
                for q in before..before + p.hole {
                    prop_assert_eq!(state[q as usize], 0);
                    state[q as usize] = 2;
                }
                let from = first + p.skip;
                for q in from..from + p.take {
                    prop_assert_eq!(state[q as usize], 0);
                    state[q as usize] = if gap { 2 } else { 1 };
                }
                prop_assert!(p.take == 0 || from == before + p.hole);
            }
            let delivered = state.iter().filter(|&&x| x == 1).count() as u64;
            let declared = state.iter().filter(|&&x| x == 2).count() as u64;
            prop_assert_eq!(delivered, s.delivered());
            prop_assert_eq!(declared, s.loss().total_declared());
            prop_assert_eq!(start + delivered + declared, s.next());
        }
    }
}
