//! `Publisher::publish_lost`: the single producer declares sequences lost,
//! and every subscriber counts them lost exactly.
#![cfg(not(loom))]

use ringcast_core::protocol::stamp::{self, MAX_SEQ};
use ringcast_core::protocol::{self, SlotRef, Slots};
use ringcast_core::wait::WaitStrategy;
use ringcast_core::{
    ArgumentError, CreateOptions, Patience, Producers, PublishError, Publisher, Start, Subscriber,
};
use std::collections::HashSet;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

fn opts(dir: &Path, capacity: u64) -> CreateOptions {
    CreateOptions {
        dir: Some(dir.to_owned()),
        ..CreateOptions::new(capacity, 8)
    }
}

fn bounded(dir: &Path, capacity: u64, watermark: u64) -> CreateOptions {
    CreateOptions {
        bounded: Some(watermark),
        wait: WaitStrategy::Park,
        // Subscribers that a test holds still are not evicted meanwhile.
        liveness_timeout: Duration::from_secs(60),
        ..opts(dir, capacity)
    }
}

/// Publishes messages carrying their own sequence.
fn publish_n(publisher: &mut Publisher, n: u64) {
    for _ in 0..n {
        let seq = publisher.sequence();
        assert_eq!(publisher.publish(&seq.to_le_bytes()).unwrap(), seq);
    }
}

/// Reads everything there is; returns the sequences delivered, checking
/// that each message carries its own sequence.
fn drain(sub: &mut Subscriber) -> Vec<u64> {
    let mut buf = [0u8; 8];
    let mut seqs = Vec::new();
    while let Some(n) = sub.try_recv(&mut buf).unwrap() {
        assert_eq!(n, 8);
        let seq = sub.position() - 1;
        assert_eq!(u64::from_le_bytes(buf), seq, "message of another sequence");
        seqs.push(seq);
    }
    seqs
}

fn lost(count: u64) -> impl Fn(&mut Publisher) -> Result<u64, PublishError> {
    move |p| p.publish_lost(count, Patience::forever())
}

#[test]
fn subscriber_counts_declared_sequences_lost() {
    let kinds: [fn(&Path) -> CreateOptions; 2] = [|d| opts(d, 16), |d| bounded(d, 16, 16)];
    for o in kinds {
        let dir = tempfile::tempdir().unwrap();
        let mut publisher = Publisher::create("l", &o(dir.path())).unwrap();
        let mut sub = Subscriber::attach("l", Some(dir.path()), Start::Latest).unwrap();
        publish_n(&mut publisher, 5);
        assert_eq!(lost(7)(&mut publisher).unwrap(), 5);
        assert_eq!(publisher.sequence(), 12);
        publish_n(&mut publisher, 3);
        let got = drain(&mut sub);
        assert_eq!(got, [0, 1, 2, 3, 4, 12, 13, 14]);
        assert_eq!((sub.received(), sub.lost(), sub.position()), (8, 7, 15));
    }
}

#[test]
fn subscriber_reading_between_the_steps_counts_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("s", &opts(dir.path(), 8)).unwrap();
    let mut sub = Subscriber::attach("s", Some(dir.path()), Start::Latest).unwrap();
    publish_n(&mut publisher, 2);
    assert_eq!(drain(&mut sub), [0, 1]);
    lost(3)(&mut publisher).unwrap();
    assert_eq!(drain(&mut sub), Vec::<u64>::new());
    assert_eq!((sub.received(), sub.lost(), sub.position()), (2, 3, 5));
    publish_n(&mut publisher, 1);
    assert_eq!(drain(&mut sub), [5]);
    assert_eq!((sub.received(), sub.lost()), (3, 3));
}

