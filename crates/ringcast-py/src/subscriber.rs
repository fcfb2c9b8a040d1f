//! `ringcast._native.Subscriber`: copies messages straight into numpy/bytes
//! objects and waits with the GIL released. No ring logic lives here.
//!
//! Receives alternate between an attempt, made with the GIL held and the
//! subscriber borrowed (output buffers are looked up afresh for each attempt),
//! and a wait on a detached [`ringcast_core::WaitHandle`] with the GIL
//! released and the subscriber not borrowed, so other threads may use or
//! close it meanwhile.

use crate::args::{named, Names};
use crate::buffer::ByteView;
use crate::end::{End, PyRingEnd};
use crate::errors::{py_err, raise};
use crate::latency::PyLatencyHistogram;
use crate::records::{
    array_bytes_mut, array_u64_mut, check_column, new_records, record_scalar, truncate, RecordType,
};
use crate::wait::{patience, without_gil, Ends, Patience, PyWaitStrategy};
use numpy::prelude::*;
use numpy::PyUntypedArray;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyList, PyTuple};
use ringcast_core::{
    StageOptions, Start, Subscriber as CoreSubscriber, WaitEnd, WaitHandle, WaitStrategy, Waiter,
};
use ringcast_latency::RecordLatency;
use std::path::PathBuf;
use std::time::Instant;

/// Native half of `ringcast.Subscriber`; construct it with `Subscriber.attach`.
#[pyclass(extends = PyRingEnd, subclass, module = "ringcast._native", name = "Subscriber")]
pub struct PySubscriber {
    pub(crate) end: End<CoreSubscriber>,
    /// One slot's worth of bytes for the allocating receive paths.
    scratch: Vec<u8>,
    waiter: Waiter,
}

/// `start=` by name: "latest", "oldest" or "resume".
impl Names for Start {
    const ARG: &'static str = "start";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("latest", Self::Latest),
        ("oldest", Self::Oldest),
        ("resume", Self::Resume),
    ];
}

/// `start=`: a sequence number (an int, not a bool), or a [`Start`] by name.
struct StartAt(Start);

impl<'py> FromPyObject<'py> for StartAt {
    fn extract_bound(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let seq = if obj.is_instance_of::<PyBool>() {
            None
        } else {
            obj.extract::<u64>().ok()
        };
        match seq {
            Some(seq) => Ok(StartAt(Start::At(seq))),
            None => named(obj, Some("a sequence number >= 0")).map(StartAt),
        }
    }
}

fn timeout_error(slf: &Bound<'_, PySubscriber>, timeout: Option<f64>) -> PyErr {
    let py = slf.py();
    let this = match slf.try_borrow() {
        Ok(this) => this,
        Err(e) => return e.into(),
    };
    // Say why nothing came when the publisher is known to be gone.
    let why = match this.end.core.as_ref().map(|s| s.publisher_status()) {
        Some(p) if p.closed => String::new(),
        Some(p) if !p.alive => format!(
            "; its publisher (pid {}) died and no publisher has taken the ring over",
            p.pid
        ),
        _ => String::new(),
    };
    raise(
        py,
        "Timeout",
        format!(
            "no message on ring {:?} within {}s{why}",
            this.end.name,
            timeout.unwrap_or(0.0)
        ),
    )
}

impl PySubscriber {
    /// The latency recorder, or the error saying how to start one.
    fn recorder(&self, py: Python<'_>) -> PyResult<&ringcast_latency::LatencyRecorder> {
        self.end.core_ref(py)?.recorder().ok_or_else(|| {
            raise(
                py,
                "InvalidArgument",
                format!(
                    "subscriber of ring {:?} is not recording latency; call record_latency() first",
                    self.end.name
                ),
            )
        })
    }

    /// The core subscriber, its waiter and a buffer of one slot, for loops
    /// that run without the GIL.
    pub(crate) fn parts(
        &mut self,
        py: Python<'_>,
    ) -> PyResult<(&mut CoreSubscriber, &mut Waiter, &mut Vec<u8>)> {
        let Self {
            end,
            waiter,
            scratch,
        } = self;
        Ok((end.core(py)?, waiter, scratch))
    }

