//! `ringcast bridge send`: a ring onto an Aeron publication.
//!
//! The sender is a subscriber of the source ring named as a *durable
//! stage* (`bridge` by default). Each turn it reads what is available (up
//! to a batch), packs it into `DATA` frames of at most one datagram, offers
//! them, and only then reads again, which commits them as processed. So:
//! - on a bounded source, a receiver that cannot keep up back-pressures the
//!   source's publisher: Aeron's flow control stops the offers, the sender
//!   stops reading, the ring fills (one chain, no buffer in between);
//! - a sender killed and restarted in time resumes at its committed place:
//!   what it had read but not offered is sent again (the receiver drops the
//!   duplicates), nothing is skipped;
//! - whatever a lossy source overwrote before the sender read it is
//!   announced in a `GAP` frame of exactly the size its subscriber counted.
//!
//! While no receiver is connected the sender does not read (a bounded
//! source waits for it; a lossy one laps it, and that loss is announced
//! when a receiver connects).

use crate::error::BridgeError;
use crate::transport::{Client, Driver, DriverCounters, DriverOptions, Idle};
use crate::wire::{entry_len, Encoder, GapCause, Hello, DATA_PREFIX_LEN};
use ringcast_core::{RecvError, Subscriber, WaitStrategy, Waiter};
use rusteron_media_driver::{AeronExclusivePublication, AeronOfferError};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where a new sender stage starts (a stage that has a place resumes there).
pub use ringcast_core::FirstMessage;

#[derive(Debug, Clone)]
pub struct SendOptions {
    pub ring: String,
    pub ring_dir: Option<PathBuf>,
    /// Aeron channel URI, e.g. `aeron:udp?endpoint=10.0.0.2:40456`.
    pub channel: String,
    pub stream: i32,
    pub driver: DriverOptions,
    /// The sender's stage name on the source ring.
    pub stage: String,
    pub first: FirstMessage,
    /// Most messages read per turn.
    pub batch: usize,
    /// How to wait when the ring has nothing new.
    pub wait: WaitStrategy,
    /// Fail when no receiver has connected after this long (`None`: wait).
    pub connect_timeout: Option<Duration>,
    /// After the source closed: keep the publication open this long so
    /// receivers can still recover (NAK) the last frames.
    pub linger: Duration,
    /// Keep sending across source publisher restarts; `false`: end once
    /// the source's publisher closed its ring and everything was sent.
    pub follow: bool,
    /// How often the ring's shape is repeated for receivers that join late.
    pub hello_every: Duration,
    /// How often an idle sender says where the source is.
    pub tick_every: Duration,
    pub progress_every: Duration,
}

impl SendOptions {
    pub fn new(ring: impl Into<String>, channel: impl Into<String>) -> SendOptions {
        SendOptions {
            ring: ring.into(),
            ring_dir: None,
            channel: channel.into(),
            stream: crate::DEFAULT_STREAM,
            driver: DriverOptions::default(),
            stage: "bridge".into(),
            first: FirstMessage::Oldest,
            batch: 1024,
            wait: WaitStrategy::default(),
            connect_timeout: None,
            linger: Duration::from_secs(1),
            follow: false,
            hello_every: Duration::from_millis(250),
            tick_every: Duration::from_millis(100),
            progress_every: Duration::from_secs(1),
        }
    }
}

/// What a sender did.
#[derive(Debug, Clone, Default)]
pub struct SendReport {
    pub ring: String,
    pub channel: String,
    pub stream: i32,
    /// Aeron session id of this sender's publication.
    pub session: i32,
    /// Sequence this run started at, and the next one it would send.
    pub started_at: u64,
    pub next_seq: u64,
    /// Messages sent; `DATA` frames and their bytes.
    pub sent: u64,
    pub frames: u64,
    pub bytes: u64,
    /// Messages the source lost before the sender read them (announced in
    /// `GAP` frames); always equal to `ring_lost`.
    pub source_lost: u64,
    pub ring_lost: u64,
    /// Offers refused because the receivers (flow control) or the term
    /// buffer were full: once per blocked offer.
    pub back_pressure: u64,
    /// Times the publication had no receiver connected.
    pub disconnects: u64,
    /// Messages in the source not yet sent, when last looked.
    pub lag: u64,
    pub connected: bool,
    pub elapsed: Duration,
    /// The source's publisher closed its ring and everything was sent.
    pub ended: bool,
    pub driver: DriverCounters,
    pub embedded_driver: bool,
}

