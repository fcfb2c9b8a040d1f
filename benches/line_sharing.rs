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
//! ```sh
//! cargo build --release -p ringcast-benches --bin line_sharing
//! target/release/line_sharing [SIZE] [ROUNDS]
//! ```

use ringcast_core::{CreateOptions, Publisher, Start, Subscriber};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MESSAGES: u64 = 20_000_000;
const CAPACITY: u64 = 4096;
/// The cursor's offset in a ring file: after the header's first line
/// (`format/layout.rs`); checked against `Subscriber::cursor` at start.
const CURSOR_AT: usize = 64;

/// A read-only shared mapping of a ring file, seen as 64-bit words.
struct Words {
    base: *const u8,
    len: usize,
}

impl Words {
    fn map(file: &std::fs::File) -> Words {
        use std::os::fd::AsRawFd;
        let len = file.metadata().expect("the ring file's size").len() as usize;
        // SAFETY: a fresh read-only shared mapping of a whole open file; the
        // kernel picks the address, nothing else is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mapping the ring file");
        Words {
            base: base as *const u8,
            len,
        }
    }

    /// The word at byte `offset`.
    fn at(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len,
            "a word of the file"
        );
        // SAFETY: in bounds and 8-aligned (checked; the mapping is
        // page-aligned), mapped while `self` lives, and every word of a ring
        // is only ever written atomically by its publisher.
        unsafe { &*(self.base.add(offset) as *const AtomicU64) }
    }
}

impl Drop for Words {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once; no reference
        // from `at` outlives `self`.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

// SAFETY: the mapping is read-only shared memory read through atomics.
unsafe impl Sync for Words {}

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

/// Nanoseconds per publish while the other CPU does `mode`.
fn run(mode: &str, size: usize) -> f64 {
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
    let words = Words::map(&std::fs::File::open(&path).expect("open the ring file"));
    let msg = vec![7u8; size];
    // The cursor is where this bench thinks it is.
    for _ in 0..3 {
        publisher.publish(&msg).expect("publish");
    }
    let sub = Subscriber::attach("lines", Some(dir.path()), Start::Latest).expect("attach");
    assert_eq!(words.at(CURSOR_AT).load(Ordering::Acquire), sub.cursor());
    let mut sub = (mode == "subscriber").then_some(sub);
    let stamp_of = |seq: u64| header + (seq % CAPACITY) as usize * stride;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let other = s.spawn(|| {
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
        for _ in 0..MESSAGES {
            publisher.publish(&msg).expect("publish");
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
    println!(
        "publisher on CPU 0, {MESSAGES} messages of {size} bytes; the other CPU does: \
         (ns per publish, {rounds} rounds)"
    );
    let mut results = vec![Vec::new(); MODES.len()];
    for _ in 0..rounds {
        for (i, mode) in MODES.iter().enumerate() {
            results[i].push(run(mode, size));
        }
    }
    if !pinning::all_pinned() {
        println!("(unpinned: the two threads may share a CPU, which measures nothing of interest)");
    }
    for (mode, r) in MODES.iter().zip(&results) {
        let text: Vec<String> = r.iter().map(|x| format!("{x:6.1}")).collect();
        println!("{mode:>11}: {}", text.join(" "));
    }
}
