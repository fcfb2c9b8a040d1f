//! Receivers in processes of their own: this binary re-executed with a
//! hidden [`CHILD_FLAG`] role. The TSC is invariant, so stamps taken in one
//! process compare with readings in another, and deadlines are absolute
//! ticks shared by all processes.

use crate::drive::{receive_all, receive_stamps, Delivery, StampLog};
use crate::harness::{joined, Ctx, DynPeer, PeerReceiver, PeerSender};
use crate::pinning::pin;
use core_affinity::CoreId;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;

/// Hidden first argument that makes this binary a receiver process.
pub const CHILD_FLAG: &str = "--child";

/// What a receiver process does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    Latency,
    Throughput,
}

/// A receiver process's orders, passed on its command line.
pub struct ChildSpec {
    pub kind: ChildKind,
    /// [`crate::harness::Info::key`] of the peer whose receiver to build.
    pub peer: String,
    pub name: String,
    pub dir: PathBuf,
    pub total: u64,
    pub warmup: u64,
    pub core: Option<CoreId>,
    /// Absolute TSC tick to give up at (the TSC is shared by all processes).
    pub deadline: u64,
}

impl ChildSpec {
    /// The command line that [`ChildSpec::parse`] reads back.
    fn to_args(&self) -> Vec<String> {
        vec![
            match self.kind {
                ChildKind::Latency => "latency".into(),
                ChildKind::Throughput => "throughput".into(),
            },
            self.peer.clone(),
            self.name.clone(),
            self.dir.display().to_string(),
            self.total.to_string(),
            self.warmup.to_string(),
            self.core.map_or("none".into(), |c| c.id.to_string()),
            self.deadline.to_string(),
        ]
    }

    /// Reads back [`ChildSpec::to_args`].
    fn parse(args: &[String]) -> Result<Self, String> {
        let [kind, peer, name, dir, total, warmup, core, deadline] = args else {
            return Err(format!("child: expected 8 arguments, got {args:?}"));
        };
        let number = |s: &String| {
            s.parse::<u64>()
                .map_err(|_| format!("child: not a number: {s:?}"))
        };
        Ok(Self {
            kind: match kind.as_str() {
                "latency" => ChildKind::Latency,
                "throughput" => ChildKind::Throughput,
                other => return Err(format!("child: unknown kind {other:?}")),
            },
            peer: peer.clone(),
            name: name.clone(),
            dir: PathBuf::from(dir),
            total: number(total)?,
            warmup: number(warmup)?,
            core: match core.as_str() {
                "none" => None,
                id => Some(CoreId {
                    id: number(&id.to_owned())? as usize,
                }),
            },
            deadline: number(deadline)?,
        })
    }

    /// The receiving half of a receiver process, given the receiver its peer
    /// built: say `ready`, receive, report on stdout (latency: a header
    /// line, then the stamp differences as little-endian i64, read back by
    /// [`ChildProc::read_stamps`]; throughput: one line, read back by
    /// [`ChildProc::read_delivery`]).
    pub fn serve<R: PeerReceiver>(&self, mut rx: R) -> Result<(), String> {
        let io = |e: std::io::Error| format!("child: writing to the parent: {e}");
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").map_err(io)?;
        out.flush().map_err(io)?;
        match self.kind {
            ChildKind::Latency => {
                let log = receive_stamps(&mut rx, self.total, self.warmup, self.deadline)?;
                let mut report =
                    format!("latency {} {}\n", log.lost, log.deltas.len()).into_bytes();
                for d in &log.deltas {
                    report.extend_from_slice(&d.to_le_bytes());
                }
                out.write_all(&report).map_err(io)?;
            }
            ChildKind::Throughput => {
                let d = receive_all(&mut rx, self.total, self.deadline)?;
                writeln!(out, "throughput {} {}", d.received, d.end).map_err(io)?;
            }
        }
        out.flush().map_err(io)
    }
}

