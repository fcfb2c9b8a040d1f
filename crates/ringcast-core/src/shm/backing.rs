//! Ring files: making a new one invisibly and linking it into place under its
//! name, opening one by name, and removing one.
//!
//! A ring on normal pages is a file in the ring directory (tmpfs, usually
//! /dev/shm/ringcast). A ring on huge pages is a file on a hugetlbfs mount,
//! and its name in the ring directory is a symbolic link to that file, so
//! subscribers find every ring by name in one directory. Links are followed
//! only to hugetlbfs files owned by the link's owner: a link planted in a
//! shared directory cannot redirect a publisher into someone else's file.
//!
//! A new ring is built completely (sized, placed, allocated, header written)
//! before its name appears, and the name appears atomically (`link(2)` or
//! `symlink(2)`, neither of which replaces an existing name), so nobody ever
//! opens a half-made ring and two creators never both win.

use crate::error::{ArgumentError, OpenError, Result, RingFault};
use crate::format::layout::Layout;
use crate::shm::hugepages::{self, Backing, HugePages};
use crate::shm::mapping::Mapping;
use crate::shm::ring::unix_now_ns;
use crate::shm::trust;
use crate::sys::fs as sysfs;
use crate::sys::process;
use std::fs::{File, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An open ring file.
pub(crate) struct RingFile {
    pub file: File,
    /// The ring's name in the ring directory.
    pub path: PathBuf,
    /// Where its bytes are: `path` itself, or the hugetlbfs file it links to.
    pub bytes_at: PathBuf,
}

/// Opens the regular file `handle` (an `O_PATH` handle of `path`, of
/// metadata `meta`) for reading and writing: through `/proc/self/fd`, which
/// reopens that very inode whatever `path` names meanwhile; else (no /proc)
/// by path, without following links and without blocking, and only if it
/// is still the same file.
fn reopen(handle: &File, path: &Path, meta: &std::fs::Metadata) -> Result<File, RingFault> {
    let file = match sysfs::reopen_read_write(handle) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => sysfs::open_read_write_no_follow(path),
        other => other,
    }
    .map_err(|e| RingFault::io("open", path, e))?;
    let now = file
        .metadata()
        .map_err(|e| RingFault::io("inspect", path, e))?;
    if now.dev() != meta.dev() || now.ino() != meta.ino() {
        return Err(RingFault::corrupt(
            path,
            "it was replaced by another file while being opened; try again",
        ));
    }
    Ok(file)
}

/// What kind of file `meta` describes, for errors about non-ring files.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() || t.is_char_device() {
        "device"
    } else if t.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

/// Opens the ring file at `path` for reading and writing: a regular file,
/// or a link to a huge-page ring file (see the module comment), owned by a
/// trusted user (see [`crate::shm::trust`]). Nothing else is ever opened: what
/// the name is, and whose, is looked at first through an `O_PATH` handle.
pub(crate) fn open_ring_file(path: &Path) -> Result<RingFile, OpenError> {
    let handle = sysfs::open_handle(path).map_err(|e| RingFault::io("open", path, e))?;
    let meta = handle
        .metadata()
        .map_err(|e| RingFault::io("inspect", path, e))?;
    trust::check_file(path, &meta)?;
    if meta.file_type().is_symlink() {
        return open_huge_link(path, &handle, &meta);
    }
    if !meta.file_type().is_file() {
        return Err(RingFault::corrupt(
            path,
            format!(
                "it is a {}, not a ring file; remove it (ringcast never opens it)",
                kind_of(&meta)
            ),
        )
        .into());
    }
    Ok(RingFile {
        file: reopen(&handle, path, &meta)?,
        path: path.to_owned(),
        bytes_at: path.to_owned(),
    })
}

