//! Subscriber groups: one read of a ring serving several consumers of one
//! process.
//!
//! A process that hands the same stream to N components (a risk check, a PnL
//! book, a recorder) could attach N subscribers, but each one is a record in
//! the ring's subscriber table (a bounded resource, scanned by bounded-ring
//! publishers) and each copies every message out of shared memory. A
//! [`SubscriberGroup`] owns ONE [`Subscriber`], reads the ring once into a
//! process-local buffer, and gives each named consumer its own cursor
//! through that buffer.
//!
//! The buffer is bounded by the slowest consumer: the group reads from the
//! ring only into free space, `buffer - (newest buffered - slowest
//! consumer)`. A slow consumer therefore holds the whole group back, which
//! on a bounded ring holds the publisher back (nothing is lost) and on a
//! lossy ring lets the publisher lap the group: every consumer then counts
//! the same messages lost.
//!
//! Loss is exact. The group reads in batches with
//! [`Subscriber::try_recv_rows_seq`], which reports the ring sequence of
//! every row (a lap, or the slots of a dead producer, may be skipped between
//! any two rows), and keeps each buffered message's sequence. A consumer's
//! position is the sequence of the next message it takes (the group's ring
//! position once it has taken everything buffered), so `received + lost ==
//! position - start` holds for every consumer at every moment.
//!
//! This type does no waiting and no locking: it is one value, used by one
//! thread at a time. Bindings that share it between threads wait outside
//! their lock, on [`SubscriberGroup::wait_handle`] when the group has room
//! and the ring has nothing, or for a slower consumer to make room when the
//! buffer is full ([`SubscriberGroup::take`] says when it made enough).

use super::{Subscriber, WaitHandle};
use crate::error::{ArgumentError, RecvError, Result};

/// Largest buffer of a group, in messages.
pub const MAX_BUFFER: usize = 1 << 20;

/// Most free slots below which a consumer making room says so (see
/// [`SubscriberGroup::take`]): waking a waiter for every message the
/// slowest consumer takes would have it read one message per wake-up.
const MAX_WAKE_ROOM: usize = 512;

/// One ring subscriber shared by named consumers; see the module docs.
pub struct SubscriberGroup {
    /// `None` once closed (the ring record is given back; counters stay).
    sub: Option<Subscriber>,
    name: String,
    consumers: Vec<String>,
    /// Messages each consumer has taken, which is also the absolute buffer
    /// index of its next message. Invariant: `head - size <= cursor <= head`.
    cursors: Vec<u64>,
    /// Messages buffered so far: the absolute index of the next one.
    head: u64,
    /// Buffer capacity, in messages.
    size: usize,
    /// Bytes per buffered message: the ring's slot size.
    row: usize,
    /// Message `i` (absolute index) lives in slot `i % size`: its bytes at
    /// `data[slot * row..]`, its length in `lens[slot]`, its ring sequence
    /// in `seqs[slot]`. Slots from the slowest cursor to `head` hold
    /// messages; sequences grow strictly with the index. The vectors reserve
    /// the whole buffer up front and grow into it as the first lap of the
    /// buffer is written (a large buffer costs memory only once used).
    data: Vec<u8>,
    lens: Vec<u32>,
    seqs: Vec<u64>,
    /// Sequence the group started at.
    start: u64,
    /// The subscriber's position as of the last read (kept after close).
    position: u64,
    /// Free slots at which a consumer making room says so.
    wake_room: usize,
}

/// Messages a consumer can take, borrowed from the buffer (see
/// [`SubscriberGroup::peek`]).
pub struct Buffered<'a> {
    group: &'a SubscriberGroup,
    first: u64,
    len: usize,
}

