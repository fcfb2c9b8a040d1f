//! ringcast against its Rust peers, measured in one run on one machine.
//!
//! `cargo run --release -p ringcast-benches --bin rust_peers -- [--messages N] [--quick] [--json]`
//!
//! Every path moves 64-byte messages through a 4096-slot buffer. Measured in
//! one run, so that the ratios between the rows are not ratios between
//! machines or days:
//!
//! - the physical limit: a cache-line ping-pong between the publisher's and
//!   the receiver's core, round trip / 2;
//! - one-way latency: the publisher stamps each message with the time stamp
//!   counter and sends one every ~2 µs (nothing queues); the receiver, spinning,
//!   records `now - stamp`. Between two pinned threads for ringcast, the
//!   `disruptor` crate, `crossbeam-channel` and `photon-ring`; between two
//!   processes for ringcast and `iceoryx2` (photon-ring has no inter-process
//!   mode and is reported as not measured). The receiving process is this
//!   binary re-executed with a hidden `--child` role; the TSC is invariant, so
//!   stamps taken in one process compare with readings in another;
//! - throughput flat out, one publisher to one and to four receivers: the
//!   publisher's rate and each receiver's delivered rate (and, for lossy
//!   paths, how many messages a lapped receiver lost). A seqlock ring never
//!   waits for its readers; `ringcast bounded` (the publisher waits for the
//!   slowest reader) is the like-for-like comparison with the lossless peers.
//!
//! Latency rounds and throughput trials are interleaved across the paths, so
//! that a change of the machine's state shows in all rows alike.
//! Percentiles are nearest-rank over all samples. A path that cannot run is
//! reported as "not measured: <reason>" and the others go on.

mod common;
mod ping_pong;
mod pinning;

use common::{clock_overhead_ns, percentile, ring_dir, ticks, Clock};
use core_affinity::CoreId;
use pinning::pin;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Size of every message, bytes.
const MSG_SIZE: usize = 64;
/// One message as every path carries it: stamp at 0..8, sequence at 8..16.
type Msg = [u8; MSG_SIZE];
/// Where the send time stamp (TSC ticks) sits in a message.
const STAMP_AT: usize = 0;
/// Where the sequence number sits in a message.
const SEQ_AT: usize = 8;
/// Slots (ring size, channel bound, subscriber queue) of every path.
const CAPACITY: usize = 4096;
/// Receivers of the fan-out throughput runs.
const FAN_OUT: usize = 4;
/// Pacing of the latency runs: one message per this many ns.
const PACE_NS: f64 = 2_000.0;
/// Messages before the recorded ones in every latency round: two laps of a
/// fresh ring, so that first-touch page faults are not recorded.
const WARMUP: u64 = 2 * CAPACITY as u64;
/// Default `--messages`: latency samples per path (and throughput messages
/// per trial, times [`THROUGHPUT_FACTOR`]).
const DEFAULT_MESSAGES: u64 = 500_000;
/// `--quick`: messages, latency rounds and throughput trials.
const QUICK_MESSAGES: u64 = 20_000;
/// Latency rounds (interleaved across the paths) of a full run.
const ROUNDS: usize = 5;
/// Throughput trials of a full run; the median trial is reported.
const TRIALS: usize = 3;
/// Throughput messages per trial, in multiples of `--messages`.
const THROUGHPUT_FACTOR: u64 = 2;
/// A measurement gives up after this long, plus [`TIMEOUT_PER_MSG_NS`] per
/// message, so that a stuck peer cannot stop the run.
const TIMEOUT_BASE_NS: f64 = 10e9;
/// See [`TIMEOUT_BASE_NS`].
const TIMEOUT_PER_MSG_NS: f64 = 5_000.0;
/// Polls a waiting throughput thread spins before it starts yielding.
const SPIN_POLLS: u64 = 256;
/// Idle polls between two looks at the deadline.
const DEADLINE_EVERY: u64 = 4096;
/// Most messages one `drain` takes from a per-message API.
const DRAIN_MAX: usize = 256;
/// Hidden first argument that makes this binary a receiver process.
const CHILD_FLAG: &str = "--child";
/// Why photon-ring has no inter-process rows.
const PHOTON_NO_IPC: &str = "photon-ring 3.0.0 has no shared-memory or inter-process mode \
     (its rings are heap memory behind an Arc; checked in its source and docs)";

// ------------------------------------------------------------- messages ----

/// The little-endian u64 at `at` of `msg`.
#[inline(always)]
fn read_u64(msg: &Msg, at: usize) -> u64 {
    u64::from_le_bytes(msg[at..at + 8].try_into().expect("8 bytes"))
}

