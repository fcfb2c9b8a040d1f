//! The measurement loops, written once for every peer: paced sending and
//! stamp recording (latency), flat-out sending and counting (throughput),
//! and the two jobs that run them between threads or between processes.

use crate::common::{ticks, Clock};
use crate::harness::{
    joined, read_u64, write_u64, Backoff, Ctx, Ends, Info, Job, Msg, PeerReceiver, PeerSender,
    DEADLINE_EVERY, MSG_SIZE, PACE_NS, SEQ_AT, STAMP_AT, WARMUP,
};
use crate::pinning::pin;
use crate::process::{across_processes, ChildKind, ChildProc, ChildSpec};
use crate::stats::Trial;
use std::sync::Barrier;
use std::thread;

// ---------------------------------------------------------------- loops ----

/// Sends `total` messages, one per [`PACE_NS`], each stamped just before it
/// is offered. Paces from the previous send, not from a fixed schedule, so a
/// descheduled sender does not burst afterwards and queue messages.
pub fn paced_send<S: PeerSender>(
    tx: &mut S,
    clock: &Clock,
    total: u64,
    deadline: u64,
) -> Result<(), String> {
    let pace = clock.ticks_for_ns(PACE_NS);
    let mut msg: Msg = [0; MSG_SIZE];
    let mut last = ticks();
    for seq in 0..total {
        while ticks().wrapping_sub(last) < pace {}
        let now = ticks();
        write_u64(&mut msg, STAMP_AT, now);
        write_u64(&mut msg, SEQ_AT, seq);
        let mut backoff = Backoff::new(deadline);
        while !tx.offer(&msg)? {
            backoff.idle("room on a paced path")?;
        }
        last = now;
    }
    Ok(())
}

/// One-way stamp differences of one latency run, and what never arrived.
pub struct StampLog {
    /// `receive tick - send tick` of every message after the warm-up
    /// (signed: two cores' TSCs could disagree).
    pub deltas: Vec<i64>,
    /// Messages of the run the receiver never got.
    pub lost: u64,
}

/// Receives until message `total - 1`, spinning (no pause, no yield), and
/// records `now - stamp` of every message from `warmup` on.
pub fn receive_stamps<R: PeerReceiver>(
    rx: &mut R,
    total: u64,
    warmup: u64,
    deadline: u64,
) -> Result<StampLog, String> {
    let mut deltas = Vec::with_capacity(total.saturating_sub(warmup) as usize);
    let (mut received, mut done, mut empty) = (0u64, false, 0u64);
    while !done {
        let got = rx.drain(|m| {
            let now = ticks();
            let seq = read_u64(m, SEQ_AT);
            if seq >= warmup {
                deltas.push(now.wrapping_sub(read_u64(m, STAMP_AT)) as i64);
            }
            received += 1;
            done |= seq + 1 == total;
        })?;
        if got == 0 {
            empty += 1;
            if empty.is_multiple_of(DEADLINE_EVERY) && ticks() > deadline {
                return Err(format!(
                    "timed out after {received} of {total} latency messages"
                ));
            }
        }
    }
    Ok(StampLog {
        deltas,
        lost: total - received,
    })
}

/// Sends `total` messages as fast as the path takes them; returns the ticks
/// at the first and after the last.
pub fn send_flat_out<S: PeerSender>(
    tx: &mut S,
    total: u64,
    deadline: u64,
) -> Result<(u64, u64), String> {
    let mut msg: Msg = [0; MSG_SIZE];
    let mut backoff = Backoff::new(deadline);
    let start = ticks();
    for seq in 0..total {
        write_u64(&mut msg, SEQ_AT, seq);
        while !tx.offer(&msg)? {
            backoff.idle("room (the slowest receiver)")?;
        }
        backoff.reset();
    }
    Ok((start, ticks()))
}

/// What one receiver of a throughput trial got.
pub struct Delivery {
    pub received: u64,
    /// Tick at which it had the last message.
    pub end: u64,
}

/// Receives until message `total - 1` (the last one always arrives, even on
/// a lossy path); counts what arrived.
pub fn receive_all<R: PeerReceiver>(
    rx: &mut R,
    total: u64,
    deadline: u64,
) -> Result<Delivery, String> {
    let (mut received, mut done) = (0u64, false);
    let mut backoff = Backoff::new(deadline);
    while !done {
        let got = rx.drain(|m| {
            received += 1;
            done |= read_u64(m, SEQ_AT) + 1 == total;
        })?;
        if got == 0 {
            backoff.idle("messages")?;
        } else {
            backoff.reset();
        }
    }
    Ok(Delivery {
        received,
        end: ticks(),
    })
}

// -------------------------------------------------------- pinned threads ----

