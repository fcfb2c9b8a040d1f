//! The bridge against Aeron alone, one role per process (the hosts are made
//! by `benches/bridge.py`, which runs these roles in network namespaces and
//! prints the comparison):
//!
//! - `aeron-pong LISTEN REPLY` / `aeron-ping SEND LISTEN N`: Aeron's own
//!   ping-pong (as its cping/cpong): one 64-byte message each way.
//! - `bridge-echo LISTEN REPLY` / `bridge-ping SEND LISTEN N`: the same
//!   round trip ring -> Aeron -> ring -> Aeron -> ring: the ping writes its
//!   ring, a bridge carries it to the echo's ring, the echo copies it into
//!   its own ring, a bridge carries that back.
//! - `aeron-sink LISTEN N` / `aeron-blast SEND N`: Aeron's own throughput
//!   for 64-byte messages (one offer each, as its streaming publisher).
//! - `bridge-sink LISTEN N` / `bridge-blast SEND N`: a ring published flat
//!   out, bridged, read from the far ring.
//!
//! Every process runs its own embedded media driver (SHARED threading);
//! both ends of the bridged round trip share their host's driver. Idle
//! strategy from `RINGCAST_BENCH_IDLE` (default spin). Results are one JSON
//! line on stdout.

use hdrhistogram::Histogram;
use ringcast_bridge::transport::{Client, Driver, Idle, Idler};
use ringcast_bridge::{recv, send, DriverChoice, DriverOptions, RecvOptions, SendOptions};
use ringcast_core::{CreateOptions, Publisher, Start, Subscriber};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEN: usize = 64;
const PING_STREAM: i32 = 2001;
const PONG_STREAM: i32 = 2002;
const WARMUP: usize = 5_000;
/// Longer than any recovery of a lost datagram takes.
const STUCK: Duration = Duration::from_secs(20);

fn idle() -> String {
    std::env::var("RINGCAST_BENCH_IDLE").unwrap_or_else(|_| "spin".into())
}

/// The waiting of the bench's own polling loops, as the bridge's.
fn idler() -> Idler {
    Idler::new(Idle::parse(&idle()).expect("RINGCAST_BENCH_IDLE: spin, backoff or sleep"))
}

fn driver() -> Driver {
    Driver::start(&DriverOptions {
        idle: idle(),
        ..DriverOptions::default()
    })
    .expect("a media driver")
}

fn external(d: &Driver) -> DriverOptions {
    DriverOptions {
        choice: DriverChoice::External(d.dir().to_owned()),
        idle: idle(),
        ..DriverOptions::default()
    }
}

fn now_ns() -> u64 {
    ringcast_core::sys::clock::now_ns()
}

fn quantiles(h: &Histogram<u64>) -> String {
    format!(
        "{{\"samples\": {}, \"p50_ns\": {}, \"p90_ns\": {}, \"p99_ns\": {}, \"p999_ns\": {}, \"max_ns\": {}}}",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    )
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("bounds")
}

// --- Aeron alone ---------------------------------------------------------

fn aeron_pong(listen: &str, reply: &str) {
    let d = driver();
    let c = Client::connect(&d).expect("client");
    let sub = c.subscription(listen, PING_STREAM).expect("subscription");
    let publication = c.publication(reply, PONG_STREAM).expect("publication");
    let mut done = false;
    let mut wait = idler();
    while !done {
        let work = sub
            .poll_fn(
                |buf, _| {
                    done |= buf.len() == 1;
                    while publication.offer(buf).is_err() {
                        std::hint::spin_loop();
                    }
                },
                16,
            )
            .expect("poll");
        wait.idle(work as usize);
    }
    std::thread::sleep(Duration::from_millis(200));
}

fn aeron_ping(send_ch: &str, listen: &str, n: usize) {
    let d = driver();
    let c = Client::connect(&d).expect("client");
    let publication = c.publication(send_ch, PING_STREAM).expect("publication");
    let sub = c.subscription(listen, PONG_STREAM).expect("subscription");
    while !publication.is_connected() || sub.image_count().unwrap_or(0) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut h = histogram();
    let mut msg = [0u8; LEN];
    let mut wait = idler();
    for i in 0..WARMUP + n {
        let t = now_ns();
        msg[..8].copy_from_slice(&t.to_le_bytes());
        while publication.offer(&msg).is_err() {
            std::hint::spin_loop();
        }
        let mut got = false;
        let since = Instant::now();
        while !got {
            let work = sub.poll_fn(|_, _| got = true, 1).expect("poll");
            wait.idle(work as usize);
            if since.elapsed() > STUCK {
                eprintln!("no pong for {STUCK:?} (ping {i})");
                std::process::exit(3);
            }
        }
        if i >= WARMUP {
            h.saturating_record(now_ns() - t);
        }
    }
    while publication.offer(&[0u8]).is_err() {
        std::hint::spin_loop();
    }
    println!("{{\"rtt\": {}}}", quantiles(&h));
}

