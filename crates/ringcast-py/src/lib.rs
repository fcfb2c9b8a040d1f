//! `ringcast._native`: the thin PyO3 layer over `ringcast-core` (and the
//! feed crates `ringcast-feed`, `ringcast-feed-net`; latency: `ringcast-latency`).
//!
//! It converts Python objects to bytes and back, releases the GIL while
//! waiting, and maps core errors to the exceptions of `ringcast.errors`. The
//! ring logic lives in the core; the Python API surface in `python/ringcast`.

mod args;
mod bridge;
mod buffer;
mod end;
mod errors;
mod feed;
mod group;
mod job;
mod journal;
mod latency;
mod loadgen;
mod memory;
mod multiwait;
mod publisher;
mod records;
mod subscriber;
mod wait;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<end::PyRingEnd>()?;
    m.add_class::<publisher::PyPublisher>()?;
    m.add_class::<subscriber::PySubscriber>()?;
    m.add_class::<group::PyGroup>()?;
    m.add_class::<group::PyGroupConsumer>()?;
    m.add_class::<wait::PyWaitStrategy>()?;
    m.add_class::<latency::PyLatencyHistogram>()?;
    m.add_class::<latency::PyIntervalLog>()?;
    m.add_function(wrap_pyfunction!(multiwait::wait_any, m)?)?;
    m.add_function(wrap_pyfunction!(loadgen::bench_publish, m)?)?;
    m.add_function(wrap_pyfunction!(loadgen::bench_read, m)?)?;
    m.add_function(wrap_pyfunction!(feed::itch_types, m)?)?;
    m.add_function(wrap_pyfunction!(feed::itch_read, m)?)?;
    m.add_function(wrap_pyfunction!(feed::itch_generate, m)?)?;
    m.add_function(wrap_pyfunction!(feed::feed_send, m)?)?;
    m.add_function(wrap_pyfunction!(feed::feed_replay, m)?)?;
    m.add_function(wrap_pyfunction!(feed::pcap_read, m)?)?;
    m.add_function(wrap_pyfunction!(feed::feed_handle, m)?)?;
    m.add_function(wrap_pyfunction!(feed::feed_books, m)?)?;
    m.add_function(wrap_pyfunction!(feed::feed_record_descrs, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::bridge_send, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::bridge_recv, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::bridge_check_channel, m)?)?;
    m.add_function(wrap_pyfunction!(journal::journal_record, m)?)?;
    m.add_function(wrap_pyfunction!(journal::journal_replay, m)?)?;
    m.add_function(wrap_pyfunction!(journal::journal_open, m)?)?;
    m.add_function(wrap_pyfunction!(journal::journal_verify, m)?)?;
    m.add("FORMAT_VERSION", ringcast_core::format::layout::VERSION)?;
    m.add("DEFAULT_DIR", ringcast_core::format::name::DEFAULT_DIR)?;
    add_limits(m)?;
    m.add_function(wrap_pyfunction!(resolve_dir, m)?)?;
    m.add_function(wrap_pyfunction!(list_rings, m)?)?;
    m.add_function(wrap_pyfunction!(ring_path, m)?)?;
    m.add_function(wrap_pyfunction!(trust, m)?)?;
    m.add_function(wrap_pyfunction!(schema_problem, m)?)?;
    m.add_function(wrap_pyfunction!(trusted, m)?)?;
    m.add_function(wrap_pyfunction!(memory::inspect, m)?)?;
    m.add_function(wrap_pyfunction!(memory::pin_thread, m)?)?;
    m.add_function(wrap_pyfunction!(memory::thread_cpus, m)?)?;
    m.add_function(wrap_pyfunction!(memory::host_memory, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// The ring directory used for `dir` (None: $RINGCAST_DIR or the default).
#[pyfunction]
#[pyo3(signature = (dir=None))]
fn resolve_dir(dir: Option<std::path::PathBuf>) -> std::path::PathBuf {
    ringcast_core::format::name::resolve_dir(dir.as_deref())
}

/// Names of the rings in `dir` (None: $RINGCAST_DIR or the default), sorted.
#[pyfunction]
#[pyo3(signature = (dir=None))]
fn list_rings(dir: Option<std::path::PathBuf>) -> Vec<String> {
    ringcast_core::format::name::list(&ringcast_core::format::name::resolve_dir(dir.as_deref()))
}

/// The file of ring `name` in `dir` (None: $RINGCAST_DIR or the default).
#[pyfunction]
#[pyo3(signature = (name, dir=None))]
fn ring_path(name: &str, dir: Option<std::path::PathBuf>) -> std::path::PathBuf {
    let dir = ringcast_core::format::name::resolve_dir(dir.as_deref());
    ringcast_core::format::name::ring_path(&dir, name)
}

/// Trusts the users and groups of `spec` (user names or uids, `@group`
/// names or gids, comma-separated) for the rest of this process: their ring
/// files and ring directories are used like this process's own.
#[pyfunction]
fn trust(py: Python<'_>, spec: &str) -> PyResult<()> {
    ringcast_core::shm::trust::trust(spec).map_err(errors::py_err(py))
}

/// The uids and gids trusted beyond this process's user and root
/// (`RINGCAST_TRUST` and `trust()`), as `(uids, gids)`.
#[pyfunction]
fn trusted() -> (Vec<u32>, Vec<u32>) {
    let t = ringcast_core::shm::trust::trusted();
    (t.users, t.groups)
}

/// What is wrong with a ring header's schema bytes (None: nothing), checked
/// before the description is decoded (see `ringcast_core::format::schema`).
#[pyfunction]
fn schema_problem(schema: &[u8]) -> Option<String> {
    ringcast_core::format::schema::check(schema).err()
}

/// The core's limits and defaults that the Python layer names in its own
/// checks, messages and signatures (the core enforces them).
fn add_limits(m: &Bound<'_, PyModule>) -> PyResult<()> {
    use ringcast_core::format::{layout, name, stage_name};
    use ringcast_core::subscribe::{group, stage};
    let seconds = |ns: u64| ns as f64 / 1e9;
    m.add("DEFAULT_MAX_SUBSCRIBERS", layout::DEFAULT_MAX_SUBSCRIBERS)?;
    m.add("DEFAULT_MAX_PRODUCERS", layout::DEFAULT_MAX_PRODUCERS)?;
    m.add(
        "DEFAULT_LIVENESS_TIMEOUT",
        seconds(layout::DEFAULT_LIVENESS_TIMEOUT_NS),
    )?;
    m.add(
        "DEFAULT_CLAIM_TIMEOUT",
        seconds(layout::DEFAULT_CLAIM_TIMEOUT_NS),
    )?;
    m.add("MAX_SLOT_SIZE", layout::MAX_SLOT_SIZE)?;
    m.add("MAX_NAME_LEN", name::MAX_NAME_LEN)?;
    m.add("MAX_STAGE_NAME_LEN", stage_name::MAX_NAME_LEN)?;
    m.add("MAX_UPSTREAM", stage::MAX_UPSTREAM)?;
    m.add("MAX_GROUP_BUFFER", group::MAX_BUFFER)?;
    Ok(())
}
