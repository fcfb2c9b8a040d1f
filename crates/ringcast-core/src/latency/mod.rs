//! Latency recording: publish times turned into HdrHistograms.
//!
//! A subscriber of a ring with timestamps knows, for every message, when it
//! was published; `now - publish time` is the message's one-way latency. The
//! [`LatencyRecorder`] puts those values (ns) into an HdrHistogram, the form
//! in which latency is read in this field: percentiles to the last 9s with
//! bounded relative error, mergeable across processes and intervals, and
//! encodable in the standard compressed form (V2 + deflate + base64) that
//! every HdrHistogram implementation decodes (Java's, Python's `hdrhistogram`
//! package, `HistogramLogReader` of an interval log).
//!
//! Recording costs a few ns and never allocates. Values above the
//! recorder's highest trackable value are recorded as that value and
//! counted, never dropped.
//!
//! Coordinated omission: a sender that stalls sends nothing during the
//! stall, so the messages that would have met the stall are never measured.
//! Two remedies: the publisher stamps each message with the time it was
//! *due* (`Publisher::publish_at`), which charges every message its full
//! delay (exact); or the recorder is told the expected interval between
//! messages and adds the missing samples (HdrHistogram's
//! `recordValueWithExpectedInterval`, an estimate).

pub mod interval_log;

use crate::error::{ArgumentError, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use std::borrow::Cow;
use std::fmt::Write as _;

/// The histogram type recorders produce: counts of nanosecond values.
pub type LatencyHistogram = Histogram<u64>;

/// Shape of a recorder's histograms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecorderConfig {
    /// Largest value tracked exactly, ns; larger values are recorded as this
    /// (and counted in [`LatencyRecorder::saturated`]).
    pub highest_ns: u64,
    /// Significant decimal digits kept for every value (1..=5): 3 means each
    /// value is known to within 0.1%.
    pub digits: u8,
    /// The interval at which messages are expected, ns, to correct for
    /// coordinated omission after the fact; `None`: record values as they are.
    pub expected_interval_ns: Option<u64>,
}

impl Default for RecorderConfig {
    /// Up to one minute, 3 digits, no correction.
    fn default() -> Self {
        Self {
            highest_ns: 60_000_000_000,
            digits: 3,
            expected_interval_ns: None,
        }
    }
}

/// Records latencies into an HdrHistogram, in intervals.
///
/// Values go into the current interval's histogram;
/// [`take_interval`](Self::take_interval) hands that histogram out (for an
/// interval log or a progress line) and folds it into the running total, so
/// recording touches one histogram only.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    config: RecorderConfig,
    interval: LatencyHistogram,
    total: LatencyHistogram,
    saturated: u64,
    negative: u64,
}

impl LatencyRecorder {
    /// A recorder whose histograms have the shape `config` says.
    pub fn new(config: RecorderConfig) -> Result<Self, ArgumentError> {
        if !(1..=5).contains(&config.digits) {
            return Err(ArgumentError::Latency(format!(
                "latency histograms keep 1 to 5 significant digits, not {}",
                config.digits
            )));
        }
        if config.highest_ns < 2 {
            return Err(ArgumentError::Latency(format!(
                "the highest trackable latency must be at least 2 ns, not {}",
                config.highest_ns
            )));
        }
        if config.expected_interval_ns == Some(0) {
            return Err(ArgumentError::Latency(
                "the expected interval between messages must be at least 1 ns".into(),
            ));
        }
        let interval = new_histogram(config.highest_ns, config.digits)?;
        Ok(Self {
            total: interval.clone(),
            interval,
            config,
            saturated: 0,
            negative: 0,
        })
    }

    /// The shape this recorder was made with.
    pub fn config(&self) -> RecorderConfig {
        self.config
    }

    /// Records one latency, ns.
    #[inline]
    pub fn record(&mut self, value_ns: u64) {
        let value = if value_ns > self.config.highest_ns {
            self.saturated += 1;
            self.config.highest_ns
        } else {
            value_ns
        };
        match self.config.expected_interval_ns {
            None => self.interval.saturating_record(value),
            Some(interval) => {
                // Cannot fail: `value` is within the histogram's range and
                // the synthetic values below it are too.
                let _ = self.interval.record_correct(value, interval);
            }
        }
    }

    /// Records the latency of a message published at `sent` and received
    /// at `now` (both ns on one clock). A publish time after `now` (clocks
    /// of different hosts, or a caller's own times) is recorded as 0 and
    /// counted in [`negative`](Self::negative).
    #[inline]
    pub fn record_since(&mut self, sent: u64, now: u64) {
        match now.checked_sub(sent) {
            Some(latency) => self.record(latency),
            None => {
                self.negative += 1;
                self.record(0);
            }
        }
    }

