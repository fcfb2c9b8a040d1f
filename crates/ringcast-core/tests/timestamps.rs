//! Publish timestamps and latency recording through the public API: the
//! time word's layout cost, automatic and explicit times in every ring mode,
//! batches, lapping, an observer's view, and refusals on rings without
//! timestamps.
#![cfg(not(loom))]

use ringcast_core::{
    sys::clock, ArgumentError, CreateOptions, Patience, Producers, PublishError, Publisher,
    ReceiveObserver, Start, Subscriber,
};
use std::any::Any;

fn options(dir: &tempfile::TempDir, slot_size: u32) -> CreateOptions {
    let mut opts = CreateOptions::new(64, slot_size);
    opts.dir = Some(dir.path().to_owned());
    opts.timestamps = true;
    opts
}

fn attach(dir: &tempfile::TempDir, name: &str) -> Subscriber {
    Subscriber::attach(name, Some(dir.path()), Start::Oldest).unwrap()
}

/// The time word costs a line only when the payload needs it: a slot is the
/// fewest lines its head (unless apart), time word and payload need; both
/// placements of the head carry the same messages, lengths and times.
#[test]
fn the_time_word_costs_a_line_only_when_the_payload_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    // (payload; plain, stamped strides with heads in the slots; the same apart)
    for (slot_size, plain, stamped, plain_apart, stamped_apart) in [
        (40, 64, 64, 64, 64),
        (48, 64, 128, 64, 64),
        (64, 128, 128, 64, 128),
        (120, 192, 192, 128, 128),
    ] {
        for (apart, plain, stamped) in [(false, plain, stamped), (true, plain_apart, stamped_apart)]
        {
            let mut opts = options(&dir, slot_size);
            opts.heads_apart = apart;
            opts.timestamps = false;
            let a = Publisher::create(&format!("plain{slot_size}{apart}"), &opts).unwrap();
            opts.timestamps = true;
            let mut b = Publisher::create(&format!("stamped{slot_size}{apart}"), &opts).unwrap();
            assert_eq!(a.layout().slot_stride(), plain, "{slot_size} {apart}");
            assert_eq!(b.layout().slot_stride(), stamped, "{slot_size} {apart}");
            assert_eq!(b.layout().heads_apart(), apart);
            assert_eq!(b.layout().describe().contains("heads-apart"), apart);
            assert!(b.layout().describe().contains("timestamps"));
            assert!(!a.layout().describe().contains("timestamps"));
            let mut sub = attach(&dir, b.name());
            let msg: Vec<u8> = (0..slot_size as u8).collect();
            b.publish_at(&msg, 12345, Patience::forever()).unwrap();
            let mut buf = [0u8; 256];
            let n = sub.try_recv(&mut buf).unwrap().expect("a message");
            assert_eq!(&buf[..n], &msg[..], "{slot_size} {apart}");
            assert_eq!(sub.time(), Some(12345), "{slot_size} {apart}");
        }
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
        .set_observer(Some(Box::new(Times::default())))
        .unwrap_err();
    assert!(e.to_string().contains("create it with timestamps"), "{e}");
    assert!(sub.observer().is_none());
    publisher.publish(b"x").unwrap();
    let mut buf = [0u8; 8];
    sub.try_recv(&mut buf).unwrap();
    assert_eq!(sub.time(), None);
}

/// An observer that keeps what it is told.
#[derive(Default)]
struct Times(Vec<(u64, u64)>);

impl ReceiveObserver for Times {
    fn observe(&mut self, published_ns: u64, received_ns: u64) {
        self.0.push((published_ns, received_ns));
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

fn times(sub: &Subscriber) -> &[(u64, u64)] {
    &sub.observer()
        .unwrap()
        .as_any()
        .downcast_ref::<Times>()
        .unwrap()
        .0
}

#[test]
fn the_observer_sees_each_message_read_once_with_its_times() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("obs", &options(&dir, 64)).unwrap();
    let mut sub = attach(&dir, "obs");
    sub.set_observer(Some(Box::new(Times::default()))).unwrap();
    for t in [10u64, 20, 30] {
        publisher
            .publish_at(&[t as u8; 64], t, Patience::forever())
            .unwrap();
    }
    let before = clock::now_ns();
    let mut buf = [0u8; 64 * 8];
    assert_eq!(sub.try_recv(&mut buf[..64]).unwrap(), Some(64));
    // A batch reads the clock once: both rows get one receive time.
    assert_eq!(sub.try_recv_rows(&mut buf, 64, 8, |_, _| {}).unwrap(), 2);
    let after = clock::now_ns();
    let seen = times(&sub);
    assert_eq!(seen.iter().map(|t| t.0).collect::<Vec<_>>(), [10, 20, 30]);
    assert!(seen.iter().all(|t| before <= t.1 && t.1 <= after));
    assert_eq!(seen[1].1, seen[2].1);
    // Lapped messages are not observed: only what was read.
    for i in 0..1000u64 {
        publisher
            .publish_at(&[0; 64], i, Patience::forever())
            .unwrap();
    }
    while sub.try_recv(&mut buf[..64]).unwrap().is_some() {}
    assert!(sub.lost() > 0);
    assert_eq!(times(&sub).len() as u64, sub.received());
    sub.set_observer(None).unwrap();
    assert!(sub.observer().is_none());
}
