//! `ringcast._native.bridge_send` / `bridge_recv`: the two ends of a bridge
//! across hosts. Arguments are parsed here once; the bridge runs in
//! `ringcast-bridge` on a thread of its own (see [`crate::job`]).

use crate::args::first_message;
use crate::args::seconds;
use crate::errors::{raise, to_py};
use crate::job::{latency_dict, run_job};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use ringcast_bridge::{
    BridgeError, DriverChoice, DriverCounters, DriverOptions, RecvOptions, RecvReport, SendOptions,
    SendReport,
};
use std::path::PathBuf;

/// A bridge error as the matching `ringcast.errors` exception.
fn bridge_err(py: Python<'_>, e: BridgeError) -> PyErr {
    let e = match e {
        BridgeError::Ring(inner) => return to_py(py, inner),
        BridgeError::Recv(inner) => return to_py(py, inner),
        BridgeError::Publish(inner) => return to_py(py, inner),
        other => other,
    };
    let class = match &e {
        BridgeError::Ring(_) | BridgeError::Recv(_) | BridgeError::Publish(_) => "RingError",
        BridgeError::Channel { .. } => "BridgeChannelError",
        BridgeError::NotConnected { .. } => "BridgeNotConnected",
        BridgeError::SchemaClash { .. } | BridgeError::SourceRemade { .. } => "BridgeSchemaClash",
        BridgeError::Argument(_) => "InvalidArgument",
        BridgeError::Driver { .. } | BridgeError::Aeron { .. } => "BridgeError",
    };
    raise(py, class, e.to_string())
}

fn driver_options(
    py: Python<'_>,
    aeron_dir: Option<String>,
    term_length: Option<usize>,
    idle: &str,
) -> PyResult<DriverOptions> {
    if aeron_dir.is_some() && term_length.is_some() {
        return Err(raise(
            py,
            "InvalidArgument",
            "term_length configures the embedded driver; an external driver (aeron_dir) has \
             its own: give one or the other"
                .into(),
        ));
    }
    Ok(DriverOptions {
        choice: aeron_dir.map_or(DriverChoice::Embedded, DriverChoice::External),
        term_length,
        idle: idle.to_owned(),
    })
}

fn counters_dict<'py>(py: Python<'py>, c: &DriverCounters) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("bytes_sent", c.bytes_sent)?;
    d.set_item("bytes_received", c.bytes_received)?;
    d.set_item("naks_sent", c.naks_sent)?;
    d.set_item("naks_received", c.naks_received)?;
    d.set_item("retransmits_sent", c.retransmits_sent)?;
    d.set_item("retransmitted_bytes", c.retransmitted_bytes)?;
    d.set_item("heartbeats_sent", c.heartbeats_sent)?;
    d.set_item("status_messages_sent", c.status_messages_sent)?;
    d.set_item("status_messages_received", c.status_messages_received)?;
    d.set_item("loss_gap_fills", c.loss_gap_fills)?;
    d.set_item("errors", c.errors)?;
    d.set_item("invalid_packets", c.invalid_packets)?;
    d.set_item("flow_control_limits", c.sender_flow_control_limits)?;
    Ok(d)
}

fn send_dict<'py>(py: Python<'py>, r: &SendReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ring", &r.ring)?;
    d.set_item("channel", &r.channel)?;
    d.set_item("stream", r.stream)?;
    d.set_item("session", r.session)?;
    d.set_item("started_at", r.started_at)?;
    d.set_item("next_seq", r.next_seq)?;
    d.set_item("sent", r.sent)?;
    d.set_item("frames", r.frames)?;
    d.set_item("bytes", r.bytes)?;
    d.set_item("source_lost", r.source_lost)?;
    d.set_item("ring_lost", r.ring_lost)?;
    d.set_item("back_pressure", r.back_pressure)?;
    d.set_item("disconnects", r.disconnects)?;
    d.set_item("lag", r.lag)?;
    d.set_item("connected", r.connected)?;
    d.set_item("elapsed", r.elapsed.as_secs_f64())?;
    d.set_item("ended", r.ended)?;
    d.set_item("embedded_driver", r.embedded_driver)?;
    d.set_item("driver", counters_dict(py, &r.driver)?)?;
    Ok(d)
}

