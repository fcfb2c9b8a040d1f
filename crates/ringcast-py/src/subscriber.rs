//! `ringcast._native.Subscriber`: waits with the GIL released, copies messages
//! straight into numpy/bytes objects. No ring logic lives here.

use crate::buffer::ByteView;
use crate::errors::{py_err, raise};
use crate::records::{array_bytes_mut, new_records, overlaps, record_scalar, truncate, RecordType};
use crate::wait::PyWaitStrategy;
use numpy::prelude::*;
use numpy::{PyArrayDescr, PyUntypedArray};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use ringcast_core::Waiter;
use ringcast_core::{Error, Start, Subscriber as CoreSubscriber};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Longest stretch spent waiting without the GIL before checking for signals
/// (so Ctrl-C interrupts a blocked receive promptly).
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Native half of `ringcast.Subscriber`; construct it with `Subscriber.attach`.
#[pyclass(subclass, module = "ringcast._native", name = "Subscriber")]
pub struct PySubscriber {
    inner: Option<CoreSubscriber>,
    records: Option<RecordType>,
    /// One slot's worth of bytes for the allocating receive paths.
    scratch: Vec<u8>,
    waiter: Waiter,
    name: String,
}

/// How long a receive may wait for its first message.
#[derive(Debug, Clone, Copy)]
enum Patience {
    /// Not at all: the `try_*` methods, which never raise `RingClosed`.
    Never,
    /// Until the deadline (`None`: forever); the end of the stream raises.
    Until(Option<Instant>),
}

/// Turns a Python timeout (seconds, None = forever) into a patience.
fn patience(py: Python<'_>, timeout: Option<f64>) -> PyResult<Patience> {
    deadline(py, timeout).map(Patience::Until)
}

/// Turns a Python timeout (seconds, None = forever) into a deadline.
fn deadline(py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(raise(
            py,
            "InvalidArgument",
            format!("timeout must be None or >= 0 seconds, got {t}"),
        )),
        Some(t) if t.is_infinite() || t > 1e9 => Ok(None),
        Some(t) => Ok(Some(Instant::now() + Duration::from_secs_f64(t))),
    }
}

impl PySubscriber {
    fn core(&mut self, py: Python<'_>) -> PyResult<&mut CoreSubscriber> {
        match self.inner.as_mut() {
            Some(s) => Ok(s),
            None => Err(raise(
                py,
                "RingClosed",
                format!(
                    "subscriber of ring {:?} is closed; attach a new one",
                    self.name
                ),
            )),
        }
    }

    fn core_ref(&self, py: Python<'_>) -> PyResult<&CoreSubscriber> {
        match self.inner.as_ref() {
            Some(s) => Ok(s),
            None => Err(raise(
                py,
                "RingClosed",
                format!(
                    "subscriber of ring {:?} is closed; attach a new one",
                    self.name
                ),
            )),
        }
    }

    /// Blocks (GIL released, signals checked) until a message can be read.
    /// `Ok(false)` at the deadline; `RingClosed` when the stream ended.
    fn wait(&mut self, py: Python<'_>, patience: Patience) -> PyResult<bool> {
        let Patience::Until(until) = patience else {
            return Ok(false);
        };
        let Self {
            inner,
            waiter,
            name,
            ..
        } = self;
        let Some(sub) = inner.as_mut() else {
            return Err(raise(
                py,
                "RingClosed",
                format!("subscriber of ring {name:?} is closed; attach a new one"),
            ));
        };
        if sub.available() {
            return Ok(true);
        }
        loop {
            let slice_end = Instant::now() + SIGNAL_CHECK_INTERVAL;
            let slice_end = until.map_or(slice_end, |d| d.min(slice_end));
            match py.allow_threads(|| sub.wait_readable(Some(slice_end), waiter)) {
                Ok(()) => return Ok(true),
                Err(Error::Timeout) => {
                    if until.is_some_and(|d| Instant::now() >= d) {
                        return Ok(false);
                    }
                    py.check_signals()?;
                }
                Err(e) => return Err(py_err(py)(e)),
            }
        }
    }

    /// Receives one message into the scratch buffer; `None` at the deadline.
    fn recv_scratch(&mut self, py: Python<'_>, until: Patience) -> PyResult<Option<usize>> {
        loop {
            let Self { inner, scratch, .. } = self;
            if let Some(sub) = inner.as_mut() {
                if let Some(n) = sub.try_recv(scratch).map_err(py_err(py))? {
                    return Ok(Some(n));
                }
            }
            if !self.wait(py, until)? {
                return Ok(None);
            }
        }
    }

