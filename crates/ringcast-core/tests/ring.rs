//! End-to-end tests of the shared-memory ring through its public API.
#![cfg(not(loom))]

use ringcast_core::{
    ArgumentError, CreateOptions, OpenError, Patience, PublishError, Publisher, RecvError,
    RingFault, Start, Subscriber,
};
use std::path::Path;
use std::time::{Duration, Instant};

fn opts(dir: &Path, capacity: u64, slot_size: u32) -> CreateOptions {
    CreateOptions {
        dir: Some(dir.to_owned()),
        ..CreateOptions::new(capacity, slot_size)
    }
}

fn recv_all(sub: &mut Subscriber, buf: &mut [u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(n) = sub.try_recv(buf).unwrap() {
        out.push(buf[..n].to_vec());
    }
    out
}

#[test]
fn variable_length_messages_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("v", &opts(dir.path(), 8, 100)).unwrap();
    let mut sub = Subscriber::attach("v", Some(dir.path()), Start::Oldest).unwrap();
    let msgs: Vec<Vec<u8>> = (0..6)
        .map(|i| vec![i as u8 + 1; [0, 1, 7, 8, 9, 100][i]])
        .collect();
    for m in &msgs {
        publisher.publish(m).unwrap();
    }
    let mut buf = [0u8; 100];
    assert_eq!(recv_all(&mut sub, &mut buf), msgs);
    assert_eq!((sub.received(), sub.lost(), sub.position()), (6, 0, 6));
}

#[test]
fn lapped_subscriber_counts_exact_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("lap", &opts(dir.path(), 4, 8)).unwrap();
    let mut sub = Subscriber::attach("lap", Some(dir.path()), Start::Latest).unwrap();
    for i in 0u64..10 {
        publisher.publish(&i.to_le_bytes()).unwrap();
    }
    let mut buf = [0u8; 8];
    let got: Vec<u64> = recv_all(&mut sub, &mut buf)
        .iter()
        .map(|m| u64::from_le_bytes(m[..].try_into().unwrap()))
        .collect();
    // Cursor 10, capacity 4: the oldest message safe from the publisher is 7.
    assert_eq!(got, vec![7, 8, 9]);
    assert_eq!(sub.lost(), 7);
    assert_eq!(sub.received() + sub.lost(), sub.position() - sub.start());
}

#[test]
fn start_positions() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("st", &opts(dir.path(), 8, 8)).unwrap();
    for i in 0u64..20 {
        publisher.publish(&i.to_le_bytes()).unwrap();
    }
    let d = Some(dir.path());
    assert_eq!(
        Subscriber::attach("st", d, Start::Latest)
            .unwrap()
            .position(),
        20
    );
    assert_eq!(
        Subscriber::attach("st", d, Start::Oldest)
            .unwrap()
            .position(),
        12
    );
    let mut at = Subscriber::attach("st", d, Start::At(15)).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(recv_all(&mut at, &mut buf).len(), 5);
}

#[test]
fn second_publisher_is_refused_and_restart_continues_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), 8, 8);
    let mut first = Publisher::create("p", &o).unwrap();
    first.publish(b"12345678").unwrap();
    o.exist_ok = true;
    match Publisher::create("p", &o) {
        Err(OpenError::PublisherExists { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("expected PublisherExists, got {:?}", other.err()),
    }
    let mut sub = Subscriber::attach("p", Some(dir.path()), Start::Oldest).unwrap();
    drop(first);
    o.exist_ok = false;
    assert!(matches!(
        Publisher::create("p", &o),
        Err(OpenError::Exists { .. })
    ));
    o.exist_ok = true;
    let mut second = Publisher::create("p", &o).unwrap();
    assert_eq!(second.sequence(), 1);
    assert_eq!(second.generation(), 2);
    second.publish(b"abcdefgh").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        recv_all(&mut sub, &mut buf),
        vec![b"12345678".to_vec(), b"abcdefgh".to_vec()]
    );
}

