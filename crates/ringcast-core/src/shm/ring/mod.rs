//! A validated ring file mapped into this process: the shared piece under both
//! [`crate::Publisher`] and [`crate::Subscriber`]. Its accessors stay in
//! bounds of the validated layout; what is done with the mapping lives in the
//! submodules: the record tables ([`records`]), parking and waking
//! ([`notify`]), and recovery from producers that died mid-write
//! ([`recovery`]).

mod notify;
mod records;
mod recovery;

pub(crate) use notify::sleep_any;
pub(crate) use records::find_stage;
pub(crate) use recovery::{Recovery, StuckWatch};

use crate::error::{OpenError, Result, RingFault};
use crate::format::layout::{
    self, Header, Layout, ProducerRecord, SlotHead, SubscriberRecord, PUBLISHER_CLOSED,
};
use crate::protocol::{SlotRef, Slots};
use crate::shm::backing::RingFile;
use crate::shm::guard::Revoked;
use crate::shm::hugepages::{self, Backing};
use crate::shm::mapping::Mapping;
use crate::sys::liveness;
use std::fs::File;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A mapped ring whose layout has been validated; all accessors stay in bounds.
pub(crate) struct RingMap {
    // Field order matters: the mapping must be unmapped before the file (and
    // with it a publisher's lock) goes away.
    map: Mapping,
    file: File,
    layout: Layout,
    path: PathBuf,
    /// Where the bytes are: `path`, or the hugetlbfs file it links to.
    bytes_at: PathBuf,
    backing: Backing,
    name: String,
    mask: u64,
    stride: usize,
    header_len: usize,
    /// Offset of slot 0's head: the head table, or slot 0 itself.
    heads_offset: usize,
    /// Bytes from one head to the next: a head, or a whole slot.
    head_stride: usize,
    payload_words: usize,
    /// Offset of the time word in a slot (rings with timestamps).
    time_offset: usize,
    /// Offset of the payload in a slot: head (unless apart), then the time
    /// word if any.
    payload_offset: usize,
    /// Multi-producer rings: a recovery through this mapping declared
    /// abandoned messages lately, so its readers recover the next stuck
    /// slots at once (see [`StuckWatch`]). Process-local.
    pub(crate) recovering: AtomicBool,
    /// The process that mapped the ring.
    mapped_by: u32,
}

impl RingMap {
    /// Maps a ring file (already open) and validates it as a ring.
    pub(crate) fn open(ring_file: RingFile, name: &str) -> Result<Self, OpenError> {
        let path = &ring_file.path;
        let file_len = ring_file
            .file
            .metadata()
            .map_err(|e| RingFault::io("inspect", path, e))?
            .len();
        layout::check_file_len(file_len, path)?;
        let map = Mapping::map(&ring_file.file, file_len as usize)
            .map_err(|e| RingFault::io("map", path, e))?;
        // SAFETY: the mapping holds at least size_of::<Header>() bytes (checked
        // above), is page aligned, and Header consists of atomics only.
        let header = unsafe { &*map.as_ptr().cast::<Header>() };
        let backing = hugepages::backing_of(&ring_file.file);
        let granule = if backing.huge { backing.page_size } else { 1 };
        let layout = layout::read_layout(header, file_len, granule, path)?;
        Ok(Self::from_parts(map, ring_file, backing, layout, name))
    }

    /// Wraps a mapping whose header was just initialised for `layout`.
    pub(crate) fn from_parts(
        map: Mapping,
        ring_file: RingFile,
        backing: Backing,
        layout: Layout,
        name: &str,
    ) -> Self {
        let granule = if backing.huge { backing.page_size } else { 1 };
        assert!(
            map.len() as u64 == layout.file_len_on(granule),
            "mapping does not match layout"
        );
        Self {
            map,
            file: ring_file.file,
            path: ring_file.path,
            bytes_at: ring_file.bytes_at,
            backing,
            mask: layout.capacity - 1,
            stride: layout.slot_stride(),
            header_len: layout.header_len(),
            heads_offset: layout.heads_offset() as usize,
            head_stride: layout.head_stride(),
            payload_words: layout.payload_words(),
            time_offset: layout.time_offset(),
            payload_offset: layout.slot_overhead(),
            layout,
            name: name.to_owned(),
            recovering: AtomicBool::new(false),
            mapped_by: std::process::id(),
        }
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: validated at construction: the mapping starts with a Header.
        unsafe { &*self.map.as_ptr().cast::<Header>() }
    }

