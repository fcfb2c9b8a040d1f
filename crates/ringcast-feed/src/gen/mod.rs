//! A generator of realistic trading days, deterministic by seed: the same
//! [`DayConfig`] gives the same messages, byte for byte.
//!
//! - [`rng`]: the PRNG (xoshiro256**);
//! - [`universe`]: tickers, prices, Zipf-skewed activity;
//! - [`clock`]: when order-flow messages happen (the shape of a day);
//! - `schedule`: system events, directory, imbalances, crosses, halts,
//!   new listings and the day's rare events (see its docs);
//! - `flow`: order lifecycles per stock, every reference live.
//!
//! [`Day`] merges the schedule with the order flow by time and yields
//! exactly `messages` messages (fewer than the schedule itself holds cuts
//! the day short), timestamps never decreasing.

use std::io::{self, Write};

use crate::itch::{MessageBuilder, MessageType, OwnedMessage};

pub mod clock;
mod flow;
pub mod rng;
mod schedule;
pub mod universe;

use clock::Clock;
use flow::{Counters, StockFlow};
use rng::Rng;
use schedule::Event;
use universe::Universe;

/// What day to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayConfig {
    /// The seed: same seed, same day.
    pub seed: u64,
    /// Messages in the day, all types.
    pub messages: u64,
    /// Listed stocks (default: one per 500 messages, 10..=8,000; new
    /// listings, so `K` and `O`, need at least 40).
    pub symbols: usize,
    /// LULD trading pauses during the day (default 2; none, and no
    /// operational halts, below 20 symbols).
    pub halts: usize,
}

impl DayConfig {
    /// A day of `messages` messages from `seed`, default universe.
    pub fn new(seed: u64, messages: u64) -> Self {
        DayConfig {
            seed,
            messages,
            symbols: (messages / 500).clamp(10, 8_000) as usize,
            halts: 2,
        }
    }
}

/// A day being generated: an iterator of [`OwnedMessage`]s.
#[derive(Clone, Debug)]
pub struct Day {
    rng: Rng,
    universe: Universe,
    stocks: Vec<StockFlow>,
    /// Why each listing has no order flow now (bits [`PAUSED`],
    /// [`OPERATIONAL_HALT`]; 0 while it trades).
    halted: Vec<u8>,
    clock: Clock,
    /// The flow timestamp drawn but not yet used.
    next_flow: Option<u64>,
    /// Timed events, latest first (popped from the end).
    schedule: Vec<(u64, Event)>,
    ids: Counters,
    remaining: u64,
}

/// A `halted` bit: the listing's last trading action is not `T`.
const PAUSED: u8 = 1;
/// A `halted` bit: an operational halt on Nasdaq (market `Q`) is on.
const OPERATIONAL_HALT: u8 = 2;

/// The day of `messages` messages from `seed` (see [`DayConfig::new`]).
pub fn generate(seed: u64, messages: u64) -> Day {
    Day::new(&DayConfig::new(seed, messages))
}

/// Writes the day as an ITCH file (length-prefixed messages) to `sink`;
/// returns the number of messages written.
pub fn write_itch<W: Write>(config: &DayConfig, sink: W) -> io::Result<u64> {
    let mut w = crate::file::Writer::new(sink);
    for m in Day::new(config) {
        w.write_message(m.as_bytes())?;
    }
    let n = w.messages();
    w.into_inner()?;
    Ok(n)
}

/// The day as an ITCH file in memory.
pub fn itch_bytes(config: &DayConfig) -> Vec<u8> {
    let mut out = Vec::with_capacity(config.messages as usize * 32);
    for m in Day::new(config) {
        crate::file::append_frame(&mut out, m.as_bytes());
    }
    out
}

impl Day {
    /// The day `config` describes.
    pub fn new(config: &DayConfig) -> Self {
        let mut rng = Rng::new(config.seed);
        let universe = Universe::new(&mut rng, config.symbols);
        let mut schedule =
            schedule::build(&mut rng, &universe.listings, config.halts, config.messages);
        let flow_budget = config.messages.saturating_sub(schedule.len() as u64);
        let clock = Clock::new(&mut rng, flow_budget);
        schedule.reverse();
        let stocks = universe
            .listings
            .iter()
            .map(|l| StockFlow::new(l.locate, l.symbol.clone(), l.open_price))
            .collect();
        Day {
            halted: vec![0; universe.listings.len()],
            universe,
            stocks,
            clock,
            next_flow: None,
            schedule,
            ids: Counters {
                next_reference: 1,
                next_match: 1,
            },
            remaining: config.messages,
            rng,
        }
    }

