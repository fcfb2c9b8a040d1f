//! The CRC32C of journal entries, several entries side by side.
//!
//! An entry's CRC covers its tag and then everything from byte 8 to the end
//! of its payload: `crc32c(tag ++ entry[8..ENTRY_HEADER + len])`. The x86
//! `crc32` instruction has a latency of 3 cycles but can start every cycle,
//! so the chain over one entry (11 steps for a 64-byte payload) mostly waits
//! on itself; the chains of [`LANES`] entries run side by side fill those
//! cycles. Entries of one ring mostly have the same length (on a fixed-size
//! ring always): a group of equal lengths goes side by side, any other entry
//! alone. Without SSE 4.2 (or off x86-64) the `crc32c` crate computes each.

use crate::format::{get_u32, ENTRY_HEADER, LEN_MASK};

/// Entries whose CRCs are computed side by side.
pub const LANES: usize = 4;

/// The CRC32C of an entry: its tag, then `rest` (sequence, time, payload).
#[inline]
pub fn entry_crc(tag: u32, rest: &[u8]) -> u32 {
    crc_lanes([tag], [rest])[0]
}

/// The CRC each of `n` entries (`n` <= 64) of `run` from entry `first` on
/// should carry by its tag, in a bit set: bit `k` set when entry
/// `first + k` carries that CRC. An entry whose tag's length does not fit
/// its `stride` bytes has its bit clear.
pub fn matching(run: &[u8], stride: usize, first: usize, n: usize) -> u64 {
    debug_assert!(n <= 64 && (first + n) * stride <= run.len());
    let mut bits = 0;
    for_each_crc(run, stride, first, n, |k, expected| {
        let at = (first + k) * stride;
        if expected == Some(get_u32(run, at + 4)) {
            bits |= 1 << k;
        }
    });
    bits
}

