//! The feed handler: receives a MoldUDP64 stream on one or two lines (A and
//! B, the same stream on two multicast groups), takes the first copy of
//! every message (arbitration), finds gaps, asks the retransmission server
//! for what is missing, and hands every message to a [`Deliver`] in
//! sequence order, exactly once, with its kernel receive time. What cannot
//! be recovered is declared lost, in order, by exact sequence ranges.
//!
//! Ordering: a message that arrives after a gap waits (in `pending`) until
//! the gap is filled or declared lost, so consumers never see an execution
//! before its order. The invariant kept: every sequence number below the
//! tracker's `expected` is delivered, pending, missing (in a gap) or lost;
//! pending ones are all above the lowest gap.

use crate::capture::WireCapture;
use crate::udp::{wait_any, RealtimeToMonotonic, RecvBatch, UdpSocket};
use ringcast_feed::mold::{Packet, PacketKind, RetransmitRequest, SequenceTracker, Session};
use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// An error a [`Deliver`] stops the handler with.
pub type DeliverError = Box<dyn std::error::Error + Send + Sync>;

/// Where the handler's messages go.
pub trait Deliver {
    /// Message `seq`, in sequence order, received at `recv_ns`
    /// (CLOCK_MONOTONIC ns, the kernel's receive time of its packet).
    fn message(&mut self, seq: u64, message: &[u8], recv_ns: u64) -> Result<(), DeliverError>;

    /// Messages `lost` will never come (told in order with the messages).
    fn lost(&mut self, lost: Range<u64>) -> Result<(), DeliverError> {
        let _ = lost;
        Ok(())
    }
}

/// Everything about a handler.
#[derive(Debug, Clone)]
pub struct HandlerOptions {
    /// The A line's multicast group, and the B line's if any.
    pub lines: Vec<SocketAddrV4>,
    /// Address of the interface to join the groups on (127.0.0.1: loopback).
    pub interface: Ipv4Addr,
    /// The retransmission server; `None`: gaps are only filled by the other line.
    pub retransmit: Option<SocketAddrV4>,
    /// Receive buffer per line, bytes (the kernel may give less; see the report).
    pub receive_buffer: usize,
    /// Datagrams received per system call, at most.
    pub batch: usize,
    /// How long a gap waits for the other line before it is requested.
    pub arbitration: Duration,
    /// How long a request waits for its answer before it is sent again.
    pub request_timeout: Duration,
    /// Requests of a gap that go unanswered (no retransmitted message at
    /// all arrived meanwhile) before the gap is declared lost.
    pub max_requests: u32,
    /// Messages asked for per request, at most.
    pub max_request_count: u16,
    /// Messages requested and not yet answered, at most, over all gaps: the
    /// answers must fit the receive buffer (lower gaps are asked first).
    pub max_in_flight: u64,
    /// The session to follow; `None`: the first one seen.
    pub session: Option<Session>,
    /// The first sequence number expected (1: the session from its start,
    /// recovering whatever came before joining).
    pub first: u64,
    /// Stop when nothing arrived for this long; `None`: wait for the end of
    /// the session.
    pub idle_timeout: Option<Duration>,
    /// Most messages held back behind gaps; beyond it, the lowest gap is
    /// declared lost at once rather than growing without bound.
    pub max_pending: usize,
    /// Write every datagram received (both lines and the retransmission
    /// socket, duplicates and damaged ones too) to this pcapng file
    /// (appended to when it exists: see [`crate::capture`]).
    pub capture: Option<PathBuf>,
}

impl HandlerOptions {
    /// Defaults: one line over loopback, no retransmission server, 64 MiB
    /// receive buffers, batches of 64, 1 ms arbitration, requests retried
    /// every 20 ms until 5 in a row go unanswered, 20,000 messages in flight.
    pub fn new(group: SocketAddrV4) -> Self {
        Self {
            lines: vec![group],
            interface: Ipv4Addr::LOCALHOST,
            retransmit: None,
            receive_buffer: 64 << 20,
            batch: 64,
            arbitration: Duration::from_millis(1),
            request_timeout: Duration::from_millis(20),
            max_requests: 5,
            max_request_count: 1000,
            max_in_flight: 20_000,
            session: None,
            first: 1,
            idle_timeout: None,
            max_pending: 1 << 20,
            capture: None,
        }
    }
}

