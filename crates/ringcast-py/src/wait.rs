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

    fn __repr__(&self) -> String {
        match self.inner {
            WaitStrategy::Adaptive { spin, yields } => {
                format!("WaitStrategy.adaptive(spin={spin}, yield_={yields})")
            }
            _ => format!("WaitStrategy.{}()", self.kind()),
        }
    }
}
