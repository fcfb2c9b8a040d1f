//! The timed events of a day, known in advance: system events, the
//! directory messages before the open (`R`, `H`, `Y`, `L`, `V`), order
//! imbalance indicators (`I`) before both crosses, the opening and
//! closing cross prints (`Q`), and the rare events of a day: LULD pauses
//! with their auction collars (`H`, `J`, `Q`, `H`), operational halts
//! (`h`), new listings (IPOs with `K`, a direct listing with `O`), a
//! market-wide circuit breaker status (`W`), broken trades (`B`) and
//! retail price improvement indications (`N`).
//!
//! Invariants: the list is sorted by time (ties keep insertion order), and
//! every event is at or after 03:05 and at or before 20:05. A new listing
//! is halted (`IPO1`) from its first `H` until its halt cross, and has no
//! opening cross; every other listing gets the opening cross, so every
//! `B` (after the open, on a listing trading from the open) has a match
//! number of that listing's to break. Pauses and operational halts fall on
//! distinct listings trading from the open (reused only when asked for
//! more than there are); so do breaks, and retail interest.

use super::clock::{at, CLOSE, FLOW_END, FLOW_START, OPEN, SECOND};
use super::rng::Rng;
use super::universe::{Debut, Listing};

/// One timed event (messages are built when it is due, from the stock's
/// state at that time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// `S` with this event code.
    System(u8),
    /// `R` for the listing at this index.
    Directory(usize),
    /// `H` for the listing: trading state and reason.
    TradingAction(usize, u8, [u8; 4]),
    /// `Y` for the listing.
    RegSho(usize),
    /// `L` for the listing and the MPID at this index.
    Position(usize, usize),
    /// `V`, the day's circuit-breaker levels.
    MwcbLevels,
    /// `W`, the circuit-breaker level breached.
    MwcbBreach(u8),
    /// `K` for the IPO listing: release time (seconds since midnight) and
    /// qualifier (`A` anticipated, `C` cancelled or postponed).
    IpoQuoting(usize, u32, u8),
    /// `O` for the direct listing: price discovery update `k` of `n`
    /// (eligible to open on the last).
    Dlcr(usize, u32, u32),
    /// `J` for the paused listing: the collar extension count.
    AuctionCollar(usize, u32),
    /// `h` for the listing: market code and action (`H` halt, `T` resume).
    OperationalHalt(usize, u8, u8),
    /// `B` of the listing's latest match.
    BrokenTrade(usize),
    /// `N` for the listing: interest flag.
    Rpii(usize, u8),
    /// `I` for the listing, before the cross of this type.
    Imbalance(usize, u8),
    /// `Q` for the listing, cross of this type (`O`, `C`, `H`).
    Cross(usize, u8),
}

/// A minute, in ns.
const MINUTE: u64 = at(0, 1, 0);
/// A microsecond, in ns: the spacing of events due "at once".
const US: u64 = 1_000;
/// The fewest listings with pauses and operational halts.
const HALT_MIN_LISTINGS: usize = 20;
/// The `O` updates of a direct listing's price discovery, every two
/// minutes after its release for quotation.
const DLCR_UPDATES: u32 = 6;
/// From the release for quotation of a new listing to its halt cross.
const QUOTING_PERIOD: u64 = 15 * MINUTE;
/// A LULD pause, and each of its extensions.
const PAUSE: u64 = 5 * MINUTE;
/// Market codes of operational halts: Nasdaq, BX, PSX.
const HALT_MARKETS: [u8; 3] = [b'Q', b'B', b'X'];

/// A time in `[from, to)`.
fn during(rng: &mut Rng, from: u64, to: u64) -> u64 {
    from + rng.below(to - from)
}

