//! ITCH decode throughput, one thread: a generated day (default 5M
//! messages) is built in memory as an ITCH file, then timed through
//! - `generate`: the day generator writing the ITCH file bytes;
//! - `decode`: the file reader and `decode` (typed views, nothing copied);
//! - `records`: file -> records, each message decoded and written as its
//!   little-endian record into one output buffer (what a feed handler does
//!   before publishing to a ring);
//! - `book`: the order-book builder applying every message.
//!
//! Each figure is the best of `--rounds` runs (default 5), in messages per
//! second on one core and nanoseconds per message.
//!
//! ```sh
//! cargo run --release -p ringcast-benches --bin feed_decode -- --messages 5000000 [--json]
//! ```

use std::hint::black_box;
use std::time::Instant;

use ringcast_feed::book::BookBuilder;
use ringcast_feed::file::SliceReader;
use ringcast_feed::gen::{itch_bytes, DayConfig};
use ringcast_feed::record::MAX_RECORD_SIZE;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

/// The best of `rounds` timings of `f`, in seconds.
fn best(rounds: u64, mut f: impl FnMut() -> u64) -> f64 {
    (0..rounds.max(1))
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let messages = arg(&args, "--messages", 5_000_000);
    let rounds = arg(&args, "--rounds", 5);
    let seed = arg(&args, "--seed", 1);
    let json = args.iter().any(|a| a == "--json");
    let config = DayConfig::new(seed, messages);

    let start = Instant::now();
    let file = itch_bytes(&config);
    let generate = start.elapsed().as_secs_f64();

    let decode = best(rounds, || {
        let mut reader = SliceReader::new(&file);
        let mut sum = 0u64;
        for m in reader.by_ref().flatten() {
            sum = sum.wrapping_add(m.timestamp());
        }
        assert_eq!(reader.counts().messages(), messages);
        sum
    });

    let mut out = vec![0u8; messages as usize * MAX_RECORD_SIZE];
    let mut record_bytes = 0;
    let records = best(rounds, || {
        let mut at = 0;
        let mut recv_ns = 0u64;
        for m in SliceReader::new(&file).flatten() {
            recv_ns += 1;
            at += m
                .write_record(recv_ns, &mut out[at..])
                .expect("room for every record");
        }
        record_bytes = at;
        at as u64
    });
    black_box(&out);

    let book = best(rounds.min(2), || {
        let mut books = BookBuilder::new();
        let mut updates = 0u64;
        for m in SliceReader::new(&file).flatten() {
            updates += books.apply(&m).map_or(0, |u| u.as_slice().len() as u64);
        }
        updates
    });

    let n = messages as f64;
    let figures = [
        ("generate", generate),
        ("decode", decode),
        ("records", records),
        ("book", book),
    ];
    if json {
        let items: Vec<String> = figures
            .iter()
            .map(|(name, s)| {
                format!(
                    "\"{name}\": {{\"msgs_per_s\": {:.0}, \"ns_per_msg\": {:.2}}}",
                    n / s,
                    s * 1e9 / n
                )
            })
            .collect();
        println!(
            "{{\"messages\": {messages}, \"file_bytes\": {}, \"record_bytes\": {record_bytes}, \"rounds\": {rounds}, {}}}",
            file.len(),
            items.join(", ")
        );
    } else {
        println!(
            "{messages} messages, ITCH file {:.1} MB, records {:.1} MB, best of {rounds} rounds, one thread",
            file.len() as f64 / 1e6,
            record_bytes as f64 / 1e6
        );
        for (name, s) in figures {
            println!(
                "{name:>9}: {:>7.1} M msgs/s  {:>6.2} ns/msg",
                n / s / 1e6,
                s * 1e9 / n
            );
        }
    }
}
