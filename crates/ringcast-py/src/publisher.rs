//! `ringcast._native.Publisher`: converts Python messages to bytes and hands
//! them to the core publisher. No ring logic lives here.

use crate::args::{seconds_of, Named, Names};
use crate::buffer::ByteView;
use crate::end::{End, PyRingEnd};
use crate::errors::{class, py_err, raise};
use crate::memory;
use crate::records::{array_bytes, asarray, is_plain_bytes, RecordType};
use crate::wait::{
    deadline, no_pending_signal, without_gil, Ends, PyWaitStrategy, SIGNAL_CHECK_INTERVAL,
};
use numpy::npyffi::{NpyTypes, PY_ARRAY_API};
use numpy::prelude::*;
use numpy::{PyArrayDescr, PyUntypedArray};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use ringcast_core::{
    CreateOptions, HugePages, Patience, Producers, PublishError, Publisher as CorePublisher,
    RingIdentity,
};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Native half of `ringcast.Publisher`; construct it with `Publisher.create`.
#[pyclass(extends = PyRingEnd, subclass, module = "ringcast._native", name = "Publisher")]
pub struct PyPublisher {
    /// The core publisher; lent out (the end busy) while a publish waits
    /// for room with the GIL released.
    pub(crate) end: End<CorePublisher>,
    identity: RingIdentity,
}

impl Names for Producers {
    const ARG: &'static str = "producers";
    const NAMES: &'static [(&'static str, Self)] = &[("one", Self::One), ("many", Self::many())];
}

