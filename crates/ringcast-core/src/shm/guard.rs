//! What becomes of a ring's mapping when its file shrinks under it, or when
//! the process forks: the next call on the ring fails with a clear error,
//! instead of a SIGBUS killing the process or a forked child silently
//! sharing the parent's end of the ring.
//!
//! Every ring mapping is registered in a fixed, lock-free table. Two events
//! *revoke* a mapping: its pages are replaced (`mmap` with `MAP_FIXED`) by
//! private zero pages, and its entry records why.
//!
//! - **Truncation.** Touching a page of a shared mapping past the end of its
//!   file raises SIGBUS. A process-wide SIGBUS handler, installed with the
//!   first mapping and chained to whatever handler was there before, revokes
//!   the mapping that contains the faulting address and returns: the
//!   faulting instruction runs again, on zero pages. Faults outside ring
//!   mappings go to the previous handler (or the default action).
//! - **fork().** A `pthread_atfork` child handler revokes every mapping in
//!   the child, so an inherited publisher or subscriber can neither write
//!   the parent's ring nor read it. (`vfork` and `posix_spawn`, which share
//!   the parent's memory until `exec`, run no fork handlers.)
//!
//! Nothing is added to the publish or receive paths. A revoked mapping is
//! zeros, except that the header's parked-reader and blocked-publisher
//! counts read [`REVOKED_WAITERS`]: a publisher, which looks at the first
//! after every publish, takes its slow path, and a reader finds no message
//! and takes its "nothing to read" path; both ask [`Guard::check`] there.
//! A call that faulted completes on the zero pages (a message published then
//! reaches nobody) and fails.
//!
//! Limits: a process may have [`MAX_MAPPINGS`] ring mappings at once; a
//! handler installed after ours (Python's `faulthandler`, enabled later)
//! runs first: it prints its report, then chains back to ours, which
//! recovers. Memory that is not a ring mapping (another library's) is left
//! to the previous handler as before.

use crate::format::layout::Header;
use crate::sys::{process, signal, vm};
use std::io;
use std::mem::offset_of;
use std::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Most ring mappings one process can have at once.
pub const MAX_MAPPINGS: usize = 16_384;

/// What the waiter counts of a revoked mapping's header read: large enough
/// that a parked guard's decrement never brings them to zero.
pub(crate) const REVOKED_WAITERS: u32 = 1 << 30;

/// Why a mapping was revoked, if it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The ring file shrank below the mapping (SIGBUS on access).
    Truncated,
    /// The process is a fork() child of the one that mapped the ring.
    Forked,
}

const LIVE: u8 = 1;
const TRUNCATED: u8 = 2;
const FORKED: u8 = 3;

/// Entry start while its registration is being written.
const CLAIMING: usize = usize::MAX;

/// One registered mapping. `start` is 0 when the entry is free.
struct Entry {
    start: AtomicUsize,
    len: AtomicUsize,
    state: AtomicU8,
}

#[allow(clippy::declare_interior_mutable_const)] // only to build the table below
const FREE: Entry = Entry {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    state: AtomicU8::new(0),
};

static TABLE: [Entry; MAX_MAPPINGS] = [FREE; MAX_MAPPINGS];

/// The registration of one mapping, until [`Guard::release`].
#[derive(Debug)]
pub(crate) struct Guard {
    index: usize,
}

impl Guard {
    /// Registers `len` bytes at `start` (a fresh ring mapping), installing
    /// the SIGBUS and fork handlers on first use.
    pub(crate) fn register(start: *mut u8, len: usize) -> io::Result<Self> {
        install_handlers()?;
        for (index, entry) in TABLE.iter().enumerate() {
            if entry
                .start
                .compare_exchange(0, CLAIMING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                entry.len.store(len, Ordering::Relaxed);
                entry.state.store(LIVE, Ordering::Relaxed);
                // Release: a handler that finds the start finds len and state.
                entry.start.store(start as usize, Ordering::Release);
                return Ok(Self { index });
            }
        }
        Err(io::Error::other(format!(
            "this process already maps {MAX_MAPPINGS} rings; close some first"
        )))
    }

    /// Why the mapping was revoked, if it was: one load of its entry.
    #[inline]
    pub(crate) fn revoked(&self) -> Option<Revoked> {
        match TABLE[self.index].state.load(Ordering::Acquire) {
            TRUNCATED => Some(Revoked::Truncated),
            FORKED => Some(Revoked::Forked),
            _ => None,
        }
    }
}

impl Guard {
    /// Unregisters the mapping; called just before it is unmapped, so that
    /// no handler ever maps over an address range that is no longer ours.
    pub(crate) fn release(&self) {
        let entry = &TABLE[self.index];
        entry.state.store(0, Ordering::Relaxed);
        entry.start.store(0, Ordering::Release);
    }
}

