//! photon-ring's SPMC channel, lossy (`channel`: a lapped subscriber gets
//! `Lagged`) or bounded (`channel_bounded` with watermark 0: `try_publish`
//! fails when full). In-process only: it has no shared-memory mode.

use crate::harness::{
    drain_one_by_one, Info, Job, Msg, Peer, PeerReceiver, PeerSender, Polled, CAPACITY,
};
use photon_ring::TryRecvError;

/// Why photon-ring has no inter-process rows.
const NO_IPC: &str = "photon-ring 3.0.0 has no shared-memory or inter-process mode \
     (its rings are heap memory behind an Arc; checked in its source and docs)";

/// photon-ring, lossy or bounded.
pub struct Photon {
    pub bounded: bool,
}

impl Peer for Photon {
    fn info(&self) -> Info {
        let (key, label, config) = if self.bounded {
            (
                "photon-bounded",
                "photon-ring bounded",
                "photon_ring::channel_bounded::<Msg>(4096, 0), subscribe(); lossless, \
                 try_publish + the bench's wait",
            )
        } else {
            (
                "photon-lossy",
                "photon-ring lossy",
                "photon_ring::channel::<Msg>(4096), subscribe() before the first publish, \
                 publish / try_recv; lossy (a lapped subscriber gets Lagged)",
            )
        };
        Info {
            key,
            label,
            config,
            lossless: self.bounded,
            ringcast: false,
        }
    }

    /// Every subscriber subscribes before the first publish.
    fn threads<J: Job>(&self, job: &J) -> Result<J::Out, String> {
        let (publisher, subscribable) = if self.bounded {
            photon_ring::channel_bounded::<Msg>(CAPACITY, 0)
        } else {
            photon_ring::channel::<Msg>(CAPACITY)
        };
        let receivers = (0..job.ends().receivers)
            .map(|_| Receiver(subscribable.subscribe()))
            .collect();
        job.threads(
            Sender {
                publisher,
                bounded: self.bounded,
            },
            receivers,
        )
    }

    fn processes<J: Job>(&self, _job: &J) -> Result<J::Out, String> {
        Err(NO_IPC.to_owned())
    }
}

/// photon-ring's publisher.
struct Sender {
    publisher: photon_ring::Publisher<Msg>,
    bounded: bool,
}

impl PeerSender for Sender {
    #[inline(always)]
    fn offer(&mut self, msg: &Msg) -> Result<bool, String> {
        if !self.bounded {
            self.publisher.publish(*msg);
            return Ok(true);
        }
        Ok(self.publisher.try_publish(*msg).is_ok())
    }
}

/// One subscriber, polled with `try_recv` (a lapped subscriber gets
/// `Lagged` and goes on from where the ring is).
struct Receiver(photon_ring::Subscriber<Msg>);

impl PeerReceiver for Receiver {
    #[inline]
    fn drain(&mut self, each: impl FnMut(&Msg)) -> Result<usize, String> {
        drain_one_by_one(each, |each| match self.0.try_recv() {
            Ok(msg) => {
                each(&msg);
                Ok(Polled::Message)
            }
            Err(TryRecvError::Empty) => Ok(Polled::Empty),
            Err(TryRecvError::Lagged { .. }) => Ok(Polled::Skipped),
        })
    }
}
