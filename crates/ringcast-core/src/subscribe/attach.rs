//! Attaching a subscriber: claiming a record, naming a stage, choosing
//! where to start, joining a bounded ring without a gap.

use super::stage::Dependencies;
use super::{StageOptions, Start, Subscriber};
use crate::error::{ArgumentError, OpenError, Result, RingFault};
use crate::format::layout::RECORD_ACTIVE;
use crate::format::stage_name::{self as stage_name, StageName};
use crate::memory::MemoryOptions;
use crate::protocol::stamp::MAX_SEQ;
use crate::protocol::{self, ReaderPosition, Slots};
use crate::shm::ring::{unix_now_ns, RingMap, StuckWatch};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Subscriber {
    /// Attaches to ring `name`; layout and schema come from the ring header.
    pub fn attach(name: &str, dir: Option<&Path>, start: Start) -> Result<Self, OpenError> {
        Self::attach_with(name, dir, start, &MemoryOptions::default())
    }

    /// [`Subscriber::attach`], pinning the calling thread, locking and
    /// prefaulting the mapping as `memory` says.
    pub fn attach_with(
        name: &str,
        dir: Option<&Path>,
        start: Start,
        memory: &MemoryOptions,
    ) -> Result<Self, OpenError> {
        Self::attach_stage(name, dir, start, memory, &StageOptions::default())
    }

    /// [`Subscriber::attach_with`] as a stage and/or gated after stages, as
    /// `stage` says (see [`crate::subscribe::stage`]).
    pub fn attach_stage(
        name: &str,
        dir: Option<&Path>,
        start: Start,
        memory: &MemoryOptions,
        stage: &StageOptions,
    ) -> Result<Self, OpenError> {
        let own = stage.name.as_deref().map(StageName::new).transpose()?;
        let after = Dependencies::check_names(&stage.after, own.as_ref())?;
        if start == Start::Resume && own.is_none() {
            return Err(ArgumentError::ResumeWithoutStage.into());
        }
        if stage.durable && own.is_none() {
            return Err(ArgumentError::DurableWithoutStage.into());
        }
        crate::memory::pinned(memory, || {
            Self::attach_pinned(name, dir, start, memory, own, after, stage.durable)
        })
    }

    /// [`Subscriber::attach_stage`] once the thread is pinned.
    pub(super) fn attach_pinned(
        name: &str,
        dir: Option<&Path>,
        start: Start,
        memory: &MemoryOptions,
        own: Option<StageName>,
        after: Vec<StageName>,
        durable: bool,
    ) -> Result<Self, OpenError> {
        let file = crate::shm::backing::open_named(name, dir)?;
        let path = file.path.clone();
        let ring = Arc::new(RingMap::open(file, name)?);
        let end_memory = crate::memory::settle(&ring, memory)?;
        if let Start::At(seq) = start {
            if seq > MAX_SEQ {
                return Err(ArgumentError::StartBeyondMax { seq, max: MAX_SEQ }.into());
            }
        }
        let cursor = ring.cursor().load(Ordering::Acquire);
        if cursor > MAX_SEQ {
            return Err(RingFault::corrupt(
                &path,
                format!("its cursor {cursor} is beyond any possible sequence"),
            )
            .into());
        }
        // Records of dead processes first: they may hold parked counts that
        // make the publisher wake nobody on every publish.
        ring.release_dead_records(None);
        // TLA+ (BoundedRing): Attach (the cursor above), then JoinStep:
        // claim, first mirror, ACTIVE, epoch bump, Latest re-read.
        // A durable stage taking back the record of its dead predecessor
        // keeps it active (gating) throughout: see `claim_record` (TLA+
        // (BoundedRing): `Takeover`, claim to epoch bump in one step).
        let (record, remembered) = ring.claim_record(own.as_ref(), durable)?;
        let oldest = cursor.saturating_sub(ring.capacity());
        let first = match start {
            Start::Latest => cursor,
            Start::Oldest => oldest,
            Start::At(seq) => seq,
            Start::Resume if remembered => ring.record(record).processed.load(Ordering::Acquire),
            Start::Resume => oldest,
        };
        let bounded = ring.layout().bounded();
        ring.record(record)
            .durable
            .store(durable as u64, Ordering::Relaxed);
        let sub = Self {
            ring,
            pos: ReaderPosition::starting_at(first),
            record,
            readiness: None,
            owner_pid: std::process::id(),
            bounded,
            membarrier_registered: bounded && crate::sys::membarrier::publisher_registered(),
            stuck: StuckWatch::new(),
            end_memory,
            observer: None,
            stage: own.map(|name| (name, first)),
            durable,
            deps: (!after.is_empty()).then(|| Dependencies::new(after)),
            gate_wait: 0,
            unverified: None,
            death: Arc::default(),
            abandoned: false,
            commit_membarrier: own.is_some() && crate::sys::membarrier::publisher_registered(),
        };
        if let Some((name, _)) = &sub.stage {
            sub.claim_stage_name(name, remembered)?;
        }
        let rec = sub.record();
        rec.memory.store(end_memory.encode(), Ordering::Relaxed);
        rec.start.store(first, Ordering::Relaxed);
        rec.attached_unix_ns.store(unix_now_ns(), Ordering::Relaxed);
        sub.mirror();
        // Gate from now on: publishers look at the epoch at least every
        // `watermark` messages and rescan when it moved. After the membarrier
        // each publisher either sees the new epoch before its next stretch of
        // writes, or began that stretch at a sequence no later than the
        // cursor we read below; a stretch starting at `f` overwrites only
        // messages before `f`. So with `Latest` we start at that cursor and
        // lose nothing; an older start may find early messages overwritten
        // meanwhile, which are counted as lost.
        rec.state.store(RECORD_ACTIVE, Ordering::Release);
        let mut sub = sub;
        if bounded {
            let table = &sub.ring.header().table.0;
            table.epoch.fetch_add(1, Ordering::SeqCst);
            crate::sys::membarrier::reader_side();
            if start == Start::Latest {
                let now = sub.ring.cursor().load(Ordering::Acquire).max(first);
                sub.pos = ReaderPosition::starting_at(now);
                sub.record().start.store(now, Ordering::Relaxed);
                sub.mirror();
                sub.commit();
            }
        }
        Ok(sub)
    }

    /// Publishes this stage's name and starting progress in its record; a
    /// stage that lost a race with a same-named stage attaching at the same
    /// moment (the lower record wins) gets [`OpenError::StageExists`].
    pub(super) fn claim_stage_name(
        &self,
        name: &StageName,
        remembered: bool,
    ) -> Result<(), OpenError> {
        let rec = self.record();
        // Progress first, then the name (see `stage_name::forget`).
        protocol::commit_progress(&rec.processed, self.pos.next);
        if !remembered {
            name.write_to(rec);
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        let rival = (0..self.record)
            .find(|&i| name.held_by(self.ring.record(i)) && self.ring.record_owner_alive(i));
        if let Some(i) = rival {
            stage_name::forget(self.record(), 0);
            return Err(self.ring.stage_taken(name, i));
        }
        Ok(())
    }
}
