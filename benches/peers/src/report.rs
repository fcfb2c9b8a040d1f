//! The report: every row measured, ringcast's ratios to each peer, and how
//! each path is set up; printed as tables or, with `--json`, serialized as
//! one JSON object by serde (its field names are what consumers of the JSON
//! read: renaming one breaks them).

use crate::args::{Args, THROUGHPUT_FACTOR};
use crate::harness::{
    Ctx, Info, Transport, CAPACITY, FAN_OUT, MSG_SIZE, PACE_NS, SPIN_POLLS, WARMUP,
};
use crate::pinning;
use crate::process::CHILD_FLAG;
use crate::stats::{Latency, Trials};
use serde::{Serialize, Serializer};
use std::fmt::Write as _;

// ------------------------------------------------------ JSON numbers ----

/// A number serialized as it reads when printed with `PLACES` decimals
/// (`{:.PLACES$}`, the report's precision; trailing zeros aside): an integer
/// for 0 places, `null` when not finite.
struct Fixed<const PLACES: usize>(f64);

impl<const PLACES: usize> Serialize for Fixed<PLACES> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.0.is_finite() {
            return s.serialize_none();
        }
        // Parsing the printed decimal gives the double nearest to it, which
        // serializes as that decimal: the rounding is the formatter's.
        let text = format!("{:.*}", PLACES, self.0);
        if PLACES == 0 {
            if let Ok(whole) = text.parse::<i64>() {
                return s.serialize_i64(whole);
            }
        }
        s.serialize_f64(text.parse().expect("a printed finite number parses"))
    }
}

/// `serialize_with` for an f64 field: [`Fixed`].
pub fn fixed<const PLACES: usize, S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    Fixed::<PLACES>(*x).serialize(s)
}

/// `serialize_with` for an optional f64 field: [`Fixed`] or `null`.
pub fn fixed_opt<const PLACES: usize, S: Serializer>(
    x: &Option<f64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    x.map(Fixed::<PLACES>).serialize(s)
}

/// `serialize_with` for a list of f64: each one [`Fixed`].
pub fn fixed_each<const PLACES: usize, S: Serializer>(x: &[f64], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(x.iter().map(|&v| Fixed::<PLACES>(v)))
}

/// `serialize_with` for (key, value) pairs: one JSON object, keys in order.
fn in_order<S: Serializer>(pairs: &[(&str, &str)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|&(k, v)| (k, v)))
}

// ------------------------------------------------------------- rows ----

/// A row's figures, or why it has none. Flattened into its row: either
/// `"measured": true` and the figures' fields, or `"measured": false` and
/// `"reason"`.
pub struct Outcome<T>(pub Result<T, String>);

impl<T: Serialize> Serialize for Outcome<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Fields<'a, T> {
            measured: bool,
            #[serde(flatten)]
            figures: Option<&'a T>,
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<&'a str>,
        }
        let (figures, reason) = match &self.0 {
            Ok(f) => (Some(f), None),
            Err(e) => (None, Some(e.as_str())),
        };
        Fields {
            measured: figures.is_some(),
            figures,
            reason,
        }
        .serialize(s)
    }
}

/// One latency row of the report.
#[derive(Serialize)]
pub struct LatencyRow {
    pub label: &'static str,
    pub transport: Transport,
    /// `None` for the ping-pong limit.
    #[serde(skip)]
    pub peer: Option<Info>,
    #[serde(flatten)]
    pub result: Outcome<Latency>,
}

/// One throughput row: one path at one fan-out.
#[derive(Serialize)]
pub struct ThroughputRow {
    pub label: &'static str,
    pub transport: Transport,
    pub fan_out: usize,
    pub lossless: bool,
    /// Messages of each trial.
    pub messages: u64,
    #[serde(skip)]
    pub ringcast: bool,
    #[serde(flatten)]
    pub result: Outcome<Trials>,
}

impl ThroughputRow {
    pub fn new(
        peer: Info,
        transport: Transport,
        fan_out: usize,
        messages: u64,
        result: Result<Trials, String>,
    ) -> Self {
        Self {
            label: peer.label,
            transport,
            fan_out,
            lossless: peer.lossless,
            messages,
            ringcast: peer.ringcast,
            result: Outcome(result),
        }
    }
}

