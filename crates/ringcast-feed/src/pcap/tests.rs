use super::ipv4::{header_checksum, udp_headers, IPV4_HEADER_LEN};
use super::*;
use std::net::{Ipv4Addr, SocketAddrV4};

fn addr(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port)
}

/// What the tests write: interface, time, source, destination, payload.
type Sent = (u32, u64, SocketAddrV4, SocketAddrV4, Vec<u8>);

fn sample(n: usize) -> Vec<Sent> {
    let group = addr(239, 1, 1, 1, 31001);
    let server = addr(127, 0, 0, 1, 40000);
    (0..n)
        .map(|i| {
            // Payload lengths 0..7 mod 4 exercise every padding; times
            // above 2^32 ns exercise the high word.
            let payload: Vec<u8> = (0..(i * 37 % 1500)).map(|j| (i + j) as u8).collect();
            let time = 1_700_000_000_123_456_789 + i as u64 * 1_234_567;
            let (iface, from, to) = if i % 5 == 4 {
                (1, addr(127, 0, 0, 1, 40001), server)
            } else {
                (0, addr(127, 0, 0, 1, 5000 + i as u16 % 3), group)
            };
            (iface, time, from, to, payload)
        })
        .collect()
}

fn write(packets: &[Sent]) -> Vec<u8> {
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    assert_eq!(w.add_interface("line A 239.1.1.1:31001").unwrap(), 0);
    assert_eq!(w.add_interface("retransmissions").unwrap(), 1);
    for (iface, t, from, to, payload) in packets {
        w.write_udp(*iface, *t, *from, *to, payload).unwrap();
    }
    assert_eq!(w.packets(), packets.len() as u64);
    w.into_inner()
}

fn read(bytes: &[u8]) -> (Vec<Sent>, Option<CaptureError>) {
    let mut got = Vec::new();
    for frame in CaptureReader::new(bytes).unwrap() {
        match frame {
            Ok(f) => {
                let d = udp_in_frame(f.link_type, f.data).expect("an IPv4 UDP datagram");
                assert!(d.complete);
                got.push((
                    f.interface,
                    f.timestamp_ns,
                    d.source,
                    d.destination,
                    d.payload.to_vec(),
                ));
            }
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

#[test]
fn pcapng_round_trip_keeps_payloads_times_and_addresses() {
    let sent = sample(200);
    let bytes = write(&sent);
    assert_eq!(bytes.len() % 4, 0);
    let reader = CaptureReader::new(&bytes).unwrap();
    assert_eq!(reader.format(), CaptureFormat::Pcapng);
    let (got, error) = read(&bytes);
    assert_eq!(error, None);
    assert_eq!(got, sent);
    let mut reader = CaptureReader::new(&bytes).unwrap();
    let first = reader.next().unwrap().unwrap();
    assert_eq!(first.link_type, LINKTYPE_RAW);
    assert_eq!(first.original_len as usize, first.data.len());
    // Every IPv4 header carries its correct checksum.
    for f in CaptureReader::new(&bytes).unwrap() {
        assert_eq!(header_checksum(&f.unwrap().data[..IPV4_HEADER_LEN]), 0);
    }
    let names: Vec<_> = reader
        .interfaces()
        .iter()
        .map(|i| (i.link_type, i.units_per_second, i.name.clone().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            (LINKTYPE_RAW, 1_000_000_000, "line A 239.1.1.1:31001".into()),
            (LINKTYPE_RAW, 1_000_000_000, "retransmissions".into())
        ]
    );
}

#[test]
fn ipv4_headers_match_a_known_packet() {
    // Worked by hand: 10.0.0.1:1000 -> 239.1.1.1:2000, 4 bytes, id 7.
    let h = udp_headers(addr(10, 0, 0, 1, 1000), addr(239, 1, 1, 1, 2000), 4, 7);
    let want: [u8; 28] = [
        0x45, 0, 0, 32, 0, 7, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 239, 1, 1, 1, // IPv4
        0x03, 0xE8, 0x07, 0xD0, 0, 12, 0, 0, // UDP
    ];
    let checksum = header_checksum(
        &{
            let mut z = want;
            z[10] = 0;
            z
        }[..20],
    );
    assert_eq!(h[..10], want[..10]);
    assert_eq!(h[10..12], checksum.to_be_bytes());
    assert_eq!(h[12..], want[12..]);
    // 0x4500 + 0x0020 + 0x0007 + 0x4000 + 0x4011 + 0x0a00 + 0x0001 + 0xef01
    // + 0x0101 = 0x1_bf3b; folded 0xbf3c; complemented 0x40c3.
    assert_eq!(checksum, 0x40C3);
}

/// A classic pcap file: header, then records of (seconds, fraction, frame).
fn classic(
    big_endian: bool,
    nanos: bool,
    link_type: u32,
    records: &[(u32, u32, Vec<u8>)],
) -> Vec<u8> {
    let put = |out: &mut Vec<u8>, v: u32| {
        out.extend_from_slice(&if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    };
    let mut out = Vec::new();
    put(&mut out, if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 });
    let version = if big_endian {
        [0, 2, 0, 4]
    } else {
        [2, 0, 4, 0]
    };
    out.extend_from_slice(&version);
    for v in [0, 0, 65535, link_type] {
        put(&mut out, v);
    }
    for (s, frac, frame) in records {
        for v in [*s, *frac, frame.len() as u32, frame.len() as u32] {
            put(&mut out, v);
        }
        out.extend_from_slice(frame);
    }
    out
}

/// An Ethernet frame, VLAN-tagged when `vlan`, around a UDP datagram.
fn ethernet(vlan: bool, from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x01, 0x00, 0x5E, 1, 1, 1, 2, 0, 0, 0, 0, 1];
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0A]);
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&udp_headers(from, to, payload.len(), 1));
    f.extend_from_slice(payload);
    f
}

