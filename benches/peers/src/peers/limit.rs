//! The physical limit every latency row is compared with: one cache line
//! bounced between the publisher's and the receiver's cores, round trip / 2.
//! Not a [`crate::harness::Peer`]: no messages move, so it has no sender or
//! receiver, and it is measured the way ring_latency measures it (the
//! shared `benches/ping_pong.rs`).

#[path = "../../../ping_pong.rs"]
mod ping_pong;

use crate::harness::{Ctx, WARMUP};
use crate::pinning::pin;

/// Name of the limit's row.
pub const LABEL: &str = "cache-line ping-pong rtt/2 (limit)";

/// One round: `n` round trips after [`WARMUP`] unrecorded ones, on the
/// publisher's and the first receiver's cores; each halved, ns.
pub fn round(ctx: &Ctx, n: u64) -> Vec<f64> {
    let round_trips = ping_pong::round_trip_ticks(
        WARMUP + n,
        WARMUP,
        || pin(ctx.publisher_core(), "ping-pong initiator"),
        || pin(ctx.receiver_core(0), "ping-pong responder"),
    );
    round_trips.iter().map(|&t| ctx.clock.ns(t) / 2.0).collect()
}