/// A random-enough number per sender run (no two runs on any host share it
/// in practice): the clock, the pid and an address, mixed.
fn incarnation() -> u64 {
    let mut x = ringcast_core::sys::clock::now_ns()
        ^ ((std::process::id() as u64) << 40)
        ^ (&x_marker as *const _ as u64);
    // splitmix64
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[allow(non_upper_case_globals)]
static x_marker: u8 = 0;

/// Why an offer did not go out.
enum Unsent {
    Stopped,
    Failed(BridgeError),
}

impl From<BridgeError> for Unsent {
    fn from(e: BridgeError) -> Self {
        Unsent::Failed(e)
    }
}

/// The publication and what the sender tells receivers about itself.
struct Outlet<'a> {
    publication: AeronExclusivePublication,
    /// Data, gap, tick and end frames.
    encoder: Encoder,
    /// Hello frames (which may have to go out while `encoder` holds a frame
    /// waiting for a receiver).
    control: Encoder,
    hello: Hello,
    report: &'a mut SendReport,
    next_hello: Instant,
    hello_every: Duration,
    stop: &'a AtomicBool,
}

impl Outlet<'_> {
    /// Offers the frame in `encoder` (or, with `hello`, in `control`) until
    /// it is taken, waiting out back pressure and disconnection (after
    /// which the hello goes out first), or until the bridge is stopped.
    fn offer(&mut self, hello: bool) -> Result<(), Unsent> {
        let mut blocked = false;
        loop {
            let frame = if hello {
                self.control.current()
            } else {
                self.encoder.current()
            };
            match self.publication.offer(frame) {
                Ok(_) => return Ok(()),
                Err(AeronOfferError::BackPressured) => {
                    if !blocked {
                        self.report.back_pressure += 1;
                        blocked = true;
                    }
                    std::thread::yield_now();
                }
                Err(AeronOfferError::AdminAction) => {}
                Err(AeronOfferError::NotConnected) if hello => self.wait_connected()?,
                Err(AeronOfferError::NotConnected) => self.await_receiver()?,
                Err(e) => {
                    return Err(Unsent::Failed(BridgeError::Aeron {
                        during: "offering a frame",
                        detail: format!("{e:?}"),
                    }))
                }
            }
            if self.stop.load(Ordering::Relaxed) {
                return Err(Unsent::Stopped);
            }
        }
    }

    /// Waits until a receiver is connected again (counting the
    /// disconnection).
    fn wait_connected(&mut self) -> Result<(), Unsent> {
        if !self.publication.is_connected() && self.report.connected {
            self.report.connected = false;
            self.report.disconnects += 1;
        }
        let channel = self.report.channel.clone();
        if !wait_for_receiver(&self.publication, &channel, None, self.stop)? {
            return Err(Unsent::Stopped);
        }
        self.report.connected = true;
        Ok(())
    }

    /// Waits until a receiver is connected, then says hello.
    fn await_receiver(&mut self) -> Result<(), Unsent> {
        self.wait_connected()?;
        self.say_hello()
    }

    fn say_hello(&mut self) -> Result<(), Unsent> {
        self.hello.next_seq = self.report.next_seq;
        self.control.hello(&self.hello);
        self.next_hello = Instant::now() + self.hello_every;
        self.offer(true)
    }

    /// The periodic hello (for receivers that join late) and tick.
    fn housekeeping(&mut self, source_cursor: Option<u64>) -> Result<(), Unsent> {
        if !self.publication.is_connected() {
            return self.await_receiver();
        }
        if Instant::now() >= self.next_hello {
            self.say_hello()?;
        }
        if let Some(cursor) = source_cursor {
            self.encoder.tick(self.report.next_seq, cursor);
            self.offer(false)?;
        }
        Ok(())
    }
}

