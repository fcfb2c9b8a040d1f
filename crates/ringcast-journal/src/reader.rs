//! Reading a journal: its segments mapped read-only, entries checked one by
//! one, seeks by sequence and time, and one walk that accounts for every
//! sequence: delivered by an entry, stood for by a gap entry, or reported
//! unreadable (damaged entries, a torn tail, a missing or ruined segment)
//! with the exact range wherever the surrounding entries pin it down.

use crate::error::JournalError;
use crate::format::{
    self, decode_entry, Entry, EntryProblem, HeaderProblem, RingDescription, Seal, SegmentHeader,
    HEADER_LEN,
};
use memmap2::Mmap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The bytes of a segment file as opened.
enum Bytes {
    Mapped(Mmap),
    /// Files too short for a header are read, not mapped.
    Read(Vec<u8>),
}

impl Bytes {
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Read(bytes) => bytes,
        }
    }
}

/// One segment file of a journal.
pub struct Segment {
    /// The file.
    pub path: PathBuf,
    /// The first sequence its name stands for.
    pub named_seq: u64,
    /// Its header, or why it cannot be read (then it has no entries).
    pub header: Result<SegmentHeader, HeaderProblem>,
    /// Its seal, if it was closed properly.
    pub seal: Option<Seal>,
    /// Whole entries in the file.
    pub entries: u64,
    /// Bytes after the last whole entry (a cut-short write).
    pub partial_bytes: u64,
    /// Bytes after a sealed segment's entries: the torn tail a recovery
    /// sealed off (kept in the file, never read).
    pub sealed_off_bytes: u64,
    bytes: Bytes,
    stride: usize,
    slot_size: u32,
}

impl Segment {
    /// Opens (maps) the segment at `path`.
    pub fn open(path: &Path) -> Result<Segment, JournalError> {
        let io = |e| JournalError::io("read", path, e);
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let bytes = if len < HEADER_LEN as u64 {
            let mut buf = Vec::new();
            file.read_to_end(&mut buf).map_err(io)?;
            Bytes::Read(buf)
        } else {
            // SAFETY: the map is read-only and private to this value. A
            // journal's files are never shortened: entries are only appended
            // and the seal area is rewritten whole, by the one writer holding
            // the directory's lock (a recovery seals a torn tail off rather
            // than cutting it), so every byte this reader looks at stays below
            // the file's length. Truncating a segment while it is mapped
            // (outside that contract, by hand) would raise SIGBUS, as it would
            // for any memory-mapped reader (numpy.memmap included).
            Bytes::Mapped(unsafe { Mmap::map(&file) }.map_err(io)?)
        };
        let named_seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(format::parse_segment_name)
            .unwrap_or(0);
        let header = SegmentHeader::decode(bytes.get());
        let (stride, slot_size) = match &header {
            Ok(h) => (h.stride as usize, h.ring.slot_size),
            Err(_) => (1, 0),
        };
        let data = bytes.get().len().saturating_sub(HEADER_LEN) as u64;
        let seal = header.as_ref().ok().and_then(|_| Seal::decode(bytes.get()));
        let whole = data / stride as u64;
        let (entries, partial_bytes, sealed_off_bytes) = match (&header, seal) {
            (Err(_), _) => (0, 0, 0),
            // A seal counting fewer entries than the file holds: the rest is
            // a torn tail a recovery sealed off. (A seal counting more is a
            // file cut short after sealing: `verify` reports the mismatch.)
            (Ok(_), Some(seal)) if seal.entries <= whole => {
                (seal.entries, 0, data - seal.entries * stride as u64)
            }
            (Ok(_), _) => (whole, data % stride as u64, 0),
        };
        Ok(Segment {
            path: path.to_owned(),
            named_seq,
            seal,
            header,
            entries,
            partial_bytes,
            sealed_off_bytes,
            bytes,
            stride,
            slot_size,
        })
    }

    /// The bytes of entry `i` (one stride).
    pub fn entry_bytes(&self, i: u64) -> &[u8] {
        let at = HEADER_LEN + i as usize * self.stride;
        &self.bytes.get()[at..at + self.stride]
    }

