//! Both ends of a bridge in one process over `aeron:ipc`, through one media
//! driver the test runs (given to both ends as an external driver, as
//! `--aeron-dir` does: IPC stays inside one driver): every message arrives
//! with its sequence, payload and publish time, and a lossy source that
//! laps the sender is accounted exactly on the far side. The tests between
//! hosts (UDP, loss, kills, multicast) are in tests/test_bridge.py.

use ringcast_bridge::transport::Driver;
use ringcast_bridge::{recv, send, DriverChoice, DriverOptions, RecvOptions, SendOptions};
use ringcast_core::{CreateOptions, Publisher, RecvError, Start, Subscriber, WaitStrategy, Waiter};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SLOT: u32 = 24;

fn source(dir: &Path, capacity: u64, bounded: bool) -> Publisher {
    let mut o = CreateOptions::new(capacity, SLOT);
    o.dir = Some(dir.to_owned());
    o.bounded = bounded.then_some(capacity);
    o.timestamps = true;
    o.fixed_size = true;
    Publisher::create("src", &o).expect("source ring")
}

fn message(seq: u64) -> [u8; SLOT as usize] {
    let mut m = [0u8; SLOT as usize];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m[8..16].copy_from_slice(&seq.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    m[16..].copy_from_slice(&(!seq).to_le_bytes());
    m
}

/// Runs a sender and a receiver on threads around `publish`, then reads the
/// far ring to its end: (messages read, far subscriber's lost, reports).
fn bridge_through(
    dir: &Path,
    stream: i32,
    publish: impl FnOnce() + Send + 'static,
) -> (
    u64,
    u64,
    ringcast_bridge::SendReport,
    ringcast_bridge::RecvReport,
) {
    let channel = "aeron:ipc".to_string();
    let driver = Driver::start(&DriverOptions::default()).expect("a media driver");
    let external = DriverOptions {
        choice: DriverChoice::External(driver.dir().to_owned()),
        ..DriverOptions::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut rx = RecvOptions::new(&channel);
    rx.stream = stream;
    rx.ring = Some("far".into());
    rx.ring_dir = Some(dir.to_owned());
    rx.bounded = true;
    rx.until_end = true;
    rx.driver = external.clone();
    let receiver = {
        let stop = stop.clone();
        std::thread::spawn(move || recv(&rx, &stop, |_| {}))
    };
    let mut tx = SendOptions::new("src", &channel);
    tx.stream = stream;
    tx.ring_dir = Some(dir.to_owned());
    tx.linger = Duration::from_millis(200);
    tx.connect_timeout = Some(Duration::from_secs(20));
    tx.driver = external;
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || send(&tx, &stop, |_| {}))
    };
    // The far ring appears with the sender's hello; attach before any
    // message is published.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut far = loop {
        match Subscriber::attach("far", Some(dir), Start::Oldest) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("the far ring never appeared: {e}"),
        }
    };
    publish();
    let mut buf = [0u8; SLOT as usize];
    let (mut got, mut last) = (0u64, None::<u64>);
    let mut waiter = Waiter::new(WaitStrategy::default());
    loop {
        match far.try_recv(&mut buf) {
            Ok(Some(_)) => {
                let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
                assert_eq!(buf, message(seq), "a damaged message");
                assert!(last.is_none_or(|l| seq > l), "out of order");
                assert!(far.time().unwrap() > 0, "the publish time was carried");
                last = Some(seq);
                got += 1;
            }
            Ok(None) => {
                match far.wait_readable(Some(Instant::now() + Duration::from_secs(20)), &mut waiter)
                {
                    Ok(()) => {}
                    Err(RecvError::Closed { .. }) => break,
                    Err(e) => panic!("waiting on the far ring: {e}"),
                }
            }
            Err(RecvError::Closed { .. }) => break,
            Err(e) => panic!("reading the far ring: {e}"),
        }
    }
    let sent = sender.join().unwrap().expect("sender");
    let received = receiver.join().unwrap().expect("receiver");
    stop.store(true, Ordering::Relaxed);
    drop(driver);
    (got, far.lost(), sent, received)
}

#[test]
fn every_message_crosses_with_its_sequence_payload_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let n = 50_000u64;
    let mut publisher = source(dir.path(), 1024, true);
    let (got, lost, sent, received) = bridge_through(dir.path(), 7001, move || {
        std::thread::spawn(move || {
            for seq in 0..n {
                publisher.publish(&message(seq)).unwrap();
            }
            publisher.close();
        });
    });
    assert_eq!((got, lost), (n, 0));
    assert_eq!((sent.sent, sent.source_lost, sent.ended), (n, 0, true));
    assert_eq!(received.delivered, n);
    assert_eq!(received.loss.total_declared(), 0);
    assert!(received.ended && received.latency_ns.is_some());
}

#[test]
fn a_source_lapping_the_sender_is_declared_lost_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let n = 200_000u64;
    let mut publisher = source(dir.path(), 64, false);
    let (got, lost, sent, received) = bridge_through(dir.path(), 7002, move || {
        std::thread::spawn(move || {
            for seq in 0..n {
                publisher.publish(&message(seq)).unwrap();
            }
            publisher.close();
        });
    });
    assert!(
        sent.source_lost > 0,
        "64 slots flat out: the sender is lapped"
    );
    assert_eq!(got + lost, n);
    assert_eq!(lost, sent.source_lost);
    assert_eq!(sent.source_lost, sent.ring_lost);
    assert_eq!(received.loss.source, lost);
    assert_eq!(received.loss.lost(), lost);
    assert_eq!(received.delivered, got);
}