/// Receiver process: pin, let the peer named in `args` build its receiver
/// and serve it. Errors go to stderr with exit status 1.
pub fn child_main(args: &[String], lineup: &[&dyn DynPeer]) -> i32 {
    let run = || -> Result<(), String> {
        let spec = ChildSpec::parse(args)?;
        pin(spec.core, "receiver process");
        let peer = lineup
            .iter()
            .find(|p| p.info().key == spec.peer)
            .ok_or_else(|| format!("child: unknown peer {:?}", spec.peer))?;
        peer.serve(&spec)
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// A receiver process: this binary re-executed with [`CHILD_FLAG`]. Killed
/// (it is ours) if dropped while still running.
pub struct ChildProc {
    child: Child,
    stdout: BufReader<ChildStdout>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl ChildProc {
    /// Starts a receiver process for `spec`, its stdout and stderr piped.
    fn spawn(spec: &ChildSpec) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
        let mut child = Command::new(exe)
            .arg(CHILD_FLAG)
            .args(spec.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting a receiver process: {e}"))?;
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut err = child.stderr.take().expect("stderr is piped");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Ok(Self {
            child,
            stdout,
            stderr: Some(stderr),
        })
    }

    /// The next line of its report; at its end, why it ended.
    fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => Ok(line.trim_end().to_owned()),
            _ => Err(self
                .finish()
                .err()
                .unwrap_or_else(|| "receiver process ended without its report".to_owned())),
        }
    }

    /// Reads a latency report ([`ChildSpec::serve`]) and waits for the
    /// process to exit.
    pub fn read_stamps(&mut self) -> Result<StampLog, String> {
        let header = self.read_line()?;
        let bad = || format!("bad report {header:?}");
        let fields: Vec<&str> = header.split(' ').collect();
        let (lost, count) = match fields.as_slice() {
            ["latency", lost, count] => (
                lost.parse::<u64>().map_err(|_| bad())?,
                count.parse::<usize>().map_err(|_| bad())?,
            ),
            _ => return Err(bad()),
        };
        let mut bytes = vec![0u8; count * 8];
        self.stdout
            .read_exact(&mut bytes)
            .map_err(|e| format!("reading the receiver's samples: {e}"))?;
        self.finish()?;
        let deltas = bytes
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        Ok(StampLog { deltas, lost })
    }

    /// Reads a throughput report ([`ChildSpec::serve`]) and waits for the
    /// process to exit.
    pub fn read_delivery(&mut self) -> Result<Delivery, String> {
        let line = self.read_line()?;
        let bad = || format!("bad report {line:?}");
        let fields: Vec<&str> = line.split(' ').collect();
        let delivery = match fields.as_slice() {
            ["throughput", received, end] => Delivery {
                received: received.parse().map_err(|_| bad())?,
                end: end.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        };
        self.finish()?;
        Ok(delivery)
    }

    /// Waits for it to exit: `Err` with its stderr unless it succeeded.
    fn finish(&mut self) -> Result<(), String> {
        let status = self
            .child
            .wait()
            .map_err(|e| format!("waiting for a receiver process: {e}"))?;
        let text = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if status.success() {
            if !text.trim().is_empty() {
                eprintln!("receiver process: {}", text.trim());
            }
            Ok(())
        } else {
            Err(format!(
                "receiver process failed ({status}): {}",
                text.trim()
            ))
        }
    }
}

impl Drop for ChildProc {
    /// Kills the process if it still runs (an error path left it behind).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a publisher in this process (on its core, in a thread of its own,
/// created there by `make_sender`) and one receiver process per spec: the
/// processes start once the publisher exists, the publisher starts `drive`
/// once every process said `ready`, and `collect` then reads the processes'
/// reports. The publisher stays open until `collect` is done, so that no
/// receiver sees its publisher go away while it still reads.
pub fn across_processes<S, T, R>(
    ctx: &Ctx,
    make_sender: impl FnOnce() -> Result<S, String> + Send,
    specs: &[ChildSpec],
    drive: impl FnOnce(&mut S) -> Result<T, String> + Send,
    collect: impl FnOnce(T, &mut [ChildProc]) -> Result<R, String>,
) -> Result<R, String>
where
    S: PeerSender,
    T: Send,
{
    thread::scope(|s| {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (go_tx, go_rx) = mpsc::channel::<bool>();
        let (done_tx, done_rx) = mpsc::channel::<Result<T, String>>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let publisher = s.spawn(move || {
            pin(ctx.publisher_core(), "publisher");
            let mut tx = match make_sender() {
                Ok(tx) => tx,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return Ok(());
                }
            };
            let _ = ready_tx.send(Ok(()));
            if go_rx.recv().unwrap_or(false) {
                let _ = done_tx.send(tx.connect().and_then(|()| drive(&mut tx)));
                let _ = release_rx.recv();
            }
            Ok(())
        });
        let started = (|| -> Result<Vec<ChildProc>, String> {
            ready_rx
                .recv()
                .map_err(|_| "publisher thread ended early".to_owned())??;
            let mut children = specs
                .iter()
                .map(ChildProc::spawn)
                .collect::<Result<Vec<_>, _>>()?;
            for child in &mut children {
                let line = child.read_line()?;
                if line != "ready" {
                    return Err(format!("receiver process said {line:?}, not ready"));
                }
            }
            Ok(children)
        })();
        let _ = go_tx.send(started.is_ok());
        // Receiver processes still running on an error are killed on drop.
        let outcome = started.and_then(|mut children| match done_rx.recv() {
            Ok(driven) => collect(driven?, &mut children),
            Err(_) => Err("publisher thread ended early".to_owned()),
        });
        let _ = release_tx.send(());
        joined(publisher.join(), "publisher").and(outcome)
    })
}
