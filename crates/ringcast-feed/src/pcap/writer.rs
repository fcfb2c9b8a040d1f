//! [`PcapngWriter`]: a pcapng section of raw-IPv4 interfaces and UDP
//! datagrams with nanosecond timestamps.

use super::ipv4::{udp_headers, HEADERS_LEN, MAX_UDP_PAYLOAD};
use super::LINKTYPE_RAW;
use std::io::{self, Write};
use std::net::SocketAddrV4;

/// Block type of a Section Header Block (also its magic: it reads the same
/// in either byte order).
pub const SECTION_HEADER: u32 = 0x0A0D_0D0A;
/// Block type of an Interface Description Block.
pub const INTERFACE_DESCRIPTION: u32 = 1;
/// Block type of an Enhanced Packet Block.
pub const ENHANCED_PACKET: u32 = 6;
/// The byte-order magic of a section header, written in the writer's
/// (little-endian) order.
pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// Option code of an interface's timestamp resolution.
pub const OPTION_TSRESOL: u16 = 9;
/// Option code of an interface's name.
pub const OPTION_NAME: u16 = 2;
/// Snap length declared for the interfaces: the largest IPv4 packet.
const SNAP_LEN: u32 = u16::MAX as u32;

/// Writes one pcapng section: a Section Header Block when made, then an
/// Interface Description Block per [`add_interface`](Self::add_interface)
/// (link type raw IP, timestamps in ns), then an Enhanced Packet Block per
/// [`write_udp`](Self::write_udp), little-endian.
///
/// Each block is assembled in a buffer kept for reuse and handed to `out`
/// in one `write_all`: over a `BufWriter` that is a copy, and the file
/// only ever grows by whole blocks unless a write to it is cut (a killed
/// process can leave a torn last block; readers stop before it).
pub struct PcapngWriter<W: Write> {
    out: W,
    block: Vec<u8>,
    interfaces: u32,
    packets: u64,
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a section on `out` (its header is written now).
    pub fn new(out: W) -> io::Result<Self> {
        let mut this = Self {
            out,
            block: Vec::with_capacity(2048),
            interfaces: 0,
            packets: 0,
        };
        this.begin(SECTION_HEADER);
        this.put_u32(BYTE_ORDER_MAGIC);
        this.put_u16(1); // major version
        this.put_u16(0); // minor version
        this.block.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
        this.end()?;
        Ok(this)
    }

    /// Declares an interface named `name` (the capture shows it: say what
    /// the socket is); its number, for [`write_udp`](Self::write_udp).
    pub fn add_interface(&mut self, name: &str) -> io::Result<u32> {
        self.begin(INTERFACE_DESCRIPTION);
        self.put_u16(LINKTYPE_RAW);
        self.put_u16(0); // reserved
        self.put_u32(SNAP_LEN);
        self.put_option(OPTION_TSRESOL, &[9]); // 10^-9 s
        self.put_option(OPTION_NAME, name.as_bytes());
        self.put_option(0, &[]); // end of options
        self.end()?;
        self.interfaces += 1;
        Ok(self.interfaces - 1)
    }

    /// Writes the UDP datagram `payload` from `source` to `destination`,
    /// received at `timestamp_ns` (ns since the Unix epoch), on interface
    /// `interface`, as an IPv4 packet.
    pub fn write_udp(
        &mut self,
        interface: u32,
        timestamp_ns: u64,
        source: SocketAddrV4,
        destination: SocketAddrV4,
        payload: &[u8],
    ) -> io::Result<()> {
        if interface >= self.interfaces {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "pcapng: interface {interface} was not added (the section has {})",
                    self.interfaces
                ),
            ));
        }
        if payload.len() > MAX_UDP_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "pcapng: a UDP payload of {} bytes does not fit an IPv4 packet (at most {MAX_UDP_PAYLOAD})",
                    payload.len()
                ),
            ));
        }
        let captured = (HEADERS_LEN + payload.len()) as u32;
        self.begin(ENHANCED_PACKET);
        self.put_u32(interface);
        self.put_u32((timestamp_ns >> 32) as u32);
        self.put_u32(timestamp_ns as u32);
        self.put_u32(captured);
        self.put_u32(captured);
        let headers = udp_headers(source, destination, payload.len(), self.packets as u16);
        self.block.extend_from_slice(&headers);
        self.block.extend_from_slice(payload);
        self.pad();
        self.end()?;
        self.packets += 1;
        Ok(())
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes `out`.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The writer it writes to.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The writer it writes to (nothing of the section is held back:
    /// every block went to it whole).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Starts a block of `kind` in the buffer (its length is filled in by `end`).
    fn begin(&mut self, kind: u32) {
        self.block.clear();
        self.put_u32(kind);
        self.put_u32(0);
    }

    /// Completes the block (trailing length, both lengths) and writes it.
    fn end(&mut self) -> io::Result<()> {
        let total = (self.block.len() + 4) as u32;
        self.block[4..8].copy_from_slice(&total.to_le_bytes());
        self.put_u32(total);
        self.out.write_all(&self.block)
    }

    fn put_u16(&mut self, v: u16) {
        self.block.extend_from_slice(&v.to_le_bytes());
    }

    fn put_u32(&mut self, v: u32) {
        self.block.extend_from_slice(&v.to_le_bytes());
    }

    /// An option: code, length, value padded to 4 bytes.
    fn put_option(&mut self, code: u16, value: &[u8]) {
        let value = &value[..value.len().min(usize::from(u16::MAX))];
        self.put_u16(code);
        self.put_u16(value.len() as u16);
        self.block.extend_from_slice(value);
        self.pad();
    }

    /// Zeros up to the next multiple of 4 bytes.
    fn pad(&mut self) {
        let n = self.block.len().next_multiple_of(4) - self.block.len();
        self.block.extend_from_slice(&[0; 3][..n]);
    }
}
