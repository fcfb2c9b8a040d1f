//! Files: opening a name without trusting what it is, reading a link through
//! its handle, asking which filesystem a file is on, reserving a file's
//! blocks, and the whole-file lock.
//!
//! What a ring file may be, whose it may be and what to say when it is not
//! is decided by the callers; this module only makes the calls.

use std::ffi::{CString, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `statfs.f_type` of hugetlbfs.
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
/// `statfs.f_type` of tmpfs.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Opens `path` itself as an `O_PATH` handle, without following a final
/// symbolic link: whatever the name is (a FIFO, a device, a link, another
/// user's file), it can be inspected but is never opened for reading or
/// writing.
pub(crate) fn open_handle(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Whether `err` is `ELOOP`: too many symbolic links on the way to a name.
pub(crate) fn is_link_loop(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ELOOP)
}

/// Opens for reading and writing the very file that `handle` (an
/// [`open_handle`] handle) refers to, whatever its name leads to meanwhile,
/// through `/proc/self/fd`. `NotFound` when /proc is not mounted.
pub(crate) fn reopen_read_write(handle: &File) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", handle.as_raw_fd()))
}

/// Opens `path` for reading and writing without following a final symbolic
/// link, without blocking (a FIFO) and without becoming the process's
/// controlling terminal (a terminal device).
pub(crate) fn open_read_write_no_follow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
}

/// Creates the file `path`, which must not exist yet, for reading and
/// writing, with permission bits `mode` (less the umask).
pub(crate) fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// The target of the symbolic link that `link` (an [`open_handle`] handle of
/// it) is: the link opened, not whatever its path names by now.
pub(crate) fn read_link_at(link: &File) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `link` is an open descriptor; with an empty path, readlinkat
    // reads the link that descriptor is. It writes at most `buf.len()` bytes
    // into `buf`, which is live and writable for the call.
    let n = unsafe {
        libc::readlinkat(
            link.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(OsString::from_vec(buf)))
}

/// Which filesystem a file is on, as far as its pages are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FsKind {
    /// hugetlbfs: huge pages of `page_size` bytes (its block size).
    Hugetlbfs { page_size: u64 },
    /// tmpfs (/dev/shm).
    Tmpfs,
    /// Anything else.
    Other,
}

fn kind_of(st: &libc::statfs) -> FsKind {
    // f_type's integer type differs between targets.
    #[allow(clippy::unnecessary_cast)]
    match st.f_type as i64 {
        HUGETLBFS_MAGIC => FsKind::Hugetlbfs {
            page_size: st.f_bsize as u64,
        },
        TMPFS_MAGIC => FsKind::Tmpfs,
        _ => FsKind::Other,
    }
}

/// The filesystem the open file `file` is on (`None`: it cannot be told).
pub(crate) fn fs_kind(file: &File) -> Option<FsKind> {
    // SAFETY: statfs is a plain C struct for which all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `file` is an open descriptor; fstatfs writes only into `st`,
    // which is live and writable for the call.
    let ok = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } == 0;
    ok.then(|| kind_of(&st))
}

/// The filesystem that files created in `dir` go on (`None`: it cannot be
/// inspected).
pub(crate) fn fs_kind_at(dir: &Path) -> Option<FsKind> {
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: as in `fs_kind`.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path that outlives the call; statfs
    // writes only into `st`, which is live and writable for the call.
    let ok = unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0;
    ok.then(|| kind_of(&st))
}

/// Allocates the first `len` bytes of `file` (`fallocate`, no flags), so that
/// a full filesystem (or an empty huge page pool) is an error now rather than
/// a SIGBUS on first touch. `Ok(false)`: the filesystem cannot allocate ahead
/// (nothing was done). Not `posix_fallocate`: its fallback writes bytes, which
/// hugetlbfs refuses.
pub(crate) fn allocate(file: &File, len: u64) -> io::Result<bool> {
    // SAFETY: fallocate on an open descriptor touches no memory of ours.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(false),
        _ => Err(err),
    }
}

/// Takes the exclusive `flock` of `file` without waiting; `false` when
/// another open file description holds it. Retries when a signal
/// interrupts the call.
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: flock on an open descriptor touches no memory of ours.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_handle_is_the_link_and_reads_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        let link = dir.path().join("link");
        std::fs::write(&file, b"x").unwrap();
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let handle = open_handle(&link).unwrap();
        assert!(handle.metadata().unwrap().file_type().is_symlink());
        assert_eq!(read_link_at(&handle).unwrap(), file);
        let err = open_read_write_no_follow(&link).unwrap_err();
        assert!(is_link_loop(&err), "{err}");
    }

    #[test]
    fn a_reopened_handle_is_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let made = create_new(&path, 0o600).unwrap();
        assert!(create_new(&path, 0o600).is_err());
        let handle = open_handle(&path).unwrap();
        let again = reopen_read_write(&handle).unwrap();
        let (a, b) = (made.metadata().unwrap(), again.metadata().unwrap());
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
        if allocate(&again, 4096).unwrap() {
            assert_eq!(again.metadata().unwrap().len(), 4096);
        }
        assert!(fs_kind(&again).is_some());
        assert_eq!(fs_kind(&again), fs_kind_at(dir.path()));
    }

    #[test]
    fn the_file_lock_excludes_other_descriptions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let a = create_new(&path, 0o600).unwrap();
        let b = File::open(&path).unwrap();
        assert!(try_lock_exclusive(&a).unwrap());
        assert!(!try_lock_exclusive(&b).unwrap());
        drop(a);
        assert!(try_lock_exclusive(&b).unwrap());
    }
}
