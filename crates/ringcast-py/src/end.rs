//! What publishers and subscribers share: [`End`], the state each pyclass
//! keeps its core end in, and `ringcast._native.RingEnd`, the base class of
//! both, whose getters, `close()` and context manager are written once.
//!
//! The hot paths (publish, receive) stay in the subclasses and use their
//! core end as its own type; the base class reaches an end of either kind
//! through [`Shared`].

use crate::errors::{py_err, raise};
use crate::memory;
use crate::publisher::PyPublisher;
use crate::records::RecordType;
use crate::subscriber::PySubscriber;
use numpy::PyArrayDescr;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use ringcast_core::{
    Layout, MemoryReport, Publisher as CorePublisher, Subscriber as CoreSubscriber,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A core end of either kind, borrowed.
#[derive(Clone, Copy)]
pub(crate) enum Core<'a> {
    Publisher(&'a CorePublisher),
    Subscriber(&'a CoreSubscriber),
}

impl<'a> Core<'a> {
    fn layout(self) -> &'a Layout {
        match self {
            Core::Publisher(p) => p.layout(),
            Core::Subscriber(s) => s.layout(),
        }
    }

    fn path(self) -> &'a Path {
        match self {
            Core::Publisher(p) => p.path(),
            Core::Subscriber(s) => s.path(),
        }
    }

    fn memory(self) -> MemoryReport {
        match self {
            Core::Publisher(p) => p.memory(),
            Core::Subscriber(s) => s.memory(),
        }
    }

    /// Refused once the ring file shrank under the mapping, or in a fork()
    /// child of the process that opened the end.
    fn check_usable(self) -> Result<(), ringcast_core::RingFault> {
        match self {
            Core::Publisher(p) => p.check_usable(),
            Core::Subscriber(s) => s.check_usable(),
        }
    }
}

/// What differs between the kinds of end in what they share.
pub(crate) struct Role {
    /// The end, as messages call it.
    name: &'static str,
    /// What to do once it is closed.
    reopen: &'static str,
    /// The exception for a dtype that does not fit the ring: the caller's
    /// fault for a publisher (it gave the dtype), the ring header's for a
    /// subscriber (it read the dtype there).
    misfit: &'static str,
}

impl Role {
    const PUBLISHER: Role = Role {
        name: "publisher",
        reopen: "create a new one",
        misfit: "InvalidArgument",
    };
    const SUBSCRIBER: Role = Role {
        name: "subscriber",
        reopen: "attach a new one",
        misfit: "RingCorrupt",
    };
}

/// A core end type, as [`End`] holds it.
pub(crate) trait CoreEnd: Send {
    const ROLE: Role;

    fn borrowed(&self) -> Core<'_>;
}

impl CoreEnd for CorePublisher {
    const ROLE: Role = Role::PUBLISHER;

    fn borrowed(&self) -> Core<'_> {
        Core::Publisher(self)
    }
}

impl CoreEnd for CoreSubscriber {
    const ROLE: Role = Role::SUBSCRIBER;

    fn borrowed(&self) -> Core<'_> {
        Core::Subscriber(self)
    }
}

/// One end of a ring, as its pyclass holds it.
pub(crate) struct End<C> {
    /// The core end: `None` once closed, and while a publish waiting for
    /// room holds it with the GIL released (then the end is busy).
    pub core: Option<C>,
    /// Raised by `close()`, never lowered: the end is closed for good, and
    /// waits in other threads (which share the flag) end within a slice.
    pub closed: Arc<AtomicBool>,
    /// The ring's name.
    pub name: String,
    /// The record type of a typed ring, once `_set_dtype` gave it.
    pub records: Option<RecordType>,
}

impl<C: CoreEnd> End<C> {
    pub fn new(core: C, name: String) -> Self {
        Self {
            core: Some(core),
            closed: Arc::new(AtomicBool::new(false)),
            name,
            records: None,
        }
    }

    /// The core end and the record type, for the hot paths (which find out
    /// about a revoked mapping themselves): refused once closed or busy.
    pub fn parts(&mut self, py: Python<'_>) -> PyResult<(&mut C, Option<&mut RecordType>)> {
        let Self {
            core,
            closed,
            name,
            records,
        } = self;
        match core {
            Some(core) => Ok((core, records.as_mut())),
            None => Err(unusable::<C>(py, name, closed)),
        }
    }

    /// The core end for the hot paths; see [`End::parts`].
    pub fn core(&mut self, py: Python<'_>) -> PyResult<&mut C> {
        self.parts(py).map(|(core, _)| core)
    }

