//! Sender and handler over loopback multicast, in one process (the Python
//! suite runs them as separate processes): complete delivery in order,
//! packets skipped on purpose recovered by retransmission or by the other
//! line, exact accounts of what could not be recovered, the wire capture
//! and its replay.

use ringcast_feed::file::append_frame;
use ringcast_feed::itch::{MessageBuilder, MessageType};
use ringcast_feed_net::handler::{Deliver, DeliverError, Handler, HandlerOptions, HandlerReport};
use ringcast_feed_net::sender::{session, DropPlan, Line, Pace, Sender, SenderOptions};
use ringcast_feed_net::store::MessageStore;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// `n` Order Delete messages (19 bytes each: 65 to a 1400-byte packet),
/// message `seq` deleting order `seq` at time `seq` ns.
fn day(n: u64) -> Arc<MessageStore> {
    let mut bytes = Vec::new();
    for seq in 1..=n {
        let m = MessageBuilder::new(MessageType::OrderDelete, 1, 0, seq)
            .u64(seq)
            .finish()
            .unwrap()
            .to_vec();
        append_frame(&mut bytes, &m);
    }
    Arc::new(MessageStore::from_itch(bytes).unwrap())
}

/// Messages per packet of [`day`]'s messages: (1400 - 20) / (2 + 19).
const PER_PACKET: u64 = 65;

fn group(last: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(239, 255, 78, last), port)
}

/// Keeps what it is given, checking order on the way.
#[derive(Default)]
struct Collect {
    seqs: Vec<u64>,
    lost: Vec<Range<u64>>,
    bad_content: u64,
}

impl Deliver for Collect {
    fn message(&mut self, seq: u64, message: &[u8], recv_ns: u64) -> Result<(), DeliverError> {
        assert!(recv_ns > 0);
        // The order reference of message `seq` is `seq`.
        if message[11..19] != seq.to_be_bytes() {
            self.bad_content += 1;
        }
        self.seqs.push(seq);
        Ok(())
    }

    fn lost(&mut self, lost: Range<u64>) -> Result<(), DeliverError> {
        self.lost.push(lost);
        Ok(())
    }
}

/// Runs a sender (in a thread) and a handler (here) until the handler
/// has accounted for the whole session.
fn run(
    store: Arc<MessageStore>,
    sender: SenderOptions,
    mut handler: HandlerOptions,
) -> (HandlerReport, Collect) {
    let stop = AtomicBool::new(false);
    let sender = Sender::new(store, sender).unwrap();
    handler.retransmit = sender.retransmit_addr();
    handler.idle_timeout = Some(Duration::from_secs(10));
    let mut h = Handler::new(handler).unwrap();
    let mut got = Collect::default();
    let report = std::thread::scope(|s| {
        let sending = s.spawn(|| sender.run(&stop).unwrap());
        let report = h.run(&mut got, &AtomicBool::new(false)).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        sending.join().unwrap();
        report
    });
    (report, got)
}

fn sender_options(lines: Vec<Line>, retransmit: bool) -> SenderOptions {
    let mut o = SenderOptions::new(session("TEST").unwrap(), lines[0].group);
    o.lines = lines;
    o.pace = Pace::Rate(500_000.0);
    o.heartbeat = Duration::from_millis(50);
    o.linger = Duration::from_secs(5);
    if retransmit {
        o.retransmit = Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
    }
    o
}

fn assert_complete(report: &HandlerReport, got: &Collect, n: u64) {
    assert!(report.ended, "{report:?}");
    assert_eq!(got.seqs.len() as u64, n, "{report:?}");
    assert!(
        got.seqs.iter().zip(1..).all(|(s, i)| *s == i),
        "in order, once each"
    );
    assert_eq!(got.bad_content, 0);
    assert!(
        got.lost.is_empty() && report.unrecovered.is_empty(),
        "{report:?}"
    );
    assert_eq!((report.delivered, report.lost), (n, 0));
}

#[test]
fn a_day_arrives_complete_and_in_order() {
    let n = 50_000;
    let g = group(1, 47_401);
    let lines = vec![Line {
        group: g,
        drop: DropPlan::Never,
    }];
    let (report, got) = run(day(n), sender_options(lines, true), HandlerOptions::new(g));
    assert_complete(&report, &got, n);
    assert_eq!(report.session.as_deref(), Some("TEST"));
    assert_eq!(report.lines[0].bad_packets, 0);
}

