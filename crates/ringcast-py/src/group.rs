//! `ringcast._native.SubscriberGroup` and `GroupConsumer`: the core's
//! subscriber group (`ringcast_core::subscribe::group`) shared by the
//! threads of one process. No ring logic lives here: this file locks, waits
//! and converts.
//!
//! Locking. The core group sits behind one mutex, always taken with the GIL
//! held, and held only for a core call and a memcpy. Python objects are made
//! before it is taken or after it is released: making one may run a garbage
//! collection, so any Python code, which may hand the GIL to a thread that
//! then waits for the mutex while holding the GIL. Nobody blocks holding
//! the mutex: a consumer with nothing buffered waits with the GIL released
//! and the mutex free, either on the ring (the group has room: whoever is
//! woken first reads for everyone, and the others find the messages
//! buffered) or on a condition variable until a slower consumer makes room
//! (the buffer is full). A consumer with messages buffered never waits
//! behind either.

use crate::args::{MaxN, Seconds};
use crate::errors::{class, py_err, raise};
use crate::records::{array_bytes_mut, new_records, record_scalar, truncate, RecordType};
use crate::subscriber::PySubscriber;
use crate::wait::{patience, without_gil, Ends, Patience, SIGNAL_CHECK_INTERVAL};
use numpy::{PyArrayDescr, PyUntypedArray};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyList, PyTuple};
use ringcast_core::subscribe::group::SubscriberGroup as CoreGroup;
use ringcast_core::{RecvError, WaitHandle, WaitStrategy, Waiter};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// What the group object and its consumers share.
struct Shared {
    group: Mutex<CoreGroup>,
    /// Consumers waiting for a slower one to make room wait here.
    room: Condvar,
    /// How many do (changed and read with `group` locked).
    room_waiters: AtomicUsize,
    /// Set by `close()`; waits on the ring look at it between slices.
    closed: AtomicBool,
    /// Typed rings: the numpy record type (from the subscriber).
    records: Option<RecordType>,
    strategy: WaitStrategy,
    name: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, CoreGroup> {
        // Core calls change the group's counters only once they succeed, so
        // a panic in one (reported to Python) leaves the group usable.
        self.group.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits (GIL released) until the buffer has room, the group is
    /// closed, `deadline` passes or one signal-check slice is over.
    fn wait_for_room(&self, deadline: Option<Instant>) {
        let group = self.lock();
        if group.space() > 0 || group.closed() {
            return;
        }
        let slice_end = Instant::now() + SIGNAL_CHECK_INTERVAL;
        let until = deadline.map_or(slice_end, |d| d.min(slice_end));
        // Counted with the lock held, so that a consumer making room (which
        // looks at the count with the lock held) cannot miss this waiter.
        self.room_waiters.fetch_add(1, Ordering::Relaxed);
        let timeout = until.saturating_duration_since(Instant::now());
        let (group, _) = self
            .room
            .wait_timeout(group, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        self.room_waiters.fetch_sub(1, Ordering::Relaxed);
        drop(group);
    }
}

/// What a receive asks for.
#[derive(Clone, Copy)]
enum Want {
    /// One message, as the ring's message type.
    One,
    /// Up to this many messages: an array (typed rings) or a list of bytes.
    Batch(usize),
    /// Nothing taken: `True` once the consumer has a message buffered.
    Ready,
}

impl Want {
    fn count(self) -> usize {
        match self {
            Want::One | Want::Ready => 1,
            Want::Batch(n) => n,
        }
    }
}

/// Messages copied out of the group's buffer with the lock held, to become
/// Python objects once it is released.
enum Copied {
    /// One message.
    One(Vec<u8>),
    /// This many records, copied straight into the caller's array.
    Rows(usize),
    /// Raw messages, back to back, each ending at its offset in `ends`.
    Raw { bytes: Vec<u8>, ends: Vec<usize> },
    /// The consumer has a message buffered (nothing taken).
    Ready,
}

/// Why a consumer with nothing buffered waits.
enum Blocked {
    /// For the ring to hold the group's next message.
    Ring(WaitHandle),
    /// For a slower consumer to make room in the full buffer.
    Room,
}

/// What one attempt under the lock came to.
enum Attempt {
    Got(Copied),
    Failed(RecvError),
    /// The publisher closed the ring and this consumer has read everything.
    Ended,
    /// Nothing now; wait as said, or (`None`) give up.
    Nothing(Option<Blocked>),
}

/// Native half of `ringcast.SubscriberGroup`: one subscriber, read once,
/// serving named consumers.
#[pyclass(frozen, module = "ringcast._native", name = "SubscriberGroup")]
pub struct PyGroup {
    shared: Arc<Shared>,
}

#[pymethods]
impl PyGroup {
    /// Takes over `subscriber` (which reads as closed from then on) for a
    /// group of the named `consumers` buffering up to `buffer` messages.
    #[new]
    fn new(
        py: Python<'_>,
        subscriber: &Bound<'_, PySubscriber>,
        consumers: Vec<String>,
        buffer: usize,
    ) -> PyResult<Self> {
        let Some((sub, strategy, records)) = subscriber.try_borrow_mut()?.detach() else {
            return Err(raise(
                py,
                "RingClosed",
                "the subscriber given to the group is closed; attach a new one".into(),
            ));
        };
        let name = sub.name().to_owned();
        let group = CoreGroup::new(sub, &consumers, buffer).map_err(py_err(py))?;
        Ok(Self {
            shared: Arc::new(Shared {
                group: Mutex::new(group),
                room: Condvar::new(),
                room_waiters: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                records,
                strategy,
                name,
            }),
        })
    }

    /// The ring's name.
    #[getter]
    fn name(&self) -> &str {
        &self.shared.name
    }

    /// numpy dtype of the records, or None for a raw bytes ring.
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArrayDescr>> {
        self.shared.records.as_ref().map(|r| r.dtype(py).clone())
    }

    /// Names of the consumers, in the order given.
    #[getter]
    fn consumers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let names = self.shared.lock().consumers().to_vec();
        PyTuple::new(py, names)
    }

    /// Most messages held for consumers (ahead of the slowest one).
    #[getter]
    fn buffer(&self) -> usize {
        self.shared.lock().buffer()
    }

    /// Messages read from the ring that some consumer has not read yet.
    #[getter]
    fn buffered(&self) -> u64 {
        self.shared.lock().buffered()
    }

    /// Sequence the group (and every consumer) started at.
    #[getter]
    fn start_sequence(&self) -> u64 {
        self.shared.lock().start()
    }

    /// Messages read from the ring (each once, however many consumers).
    #[getter]
    fn received(&self) -> u64 {
        self.shared.lock().received()
    }

    /// Messages no consumer will see (lapped, or a dead producer's).
    #[getter]
    fn lost(&self) -> u64 {
        self.shared.lock().lost()
    }

    /// Sequence of the next message the group reads from the ring.
    #[getter]
    fn position(&self) -> u64 {
        self.shared.lock().position()
    }

    /// Messages published that the group has not read from the ring yet.
    #[getter]
    fn lag(&self, py: Python<'_>) -> PyResult<u64> {
        let lag = self.shared.lock().lag();
        lag.map_err(py_err(py))
    }

    /// Whether `close()` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Detaches from the ring (frees the subscriber record). Idempotent.
    /// Consumers blocked in other threads raise `RingClosed` shortly after.
    fn close(&self) {
        let shared = &*self.shared;
        shared.closed.store(true, Ordering::Release);
        shared.lock().close();
        shared.room.notify_all();
    }
}

/// Native half of `ringcast.GroupConsumer`: one consumer of a group.
#[pyclass(frozen, subclass, module = "ringcast._native", name = "GroupConsumer")]
pub struct PyGroupConsumer {
    shared: Arc<Shared>,
    index: usize,
    name: String,
}

impl PyGroupConsumer {
    /// Under the lock: takes what `want` asks for if this consumer has it
    /// (typed batches straight into `rows`, the bytes of an array of
    /// records), else says whether and on what to wait.
    fn attempt(&self, want: Want, rows: Option<&mut [u8]>, patience: Patience) -> Attempt {
        let shared = &*self.shared;
        let c = self.index;
        let mut group = shared.lock();
        let have = match group.ready(c, want.count()) {
            Ok(n) => n,
            Err(e) => return Attempt::Failed(e),
        };
        if have == 0 {
            let Patience::Until(deadline) = patience else {
                return Attempt::Nothing(None);
            };
            return match group.ended_for(c) {
                Err(e) => Attempt::Failed(e),
                Ok(true) => Attempt::Ended,
                Ok(false) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    Attempt::Nothing(None)
                }
                Ok(false) if group.space() == 0 => Attempt::Nothing(Some(Blocked::Room)),
                Ok(false) => match group.wait_handle() {
                    Ok(h) => Attempt::Nothing(Some(Blocked::Ring(h))),
                    Err(e) => Attempt::Failed(e),
                },
            };
        }
        let buffered = group.peek(c, want.count());
        let (copied, taken) = match (want, rows) {
            (Want::Ready, _) => (Copied::Ready, 0),
            (Want::One, _) => (Copied::One(buffered.message(0).to_vec()), 1),
            (Want::Batch(_), Some(out)) => {
                // `out` holds `want.count()` records, so every run fits.
                let mut at = 0;
                for run in buffered.rows() {
                    out[at..at + run.len()].copy_from_slice(run);
                    at += run.len();
                }
                (Copied::Rows(buffered.len()), buffered.len())
            }
            (Want::Batch(_), None) => {
                let n = buffered.len();
                let mut bytes = Vec::new();
                let mut ends = Vec::with_capacity(n);
                for i in 0..n {
                    bytes.extend_from_slice(buffered.message(i));
                    ends.push(bytes.len());
                }
                (Copied::Raw { bytes, ends }, n)
            }
        };
        if group.take(c, taken) && shared.room_waiters.load(Ordering::Relaxed) > 0 {
            shared.room.notify_all();
        }
        Attempt::Got(copied)
    }

