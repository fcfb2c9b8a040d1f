//! Encoded latency histograms (HdrHistogram's compressed base64 form, as
//! read from logs and from other processes): any text decodes or fails,
//! and what decodes encodes back to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_latency as latency;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(h) = latency::decode(text) {
        let again = latency::decode(&latency::encode(&h)).expect("a re-encoded histogram decodes");
        assert_eq!(again.len(), h.len());
        assert_eq!(again.max(), h.max());
    }
});
