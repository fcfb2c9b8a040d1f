//! A validated ring file mapped into this process: the shared piece under both
//! [`crate::Publisher`] and [`crate::Subscriber`].

use crate::error::{Error, Result};
use crate::layout::{self, Header, Layout, SubscriberRecord, PUBLISHER_CLOSED, SLOT_OVERHEAD};
use crate::mapping::Mapping;
use crate::protocol::{SlotRef, Slots};
use crate::stamp::{self, Observed};
use crate::wait::{MAX_PARK, UNFENCED_PARK};
use crate::{barrier, futex};
use std::fs::File;
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A mapped ring whose layout has been validated; all accessors stay in bounds.
pub(crate) struct RingMap {
    // Field order matters: the mapping must be unmapped before the file (and
    // with it a publisher's lock) goes away.
    map: Mapping,
    file: File,
    layout: Layout,
    path: PathBuf,
    name: String,
    mask: u64,
    stride: usize,
    header_len: usize,
    payload_words: usize,
}

/// Opens a ring file for reading and writing without following symlinks
/// (a link planted in a shared directory must not redirect us).
pub(crate) fn open_ring_file(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Error::corrupt(path, "it is a symbolic link, not a ring file"),
            _ => Error::io("open", path, e),
        })
}

impl RingMap {
    /// Maps `file` (already open) and validates it as a ring.
    pub(crate) fn open(file: File, path: &Path, name: &str) -> Result<Self> {
        let file_len = file
            .metadata()
            .map_err(|e| Error::io("inspect", path, e))?
            .len();
        if file_len < layout::min_file_len() {
            return Err(Error::corrupt(
                path,
                format!(
                    "it has {file_len} bytes, less than a ring header ({} bytes): truncated",
                    layout::min_file_len()
                ),
            ));
        }
        if file_len > layout::MAX_FILE_LEN {
            return Err(Error::corrupt(
                path,
                format!("it has {file_len} bytes, more than any ring"),
            ));
        }
        let map = Mapping::map(&file, file_len as usize).map_err(|e| Error::io("map", path, e))?;
        // SAFETY: the mapping holds at least size_of::<Header>() bytes (checked
        // above), is page aligned, and Header consists of atomics only.
        let header = unsafe { &*map.as_ptr().cast::<Header>() };
        let layout = layout::read_layout(header, file_len, path)?;
        Ok(Self::from_parts(map, file, layout, path, name))
    }

    /// Wraps a mapping whose header was just initialised for `layout`.
    pub(crate) fn from_parts(
        map: Mapping,
        file: File,
        layout: Layout,
        path: &Path,
        name: &str,
    ) -> Self {
        assert!(
            map.len() as u64 == layout.file_len(),
            "mapping does not match layout"
        );
        Self {
            map,
            file,
            mask: layout.capacity - 1,
            stride: layout.slot_stride(),
            header_len: layout.header_len(),
            payload_words: layout.payload_words(),
            layout,
            path: path.to_owned(),
            name: name.to_owned(),
        }
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: validated at construction: the mapping starts with a Header.
        unsafe { &*self.map.as_ptr().cast::<Header>() }
    }

    /// Subscriber record `i` (< max_subscribers).
    pub(crate) fn record(&self, i: usize) -> &SubscriberRecord {
        assert!(i < self.layout.max_subscribers as usize);
        let offset = size_of::<Header>() + i * size_of::<SubscriberRecord>();
        // SAFETY: the table lies between the Header and header_len, inside the
        // validated mapping; offsets are multiples of 64, records are atomics.
        unsafe { &*self.map.as_ptr().add(offset).cast::<SubscriberRecord>() }
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Largest payload in bytes.
    pub(crate) fn slot_size(&self) -> usize {
        self.layout.slot_size as usize
    }
}

/// Readiness: what waiting subscribers (and readiness threads) ask of a ring,
/// and how the publisher wakes them.
impl RingMap {
    /// Whether a reader at `position` would get a message (or detect that it
    /// was lapped) right now: one stamp load.
    #[inline]
    pub(crate) fn readable_at(&self, position: u64) -> bool {
        let stamp = self.slot(position).stamp.load(Ordering::Acquire);
        stamp::observe(stamp, position) != Observed::NotYet
    }

    /// The publisher closed the ring and a reader at `position` has read it all.
    pub(crate) fn ended_at(&self, position: u64) -> bool {
        self.header().publisher.0.state.load(Ordering::Acquire) == PUBLISHER_CLOSED
            && !self.readable_at(position)
            && self.cursor().load(Ordering::Acquire) <= position
    }

    /// Counts the caller (subscriber record `record`) among the ring's
    /// waiters until the returned guard is dropped; see [`Parked`].
    pub(crate) fn register_parked(&self, record: usize) -> Parked<'_> {
        let notify = &self.header().notify.0;
        self.record(record).parked.fetch_add(1, Ordering::Relaxed);
        notify.waiters.fetch_add(1, Ordering::SeqCst);
        let fenced = barrier::reader_side();
        Parked {
            ring: self,
            record,
            fenced,
        }
    }

