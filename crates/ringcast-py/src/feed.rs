//! `_native.itch_*` and `_native.feed_*`: NASDAQ ITCH 5.0 files and the
//! MoldUDP64 feed (crates `ringcast-feed` and `ringcast-feed-net`). The
//! Python module `ringcast.itch` builds the API on these; the sender and
//! the handler run with the GIL released, in slices, so Ctrl-C stops them.

use crate::args::seconds;
use crate::errors::{py_err, raise};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use ringcast_feed::file::{ReadError, SliceReader};
use ringcast_feed::gen::{write_itch, DayConfig};
use ringcast_feed::itch::MessageType;
use ringcast_feed::mold::Session;
use ringcast_feed::pcap::{udp_in_frame, CaptureError, CaptureFormat, CaptureReader};
use ringcast_feed::stats::Report;
use ringcast_feed_net::books::{BookOptions, BookReport, BookService};
use ringcast_feed_net::handler::{Handler, HandlerOptions, HandlerReport};
use ringcast_feed_net::rings::{TopicOptions, TopicRings};
use ringcast_feed_net::sender::{self, DropPlan, Line, Pace, Sender, SenderOptions};
use ringcast_feed_net::store::{CapturedStream, MessageStore, StreamChoice};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Every ITCH 5.0 message type: byte, name, const_name, length,
/// record_size, descr (numpy `.npy` descr of its record), fields
/// (name, kind, offset, scale), in the spec's order.
#[pyfunction]
pub fn itch_types(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for &t in MessageType::ALL {
        let layout = t.record();
        let d = PyDict::new(py);
        d.set_item("byte", (t.byte() as char).to_string())?;
        d.set_item("name", t.name())?;
        d.set_item("const_name", layout.const_name)?;
        d.set_item("length", t.length())?;
        d.set_item("record_size", layout.size)?;
        d.set_item("descr", layout.npy_descr())?;
        let fields: Vec<(&str, String, usize, u32)> = layout
            .fields
            .iter()
            .map(|f| (f.name, f.kind.to_string(), f.offset, f.kind.scale()))
            .collect();
        d.set_item("fields", fields)?;
        list.append(d)?;
    }
    Ok(list)
}

/// Writes a generated trading day of `messages` messages (deterministic by
/// `seed`) to ITCH file `path`; returns the messages written.
#[pyfunction]
#[pyo3(signature = (path, *, seed, messages, symbols = None, halts = None))]
pub fn itch_generate(
    py: Python<'_>,
    path: PathBuf,
    seed: u64,
    messages: u64,
    symbols: Option<usize>,
    halts: Option<usize>,
) -> PyResult<u64> {
    let mut config = DayConfig::new(seed, messages);
    if let Some(n) = symbols {
        if n == 0 || n > usize::from(u16::MAX) {
            return Err(raise(
                py,
                "InvalidArgument",
                format!("symbols must be between 1 and 65535, got {n}"),
            ));
        }
        config.symbols = n;
    }
    if let Some(h) = halts {
        config.halts = h;
    }
    py.allow_threads(|| {
        let file = std::fs::File::create(&path)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let n = write_itch(&config, &mut out)?;
        std::io::Write::flush(&mut out)?;
        Ok(n)
    })
    .map_err(|e: std::io::Error| {
        raise(
            py,
            "FeedError",
            format!("cannot write ITCH file {}: {e}", path.display()),
        )
    })
}

/// A Python callable told a report every `every` seconds, between slices.
struct Progress<'py> {
    call: Option<Bound<'py, PyAny>>,
    every: Duration,
    next: std::time::Instant,
}

impl<'py> Progress<'py> {
    fn new(py: Python<'py>, call: Option<Bound<'py, PyAny>>, every: f64) -> PyResult<Self> {
        let every = seconds(py, "progress_every", every)?;
        Ok(Self {
            call,
            every,
            next: std::time::Instant::now() + every,
        })
    }

