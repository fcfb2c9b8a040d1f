//! Stages and gating (the dependency barrier) through the public API, in one
//! process (threads); the cross-process versions live in the Python suite.
#![cfg(not(loom))]

use ringcast_core::wait::WaitStrategy;
use ringcast_core::{
    ArgumentError, CreateOptions, MemoryOptions, OpenError, Patience, PublishError, Publisher,
    RecvError, StageOptions, Start, Subscriber, Waiter,
};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn bounded(dir: &Path, capacity: u64, liveness: Duration) -> CreateOptions {
    CreateOptions {
        dir: Some(dir.to_owned()),
        bounded: Some(capacity),
        liveness_timeout: liveness,
        ..CreateOptions::new(capacity, 8)
    }
}

fn attach(
    dir: &Path,
    start: Start,
    stage: Option<&str>,
    after: &[&str],
) -> Result<Subscriber, OpenError> {
    Subscriber::attach_stage(
        "events",
        Some(dir),
        start,
        &MemoryOptions::default(),
        &StageOptions {
            name: stage.map(str::to_owned),
            after: after.iter().map(|s| s.to_string()).collect(),
            ..StageOptions::default()
        },
    )
}

/// Receives the next message as a u64, waiting (parked) up to 10 s.
fn next(sub: &mut Subscriber, waiter: &mut Waiter) -> Option<u64> {
    let mut buf = [0u8; 8];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if sub.try_recv(&mut buf).unwrap().is_some() {
            return Some(u64::from_le_bytes(buf));
        }
        match sub.wait_readable(Some(deadline), waiter) {
            Ok(()) => {}
            Err(RecvError::Closed { .. }) => return None,
            Err(e) => panic!("waiting: {e}"),
        }
    }
}

/// A diamond in threads: B and C mark each message handled before asking for
/// the next; D, gated after both, must find every message it reads handled by
/// both, and nothing may be lost on the bounded ring.
#[test]
fn gated_reader_never_overtakes_its_stages() {
    const N: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let mut publisher =
        Publisher::create("events", &bounded(dir.path(), 64, Duration::from_secs(30))).unwrap();
    let handled: Arc<Vec<[AtomicU64; 2]>> = Arc::new(
        (0..N)
            .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
            .collect(),
    );
    let stages: Vec<_> = ["b", "c"]
        .into_iter()
        .enumerate()
        .map(|(k, name)| {
            let mut sub = attach(dir.path(), Start::At(0), Some(name), &[]).unwrap();
            let handled = handled.clone();
            std::thread::spawn(move || {
                // Each stage has its own pace, so either can be the slower.
                let mut waiter = Waiter::new(WaitStrategy::default());
                let mut expected = 0;
                while let Some(seq) = next(&mut sub, &mut waiter) {
                    assert_eq!(seq, expected, "stage {name} lost or reordered");
                    if seq % (1000 + 700 * k as u64) == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    handled[seq as usize][k].store(1, Ordering::Relaxed);
                    expected += 1;
                }
                expected
            })
        })
        .collect();
    let mut d = attach(dir.path(), Start::At(0), None, &["b", "c"]).unwrap();
    let handled_d = handled.clone();
    let joiner = std::thread::spawn(move || {
        let mut waiter = Waiter::new(WaitStrategy::Park);
        let mut expected = 0;
        while let Some(seq) = next(&mut d, &mut waiter) {
            assert_eq!(seq, expected, "D lost or reordered");
            for (k, name) in ["b", "c"].iter().enumerate() {
                assert_eq!(
                    handled_d[seq as usize][k].load(Ordering::Relaxed),
                    1,
                    "D read {seq} before stage {name} processed it"
                );
            }
            expected += 1;
        }
        (expected, d.lost())
    });
    for seq in 0..N {
        publisher.publish(&seq.to_le_bytes()).unwrap();
    }
    publisher.close();
    for s in stages {
        assert_eq!(s.join().unwrap(), N);
    }
    assert_eq!(joiner.join().unwrap(), (N, 0));
}

