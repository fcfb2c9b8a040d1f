//! ringcast latency and throughput, measured against the core-to-core limit.
//!
//! `cargo run --release -p ringcast-benches --bin ring_latency -- [--messages N] [--json]`
//!
//! Two threads pinned to two different cores exchange 64-byte messages
//! through a ring in a temporary directory (shared memory, exactly as between
//! processes). Measured in one run:
//!
//! - one-way latency: the publisher stamps each message with the time stamp
//!   counter and publishes one message every ~2 µs (so nothing queues); the
//!   subscriber, spinning on `try_recv`, records `now - stamp`;
//! - the physical reference: a cache-line ping-pong between the same two
//!   cores (two `AtomicU64` on separate lines), round trip / 2;
//! - ringcast round trip / 2 (two rings, ping and pong), which needs no
//!   cross-core clock at all;
//! - throughput flat out: published/s, and delivered/s with the subscriber's
//!   received and lost counts (a seqlock ring never blocks its publisher, so
//!   a slower reader is lapped and loses messages instead);
//! - a peer: `std::sync::mpsc::sync_channel` (crossbeam's algorithm) in the
//!   same roles, in-process only;
//! - the cost of each guarantee: the same one-way latency and throughput
//!   through a bounded ring (the publisher waits for the reader instead of
//!   lapping it) and through multi-producer rings with 1, 2 and 4 producer
//!   threads (pinned together on the publisher's core), lossy and bounded.
//!
//! Percentiles are nearest-rank over the sorted samples.

mod common;
mod ping_pong;
mod pinning;

use common::{clock_overhead_ns, percentile, ring_dir, ticks, Clock};
use pinning::pin;
use ringcast_core::{CreateOptions, Producers, Publisher, Start, Subscriber, WaitStrategy};
use std::hint::black_box;
use std::path::Path;
use std::sync::mpsc::{self, TryRecvError};
use std::sync::Barrier;
use std::thread;

/// Size of every message, bytes.
const MSG_SIZE: usize = 64;
/// Pacing of the latency runs: one message per this many ns.
const PACE_NS: f64 = 2_000.0;
/// Ring slots (and mpsc bound) of the latency and throughput runs.
const CAPACITY: u64 = 4096;
/// Latency measurements are interleaved in this many rounds.
const ROUNDS: usize = 10;
/// Throughput trials; the median one (by delivered rate) is reported.
const TRIALS: usize = 5;
/// Throughput messages per trial, in multiples of `--messages`.
const THROUGHPUT_FACTOR: usize = 4;

// ---------------------------------------------------------- statistics ----

/// Latency distribution of one measurement, ns.
struct Latency {
    label: &'static str,
    samples: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    min: f64,
    mean: f64,
    /// Messages the reader lost (ring lapped it); 0 for lossless paths.
    lost: u64,
    /// Samples where the receive stamp preceded the send stamp (TSC skew).
    negative: usize,
}

/// Samples of one measurement, accumulated over the rounds, ns.
#[derive(Default)]
struct Samples {
    ns: Vec<f64>,
    /// Messages the reader lost to lapping.
    lost: u64,
}

impl Samples {
    /// Adds a one-way stamp difference in ticks (signed: cross-core skew).
    fn push_delta(&mut self, clock: &Clock, delta: i64) {
        self.ns.push(delta as f64 * clock.ns_per_tick);
    }
}

impl Latency {
    fn new(label: &'static str, samples: Samples) -> Self {
        let Samples { ns: mut v, lost } = samples;
        assert!(!v.is_empty(), "{label}: no samples");
        v.sort_by(f64::total_cmp);
        Self {
            label,
            samples: v.len(),
            p50: percentile(&v, 50.0),
            p99: percentile(&v, 99.0),
            p999: percentile(&v, 99.9),
            max: v[v.len() - 1],
            min: v[0],
            mean: v.iter().sum::<f64>() / v.len() as f64,
            lost,
            negative: v.iter().take_while(|&&x| x < 0.0).count(),
        }
    }

