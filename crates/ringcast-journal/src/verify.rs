//! `ringcast journal verify`: every entry of every segment checked, and an
//! exact account of what cannot be read.

use crate::error::JournalError;
use crate::format::{RingDescription, Seal};
use crate::reader::{Item, Journal, Unreadable};
use std::path::{Path, PathBuf};

/// One segment, as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReport {
    pub path: PathBuf,
    /// The first sequence its name stands for.
    pub named_seq: u64,
    /// Why its header cannot be read, if it cannot.
    pub header_problem: Option<String>,
    /// Closed properly (an intact seal).
    pub sealed: bool,
    /// Whole entries in the file, and of those: messages, gap entries, the
    /// messages the gaps stand for, and entries failing their checks.
    pub entries: u64,
    pub messages: u64,
    pub gaps: u64,
    pub lost: u64,
    pub damaged: u64,
    /// Bytes of an entry cut short at the end.
    pub partial_bytes: u64,
    /// Bytes after the sealed entries: a torn tail a recovery sealed off
    /// (accounted when it was, not damage).
    pub sealed_off_bytes: u64,
    /// Sequences of its first and after its last readable entry.
    pub first_seq: Option<u64>,
    pub end_seq: Option<u64>,
    /// Publish times of its first and last message.
    pub first_time: Option<u64>,
    pub last_time: Option<u64>,
    /// Where the seal disagrees with the entries found.
    pub seal_mismatch: Option<String>,
}

/// A whole journal, as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub dir: PathBuf,
    pub ring: RingDescription,
    pub segments: Vec<SegmentReport>,
    /// Readable messages, gap entries and the messages they stand for.
    pub messages: u64,
    pub gaps: u64,
    pub lost: u64,
    /// Entries failing their checks.
    pub damaged: u64,
    /// Sequences that cannot be read, with why.
    pub unreadable: Vec<Unreadable>,
    /// Entries whose sequence goes backwards.
    pub out_of_order: u64,
    /// Sequences of the first entry and after the last readable one.
    pub first_seq: Option<u64>,
    pub end_seq: Option<u64>,
    /// The last segment is not sealed: its writer is running, or died.
    pub open: bool,
}

impl VerifyReport {
    /// Nothing damaged, missing or out of order.
    pub fn intact(&self) -> bool {
        self.damaged == 0
            && self.unreadable.is_empty()
            && self.out_of_order == 0
            && self.segments.iter().all(|s| {
                s.header_problem.is_none() && s.seal_mismatch.is_none() && s.partial_bytes == 0
            })
    }

    /// Messages that cannot be read, where the damage pins the count down.
    pub fn unreadable_messages(&self) -> u64 {
        self.unreadable.iter().filter_map(Unreadable::count).sum()
    }
}

/// Checks every entry of the journal in `dir`.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport, JournalError> {
    let journal = Journal::open(dir)?;
    let mut segments = Vec::new();
    for seg in journal.segments() {
        let mut r = SegmentReport {
            path: seg.path.clone(),
            named_seq: seg.named_seq,
            header_problem: seg.header.as_ref().err().map(|p| p.to_string()),
            sealed: seg.seal.is_some(),
            entries: seg.entries,
            messages: 0,
            gaps: 0,
            lost: 0,
            damaged: 0,
            partial_bytes: seg.partial_bytes,
            sealed_off_bytes: seg.sealed_off_bytes,
            first_seq: None,
            end_seq: None,
            first_time: None,
            last_time: None,
            seal_mismatch: None,
        };
        if let Ok(h) = &seg.header {
            if h.first_seq != seg.named_seq {
                r.header_problem = Some(format!(
                    "its header says it starts at sequence {}, its name says {}",
                    h.first_seq, seg.named_seq
                ));
            }
        }
        // Counted as the writer counts for its seal.
        let mut found = Seal::default();
        for entry in seg.checked_entries() {
            match entry {
                Err(_) => r.damaged += 1,
                Ok(e) => {
                    r.first_seq.get_or_insert(e.seq);
                    found.add(&e);
                }
            }
        }
        (r.messages, r.gaps, r.lost) = (found.messages, found.gaps, found.lost);
        if found.entries > 0 {
            r.end_seq = Some(found.end_seq);
        }
        if found.messages > 0 {
            (r.first_time, r.last_time) = (Some(found.first_time), Some(found.last_time));
        }
        if let Some(seal) = seg.seal {
            let found = (r.entries, r.messages, r.gaps, r.lost);
            let sealed = (seal.entries, seal.messages, seal.gaps, seal.lost);
            if r.damaged == 0 && found != sealed {
                r.seal_mismatch = Some(format!(
                    "sealed with {} entries ({} messages, {} gaps of {} messages), holds {} ({} \
                     messages, {} gaps of {} messages)",
                    sealed.0, sealed.1, sealed.2, sealed.3, found.0, found.1, found.2, found.3
                ));
            } else if r.entries != seal.entries {
                r.seal_mismatch = Some(format!(
                    "sealed with {} entries, holds {}",
                    seal.entries, r.entries
                ));
            }
        }
        segments.push(r);
    }
    let mut report = VerifyReport {
        dir: journal.dir().to_owned(),
        ring: journal.ring().clone(),
        messages: segments.iter().map(|s| s.messages).sum(),
        gaps: segments.iter().map(|s| s.gaps).sum(),
        lost: segments.iter().map(|s| s.lost).sum(),
        damaged: segments.iter().map(|s| s.damaged).sum(),
        open: segments.last().is_some_and(|s| !s.sealed),
        first_seq: segments.iter().find_map(|s| s.first_seq),
        end_seq: segments.iter().rev().find_map(|s| s.end_seq),
        segments,
        unreadable: Vec::new(),
        out_of_order: 0,
    };
    let mut last_end: Option<u64> = None;
    for item in journal.read(journal.start()) {
        match item {
            Item::Entry(e) => {
                if last_end.is_some_and(|end| e.seq < end) {
                    report.out_of_order += 1;
                }
                last_end = Some(e.end_seq());
            }
            Item::Unreadable(u) => report.unreadable.push(u),
        }
    }
    Ok(report)
}