#[test]
fn take_over_with_another_layout_is_a_schema_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    drop(Publisher::create("m", &opts(dir.path(), 8, 8)).unwrap());
    let mut o = opts(dir.path(), 16, 8);
    o.exist_ok = true;
    let err = Publisher::create("m", &o).err().unwrap();
    assert!(matches!(err, OpenError::SchemaMismatch { .. }), "{err}");
    assert!(err.to_string().contains("capacity=8") && err.to_string().contains("capacity=16"));
}

#[test]
fn closed_ring_ends_the_stream_after_the_last_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("c", &opts(dir.path(), 8, 8)).unwrap();
    let mut sub = Subscriber::attach("c", Some(dir.path()), Start::Latest).unwrap();
    publisher.publish(b"last").unwrap();
    publisher.close();
    let mut backoff = ringcast_core::Waiter::default();
    sub.wait_readable(None, &mut backoff).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(sub.try_recv(&mut buf).unwrap(), Some(4));
    assert!(matches!(
        sub.wait_readable(None, &mut backoff),
        Err(RecvError::Closed { .. })
    ));
    assert!(sub.publisher_status().closed);
}

#[test]
fn wait_times_out_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let _publisher = Publisher::create("t", &opts(dir.path(), 8, 8)).unwrap();
    let mut sub = Subscriber::attach("t", Some(dir.path()), Start::Latest).unwrap();
    let t0 = Instant::now();
    let res = sub.wait_readable(
        Some(t0 + Duration::from_millis(30)),
        &mut Default::default(),
    );
    assert!(matches!(res, Err(RecvError::Timeout)));
    assert!(t0.elapsed() >= Duration::from_millis(30));
}

#[test]
fn small_buffer_consumes_nothing_and_sizes_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("b", &opts(dir.path(), 8, 16)).unwrap();
    let mut sub = Subscriber::attach("b", Some(dir.path()), Start::Latest).unwrap();
    assert!(matches!(
        publisher.publish(&[0; 17]),
        Err(PublishError::MessageTooLarge {
            len: 17,
            slot_size: 16
        })
    ));
    publisher.publish(&[7; 12]).unwrap();
    let mut small = [0u8; 4];
    assert!(matches!(
        sub.try_recv(&mut small),
        Err(RecvError::BufferTooSmall { len: 4, needed: 12 })
    ));
    let mut buf = [0u8; 16];
    assert_eq!(sub.try_recv(&mut buf).unwrap(), Some(12));

    let mut fixed = opts(dir.path(), 8, 16);
    fixed.fixed_size = true;
    let mut typed = Publisher::create("f", &fixed).unwrap();
    assert!(matches!(
        typed.publish(&[0; 12]),
        Err(PublishError::Argument(
            ArgumentError::RecordSizeMismatch { .. }
        ))
    ));
    typed
        .publish_records(&[1; 48], Patience::forever())
        .unwrap();
    let mut tsub = Subscriber::attach("f", Some(dir.path()), Start::Oldest).unwrap();
    let mut rows = [0u8; 64];
    let mut lens = vec![];
    assert_eq!(
        tsub.try_recv_rows(&mut rows, 16, 4, |_, l| lens.push(l))
            .unwrap(),
        3
    );
    assert_eq!(lens, vec![16, 16, 16]);
}

#[test]
fn subscriber_table_fills_and_frees() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), 8, 8);
    o.max_subscribers = Some(2);
    let _publisher = Publisher::create("s", &o).unwrap();
    let d = Some(dir.path());
    let a = Subscriber::attach("s", d, Start::Latest).unwrap();
    let _b = Subscriber::attach("s", d, Start::Latest).unwrap();
    let err = Subscriber::attach("s", d, Start::Latest).err().unwrap();
    assert!(
        matches!(
            err,
            OpenError::SubscriberTableFull {
                max_subscribers: 2,
                ..
            }
        ),
        "{err}"
    );
    drop(a);
    Subscriber::attach("s", d, Start::Latest).unwrap();
}