    /// Takes the core subscriber out, with its wait strategy and record
    /// type, for an owner that wraps it (a subscriber group); this object
    /// reads as closed from then on. `None` if it already was.
    pub(crate) fn detach(&mut self) -> Option<(CoreSubscriber, WaitStrategy, Option<RecordType>)> {
        let (core, records) = self.end.detach()?;
        Some((core, self.waiter.strategy(), records))
    }

    /// What a wait for this subscriber's next message needs (see
    /// `multiwait`); refused once closed or revoked.
    pub(crate) fn wait_handle(&self, py: Python<'_>) -> PyResult<WaitHandle> {
        Ok(self.end.core_ref(py)?.wait_handle())
    }

    /// The next message as this ring's Python message type (a numpy record,
    /// or bytes), without waiting.
    fn try_message<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (sub, _, scratch) = self.parts(py)?;
        let Some(n) = sub.try_recv(scratch).map_err(py_err(py))? else {
            return Ok(None);
        };
        match &self.end.records {
            Some(rt) => record_scalar(rt.dtype(py), &self.scratch[..n]).map(Some),
            None => Ok(Some(PyBytes::new(py, &self.scratch[..n]).into_any())),
        }
    }
}

/// Repeats `attempt` until it produces something, waiting in between as
/// `patience` allows; `None` at the deadline (or at once for `Never`).
fn receive<T>(
    slf: &Bound<'_, PySubscriber>,
    patience: Patience,
    mut attempt: impl FnMut(&mut PySubscriber) -> PyResult<Option<T>>,
) -> PyResult<Option<T>> {
    let mut raced = 0;
    loop {
        if let Some(got) = attempt(&mut *slf.try_borrow_mut()?)? {
            return Ok(Some(got));
        }
        if !wait(slf, patience, &mut raced)? {
            return Ok(None);
        }
    }
}

/// Blocks until a message can be read, in the binding's one GIL-free wait,
/// the subscriber not borrowed. `Ok(false)` at the deadline; `RingClosed`
/// when the stream ended or the subscriber was closed meanwhile.
fn wait(slf: &Bound<'_, PySubscriber>, patience: Patience, raced: &mut u32) -> PyResult<bool> {
    let Patience::Until(until) = patience else {
        return Ok(false);
    };
    let py = slf.py();
    let (handle, mut waiter, closed) = {
        let this = slf.try_borrow()?;
        let sub = this.end.core_ref(py)?;
        if sub.available() {
            // Raced with the publisher: no need to release the GIL. A slot
            // that looks readable but gives nothing (damage can do that)
            // would loop here: the deadline and the signal check end it,
            // after one more attempt.
            *raced += 1;
            if *raced > 1 && until.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            py.check_signals()?;
            return Ok(true);
        }
        (
            sub.wait_handle(),
            this.waiter.clone(),
            this.end.closed.clone(),
        )
    };
    let (end, interrupt) = without_gil(py, Ends::closed(&closed), |slice, between| {
        handle.wait(until, &mut waiter, Some(slice), between)
    });
    if let Ok(mut this) = slf.try_borrow_mut() {
        // Keep the strategy's progress, unless the strategy was changed.
        if this.waiter.strategy() == waiter.strategy() {
            this.waiter = waiter;
        }
    }
    if let Some(e) = interrupt {
        return Err(e);
    }
    match end {
        Ok(WaitEnd::Ready) => Ok(true),
        Ok(WaitEnd::Deadline) => Ok(false),
        Ok(WaitEnd::Stopped) => Err(slf.try_borrow()?.end.closed_error(py)),
        Err(e) => Err(py_err(py)(e)),
    }
}

/// Calls `f` with the writable bytes of `buf` (a numpy array or any writable
/// buffer), looked up now: never kept across a wait.
fn with_out_bytes<R>(
    buf: &Bound<'_, PyAny>,
    f: impl FnOnce(&mut [u8]) -> PyResult<R>,
) -> PyResult<R> {
    if let Ok(arr) = buf.downcast::<PyUntypedArray>() {
        // SAFETY: the only view of `buf` made in this call; it ends with the
        // call, during which the GIL stays held.
        return f(unsafe { array_bytes_mut(arr)? });
    }
    let mut view = ByteView::writable(buf)?;
    f(view.bytes_mut())
}