    /// Calls back with `report()` when it is time.
    fn tell(&mut self, report: impl FnOnce() -> PyResult<Bound<'py, PyDict>>) -> PyResult<()> {
        let Some(call) = &self.call else {
            return Ok(());
        };
        let now = std::time::Instant::now();
        if now < self.next {
            return Ok(());
        }
        self.next = now + self.every;
        call.call1((report()?,))?;
        Ok(())
    }
}

fn report_dict<'py>(py: Python<'py>, r: &Report) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("messages", r.messages)?;
    d.set_item("errors", r.errors)?;
    d.set_item("bytes", r.bytes)?;
    let by_type = PyDict::new(py);
    for (name, _, n) in &r.by_type {
        by_type.set_item(*name, n)?;
    }
    d.set_item("by_type", by_type)?;
    let errors = PyDict::new(py);
    errors.set_item("empty", r.empty)?;
    errors.set_item("unknown_type", r.unknown_type)?;
    errors.set_item("wrong_length", r.wrong_length)?;
    errors.set_item("truncated_tail", r.truncated_tail)?;
    d.set_item("error_kinds", errors)?;
    Ok(d)
}

fn read_path(py: Python<'_>, path: &PathBuf) -> PyResult<Vec<u8>> {
    py.allow_threads(|| std::fs::read(path)).map_err(|e| {
        raise(
            py,
            "FeedError",
            format!("cannot read ITCH file {}: {e}", path.display()),
        )
    })
}

/// Reads ITCH file `path`: `{"report": counts, "errors": [(offset, what),
/// ...] (the first `max_errors`), "records": {type name: bytes of its
/// records, recv_ns 0} (only when `records`; only the types named in
/// `types`, by byte or name, when given)}`.
#[pyfunction]
#[pyo3(signature = (path, *, records = true, max_errors = 20, types = None))]
pub fn itch_read(
    py: Python<'_>,
    path: PathBuf,
    records: bool,
    max_errors: usize,
    types: Option<Vec<String>>,
) -> PyResult<Bound<'_, PyDict>> {
    let wanted = match types {
        None => vec![true; MessageType::ALL.len()],
        Some(names) => {
            let mut wanted = vec![false; MessageType::ALL.len()];
            for name in names {
                wanted[message_type(py, &name)?.index()] = true;
            }
            wanted
        }
    };
    let bytes = read_path(py, &path)?;
    let (report, errors, tables) = py.allow_threads(|| {
        // A first pass counts each type's messages, so that every table is
        // allocated once, at its size (no growing copies).
        let mut tables: Vec<Vec<u8>> = vec![Vec::new(); MessageType::ALL.len()];
        if records {
            let mut counts = vec![0usize; MessageType::ALL.len()];
            let mut frames = SliceReader::new(&bytes);
            while let Some(Ok(frame)) = frames.next_frame() {
                if let Some(t) = frame.first().and_then(|b| MessageType::from_byte(*b)) {
                    counts[t.index()] += 1;
                }
            }
            for (&t, table) in MessageType::ALL.iter().zip(&mut tables) {
                if wanted[t.index()] {
                    table.reserve_exact(counts[t.index()] * t.record().size);
                }
            }
        }
        let mut reader = SliceReader::new(&bytes);
        let mut errors = Vec::new();
        let mut buf = [0u8; ringcast_feed::record::MAX_RECORD_SIZE];
        for item in reader.by_ref() {
            match item {
                Ok(m) if records && wanted[m.message_type().index()] => {
                    let n = m.write_record(0, &mut buf).expect("records fit");
                    tables[m.message_type().index()].extend_from_slice(&buf[..n]);
                }
                Ok(_) => {}
                Err(e) => {
                    if errors.len() < max_errors {
                        let offset = match e {
                            ReadError::Decode { offset, .. }
                            | ReadError::TruncatedTail { offset, .. } => offset,
                        };
                        errors.push((offset, e.to_string()));
                    }
                }
            }
        }
        (reader.counts().report(), errors, tables)
    });
    let out = PyDict::new(py);
    out.set_item("report", report_dict(py, &report)?)?;
    out.set_item("errors", errors)?;
    if records {
        let by_name = PyDict::new(py);
        for (&t, table) in MessageType::ALL.iter().zip(tables) {
            // The table becomes the array's memory: no copy.
            by_name.set_item(t.name(), numpy::PyArray1::from_vec(py, table))?;
        }
        out.set_item("records", by_name)?;
    }
    Ok(out)
}

