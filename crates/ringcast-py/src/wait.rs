//! `ringcast.WaitStrategy`: how a subscriber waits, as a Python value.

use crate::errors::raise;
use pyo3::prelude::*;
use ringcast_core::wait::{DEFAULT_SPIN, DEFAULT_YIELD};
use ringcast_core::WaitStrategy;

/// How a subscriber waits for the next message. Build one with
/// `WaitStrategy.busy_spin()`, `.yielding()`, `.park()` or
/// `.adaptive(spin=..., yield_=...)`; pass it as `Subscriber.attach(wait=...)`.
#[pyclass(frozen, eq, module = "ringcast._native", name = "WaitStrategy")]
#[derive(Clone, PartialEq)]
pub struct PyWaitStrategy {
    pub inner: WaitStrategy,
}

#[pymethods]
impl PyWaitStrategy {
    /// Poll continuously: lowest wake-up latency, one core at 100%.
    #[staticmethod]
    fn busy_spin() -> Self {
        Self {
            inner: WaitStrategy::BusySpin,
        }
    }

    /// Poll, yielding the CPU between polls (friendlier on a shared core).
    #[staticmethod]
    fn yielding() -> Self {
        Self {
            inner: WaitStrategy::Yield,
        }
    }

    /// Sleep until the publisher wakes this subscriber (a futex in the ring,
    /// across processes): near zero CPU when idle, a few µs per wake-up.
    #[staticmethod]
    fn park() -> Self {
        Self {
            inner: WaitStrategy::Park,
        }
    }

    /// Spin for `spin` polls, then yield for `yield_` polls, then park.
    #[staticmethod]
    #[pyo3(signature = (spin=DEFAULT_SPIN as i64, yield_=DEFAULT_YIELD as i64))]
    fn adaptive(py: Python<'_>, spin: i64, yield_: i64) -> PyResult<Self> {
        let check = |name: &str, v: i64| {
            u32::try_from(v).map_err(|_| {
                raise(
                    py,
                    "InvalidArgument",
                    format!("{name} must be between 0 and {}, got {v}", u32::MAX),
                )
            })
        };
        Ok(Self {
            inner: WaitStrategy::Adaptive {
                spin: check("spin", spin)?,
                yields: check("yield_", yield_)?,
            },
        })
    }

    /// The strategy's kind: "busy_spin", "yielding", "park" or "adaptive".
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner {
            WaitStrategy::BusySpin => "busy_spin",
            WaitStrategy::Yield => "yielding",
            WaitStrategy::Park => "park",
            WaitStrategy::Adaptive { .. } => "adaptive",
        }
    }

    /// Adaptive strategies: polls spent spinning before yielding (None for
    /// the other kinds).
    #[getter]
    fn spin(&self) -> Option<u32> {
        match self.inner {
            WaitStrategy::Adaptive { spin, .. } => Some(spin),
            _ => None,
        }
    }

    /// Adaptive strategies: polls spent yielding before parking (None for
    /// the other kinds).
    #[getter]
    fn yield_(&self) -> Option<u32> {
        match self.inner {
            WaitStrategy::Adaptive { yields, .. } => Some(yields),
            _ => None,
        }
    }

    /// Pickling (e.g. to stage processes started with "spawn"): rebuilt by
    /// the constructor of its kind.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, pyo3::types::PyTuple>)> {
        let py = slf.py();
        let this = slf.get();
        let ctor = slf.get_type().getattr(this.kind())?;
        let args = match this.inner {
            WaitStrategy::Adaptive { spin, yields } => {
                pyo3::types::PyTuple::new(py, [spin, yields])?
            }
            _ => pyo3::types::PyTuple::empty(py),
        };
        Ok((ctor, args))
    }

    fn __repr__(&self) -> String {
        match self.inner {
            WaitStrategy::Adaptive { spin, yields } => {
                format!("WaitStrategy.adaptive(spin={spin}, yield_={yields})")
            }
            _ => format!("WaitStrategy.{}()", self.kind()),
        }
    }
}
