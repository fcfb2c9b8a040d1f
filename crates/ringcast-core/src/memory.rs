//! Memory control of a ring mapping: NUMA placement, locking, prefaulting,
//! and where its pages ended up.
//!
//! Each is one system call over the whole mapping, made once when a ring is
//! created or attached, never on the message path. What an end did is kept
//! in its [`EndMemory`] word in the ring (publisher state, subscriber or
//! producer record), so that `ringcast info` in another process can report it.

use crate::error::{OpenError, Result, RingFault};
use crate::shm::mapping::Mapping;
use crate::shm::ring::RingMap;
use crate::sys::vm;
pub use crate::sys::vm::memlock_limits;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// Pages whose node `resident_nodes` asks about, spread over the mapping.
const NODE_SAMPLES: usize = 1024;

/// What one end of a ring did to its mapping, packed in one word of the ring
/// (bit 0: locked, bit 1: prefaulted, bits 8..: pinned CPU + 1, 0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndMemory {
    /// The mapping is locked in RAM (`mlock`).
    pub locked: bool,
    /// Every page was faulted in when the end opened the ring.
    pub prefaulted: bool,
    /// The end's thread was pinned to this CPU when it opened the ring.
    pub pinned_cpu: Option<usize>,
}

impl EndMemory {
    /// The word stored in the ring.
    pub fn encode(self) -> u32 {
        let cpu = self.pinned_cpu.map_or(0, |c| (c as u32 + 1) & 0x00ff_ffff);
        u32::from(self.locked) | u32::from(self.prefaulted) << 1 | cpu << 8
    }

    /// Reads a word stored by [`EndMemory::encode`].
    pub fn decode(word: u32) -> Self {
        let cpu = word >> 8;
        Self {
            locked: word & 1 != 0,
            prefaulted: word & 2 != 0,
            pinned_cpu: (cpu != 0).then(|| cpu as usize - 1),
        }
    }
}

/// Faults every page of the mapping in, writable, without changing a byte,
/// so that the first messages pay no page faults. `page`: the backing's page
/// size (the step of the fallback for kernels before 5.14).
pub(crate) fn prefault(map: &Mapping, page: usize) -> io::Result<()> {
    if vm::populate_writable(map.region())? {
        return Ok(());
    }
    // Older kernel: a write fault per page through an atomic add of zero,
    // which leaves the word as it is whatever other processes do to it.
    for offset in (0..map.len()).step_by(page.max(4096)) {
        map.word(offset).fetch_add(0, Ordering::Relaxed);
    }
    Ok(())
}

/// Where the mapping's pages are, from a sample spread over it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeResidency {
    /// Pages asked about.
    pub sampled: u64,
    /// Resident sampled pages per NUMA node.
    pub by_node: BTreeMap<usize, u64>,
    /// Sampled pages not resident in this process's page tables.
    pub not_resident: u64,
}

/// Asks the kernel (`move_pages` without moving) which node holds each of a
/// sample of the mapping's pages; `None` when the kernel has no NUMA support.
/// `touch`: read each sampled page first, so that it is mapped here (an
/// inspecting process that has not touched the ring yet).
pub(crate) fn resident_nodes(map: &Mapping, page: usize, touch: bool) -> Option<NodeResidency> {
    let page = page.max(4096);
    let pages = map.len().div_ceil(page);
    let step = pages.div_ceil(NODE_SAMPLES).max(1);
    let offsets: Vec<usize> = (0..pages).step_by(step).map(|i| i * page).collect();
    if touch {
        for &offset in &offsets {
            map.word(offset).load(Ordering::Relaxed);
        }
    }
    let nodes = vm::page_nodes(map.region(), &offsets)?;
    let mut out = NodeResidency {
        sampled: nodes.len() as u64,
        ..NodeResidency::default()
    };
    for node in nodes {
        match node {
            Some(n) => *out.by_node.entry(n).or_default() += 1,
            None => out.not_resident += 1,
        }
    }
    Some(out)
}

