//! The book update record: one per level change, fixed size, little-endian,
//! naturally aligned (`#[repr(C)]` field order with explicit padding), with
//! the best bid and ask after the change so a subscriber needs no book of
//! its own for the top.

use crate::record::{FieldKind, RecordField, RecordLayout};

use super::{Level, Side, TopOfBook};

/// One level after a change, and the top of its book.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BookUpdate {
    /// ITCH timestamp of the message that caused it (ns since midnight).
    pub timestamp: u64,
    /// Shares at the level after the change (0: the level is gone).
    pub level_shares: u64,
    /// Shares at the best bid after the change (0 if no bid).
    pub best_bid_shares: u64,
    /// Shares at the best ask after the change (0 if no ask).
    pub best_ask_shares: u64,
    /// The level's price, Price(4).
    pub price: u32,
    /// Best bid price after the change, Price(4) (0 if no bid).
    pub best_bid: u32,
    /// Best ask price after the change, Price(4) (0 if no ask).
    pub best_ask: u32,
    /// Stock locate.
    pub stock_locate: u16,
    /// `B` or `S`.
    pub side: u8,
    /// Type byte of the message that caused it (`A`, `F`, `E`, `C`, `X`,
    /// `D`, `U`).
    pub cause: u8,
    /// Orders at the level after the change.
    pub level_orders: u32,
    /// Zero.
    pub pad: u32,
    /// Receive time of the message that caused it (the feed handler's
    /// `recv_ns`; 0 when not known), for wire-to-strategy latency.
    pub recv_ns: u64,
}

/// Size of a [`BookUpdate`] record.
pub const BOOK_UPDATE_SIZE: usize = 64;

const _: () = assert!(std::mem::size_of::<BookUpdate>() == BOOK_UPDATE_SIZE);

/// The description of the book update record (`type_byte` 0: not an ITCH
/// message).
pub const BOOK_UPDATE: RecordLayout = RecordLayout {
    type_byte: 0,
    name: "book_update",
    const_name: "BOOK_UPDATE",
    size: BOOK_UPDATE_SIZE,
    fields: &[
        RecordField {
            name: "timestamp",
            kind: FieldKind::U64,
            offset: 0,
        },
        RecordField {
            name: "level_shares",
            kind: FieldKind::U64,
            offset: 8,
        },
        RecordField {
            name: "best_bid_shares",
            kind: FieldKind::U64,
            offset: 16,
        },
        RecordField {
            name: "best_ask_shares",
            kind: FieldKind::U64,
            offset: 24,
        },
        RecordField {
            name: "price",
            kind: FieldKind::Price4,
            offset: 32,
        },
        RecordField {
            name: "best_bid",
            kind: FieldKind::Price4,
            offset: 36,
        },
        RecordField {
            name: "best_ask",
            kind: FieldKind::Price4,
            offset: 40,
        },
        RecordField {
            name: "stock_locate",
            kind: FieldKind::U16,
            offset: 44,
        },
        RecordField {
            name: "side",
            kind: FieldKind::Char,
            offset: 46,
        },
        RecordField {
            name: "cause",
            kind: FieldKind::Char,
            offset: 47,
        },
        RecordField {
            name: "level_orders",
            kind: FieldKind::U32,
            offset: 48,
        },
        RecordField {
            name: "pad",
            kind: FieldKind::U32,
            offset: 52,
        },
        RecordField {
            name: "recv_ns",
            kind: FieldKind::U64,
            offset: 56,
        },
    ],
};

impl BookUpdate {
    /// The update for `level` of `side` of `stock_locate`, with `top`.
    pub fn new(
        timestamp: u64,
        stock_locate: u16,
        side: Side,
        cause: u8,
        level: Level,
        top: TopOfBook,
    ) -> Self {
        BookUpdate {
            timestamp,
            level_shares: level.shares,
            best_bid_shares: top.bid.map_or(0, |l| l.shares),
            best_ask_shares: top.ask.map_or(0, |l| l.shares),
            price: level.price,
            best_bid: top.bid.map_or(0, |l| l.price),
            best_ask: top.ask.map_or(0, |l| l.price),
            stock_locate,
            side: side.indicator(),
            cause,
            level_orders: level.orders,
            pad: 0,
            recv_ns: 0,
        }
    }

    /// The record bytes, little-endian, as [`BOOK_UPDATE`] describes them.
    pub fn to_bytes(&self) -> [u8; BOOK_UPDATE_SIZE] {
        let mut out = [0u8; BOOK_UPDATE_SIZE];
        out[0..8].copy_from_slice(&self.timestamp.to_le_bytes());
        out[8..16].copy_from_slice(&self.level_shares.to_le_bytes());
        out[16..24].copy_from_slice(&self.best_bid_shares.to_le_bytes());
        out[24..32].copy_from_slice(&self.best_ask_shares.to_le_bytes());
        out[32..36].copy_from_slice(&self.price.to_le_bytes());
        out[36..40].copy_from_slice(&self.best_bid.to_le_bytes());
        out[40..44].copy_from_slice(&self.best_ask.to_le_bytes());
        out[44..46].copy_from_slice(&self.stock_locate.to_le_bytes());
        out[46] = self.side;
        out[47] = self.cause;
        out[48..52].copy_from_slice(&self.level_orders.to_le_bytes());
        out[52..56].copy_from_slice(&self.pad.to_le_bytes());
        out[56..64].copy_from_slice(&self.recv_ns.to_le_bytes());
        out
    }
}
