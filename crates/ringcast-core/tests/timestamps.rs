//! Publish timestamps and latency recording through the public API: the
//! time word's layout cost, automatic and explicit times in every ring mode,
//! batches, lapping, the recorder's view, and refusals on rings without
//! timestamps.
#![cfg(not(loom))]

use ringcast_core::{
    sys::clock, ArgumentError, CreateOptions, Patience, Producers, PublishError, Publisher,
    RecorderConfig, Start, Subscriber,
};

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
fn the_time_word_costs_a_line_only_when_the_payload_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    for (slot_size, plain, stamped) in [(40, 64, 64), (48, 64, 128), (64, 128, 128)] {
        let mut opts = options(&dir, slot_size);
        opts.timestamps = false;
        let a = Publisher::create(&format!("plain{slot_size}"), &opts).unwrap();
        opts.timestamps = true;
        let b = Publisher::create(&format!("stamped{slot_size}"), &opts).unwrap();
        assert_eq!(a.layout().slot_stride(), plain);
        assert_eq!(b.layout().slot_stride(), stamped);
        assert!(b.layout().describe().contains("timestamps"));
        assert!(!a.layout().describe().contains("timestamps"));
    }
}

#[test]
fn every_mode_carries_call_times_and_explicit_times() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bounded, producers) in [
        ("lossy", None, Producers::One),
        ("bounded", Some(64), Producers::One),
        ("many", None, Producers::Many { max: 4 }),
        ("many_bounded", Some(64), Producers::Many { max: 4 }),
    ] {
        let mut opts = options(&dir, 100);
        opts.bounded = bounded;
        opts.producers = producers;
        let mut publisher = Publisher::create(name, &opts).unwrap();
        let mut sub = attach(&dir, name);
        assert_eq!(sub.time(), None, "{name}: nothing read yet");
        let before = clock::now_ns();
        publisher.publish(b"now").unwrap();
        let after = clock::now_ns();
        publisher
            .publish_at(b"due earlier", 12_345, Patience::forever())
            .unwrap();
        let mut buf = [0u8; 100];
        assert_eq!(sub.try_recv(&mut buf).unwrap(), Some(3));
        let t = sub.time().unwrap();
        assert!(
            before <= t && t <= after,
            "{name}: {before} <= {t} <= {after}"
        );
        assert_eq!(sub.try_recv(&mut buf).unwrap(), Some(11));
        assert_eq!(sub.time(), Some(12_345), "{name}");
    }
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
fn rings_without_timestamps_refuse_times_with_a_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&dir, 8);
    opts.timestamps = false;
    let mut publisher = Publisher::create("plain", &opts).unwrap();
    let mut sub = attach(&dir, "plain");
    let e = publisher
        .publish_at(b"x", 1, Patience::forever())
        .unwrap_err();
    assert!(matches!(
        e,
        PublishError::Argument(ArgumentError::PublishTimeWithoutTimestamps { .. })
    ));
    assert!(e.to_string().contains("create it with timestamps"), "{e}");
    let e = sub
        .record_latency(Some(RecorderConfig::default()))
        .unwrap_err();
    assert!(e.to_string().contains("create it with timestamps"), "{e}");
    publisher.publish(b"x").unwrap();
    let mut buf = [0u8; 8];
    sub.try_recv(&mut buf).unwrap();
    assert_eq!(sub.time(), None);
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
}
