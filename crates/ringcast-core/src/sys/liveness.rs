//! Which table records have a live owner: one byte lock per record.
//!
//! A subscriber or producer that claims a record in a ring's table holds an
//! open-file-description lock (`F_OFD_SETLK`) on the record's first byte of
//! the ring file. The kernel drops the lock when the owner's file is closed,
//! which includes the owner dying by any means, so "is the lock held?" is an
//! exact liveness test: unlike `kill(pid, 0)` it is not fooled by a reused pid
//! or by a pid from another pid namespace.
//!
//! The lock also serialises the owner and a sweeper: a process that wants to
//! clean a dead owner's record takes the lock itself first, so it can never
//! clean a record a new owner has just claimed.
//!
//! Locks belong to an open file description: two records held through the
//! same description are both "ours", so a sweeper must skip the records it
//! owns itself (taking such a lock again would succeed, and unlocking it
//! would drop the owner's lock).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

fn flock_at(kind: libc::c_short, offset: usize) -> libc::flock {
    // SAFETY: flock is a plain C struct for which all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = offset as libc::off_t;
    fl.l_len = 1;
    fl
}

fn fcntl_lock(file: &File, cmd: libc::c_int, fl: &mut libc::flock) -> io::Result<()> {
    loop {
        // SAFETY: `fl` is a valid flock the kernel reads (and, for GETLK,
        // writes); `file` is an open descriptor we own.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, fl as *mut libc::flock) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Takes the lock on the byte at `offset` without waiting; `false` when
/// another open file description holds it.
pub(crate) fn try_lock(file: &File, offset: usize) -> io::Result<bool> {
    let mut fl = flock_at(libc::F_WRLCK as libc::c_short, offset);
    match fcntl_lock(file, libc::F_OFD_SETLK, &mut fl) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases the lock on the byte at `offset`.
pub(crate) fn unlock(file: &File, offset: usize) {
    let mut fl = flock_at(libc::F_UNLCK as libc::c_short, offset);
    // Unlocking cannot fail on a valid descriptor; if it did, closing the
    // file releases the lock anyway.
    let _ = fcntl_lock(file, libc::F_OFD_SETLK, &mut fl);
}

/// Whether some other open file description holds the lock at `offset`.
/// An error (which would mean the descriptor is unusable) answers "held", so
/// that nothing is ever evicted or declared lost on a failed check.
pub(crate) fn held_by_other(file: &File, offset: usize) -> bool {
    let mut fl = flock_at(libc::F_WRLCK as libc::c_short, offset);
    match fcntl_lock(file, libc::F_OFD_GETLK, &mut fl) {
        Ok(()) => fl.l_type != libc::F_UNLCK as libc::c_short,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_seen_by_other_descriptions_and_released_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [0u8; 256]).unwrap();
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap()
        };
        let (a, b) = (open(), open());
        assert!(try_lock(&a, 64).unwrap());
        assert!(held_by_other(&b, 64));
        assert!(!held_by_other(&a, 64), "own locks do not conflict");
        assert!(!held_by_other(&b, 128), "other bytes are free");
        assert!(!try_lock(&b, 64).unwrap());
        drop(a);
        assert!(!held_by_other(&b, 64), "closing releases the lock");
        assert!(try_lock(&b, 64).unwrap());
        unlock(&b, 64);
        let c = open();
        assert!(!held_by_other(&c, 64));
    }
}
