//! The operating system: every raw system call the rings make lives here
//! (futexes, membarrier, byte locks and process liveness, the clock, CPU
//! pinning and NUMA placement), each behind a safe function that states
//! what it relies on. Nothing here knows the ring format.

pub mod clock;
pub(crate) mod futex;
pub(crate) mod liveness;
pub(crate) mod membarrier;
pub mod placement;
pub(crate) mod vm;
