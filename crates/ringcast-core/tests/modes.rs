//! Bounded and multi-producer rings through the public API, in one process
//! (threads); the cross-process versions live in the Python suite.
#![cfg(not(loom))]

use ringcast_core::wait::WaitStrategy;
use ringcast_core::{
    CreateOptions, OpenError, Patience, Producers, PublishError, Publisher, RecvError, Start,
    Subscriber,
};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn opts(dir: &Path, capacity: u64) -> CreateOptions {
    CreateOptions {
        dir: Some(dir.to_owned()),
        ..CreateOptions::new(capacity, 16)
    }
}

/// Message `i` of producer `p`: [p, i] as two words.
fn msg(p: u64, i: u64) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[..8].copy_from_slice(&p.to_le_bytes());
    m[8..].copy_from_slice(&i.to_le_bytes());
    m
}

fn parse(m: &[u8]) -> (u64, u64) {
    (
        u64::from_le_bytes(m[..8].try_into().unwrap()),
        u64::from_le_bytes(m[8..16].try_into().unwrap()),
    )
}

#[test]
fn bounded_ring_fills_up_and_drains() {
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        bounded: Some(8),
        ..opts(dir.path(), 8)
    };
    let mut publisher = Publisher::create("b", &o).unwrap();
    let mut sub = Subscriber::attach("b", Some(dir.path()), Start::Latest).unwrap();
    for i in 0..8 {
        publisher.try_publish(&msg(0, i)).unwrap();
    }
    match publisher.try_publish(&msg(0, 8)) {
        Err(PublishError::RingFull {
            published: 0,
            requested: 1,
            ..
        }) => {}
        other => panic!("expected RingFull, got {other:?}"),
    }
    let t0 = Instant::now();
    let deadline = Some(t0 + Duration::from_millis(30));
    assert!(matches!(
        publisher.publish_with(&msg(0, 8), Patience::until(deadline)),
        Err(PublishError::Timeout { .. })
    ));
    assert!(t0.elapsed() >= Duration::from_millis(30));
    let mut buf = [0u8; 16];
    assert_eq!(sub.try_recv(&mut buf).unwrap(), Some(16));
    assert_eq!(parse(&buf), (0, 0));
    publisher.try_publish(&msg(0, 8)).unwrap();
    assert_eq!(publisher.subscriber_count(), 1);
    drop(sub);
    // The last subscriber left: nothing gates the publisher any more.
    for i in 9..100 {
        publisher.try_publish(&msg(0, i)).unwrap();
    }
    assert_eq!(publisher.evictions(), 0);
}

#[test]
fn bounded_publisher_waits_for_a_slow_reader_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        bounded: Some(4),
        wait: WaitStrategy::Park,
        ..opts(dir.path(), 16)
    };
    let mut publisher = Publisher::create("slow", &o).unwrap();
    let mut sub = Subscriber::attach("slow", Some(dir.path()), Start::Latest).unwrap();
    let total = 20_000u64;
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        let mut next = 0;
        while next < total {
            if sub.try_recv(&mut buf).unwrap().is_some() {
                assert_eq!(parse(&buf), (0, next));
                next += 1;
                if next % 1000 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            } else {
                std::hint::spin_loop();
            }
        }
        sub.lost()
    });
    for i in 0..total {
        publisher.publish(&msg(0, i)).unwrap();
    }
    assert_eq!(reader.join().unwrap(), 0);
}

#[test]
fn stalled_subscriber_is_evicted_and_told() {
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        bounded: Some(4),
        liveness_timeout: Duration::from_millis(100),
        ..opts(dir.path(), 4)
    };
    let mut publisher = Publisher::create("e", &o).unwrap();
    let mut sub = Subscriber::attach("e", Some(dir.path()), Start::Latest).unwrap();
    for i in 0..4 {
        publisher.publish(&msg(0, i)).unwrap();
    }
    let t0 = Instant::now();
    publisher
        .publish_with(
            &msg(0, 4),
            Patience::until(Some(t0 + Duration::from_secs(10))),
        )
        .unwrap();
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(100) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(publisher.evictions(), 1);
    assert!(sub.evicted());
    let mut buf = [0u8; 16];
    assert!(matches!(
        sub.try_recv(&mut buf),
        Err(RecvError::Evicted { .. })
    ));
}