    /// Subscriber record `i` (< max_subscribers).
    pub(crate) fn record(&self, i: usize) -> &SubscriberRecord {
        assert!(i < self.layout.max_subscribers as usize);
        let offset = Layout::subscriber_offset(i);
        // SAFETY: the table lies between the Header and header_len, inside the
        // validated mapping; offsets are multiples of 64, records are atomics.
        unsafe { &*self.map.as_ptr().add(offset).cast::<SubscriberRecord>() }
    }

    /// Producer record `i` (< max_producers).
    pub(crate) fn producer(&self, i: usize) -> &ProducerRecord {
        assert!(i < self.layout.max_producers as usize);
        let offset = self.layout.producer_offset(i);
        // SAFETY: the producer table follows the subscriber table and ends
        // before header_len (Layout::header_len), inside the validated mapping;
        // offsets are multiples of 64, records are atomics.
        unsafe { &*self.map.as_ptr().add(offset).cast::<ProducerRecord>() }
    }

    /// Subscriber records that may be in use: those below the high mark.
    pub(crate) fn records_in_use(&self) -> usize {
        (self.header().table.0.records_high.load(Ordering::Acquire) as usize)
            .min(self.layout.max_subscribers as usize)
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

    /// Where the ring's bytes are (the hugetlbfs file of a huge-page ring).
    pub(crate) fn bytes_at(&self) -> &Path {
        &self.bytes_at
    }

    /// The filesystem the ring's bytes are on.
    pub(crate) fn backing(&self) -> Backing {
        self.backing
    }

    /// The whole mapping (for memory control).
    pub(crate) fn mapping(&self) -> &Mapping {
        &self.map
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Largest payload in bytes.
    pub(crate) fn slot_size(&self) -> usize {
        self.layout.slot_size as usize
    }

    /// What the ring says about its publisher side.
    pub(crate) fn publisher_status(&self) -> PublisherStatus {
        let p = &self.header().publisher.0;
        let pid = p.pid.load(Ordering::Relaxed);
        let live = self.publishers_live();
        let closed = p.state.load(Ordering::Acquire) == PUBLISHER_CLOSED;
        PublisherStatus {
            pid,
            alive: !closed && live,
            closed,
            generation: p.generation.load(Ordering::Acquire),
            cursor: self.cursor().load(Ordering::Acquire),
        }
    }

    /// Whether a publisher process holds the ring: the single producer's
    /// lock on [`layout::PUBLISHER_LOCK_OFFSET`], or any producer's record
    /// lock (exact: the kernel drops a lock when its holder dies, whatever
    /// became of its pid). Locks only, not pids: a producer that is leaving
    /// (pid 0, see [`RingMap::leave_producer`]) may still be about to close
    /// the stream, and is alive until its lock goes.
    pub(crate) fn publishers_live(&self) -> bool {
        if self.layout.multi_producer() {
            (0..self.layout.max_producers as usize)
                .any(|i| liveness::held_by_other(&self.file, self.layout.producer_offset(i)))
        } else {
            liveness::held_by_other(&self.file, layout::PUBLISHER_LOCK_OFFSET)
        }
    }

    /// The publisher side died without closing the ring: the pid and
    /// generation of the last publisher, if so. The lock is tested before
    /// the state is loaded: a publisher that closes stores CLOSED before its
    /// lock goes, and one that takes over takes its lock before it stores
    /// its generation, so neither is ever taken for dead.
    pub(crate) fn publisher_death(&self) -> Option<(u32, u64)> {
        if self.publishers_live() {
            return None;
        }
        let p = &self.header().publisher.0;
        if p.state.load(Ordering::Acquire) != layout::PUBLISHER_OPEN {
            return None; // closed cleanly (or never opened)
        }
        Some((
            p.pid.load(Ordering::Relaxed),
            p.generation.load(Ordering::Acquire),
        ))
    }

    /// Fails if this mapping was revoked (see [`crate::shm::guard`]): its file
    /// shrank under it, or this process is a fork() child of the one that
    /// mapped it. One load of the mapping's guard entry.
    #[inline]
    pub(crate) fn usable(&self) -> Result<(), RingFault> {
        match self.map.revoked() {
            None => Ok(()),
            Some(why) => Err(self.revoked_error(why)),
        }
    }

    #[cold]
    fn revoked_error(&self, why: Revoked) -> RingFault {
        match why {
            Revoked::Truncated => RingFault::corrupt(
                &self.path,
                "its file shrank (was it truncated?) while this process had it mapped, so \
                 its memory is gone here",
            ),
            Revoked::Forked => RingFault::UsedAfterFork {
                name: self.name.clone(),
                mapped_by: self.mapped_by,
            },
        }
    }
}

impl RingMap {
    /// Where this mapping's slots are and how they are laid out, copied out
    /// of the map: a loop over many slots keeps it in registers, where
    /// [`Slots::slot`] on the map reloads every field each time (stores
    /// into a reader's buffer might, as far as the compiler knows, change
    /// them).
    #[inline]
    pub(crate) fn slot_geometry(&self) -> SlotGeometry<'_> {
        SlotGeometry {
            // SAFETY: header_len <= the mapping's length (validated at open).
            first_slot: unsafe { self.map.as_ptr().add(self.header_len) },
            // SAFETY: heads_offset + capacity * head_stride <= the mapping's
            // length (Layout::file_len, validated at open).
            first_head: unsafe { self.map.as_ptr().add(self.heads_offset) },
            mask: self.mask,
            stride: self.stride,
            head_stride: self.head_stride,
            time_offset: self.layout.timestamps().then_some(self.time_offset),
            payload_offset: self.payload_offset,
            payload_words: self.payload_words,
            max_len: self.layout.slot_size as usize,
            exact: self.layout.fixed_size(),
            _map: PhantomData,
        }
    }
}

/// A ring mapping's slot layout (see [`RingMap::slot_geometry`]); it
/// borrows the map, so the slots it points at stay mapped.
#[derive(Clone, Copy)]
pub(crate) struct SlotGeometry<'a> {
    first_slot: *const u8,
    first_head: *const u8,
    mask: u64,
    stride: usize,
    head_stride: usize,
    /// Offset of the time word in a slot, on rings with timestamps.
    time_offset: Option<usize>,
    payload_offset: usize,
    payload_words: usize,
    max_len: usize,
    exact: bool,
    _map: PhantomData<&'a RingMap>,
}

