//! Aeron underneath the bridge: the media driver (embedded in this process
//! by default, or an external one by its directory), the client, one
//! publication or subscription, and the driver's counters (NAKs,
//! retransmits, ...), with every failure turned into a [`BridgeError`].
//!
//! The embedded driver runs Aeron's SHARED threading mode on one thread of
//! ours (conductor, sender and receiver duty cycles in turn): on a 2-core
//! host three spinning driver threads would starve the bridge itself.

use crate::error::BridgeError;
use rusteron_media_driver as aeron;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the media driver is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DriverChoice {
    /// A driver of our own on a thread of this process, in a fresh
    /// directory under /dev/shm, removed when the bridge ends.
    #[default]
    Embedded,
    /// A running Aeron media driver (Java or C) using this directory.
    External(String),
}

/// Tuning of the embedded driver.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    pub choice: DriverChoice,
    /// Term buffer length of network publications (power of two, 64 KiB to
    /// 1 GiB): three terms are the most a sender can be ahead of its
    /// slowest receiver.
    pub term_length: Option<usize>,
    /// How the embedded driver and the bridge's own loop idle: "spin"
    /// (lowest latency, a core each), "backoff" (spin, yield, then sleep:
    /// the default), "sleep".
    pub idle: String,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            choice: DriverChoice::Embedded,
            term_length: None,
            idle: "backoff".into(),
        }
    }
}

/// A media driver the bridge uses: stops (and removes its directory) on
/// drop when it is our own.
pub struct Driver {
    dir: String,
    own: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Driver {
    /// Starts the embedded driver, or checks that the external one's
    /// directory is there.
    pub fn start(options: &DriverOptions) -> Result<Driver, BridgeError> {
        if let DriverChoice::External(dir) = &options.choice {
            if !std::path::Path::new(dir).join("cnc.dat").exists() {
                return Err(BridgeError::Driver {
                    detail: format!(
                        "no media driver at {dir} (no cnc.dat there): start one (aeronmd, or \
                         Aeron's Java MediaDriver) with aeron.dir={dir}, or leave --aeron-dir \
                         out to run one inside the bridge"
                    ),
                });
            }
            return Ok(Driver {
                dir: dir.clone(),
                own: None,
            });
        }
        let idle = match Idle::parse(&options.idle)? {
            Idle::Spin => "spin",
            Idle::Backoff => "backoff",
            Idle::Sleep => "sleep-ns",
        };
        if let Some(t) = options.term_length {
            if !t.is_power_of_two() || !(64 << 10..=1 << 30).contains(&t) {
                return Err(BridgeError::Argument(format!(
                    "term length {t}: a power of two from 64 KiB to 1 GiB"
                )));
            }
        }
        remove_dead_drivers_dirs();
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = format!(
            "{DRIVER_DIR_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let thread = {
            let stop = stop.clone();
            let dir = dir.clone();
            let term_length = options.term_length;
            std::thread::Builder::new()
                .name("aeron-driver".into())
                .spawn(move || {
                    let started = (|| -> Result<aeron::AeronDriver, aeron::AeronCError> {
                        let ctx = aeron::AeronDriverContext::new()?;
                        ctx.set_dir(&cstring(&dir))?;
                        ctx.set_dir_delete_on_start(true)?;
                        ctx.set_dir_delete_on_shutdown(true)?;
                        ctx.set_threading_mode(
                            aeron::bindings::aeron_threading_mode_enum::AERON_THREADING_MODE_SHARED,
                        )?;
                        ctx.set_shared_idle_strategy(&cstring(idle))?;
                        if let Some(t) = term_length {
                            ctx.set_term_buffer_length(t)?;
                        }
                        ctx.set_term_buffer_sparse_file(false)?;
                        let driver = aeron::AeronDriver::new(&ctx)?;
                        driver.start(true)?;
                        Ok(driver)
                    })();
                    let driver = match started {
                        Ok(d) => {
                            let _ = ready_tx.send(Ok(()));
                            d
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(aeron_detail(&e)));
                            return;
                        }
                    };
                    while !stop.load(Ordering::Acquire) {
                        match driver.main_do_work() {
                            Ok(work) => driver.main_idle_strategy(work),
                            // A duty-cycle error is logged by the driver and
                            // reported to clients through their errors.
                            Err(_) => std::thread::sleep(Duration::from_millis(1)),
                        }
                    }
                    drop(driver);
                })
                .map_err(|e| BridgeError::Driver {
                    detail: format!("cannot start its thread: {e}"),
                })?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Driver {
                dir,
                own: Some((stop, thread)),
            }),
            Ok(Err(detail)) => {
                let _ = thread.join();
                Err(BridgeError::Driver {
                    detail: format!("could not start in {dir}: {detail}"),
                })
            }
            Err(_) => Err(BridgeError::Driver {
                detail: "its thread ended while starting".into(),
            }),
        }
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// Whether this driver runs inside the bridge (its counters are the
    /// bridge's alone).
    pub fn embedded(&self) -> bool {
        self.own.is_some()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.own.take() {
            stop.store(true, Ordering::Release);
            let _ = thread.join();
        }
    }
}

