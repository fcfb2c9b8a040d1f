//! MoldUDP64 packets from the network: any bytes parse as a packet or fail
//! (never a panic); blocks never exceed the count; a packet that validates
//! is rebuilt byte for byte from its blocks; the sequence tracker's
//! accounts balance whatever the packet claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_feed::itch::decode;
use ringcast_feed::mold::{Packet, PacketBuilder, PacketKind, RetransmitRequest, SequenceTracker};

fuzz_target!(|data: &[u8]| {
    let _ = RetransmitRequest::decode(data);
    let Ok(packet) = Packet::parse(data) else {
        assert!(data.len() < 20);
        return;
    };
    let mut tracker = SequenceTracker::new(1);
    let mut blocks = Vec::new();
    for (i, block) in packet.blocks().enumerate() {
        let Ok(block) = block else { break };
        let _ = decode(block);
        tracker.accept(packet.sequence().saturating_add(i as u64));
        blocks.push(block);
    }
    assert!(blocks.len() <= packet.message_count() as usize);
    assert!(tracker.accounts_balance());
    if packet.validate().is_ok() && packet.kind() == PacketKind::Messages {
        let mut builder = PacketBuilder::with_max_payload(*packet.session(), packet.sequence(), data.len());
        for b in &blocks {
            assert!(builder.push(b).expect("a block that came in a packet fits one").is_none());
        }
        assert_eq!(builder.flush().as_deref(), Some(data));
    }
});
