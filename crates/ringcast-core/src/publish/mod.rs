//! Publishers: the single producer of a ring, or one of several.
//!
//! Single-producer is enforced across processes by an exclusive `flock` on the
//! ring file, held for the publisher's lifetime. The kernel drops the lock when
//! the holder dies, so a restarted publisher can take the ring over: it
//! recovers the cursor from the ring itself and continues the sequence, and
//! subscribers keep reading as if nothing happened.
//!
//! Multi-producer rings take no such lock: every producer holds a record in
//! the ring's producer table (see [`crate::sys::liveness`]) and claims sequences on
//! the shared cursor (see [`crate::protocol`]). Bounded rings make every
//! publisher respect the slowest live subscriber (see [`crate::publish::bounded`]).

mod bounded;

use crate::error::{Error, Result};
use crate::format::layout::{
    self, Layout, CLAIM_IDLE, CLAIM_PENDING, DEFAULT_CLAIM_TIMEOUT_NS, DEFAULT_LIVENESS_TIMEOUT_NS,
    DEFAULT_MAX_PRODUCERS, DEFAULT_MAX_SUBSCRIBERS, FLAG_BOUNDED, FLAG_FIXED_SIZE,
    FLAG_MULTI_PRODUCER, FLAG_TIMESTAMPS, PUBLISHER_CLOSED, PUBLISHER_LOCK_OFFSET, PUBLISHER_OPEN,
    RECORD_ACTIVE,
};
use crate::format::name;
use crate::memory::{self, EndMemory, MemoryOptions, MemoryReport};
use crate::protocol::stamp;
use crate::protocol::{self, Slots};
use crate::publish::bounded::{Room, JUDGE_EVERY};
use crate::shm::backing::{self, Placement, RingFile, RingIdentity};
use crate::shm::hugepages::HugePages;
use crate::shm::ring::{unix_now_ns, Recovery, RingMap};
use crate::sys::clock;
use crate::sys::liveness;
use crate::sys::placement;
use crate::wait::{Step, WaitStrategy, Waiter};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Who may publish into a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Producers {
    /// One publisher at a time (enforced); the fastest mode.
    #[default]
    One,
    /// Up to `max` concurrent producers in any processes.
    Many {
        /// Size of the ring's producer table.
        max: u32,
    },
}

/// How to create (or take over) a ring.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Number of slots; a power of two, at least 2.
    pub capacity: u64,
    /// Largest message in bytes (the exact size when `fixed_size`).
    pub slot_size: u32,
    /// Every message is exactly `slot_size` bytes (typed records).
    pub fixed_size: bool,
    /// Description of the message type, stored in the ring for subscribers.
    pub schema: Vec<u8>,
    /// Subscriber table size; `None` means the default at creation and "any"
    /// when taking over an existing ring.
    pub max_subscribers: Option<u32>,
    /// Ring directory; `None` means `$RINGCAST_DIR` or `/dev/shm/ringcast`.
    pub dir: Option<PathBuf>,
    /// Permission bits of a new ring file.
    pub mode: u32,
    /// Take over (single producer) or join (multi-producer) an existing ring
    /// of the same layout instead of failing.
    pub exist_ok: bool,
    /// Bounded ring: `Some(watermark)`, the most unread messages a publisher
    /// may be ahead of the slowest live subscriber (1..=capacity). `None`:
    /// lossy ring (slow subscribers are lapped).
    pub bounded: Option<u64>,
    /// Bounded rings: a subscriber holding publishers back without reading
    /// for this long is evicted.
    pub liveness_timeout: Duration,
    /// Who may publish.
    pub producers: Producers,
    /// Multi-producer rings: how long a reader waits on a claimed slot before
    /// checking whether its producer died (and declaring the slot lost).
    pub claim_timeout: Duration,
    /// How this publisher waits when a bounded ring is full.
    pub wait: WaitStrategy,
    /// Where a new ring's memory comes from: huge pages, NUMA node.
    pub placement: Placement,
    /// What this publisher does to its thread and mapping (pin, lock,
    /// prefault) when it opens the ring.
    pub memory: MemoryOptions,
    /// Every message carries its publish time (ns on [`crate::sys::clock`]), for
    /// latency measurement; costs one clock read per publish call and 8
    /// bytes per slot.
    pub timestamps: bool,
}

impl CreateOptions {
    /// Options for a raw, variable-size, lossy single-producer ring.
    pub fn new(capacity: u64, slot_size: u32) -> Self {
        Self {
            capacity,
            slot_size,
            fixed_size: false,
            schema: Vec::new(),
            max_subscribers: None,
            dir: None,
            mode: 0o600,
            exist_ok: false,
            bounded: None,
            liveness_timeout: Duration::from_nanos(DEFAULT_LIVENESS_TIMEOUT_NS),
            producers: Producers::One,
            claim_timeout: Duration::from_nanos(DEFAULT_CLAIM_TIMEOUT_NS),
            wait: WaitStrategy::default(),
            placement: Placement::default(),
            memory: MemoryOptions {
                prefault: true,
                ..MemoryOptions::default()
            },
            timestamps: false,
        }
    }

