use std::collections::HashMap;

use super::*;
use crate::file::SliceReader;
use crate::itch::{decode, Message};
use crate::symbols::SymbolDirectory;

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = itch_bytes(&DayConfig::new(42, 30_000));
    let b = itch_bytes(&DayConfig::new(42, 30_000));
    let c = itch_bytes(&DayConfig::new(43, 30_000));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut written = Vec::new();
    assert_eq!(
        write_itch(&DayConfig::new(42, 30_000), &mut written).unwrap(),
        30_000
    );
    assert_eq!(written, a);
}

#[test]
fn exactly_the_budget_every_message_decodes_time_never_goes_back() {
    for messages in [0, 1, 100, 5_000, 60_000] {
        let mut n = 0;
        let mut last = 0;
        for m in generate(7, messages) {
            let msg = decode(m.as_bytes()).unwrap();
            assert!(msg.timestamp() >= last, "time went back at message {n}");
            last = msg.timestamp();
            n += 1;
        }
        assert_eq!(n, messages);
    }
}

#[test]
fn a_day_has_its_events_in_order_and_the_flow_types() {
    let config = DayConfig::new(11, 200_000);
    let file = itch_bytes(&config);
    let mut reader = SliceReader::new(&file);
    let mut system = Vec::new();
    let mut directory = SymbolDirectory::new();
    let mut first_add_at = None;
    for (i, m) in reader.by_ref().enumerate() {
        let m = m.unwrap();
        directory.observe(&m);
        match m {
            Message::SystemEvent(s) => system.push((s.event_code(), s.timestamp())),
            Message::AddOrder(_) | Message::AddOrderMpid(_) if first_add_at.is_none() => {
                first_add_at = Some(i)
            }
            _ => {}
        }
        // Every stock message names a listed locate once the directory is out.
        if first_add_at.is_some() {
            assert!(m.stock_locate() == 0 || directory.symbol(m.stock_locate()).is_some());
        }
    }
    let codes: Vec<u8> = system.iter().map(|s| s.0).collect();
    assert_eq!(codes, b"OSQMEC".to_vec());
    assert_eq!(system[2].1, clock::OPEN);
    assert_eq!(system[3].1, clock::CLOSE);
    assert_eq!(directory.len(), config.symbols);
    assert_eq!(directory.symbol(1), Some("AAPL"));
    let counts = reader.counts();
    assert_eq!(counts.messages(), 200_000);
    assert_eq!(counts.errors(), 0);
    for t in [
        MessageType::StockDirectory,
        MessageType::StockTradingAction,
        MessageType::RegShoRestriction,
        MessageType::MarketParticipantPosition,
        MessageType::MwcbDeclineLevel,
        MessageType::AddOrder,
        MessageType::AddOrderMpid,
        MessageType::OrderExecuted,
        MessageType::OrderExecutedWithPrice,
        MessageType::OrderCancel,
        MessageType::OrderDelete,
        MessageType::OrderReplace,
        MessageType::Trade,
        MessageType::CrossTrade,
        MessageType::Noii,
    ] {
        assert!(counts.of(t) > 0, "no {t:?} in a generated day");
    }
    // Adds and deletes dominate, as on a real day.
    let adds = counts.of(MessageType::AddOrder) + counts.of(MessageType::AddOrderMpid);
    assert!(adds > counts.of(MessageType::OrderExecuted) * 3);
    assert!(counts.of(MessageType::OrderDelete) > counts.of(MessageType::OrderCancel));
    // Two LULD pauses: each a pause, a halt cross and a resumption.
    let pauses = SliceReader::new(&file)
        .filter(|m| matches!(m, Ok(Message::StockTradingAction(h)) if h.trading_state() == b'P'))
        .count();
    assert_eq!(pauses, 2);
}