#[test]
fn more_than_a_ring_declared_on_a_lossy_ring() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("big", &opts(dir.path(), 8)).unwrap();
    let mut sub = Subscriber::attach("big", Some(dir.path()), Start::Latest).unwrap();
    let mut behind = Subscriber::attach("big", Some(dir.path()), Start::Latest).unwrap();
    publish_n(&mut publisher, 2);
    assert_eq!(drain(&mut sub), [0, 1]);
    assert_eq!(lost(20)(&mut publisher).unwrap(), 2);
    // A subscriber attached now starts after them and loses nothing.
    let mut late = Subscriber::attach("big", Some(dir.path()), Start::Latest).unwrap();
    publish_n(&mut publisher, 3);
    assert_eq!(drain(&mut sub), [22, 23, 24]);
    assert_eq!((sub.received(), sub.lost()), (5, 20));
    // One that had not read 0 and 1 lost them too: the run lapped it.
    assert_eq!(drain(&mut behind), [22, 23, 24]);
    assert_eq!((behind.received(), behind.lost()), (3, 22));
    assert_eq!(drain(&mut late), [22, 23, 24]);
    assert_eq!(late.lost(), 0);
    // Nothing of the run is left to deliver to a reader of the oldest.
    let mut oldest = Subscriber::attach("big", Some(dir.path()), Start::Oldest).unwrap();
    let start = oldest.position();
    assert_eq!(drain(&mut oldest), [22, 23, 24]);
    assert_eq!(oldest.lost(), 22 - start);
}

#[test]
fn declaring_nothing_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("z", &opts(dir.path(), 8)).unwrap();
    let mut sub = Subscriber::attach("z", Some(dir.path()), Start::Latest).unwrap();
    publish_n(&mut publisher, 3);
    assert_eq!(lost(0)(&mut publisher).unwrap(), 3);
    assert_eq!(publisher.sequence(), 3);
    assert_eq!(drain(&mut sub), [0, 1, 2]);
    assert_eq!(sub.lost(), 0);
}

#[test]
fn the_last_sequence_is_refused_as_publishing_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("max", &opts(dir.path(), 8)).unwrap();
    let mut sub = Subscriber::attach("max", Some(dir.path()), Start::Latest).unwrap();
    let beyond = |r: Result<u64, PublishError>| {
        matches!(
            r,
            Err(PublishError::Argument(
                ArgumentError::BeyondLastSequence { .. }
            ))
        )
    };
    assert!(beyond(lost(u64::MAX)(&mut publisher)));
    assert!(beyond(lost(MAX_SEQ + 1)(&mut publisher)));
    assert_eq!(publisher.sequence(), 0, "nothing was declared");
    assert_eq!(lost(MAX_SEQ - 1)(&mut publisher).unwrap(), 0);
    publish_n(&mut publisher, 1);
    assert_eq!(publisher.sequence(), MAX_SEQ);
    let err = publisher.publish(b"12345678").unwrap_err();
    assert!(err.to_string().contains("largest"), "{err}");
    assert!(beyond(Err(err)));
    assert!(beyond(lost(1)(&mut publisher)));
    assert!(beyond(
        publisher.publish_all([&b"12345678"[..]], Patience::never())
    ));
    assert_eq!(lost(0)(&mut publisher).unwrap(), MAX_SEQ);
    assert_eq!(drain(&mut sub), [MAX_SEQ - 1]);
    assert_eq!((sub.received(), sub.lost()), (1, MAX_SEQ - 1));
}

#[test]
fn multi_producer_rings_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        producers: Producers::Many { max: 4 },
        ..opts(dir.path(), 8)
    };
    let mut publisher = Publisher::create("mp", &o).unwrap();
    publish_n(&mut publisher, 1);
    match lost(3)(&mut publisher) {
        Err(PublishError::Argument(e @ ArgumentError::WrongMode { .. })) => {
            assert!(e.to_string().contains("only producer"), "{e}")
        }
        other => panic!("expected WrongMode, got {other:?}"),
    }
    assert_eq!(publisher.sequence(), 1, "nothing was claimed");
}