#[test]
fn classic_pcap_files_read_in_either_byte_order_and_unit() {
    let (from, to) = (addr(10, 1, 2, 3, 777), addr(239, 9, 9, 9, 31001));
    for big_endian in [false, true] {
        for nanos in [false, true] {
            let records = vec![
                (1_700_000_000, 250, ethernet(false, from, to, b"first")),
                (1_700_000_001, 999, ethernet(true, from, to, b"second!")),
                // Not UDP: an ARP frame.
                (
                    1_700_000_002,
                    0,
                    vec![0xFF; 12]
                        .into_iter()
                        .chain([0x08, 0x06, 0, 1])
                        .collect(),
                ),
            ];
            let bytes = classic(big_endian, nanos, u32::from(LINKTYPE_ETHERNET), &records);
            let mut reader = CaptureReader::new(&bytes).unwrap();
            assert_eq!(reader.format(), CaptureFormat::Pcap { nanoseconds: nanos });
            let frames: Vec<Frame> = reader.by_ref().map(Result::unwrap).collect();
            assert_eq!(frames.len(), 3);
            let unit = if nanos { 1 } else { 1000 };
            assert_eq!(
                frames[0].timestamp_ns,
                1_700_000_000_000_000_000 + 250 * unit
            );
            assert_eq!(
                frames[1].timestamp_ns,
                1_700_000_001_000_000_000 + 999 * unit
            );
            let d: Vec<_> = frames
                .iter()
                .filter_map(|f| udp_in_frame(f.link_type, f.data))
                .map(|d| (d.source, d.destination, d.payload))
                .collect();
            assert_eq!(d, [(from, to, &b"first"[..]), (from, to, &b"second!"[..])]);
            assert_eq!(reader.packets(), 3);
        }
    }
}

#[test]
fn snap_length_cuts_are_marked_incomplete() {
    let (from, to) = (addr(10, 1, 2, 3, 777), addr(239, 9, 9, 9, 31001));
    let mut frame = ethernet(false, from, to, &[7; 100]);
    frame.truncate(14 + 28 + 60);
    let bytes = classic(false, false, 1, &[(1, 0, frame)]);
    let f = CaptureReader::new(&bytes).unwrap().next().unwrap().unwrap();
    let d = udp_in_frame(f.link_type, f.data).unwrap();
    assert!(!d.complete);
    assert_eq!(d.payload, &[7; 60]);
}

#[test]
fn a_cut_file_gives_its_complete_packets_then_an_exact_account() {
    let sent = sample(12);
    let bytes = write(&sent);
    // Where each packet's block ends, and where every block ends.
    let mut ends = Vec::new();
    let mut reader = CaptureReader::new(&bytes).unwrap();
    while reader.next().is_some() {
        ends.push(reader.offset());
    }
    let mut block_ends = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        at += u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        block_ends.push(at);
    }
    for cut in 4..bytes.len() {
        let (got, error) = read(&bytes[..cut]);
        let complete = ends.iter().filter(|e| **e <= cut).count();
        assert_eq!(got, sent[..complete], "cut at {cut}");
        let at_block_end = block_ends.contains(&cut);
        match error {
            None => assert!(at_block_end, "cut at {cut} went unnoticed"),
            Some(CaptureError::Truncated {
                packets,
                offset,
                needed,
                available,
            }) => {
                assert!(!at_block_end);
                assert_eq!(packets, complete as u64);
                assert!(offset as usize <= cut && available == (cut as u64 - offset));
                assert!(needed > available);
                let e = CaptureError::Truncated {
                    packets,
                    offset,
                    needed,
                    available,
                };
                assert!(e
                    .to_string()
                    .contains(&format!("after {packets} complete packets")));
            }
            Some(other) => panic!("cut at {cut}: {other}"),
        }
    }
    // Cut inside the magic: not even a capture.
    assert!(matches!(
        CaptureReader::new(&bytes[..3]),
        Err(CaptureError::NotACapture { .. })
    ));
}