/// Opens the huge-page ring file that the link `link` (an `O_PATH` handle of
/// `path`, owned by a trusted user: `link_meta`) names.
fn open_huge_link(
    path: &Path,
    link: &File,
    link_meta: &std::fs::Metadata,
) -> Result<RingFile, OpenError> {
    let not_ours = |why: String| {
        OpenError::from(RingFault::corrupt(
            path,
            format!("it is a symbolic link {why}"),
        ))
    };
    let target = sysfs::read_link_at(link).map_err(|e| RingFault::io("read the link", path, e))?;
    if !target.is_absolute() {
        return Err(not_ours(format!(
            "to {}, not to a huge-page ring file",
            target.display()
        )));
    }
    let handle = match sysfs::open_handle(&target) {
        Ok(handle) => handle,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(not_ours(format!(
                "to huge-page file {}, which is gone (removed by hand?)",
                target.display()
            )))
        }
        Err(e) if sysfs::is_link_loop(&e) => {
            return Err(not_ours(format!("to {}, another link", target.display())))
        }
        Err(e) => return Err(RingFault::io("open", &target, e).into()),
    };
    let meta = handle
        .metadata()
        .map_err(|e| RingFault::io("inspect", &target, e))?;
    if !meta.file_type().is_file() {
        return Err(not_ours(format!(
            "to {}, a {}, not a ring file",
            target.display(),
            kind_of(&meta)
        )));
    }
    if meta.uid() != link_meta.uid() {
        return Err(not_ours(format!(
            "owned by uid {} to {}, owned by uid {}; a ring's link and file have one owner",
            link_meta.uid(),
            target.display(),
            meta.uid()
        )));
    }
    if !hugepages::backing_of(&handle).huge {
        return Err(not_ours(format!(
            "to {}, which is not on a hugetlbfs filesystem; ringcast follows links only to \
             its huge-page ring files",
            target.display()
        )));
    }
    Ok(RingFile {
        file: reopen(&handle, &target, &meta)?,
        path: path.to_owned(),
        bytes_at: target,
    })
}

/// Opens ring `name` in `dir` (`None`: the default directory). A missing
/// ring is `NotFound`, listing the rings that are there.
pub(crate) fn open_named(name: &str, dir: Option<&Path>) -> Result<RingFile, OpenError> {
    crate::format::name::validate(name)?;
    let dir = crate::format::name::resolve_dir(dir);
    trust::check_dir(&dir)?;
    let path = crate::format::name::ring_path(&dir, name);
    match open_ring_file(&path) {
        Err(OpenError::Fault(RingFault::Io { source, .. }))
            if source.kind() == io::ErrorKind::NotFound =>
        {
            Err(OpenError::NotFound {
                name: name.to_owned(),
                path,
                available: crate::format::name::list(&dir),
            })
        }
        other => other,
    }
}

/// How a new ring's memory is set up, before anyone can see the ring.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// Huge pages: off, preferred or required.
    pub huge_pages: HugePages,
    /// Huge page size in bytes; `None`: 1 GiB pages for rings of at least
    /// 1 GiB when the host has them, else 2 MiB.
    pub huge_page_size: Option<u64>,
    /// hugetlbfs directory for huge-page ring files; `None`:
    /// `$RINGCAST_HUGE_DIR`, else `ringcast/` on a matching hugetlbfs mount.
    pub huge_dir: Option<PathBuf>,
    /// Bind the ring's pages to this NUMA node.
    pub numa_node: Option<usize>,
}

/// A new ring file, sized, mapped, placed and allocated, not yet linked.
pub(crate) struct NewRing {
    pub file: File,
    pub map: Mapping,
    pub backing: Backing,
    /// Where the ring's bytes will be once it is linked.
    pub bytes_at: PathBuf,
    /// `huge_pages="prefer"` fell back to normal pages: why.
    pub huge_fallback: Option<String>,
    /// The NUMA binding took effect (false: none asked, or a kernel without
    /// NUMA support on a single-node host).
    pub numa_bound: bool,
    /// Gives the file its name; removes it if it never gets one.
    pub pending: Pending,
}

/// A made file waiting for its name.
pub(crate) struct Pending {
    /// The file as made: a hidden temporary name in the ring directory, or
    /// the hugetlbfs file.
    file: PathBuf,
    huge: bool,
    linked: bool,
}

impl Pending {
    /// Gives the ring its name `path`; `false` when another creator linked a
    /// ring of that name first (this one is then removed on drop).
    pub(crate) fn link(&mut self, path: &Path) -> Result<bool, RingFault> {
        let result = if self.huge {
            std::os::unix::fs::symlink(&self.file, path)
        } else {
            std::fs::hard_link(&self.file, path)
        };
        match result {
            // The temporary name of a normal ring goes on drop; the ring
            // keeps its real one. A huge-page ring's file stays.
            Ok(()) => {
                self.linked = self.huge;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(RingFault::io("create", path, e)),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.linked {
            let _ = std::fs::remove_file(&self.file);
        }
    }
}

/// Makes the file of ring `name` (not yet visible under its name) for
/// `layout`, placed as `placement` says; `dir` is the ring directory.
pub(crate) fn create(
    dir: &Path,
    name: &str,
    layout: &Layout,
    placement: &Placement,
    mode: u32,
) -> Result<NewRing, OpenError> {
    let huge_fallback = match placement.huge_pages {
        HugePages::Off => None,
        mode_wanted => match create_huge(dir, name, layout, placement, mode)? {
            Ok(ring) => return Ok(ring),
            Err(detail) if mode_wanted == HugePages::Require => {
                return Err(OpenError::HugePagesUnavailable {
                    name: name.to_owned(),
                    detail,
                })
            }
            Err(detail) => Some(detail),
        },
    };
    remove_stale_temp_files(dir, name);
    let temp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        unix_now_ns()
    ));
    let file = create_file(&temp, mode).map_err(|e| RingFault::io("create files in", dir, e))?;
    let pending = Pending {
        file: temp.clone(),
        huge: false,
        linked: false,
    };
    let len = layout.file_len();
    let backing = hugepages::backing_of(&file);
    let (map, numa_bound) = size_and_place(&file, &temp, len, placement.numa_node)?;
    allocate(&file, len).map_err(|e| {
        // ENOSPC
        if e.kind() == io::ErrorKind::StorageFull {
            OpenError::NoSpace {
                dir: dir.to_owned(),
                needed: len,
            }
        } else {
            RingFault::io("size", &temp, e).into()
        }
    })?;
    Ok(NewRing {
        file,
        map,
        backing,
        bytes_at: crate::format::name::ring_path(dir, name),
        huge_fallback,
        numa_bound,
        pending,
    })
}