/// A latency ratio of two rows, when both were measured.
#[derive(Serialize)]
struct LatencyRatio {
    ringcast: &'static str,
    peer: &'static str,
    transport: Transport,
    /// ringcast p50 / peer p50.
    #[serde(rename = "p50_ratio", serialize_with = "fixed::<3, _>")]
    p50: f64,
    /// ringcast p99 / peer p99.
    #[serde(rename = "p99_ratio", serialize_with = "fixed::<3, _>")]
    p99: f64,
    like_for_like: bool,
}

/// A throughput ratio: ringcast / peer, mean delivered per receiver.
#[derive(Serialize)]
struct ThroughputRatio {
    ringcast: &'static str,
    peer: &'static str,
    transport: Transport,
    fan_out: usize,
    #[serde(rename = "delivered_ratio", serialize_with = "fixed::<3, _>")]
    delivered: f64,
    #[serde(rename = "published_ratio", serialize_with = "fixed::<3, _>")]
    published: f64,
    like_for_like: bool,
}

// ----------------------------------------------------------- report ----

/// Everything measured, and how. The field order is the JSON's.
#[derive(Serialize)]
pub struct Report {
    message_bytes: usize,
    capacity: usize,
    #[serde(serialize_with = "fixed::<0, _>")]
    pace_ns: f64,
    warmup: u64,
    messages: u64,
    rounds: usize,
    trials: usize,
    throughput_messages: u64,
    quick: bool,
    /// Cores this process may run on.
    cores: usize,
    /// Every thread of this process got the core it asked for.
    pinned: bool,
    /// Where the threads ran, in words.
    placement: String,
    clock: &'static str,
    #[serde(serialize_with = "fixed::<6, _>")]
    ns_per_tick: f64,
    #[serde(serialize_with = "fixed::<1, _>")]
    clock_overhead_ns: f64,
    /// Load averages at the start and at the end of the run.
    load_average_start: String,
    load_average_end: String,
    latency: Vec<LatencyRow>,
    throughput: Vec<ThroughputRow>,
    latency_ratios_ringcast_over_peer: Vec<LatencyRatio>,
    throughput_ratios_ringcast_over_peer: Vec<ThroughputRatio>,
    /// (label, how it is set up) of every peer with a row.
    #[serde(serialize_with = "in_order")]
    configuration: Vec<(&'static str, &'static str)>,
    /// Cores the threads were pinned to (0: unpinned).
    #[serde(skip)]
    pinned_cores: usize,
}

impl Report {
    /// The report of a finished run: fills in each latency row's p50 over
    /// the limit's, and works out the ratios.
    pub fn new(
        args: &Args,
        ctx: &Ctx,
        overhead: f64,
        load: [String; 2],
        mut latency: Vec<LatencyRow>,
        throughput: Vec<ThroughputRow>,
        configured: &[Info],
    ) -> Self {
        let limit = latency
            .iter()
            .find(|row| row.peer.is_none())
            .and_then(|row| row.result.0.as_ref().ok())
            .map(|l| l.p50);
        for row in &mut latency {
            if let Ok(l) = &mut row.result.0 {
                l.p50_over_limit = limit.map(|lim| l.p50 / lim);
            }
        }
        let [load_average_start, load_average_end] = load;
        Self {
            message_bytes: MSG_SIZE,
            capacity: CAPACITY,
            pace_ns: PACE_NS,
            warmup: WARMUP,
            messages: args.messages,
            rounds: args.rounds,
            trials: args.trials,
            throughput_messages: args.messages * THROUGHPUT_FACTOR,
            quick: args.quick,
            cores: crate::pinning::cpus().len(),
            pinned: pinning::all_pinned(),
            placement: placement(ctx),
            clock: ctx.clock.source,
            ns_per_tick: ctx.clock.ns_per_tick,
            clock_overhead_ns: overhead,
            load_average_start,
            load_average_end,
            latency_ratios_ringcast_over_peer: latency_ratios(&latency),
            throughput_ratios_ringcast_over_peer: throughput_ratios(&throughput),
            latency,
            throughput,
            configuration: configured.iter().map(|p| (p.label, p.config)).collect(),
            pinned_cores: ctx.cores.len(),
        }
    }

