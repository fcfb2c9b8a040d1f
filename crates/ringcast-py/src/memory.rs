//! Memory control for Python: the options publishers and subscribers take
//! (huge pages, lock, prefault, NUMA node, pinned CPU), thread pinning, and
//! the reports (`.memory`, `ringcast info`) as plain dicts that the Python
//! layer wraps. No memory logic lives here.

use crate::args::Names;
use crate::errors::{py_err, raise};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use ringcast_core::info::{EndReport, RingReport};
use ringcast_core::memory::NodeResidency;
use ringcast_core::shm::hugepages::{self, HugePages};
use ringcast_core::sys::placement;
use ringcast_core::{EndMemory, MemoryOptions, MemoryReport, Placement};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// `MemoryOptions` from the keyword arguments every end takes.
pub fn end_options(lock_memory: bool, prefault: bool, pin_cpu: Option<usize>) -> MemoryOptions {
    MemoryOptions {
        lock: lock_memory,
        prefault,
        pin_cpu,
    }
}

/// `huge_pages=`: "off", "prefer" or "require"; a page size given there
/// (`huge_pages="1G"`) is shown the argument it belongs to.
impl Names for HugePages {
    const ARG: &'static str = "huge_pages";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("off", Self::Off),
        ("prefer", Self::Prefer),
        ("require", Self::Require),
    ];

    fn hint(got: &str) -> String {
        if got.starts_with(|c: char| c.is_ascii_digit()) {
            format!("; the page size is its own argument: huge_pages=\"require\", huge_page_size='{got}'")
        } else {
            String::new()
        }
    }
}

/// `Placement` from `Publisher.create`'s keyword arguments.
pub fn placement(
    py: Python<'_>,
    huge_pages: HugePages,
    huge_page_size: Option<u64>,
    huge_dir: Option<PathBuf>,
    numa_node: Option<usize>,
    numa_cpu: Option<usize>,
) -> PyResult<Placement> {
    if huge_pages == HugePages::Off && (huge_page_size.is_some() || huge_dir.is_some()) {
        return Err(raise(
            py,
            "InvalidArgument",
            "huge_page_size and huge_dir apply only with huge_pages=\"prefer\" or \"require\""
                .into(),
        ));
    }
    let numa_node = match (numa_node, numa_cpu) {
        (Some(_), Some(_)) => {
            return Err(raise(
                py,
                "InvalidArgument",
                "give numa_node= or numa_cpu= (the node of that CPU), not both".into(),
            ))
        }
        (Some(node), None) => Some(node),
        (None, Some(cpu)) => Some(placement::node_of_cpu(cpu).map_err(py_err(py))?),
        (None, None) => None,
    };
    Ok(Placement {
        huge_pages,
        huge_page_size,
        huge_dir,
        numa_node,
    })
}

fn end_memory(d: &Bound<'_, PyDict>, m: EndMemory) -> PyResult<()> {
    d.set_item("locked", m.locked)?;
    d.set_item("prefaulted", m.prefaulted)?;
    d.set_item("pinned_cpu", m.pinned_cpu)?;
    Ok(())
}

fn residency<'py>(
    py: Python<'py>,
    d: &Bound<'py, PyDict>,
    r: Option<&NodeResidency>,
) -> PyResult<()> {
    let by_node = PyDict::new(py);
    if let Some(r) = r {
        for (node, pages) in &r.by_node {
            by_node.set_item(node, pages)?;
        }
    }
    d.set_item("pages_by_node", by_node)?;
    d.set_item("pages_sampled", r.map(|r| r.sampled))?;
    d.set_item("pages_not_resident", r.map(|r| r.not_resident))?;
    Ok(())
}

/// A `MemoryReport` as the dict `ringcast.MemoryReport` is built from.
pub fn report_dict<'py>(py: Python<'py>, r: &MemoryReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("bytes_at", &r.bytes_at)?;
    d.set_item("page_size", r.page_size)?;
    d.set_item("huge_pages", r.huge_pages)?;
    d.set_item("mapped_bytes", r.mapped_bytes)?;
    end_memory(&d, r.end)?;
    d.set_item("numa_node", r.numa_node)?;
    d.set_item("numa_nodes_online", r.numa_nodes_online.clone())?;
    residency(py, &d, r.residency.as_ref())?;
    d.set_item("huge_pages_fallback", r.huge_fallback.clone())?;
    Ok(d)
}

fn end_dict<'py>(py: Python<'py>, e: &EndReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("index", e.index)?;
    d.set_item("pid", e.pid)?;
    d.set_item("alive", e.alive)?;
    d.set_item("state", e.state)?;
    d.set_item("position", e.position)?;
    d.set_item("count", e.count)?;
    d.set_item("lost", e.lost)?;
    d.set_item("stage", &e.stage)?;
    d.set_item("processed", e.processed)?;
    d.set_item("wait", e.wait)?;
    d.set_item("parked", e.parked)?;
    end_memory(&d, e.memory)?;
    Ok(d)
}

