//! UDP sockets for market data: multicast receivers joined on a chosen
//! interface, senders that put multicast out on one, unicast sockets for
//! retransmission requests and replies, and batch receive (`recvmmsg`) with
//! the kernel's receive time of every datagram.
//!
//! Every socket is non-blocking and close-on-exec; waiting is an explicit
//! [`UdpSocket::wait_readable`] (`poll`), so a receive loop can spin, poll
//! with a timeout, or mix both. This module is the crate's only unsafe code.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A non-blocking IPv4 UDP socket, closed on drop.
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
}

/// `rc`, or the OS error when it is negative.
fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn in_addr(ip: Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        s_addr: u32::from(ip).to_be(),
    }
}

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: in_addr(*addr.ip()),
        sin_zero: [0; 8],
    }
}

fn from_sockaddr(sa: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
        u16::from_be(sa.sin_port),
    )
}

/// An all-zero `sockaddr_in` (a valid value of the plain C struct).
fn no_addr() -> libc::sockaddr_in {
    sockaddr(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
}

/// `what` failed on `addr`, with the OS error and what to do about it.
fn context(e: io::Error, what: &str, addr: impl std::fmt::Display) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} {addr}: {e}"))
}

/// Refuses an address that is not a multicast group, saying what to give.
pub fn check_group(group: SocketAddrV4) -> io::Result<()> {
    if group.ip().is_multicast() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{group} is not a multicast group: use an address in 224.0.0.0/4, \
             e.g. 239.1.1.1:31001"
        ),
    ))
}

impl UdpSocket {
    fn new() -> io::Result<Self> {
        // SAFETY: socket() takes no pointers; the result is checked.
        let fd = check(unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    /// Sets socket option `name` at `level` to `value`.
    fn set<T>(&self, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
        // SAFETY: passes a pointer to a live `T` and its exact size; the
        // kernel copies the value and keeps no pointer.
        check(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (value as *const T).cast(),
                size_of::<T>() as libc::socklen_t,
            )
        })
        .map(drop)
    }

