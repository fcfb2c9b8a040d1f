//! ringcast itself: a fixed-size single-producer ring of MSG_SIZE-byte slots in the run's
//! temporary directory, lossy or bounded (watermark = capacity), the slot
//! heads in the slots (the default) or apart (`heads_apart`), between
//! threads or processes.

use crate::harness::{
    Info, Job, Msg, Peer, PeerReceiver, PeerSender, CAPACITY, DRAIN_MAX, MSG_SIZE, SPIN_POLLS,
};
use crate::process::ChildSpec;
use std::path::Path;
use std::time::{Duration, Instant};

/// ringcast, lossy (the publisher never waits) or bounded by a full ring,
/// with the slots' heads in the slots or apart.
pub struct Ringcast {
    pub bounded: bool,
    /// `CreateOptions::heads_apart`: the heads in a table after the slots.
    pub heads_apart: bool,
}

impl Peer for Ringcast {
    fn info(&self) -> Info {
        let (key, label, config) = match (self.bounded, self.heads_apart) {
            (false, true) => (
                "ringcast-lossy-apart",
                "ringcast lossy, apart",
                "as ringcast lossy, heads_apart: true (the slot heads in a table after the \
                 slots: a 64-byte Msg takes one line a slot plus a quarter of a head line, not two)",
            ),
            (true, true) => (
                "ringcast-bounded-apart",
                "ringcast bounded, apart",
                "as ringcast bounded, heads_apart: true",
            ),
            (true, false) => (
                "ringcast-bounded",
                "ringcast bounded",
                "as ringcast lossy, bounded: Some(4096) (lossless: the publisher waits for the \
                 slowest subscriber) inside publish(), ringcast's own wait (resumes once 1/16 of \
                 the ring is free) with WaitStrategy::Adaptive { spin: 16, yields: MAX }: a \
                 waiting publisher polls every 16 pauses (wait::PUBLISHER_POLL_PAUSES), so 16 \
                 polls = the bench's 256 pauses before it yields",
            ),
            (false, false) => (
                "ringcast-lossy",
                "ringcast lossy",
                "ringcast-core Publisher::create: 4096 fixed-size slots of Msg (each slot's head, \
                 stamp and length, in front of its payload: 64 B takes two lines, 48 B one), single producer, \
                 lossy (never waits); Subscriber::attach(Start::Oldest) + try_recv_rows (copies out every available message, up to 256, publishing its position once per batch); \
                 ring file in a /dev/shm temp dir",
            ),
        };
        Info {
            key,
            label,
            config,
            lossless: self.bounded,
            ringcast: true,
        }
    }

    fn threads<J: Job>(&self, job: &J) -> Result<J::Out, String> {
        let e = job.ends();
        let tx = Sender::create(&e.dir, &e.name, self, e.timeout)?;
        let rxs = (0..e.receivers)
            .map(|_| Receiver::attach(&e.dir, &e.name))
            .collect::<Result<Vec<_>, _>>()?;
        job.threads(tx, rxs)
    }

    fn processes<J: Job>(&self, job: &J) -> Result<J::Out, String> {
        let e = job.ends();
        job.processes(|| Sender::create(&e.dir, &e.name, self, e.timeout))
    }

    fn serve(&self, spec: &ChildSpec) -> Result<(), String> {
        spec.serve(Receiver::attach(&spec.dir, &spec.name)?)
    }
}

/// ringcast's publisher.
struct Sender {
    publisher: ringcast_core::Publisher,
    /// Bounded rings: when a `publish` waiting for room gives up.
    give_up_at: Instant,
}

impl Sender {
    /// Creates ring `name` in `dir`, lossy or bounded by a full ring. A
    /// bounded publisher waits for room inside `publish` (ringcast's own
    /// wait, which resumes only once a sixteenth of the ring is free) with
    /// the same policy the bench gives the other peers: spin
    /// [`SPIN_POLLS`] pauses (a waiting publisher polls once every
    /// [`ringcast_core::wait::PUBLISHER_POLL_PAUSES`] pauses), then yield;
    /// it gives up after `timeout`.
    fn create(dir: &Path, name: &str, how: &Ringcast, timeout: Duration) -> Result<Self, String> {
        let bounded = how.bounded;
        let opts = ringcast_core::CreateOptions {
            fixed_size: true,
            dir: Some(dir.to_owned()),
            bounded: bounded.then_some(CAPACITY as u64),
            heads_apart: how.heads_apart,
            wait: ringcast_core::WaitStrategy::Adaptive {
                spin: SPIN_POLLS as u32 / ringcast_core::wait::PUBLISHER_POLL_PAUSES,
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

impl PeerSender for Sender {
    #[inline(always)]
    fn offer(&mut self, msg: &Msg) -> Result<bool, String> {
        match self
            .publisher
            .publish_with(msg, ringcast_core::Patience::until(Some(self.give_up_at)))
        {
            Ok(_) => Ok(true),
            Err(e) => Err(publish_failed(e)),
        }
    }
}

/// The message of a failed publish, out of the send loop.
#[cold]
#[inline(never)]
fn publish_failed(e: ringcast_core::PublishError) -> String {
    format!("ringcast publish: {e}")
}

impl Drop for Sender {
    /// Removes the ring file (readers that mapped it keep their mapping).
    fn drop(&mut self) {
        let _ = self.publisher.unlink();
    }
}

/// ringcast's subscriber, reading from the oldest message (attached before
/// the first publish, so from message 0), copying out every message
/// available (up to [`DRAIN_MAX`]) with one `try_recv_rows` call: its
/// position is published once per batch, as a disruptor poller's is.
struct Receiver {
    subscriber: ringcast_core::Subscriber,
    rows: Vec<u8>,
}

impl Receiver {
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

impl PeerReceiver for Receiver {
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
