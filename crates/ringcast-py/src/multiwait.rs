//! `ringcast._native.wait_any`: one wait on many subscribers (the bus's
//! topics), with the GIL released. The waiting is the core's
//! (`ringcast_core::wait_any`): spin and yield over every ring, then park on
//! all of them at once.

use crate::errors::py_err;
use crate::subscriber::PySubscriber;
use crate::wait::{patience, without_gil, Ends, Patience, PyWaitStrategy};
use pyo3::prelude::*;
use ringcast_core::{AnyEnd, RecvError, Waiter};

/// Waits until one of `subscribers` has something for its next receive: a
/// message, the end of its stream, or its eviction (which that receive
/// raises). Returns its index, or None once `timeout` seconds (None: no
/// limit) passed or `stop()`, called every few milliseconds of waiting,
/// returned True; an empty list just waits. `wait` says how to wait
/// (default: adaptive). A publisher's death is not an error here: the
/// subscriber reports it to this wait once, which returns that
/// subscriber's index, and then waits on for a publisher that takes the
/// ring over. A revoked ring (its file shrank) raises.
#[pyfunction]
#[pyo3(signature = (subscribers, timeout=None, wait=None, stop=None))]
pub fn wait_any(
    py: Python<'_>,
    subscribers: Vec<Bound<'_, PySubscriber>>,
    timeout: Option<f64>,
    wait: Option<PyWaitStrategy>,
    stop: Option<Bound<'_, PyAny>>,
) -> PyResult<Option<usize>> {
    let Patience::Until(deadline) = patience(py, timeout)? else {
        unreachable!("a timeout is always a deadline");
    };
    let handles = subscribers
        .iter()
        .map(|s| s.try_borrow()?.wait_handle(py))
        .collect::<PyResult<Vec<_>>>()?;
    let stop = stop.map(Bound::unbind);
    let mut waiter = Waiter::new(wait.map(|w| w.inner).unwrap_or_default());
    let ends = Ends {
        closed: None,
        stop: stop.as_ref(),
    };
    let (end, failure) = without_gil(py, ends, |slice, between| {
        ringcast_core::wait_any(&handles, deadline, &mut waiter, Some(slice), between)
    });
    if let Some(e) = failure {
        return Err(e);
    }
    match end {
        Ok(AnyEnd::Ready(i)) => Ok(Some(i)),
        Ok(AnyEnd::Deadline | AnyEnd::Stopped) => Ok(None),
        Err((i, RecvError::PublisherDied { .. } | RecvError::Evicted { .. })) => Ok(Some(i)),
        Err((_, e)) => Err(py_err(py)(e)),
    }
}