    fn json(&self) -> String {
        format!(
            "{{\"label\":\"{}\",\"samples\":{},\"p50_ns\":{:.1},\"p99_ns\":{:.1},\"p999_ns\":{:.1},\
             \"max_ns\":{:.1},\"min_ns\":{:.1},\"mean_ns\":{:.1},\"lost\":{},\"negative\":{}}}",
            self.label.trim(),
            self.samples,
            self.p50,
            self.p99,
            self.p999,
            self.max,
            self.min,
            self.mean,
            self.lost,
            self.negative
        )
    }
}

/// One flat-out throughput trial.
#[derive(Clone)]
struct Throughput {
    label: &'static str,
    messages: u64,
    /// Messages per second the publisher (sender) achieved.
    published_per_s: f64,
    /// Messages per second delivered to the reader (0 without a reader).
    delivered_per_s: f64,
    received: u64,
    lost: u64,
    /// Delivered rates of all trials, for the spread.
    trial_rates: Vec<f64>,
}

impl Throughput {
    /// The median trial by delivered (or, without a reader, published) rate.
    fn median(mut trials: Vec<Throughput>) -> Throughput {
        let key = |t: &Throughput| {
            if t.delivered_per_s > 0.0 {
                t.delivered_per_s
            } else {
                t.published_per_s
            }
        };
        trials.sort_by(|a, b| key(a).total_cmp(&key(b)));
        let rates: Vec<f64> = trials.iter().map(key).collect();
        let mut m = trials[trials.len() / 2].clone();
        m.trial_rates = rates;
        m
    }

    fn json(&self) -> String {
        let rates: Vec<String> = self.trial_rates.iter().map(|r| format!("{r:.0}")).collect();
        format!(
            "{{\"label\":\"{}\",\"messages\":{},\"published_per_s\":{:.0},\"delivered_per_s\":{:.0},\
             \"received\":{},\"lost\":{},\"trial_rates\":[{}]}}",
            self.label,
            self.messages,
            self.published_per_s,
            self.delivered_per_s,
            self.received,
            self.lost,
            rates.join(",")
        )
    }
}

// ------------------------------------------------------------ the runs ----

/// The two cores the two threads run on.
#[derive(Clone, Copy)]
struct Cores {
    writer: Option<core_affinity::CoreId>,
    reader: Option<core_affinity::CoreId>,
}

/// Which kind of ring a run goes through.
#[derive(Clone, Copy)]
struct Mode {
    label: &'static str,
    /// Publishers wait for the subscriber instead of lapping it.
    bounded: bool,
    /// `None`: a single-producer ring; `Some(n)`: a multi-producer ring
    /// written by `n` threads.
    producers: Option<usize>,
}

impl Mode {
    const SPMC: Mode = Mode {
        label: "ringcast SPMC lossy",
        bounded: false,
        producers: None,
    };

    fn writers(&self) -> usize {
        self.producers.unwrap_or(1)
    }
}

/// The ring modes compared against [`Mode::SPMC`] (the cost of each guarantee).
const MODES: [Mode; 6] = [
    Mode {
        label: "ringcast SPMC bounded",
        bounded: true,
        producers: None,
    },
    Mode {
        label: "ringcast MPMC x1 lossy",
        bounded: false,
        producers: Some(1),
    },
    Mode {
        label: "ringcast MPMC x2 lossy",
        bounded: false,
        producers: Some(2),
    },
    Mode {
        label: "ringcast MPMC x2 bounded",
        bounded: true,
        producers: Some(2),
    },
    Mode {
        label: "ringcast MPMC x4 lossy",
        bounded: false,
        producers: Some(4),
    },
    Mode {
        label: "ringcast MPMC x4 bounded",
        bounded: true,
        producers: Some(4),
    },
];

