//! First-message and steady-state latency with and without core pinning,
//! huge pages and prefaulting (issue 6).
//!
//! `cargo run --release -p ringcast-benches --bin memory_latency -- [--trials N] [--messages N]`
//!
//! Every combination of the three options runs `--trials` times on a fresh
//! ring (4096 slots of 1008 bytes: a 4 MiB ring, so that every fourth
//! message of the first pass lands on a page nobody has touched). In each
//! trial a publisher thread and a subscriber thread (each with its own
//! mapping, as two processes would have) exchange 64-byte messages stamped
//! with the time stamp counter, one every 2 µs:
//!
//! - first message: the latency of message 0 of a just-created ring;
//! - first pass: messages 1..4095, each the first write into its slot;
//! - steady state: `--messages` more, after the ring has wrapped.
//!
//! Minor page faults of both threads during the first pass are counted with
//! `getrusage(RUSAGE_THREAD)`: unlike the latencies, they do not depend on
//! what else the machine is doing. Pinned runs put the publisher on the
//! first allowed CPU and the subscriber on the last; unpinned runs leave both
//! to the scheduler. Without huge pages on the host, the huge-page runs are
//! skipped with the reason.

mod common;

use common::{clock_overhead_ns, percentile, ring_dir, ticks, Clock};
use ringcast_core::shm::hugepages::HugePages;
use ringcast_core::{CreateOptions, MemoryOptions, Placement, Publisher, Start, Subscriber};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

const CAPACITY: u64 = 4096;
const SLOT_SIZE: u32 = 1008;
const MSG_SIZE: usize = 64;
const PACE_NS: f64 = 2_000.0;

#[derive(Clone, Copy)]
struct Config {
    pin: bool,
    huge: bool,
    prefault: bool,
}

impl Config {
    fn label(&self) -> String {
        format!(
            "pin={:<3} huge={:<3} prefault={:<3}",
            on(self.pin),
            on(self.huge),
            on(self.prefault)
        )
    }
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Samples of one configuration over all trials, ns.
#[derive(Default)]
struct Results {
    first: Vec<f64>,
    first_pass: Vec<f64>,
    steady: Vec<f64>,
    publisher_faults: Vec<u64>,
    subscriber_faults: Vec<u64>,
    lost: u64,
}

/// Minor page faults of the calling thread so far.
fn thread_minor_faults() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage only writes it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: plain syscall writing `usage`.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    usage.ru_minflt as u64
}

fn pin(cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        ringcast_core::sys::placement::pin_thread(&BTreeSet::from([cpu])).expect("pin thread");
    }
}

/// One trial: a fresh ring, message 0, the first pass, then steady state.
fn trial(
    dir: &Path,
    name: &str,
    cfg: Config,
    cpus: (usize, usize),
    clock: &Clock,
    steady: u64,
    out: &mut Results,
) {
    let opts = CreateOptions {
        dir: Some(dir.to_owned()),
        placement: Placement {
            huge_pages: if cfg.huge {
                HugePages::Require
            } else {
                HugePages::Off
            },
            ..Placement::default()
        },
        memory: MemoryOptions {
            prefault: cfg.prefault,
            ..MemoryOptions::default()
        },
        ..CreateOptions::new(CAPACITY, SLOT_SIZE)
    };
    let (pub_cpu, sub_cpu) = if cfg.pin {
        (Some(cpus.0), Some(cpus.1))
    } else {
        (None, None)
    };
    let total = CAPACITY + steady;
    let ready = Barrier::new(2);
    let (samples, sub_faults, lost) = thread::scope(|s| {
        let publisher = s.spawn(|| {
            pin(pub_cpu);
            let mut publisher = Publisher::create(name, &opts).expect("create ring");
            ready.wait(); // the subscriber is attached
            ready.wait(); // and spinning
            thread::sleep(Duration::from_millis(1));
            let faults_before = thread_minor_faults();
            let pace = clock.ticks_for_ns(PACE_NS);
            let mut msg = [0u8; MSG_SIZE];
            let mut next = ticks();
            let mut faults = 0;
            for seq in 0..total {
                while ticks() < next {
                    std::hint::spin_loop();
                }
                msg[..8].copy_from_slice(&seq.to_le_bytes());
                msg[8..16].copy_from_slice(&ticks().to_le_bytes());
                publisher.publish(&msg).expect("publish");
                if seq == CAPACITY - 1 {
                    faults = thread_minor_faults() - faults_before;
                }
                next += pace;
            }
            publisher.unlink().expect("unlink");
            faults
        });
        let subscriber = s.spawn(|| {
            pin(sub_cpu);
            ready.wait();
            let mut sub = Subscriber::attach_with(
                name,
                Some(dir),
                Start::Latest,
                &MemoryOptions {
                    prefault: cfg.prefault,
                    ..MemoryOptions::default()
                },
            )
            .expect("attach");
            let faults_before = thread_minor_faults();
            let mut faults = 0;
            let mut samples = Vec::with_capacity(total as usize);
            let mut buf = [0u8; SLOT_SIZE as usize];
            ready.wait();
            while sub.received() + sub.lost() < total {
                if let Some(_n) = sub.try_recv(&mut buf).expect("receive") {
                    let now = ticks();
                    let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
                    let sent = u64::from_le_bytes(buf[8..16].try_into().unwrap());
                    samples.push((seq, clock.ns(now.wrapping_sub(sent))));
                    if seq == CAPACITY - 1 {
                        faults = thread_minor_faults() - faults_before;
                    }
                }
            }
            (samples, faults, sub.lost())
        });
        let pub_faults = publisher.join().expect("publisher thread");
        let (samples, sub_faults, lost) = subscriber.join().expect("subscriber thread");
        (samples, (pub_faults, sub_faults), lost)
    });
    for (seq, ns) in samples {
        match seq {
            0 => out.first.push(ns),
            s if s < CAPACITY => out.first_pass.push(ns),
            _ => out.steady.push(ns),
        }
    }
    out.publisher_faults.push(sub_faults.0);
    out.subscriber_faults.push(sub_faults.1);
    out.lost += lost;
}