    /// An `int` socket option.
    fn get_int(&self, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into the live `value`.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        })?;
        Ok(value)
    }

    fn bind(&self, addr: SocketAddrV4) -> io::Result<()> {
        let sa = sockaddr(addr);
        // SAFETY: `sa` is a live sockaddr_in and the length is its size.
        check(unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        })
        .map(drop)
        .map_err(|e| context(e, "bind a UDP socket to", addr))
    }

    /// A socket that receives the datagrams sent to multicast `group`
    /// (address and port), joined on the interface whose address is
    /// `interface` (`127.0.0.1` for loopback), with kernel receive times on
    /// and a receive buffer of at least `receive_buffer` bytes where the
    /// host allows it (see [`UdpSocket::receive_buffer`]). Several
    /// receivers of one group on one host each get every datagram.
    pub fn multicast_receiver(
        group: SocketAddrV4,
        interface: Ipv4Addr,
        receive_buffer: usize,
    ) -> io::Result<Self> {
        check_group(group)?;
        let s = Self::new()?;
        s.set(libc::SOL_SOCKET, libc::SO_REUSEADDR, &1 as &libc::c_int)?;
        // Bound to the group's address: only datagrams sent to the group
        // (not other traffic to the port) arrive.
        s.bind(group)?;
        let mreq = libc::ip_mreq {
            imr_multiaddr: in_addr(*group.ip()),
            imr_interface: in_addr(interface),
        };
        s.set(libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| {
                context(
                    e,
                    &format!("join multicast group {group} on the interface of"),
                    interface,
                )
            })?;
        s.set_receive_buffer(receive_buffer)?;
        s.set(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1 as &libc::c_int)?;
        Ok(s)
    }

    /// A socket bound to `addr` (port 0: any free port) for unicast
    /// datagrams, with kernel receive times on.
    pub fn unicast(addr: SocketAddrV4) -> io::Result<Self> {
        let s = Self::new()?;
        s.bind(addr)?;
        s.set(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1 as &libc::c_int)?;
        Ok(s)
    }

    /// A socket that sends multicast out of the interface whose address is
    /// `interface`, with time-to-live `ttl` (0: never leaves the host) and
    /// loopback on (receivers on this host get the datagrams too). It can
    /// also send and receive unicast (its address: [`UdpSocket::local_addr`]).
    pub fn multicast_sender(interface: Ipv4Addr, ttl: u8) -> io::Result<Self> {
        let s = Self::new()?;
        s.bind(SocketAddrV4::new(interface, 0))?;
        s.set(libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &in_addr(interface))
            .map_err(|e| context(e, "send multicast from", interface))?;
        s.set(
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_TTL,
            &libc::c_int::from(ttl),
        )?;
        s.set(
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_LOOP,
            &1 as &libc::c_int,
        )?;
        s.set(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1 as &libc::c_int)?;
        Ok(s)
    }

    /// Asks for a receive buffer of `bytes`: beyond `net.core.rmem_max`
    /// only with CAP_NET_ADMIN (tried first), else up to that limit.
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<()> {
        let want = libc::c_int::try_from(bytes / 2).unwrap_or(libc::c_int::MAX);
        // The kernel doubles the value asked for (bookkeeping overhead).
        if self
            .set(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &want)
            .is_err()
        {
            self.set(libc::SOL_SOCKET, libc::SO_RCVBUF, &want)?;
        }
        Ok(())
    }

    /// The receive buffer the kernel gave this socket, bytes.
    pub fn receive_buffer(&self) -> io::Result<usize> {
        Ok(self.get_int(libc::SOL_SOCKET, libc::SO_RCVBUF)? as usize)
    }

    /// Datagrams the kernel dropped on this socket because its receive
    /// buffer was full, since it was opened (`SO_RXQ_OVFL` is not used: this
    /// reads the socket's drop counter from `/proc/net/udp`, cheap enough
    /// for once a second). `None` when it cannot be read.
    pub fn kernel_drops(&self) -> Option<u64> {
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))?;
        let table = std::fs::read_to_string("/proc/net/udp").ok()?;
        table.lines().skip(1).find_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.get(9)?.parse::<u64>().ok()? == inode).then(|| cols.last()?.parse().ok())?
        })
    }

    /// The address this socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        let mut sa = no_addr();
        let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into the live `sa`.
        check(unsafe {
            libc::getsockname(
                self.fd.as_raw_fd(),
                (&mut sa as *mut libc::sockaddr_in).cast(),
                &mut len,
            )
        })?;
        Ok(from_sockaddr(&sa))
    }

    /// Sends `buf` as one datagram to `to`, waiting for room in the send
    /// buffer when it is full.
    pub fn send_to(&self, buf: &[u8], to: SocketAddrV4) -> io::Result<()> {
        let sa = sockaddr(to);
        loop {
            // SAFETY: `buf` and `sa` are live for the call, lengths are theirs.
            let rc = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    0,
                    (&sa as *const libc::sockaddr_in).cast(),
                    size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            if rc >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => {
                    self.poll(libc::POLLOUT, Some(Duration::from_millis(100)))?;
                }
                io::ErrorKind::Interrupted => {}
                _ => return Err(context(e, "send a datagram to", to)),
            }
        }
    }

    /// Receives one datagram into `buf` without waiting: its length (cut to
    /// `buf`'s) and sender, or `None` when none is queued.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddrV4)>> {
        let mut sa = no_addr();
        let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf` and
        // at most `len` bytes into the live `sa`.
        let rc = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut sa as *mut libc::sockaddr_in).cast(),
                &mut len,
            )
        };
        if rc >= 0 {
            return Ok(Some((rc as usize, from_sockaddr(&sa))));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        }
    }

    /// Waits until a datagram can be read, at most `timeout` (`None`:
    /// forever); whether one can.
    pub fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        self.poll(libc::POLLIN, timeout)
    }

    fn poll(&self, events: libc::c_short, timeout: Option<Duration>) -> io::Result<bool> {
        poll_fds(
            &mut [libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events,
                revents: 0,
            }],
            timeout,
        )
    }
}

/// Waits until any of `sockets` (at most 4) has a datagram to read, at most
/// `timeout` (`None`: forever); whether one has.
pub fn wait_any<'a>(
    sockets: impl IntoIterator<Item = &'a UdpSocket>,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let mut fds = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; 4];
    let mut n = 0;
    for s in sockets {
        assert!(
            n < fds.len(),
            "wait_any takes at most {} sockets",
            fds.len()
        );
        fds[n].fd = s.fd.as_raw_fd();
        n += 1;
    }
    poll_fds(&mut fds[..n], timeout)
}

/// `ppoll` on `fds` for at most `timeout` (to the nanosecond, where `poll`
/// would round up to a millisecond): whether any is ready (`false` also
/// when a signal cut the wait short: callers loop).
fn poll_fds(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<bool> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a live array of `fds.len()` pollfds; the timeout, if
    // any, is a live timespec; no signal mask is changed (null).
    let rc = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(rc > 0)
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// One datagram of a [`RecvBatch`].
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Its bytes (cut to the batch's datagram size when `truncated`).
    pub data: &'a [u8],
    /// The datagram was larger than the batch's buffers.
    pub truncated: bool,
    /// Its sender.
    pub from: SocketAddrV4,
    /// When the kernel received it, ns of CLOCK_REALTIME (see
    /// [`RealtimeToMonotonic`]); `None` if the kernel gave no time.
    pub kernel_realtime_ns: Option<u64>,
}

/// Control-message space per datagram: one `SCM_TIMESTAMPNS` (a timespec)
/// needs CMSG_SPACE(16) = 32 bytes on 64-bit Linux; 64 leaves room for one
/// more the kernel may add.
const CONTROL_WORDS: usize = 8;

/// Buffers for receiving up to `capacity` datagrams in one `recvmmsg`.
///
/// The `recvmmsg` headers and their iovecs are built once, pointing into
/// the batch's own heap buffers (which never move or grow after `new`), so
/// a receive allocates nothing and only resets the lengths the kernel
/// overwrites.
pub struct RecvBatch {
    size: usize,
    data: Vec<u8>,
    lens: Vec<usize>,
    truncated: Vec<bool>,
    addrs: Vec<libc::sockaddr_in>,
    control: Vec<[u64; CONTROL_WORDS]>,
    stamps: Vec<Option<u64>>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    count: usize,
}

// SAFETY: the raw pointers in `headers` and `iovecs` point only into this
// batch's own heap buffers (`data`, `addrs`, `control`, `iovecs`), which
// move with it between threads and are never shared: sending the batch to
// another thread sends everything the pointers reach, and `&mut self` is
// needed to use them.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// Room for `capacity` datagrams of at most `size` bytes each.
    pub fn new(capacity: usize, size: usize) -> Self {
        let capacity = capacity.max(1);
        let mut this = Self {
            size,
            data: vec![0; capacity * size],
            lens: vec![0; capacity],
            truncated: vec![false; capacity],
            addrs: vec![no_addr(); capacity],
            control: vec![[0; CONTROL_WORDS]; capacity],
            stamps: vec![None; capacity],
            iovecs: Vec::with_capacity(capacity),
            headers: Vec::with_capacity(capacity),
            count: 0,
        };
        for chunk in this.data.chunks_exact_mut(size.max(1)).take(capacity) {
            this.iovecs.push(libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: chunk.len(),
            });
        }
        // A zero `size` gives no chunks: empty iovecs then (datagrams are
        // received as truncated, with no bytes).
        while this.iovecs.len() < capacity {
            this.iovecs.push(libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            });
        }
        for i in 0..capacity {
            // SAFETY: mmsghdr is a plain C struct for which all-zero bytes
            // (null pointers, zero lengths) are a valid value.
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_name = (&mut this.addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_hdr.msg_iov = &mut this.iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = this.control[i].as_mut_ptr().cast();
            this.headers.push(h);
        }
        this
    }

    /// A batch with room for nothing, allocating nothing (a placeholder).
    pub fn empty() -> Self {
        Self {
            size: 0,
            data: Vec::new(),
            lens: Vec::new(),
            truncated: Vec::new(),
            addrs: Vec::new(),
            control: Vec::new(),
            stamps: Vec::new(),
            iovecs: Vec::new(),
            headers: Vec::new(),
            count: 0,
        }
    }

    /// Receives the datagrams queued on `socket` now (up to the batch's
    /// capacity) without waiting; how many (0: none queued).
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.count = 0;
        if self.headers.is_empty() {
            return Ok(0);
        }
        // The kernel overwrote these on the last receive.
        for h in &mut self.headers {
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_controllen = size_of::<[u64; CONTROL_WORDS]>();
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: every header points at buffers of this batch (names, one
        // iovec each over `size` bytes of `data`, control space), built in
        // `new` and never moved or resized since (heap buffers, `&mut self`
        // held); the kernel writes within the lengths given.
        let rc = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = rc as usize;
        for (i, h) in self.headers.iter().take(n).enumerate() {
            self.lens[i] = (h.msg_len as usize).min(self.size);
            self.truncated[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.stamps[i] = receive_time(&h.msg_hdr);
        }
        self.count = n;
        Ok(n)
    }

    /// Datagrams received by the last [`RecvBatch::recv`].
    pub fn len(&self) -> usize {
        self.count
    }

    /// The last receive got nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Datagram `i` of the last receive (`i < len()`).
    pub fn get(&self, i: usize) -> Datagram<'_> {
        assert!(i < self.count, "datagram {i} of {}", self.count);
        Datagram {
            data: &self.data[i * self.size..i * self.size + self.lens[i]],
            truncated: self.truncated[i],
            from: from_sockaddr(&self.addrs[i]),
            kernel_realtime_ns: self.stamps[i],
        }
    }

    /// The datagrams of the last receive, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = Datagram<'_>> {
        (0..self.count).map(|i| self.get(i))
    }
}

/// The `SCM_TIMESTAMPNS` time in the control messages of `hdr`, ns.
fn receive_time(hdr: &libc::msghdr) -> Option<u64> {
    // SAFETY: `hdr` was filled by recvmmsg: its control pointer and the
    // length the kernel set describe control messages inside our buffer;
    // the CMSG_* macros walk within them.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    None
}

/// Converts CLOCK_REALTIME ns (kernel receive times) to CLOCK_MONOTONIC ns
/// (the clock of ring timestamps), with the offset between the two clocks
/// read when it was made: [`RealtimeToMonotonic::refresh`] it now and then
/// (NTP slews the real-time clock by up to 500 ppm).
#[derive(Debug, Clone, Copy)]
pub struct RealtimeToMonotonic {
    offset: i128,
}

impl RealtimeToMonotonic {
    /// The conversion as of now.
    pub fn new() -> Self {
        let mut this = Self { offset: 0 };
        this.refresh();
        this
    }

    /// Measures the offset again: the real-time read that sits closest
    /// between two monotonic reads, of three tries.
    pub fn refresh(&mut self) {
        let mut best = (u64::MAX, 0i128);
        for _ in 0..3 {
            let a = clock_ns(libc::CLOCK_MONOTONIC);
            let r = clock_ns(libc::CLOCK_REALTIME);
            let b = clock_ns(libc::CLOCK_MONOTONIC);
            let width = b - a;
            if width < best.0 {
                best = (width, i128::from(r) - i128::from(a + width / 2));
            }
        }
        self.offset = best.1;
    }

    /// `realtime_ns` on CLOCK_MONOTONIC (0 for times before its epoch).
    pub fn convert(&self, realtime_ns: u64) -> u64 {
        u64::try_from((i128::from(realtime_ns) - self.offset).max(0)).unwrap_or(u64::MAX)
    }
}

impl Default for RealtimeToMonotonic {
    fn default() -> Self {
        Self::new()
    }
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec; both clocks always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

    /// A group and port of this test's own (ports differ per test so that
    /// tests running at once never share a group).
    fn group(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, 1), port)
    }

    #[test]
    fn multicast_on_loopback_reaches_every_receiver_with_kernel_times() {
        let g = group(47_311);
        let a = UdpSocket::multicast_receiver(g, LOOPBACK, 1 << 20).unwrap();
        let b = UdpSocket::multicast_receiver(g, LOOPBACK, 1 << 20).unwrap();
        let sender = UdpSocket::multicast_sender(LOOPBACK, 0).unwrap();
        let clock = RealtimeToMonotonic::new();
        let before = clock_ns(libc::CLOCK_MONOTONIC);
        for i in 0..10u8 {
            sender.send_to(&[i; 100], g).unwrap();
        }
        for r in [&a, &b] {
            let mut batch = RecvBatch::new(64, 2048);
            let mut got = Vec::new();
            let until = Instant::now() + Duration::from_secs(5);
            while got.len() < 10 && Instant::now() < until {
                r.wait_readable(Some(Duration::from_millis(100))).unwrap();
                batch.recv(r).unwrap();
                for d in batch.iter() {
                    assert!(!d.truncated);
                    assert_eq!(d.from, sender.local_addr().unwrap());
                    let t = clock.convert(d.kernel_realtime_ns.expect("a kernel time"));
                    // Within 50 ms of the send, on the monotonic clock.
                    assert!(t + 50_000_000 >= before && t < before + 5_000_000_000);
                    got.push(d.data.to_vec());
                }
            }
            let want: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100]).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn batches_cut_long_datagrams_and_say_so() {
        let g = group(47_312);
        let r = UdpSocket::multicast_receiver(g, LOOPBACK, 1 << 20).unwrap();
        let sender = UdpSocket::multicast_sender(LOOPBACK, 0).unwrap();
        sender.send_to(&[1; 300], g).unwrap();
        assert!(r.wait_readable(Some(Duration::from_secs(5))).unwrap());
        let mut batch = RecvBatch::new(4, 256);
        assert_eq!(batch.recv(&r).unwrap(), 1);
        let d = batch.get(0);
        assert!(d.truncated);
        assert_eq!(d.data.len(), 256);
        assert_eq!(batch.recv(&r).unwrap(), 0, "nothing more queued");
        assert!(batch.is_empty());
    }

    #[test]
    fn unicast_request_and_reply() {
        let server = UdpSocket::unicast(SocketAddrV4::new(LOOPBACK, 0)).unwrap();
        let client = UdpSocket::unicast(SocketAddrV4::new(LOOPBACK, 0)).unwrap();
        let to = server.local_addr().unwrap();
        assert_ne!(to.port(), 0);
        client.send_to(b"request", to).unwrap();
        assert!(server.wait_readable(Some(Duration::from_secs(5))).unwrap());
        let mut buf = [0u8; 64];
        let (n, from) = server.try_recv_from(&mut buf).unwrap().unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"request"[..], client.local_addr().unwrap())
        );
        assert_eq!(server.try_recv_from(&mut buf).unwrap(), None);
        // Nothing arrives: the wait times out, not earlier than asked.
        let t = Instant::now();
        assert!(!server
            .wait_readable(Some(Duration::from_millis(30)))
            .unwrap());
        assert!(t.elapsed() >= Duration::from_millis(29));
    }

    #[test]
    fn bad_groups_and_interfaces_say_what_is_wrong() {
        let e = UdpSocket::multicast_receiver(
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000),
            LOOPBACK,
            0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a multicast group"), "{e}");
        // An interface address this host does not have.
        let e = UdpSocket::multicast_receiver(group(47_313), Ipv4Addr::new(192, 0, 2, 7), 0)
            .unwrap_err();
        assert!(e.to_string().contains("join multicast group"), "{e}");
    }

    #[test]
    fn kernel_drops_are_counted() {
        let g = group(47_314);
        let r = UdpSocket::multicast_receiver(g, LOOPBACK, 0).unwrap();
        let sender = UdpSocket::multicast_sender(LOOPBACK, 0).unwrap();
        assert_eq!(r.kernel_drops(), Some(0));
        // Far more than the smallest receive buffer holds, never read.
        for _ in 0..2000 {
            sender.send_to(&[0; 1400], g).unwrap();
        }
        assert!(r.kernel_drops().unwrap() > 0);
    }
}
