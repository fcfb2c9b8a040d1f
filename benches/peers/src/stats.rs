//! What a path's samples and trials come to: nearest-rank latency
//! percentiles, rates of a flat-out trial, the median trial. Serialized as
//! they appear in the JSON report (names and decimals fixed there).

use crate::common::{percentile, Clock};
use crate::drive::Delivery;
use crate::report::{fixed, fixed_each, fixed_opt};
use serde::Serialize;

/// Latency distribution of one path over all rounds, ns.
#[derive(Serialize)]
pub struct Latency {
    pub samples: usize,
    #[serde(rename = "p50_ns", serialize_with = "fixed::<1, _>")]
    pub p50: f64,
    #[serde(rename = "p99_ns", serialize_with = "fixed::<1, _>")]
    pub p99: f64,
    #[serde(rename = "p999_ns", serialize_with = "fixed::<1, _>")]
    pub p999: f64,
    #[serde(rename = "max_ns", serialize_with = "fixed::<1, _>")]
    pub max: f64,
    #[serde(rename = "min_ns", serialize_with = "fixed::<1, _>")]
    pub min: f64,
    #[serde(rename = "mean_ns", serialize_with = "fixed::<1, _>")]
    pub mean: f64,
    /// Messages that never reached the receiver (lossy paths lapped).
    pub lost: u64,
    /// Samples where the receive stamp preceded the send stamp (TSC skew).
    pub negative: usize,
    /// p50 over the p50 of the cache-line ping-pong; `None` until the report
    /// fills it in, and when the limit was not measured.
    #[serde(serialize_with = "fixed_opt::<3, _>")]
    pub p50_over_limit: Option<f64>,
}

impl Latency {
    /// Nearest-rank statistics of samples `v` (ns).
    pub fn new(mut v: Vec<f64>, lost: u64) -> Result<Self, String> {
        if v.is_empty() {
            return Err("no samples".to_owned());
        }
        v.sort_by(f64::total_cmp);
        Ok(Self {
            samples: v.len(),
            p50: percentile(&v, 50.0),
            p99: percentile(&v, 99.0),
            p999: percentile(&v, 99.9),
            max: v[v.len() - 1],
            min: v[0],
            mean: v.iter().sum::<f64>() / v.len() as f64,
            lost,
            negative: v.iter().take_while(|&&x| x < 0.0).count(),
            p50_over_limit: None,
        })
    }
}

/// One flat-out trial.
#[derive(Clone, Serialize)]
pub struct Trial {
    /// Messages per second the publisher got out.
    #[serde(serialize_with = "fixed::<0, _>")]
    pub published_per_s: f64,
    /// Delivered per second, mean over the receivers.
    #[serde(rename = "delivered_per_s_mean", serialize_with = "fixed::<0, _>")]
    pub delivered_mean_per_s: f64,
    /// Delivered per second by the slowest receiver.
    #[serde(rename = "delivered_per_s_slowest", serialize_with = "fixed::<0, _>")]
    pub delivered_min_per_s: f64,
    /// Messages received, summed over the receivers.
    pub received: u64,
    /// Messages lost, summed over the receivers.
    pub lost: u64,
}

impl Trial {
    /// Rates from the publisher's first tick: receiver `i` delivered
    /// `received_i` messages by its own last tick.
    pub fn new(
        clock: &Clock,
        total: u64,
        lossless: bool,
        start: u64,
        end: u64,
        deliveries: &[Delivery],
    ) -> Result<Self, String> {
        let rates: Vec<f64> = deliveries
            .iter()
            .map(|d| d.received as f64 / clock.ns(d.end.saturating_sub(start).max(1)) * 1e9)
            .collect();
        let received: u64 = deliveries.iter().map(|d| d.received).sum();
        let lost = total * deliveries.len() as u64 - received;
        if lossless && lost > 0 {
            return Err(format!("a lossless path lost {lost} messages"));
        }
        Ok(Self {
            published_per_s: total as f64 / clock.ns(end.saturating_sub(start).max(1)) * 1e9,
            delivered_mean_per_s: rates.iter().sum::<f64>() / rates.len() as f64,
            delivered_min_per_s: rates.iter().copied().fold(f64::INFINITY, f64::min),
            received,
            lost,
        })
    }
}

/// A throughput path's trials: the median one (by mean delivered rate), and
/// every trial's mean delivered rate.
#[derive(Serialize)]
pub struct Trials {
    #[serde(flatten)]
    pub median: Trial,
    /// Sorted ascending.
    #[serde(
        rename = "trial_delivered_per_s",
        serialize_with = "fixed_each::<0, _>"
    )]
    pub rates: Vec<f64>,
}

impl Trials {
    /// The median of `trials`.
    pub fn new(mut trials: Vec<Trial>) -> Result<Self, String> {
        if trials.is_empty() {
            return Err("no trials".to_owned());
        }
        trials.sort_by(|a, b| a.delivered_mean_per_s.total_cmp(&b.delivered_mean_per_s));
        let rates = trials.iter().map(|t| t.delivered_mean_per_s).collect();
        Ok(Self {
            median: trials[trials.len() / 2].clone(),
            rates,
        })
    }
}
