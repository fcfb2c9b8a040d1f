//! The operating system: every raw system call the rings make lives here
//! (futexes, membarrier, byte locks and process liveness, the clock, CPU
//! pinning and NUMA placement, memory mappings, files and filesystems, the
//! SIGBUS handler, fork handlers, eventfds, the user and group databases),
//! each behind a safe function that states what it relies on, or an unsafe
//! one whose `# Safety` says what the caller must promise. Nothing here knows
//! the ring format.

pub mod clock;
pub(crate) mod eventfd;
pub(crate) mod fs;
pub(crate) mod futex;
pub(crate) mod liveness;
pub(crate) mod membarrier;
pub mod placement;
pub(crate) mod process;
pub(crate) mod signal;
pub(crate) mod users;
pub(crate) mod vm;
