//! Memory control end to end: huge-page rings, locking, prefaulting, NUMA
//! placement, pinning and inspection, through the public API.
//!
//! Huge-page tests need a host with free 2 MiB huge pages and a hugetlbfs
//! mount; where there are none they check the refusal instead, unless
//! `RINGCAST_REQUIRE_HUGE_PAGES=1` (set by CI, which reserves pages) makes
//! their absence a failure.
#![cfg(not(loom))]

use ringcast_core::shm::hugepages::{self, HugePages};
use ringcast_core::{
    info, CreateOptions, MemoryOptions, OpenError, Placement, PlacementError, Publisher, RingFault,
    Start, Subscriber,
};
use std::path::{Path, PathBuf};

const MIB2: u64 = 2 << 20;

/// A private directory on the host's 2 MiB hugetlbfs mount, if the host has
/// free huge pages and such a mount.
struct HugeDir(PathBuf);

impl HugeDir {
    fn new(tag: &str) -> Option<Self> {
        let free = hugepages::pools()
            .iter()
            .any(|p| p.page_size == MIB2 && p.available >= 4);
        let mount = hugepages::mounts()
            .into_iter()
            .find(|m| m.page_size == MIB2);
        let dir = match (free, mount) {
            (true, Some(m)) => m
                .path
                .join(format!("ringcast-test-{tag}-{}", std::process::id())),
            _ => {
                assert!(
                    std::env::var_os("RINGCAST_REQUIRE_HUGE_PAGES").is_none(),
                    "RINGCAST_REQUIRE_HUGE_PAGES is set but the host has no free 2 MiB huge \
                     pages on a hugetlbfs mount: pools {:?}, mounts {:?}",
                    hugepages::pools(),
                    hugepages::mounts()
                );
                return None;
            }
        };
        std::fs::create_dir_all(&dir).unwrap();
        Some(Self(dir))
    }
}

impl Drop for HugeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn opts(dir: &Path, capacity: u64, slot_size: u32) -> CreateOptions {
    CreateOptions {
        dir: Some(dir.to_owned()),
        ..CreateOptions::new(capacity, slot_size)
    }
}

