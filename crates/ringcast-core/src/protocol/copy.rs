//! Data-race-free payload copies between plain byte buffers and a slot.
//!
//! A reader may copy a payload while the publisher overwrites it (the stamp
//! check afterwards throws such a copy away). A plain memory read racing with a
//! write is undefined behaviour in Rust even when the result is discarded, so
//! payload words are only ever accessed through `Relaxed` atomic loads and
//! stores: racing is then defined, merely unordered, and the stamp protocol
//! supplies the ordering.

use crate::sync::{AtomicU64, Ordering};

/// Number of 8-byte words needed to hold `len` bytes.
#[inline]
pub const fn words_for(len: usize) -> usize {
    len.div_ceil(8)
}

/// Stores `src` into the front of `dst`, word by word; the last word is padded
/// with zeros. Panics if `dst` is too short (callers check lengths first).
#[inline]
pub fn store_bytes(dst: &[AtomicU64], src: &[u8]) {
    let mut chunks = src.chunks_exact(8);
    let mut words = dst.iter();
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().expect("chunk of 8"));
        words
            .next()
            .expect("slot too short")
            .store(word, Ordering::Relaxed);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        let word = u64::from_ne_bytes(last);
        words
            .next()
            .expect("slot too short")
            .store(word, Ordering::Relaxed);
    }
}

/// Loads `dst.len()` bytes from the front of `src`, word by word. Panics if
/// `src` is too short (callers check lengths first).
#[inline]
pub fn load_bytes(src: &[AtomicU64], dst: &mut [u8]) {
    let mut chunks = dst.chunks_exact_mut(8);
    let mut words = src.iter();
    for chunk in &mut chunks {
        let word = words
            .next()
            .expect("slot too short")
            .load(Ordering::Relaxed);
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let word = words
            .next()
            .expect("slot too short")
            .load(Ordering::Relaxed);
        let n = tail.len();
        tail.copy_from_slice(&word.to_ne_bytes()[..n]);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let words: Vec<AtomicU64> = (0..words_for(300)).map(|_| AtomicU64::new(u64::MAX)).collect();
            store_bytes(&words, &data);
            let mut out = vec![0u8; data.len()];
            load_bytes(&words, &mut out);
            prop_assert_eq!(out, data.clone());
            // Padding of the last word is zero, so stale bytes never leak.
            if data.len() % 8 != 0 {
                let last = words[data.len() / 8].load(Ordering::Relaxed).to_ne_bytes();
                prop_assert!(last[data.len() % 8..].iter().all(|&b| b == 0));
            }
        }
    }
}