fn recv_dict<'py>(py: Python<'py>, r: &RecvReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ring", &r.ring)?;
    d.set_item("channel", &r.channel)?;
    d.set_item("stream", r.stream)?;
    d.set_item("delivered", r.delivered)?;
    d.set_item("lost", r.loss.lost())?;
    d.set_item("lost_source", r.loss.source)?;
    d.set_item("lost_network", r.loss.network)?;
    d.set_item("lost_restart", r.loss.restart)?;
    d.set_item("before_start", r.loss.before_start)?;
    d.set_item("duplicates", r.loss.duplicates)?;
    d.set_item("next_seq", r.next_seq)?;
    d.set_item("source_cursor", r.source_cursor)?;
    d.set_item("lag", r.lag)?;
    d.set_item("frames", r.frames)?;
    d.set_item("bytes", r.bytes)?;
    d.set_item("bad_frames", r.bad_frames)?;
    d.set_item("last_bad_frame", &r.last_bad_frame)?;
    d.set_item("senders", r.senders)?;
    d.set_item("back_pressure", r.back_pressure)?;
    d.set_item("latency_ns", latency_dict(py, &r.latency_ns)?)?;
    d.set_item("elapsed", r.elapsed.as_secs_f64())?;
    d.set_item("ended", r.ended)?;
    d.set_item("embedded_driver", r.embedded_driver)?;
    d.set_item("driver", counters_dict(py, &r.driver)?)?;
    Ok(d)
}

/// Sends ring `ring` on Aeron channel `channel` (see `ringcast.bridge.send`).
#[pyfunction]
#[pyo3(signature = (ring, channel, *, stream = 1001, dir = None, stage = "bridge", first = "oldest", batch = 1024, connect_timeout = None, linger = 1.0, follow = false, aeron_dir = None, term_length = None, idle = "backoff", progress = None, progress_every = 1.0))]
#[allow(clippy::too_many_arguments)]
pub fn bridge_send<'py>(
    py: Python<'py>,
    ring: String,
    channel: String,
    stream: i32,
    dir: Option<PathBuf>,
    stage: &str,
    first: &str,
    batch: usize,
    connect_timeout: Option<f64>,
    linger: f64,
    follow: bool,
    aeron_dir: Option<String>,
    term_length: Option<usize>,
    idle: &str,
    progress: Option<Bound<'py, PyAny>>,
    progress_every: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let mut options = SendOptions::new(ring, channel);
    options.stream = stream;
    options.ring_dir = dir;
    options.stage = stage.to_owned();
    options.first = first_message(py, first)?;
    options.batch = batch;
    options.connect_timeout = connect_timeout
        .map(|s| seconds(py, "connect_timeout", s))
        .transpose()?;
    options.linger = seconds(py, "linger", linger)?;
    options.follow = follow;
    options.driver = driver_options(py, aeron_dir, term_length, idle)?;
    options.progress_every = seconds(py, "progress_every", progress_every)?;
    let report = run_job(py, progress, send_dict, bridge_err, move |stop, tx| {
        ringcast_bridge::send(&options, stop, |r| {
            let _ = tx.send(r.clone());
        })
    })?;
    send_dict(py, &report)
}

/// Receives Aeron channel `channel` into a ring (see `ringcast.bridge.recv`).
#[pyfunction]
#[pyo3(signature = (channel, *, stream = 1001, ring = None, dir = None, capacity = None, bounded = false, until_end = false, idle_timeout = None, aeron_dir = None, term_length = None, idle = "backoff", progress = None, progress_every = 1.0))]
#[allow(clippy::too_many_arguments)]
pub fn bridge_recv<'py>(
    py: Python<'py>,
    channel: String,
    stream: i32,
    ring: Option<String>,
    dir: Option<PathBuf>,
    capacity: Option<u64>,
    bounded: bool,
    until_end: bool,
    idle_timeout: Option<f64>,
    aeron_dir: Option<String>,
    term_length: Option<usize>,
    idle: &str,
    progress: Option<Bound<'py, PyAny>>,
    progress_every: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let mut options = RecvOptions::new(channel);
    options.stream = stream;
    options.ring = ring;
    options.ring_dir = dir;
    options.capacity = capacity;
    options.bounded = bounded;
    options.until_end = until_end;
    options.idle_timeout = idle_timeout
        .map(|s| seconds(py, "idle_timeout", s))
        .transpose()?;
    options.driver = driver_options(py, aeron_dir, term_length, idle)?;
    options.progress_every = seconds(py, "progress_every", progress_every)?;
    let report = run_job(py, progress, recv_dict, bridge_err, move |stop, tx| {
        ringcast_bridge::recv(&options, stop, |r| {
            let _ = tx.send(r.clone());
        })
    })?;
    recv_dict(py, &report)
}

/// What is wrong with an Aeron channel URI (`None`: nothing this side can
/// tell; Aeron checks the rest when the bridge starts).
#[pyfunction]
pub fn bridge_check_channel(channel: &str) -> Option<String> {
    ringcast_bridge::transport::check_channel(channel)
        .err()
        .map(|e| e.to_string())
}