    /// Entry `i`, checked.
    #[inline]
    pub fn entry(&self, i: u64) -> Result<Entry<'_>, EntryProblem> {
        decode_entry(self.entry_bytes(i), self.slot_size)
    }

    /// Entry `i`, its CRC checked only with `crc`.
    #[inline]
    pub fn entry_checked(&self, i: u64, crc: bool) -> Result<Entry<'_>, EntryProblem> {
        format::decode_entry_checked(self.entry_bytes(i), self.slot_size, crc)
    }

    /// Every entry in order, checked ([`Segment::entry`]), with the CRCs of
    /// 64 entries at a time checked side by side.
    pub fn checked_entries(&self) -> impl Iterator<Item = Result<Entry<'_>, EntryProblem>> {
        let mut window = CrcWindow::default();
        (0..self.entries).map(move |i| window.entry(self, 0, i))
    }

    /// The entries' bytes (`entries * stride`).
    pub fn data(&self) -> &[u8] {
        let end = HEADER_LEN + self.entries as usize * self.stride;
        self.bytes.get().get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// Bytes per entry.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The last entry at or before index `upto` that reads.
    fn prev_valid(&self, upto: u64) -> Option<(u64, Entry<'_>)> {
        (0..=upto)
            .rev()
            .find_map(|i| self.entry(i).ok().map(|e| (i, e)))
    }

    /// The first entry index whose readable entry satisfies `past` (a
    /// predicate false then true along the segment), by binary search;
    /// damaged entries take the verdict of the nearest readable one before.
    fn partition(&self, past: impl Fn(&Entry<'_>) -> bool) -> u64 {
        let (mut lo, mut hi) = (0, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let verdict = match self.prev_valid(mid) {
                Some((_, e)) => past(&e),
                None => false,
            };
            if verdict {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }
}

/// Entry CRCs checked ahead, 64 entries of one segment at a time, several
/// side by side ([`crate::crc::matching`]): an entry whose CRC matched is
/// then decoded without computing it again; any other entry is decoded
/// fully checked, which says exactly what is wrong with it.
#[derive(Default)]
struct CrcWindow {
    /// Segment index, first entry and count of the window.
    segment: usize,
    from: u64,
    len: u64,
    /// Bit `k`: entry `from + k` carries the CRC its bytes have.
    matching: u64,
}

impl CrcWindow {
    /// Entry `i` of segment `seg` (at index `segment` of its journal), checked.
    #[inline]
    fn entry<'s>(
        &mut self,
        seg: &'s Segment,
        segment: usize,
        i: u64,
    ) -> Result<Entry<'s>, EntryProblem> {
        if segment != self.segment || i < self.from || i >= self.from + self.len {
            let len = (seg.entries - i).min(64);
            self.matching = crate::crc::matching(seg.data(), seg.stride, i as usize, len as usize);
            (self.segment, self.from, self.len) = (segment, i, len);
        }
        let matched = self.matching >> (i - self.from) & 1 == 1;
        seg.entry_checked(i, !matched)
    }
}

/// Where a read starts: an entry of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub segment: usize,
    pub index: u64,
}

/// A journal directory, opened for reading.
pub struct Journal {
    dir: PathBuf,
    ring: RingDescription,
    segments: Vec<Segment>,
}

