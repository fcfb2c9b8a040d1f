//! SIGBUS: a process-wide handler that offers every bus error to one fault
//! handler first and chains the rest to whatever handler was there before
//! (or to the default action, which terminates the process).
//!
//! Everything that runs in signal context here is async-signal-safe: atomic
//! loads, a `sigaction` call, and calls of the handlers.

use std::io;
use std::sync::OnceLock;

/// A fault handler: gets the faulting address, returns `true` when it dealt
/// with the fault (returning from the signal then runs the faulting access
/// again), `false` to pass the signal on.
pub(crate) type FaultHandler = fn(addr: usize) -> bool;

/// The handler that sees every SIGBUS first.
static FAULT_HANDLER: OnceLock<FaultHandler> = OnceLock::new();

/// The SIGBUS action in place before ours, for faults that are not ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Makes `handler` the first to see every SIGBUS of this process, for the
/// rest of its life (on the alternate signal stack, if the thread has one);
/// what it does not deal with goes to the action that was in place before.
/// Fails (EBUSY) if a handler was installed already.
///
/// # Safety
/// `handler` runs in signal context, on any thread, interrupting any code:
/// it must be async-signal-safe (no allocation, no locks, only
/// async-signal-safe system calls).
pub(crate) unsafe fn catch_bus_errors(handler: FaultHandler) -> io::Result<()> {
    if FAULT_HANDLER.set(handler).is_err() {
        return Err(io::Error::from_raw_os_error(libc::EBUSY));
    }
    // SAFETY: sigaction is a plain C struct for which all-zero is a valid
    // value; with a null new action, sigaction only writes the current one
    // into `previous`.
    unsafe {
        let mut previous: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
            return Err(io::Error::last_os_error());
        }
        let _ = PREVIOUS.set(previous);
    }
    // SAFETY: `ours` is a valid, fully initialised action; `on_sigbus` has
    // the SA_SIGINFO signature and is async-signal-safe (it calls the fault
    // handler, which the caller promises is, and `chain`).
    unsafe {
        let mut ours: libc::sigaction = std::mem::zeroed();
        ours.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut ours.sa_mask);
        if libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The SIGBUS handler: offers the fault to the fault handler, else hands
/// the signal to the previous handler.
extern "C" fn on_sigbus(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(handler) = FAULT_HANDLER.get() {
        if handler(addr) {
            return; // the access runs again
        }
    }
    chain(signal, info, context);
}

/// Passes a SIGBUS that is not ours to the handler that was there before.
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(previous) = PREVIOUS.get() else {
        return;
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Back to the default action; returning re-raises the fault, which
        // now terminates the process as it would have without us.
        // SAFETY: a plain sigaction call with a valid, zeroed struct.
        unsafe {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
        }
        return;
    }
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous action was installed with SA_SIGINFO, so its
        // handler has this signature.
        let f = unsafe {
            std::mem::transmute::<
                libc::sighandler_t,
                extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void),
            >(handler)
        };
        f(signal, info, context);
    } else {
        // SAFETY: as above, for a plain one-argument handler.
        let f = unsafe {
            std::mem::transmute::<libc::sighandler_t, extern "C" fn(libc::c_int)>(handler)
        };
        f(signal);
    }
}
