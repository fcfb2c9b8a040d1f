//! `ringcast._native.LatencyHistogram` and `IntervalLog`: the core's latency
//! recorder and HdrHistogram interval log, seen from Python.
//!
//! A `LatencyHistogram` owns its values: subscribers hand out copies (the
//! whole run, or the last interval), so a histogram outlives the subscriber
//! it came from. Interoperability with the `hdrhistogram` package goes
//! through the standard encoding (`encode()`, `to_hdrh()`).

use crate::args::seconds;
use crate::errors::{py_err, raise};
use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use ringcast_latency::interval_log::IntervalLog;
use ringcast_latency::{self as latency, LatencyRecorder, RecorderConfig};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

/// Nanoseconds per unit of a distribution printout.
fn unit_ns(py: Python<'_>, unit: &str) -> PyResult<f64> {
    match unit {
        "ns" => Ok(1.0),
        "us" => Ok(1e3),
        "ms" => Ok(1e6),
        "s" => Ok(1e9),
        other => Err(raise(
            py,
            "InvalidArgument",
            format!("unit must be \"ns\", \"us\", \"ms\" or \"s\", got {other:?}"),
        )),
    }
}

/// A recorder shape from Python arguments (seconds).
pub(crate) fn config(
    py: Python<'_>,
    highest: f64,
    digits: u8,
    expected_interval: Option<f64>,
) -> PyResult<RecorderConfig> {
    let ns = |what: &str, secs: f64| seconds(py, what, secs).map(|d| d.as_nanos() as u64);
    Ok(RecorderConfig {
        highest_ns: ns("highest", highest)?,
        digits,
        expected_interval_ns: expected_interval
            .map(|secs| ns("expected_interval", secs))
            .transpose()?,
    })
}

/// Latencies in nanoseconds, as an HdrHistogram.
#[pyclass(module = "ringcast._native", name = "LatencyHistogram")]
pub struct PyLatencyHistogram {
    pub(crate) inner: LatencyRecorder,
}

impl PyLatencyHistogram {
    /// A histogram holding `hist`, shaped like `config`.
    pub(crate) fn holding(
        py: Python<'_>,
        config: RecorderConfig,
        hist: &latency::LatencyHistogram,
    ) -> PyResult<Self> {
        let mut inner = LatencyRecorder::new(config).map_err(py_err(py))?;
        inner.add(hist).map_err(py_err(py))?;
        Ok(Self { inner })
    }
}

#[pymethods]
impl PyLatencyHistogram {
    /// An empty histogram tracking latencies up to `highest` seconds with
    /// `digits` significant digits; with `expected_interval` (seconds),
    /// `record` adds the samples a stalled sender omitted (coordinated
    /// omission correction).
    #[new]
    #[pyo3(signature = (*, highest=60.0, digits=3, expected_interval=None))]
    fn new(
        py: Python<'_>,
        highest: f64,
        digits: u8,
        expected_interval: Option<f64>,
    ) -> PyResult<Self> {
        let inner = LatencyRecorder::new(config(py, highest, digits, expected_interval)?)
            .map_err(py_err(py))?;
        Ok(Self { inner })
    }

    /// Records one latency, in nanoseconds.
    fn record(&mut self, value_ns: u64) {
        self.inner.record(value_ns);
    }

    /// Records many latencies at once: a 1-D array of nanoseconds (int64;
    /// negative values are recorded as 0 and counted in `negative`), e.g.
    /// `time.monotonic_ns() - batch["recv_ns"].astype("i8")`.
    fn record_many(&mut self, values: numpy::PyReadonlyArray1<'_, i64>) {
        let mut record = |v: i64| match u64::try_from(v) {
            Ok(ns) => self.inner.record(ns),
            Err(_) => self.inner.record_since(v.unsigned_abs(), 0),
        };
        match values.as_slice() {
            Ok(contiguous) => contiguous.iter().copied().for_each(&mut record),
            Err(_) => values.as_array().iter().copied().for_each(&mut record),
        }
    }

    /// Records `now_ns - sent_ns` (default now: `time.monotonic_ns()`, the
    /// clock of ring timestamps).
    #[pyo3(signature = (sent_ns, now_ns=None))]
    fn record_since(&mut self, sent_ns: u64, now_ns: Option<u64>) {
        let now = now_ns.unwrap_or_else(ringcast_core::sys::clock::now_ns);
        self.inner.record_since(sent_ns, now);
    }