    /// The stock universe of the day.
    pub fn universe(&self) -> &Universe {
        &self.universe
    }

    /// A listing with order flow now (not halted), drawn by activity.
    fn pick_trading(&mut self) -> usize {
        for _ in 0..16 {
            let i = self.universe.pick(&mut self.rng);
            if self.halted[i] == 0 {
                return i;
            }
        }
        // Every draw hit a halted name: the first one trading, else 0.
        self.halted.iter().position(|&h| h == 0).unwrap_or(0)
    }

    fn flow(&mut self, t: u64) -> MessageBuilder {
        let i = self.pick_trading();
        let stock = &mut self.stocks[i];
        if self.halted[i] != 0 {
            return stock.trade(&mut self.rng, &mut self.ids, t);
        }
        stock.step(&mut self.rng, &mut self.ids, t)
    }

    fn event(&mut self, t: u64, event: Event) -> MessageBuilder {
        let rng = &mut self.rng;
        let market = |kind| MessageBuilder::new(kind, 0, 0, t);
        match event {
            Event::System(code) => market(MessageType::SystemEvent).char(code),
            Event::MwcbLevels => market(MessageType::MwcbDeclineLevel)
                .u64(5_800_000_000_000)
                .u64(5_400_000_000_000)
                .u64(4_800_000_000_000),
            Event::Directory(i) => {
                let l = &self.universe.listings[i];
                MessageBuilder::new(MessageType::StockDirectory, l.locate, 0, t)
                    .ascii::<8>(&l.symbol)
                    .char(l.market_category)
                    .char(b'N')
                    .u32(100)
                    .char(b'N')
                    .char(if l.etp { b'Q' } else { b'C' })
                    .ascii::<2>(if l.etp { "I" } else { "Z" })
                    .char(b'P')
                    .char(b'N')
                    .char(if l.debut.is_some() { b'Y' } else { b'N' })
                    .char(l.luld_tier)
                    .char(if l.etp { b'Y' } else { b'N' })
                    .u32(if l.etp { 1 } else { 0 })
                    .char(b'N')
            }
            Event::TradingAction(i, state, reason) => {
                set(&mut self.halted[i], PAUSED, state != b'T');
                let s = &self.stocks[i];
                let reason = std::str::from_utf8(&reason).unwrap_or("");
                MessageBuilder::new(MessageType::StockTradingAction, s.locate, 0, t)
                    .ascii::<8>(&s.symbol)
                    .char(state)
                    .char(b' ')
                    .ascii::<4>(reason)
            }
            Event::RegSho(i) => {
                let s = &self.stocks[i];
                let action = if rng.chance(0.03) { b'1' } else { b'0' };
                MessageBuilder::new(MessageType::RegShoRestriction, s.locate, 0, t)
                    .ascii::<8>(&s.symbol)
                    .char(action)
            }
            Event::Position(i, mpid) => {
                let s = &self.stocks[i];
                MessageBuilder::new(MessageType::MarketParticipantPosition, s.locate, 0, t)
                    .ascii::<4>(flow::MPIDS[mpid])
                    .ascii::<8>(&s.symbol)
                    .char(if mpid % 3 == 0 { b'Y' } else { b'N' })
                    .char(b'N')
                    .char(b'A')
            }
            Event::Imbalance(i, cross) => {
                let s = &self.stocks[i];
                let paired = 100 * rng.between(1_000, 200_000);
                let imbalance = 100 * rng.below(20_000);
                let direction = match (imbalance, rng.chance(0.5)) {
                    (0, _) => b'N',
                    (_, true) => b'B',
                    _ => b'S',
                };
                let near = s
                    .mid
                    .saturating_add(s.tick * rng.below(5) as u32)
                    .saturating_sub(2 * s.tick);
                MessageBuilder::new(MessageType::Noii, s.locate, 0, t)
                    .u64(paired)
                    .u64(imbalance)
                    .char(direction)
                    .ascii::<8>(&s.symbol)
                    .u32(s.mid.saturating_add(s.tick * rng.below(20) as u32))
                    .u32(near)
                    .u32(s.mid)
                    .char(cross)
                    .char(b' ')
            }
            Event::Cross(i, cross) => {
                let s = &mut self.stocks[i];
                let shares = 100 * rng.between(10, 50_000);
                let matched = self.ids.next_match;
                self.ids.next_match += 1;
                s.last_match = matched;
                MessageBuilder::new(MessageType::CrossTrade, s.locate, 0, t)
                    .u64(shares)
                    .ascii::<8>(&s.symbol)
                    .u32(s.mid)
                    .u64(matched)
                    .char(cross)
            }
            Event::MwcbBreach(level) => market(MessageType::MwcbStatus).char(level),
            Event::IpoQuoting(i, seconds, qualifier) => {
                let l = &self.universe.listings[i];
                MessageBuilder::new(MessageType::IpoQuotingPeriodUpdate, l.locate, 0, t)
                    .ascii::<8>(&l.symbol)
                    .u32(seconds)
                    .char(qualifier)
                    .u32(l.open_price)
            }
            Event::Dlcr(i, update, updates) => {
                // Registration range +-10% around the listing's price; the
                // allowable prices 20% below its low and 80% above its
                // high; the near price walks in whole ticks inside them
                // (and is the price the halt cross prints: the mid).
                let p = self.universe.listings[i].open_price;
                let s = &mut self.stocks[i];
                let cents = |v: u32| v / s.tick * s.tick;
                let (low, high) = (p - p / 10, p + p / 10);
                let min = cents(low - low / 5 + s.tick - 1);
                let max = cents(high + high / 5 * 4);
                let walk = s.tick * rng.below(9) as u32;
                let near = (s.mid + walk).saturating_sub(4 * s.tick).clamp(min, max);
                s.mid = near;
                MessageBuilder::new(MessageType::DlcrPriceDiscovery, s.locate, 0, t)
                    .ascii::<8>(&s.symbol)
                    .char(if update == updates { b'Y' } else { b'N' })
                    .u32(min)
                    .u32(max)
                    .u32(near)
                    .u64(t)
                    .u32(cents(near - near / 10))
                    .u32(cents(near + near / 10))
            }
            Event::AuctionCollar(i, extension) => {
                // Reference price +- the greater of 5% and $0.15, widened
                // by as much again at each extension, in whole ticks; the
                // mid is at least ten ticks, so lower < reference < upper.
                let s = &self.stocks[i];
                let reference = s.mid;
                let step = (reference / 20).max(1_500).div_ceil(s.tick) * s.tick;
                let width = step * (extension + 1);
                MessageBuilder::new(MessageType::LuldAuctionCollar, s.locate, 0, t)
                    .ascii::<8>(&s.symbol)
                    .u32(reference)
                    .u32(reference.saturating_add(width))
                    .u32(reference.saturating_sub(width).max(s.tick))
                    .u32(extension)
            }
            Event::OperationalHalt(i, market, action) => {
                if market == b'Q' {
                    set(&mut self.halted[i], OPERATIONAL_HALT, action == b'H');
                }
                let s = &self.stocks[i];
                MessageBuilder::new(MessageType::OperationalHalt, s.locate, 0, t)
                    .ascii::<8>(&s.symbol)
                    .char(market)
                    .char(action)
            }
            Event::BrokenTrade(i) => {
                let s = &self.stocks[i];
                MessageBuilder::new(MessageType::BrokenTrade, s.locate, 0, t).u64(s.last_match)
            }
            Event::Rpii(i, flag) => {
                let s = &self.stocks[i];
                MessageBuilder::new(MessageType::Rpii, s.locate, 0, t)
                    .ascii::<8>(&s.symbol)
                    .char(flag)
            }
        }
    }
}

/// Sets (`on`) or clears `bit` of `flags`.
fn set(flags: &mut u8, bit: u8, on: bool) {
    if on {
        *flags |= bit;
    } else {
        *flags &= !bit;
    }
}

impl Iterator for Day {
    type Item = OwnedMessage;

    fn next(&mut self) -> Option<OwnedMessage> {
        if self.remaining == 0 {
            return None;
        }
        if self.next_flow.is_none() {
            self.next_flow = self.clock.next(&mut self.rng);
        }
        // The earlier of the next timed event and the next flow message;
        // a tie goes to the timed event (the open before the first trade).
        let event_first = match (self.schedule.last(), self.next_flow) {
            (Some(&(t, _)), Some(f)) => t <= f,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let builder = if event_first {
            let (t, event) = self.schedule.pop()?;
            self.event(t, event)
        } else {
            let t = self.next_flow.take()?;
            self.flow(t)
        };
        self.remaining -= 1;
        let message = builder.finish().and_then(crate::itch::decode);
        Some(OwnedMessage::new(
            &message.expect("the generator appends exactly the table's fields"),
        ))
    }
}

#[cfg(test)]
mod tests;
