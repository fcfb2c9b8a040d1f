//! Errors of the ring core, typed per operation. Every message says what
//! happened and what to do, and each is written once, in the `Display` of
//! the type that owns it:
//!
//! - [`ArgumentError`], an argument the caller can fix (every operation);
//! - [`RingFault`], what can happen to any operation on an open ring;
//! - [`PlacementError`], pinning a thread to CPUs, placing a ring on a node;
//! - [`OpenError`], creating, opening or attaching a ring end;
//! - [`PublishError`], publishing;
//! - [`RecvError`], receiving, waiting and reading through a group;
//! - [`Error`], any of them, for code that mixes operations.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Result alias of the core; the error defaults to the umbrella [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An argument the caller can fix: it says which argument and what is
/// allowed. Returned on its own by validation ([`crate::format::name::validate`],
/// [`crate::format::stage_name::StageName::new`], [`crate::Layout::check`],
/// [`crate::shm::trust::trust`], [`crate::subscribe::group::SubscriberGroup::new`],
/// [`crate::Subscriber::record_latency`], the latency functions), and
/// inside [`OpenError`], [`PublishError`], [`RecvError`] and
/// [`PlacementError`] by the operations that check their arguments.
#[derive(Debug)]
pub enum ArgumentError {
    /// The ring name cannot be used (empty, path separators, NUL, ...).
    InvalidName { name: String, reason: &'static str },
    /// The stage name cannot be used (1 to `max_len` letters, digits, `.`,
    /// `_`, `-`).
    InvalidStageName { name: String, max_len: usize },
    /// `capacity` is not a power of two from 2 to `max`.
    Capacity { capacity: u64, max: u64 },
    /// `argument` is not between 1 and `max` (`unit` follows `max`).
    OutOfRange {
        argument: &'static str,
        value: u64,
        max: u64,
        unit: &'static str,
    },
    /// Ring flags this version does not know.
    UnknownFlags { flags: u32 },
    /// A bounded ring's watermark is not between 1 and its capacity.
    Watermark { watermark: u64, capacity: u64 },
    /// `argument` (a duration) is zero.
    NotPositive { argument: &'static str },
    /// `arguments` were given for a ring that is not of the `rings` kind.
    OnlyFor {
        arguments: &'static str,
        rings: &'static str,
    },
    /// The schema description is longer than the `max` bytes a ring header
    /// holds.
    SchemaTooLong { len: usize, max: usize },
    /// The ring file would exceed the largest allowed size, `max` bytes.
    RingTooLarge {
        capacity: u64,
        slot_size: u32,
        file_len: u64,
        max: u64,
    },
    /// The file `mode` has bits besides the permission bits.
    Mode { mode: u32 },
    /// `huge_page_size` is not a page size.
    HugePageSize { size: u64 },
    /// The ring directory (`dir=`) exists but is not a directory.
    NotADirectory { dir: PathBuf },
    /// `after=` names more upstream stages than the `max` a subscriber can
    /// follow.
    TooManyUpstream { count: usize, max: usize },
    /// `after=` names the subscriber's own stage.
    GatedAfterItself { stage: String },
    /// `after=` names a stage twice.
    StageNamedTwice { stage: String },
    /// `start="resume"` was given to a subscriber without a stage name.
    ResumeWithoutStage,
    /// `durable` was asked of a subscriber without a stage name.
    DurableWithoutStage,
    /// The start sequence is beyond `max`, the last a ring can reach.
    StartBeyondMax { seq: u64, max: u64 },
    /// A rows read was given rows of 0 bytes.
    EmptyRows,
    /// A subscriber group's `buffer` is not from 1 to `max` messages.
    GroupBuffer { buffer: usize, max: usize },
    /// A subscriber group's buffer cannot be allocated.
    GroupBufferTooLarge { buffer: usize, row: usize },
    /// A subscriber group was given no consumers.
    NoConsumers,
    /// A subscriber group was given an empty consumer name.
    EmptyConsumerName,
    /// A subscriber group was given a consumer name twice.
    RepeatedConsumer { name: String },
    /// A trust spec names a group this host does not have.
    UnknownGroup { group: String },
    /// A trust spec names a user this host does not have.
    UnknownUser { user: String },
    /// A publish time was given for a ring without timestamps.
    PublishTimeWithoutTimestamps { name: String },
    /// Latency recording was asked of a ring without timestamps.
    LatencyWithoutTimestamps { name: String },
    /// A batch of records is not a whole number of records.
    BatchNotWholeRecords { len: usize, record: usize },
    /// A message is not exactly one record of a fixed-size ring.
    RecordSizeMismatch { len: usize, slot_size: usize },
    /// The operation needs a ring mode this ring was not created with.
    WrongMode { name: String, detail: String },
    /// Publishing (or declaring lost) `count` more sequences from `next`
    /// would take the ring's sequence past `max`, the largest it can reach.
    BeyondLastSequence {
        name: String,
        next: u64,
        count: u64,
        max: u64,
    },
    /// A thread was to be pinned to no CPU at all.
    NoCpus,
}

impl fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName { name, reason } => write!(
                f,
                "invalid ring name {name:?}: {reason}; use 1-200 characters from \
                 A-Z a-z 0-9 . _ - not starting with '.', e.g. \"md.quotes\""
            ),
            Self::InvalidStageName { name, max_len } => write!(
                f,
                "stage name {name:?} is not usable: use 1 to {max_len} letters, \
                 digits, '.', '_' or '-'"
            ),
            Self::Capacity { capacity: c, max } => {
                let c = *c;
                let hint = if (2..=*max).contains(&c) {
                    format!(
                        " (nearest: {} or {})",
                        c.next_power_of_two() / 2,
                        c.next_power_of_two()
                    )
                } else {
                    String::new()
                };
                write!(
                    f,
                    "capacity {c} is not a power of two between 2 and 2**32{hint}; \
                     pass e.g. capacity=1 << 16"
                )
            }
            Self::OutOfRange {
                argument,
                value,
                max,
                unit,
            } => write!(
                f,
                "{argument} {value} is out of range; it must be between 1 and {max}{unit}"
            ),
            Self::UnknownFlags { flags } => write!(f, "unknown ring flags {flags:#x}"),
            Self::Watermark {
                watermark,
                capacity: c,
            } => write!(
                f,
                "watermark {watermark} is out of range; a bounded ring of capacity {c} needs \
                 1 <= watermark <= {c} (the most unread messages a publisher may be ahead)"
            ),
            Self::NotPositive { argument } => write!(f, "{argument} must be positive"),
            Self::OnlyFor { arguments, rings } => {
                write!(f, "{arguments} apply only to {rings} rings")
            }
            Self::SchemaTooLong { len, max } => write!(
                f,
                "schema description of {len} bytes exceeds {max} bytes; use a \
                 message type with fewer fields"
            ),
            Self::RingTooLarge {
                capacity: c,
                slot_size,
                file_len,
                max,
            } => write!(
                f,
                "a ring of {c} slots of {slot_size} bytes needs {file_len} bytes, more than \
                 the {max} allowed; lower capacity or slot_size"
            ),
            Self::Mode { mode } => write!(
                f,
                "mode {mode:#o} has bits outside 0o777; pass permission bits such as 0o600 or 0o660"
            ),
            Self::HugePageSize { size } => write!(
                f,
                "huge_page_size {size} is not a page size; use 2 MiB (2097152) or 1 GiB (1073741824)"
            ),
            Self::NotADirectory { dir } => write!(
                f,
                "{} exists but is not a directory; pass dir= pointing at a directory",
                dir.display()
            ),
            Self::TooManyUpstream { count, max } => write!(
                f,
                "a subscriber can be gated after at most {max} stages, got {count}"
            ),
            Self::GatedAfterItself { stage } => {
                write!(f, "stage {stage:?} cannot be gated after itself")
            }
            Self::StageNamedTwice { stage } => {
                write!(f, "stage {stage:?} is named twice in after=")
            }
            Self::ResumeWithoutStage => f.write_str(
                "start=\"resume\" resumes a named stage; give the subscriber a stage name",
            ),
            Self::DurableWithoutStage => f.write_str(
                "durable=True keeps a named stage's place after it dies; give the subscriber a \
                 stage name",
            ),
            Self::StartBeyondMax { seq, max } => write!(
                f,
                "start sequence {seq} is beyond the largest sequence a ring can reach ({max})"
            ),
            Self::EmptyRows => f.write_str("rows of 0 bytes cannot hold messages"),
            Self::GroupBuffer { buffer, max } => write!(
                f,
                "buffer must be a number of messages between 1 and {max}, got {buffer}"
            ),
            Self::GroupBufferTooLarge { buffer, row } => write!(
                f,
                "a buffer of {buffer} messages of {row} bytes cannot be allocated; give a \
                 smaller buffer"
            ),
            Self::NoConsumers => f.write_str("a group needs at least one consumer"),
            Self::EmptyConsumerName => f.write_str("consumer names must be non-empty"),
            Self::RepeatedConsumer { name } => {
                write!(f, "consumer names must be unique, {name:?} repeats")
            }
            Self::UnknownGroup { group } => write!(
                f,
                "no group named {group:?} on this host; trust groups as @name or @gid"
            ),
            Self::UnknownUser { user } => write!(
                f,
                "no user named {user:?} on this host; trust users by name or uid, groups \
                 as @name"
            ),
            Self::PublishTimeWithoutTimestamps { name } => write!(
                f,
                "ring '{name}' carries no timestamps; create it with timestamps enabled \
                 to publish with a time"
            ),
            Self::LatencyWithoutTimestamps { name } => write!(
                f,
                "ring '{name}' carries no publish times, so latency cannot be recorded; \
                 create it with timestamps enabled"
            ),
            Self::BatchNotWholeRecords { len, record } => write!(
                f,
                "a batch of {len} bytes is not a whole number of {record}-byte records"
            ),
            Self::RecordSizeMismatch { len, slot_size } => write!(
                f,
                "message of {len} bytes does not match this ring's {slot_size}-byte records; \
                 publish whole records of the ring's type"
            ),
            Self::WrongMode { name, detail } => write!(f, "ring {name:?}: {detail}"),
            Self::BeyondLastSequence {
                name,
                next,
                count,
                max,
            } => write!(
                f,
                "ring {name:?}: {count} more sequence(s) from {next} would take its sequence \
                 past {max}, the largest a ring can reach; nothing was published"
            ),
            Self::NoCpus => f.write_str("pin to at least one CPU (e.g. ringcast.pin_thread(2))"),
        }
    }
}

