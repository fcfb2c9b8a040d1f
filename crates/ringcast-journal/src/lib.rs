//! ringcast-journal: capture and replay of rings.
//!
//! A *journal* is a directory of segment files holding every message of one
//! ring with its sequence and publish time, a CRC32C per entry, and gap
//! entries for messages the recorder never saw (see [`format`]). Layers:
//! - [`format`]: the bytes on disk (pure, no I/O), and [`crc`]: entry CRCs
//!   computed several side by side;
//! - [`writer`]: appending, rolling, sealing, syncing, crash recovery;
//! - [`reader`]: mapped segments, seeks by sequence and time, and the one
//!   walk that accounts for every sequence ([`reader::Entries`]);
//! - [`verify`]: the whole journal checked, with an exact account;
//! - [`record`] and [`replay`]: a ring into a journal (a durable stage on
//!   bounded rings), and a journal into a ring at its original pace, faster,
//!   or flat out.

pub mod crc;
pub mod error;
pub mod format;
pub mod reader;
pub mod record;
pub mod replay;
pub mod verify;
pub mod writer;

pub use error::JournalError;
pub use format::{Body, Entry, RingDescription};
pub use reader::{Item, Journal, Position, Unreadable, Why};
pub use record::{record, FirstMessage, RecordOptions, RecordReport};
pub use replay::{replay, Bound, Pace, ReplayOptions, ReplayReport, Stamp};
pub use verify::{verify, VerifyReport};
pub use writer::{Fsync, JournalWriter, Recovery, WriterOptions, WriterStats};
