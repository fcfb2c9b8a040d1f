//! The timed events of a day, known in advance: system events, the
//! directory messages before the open (`R`, `H`, `Y`, `L`, `V`), order
//! imbalance indicators (`I`) before both crosses, the opening and
//! closing cross prints (`Q`), and trading halts with their resumptions.
//!
//! Invariant: the list is sorted by time (ties keep insertion order), and
//! every event is at or after 03:05 and at or before 20:05.

use super::clock::{at, CLOSE, FLOW_END, FLOW_START, OPEN};
use super::rng::Rng;

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
    /// `I` for the listing, before the cross of this type.
    Imbalance(usize, u8),
    /// `Q` for the listing, cross of this type (`O`, `C`, `H`).
    Cross(usize, u8),
}

/// The day's timed events, sorted by time.
pub(crate) fn build(rng: &mut Rng, listings: usize, halts: usize) -> Vec<(u64, Event)> {
    let mut ev: Vec<(u64, Event)> = Vec::new();
    let us = 1_000;
    ev.push((at(3, 5, 0), Event::System(b'O')));
    for i in 0..listings {
        let step = (i as u64 + 1) * us;
        ev.push((at(3, 5, 1) + step, Event::Directory(i)));
        ev.push((at(3, 6, 0) + step, Event::TradingAction(i, b'T', *b"    ")));
        ev.push((at(3, 7, 0) + step, Event::RegSho(i)));
    }
    for i in 0..listings.min(50) {
        for m in 0..3 {
            let mpid = (i * 3 + m) % super::flow::MPIDS.len();
            ev.push((
                at(3, 8, 0) + (i as u64 * 3 + m as u64) * us,
                Event::Position(i, mpid),
            ));
        }
    }
    ev.push((at(3, 9, 0), Event::MwcbLevels));
    ev.push((FLOW_START, Event::System(b'S')));
    // Imbalance indicators for the most active names before each cross.
    let top = listings.min(20);
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
            for i in 0..top {
                ev.push((t + i as u64 * us, Event::Imbalance(i, cross)));
            }
        }
    }
    ev.push((OPEN, Event::System(b'Q')));
    for i in 0..listings {
        ev.push((OPEN + (i as u64 + 1) * us, Event::Cross(i, b'O')));
    }
    // Halts of mid-ranked names during the day, five minutes each, reopened
    // by a halt cross.
    if listings >= 20 {
        for _ in 0..halts {
            let i = rng.between(5, listings as u64 - 1) as usize;
            let t = at(10, 0, 0) + rng.below(at(15, 0, 0) - at(10, 0, 0));
            ev.push((t, Event::TradingAction(i, b'H', *b"LUDP")));
            let resume = t + at(0, 5, 0);
            ev.push((resume, Event::Cross(i, b'H')));
            ev.push((resume + us, Event::TradingAction(i, b'T', *b"LUDP")));
        }
    }
    ev.push((CLOSE, Event::System(b'M')));
    for i in 0..listings {
        ev.push((CLOSE + (i as u64 + 1) * us, Event::Cross(i, b'C')));
    }
    ev.push((FLOW_END, Event::System(b'E')));
    ev.push((at(20, 5, 0), Event::System(b'C')));
    ev.sort_by_key(|&(t, _)| t);
    ev
}
