//! The feed handler's wire capture: every datagram its sockets receive,
//! as it arrived, into a pcapng file that tshark and Wireshark read and
//! `ringcast feed send --pcap` replays.
//!
//! One interface per socket (line A, line B, the retransmission socket),
//! named after it; each datagram becomes a raw IPv4 packet: source = its
//! sender (`recvmmsg`'s address), destination = the group (or, for
//! retransmissions, the handler's request socket), time = the kernel's
//! receive time (`SO_TIMESTAMPNS`, CLOCK_REALTIME ns). Captured before the
//! handler looks at it: duplicates and damaged datagrams too.
//!
//! Cost on the receive path: one block copied into a 1 MiB buffer per
//! datagram; the file is written when the buffer fills and flushed every
//! [`CAPTURE_FLUSH_EVERY`] (and at the end), so a killed handler loses at
//! most that much, and may leave a torn last block that readers stop at.
//! An existing capture is appended to: its torn tail, if any, is cut off
//! and a new section starts (a restarted handler keeps what came before).

use crate::udp::Datagram;
use ringcast_feed::pcap::{pcapng_append_offset, PcapngWriter};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often captured datagrams are written out at the latest.
pub const CAPTURE_FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Bytes of datagrams buffered before they are written.
const CAPTURE_BUFFER: usize = 1 << 20;

/// A capture file being written.
pub struct WireCapture {
    writer: PcapngWriter<BufWriter<File>>,
    path: PathBuf,
    /// The destination address of each interface's datagrams.
    destinations: Vec<SocketAddrV4>,
    /// Something was captured since the last flush; flush by then.
    flush_by: Option<Instant>,
}

impl WireCapture {
    /// Opens (or creates) `path` and starts a section with one interface
    /// per `(name, destination)`: the sockets, in the order
    /// [`WireCapture::record`] numbers them.
    pub fn open(path: &Path, interfaces: &[(String, SocketAddrV4)]) -> io::Result<Self> {
        let fail = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot capture to {}: {e}", path.display()),
            )
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(fail)?;
        let mut reader = BufReader::new(file);
        let end = pcapng_append_offset(&mut reader).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot capture to {}: it exists and {e}; move it away or choose another \
                     file (a capture is appended to only when it is pcapng)",
                    path.display()
                ),
            )
        })?;
        let mut file = reader.into_inner();
        // Cut a torn tail off, and append after the last complete block.
        file.set_len(end).map_err(fail)?;
        file.seek(SeekFrom::Start(end)).map_err(fail)?;
        let mut writer =
            PcapngWriter::new(BufWriter::with_capacity(CAPTURE_BUFFER, file)).map_err(fail)?;
        for (name, _) in interfaces {
            writer.add_interface(name).map_err(fail)?;
        }
        let mut this = Self {
            writer,
            path: path.to_owned(),
            destinations: interfaces.iter().map(|(_, d)| *d).collect(),
            flush_by: None,
        };
        // The section header is on disk at once: a capture that is there
        // is a capture tshark reads, even before the first flush.
        this.flush()?;
        Ok(this)
    }

    /// Captures datagram `d`, received on interface `interface`.
    #[inline]
    pub fn record(&mut self, interface: usize, d: &Datagram<'_>) -> io::Result<()> {
        let time = d.kernel_realtime_ns.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |t| t.as_nanos() as u64)
        });
        let destination = self.destinations[interface];
        if let Err(e) = self
            .writer
            .write_udp(interface as u32, time, d.from, destination, d.data)
        {
            return Err(self.failed(e));
        }
        if self.flush_by.is_none() {
            self.flush_by = Some(Instant::now() + CAPTURE_FLUSH_EVERY);
        }
        Ok(())
    }

    /// When unflushed datagrams must be written out, if there are any.
    pub fn flush_by(&self) -> Option<Instant> {
        self.flush_by
    }

    /// Flushes if it is time (see [`WireCapture::flush_by`]).
    #[inline]
    pub fn flush_if_due(&mut self, now: Instant) -> io::Result<()> {
        match self.flush_by {
            Some(by) if now >= by => self.flush(),
            _ => Ok(()),
        }
    }

    /// Writes out everything captured.
    pub fn flush(&mut self) -> io::Result<()> {
        self.flush_by = None;
        self.writer.flush().map_err(|e| self.failed(e))
    }

    /// Datagrams captured (since this handler opened the file).
    pub fn datagrams(&self) -> u64 {
        self.writer.packets()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn failed(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!(
                "cannot write the capture {}: {e} (free space there, or drop --capture)",
                self.path.display()
            ),
        )
    }
}
