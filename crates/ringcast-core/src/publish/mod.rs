//! Publishers: the single producer of a ring, or one of several.
//!
//! Single-producer is enforced across processes by an exclusive `flock` on the
//! ring file, held for the publisher's lifetime. The kernel drops the lock when
//! the holder dies, so a restarted publisher can take the ring over: it
//! recovers the cursor from the ring itself and continues the sequence, and
//! subscribers keep reading as if nothing happened.
//!
//! Multi-producer rings take no such lock: every producer holds a record in
//! the ring's producer table (see [`crate::sys::liveness`]) and claims sequences on
//! the shared cursor (see [`crate::protocol`]). Bounded rings make every
//! publisher respect the slowest live subscriber (see [`crate::publish::bounded`]).

mod bounded;
mod builder;
mod multi;
mod open;
mod options;
mod patience;
mod single;

pub use builder::PublisherBuilder;
pub use options::{CreateOptions, Producers};
pub use patience::Patience;

use crate::error::{ArgumentError, PublishError, Result, RingFault};
use crate::format::layout::{
    Layout, PUBLISHER_CLOSED, PUBLISHER_LOCK_OFFSET, PUBLISHER_OPEN, RECORD_ACTIVE,
};
use crate::memory::{self, EndMemory, MemoryReport};
use crate::protocol::{stamp, Slots};
use crate::shm::backing::RingIdentity;
use crate::shm::ring::RingMap;
use crate::sys::clock;
use crate::sys::liveness;
use crate::wait::WaitStrategy;
use multi::Multi;
use single::Single;
use std::path::Path;
use std::sync::atomic::Ordering;

/// A publisher of a ring. Dropping it closes the ring (see [`Publisher::close`]).
pub struct Publisher {
    ring: RingMap,
    generation: u64,
    identity: RingIdentity,
    /// This process takes part in the asymmetric wake-up barrier.
    membarrier_registered: bool,
    /// Wake syscalls that found nobody asleep.
    fruitless_wakes: u64,
    /// Process that created this value: a forked child must not close the
    /// parent's ring when its copy is dropped.
    owner_pid: u32,
    /// Which producer this is: the only one, or one of several.
    flavor: Flavor,
    /// How to wait for room (bounded) or for a slot's previous lap.
    strategy: WaitStrategy,
    /// What this publisher did to its thread and mapping.
    end_memory: EndMemory,
    /// Why a `huge_pages="prefer"` ring got normal pages.
    huge_fallback: Option<String>,
}

/// The producer side of a ring, one mode per file: the public type
/// dispatches on it (bounded rings add a [`bounded::Room`] to either).
enum Flavor {
    /// The only producer ([`single`]).
    Single(Single),
    /// One of several producers ([`multi`]).
    Multi(Multi),
}

/// What [`Publisher::send`] writes into the sequences it reserves.
enum Fill<M, T> {
    /// Message `i` of the batch is `M(i)` (already size-checked), published
    /// at `T(i)`.
    Messages(M, T),
    /// No message: the sequences are declared lost (single producer only).
    Lost,
}

/// A message of a [`Fill::Messages`] batch, by index.
type MessageAt = fn(usize) -> &'static [u8];

/// [`Fill::Lost`], its unused closure types named.
const LOST: Fill<MessageAt, fn(usize) -> u64> = Fill::Lost;

/// What [`Publisher::publish_now`] did.
enum Published {
    /// Published message `seq`; nobody parked.
    Done(u64),
    /// Published message `seq`; subscribers are parked and must be woken.
    Parked(u64),
    /// Nothing: the slow path's case (a bounded ring without room, several
    /// producers, a message that does not fit, the last sequence reached).
    NotYet,
}

/// Fruitless wake syscalls between two sweeps for dead subscriber records.
const FRUITLESS_WAKES_BEFORE_SWEEP: u64 = 1024;

impl Publisher {
    /// Publishes one message, waiting for room in a bounded ring as long as
    /// it takes; returns its sequence number.
    #[inline]
    pub fn publish(&mut self, msg: &[u8]) -> Result<u64, PublishError> {
        self.publish_with(msg, Patience::forever())
    }