/// The huge-page variant of [`create`]: `Ok(Err(why))` when the host cannot
/// give the ring huge pages.
fn create_huge(
    dir: &Path,
    name: &str,
    layout: &Layout,
    placement: &Placement,
    mode: u32,
) -> Result<std::result::Result<NewRing, String>, OpenError> {
    let target = match hugepages::choose(
        layout.file_len(),
        placement.huge_page_size,
        placement.huge_dir.as_deref(),
    ) {
        Ok(t) => t,
        Err(why) => return Ok(Err(why)),
    };
    if let Err(e) = std::fs::create_dir_all(&target.dir) {
        return Ok(Err(format!(
            "cannot create huge-page directory {} ({e}); create it as root with mode 1777 \
             (mkdir -m 1777 {}), mount hugetlbfs with mode=1777, or set RINGCAST_HUGE_DIR to \
             a directory you can write on a hugetlbfs mount",
            target.dir.display(),
            target.dir.display()
        )));
    }
    if placement.huge_dir.is_none() && std::env::var_os("RINGCAST_HUGE_DIR").is_none() {
        // The default directory is shared like /tmp (best effort).
        let _ = std::fs::set_permissions(&target.dir, Permissions::from_mode(0o1777));
    }
    let key = dir_key(dir)?;
    remove_stale_huge_files(&target.dir, dir, name, &key);
    let path = target.dir.join(format!(
        "{name}.{key}.{}.{}.ring",
        std::process::id(),
        unix_now_ns()
    ));
    let file = match create_file(&path, mode) {
        Ok(f) => f,
        Err(e) => {
            return Ok(Err(format!(
                "cannot create files in huge-page directory {} ({e}); make it writable \
                 (mode 1777) or set RINGCAST_HUGE_DIR to a directory you can write",
                target.dir.display()
            )))
        }
    };
    let pending = Pending {
        file: path.clone(),
        huge: true,
        linked: false,
    };
    let len = layout.file_len_on(target.page_size);
    let (map, numa_bound) = size_and_place(&file, &path, len, placement.numa_node)?;
    // hugetlbfs allocates the pages now: a pool that another process
    // emptied since `choose` looked is found here, not as a SIGBUS later.
    if let Err(e) = allocate(&file, len) {
        return Ok(Err(format!(
            "the kernel refused {} huge pages of {} ({e}); another process may have taken \
             them: raise the pool (vm.nr_hugepages) or stop what holds them",
            len / target.page_size,
            hugepages::human_size(target.page_size)
        )));
    }
    let backing = hugepages::backing_of(&file);
    Ok(Ok(NewRing {
        file,
        map,
        backing,
        bytes_at: path,
        huge_fallback: None,
        numa_bound,
        pending,
    }))
}

/// Sizes the new file to `len`, maps it and binds it to a NUMA node (before
/// any page is allocated, so that every page lands there).
fn size_and_place(
    file: &File,
    path: &Path,
    len: u64,
    numa_node: Option<usize>,
) -> Result<(Mapping, bool), RingFault> {
    file.set_len(len)
        .map_err(|e| RingFault::io("size", path, e))?;
    let map = Mapping::map(file, len as usize).map_err(|e| RingFault::io("map", path, e))?;
    let bound = match numa_node {
        None => false,
        Some(node) => crate::sys::vm::bind_to_node(map.region(), node).map_err(|e| {
            RingFault::io(format!("bind to NUMA node {node} the pages of"), path, e)
        })?,
    };
    Ok((map, bound))
}