impl PyPublisher {
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
            let (core, records) = guard.end.parts(py)?;
            with_message(msg, records, |bytes| {
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
) -> Result<u64, PublishError> {
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
    f: impl FnOnce(&mut CorePublisher, Patience<'_>) -> Result<R, PublishError>,
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
        Err(PublishError::RingFull { .. }) if until.is_some() => Ok(Attempt::Full),
        Err(e) => Err(py_err(py)(e)),
    }
}

/// Runs a publish that waits for room in a bounded ring, in the binding's
/// one GIL-free wait: the core publisher lent out of `slf` meanwhile, so
/// other threads may use `slf` (they find it busy) and close it (the wait
/// ends, and raises `RingClosed` once the core publisher is closed).
fn waiting<R: Send>(
    slf: &Bound<'_, PyPublisher>,
    deadline: Option<Instant>,
    f: impl FnOnce(&mut CorePublisher, Patience<'_>) -> Result<R, PublishError> + Send,
) -> PyResult<R> {
    let py = slf.py();
    let (mut core, closed) = {
        let mut this = slf.try_borrow_mut()?;
        this.end.core(py)?; // closed, or busy in another thread
        let closed = this.end.closed.clone();
        (this.end.core.take().expect("checked above"), closed)
    };
    let (res, interrupt) = without_gil(py, Ends::closed(&closed), |slice, between| {
        f(
            &mut core,
            Patience {
                wait_for_room: true,
                deadline,
                slice: Some(slice),
                between: Some(between),
            },
        )
    });
    // Nobody else borrows `slf` across a GIL release, and we hold the GIL.
    let mut this = slf.borrow_mut();
    if closed.load(Ordering::Acquire) {
        drop(core); // closed meanwhile: close it now
        return Err(raise(
            py,
            "RingClosed",
            format!(
                "publisher of ring {:?} was closed while this publish waited for room (the \
                 message was not published)",
                this.end.name
            ),
        ));
    }
    this.end.core = Some(core);
    if let Some(e) = interrupt {
        return Err(e);
    }
    res.map_err(py_err(py))
}

/// Sends a batch: on a bounded ring through [`waiting`] (the GIL released
/// while it waits for room), on a lossy ring at once (it never waits for
/// room; see [`holding_gil`] for multi-producer slots).
fn send_batch(
    slf: &Bound<'_, PyPublisher>,
    until: Option<Instant>,
    f: impl FnOnce(&mut CorePublisher, Patience<'_>) -> Result<u64, PublishError> + Send,
) -> PyResult<u64> {
    let py = slf.py();
    let bounded = slf.try_borrow()?.end.core_ref(py)?.layout().bounded();
    if bounded {
        return waiting(slf, until, f);
    }
    let mut this = slf.try_borrow_mut()?;
    match holding_gil(py, this.end.core(py)?, Some(until), f)? {
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
    #[pyo3(signature = (name, *, capacity=0, slot_size=0, fixed_size=false, schema=None, dir=None, mode=0o600, exist_ok=false, max_subscribers=None, bounded=false, watermark=None, liveness_timeout=None, producers=Named(Producers::One), max_producers=None, claim_timeout=None, wait=None, attach=false, huge_pages=Named(HugePages::Off), huge_page_size=None, huge_dir=None, lock_memory=false, prefault=None, numa_node=None, numa_cpu=None, pin_cpu=None, timestamps=false, heads_apart=false))]
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
        liveness_timeout: Option<&Bound<'_, PyAny>>,
        producers: Named<Producers>,
        max_producers: Option<u32>,
        claim_timeout: Option<&Bound<'_, PyAny>>,
        wait: Option<PyWaitStrategy>,
        attach: bool,
        huge_pages: Named<HugePages>,
        huge_page_size: Option<u64>,
        huge_dir: Option<PathBuf>,
        lock_memory: bool,
        prefault: Option<bool>,
        numa_node: Option<usize>,
        numa_cpu: Option<usize>,
        pin_cpu: Option<usize>,
        timestamps: bool,
        heads_apart: bool,
    ) -> PyResult<(Self, PyRingEnd)> {
        let wait = wait.map(|w| w.inner).unwrap_or_default();
        let core = if attach {
            // Prefaulting an attached ring is opt-in; a new ring's is opt-out.
            let memory = memory::end_options(lock_memory, prefault.unwrap_or(false), pin_cpu);
            py.allow_threads(|| CorePublisher::attach_with(&name, dir.as_deref(), wait, &memory))
        } else {
            // What the core's options cannot hold is refused here; the core
            // checks every value it can hold.
            let producers = match (producers.0, max_producers) {
                (Producers::One, Some(_)) => {
                    return Err(raise(
                        py,
                        "InvalidArgument",
                        "max_producers applies to producers=\"many\" rings only".into(),
                    ))
                }
                (Producers::Many { .. }, Some(max)) => Producers::Many { max },
                (producers, None) => producers,
            };
            if !bounded && watermark.is_some() {
                return Err(raise(
                    py,
                    "InvalidArgument",
                    "watermark applies to bounded rings only; pass bounded=True".into(),
                ));
            }
            let defaults = CreateOptions::new(capacity, slot_size);
            let seconds = |what: &str, given: Option<&Bound<'_, PyAny>>, default: Duration| {
                given.map_or(Ok(default), |secs| seconds_of(what, secs))
            };
            let opts = CreateOptions {
                fixed_size,
                schema: schema.unwrap_or_default(),
                max_subscribers,
                dir,
                mode,
                exist_ok,
                bounded: bounded.then(|| watermark.unwrap_or(capacity)),
                liveness_timeout: seconds(
                    "liveness_timeout",
                    liveness_timeout,
                    defaults.liveness_timeout,
                )?,
                producers,
                claim_timeout: seconds("claim_timeout", claim_timeout, defaults.claim_timeout)?,
                wait,
                placement: memory::placement(
                    py,
                    huge_pages.0,
                    huge_page_size,
                    huge_dir,
                    numa_node,
                    numa_cpu,
                )?,
                memory: memory::end_options(lock_memory, prefault.unwrap_or(true), pin_cpu),
                timestamps,
                heads_apart,
                ..defaults
            };
            py.allow_threads(|| CorePublisher::create(&name, &opts))
        }
        .map_err(py_err(py))?;
        let publisher = Self {
            identity: core.identity().clone(),
            end: End::new(core, name),
        };
        Ok((publisher, PyRingEnd))
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
            let slot_size = this.end.core_ref(py)?.layout().slot_size as usize;
            let typed = this.end.records.as_ref().map(|r| r.dtype(py).clone());
            (typed, slot_size)
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
                let rt = this.end.records.as_mut().expect("typed ring");
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
            let msgs = (0..rows).map(|i| &bytes[i * row..(i + 1) * row]);
            send_batch(slf, until, |core, p| core.publish_all(msgs, p))
                .map_err(|e| which_too_large(py, e, std::iter::repeat_n(row, rows), slot_size))?;
            return Ok(rows);
        }
        let views = batch
            .try_iter()?
            .map(|item| ByteView::readable(&item?))
            .collect::<PyResult<Vec<_>>>()?;
        let msgs: Vec<&[u8]> = views.iter().map(|v| v.bytes()).collect();
        send_batch(slf, until, |core, p| {
            core.publish_all(msgs.iter().copied(), p)
        })
        .map_err(|e| which_too_large(py, e, msgs.iter().map(|m| m.len()), slot_size))?;
        Ok(views.len())
    }

    /// Declares the next `count` sequences lost (single-producer rings
    /// only): the ring's sequence moves past them without messages and
    /// every subscriber counts them in `lost`, as if lapped over them. For
    /// a bridge republishing another ring's messages with their original
    /// sequences. Returns the first sequence declared (`count` 0: the
    /// current sequence, nothing done). On a bounded ring, waits for room
    /// like `publish_batch`, up to `timeout` seconds (None: forever).
    #[pyo3(signature = (count, timeout=None))]
    fn publish_lost(slf: &Bound<'_, Self>, count: u64, timeout: Option<f64>) -> PyResult<u64> {
        let until = deadline(slf.py(), timeout)?;
        send_batch(slf, until, move |core, p| core.publish_lost(count, p))
    }

    /// Messages this publisher has published (on a single-producer ring:
    /// the ring's sequence, which continues across take-overs).
    #[getter]
    fn published(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.end.core_ref(py)?.published())
    }

    /// Subscribers evicted from this bounded ring so far.
    #[getter]
    fn evictions(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.end.core_ref(py)?.evictions())
    }

