//! The `disruptor` crate: a single producer and one EventPoller per
//! receiver, lossless (`try_publish` fails when the slowest poller is a ring
//! behind). In-process only.

use crate::harness::{Info, Job, Msg, Peer, PeerReceiver, PeerSender, CAPACITY, MSG_SIZE};
use ::disruptor::{
    build_single_producer, BusySpin, EventPoller, Polling, Producer, SingleProducerBarrier,
};

/// The disruptor, BusySpin, polled.
pub struct Disruptor;

impl Peer for Disruptor {
    fn info(&self) -> Info {
        Info {
            key: "disruptor",
            label: "disruptor",
            config: "disruptor::build_single_producer(4096, Msg, BusySpin); one EventPoller per \
                     receiver (1 -> 1: single-consumer build; 1 -> 4: with_multi_consumer, every \
                     poller sees every event), poll() takes all available events; lossless, \
                     try_publish + the bench's wait",
            lossless: true,
            ringcast: false,
        }
    }

    /// One receiver: the single-consumer build; more: the multi-consumer
    /// build, each poller seeing every event.
    fn threads<J: Job>(&self, job: &J) -> Result<J::Out, String> {
        let builder = build_single_producer(CAPACITY, || [0u8; MSG_SIZE], BusySpin);
        let n = job.ends().receivers;
        if n == 1 {
            let (poller, builder) = builder.new_event_poller();
            return job.threads(Sender(builder.build()), vec![Receiver(poller)]);
        }
        let mut builder = builder.with_multi_consumer();
        let mut pollers = Vec::with_capacity(n);
        for _ in 0..n {
            let (poller, next) = builder.new_event_poller();
            pollers.push(Receiver(poller));
            builder = next;
        }
        job.threads(Sender(builder.build()), pollers)
    }
}

/// The single producer, over either consumer barrier.
struct Sender<P>(P);

impl<P: Producer<Msg>> PeerSender for Sender<P> {
    #[inline(always)]
    fn offer(&mut self, msg: &Msg) -> Result<bool, String> {
        Ok(self.0.try_publish(|slot| *slot = *msg).is_ok())
    }
}

/// One EventPoller: reads every event available in one batch.
struct Receiver(EventPoller<Msg, SingleProducerBarrier>);

impl PeerReceiver for Receiver {
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
            Err(Polling::NoEvents) => Ok(0),
            Err(Polling::Shutdown) => Err("disruptor shut down early".into()),
        }
    }
}