impl std::error::Error for ArgumentError {}

/// What can happen to any operation on an open ring (and to the file
/// operations of opening one). Returned on its own by `check_usable` and
/// `unlink` of publishers and subscribers, and inside every other error type.
#[derive(Debug)]
pub enum RingFault {
    /// The ring file is not a valid ring (truncated, damaged, not ours).
    Corrupt { path: PathBuf, detail: String },
    /// A publisher or subscriber was used in a fork() child of the process
    /// that opened it: the child has no part in the ring.
    UsedAfterFork { name: String, mapped_by: u32 },
    /// The OS (or an ownership check) refused access to the ring file or
    /// its directory.
    PermissionDenied { path: PathBuf, action: String },
    /// Any other OS error, with what was being attempted.
    Io {
        action: String,
        path: PathBuf,
        source: io::Error,
    },
}

impl RingFault {
    /// An OS error while doing `action` to `path`; a refused access becomes
    /// [`RingFault::PermissionDenied`].
    pub(crate) fn io(
        action: impl Into<String>,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> Self {
        let path = path.into();
        let action = action.into();
        if source.kind() == io::ErrorKind::PermissionDenied {
            return Self::PermissionDenied { path, action };
        }
        Self::Io {
            action,
            path,
            source,
        }
    }

    /// The ring file at `path` is not a valid ring, for the reason `detail`.
    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for RingFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupt { path, detail } => write!(
                f,
                "ring file {} is not a valid ringcast ring: {detail}; it was damaged or \
                 not written by ringcast: unlink it and let the publisher create it anew",
                path.display()
            ),
            Self::UsedAfterFork { name, mapped_by } => write!(
                f,
                "this end of ring {name:?} was opened by process {mapped_by} and inherited by \
                 this process ({}) through fork(); it cannot be used here (the parent's \
                 records stay the parent's): attach or create a new one in this process, or \
                 start children with the \"spawn\" or \"forkserver\" method",
                std::process::id()
            ),
            Self::PermissionDenied { path, action } => write!(
                f,
                "permission denied: cannot {action} {}; run as the ring's owner, or have \
                 the publisher create it with a wider mode (e.g. mode=0o660 and a shared \
                 group) in a directory you can write",
                path.display()
            ),
            Self::Io {
                action,
                path,
                source,
            } => {
                write!(f, "cannot {action} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for RingFault {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A thread cannot be pinned to CPUs, or a ring cannot be placed on a NUMA
/// node. Returned by [`crate::sys::placement`] (`pin_thread`, `node_of_cpu`,
/// `check_node`, `thread_cpus`) and, inside [`OpenError`], by opening a
/// ring end with placement options.
#[derive(Debug)]
pub enum PlacementError {
    /// A thread cannot be pinned to (or placed near) this CPU.
    CpuUnavailable {
        cpu: usize,
        reason: String,
        online: String,
    },
    /// A ring cannot be placed on this NUMA node.
    NumaNodeUnavailable { node: usize, online: String },
    /// An argument of the placement is unusable.
    Argument(ArgumentError),
    /// The OS refused to read or set the thread's CPU affinity.
    Fault(RingFault),
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CpuUnavailable {
                cpu,
                reason,
                online,
            } => write!(f, "cannot use CPU {cpu}: {reason}; online CPUs: {online}"),
            Self::NumaNodeUnavailable { node, online } => write!(
                f,
                "cannot place the ring on NUMA node {node}: this host's online nodes are \
                 {online}; pick one of them, or leave numa_node unset"
            ),
            Self::Argument(e) => e.fmt(f),
            Self::Fault(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PlacementError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Fault(e) => e.source(),
            _ => None,
        }
    }
}

/// Creating, opening or attaching a ring end: `create` (also with
/// `exist_ok`) and `attach*` of [`crate::Publisher`], `create`,
/// `open_or_create` and `attach` of [`crate::PublisherBuilder`], `attach*`
/// of [`crate::Subscriber`], [`crate::SubscriberBuilder::attach`], and
/// [`crate::info::inspect`].
#[derive(Debug)]
pub enum OpenError {
    /// No ring file under that name.
    NotFound {
        name: String,
        path: PathBuf,
        available: Vec<String>,
    },
    /// A ring of that name already exists and `exist_ok` was not given.
    Exists { name: String, path: PathBuf },
    /// Another live publisher holds the ring (single-producer ring).
    PublisherExists {
        name: String,
        path: PathBuf,
        pid: u32,
    },
    /// A live subscriber of the ring already holds that stage name.
    StageExists {
        name: String,
        stage: String,
        pid: u32,
    },
    /// The existing ring's layout or schema differs from the one requested.
    SchemaMismatch {
        name: String,
        existing: String,
        requested: String,
    },
    /// The ring file was written by an incompatible format version.
    IncompatibleVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The ring file or ring directory belongs to a user this process does
    /// not trust (see [`crate::shm::trust`]).
    Untrusted {
        path: PathBuf,
        what: String,
        owner: String,
    },
    /// Users other than its owner may write the ring directory, and it has
    /// no sticky bit: they could rename or replace any ring file in it.
    UnsafeDirectory { dir: PathBuf, mode: u32 },
    /// The ring directory's filesystem cannot hold the ring.
    NoSpace { dir: PathBuf, needed: u64 },
    /// Every subscriber record of the ring is held by a live subscriber.
    SubscriberTableFull { name: String, max_subscribers: u32 },
    /// Every producer record of a multi-producer ring is held by a live producer.
    ProducerTableFull { name: String, max_producers: u32 },
    /// The ring cannot get the huge pages it requires; `detail` says what is
    /// missing and what to configure.
    HugePagesUnavailable { name: String, detail: String },
    /// `mlock` of a ring's mapping failed; `soft`/`hard` are the
    /// RLIMIT_MEMLOCK limits in bytes (`None`: unlimited).
    MemoryLockFailed {
        path: PathBuf,
        bytes: u64,
        soft: Option<u64>,
        hard: Option<u64>,
        source: io::Error,
    },
    /// The thread or the ring cannot be placed as asked.
    Placement(PlacementError),
    /// An argument of the open is unusable.
    Argument(ArgumentError),
    /// The ring file or directory failed an OS call or is not a valid ring.
    Fault(RingFault),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound {
                name,
                path,
                available,
            } => {
                write!(
                    f,
                    "no ring named {name:?} (looked for {}); start its publisher first, \
                     or pass dir= (or set RINGCAST_DIR) if it lives elsewhere",
                    path.display()
                )?;
                if available.is_empty() {
                    write!(f, "; that directory holds no rings")
                } else {
                    write!(f, "; rings there: {}", available.join(", "))
                }
            }
            Self::Exists { name, path } => write!(
                f,
                "a ring named {name:?} already exists at {}; pass exist_ok=True to take it \
                 over and continue its sequence, or unlink it first",
                path.display()
            ),
            Self::PublisherExists { name, path, pid } => write!(
                f,
                "ring {name:?} ({}) already has a live publisher (pid {pid}) and is \
                 single-producer; stop that process, or publish from it",
                path.display()
            ),
            Self::StageExists { name, stage, pid } => write!(
                f,
                "ring {name:?} already has a live stage named {stage:?} (pid {pid}); stage \
                 names are unique per ring: stop that process or choose another name"
            ),
            Self::SchemaMismatch {
                name,
                existing,
                requested,
            } => write!(
                f,
                "ring {name:?} holds {existing} but {requested} was requested; use the \
                 ring's schema, or unlink the ring and create it anew"
            ),
            Self::IncompatibleVersion {
                path,
                found,
                supported,
            } => write!(
                f,
                "ring file {} has format version {found} but this ringcast reads version \
                 {supported}; run the same ringcast version in publisher and subscribers, \
                 or unlink the ring and recreate it",
                path.display()
            ),
            Self::Untrusted { path, what, owner } => write!(
                f,
                "{} {what}; ringcast uses only ring files and ring directories of users it \
                 trusts (you, root, and RINGCAST_TRUST), since anyone may create a file under \
                 a ring's name in a shared directory. Remove it (as its owner or root), use a \
                 ring directory only you or your group can write (dir= or RINGCAST_DIR), or \
                 trust its owner: RINGCAST_TRUST={owner} or ringcast.trust(\"{owner}\")",
                path.display()
            ),
            Self::UnsafeDirectory { dir, mode } => write!(
                f,
                "ring directory {} has mode {mode:o}: users other than its owner may write it \
                 and, without the sticky bit, rename or replace any ring file in it; chmod +t \
                 it (the default ring directory is 1777, like /tmp), or chmod go-w it",
                dir.display()
            ),
            Self::NoSpace { dir, needed } => write!(
                f,
                "not enough space in {} for a ring of {needed} bytes; free space there \
                 (df -h {}), or lower capacity or slot_size",
                dir.display(),
                dir.display()
            ),
            Self::SubscriberTableFull {
                name,
                max_subscribers,
            } => write!(
                f,
                "ring {name:?} already has {max_subscribers} live subscribers (its \
                 max_subscribers); close some, or recreate the ring with a larger \
                 max_subscribers"
            ),
            Self::ProducerTableFull {
                name,
                max_producers,
            } => write!(
                f,
                "ring {name:?} already has {max_producers} live producers (its \
                 max_producers); close some, or recreate the ring with a larger max_producers"
            ),
            Self::HugePagesUnavailable { name, detail } => write!(
                f,
                "ring {name:?} cannot have huge pages: {detail}; or create it with \
                 huge_pages=\"prefer\" (falls back to normal pages) or \"off\""
            ),
            Self::MemoryLockFailed {
                path,
                bytes,
                soft,
                hard,
                source,
            } => {
                let limit = |l: &Option<u64>| match l {
                    Some(b) => format!("{b} bytes"),
                    None => "unlimited".to_owned(),
                };
                write!(
                    f,
                    "cannot lock the {bytes} bytes of ring {} in memory ({source}); \
                     RLIMIT_MEMLOCK is {} (hard limit {}): raise it to at least {bytes} bytes \
                     (ulimit -l, LimitMEMLOCK= in a systemd unit, memlock in \
                     /etc/security/limits.conf) or grant CAP_IPC_LOCK; or pass \
                     lock_memory=False",
                    path.display(),
                    limit(soft),
                    limit(hard)
                )
            }
            Self::Placement(e) => e.fmt(f),
            Self::Argument(e) => e.fmt(f),
            Self::Fault(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::MemoryLockFailed { source, .. } => Some(source),
            Self::Placement(e) => e.source(),
            Self::Fault(e) => e.source(),
            _ => None,
        }
    }
}

/// Publishing: `publish`, `try_publish`, `publish_with`, `publish_at`,
/// `publish_all` and `publish_records` of [`crate::Publisher`].
#[derive(Debug)]
pub enum PublishError {
    /// A message is larger than the ring's slot.
    MessageTooLarge { len: usize, slot_size: usize },
    /// A bounded ring has no room: publishing now would overwrite a message
    /// a live subscriber has not read. `published` of `requested` messages
    /// went out before it filled up.
    RingFull {
        name: String,
        published: usize,
        requested: usize,
    },
    /// A bounded ring stayed full until the publish deadline.
    Timeout {
        name: String,
        published: usize,
        requested: usize,
    },
    /// A multi-producer publish gave up waiting to enter the slot of `seq`,
    /// whose previous lap a live producer has not committed; `abandoned`
    /// claimed sequences from `seq` on were not written (subscribers count
    /// them lost), `published` of `requested` messages went out.
    SlotStalled {
        name: String,
        seq: u64,
        abandoned: u64,
        published: usize,
        requested: usize,
    },
    /// A message or batch does not suit the ring (records, timestamps).
    Argument(ArgumentError),
    /// The ring failed under the publisher (see [`RingFault`]).
    Fault(RingFault),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MessageTooLarge { len, slot_size } => write!(
                f,
                "message of {len} bytes does not fit the ring's slot of {slot_size} bytes; \
                 create the ring with a larger slot_size, or split the message"
            ),
            Self::RingFull {
                name,
                published,
                requested,
            } => {
                write!(
                    f,
                    "bounded ring {name:?} is full: its slowest subscriber has not read far \
                     enough to make room"
                )?;
                partial(f, *published, *requested)?;
                f.write_str("; retry later, or call publish() to wait for room")
            }
            Self::Timeout {
                name,
                published,
                requested,
            } => {
                write!(
                    f,
                    "bounded ring {name:?} stayed full until the timeout: a subscriber is \
                     not keeping up"
                )?;
                partial(f, *published, *requested)?;
                f.write_str("; wait longer, or find the slow subscriber (ringcast list)")
            }
            Self::SlotStalled {
                name,
                seq,
                abandoned,
                published,
                requested,
            } => {
                write!(
                    f,
                    "ring {name:?}: gave up waiting for another producer, which is alive but \
                     has not finished writing the previous lap of the slot of message {seq} \
                     (descheduled or stopped?)"
                )?;
                partial(f, *published, *requested)?;
                write!(
                    f,
                    "; the {abandoned} sequence(s) claimed from {seq} on were not written and \
                     subscribers count them lost; publish again, with a longer timeout"
                )
            }
            Self::Argument(e) => e.fmt(f),
            Self::Fault(e) => e.fmt(f),
        }
    }
}