    /// Wraps the scratch bytes as the Python message type of this ring.
    fn message<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyAny>> {
        match &self.records {
            Some(rt) => record_scalar(rt.dtype(py), &self.scratch[..n]),
            None => Ok(PyBytes::new(py, &self.scratch[..n]).into_any()),
        }
    }

    /// Receives into a caller's buffer; `None` at the deadline.
    fn recv_into_until(
        &mut self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        until: Patience,
    ) -> PyResult<Option<usize>> {
        let mut byte_view;
        let out: &mut [u8] = if let Ok(arr) = buf.downcast::<PyUntypedArray>() {
            // SAFETY: the only view of `buf` made in this call; GIL held.
            unsafe { array_bytes_mut(arr)? }
        } else {
            byte_view = ByteView::writable(buf)?;
            byte_view.bytes_mut()
        };
        loop {
            if let Some(n) = self.core(py)?.try_recv(out).map_err(py_err(py))? {
                return Ok(Some(n));
            }
            if !self.wait(py, until)? {
                return Ok(None);
            }
        }
    }

    /// Waits for the first message (up to `until`) then reads up to `max`
    /// into rows of `out`.
    fn recv_rows_until(
        &mut self,
        py: Python<'_>,
        out: &mut [u8],
        row: usize,
        max: usize,
        until: Patience,
        lengths: impl FnMut(usize, usize),
    ) -> PyResult<usize> {
        let mut lengths = lengths;
        loop {
            let n = self
                .core(py)?
                .try_recv_rows(out, row, max, &mut lengths)
                .map_err(py_err(py))?;
            if n > 0 || max == 0 {
                return Ok(n);
            }
            if !self.wait(py, until)? {
                return Ok(0);
            }
        }
    }
}

#[pymethods]
impl PySubscriber {
    #[new]
    #[pyo3(signature = (name, *, dir=None, start=None, wait=None))]
    fn new(
        py: Python<'_>,
        name: String,
        dir: Option<PathBuf>,
        start: Option<&Bound<'_, PyAny>>,
        wait: Option<PyWaitStrategy>,
    ) -> PyResult<Self> {
        let start = match start {
            None => Start::Latest,
            Some(s) => {
                if let Ok(seq) = s.extract::<u64>() {
                    Start::At(seq)
                } else {
                    match s.extract::<String>().as_deref() {
                        Ok("latest") => Start::Latest,
                        Ok("oldest") => Start::Oldest,
                        _ => {
                            return Err(raise(
                                py,
                                "InvalidArgument",
                                format!("start must be \"latest\", \"oldest\" or a sequence number >= 0, got {s}"),
                            ))
                        }
                    }
                }
            }
        };
        let inner = py
            .allow_threads(|| CoreSubscriber::attach(&name, dir.as_deref(), start))
            .map_err(py_err(py))?;
        let scratch = vec![0u8; inner.layout().slot_size as usize];
        Ok(Self {
            inner: Some(inner),
            records: None,
            scratch,
            waiter: Waiter::new(wait.map(|w| w.inner).unwrap_or_default()),
            name,
        })
    }

    /// How this subscriber waits for messages (settable).
    #[getter]
    fn get_wait(&self) -> PyWaitStrategy {
        PyWaitStrategy {
            inner: self.waiter.strategy(),
        }
    }

    #[setter]
    fn set_wait(&mut self, wait: PyWaitStrategy) {
        self.waiter = Waiter::new(wait.inner);
    }

    /// The file descriptor event loops watch (see `recv_async`): readable once
    /// armed and a message can be read or the stream ended.
    fn _readiness_fd(&mut self, py: Python<'_>) -> PyResult<i32> {
        self.core(py)?.readiness_fd().map_err(py_err(py))
    }

    /// Arms the readiness fd for the current position.
    fn _arm_readiness(&mut self, py: Python<'_>) -> PyResult<()> {
        self.core(py)?.arm_readiness().map_err(py_err(py))
    }

    /// Consumes a pending readiness signal.
    fn _clear_readiness(&self, py: Python<'_>) -> PyResult<()> {
        self.core_ref(py)?.clear_readiness();
        Ok(())
    }