impl<'a> Buffered<'a> {
    /// How many messages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Message `i`'s bytes (`i < len()`).
    pub fn message(&self, i: usize) -> &'a [u8] {
        assert!(i < self.len, "message {i} of {} buffered", self.len);
        let g = self.group;
        let slot = g.slot(self.first + i as u64);
        let at = slot * g.row;
        &g.data[at..at + g.lens[slot] as usize]
    }

    /// Every message's whole row, in order, as at most two runs of
    /// contiguous rows (two when they wrap around the end of the buffer).
    /// For fixed-size rings, where every message fills its row.
    pub fn rows(&self) -> [&'a [u8]; 2] {
        let g = self.group;
        let slot = g.slot(self.first);
        let end = slot + self.len;
        if end <= g.size {
            [&g.data[slot * g.row..end * g.row], &[]]
        } else {
            [
                &g.data[slot * g.row..g.size * g.row],
                &g.data[..(end - g.size) * g.row],
            ]
        }
    }
}

impl SubscriberGroup {
    /// A group of the named `consumers` (unique, non-empty names) over `sub`,
    /// buffering up to `buffer` messages (1 to [`MAX_BUFFER`]). Every
    /// consumer starts where `sub` is.
    pub fn new(
        sub: Subscriber,
        consumers: &[String],
        buffer: usize,
    ) -> Result<Self, ArgumentError> {
        if !(1..=MAX_BUFFER).contains(&buffer) {
            return Err(ArgumentError::GroupBuffer {
                buffer,
                max: MAX_BUFFER,
            });
        }
        if consumers.is_empty() {
            return Err(ArgumentError::NoConsumers);
        }
        for (i, name) in consumers.iter().enumerate() {
            if name.is_empty() {
                return Err(ArgumentError::EmptyConsumerName);
            }
            if consumers[..i].contains(name) {
                return Err(ArgumentError::RepeatedConsumer { name: name.clone() });
            }
        }
        let row = sub.layout().slot_size as usize;
        let bytes = buffer.checked_mul(row);
        let mut data = Vec::new();
        let mut lens = Vec::new();
        let mut seqs = Vec::new();
        let reserved = bytes.is_some_and(|b| {
            data.try_reserve_exact(b).is_ok()
                && lens.try_reserve_exact(buffer).is_ok()
                && seqs.try_reserve_exact(buffer).is_ok()
        });
        if !reserved {
            return Err(ArgumentError::GroupBufferTooLarge { buffer, row });
        }
        let position = sub.position();
        Ok(Self {
            name: sub.name().to_owned(),
            sub: Some(sub),
            consumers: consumers.to_vec(),
            cursors: vec![0; consumers.len()],
            head: 0,
            size: buffer,
            row,
            data,
            lens,
            seqs,
            start: position,
            position,
            wake_room: (buffer / 8).clamp(1, MAX_WAKE_ROOM),
        })
    }

    fn slot(&self, index: u64) -> usize {
        (index % self.size as u64) as usize
    }

    fn slowest(&self) -> u64 {
        self.cursors.iter().copied().min().unwrap_or(self.head)
    }

    fn space_after(&self, slowest: u64) -> usize {
        self.size - (self.head - slowest) as usize
    }

    fn open(&self) -> Result<&Subscriber, RecvError> {
        self.sub.as_ref().ok_or_else(|| RecvError::GroupClosed {
            name: self.name.clone(),
        })
    }