/// " (k of n messages were published)" for batches that stopped part way.
fn partial(f: &mut fmt::Formatter<'_>, published: usize, requested: usize) -> fmt::Result {
    if requested > 1 {
        write!(
            f,
            " ({published} of the {requested} messages were published, the rest were not)"
        )
    } else {
        f.write_str(" (the message was not published)")
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Fault(e) => e.source(),
            _ => None,
        }
    }
}

/// Receiving and waiting: `try_recv`, the batch and rows reads, the waits,
/// `check_publisher` and the readiness fd of [`crate::Subscriber`],
/// [`crate::wait_any`], and every operation of a
/// [`crate::subscribe::group::SubscriberGroup`] after its creation.
#[derive(Debug)]
pub enum RecvError {
    /// The caller's buffer cannot hold the next message (nothing consumed).
    BufferTooSmall { len: usize, needed: usize },
    /// A blocking receive reached its deadline.
    Timeout,
    /// The publisher closed the ring and every message has been read.
    Closed { name: String },
    /// The subscriber group was closed (see [`crate::subscribe::group`]).
    GroupClosed { name: String },
    /// The ring's publisher (every producer of a multi-producer ring) died
    /// without closing it, and everything it published has been read.
    /// Reported once per publisher: a subscriber that goes on waiting gets
    /// the messages of a publisher that takes the ring over.
    PublisherDied { name: String, pid: u32 },
    /// This subscriber was evicted from a bounded ring for holding its
    /// publishers back (it stopped reading for the liveness limit).
    Evicted { name: String, position: u64 },
    /// An argument of the read is unusable.
    Argument(ArgumentError),
    /// The ring failed under the subscriber (see [`RingFault`]).
    Fault(RingFault),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { len, needed } => write!(
                f,
                "the next message has {needed} bytes but the buffer holds only {len}; \
                 pass a buffer of at least the ring's slot_size (nothing was consumed)"
            ),
            Self::Timeout => f.write_str("no message arrived before the timeout"),
            Self::Closed { name } => write!(
                f,
                "the publisher of ring {name:?} closed it and every message has been read"
            ),
            Self::GroupClosed { name } => write!(
                f,
                "the subscriber group of ring {name:?} is closed; create a new group"
            ),
            Self::PublisherDied { name, pid } => write!(
                f,
                "the publisher of ring {name:?} (pid {pid}) died without closing it, and every \
                 message it published has been read; receive again to wait for a publisher \
                 that takes the ring over (Publisher.create(..., exist_ok=True) resumes the \
                 stream), or close this subscriber"
            ),
            Self::Evicted { name, position } => write!(
                f,
                "this subscriber was evicted from bounded ring {name:?} at sequence \
                 {position}: it held the publisher back without reading for longer than the \
                 ring's liveness_timeout; close it and attach again (messages since then \
                 may be lost to it)"
            ),
            Self::Argument(e) => e.fmt(f),
            Self::Fault(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Fault(e) => e.source(),
            _ => None,
        }
    }
}

