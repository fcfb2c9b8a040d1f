//! An eventfd: a descriptor an event loop can watch, readable while its
//! counter is non-zero.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking, close-on-exec eventfd, closed on drop.
#[derive(Debug)]
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    /// A new eventfd with its counter at zero (not readable).
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Makes the descriptor readable (adds one to the counter). A counter
    /// that is full already means "readable", so failures are ignored.
    pub(crate) fn signal(&self) {
        let one = 1u64;
        // SAFETY: writes the 8 bytes of a live u64 to our own eventfd.
        unsafe {
            libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8);
        }
    }

    /// Consumes a pending signal, if any (the counter goes back to zero).
    pub(crate) fn clear(&self) {
        let mut buf = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from our own non-blocking
        // eventfd; EAGAIN (nothing pending) is the expected failure.
        unsafe {
            libc::read(self.0.as_raw_fd(), (&mut buf as *mut u64).cast(), 8);
        }
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(efd: &EventFd) -> bool {
        let mut poll = libc::pollfd {
            fd: efd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd, count 1, no waiting.
        let n = unsafe { libc::poll(&mut poll, 1, 0) };
        n == 1 && poll.revents & libc::POLLIN != 0
    }

    #[test]
    fn signal_makes_it_readable_until_cleared() {
        let efd = EventFd::new().unwrap();
        assert!(!readable(&efd));
        efd.signal();
        efd.signal();
        assert!(readable(&efd));
        efd.clear();
        assert!(!readable(&efd));
        efd.clear(); // nothing pending: no block, no panic
    }
}