    fn layout(&self) -> Layout {
        let mut flags = if self.fixed_size { FLAG_FIXED_SIZE } else { 0 };
        if self.timestamps {
            flags |= FLAG_TIMESTAMPS;
        }
        let (mut watermark, mut liveness_timeout_ns) = (0, 0);
        if let Some(w) = self.bounded {
            flags |= FLAG_BOUNDED;
            watermark = w;
            liveness_timeout_ns = duration_ns(self.liveness_timeout);
        }
        let (mut max_producers, mut claim_timeout_ns) = (0, 0);
        if let Producers::Many { max } = self.producers {
            flags |= FLAG_MULTI_PRODUCER;
            max_producers = max;
            claim_timeout_ns = duration_ns(self.claim_timeout);
        }
        Layout {
            capacity: self.capacity,
            slot_size: self.slot_size,
            flags,
            max_subscribers: self.max_subscribers.unwrap_or(DEFAULT_MAX_SUBSCRIBERS),
            schema: self.schema.clone(),
            watermark,
            liveness_timeout_ns,
            claim_timeout_ns,
            max_producers,
        }
    }
}

impl Producers {
    /// Many producers with the default table size.
    pub const fn many() -> Self {
        Producers::Many {
            max: DEFAULT_MAX_PRODUCERS,
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A publisher of a ring. Dropping it closes the ring (see [`Publisher::close`]).
pub struct Publisher {
    ring: RingMap,
    /// Single producer: the sequence the next message gets (mirrors the
    /// shared cursor). Multi-producer: unused.
    next: u64,
    generation: u64,
    identity: RingIdentity,
    /// This process takes part in the asymmetric wake-up barrier.
    barrier_registered: bool,
    /// Wake syscalls that found nobody asleep.
    fruitless_wakes: u64,
    /// Process that created this value: a forked child must not close the
    /// parent's ring when its copy is dropped.
    owner_pid: u32,
    /// Multi-producer rings: our record in the producer table.
    producer: Option<usize>,
    /// Bounded rings: the cached gate.
    room: Option<Room>,
    /// How to wait for room (bounded) or for a slot's previous lap.
    strategy: WaitStrategy,
    /// Test hook: stop this process (SIGSTOP) after claiming this sequence,
    /// inside `Begin`, to simulate a producer dying mid-write.
    stop_after_claim: Option<u64>,
    /// What this publisher did to its thread and mapping.
    end_memory: EndMemory,
    /// Why a `huge_pages="prefer"` ring got normal pages.
    huge_fallback: Option<String>,
}

/// Why a producer could not enter the slot of a message it claimed.
#[derive(Debug)]
enum Blocked {
    /// The patience ran out while a live producer held the previous lap.
    Stalled,
    /// The slot holds a stamp no protocol step leaves there.
    Damaged { observed: u64 },
    /// The ring's mapping was revoked (see [`crate::shm::guard`]).
    Revoked(Error),
}

/// How often a producer stuck entering a slot looks again for dead
/// producers of its earlier laps, once the claim deadline has passed.
const RECOVER_EVERY: Duration = Duration::from_millis(10);

/// Fruitless wake syscalls between two sweeps for dead subscriber records.
const FRUITLESS_WAKES_BEFORE_SWEEP: u64 = 1024;

/// How long a publish may wait, and what it does while it waits.
///
/// A publish waits for two things: room in a bounded ring that is full
/// (only with `wait_for_room`), and, on multi-producer rings, the producer
/// of the previous lap of a slot it claimed (normally nanoseconds; longer
/// only while that producer is descheduled or stopped: a dead one is
/// recovered after the ring's claim deadline). Both waits end at `deadline`
/// and when `between` (called every `slice` of waiting) returns `false`.
/// A claimed sequence cannot be given back: one still unwritten when the
/// wait ends is abandoned (subscribers count it lost once its slot frees up)
/// and the publish fails with [`Error::SlotStalled`].
pub struct Patience<'a> {
    /// Bounded rings: wait for room when the ring is full; `false`: fail
    /// with [`Error::RingFull`] at once.
    pub wait_for_room: bool,
    /// When to give up waiting (`None`: never); then fail with
    /// [`Error::PublishTimeout`] (room) or [`Error::SlotStalled`].
    pub deadline: Option<Instant>,
    /// How often to call `between` while waiting.
    pub slice: Option<Duration>,
    /// Called between slices; `false` ends the wait as the deadline would.
    /// Bindings use it to run signal handlers.
    pub between: Option<&'a mut dyn FnMut() -> bool>,
}

impl Patience<'_> {
    /// Never wait for room (a full bounded ring fails at once); wait for a
    /// slot's previous lap as long as it takes.
    pub const fn never() -> Patience<'static> {
        Patience {
            wait_for_room: false,
            deadline: None,
            slice: None,
            between: None,
        }
    }

    /// Wait as long as it takes.
    pub const fn forever() -> Patience<'static> {
        Self::until(None)
    }

    /// Wait until `deadline` (`None`: forever).
    pub const fn until(deadline: Option<Instant>) -> Patience<'static> {
        Patience {
            wait_for_room: true,
            deadline,
            slice: None,
            between: None,
        }
    }

    /// One look at the clock while waiting: whether to give up now (the
    /// deadline passed, or `between` said stop at the end of a slice).
    /// `slice_end`: when the current slice ends.
    fn gives_up(&mut self, now: Instant, slice_end: &mut Option<Instant>) -> bool {
        if self.deadline.is_some_and(|d| now >= d) {
            return true;
        }
        if let (Some(end), Some(slice), Some(between)) =
            (*slice_end, self.slice, self.between.as_mut())
        {
            if now >= end {
                if !between() {
                    return true;
                }
                *slice_end = Some(Instant::now() + slice);
            }
        }
        false
    }
}

