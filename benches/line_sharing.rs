//! What a thread on the other CPU does to a publisher: its cost per message
//! (64-byte messages by default, lossy ring of 4096 slots) while the other
//! CPU sleeps, spins on nothing, computes, loads the ring's lines (the
//! cursor, the stamp of each slot behind the cursor, whole slots behind the
//! cursor, or the next slot's stamp, as a caught-up seqlock reader polls
//! it), or reads the ring as a real subscriber (`try_recv_rows`, flat out).
//! The loads are raw loads on the mapped ring file: the point is which
//! shared lines cost the publisher what, and what a busy second vCPU costs
//! by itself.
//!
//! PUBLISHER `raw` replaces ringcast's publisher with the bare protocol
//! (odd stamp, length, payload words, even stamp, cursor: the same stores
//! into the same ring, nothing else), and `raw+N` adds N stores per message
//! to a buffer of the publisher's own (its stack, always in its cache):
//! what stores that are not the ring's cost a publisher whose ring lines a
//! reader keeps taking away (they wait in the store buffer behind the ring
//! stores).
//!
//! ```sh
//! cargo build --release -p ringcast-benches --bin line_sharing
//! target/release/line_sharing [SIZE] [ROUNDS] [PUBLISHERS] [MODES]
//! # e.g. line_sharing 64 9 ringcast,raw,raw+12 sleep,next-stamp,subscriber
//! ```
//!
//! Publishers and modes are interleaved round by round (this VM's speed
//! swings 3-10x between minutes), and each line ends with every round's
//! figure after the median.

use ringcast_core::{CreateOptions, Publisher, Start, Subscriber};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Publishes per measurement (short: many interleaved rounds beat long runs
/// on a host whose speed changes under it).
const MESSAGES: u64 = 5_000_000;
const CAPACITY: u64 = 4096;
/// The cursor's offset in a ring file: after the header's first line
/// (`format/layout.rs`); checked against `Subscriber::cursor` at start.
const CURSOR_AT: usize = 64;

/// A shared mapping of a ring file, seen as 64-bit words (writable for the
/// raw publisher).
struct Words(memmap2::MmapRaw);

impl Words {
    fn map(file: &std::fs::File) -> Words {
        Words(memmap2::MmapRaw::map_raw(file).expect("mapping the ring file"))
    }

    /// The word at byte `offset`.
    fn at(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.0.len(),
            "a word of the file"
        );
        // SAFETY: in bounds and 8-aligned (checked; the mapping is
        // page-aligned), mapped while `self` lives, and every word of a ring
        // is only ever written atomically (by its publisher, or by this
        // bench's raw publisher in its place).
        unsafe { &*(self.0.as_ptr().add(offset) as *const AtomicU64) }
    }
}

/// A value on a 128-byte block of its own (two lines: adjacent-line
/// prefetchers fetch in pairs).
#[repr(align(128))]
struct OwnLine<T>(T);

const MODES: [&str; 9] = [
    "sleep",
    "spin",
    "compute",
    "cursor",
    "stamps",
    "slots",
    "next-stamp",
    "subscriber",
    "sleep",
];

mod pinning;

/// Who publishes: ringcast's publisher, or the bare protocol written here.
#[derive(Clone, Copy)]
enum PublisherKind {
    Ringcast,
    /// The protocol's stores only, plus `extra_stores` stores per message
    /// to the publisher's own stack.
    Raw {
        extra_stores: usize,
    },
}

impl PublisherKind {
    fn parse(arg: &str) -> Option<PublisherKind> {
        match arg {
            "ringcast" => Some(PublisherKind::Ringcast),
            "raw" => Some(PublisherKind::Raw { extra_stores: 0 }),
            _ => {
                let n = arg.strip_prefix("raw+")?.parse().ok()?;
                (n <= 64).then_some(PublisherKind::Raw { extra_stores: n })
            }
        }
    }
}