/// `producers` threads publish `per` messages each into one ring (in
/// batches of `batch`); a reader sees each producer's messages exactly once
/// and in order (bounded), or in order with exact loss accounting (lossy).
fn many_producers(bounded: bool, producers: u64, per: u64, batch: usize) {
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        producers: Producers::many(),
        bounded: bounded.then_some(64),
        ..opts(dir.path(), 64)
    };
    let first = Publisher::create("mp", &o).unwrap();
    let mut sub = Subscriber::attach("mp", Some(dir.path()), Start::Latest).unwrap();
    let joined = std::sync::Arc::new(std::sync::Barrier::new(producers as usize + 1));
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let dir = dir.path().to_owned();
            let joined = joined.clone();
            std::thread::spawn(move || {
                let mut publisher =
                    Publisher::attach("mp", Some(&dir), WaitStrategy::Yield).unwrap();
                joined.wait();
                let mut i = 0;
                while i < per {
                    let n = (batch as u64).min(per - i);
                    let msgs: Vec<[u8; 16]> = (i..i + n).map(|k| msg(p, k)).collect();
                    publisher
                        .publish_all(msgs.iter().map(|m| &m[..]), Patience::forever())
                        .unwrap();
                    i += n;
                }
            })
        })
        .collect();
    joined.wait();
    drop(first); // the stream ends when the last producer closes
    let mut last: HashMap<u64, u64> = HashMap::new();
    let mut buf = [0u8; 16];
    let mut received = 0u64;
    loop {
        match sub.try_recv(&mut buf).unwrap() {
            Some(_) => {
                let (p, i) = parse(&buf);
                let prev = last.insert(p, i);
                assert!(
                    prev.is_none_or(|prev| i > prev),
                    "producer {p} out of order"
                );
                if bounded {
                    assert_eq!(i, prev.map_or(0, |prev| prev + 1), "producer {p} skipped");
                }
                received += 1;
            }
            None if sub.ended() => break,
            None => std::thread::yield_now(),
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(received + sub.lost(), producers * per);
    if bounded {
        assert_eq!(sub.lost(), 0);
        assert!(last.values().all(|&i| i == per - 1));
    }
}

#[test]
fn many_producers_bounded_exactly_once() {
    many_producers(true, 4, 5_000, 7);
}

#[test]
fn many_producers_lossy_exact_accounting() {
    many_producers(false, 3, 20_000, 1);
}

#[test]
fn second_producer_joins_only_multi_producer_rings() {
    let dir = tempfile::tempdir().unwrap();
    let _single = Publisher::create("one", &opts(dir.path(), 8)).unwrap();
    assert!(matches!(
        Publisher::attach("one", Some(dir.path()), WaitStrategy::default()),
        Err(OpenError::PublisherExists { .. })
    ));
    let o = CreateOptions {
        producers: Producers::Many { max: 2 },
        ..opts(dir.path(), 8)
    };
    let a = Publisher::create("two", &o).unwrap();
    let b = Publisher::attach("two", Some(dir.path()), WaitStrategy::default()).unwrap();
    assert_eq!(a.producer_count(), 2);
    assert!(matches!(
        Publisher::attach("two", Some(dir.path()), WaitStrategy::default()),
        Err(OpenError::ProducerTableFull {
            max_producers: 2,
            ..
        })
    ));
    drop(b);
    assert_eq!(a.producer_count(), 1);
}

/// A subscriber that reads a little after the publisher blocked and then
/// stops, leaving less than the resume threshold free, is still judged and
/// evicted: the publisher judges against the sequence it waits for.
#[test]
fn subscriber_stalling_just_after_a_little_progress_is_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        bounded: Some(64),
        liveness_timeout: Duration::from_millis(100),
        ..opts(dir.path(), 64)
    };
    let mut publisher = Publisher::create("h", &o).unwrap();
    let mut sub = Subscriber::attach("h", Some(dir.path()), Start::Latest).unwrap();
    for i in 0..64 {
        publisher.publish(&msg(0, i)).unwrap();
    }
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = [0u8; 16];
        sub.try_recv(&mut buf).unwrap();
        sub.try_recv(&mut buf).unwrap(); // 2 free: below the resume threshold
        std::thread::sleep(Duration::from_secs(2));
        sub
    });
    let t0 = Instant::now();
    publisher
        .publish_with(
            &msg(0, 64),
            Patience::until(Some(t0 + Duration::from_secs(5))),
        )
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(publisher.evictions(), 1);
    assert!(reader.join().unwrap().evicted());
}

/// `try_publish` alone (no waiting) also gets a stalled subscriber evicted
/// once it has blocked the ring for the liveness limit.
#[test]
fn try_publish_alone_evicts_a_stalled_subscriber() {
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        bounded: Some(4),
        liveness_timeout: Duration::from_millis(50),
        ..opts(dir.path(), 4)
    };
    let mut publisher = Publisher::create("t", &o).unwrap();
    let sub = Subscriber::attach("t", Some(dir.path()), Start::Latest).unwrap();
    for i in 0..4 {
        publisher.try_publish(&msg(0, i)).unwrap();
    }
    let t0 = Instant::now();
    let mut full = 0;
    while publisher.try_publish(&msg(0, 4)).is_err() {
        full += 1;
        assert!(t0.elapsed() < Duration::from_secs(2), "never evicted");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(full > 0 && publisher.evictions() == 1 && sub.evicted());
}

/// A subscriber attaching while a long batch is being published is protected
/// from the moment `attach` returns: the batch never runs more than the
/// watermark past its position.
#[test]
fn long_batch_respects_a_subscriber_that_joins_midway() {
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        bounded: Some(8),
        fixed_size: true,
        ..opts(dir.path(), 8)
    };
    let mut publisher = Publisher::create("b", &o).unwrap();
    let data = vec![0u8; 16 * 2_000_000];
    let writer = std::thread::spawn(move || {
        publisher
            .publish_records(&data, Patience::forever())
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(10));
    let mut sub = Subscriber::attach("b", Some(dir.path()), Start::Latest).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        sub.lag() <= 8,
        "publisher ran {} past the subscriber",
        sub.lag()
    );
    let mut buf = [0u8; 16];
    for _ in 0..1000 {
        while sub.try_recv(&mut buf).unwrap().is_none() {}
    }
    assert_eq!(sub.lost(), 0);
    drop(sub);
    writer.join().unwrap();
}