impl Publisher {
    /// Creates ring `name`, or (with `exist_ok`) takes it over when no live
    /// publisher holds it (single producer) / joins it (multi-producer).
    pub fn create(name: &str, opts: &CreateOptions) -> Result<Self> {
        name::validate(name)?;
        let wanted = opts.layout();
        wanted.check()?;
        if opts.mode & !0o777 != 0 {
            return Err(Error::InvalidArgument(format!(
                "mode {:#o} has bits outside 0o777; pass permission bits such as 0o600 or 0o660",
                opts.mode
            )));
        }
        if let Some(node) = opts.placement.numa_node {
            placement::check_node(node)?;
        }
        if opts
            .placement
            .huge_page_size
            .is_some_and(|s| !s.is_power_of_two() || s < 4096)
        {
            return Err(Error::InvalidArgument(format!(
                "huge_page_size {} is not a page size; use 2 MiB (2097152) or 1 GiB (1073741824)",
                opts.placement.huge_page_size.unwrap_or(0)
            )));
        }
        let dir = name::resolve_dir(opts.dir.as_deref());
        backing::ensure_dir(
            &dir,
            opts.dir.is_none() && std::env::var_os("RINGCAST_DIR").is_none(),
        )?;
        crate::shm::trust::check_dir(&dir)?;
        let path = name::ring_path(&dir, name);
        memory::pinned(&opts.memory, || {
            Self::create_at(&dir, &path, name, &wanted, opts)
        })
    }

