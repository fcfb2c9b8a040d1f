//! A shared, read-write memory mapping of a ring file, registered with
//! [`crate::guard`] for as long as it exists.

use crate::guard::{Guard, Revoked};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

/// `len` bytes of a file mapped `MAP_SHARED`, unmapped on drop.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    guard: Guard,
}

// SAFETY: the mapping is plain shared memory; every access the crate makes to
// it goes through atomics (see `ring`), so sharing the pointer between threads
// is no different from sharing it between processes.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `file` shared and read-write.
    pub(crate) fn map(file: &File, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: a fresh mapping chosen by the kernel; no existing memory is
        // touched. The result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).expect("mmap returned null");
        let guard = match Guard::register(ptr.as_ptr(), len) {
            Ok(guard) => guard,
            Err(e) => {
                // SAFETY: the mapping just made, referenced by nobody.
                unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
                return Err(e);
            }
        };
        Ok(Self { ptr, len, guard })
    }

    /// Whether (and why) the mapping was revoked: its file shrank under it,
    /// or this process is a fork() child of the one that mapped it.
    #[inline]
    pub(crate) fn revoked(&self) -> Option<Revoked> {
        self.guard.revoked()
    }

    /// Start of the mapping (page aligned).
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        self.guard.release();
        // SAFETY: `ptr`/`len` are exactly what mmap returned; references into
        // the mapping never outlive `self` (they borrow from it).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