#[test]
fn damaged_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = Publisher::create("d", &opts(dir.path(), 8, 8)).unwrap();
    let path = publisher.path().to_owned();
    drop(publisher);
    let good = std::fs::read(&path).unwrap();
    let d = Some(dir.path());
    let attach = || {
        Subscriber::attach("d", d, Start::Latest)
            .err()
            .expect("must be refused")
    };

    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    assert!(matches!(
        attach(),
        OpenError::Fault(RingFault::Corrupt { .. })
    ));
    std::fs::write(&path, &good[..100]).unwrap();
    assert!(matches!(
        attach(),
        OpenError::Fault(RingFault::Corrupt { .. })
    ));
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(
        attach(),
        OpenError::Fault(RingFault::Corrupt { .. })
    ));

    let mut bad = good.clone();
    bad[8] = 99; // version
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(
        attach(),
        OpenError::IncompatibleVersion { found: 99, .. }
    ));

    let mut bad = good.clone();
    bad[16] ^= 1; // capacity
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(
        attach(),
        OpenError::Fault(RingFault::Corrupt { .. })
    ));

    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random = good.clone();
    for b in random.iter_mut().take(4096) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = state as u8;
    }
    std::fs::write(&path, &random).unwrap();
    assert!(matches!(
        attach(),
        OpenError::Fault(RingFault::Corrupt { .. })
    ));
}

#[test]
fn names_are_validated_and_missing_rings_list_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let _p = Publisher::create("here", &opts(dir.path(), 8, 8)).unwrap();
    for bad in ["", "../x", "a\0b"] {
        assert!(matches!(
            Subscriber::attach(bad, Some(dir.path()), Start::Latest),
            Err(OpenError::Argument(ArgumentError::InvalidName { .. }))
        ));
    }
    let err = Subscriber::attach("there", Some(dir.path()), Start::Latest)
        .err()
        .unwrap();
    assert!(err.to_string().contains("rings there: here"), "{err}");
}

/// One publisher thread, two reader threads, checksummed messages: no reader
/// ever accepts a torn message, order holds, and loss accounting is exact.
#[test]
fn concurrent_readers_never_see_torn_messages() {
    const N: u64 = 300_000;
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("x", &opts(dir.path(), 64, 64)).unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut sub = Subscriber::attach("x", Some(dir.path()), Start::Oldest).unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                let mut last = None;
                let mut backoff = ringcast_core::Waiter::default();
                loop {
                    match sub.try_recv(&mut buf).unwrap() {
                        Some(n) => {
                            assert_eq!(n, 64);
                            let words: Vec<u64> = buf
                                .chunks_exact(8)
                                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                                .collect();
                            let seq = words[0];
                            assert!(
                                words[1..]
                                    .iter()
                                    .all(|&w| w == seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                                "torn message {seq}"
                            );
                            assert_eq!(seq, sub.position() - 1);
                            assert!(last.is_none_or(|l| seq > l));
                            last = Some(seq);
                        }
                        None => match sub.wait_readable(None, &mut backoff) {
                            Ok(()) => {}
                            Err(RecvError::Closed { .. }) => break,
                            Err(e) => panic!("{e}"),
                        },
                    }
                }
                assert_eq!(sub.received() + sub.lost(), N);
                (sub.received(), sub.lost())
            })
        })
        .collect();
    for seq in 0..N {
        let mut msg = [0u8; 64];
        msg[..8].copy_from_slice(&seq.to_le_bytes());
        for w in msg[8..].chunks_exact_mut(8) {
            w.copy_from_slice(&seq.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        }
        publisher.publish(&msg).unwrap();
    }
    publisher.close();
    for r in readers {
        let (received, lost) = r.join().unwrap();
        eprintln!("reader: received {received} lost {lost}");
    }
}

