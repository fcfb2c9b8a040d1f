//! The MoldUDP64 sender: replays a [`MessageStore`] to one or two multicast
//! groups (the A and B lines of one stream) at a chosen pace, sends
//! heartbeats while idle and the end of the session at the end, and
//! answers retransmission requests from the same store, also while it
//! lingers after the end.
//!
//! Or it replays a capture ([`CapturedStream`], [`Sender::replay`]): the
//! captured datagrams byte for byte, heartbeats and end of session
//! included, paced by the same [`Pace`] (the original pace is then the
//! capture's timestamps), with no heartbeats of its own and no
//! retransmission server.
//!
//! For tests and drills a line can skip packets on purpose ([`DropPlan`]):
//! what a receiver then misses must come back through the other line or
//! the retransmission server. Retransmissions are never skipped.

use crate::store::{CapturedStream, MessageStore};
use crate::udp::UdpSocket;
use ringcast_feed::mold::{PacketBuilder, RetransmitRequest, Session, DEFAULT_MAX_PAYLOAD};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How fast messages go out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as the socket takes full packets.
    Max,
    /// This many messages per second (packets fill up when the rate is
    /// high; a message never waits for a packet to fill).
    Rate(f64),
    /// The original pace of the day by its ITCH timestamps (a replayed
    /// capture: by its capture times), `speed` times faster (1.0: real time).
    Original {
        /// How many times faster than the original.
        speed: f64,
    },
}

/// Which packets a line skips on purpose.
#[derive(Debug, Clone, PartialEq)]
pub enum DropPlan {
    /// None.
    Never,
    /// Each packet with this probability (0-100), from a seeded generator
    /// (the same seed skips the same packets).
    Percent {
        /// Percentage of packets skipped.
        percent: f64,
        /// Seed of the generator.
        seed: u64,
    },
    /// These packets of the line (0 is its first message packet).
    Packets(Vec<u64>),
}

/// One multicast line: where it goes, and what it skips.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The multicast group and port.
    pub group: SocketAddrV4,
    /// Packets skipped on purpose.
    pub drop: DropPlan,
}

/// Everything about a sender.
#[derive(Debug, Clone)]
pub struct SenderOptions {
    /// The session name (10 bytes, space-padded: see [`session`]).
    pub session: Session,
    /// The A line, and the B line if any.
    pub lines: Vec<Line>,
    /// Address of the interface multicast goes out of (127.0.0.1: loopback).
    pub interface: Ipv4Addr,
    /// Multicast time-to-live (0: never leaves this host).
    pub ttl: u8,
    /// How fast.
    pub pace: Pace,
    /// Largest packet, bytes, header included.
    pub max_payload: usize,
    /// A heartbeat goes out on every line after this long without a packet.
    pub heartbeat: Duration,
    /// Where the retransmission server listens (port 0: any free port, see
    /// [`Sender::retransmit_addr`]); `None`: no server.
    pub retransmit: Option<SocketAddrV4>,
    /// After the end of the session, how long to go on answering
    /// retransmission requests (repeating the end of session every
    /// heartbeat meanwhile).
    pub linger: Duration,
}

impl SenderOptions {
    /// Defaults: one line to `group` over loopback, flat out, 1400-byte
    /// packets, heartbeats every second, no retransmission server, no linger.
    pub fn new(session: Session, group: SocketAddrV4) -> Self {
        Self {
            session,
            lines: vec![Line {
                group,
                drop: DropPlan::Never,
            }],
            interface: Ipv4Addr::LOCALHOST,
            ttl: 0,
            pace: Pace::Max,
            max_payload: DEFAULT_MAX_PAYLOAD,
            heartbeat: Duration::from_secs(1),
            retransmit: None,
            linger: Duration::ZERO,
        }
    }
}

