use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::gen::DayConfig;
use crate::itch::{decode, Message, MessageBuilder, MessageType};
use crate::record::read_le;

fn add(reference: u64, locate: u16, side: u8, shares: u32, price: u32) -> Vec<u8> {
    MessageBuilder::new(MessageType::AddOrder, locate, 0, reference)
        .u64(reference)
        .char(side)
        .u32(shares)
        .ascii::<8>("TEST")
        .u32(price)
        .finish()
        .unwrap()
        .to_vec()
}

fn with_ref(kind: MessageType, reference: u64, shares: u32) -> Vec<u8> {
    let b = MessageBuilder::new(kind, 1, 0, 99).u64(reference);
    match kind {
        MessageType::OrderDelete => b,
        MessageType::OrderCancel => b.u32(shares),
        MessageType::OrderExecuted => b.u32(shares).u64(7),
        _ => b.u32(shares).u64(7).char(b'Y').u32(1),
    }
    .finish()
    .unwrap()
    .to_vec()
}

fn apply(b: &mut BookBuilder, m: &[u8]) -> Result<Vec<BookUpdate>, BookError> {
    b.apply(&decode(m).unwrap()).map(|u| u.as_slice().to_vec())
}

fn lvl(price: u32, shares: u64, orders: u32) -> Level {
    Level {
        price,
        shares,
        orders,
    }
}

#[test]
fn levels_aggregate_and_updates_carry_the_top() {
    let mut b = BookBuilder::new();
    apply(&mut b, &add(1, 1, b'B', 100, 10_0000)).unwrap();
    apply(&mut b, &add(2, 1, b'B', 200, 10_0000)).unwrap();
    apply(&mut b, &add(3, 1, b'B', 50, 9_9900)).unwrap();
    let u = apply(&mut b, &add(4, 1, b'S', 300, 10_0100)).unwrap();
    assert_eq!(u.len(), 1);
    assert_eq!(
        (
            u[0].side,
            u[0].price,
            u[0].level_shares,
            u[0].best_bid,
            u[0].best_bid_shares,
            u[0].best_ask,
            u[0].cause
        ),
        (b'S', 10_0100, 300, 10_0000, 300, 10_0100, b'A')
    );
    assert_eq!(
        b.depth(1, 5),
        Depth {
            bids: vec![lvl(10_0000, 300, 2), lvl(9_9900, 50, 1)],
            asks: vec![lvl(10_0100, 300, 1)]
        }
    );
    // Partial execution, cancel, then delete empty the best bid level.
    let u = apply(&mut b, &with_ref(MessageType::OrderExecuted, 1, 40)).unwrap();
    assert_eq!(
        (u[0].level_shares, u[0].level_orders, u[0].cause),
        (260, 2, b'E')
    );
    apply(&mut b, &with_ref(MessageType::OrderCancel, 1, 60)).unwrap();
    assert_eq!(
        b.top(1).bid,
        Some(lvl(10_0000, 200, 1)),
        "order 1 fully gone"
    );
    let u = apply(&mut b, &with_ref(MessageType::OrderDelete, 2, 0)).unwrap();
    assert_eq!(
        (u[0].level_shares, u[0].level_orders, u[0].best_bid),
        (0, 0, 9_9900)
    );
    // Replace moves the order: the old level update, then the new one.
    let replace = MessageBuilder::new(MessageType::OrderReplace, 1, 0, 100)
        .u64(3)
        .u64(5)
        .u32(70)
        .u32(10_0200)
        .finish()
        .unwrap()
        .to_vec();
    let u = apply(&mut b, &replace).unwrap();
    assert_eq!(u.len(), 2);
    assert_eq!(
        (u[0].price, u[0].level_shares, u[0].side),
        (9_9900, 0, b'B')
    );
    assert_eq!(
        (u[1].price, u[1].level_shares, u[1].side, u[1].best_bid),
        (10_0200, 70, b'B', 10_0200)
    );
    assert_eq!(b.live_orders(), 2);
    assert_eq!(b.locates(), vec![1]);
    assert_eq!(b.top(9), TopOfBook::default());
}

