//! Whose ring files (and ring directories) this process uses.
//!
//! The default ring directory is shared by every user of the host, like
//! `/tmp`. Anyone may create a file there under any ring name first: a ring
//! another user made could feed a strategy forged data, or hold a name so
//! that the real publisher is refused. So a ring is used only if its file is
//! owned by this process's effective user or by root, unless the process
//! trusts the owner (or the file's group) explicitly: `RINGCAST_TRUST`
//! (comma-separated user names or uids, and `@group` names or gids), or
//! [`trust`] at run time. The ring directory itself must be owned by a
//! trusted user, and if others may write it, have the sticky bit (else they
//! could rename or replace ring files).

use crate::error::{ArgumentError, OpenError, Result, RingFault};
use crate::sys::process::effective_uid;
use crate::sys::users::{gid_of, group_name, uid_of, user_name};
use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::RwLock;

/// Users and groups trusted beyond this process's user and root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trusted {
    /// Trusted owners (uids).
    pub users: Vec<u32>,
    /// Trusted groups (gids): a ring file of that group is used whoever owns it.
    pub groups: Vec<u32>,
}

/// The trust added at run time; `RINGCAST_TRUST` is read on first use.
static EXTRA: RwLock<Option<Trusted>> = RwLock::new(None);

/// Environment variable of trusted users and groups.
pub const TRUST_ENV: &str = "RINGCAST_TRUST";

/// Trusts the users and groups in `spec` (the `RINGCAST_TRUST` syntax:
/// comma-separated user names or uids, `@group` names or gids) for the rest
/// of this process's life.
pub fn trust(spec: &str) -> Result<(), ArgumentError> {
    let more = parse(spec)?;
    let mut extra = EXTRA.write().unwrap_or_else(|e| e.into_inner());
    let now = extra.get_or_insert_with(from_env);
    for uid in more.users {
        if !now.users.contains(&uid) {
            now.users.push(uid);
        }
    }
    for gid in more.groups {
        if !now.groups.contains(&gid) {
            now.groups.push(gid);
        }
    }
    Ok(())
}

/// Everything trusted now, beyond this process's user and root.
pub fn trusted() -> Trusted {
    if let Some(t) = EXTRA.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return t.clone();
    }
    let mut extra = EXTRA.write().unwrap_or_else(|e| e.into_inner());
    extra.get_or_insert_with(from_env).clone()
}

/// The trust `RINGCAST_TRUST` asks for; a bad entry is left out (and
/// `ringcast trust`-style errors are raised by [`trust`], not here, so that
/// a typo cannot make every ring unusable).
fn from_env() -> Trusted {
    let spec = std::env::var(TRUST_ENV).unwrap_or_default();
    let mut t = Trusted::default();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Ok(one) = parse(item) {
            t.users.extend(one.users);
            t.groups.extend(one.groups);
        }
    }
    t
}

/// Parses a trust specification.
pub fn parse(spec: &str) -> Result<Trusted, ArgumentError> {
    let mut t = Trusted::default();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some(group) = item.strip_prefix('@') {
            t.groups.push(
                group
                    .parse()
                    .ok()
                    .or_else(|| gid_of(group))
                    .ok_or_else(|| ArgumentError::UnknownGroup {
                        group: group.to_owned(),
                    })?,
            );
        } else {
            t.users
                .push(item.parse().ok().or_else(|| uid_of(item)).ok_or_else(|| {
                    ArgumentError::UnknownUser {
                        user: item.to_owned(),
                    }
                })?);
        }
    }
    Ok(t)
}

/// Whether files owned by `uid` (of group `gid`) are trusted.
pub(crate) fn trusts(uid: u32, gid: u32) -> bool {
    if uid == 0 || uid == effective_uid() {
        return true;
    }
    let t = trusted();
    t.users.contains(&uid) || t.groups.contains(&gid)
}

/// Refuses the ring file at `path` (of metadata `meta`) unless its owner or
/// group is trusted.
pub(crate) fn check_file(path: &Path, meta: &Metadata) -> Result<(), OpenError> {
    if trusts(meta.uid(), meta.gid()) {
        return Ok(());
    }
    Err(OpenError::Untrusted {
        path: path.to_owned(),
        what: format!(
            "is owned by {} (group {}), not by you ({}) or root",
            user_label(meta.uid()),
            group_label(meta.gid()),
            user_label(effective_uid())
        ),
        owner: user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string()),
    })
}

/// Refuses a ring directory that an untrusted user owns, or that others may
/// write without the sticky bit (they could rename or replace ring files).
pub(crate) fn check_dir(dir: &Path) -> Result<(), OpenError> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RingFault::io("inspect", dir, e).into()),
    };
    let mode = meta.permissions().mode();
    if !trusts(meta.uid(), u32::MAX) {
        return Err(OpenError::Untrusted {
            path: dir.to_owned(),
            what: format!(
                "is a ring directory owned by {}, who can replace any ring file in it",
                user_label(meta.uid())
            ),
            owner: user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string()),
        });
    }
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(OpenError::UnsafeDirectory {
            dir: dir.to_owned(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// "uid 1001 (alice)", or "uid 1001".
pub(crate) fn user_label(uid: u32) -> String {
    match user_name(uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

fn group_label(gid: u32) -> String {
    match group_name(gid) {
        Some(name) => format!("{gid} ({name})"),
        None => gid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_parse() {
        let t = parse("0, root ,@0,@root,65534").unwrap();
        assert_eq!(t.users, [0, 0, 65534]);
        assert_eq!(t.groups, [0, 0]);
        let e = parse("no-such-user-here").unwrap_err().to_string();
        assert!(e.contains("no user named"), "{e}");
        let e = parse("@no-such-group-here").unwrap_err().to_string();
        assert!(e.contains("no group named"), "{e}");
        assert_eq!(user_label(0), "uid 0 (root)");
    }
}