    /// The report as one JSON object.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("the report serializes")
    }

    /// The report as tables.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "rust_peers: ringcast vs Rust peers, {MSG_SIZE}-byte messages, {CAPACITY} slots everywhere{}",
            if self.quick { " (--quick smoke run)" } else { "" }
        );
        let _ = writeln!(
            o,
            "machine: {} cores usable; {} ({}); clock: {} ({:.4} ns/tick, one reading ~{:.0} ns)",
            self.cores,
            self.placement,
            if self.pinned { "pinned" } else { "NOT pinned" },
            self.clock,
            self.ns_per_tick,
            self.clock_overhead_ns
        );
        let _ = writeln!(
            o,
            "load average (1/5/15 min) at start: {}, at end: {} (at start: other work competing for the cores; the end figure includes this run)",
            self.load_average_start, self.load_average_end
        );
        if self.pinned_cores < FAN_OUT + 1 {
            let _ = writeln!(
                o,
                "note: 1 -> {FAN_OUT} runs {} threads on {} cores: receivers share cores with each other and \
                 with the publisher, so 1 -> {FAN_OUT} rates measure time-slicing as much as the paths",
                FAN_OUT + 1,
                self.pinned_cores.max(1)
            );
        }
        let _ = writeln!(o);

        // Latency.
        let _ = writeln!(
            o,
            "One-way latency, ns ({} samples per path in {} interleaved rounds, each after {WARMUP} warm-up \
             messages; one message per {PACE_NS:.0} ns; receiver spinning)",
            self.messages, self.rounds
        );
        let _ = writeln!(
            o,
            "{:<35} {:<9} {:>7} {:>7} {:>7} {:>9} {:>6} {:>7} {:>6} {:>8} {:>9}",
            "path",
            "transport",
            "p50",
            "p99",
            "p99.9",
            "max",
            "min",
            "mean",
            "lost",
            "samples",
            "p50/limit"
        );
        for row in &self.latency {
            match &row.result.0 {
                Ok(l) => {
                    let _ = writeln!(
                        o,
                        "{:<35} {:<9} {:>7.0} {:>7.0} {:>7.0} {:>9.0} {:>6.0} {:>7.1} {:>6} {:>8} {:>9}",
                        row.label,
                        row.transport.label(),
                        l.p50,
                        l.p99,
                        l.p999,
                        l.max,
                        l.min,
                        l.mean,
                        l.lost,
                        l.samples,
                        l.p50_over_limit.map_or("-".into(), ratio_text)
                    );
                    if l.negative > 0 {
                        let _ = writeln!(
                            o,
                            "  ({} samples negative: the TSCs of the two cores disagree)",
                            l.negative
                        );
                    }
                }
                Err(e) => {
                    let _ = writeln!(
                        o,
                        "{:<35} {:<9} not measured: {e}",
                        row.label,
                        row.transport.label()
                    );
                }
            }
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Latency ratios, ringcast / peer (same transport, same run; < 1: ringcast lower; * like-for-like delivery)"
        );
        let _ = writeln!(
            o,
            "{:<22} {:<24} {:<9} {:>10} {:>10}",
            "ringcast", "peer", "transport", "p50 ratio", "p99 ratio"
        );
        for r in &self.latency_ratios_ringcast_over_peer {
            let _ = writeln!(
                o,
                "{:<22} {:<24} {:<9} {:>10} {:>10}",
                format!("{}{}", r.ringcast, if r.like_for_like { " *" } else { "" }),
                r.peer,
                r.transport.label(),
                ratio_text(r.p50),
                ratio_text(r.p99)
            );
        }
        let _ = writeln!(o);

        // Throughput.
        for fan_out in [1, FAN_OUT] {
            let _ = writeln!(
                o,
                "Throughput 1 -> {fan_out}, flat out ({} trial(s) of {} messages; median trial by mean delivered/s{})",
                self.trials,
                self.throughput_messages,
                if fan_out > 1 && self.pinned_cores < fan_out + 1 {
                    format!("; {} threads share {} cores", fan_out + 1, self.pinned_cores.max(1))
                } else {
                    String::new()
                }
            );
            let _ = writeln!(
                o,
                "{:<24} {:<9} {:<8} {:>11} {:>13} {:>11} {:>10} {:>6}  trials (mean delivered/s)",
                "path",
                "transport",
                "delivery",
                "published/s",
                "delivered/s",
                "slowest/s",
                "lost",
                "lost%"
            );
            for row in self.throughput.iter().filter(|r| r.fan_out == fan_out) {
                let delivery = if row.lossless { "lossless" } else { "lossy" };
                match &row.result.0 {
                    Ok(Trials { median: t, rates }) => {
                        let rates: Vec<String> =
                            rates.iter().map(|r| format!("{:.2}M", r / 1e6)).collect();
                        let _ = writeln!(
                            o,
                            "{:<24} {:<9} {:<8} {:>10.2}M {:>12.2}M {:>10.2}M {:>10} {:>6.1}  {}",
                            row.label,
                            row.transport.label(),
                            delivery,
                            t.published_per_s / 1e6,
                            t.delivered_mean_per_s / 1e6,
                            t.delivered_min_per_s / 1e6,
                            t.lost,
                            100.0 * t.lost as f64 / (row.messages * fan_out as u64) as f64,
                            rates.join(" ")
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(
                            o,
                            "{:<24} {:<9} {:<8} not measured: {e}",
                            row.label,
                            row.transport.label(),
                            delivery
                        );
                    }
                }
            }
            let _ = writeln!(o);
        }
        let _ = writeln!(
            o,
            "Throughput ratios, ringcast / peer (same transport and fan-out, same run; > 1: ringcast faster; \
             * like-for-like delivery: lossy vs lossy, lossless vs lossless)"
        );
        let _ = writeln!(
            o,
            "{:<20} {:<24} {:<9} {:>6} {:>15} {:>15}",
            "ringcast", "peer", "transport", "1 -> n", "delivered/s", "published/s"
        );
        for r in &self.throughput_ratios_ringcast_over_peer {
            let _ = writeln!(
                o,
                "{:<20} {:<24} {:<9} {:>6} {:>15} {:>15}",
                format!("{}{}", r.ringcast, if r.like_for_like { " *" } else { "" }),
                r.peer,
                r.transport.label(),
                r.fan_out,
                ratio_text(r.delivered),
                ratio_text(r.published)
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "How each path is set up (Msg = [u8; {MSG_SIZE}]; delivered/s: messages a receiver got per second from the publisher's first send to its own last receive, mean over receivers; slowest/s: the slowest receiver; lost: summed over receivers; waits: spin {SPIN_POLLS} polls then yield, except where noted):");
        for (label, config) in &self.configuration {
            let _ = writeln!(o, "- {label}: {config}");
        }
        let _ = writeln!(
            o,
            "- processes: the receivers are this binary re-executed ({CHILD_FLAG}), one process per receiver, \
             pinned like the threads; the publisher waits until each has attached"
        );
        o
    }
}