#[test]
fn bad_references_change_nothing() {
    let mut b = BookBuilder::new();
    apply(&mut b, &add(1, 1, b'S', 100, 5_0000)).unwrap();
    let before = b.depth(1, 10);
    assert_eq!(
        apply(&mut b, &add(1, 1, b'S', 100, 5_0000)),
        Err(BookError::DuplicateReference(1))
    );
    assert_eq!(
        apply(&mut b, &with_ref(MessageType::OrderDelete, 9, 0)),
        Err(BookError::UnknownReference(9))
    );
    assert_eq!(
        apply(
            &mut b,
            &with_ref(MessageType::OrderExecutedWithPrice, 1, 101)
        )
        .map_err(|e| e.to_string()),
        Err("order 1 has 100 shares, 101 taken".to_string())
    );
    let replace_onto_live = MessageBuilder::new(MessageType::OrderReplace, 1, 0, 1)
        .u64(1)
        .u64(1)
        .u32(5)
        .u32(1)
        .finish()
        .unwrap()
        .to_vec();
    apply(&mut b, &add(2, 1, b'S', 10, 6_0000)).unwrap();
    let replace_dup = MessageBuilder::new(MessageType::OrderReplace, 1, 0, 1)
        .u64(1)
        .u64(2)
        .u32(5)
        .u32(1)
        .finish()
        .unwrap()
        .to_vec();
    assert_eq!(
        apply(&mut b, &replace_dup),
        Err(BookError::DuplicateReference(2))
    );
    assert_eq!(b.depth(1, 1).asks, before.asks);
    // Replacing an order by its own reference is allowed (a re-price).
    assert_eq!(apply(&mut b, &replace_onto_live).unwrap().len(), 2);
    assert_eq!(b.top(1).ask, Some(lvl(1, 5, 1)));
}

#[test]
fn update_record_matches_its_description() {
    let u = BookUpdate {
        timestamp: 1,
        level_shares: 2,
        best_bid_shares: 3,
        best_ask_shares: 4,
        price: 5,
        best_bid: 6,
        best_ask: 7,
        stock_locate: 8,
        side: b'B',
        cause: b'U',
        level_orders: 9,
        pad: 0,
        recv_ns: 10,
    };
    let bytes = u.to_bytes();
    assert_eq!(std::mem::size_of::<BookUpdate>(), BOOK_UPDATE.size);
    let numbers: Vec<u64> = BOOK_UPDATE
        .fields
        .iter()
        .filter_map(|f| read_le(&bytes, f))
        .collect();
    assert_eq!(numbers, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 10]);
    assert_eq!(&bytes[46..48], b"BU");
    let mut at = 0;
    for f in BOOK_UPDATE.fields {
        assert_eq!(f.offset, at);
        assert_eq!(
            f.offset % f.kind.record_width(),
            0,
            "{} is naturally aligned",
            f.name
        );
        at += f.kind.record_width();
    }
    assert_eq!(at, BOOK_UPDATE.size);
}

/// The straightforward model: a map of live orders; a book is rebuilt from
/// it by summing.
#[derive(Default)]
struct Reference {
    /// locate -> reference -> (side, price, shares)
    orders: HashMap<u16, HashMap<u64, (Side, u32, u32)>>,
    /// reference -> locate
    locate_of: HashMap<u64, u16>,
}

impl Reference {
    fn book(&self, locate: u16) -> Depth {
        let mut sides: [BTreeMap<u32, (u64, u32)>; 2] = Default::default();
        for &(side, price, shares) in self
            .orders
            .get(&locate)
            .into_iter()
            .flat_map(|o| o.values())
        {
            let e = sides[(side == Side::Ask) as usize]
                .entry(price)
                .or_default();
            e.0 += shares as u64;
            e.1 += 1;
        }
        let level = |(&price, &(shares, orders)): (&u32, &(u64, u32))| Level {
            price,
            shares,
            orders,
        };
        Depth {
            bids: sides[0].iter().rev().map(level).collect(),
            asks: sides[1].iter().map(level).collect(),
        }
    }

    fn take(&mut self, reference: u64, shares: Option<u32>) -> (u16, Side, u32) {
        let locate = *self
            .locate_of
            .get(&reference)
            .unwrap_or_else(|| panic!("{reference} not live"));
        let book = self.orders.get_mut(&locate).unwrap();
        let o = book.get_mut(&reference).unwrap();
        let n = shares.unwrap_or(o.2);
        assert!(n <= o.2, "{n} shares of {reference} which has {}", o.2);
        o.2 -= n;
        let (side, price) = (o.0, o.1);
        if o.2 == 0 {
            book.remove(&reference);
            self.locate_of.remove(&reference);
        }
        (locate, side, price)
    }