/// What one end (publisher, producer or subscriber) does to its thread and
/// its mapping when it opens a ring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryOptions {
    /// Lock the mapping in RAM (`mlock`): no page of the ring is ever swapped
    /// out. Needs RLIMIT_MEMLOCK of at least the ring's size, or CAP_IPC_LOCK.
    pub lock: bool,
    /// Fault every page in when opening, so the first messages pay no faults.
    pub prefault: bool,
    /// Pin the opening thread to this CPU first (see [`crate::sys::placement`]).
    pub pin_cpu: Option<usize>,
}

/// Runs `open` (an end opening a ring) with the calling thread pinned as
/// `opts` says: pinned first, so that pages the thread allocates land on its
/// CPU's node. If opening fails, the thread gets its previous CPUs back: a
/// refused end leaves nothing changed.
pub(crate) fn pinned<T>(
    opts: &MemoryOptions,
    open: impl FnOnce() -> Result<T, OpenError>,
) -> Result<T, OpenError> {
    let Some(cpu) = opts.pin_cpu else {
        return open();
    };
    let before = crate::sys::placement::pin_thread(&std::collections::BTreeSet::from([cpu]))?;
    let result = open();
    if result.is_err() {
        let _ = crate::sys::placement::pin_thread(&before);
    }
    result
}

/// Locks and prefaults `ring`'s mapping as `opts` says; returns what was done.
pub(crate) fn settle(ring: &RingMap, opts: &MemoryOptions) -> Result<EndMemory, OpenError> {
    let map = ring.mapping();
    if opts.lock {
        vm::lock(map.region()).map_err(|source| {
            let (soft, hard) = vm::memlock_limits();
            OpenError::MemoryLockFailed {
                path: ring.path().to_owned(),
                bytes: map.len() as u64,
                soft,
                hard,
                source,
            }
        })?;
    }
    if opts.prefault {
        prefault(map, ring.backing().page_size as usize)
            .map_err(|e| RingFault::io("prefault the pages of", ring.path(), e))?;
    }
    Ok(EndMemory {
        locked: opts.lock,
        prefaulted: opts.prefault,
        pinned_cpu: opts.pin_cpu,
    })
}

/// Where a ring's memory is and what this end did to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryReport {
    /// The file holding the ring's bytes (the hugetlbfs file of a huge-page ring).
    pub bytes_at: PathBuf,
    /// Size of the pages backing the ring.
    pub page_size: u64,
    /// The ring is on huge pages.
    pub huge_pages: bool,
    /// Bytes mapped.
    pub mapped_bytes: u64,
    /// What this end did: locked, prefaulted, pinned.
    pub end: EndMemory,
    /// The NUMA node the ring's creator bound it to, if any.
    pub numa_node: Option<usize>,
    /// The host's online NUMA nodes.
    pub numa_nodes_online: Vec<usize>,
    /// Where a sample of the ring's pages are, as this process maps them
    /// (`None`: the kernel has no NUMA support).
    pub residency: Option<NodeResidency>,
    /// Why a `huge_pages="prefer"` ring got normal pages.
    pub huge_fallback: Option<String>,
}

/// The NUMA node `ring`'s creator bound it to, if any.
pub(crate) fn bound_node(ring: &RingMap) -> Option<usize> {
    let node = ring.header().publisher.0.numa_node.load(Ordering::Relaxed);
    (node != 0).then(|| node as usize - 1)
}

/// The report for `ring` as mapped by this end.
pub(crate) fn report(
    ring: &RingMap,
    end: EndMemory,
    huge_fallback: Option<String>,
) -> MemoryReport {
    let backing = ring.backing();
    MemoryReport {
        bytes_at: ring.bytes_at().to_owned(),
        page_size: backing.page_size,
        huge_pages: backing.huge,
        mapped_bytes: ring.mapping().len() as u64,
        end,
        numa_node: bound_node(ring),
        numa_nodes_online: crate::sys::placement::online_nodes().into_iter().collect(),
        residency: resident_nodes(ring.mapping(), backing.page_size as usize, false),
        huge_fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_memory_round_trips() {
        for m in [
            EndMemory::default(),
            EndMemory {
                locked: true,
                prefaulted: false,
                pinned_cpu: Some(0),
            },
            EndMemory {
                locked: false,
                prefaulted: true,
                pinned_cpu: Some(4095),
            },
        ] {
            assert_eq!(EndMemory::decode(m.encode()), m);
        }
        assert_eq!(EndMemory::default().encode(), 0);
    }
}