/// The day's timed events, sorted by time; `messages` scales the counts of
/// broken trades (one per 200,000 messages, 1..=50) and of stocks with
/// retail interest (one per 100,000, 1..=50).
pub(crate) fn build(
    rng: &mut Rng,
    listings: &[Listing],
    halts: usize,
    messages: u64,
) -> Vec<(u64, Event)> {
    let n = listings.len();
    let mut ev: Vec<(u64, Event)> = Vec::new();
    ev.push((at(3, 5, 0), Event::System(b'O')));
    for (i, l) in listings.iter().enumerate() {
        let step = (i as u64 + 1) * US;
        ev.push((at(3, 5, 1) + step, Event::Directory(i)));
        let (state, reason) = match l.debut {
            Some(_) => (b'H', *b"IPO1"),
            None => (b'T', *b"    "),
        };
        ev.push((at(3, 6, 0) + step, Event::TradingAction(i, state, reason)));
        ev.push((at(3, 7, 0) + step, Event::RegSho(i)));
    }
    for i in 0..n.min(50) {
        for m in 0..3 {
            let mpid = (i * 3 + m) % super::flow::MPIDS.len();
            ev.push((
                at(3, 8, 0) + (i as u64 * 3 + m as u64) * US,
                Event::Position(i, mpid),
            ));
        }
    }
    ev.push((at(3, 9, 0), Event::MwcbLevels));
    ev.push((FLOW_START, Event::System(b'S')));
    // Listings trading from the open, by activity rank.
    let seasoned: Vec<usize> = (0..n).filter(|&i| listings[i].debut.is_none()).collect();
    // Imbalance indicators for the most active names before each cross.
    for (cross, times) in [
        (
            b'O',
            [
                at(9, 25, 0),
                at(9, 28, 0),
                at(9, 29, 0),
                at(9, 29, 30),
                at(9, 29, 50),
            ],
        ),
        (
            b'C',
            [
                at(15, 50, 0),
                at(15, 55, 0),
                at(15, 58, 0),
                at(15, 59, 0),
                at(15, 59, 30),
            ],
        ),
    ] {
        for t in times {
            for (k, &i) in seasoned.iter().take(20).enumerate() {
                ev.push((t + k as u64 * US, Event::Imbalance(i, cross)));
            }
        }
    }
    ev.push((OPEN, Event::System(b'Q')));
    for &i in &seasoned {
        ev.push((OPEN + (i as u64 + 1) * US, Event::Cross(i, b'O')));
    }
    // Listings trading at the close: all but a postponed IPO.
    let mut closes = vec![true; n];
    new_listings(rng, listings, &mut ev, &mut closes);
    if n >= HALT_MIN_LISTINGS {
        let ops = 1 + rng.below(2) as usize;
        let pool: Vec<usize> = seasoned.iter().copied().filter(|&i| i >= 5).collect();
        let picks = rng.distinct(pool, halts + ops);
        let mut picks = picks.iter().copied().cycle();
        for i in picks.by_ref().take(halts) {
            let t = during(rng, at(10, 0, 0), at(15, 0, 0));
            pause(rng, &mut ev, i, t);
        }
        // Operational halts of a few minutes, each a halt then a resume.
        for i in picks.take(ops) {
            let market = HALT_MARKETS[rng.below(HALT_MARKETS.len() as u64) as usize];
            let t = during(rng, at(10, 0, 0), at(15, 0, 0));
            let resume = t + during(rng, 2 * MINUTE, 20 * MINUTE);
            ev.push((t, Event::OperationalHalt(i, market, b'H')));
            ev.push((resume, Event::OperationalHalt(i, market, b'T')));
        }
    }
    // A level-1 breach after 15:25, when it halts nothing (Rule 4121
    // halts trading on a level-1 or level-2 breach only before 15:25): the
    // one `W` of a day, after the `V` of 03:09. A 7% decline is rare in
    // truth; every generated day carries one so that every day has every
    // message type (a drill, as far as the order flow is concerned).
    ev.push((
        during(rng, at(15, 25, 0), at(15, 50, 0)),
        Event::MwcbBreach(b'1'),
    ));
    // Broken trades: each the latest match of a distinct active listing
    // at a time after the open (its opening cross at least).
    let breaks = (messages / 200_000).clamp(1, 50) as usize;
    let active: Vec<usize> = seasoned.iter().copied().take(50).collect();
    for i in rng.distinct(active, breaks) {
        let t = during(rng, OPEN + 5 * MINUTE, CLOSE);
        ev.push((t, Event::BrokenTrade(i)));
    }
    // Retail price improvement: on each of a few listings, one to four
    // episodes of interest (`B`, `S` or `A`), each ended by `N`.
    let retail = (messages / 100_000).clamp(1, 50) as usize;
    let liquid: Vec<usize> = seasoned.iter().copied().take(200).collect();
    for i in rng.distinct(liquid, retail) {
        let mut times: Vec<u64> = (0..2 * rng.between(1, 4))
            .map(|_| during(rng, OPEN, CLOSE))
            .collect();
        times.sort_unstable();
        for (k, t) in times.into_iter().enumerate() {
            let flag = if k % 2 == 1 {
                b'N'
            } else {
                b"BSA"[rng.below(3) as usize]
            };
            ev.push((t, Event::Rpii(i, flag)));
        }
    }
    ev.push((CLOSE, Event::System(b'M')));
    for i in (0..n).filter(|&i| closes[i]) {
        ev.push((CLOSE + (i as u64 + 1) * US, Event::Cross(i, b'C')));
    }
    ev.push((FLOW_END, Event::System(b'E')));
    ev.push((at(20, 5, 0), Event::System(b'C')));
    ev.sort_by_key(|&(t, _)| t);
    ev
}