fn aeron_sink(listen: &str, n: usize) {
    let d = driver();
    let c = Client::connect(&d).expect("client");
    let sub = c.subscription(listen, PING_STREAM).expect("subscription");
    let (mut got, mut first) = (0usize, None::<Instant>);
    let mut wait = idler();
    while got < n {
        let work = sub
            .poll_fn(
                |_, _| {
                    first.get_or_insert_with(Instant::now);
                    got += 1;
                },
                256,
            )
            .expect("poll");
        wait.idle(work as usize);
    }
    let secs = first.expect("got some").elapsed().as_secs_f64();
    println!(
        "{{\"messages\": {got}, \"seconds\": {secs}, \"rate\": {}, \"naks_sent\": {}}}",
        got as f64 / secs,
        c.counters().naks_sent
    );
}

fn aeron_blast(send_ch: &str, n: usize) {
    let d = driver();
    let c = Client::connect(&d).expect("client");
    let publication = c.publication(send_ch, PING_STREAM).expect("publication");
    while !publication.is_connected() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let msg = [7u8; LEN];
    for _ in 0..n {
        while publication.offer(&msg).is_err() {
            std::hint::spin_loop();
        }
    }
    // Linger: the receiver may still need retransmissions.
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "{{\"retransmits_sent\": {}}}",
        c.counters().retransmits_sent
    );
}

// --- The bridge ------------------------------------------------------------

fn ring(dir: &Path, name: &str, bounded: bool) -> Publisher {
    let mut o = CreateOptions::new(1 << 14, LEN as u32);
    o.dir = Some(dir.to_owned());
    o.timestamps = true;
    o.fixed_size = true;
    o.bounded = bounded.then_some(1 << 14);
    Publisher::create(name, &o).expect("ring")
}

