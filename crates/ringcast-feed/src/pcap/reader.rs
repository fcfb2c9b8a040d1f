//! [`CaptureReader`]: the packets of a pcapng or classic pcap file.

use super::writer::{
    ENHANCED_PACKET, INTERFACE_DESCRIPTION, OPTION_NAME, OPTION_TSRESOL, SECTION_HEADER,
};
use super::CaptureError;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

/// Block type of an (obsolete) pcapng Packet Block.
const OBSOLETE_PACKET: u32 = 2;
/// Block type of a pcapng Simple Packet Block.
const SIMPLE_PACKET: u32 = 3;
/// Bytes of a classic pcap file header.
const PCAP_HEADER_LEN: usize = 24;
/// Bytes of a classic pcap record header.
const PCAP_RECORD_LEN: usize = 16;
/// Larger blocks are taken for damage rather than data (pcapng readers
/// commonly refuse blocks beyond 16 MiB; a datagram is at most 64 KiB).
const MAX_BLOCK: u64 = 256 << 20;

/// Which format the file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// pcapng (sections of blocks).
    Pcapng,
    /// Classic libpcap, with times in microseconds or nanoseconds.
    Pcap {
        /// Times are in nanoseconds (magic a1b23c4d), else microseconds.
        nanoseconds: bool,
    },
}

/// A capture interface (pcapng: one per Interface Description Block of
/// the current section; classic pcap: the file's one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its link type (`LINKTYPE_*`).
    pub link_type: u16,
    /// Timestamp units per second (10^6 unless the interface says otherwise).
    pub units_per_second: u64,
    /// Its name, if the capture gives one.
    pub name: Option<String>,
}

/// A captured packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The interface it was captured on (index into the section's interfaces).
    pub interface: u32,
    /// Its interface's link type.
    pub link_type: u16,
    /// When it was captured, ns since the Unix epoch (pcapng Simple Packet
    /// Blocks carry no time: they get the time of the packet before).
    pub timestamp_ns: u64,
    /// The bytes captured (the packet from its link header on, possibly
    /// cut to the snap length).
    pub data: &'a [u8],
    /// The packet's length on the wire.
    pub original_len: u32,
}

/// Reads the packets of a capture held in memory, in file order.
///
/// An iterator of `Result<Frame, CaptureError>`: after an error (a cut or
/// damaged block) it ends. Blocks other than packets and interface
/// descriptions (statistics, name resolution, custom blocks) are skipped.
pub struct CaptureReader<'a> {
    bytes: &'a [u8],
    offset: usize,
    format: CaptureFormat,
    big_endian: bool,
    interfaces: Vec<Interface>,
    packets: u64,
    last_time: u64,
    failed: bool,
}

