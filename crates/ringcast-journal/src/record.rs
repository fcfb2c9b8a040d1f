//! `ringcast record`: a ring into a journal.
//!
//! The recorder is a subscriber of the ring named as a *durable stage*
//! (`journal` by default). Each turn it reads every message available (up
//! to a batch), appends them with one `pwrite`, and only then asks for
//! more, which commits them as processed. On a bounded ring a durable stage
//! releases slots only as it commits, and its place outlives its death for
//! the ring's liveness timeout: a recorder killed at any point and restarted
//! in time finds every message it had not written still in the ring, and
//! resumes after the journal's last entry, so nothing is lost or doubled. On
//! a lossy ring whatever the ring overwrote meanwhile becomes a gap entry of
//! exactly the size the subscriber counted lost.

use crate::error::JournalError;
use crate::format::RingDescription;
use crate::writer::{JournalWriter, Recovery, WriterOptions, WriterStats};
use hdrhistogram::Histogram;
use ringcast_core::{RecvError, Start, Subscriber, WaitStrategy, Waiter};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where a new journal starts (a journal that has entries resumes after
/// its last one).
pub use ringcast_core::FirstMessage;

/// How to record.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// The ring, and its directory (`None`: the default).
    pub ring: String,
    pub ring_dir: Option<PathBuf>,
    /// The journal directory.
    pub journal: PathBuf,
    pub writer: WriterOptions,
    /// The recorder's stage name on the ring.
    pub stage: String,
    /// Where a new journal starts.
    pub first: FirstMessage,
    /// Most messages read and written per turn.
    pub batch: usize,
    /// How to wait when the ring has nothing new.
    pub wait: WaitStrategy,
    /// Keep recording when the publisher closes the ring (a restarted
    /// publisher goes on with it); `false`: stop once everything is read.
    pub follow: bool,
    /// How often `progress` is called.
    pub progress_every: Duration,
}

impl RecordOptions {
    /// Recording ring `ring` into `journal` with the defaults.
    pub fn new(ring: impl Into<String>, journal: impl Into<PathBuf>) -> RecordOptions {
        RecordOptions {
            ring: ring.into(),
            ring_dir: None,
            journal: journal.into(),
            writer: WriterOptions::default(),
            stage: "journal".into(),
            first: FirstMessage::Oldest,
            batch: 4096,
            wait: WaitStrategy::default(),
            follow: false,
            progress_every: Duration::from_secs(1),
        }
    }
}

/// What a recorder did.
#[derive(Debug, Clone)]
pub struct RecordReport {
    pub ring: RingDescription,
    /// What opening the journal repaired (a previous recorder's torn tail).
    pub recovery: Recovery,
    /// Sequence this run started at.
    pub started_at: u64,
    /// Sequence the journal goes on with (after this run's last entry).
    pub next_seq: Option<u64>,
    /// Messages recorded by this run, gap entries written and the messages
    /// they stand for.
    pub recorded: u64,
    pub gaps: u64,
    pub lost: u64,
    /// Messages the recorder's subscriber counted lost in this run (the
    /// ring lapped it): always equal to `lost`.
    pub ring_lost: u64,
    /// The writer's totals (bytes, segments, syncs).
    pub writer: WriterStats,
    /// Messages published but not yet recorded, when last looked.
    pub lag: u64,
    /// Time since the recorder started.
    pub elapsed: Duration,
    /// From publish to written (page cache), per message, in ns: p50, p99,
    /// p99.9, max (rings with timestamps).
    pub latency_ns: Option<[u64; 4]>,
    /// From read out of the ring to written, per message, in ns: p50, p99,
    /// p99.9, max: what the journal itself adds.
    pub write_ns: Option<[u64; 4]>,
    /// The publisher closed the ring and everything was recorded.
    pub ended: bool,
}

