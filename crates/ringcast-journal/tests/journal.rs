//! The journal end to end: writing, rolling, reopening, seeking, damage
//! accounting, and recording and replaying real rings.

use ringcast_core::{Publisher, Start, Subscriber};
use ringcast_journal::format::{self, HEADER_LEN};
use ringcast_journal::reader::Item;
use ringcast_journal::{
    record, replay, verify, Body, Bound, Fsync, Journal, JournalError, JournalWriter,
    RecordOptions, ReplayOptions, RingDescription, Why, WriterOptions,
};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn ring() -> RingDescription {
    RingDescription {
        name: "quotes".into(),
        slot_size: 16,
        flags: ringcast_core::format::layout::FLAG_TIMESTAMPS,
        capacity: 64,
        schema: Vec::new(),
    }
}

fn payload(seq: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&seq.to_le_bytes());
    b[8..].copy_from_slice(&seq.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    b
}

/// A writer rolling every 10 entries.
fn small_segments() -> WriterOptions {
    WriterOptions {
        segment_bytes: (HEADER_LEN + 10 * format::stride(16)) as u64,
        fsync: Fsync::Never,
        ..WriterOptions::default()
    }
}

/// Every item of the journal in `dir`.
fn items(dir: &Path) -> Vec<String> {
    let journal = Journal::open(dir).unwrap();
    journal
        .read(journal.start())
        .map(|item| match item {
            Item::Entry(e) => match e.body {
                Body::Message(p) => {
                    assert_eq!(p, payload(e.seq));
                    format!("m{}", e.seq)
                }
                Body::Gap(n) => format!("g{}+{n}", e.seq),
            },
            Item::Unreadable(u) => format!("u{}..{:?}", u.from_seq, u.to_seq),
        })
        .collect()
}

fn write(dir: &Path, seqs: impl IntoIterator<Item = u64>) {
    let (mut w, _) = JournalWriter::open(dir, &ring(), small_segments()).unwrap();
    for seq in seqs {
        w.append(seq, 1000 + seq, &payload(seq)).unwrap();
    }
    w.close().unwrap();
}

#[test]
fn entries_roll_into_segments_and_gaps_are_written_for_every_jump() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), (5..30).chain(40..45));
    let got = items(dir.path());
    let want: Vec<String> = (5..30)
        .map(|s| format!("m{s}"))
        .chain(["g30+10".to_owned()])
        .chain((40..45).map(|s| format!("m{s}")))
        .collect();
    assert_eq!(got, want);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.segments().len(), 4);
    assert!(journal.segments().iter().all(|s| s.seal.is_some()));
    let report = verify(dir.path()).unwrap();
    assert!(report.intact(), "{report:?}");
    assert_eq!((report.messages, report.gaps, report.lost), (30, 1, 10));
    assert_eq!((report.first_seq, report.end_seq), (Some(5), Some(45)));

    // Reopened, it goes on where it stopped; going back is refused.
    let (mut w, recovery) = JournalWriter::open(dir.path(), &ring(), small_segments()).unwrap();
    assert_eq!(recovery.next_seq, Some(45));
    assert!(recovery.segment.is_none());
    assert!(matches!(
        w.append(44, 0, &payload(44)),
        Err(JournalError::OutOfOrder {
            seq: 44,
            expected: 45
        })
    ));
    w.append(45, 1045, &payload(45)).unwrap();
    w.close().unwrap();
    assert_eq!(items(dir.path()).last().unwrap(), "m45");
}

#[test]
fn seeks_by_sequence_and_time_land_on_the_first_entry_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), (0..20).chain(25..60));
    let journal = Journal::open(dir.path()).unwrap();
    let first_at = |pos| match journal.read(pos).next() {
        Some(Item::Entry(e)) => (e.seq, matches!(e.body, Body::Gap(_))),
        other => panic!("{other:?}"),
    };
    assert_eq!(first_at(journal.seek_seq(0)), (0, false));
    assert_eq!(first_at(journal.seek_seq(13)), (13, false));
    assert_eq!(first_at(journal.seek_seq(22)), (20, true)); // inside the gap
    assert_eq!(first_at(journal.seek_seq(25)), (25, false));
    assert_eq!(first_at(journal.seek_seq(59)), (59, false));
    assert!(journal.read(journal.seek_seq(60)).next().is_none());
    assert_eq!(first_at(journal.seek_time(1013)), (13, false));
    // The gap before message 25 carries its time: it comes first.
    assert_eq!(first_at(journal.seek_time(1021)), (20, true));
    assert!(journal.read(journal.seek_time(5000)).next().is_none());
}

