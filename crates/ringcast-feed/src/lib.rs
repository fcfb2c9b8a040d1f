//! ringcast-feed: NASDAQ TotalView-ITCH 5.0 over MoldUDP64, in pure Rust.
//!
//! Layers, each using only the ones above it in this list:
//! - [`wire`]: big-endian reads and space-padded ASCII text;
//! - [`record`]: the fixed-size little-endian records messages become, and
//!   their machine-readable field descriptions (numpy dtypes);
//! - [`itch`]: the message table, zero-copy typed views, [`itch::decode`],
//!   view-to-record conversion and a message builder;
//! - [`symbols`]: the stock directory (locate <-> symbol) from `R` messages;
//! - [`stats`]: per-type and per-error counts, and the report;
//! - [`file`](mod@file): the ITCH file format (2-byte length prefixes): reader over a
//!   slice or any `Read`, writer;
//! - [`mold`]: MoldUDP64 packets (parse, build, heartbeats, end of session),
//!   retransmission requests and the receiver's sequence tracker;
//! - [`pcap`]: packet captures: a pcapng writer (raw IPv4 + UDP, ns
//!   times), a reader of pcapng and classic pcap files, UDP in frames;
//! - [`gen`]: a deterministic generator of realistic trading days;
//! - [`book`]: per-instrument price-level order books and book updates.
//!
//! No unsafe code, no dependency on `ringcast-core`; every parser returns
//! errors on any input, never panics (property tests and fuzz targets).
//!
//! ```
//! use ringcast_feed::file::SliceReader;
//! use ringcast_feed::gen::{itch_bytes, DayConfig};
//! use ringcast_feed::itch::{Message, MessageType};
//!
//! // A small generated day as an ITCH file, read back into records.
//! let file = itch_bytes(&DayConfig::new(1, 1_000));
//! let mut reader = SliceReader::new(&file);
//! let mut records = Vec::new();
//! for message in reader.by_ref().flatten() {
//!     if let Message::AddOrder(add) = message {
//!         assert!(add.shares() > 0);
//!     }
//!     records.extend_from_slice(message.record(0).as_bytes());
//! }
//! assert_eq!(reader.counts().messages(), 1_000);
//! assert_eq!(MessageType::AddOrder.record().const_name, "ADD_ORDER");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod book;
pub mod file;
pub mod gen;
pub mod itch;
pub mod mold;
pub mod pcap;

pub mod record;
pub mod stats;
pub mod symbols;

pub mod wire;
