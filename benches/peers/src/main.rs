//! ringcast against its Rust peers, measured in one run on one machine.
//!
//! `cargo run --release --manifest-path benches/peers/Cargo.toml -- [--messages N] [--quick]
//! [--only KEY,..] [--throughput-only] [--json]`
//!
//! A crate of its own, outside the workspace, so that the peers are compiled
//! only when this comparison is run.
//!
//! Every path moves 64-byte messages (48 with `--features message-48`)
//! through a 4096-slot buffer. Measured in
//! one run, so that the ratios between the rows are not ratios between
//! machines or days:
//!
//! - the physical limit: a cache-line ping-pong between the publisher's and
//!   the receiver's core, round trip / 2;
//! - one-way latency: the publisher stamps each message with the time stamp
//!   counter and sends one every ~2 µs (nothing queues); the receiver, spinning,
//!   records `now - stamp`. Between two pinned threads for ringcast, the
//!   `disruptor` crate, `crossbeam-channel` and `photon-ring`; between two
//!   processes for ringcast and `iceoryx2` (photon-ring has no inter-process
//!   mode and is reported as not measured). The receiving process is this
//!   binary re-executed with a hidden `--child` role; the TSC is invariant, so
//!   stamps taken in one process compare with readings in another;
//! - throughput flat out, one publisher to one and to four receivers: the
//!   publisher's rate and each receiver's delivered rate (and, for lossy
//!   paths, how many messages a lapped receiver lost). A seqlock ring never
//!   waits for its readers; `ringcast bounded` (the publisher waits for the
//!   slowest reader) is the like-for-like comparison with the lossless peers.
//!
//! Latency rounds and throughput trials are interleaved across the paths, so
//! that a change of the machine's state shows in all rows alike.
//! Percentiles are nearest-rank over all samples. A path that cannot run is
//! reported as "not measured: <reason>" and the others go on.
//!
//! The harness (everything but `peers/`) measures; each module of `peers/`
//! adapts one library to the harness's [`harness::Peer`] trait.

// Shared with the workspace's ring_latency bench.
#[path = "../../common.rs"]
mod common;
#[path = "../../pinning.rs"]
mod pinning;

mod args;
mod drive;
mod harness;
mod peers;
mod process;
mod report;
mod schedule;
mod stats;

use common::{clock_overhead_ns, ring_dir, Clock};
use harness::Ctx;
use process::CHILD_FLAG;
use report::Report;

/// The 1, 5 and 15 minute load averages (other work on a shared machine
/// shows here), or "unknown".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Runs every measurement (or, with [`CHILD_FLAG`], one receiver process)
/// and prints the report.
fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some(CHILD_FLAG) {
        std::process::exit(process::child_main(&argv[1..], &peers::PEERS));
    }
    let args = args::parse_args(&argv);
    let only = args.only.as_deref();
    let (latency_paths, throughput_paths) = match (
        peers::selected(&peers::LATENCY_PATHS, only),
        peers::selected(&peers::THROUGHPUT_PATHS, only),
    ) {
        (Ok(l), Ok(t)) => (l, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };

    let ids = pinning::cpus().to_vec();
    let cores = if ids.len() >= 2 {
        ids
    } else {
        eprintln!(
            "warning: fewer than two cores available to pin to ({}); running unpinned",
            ids.len()
        );
        pinning::mark_unpinned();
        Vec::new()
    };
    let load_before = load_average();
    let clock = Clock::calibrate();
    let overhead = clock_overhead_ns(&clock);
    let dir = ring_dir();
    let ctx = Ctx {
        clock,
        cores,
        dir: dir.path().to_owned(),
        tag: format!("peers{}", std::process::id()),
    };

    let latency = if args.throughput_only {
        Vec::new()
    } else {
        schedule::latency(&ctx, &args, &latency_paths)
    };
    let throughput = schedule::throughput(&ctx, &args, &throughput_paths);

    let report = Report::new(
        &args,
        &ctx,
        overhead,
        [load_before, load_average()],
        latency,
        throughput,
        &peers::configured(),
    );
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
}