/// A fresh ring of `mode`: its publishers (one per writer thread) and one
/// subscriber at the start.
fn create_ring(dir: &Path, name: &str, mode: Mode) -> (Vec<Publisher>, Subscriber) {
    let opts = CreateOptions {
        fixed_size: true,
        dir: Some(dir.to_owned()),
        bounded: mode.bounded.then_some(CAPACITY),
        producers: if mode.producers.is_some() {
            Producers::many()
        } else {
            Producers::One
        },
        wait: WaitStrategy::BusySpin,
        ..CreateOptions::new(CAPACITY, MSG_SIZE as u32)
    };
    let mut publishers = vec![Publisher::create(name, &opts).expect("create ring")];
    for _ in 1..mode.writers() {
        publishers
            .push(Publisher::attach(name, Some(dir), WaitStrategy::BusySpin).expect("attach"));
    }
    let subscriber = Subscriber::attach(name, Some(dir), Start::Oldest).expect("attach to ring");
    (publishers, subscriber)
}

/// Message `seq` stamped with `stamp`: bytes 0..8 stamp, 8..16 sequence.
#[inline(always)]
fn stamp_message(msg: &mut [u8; MSG_SIZE], seq: u64, stamp: u64) {
    msg[..8].copy_from_slice(&stamp.to_ne_bytes());
    msg[8..16].copy_from_slice(&seq.to_ne_bytes());
}

#[inline(always)]
fn read_u64(msg: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(msg[at..at + 8].try_into().expect("8 bytes"))
}

/// Sends `total` messages through `send`, one per `pace_ns`, stamping each
/// just before.
fn paced_sender(clock: &Clock, total: u64, pace_ns: f64, mut send: impl FnMut(&[u8; MSG_SIZE])) {
    let pace = clock.ticks_for_ns(pace_ns);
    let mut msg = [0u8; MSG_SIZE];
    let mut last = ticks();
    for seq in 0..total {
        // Pace from the previous send (not from a fixed schedule), so a
        // descheduled sender does not burst afterwards and queue messages.
        while ticks().wrapping_sub(last) < pace {}
        let now = ticks();
        stamp_message(&mut msg, seq, now);
        send(&msg);
        last = now;
    }
}

/// What one latency round measures: `n` samples after `warmup` messages.
#[derive(Clone, Copy)]
struct Round<'a> {
    dir: &'a Path,
    cores: Cores,
    clock: &'a Clock,
    index: usize,
    n: usize,
    warmup: usize,
}

impl Round<'_> {
    fn total(&self) -> u64 {
        (self.warmup + self.n) as u64
    }
}

/// (a) One-way latency through a fresh ring: publisher stamps, subscriber
/// measures. The first lap of the ring (its first `CAPACITY` messages, which
/// touch every page of the ring file for the first time) goes to `first_lap`.
fn ring_one_way(r: Round<'_>, mode: Mode, out: &mut Samples, first_lap: &mut Samples) {
    assert!(
        r.warmup as u64 >= CAPACITY,
        "warm-up must cover the first lap"
    );
    let (publishers, mut subscriber) = create_ring(r.dir, &format!("latency-{}", r.index), mode);
    let writers = publishers.len() as u64;
    let per_writer = r.total().div_ceil(writers);
    let total = per_writer * writers;
    let warmup = r.warmup as u64;
    let barrier = Barrier::new(publishers.len() + 1);
    let unlink = publishers[0].identity().clone();
    thread::scope(|s| {
        for mut publisher in publishers {
            let barrier = &barrier;
            s.spawn(move || {
                pin(r.cores.writer, "publisher");
                barrier.wait();
                // Each of n writers sends every n-th message: the ring sees
                // the same rate whatever the number of producers.
                paced_sender(r.clock, per_writer, PACE_NS * writers as f64, |m| {
                    publisher.publish(m).expect("publish");
                });
            });
        }
        pin_scoped(s, r.cores.reader, "subscriber", || {
            let mut buf = [0u8; MSG_SIZE];
            barrier.wait();
            while subscriber.position() < total {
                if let Some(_len) = subscriber.try_recv(&mut buf).expect("try_recv") {
                    let now = ticks();
                    let delta = now.wrapping_sub(read_u64(&buf, 0)) as i64;
                    let seq = subscriber.position() - 1;
                    if seq >= warmup {
                        out.push_delta(r.clock, delta);
                    } else if seq < CAPACITY {
                        first_lap.push_delta(r.clock, delta);
                    }
                }
            }
            out.lost += subscriber.lost();
        });
    });
    unlink.unlink().expect("unlink ring");
}

