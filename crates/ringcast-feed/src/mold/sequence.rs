//! The receiver's accounting of sequence numbers: which messages are new,
//! which were already seen, which are missing.
//!
//! Invariants: every sequence number below `expected` is exactly one of
//! received, missing (inside one of the gaps, which never overlap or touch
//! and end at or below `expected`), or declared lost; so
//! `received + missing + lost == expected - first`. Duplicates are counted
//! apart and never delivered twice.

use std::collections::BTreeMap;
use std::ops::Range;

/// What one packet did to the tracker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketVerdict {
    /// Messages of the packet seen for the first time (deliver them).
    pub fresh: u64,
    /// Messages of the packet seen before.
    pub duplicates: u64,
    /// The gap this packet opened (request it), if any.
    pub new_gap: Option<Range<u64>>,
}

/// Expected next sequence number, open gaps, duplicate and loss counts.
#[derive(Clone, Debug)]
pub struct SequenceTracker {
    first: u64,
    expected: u64,
    /// Missing ranges: start -> end (half-open), disjoint, none reaching
    /// past `expected`.
    gaps: BTreeMap<u64, u64>,
    received: u64,
    duplicates: u64,
    lost: u64,
    /// Messages numbered `u64::MAX`, refused (`expected` could not pass them).
    out_of_range: u64,
}

impl SequenceTracker {
    /// A tracker expecting `first` (1 at the start of a session).
    pub fn new(first: u64) -> Self {
        SequenceTracker {
            first,
            expected: first,
            gaps: BTreeMap::new(),
            received: 0,
            duplicates: 0,
            lost: 0,
            out_of_range: 0,
        }
    }

    /// The next sequence number expected in order.
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// Takes in message `seq`: `true` if it is new (deliver it), `false` if
    /// it was seen before (or declared lost). A jump ahead opens a gap.
    /// Sequence `u64::MAX` is refused and counted apart (no sequence after
    /// it could be expected).
    #[inline]
    pub fn accept(&mut self, seq: u64) -> bool {
        if seq == u64::MAX {
            self.out_of_range += 1;
            return false;
        }
        if seq == self.expected {
            self.expected = seq + 1;
            self.received += 1;
            return true;
        }
        if seq > self.expected {
            self.open_gap(seq);
            self.expected = seq + 1;
            self.received += 1;
            return true;
        }
        // Below `expected`: new only if it fills (part of) a gap.
        let Some((&start, &end)) = self.gaps.range(..=seq).next_back() else {
            self.duplicates += 1;
            return false;
        };
        if seq >= end {
            self.duplicates += 1;
            return false;
        }
        self.gaps.remove(&start);
        if start < seq {
            self.gaps.insert(start, seq);
        }
        if seq + 1 < end {
            self.gaps.insert(seq + 1, end);
        }
        self.received += 1;
        true
    }

    /// Takes in a packet of `count` messages from `first_seq`.
    pub fn accept_packet(&mut self, first_seq: u64, count: u64) -> PacketVerdict {
        let before = self.expected;
        let mut v = PacketVerdict::default();
        if first_seq > before && count > 0 {
            v.new_gap = Some(before..first_seq);
        }
        for seq in first_seq..first_seq.saturating_add(count) {
            if self.accept(seq) {
                v.fresh += 1;
            } else {
                v.duplicates += 1;
            }
        }
        v
    }

    /// Takes in a heartbeat (or end of session) announcing `next` as the
    /// next sequence: messages before it that never came are a gap, which
    /// is returned.
    pub fn heartbeat(&mut self, next: u64) -> Option<Range<u64>> {
        if next <= self.expected {
            return None;
        }
        let gap = self.expected..next;
        self.open_gap(next);
        self.expected = next;
        Some(gap)
    }

    /// Records `expected..end` as missing, merged into the last gap when
    /// that one ends at `expected` (gaps never touch).
    fn open_gap(&mut self, end: u64) {
        match self.gaps.last_key_value() {
            Some((&start, &last_end)) if last_end == self.expected => {
                self.gaps.insert(start, end);
            }
            _ => {
                self.gaps.insert(self.expected, end);
            }
        }
    }

    /// Gives up on every missing message below `up_to`; returns how many
    /// were declared lost by this call.
    pub fn declare_lost(&mut self, up_to: u64) -> u64 {
        let mut newly = 0;
        let below: Vec<(u64, u64)> = self.gaps.range(..up_to).map(|(&s, &e)| (s, e)).collect();
        for (start, end) in below {
            self.gaps.remove(&start);
            let cut = end.min(up_to);
            newly += cut - start;
            if cut < end {
                self.gaps.insert(cut, end);
            }
        }
        self.lost += newly;
        newly
    }

    /// The open gaps, in order.
    pub fn gaps(&self) -> Vec<Range<u64>> {
        self.gaps.iter().map(|(&s, &e)| s..e).collect()
    }

    /// The lowest open gap, if any (cheap: for per-message checks).
    #[inline]
    pub fn first_gap(&self) -> Option<Range<u64>> {
        self.gaps.first_key_value().map(|(&s, &e)| s..e)
    }

    /// Messages still missing (in open gaps).
    pub fn missing(&self) -> u64 {
        self.gaps.iter().map(|(&s, &e)| e - s).sum()
    }

    /// Messages accepted as new.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Messages seen more than once.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Messages declared lost.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Messages refused for their sequence number (`u64::MAX`).
    pub fn out_of_range(&self) -> u64 {
        self.out_of_range
    }

    /// The accounting invariant (see the module docs).
    pub fn accounts_balance(&self) -> bool {
        self.received + self.missing() + self.lost == self.expected - self.first
    }
}