/// Sends ring `options.ring` on `options.channel` until `stop` is set (or,
/// without `follow`, the source's publisher closed the ring and everything
/// was sent). `progress` gets the report every `progress_every`.
pub fn send(
    options: &SendOptions,
    stop: &AtomicBool,
    mut progress: impl FnMut(&SendReport),
) -> Result<SendReport, BridgeError> {
    if options.batch == 0 {
        return Err(BridgeError::Argument(
            "batch must be at least 1 message".into(),
        ));
    }
    crate::transport::check_channel(&options.channel)?;
    let idle = Idle::parse(&options.driver.idle)?;
    let dir = options.ring_dir.as_deref();
    // The ring must exist (and its shape be known) before Aeron starts.
    let info = ringcast_core::info::inspect(&options.ring, dir)?;
    let layout = info.layout.clone();
    let driver = Driver::start(&options.driver)?;
    let client = Client::connect(&driver)?;
    let publication = client.publication(&options.channel, options.stream)?;
    let constants = publication
        .get_constants()
        .map_err(|e| BridgeError::Aeron {
            during: "reading the publication's limits",
            detail: crate::transport::aeron_detail(&e),
        })?;
    let slot = layout.slot_size as usize;
    if DATA_PREFIX_LEN + entry_len(slot) > constants.max_message_length() {
        return Err(BridgeError::Argument(format!(
            "messages of ring {:?} ({slot} bytes) do not fit one Aeron message ({} bytes): \
             give the channel a longer term (term-length=)",
            options.ring,
            constants.max_message_length()
        )));
    }
    // One datagram per frame, unless one message alone needs more (Aeron
    // fragments it; the receiver reassembles).
    let frame_limit = constants
        .max_payload_length()
        .max(DATA_PREFIX_LEN + entry_len(slot));

    // A receiver first: a sender that cannot reach one leaves nothing
    // behind on the source ring (no stage place holding a bounded ring).
    if !wait_for_receiver(
        &publication,
        &options.channel,
        options.connect_timeout,
        stop,
    )? {
        return Ok(SendReport {
            ring: options.ring.clone(),
            channel: options.channel.clone(),
            stream: options.stream,
            embedded_driver: driver.embedded(),
            ..SendReport::default()
        });
    }
    let mut sub = Subscriber::builder(&options.ring)
        .start(options.first.into())
        .stage(&options.stage)
        .durable(true);
    if let Some(dir) = dir {
        sub = sub.dir(dir);
    }
    let mut sub = sub.attach()?;
    // A spinning bridge spins on its ring too.
    let wait = match idle {
        Idle::Spin => WaitStrategy::BusySpin,
        _ => options.wait,
    };
    sub.declare_wait(wait);

    let began = Instant::now();
    let mut report = SendReport {
        ring: options.ring.clone(),
        channel: options.channel.clone(),
        stream: options.stream,
        session: constants.session_id(),
        started_at: sub.position(),
        next_seq: sub.position(),
        embedded_driver: driver.embedded(),
        ..SendReport::default()
    };
    let hello = Hello {
        next_seq: report.next_seq,
        capacity: layout.capacity,
        source_created_ns: info.created_unix_ns,
        slot_size: layout.slot_size,
        flags: layout.flags,
        name: options.ring.clone(),
        schema: layout.schema.clone(),
    };
    let batch = options.batch.min((layout.capacity as usize / 2).max(1));
    let mut rows = vec![0u8; batch * slot];
    let mut seqs = vec![0u64; batch];
    let mut times = vec![0u64; batch];
    let mut lens = vec![0usize; batch];
    let lost_at_start = sub.lost();
    let incarnation = incarnation();
    let mut out = Outlet {
        publication,
        encoder: Encoder::new(incarnation),
        control: Encoder::new(incarnation),
        hello,
        report: &mut report,
        next_hello: Instant::now(),
        hello_every: options.hello_every,
        stop,
    };
    let mut waiter = Waiter::new(wait);
    let mut next_progress = began + options.progress_every;
    let mut next_tick = began + options.tick_every;

    let outcome = (|| -> Result<(), Unsent> {
        out.await_receiver()?;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(Unsent::Stopped);
            }
            let n = sub
                .try_recv_rows_timed(&mut rows, slot, &mut seqs, &mut times, |i, len| {
                    lens[i] = len;
                })
                .map_err(BridgeError::from)?;
            if n > 0 {
                waiter.reset();
                send_batch(
                    &mut out,
                    frame_limit,
                    &seqs[..n],
                    &times[..n],
                    &lens[..n],
                    &rows,
                    slot,
                )?;
                next_tick = Instant::now() + options.tick_every;
            }
            let now = Instant::now();
            if now >= next_progress {
                next_progress = now + options.progress_every;
                out.report.lag = sub.lag();
                out.report.ring_lost = sub.lost() - lost_at_start;
                out.report.elapsed = began.elapsed();
                out.report.driver = client.counters();
                progress(out.report);
            }
            let tick = (now >= next_tick).then(|| {
                next_tick = now + options.tick_every;
                out.report.next_seq + sub.lag()
            });
            out.housekeeping(tick)?;
            if n > 0 {
                continue;
            }
            // A lap with nothing read after it: announce it now.
            let position = sub.position();
            if position > out.report.next_seq {
                let from = out.report.next_seq;
                announce_gap(&mut out, from, position - from)?;
            }
            if sub.ended() && !options.follow {
                out.encoder.end(out.report.next_seq);
                out.offer(false)?;
                out.report.ended = true;
                return Ok(());
            }
            let deadline = Instant::now() + options.tick_every.min(Duration::from_millis(50));
            match sub.wait_readable(Some(deadline), &mut waiter) {
                Ok(()) | Err(RecvError::Timeout) => {}
                Err(RecvError::Closed { .. } | RecvError::PublisherDied { .. }) => {
                    if options.follow {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                Err(e) => return Err(Unsent::Failed(e.into())),
            }
        }
    })();
    let failure = match outcome {
        Ok(()) | Err(Unsent::Stopped) => None,
        Err(Unsent::Failed(e)) => Some(e),
    };
    out.report.lag = sub.lag();
    out.report.ring_lost = sub.lost() - lost_at_start;
    if failure.is_some() || !out.report.ended {
        // What was read but not offered must not count as processed: the
        // next sender resumes before it (a stop mid-offer included).
        sub.abandon();
    } else {
        sub.commit();
    }
    if out.report.ended && failure.is_none() {
        // Let receivers recover the last frames before the publication goes.
        let until = Instant::now() + options.linger;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    out.report.elapsed = began.elapsed();
    out.report.driver = client.counters();
    drop(out);
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Waits until `publication` has a receiver, up to `timeout`; `Ok(false)`
/// when stopped first.
fn wait_for_receiver(
    publication: &AeronExclusivePublication,
    channel: &str,
    timeout: Option<Duration>,
    stop: &AtomicBool,
) -> Result<bool, BridgeError> {
    let began = Instant::now();
    while !publication.is_connected() {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        if let Some(t) = timeout {
            if began.elapsed() >= t {
                return Err(BridgeError::NotConnected {
                    uri: channel.to_owned(),
                    waited: t,
                });
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(true)
}

fn announce_gap(out: &mut Outlet<'_>, first: u64, count: u64) -> Result<(), Unsent> {
    out.encoder.gap(first, count, GapCause::SourceLost);
    out.offer(false)?;
    out.report.source_lost += count;
    out.report.next_seq = first + count;
    Ok(())
}

/// Offers one batch read from the source: `GAP` frames where it skipped,
/// `DATA` frames of consecutive messages up to `frame_limit` bytes.
fn send_batch(
    out: &mut Outlet<'_>,
    frame_limit: usize,
    seqs: &[u64],
    times: &[u64],
    lens: &[usize],
    rows: &[u8],
    slot: usize,
) -> Result<(), Unsent> {
    let mut i = 0;
    while i < seqs.len() {
        if seqs[i] != out.report.next_seq {
            let from = out.report.next_seq;
            announce_gap(out, from, seqs[i] - from)?;
        }
        out.encoder.begin_data(seqs[i]);
        let mut n = 0u64;
        while i < seqs.len()
            && seqs[i] == out.report.next_seq + n
            && (n == 0 || out.encoder.len() + entry_len(lens[i]) <= frame_limit)
        {
            out.encoder
                .push(times[i], &rows[i * slot..i * slot + lens[i]]);
            n += 1;
            i += 1;
        }
        let bytes = out.encoder.len() as u64;
        out.offer(false)?;
        out.report.sent += n;
        out.report.frames += 1;
        out.report.bytes += bytes;
        out.report.next_seq += n;
    }
    Ok(())
}