/// A session name from text: at most 10 ASCII characters, space-padded.
pub fn session(name: &str) -> Result<Session, String> {
    if name.len() > 10 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "session name {name:?} must be 1 to 10 printable ASCII characters without spaces"
        ));
    }
    let mut s = [b' '; 10];
    s[..name.len()].copy_from_slice(name.as_bytes());
    Ok(s)
}

/// What a sender did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SenderReport {
    /// Messages sent (each once, whatever the number of lines).
    pub messages: u64,
    /// Message packets made (each goes to every line).
    pub packets: u64,
    /// Payload bytes of those packets.
    pub bytes: u64,
    /// Packets skipped on purpose, per line.
    pub dropped: Vec<u64>,
    /// Heartbeat packets sent (per line counted once).
    pub heartbeats: u64,
    /// Retransmission requests answered.
    pub requests: u64,
    /// Requests refused: another session, malformed, or beyond the day.
    pub bad_requests: u64,
    /// Messages sent again in answers.
    pub retransmitted: u64,
    /// From the first packet to the end of the session.
    pub elapsed: Duration,
    /// Paced runs: the latest a message went out after it was due.
    pub max_behind: Duration,
    /// The run was stopped before the end of the day.
    pub stopped: bool,
}

/// Paced runs: the messages due within this much after the one that starts
/// a burst go out with it (in as few packets as fit): the sender sleeps
/// between bursts rather than spinning, and no message leaves more than
/// this early.
pub const PACE_SLACK: Duration = Duration::from_micros(200);

/// Most packets one retransmission request is answered with; a receiver
/// asks again for what is still missing.
pub const MAX_ANSWER_PACKETS: usize = 64;

/// What a sender sends.
#[derive(Clone)]
enum Source {
    /// A day's messages, packed into packets here.
    Day(Arc<MessageStore>),
    /// Captured datagrams, sent as they are.
    Capture(Arc<CapturedStream>),
}

/// When each message (or captured datagram) of a run goes out: the one
/// pacing mechanism of both kinds of run.
///
/// Paced runs go in bursts: once an item is due, every item due within
/// [`PACE_SLACK`] after it goes out with it; then the sender sleeps until
/// the next one is due, instead of spinning a CPU.
struct Pacer {
    pace: Pace,
    started: Instant,
    /// Items due before this go out with the burst under way.
    burst_until: Instant,
}

impl Pacer {
    fn new(pace: Pace, started: Instant) -> Self {
        Self {
            pace,
            started,
            burst_until: started,
        }
    }

    /// When an item is due that `messages_before` messages precede and
    /// whose time is `since_first_ns` after the first item's (ITCH
    /// timestamps, or capture times); `None`: now (flat out, or an item
    /// without a time).
    fn due(&self, messages_before: u64, since_first_ns: Option<u64>) -> Option<Instant> {
        match self.pace {
            Pace::Max => None,
            Pace::Rate(rate) => Some(
                self.started + Duration::from_secs_f64(messages_before as f64 / rate.max(1e-9)),
            ),
            Pace::Original { speed } => since_first_ns
                .map(|t| self.started + Duration::from_secs_f64(t as f64 / 1e9 / speed.max(1e-9))),
        }
    }

    /// Before sending an item due at `due`: the time to wait for, unless
    /// the burst under way takes it; how late it is goes into `max_behind`.
    fn hold(&mut self, due: Option<Instant>, max_behind: &mut Duration) -> Option<Instant> {
        let due = due?;
        if due <= self.burst_until {
            return None;
        }
        let now = Instant::now();
        self.burst_until = due.max(now) + PACE_SLACK;
        if due > now {
            Some(due)
        } else {
            *max_behind = (*max_behind).max(now - due);
            None
        }
    }
}

/// A sender, its sockets bound.
pub struct Sender {
    source: Source,
    options: SenderOptions,
    socket: UdpSocket,
    server: Option<UdpSocket>,
    drops: Vec<Dropper>,
    report: SenderReport,
    last_packet: Instant,
}