/// Runs `f` on a new scoped thread pinned to `core` and waits for it.
fn pin_scoped<'scope, F>(
    s: &'scope thread::Scope<'scope, '_>,
    core: Option<core_affinity::CoreId>,
    role: &'static str,
    f: F,
) where
    F: FnOnce() + Send + 'scope,
{
    s.spawn(move || {
        pin(core, role);
        f();
    })
    .join()
    .expect("measurement thread panicked");
}

/// Peer: the same paced one-way measurement through std's bounded channel.
fn mpsc_one_way(r: Round<'_>, out: &mut Samples) {
    let (tx, rx) = mpsc::sync_channel::<[u8; MSG_SIZE]>(CAPACITY as usize);
    let total = r.total();
    let warmup = r.warmup as u64;
    let barrier = &Barrier::new(2);
    thread::scope(|s| {
        s.spawn(move || {
            pin(r.cores.writer, "sender");
            barrier.wait();
            paced_sender(r.clock, total, PACE_NS, |m| tx.send(*m).expect("send"));
        });
        pin_scoped(s, r.cores.reader, "receiver", move || {
            barrier.wait();
            loop {
                match rx.try_recv() {
                    Ok(msg) => {
                        let now = ticks();
                        if read_u64(&msg, 8) >= warmup {
                            out.push_delta(r.clock, now.wrapping_sub(read_u64(&msg, 0)) as i64);
                        }
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => break,
                }
            }
        });
    });
}

/// (c) The physical reference: round trips of a cache line between the two
/// cores; one-way = round trip / 2.
fn cache_line_ping_pong(r: Round<'_>, out: &mut Samples) {
    let round_trips = ping_pong::round_trip_ticks(
        r.total(),
        r.warmup as u64,
        || pin(r.cores.writer, "ping-pong initiator"),
        || pin(r.cores.reader, "ping-pong responder"),
    );
    out.ns
        .extend(round_trips.iter().map(|&t| r.clock.ns(t) / 2.0));
}

/// Round trips through two fresh rings (ping and pong); one-way = round trip
/// / 2. Timed on one core only, so it needs no cross-core clock agreement.
fn ring_round_trip(r: Round<'_>, out: &mut Samples) {
    let (ping, mut ping_sub) = create_ring(r.dir, &format!("rt-ping-{}", r.index), Mode::SPMC);
    let (pong, mut pong_sub) = create_ring(r.dir, &format!("rt-pong-{}", r.index), Mode::SPMC);
    let (mut ping_pub, mut pong_pub) = (only(ping), only(pong));
    let total = r.total();
    let warmup = r.warmup as u64;
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        s.spawn(|| {
            pin(r.cores.reader, "round-trip responder");
            let mut buf = [0u8; MSG_SIZE];
            barrier.wait();
            while ping_sub.position() < total {
                if ping_sub
                    .try_recv(&mut buf)
                    .expect("try_recv ping")
                    .is_some()
                {
                    pong_pub.publish(&buf).expect("publish pong");
                }
            }
        });
        pin_scoped(s, r.cores.writer, "round-trip initiator", || {
            let mut msg = [0u8; MSG_SIZE];
            let mut back = [0u8; MSG_SIZE];
            barrier.wait();
            for seq in 0..total {
                let t0 = ticks();
                stamp_message(&mut msg, seq, t0);
                ping_pub.publish(&msg).expect("publish ping");
                while pong_sub
                    .try_recv(&mut back)
                    .expect("try_recv pong")
                    .is_none()
                {}
                let t1 = ticks();
                assert_eq!(read_u64(&back, 8), seq, "round trip out of order");
                if seq >= warmup {
                    out.ns.push(r.clock.ns(t1 - t0) / 2.0);
                }
            }
        });
    });
    out.lost += pong_sub.lost() + ping_sub.lost();
    ping_pub.unlink().expect("unlink ring");
    pong_pub.unlink().expect("unlink ring");
}