/// Where the threads ran, in words.
fn placement(ctx: &Ctx) -> String {
    match (ctx.publisher_core(), ctx.receiver_core(0)) {
        (Some(p), Some(r)) => {
            let fan: Vec<String> = (0..FAN_OUT)
                .map(|i| {
                    ctx.receiver_core(i)
                        .map_or("-".into(), |c| c.id.to_string())
                })
                .collect();
            format!(
                "publisher on core {}, receiver on core {}; 1 -> {FAN_OUT} receivers on cores {}",
                p.id,
                r.id,
                fan.join(",")
            )
        }
        _ => "unpinned".to_owned(),
    }
}

/// ringcast's p50 and p99 over each measured peer's, same transport.
fn latency_ratios(rows: &[LatencyRow]) -> Vec<LatencyRatio> {
    let mut out = Vec::new();
    for peer_row in rows {
        let (Some(peer), Ok(pl)) = (peer_row.peer, &peer_row.result.0) else {
            continue;
        };
        if peer.ringcast {
            continue;
        }
        for ring_row in rows {
            let (Some(ring), Ok(rl)) = (ring_row.peer, &ring_row.result.0) else {
                continue;
            };
            if !ring.ringcast || ring_row.transport != peer_row.transport {
                continue;
            }
            out.push(LatencyRatio {
                ringcast: ring.label,
                peer: peer.label,
                transport: peer_row.transport,
                p50: rl.p50 / pl.p50,
                p99: rl.p99 / pl.p99,
                like_for_like: ring.lossless == peer.lossless,
            });
        }
    }
    out
}

