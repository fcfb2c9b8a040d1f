//! Multi-producer recovery with real dead processes (fork + SIGKILL): kept in
//! its own test binary with a single test, because forking a process whose
//! other test threads may hold locks (the allocator's) is not safe.
#![cfg(not(loom))]

use ringcast_core::wait::WaitStrategy;
use ringcast_core::{CreateOptions, Producers, Publisher, Start, Subscriber};
use std::path::Path;
use std::time::{Duration, Instant};

fn msg(i: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&i.to_le_bytes());
    b
}

/// Forks a producer that joins ring `name`, claims `seq` and stops itself
/// (SIGSTOP) inside the slot; returns its pid once it is stopped, or at
/// once when `wait_stopped` is false (it may be spinning to enter).
fn stopped_producer(dir: &Path, seq: u64, wait_stopped: bool) -> libc::pid_t {
    // SAFETY: the child only uses the ring and exits with _exit; the parent
    // has no other threads (this binary holds one test).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut p = Publisher::attach("mp", Some(dir), WaitStrategy::BusySpin).unwrap();
        p.stop_after_claim(seq).unwrap();
        p.publish(&msg(1000 + seq)).unwrap();
        // SAFETY: ends the forked child at once, without running the exit
        // handlers and destructors of state it shares with the parent.
        unsafe { libc::_exit(0) };
    }
    if wait_stopped {
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
        assert!(libc::WIFSTOPPED(status));
    }
    pid
}

/// A live producer stopped inside the slot of `s`, and the dead owner of
/// `s + capacity` (which never entered): the reader at `s + capacity` must
/// wait for the live one, never declare over it; once it commits, the dead
/// one's message (and only it) is declared lost.
#[test]
fn a_live_earlier_lap_writer_is_never_declared_over() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = CreateOptions {
        dir: Some(d.to_owned()),
        producers: Producers::Many { max: 4 },
        claim_timeout: Duration::from_millis(50),
        ..CreateOptions::new(4, 16)
    };
    let mut p0 = Publisher::create("mp", &o).unwrap();
    for i in 0..4 {
        p0.publish(&msg(i)).unwrap();
    }
    let live = stopped_producer(d, 4, true); // inside slot 0, writing 4
    for i in 5..8 {
        p0.publish(&msg(i)).unwrap();
    }
    let dead = stopped_producer(d, 8, false); // claims 8, waits for slot 0
    std::thread::sleep(Duration::from_millis(100));
    let mut status = 0;
    // SAFETY: signals and reaps our own child.
    unsafe {
        libc::kill(dead, libc::SIGKILL);
        libc::waitpid(dead, &mut status, 0);
    }
    let mut at8 = Subscriber::attach("mp", Some(d), Start::At(8)).unwrap();
    let mut buf = [0u8; 16];
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(400) {
        assert_eq!(at8.try_recv(&mut buf).unwrap(), None);
    }
    assert_eq!(at8.lost(), 0, "declared over a live producer");
    // SAFETY: continues and reaps our own child.
    unsafe {
        libc::kill(live, libc::SIGCONT);
        libc::waitpid(live, &mut status, 0);
    }
    let mut at4 = Subscriber::attach("mp", Some(d), Start::At(4)).unwrap();
    assert_eq!(at4.try_recv(&mut buf).unwrap(), Some(16));
    assert_eq!(u64::from_le_bytes(buf[..8].try_into().unwrap()), 1004);
    let t0 = Instant::now();
    while at8.lost() == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "dead producer's slot never declared"
        );
        assert_eq!(at8.try_recv(&mut buf).unwrap(), None);
    }
    assert_eq!((at8.lost(), at8.position()), (1, 9));
}