/// Stores `value` little-endian at `at` of `msg`.
#[inline(always)]
fn write_u64(msg: &mut Msg, at: usize, value: u64) {
    msg[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

// ------------------------------------------------- the paths, abstractly ----

/// The sending end of a path under test, as the drivers below use it.
trait PeerSender {
    /// Offers one message: `Ok(false)` when a lossless path is full right now.
    fn offer(&mut self, msg: &Msg) -> Result<bool, String>;

    /// Called once every receiver is attached, before the first message.
    fn connect(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// The receiving end of a path under test.
trait PeerReceiver {
    /// Hands every message available now (up to a batch) to `each`, in
    /// order; returns how many. Lost messages are simply not handed over.
    fn drain(&mut self, each: impl FnMut(&Msg)) -> Result<usize, String>;
}

/// What one call of a per-message receive API gave.
enum Polled {
    /// A message, handed to `each`.
    Message,
    /// Nothing waiting.
    Empty,
    /// A notice with no message (a lapped reader told so); poll again.
    Skipped,
}

/// [`PeerReceiver::drain`] for APIs that give one message per call: calls
/// `poll_one` (which hands the message it got to `each`) until nothing is
/// waiting or [`DRAIN_MAX`] messages were taken.
#[inline]
fn drain_one_by_one<F: FnMut(&Msg)>(
    mut each: F,
    mut poll_one: impl FnMut(&mut F) -> Result<Polled, String>,
) -> Result<usize, String> {
    let mut n = 0;
    while n < DRAIN_MAX {
        match poll_one(&mut each)? {
            Polled::Message => n += 1,
            Polled::Empty => break,
            Polled::Skipped => {}
        }
    }
    Ok(n)
}

/// How a throughput thread waits when it cannot make progress: spins a
/// while, then yields (the 1 -> 4 runs put five busy threads on two cores, and
/// a spinning waiter would keep the thread it waits for off its core), and
/// gives up at the deadline. The same for every path.
struct Backoff {
    polls: u64,
    deadline: u64,
}

impl Backoff {
    /// A fresh wait that gives up at tick `deadline`.
    fn new(deadline: u64) -> Self {
        Self { polls: 0, deadline }
    }

    /// One idle poll; `Err` once the deadline has passed.
    #[inline]
    fn idle(&mut self, waiting_for: &str) -> Result<(), String> {
        self.polls += 1;
        if self.polls < SPIN_POLLS {
            std::hint::spin_loop();
            return Ok(());
        }
        if self.polls.is_multiple_of(DEADLINE_EVERY) && ticks() > self.deadline {
            return Err(format!("timed out waiting for {waiting_for}"));
        }
        thread::yield_now();
        Ok(())
    }

    /// Progress was made: the next wait starts spinning again.
    #[inline]
    fn reset(&mut self) {
        self.polls = 0;
    }
}

// -------------------------------------------------------------- drivers ----

/// Sends `total` messages, one per [`PACE_NS`], each stamped just before it
/// is offered. Paces from the previous send, not from a fixed schedule, so a
/// descheduled sender does not burst afterwards and queue messages.
fn paced_send<S: PeerSender>(
    tx: &mut S,
    clock: &Clock,
    total: u64,
    deadline: u64,
) -> Result<(), String> {
    let pace = clock.ticks_for_ns(PACE_NS);
    let mut msg: Msg = [0; MSG_SIZE];
    let mut last = ticks();
    for seq in 0..total {
        while ticks().wrapping_sub(last) < pace {}
        let now = ticks();
        write_u64(&mut msg, STAMP_AT, now);
        write_u64(&mut msg, SEQ_AT, seq);
        let mut backoff = Backoff::new(deadline);
        while !tx.offer(&msg)? {
            backoff.idle("room on a paced path")?;
        }
        last = now;
    }
    Ok(())
}

/// One-way stamp differences of one latency run, and what never arrived.
struct StampLog {
    /// `receive tick - send tick` of every message after the warm-up
    /// (signed: two cores' TSCs could disagree).
    deltas: Vec<i64>,
    /// Messages of the run the receiver never got.
    lost: u64,
}

/// Receives until message `total - 1`, spinning (no pause, no yield), and
/// records `now - stamp` of every message from `warmup` on.
fn receive_stamps<R: PeerReceiver>(
    rx: &mut R,
    total: u64,
    warmup: u64,
    deadline: u64,
) -> Result<StampLog, String> {
    let mut deltas = Vec::with_capacity(total.saturating_sub(warmup) as usize);
    let (mut received, mut done, mut empty) = (0u64, false, 0u64);
    while !done {
        let got = rx.drain(|m| {
            let now = ticks();
            let seq = read_u64(m, SEQ_AT);
            if seq >= warmup {
                deltas.push(now.wrapping_sub(read_u64(m, STAMP_AT)) as i64);
            }
            received += 1;
            done |= seq + 1 == total;
        })?;
        if got == 0 {
            empty += 1;
            if empty.is_multiple_of(DEADLINE_EVERY) && ticks() > deadline {
                return Err(format!(
                    "timed out after {received} of {total} latency messages"
                ));
            }
        }
    }
    Ok(StampLog {
        deltas,
        lost: total - received,
    })
}

/// Sends `total` messages as fast as the path takes them; returns the ticks
/// at the first and after the last.
fn send_flat_out<S: PeerSender>(
    tx: &mut S,
    total: u64,
    deadline: u64,
) -> Result<(u64, u64), String> {
    let mut msg: Msg = [0; MSG_SIZE];
    let mut backoff = Backoff::new(deadline);
    let start = ticks();
    for seq in 0..total {
        write_u64(&mut msg, SEQ_AT, seq);
        while !tx.offer(&msg)? {
            backoff.idle("room (the slowest receiver)")?;
        }
        backoff.reset();
    }
    Ok((start, ticks()))
}

/// What one receiver of a throughput trial got.
struct Delivery {
    received: u64,
    /// Tick at which it had the last message.
    end: u64,
}

/// Receives until message `total - 1` (the last one always arrives, even on
/// a lossy path); counts what arrived.
fn receive_all<R: PeerReceiver>(rx: &mut R, total: u64, deadline: u64) -> Result<Delivery, String> {
    let (mut received, mut done) = (0u64, false);
    let mut backoff = Backoff::new(deadline);
    while !done {
        let got = rx.drain(|m| {
            received += 1;
            done |= read_u64(m, SEQ_AT) + 1 == total;
        })?;
        if got == 0 {
            backoff.idle("messages")?;
        } else {
            backoff.reset();
        }
    }
    Ok(Delivery {
        received,
        end: ticks(),
    })
}

// ------------------------------------------------------------- ringcast ----

/// ringcast's publisher: a fixed-size 64-byte single-producer ring in the
/// run's temporary directory, lossy or bounded (watermark = capacity).
struct RingcastSender {
    publisher: ringcast_core::Publisher,
    /// Bounded rings: when a `publish` waiting for room gives up.
    give_up_at: Instant,
}

impl RingcastSender {
    /// Creates ring `name` in `dir`, lossy or bounded by a full ring. A
    /// bounded publisher waits for room inside `publish` (ringcast's own
    /// wait, which resumes only once a sixteenth of the ring is free) with
    /// the same policy the bench gives the other peers: spin
    /// [`SPIN_POLLS`] polls, then yield; it gives up after `timeout`.
    fn create(dir: &Path, name: &str, bounded: bool, timeout: Duration) -> Result<Self, String> {
        let opts = ringcast_core::CreateOptions {
            fixed_size: true,
            dir: Some(dir.to_owned()),
            bounded: bounded.then_some(CAPACITY as u64),
            wait: ringcast_core::WaitStrategy::Adaptive {
                spin: SPIN_POLLS as u32,
                yields: u32::MAX,
            },
            ..ringcast_core::CreateOptions::new(CAPACITY as u64, MSG_SIZE as u32)
        };
        let publisher = ringcast_core::Publisher::create(name, &opts)
            .map_err(|e| format!("ringcast: creating ring {name}: {e}"))?;
        Ok(Self {
            publisher,
            give_up_at: Instant::now() + timeout,
        })
    }
}

impl PeerSender for RingcastSender {
    #[inline]
    fn offer(&mut self, msg: &Msg) -> Result<bool, String> {
        self.publisher
            .publish_with(msg, ringcast_core::Patience::until(Some(self.give_up_at)))
            .map_err(|e| format!("ringcast publish: {e}"))?;
        Ok(true)
    }
}

impl Drop for RingcastSender {
    /// Removes the ring file (readers that mapped it keep their mapping).
    fn drop(&mut self) {
        let _ = self.publisher.unlink();
    }
}

/// ringcast's subscriber, reading from the oldest message (attached before
/// the first publish, so from message 0), copying out every message
/// available (up to [`DRAIN_MAX`]) with one `try_recv_rows` call: its
/// position is published once per batch, as a disruptor poller's is.
struct RingcastReceiver {
    subscriber: ringcast_core::Subscriber,
    rows: Vec<u8>,
}

impl RingcastReceiver {
    /// Attaches to ring `name` in `dir`, from its oldest message.
    fn attach(dir: &Path, name: &str) -> Result<Self, String> {
        let subscriber =
            ringcast_core::Subscriber::attach(name, Some(dir), ringcast_core::Start::Oldest)
                .map_err(|e| format!("ringcast: attaching to {name}: {e}"))?;
        Ok(Self {
            subscriber,
            rows: vec![0; DRAIN_MAX * MSG_SIZE],
        })
    }
}

impl PeerReceiver for RingcastReceiver {
    #[inline]
    fn drain(&mut self, mut each: impl FnMut(&Msg)) -> Result<usize, String> {
        let n = self
            .subscriber
            .try_recv_rows(&mut self.rows, MSG_SIZE, DRAIN_MAX, |_, _| {})
            .map_err(|e| format!("ringcast try_recv_rows: {e}"))?;
        for row in self.rows[..n * MSG_SIZE].chunks_exact(MSG_SIZE) {
            each(row.try_into().expect("rows are MSG_SIZE bytes"));
        }
        Ok(n)
    }
}

// ------------------------------------------------------------ disruptor ----

/// The `disruptor` crate's single producer (lossless: `try_publish` fails
/// when the slowest poller is a ring behind).
struct DisruptorSender<P>(P);

impl<P: disruptor::Producer<Msg>> PeerSender for DisruptorSender<P> {
    #[inline]
    fn offer(&mut self, msg: &Msg) -> Result<bool, String> {
        Ok(self.0.try_publish(|slot| *slot = *msg).is_ok())
    }
}

/// One `disruptor` EventPoller: reads every event available in one batch.
struct DisruptorReceiver(disruptor::EventPoller<Msg, disruptor::SingleProducerBarrier>);

impl PeerReceiver for DisruptorReceiver {
    #[inline]
    fn drain(&mut self, mut each: impl FnMut(&Msg)) -> Result<usize, String> {
        match self.0.poll() {
            Ok(mut events) => {
                let mut n = 0;
                for event in &mut events {
                    each(event);
                    n += 1;
                }
                Ok(n)
            }
            Err(disruptor::Polling::NoEvents) => Ok(0),
            Err(disruptor::Polling::Shutdown) => Err("disruptor shut down early".into()),
        }
    }
}

/// A disruptor with one poller: the single-consumer (SPSC) build.
fn disruptor_spsc() -> (
    DisruptorSender<disruptor::SingleProducer<Msg, disruptor::SingleConsumerBarrier>>,
    DisruptorReceiver,
) {
    let builder =
        disruptor::build_single_producer(CAPACITY, || [0u8; MSG_SIZE], disruptor::BusySpin);
    let (poller, builder) = builder.new_event_poller();
    (DisruptorSender(builder.build()), DisruptorReceiver(poller))
}

/// A disruptor with `n` independent pollers: each sees every event.
fn disruptor_broadcast(
    n: usize,
) -> (
    DisruptorSender<disruptor::SingleProducer<Msg, disruptor::MultiConsumerBarrier>>,
    Vec<DisruptorReceiver>,
) {
    let mut builder =
        disruptor::build_single_producer(CAPACITY, || [0u8; MSG_SIZE], disruptor::BusySpin)
            .with_multi_consumer();
    let mut pollers = Vec::with_capacity(n);
    for _ in 0..n {
        let (poller, next) = builder.new_event_poller();
        pollers.push(DisruptorReceiver(poller));
        builder = next;
    }
    (DisruptorSender(builder.build()), pollers)
}

// ---------------------------------------------------- crossbeam-channel ----

/// `crossbeam-channel` bounded channels, one per receiver (a channel is not
/// a broadcast: each message goes to one receiver), so 1 -> n sends every
/// message to each of n channels.
struct CrossbeamSender {
    channels: Vec<crossbeam_channel::Sender<Msg>>,
    /// Channels the current message already went to.
    sent_to: usize,
}

impl PeerSender for CrossbeamSender {
    #[inline]
    fn offer(&mut self, msg: &Msg) -> Result<bool, String> {
        while self.sent_to < self.channels.len() {
            match self.channels[self.sent_to].try_send(*msg) {
                Ok(()) => self.sent_to += 1,
                Err(crossbeam_channel::TrySendError::Full(_)) => return Ok(false),
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                    return Err("crossbeam receiver gone".into())
                }
            }
        }
        self.sent_to = 0;
        Ok(true)
    }
}

/// One `crossbeam-channel` receiver, polled with `try_recv`.
struct CrossbeamReceiver(crossbeam_channel::Receiver<Msg>);

impl PeerReceiver for CrossbeamReceiver {
    #[inline]
    fn drain(&mut self, each: impl FnMut(&Msg)) -> Result<usize, String> {
        drain_one_by_one(each, |each| match self.0.try_recv() {
            Ok(msg) => {
                each(&msg);
                Ok(Polled::Message)
            }
            Err(crossbeam_channel::TryRecvError::Empty) => Ok(Polled::Empty),
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                Err("crossbeam sender gone early".into())
            }
        })
    }
}

/// `n` bounded channels of [`CAPACITY`] and their receivers.
fn crossbeam_fan_out(n: usize) -> (CrossbeamSender, Vec<CrossbeamReceiver>) {
    let (channels, receivers) = (0..n)
        .map(|_| {
            let (tx, rx) = crossbeam_channel::bounded::<Msg>(CAPACITY);
            (tx, CrossbeamReceiver(rx))
        })
        .unzip();
    (
        CrossbeamSender {
            channels,
            sent_to: 0,
        },
        receivers,
    )
}

// ---------------------------------------------------------- photon-ring ----

/// photon-ring's SPMC publisher: `channel` (lossy) or `channel_bounded`
/// with watermark 0 (lossless, `try_publish` fails when full).
struct PhotonSender {
    publisher: photon_ring::Publisher<Msg>,
    bounded: bool,
}

impl PeerSender for PhotonSender {
    #[inline]
    fn offer(&mut self, msg: &Msg) -> Result<bool, String> {
        if !self.bounded {
            self.publisher.publish(*msg);
            return Ok(true);
        }
        Ok(self.publisher.try_publish(*msg).is_ok())
    }
}

/// One photon-ring subscriber, polled with `try_recv` (a lapped subscriber
/// gets `Lagged` and goes on from where the ring is).
struct PhotonReceiver(photon_ring::Subscriber<Msg>);

impl PeerReceiver for PhotonReceiver {
    #[inline]
    fn drain(&mut self, each: impl FnMut(&Msg)) -> Result<usize, String> {
        drain_one_by_one(each, |each| match self.0.try_recv() {
            Ok(msg) => {
                each(&msg);
                Ok(Polled::Message)
            }
            Err(photon_ring::TryRecvError::Empty) => Ok(Polled::Empty),
            Err(photon_ring::TryRecvError::Lagged { .. }) => Ok(Polled::Skipped),
        })
    }
}

/// A photon-ring channel of [`CAPACITY`] and `n` subscribers (subscribed
/// before the first publish).
fn photon_fan_out(n: usize, bounded: bool) -> (PhotonSender, Vec<PhotonReceiver>) {
    let (publisher, subscribable) = if bounded {
        photon_ring::channel_bounded::<Msg>(CAPACITY, 0)
    } else {
        photon_ring::channel::<Msg>(CAPACITY)
    };
    let receivers = (0..n)
        .map(|_| PhotonReceiver(subscribable.subscribe()))
        .collect();
    (PhotonSender { publisher, bounded }, receivers)
}

// ------------------------------------------------------------- iceoryx2 ----

use iceoryx2::port::update_connections::UpdateConnections as _;
use iceoryx2::prelude::{ipc, LogLevel, NodeBuilder, ServiceName, SignalHandlingMode};

/// The iceoryx2 publish-subscribe service every iceoryx2 path uses.
type IoxService =
    iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, Msg, ()>;

/// An iceoryx2 node of this process (inter-process service variant), with
/// iceoryx2's logging down to errors and its signal handlers off (they
/// would swallow Ctrl-C).
fn iceoryx2_node() -> Result<iceoryx2::node::Node<ipc::Service>, String> {
    iceoryx2::prelude::set_log_level(LogLevel::Error);
    NodeBuilder::new()
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .map_err(|e| format!("iceoryx2: creating a node: {e:?}"))
}

/// Creates (publisher side) or opens (receiver side) service `name`:
/// [u8; 64] payload, one publisher, up to [`FAN_OUT`] subscribers, each with
/// a queue of [`CAPACITY`], no history; `lossy` = safe overflow (a full
/// queue drops its oldest sample), else the publisher waits for room.
fn iceoryx2_service(
    node: &iceoryx2::node::Node<ipc::Service>,
    name: &str,
    lossy: bool,
    create: bool,
) -> Result<IoxService, String> {
    let service_name: ServiceName = name
        .try_into()
        .map_err(|e| format!("iceoryx2: service name {name}: {e:?}"))?;
    let builder = node
        .service_builder(&service_name)
        .publish_subscribe::<Msg>()
        .max_publishers(1)
        .max_subscribers(FAN_OUT)
        .subscriber_max_buffer_size(CAPACITY)
        .history_size(0)
        .enable_safe_overflow(lossy);
    if create {
        builder
            .create()
            .map_err(|e| format!("iceoryx2: creating service {name}: {e:?}"))
    } else {
        builder
            .open()
            .map_err(|e| format!("iceoryx2: opening service {name}: {e:?}"))
    }
}

/// An iceoryx2 publisher: loans a sample in shared memory, writes the
/// message into it, sends it (zero-copy: subscribers get the offset).
struct Iceoryx2Sender {
    // Fields drop in this order: port, service, node.
    publisher: iceoryx2::port::publisher::Publisher<ipc::Service, Msg, ()>,
    _service: IoxService,
    _node: iceoryx2::node::Node<ipc::Service>,
    /// Subscribers every sample must reach.
    receivers: usize,
}

impl Iceoryx2Sender {
    /// Lossless: `RetryUntilDelivered` (iceoryx2's own adaptive wait), with a
    /// handler that gives up after `timeout`. Lossy: safe overflow.
    fn create(
        name: &str,
        lossy: bool,
        receivers: usize,
        timeout: Duration,
    ) -> Result<Self, String> {
        use iceoryx2::port::backpressure_strategy::BackpressureStrategy;
        use iceoryx2::port::{BackpressureAction, BackpressureInfo};
        let node = iceoryx2_node()?;
        let service = iceoryx2_service(&node, name, lossy, true)?;
        let mut builder = service.publisher_builder();
        if lossy {
            builder = builder.backpressure_strategy(BackpressureStrategy::DiscardData);
        } else {
            builder = builder
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .set_backpressure_handler(move |info: &BackpressureInfo| {
                    if info.elapsed_time > timeout {
                        BackpressureAction::DiscardDataAndFail
                    } else {
                        BackpressureAction::Retry
                    }
                });
        }
        let publisher = builder
            .create()
            .map_err(|e| format!("iceoryx2: creating publisher: {e:?}"))?;
        Ok(Self {
            publisher,
            _service: service,
            _node: node,
            receivers,
        })
    }
}

impl PeerSender for Iceoryx2Sender {
    #[inline]
    fn offer(&mut self, msg: &Msg) -> Result<bool, String> {
        let sample = self
            .publisher
            .loan_uninit()
            .map_err(|e| format!("iceoryx2 loan: {e:?}"))?;
        let delivered = sample
            .write_payload(*msg)
            .send()
            .map_err(|e| format!("iceoryx2 send: {e:?}"))?;
        if delivered < self.receivers {
            return Err(format!(
                "iceoryx2 delivered a sample to {delivered} of {} subscribers",
                self.receivers
            ));
        }
        Ok(true)
    }

    /// Connects to the subscribers created since the publisher was.
    fn connect(&mut self) -> Result<(), String> {
        self.publisher
            .update_connections()
            .map_err(|e| format!("iceoryx2: connecting to subscribers: {e:?}"))
    }
}

/// An iceoryx2 subscriber: `receive` borrows each sample from shared
/// memory; it is released as soon as the message is read.
struct Iceoryx2Receiver {
    // Fields drop in this order: port, service, node.
    subscriber: iceoryx2::port::subscriber::Subscriber<ipc::Service, Msg, ()>,
    _service: IoxService,
    _node: iceoryx2::node::Node<ipc::Service>,
}

impl Iceoryx2Receiver {
    /// Opens service `name` (created by the publisher) and subscribes.
    fn open(name: &str, lossy: bool) -> Result<Self, String> {
        let node = iceoryx2_node()?;
        let service = iceoryx2_service(&node, name, lossy, false)?;
        let subscriber = service
            .subscriber_builder()
            .buffer_size(CAPACITY)
            .create()
            .map_err(|e| format!("iceoryx2: creating subscriber: {e:?}"))?;
        Ok(Self {
            subscriber,
            _service: service,
            _node: node,
        })
    }
}

impl PeerReceiver for Iceoryx2Receiver {
    #[inline]
    fn drain(&mut self, each: impl FnMut(&Msg)) -> Result<usize, String> {
        drain_one_by_one(each, |each| match self.subscriber.receive() {
            Ok(Some(sample)) => {
                each(sample.payload());
                Ok(Polled::Message)
            }
            Ok(None) => Ok(Polled::Empty),
            Err(e) => Err(format!("iceoryx2 receive: {e:?}")),
        })
    }
}

// ------------------------------------------------------- the run's setup ----

/// What every measurement needs.
struct Ctx {
    clock: Clock,
    /// Cores to pin to: the publisher on the first, receiver `i` on
    /// `cores[(1 + i) % len]`; empty when there are fewer than two.
    cores: Vec<CoreId>,
    /// Temporary directory of the ringcast rings.
    dir: PathBuf,
    /// Prefix of ring and service names, unique to this run.
    tag: String,
}

impl Ctx {
    /// The publisher's core (`None`: unpinned).
    fn publisher_core(&self) -> Option<CoreId> {
        self.cores.first().copied()
    }

    /// Receiver `i`'s core: the others in turn, then round again.
    fn receiver_core(&self, i: usize) -> Option<CoreId> {
        (!self.cores.is_empty()).then(|| self.cores[(1 + i) % self.cores.len()])
    }

    /// Timeout of a measurement that moves `messages` messages.
    fn timeout(&self, messages: u64) -> Duration {
        Duration::from_nanos((TIMEOUT_BASE_NS + messages as f64 * TIMEOUT_PER_MSG_NS) as u64)
    }

    /// The tick by which a measurement of `messages` messages must be done.
    fn deadline(&self, messages: u64) -> u64 {
        ticks()
            + self
                .clock
                .ticks_for_ns(self.timeout(messages).as_nanos() as f64)
    }

    /// A ring or service name unique to this run.
    fn name(&self, what: &str, index: usize) -> String {
        format!("{}-{what}-{index}", self.tag)
    }
}

/// The 1, 5 and 15 minute load averages (other work on a shared machine
/// shows here), or "unknown".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The message of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

/// A joined thread's result, a panic turned into an error.
fn joined<T>(r: thread::Result<Result<T, String>>, role: &str) -> Result<T, String> {
    r.map_err(|p| format!("{role} thread panicked: {}", panic_message(&*p)))?
}

// -------------------------------------------------- two pinned threads ----

/// One-way latency between two pinned threads: `total` paced messages.
fn threads_latency<S, R>(ctx: &Ctx, total: u64, mut tx: S, mut rx: R) -> Result<StampLog, String>
where
    S: PeerSender + Send,
    R: PeerReceiver + Send,
{
    let deadline = ctx.deadline(total);
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        let receiver = s.spawn(|| {
            pin(ctx.receiver_core(0), "receiver");
            barrier.wait();
            receive_stamps(&mut rx, total, WARMUP, deadline)
        });
        let sender = s.spawn(|| {
            pin(ctx.publisher_core(), "publisher");
            barrier.wait();
            tx.connect()?;
            paced_send(&mut tx, &ctx.clock, total, deadline)
        });
        let sent = joined(sender.join(), "publisher");
        let log = joined(receiver.join(), "receiver");
        sent?;
        log
    })
}

