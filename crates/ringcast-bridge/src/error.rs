//! What can go wrong in a bridge, each saying what to do about it.

use ringcast_core::{OpenError, PublishError, RecvError};
use std::fmt;

#[derive(Debug)]
pub enum BridgeError {
    /// A channel URI Aeron refuses (or one that is not an Aeron URI at all).
    Channel { uri: String, detail: String },
    /// The media driver could not be started, or the external one is not
    /// there.
    Driver { detail: String },
    /// No receiver connected to the sender's publication in time.
    NotConnected {
        uri: String,
        waited: std::time::Duration,
    },
    /// The receiving ring exists with another shape than the source's.
    SchemaClash { ring: String, clash: String },
    /// The source ring was made anew (its sequences restarted) while the
    /// receiving ring goes on with the old ones.
    SourceRemade { ring: String, detail: String },
    /// Aeron failed while the bridge ran.
    Aeron {
        during: &'static str,
        detail: String,
    },
    /// Options that cannot work together, or out of range.
    Argument(String),
    /// Opening the ring (not found, a live publisher, permissions, damage).
    Ring(OpenError),
    /// Reading the source ring.
    Recv(RecvError),
    /// Publishing into the receiving ring.
    Publish(PublishError),
}

impl fmt::Display for BridgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeError::Channel { uri, detail } => write!(
                f,
                "bad channel {uri:?}: {detail} (write aeron:udp?endpoint=HOST:PORT, \
                 aeron:udp?endpoint=GROUP:PORT|interface=ADDRESS for multicast, or aeron:ipc)"
            ),
            BridgeError::Driver { detail } => write!(f, "Aeron media driver: {detail}"),
            BridgeError::NotConnected { uri, waited } => write!(
                f,
                "no receiver connected to {uri} within {:.1} s: start `ringcast bridge recv` \
                 with this channel on the receiving host, and check that this host can reach \
                 its address and port (routes, firewall)",
                waited.as_secs_f64()
            ),
            BridgeError::SchemaClash { ring, clash } => write!(
                f,
                "ring {ring:?} exists with another shape than the source's: {clash}; remove it \
                 (`ringcast rm {ring}`) or receive into another ring (--ring)"
            ),
            BridgeError::SourceRemade { ring, detail } => write!(
                f,
                "the source of ring {ring:?} was made anew: {detail}; remove the receiving ring \
                 or receive into another one"
            ),
            BridgeError::Aeron { during, detail } => write!(f, "Aeron failed {during}: {detail}"),
            BridgeError::Argument(what) => f.write_str(what),
            BridgeError::Ring(e) => write!(f, "{e}"),
            BridgeError::Recv(e) => write!(f, "{e}"),
            BridgeError::Publish(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BridgeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BridgeError::Ring(e) => Some(e),
            BridgeError::Recv(e) => Some(e),
            BridgeError::Publish(e) => Some(e),
            _ => None,
        }
    }
}

impl From<OpenError> for BridgeError {
    fn from(e: OpenError) -> Self {
        BridgeError::Ring(e)
    }
}

impl From<RecvError> for BridgeError {
    fn from(e: RecvError) -> Self {
        BridgeError::Recv(e)
    }
}

impl From<PublishError> for BridgeError {
    fn from(e: PublishError) -> Self {
        BridgeError::Publish(e)
    }
}