/// A parked reader is woken for every burst, whatever the gaps, and the
/// waiter count goes back to zero (so the publisher stops making syscalls).
#[test]
fn parked_reader_wakes_for_every_burst() {
    use ringcast_core::{WaitStrategy, Waiter};
    const N: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("park", &opts(dir.path(), 1 << 15, 8)).unwrap();
    let mut sub = Subscriber::attach("park", Some(dir.path()), Start::Oldest).unwrap();
    let reader = std::thread::spawn(move || {
        let mut waiter = Waiter::new(WaitStrategy::Park);
        let mut buf = [0u8; 8];
        let mut expected = 0u64;
        loop {
            match sub.try_recv(&mut buf).unwrap() {
                Some(_) => {
                    assert_eq!(u64::from_le_bytes(buf), expected);
                    expected += 1;
                }
                None => match sub.wait_readable(None, &mut waiter) {
                    Ok(()) => {}
                    Err(RecvError::Closed { .. }) => break,
                    Err(e) => panic!("{e}"),
                },
            }
        }
        (expected, sub.lost())
    });
    let mut seed = 12345u64;
    let mut seq = 0;
    while seq < N {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let burst = 1 + (seed >> 33) % 50;
        for _ in 0..burst.min(N - seq) {
            publisher.publish(&seq.to_le_bytes()).unwrap();
            seq += 1;
        }
        if seed % 7 == 0 {
            std::thread::sleep(Duration::from_micros(200 + (seed >> 40) % 500));
        }
    }
    publisher.close();
    assert_eq!(reader.join().unwrap(), (N, 0));
}

#[test]
fn readiness_fd_signals_when_armed_and_data_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("ready", &opts(dir.path(), 8, 8)).unwrap();
    let mut sub = Subscriber::attach("ready", Some(dir.path()), Start::Latest).unwrap();
    let fd = sub.readiness_fd().unwrap();
    let readable = |ms: i32| {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, ms) == 1 }
    };
    sub.arm_readiness().unwrap();
    assert!(!readable(50), "signalled with nothing to read");
    publisher.publish(b"x").unwrap();
    assert!(readable(2000), "not signalled after a publish");
    sub.clear_readiness();
    assert!(!readable(0), "still readable after clear");
    // Armed while a message is already waiting: signalled at once.
    sub.arm_readiness().unwrap();
    assert!(readable(2000));
    sub.clear_readiness();
    let mut buf = [0u8; 8];
    assert_eq!(sub.try_recv(&mut buf).unwrap(), Some(1));
    // The end of the stream also signals.
    sub.arm_readiness().unwrap();
    publisher.close();
    assert!(readable(2000), "not signalled at the end of the stream");
    assert!(sub.ended());
}

/// A publisher that died between Commit and Advance left its last message
/// complete but the cursor behind: the next publisher counts that message
/// (subscribers get it exactly once) and continues after it.
#[test]
fn take_over_counts_a_message_committed_but_not_advanced() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path(), 8, 8);
    let mut publisher = Publisher::create("crash", &o).unwrap();
    for i in 0u64..3 {
        publisher.publish(&i.to_le_bytes()).unwrap();
    }
    let layout = publisher.layout().clone();
    let path = publisher.path().to_owned();
    drop(publisher);
    // What the dying publisher wrote for message 3: stamp, length, payload.
    let head = layout.heads_offset() + 3 * layout.head_stride() as u64;
    let payload = (layout.header_len() + 3 * layout.slot_stride() + layout.slot_overhead()) as u64;
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&(2 * 3 + 2u64).to_le_bytes(), head)
        .unwrap();
    file.write_all_at(&8u64.to_le_bytes(), head + 8).unwrap();
    file.write_all_at(&3u64.to_le_bytes(), payload).unwrap();
    o.exist_ok = true;
    let mut next = Publisher::create("crash", &o).unwrap();
    assert_eq!(next.sequence(), 4);
    next.publish(&4u64.to_le_bytes()).unwrap();
    let mut sub = Subscriber::attach("crash", Some(dir.path()), Start::Oldest).unwrap();
    let mut buf = [0u8; 8];
    let got: Vec<u64> = recv_all(&mut sub, &mut buf)
        .iter()
        .map(|m| u64::from_le_bytes(m[..].try_into().unwrap()))
        .collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
}

