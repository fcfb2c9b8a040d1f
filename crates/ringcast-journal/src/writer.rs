//! Writing a journal: entries appended to the open segment with `pwrite`
//! (one call per buffer, not per entry), segments rolled by size or age,
//! sealed when complete, synced to disk as the [`Fsync`] policy says.
//!
//! Crash safety rests on three rules:
//! - a segment appears under its name only once its header is complete
//!   (written to a temporary file, then renamed);
//! - entries are only ever appended, and a seal is written only after every
//!   entry it counts;
//! - on opening, the writer finds where the last unsealed segment's
//!   readable entries end, cuts off the torn rest (what a killed writer was
//!   in the middle of), seals the segment and reports what it cut
//!   ([`Recovery`]).
//!
//! One writer per directory: it holds an exclusive `flock` on `DIR/.lock`.

use crate::error::JournalError;
use crate::format::{
    self, encode_entry_unstamped, Body, Entry, Kind, RingDescription, Seal, SegmentHeader,
    HEADER_LEN, SEAL_AT,
};
use crate::reader::{segment_paths, Segment};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// When written entries are forced to disk (`fdatasync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Never by the journal: the kernel writes the page cache back when it
    /// will. A killed recorder loses nothing it wrote; a power cut may.
    Never,
    /// At most this long after an entry was written.
    Interval(Duration),
    /// After every write, before the entries count as recorded (a recorder
    /// on a bounded ring releases messages only once they are on disk).
    Always,
}

/// How a journal is written.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Roll to a new segment once this many bytes are in the current one.
    pub segment_bytes: u64,
    /// Roll to a new segment once the current one is this old (if set).
    pub segment_age: Option<Duration>,
    /// When to force written entries to disk.
    pub fsync: Fsync,
    /// Entries are gathered up to this many bytes before one write.
    pub buffer_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            segment_bytes: 256 << 20,
            segment_age: None,
            fsync: Fsync::Interval(Duration::from_secs(1)),
            buffer_bytes: 1 << 20,
        }
    }
}

/// What opening an existing journal found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The unsealed segment a previous writer left (it crashed or was killed).
    pub segment: Option<PathBuf>,
    /// Readable entries kept in it.
    pub kept_entries: u64,
    /// Entries after the last readable one (torn by the crash), sealed off:
    /// left in the file after the seal's count, never read.
    pub cut_entries: u64,
    /// Bytes of an entry cut short, sealed off with them.
    pub cut_bytes: u64,
    /// The sequence the journal continues with (`None`: an empty journal).
    pub next_seq: Option<u64>,
}

/// Running totals of a writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Entries written (messages and gaps).
    pub entries: u64,
    pub messages: u64,
    /// Gap entries, and the messages they stand for.
    pub gaps: u64,
    pub lost: u64,
    /// Bytes written into segments (entries and headers).
    pub bytes: u64,
    /// Segments started by this writer.
    pub segments: u64,
    /// `fdatasync` calls.
    pub syncs: u64,
}

/// The segment being written.
struct OpenSegment {
    file: File,
    path: PathBuf,
    /// Entries already written to the file.
    written: u64,
    /// Counts of everything written or buffered, for the seal.
    seal: Seal,
    started: Instant,
}

/// Appends entries to the journal in a directory.
pub struct JournalWriter {
    dir: PathBuf,
    ring: RingDescription,
    options: WriterOptions,
    stride: usize,
    per_segment: u64,
    /// Held for the writer's lifetime: one writer per directory.
    _lock: File,
    current: Option<OpenSegment>,
    buf: Vec<u8>,
    buffered: u64,
    next_seq: Option<u64>,
    next_number: u64,
    last_sync: Instant,
    unsynced: bool,
    stats: WriterStats,
}

fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Forces a directory's entries (a file made or renamed in it) to disk.
fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("sync", dir, e))
}

/// Takes the directory's writer lock, or says who holds it.
fn lock(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(".lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| JournalError::io("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let holder = match pid.trim() {
                "" => "another recorder".to_owned(),
                pid => format!("process {pid}"),
            };
            return Err(JournalError::Locked {
                dir: dir.to_owned(),
                holder,
            });
        }
        Err(TryLockError::Error(e)) => return Err(JournalError::io("lock", &path, e)),
    }
    let io = |e| JournalError::io("write", &path, e);
    file.set_len(0).map_err(io)?;
    file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
        .map_err(io)?;
    Ok(file)
}

