//! Slot stamps: the per-slot sequence word of the stamp-in-slot protocol.
//!
//! A stamp is `0` for a slot never written, `2*seq + 1` while message `seq` is
//! being written into it and `2*seq + 2` once message `seq` is complete. Stamps
//! of one slot only ever grow, so a reader expecting `seq` can tell from one
//! load whether its message is ready, not there yet, or already overwritten.
//!
//! On multi-producer rings a message whose producer died between claiming
//! and committing it is declared lost by storing [`lost`]`(seq)`: its complete
//! stamp with [`LOST_FLAG`] set. Declaring is one compare-exchange and writes
//! no payload, so a declarer is never inside a slot (the TLA+ model
//! `tla/MpmcRing.tla` found two declarers inside one slot when declaring
//! wrote "writing `seq`" first). Ordering ignores the flag: a lost `seq` is
//! as far along as a complete one.

/// Stamp of a slot that has never been written.
pub const EMPTY: u64 = 0;

/// Stamp stored while message `seq` is being written.
#[inline]
pub const fn writing(seq: u64) -> u64 {
    seq.wrapping_mul(2).wrapping_add(1)
}

/// Stamp stored once message `seq` is complete.
#[inline]
pub const fn complete(seq: u64) -> u64 {
    seq.wrapping_mul(2).wrapping_add(2)
}

/// Flag bit of a [`lost`] stamp. No stamp of a sequence up to [`MAX_SEQ`]
/// reaches it.
pub const LOST_FLAG: u64 = 1 << 63;

/// Stamp of a slot whose message `seq` was declared lost.
#[inline]
pub const fn lost(seq: u64) -> u64 {
    complete(seq) | LOST_FLAG
}

/// A stamp without its [`LOST_FLAG`]: how far along the slot is.
#[inline]
pub const fn progress(stamp: u64) -> u64 {
    stamp & !LOST_FLAG
}

/// Largest sequence number a ring accepts (stamps of larger ones would reach
/// [`LOST_FLAG`]); reached after 146 years at a billion messages a second.
pub const MAX_SEQ: u64 = (1 << 62) - 2;

/// What a slot holds, decoded from its stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Never written.
    Empty,
    /// Message `seq` is being written.
    Writing(u64),
    /// Message `seq` is complete.
    Complete(u64),
    /// Message `seq` was declared lost (a complete lap without a message).
    Lost(u64),
}

/// Decodes a stamp.
#[inline]
pub const fn decode(stamp: u64) -> SlotState {
    if stamp & LOST_FLAG != 0 {
        SlotState::Lost((progress(stamp).saturating_sub(2)) / 2)
    } else if stamp == EMPTY {
        SlotState::Empty
    } else if stamp % 2 == 1 {
        SlotState::Writing((stamp - 1) / 2)
    } else {
        SlotState::Complete((stamp - 2) / 2)
    }
}

/// A reader's verdict on a stamp when it expects message `expected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The slot holds exactly the expected message, complete.
    Ready,
    /// The expected message has not been completed yet (the slot is empty,
    /// holds an older lap, or the expected message is being written).
    NotYet,
    /// The slot already holds a later lap: the expected message is gone.
    Lapped,
    /// The expected message was declared lost: skip it, count it lost.
    Abandoned,
}

/// Classifies `stamp` for a reader that expects message `expected`.
#[inline]
pub const fn observe(stamp: u64, expected: u64) -> Observed {
    if stamp == EMPTY {
        return Observed::NotYet;
    }
    if stamp == complete(expected) {
        return Observed::Ready;
    }
    if stamp == lost(expected) {
        return Observed::Abandoned;
    }
    match decode(stamp) {
        SlotState::Empty => Observed::NotYet,
        SlotState::Writing(s) | SlotState::Complete(s) | SlotState::Lost(s) => {
            if s <= expected {
                Observed::NotYet
            } else {
                Observed::Lapped
            }
        }
    }
}

