//! What every path shares: the message, the two ends a peer provides
//! ([`PeerSender`], [`PeerReceiver`]), how a peer is described and asked to
//! build its ends ([`Peer`], [`Job`]), how waiting threads back off, and the
//! run's context (clock, cores, names, deadlines).

use crate::common::{ticks, Clock};
use crate::drive::{LatencyJob, StampLog, ThroughputJob};
use crate::process::ChildSpec;
use crate::stats::Trial;
use core_affinity::CoreId;
use serde::Serialize;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

/// Size of every message, bytes: 64, or 48 when built with the `message-48`
/// feature. At 48 bytes a ringcast slot (16-byte header + payload) fills one
/// cache line instead of two; the peers carry 48 bytes too, so the ratios
/// stay like for like and a build of each size shows what the second line
/// costs.
pub const MSG_SIZE: usize = if cfg!(feature = "message-48") { 48 } else { 64 };
/// One message as every path carries it: stamp at 0..8, sequence at 8..16.
pub type Msg = [u8; MSG_SIZE];
/// Where the send time stamp (TSC ticks) sits in a message.
pub const STAMP_AT: usize = 0;
/// Where the sequence number sits in a message.
pub const SEQ_AT: usize = 8;
/// Slots (ring size, channel bound, subscriber queue) of every path.
pub const CAPACITY: usize = 4096;
/// Receivers of the fan-out throughput runs.
pub const FAN_OUT: usize = 4;
/// Pacing of the latency runs: one message per this many ns.
pub const PACE_NS: f64 = 2_000.0;
/// Messages before the recorded ones in every latency round: two laps of a
/// fresh ring, so that first-touch page faults are not recorded.
pub const WARMUP: u64 = 2 * CAPACITY as u64;
/// A measurement gives up after this long, plus [`TIMEOUT_PER_MSG_NS`] per
/// message, so that a stuck peer cannot stop the run.
const TIMEOUT_BASE_NS: f64 = 10e9;
/// See [`TIMEOUT_BASE_NS`].
const TIMEOUT_PER_MSG_NS: f64 = 5_000.0;
/// Polls a waiting throughput thread spins before it starts yielding.
pub const SPIN_POLLS: u64 = 256;
/// Idle polls between two looks at the deadline.
pub const DEADLINE_EVERY: u64 = 4096;
/// Most messages one `drain` takes from a per-message API.
pub const DRAIN_MAX: usize = 256;

// ------------------------------------------------------------- messages ----

/// The little-endian u64 at `at` of `msg`.
#[inline(always)]
pub fn read_u64(msg: &Msg, at: usize) -> u64 {
    u64::from_le_bytes(msg[at..at + 8].try_into().expect("8 bytes"))
}