/// One parked wait on three rings wakes for a message on any of them, says
/// which, and reports an ended stream and the deadline like a single wait.
#[test]
fn wait_any_parks_on_every_ring_at_once() {
    use ringcast_core::{wait_any, AnyEnd, WaitStrategy, Waiter};
    let dir = tempfile::tempdir().unwrap();
    let names = ["w0", "w1", "w2"];
    let mut pubs: Vec<Publisher> = names
        .iter()
        .map(|n| Publisher::create(n, &opts(dir.path(), 8, 8)).unwrap())
        .collect();
    let mut subs: Vec<Subscriber> = names
        .iter()
        .map(|n| Subscriber::attach(n, Some(dir.path()), Start::Latest).unwrap())
        .collect();
    let mut handles: Vec<_> = subs.iter().map(Subscriber::wait_handle).collect();
    let mut waiter = Waiter::new(WaitStrategy::Park);
    let soon = || Some(Instant::now() + Duration::from_millis(50));
    assert_eq!(
        wait_any(&handles, soon(), &mut waiter, None, || true).unwrap(),
        AnyEnd::Deadline
    );
    for target in [2, 0, 1] {
        let t0 = Instant::now();
        let late = std::thread::scope(|s| {
            let publisher = &mut pubs[target];
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                publisher.publish(b"x").unwrap();
            });
            wait_any(
                &handles,
                Some(t0 + Duration::from_secs(5)),
                &mut waiter,
                None,
                || true,
            )
        });
        assert_eq!(late.unwrap(), AnyEnd::Ready(target));
        // Woken by the publish, not by the 250 ms safety net of a park.
        assert!(
            t0.elapsed() < Duration::from_millis(200),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(subs[target].try_recv(&mut [0u8; 8]).unwrap(), Some(1));
        handles[target] = subs[target].wait_handle();
    }
    let ended = pubs.pop().unwrap();
    ended.close();
    assert_eq!(
        wait_any(&handles[2..], soon(), &mut waiter, None, || true).unwrap(),
        AnyEnd::Ready(0)
    );
    assert!(matches!(
        handles[2].wait(soon(), &mut waiter, None, || true),
        Err(RecvError::Closed { .. })
    ));
    assert_eq!(
        wait_any(
            &[],
            soon(),
            &mut waiter,
            Some(Duration::from_millis(10)),
            || false
        )
        .unwrap(),
        AnyEnd::Stopped
    );
}