/// Publishes [`MESSAGES`] messages after the ones in the ring as
/// `protocol::publish` does (single producer): odd stamp, release fence,
/// length, payload words, even stamp (release), cursor (release); plus
/// `extra_stores` volatile stores per message into a local buffer.
fn raw_publish(words: &Words, stamp_of: impl Fn(u64) -> usize, msg: &[u8], extra_stores: usize) {
    let cursor = words.at(CURSOR_AT);
    let first = cursor.load(Ordering::Relaxed);
    let payload: Vec<u64> = msg
        .chunks(8)
        .map(|c| {
            let mut word = [0u8; 8];
            word[..c.len()].copy_from_slice(c);
            u64::from_ne_bytes(word)
        })
        .collect();
    let mut scratch = [0u64; 64];
    for seq in first..first + MESSAGES {
        let at = stamp_of(seq);
        words.at(at).store(2 * seq + 1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        words.at(at + 8).store(msg.len() as u64, Ordering::Relaxed);
        for (i, word) in payload.iter().enumerate() {
            words.at(at + 16 + 8 * i).store(*word, Ordering::Relaxed);
        }
        words.at(at).store(2 * seq + 2, Ordering::Release);
        cursor.store(seq + 1, Ordering::Release);
        for slot in scratch.iter_mut().take(extra_stores) {
            // SAFETY: a valid, aligned, exclusive reference into a local array.
            unsafe { std::ptr::write_volatile(slot, seq) };
        }
    }
}

/// Nanoseconds per publish while the other CPU does `mode`.
fn run(mode: &str, size: usize, publisher_kind: PublisherKind) -> f64 {
    let dir = tempfile::tempdir().expect("a temporary ring directory");
    let mut opts = CreateOptions::new(CAPACITY, size as u32);
    opts.fixed_size = true;
    opts.dir = Some(dir.path().to_owned());
    let mut publisher = Publisher::create("lines", &opts).expect("create the ring");
    let (header, stride) = (
        publisher.layout().header_len(),
        publisher.layout().slot_stride(),
    );
    let path = std::fs::read_dir(dir.path())
        .expect("the ring directory")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_file())
        .expect("the ring file");
    // Everything the other thread reads lives on the heap, on lines of its
    // own: on the publisher thread's stack it would share lines with the
    // publisher's spills (publish is inlined into this function), and the
    // publisher would pay for lines that are not the ring's.
    let words = Box::new(Words::map(
        &std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open the ring file"),
    ));
    let msg = vec![7u8; size];
    // The cursor is where this bench thinks it is.
    for _ in 0..3 {
        publisher.publish(&msg).expect("publish");
    }
    let sub = Subscriber::attach("lines", Some(dir.path()), Start::Latest).expect("attach");
    assert_eq!(words.at(CURSOR_AT).load(Ordering::Acquire), sub.cursor());
    let mut sub = (mode == "subscriber").then_some(sub);
    let stamp_of = move |seq: u64| header + (seq % CAPACITY) as usize * stride;
    let stop = Box::new(OwnLine(AtomicBool::new(false)));
    let (words, stop) = (&*words, &stop.0);
    std::thread::scope(|s| {
        let other = s.spawn(move || {
            pinning::pin_cpu(1, "the other thread");
            let cursor = words.at(CURSOR_AT);
            let (mut next, mut sum) = (3u64, 0u64);
            let mut rows = vec![0u8; 256 * size];
            while !stop.load(Ordering::Relaxed) {
                match mode {
                    "sleep" => std::thread::sleep(Duration::from_millis(1)),
                    "spin" => std::hint::spin_loop(),
                    "compute" => {
                        for i in 0..100u64 {
                            sum = sum.wrapping_mul(31).wrapping_add(i);
                        }
                    }
                    "cursor" => sum = sum.wrapping_add(cursor.load(Ordering::Acquire)),
                    "stamps" | "slots" => {
                        let end = cursor.load(Ordering::Acquire);
                        while next < end {
                            let at = stamp_of(next);
                            sum = sum.wrapping_add(words.at(at).load(Ordering::Acquire));
                            if mode == "slots" {
                                for w in (16..16 + size).step_by(8) {
                                    sum =
                                        sum.wrapping_add(words.at(at + w).load(Ordering::Relaxed));
                                }
                                sum = sum.wrapping_add(words.at(at).load(Ordering::Acquire));
                            }
                            next += 1;
                        }
                    }
                    "next-stamp" => {
                        // A complete message `next` has stamp 2 * next + 2.
                        if words.at(stamp_of(next)).load(Ordering::Acquire) >= 2 * next + 2 {
                            next += 1;
                        }
                    }
                    "subscriber" => {
                        let sub = sub.as_mut().expect("a subscriber");
                        next += sub
                            .try_recv_rows(&mut rows, size, 256, |_, _| {})
                            .expect("read") as u64;
                    }
                    other => unreachable!("mode {other}"),
                }
            }
            std::hint::black_box(sum);
        });
        pinning::pin_cpu(0, "the publisher");
        std::thread::sleep(Duration::from_millis(20));
        let t = Instant::now();
        match publisher_kind {
            PublisherKind::Ringcast => {
                for _ in 0..MESSAGES {
                    publisher.publish(&msg).expect("publish");
                }
            }
            PublisherKind::Raw { extra_stores } => {
                raw_publish(words, stamp_of, &msg, extra_stores);
            }
        }
        let per = t.elapsed().as_nanos() as f64 / MESSAGES as f64;
        stop.store(true, Ordering::Relaxed);
        other.join().expect("the other thread");
        per
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size = args.get(1).map_or(64, |s| s.parse().expect("SIZE: bytes"));
    let rounds = args
        .get(2)
        .map_or(3, |s| s.parse().expect("ROUNDS: a count"));
    let publishers: Vec<(&str, PublisherKind)> = args
        .get(3)
        .map_or("ringcast", String::as_str)
        .split(',')
        .map(|who| match PublisherKind::parse(who) {
            Some(kind) => (who, kind),
            None => {
                eprintln!(
                    "PUBLISHERS are ringcast, raw or raw+N (N extra stores, at most 64), \
                     comma-separated; not {who:?}"
                );
                std::process::exit(2);
            }
        })
        .collect();
    let modes: Vec<&str> = match args.get(4) {
        Some(list) => list.split(',').collect(),
        None => MODES.to_vec(),
    };
    if let Some(bad) = modes.iter().find(|m| !MODES.contains(m)) {
        eprintln!("MODES are among {MODES:?}, comma-separated; not {bad:?}");
        std::process::exit(2);
    }
    println!(
        "publisher on CPU 0, {MESSAGES} messages of {size} bytes; the other CPU does: \
         (ns per publish, {rounds} rounds, publishers and modes interleaved)"
    );
    let mut results = vec![vec![Vec::new(); modes.len()]; publishers.len()];
    for _ in 0..rounds {
        for (i, mode) in modes.iter().enumerate() {
            for (p, (_, kind)) in publishers.iter().enumerate() {
                results[p][i].push(run(mode, size, *kind));
            }
        }
    }
    if !pinning::all_pinned() {
        println!("(unpinned: the two threads may share a CPU, which measures nothing of interest)");
    }
    for ((who, _), by_mode) in publishers.iter().zip(&results) {
        println!("{who} publisher:");
        for (mode, r) in modes.iter().zip(by_mode) {
            let mut sorted = r.clone();
            sorted.sort_by(f64::total_cmp);
            let text: Vec<String> = r.iter().map(|x| format!("{x:6.1}")).collect();
            println!(
                "{mode:>11}: median {:6.1}  {}",
                sorted[sorted.len() / 2],
                text.join(" ")
            );
        }
    }
}
