//! `ringcast._native.Publisher`: converts Python messages to bytes and hands
//! them to the core publisher. No ring logic lives here.

use crate::buffer::ByteView;
use crate::errors::{py_err, raise};
use crate::memory;
use crate::records::{array_bytes, asarray, is_plain_bytes, RecordType};
use crate::subscriber::{no_pending_signal, patience, Patience as Wait, SIGNAL_CHECK_INTERVAL};
use crate::wait::PyWaitStrategy;
use numpy::npyffi::{NpyTypes, PY_ARRAY_API};
use numpy::prelude::*;
use numpy::{PyArrayDescr, PyUntypedArray};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use ringcast_core::{
    CreateOptions, Error, Patience, Producers, Publisher as CorePublisher, RingIdentity,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Native half of `ringcast.Publisher`; construct it with `Publisher.create`.
#[pyclass(subclass, module = "ringcast._native", name = "Publisher")]
pub struct PyPublisher {
    /// The core publisher; `None` once closed, and while a publish waits
    /// for room with the GIL released (it holds the core publisher then).
    inner: Option<CorePublisher>,
    /// Set while a publish waits with the GIL released: `close()` from
    /// another thread raises the flag, and the wait ends within a slice.
    waiting: Option<Arc<AtomicBool>>,
    records: Option<RecordType>,
    name: String,
    identity: RingIdentity,
}

/// Why a publisher without its core publisher cannot be used: closed, or
/// busy in a publish that waits in another thread.
fn unusable(py: Python<'_>, name: &str, waiting: Option<&Arc<AtomicBool>>) -> PyErr {
    match waiting {
        Some(flag) if !flag.load(Ordering::Acquire) => raise(
            py,
            "RingError",
            format!(
                "publisher of ring {name:?} is busy: a publish in another thread is waiting for \
                 room; publish from one thread per publisher (or close() it to end that wait)"
            ),
        ),
        _ => raise(
            py,
            "RingClosed",
            format!("publisher of ring {name:?} is closed; create a new one"),
        ),
    }
}

impl PyPublisher {
    pub(crate) fn core(&mut self, py: Python<'_>) -> PyResult<&mut CorePublisher> {
        let Self {
            inner,
            name,
            waiting,
            ..
        } = self;
        inner
            .as_mut()
            .ok_or_else(|| unusable(py, name, waiting.as_ref()))
    }

    /// The core publisher for everything but publishing (which finds out by
    /// itself): refused once closed, busy, or revoked (its ring file shrank,
    /// or this is a fork() child of the process that created it).
    fn core_ref(&self, py: Python<'_>) -> PyResult<&CorePublisher> {
        let core = self
            .inner
            .as_ref()
            .ok_or_else(|| unusable(py, &self.name, self.waiting.as_ref()))?;
        core.check_usable().map_err(py_err(py))?;
        Ok(core)
    }

    /// Publishes `msg`: at once when there is room; when a bounded ring is
    /// full and `wait` is `Some(timeout)`, waits for room (GIL released) up
    /// to `timeout` seconds (None: forever), else raises `RingFull`.
    /// `time`: the message's publish time (ns), or None for now (on rings
    /// with timestamps).
    fn publish_one(
        slf: &Bound<'_, Self>,
        msg: &Bound<'_, PyAny>,
        wait: Option<Option<f64>>,
        time: Option<u64>,
    ) -> PyResult<()> {
        let py = slf.py();
        // A bad timeout is refused even when no wait turns out to be needed.
        let until = wait.map(|t| deadline(py, t)).transpose()?;
        let full = {
            let mut guard = slf.try_borrow_mut()?;
            let Self {
                inner,
                records,
                name,
                waiting,
                ..
            } = &mut *guard;
            let core = inner
                .as_mut()
                .ok_or_else(|| unusable(py, name, waiting.as_ref()))?;
            with_message(msg, records.as_mut(), |bytes| {
                let sent = holding_gil(py, core, until, |core, p| {
                    publish_bytes(core, bytes, time, p)
                })?;
                // Full: wait for room without the GIL, with a copy of the message.
                Ok(match sent {
                    Attempt::Sent(_) => None,
                    Attempt::Full => Some(bytes.to_vec()),
                })
            })?
        };
        match full {
            None => Ok(()),
            Some(bytes) => waiting(slf, until.flatten(), move |core, p| {
                publish_bytes(core, &bytes, time, p)
            })
            .map(|_| ()),
        }
    }
}

/// Publishes one message's bytes, carrying `time` as its publish time if given.
fn publish_bytes(
    core: &mut CorePublisher,
    bytes: &[u8],
    time: Option<u64>,
    patience: Patience<'_>,
) -> ringcast_core::Result<u64> {
    match time {
        None => core.publish_with(bytes, patience),
        Some(t) => core.publish_at(bytes, t, patience),
    }
}

/// Calls `f` with the bytes of the message `msg` for a ring of record type
/// `records` (`None`: raw bytes ring). Fast paths first: bytes, numpy arrays
/// and records; tuples and other numpy scalars go through `numpy.asarray`.
pub fn with_message<R>(
    msg: &Bound<'_, PyAny>,
    records: Option<&mut RecordType>,
    f: impl FnOnce(&[u8]) -> PyResult<R>,
) -> PyResult<R> {
    let py = msg.py();
    if let Ok(b) = msg.downcast::<PyBytes>() {
        return f(b.as_bytes());
    }
    if let Ok(arr) = msg.downcast::<PyUntypedArray>() {
        if let Some(rt) = records {
            let d = arr.dtype();
            if !is_plain_bytes(&d) {
                rt.check(&d, "the array", CONVERT_HINT)?;
                let n = arr.shape().iter().product::<usize>();
                if n != 1 {
                    return Err(raise(
                        py,
                        "InvalidArgument",
                        format!("publish() takes one record but the array holds {n}; use publish_batch() for many"),
                    ));
                }
            }
        }
        return f(array_bytes(arr)?);
    }
    if let Some(rt) = records {
        if is_numpy_record(msg) {
            let d = msg
                .getattr(intern!(py, "dtype"))?
                .downcast_into::<PyArrayDescr>()?;
            rt.check(&d, "the record", CONVERT_HINT)?;
            let view = ByteView::readable(msg)?;
            return f(view.bytes());
        }
        // Convenience: a tuple of field values, or another numpy scalar.
        let as_array = if msg.is_instance_of::<PyTuple>() {
            Some(asarray(py)?.call((msg, rt.dtype(py)), None)?)
        } else if msg.hasattr(intern!(py, "dtype"))? {
            Some(asarray(py)?.call1((msg,))?)
        } else {
            None
        };
        if let Some(arr) = as_array {
            return with_message(&arr, Some(rt), f);
        }
    }
    let view = ByteView::readable(msg)?;
    f(view.bytes())
}

/// What a publish attempt made with the GIL held came to.
enum Attempt<R> {
    /// Published.
    Sent(R),
    /// A bounded ring is full: wait for room with the GIL released.
    Full,
}

/// A publish attempt with the GIL held: it does not wait for room in a
/// bounded ring (`Attempt::Full` when it would have to and `until` allows
/// waiting), and runs Python's signal handlers while it waits for another
/// producer to finish a slot's previous lap on a multi-producer ring (rare:
/// that producer is descheduled or stopped). `until`: `None` for the try_
/// calls, whose wait for a slot is bounded by the ring's claim timeout;
/// `Some(deadline)` otherwise.
fn holding_gil<R>(
    py: Python<'_>,
    core: &mut CorePublisher,
    until: Option<Option<Instant>>,
    f: impl FnOnce(&mut CorePublisher, Patience<'_>) -> ringcast_core::Result<R>,
) -> PyResult<Attempt<R>> {
    let claim_timeout = Duration::from_nanos(core.layout().claim_timeout_ns);
    let stall_limit = until.is_none().then_some(claim_timeout);
    let slice = stall_limit.map_or(SIGNAL_CHECK_INTERVAL, |l| l.min(SIGNAL_CHECK_INTERVAL));
    let mut interrupt: Option<PyErr> = None;
    let mut started: Option<Instant> = None;
    let mut between = || {
        let since = *started.get_or_insert_with(Instant::now);
        stall_limit.is_none_or(|limit| since.elapsed() < limit)
            && no_pending_signal(py, &mut interrupt)
    };
    let res = f(
        core,
        Patience {
            wait_for_room: false,
            deadline: until.flatten(),
            slice: Some(slice),
            between: Some(&mut between),
        },
    );
    if let Some(e) = interrupt {
        return Err(e);
    }
    match res {
        Ok(r) => Ok(Attempt::Sent(r)),
        Err(Error::RingFull { .. }) if until.is_some() => Ok(Attempt::Full),
        Err(e) => Err(py_err(py)(e)),
    }
}

/// Runs a publish that waits for room in a bounded ring: the core publisher
/// taken out of `slf` (so other threads may use `slf`: `close()` ends the
/// wait, which then raises `RingClosed`), the GIL released, Python signal
/// handlers run every [`SIGNAL_CHECK_INTERVAL`] (a pending exception, e.g.
/// KeyboardInterrupt, ends the wait and is raised).
fn waiting<R: Send>(
    slf: &Bound<'_, PyPublisher>,
    deadline: Option<Instant>,
    f: impl FnOnce(&mut CorePublisher, Patience<'_>) -> ringcast_core::Result<R> + Send,
) -> PyResult<R> {
    let py = slf.py();
    let (mut core, closing) = {
        let mut this = slf.try_borrow_mut()?;
        this.core(py)?; // closed, or busy in another thread
        let closing = Arc::new(AtomicBool::new(false));
        this.waiting = Some(closing.clone());
        (this.inner.take().expect("checked above"), closing)
    };
    let mut interrupt: Option<PyErr> = None;
    let res = py.allow_threads(|| {
        let mut between = || {
            !closing.load(Ordering::Acquire)
                && Python::with_gil(|py| no_pending_signal(py, &mut interrupt))
        };
        f(
            &mut core,
            Patience {
                wait_for_room: true,
                deadline,
                slice: Some(SIGNAL_CHECK_INTERVAL),
                between: Some(&mut between),
            },
        )
    });
    // Nobody else borrows `slf` across a GIL release, and we hold the GIL.
    let mut this = slf.borrow_mut();
    this.waiting = None;
    if closing.load(Ordering::Acquire) {
        drop(core); // closed meanwhile: close it now
        return Err(raise(
            py,
            "RingClosed",
            format!(
                "publisher of ring {:?} was closed while this publish waited for room (the \
                 message was not published)",
                this.name
            ),
        ));
    }
    this.inner = Some(core);
    if let Some(e) = interrupt {
        return Err(e);
    }
    res.map_err(py_err(py))
}

/// A Python timeout (seconds, None = forever) as a deadline.
fn deadline(py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Instant>> {
    Ok(match patience(py, timeout)? {
        Wait::Until(d) => d,
        Wait::Never => None,
    })
}

/// Seconds as a positive duration, or an `InvalidArgument` naming `what`.
fn positive_seconds(py: Python<'_>, what: &str, secs: f64) -> PyResult<Duration> {
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        return Err(raise(
            py,
            "InvalidArgument",
            format!("{what} must be a positive number of seconds, got {secs}"),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Sends a batch: on a bounded ring through [`waiting`] (the GIL released
/// while it waits for room), on a lossy ring at once (it never waits for
/// room; see [`holding_gil`] for multi-producer slots).
fn send_batch(
    slf: &Bound<'_, PyPublisher>,
    until: Option<Instant>,
    f: impl FnOnce(&mut CorePublisher, Patience<'_>) -> ringcast_core::Result<u64> + Send,
) -> PyResult<u64> {
    let py = slf.py();
    let bounded = slf.try_borrow()?.core_ref(py)?.layout().bounded();
    if bounded {
        return waiting(slf, until, f);
    }
    let mut this = slf.try_borrow_mut()?;
    match holding_gil(py, this.core(py)?, Some(until), f)? {
        Attempt::Sent(first) => Ok(first),
        Attempt::Full => unreachable!("lossy rings are never full"),
    }
}

const CONVERT_HINT: &str = "convert it with .astype(pub.dtype)";

/// Whether `obj` is a `numpy.void` (a structured record).
fn is_numpy_record(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: reads a type object from numpy's C-API table and performs a
    // type check on a live object; both are plain lookups with the GIL held.
    unsafe {
        let void_type = PY_ARRAY_API.get_type_object(obj.py(), NpyTypes::PyVoidArrType_Type);
        pyo3::ffi::PyObject_TypeCheck(obj.as_ptr(), void_type) != 0
    }
}

#[pymethods]
impl PyPublisher {
    /// Creates a ring (see `Publisher.create`), or with `attach=True` opens
    /// an existing one as a further producer (see `Publisher.attach`).
    #[new]
    #[pyo3(signature = (name, *, capacity=0, slot_size=0, fixed_size=false, schema=None, dir=None, mode=0o600, exist_ok=false, max_subscribers=None, bounded=false, watermark=None, liveness_timeout=5.0, producers="one", max_producers=None, claim_timeout=0.1, wait=None, attach=false, huge_pages="off", huge_page_size=None, huge_dir=None, lock_memory=false, prefault=None, numa_node=None, numa_cpu=None, pin_cpu=None, timestamps=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: String,
        capacity: u64,
        slot_size: u32,
        fixed_size: bool,
        schema: Option<Vec<u8>>,
        dir: Option<PathBuf>,
        mode: u32,
        exist_ok: bool,
        max_subscribers: Option<u32>,
        bounded: bool,
        watermark: Option<u64>,
        liveness_timeout: f64,
        producers: &str,
        max_producers: Option<u32>,
        claim_timeout: f64,
        wait: Option<PyWaitStrategy>,
        attach: bool,
        huge_pages: &str,
        huge_page_size: Option<u64>,
        huge_dir: Option<PathBuf>,
        lock_memory: bool,
        prefault: Option<bool>,
        numa_node: Option<usize>,
        numa_cpu: Option<usize>,
        pin_cpu: Option<usize>,
        timestamps: bool,
    ) -> PyResult<Self> {
        let wait = wait.map(|w| w.inner).unwrap_or_default();
        let inner = if attach {
            // Prefaulting an attached ring is opt-in; a new ring's is opt-out.
            let memory = memory::end_options(lock_memory, prefault.unwrap_or(false), pin_cpu);
            py.allow_threads(|| CorePublisher::attach_with(&name, dir.as_deref(), wait, &memory))
        } else {
            let producers = match (producers, max_producers) {
                ("one", None) => Producers::One,
                ("one", Some(_)) => {
                    return Err(raise(
                        py,
                        "InvalidArgument",
                        "max_producers applies to producers=\"many\" rings only".into(),
                    ))
                }
                ("many", max) => max.map_or(Producers::many(), |max| Producers::Many { max }),
                (other, _) => {
                    return Err(raise(
                        py,
                        "InvalidArgument",
                        format!("producers must be \"one\" or \"many\", got {other:?}"),
                    ))
                }
            };
            if !bounded && watermark.is_some() {
                return Err(raise(
                    py,
                    "InvalidArgument",
                    "watermark applies to bounded rings only; pass bounded=True".into(),
                ));
            }
            let opts = CreateOptions {
                capacity,
                slot_size,
                fixed_size,
                schema: schema.unwrap_or_default(),
                max_subscribers,
                dir,
                mode,
                exist_ok,
                bounded: bounded.then(|| watermark.unwrap_or(capacity)),
                liveness_timeout: positive_seconds(py, "liveness_timeout", liveness_timeout)?,
                producers,
                claim_timeout: positive_seconds(py, "claim_timeout", claim_timeout)?,
                wait,
                placement: memory::placement(
                    py,
                    huge_pages,
                    huge_page_size,
                    huge_dir,
                    numa_node,
                    numa_cpu,
                )?,
                memory: memory::end_options(lock_memory, prefault.unwrap_or(true), pin_cpu),
                timestamps,
            };
            py.allow_threads(|| CorePublisher::create(&name, &opts))
        }
        .map_err(py_err(py))?;
        Ok(Self {
            identity: inner.identity().clone(),
            inner: Some(inner),
            waiting: None,
            records: None,
            name,
        })
    }

    /// Sets the numpy dtype of a typed ring (done by `Publisher.create`).
    fn _set_dtype(&mut self, py: Python<'_>, dtype: Bound<'_, PyArrayDescr>) -> PyResult<()> {
        let layout = self.core_ref(py)?.layout();
        let (size, fixed) = (layout.slot_size as usize, layout.fixed_size());
        self.records = Some(RecordType::checked(dtype, size, fixed, "InvalidArgument")?);
        Ok(())
    }

    /// Publishes one message: bytes-like of the message size, a numpy record
    /// or 0-d array of the ring's dtype, or a tuple of field values. On a
    /// bounded ring that is full, waits for room up to `timeout` seconds
    /// (None: forever) and then raises `Timeout`.
    #[pyo3(signature = (msg, timeout=None))]
    fn publish(
        slf: &Bound<'_, Self>,
        msg: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        Self::publish_one(slf, msg, Some(timeout), None)
    }

    /// Publishes one message carrying `time` (ns, on the clock of
    /// `time.monotonic_ns()`) as its publish time: the time it was due, so
    /// that latency measured by subscribers includes any delay in sending it
    /// (no coordinated omission), or an upstream event time. Needs a ring
    /// created with `timestamps=True`; otherwise as `publish`.
    #[pyo3(signature = (msg, time, timeout=None))]
    fn publish_at(
        slf: &Bound<'_, Self>,
        msg: &Bound<'_, PyAny>,
        time: u64,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        Self::publish_one(slf, msg, Some(timeout), Some(time))
    }

    /// Publishes one message if the ring has room for it now; raises
    /// `RingFull` (nothing published) when a bounded ring is full.
    fn try_publish(slf: &Bound<'_, Self>, msg: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::publish_one(slf, msg, None, None)
    }

    /// Publishes many messages at once; returns how many were published.
    /// Typed rings take an array of the ring's dtype (or anything
    /// `numpy.asarray` turns into one); raw rings take a 2-D array whose rows
    /// are messages, or an iterable of bytes-like messages. Every message is
    /// checked before the first is published. On a bounded ring, waits for
    /// room as needed up to `timeout` seconds in all (None: forever); a
    /// `Timeout` says how many of the messages went out.
    #[pyo3(signature = (batch, timeout=None))]
    fn publish_batch(
        slf: &Bound<'_, Self>,
        batch: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let py = slf.py();
        let until = deadline(py, timeout)?;
        let (typed, slot_size) = {
            let this = slf.try_borrow()?;
            let slot_size = this.core_ref(py)?.layout().slot_size as usize;
            (
                this.records.as_ref().map(|r| r.dtype(py).clone()),
                slot_size,
            )
        };
        if let Some(dtype) = typed {
            let arr = match batch.downcast::<PyUntypedArray>() {
                Ok(a) => a.clone(),
                Err(_) => asarray(py)?
                    .call((batch, dtype), None)?
                    .downcast_into::<PyUntypedArray>()?,
            };
            let d = arr.dtype();
            if !is_plain_bytes(&d) {
                let mut this = slf.try_borrow_mut()?;
                let rt = this.records.as_mut().expect("typed ring");
                rt.check(&d, "the array", CONVERT_HINT)?;
            }
            let bytes = array_bytes(&arr)?;
            send_batch(slf, until, |core, p| core.publish_records(bytes, p))?;
            return Ok(bytes.len() / slot_size);
        }
        if let Ok(arr) = batch.downcast::<PyUntypedArray>() {
            // Rows (the first axis) are messages; a 0-d array is one message.
            let rows = arr.shape().first().copied().unwrap_or(1);
            let bytes = array_bytes(arr)?;
            let row = bytes.len().checked_div(rows).unwrap_or(0);
            if row > slot_size {
                return Err(py_err(py)(ringcast_core::Error::MessageTooLarge {
                    len: row,
                    slot_size,
                }));
            }
            let msgs = (0..rows).map(|i| &bytes[i * row..(i + 1) * row]);
            send_batch(slf, until, |core, p| core.publish_all(msgs, p))?;
            return Ok(rows);
        }
        let views = batch
            .try_iter()?
            .map(|item| ByteView::readable(&item?))
            .collect::<PyResult<Vec<_>>>()?;
        if let Some((i, v)) = views
            .iter()
            .enumerate()
            .find(|(_, v)| v.bytes().len() > slot_size)
        {
            let e = ringcast_core::Error::MessageTooLarge {
                len: v.bytes().len(),
                slot_size,
            };
            return Err(raise(
                py,
                "MessageTooLarge",
                format!("message {i} of the batch: {e}; nothing was published"),
            ));
        }
        let msgs: Vec<&[u8]> = views.iter().map(|v| v.bytes()).collect();
        send_batch(slf, until, |core, p| {
            core.publish_all(msgs.iter().copied(), p)
        })?;
        Ok(views.len())
    }

    /// Whether the ring is bounded (publishers wait for the slowest subscriber).
    /// Whether every message carries its publish time.
    #[getter]
    fn timestamps(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.core_ref(py)?.layout().timestamps())
    }

    #[getter]
    fn bounded(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.core_ref(py)?.layout().bounded())
    }

    /// Bounded rings: most unread messages a publisher may be ahead of the
    /// slowest subscriber; None on lossy rings.
    #[getter]
    fn watermark(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        let layout = self.core_ref(py)?.layout();
        Ok(layout.bounded().then_some(layout.watermark))
    }

    /// "one" or "many".
    #[getter]
    fn producers(&self, py: Python<'_>) -> PyResult<&'static str> {
        Ok(if self.core_ref(py)?.layout().multi_producer() {
            "many"
        } else {
            "one"
        })
    }

    /// Messages this publisher has published (on a single-producer ring:
    /// the ring's sequence, which continues across take-overs).
    /// Where the ring's memory is and what this publisher did to it, as the
    /// dict `ringcast.MemoryReport` is built from.
    fn _memory<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        memory::report_dict(py, &self.core_ref(py)?.memory())
    }

    #[getter]
    fn published(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.core_ref(py)?.published())
    }

    /// Subscribers evicted from this bounded ring so far.
    #[getter]
    fn evictions(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.core_ref(py)?.evictions())
    }

    /// Subscribers attached now.
    #[getter]
    fn subscriber_count(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.core_ref(py)?.subscriber_count())
    }

    /// Producers attached now (1 on a single-producer ring).
    #[getter]
    fn producer_count(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.core_ref(py)?.producer_count())
    }

    /// Schema bytes stored in the ring (for `Publisher.attach`).
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.core_ref(py)?.layout().schema))
    }

    /// Test hook: stop this process (SIGSTOP) right after claiming sequence
    /// `seq`, with its slot marked as being written; multi-producer rings.
    #[cfg(feature = "test-hooks")]
    fn _stop_after_claim(&mut self, py: Python<'_>, seq: u64) -> PyResult<()> {
        self.core(py)?.stop_after_claim(seq).map_err(py_err(py))
    }

    /// Sequence number the next message gets (= messages published so far).
    #[getter]
    fn sequence(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.core_ref(py)?.sequence())
    }

    /// How many publishers have opened this ring, this one included.
    #[getter]
    fn generation(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.core_ref(py)?.generation())
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

    /// numpy dtype of the records, or None for a raw bytes ring.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArrayDescr>> {
        self.records.as_ref().map(|r| r.dtype(py).clone())
    }

    /// Whether `close()` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_none()
            && self
                .waiting
                .as_ref()
                .is_none_or(|closing| closing.load(Ordering::Acquire))
    }

    /// Closes the ring: subscribers that have read everything see the end of
    /// the stream. The ring file stays until `unlink()`. Idempotent. A
    /// publish waiting for room in another thread ends and raises
    /// `RingClosed` (the ring is closed as it returns).
    fn close(&mut self) {
        if let Some(closing) = &self.waiting {
            closing.store(true, Ordering::Release);
        }
        self.inner = None;
    }

    /// Removes the ring file (also after `close()`); attached subscribers keep
    /// reading what is there. A ring that has since been replaced by another
    /// of the same name is left alone.
    fn unlink(&self, py: Python<'_>) -> PyResult<()> {
        self.identity.unlink().map_err(py_err(py))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, _args: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match &self.inner {
            Some(p) => format!(
                "<ringcast.Publisher {:?} capacity={} slot_size={} sequence={}{}>",
                self.name,
                p.layout().capacity,
                p.layout().slot_size,
                p.sequence(),
                self.records
                    .as_ref()
                    .map(|r| format!(" dtype={}", r.dtype(py)))
                    .unwrap_or_default()
            ),
            None => format!("<ringcast.Publisher {:?} closed>", self.name),
        }
    }
}