/// The message type with type byte or name `name`.
fn message_type(py: Python<'_>, name: &str) -> PyResult<MessageType> {
    MessageType::ALL
        .iter()
        .copied()
        .find(|t| t.name() == name || (t.byte() as char).to_string() == name)
        .ok_or_else(|| {
            raise(
                py,
                "InvalidArgument",
                format!(
                    "no ITCH message type {name:?}; use a type byte (\"A\") or name \
                     (\"add_order\"): see ringcast.itch.MESSAGE_TYPES"
                ),
            )
        })
}

/// The multicast groups of line A (and B): one or two `ADDR:PORT`s.
fn line_groups(py: Python<'_>, groups: &[String]) -> PyResult<Vec<SocketAddrV4>> {
    if groups.is_empty() || groups.len() > 2 {
        return Err(raise(
            py,
            "InvalidArgument",
            format!(
                "give one group (line A) or two (A and B), got {}",
                groups.len()
            ),
        ));
    }
    // Checked before anything is made (the handler's rings, the sender's file).
    groups
        .iter()
        .map(|g| {
            let group = endpoint(py, "group", g)?;
            ringcast_feed_net::udp::check_group(group)
                .map_err(|e| raise(py, "InvalidArgument", e.to_string()))?;
            Ok(group)
        })
        .collect()
}

/// `ADDR:PORT` of a group or server, or an InvalidArgument saying what to give.
fn endpoint(py: Python<'_>, what: &str, text: &str) -> PyResult<SocketAddrV4> {
    text.parse().map_err(|_| {
        raise(
            py,
            "InvalidArgument",
            format!("{what} must be an IPv4 ADDRESS:PORT such as 239.1.1.1:31001, got {text:?}"),
        )
    })
}

fn interface_addr(py: Python<'_>, text: &str) -> PyResult<Ipv4Addr> {
    text.parse().map_err(|_| {
        raise(
            py,
            "InvalidArgument",
            format!(
                "interface must be the IPv4 address of a local interface (127.0.0.1 for \
                 loopback), got {text:?}"
            ),
        )
    })
}

fn session_arg(py: Python<'_>, name: &str) -> PyResult<Session> {
    sender::session(name).map_err(|e| raise(py, "InvalidArgument", e))
}

/// [`seconds`], or zero for 0 (no linger, no arbitration wait).
fn seconds_or_zero(py: Python<'_>, what: &str, value: f64) -> PyResult<Duration> {
    if value == 0.0 {
        Ok(Duration::ZERO)
    } else {
        seconds(py, what, value)
    }
}

fn io_err(py: Python<'_>, what: &str, e: std::io::Error) -> PyErr {
    raise(py, "FeedError", format!("{what}: {e}"))
}

/// How a line skips packets on purpose: `None`, a percentage, or a list
/// of packet numbers.
fn drop_plan(py: Python<'_>, spec: &Bound<'_, PyAny>, seed: u64) -> PyResult<DropPlan> {
    if spec.is_none() {
        return Ok(DropPlan::Never);
    }
    if let Ok(percent) = spec.extract::<f64>() {
        if !(0.0..=100.0).contains(&percent) {
            return Err(raise(
                py,
                "InvalidArgument",
                format!("a drop percentage is between 0 and 100, got {percent}"),
            ));
        }
        return Ok(DropPlan::Percent { percent, seed });
    }
    spec.extract::<Vec<u64>>()
        .map(DropPlan::Packets)
        .map_err(|_| {
            raise(
                py,
                "InvalidArgument",
                format!(
                    "a line's drop is None, a percentage, or a list of packet numbers, got {spec}"
                ),
            )
        })
}