/// Stores `value` little-endian at `at` of `msg`.
#[inline(always)]
pub fn write_u64(msg: &mut Msg, at: usize, value: u64) {
    msg[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

// ------------------------------------------------------------ the ends ----

/// The sending end of a path under test, as the drivers use it.
pub trait PeerSender {
    /// Offers one message: `Ok(false)` when a lossless path is full right now.
    ///
    /// Every peer's implementation is `#[inline(always)]`: the send loops
    /// measure a peer's publish as a user's loop calls it, not a call
    /// through this trait. Left to the compiler, small publish paths (the
    /// disruptor's) were inlined and larger ones (ringcast's) were not, and
    /// a call's register saves are stores that queue behind the ring's
    /// (docs/benchmarks.md, "Stores in flight").
    fn offer(&mut self, msg: &Msg) -> Result<bool, String>;

    /// Called once every receiver is attached, before the first message.
    fn connect(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// The receiving end of a path under test.
pub trait PeerReceiver {
    /// Hands every message available now (up to a batch) to `each`, in
    /// order; returns how many. Lost messages are simply not handed over.
    fn drain(&mut self, each: impl FnMut(&Msg)) -> Result<usize, String>;
}

/// What one call of a per-message receive API gave.
pub enum Polled {
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
pub fn drain_one_by_one<F: FnMut(&Msg)>(
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
pub struct Backoff {
    polls: u64,
    deadline: u64,
}

impl Backoff {
    /// A fresh wait that gives up at tick `deadline`.
    pub fn new(deadline: u64) -> Self {
        Self { polls: 0, deadline }
    }

    /// One idle poll; `Err` once the deadline has passed.
    #[inline]
    pub fn idle(&mut self, waiting_for: &str) -> Result<(), String> {
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
    pub fn reset(&mut self) {
        self.polls = 0;
    }
}

// ------------------------------------------------------------ the peers ----

/// Where the two ends of a path live.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Threads,
    Processes,
}

impl Transport {
    /// Name of the transport in the tables (and in the JSON).
    pub fn label(self) -> &'static str {
        match self {
            Transport::Threads => "threads",
            Transport::Processes => "processes",
        }
    }
}

/// A library in one configuration, as the report names it.
#[derive(Clone, Copy)]
pub struct Info {
    /// Short id, usable in ring and service names; a receiver process finds
    /// its peer by it.
    pub key: &'static str,
    /// Name of the path in the tables.
    pub label: &'static str,
    /// How the path is set up, for the report.
    pub config: &'static str,
    /// Every receiver gets every message (the publisher waits for room).
    pub lossless: bool,
    /// The library under test rather than a peer: the ratios put these over
    /// the others.
    pub ringcast: bool,
}

/// Why an in-process library has no rows across processes.
pub const IN_PROCESS_ONLY: &str = "an in-process library: no inter-process mode";

/// What a peer's adapter provides: it builds its ends and hands them to the
/// job, which does all the measuring, so every peer is measured by the same
/// code. An `Err` from a method is the reason the path has no figures.
pub trait Peer: Sync {
    /// Names and describes this configuration.
    fn info(&self) -> Info;

    /// Builds a sender and `job.ends().receivers` receivers in this process
    /// and returns `job.threads(sender, receivers)`.
    fn threads<J: Job>(&self, job: &J) -> Result<J::Out, String>;

    /// Returns `job.processes(make_sender)`: the job calls `make_sender` in
    /// the publisher's thread, and starts receiver processes, which end up in
    /// [`Peer::serve`].
    fn processes<J: Job>(&self, job: &J) -> Result<J::Out, String> {
        let _ = job;
        Err(IN_PROCESS_ONLY.to_owned())
    }

    /// In a receiver process: builds the receiving end `spec` names and
    /// returns `spec.serve(receiver)`.
    fn serve(&self, spec: &ChildSpec) -> Result<(), String> {
        Err(format!("{}: no receiver process", spec.peer))
    }
}

/// A [`Peer`] behind `dyn` (every `Peer` is one), so that peers of
/// different types sit in one lineup: the generic methods of `Peer` fixed to
/// the two measurements.
pub trait DynPeer: Sync {
    /// [`Peer::info`].
    fn info(&self) -> Info;
    /// A latency round over `transport`: [`Peer::threads`] or [`Peer::processes`].
    fn latency(&self, transport: Transport, job: &LatencyJob<'_>) -> Result<StampLog, String>;
    /// A throughput trial over `transport`: [`Peer::threads`] or [`Peer::processes`].
    fn throughput(&self, transport: Transport, job: &ThroughputJob<'_>) -> Result<Trial, String>;
    /// [`Peer::serve`].
    fn serve(&self, spec: &ChildSpec) -> Result<(), String>;
}

impl<P: Peer> DynPeer for P {
    fn info(&self) -> Info {
        Peer::info(self)
    }

    fn latency(&self, transport: Transport, job: &LatencyJob<'_>) -> Result<StampLog, String> {
        over(self, transport, job)
    }

    fn throughput(&self, transport: Transport, job: &ThroughputJob<'_>) -> Result<Trial, String> {
        over(self, transport, job)
    }

    fn serve(&self, spec: &ChildSpec) -> Result<(), String> {
        Peer::serve(self, spec)
    }
}

/// `job` run by `peer` over `transport`.
fn over<P: Peer, J: Job>(peer: &P, transport: Transport, job: &J) -> Result<J::Out, String> {
    match transport {
        Transport::Threads => peer.threads(job),
        Transport::Processes => peer.processes(job),
    }
}

/// What a peer needs to know to build its ends.
pub struct Ends {
    /// Ring or service name, unique to this measurement.
    pub name: String,
    /// Directory of ringcast's ring files.
    pub dir: PathBuf,
    /// Receivers to build.
    pub receivers: usize,
    /// How long a sender that waits for room inside the library may wait.
    pub timeout: Duration,
}

/// One measurement, handed to a [`Peer`]: the peer builds its ends and
/// gives them back through `threads` or `processes`.
pub trait Job {
    /// What the measurement yields.
    type Out;

    /// The ends to build.
    fn ends(&self) -> &Ends;

    /// Measures with both ends as pinned threads of this process.
    fn threads<S, R>(&self, tx: S, rxs: Vec<R>) -> Result<Self::Out, String>
    where
        S: PeerSender + Send,
        R: PeerReceiver + Send;

    /// Measures with the sender in this process and each receiver in a
    /// process of its own. `make_sender` runs in the publisher's pinned
    /// thread, and the sender never leaves it (so it need not be `Send`).
    fn processes<S: PeerSender>(
        &self,
        make_sender: impl FnOnce() -> Result<S, String> + Send,
    ) -> Result<Self::Out, String>;
}

// ------------------------------------------------------- the run's setup ----

/// What every measurement needs.
pub struct Ctx {
    pub clock: Clock,
    /// Cores to pin to: the publisher on the first, receiver `i` on
    /// `cores[(1 + i) % len]`; empty when there are fewer than two.
    pub cores: Vec<CoreId>,
    /// Temporary directory of the ringcast rings.
    pub dir: PathBuf,
    /// Prefix of ring and service names, unique to this run.
    pub tag: String,
}

impl Ctx {
    /// The publisher's core (`None`: unpinned).
    pub fn publisher_core(&self) -> Option<CoreId> {
        self.cores.first().copied()
    }

    /// Receiver `i`'s core: the others in turn, then round again.
    pub fn receiver_core(&self, i: usize) -> Option<CoreId> {
        (!self.cores.is_empty()).then(|| self.cores[(1 + i) % self.cores.len()])
    }

    /// Timeout of a measurement that moves `messages` messages.
    pub fn timeout(&self, messages: u64) -> Duration {
        Duration::from_nanos((TIMEOUT_BASE_NS + messages as f64 * TIMEOUT_PER_MSG_NS) as u64)
    }

    /// The tick by which a measurement of `messages` messages must be done.
    pub fn deadline(&self, messages: u64) -> u64 {
        ticks()
            + self
                .clock
                .ticks_for_ns(self.timeout(messages).as_nanos() as f64)
    }

    /// A ring or service name unique to this run.
    pub fn name(&self, what: &str, index: usize) -> String {
        format!("{}-{what}-{index}", self.tag)
    }
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
pub fn joined<T>(r: thread::Result<Result<T, String>>, role: &str) -> Result<T, String> {
    r.map_err(|p| format!("{role} thread panicked: {}", panic_message(&*p)))?
}
