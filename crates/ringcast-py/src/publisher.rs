//! `ringcast._native.Publisher`: converts Python messages to bytes and hands
//! them to the core publisher. No ring logic lives here.

use crate::buffer::ByteView;
use crate::errors::{py_err, raise};
use crate::records::{array_bytes, asarray, is_plain_bytes, RecordType};
use numpy::npyffi::{NpyTypes, PY_ARRAY_API};
use numpy::prelude::*;
use numpy::{PyArrayDescr, PyUntypedArray};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use ringcast_core::{CreateOptions, Publisher as CorePublisher, RingIdentity};
use std::path::PathBuf;

/// Native half of `ringcast.Publisher`; construct it with `Publisher.create`.
#[pyclass(subclass, module = "ringcast._native", name = "Publisher")]
pub struct PyPublisher {
    inner: Option<CorePublisher>,
    records: Option<RecordType>,
    name: String,
    identity: RingIdentity,
}

/// The error for using a publisher after `close()`.
fn closed(py: Python<'_>, name: &str) -> PyErr {
    raise(
        py,
        "RingClosed",
        format!("publisher of ring {name:?} is closed; create a new one"),
    )
}

impl PyPublisher {
    fn core(&mut self, py: Python<'_>) -> PyResult<&mut CorePublisher> {
        let Self { inner, name, .. } = self;
        inner.as_mut().ok_or_else(|| closed(py, name))
    }

    fn core_ref(&self, py: Python<'_>) -> PyResult<&CorePublisher> {
        self.inner.as_ref().ok_or_else(|| closed(py, &self.name))
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
    #[new]
    #[pyo3(signature = (name, *, capacity, slot_size, fixed_size=false, schema=None, dir=None, mode=0o600, exist_ok=false, max_subscribers=None))]
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
    ) -> PyResult<Self> {
        let opts = CreateOptions {
            capacity,
            slot_size,
            fixed_size,
            schema: schema.unwrap_or_default(),
            max_subscribers,
            dir,
            mode,
            exist_ok,
        };
        let inner = py
            .allow_threads(|| CorePublisher::create(&name, &opts))
            .map_err(py_err(py))?;
        Ok(Self {
            identity: inner.identity().clone(),
            inner: Some(inner),
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
    /// or 0-d array of the ring's dtype, or a tuple of field values.
    fn publish(&mut self, py: Python<'_>, msg: &Bound<'_, PyAny>) -> PyResult<()> {
        let Self {
            inner,
            records,
            name,
            ..
        } = self;
        let core = inner.as_mut().ok_or_else(|| closed(py, name))?;
        with_message(msg, records.as_mut(), |bytes| {
            core.publish(bytes).map(|_| ()).map_err(py_err(py))
        })
    }

    /// Publishes many messages at once; returns how many were published.
    /// Typed rings take an array of the ring's dtype (or anything
    /// `numpy.asarray` turns into one); raw rings take a 2-D array whose rows
    /// are messages, or an iterable of bytes-like messages. Every message is
    /// checked before the first is published.
    fn publish_batch(&mut self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<usize> {
        let Self {
            inner,
            records,
            name,
            ..
        } = self;
        if let Some(rt) = records {
            let arr = match batch.downcast::<PyUntypedArray>() {
                Ok(a) => a.clone(),
                Err(_) => asarray(py)?
                    .call((batch, rt.dtype(py)), None)?
                    .downcast_into::<PyUntypedArray>()?,
            };
            let d = arr.dtype();
            if !is_plain_bytes(&d) {
                rt.check(&d, "the array", CONVERT_HINT)?;
            }
            let bytes = array_bytes(&arr)?;
            let core = inner.as_mut().ok_or_else(|| closed(py, name))?;
            core.publish_records(bytes).map_err(py_err(py))?;
            return Ok(bytes.len() / core.layout().slot_size as usize);
        }
        let slot_size = self.core_ref(py)?.layout().slot_size as usize;
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
            self.core(py)?.publish_all(msgs).map_err(py_err(py))?;
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
        self.core(py)?
            .publish_all(views.iter().map(|v| v.bytes()))
            .map_err(py_err(py))?;
        Ok(views.len())
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
    }

    /// Closes the ring: subscribers that have read everything see the end of
    /// the stream. The ring file stays until `unlink()`. Idempotent.
    fn close(&mut self) {
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