#[test]
fn a_cut_classic_file_is_counted_too() {
    let (from, to) = (addr(10, 1, 2, 3, 777), addr(239, 9, 9, 9, 31001));
    let records: Vec<_> = (0..3)
        .map(|i| (i, 0, ethernet(false, from, to, &[i as u8; 50])))
        .collect();
    let bytes = classic(false, true, 1, &records);
    let (n, e) = {
        let mut r = CaptureReader::new(&bytes[..bytes.len() - 5]).unwrap();
        let ok = r.by_ref().take_while(Result::is_ok).count();
        (ok, r.packets())
    };
    assert_eq!((n, e), (2, 2));
    let e = CaptureReader::new(&bytes[..bytes.len() - 5])
        .unwrap()
        .find_map(Result::err)
        .unwrap();
    assert_eq!(
        e,
        CaptureError::Truncated {
            packets: 2,
            offset: (24 + 2 * (16 + 92)) as u64,
            needed: 16 + 92,
            available: 16 + 92 - 5,
        }
    );
    let e = CaptureReader::new(&bytes[..20]).err().unwrap();
    assert!(
        matches!(e, CaptureError::Truncated { packets: 0, .. }),
        "{e}"
    );
}

#[test]
fn bad_magic_and_damage_are_clear_errors() {
    let e = CaptureReader::new(b"\x00\x02RINGCAST  ").err().unwrap();
    assert_eq!(
        e,
        CaptureError::NotACapture {
            start: b"\x00\x02RI".to_vec()
        }
    );
    let text = e.to_string();
    assert!(
        text.contains("not a packet capture") && text.contains("00025249"),
        "{text}"
    );
    assert!(text.contains("--capture"), "{text}");
    let e = CaptureReader::new(b"").err().unwrap();
    assert!(e.to_string().contains("empty"), "{e}");

    let mut bytes = write(&sample(3));
    // The trailing length of the last block no longer matches its leading one.
    let n = bytes.len();
    bytes[n - 4] ^= 0x10;
    let (got, error) = read(&bytes);
    assert_eq!(got.len(), 2);
    let error = error.unwrap();
    assert!(
        matches!(error, CaptureError::Corrupt { packets: 2, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("two lengths differ"), "{error}");

    // A packet naming an interface that was never declared.
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    w.add_interface("only").unwrap();
    assert!(w
        .write_udp(3, 0, addr(1, 1, 1, 1, 1), addr(2, 2, 2, 2, 2), b"x")
        .is_err());
    w.write_udp(0, 0, addr(1, 1, 1, 1, 1), addr(2, 2, 2, 2, 2), b"x")
        .unwrap();
    let mut bytes = w.into_inner();
    let n = bytes.len();
    let epb = n - 32 - 4 - 28; // block: 28 header + 28 headers + 1 byte padded to 4 + 4
    assert_eq!(&bytes[epb..epb + 4], &6u32.to_le_bytes());
    bytes[epb + 8] = 5;
    let error = CaptureReader::new(&bytes)
        .unwrap()
        .find_map(Result::err)
        .unwrap();
    assert!(error.to_string().contains("interface 5"), "{error}");

    // A pcap version that does not exist.
    let mut bytes = classic(false, false, 1, &[]);
    bytes[4] = 9;
    let e = CaptureReader::new(&bytes).err().unwrap();
    assert!(e.to_string().contains("pcap version 9"), "{e}");
}

#[test]
fn sections_follow_each_other_and_big_endian_sections_read() {
    let first = write(&sample(4));
    let mut bytes = first.clone();
    bytes.extend_from_slice(&write(&sample(6)));
    // A big-endian section written by hand: one interface (microseconds,
    // the default), one packet.
    let be = |v: u32| v.to_be_bytes();
    let datagram = [
        udp_headers(addr(10, 0, 0, 9, 1), addr(239, 2, 2, 2, 2), 3, 0).to_vec(),
        b"big".to_vec(),
    ]
    .concat();
    let mut shb = vec![];
    for v in [
        0x0A0D_0D0A,
        28,
        0x1A2B_3C4D,
        0x0001_0000,
        0xFFFF_FFFF,
        0xFFFF_FFFF,
        28,
    ] {
        shb.extend_from_slice(&be(v));
    }
    let mut idb = vec![];
    for v in [1, 20, u32::from(LINKTYPE_IPV4) << 16, 0, 20] {
        idb.extend_from_slice(&be(v));
    }
    let mut epb = vec![];
    let len = 32 + datagram.len().next_multiple_of(4) as u32;
    for v in [
        6,
        len,
        0,
        0,
        1_500_000,
        datagram.len() as u32,
        datagram.len() as u32,
    ] {
        epb.extend_from_slice(&be(v));
    }
    epb.extend_from_slice(&datagram);
    epb.resize(len as usize - 4, 0);
    epb.extend_from_slice(&be(len));
    bytes.extend_from_slice(&[shb, idb, epb].concat());

    let (got, error) = read(&bytes);
    assert_eq!(error, None);
    assert_eq!(got.len(), 11);
    assert_eq!(got[..4], sample(4)[..]);
    assert_eq!(got[4..10], sample(6)[..]);
    assert_eq!(got[10].1, 1_500_000_000, "1.5 s in microseconds");
    assert_eq!(got[10].4, b"big");
}

#[test]
fn appending_finds_the_end_of_the_last_complete_block() {
    use std::io::{BufReader, Cursor};
    let offset =
        |bytes: &[u8]| pcapng_append_offset(&mut BufReader::new(Cursor::new(bytes.to_vec())));
    let bytes = write(&sample(5));
    assert_eq!(offset(&bytes).unwrap(), bytes.len() as u64);
    assert_eq!(offset(&[]).unwrap(), 0);
    let mut block_ends = vec![0];
    let mut at = 0;
    while at < bytes.len() {
        at += u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        block_ends.push(at);
    }
    for cut in 0..bytes.len() {
        let want = *block_ends.iter().filter(|e| **e <= cut).max().unwrap();
        assert_eq!(offset(&bytes[..cut]).unwrap(), want as u64, "cut at {cut}");
    }
    // Two sections, the second torn in its header: appending goes after
    // the first; torn after its header (28 bytes): after that header.
    let second = write(&sample(2));
    let mut two = bytes.clone();
    two.extend_from_slice(&second[..20]);
    assert_eq!(offset(&two).unwrap(), bytes.len() as u64);
    two.extend_from_slice(&second[20..50]);
    assert_eq!(offset(&two).unwrap(), bytes.len() as u64 + 28);
    // Not pcapng: refused, never overwritten.
    let classic = classic(false, false, 1, &[]);
    let e = offset(&classic).unwrap_err();
    assert!(e.to_string().contains("not a pcapng file"), "{e}");
    assert!(offset(b"hello world, not a capture").is_err());
    let mut damaged = bytes.clone();
    damaged[28 + 4] = 0xFF;
    let e = offset(&damaged).unwrap_err();
    assert!(e.to_string().contains("damaged"), "{e}");
}

mod damaged {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A real capture with bytes overwritten anywhere, then cut
        /// anywhere: the reader never panics, stops after its first error,
        /// and a cut counts exactly the packets before it.
        #[test]
        fn damaged_captures_give_errors_never_panics(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in any::<usize>(),
            classic_file in any::<bool>(),
        ) {
            let mut bytes = if classic_file {
                let (from, to) = (addr(10, 0, 0, 1, 1), addr(239, 0, 0, 1, 2));
                let records: Vec<_> = (0..4).map(|i| (i, i, ethernet(i % 2 == 0, from, to, &[i as u8; 30]))).collect();
                classic(false, true, 1, &records)
            } else {
                write(&sample(6))
            };
            for (at, value) in edits {
                let n = bytes.len();
                bytes[at % n] = value;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            let Ok(mut reader) = CaptureReader::new(&bytes) else { return Ok(()) };
            let mut frames = 0u64;
            while let Some(item) = reader.next_frame() {
                match item {
                    Ok(f) => {
                        frames += 1;
                        let _ = udp_in_frame(f.link_type, f.data);
                    }
                    Err(e) => {
                        if let CaptureError::Truncated { packets, offset, available, .. } = e {
                            prop_assert_eq!(packets, frames);
                            prop_assert_eq!(offset + available, bytes.len() as u64);
                        }
                        prop_assert!(reader.next_frame().is_none());
                        break;
                    }
                }
            }
            let scan = pcapng_append_offset(&mut std::io::BufReader::new(std::io::Cursor::new(&bytes)));
            if let Ok(offset) = scan {
                prop_assert!(offset as usize <= bytes.len());
            }
        }
    }
}
