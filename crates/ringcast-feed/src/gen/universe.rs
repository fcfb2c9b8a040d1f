//! The stock universe of a generated day: tickers, locates, starting
//! prices, listing attributes and Zipf-skewed activity (a few names carry
//! most of the messages, as on a real day).
//!
//! Invariants: locates run 1..=N in activity-rank order; tickers are
//! unique, 1-5 uppercase letters; prices are whole cents (multiples of
//! 100 in Price(4)) within $2-$900. A universe of at least
//! [`DEBUT_MIN_LISTINGS`] names holds [`DEBUTS`] new listings (two IPOs and
//! a direct listing), at distinct ranks in `[n/4, n/2)`: active names, but
//! never in the top quarter.

use super::rng::Rng;

/// Heavily traded names that take the top activity ranks.
const FAMOUS: [&str; 32] = [
    "AAPL", "NVDA", "TSLA", "MSFT", "AMZN", "QQQ", "META", "AMD", "GOOGL", "GOOG", "AVGO", "NFLX",
    "INTC", "PLTR", "COST", "PEP", "CSCO", "ADBE", "MU", "SMCI", "TQQQ", "SQQQ", "MRVL", "QCOM",
    "SOFI", "PYPL", "SBUX", "ABNB", "MARA", "RIVN", "LCID", "COIN",
];

/// The smallest universe with new listings.
pub const DEBUT_MIN_LISTINGS: usize = 40;
/// How a new listing debuts, in [`DEBUTS`] order.
pub const DEBUTS: [Debut; 3] = [Debut::Ipo, Debut::Ipo, Debut::DirectListing];

/// A listing's first day of trading: it starts the day halted (`IPO1`),
/// and opens through a halt cross instead of the opening cross.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Debut {
    /// An IPO: announced by `K` messages before the open.
    Ipo,
    /// A direct listing with a capital raise: price discovery by `O`
    /// messages before its cross.
    DirectListing,
}

/// One listed stock and its state in the generator.
#[derive(Clone, Debug)]
pub struct Listing {
    /// Stock locate code.
    pub locate: u16,
    /// Ticker (unpadded).
    pub symbol: String,
    /// Market category of its Stock Directory message.
    pub market_category: u8,
    /// `Y` for exchange traded products.
    pub etp: bool,
    /// LULD tier (`1` for the most active names, else `2`).
    pub luld_tier: u8,
    /// Price at the start of the day, Price(4) (for a new listing, its
    /// IPO price or the middle of its registration range).
    pub open_price: u32,
    /// `Some` for a listing whose first day this is (ipo flag `Y`).
    pub debut: Option<Debut>,
}

/// All listings and the activity distribution over them.
#[derive(Clone, Debug)]
pub struct Universe {
    /// Listings, index `locate - 1`.
    pub listings: Vec<Listing>,
    /// Cumulative activity weights (Zipf, exponent ~1.1), last == 1.
    cumulative: Vec<f64>,
}

impl Universe {
    /// `n` listings (1..=65,535), drawn from `rng`.
    pub fn new(rng: &mut Rng, n: usize) -> Self {
        let n = n.clamp(1, u16::MAX as usize);
        let mut taken = std::collections::BTreeSet::new();
        let mut listings = Vec::with_capacity(n);
        for rank in 0..n {
            let symbol = match FAMOUS.get(rank) {
                Some(s) => s.to_string(),
                None => loop {
                    let s = random_ticker(rng);
                    if !taken.contains(&s) && !FAMOUS.contains(&s.as_str()) {
                        break s;
                    }
                },
            };
            taken.insert(symbol.clone());
            // Log-uniform dollars in [2, 900), whole cents.
            let dollars = 2.0 * 450f64.powf(rng.unit());
            let etp = matches!(symbol.as_str(), "QQQ" | "TQQQ" | "SQQQ") || rng.chance(0.08);
            listings.push(Listing {
                locate: rank as u16 + 1,
                market_category: [b'Q', b'Q', b'G', b'S'][rng.below(4) as usize],
                etp,
                luld_tier: if rank < n / 10 + 1 { b'1' } else { b'2' },
                open_price: (dollars * 100.0) as u32 * 100,
                debut: None,
                symbol,
            });
        }
        if n >= DEBUT_MIN_LISTINGS {
            let ranks = rng.distinct((n / 4..n / 2).collect(), DEBUTS.len());
            for (&rank, debut) in ranks.iter().zip(DEBUTS) {
                listings[rank].debut = Some(debut);
            }
        }
        let weights: Vec<f64> = (1..=n).map(|r| 1.0 / (r as f64).powf(1.1)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut cumulative: Vec<f64> = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        if let Some(last) = cumulative.last_mut() {
            *last = 1.0;
        }
        Universe {
            listings,
            cumulative,
        }
    }

    /// A listing index drawn by activity (index 0 most often).
    #[inline]
    pub fn pick(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.listings.len() - 1)
    }
}

/// A plausible ticker: 2-4 letters (sometimes 1 or 5), pronounceable-ish.
fn random_ticker(rng: &mut Rng) -> String {
    const CONSONANTS: &[u8] = b"BCDFGHKLMNPRSTVWXZ";
    const VOWELS: &[u8] = b"AEIOUY";
    let len = match rng.below(20) {
        0 => 1,
        1..=5 => 2,
        6..=12 => 3,
        13..=18 => 4,
        _ => 5,
    };
    (0..len)
        .map(|i| {
            let pool = if i % 2 == 1 && rng.chance(0.6) {
                VOWELS
            } else {
                CONSONANTS
            };
            pool[rng.below(pool.len() as u64) as usize] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickers_unique_prices_in_cents_activity_skewed() {
        let mut rng = Rng::new(3);
        let u = Universe::new(&mut rng, 2000);
        let mut names: Vec<_> = u.listings.iter().map(|l| l.symbol.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 2000);
        for (i, l) in u.listings.iter().enumerate() {
            assert_eq!(l.locate as usize, i + 1);
            assert!(
                (1..=5).contains(&l.symbol.len())
                    && l.symbol.bytes().all(|c| c.is_ascii_uppercase())
            );
            assert_eq!(l.open_price % 100, 0);
            assert!(
                (20_000..9_000_000).contains(&l.open_price),
                "{}",
                l.open_price
            );
        }
        let mut hits = vec![0u32; 2000];
        for _ in 0..100_000 {
            hits[u.pick(&mut rng)] += 1;
        }
        assert!(
            hits[0] > hits[10] && hits[10] > hits[1000],
            "{:?}",
            &hits[..12]
        );
        assert!(
            hits[0] > 8_000,
            "the top name carries a large share: {}",
            hits[0]
        );
        assert_eq!(Universe::new(&mut rng, 1).pick(&mut rng), 0);
        let debuts: Vec<_> = u.listings.iter().filter_map(|l| l.debut).collect();
        assert_eq!(debuts.len(), DEBUTS.len());
        assert!(Universe::new(&mut rng, DEBUT_MIN_LISTINGS - 1)
            .listings
            .iter()
            .all(|l| l.debut.is_none()));
    }
}
