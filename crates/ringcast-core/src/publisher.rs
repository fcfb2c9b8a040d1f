//! The single publisher of a ring.
//!
//! Single-producer is enforced across processes by an exclusive `flock` on the
//! ring file, held for the publisher's lifetime. The kernel drops the lock when
//! the holder dies, so a restarted publisher can take the ring over: it
//! recovers the cursor from the ring itself and continues the sequence, and
//! subscribers keep reading as if nothing happened.

use crate::error::{Error, Result};
use crate::layout::{
    self, Layout, DEFAULT_MAX_SUBSCRIBERS, FLAG_FIXED_SIZE, PUBLISHER_CLOSED, PUBLISHER_OPEN,
};
use crate::mapping::Mapping;
use crate::name;
use crate::protocol::{self, Slots};
use crate::ring::{unix_now_ns, RingMap};
use crate::stamp;
use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

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
    /// Take over an existing ring of the same layout instead of failing.
    pub exist_ok: bool,
}

impl CreateOptions {
    /// Options for a raw, variable-size ring with default settings.
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
        }
    }

    fn layout(&self) -> Layout {
        Layout {
            capacity: self.capacity,
            slot_size: self.slot_size,
            flags: if self.fixed_size { FLAG_FIXED_SIZE } else { 0 },
            max_subscribers: self.max_subscribers.unwrap_or(DEFAULT_MAX_SUBSCRIBERS),
            schema: self.schema.clone(),
        }
    }
}

/// The one writer of a ring. Dropping it closes the ring (see [`Publisher::close`]).
pub struct Publisher {
    ring: RingMap,
    /// Sequence the next message gets; mirrors the shared cursor.
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
}

/// Fruitless wake syscalls between two sweeps for dead subscriber records.
const FRUITLESS_WAKES_BEFORE_SWEEP: u64 = 1024;

/// Which file a ring is: its path plus device and inode, so that removing it
/// later (even after the publisher closed) never removes a newer ring that
/// took the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingIdentity {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl RingIdentity {
    /// Path of the ring file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the ring file if the path still names this ring; a missing file
    /// or one replaced by another ring is left alone.
    pub fn unlink(&self) -> Result<()> {
        match std::fs::metadata(&self.path) {
            Ok(there) if there.dev() == self.dev && there.ino() == self.ino => {
                std::fs::remove_file(&self.path).map_err(|e| Error::io("remove", &self.path, e))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("inspect", &self.path, e)),
        }
    }
}

impl Publisher {
    /// Creates ring `name`, or takes it over when `exist_ok` and no live
    /// publisher holds it.
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
        let dir = name::resolve_dir(opts.dir.as_deref());
        ensure_dir(
            &dir,
            opts.dir.is_none() && std::env::var_os("RINGCAST_DIR").is_none(),
        )?;
        let path = name::ring_path(&dir, name);
        // Each pass either opens the existing file or publishes a new one; a
        // lost creation race sends us round again to open the winner's file.
        for _ in 0..16 {
            match crate::ring::open_ring_file(&path) {
                Ok(file) => match Self::take_over(file, &path, name, &wanted, opts)? {
                    Some(publisher) => return Ok(publisher),
                    None => continue, // the name was replaced while we locked
                },
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if let Some(publisher) = Self::create_new(&dir, &path, name, &wanted, opts.mode)? {
                return Ok(publisher);
            }
        }
        Err(Error::Exists {
            name: name.to_owned(),
            path,
        })
    }

