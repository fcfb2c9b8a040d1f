//! Loom model checks of the publish/read protocol (run with `--cfg loom`):
//! every interleaving and every weak-memory outcome loom can produce of a
//! publisher lapping a small ring while readers copy out of it.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ringcast-core --test loom_protocol --release`
#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;
use ringcast_core::protocol::{self, ReadFault, ReaderPosition, SlotRef, Slots};

/// An in-process ring of loom atomics with the shared ring's slot shape.
struct TestRing {
    cursor: AtomicU64,
    stamps: Vec<AtomicU64>,
    lens: Vec<AtomicU64>,
    /// Publish-time words: checked like payload (`seq + 1` for message `seq`).
    times: Vec<AtomicU64>,
    words: Vec<Vec<AtomicU64>>,
    /// Test instrumentation: writers inside each slot right now.
    inside: Vec<AtomicU64>,
}

const WORDS: usize = 2;

impl TestRing {
    fn new(capacity: usize) -> Self {
        Self {
            cursor: AtomicU64::new(0),
            stamps: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            lens: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            times: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            words: (0..capacity)
                .map(|_| (0..WORDS).map(|_| AtomicU64::new(0)).collect())
                .collect(),
            inside: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Slots for TestRing {
    fn capacity(&self) -> u64 {
        self.stamps.len() as u64
    }
    fn slot(&self, seq: u64) -> SlotRef<'_> {
        let i = (seq % self.capacity()) as usize;
        SlotRef {
            stamp: &self.stamps[i],
            len: &self.lens[i],
            time: Some(&self.times[i]),
            words: &self.words[i],
            max_len: WORDS * 8,
            exact: false,
        }
    }
    fn cursor(&self) -> &AtomicU64 {
        &self.cursor
    }
}

/// Message `seq`: every word says `seq + 1`, so a torn copy shows two values.
fn message(seq: u64) -> [u8; WORDS * 8] {
    let mut m = [0u8; WORDS * 8];
    for w in m.chunks_exact_mut(8) {
        w.copy_from_slice(&(seq + 1).to_ne_bytes());
    }
    m
}

fn words_of(buf: &[u8]) -> Vec<u64> {
    buf.chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

/// A reader making `attempts` polls; checks each accepted message is whole,
/// in order, and that the accounting identity holds throughout.
fn reader(
    ring: &TestRing,
    attempts: usize,
    read: fn(&TestRing, &mut ReaderPosition, &mut [u8]) -> Option<usize>,
) {
    let mut pos = ReaderPosition::starting_at(0);
    let mut last: Option<u64> = None;
    for _ in 0..attempts {
        let mut buf = [0u8; WORDS * 8];
        if let Some(n) = read(ring, &mut pos, &mut buf) {
            assert_eq!(n, WORDS * 8);
            let seq = pos.next - 1;
            let w = words_of(&buf);
            assert!(
                w.iter().all(|&x| x == seq + 1),
                "torn or wrong message {w:?} accepted as seq {seq}"
            );
            assert_eq!(pos.time, seq + 1, "publish time of another message");
            assert!(last.is_none_or(|l| seq > l), "sequence went backwards");
            last = Some(seq);
        } else {
            thread::yield_now();
        }
        assert_eq!(pos.received + pos.lost, pos.next - pos.start);
    }
}

fn real_read(ring: &TestRing, pos: &mut ReaderPosition, buf: &mut [u8]) -> Option<usize> {
    real_read_below(ring, pos, buf, u64::MAX)
}

fn real_read_below(
    ring: &TestRing,
    pos: &mut ReaderPosition,
    buf: &mut [u8],
    limit: u64,
) -> Option<usize> {
    match protocol::try_read_below(ring, pos, buf, limit) {
        Ok(got) => got,
        // The single producer's odd stamp may be seen before the cursor
        // that covers it (it is a relaxed store): not yet, retried.
        Err(ReadFault::Unverified { .. }) => None,
        Err(fault) => panic!("no other fault is possible here: {fault:?}"),
    }
}

fn publisher(ring: &TestRing, messages: u64) {
    for seq in 0..messages {
        protocol::publish(ring, seq, &message(seq), seq + 1);
    }
}

#[test]
fn one_reader_lapped_by_publisher() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let ring = Arc::new(TestRing::new(2));
        let r = ring.clone();
        let reader_thread = thread::spawn(move || reader(&r, 3, real_read));
        publisher(&ring, 3);
        reader_thread.join().unwrap();
    });
}

