//! Huge pages: which hugetlbfs filesystems the host has mounted, how many
//! huge pages are free, and where a huge-page ring's file goes.
//!
//! A huge-page ring's bytes live in a file on a hugetlbfs mount (so any
//! process can map it, as with a file under /dev/shm); its name in the ring
//! directory is a symbolic link to that file (see [`crate::shm::backing`]). This
//! module only answers questions about the host; when the host cannot give a
//! ring huge pages, the answer says exactly what to configure.

use crate::sys::fs::{self as sysfs, FsKind};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Where the kernel describes its huge page pools.
const POOLS_DIR: &str = "/sys/kernel/mm/hugepages";

/// Whether a ring asks for huge pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HugePages {
    /// Normal pages.
    #[default]
    Off,
    /// Huge pages when the host offers them, else normal pages (and the
    /// creator is told why).
    Prefer,
    /// Huge pages or an error saying what to configure.
    Require,
}

/// The filesystem a ring file lives on, as far as memory is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backing {
    /// Size of the pages backing the file, in bytes.
    pub page_size: u64,
    /// The file is on hugetlbfs (huge pages, never swapped).
    pub huge: bool,
    /// The file is on tmpfs (/dev/shm).
    pub tmpfs: bool,
}

/// The backing of an open file (normal pages if the filesystem cannot be told).
pub fn backing_of(file: &File) -> Backing {
    backing_from(sysfs::fs_kind(file))
}

/// The backing of files created in `dir` (`None`: it cannot be inspected).
fn backing_of_dir(dir: &Path) -> Option<Backing> {
    sysfs::fs_kind_at(dir).map(|kind| backing_from(Some(kind)))
}

/// What a `statfs` answer says about the pages under a file; normal pages
/// when there is no answer.
fn backing_from(kind: Option<FsKind>) -> Backing {
    match kind {
        Some(FsKind::Hugetlbfs { page_size }) => Backing {
            page_size,
            huge: true,
            tmpfs: false,
        },
        _ => Backing {
            page_size: base_page_size(),
            huge: false,
            tmpfs: kind == Some(FsKind::Tmpfs),
        },
    }
}

/// The normal page size.
pub fn base_page_size() -> u64 {
    crate::sys::vm::page_size().unwrap_or(4096)
}

/// One of the kernel's huge page pools (`/sys/kernel/mm/hugepages/*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// Page size in bytes.
    pub page_size: u64,
    /// Pages in the pool (`nr_hugepages`).
    pub total: u64,
    /// Pages neither in use nor promised to a mapping (free minus reserved).
    pub available: u64,
}

/// The host's huge page pools, smallest page size first.
pub fn pools() -> Vec<Pool> {
    let mut pools: Vec<Pool> = std::fs::read_dir(POOLS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let kb: u64 = file
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            let read = |f: &str| -> Option<u64> {
                std::fs::read_to_string(e.path().join(f))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            };
            let free = read("free_hugepages")?;
            let reserved = read("resv_hugepages").unwrap_or(0);
            Some(Pool {
                page_size: kb * 1024,
                total: read("nr_hugepages")?,
                available: free.saturating_sub(reserved),
            })
        })
        .collect();
    pools.sort_by_key(|p| p.page_size);
    pools
}

/// A mounted hugetlbfs filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Mount point.
    pub path: PathBuf,
    /// Size of its pages in bytes.
    pub page_size: u64,
}

/// The hugetlbfs filesystems mounted in this process's namespace.
pub fn mounts() -> Vec<Mount> {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let default = default_huge_page_size();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind, options) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            if kind != "hugetlbfs" {
                return None;
            }
            let page_size = options
                .split(',')
                .find_map(|o| o.strip_prefix("pagesize="))
                .and_then(parse_size)
                .or(default)?;
            Some(Mount {
                path: PathBuf::from(unescape_mount_path(point)),
                page_size,
            })
        })
        .collect()
}

