//! Retransmission requests: the 20-byte message a receiver sends to the
//! retransmission server for messages it missed.

use super::{header, parse_header, MoldError, Session, HEADER_LEN};

/// "Send me `count` messages of `session` from `sequence` on."
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetransmitRequest {
    /// The session name.
    pub session: Session,
    /// The first sequence number wanted.
    pub sequence: u64,
    /// How many messages.
    pub count: u16,
}

impl RetransmitRequest {
    /// The request's 20 bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        header(&self.session, self.sequence, self.count)
    }

    /// Reads a request: exactly 20 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, MoldError> {
        let exact: &[u8; HEADER_LEN] = bytes
            .try_into()
            .map_err(|_| MoldError::ShortPacket { len: bytes.len() })?;
        let (session, sequence, count) = parse_header(exact);
        Ok(RetransmitRequest {
            session,
            sequence,
            count,
        })
    }

    /// The requests covering `missing` (a half-open sequence range), each
    /// for at most `max_count` messages (at least 1), lazily (a hostile
    /// gap can be huge: take what you mean to send).
    pub fn covering(
        session: Session,
        missing: std::ops::Range<u64>,
        max_count: u16,
    ) -> impl Iterator<Item = Self> {
        let step = max_count.max(1) as u64;
        let mut at = missing.start;
        std::iter::from_fn(move || {
            if at >= missing.end {
                return None;
            }
            let n = (missing.end - at).min(step);
            let request = RetransmitRequest {
                session,
                sequence: at,
                count: n as u16,
            };
            at += n;
            Some(request)
        })
    }
}