    /// The core end for everything but the hot paths: refused once closed,
    /// busy, or revoked (its ring file shrank, or this is a fork() child of
    /// the process that opened it).
    pub fn core_ref(&self, py: Python<'_>) -> PyResult<&C> {
        let core = self
            .core
            .as_ref()
            .ok_or_else(|| unusable::<C>(py, &self.name, &self.closed))?;
        core.borrowed().check_usable().map_err(py_err(py))?;
        Ok(core)
    }

    /// Takes the core end and the record type out for an owner that wraps
    /// them (a subscriber group): the end is closed from then on. `None` if
    /// it already was (or is lent out).
    pub fn detach(&mut self) -> Option<(C, Option<RecordType>)> {
        let core = self.core.take()?;
        self.closed.store(true, Ordering::Release);
        Some((core, self.records.take()))
    }

    /// The error for a closed end.
    pub fn closed_error(&self, py: Python<'_>) -> PyErr {
        closed_error::<C>(py, &self.name)
    }
}

fn closed_error<C: CoreEnd>(py: Python<'_>, name: &str) -> PyErr {
    let Role {
        name: role, reopen, ..
    } = C::ROLE;
    raise(
        py,
        "RingClosed",
        format!("{role} of ring {name:?} is closed; {reopen}"),
    )
}

/// Why an end has no core end: closed, or (publishers only lend theirs
/// out) busy in a publish that waits for room in another thread.
fn unusable<C: CoreEnd>(py: Python<'_>, name: &str, closed: &AtomicBool) -> PyErr {
    if closed.load(Ordering::Acquire) {
        return closed_error::<C>(py, name);
    }
    raise(
        py,
        "RingError",
        format!(
            "publisher of ring {name:?} is busy: a publish in another thread is waiting for \
             room; publish from one thread per publisher (or close() it to end that wait)"
        ),
    )
}