#[test]
fn a_second_writer_a_clashing_ring_and_a_missing_journal_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _) = JournalWriter::open(dir.path(), &ring(), small_segments()).unwrap();
    let err = JournalWriter::open(dir.path(), &ring(), small_segments())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("is being written by process"),
        "{err}"
    );
    drop(w);
    write(dir.path(), 0..3);
    let mut other = ring();
    other.slot_size = 32;
    let err = JournalWriter::open(dir.path(), &other, small_segments())
        .err()
        .unwrap();
    assert!(err.to_string().contains("32-byte slots"), "{err}");
    let err = Journal::open(dir.path().join("nope")).err().unwrap();
    assert!(err.to_string().contains("not a ringcast journal"), "{err}");
}

/// The path of the `k`th segment of the journal in `dir`.
fn segment(dir: &Path, k: usize) -> std::path::PathBuf {
    Journal::open(dir).unwrap().segments()[k].path.clone()
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn damage_is_reported_exactly_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 0..40);
    let stride = format::stride(16);
    // One entry's payload (seq 13: segment 1, entry 3).
    flip(&segment(dir.path(), 1), HEADER_LEN + 3 * stride + 30);
    // The last two entries of segment 2 (seqs 28, 29).
    flip(&segment(dir.path(), 2), HEADER_LEN + 8 * stride + 9);
    flip(&segment(dir.path(), 2), HEADER_LEN + 9 * stride + 1);
    let got = items(dir.path());
    assert!(got.contains(&"u13..Some(14)".to_owned()), "{got:?}");
    assert!(got.contains(&"u28..Some(30)".to_owned()), "{got:?}");
    assert_eq!(got.len(), 40 - 3 + 2);
    let report = verify(dir.path()).unwrap();
    assert!(!report.intact());
    assert_eq!(report.damaged, 3);
    assert_eq!(report.unreadable_messages(), 3);
    assert_eq!(report.messages, 37);

    // A ruined header: the whole segment is unreadable, its range exact.
    flip(&segment(dir.path(), 3), 100);
    let report = verify(dir.path()).unwrap();
    assert!(report.segments[3].header_problem.is_some());
    let last = report.unreadable.last().unwrap();
    assert_eq!((last.from_seq, last.to_seq), (30, None));
    assert!(matches!(last.why[0], Why::Unreadable { .. }), "{last:?}");

    // Cut short: a sealed segment missing its last entries.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 0..25);
    let seg = segment(dir.path(), 1);
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - stride as u64 - 5).unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.segments[1].seal_mismatch.is_some(), "{report:?}");
    let u = &report.unreadable[0];
    assert_eq!((u.from_seq, u.to_seq), (18, Some(20)), "{u:?}");
}

#[test]
fn a_torn_tail_is_cut_on_reopening_and_the_journal_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(dir.path(), &ring(), small_segments()).unwrap();
    for seq in 0..15 {
        w.append(seq, 0, &payload(seq)).unwrap();
    }
    w.flush().unwrap();
    // A crash: no seal, and half an entry written after the last whole one.
    std::mem::forget(w);
    let seg = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    let mut torn = vec![0u8; format::stride(16)];
    format::encode_entry(&mut torn, 15, 0, format::Kind::Message, &payload(15));
    bytes.extend_from_slice(&torn[..20]);
    std::fs::write(&seg, &bytes).unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.open);
    assert_eq!(report.segments[1].partial_bytes, 20);
    assert_eq!(report.end_seq, Some(15));
    // (The leaked writer still holds the directory's lock, as a live
    // recorder would: `a_crashed_writer_is_repaired_by_the_next` reopens.)
}

