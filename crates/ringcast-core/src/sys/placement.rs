//! Where threads run and where memory lives: CPU pinning and NUMA nodes.
//!
//! A thread moved between cores loses its cache and its place in the
//! scheduler's queue; memory on a remote node costs a hop on every miss.
//! Pinning uses `sched_setaffinity` on the calling thread; the node facts come
//! from sysfs. A refusal names the CPUs or nodes that would be accepted.

use crate::error::{ArgumentError, PlacementError, Result, RingFault};
use std::collections::BTreeSet;

/// Largest CPU number `cpu_set_t` can name.
const MAX_CPUS: usize = libc::CPU_SETSIZE as usize;

/// Parses a kernel CPU or node list (`0-3,8,10-11`).
pub fn parse_list(text: &str) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let mut ends = part.splitn(2, '-').map(|n| n.trim().parse::<usize>());
        match (ends.next(), ends.next()) {
            (Some(Ok(a)), None) => {
                out.insert(a);
            }
            (Some(Ok(a)), Some(Ok(b))) if a <= b => out.extend(a..=b),
            _ => {}
        }
    }
    out
}

/// Formats a set the way the kernel does (`0-3,8`).
pub fn format_list(items: &BTreeSet<usize>) -> String {
    let mut parts = Vec::new();
    let mut iter = items.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(",")
    }
}

fn read_list(path: &str) -> Option<BTreeSet<usize>> {
    std::fs::read_to_string(path).ok().map(|t| parse_list(&t))
}

/// CPUs that are online.
pub fn online_cpus() -> BTreeSet<usize> {
    read_list("/sys/devices/system/cpu/online").unwrap_or_else(|| {
        // SAFETY: sysconf has no memory effects.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
        (0..n).collect()
    })
}

/// CPUs the calling thread may run on now.
pub fn thread_cpus() -> Result<BTreeSet<usize>, PlacementError> {
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; the kernel writes at most
    // size_of::<cpu_set_t>() bytes into `set`.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        return Err(RingFault::io(
            "read the CPU affinity of",
            "this thread",
            std::io::Error::last_os_error(),
        )
        .into());
    }
    // SAFETY: CPU_ISSET reads the set for indices below CPU_SETSIZE.
    Ok((0..MAX_CPUS)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// CPUs this process's cpuset allows (`Cpus_allowed_list` of the process).
fn process_allowed_cpus() -> Option<BTreeSet<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))?;
    Some(parse_list(line.split_once(':')?.1))
}

/// Pins the calling thread to `cpus` (one or more); returns the CPUs it
/// could run on before, so that the caller can restore them.
pub fn pin_thread(cpus: &BTreeSet<usize>) -> Result<BTreeSet<usize>, PlacementError> {
    let online = online_cpus();
    let refuse = |cpu: &usize, why: &str| PlacementError::CpuUnavailable {
        cpu: *cpu,
        reason: why.to_owned(),
        online: format_list(&online),
    };
    if cpus.is_empty() {
        return Err(ArgumentError::NoCpus.into());
    }
    for cpu in cpus {
        if *cpu >= MAX_CPUS {
            return Err(refuse(
                cpu,
                "it is beyond any CPU number this system can have",
            ));
        }
        if !online.contains(cpu) {
            return Err(refuse(cpu, "it does not exist or is offline"));
        }
    }
    let before = thread_cpus()?;
    // SAFETY: as in `thread_cpus`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: cpu < CPU_SETSIZE (checked above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        let allowed = process_allowed_cpus().map(|a| format_list(&a));
        let cpu = cpus.iter().next().unwrap_or(&0);
        let why = match err.raw_os_error() {
            Some(libc::EINVAL) => format!(
                "this process's cpuset does not allow it (allowed: {}); pick an allowed CPU \
                 or widen the cpuset (cgroup cpuset.cpus, taskset, docker --cpuset-cpus)",
                allowed.as_deref().unwrap_or("unknown")
            ),
            Some(libc::EPERM) => "the kernel refused the affinity change (EPERM)".to_owned(),
            _ => format!("sched_setaffinity failed: {err}"),
        };
        return Err(refuse(cpu, &why));
    }
    Ok(before)
}

/// NUMA nodes that are online (`{0}` on a host without NUMA).
pub fn online_nodes() -> BTreeSet<usize> {
    read_list("/sys/devices/system/node/online")
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| BTreeSet::from([0]))
}

/// The NUMA node of `cpu`.
pub fn node_of_cpu(cpu: usize) -> Result<usize, PlacementError> {
    let online = online_cpus();
    if !online.contains(&cpu) {
        return Err(PlacementError::CpuUnavailable {
            cpu,
            reason: "it does not exist or is offline".to_owned(),
            online: format_list(&online),
        });
    }
    let nodes = online_nodes();
    for &node in &nodes {
        let path = format!("/sys/devices/system/node/node{node}/cpulist");
        if read_list(&path).is_some_and(|cpus| cpus.contains(&cpu)) {
            return Ok(node);
        }
    }
    // No NUMA topology in sysfs: everything is node 0.
    Ok(*nodes.iter().next().unwrap_or(&0))
}

/// Checks that `node` is an online NUMA node.
pub fn check_node(node: usize) -> Result<(), PlacementError> {
    let nodes = online_nodes();
    if nodes.contains(&node) {
        Ok(())
    } else {
        Err(PlacementError::NumaNodeUnavailable {
            node,
            online: format_list(&nodes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip() {
        let set = parse_list("0-3,8,10-11\n");
        assert_eq!(set, BTreeSet::from([0, 1, 2, 3, 8, 10, 11]));
        assert_eq!(format_list(&set), "0-3,8,10-11");
        assert_eq!(format_list(&BTreeSet::new()), "none");
        assert_eq!(parse_list("5-2,x"), BTreeSet::new());
    }

    #[test]
    fn pins_and_restores() {
        let before = thread_cpus().unwrap();
        let cpu = *before.iter().next().unwrap();
        let prev = pin_thread(&BTreeSet::from([cpu])).unwrap();
        assert_eq!(prev, before);
        assert_eq!(thread_cpus().unwrap(), BTreeSet::from([cpu]));
        pin_thread(&before).unwrap();
        assert_eq!(thread_cpus().unwrap(), before);
    }

    #[test]
    fn refuses_missing_cpus_and_nodes() {
        let err = pin_thread(&BTreeSet::from([MAX_CPUS + 5])).unwrap_err();
        assert!(
            matches!(err, PlacementError::CpuUnavailable { .. }),
            "{err}"
        );
        let err = pin_thread(&BTreeSet::from([MAX_CPUS - 1])).unwrap_err();
        assert!(err.to_string().contains("online CPUs"), "{err}");
        assert!(check_node(4000).is_err());
        let node = node_of_cpu(*online_cpus().iter().next().unwrap()).unwrap();
        check_node(node).unwrap();
    }
}