/// Records ring `options.ring` into the journal until `stop` is set (or,
/// without `follow`, the publisher has closed the ring and everything is
/// recorded). `progress` is called every `progress_every` with the report
/// so far. The journal is sealed and synced when it returns.
pub fn record(
    options: &RecordOptions,
    stop: &AtomicBool,
    mut progress: impl FnMut(&RecordReport),
) -> Result<RecordReport, JournalError> {
    if options.batch == 0 {
        return Err(JournalError::Argument(
            "batch must be at least 1 message".into(),
        ));
    }
    let dir = options.ring_dir.as_deref();
    // The ring's shape first: the journal must be opened (and its next
    // sequence known) before the recorder takes its place on the ring.
    // Read-only: a probe subscriber would count as one for a moment, and a
    // publisher waiting for its first subscriber would start too early.
    let ring = RingDescription::of(
        &options.ring,
        &ringcast_core::info::inspect(&options.ring, dir)?.layout,
    );
    let (mut writer, recovery) =
        JournalWriter::open(&options.journal, &ring, options.writer.clone())?;
    let start = writer.next_seq().map_or(options.first.into(), Start::At);
    let mut sub = Subscriber::builder(&options.ring)
        .start(start)
        .stage(&options.stage)
        .durable(true);
    if let Some(dir) = dir {
        sub = sub.dir(dir);
    }
    let mut sub = sub.attach()?;
    sub.declare_wait(options.wait);
    if let Start::At(next) = start {
        let cursor = sub.cursor();
        if next > cursor {
            return Err(JournalError::Clash {
                dir: options.journal.clone(),
                clash: format!(
                    "it goes on at sequence {next} but ring {:?} has only reached {cursor}: the \
                     ring was made anew and its sequences restarted",
                    options.ring
                ),
            });
        }
    }
    let slot = ring.slot_size as usize;
    // A bounded ring holds at most its watermark for one reader: asking
    // for more in one turn would only wait for ourselves.
    let batch = options.batch.min(ring.capacity as usize / 2).max(1);
    let mut rows = vec![0u8; batch * slot];
    let mut seqs = vec![0u64; batch];
    let mut times = vec![0u64; batch];
    let mut lens = vec![0usize; batch];
    let histogram = || {
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
    };
    let mut latency = histogram();
    let mut write_hist = histogram();
    let began = Instant::now();
    let mut report = RecordReport {
        ring: ring.clone(),
        recovery,
        started_at: sub.position(),
        next_seq: writer.next_seq(),
        recorded: 0,
        gaps: 0,
        lost: 0,
        ring_lost: 0,
        writer: writer.stats(),
        lag: 0,
        elapsed: Duration::ZERO,
        latency_ns: None,
        write_ns: None,
        ended: false,
    };
    let base = writer.stats();
    let mut next_progress = began + options.progress_every;
    let mut waiter = Waiter::new(options.wait);
    let quantiles = |h: &Histogram<u64>| {
        (!h.is_empty()).then(|| {
            [
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
            ]
        })
    };
    let update = |report: &mut RecordReport,
                  writer: &JournalWriter,
                  sub: &Subscriber,
                  latency: &Histogram<u64>,
                  write_hist: &Histogram<u64>| {
        let stats = writer.stats();
        report.recorded = stats.messages - base.messages;
        report.gaps = stats.gaps - base.gaps;
        report.lost = stats.lost - base.lost;
        report.writer = stats;
        report.next_seq = writer.next_seq();
        report.lag = sub.lag();
        report.ring_lost = sub.lost();
        report.elapsed = began.elapsed();
        report.latency_ns = quantiles(latency);
        report.write_ns = quantiles(write_hist);
    };
    let outcome = (|| -> Result<(), JournalError> {
        loop {
            let n = sub.try_recv_rows_timed(&mut rows, slot, &mut seqs, &mut times, |i, len| {
                lens[i] = len;
            })?;
            if n > 0 {
                waiter.reset();
                let read_at = ringcast_core::sys::clock::now_ns();
                for i in 0..n {
                    writer.append(seqs[i], times[i], &rows[i * slot..i * slot + lens[i]])?;
                }
                // Written before the next read commits them as processed.
                writer.flush()?;
                let now = ringcast_core::sys::clock::now_ns();
                write_hist.saturating_record_n(now.saturating_sub(read_at).max(1), n as u64);
                if ring.timestamps() {
                    for &t in &times[..n] {
                        latency.saturating_record(now.saturating_sub(t).max(1));
                    }
                }
            } else {
                writer.tick()?;
            }
            if Instant::now() >= next_progress {
                next_progress = Instant::now() + options.progress_every;
                update(&mut report, &writer, &sub, &latency, &write_hist);
                progress(&report);
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if n > 0 {
                continue;
            }
            if sub.ended() && !options.follow {
                report.ended = true;
                break;
            }
            let deadline = Instant::now() + Duration::from_millis(50);
            match sub.wait_readable(Some(deadline), &mut waiter) {
                Ok(()) | Err(RecvError::Timeout) => {}
                // A publisher that closed, or died: in follow mode, wait
                // for the next one (a service restarts it); else the end.
                Err(RecvError::Closed { .. } | RecvError::PublisherDied { .. })
                    if options.follow =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(RecvError::Closed { .. } | RecvError::PublisherDied { .. }) => {
                    report.ended = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Messages skipped at the very end (a lap with nothing read after it).
        if let Some(next) = writer.next_seq() {
            let position = sub.position();
            if position > next {
                writer.append_gap(next, position - next, ringcast_core::sys::clock::now_ns())?;
            }
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        // What was read but not written must not count as processed: the
        // recorder keeps its place on the ring (as if it had died) for the
        // next one, which resumes after the journal's last entry.
        sub.abandon();
        drop(writer); // writes and seals what it holds, if it can
        return Err(e);
    }
    update(&mut report, &writer, &sub, &latency, &write_hist);
    if let Err(e) = writer.close() {
        sub.abandon();
        return Err(e);
    }
    // Everything read is written, sealed and synced: processed.
    sub.commit();
    Ok(report)
}
