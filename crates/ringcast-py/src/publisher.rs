//! `ringcast._native.Publisher`: converts Python messages to bytes and hands
//! them to the core publisher. No ring logic lives here.

use crate::buffer::ByteView;
use crate::errors::{py_err, raise};
use crate::records::{array_bytes, asarray, is_plain_bytes, same_dtype};
use numpy::prelude::*;
use numpy::{PyArrayDescr, PyUntypedArray};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use ringcast_core::{CreateOptions, Publisher as CorePublisher};
use std::path::PathBuf;

/// Native half of `ringcast.Publisher`; construct it with `Publisher.create`.
#[pyclass(subclass, module = "ringcast._native", name = "Publisher")]
pub struct PyPublisher {
    inner: Option<CorePublisher>,
    dtype: Option<Py<PyArrayDescr>>,
    name: String,
}

impl PyPublisher {
    fn core(&mut self, py: Python<'_>) -> PyResult<&mut CorePublisher> {
        match self.inner.as_mut() {
            Some(p) => Ok(p),
            None => Err(raise(
                py,
                "RingClosed",
                format!(
                    "publisher of ring {:?} is closed; create a new one",
                    self.name
                ),
            )),
        }
    }

    fn core_ref(&self, py: Python<'_>) -> PyResult<&CorePublisher> {
        match self.inner.as_ref() {
            Some(p) => Ok(p),
            None => Err(raise(
                py,
                "RingClosed",
                format!(
                    "publisher of ring {:?} is closed; create a new one",
                    self.name
                ),
            )),
        }
    }
}

/// Calls `f` with the bytes of the message `msg` for a ring of `dtype`
/// (`None`: raw bytes ring). Fast paths first: bytes, then numpy arrays.
pub fn with_message<R>(
    msg: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyArrayDescr>>,
    f: impl FnOnce(&[u8]) -> PyResult<R>,
) -> PyResult<R> {
    let py = msg.py();
    if let Ok(b) = msg.downcast::<PyBytes>() {
        return f(b.as_bytes());
    }
    if let Ok(arr) = msg.downcast::<PyUntypedArray>() {
        if let Some(dt) = dtype {
            check_array_dtype(arr, dt)?;
            if !is_plain_bytes(&arr.dtype()) && arr.shape().iter().product::<usize>() != 1 {
                return Err(raise(
                    py,
                    "InvalidArgument",
                    format!(
                        "publish() takes one record but the array holds {}; use publish_batch() for many",
                        arr.shape().iter().product::<usize>()
                    ),
                ));
            }
        }
        return f(array_bytes(arr)?);
    }
    if let Some(dt) = dtype {
        // Convenience: a tuple of field values, or a numpy scalar (record).
        let as_record = if msg.is_instance_of::<PyTuple>() {
            Some(asarray(py)?.call((msg, dt), None)?)
        } else if msg.hasattr("dtype")? {
            Some(asarray(py)?.call1((msg,))?)
        } else {
            None
        };
        if let Some(rec) = as_record {
            return with_message(&rec, dtype, f);
        }
    }
    let view = ByteView::readable(msg)?;
    f(view.bytes())
}

/// Refuses arrays whose records are not the ring's (plain bytes are allowed).
fn check_array_dtype(
    arr: &Bound<'_, PyUntypedArray>,
    ring: &Bound<'_, PyArrayDescr>,
) -> PyResult<()> {
    let have = arr.dtype();
    if same_dtype(&have, ring) || is_plain_bytes(&have) {
        return Ok(());
    }
    Err(raise(
        arr.py(),
        "SchemaMismatch",
        format!("array of dtype {have} cannot be published into a ring of dtype {ring}; convert it with arr.astype(ring_dtype)"),
    ))
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
            inner: Some(inner),
            dtype: None,
            name,
        })
    }

    /// Sets the numpy dtype of a typed ring (done by `Publisher.create`).
    fn _set_dtype(&mut self, dtype: Bound<'_, PyArrayDescr>) {
        self.dtype = Some(dtype.unbind());
    }

    /// Publishes one message: bytes-like of the message size, a numpy record
    /// or 0-d array of the ring's dtype, or a tuple of field values.
    fn publish(&mut self, py: Python<'_>, msg: &Bound<'_, PyAny>) -> PyResult<()> {
        let dtype = self.dtype.as_ref().map(|d| d.bind(py).clone());
        let core = self.core(py)?;
        with_message(msg, dtype.as_ref(), |bytes| {
            core.publish(bytes).map(|_| ()).map_err(py_err(py))
        })
    }

    /// Publishes many messages at once; returns how many were published.
    /// Typed rings take an array of the ring's dtype (or anything
    /// `numpy.asarray` turns into one); raw rings take a 2-D array whose rows
    /// are messages, or an iterable of bytes-like messages. Every message is
    /// checked before the first is published.
    fn publish_batch(&mut self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<usize> {
        let dtype = self.dtype.as_ref().map(|d| d.bind(py).clone());
        if let Some(dt) = &dtype {
            let arr = match batch.downcast::<PyUntypedArray>() {
                Ok(a) => a.clone(),
                Err(_) => asarray(py)?
                    .call((batch, dt), None)?
                    .downcast_into::<PyUntypedArray>()?,
            };
            check_array_dtype(&arr, dt)?;
            let bytes = array_bytes(&arr)?;
            let core = self.core(py)?;
            core.publish_records(bytes).map_err(py_err(py))?;
            return Ok(bytes.len() / core.layout().slot_size as usize);
        }
        let slot_size = self.core_ref(py)?.layout().slot_size as usize;
        if let Ok(arr) = batch.downcast::<PyUntypedArray>() {
            let rows = arr.shape().first().copied().unwrap_or(1);
            let bytes = array_bytes(arr)?;
            let row = bytes.len().checked_div(rows).unwrap_or(0);
            if row > slot_size {
                return Err(ringcast_core::Error::MessageTooLarge {
                    len: row,
                    slot_size,
                })
                .map_err(py_err(py));
            }
            let core = self.core(py)?;
            for msg in bytes.chunks_exact(row.max(1)).take(rows) {
                core.publish(msg).map_err(py_err(py))?;
            }
            return Ok(rows);
        }
        let items: Vec<Bound<'_, PyAny>> = batch.try_iter()?.collect::<PyResult<_>>()?;
        for (i, item) in items.iter().enumerate() {
            with_message(item, None, |b| {
                if b.len() > slot_size {
                    let e = ringcast_core::Error::MessageTooLarge {
                        len: b.len(),
                        slot_size,
                    };
                    return Err(raise(
                        py,
                        "MessageTooLarge",
                        format!("message {i} of the batch: {e}; nothing was published"),
                    ));
                }
                Ok(())
            })?;
        }
        let core = self.core(py)?;
        for item in &items {
            with_message(item, None, |b| {
                core.publish(b).map(|_| ()).map_err(py_err(py))
            })?;
        }
        Ok(items.len())
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
    fn dtype(&self, py: Python<'_>) -> Option<Py<PyArrayDescr>> {
        self.dtype.as_ref().map(|d| d.clone_ref(py))
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

    /// Removes the ring file; attached subscribers keep reading what is there.
    fn unlink(&self, py: Python<'_>) -> PyResult<()> {
        self.core_ref(py)?.unlink().map_err(py_err(py))
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
                self.dtype
                    .as_ref()
                    .map(|d| format!(" dtype={}", d.bind(py)))
                    .unwrap_or_default()
            ),
            None => format!("<ringcast.Publisher {:?} closed>", self.name),
        }
    }
}