impl<'a> SlotGeometry<'a> {
    /// The slot that message `seq` goes into.
    #[inline(always)]
    pub(crate) fn slot(self, seq: u64) -> SlotRef<'a> {
        let index = (seq & self.mask) as usize;
        // SAFETY: the geometry was copied from a validated RingMap that the
        // lifetime 'a keeps mapped. `index < capacity`, so the slot and its
        // head lie inside the mapping (header_len + capacity * stride, and
        // heads_offset + capacity * head_stride, <= mapping length). Slots
        // are 64-byte aligned (page-aligned start, stride a multiple of 64);
        // a SlotHead (two atomic words, layout asserted at compile time) is
        // 8-byte aligned either at the start of its slot (head_stride ==
        // stride) or in the head table (line-aligned start, head_stride ==
        // SLOT_OVERHEAD), and does not overlap the slot's time word or
        // payload (Layout::slot_overhead); the time word sits at
        // time_offset on rings with timestamps, and `payload_words` words
        // follow within the stride (payload_offset + 8 * payload_words ==
        // stride). All are accessed only atomically.
        unsafe {
            let base = self.first_slot.add(index * self.stride);
            let head = &*self
                .first_head
                .add(index * self.head_stride)
                .cast::<SlotHead>();
            SlotRef {
                stamp: &head.stamp,
                len: &head.len,
                time: self
                    .time_offset
                    .map(|at| &*base.add(at).cast::<AtomicU64>()),
                words: std::slice::from_raw_parts(
                    base.add(self.payload_offset).cast::<AtomicU64>(),
                    self.payload_words,
                ),
                max_len: self.max_len,
                exact: self.exact,
            }
        }
    }
}

impl Slots for RingMap {
    #[inline]
    fn capacity(&self) -> u64 {
        self.layout.capacity
    }

    #[inline]
    fn slot(&self, seq: u64) -> SlotRef<'_> {
        self.slot_geometry().slot(seq)
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

/// What a subscriber can tell about the publisher side of its ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublisherStatus {
    /// Pid of the current or last publisher.
    pub pid: u32,
    /// A publisher has the ring open and its process exists.
    pub alive: bool,
    /// The last publisher closed the ring cleanly.
    pub closed: bool,
    /// How many times a publisher has opened the ring.
    pub generation: u64,
    /// Messages published so far.
    pub cursor: u64,
}