    /// The values recorded since the last call (or creation) as a new
    /// histogram; they stay in this one too.
    fn take_interval(&mut self, py: Python<'_>) -> PyResult<Self> {
        let config = self.inner.config();
        let interval = self.inner.take_interval();
        Self::holding(py, config, &interval)
    }

    /// Adds every value of `other` (a LatencyHistogram, or an encoded
    /// histogram string such as `encode()` or the `hdrhistogram` package's
    /// `encode()` returns).
    fn add(&mut self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<()> {
        let hist = if let Ok(h) = other.downcast::<Self>() {
            h.borrow().inner.histogram().into_owned()
        } else if let Ok(text) = other.extract::<String>() {
            latency::decode(&text).map_err(py_err(py))?
        } else if let Ok(text) = other.extract::<Vec<u8>>() {
            latency::decode(&String::from_utf8_lossy(&text)).map_err(py_err(py))?
        } else {
            return Err(raise(
                py,
                "InvalidArgument",
                format!(
                    "add() takes a LatencyHistogram or an encoded histogram (str), got {}",
                    other.get_type().name()?
                ),
            ));
        };
        self.inner.add(&hist).map_err(py_err(py))
    }

    /// The standard compressed encoding (base64 text starting "HISTF"), which
    /// every HdrHistogram implementation decodes.
    fn encode(&self) -> String {
        latency::encode(&self.inner.histogram())
    }

    /// A histogram from an encoded one (this module's `encode()`, Java's or
    /// the `hdrhistogram` package's).
    #[staticmethod]
    #[pyo3(signature = (encoded, *, digits=None))]
    fn decode(py: Python<'_>, encoded: &str, digits: Option<u8>) -> PyResult<Self> {
        let hist = latency::decode(encoded).map_err(py_err(py))?;
        let config = RecorderConfig {
            highest_ns: hist.high(),
            digits: digits.unwrap_or(hist.sigfig()),
            expected_interval_ns: None,
        };
        Self::holding(py, config, &hist)
    }

    /// The same values as an `hdrh.histogram.HdrHistogram` of the
    /// `hdrhistogram` package (which must be installed).
    fn to_hdrh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let module = py.import("hdrh.histogram").map_err(|e| {
            PyImportError::new_err(format!(
                "to_hdrh() needs the hdrhistogram package: pip install hdrhistogram ({e})"
            ))
        })?;
        module
            .getattr("HdrHistogram")?
            .call_method1("decode", (self.encode(),))
    }

    /// The latency at `percentile` (0..100), ns: the highest value
    /// equivalent to the recorded value at that rank.
    fn value_at_percentile(&self, py: Python<'_>, percentile: f64) -> PyResult<u64> {
        if !(0.0..=100.0).contains(&percentile) {
            return Err(raise(
                py,
                "InvalidArgument",
                format!("percentile must be between 0 and 100, got {percentile}"),
            ));
        }
        let h = self.inner.histogram();
        Ok(h.highest_equivalent(h.value_at_percentile(percentile)))
    }

    /// For each value of `values_ns`, how many recorded values are at or
    /// below it, to the histogram's resolution: the bucket holding the value
    /// counts whole (as `value_at_percentile` reports a bucket's highest
    /// value). The cumulative bucket counts of a Prometheus histogram.
    fn counts_at_or_below(&self, values_ns: Vec<u64>) -> Vec<u64> {
        let h = self.inner.histogram();
        // (lowest value of a recorded bucket, values recorded up to it).
        let mut total = 0u64;
        let buckets: Vec<(u64, u64)> = h
            .iter_recorded()
            .map(|v| {
                total = total.saturating_add(v.count_at_value());
                (h.lowest_equivalent(v.value_iterated_to()), total)
            })
            .collect();
        values_ns
            .iter()
            .map(|&v| match buckets.partition_point(|&(low, _)| low <= v) {
                0 => 0,
                n => buckets[n - 1].1,
            })
            .collect()
    }

    /// HdrHistogram's standard percentile distribution table, values in
    /// `unit` ("ns", "us", "ms" or "s"), `ticks` rows per halving of the
    /// distance to 100%.
    #[pyo3(signature = (unit="us", ticks=5))]
    fn percentile_distribution(&self, py: Python<'_>, unit: &str, ticks: u64) -> PyResult<String> {
        latency::percentile_distribution(&self.inner.histogram(), unit_ns(py, unit)?, ticks)
            .map_err(crate::errors::py_err(py))
    }

