//! `ringcast bridge recv`: an Aeron subscription into a ring.
//!
//! The receiver is the only publisher of the far ring. It makes the ring
//! with the shape the sender's `HELLO` describes (or takes over an existing
//! ring of that shape: anything else is a schema clash, and nothing is
//! created or changed), and publishes every message with its source
//! sequence and its original publish time. Sequences that never arrive are
//! declared lost in the ring (`Publisher::publish_lost`), so the far
//! ring's subscribers count them in `lost` exactly as if the ring had
//! lapped them, and the report says why (see [`crate::accounting`]).
//!
//! On a bounded far ring a slow local subscriber blocks the receiver's
//! publish, the receiver stops polling, and Aeron's flow control holds the
//! sender back, which holds a bounded source back.

use crate::accounting::{Loss, Sequencer};
use crate::error::BridgeError;
use crate::transport::{Client, Driver, DriverCounters, DriverOptions, Idle, Idler};
use crate::wire::{self, Frame, Hello};
use hdrhistogram::Histogram;
use ringcast_core::format::layout::{FLAG_FIXED_SIZE, FLAG_TIMESTAMPS};
use ringcast_core::{CreateOptions, OpenError, Patience, Publisher, WaitStrategy};
use rusteron_media_driver::{AeronFragmentClosureAssembler, AeronHeader};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RecvOptions {
    pub channel: String,
    pub stream: i32,
    pub driver: DriverOptions,
    /// The far ring's name (`None`: the source ring's).
    pub ring: Option<String>,
    pub ring_dir: Option<PathBuf>,
    /// Capacity of a far ring this receiver makes (`None`: the source's).
    pub capacity: Option<u64>,
    /// Make the far ring bounded (a slow local subscriber back-pressures
    /// the sender) instead of lossy.
    pub bounded: bool,
    /// End once the sender says its source closed and everything arrived;
    /// `false`: receive until stopped (senders may come and go).
    pub until_end: bool,
    /// Fail when nothing (not even a hello) arrived after this long.
    pub idle_timeout: Option<Duration>,
    pub progress_every: Duration,
}

impl RecvOptions {
    pub fn new(channel: impl Into<String>) -> RecvOptions {
        RecvOptions {
            channel: channel.into(),
            stream: crate::DEFAULT_STREAM,
            driver: DriverOptions::default(),
            ring: None,
            ring_dir: None,
            capacity: None,
            bounded: false,
            until_end: false,
            idle_timeout: None,
            progress_every: Duration::from_secs(1),
        }
    }
}

/// What a receiver did.
#[derive(Debug, Clone, Default)]
pub struct RecvReport {
    pub ring: Option<String>,
    pub channel: String,
    pub stream: i32,
    /// Messages published into the far ring.
    pub delivered: u64,
    /// Sequences declared lost in the far ring, by cause; `loss.lost()` is
    /// what was lost on the way.
    pub loss: Loss,
    /// The far ring's next sequence.
    pub next_seq: u64,
    /// The source ring's cursor, as the sender last said.
    pub source_cursor: u64,
    /// Messages published at the source and not yet here (as far as the
    /// sender last said).
    pub lag: u64,
    /// Frames received, their bytes, and frames refused as damaged or
    /// foreign (each one named in `last_bad_frame`).
    pub frames: u64,
    pub bytes: u64,
    pub bad_frames: u64,
    pub last_bad_frame: Option<String>,
    /// Sender runs heard from (a restarted sender is a new one).
    pub senders: u64,
    /// Publishes that waited for room on a bounded far ring.
    pub back_pressure: u64,
    /// From the source's publish to the publish here, per message (ns:
    /// p50, p99, p99.9, max); meaningful when both hosts' clocks agree.
    pub latency_ns: Option<[u64; 4]>,
    pub elapsed: Duration,
    /// The sender said its source closed, and everything before arrived.
    pub ended: bool,
    pub driver: DriverCounters,
    pub embedded_driver: bool,
}