    /// Reads what the ring holds now into the buffer's free space, without
    /// waiting; returns how many messages were buffered. A read error is
    /// returned only when nothing was buffered (it comes back on the next
    /// read), so that no message read is held back by it.
    pub fn fill(&mut self) -> Result<usize, RecvError> {
        self.open()?;
        let (size, row) = (self.size, self.row);
        let mut got = 0;
        loop {
            let space = self.space();
            if space == 0 {
                break;
            }
            // Free slots from `head` on, up to the end of the buffer.
            let slot = (self.head % size as u64) as usize;
            let room = space.min(size - slot);
            if self.seqs.len() < slot + room {
                // First lap of the buffer: within the capacity reserved.
                self.data.resize((slot + room) * row, 0);
                self.lens.resize(slot + room, 0);
                self.seqs.resize(slot + room, 0);
            }
            let sub = self.sub.as_mut().expect("checked open above");
            let lens = &mut self.lens[slot..slot + room];
            let read = sub.try_recv_rows_seq(
                &mut self.data[slot * row..(slot + room) * row],
                row,
                &mut self.seqs[slot..slot + room],
                // Lengths are at most the slot size, a u32.
                |i, len| lens[i] = len as u32,
            );
            self.position = sub.position();
            match read {
                Ok(n) => {
                    self.head += n as u64;
                    got += n;
                    if n < room {
                        break;
                    }
                }
                Err(e) if got == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(got)
    }

    /// Messages consumer `c` can take now: what it has buffered, topped up
    /// from the ring (without waiting) when that is fewer than `want`. A
    /// read error is returned only when `c` has nothing buffered.
    pub fn ready(&mut self, c: usize, want: usize) -> Result<usize, RecvError> {
        self.open()?;
        let have = self.buffered_for(c);
        if have >= want.max(1) {
            return Ok(have);
        }
        match self.fill() {
            Err(e) if have == 0 => Err(e),
            _ => Ok(self.buffered_for(c)),
        }
    }

    /// The next `n` messages of consumer `c` (at most what it has
    /// buffered), without taking them.
    pub fn peek(&self, c: usize, n: usize) -> Buffered<'_> {
        Buffered {
            group: self,
            first: self.cursors[c],
            len: n.min(self.buffered_for(c)),
        }
    }

    /// Consumer `c` takes its next `n` messages (at most what it has
    /// buffered). Returns whether that freed enough buffer space, from less,
    /// for the group to read a stretch of the ring: the moment to wake
    /// consumers waiting for room.
    pub fn take(&mut self, c: usize, n: usize) -> bool {
        let before = self.slowest();
        let n = n.min(self.buffered_for(c)) as u64;
        self.cursors[c] += n;
        let after = self.slowest();
        after != before
            && self.space_after(before) < self.wake_room
            && self.space_after(after) >= self.wake_room
    }

    /// Detaches from the ring (gives its subscriber record back). Counters
    /// stay readable; everything else fails with [`RecvError::GroupClosed`].
    pub fn close(&mut self) {
        self.sub = None;
        self.data = Vec::new();
        self.lens = Vec::new();
    }

    /// Whether [`SubscriberGroup::close`] was called.
    pub fn closed(&self) -> bool {
        self.sub.is_none()
    }

    /// What a wait for the next message the group reads needs (see
    /// [`Subscriber::wait_handle`]).
    pub fn wait_handle(&self) -> Result<WaitHandle, RecvError> {
        Ok(self.open()?.wait_handle())
    }

    /// The group's subscriber (layout, publisher status, ...).
    pub fn subscriber(&self) -> Result<&Subscriber, RecvError> {
        self.open()
    }

    /// Free buffer slots: how many messages the group may read now.
    pub fn space(&self) -> usize {
        self.space_after(self.slowest())
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Consumer names, in the order given.
    pub fn consumers(&self) -> &[String] {
        &self.consumers
    }

    /// The index of the consumer called `name`.
    pub fn consumer(&self, name: &str) -> Option<usize> {
        self.consumers.iter().position(|n| n == name)
    }

    /// Buffer capacity, in messages.
    pub fn buffer(&self) -> usize {
        self.size
    }

    /// Sequence the group (and every consumer) started at.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Sequence of the next message the group reads from the ring.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Messages read from the ring (each once, however many consumers).
    pub fn received(&self) -> u64 {
        self.head
    }

    /// Messages no consumer will see: lapped, or skipped with a dead
    /// producer. `received + lost == position - start`.
    pub fn lost(&self) -> u64 {
        self.position - self.start - self.head
    }

    /// Messages buffered that some consumer has not taken yet.
    pub fn buffered(&self) -> u64 {
        self.head - self.slowest()
    }

    /// Messages published so far, as the ring says now.
    fn cursor(&self) -> Result<u64, RecvError> {
        let sub = self.open()?;
        Ok(sub.position() + sub.lag())
    }

    /// Messages published that the group has not read from the ring yet.
    pub fn lag(&self) -> Result<u64, RecvError> {
        Ok(self.cursor()? - self.position)
    }

    /// Messages consumer `c` has taken.
    pub fn received_for(&self, c: usize) -> u64 {
        self.cursors[c]
    }

    /// Ring sequence of the next message consumer `c` takes.
    pub fn position_for(&self, c: usize) -> u64 {
        let next = self.cursors[c];
        if next < self.head {
            self.seqs[self.slot(next)]
        } else {
            self.position
        }
    }

    /// Messages consumer `c` will never see, before its position (the same
    /// for every consumer that has got that far).
    pub fn lost_for(&self, c: usize) -> u64 {
        self.position_for(c) - self.start - self.cursors[c]
    }

    /// Messages buffered that consumer `c` has not taken yet.
    pub fn buffered_for(&self, c: usize) -> usize {
        (self.head - self.cursors[c]) as usize
    }

    /// Messages published that consumer `c` has not taken yet.
    pub fn lag_for(&self, c: usize) -> Result<u64, RecvError> {
        Ok(self.cursor()?.saturating_sub(self.position_for(c)))
    }

    /// The publisher closed the ring and consumer `c` has taken everything.
    pub fn ended_for(&self, c: usize) -> Result<bool, RecvError> {
        let sub = self.open()?;
        Ok(self.cursors[c] == self.head && sub.ended())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribe::Start;
    use crate::{CreateOptions, Publisher};
    use std::path::Path;

    fn ring(dir: &Path, name: &str, capacity: u64, bounded: bool) -> Publisher {
        let opts = CreateOptions {
            dir: Some(dir.to_owned()),
            bounded: bounded.then_some(capacity),
            ..CreateOptions::new(capacity, 8)
        };
        Publisher::create(name, &opts).unwrap()
    }

    fn group(dir: &Path, name: &str, start: Start, n: usize, buffer: usize) -> SubscriberGroup {
        let sub = Subscriber::attach(name, Some(dir), start).unwrap();
        let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        SubscriberGroup::new(sub, &names, buffer).unwrap()
    }

    fn publish(p: &mut Publisher, range: std::ops::Range<u64>) {
        for i in range {
            p.publish(&i.to_le_bytes()).unwrap();
        }
    }

    /// Takes up to `n` messages for consumer `c`: their payloads, checking
    /// each against the position the consumer reported before it.
    fn take(g: &mut SubscriberGroup, c: usize, n: usize) -> Vec<u64> {
        let k = g.ready(c, n).unwrap().min(n);
        let mut got = Vec::new();
        for _ in 0..k {
            let before = g.position_for(c);
            let v = u64::from_le_bytes(g.peek(c, 1).message(0).try_into().unwrap());
            got.push(v);
            g.take(c, 1);
            assert_eq!(v, before, "the payload is the ring sequence");
            assert_eq!(
                g.received_for(c) + g.lost_for(c),
                g.position_for(c) - g.start()
            );
        }
        got
    }

    #[test]
    fn the_slowest_consumer_bounds_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = ring(dir.path(), "b", 64, true);
        let mut g = group(dir.path(), "b", Start::Latest, 2, 10);
        publish(&mut p, 0..30);
        assert_eq!(take(&mut g, 0, 100), (0..10).collect::<Vec<_>>());
        assert_eq!((g.space(), g.buffered(), g.position()), (0, 10, 10));
        assert!(take(&mut g, 0, 100).is_empty());
        assert_eq!(g.lag_for(0).unwrap(), 20);
        assert_eq!((g.position_for(1), g.lag_for(1).unwrap()), (0, 30));
        // Room for a stretch only once the slowest has freed `wake_room` (1).
        assert!(!g.take(1, 0));
        assert!(g.ready(1, 3).unwrap() == 10 && g.take(1, 3));
        assert_eq!(take(&mut g, 0, 100), vec![10, 11, 12]);
        assert_eq!(take(&mut g, 1, 100), (3..13).collect::<Vec<_>>());
        assert_eq!((g.received(), g.lost(), g.position()), (13, 0, 13));
    }

    #[test]
    fn a_lapped_group_counts_the_same_loss_for_every_consumer() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = ring(dir.path(), "l", 16, false);
        let mut g = group(dir.path(), "l", Start::Latest, 3, 8);
        publish(&mut p, 0..5);
        assert_eq!(take(&mut g, 0, 2), vec![0, 1]);
        // The group holds 0..5; the ring is lapped meanwhile. A lapped read
        // resumes at 87 (two past the oldest safe message, 85), in the
        // middle of the group's next batch.
        publish(&mut p, 5..100);
        assert_eq!(take(&mut g, 0, 100), vec![2, 3, 4, 87, 88, 89]);
        for c in 1..3 {
            assert_eq!(take(&mut g, c, 5), (0..5).collect::<Vec<_>>());
            assert_eq!((g.position_for(c), g.lost_for(c)), (87, 82));
        }
        let mut rest = vec![Vec::new(); 3];
        loop {
            let before: usize = rest.iter().map(Vec::len).sum();
            for (c, got) in rest.iter_mut().enumerate() {
                got.extend(take(&mut g, c, 100));
            }
            if rest.iter().map(Vec::len).sum::<usize>() == before {
                break;
            }
        }
        assert_eq!(rest[0], (90..100).collect::<Vec<_>>());
        for c in 0..3 {
            assert_eq!(rest[c][rest[c].len() - 10..], rest[0][..]);
            assert_eq!((g.received_for(c), g.lost_for(c)), (18, 82));
        }
        assert_eq!((g.received(), g.lost(), g.position()), (18, 82, 100));
    }

    #[test]
    fn batches_wrap_around_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = ring(dir.path(), "w", 64, false);
        let mut g = group(dir.path(), "w", Start::Latest, 1, 5);
        publish(&mut p, 0..3);
        assert_eq!(take(&mut g, 0, 3), vec![0, 1, 2]);
        publish(&mut p, 3..8);
        assert_eq!(g.ready(0, 5).unwrap(), 5);
        let b = g.peek(0, 5);
        let [first, second] = b.rows();
        assert_eq!((first.len(), second.len()), (2 * 8, 3 * 8));
        let whole: Vec<u8> = [first, second].concat();
        let want: Vec<u8> = (3u64..8).flat_map(u64::to_le_bytes).collect();
        assert_eq!(whole, want);
    }

    #[test]
    fn end_of_stream_close_and_bad_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = ring(dir.path(), "e", 16, false);
        let mut g = group(dir.path(), "e", Start::Latest, 2, 4);
        publish(&mut p, 0..2);
        p.close();
        assert_eq!(take(&mut g, 0, 10), vec![0, 1]);
        assert!(g.ended_for(0).unwrap() && !g.ended_for(1).unwrap());
        g.close();
        assert!(matches!(g.ready(1, 1), Err(RecvError::GroupClosed { .. })));
        assert!(matches!(g.lag(), Err(RecvError::GroupClosed { .. })));
        assert_eq!(
            (g.received_for(0), g.position_for(0), g.position_for(1)),
            (2, 2, 0)
        );
        let sub = || Subscriber::attach("e", Some(dir.path()), Start::Latest).unwrap();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (consumers, buffer) in [
            (names(&[]), 4),
            (names(&["a", ""]), 4),
            (names(&["a", "a"]), 4),
            (names(&["a"]), 0),
            (names(&["a"]), MAX_BUFFER + 1),
        ] {
            // Only an argument can be wrong: the type says so.
            assert!(SubscriberGroup::new(sub(), &consumers, buffer).is_err());
        }
    }
}
