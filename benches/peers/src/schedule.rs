//! The run: latency rounds and throughput trials, each interleaved across
//! the paths, so that a change of the machine's state shows in all rows
//! alike. A path's first failure ends it (its row says why); the others go
//! on.

use crate::args::{Args, THROUGHPUT_FACTOR};
use crate::drive::{LatencyJob, Run, StampLog, ThroughputJob};
use crate::harness::{Ctx, Transport, FAN_OUT, WARMUP};
use crate::peers::{limit, Path};
use crate::report::{LatencyRow, Outcome, ThroughputRow};
use crate::stats::{Latency, Trial, Trials};

/// A measurement of `total` messages over `(peer, transport)` to
/// `receivers`, on a ring or service named after all of these.
fn run<'a>(
    ctx: &'a Ctx,
    (peer, transport): Path,
    what: &str,
    index: usize,
    receivers: usize,
    total: u64,
) -> Run<'a> {
    let info = peer.info();
    let name = ctx.name(&format!("{what}-{}-{}", info.key, transport.label()), index);
    Run::new(ctx, info, name, receivers, total)
}

/// Samples of one latency path, accumulated over the rounds.
#[derive(Default)]
struct LatencyAcc {
    ns: Vec<f64>,
    lost: u64,
    error: Option<String>,
}

/// The limit's row, then one row per path: `args.messages` samples each,
/// spread over `args.rounds` rounds, each after [`WARMUP`] unrecorded
/// messages.
pub fn latency(ctx: &Ctx, args: &Args, paths: &[Path]) -> Vec<LatencyRow> {
    let n = args.messages;
    let mut limit_ns = Vec::new();
    let mut accs: Vec<LatencyAcc> = paths.iter().map(|_| LatencyAcc::default()).collect();
    for round in 0..args.rounds {
        let per_round = n / args.rounds as u64 + u64::from((round as u64) < n % args.rounds as u64);
        eprintln!("latency round {}/{}", round + 1, args.rounds);
        limit_ns.extend(limit::round(ctx, per_round));
        for (&path, acc) in paths.iter().zip(accs.iter_mut()) {
            if acc.error.is_some() {
                continue;
            }
            match latency_round(ctx, path, round, per_round) {
                Ok(log) => {
                    acc.ns
                        .extend(log.deltas.iter().map(|&d| d as f64 * ctx.clock.ns_per_tick));
                    acc.lost += log.lost;
                }
                Err(e) => acc.error = Some(e),
            }
        }
    }
    let mut rows = vec![LatencyRow {
        label: limit::LABEL,
        transport: Transport::Threads,
        peer: None,
        result: Outcome(Latency::new(limit_ns, 0)),
    }];
    for (&(peer, transport), acc) in paths.iter().zip(accs) {
        let info = peer.info();
        rows.push(LatencyRow {
            label: info.label,
            transport,
            peer: Some(info),
            result: Outcome(match acc.error {
                Some(e) => Err(e),
                None => Latency::new(acc.ns, acc.lost),
            }),
        });
    }
    rows
}

/// One latency round of one path: `n` recorded messages after [`WARMUP`].
fn latency_round(ctx: &Ctx, path: Path, round: usize, n: u64) -> Result<StampLog, String> {
    let job = LatencyJob(run(ctx, path, "lat", round, 1, WARMUP + n));
    path.0.latency(path.1, &job)
}

/// One row per path and fan-out (1 -> 1, then 1 -> [`FAN_OUT`]): the median
/// of `args.trials` flat-out trials of `args.messages` x
/// [`THROUGHPUT_FACTOR`] messages.
pub fn throughput(ctx: &Ctx, args: &Args, paths: &[Path]) -> Vec<ThroughputRow> {
    let total = args.messages * THROUGHPUT_FACTOR;
    let cases: Vec<(Path, usize)> = [1, FAN_OUT]
        .iter()
        .flat_map(|&f| paths.iter().map(move |&p| (p, f)))
        .collect();
    let mut trials: Vec<Result<Vec<Trial>, String>> =
        cases.iter().map(|_| Ok(Vec::new())).collect();
    for trial in 0..args.trials {
        eprintln!("throughput trial {}/{}", trial + 1, args.trials);
        for (&(path, fan_out), slot) in cases.iter().zip(trials.iter_mut()) {
            if let Ok(done) = slot {
                let job = ThroughputJob(run(
                    ctx,
                    path,
                    &format!("tp{fan_out}"),
                    trial,
                    fan_out,
                    total,
                ));
                match path.0.throughput(path.1, &job) {
                    Ok(t) => done.push(t),
                    Err(e) => *slot = Err(e),
                }
            }
        }
    }
    cases
        .iter()
        .zip(trials)
        .map(|(&((peer, transport), fan_out), t)| {
            ThroughputRow::new(
                peer.info(),
                transport,
                fan_out,
                total,
                t.and_then(Trials::new),
            )
        })
        .collect()
}
