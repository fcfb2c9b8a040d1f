//! Durable stages on a bounded ring, with real dead processes (fork +
//! SIGKILL): a dead durable stage keeps its place, so the publisher
//! overwrites nothing it had not processed, its successor takes the record
//! back and misses nothing; nobody coming back, it is evicted after the
//! liveness timeout. One test per binary: forking is safe only while the
//! process has a single thread.
#![cfg(not(loom))]

use ringcast_core::{Patience, PublishError, Publisher, Start, Subscriber};
use std::path::Path;
use std::time::{Duration, Instant};

const CAPACITY: u64 = 16;

fn msg(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

/// Forks a subscriber that attaches as stage `stage` (durable or not), reads
/// `read` messages, and dies by SIGKILL; returns once it is dead.
fn reader_that_dies(dir: &Path, ring: &str, stage: &str, durable: bool, read: u64) {
    gated_reader_that_dies(dir, ring, stage, durable, read, &[]);
}

/// [`reader_that_dies`] gated after the stages `after`: it then also tries
/// one read more, which its gate holds back, before dying.
fn gated_reader_that_dies(
    dir: &Path,
    ring: &str,
    stage: &str,
    durable: bool,
    read: u64,
    after: &[&str],
) {
    // SAFETY: the child uses only the ring and dies by SIGKILL; the parent
    // has no other threads (this binary holds one test).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut sub = Subscriber::builder(ring)
            .dir(dir)
            .start(Start::Oldest)
            .stage(stage)
            .durable(durable)
            .after(after.iter().copied())
            .attach()
            .unwrap();
        let mut buf = [0u8; 8];
        for _ in 0..read {
            assert_eq!(sub.try_recv(&mut buf).unwrap(), Some(8));
        }
        if !after.is_empty() {
            assert_eq!(
                sub.try_recv(&mut buf).unwrap(),
                None,
                "the gate let it read"
            );
        }
        // SAFETY: raises SIGKILL on ourselves: the process ends here, with no
        // destructor run (as in a crash).
        unsafe { libc::raise(libc::SIGKILL) };
        unreachable!();
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFSIGNALED(status),
        "the reader did not die by SIGKILL"
    );
}

/// Durable stage "rec" of ring `ring`, attached in this process.
fn durable_stage(dir: &Path, ring: &str, start: Start) -> Subscriber {
    Subscriber::builder(ring)
        .dir(dir)
        .stage("rec")
        .durable(true)
        .start(start)
        .attach()
        .unwrap()
}

/// A bounded ring of 16 slots whose publisher evicts a subscriber that has
/// not moved for `liveness`.
fn ring(dir: &Path, name: &str, liveness: Duration) -> Publisher {
    Publisher::builder(name)
        .dir(dir)
        .capacity(CAPACITY)
        .slot_size(8)
        .bounded(CAPACITY)
        .liveness_timeout(liveness)
        .create()
        .unwrap()
}