/// What one line brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineReport {
    /// The line's group.
    pub group: Option<SocketAddrV4>,
    /// Datagrams received.
    pub packets: u64,
    /// Messages this line delivered first (its arbitration wins).
    pub first: u64,
    /// Messages that were already there (from the other line, a
    /// retransmission, or sent twice).
    pub duplicates: u64,
    /// Datagrams that were not well-formed MoldUDP64 packets.
    pub bad_packets: u64,
    /// Datagrams the kernel dropped for want of buffer space (`None`: unknown).
    pub kernel_drops: Option<u64>,
    /// The receive buffer the kernel gave the line, bytes.
    pub receive_buffer: usize,
}

/// What a handler did: exact accounts of every sequence number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerReport {
    /// The session followed (space-trimmed), once one was seen.
    pub session: Option<String>,
    /// Per line.
    pub lines: Vec<LineReport>,
    /// Messages delivered, in order.
    pub delivered: u64,
    /// Gaps found (a jump in the sequence, or a heartbeat announcing more).
    pub gaps: u64,
    /// Messages of gaps filled by the other line.
    pub filled_by_line: u64,
    /// Messages of gaps filled by the retransmission server.
    pub recovered: u64,
    /// Retransmission requests sent.
    pub requests: u64,
    /// Answers (packets) from the retransmission server.
    pub answers: u64,
    /// What could not be recovered, in order: exact sequence ranges.
    pub unrecovered: Vec<Range<u64>>,
    /// Messages in `unrecovered`.
    pub lost: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Packets of other sessions, ignored.
    pub other_session: u64,
    /// The end of the session was seen and everything before it accounted for.
    pub ended: bool,
    /// The next sequence number expected.
    pub next_sequence: u64,
    /// Datagrams written to the capture file (0 without one).
    pub captured: u64,
}

/// Where a datagram came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Line(usize),
    Retransmission,
}

/// When a gap was found, and how its requests went.
#[derive(Clone, Copy, Debug)]
struct GapState {
    found: Instant,
    /// Requests that timed out with no retransmitted message arriving
    /// meanwhile (the server is not answering).
    failures: u32,
    /// The last request: when, how many messages, and the handler's
    /// `recovered` count then.
    last_request: Option<(Instant, u64, u64)>,
}

impl GapState {
    fn new(found: Instant) -> Self {
        Self {
            found,
            failures: 0,
            last_request: None,
        }
    }
}

/// A handler with its sockets joined.
pub struct Handler {
    options: HandlerOptions,
    lines: Vec<UdpSocket>,
    requests: Option<UdpSocket>,
    batch: RecvBatch,
    clock: RealtimeToMonotonic,
    clock_refreshed: Instant,
    session: Option<Session>,
    tracker: SequenceTracker,
    pending: BTreeMap<u64, (Vec<u8>, u64)>,
    gap_states: BTreeMap<u64, GapState>,
    end_at: Option<u64>,
    last_datagram: Instant,
    /// When the gaps are looked at next (see [`MAINTAIN_EVERY`]).
    next_maintain: Instant,
    /// The wire capture, if asked for: interface `i` is line `i`, the
    /// retransmission socket comes after the lines.
    capture: Option<WireCapture>,
    report: HandlerReport,
}

/// How often open gaps are looked at (requests due, gaps to declare lost):
/// well below the arbitration and request timeouts they serve.
const MAINTAIN_EVERY: Duration = Duration::from_micros(100);

/// Largest datagram received whole (MoldUDP64 packets fit an Ethernet
/// MTU; loopback allows up to 64 KiB).
const DATAGRAM_SIZE: usize = 2048;

