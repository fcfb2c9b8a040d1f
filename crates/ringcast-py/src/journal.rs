//! `ringcast._native.journal_*`: the journal's recorder, replayer, verifier
//! and segment listing. Arguments are parsed here once; the work runs in
//! `ringcast-journal` on a thread of its own while this thread waits with
//! the GIL released, runs signal handlers and passes progress reports on.

use crate::args::first_message;
use crate::args::{seconds, seconds_of};
use crate::errors::{raise, to_py};
use crate::job::{latency_dict, run_job};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use ringcast_journal::reader::{Segment, Unreadable};
use ringcast_journal::{
    Bound as SeqOrTime, Fsync, Journal, JournalError, Pace, RecordOptions, RecordReport,
    ReplayOptions, ReplayReport, Stamp, WriterOptions,
};
use std::path::PathBuf;

/// A journal error as the matching `ringcast.errors` exception.
fn journal_err(py: Python<'_>, e: JournalError) -> PyErr {
    let e = match e {
        JournalError::Ring(inner) => return to_py(py, inner),
        other => other,
    };
    let class = match &e {
        JournalError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            "RingPermissionError"
        }
        JournalError::NotAJournal { .. } => "JournalNotFound",
        JournalError::Locked { .. } => "JournalLocked",
        JournalError::Clash { .. } | JournalError::Mixed { .. } => "JournalMismatch",
        JournalError::OutOfOrder { .. }
        | JournalError::TooLong { .. }
        | JournalError::Argument(_) => "InvalidArgument",
        JournalError::Io { .. } | JournalError::Ring(_) => "JournalError",
    };
    raise(py, class, e.to_string())
}

/// `fsync=`: "never", "always", or seconds between syncs.
fn fsync_arg(value: &Bound<'_, PyAny>) -> PyResult<Fsync> {
    match value.extract::<String>().as_deref() {
        Ok("never") => Ok(Fsync::Never),
        Ok("always") => Ok(Fsync::Always),
        _ => seconds_of(
            "fsync (\"never\", \"always\" or seconds between syncs)",
            value,
        )
        .map(Fsync::Interval),
    }
}

fn record_dict<'py>(py: Python<'py>, r: &RecordReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ring", &r.ring.name)?;
    d.set_item("started_at", r.started_at)?;
    d.set_item("next_seq", r.next_seq)?;
    d.set_item("recorded", r.recorded)?;
    d.set_item("gaps", r.gaps)?;
    d.set_item("lost", r.lost)?;
    d.set_item("ring_lost", r.ring_lost)?;
    d.set_item("entries", r.writer.entries)?;
    d.set_item("bytes", r.writer.bytes)?;
    d.set_item("segments", r.writer.segments)?;
    d.set_item("syncs", r.writer.syncs)?;
    d.set_item("lag", r.lag)?;
    d.set_item("elapsed", r.elapsed.as_secs_f64())?;
    d.set_item("latency_ns", latency_dict(py, &r.latency_ns)?)?;
    d.set_item("write_ns", latency_dict(py, &r.write_ns)?)?;
    d.set_item("ended", r.ended)?;
    let rec = PyDict::new(py);
    rec.set_item(
        "segment",
        r.recovery.segment.as_ref().map(|p| p.display().to_string()),
    )?;
    rec.set_item("kept_entries", r.recovery.kept_entries)?;
    rec.set_item("cut_entries", r.recovery.cut_entries)?;
    rec.set_item("cut_bytes", r.recovery.cut_bytes)?;
    d.set_item("recovery", rec)?;
    Ok(d)
}

fn unreadable_dict<'py>(py: Python<'py>, u: &Unreadable) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("from_seq", u.from_seq)?;
    d.set_item("to_seq", u.to_seq)?;
    d.set_item("count", u.count())?;
    let why: Vec<String> = u.why.iter().map(|w| w.to_string()).collect();
    d.set_item("why", why)?;
    Ok(d)
}

fn replay_dict<'py>(py: Python<'py>, r: &ReplayReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("published", r.published)?;
    d.set_item("first_seq", r.first_seq)?;
    d.set_item("end_seq", r.end_seq)?;
    d.set_item("ring_first_seq", r.ring_first_seq)?;
    d.set_item("gaps", r.gaps)?;
    d.set_item("gap_messages", r.gap_messages)?;
    let list = PyList::empty(py);
    for u in &r.unreadable {
        list.append(unreadable_dict(py, u)?)?;
    }
    d.set_item("unreadable", list)?;
    d.set_item("recorded_span", r.recorded_span.as_secs_f64())?;
    d.set_item("elapsed", r.elapsed.as_secs_f64())?;
    d.set_item("max_late", r.max_late.as_secs_f64())?;
    Ok(d)
}

