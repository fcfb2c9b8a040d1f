//! Applying ITCH order messages to every instrument's book.
//!
//! Invariants: `orders` holds exactly the live orders (added, not yet
//! deleted, replaced or executed down to zero shares); each
//! live order's shares are counted in exactly one level, the one of its
//! locate, side and price. A message about an unknown reference (a handler
//! that joined mid-day), a duplicate add, or an execution/cancel larger
//! than the order is an error that changes nothing.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::{BookUpdate, Depth, Levels, Side, TopOfBook};
use crate::itch::Message;

/// A live order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Order {
    locate: u16,
    side: Side,
    price: u32,
    shares: u32,
}

/// A hasher for order reference numbers: one folded 128-bit multiply per
/// key, much cheaper than SipHash on the per-message path. The keys are the
/// exchange's own integers; a feed crafted to collide could slow lookups,
/// never corrupt a book.
#[derive(Default)]
struct ReferenceHasher(u64);

impl Hasher for ReferenceHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        let p = (v ^ self.0) as u128 * 0x9e37_79b9_7f4a_7c15u128;
        self.0 = (p as u64) ^ (p >> 64) as u64;
    }
}

type OrderMap = HashMap<u64, Order, BuildHasherDefault<ReferenceHasher>>;

/// One instrument's book.
#[derive(Clone, Debug)]
struct Book {
    bids: Levels,
    asks: Levels,
}

impl Book {
    fn new() -> Self {
        Book {
            bids: Levels::new(Side::Bid),
            asks: Levels::new(Side::Ask),
        }
    }

    fn side(&mut self, side: Side) -> &mut Levels {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    fn top(&self) -> TopOfBook {
        TopOfBook {
            bid: self.bids.best(),
            ask: self.asks.best(),
        }
    }
}

/// Why a message changed no book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookError {
    /// The order reference is not live.
    UnknownReference(u64),
    /// An add (or a replace's new reference) reuses a live reference.
    DuplicateReference(u64),
    /// More shares executed or cancelled than the order has.
    TooManyShares {
        /// The order.
        reference: u64,
        /// Shares it has.
        remaining: u32,
        /// Shares the message takes.
        requested: u32,
    },
}

impl fmt::Display for BookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BookError::UnknownReference(r) => write!(f, "order {r} is not live"),
            BookError::DuplicateReference(r) => write!(f, "order {r} is already live"),
            BookError::TooManyShares {
                reference,
                remaining,
                requested,
            } => {
                write!(
                    f,
                    "order {reference} has {remaining} shares, {requested} taken"
                )
            }
        }
    }
}

impl std::error::Error for BookError {}

/// The updates one message caused: none, one, or two (a replace).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Updates {
    items: [BookUpdate; 2],
    len: usize,
}

impl Updates {
    fn push(&mut self, u: BookUpdate) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = u;
            self.len += 1;
        }
    }

    /// The updates, in order.
    pub fn as_slice(&self) -> &[BookUpdate] {
        &self.items[..self.len]
    }
}

/// Every instrument's book and the live orders behind them.
#[derive(Clone, Debug, Default)]
pub struct BookBuilder {
    orders: OrderMap,
    /// Books by stock locate (`None`: no order seen for it yet).
    books: Vec<Option<Book>>,
}

impl BookBuilder {
    /// No orders, no books.
    pub fn new() -> Self {
        Self::default()
    }

    /// Live orders, all instruments.
    pub fn live_orders(&self) -> usize {
        self.orders.len()
    }

    fn book(&self, locate: u16) -> Option<&Book> {
        self.books.get(locate as usize)?.as_ref()
    }

    /// The book of `locate`, made on first use.
    fn book_mut(&mut self, locate: u16) -> &mut Book {
        let i = locate as usize;
        if self.books.len() <= i {
            self.books.resize_with(i + 1, || None);
        }
        self.books[i].get_or_insert_with(Book::new)
    }

    /// Best bid and ask of `locate`.
    pub fn top(&self, locate: u16) -> TopOfBook {
        self.book(locate).map(Book::top).unwrap_or_default()
    }

    /// The best `n` levels of each side of `locate`.
    pub fn depth(&self, locate: u16, n: usize) -> Depth {
        match self.book(locate) {
            Some(b) => Depth {
                bids: b.bids.best_first().take(n).collect(),
                asks: b.asks.best_first().take(n).collect(),
            },
            None => Depth::default(),
        }
    }

    /// Instruments that have (had) a book, in locate order.
    pub fn locates(&self) -> Vec<u16> {
        (0..self.books.len())
            .filter(|&i| self.books[i].is_some())
            .map(|i| i as u16)
            .collect()
    }