    /// [`Publisher::create`] once the arguments are checked.
    fn create_at(
        dir: &Path,
        path: &Path,
        name: &str,
        wanted: &Layout,
        opts: &CreateOptions,
    ) -> Result<Self> {
        // Each pass either opens the existing file or publishes a new one; a
        // lost creation race sends us round again to open the winner's file.
        for _ in 0..16 {
            match backing::open_ring_file(path) {
                Ok(file) => {
                    match Self::open_existing(file, name, Some(wanted), opts)? {
                        Some(publisher) => return Ok(publisher),
                        None => continue, // the name was replaced while we locked
                    }
                }
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if let Some(publisher) = Self::create_new(dir, path, name, wanted, opts)? {
                return Ok(publisher);
            }
        }
        Err(Error::Exists {
            name: name.to_owned(),
            path: path.to_owned(),
        })
    }

    /// Opens the existing ring `name` as a publisher, whatever its layout:
    /// joins a multi-producer ring as one more producer, or takes over a
    /// single-producer ring whose publisher is gone (its sequence continues).
    pub fn attach(name: &str, dir: Option<&Path>, wait: WaitStrategy) -> Result<Self> {
        Self::attach_with(name, dir, wait, &MemoryOptions::default())
    }

    /// [`Publisher::attach`], pinning, locking and prefaulting as `memory` says.
    pub fn attach_with(
        name: &str,
        dir: Option<&Path>,
        wait: WaitStrategy,
        memory: &MemoryOptions,
    ) -> Result<Self> {
        memory::pinned(memory, || {
            let file = backing::open_named(name, dir)?;
            let path = file.path.clone();
            let opts = CreateOptions {
                exist_ok: true,
                wait,
                memory: memory.clone(),
                ..CreateOptions::new(2, 1)
            };
            Self::open_existing(file, name, None, &opts)?.ok_or_else(|| {
                // The name was replaced while we locked it.
                Error::NotFound {
                    name: name.to_owned(),
                    available: path.parent().map(name::list).unwrap_or_default(),
                    path,
                }
            })
        })
    }

    /// Builds the ring where its placement says (see [`crate::shm::backing`]) and
    /// links it into place, so nobody can ever open a half-initialised ring.
    /// `None`: someone else linked a ring of that name first.
    fn create_new(
        dir: &Path,
        path: &Path,
        name: &str,
        layout: &Layout,
        opts: &CreateOptions,
    ) -> Result<Option<Self>> {
        let new = backing::create(dir, name, layout, &opts.placement, opts.mode)?;
        if !layout.multi_producer()
            && !try_lock_exclusive(&new.file).map_err(|e| Error::io("lock", &new.bytes_at, e))?
        {
            return Err(Error::io(
                "lock",
                &new.bytes_at,
                io::Error::other("fresh file already locked"),
            ));
        }
        let backing::NewRing {
            file,
            map,
            backing,
            bytes_at,
            huge_fallback,
            numa_bound,
            mut pending,
        } = new;
        let ring_file = RingFile {
            file,
            path: path.to_owned(),
            bytes_at,
        };
        let ring = RingMap::from_parts(map, ring_file, backing, layout.clone(), name);
        layout::init_header(ring.header(), layout, unix_now_ns());
        if let (Some(node), true) = (opts.placement.numa_node, numa_bound) {
            let state = &ring.header().publisher.0;
            state.numa_node.store(node as u32 + 1, Ordering::Relaxed);
        }
        let mut publisher = Self::claim(ring, opts)?;
        publisher.huge_fallback = huge_fallback;
        Ok(pending.link(path)?.then_some(publisher))
    }

    /// Opens an existing ring as a publisher (checking it has the `wanted`
    /// layout, if given); `None` when the path stopped naming `file` before
    /// the lock was taken (the caller looks again).
    fn open_existing(
        file: RingFile,
        name: &str,
        wanted: Option<&Layout>,
        opts: &CreateOptions,
    ) -> Result<Option<Self>> {
        let path = &file.path.clone();
        // A single-producer ring is told apart from a multi-producer one by
        // its layout, which needs a mapping; the lock comes first for the
        // single-producer case so that the check below is not racy.
        let ring = RingMap::open(file, name)?;
        let existing = ring.layout().clone();
        if !existing.multi_producer()
            && !try_lock_exclusive(ring.file()).map_err(|e| Error::io("lock", path, e))?
        {
            return Err(Error::PublisherExists {
                name: name.to_owned(),
                path: path.to_owned(),
                pid: ring.header().publisher.0.pid.load(Ordering::Relaxed),
            });
        }
        if !opts.exist_ok {
            return Err(Error::Exists {
                name: name.to_owned(),
                path: path.to_owned(),
            });
        }
        let meta = ring
            .file()
            .metadata()
            .map_err(|e| Error::io("inspect", path, e))?;
        // (Following a huge-page ring's link to its file.)
        match std::fs::metadata(path) {
            Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => {}
            _ => return Ok(None),
        }
        if opts.placement.huge_pages == HugePages::Require && !ring.backing().huge {
            return Err(Error::HugePagesUnavailable {
                name: name.to_owned(),
                detail: format!(
                    "the existing ring at {} is on normal pages, and taking it over keeps \
                     them; unlink it first to create it anew on huge pages",
                    path.display()
                ),
            });
        }
        if let Some(wanted) = wanted {
            let same = existing.capacity == wanted.capacity
                && existing.slot_size == wanted.slot_size
                && existing.flags == wanted.flags
                && existing.schema == wanted.schema
                && existing.watermark == wanted.watermark
                && (!existing.multi_producer() || existing.max_producers == wanted.max_producers)
                && opts
                    .max_subscribers
                    .is_none_or(|m| m == existing.max_subscribers);
            if !same {
                return Err(Error::SchemaMismatch {
                    name: name.to_owned(),
                    existing: existing.describe(),
                    requested: wanted.describe(),
                });
            }
        }
        // Subscribers that died while parked would make every publish wake
        // nobody: take them out of the waiter count.
        ring.release_dead_records(None);
        let cursor = ring.cursor().load(Ordering::Acquire);
        if cursor > stamp::MAX_SEQ {
            return Err(Error::corrupt(
                path,
                format!("its cursor {cursor} is beyond any possible sequence"),
            ));
        }
        // A single publisher that died between Commit and Advance left
        // message `cursor` complete: count it. One that died inside
        // Begin..Commit left `cursor` half written: it is simply written again.
        if !existing.multi_producer()
            && ring.slot(cursor).stamp.load(Ordering::Acquire) == stamp::complete(cursor)
        {
            ring.cursor().store(cursor + 1, Ordering::Release);
        }
        Self::claim(ring, opts).map(Some)
    }

    /// Marks the ring as published by this process (and, on multi-producer
    /// rings, claims a producer record).
    fn claim(ring: RingMap, opts: &CreateOptions) -> Result<Self> {
        let identity = RingIdentity::of(&ring)?;
        let end_memory = memory::settle(&ring, &opts.memory)?;
        // A single producer holds the publisher lock (subscribers test it to
        // tell a dead publisher from a quiet one), taken before the state
        // and generation below are stored (see `RingMap::publisher_death`).
        // The exclusive flock taken before makes it ours to take.
        if !ring.layout().multi_producer()
            && !liveness::try_lock(ring.file(), PUBLISHER_LOCK_OFFSET)
                .map_err(|e| Error::io("lock", ring.path(), e))?
        {
            return Err(Error::PublisherExists {
                name: ring.name().to_owned(),
                path: ring.path().to_owned(),
                pid: ring.header().publisher.0.pid.load(Ordering::Relaxed),
            });
        }
        let producer = if ring.layout().multi_producer() {
            let i = ring.claim_producer()?;
            let rec = ring.producer(i);
            rec.memory.store(end_memory.encode(), Ordering::Relaxed);
            Some(i)
        } else {
            None
        };
        let header = ring.header();
        header
            .publisher
            .0
            .memory
            .store(end_memory.encode(), Ordering::Relaxed);
        header
            .publisher
            .0
            .pid
            .store(std::process::id(), Ordering::Relaxed);
        let generation = header.publisher.0.generation.fetch_add(1, Ordering::AcqRel) + 1;
        header
            .publisher
            .0
            .state
            .store(PUBLISHER_OPEN, Ordering::Release);
        let next = ring.cursor().load(Ordering::Acquire);
        let room = ring.layout().bounded().then(|| Room::new(&ring));
        Ok(Self {
            ring,
            next,
            generation,
            identity,
            barrier_registered: crate::sys::membarrier::publisher_registered(),
            fruitless_wakes: 0,
            owner_pid: std::process::id(),
            producer,
            room,
            strategy: opts.wait,
            stop_after_claim: None,
            end_memory,
            huge_fallback: None,
        })
    }

    /// Publishes one message, waiting for room in a bounded ring as long as
    /// it takes; returns its sequence number.
    #[inline]
    pub fn publish(&mut self, msg: &[u8]) -> Result<u64> {
        self.publish_with(msg, Patience::forever())
    }

    /// Publishes one message if a bounded ring has room for it now, else
    /// fails with [`Error::RingFull`] (lossy rings always have room).
    #[inline]
    pub fn try_publish(&mut self, msg: &[u8]) -> Result<u64> {
        self.publish_with(msg, Patience::never())
    }

    /// Publishes one message, waiting for room as `patience` says. On a ring
    /// with timestamps the message carries the time of this call.
    #[inline]
    pub fn publish_with(&mut self, msg: &[u8], patience: Patience<'_>) -> Result<u64> {
        self.publish_one(msg, None, patience)
    }

    /// Publishes one message carrying `time` (ns on [`crate::sys::clock`], or any
    /// clock the subscribers share) as its publish time instead of now: the
    /// time it was due, so that a paced sender that falls behind is charged
    /// for the delay (no coordinated omission), or an upstream event time.
    /// Fails with [`Error::InvalidArgument`] on rings without timestamps.
    #[inline]
    pub fn publish_at(&mut self, msg: &[u8], time: u64, patience: Patience<'_>) -> Result<u64> {
        if !self.ring.layout().timestamps() {
            return Err(Error::InvalidArgument(format!(
                "ring '{}' carries no timestamps; create it with timestamps enabled \
                 to publish with a time",
                self.ring.name()
            )));
        }
        self.publish_one(msg, Some(time), patience)
    }

    #[inline]
    fn publish_one(
        &mut self,
        msg: &[u8],
        time: Option<u64>,
        patience: Patience<'_>,
    ) -> Result<u64> {
        self.check_size(msg.len())?;
        let time = self.time_or_now(time);
        if self.producer.is_none() && self.room.is_none() {
            // Lossy single producer: nothing to claim, nothing to wait for.
            let seq = self.next;
            protocol::publish(&self.ring, seq, msg, time);
            self.next = seq + 1;
            return self.wake_parked().map(|()| seq);
        }
        self.send(1, |_| msg, time, patience)
    }

    /// The publish time of a message: `given`, or now on rings with
    /// timestamps (one clock read, ~20 ns), 0 on rings without.
    #[inline]
    fn time_or_now(&self, given: Option<u64>) -> u64 {
        match given {
            Some(time) => time,
            None if self.ring.layout().timestamps() => clock::now_ns(),
            None => 0,
        }
    }

    /// Publishes every message of `msgs` (each checked first: on an error
    /// nothing is published), waking parked subscribers once at the end.
    /// Returns the sequence of the first message (on multi-producer rings,
    /// other producers' messages may come between the batch's messages).
    pub fn publish_all<'a, I>(&mut self, msgs: I, patience: Patience<'_>) -> Result<u64>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        let msgs: Vec<&[u8]> = msgs.into_iter().collect();
        for msg in &msgs {
            self.check_size(msg.len())?;
        }
        let time = self.time_or_now(None);
        self.send(msgs.len(), |i| msgs[i], time, patience)
    }

    /// Publishes `data` as consecutive messages of exactly `slot_size` bytes
    /// each (fixed-size rings); returns the sequence of the first message.
    pub fn publish_records(&mut self, data: &[u8], patience: Patience<'_>) -> Result<u64> {
        let size = self.ring.slot_size();
        if data.len() % size != 0 {
            return Err(Error::InvalidArgument(format!(
                "a batch of {} bytes is not a whole number of {size}-byte records",
                data.len()
            )));
        }
        let time = self.time_or_now(None);
        self.send(
            data.len() / size,
            |i| &data[i * size..(i + 1) * size],
            time,
            patience,
        )
    }

    /// Publishes `count` messages (`msg_at(i)` is message `i`, already
    /// size-checked), all published at `time`, claiming sequences and
    /// waiting for room as the ring's modes require. Returns the first
    /// message's sequence.
    fn send<'m>(
        &mut self,
        count: usize,
        msg_at: impl Fn(usize) -> &'m [u8],
        time: u64,
        mut patience: Patience<'_>,
    ) -> Result<u64> {
        let mut done = 0usize;
        let mut first_seq = None;
        while done < count {
            let want = (count - done) as u64;
            let got = match self.reserve(want) {
                Some(got) => got,
                None => {
                    if done > 0 {
                        self.wake_parked()?;
                    }
                    self.wait_for_room(&mut patience, done, count)?;
                    continue;
                }
            };
            let (first, n) = got;
            first_seq.get_or_insert(first);
            for j in 0..n {
                let seq = first + j;
                let msg = msg_at(done + j as usize);
                if self.producer.is_some() {
                    if seq > stamp::MAX_SEQ {
                        return Err(self.cursor_damaged(seq));
                    }
                    if let Err(blocked) = self.enter(seq, &mut patience) {
                        let (published, end) = (done + j as usize, first + n);
                        return Err(self.abandon_claim(blocked, seq, end, j, published, count));
                    }
                    let slot = self.ring.slot(seq);
                    if self.stop_after_claim == Some(seq) {
                        stop_self();
                    }
                    protocol::finish(slot, seq, msg, time);
                } else {
                    protocol::publish(&self.ring, seq, msg, time);
                }
            }
            if let Some(i) = self.producer {
                let rec = self.ring.producer(i);
                // Only we write our record: no read-modify-write needed.
                let published = rec.published.load(Ordering::Relaxed);
                rec.published.store(published + n, Ordering::Relaxed);
                // TLA+ (MpmcRing): Release.
                rec.claim.store(CLAIM_IDLE, Ordering::Release);
            } else {
                self.next = first + n;
            }
            done += n as usize;
        }
        self.wake_parked()?;
        Ok(first_seq.unwrap_or(self.sequence()))
    }

    /// Claims up to `want` sequences that may be written now: `(first, n)`
    /// with `n >= 1`, or `None` when a bounded ring has no room.
    #[inline]
    fn reserve(&mut self, want: u64) -> Option<(u64, u64)> {
        let ring = &self.ring;
        let Some(i) = self.producer else {
            let n = match &mut self.room {
                Some(room) => room.room(ring, self.next, want),
                None => want,
            };
            return (n > 0).then_some((self.next, n));
        };
        let rec = ring.producer(i);
        match &mut self.room {
            None => {
                // Claim: announce first, so that a reader who sees the cursor
                // past our sequences also sees that a live producer owns them.
                // TLA+ (MpmcRing): Announce, Claim, RecordClaim.
                rec.claim.store(CLAIM_PENDING, Ordering::Relaxed);
                let first = protocol::claim(ring, want);
                rec.claim_end.store(first + want, Ordering::Relaxed);
                rec.claim.store(first, Ordering::Release);
                Some((first, want))
            }
            Some(room) => loop {
                // Bounded: claim only what fits, with a compare-exchange,
                // so a claimed sequence never waits for room (it could not
                // be given back on a timeout).
                let first = ring.cursor().load(Ordering::Acquire);
                let n = room.room(ring, first, want);
                if n == 0 {
                    return None;
                }
                rec.claim_end.store(first + n, Ordering::Relaxed);
                rec.claim.store(first, Ordering::Release);
                if ring
                    .cursor()
                    .compare_exchange_weak(first, first + n, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some((first, n));
                }
                rec.claim.store(CLAIM_IDLE, Ordering::Release);
            },
        }
    }

    /// `WaitPreviousLap` then `Begin`: enters the slot of `seq` (claimed by
    /// us) once it holds the completed previous lap. That lap's producer is
    /// normally a few nanoseconds from committing; if it died, the slot is
    /// declared lost after the ring's claim deadline and we go on. An error
    /// when `patience` ran out first (a live producer holds the previous
    /// lap) or the slot holds what no producer can have left there.
    #[inline]
    fn enter(&self, seq: u64, patience: &mut Patience<'_>) -> std::result::Result<(), Blocked> {
        if protocol::try_enter(&self.ring, seq) {
            return Ok(());
        }
        self.enter_slow(seq, patience)
    }

    /// TLA+ (MpmcRing): `Enter` retried, and `ProducerRecovers` after the
    /// claim deadline (then every [`RECOVER_EVERY`]).
    #[cold]
    fn enter_slow(
        &self,
        seq: u64,
        patience: &mut Patience<'_>,
    ) -> std::result::Result<(), Blocked> {
        let since = Instant::now();
        let mut recover_at = since + self.ring.claim_deadline();
        let mut slice_end = patience.slice.map(|s| since + s);
        let mut polls = 0u32;
        // Look (loads) until it seems free, then try to take it.
        while !(protocol::previous_lap_done(&self.ring, seq)
            && protocol::try_enter(&self.ring, seq))
        {
            polls = polls.wrapping_add(1);
            if polls < 1000 {
                std::hint::spin_loop();
                continue;
            }
            if polls < 1100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
            let now = Instant::now();
            if let Err(e) = self.ring.usable() {
                return Err(Blocked::Revoked(e));
            }
            if now >= recover_at {
                // Never our own `seq`: only earlier laps of the slot.
                if let Recovery::Damaged { observed } = self.ring.recover_abandoned(seq, false) {
                    return Err(Blocked::Damaged { observed });
                }
                recover_at = now + RECOVER_EVERY;
            }
            if patience.gives_up(now, &mut slice_end) {
                return Err(Blocked::Stalled);
            }
        }
        Ok(())
    }

    /// A claim got sequence `seq`, beyond any a ring reaches: the shared
    /// cursor was damaged. The rest of the claim is dropped.
    #[cold]
    fn cursor_damaged(&mut self, seq: u64) -> Error {
        if let Some(i) = self.producer {
            self.ring
                .producer(i)
                .claim
                .store(CLAIM_IDLE, Ordering::Release);
        }
        Error::corrupt(
            self.ring.path(),
            format!("its cursor {seq} is beyond any possible sequence"),
        )
    }

    /// Gives up the rest of our claim, `seq .. end` (none of it written),
    /// when `seq` could not be entered: our record stops claiming it, so
    /// once the slots free up their messages are declared lost like a dead
    /// producer's. `written` messages of this claim went out before `seq`,
    /// `published` of the `requested` messages of the call.
    #[cold]
    fn abandon_claim(
        &mut self,
        blocked: Blocked,
        seq: u64,
        end: u64,
        written: u64,
        published: usize,
        requested: usize,
    ) -> Error {
        let i = self
            .producer
            .expect("only producers of multi-producer rings claim");
        let rec = self.ring.producer(i);
        let count = rec.published.load(Ordering::Relaxed);
        rec.published.store(count + written, Ordering::Relaxed);
        rec.claim.store(CLAIM_IDLE, Ordering::Release);
        if let Err(e) = self.wake_parked() {
            return e;
        }
        match blocked {
            Blocked::Revoked(e) => e,
            Blocked::Damaged { observed } => Error::corrupt(
                self.ring.path(),
                format!(
                    "the slot of message {seq} holds stamp {observed:#x}, which no producer \
                     leaves in a slot whose next message is claimed ({published} of the \
                     {requested} messages were published)"
                ),
            ),
            Blocked::Stalled => Error::SlotStalled {
                name: self.ring.name().to_owned(),
                seq,
                abandoned: end - seq,
                published,
                requested,
            },
        }
    }

    /// Waits (per `patience`) until a bounded ring may have room, judging
    /// the subscribers that block it. `done` of `count` messages went out.
    fn wait_for_room(
        &mut self,
        patience: &mut Patience<'_>,
        done: usize,
        count: usize,
    ) -> Result<()> {
        let ring = &self.ring;
        let room = self
            .room
            .as_mut()
            .expect("only bounded rings are ever full");
        // Hysteresis: resume once a sixteenth of the watermark is free, not
        // at the first free slot. A publisher resuming slot by slot would
        // pull the reader's record line (and the reader pull it back) for
        // every message; waiting for a few lines' worth of room lets both
        // run in streaks. At the deadline any room at all will do. The
        // subscribers judged are those that block the sequence waited for.
        // TLA+ (BoundedRing): Wait, ScanRecord with a judge target, Resume.
        let resume_at = (ring.layout().watermark / 16).max(1);
        if !patience.wait_for_room {
            // Even without waiting, dead and stalled subscribers must not
            // gate the ring forever: judge them (at most every few ms).
            let first = next_sequence(ring, self.producer, self.next);
            if room.judge_if_due(ring, first) && room.free(first) > 0 {
                return Ok(());
            }
            return Err(Error::RingFull {
                name: ring.name().to_owned(),
                published: done,
                requested: count,
            });
        }
        let deadline = patience.deadline;
        let timeout = || Error::PublishTimeout {
            name: ring.name().to_owned(),
            published: done,
            requested: count,
        };
        let mut waiter = Waiter::new(self.strategy);
        let mut parked = None;
        let mut slice_end = patience.slice.map(|s| Instant::now() + s);
        let mut polls = 0u32;
        loop {
            let first = next_sequence(ring, self.producer, self.next);
            room.rescan(ring, None);
            let mut free = room.free(first);
            if free >= resume_at {
                return Ok(());
            }
            if room.judge_if_due(ring, first + resume_at - 1) {
                free = room.free(first);
                if free >= resume_at {
                    return Ok(());
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return if free > 0 { Ok(()) } else { Err(timeout()) };
            }
            let step = waiter.next_step();
            if step != Step::Spin || polls % 64 == 0 {
                ring.usable()?;
                if patience.gives_up(Instant::now(), &mut slice_end) {
                    return Err(timeout());
                }
            }
            polls = polls.wrapping_add(1);
            match step {
                Step::Spin => {
                    // Each look at the positions costs the readers a cache
                    // miss: look every few hundred nanoseconds, not flat out.
                    for _ in 0..16 {
                        std::hint::spin_loop();
                    }
                }
                Step::Yield => std::thread::yield_now(),
                Step::Park => {
                    let until = [deadline, slice_end, Some(Instant::now() + JUDGE_EVERY)]
                        .into_iter()
                        .flatten()
                        .min();
                    let producer = self.producer;
                    let next = self.next;
                    parked
                        .get_or_insert_with(|| ring.register_space_waiter())
                        .sleep(until, || {
                            // Positions only: no rescan here (it needs &mut).
                            let first = next_sequence(ring, producer, next);
                            let limit = crate::protocol::room::limit(
                                crate::publish::bounded::slowest_active(ring),
                                ring.layout().watermark,
                            );
                            crate::protocol::room::room(first, limit, resume_at) >= resume_at
                        });
                }
            }
        }
    }

    /// Wakes parked subscribers: after every publish, one load of the
    /// waiter count while nobody is parked. A revoked mapping (see
    /// [`crate::shm::guard`]) reads a non-zero count, so this is also where a
    /// publish finds out that its ring's memory is gone.
    #[inline]
    fn wake_parked(&mut self) -> Result<()> {
        if self.ring.nobody_parked(self.barrier_registered) {
            return Ok(());
        }
        self.wake_parked_slow()
    }

    /// [`Publisher::wake_parked`] when someone may be parked. A waiter count
    /// with nobody asleep behind it over many publishes means a subscriber
    /// died parked: its record is released (rarely: the sweep costs a
    /// syscall per record).
    #[cold]
    fn wake_parked_slow(&mut self) -> Result<()> {
        self.ring.usable()?;
        if self.ring.wake_all_parked() == 0 {
            self.fruitless_wakes += 1;
            if self.fruitless_wakes % FRUITLESS_WAKES_BEFORE_SWEEP == 0 {
                self.ring.release_dead_records(None);
            }
        }
        Ok(())
    }

    /// Fails if this publisher can no longer be used: its ring file shrank
    /// under it ([`Error::Corrupt`]), or this process is a fork() child of
    /// the one that opened it ([`Error::UsedAfterFork`]). Publishing finds
    /// this out by itself; this is for everything else.
    pub fn check_usable(&self) -> Result<()> {
        self.ring.usable()
    }

    #[inline]
    fn check_size(&self, len: usize) -> Result<()> {
        let slot_size = self.ring.slot_size();
        if len > slot_size {
            return Err(Error::MessageTooLarge { len, slot_size });
        }
        if len != slot_size && self.ring.layout().fixed_size() {
            return Err(Error::InvalidArgument(format!(
                "message of {len} bytes does not match this ring's {slot_size}-byte records; \
                 publish whole records of the ring's type"
            )));
        }
        Ok(())
    }

    /// Sequence number the next message will get. On multi-producer rings:
    /// the next sequence any producer will claim (a snapshot).
    pub fn sequence(&self) -> u64 {
        next_sequence(&self.ring, self.producer, self.next)
    }

    /// Messages this producer has published (multi-producer rings), or the
    /// ring's sequence (single producer).
    pub fn published(&self) -> u64 {
        match self.producer {
            Some(i) => self.ring.producer(i).published.load(Ordering::Relaxed),
            None => self.next,
        }
    }

    /// How many publishers have opened this ring, this one included.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Subscribers evicted from this (bounded) ring so far, by any publisher.
    pub fn evictions(&self) -> u64 {
        self.ring.header().gates.0.evictions.load(Ordering::Relaxed)
    }

    /// Subscribers currently attached (in a bounded ring: those gating it).
    pub fn subscriber_count(&self) -> usize {
        (0..self.ring.records_in_use())
            .filter(|&i| self.ring.record(i).state.load(Ordering::Acquire) == RECORD_ACTIVE)
            .count()
    }

    /// Producers currently attached to a multi-producer ring (1 otherwise).
    pub fn producer_count(&self) -> usize {
        match self.producer {
            Some(i) => 1 + self.ring.live_producers(Some(i)),
            None => 1,
        }
    }

    /// Test hook: after claiming sequence `seq`, mark its slot as being
    /// written and stop the whole process with SIGSTOP, so that a test can
    /// kill it between claim and commit. Multi-producer rings only.
    pub fn stop_after_claim(&mut self, seq: u64) -> Result<()> {
        if self.producer.is_none() {
            return Err(Error::WrongMode {
                name: self.ring.name().to_owned(),
                detail: "the claim hook applies to multi-producer rings only".into(),
            });
        }
        self.stop_after_claim = Some(seq);
        Ok(())
    }

    /// The ring's layout.
    pub fn layout(&self) -> &Layout {
        self.ring.layout()
    }

    /// Path of the ring file.
    pub fn path(&self) -> &Path {
        self.ring.path()
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        self.ring.name()
    }

    /// Closes this publisher. When it was the last producer, subscribers
    /// that have read everything learn that the stream ended. The file stays
    /// (see [`Publisher::unlink`]).
    pub fn close(self) {
        drop(self)
    }

    /// Where the ring's memory is and what this publisher did to it (locked,
    /// prefaulted, pinned), with the NUMA node of a sample of its pages.
    pub fn memory(&self) -> MemoryReport {
        memory::report(&self.ring, self.end_memory, self.huge_fallback.clone())
    }

    /// Which file this ring is (for [`RingIdentity::unlink`] after closing).
    pub fn identity(&self) -> &RingIdentity {
        &self.identity
    }

    /// Removes the ring file (if it is still this ring's). Subscribers already
    /// attached keep their mapping; new ones no longer find the ring.
    pub fn unlink(&self) -> Result<()> {
        self.identity.unlink()
    }
}

