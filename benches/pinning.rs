//! Pinning the benchmark threads of ring_latency and rust_peers (the crate
//! benches/peers, which includes this file with `#[path]`), and remembering
//! whether any pin failed (the report says "unpinned" then).

use core_affinity::CoreId;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once any thread of this process failed (or declined) to pin itself.
static PIN_FAILED: AtomicBool = AtomicBool::new(false);

/// Pins the calling thread to `core`; on failure says so (once) and runs unpinned.
pub fn pin(core: Option<CoreId>, role: &str) {
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

/// Records that the run goes unpinned (e.g. fewer than two cores).
pub fn mark_unpinned() {
    PIN_FAILED.store(true, Ordering::Relaxed);
}

/// Whether every pin so far succeeded.
pub fn all_pinned() -> bool {
    !PIN_FAILED.load(Ordering::Relaxed)
}
