//! How a subscriber waits for its next message.
//!
//! - `BusySpin`: poll in a tight loop. Lowest wake-up latency, one core burnt.
//! - `Yield`: poll, yielding the CPU between polls; still ~100% CPU when the
//!   core has nothing else to run, but friendlier to SMT siblings and to other
//!   threads on an oversubscribed host.
//! - `Park`: sleep on a futex in the ring header until the publisher wakes it.
//!   Near zero CPU while idle; costs a wake-up (a few microseconds).
//! - `Adaptive`: spin, then yield, then park; a busy feed is caught while
//!   spinning, a quiet one costs no CPU.
//!
//! Parking works across processes: the futex word lives in the shared ring.
//! A parking subscriber announces itself in a waiter count; the publisher
//! checks that count after each publish and makes the wake syscall only when
//! it is non-zero, so publishing stays syscall-free while nobody is parked.

use std::time::Duration;

/// Default polls spent spinning by [`WaitStrategy::Adaptive`].
pub const DEFAULT_SPIN: u32 = 2_000;
/// Default polls spent yielding by [`WaitStrategy::Adaptive`].
pub const DEFAULT_YIELD: u32 = 100;
/// Pauses between two polls of a spinning bounded publisher waiting for
/// room: each of its polls looks at every subscriber's position (a cache
/// miss for the subscribers), so it polls this many times less often than a
/// subscriber, which polls once a pause. A publisher's `spin: N` therefore
/// spins `N * PUBLISHER_POLL_PAUSES` pauses.
pub const PUBLISHER_POLL_PAUSES: u32 = 16;
/// Longest single sleep on the futex before conditions are looked at again
/// (a safety net only: wake-ups do not depend on it).
pub const MAX_PARK: Duration = Duration::from_millis(250);
/// Longest sleep when the kernel refused the reader's membarrier (so a
/// wake-up could be missed): parking degrades to polling every millisecond.
pub const UNFENCED_PARK: Duration = Duration::from_millis(1);

/// How a subscriber waits for the next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Poll continuously.
    BusySpin,
    /// Poll, yielding the CPU between polls.
    Yield,
    /// Sleep on the ring's futex until the publisher wakes the subscriber.
    Park,
    /// `spin` polls spinning, then `yields` polls yielding, then park.
    Adaptive {
        /// Polls spent spinning before yielding.
        spin: u32,
        /// Polls spent yielding before parking.
        yields: u32,
    },
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::Adaptive {
            spin: DEFAULT_SPIN,
            yields: DEFAULT_YIELD,
        }
    }
}

impl WaitStrategy {
    /// The strategy's code in a subscriber record's `wait` word (see
    /// [`crate::Subscriber::declare_wait`]): 1 spin, 2 yield, 3 park,
    /// 4 adaptive (0: not declared).
    pub(crate) const fn record_code(self) -> u64 {
        match self {
            WaitStrategy::BusySpin => 1,
            WaitStrategy::Yield => 2,
            WaitStrategy::Park => 3,
            WaitStrategy::Adaptive { .. } => 4,
        }
    }
}

/// The name of a subscriber record's wait code, as monitoring shows it:
/// `"spin"`, `"yield"`, `"park"`, `"adaptive"`, or `"unknown"` (not
/// declared: a ring file or subscriber from before the word existed, a
/// subscriber that never declared it, or a code this build does not know).
pub fn wait_name(code: u64) -> &'static str {
    match code {
        1 => "spin",
        2 => "yield",
        3 => "park",
        4 => "adaptive",
        _ => "unknown",
    }
}

/// What a waiter does before its next poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Spin,
    Yield,
    Park,
}

/// A wait in progress: the strategy and how far along it the waiter is.
/// Reset it whenever a message arrives.
#[derive(Debug, Clone)]
pub struct Waiter {
    strategy: WaitStrategy,
    polls: u32,
}

impl Default for Waiter {
    fn default() -> Self {
        Self::new(WaitStrategy::default())
    }
}

impl Waiter {
    /// A waiter at the start of `strategy`.
    pub const fn new(strategy: WaitStrategy) -> Self {
        Self { strategy, polls: 0 }
    }

    /// The strategy followed.
    pub fn strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// Back to the start of the strategy (a message arrived).
    pub fn reset(&mut self) {
        self.polls = 0;
    }

    /// The step to take before the next poll.
    pub(crate) fn next_step(&mut self) -> Step {
        let polls = self.polls;
        self.polls = self.polls.saturating_add(1);
        match self.strategy {
            WaitStrategy::BusySpin => Step::Spin,
            WaitStrategy::Yield => Step::Yield,
            WaitStrategy::Park => Step::Park,
            WaitStrategy::Adaptive { spin, yields } => {
                if polls < spin {
                    Step::Spin
                } else if polls - spin < yields {
                    Step::Yield
                } else {
                    Step::Park
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_escalates_and_resets() {
        let mut w = Waiter::new(WaitStrategy::Adaptive { spin: 2, yields: 1 });
        let steps: Vec<Step> = (0..5).map(|_| w.next_step()).collect();
        assert_eq!(
            steps,
            [Step::Spin, Step::Spin, Step::Yield, Step::Park, Step::Park]
        );
        w.reset();
        assert_eq!(w.next_step(), Step::Spin);
        let mut none = Waiter::new(WaitStrategy::Adaptive { spin: 0, yields: 0 });
        assert_eq!(none.next_step(), Step::Park);
    }

    #[test]
    fn record_codes_name_every_strategy() {
        let names: Vec<_> = [
            WaitStrategy::BusySpin,
            WaitStrategy::Yield,
            WaitStrategy::Park,
            WaitStrategy::default(),
        ]
        .iter()
        .map(|s| wait_name(s.record_code()))
        .collect();
        assert_eq!(names, ["spin", "yield", "park", "adaptive"]);
        assert_eq!(wait_name(0), "unknown");
        assert_eq!(wait_name(99), "unknown");
    }

    #[test]
    fn fixed_strategies_never_change() {
        for (s, step) in [
            (WaitStrategy::BusySpin, Step::Spin),
            (WaitStrategy::Yield, Step::Yield),
            (WaitStrategy::Park, Step::Park),
        ] {
            let mut w = Waiter::new(s);
            assert!((0..10_000).all(|_| w.next_step() == step));
        }
    }
}
