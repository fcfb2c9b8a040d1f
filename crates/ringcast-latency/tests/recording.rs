//! Latency recording on a subscriber: each message read recorded once, with
//! its latency; lapped messages not recorded; refusals with a remedy.
#![cfg(not(loom))]

use ringcast_core::{sys::clock, CreateOptions, Patience, Publisher, Start, Subscriber};
use ringcast_latency::{RecordLatency, RecorderConfig};

fn options(dir: &tempfile::TempDir, slot_size: u32) -> CreateOptions {
    let mut opts = CreateOptions::new(64, slot_size);
    opts.dir = Some(dir.path().to_owned());
    opts.timestamps = true;
    opts
}

fn attach(dir: &tempfile::TempDir, name: &str) -> Subscriber {
    Subscriber::attach(name, Some(dir.path()), Start::Oldest).unwrap()
}

#[test]
fn the_recorder_sees_each_message_once_with_its_latency() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("rec", &options(&dir, 64)).unwrap();
    let mut sub = attach(&dir, "rec");
    sub.record_latency(Some(RecorderConfig::default())).unwrap();
    let now = clock::now_ns();
    // Due 1 ms, 2 ms and 3 ms ago: latencies of at least that.
    for ms in [1u64, 2, 3] {
        publisher
            .publish_at(&[ms as u8; 64], now - ms * 1_000_000, Patience::forever())
            .unwrap();
    }
    publisher.publish(&[0; 64]).unwrap();
    let mut buf = [0u8; 64 * 8];
    assert_eq!(sub.try_recv(&mut buf[..64]).unwrap(), Some(64));
    let n = sub.try_recv_rows(&mut buf, 64, 8, |_, _| {}).unwrap();
    assert_eq!(n, 3);
    let rec = sub.recorder().unwrap();
    assert_eq!(rec.count(), 4);
    let h = rec.histogram();
    assert!(
        h.max() >= 3_000_000 && h.max() < 1_000_000_000,
        "{}",
        h.max()
    );
    assert!(
        h.min() < 1_000_000,
        "the last message was published just now: {}",
        h.min()
    );
    assert_eq!(h.count_between(2_000_000, 2_999_999), 1);
    // Intervals hand out what came since the last one.
    assert_eq!(sub.recorder_mut().unwrap().take_interval().len(), 4);
    publisher.publish(&[0; 64]).unwrap();
    assert_eq!(sub.try_recv(&mut buf[..64]).unwrap(), Some(64));
    assert_eq!(sub.recorder_mut().unwrap().take_interval().len(), 1);
    sub.record_latency(None).unwrap();
    assert!(sub.recorder().is_none());
}

#[test]
fn lapped_readers_record_only_what_they_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("lapped", &options(&dir, 8)).unwrap();
    let mut sub = attach(&dir, "lapped");
    sub.record_latency(Some(RecorderConfig::default())).unwrap();
    for i in 0..1000u64 {
        publisher.publish(&i.to_le_bytes()).unwrap();
    }
    let mut buf = [0u8; 8];
    while sub.try_recv(&mut buf).unwrap().is_some() {}
    assert!(sub.lost() > 0);
    assert_eq!(sub.recorder().unwrap().count(), sub.received());
}

#[test]
fn refusals_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&dir, 8);
    opts.timestamps = false;
    let _plain = Publisher::create("plain", &opts).unwrap();
    let mut sub = attach(&dir, "plain");
    let e = sub
        .record_latency(Some(RecorderConfig::default()))
        .unwrap_err();
    assert!(e.to_string().contains("create it with timestamps"), "{e}");
    assert!(sub.recorder().is_none());
    // Asking for a bad histogram shape says what is wrong.
    let mut stamped = Publisher::create("stamped", &options(&dir, 8)).unwrap();
    stamped.publish(b"x").unwrap();
    let mut sub = attach(&dir, "stamped");
    let bad = RecorderConfig {
        digits: 9,
        ..RecorderConfig::default()
    };
    let e = sub.record_latency(Some(bad)).unwrap_err();
    assert!(e.to_string().contains("significant digits"), "{e}");
    assert!(sub.recorder().is_none());
}
