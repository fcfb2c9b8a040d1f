//! Processes: whether a pid exists, who this process runs as, stopping it,
//! and what its fork() children run first.

use std::io;

/// Whether a process with this pid exists: `kill(pid, 0)` succeeds, or fails
/// with EPERM (it exists but is not ours to signal). Pid 0 and pids beyond
/// `pid_t` name no single process: `false`.
pub(crate) fn exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid == 0 {
        return false;
    }
    // SAFETY: signal 0 is never delivered: kill only checks that the process
    // exists and may be signalled. No memory is touched.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This process's effective uid.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Stops this process with SIGSTOP (which cannot be caught or ignored): it
/// stays stopped right here until continued (SIGCONT) or killed.
#[cfg(feature = "test-hooks")]
pub(crate) fn stop_self() {
    // SAFETY: getpid and kill touch no memory; the signal goes to this
    // process, which stops until continued.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGSTOP);
    }
}

/// Has every fork() child of this process run `handler` right after the
/// fork, before fork() returns in the child (`pthread_atfork`). Registered
/// for good: there is no way to remove it.
///
/// # Safety
/// `handler` must be async-signal-safe (no allocation, no locks, only
/// async-signal-safe system calls): the child of a multi-threaded process
/// has only the forking thread, and any lock another thread held at the
/// fork stays held forever in the child.
pub(crate) unsafe fn at_fork_child(handler: extern "C" fn()) -> io::Result<()> {
    // SAFETY: registers a function pointer, which lives for the whole
    // program; the caller promises it is fit to run in a fork child.
    let rc = unsafe { libc::pthread_atfork(None, None, Some(handler)) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_exists_and_pid_zero_does_not() {
        assert!(exists(std::process::id()));
        assert!(!exists(0));
        assert!(!exists(u32::MAX));
        assert!(exists(1), "init exists (EPERM counts as existing)");
    }
}