#[pymethods]
impl PySubscriber {
    #[new]
    #[pyo3(signature = (name, *, dir=None, start=None, wait=None, lock_memory=false, prefault=false, pin_cpu=None, stage=None, after=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: String,
        dir: Option<PathBuf>,
        start: Option<StartAt>,
        wait: Option<PyWaitStrategy>,
        lock_memory: bool,
        prefault: bool,
        pin_cpu: Option<usize>,
        stage: Option<String>,
        after: Vec<String>,
    ) -> PyResult<(Self, PyRingEnd)> {
        let start = start.map_or(Start::Latest, |s| s.0);
        let memory = crate::memory::end_options(lock_memory, prefault, pin_cpu);
        let stage = StageOptions {
            name: stage,
            after,
            ..StageOptions::default()
        };
        let core = py
            .allow_threads(|| {
                CoreSubscriber::attach_stage(&name, dir.as_deref(), start, &memory, &stage)
            })
            .map_err(py_err(py))?;
        let wait = wait.map(|w| w.inner).unwrap_or_default();
        core.declare_wait(wait);
        let subscriber = Self {
            scratch: vec![0u8; core.layout().slot_size as usize],
            waiter: Waiter::new(wait),
            end: End::new(core, name),
        };
        Ok((subscriber, PyRingEnd))
    }

    /// How this subscriber waits for messages (settable).
    #[getter]
    fn get_wait(&self) -> PyWaitStrategy {
        PyWaitStrategy {
            inner: self.waiter.strategy(),
        }
    }

    /// Also declared in the subscriber's record, for monitoring (`ringcast
    /// info`, `ringcast stat`); a closed subscriber has no record to tell.
    #[setter]
    fn set_wait(&mut self, py: Python<'_>, wait: PyWaitStrategy) {
        if let Ok(core) = self.end.core_ref(py) {
            core.declare_wait(wait.inner);
        }
        self.waiter = Waiter::new(wait.inner);
    }

    /// The file descriptor event loops watch (see `recv_async`): readable once
    /// armed and a message can be read or the stream ended.
    fn _readiness_fd(&mut self, py: Python<'_>) -> PyResult<i32> {
        self.end.core(py)?.readiness_fd().map_err(py_err(py))
    }

    /// Arms the readiness fd for the current position.
    fn _arm_readiness(&mut self, py: Python<'_>) -> PyResult<()> {
        self.end.core(py)?.arm_readiness().map_err(py_err(py))
    }

    /// Raises `PublisherDied` (once per publisher) if the publisher died and
    /// everything it published has been read; for event-loop waits.
    fn _check_publisher(&self, py: Python<'_>) -> PyResult<()> {
        self.end.core_ref(py)?.check_publisher().map_err(py_err(py))
    }

    /// Consumes a pending readiness signal.
    fn _clear_readiness(&self, py: Python<'_>) -> PyResult<()> {
        self.end.core_ref(py)?.clear_readiness();
        Ok(())
    }

    /// True once the publisher closed the ring and everything has been read.
    #[getter]
    fn ended(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.end.core_ref(py)?.ended())
    }

    /// The next message, or None if none is waiting. Never blocks.
    fn try_recv<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.try_message(py)
    }

    /// The next message, waiting up to `timeout` seconds (None: forever).
    /// Raises `Timeout` at the deadline and `RingClosed` once the publisher
    /// has closed the ring and everything has been read.
    #[pyo3(signature = (timeout=None))]
    fn recv<'py>(slf: &Bound<'py, Self>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        match receive(slf, patience(py, timeout)?, |this| this.try_message(py))? {
            Some(msg) => Ok(msg),
            None => Err(timeout_error(slf, timeout)),
        }
    }

    /// Copies the next message into `buf` (any writable buffer at least as
    /// large as the message) without waiting; returns its length, or None.
    fn try_recv_into(slf: &Bound<'_, Self>, buf: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        let py = slf.py();
        receive(slf, Patience::Never, |this| {
            with_out_bytes(buf, |out| {
                this.end.core(py)?.try_recv(out).map_err(py_err(py))
            })
        })
    }

    /// Copies the next message into `buf`, waiting up to `timeout` seconds
    /// (None: forever); returns its length. Raises `Timeout` / `RingClosed`.
    #[pyo3(signature = (buf, timeout=None))]
    fn recv_into(
        slf: &Bound<'_, Self>,
        buf: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let py = slf.py();
        let got = receive(slf, patience(py, timeout)?, |this| {
            with_out_bytes(buf, |out| {
                this.end.core(py)?.try_recv(out).map_err(py_err(py))
            })
        })?;
        got.ok_or_else(|| timeout_error(slf, timeout))
    }

    /// Up to `max_n` messages: waits up to `timeout` seconds (default 0: do
    /// not wait; None: forever) for the first, then takes what is there.
    /// Typed rings give a numpy array of the ring's dtype, raw rings a list
    /// of bytes. Raises `RingClosed` once the stream has ended.
    #[pyo3(signature = (max_n, timeout=0.0))]
    fn recv_batch<'py>(
        slf: &Bound<'py, Self>,
        max_n: usize,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        if max_n == 0 {
            return Err(raise(
                py,
                "InvalidArgument",
                "max_n must be at least 1".into(),
            ));
        }
        let until = patience(py, timeout)?;
        let dtype = slf
            .try_borrow()?
            .end
            .records
            .as_ref()
            .map(|r| r.dtype(py).clone());
        if let Some(dt) = dtype {
            let arr = new_records(&dt, max_n)?;
            let n = receive(slf, until, |this| {
                // SAFETY: `arr` was created here and is seen by nobody else;
                // the slice ends with this attempt, GIL held throughout.
                let out = unsafe { array_bytes_mut(&arr)? };
                let n = this
                    .end
                    .core(py)?
                    .try_recv_rows(out, dt.itemsize(), max_n, |_, _| {})
                    .map_err(py_err(py))?;
                Ok((n > 0).then_some(n))
            })?;
            return Ok(truncate(arr, n.unwrap_or(0))?.into_any());
        }
        let list = PyList::empty(py);
        receive(slf, until, |this| {
            let (sub, _, scratch) = this.parts(py)?;
            while list.len() < max_n {
                match sub.try_recv(scratch) {
                    Ok(Some(len)) => list.append(PyBytes::new(py, &scratch[..len]))?,
                    Ok(None) => break,
                    Err(e) if list.is_empty() => return Err(py_err(py)(e)),
                    // Raised by the next call, on its first message; the
                    // messages gathered here are delivered now.
                    Err(_) => break,
                }
            }
            Ok((!list.is_empty()).then_some(()))
        })?;
        Ok(list.into_any())
    }

    /// Fills `out` with up to len(out) messages: waits up to `timeout`
    /// seconds (default 0; None: forever) for the first; returns the count.
    /// Typed rings: `out` is a 1-D array of the ring's dtype. Raw rings: `out`
    /// is a 2-D uint8 array whose rows receive messages; their lengths go
    /// into `lengths` (a 1-D native-endian int64/uint64 array) when given.
    /// With `seqs` (a 1-D native-endian uint64 array), `seqs[i]` receives
    /// the ring sequence of row `i`: messages lost between two rows (a lap,
    /// a dead producer's slots) show as a jump.
    #[pyo3(signature = (out, timeout=0.0, lengths=None, seqs=None))]
    fn recv_batch_into(
        slf: &Bound<'_, Self>,
        out: &Bound<'_, PyUntypedArray>,
        timeout: Option<f64>,
        lengths: Option<&Bound<'_, PyUntypedArray>>,
        seqs: Option<&Bound<'_, PyUntypedArray>>,
    ) -> PyResult<usize> {
        let py = slf.py();
        let until = patience(py, timeout)?;
        let invalid = |msg: String| Err(raise(py, "InvalidArgument", msg));
        let typed = {
            let mut this = slf.try_borrow_mut()?;
            match this.end.records.as_mut() {
                Some(rt) => {
                    rt.check(
                        &out.dtype(),
                        "out",
                        "allocate it with numpy.empty(n, dtype=sub.dtype)",
                    )?;
                    true
                }
                None => false,
            }
        };
        if typed && out.ndim() != 1 {
            return invalid(format!(
                "out must be a 1-D array of records, got {} dimensions",
                out.ndim()
            ));
        }
        if !typed && out.ndim() != 2 {
            return invalid(format!(
                "out must be a 2-D uint8 array (one message per row) for a raw ring, got {} dimensions",
                out.ndim()
            ));
        }
        let rows = out.shape()[0];
        let row = if rows == 0 {
            0
        } else {
            out.shape().iter().skip(1).product::<usize>() * out.dtype().itemsize()
        };
        if rows == 0 {
            return Ok(0);
        }
        let mut written = vec![("out", out)];
        if let Some(l) = lengths {
            check_column("lengths", l, b"iu", "int64 or uint64", rows, &written)?;
            written.push(("lengths", l));
        }
        if let Some(s) = seqs {
            check_column("seqs", s, b"u", "uint64", rows, &written)?;
        }
        let got = receive(slf, until, |this| {
            // SAFETY: `out`, `lengths` and `seqs` were checked not to
            // overlap; the slices end with this attempt, during which the
            // GIL stays held.
            let bytes = unsafe { array_bytes_mut(out)? };
            let mut lens = match lengths {
                // SAFETY: as for `out` above: no overlap, GIL held.
                Some(l) => Some(unsafe { array_bytes_mut(l)? }),
                None => None,
            };
            let seq_col = match seqs {
                // SAFETY: as for `out` above: no overlap, GIL held.
                Some(s) => Some(unsafe { array_u64_mut(s)? }),
                None => None,
            };
            let core = this.end.core(py)?;
            let record_len = |i: usize, len: usize| {
                if let Some(l) = lens.as_deref_mut() {
                    l[i * 8..i * 8 + 8].copy_from_slice(&(len as u64).to_ne_bytes());
                }
            };
            let n = match seq_col {
                Some(s) => core.try_recv_rows_seq(bytes, row, &mut s[..rows], record_len),
                None => core.try_recv_rows(bytes, row, rows, record_len),
            };
            let n = n.map_err(py_err(py))?;
            Ok((n > 0).then_some(n))
        })?;
        Ok(got.unwrap_or(0))
    }

    /// This subscriber's stage name on the ring (None: not a stage).
    #[getter]
    fn stage(&self, py: Python<'_>) -> PyResult<Option<String>> {
        Ok(self.end.core_ref(py)?.stage())
    }

    /// The stages this subscriber is gated after: it reads a message only
    /// once each of them has processed it.
    #[getter]
    fn after<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.end.core_ref(py)?.after())
    }

    /// Stages: messages processed as subscribers gated after this stage see
    /// it (every sequence below). A message counts as processed once the
    /// stage asks for the next one, or calls `commit()`. 0 if not a stage.
    #[getter]
    fn processed(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.end.core_ref(py)?.processed())
    }

    /// Stages: publish now that every message received so far is processed
    /// (every receive does this first anyway). A no-op if not a stage.
    fn commit(&mut self, py: Python<'_>) -> PyResult<()> {
        self.end.core(py)?.commit();
        Ok(())
    }

    /// The stages this subscriber is gated after, each with the progress it
    /// published (None: no subscriber of the ring has that stage name yet,
    /// which holds this one back).
    fn upstream(&self, py: Python<'_>) -> PyResult<Vec<(String, Option<u64>)>> {
        Ok(self.end.core_ref(py)?.upstream())
    }

    /// Sequence number of the next message this subscriber reads.
    #[getter]
    fn position(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.end.core_ref(py)?.position())
    }

    /// Sequence number this subscriber started at.
    #[getter]
    fn start_sequence(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.end.core_ref(py)?.start())
    }

    /// Messages received so far.
    #[getter]
    fn received(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.end.core_ref(py)?.received())
    }

    /// Messages skipped because the publisher lapped this subscriber, or
    /// because their producer died before committing them (multi-producer
    /// rings). Always `received + lost == position - start_sequence`.
    #[getter]
    fn lost(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.end.core_ref(py)?.lost())
    }

    /// Whether this subscriber was evicted from its bounded ring (its reads
    /// then raise `Evicted`).
    #[getter]
    fn evicted(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.end.core_ref(py)?.evicted())
    }

    /// Messages published but not yet read.
    #[getter]
    fn lag(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.end.core_ref(py)?.lag())
    }

    /// Pid of the ring's current (or last) publisher.
    #[getter]
    fn publisher_pid(&self, py: Python<'_>) -> PyResult<u32> {
        Ok(self.end.core_ref(py)?.publisher_status().pid)
    }

    /// A publisher has the ring open and its process exists.
    #[getter]
    fn publisher_alive(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.end.core_ref(py)?.publisher_status().alive)
    }

    /// The last publisher closed the ring cleanly.
    #[getter]
    fn publisher_closed(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.end.core_ref(py)?.publisher_status().closed)
    }

    /// How many times a publisher has opened the ring (a restart adds one).
    #[getter]
    fn generation(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.end.core_ref(py)?.publisher_status().generation)
    }

    /// Publish time of the last message read, ns of `time.monotonic_ns()`
    /// (or whatever the publisher passed to `publish_at`); None on rings
    /// without timestamps and before the first message.
    #[getter]
    fn last_time(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        Ok(self.end.core_ref(py)?.time())
    }

    /// Starts recording the latency of every message read from now on
    /// (receive time minus publish time, ns) into an HdrHistogram tracking up
    /// to `highest` seconds with `digits` significant digits; with
    /// `expected_interval` (seconds between messages), adds the samples a
    /// stalled publisher omitted. Replaces any recording in progress. Needs a
    /// ring created with `timestamps=True`.
    #[pyo3(signature = (*, highest=60.0, digits=3, expected_interval=None))]
    fn record_latency(
        &mut self,
        py: Python<'_>,
        highest: f64,
        digits: u8,
        expected_interval: Option<f64>,
    ) -> PyResult<()> {
        let config = crate::latency::config(py, highest, digits, expected_interval)?;
        self.end
            .core(py)?
            .record_latency(Some(config))
            .map_err(py_err(py))
    }

    /// Everything recorded since `record_latency()`, as a LatencyHistogram (a copy).
    fn latency(&self, py: Python<'_>) -> PyResult<PyLatencyHistogram> {
        let recorder = self.recorder(py)?;
        PyLatencyHistogram::holding(py, recorder.config(), &recorder.histogram())
    }

    /// What was recorded since the last call (or `record_latency()`), as a
    /// LatencyHistogram; the values stay in `latency()` too.
    fn latency_interval(&mut self, py: Python<'_>) -> PyResult<PyLatencyHistogram> {
        self.recorder(py)?;
        let recorder = self.end.core(py)?.recorder_mut().expect("checked above");
        let config = recorder.config();
        let interval = recorder.take_interval();
        PyLatencyHistogram::holding(py, config, &interval)
    }

    /// Stops recording; returns everything recorded.
    fn stop_latency(&mut self, py: Python<'_>) -> PyResult<PyLatencyHistogram> {
        let all = self.latency(py)?;
        self.end
            .core(py)?
            .record_latency(None)
            .map_err(py_err(py))?;
        Ok(all)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        match receive(slf, Patience::Until(None), |this| this.try_message(py)) {
            Ok(got) => Ok(got),
            Err(e) if e.is_instance(py, crate::errors::class(py, "RingClosed")?.as_any()) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn __repr__(&self) -> String {
        let name = &self.end.name;
        match &self.end.core {
            Some(s) => format!(
                "<ringcast.Subscriber {name:?} position={} received={} lost={}>",
                s.position(),
                s.received(),
                s.lost()
            ),
            None => format!("<ringcast.Subscriber {name:?} closed>"),
        }
    }
}