fn huge(dir: &Path, huge_dir: &Path, mode: HugePages) -> CreateOptions {
    CreateOptions {
        placement: Placement {
            huge_pages: mode,
            huge_dir: Some(huge_dir.to_owned()),
            ..Placement::default()
        },
        ..opts(dir, 1024, 200)
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn huge_page_ring_is_found_by_name_and_removed_whole() {
    let Some(hd) = HugeDir::new("byname") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut publisher =
        Publisher::create("h", &huge(dir.path(), &hd.0, HugePages::Require)).unwrap();
    let report = publisher.memory();
    assert!(report.huge_pages, "{report:?}");
    assert_eq!(report.page_size, MIB2);
    assert_eq!(report.mapped_bytes % MIB2, 0);
    assert!(report.bytes_at.starts_with(&hd.0), "{report:?}");
    assert!(report.end.prefaulted);
    // The name in the ring directory links to the hugetlbfs file.
    let link = dir.path().join("h.ring");
    assert_eq!(std::fs::read_link(&link).unwrap(), report.bytes_at);

    let mut sub = Subscriber::attach("h", Some(dir.path()), Start::Oldest).unwrap();
    assert!(sub.memory().huge_pages);
    for i in 0..3000u32 {
        publisher.publish(&i.to_le_bytes().repeat(10)).unwrap();
    }
    let mut buf = [0u8; 200];
    let mut got = Vec::new();
    while let Some(n) = sub.try_recv(&mut buf).unwrap() {
        got.push(u32::from_le_bytes(buf[..4].try_into().unwrap()));
        assert_eq!(n, 40);
    }
    // Lapped: a run of the newest messages, in order, every other one lost.
    let first = got[0];
    assert!(got.len() <= 1024 && *got.last().unwrap() == 2999);
    assert!(
        got.iter().copied().eq(first..3000),
        "not one run: {first}.."
    );
    assert_eq!(sub.lost() + sub.received(), 3000);

    let report = info::inspect("h", Some(dir.path())).unwrap();
    assert!(report.huge_pages && report.page_size == MIB2);
    assert_eq!(report.subscribers.len(), 1);
    assert!(report.publisher_memory.prefaulted);

    publisher.unlink().unwrap();
    assert!(!link.exists());
    assert!(files_in(&hd.0).is_empty(), "{:?}", files_in(&hd.0));
}

#[test]
fn huge_page_ring_is_taken_over_after_its_publisher_goes() {
    let Some(hd) = HugeDir::new("takeover") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let o = huge(dir.path(), &hd.0, HugePages::Require);
    let mut first = Publisher::create("t", &o).unwrap();
    first.publish(b"one").unwrap();
    drop(first);
    let mut second = Publisher::create(
        "t",
        &CreateOptions {
            exist_ok: true,
            ..o.clone()
        },
    )
    .unwrap();
    assert_eq!(second.publish(b"two").unwrap(), 1);
    assert!(second.memory().huge_pages);
    // A creator that requires huge pages refuses to take over a normal ring.
    let _plain = Publisher::create("n", &opts(dir.path(), 8, 8)).unwrap();
    drop(_plain);
    let err = Publisher::create(
        "n",
        &CreateOptions {
            exist_ok: true,
            ..huge(dir.path(), &hd.0, HugePages::Require)
        },
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, OpenError::HugePagesUnavailable { .. }),
        "{err}"
    );
    second.unlink().unwrap();
}

#[test]
fn stale_huge_page_files_are_removed_at_the_next_creation() {
    let Some(hd) = HugeDir::new("stale") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let o = huge(dir.path(), &hd.0, HugePages::Require);
    let publisher = Publisher::create("s", &o).unwrap();
    let file = publisher.memory().bytes_at;
    // Someone removes the ring's name by hand; its creator then dies (here:
    // the name's pid part is rewritten to a pid that cannot exist).
    std::fs::remove_file(dir.path().join("s.ring")).unwrap();
    drop(publisher);
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    let mut parts: Vec<&str> = name.split('.').collect();
    let n = parts.len();
    parts[n - 3] = "4194304000";
    let dead = hd.0.join(parts.join("."));
    std::fs::rename(&file, &dead).unwrap();
    let again = Publisher::create("s", &o).unwrap();
    assert!(
        !dead.exists(),
        "stale huge-page file {dead:?} was not removed"
    );
    again.unlink().unwrap();
    assert!(files_in(&hd.0).is_empty());
}

#[test]
fn prefer_falls_back_and_require_refuses_where_there_are_no_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let not_huge = tempfile::tempdir().unwrap();
    let mut publisher =
        Publisher::create("p", &huge(dir.path(), not_huge.path(), HugePages::Prefer)).unwrap();
    let report = publisher.memory();
    assert!(!report.huge_pages);
    let why = report.huge_fallback.expect("a reason for the fallback");
    assert!(why.contains("not on a hugetlbfs filesystem"), "{why}");
    publisher.publish(b"x").unwrap();

    let err = Publisher::create("r", &huge(dir.path(), not_huge.path(), HugePages::Require))
        .err()
        .unwrap();
    assert!(
        matches!(err, OpenError::HugePagesUnavailable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("RINGCAST_HUGE_DIR"), "{err}");
    assert!(!dir.path().join("r.ring").exists());
}

#[test]
fn require_names_the_pool_to_raise_when_pages_run_short() {
    // More 2 MiB pages than any pool here has free.
    let available = hugepages::pools()
        .iter()
        .find(|p| p.page_size == MIB2)
        .map_or(0, |p| p.available);
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        placement: Placement {
            huge_pages: HugePages::Require,
            huge_page_size: Some(MIB2),
            ..Placement::default()
        },
        ..opts(dir.path(), 1 << 16, (available as u32 + 2) * 32 + 64)
    };
    let err = Publisher::create("big", &o).err().unwrap();
    let msg = err.to_string();
    assert!(
        matches!(err, OpenError::HugePagesUnavailable { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("nr_hugepages") || msg.contains("mount") || msg.contains("offers no"),
        "{msg}"
    );
    assert!(!dir.path().join("big.ring").exists());
}

#[test]
fn locked_prefaulted_and_placed_rings_report_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = ringcast_core::sys::placement::node_of_cpu(
        *ringcast_core::sys::placement::thread_cpus()
            .unwrap()
            .iter()
            .next()
            .unwrap(),
    )
    .unwrap();
    let o = CreateOptions {
        placement: Placement {
            numa_node: Some(node),
            ..Placement::default()
        },
        memory: MemoryOptions {
            lock: true,
            prefault: true,
            pin_cpu: None,
        },
        ..opts(dir.path(), 256, 64)
    };
    let (soft, _) = ringcast_core::memory::memlock_limits();
    let publisher = match Publisher::create("m", &o) {
        Ok(p) => p,
        // Unprivileged with a small RLIMIT_MEMLOCK: the documented refusal.
        Err(e @ OpenError::MemoryLockFailed { .. }) => {
            assert!(soft.is_some(), "{e}");
            assert!(e.to_string().contains("RLIMIT_MEMLOCK"), "{e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let report = publisher.memory();
    assert!(report.end.locked && report.end.prefaulted);
    assert_eq!(report.numa_node, Some(node));
    let residency = report.residency.expect("a NUMA kernel");
    assert_eq!(residency.not_resident, 0, "{residency:?}");
    assert_eq!(
        residency.by_node.keys().copied().collect::<Vec<_>>(),
        vec![node]
    );

    let sub = Subscriber::attach_with(
        "m",
        Some(dir.path()),
        Start::Latest,
        &MemoryOptions {
            lock: true,
            prefault: true,
            pin_cpu: None,
        },
    )
    .unwrap();
    let seen = info::inspect("m", Some(dir.path())).unwrap();
    assert!(seen.publisher_memory.locked);
    assert!(seen.subscribers[0].memory.locked && seen.subscribers[0].memory.prefaulted);
    assert_eq!(seen.numa_node, Some(node));
    drop(sub);
}

#[test]
fn bad_nodes_and_cpus_are_refused_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let o = CreateOptions {
        placement: Placement {
            numa_node: Some(4000),
            ..Placement::default()
        },
        ..opts(dir.path(), 8, 8)
    };
    let err = Publisher::create("n", &o).err().unwrap();
    assert!(
        matches!(
            err,
            OpenError::Placement(PlacementError::NumaNodeUnavailable { node: 4000, .. })
        ),
        "{err}"
    );
    let o = CreateOptions {
        memory: MemoryOptions {
            pin_cpu: Some(100_000),
            ..MemoryOptions::default()
        },
        ..opts(dir.path(), 8, 8)
    };
    let err = Publisher::create("n", &o).err().unwrap();
    assert!(
        matches!(
            err,
            OpenError::Placement(PlacementError::CpuUnavailable { cpu: 100_000, .. })
        ),
        "{err}"
    );
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn a_link_to_a_file_outside_hugetlbfs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::write(&elsewhere, vec![0u8; 8192]).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.path().join("x.ring")).unwrap();
    let err = Subscriber::attach("x", Some(dir.path()), Start::Latest)
        .err()
        .unwrap();
    assert!(
        matches!(err, OpenError::Fault(RingFault::Corrupt { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("not on a hugetlbfs"), "{err}");
    // A link whose huge-page file was removed by hand.
    std::os::unix::fs::symlink(dir.path().join("gone.file"), dir.path().join("g.ring")).unwrap();
    let err = Subscriber::attach("g", Some(dir.path()), Start::Latest)
        .err()
        .unwrap();
    assert!(
        matches!(err, OpenError::Fault(RingFault::Corrupt { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("which is gone"), "{err}");
}

#[test]
fn a_refused_end_gives_its_thread_its_cpus_back() {
    let dir = tempfile::tempdir().unwrap();
    std::thread::spawn(move || {
        let before = ringcast_core::sys::placement::thread_cpus().unwrap();
        let cpu = *before.iter().next_back().unwrap();
        let pin = MemoryOptions {
            pin_cpu: Some(cpu),
            ..MemoryOptions::default()
        };
        let err = Subscriber::attach_with("missing", Some(dir.path()), Start::Latest, &pin)
            .err()
            .unwrap();
        assert!(matches!(err, OpenError::NotFound { .. }), "{err}");
        assert_eq!(
            ringcast_core::sys::placement::thread_cpus().unwrap(),
            before
        );
        // A successful one stays pinned.
        let _p = Publisher::create(
            "here",
            &CreateOptions {
                memory: pin,
                ..opts(dir.path(), 8, 8)
            },
        )
        .unwrap();
        assert_eq!(
            ringcast_core::sys::placement::thread_cpus().unwrap(),
            std::collections::BTreeSet::from([cpu])
        );
    })
    .join()
    .unwrap();
}
