//! The builders: what they create is what the equivalent options create, and
//! their errors are the same typed errors.
#![cfg(not(loom))]

use ringcast_core::{ArgumentError, OpenError, Publisher, Start, Subscriber};

#[test]
fn builder_creates_opens_and_refuses_as_the_options_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::builder("built")
        .dir(dir.path())
        .capacity(8)
        .slot_size(16)
        .bounded(8)
        .timestamps(true)
        .heads_apart(true)
        .create()
        .unwrap();
    let layout = publisher.layout().clone();
    assert_eq!((layout.capacity, layout.slot_size), (8, 16));
    assert!(layout.bounded() && layout.timestamps() && !layout.multi_producer());
    assert!(layout.heads_apart());

    // A second publisher is refused while the first lives, with the errors
    // the options give.
    let again = Publisher::builder("built")
        .dir(dir.path())
        .capacity(8)
        .slot_size(16)
        .bounded(8)
        .timestamps(true)
        .heads_apart(true);
    assert!(matches!(
        again.clone().create(),
        Err(OpenError::PublisherExists { .. })
    ));
    assert!(matches!(
        again.clone().open_or_create(),
        Err(OpenError::PublisherExists { .. })
    ));

    let mut subscriber = Subscriber::builder("built")
        .dir(dir.path())
        .start(Start::Oldest)
        .attach()
        .unwrap();
    publisher.publish(b"hello").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(subscriber.try_recv(&mut buf).unwrap(), Some(5));
    assert_eq!(&buf[..5], b"hello");

    // Once it closed, the name is still taken for create(), and
    // open_or_create() takes the ring over: the sequence continues.
    publisher.close();
    assert!(matches!(
        again.clone().create(),
        Err(OpenError::Exists { .. })
    ));
    let mut successor = again.open_or_create().unwrap();
    assert_eq!(successor.publish(b"next").unwrap(), 1);

    // Another layout under the same name is a mismatch, not a takeover.
    drop(successor);
    let other = Publisher::builder("built")
        .dir(dir.path())
        .capacity(16)
        .slot_size(16)
        .open_or_create();
    assert!(matches!(other, Err(OpenError::SchemaMismatch { .. })));

    // A stage that names itself among those it follows is refused.
    let looped = Subscriber::builder("built")
        .dir(dir.path())
        .stage("risk")
        .after(["risk"])
        .attach();
    assert!(matches!(
        looped,
        Err(OpenError::Argument(ArgumentError::GatedAfterItself { .. }))
    ));
}

#[test]
fn builder_for_many_producers_joins() {
    let dir = tempfile::tempdir().unwrap();
    let builder = Publisher::builder("many")
        .dir(dir.path())
        .capacity(16)
        .slot_size(8)
        .many_producers(4);
    let mut a = builder.clone().create().unwrap();
    let mut b = builder.open_or_create().unwrap();
    assert_eq!(a.producer_count(), 2);
    a.publish(b"a").unwrap();
    b.publish(b"b").unwrap();
    let attached = Publisher::builder("many").dir(dir.path()).attach().unwrap();
    assert_eq!(attached.producer_count(), 3);
    assert_eq!(attached.sequence(), 2);
}
