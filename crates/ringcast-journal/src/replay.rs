//! `ringcast replay`: a journal into a ring, at the recorded pace, N times
//! faster, or flat out.
//!
//! The ring gets the recorded ring's shape (slot size, schema, timestamps;
//! capacity and boundedness unless overridden). Messages go out in journal
//! order, so the same journal and options always give the same stream. At a
//! pace, message `i` is due at `start + (t_i - t_0) / speed`; messages due
//! together go out as one batch, and each carries its due time as publish
//! time (or its recorded time), so a replay that falls behind is charged
//! for it in the subscribers' latency, never hidden. Gap entries and
//! unreadable stretches cannot be re-created in a ring: they are counted in
//! the report.

use crate::error::JournalError;
use crate::format::Body;
use crate::reader::{Item, Journal, Unreadable};
use ringcast_core::{CreateOptions, Patience, Publisher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as the ring takes them.
    Max,
    /// `Speed(1.0)`: the recorded pace; `Speed(n)`: n times faster.
    Speed(f64),
}

/// Where a replay starts or stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A sequence of the recorded ring.
    Seq(u64),
    /// A publish time (CLOCK_MONOTONIC ns of the recording host; see
    /// [`crate::format::SegmentHeader::clock_offset_ns`] for wall clock).
    Time(u64),
}

/// Which publish time a replayed message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// When the replay published (was due to publish) it.
    Replayed,
    /// The time it was originally published.
    Original,
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub journal: PathBuf,
    /// The ring to publish into (made if missing, taken over if it has the
    /// journal's shape), and its directory.
    pub ring: String,
    pub ring_dir: Option<PathBuf>,
    pub pace: Pace,
    /// First message replayed (`None`: the journal's first); the first
    /// message at or after the bound.
    pub from: Option<Bound>,
    /// Stop before this message (`None`: at the journal's end).
    pub until: Option<Bound>,
    pub stamp: Stamp,
    /// Slots of a ring made for the replay (`None`: the recorded ring's).
    pub capacity: Option<u64>,
    /// Make a bounded ring (`None`: as the recorded ring was).
    pub bounded: Option<bool>,
    /// Wait until the ring has this many subscribers before publishing.
    pub subscribers: usize,
    /// Most messages per publish call at `Pace::Max`.
    pub batch: usize,
    /// How often `progress` is called.
    pub progress_every: Duration,
    /// Check each entry's CRC (`false`: for a journal `verify` passed).
    pub verify: bool,
}

