//! Pieces the benchmark binaries share (rust_peers in benches/peers through
//! `#[path]`): a cheap cross-core clock, nearest-rank percentiles, and a
//! temporary ring directory in shared memory.

use ringcast_core::sys::clock::now_ns;
use std::path::Path;
use std::thread;
use std::time::Duration;

/// A raw, cheap clock: the time stamp counter on x86-64 (invariant TSC,
/// calibrated against CLOCK_MONOTONIC), CLOCK_MONOTONIC itself elsewhere.
#[derive(Clone, Copy)]
pub struct Clock {
    pub ns_per_tick: f64,
    pub source: &'static str,
}

/// Current clock reading, in ticks of [`Clock`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn ticks() -> u64 {
    // SAFETY: LFENCE and RDTSC are available on every x86-64 CPU (SSE2 is
    // part of the base ISA) and touch no memory. LFENCE keeps RDTSC from
    // executing before the preceding loads (e.g. the message) completed.
    unsafe {
        std::arch::x86_64::_mm_lfence();
        std::arch::x86_64::_rdtsc()
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub fn ticks() -> u64 {
    now_ns()
}

impl Clock {
    #[cfg(target_arch = "x86_64")]
    pub fn calibrate() -> Self {
        // Best of a few 50 ms windows, each bracketed tightly on both ends.
        let bracket = || loop {
            let a = ticks();
            let ns = now_ns();
            let b = ticks();
            if b - a < 2_000 {
                return (a / 2 + b / 2, ns);
            }
        };
        let mut rates = Vec::new();
        for _ in 0..3 {
            let (t0, n0) = bracket();
            thread::sleep(Duration::from_millis(50));
            let (t1, n1) = bracket();
            rates.push((n1 - n0) as f64 / (t1 - t0) as f64);
        }
        rates.sort_by(f64::total_cmp);
        Self {
            ns_per_tick: rates[1],
            source: "rdtsc (lfence), calibrated against CLOCK_MONOTONIC",
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn calibrate() -> Self {
        Self {
            ns_per_tick: 1.0,
            source: "clock_gettime(CLOCK_MONOTONIC)",
        }
    }

    pub fn ns(&self, ticks: u64) -> f64 {
        ticks as f64 * self.ns_per_tick
    }

    pub fn ticks_for_ns(&self, ns: f64) -> u64 {
        (ns / self.ns_per_tick).round() as u64
    }
}

/// Median cost of one `ticks()` reading, ns (included in every latency sample).
pub fn clock_overhead_ns(clock: &Clock) -> f64 {
    let mut d: Vec<u64> = (0..10_001)
        .map(|_| {
            let a = ticks();
            let b = ticks();
            b - a
        })
        .collect();
    d.sort_unstable();
    clock.ns(d[d.len() / 2])
}

/// Nearest-rank percentile of sorted `v`.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// A temporary ring directory, under /dev/shm when there is one.
pub fn ring_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::Builder::new()
            .prefix("ringcast-bench-")
            .tempdir_in(shm)
    } else {
        tempfile::Builder::new().prefix("ringcast-bench-").tempdir()
    };
    dir.expect("create temporary ring directory")
}