    /// True once the publisher closed the ring and everything has been read.
    #[getter]
    fn ended(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.core_ref(py)?.ended())
    }

    /// Sets the numpy dtype of a typed ring (done by `Subscriber.attach`).
    fn _set_dtype(&mut self, dtype: Bound<'_, PyArrayDescr>) {
        self.records = Some(RecordType::new(dtype));
    }

    /// The next message, or None if none is waiting. Never blocks.
    fn try_recv<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Self { inner, scratch, .. } = self;
        let sub = match inner.as_mut() {
            Some(s) => s,
            None => return self.core(py).map(|_| None),
        };
        match sub.try_recv(scratch).map_err(py_err(py))? {
            Some(n) => self.message(py, n).map(Some),
            None => Ok(None),
        }
    }

    /// The next message, waiting up to `timeout` seconds (None: forever).
    /// Raises `Timeout` at the deadline and `RingClosed` once the publisher
    /// has closed the ring and everything has been read.
    #[pyo3(signature = (timeout=None))]
    fn recv<'py>(&mut self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let until = patience(py, timeout)?;
        match self.recv_scratch(py, until)? {
            Some(n) => self.message(py, n),
            None => Err(raise(
                py,
                "Timeout",
                format!(
                    "no message on ring {:?} within {}s",
                    self.name,
                    timeout.unwrap_or(0.0)
                ),
            )),
        }
    }

    /// Copies the next message into `buf` (any writable buffer at least as
    /// large as the message) without waiting; returns its length, or None.
    fn try_recv_into(&mut self, py: Python<'_>, buf: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        self.recv_into_until(py, buf, Patience::Never)
    }

    /// Copies the next message into `buf`, waiting up to `timeout` seconds
    /// (None: forever); returns its length. Raises `Timeout` / `RingClosed`.
    #[pyo3(signature = (buf, timeout=None))]
    fn recv_into(
        &mut self,
        py: Python<'_>,
        buf: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let until = patience(py, timeout)?;
        match self.recv_into_until(py, buf, until)? {
            Some(n) => Ok(n),
            None => Err(raise(
                py,
                "Timeout",
                format!(
                    "no message on ring {:?} within {}s",
                    self.name,
                    timeout.unwrap_or(0.0)
                ),
            )),
        }
    }

    /// Up to `max_n` messages: waits up to `timeout` seconds (default 0: do
    /// not wait; None: forever) for the first, then takes what is there.
    /// Typed rings give a numpy array of the ring's dtype, raw rings a list
    /// of bytes. Raises `RingClosed` once the stream has ended.
    #[pyo3(signature = (max_n, timeout=0.0))]
    fn recv_batch<'py>(
        &mut self,
        py: Python<'py>,
        max_n: usize,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if max_n == 0 {
            return Err(raise(
                py,
                "InvalidArgument",
                "max_n must be at least 1".into(),
            ));
        }
        let until = patience(py, timeout)?;
        if let Some(dt) = self.records.as_ref().map(|r| r.dtype(py).clone()) {
            let arr = new_records(&dt, max_n)?;
            let n = {
                // SAFETY: `arr` was just created here; nothing else sees it yet.
                let out = unsafe { array_bytes_mut(&arr)? };
                self.recv_rows_until(py, out, dt.itemsize(), max_n, until, |_, _| {})?
            };
            return Ok(truncate(arr, n)?.into_any());
        }
        let list = PyList::empty(py);
        let Some(first) = self.recv_scratch(py, until)? else {
            return Ok(list.into_any());
        };
        list.append(PyBytes::new(py, &self.scratch[..first]))?;
        let Self { inner, scratch, .. } = self;
        let sub = inner.as_mut().expect("a message was just received");
        while list.len() < max_n {
            match sub.try_recv(scratch) {
                Ok(Some(len)) => list.append(PyBytes::new(py, &scratch[..len]))?,
                // A fault is raised by the next call, on its first message;
                // the messages gathered here are delivered now.
                Ok(None) | Err(_) => break,
            }
        }
        Ok(list.into_any())
    }

    /// Fills `out` with up to len(out) messages: waits up to `timeout`
    /// seconds (default 0; None: forever) for the first; returns the count.
    /// Typed rings: `out` is a 1-D array of the ring's dtype. Raw rings: `out`
    /// is a 2-D uint8 array whose rows receive messages; their lengths go
    /// into `lengths` (a 1-D integer array) when given.
    #[pyo3(signature = (out, timeout=0.0, lengths=None))]
    fn recv_batch_into(
        &mut self,
        py: Python<'_>,
        out: &Bound<'_, PyUntypedArray>,
        timeout: Option<f64>,
        lengths: Option<&Bound<'_, PyUntypedArray>>,
    ) -> PyResult<usize> {
        let until = patience(py, timeout)?;
        let rows = out.shape().first().copied().unwrap_or(0);
        if out.ndim() == 0 {
            return Err(raise(
                py,
                "InvalidArgument",
                "out must be an array with at least one dimension".into(),
            ));
        }
        if let Some(rt) = self.records.as_mut() {
            rt.check(
                &out.dtype(),
                "out",
                "allocate it with numpy.empty(n, dtype=sub.dtype)",
            )?;
        }
        if let Some(l) = lengths {
            if overlaps(out, l)? {
                return Err(raise(
                    py,
                    "InvalidArgument",
                    "out and lengths must not share memory".into(),
                ));
            }
        }
        // SAFETY: the only mutable view of `out`; `lengths` (viewed below) was
        // just checked not to overlap it; GIL held throughout.
        let bytes = unsafe { array_bytes_mut(out)? };
        if rows == 0 {
            return Ok(0);
        }
        let row = bytes.len() / rows;
        let mut lens: Option<&mut [u8]> = match lengths {
            Some(l) => {
                let d = l.dtype();
                if d.kind() != b'i' && d.kind() != b'u'
                    || d.itemsize() != 8
                    || l.ndim() != 1
                    || l.len() < rows
                {
                    return Err(raise(
                        py,
                        "InvalidArgument",
                        format!("lengths must be a 1-D int64 or uint64 array of at least {rows} entries"),
                    ));
                }
                // SAFETY: disjoint from `out` (checked above); GIL held.
                Some(unsafe { array_bytes_mut(l)? })
            }
            None => None,
        };
        self.recv_rows_until(py, bytes, row, rows, until, |i, len| {
            if let Some(l) = lens.as_deref_mut() {
                l[i * 8..i * 8 + 8].copy_from_slice(&(len as u64).to_ne_bytes());
            }
        })
    }

    /// The ring's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Path of the ring file.
    #[getter]
    fn path(&self, py: Python<'_>) -> PyResult<PathBuf> {
        Ok(self.core_ref(py)?.path().to_owned())
    }

    /// Number of slots.
    #[getter]
    fn capacity(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.core_ref(py)?.layout().capacity)
    }

    /// Largest message in bytes (the record size of typed rings).
    #[getter]
    fn slot_size(&self, py: Python<'_>) -> PyResult<u32> {
        Ok(self.core_ref(py)?.layout().slot_size)
    }

    /// Schema description stored in the ring (empty for raw rings).
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.core_ref(py)?.layout().schema))
    }

    /// Whether every message is exactly `slot_size` bytes (typed rings).
    #[getter]
    fn fixed_size(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.core_ref(py)?.layout().fixed_size())
    }

    /// numpy dtype of the records, or None for a raw bytes ring.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArrayDescr>> {
        self.records.as_ref().map(|r| r.dtype(py).clone())
    }

    /// Sequence number of the next message this subscriber reads.
    #[getter]
    fn position(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.core_ref(py)?.position())
    }

    /// Sequence number this subscriber started at.
    #[getter]
    fn start_sequence(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.core_ref(py)?.start())
    }

    /// Messages received so far.
    #[getter]
    fn received(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.core_ref(py)?.received())
    }

    /// Messages skipped because the publisher lapped this subscriber.
    /// Always `received + lost == position - start_sequence`.
    #[getter]
    fn lost(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.core_ref(py)?.lost())
    }

    /// Messages published but not yet read.
    #[getter]
    fn lag(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.core_ref(py)?.lag())
    }

    /// Pid of the ring's current (or last) publisher.
    #[getter]
    fn publisher_pid(&self, py: Python<'_>) -> PyResult<u32> {
        Ok(self.core_ref(py)?.publisher_status().pid)
    }

    /// A publisher has the ring open and its process exists.
    #[getter]
    fn publisher_alive(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.core_ref(py)?.publisher_status().alive)
    }

    /// The last publisher closed the ring cleanly.
    #[getter]
    fn publisher_closed(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.core_ref(py)?.publisher_status().closed)
    }

    /// How many times a publisher has opened the ring (a restart adds one).
    #[getter]
    fn generation(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.core_ref(py)?.publisher_status().generation)
    }

    /// Whether `close()` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_none()
    }

    /// Detaches from the ring and frees its subscriber record. Idempotent.
    fn close(&mut self) {
        self.inner = None;
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.recv_scratch(py, Patience::Until(None)) {
            Ok(Some(n)) => self.message(py, n).map(Some),
            Ok(None) => unreachable!("no deadline"),
            Err(e) if e.is_instance(py, crate::errors::class(py, "RingClosed")?.as_any()) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        match &self.inner {
            Some(s) => format!(
                "<ringcast.Subscriber {:?} position={} received={} lost={}>",
                self.name,
                s.position(),
                s.received(),
                s.lost()
            ),
            None => format!("<ringcast.Subscriber {:?} closed>", self.name),
        }
    }
}