    /// Publishes one message if a bounded ring has room for it now, else
    /// fails with [`PublishError::RingFull`] (lossy rings always have room).
    #[inline]
    pub fn try_publish(&mut self, msg: &[u8]) -> Result<u64, PublishError> {
        self.publish_with(msg, Patience::never())
    }

    /// Publishes one message, waiting for room as `patience` says. On a ring
    /// with timestamps the message carries the time of this call.
    #[inline]
    pub fn publish_with(
        &mut self,
        msg: &[u8],
        patience: Patience<'_>,
    ) -> Result<u64, PublishError> {
        self.publish_one(msg, None, patience)
    }

    /// Publishes one message carrying `time` (ns on [`crate::sys::clock`], or any
    /// clock the subscribers share) as its publish time instead of now: the
    /// time it was due, so that a paced sender that falls behind is charged
    /// for the delay (no coordinated omission), or an upstream event time.
    /// Fails with [`ArgumentError::PublishTimeWithoutTimestamps`] on rings
    /// without timestamps.
    #[inline]
    pub fn publish_at(
        &mut self,
        msg: &[u8],
        time: u64,
        patience: Patience<'_>,
    ) -> Result<u64, PublishError> {
        if !self.ring.layout().timestamps() {
            return Err(ArgumentError::PublishTimeWithoutTimestamps {
                name: self.ring.name().to_owned(),
            }
            .into());
        }
        self.publish_one(msg, Some(time), patience)
    }

    /// Publishes one message (`time`: its publish time, `None`: now on
    /// rings with timestamps).
    ///
    /// The common case, a single producer with room (always, on a lossy
    /// ring) and nobody parked, is inlined into the caller with no store
    /// but the ring's and the sequence's; everything else is out of line.
    /// That is a measured cost, not tidiness: while a subscriber reads the
    /// ring, every slot line the publisher stores into must first be taken
    /// back from the reader's cache, and the stores wait in the CPU's store
    /// buffer until it is. Any other store (a call's register saves, a
    /// `Patience` or a `Result` built in memory) waits in the same queue
    /// and leaves room for fewer messages in flight: each dozen such stores
    /// cost ~10 ns a message (docs/benchmarks.md, "Stores in flight").
    #[inline(always)]
    fn publish_one(
        &mut self,
        msg: &[u8],
        time: Option<u64>,
        patience: Patience<'_>,
    ) -> Result<u64, PublishError> {
        // Read once: the slow path publishes with the same time.
        let time = self.time_or_now(time);
        match self.publish_now(msg, time) {
            Published::Done(seq) => Ok(seq),
            Published::Parked(seq) => self.woken_after(seq),
            // In parts, not whole: a whole `Patience` is passed by address,
            // so it would live in memory and be stored there on every
            // call, fast path included; its parts are passed as values,
            // made only here.
            Published::NotYet => {
                let Patience {
                    wait_for_room,
                    deadline,
                    slice,
                    between,
                } = patience;
                self.publish_one_slow(msg, time, wait_for_room, deadline, slice, between)
            }
        }
    }

    /// The fast path of [`Publisher::publish_one`]: a single producer with
    /// room (always, on a lossy ring) publishes a message that fits at
    /// once, with nothing to claim or wait for. Everything else, errors
    /// included, is left to the slow path ([`Published::NotYet`]). Takes no
    /// [`Patience`] and returns no error, both of which would live in memory.
    #[inline(always)]
    fn publish_now(&mut self, msg: &[u8], time: u64) -> Published {
        if !self.size_fits(msg.len()) {
            return Published::NotYet;
        }
        let Flavor::Single(single) = &mut self.flavor else {
            return Published::NotYet;
        };
        let Some((seq, _)) = single.reserve(&self.ring, 1).filter(|_| single.fits(1)) else {
            return Published::NotYet;
        };
        single.write(&self.ring, seq, 1, |_| msg, |_| time);
        if self.ring.nobody_parked(self.membarrier_registered) {
            Published::Done(seq)
        } else {
            Published::Parked(seq)
        }
    }

    /// Message `seq` is published and subscribers are parked: wakes them.
    #[cold]
    #[inline(never)]
    fn woken_after(&mut self, seq: u64) -> Result<u64, PublishError> {
        self.wake_parked_slow()?;
        Ok(seq)
    }

