//! A [`LatencyRecorder`] as a subscriber's [`ReceiveObserver`]: every
//! message read is recorded as `receive time - publish time`.

use crate::error::Error;
use crate::histogram::{LatencyRecorder, RecorderConfig};
use ringcast_core::{ReceiveObserver, Subscriber};
use std::any::Any;

impl ReceiveObserver for LatencyRecorder {
    #[inline]
    fn observe(&mut self, published_ns: u64, received_ns: u64) {
        self.record_since(published_ns, received_ns);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Latency recording on a [`Subscriber`] (`use ringcast_latency::RecordLatency`).
pub trait RecordLatency {
    /// Starts recording the latency (receive time minus publish time) of
    /// every message read from now on into a [`LatencyRecorder`] of shape
    /// `config`, replacing any recorder; `None` stops recording. Batches
    /// read the clock once, when their first message is read. Fails on rings
    /// without timestamps, or on a bad shape.
    fn record_latency(&mut self, config: Option<RecorderConfig>) -> Result<(), Error>;

    /// The latency recorder, while recording.
    fn recorder(&self) -> Option<&LatencyRecorder>;

    /// The latency recorder, to take intervals from or reset.
    fn recorder_mut(&mut self) -> Option<&mut LatencyRecorder>;
}

impl RecordLatency for Subscriber {
    fn record_latency(&mut self, config: Option<RecorderConfig>) -> Result<(), Error> {
        let observer = match config {
            Some(config) => Some(Box::new(LatencyRecorder::new(config)?) as Box<_>),
            None => None,
        };
        Ok(self.set_observer(observer)?)
    }

    fn recorder(&self) -> Option<&LatencyRecorder> {
        self.observer()?.as_any().downcast_ref()
    }

    fn recorder_mut(&mut self) -> Option<&mut LatencyRecorder> {
        self.observer_mut()?.as_any_mut().downcast_mut()
    }
}