/// An [`End`] of either kind, as the base class's methods use it.
pub(crate) trait Shared {
    fn name(&self) -> &str;
    fn records(&self) -> Option<&RecordType>;
    /// The core end; see [`End::core_ref`].
    fn view(&self, py: Python<'_>) -> PyResult<Core<'_>>;
    fn closed(&self) -> bool;
    /// Closes the end (idempotent): a wait in another thread ends within a
    /// slice; a publisher lent out to one is closed as that wait returns.
    fn close(&mut self);
    /// Gives a typed ring its record type, checked against the ring.
    fn set_dtype(&mut self, dtype: Bound<'_, PyArrayDescr>) -> PyResult<()>;
}

impl<C: CoreEnd> Shared for End<C> {
    fn name(&self) -> &str {
        &self.name
    }

    fn records(&self) -> Option<&RecordType> {
        self.records.as_ref()
    }

    fn view(&self, py: Python<'_>) -> PyResult<Core<'_>> {
        self.core_ref(py).map(C::borrowed)
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn close(&mut self) {
        self.closed.store(true, Ordering::Release);
        self.core = None;
    }

    fn set_dtype(&mut self, dtype: Bound<'_, PyArrayDescr>) -> PyResult<()> {
        let layout = self.view(dtype.py())?.layout();
        let (size, fixed) = (layout.slot_size as usize, layout.fixed_size());
        self.records = Some(RecordType::checked(dtype, size, fixed, C::ROLE.misfit)?);
        Ok(())
    }
}

/// Native base class of `ringcast.Publisher` and `ringcast.Subscriber`:
/// what every end of a ring has.
#[pyclass(subclass, module = "ringcast._native", name = "RingEnd")]
pub struct PyRingEnd;

impl PyRingEnd {
    /// Runs `f` on the end `slf` is, borrowed.
    fn with<R>(slf: &Bound<'_, Self>, f: impl FnOnce(&dyn Shared) -> PyResult<R>) -> PyResult<R> {
        if let Ok(p) = slf.downcast::<PyPublisher>() {
            return f(&p.try_borrow()?.end);
        }
        f(&slf.downcast::<PySubscriber>()?.try_borrow()?.end)
    }

    /// Runs `f` on the end `slf` is, borrowed mutably.
    fn with_mut<R>(
        slf: &Bound<'_, Self>,
        f: impl FnOnce(&mut dyn Shared) -> PyResult<R>,
    ) -> PyResult<R> {
        if let Ok(p) = slf.downcast::<PyPublisher>() {
            return f(&mut p.try_borrow_mut()?.end);
        }
        f(&mut slf.downcast::<PySubscriber>()?.try_borrow_mut()?.end)
    }

    /// Runs `f` on the layout of the ring of the end `slf` is.
    fn layout<R>(slf: &Bound<'_, Self>, f: impl FnOnce(&Layout) -> R) -> PyResult<R> {
        Self::with(slf, |end| Ok(f(end.view(slf.py())?.layout())))
    }
}

#[pymethods]
impl PyRingEnd {
    /// The ring's name.
    #[getter]
    fn name(slf: &Bound<'_, Self>) -> PyResult<String> {
        Self::with(slf, |end| Ok(end.name().to_owned()))
    }

    /// Path of the ring file.
    #[getter]
    fn path(slf: &Bound<'_, Self>) -> PyResult<PathBuf> {
        Self::with(slf, |end| Ok(end.view(slf.py())?.path().to_owned()))
    }

    /// Number of slots.
    #[getter]
    fn capacity(slf: &Bound<'_, Self>) -> PyResult<u64> {
        Self::layout(slf, |l| l.capacity)
    }

    /// Largest message in bytes (the record size of typed rings).
    #[getter]
    fn slot_size(slf: &Bound<'_, Self>) -> PyResult<u32> {
        Self::layout(slf, |l| l.slot_size)
    }

    /// Whether every message is exactly `slot_size` bytes (typed rings).
    #[getter]
    fn fixed_size(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Self::layout(slf, Layout::fixed_size)
    }

    /// Schema description stored in the ring (empty for raw rings); what
    /// `Publisher.attach` and `Subscriber.attach` read the dtype from.
    #[getter]
    fn schema<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyBytes>> {
        Self::layout(slf, |l| PyBytes::new(slf.py(), &l.schema))
    }

    /// numpy dtype of the records, or None for a raw bytes ring.
    #[getter]
    fn dtype<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyArrayDescr>>> {
        Self::with(slf, |end| {
            Ok(end.records().map(|r| r.dtype(slf.py()).clone()))
        })
    }

    /// Whether every message carries its publish time (a ring created with
    /// `timestamps=True`).
    #[getter]
    fn timestamps(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Self::layout(slf, Layout::timestamps)
    }

    /// Whether the ring is bounded (publishers wait for the slowest
    /// subscriber instead of overwriting what it has not read).
    #[getter]
    fn bounded(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Self::layout(slf, Layout::bounded)
    }

    /// Bounded rings: most unread messages a publisher may be ahead of the
    /// slowest subscriber; None on lossy rings.
    #[getter]
    fn watermark(slf: &Bound<'_, Self>) -> PyResult<Option<u64>> {
        Self::layout(slf, |l| l.bounded().then_some(l.watermark))
    }

    /// Who may publish: "one" or "many".
    #[getter]
    fn producers(slf: &Bound<'_, Self>) -> PyResult<&'static str> {
        Self::layout(slf, |l| if l.multi_producer() { "many" } else { "one" })
    }

    /// Where the ring's memory is and what this end did to it, as the dict
    /// `ringcast.MemoryReport` is built from.
    fn _memory<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        Self::with(slf, |end| {
            memory::report_dict(slf.py(), &end.view(slf.py())?.memory())
        })
    }

    /// Sets the numpy dtype of a typed ring (done by `Publisher.create`,
    /// `Publisher.attach` and `Subscriber.attach`).
    fn _set_dtype(slf: &Bound<'_, Self>, dtype: Bound<'_, PyArrayDescr>) -> PyResult<()> {
        Self::with_mut(slf, |end| end.set_dtype(dtype))
    }

    /// Whether `close()` has been called.
    #[getter]
    fn closed(slf: &Bound<'_, Self>) -> PyResult<bool> {
        Self::with(slf, |end| Ok(end.closed()))
    }

    /// Closes this end of the ring. Idempotent. A publisher's close ends the
    /// stream: subscribers that have read everything see its end (the ring
    /// file stays until `unlink()`). A subscriber's close detaches it and
    /// frees its subscriber record. A publish waiting for room or a receive
    /// blocked in another thread ends shortly after and raises `RingClosed`.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::with_mut(slf, |end| {
            end.close();
            Ok(())
        })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    // Through the class's own close(): a Python subclass may end more there
    // (Subscriber ends an asyncio wait).
    #[pyo3(signature = (*_args))]
    fn __exit__(slf: &Bound<'_, Self>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        slf.call_method0(intern!(slf.py(), "close"))?;
        Ok(false)
    }
}