/// Whether the slot of `seq` is free for a multi-producer writer of `seq`:
/// the previous lap of the slot, message `seq - capacity`, is complete or
/// was declared lost, or the slot was never written and `seq` is on the
/// first lap. Any other stamp means the writer of the previous lap is still
/// inside the slot (or has not entered it yet).
#[inline]
pub const fn previous_lap_done(stamp: u64, seq: u64, capacity: u64) -> bool {
    // Exact values only: a flagged stamp that is not a well-formed lost lap
    // (damage) must not let a writer in.
    stamp == previous_lap(seq, capacity) || (seq >= capacity && stamp == lost(seq - capacity))
}

/// The stamp a slot holds once the lap before `seq` is done: message
/// `seq - capacity` complete, or empty when `seq` is on the first lap (the
/// lap may also be [`lost`], which [`progress`] maps to the same value).
#[inline]
pub const fn previous_lap(seq: u64, capacity: u64) -> u64 {
    if seq < capacity {
        EMPTY
    } else {
        complete(seq - capacity)
    }
}

/// Whose write a slot is stuck on, for a reader (or producer) waiting there
/// for message `seq` while the slot holds `observed`: the sequence whose
/// producer must commit (or be declared lost) before anything can move.
///
/// - "writing `s`" (`s <= seq`, same slot): the producer of `s` is inside;
/// - the completed lap before `seq` (or empty on the first lap): the
///   producer of `seq` has not entered;
/// - an older complete lap `s`, or empty on a later lap: the producer of the
///   lap after it (`s + capacity`, or `seq mod capacity`) has not entered.
///
/// `None` when `observed` does not keep a reader of `seq` waiting (or does
/// not belong to this slot: damage).
#[inline]
pub fn blocking_lap(observed: u64, seq: u64, capacity: u64) -> Option<u64> {
    let same_slot = |s: u64| s <= seq && (seq - s) % capacity == 0;
    match decode(observed) {
        SlotState::Writing(s) if same_slot(s) => Some(s),
        SlotState::Complete(s) | SlotState::Lost(s) if s < seq && same_slot(s) => {
            Some(s + capacity)
        }
        SlotState::Empty => Some(seq % capacity),
        _ => None,
    }
}

/// The first lap of the slot of `stuck` from `stuck` to `last` (both laps
/// of that slot) that a producer holding the claim `first .. end` owns:
/// the laps a recovery may declare lost at once end just before it.
#[inline]
pub fn first_owned_lap(stuck: u64, last: u64, first: u64, end: u64, capacity: u64) -> Option<u64> {
    let from = first.max(stuck);
    let laps_in = (from - stuck).div_ceil(capacity);
    let lap = stuck.checked_add(laps_in.checked_mul(capacity)?)?;
    (lap < end && lap <= last).then_some(lap)
}

/// A lapped reader skips this fraction of the ring beyond the oldest message.
pub const LAP_HEADROOM_DIVISOR: u64 = 8;

