//! IPv4 + UDP headers: made for a received datagram (the socket gives its
//! payload and addresses, the capture needs a whole IP packet), and found
//! in captured frames.

use super::{
    LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW,
};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Bytes of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Bytes of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// Bytes the writer puts before each payload.
pub const HEADERS_LEN: usize = IPV4_HEADER_LEN + UDP_HEADER_LEN;
/// The largest UDP payload an IPv4 packet carries (its total length is a u16).
pub const MAX_UDP_PAYLOAD: usize = u16::MAX as usize - HEADERS_LEN;

const PROTOCOL_UDP: u8 = 17;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;

/// The IPv4 + UDP headers of a datagram of `payload_len` bytes from
/// `source` to `destination` (`payload_len <= MAX_UDP_PAYLOAD`): no IP
/// options, time-to-live 64, don't-fragment set, `identification` as
/// given, a correct header checksum, UDP checksum 0 ("none", which IPv4
/// allows).
pub fn udp_headers(
    source: SocketAddrV4,
    destination: SocketAddrV4,
    payload_len: usize,
    identification: u16,
) -> [u8; HEADERS_LEN] {
    debug_assert!(payload_len <= MAX_UDP_PAYLOAD);
    let mut h = [0u8; HEADERS_LEN];
    h[0] = 0x45; // version 4, header of 5 words
    h[2..4].copy_from_slice(&((HEADERS_LEN + payload_len) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&identification.to_be_bytes());
    h[6] = 0x40; // don't fragment, offset 0
    h[8] = 64;
    h[9] = PROTOCOL_UDP;
    h[12..16].copy_from_slice(&source.ip().octets());
    h[16..20].copy_from_slice(&destination.ip().octets());
    let checksum = header_checksum(&h[..IPV4_HEADER_LEN]);
    h[10..12].copy_from_slice(&checksum.to_be_bytes());
    h[20..22].copy_from_slice(&source.port().to_be_bytes());
    h[22..24].copy_from_slice(&destination.port().to_be_bytes());
    h[24..26].copy_from_slice(&((UDP_HEADER_LEN + payload_len) as u16).to_be_bytes());
    h
}

/// The Internet checksum of an IPv4 header (RFC 1071: the one's complement
/// of the one's complement sum of its 16-bit words). A header holding its
/// correct checksum sums to 0 here.
pub fn header_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// A UDP datagram found in a captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    /// Its sender.
    pub source: SocketAddrV4,
    /// Where it was sent (a multicast group, or a unicast address).
    pub destination: SocketAddrV4,
    /// Its payload, as much of it as was captured.
    pub payload: &'a [u8],
    /// The whole payload was captured (not cut by a snap length).
    pub complete: bool,
}

/// The IPv4 UDP datagram in `frame` of link type `link_type` (Ethernet,
/// possibly VLAN-tagged, raw IP, raw IPv4, Linux cooked v1 and v2); `None`
/// for anything else (another protocol, IPv6, a fragment after the first,
/// headers cut short).
pub fn udp_in_frame(link_type: u16, frame: &[u8]) -> Option<UdpDatagram<'_>> {
    let ip = match link_type {
        LINKTYPE_RAW | LINKTYPE_IPV4 => frame,
        LINKTYPE_ETHERNET => {
            let mut at = 12;
            let mut ethertype = u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
            while ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
                at += 4;
                ethertype = u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
            }
            if ethertype != ETHERTYPE_IPV4 {
                return None;
            }
            frame.get(at + 2..)?
        }
        LINKTYPE_LINUX_SLL => {
            if u16::from_be_bytes(frame.get(14..16)?.try_into().ok()?) != ETHERTYPE_IPV4 {
                return None;
            }
            frame.get(16..)?
        }
        LINKTYPE_LINUX_SLL2 => {
            if u16::from_be_bytes(frame.get(0..2)?.try_into().ok()?) != ETHERTYPE_IPV4 {
                return None;
            }
            frame.get(20..)?
        }
        _ => return None,
    };
    udp_in_ipv4(ip)
}

/// The UDP datagram in IPv4 packet `ip` (cut short by a snap length or not).
fn udp_in_ipv4(ip: &[u8]) -> Option<UdpDatagram<'_>> {
    let first = *ip.first()?;
    let header_len = usize::from(first & 0x0F) * 4;
    if first >> 4 != 4 || header_len < IPV4_HEADER_LEN || ip.len() < header_len + UDP_HEADER_LEN {
        return None;
    }
    if ip[9] != PROTOCOL_UDP {
        return None;
    }
    let flags_offset = u16::from_be_bytes([ip[6], ip[7]]);
    let more_fragments = flags_offset & 0x2000 != 0;
    if flags_offset & 0x1FFF != 0 || more_fragments {
        // A piece of a fragmented datagram: its payload is not all here.
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let address = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
    let udp = &ip[header_len..];
    let port = |at: usize| u16::from_be_bytes([udp[at], udp[at + 1]]);
    let udp_len = usize::from(port(4));
    // A total length of 0 is what segmentation offload leaves in captures
    // of outgoing packets: only the UDP length counts then.
    if udp_len < UDP_HEADER_LEN || (total_len != 0 && header_len + udp_len > total_len) {
        return None;
    }
    let want = udp_len - UDP_HEADER_LEN;
    let have = &udp[UDP_HEADER_LEN..];
    let payload = &have[..want.min(have.len())];
    Some(UdpDatagram {
        source: SocketAddrV4::new(address(12), port(0)),
        destination: SocketAddrV4::new(address(16), port(2)),
        payload,
        complete: payload.len() == want,
    })
}