/// The one publisher of a single-producer ring.
fn only(mut publishers: Vec<Publisher>) -> Publisher {
    publishers.pop().expect("one publisher")
}

/// (b) Flat-out throughput through a ring of `mode`, one trial: every writer
/// thread publishes its share, one subscriber reads all.
fn ring_throughput(
    dir: &Path,
    cores: Cores,
    clock: &Clock,
    total: u64,
    trial: usize,
    mode: Mode,
) -> Throughput {
    let (publishers, mut subscriber) = create_ring(dir, &format!("throughput-{trial}"), mode);
    let writers = publishers.len() as u64;
    let per_writer = total / writers;
    let total = per_writer * writers;
    let barrier = Barrier::new(publishers.len() + 1);
    let unlink = publishers[0].identity().clone();
    let (pub_ticks, (sub_ticks, received, lost)) = thread::scope(|s| {
        let reader = s.spawn(|| {
            pin(cores.reader, "subscriber");
            let mut buf = [0u8; MSG_SIZE];
            barrier.wait();
            let t0 = ticks();
            while subscriber.position() < total {
                black_box(subscriber.try_recv(&mut buf).expect("try_recv"));
            }
            (ticks() - t0, subscriber.received(), subscriber.lost())
        });
        let started = ticks();
        let writers: Vec<_> = publishers
            .into_iter()
            .map(|mut publisher| {
                let barrier = &barrier;
                s.spawn(move || {
                    pin(cores.writer, "publisher");
                    let mut msg = [0u8; MSG_SIZE];
                    barrier.wait();
                    for seq in 0..per_writer {
                        msg[8..16].copy_from_slice(&seq.to_ne_bytes());
                        publisher.publish(&msg).expect("publish");
                    }
                    ticks()
                })
            })
            .collect();
        // Publishing ends when the last writer is done.
        let ended = writers
            .into_iter()
            .map(|w| w.join().expect("publisher thread"))
            .max()
            .expect("a writer");
        (ended - started, reader.join().expect("subscriber thread"))
    });
    unlink.unlink().expect("unlink ring");
    assert_eq!(received + lost, total, "subscriber accounting");
    if mode.bounded {
        assert_eq!(lost, 0, "a bounded ring lost messages");
    }
    Throughput {
        label: mode.label,
        messages: total,
        published_per_s: total as f64 / clock.ns(pub_ticks) * 1e9,
        delivered_per_s: received as f64 / clock.ns(sub_ticks) * 1e9,
        received,
        lost,
        trial_rates: Vec::new(),
    }
}

/// Publisher alone (no subscriber): the cost of `publish` itself, on a
/// ring without or with publish timestamps (one clock read per publish).
fn ring_publish_only(
    dir: &Path,
    cores: Cores,
    clock: &Clock,
    total: u64,
    trial: usize,
    timestamps: bool,
) -> Throughput {
    let opts = CreateOptions {
        fixed_size: true,
        dir: Some(dir.to_owned()),
        timestamps,
        ..CreateOptions::new(CAPACITY, MSG_SIZE as u32)
    };
    let mut publisher = Publisher::create(&format!("publish-only-{timestamps}-{trial}"), &opts)
        .expect("create ring");
    let ticks_spent = thread::scope(|s| {
        s.spawn(|| {
            pin(cores.writer, "publisher");
            let mut msg = [0u8; MSG_SIZE];
            let t0 = ticks();
            for seq in 0..total {
                msg[8..16].copy_from_slice(&seq.to_ne_bytes());
                publisher.publish(&msg).expect("publish");
            }
            ticks() - t0
        })
        .join()
        .expect("publisher thread")
    });
    Throughput {
        label: if timestamps {
            "ringcast publish only, timestamps"
        } else {
            "ringcast publish only, no subscriber"
        },
        messages: total,
        published_per_s: total as f64 / clock.ns(ticks_spent) * 1e9,
        delivered_per_s: 0.0,
        received: 0,
        lost: 0,
        trial_rates: Vec::new(),
    }
}