/// The segment files in `dir`, by first sequence.
pub(crate) fn segment_paths(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        if let Some(seq) = entry
            .file_name()
            .to_str()
            .and_then(format::parse_segment_name)
        {
            found.push((seq, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

impl Journal {
    /// Opens the journal in `dir`: every segment mapped, headers checked.
    pub fn open(dir: impl AsRef<Path>) -> Result<Journal, JournalError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(JournalError::NotAJournal {
                dir: dir.to_owned(),
                why: "no such directory".into(),
            });
        }
        let segments = segment_paths(dir)?
            .into_iter()
            .map(|(_, path)| Segment::open(&path))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ring: Option<RingDescription> = None;
        for seg in &segments {
            if let Ok(h) = &seg.header {
                match &ring {
                    None => ring = Some(h.ring.clone()),
                    Some(r) => {
                        if let Some(clash) = r.clash(&h.ring) {
                            return Err(JournalError::Mixed {
                                dir: dir.to_owned(),
                                segment: seg.path.clone(),
                                clash,
                            });
                        }
                    }
                }
            }
        }
        let Some(ring) = ring else {
            let why = match segments.first() {
                None => "it holds no segment files (*.rcj)".to_owned(),
                Some(seg) => format!(
                    "none of its {} segment files has a readable header ({}: {})",
                    segments.len(),
                    seg.path.display(),
                    seg.header.as_ref().expect_err("no readable header")
                ),
            };
            return Err(JournalError::NotAJournal {
                dir: dir.to_owned(),
                why,
            });
        };
        Ok(Journal {
            dir: dir.to_owned(),
            ring,
            segments,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ring recorded.
    pub fn ring(&self) -> &RingDescription {
        &self.ring
    }

    /// The segments, in sequence order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Where the journal starts.
    pub fn start(&self) -> Position {
        Position::default()
    }

    /// The first entry holding sequence `seq` or a later one (a gap entry
    /// covering `seq` included).
    pub fn seek_seq(&self, seq: u64) -> Position {
        // Segments are named by their first sequence: the last one named at
        // or below `seq` holds it, if any does.
        let first = self
            .segments
            .partition_point(|s| s.named_seq <= seq)
            .saturating_sub(1);
        for (k, seg) in self.segments.iter().enumerate().skip(first) {
            let index = seg.partition(|e| e.end_seq() > seq);
            if index < seg.entries {
                return Position { segment: k, index };
            }
        }
        self.end()
    }

    /// The first message published at or after `time` (CLOCK_MONOTONIC ns
    /// of the recording host). Publish times are taken in order on a
    /// single-producer ring; with many producers they may be out of order
    /// by the time a claim takes, and the search lands within that.
    pub fn seek_time(&self, time: u64) -> Position {
        for (k, seg) in self.segments.iter().enumerate() {
            if let Some(seal) = &seg.seal {
                if seal.messages > 0 && seal.last_time < time {
                    continue;
                }
            }
            // A gap entry carries the time of the message after it: judged
            // by its time like a message, the predicate stays monotone.
            let index = seg.partition(|e| e.time >= time);
            if index < seg.entries {
                return Position { segment: k, index };
            }
        }
        self.end()
    }

    /// Every entry holding sequence `seq` or a later one, with the account
    /// starting at `seq` (or the journal's first sequence, if later): a
    /// stretch missing right at `seq` (a removed segment, a damaged end) is
    /// reported, not skipped silently.
    pub fn read_from_seq(&self, seq: u64, crc: bool) -> Entries<'_> {
        let mut entries = self.read_checked(self.seek_seq(seq), crc);
        let first = self.segments.first().map_or(0, |s| s.named_seq);
        entries.expected = Some(seq.max(first));
        entries
    }

    /// The position after the last entry.
    pub fn end(&self) -> Position {
        Position {
            segment: self.segments.len(),
            index: 0,
        }
    }

    /// Every entry from `from` on, with every sequence accounted for.
    pub fn read(&self, from: Position) -> Entries<'_> {
        self.read_checked(from, true)
    }

    /// [`Journal::read`], checking each entry's CRC only with `crc` (for a
    /// journal `verify` passed: about twice as fast; entries are still
    /// checked for a sane tag, so nothing out of bounds is ever read).
    pub fn read_checked(&self, from: Position, crc: bool) -> Entries<'_> {
        let expected = self.expected_at(from);
        Entries {
            journal: self,
            at: from,
            expected,
            damaged: 0,
            damage: Vec::new(),
            pending_tail: None,
            crc,
            window: CrcWindow::default(),
        }
    }

    /// The sequence the entry at `at` should start with, if the entries
    /// before it say.
    fn expected_at(&self, at: Position) -> Option<u64> {
        let seg = self.segments.get(at.segment)?;
        // A position from another opening of the journal may lie beyond
        // the entries this one sees.
        let index = at.index.min(seg.entries);
        if index > 0 {
            if let Some((_, e)) = seg.prev_valid(index - 1) {
                return Some(e.end_seq());
            }
        }
        seg.header.as_ref().ok().map(|h| h.first_seq)
    }
}

/// Why sequences are unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Entries fail their checks (bytes changed, or torn by a crash).
    Damaged { segment: PathBuf, entries: u64 },
    /// A segment's last entry was cut short (a write interrupted by a crash).
    Partial { segment: PathBuf, bytes: u64 },
    /// A segment's header cannot be read: none of its entries can.
    Unreadable { segment: PathBuf, problem: String },
    /// No entry, gap entry or damage stands for them (a segment file was
    /// removed, or a sealed segment lost entries).
    Missing,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Damaged { segment, entries } => write!(
                f,
                "{entries} damaged entr{} in {}",
                if *entries == 1 { "y" } else { "ies" },
                segment.display()
            ),
            Why::Partial { segment, bytes } => write!(
                f,
                "a last entry cut short ({bytes} bytes) in {}",
                segment.display()
            ),
            Why::Unreadable { segment, problem } => {
                write!(f, "segment {} is unreadable: {problem}", segment.display())
            }
            Why::Missing => write!(f, "no entry stands for them (a segment file removed?)"),
        }
    }
}

/// Sequences the journal should hold but cannot deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// First sequence not delivered.
    pub from_seq: u64,
    /// Sequence after the last; `None` when nothing after the damage pins
    /// it down (the journal's damaged tail).
    pub to_seq: Option<u64>,
    /// What happened, one reason per damaged stretch.
    pub why: Vec<Why>,
}