    /// [`Publisher::publish_one`] when the fast path does not apply: several
    /// producers, a bounded ring without room, or an error. Takes the
    /// patience in parts (see `publish_one`).
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn publish_one_slow(
        &mut self,
        msg: &[u8],
        time: u64,
        wait_for_room: bool,
        deadline: Option<std::time::Instant>,
        slice: Option<std::time::Duration>,
        between: Option<&mut dyn FnMut() -> bool>,
    ) -> Result<u64, PublishError> {
        let patience = Patience {
            wait_for_room,
            deadline,
            slice,
            between,
        };
        self.check_size(msg.len())?;
        self.send(1, Fill::Messages(|_| msg, |_| time), patience)
    }

    /// The publish time of a message: `given`, or now on rings with
    /// timestamps (one clock read, ~20 ns), 0 on rings without.
    #[inline]
    fn time_or_now(&self, given: Option<u64>) -> u64 {
        match given {
            Some(time) => time,
            None if self.ring.layout().timestamps() => clock::now_ns(),
            None => 0,
        }
    }

    /// Publishes every message of `msgs` (each checked first: on an error
    /// nothing is published), waking parked subscribers once at the end.
    /// Returns the sequence of the first message (on multi-producer rings,
    /// other producers' messages may come between the batch's messages).
    pub fn publish_all<'a, I>(
        &mut self,
        msgs: I,
        patience: Patience<'_>,
    ) -> Result<u64, PublishError>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        let msgs: Vec<&[u8]> = msgs.into_iter().collect();
        for msg in &msgs {
            self.check_size(msg.len())?;
        }
        let time = self.time_or_now(None);
        self.send(msgs.len(), Fill::Messages(|i| msgs[i], |_| time), patience)
    }

    /// Publishes `data` as consecutive messages of exactly `slot_size` bytes
    /// each (fixed-size rings); returns the sequence of the first message.
    pub fn publish_records(
        &mut self,
        data: &[u8],
        patience: Patience<'_>,
    ) -> Result<u64, PublishError> {
        let size = self.ring.slot_size();
        if data.len() % size != 0 {
            return Err(ArgumentError::BatchNotWholeRecords {
                len: data.len(),
                record: size,
            }
            .into());
        }
        let time = self.time_or_now(None);
        self.send(
            data.len() / size,
            Fill::Messages(|i| &data[i * size..(i + 1) * size], |_| time),
            patience,
        )
    }

    /// Publishes `count` messages, message `i` being `msg_at(i)` and
    /// carrying publish time `time_at(i)` (ns on [`crate::sys::clock`], or
    /// any clock the subscribers share): a replay of recorded messages at
    /// their recorded or due times. Every message is size-checked first (on
    /// an error nothing is published); parked subscribers are woken once.
    /// Returns the first message's sequence. Fails with
    /// [`ArgumentError::PublishTimeWithoutTimestamps`] on rings without
    /// timestamps.
    pub fn publish_batch_at<'m>(
        &mut self,
        count: usize,
        msg_at: impl Fn(usize) -> &'m [u8],
        time_at: impl Fn(usize) -> u64,
        patience: Patience<'_>,
    ) -> Result<u64, PublishError> {
        if !self.ring.layout().timestamps() {
            return Err(ArgumentError::PublishTimeWithoutTimestamps {
                name: self.ring.name().to_owned(),
            }
            .into());
        }
        for i in 0..count {
            self.check_size(msg_at(i).len())?;
        }
        self.send(count, Fill::Messages(msg_at, time_at), patience)
    }

    /// Declares the next `count` sequences lost: the ring's sequence moves
    /// past them without messages, and every subscriber counts them in its
    /// `lost` (as if it had been lapped over them), exactly once. For a
    /// bridge that republishes another ring's messages with their original
    /// sequences, over the messages it never got. Returns the first
    /// sequence declared (the current sequence when `count` is 0, which
    /// does nothing).
    ///
    /// A bounded ring's room is respected as by [`Publisher::publish_all`]:
    /// a lost sequence overwrites a slot like a message, so it waits for
    /// room as `patience` says, and fails with the same
    /// [`PublishError::RingFull`] or [`PublishError::Timeout`] (the
    /// sequences declared before it are counted as published). Parked
    /// subscribers are woken once at the end. On a lossy ring at most
    /// `capacity` slots are written whatever `count` is; on a bounded one
    /// every sequence is.
    ///
    /// Only the ring's only producer can do this: fails with
    /// [`ArgumentError::WrongMode`] on multi-producer rings, and with
    /// [`ArgumentError::BeyondLastSequence`] (as publishing would) if the
    /// sequence would pass [`crate::protocol::stamp::MAX_SEQ`].
    pub fn publish_lost(
        &mut self,
        count: u64,
        patience: Patience<'_>,
    ) -> Result<u64, PublishError> {
        match usize::try_from(count) {
            Ok(count) => self.send(count, LOST, patience),
            Err(_) => Err(self.beyond_last_sequence(count).into()),
        }
    }

    /// Fills `count` sequences as `fill` says (messages, or declared
    /// lost), claiming them and waiting for room as the ring's modes
    /// require. Returns the first sequence.
    fn send<'m, M, T>(
        &mut self,
        count: usize,
        fill: Fill<M, T>,
        mut patience: Patience<'_>,
    ) -> Result<u64, PublishError>
    where
        M: Fn(usize) -> &'m [u8],
        T: Fn(usize) -> u64,
    {
        match &self.flavor {
            // Declaring needs the cursor to be ours: other producers' claims
            // may be anywhere in between (their dead ones are declared by
            // recovery, see `crate::shm::ring::recovery`).
            Flavor::Multi(_) if matches!(fill, Fill::Lost) => {
                return Err(ArgumentError::WrongMode {
                    name: self.ring.name().to_owned(),
                    detail: "declaring sequences lost needs the ring's only producer; this \
                             ring has several (publish_lost is for single-producer rings)"
                        .into(),
                }
                .into());
            }
            Flavor::Single(single) if !single.fits(count as u64) => {
                return Err(self.beyond_last_sequence(count as u64).into());
            }
            _ => {}
        }
        let mut done = 0usize;
        let mut first_seq = None;
        while done < count {
            let want = (count - done) as u64;
            let reserved = match &mut self.flavor {
                Flavor::Single(single) => single.reserve(&self.ring, want),
                Flavor::Multi(multi) => multi.reserve(&self.ring, want),
            };
            let Some((first, n)) = reserved else {
                if done > 0 {
                    self.wake_parked()?;
                }
                self.wait_for_room(&mut patience, done, count)?;
                continue;
            };
            first_seq.get_or_insert(first);
            let (msg_at, time_at) = match &fill {
                Fill::Messages(msg_at, time_at) => (msg_at, time_at),
                Fill::Lost => {
                    let Flavor::Single(single) = &mut self.flavor else {
                        unreachable!("multi-producer rings were refused above");
                    };
                    single.write_lost(&self.ring, first, n);
                    done += n as usize;
                    continue;
                }
            };
            let batch = |j: u64| msg_at(done + j as usize);
            let times = |j: u64| time_at(done + j as usize);
            match &mut self.flavor {
                Flavor::Single(single) => single.write(&self.ring, first, n, batch, times),
                Flavor::Multi(multi) => {
                    if let Err(stop) =
                        multi.write(&self.ring, first, n, batch, times, &mut patience)
                    {
                        if stop.wakes_readers() {
                            self.wake_parked()?;
                        }
                        return Err(stop.into_error(&self.ring, done, count));
                    }
                }
            }
            done += n as usize;
        }
        self.wake_parked()?;
        Ok(first_seq.unwrap_or(self.sequence()))
    }

    /// The error for publishing or declaring `count` more sequences that
    /// would take the cursor past [`crate::protocol::stamp::MAX_SEQ`].
    #[cold]
    fn beyond_last_sequence(&self, count: u64) -> ArgumentError {
        ArgumentError::BeyondLastSequence {
            name: self.ring.name().to_owned(),
            next: self.sequence(),
            count,
            max: stamp::MAX_SEQ,
        }
    }

    /// Waits (per `patience`) until a bounded ring may have room; `done` of
    /// `count` messages went out.
    fn wait_for_room(
        &mut self,
        patience: &mut Patience<'_>,
        done: usize,
        count: usize,
    ) -> Result<(), PublishError> {
        let (room, own_next) = match &mut self.flavor {
            Flavor::Single(single) => (single.room.as_mut(), Some(single.next)),
            Flavor::Multi(multi) => (multi.room.as_mut(), None),
        };
        let room = room.expect("only bounded rings are ever full");
        let ring = &self.ring;
        let next = move || own_next.unwrap_or_else(|| ring.cursor().load(Ordering::Acquire));
        bounded::wait_for_room(ring, room, next, self.strategy, patience, done, count)
    }

    /// Wakes parked subscribers: after every publish, one load of the
    /// waiter count while nobody is parked. A revoked mapping (see
    /// [`crate::shm::guard`]) reads a non-zero count, so this is also where a
    /// publish finds out that its ring's memory is gone.
    #[inline]
    fn wake_parked(&mut self) -> Result<(), RingFault> {
        if self.ring.nobody_parked(self.membarrier_registered) {
            return Ok(());
        }
        self.wake_parked_slow()
    }

    /// [`Publisher::wake_parked`] when someone may be parked. A waiter count
    /// with nobody asleep behind it over many publishes means a subscriber
    /// died parked: its record is released (rarely: the sweep costs a
    /// syscall per record).
    #[cold]
    #[inline(never)]
    fn wake_parked_slow(&mut self) -> Result<(), RingFault> {
        self.ring.usable()?;
        if self.ring.wake_all_parked() == 0 {
            self.fruitless_wakes += 1;
            if self.fruitless_wakes % FRUITLESS_WAKES_BEFORE_SWEEP == 0 {
                self.ring.release_dead_records(None);
            }
        }
        Ok(())
    }

    /// Fails if this publisher can no longer be used: its ring file shrank
    /// under it ([`RingFault::Corrupt`]), or this process is a fork() child of
    /// the one that opened it ([`RingFault::UsedAfterFork`]). Publishing finds
    /// this out by itself; this is for everything else.
    pub fn check_usable(&self) -> Result<(), RingFault> {
        self.ring.usable()
    }

    #[inline]
    fn check_size(&self, len: usize) -> Result<(), PublishError> {
        if !self.size_fits(len) {
            return Err(self.size_error(len));
        }
        Ok(())
    }

    /// Whether a message of `len` bytes suits this ring's slots.
    #[inline]
    fn size_fits(&self, len: usize) -> bool {
        let slot_size = self.ring.slot_size();
        len <= slot_size && (len == slot_size || !self.ring.layout().fixed_size())
    }

    /// Why a message of `len` bytes does not fit this ring.
    #[cold]
    #[inline(never)]
    fn size_error(&self, len: usize) -> PublishError {
        let slot_size = self.ring.slot_size();
        if len > slot_size {
            PublishError::MessageTooLarge { len, slot_size }
        } else {
            ArgumentError::RecordSizeMismatch { len, slot_size }.into()
        }
    }

    /// Sequence number the next message will get. On multi-producer rings:
    /// the next sequence any producer will claim (a snapshot).
    pub fn sequence(&self) -> u64 {
        match &self.flavor {
            Flavor::Single(single) => single.next,
            Flavor::Multi(_) => self.ring.cursor().load(Ordering::Acquire),
        }
    }

    /// Messages this producer has published (multi-producer rings), or the
    /// ring's sequence (single producer).
    pub fn published(&self) -> u64 {
        match &self.flavor {
            Flavor::Single(single) => single.next,
            Flavor::Multi(multi) => multi.published(&self.ring),
        }
    }

    /// How many publishers have opened this ring, this one included.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Subscribers evicted from this (bounded) ring so far, by any publisher.
    pub fn evictions(&self) -> u64 {
        self.ring.header().table.0.evictions.load(Ordering::Relaxed)
    }

    /// Subscribers currently attached (in a bounded ring: those gating it).
    pub fn subscriber_count(&self) -> usize {
        (0..self.ring.records_in_use())
            .filter(|&i| self.ring.record(i).state.load(Ordering::Acquire) == RECORD_ACTIVE)
            .count()
    }

    /// Producers currently attached to a multi-producer ring (1 otherwise).
    pub fn producer_count(&self) -> usize {
        match &self.flavor {
            Flavor::Single(_) => 1,
            Flavor::Multi(multi) => 1 + self.ring.live_producers(Some(multi.index)),
        }
    }

    /// Test hook: after claiming sequence `seq`, mark its slot as being
    /// written and stop the whole process with SIGSTOP, so that a test can
    /// kill it between claim and commit. Multi-producer rings only.
    #[cfg(feature = "test-hooks")]
    pub fn stop_after_claim(&mut self, seq: u64) -> Result<(), ArgumentError> {
        let Flavor::Multi(multi) = &mut self.flavor else {
            return Err(ArgumentError::WrongMode {
                name: self.ring.name().to_owned(),
                detail: "the claim hook applies to multi-producer rings only".into(),
            });
        };
        multi.stop_after_claim = Some(seq);
        Ok(())
    }

    /// Test hook: when this producer closes, stop the whole process with
    /// SIGSTOP once the other producers no longer count it and before it
    /// closes the stream (if it is the last), so that a test can look at
    /// the ring meanwhile. Multi-producer rings only.
    #[cfg(feature = "test-hooks")]
    pub fn stop_while_leaving(&mut self) -> Result<(), ArgumentError> {
        let Flavor::Multi(multi) = &mut self.flavor else {
            return Err(ArgumentError::WrongMode {
                name: self.ring.name().to_owned(),
                detail: "the leaving hook applies to multi-producer rings only".into(),
            });
        };
        multi.stop_while_leaving = true;
        Ok(())
    }

    /// The ring's layout.
    pub fn layout(&self) -> &Layout {
        self.ring.layout()
    }

    /// Path of the ring file.
    pub fn path(&self) -> &Path {
        self.ring.path()
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        self.ring.name()
    }

    /// Closes this publisher. When it was the last producer, subscribers
    /// that have read everything learn that the stream ended. The file stays
    /// (see [`Publisher::unlink`]).
    pub fn close(self) {
        drop(self)
    }

    /// Where the ring's memory is and what this publisher did to it (locked,
    /// prefaulted, pinned), with the NUMA node of a sample of its pages.
    pub fn memory(&self) -> MemoryReport {
        memory::report(&self.ring, self.end_memory, self.huge_fallback.clone())
    }

    /// Which file this ring is (for [`RingIdentity::unlink`] after closing).
    pub fn identity(&self) -> &RingIdentity {
        &self.identity
    }

    /// Removes the ring file (if it is still this ring's). Subscribers already
    /// attached keep their mapping; new ones no longer find the ring.
    pub fn unlink(&self) -> Result<(), RingFault> {
        self.identity.unlink()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if std::process::id() != self.owner_pid {
            return; // a forked child's copy: the ring is still the parent's
        }
        let state = &self.ring.header().publisher.0.state;
        if let Flavor::Multi(multi) = &self.flavor {
            // Invariant: once subscribers see no producer lock held, a
            // stream closed cleanly is already CLOSED; otherwise a subscriber
            // that has read everything takes the close for a death
            // (`RingMap::publisher_death`: PublisherDied, not Closed). So the
            // last producer out closes while it still holds its lock: it
            // first stops counting as a producer (of several leaving at once,
            // the last one to do so sees all the others gone), closes if no
            // other producer is left, and only then unlocks.
            self.ring.leave_producer(multi.index);
            #[cfg(feature = "test-hooks")]
            if multi.stop_while_leaving {
                crate::sys::process::stop_self();
            }
            // A producer joining at the same moment stores OPEN after
            // claiming its record; the second look puts OPEN back if we
            // raced with one.
            if self.ring.live_producers(None) == 0 {
                state.store(PUBLISHER_CLOSED, Ordering::SeqCst);
                if self.ring.live_producers(None) != 0 {
                    state.store(PUBLISHER_OPEN, Ordering::SeqCst);
                }
            }
            self.ring.release_producer(multi.index);
        } else {
            // Release: every publish happens before subscribers see the
            // close, and the close before the lock goes (see
            // `RingMap::publisher_death`).
            state.store(PUBLISHER_CLOSED, Ordering::Release);
            liveness::unlock(self.ring.file(), PUBLISHER_LOCK_OFFSET);
        }
        // Parked subscribers must learn that the stream ended.
        self.ring.wake_parked(self.membarrier_registered);
    }
}
