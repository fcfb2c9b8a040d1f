//! numpy records in and out of the ring: dtype checks, array views and
//! allocation of result arrays and record scalars.

use crate::errors::raise;
use numpy::npyffi::{self, npy_intp, NpyTypes, PY_ARRAY_API};
use numpy::prelude::*;
use numpy::{PyArrayDescr, PyUntypedArray};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyTuple;

static ASARRAY: GILOnceCell<Py<PyAny>> = GILOnceCell::new();

/// `numpy.asarray`, looked up once.
pub fn asarray(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    ASARRAY
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("numpy")?.getattr("asarray")?.unbind())
        })
        .map(|f| f.bind(py))
}

/// The record type of a typed ring.
///
/// Checking that an array's dtype is the ring's must be cheap on the publish
/// path. Identity is a pointer compare; full equivalence costs ~300 ns for a
/// structured dtype, and dtypes rebuilt from a ring header (every subscriber's,
/// so every relay) are equal without being identical. So the last equivalent
/// dtype object is remembered (and kept alive, so its address cannot be reused).
pub struct RecordType {
    dtype: Py<PyArrayDescr>,
    last_equivalent: Option<Py<PyArrayDescr>>,
}

impl RecordType {
    /// The record type of a ring whose layout is `slot_size` bytes per slot
    /// (`fixed_size`: every message exactly that). Everything the receive
    /// paths later trust is checked here: no Python object references (the
    /// bytes come from shared memory), the item size equal to the slot size,
    /// and a fixed-size ring. `problem` names the exception to raise.
    pub fn checked(
        dtype: Bound<'_, PyArrayDescr>,
        slot_size: usize,
        fixed_size: bool,
        problem: &str,
    ) -> PyResult<Self> {
        let py = dtype.py();
        let fault = if dtype.has_object() {
            Some(format!("dtype {dtype} holds Python object references"))
        } else if dtype.itemsize() != slot_size {
            Some(format!(
                "dtype {dtype} has {} bytes but the ring's slots hold {slot_size}",
                dtype.itemsize()
            ))
        } else if !fixed_size {
            Some(format!(
                "dtype {dtype} is given for a ring of variable-size messages"
            ))
        } else {
            None
        };
        match fault {
            Some(f) => Err(raise(
                py,
                problem,
                format!("{f}; such a ring cannot carry numpy records"),
            )),
            None => Ok(Self {
                dtype: dtype.unbind(),
                last_equivalent: None,
            }),
        }
    }

    /// The ring's dtype.
    pub fn dtype<'py>(&self, py: Python<'py>) -> &Bound<'py, PyArrayDescr> {
        self.dtype.bind(py)
    }

    /// Whether records of dtype `d` are this ring's records.
    #[inline]
    pub fn accepts(&mut self, d: &Bound<'_, PyArrayDescr>) -> bool {
        if d.is(&self.dtype) || self.last_equivalent.as_ref().is_some_and(|l| d.is(l)) {
            return true;
        }
        if d.is_equiv_to(self.dtype.bind(d.py())) {
            self.last_equivalent = Some(d.clone().unbind());
            return true;
        }
        false
    }

    /// Like `accepts`, raising `SchemaMismatch` with `hint` when not.
    pub fn check(&mut self, d: &Bound<'_, PyArrayDescr>, what: &str, hint: &str) -> PyResult<()> {
        if self.accepts(d) {
            return Ok(());
        }
        let py = d.py();
        Err(raise(
            py,
            "SchemaMismatch",
            format!(
                "{what} has dtype {d} but the ring holds {}; {hint}",
                self.dtype.bind(py)
            ),
        ))
    }
}

/// A dtype that carries plain bytes (uint8, int8, unstructured void), which
/// any ring accepts as raw message bytes.
pub fn is_plain_bytes(d: &Bound<'_, PyArrayDescr>) -> bool {
    !d.has_fields() && matches!(d.char(), b'B' | b'b' | b'V')
}

