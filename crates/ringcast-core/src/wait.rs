//! How a blocked subscriber waits between polls of its next slot.
//!
//! Spinning first keeps the wake-up latency of a busy feed at the cost of a
//! core; yielding next lets another thread on the core run; sleeping with a
//! growing (capped) interval keeps an idle subscriber near zero CPU while
//! still noticing a message within about a millisecond.

use std::time::{Duration, Instant};

/// Polls spent spinning before the first yield.
pub const SPIN_POLLS: u32 = 2_000;
/// Polls spent yielding before the first sleep.
pub const YIELD_POLLS: u32 = 200;
/// First sleep interval.
pub const MIN_SLEEP: Duration = Duration::from_micros(20);
/// Longest sleep interval.
pub const MAX_SLEEP: Duration = Duration::from_millis(1);

/// Escalating spin, yield, sleep. Call [`Backoff::reset`] after progress.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    polls: u32,
}

impl Backoff {
    /// A backoff at its spinning stage.
    pub const fn new() -> Self {
        Self { polls: 0 }
    }

    /// Back to spinning (a message arrived).
    pub fn reset(&mut self) {
        self.polls = 0;
    }

    /// Waits a little, longer the more often it has been called since a reset;
    /// never past `deadline`.
    pub fn snooze(&mut self, deadline: Option<Instant>) {
        let polls = self.polls;
        self.polls = self.polls.saturating_add(1);
        if polls < SPIN_POLLS {
            std::hint::spin_loop();
        } else if polls < SPIN_POLLS + YIELD_POLLS {
            std::thread::yield_now();
        } else {
            let doublings = (polls - SPIN_POLLS - YIELD_POLLS).min(16);
            let mut sleep = (MIN_SLEEP * (1 << doublings)).min(MAX_SLEEP);
            if let Some(d) = deadline {
                sleep = sleep.min(d.saturating_duration_since(Instant::now()));
            }
            std::thread::sleep(sleep);
        }
    }

    /// Whether the backoff has reached its sleeping stage.
    pub fn is_sleeping(&self) -> bool {
        self.polls >= SPIN_POLLS + YIELD_POLLS
    }
}
