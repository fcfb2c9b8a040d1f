//! Borrowing the bytes of Python objects for one native call.
//!
//! Anything with the buffer protocol works (bytes, bytearray, memoryview,
//! numpy arrays and scalars, mmap, ...). The view is released on drop, and it
//! is only used while the GIL is held, so the exporter cannot resize or free
//! the memory underneath us.

use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use std::mem::MaybeUninit;

/// A C-contiguous buffer view of a Python object.
pub struct ByteView {
    view: Box<ffi::Py_buffer>,
}

impl ByteView {
    /// A read-only view of `obj`'s bytes.
    pub fn readable(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::get(
            obj,
            ffi::PyBUF_SIMPLE,
            "a bytes-like object (bytes, bytearray, memoryview, numpy array)",
        )
    }

    /// A writable view of `obj`'s bytes.
    pub fn writable(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::get(
            obj,
            ffi::PyBUF_WRITABLE,
            "a writable, contiguous buffer (bytearray, numpy array, memoryview)",
        )
    }

    fn get(obj: &Bound<'_, PyAny>, flags: std::os::raw::c_int, what: &str) -> PyResult<Self> {
        let mut view = Box::new(MaybeUninit::<ffi::Py_buffer>::uninit());
        // SAFETY: `view` is valid storage for a Py_buffer; on success CPython
        // fills it and we own one export, released in Drop.
        let rc = unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), flags) };
        if rc != 0 {
            let cause = PyErr::take(obj.py());
            let type_name = obj
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into());
            let err = if obj.hasattr("__buffer__").unwrap_or(false)
                || cause
                    .as_ref()
                    .is_some_and(|c| c.is_instance_of::<PyBufferError>(obj.py()))
            {
                PyBufferError::new_err(format!("expected {what}; this {type_name} cannot export one (not contiguous or read-only?): pass a contiguous copy"))
            } else {
                PyTypeError::new_err(format!("expected {what}, got {type_name}"))
            };
            if let Some(cause) = cause {
                err.set_cause(obj.py(), Some(cause));
            }
            return Err(err);
        }
        // SAFETY: initialised by the successful call above.
        let view = unsafe { Box::from_raw(Box::into_raw(view).cast::<ffi::Py_buffer>()) };
        Ok(Self { view })
    }

    /// The viewed bytes.
    pub fn bytes(&self) -> &[u8] {
        if self.view.len == 0 {
            return &[];
        }
        // SAFETY: PyBUF_SIMPLE/WRITABLE views are contiguous `len` bytes at
        // `buf`, valid until released; we hold the GIL while the slice lives.
        unsafe { std::slice::from_raw_parts(self.view.buf.cast::<u8>(), self.view.len as usize) }
    }

    /// The viewed bytes, mutably (views made by [`ByteView::writable`] only).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        assert!(self.view.readonly == 0, "bytes_mut on a read-only view");
        if self.view.len == 0 {
            return &mut [];
        }
        // SAFETY: as in `bytes`, and the exporter granted a writable view.
        unsafe {
            std::slice::from_raw_parts_mut(self.view.buf.cast::<u8>(), self.view.len as usize)
        }
    }
}

impl Drop for ByteView {
    fn drop(&mut self) {
        // SAFETY: releases the one export obtained in `get`; callers hold the
        // GIL whenever a ByteView exists.
        unsafe { ffi::PyBuffer_Release(&mut *self.view) }
    }
}