    /// Builds the ring in a hidden temporary file and links it into place, so
    /// nobody can ever open a half-initialised ring. `None`: someone else
    /// linked a ring of that name first.
    fn create_new(
        dir: &Path,
        path: &Path,
        name: &str,
        layout: &Layout,
        mode: u32,
    ) -> Result<Option<Self>> {
        remove_stale_temp_files(dir, name);
        let tmp = dir.join(format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            unix_now_ns()
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| Error::io("create files in", dir, e))?;
        let _cleanup = RemoveOnDrop(&tmp);
        // The umask may have cleared bits the caller asked for.
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| Error::io("set permissions of", &tmp, e))?;
        if !try_lock_exclusive(&file).map_err(|e| Error::io("lock", &tmp, e))? {
            return Err(Error::io(
                "lock",
                &tmp,
                io::Error::other("fresh file already locked"),
            ));
        }
        let len = layout.file_len();
        allocate(&file, len).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOSPC) => Error::NoSpace {
                dir: dir.to_owned(),
                needed: len,
            },
            _ => Error::io("size", &tmp, e),
        })?;
        let map = Mapping::map(&file, len as usize).map_err(|e| Error::io("map", &tmp, e))?;
        let ring = RingMap::from_parts(map, file, layout.clone(), path, name);
        layout::init_header(ring.header(), layout, unix_now_ns());
        let publisher = Self::claim(ring)?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(Some(publisher)),
            // Another creator won; our temporary ring is dropped and removed.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(Error::io("create", path, e)),
        }
    }

    /// Opens an existing ring as its publisher; `None` when the path stopped
    /// naming `file` before the lock was taken (the caller looks again).
    fn take_over(
        file: File,
        path: &Path,
        name: &str,
        wanted: &Layout,
        opts: &CreateOptions,
    ) -> Result<Option<Self>> {
        if !try_lock_exclusive(&file).map_err(|e| Error::io("lock", path, e))? {
            let pid = RingMap::open(file, path, name)
                .map(|r| r.header().publisher.0.pid.load(Ordering::Relaxed))
                .unwrap_or(0);
            return Err(Error::PublisherExists {
                name: name.to_owned(),
                path: path.to_owned(),
                pid,
            });
        }
        if !opts.exist_ok {
            return Err(Error::Exists {
                name: name.to_owned(),
                path: path.to_owned(),
            });
        }
        let meta = file.metadata().map_err(|e| Error::io("inspect", path, e))?;
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => {}
            _ => return Ok(None),
        }
        // SAFETY: geteuid cannot fail and touches no memory.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            // Its owner can still write into it: refuse to publish there.
            return Err(Error::PermissionDenied {
                path: path.to_owned(),
                action: format!(
                    "take over a ring owned by uid {} (we are uid {me}):",
                    meta.uid()
                ),
            });
        }
        let ring = RingMap::open(file, path, name)?;
        let existing = ring.layout();
        let same = existing.capacity == wanted.capacity
            && existing.slot_size == wanted.slot_size
            && existing.flags == wanted.flags
            && existing.schema == wanted.schema
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
        // Subscribers that died while parked would make every publish wake
        // nobody: take them out of the waiter count.
        ring.release_dead_records();
        // A publisher that died between Commit and Advance left message
        // `cursor` complete: count it. One that died inside Begin..Commit left
        // `cursor` half written: it is simply written again.
        let mut cursor = ring.cursor().load(Ordering::Acquire);
        if cursor > crate::stamp::MAX_SEQ {
            return Err(Error::corrupt(
                path,
                format!("its cursor {cursor} is beyond any possible sequence"),
            ));
        }
        if ring.slot(cursor).stamp.load(Ordering::Acquire) == stamp::complete(cursor) {
            cursor += 1;
            ring.cursor().store(cursor, Ordering::Release);
        }
        Self::claim(ring).map(Some)
    }

    /// Marks the ring as published by this process.
    fn claim(ring: RingMap) -> Result<Self> {
        let meta = ring
            .file()
            .metadata()
            .map_err(|e| Error::io("inspect", ring.path(), e))?;
        let identity = RingIdentity {
            path: ring.path().to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        };
        let header = ring.header();
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
        Ok(Self {
            ring,
            next,
            generation,
            identity,
            barrier_registered: crate::barrier::publisher_registered(),
            fruitless_wakes: 0,
            owner_pid: std::process::id(),
        })
    }

    /// Publishes one message; returns its sequence number.
    #[inline]
    pub fn publish(&mut self, msg: &[u8]) -> Result<u64> {
        self.check_size(msg.len())?;
        let seq = self.next;
        protocol::publish(&self.ring, seq, msg);
        self.next = seq + 1;
        self.wake_parked();
        Ok(seq)
    }

    /// Publishes every message of `msgs` (each checked first: on an error
    /// nothing is published), waking parked subscribers once at the end.
    /// Returns the sequence of the first message.
    pub fn publish_all<'a, I>(&mut self, msgs: I) -> Result<u64>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        let msgs = msgs.into_iter();
        for msg in msgs.clone() {
            self.check_size(msg.len())?;
        }
        let first = self.next;
        for msg in msgs {
            protocol::publish(&self.ring, self.next, msg);
            self.next += 1;
        }
        self.wake_parked();
        Ok(first)
    }

    /// Publishes `data` as consecutive messages of exactly `slot_size` bytes
    /// each (fixed-size rings); returns the sequence of the first message.
    pub fn publish_records(&mut self, data: &[u8]) -> Result<u64> {
        let size = self.ring.slot_size();
        if data.len() % size != 0 {
            return Err(Error::InvalidArgument(format!(
                "a batch of {} bytes is not a whole number of {size}-byte records",
                data.len()
            )));
        }
        let first = self.next;
        for record in data.chunks_exact(size) {
            protocol::publish(&self.ring, self.next, record);
            self.next += 1;
        }
        self.wake_parked();
        Ok(first)
    }

    /// Wakes parked subscribers. A waiter count with nobody asleep behind it
    /// over many publishes means a subscriber died parked: its record is
    /// released (rarely: the sweep costs a syscall per record).
    #[inline]
    fn wake_parked(&mut self) {
        if !self.ring.wake_parked(self.barrier_registered) {
            self.fruitless_wakes += 1;
            if self.fruitless_wakes % FRUITLESS_WAKES_BEFORE_SWEEP == 0 {
                self.ring.release_dead_records();
            }
        }
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

    /// Sequence number the next message will get (= messages published so far).
    pub fn sequence(&self) -> u64 {
        self.next
    }

    /// How many publishers have opened this ring, this one included.
    pub fn generation(&self) -> u64 {
        self.generation
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

    /// Closes the ring: subscribers that have read everything learn that the
    /// stream ended. The file stays (see [`Publisher::unlink`]).
    pub fn close(self) {
        drop(self)
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
        // Release: every publish happens before subscribers see the close.
        self.ring
            .header()
            .publisher
            .0
            .state
            .store(PUBLISHER_CLOSED, Ordering::Release);
        // Parked subscribers must learn that the stream ended.
        self.ring.wake_parked(self.barrier_registered);
    }
}

/// Creates the ring directory if needed; the default one is shared like /tmp.
fn ensure_dir(dir: &Path, shared_default: bool) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(Error::InvalidArgument(format!(
                "{} exists but is not a directory; pass dir= pointing at a directory",
                dir.display()
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("inspect", dir, e)),
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    if shared_default {
        // World-writable with the sticky bit: every user may create rings,
        // only the owner may remove them. Best effort (another user's dir).
        let _ = std::fs::set_permissions(dir, Permissions::from_mode(0o1777));
    }
    Ok(())
}

/// Sets the file length, reserving the pages when the filesystem supports it
/// so that running out of /dev/shm is an error now, not a SIGBUS later.
fn allocate(file: &File, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on an fd we own.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    match rc {
        0 => Ok(()),
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(len),
        err => Err(io::Error::from_raw_os_error(err)),
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

/// Removes temporary files of `name` left by creators that died mid-way
/// (`.name.PID.NS.tmp` with a dead PID).
fn remove_stale_temp_files(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name();
        let Some(rest) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix)?.strip_suffix(".tmp"))
        else {
            continue;
        };
        let pid = rest.split('.').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !crate::ring::pid_alive(p)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes a temporary file when creation ends, whether it succeeded or not.
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}