#[test]
fn order_references_are_live_and_shares_never_go_negative() {
    // reference -> (locate, remaining shares)
    let mut live: HashMap<u64, (u16, u32)> = HashMap::new();
    let mut halted = std::collections::HashSet::new();
    for m in generate(5, 100_000) {
        let m = decode(m.as_bytes()).unwrap();
        let locate = m.stock_locate();
        let take = |live: &mut HashMap<u64, (u16, u32)>, r: u64, n: u32, whole: bool| {
            let (at, shares) = live
                .get_mut(&r)
                .unwrap_or_else(|| panic!("order {r} is not live"));
            assert_eq!(*at, locate, "order {r} is on another stock");
            assert!(
                n <= *shares && (whole || n < *shares),
                "{n} of {shares} shares of {r}"
            );
            *shares -= n;
            if *shares == 0 {
                live.remove(&r);
            }
        };
        match m {
            // Halted, paused or quoting only: no adds (an operational
            // halt on Nasdaq likewise, counted apart).
            Message::StockTradingAction(h) if h.trading_state() != b'T' => {
                halted.insert((locate, b'H'));
            }
            Message::StockTradingAction(_) => {
                halted.remove(&(locate, b'H'));
            }
            Message::OperationalHalt(h) if h.market_code() == b'Q' => {
                if h.operational_halt_action() == b'H' {
                    halted.insert((locate, b'h'));
                } else {
                    halted.remove(&(locate, b'h'));
                }
            }
            Message::AddOrder(a) => {
                assert!(!halted.contains(&(locate, b'H')) && !halted.contains(&(locate, b'h')));
                assert!(live
                    .insert(a.order_reference_number(), (locate, a.shares()))
                    .is_none());
            }
            Message::AddOrderMpid(a) => {
                assert!(!halted.contains(&(locate, b'H')) && !halted.contains(&(locate, b'h')));
                assert!(live
                    .insert(a.order_reference_number(), (locate, a.shares()))
                    .is_none());
            }
            Message::OrderExecuted(e) => take(
                &mut live,
                e.order_reference_number(),
                e.executed_shares(),
                true,
            ),
            Message::OrderExecutedWithPrice(e) => take(
                &mut live,
                e.order_reference_number(),
                e.executed_shares(),
                true,
            ),
            Message::OrderCancel(x) => take(
                &mut live,
                x.order_reference_number(),
                x.cancelled_shares(),
                false,
            ),
            Message::OrderDelete(d) => {
                let r = d.order_reference_number();
                let shares = live
                    .get(&r)
                    .map(|o| o.1)
                    .unwrap_or_else(|| panic!("deleted {r} is not live"));
                take(&mut live, r, shares, true);
            }
            Message::OrderReplace(u) => {
                let r = u.original_order_reference_number();
                let shares = live
                    .get(&r)
                    .map(|o| o.1)
                    .unwrap_or_else(|| panic!("replaced {r} is not live"));
                take(&mut live, r, shares, true);
                assert!(live
                    .insert(u.new_order_reference_number(), (locate, u.shares()))
                    .is_none());
            }
            _ => {}
        }
    }
    assert!(!live.is_empty());
}

/// The rare messages of one day, checked for consistency as they come.
#[derive(Default)]
struct Rare {
    /// Locates whose directory message has the IPO flag.
    ipo: std::collections::HashSet<u16>,
    /// Match number -> locate, of every E, C, P and Q so far.
    matches: HashMap<u64, u16>,
    broken: std::collections::HashSet<u64>,
    /// Locate -> its last trading state.
    state: HashMap<u16, u8>,
    /// Locate -> the collar extension expected next during its pause.
    collar: HashMap<u16, u32>,
    /// (locate, market) -> operational halt on.
    op_halted: HashMap<(u16, u8), bool>,
    /// Locate -> it has printed its first cross.
    opened: std::collections::HashSet<u16>,
    /// Locate -> (updates, eligible) of its DLCR price discovery.
    dlcr: HashMap<u16, (u32, bool)>,
    mwcb_levels: bool,
    mwcb_breaches: u32,
    /// The latest timestamp: never decreasing.
    last: u64,
}