    /// Publisher side of [`Parked`]: after a publish (or close), wake
    /// parked readers if there are any. `registered`: this process takes part
    /// in the asymmetric barrier. Costs a load (plus a fence when not
    /// registered) while nobody is parked.
    /// Returns `false` when the waiter count was non-zero but nobody was
    /// asleep (a hint that a dead process left its count behind).
    #[inline]
    pub(crate) fn wake_parked(&self, registered: bool) -> bool {
        let notify = &self.header().notify.0;
        barrier::publisher_side(registered);
        if notify.waiters.load(Ordering::Relaxed) != 0 {
            return self.wake_all_parked() != 0;
        }
        true
    }

    /// Wakes every thread parked on this ring, in every process; returns how
    /// many were asleep.
    pub(crate) fn wake_all_parked(&self) -> usize {
        let notify = &self.header().notify.0;
        notify.wake_seq.fetch_add(1, Ordering::Release);
        futex::wake_all(&notify.wake_seq, true)
    }

    /// Frees the subscriber records of dead processes, taking their parked
    /// counts out of the waiter count (so that the publisher stops waking
    /// nobody). A record is only touched after winning the compare-exchange
    /// of its dead owner's pid to 0, so a live process that has just claimed
    /// it is never robbed of its count.
    pub(crate) fn release_dead_records(&self) {
        let me = std::process::id();
        for i in 0..self.layout.max_subscribers as usize {
            let rec = self.record(i);
            let pid = rec.pid.load(Ordering::Acquire);
            if pid == 0 || pid == me || pid_alive(pid) {
                continue;
            }
            if rec
                .pid
                .compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                let stale = rec.parked.swap(0, Ordering::AcqRel);
                if stale != 0 {
                    decrement(&self.header().notify.0.waiters, stale);
                }
            }
        }
    }
}

/// A reader counted among a ring's waiters (uncounted on drop).
///
/// No wake-up is lost: the waiter count is raised before the slot is checked,
/// the publisher stores the message before it reads the count, and a
/// store-load barrier separates each pair (see [`crate::barrier`]). So either
/// the reader's check sees the message, or the publisher sees the waiter,
/// bumps `wake_seq` and wakes the futex; a bump between the reader's load of
/// `wake_seq` and its sleep makes the sleep return at once. One barrier, at
/// registration, covers every sleep while the guard lives.
pub(crate) struct Parked<'a> {
    ring: &'a RingMap,
    record: usize,
    /// The reader-side barrier ran; if not, sleeps are kept short.
    fenced: bool,
}

impl Parked<'_> {
    /// Sleeps until the publisher publishes or closes, `deadline` passes or
    /// [`MAX_PARK`] elapses; returns at once if a reader at `position` can
    /// already read or the stream ended.
    pub(crate) fn sleep(&self, position: u64, deadline: Option<Instant>) {
        let notify = &self.ring.header().notify.0;
        let seen = notify.wake_seq.load(Ordering::Acquire);
        if self.ring.readable_at(position) || self.ring.ended_at(position) {
            return;
        }
        let mut timeout = if self.fenced { MAX_PARK } else { UNFENCED_PARK };
        if let Some(d) = deadline {
            timeout = timeout.min(d.saturating_duration_since(Instant::now()));
        }
        if !timeout.is_zero() {
            futex::wait(&notify.wake_seq, seen, Some(timeout), true);
        }
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        decrement(&self.ring.header().notify.0.waiters, 1);
        decrement(&self.ring.record(self.record).parked, 1);
    }
}

/// Subtracts `n` from a counter without wrapping below zero (counters in a
/// shared file may have been repaired, or damaged, by someone else).
fn decrement(counter: &std::sync::atomic::AtomicU32, n: u32) {
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

impl Slots for RingMap {
    #[inline]
    fn capacity(&self) -> u64 {
        self.layout.capacity
    }

    #[inline]
    fn slot(&self, seq: u64) -> SlotRef<'_> {
        let offset = self.header_len + (seq & self.mask) as usize * self.stride;
        // SAFETY: `seq & mask < capacity`, so the slot lies inside the validated
        // mapping (header_len + capacity * stride == mapping length). Slots are
        // 64-byte aligned (page-aligned start, stride a multiple of 64), the
        // stamp and length are 8-byte words at its start, and `payload_words`
        // words follow within the stride. All are accessed only atomically.
        unsafe {
            let base = self.map.as_ptr().add(offset);
            SlotRef {
                stamp: &*base.cast::<AtomicU64>(),
                len: &*base.add(8).cast::<AtomicU64>(),
                words: std::slice::from_raw_parts(
                    base.add(SLOT_OVERHEAD).cast::<AtomicU64>(),
                    self.payload_words,
                ),
                max_len: self.layout.slot_size as usize,
                exact: self.layout.fixed_size(),
            }
        }
    }

    #[inline]
    fn cursor(&self) -> &AtomicU64 {
        &self.header().cursor.0
    }
}

/// Nanoseconds since the Unix epoch (for informational timestamps only).
pub(crate) fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Whether a process with this pid exists (EPERM means it exists but is not ours).
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 performs only the existence and permission check.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
