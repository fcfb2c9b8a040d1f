//! Byte-order helpers shared by every layer: big-endian reads of the wire
//! formats (ITCH, MoldUDP64) and the text of space-padded ASCII fields.
//!
//! Every reader takes a fixed-size array (or checks the slice length first),
//! so none of them can read out of bounds or panic.

/// The big-endian `u16` at the start of `b`.
#[inline(always)]
pub(crate) fn be_u16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// The 48-bit big-endian unsigned integer in `b` (ITCH timestamps:
/// nanoseconds since midnight).
#[inline(always)]
pub(crate) fn be_u48(b: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

/// The low 48 bits of `v`, big-endian (the inverse of [`be_u48`]).
#[inline(always)]
pub(crate) fn u48_be(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// The `N` bytes of `b` starting at `off`.
///
/// Callers pass constant offsets proven in bounds at compile time (the
/// message table checks that every field lies inside its message), so the
/// conversion cannot fail; it is written with `expect` rather than unsafe
/// code.
#[inline(always)]
pub(crate) fn bytes_at<const LEN: usize, const N: usize>(b: &[u8; LEN], off: usize) -> &[u8; N] {
    b[off..off + N]
        .try_into()
        .expect("a field lies inside its message (checked at compile time)")
}

/// The text of a left-justified, space-padded ASCII field (a stock symbol,
/// an MPID, a reason code): trailing spaces (and NULs) removed. Bytes that
/// are not ASCII give the longest valid prefix, never a panic.
pub fn text(field: &[u8]) -> &str {
    let end = field
        .iter()
        .rposition(|&c| c != b' ' && c != 0)
        .map_or(0, |i| i + 1);
    let trimmed = &field[..end];
    match std::str::from_utf8(trimmed) {
        Ok(s) => s,
        // The prefix up to the first invalid byte is valid UTF-8 by definition.
        Err(e) => std::str::from_utf8(&trimmed[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// `symbol` left-justified in a space-padded field of `N` bytes (longer
/// symbols are cut to `N` bytes).
pub fn padded<const N: usize>(symbol: &str) -> [u8; N] {
    let mut out = [b' '; N];
    for (o, c) in out.iter_mut().zip(symbol.bytes()) {
        *o = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u48_round_trips_and_ignores_high_bits() {
        let v = 0x0000_1234_5678_9abc_u64;
        assert_eq!(be_u48(u48_be(v)), v);
        assert_eq!(be_u48(u48_be(v | 0xffff << 48)), v);
        assert_eq!(be_u48([0, 0, 0, 0, 1, 0]), 256);
    }

    #[test]
    fn text_trims_padding_and_survives_garbage() {
        assert_eq!(text(b"AAPL    "), "AAPL");
        assert_eq!(text(b"        "), "");
        assert_eq!(text(b"A B \0\0"), "A B");
        assert_eq!(text(&[b'Z', 0xff, b'Q']), "Z");
        assert_eq!(padded::<8>("MSFT"), *b"MSFT    ");
        assert_eq!(padded::<4>("TOOLONG"), *b"TOOL");
        assert_eq!(be_u16([1, 2]), 258);
    }
}