impl Handler {
    /// Joins the lines (and opens the request socket) now.
    pub fn new(options: HandlerOptions) -> io::Result<Self> {
        if options.lines.is_empty() || options.lines.len() > 2 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a feed handler takes one line (A) or two (A and B)",
            ));
        }
        let lines = options
            .lines
            .iter()
            .map(|g| UdpSocket::multicast_receiver(*g, options.interface, options.receive_buffer))
            .collect::<io::Result<Vec<_>>>()?;
        let requests = match options.retransmit {
            Some(_) => {
                let s = UdpSocket::unicast(SocketAddrV4::new(options.interface, 0))?;
                // Answers come in bursts of up to max_in_flight messages.
                s.set_receive_buffer(options.receive_buffer)?;
                Some(s)
            }
            None => None,
        };
        let capture = match &options.capture {
            Some(path) => {
                let mut interfaces: Vec<(String, SocketAddrV4)> = options
                    .lines
                    .iter()
                    .zip(["A", "B"])
                    .map(|(g, name)| (format!("ringcast line {name} {g}"), *g))
                    .collect();
                if let Some(s) = &requests {
                    let addr = s.local_addr()?;
                    interfaces.push((format!("ringcast retransmissions to {addr}"), addr));
                }
                Some(WireCapture::open(path, &interfaces)?)
            }
            None => None,
        };
        let report = HandlerReport {
            lines: options
                .lines
                .iter()
                .zip(&lines)
                .map(|(g, s)| LineReport {
                    group: Some(*g),
                    receive_buffer: s.receive_buffer().unwrap_or(0),
                    ..LineReport::default()
                })
                .collect(),
            next_sequence: options.first,
            ..HandlerReport::default()
        };
        Ok(Self {
            batch: RecvBatch::new(options.batch, DATAGRAM_SIZE),
            session: options.session,
            tracker: SequenceTracker::new(options.first),
            options,
            lines,
            requests,
            clock: RealtimeToMonotonic::new(),
            clock_refreshed: Instant::now(),
            pending: BTreeMap::new(),
            gap_states: BTreeMap::new(),
            end_at: None,
            last_datagram: Instant::now(),
            next_maintain: Instant::now(),
            capture,
            report,
        })
    }

    /// Runs until the end of the session is accounted for, the idle timeout,
    /// or `stop`; the report.
    pub fn run(&mut self, sink: &mut impl Deliver, stop: &AtomicBool) -> io::Result<HandlerReport> {
        while !stop.load(Ordering::Relaxed) {
            if self.poll(sink, Duration::from_millis(100))? {
                break;
            }
        }
        Ok(self.report())
    }

    /// Receives and delivers for at most about `budget`; `true` once done
    /// (end of session accounted for, or idle for the idle timeout).
    /// Bindings call this in slices to look at signals in between.
    pub fn poll(&mut self, sink: &mut impl Deliver, budget: Duration) -> io::Result<bool> {
        let until = Instant::now() + budget;
        loop {
            let mut got = 0;
            for i in 0..self.lines.len() {
                got += self.receive(Source::Line(i), sink)?;
            }
            if self.requests.is_some() {
                got += self.receive(Source::Retransmission, sink)?;
            }
            let now = Instant::now();
            if got > 0 {
                self.last_datagram = now;
            }
            if let Some(capture) = &mut self.capture {
                capture.flush_if_due(now)?;
            }
            // Gap timers are milliseconds long: looking at them every
            // MAINTAIN_EVERY, not after every batch, keeps the per-batch
            // cost of an open gap to one comparison.
            if now >= self.next_maintain
                && (!self.gap_states.is_empty() || self.tracker.first_gap().is_some())
            {
                self.maintain(now, sink)?;
                self.next_maintain = now + MAINTAIN_EVERY;
            }
            if self.done() {
                self.report.ended = true;
                self.flush_capture()?;
                return Ok(true);
            }
            if self
                .options
                .idle_timeout
                .is_some_and(|t| now >= self.last_datagram + t)
            {
                self.flush_capture()?;
                return Ok(true);
            }
            if now >= until {
                return Ok(false);
            }
            if got == 0 {
                let mut wait = if self.tracker.first_gap().is_some() {
                    Duration::from_millis(1)
                } else {
                    until.saturating_duration_since(now)
                };
                // Captured datagrams reach the file within the flush
                // period even when nothing more arrives.
                if let Some(by) = self.capture.as_ref().and_then(WireCapture::flush_by) {
                    wait = wait.min(by.saturating_duration_since(now));
                }
                wait_any(self.lines.iter().chain(self.requests.as_ref()), Some(wait))?;
            }
        }
    }

    /// Writes out every datagram captured so far (the handler does on its
    /// own every [`crate::capture::CAPTURE_FLUSH_EVERY`] and when it is
    /// done; call this when stopping it otherwise). Nothing without a capture.
    pub fn flush_capture(&mut self) -> io::Result<()> {
        match &mut self.capture {
            Some(capture) => capture.flush(),
            None => Ok(()),
        }
    }

    /// What was done so far.
    pub fn report(&self) -> HandlerReport {
        let mut r = self.report.clone();
        r.captured = self.capture.as_ref().map_or(0, WireCapture::datagrams);
        for (line, socket) in r.lines.iter_mut().zip(&self.lines) {
            line.kernel_drops = socket.kernel_drops();
        }
        r.next_sequence = self.tracker.expected();
        r
    }

    /// The end of the session was seen, and every message before it was
    /// delivered or declared lost.
    fn done(&self) -> bool {
        self.end_at
            .is_some_and(|end| self.tracker.expected() >= end)
            && self.tracker.first_gap().is_none()
            && self.pending.is_empty()
    }

    /// Receives what is queued on one socket; how many datagrams.
    fn receive(&mut self, source: Source, sink: &mut impl Deliver) -> io::Result<usize> {
        let socket = match source {
            Source::Line(i) => &self.lines[i],
            Source::Retransmission => self.requests.as_ref().expect("requests socket"),
        };
        let n = self.batch.recv(socket)?;
        if n == 0 {
            return Ok(0);
        }
        if let Some(capture) = &mut self.capture {
            // A wire capture: every datagram, before it is judged.
            let interface = match source {
                Source::Line(i) => i,
                Source::Retransmission => self.lines.len(),
            };
            for d in self.batch.iter() {
                capture.record(interface, &d)?;
            }
        }
        if self.clock_refreshed.elapsed() > Duration::from_secs(1) {
            self.clock.refresh();
            self.clock_refreshed = Instant::now();
        }
        // The batch is taken out while its datagrams are handled (they
        // borrow it); it goes back before the next receive.
        let batch = std::mem::replace(&mut self.batch, RecvBatch::empty());
        let mut result = Ok(());
        for d in batch.iter() {
            let recv_ns = d
                .kernel_realtime_ns
                .map_or_else(ringcast_core::sys::clock::now_ns, |t| self.clock.convert(t));
            if let Err(e) = self.on_datagram(source, d.data, d.truncated, recv_ns, sink) {
                result = Err(e);
                break;
            }
        }
        self.batch = batch;
        result.map(|()| n)
    }

    fn on_datagram(
        &mut self,
        source: Source,
        data: &[u8],
        truncated: bool,
        recv_ns: u64,
        sink: &mut impl Deliver,
    ) -> io::Result<()> {
        match source {
            Source::Line(i) => self.report.lines[i].packets += 1,
            Source::Retransmission => self.report.answers += 1,
        }
        let packet = match Packet::parse(data) {
            Ok(p) if !truncated && p.validate().is_ok() => p,
            _ => {
                // A damaged packet counts as not received: its messages
                // are a gap like any other.
                if let Source::Line(i) = source {
                    self.report.lines[i].bad_packets += 1;
                }
                return Ok(());
            }
        };
        match self.session {
            None => {
                self.session = Some(*packet.session());
            }
            Some(s) if s != *packet.session() => {
                self.report.other_session += 1;
                return Ok(());
            }
            Some(_) => {}
        }
        if self.report.session.is_none() {
            let name = String::from_utf8_lossy(packet.session());
            self.report.session = Some(name.trim_end().to_owned());
        }
        match packet.kind() {
            PacketKind::Heartbeat => {
                self.report.heartbeats += 1;
                self.announced(packet.sequence(), Instant::now());
            }
            PacketKind::EndOfSession => {
                self.end_at = Some(packet.sequence());
                self.announced(packet.sequence(), Instant::now());
            }
            PacketKind::Messages => {
                let first = packet.sequence();
                for (i, block) in packet.blocks().enumerate() {
                    let message = block.expect("validated above");
                    self.accept(first + i as u64, message, recv_ns, source, sink)?;
                }
            }
        }
        Ok(())
    }

    /// A heartbeat or end of session says the next message is `next`.
    fn announced(&mut self, next: u64, now: Instant) {
        if let Some(gap) = self.tracker.heartbeat(next) {
            self.report.gaps += 1;
            self.gap_states
                .entry(gap.start)
                .or_insert(GapState::new(now));
        }
    }

    #[inline]
    fn accept(
        &mut self,
        seq: u64,
        message: &[u8],
        recv_ns: u64,
        source: Source,
        sink: &mut impl Deliver,
    ) -> io::Result<()> {
        let expected = self.tracker.expected();
        if !self.tracker.accept(seq) {
            if let Source::Line(i) = source {
                self.report.lines[i].duplicates += 1;
            }
            return Ok(());
        }
        match source {
            Source::Line(i) => {
                self.report.lines[i].first += 1;
                if seq < expected {
                    self.report.filled_by_line += 1;
                }
            }
            Source::Retransmission => self.report.recovered += 1,
        }
        if seq > expected {
            self.report.gaps += 1;
            self.gap_states
                .insert(expected, GapState::new(Instant::now()));
        }
        let below_gaps = self.tracker.first_gap().is_none_or(|g| seq < g.start);
        let first_pending = self.pending.first_key_value().map(|(k, _)| *k);
        if below_gaps && first_pending.is_none_or(|p| seq < p) {
            self.report.delivered += 1;
            sink.message(seq, message, recv_ns)
                .map_err(io::Error::other)?;
            if first_pending.is_some() {
                self.drain(sink)?;
            }
        } else {
            self.pending.insert(seq, (message.to_vec(), recv_ns));
        }
        Ok(())
    }

    /// Delivers the pending messages no gap holds back any more.
    fn drain(&mut self, sink: &mut impl Deliver) -> io::Result<()> {
        let bound = self.tracker.first_gap().map_or(u64::MAX, |g| g.start);
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() >= bound {
                break;
            }
            let (seq, (message, recv_ns)) = entry.remove_entry();
            self.report.delivered += 1;
            sink.message(seq, &message, recv_ns)
                .map_err(io::Error::other)?;
        }
        Ok(())
    }

    /// Requests what is missing, and declares lost, in order, the gaps that
    /// ran out of chances.
    fn maintain(&mut self, now: Instant, sink: &mut impl Deliver) -> io::Result<()> {
        let gaps: Vec<Range<u64>> = self.tracker.gaps();
        // Gaps split when filled in part: the pieces keep the original's age.
        let mut states = BTreeMap::new();
        for g in &gaps {
            let state = self
                .gap_states
                .range(..=g.start)
                .next_back()
                .map_or(GapState::new(now), |(_, s)| *s);
            states.insert(g.start, state);
        }
        self.gap_states = states;
        if let (Some(socket), Some(server), Some(session)) =
            (&self.requests, self.options.retransmit, self.session)
        {
            let recovered = self.report.recovered;
            let timeout = self.options.request_timeout;
            // What earlier requests still have on the way.
            let in_flight: u64 = self
                .gap_states
                .values()
                .filter_map(|s| s.last_request)
                .filter(|(at, _, _)| now < *at + timeout)
                .map(|(_, n, _)| n)
                .sum();
            let mut budget = self.options.max_in_flight.saturating_sub(in_flight);
            for g in &gaps {
                let state = self.gap_states.get_mut(&g.start).expect("rebuilt above");
                let due = match state.last_request {
                    None => state.found + self.options.arbitration,
                    Some((at, _, _)) => at + timeout,
                };
                if now < due || state.failures >= self.options.max_requests {
                    continue;
                }
                let piece = g.start..g.end.min(g.start + budget);
                if piece.is_empty() {
                    break;
                }
                if let Some((_, _, recovered_then)) = state.last_request {
                    // Timed out: a failure only if nothing at all came back.
                    if recovered == recovered_then {
                        state.failures += 1;
                        if state.failures >= self.options.max_requests {
                            continue;
                        }
                    }
                }
                for request in RetransmitRequest::covering(
                    session,
                    piece.clone(),
                    self.options.max_request_count,
                ) {
                    socket.send_to(&request.encode(), server)?;
                    self.report.requests += 1;
                }
                let n = piece.end - piece.start;
                budget -= n;
                state.last_request = Some((now, n, recovered));
            }
        }
        while let Some(g) = self.tracker.first_gap() {
            let state = self.gap_states[&g.start];
            let expired = match self.options.retransmit {
                Some(_) => state.failures >= self.options.max_requests,
                None => {
                    now >= state.found + self.options.arbitration + self.options.request_timeout
                }
            } || self.pending.len() > self.options.max_pending;
            if !expired {
                break;
            }
            self.tracker.declare_lost(g.end);
            self.gap_states.remove(&g.start);
            self.report.lost += g.end - g.start;
            self.report.unrecovered.push(g.clone());
            sink.lost(g).map_err(io::Error::other)?;
            self.drain(sink)?;
        }
        Ok(())
    }
}