/// ringcast lossy and bounded over each measured peer, same transport and
/// fan-out.
fn throughput_ratios(rows: &[ThroughputRow]) -> Vec<ThroughputRatio> {
    let mut out = Vec::new();
    for peer_row in rows {
        let Ok(pt) = &peer_row.result.0 else {
            continue;
        };
        if peer_row.ringcast {
            continue;
        }
        for ring_row in rows {
            let Ok(rt) = &ring_row.result.0 else {
                continue;
            };
            if !ring_row.ringcast
                || ring_row.transport != peer_row.transport
                || ring_row.fan_out != peer_row.fan_out
            {
                continue;
            }
            out.push(ThroughputRatio {
                ringcast: ring_row.label,
                peer: peer_row.label,
                transport: peer_row.transport,
                fan_out: peer_row.fan_out,
                delivered: rt.median.delivered_mean_per_s / pt.median.delivered_mean_per_s,
                published: rt.median.published_per_s / pt.median.published_per_s,
                like_for_like: ring_row.lossless == peer_row.lossless,
            });
        }
    }
    out
}

/// A ratio with three significant digits or so (0.0042, 0.42, 4.20, 42.0).
fn ratio_text(r: f64) -> String {
    if !r.is_finite() {
        "-".to_owned()
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else if r >= 0.1 {
        format!("{r:.2}")
    } else {
        format!("{r:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::Clock;
    use crate::peers::PEERS;
    use crate::stats::Trial;
    use serde_json::Value;

    /// The keys of a JSON object, sorted.
    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        k.sort_unstable();
        k
    }

    /// `names`, sorted.
    fn sorted<'a>(names: &[&'a str]) -> Vec<&'a str> {
        let mut v = names.to_vec();
        v.sort_unstable();
        v
    }

    fn trial(rate: f64) -> Trial {
        Trial {
            published_per_s: rate,
            delivered_mean_per_s: rate,
            delivered_min_per_s: rate,
            received: 10,
            lost: 0,
        }
    }

    /// The JSON's field names are its consumers' contract: the ones the
    /// single-file rust_peers printed, measured rows and unmeasured ones.
    #[test]
    fn json_keeps_every_field_name() {
        let args = Args {
            messages: 10,
            rounds: 1,
            trials: 1,
            json: true,
            quick: true,
            throughput_only: false,
            only: None,
        };
        let ctx = Ctx {
            clock: Clock {
                ns_per_tick: 0.5,
                source: "test",
            },
            cores: Vec::new(),
            dir: std::path::PathBuf::new(),
            tag: "t".to_owned(),
        };
        let info = |key: &str| {
            PEERS
                .iter()
                .map(|p| p.info())
                .find(|i| i.key == key)
                .expect("a peer with this key")
        };
        let (ring, peer) = (info("ringcast-lossy"), info("disruptor"));
        let latency = vec![
            LatencyRow {
                label: "limit",
                transport: Transport::Threads,
                peer: None,
                result: Outcome(Latency::new(vec![100.0, 120.0], 0)),
            },
            LatencyRow {
                label: ring.label,
                transport: Transport::Threads,
                peer: Some(ring),
                result: Outcome(Latency::new(vec![150.0, 250.0], 0)),
            },
            LatencyRow {
                label: peer.label,
                transport: Transport::Threads,
                peer: Some(peer),
                result: Outcome(Latency::new(vec![120.0, 200.0], 0)),
            },
            LatencyRow {
                label: peer.label,
                transport: Transport::Processes,
                peer: Some(peer),
                result: Outcome(Err("no".to_owned())),
            },
        ];
        let throughput = vec![
            ThroughputRow::new(
                ring,
                Transport::Threads,
                1,
                10,
                Trials::new(vec![trial(2e6)]),
            ),
            ThroughputRow::new(
                peer,
                Transport::Threads,
                1,
                10,
                Trials::new(vec![trial(1e6)]),
            ),
            ThroughputRow::new(peer, Transport::Processes, 1, 10, Err("no".to_owned())),
        ];
        let report = Report::new(
            &args,
            &ctx,
            30.0,
            ["1 1 1".to_owned(), "2 2 2".to_owned()],
            latency,
            throughput,
            &[ring, peer],
        );
        let v: Value = serde_json::from_str(&report.json()).expect("valid JSON");

        assert_eq!(
            keys(&v),
            sorted(&[
                "message_bytes",
                "capacity",
                "pace_ns",
                "warmup",
                "messages",
                "rounds",
                "trials",
                "throughput_messages",
                "quick",
                "cores",
                "pinned",
                "placement",
                "clock",
                "ns_per_tick",
                "clock_overhead_ns",
                "load_average_start",
                "load_average_end",
                "latency",
                "throughput",
                "latency_ratios_ringcast_over_peer",
                "throughput_ratios_ringcast_over_peer",
                "configuration",
            ])
        );
        let measured_latency = sorted(&[
            "label",
            "transport",
            "measured",
            "samples",
            "p50_ns",
            "p99_ns",
            "p999_ns",
            "max_ns",
            "min_ns",
            "mean_ns",
            "lost",
            "negative",
            "p50_over_limit",
        ]);
        let not_measured = sorted(&["label", "transport", "measured", "reason"]);
        assert_eq!(keys(&v["latency"][0]), measured_latency);
        assert_eq!(keys(&v["latency"][2]), measured_latency);
        assert_eq!(keys(&v["latency"][3]), not_measured);
        assert_eq!(v["latency"][3]["measured"], Value::Bool(false));
        assert_eq!(
            keys(&v["throughput"][0]),
            sorted(&[
                "label",
                "transport",
                "fan_out",
                "lossless",
                "messages",
                "measured",
                "published_per_s",
                "delivered_per_s_mean",
                "delivered_per_s_slowest",
                "received",
                "lost",
                "trial_delivered_per_s",
            ])
        );
        assert_eq!(
            keys(&v["throughput"][2]),
            sorted(&[
                "label",
                "transport",
                "fan_out",
                "lossless",
                "messages",
                "measured",
                "reason"
            ])
        );
        assert_eq!(
            keys(&v["latency_ratios_ringcast_over_peer"][0]),
            sorted(&[
                "ringcast",
                "peer",
                "transport",
                "p50_ratio",
                "p99_ratio",
                "like_for_like"
            ])
        );
        assert_eq!(
            keys(&v["throughput_ratios_ringcast_over_peer"][0]),
            sorted(&[
                "ringcast",
                "peer",
                "transport",
                "fan_out",
                "delivered_ratio",
                "published_ratio",
                "like_for_like",
            ])
        );
        assert_eq!(keys(&v["configuration"]), sorted(&[ring.label, peer.label]));

        // Numbers keep the report's precision; whole ones stay integers.
        let text = report.json();
        assert!(text.contains("\"pace_ns\":2000,"), "{text}");
        assert!(text.contains("\"published_per_s\":2000000,"), "{text}");
        assert!(text.contains("\"p50_over_limit\":1.0"), "{text}");
        assert!(text.contains("\"p50_ratio\":1.25,"), "{text}");
        assert_eq!(v["latency"][1]["transport"], "threads");
    }

    /// `v` as JSON text.
    fn text(v: impl Serialize) -> String {
        serde_json::to_string(&v).expect("serializes")
    }

    #[test]
    fn fixed_prints_as_the_formatter_rounds() {
        assert_eq!(text(Fixed::<1>(120.25)), format!("{:.1}", 120.25));
        assert_eq!(text(Fixed::<3>(0.1234567)), "0.123");
        assert_eq!(text(Fixed::<3>(1.0)), "1.0");
        assert_eq!(text(Fixed::<0>(36_600_000.4)), "36600000");
        assert_eq!(text(Fixed::<6>(0.5009394)), "0.500939");
        assert_eq!(text(Fixed::<1>(f64::INFINITY)), "null");
    }
}