fn stats(v: &mut [f64]) -> (f64, f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    (
        percentile(v, 50.0),
        percentile(v, 99.0),
        percentile(v, 99.9),
        v[v.len() - 1],
    )
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

struct Args {
    trials: usize,
    messages: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        trials: 20,
        messages: 50_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |what: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a positive number"))
        };
        match a.as_str() {
            "--trials" => args.trials = value("--trials") as usize,
            "--messages" => args.messages = value("--messages"),
            other => panic!("unknown argument {other}; use --trials N --messages N"),
        }
    }
    args
}

fn main() {
    let args = parse_args();
    let clock = Clock::calibrate();
    let allowed: Vec<usize> = ringcast_core::sys::placement::thread_cpus()
        .expect("read affinity")
        .into_iter()
        .collect();
    let cpus = (allowed[0], *allowed.last().unwrap());
    let dir = ring_dir();
    let huge_ok = {
        let probe = CreateOptions {
            dir: Some(dir.path().to_owned()),
            placement: Placement {
                huge_pages: HugePages::Require,
                ..Placement::default()
            },
            ..CreateOptions::new(CAPACITY, SLOT_SIZE)
        };
        match Publisher::create("probe", &probe) {
            Ok(p) => {
                p.unlink().expect("unlink probe");
                None
            }
            Err(e) => Some(e.to_string()),
        }
    };
    println!("memory_latency: first-message and steady-state latency (issue 6)");
    println!(
        "clock: {} ({:.3} ns/tick, {:.1} ns per reading, included below)",
        clock.source,
        clock.ns_per_tick,
        clock_overhead_ns(&clock)
    );
    println!(
        "ring: {CAPACITY} slots x {SLOT_SIZE} bytes, {MSG_SIZE}-byte messages every {PACE_NS} ns; \
         {} trials per row; steady state: {} messages per trial; pinned CPUs: publisher {}, \
         subscriber {}",
        args.trials, args.messages, cpus.0, cpus.1
    );
    if let Some(why) = &huge_ok {
        println!("huge pages: unavailable, huge=on rows skipped: {why}");
    }
    println!();
    println!(
        "{:<34} {:>10} {:>10} | {:>8} {:>8} {:>9} | {:>8} {:>8} {:>9} {:>9} | {:>7} {:>7} {:>5}",
        "",
        "first p50",
        "first max",
        "pass p50",
        "pass p99",
        "pass p99.9",
        "p50",
        "p99",
        "p99.9",
        "max",
        "pub flt",
        "sub flt",
        "lost"
    );
    let mut row = 0;
    for pin in [false, true] {
        for huge in [false, true] {
            for prefault in [false, true] {
                let cfg = Config {
                    pin,
                    huge,
                    prefault,
                };
                if huge && huge_ok.is_some() {
                    continue;
                }
                let mut res = Results::default();
                for t in 0..args.trials {
                    let name = format!("m{row}-{t}");
                    trial(
                        dir.path(),
                        &name,
                        cfg,
                        cpus,
                        &clock,
                        args.messages,
                        &mut res,
                    );
                }
                row += 1;
                let first = stats(&mut res.first);
                let pass = stats(&mut res.first_pass);
                let steady = stats(&mut res.steady);
                println!(
                    "{:<34} {:>10.0} {:>10.0} | {:>8.0} {:>8.0} {:>9.0} | {:>8.0} {:>8.0} {:>9.0} {:>9.0} | {:>7} {:>7} {:>5}",
                    cfg.label(),
                    first.0,
                    first.3,
                    pass.0,
                    pass.1,
                    pass.2,
                    steady.0,
                    steady.1,
                    steady.2,
                    steady.3,
                    median(&mut res.publisher_faults),
                    median(&mut res.subscriber_faults),
                    res.lost
                );
            }
        }
    }
    println!();
    println!(
        "ns; first = message 0 of a fresh ring; pass = messages 1..{} (first write of each slot); \
         p50..max = steady state after the ring wrapped; flt = median minor page faults per \
         trial during the first pass (publisher thread, subscriber thread); lost = messages the \
         subscriber lost to lapping, all trials.",
        CAPACITY - 1
    );
}