/// The pace of a sender: `rate` messages per second, `speed` times the
/// original pace, or flat out.
fn pace_arg(py: Python<'_>, rate: Option<f64>, speed: Option<f64>) -> PyResult<Pace> {
    match (rate, speed) {
        (Some(_), Some(_)) => Err(raise(
            py,
            "InvalidArgument",
            "give rate= (messages per second) or speed= (times the original pace), not both"
                .to_owned(),
        )),
        (Some(r), None) if r.is_finite() && r > 0.0 => Ok(Pace::Rate(r)),
        (None, Some(s)) if s.is_finite() && s > 0.0 => Ok(Pace::Original { speed: s }),
        (None, None) => Ok(Pace::Max),
        _ => Err(raise(
            py,
            "InvalidArgument",
            "rate and speed must be positive numbers".to_owned(),
        )),
    }
}

/// The lines of a sender: each group with its drop plan.
fn lines_arg(
    py: Python<'_>,
    groups: Vec<SocketAddrV4>,
    drops: Option<Vec<Bound<'_, PyAny>>>,
    drop_seed: u64,
) -> PyResult<Vec<Line>> {
    let drops = drops.unwrap_or_default();
    let mut lines = Vec::new();
    for (i, group) in groups.into_iter().enumerate() {
        let drop = match drops.get(i) {
            Some(spec) => drop_plan(py, spec, drop_seed.wrapping_add(i as u64))?,
            None => DropPlan::Never,
        };
        lines.push(Line { group, drop });
    }
    Ok(lines)
}

/// Runs `sender` in a thread of its own while this one looks at signals
/// (Ctrl-C stops it, then raises); its report.
fn run_sender<'py>(
    py: Python<'py>,
    sender: Sender,
    ready: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    if let Some(ready) = ready {
        let addr = sender.retransmit_addr().map(|a| a.to_string());
        ready.call1((addr,))?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let running = {
        let stop = stop.clone();
        std::thread::spawn(move || sender.run(&stop))
    };
    let mut interrupted = None;
    while !running.is_finished() {
        py.allow_threads(|| std::thread::sleep(Duration::from_millis(20)));
        if let Err(e) = py.check_signals() {
            stop.store(true, Ordering::Relaxed);
            interrupted = Some(e);
        }
    }
    let report = running
        .join()
        .map_err(|_| raise(py, "FeedError", "the sender thread panicked".to_owned()))?
        .map_err(|e| io_err(py, "the sender failed", e))?;
    if let Some(e) = interrupted {
        return Err(e);
    }
    let d = PyDict::new(py);
    d.set_item("messages", report.messages)?;
    d.set_item("packets", report.packets)?;
    d.set_item("bytes", report.bytes)?;
    d.set_item("dropped", report.dropped)?;
    d.set_item("heartbeats", report.heartbeats)?;
    d.set_item("requests", report.requests)?;
    d.set_item("bad_requests", report.bad_requests)?;
    d.set_item("retransmitted", report.retransmitted)?;
    d.set_item("elapsed", report.elapsed.as_secs_f64())?;
    d.set_item("max_behind", report.max_behind.as_secs_f64())?;
    d.set_item("stopped", report.stopped)?;
    Ok(d)
}

