//! A small deterministic PRNG (xoshiro256**, seeded through SplitMix64):
//! the same seed gives the same sequence on every platform and release,
//! which is what makes generated days reproducible byte for byte.

/// xoshiro256** state.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut splitmix = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng {
            s: [splitmix(), splitmix(), splitmix(), splitmix()],
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (0 when `n` is 0); multiply-shift, bias below 2^-32
    /// for the small `n` used here.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`lo` when `hi < lo`).
    #[inline]
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A geometric count of failures before a success of probability `p`
    /// (mean `(1-p)/p`), capped at 63.
    #[inline]
    pub fn geometric(&mut self, p: f64) -> u64 {
        let mut n = 0;
        while n < 63 && !self.chance(p) {
            n += 1;
        }
        n
    }

    /// `k` distinct elements of `pool` in draw order (all of them, shuffled,
    /// when `k` exceeds its length): a partial Fisher-Yates shuffle.
    pub fn distinct<T>(&mut self, mut pool: Vec<T>, k: usize) -> Vec<T> {
        let k = k.min(pool.len());
        for j in 0..k {
            let pick = j + self.below((pool.len() - j) as u64) as usize;
            pool.swap(j, pick);
        }
        pool.truncate(k);
        pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_ranges_hold() {
        let (mut a, mut b, mut c) = (Rng::new(7), Rng::new(7), Rng::new(8));
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        assert_eq!(xs, (0..100).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(xs, (0..100).map(|_| c.next_u64()).collect::<Vec<_>>());
        let mut hits = [0u32; 6];
        for _ in 0..60_000 {
            let v = a.between(10, 15);
            hits[(v - 10) as usize] += 1;
            let u = a.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert!(
            hits.iter().all(|&h| (9_000..11_000).contains(&h)),
            "{hits:?}"
        );
        assert_eq!(a.below(0), 0);
        assert_eq!(a.between(5, 3), 5);
        let mut picked = a.distinct((0..50).collect(), 20);
        picked.sort_unstable();
        picked.dedup();
        assert_eq!(picked.len(), 20);
        assert_eq!(a.distinct(vec![1, 2], 5).len(), 2);
    }
}