impl JournalWriter {
    /// Opens the journal in `dir` for appending messages of `ring`, making
    /// the directory if needed. An existing journal must record the same
    /// ring (name, slot size, schema); its last segment is repaired and
    /// sealed if a previous writer did not close it.
    pub fn open(
        dir: impl AsRef<Path>,
        ring: &RingDescription,
        options: WriterOptions,
    ) -> Result<(JournalWriter, Recovery), JournalError> {
        let dir = dir.as_ref();
        if options.segment_bytes < (HEADER_LEN + format::stride(ring.slot_size)) as u64 {
            return Err(JournalError::Argument(format!(
                "segment size {} bytes cannot hold one {}-byte entry after its {HEADER_LEN}-byte \
                 header; give at least {}",
                options.segment_bytes,
                format::stride(ring.slot_size),
                HEADER_LEN + format::stride(ring.slot_size)
            )));
        }
        if let Fsync::Interval(d) = options.fsync {
            if d.is_zero() {
                return Err(JournalError::Argument(
                    "the fsync interval must be positive; use fsync=always to sync every write"
                        .into(),
                ));
            }
        }
        if ring.name.len() > format::MAX_NAME_LEN || ring.schema.len() > format::MAX_SCHEMA_LEN {
            return Err(JournalError::Argument(format!(
                "ring name ({} bytes) or schema ({} bytes) too long for a journal header",
                ring.name.len(),
                ring.schema.len()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| JournalError::io("create", dir, e))?;
        let lock = lock(dir)?;
        let stride = format::stride(ring.slot_size);
        let mut writer = JournalWriter {
            dir: dir.to_owned(),
            ring: ring.clone(),
            per_segment: (options.segment_bytes - HEADER_LEN as u64) / stride as u64,
            stride,
            buf: Vec::with_capacity(options.buffer_bytes.max(stride)),
            options,
            _lock: lock,
            current: None,
            buffered: 0,
            next_seq: None,
            next_number: 0,
            last_sync: Instant::now(),
            unsynced: false,
            stats: WriterStats::default(),
        };
        let recovery = writer.recover()?;
        Ok((writer, recovery))
    }

    /// Checks the existing segments against the ring, and repairs and seals
    /// the last one if it was left open.
    fn recover(&mut self) -> Result<Recovery, JournalError> {
        // Temporary files of a segment that was never renamed into place.
        if let Ok(list) = std::fs::read_dir(&self.dir) {
            for entry in list.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.ends_with(".rcj.tmp") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let paths = segment_paths(&self.dir)?;
        let mut recovery = Recovery::default();
        let Some((_, last_path)) = paths.last() else {
            return Ok(recovery);
        };
        for (_, path) in &paths {
            let seg = Segment::open(path)?;
            if let Ok(h) = &seg.header {
                if let Some(clash) = h.ring.clash(&self.ring) {
                    return Err(JournalError::Clash {
                        dir: self.dir.clone(),
                        clash,
                    });
                }
            }
        }
        let last = Segment::open(last_path)?;
        let header = match &last.header {
            Ok(h) => h.clone(),
            Err(problem) => {
                return Err(JournalError::Argument(format!(
                    "the journal's last segment {} is unreadable ({problem}); `ringcast journal \
                     verify {}` reports what it held: move the file aside to go on recording",
                    last.path.display(),
                    self.dir.display()
                )))
            }
        };
        self.next_number = header.number + 1;
        if let Some(seal) = last.seal {
            self.next_seq = Some(seal.end_seq);
            recovery.next_seq = self.next_seq;
            return Ok(recovery);
        }
        // Left open: keep the readable entries and seal them; the torn tail
        // after them stays in the file, sealed off (never shortened: a reader
        // may have the segment mapped).
        let mut seal = Seal::default();
        let mut kept = 0;
        for (i, entry) in (1..).zip(last.checked_entries()) {
            let Ok(e) = entry else { continue };
            kept = i;
            seal.add(&e);
        }
        // Damaged entries before the last readable one stay in the file.
        seal.entries = kept;
        let end_seq = seal.end_seq;
        seal.sealed_unix_ns = unix_now_ns();
        recovery.segment = Some(last.path.clone());
        recovery.kept_entries = seal.messages + seal.gaps;
        recovery.cut_entries = last.entries - kept;
        recovery.cut_bytes = last.partial_bytes;
        drop(last);
        let path = last_path.clone();
        let io = |e| JournalError::io("repair", &path, e);
        if kept == 0 {
            // Nothing readable (a crash right after the segment was made).
            std::fs::remove_file(&path).map_err(io)?;
            // The removed segment's name is where the journal goes on.
            self.next_number = header.number;
            self.next_seq = Some(header.first_seq);
        } else {
            let file = OpenOptions::new().write(true).open(&path).map_err(io)?;
            file.write_all_at(&seal.encode(), SEAL_AT as u64)
                .map_err(io)?;
            if self.options.fsync != Fsync::Never {
                file.sync_data().map_err(io)?;
            }
            self.next_seq = Some(end_seq);
        }
        recovery.next_seq = self.next_seq;
        Ok(recovery)
    }

    /// The ring this journal records.
    pub fn ring(&self) -> &RingDescription {
        &self.ring
    }

    /// The sequence the next entry should carry (`None`: nothing recorded
    /// yet, any sequence may come first).
    pub fn next_seq(&self) -> Option<u64> {
        self.next_seq
    }

    /// Totals so far.
    pub fn stats(&self) -> WriterStats {
        self.stats
    }

    /// Appends a message. A sequence beyond [`JournalWriter::next_seq`] first
    /// records the messages in between as a gap entry: nothing goes missing
    /// silently.
    #[inline]
    pub fn append(&mut self, seq: u64, time: u64, payload: &[u8]) -> Result<(), JournalError> {
        if payload.len() > self.ring.slot_size as usize {
            return Err(JournalError::TooLong {
                len: payload.len(),
                slot_size: self.ring.slot_size,
            });
        }
        match self.next_seq {
            Some(next) if seq < next => {
                return Err(JournalError::OutOfOrder {
                    seq,
                    expected: next,
                })
            }
            Some(next) if seq > next => self.push(next, time, Body::Gap(seq - next))?,
            _ => {}
        }
        self.push(seq, time, Body::Message(payload))
    }

    /// Records that `count` messages from `seq` on were never seen.
    pub fn append_gap(&mut self, seq: u64, count: u64, time: u64) -> Result<(), JournalError> {
        if count == 0 {
            return Ok(());
        }
        if let Some(next) = self.next_seq {
            if seq != next {
                return Err(JournalError::OutOfOrder {
                    seq,
                    expected: next,
                });
            }
        }
        self.push(seq, time, Body::Gap(count))
    }

    #[inline]
    fn push(&mut self, seq: u64, time: u64, body: Body<'_>) -> Result<(), JournalError> {
        if self.needs_new_segment() {
            self.seal_current()?;
        }
        if self.current.is_none() {
            self.start_segment(seq)?;
        }
        let at = self.buf.len();
        self.buf.resize(at + self.stride, 0);
        let out = &mut self.buf[at..];
        let gap_count;
        let (kind, payload) = match body {
            Body::Message(p) => (Kind::Message, p),
            Body::Gap(n) => {
                gap_count = n.to_le_bytes();
                (Kind::Gap, &gap_count[..])
            }
        };
        // The CRC is stamped at flush, for the whole batch side by side.
        encode_entry_unstamped(out, seq, time, kind, payload);
        self.buffered += 1;
        let cur = self.current.as_mut().expect("a segment was started");
        cur.seal.add(&Entry { seq, time, body });
        self.next_seq = Some(cur.seal.end_seq);
        self.stats.entries += 1;
        match body {
            Body::Message(_) => self.stats.messages += 1,
            Body::Gap(n) => {
                self.stats.gaps += 1;
                self.stats.lost += n;
            }
        }
        if self.buf.len() + self.stride > self.options.buffer_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Whether the next entry must go into a new segment.
    fn needs_new_segment(&self) -> bool {
        let Some(cur) = &self.current else {
            return false;
        };
        let entries = cur.written + self.buffered;
        entries >= self.per_segment
            || (entries > 0
                && self
                    .options
                    .segment_age
                    .is_some_and(|age| cur.started.elapsed() >= age))
    }

    /// Makes the segment whose first entry is `first_seq`.
    fn start_segment(&mut self, first_seq: u64) -> Result<(), JournalError> {
        let name = format::segment_name(first_seq);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let now_unix = unix_now_ns();
        let now_mono = ringcast_core::sys::clock::now_ns();
        let header = SegmentHeader {
            ring: self.ring.clone(),
            stride: self.stride as u32,
            first_seq,
            number: self.next_number,
            created_unix_ns: now_unix,
            clock_offset_ns: now_unix as i64 - now_mono as i64,
        };
        let io = |e| JournalError::io("create", &tmp, e);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io)?;
        file.write_all(&header.encode()).map_err(io)?;
        if self.options.fsync != Fsync::Never {
            file.sync_data().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| JournalError::io("rename", &tmp, e))?;
        if self.options.fsync != Fsync::Never {
            sync_dir(&self.dir)?;
        }
        self.next_number += 1;
        self.stats.segments += 1;
        self.stats.bytes += HEADER_LEN as u64;
        self.current = Some(OpenSegment {
            file,
            path,
            written: 0,
            seal: Seal::default(),
            started: Instant::now(),
        });
        Ok(())
    }

    /// Writes the buffered entries to the open segment (one `pwrite`), and
    /// syncs if the policy says so.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        if self.buffered > 0 {
            let cur = self
                .current
                .as_mut()
                .expect("buffered entries have a segment");
            let at = HEADER_LEN as u64 + cur.written * self.stride as u64;
            crate::crc::stamp(&mut self.buf, self.stride);
            cur.file
                .write_all_at(&self.buf, at)
                .map_err(|e| JournalError::io("write", &cur.path, e))?;
            cur.written += self.buffered;
            self.stats.bytes += self.buf.len() as u64;
            self.buf.clear();
            self.buffered = 0;
            self.unsynced = true;
        }
        match self.options.fsync {
            Fsync::Always => self.sync()?,
            Fsync::Interval(every) if self.last_sync.elapsed() >= every => self.sync()?,
            _ => {}
        }
        Ok(())
    }

    /// Flushes, and rolls to a new segment if the open one is old enough:
    /// for a recorder with nothing to write, so that time-based policies
    /// still happen on time.
    pub fn tick(&mut self) -> Result<(), JournalError> {
        self.flush()?;
        if self.buffered == 0 && self.needs_new_segment() {
            self.seal_current()?;
        }
        Ok(())
    }

    /// Forces everything written to disk now (whatever the policy).
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.unsynced {
            if let Some(cur) = &self.current {
                cur.file
                    .sync_data()
                    .map_err(|e| JournalError::io("sync", &cur.path, e))?;
                self.stats.syncs += 1;
            }
            self.unsynced = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Writes the open segment's remaining entries and its seal.
    fn seal_current(&mut self) -> Result<(), JournalError> {
        self.flush()?;
        let Some(mut cur) = self.current.take() else {
            return Ok(());
        };
        cur.seal.sealed_unix_ns = unix_now_ns();
        cur.file
            .write_all_at(&cur.seal.encode(), SEAL_AT as u64)
            .map_err(|e| JournalError::io("seal", &cur.path, e))?;
        if self.options.fsync != Fsync::Never {
            cur.file
                .sync_data()
                .map_err(|e| JournalError::io("sync", &cur.path, e))?;
            self.stats.syncs += 1;
        }
        self.unsynced = false;
        Ok(())
    }

    /// Writes everything, seals the open segment and releases the directory.
    pub fn close(mut self) -> Result<WriterStats, JournalError> {
        self.seal_current()?;
        Ok(self.stats)
    }
}

impl Drop for JournalWriter {
    /// A writer dropped without `close` (an error unwinding) still writes
    /// and seals what it holds, if it can.
    fn drop(&mut self) {
        let _ = self.seal_current();
    }
}
