//! The physical limit the benchmarks compare against: one cache line bounced
//! between two cores. Shared so that every binary measures the limit the same
//! way (ring_latency, and rust_peers in benches/peers through `#[path]`).

use crate::common::ticks;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;

/// A cache line of its own, so that ping and pong never share one.
#[repr(C, align(64))]
struct Line(AtomicU64);

/// Round trips of a cache line between two threads: the initiator writes
/// `ping`, the responder answers on `pong`. Each thread first runs its `pin`
/// (which pins it to its core). Returns the round-trip time, in ticks of
/// [`ticks`], of every round trip after the first `warmup` (`total - warmup`
/// values); one-way latency is half of each.
pub fn round_trip_ticks(
    total: u64,
    warmup: u64,
    pin_initiator: impl FnOnce() + Send,
    pin_responder: impl FnOnce() + Send,
) -> Vec<u64> {
    let ping = Line(AtomicU64::new(0));
    let pong = Line(AtomicU64::new(0));
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        s.spawn(|| {
            pin_responder();
            barrier.wait();
            for i in 1..=total {
                while ping.0.load(Ordering::Acquire) != i {}
                pong.0.store(i, Ordering::Release);
            }
        });
        s.spawn(|| {
            pin_initiator();
            let mut out = Vec::with_capacity(total.saturating_sub(warmup) as usize);
            barrier.wait();
            for i in 1..=total {
                let t0 = ticks();
                ping.0.store(i, Ordering::Release);
                while pong.0.load(Ordering::Acquire) != i {}
                let t1 = ticks();
                if i > warmup {
                    out.push(t1 - t0);
                }
            }
            out
        })
        .join()
        .expect("ping-pong initiator panicked")
    })
}