/// Flat-out throughput, publisher and receivers each a pinned thread.
fn threads_throughput<S, R>(
    ctx: &Ctx,
    total: u64,
    lossless: bool,
    mut tx: S,
    rxs: Vec<R>,
) -> Result<Trial, String>
where
    S: PeerSender + Send,
    R: PeerReceiver + Send,
{
    let deadline = ctx.deadline(total);
    let barrier = Barrier::new(rxs.len() + 1);
    thread::scope(|s| {
        let receivers: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, mut rx)| {
                let barrier = &barrier;
                s.spawn(move || {
                    pin(ctx.receiver_core(i), "receiver");
                    barrier.wait();
                    receive_all(&mut rx, total, deadline)
                })
            })
            .collect();
        let sender = s.spawn(|| {
            pin(ctx.publisher_core(), "publisher");
            barrier.wait();
            tx.connect()?;
            send_flat_out(&mut tx, total, deadline)
        });
        let sent = joined(sender.join(), "publisher");
        // Join every receiver before looking at any result: a scope whose
        // thread panicked and was left unjoined would panic itself.
        let deliveries: Vec<Result<Delivery, String>> = receivers
            .into_iter()
            .map(|h| joined(h.join(), "receiver"))
            .collect();
        let deliveries: Result<Vec<Delivery>, String> = deliveries.into_iter().collect();
        let (start, end) = sent?;
        Trial::new(&ctx.clock, total, lossless, start, end, &deliveries?)
    })
}