/// The receiver's state, handed to Aeron's fragment handler.
struct Inbox<'a> {
    options: &'a RecvOptions,
    publisher: Option<Publisher>,
    sequencer: Option<Sequencer>,
    /// The shape the far ring was made or checked against, and the source
    /// ring it came from.
    shape: Option<Hello>,
    incarnation: Option<u64>,
    report: RecvReport,
    latency: Histogram<u64>,
    failure: Option<BridgeError>,
    stop: &'a AtomicBool,
    /// Messages of the frame being published: `(time, payload)`.
    scratch: Vec<(u64, std::ops::Range<usize>)>,
    heard: bool,
}

/// What makes two rings' messages interchangeable: an existing ring's (its
/// layout) or a source's (its hello).
struct Shape<'s> {
    slot_size: u32,
    flags: u32,
    schema: &'s [u8],
}

impl<'s> From<&'s ringcast_core::Layout> for Shape<'s> {
    fn from(l: &'s ringcast_core::Layout) -> Shape<'s> {
        Shape {
            slot_size: l.slot_size,
            flags: l.flags,
            schema: &l.schema,
        }
    }
}

impl<'s> From<&'s Hello> for Shape<'s> {
    fn from(h: &'s Hello) -> Shape<'s> {
        Shape {
            slot_size: h.slot_size,
            flags: h.flags,
            schema: &h.schema,
        }
    }
}

/// Whether two rings' messages are interchangeable: what differs, if
/// anything.
fn shape_clash(have: Shape<'_>, want: Shape<'_>) -> Option<String> {
    if have.slot_size != want.slot_size {
        return Some(format!(
            "its slots hold {} bytes, the source's {}",
            have.slot_size, want.slot_size
        ));
    }
    for (flag, what) in [
        (FLAG_FIXED_SIZE, "fixed-size messages"),
        (FLAG_TIMESTAMPS, "timestamps"),
    ] {
        if have.flags & flag != want.flags & flag {
            let has = |f: u32| if f & flag != 0 { "has" } else { "has no" };
            return Some(format!(
                "it {} {what}, the source {}",
                has(have.flags),
                has(want.flags)
            ));
        }
    }
    if have.schema != want.schema {
        return Some(format!(
            "its schema is {:?}, the source's {:?}",
            String::from_utf8_lossy(have.schema),
            String::from_utf8_lossy(want.schema)
        ));
    }
    None
}