#[test]
fn bounded_ring_full_is_the_error_publishing_gives() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("full", &bounded(dir.path(), 8, 8)).unwrap();
    let mut sub = Subscriber::attach("full", Some(dir.path()), Start::Latest).unwrap();
    publish_n(&mut publisher, 6);
    // Room for two of the five: they are declared, the rest is not.
    match publisher.publish_lost(5, Patience::never()) {
        Err(PublishError::RingFull {
            published: 2,
            requested: 5,
            ..
        }) => {}
        other => panic!("expected RingFull, got {other:?}"),
    }
    assert_eq!(publisher.sequence(), 8);
    assert!(matches!(
        publisher.try_publish(b"12345678"),
        Err(PublishError::RingFull { published: 0, .. })
    ));
    let t0 = Instant::now();
    let deadline = Some(t0 + Duration::from_millis(20));
    assert!(matches!(
        publisher.publish_lost(1, Patience::until(deadline)),
        Err(PublishError::Timeout { published: 0, .. })
    ));
    assert!(t0.elapsed() >= Duration::from_millis(20));
    let mut buf = [0u8; 8];
    for _ in 0..3 {
        sub.try_recv(&mut buf).unwrap().unwrap();
    }
    // Room up to 3 + 8 now.
    assert_eq!(publisher.publish_lost(3, Patience::never()).unwrap(), 8);
    assert!(matches!(
        publisher.try_publish(b"12345678"),
        Err(PublishError::RingFull { .. })
    ));
    assert_eq!(drain(&mut sub), [3, 4, 5]);
    assert_eq!((sub.received(), sub.lost(), sub.position()), (6, 5, 11));
    publish_n(&mut publisher, 3);
    assert_eq!(drain(&mut sub), [11, 12, 13]);
}

#[test]
fn bounded_publish_lost_waits_for_a_slow_subscriber() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("slow", &bounded(dir.path(), 8, 4)).unwrap();
    let mut sub = Subscriber::attach("slow", Some(dir.path()), Start::Latest).unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        let mut seqs = Vec::new();
        while sub.position() < 1001 {
            match sub.try_recv(&mut buf).unwrap() {
                Some(_) => {
                    assert_eq!(u64::from_le_bytes(buf), sub.position() - 1);
                    seqs.push(sub.position() - 1);
                }
                None => std::thread::sleep(Duration::from_micros(50)),
            }
        }
        (seqs, sub.lost())
    });
    assert_eq!(
        publisher.publish_lost(1000, Patience::forever()).unwrap(),
        0
    );
    publish_n(&mut publisher, 1);
    let (seqs, lost) = reader.join().unwrap();
    assert_eq!(seqs, [1000]);
    assert_eq!(
        lost, 1000,
        "a bounded subscriber counts every one, none lapped"
    );
}

/// What the publisher of [`racing_reader`] does: message counts and lost
/// runs in turn, some longer than the ring.
fn schedule() -> Vec<(u64, u64)> {
    (0..600u64)
        .map(|i| ((i * 7) % 11, [0, 1, 3, 15, 16, 17, 40][(i % 7) as usize]))
        .collect()
}

fn racing_reader(o: CreateOptions) {
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        dir: Some(dir.path().to_owned()),
        ..o
    };
    let mut declared = HashSet::new();
    let mut seq = 0;
    for (messages, lost) in schedule() {
        seq += messages;
        declared.extend(seq..seq + lost);
        seq += lost;
    }
    let total = seq;
    let is_bounded = o.bounded.is_some();
    let mut publisher = Publisher::create("race", &o).unwrap();
    let mut sub = Subscriber::attach("race", Some(dir.path()), Start::Latest).unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        let mut last = None;
        while sub.position() < total {
            match sub.try_recv(&mut buf).unwrap() {
                Some(_) => {
                    let seq = sub.position() - 1;
                    assert_eq!(u64::from_le_bytes(buf), seq, "torn or misplaced");
                    assert!(!declared.contains(&seq), "declared {seq} delivered");
                    assert!(last.is_none_or(|l| seq > l));
                    last = Some(seq);
                }
                None => std::hint::spin_loop(),
            }
            assert_eq!(sub.received() + sub.lost(), sub.position());
        }
        (sub.received(), sub.lost(), declared.len() as u64)
    });
    for (messages, lost) in schedule() {
        publish_n(&mut publisher, messages);
        let first = publisher.sequence();
        assert_eq!(
            publisher.publish_lost(lost, Patience::forever()).unwrap(),
            first
        );
    }
    let (received, lost, declared) = reader.join().unwrap();
    assert_eq!(received + lost, total);
    if is_bounded {
        assert_eq!((received, lost), (total - declared, declared));
    } else {
        assert!(lost >= declared);
    }
}