    /// Everything recorded since the start (or the last reset). Borrowed
    /// when one of the two histograms is empty (a copy handed out by a
    /// subscriber, a recorder that never took an interval); merged into a
    /// new histogram (about 200 KiB at the default shape) otherwise.
    pub fn histogram(&self) -> Cow<'_, LatencyHistogram> {
        if self.interval.is_empty() {
            return Cow::Borrowed(&self.total);
        }
        if self.total.is_empty() {
            return Cow::Borrowed(&self.interval);
        }
        let mut all = self.total.clone();
        // Same shape: the addition cannot fail.
        let _ = all.add(&self.interval);
        Cow::Owned(all)
    }

    /// Values recorded since the last call (or the start), as one
    /// histogram; the recorder starts a new interval. The values stay in
    /// [`histogram`](Self::histogram).
    pub fn take_interval(&mut self) -> LatencyHistogram {
        let taken = self.interval.clone();
        let _ = self.total.add(&self.interval);
        self.interval.reset();
        taken
    }

    /// Adds every value of `hist` (an interval from another recorder, or a
    /// decoded one) to this recorder's total. Fails, adding nothing, when
    /// `hist` holds values above this recorder's highest trackable value.
    pub fn add(&mut self, hist: &LatencyHistogram) -> Result<(), ArgumentError> {
        if !hist.is_empty() && hist.max() > self.total.high() {
            return Err(ArgumentError::Latency(format!(
                "the histogram holds values up to {} ns, above this one's highest \
                 trackable value of {} ns; use a recorder with a larger highest value",
                hist.max(),
                self.total.high()
            )));
        }
        self.total
            .add(hist)
            .map_err(|e| ArgumentError::Latency(format!("cannot add the histogram: {e:?}")))
    }

    /// Values recorded, including those added to correct for coordinated
    /// omission.
    pub fn count(&self) -> u64 {
        self.total.len() + self.interval.len()
    }

    /// Values larger than the highest trackable value (recorded as it).
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// Publish times later than the receive time (recorded as 0).
    pub fn negative(&self) -> u64 {
        self.negative
    }

    /// Forgets everything recorded.
    pub fn reset(&mut self) {
        self.interval.reset();
        self.total.reset();
        self.saturated = 0;
        self.negative = 0;
    }
}

/// An empty histogram from 1 ns to `highest_ns` with `digits` significant digits.
pub fn new_histogram(highest_ns: u64, digits: u8) -> Result<LatencyHistogram, ArgumentError> {
    Histogram::new_with_bounds(1, highest_ns.max(2), digits)
        .map_err(|e| ArgumentError::Latency(format!("cannot make a latency histogram: {e:?}")))
}

/// The standard compressed encoding of `hist` (V2, deflate, base64; starts
/// with "HISTF"), as Java's `encodeIntoCompressedByteBuffer` plus base64
/// and Python's `HdrHistogram.encode()` produce it.
pub fn encode(hist: &LatencyHistogram) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(hist, &mut bytes)
        .expect("serializing into memory cannot fail");
    STANDARD.encode(&bytes)
}

/// Decodes a histogram encoded by [`encode`] (or any HdrHistogram
/// implementation's base64 V2 encoding, compressed or not).
pub fn decode(text: &str) -> Result<LatencyHistogram, ArgumentError> {
    let bad = |why: String| {
        ArgumentError::Latency(format!(
            "not an encoded HdrHistogram ({why}); expected the base64 text of a \
             V2 histogram such as HdrHistogram.encode() returns"
        ))
    };
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| bad(e.to_string()))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| bad(format!("{e:?}")))
}

/// Most rows per halving of the percentile distance a distribution prints
/// (HdrHistogram's tools default to 5); each adds ~70 bytes per halving.
pub const MAX_TICKS: u64 = 100;