    /// Receives what `want` asks for, waiting as `patience` allows; `None`
    /// when nothing came. Raises `RingClosed` when the group is closed and,
    /// when waiting, once this consumer has read the whole stream.
    fn receive<'py>(
        &self,
        py: Python<'py>,
        want: Want,
        patience: Patience,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let shared = &*self.shared;
        // Typed batches are copied straight into an array made up front, of
        // as many records as asked for, but never more than the buffer holds.
        let (want, array) = match (want, &shared.records) {
            (Want::Batch(n), Some(rt)) => {
                let n = n.min(shared.lock().buffer());
                (Want::Batch(n), Some(new_records(rt.dtype(py), n)?))
            }
            _ => (want, None),
        };
        let mut waiter: Option<Waiter> = None;
        let ends = Ends::closed(&shared.closed);
        loop {
            let rows = match &array {
                // SAFETY: the array was made above and is seen by nobody
                // else; the slice ends with this attempt, during which the
                // GIL stays held.
                Some(a) => Some(unsafe { array_bytes_mut(a)? }),
                None => None,
            };
            let blocked = match self.attempt(want, rows, patience) {
                Attempt::Got(copied) => return self.to_python(py, copied, array).map(Some),
                Attempt::Failed(e) => return Err(py_err(py)(e)),
                Attempt::Ended => {
                    return Err(raise(
                        py,
                        "RingClosed",
                        format!(
                            "the publisher of ring {:?} closed it and consumer {:?} has read \
                             every message",
                            shared.name, self.name
                        ),
                    ))
                }
                Attempt::Nothing(None) => return Ok(None),
                Attempt::Nothing(Some(blocked)) => blocked,
            };
            let Patience::Until(deadline) = patience else {
                unreachable!("attempts that may not wait never block");
            };
            match blocked {
                Blocked::Room => {
                    // One slice (the condition variable's), then the signal
                    // check; the next attempt says whether there is room.
                    let (_, interrupt) = without_gil(py, ends, |_, between| {
                        shared.wait_for_room(deadline);
                        between()
                    });
                    if let Some(e) = interrupt {
                        return Err(e);
                    }
                }
                Blocked::Ring(handle) => {
                    let waiter = waiter.get_or_insert_with(|| Waiter::new(shared.strategy));
                    let (end, interrupt) = without_gil(py, ends, |slice, between| {
                        handle.wait(deadline, waiter, Some(slice), between)
                    });
                    if let Some(e) = interrupt {
                        return Err(e);
                    }
                    match end {
                        // A message, the deadline, a close or the end of the
                        // stream: the next attempt says which. A slot that
                        // looks readable but gives nothing (damage can do
                        // that) brings us back here at once: the deadline
                        // and this signal check end such a loop.
                        Ok(_) | Err(RecvError::Closed { .. }) => py.check_signals()?,
                        Err(e) => return Err(py_err(py)(e)),
                    }
                }
            }
        }
    }

    /// The Python object of what an attempt copied out (lock released).
    fn to_python<'py>(
        &self,
        py: Python<'py>,
        copied: Copied,
        array: Option<Bound<'py, PyUntypedArray>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let one = |bytes: &[u8]| match &self.shared.records {
            Some(rt) => record_scalar(rt.dtype(py), bytes),
            None => Ok(PyBytes::new(py, bytes).into_any()),
        };
        match copied {
            Copied::One(bytes) => one(&bytes),
            Copied::Rows(n) => {
                let array = array.expect("rows are copied into an array");
                Ok(truncate(array, n)?.into_any())
            }
            Copied::Raw { bytes, ends } => {
                let messages = (0..ends.len()).map(|i| {
                    let start = if i == 0 { 0 } else { ends[i - 1] };
                    PyBytes::new(py, &bytes[start..ends[i]])
                });
                Ok(PyList::new(py, messages)?.into_any())
            }
            Copied::Ready => Ok(PyBool::new(py, true).to_owned().into_any()),
        }
    }

    /// An empty batch of this ring's type.
    fn empty_batch<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.shared.records {
            Some(rt) => Ok(new_records(rt.dtype(py), 0)?.into_any()),
            None => Ok(PyList::empty(py).into_any()),
        }
    }
}

