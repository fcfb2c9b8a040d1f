//! The schema in a ring header, checked before numpy reads it: any bytes get
//! an answer (never a panic, in bounded time), and what passes parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_core::format::schema;

fuzz_target!(|data: &[u8]| {
    let verdict = schema::check(data);
    if verdict.is_ok() && !data.is_empty() {
        let text = std::str::from_utf8(&data[schema::PREFIX.len()..]).unwrap();
        schema::parse(text).expect("a schema that passed the check does not parse");
    }
    assert_eq!(schema::check(data), verdict, "the verdict changed");
});