impl Sender {
    /// A sender of `store` as `options` say; binds its sockets now.
    pub fn new(store: Arc<MessageStore>, options: SenderOptions) -> io::Result<Self> {
        Self::with_source(Source::Day(store), options)
    }

    /// A sender that replays `capture` to `options.lines` (its datagrams
    /// as captured: `options.session`, `max_payload` and `heartbeat` play
    /// no part) at `options.pace`; binds its socket now. Refuses a
    /// retransmission server: a capture is no store of messages to answer from.
    pub fn replay(capture: Arc<CapturedStream>, options: SenderOptions) -> io::Result<Self> {
        if options.retransmit.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a replayed capture has no retransmission server (its datagrams are sent \
                 as captured); replay without one, or send the ITCH file instead",
            ));
        }
        Self::with_source(Source::Capture(capture), options)
    }

    fn with_source(source: Source, options: SenderOptions) -> io::Result<Self> {
        if options.lines.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a sender needs at least one line (a multicast group)",
            ));
        }
        let socket = UdpSocket::multicast_sender(options.interface, options.ttl)?;
        let server = options.retransmit.map(UdpSocket::unicast).transpose()?;
        let drops = options
            .lines
            .iter()
            .map(|l| Dropper::new(&l.drop))
            .collect();
        let report = SenderReport {
            dropped: vec![0; options.lines.len()],
            ..SenderReport::default()
        };
        Ok(Self {
            source,
            options,
            socket,
            server,
            drops,
            report,
            last_packet: Instant::now(),
        })
    }

    /// Where the retransmission server listens, if there is one.
    pub fn retransmit_addr(&self) -> Option<SocketAddrV4> {
        self.server.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// Sends the whole day, then the end of the session, then lingers
    /// (a replay: every captured datagram, then returns); returns early
    /// (with `stopped`) once `stop` is set.
    pub fn run(self, stop: &AtomicBool) -> io::Result<SenderReport> {
        match self.source.clone() {
            Source::Day(store) => self.send_day(&store, stop),
            Source::Capture(capture) => self.send_capture(&capture, stop),
        }
    }

    fn send_capture(
        mut self,
        capture: &CapturedStream,
        stop: &AtomicBool,
    ) -> io::Result<SenderReport> {
        let started = Instant::now();
        let mut pacer = Pacer::new(self.options.pace, started);
        let first_time = capture.get(0).map_or(0, |(t, ..)| t);
        for i in 0..capture.len() {
            let (time, payload, messages, messages_before) = capture.get(i).expect("i < len");
            let due = pacer.due(messages_before, Some(time.saturating_sub(first_time)));
            if let Some(until) = pacer.hold(due, &mut self.report.max_behind) {
                if !self.wait_until(until, None, stop)? {
                    self.report.stopped = true;
                    return Ok(self.finish(started));
                }
            }
            self.send_packet(payload)?;
            self.report.messages += messages;
            if self.report.packets % 64 == 0 && stop.load(Ordering::Relaxed) {
                self.report.stopped = true;
                return Ok(self.finish(started));
            }
        }
        Ok(self.finish(started))
    }

    fn send_day(mut self, store: &MessageStore, stop: &AtomicBool) -> io::Result<SenderReport> {
        let started = Instant::now();
        let n = store.len();
        let mut builder =
            PacketBuilder::with_max_payload(self.options.session, 1, self.options.max_payload);
        let first_time = store.timestamp(1).unwrap_or(0);
        let mut pacer = Pacer::new(self.options.pace, started);
        for seq in 1..=n {
            let since_first = store.timestamp(seq).map(|t| t.saturating_sub(first_time));
            let due = pacer.due(seq - 1, since_first);
            if let Some(until) = pacer.hold(due, &mut self.report.max_behind) {
                // A message never waits for its packet to fill.
                if let Some(packet) = builder.flush() {
                    self.send_packet(&packet)?;
                }
                if !self.wait_until(until, Some(&builder), stop)? {
                    self.report.stopped = true;
                    return Ok(self.finish(started));
                }
            }
            let message = store.get(seq).expect("seq <= len");
            match builder.push(message) {
                Ok(Some(packet)) => self.send_packet(&packet)?,
                Ok(None) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("message {seq}: {e}; raise the packet size (max_payload)"),
                    ))
                }
            }
            self.report.messages += 1;
            if self.report.packets % 64 == 0 {
                self.serve_requests()?;
                if stop.load(Ordering::Relaxed) {
                    self.report.stopped = true;
                    return Ok(self.finish(started));
                }
            }
        }
        if let Some(packet) = builder.flush() {
            self.send_packet(&packet)?;
        }
        let end = builder.end_of_session();
        self.send_to_every_line(&end)?;
        self.report.elapsed = started.elapsed();
        // Linger: answer requests, repeat the end of session now and then
        // (receivers that missed it learn the last sequence from it).
        let linger_until = Instant::now() + self.options.linger;
        let mut next_end = Instant::now() + self.options.heartbeat.min(Duration::from_millis(100));
        while Instant::now() < linger_until && !stop.load(Ordering::Relaxed) {
            let wait = next_end
                .min(linger_until)
                .saturating_duration_since(Instant::now());
            self.serve_for(wait)?;
            if Instant::now() >= next_end {
                self.send_to_every_line(&end)?;
                next_end = Instant::now() + self.options.heartbeat;
            }
        }
        Ok(self.report)
    }

    fn finish(mut self, started: Instant) -> SenderReport {
        self.report.elapsed = started.elapsed();
        self.report
    }

    /// Waits until `due`, answering requests and sending heartbeats
    /// (`builder`'s, when given) meanwhile; `false` when stopped.
    fn wait_until(
        &mut self,
        due: Instant,
        builder: Option<&PacketBuilder>,
        stop: &AtomicBool,
    ) -> io::Result<bool> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let now = Instant::now();
            if now >= due {
                return Ok(true);
            }
            if let Some(builder) =
                builder.filter(|_| now >= self.last_packet + self.options.heartbeat)
            {
                self.send_to_every_line(&builder.heartbeat())?;
                self.report.heartbeats += 1;
            }
            // Without heartbeats of its own (a replay), only the due time counts.
            let heartbeat_in = match builder {
                Some(_) => {
                    (self.last_packet + self.options.heartbeat).saturating_duration_since(now)
                }
                None => Duration::MAX,
            };
            self.serve_for(
                (due - now)
                    .min(heartbeat_in)
                    .min(Duration::from_millis(100)),
            )?;
        }
    }

    /// Sends a message packet to every line, except where a line skips it.
    fn send_packet(&mut self, packet: &[u8]) -> io::Result<()> {
        let number = self.report.packets;
        self.report.packets += 1;
        self.report.bytes += packet.len() as u64;
        for (i, line) in self.options.lines.iter().enumerate() {
            if self.drops[i].skips(number) {
                self.report.dropped[i] += 1;
            } else {
                self.socket.send_to(packet, line.group)?;
            }
        }
        self.last_packet = Instant::now();
        Ok(())
    }

    fn send_to_every_line(&mut self, packet: &[u8]) -> io::Result<()> {
        for line in &self.options.lines {
            self.socket.send_to(packet, line.group)?;
        }
        self.last_packet = Instant::now();
        Ok(())
    }

    /// Answers requests for up to `wait` (at once when some are queued).
    fn serve_for(&mut self, wait: Duration) -> io::Result<()> {
        match &self.server {
            Some(server) => {
                if server.wait_readable(Some(wait))? {
                    self.serve_requests()?;
                }
            }
            None => std::thread::sleep(wait),
        }
        Ok(())
    }

    /// Answers every request queued now.
    fn serve_requests(&mut self) -> io::Result<()> {
        let Some(server) = &self.server else {
            return Ok(());
        };
        let mut buf = [0u8; 64];
        while let Some((len, from)) = server.try_recv_from(&mut buf)? {
            let request = match RetransmitRequest::decode(&buf[..len]) {
                Ok(r) if r.session == self.options.session && r.count > 0 => r,
                _ => {
                    self.report.bad_requests += 1;
                    continue;
                }
            };
            let Source::Day(store) = &self.source else {
                // A replay has no server (refused in `replay`).
                return Ok(());
            };
            let last = store.len();
            if request.sequence == 0 || request.sequence > last {
                self.report.bad_requests += 1;
                continue;
            }
            self.report.requests += 1;
            let end = request
                .sequence
                .saturating_add(u64::from(request.count))
                .min(last + 1);
            let mut answer = PacketBuilder::with_max_payload(
                self.options.session,
                request.sequence,
                self.options.max_payload,
            );
            let mut packets = 0;
            for seq in request.sequence..end {
                let message = store.get(seq).expect("seq <= len");
                if let Ok(Some(packet)) = answer.push(message) {
                    server.send_to(&packet, from)?;
                    self.report.retransmitted += messages_in(&packet);
                    packets += 1;
                    if packets == MAX_ANSWER_PACKETS {
                        break;
                    }
                }
            }
            if packets < MAX_ANSWER_PACKETS {
                if let Some(packet) = answer.flush() {
                    server.send_to(&packet, from)?;
                    self.report.retransmitted += messages_in(&packet);
                }
            }
        }
        Ok(())
    }
}