impl Inbox<'_> {
    fn ring_name(&self, hello: &Hello) -> String {
        self.options
            .ring
            .clone()
            .unwrap_or_else(|| hello.name.clone())
    }

    /// Makes or takes over the far ring for the shape `hello` describes.
    fn open_ring(&mut self, hello: &Hello) -> Result<(), BridgeError> {
        let name = self.ring_name(hello);
        let dir = self.options.ring_dir.as_deref();
        // Look before touching: a clash must leave the ring as it was.
        let existing = match ringcast_core::info::inspect(&name, dir) {
            Ok(info) => Some(info.layout),
            Err(OpenError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let new_ring = existing.is_none();
        let publisher = match existing {
            Some(layout) => {
                if let Some(clash) = shape_clash((&layout).into(), hello.into()) {
                    return Err(BridgeError::SchemaClash { ring: name, clash });
                }
                Publisher::attach(&name, dir, WaitStrategy::default())?
            }
            None => {
                let capacity = self.options.capacity.unwrap_or(hello.capacity);
                let mut create = CreateOptions::new(capacity, hello.slot_size);
                create.fixed_size = hello.flags & FLAG_FIXED_SIZE != 0;
                create.timestamps = hello.flags & FLAG_TIMESTAMPS != 0;
                create.schema = hello.schema.clone();
                create.bounded = self.options.bounded.then_some(capacity);
                create.dir = self.options.ring_dir.clone();
                Publisher::create(&name, &create)?
            }
        };
        self.sequencer = Some(Sequencer::new(publisher.sequence(), new_ring));
        self.report.ring = Some(name);
        self.publisher = Some(publisher);
        self.shape = Some(hello.clone());
        Ok(())
    }

    fn on_hello(&mut self, hello: Hello) -> Result<(), BridgeError> {
        match &self.shape {
            None => self.open_ring(&hello),
            Some(shape) => {
                if let Some(clash) = shape_clash(shape.into(), (&hello).into()) {
                    return Err(BridgeError::SchemaClash {
                        ring: self.ring_name(&hello),
                        clash,
                    });
                }
                if shape.source_created_ns != hello.source_created_ns
                    && hello.next_seq < self.sequencer.as_ref().map_or(0, |s| s.next())
                {
                    return Err(BridgeError::SourceRemade {
                        ring: self.ring_name(&hello),
                        detail: format!(
                            "it restarted its sequences at {} while this ring is at {}",
                            hello.next_seq,
                            self.sequencer.as_ref().map_or(0, |s| s.next())
                        ),
                    });
                }
                self.shape = Some(hello);
                Ok(())
            }
        }
    }

    fn patience<'p>(&self, between: &'p mut dyn FnMut() -> bool) -> Patience<'p> {
        Patience {
            wait_for_room: true,
            deadline: None,
            slice: Some(Duration::from_millis(50)),
            between: Some(between),
        }
    }

    /// Declares `n` sequences lost in the far ring.
    fn declare_lost(&mut self, n: u64) -> Result<(), BridgeError> {
        if n == 0 {
            return Ok(());
        }
        let stop = self.stop;
        let mut go_on = || !stop.load(Ordering::Relaxed);
        let patience = self.patience(&mut go_on);
        let publisher = self.publisher.as_mut().expect("ring open");
        publisher.publish_lost(n, patience)?;
        Ok(())
    }

    fn on_frame(&mut self, bytes: &[u8], frame: Frame<'_>) -> Result<(), BridgeError> {
        if let (Some(inc), Frame::Hello(_) | Frame::Data(_) | Frame::Gap { .. }) =
            (wire::incarnation(bytes), &frame)
        {
            if self.incarnation != Some(inc) {
                self.incarnation = Some(inc);
                self.report.senders += 1;
                if let Some(s) = self.sequencer.as_mut() {
                    s.sender_changed();
                }
            }
        }
        match frame {
            Frame::Hello(hello) => self.on_hello(hello),
            // Until the first hello the ring's shape is unknown: the
            // sequences are accounted when the stream is picked up.
            _ if self.sequencer.is_none() => Ok(()),
            Frame::Gap {
                first_seq, count, ..
            } => {
                let plan = self
                    .sequencer
                    .as_mut()
                    .expect("open")
                    .run(first_seq, count, true);
                self.declare_lost(plan.hole + plan.take)
            }
            Frame::Data(data) => {
                let plan = self.sequencer.as_mut().expect("open").run(
                    data.first_seq,
                    data.count as u64,
                    false,
                );
                self.declare_lost(plan.hole)?;
                if plan.take == 0 {
                    return Ok(());
                }
                self.scratch.clear();
                let base = bytes.as_ptr() as usize;
                for (time, payload) in data.messages().skip(plan.skip as usize) {
                    let at = payload.as_ptr() as usize - base;
                    self.scratch.push((time, at..at + payload.len()));
                }
                let scratch = std::mem::take(&mut self.scratch);
                let stop = self.stop;
                let mut go_on = || !stop.load(Ordering::Relaxed);
                let patience = self.patience(&mut go_on);
                let publisher = self.publisher.as_mut().expect("ring open");
                let before = publisher.sequence();
                let timestamps = publisher.layout().timestamps();
                let published = if timestamps {
                    publisher.publish_batch_at(
                        scratch.len(),
                        |i| &bytes[scratch[i].1.clone()],
                        |i| scratch[i].0,
                        patience,
                    )
                } else {
                    publisher.publish_all(scratch.iter().map(|(_, r)| &bytes[r.clone()]), patience)
                };
                published?;
                debug_assert_eq!(before, data.first_seq + plan.skip);
                if timestamps {
                    let now = ringcast_core::sys::clock::now_ns();
                    for (t, _) in &scratch {
                        self.latency
                            .saturating_record(now.saturating_sub(*t).max(1));
                    }
                }
                self.scratch = scratch;
                Ok(())
            }
            Frame::Tick { source_cursor, .. } => {
                self.report.source_cursor = source_cursor;
                Ok(())
            }
            Frame::End { next_seq } => {
                let s = self.sequencer.as_mut().expect("open");
                // Whatever of the stream never came is lost on the way.
                let plan = s.run(next_seq, 0, false);
                self.declare_lost(plan.hole)?;
                self.report.ended = true;
                Ok(())
            }
        }
    }
}

