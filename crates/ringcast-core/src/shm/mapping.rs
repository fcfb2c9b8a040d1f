//! A shared, read-write memory mapping of a ring file, registered with
//! [`crate::shm::guard`] for as long as it exists.

use crate::shm::guard::{Guard, Revoked};
use crate::sys::vm::{self, Region};
use std::fs::File;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

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
        let ptr = vm::map_shared(file, len)?;
        let guard = match Guard::register(ptr.as_ptr(), len) {
            Ok(guard) => guard,
            Err(e) => {
                // SAFETY: the mapping just made, referenced by nobody.
                unsafe { vm::unmap(ptr, len) };
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

    /// The mapping, for the virtual-memory calls of [`crate::sys::vm`].
    pub(crate) fn region(&self) -> Region<'_> {
        // SAFETY: `ptr`/`len` are this live mapping, unmapped only when
        // `self` drops, which the region's borrow of `self` prevents.
        unsafe { Region::new(self.ptr, self.len) }
    }

    /// The word at byte `offset` (8-byte aligned, inside the mapping).
    pub(crate) fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset % 8 == 0 && offset + 8 <= self.len,
            "word {offset} outside the mapping"
        );
        // SAFETY: in bounds and aligned (checked; the mapping is page
        // aligned); every access the crate makes to ring memory is atomic,
        // so this reference cannot race with a non-atomic one.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<AtomicU64>() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        self.guard.release();
        // SAFETY: `ptr`/`len` are exactly what mmap returned; references into
        // the mapping never outlive `self` (they borrow from it).
        unsafe { vm::unmap(self.ptr, self.len) };
    }
}