impl Unreadable {
    /// Messages not delivered, when known.
    pub fn count(&self) -> Option<u64> {
        self.to_seq.map(|to| to - self.from_seq)
    }
}

/// What reading a journal yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// A message or gap entry, checked.
    Entry(Entry<'a>),
    /// Sequences that cannot be read, reported once the next readable
    /// entry (or the end) is reached.
    Unreadable(Unreadable),
}

/// The iterator of [`Journal::read`].
pub struct Entries<'a> {
    journal: &'a Journal,
    at: Position,
    /// The sequence the next entry should carry, once known.
    expected: Option<u64>,
    /// Damaged entries since the last readable one.
    damaged: u64,
    /// Reasons gathered since the last readable entry.
    damage: Vec<Why>,
    /// An account held back to be yielded before the entry that ended it.
    pending_tail: Option<Entry<'a>>,
    /// Check each entry's CRC (through `window`).
    crc: bool,
    window: CrcWindow,
}

impl<'a> Entries<'a> {
    /// Where the next entry would be read.
    pub fn position(&self) -> Position {
        self.at
    }

    fn flush_damaged(&mut self) {
        if self.damaged > 0 {
            let seg = &self.journal.segments[self.at.segment];
            self.damage.push(Why::Damaged {
                segment: seg.path.clone(),
                entries: self.damaged,
            });
            self.damaged = 0;
        }
    }

    /// An account of what lies between `expected` and `next_seq` (or the
    /// end), if anything.
    fn account(&mut self, next_seq: Option<u64>) -> Option<Unreadable> {
        let from = self.expected?;
        let gap = match next_seq {
            Some(next) if next > from => true,
            Some(_) => false,
            None => !self.damage.is_empty(),
        };
        let why = std::mem::take(&mut self.damage);
        if !gap {
            return None;
        }
        Some(Unreadable {
            from_seq: from,
            to_seq: next_seq,
            why: if why.is_empty() {
                vec![Why::Missing]
            } else {
                why
            },
        })
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        if let Some(entry) = self.pending_tail.take() {
            return Some(Item::Entry(entry));
        }
        let journal = self.journal;
        loop {
            let Some(seg) = journal.segments.get(self.at.segment) else {
                // The end: damage with nothing after it.
                self.flush_damaged();
                let account = self.account(None);
                self.expected = None;
                return account.map(Item::Unreadable);
            };
            if let Err(problem) = &seg.header {
                // Its name still says where it started.
                self.expected.get_or_insert(seg.named_seq);
                self.damage.push(Why::Unreadable {
                    segment: seg.path.clone(),
                    problem: problem.to_string(),
                });
                self.at = Position {
                    segment: self.at.segment + 1,
                    index: 0,
                };
                continue;
            }
            if self.at.index >= seg.entries {
                self.flush_damaged();
                if seg.partial_bytes > 0 {
                    self.damage.push(Why::Partial {
                        segment: seg.path.clone(),
                        bytes: seg.partial_bytes,
                    });
                }
                // A sealed segment says where it ends: damage at its end is
                // accounted for at once, with the exact range.
                if let Some(seal) = seg.seal {
                    if !self.damage.is_empty() || self.expected.is_some_and(|e| e < seal.end_seq) {
                        let account = self.account(Some(seal.end_seq));
                        self.expected = Some(seal.end_seq);
                        self.at = Position {
                            segment: self.at.segment + 1,
                            index: 0,
                        };
                        if let Some(account) = account {
                            return Some(Item::Unreadable(account));
                        }
                        continue;
                    }
                }
                self.at = Position {
                    segment: self.at.segment + 1,
                    index: 0,
                };
                continue;
            }
            let i = self.at.index;
            self.at.index += 1;
            let entry = if self.crc {
                self.window.entry(seg, self.at.segment, i)
            } else {
                seg.entry_checked(i, false)
            };
            match entry {
                Err(_) => self.damaged += 1,
                // The common case: the entry the last one said comes next.
                Ok(entry)
                    if self.damaged == 0
                        && self.damage.is_empty()
                        && self.expected == Some(entry.seq) =>
                {
                    self.expected = Some(entry.end_seq());
                    return Some(Item::Entry(entry));
                }
                Ok(entry) => {
                    self.flush_damaged();
                    let account = self.account(Some(entry.seq));
                    self.expected = Some(entry.end_seq());
                    match account {
                        Some(account) => {
                            self.pending_tail = Some(entry);
                            return Some(Item::Unreadable(account));
                        }
                        None => return Some(Item::Entry(entry)),
                    }
                }
            }
        }
    }
}