/// Aeron's fragment handler: one whole (reassembled) frame.
fn on_fragment(inbox: &mut Inbox<'_>, bytes: &[u8], _header: AeronHeader) {
    if inbox.failure.is_some() {
        return;
    }
    inbox.heard = true;
    inbox.report.frames += 1;
    inbox.report.bytes += bytes.len() as u64;
    match wire::decode(bytes) {
        Ok(frame) => {
            if let Err(e) = inbox.on_frame(bytes, frame) {
                inbox.failure = Some(e);
            }
        }
        Err(e) => {
            inbox.report.bad_frames += 1;
            inbox.report.last_bad_frame = Some(e.to_string());
        }
    }
}

/// Receives from `options.channel` into the far ring until `stop` is set
/// (or, with `until_end`, the sender said its source closed).
pub fn recv(
    options: &RecvOptions,
    stop: &AtomicBool,
    mut progress: impl FnMut(&RecvReport),
) -> Result<RecvReport, BridgeError> {
    crate::transport::check_channel(&options.channel)?;
    let idle = Idle::parse(&options.driver.idle)?;
    if let Some(c) = options.capacity {
        if !c.is_power_of_two() || c < 2 {
            return Err(BridgeError::Argument(format!(
                "capacity {c}: a power of two, at least 2"
            )));
        }
    }
    let driver = Driver::start(&options.driver)?;
    let client = Client::connect(&driver)?;
    let subscription = client.subscription(&options.channel, options.stream)?;
    let mut assembler = AeronFragmentClosureAssembler::new().map_err(|e| BridgeError::Aeron {
        during: "making a fragment assembler",
        detail: crate::transport::aeron_detail(&e),
    })?;
    let began = Instant::now();
    let mut inbox = Inbox {
        options,
        publisher: None,
        sequencer: None,
        shape: None,
        incarnation: None,
        report: RecvReport {
            channel: options.channel.clone(),
            stream: options.stream,
            embedded_driver: driver.embedded(),
            ..RecvReport::default()
        },
        latency: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds"),
        failure: None,
        stop,
        scratch: Vec::with_capacity(256),
        heard: false,
    };
    let mut next_progress = began + options.progress_every;
    let mut idler = Idler::new(idle);
    let update = |inbox: &mut Inbox<'_>, client: &Client| {
        let r = &mut inbox.report;
        if let Some(s) = &inbox.sequencer {
            r.delivered = s.delivered();
            r.loss = s.loss();
            r.next_seq = s.next();
        }
        r.lag = r.source_cursor.saturating_sub(r.next_seq);
        r.elapsed = began.elapsed();
        r.driver = client.counters();
        let h = &inbox.latency;
        r.latency_ns = (!h.is_empty()).then(|| {
            [
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
            ]
        });
    };
    let outcome = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let fragments = assembler
            .poll(&subscription, &mut inbox, on_fragment, 256)
            .map_err(|e| BridgeError::Aeron {
                during: "polling the subscription",
                detail: crate::transport::aeron_detail(&e),
            });
        let fragments = match fragments {
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        if let Some(e) = inbox.failure.take() {
            break Err(e);
        }
        if inbox.report.ended && options.until_end {
            break Ok(());
        }
        if let Some(t) = options.idle_timeout {
            if !inbox.heard && began.elapsed() >= t {
                break Err(BridgeError::NotConnected {
                    uri: options.channel.clone(),
                    waited: t,
                });
            }
        }
        let now = Instant::now();
        if now >= next_progress {
            next_progress = now + options.progress_every;
            update(&mut inbox, &client);
            progress(&inbox.report);
        }
        idler.idle(fragments as usize);
    };
    update(&mut inbox, &client);
    let report = inbox.report.clone();
    // Closed like any publisher's ring (subscribers that follow it pick up
    // the next receiver's messages).
    drop(inbox.publisher.take());
    outcome.map(|()| report)
}
