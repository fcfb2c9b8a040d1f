//! Header and layout validation: any bytes, any file size. Whatever passes
//! must be a layout that could have been created, of exactly that size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_core::format::layout;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (size, header) = data.split_at(8);
    let file_len = u64::from_le_bytes(size.try_into().unwrap());
    for granule in [1, 4096] {
        if let Ok(found) = layout::parse_header(header, file_len, granule, Path::new("fuzz")) {
            found.check().expect("a layout read from a header was accepted but is impossible");
            assert_eq!(found.file_len_on(granule), file_len, "accepted the wrong size");
        }
    }
});
