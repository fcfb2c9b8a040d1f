//! What `ringcast info NAME` reports: a ring's layout, the memory under it
//! (page size, huge pages, NUMA node of its pages), and every end attached
//! to it with what each did to its mapping (locked, prefaulted, pinned).
//!
//! Inspecting maps the ring like a subscriber but claims no record and
//! writes nothing, so it never disturbs the publisher or the readers.

use crate::error::{OpenError, Result};
use crate::format::layout::{Layout, RECORD_ACTIVE, RECORD_EVICTED, RECORD_JOINING};
use crate::format::stage_name as stage;
use crate::memory::{self, EndMemory, NodeResidency};
use crate::shm::ring::PublisherStatus;
use crate::shm::ring::RingMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// Everything `ringcast info` shows about one ring.
#[derive(Debug, Clone)]
pub struct RingReport {
    /// The ring's name.
    pub name: String,
    /// Its name's path in the ring directory.
    pub path: PathBuf,
    /// The file holding its bytes (a hugetlbfs file for huge-page rings).
    pub bytes_at: PathBuf,
    /// Its immutable layout.
    pub layout: Layout,
    /// Offset of slot 0 (header and tables before it).
    pub header_len: usize,
    /// Bytes from one slot to the next.
    pub slot_stride: usize,
    /// Size of the ring file.
    pub file_len: u64,
    /// When it was created (Unix nanoseconds).
    pub created_unix_ns: u64,
    /// Size of the pages under it.
    pub page_size: u64,
    /// It is on huge pages (hugetlbfs).
    pub huge_pages: bool,
    /// It is on tmpfs.
    pub tmpfs: bool,
    /// The NUMA node its creator bound it to.
    pub numa_node: Option<usize>,
    /// The host's online NUMA nodes.
    pub numa_nodes_online: Vec<usize>,
    /// Where a sample of its pages are (`None`: no NUMA support in the kernel).
    pub residency: Option<NodeResidency>,
    /// The publisher side.
    pub publisher: PublisherStatus,
    /// What the current (or last) publisher did to its mapping.
    pub publisher_memory: EndMemory,
    /// Subscribers evicted from a bounded ring so far.
    pub evictions: u64,
    /// Subscriber records in use.
    pub subscribers: Vec<EndReport>,
    /// Producer records in use (multi-producer rings).
    pub producers: Vec<EndReport>,
    /// Stages whose subscriber left or died, with the progress their
    /// records remember (still holding back the subscribers gated after
    /// them; a stage restarted under the name resumes there).
    pub departed_stages: Vec<(String, u64)>,
}

/// One subscriber or producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndReport {
    /// Index in its table.
    pub index: usize,
    /// Its process.
    pub pid: u32,
    /// It holds its record's lock (its process lives).
    pub alive: bool,
    /// `joining`, `active`, `evicted` (subscribers) or `producing`.
    pub state: &'static str,
    /// Subscribers: the next sequence it reads. Producers: 0.
    pub position: u64,
    /// Subscribers: messages received; producers: messages published.
    pub count: u64,
    /// Subscribers: messages lost to lapping.
    pub lost: u64,
    /// What it did to its mapping.
    pub memory: EndMemory,
    /// Subscribers that are stages: the stage name.
    pub stage: Option<String>,
    /// Stages: messages processed (published to gated readers).
    pub processed: u64,
    /// Subscribers: how it waits, as it declared it (`"spin"`, `"yield"`,
    /// `"park"`, `"adaptive"` or `"unknown"`, see [`crate::wait::wait_name`]).
    /// Producers: `None`.
    pub wait: Option<&'static str>,
    /// Subscribers: its threads parked on the ring's futex right now.
    /// Producers: 0.
    pub parked: u32,
}

/// Inspects ring `name` in `dir` (`None`: the default directory).
pub fn inspect(name: &str, dir: Option<&Path>) -> Result<RingReport, OpenError> {
    let file = crate::shm::backing::open_named(name, dir)?;
    let ring = RingMap::open(file, name)?;
    let header = ring.header();
    let backing = ring.backing();
    let subscribers = (0..ring.records_in_use())
        .filter_map(|i| {
            let rec = ring.record(i);
            let pid = rec.pid.load(Ordering::Acquire);
            (pid != 0).then(|| EndReport {
                index: i,
                pid,
                alive: ring.record_owner_alive(i),
                state: match rec.state.load(Ordering::Relaxed) {
                    RECORD_JOINING => "joining",
                    RECORD_ACTIVE => "active",
                    RECORD_EVICTED => "evicted",
                    _ => "free",
                },
                position: rec.position.load(Ordering::Relaxed),
                count: rec.received.load(Ordering::Relaxed),
                lost: rec.lost.load(Ordering::Relaxed),
                memory: EndMemory::decode(rec.memory.load(Ordering::Relaxed)),
                stage: stage::name_in(rec),
                processed: rec.processed.load(Ordering::Relaxed),
                wait: Some(crate::wait::wait_name(rec.wait.load(Ordering::Relaxed))),
                parked: rec.parked.load(Ordering::Relaxed),
            })
        })
        .collect();
    let departed_stages = (0..ring.records_in_use())
        .map(|i| ring.record(i))
        .filter(|rec| rec.pid.load(Ordering::Acquire) == 0)
        .filter_map(|rec| Some((stage::name_in(rec)?, rec.processed.load(Ordering::Relaxed))))
        .collect();
    let producers = (0..ring.layout().max_producers as usize)
        .filter_map(|i| {
            let rec = ring.producer(i);
            let pid = rec.pid.load(Ordering::Acquire);
            (pid != 0).then(|| EndReport {
                index: i,
                pid,
                alive: ring.producer_owner_alive(i),
                state: "producing",
                position: 0,
                count: rec.published.load(Ordering::Relaxed),
                lost: 0,
                memory: EndMemory::decode(rec.memory.load(Ordering::Relaxed)),
                stage: None,
                processed: 0,
                wait: None,
                parked: 0,
            })
        })
        .collect();
    Ok(RingReport {
        name: name.to_owned(),
        path: ring.path().to_owned(),
        bytes_at: ring.bytes_at().to_owned(),
        layout: ring.layout().clone(),
        header_len: ring.layout().header_len(),
        slot_stride: ring.layout().slot_stride(),
        file_len: ring.mapping().len() as u64,
        created_unix_ns: header.created_unix_ns.load(Ordering::Relaxed),
        page_size: backing.page_size,
        huge_pages: backing.huge,
        tmpfs: backing.tmpfs,
        numa_node: memory::bound_node(&ring),
        numa_nodes_online: crate::sys::placement::online_nodes().into_iter().collect(),
        residency: memory::resident_nodes(ring.mapping(), backing.page_size as usize, true),
        publisher: ring.publisher_status(),
        publisher_memory: EndMemory::decode(header.publisher.0.memory.load(Ordering::Relaxed)),
        evictions: header.table.0.evictions.load(Ordering::Relaxed),
        subscribers,
        producers,
        departed_stages,
    })
}
