//! Errors of latency recording and of the load generator. Every message
//! says what was wrong and what is allowed.

use std::fmt;

/// A histogram shape, histogram or percentile request that cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub enum LatencyError {
    /// Significant digits outside 1..=5.
    Digits(u8),
    /// A highest trackable value below 2 ns.
    Highest(u64),
    /// An expected interval of 0 ns.
    ExpectedInterval,
    /// A histogram to add holds values above the recorder's highest one.
    AboveHighest { max: u64, highest: u64 },
    /// The histogram library refused to make or add a histogram.
    Histogram {
        action: &'static str,
        detail: String,
    },
    /// Text that is not an encoded HdrHistogram.
    NotEncoded(String),
    /// Percentile rows per halving outside 1..=`MAX_TICKS`.
    Ticks(u64),
    /// A load generator rate that is not a positive number.
    Rate(f64),
}

impl fmt::Display for LatencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LatencyError::Digits(d) => write!(
                f,
                "latency histograms keep 1 to 5 significant digits, not {d}"
            ),
            LatencyError::Highest(h) => write!(
                f,
                "the highest trackable latency must be at least 2 ns, not {h}"
            ),
            LatencyError::ExpectedInterval => {
                f.write_str("the expected interval between messages must be at least 1 ns")
            }
            LatencyError::AboveHighest { max, highest } => write!(
                f,
                "the histogram holds values up to {max} ns, above this one's highest \
                 trackable value of {highest} ns; use a recorder with a larger highest value"
            ),
            LatencyError::Histogram { action, detail } => {
                write!(f, "cannot {action} a latency histogram: {detail}")
            }
            LatencyError::NotEncoded(why) => write!(
                f,
                "not an encoded HdrHistogram ({why}); expected the base64 text of a \
                 V2 histogram such as HdrHistogram.encode() returns"
            ),
            LatencyError::Ticks(ticks) => write!(
                f,
                "ticks must be between 1 and {} (rows per halving of the distance to the \
                 100th percentile; HdrHistogram's tools print 5), got {ticks}",
                crate::MAX_TICKS
            ),
            LatencyError::Rate(rate) => write!(
                f,
                "the rate must be a positive number of messages per second, got {rate}"
            ),
        }
    }
}

impl std::error::Error for LatencyError {}

/// What a load generator run or a latency recording on a ring can fail with.
#[derive(Debug)]
pub enum Error {
    /// A bad shape, histogram or rate.
    Latency(LatencyError),
    /// The ring refused (see [`ringcast_core::Error`]).
    Ring(ringcast_core::Error),
}

impl From<LatencyError> for Error {
    fn from(e: LatencyError) -> Self {
        Error::Latency(e)
    }
}

/// Errors of the ring operations the load generator and recording use.
macro_rules! ring_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Ring(e.into())
            }
        }
    )*};
}

ring_error!(
    ringcast_core::Error,
    ringcast_core::ArgumentError,
    ringcast_core::PublishError,
    ringcast_core::RecvError
);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Latency(e) => e.fmt(f),
            Error::Ring(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Latency(e) => Some(e),
            Error::Ring(e) => Some(e),
        }
    }
}
