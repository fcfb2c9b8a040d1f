//! ringcast-feed-net: MoldUDP64 over UDP (multicast and unicast).
//!
//! Layers, each using only the ones above it:
//! - [`udp`]: the sockets, and the only unsafe code of the crate (socket
//!   options, `recvmmsg` with kernel receive timestamps, `poll`);
//! - [`store`]: a day's messages by sequence number, and the packets of
//!   a capture to replay;
//! - [`capture`]: the handler's wire capture (pcapng);
//! - [`sender`]: the MoldUDP64 sender and retransmission server;
//! - [`handler`]: the feed handler (A/B arbitration, gaps, retransmission
//!   requests, in-order delivery, an exact account of what was lost);
//! - [`rings`]: decoded records into typed rings, one per message type,
//!   and the whole stream in order;
//! - [`books`]: the book builder, from the stream to the book ring.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod books;
pub mod capture;
pub mod handler;
pub mod rings;
pub mod sender;
pub mod store;
pub mod udp;
