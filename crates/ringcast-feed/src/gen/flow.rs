//! Order flow for one stock at a time: adds (`A`, `F`), executions (`E`,
//! `C`), partial cancels (`X`), deletes (`D`), replaces (`U`) and
//! non-displayed trades (`P`), against a list of the stock's live orders.
//!
//! Invariants (checked by the book tests against a rebuild from scratch):
//! every order referenced by `E`/`C`/`X`/`D`/`U` is live, on the stock
//! the message is about; executed or cancelled shares never exceed the
//! order's remaining shares (and a partial cancel leaves at least one);
//! an order whose shares reach zero leaves the live list; reference
//! numbers are never reused; a new bid is below the best ask and a new ask
//! above the best bid, so a stock's book is never crossed.

use std::collections::BTreeMap;

use super::rng::Rng;
use crate::itch::{MessageBuilder, MessageType};

/// MPIDs that attribute their orders (`F`) and hold positions (`L`).
pub(crate) const MPIDS: [&str; 8] = [
    "GSCO", "MSCO", "UBSS", "NITE", "JPMS", "CDRG", "VIRT", "SUSQ",
];

/// A resting order.
#[derive(Clone, Copy, Debug)]
struct Live {
    reference: u64,
    side: u8,
    price: u32,
    shares: u32,
}

/// One stock's state: price and resting orders.
#[derive(Clone, Debug)]
pub(crate) struct StockFlow {
    pub locate: u16,
    pub symbol: String,
    /// Mid price, Price(4), a whole number of ticks.
    pub mid: u32,
    /// Price increment (one cent).
    pub tick: u32,
    live: Vec<Live>,
    /// Orders resting at each price, bids (`[0]`) and asks (`[1]`): the
    /// same orders as `live`, by price.
    resting: [BTreeMap<u32, u32>; 2],
    /// Resting orders above which adds become deletes.
    cap: usize,
    /// The match number of the stock's latest execution, trade or cross
    /// (0 before the first): what a broken trade (`B`) breaks.
    pub last_match: u64,
}

/// The counters shared by every stock of a day.
#[derive(Clone, Debug)]
pub(crate) struct Counters {
    pub next_reference: u64,
    pub next_match: u64,
}

impl StockFlow {
    pub fn new(locate: u16, symbol: String, price: u32) -> Self {
        StockFlow {
            locate,
            symbol,
            mid: price,
            tick: 100,
            live: Vec::new(),
            resting: Default::default(),
            cap: 400,
            last_match: 0,
        }
    }

    /// A price `1 + geometric` ticks away from the mid on `side`'s side,
    /// and not crossing the other side's best.
    fn price_for(&self, rng: &mut Rng, side: u8) -> u32 {
        let away = self.tick * (1 + rng.geometric(0.35) as u32);
        if side == b'B' {
            let best_ask = self.resting[1].keys().next().copied().unwrap_or(u32::MAX);
            self.mid
                .saturating_sub(away)
                .min(best_ask.saturating_sub(self.tick))
                .max(self.tick)
        } else {
            let best_bid = self.resting[0].keys().next_back().copied().unwrap_or(0);
            self.mid
                .saturating_add(away)
                .max(best_bid.saturating_add(self.tick))
        }
    }

    /// Makes `order` live.
    fn rest(&mut self, order: Live) {
        *self.resting[(order.side != b'B') as usize]
            .entry(order.price)
            .or_insert(0) += 1;
        self.live.push(order);
    }

    /// Removes the live order at index `i`.
    fn unrest(&mut self, i: usize) -> Live {
        let order = self.live.swap_remove(i);
        let side = &mut self.resting[(order.side != b'B') as usize];
        if let Some(n) = side.get_mut(&order.price) {
            *n -= 1;
            if *n == 0 {
                side.remove(&order.price);
            }
        }
        order
    }

    fn shares(rng: &mut Rng) -> u32 {
        match rng.below(10) {
            0 => rng.between(1, 99) as u32,
            1 => 100 * rng.between(10, 50) as u32,
            _ => 100 * rng.between(1, 10) as u32,
        }
    }

    fn header(&self, kind: MessageType, rng: &mut Rng, t: u64) -> MessageBuilder {
        MessageBuilder::new(kind, self.locate, rng.below(8) as u16, t)
    }

    /// The next order-flow message of this stock at time `t`.
    pub fn step(&mut self, rng: &mut Rng, ids: &mut Counters, t: u64) -> MessageBuilder {
        let n = self.live.len();
        if n == 0 || (n < 8 && rng.chance(0.6)) {
            return self.add(rng, ids, t);
        }
        let r = rng.unit();
        match r {
            _ if r < 0.40 => {
                if n >= self.cap {
                    self.delete(rng, t)
                } else {
                    self.add(rng, ids, t)
                }
            }
            _ if r < 0.73 => self.delete(rng, t),
            _ if r < 0.82 => self.replace(rng, ids, t),
            _ if r < 0.87 => self.cancel(rng, t),
            _ if r < 0.96 => self.execute(rng, ids, t),
            _ => self.trade(rng, ids, t),
        }
    }

