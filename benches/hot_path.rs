//! The hot paths alone, in one thread, for counting instructions with
//! callgrind (exact and repeatable, where timings on a shared 2-CPU VM are
//! not). Run it twice with different message counts and take the
//! difference: what stays is the cost per message.
//!
//! ```sh
//! cargo build --release -p ringcast-benches --bin hot_path
//! for n in 100000 200000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/hot_path publish $n 2>&1 | grep refs
//! done
//! ```
//!
//! Counts depend on inlining: since the `threads` modes also publish
//! messages of a size known only at run time, `publish` is no longer
//! inlined into `main` with a constant 64-byte length (publish 102 -> 136
//! instructions for the same core code); compare counts from one build.
//!
//! Modes: `publish` (lossy single producer, no reader), `read` (publish one,
//! `try_recv` it), `rows` (publish 256, read them with one `try_recv_rows`),
//! `idle` (`try_recv` on a caught-up ring: the polling path), `idle-rows`
//! (the same with `try_recv_rows`), `bounded`
//! (publish one into a bounded ring, `try_recv` it), `latency` (a ring with
//! timestamps: publish one, `try_recv` it into a latency recorder). `threads` is not for
//! callgrind: a publisher thread and a reader thread (`try_recv_rows`)
//! on CPUs 0 and 1, flat out, bounded (`threads-lossy`: lossy); it prints
//! messages per second. An optional third argument sets the payload size
//! of the `threads` modes (default 64): with a 16-byte slot head, payloads
//! up to 48 bytes take one cache line per slot, larger ones two.
//!
//! ```sh
//! for size in 64 48 64 48; do target/release/hot_path threads-lossy 20000000 $size; done
//! ```

use ringcast_core::{CreateOptions, Publisher, Start, Subscriber};
use ringcast_latency::{RecordLatency, RecorderConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: hot_path publish|read|rows|idle|idle-rows|bounded|latency MESSAGES");
        std::process::exit(2);
    };
    let dir = tempfile::tempdir().expect("a temporary ring directory");
    let mut opts = CreateOptions::new(4096, 64);
    opts.dir = Some(dir.path().to_owned());
    if mode == "bounded" {
        opts.bounded = Some(4096);
    }
    opts.timestamps = mode == "latency";
    let mut publisher = Publisher::create("hot", &opts).expect("create the ring");
    let mut sub = Subscriber::attach("hot", Some(dir.path()), Start::Latest).expect("attach");
    if mode == "latency" {
        sub.record_latency(Some(RecorderConfig::default()))
            .expect("record latency");
    }
    let msg = [7u8; 64];
    let mut out = [0u8; 64];
    let mut rows = vec![0u8; 64 * 256];
    let mut got = 0u64;
    match mode.as_str() {
        "publish" => {
            drop(sub);
            for _ in 0..n {
                publisher.publish(&msg).expect("publish");
            }
            got = n;
        }
        "read" | "bounded" | "latency" => {
            for _ in 0..n {
                publisher.publish(&msg).expect("publish");
                got += sub.try_recv(&mut out).expect("read").is_some() as u64;
            }
        }
        "rows" => {
            for _ in 0..n / 256 {
                for _ in 0..256 {
                    publisher.publish(&msg).expect("publish");
                }
                got += sub
                    .try_recv_rows(&mut rows, 64, 256, |_, _| {})
                    .expect("read") as u64;
            }
        }
        "threads" | "threads-lossy" => {
            drop(publisher);
            drop(sub);
            threads(n, mode == "threads", args.get(3).map(String::as_str));
            return;
        }
        "idle" => {
            for _ in 0..n {
                got += sub.try_recv(&mut out).expect("read").is_some() as u64;
            }
            got += n;
        }
        "idle-rows" => {
            for _ in 0..n {
                got += sub
                    .try_recv_rows(&mut rows, 64, 256, |_, _| {})
                    .expect("read") as u64;
            }
            got += n;
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
    assert_eq!(got, n - n % if mode == "rows" { 256 } else { 1 });
    println!("{mode}: {n} messages");
}

/// A ring of `size`-byte messages (default 64) between two pinned threads,
/// flat out: messages per second.
#[inline(never)]
fn threads(n: u64, bounded: bool, size: Option<&str>) {
    let Ok(size @ 1..=4096) = size.map_or(Ok(64), str::parse::<usize>) else {
        eprintln!("the payload size must be 1..=4096 bytes");
        std::process::exit(2);
    };
    let dir = tempfile::tempdir().expect("a temporary ring directory");
    let mut opts = CreateOptions::new(4096, size as u32);
    opts.dir = Some(dir.path().to_owned());
    opts.fixed_size = true;
    opts.bounded = bounded.then_some(4096);
    let mut publisher = Publisher::create("threads", &opts).expect("create the ring");
    let mut sub = Subscriber::attach("threads", Some(dir.path()), Start::Oldest).expect("attach");
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let t0 = std::time::Instant::now();
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            if let Some(c) = cores.get(1) {
                core_affinity::set_for_current(*c);
            }
            let mut rows = vec![0u8; size * 256];
            // Lossy: lapped messages count as gone too.
            while sub.position() < n {
                sub.try_recv_rows(&mut rows, size, 256, |_, _| {})
                    .expect("read");
            }
        });
        if let Some(c) = cores.first() {
            core_affinity::set_for_current(*c);
        }
        let msg = vec![7u8; size];
        for _ in 0..n {
            publisher.publish(&msg).expect("publish");
        }
        reader.join().expect("the reader");
    });
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "threads: {n} messages of {size} bytes ({} cache lines a slot), {:.1} M/s, {} lost",
        publisher.layout().slot_stride() / 64,
        n as f64 / secs / 1e6,
        sub.lost()
    );
}
