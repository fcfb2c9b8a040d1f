//! Opening a ring as a publisher: creating it atomically, taking over a
//! single-producer ring whose publisher is gone (its sequence continues), or
//! joining a multi-producer ring as one more producer.

use super::bounded::Room;
use super::multi::Multi;
use super::single::Single;
use super::{CreateOptions, Flavor, Publisher};
use crate::error::{ArgumentError, OpenError, Result, RingFault};
use crate::format::layout::{self, Layout, PUBLISHER_LOCK_OFFSET, PUBLISHER_OPEN};
use crate::format::name;
use crate::memory::{self, MemoryOptions};
use crate::protocol::{self, stamp, Slots};
use crate::shm::backing::{self, RingFile, RingIdentity};
use crate::shm::hugepages::HugePages;
use crate::shm::ring::{unix_now_ns, RingMap};
use crate::sys;
use crate::sys::liveness;
use crate::sys::placement;
use crate::wait::WaitStrategy;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;

impl Publisher {
    /// Creates ring `name`, or (with `exist_ok`) takes it over when no live
    /// publisher holds it (single producer) / joins it (multi-producer).
    pub fn create(name: &str, opts: &CreateOptions) -> Result<Self, OpenError> {
        name::validate(name)?;
        let wanted = opts.layout();
        wanted.check()?;
        if opts.mode & !0o777 != 0 {
            return Err(ArgumentError::Mode { mode: opts.mode }.into());
        }
        if let Some(node) = opts.placement.numa_node {
            placement::check_node(node)?;
        }
        if opts
            .placement
            .huge_page_size
            .is_some_and(|s| !s.is_power_of_two() || s < 4096)
        {
            return Err(ArgumentError::HugePageSize {
                size: opts.placement.huge_page_size.unwrap_or(0),
            }
            .into());
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
    ) -> Result<Self, OpenError> {
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
                Err(OpenError::Fault(RingFault::Io { source, .. }))
                    if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if let Some(publisher) = Self::create_new(dir, path, name, wanted, opts)? {
                return Ok(publisher);
            }
        }
        Err(OpenError::Exists {
            name: name.to_owned(),
            path: path.to_owned(),
        })
    }

    /// Opens the existing ring `name` as a publisher, whatever its layout:
    /// joins a multi-producer ring as one more producer, or takes over a
    /// single-producer ring whose publisher is gone (its sequence continues).
    pub fn attach(name: &str, dir: Option<&Path>, wait: WaitStrategy) -> Result<Self, OpenError> {
        Self::attach_with(name, dir, wait, &MemoryOptions::default())
    }

    /// [`Publisher::attach`], pinning, locking and prefaulting as `memory` says.
    pub fn attach_with(
        name: &str,
        dir: Option<&Path>,
        wait: WaitStrategy,
        memory: &MemoryOptions,
    ) -> Result<Self, OpenError> {
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
                OpenError::NotFound {
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
    ) -> Result<Option<Self>, OpenError> {
        let new = backing::create(dir, name, layout, &opts.placement, opts.mode)?;
        if !layout.multi_producer()
            && !sys::fs::try_lock_exclusive(&new.file)
                .map_err(|e| RingFault::io("lock", &new.bytes_at, e))?
        {
            return Err(RingFault::io(
                "lock",
                &new.bytes_at,
                io::Error::other("fresh file already locked"),
            )
            .into());
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
    ) -> Result<Option<Self>, OpenError> {
        let path = &file.path.clone();
        // A single-producer ring is told apart from a multi-producer one by
        // its layout, which needs a mapping; the lock comes first for the
        // single-producer case so that the check below is not racy.
        let ring = RingMap::open(file, name)?;
        let existing = ring.layout().clone();
        if !existing.multi_producer()
            && !sys::fs::try_lock_exclusive(ring.file())
                .map_err(|e| RingFault::io("lock", path, e))?
        {
            return Err(OpenError::PublisherExists {
                name: name.to_owned(),
                path: path.to_owned(),
                pid: ring.header().publisher.0.pid.load(Ordering::Relaxed),
            });
        }
        if !opts.exist_ok {
            return Err(OpenError::Exists {
                name: name.to_owned(),
                path: path.to_owned(),
            });
        }
        let meta = ring
            .file()
            .metadata()
            .map_err(|e| RingFault::io("inspect", path, e))?;
        // (Following a huge-page ring's link to its file.)
        match std::fs::metadata(path) {
            Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => {}
            _ => return Ok(None),
        }
        if opts.placement.huge_pages == HugePages::Require && !ring.backing().huge {
            return Err(OpenError::HugePagesUnavailable {
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
                return Err(OpenError::SchemaMismatch {
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
            return Err(RingFault::corrupt(
                path,
                format!("its cursor {cursor} is beyond any possible sequence"),
            )
            .into());
        }
        // A single publisher that died between Commit and Advance left
        // message `cursor` complete: count it. One that died inside
        // Begin..Commit left `cursor` half written: it is simply written again.
        if !existing.multi_producer()
            && ring.slot(cursor).stamp.load(Ordering::Acquire) == stamp::complete(cursor)
        {
            ring.cursor().store(cursor + 1, Ordering::Release);
        }
        // One that died inside `publish_lost` left the top of the run
        // unstamped under the cursor: stamp it, or readers would wait there
        // until this publisher laps them.
        if !existing.multi_producer() {
            protocol::finish_lost_run(&ring);
        }
        Self::claim(ring, opts).map(Some)
    }

    /// Marks the ring as published by this process (and, on multi-producer
    /// rings, claims a producer record).
    fn claim(ring: RingMap, opts: &CreateOptions) -> Result<Self, OpenError> {
        let identity = RingIdentity::of(&ring)?;
        let end_memory = memory::settle(&ring, &opts.memory)?;
        // A single producer holds the publisher lock (subscribers test it to
        // tell a dead publisher from a quiet one), taken before the state
        // and generation below are stored (see `RingMap::publisher_death`).
        // The exclusive flock taken before makes it ours to take.
        if !ring.layout().multi_producer()
            && !liveness::try_lock(ring.file(), PUBLISHER_LOCK_OFFSET)
                .map_err(|e| RingFault::io("lock", ring.path(), e))?
        {
            return Err(OpenError::PublisherExists {
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
                #[cfg(feature = "test-hooks")]
                stop_while_leaving: false,
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
            membarrier_registered: crate::sys::membarrier::publisher_registered(),
            fruitless_wakes: 0,
            owner_pid: std::process::id(),
            strategy: opts.wait,
            end_memory,
            huge_fallback: None,
        })
    }
}
