//! The last producer of a multi-producer ring closing it, seen from a
//! subscriber in another process (fork + SIGSTOP): kept in its own test
//! binary with a single test, because forking a process whose other test
//! threads may hold locks (the allocator's) is not safe.
#![cfg(not(loom))]

use ringcast_core::wait::{WaitStrategy, Waiter};
use ringcast_core::{CreateOptions, Producers, Publisher, RecvError, Start, Subscriber};
use std::time::{Duration, Instant};

/// A forked child that is killed and reaped if the test fails before it
/// exits (stopped, it would keep the test's output open for ever).
struct Child(Option<libc::pid_t>);

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let mut status = 0;
            // SAFETY: kills and reaps our own child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
        }
    }
}

/// Invariant: once subscribers see no producer holding the ring, a stream
/// closed cleanly is already closed. The last producer out stops counting
/// as a producer, closes, and only then gives up its record lock; while it
/// is stopped in between, a subscriber that has read everything waits (it
/// used to fail with `PublisherDied`: the producer had unlocked its record
/// before storing CLOSED), and once it goes on the stream ends.
#[test]
fn the_last_producer_out_closes_before_it_looks_dead() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = CreateOptions {
        dir: Some(d.to_owned()),
        producers: Producers::Many { max: 4 },
        ..CreateOptions::new(8, 16)
    };
    let mut creator = Publisher::create("mp", &o).unwrap();
    creator.publish(&[7u8; 16]).unwrap();
    let mut sub = Subscriber::attach("mp", Some(d), Start::Oldest).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(sub.try_recv(&mut buf).unwrap(), Some(16));
    // SAFETY: the child only uses the ring and exits with _exit; the parent
    // has no other threads (this binary holds one test).
    let child = unsafe { libc::fork() };
    if child == 0 {
        let mut p = Publisher::attach("mp", Some(d), WaitStrategy::BusySpin).unwrap();
        p.stop_while_leaving().unwrap();
        // SAFETY: stops until the parent continues it; the parent waits
        // for this stop, by which time we are a producer.
        unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
        // Stops again inside, before closing.
        drop(p);
        // SAFETY: ends the forked child at once, without running the exit
        // handlers and destructors of state it shares with the parent.
        unsafe { libc::_exit(0) };
    }
    let mut guard = Child(Some(child));
    let mut status = 0;
    let stopped = |status: &mut i32| {
        // SAFETY: waits for our own child to stop.
        unsafe { libc::waitpid(child, status, libc::WUNTRACED) };
        assert!(libc::WIFSTOPPED(*status));
    };
    stopped(&mut status); // joined
                          // The child is now the last producer.
    drop(creator);
    // SAFETY: continues our own child.
    unsafe { libc::kill(child, libc::SIGCONT) };
    // Inside its close, not counted by producers.
    stopped(&mut status);
    // Longer than the wait's first look for a dead publisher (1 ms).
    let deadline = Some(Instant::now() + Duration::from_millis(100));
    let waited = sub.wait_readable(deadline, &mut Waiter::new(WaitStrategy::Yield));
    assert!(
        matches!(waited, Err(RecvError::Timeout)),
        "the producer closing the ring was taken for dead: {waited:?}"
    );
    assert!(sub.check_publisher().is_ok());
    assert!(!sub.ended());
    // SAFETY: continues and reaps our own child.
    unsafe {
        libc::kill(child, libc::SIGCONT);
        libc::waitpid(child, &mut status, 0);
    }
    guard.0 = None;
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let waited = sub.wait_readable(None, &mut Waiter::new(WaitStrategy::Yield));
    assert!(
        matches!(waited, Err(RecvError::Closed { .. })),
        "{waited:?}"
    );
    assert!(sub.ended());
}
