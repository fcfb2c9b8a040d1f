use super::*;
use crate::record::{read_le, FieldKind};

/// The lengths (type byte included) of NASDAQ TotalView-ITCH 5.0, as
/// published in the spec and decoded by itchfeed and itch5.
const SPEC_LENGTHS: [(u8, usize); 23] = [
    (b'S', 12),
    (b'R', 39),
    (b'H', 25),
    (b'Y', 20),
    (b'L', 26),
    (b'V', 35),
    (b'W', 12),
    (b'K', 28),
    (b'J', 35),
    (b'h', 21),
    (b'A', 36),
    (b'F', 40),
    (b'E', 31),
    (b'C', 36),
    (b'X', 23),
    (b'D', 19),
    (b'U', 35),
    (b'P', 44),
    (b'Q', 40),
    (b'B', 19),
    (b'I', 50),
    (b'N', 20),
    (b'O', 48),
];

/// A message of type `t` whose byte `i` (after the type) is `i`, so that
/// every field has a distinct, recognisable value.
fn patterned(t: MessageType) -> Vec<u8> {
    let mut m: Vec<u8> = (0..t.length()).map(|i| i as u8).collect();
    m[0] = t.byte();
    m
}

#[test]
fn the_table_has_the_spec_lengths_in_spec_order() {
    assert_eq!(MessageType::COUNT, 23);
    for (&t, &(byte, len)) in MessageType::ALL.iter().zip(SPEC_LENGTHS.iter()) {
        assert_eq!((t.byte(), t.length()), (byte, len), "{t:?}");
        assert_eq!(MessageType::from_byte(byte), Some(t));
        assert_eq!(message_length(byte), Some(len));
        assert_eq!(MessageType::ALL[t.index()], t);
    }
    let known = (0..=255u8)
        .filter(|&b| MessageType::from_byte(b).is_some())
        .count();
    assert_eq!(known, 23);
    assert_eq!(
        MessageType::ALL.iter().map(|t| t.length()).max(),
        Some(MAX_MESSAGE_LEN)
    );
}

#[test]
fn every_type_decodes_at_its_length_and_only_there() {
    for &t in MessageType::ALL {
        let m = patterned(t);
        let msg = decode(&m).unwrap();
        assert_eq!(msg.message_type(), t);
        assert_eq!(msg.bytes(), &m[..]);
        assert_eq!(msg.stock_locate(), 0x0102);
        assert_eq!(msg.tracking_number(), 0x0304);
        assert_eq!(msg.timestamp(), 0x05_06_07_08_09_0a);
        for cut in [m.len() - 1, 1] {
            assert_eq!(
                decode(&m[..cut]),
                Err(DecodeError::WrongLength {
                    type_byte: t.byte(),
                    expected: t.length(),
                    got: cut
                })
            );
        }
        let mut long = m.clone();
        long.push(0);
        assert!(
            matches!(decode(&long), Err(DecodeError::WrongLength { got, .. }) if got == m.len() + 1)
        );
    }
    assert_eq!(decode(&[]), Err(DecodeError::Empty));
    assert_eq!(decode(b"Z123"), Err(DecodeError::UnknownType(b'Z')));
    assert_eq!(decode(&[0]), Err(DecodeError::UnknownType(0)));
}

#[test]
fn add_order_fields_decode_at_their_offsets() {
    let m = MessageBuilder::new(MessageType::AddOrder, 7, 3, 34_200_000_000_123)
        .u64(0xdead_beef_0000_0042)
        .char(b'B')
        .u32(300)
        .ascii::<8>("AAPL")
        .u32(1_895_100)
        .finish()
        .unwrap()
        .to_vec();
    let Message::AddOrder(a) = decode(&m).unwrap() else {
        panic!("not an add order")
    };
    assert_eq!(a.stock_locate(), 7);
    assert_eq!(a.tracking_number(), 3);
    assert_eq!(a.timestamp(), 34_200_000_000_123);
    assert_eq!(a.order_reference_number(), 0xdead_beef_0000_0042);
    assert_eq!(a.buy_sell_indicator(), b'B');
    assert_eq!(a.shares(), 300);
    assert_eq!(a.stock(), b"AAPL    ");
    assert_eq!(crate::wire::text(a.stock()), "AAPL");
    assert_eq!(a.price(), 1_895_100);
    assert_eq!(AddOrder::from_bytes(&m), Ok(a));
    assert_eq!(
        OrderDelete::from_bytes(&m),
        Err(DecodeError::WrongType {
            expected: b'D',
            got: b'A'
        })
    );
    let shown = format!("{a:?}");
    assert!(
        shown.contains("stock: \"AAPL\"") && shown.contains("buy_sell_indicator: 'B'"),
        "{shown}"
    );
}