/// Any error of the core, for code that mixes operations (the Python
/// binding, [`crate::loadgen`], tests using `?`). Its message is the inner
/// error's; so is its source.
#[derive(Debug)]
pub enum Error {
    /// See [`OpenError`].
    Open(OpenError),
    /// See [`PublishError`].
    Publish(PublishError),
    /// See [`RecvError`].
    Recv(RecvError),
    /// See [`PlacementError`].
    Placement(PlacementError),
    /// See [`ArgumentError`].
    Argument(ArgumentError),
    /// See [`RingFault`].
    Fault(RingFault),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open(e) => e.fmt(f),
            Self::Publish(e) => e.fmt(f),
            Self::Recv(e) => e.fmt(f),
            Self::Placement(e) => e.fmt(f),
            Self::Argument(e) => e.fmt(f),
            Self::Fault(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Open(e) => e.source(),
            Self::Publish(e) => e.source(),
            Self::Recv(e) => e.source(),
            Self::Placement(e) => e.source(),
            Self::Argument(e) => e.source(),
            Self::Fault(e) => e.source(),
        }
    }
}

/// `impl From<Inner> for Outer` wrapping `Inner` in the `Outer::Arm` variant.
macro_rules! wraps {
    ($outer:ident { $($arm:ident($inner:ty)),+ $(,)? }) => {
        $(impl From<$inner> for $outer {
            fn from(e: $inner) -> Self {
                Self::$arm(e)
            }
        })+
    };
}