/// Writes into each entry of `run` (entries of `stride` bytes whose tags,
/// sequences, times and payloads are written) the CRC it must carry.
pub fn stamp(run: &mut [u8], stride: usize) {
    let entries = run.len() / stride;
    let mut first = 0;
    while first < entries {
        let n = (entries - first).min(64);
        let mut crcs = [0u32; 64];
        for_each_crc(run, stride, first, n, |k, crc| {
            crcs[k] = crc.expect("the writer's own tags fit their entries")
        });
        for (k, crc) in crcs[..n].iter().enumerate() {
            let at = (first + k) * stride + 4;
            run[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        }
        first += n;
    }
}

/// Calls `each(k, crc)` for entries `first..first + n` of `run` with the
/// CRC entry `first + k` should carry (`None`: its tag's length does not
/// fit the entry).
fn for_each_crc(
    run: &[u8],
    stride: usize,
    first: usize,
    n: usize,
    mut each: impl FnMut(usize, Option<u32>),
) {
    let entry = |k: usize| &run[(first + k) * stride..(first + k + 1) * stride];
    // The tag and the bytes the CRC covers after it, if the length fits.
    let covered = |k: usize| {
        let e = entry(k);
        let tag = get_u32(e, 0);
        let end = ENTRY_HEADER + (tag & LEN_MASK) as usize;
        (end <= e.len()).then(|| (tag, &e[8..end]))
    };
    let mut k = 0;
    while k + LANES <= n {
        let group: [Option<(u32, &[u8])>; LANES] = std::array::from_fn(|j| covered(k + j));
        let len = group[0].map(|(_, rest)| rest.len());
        if group.iter().all(|g| g.map(|(_, rest)| rest.len()) == len) && len.is_some() {
            let tags = group.map(|g| g.expect("checked above").0);
            let rests = group.map(|g| g.expect("checked above").1);
            for (j, crc) in crc_lanes(tags, rests).into_iter().enumerate() {
                each(k + j, Some(crc));
            }
            k += LANES;
        } else {
            each(k, covered(k).map(|(tag, rest)| entry_crc(tag, rest)));
            k += 1;
        }
    }
    for k in k..n {
        each(k, covered(k).map(|(tag, rest)| entry_crc(tag, rest)));
    }
}

/// The CRC32C of `tags[j] ++ rests[j]` for each lane `j`; every rest has
/// the same length.
#[inline]
fn crc_lanes<const N: usize>(tags: [u32; N], rests: [&[u8]; N]) -> [u32; N] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: `crc_lanes_sse42` needs SSE 4.2 and nothing else; the CPU
        // running this was just asked and has it.
        return unsafe { crc_lanes_sse42(tags, rests) };
    }
    std::array::from_fn(|j| crc32c::crc32c_append(crc32c::crc32c(&tags[j].to_le_bytes()), rests[j]))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn crc_lanes_sse42<const N: usize>(tags: [u32; N], rests: [&[u8]; N]) -> [u32; N] {
    use std::arch::x86_64::{_mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8};
    let len = rests[0].len();
    assert!(rests.iter().all(|r| r.len() == len), "lanes of one length");
    let words = len / 8;
    // CRC32C: the register starts all ones and ends inverted.
    let mut crc: [u64; N] = std::array::from_fn(|j| u64::from(_mm_crc32_u32(!0, tags[j])));
    for w in 0..words {
        for j in 0..N {
            let word = u64::from_le_bytes(rests[j][w * 8..w * 8 + 8].try_into().expect("8 bytes"));
            crc[j] = _mm_crc32_u64(crc[j], word);
        }
    }
    std::array::from_fn(|j| {
        let tail = rests[j][words * 8..].iter();
        !tail.fold(crc[j] as u32, |c, &b| _mm_crc32_u8(c, b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(tag: u32, rest: &[u8]) -> u32 {
        crc32c::crc32c_append(crc32c::crc32c(&tag.to_le_bytes()), rest)
    }

    /// `n` entries of `stride` bytes with lengths from `lens` (cycled).
    fn entries(stride: usize, n: usize, lens: &[usize], seed: u8) -> Vec<u8> {
        let mut run = vec![0u8; n * stride];
        for (i, e) in run.chunks_exact_mut(stride).enumerate() {
            let len = lens[i % lens.len()];
            e[..4].copy_from_slice(&((1u32 << 28) | len as u32).to_le_bytes());
            for (b, x) in e[8..].iter_mut().enumerate() {
                *x = (b as u8).wrapping_mul(31).wrapping_add(i as u8) ^ seed;
            }
        }
        run
    }

    proptest! {
        /// Side by side or alone, every CRC equals the crate's, for equal
        /// and mixed lengths (multiples of 8 or not) and tags that do not fit.
        #[test]
        fn every_crc_equals_the_reference(
            slot in 1usize..80, n in 0usize..64, lens in prop::collection::vec(0usize..90, 1..5),
            seed: u8,
        ) {
            let stride = crate::format::stride(slot as u32);
            let mut run = entries(stride, n, &lens, seed);
            stamp_or_skip(&mut run, stride);
            let bits = matching(&run, stride, 0, n);
            for (k, e) in run.chunks_exact(stride).enumerate() {
                let tag = get_u32(e, 0);
                let end = ENTRY_HEADER + (tag & LEN_MASK) as usize;
                let fits = end <= stride;
                prop_assert_eq!(bits >> k & 1 == 1, fits, "entry {}", k);
                if fits {
                    prop_assert_eq!(get_u32(e, 4), reference(tag, &e[8..end]));
                    prop_assert_eq!(entry_crc(tag, &e[8..end]), reference(tag, &e[8..end]));
                }
            }
        }
    }

    /// Stamps the entries whose tags fit (as the writer only writes those).
    fn stamp_or_skip(run: &mut [u8], stride: usize) {
        for e in run.chunks_exact_mut(stride) {
            let tag = get_u32(e, 0);
            let end = ENTRY_HEADER + (tag & LEN_MASK) as usize;
            if end <= stride {
                let crc = reference(tag, &e[8..end]);
                e[4..8].copy_from_slice(&crc.to_le_bytes());
            }
        }
    }

    #[test]
    fn stamp_writes_what_matching_accepts_and_a_flipped_byte_is_caught() {
        let stride = crate::format::stride(64);
        let mut run = entries(stride, 70, &[64], 3);
        stamp(&mut run, stride);
        assert_eq!(matching(&run, stride, 0, 64), u64::MAX);
        assert_eq!(matching(&run, stride, 64, 6), 0b11_1111);
        run[5 * stride + 30] ^= 1;
        run[6 * stride] ^= 1; // the tag: its length changes
        assert_eq!(matching(&run, stride, 0, 64), !(1 << 5) & !(1 << 6));
    }
}
