//! Capture files users bring: any bytes as a pcapng or classic pcap file
//! (never a panic); after an error the reader stops; a cut reports exactly
//! the packets before it; every frame's UDP datagram is found or not
//! (never a panic), its payload within the frame; appending scans the same
//! bytes without a panic and never past their end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_feed::pcap::{pcapng_append_offset, udp_in_frame, CaptureError, CaptureReader};
use std::io::{BufReader, Cursor};

fuzz_target!(|data: &[u8]| {
    if let Ok(offset) = pcapng_append_offset(&mut BufReader::new(Cursor::new(data))) {
        assert!(offset as usize <= data.len());
    }
    let Ok(mut reader) = CaptureReader::new(data) else {
        return;
    };
    let mut frames = 0u64;
    while let Some(item) = reader.next_frame() {
        match item {
            Ok(frame) => {
                frames += 1;
                if let Some(d) = udp_in_frame(frame.link_type, frame.data) {
                    assert!(d.payload.len() <= frame.data.len());
                }
            }
            Err(e) => {
                if let CaptureError::Truncated { packets, offset, needed, available } = e {
                    assert_eq!(packets, frames);
                    assert!(needed > available);
                    assert_eq!(offset + available, data.len() as u64);
                }
                assert!(reader.next_frame().is_none(), "the reader stops after an error");
                break;
            }
        }
    }
    assert_eq!(reader.packets(), frames);
});