/// Runs `receive` on every receiver, each in a thread pinned to its core,
/// and `send` on the sender in a thread pinned to the publisher's core,
/// after `connect`; all start together. The sender's error wins over the
/// receivers'.
fn across_threads<S, R, T, D>(
    ctx: &Ctx,
    mut tx: S,
    rxs: Vec<R>,
    send: impl FnOnce(&mut S) -> Result<T, String> + Send,
    receive: impl Fn(&mut R) -> Result<D, String> + Sync,
) -> Result<(T, Vec<D>), String>
where
    S: PeerSender + Send,
    R: PeerReceiver + Send,
    T: Send,
    D: Send,
{
    let barrier = Barrier::new(rxs.len() + 1);
    thread::scope(|s| {
        let receivers: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, mut rx)| {
                let (barrier, receive) = (&barrier, &receive);
                s.spawn(move || {
                    pin(ctx.receiver_core(i), "receiver");
                    barrier.wait();
                    receive(&mut rx)
                })
            })
            .collect();
        let sender = s.spawn(|| {
            pin(ctx.publisher_core(), "publisher");
            barrier.wait();
            tx.connect()?;
            send(&mut tx)
        });
        let sent = joined(sender.join(), "publisher");
        // Join every receiver before looking at any result: a scope whose
        // thread panicked and was left unjoined would panic itself.
        let received: Vec<Result<D, String>> = receivers
            .into_iter()
            .map(|h| joined(h.join(), "receiver"))
            .collect();
        let received: Result<Vec<D>, String> = received.into_iter().collect();
        Ok((sent?, received?))
    })
}

// ------------------------------------------------------------- the jobs ----

/// One measurement of one path: what both jobs carry.
pub struct Run<'a> {
    pub ctx: &'a Ctx,
    pub peer: Info,
    pub ends: Ends,
    /// Messages the publisher sends (for latency, the warm-up included).
    pub total: u64,
    /// The tick by which the measurement must be done.
    pub deadline: u64,
}

impl<'a> Run<'a> {
    /// A measurement of `total` messages from one publisher to `receivers`
    /// over ring or service `name`.
    pub fn new(ctx: &'a Ctx, peer: Info, name: String, receivers: usize, total: u64) -> Self {
        Self {
            ctx,
            peer,
            ends: Ends {
                name,
                dir: ctx.dir.clone(),
                receivers,
                timeout: ctx.timeout(total),
            },
            total,
            deadline: ctx.deadline(total),
        }
    }

    /// One spec per receiver process, each pinned like a receiver thread.
    fn specs(&self, kind: ChildKind) -> Vec<ChildSpec> {
        (0..self.ends.receivers)
            .map(|i| ChildSpec {
                kind,
                peer: self.peer.key.to_owned(),
                name: self.ends.name.clone(),
                dir: self.ends.dir.clone(),
                total: self.total,
                warmup: WARMUP,
                core: self.ctx.receiver_core(i),
                deadline: self.deadline,
            })
            .collect()
    }
}

/// One-way latency: [`paced_send`] to one receiver running
/// [`receive_stamps`].
pub struct LatencyJob<'a>(pub Run<'a>);

impl Job for LatencyJob<'_> {
    type Out = StampLog;

    fn ends(&self) -> &Ends {
        &self.0.ends
    }

    fn threads<S, R>(&self, tx: S, rxs: Vec<R>) -> Result<StampLog, String>
    where
        S: PeerSender + Send,
        R: PeerReceiver + Send,
    {
        let r = &self.0;
        let ((), logs) = across_threads(
            r.ctx,
            tx,
            rxs,
            |tx| paced_send(tx, &r.ctx.clock, r.total, r.deadline),
            |rx| receive_stamps(rx, r.total, WARMUP, r.deadline),
        )?;
        logs.into_iter()
            .next()
            .ok_or_else(|| "no receiver".to_owned())
    }

    fn processes<S: PeerSender>(
        &self,
        make_sender: impl FnOnce() -> Result<S, String> + Send,
    ) -> Result<StampLog, String> {
        let r = &self.0;
        across_processes(
            r.ctx,
            make_sender,
            &r.specs(ChildKind::Latency),
            |tx| paced_send(tx, &r.ctx.clock, r.total, r.deadline),
            |(), children| {
                let child = children.first_mut().ok_or("no receiver process")?;
                ChildProc::read_stamps(child)
            },
        )
    }
}

/// Flat-out throughput: [`send_flat_out`] to receivers running
/// [`receive_all`].
pub struct ThroughputJob<'a>(pub Run<'a>);

impl Job for ThroughputJob<'_> {
    type Out = Trial;

    fn ends(&self) -> &Ends {
        &self.0.ends
    }

    fn threads<S, R>(&self, tx: S, rxs: Vec<R>) -> Result<Trial, String>
    where
        S: PeerSender + Send,
        R: PeerReceiver + Send,
    {
        let r = &self.0;
        let ((start, end), deliveries) = across_threads(
            r.ctx,
            tx,
            rxs,
            |tx| send_flat_out(tx, r.total, r.deadline),
            |rx| receive_all(rx, r.total, r.deadline),
        )?;
        Trial::new(
            &r.ctx.clock,
            r.total,
            r.peer.lossless,
            start,
            end,
            &deliveries,
        )
    }

    fn processes<S: PeerSender>(
        &self,
        make_sender: impl FnOnce() -> Result<S, String> + Send,
    ) -> Result<Trial, String> {
        let r = &self.0;
        across_processes(
            r.ctx,
            make_sender,
            &r.specs(ChildKind::Throughput),
            |tx| send_flat_out(tx, r.total, r.deadline),
            |(start, end), children| {
                let deliveries = children
                    .iter_mut()
                    .map(ChildProc::read_delivery)
                    .collect::<Result<Vec<_>, _>>()?;
                Trial::new(
                    &r.ctx.clock,
                    r.total,
                    r.peer.lossless,
                    start,
                    end,
                    &deliveries,
                )
            },
        )
    }
}
