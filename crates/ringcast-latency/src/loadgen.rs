//! The measurement loops of `ringcast bench`: a publisher sending at a fixed
//! rate (or flat out) and a reader recording latency, each meant to run
//! alone on its own core in its own process.
//!
//! Paced messages carry the time they were *due*, not the time they were
//! sent, so a publisher that falls behind its schedule (descheduled, or
//! held back by a bounded ring) charges the delay to every message it
//! delayed: the recorded latency is free of coordinated omission. Flat-out
//! messages carry the time of the publish call.
//!
//! Every message's first 8 bytes hold its sequence number (little endian),
//! so the reader can confirm that each message it got is the one it
//! expected; a ring delivering a wrong or torn message shows up as
//! `mismatched`, never as a latency.

use crate::error::{Error, LatencyError};
use ringcast_core::sys::clock;
use ringcast_core::{Patience, Publisher, RecvError, Subscriber, Waiter};
use std::time::{Duration, Instant};

/// How the publisher sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// This many messages per second, each stamped with its due time.
    Rate(f64),
    /// As fast as the ring takes them, each stamped when published.
    FlatOut,
}

/// What a publishing run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishRun {
    /// Messages published.
    pub published: u64,
    /// Paced runs: the latest any message was sent after it was due, ns.
    pub max_behind_ns: u64,
    /// Paced runs: messages sent more than a microsecond after they were due.
    pub late: u64,
}

/// Publishes `size`-byte messages as `pace` says from `start_ns` until
/// `end_ns` (both CLOCK_MONOTONIC ns, see [`clock`]), then returns. Bounded
/// rings make it wait for room as long as needed.
pub fn publish_paced(
    publisher: &mut Publisher,
    size: usize,
    pace: Pace,
    start_ns: u64,
    end_ns: u64,
) -> Result<PublishRun, Error> {
    if let Pace::Rate(rate) = pace {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(LatencyError::Rate(rate).into());
        }
    }
    let mut msg = vec![0u8; size];
    let mut run = PublishRun::default();
    sleep_until(start_ns);
    match pace {
        Pace::Rate(rate) => {
            let period = 1e9 / rate;
            loop {
                let due = start_ns + (run.published as f64 * period) as u64;
                if due >= end_ns {
                    break;
                }
                let mut now = clock::now_ns();
                while now < due {
                    std::hint::spin_loop();
                    now = clock::now_ns();
                }
                let behind = now - due;
                run.max_behind_ns = run.max_behind_ns.max(behind);
                run.late += u64::from(behind > 1_000);
                stamp_sequence(&mut msg, publisher.sequence());
                publisher.publish_at(&msg, due, Patience::forever())?;
                run.published += 1;
            }
        }
        Pace::FlatOut => {
            // Look at the clock every few hundred messages only: at tens of
            // millions per second the clock read would be a third of the cost.
            while clock::now_ns() < end_ns {
                for _ in 0..256 {
                    stamp_sequence(&mut msg, publisher.sequence());
                    publisher.publish(&msg)?;
                }
                run.published += 256;
            }
        }
    }
    Ok(run)
}

/// What a reading run saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadRun {
    /// Messages read.
    pub received: u64,
    /// Messages lost to lapping (lossy rings) meanwhile.
    pub lost: u64,
    /// Messages whose sequence stamp was not their sequence (0 on a sound ring).
    pub mismatched: u64,
    /// The publisher closed the ring and everything was read.
    pub ended: bool,
}

/// Reads messages (the subscriber records their latency if asked to) until
/// `deadline_ns` (CLOCK_MONOTONIC ns) or the end of the stream, waiting
/// between messages as `waiter` says. `buf` must hold the ring's largest
/// message.
pub fn read_until(
    subscriber: &mut Subscriber,
    deadline_ns: u64,
    waiter: &mut Waiter,
    buf: &mut [u8],
) -> Result<ReadRun, Error> {
    let lost_before = subscriber.lost();
    let mut run = ReadRun::default();
    let mut polls = 0u32;
    loop {
        match subscriber.try_recv(buf)? {
            Some(len) => {
                run.received += 1;
                let seq = subscriber.position() - 1;
                if len >= 8 && buf[..8] != seq.to_le_bytes() {
                    run.mismatched += 1;
                }
                polls = polls.wrapping_add(1);
                if polls % 256 == 0 && clock::now_ns() >= deadline_ns {
                    break;
                }
            }
            None => {
                let now = clock::now_ns();
                if now >= deadline_ns {
                    break;
                }
                let deadline = Instant::now() + Duration::from_nanos(deadline_ns - now);
                match subscriber.wait_readable(Some(deadline), waiter) {
                    Ok(()) => {}
                    Err(RecvError::Timeout) => break,
                    Err(RecvError::Closed { .. }) => {
                        run.ended = true;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    run.lost = subscriber.lost() - lost_before;
    Ok(run)
}

/// Writes `seq` into the first bytes of `msg` (as many of its 8 bytes as fit).
fn stamp_sequence(msg: &mut [u8], seq: u64) {
    let n = msg.len().min(8);
    msg[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
}

/// Sleeps until a millisecond before `at_ns`, then spins to it.
fn sleep_until(at_ns: u64) {
    let now = clock::now_ns();
    if at_ns > now + 1_000_000 {
        std::thread::sleep(Duration::from_nanos(at_ns - now - 1_000_000));
    }
    while clock::now_ns() < at_ns {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RecordLatency, RecorderConfig};
    use ringcast_core::{CreateOptions, Start, WaitStrategy};

    #[test]
    fn paced_messages_carry_due_times_and_sequence_stamps() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = CreateOptions::new(1024, 64);
        opts.dir = Some(dir.path().to_owned());
        opts.timestamps = true;
        let mut publisher = Publisher::create("paced", &opts).unwrap();
        let mut sub = Subscriber::attach("paced", Some(dir.path()), Start::Oldest).unwrap();
        sub.record_latency(Some(RecorderConfig::default())).unwrap();
        let start = clock::now_ns() + 1_000_000;
        // 100 messages at 10 kHz: 10 ms.
        let run = publish_paced(
            &mut publisher,
            64,
            Pace::Rate(10_000.0),
            start,
            start + 10_000_000,
        )
        .unwrap();
        assert_eq!(run.published, 100);
        let mut waiter = Waiter::new(WaitStrategy::BusySpin);
        let mut buf = [0u8; 64];
        let read_from = clock::now_ns();
        let read = read_until(&mut sub, read_from, &mut waiter, &mut buf).unwrap();
        let reading = clock::now_ns() - read_from;
        assert_eq!((read.received, read.lost, read.mismatched), (100, 0, 0));
        // Read only now, so each latency is at least the time since it was due:
        // the first message waited 9.9 ms longer than the last, less the time
        // the reading took (each message is timed as it is read).
        let h = sub.recorder().unwrap().histogram();
        assert_eq!(h.len(), 100);
        let spread = h.max() - h.min();
        assert!(
            spread + reading >= 9_800_000,
            "{} {} (read in {reading} ns)",
            h.min(),
            h.max()
        );
    }

    #[test]
    fn a_bad_rate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = CreateOptions::new(64, 64);
        opts.dir = Some(dir.path().to_owned());
        let mut publisher = Publisher::create("rate", &opts).unwrap();
        let e = publish_paced(&mut publisher, 64, Pace::Rate(0.0), 0, 1).unwrap_err();
        assert!(e.to_string().contains("positive number of messages"), "{e}");
    }
}