#[test]
fn two_readers() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let ring = Arc::new(TestRing::new(2));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let r = ring.clone();
                thread::spawn(move || reader(&r, 1, real_read))
            })
            .collect();
        publisher(&ring, 3);
        for t in readers {
            t.join().unwrap();
        }
    });
}

/// Teeth: a reader that trusts its first stamp load and skips the recheck
/// accepts torn messages, and loom must find that interleaving.
#[test]
fn reader_without_recheck_is_caught() {
    fn broken_read(ring: &TestRing, pos: &mut ReaderPosition, buf: &mut [u8]) -> Option<usize> {
        let slot = ring.slot(pos.next);
        if slot.stamp.load(Ordering::Acquire) != ringcast_core::protocol::stamp::complete(pos.next)
        {
            return None;
        }
        ringcast_core::protocol::copy::load_bytes(slot.words, buf);
        pos.next += 1;
        pos.received += 1;
        Some(buf.len())
    }
    let found = std::panic::catch_unwind(|| {
        loom::model(|| {
            let ring = Arc::new(TestRing::new(2));
            let r = ring.clone();
            let reader_thread = thread::spawn(move || reader(&r, 2, broken_read));
            publisher(&ring, 3);
            reader_thread.join().unwrap();
        })
    });
    assert!(
        found.is_err(),
        "loom did not find the torn read of a reader without recheck"
    );
}

/// The single producer publishes message 0, declares `lost` sequences
/// lost, then publishes one more message, while a reader polls
/// concurrently; the reader then drains what is left. The reader never
/// faults (a lost stamp the cursor does not cover would be `Damaged`),
/// never delivers a declared sequence, and counts every sequence it
/// passed: delivered or lost, exactly.
fn reader_during_publish_lost(lost: u64, attempts: usize, declare: fn(&TestRing, u64, u64)) {
    let ring = Arc::new(TestRing::new(2));
    let r = ring.clone();
    let reader_thread = thread::spawn(move || {
        let mut pos = ReaderPosition::starting_at(0);
        let mut delivered = Vec::new();
        for _ in 0..attempts {
            let mut buf = [0u8; WORDS * 8];
            match real_read(&r, &mut pos, &mut buf) {
                Some(_) => {
                    let seq = pos.next - 1;
                    assert!(words_of(&buf).iter().all(|&x| x == seq + 1), "torn {seq}");
                    delivered.push(seq);
                }
                None => thread::yield_now(),
            }
            assert_eq!(pos.received + pos.lost, pos.next - pos.start);
        }
        (pos, delivered)
    });
    protocol::publish(&*ring, 0, &message(0), 1);
    declare(&ring, 1, lost);
    let last = 1 + lost;
    protocol::publish(&*ring, last, &message(last), last + 1);
    let (mut pos, mut delivered) = reader_thread.join().unwrap();
    let mut buf = [0u8; WORDS * 8];
    while pos.next < last + 1 {
        if real_read(&ring, &mut pos, &mut buf).is_some() {
            let seq = pos.next - 1;
            assert!(words_of(&buf).iter().all(|&x| x == seq + 1), "torn {seq}");
            delivered.push(seq);
        }
    }
    assert_eq!(pos.next, last + 1);
    assert!(
        delivered.iter().all(|s| !(1..last).contains(s)),
        "a sequence declared lost was delivered: {delivered:?}"
    );
    assert!(delivered.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(pos.received, delivered.len() as u64);
    assert_eq!(pos.received + pos.lost, last + 1);
    // Nothing else overwrote the last message: it is always delivered.
    assert_eq!(delivered.last(), Some(&last));
}

#[test]
fn reader_during_publish_lost_counts_exactly() {
    for lost in [1, 2] {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || reader_during_publish_lost(lost, 3, protocol::publish_lost));
    }
}

/// More sequences declared than the ring has slots: only the last
/// `capacity` are stamped, and a reader in the unstamped stretch resyncs.
#[test]
fn reader_during_publish_lost_past_a_lap() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| reader_during_publish_lost(5, 3, protocol::publish_lost));
}