    /// Forgets every value.
    fn reset(&mut self) {
        self.inner.reset();
    }

    /// Values recorded (including coordinated-omission corrections).
    #[getter]
    fn count(&self) -> u64 {
        self.inner.count()
    }

    fn __len__(&self) -> usize {
        self.inner.count() as usize
    }

    /// Smallest value recorded, ns (0 when empty).
    #[getter]
    fn min(&self) -> u64 {
        self.inner.histogram().min()
    }

    /// Largest value recorded, ns (0 when empty).
    #[getter]
    fn max(&self) -> u64 {
        let h = self.inner.histogram();
        if h.is_empty() {
            0
        } else {
            h.highest_equivalent(h.max())
        }
    }

    /// Mean, ns.
    #[getter]
    fn mean(&self) -> f64 {
        self.inner.histogram().mean()
    }

    /// Standard deviation, ns.
    #[getter]
    fn stdev(&self) -> f64 {
        self.inner.histogram().stdev()
    }

    /// Values above the highest trackable latency (recorded as it).
    #[getter]
    fn saturated(&self) -> u64 {
        self.inner.saturated()
    }

    /// Publish times later than the receive time (recorded as 0).
    #[getter]
    fn negative(&self) -> u64 {
        self.inner.negative()
    }

    /// Highest trackable latency, ns.
    #[getter]
    fn highest(&self) -> u64 {
        self.inner.config().highest_ns
    }

    /// Significant digits kept.
    #[getter]
    fn digits(&self) -> u8 {
        self.inner.config().digits
    }

    fn __repr__(&self) -> String {
        let h = self.inner.histogram();
        if h.is_empty() {
            return "<ringcast.LatencyHistogram empty>".into();
        }
        let at = |p: f64| h.highest_equivalent(h.value_at_percentile(p));
        format!(
            "<ringcast.LatencyHistogram count={} p50={}ns p99={}ns p99.9={}ns max={}ns>",
            h.len(),
            at(50.0),
            at(99.0),
            at(99.9),
            h.highest_equivalent(h.max())
        )
    }
}

/// An HdrHistogram interval log being written (readable by
/// `hdrh.log.HistogramLogReader` and every HdrHistogram log tool).
#[pyclass(module = "ringcast._native", name = "IntervalLog")]
pub struct PyIntervalLog {
    log: Option<IntervalLog<BufWriter<File>>>,
    path: PathBuf,
}

#[pymethods]
impl PyIntervalLog {
    /// Creates (or truncates) the log at `path`; intervals are timed from
    /// `start_unix_ns` (ns since the epoch, default now); `comment` says what
    /// was measured.
    #[new]
    #[pyo3(signature = (path, *, start_unix_ns=None, comment="ringcast latency, values in ns"))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        start_unix_ns: Option<u64>,
        comment: &str,
    ) -> PyResult<Self> {
        let start = start_unix_ns.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        let io_err = |e: std::io::Error| {
            raise(
                py,
                "RingError",
                format!("cannot write the interval log {}: {e}", path.display()),
            )
        };
        let file = File::create(&path).map_err(io_err)?;
        let log = IntervalLog::new(BufWriter::new(file), start, comment).map_err(io_err)?;
        Ok(Self {
            log: Some(log),
            path,
        })
    }

    /// Appends `histogram` as the interval that began `start` seconds after
    /// the log's start and lasted `length` seconds, optionally tagged.
    #[pyo3(signature = (histogram, start, length, tag=None))]
    fn append(
        &mut self,
        py: Python<'_>,
        histogram: PyRef<'_, PyLatencyHistogram>,
        start: f64,
        length: f64,
        tag: Option<&str>,
    ) -> PyResult<()> {
        let path = &self.path;
        let log = self.log.as_mut().ok_or_else(|| {
            raise(
                py,
                "InvalidArgument",
                format!("the interval log {} is closed", path.display()),
            )
        })?;
        log.append(&histogram.inner.histogram(), start, length, tag)
            .map_err(|e| {
                raise(
                    py,
                    "RingError",
                    format!("cannot write the interval log {}: {e}", path.display()),
                )
            })
    }

    /// The log's file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Flushes and closes the log. Idempotent.
    fn close(&mut self) {
        self.log = None;
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }
}