#[test]
fn a_crashed_writer_is_repaired_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let stride = format::stride(16);
    write(dir.path(), 0..15);
    // Undo the seal of the last segment and tear its tail, as a crash would.
    let seg = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[format::SEAL_AT..HEADER_LEN].fill(0);
    let mut torn = vec![0u8; stride];
    format::encode_entry(&mut torn, 15, 0, format::Kind::Message, &payload(15));
    torn[30] ^= 1; // a whole entry with a bad CRC
    bytes.extend_from_slice(&torn);
    bytes.extend_from_slice(&torn[..7]);
    std::fs::write(&seg, &bytes).unwrap();
    // A reader with the torn segment mapped while the next writer repairs it.
    let before = Journal::open(dir.path()).unwrap();
    let (mut w, recovery) = JournalWriter::open(dir.path(), &ring(), small_segments()).unwrap();
    assert_eq!(recovery.segment.as_deref(), Some(seg.as_path()));
    assert_eq!(
        (
            recovery.kept_entries,
            recovery.cut_entries,
            recovery.cut_bytes
        ),
        (5, 1, 7)
    );
    assert_eq!(recovery.next_seq, Some(15));
    for seq in 15..22 {
        w.append(seq, 1000 + seq, &payload(seq)).unwrap();
    }
    w.close().unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.messages, 22);
    // The repair never shortens the file, so the reader that mapped it
    // before can still touch every byte it saw (a cut would be SIGBUS).
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), bytes.len() as u64);
    assert_eq!(report.segments[1].sealed_off_bytes, stride as u64 + 7);
    assert_eq!(report.segments[1].entries, 5);
    let seen: Vec<u8> = before.segments()[1].data().to_vec();
    assert_eq!(seen.len(), 6 * stride);
    assert!(matches!(
        before.read(before.start()).last(),
        Some(Item::Unreadable(_))
    ));
}

/// A publisher thread writing `n` checksummed messages into ring `name`.
fn publish_in_thread(dir: &Path, name: &str, n: u64, bounded: bool) -> std::thread::JoinHandle<()> {
    let mut b = Publisher::builder(name)
        .dir(dir)
        .capacity(256)
        .slot_size(16)
        .timestamps(true);
    if bounded {
        b = b.bounded(256);
    }
    let mut p = b.create().unwrap();
    std::thread::spawn(move || {
        // Give the recorder time to take its place.
        while p.subscriber_count() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for seq in 0..n {
            p.publish(&payload(seq)).unwrap();
        }
        p.close();
    })
}