/// Peer: flat-out throughput through std's bounded channel (lossless: the
/// sender waits when the channel is full).
fn mpsc_throughput(cores: Cores, clock: &Clock, total: u64) -> Throughput {
    let (tx, rx) = mpsc::sync_channel::<[u8; MSG_SIZE]>(CAPACITY as usize);
    let barrier = &Barrier::new(2);
    let (pub_ticks, (sub_ticks, received)) = thread::scope(|s| {
        let reader = s.spawn(move || {
            pin(cores.reader, "receiver");
            let mut received = 0u64;
            barrier.wait();
            let t0 = ticks();
            loop {
                match rx.try_recv() {
                    Ok(msg) => {
                        black_box(msg);
                        received += 1;
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => break,
                }
            }
            (ticks() - t0, received)
        });
        let writer = s.spawn(move || {
            pin(cores.writer, "sender");
            let mut msg = [0u8; MSG_SIZE];
            barrier.wait();
            let t0 = ticks();
            for seq in 0..total {
                msg[8..16].copy_from_slice(&seq.to_ne_bytes());
                tx.send(msg).expect("send");
            }
            ticks() - t0
        });
        (
            writer.join().expect("sender thread"),
            reader.join().expect("receiver thread"),
        )
    });
    Throughput {
        label: "std mpsc sync_channel",
        messages: total,
        published_per_s: total as f64 / clock.ns(pub_ticks) * 1e9,
        delivered_per_s: received as f64 / clock.ns(sub_ticks) * 1e9,
        received,
        lost: total - received,
        trial_rates: Vec::new(),
    }
}

// ---------------------------------------------------------------- main ----

struct Args {
    messages: usize,
    json: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        messages: 1_000_000,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--messages" => {
                let v = it.next().unwrap_or_default();
                args.messages = v.replace('_', "").parse().unwrap_or_else(|_| {
                    eprintln!("--messages needs a positive integer, got {v:?}");
                    std::process::exit(2)
                });
                if args.messages == 0 {
                    eprintln!("--messages must be at least 1");
                    std::process::exit(2);
                }
            }
            "--json" => args.json = true,
            "-h" | "--help" => {
                println!("usage: ring_latency [--messages N] [--json]");
                println!("  --messages N  latency samples per measurement (default 1000000);");
                println!(
                    "                throughput trials move {THROUGHPUT_FACTOR} x N messages each"
                );
                println!("  --json        print one JSON object instead of the tables");
                std::process::exit(0);
            }
            other => {
                eprintln!(
                    "unknown argument {other:?}; usage: ring_latency [--messages N] [--json]"
                );
                std::process::exit(2);
            }
        }
    }
    args
}