// ------------------------------------------------------ two processes ----

/// What a receiver process does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ChildKind {
    Latency,
    Throughput,
}

/// A receiver process's orders, passed on its command line.
struct ChildSpec {
    kind: ChildKind,
    /// `ringcast` or `iceoryx2`.
    peer: String,
    name: String,
    dir: PathBuf,
    lossy: bool,
    total: u64,
    warmup: u64,
    core: Option<CoreId>,
    /// Absolute TSC tick to give up at (the TSC is shared by all processes).
    deadline: u64,
}

impl ChildSpec {
    /// The command line that [`ChildSpec::parse`] reads back.
    fn to_args(&self) -> Vec<String> {
        vec![
            match self.kind {
                ChildKind::Latency => "latency".into(),
                ChildKind::Throughput => "throughput".into(),
            },
            self.peer.clone(),
            self.name.clone(),
            self.dir.display().to_string(),
            if self.lossy { "lossy" } else { "lossless" }.into(),
            self.total.to_string(),
            self.warmup.to_string(),
            self.core.map_or("none".into(), |c| c.id.to_string()),
            self.deadline.to_string(),
        ]
    }

    /// Reads back [`ChildSpec::to_args`].
    fn parse(args: &[String]) -> Result<Self, String> {
        let [kind, peer, name, dir, lossy, total, warmup, core, deadline] = args else {
            return Err(format!("child: expected 9 arguments, got {args:?}"));
        };
        let number = |s: &String| {
            s.parse::<u64>()
                .map_err(|_| format!("child: not a number: {s:?}"))
        };
        Ok(Self {
            kind: match kind.as_str() {
                "latency" => ChildKind::Latency,
                "throughput" => ChildKind::Throughput,
                other => return Err(format!("child: unknown kind {other:?}")),
            },
            peer: peer.clone(),
            name: name.clone(),
            dir: PathBuf::from(dir),
            lossy: lossy == "lossy",
            total: number(total)?,
            warmup: number(warmup)?,
            core: match core.as_str() {
                "none" => None,
                id => Some(CoreId {
                    id: number(&id.to_owned())? as usize,
                }),
            },
            deadline: number(deadline)?,
        })
    }
}

/// Receiver process: attach, say `ready`, receive, report on stdout
/// (latency: a header line, then the stamp differences as little-endian
/// i64; throughput: one line). Errors go to stderr with exit status 1.
fn child_main(args: &[String]) -> i32 {
    let run = || -> Result<(), String> {
        let spec = ChildSpec::parse(args)?;
        pin(spec.core, "receiver process");
        match spec.peer.as_str() {
            "ringcast" => serve(&spec, RingcastReceiver::attach(&spec.dir, &spec.name)?),
            "iceoryx2" => serve(&spec, Iceoryx2Receiver::open(&spec.name, spec.lossy)?),
            other => Err(format!("child: unknown peer {other:?}")),
        }
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// The receiving half of [`child_main`].
fn serve<R: PeerReceiver>(spec: &ChildSpec, mut rx: R) -> Result<(), String> {
    let io = |e: std::io::Error| format!("child: writing to the parent: {e}");
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").map_err(io)?;
    out.flush().map_err(io)?;
    match spec.kind {
        ChildKind::Latency => {
            let log = receive_stamps(&mut rx, spec.total, spec.warmup, spec.deadline)?;
            let mut report = format!("latency {} {}\n", log.lost, log.deltas.len()).into_bytes();
            for d in &log.deltas {
                report.extend_from_slice(&d.to_le_bytes());
            }
            out.write_all(&report).map_err(io)?;
        }
        ChildKind::Throughput => {
            let d = receive_all(&mut rx, spec.total, spec.deadline)?;
            writeln!(out, "throughput {} {}", d.received, d.end).map_err(io)?;
        }
    }
    out.flush().map_err(io)
}

/// A receiver process: this binary re-executed with [`CHILD_FLAG`]. Killed
/// (it is ours) if dropped while still running.
struct ChildProc {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl ChildProc {
    /// Starts a receiver process for `spec`, its stdout and stderr piped.
    fn spawn(spec: &ChildSpec) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
        let mut child = Command::new(exe)
            .arg(CHILD_FLAG)
            .args(spec.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting a receiver process: {e}"))?;
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut err = child.stderr.take().expect("stderr is piped");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Ok(Self {
            child,
            stdout,
            stderr: Some(stderr),
        })
    }

    /// The next line of its report; at its end, why it ended.
    fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => Ok(line.trim_end().to_owned()),
            _ => Err(self
                .finish()
                .err()
                .unwrap_or_else(|| "receiver process ended without its report".to_owned())),
        }
    }

    /// Waits for it to exit: `Err` with its stderr unless it succeeded.
    fn finish(&mut self) -> Result<(), String> {
        let status = self
            .child
            .wait()
            .map_err(|e| format!("waiting for a receiver process: {e}"))?;
        let text = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if status.success() {
            if !text.trim().is_empty() {
                eprintln!("receiver process: {}", text.trim());
            }
            Ok(())
        } else {
            Err(format!(
                "receiver process failed ({status}): {}",
                text.trim()
            ))
        }
    }
}

impl Drop for ChildProc {
    /// Kills the process if it still runs (an error path left it behind).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a publisher in this process (on its core, in a thread of its own,
/// created there by `make_sender`) and one receiver process per spec: the
/// processes start once the publisher exists, the publisher starts `drive`
/// once every process said `ready`, and `collect` then reads the processes'
/// reports. The publisher stays open until `collect` is done, so that no
/// receiver sees its publisher go away while it still reads.
fn across_processes<S, T, R>(
    ctx: &Ctx,
    make_sender: impl FnOnce() -> Result<S, String> + Send,
    specs: &[ChildSpec],
    drive: impl FnOnce(&mut S) -> Result<T, String> + Send,
    collect: impl FnOnce(T, &mut [ChildProc]) -> Result<R, String>,
) -> Result<R, String>
where
    S: PeerSender,
    T: Send,
{
    thread::scope(|s| {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (go_tx, go_rx) = mpsc::channel::<bool>();
        let (done_tx, done_rx) = mpsc::channel::<Result<T, String>>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let publisher = s.spawn(move || {
            pin(ctx.publisher_core(), "publisher");
            let mut tx = match make_sender() {
                Ok(tx) => tx,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return Ok(());
                }
            };
            let _ = ready_tx.send(Ok(()));
            if go_rx.recv().unwrap_or(false) {
                let _ = done_tx.send(tx.connect().and_then(|()| drive(&mut tx)));
                let _ = release_rx.recv();
            }
            Ok(())
        });
        let started = (|| -> Result<Vec<ChildProc>, String> {
            ready_rx
                .recv()
                .map_err(|_| "publisher thread ended early".to_owned())??;
            let mut children = specs
                .iter()
                .map(ChildProc::spawn)
                .collect::<Result<Vec<_>, _>>()?;
            for child in &mut children {
                let line = child.read_line()?;
                if line != "ready" {
                    return Err(format!("receiver process said {line:?}, not ready"));
                }
            }
            Ok(children)
        })();
        let _ = go_tx.send(started.is_ok());
        // Receiver processes still running on an error are killed on drop.
        let outcome = started.and_then(|mut children| match done_rx.recv() {
            Ok(driven) => collect(driven?, &mut children),
            Err(_) => Err("publisher thread ended early".to_owned()),
        });
        let _ = release_tx.send(());
        joined(publisher.join(), "publisher").and(outcome)
    })
}

/// Spec of the receiver processes of one measurement.
struct ProcessRun<'a> {
    kind: ChildKind,
    peer: Peer,
    name: &'a str,
    total: u64,
    receivers: usize,
    deadline: u64,
}

impl ProcessRun<'_> {
    /// One spec per receiver process, each pinned like a receiver thread.
    fn specs(&self, ctx: &Ctx) -> Vec<ChildSpec> {
        (0..self.receivers)
            .map(|i| ChildSpec {
                kind: self.kind,
                peer: if self.peer.is_ringcast() {
                    "ringcast"
                } else {
                    "iceoryx2"
                }
                .into(),
                name: self.name.to_owned(),
                dir: ctx.dir.clone(),
                lossy: !self.peer.lossless(),
                total: self.total,
                warmup: WARMUP,
                core: ctx.receiver_core(i),
                deadline: self.deadline,
            })
            .collect()
    }
}