/// Sends ITCH file `path` as MoldUDP64 to `groups` (one or two lines);
/// returns the sender's report. Stops early on Ctrl-C (KeyboardInterrupt
/// after the sockets are closed).
#[pyfunction]
#[pyo3(signature = (path, groups, *, interface = "127.0.0.1", ttl = 0, rate = None, speed = None, max_payload = 1400, heartbeat = 1.0, retransmit = None, linger = 0.0, drops = None, drop_seed = 1, session = "RINGCAST", ready = None))]
#[allow(clippy::too_many_arguments)]
pub fn feed_send<'py>(
    py: Python<'py>,
    path: PathBuf,
    groups: Vec<String>,
    interface: &str,
    ttl: u8,
    rate: Option<f64>,
    speed: Option<f64>,
    max_payload: usize,
    heartbeat: f64,
    retransmit: Option<String>,
    linger: f64,
    drops: Option<Vec<Bound<'py, PyAny>>>,
    drop_seed: u64,
    session: &str,
    ready: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let groups = line_groups(py, &groups)?;
    let bytes = read_path(py, &path)?;
    let store =
        MessageStore::from_itch(bytes).map_err(|e| raise(py, "FeedError", e.to_string()))?;
    let pace = pace_arg(py, rate, speed)?;
    let lines = lines_arg(py, groups, drops, drop_seed)?;
    let mut options = SenderOptions::new(session_arg(py, session)?, lines[0].group);
    options.lines = lines;
    options.interface = interface_addr(py, interface)?;
    options.ttl = ttl;
    options.pace = pace;
    options.max_payload = max_payload;
    options.heartbeat = seconds(py, "heartbeat", heartbeat)?;
    options.retransmit = retransmit
        .map(|r| endpoint(py, "retransmit", &r))
        .transpose()?;
    options.linger = seconds_or_zero(py, "linger", linger)?;
    let sender = Sender::new(Arc::new(store), options)
        .map_err(|e| io_err(py, "cannot start the sender", e))?;
    run_sender(py, sender, ready)
}

/// Which stream of a capture: `ADDR:PORT`, or a destination `PORT`.
fn stream_arg(py: Python<'_>, text: Option<&str>) -> PyResult<StreamChoice> {
    let Some(text) = text else {
        return Ok(StreamChoice::First);
    };
    if let Ok(port) = text.trim_start_matches(':').parse::<u16>() {
        return Ok(StreamChoice::Port(port));
    }
    text.parse().map(StreamChoice::Destination).map_err(|_| {
        raise(
            py,
            "InvalidArgument",
            format!(
                "stream must be the captured destination ADDRESS:PORT (239.1.1.1:31001) or \
                 its PORT, got {text:?}"
            ),
        )
    })
}

/// Reads capture file `path` whole, or a FeedError naming it.
fn read_capture(py: Python<'_>, path: &PathBuf) -> PyResult<Vec<u8>> {
    py.allow_threads(|| std::fs::read(path)).map_err(|e| {
        raise(
            py,
            "FeedError",
            format!("cannot read capture file {}: {e}", path.display()),
        )
    })
}

/// Replays one stream of capture `pcap` (pcapng or pcap): its UDP payloads
/// byte for byte, to `groups` (none: the captured destination), paced by
/// `rate` (messages per second), `speed` (times the capture's pace) or
/// flat out; returns the sender's report with `destination` (the stream
/// replayed), `others` (datagrams of other streams left out) and
/// `capture_error` (where a cut or damaged capture stopped, or None).
#[pyfunction]
#[pyo3(signature = (pcap, groups, *, stream = None, interface = "127.0.0.1", ttl = 0, rate = None, speed = None, drops = None, drop_seed = 1, ready = None))]
#[allow(clippy::too_many_arguments)]
pub fn feed_replay<'py>(
    py: Python<'py>,
    pcap: PathBuf,
    groups: Vec<String>,
    stream: Option<&str>,
    interface: &str,
    ttl: u8,
    rate: Option<f64>,
    speed: Option<f64>,
    drops: Option<Vec<Bound<'py, PyAny>>>,
    drop_seed: u64,
    ready: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let choice = stream_arg(py, stream)?;
    let groups = if groups.is_empty() {
        Vec::new()
    } else {
        line_groups(py, &groups)?
    };
    let pace = pace_arg(py, rate, speed)?;
    let interface = interface_addr(py, interface)?;
    let bytes = read_capture(py, &pcap)?;
    let captured = py
        .allow_threads(|| CapturedStream::from_capture(&bytes, choice))
        .map_err(|e| {
            raise(
                py,
                "FeedError",
                format!("cannot replay {}: {e}", pcap.display()),
            )
        })?;
    drop(bytes);
    let groups = if groups.is_empty() {
        let to = captured.destination();
        ringcast_feed_net::udp::check_group(to).map_err(|_| {
            raise(
                py,
                "InvalidArgument",
                format!(
                    "the stream chosen goes to {to}, not a multicast group: give the group to \
                     replay it to (group=, --group)"
                ),
            )
        })?;
        vec![to]
    } else {
        groups
    };
    let lines = lines_arg(py, groups, drops, drop_seed)?;
    let mut options = SenderOptions::new(*b"REPLAY    ", lines[0].group);
    options.lines = lines;
    options.interface = interface;
    options.ttl = ttl;
    options.pace = pace;
    let destination = captured.destination().to_string();
    let others = captured.others();
    let tail = captured.tail().map(|e| e.to_string());
    let sender = Sender::replay(Arc::new(captured), options)
        .map_err(|e| io_err(py, "cannot start the sender", e))?;
    let d = run_sender(py, sender, ready)?;
    d.set_item("destination", destination)?;
    d.set_item("others", others)?;
    d.set_item("capture_error", tail)?;
    Ok(d)
}

