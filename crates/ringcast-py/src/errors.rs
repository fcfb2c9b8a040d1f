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

/// `.map_err` helper: `core_call().map_err(py_err(py))?`, for the error of
/// any core operation.
pub fn py_err<E: Into<Error>>(py: Python<'_>) -> impl FnOnce(E) -> PyErr + '_ {
    move |e| to_py(py, e)
}
