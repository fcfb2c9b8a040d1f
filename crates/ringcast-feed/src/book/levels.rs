//! One side of one book: price levels, best first on request.

use std::collections::BTreeMap;

use super::Side;

/// A price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Level {
    /// Price, Price(4).
    pub price: u32,
    /// Shares resting at this price, all orders.
    pub shares: u64,
    /// Orders resting at this price.
    pub orders: u32,
}

/// The price levels of one side. Invariant: no stored level has zero
/// orders (a level leaves the map with its last order).
#[derive(Clone, Debug)]
pub struct Levels {
    side: Side,
    /// price -> (shares, orders)
    by_price: BTreeMap<u32, (u64, u32)>,
}

impl Levels {
    /// An empty side.
    pub fn new(side: Side) -> Self {
        Levels {
            side,
            by_price: BTreeMap::new(),
        }
    }

    /// Adds an order of `shares` at `price`; returns the level after.
    pub fn add(&mut self, price: u32, shares: u32) -> Level {
        let e = self.by_price.entry(price).or_insert((0, 0));
        e.0 += shares as u64;
        e.1 += 1;
        Level {
            price,
            shares: e.0,
            orders: e.1,
        }
    }

    /// Takes `shares` off the level at `price`, and the order itself when
    /// `order_gone`; returns the level after (zero shares and orders when
    /// it is gone). Amounts are clamped to what the level holds.
    pub fn remove(&mut self, price: u32, shares: u32, order_gone: bool) -> Level {
        let Some(e) = self.by_price.get_mut(&price) else {
            return Level {
                price,
                shares: 0,
                orders: 0,
            };
        };
        e.0 = e.0.saturating_sub(shares as u64);
        if order_gone {
            e.1 = e.1.saturating_sub(1);
        }
        let level = Level {
            price,
            shares: e.0,
            orders: e.1,
        };
        if level.orders == 0 {
            self.by_price.remove(&price);
        }
        level
    }

    /// The level at `price`, if any order rests there.
    pub fn at(&self, price: u32) -> Option<Level> {
        self.by_price.get(&price).map(|&(shares, orders)| Level {
            price,
            shares,
            orders,
        })
    }

    /// The best level (highest bid, lowest ask).
    #[inline]
    pub fn best(&self) -> Option<Level> {
        let best = match self.side {
            Side::Bid => self.by_price.last_key_value(),
            Side::Ask => self.by_price.first_key_value(),
        };
        best.map(|(&price, &(shares, orders))| Level {
            price,
            shares,
            orders,
        })
    }

    /// Levels from the best outwards.
    pub fn best_first(&self) -> Box<dyn Iterator<Item = Level> + '_> {
        let level = |(&price, &(shares, orders)): (&u32, &(u64, u32))| Level {
            price,
            shares,
            orders,
        };
        match self.side {
            Side::Bid => Box::new(self.by_price.iter().rev().map(level)),
            Side::Ask => Box::new(self.by_price.iter().map(level)),
        }
    }

    /// Number of price levels.
    pub fn len(&self) -> usize {
        self.by_price.len()
    }

    /// True when no order rests on this side.
    pub fn is_empty(&self) -> bool {
        self.by_price.is_empty()
    }
}

/// Best bid and best ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TopOfBook {
    /// Highest bid level.
    pub bid: Option<Level>,
    /// Lowest ask level.
    pub ask: Option<Level>,
}

/// The best `n` levels of each side, best first.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Depth {
    /// Bids, highest first.
    pub bids: Vec<Level>,
    /// Asks, lowest first.
    pub asks: Vec<Level>,
}
