//! Property tests: no input panics the ITCH decoder, the file readers or
//! the MoldUDP64 parser, and what they count adds up.

use std::collections::HashSet;

use proptest::prelude::*;
use ringcast_feed::file::{ReadError, SliceReader, StreamReader};
use ringcast_feed::gen::{itch_bytes, DayConfig};
use ringcast_feed::itch::{decode, DecodeError, MessageType};
use ringcast_feed::mold::{Packet, PacketBuilder, PacketKind, SequenceTracker};

/// A frame that is often nearly a message: a known type byte and a length
/// near its own.
fn near_message() -> impl Strategy<Value = Vec<u8>> {
    (0..MessageType::COUNT, -2i32..=2, any::<u64>()).prop_map(|(i, delta, seed)| {
        let t = MessageType::ALL[i];
        let len = (t.length() as i32 + delta).max(1) as usize;
        let mut m: Vec<u8> = (0..len)
            .map(|k| (seed >> (k % 8 * 8)) as u8 ^ k as u8)
            .collect();
        m[0] = t.byte();
        m
    })
}

/// Bytes after the last whole frame that can never be a frame: nothing, one
/// byte of a length prefix, or a prefix declaring more bytes than follow it.
/// (Two zero bytes would be a complete, empty frame: not a truncated tail.)
fn truncated_tail() -> impl Strategy<Value = Vec<u8>> {
    (0usize..4, any::<u16>(), any::<[u8; 2]>()).prop_map(|(n, declared, body)| match n {
        0 => Vec::new(),
        1 => vec![body[0]],
        _ => {
            let follows = n - 2;
            let declared = declared.max(follows as u16 + 1);
            let mut tail = declared.to_be_bytes().to_vec();
            tail.extend_from_slice(&body[..follows]);
            tail
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn decode_never_panics_and_accepts_exactly_the_table(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        match decode(&bytes) {
            Ok(m) => {
                prop_assert_eq!(m.bytes(), &bytes[..]);
                prop_assert_eq!(m.message_type().length(), bytes.len());
                prop_assert_eq!(m.record(0).as_bytes().len(), m.message_type().record().size);
            }
            Err(DecodeError::Empty) => prop_assert!(bytes.is_empty()),
            Err(DecodeError::UnknownType(t)) => prop_assert!(MessageType::from_byte(t).is_none()),
            Err(DecodeError::WrongLength { type_byte, expected, got }) => {
                prop_assert_eq!(MessageType::from_byte(type_byte).map(|t| t.length()), Some(expected));
                prop_assert!(got != expected);
            }
            Err(e) => prop_assert!(false, "decode never returns {:?}", e),
        }
    }

    #[test]
    fn near_messages_decode_iff_their_length_is_right(m in near_message()) {
        let t = MessageType::from_byte(m[0]).unwrap();
        prop_assert_eq!(decode(&m).is_ok(), m.len() == t.length());
    }

    #[test]
    fn file_readers_never_panic_and_counts_add_up(
        frames in prop::collection::vec(prop_oneof![near_message(), prop::collection::vec(any::<u8>(), 0..60)], 0..40),
        junk in truncated_tail(),
    ) {
        let mut file = Vec::new();
        for f in &frames {
            ringcast_feed::file::append_frame(&mut file, f);
        }
        file.extend_from_slice(&junk);
        let mut r = SliceReader::new(&file);
        let items: Vec<_> = r.by_ref().collect();
        let c = r.counts().clone();
        prop_assert_eq!(c.frames(), frames.len() as u64);
        prop_assert_eq!(c.bytes, file.len() as u64);
        prop_assert_eq!(items.len() as u64, c.frames() + c.truncated_tail);
        prop_assert!(c.truncated_tail <= 1);
        prop_assert_eq!(c.truncated_tail == 1, !junk.is_empty());
        let ok = items.iter().filter(|i| i.is_ok()).count() as u64;
        prop_assert_eq!(ok, c.messages());
        let tails = items.iter().filter(|i| matches!(i, Err(ReadError::TruncatedTail { .. }))).count() as u64;
        prop_assert_eq!(tails, c.truncated_tail);
        // The stream reader sees the same.
        let mut s = StreamReader::new(&file[..]);
        let mut n = 0;
        while let Some(item) = s.next_message().unwrap() {
            prop_assert_eq!(format!("{:?}", item), format!("{:?}", items[n]));
            n += 1;
        }
        prop_assert_eq!(n, items.len());
        prop_assert_eq!(s.counts(), &c);
    }

    #[test]
    fn any_bytes_read_as_a_file_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut r = SliceReader::new(&bytes);
        let n = r.by_ref().count() as u64;
        let c = r.counts();
        prop_assert_eq!(n, c.frames() + c.truncated_tail);
        prop_assert_eq!(c.bytes, bytes.len() as u64);
    }

    #[test]
    fn mold_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        match Packet::parse(&bytes) {
            Err(_) => prop_assert!(bytes.len() < 20),
            Ok(p) => {
                let blocks: Vec<_> = p.blocks().collect();
                prop_assert!(blocks.len() <= p.message_count() as usize);
                let whole = blocks.iter().all(|b| b.is_ok()) && blocks.len() == p.message_count() as usize;
                let used: usize = blocks.iter().filter_map(|b| b.as_ref().ok()).map(|b| b.len() + 2).sum();
                prop_assert_eq!(p.validate().is_ok(), whole && used == bytes.len() - 20);
                if p.kind() != PacketKind::Messages {
                    prop_assert!(blocks.is_empty());
                }
            }
        }
    }

    #[test]
    fn mold_packets_round_trip(
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 0..60),
        max in 142usize..3000,
        first in 1u64..1 << 40,
    ) {
        let mut b = PacketBuilder::with_max_payload(*b"PROPTEST  ", first, max);
        let mut packets = Vec::new();
        for m in &messages {
            packets.extend(b.push(m).unwrap());
        }
        packets.extend(b.flush());
        let mut next = first;
        let mut got = Vec::new();
        for p in &packets {
            prop_assert!(p.len() <= max);
            let p = Packet::parse(p).unwrap();
            prop_assert_eq!(p.validate(), Ok(()));
            prop_assert_eq!(p.sequence(), next);
            next = p.next_sequence();
            got.extend(p.blocks().map(|b| b.unwrap().to_vec()));
        }
        prop_assert_eq!(got, messages);
    }

    #[test]
    fn sequence_tracker_delivers_each_message_once_and_balances(
        packets in prop::collection::vec((1u64..300, 0u64..20), 0..60),
        heartbeat_at in prop::option::of(1u64..400),
        lost_below in prop::option::of(1u64..400),
    ) {
        let mut t = SequenceTracker::new(1);
        let mut delivered = HashSet::new();
        for (i, (first, count)) in packets.iter().enumerate() {
            for seq in *first..first + count {
                if t.accept(seq) {
                    prop_assert!(delivered.insert(seq), "{} delivered twice", seq);
                }
            }
            if i == packets.len() / 2 {
                if let Some(h) = heartbeat_at {
                    t.heartbeat(h);
                }
                if let Some(l) = lost_below {
                    t.declare_lost(l);
                }
            }
            prop_assert!(t.accounts_balance());
        }
        prop_assert_eq!(t.received(), delivered.len() as u64);
        let gaps = t.gaps();
        for w in gaps.windows(2) {
            prop_assert!(w[0].end < w[1].start);
        }
        for g in &gaps {
            prop_assert!(g.end <= t.expected() && g.start < g.end);
            for seq in g.clone() {
                prop_assert!(!delivered.contains(&seq));
            }
        }
    }
}

proptest! {
    // Each case generates a small day: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_damaged_day_reads_to_the_end(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..20)) {
        let mut file = itch_bytes(&DayConfig::new(9, 2_000));
        for (at, byte) in flips {
            let i = at.index(file.len());
            file[i] = byte;
        }
        let mut r = SliceReader::new(&file);
        let n = r.by_ref().count() as u64;
        prop_assert_eq!(n, r.counts().frames() + r.counts().truncated_tail);
        prop_assert_eq!(r.counts().bytes, file.len() as u64);
    }
}