/// Records ring `ring` into the journal in `journal` (see
/// `ringcast.record`); returns the report as a dict.
#[pyfunction]
#[pyo3(signature = (ring, journal, *, dir = None, stage = "journal", first = "oldest", segment_bytes = 268435456, segment_age = None, fsync = None, batch = 4096, follow = false, progress = None, progress_every = 1.0))]
#[allow(clippy::too_many_arguments)]
pub fn journal_record<'py>(
    py: Python<'py>,
    ring: String,
    journal: PathBuf,
    dir: Option<PathBuf>,
    stage: &str,
    first: &str,
    segment_bytes: u64,
    segment_age: Option<f64>,
    fsync: Option<Bound<'py, PyAny>>,
    batch: usize,
    follow: bool,
    progress: Option<Bound<'py, PyAny>>,
    progress_every: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let mut options = RecordOptions::new(ring, journal);
    options.ring_dir = dir;
    options.stage = stage.to_owned();
    options.first = first_message(py, first)?;
    options.writer = WriterOptions {
        segment_bytes,
        segment_age: segment_age
            .map(|s| seconds(py, "segment_age", s))
            .transpose()?,
        fsync: match &fsync {
            None => WriterOptions::default().fsync,
            Some(v) => fsync_arg(v)?,
        },
        ..WriterOptions::default()
    };
    options.batch = batch;
    options.follow = follow;
    options.progress_every = seconds(py, "progress_every", progress_every)?;
    let report = run_job(py, progress, record_dict, journal_err, move |stop, tx| {
        ringcast_journal::record(&options, stop, |r| {
            let _ = tx.send(r.clone());
        })
    })?;
    record_dict(py, &report)
}

/// A `from=`/`until=` bound: ("seq", n) or ("time", ns).
fn bound_arg(
    py: Python<'_>,
    what: &str,
    value: Option<(String, u64)>,
) -> PyResult<Option<SeqOrTime>> {
    match value {
        None => Ok(None),
        Some((kind, n)) if kind == "seq" => Ok(Some(SeqOrTime::Seq(n))),
        Some((kind, n)) if kind == "time" => Ok(Some(SeqOrTime::Time(n))),
        Some((kind, _)) => Err(raise(
            py,
            "InvalidArgument",
            format!("{what} must be (\"seq\", n) or (\"time\", ns), got kind {kind:?}"),
        )),
    }
}

/// Replays the journal in `journal` into ring `ring` (see
/// `ringcast.replay`); returns the report as a dict.
#[pyfunction]
#[pyo3(signature = (journal, ring, *, dir = None, speed = None, start = None, until = None, original_times = false, capacity = None, bounded = None, subscribers = 0, verify = true, progress = None, progress_every = 1.0))]
#[allow(clippy::too_many_arguments)]
pub fn journal_replay<'py>(
    py: Python<'py>,
    journal: PathBuf,
    ring: String,
    dir: Option<PathBuf>,
    speed: Option<f64>,
    start: Option<(String, u64)>,
    until: Option<(String, u64)>,
    original_times: bool,
    capacity: Option<u64>,
    bounded: Option<bool>,
    subscribers: usize,
    verify: bool,
    progress: Option<Bound<'py, PyAny>>,
    progress_every: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let mut options = ReplayOptions::new(journal, ring);
    options.verify = verify;
    options.ring_dir = dir;
    options.pace = match speed {
        None => Pace::Max,
        Some(s) => Pace::Speed(s),
    };
    options.from = bound_arg(py, "start", start)?;
    options.until = bound_arg(py, "until", until)?;
    options.stamp = if original_times {
        Stamp::Original
    } else {
        Stamp::Replayed
    };
    options.capacity = capacity;
    options.bounded = bounded;
    options.subscribers = subscribers;
    options.progress_every = seconds(py, "progress_every", progress_every)?;
    let report = run_job(py, progress, replay_dict, journal_err, move |stop, tx| {
        ringcast_journal::replay(&options, stop, |r| {
            let _ = tx.send(r.clone());
        })
    })?;
    replay_dict(py, &report)
}

