//! Core errors to the Python exceptions of `ringcast.errors`.
//!
//! The exception classes are defined in Python (so they can also derive from
//! the matching built-in: `FileNotFoundError`, `TimeoutError`, ...); this module
//! only picks the class and passes the core's message through.

use pyo3::prelude::*;
use pyo3::types::PyType;
use ringcast_core::Error;
use ringcast_latency::LatencyError;

/// The `ringcast.errors` exception class called `name`.
pub fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    Ok(py
        .import("ringcast.errors")?
        .getattr(name)?
        .downcast_into::<PyType>()?)
}

/// Raises the `ringcast.errors` exception called `class` with `msg`.
pub fn raise(py: Python<'_>, name: &str, msg: String) -> PyErr {
    match class(py, name) {
        Ok(cls) => PyErr::from_type(cls, msg),
        Err(e) => e,
    }
}

/// Converts a core error into the matching Python exception.
pub fn to_py(py: Python<'_>, err: Error) -> PyErr {
    let class = match &err {
        Error::InvalidName { .. } => "InvalidName",
        Error::InvalidArgument(_) => "InvalidArgument",
        Error::NotFound { .. } => "RingNotFound",
        Error::Exists { .. } => "RingExists",
        Error::PublisherExists { .. } => "PublisherExists",
        Error::StageExists { .. } => "StageExists",
        Error::SchemaMismatch { .. } => "SchemaMismatch",
        Error::MessageTooLarge { .. } => "MessageTooLarge",
        Error::BufferTooSmall { .. } => "BufferTooSmall",
        Error::Corrupt { .. } => "RingCorrupt",
        Error::IncompatibleVersion { .. } => "IncompatibleVersion",
        Error::PermissionDenied { .. } => "RingPermissionError",
        Error::Untrusted { .. } | Error::UnsafeDirectory { .. } => "UntrustedRing",
        Error::SubscriberTableFull { .. } => "SubscriberTableFull",
        Error::ProducerTableFull { .. } => "ProducerTableFull",
        Error::RingFull { .. } => "RingFull",
        Error::PublishTimeout { .. } | Error::SlotStalled { .. } => "Timeout",
        Error::Evicted { .. } => "Evicted",
        Error::WrongMode { .. } => "InvalidArgument",
        Error::Closed { .. } | Error::GroupClosed { .. } => "RingClosed",
        Error::UsedAfterFork { .. } => "UsedAfterFork",
        Error::PublisherDied { .. } => "PublisherDied",
        Error::Timeout => "Timeout",
        Error::HugePagesUnavailable { .. } => "HugePagesUnavailable",
        Error::MemoryLockFailed { .. } => "MemoryLockFailed",
        Error::CpuUnavailable { .. } => "CpuUnavailable",
        Error::NumaNodeUnavailable { .. } => "NumaNodeUnavailable",
        Error::Io { .. } | Error::NoSpace { .. } => "RingError",
    };
    raise(py, class, err.to_string())
}

/// An error of a Rust crate of ringcast, as the matching Python exception.
pub trait ToPyErr {
    /// The exception.
    fn to_py(self, py: Python<'_>) -> PyErr;
}

impl ToPyErr for Error {
    fn to_py(self, py: Python<'_>) -> PyErr {
        to_py(py, self)
    }
}

/// Bad histogram shapes, encodings and rates are bad arguments.
impl ToPyErr for LatencyError {
    fn to_py(self, py: Python<'_>) -> PyErr {
        raise(py, "InvalidArgument", self.to_string())
    }
}

impl ToPyErr for ringcast_latency::Error {
    fn to_py(self, py: Python<'_>) -> PyErr {
        match self {
            ringcast_latency::Error::Latency(e) => e.to_py(py),
            ringcast_latency::Error::Ring(e) => e.to_py(py),
        }
    }
}

/// `.map_err` helper: `core_call().map_err(py_err(py))?`.
pub fn py_err<E: ToPyErr>(py: Python<'_>) -> impl FnOnce(E) -> PyErr + '_ {
    move |e| e.to_py(py)
}