impl Rare {
    fn observe(&mut self, m: &Message) {
        let locate = m.stock_locate();
        let t = m.timestamp();
        assert!(t >= self.last, "time went back at {m:?}");
        self.last = t;
        match m {
            Message::StockDirectory(r) if r.ipo_flag() == b'Y' => {
                self.ipo.insert(locate);
            }
            Message::StockTradingAction(h) => {
                let state = h.trading_state();
                if state == b'P' || state == b'H' {
                    self.collar.insert(locate, 0);
                }
                self.state.insert(locate, state);
            }
            Message::MwcbDeclineLevel(_) => self.mwcb_levels = true,
            Message::MwcbStatus(w) => {
                assert!(self.mwcb_levels, "W before V");
                assert_eq!(w.breached_level(), b'1');
                assert!(t >= clock::at(15, 25, 0) && t < clock::CLOSE);
                self.mwcb_breaches += 1;
            }
            Message::IpoQuotingPeriodUpdate(k) => {
                assert!(
                    self.ipo.contains(&locate),
                    "K for a listing not flagged IPO"
                );
                assert!(t < clock::OPEN, "K after the open");
                let release = u64::from(k.ipo_quotation_release_time()) * clock::SECOND;
                assert!(release > clock::OPEN && release < clock::CLOSE);
                assert!(matches!(k.ipo_quotation_release_qualifier(), b'A' | b'C'));
                assert!(k.ipo_price() > 0 && k.ipo_price() % 100 == 0);
            }
            Message::LuldAuctionCollar(j) => {
                assert!(matches!(self.state.get(&locate), Some(b'P' | b'H')));
                let expected = self.collar.get_mut(&locate).expect("a paused listing");
                assert_eq!(j.auction_collar_extension(), *expected);
                *expected += 1;
                let (reference, upper, lower) = (
                    j.auction_collar_reference_price(),
                    j.upper_auction_collar_price(),
                    j.lower_auction_collar_price(),
                );
                assert!(upper > reference && reference > lower, "{j:?}");
            }
            Message::OperationalHalt(h) => {
                assert!(matches!(h.market_code(), b'Q' | b'B' | b'X'));
                let on = self.op_halted.entry((locate, h.market_code())).or_default();
                // A halt when not halted, a resume when halted.
                assert_eq!(h.operational_halt_action(), if *on { b'T' } else { b'H' });
                *on = !*on;
            }
            Message::OrderExecuted(e) => self.matched(e.match_number(), locate),
            Message::OrderExecutedWithPrice(e) => self.matched(e.match_number(), locate),
            Message::Trade(p) => self.matched(p.match_number(), locate),
            Message::CrossTrade(q) => {
                self.matched(q.match_number(), locate);
                if let Some(&(updates, eligible)) = self.dlcr.get(&locate) {
                    if !self.opened.contains(&locate) {
                        assert!(
                            updates > 0 && eligible,
                            "a direct listing opened ineligible"
                        );
                    }
                }
                self.opened.insert(locate);
            }
            Message::BrokenTrade(b) => {
                let n = b.match_number();
                assert_eq!(self.matches.get(&n), Some(&locate), "B of match {n}");
                assert!(self.broken.insert(n), "match {n} broken twice");
            }
            Message::Rpii(n) => assert!(matches!(n.interest_flag(), b'B' | b'S' | b'A' | b'N')),
            Message::DlcrPriceDiscovery(o) => {
                assert!(self.ipo.contains(&locate) && !self.opened.contains(&locate));
                let near = o.near_execution_price();
                assert!(o.minimum_allowable_price() <= near && near <= o.maximum_allowable_price());
                assert!(
                    o.lower_price_range_collar() <= near && near <= o.upper_price_range_collar()
                );
                assert!(o.near_execution_time() <= t);
                let d = self.dlcr.entry(locate).or_default();
                assert!(!d.1, "an update after the eligible one");
                *d = (d.0 + 1, o.open_eligibility_status() == b'Y');
            }
            _ => {}
        }
    }

    fn matched(&mut self, n: u64, locate: u16) {
        assert!(self.matches.insert(n, locate).is_none(), "match {n} reused");
    }
}

#[test]
fn every_day_has_all_23_types_and_the_rare_ones_are_consistent() {
    // Several 200,000-message days, and the smallest days required to hold
    // every type (100,000 messages).
    for (seed, messages) in [
        (1, 200_000),
        (2, 200_000),
        (3, 200_000),
        (4, 200_000),
        (5, 100_000),
        (6, 100_000),
    ] {
        let file = itch_bytes(&DayConfig::new(seed, messages));
        let mut reader = SliceReader::new(&file);
        let mut rare = Rare::default();
        for m in reader.by_ref() {
            rare.observe(&m.unwrap());
        }
        let counts = reader.counts();
        assert_eq!(counts.messages(), messages);
        for &t in MessageType::ALL {
            assert!(counts.of(t) > 0, "seed {seed}: no {t:?}");
        }
        assert_eq!(MessageType::ALL.len(), 23);
        assert_eq!(rare.mwcb_breaches, 1);
        // Every operational halt was resumed; every pause ended.
        assert!(rare.op_halted.values().all(|on| !on));
        // Rare means rare: the new types are a sliver of the day.
        let new: u64 = [
            MessageType::MwcbStatus,
            MessageType::IpoQuotingPeriodUpdate,
            MessageType::LuldAuctionCollar,
            MessageType::OperationalHalt,
            MessageType::BrokenTrade,
            MessageType::Rpii,
            MessageType::DlcrPriceDiscovery,
        ]
        .iter()
        .map(|&t| counts.of(t))
        .sum();
        assert!(new < 100, "seed {seed}: {new} rare messages");
    }
}
