//! The user and group databases (`/etc/passwd`, `/etc/group`, or whatever
//! NSS serves): names to ids and back. A name or id the database does not
//! know (or a lookup that fails) is `None`.

use std::ffi::{CStr, CString};

/// Bytes of the buffer an entry's strings are copied into. An entry that
/// does not fit (ERANGE) is treated as not found.
const BUF_LEN: usize = 16 * 1024;

/// How an entry is looked up.
#[derive(Clone, Copy)]
enum Key<'a> {
    Name(&'a CStr),
    Id(u32),
}

/// What is kept of an entry: its id and name (`None` for a null name).
struct Entry {
    id: u32,
    name: Option<String>,
}

/// Copies the C string of an entry out.
///
/// # Safety
/// `ptr` is null or a NUL-terminated string that is live for the call.
unsafe fn text(ptr: *const libc::c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: not null, so per this function's contract a NUL-terminated
    // string that is live for the call.
    let text = unsafe { CStr::from_ptr(ptr) };
    Some(text.to_string_lossy().into_owned())
}

fn user(key: Key<'_>) -> Option<Entry> {
    let mut buf = vec![0 as libc::c_char; BUF_LEN];
    // SAFETY: passwd is a plain C struct (integers and pointers) for which
    // all-zero is a valid value.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: `entry`, `found` and the `buf.len()` bytes of `buf` are live
    // and writable for the call, which writes only into them; a name is
    // NUL-terminated (a CStr) and outlives the call.
    let rc = unsafe {
        match key {
            Key::Name(name) => libc::getpwnam_r(
                name.as_ptr(),
                &mut entry,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            ),
            Key::Id(uid) => {
                libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found)
            }
        }
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    Some(Entry {
        id: entry.pw_uid,
        // SAFETY: the entry was found, so its name is null or a string in
        // `buf`, which is still alive.
        name: unsafe { text(entry.pw_name) },
    })
}

fn group(key: Key<'_>) -> Option<Entry> {
    let mut buf = vec![0 as libc::c_char; BUF_LEN];
    // SAFETY: group is a plain C struct (integers and pointers) for which
    // all-zero is a valid value.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `user`, in the group database.
    let rc = unsafe {
        match key {
            Key::Name(name) => libc::getgrnam_r(
                name.as_ptr(),
                &mut entry,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            ),
            Key::Id(gid) => {
                libc::getgrgid_r(gid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found)
            }
        }
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    Some(Entry {
        id: entry.gr_gid,
        // SAFETY: as in `user`.
        name: unsafe { text(entry.gr_name) },
    })
}

/// The uid of the user named `name`.
pub(crate) fn uid_of(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    user(Key::Name(&name)).map(|e| e.id)
}

/// The gid of the group named `name`.
pub(crate) fn gid_of(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    group(Key::Name(&name)).map(|e| e.id)
}

/// The name of the user `uid`.
pub(crate) fn user_name(uid: u32) -> Option<String> {
    user(Key::Id(uid))?.name
}

/// The name of the group `gid`.
pub(crate) fn group_name(gid: u32) -> Option<String> {
    group(Key::Id(gid))?.name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_both_ways() {
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(gid_of("root"), Some(0));
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(uid_of("no-such-user-here"), None);
        assert_eq!(gid_of("no\0nul"), None);
    }
}