/// One-way latency from this process to a receiver process.
fn processes_latency<S: PeerSender>(
    ctx: &Ctx,
    run: &ProcessRun<'_>,
    make_sender: impl FnOnce() -> Result<S, String> + Send,
) -> Result<StampLog, String> {
    across_processes(
        ctx,
        make_sender,
        &run.specs(ctx),
        |tx| paced_send(tx, &ctx.clock, run.total, run.deadline),
        |(), children| {
            let child = &mut children[0];
            let header = child.read_line()?;
            let bad = || format!("bad report {header:?}");
            let fields: Vec<&str> = header.split(' ').collect();
            let (lost, count) = match fields.as_slice() {
                ["latency", lost, count] => (
                    lost.parse::<u64>().map_err(|_| bad())?,
                    count.parse::<usize>().map_err(|_| bad())?,
                ),
                _ => return Err(bad()),
            };
            let mut bytes = vec![0u8; count * 8];
            child
                .stdout
                .read_exact(&mut bytes)
                .map_err(|e| format!("reading the receiver's samples: {e}"))?;
            child.finish()?;
            let deltas = bytes
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            Ok(StampLog { deltas, lost })
        },
    )
}

/// Flat-out throughput from this process to receiver processes.
fn processes_throughput<S: PeerSender>(
    ctx: &Ctx,
    run: &ProcessRun<'_>,
    make_sender: impl FnOnce() -> Result<S, String> + Send,
) -> Result<Trial, String> {
    across_processes(
        ctx,
        make_sender,
        &run.specs(ctx),
        |tx| send_flat_out(tx, run.total, run.deadline),
        |(start, end), children| {
            let mut deliveries = Vec::with_capacity(children.len());
            for child in children.iter_mut() {
                let line = child.read_line()?;
                let bad = || format!("bad report {line:?}");
                let fields: Vec<&str> = line.split(' ').collect();
                match fields.as_slice() {
                    ["throughput", received, end] => deliveries.push(Delivery {
                        received: received.parse().map_err(|_| bad())?,
                        end: end.parse().map_err(|_| bad())?,
                    }),
                    _ => return Err(bad()),
                }
                child.finish()?;
            }
            Trial::new(
                &ctx.clock,
                run.total,
                run.peer.lossless(),
                start,
                end,
                &deliveries,
            )
        },
    )
}

// ------------------------------------------------------------ the paths ----

/// A path under test: which library, in which configuration.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    RingcastLossy,
    RingcastBounded,
    Disruptor,
    Crossbeam,
    PhotonLossy,
    PhotonBounded,
    Iceoryx2Lossy,
    Iceoryx2Lossless,
}

impl Peer {
    /// Every peer, in report order.
    const ALL: [Peer; 8] = [
        Peer::RingcastLossy,
        Peer::RingcastBounded,
        Peer::Disruptor,
        Peer::Crossbeam,
        Peer::PhotonLossy,
        Peer::PhotonBounded,
        Peer::Iceoryx2Lossy,
        Peer::Iceoryx2Lossless,
    ];

    /// Name of the path in the tables.
    fn label(self) -> &'static str {
        match self {
            Peer::RingcastLossy => "ringcast lossy",
            Peer::RingcastBounded => "ringcast bounded",
            Peer::Disruptor => "disruptor",
            Peer::Crossbeam => "crossbeam-channel",
            Peer::PhotonLossy => "photon-ring lossy",
            Peer::PhotonBounded => "photon-ring bounded",
            Peer::Iceoryx2Lossy => "iceoryx2 safe-overflow",
            Peer::Iceoryx2Lossless => "iceoryx2 lossless",
        }
    }

    /// Every receiver gets every message (the publisher waits for room).
    fn lossless(self) -> bool {
        !matches!(
            self,
            Peer::RingcastLossy | Peer::PhotonLossy | Peer::Iceoryx2Lossy
        )
    }

    /// The path under test rather than a peer.
    fn is_ringcast(self) -> bool {
        matches!(self, Peer::RingcastLossy | Peer::RingcastBounded)
    }

    /// How the path is set up, for the report.
    fn config(self) -> &'static str {
        match self {
            Peer::RingcastLossy => {
                "ringcast-core Publisher::create: 4096 fixed-size 64 B slots, single producer, \
                 lossy (never waits); Subscriber::attach(Start::Oldest) + try_recv_rows (copies out every available message, up to 256, publishing its position once per batch); \
                 ring file in a /dev/shm temp dir"
            }
            Peer::RingcastBounded => {
                "as ringcast lossy, bounded: Some(4096) (lossless: the publisher waits for the \
                 slowest subscriber) inside publish(), ringcast's own wait (resumes once 1/16 of \
                 the ring is free) with WaitStrategy::Adaptive { spin: 256, yields: MAX } = the \
                 bench's spin-then-yield policy"
            }
            Peer::Disruptor => {
                "disruptor::build_single_producer(4096, [u8; 64], BusySpin); one EventPoller per \
                 receiver (1 -> 1: single-consumer build; 1 -> 4: with_multi_consumer, every \
                 poller sees every event), poll() takes all available events; lossless, \
                 try_publish + the bench's wait"
            }
            Peer::Crossbeam => {
                "crossbeam_channel::bounded::<[u8; 64]>(4096), try_send / try_recv; lossless; \
                 NOT a broadcast: 1 -> 4 uses 4 channels and the publisher sends every message to \
                 each (published/s counts a message once)"
            }
            Peer::PhotonLossy => {
                "photon_ring::channel::<[u8; 64]>(4096), subscribe() before the first publish, \
                 publish / try_recv; lossy (a lapped subscriber gets Lagged)"
            }
            Peer::PhotonBounded => {
                "photon_ring::channel_bounded::<[u8; 64]>(4096, 0), subscribe(); lossless, \
                 try_publish + the bench's wait"
            }
            Peer::Iceoryx2Lossy => {
                "iceoryx2 ipc::Service publish_subscribe::<[u8; 64]>, subscriber buffer 4096, \
                 history 0, enable_safe_overflow(true) (a full queue drops its oldest sample); \
                 loan_uninit + write_payload + send (zero-copy), receive() borrows the sample"
            }
            Peer::Iceoryx2Lossless => {
                "as iceoryx2 safe-overflow, but enable_safe_overflow(false) + \
                 RetryUntilDelivered (iceoryx2's own adaptive wait when a queue is full)"
            }
        }
    }
}

/// Where the two ends of a path live.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Threads,
    Processes,
}

impl Transport {
    /// Name of the transport in the tables.
    fn label(self) -> &'static str {
        match self {
            Transport::Threads => "threads",
            Transport::Processes => "processes",
        }
    }
}

/// The one-way latency paths, in report order.
const LATENCY_PATHS: [(Peer, Transport); 9] = [
    (Peer::RingcastLossy, Transport::Threads),
    (Peer::RingcastBounded, Transport::Threads),
    (Peer::Disruptor, Transport::Threads),
    (Peer::Crossbeam, Transport::Threads),
    (Peer::PhotonLossy, Transport::Threads),
    (Peer::RingcastLossy, Transport::Processes),
    (Peer::RingcastBounded, Transport::Processes),
    (Peer::Iceoryx2Lossless, Transport::Processes),
    (Peer::PhotonLossy, Transport::Processes),
];

/// The throughput paths, in report order (each run 1 -> 1 and 1 -> 4).
const THROUGHPUT_PATHS: [(Peer, Transport); 11] = [
    (Peer::RingcastLossy, Transport::Threads),
    (Peer::RingcastBounded, Transport::Threads),
    (Peer::Disruptor, Transport::Threads),
    (Peer::Crossbeam, Transport::Threads),
    (Peer::PhotonLossy, Transport::Threads),
    (Peer::PhotonBounded, Transport::Threads),
    (Peer::RingcastLossy, Transport::Processes),
    (Peer::RingcastBounded, Transport::Processes),
    (Peer::Iceoryx2Lossy, Transport::Processes),
    (Peer::Iceoryx2Lossless, Transport::Processes),
    (Peer::PhotonLossy, Transport::Processes),
];

/// Why a path has no row of figures, before trying it.
fn unsupported(peer: Peer, transport: Transport) -> Option<&'static str> {
    match (peer, transport) {
        (Peer::PhotonLossy | Peer::PhotonBounded, Transport::Processes) => Some(PHOTON_NO_IPC),
        (Peer::Disruptor | Peer::Crossbeam, Transport::Processes) => {
            Some("an in-process library: no inter-process mode")
        }
        (Peer::Iceoryx2Lossy | Peer::Iceoryx2Lossless, Transport::Threads) => {
            Some("measured across processes only")
        }
        _ => None,
    }
}

/// One latency round of one path: `n` recorded messages after [`WARMUP`].
fn latency_round(
    ctx: &Ctx,
    (peer, transport): (Peer, Transport),
    round: usize,
    n: u64,
) -> Result<StampLog, String> {
    if let Some(reason) = unsupported(peer, transport) {
        return Err(reason.to_owned());
    }
    let total = WARMUP + n;
    let name = ctx.name(&format!("lat-{peer:?}-{}", transport.label()), round);
    let bounded = peer == Peer::RingcastBounded;
    match transport {
        Transport::Threads => match peer {
            Peer::RingcastLossy | Peer::RingcastBounded => {
                let tx = RingcastSender::create(&ctx.dir, &name, bounded, ctx.timeout(total))?;
                let rx = RingcastReceiver::attach(&ctx.dir, &name)?;
                threads_latency(ctx, total, tx, rx)
            }
            Peer::Disruptor => {
                let (tx, rx) = disruptor_spsc();
                threads_latency(ctx, total, tx, rx)
            }
            Peer::Crossbeam => {
                let (tx, mut rxs) = crossbeam_fan_out(1);
                threads_latency(ctx, total, tx, rxs.remove(0))
            }
            _ => {
                let (tx, mut rxs) = photon_fan_out(1, peer == Peer::PhotonBounded);
                threads_latency(ctx, total, tx, rxs.remove(0))
            }
        },
        Transport::Processes => {
            let run = ProcessRun {
                kind: ChildKind::Latency,
                peer,
                name: &name,
                total,
                receivers: 1,
                deadline: ctx.deadline(total),
            };
            if peer.is_ringcast() {
                processes_latency(ctx, &run, || {
                    RingcastSender::create(&ctx.dir, &name, bounded, ctx.timeout(total))
                })
            } else {
                let timeout = ctx.timeout(total);
                processes_latency(ctx, &run, || {
                    Iceoryx2Sender::create(&name, !peer.lossless(), 1, timeout)
                })
            }
        }
    }
}

