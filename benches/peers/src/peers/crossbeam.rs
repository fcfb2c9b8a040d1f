//! `crossbeam-channel` bounded channels. A channel is not a broadcast (each
//! message goes to one receiver), so 1 -> n uses n channels and the sender
//! puts every message into each. In-process only.

use crate::harness::{
    drain_one_by_one, Info, Job, Msg, Peer, PeerReceiver, PeerSender, Polled, CAPACITY,
};
use crossbeam_channel::{TryRecvError, TrySendError};

/// Bounded channels, try_send / try_recv.
pub struct Crossbeam;

impl Peer for Crossbeam {
    fn info(&self) -> Info {
        Info {
            key: "crossbeam",
            label: "crossbeam-channel",
            config: "crossbeam_channel::bounded::<Msg>(4096), try_send / try_recv; lossless; \
                     NOT a broadcast: 1 -> 4 uses 4 channels and the publisher sends every message to \
                     each (published/s counts a message once)",
            lossless: true,
            ringcast: false,
        }
    }

    fn threads<J: Job>(&self, job: &J) -> Result<J::Out, String> {
        let (channels, receivers) = (0..job.ends().receivers)
            .map(|_| {
                let (tx, rx) = crossbeam_channel::bounded::<Msg>(CAPACITY);
                (tx, Receiver(rx))
            })
            .unzip();
        job.threads(
            Sender {
                channels,
                sent_to: 0,
            },
            receivers,
        )
    }
}

/// One channel per receiver.
struct Sender {
    channels: Vec<crossbeam_channel::Sender<Msg>>,
    /// Channels the current message already went to: a full channel leaves
    /// the message half sent, and the next offer resumes after them.
    sent_to: usize,
}

impl PeerSender for Sender {
    #[inline(always)]
    fn offer(&mut self, msg: &Msg) -> Result<bool, String> {
        while self.sent_to < self.channels.len() {
            match self.channels[self.sent_to].try_send(*msg) {
                Ok(()) => self.sent_to += 1,
                Err(TrySendError::Full(_)) => return Ok(false),
                Err(TrySendError::Disconnected(_)) => return Err("crossbeam receiver gone".into()),
            }
        }
        self.sent_to = 0;
        Ok(true)
    }
}

/// One channel's receiver, polled with `try_recv`.
struct Receiver(crossbeam_channel::Receiver<Msg>);

impl PeerReceiver for Receiver {
    #[inline]
    fn drain(&mut self, each: impl FnMut(&Msg)) -> Result<usize, String> {
        drain_one_by_one(each, |each| match self.0.try_recv() {
            Ok(msg) => {
                each(&msg);
                Ok(Polled::Message)
            }
            Err(TryRecvError::Empty) => Ok(Polled::Empty),
            Err(TryRecvError::Disconnected) => Err("crossbeam sender gone early".into()),
        })
    }
}
