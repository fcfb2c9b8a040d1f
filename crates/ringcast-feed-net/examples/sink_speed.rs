//! Times the ring sink alone: every message of an ITCH file decoded,
//! turned into its record and published into its type's ring.
//! Usage: cargo run --release -p ringcast-feed-net --example sink_speed -- FILE
use ringcast_feed_net::handler::Deliver;
use ringcast_feed_net::rings::{TopicOptions, TopicRings};
use ringcast_feed_net::store::MessageStore;
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("an ITCH file");
    let store = MessageStore::from_itch(std::fs::read(path).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = TopicOptions::new("bench");
    options.dir = Some(dir.path().to_owned());
    let mut rings = TopicRings::create(&options).unwrap();
    for round in 0..3 {
        let t = Instant::now();
        for seq in 1..=store.len() {
            rings.message(seq, store.get(seq).unwrap(), 1).unwrap();
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "round {round}: {} messages in {s:.3} s: {:.1} M msgs/s, {:.0} ns/msg",
            store.len(),
            store.len() as f64 / s / 1e6,
            s * 1e9 / store.len() as f64
        );
    }
}