/// One flat-out trial of one path with `fan_out` receivers.
fn throughput_trial(
    ctx: &Ctx,
    (peer, transport): (Peer, Transport),
    fan_out: usize,
    trial: usize,
    total: u64,
) -> Result<Trial, String> {
    if let Some(reason) = unsupported(peer, transport) {
        return Err(reason.to_owned());
    }
    let lossless = peer.lossless();
    let name = ctx.name(
        &format!("tp{fan_out}-{peer:?}-{}", transport.label()),
        trial,
    );
    let bounded = peer == Peer::RingcastBounded;
    match transport {
        Transport::Threads => match peer {
            Peer::RingcastLossy | Peer::RingcastBounded => {
                let tx = RingcastSender::create(&ctx.dir, &name, bounded, ctx.timeout(total))?;
                let rxs = (0..fan_out)
                    .map(|_| RingcastReceiver::attach(&ctx.dir, &name))
                    .collect::<Result<Vec<_>, _>>()?;
                threads_throughput(ctx, total, lossless, tx, rxs)
            }
            Peer::Disruptor if fan_out == 1 => {
                let (tx, rx) = disruptor_spsc();
                threads_throughput(ctx, total, lossless, tx, vec![rx])
            }
            Peer::Disruptor => {
                let (tx, rxs) = disruptor_broadcast(fan_out);
                threads_throughput(ctx, total, lossless, tx, rxs)
            }
            Peer::Crossbeam => {
                let (tx, rxs) = crossbeam_fan_out(fan_out);
                threads_throughput(ctx, total, lossless, tx, rxs)
            }
            _ => {
                let (tx, rxs) = photon_fan_out(fan_out, peer == Peer::PhotonBounded);
                threads_throughput(ctx, total, lossless, tx, rxs)
            }
        },
        Transport::Processes => {
            let run = ProcessRun {
                kind: ChildKind::Throughput,
                peer,
                name: &name,
                total,
                receivers: fan_out,
                deadline: ctx.deadline(total),
            };
            if peer.is_ringcast() {
                processes_throughput(ctx, &run, || {
                    RingcastSender::create(&ctx.dir, &name, bounded, ctx.timeout(total))
                })
            } else {
                let timeout = ctx.timeout(total);
                processes_throughput(ctx, &run, || {
                    Iceoryx2Sender::create(&name, !lossless, fan_out, timeout)
                })
            }
        }
    }
}

// ----------------------------------------------------------- statistics ----

/// Latency distribution of one path over all rounds, ns.
struct Latency {
    samples: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    min: f64,
    mean: f64,
    /// Messages that never reached the receiver (lossy paths lapped).
    lost: u64,
    /// Samples where the receive stamp preceded the send stamp (TSC skew).
    negative: usize,
}

impl Latency {
    /// Nearest-rank statistics of samples `v` (ns).
    fn new(mut v: Vec<f64>, lost: u64) -> Result<Self, String> {
        if v.is_empty() {
            return Err("no samples".to_owned());
        }
        v.sort_by(f64::total_cmp);
        Ok(Self {
            samples: v.len(),
            p50: percentile(&v, 50.0),
            p99: percentile(&v, 99.0),
            p999: percentile(&v, 99.9),
            max: v[v.len() - 1],
            min: v[0],
            mean: v.iter().sum::<f64>() / v.len() as f64,
            lost,
            negative: v.iter().take_while(|&&x| x < 0.0).count(),
        })
    }
}

/// Samples of one latency path, accumulated over the rounds; the first
/// failure stops the path.
#[derive(Default)]
struct LatencyAcc {
    ns: Vec<f64>,
    lost: u64,
    error: Option<String>,
}

/// One latency row of the report.
struct LatencyRow {
    label: &'static str,
    transport: &'static str,
    /// `None` for the ping-pong limit.
    peer: Option<Peer>,
    result: Result<Latency, String>,
}

/// One flat-out trial.
#[derive(Clone)]
struct Trial {
    /// Messages per second the publisher got out.
    published_per_s: f64,
    /// Delivered per second, mean over the receivers.
    delivered_mean_per_s: f64,
    /// Delivered per second by the slowest receiver.
    delivered_min_per_s: f64,
    /// Messages received, summed over the receivers.
    received: u64,
    /// Messages lost, summed over the receivers.
    lost: u64,
}

impl Trial {
    /// Rates from the publisher's first tick: receiver `i` delivered
    /// `received_i` messages by its own last tick.
    fn new(
        clock: &Clock,
        total: u64,
        lossless: bool,
        start: u64,
        end: u64,
        deliveries: &[Delivery],
    ) -> Result<Self, String> {
        let rates: Vec<f64> = deliveries
            .iter()
            .map(|d| d.received as f64 / clock.ns(d.end.saturating_sub(start).max(1)) * 1e9)
            .collect();
        let received: u64 = deliveries.iter().map(|d| d.received).sum();
        let lost = total * deliveries.len() as u64 - received;
        if lossless && lost > 0 {
            return Err(format!("a lossless path lost {lost} messages"));
        }
        Ok(Self {
            published_per_s: total as f64 / clock.ns(end.saturating_sub(start).max(1)) * 1e9,
            delivered_mean_per_s: rates.iter().sum::<f64>() / rates.len() as f64,
            delivered_min_per_s: rates.iter().copied().fold(f64::INFINITY, f64::min),
            received,
            lost,
        })
    }
}

/// One throughput row: the median of its trials (by mean delivered rate).
struct ThroughputRow {
    peer: Peer,
    transport: Transport,
    fan_out: usize,
    messages: u64,
    result: Result<(Trial, Vec<f64>), String>,
}

/// The median trial, and every trial's mean delivered rate (sorted).
fn median_trial(mut trials: Vec<Trial>) -> Result<(Trial, Vec<f64>), String> {
    if trials.is_empty() {
        return Err("no trials".to_owned());
    }
    trials.sort_by(|a, b| a.delivered_mean_per_s.total_cmp(&b.delivered_mean_per_s));
    let rates = trials.iter().map(|t| t.delivered_mean_per_s).collect();
    Ok((trials[trials.len() / 2].clone(), rates))
}

// ----------------------------------------------------------------- args ----

/// Command line of a benchmark run.
struct Args {
    messages: u64,
    rounds: usize,
    trials: usize,
    json: bool,
    quick: bool,
}

/// One-line usage, for --help and argument errors.
const USAGE: &str = "usage: rust_peers [--messages N] [--quick] [--json]";

/// Reads the command line (exits with status 2 on a bad one).
fn parse_args(args: &[String]) -> Args {
    let mut parsed = Args {
        messages: DEFAULT_MESSAGES,
        rounds: ROUNDS,
        trials: TRIALS,
        json: false,
        quick: false,
    };
    let mut messages = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--messages" => {
                let v = it.next().cloned().unwrap_or_default();
                match v.replace('_', "").parse::<u64>() {
                    Ok(n) if n > 0 => messages = Some(n),
                    _ => {
                        eprintln!("--messages needs a positive integer, got {v:?}");
                        std::process::exit(2);
                    }
                }
            }
            "--json" => parsed.json = true,
            "--quick" => parsed.quick = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                println!(
                    "  --messages N  latency samples per path (default {DEFAULT_MESSAGES}, in {ROUNDS} rounds);"
                );
                println!(
                    "                throughput trials move {THROUGHPUT_FACTOR} x N messages each ({TRIALS} trials)"
                );
                println!(
                    "  --quick       smoke run: {QUICK_MESSAGES} messages, 2 rounds, 1 trial (unless --messages)"
                );
                println!("  --json        print one JSON object instead of the tables");
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other:?}; {USAGE}");
                std::process::exit(2);
            }
        }
    }
    if parsed.quick {
        parsed.messages = QUICK_MESSAGES;
        parsed.rounds = 2;
        parsed.trials = 1;
    }
    if let Some(n) = messages {
        parsed.messages = n;
    }
    parsed
}

// ----------------------------------------------------------------- main ----