/// Teeth: declaring with the lost stamps stored before the cursor lets a
/// reader see a lost stamp the cursor does not cover (it reports the ring
/// damaged), and loom must find that interleaving.
#[test]
fn publish_lost_stamping_before_the_cursor_is_caught() {
    fn stamps_first(ring: &TestRing, first: u64, n: u64) {
        for seq in first..first + n {
            ring.slot(seq)
                .stamp
                .store(ringcast_core::protocol::stamp::lost(seq), Ordering::Release);
        }
        ring.cursor().store(first + n, Ordering::Release);
    }
    let found = std::panic::catch_unwind(|| {
        loom::model(|| reader_during_publish_lost(1, 2, stamps_first));
    });
    assert!(
        found.is_err(),
        "loom did not find a reader seeing a lost stamp beyond the cursor"
    );
}

/// A multi-producer writer: `Claim` one sequence at a time, optionally
/// `WaitPreviousLap`, then write; asserts it is alone in the slot.
fn producer(ring: &TestRing, messages: u64, wait_previous_lap: bool) {
    for _ in 0..messages {
        let seq = protocol::claim(ring, 1);
        let entered = if wait_previous_lap {
            loop {
                match protocol::try_enter(ring, seq) {
                    Some(entered) => break entered,
                    None => thread::yield_now(),
                }
            }
        } else {
            protocol::begin(ring.slot(seq), seq)
        };
        let i = (seq % ring.capacity()) as usize;
        let others = ring.inside[i].fetch_add(1, Ordering::AcqRel);
        assert_eq!(others, 0, "two writers inside the slot of seq {seq}");
        entered.write_payload(&message(seq), seq + 1);
        // Out before the commit: the next lap may enter right after it.
        ring.inside[i].fetch_sub(1, Ordering::AcqRel);
        entered.commit();
    }
}

/// A reader of a multi-producer ring: messages arrive in sequence order,
/// whole, and the accounting identity holds (lapping may skip some).
fn mp_reader(ring: &TestRing, attempts: usize) {
    reader(ring, attempts, real_read)
}

fn two_producers(readers: usize, attempts: usize, preemptions: usize, wait_previous_lap: bool) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(move || {
        let ring = Arc::new(TestRing::new(2));
        let mut threads: Vec<_> = (0..readers)
            .map(|_| {
                let r = ring.clone();
                thread::spawn(move || mp_reader(&r, attempts))
            })
            .collect();
        let p = ring.clone();
        threads.push(thread::spawn(move || producer(&p, 2, wait_previous_lap)));
        producer(&ring, 1, wait_previous_lap);
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// Two producers (3 messages, so one slot is reused) and a reader.
#[test]
fn two_producers_one_reader() {
    two_producers(1, 2, 3, true);
}

/// Two producers and two readers polling once each (the state space grows fast).
#[test]
fn two_producers_two_readers() {
    two_producers(2, 1, 1, true);
}

/// Teeth: producers that do not wait for the previous lap of their slot end
/// up two in one slot, and loom must find that interleaving.
#[test]
fn producer_without_lap_wait_is_caught() {
    let found = std::panic::catch_unwind(|| two_producers(0, 0, 2, false));
    assert!(
        found.is_err(),
        "loom did not find two writers in one slot without the previous-lap wait"
    );
}

/// One survivor's `RecoverAbandoned` of message `seq` once its deadline has
/// passed and the owner's death was established (the producer-table scan is
/// `RingMap`'s, outside this in-process model): declare the lap the slot is
/// stuck on, if it is `seq` or earlier.
fn recover(ring: &TestRing, seq: u64) {
    let slot = ring.slot(seq);
    let observed = slot.stamp.load(Ordering::Acquire);
    if let Some(stuck) =
        ringcast_core::protocol::stamp::blocking_lap(observed, seq, ring.capacity())
    {
        if stuck <= seq {
            protocol::declare_lost(slot, stuck, observed);
        }
    }
}

/// The interleaving the TLA+ model (tla/MpmcRing.tla) found: the producer of
/// seq 0 died before entering its slot; the producer of seq 2 (same slot)
/// and a reader stuck at seq 0 both declare seq 0 lost while the producer of
/// seq 2 enters and writes. When declaring meant "store writing(0), store
/// the lost length, store complete(0)", the reader's compare-exchange
/// writing(0) -> writing(0) also succeeded, so two declarers were inside and
/// a late one overwrote seq 2's length and moved the stamp back. Declaring
/// is now one compare-exchange to the lost stamp: seq 2 survives intact and
/// the reader skips exactly seq 0 as lost.
#[test]
fn two_survivors_declare_while_next_lap_enters() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let ring = Arc::new(TestRing::new(2));
        // Seqs 0..3 claimed; seq 1 committed; seq 0's producer is dead.
        ring.cursor.store(3, Ordering::Relaxed);
        protocol::write_slot(ring.slot(1), 1, &message(1), 2);
        let r = ring.clone();
        let stuck_reader = thread::spawn(move || recover(&r, 0));
        // The producer of seq 2: enter_slow recovers the earlier lap.
        let entered = loop {
            match protocol::try_enter(&*ring, 2) {
                Some(entered) => break entered,
                None => {
                    recover(&ring, 0);
                    thread::yield_now();
                }
            }
        };
        entered.finish(&message(2), 3);
        stuck_reader.join().unwrap();

        let slot = ring.slot(2);
        assert_eq!(
            slot.stamp.load(Ordering::Acquire),
            ringcast_core::protocol::stamp::complete(2)
        );
        assert_eq!(slot.len.load(Ordering::Relaxed), (WORDS * 8) as u64);
        let mut pos = ReaderPosition::starting_at(0);
        let mut buf = [0u8; WORDS * 8];
        // Seq 0's slot now holds seq 2: a reader at 0 resyncs past 0 and 1
        // (counted lost) and reads seq 2 whole.
        let got = protocol::try_read(&*ring, &mut pos, &mut buf).unwrap();
        assert_eq!(got, Some(WORDS * 8));
        assert_eq!(pos.next, 3);
        assert!(words_of(&buf).iter().all(|&w| w == 3));
        assert_eq!(pos.received + pos.lost, 3);
    });
}

