//! Ring names and where their files live.
//!
//! A name becomes one file name inside the ring directory, so anything that
//! could escape the directory or hide the file is refused up front.

use crate::error::{ArgumentError, Result};
use std::path::{Path, PathBuf};

/// Directory rings live in unless the caller or `RINGCAST_DIR` says otherwise.
pub const DEFAULT_DIR: &str = "/dev/shm/ringcast";

/// Extension of ring files.
pub const RING_SUFFIX: &str = ".ring";

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Checks that `name` is usable as a ring name.
pub fn validate(name: &str) -> Result<(), ArgumentError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 200 bytes")
    } else if name.contains('\0') {
        Some("it contains a NUL character")
    } else if name.contains('/') || name.contains('\\') {
        Some("it contains a path separator")
    } else if name.starts_with('.') {
        Some("it starts with '.'")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Some("it contains characters other than letters, digits, '.', '_' and '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ArgumentError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The directory to use: the given one, else `$RINGCAST_DIR`, else [`DEFAULT_DIR`].
pub fn resolve_dir(dir: Option<&Path>) -> PathBuf {
    match dir {
        Some(d) => d.to_owned(),
        None => std::env::var_os("RINGCAST_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR)),
    }
}

/// Path of the ring file for a (validated) name.
pub fn ring_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{RING_SUFFIX}"))
}

/// Names of the rings in `dir`, sorted (empty if the directory is unreadable).
pub fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let name = file.strip_suffix(RING_SUFFIX)?;
            validate(name).ok().map(|_| name.to_owned())
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["md.quotes", "a", "X_1-2.b", &"n".repeat(200)] {
            validate(ok).unwrap();
        }
    }

    #[test]
    fn refuses_escaping_or_hidden_names() {
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "nul\0",
            "sp ace",
            "ü",
            &"n".repeat(201),
        ] {
            let err = validate(bad).unwrap_err();
            assert!(matches!(err, ArgumentError::InvalidName { .. }), "{bad:?}");
            assert!(err.to_string().contains("md.quotes"));
        }
    }
}
