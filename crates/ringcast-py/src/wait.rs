//! How the binding waits: `ringcast.WaitStrategy` (how a core end waits,
//! as a Python value), Python timeouts as deadlines, and [`without_gil`],
//! the one wait every blocking call of the binding makes with the GIL
//! released.

use crate::errors::raise;
use pyo3::prelude::*;
use ringcast_core::wait::{DEFAULT_SPIN, DEFAULT_YIELD};
use ringcast_core::WaitStrategy;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest stretch a blocking call waits with the GIL released before it
/// runs Python's signal handlers (so Ctrl-C interrupts it promptly) and
/// looks whether its end was closed.
pub(crate) const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Timeouts beyond this many seconds wait forever (no `Instant` overflow).
const FOREVER_SECONDS: f64 = 1e9;

/// Runs Python's signal handlers (the GIL held): `false`, with the
/// exception (KeyboardInterrupt, ...) kept in `interrupt`, when one raised,
/// which ends a wait made in slices.
pub(crate) fn no_pending_signal(py: Python<'_>, interrupt: &mut Option<PyErr>) -> bool {
    match py.check_signals() {
        Ok(()) => true,
        Err(e) => {
            *interrupt = Some(e);
            false
        }
    }
}

/// A Python timeout (seconds; None: forever) as a deadline (None: never).
pub(crate) fn deadline(py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(raise(
            py,
            "InvalidArgument",
            format!("timeout must be None (wait forever) or a number of seconds >= 0, got {t}"),
        )),
        Some(t) if t > FOREVER_SECONDS => Ok(None),
        Some(t) => Ok(Some(Instant::now() + Duration::from_secs_f64(t))),
    }
}

/// How long a receive may wait for its first message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Patience {
    /// Not at all: the `try_*` methods, which never raise `RingClosed`.
    Never,
    /// Until the deadline (`None`: forever); the end of the stream raises.
    Until(Option<Instant>),
}

/// A Python timeout (seconds; None: forever) as the patience of a receive.
pub(crate) fn patience(py: Python<'_>, timeout: Option<f64>) -> PyResult<Patience> {
    deadline(py, timeout).map(Patience::Until)
}

/// What ends a wait besides its deadline and a signal handler that raises.
#[derive(Clone, Copy, Default)]
pub(crate) struct Ends<'a> {
    /// Raised once the end is closed (in another thread).
    pub closed: Option<&'a AtomicBool>,
    /// Called (with the GIL) every slice: a true result ends the wait, an
    /// exception ends it and is raised.
    pub stop: Option<&'a Py<PyAny>>,
}

impl<'a> Ends<'a> {
    /// A wait that ends when the end whose flag `closed` is gets closed.
    pub fn closed(closed: &'a AtomicBool) -> Self {
        Self {
            closed: Some(closed),
            stop: None,
        }
    }
}

/// The one wait of the binding without the GIL. `wait` runs a core wait
/// (which keeps the deadline) with the GIL released; it is handed the slice
/// after which the core wait must call the `between` it is handed too.
/// `between` says stop once `ends` says so; every slice it takes the GIL to
/// run Python's signal handlers (and `ends.stop`). Returns what `wait`
/// returned and the exception a handler (or `stop`) raised, which the
/// caller raises once it has settled its end.
pub(crate) fn without_gil<R: Send>(
    py: Python<'_>,
    ends: Ends<'_>,
    wait: impl FnOnce(Duration, &mut dyn FnMut() -> bool) -> R + Send,
) -> (R, Option<PyErr>) {
    let mut interrupt = None;
    let got = py.allow_threads(|| {
        let mut between = || {
            !ends.closed.is_some_and(|c| c.load(Ordering::Acquire))
                && Python::with_gil(|py| {
                    let go_on = py.check_signals().and_then(|()| match ends.stop {
                        None => Ok(true),
                        Some(stop) => Ok(!stop.call0(py)?.is_truthy(py)?),
                    });
                    go_on.unwrap_or_else(|e| {
                        interrupt = Some(e);
                        false
                    })
                })
        };
        wait(SIGNAL_CHECK_INTERVAL, &mut between)
    });
    (got, interrupt)
}

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
