//! Writes the seed corpus of the `itch_decode`, `moldudp64` and `pcap` fuzz targets
//! (fuzz/seeds/<target>/, one file per seed named by its FNV-1a hash) from
//! a small generated day.
//!
//! ```sh
//! cargo run -p ringcast-feed --example fuzz_seeds -- fuzz/seeds
//! ```

use std::path::Path;

use ringcast_feed::gen::{generate, itch_bytes, DayConfig};
use ringcast_feed::mold::{PacketBuilder, RetransmitRequest};
use ringcast_feed::pcap::PcapngWriter;
use std::net::{Ipv4Addr, SocketAddrV4};

fn save(root: &Path, target: &str, data: &[u8]) -> std::io::Result<()> {
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let dir = root.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{hash:016x}")), data)
}

fn main() -> std::io::Result<()> {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/seeds".to_string());
    let root = Path::new(&root);
    let day: Vec<_> = generate(3, 400).collect();
    // itch_decode: single messages of several types, and a short file.
    let mut seen = std::collections::BTreeSet::new();
    for m in &day {
        if seen.insert(m.as_bytes()[0]) {
            save(root, "itch_decode", m.as_bytes())?;
        }
    }
    let file = itch_bytes(&DayConfig::new(3, 60));
    save(root, "itch_decode", &file[..file.len().min(1200)])?;
    // moldudp64: a packet of messages, a heartbeat, an end of session, a
    // retransmission request.
    let session = *b"SEED000001";
    let mut b = PacketBuilder::with_max_payload(session, 1, 600);
    let mut first = None;
    for m in &day {
        if let Some(p) = b.push(m.as_bytes()).expect("a message fits a packet") {
            first.get_or_insert(p);
        }
    }
    let first = first.expect("several packets");
    save(root, "moldudp64", &first)?;
    // pcap: a pcapng section of two interfaces and three datagrams, and a
    // classic pcap file (little-endian, microseconds) of one Ethernet frame.
    let mut w = PcapngWriter::new(Vec::new())?;
    w.add_interface("line A")?;
    w.add_interface("retransmissions")?;
    let (from, to) = (
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5000),
        SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 31001),
    );
    w.write_udp(0, 1_700_000_000_000_000_000, from, to, &first[..200])?;
    w.write_udp(0, 1_700_000_000_000_001_000, from, to, &b.heartbeat())?;
    w.write_udp(1, 1_700_000_000_000_002_000, to, from, &b.end_of_session())?;
    save(root, "pcap", &w.into_inner())?;
    let mut classic = Vec::new();
    for v in [
        0xA1B2_C3D4u32,
        0x0004_0002,
        0,
        0,
        65535,
        1,
        1,
        2,
        14 + 28 + 4,
        14 + 28 + 4,
    ] {
        classic.extend_from_slice(&v.to_le_bytes());
    }
    classic.extend_from_slice(&[1, 0, 0x5E, 1, 1, 1, 2, 0, 0, 0, 0, 1, 8, 0]);
    classic.extend_from_slice(&ringcast_feed::pcap::ipv4::udp_headers(from, to, 4, 0));
    classic.extend_from_slice(b"ping");
    save(root, "pcap", &classic)?;
    b.flush();
    save(root, "moldudp64", &b.heartbeat())?;
    save(root, "moldudp64", &b.end_of_session())?;
    save(
        root,
        "moldudp64",
        &RetransmitRequest {
            session,
            sequence: 5,
            count: 10,
        }
        .encode(),
    )?;
    Ok(())
}