    fn add(&mut self, rng: &mut Rng, ids: &mut Counters, t: u64) -> MessageBuilder {
        let side = if rng.chance(0.5) { b'B' } else { b'S' };
        let order = Live {
            reference: ids.next_reference,
            side,
            price: self.price_for(rng, side),
            shares: Self::shares(rng),
        };
        ids.next_reference += 1;
        self.rest(order);
        let attributed = rng.chance(0.08);
        let kind = if attributed {
            MessageType::AddOrderMpid
        } else {
            MessageType::AddOrder
        };
        let b = self
            .header(kind, rng, t)
            .u64(order.reference)
            .char(side)
            .u32(order.shares)
            .ascii::<8>(&self.symbol)
            .u32(order.price);
        if attributed {
            b.ascii::<4>(MPIDS[rng.below(MPIDS.len() as u64) as usize])
        } else {
            b
        }
    }

    fn delete(&mut self, rng: &mut Rng, t: u64) -> MessageBuilder {
        let i = rng.below(self.live.len() as u64) as usize;
        let order = self.unrest(i);
        self.header(MessageType::OrderDelete, rng, t)
            .u64(order.reference)
    }

    fn cancel(&mut self, rng: &mut Rng, t: u64) -> MessageBuilder {
        let i = rng.below(self.live.len() as u64) as usize;
        if self.live[i].shares < 2 {
            return self.delete(rng, t);
        }
        let cancelled = rng.between(1, self.live[i].shares as u64 - 1) as u32;
        self.live[i].shares -= cancelled;
        let reference = self.live[i].reference;
        self.header(MessageType::OrderCancel, rng, t)
            .u64(reference)
            .u32(cancelled)
    }

    fn replace(&mut self, rng: &mut Rng, ids: &mut Counters, t: u64) -> MessageBuilder {
        let i = rng.below(self.live.len() as u64) as usize;
        let old = self.unrest(i);
        let new = Live {
            reference: ids.next_reference,
            side: old.side,
            price: self.price_for(rng, old.side),
            shares: Self::shares(rng),
        };
        ids.next_reference += 1;
        self.rest(new);
        self.header(MessageType::OrderReplace, rng, t)
            .u64(old.reference)
            .u64(new.reference)
            .u32(new.shares)
            .u32(new.price)
    }

    /// Executes (part of) the most aggressive of a few sampled orders, as
    /// incoming orders hit the top of the book; the mid follows the trades.
    fn execute(&mut self, rng: &mut Rng, ids: &mut Counters, t: u64) -> MessageBuilder {
        let n = self.live.len() as u64;
        let distance = |o: &Live| o.price.abs_diff(self.mid);
        let mut best = rng.below(n) as usize;
        for _ in 0..3 {
            let j = rng.below(n) as usize;
            if distance(&self.live[j]) < distance(&self.live[best]) {
                best = j;
            }
        }
        let order = self.live[best];
        let executed = if rng.chance(0.6) {
            order.shares
        } else {
            rng.between(1, order.shares as u64) as u32
        };
        if executed == order.shares {
            self.unrest(best);
        } else {
            self.live[best].shares -= executed;
        }
        if rng.chance(0.3) {
            self.mid = if order.side == b'B' {
                self.mid.saturating_sub(self.tick).max(10 * self.tick)
            } else {
                self.mid.saturating_add(self.tick)
            };
        }
        let matched = ids.next_match;
        ids.next_match += 1;
        self.last_match = matched;
        if rng.chance(0.1) {
            let price = if rng.chance(0.5) {
                order.price.saturating_add(self.tick)
            } else {
                order.price
            };
            self.header(MessageType::OrderExecutedWithPrice, rng, t)
                .u64(order.reference)
                .u32(executed)
                .u64(matched)
                .char(if rng.chance(0.9) { b'Y' } else { b'N' })
                .u32(price)
        } else {
            self.header(MessageType::OrderExecuted, rng, t)
                .u64(order.reference)
                .u32(executed)
                .u64(matched)
        }
    }

    /// A match against a non-displayed order (no book change).
    pub fn trade(&mut self, rng: &mut Rng, ids: &mut Counters, t: u64) -> MessageBuilder {
        let side = if rng.chance(0.5) { b'B' } else { b'S' };
        let matched = ids.next_match;
        ids.next_match += 1;
        self.last_match = matched;
        self.header(MessageType::Trade, rng, t)
            .u64(0)
            .char(side)
            .u32(Self::shares(rng))
            .ascii::<8>(&self.symbol)
            .u32(self.mid)
            .u64(matched)
    }
}