fn segment_dict<'py>(py: Python<'py>, s: &Segment, check: bool) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("path", s.path.display().to_string())?;
    d.set_item("named_seq", s.named_seq)?;
    d.set_item("entries", s.entries)?;
    d.set_item("partial_bytes", s.partial_bytes)?;
    d.set_item("sealed_off_bytes", s.sealed_off_bytes)?;
    d.set_item("stride", s.stride())?;
    match &s.header {
        Ok(h) => {
            d.set_item("header_problem", py.None())?;
            d.set_item("first_seq", h.first_seq)?;
            d.set_item("number", h.number)?;
            d.set_item("created_unix_ns", h.created_unix_ns)?;
            d.set_item("clock_offset_ns", h.clock_offset_ns)?;
        }
        Err(p) => d.set_item("header_problem", p.to_string())?,
    }
    match &s.seal {
        Some(seal) => {
            let sd = PyDict::new(py);
            sd.set_item("entries", seal.entries)?;
            sd.set_item("messages", seal.messages)?;
            sd.set_item("gaps", seal.gaps)?;
            sd.set_item("lost", seal.lost)?;
            sd.set_item("end_seq", seal.end_seq)?;
            sd.set_item("first_time", seal.first_time)?;
            sd.set_item("last_time", seal.last_time)?;
            d.set_item("seal", sd)?;
        }
        None => d.set_item("seal", py.None())?,
    }
    // Entries failing their checks (their CRC), so that array views of the
    // segment can leave them out.
    if s.header.is_ok() && check {
        let damaged: Vec<u64> = (0..)
            .zip(s.checked_entries())
            .filter_map(|(i, e)| e.is_err().then_some(i))
            .collect();
        d.set_item("damaged", damaged)?;
    } else {
        d.set_item("damaged", Vec::<u64>::new())?;
    }
    Ok(d)
}

/// The journal in `dir`: the ring it records and its segments, every entry
/// checked with `check` (`damaged`: indices of entries that fail their CRC).
#[pyfunction]
#[pyo3(signature = (dir, check = true))]
pub fn journal_open<'py>(
    py: Python<'py>,
    dir: PathBuf,
    check: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let journal = py
        .allow_threads(|| Journal::open(&dir))
        .map_err(|e| journal_err(py, e))?;
    let d = PyDict::new(py);
    let ring = journal.ring();
    d.set_item("ring", &ring.name)?;
    d.set_item("slot_size", ring.slot_size)?;
    d.set_item("flags", ring.flags)?;
    d.set_item("capacity", ring.capacity)?;
    d.set_item("schema", pyo3::types::PyBytes::new(py, &ring.schema))?;
    d.set_item("timestamps", ring.timestamps())?;
    d.set_item("fixed_size", ring.fixed_size())?;
    d.set_item("header_len", ringcast_journal::format::HEADER_LEN)?;
    d.set_item("entry_header", ringcast_journal::format::ENTRY_HEADER)?;
    d.set_item("kind_shift", ringcast_journal::format::KIND_SHIFT)?;
    let segs = PyList::empty(py);
    for s in journal.segments() {
        segs.append(segment_dict(py, s, check)?)?;
    }
    d.set_item("segments", segs)?;
    Ok(d)
}

/// `ringcast journal verify`: every entry checked; the report as a dict.
#[pyfunction]
pub fn journal_verify<'py>(py: Python<'py>, dir: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let r = py
        .allow_threads(|| ringcast_journal::verify(&dir))
        .map_err(|e| journal_err(py, e))?;
    let d = PyDict::new(py);
    d.set_item("dir", r.dir.display().to_string())?;
    d.set_item("ring", &r.ring.name)?;
    d.set_item("intact", r.intact())?;
    d.set_item("open", r.open)?;
    d.set_item("messages", r.messages)?;
    d.set_item("gaps", r.gaps)?;
    d.set_item("lost", r.lost)?;
    d.set_item("damaged", r.damaged)?;
    d.set_item("out_of_order", r.out_of_order)?;
    d.set_item("first_seq", r.first_seq)?;
    d.set_item("end_seq", r.end_seq)?;
    d.set_item("unreadable_messages", r.unreadable_messages())?;
    let list = PyList::empty(py);
    for u in &r.unreadable {
        list.append(unreadable_dict(py, u)?)?;
    }
    d.set_item("unreadable", list)?;
    let segs = PyList::empty(py);
    for s in &r.segments {
        let sd = PyDict::new(py);
        sd.set_item("path", s.path.display().to_string())?;
        sd.set_item("named_seq", s.named_seq)?;
        sd.set_item("header_problem", &s.header_problem)?;
        sd.set_item("sealed", s.sealed)?;
        sd.set_item("entries", s.entries)?;
        sd.set_item("messages", s.messages)?;
        sd.set_item("gaps", s.gaps)?;
        sd.set_item("lost", s.lost)?;
        sd.set_item("damaged", s.damaged)?;
        sd.set_item("partial_bytes", s.partial_bytes)?;
        sd.set_item("sealed_off_bytes", s.sealed_off_bytes)?;
        sd.set_item("first_seq", s.first_seq)?;
        sd.set_item("end_seq", s.end_seq)?;
        sd.set_item("first_time", s.first_time)?;
        sd.set_item("last_time", s.last_time)?;
        sd.set_item("seal_mismatch", &s.seal_mismatch)?;
        segs.append(sd)?;
    }
    d.set_item("segments", segs)?;
    Ok(d)
}
