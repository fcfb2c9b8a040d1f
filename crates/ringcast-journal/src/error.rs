//! Errors of the journal, each saying what happened and what to do.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What can go wrong opening, writing or reading a journal.
#[derive(Debug)]
pub enum JournalError {
    /// A file system call failed on `path`.
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// `dir` holds no journal.
    NotAJournal { dir: PathBuf, why: String },
    /// Another recorder holds the journal's lock.
    Locked { dir: PathBuf, holder: String },
    /// The journal records another ring, or one of another shape.
    Clash { dir: PathBuf, clash: String },
    /// Segments of different rings in one directory.
    Mixed {
        dir: PathBuf,
        segment: PathBuf,
        clash: String,
    },
    /// Entries must come in sequence order.
    OutOfOrder { seq: u64, expected: u64 },
    /// A message longer than the journal's slot size.
    TooLong { len: usize, slot_size: u32 },
    /// An option out of range.
    Argument(String),
    /// The ring side of recording or replaying failed.
    Ring(ringcast_core::Error),
}

impl JournalError {
    pub(crate) fn io(what: &'static str, path: &Path, source: io::Error) -> JournalError {
        JournalError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Io { what, path, source } => {
                let hint = match source.kind() {
                    io::ErrorKind::PermissionDenied => {
                        "; check the permissions of the directory and its files"
                    }
                    io::ErrorKind::NotFound => "; check the path",
                    _ if source.raw_os_error() == Some(libc::ENOSPC) => {
                        "; the disk is full: free space or record elsewhere (nothing after the \
                         last complete entry was kept)"
                    }
                    _ => "",
                };
                write!(f, "cannot {what} {}: {source}{hint}", path.display())
            }
            JournalError::NotAJournal { dir, why } => write!(
                f,
                "{} is not a ringcast journal: {why}; record one with `ringcast record RING \
                 --dir {}`",
                dir.display(),
                dir.display()
            ),
            JournalError::Locked { dir, holder } => write!(
                f,
                "journal {} is being written by {holder}; stop that recorder first, or record \
                 into another directory",
                dir.display()
            ),
            JournalError::Clash { dir, clash } => write!(
                f,
                "journal {} cannot take this ring: {clash}; record into another directory",
                dir.display()
            ),
            JournalError::Mixed {
                dir,
                segment,
                clash,
            } => write!(
                f,
                "journal {} mixes rings: segment {} differs from the first ({clash}); move it \
                 into a directory of its own",
                dir.display(),
                segment.display()
            ),
            JournalError::OutOfOrder { seq, expected } => write!(
                f,
                "entry with sequence {seq} comes after the journal reached {expected}: \
                 entries must be appended in sequence order"
            ),
            JournalError::TooLong { len, slot_size } => write!(
                f,
                "a {len}-byte message does not fit the journal's {slot_size}-byte entries"
            ),
            JournalError::Argument(what) => f.write_str(what),
            JournalError::Ring(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Io { source, .. } => Some(source),
            JournalError::Ring(e) => Some(e),
            _ => None,
        }
    }
}

/// `impl From<E> for JournalError` for the core's errors.
macro_rules! ring_errors {
    ($($error:ty),+) => {
        $(impl From<$error> for JournalError {
            fn from(e: $error) -> JournalError {
                JournalError::Ring(e.into())
            }
        })+
    };
}

ring_errors!(
    ringcast_core::Error,
    ringcast_core::OpenError,
    ringcast_core::PublishError,
    ringcast_core::RecvError
);