#[test]
fn hand_checked_offsets_of_the_irregular_types() {
    // Cross trade: shares are 8 bytes, the cross type is the last byte.
    let q = MessageBuilder::new(MessageType::CrossTrade, 1, 0, 5)
        .u64(1 << 40)
        .ascii::<8>("SPY")
        .u32(4_500_000)
        .u64(99)
        .char(b'O')
        .finish()
        .unwrap()
        .to_vec();
    let Ok(Message::CrossTrade(q)) = decode(&q) else {
        panic!()
    };
    assert_eq!(
        (
            q.shares(),
            q.cross_price(),
            q.match_number(),
            q.cross_type()
        ),
        (1 << 40, 4_500_000, 99, b'O')
    );
    // MWCB levels are Price(8).
    let v = MessageBuilder::new(MessageType::MwcbDeclineLevel, 0, 0, 1)
        .u64(300_000_000_000)
        .u64(2)
        .u64(3)
        .finish()
        .unwrap()
        .to_vec();
    let Ok(Message::MwcbDeclineLevel(v)) = decode(&v) else {
        panic!()
    };
    assert_eq!(
        (v.level1(), v.level2(), v.level3()),
        (300_000_000_000, 2, 3)
    );
    assert_eq!(
        MwcbDeclineLevel::RECORD
            .field("level1")
            .unwrap()
            .kind
            .scale(),
        8
    );
    // Replace: two references, then shares and price.
    let u = MessageBuilder::new(MessageType::OrderReplace, 2, 0, 1)
        .u64(10)
        .u64(11)
        .u32(100)
        .u32(250_000)
        .finish()
        .unwrap()
        .to_vec();
    let Ok(Message::OrderReplace(u)) = decode(&u) else {
        panic!()
    };
    assert_eq!(
        (
            u.original_order_reference_number(),
            u.new_order_reference_number(),
            u.shares(),
            u.price()
        ),
        (10, 11, 100, 250_000)
    );
}

#[test]
fn builder_refuses_a_wrong_field_sequence() {
    let short = MessageBuilder::new(MessageType::OrderDelete, 0, 0, 0);
    assert!(matches!(
        short.finish(),
        Err(DecodeError::WrongLength {
            expected: 19,
            got: 11,
            ..
        })
    ));
    let mut long = MessageBuilder::new(MessageType::SystemEvent, 0, 0, 0);
    for _ in 0..10 {
        long = long.u64(1);
    }
    assert!(long.finish().is_err());
}

#[test]
fn record_of_every_type_holds_every_field_little_endian() {
    for &t in MessageType::ALL {
        let m = patterned(t);
        let msg = decode(&m).unwrap();
        let layout = t.record();
        let rec = msg.record(0x1122_3344_5566_7788);
        let rec = rec.as_bytes();
        assert_eq!(rec.len(), layout.size, "{t:?}");
        assert_eq!(layout.size % 8, 0);
        assert_eq!((layout.type_byte, layout.name), (t.byte(), t.name()));
        assert_eq!(layout.const_name, t.name().to_uppercase());
        // Fields tile the record from 0 without overlap; the tail is zero padding.
        let mut at = 0;
        for f in layout.fields {
            assert_eq!(f.offset, at, "{t:?}.{}", f.name);
            at += f.kind.record_width();
        }
        assert!(at <= layout.size && layout.size - at < 8);
        assert!(rec[at..].iter().all(|&b| b == 0));
        assert_eq!(read_le(rec, &layout.fields[0]), Some(0x1122_3344_5566_7788));
        assert_eq!(
            read_le(rec, layout.field("timestamp").unwrap()),
            Some(msg.timestamp())
        );
        assert_eq!(
            read_le(rec, layout.field("stock_locate").unwrap()),
            Some(0x0102)
        );
        assert_eq!(
            read_le(rec, layout.field("tracking_number").unwrap()),
            Some(0x0304)
        );
        // Every body field equals the wire field, byte-swapped for integers.
        for f in &layout.fields[4..] {
            let wire_at = f.offset - crate::record::RECORD_BODY_SHIFT;
            let wire = &m[wire_at..wire_at + f.kind.wire_width()];
            match f.kind {
                FieldKind::Char | FieldKind::Ascii(_) => {
                    assert_eq!(
                        &rec[f.offset..f.offset + wire.len()],
                        wire,
                        "{t:?}.{}",
                        f.name
                    )
                }
                _ => {
                    let be = wire.iter().fold(0u64, |acc, &b| acc << 8 | b as u64);
                    assert_eq!(read_le(rec, f), Some(be), "{t:?}.{}", f.name);
                }
            }
        }
        // The slice writer agrees and refuses a short buffer.
        let mut out = [0xaau8; 64];
        assert_eq!(
            msg.write_record(0x1122_3344_5566_7788, &mut out),
            Some(layout.size)
        );
        assert_eq!(&out[..layout.size], rec);
        assert_eq!(msg.write_record(0, &mut out[..layout.size - 1]), None);
    }
}

#[test]
fn numpy_description_lists_every_field() {
    let d = AddOrder::RECORD.numpy_dtype();
    assert_eq!(
        d,
        "{'names': ['recv_ns', 'timestamp', 'stock_locate', 'tracking_number', \
         'order_reference_number', 'buy_sell_indicator', 'shares', 'stock', 'price'], \
         'formats': ['<u8', '<u8', '<u2', '<u2', '<u8', 'S1', '<u4', 'S8', '<u4'], \
         'offsets': [0, 8, 16, 18, 20, 28, 29, 33, 41], 'itemsize': 48}"
    );
    assert_eq!(
        AddOrder::RECORD.field("price").unwrap().kind,
        FieldKind::Price4
    );
    assert_eq!(Noii::RECORD_SIZE, crate::record::MAX_RECORD_SIZE);
    assert!(MessageType::ALL
        .iter()
        .all(|t| t.record().size <= crate::record::MAX_RECORD_SIZE));
}
