//! Stage names as they are stored in subscriber records.
//!
//! A stage's name lives on the second line of its subscriber record (see
//! [`crate::subscribe::stage`] for what a stage is), as four little-endian
//! words, zero-padded; a record whose first word is zero names no stage.

use crate::error::{ArgumentError, Result};
use crate::format::layout::SubscriberRecord;
use std::sync::atomic::Ordering;

/// Longest stage name, in bytes.
pub const MAX_NAME_LEN: usize = 32;
/// Words of a stage name in a subscriber record.
pub const NAME_WORDS: usize = MAX_NAME_LEN / 8;

/// A checked stage name, in the form it has in a subscriber record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StageName {
    words: [u64; NAME_WORDS],
}

impl StageName {
    /// Checks `name`: 1 to 32 bytes of letters, digits, '.', '_' and '-'.
    pub fn new(name: &str) -> Result<Self, ArgumentError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            return Err(ArgumentError::InvalidStageName {
                name: name.to_owned(),
                max_len: MAX_NAME_LEN,
            });
        }
        let mut bytes = [0u8; MAX_NAME_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        let mut words = [0u64; NAME_WORDS];
        for (w, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
        }
        Ok(Self { words })
    }

    /// The name as text.
    pub fn as_string(&self) -> String {
        Self::decode(self.words).unwrap_or_default()
    }

    fn decode(words: [u64; NAME_WORDS]) -> Option<String> {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(MAX_NAME_LEN);
        (len > 0).then(|| String::from_utf8_lossy(&bytes[..len]).into_owned())
    }

    /// Whether record `rec` carries this name.
    pub(crate) fn held_by(&self, rec: &SubscriberRecord) -> bool {
        words_of(rec) == self.words
    }

    /// Writes the name into `rec` (its owner, after storing its progress:
    /// a gate that finds the name must find this stage's progress).
    pub(crate) fn write_to(&self, rec: &SubscriberRecord) {
        for (slot, w) in rec.stage.iter().zip(self.words) {
            slot.store(w, Ordering::Release);
        }
    }
}

fn words_of(rec: &SubscriberRecord) -> [u64; NAME_WORDS] {
    std::array::from_fn(|i| rec.stage[i].load(Ordering::Acquire))
}

/// The stage name record `rec` carries, if any.
pub(crate) fn name_in(rec: &SubscriberRecord) -> Option<String> {
    StageName::decode(words_of(rec))
}

/// Whether record `rec` remembers a stage.
pub(crate) fn named(rec: &SubscriberRecord) -> bool {
    rec.stage[0].load(Ordering::Relaxed) != 0
}

/// Makes a freshly claimed record forget any stage it remembers, then sets
/// its progress. The name goes first: a gate that loads the new progress
/// (acquire) and then the name again sees the name gone, so it never pairs
/// the old stage's name with the new owner's progress (see [`Gate`]).
pub(crate) fn forget(rec: &SubscriberRecord, processed: u64) {
    for slot in &rec.stage {
        slot.store(0, Ordering::Release);
    }
    rec.processed.store(processed, Ordering::Release);
}
