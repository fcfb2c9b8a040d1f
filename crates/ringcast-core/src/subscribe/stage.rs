//! Named stages and the dependency barrier ("gating") between them.
//!
//! A subscriber may name itself a *stage* of its ring. A stage publishes how
//! far it has *processed* the stream, not merely read it: message `s` counts
//! as processed once the stage asks for the next message or commits. Another
//! subscriber of the same ring may be gated *after* named stages: it reads
//! message `s` only once every one of them has processed `s`. This is the
//! Disruptor's dependency barrier, across processes: a risk stage sees an
//! event only after every strategy has handled it.
//!
//! Progress is stored with release ordering after the stage's work on the
//! messages below it and loaded with acquire ordering by gated readers, so
//! whatever a stage did before committing `s` (publishing its own result for
//! `s`, say) is visible to a reader of `s` downstream.
//!
//! A stage's name and progress live on the second line of its subscriber
//! record and outlive its owner: a departed or dead stage keeps holding its
//! dependants back at its last progress (they must not overtake work that was
//! never done), and a stage restarted under the same name resumes there.
//! Stage names are unique among a ring's records, so a gate never has to
//! choose between two progresses.

use crate::error::{ArgumentError, Result};
use crate::format::stage_name::StageName;
use crate::protocol;
use crate::shm::ring::{find_stage, RingMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Most upstream stages one subscriber may be gated after.
pub const MAX_UPSTREAM: usize = 16;

/// The progress stage `name` published in record `i`, if the record still
/// carries that name when the progress is read.
fn progress_in(ring: &RingMap, i: usize, name: &StageName) -> Option<u64> {
    let rec = ring.record(i);
    if !name.held_by(rec) {
        return None;
    }
    // Acquire: the stage's work on every message below `processed` happens
    // before our read of those messages. Name, progress, name: a record that
    // changed hands in between is not trusted (see `forget`).
    let processed = protocol::load_progress(&rec.processed);
    name.held_by(rec).then_some(processed)
}

/// One upstream stage of a gate, with the record it was last found in.
#[derive(Debug)]
struct Upstream {
    name: StageName,
    /// Index of the record that carried the name; `usize::MAX`: not found.
    record: AtomicUsize,
}

impl Upstream {
    /// How far the stage has processed: 0 while no record carries its name.
    fn progress(&self, ring: &RingMap) -> u64 {
        let cached = self.record.load(Ordering::Relaxed);
        if cached != usize::MAX {
            if let Some(p) = progress_in(ring, cached, &self.name) {
                return p;
            }
        }
        let found = find_stage(ring, &self.name);
        self.record
            .store(found.unwrap_or(usize::MAX), Ordering::Relaxed);
        found
            .and_then(|i| progress_in(ring, i, &self.name))
            .unwrap_or(0)
    }
}

/// A subscriber's dependency barrier: the upstream stages it is gated after,
/// and how far all of them had processed when last looked at. Lookups cache
/// in atomics (relaxed: they are hints, re-checked against the record), so a
/// gate can be shared with a waiting thread by reference.
#[derive(Debug)]
pub struct Dependencies {
    upstream: Vec<Upstream>,
    /// Every sequence below this was processed by every upstream stage.
    open_until: AtomicU64,
}

impl Clone for Dependencies {
    fn clone(&self) -> Self {
        Self::new(self.upstream.iter().map(|u| u.name).collect())
    }
}

impl Dependencies {
    /// A gate after `names`, closed until it is first looked at.
    pub(crate) fn new(names: Vec<StageName>) -> Self {
        Self {
            upstream: names
                .into_iter()
                .map(|name| Upstream {
                    name,
                    record: AtomicUsize::new(usize::MAX),
                })
                .collect(),
            open_until: AtomicU64::new(0),
        }
    }

    /// Checks the names a subscriber asks to be gated after (its own stage
    /// name, if any, is `own`).
    pub fn check_names(
        after: &[String],
        own: Option<&StageName>,
    ) -> Result<Vec<StageName>, ArgumentError> {
        if after.len() > MAX_UPSTREAM {
            return Err(ArgumentError::TooManyUpstream {
                count: after.len(),
                max: MAX_UPSTREAM,
            });
        }
        let mut names: Vec<StageName> = Vec::with_capacity(after.len());
        for text in after {
            let name = StageName::new(text)?;
            if Some(&name) == own {
                return Err(ArgumentError::GatedAfterItself {
                    stage: text.clone(),
                });
            }
            if names.contains(&name) {
                return Err(ArgumentError::StageNamedTwice {
                    stage: text.clone(),
                });
            }
            names.push(name);
        }
        Ok(names)
    }

    /// One past the last sequence the gate lets through now: the cached
    /// bound while `position` is below it, else a fresh look at every
    /// upstream stage.
    #[inline]
    pub(crate) fn limit(&self, ring: &RingMap, position: u64) -> u64 {
        let open = self.open_until.load(Ordering::Relaxed);
        if position < open {
            return open;
        }
        let fresh = self
            .upstream
            .iter()
            .map(|u| u.progress(ring))
            .min()
            .unwrap_or(u64::MAX);
        self.open_until.store(fresh, Ordering::Relaxed);
        fresh
    }

    /// Whether the gate lets `position` through now.
    #[inline]
    pub(crate) fn admits(&self, ring: &RingMap, position: u64) -> bool {
        position < self.limit(ring, position)
    }

    /// Every upstream stage with its progress (`None`: no record carries
    /// its name, which holds the gate shut).
    pub(crate) fn progress(&self, ring: &RingMap) -> Vec<(String, Option<u64>)> {
        self.upstream
            .iter()
            .map(|u| {
                let found = find_stage(ring, &u.name).and_then(|i| progress_in(ring, i, &u.name));
                (u.name.as_string(), found)
            })
            .collect()
    }

    /// Names of the upstream stages, in the order given.
    pub(crate) fn names(&self) -> Vec<String> {
        self.upstream.iter().map(|u| u.name.as_string()).collect()
    }
}

/// Whether a reader at `position` behind `gate` (if gated) can read now, or
/// learn that it was lapped: the gate first, so a reader held back by its
/// upstream stages waits for them however much the publisher has written.
#[inline]
pub(crate) fn readable(ring: &RingMap, deps: Option<&Dependencies>, position: u64) -> bool {
    deps.is_none_or(|g| g.admits(ring, position)) && ring.readable_at(position)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_round_trip() {
        for good in ["b", "strategy-1", "risk.v2", &"x".repeat(32)] {
            assert_eq!(StageName::new(good).unwrap().as_string(), good);
        }
        for bad in ["", "a b", "ü", &"x".repeat(33), "a/b"] {
            let e = StageName::new(bad).unwrap_err().to_string();
            assert!(e.contains("letters, digits"), "{e}");
        }
    }

    #[test]
    fn gate_names_refuse_self_and_duplicates() {
        let own = StageName::new("d").unwrap();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Dependencies::check_names(&names(&["b", "c"]), Some(&own))
                .unwrap()
                .len(),
            2
        );
        let e = Dependencies::check_names(&names(&["b", "d"]), Some(&own)).unwrap_err();
        assert!(e.to_string().contains("after itself"), "{e}");
        let e = Dependencies::check_names(&names(&["b", "b"]), None).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let many: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
        assert!(Dependencies::check_names(&many, None).is_err());
    }
}