/// Bytes of a C-contiguous array, checked.
pub fn array_bytes<'a>(arr: &'a Bound<'_, PyUntypedArray>) -> PyResult<&'a [u8]> {
    array_slice(arr, false).map(|(ptr, len)| {
        // SAFETY: contiguous `len` bytes owned by the array, which `arr`
        // keeps alive for 'a; the GIL is held, so nothing frees them.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    })
}

/// Bytes of a writable, C-contiguous array, checked.
///
/// # Safety
/// While the returned slice lives, no other reference to the array's memory
/// may exist (no second `array_bytes_mut` of the same or an overlapping
/// array); the GIL must stay held.
#[allow(clippy::mut_from_ref)] // exclusivity is the documented caller contract
pub unsafe fn array_bytes_mut<'a>(arr: &'a Bound<'_, PyUntypedArray>) -> PyResult<&'a mut [u8]> {
    array_slice(arr, true).map(|(ptr, len)| {
        // SAFETY: contiguous, writable `len` bytes owned by the array, kept
        // alive by `arr`; exclusivity is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    })
}

/// Whether two arrays' memory overlaps (so they must not both be written).
pub fn overlaps(a: &Bound<'_, PyUntypedArray>, b: &Bound<'_, PyUntypedArray>) -> PyResult<bool> {
    let (pa, la) = array_slice(a, false)?;
    let (pb, lb) = array_slice(b, false)?;
    let (a0, b0) = (pa as usize, pb as usize);
    Ok(la > 0 && lb > 0 && a0 < b0 + lb && b0 < a0 + la)
}

/// Checks an array that a batch read of `rows` rows fills with one 64-bit
/// integer per row (`name`: the argument): 1-D, native-endian, of a numpy
/// kind in `kinds` (`what` names them), at least `rows` long, and sharing no
/// memory with the `others` (named arrays the same read writes).
pub fn check_column(
    name: &str,
    col: &Bound<'_, PyUntypedArray>,
    kinds: &[u8],
    what: &str,
    rows: usize,
    others: &[(&str, &Bound<'_, PyUntypedArray>)],
) -> PyResult<()> {
    let py = col.py();
    let d = col.dtype();
    let ok =
        kinds.contains(&d.kind()) && d.itemsize() == 8 && d.is_native_byteorder() != Some(false);
    if !ok || col.ndim() != 1 || col.len() < rows {
        return Err(raise(
            py,
            "InvalidArgument",
            format!("{name} must be a 1-D native-endian {what} array of at least {rows} entries"),
        ));
    }
    for (other, arr) in others {
        if overlaps(arr, col)? {
            return Err(raise(
                py,
                "InvalidArgument",
                format!("{other} and {name} must not share memory"),
            ));
        }
    }
    Ok(())
}

/// [`array_bytes_mut`] of an array of 64-bit integers, as such.
///
/// # Safety
/// As for [`array_bytes_mut`].
#[allow(clippy::mut_from_ref)] // exclusivity is the documented caller contract
pub unsafe fn array_u64_mut<'a>(arr: &'a Bound<'_, PyUntypedArray>) -> PyResult<&'a mut [u64]> {
    // SAFETY: the caller's contract is that of `array_bytes_mut`.
    let bytes = unsafe { array_bytes_mut(arr)? };
    // SAFETY: every bit pattern is a valid u64; `align_to_mut` puts in the
    // middle only properly aligned words, and anything else is refused.
    let (head, words, tail) = unsafe { bytes.align_to_mut::<u64>() };
    if !head.is_empty() || !tail.is_empty() {
        return Err(raise(
            arr.py(),
            "InvalidArgument",
            "the array of 64-bit integers is not aligned in memory; pass an aligned copy \
             (numpy.empty allocates one)"
                .into(),
        ));
    }
    Ok(words)
}

fn array_slice(arr: &Bound<'_, PyUntypedArray>, writable: bool) -> PyResult<(*mut u8, usize)> {
    let py = arr.py();
    if !arr.is_c_contiguous() {
        return Err(raise(
            py,
            "InvalidArgument",
            "the array is not C-contiguous; pass numpy.ascontiguousarray(arr)".into(),
        ));
    }
    // SAFETY: `as_array_ptr` is a live PyArrayObject while `arr` is.
    let (data, flags) = unsafe {
        let raw = &*arr.as_array_ptr();
        (raw.data.cast::<u8>(), raw.flags)
    };
    if writable && flags & npyffi::NPY_ARRAY_WRITEABLE == 0 {
        return Err(raise(
            py,
            "InvalidArgument",
            "the output array is read-only; pass a writable array".into(),
        ));
    }
    let len = arr.shape().iter().product::<usize>() * arr.dtype().itemsize();
    if len == 0 {
        return Ok((std::ptr::NonNull::dangling().as_ptr(), 0));
    }
    Ok((data, len))
}

/// A new, uninitialised 1-D array of `n` records of `dtype`.
pub fn new_records<'py>(
    dtype: &Bound<'py, PyArrayDescr>,
    n: usize,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = dtype.py();
    let mut dims = [n as npy_intp];
    // SAFETY: PyArray_NewFromDescr steals one reference to the descr, which
    // `into_dtype_ptr` provides; null strides/data ask numpy to allocate.
    unsafe {
        let ptr = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            PY_ARRAY_API.get_type_object(py, NpyTypes::PyArray_Type),
            dtype.clone().into_dtype_ptr(),
            1,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        );
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.downcast_into_unchecked())
    }
}

/// Shrinks a fresh array made by [`new_records`] to its first `n` records.
pub fn truncate<'py>(
    arr: Bound<'py, PyUntypedArray>,
    n: usize,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    if arr.len() == n {
        return Ok(arr);
    }
    let py = arr.py();
    let kwargs = [("refcheck", false)].into_py_dict(py)?;
    arr.call_method("resize", (PyTuple::new(py, [n])?,), Some(&kwargs))?;
    Ok(arr)
}

/// One record of `dtype` copied from `bytes` (a numpy scalar: `numpy.void`
/// for structured dtypes, `numpy.float64` for float64, ...).
pub fn record_scalar<'py>(
    dtype: &Bound<'py, PyArrayDescr>,
    bytes: &[u8],
) -> PyResult<Bound<'py, PyAny>> {
    let py = dtype.py();
    if bytes.len() != dtype.itemsize() || dtype.has_object() {
        return Err(raise(
            py,
            "RingCorrupt",
            format!(
                "a {}-byte message cannot be a record of dtype {dtype}",
                bytes.len()
            ),
        ));
    }
    // SAFETY: `bytes` holds one record of `dtype`; with a null base numpy
    // copies the data into the new scalar and does not keep the pointer.
    // PyArray_Scalar does not steal the descr reference.
    unsafe {
        let ptr = PY_ARRAY_API.PyArray_Scalar(
            py,
            bytes.as_ptr() as *mut _,
            dtype.as_ptr().cast(),
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, ptr)
    }
}

use pyo3::types::IntoPyDict;