/// The kernel's default huge page size (`Hugepagesize` in /proc/meminfo).
fn default_huge_page_size() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("Hugepagesize:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `2M`, `1G`, `2048k`, `1024M`, plain bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// Mount points in /proc/self/mounts escape blanks as octal (`\040`).
fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Ok(v) = u8::from_str_radix(&raw[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `2 MiB`, `1 GiB`, `4 KiB`.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The size as the kernel's mount option spells it (`2M`, `1G`).
fn option_size(bytes: u64) -> String {
    if bytes % (1 << 30) == 0 {
        format!("{}G", bytes >> 30)
    } else if bytes % (1 << 20) == 0 {
        format!("{}M", bytes >> 20)
    } else {
        format!("{}K", bytes >> 10)
    }
}

/// Where a huge-page ring's file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Directory on a hugetlbfs mount.
    pub dir: PathBuf,
    /// Its page size in bytes.
    pub page_size: u64,
}

/// Picks the hugetlbfs directory for a ring of `len` bytes. `page_size`: the
/// caller's choice (else 1 GiB pages for rings of at least 1 GiB when the
/// host has them, 2 MiB pages otherwise). `dir`: the caller's directory
/// (else `$RINGCAST_HUGE_DIR`, else `ringcast/` on a matching mount).
/// The error says what is missing and what to configure.
pub fn choose(len: u64, page_size: Option<u64>, dir: Option<&Path>) -> Result<Target, String> {
    let pools = pools();
    let from_env = std::env::var_os("RINGCAST_HUGE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(dir) = dir.map(Path::to_owned).or(from_env) {
        return choose_in(&dir, len, page_size, &pools);
    }
    let candidates: Vec<u64> = match page_size {
        Some(size) => vec![size],
        None => {
            // The smallest huge page size always; larger ones only for rings
            // that fill at least one of their pages. Largest first.
            let smallest = pools
                .first()
                .map(|p| p.page_size)
                .or_else(default_huge_page_size)
                .unwrap_or(2 << 20);
            let mut sizes: Vec<u64> = pools
                .iter()
                .map(|p| p.page_size)
                .filter(|&s| s == smallest || len >= s)
                .collect();
            if sizes.is_empty() {
                sizes.push(smallest);
            }
            sizes.reverse();
            sizes
        }
    };
    let mounts = mounts();
    let mut first_reason = None;
    for size in candidates.iter().copied() {
        let reason = match pool_problem(&pools, size, len) {
            Some(reason) => reason,
            None => match mounts.iter().find(|m| m.page_size == size) {
                Some(m) => {
                    return Ok(Target {
                        dir: m.path.join("ringcast"),
                        page_size: size,
                    })
                }
                None => format!(
                    "no hugetlbfs filesystem with {} pages is mounted; mount one as root \
                     (mkdir -p /dev/hugepages && mount -t hugetlbfs -o pagesize={},mode=1777 \
                     none /dev/hugepages) or set RINGCAST_HUGE_DIR to a directory on one",
                    human_size(size),
                    option_size(size)
                ),
            },
        };
        // Report the problem with the size most rings use (the smallest).
        first_reason = Some(reason);
    }
    Err(first_reason.unwrap_or_else(|| "this host offers no huge pages".to_owned()))
}

/// `choose` with a directory given by the caller.
fn choose_in(
    dir: &Path,
    len: u64,
    page_size: Option<u64>,
    pools: &[Pool],
) -> Result<Target, String> {
    let probe = if dir.exists() {
        dir
    } else {
        dir.parent().unwrap_or(dir)
    };
    let backing = backing_of_dir(probe).ok_or_else(|| {
        format!(
            "huge-page directory {} does not exist and cannot be inspected; create it on a \
             hugetlbfs mount or point RINGCAST_HUGE_DIR elsewhere",
            dir.display()
        )
    })?;
    if !backing.huge {
        return Err(format!(
            "huge-page directory {} is not on a hugetlbfs filesystem; point huge_dir (or \
             RINGCAST_HUGE_DIR) at a directory on a hugetlbfs mount",
            dir.display()
        ));
    }
    if let Some(size) = page_size.filter(|&s| s != backing.page_size) {
        return Err(format!(
            "huge-page directory {} has {} pages but {} pages were requested; use a mount \
             with that page size, or leave huge_page_size unset",
            dir.display(),
            human_size(backing.page_size),
            human_size(size)
        ));
    }
    match pool_problem(pools, backing.page_size, len) {
        Some(reason) => Err(reason),
        None => Ok(Target {
            dir: dir.to_owned(),
            page_size: backing.page_size,
        }),
    }
}

/// Why the pool of `size` pages cannot hold `len` bytes, if it cannot.
fn pool_problem(pools: &[Pool], size: u64, len: u64) -> Option<String> {
    let needed = len.div_ceil(size);
    let knob = if Some(size) == default_huge_page_size() {
        "sysctl -w vm.nr_hugepages=N".to_owned()
    } else {
        format!(
            "echo N > {POOLS_DIR}/hugepages-{}kB/nr_hugepages",
            size >> 10
        )
    };
    let Some(pool) = pools.iter().find(|p| p.page_size == size) else {
        let offered: Vec<String> = pools.iter().map(|p| human_size(p.page_size)).collect();
        return Some(format!(
            "this kernel offers no {} huge pages (it offers: {}); pick one of those sizes",
            human_size(size),
            if offered.is_empty() {
                "none".to_owned()
            } else {
                offered.join(", ")
            }
        ));
    };
    if pool.total == 0 {
        return Some(format!(
            "no {} huge pages are reserved on this host (the ring needs {needed}); reserve \
             them as root: {knob} with N >= {needed}, or hugepages=N on the kernel command line",
            human_size(size)
        ));
    }
    if pool.available < needed {
        return Some(format!(
            "the ring needs {needed} huge pages of {} but only {} of the host's {} are free; \
             raise the pool as root ({knob} with N >= {}) or stop what holds them",
            human_size(size),
            pool.available,
            pool.total,
            pool.total + needed - pool.available
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_sizes() {
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("1024M"), Some(1 << 30));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("2048k"), Some(2 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("2X"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(
            unescape_mount_path("/mnt/huge\\040pages"),
            "/mnt/huge pages"
        );
        assert_eq!(unescape_mount_path("/dev/hugepages"), "/dev/hugepages");
        assert_eq!(unescape_mount_path("/x\\"), "/x\\");
    }

    #[test]
    fn names_sizes() {
        assert_eq!(human_size(2 << 20), "2 MiB");
        assert_eq!(human_size(1 << 30), "1 GiB");
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(option_size(1 << 30), "1G");
        assert_eq!(option_size(2 << 20), "2M");
    }

    #[test]
    fn pool_problems_name_the_knob() {
        let pools = [Pool {
            page_size: 2 << 20,
            total: 4,
            available: 1,
        }];
        let short = pool_problem(&pools, 2 << 20, 5 << 20).unwrap();
        assert!(short.contains("needs 3 huge pages"), "{short}");
        assert!(short.contains("N >= 6"), "{short}");
        assert!(pool_problem(&pools, 2 << 20, 2 << 20).is_none());
        let empty = [Pool {
            total: 0,
            available: 0,
            ..pools[0]
        }];
        assert!(pool_problem(&empty, 2 << 20, 1)
            .unwrap()
            .contains("no 2 MiB huge pages are reserved"));
        assert!(pool_problem(&pools, 1 << 30, 1)
            .unwrap()
            .contains("offers no 1 GiB"));
    }
}