    fn add(
        &mut self,
        t: u64,
        cause: u8,
        reference: u64,
        order: Order,
        out: &mut Updates,
    ) -> Result<(), BookError> {
        if self.orders.contains_key(&reference) {
            return Err(BookError::DuplicateReference(reference));
        }
        self.orders.insert(reference, order);
        let book = self.book_mut(order.locate);
        let level = book.side(order.side).add(order.price, order.shares);
        out.push(BookUpdate::new(
            t,
            order.locate,
            order.side,
            cause,
            level,
            book.top(),
        ));
        Ok(())
    }

    /// Takes `shares` off a live order (all of them when `None`).
    fn reduce(
        &mut self,
        t: u64,
        cause: u8,
        reference: u64,
        shares: Option<u32>,
        out: &mut Updates,
    ) -> Result<Order, BookError> {
        let order = self
            .orders
            .get_mut(&reference)
            .ok_or(BookError::UnknownReference(reference))?;
        let taken = shares.unwrap_or(order.shares);
        if taken > order.shares {
            return Err(BookError::TooManyShares {
                reference,
                remaining: order.shares,
                requested: taken,
            });
        }
        order.shares -= taken;
        let before = *order;
        let gone = order.shares == 0;
        if gone {
            self.orders.remove(&reference);
        }
        let book = self.book_mut(before.locate);
        let level = book.side(before.side).remove(before.price, taken, gone);
        out.push(BookUpdate::new(
            t,
            before.locate,
            before.side,
            cause,
            level,
            book.top(),
        ));
        Ok(before)
    }

    /// Applies one message; the updates it caused (none for messages that
    /// are not about resting orders).
    pub fn apply(&mut self, message: &Message<'_>) -> Result<Updates, BookError> {
        let mut out = Updates::default();
        let t = message.timestamp();
        let cause = message.message_type().byte();
        // Adds carry a new order; executions, cancels and deletes take
        // shares (all of them: `None`) from a live one.
        enum Change {
            Add(Order),
            Take(Option<u32>),
        }
        let add = |locate, side, price, shares| {
            Change::Add(Order {
                locate,
                side: Side::from_indicator(side),
                price,
                shares,
            })
        };
        let (reference, change) = match message {
            Message::AddOrder(a) => (
                a.order_reference_number(),
                add(
                    a.stock_locate(),
                    a.buy_sell_indicator(),
                    a.price(),
                    a.shares(),
                ),
            ),
            Message::AddOrderMpid(a) => (
                a.order_reference_number(),
                add(
                    a.stock_locate(),
                    a.buy_sell_indicator(),
                    a.price(),
                    a.shares(),
                ),
            ),
            Message::OrderExecuted(e) => (
                e.order_reference_number(),
                Change::Take(Some(e.executed_shares())),
            ),
            Message::OrderExecutedWithPrice(e) => (
                e.order_reference_number(),
                Change::Take(Some(e.executed_shares())),
            ),
            Message::OrderCancel(x) => (
                x.order_reference_number(),
                Change::Take(Some(x.cancelled_shares())),
            ),
            Message::OrderDelete(d) => (d.order_reference_number(), Change::Take(None)),
            Message::OrderReplace(u) => return self.replace(t, cause, u),
            _ => return Ok(out),
        };
        match change {
            Change::Add(order) => self.add(t, cause, reference, order, &mut out)?,
            Change::Take(taken) => {
                self.reduce(t, cause, reference, taken, &mut out)?;
            }
        }
        Ok(out)
    }

    /// `U`: the old order leaves, the new reference joins the same side of
    /// the same stock at its own price and size; both references are
    /// checked before anything changes.
    fn replace(
        &mut self,
        t: u64,
        cause: u8,
        u: &crate::itch::OrderReplace<'_>,
    ) -> Result<Updates, BookError> {
        let mut out = Updates::default();
        let new_ref = u.new_order_reference_number();
        let old_ref = u.original_order_reference_number();
        if !self.orders.contains_key(&old_ref) {
            return Err(BookError::UnknownReference(old_ref));
        }
        if new_ref != old_ref && self.orders.contains_key(&new_ref) {
            return Err(BookError::DuplicateReference(new_ref));
        }
        let old = self.reduce(t, cause, old_ref, None, &mut out)?;
        let order = Order {
            price: u.price(),
            shares: u.shares(),
            ..old
        };
        self.add(t, cause, new_ref, order, &mut out)?;
        Ok(out)
    }
}
