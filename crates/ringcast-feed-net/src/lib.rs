//! ringcast-feed-net: MoldUDP64 over UDP (multicast and unicast).
//!
//! Layers, each using only the ones above it:
//! - [`udp`]: the sockets, and the only unsafe code of the crate (socket
//!   options, `recvmmsg` with kernel receive timestamps, `poll`);
#![deny(unsafe_op_in_unsafe_fn)]

pub mod udp;
