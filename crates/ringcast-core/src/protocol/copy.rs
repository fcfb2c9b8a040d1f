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
    // One length check up front: the loop below then has no per-word check
    // (a zip of exact chunks), which is most of a 64-byte copy's cost.
    let dst = &dst[..words_for(src.len())];
    let whole = src.len() / 8;
    let (head, tail) = src.split_at(whole * 8);
    for (chunk, word) in head.chunks_exact(8).zip(&dst[..whole]) {
        let bytes: [u8; 8] = chunk.try_into().expect("chunk of 8");
        word.store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
    }
    if !tail.is_empty() {
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        dst[whole].store(u64::from_ne_bytes(last), Ordering::Relaxed);
    }
}

/// Loads `dst.len()` bytes from the front of `src`, word by word. Panics if
/// `src` is too short (callers check lengths first).
#[inline]
pub fn load_bytes(src: &[AtomicU64], dst: &mut [u8]) {
    // As in `store_bytes`: the length checked once, not per word.
    let src = &src[..words_for(dst.len())];
    let whole = dst.len() / 8;
    let (head, tail) = dst.split_at_mut(whole * 8);
    for (chunk, word) in head.chunks_exact_mut(8).zip(&src[..whole]) {
        chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
    }
    if !tail.is_empty() {
        let n = tail.len();
        tail.copy_from_slice(&src[whole].load(Ordering::Relaxed).to_ne_bytes()[..n]);
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
