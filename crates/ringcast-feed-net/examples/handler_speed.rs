//! Times the feed handler receiving a replay: joins GROUP, publishes into
//! typed rings in a temporary directory, and once the session ended prints
//! its delivery rate while data flowed (first to last message delivered),
//! kernel drops, gaps, recovered and unrecovered messages, and its own CPU
//! time (user and system, from /proc/self/stat) and context switches per
//! packet. Send the replay from another process, e.g.
//! `ringcast feed send day.itch --group 239.255.82.1:49001 --retransmit 127.0.0.1:49002`.
//!
//! Usage: cargo run --release -p ringcast-feed-net --example handler_speed --
//!        GROUP RETRANSMIT [--batch N] [--receive-buffer-mb N] [--ready-file PATH]
use ringcast_feed_net::handler::{Deliver, DeliverError, Handler, HandlerOptions};
use ringcast_feed_net::rings::{TopicOptions, TopicRings};
use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

struct Timed {
    rings: TopicRings,
    count: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Deliver for Timed {
    fn message(&mut self, seq: u64, message: &[u8], recv_ns: u64) -> Result<(), DeliverError> {
        self.rings.message(seq, message, recv_ns)?;
        // A clock read every 256 messages: the rate's error is at most 256
        // messages at either end, and the timing costs the handler nothing.
        if self.count % 256 == 0 {
            let now = Instant::now();
            self.first.get_or_insert(now);
            self.last = Some(now);
        }
        self.count += 1;
        Ok(())
    }

    fn lost(&mut self, lost: Range<u64>) -> Result<(), DeliverError> {
        Deliver::lost(&mut self.rings, lost)
    }
}

/// (user s, system s, voluntary switches, involuntary switches) of this process.
fn cpu() -> (f64, f64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the name.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        ticks(11),
        ticks(12),
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let group = args.get(1).expect("GROUP").parse().expect("ADDRESS:PORT");
    let server = args
        .get(2)
        .expect("RETRANSMIT")
        .parse()
        .expect("ADDRESS:PORT");
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let mut topics = TopicOptions::new("bench");
    topics.dir = Some(dir.path().to_owned());
    let mut options = HandlerOptions::new(group);
    options.retransmit = Some(server);
    options.idle_timeout = Some(Duration::from_secs(10));
    if let Some(b) = opt("--batch") {
        options.batch = b.parse().expect("--batch N");
    }
    if let Some(mb) = opt("--receive-buffer-mb") {
        options.receive_buffer = mb.parse::<usize>().expect("--receive-buffer-mb N") << 20;
    }
    let batch = options.batch;
    let mut sink = Timed {
        rings: TopicRings::create(&topics).unwrap(),
        count: 0,
        first: None,
        last: None,
    };
    let mut handler = Handler::new(options).unwrap();
    if let Some(path) = opt("--ready-file") {
        std::fs::write(path, b"ready").unwrap();
    }
    let before = cpu();
    let report = handler.run(&mut sink, &AtomicBool::new(false)).unwrap();
    let after = cpu();
    let flowing = match (sink.first, sink.last) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let packets = report.lines[0].packets.max(1) as f64;
    println!(
        "{{\"batch\": {batch}, \"receive_buffer\": {}, \"delivered\": {}, \"seconds\": {flowing:.4}, \
         \"rate\": {:.0}, \"packets\": {}, \"kernel_drops\": {}, \"gaps\": {}, \"recovered\": {}, \
         \"unrecovered\": {}, \"user_s\": {:.2}, \"sys_s\": {:.2}, \"cpu_ns_per_msg\": {:.0}, \
         \"vcsw_per_packet\": {:.3}, \"ivcsw\": {}}}",
        report.lines[0].receive_buffer,
        report.delivered,
        report.delivered.saturating_sub(256) as f64 / flowing.max(1e-9),
        report.lines[0].packets,
        report.lines[0].kernel_drops.unwrap_or(0),
        report.gaps,
        report.recovered,
        report.lost,
        after.0 - before.0,
        after.1 - before.1,
        (after.0 - before.0 + after.1 - before.1) * 1e9 / report.delivered.max(1) as f64,
        (after.2 - before.2) as f64 / packets,
        after.3 - before.3,
    );
    sink.rings.close();
}