/// Publishes message `*next` waiting up to `within`; whether it went.
fn publish_within(p: &mut Publisher, next: &mut u64, within: Duration) -> bool {
    match p.publish_with(&msg(*next), Patience::until(Some(Instant::now() + within))) {
        Ok(_) => {
            *next += 1;
            true
        }
        Err(PublishError::Timeout { .. }) => false,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_dead_durable_stage_keeps_its_place_and_its_successor_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // No eviction of stalled subscribers within the test: only the release
    // of dead ones lets the publisher past a subscriber.
    let mut p = ring(dir.path(), "ring", Duration::from_secs(600));
    let mut next = 0;
    while next < 10 {
        assert!(publish_within(&mut p, &mut next, Duration::ZERO));
    }

    // A plain stage that dies is released at once: the ring goes on.
    reader_that_dies(dir.path(), "ring", "plain", false, 5);
    for _ in 0..2 * CAPACITY {
        assert!(
            publish_within(&mut p, &mut next, Duration::from_secs(10)),
            "a dead plain stage held the ring"
        );
    }

    // A durable stage reads 5 messages and dies: 4 were processed (the
    // fifth would count once it asked for the next).
    let oldest = next - CAPACITY;
    reader_that_dies(dir.path(), "ring", "rec", true, 5);
    let processed = oldest + 4;
    while next < processed + CAPACITY {
        assert!(publish_within(&mut p, &mut next, Duration::ZERO));
    }
    assert!(
        !publish_within(&mut p, &mut next, Duration::from_millis(500)),
        "the publisher overwrote what a dead durable stage had not processed"
    );

    // Its successor takes the record back and misses nothing.
    let mut rec = durable_stage(dir.path(), "ring", Start::Resume);
    assert_eq!(rec.position(), processed);
    let mut buf = [0u8; 8];
    for seq in processed..next {
        assert_eq!(rec.try_recv(&mut buf).unwrap(), Some(8));
        assert_eq!(u64::from_le_bytes(buf), seq);
    }
    assert_eq!(rec.try_recv(&mut buf).unwrap(), None);
    assert_eq!(rec.lost(), 0);
    // Everything read is processed once it asks again: room for a lap.
    for _ in 0..CAPACITY {
        assert!(publish_within(&mut p, &mut next, Duration::ZERO));
    }
    drop(rec);

    // Nobody comes back for a dead durable stage: a blocked publisher
    // evicts it once it has not moved for the liveness timeout.
    let mut q = ring(dir.path(), "short", Duration::from_millis(300));
    let mut next = 0;
    reader_that_dies(dir.path(), "short", "rec", true, 0);
    while next < CAPACITY {
        assert!(publish_within(&mut q, &mut next, Duration::ZERO));
    }
    let start = Instant::now();
    assert!(publish_within(&mut q, &mut next, Duration::from_secs(10)));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "the dead durable stage was released at once ({waited:?})"
    );
    assert_eq!(q.evictions(), 1);

    // A dead durable stage held back by its gate (it waits for an upstream
    // stage, not for itself) never moves again either: evicted in time too,
    // never waited for forever.
    let mut g = ring(dir.path(), "gated", Duration::from_millis(300));
    let _up = Subscriber::builder("gated")
        .dir(dir.path())
        .stage("up")
        .start(Start::Oldest)
        .attach()
        .unwrap();
    let mut next = 0;
    gated_reader_that_dies(dir.path(), "gated", "rec", true, 0, &["up"]);
    while next < CAPACITY {
        assert!(publish_within(&mut g, &mut next, Duration::ZERO));
    }
    assert!(
        publish_within(&mut g, &mut next, Duration::from_secs(10)),
        "a dead durable stage held back by its gate blocks the ring"
    );
    assert_eq!(
        g.evictions(),
        2,
        "both the stalled upstream and the dead stage"
    );

    // Abandoned (a recorder that failed to write what it read): as if its
    // process had died, nothing read is committed and the place is kept for
    // a successor in the same process.
    let mut a = ring(dir.path(), "abandon", Duration::from_secs(600));
    let mut next = 0;
    let mut rec = durable_stage(dir.path(), "abandon", Start::Oldest);
    while next < 10 {
        assert!(publish_within(&mut a, &mut next, Duration::ZERO));
    }
    let mut buf = [0u8; 8];
    for _ in 0..6 {
        assert_eq!(rec.try_recv(&mut buf).unwrap(), Some(8));
    }
    rec.abandon(); // 5 processed, the sixth read only
    while next < 5 + CAPACITY {
        assert!(publish_within(&mut a, &mut next, Duration::ZERO));
    }
    assert!(!publish_within(
        &mut a,
        &mut next,
        Duration::from_millis(300)
    ));
    let successor = durable_stage(dir.path(), "abandon", Start::Resume);
    assert_eq!(successor.position(), 5);
}
