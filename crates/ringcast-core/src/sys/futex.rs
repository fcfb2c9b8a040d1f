//! Linux futexes: sleep until a 32-bit word changes, across processes.
//!
//! Parked subscribers sleep on a word in the ring header (a shared mapping,
//! so the shared futex variant); the publisher bumps the word and wakes them.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, at most `timeout` (`None`: no limit).
/// Returns early on a wake, a signal, or when the word already differs;
/// callers re-check their condition in every case.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>, shared: bool) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    let op = if shared {
        libc::FUTEX_WAIT
    } else {
        libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG
    };
    // SAFETY: `word` is a live, 4-byte aligned atomic for the duration of the
    // call; the kernel only reads it. The timeout (relative) outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            expected,
            ts_ptr,
            0usize,
            0u32,
        )
    };
    // Any result (woken, EAGAIN: the word changed, EINTR, ETIMEDOUT) means
    // "look again": callers re-check their condition.
    let _ = rc;
}

/// Wakes every thread sleeping on `word` (in any process for `shared`);
/// returns how many were woken.
pub(crate) fn wake_all(word: &AtomicU32, shared: bool) -> usize {
    let op = if shared {
        libc::FUTEX_WAKE
    } else {
        libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG
    };
    // SAFETY: as in `wait`; FUTEX_WAKE does not touch the word.
    let woken = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            i32::MAX,
            0usize,
            0usize,
            0u32,
        )
    };
    woken.max(0) as usize
}
