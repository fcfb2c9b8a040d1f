//! Pinning the benchmark threads of ring_latency, journal, line_sharing and
//! rust_peers (the crate benches/peers, which includes this file with
//! `#[path]`), and remembering whether any pin failed (the report says
//! "unpinned" then).

// Included by several binaries (`mod pinning;`, and `#[path]` from
// benches/peers), each using some of these helpers.
#![allow(dead_code)]

use core_affinity::CoreId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Set once any thread of this process failed (or declined) to pin itself.
static PIN_FAILED: AtomicBool = AtomicBool::new(false);

/// The CPUs this process may run on, as they were before any of its threads
/// pinned itself: read once, at the first call (`pin` makes one before it
/// pins). Asking the OS later is wrong: a pinned thread's affinity lists its
/// one CPU, and threads it starts inherit that, so "CPU 1" would not exist
/// for them and both ends of a benchmark would share CPU 0.
pub fn cpus() -> &'static [CoreId] {
    static CPUS: OnceLock<Vec<CoreId>> = OnceLock::new();
    CPUS.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// Pins the calling thread to `core`; on failure says so (once) and runs unpinned.
pub fn pin(core: Option<CoreId>, role: &str) {
    cpus();
    let Some(core) = core else {
        return;
    };
    if !core_affinity::set_for_current(core) && !PIN_FAILED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "warning: pinning {role} to core {} failed; continuing unpinned",
            core.id
        );
    }
}

/// Pins the calling thread to CPU `i` of [`cpus`]; where there is no such
/// CPU, it runs unpinned and the run is marked so.
pub fn pin_cpu(i: usize, role: &str) {
    match cpus().get(i) {
        Some(&core) => pin(Some(core), role),
        None => mark_unpinned(),
    }
}

/// Records that the run goes unpinned (e.g. fewer than two cores).
pub fn mark_unpinned() {
    PIN_FAILED.store(true, Ordering::Relaxed);
}

/// Whether every pin so far succeeded.
pub fn all_pinned() -> bool {
    !PIN_FAILED.load(Ordering::Relaxed)
}