#[test]
fn skipped_packets_come_back_through_retransmission() {
    let n = 50_000;
    let g = group(2, 47_402);
    let lines = vec![Line {
        group: g,
        drop: DropPlan::Percent {
            percent: 5.0,
            seed: 1,
        },
    }];
    let (report, got) = run(day(n), sender_options(lines, true), HandlerOptions::new(g));
    assert_complete(&report, &got, n);
    assert!(report.gaps > 0 && report.requests > 0, "{report:?}");
    assert!(report.recovered >= 20 * PER_PACKET, "{report:?}");
}

#[test]
fn two_lines_with_loss_on_each_lose_nothing() {
    let n = 50_000;
    let (a, b) = (group(3, 47_403), group(4, 47_404));
    let lines = vec![
        Line {
            group: a,
            drop: DropPlan::Percent {
                percent: 5.0,
                seed: 2,
            },
        },
        Line {
            group: b,
            drop: DropPlan::Percent {
                percent: 5.0,
                seed: 3,
            },
        },
    ];
    let mut options = HandlerOptions::new(a);
    options.lines.push(b);
    // Generous arbitration: on a loaded 2-CPU host the other line's copy
    // can come a few ms late.
    options.arbitration = Duration::from_millis(20);
    let (report, got) = run(day(n), sender_options(lines, true), options);
    assert_complete(&report, &got, n);
    let (la, lb) = (&report.lines[0], &report.lines[1]);
    assert!(la.first > 0 && lb.first > 0, "{report:?}");
    assert_eq!(la.first + lb.first + report.recovered, n);
    assert!(report.filled_by_line > 0, "{report:?}");
}

#[test]
fn what_cannot_be_recovered_is_reported_exactly() {
    let n = 20_000;
    let g = group(5, 47_405);
    let lines = vec![Line {
        group: g,
        drop: DropPlan::Packets(vec![3, 7, 8, 307]),
    }];
    // No retransmission server: the skipped packets are gone. Flat out,
    // so that every packet is full and packet p holds 65p+1 ..= 65(p+1).
    let mut options = sender_options(lines, false);
    options.pace = Pace::Max;
    let (report, got) = run(day(n), options, HandlerOptions::new(g));
    let packet = |p: u64| 1 + p * PER_PACKET..1 + (p + 1) * PER_PACKET;
    let last = 1 + 307 * PER_PACKET..n + 1;
    assert_eq!(
        report.unrecovered,
        vec![packet(3), packet(7).start..packet(8).end, last.clone()]
    );
    assert_eq!(got.lost, report.unrecovered);
    let lost = 3 * PER_PACKET + (last.end - last.start);
    assert_eq!(report.lost, lost);
    assert_eq!(report.delivered + lost, n);
    assert!(report.ended, "the end of session gave the tail: {report:?}");
    // Delivered in order, and none of the lost ones.
    assert!(got.seqs.windows(2).all(|w| w[0] < w[1]));
    assert!(got
        .seqs
        .iter()
        .all(|s| !report.unrecovered.iter().any(|r| r.contains(s))));
}

// -- wire capture and replay -----------------------------------------------------

use ringcast_feed::mold::Packet;
use ringcast_feed::pcap::{udp_in_frame, CaptureReader};
use ringcast_feed_net::store::{CapturedStream, StreamChoice};

/// The UDP datagrams of a capture file: (interface, source, destination, payload).
fn captured(path: &std::path::Path) -> Vec<(u32, SocketAddrV4, SocketAddrV4, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    CaptureReader::new(&bytes)
        .unwrap()
        .map(|f| {
            let f = f.unwrap();
            let d = udp_in_frame(f.link_type, f.data).unwrap();
            (f.interface, d.source, d.destination, d.payload.to_vec())
        })
        .collect()
}