wraps!(PlacementError { Argument(ArgumentError), Fault(RingFault) });
wraps!(OpenError {
    Placement(PlacementError),
    Argument(ArgumentError),
    Fault(RingFault),
});
wraps!(PublishError { Argument(ArgumentError), Fault(RingFault) });
wraps!(RecvError { Argument(ArgumentError), Fault(RingFault) });
wraps!(Error {
    Open(OpenError),
    Publish(PublishError),
    Recv(RecvError),
    Placement(PlacementError),
    Argument(ArgumentError),
    Fault(RingFault),
});

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages composed from shared variants read exactly as the
    /// per-argument texts they replace.
    #[test]
    fn composed_argument_messages_are_unchanged() {
        let cases = [
            (
                ArgumentError::OutOfRange {
                    argument: "slot_size",
                    value: 0,
                    max: 16_777_216,
                    unit: " bytes",
                },
                "slot_size 0 is out of range; it must be between 1 and 16777216 bytes",
            ),
            (
                ArgumentError::OutOfRange {
                    argument: "max_subscribers",
                    value: 5000,
                    max: 4096,
                    unit: "",
                },
                "max_subscribers 5000 is out of range; it must be between 1 and 4096",
            ),
            (
                ArgumentError::NotPositive {
                    argument: "claim_timeout",
                },
                "claim_timeout must be positive",
            ),
            (
                ArgumentError::OnlyFor {
                    arguments: "watermark and liveness_timeout",
                    rings: "bounded",
                },
                "watermark and liveness_timeout apply only to bounded rings",
            ),
            (
                ArgumentError::Capacity {
                    capacity: 1000,
                    max: 1 << 32,
                },
                "capacity 1000 is not a power of two between 2 and 2**32 (nearest: 512 or 1024); \
                 pass e.g. capacity=1 << 16",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }

    /// Wrappers show the inner message, and a refused access is
    /// `PermissionDenied` whatever operation met it.
    #[test]
    fn wrappers_delegate_and_io_maps_permission() {
        let denied = RingFault::io(
            "open",
            "/x",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(denied, RingFault::PermissionDenied { .. }));
        let text = denied.to_string();
        let umbrella = Error::from(OpenError::from(denied));
        assert_eq!(umbrella.to_string(), text);
        let io = RingFault::io("map", "/x", io::Error::other("boom"));
        let umbrella = Error::from(RecvError::from(io));
        let source = std::error::Error::source(&umbrella).expect("the io error");
        assert_eq!(source.to_string(), "boom");
    }
}
