//! iceoryx2's inter-process publish-subscribe: zero-copy samples in shared
//! memory, lossy (safe overflow: a full queue drops its oldest sample) or
//! lossless (the publisher retries until delivered). Measured across
//! processes only.

use crate::harness::{
    drain_one_by_one, Info, Job, Msg, Peer, PeerReceiver, PeerSender, Polled, CAPACITY, FAN_OUT,
};
use crate::process::ChildSpec;
use ::iceoryx2::node::Node;
use ::iceoryx2::port::backpressure_strategy::BackpressureStrategy;
use ::iceoryx2::port::update_connections::UpdateConnections as _;
use ::iceoryx2::port::{BackpressureAction, BackpressureInfo};
use ::iceoryx2::prelude::{ipc, LogLevel, NodeBuilder, ServiceName, SignalHandlingMode};
use std::time::Duration;

/// The publish-subscribe service every iceoryx2 path uses.
type Service =
    ::iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, Msg, ()>;

/// iceoryx2, safe overflow or lossless.
pub struct Iceoryx2 {
    pub lossless: bool,
}

impl Peer for Iceoryx2 {
    fn info(&self) -> Info {
        let (key, label, config) = if self.lossless {
            (
                "iceoryx2-lossless",
                "iceoryx2 lossless",
                "as iceoryx2 safe-overflow, but enable_safe_overflow(false) + \
                 RetryUntilDelivered (iceoryx2's own adaptive wait when a queue is full)",
            )
        } else {
            (
                "iceoryx2-lossy",
                "iceoryx2 safe-overflow",
                "iceoryx2 ipc::Service publish_subscribe::<Msg>, subscriber buffer 4096, \
                 history 0, enable_safe_overflow(true) (a full queue drops its oldest sample); \
                 loan_uninit + write_payload + send (zero-copy), receive() borrows the sample",
            )
        };
        Info {
            key,
            label,
            config,
            lossless: self.lossless,
            ringcast: false,
        }
    }

    fn threads<J: Job>(&self, _job: &J) -> Result<J::Out, String> {
        Err("measured across processes only".to_owned())
    }

    fn processes<J: Job>(&self, job: &J) -> Result<J::Out, String> {
        let e = job.ends();
        job.processes(|| Sender::create(&e.name, self.lossless, e.receivers, e.timeout))
    }

    fn serve(&self, spec: &ChildSpec) -> Result<(), String> {
        spec.serve(Receiver::open(&spec.name, self.lossless)?)
    }
}

/// A node of this process (inter-process service variant), with iceoryx2's
/// logging down to errors and its signal handlers off (they would swallow
/// Ctrl-C).
fn create_node() -> Result<Node<ipc::Service>, String> {
    ::iceoryx2::prelude::set_log_level(LogLevel::Error);
    NodeBuilder::new()
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .map_err(|e| format!("iceoryx2: creating a node: {e:?}"))
}

/// Creates (publisher side) or opens (receiver side) service `name`:
/// Msg payload, one publisher, up to [`FAN_OUT`] subscribers, each with
/// a queue of [`CAPACITY`], no history; lossy = safe overflow, else the
/// publisher waits for room. Both sides must ask for the same settings.
fn pub_sub_service(
    node: &Node<ipc::Service>,
    name: &str,
    lossless: bool,
    create: bool,
) -> Result<Service, String> {
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
        .enable_safe_overflow(!lossless);
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

/// A publisher: loans a sample in shared memory, writes the message into it,
/// sends it (zero-copy: subscribers get the offset).
struct Sender {
    // Fields drop in this order: port, service, node.
    publisher: ::iceoryx2::port::publisher::Publisher<ipc::Service, Msg, ()>,
    _service: Service,
    _node: Node<ipc::Service>,
    /// Subscribers every sample must reach.
    receivers: usize,
}

impl Sender {
    /// Lossless: `RetryUntilDelivered` (iceoryx2's own adaptive wait), with a
    /// handler that gives up after `timeout`. Lossy: safe overflow.
    fn create(
        name: &str,
        lossless: bool,
        receivers: usize,
        timeout: Duration,
    ) -> Result<Self, String> {
        let node = create_node()?;
        let service = pub_sub_service(&node, name, lossless, true)?;
        let mut builder = service.publisher_builder();
        if lossless {
            builder = builder
                .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                .set_backpressure_handler(move |info: &BackpressureInfo| {
                    if info.elapsed_time > timeout {
                        BackpressureAction::DiscardDataAndFail
                    } else {
                        BackpressureAction::Retry
                    }
                });
        } else {
            builder = builder.backpressure_strategy(BackpressureStrategy::DiscardData);
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

impl PeerSender for Sender {
    #[inline(always)]
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

/// A subscriber: `receive` borrows each sample from shared memory; it is
/// released as soon as the message is read.
struct Receiver {
    // Fields drop in this order: port, service, node.
    subscriber: ::iceoryx2::port::subscriber::Subscriber<ipc::Service, Msg, ()>,
    _service: Service,
    _node: Node<ipc::Service>,
}

impl Receiver {
    /// Opens service `name` (created by the publisher) and subscribes.
    fn open(name: &str, lossless: bool) -> Result<Self, String> {
        let node = create_node()?;
        let service = pub_sub_service(&node, name, lossless, false)?;
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

impl PeerReceiver for Receiver {
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
