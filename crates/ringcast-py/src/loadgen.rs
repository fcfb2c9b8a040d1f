//! `_native.bench_publish` / `_native.bench_read`: the core's measurement
//! loops for `ringcast bench`, run with the GIL released so the Python
//! worker around them costs nothing per message.

use crate::errors::{py_err, raise};
use crate::publisher::PyPublisher;
use crate::subscriber::PySubscriber;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use ringcast_latency::loadgen::{self, Pace};

/// Publishes `size`-byte messages at `rate` per second (None: flat out)
/// from `start_ns` to `end_ns` (`time.monotonic_ns()` clock), each paced
/// message stamped with the time it was due. Returns a dict: published,
/// max_behind_ns, late.
#[pyfunction]
#[pyo3(signature = (publisher, *, size, rate, start_ns, end_ns))]
pub fn bench_publish<'py>(
    py: Python<'py>,
    publisher: &Bound<'py, PyPublisher>,
    size: usize,
    rate: Option<f64>,
    start_ns: u64,
    end_ns: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let mut this = publisher.try_borrow_mut()?;
    let core = this.end.core(py)?;
    if size > core.layout().slot_size as usize {
        return Err(raise(
            py,
            "MessageTooLarge",
            format!(
                "messages of {size} bytes do not fit the ring's {}-byte slots",
                core.layout().slot_size
            ),
        ));
    }
    let pace = rate.map_or(Pace::FlatOut, Pace::Rate);
    let run = py
        .allow_threads(|| loadgen::publish_paced(core, size, pace, start_ns, end_ns))
        .map_err(py_err(py))?;
    let out = PyDict::new(py);
    out.set_item("published", run.published)?;
    out.set_item("max_behind_ns", run.max_behind_ns)?;
    out.set_item("late", run.late)?;
    Ok(out)
}

/// Reads (recording latency if the subscriber does) until `deadline_ns` or
/// the end of the stream. Returns a dict: received, lost, mismatched, ended.
#[pyfunction]
#[pyo3(signature = (subscriber, *, deadline_ns))]
pub fn bench_read<'py>(
    py: Python<'py>,
    subscriber: &Bound<'py, PySubscriber>,
    deadline_ns: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let mut this = subscriber.try_borrow_mut()?;
    let (core, waiter, buf) = this.parts(py)?;
    let run = py
        .allow_threads(|| loadgen::read_until(core, deadline_ns, waiter, buf))
        .map_err(py_err(py))?;
    let out = PyDict::new(py);
    out.set_item("received", run.received)?;
    out.set_item("lost", run.lost)?;
    out.set_item("mismatched", run.mismatched)?;
    out.set_item("ended", run.ended)?;
    Ok(out)
}
