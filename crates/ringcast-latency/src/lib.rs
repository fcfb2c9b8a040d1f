//! ringcast-latency: publish times turned into HdrHistograms.
//!
//! A subscriber of a ring with timestamps knows, for every message, when it
//! was published; `now - publish time` is the message's one-way latency. The
//! [`LatencyRecorder`] puts those values (ns) into an HdrHistogram, the form
//! in which latency is read in this field: percentiles to the last 9s with
//! bounded relative error, mergeable across processes and intervals, and
//! encodable in the standard compressed form (V2 + deflate + base64) that
//! every HdrHistogram implementation decodes (Java's, Python's `hdrhistogram`
//! package, `HistogramLogReader` of an interval log).
//!
//! Recording costs a few ns and never allocates. Values above the
//! recorder's highest trackable value are recorded as that value and
//! counted, never dropped.
//!
//! Coordinated omission: a sender that stalls sends nothing during the
//! stall, so the messages that would have met the stall are never measured.
//! Two remedies: the publisher stamps each message with the time it was
//! *due* (`Publisher::publish_at`), which charges every message its full
//! delay (exact); or the recorder is told the expected interval between
//! messages and adds the missing samples (HdrHistogram's
//! `recordValueWithExpectedInterval`, an estimate).

//!
//! Layers: [`histogram`] (the recorder and the standard encodings),
//! [`interval_log`] (HdrHistogram interval logs), [`observe`] (a recorder
//! as a subscriber's [`ringcast_core::ReceiveObserver`]: the
//! [`RecordLatency`] methods on `Subscriber`), [`loadgen`] (the paced
//! publisher and recording reader of `ringcast bench`). Depends on
//! `ringcast-core`, never the other way round.

mod error;
pub mod histogram;
pub mod interval_log;
pub mod loadgen;
pub mod observe;

pub use error::{Error, LatencyError};
pub use histogram::{
    decode, encode, new_histogram, percentile_distribution, LatencyHistogram, LatencyRecorder,
    RecorderConfig, MAX_TICKS,
};
pub use observe::RecordLatency;