/// How a bridge's loop waits when there was nothing to do (see
/// [`DriverOptions::idle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    Spin,
    Backoff,
    Sleep,
}

impl Idle {
    pub fn parse(name: &str) -> Result<Idle, BridgeError> {
        match name {
            "spin" => Ok(Idle::Spin),
            "backoff" => Ok(Idle::Backoff),
            "sleep" => Ok(Idle::Sleep),
            other => Err(BridgeError::Argument(format!(
                "idle strategy {other:?}: use spin, backoff or sleep"
            ))),
        }
    }
}

/// The idle half of a polling loop: call [`Idler::idle`] after each turn.
#[derive(Debug)]
pub struct Idler {
    how: Idle,
    empty_turns: u32,
}

impl Idler {
    pub fn new(how: Idle) -> Idler {
        Idler {
            how,
            empty_turns: 0,
        }
    }

    /// After a turn that did `work` things.
    pub fn idle(&mut self, work: usize) {
        if work > 0 {
            self.empty_turns = 0;
            return;
        }
        self.empty_turns = self.empty_turns.saturating_add(1);
        match self.how {
            Idle::Spin => std::hint::spin_loop(),
            Idle::Backoff if self.empty_turns < 100 => std::hint::spin_loop(),
            Idle::Backoff if self.empty_turns < 200 => std::thread::yield_now(),
            Idle::Backoff => std::thread::sleep(Duration::from_micros(50)),
            Idle::Sleep => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Embedded drivers' directories: this prefix, the pid, a number.
const DRIVER_DIR_PREFIX: &str = "/dev/shm/aeron-ringcast-";

/// Removes the directories of embedded drivers whose process is gone (a
/// bridge killed with SIGKILL cannot remove its own): each holds its term
/// buffers, tens of MiB of shared memory.
fn remove_dead_drivers_dirs() {
    let (parent, prefix) = DRIVER_DIR_PREFIX
        .rsplit_once('/')
        .expect("an absolute path");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).expect("no NUL left")
}

/// Aeron's own words for an error.
pub(crate) fn aeron_detail(e: &aeron::AeronCError) -> String {
    let msg = e.get_last_err_message().trim().to_owned();
    if msg.is_empty() {
        format!("{e:?}")
    } else {
        msg
    }
}

/// Checks the shape of a channel URI before Aeron sees it (Aeron's own
/// check follows when the publication or subscription is added).
pub fn check_channel(uri: &str) -> Result<(), BridgeError> {
    let bad = |detail: &str| BridgeError::Channel {
        uri: uri.to_owned(),
        detail: detail.to_owned(),
    };
    let rest = uri
        .strip_prefix("aeron:")
        .ok_or_else(|| bad("an Aeron channel starts with \"aeron:\""))?;
    let (media, params) = rest.split_once('?').unwrap_or((rest, ""));
    match media {
        "ipc" => Ok(()),
        "udp" => {
            let endpoint = params
                .split('|')
                .find_map(|kv| kv.strip_prefix("endpoint="));
            let Some(endpoint) = endpoint else {
                return Err(bad("a udp channel needs endpoint=HOST:PORT"));
            };
            let port = endpoint.rsplit_once(':').map(|(_, p)| p);
            match port.map(str::parse::<u16>) {
                Some(Ok(p)) if p > 0 => Ok(()),
                _ => Err(bad(&format!("endpoint {endpoint:?} is not HOST:PORT"))),
            }
        }
        other => Err(bad(&format!("media {other:?} is neither udp nor ipc"))),
    }
}

/// An Aeron client connected to a driver; collects the errors Aeron
/// reports asynchronously (a refused channel, a lost driver).
pub struct Client {
    aeron: aeron::Aeron,
    errors: Arc<Mutex<Vec<String>>>,
    // Declared after `aeron` so that it outlives the client's use of it.
    _context: aeron::AeronContext,
    _handler: Option<aeron::Handler<ErrorSink>>,
}

/// Keeps Aeron's asynchronous errors for the bridge to report.
pub struct ErrorSink(Arc<Mutex<Vec<String>>>);

impl aeron::AeronErrorHandlerCallback for ErrorSink {
    fn handle_aeron_error_handler(&mut self, errcode: i32, message: &str) {
        if let Ok(mut v) = self.0.lock() {
            if v.len() < 64 {
                v.push(format!("{message} (code {errcode})"));
            }
        }
    }
}

impl Client {
    pub fn connect(driver: &Driver) -> Result<Client, BridgeError> {
        let failed = |e: aeron::AeronCError| BridgeError::Driver {
            detail: format!(
                "cannot connect a client to the driver at {}: {}",
                driver.dir(),
                aeron_detail(&e)
            ),
        };
        let errors = Arc::new(Mutex::new(Vec::new()));
        let context = aeron::AeronContext::new().map_err(failed)?;
        context.set_dir(&cstring(driver.dir())).map_err(failed)?;
        let handler = context
            .set_error_handler(Some(ErrorSink(errors.clone())))
            .map_err(failed)?;
        let client = aeron::Aeron::new(&context).map_err(failed)?;
        client.start().map_err(failed)?;
        Ok(Client {
            aeron: client,
            errors,
            _context: context,
            _handler: handler,
        })
    }

    /// Errors Aeron reported since the last call.
    pub fn take_errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    fn channel_error(&self, uri: &str, e: &aeron::AeronCError) -> BridgeError {
        let mut detail = aeron_detail(e);
        for reported in self.take_errors() {
            detail = format!("{detail}; {reported}");
        }
        BridgeError::Channel {
            uri: uri.to_owned(),
            detail,
        }
    }

    /// An exclusive publication (this bridge is its only writer).
    pub fn publication(
        &self,
        uri: &str,
        stream: i32,
    ) -> Result<aeron::AeronExclusivePublication, BridgeError> {
        check_channel(uri)?;
        let c = cstring(uri);
        let adding = self
            .aeron
            .async_add_exclusive_publication(&c, stream)
            .map_err(|e| self.channel_error(uri, &e))?;
        poll_added(|| adding.poll(), Duration::from_secs(10))
            .map_err(|e| self.channel_error(uri, &e))
    }

    pub fn subscription(
        &self,
        uri: &str,
        stream: i32,
    ) -> Result<aeron::AeronSubscription, BridgeError> {
        check_channel(uri)?;
        let c = cstring(uri);
        let adding = self
            .aeron
            .async_add_subscription(&c, stream, aeron::Handlers::NONE, aeron::Handlers::NONE)
            .map_err(|e| self.channel_error(uri, &e))?;
        poll_added(|| adding.poll(), Duration::from_secs(10))
            .map_err(|e| self.channel_error(uri, &e))
    }

    /// The driver's system counters (this process's traffic alone when the
    /// driver is embedded).
    pub fn counters(&self) -> DriverCounters {
        let mut c = DriverCounters::default();
        // System counters have type id 0 and fixed labels.
        self.aeron
            .counters_reader()
            .foreach_counter_fn(|value, _id, type_id, _key, label| {
                if type_id != 0 {
                    return;
                }
                let v = value.max(0) as u64;
                match label {
                    "Bytes sent" => c.bytes_sent = v,
                    "Bytes received" => c.bytes_received = v,
                    "NAKs sent" => c.naks_sent = v,
                    "NAKs received" => c.naks_received = v,
                    "Retransmits sent" => c.retransmits_sent = v,
                    "Retransmitted bytes" => c.retransmitted_bytes = v,
                    "Heartbeats sent" => c.heartbeats_sent = v,
                    "Status Messages sent" => c.status_messages_sent = v,
                    "Status Messages received" => c.status_messages_received = v,
                    "Loss gap fills" => c.loss_gap_fills = v,
                    l if l.starts_with("Errors") => c.errors = v,
                    "Invalid packets" => c.invalid_packets = v,
                    "Sender flow control limits, i.e. back-pressure events" => {
                        c.sender_flow_control_limits = v
                    }
                    _ => {}
                }
            });
        c
    }
}

/// Polls an async add until it completes or `timeout` passes.
fn poll_added<T>(
    mut poll: impl FnMut() -> Result<Option<T>, aeron::AeronCError>,
    timeout: Duration,
) -> Result<T, aeron::AeronCError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(done) = poll()? {
            return Ok(done);
        }
        if Instant::now() > deadline {
            return Err(aeron::AeronCError::with_message(
                -1,
                "the media driver did not answer in 10 s (is it running?)",
            ));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The media driver's system counters the bridge reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverCounters {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub naks_sent: u64,
    pub naks_received: u64,
    pub retransmits_sent: u64,
    pub retransmitted_bytes: u64,
    pub heartbeats_sent: u64,
    pub status_messages_sent: u64,
    pub status_messages_received: u64,
    pub loss_gap_fills: u64,
    pub errors: u64,
    pub invalid_packets: u64,
    pub sender_flow_control_limits: u64,
}
