//! Asymmetric store-load barrier between the publisher and parking readers.
//!
//! Parking needs a Dekker-style handshake: a reader raises the waiter count
//! and then checks the slot; the publisher writes the slot and then checks the
//! waiter count. Each side needs a store-load barrier between its store and
//! its load, or both can miss each other and the reader sleeps through a
//! message. A full fence on every publish would double the publisher's cost,
//! so the barrier is made asymmetric with `membarrier(2)`: the publisher
//! process registers once for `MEMBARRIER_CMD_GLOBAL_EXPEDITED` and then
//! needs only a compiler fence; a reader about to park issues the expedited
//! global membarrier, which makes every running thread of every registered
//! process execute a full barrier before it returns. Parking is the rare, slow
//! path; publishing is the hot one.
//!
//! Where the kernel (or a seccomp filter) refuses membarrier, the publisher
//! falls back to a full fence per publish and readers to a full fence.

use std::sync::atomic::{compiler_fence, fence, Ordering};
use std::sync::OnceLock;

const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

fn membarrier(cmd: libc::c_int) -> bool {
    // SAFETY: membarrier takes no pointers; an unsupported command fails
    // with an error code, which is all we look at.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0u32, 0i32) == 0 }
}

/// Whether this process is registered for expedited global membarriers
/// (attempted once per process, on the first call).
pub(crate) fn publisher_registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
}

/// Publisher side: between storing a message and loading the waiter count.
#[inline]
pub(crate) fn publisher_side(registered: bool) {
    if registered {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// Reader side: between raising the waiter count and checking the slot.
/// Returns `false` when the membarrier was refused: a registered publisher
/// (which relies on it) might then miss this reader, so the caller must only
/// sleep briefly and look again.
pub(crate) fn reader_side() -> bool {
    fence(Ordering::SeqCst);
    membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)
}