#[test]
fn racing_reader_on_a_lossy_ring() {
    racing_reader(CreateOptions::new(16, 8));
}

#[test]
fn racing_reader_on_a_bounded_ring() {
    racing_reader(CreateOptions {
        bounded: Some(16),
        wait: WaitStrategy::Yield,
        ..CreateOptions::new(16, 8)
    });
}

/// A publisher that died inside `publish_lost` (cursor advanced, stamps
/// not all stored): the next one to open the ring stamps the rest, and a
/// subscriber waiting there moves on.
#[test]
fn takeover_finishes_a_run_the_last_publisher_died_in() {
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        exist_ok: true,
        ..opts(dir.path(), 8)
    };
    let mut publisher = Publisher::create("dead", &o).unwrap();
    let mut sub = Subscriber::attach("dead", Some(dir.path()), Start::Latest).unwrap();
    publish_n(&mut publisher, 3);
    let path = publisher.path().to_owned();
    drop(publisher);
    assert_eq!(drain(&mut sub), [0, 1, 2]);
    // What a death right after the cursor store leaves: the cursor over
    // five sequences whose slots still hold their older laps.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&8u64.to_ne_bytes(), 64).unwrap();
    assert_eq!(drain(&mut sub), Vec::<u64>::new(), "it waits, no fault");
    assert_eq!(sub.position(), 3);
    let mut publisher = Publisher::create("dead", &o).unwrap();
    assert_eq!(publisher.sequence(), 8);
    publish_n(&mut publisher, 1);
    assert_eq!(drain(&mut sub), [8]);
    assert_eq!((sub.received(), sub.lost()), (4, 5));
}

/// `protocol::finish_lost_run` on a bare ring: stamps the unstamped top
/// of a run, stops at the first slot holding its sequence.
#[test]
fn finish_lost_run_stamps_only_the_missing_top() {
    struct Bare {
        cursor: AtomicU64,
        stamps: Vec<AtomicU64>,
        lens: Vec<AtomicU64>,
        words: Vec<AtomicU64>,
    }
    impl Slots for Bare {
        fn capacity(&self) -> u64 {
            self.stamps.len() as u64
        }
        fn slot(&self, seq: u64) -> SlotRef<'_> {
            let i = (seq % self.capacity()) as usize;
            SlotRef {
                stamp: &self.stamps[i],
                len: &self.lens[i],
                time: None,
                words: std::slice::from_ref(&self.words[i]),
                max_len: 8,
                exact: false,
            }
        }
        fn cursor(&self) -> &AtomicU64 {
            &self.cursor
        }
    }
    let new = || AtomicU64::new(0);
    let ring = Bare {
        cursor: new(),
        stamps: (0..4).map(|_| new()).collect(),
        lens: (0..4).map(|_| new()).collect(),
        words: (0..4).map(|_| new()).collect(),
    };
    assert_eq!(protocol::finish_lost_run(&ring), 0, "an empty ring");
    for seq in 0..3 {
        protocol::publish(&ring, seq, &[1], 0);
    }
    assert_eq!(protocol::finish_lost_run(&ring), 0, "nothing missing");
    // A run of 10 from 3 whose producer died after the cursor store:
    // only the last ring's worth (9 .. 13) is missing.
    ring.cursor.store(13, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(protocol::finish_lost_run(&ring), 4);
    for seq in 9..13 {
        assert_eq!(
            ring.slot(seq)
                .stamp
                .load(std::sync::atomic::Ordering::Relaxed),
            stamp::lost(seq)
        );
    }
    // Died part way through the stamps: 3 and 4 stamped, 5 and 6 not.
    let ring2 = Bare {
        cursor: new(),
        stamps: (0..4).map(|_| new()).collect(),
        lens: (0..4).map(|_| new()).collect(),
        words: (0..4).map(|_| new()).collect(),
    };
    for seq in 0..3 {
        protocol::publish(&ring2, seq, &[1], 0);
    }
    protocol::publish_lost(&ring2, 3, 2);
    ring2.cursor.store(7, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(protocol::finish_lost_run(&ring2), 2);
    assert_eq!(protocol::finish_lost_run(&ring2), 0, "done once");
}
