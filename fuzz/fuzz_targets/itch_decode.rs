//! ITCH 5.0 input from the network or a file: any bytes decode as one
//! message or fail (never a panic); read as an ITCH file they yield frames
//! whose counts add up, the same through the slice and the stream reader;
//! the order-book builder takes whatever decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_feed::book::BookBuilder;
use ringcast_feed::file::{SliceReader, StreamReader};
use ringcast_feed::itch::decode;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode(data) {
        assert_eq!(m.bytes(), data);
        assert_eq!(m.message_type().length(), data.len());
        assert_eq!(m.record(1).as_bytes().len(), m.message_type().record().size);
    }
    let mut reader = SliceReader::new(data);
    let mut books = BookBuilder::new();
    let mut items = 0u64;
    for item in reader.by_ref() {
        items += 1;
        if let Ok(m) = item {
            let _ = books.apply(&m);
        }
    }
    let counts = reader.counts().clone();
    assert_eq!(items, counts.frames() + counts.truncated_tail);
    assert_eq!(counts.bytes, data.len() as u64);
    let mut stream = StreamReader::new(data);
    while stream.next_message().expect("a slice never fails to read").is_some() {}
    assert_eq!(stream.counts(), &counts);
});