fn create_file(path: &Path, mode: u32) -> io::Result<File> {
    let file = sysfs::create_new(path, mode)?;
    // The umask may have cleared bits the caller asked for.
    file.set_permissions(Permissions::from_mode(mode))?;
    Ok(file)
}

/// Reserves the file's pages when the filesystem supports it, so that running
/// out of /dev/shm (or of huge pages) is an error now, not a SIGBUS later.
fn allocate(file: &File, len: u64) -> io::Result<()> {
    // `false`: the filesystem cannot allocate ahead; the file is sized already.
    sysfs::allocate(file, len).map(|_| ())
}

/// Creates the ring directory if needed; the default one is shared like /tmp.
pub(crate) fn ensure_dir(dir: &Path, shared_default: bool) -> Result<(), OpenError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(ArgumentError::NotADirectory {
                dir: dir.to_owned(),
            }
            .into())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(RingFault::io("inspect", dir, e).into()),
    }
    std::fs::create_dir_all(dir).map_err(|e| RingFault::io("create directory", dir, e))?;
    if shared_default {
        // World-writable with the sticky bit: every user may create rings,
        // only the owner may remove them. Best effort (another user's dir).
        let _ = std::fs::set_permissions(dir, Permissions::from_mode(0o1777));
    }
    Ok(())
}

/// Removes temporary files of `name` left by creators that died mid-way
/// (`.name.PID.NS.tmp` with a dead PID).
fn remove_stale_temp_files(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name();
        let Some(rest) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix)?.strip_suffix(".tmp"))
        else {
            continue;
        };
        let pid = rest.split('.').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !process::exists(p)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Identifies a ring directory in huge-page file names (`NAME.KEY.PID.NS.ring`),
/// so that rings of the same name in different ring directories sharing one
/// hugetlbfs directory never take each other for stale.
fn dir_key(dir: &Path) -> Result<String, RingFault> {
    let meta = std::fs::metadata(dir).map_err(|e| RingFault::io("inspect", dir, e))?;
    Ok(format!("{:x}-{:x}", meta.dev(), meta.ino()))
}

/// Removes huge-page files of ring `name` of ring directory `ring_dir` that
/// no name leads to and whose creator is dead: creations cut short between
/// making the file and linking it, or rings whose link was removed by hand.
/// Huge pages are scarce; such files would hold them until reboot.
fn remove_stale_huge_files(huge_dir: &Path, ring_dir: &Path, name: &str, key: &str) {
    let prefix = format!("{name}.{key}.");
    let linked = std::fs::read_link(crate::format::name::ring_path(ring_dir, name)).ok();
    for entry in std::fs::read_dir(huge_dir).into_iter().flatten().flatten() {
        let file = entry.file_name();
        let Some(rest) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix)?.strip_suffix(".ring"))
        else {
            continue;
        };
        let mut parts = rest.split('.');
        let (Some(pid), Some(_ns), None) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if linked.as_deref() != Some(entry.path().as_path()) && !process::exists(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Which file a ring is: its name's path plus device and inode of its bytes,
/// so that removing it later (even after the publisher closed) never removes
/// a newer ring that took the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingIdentity {
    path: PathBuf,
    /// The hugetlbfs file a huge-page ring's name links to.
    huge_file: Option<PathBuf>,
    dev: u64,
    ino: u64,
}

impl RingIdentity {
    /// The identity of the mapped ring `ring`.
    pub(crate) fn of(ring: &crate::shm::ring::RingMap) -> Result<Self, RingFault> {
        let meta = ring
            .file()
            .metadata()
            .map_err(|e| RingFault::io("inspect", ring.path(), e))?;
        Ok(Self {
            path: ring.path().to_owned(),
            huge_file: (ring.bytes_at() != ring.path()).then(|| ring.bytes_at().to_owned()),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Path of the ring's name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn is_ours(&self, path: &Path) -> Result<bool, RingFault> {
        match std::fs::metadata(path) {
            Ok(there) => Ok(there.dev() == self.dev && there.ino() == self.ino),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(RingFault::io("inspect", path, e)),
        }
    }

    /// Removes the ring: its name if the name still leads to this ring (a
    /// missing name, or one taken by another ring, is left alone), and a
    /// huge-page ring's file, which nothing can reach any more.
    pub fn unlink(&self) -> Result<(), RingFault> {
        let remove = |p: &Path| match std::fs::remove_file(p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(RingFault::io("remove", p, e)),
            _ => Ok(()),
        };
        if self.is_ours(&self.path)? {
            remove(&self.path)?;
        }
        if let Some(file) = &self.huge_file {
            if self.is_ours(file)? {
                remove(file)?;
            }
        }
        Ok(())
    }
}
