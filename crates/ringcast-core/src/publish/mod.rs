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
mod builder;
mod multi;
mod patience;
mod single;

pub use builder::PublisherBuilder;
pub use patience::Patience;

use crate::error::{Error, Result};
use crate::format::layout::{
    self, Layout, DEFAULT_CLAIM_TIMEOUT_NS, DEFAULT_LIVENESS_TIMEOUT_NS, DEFAULT_MAX_PRODUCERS,
    DEFAULT_MAX_SUBSCRIBERS, FLAG_BOUNDED, FLAG_FIXED_SIZE, FLAG_MULTI_PRODUCER, FLAG_TIMESTAMPS,
    PUBLISHER_CLOSED, PUBLISHER_LOCK_OFFSET, PUBLISHER_OPEN, RECORD_ACTIVE,
};
use crate::format::name;
use crate::memory::{self, EndMemory, MemoryOptions, MemoryReport};
use crate::protocol::stamp;
use crate::protocol::Slots;
use crate::shm::backing::{self, Placement, RingFile, RingIdentity};
use crate::shm::hugepages::HugePages;
use crate::shm::ring::{unix_now_ns, RingMap};
use crate::sys::liveness;
use crate::sys::placement;
use crate::sys::{self, clock};
use crate::wait::WaitStrategy;
use bounded::Room;
use multi::Multi;
use single::Single;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

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
    generation: u64,
    identity: RingIdentity,
    /// This process takes part in the asymmetric wake-up barrier.
    barrier_registered: bool,
    /// Wake syscalls that found nobody asleep.
    fruitless_wakes: u64,
    /// Process that created this value: a forked child must not close the
    /// parent's ring when its copy is dropped.
    owner_pid: u32,
    /// Which producer this is: the only one, or one of several.
    flavor: Flavor,
    /// How to wait for room (bounded) or for a slot's previous lap.
    strategy: WaitStrategy,
    /// What this publisher did to its thread and mapping.
    end_memory: EndMemory,
    /// Why a `huge_pages="prefer"` ring got normal pages.
    huge_fallback: Option<String>,
}

/// The producer side of a ring, one mode per file: the public type
/// dispatches on it (bounded rings add a [`bounded::Room`] to either).
enum Flavor {
    /// The only producer ([`single`]).
    Single(Single),
    /// One of several producers ([`multi`]).
    Multi(Multi),
}

/// Fruitless wake syscalls between two sweeps for dead subscriber records.
const FRUITLESS_WAKES_BEFORE_SWEEP: u64 = 1024;

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
            && !sys::fs::try_lock_exclusive(&new.file)
                .map_err(|e| Error::io("lock", &new.bytes_at, e))?
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
            && !sys::fs::try_lock_exclusive(ring.file()).map_err(|e| Error::io("lock", path, e))?
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
        let room = ring.layout().bounded().then(|| Room::new(&ring));
        let flavor = if ring.layout().multi_producer() {
            let index = ring.claim_producer()?;
            let rec = ring.producer(index);
            rec.memory.store(end_memory.encode(), Ordering::Relaxed);
            Flavor::Multi(Multi {
                index,
                room,
                #[cfg(feature = "test-hooks")]
                stop_after_claim: None,
            })
        } else {
            Flavor::Single(Single {
                next: ring.cursor().load(Ordering::Acquire),
                room,
            })
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
        Ok(Self {
            ring,
            flavor,
            generation,
            identity,
            barrier_registered: crate::sys::membarrier::publisher_registered(),
            fruitless_wakes: 0,
            owner_pid: std::process::id(),
            strategy: opts.wait,
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
        if let Flavor::Single(single) = &mut self.flavor {
            // Single producer with room (always, on a lossy ring): nothing
            // to claim, nothing to wait for.
            if let Some((seq, _)) = single.reserve(&self.ring, 1) {
                single.write(&self.ring, seq, 1, |_| msg, time);
                return self.wake_parked().map(|()| seq);
            }
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
            let reserved = match &mut self.flavor {
                Flavor::Single(single) => single.reserve(&self.ring, want),
                Flavor::Multi(multi) => multi.reserve(&self.ring, want),
            };
            let Some((first, n)) = reserved else {
                if done > 0 {
                    self.wake_parked()?;
                }
                self.wait_for_room(&mut patience, done, count)?;
                continue;
            };
            first_seq.get_or_insert(first);
            let batch = |j: u64| msg_at(done + j as usize);
            match &mut self.flavor {
                Flavor::Single(single) => single.write(&self.ring, first, n, batch, time),
                Flavor::Multi(multi) => {
                    if let Err(stop) = multi.write(&self.ring, first, n, batch, time, &mut patience)
                    {
                        if stop.wakes_readers() {
                            self.wake_parked()?;
                        }
                        return Err(stop.into_error(&self.ring, done, count));
                    }
                }
            }
            done += n as usize;
        }
        self.wake_parked()?;
        Ok(first_seq.unwrap_or(self.sequence()))
    }

    /// Waits (per `patience`) until a bounded ring may have room; `done` of
    /// `count` messages went out.
    fn wait_for_room(
        &mut self,
        patience: &mut Patience<'_>,
        done: usize,
        count: usize,
    ) -> Result<()> {
        let (room, own_next) = match &mut self.flavor {
            Flavor::Single(single) => (single.room.as_mut(), Some(single.next)),
            Flavor::Multi(multi) => (multi.room.as_mut(), None),
        };
        let room = room.expect("only bounded rings are ever full");
        let ring = &self.ring;
        let next = move || own_next.unwrap_or_else(|| ring.cursor().load(Ordering::Acquire));
        bounded::wait_for_room(ring, room, next, self.strategy, patience, done, count)
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
        match &self.flavor {
            Flavor::Single(single) => single.next,
            Flavor::Multi(_) => self.ring.cursor().load(Ordering::Acquire),
        }
    }

    /// Messages this producer has published (multi-producer rings), or the
    /// ring's sequence (single producer).
    pub fn published(&self) -> u64 {
        match &self.flavor {
            Flavor::Single(single) => single.next,
            Flavor::Multi(multi) => multi.published(&self.ring),
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
        match &self.flavor {
            Flavor::Single(_) => 1,
            Flavor::Multi(multi) => 1 + self.ring.live_producers(Some(multi.index)),
        }
    }

    /// Test hook: after claiming sequence `seq`, mark its slot as being
    /// written and stop the whole process with SIGSTOP, so that a test can
    /// kill it between claim and commit. Multi-producer rings only.
    #[cfg(feature = "test-hooks")]
    pub fn stop_after_claim(&mut self, seq: u64) -> Result<()> {
        let Flavor::Multi(multi) = &mut self.flavor else {
            return Err(Error::WrongMode {
                name: self.ring.name().to_owned(),
                detail: "the claim hook applies to multi-producer rings only".into(),
            });
        };
        multi.stop_after_claim = Some(seq);
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

impl Drop for Publisher {
    fn drop(&mut self) {
        if std::process::id() != self.owner_pid {
            return; // a forked child's copy: the ring is still the parent's
        }
        let state = &self.ring.header().publisher.0.state;
        if let Flavor::Multi(multi) = &self.flavor {
            self.ring.release_producer(multi.index);
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