/// The new listings' day: released for quotation (`Q`, `IPOQ`) between
/// 10:30 and 12:30, opened by a halt cross a quoting period later, then
/// trading (`T`). An IPO is announced before the open by `K` (`A`, its
/// release time); the second IPO is postponed one day in four (`K` with
/// `C` before the open, and halted all day). A direct listing publishes
/// its price discovery (`O`) during its quoting period.
fn new_listings(
    rng: &mut Rng,
    listings: &[Listing],
    ev: &mut Vec<(u64, Event)>,
    closes: &mut [bool],
) {
    let new = listings
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Some((i, l.debut?)));
    for (k, (i, debut)) in new.enumerate() {
        let k = k as u64;
        // Whole seconds: `K` carries the release time in seconds.
        let release = at(10, 30, 0) + k * 40 * MINUTE + rng.below(20 * 60) * SECOND;
        match debut {
            Debut::Ipo => {
                let seconds = (release / SECOND) as u32;
                ev.push((
                    at(7, 0, 0) + k * MINUTE,
                    Event::IpoQuoting(i, seconds, b'A'),
                ));
                if k == 1 && rng.chance(0.25) {
                    ev.push((
                        at(8, 30, 0) + k * MINUTE,
                        Event::IpoQuoting(i, seconds, b'C'),
                    ));
                    closes[i] = false;
                    continue;
                }
            }
            Debut::DirectListing => {
                for u in 1..=DLCR_UPDATES {
                    let t = release + u as u64 * 2 * MINUTE;
                    ev.push((t, Event::Dlcr(i, u, DLCR_UPDATES)));
                }
            }
        }
        ev.push((release, Event::TradingAction(i, b'Q', *b"IPOQ")));
        let cross = release + QUOTING_PERIOD;
        ev.push((cross, Event::Cross(i, b'H')));
        ev.push((cross + US, Event::TradingAction(i, b'T', *b"    ")));
    }
}

/// A LULD pause of listing `i` at `t`: paused (`P`, `LUDP`), its auction
/// collar (`J`) at once, extended one time in three (a wider collar five
/// minutes on), then the halt cross and trading again.
fn pause(rng: &mut Rng, ev: &mut Vec<(u64, Event)>, i: usize, t: u64) {
    let extensions = u32::from(rng.chance(1.0 / 3.0));
    ev.push((t, Event::TradingAction(i, b'P', *b"LUDP")));
    for e in 0..=extensions {
        ev.push((t + US + e as u64 * PAUSE, Event::AuctionCollar(i, e)));
    }
    let resume = t + (1 + extensions as u64) * PAUSE;
    ev.push((resume, Event::Cross(i, b'H')));
    ev.push((resume + US, Event::TradingAction(i, b'T', *b"LUDP")));
}