#[test]
fn every_datagram_is_captured_and_the_default_replay_is_line_a() {
    let n = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wire.pcapng");
    let (a, b) = (group(20, 47_420), group(21, 47_421));
    // Both lines skip packets (never the same ones), and the server fills
    // in what a packet skipped on both would lose: every kind of datagram.
    let lines = vec![
        Line {
            group: a,
            drop: DropPlan::Packets((0..300).step_by(7).collect()),
        },
        Line {
            group: b,
            drop: DropPlan::Packets((3..300).step_by(7).collect()),
        },
    ];
    let mut options = HandlerOptions::new(a);
    options.lines = vec![a, b];
    options.arbitration = Duration::from_millis(50);
    options.capture = Some(path.clone());
    let (report, got) = run(day(n), sender_options(lines, true), options);
    assert_complete(&report, &got, n);
    let wire = captured(&path);
    // Every datagram of every socket, with its addresses.
    let on = |i: u32| wire.iter().filter(|d| d.0 == i).count() as u64;
    assert_eq!(on(0), report.lines[0].packets);
    assert_eq!(on(1), report.lines[1].packets);
    assert_eq!(on(2), report.answers);
    assert_eq!(report.captured, wire.len() as u64);
    assert!(wire
        .iter()
        .filter(|d| d.0 < 2)
        .all(|d| d.2 == [a, b][d.0 as usize]));
    assert!(wire.iter().all(|d| d.1.ip().is_loopback()));
    // Each line's message packets: all the sender sent it.
    let messages_on = |i: u32| {
        wire.iter()
            .filter(|d| d.0 == i)
            .map(|d| u64::from(Packet::parse(&d.3).unwrap().message_count()))
            .sum::<u64>()
    };
    assert_eq!(
        messages_on(0),
        report.lines[0].first + report.lines[0].duplicates
    );

    // The default replay is line A alone.
    let bytes = std::fs::read(&path).unwrap();
    let stream = CapturedStream::from_capture(&bytes, StreamChoice::First).unwrap();
    assert_eq!(stream.destination(), a);
    assert_eq!(stream.len() as u64, report.lines[0].packets);
    assert_eq!(stream.others(), on(1) + on(2));
    assert_eq!(
        CapturedStream::from_capture(&bytes, StreamChoice::Port(b.port()))
            .unwrap()
            .destination(),
        b
    );
    let e = CapturedStream::from_capture(&bytes, StreamChoice::Port(1))
        .err()
        .unwrap();
    assert!(e.to_string().contains(&format!("{a} (")), "{e}");
}

#[test]
fn a_replayed_capture_reproduces_the_stream() {
    let n = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wire.pcapng");
    let (a, again) = (group(22, 47_422), group(23, 47_423));
    let lines = vec![Line {
        group: a,
        drop: DropPlan::Never,
    }];
    let mut options = HandlerOptions::new(a);
    options.capture = Some(path.clone());
    let (report, got) = run(day(n), sender_options(lines, false), options);
    assert_complete(&report, &got, n);

    let bytes = std::fs::read(&path).unwrap();
    let stream = Arc::new(CapturedStream::from_capture(&bytes, StreamChoice::First).unwrap());
    let mut replay = SenderOptions::new(session("IGNORED").unwrap(), again);
    // Twice the capture's pace: the gaps between packets are kept.
    replay.pace = Pace::Original { speed: 2.0 };
    let sender = Sender::replay(stream.clone(), replay.clone()).unwrap();
    let mut options = HandlerOptions::new(again);
    options.idle_timeout = Some(Duration::from_secs(10));
    let mut h = Handler::new(options).unwrap();
    let mut got = Collect::default();
    let stop = AtomicBool::new(false);
    let (report, sent) = std::thread::scope(|s| {
        let sending = s.spawn(|| sender.run(&stop).unwrap());
        let report = h.run(&mut got, &AtomicBool::new(false)).unwrap();
        (report, sending.join().unwrap())
    });
    assert_complete(&report, &got, n);
    assert_eq!(report.session.as_deref(), Some("TEST"), "sent as captured");
    assert_eq!((sent.messages, sent.packets), (n, stream.len() as u64));
    // A replay has no retransmission server.
    replay.retransmit = Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
    let e = Sender::replay(stream, replay).err().unwrap();
    assert!(e.to_string().contains("no retransmission server"), "{e}");
}
