//! The shape of a trading day in time: how many order-flow messages fall
//! in each second from 04:00 to 20:00 (light pre-market, a busy open, a
//! quiet midday, a busier close, a fading after-hours, random bursts), and
//! their timestamps within each second.
//!
//! Invariants: the per-second counts add up to exactly the budget;
//! timestamps are strictly inside [04:00, 20:00) and never decrease.

use super::rng::Rng;

/// Nanoseconds per second.
pub const SECOND: u64 = 1_000_000_000;
/// Nanoseconds since midnight of `h:m:s`.
pub const fn at(h: u64, m: u64, s: u64) -> u64 {
    ((h * 60 + m) * 60 + s) * SECOND
}
/// Start of the order flow (system hours).
pub const FLOW_START: u64 = at(4, 0, 0);
/// End of the order flow.
pub const FLOW_END: u64 = at(20, 0, 0);
/// Market open (the opening cross).
pub const OPEN: u64 = at(9, 30, 0);
/// Market close (the closing cross).
pub const CLOSE: u64 = at(16, 0, 0);

/// Relative message intensity at `t` (ns since midnight), before bursts.
fn intensity(t: u64) -> f64 {
    let minutes = |a: u64, b: u64| (a as f64 - b as f64) / (60.0 * SECOND as f64);
    if t < OPEN {
        // Pre-market: a trickle rising towards the open.
        0.03 + 0.4 * (-minutes(OPEN, t) / 30.0).exp()
    } else if t < CLOSE {
        // Regular hours: U-shaped, the open busier than the close.
        1.0 + 6.0 * (-minutes(t, OPEN) / 12.0).exp() + 3.0 * (-minutes(CLOSE, t) / 15.0).exp()
    } else {
        // After hours: fading.
        0.02 + 0.5 * (-minutes(t, CLOSE) / 20.0).exp()
    }
}

/// Hands out the timestamps of the order flow, second by second.
#[derive(Clone, Debug)]
pub struct Clock {
    /// Messages in each second from `FLOW_START`.
    counts: Vec<u32>,
    /// The second being handed out, and the position in it.
    second: usize,
    index: u32,
    last: u64,
}

impl Clock {
    /// A clock for `budget` messages.
    pub fn new(rng: &mut Rng, budget: u64) -> Self {
        let seconds = ((FLOW_END - FLOW_START) / SECOND) as usize;
        let mut weights: Vec<f64> = (0..seconds)
            .map(|s| intensity(FLOW_START + s as u64 * SECOND))
            .collect();
        // Bursts: news and sweeps, mostly in regular hours, fading over a few seconds.
        for _ in 0..400 {
            let start = if rng.chance(0.85) {
                ((OPEN - FLOW_START) / SECOND + rng.below((CLOSE - OPEN) / SECOND)) as usize
            } else {
                rng.below(seconds as u64) as usize
            };
            let peak = 3.0 + 20.0 * rng.unit();
            for (k, w) in weights[start..].iter_mut().take(8).enumerate() {
                *w *= 1.0 + peak * 0.5f64.powi(k as i32);
            }
        }
        let total: f64 = weights.iter().sum();
        // Cumulative rounding: the counts add up to exactly `budget`.
        let mut counts = Vec::with_capacity(seconds);
        let (mut acc, mut given) = (0.0, 0u64);
        for w in &weights {
            acc += w;
            let upto = ((acc / total) * budget as f64).round() as u64;
            let upto = upto.clamp(given, budget);
            counts.push((upto - given) as u32);
            given = upto;
        }
        if let Some(last) = counts.last_mut() {
            *last += (budget - given) as u32;
        }
        Clock {
            counts,
            second: 0,
            index: 0,
            last: FLOW_START,
        }
    }

    /// The next timestamp, or `None` when the budget is spent.
    #[inline]
    pub fn next(&mut self, rng: &mut Rng) -> Option<u64> {
        while self.index >= *self.counts.get(self.second)? {
            self.second += 1;
            self.index = 0;
        }
        let n = self.counts[self.second] as u64;
        let step = SECOND / n;
        let base = FLOW_START + self.second as u64 * SECOND + self.index as u64 * step;
        let t = (base + rng.below(step)).max(self.last);
        self.index += 1;
        self.last = t;
        Some(t)
    }

    /// Timestamp of the last message handed out.
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_time_never_goes_back() {
        let mut rng = Rng::new(1);
        let mut clock = Clock::new(&mut rng, 200_000);
        let mut n = 0u64;
        let mut last = 0;
        let mut per_hour = [0u64; 24];
        while let Some(t) = clock.next(&mut rng) {
            assert!(t >= last && (FLOW_START..FLOW_END).contains(&t));
            last = t;
            per_hour[(t / at(1, 0, 0)) as usize] += 1;
            n += 1;
        }
        assert_eq!(n, 200_000);
        // Busy open and close, quiet midday, thin pre-market and evening.
        assert!(
            per_hour[9] > per_hour[12] && per_hour[15] > per_hour[12],
            "{per_hour:?}"
        );
        assert!(
            per_hour[12] > per_hour[5] && per_hour[12] > per_hour[19],
            "{per_hour:?}"
        );
        let mut empty = Clock::new(&mut rng, 0);
        assert_eq!(empty.next(&mut rng), None);
    }
}
