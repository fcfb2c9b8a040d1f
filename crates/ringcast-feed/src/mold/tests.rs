use super::*;

const SESSION: Session = *b"20261203A ";

fn message(i: usize) -> Vec<u8> {
    // Any bytes are a message to MoldUDP64; vary the lengths.
    (0..(1 + i % 60)).map(|k| (i + k) as u8).collect()
}

#[test]
fn built_packets_parse_back_with_continuous_sequences() {
    let mut b = PacketBuilder::new(SESSION, 1);
    let mut packets = Vec::new();
    let sent: Vec<Vec<u8>> = (0..500).map(message).collect();
    for m in &sent {
        packets.extend(b.push(m).unwrap());
    }
    packets.extend(b.flush());
    assert_eq!(b.flush(), None);
    assert!(packets.len() > 5);
    let mut next = 1;
    let mut received = Vec::new();
    for p in &packets {
        assert!(p.len() <= DEFAULT_MAX_PAYLOAD);
        let packet = Packet::parse(p).unwrap();
        packet.validate().unwrap();
        assert_eq!(
            (packet.session(), packet.kind()),
            (&SESSION, PacketKind::Messages)
        );
        assert_eq!(packet.sequence(), next);
        next = packet.next_sequence();
        received.extend(packet.blocks().map(|b| b.unwrap().to_vec()));
    }
    assert_eq!(received, sent);
    assert_eq!(next, 501);
    assert_eq!(b.next_sequence(), 501);
    // A packet is never cut early: the next message would not have fitted.
    for pair in packets.windows(2) {
        let first_of_next = Packet::parse(&pair[1])
            .unwrap()
            .blocks()
            .next()
            .unwrap()
            .unwrap()
            .len();
        assert!(pair[0].len() + BLOCK_PREFIX_LEN + first_of_next > DEFAULT_MAX_PAYLOAD);
    }
}

#[test]
fn heartbeat_and_end_of_session() {
    let mut b = PacketBuilder::new(SESSION, 41);
    b.push(b"xyz").unwrap();
    b.flush().unwrap();
    let hb = b.heartbeat();
    let hb = Packet::parse(&hb).unwrap();
    assert_eq!(
        (
            hb.kind(),
            hb.sequence(),
            hb.message_count(),
            hb.next_sequence()
        ),
        (PacketKind::Heartbeat, 42, 0, 42)
    );
    assert_eq!(hb.blocks().count(), 0);
    let eos = b.end_of_session();
    let eos = Packet::parse(&eos).unwrap();
    assert_eq!(
        (eos.kind(), eos.count(), eos.sequence()),
        (PacketKind::EndOfSession, 0xFFFF, 42)
    );
    assert_eq!(eos.validate(), Ok(()));
}

#[test]
fn damaged_packets_are_errors() {
    assert_eq!(
        Packet::parse(&[0; 19]),
        Err(MoldError::ShortPacket { len: 19 })
    );
    let mut b = PacketBuilder::new(SESSION, 1);
    b.push(b"hello").unwrap();
    b.push(b"world!").unwrap();
    let p = b.flush().unwrap();
    // Cut inside the second block's body, then inside its length field.
    let cut = Packet::parse(&p[..p.len() - 1]).unwrap();
    let blocks: Vec<_> = cut.blocks().collect();
    assert_eq!(blocks[0], Ok(&b"hello"[..]));
    assert_eq!(
        blocks[1],
        Err(MoldError::ShortBlock {
            index: 1,
            needed: 8,
            available: 7
        })
    );
    assert_eq!(blocks.len(), 2);
    let cut = Packet::parse(&p[..HEADER_LEN + 7 + 1]).unwrap();
    assert_eq!(
        cut.validate(),
        Err(MoldError::ShortBlock {
            index: 1,
            needed: 0,
            available: 1
        })
    );
    let mut long = p.clone();
    long.extend_from_slice(&[1, 2, 3]);
    assert_eq!(
        Packet::parse(&long).unwrap().validate(),
        Err(MoldError::TrailingBytes { len: 3 })
    );
}

