//! A trading day's messages in memory, by MoldUDP64 sequence number: what
//! the sender sends and what its retransmission server answers from.

use ringcast_feed::file::SliceReader;
use ringcast_feed::itch::HEADER_LEN;
use ringcast_feed::stats::Report;
use std::fmt;

/// The messages of an ITCH file, sequence 1 first. Frames are kept as
/// they are, including ones that do not decode (a sender replays its input
/// byte for byte); what they are is in [`MessageStore::report`].
pub struct MessageStore {
    bytes: Vec<u8>,
    /// Start of each message in `bytes` (its length prefix skipped), and
    /// one past the end of the last.
    starts: Vec<usize>,
    report: Report,
}

/// Why a file cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The file ends inside a frame: the bytes from `offset` on.
    TruncatedTail { offset: u64 },
    /// No messages at all.
    Empty,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::TruncatedTail { offset } => write!(
                f,
                "the ITCH file ends inside a message (at byte {offset}): it was cut short; \
                 write it again, or cut it at that byte to send what precedes"
            ),
            StoreError::Empty => f.write_str(
                "the ITCH file holds no messages (expected 2-byte big-endian lengths, each \
                 followed by a message); make one with `ringcast feed generate`",
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl MessageStore {
    /// The messages of an ITCH file's bytes (2-byte big-endian length
    /// before each message).
    pub fn from_itch(bytes: Vec<u8>) -> Result<Self, StoreError> {
        let mut reader = SliceReader::new(&bytes);
        let mut starts = Vec::new();
        let mut end = 0;
        while let Some(frame) = reader.next_frame() {
            match frame {
                Ok(body) => {
                    let start = reader.offset() - body.len();
                    starts.push(start);
                    end = reader.offset();
                }
                Err(_) => return Err(StoreError::TruncatedTail { offset: end as u64 }),
            }
        }
        if starts.is_empty() {
            return Err(StoreError::Empty);
        }
        // Count every frame by type (and any that do not decode).
        let mut counted = SliceReader::new(&bytes);
        for _ in counted.by_ref() {}
        let report = counted.counts().report();
        starts.push(end + 2);
        Ok(Self {
            bytes,
            starts,
            report,
        })
    }

    /// Messages held (sequence numbers 1 to this).
    pub fn len(&self) -> u64 {
        (self.starts.len() - 1) as u64
    }

    /// No messages (never true of a store that was made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Message `seq` (1-based), or `None` past the end.
    #[inline]
    pub fn get(&self, seq: u64) -> Option<&[u8]> {
        let i = usize::try_from(seq.checked_sub(1)?).ok()?;
        let start = *self.starts.get(i)?;
        let next = *self.starts.get(i + 1)?;
        // The next message's start is 2 bytes (its length prefix) past
        // this one's end.
        Some(&self.bytes[start..next - 2])
    }

    /// The ITCH timestamp (ns since midnight) of message `seq`, for
    /// sending at the original pace; `None` for frames too short to have one.
    pub fn timestamp(&self, seq: u64) -> Option<u64> {
        let m = self.get(seq)?;
        let t: &[u8; 6] = m.get(5..HEADER_LEN)?.try_into().ok()?;
        Some(t.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    /// What the file holds: messages by type, frames that do not decode.
    pub fn report(&self) -> &Report {
        &self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_feed::file::append_frame;

    #[test]
    fn messages_by_sequence_and_their_times() {
        let mut bytes = Vec::new();
        let mut m1 = vec![b'S', 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, b'O'];
        append_frame(&mut bytes, &m1);
        m1[10] = 3;
        append_frame(&mut bytes, &m1);
        append_frame(&mut bytes, b"?");
        let store = MessageStore::from_itch(bytes).unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(store.get(0), None);
        assert_eq!(store.get(2), Some(&m1[..]));
        assert_eq!(store.get(3), Some(&b"?"[..]));
        assert_eq!(store.get(4), None);
        assert_eq!(store.timestamp(1), Some(0x0102));
        assert_eq!(store.timestamp(2), Some(0x0103));
        assert_eq!(store.timestamp(3), None);
        assert_eq!(store.report().unknown_type, 1);
    }

    #[test]
    fn cut_and_empty_files_are_refused_with_a_remedy() {
        let mut bytes = Vec::new();
        append_frame(&mut bytes, b"S0123456789O");
        bytes.extend_from_slice(&[0, 12, b'S']);
        let e = MessageStore::from_itch(bytes).err().unwrap();
        assert_eq!(e, StoreError::TruncatedTail { offset: 14 });
        assert!(e.to_string().contains("cut short"));
        let e = MessageStore::from_itch(Vec::new()).err().unwrap();
        assert!(e.to_string().contains("ringcast feed generate"));
    }
}