/// A temporary ring directory, in /dev/shm when there is one (as in production).
fn main() {
    let args = parse_args();
    let n = args.messages;
    // Every round warms up for two laps of its fresh ring: the first lap
    // takes a page fault every 4 KiB (reported separately).
    let warmup = 2 * CAPACITY as usize;
    let throughput_total = (n * THROUGHPUT_FACTOR) as u64;

    let ids = pinning::cpus().to_vec();
    let cores = if ids.len() >= 2 {
        Cores {
            writer: Some(ids[0]),
            reader: Some(ids[1]),
        }
    } else {
        eprintln!(
            "warning: fewer than two cores available to pin to ({}); running unpinned",
            ids.len()
        );
        pinning::mark_unpinned();
        Cores {
            writer: None,
            reader: None,
        }
    };
    let clock = Clock::calibrate();
    let overhead = clock_overhead_ns(&clock);
    let dir = ring_dir();

    // The measurements are interleaved in rounds, so that a change of the
    // machine's state (the host moving a vCPU, another job starting) shows in
    // all of them alike instead of skewing the ratios between them.
    let mut one_way = Samples::default();
    let mut first_lap = Samples::default();
    let mut ping_pong = Samples::default();
    let mut round_trip = Samples::default();
    let mut peer = Samples::default();
    let mut mode_latency: Vec<Samples> = MODES.iter().map(|_| Samples::default()).collect();
    for index in 0..ROUNDS {
        let per_round = n / ROUNDS + usize::from(index < n % ROUNDS);
        let r = Round {
            dir: dir.path(),
            cores,
            clock: &clock,
            index,
            n: per_round,
            warmup,
        };
        ring_one_way(r, Mode::SPMC, &mut one_way, &mut first_lap);
        for (mode, samples) in MODES.iter().zip(mode_latency.iter_mut()) {
            ring_one_way(r, *mode, samples, &mut Samples::default());
        }
        cache_line_ping_pong(r, &mut ping_pong);
        ring_round_trip(r, &mut round_trip);
        mpsc_one_way(r, &mut peer);
    }
    let mut latencies = vec![
        Latency::new("ringcast publish -> try_recv", one_way),
        Latency::new("  same, first lap of a fresh ring", first_lap),
        Latency::new("cache-line ping-pong, rtt/2", ping_pong),
        Latency::new("ringcast round trip, rtt/2", round_trip),
        Latency::new("std mpsc sync_channel -> try_recv", peer),
    ];
    for (mode, samples) in MODES.iter().zip(mode_latency) {
        latencies.push(Latency::new(mode.label, samples));
    }

    let ring_tp = Throughput::median(
        (0..TRIALS)
            .map(|t| ring_throughput(dir.path(), cores, &clock, throughput_total, t, Mode::SPMC))
            .collect(),
    );
    let mode_tp = MODES.iter().map(|mode| {
        Throughput::median(
            (0..TRIALS)
                .map(|t| ring_throughput(dir.path(), cores, &clock, throughput_total, t, *mode))
                .collect(),
        )
    });
    let [publish_only, publish_stamped] = [false, true].map(|timestamps| {
        Throughput::median(
            (0..TRIALS)
                .map(|t| {
                    ring_publish_only(dir.path(), cores, &clock, throughput_total, t, timestamps)
                })
                .collect(),
        )
    });
    let peer_tp = Throughput::median(
        (0..TRIALS)
            .map(|_| mpsc_throughput(cores, &clock, throughput_total))
            .collect(),
    );
    let mut throughputs = vec![ring_tp, publish_only, peer_tp];
    throughputs.extend(mode_tp);
    throughputs.push(publish_stamped);

    let ratio = latencies[0].p50 / latencies[2].p50;
    let rt_ratio = latencies[3].p50 / latencies[2].p50;
    let pinned = pinning::all_pinned();
    let core_names = match (cores.writer, cores.reader) {
        (Some(w), Some(r)) => format!("{} -> {}", w.id, r.id),
        _ => "unpinned".to_owned(),
    };

    if args.json {
        let lat: Vec<String> = latencies.iter().map(Latency::json).collect();
        let tp: Vec<String> = throughputs.iter().map(Throughput::json).collect();
        println!(
            "{{\"message_bytes\":{MSG_SIZE},\"capacity\":{CAPACITY},\"pace_ns\":{PACE_NS},\
             \"samples\":{n},\"warmup\":{warmup},\"pinned\":{pinned},\"cores\":\"{core_names}\",\
             \"clock\":\"{}\",\"ns_per_tick\":{:.6},\"clock_overhead_ns\":{overhead:.1},\
             \"latency\":[{}],\"throughput\":[{}],\
             \"ratio_ringcast_p50_to_pingpong_one_way\":{ratio:.3},\
             \"ratio_ringcast_rtt_to_pingpong_rtt\":{rt_ratio:.3}}}",
            clock.source,
            clock.ns_per_tick,
            lat.join(","),
            tp.join(",")
        );
        return;
    }

    println!(
        "ringcast ring_latency: {MSG_SIZE}-byte messages, ring capacity {CAPACITY}, ring dir {}",
        dir.path().display()
    );
    println!(
        "threads on cores {core_names} ({}), clock: {} ({:.4} ns/tick, one reading costs ~{overhead:.0} ns)",
        if pinned { "pinned" } else { "NOT pinned" },
        clock.source,
        clock.ns_per_tick
    );
    println!();
    println!(
        "Latency, ns ({n} samples in {ROUNDS} interleaved rounds, each after {warmup} warm-up; one-way runs paced at one message per {PACE_NS:.0} ns)"
    );
    println!(
        "{:<36} {:>8} {:>8} {:>8} {:>10} {:>8} {:>8} {:>6} {:>8}",
        "path", "p50", "p99", "p99.9", "max", "min", "mean", "lost", "samples"
    );
    for l in &latencies {
        println!(
            "{:<36} {:>8.0} {:>8.0} {:>8.0} {:>10.0} {:>8.0} {:>8.1} {:>6} {:>8}",
            l.label, l.p50, l.p99, l.p999, l.max, l.min, l.mean, l.lost, l.samples
        );
        if l.negative > 0 {
            println!(
                "  ({} samples negative: the two cores' TSCs disagree)",
                l.negative
            );
        }
    }
    println!();
    println!("ratio ringcast one-way p50 / ping-pong one-way p50 = {ratio:.2}");
    println!("ratio ringcast rtt/2 p50 / ping-pong rtt/2 p50     = {rt_ratio:.2}");
    println!();
    println!(
        "Throughput, flat out ({TRIALS} trials of {throughput_total} messages; median trial shown, min..max of trials)"
    );
    println!(
        "{:<36} {:>13} {:>13} {:>11} {:>11} {:>7}  trials min..max /s",
        "path", "published/s", "delivered/s", "received", "lost", "lost %"
    );
    for t in &throughputs {
        let lo = t.trial_rates.first().copied().unwrap_or(0.0);
        let hi = t.trial_rates.last().copied().unwrap_or(0.0);
        let (delivered, received, lost, lost_pct) = if t.delivered_per_s > 0.0 {
            (
                format!("{:.2}M", t.delivered_per_s / 1e6),
                t.received.to_string(),
                t.lost.to_string(),
                format!("{:.1}", 100.0 * t.lost as f64 / t.messages as f64),
            )
        } else {
            ("-".into(), "-".into(), "-".into(), "-".into())
        };
        println!(
            "{:<36} {:>12.2}M {:>13} {:>11} {:>11} {:>7}  {:.2}M..{:.2}M",
            t.label,
            t.published_per_s / 1e6,
            delivered,
            received,
            lost,
            lost_pct,
            lo / 1e6,
            hi / 1e6
        );
    }
    println!();
    println!(
        "Cost of each guarantee, against {} (same run)",
        Mode::SPMC.label
    );
    println!(
        "{:<36} {:>14} {:>14} {:>20}",
        "mode", "p50 ratio", "p99 ratio", "delivered/s ratio"
    );
    let (base_lat, base_tp) = (&latencies[0], &throughputs[0]);
    for (i, mode) in MODES.iter().enumerate() {
        let (l, t) = (&latencies[5 + i], &throughputs[3 + i]);
        println!(
            "{:<36} {:>14.2} {:>14.2} {:>20.2}",
            mode.label,
            l.p50 / base_lat.p50,
            l.p99 / base_lat.p99,
            t.delivered_per_s / base_tp.delivered_per_s
        );
    }
    let stamped = &throughputs[throughputs.len() - 1];
    println!(
        "{:<36} {:>14} {:>14} {:>20.2}  (publish only, ns per publish {:.1} -> {:.1})",
        "timestamps (a clock read per publish)",
        "",
        "",
        stamped.published_per_s / throughputs[1].published_per_s,
        1e9 / throughputs[1].published_per_s,
        1e9 / stamped.published_per_s
    );
}