/// A gated reader whose stage is absent waits for it: a bounded publisher
/// blocked on that reader does not evict it as stalled, and once the stage
/// attaches and processes, everything flows.
#[test]
fn reader_waiting_on_its_gate_is_not_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher =
        Publisher::create("events", &bounded(dir.path(), 4, Duration::from_millis(50))).unwrap();
    let mut d = attach(dir.path(), Start::At(0), None, &["b"]).unwrap();
    let mut buf = [0u8; 8];
    for seq in 0u64..4 {
        publisher.try_publish(&seq.to_le_bytes()).unwrap();
    }
    assert_eq!(
        d.try_recv(&mut buf).unwrap(),
        None,
        "gate open without its stage"
    );
    assert_eq!(d.upstream(), vec![("b".to_owned(), None)]);
    let deadline = Instant::now() + Duration::from_millis(300);
    let full = publisher.publish_with(&4u64.to_le_bytes(), Patience::until(Some(deadline)));
    assert!(
        matches!(full, Err(PublishError::Timeout { .. })),
        "{full:?}"
    );
    assert_eq!(
        publisher.evictions(),
        0,
        "a gated reader was evicted as stalled"
    );
    let mut b = attach(dir.path(), Start::At(0), Some("b"), &[]).unwrap();
    for seq in 0u64..4 {
        assert_eq!(b.try_recv(&mut buf).unwrap(), Some(8));
        assert_eq!(u64::from_le_bytes(buf), seq);
    }
    // Each receive commits what was read before it: 0..3 are processed.
    assert_eq!(b.processed(), 3);
    for seq in 0u64..3 {
        assert_eq!(d.try_recv(&mut buf).unwrap(), Some(8));
        assert_eq!(u64::from_le_bytes(buf), seq);
    }
    assert_eq!(
        d.try_recv(&mut buf).unwrap(),
        None,
        "b has not processed its last message"
    );
    b.commit();
    assert_eq!(b.processed(), 4);
    assert_eq!(d.try_recv(&mut buf).unwrap(), Some(8));
    assert_eq!(u64::from_le_bytes(buf), 3);
    assert_eq!(d.upstream(), vec![("b".to_owned(), Some(4))]);
}

/// Stage names are unique among live subscribers; a stage that left keeps
/// its progress in the ring, holding its dependants there, and a stage
/// restarted under the name resumes from it.
#[test]
fn departed_stage_holds_its_dependants_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher =
        Publisher::create("events", &bounded(dir.path(), 16, Duration::from_secs(30))).unwrap();
    let mut b = attach(dir.path(), Start::At(0), Some("b"), &[]).unwrap();
    let taken = attach(dir.path(), Start::At(0), Some("b"), &[]);
    assert!(
        matches!(&taken, Err(OpenError::StageExists { stage, .. }) if stage == "b"),
        "{:?}",
        taken.err()
    );
    let mut d = attach(dir.path(), Start::At(0), None, &["b"]).unwrap();
    for seq in 0u64..10 {
        publisher.try_publish(&seq.to_le_bytes()).unwrap();
    }
    let mut buf = [0u8; 8];
    for _ in 0..6 {
        b.try_recv(&mut buf).unwrap().unwrap();
    }
    drop(b); // closing commits what was read: 6
    let report = ringcast_core::info::inspect("events", Some(dir.path())).unwrap();
    assert_eq!(report.departed_stages, vec![("b".to_owned(), 6)]);
    let mut got = Vec::new();
    while d.try_recv(&mut buf).unwrap().is_some() {
        got.push(u64::from_le_bytes(buf));
    }
    assert_eq!(
        got,
        (0..6).collect::<Vec<_>>(),
        "D overtook the departed stage"
    );
    // A plain subscriber attaching meanwhile takes a record that remembers
    // no stage, so the progress survives.
    let _other = attach(dir.path(), Start::Latest, None, &[]).unwrap();
    let mut b2 = attach(dir.path(), Start::Resume, Some("b"), &[]).unwrap();
    assert_eq!((b2.position(), b2.processed()), (6, 6));
    b2.try_recv(&mut buf).unwrap().unwrap();
    assert_eq!(u64::from_le_bytes(buf), 6);
    let resume_anonymous = attach(dir.path(), Start::Resume, None, &[]);
    assert!(matches!(
        resume_anonymous,
        Err(OpenError::Argument(ArgumentError::ResumeWithoutStage))
    ));
    let durable_anonymous = Subscriber::builder("events")
        .dir(dir.path())
        .durable(true)
        .attach();
    match durable_anonymous {
        Err(e @ OpenError::Argument(ArgumentError::DurableWithoutStage)) => {
            assert!(
                e.to_string().contains("give the subscriber a stage name"),
                "{e}"
            )
        }
        other => panic!("{:?}", other.err()),
    }
}

/// A parked gated reader is woken by its stage's commit, not by a timeout.
#[test]
fn parked_gated_reader_wakes_on_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher =
        Publisher::create("events", &bounded(dir.path(), 16, Duration::from_secs(30))).unwrap();
    let mut b = attach(dir.path(), Start::At(0), Some("b"), &[]).unwrap();
    let mut d = attach(dir.path(), Start::At(0), None, &["b"]).unwrap();
    publisher.try_publish(&7u64.to_le_bytes()).unwrap();
    let waiter = std::thread::spawn(move || {
        let mut waiter = Waiter::new(WaitStrategy::Park);
        let t = Instant::now();
        let got = next(&mut d, &mut waiter);
        (got, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut buf = [0u8; 8];
    b.try_recv(&mut buf).unwrap().unwrap();
    b.commit();
    let (got, waited) = waiter.join().unwrap();
    assert_eq!(got, Some(7));
    // MAX_PARK (250 ms) is the safety-net timeout: a wake-up by the commit
    // comes well before it even on a busy machine... but not always, so the
    // bound is loose: waking must not take several park periods.
    assert!(waited < Duration::from_millis(600), "woke after {waited:?}");
}