#[test]
fn a_bounded_ring_is_recorded_whole_and_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let rings = dir.path().join("rings");
    std::fs::create_dir(&rings).unwrap();
    let journal = dir.path().join("journal");
    // The ring must exist before the recorder: made here, filled by a thread.
    let publisher = publish_in_thread(&rings, "in", 100_000, true);
    let mut opts = RecordOptions::new("in", &journal);
    opts.ring_dir = Some(rings.clone());
    opts.writer = WriterOptions {
        segment_bytes: 256 << 10,
        ..WriterOptions::default()
    };
    let report = record(&opts, &AtomicBool::new(false), |_| {}).unwrap();
    publisher.join().unwrap();
    assert!(report.ended);
    assert_eq!(
        (report.recorded, report.gaps, report.ring_lost),
        (100_000, 0, 0)
    );
    assert!(report.writer.segments > 5);
    let v = verify(&journal).unwrap();
    assert!(v.intact(), "{v:?}");

    // Replayed into a new ring: the same messages, in order.
    let mut sub_opts = ReplayOptions::new(&journal, "out");
    sub_opts.ring_dir = Some(rings.clone());
    sub_opts.subscribers = 1;
    sub_opts.bounded = Some(true);
    let rings2 = rings.clone();
    let reader = std::thread::spawn(move || {
        // Wait for the replay to make the ring, then read it all.
        let mut sub = loop {
            match Subscriber::attach("out", Some(&rings2), Start::Oldest) {
                Ok(sub) => break sub,
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        };
        let mut buf = [0u8; 16];
        let mut next = 0u64;
        let mut waiter = ringcast_core::Waiter::default();
        loop {
            match sub.try_recv(&mut buf).unwrap() {
                Some(_) => {
                    assert_eq!(buf, payload(next));
                    next += 1;
                }
                None if sub.ended() => break,
                None => {
                    let _ = sub.wait_readable(
                        Some(std::time::Instant::now() + Duration::from_millis(50)),
                        &mut waiter,
                    );
                }
            }
        }
        (next, sub.lost())
    });
    let r = replay(&sub_opts, &AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(r.published, 100_000);
    assert_eq!(
        (r.first_seq, r.end_seq, r.ring_first_seq),
        (Some(0), Some(100_000), Some(0))
    );
    assert_eq!(reader.join().unwrap(), (100_000, 0));

    // A part of it, by sequence.
    let mut part = ReplayOptions::new(&journal, "part");
    part.ring_dir = Some(rings.clone());
    part.from = Some(Bound::Seq(500));
    part.until = Some(Bound::Seq(1500));
    let r = replay(&part, &AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(
        (r.published, r.first_seq, r.end_seq),
        (1000, Some(500), Some(1500))
    );
}

#[test]
fn a_time_seek_over_a_gap_and_a_sequence_read_into_a_hole_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let one_segment = WriterOptions {
        fsync: Fsync::Never,
        ..WriterOptions::default()
    };
    let (mut w, _) = JournalWriter::open(dir.path(), &ring(), one_segment).unwrap();
    for seq in (0..10).chain(11..21) {
        w.append(seq, 1000 + seq, &payload(seq)).unwrap();
    }
    w.close().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let first = |items: &mut ringcast_journal::reader::Entries<'_>| match items.next() {
        Some(Item::Entry(e)) => e.seq,
        other => panic!("{other:?}"),
    };
    // The binary search meets the gap entry (seq 10, carrying message 11's
    // time) first: it must still land on message 2.
    assert_eq!(first(&mut journal.read(journal.seek_time(1002))), 2);
    assert_eq!(first(&mut journal.read(journal.seek_time(1010))), 10); // the gap

    // A removed segment: a read from a sequence inside it reports the hole.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 0..25);
    std::fs::remove_file(segment(dir.path(), 1)).unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let mut items = journal.read_from_seq(13, true);
    match items.next() {
        Some(Item::Unreadable(u)) => {
            assert_eq!((u.from_seq, u.to_seq), (13, Some(20)));
            assert_eq!(u.why, vec![Why::Missing]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(first(&mut items), 20);
    // From before the journal's start: nothing is missing there.
    let mut items = journal.read_from_seq(0, true);
    assert_eq!(first(&mut items), 0);
}

#[test]
fn bad_writes_and_options_say_what_to_do_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, _) = JournalWriter::open(dir.path(), &ring(), small_segments()).unwrap();
    let err = w.append(0, 0, &[0u8; 17]).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::TooLong {
                len: 17,
                slot_size: 16
            }
        ),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("does not fit the journal's 16-byte entries"));
    assert_eq!(w.next_seq(), None);
    w.close().unwrap();

    let tiny = WriterOptions {
        segment_bytes: 4096,
        ..WriterOptions::default()
    };
    let err = JournalWriter::open(dir.path().join("t"), &ring(), tiny)
        .err()
        .unwrap();
    assert!(err.to_string().contains("give at least"), "{err}");
    let zero = WriterOptions {
        fsync: Fsync::Interval(Duration::ZERO),
        ..WriterOptions::default()
    };
    let err = JournalWriter::open(dir.path().join("z"), &ring(), zero)
        .err()
        .unwrap();
    assert!(err.to_string().contains("use fsync=always"), "{err}");
    assert!(!dir.path().join("t").exists() && !dir.path().join("z").exists());

    // A ring of the same name re-made without publish times.
    write(dir.path(), 0..3);
    let mut other = ring();
    other.flags = 0;
    let err = JournalWriter::open(dir.path(), &other, small_segments())
        .err()
        .unwrap();
    assert!(err.to_string().contains("without publish times"), "{err}");

    // A last segment whose header is ruined is never written over.
    flip(&segment(dir.path(), 0), 100);
    let err = JournalWriter::open(dir.path(), &ring(), small_segments())
        .err()
        .unwrap();
    assert!(err.to_string().contains("move the file aside"), "{err}");
}