/// Runs every measurement (or, with [`CHILD_FLAG`], one receiver process)
/// and prints the report.
fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some(CHILD_FLAG) {
        std::process::exit(child_main(&argv[1..]));
    }
    let args = parse_args(&argv);

    let ids = core_affinity::get_core_ids().unwrap_or_default();
    let cores = if ids.len() >= 2 {
        ids
    } else {
        eprintln!(
            "warning: fewer than two cores available to pin to ({}); running unpinned",
            ids.len()
        );
        pinning::mark_unpinned();
        Vec::new()
    };
    let load_before = load_average();
    let clock = Clock::calibrate();
    let overhead = clock_overhead_ns(&clock);
    let dir = ring_dir();
    let ctx = Ctx {
        clock,
        cores,
        dir: dir.path().to_owned(),
        tag: format!("peers{}", std::process::id()),
    };
    let n = args.messages;
    let throughput_total = n * THROUGHPUT_FACTOR;

    // Latency: rounds interleaved across the paths.
    let mut limit_ns = Vec::new();
    let mut accs: Vec<LatencyAcc> = LATENCY_PATHS
        .iter()
        .map(|_| LatencyAcc::default())
        .collect();
    for round in 0..args.rounds {
        let per_round = n / args.rounds as u64 + u64::from((round as u64) < n % args.rounds as u64);
        eprintln!("latency round {}/{}", round + 1, args.rounds);
        let round_trips = ping_pong::round_trip_ticks(
            WARMUP + per_round,
            WARMUP,
            || pin(ctx.publisher_core(), "ping-pong initiator"),
            || pin(ctx.receiver_core(0), "ping-pong responder"),
        );
        limit_ns.extend(round_trips.iter().map(|&t| ctx.clock.ns(t) / 2.0));
        for (path, acc) in LATENCY_PATHS.iter().zip(accs.iter_mut()) {
            if acc.error.is_some() {
                continue;
            }
            match latency_round(&ctx, *path, round, per_round) {
                Ok(log) => {
                    acc.ns
                        .extend(log.deltas.iter().map(|&d| d as f64 * ctx.clock.ns_per_tick));
                    acc.lost += log.lost;
                }
                Err(e) => acc.error = Some(e),
            }
        }
    }
    let mut latency = vec![LatencyRow {
        label: "cache-line ping-pong rtt/2 (limit)",
        transport: "threads",
        peer: None,
        result: Latency::new(limit_ns, 0),
    }];
    for ((peer, transport), acc) in LATENCY_PATHS.iter().zip(accs) {
        latency.push(LatencyRow {
            label: peer.label(),
            transport: transport.label(),
            peer: Some(*peer),
            result: match acc.error {
                Some(e) => Err(e),
                None => Latency::new(acc.ns, acc.lost),
            },
        });
    }

    // Throughput: trials interleaved across the paths and fan-outs.
    let fan_outs = [1, FAN_OUT];
    let cases: Vec<((Peer, Transport), usize)> = fan_outs
        .iter()
        .flat_map(|&f| THROUGHPUT_PATHS.iter().map(move |&p| (p, f)))
        .collect();
    let mut trials: Vec<Result<Vec<Trial>, String>> =
        cases.iter().map(|_| Ok(Vec::new())).collect();
    for trial in 0..args.trials {
        eprintln!("throughput trial {}/{}", trial + 1, args.trials);
        for (&(path, fan_out), slot) in cases.iter().zip(trials.iter_mut()) {
            if let Ok(done) = slot {
                match throughput_trial(&ctx, path, fan_out, trial, throughput_total) {
                    Ok(t) => done.push(t),
                    Err(e) => *slot = Err(e),
                }
            }
        }
    }
    let throughput: Vec<ThroughputRow> = cases
        .iter()
        .zip(trials)
        .map(|(&((peer, transport), fan_out), t)| ThroughputRow {
            peer,
            transport,
            fan_out,
            messages: throughput_total,
            result: t.and_then(median_trial),
        })
        .collect();

    let report = Report {
        args: &args,
        ctx: &ctx,
        overhead,
        load: [load_before, load_average()],
        latency,
        throughput,
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
}

// --------------------------------------------------------------- report ----

/// Everything measured, and how.
struct Report<'a> {
    args: &'a Args,
    ctx: &'a Ctx,
    overhead: f64,
    /// Load averages at the start and at the end of the run.
    load: [String; 2],
    latency: Vec<LatencyRow>,
    throughput: Vec<ThroughputRow>,
}

/// A latency ratio of two rows, when both were measured.
struct LatencyRatio {
    ringcast: &'static str,
    peer: &'static str,
    transport: &'static str,
    /// ringcast p50 / peer p50.
    p50: f64,
    /// ringcast p99 / peer p99.
    p99: f64,
    like_for_like: bool,
}

/// A throughput ratio: ringcast / peer, mean delivered per receiver.
struct ThroughputRatio {
    ringcast: Peer,
    peer: Peer,
    transport: Transport,
    fan_out: usize,
    delivered: f64,
    published: f64,
    like_for_like: bool,
}

