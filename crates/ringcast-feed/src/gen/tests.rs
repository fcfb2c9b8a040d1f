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
    // Two halts: each a halt, a halt cross and a resumption.
    let halts = SliceReader::new(&file)
        .filter(|m| matches!(m, Ok(Message::StockTradingAction(h)) if h.trading_state() == b'H'))
        .count();
    assert_eq!(halts, 2);
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
            Message::StockTradingAction(h) if h.trading_state() == b'H' => {
                halted.insert(locate);
            }
            Message::StockTradingAction(_) => {
                halted.remove(&locate);
            }
            Message::AddOrder(a) => {
                assert!(!halted.contains(&locate));
                assert!(live
                    .insert(a.order_reference_number(), (locate, a.shares()))
                    .is_none());
            }
            Message::AddOrderMpid(a) => {
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