    fn put(&mut self, locate: u16, reference: u64, side: Side, price: u32, shares: u32) {
        assert!(
            self.locate_of.insert(reference, locate).is_none(),
            "{reference} reused"
        );
        self.orders
            .entry(locate)
            .or_default()
            .insert(reference, (side, price, shares));
    }

    /// Applies a message; the locate it touched.
    fn apply(&mut self, m: &Message<'_>) -> Option<u16> {
        let side = Side::from_indicator;
        match m {
            Message::AddOrder(a) => self.put(
                a.stock_locate(),
                a.order_reference_number(),
                side(a.buy_sell_indicator()),
                a.price(),
                a.shares(),
            ),
            Message::AddOrderMpid(a) => self.put(
                a.stock_locate(),
                a.order_reference_number(),
                side(a.buy_sell_indicator()),
                a.price(),
                a.shares(),
            ),
            Message::OrderExecuted(e) => {
                self.take(e.order_reference_number(), Some(e.executed_shares()));
            }
            Message::OrderExecutedWithPrice(e) => {
                self.take(e.order_reference_number(), Some(e.executed_shares()));
            }
            Message::OrderCancel(x) => {
                self.take(x.order_reference_number(), Some(x.cancelled_shares()));
            }
            Message::OrderDelete(d) => {
                self.take(d.order_reference_number(), None);
            }
            Message::OrderReplace(u) => {
                let (locate, s, _) = self.take(u.original_order_reference_number(), None);
                self.put(
                    locate,
                    u.new_order_reference_number(),
                    s,
                    u.price(),
                    u.shares(),
                );
            }
            _ => return None,
        }
        Some(m.stock_locate())
    }
}

#[test]
fn books_equal_a_rebuild_from_orders_after_every_message_of_a_day() {
    let config = DayConfig::new(2026, 200_000);
    let mut builder = BookBuilder::new();
    let mut reference = Reference::default();
    let mut changed = 0;
    for g in crate::gen::Day::new(&config) {
        let m = decode(g.as_bytes()).unwrap();
        // The reference panics on a reference that is not live or on too
        // many shares; the builder must accept everything the day holds.
        let touched = reference.apply(&m);
        let updates = builder.apply(&m).unwrap_or_else(|e| panic!("{e} at {m:?}"));
        let Some(locate) = touched else {
            assert!(updates.as_slice().is_empty());
            continue;
        };
        assert_eq!(locate, m.stock_locate());
        changed += 1;
        let expected = reference.book(locate);
        assert_eq!(
            builder.depth(locate, usize::MAX),
            expected,
            "book of {locate} after {m:?}"
        );
        let last = updates
            .as_slice()
            .last()
            .expect("an order message updates a level");
        assert_eq!(last.best_bid, expected.bids.first().map_or(0, |l| l.price));
        assert_eq!(last.best_ask, expected.asks.first().map_or(0, |l| l.price));
        assert_eq!(
            last.best_ask_shares,
            expected.asks.first().map_or(0, |l| l.shares)
        );
        // The last update's level is the level as it is now (a replace's
        // first update may concern the same level as its second).
        let side = if last.side == b'B' {
            &expected.bids
        } else {
            &expected.asks
        };
        let level = side
            .iter()
            .find(|l| l.price == last.price)
            .copied()
            .unwrap_or_default();
        assert_eq!(
            (last.level_shares, last.level_orders),
            (level.shares, level.orders)
        );
    }
    assert!(changed > 150_000, "{changed} order messages");
    // Untouched books too: every instrument equals its rebuild at the end.
    let live: usize = reference.orders.values().map(|o| o.len()).sum();
    assert_eq!(builder.live_orders(), live);
    for locate in builder.locates() {
        assert_eq!(builder.depth(locate, usize::MAX), reference.book(locate));
    }
    // Generated books are never crossed at rest: bids below asks.
    let crossed = builder.locates().into_iter().filter(|&l| {
        let t = builder.top(l);
        matches!((t.bid, t.ask), (Some(b), Some(a)) if b.price >= a.price)
    });
    assert_eq!(crossed.count(), 0);
}
