//! Long jobs (recording, replaying, bridging) run from Python: the job on a
//! thread of its own, this thread waiting with the GIL released, running
//! signal handlers and passing progress reports on.

use crate::errors::raise;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Runs `job` on a thread of its own until it returns, running this
/// thread's signal handlers every 50 ms and calling `progress` with each
/// report the job sends. An exception from either (Ctrl-C, SIGTERM turned
/// into an exception) stops the job, which ends cleanly (the journal sealed,
/// the ring closed) before the exception is raised, carrying the job's final
/// report as its `report` attribute. The job's own error becomes the
/// exception `to_err` makes of it.
pub(crate) fn run_job<'py, R, E>(
    py: Python<'py>,
    progress: Option<Bound<'py, PyAny>>,
    to_dict: impl Fn(Python<'py>, &R) -> PyResult<Bound<'py, PyDict>>,
    to_err: impl FnOnce(Python<'py>, E) -> PyErr,
    job: impl FnOnce(&AtomicBool, &mpsc::Sender<R>) -> Result<R, E> + Send + 'static,
) -> PyResult<R>
where
    R: Send + 'static,
    E: Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::channel::<R>();
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("ringcast-job".into())
            .spawn(move || job(&stop, &tx))
            .map_err(|e| raise(py, "RingError", format!("cannot start a thread: {e}")))?
    };
    let mut failure: Option<PyErr> = None;
    while !thread.is_finished() {
        // The receiver moves into the GIL-free wait and back (it is not Sync).
        let (got, back) = py.allow_threads(move || {
            let got = rx.recv_timeout(Duration::from_millis(50));
            (got, rx)
        });
        rx = back;
        if failure.is_some() {
            continue;
        }
        let step = py.check_signals().and_then(|()| match (&got, &progress) {
            (Ok(report), Some(call)) => call.call1((to_dict(py, report)?,)).map(drop),
            _ => Ok(()),
        });
        if let Err(e) = step {
            stop.store(true, Ordering::Relaxed);
            failure = Some(e);
        }
    }
    let outcome = thread
        .join()
        .map_err(|_| raise(py, "RingError", "the job's thread panicked".into()))?;
    if let Some(e) = failure {
        if let Ok(report) = &outcome {
            e.value(py).setattr("report", to_dict(py, report)?)?;
        }
        return Err(e);
    }
    outcome.map_err(|e| to_err(py, e))
}

/// Latency quantiles (ns) as a dict: p50, p99, p999, max.
pub(crate) fn latency_dict<'py>(
    py: Python<'py>,
    l: &Option<[u64; 4]>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let Some(l) = l else { return Ok(None) };
    let d = PyDict::new(py);
    for (k, v) in ["p50", "p99", "p999", "max"].iter().zip(l) {
        d.set_item(*k, *v)?;
    }
    Ok(Some(d))
}