/// Reads capture file `path` (pcapng or pcap): `{"format": "pcapng" |
/// "pcap", "packets": n, "datagrams": [(timestamp_ns, interface, source,
/// destination, payload), ...] (its IPv4 UDP datagrams), "interfaces":
/// [(link_type, name), ...] (of the last section), "error": None or what stopped the reading
/// (a cut or damaged tail: everything before it is read), "truncated":
/// whether that was a cut}`.
#[pyfunction]
pub fn pcap_read(py: Python<'_>, path: PathBuf) -> PyResult<Bound<'_, PyDict>> {
    let bytes = read_capture(py, &path)?;
    let mut reader = CaptureReader::new(&bytes).map_err(|e| {
        raise(
            py,
            "FeedError",
            format!("cannot read capture {}: {e}", path.display()),
        )
    })?;
    let datagrams = PyList::empty(py);
    let mut error = None;
    for frame in reader.by_ref() {
        match frame {
            Ok(f) => {
                if let Some(d) = udp_in_frame(f.link_type, f.data) {
                    datagrams.append((
                        f.timestamp_ns,
                        f.interface,
                        d.source.to_string(),
                        d.destination.to_string(),
                        pyo3::types::PyBytes::new(py, d.payload),
                    ))?;
                }
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    // The interfaces of the last section read.
    let interfaces: Vec<(u16, Option<String>)> = reader
        .interfaces()
        .iter()
        .map(|i| (i.link_type, i.name.clone()))
        .collect();
    let d = PyDict::new(py);
    let format = match reader.format() {
        CaptureFormat::Pcapng => "pcapng",
        CaptureFormat::Pcap { .. } => "pcap",
    };
    d.set_item("format", format)?;
    d.set_item("packets", reader.packets())?;
    d.set_item("datagrams", datagrams)?;
    d.set_item("interfaces", interfaces)?;
    d.set_item(
        "truncated",
        matches!(error, Some(CaptureError::Truncated { .. })),
    )?;
    d.set_item("error", error.map(|e| e.to_string()))?;
    Ok(d)
}

fn handler_dict<'py>(
    py: Python<'py>,
    r: &HandlerReport,
    rings: &TopicRings,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("session", r.session.clone())?;
    d.set_item("first", rings.next_sequence())?;
    let lines = PyList::empty(py);
    for l in &r.lines {
        let ld = PyDict::new(py);
        ld.set_item("group", l.group.map(|g| g.to_string()))?;
        ld.set_item("packets", l.packets)?;
        ld.set_item("first", l.first)?;
        ld.set_item("duplicates", l.duplicates)?;
        ld.set_item("bad_packets", l.bad_packets)?;
        ld.set_item("kernel_drops", l.kernel_drops)?;
        ld.set_item("receive_buffer", l.receive_buffer)?;
        lines.append(ld)?;
    }
    d.set_item("lines", lines)?;
    d.set_item("delivered", r.delivered)?;
    d.set_item("gaps", r.gaps)?;
    d.set_item("filled_by_line", r.filled_by_line)?;
    d.set_item("recovered", r.recovered)?;
    d.set_item("requests", r.requests)?;
    d.set_item("answers", r.answers)?;
    let unrecovered: Vec<(u64, u64)> = r.unrecovered.iter().map(|g| (g.start, g.end)).collect();
    d.set_item("unrecovered", unrecovered)?;
    d.set_item("lost", r.lost)?;
    d.set_item("heartbeats", r.heartbeats)?;
    d.set_item("other_session", r.other_session)?;
    d.set_item("ended", r.ended)?;
    d.set_item("next_sequence", r.next_sequence)?;
    d.set_item("captured", r.captured)?;
    d.set_item("published", rings.published())?;
    d.set_item("unrouted", rings.unrouted())?;
    d.set_item("decoded", report_dict(py, &rings.counts().report())?)?;
    Ok(d)
}

/// Receives a MoldUDP64 stream on `groups` (A, and B if given) and
/// publishes every message's record into the rings of bus `bus`, one per
/// message type, and every message in order into `<bus>.itch`; returns the
/// handler's report once the session ended (or the idle timeout). Rings
/// that exist are taken over and the handler resumes after the last
/// message of `<bus>.itch`. Ctrl-C closes the rings and raises
/// KeyboardInterrupt.
#[pyfunction]
#[pyo3(signature = (groups, *, bus, dir = None, capacity = 65536, stream_capacity = 262144, bounded = false, types = None, interface = "127.0.0.1", retransmit = None, arbitration = 0.001, request_timeout = 0.02, max_requests = 5, idle_timeout = None, session = None, receive_buffer = 67108864, capture = None, ready = None, progress = None, progress_every = 0.25))]
#[allow(clippy::too_many_arguments)]
pub fn feed_handle<'py>(
    py: Python<'py>,
    groups: Vec<String>,
    bus: &str,
    dir: Option<PathBuf>,
    capacity: u64,
    stream_capacity: u64,
    bounded: bool,
    types: Option<Vec<String>>,
    interface: &str,
    retransmit: Option<String>,
    arbitration: f64,
    request_timeout: f64,
    max_requests: u32,
    idle_timeout: Option<f64>,
    session: Option<&str>,
    receive_buffer: usize,
    capture: Option<PathBuf>,
    ready: Option<Bound<'py, PyAny>>,
    progress: Option<Bound<'py, PyAny>>,
    progress_every: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let mut progress = Progress::new(py, progress, progress_every)?;
    let groups = line_groups(py, &groups)?;
    if let Some(path) = &capture {
        check_capture_path(py, path)?;
    }
    let mut options = HandlerOptions::new(groups[0]);
    options.lines = groups;
    options.interface = interface_addr(py, interface)?;
    options.retransmit = retransmit
        .map(|r| endpoint(py, "retransmit", &r))
        .transpose()?;
    options.arbitration = seconds_or_zero(py, "arbitration", arbitration)?;
    options.request_timeout = seconds(py, "request_timeout", request_timeout)?;
    options.max_requests = max_requests;
    options.idle_timeout = idle_timeout
        .map(|t| seconds(py, "idle_timeout", t))
        .transpose()?;
    options.session = session.map(|s| session_arg(py, s)).transpose()?;
    options.receive_buffer = receive_buffer;
    options.capture = capture;
    let mut topics = TopicOptions::new(bus);
    topics.dir = dir;
    topics.capacity = capacity;
    topics.stream_capacity = stream_capacity;
    topics.bounded = bounded;
    for name in types.unwrap_or_default() {
        topics.types.push(message_type(py, &name)?);
    }
    let mut rings = TopicRings::create(&topics).map_err(py_err(py))?;
    // A handler restarted on its rings goes on after the last message they
    // hold (what came meanwhile is asked from the retransmission server).
    options.first = rings.next_sequence();
    let mut handler =
        Handler::new(options).map_err(|e| io_err(py, "cannot start the feed handler", e))?;
    if let Some(ready) = ready {
        ready.call0()?;
    }
    let outcome = loop {
        match py.allow_threads(|| handler.poll(&mut rings, Duration::from_millis(50))) {
            Ok(true) => break Ok(()),
            Ok(false) => {}
            Err(e) => break Err(io_err(py, "the feed handler failed", e)),
        }
        if let Err(e) = py
            .check_signals()
            .and_then(|()| progress.tell(|| handler_dict(py, &handler.report(), &rings)))
        {
            break Err(e);
        }
    };
    // Whatever stopped it, what was captured reaches the file.
    let flushed = handler.flush_capture();
    let report = handler.report();
    let d = handler_dict(py, &report, &rings);
    rings.close();
    outcome?;
    flushed.map_err(|e| io_err(py, "the feed handler failed", e))?;
    d
}

/// Refuses, before anything is made, a capture path whose directory is
/// missing or which is a directory itself.
fn check_capture_path(py: Python<'_>, path: &std::path::Path) -> PyResult<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let problem = if path.is_dir() {
        Some("it is a directory".to_owned())
    } else if !dir.is_dir() {
        Some(format!("directory {} does not exist", dir.display()))
    } else {
        None
    };
    match problem {
        Some(p) => Err(raise(
            py,
            "InvalidArgument",
            format!(
                "cannot capture to {}: {p}; give a file path such as /tmp/feed.pcapng",
                path.display()
            ),
        )),
        None => Ok(()),
    }
}

/// Runs the book builder of bus `bus`: reads `<bus>.itch` from its oldest
/// message, publishes book updates into `<bus>.book`; returns its report
/// once the stream ended (Ctrl-C closes the book ring and raises
/// KeyboardInterrupt). `ready` is called once attached.
#[pyfunction]
#[pyo3(signature = (bus, *, dir = None, capacity = 65536, bounded = false, ready = None, progress = None, progress_every = 0.25))]
#[allow(clippy::too_many_arguments)]
pub fn feed_books<'py>(
    py: Python<'py>,
    bus: &str,
    dir: Option<PathBuf>,
    capacity: u64,
    bounded: bool,
    ready: Option<Bound<'py, PyAny>>,
    progress: Option<Bound<'py, PyAny>>,
    progress_every: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let mut progress = Progress::new(py, progress, progress_every)?;
    let mut options = BookOptions::new(bus);
    options.dir = dir;
    options.capacity = capacity;
    options.bounded = bounded;
    let mut service = BookService::open(&options).map_err(py_err(py))?;
    if let Some(ready) = ready {
        ready.call0()?;
    }
    let outcome = loop {
        match py.allow_threads(|| service.poll(Duration::from_millis(50))) {
            Ok(true) => break Ok(()),
            Ok(false) => {}
            Err(e) => break Err(py_err(py)(e)),
        }
        if let Err(e) = py
            .check_signals()
            .and_then(|()| progress.tell(|| book_dict(py, &service.report())))
        {
            break Err(e);
        }
    };
    let r = service.report();
    service.close();
    outcome?;
    book_dict(py, &r)
}

fn book_dict<'py>(py: Python<'py>, r: &BookReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("messages", r.messages)?;
    d.set_item("updates", r.updates)?;
    d.set_item("book_errors", r.book_errors)?;
    d.set_item("bad_records", r.bad_records)?;
    d.set_item("lost", r.lost)?;
    d.set_item("live_orders", r.live_orders)?;
    d.set_item("handler_deaths", r.handler_deaths)?;
    d.set_item("ended", r.ended)?;
    Ok(d)
}

/// The numpy `.npy` descrs of the records that are not ITCH messages:
/// `{"RAW_MESSAGE": ..., "BOOK_UPDATE": ...}`.
#[pyfunction]
pub fn feed_record_descrs() -> Vec<(&'static str, String)> {
    [
        &ringcast_feed::record::RAW_MESSAGE,
        &ringcast_feed::book::BOOK_UPDATE,
    ]
    .iter()
    .map(|l| (l.const_name, l.npy_descr()))
    .collect()
}
