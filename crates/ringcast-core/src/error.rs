//! Errors of the ring core. Every message says what happened and what to do.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Result alias of the core.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong opening, publishing into or reading a ring.
#[derive(Debug)]
pub enum Error {
    /// The ring name cannot be used (empty, path separators, NUL, ...).
    InvalidName { name: String, reason: &'static str },
    /// A creation parameter is out of range.
    InvalidArgument(String),
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
    /// A message is larger than the ring's slot.
    MessageTooLarge { len: usize, slot_size: usize },
    /// The caller's buffer cannot hold the next message (nothing consumed).
    BufferTooSmall { len: usize, needed: usize },
    /// The ring file is not a valid ring (truncated, damaged, not ours).
    Corrupt { path: PathBuf, detail: String },
    /// The ring file was written by an incompatible format version.
    IncompatibleVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The OS (or an ownership check) refused access to the ring file or
    /// its directory.
    PermissionDenied { path: PathBuf, action: String },
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
    /// A bounded ring has no room: publishing now would overwrite a message
    /// a live subscriber has not read. `published` of `requested` messages
    /// went out before it filled up.
    RingFull {
        name: String,
        published: usize,
        requested: usize,
    },
    /// A bounded ring stayed full until the publish deadline.
    PublishTimeout {
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
    /// This subscriber was evicted from a bounded ring for holding its
    /// publishers back (it stopped reading for the liveness limit).
    Evicted { name: String, position: u64 },
    /// The operation needs a ring mode this ring was not created with.
    WrongMode { name: String, detail: String },
    /// The publisher closed the ring and every message has been read.
    Closed { name: String },
    /// The subscriber group was closed (see [`crate::subscribe::group`]).
    GroupClosed { name: String },
    /// The ring's publisher (every producer of a multi-producer ring) died
    /// without closing it, and everything it published has been read.
    /// Reported once per publisher: a subscriber that goes on waiting gets
    /// the messages of a publisher that takes the ring over.
    PublisherDied { name: String, pid: u32 },
    /// A publisher or subscriber was used in a fork() child of the process
    /// that opened it: the child has no part in the ring.
    UsedAfterFork { name: String, mapped_by: u32 },
    /// A blocking receive reached its deadline.
    Timeout,
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
    /// A thread cannot be pinned to (or placed near) this CPU.
    CpuUnavailable {
        cpu: usize,
        reason: String,
        online: String,
    },
    /// A ring cannot be placed on this NUMA node.
    NumaNodeUnavailable { node: usize, online: String },
    /// Any other OS error, with what was being attempted.
    Io {
        action: String,
        path: PathBuf,
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(
        action: impl Into<String>,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> Self {
        let path = path.into();
        let action = action.into();
        if source.kind() == io::ErrorKind::PermissionDenied {
            return Error::PermissionDenied { path, action };
        }
        Error::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName { name, reason } => write!(
                f,
                "invalid ring name {name:?}: {reason}; use 1-200 characters from \
                 A-Z a-z 0-9 . _ - not starting with '.', e.g. \"md.quotes\""
            ),
            Error::InvalidArgument(msg) => f.write_str(msg),
            Error::NotFound {
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
            Error::Exists { name, path } => write!(
                f,
                "a ring named {name:?} already exists at {}; pass exist_ok=True to take it \
                 over and continue its sequence, or unlink it first",
                path.display()
            ),
            Error::PublisherExists { name, path, pid } => write!(
                f,
                "ring {name:?} ({}) already has a live publisher (pid {pid}) and is \
                 single-producer; stop that process, or publish from it",
                path.display()
            ),
            Error::StageExists { name, stage, pid } => write!(
                f,
                "ring {name:?} already has a live stage named {stage:?} (pid {pid}); stage \
                 names are unique per ring: stop that process or choose another name"
            ),
            Error::SchemaMismatch {
                name,
                existing,
                requested,
            } => write!(
                f,
                "ring {name:?} holds {existing} but {requested} was requested; use the \
                 ring's schema, or unlink the ring and create it anew"
            ),
            Error::MessageTooLarge { len, slot_size } => write!(
                f,
                "message of {len} bytes does not fit the ring's slot of {slot_size} bytes; \
                 create the ring with a larger slot_size, or split the message"
            ),
            Error::BufferTooSmall { len, needed } => write!(
                f,
                "the next message has {needed} bytes but the buffer holds only {len}; \
                 pass a buffer of at least the ring's slot_size (nothing was consumed)"
            ),
            Error::Corrupt { path, detail } => write!(
                f,
                "ring file {} is not a valid ringcast ring: {detail}; it was damaged or \
                 not written by ringcast: unlink it and let the publisher create it anew",
                path.display()
            ),
            Error::IncompatibleVersion {
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
            Error::PermissionDenied { path, action } => write!(
                f,
                "permission denied: cannot {action} {}; run as the ring's owner, or have \
                 the publisher create it with a wider mode (e.g. mode=0o660 and a shared \
                 group) in a directory you can write",
                path.display()
            ),
            Error::Untrusted { path, what, owner } => write!(
                f,
                "{} {what}; ringcast uses only ring files and ring directories of users it \
                 trusts (you, root, and RINGCAST_TRUST), since anyone may create a file under \
                 a ring's name in a shared directory. Remove it (as its owner or root), use a \
                 ring directory only you or your group can write (dir= or RINGCAST_DIR), or \
                 trust its owner: RINGCAST_TRUST={owner} or ringcast.trust(\"{owner}\")",
                path.display()
            ),
            Error::UnsafeDirectory { dir, mode } => write!(
                f,
                "ring directory {} has mode {mode:o}: users other than its owner may write it \
                 and, without the sticky bit, rename or replace any ring file in it; chmod +t \
                 it (the default ring directory is 1777, like /tmp), or chmod go-w it",
                dir.display()
            ),
            Error::NoSpace { dir, needed } => write!(
                f,
                "not enough space in {} for a ring of {needed} bytes; free space there \
                 (df -h {}), or lower capacity or slot_size",
                dir.display(),
                dir.display()
            ),
            Error::SubscriberTableFull {
                name,
                max_subscribers,
            } => write!(
                f,
                "ring {name:?} already has {max_subscribers} live subscribers (its \
                 max_subscribers); close some, or recreate the ring with a larger \
                 max_subscribers"
            ),
            Error::ProducerTableFull {
                name,
                max_producers,
            } => write!(
                f,
                "ring {name:?} already has {max_producers} live producers (its \
                 max_producers); close some, or recreate the ring with a larger max_producers"
            ),
            Error::RingFull {
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
            Error::PublishTimeout {
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
            Error::SlotStalled {
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
            Error::Evicted { name, position } => write!(
                f,
                "this subscriber was evicted from bounded ring {name:?} at sequence \
                 {position}: it held the publisher back without reading for longer than the \
                 ring's liveness_timeout; close it and attach again (messages since then \
                 may be lost to it)"
            ),
            Error::WrongMode { name, detail } => write!(f, "ring {name:?}: {detail}"),
            Error::Closed { name } => write!(
                f,
                "the publisher of ring {name:?} closed it and every message has been read"
            ),
            Error::GroupClosed { name } => write!(
                f,
                "the subscriber group of ring {name:?} is closed; create a new group"
            ),
            Error::PublisherDied { name, pid } => write!(
                f,
                "the publisher of ring {name:?} (pid {pid}) died without closing it, and every \
                 message it published has been read; receive again to wait for a publisher \
                 that takes the ring over (Publisher.create(..., exist_ok=True) resumes the \
                 stream), or close this subscriber"
            ),
            Error::UsedAfterFork { name, mapped_by } => write!(
                f,
                "this end of ring {name:?} was opened by process {mapped_by} and inherited by \
                 this process ({}) through fork(); it cannot be used here (the parent's \
                 records stay the parent's): attach or create a new one in this process, or \
                 start children with the \"spawn\" or \"forkserver\" method",
                std::process::id()
            ),
            Error::Timeout => f.write_str("no message arrived before the timeout"),
            Error::HugePagesUnavailable { name, detail } => write!(
                f,
                "ring {name:?} cannot have huge pages: {detail}; or create it with \
                 huge_pages=\"prefer\" (falls back to normal pages) or \"off\""
            ),
            Error::MemoryLockFailed {
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
            Error::CpuUnavailable {
                cpu,
                reason,
                online,
            } => write!(f, "cannot use CPU {cpu}: {reason}; online CPUs: {online}"),
            Error::NumaNodeUnavailable { node, online } => write!(
                f,
                "cannot place the ring on NUMA node {node}: this host's online nodes are \
                 {online}; pick one of them, or leave numa_node unset"
            ),
            Error::Io {
                action,
                path,
                source,
            } => {
                write!(f, "cannot {action} {}: {source}", path.display())
            }
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

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::MemoryLockFailed { source, .. } => Some(source),
            _ => None,
        }
    }
}
