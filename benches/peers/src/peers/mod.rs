//! The lineup: every peer, one adapter module each, in report order, and
//! the paths (peer, transport) the run measures.

pub mod crossbeam;
pub mod disruptor;
pub mod iceoryx2;
pub mod limit;
pub mod photon;
pub mod ringcast;

use crate::harness::{DynPeer, Info, Transport};
use Transport::{Processes, Threads};

const RINGCAST_LOSSY: &dyn DynPeer = &self::ringcast::Ringcast {
    bounded: false,
    heads_apart: false,
};
const RINGCAST_BOUNDED: &dyn DynPeer = &self::ringcast::Ringcast {
    bounded: true,
    heads_apart: false,
};
const RINGCAST_LOSSY_APART: &dyn DynPeer = &self::ringcast::Ringcast {
    bounded: false,
    heads_apart: true,
};
const RINGCAST_BOUNDED_APART: &dyn DynPeer = &self::ringcast::Ringcast {
    bounded: true,
    heads_apart: true,
};
const DISRUPTOR: &dyn DynPeer = &self::disruptor::Disruptor;
const CROSSBEAM: &dyn DynPeer = &self::crossbeam::Crossbeam;
const PHOTON_LOSSY: &dyn DynPeer = &self::photon::Photon { bounded: false };
const PHOTON_BOUNDED: &dyn DynPeer = &self::photon::Photon { bounded: true };
const ICEORYX2_LOSSY: &dyn DynPeer = &self::iceoryx2::Iceoryx2 { lossless: false };
const ICEORYX2_LOSSLESS: &dyn DynPeer = &self::iceoryx2::Iceoryx2 { lossless: true };

/// Every peer, in report order (a receiver process looks its peer up here).
pub const PEERS: [&dyn DynPeer; 10] = [
    RINGCAST_LOSSY,
    RINGCAST_BOUNDED,
    RINGCAST_LOSSY_APART,
    RINGCAST_BOUNDED_APART,
    DISRUPTOR,
    CROSSBEAM,
    PHOTON_LOSSY,
    PHOTON_BOUNDED,
    ICEORYX2_LOSSY,
    ICEORYX2_LOSSLESS,
];

/// A peer over a transport.
pub type Path = (&'static dyn DynPeer, Transport);

/// The one-way latency paths, in report order (after the limit). A path a
/// peer cannot run is reported as not measured, with the peer's reason.
pub const LATENCY_PATHS: [Path; 11] = [
    (RINGCAST_LOSSY, Threads),
    (RINGCAST_BOUNDED, Threads),
    (RINGCAST_LOSSY_APART, Threads),
    (RINGCAST_BOUNDED_APART, Threads),
    (DISRUPTOR, Threads),
    (CROSSBEAM, Threads),
    (PHOTON_LOSSY, Threads),
    (RINGCAST_LOSSY, Processes),
    (RINGCAST_BOUNDED, Processes),
    (ICEORYX2_LOSSLESS, Processes),
    (PHOTON_LOSSY, Processes),
];

/// The throughput paths, in report order (each run 1 -> 1 and 1 -> 4).
pub const THROUGHPUT_PATHS: [Path; 13] = [
    (RINGCAST_LOSSY, Threads),
    (RINGCAST_BOUNDED, Threads),
    (RINGCAST_LOSSY_APART, Threads),
    (RINGCAST_BOUNDED_APART, Threads),
    (DISRUPTOR, Threads),
    (CROSSBEAM, Threads),
    (PHOTON_LOSSY, Threads),
    (PHOTON_BOUNDED, Threads),
    (RINGCAST_LOSSY, Processes),
    (RINGCAST_BOUNDED, Processes),
    (ICEORYX2_LOSSY, Processes),
    (ICEORYX2_LOSSLESS, Processes),
    (PHOTON_LOSSY, Processes),
];

/// Every peer that has a row, in [`PEERS`] order.
pub fn configured() -> Vec<Info> {
    PEERS
        .iter()
        .map(|p| p.info())
        .filter(|info| {
            LATENCY_PATHS
                .iter()
                .chain(THROUGHPUT_PATHS.iter())
                .any(|(p, _)| p.info().key == info.key)
        })
        .collect()
}

/// `paths` of the peers whose keys `only` lists (all of them when `None`);
/// an unknown key is an error naming the known ones.
pub fn selected(paths: &[Path], only: Option<&[String]>) -> Result<Vec<Path>, String> {
    let Some(only) = only else {
        return Ok(paths.to_vec());
    };
    let known: Vec<&str> = PEERS.iter().map(|p| p.info().key).collect();
    if let Some(bad) = only.iter().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "--only: no peer has key {bad:?}; the keys are {}",
            known.join(", ")
        ));
    }
    Ok(paths
        .iter()
        .copied()
        .filter(|(p, _)| only.iter().any(|k| k == p.info().key))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keeps_the_named_peers_and_refuses_unknown_keys() {
        let keys =
            |paths: Vec<Path>| -> Vec<&str> { paths.iter().map(|(p, _)| p.info().key).collect() };
        assert_eq!(
            keys(selected(&THROUGHPUT_PATHS, None).unwrap()).len(),
            THROUGHPUT_PATHS.len()
        );
        let only = ["disruptor".to_owned(), "ringcast-bounded".to_owned()];
        assert_eq!(
            keys(selected(&THROUGHPUT_PATHS, Some(&only)).unwrap()),
            ["ringcast-bounded", "disruptor", "ringcast-bounded"]
        );
        let Err(err) = selected(&LATENCY_PATHS, Some(&["nope".to_owned()])) else {
            panic!("an unknown key was accepted");
        };
        assert!(
            err.contains("\"nope\"") && err.contains("ringcast-lossy"),
            "{err}"
        );
    }
}
