//! The book builder as a ring stage: reads the feed handler's in-order
//! stream (`<bus>.itch`), keeps every instrument's price-level book
//! ([`BookBuilder`]) and publishes one [`BookUpdate`] per level change,
//! with the top of book after it and the causing message's receive time,
//! into `<bus>.book`, the ring strategies read.
//!
//! Books are only as good as the stream: a stream lapped on a lossy ring
//! (the builder fell a whole ring behind) is counted in `lost`, and every
//! message the books then cannot apply in `book_errors`; run the handler
//! with bounded rings to make the builder hold it back instead.

use crate::rings::{record_ring, stream_name};
use ringcast_core::{Error, Publisher, RecvError, Start, Subscriber, WaitStrategy, Waiter};
use ringcast_feed::book::{BookBuilder, BOOK_UPDATE};
use ringcast_feed::itch::decode;
use ringcast_feed::record::RAW_MESSAGE_SIZE;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The book ring of bus `bus`.
pub fn book_name(bus: &str) -> String {
    format!("{bus}.book")
}

/// How the book builder runs.
#[derive(Debug, Clone)]
pub struct BookOptions {
    /// The bus whose `itch` stream it reads and `book` ring it writes.
    pub bus: String,
    /// The ring directory (`None`: `RINGCAST_DIR`, else the default).
    pub dir: Option<PathBuf>,
    /// Slots of the book ring.
    pub capacity: u64,
    /// A bounded book ring (slow strategies hold the builder back).
    pub bounded: bool,
    /// Where in the stream to start: `Oldest` rebuilds from the oldest
    /// message still in the ring (from the day's start when it holds the
    /// day).
    pub start: Start,
}

impl BookOptions {
    /// Lossy book ring of 65,536 slots on bus `bus`, from the oldest message.
    pub fn new(bus: &str) -> Self {
        Self {
            bus: bus.to_owned(),
            dir: None,
            capacity: 1 << 16,
            bounded: false,
            start: Start::Oldest,
        }
    }
}

/// What the builder did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookReport {
    /// Messages read from the stream.
    pub messages: u64,
    /// Book updates published.
    pub updates: u64,
    /// Messages the books could not apply (an unknown or duplicate order
    /// reference, more shares than the order has): a stream with losses.
    pub book_errors: u64,
    /// Stream records that did not hold a decodable message.
    pub bad_records: u64,
    /// Stream messages lost to lapping.
    pub lost: u64,
    /// Orders live now.
    pub live_orders: u64,
    /// Times the stream's publisher (the feed handler) died without closing
    /// it: the builder keeps waiting, and a restarted handler continues the
    /// stream's sequence (it takes the ring over), so nothing is missed.
    pub handler_deaths: u64,
    /// The stream ended (the handler closed it) and everything was read.
    pub ended: bool,
}

/// The book builder, attached to its stream and owning its book ring.
pub struct BookService {
    stream: Subscriber,
    books: BookBuilder,
    out: Publisher,
    buf: [u8; RAW_MESSAGE_SIZE],
    waiter: Waiter,
    report: BookReport,
}

impl BookService {
    /// Attaches to `<bus>.itch` and creates (or takes over) `<bus>.book`.
    pub fn open(options: &BookOptions) -> Result<Self, Error> {
        let dir = options.dir.as_deref();
        let stream = Subscriber::attach(&stream_name(&options.bus), dir, options.start)?;
        stream.declare_wait(WaitStrategy::default()); // for `ringcast stat`
        let out = record_ring(
            &book_name(&options.bus),
            &BOOK_UPDATE,
            options.capacity,
            options.bounded,
            dir,
        )?;
        Ok(Self {
            stream,
            books: BookBuilder::new(),
            out,
            buf: [0; RAW_MESSAGE_SIZE],
            waiter: Waiter::new(WaitStrategy::default()),
            report: BookReport::default(),
        })
    }

    /// The books.
    pub fn books(&self) -> &BookBuilder {
        &self.books
    }

    /// What was done so far.
    pub fn report(&self) -> BookReport {
        BookReport {
            lost: self.stream.lost(),
            live_orders: self.books.live_orders() as u64,
            ..self.report.clone()
        }
    }

    /// Applies what the stream holds, waiting for more, for at most about
    /// `budget`; `true` once the stream ended and all of it was applied.
    pub fn poll(&mut self, budget: Duration) -> Result<bool, Error> {
        let until = Instant::now() + budget;
        loop {
            match self.stream.try_recv(&mut self.buf)? {
                Some(_) => self.apply()?,
                None => match self.stream.wait_readable(Some(until), &mut self.waiter) {
                    Ok(()) => {}
                    Err(RecvError::Timeout) => return Ok(false),
                    Err(RecvError::Closed { .. }) => {
                        self.report.ended = true;
                        return Ok(true);
                    }
                    // Reported once per dead publisher: wait for the next.
                    Err(RecvError::PublisherDied { .. }) => {
                        self.report.handler_deaths += 1;
                        return Ok(false);
                    }
                    Err(e) => return Err(e.into()),
                },
            }
        }
    }

    /// Applies the stream record in `buf`.
    fn apply(&mut self) -> Result<(), Error> {
        self.report.messages += 1;
        let recv_ns = u64::from_le_bytes(self.buf[0..8].try_into().expect("8 bytes"));
        let len = usize::from(u16::from_le_bytes([self.buf[16], self.buf[17]]));
        let Some(message) = self.buf.get(18..18 + len) else {
            self.report.bad_records += 1;
            return Ok(());
        };
        let Ok(message) = decode(message) else {
            self.report.bad_records += 1;
            return Ok(());
        };
        match self.books.apply(&message) {
            Ok(updates) => {
                for u in updates.as_slice() {
                    let mut u = *u;
                    u.recv_ns = recv_ns;
                    // A lossy book ring never waits; a bounded one waits for
                    // its slowest reader, as it was asked to.
                    self.out
                        .publish_with(&u.to_bytes(), ringcast_core::Patience::forever())?;
                    self.report.updates += 1;
                }
            }
            Err(_) => self.report.book_errors += 1,
        }
        Ok(())
    }

    /// Closes the book ring (its readers see the end of the stream).
    pub fn close(self) {
        self.out.close();
    }
}