/// The message count of a packet the builder made.
fn messages_in(packet: &[u8]) -> u64 {
    u64::from(u16::from_be_bytes([packet[18], packet[19]]))
}

/// Decides which packets a line skips.
enum Dropper {
    Never,
    Percent { threshold: u64, state: u64 },
    Packets(std::collections::HashSet<u64>),
}

impl Dropper {
    fn new(plan: &DropPlan) -> Self {
        match plan {
            DropPlan::Never => Dropper::Never,
            DropPlan::Percent { percent, seed } => Dropper::Percent {
                threshold: ((percent.clamp(0.0, 100.0) / 100.0) * u64::MAX as f64) as u64,
                // Never 0: xorshift would stay there.
                state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            },
            DropPlan::Packets(list) => Dropper::Packets(list.iter().copied().collect()),
        }
    }

    fn skips(&mut self, packet: u64) -> bool {
        match self {
            Dropper::Never => false,
            Dropper::Percent { threshold, state } => {
                // xorshift64*: a fixed sequence per seed.
                *state ^= *state >> 12;
                *state ^= *state << 25;
                *state ^= *state >> 27;
                state.wrapping_mul(0x2545_F491_4F6C_DD1D) < *threshold
            }
            Dropper::Packets(set) => set.contains(&packet),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_padded_and_checked() {
        assert_eq!(&session("TEST").unwrap(), b"TEST      ");
        assert!(session("ELEVEN_CHAR").is_err());
        assert!(session("a b").is_err());
    }

    #[test]
    fn drop_plans_are_deterministic_and_near_their_rate() {
        let plan = DropPlan::Percent {
            percent: 5.0,
            seed: 7,
        };
        let (mut a, mut b) = (Dropper::new(&plan), Dropper::new(&plan));
        let skipped: Vec<bool> = (0..100_000).map(|i| a.skips(i)).collect();
        assert!(skipped.iter().zip(0..).all(|(s, i)| *s == b.skips(i)));
        let n = skipped.iter().filter(|s| **s).count();
        assert!((4_000..6_000).contains(&n), "{n}");
        let mut list = Dropper::new(&DropPlan::Packets(vec![3, 5]));
        assert_eq!(
            (0..7).filter(|i| list.skips(*i)).collect::<Vec<_>>(),
            [3, 5]
        );
    }
}
