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

/// One word of a `futex_waitv` call, as the kernel lays it out (`struct
/// futex_waitv` of `<linux/futex.h>`; the reserved word must be 0).
#[repr(C)]
struct FutexWaitv {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

/// [`wait`] on several words at once: sleeps while every `*word ==
/// expected`, at most `timeout` (no words: sleeps `timeout`, or `fallback`
/// without one). One word is a plain [`wait`]; several use
/// `futex_waitv` (Linux 5.16), whose timeout is absolute. Where the kernel
/// lacks it, or for more words than it takes at once, this sleeps at most
/// `fallback` instead: callers re-check their condition in every case.
pub(crate) fn wait_any(
    words: &[(&AtomicU32, u32)],
    timeout: Option<Duration>,
    shared: bool,
    fallback: Duration,
) {
    match words {
        [] => return std::thread::sleep(timeout.unwrap_or(fallback)),
        [(word, expected)] => return wait(word, *expected, timeout, shared),
        _ => {}
    }
    let private = if shared {
        0
    } else {
        libc::FUTEX_PRIVATE_FLAG as u32
    };
    let waiters: Vec<FutexWaitv> = words
        .iter()
        .map(|(word, expected)| FutexWaitv {
            val: u64::from(*expected),
            uaddr: word.as_ptr() as u64,
            flags: libc::FUTEX2_SIZE_U32 as u32 | private,
            reserved: 0,
        })
        .collect();
    let until = timeout.map(|t| {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: writes the current time into a live timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let nanos = now.tv_nsec as u64 + u64::from(t.subsec_nanos());
        libc::timespec {
            tv_sec: (now.tv_sec as u64)
                .saturating_add(t.as_secs())
                .saturating_add(nanos / 1_000_000_000)
                .min(i64::MAX as u64) as libc::time_t,
            tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
        }
    });
    let until_ptr = until
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    let waited = waiters.len() <= libc::FUTEX_WAITV_MAX as usize && {
        // SAFETY: `waiters` describes live, 4-byte aligned atomics that
        // outlive the call (the kernel only reads them); the absolute
        // timeout, on the clock named, outlives the call too.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_futex_waitv,
                waiters.as_ptr(),
                waiters.len() as u32,
                0u32,
                until_ptr,
                libc::CLOCK_MONOTONIC,
            )
        };
        rc != -1 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
    };
    if !waited {
        std::thread::sleep(timeout.map_or(fallback, |t| t.min(fallback)));
    }
    // Any other result (woken, EAGAIN, EINTR, ETIMEDOUT) means "look again".
}