/// Where a lapped reader continues, given the publisher cursor (the number of
/// messages published, i.e. the next sequence to be written).
///
/// Messages `cursor - capacity + 1 .. cursor` are complete and the publisher may
/// be overwriting the slot of `cursor - capacity` right now, so the oldest safe
/// message is `cursor - capacity + 1`. A reader resuming exactly there would be
/// overwritten again at once: it would keep reading the very lines the
/// publisher is writing, slowing both (measured: a Python subscriber lapped by a
/// Python publisher delivered 9 M msg/s and held the publisher to 9.5 M/s; with
/// headroom 12.7-13 M/s and 14.5 M/s). So it resumes `capacity / 8` further on.
///
/// The result is always past `position`, so a reader makes progress even on a
/// corrupt cursor, and never past the cursor; every sequence skipped,
/// `result - position`, was published (when the cursor is honest), which is
/// what makes the lost count exact.
#[inline]
pub fn resync_after_lap(position: u64, cursor: u64, capacity: u64) -> u64 {
    let oldest_safe = cursor.saturating_sub(capacity).saturating_add(1);
    let with_headroom = oldest_safe
        .saturating_add(capacity / LAP_HEADROOM_DIVISOR)
        .min(cursor);
    with_headroom.max(position.saturating_add(1))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stamps_decode_to_what_encoded_them() {
        assert_eq!(decode(EMPTY), SlotState::Empty);
        assert_eq!(decode(writing(0)), SlotState::Writing(0));
        assert_eq!(decode(complete(0)), SlotState::Complete(0));
        assert_eq!(decode(writing(41)), SlotState::Writing(41));
        assert_eq!(decode(complete(41)), SlotState::Complete(41));
    }

    #[test]
    fn reader_verdicts() {
        assert_eq!(observe(EMPTY, 0), Observed::NotYet);
        assert_eq!(observe(writing(3), 3), Observed::NotYet);
        assert_eq!(observe(complete(3), 3), Observed::Ready);
        assert_eq!(observe(complete(3 - 2), 3), Observed::NotYet);
        assert_eq!(observe(writing(7), 3), Observed::Lapped);
        assert_eq!(observe(complete(7), 3), Observed::Lapped);
        assert_eq!(observe(lost(3), 3), Observed::Abandoned);
        assert_eq!(observe(lost(1), 3), Observed::NotYet);
        assert_eq!(observe(lost(7), 3), Observed::Lapped);
    }

    #[test]
    fn the_largest_sequence_stays_clear_of_the_lost_flag() {
        assert_eq!(complete(MAX_SEQ) & LOST_FLAG, 0);
        assert_eq!(decode(complete(MAX_SEQ)), SlotState::Complete(MAX_SEQ));
        assert_eq!(decode(lost(MAX_SEQ)), SlotState::Lost(MAX_SEQ));
        assert_eq!(decode(lost(0)), SlotState::Lost(0));
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(seq in 0u64..=MAX_SEQ) {
            prop_assert_eq!(decode(writing(seq)), SlotState::Writing(seq));
            prop_assert_eq!(decode(complete(seq)), SlotState::Complete(seq));
            prop_assert_eq!(decode(lost(seq)), SlotState::Lost(seq));
            prop_assert_eq!(progress(lost(seq)), complete(seq));
        }

        /// Within one slot, stamps of the laps `seq - k*cap`, `seq`, `seq + k*cap`
        /// give NotYet, Ready and Lapped respectively.
        #[test]
        fn laps_are_classified_by_order(seq in 0u64..1u64 << 40, cap_log in 1u32..20, k in 1u64..1000) {
            let cap = 1u64 << cap_log;
            prop_assert_eq!(observe(complete(seq), seq), Observed::Ready);
            prop_assert_eq!(observe(writing(seq + k * cap), seq), Observed::Lapped);
            prop_assert_eq!(observe(complete(seq + k * cap), seq), Observed::Lapped);
            if seq >= k * cap {
                prop_assert_eq!(observe(complete(seq - k * cap), seq), Observed::NotYet);
                prop_assert_eq!(observe(writing(seq - k * cap), seq), Observed::NotYet);
            }
        }

        /// A multi-producer writer enters a slot only after the previous lap
        /// completed: never while it is empty on a later lap, being written,
        /// or holding any other message.
        #[test]
        fn writer_enters_only_after_previous_lap(seq in 0u64..1 << 40, cap_log in 1u32..20, other in 0u64..1 << 41) {
            prop_assert!(!previous_lap_done(LOST_FLAG, seq, 1u64 << cap_log));
            prop_assert!(!previous_lap_done(LOST_FLAG | writing(seq), seq, 1u64 << cap_log));
            let cap = 1u64 << cap_log;
            if seq >= cap {
                prop_assert!(previous_lap_done(complete(seq - cap), seq, cap));
                prop_assert!(previous_lap_done(lost(seq - cap), seq, cap));
                prop_assert!(!previous_lap_done(writing(seq - cap), seq, cap));
                prop_assert!(!previous_lap_done(EMPTY, seq, cap));
                if other != seq - cap {
                    prop_assert!(!previous_lap_done(complete(other), seq, cap));
                }
            } else {
                prop_assert!(previous_lap_done(EMPTY, seq, cap));
                prop_assert!(!previous_lap_done(complete(other), seq, cap));
            }
            prop_assert!(!previous_lap_done(writing(other), seq, cap));
        }

        /// The lap a stuck slot waits on is in the slot, not after `seq`, and
        /// declaring it lost lets that lap's successor in.
        #[test]
        fn blocking_lap_is_the_next_writer_of_the_slot(seq in 0u64..1 << 40, cap_log in 1u32..12, back in 0u64..5) {
            let cap = 1u64 << cap_log;
            let earlier = seq.checked_sub(back * cap);
            if let Some(s) = earlier {
                prop_assert_eq!(blocking_lap(writing(s), seq, cap), Some(s));
                let lap = blocking_lap(complete(s), seq, cap);
                if s < seq {
                    prop_assert_eq!(lap, Some(s + cap));
                    prop_assert_eq!(blocking_lap(lost(s), seq, cap), Some(s + cap));
                    prop_assert!(previous_lap_done(complete(s), s + cap, cap));
                    prop_assert!(previous_lap_done(lost(s), s + cap, cap));
                } else {
                    prop_assert_eq!(lap, None); // complete(seq) is ready, not stuck
                }
            }
            let first = blocking_lap(EMPTY, seq, cap).unwrap();
            prop_assert!(first < cap && first % cap == seq % cap);
            prop_assert_eq!(blocking_lap(complete(seq + cap), seq, cap), None);
            prop_assert_eq!(blocking_lap(lost(seq), seq, cap), None);
            prop_assert_eq!(blocking_lap(lost(seq + cap), seq, cap), None);
            prop_assert_eq!(blocking_lap(writing(seq + 1), seq, cap), None);
        }

        /// The first owned lap is a lap of the slot inside both the claim and
        /// the laps asked about, and no earlier lap of the slot is in both.
        #[test]
        fn first_owned_lap_is_the_earliest_common_lap(
            stuck in 0u64..1 << 20, laps in 0u64..6, cap_log in 1u32..6,
            first in 0u64..1 << 21, len in 0u64..200,
        ) {
            let cap = 1u64 << cap_log;
            let last = stuck + laps * cap;
            let end = first + len;
            let found = first_owned_lap(stuck, last, first, end, cap);
            let expected = (0..=laps).map(|k| stuck + k * cap).find(|l| (first..end).contains(l));
            prop_assert_eq!(found, expected);
        }

        /// A lapped reader always moves forward, never past the cursor, and
        /// lands on a message still in the ring: its loss is exact and minimal.
        #[test]
        fn resync_is_forward_exact_and_in_ring(cap_log in 1u32..24, position in 0u64..1u64 << 40, ahead in 0u64..1u64 << 30) {
            let cap = 1u64 << cap_log;
            // A reader is lapped only when its slot holds `position + k*cap`
            // (k >= 1), which means the cursor is past that message.
            let cursor = position + cap + 1 + ahead;
            let next = resync_after_lap(position, cursor, cap);
            prop_assert!(next > position);
            prop_assert!(next <= cursor);
            prop_assert_eq!(next, cursor - cap + 1 + cap / LAP_HEADROOM_DIVISOR);
            // Every message from `next` to `cursor - 1` is still in the ring
            // while the publisher writes `cursor`.
            prop_assert!(cursor - next < cap);
        }

        /// Whatever the cursor says (corrupt or racing), the reader progresses.
        #[test]
        fn resync_always_progresses(position: u64, cursor: u64, cap_log in 1u32..63) {
            let next = resync_after_lap(position, cursor, 1u64 << cap_log);
            prop_assert!(next > position || position == u64::MAX);
        }
    }
}