/// The percentile distribution of `hist` in HdrHistogram's standard text
/// form (as Java's `outputPercentileDistribution` prints it), values divided
/// by `unit_ns` (1000.0 prints microseconds), `ticks` steps per halving of
/// the remaining percentile distance (1 to [`MAX_TICKS`]).
pub fn percentile_distribution(
    hist: &LatencyHistogram,
    unit_ns: f64,
    ticks: u64,
) -> Result<String, ArgumentError> {
    if !(1..=MAX_TICKS).contains(&ticks) {
        return Err(ArgumentError::Latency(format!(
            "ticks must be between 1 and {MAX_TICKS} (rows per halving of the distance to the \
             100th percentile; HdrHistogram's tools print 5), got {ticks}"
        )));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !hist.is_empty() {
        for step in hist.iter_quantiles(ticks as u32) {
            total += step.count_since_last_iteration();
            let q = step.quantile_iterated_to();
            let value = step.value_iterated_to() as f64 / unit_ns;
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:>12.3} {q:>14.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:>12.3} {q:>14.12} {total:>10}");
            }
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        hist.mean() / unit_ns,
        hist.stdev() / unit_ns
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        hist.max() as f64 / unit_ns,
        hist.len()
    );
    let sub_buckets = (2 * 10u64.pow(u32::from(hist.sigfig()))).next_power_of_two();
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        hist.buckets(),
        sub_buckets
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder() -> LatencyRecorder {
        LatencyRecorder::new(RecorderConfig::default()).unwrap()
    }

    #[test]
    fn uniform_values_give_their_percentiles() {
        let mut r = recorder();
        for v in 1..=100_000u64 {
            r.record(v);
        }
        let h = r.histogram();
        assert_eq!(h.len(), 100_000);
        for (q, expect) in [(0.5, 50_000.0), (0.9, 90_000.0), (0.99, 99_000.0)] {
            let got = h.value_at_quantile(q) as f64;
            assert!((got - expect).abs() / expect < 0.001, "q{q}: {got}");
        }
        assert!(h.max() >= 100_000 && h.max() <= 100_100);
    }

    #[test]
    fn intervals_fold_into_the_total() {
        let mut r = recorder();
        r.record(10);
        r.record(20);
        let first = r.take_interval();
        r.record(30);
        assert_eq!(first.len(), 2);
        assert_eq!(r.take_interval().len(), 1);
        assert_eq!(r.take_interval().len(), 0);
        assert_eq!(r.histogram().len(), 3);
        assert_eq!(r.count(), 3);
        r.reset();
        assert_eq!(r.count(), 0);
    }

    #[test]
    fn saturation_and_negative_are_counted_not_dropped() {
        let mut r = LatencyRecorder::new(RecorderConfig {
            highest_ns: 1_000,
            ..RecorderConfig::default()
        })
        .unwrap();
        r.record(5_000);
        r.record_since(100, 50);
        assert_eq!((r.saturated(), r.negative(), r.count()), (1, 1, 2));
        assert_eq!(r.histogram().min(), 0);
        assert!(r.histogram().max() >= 1_000);
    }

    #[test]
    fn expected_interval_adds_the_omitted_samples() {
        let mut r = LatencyRecorder::new(RecorderConfig {
            expected_interval_ns: Some(1_000),
            ..RecorderConfig::default()
        })
        .unwrap();
        // One 10 us stall with messages due every 1 us: 10 values 10,9,..,1 us.
        r.record(10_000);
        assert_eq!(r.count(), 10);
        assert_eq!(r.histogram().value_at_quantile(0.5) / 1000, 5);
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        for (config, says) in [
            (
                RecorderConfig {
                    digits: 0,
                    ..Default::default()
                },
                "significant digits",
            ),
            (
                RecorderConfig {
                    highest_ns: 1,
                    ..Default::default()
                },
                "at least 2 ns",
            ),
            (
                RecorderConfig {
                    expected_interval_ns: Some(0),
                    ..Default::default()
                },
                "expected interval",
            ),
        ] {
            let e = LatencyRecorder::new(config).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn encoding_round_trips_and_looks_standard() {
        let mut r = recorder();
        for v in [1u64, 7, 1_000, 1_234_567, 59_000_000_000] {
            r.record(v);
        }
        let h = r.histogram();
        let text = encode(&h);
        assert!(text.starts_with("HISTF"), "{text}");
        let back = decode(&text).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        let e = decode("not base64!").unwrap_err().to_string();
        assert!(e.contains("not an encoded HdrHistogram"), "{e}");
        assert!(decode("SElTVA==").is_err());
    }

    #[test]
    fn percentile_distribution_has_the_standard_columns() {
        let mut r = recorder();
        for v in 1..=1000u64 {
            r.record(v * 1000);
        }
        let text = percentile_distribution(&r.histogram(), 1000.0, 5).unwrap();
        assert!(percentile_distribution(&r.histogram(), 1000.0, 0).is_err());
        assert!(percentile_distribution(&r.histogram(), 1000.0, MAX_TICKS + 1).is_err());
        let mut lines = text.lines();
        let head = lines.next().unwrap();
        for column in ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"] {
            assert!(head.contains(column), "{head}");
        }
        assert!(
            text.contains("#[Mean    =      500.") || text.contains("#[Mean    =      499."),
            "{text}"
        );
        assert!(text.contains("Total count    =         1000]"), "{text}");
        assert!(text.contains("SubBuckets     =         2048]"), "{text}");
        let last = text.lines().rfind(|l| !l.starts_with('#')).unwrap();
        assert!(last.contains("1.000000000000       1000"), "{last}");
    }
}
