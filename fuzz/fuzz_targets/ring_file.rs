//! Whole ring files, damaged while in use: a real ring (lossy or bounded,
//! one or many producers, slot heads in the slots or apart) is created,
//! published into and attached to; then the input overwrites words anywhere
//! in the file (stamps, cursor, lengths, records, the header) or truncates
//! it. The reader, a second
//! subscriber attaching afterwards and the publisher must never panic or
//! hang (libFuzzer's -timeout catches a hang), every error is ringcast's,
//! and the reader's accounting stays exact: received + lost = position -
//! start.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_core::{CreateOptions, Patience, Producers, Publisher, Start, Subscriber};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn ring_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("ringcast-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn accounted(sub: &Subscriber) {
    assert_eq!(
        sub.received() + sub.lost(),
        sub.position() - sub.start(),
        "the reader's accounting broke"
    );
}

fn drain(sub: &mut Subscriber, buf: &mut [u8], times: usize) {
    for _ in 0..times {
        match sub.try_recv(buf) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
        accounted(sub);
    }
    accounted(sub);
}

fuzz_target!(|data: &[u8]| {
    static RINGS: AtomicU64 = AtomicU64::new(0);
    let [mode, cap, count, rest @ ..] = data else {
        return;
    };
    let name = format!("f{}", RINGS.fetch_add(1, Ordering::Relaxed));
    let mut opts = CreateOptions::new(1 << (1 + cap % 5), 24);
    opts.dir = Some(ring_dir().clone());
    opts.timestamps = mode & 4 != 0;
    // Mode bit 3: the slots' heads apart, in the head table after the slots.
    opts.heads_apart = mode & 8 != 0;
    opts.claim_timeout = Duration::from_millis(1);
    opts.liveness_timeout = Duration::from_millis(5);
    if mode & 1 != 0 {
        opts.bounded = Some(opts.capacity);
    }
    if mode & 2 != 0 {
        opts.producers = Producers::many();
    }
    let Ok(mut publisher) = Publisher::create(&name, &opts) else {
        return;
    };
    let path = publisher.path().to_owned();
    let mut sub = Subscriber::attach(&name, Some(ring_dir()), Start::Oldest).unwrap();
    let msg = [7u8; 24];
    let soon = || Patience::until(Some(Instant::now() + Duration::from_millis(5)));
    for _ in 0..count % 20 {
        let _ = publisher.publish_with(&msg, soon());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let len = file.metadata().unwrap().len();
    // The damage: 9-byte operations, an offset and a word; offset 0xFFFF
    // truncates instead.
    for op in rest.chunks_exact(10) {
        let at = u16::from_le_bytes([op[0], op[1]]) as u64;
        let word = &op[2..10];
        if at == 0xFFFF {
            let _ = file.set_len(u64::from_le_bytes(word.try_into().unwrap()) % (len + 1));
        } else {
            // Spread the 64 Ki offsets over the whole file, 8-byte aligned.
            let offset = (at * 8 * len.div_ceil(8 * 0xFFFF)).min(len.saturating_sub(8)) & !7;
            let _ = file.write_all_at(word, offset);
        }
    }
    let mut buf = [0u8; 64];
    drain(&mut sub, &mut buf, 64);
    let _ = publisher.publish_with(&msg, soon());
    drain(&mut sub, &mut buf, 64);
    // A reader that attaches to the damaged file validates it first.
    if let Ok(mut late) = Subscriber::attach(&name, Some(ring_dir()), Start::Oldest) {
        drain(&mut late, &mut buf, 64);
    }
    drop(sub);
    drop(publisher);
    let _ = std::fs::remove_file(&path);
});