fn ring_dict<'py>(py: Python<'py>, r: &RingReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let l = &r.layout;
    d.set_item("name", &r.name)?;
    d.set_item("path", &r.path)?;
    d.set_item("bytes_at", &r.bytes_at)?;
    d.set_item("capacity", l.capacity)?;
    d.set_item("slot_size", l.slot_size)?;
    d.set_item("fixed_size", l.fixed_size())?;
    d.set_item("slot_stride", r.slot_stride)?;
    d.set_item("heads_apart", l.heads_apart())?;
    d.set_item("heads_offset", l.heads_offset())?;
    d.set_item("header_len", r.header_len)?;
    d.set_item("file_len", r.file_len)?;
    d.set_item("ring_bytes", l.file_len())?;
    d.set_item("bounded", l.bounded())?;
    d.set_item("timestamps", l.timestamps())?;
    d.set_item("watermark", l.bounded().then_some(l.watermark))?;
    d.set_item("producers", if l.multi_producer() { "many" } else { "one" })?;
    d.set_item("max_subscribers", l.max_subscribers)?;
    d.set_item("max_producers", l.max_producers)?;
    d.set_item("schema", pyo3::types::PyBytes::new(py, &l.schema))?;
    d.set_item("created_unix_ns", r.created_unix_ns)?;
    d.set_item("page_size", r.page_size)?;
    d.set_item("huge_pages", r.huge_pages)?;
    d.set_item("tmpfs", r.tmpfs)?;
    d.set_item("numa_node", r.numa_node)?;
    d.set_item("numa_nodes_online", r.numa_nodes_online.clone())?;
    residency(py, &d, r.residency.as_ref())?;
    let p = PyDict::new(py);
    p.set_item("pid", r.publisher.pid)?;
    p.set_item("alive", r.publisher.alive)?;
    p.set_item("closed", r.publisher.closed)?;
    p.set_item("generation", r.publisher.generation)?;
    end_memory(&p, r.publisher_memory)?;
    d.set_item("publisher", p)?;
    d.set_item("cursor", r.publisher.cursor)?;
    d.set_item("evictions", r.evictions)?;
    let subs = PyList::empty(py);
    for s in &r.subscribers {
        subs.append(end_dict(py, s)?)?;
    }
    d.set_item("subscribers", subs)?;
    let prods = PyList::empty(py);
    for s in &r.producers {
        prods.append(end_dict(py, s)?)?;
    }
    d.set_item("producer_records", prods)?;
    let departed = PyDict::new(py);
    for (stage, processed) in &r.departed_stages {
        departed.set_item(stage, processed)?;
    }
    d.set_item("departed_stages", departed)?;
    Ok(d)
}

/// Everything `ringcast info` shows about ring `name`, as a dict.
#[pyfunction]
#[pyo3(signature = (name, dir=None))]
pub fn inspect(py: Python<'_>, name: &str, dir: Option<PathBuf>) -> PyResult<Py<PyDict>> {
    let report = py
        .allow_threads(|| ringcast_core::info::inspect(name, dir.as_deref()))
        .map_err(py_err(py))?;
    Ok(ring_dict(py, &report)?.unbind())
}

/// Pins the calling thread to `cpus`; returns the CPUs it could run on before.
#[pyfunction]
pub fn pin_thread(py: Python<'_>, cpus: BTreeSet<usize>) -> PyResult<BTreeSet<usize>> {
    placement::pin_thread(&cpus).map_err(py_err(py))
}

/// The CPUs the calling thread may run on.
#[pyfunction]
pub fn thread_cpus(py: Python<'_>) -> PyResult<BTreeSet<usize>> {
    placement::thread_cpus().map_err(py_err(py))
}

/// What the host offers: huge page pools and mounts, the RLIMIT_MEMLOCK
/// limits, online CPUs and NUMA nodes.
#[pyfunction]
pub fn host_memory(py: Python<'_>) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    let pools = PyList::empty(py);
    for p in hugepages::pools() {
        let e = PyDict::new(py);
        e.set_item("page_size", p.page_size)?;
        e.set_item("total", p.total)?;
        e.set_item("available", p.available)?;
        pools.append(e)?;
    }
    d.set_item("huge_page_pools", pools)?;
    let mounts = PyList::empty(py);
    for m in hugepages::mounts() {
        let e = PyDict::new(py);
        e.set_item("path", m.path)?;
        e.set_item("page_size", m.page_size)?;
        mounts.append(e)?;
    }
    d.set_item("hugetlbfs_mounts", mounts)?;
    let (soft, hard) = ringcast_core::memory::memlock_limits();
    d.set_item("memlock_soft", soft)?;
    d.set_item("memlock_hard", hard)?;
    d.set_item("base_page_size", hugepages::base_page_size())?;
    d.set_item("online_cpus", placement::online_cpus())?;
    d.set_item("numa_nodes_online", placement::online_nodes())?;
    Ok(d.unbind())
}
