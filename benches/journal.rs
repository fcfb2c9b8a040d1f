//! Capture and replay figures, side by side in one run: a bounded ring read
//! by a plain reader (the rate a recorder must keep up with), the recorder
//! on the same ring into page cache and with an fsync interval, the journal
//! writer alone, a plain `pwrite` of the same bytes (the file system's own
//! rate), replay flat out, and reading the journal back.
//!
//! ```sh
//! cargo run --release -p ringcast-benches --bin journal -- [MESSAGES] [DIR] [STEPS] [ROUNDS]
//! ```
//!
//! 64-byte messages in a bounded ring of 65,536 slots with timestamps; the
//! publisher is a thread publishing batches of 256 (one clock read per
//! batch) on its own CPU where there are two. DIR (default: a temporary
//! directory under /var/tmp, a disk file system, so "page cache" means the
//! kernel's cache of a real file) holds the journals.

use ringcast_core::{CreateOptions, Patience, Publisher, Start, Subscriber};
use ringcast_journal::format;
use ringcast_journal::reader::Item;
use ringcast_journal::{
    record, replay, Fsync, Journal, JournalWriter, RecordOptions, ReplayOptions, RingDescription,
    WriterOptions,
};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

const SLOT: usize = 64;
const CAPACITY: u64 = 1 << 16;
const BATCH: usize = 256;

mod pinning;

/// Pins the calling thread to CPU `cpu` of those the process started with.
fn pin(cpu: usize) {
    pinning::pin_cpu(cpu, "a step's thread");
}

/// Makes a bounded ring and starts a thread that waits for `readers`
/// subscribers, then publishes `n` messages; it returns when it started.
fn publisher(rings: &Path, name: &str, n: u64, readers: usize) -> std::thread::JoinHandle<Instant> {
    paced_publisher(rings, name, n, readers, None)
}