/// Gating (the dependency barrier): stage B reads each message, does its work
/// (here: marks the message handled) and commits its progress; reader D,
/// gated after B, reads only below B's progress. Every message D reads must
/// be one B handled, with B's work visible to D. `commit` is how B publishes
/// its progress: the real one, or a broken one for the teeth test below.
fn stage_b(
    ring: &TestRing,
    handled: &[AtomicU64],
    progress: &AtomicU64,
    commit: fn(&AtomicU64, u64),
) {
    let mut pos = ReaderPosition::starting_at(0);
    let mut buf = [0u8; WORDS * 8];
    for _ in 0..3 {
        if real_read(ring, &mut pos, &mut buf).is_some() {
            handled[(pos.next - 1) as usize].store(1, Ordering::Relaxed);
            commit(progress, pos.next);
        } else {
            thread::yield_now();
        }
    }
}

fn gated_d(ring: &TestRing, handled: &[AtomicU64], progress: &AtomicU64) {
    let mut pos = ReaderPosition::starting_at(0);
    let mut buf = [0u8; WORDS * 8];
    for _ in 0..3 {
        let limit = protocol::load_progress(progress);
        match real_read_below(ring, &mut pos, &mut buf, limit) {
            Some(_) => {
                let seq = pos.next - 1;
                assert!(seq < limit, "read {seq} beyond the gate at {limit}");
                assert_eq!(
                    handled[seq as usize].load(Ordering::Relaxed),
                    1,
                    "gated reader saw message {seq} before the stage's work on it"
                );
            }
            None => thread::yield_now(),
        }
    }
}

fn diamond_edge(commit: fn(&AtomicU64, u64)) {
    let ring = Arc::new(TestRing::new(4));
    let handled: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());
    let progress = Arc::new(AtomicU64::new(0));
    let (r, h, p) = (ring.clone(), handled.clone(), progress.clone());
    let b = thread::spawn(move || stage_b(&r, &h, &p, commit));
    let (r, h, p) = (ring.clone(), handled.clone(), progress.clone());
    let d = thread::spawn(move || gated_d(&r, &h, &p));
    publisher(&ring, 2);
    b.join().unwrap();
    d.join().unwrap();
}

#[test]
fn gated_reader_sees_the_stage_work() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| diamond_edge(protocol::commit_progress));
}

/// Teeth: a stage that publishes its progress without release ordering lets
/// the gated reader run ahead of the stage's work, and loom must find it.
#[test]
fn stage_commit_without_release_is_caught() {
    fn relaxed_commit(progress: &AtomicU64, next: u64) {
        progress.store(next, Ordering::Relaxed);
    }
    let found = std::panic::catch_unwind(|| {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| diamond_edge(relaxed_commit));
    });
    assert!(
        found.is_err(),
        "loom did not find the gated read overtaking a relaxed commit"
    );
}
