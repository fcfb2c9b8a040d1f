//! Order books from ITCH order messages: per instrument, price levels on
//! each side (price -> aggregate shares and order count), built from
//! `A`/`F` (add), `E`/`C` (execute), `X` (cancel), `D` (delete) and `U`
//! (replace: the old order leaves, the new reference joins the same side
//! of the same stock at its own price and size).
//!
//! - [`levels`]: one side of one book ([`Levels`]), and snapshots
//!   ([`Level`], [`TopOfBook`], [`Depth`]);
//! - [`update`]: the fixed-size [`BookUpdate`] record published per level
//!   change, and its field description;
//! - [`builder`]: [`BookBuilder`], the order map and every instrument's
//!   book, applying messages and emitting updates.
//!
//! Invariant: for every instrument and side, each level's shares and order
//! count are the sums over the live orders resting at that price, and no
//! level is empty (tested against a rebuild from the orders after every
//! message of a generated day).

pub mod builder;
pub mod levels;
pub mod update;

pub use builder::{BookBuilder, BookError, Updates};
pub use levels::{Depth, Level, Levels, TopOfBook};
pub use update::{BookUpdate, BOOK_UPDATE};

/// A side of the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buy orders (`B`).
    Bid,
    /// Sell orders (`S`).
    Ask,
}

impl Side {
    /// The side an ITCH buy/sell indicator names (`B` buy, anything else
    /// sell, as the spec allows only `B` and `S`).
    pub fn from_indicator(indicator: u8) -> Self {
        if indicator == b'B' {
            Side::Bid
        } else {
            Side::Ask
        }
    }

    /// The ITCH indicator byte (`B` or `S`).
    pub fn indicator(self) -> u8 {
        match self {
            Side::Bid => b'B',
            Side::Ask => b'S',
        }
    }
}

#[cfg(test)]
mod tests;