    /// Subscribers attached now.
    #[getter]
    fn subscriber_count(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.end.core_ref(py)?.subscriber_count())
    }

    /// Producers attached now (1 on a single-producer ring).
    #[getter]
    fn producer_count(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.end.core_ref(py)?.producer_count())
    }

    /// Test hook: stop this process (SIGSTOP) right after claiming sequence
    /// `seq`, with its slot marked as being written; multi-producer rings.
    #[cfg(feature = "test-hooks")]
    fn _stop_after_claim(&mut self, py: Python<'_>, seq: u64) -> PyResult<()> {
        self.end.core(py)?.stop_after_claim(seq).map_err(py_err(py))
    }

    /// Sequence number the next message gets (= messages published so far).
    #[getter]
    fn sequence(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.end.core_ref(py)?.sequence())
    }

    /// How many publishers have opened this ring, this one included.
    #[getter]
    fn generation(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.end.core_ref(py)?.generation())
    }

    /// Removes the ring file (also after `close()`); attached subscribers keep
    /// reading what is there. A ring that has since been replaced by another
    /// of the same name is left alone.
    fn unlink(&self, py: Python<'_>) -> PyResult<()> {
        self.identity.unlink().map_err(py_err(py))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let End {
            core,
            name,
            records,
            ..
        } = &self.end;
        match core {
            Some(p) => format!(
                "<ringcast.Publisher {name:?} capacity={} slot_size={} sequence={}{}>",
                p.layout().capacity,
                p.layout().slot_size,
                p.sequence(),
                records
                    .as_ref()
                    .map(|r| format!(" dtype={}", r.dtype(py)))
                    .unwrap_or_default()
            ),
            None => format!("<ringcast.Publisher {name:?} closed>"),
        }
    }
}

/// A batch the core refused whole (it checks every message before the
/// first goes out) for a message too large for the slots: the error says
/// which message of the batch it was. `lens`: the messages' lengths.
fn which_too_large(
    py: Python<'_>,
    err: PyErr,
    mut lens: impl Iterator<Item = usize>,
    slot_size: usize,
) -> PyErr {
    let too_large = class(py, "MessageTooLarge").is_ok_and(|c| err.is_instance(py, &c));
    match lens.position(|len| len > slot_size).filter(|_| too_large) {
        Some(i) => raise(
            py,
            "MessageTooLarge",
            format!(
                "message {i} of the batch: {}; nothing was published",
                err.value(py)
            ),
        ),
        None => err,
    }
}
