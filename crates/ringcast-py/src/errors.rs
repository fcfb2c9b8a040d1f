//! Core errors to the Python exceptions of `ringcast.errors`.
//!
//! The exception classes are defined in Python (so they can also derive from
//! the matching built-in: `FileNotFoundError`, `TimeoutError`, ...); this module
//! only picks the class and passes the core's message through.

use pyo3::prelude::*;
use pyo3::types::PyType;
use ringcast_core::{
    ArgumentError, Error, OpenError, PlacementError, PublishError, RecvError, RingFault,
};
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

/// Converts a core error (of any operation) into the matching Python exception.
pub fn to_py(py: Python<'_>, err: impl Into<Error>) -> PyErr {
    let err = err.into();
    let class = match &err {
        Error::Open(e) => open_class(e),
        Error::Publish(e) => publish_class(e),
        Error::Recv(e) => recv_class(e),
        Error::Placement(e) => placement_class(e),
        Error::Argument(e) => argument_class(e),
        Error::Fault(e) => fault_class(e),
    };
    raise(py, class, err.to_string())
}

fn argument_class(err: &ArgumentError) -> &'static str {
    match err {
        ArgumentError::InvalidName { .. } => "InvalidName",
        _ => "InvalidArgument",
    }
}

fn fault_class(err: &RingFault) -> &'static str {
    match err {
        RingFault::Corrupt { .. } => "RingCorrupt",
        RingFault::UsedAfterFork { .. } => "UsedAfterFork",
        RingFault::PermissionDenied { .. } => "RingPermissionError",
        RingFault::Io { .. } => "RingError",
    }
}

fn placement_class(err: &PlacementError) -> &'static str {
    match err {
        PlacementError::CpuUnavailable { .. } => "CpuUnavailable",
        PlacementError::NumaNodeUnavailable { .. } => "NumaNodeUnavailable",
        PlacementError::Argument(e) => argument_class(e),
        PlacementError::Fault(e) => fault_class(e),
    }
}

fn open_class(err: &OpenError) -> &'static str {
    match err {
        OpenError::NotFound { .. } => "RingNotFound",
        OpenError::Exists { .. } => "RingExists",
        OpenError::PublisherExists { .. } => "PublisherExists",
        OpenError::StageExists { .. } => "StageExists",
        OpenError::SchemaMismatch { .. } => "SchemaMismatch",
        OpenError::IncompatibleVersion { .. } => "IncompatibleVersion",
        OpenError::Untrusted { .. } | OpenError::UnsafeDirectory { .. } => "UntrustedRing",
        OpenError::NoSpace { .. } => "RingError",
        OpenError::SubscriberTableFull { .. } => "SubscriberTableFull",
        OpenError::ProducerTableFull { .. } => "ProducerTableFull",
        OpenError::HugePagesUnavailable { .. } => "HugePagesUnavailable",
        OpenError::MemoryLockFailed { .. } => "MemoryLockFailed",
        OpenError::Placement(e) => placement_class(e),
        OpenError::Argument(e) => argument_class(e),
        OpenError::Fault(e) => fault_class(e),
    }
}

fn publish_class(err: &PublishError) -> &'static str {
    match err {
        PublishError::MessageTooLarge { .. } => "MessageTooLarge",
        PublishError::RingFull { .. } => "RingFull",
        PublishError::Timeout { .. } | PublishError::SlotStalled { .. } => "Timeout",
        PublishError::Argument(e) => argument_class(e),
        PublishError::Fault(e) => fault_class(e),
    }
}

fn recv_class(err: &RecvError) -> &'static str {
    match err {
        RecvError::BufferTooSmall { .. } => "BufferTooSmall",
        RecvError::Timeout => "Timeout",
        RecvError::Closed { .. } | RecvError::GroupClosed { .. } => "RingClosed",
        RecvError::PublisherDied { .. } => "PublisherDied",
        RecvError::Evicted { .. } => "Evicted",
        RecvError::Argument(e) => argument_class(e),
        RecvError::Fault(e) => fault_class(e),
    }
}

/// An error of a Rust crate of ringcast, as the matching Python exception.
pub trait ToPyErr {
    /// The exception.
    fn to_py(self, py: Python<'_>) -> PyErr;
}

/// Every core error goes through [`to_py`]'s table.
macro_rules! core_to_py {
    ($($t:ty),*) => {$(
        impl ToPyErr for $t {
            fn to_py(self, py: Python<'_>) -> PyErr {
                to_py(py, self)
            }
        }
    )*};
}

core_to_py!(
    Error,
    OpenError,
    PublishError,
    RecvError,
    ArgumentError,
    RingFault,
    PlacementError
);

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

/// `.map_err` helper: `call().map_err(py_err(py))?`, for the error of any
/// core operation, of latency recording, or of the load generator.
pub fn py_err<E: ToPyErr>(py: Python<'_>) -> impl FnOnce(E) -> PyErr + '_ {
    move |e| e.to_py(py)
}
