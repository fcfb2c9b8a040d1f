//! Virtual memory: shared file mappings and what the kernel does with their
//! pages (locking, populating, NUMA binding, where pages are).
//!
//! Every call here takes a [`Region`]: a range the caller promises is one
//! live mapping of this process for the region's lifetime, so the calls
//! themselves are safe. None of them changes a byte of the mapping.

use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

/// `madvise` advice: fault every page in writable (Linux 5.14).
const MADV_POPULATE_WRITE: libc::c_int = 23;
/// `mbind` mode: allocate only on the given nodes.
const MPOL_BIND: libc::c_ulong = 2;
/// `mbind` flags: fail if existing pages are elsewhere and cannot be moved;
/// move them if they can.
const MPOL_MF_STRICT: libc::c_uint = 1;
const MPOL_MF_MOVE: libc::c_uint = 2;
/// Node mask words passed to `mbind` (up to 1024 nodes).
const NODE_MASK_WORDS: usize = 16;

/// A live mapping of this process, borrowed for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct Region<'a> {
    ptr: NonNull<u8>,
    len: usize,
    live: PhantomData<&'a ()>,
}

impl Region<'_> {
    /// # Safety
    /// `ptr .. ptr + len` must be one mapping of this process that stays
    /// mapped for the region's lifetime.
    pub(crate) unsafe fn new(ptr: NonNull<u8>, len: usize) -> Self {
        Self {
            ptr,
            len,
            live: PhantomData,
        }
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// Maps the first `len` (> 0) bytes of `file` shared and read-write.
pub(crate) fn map_shared(file: &File, len: usize) -> io::Result<NonNull<u8>> {
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
    Ok(NonNull::new(ptr.cast::<u8>()).expect("mmap returned null"))
}

/// Unmaps a mapping made by [`map_shared`].
///
/// # Safety
/// `ptr`/`len` are exactly what one `map_shared` call returned and was
/// given, and nothing refers into the mapping any more.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: per this function's contract.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}

/// Replaces the pages of `start .. start + len` with fresh private zero
/// pages, in one `mmap` with `MAP_FIXED` (atomic: no moment where the range
/// is unmapped). `false`: the kernel refused, and the range is as it was.
///
/// Async-signal-safe: one system call, no allocation, no lock.
///
/// # Safety
/// `start .. start + len` is (a page-aligned part of) a mapping of this
/// process, and every access anyone makes to it copes with its bytes
/// turning to zeros at any moment (atomics, not references to plain data
/// that is assumed not to change). The range stays mapped, so references
/// into it stay valid.
pub(crate) unsafe fn replace_with_zero_pages(start: *mut u8, len: usize) -> bool {
    // SAFETY: per this function's contract: the range is ours to replace,
    // and MAP_FIXED replaces it atomically with fresh anonymous pages.
    let fresh = unsafe {
        libc::mmap(
            start.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    fresh == start.cast()
}

/// The size of a normal page (`None`: the system cannot tell).
pub(crate) fn page_size() -> Option<u64> {
    // SAFETY: sysconf has no memory effects.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (size > 0).then_some(size as u64)
}

/// The RLIMIT_MEMLOCK limits (soft, hard) in bytes; `None`: unlimited.
pub fn memlock_limits() -> (Option<u64>, Option<u64>) {
    // SAFETY: an all-zero rlimit is valid; getrlimit only writes it.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: plain syscall writing `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return (None, None);
    }
    let bytes = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    (bytes(lim.rlim_cur), bytes(lim.rlim_max))
}

/// Locks the region in RAM (and faults it in).
pub(crate) fn lock(region: Region<'_>) -> io::Result<()> {
    // SAFETY: a live mapping (Region's contract); mlock does not change its
    // contents.
    if unsafe { libc::mlock(region.as_ptr().cast(), region.len()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Faults every page of the region in, writable, without changing a byte.
/// `Ok(false)`: the kernel is older than 5.14 and cannot (the caller faults
/// the pages itself).
pub(crate) fn populate_writable(region: Region<'_>) -> io::Result<bool> {
    // SAFETY: a live mapping (Region's contract); populating page tables
    // does not change its contents.
    let rc = unsafe { libc::madvise(region.as_ptr().cast(), region.len(), MADV_POPULATE_WRITE) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL) => Ok(false),
        _ => Err(err),
    }
}

/// Binds the region's pages (those not yet allocated, and those that can be
/// moved) to NUMA node `node`. `Ok(false)`: the kernel has no NUMA support,
/// so there is nothing to place (the caller checked `node` is online).
pub(crate) fn bind_to_node(region: Region<'_>, node: usize) -> io::Result<bool> {
    let mut mask = [0 as libc::c_ulong; NODE_MASK_WORDS];
    let bits = libc::c_ulong::BITS as usize;
    if node >= NODE_MASK_WORDS * bits {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    mask[node / bits] |= 1 << (node % bits);
    // SAFETY: a live mapping (Region's contract); mbind changes only the
    // allocation policy of its pages, never their contents. `mask` outlives
    // the call and holds NODE_MASK_WORDS * bits bits (maxnode counts one more,
    // as the kernel expects).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mbind,
            region.as_ptr(),
            region.len(),
            MPOL_BIND,
            mask.as_ptr(),
            (NODE_MASK_WORDS * bits + 1) as libc::c_ulong,
            MPOL_MF_STRICT | MPOL_MF_MOVE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOSYS) => Ok(false),
        _ => Err(err),
    }
}

/// The NUMA node of the page at each of `offsets` into the region (`None`:
/// not resident in this process's page tables), or `None` when the kernel
/// has no NUMA support. Asks `move_pages` without moving anything.
pub(crate) fn page_nodes(region: Region<'_>, offsets: &[usize]) -> Option<Vec<Option<usize>>> {
    let addrs: Vec<*mut libc::c_void> = offsets
        .iter()
        .filter(|&&o| o < region.len())
        // SAFETY: o < len: an address inside the mapping (not dereferenced).
        .map(|&o| unsafe { region.as_ptr().add(o) }.cast())
        .collect();
    let mut status = vec![0 as libc::c_int; addrs.len()];
    // SAFETY: `addrs` and `status` have the same length, which is passed as
    // the count; a null `nodes` makes move_pages report without moving.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            0,
            addrs.len() as libc::c_ulong,
            addrs.as_ptr(),
            std::ptr::null::<libc::c_int>(),
            status.as_mut_ptr(),
            0,
        )
    };
    (rc == 0).then(|| {
        status
            .into_iter()
            .map(|s| usize::try_from(s).ok())
            .collect()
    })
}