impl Report<'_> {
    /// p50 of the cache-line ping-pong, the denominator of p50/limit.
    fn limit_p50(&self) -> Option<f64> {
        self.latency[0].result.as_ref().ok().map(|l| l.p50)
    }

    /// Every thread of this process got the core it asked for.
    fn pinned(&self) -> bool {
        pinning::all_pinned()
    }

    /// Where the threads ran, in words.
    fn cores_text(&self) -> String {
        let c = &self.ctx;
        match (c.publisher_core(), c.receiver_core(0)) {
            (Some(p), Some(_)) => {
                let fan: Vec<String> = (0..FAN_OUT)
                    .map(|i| c.receiver_core(i).map_or("-".into(), |r| r.id.to_string()))
                    .collect();
                format!(
                    "publisher on core {}, receiver on core {}; 1 -> {FAN_OUT} receivers on cores {}",
                    p.id,
                    c.receiver_core(0).map_or(0, |r| r.id),
                    fan.join(",")
                )
            }
            _ => "unpinned".to_owned(),
        }
    }

    /// ringcast's p50 and p99 over each measured peer's, same transport.
    fn latency_ratios(&self) -> Vec<LatencyRatio> {
        let mut out = Vec::new();
        for peer_row in &self.latency {
            let (Some(peer), Ok(pl)) = (peer_row.peer, &peer_row.result) else {
                continue;
            };
            if peer.is_ringcast() {
                continue;
            }
            for ring_row in &self.latency {
                let (Some(ring), Ok(rl)) = (ring_row.peer, &ring_row.result) else {
                    continue;
                };
                if !ring.is_ringcast() || ring_row.transport != peer_row.transport {
                    continue;
                }
                out.push(LatencyRatio {
                    ringcast: ring.label(),
                    peer: peer.label(),
                    transport: peer_row.transport,
                    p50: rl.p50 / pl.p50,
                    p99: rl.p99 / pl.p99,
                    like_for_like: ring.lossless() == peer.lossless(),
                });
            }
        }
        out
    }

    /// ringcast lossy and bounded over each measured peer, same transport
    /// and fan-out.
    fn throughput_ratios(&self) -> Vec<ThroughputRatio> {
        let mut out = Vec::new();
        for peer_row in &self.throughput {
            let Ok((pt, _)) = &peer_row.result else {
                continue;
            };
            if peer_row.peer.is_ringcast() {
                continue;
            }
            for ring_row in &self.throughput {
                let Ok((rt, _)) = &ring_row.result else {
                    continue;
                };
                if !ring_row.peer.is_ringcast()
                    || ring_row.transport != peer_row.transport
                    || ring_row.fan_out != peer_row.fan_out
                {
                    continue;
                }
                out.push(ThroughputRatio {
                    ringcast: ring_row.peer,
                    peer: peer_row.peer,
                    transport: peer_row.transport,
                    fan_out: peer_row.fan_out,
                    delivered: rt.delivered_mean_per_s / pt.delivered_mean_per_s,
                    published: rt.published_per_s / pt.published_per_s,
                    like_for_like: ring_row.peer.lossless() == peer_row.peer.lossless(),
                });
            }
        }
        out
    }

    /// Every peer that has a row, in declaration order.
    fn configured_peers(&self) -> Vec<Peer> {
        Peer::ALL
            .into_iter()
            .filter(|p| {
                LATENCY_PATHS
                    .iter()
                    .chain(THROUGHPUT_PATHS.iter())
                    .any(|(q, _)| q == p)
            })
            .collect()
    }

    /// The report as tables.
    fn text(&self) -> String {
        let mut o = String::new();
        let c = self.ctx;
        let a = self.args;
        let _ = writeln!(
            o,
            "rust_peers: ringcast vs Rust peers, {MSG_SIZE}-byte messages, {CAPACITY} slots everywhere{}",
            if a.quick { " (--quick smoke run)" } else { "" }
        );
        let _ =
            writeln!(
            o,
            "machine: {} cores usable; {} ({}); clock: {} ({:.4} ns/tick, one reading ~{:.0} ns)",
            core_affinity::get_core_ids().map_or(0, |v| v.len()),
            self.cores_text(),
            if self.pinned() { "pinned" } else { "NOT pinned" },
            c.clock.source,
            c.clock.ns_per_tick,
            self.overhead
        );
        let _ = writeln!(
            o,
            "load average (1/5/15 min) at start: {}, at end: {} (at start: other work competing for the cores; the end figure includes this run)",
            self.load[0], self.load[1]
        );
        if c.cores.len() < FAN_OUT + 1 {
            let _ = writeln!(
                o,
                "note: 1 -> {FAN_OUT} runs {} threads on {} cores: receivers share cores with each other and \
                 with the publisher, so 1 -> {FAN_OUT} rates measure time-slicing as much as the paths",
                FAN_OUT + 1,
                c.cores.len().max(1)
            );
        }
        let _ = writeln!(o);

        // Latency.
        let limit = self.limit_p50();
        let _ = writeln!(
            o,
            "One-way latency, ns ({} samples per path in {} interleaved rounds, each after {WARMUP} warm-up \
             messages; one message per {PACE_NS:.0} ns; receiver spinning)",
            a.messages, a.rounds
        );
        let _ = writeln!(
            o,
            "{:<35} {:<9} {:>7} {:>7} {:>7} {:>9} {:>6} {:>7} {:>6} {:>8} {:>9}",
            "path",
            "transport",
            "p50",
            "p99",
            "p99.9",
            "max",
            "min",
            "mean",
            "lost",
            "samples",
            "p50/limit"
        );
        for row in &self.latency {
            match &row.result {
                Ok(l) => {
                    let _ = writeln!(
                        o,
                        "{:<35} {:<9} {:>7.0} {:>7.0} {:>7.0} {:>9.0} {:>6.0} {:>7.1} {:>6} {:>8} {:>9}",
                        row.label,
                        row.transport,
                        l.p50,
                        l.p99,
                        l.p999,
                        l.max,
                        l.min,
                        l.mean,
                        l.lost,
                        l.samples,
                        limit.map_or("-".into(), |lim| ratio_text(l.p50 / lim))
                    );
                    if l.negative > 0 {
                        let _ = writeln!(
                            o,
                            "  ({} samples negative: the TSCs of the two cores disagree)",
                            l.negative
                        );
                    }
                }
                Err(e) => {
                    let _ = writeln!(
                        o,
                        "{:<35} {:<9} not measured: {e}",
                        row.label, row.transport
                    );
                }
            }
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "Latency ratios, ringcast / peer (same transport, same run; < 1: ringcast lower; * like-for-like delivery)"
        );
        let _ = writeln!(
            o,
            "{:<22} {:<24} {:<9} {:>10} {:>10}",
            "ringcast", "peer", "transport", "p50 ratio", "p99 ratio"
        );
        for r in self.latency_ratios() {
            let _ = writeln!(
                o,
                "{:<22} {:<24} {:<9} {:>10} {:>10}",
                format!("{}{}", r.ringcast, if r.like_for_like { " *" } else { "" }),
                r.peer,
                r.transport,
                ratio_text(r.p50),
                ratio_text(r.p99)
            );
        }
        let _ = writeln!(o);

        // Throughput.
        for fan_out in [1, FAN_OUT] {
            let _ = writeln!(
                o,
                "Throughput 1 -> {fan_out}, flat out ({} trial(s) of {} messages; median trial by mean delivered/s{})",
                a.trials,
                a.messages * THROUGHPUT_FACTOR,
                if fan_out > 1 && c.cores.len() < fan_out + 1 {
                    format!("; {} threads share {} cores", fan_out + 1, c.cores.len().max(1))
                } else {
                    String::new()
                }
            );
            let _ = writeln!(
                o,
                "{:<24} {:<9} {:<8} {:>11} {:>13} {:>11} {:>10} {:>6}  trials (mean delivered/s)",
                "path",
                "transport",
                "delivery",
                "published/s",
                "delivered/s",
                "slowest/s",
                "lost",
                "lost%"
            );
            for row in self.throughput.iter().filter(|r| r.fan_out == fan_out) {
                let delivery = if row.peer.lossless() {
                    "lossless"
                } else {
                    "lossy"
                };
                match &row.result {
                    Ok((t, rates)) => {
                        let rates: Vec<String> =
                            rates.iter().map(|r| format!("{:.2}M", r / 1e6)).collect();
                        let _ = writeln!(
                            o,
                            "{:<24} {:<9} {:<8} {:>10.2}M {:>12.2}M {:>10.2}M {:>10} {:>6.1}  {}",
                            row.peer.label(),
                            row.transport.label(),
                            delivery,
                            t.published_per_s / 1e6,
                            t.delivered_mean_per_s / 1e6,
                            t.delivered_min_per_s / 1e6,
                            t.lost,
                            100.0 * t.lost as f64 / (row.messages * fan_out as u64) as f64,
                            rates.join(" ")
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(
                            o,
                            "{:<24} {:<9} {:<8} not measured: {e}",
                            row.peer.label(),
                            row.transport.label(),
                            delivery
                        );
                    }
                }
            }
            let _ = writeln!(o);
        }
        let _ = writeln!(
            o,
            "Throughput ratios, ringcast / peer (same transport and fan-out, same run; > 1: ringcast faster; \
             * like-for-like delivery: lossy vs lossy, lossless vs lossless)"
        );
        let _ = writeln!(
            o,
            "{:<20} {:<24} {:<9} {:>6} {:>15} {:>15}",
            "ringcast", "peer", "transport", "1 -> n", "delivered/s", "published/s"
        );
        for r in self.throughput_ratios() {
            let _ = writeln!(
                o,
                "{:<20} {:<24} {:<9} {:>6} {:>15} {:>15}",
                format!(
                    "{}{}",
                    r.ringcast.label(),
                    if r.like_for_like { " *" } else { "" }
                ),
                r.peer.label(),
                r.transport.label(),
                r.fan_out,
                ratio_text(r.delivered),
                ratio_text(r.published)
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "How each path is set up (delivered/s: messages a receiver got per second from the publisher's first send to its own last receive, mean over receivers; slowest/s: the slowest receiver; lost: summed over receivers; waits: spin {SPIN_POLLS} polls then yield, except where noted):");
        for p in self.configured_peers() {
            let _ = writeln!(o, "- {}: {}", p.label(), p.config());
        }
        let _ = writeln!(
            o,
            "- processes: the receivers are this binary re-executed ({CHILD_FLAG}), one process per receiver, \
             pinned like the threads; the publisher waits until each has attached"
        );
        o
    }

    /// The report as one JSON object.
    fn json(&self) -> String {
        let c = self.ctx;
        let a = self.args;
        let mut o = String::new();
        let _ = write!(
            o,
            "{{\"message_bytes\":{MSG_SIZE},\"capacity\":{CAPACITY},\"pace_ns\":{PACE_NS},\"warmup\":{WARMUP},\
             \"messages\":{},\"rounds\":{},\"trials\":{},\"throughput_messages\":{},\"quick\":{},\
             \"cores\":{},\"pinned\":{},\"placement\":{},\"clock\":{},\"ns_per_tick\":{:.6},\"clock_overhead_ns\":{:.1},\
             \"load_average_start\":{},\"load_average_end\":{},",
            a.messages,
            a.rounds,
            a.trials,
            a.messages * THROUGHPUT_FACTOR,
            a.quick,
            core_affinity::get_core_ids().map_or(0, |v| v.len()),
            self.pinned(),
            json_str(&self.cores_text()),
            json_str(c.clock.source),
            c.clock.ns_per_tick,
            self.overhead,
            json_str(&self.load[0]),
            json_str(&self.load[1])
        );
        let limit = self.limit_p50();
        let lat: Vec<String> = self
            .latency
            .iter()
            .map(|row| {
                let head = format!(
                    "\"label\":{},\"transport\":{}",
                    json_str(row.label),
                    json_str(row.transport)
                );
                match &row.result {
                    Ok(l) => format!(
                        "{{{head},\"measured\":true,\"samples\":{},\"p50_ns\":{:.1},\"p99_ns\":{:.1},\
                         \"p999_ns\":{:.1},\"max_ns\":{:.1},\"min_ns\":{:.1},\"mean_ns\":{:.1},\"lost\":{},\
                         \"negative\":{},\"p50_over_limit\":{}}}",
                        l.samples,
                        l.p50,
                        l.p99,
                        l.p999,
                        l.max,
                        l.min,
                        l.mean,
                        l.lost,
                        l.negative,
                        limit.map_or("null".into(), |lim| format!("{:.3}", l.p50 / lim))
                    ),
                    Err(e) => format!("{{{head},\"measured\":false,\"reason\":{}}}", json_str(e)),
                }
            })
            .collect();
        let tp: Vec<String> = self
            .throughput
            .iter()
            .map(|row| {
                let head = format!(
                    "\"label\":{},\"transport\":{},\"fan_out\":{},\"lossless\":{},\"messages\":{}",
                    json_str(row.peer.label()),
                    json_str(row.transport.label()),
                    row.fan_out,
                    row.peer.lossless(),
                    row.messages
                );
                match &row.result {
                    Ok((t, rates)) => {
                        let rates: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
                        format!(
                            "{{{head},\"measured\":true,\"published_per_s\":{:.0},\
                             \"delivered_per_s_mean\":{:.0},\"delivered_per_s_slowest\":{:.0},\
                             \"received\":{},\"lost\":{},\"trial_delivered_per_s\":[{}]}}",
                            t.published_per_s,
                            t.delivered_mean_per_s,
                            t.delivered_min_per_s,
                            t.received,
                            t.lost,
                            rates.join(",")
                        )
                    }
                    Err(e) => format!("{{{head},\"measured\":false,\"reason\":{}}}", json_str(e)),
                }
            })
            .collect();
        let lr: Vec<String> = self
            .latency_ratios()
            .iter()
            .map(|r| {
                format!(
                    "{{\"ringcast\":{},\"peer\":{},\"transport\":{},\"p50_ratio\":{:.3},\
                     \"p99_ratio\":{:.3},\"like_for_like\":{}}}",
                    json_str(r.ringcast),
                    json_str(r.peer),
                    json_str(r.transport),
                    r.p50,
                    r.p99,
                    r.like_for_like
                )
            })
            .collect();
        let tr: Vec<String> = self
            .throughput_ratios()
            .iter()
            .map(|r| {
                format!(
                    "{{\"ringcast\":{},\"peer\":{},\"transport\":{},\"fan_out\":{},\
                     \"delivered_ratio\":{:.3},\"published_ratio\":{:.3},\"like_for_like\":{}}}",
                    json_str(r.ringcast.label()),
                    json_str(r.peer.label()),
                    json_str(r.transport.label()),
                    r.fan_out,
                    r.delivered,
                    r.published,
                    r.like_for_like
                )
            })
            .collect();
        let configs: Vec<String> = self
            .configured_peers()
            .iter()
            .map(|p| format!("{}:{}", json_str(p.label()), json_str(p.config())))
            .collect();
        let _ = write!(
            o,
            "\"latency\":[{}],\"throughput\":[{}],\"latency_ratios_ringcast_over_peer\":[{}],\
             \"throughput_ratios_ringcast_over_peer\":[{}],\"configuration\":{{{}}}}}",
            lat.join(","),
            tp.join(","),
            lr.join(","),
            tr.join(","),
            configs.join(",")
        );
        o
    }
}

/// A ratio with three significant digits or so (0.0042, 0.42, 4.20, 42.0).
fn ratio_text(r: f64) -> String {
    if !r.is_finite() {
        "-".to_owned()
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else if r >= 0.1 {
        format!("{r:.2}")
    } else {
        format!("{r:.4}")
    }
}

/// `s` as a JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