/// Installs the SIGBUS handler and the fork child handler, once per process.
fn install_handlers() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        let code = |e: io::Error| e.raw_os_error().unwrap_or(0);
        // SAFETY: both handlers are async-signal-safe: they only touch
        // atomics and call mmap (see `revoke`). This runs once per process,
        // so the SIGBUS handler is not installed twice.
        unsafe {
            signal::catch_bus_errors(on_sigbus).map_err(code)?;
            process::at_fork_child(on_fork_child).map_err(code)?;
        }
        Ok(())
    });
    (*result).map_err(|code| {
        io::Error::new(
            io::Error::from_raw_os_error(code).kind(),
            format!(
                "cannot install the SIGBUS and fork handlers that protect ring mappings: {}",
                io::Error::from_raw_os_error(code)
            ),
        )
    })
}

/// Replaces the mapping of `entry` with private zero pages whose header
/// waiter counts read [`REVOKED_WAITERS`], and marks it `why`. Returns
/// `false` if the kernel refused (the caller then lets the fault kill).
///
/// Async-signal-safe: atomics and one `mmap`.
fn revoke(entry: &Entry, why: u8) -> bool {
    let start = entry.start.load(Ordering::Acquire);
    let len = entry.len.load(Ordering::Relaxed);
    if start == 0 || start == CLAIMING {
        return false;
    }
    // SAFETY: [start, start + len) is a ring mapping of this process (its
    // entry is registered until just before munmap); MAP_FIXED replaces it
    // atomically with fresh anonymous pages, so every reference into it
    // stays valid (now to private zeros), and the crate accesses ring
    // memory only through atomics.
    if !unsafe { vm::replace_with_zero_pages(start as *mut u8, len) } {
        return false;
    }
    // SAFETY: the header fields are inside the fresh mapping (a ring
    // mapping starts with a whole Header) and suitably aligned atomics.
    unsafe {
        let counter = |offset: usize| &*((start + offset) as *const AtomicU32);
        let waiters = offset_of!(Header, notify) + std::mem::size_of::<u32>();
        let space_waiters = offset_of!(Header, table) + 2 * 8 + std::mem::size_of::<u32>();
        counter(waiters).store(REVOKED_WAITERS, Ordering::Relaxed);
        counter(space_waiters).store(REVOKED_WAITERS, Ordering::Relaxed);
    }
    entry.state.store(why, Ordering::Release);
    true
}

/// The SIGBUS handler: revokes the ring mapping the fault at `addr` is in;
/// `false` hands the signal to the previous handler (see
/// [`crate::sys::signal`]).
fn on_sigbus(addr: usize) -> bool {
    for entry in &TABLE {
        let start = entry.start.load(Ordering::Acquire);
        if start != 0
            && start != CLAIMING
            && addr >= start
            && addr - start < entry.len.load(Ordering::Relaxed)
        {
            if revoke(entry, TRUNCATED) {
                return true; // the access runs again, on zero pages
            }
            break;
        }
    }
    false
}

/// Runs in the child after fork(): every ring mapping inherited from the
/// parent is revoked, so nothing done here reaches the parent's rings.
extern "C" fn on_fork_child() {
    for entry in &TABLE {
        if entry.state.load(Ordering::Acquire) == LIVE {
            revoke(entry, FORKED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_file_revokes_its_mapping_instead_of_killing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let len = 4 * crate::format::layout::PAGE;
        file.set_len(len as u64).unwrap();
        let map = crate::shm::mapping::Mapping::map(&file, len).unwrap();
        let word = |offset: usize| {
            // SAFETY: inside the mapping, 8-byte aligned.
            unsafe {
                &*map
                    .as_ptr()
                    .add(offset)
                    .cast::<std::sync::atomic::AtomicU64>()
            }
        };
        word(len - 8).store(7, Ordering::Relaxed);
        assert_eq!(map.revoked(), None);
        file.set_len(0).unwrap();
        // Without the guard this load is a SIGBUS.
        assert_eq!(word(len - 8).load(Ordering::Relaxed), 0);
        assert_eq!(map.revoked(), Some(Revoked::Truncated));
        let waiters = offset_of!(Header, notify) + 4;
        // SAFETY: inside the (now private) mapping, aligned.
        let parked = unsafe { &*map.as_ptr().add(waiters).cast::<AtomicU32>() };
        assert_eq!(parked.load(Ordering::Relaxed), REVOKED_WAITERS);
        drop(map); // unmaps the replacement cleanly
    }
}