/// [`publisher`], one message per call at `rate` messages a second when given
/// (each stamped with the time it was due), else batches flat out.
fn paced_publisher(
    rings: &Path,
    name: &str,
    n: u64,
    readers: usize,
    rate: Option<f64>,
) -> std::thread::JoinHandle<Instant> {
    let mut opts = CreateOptions::new(CAPACITY, SLOT as u32);
    opts.fixed_size = true;
    opts.bounded = Some(CAPACITY);
    opts.timestamps = true;
    opts.dir = Some(rings.to_owned());
    let mut p = Publisher::create(name, &opts).expect("create the ring");
    std::thread::spawn(move || {
        pin(0);
        while p.subscriber_count() < readers {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The recorder's probe comes and goes before the recorder attaches.
        std::thread::sleep(Duration::from_millis(100));
        while p.subscriber_count() < readers {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut data = vec![0u8; BATCH * SLOT];
        let start = Instant::now();
        let mut seq = 0u64;
        if let Some(rate) = rate {
            // Each message carries the time it was due (no coordinated
            // omission); what is due goes out at once, and the thread
            // sleeps until the next is due rather than spinning (a spinning
            // publisher and recorder on a 2-vCPU VM get throttled by the host).
            let base = ringcast_core::sys::clock::now_ns();
            let due = |seq: u64| base + (seq as f64 * 1e9 / rate) as u64;
            while seq < n {
                let now = ringcast_core::sys::clock::now_ns();
                while seq < n && due(seq) <= now {
                    data[..8].copy_from_slice(&seq.to_le_bytes());
                    p.publish_at(&data[..SLOT], due(seq), Patience::forever())
                        .expect("publish");
                    seq += 1;
                }
                if seq < n {
                    let wait = due(seq).saturating_sub(ringcast_core::sys::clock::now_ns());
                    std::thread::sleep(Duration::from_nanos(wait));
                }
            }
        }
        while seq < n {
            let k = BATCH.min((n - seq) as usize);
            for (i, msg) in data.chunks_exact_mut(SLOT).take(k).enumerate() {
                msg[..8].copy_from_slice(&(seq + i as u64).to_le_bytes());
            }
            p.publish_records(&data[..k * SLOT], Patience::forever())
                .expect("publish");
            seq += k as u64;
        }
        p.close();
        start
    })
}

fn rate(n: u64, d: Duration) -> String {
    format!("{:>7.2} M msgs/s", n as f64 / d.as_secs_f64() / 1e6)
}

fn row(what: &str, n: u64, d: Duration, extra: &str) {
    println!("{what:<58} {}  {extra}", rate(n, d));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let parent = args.get(2).cloned().unwrap_or_else(|| "/var/tmp".into());
    // STEPS: a comma-separated choice of plain, record, paced, writer,
    // pwrite, replay, read (replay and read need record's journal).
    let steps = args.get(3).cloned().unwrap_or_default();
    // ROUNDS: every step again, in a fresh directory (a shared VM's figures
    // move from one run to the next: compare within a round, and across).
    let rounds: u32 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(1);
    if (chosen(&steps, "replay") || chosen(&steps, "read")) && !chosen(&steps, "record") {
        eprintln!("the replay and read steps read the journal the record step writes: add `record` to STEPS");
        std::process::exit(2);
    }
    let stride = format::stride(SLOT as u32);
    println!(
        "{n} messages of {SLOT} bytes (entries of {stride} bytes), bounded ring of {CAPACITY} \
         slots; journals under {parent}"
    );
    for round in 1..=rounds {
        println!("\nround {round} of {rounds}");
        run_round(n, &parent, &steps);
    }
    if !pinning::all_pinned() {
        println!("(some steps ran unpinned: fewer than two CPUs, or a pin failed)");
    }
}

/// Whether STEPS (empty: all) includes `step`.
fn chosen(steps: &str, step: &str) -> bool {
    steps.is_empty() || steps.split(',').any(|s| s == step)
}

/// One run of the chosen steps, in directories of its own.
fn run_round(n: u64, parent: &str, steps: &str) {
    let base = tempfile::tempdir_in(parent).expect("a journal directory");
    let rings = tempfile::tempdir().expect("a ring directory");
    // Each step starts with nothing dirty in the page cache: on a disk file
    // system, the write-back of one step's bytes would otherwise throttle
    // the next step's writes to the disk's speed.
    let want = |step: &str| {
        let _ = std::process::Command::new("sync").status();
        chosen(steps, step)
    };
    let journal = base.path().join("a");
    let stride = format::stride(SLOT as u32);
    if want("plain") {
        // 1. The ring alone: a plain reader reading rows.
        let p = publisher(rings.path(), "plain", n, 1);
        let mut sub = Subscriber::attach("plain", Some(rings.path()), Start::Oldest).unwrap();
        pin(1);
        let mut rows = vec![0u8; 4096 * SLOT];
        let mut got = 0;
        while !sub.ended() || sub.available() {
            got += sub.try_recv_rows(&mut rows, SLOT, 4096, |_, _| {}).unwrap() as u64;
        }
        let t = p.join().unwrap().elapsed();
        assert_eq!(got, n);
        row("ring -> plain reader (the rate to keep up with)", n, t, "");
    }
    if want("record") {
        // 2-3. The recorder on the same kind of ring.
        for (label, fsync, dir) in [
            (
                "ring -> recorder, page cache (fsync never)",
                Fsync::Never,
                "a",
            ),
            (
                "ring -> recorder, fsync every 1 s",
                Fsync::Interval(Duration::from_secs(1)),
                "b",
            ),
        ] {
            let name = format!("rec-{dir}");
            let p = publisher(rings.path(), &name, n, 1);
            let mut opts = RecordOptions::new(&name, base.path().join(dir));
            opts.ring_dir = Some(rings.path().to_owned());
            opts.writer.fsync = fsync;
            pin(1);
            let report = record(&opts, &AtomicBool::new(false), |_| {}).unwrap();
            let t = p.join().unwrap().elapsed();
            assert_eq!(report.recorded, n, "{report:?}");
            let w = report.write_ns.unwrap_or_default();
            row(
                label,
                n,
                t,
                &format!(
                    "gaps {}, read->written p50 {:.1} us p99 {:.1} us, {} syncs",
                    report.gaps,
                    w[0] as f64 / 1e3,
                    w[1] as f64 / 1e3,
                    report.writer.syncs
                ),
            );
        }
    }
    if want("paced") {
        // Latency at a pace the recorder keeps up with (not queued behind a full
        // ring): from publish to written, per message.
        for rate in [10_000.0, 100_000.0, 1_000_000.0] {
            let m = (rate * 3.0) as u64;
            let name = format!("paced-{rate}");
            let p = paced_publisher(rings.path(), &name, m, 1, Some(rate));
            let mut opts = RecordOptions::new(&name, base.path().join(&name));
            opts.ring_dir = Some(rings.path().to_owned());
            opts.writer.fsync = Fsync::Interval(Duration::from_secs(1));
            pin(1);
            let report = record(&opts, &AtomicBool::new(false), |_| {}).unwrap();
            let t = p.join().unwrap().elapsed();
            assert_eq!(report.recorded, m);
            let lat = report.latency_ns.unwrap_or_default();
            let w = report.write_ns.unwrap_or_default();
            let us = |ns: u64| ns as f64 / 1e3;
            row(
                &format!(
                    "paced {:.0}k msgs/s -> recorder, fsync every 1 s",
                    rate / 1e3
                ),
                m,
                t,
                &format!(
                    "due->written p50 {:.1} p99 {:.1} p99.9 {:.1} us; read->written p50 {:.1} \
                 p99 {:.1} p99.9 {:.1} us",
                    us(lat[0]),
                    us(lat[1]),
                    us(lat[2]),
                    us(w[0]),
                    us(w[1]),
                    us(w[2])
                ),
            );
        }
    }
    if want("pwrite") {
        // 4. Baseline: the same bytes with plain 1 MiB pwrites.
        let file = std::fs::File::create(base.path().join("plain.bin")).unwrap();
        let chunk = vec![7u8; (1 << 20) / stride * stride];
        let total = n * stride as u64;
        let start = Instant::now();
        let mut at = 0u64;
        while at < total {
            let k = chunk.len().min((total - at) as usize);
            file.write_all_at(&chunk[..k], at).unwrap();
            at += k as u64;
        }
        let t = start.elapsed();
        row(
            "baseline: plain pwrite of the same bytes",
            n,
            t,
            &format!("{:.2} GB/s", total as f64 / t.as_secs_f64() / 1e9),
        );
        drop(file);
    }
    if want("writer") {
        // 5. The writer alone (no ring): what an entry costs.
        let ring = RingDescription {
            name: "w".into(),
            slot_size: SLOT as u32,
            flags: ringcast_core::format::layout::FLAG_FIXED_SIZE
                | ringcast_core::format::layout::FLAG_TIMESTAMPS,
            capacity: CAPACITY,
            schema: Vec::new(),
        };
        let opts = WriterOptions {
            fsync: Fsync::Never,
            ..WriterOptions::default()
        };
        let (mut w, _) = JournalWriter::open(base.path().join("w"), &ring, opts).unwrap();
        let mut msg = [0u8; SLOT];
        let start = Instant::now();
        for seq in 0..n {
            msg[..8].copy_from_slice(&seq.to_le_bytes());
            w.append(seq, seq, &msg).unwrap();
        }
        w.close().unwrap();
        let t = start.elapsed();
        row(
            "journal writer alone (CRC32C, 1 MiB pwrite)",
            n,
            t,
            &format!(
                "{:.1} ns/entry, {:.2} GB/s",
                t.as_nanos() as f64 / n as f64,
                (n * stride as u64) as f64 / t.as_secs_f64() / 1e9
            ),
        );
    }
    if want("replay") {
        // 6. Replay flat out into a lossy ring nobody reads, then a bounded one
        // a reader thread reads.
        let mut opts = ReplayOptions::new(&journal, "replay-lossy");
        opts.ring_dir = Some(rings.path().to_owned());
        opts.bounded = Some(false);
        opts.batch = 4096;
        pin(0);
        let r = replay(&opts, &AtomicBool::new(false), |_| {}).unwrap();
        assert_eq!(r.published, n);
        row("replay flat out -> lossy ring, no reader", n, r.elapsed, "");
        opts.verify = false;
        let r = replay(&opts, &AtomicBool::new(false), |_| {}).unwrap();
        assert_eq!(r.published, n);
        row(
            "  the same, CRCs not checked (--no-verify)",
            n,
            r.elapsed,
            "",
        );

        let mut opts = ReplayOptions::new(&journal, "replay-bounded");
        opts.ring_dir = Some(rings.path().to_owned());
        opts.bounded = Some(true);
        opts.subscribers = 1;
        opts.batch = 4096;
        let dir = rings.path().to_owned();
        let reader = std::thread::spawn(move || {
            pin(1);
            let mut sub = loop {
                match Subscriber::attach("replay-bounded", Some(&dir), Start::Oldest) {
                    Ok(s) => break s,
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            };
            let mut rows = vec![0u8; 4096 * SLOT];
            let mut got = 0u64;
            while !sub.ended() || sub.available() {
                got += sub.try_recv_rows(&mut rows, SLOT, 4096, |_, _| {}).unwrap() as u64;
            }
            got
        });
        let r = replay(&opts, &AtomicBool::new(false), |_| {}).unwrap();
        assert_eq!(reader.join().unwrap(), n);
        row(
            "replay flat out -> bounded ring -> reader",
            n,
            r.elapsed,
            "",
        );
    }
    if want("read") {
        // 7. Reading the journal back in Rust, every entry's CRC checked.
        let start = Instant::now();
        let j = Journal::open(&journal).unwrap();
        let mut sum = 0u64;
        let mut count = 0u64;
        for item in j.read(j.start()) {
            if let Item::Entry(e) = item {
                sum = sum.wrapping_add(e.seq);
                count += 1;
            }
        }
        let t = start.elapsed();
        assert_eq!(count, n);
        row(
            "journal read back (CRC checked, Rust)",
            n,
            t,
            &format!("checksum {}", sum % 1000),
        );
    }
}