/// One host's side of a bridged bench: a ring directory, the host's media
/// driver (shared by its bridges, as on one machine) and the bridges'
/// threads. Dropping it stops the bridges and removes the directory.
struct Host {
    dir: PathBuf,
    _driver: Driver,
    via: DriverOptions,
    stop: Arc<AtomicBool>,
    bridges: Vec<std::thread::JoinHandle<()>>,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::Builder::new()
            .prefix("ringcast-bridge-bench-")
            .tempdir_in("/dev/shm")
            .expect("a directory")
            .keep();
        let driver = driver();
        let via = external(&driver);
        Host {
            dir,
            _driver: driver,
            via,
            stop: Arc::new(AtomicBool::new(false)),
            bridges: Vec::new(),
        }
    }

    /// Bridges ring `name` of this host onto `ch`.
    fn send(&mut self, name: &str, ch: &str, stream: i32) {
        let mut o = SendOptions::new(name, ch);
        o.ring_dir = Some(self.dir.clone());
        o.stream = stream;
        o.driver = self.via.clone();
        // From the oldest: the sender attaches once a receiver is connected,
        // which may be after the first message was published.
        o.first = ringcast_bridge::FirstMessage::Oldest;
        let stop = self.stop.clone();
        self.bridges.push(std::thread::spawn(move || {
            send(&o, &stop, |_| {}).expect("bridge send");
        }));
    }

    /// Bridges `ch` into this host's (bounded) ring `name`.
    fn recv(&mut self, name: &str, ch: &str, stream: i32) {
        let mut o = RecvOptions::new(ch);
        o.ring = Some(name.to_owned());
        o.ring_dir = Some(self.dir.clone());
        o.stream = stream;
        o.driver = self.via.clone();
        o.bounded = true;
        let stop = self.stop.clone();
        self.bridges.push(std::thread::spawn(move || {
            recv(&o, &stop, |_| {}).expect("bridge recv");
        }));
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // The bridges end before their driver (dropped after this).
        self.stop.store(true, Ordering::Relaxed);
        for bridge in self.bridges.drain(..) {
            let _ = bridge.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn attach(dir: &Path, name: &str, start: Start) -> Subscriber {
    loop {
        match Subscriber::builder(name).dir(dir).start(start).attach() {
            Ok(s) => return s,
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Reads one message; a round trip that never comes back is an error (the
/// bench would hang otherwise).
fn read_one(sub: &mut Subscriber, buf: &mut [u8], wait: &mut Idler) {
    let since = Instant::now();
    loop {
        if sub.try_recv(buf).expect("read").is_some() {
            wait.idle(1);
            return;
        }
        wait.idle(0);
        if since.elapsed() > STUCK {
            eprintln!("no message for {STUCK:?} (position {})", sub.position());
            std::process::exit(3);
        }
    }
}

fn bridge_echo(listen: &str, reply: &str) {
    let mut host = Host::new();
    let mut pong = ring(&host.dir, "pong", true);
    host.send("pong", reply, PONG_STREAM);
    host.recv("ping.far", listen, PING_STREAM);
    // From the oldest: the first ping may come before this attaches.
    let mut sub = attach(&host.dir, "ping.far", Start::Oldest);
    let mut buf = [0u8; LEN];
    let mut wait = idler();
    loop {
        read_one(&mut sub, &mut buf, &mut wait);
        pong.publish(&buf).expect("publish");
        if buf[8] == 1 {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
}

fn bridge_ping(send_ch: &str, listen: &str, n: usize) {
    let mut host = Host::new();
    let mut ping = ring(&host.dir, "ping", true);
    host.send("ping", send_ch, PING_STREAM);
    host.recv("pong.far", listen, PONG_STREAM);
    let mut sub = attach(&host.dir, "pong.far", Start::Latest);
    // Both bridges carry: the first ping may wait for the echo's bridge.
    let mut h = histogram();
    let mut msg = [0u8; LEN];
    let mut buf = [0u8; LEN];
    let mut wait = idler();
    for i in 0..WARMUP + n {
        let t = now_ns();
        msg[..8].copy_from_slice(&t.to_le_bytes());
        msg[8] = (i + 1 == WARMUP + n) as u8;
        ping.publish(&msg).expect("publish");
        read_one(&mut sub, &mut buf, &mut wait);
        if i >= WARMUP {
            h.saturating_record(now_ns() - t);
        }
    }
    println!("{{\"rtt\": {}}}", quantiles(&h));
}

fn bridge_sink(listen: &str, n: usize) {
    let mut host = Host::new();
    host.recv("blast.far", listen, PING_STREAM);
    let mut sub = attach(&host.dir, "blast.far", Start::Latest);
    let mut rows = vec![0u8; 4096 * LEN];
    // Timed from the first batch read: messages carried before this
    // attached are left out of the count (the far ring keeps the source's
    // sequences, so the position says how many are still to come).
    let mut started = None::<(Instant, u64)>;
    let mut wait = idler();
    while sub.position() < n as u64 {
        let k = sub
            .try_recv_rows(&mut rows, LEN, 4096, |_, _| {})
            .expect("read");
        if k > 0 && started.is_none() {
            started = Some((Instant::now(), sub.position() - k as u64));
        }
        wait.idle(k);
    }
    let (first, from) = started.expect("got some");
    let secs = first.elapsed().as_secs_f64();
    let got = n as u64 - from;
    println!(
        "{{\"messages\": {got}, \"seconds\": {secs}, \"rate\": {}, \"lost\": {}}}",
        got as f64 / secs,
        sub.lost()
    );
}

fn bridge_blast(send_ch: &str, n: usize) {
    let mut host = Host::new();
    let mut blast = ring(&host.dir, "blast", true);
    host.send("blast", send_ch, PING_STREAM);
    // The sender attaches once a receiver is connected: wait for its stage.
    while blast.subscriber_count() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let msgs = vec![[7u8; LEN]; 256];
    let mut sent = 0;
    while sent < n {
        let k = (n - sent).min(msgs.len());
        blast
            .publish_all(
                msgs[..k].iter().map(|m| &m[..]),
                ringcast_core::Patience::forever(),
            )
            .expect("publish");
        sent += k;
    }
    std::thread::sleep(Duration::from_secs(2));
    println!("{{\"published\": {sent}}}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| usage());
    let count = |i: usize| arg(i).parse::<usize>().unwrap_or_else(|_| usage());
    match arg(1).as_str() {
        "aeron-pong" => aeron_pong(&arg(2), &arg(3)),
        "aeron-ping" => aeron_ping(&arg(2), &arg(3), count(4)),
        "aeron-sink" => aeron_sink(&arg(2), count(3)),
        "aeron-blast" => aeron_blast(&arg(2), count(3)),
        "bridge-echo" => bridge_echo(&arg(2), &arg(3)),
        "bridge-ping" => bridge_ping(&arg(2), &arg(3), count(4)),
        "bridge-sink" => bridge_sink(&arg(2), count(3)),
        "bridge-blast" => bridge_blast(&arg(2), count(3)),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: bridge aeron-pong|bridge-echo LISTEN REPLY | aeron-ping|bridge-ping SEND LISTEN N \
         | aeron-sink|bridge-sink LISTEN N | aeron-blast|bridge-blast SEND N (see benches/bridge.py)"
    );
    std::process::exit(2)
}