#[pymethods]
impl PyGroupConsumer {
    /// The consumer of `group` called `name`.
    #[new]
    fn new(py: Python<'_>, group: &Bound<'_, PyGroup>, name: &str) -> PyResult<Self> {
        let shared = group.get().shared.clone();
        let index = shared.lock().consumer(name);
        let Some(index) = index else {
            return Err(raise(
                py,
                "UnknownConsumer",
                format!(
                    "the group of ring {:?} has no consumer {name:?}",
                    shared.name
                ),
            ));
        };
        Ok(Self {
            shared,
            index,
            name: name.to_owned(),
        })
    }

    /// The consumer's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The next message (numpy record, or bytes for raw rings), or None if
    /// none is waiting. Never blocks.
    fn try_recv<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.receive(py, Want::One, Patience::Never)
    }

    /// The next message, waiting up to `timeout` seconds (None: forever).
    /// Raises `Timeout`, or `RingClosed` once the publisher closed the ring
    /// and this consumer has read everything.
    #[pyo3(signature = (timeout=Seconds(None)))]
    fn recv<'py>(&self, py: Python<'py>, timeout: Seconds) -> PyResult<Bound<'py, PyAny>> {
        match self.receive(py, Want::One, patience(py, timeout.0)?)? {
            Some(msg) => Ok(msg),
            None => Err(raise(
                py,
                "Timeout",
                format!(
                    "no message for consumer {:?} within {}s",
                    self.name,
                    timeout.0.unwrap_or(0.0)
                ),
            )),
        }
    }

    /// Up to `max_n` messages: waits up to `timeout` seconds (default 0: do
    /// not wait; None: forever) for the first, then takes what is there. A
    /// numpy array of the ring's dtype, or a list of bytes for raw rings;
    /// empty at the deadline. Raises `RingClosed` once the stream has ended
    /// for this consumer.
    #[pyo3(signature = (max_n, timeout=Seconds(Some(0.0))))]
    fn recv_batch<'py>(
        &self,
        py: Python<'py>,
        max_n: MaxN,
        timeout: Seconds,
    ) -> PyResult<Bound<'py, PyAny>> {
        let patience = patience(py, timeout.0)?;
        match self.receive(py, Want::Batch(max_n.0), patience)? {
            Some(batch) => Ok(batch),
            None => self.empty_batch(py),
        }
    }

    /// What a coroutine takes without waiting: the next message (`max_n`
    /// None) or up to `max_n`; None when nothing is buffered or in the ring.
    /// Raises `RingClosed` once the stream has ended for this consumer.
    #[pyo3(signature = (max_n=None))]
    fn _poll<'py>(
        &self,
        py: Python<'py>,
        max_n: Option<MaxN>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let want = max_n.map_or(Want::One, |n| Want::Batch(n.0));
        self.receive(py, want, Patience::Until(Some(Instant::now())))
    }

    /// Waits up to `timeout` seconds until this consumer has a message
    /// buffered, taking nothing (for coroutines, from an executor thread);
    /// whether it has.
    fn _wait_ready(&self, py: Python<'_>, timeout: Seconds) -> PyResult<bool> {
        let patience = patience(py, timeout.0)?;
        Ok(self.receive(py, Want::Ready, patience)?.is_some())
    }

    /// Messages this consumer has read.
    #[getter]
    fn received(&self) -> u64 {
        self.shared.lock().received_for(self.index)
    }

    /// Ring sequence of the next message this consumer reads.
    #[getter]
    fn position(&self) -> u64 {
        self.shared.lock().position_for(self.index)
    }

    /// Messages lost before `position` (lapped, or a dead producer's): the
    /// same for every consumer that got as far.
    #[getter]
    fn lost(&self) -> u64 {
        self.shared.lock().lost_for(self.index)
    }

    /// Messages published that this consumer has not read yet.
    #[getter]
    fn lag(&self, py: Python<'_>) -> PyResult<u64> {
        let lag = self.shared.lock().lag_for(self.index);
        lag.map_err(py_err(py))
    }

    /// Messages in the group's buffer that this consumer has not read yet.
    #[getter]
    fn buffered(&self) -> usize {
        self.shared.lock().buffered_for(self.index)
    }

    /// True once the publisher closed the ring and this consumer has read
    /// everything.
    #[getter]
    fn ended(&self, py: Python<'_>) -> PyResult<bool> {
        let ended = self.shared.lock().ended_for(self.index);
        ended.map_err(py_err(py))
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.receive(py, Want::One, Patience::Until(None)) {
            Err(e) if e.is_instance(py, class(py, "RingClosed")?.as_any()) => Ok(None),
            got => got,
        }
    }
}