/// A subscriber's declared wait strategy and its parked threads reach
/// `info::inspect` through its record; a new owner of the record starts
/// undeclared.
#[test]
fn declared_wait_and_parked_threads_are_inspected() {
    use ringcast_core::{info, WaitStrategy, Waiter};
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::create("w", &opts(dir.path(), 8, 8)).unwrap();
    let seen = |index: usize| {
        let report = info::inspect("w", Some(dir.path())).unwrap();
        let end = report
            .subscribers
            .iter()
            .find(|e| e.index == index)
            .unwrap();
        (end.wait, end.parked)
    };
    let sub = Subscriber::attach("w", Some(dir.path()), Start::Latest).unwrap();
    assert_eq!(seen(0), (Some("unknown"), 0));
    for (strategy, name) in [
        (WaitStrategy::Park, "park"),
        (WaitStrategy::BusySpin, "spin"),
        (WaitStrategy::Yield, "yield"),
        (WaitStrategy::default(), "adaptive"),
    ] {
        sub.declare_wait(strategy);
        assert_eq!(seen(0), (Some(name), 0));
    }
    sub.declare_wait(WaitStrategy::Park);
    let mut sub = sub;
    let reader = std::thread::spawn(move || {
        let mut waiter = Waiter::new(WaitStrategy::Park);
        sub.wait_readable(None, &mut waiter).unwrap();
        sub
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen(0).1 != 1 {
        assert!(Instant::now() < deadline, "the reader never parked");
        std::thread::sleep(Duration::from_millis(1));
    }
    publisher.publish(b"wake").unwrap();
    let sub = reader.join().unwrap();
    assert_eq!(seen(0), (Some("park"), 0));
    drop(sub);
    let _again = Subscriber::attach("w", Some(dir.path()), Start::Latest).unwrap();
    assert_eq!(seen(0), (Some("unknown"), 0));
    let report = info::inspect("w", Some(dir.path())).unwrap();
    assert!(report.producers.iter().all(|p| p.wait.is_none()));
}

/// What a reader got: `(sequence, payload)` of every message, and its
/// counters at the end.
type Reading = (Vec<(u64, Vec<u8>)>, u64, u64);

/// Message `seq` of [`batch_reads_deliver_what_single_reads_do`]: 1 to 24
/// bytes, each saying which message it belongs to.
fn numbered(seq: u64) -> Vec<u8> {
    let len = 1 + (seq * 7 % 24) as usize;
    (0..len)
        .map(|i| (seq as u8).wrapping_add(i as u8))
        .collect()
}

proptest::proptest! {
    /// A batch read (`try_recv_rows_seq`, whose common stretch reads slot
    /// after slot without the per-message path) delivers exactly what
    /// message-by-message reads (`try_recv`) deliver, laps, losses and
    /// variable lengths included: two subscribers of one lossy 8-slot ring
    /// follow the same interleaving of publishes and reads of up to `max`
    /// messages, one reading each way, and often fall a lap behind.
    #[test]
    fn batch_reads_deliver_what_single_reads_do(
        steps in proptest::collection::vec((0u64..20, 1usize..12), 1..40)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut publisher = Publisher::create("b", &opts(dir.path(), 8, 24)).unwrap();
        let mut batch = Subscriber::attach("b", Some(dir.path()), Start::Oldest).unwrap();
        let mut single = Subscriber::attach("b", Some(dir.path()), Start::Oldest).unwrap();
        let (mut got_batch, mut got_single) = (Vec::new(), Vec::new());
        let mut next_msg = 0u64;
        for (publish, max) in steps {
            for _ in 0..publish {
                publisher.publish(&numbered(next_msg)).unwrap();
                next_msg += 1;
            }
            let mut rows = vec![0u8; 24 * max];
            let mut seqs = vec![0u64; max];
            let mut lens = vec![0usize; max];
            let n = batch
                .try_recv_rows_seq(&mut rows, 24, &mut seqs, |i, len| lens[i] = len)
                .unwrap();
            for i in 0..n {
                got_batch.push((seqs[i], rows[i * 24..i * 24 + lens[i]].to_vec()));
            }
            let mut buf = [0u8; 24];
            for _ in 0..max {
                let Some(len) = single.try_recv(&mut buf).unwrap() else {
                    break;
                };
                // A lap skips before the message read, never after it.
                got_single.push((single.position() - 1, buf[..len].to_vec()));
            }
        }
        let batch_reading: Reading = (got_batch, batch.received(), batch.lost());
        let single_reading: Reading = (got_single, single.received(), single.lost());
        proptest::prop_assert_eq!(&batch_reading, &single_reading);
        for (seq, payload) in &batch_reading.0 {
            proptest::prop_assert_eq!(payload, &numbered(*seq));
        }
        proptest::prop_assert_eq!(batch.received() + batch.lost(), batch.position());
    }
}
