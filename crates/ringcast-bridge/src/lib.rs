//! ringcast-bridge: a ring carried across hosts on Aeron.
//!
//! - [`wire`]: the frames (pure bytes): hello (the ring's shape), data
//!   (consecutive messages with their publish times), gap, tick, end.
//! - [`accounting`]: the receiver's exact account of every sequence
//!   (delivered, or declared lost in the far ring with its cause).
//! - [`transport`]: Aeron: the embedded (or an external) media driver, the
//!   client, publications, subscriptions, the driver's counters.
//! - [`send`] / [`recv`]: the two ends.
//!
//! Depends on ringcast-core only (one way); the Python binding and
//! `ringcast serve` drive it through `ringcast-py`.

pub mod accounting;
pub mod error;
pub mod recv;
pub mod send;
pub mod transport;
pub mod wire;

pub use accounting::{Cause, Loss};
pub use error::BridgeError;
pub use recv::{recv, RecvOptions, RecvReport};
pub use send::{send, FirstMessage, SendOptions, SendReport};
pub use transport::{DriverChoice, DriverCounters, DriverOptions};

/// The Aeron stream id bridges use unless told otherwise.
pub const DEFAULT_STREAM: i32 = 1001;