impl ReplayOptions {
    /// Replaying `journal` into ring `ring` flat out, with the defaults.
    pub fn new(journal: impl Into<PathBuf>, ring: impl Into<String>) -> ReplayOptions {
        ReplayOptions {
            journal: journal.into(),
            ring: ring.into(),
            ring_dir: None,
            pace: Pace::Max,
            from: None,
            until: None,
            stamp: Stamp::Replayed,
            capacity: None,
            bounded: None,
            subscribers: 0,
            batch: 1024,
            progress_every: Duration::from_secs(1),
            verify: true,
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Messages published.
    pub published: u64,
    /// Recorded sequences of the first message replayed and after the last.
    pub first_seq: Option<u64>,
    pub end_seq: Option<u64>,
    /// Sequence the first message got in the target ring.
    pub ring_first_seq: Option<u64>,
    /// Gap entries met, and the messages they stand for (lost when
    /// recording, not replayable).
    pub gaps: u64,
    pub gap_messages: u64,
    /// Stretches the journal could not deliver (damage).
    pub unreadable: Vec<Unreadable>,
    /// Recorded time span of what was replayed, and how long it took.
    pub recorded_span: Duration,
    pub elapsed: Duration,
    /// Paced replays: the furthest any message went out after it was due.
    pub max_late: Duration,
}

/// Replays the journal into the ring until its end, `options.until`, or
/// `stop`. `progress` is called every `progress_every`.
pub fn replay(
    options: &ReplayOptions,
    stop: &AtomicBool,
    mut progress: impl FnMut(&ReplayReport),
) -> Result<ReplayReport, JournalError> {
    let speed = match options.pace {
        Pace::Max => None,
        Pace::Speed(s) if s.is_finite() && s > 0.0 => Some(s),
        Pace::Speed(s) => {
            return Err(JournalError::Argument(format!(
                "speed must be a positive number (1: the recorded pace), got {s}"
            )))
        }
    };
    if options.batch == 0 {
        return Err(JournalError::Argument("batch must be at least 1".into()));
    }
    let journal = Journal::open(&options.journal)?;
    let desc = journal.ring().clone();
    if speed.is_some() && !desc.timestamps() {
        return Err(JournalError::Argument(format!(
            "ring {:?} was recorded without publish times: a journal of it replays only flat \
             out (speed max)",
            desc.name
        )));
    }
    let capacity = options.capacity.unwrap_or(desc.capacity);
    let mut create = CreateOptions::new(capacity, desc.slot_size);
    create.fixed_size = desc.fixed_size();
    create.schema = desc.schema.clone();
    create.timestamps = desc.timestamps();
    let bounded = options
        .bounded
        .unwrap_or(desc.flags & ringcast_core::format::layout::FLAG_BOUNDED != 0);
    create.bounded = bounded.then_some(capacity);
    create.dir = options.ring_dir.clone();
    create.exist_ok = true;
    let mut publisher = Publisher::create(&options.ring, &create)?;
    while publisher.subscriber_count() < options.subscribers {
        if stop.load(Ordering::Relaxed) {
            return Ok(ReplayReport::default());
        }
        std::thread::sleep(Duration::from_millis(2));
    }

    let mut items = match options.from {
        None => journal.read_checked(journal.start(), options.verify),
        Some(Bound::Seq(seq)) => journal.read_from_seq(seq, options.verify),
        Some(Bound::Time(t)) => journal.read_checked(journal.seek_time(t), options.verify),
    };
    let past_end = |seq: u64, time: u64| match options.until {
        None => false,
        Some(Bound::Seq(until)) => seq >= until,
        Some(Bound::Time(until)) => time >= until,
    };
    let mut report = ReplayReport::default();
    let started = Instant::now();
    let clock0 = ringcast_core::sys::clock::now_ns();
    let mut first_time = None;
    let mut last_time = 0;
    let mut batch: Vec<(&[u8], u64)> = Vec::with_capacity(options.batch);
    let mut next_progress = started + options.progress_every;
    let mut done = false;
    while !done {
        // Gather what is due (at Max: a batch) ...
        let mut due_next: Option<u64> = None;
        while batch.len() < options.batch {
            let Some(item) = items.next() else {
                done = true;
                break;
            };
            let entry = match item {
                Item::Entry(e) => e,
                Item::Unreadable(mut u) => {
                    // Only what lies before the end bound is this replay's loss.
                    if let Some(Bound::Seq(until)) = options.until {
                        if u.from_seq >= until {
                            done = true;
                            break;
                        }
                        u.to_seq = Some(u.to_seq.map_or(until, |to| to.min(until)));
                    }
                    report.unreadable.push(u);
                    continue;
                }
            };
            let Body::Message(payload) = entry.body else {
                if let Body::Gap(n) = entry.body {
                    if !past_end(entry.seq, entry.time) {
                        report.gaps += 1;
                        report.gap_messages += n;
                    }
                }
                continue;
            };
            if past_end(entry.seq, entry.time) {
                done = true;
                break;
            }
            report.first_seq.get_or_insert(entry.seq);
            report.end_seq = Some(entry.seq + 1);
            let t0 = *first_time.get_or_insert(entry.time);
            last_time = entry.time;
            // Paced: when the message is due (flat out: now, at publish).
            let due = speed.map(|s| clock0 + (entry.time.saturating_sub(t0) as f64 / s) as u64);
            let stamp = match options.stamp {
                Stamp::Original => entry.time,
                Stamp::Replayed => due.unwrap_or(0),
            };
            batch.push((payload, stamp));
            if let Some(due) = due {
                if due > ringcast_core::sys::clock::now_ns() {
                    due_next = Some(due);
                    break;
                }
            }
        }
        // ... wait for the last one gathered if it is not due yet ...
        if let Some(due) = due_next {
            let last = batch.pop().expect("the message not due yet");
            publish(
                &mut publisher,
                &mut batch,
                speed.is_none(),
                options.stamp,
                &mut report,
            )?;
            wait_until(due, stop);
            let late = ringcast_core::sys::clock::now_ns().saturating_sub(due);
            report.max_late = report.max_late.max(Duration::from_nanos(late));
            batch.push(last);
        }
        // ... and publish.
        publish(
            &mut publisher,
            &mut batch,
            speed.is_none(),
            options.stamp,
            &mut report,
        )?;
        if Instant::now() >= next_progress {
            next_progress = Instant::now() + options.progress_every;
            report.elapsed = started.elapsed();
            progress(&report);
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    report.elapsed = started.elapsed();
    report.recorded_span = Duration::from_nanos(last_time.saturating_sub(first_time.unwrap_or(0)));
    publisher.close();
    Ok(report)
}

/// Publishes and empties a batch of (payload, publish time) pairs (if any);
/// `now` stamps them with the time of the call instead.
fn publish(
    publisher: &mut Publisher,
    batch: &mut Vec<(&[u8], u64)>,
    now: bool,
    stamp: Stamp,
    report: &mut ReplayReport,
) -> Result<(), JournalError> {
    if batch.is_empty() {
        return Ok(());
    }
    let first = if !publisher.layout().timestamps() {
        publisher.publish_all(batch.iter().map(|(p, _)| *p), Patience::forever())?
    } else if now && stamp == Stamp::Replayed {
        // Flat out: the whole batch is published now (one clock read).
        let t = ringcast_core::sys::clock::now_ns();
        publisher.publish_batch_at(batch.len(), |i| batch[i].0, |_| t, Patience::forever())?
    } else {
        publisher.publish_batch_at(
            batch.len(),
            |i| batch[i].0,
            |i| batch[i].1,
            Patience::forever(),
        )?
    };
    report.ring_first_seq.get_or_insert(first);
    report.published += batch.len() as u64;
    batch.clear();
    Ok(())
}

/// Sleeps until shortly before `due` (CLOCK_MONOTONIC ns), then spins to it.
fn wait_until(due: u64, stop: &AtomicBool) {
    loop {
        let now = ringcast_core::sys::clock::now_ns();
        if now >= due || stop.load(Ordering::Relaxed) {
            return;
        }
        let left = due - now;
        if left > 200_000 {
            std::thread::sleep(Duration::from_nanos((left - 100_000).min(50_000_000)));
        } else {
            std::hint::spin_loop();
        }
    }
}