/// The next sequence to be written: the shared claim cursor on
/// multi-producer rings (`producer` is ours), our own `next` otherwise.
#[inline]
fn next_sequence(ring: &RingMap, producer: Option<usize>, next: u64) -> u64 {
    match producer {
        Some(_) => ring.cursor().load(Ordering::Acquire),
        None => next,
    }
}

/// Stops this process (test hook of [`Publisher::stop_after_claim`]).
fn stop_self() {
    // SAFETY: plain syscalls; SIGSTOP cannot be caught, so the process stops
    // right here until continued or killed.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGSTOP);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if std::process::id() != self.owner_pid {
            return; // a forked child's copy: the ring is still the parent's
        }
        let state = &self.ring.header().publisher.0.state;
        if let Some(i) = self.producer {
            self.ring.release_producer(i);
            // The last producer out closes the stream. A producer joining at
            // the same moment stores OPEN after claiming its record; the
            // second look puts OPEN back if we raced with one.
            if self.ring.live_producers(None) == 0 {
                state.store(PUBLISHER_CLOSED, Ordering::SeqCst);
                if self.ring.live_producers(None) != 0 {
                    state.store(PUBLISHER_OPEN, Ordering::SeqCst);
                }
            }
        } else {
            // Release: every publish happens before subscribers see the
            // close, and the close before the lock goes (see
            // `RingMap::publisher_death`).
            state.store(PUBLISHER_CLOSED, Ordering::Release);
            liveness::unlock(self.ring.file(), PUBLISHER_LOCK_OFFSET);
        }
        // Parked subscribers must learn that the stream ended.
        self.ring.wake_parked(self.barrier_registered);
    }
}

/// Takes the exclusive publisher lock without blocking; `false` if held.
fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: plain syscall on an fd we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
}