#[test]
fn builder_refuses_what_cannot_fit_and_splits_at_the_limit() {
    let mut b = PacketBuilder::with_max_payload(SESSION, 1, 40);
    assert_eq!(b.push(&[0; 19]), Err(MoldError::TooLong { len: 19 }));
    assert_eq!(
        b.push(&vec![0; 70_000]),
        Err(MoldError::TooLong { len: 70_000 })
    );
    assert_eq!(b.pending(), 0);
    // 18 bytes + 2 + 20 header = 40: exactly one per packet.
    assert_eq!(b.push(&[1; 18]), Ok(None));
    let first = b.push(&[2; 18]).unwrap().unwrap();
    assert_eq!(first.len(), 40);
    assert_eq!(Packet::parse(&first).unwrap().count(), 1);
    let second = b.flush().unwrap();
    assert_eq!(Packet::parse(&second).unwrap().sequence(), 2);
    // Empty messages: the count caps a packet at 0xFFFE messages.
    let mut b = PacketBuilder::with_max_payload(SESSION, 1, 1 << 20);
    let mut out = Vec::new();
    for _ in 0..0xFFFF {
        out.extend(b.push(&[]).unwrap());
    }
    assert_eq!(out.len(), 1);
    assert_eq!(Packet::parse(&out[0]).unwrap().count(), MAX_COUNT);
}

#[test]
fn retransmission_requests_round_trip() {
    let r = RetransmitRequest {
        session: SESSION,
        sequence: 1 << 40,
        count: 300,
    };
    let bytes = r.encode();
    assert_eq!(&bytes[..10], b"20261203A ");
    assert_eq!(&bytes[10..18], &(1u64 << 40).to_be_bytes());
    assert_eq!(&bytes[18..], &300u16.to_be_bytes());
    assert_eq!(RetransmitRequest::decode(&bytes), Ok(r));
    assert_eq!(
        RetransmitRequest::decode(&bytes[..19]),
        Err(MoldError::ShortPacket { len: 19 })
    );
    let parts: Vec<_> = RetransmitRequest::covering(SESSION, 10..25, 6)
        .map(|r| (r.sequence, r.count))
        .collect();
    assert_eq!(parts, vec![(10, 6), (16, 6), (22, 3)]);
    assert_eq!(RetransmitRequest::covering(SESSION, 5..5, 6).count(), 0);
    assert_eq!(
        RetransmitRequest::covering(SESSION, 0..u64::MAX, 0)
            .take(3)
            .count(),
        3
    );
}

#[test]
fn tracker_finds_gaps_fills_them_and_ignores_duplicates() {
    let mut t = SequenceTracker::new(1);
    assert_eq!(
        t.accept_packet(1, 3),
        PacketVerdict {
            fresh: 3,
            duplicates: 0,
            new_gap: None
        }
    );
    let v = t.accept_packet(7, 2);
    assert_eq!(
        v,
        PacketVerdict {
            fresh: 2,
            duplicates: 0,
            new_gap: Some(4..7)
        }
    );
    assert_eq!(
        (t.expected(), t.gaps().first(), t.gaps().len(), t.missing()),
        (9, Some(&(4..7)), 1, 3)
    );
    // A retransmission of 3..6 overlaps what we have (3) and fills 4, 5.
    assert_eq!(
        t.accept_packet(3, 3),
        PacketVerdict {
            fresh: 2,
            duplicates: 1,
            new_gap: None
        }
    );
    assert_eq!((t.gaps().first(), t.gaps().len()), (Some(&(6..7)), 1));
    assert!(!t.accept(8));
    assert!(t.accept(6));
    assert!(t.gaps().is_empty());
    assert_eq!((t.received(), t.duplicates(), t.lost()), (8, 2, 0));
    assert!(t.accounts_balance());
}

#[test]
fn tracker_splits_gaps_and_declares_losses() {
    let mut t = SequenceTracker::new(1);
    assert!(t.accept(10));
    assert!(t.accept(5));
    assert_eq!(t.gaps(), vec![1..5, 6..10]);
    assert_eq!(t.heartbeat(15), Some(11..15));
    assert_eq!(t.heartbeat(12), None);
    assert_eq!(t.declare_lost(8), 4 + 2);
    assert_eq!(t.gaps(), vec![8..10, 11..15]);
    assert!(
        !t.accept(2),
        "a sequence declared lost is not delivered late"
    );
    assert!(t.accounts_balance());
    assert_eq!(t.declare_lost(u64::MAX), 6);
    assert_eq!((t.missing(), t.lost(), t.received()), (0, 12, 2));
    assert!(t.accounts_balance());
    assert!(!t.accept(u64::MAX), "no sequence could follow u64::MAX");
    assert!(t.accept(u64::MAX - 1));
    assert_eq!((t.out_of_range(), t.expected()), (1, u64::MAX));
    assert!(t.accounts_balance());
}