fn u16_at(bytes: &[u8], at: usize, big_endian: bool) -> u16 {
    let b = [bytes[at], bytes[at + 1]];
    if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

fn u32_at(bytes: &[u8], at: usize, big_endian: bool) -> u32 {
    let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// `ts` units of `units_per_second` as ns (saturating far in the future).
fn to_ns(ts: u64, units_per_second: u64) -> u64 {
    let ns = u128::from(ts) * 1_000_000_000 / u128::from(units_per_second);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

impl<'a> CaptureReader<'a> {
    /// A reader of `bytes`, a whole pcapng or pcap file; refuses what is
    /// not one, saying what it found.
    pub fn new(bytes: &'a [u8]) -> Result<Self, CaptureError> {
        let mut this = Self {
            bytes,
            offset: 0,
            format: CaptureFormat::Pcapng,
            big_endian: false,
            interfaces: Vec::new(),
            packets: 0,
            last_time: 0,
            failed: false,
        };
        let magic: [u8; 4] = match bytes.get(..4) {
            Some(m) => m.try_into().expect("4 bytes"),
            None => {
                return Err(CaptureError::NotACapture {
                    start: bytes.to_vec(),
                })
            }
        };
        let (big_endian, nanoseconds) = match magic {
            [0x0A, 0x0D, 0x0D, 0x0A] => {
                // pcapng: the section header is read like any block.
                return Ok(this);
            }
            [0xD4, 0xC3, 0xB2, 0xA1] => (false, false),
            [0x4D, 0x3C, 0xB2, 0xA1] => (false, true),
            [0xA1, 0xB2, 0xC3, 0xD4] => (true, false),
            [0xA1, 0xB2, 0x3C, 0x4D] => (true, true),
            _ => {
                return Err(CaptureError::NotACapture {
                    start: magic.to_vec(),
                })
            }
        };
        this.format = CaptureFormat::Pcap { nanoseconds };
        this.big_endian = big_endian;
        if bytes.len() < PCAP_HEADER_LEN {
            return Err(this.truncated(PCAP_HEADER_LEN));
        }
        let major = u16_at(bytes, 4, big_endian);
        if major != 2 {
            return Err(CaptureError::Unsupported {
                what: format!("pcap version {major} (only version 2 exists)"),
            });
        }
        // The link type is the low 16 bits; the high ones flag FCS bytes.
        let link_type = u32_at(bytes, 20, big_endian) as u16;
        this.interfaces.push(Interface {
            link_type,
            units_per_second: if nanoseconds {
                1_000_000_000
            } else {
                1_000_000
            },
            name: None,
        });
        this.offset = PCAP_HEADER_LEN;
        Ok(this)
    }

    /// The file's format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// The interfaces declared so far (pcapng: in the current section).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Packets read so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Where the next block starts: after an error, where the readable
    /// part of the file ends (everything before is complete blocks).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The next packet, an error (once), or `None` at the end.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'a>, CaptureError>> {
        if self.failed {
            return None;
        }
        let next = match self.format {
            CaptureFormat::Pcapng => self.next_pcapng(),
            CaptureFormat::Pcap { .. } => self.next_pcap(),
        };
        match next {
            Ok(Some(frame)) => {
                self.packets += 1;
                self.last_time = frame.timestamp_ns;
                Some(Ok(frame))
            }
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn truncated(&self, needed: usize) -> CaptureError {
        CaptureError::Truncated {
            packets: self.packets,
            offset: self.offset as u64,
            needed: needed as u64,
            available: (self.bytes.len() - self.offset) as u64,
        }
    }

    fn corrupt(&self, what: String) -> CaptureError {
        CaptureError::Corrupt {
            packets: self.packets,
            offset: self.offset as u64,
            what,
        }
    }

    fn next_pcap(&mut self) -> Result<Option<Frame<'a>>, CaptureError> {
        let rest = &self.bytes[self.offset..];
        if rest.is_empty() {
            return Ok(None);
        }
        if rest.len() < PCAP_RECORD_LEN {
            return Err(self.truncated(PCAP_RECORD_LEN));
        }
        let be = self.big_endian;
        let seconds = u64::from(u32_at(rest, 0, be));
        let fraction = u64::from(u32_at(rest, 4, be));
        let captured = u64::from(u32_at(rest, 8, be));
        let original_len = u32_at(rest, 12, be);
        if captured > MAX_BLOCK {
            return Err(self.corrupt(format!(
                "a record of {captured} captured bytes (more than any packet)"
            )));
        }
        let needed = PCAP_RECORD_LEN + captured as usize;
        if rest.len() < needed {
            return Err(self.truncated(needed));
        }
        let interface = &self.interfaces[0];
        let timestamp_ns = seconds * 1_000_000_000 + to_ns(fraction, interface.units_per_second);
        let frame = Frame {
            interface: 0,
            link_type: interface.link_type,
            timestamp_ns,
            data: &rest[PCAP_RECORD_LEN..needed],
            original_len,
        };
        self.offset += needed;
        Ok(Some(frame))
    }

    fn next_pcapng(&mut self) -> Result<Option<Frame<'a>>, CaptureError> {
        loop {
            let rest = &self.bytes[self.offset..];
            if rest.is_empty() {
                return Ok(None);
            }
            if rest.len() < 12 {
                return Err(self.truncated(12));
            }
            let raw_type: [u8; 4] = rest[..4].try_into().expect("4 bytes");
            if raw_type == SECTION_HEADER.to_le_bytes() {
                // A section states its byte order after its length.
                self.big_endian = match rest[8..12] {
                    [0x1A, 0x2B, 0x3C, 0x4D] => true,
                    [0x4D, 0x3C, 0x2B, 0x1A] => false,
                    _ => {
                        return Err(self.corrupt(format!(
                        "a section header without the byte-order magic 1a2b3c4d (found {:02x?})",
                        &rest[8..12]
                    )))
                    }
                };
            }
            let be = self.big_endian;
            let kind = u32_at(rest, 0, be);
            let len = u64::from(u32_at(rest, 4, be));
            if len < 12 || len % 4 != 0 || len > MAX_BLOCK {
                return Err(self.corrupt(format!(
                    "a block (type {kind:#x}) of length {len} (a length is at least 12, a \
                     multiple of 4, at most {MAX_BLOCK})"
                )));
            }
            let len = len as usize;
            if rest.len() < len {
                return Err(self.truncated(len));
            }
            let trailer = u32_at(rest, len - 4, be) as usize;
            if trailer != len {
                return Err(self.corrupt(format!(
                    "a block (type {kind:#x}) whose two lengths differ ({len} and {trailer})"
                )));
            }
            let body = &rest[8..len - 4];
            let frame = match kind {
                SECTION_HEADER => {
                    self.section(body)?;
                    None
                }
                INTERFACE_DESCRIPTION => {
                    self.interface(body)?;
                    None
                }
                ENHANCED_PACKET | OBSOLETE_PACKET => Some(self.packet(kind, body)?),
                SIMPLE_PACKET => Some(self.simple_packet(body)?),
                _ => None,
            };
            self.offset += len;
            if frame.is_some() {
                return Ok(frame);
            }
        }
    }

    fn section(&mut self, body: &[u8]) -> Result<(), CaptureError> {
        if body.len() < 16 {
            return Err(self.corrupt("a section header shorter than 28 bytes".into()));
        }
        let major = u16_at(body, 4, self.big_endian);
        if major != 1 {
            return Err(CaptureError::Unsupported {
                what: format!(
                    "pcapng version {major} in the section at byte {} (only version 1 exists)",
                    self.offset
                ),
            });
        }
        // Interfaces are numbered per section.
        self.interfaces.clear();
        Ok(())
    }

    fn interface(&mut self, body: &[u8]) -> Result<(), CaptureError> {
        if body.len() < 8 {
            return Err(self.corrupt("an interface description shorter than 20 bytes".into()));
        }
        let be = self.big_endian;
        let mut interface = Interface {
            link_type: u16_at(body, 0, be),
            units_per_second: 1_000_000,
            name: None,
        };
        let mut at = 8;
        while at + 4 <= body.len() {
            let code = u16_at(body, at, be);
            let len = usize::from(u16_at(body, at + 2, be));
            if code == 0 {
                break;
            }
            let Some(value) = body.get(at + 4..at + 4 + len) else {
                return Err(self.corrupt(format!(
                    "an interface option (code {code}) of {len} bytes runs past its block"
                )));
            };
            match code {
                OPTION_TSRESOL => {
                    let v = *value.first().unwrap_or(&6);
                    let exponent = u32::from(v & 0x7F);
                    let units = if v & 0x80 != 0 {
                        1u64.checked_shl(exponent).filter(|_| exponent < 64)
                    } else {
                        10u64.checked_pow(exponent)
                    };
                    interface.units_per_second = match units {
                        Some(u) if u > 0 => u,
                        _ => {
                            return Err(CaptureError::Unsupported {
                                what: format!(
                                    "a timestamp resolution of {v:#x} (interface at byte {})",
                                    self.offset
                                ),
                            })
                        }
                    };
                }
                OPTION_NAME => {
                    interface.name = Some(String::from_utf8_lossy(value).into_owned());
                }
                _ => {}
            }
            at += 4 + len.next_multiple_of(4);
        }
        self.interfaces.push(interface);
        Ok(())
    }

    /// An Enhanced Packet Block (or an obsolete Packet Block: a 16-bit
    /// interface id and a drop count where the enhanced one has a 32-bit id).
    fn packet(&self, kind: u32, body: &'a [u8]) -> Result<Frame<'a>, CaptureError> {
        if body.len() < 20 {
            return Err(self.corrupt("a packet block shorter than 32 bytes".into()));
        }
        let be = self.big_endian;
        let id = if kind == ENHANCED_PACKET {
            u32_at(body, 0, be)
        } else {
            u32::from(u16_at(body, 0, be))
        };
        let Some(interface) = self.interfaces.get(id as usize) else {
            return Err(self.corrupt(format!(
                "a packet of interface {id}, which no interface description of its section \
                 declares ({} do)",
                self.interfaces.len()
            )));
        };
        let ts = (u64::from(u32_at(body, 4, be)) << 32) | u64::from(u32_at(body, 8, be));
        let captured = u32_at(body, 12, be) as usize;
        let original_len = u32_at(body, 16, be);
        let Some(data) = body.get(20..20 + captured) else {
            return Err(self.corrupt(format!(
                "a packet of {captured} captured bytes in a block with room for {}",
                body.len() - 20
            )));
        };
        Ok(Frame {
            interface: id,
            link_type: interface.link_type,
            timestamp_ns: to_ns(ts, interface.units_per_second),
            data,
            original_len,
        })
    }

    /// A Simple Packet Block: interface 0, no time, data up to the snap
    /// length (the block does not say how much of it is padding otherwise).
    fn simple_packet(&self, body: &'a [u8]) -> Result<Frame<'a>, CaptureError> {
        let Some(interface) = self.interfaces.first() else {
            return Err(self
                .corrupt("a simple packet block in a section that declares no interface".into()));
        };
        if body.len() < 4 {
            return Err(self.corrupt("a simple packet block shorter than 16 bytes".into()));
        }
        let original_len = u32_at(body, 0, self.big_endian);
        let data = &body[4..];
        let data = &data[..data.len().min(original_len as usize)];
        Ok(Frame {
            interface: 0,
            link_type: interface.link_type,
            timestamp_ns: self.last_time,
            data,
            original_len,
        })
    }
}

impl<'a> Iterator for CaptureReader<'a> {
    type Item = Result<Frame<'a>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame()
    }
}

/// Where new blocks can be appended to the pcapng file `file` reads: the
/// end of its last complete block (a torn block after it, left by a killed
/// writer, is to be cut off). Reads the block headers only, through the
/// buffer (memory stays bounded whatever the file's size).
///
/// Errors (`InvalidData`, saying what to do) for a file that is not pcapng
/// or whose blocks contradict each other: appending would bury the damage.
pub fn pcapng_append_offset<R: Read + Seek>(file: &mut BufReader<R>) -> io::Result<u64> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    file.seek(SeekFrom::Start(0))?;
    let mut offset = 0u64;
    let mut big_endian = false;
    let mut header = [0u8; 12];
    loop {
        let n = read_up_to(file, &mut header)?;
        let magic = SECTION_HEADER.to_le_bytes();
        if offset == 0 && header[..n.min(4)] != magic[..n.min(4)] {
            return Err(invalid(format!(
                "not a pcapng file (it starts with {:02x?}, not 0a0d0d0a)",
                &header[..n.min(4)]
            )));
        }
        if n < header.len() {
            // Nothing more, or a torn block header.
            return Ok(offset);
        }
        if header[..4] == magic {
            big_endian = match header[8..12] {
                [0x1A, 0x2B, 0x3C, 0x4D] => true,
                [0x4D, 0x3C, 0x2B, 0x1A] => false,
                _ => {
                    return Err(invalid(format!(
                        "the block at byte {offset} is a section header without the \
                         byte-order magic 1a2b3c4d: the file is damaged"
                    )))
                }
            };
        }
        let len = u64::from(u32_at(&header, 4, big_endian));
        if len < 12 || len % 4 != 0 || len > MAX_BLOCK {
            return Err(invalid(format!(
                "the block at byte {offset} has a length of {len}: the file is damaged"
            )));
        }
        file.seek_relative(len as i64 - 16)?;
        let mut trailer = [0u8; 4];
        if read_up_to(file, &mut trailer)? < 4 {
            return Ok(offset);
        }
        if u64::from(u32_at(&trailer, 0, big_endian)) != len {
            return Err(invalid(format!(
                "the block at byte {offset} has two different lengths: the file is damaged"
            )));
        }
        offset += len;
    }
}

/// Reads into `buf` until it is full or the end of the file; bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
