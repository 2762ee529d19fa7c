//! Unpacking one uncompressed layer tar into a directory, contained: no entry is written outside it.
//!
//! Every entry is created relative to a descriptor of its parent directory, reached by walking the
//! entry's parent components one at a time with `O_NOFOLLOW | O_DIRECTORY`. A symlink (or any
//! non-directory) met on the way is never followed: if this layer created it, the layer is refused
//! (`etc -> /` followed by `etc/passwd`); if it came from a lower layer (only possible for the vfs
//! driver, which unpacks onto a copy of the parent) it is replaced by a directory, which is what
//! overlay shows when an upper directory covers a lower non-directory. Names with `..` are refused,
//! absolute names are made relative, hardlink targets must already exist inside the directory.
//! Symlink targets are stored as they are: they are only ever resolved inside a container's root.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid};
use rustix::io::Errno;

use crate::fsutil::{self, os, XattrTarget};
use crate::targuard::HeaderGuard;
use crate::{LayerStats, SnapshotError};

/// Longest entry name (and hardlink / symlink target) accepted, in bytes (Linux PATH_MAX).
pub const MAX_ENTRY_NAME_BYTES: usize = 4096;
/// Longest single path component (Linux NAME_MAX).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Deepest entry path accepted, in components.
pub const MAX_PATH_DEPTH: usize = 256;
/// Most xattrs accepted on one entry.
pub const MAX_XATTRS_PER_ENTRY: usize = 128;
/// Most entries accepted in one layer (bounds the bookkeeping kept per entry).
pub const MAX_ENTRIES: usize = 4_000_000;

/// Prefix of a whiteout entry: `.wh.<name>` deletes `<name>` from the layers below.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// An entry with this name makes its directory opaque: nothing below it shows through.
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Prefix of AUFS bookkeeping entries (`.wh..wh.plnk`, ...), which are skipped.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
/// The xattr overlayfs reads to treat a directory as opaque.
pub(crate) const OVERLAY_OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";
/// Xattrs in this namespace steer overlayfs (redirects, metacopy, opaque): never taken from a tar.
pub(crate) const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// What whiteout entries turn into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Overlay whiteouts: `.wh.<name>` becomes a 0:0 character device `<name>`, `.wh..wh..opq`
    /// sets `trusted.overlay.opaque=y` on its directory. The target directory starts empty.
    Overlay,
    /// Real deletions, for a directory that already holds a copy of the layers below (vfs):
    /// `.wh.<name>` removes `<name>`, `.wh..wh..opq` removes what did not come from this layer.
    Delete,
}

/// Unpacks the layer tar `layer` (uncompressed, streamed) into the existing directory `dir`.
///
/// On error the directory may hold part of the layer: callers unpack into a temp dir and discard
/// it on failure. Nothing is ever written outside `dir`.
pub fn apply_tar(
    dir: &Path,
    layer: &mut dyn Read,
    whiteouts: Whiteouts,
) -> Result<LayerStats, SnapshotError> {
    apply_tar_owned(dir, layer, whiteouts, None)
}

/// [`apply_tar`], with every entry owned by `owner` (uid, gid) instead of the tar's owners
/// when given (`docker cp` without `-a`).
pub fn apply_tar_owned(
    dir: &Path,
    layer: &mut dyn Read,
    whiteouts: Whiteouts,
    owner: Option<(u32, u32)>,
) -> Result<LayerStats, SnapshotError> {
    let root = fsutil::open_dir_path(dir).map_err(|source| SnapshotError::Io {
        op: "open layer dir",
        path: dir.to_owned(),
        source,
    })?;
    apply_tar_in(root, dir, layer, whiteouts, owner)
}

/// [`apply_tar_owned`] into an already opened directory `root` (a read-only directory
/// descriptor, reached safely by the caller); `dir` only names it in messages.
pub fn apply_tar_in(
    root: OwnedFd,
    dir: &Path,
    layer: &mut dyn Read,
    whiteouts: Whiteouts,
    owner: Option<(u32, u32)>,
) -> Result<LayerStats, SnapshotError> {
    let mut unpacker = Unpacker {
        root,
        dir,
        whiteouts,
        owner,
        created: HashSet::new(),
        dir_times: Vec::new(),
        cache: None,
        stats: LayerStats::default(),
        entries: 0,
        buf: vec![0u8; 128 * 1024],
    };
    let mut archive = tar::Archive::new(HeaderGuard::new(layer));
    let entries = archive.entries().map_err(SnapshotError::CorruptTar)?;
    for entry in entries {
        let mut entry = entry.map_err(SnapshotError::CorruptTar)?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish()
}

/// Splits an entry name into its components: leading `/` and `.` components dropped, `..` refused.
pub fn clean_path(raw: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if raw.len() > MAX_ENTRY_NAME_BYTES {
        return Err(format!("name is longer than {MAX_ENTRY_NAME_BYTES} bytes"));
    }
    if raw.contains(&0) {
        return Err("name contains a NUL byte".to_owned());
    }
    let mut comps = Vec::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("path has a '..' component and would escape the layer".to_owned()),
            c if c.len() > MAX_COMPONENT_BYTES => {
                return Err(format!(
                    "a path component is longer than {MAX_COMPONENT_BYTES} bytes"
                ))
            }
            c => comps.push(c.to_vec()),
        }
    }
    if comps.len() > MAX_PATH_DEPTH {
        return Err(format!("path is deeper than {MAX_PATH_DEPTH} components"));
    }
    Ok(comps)
}

/// Joins components with `/` (the key of the per-layer bookkeeping).
fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

/// Entry types a layer may hold.
const SUPPORTED: &[tar::EntryType] = &[
    tar::EntryType::Regular,
    tar::EntryType::Continuous,
    tar::EntryType::GNUSparse,
    tar::EntryType::Directory,
    tar::EntryType::Symlink,
    tar::EntryType::Link,
    tar::EntryType::Char,
    tar::EntryType::Block,
    tar::EntryType::Fifo,
];

/// Where one entry goes: its parent directory and leaf name, plus its path for messages.
struct Target<'a> {
    parent: &'a OwnedFd,
    leaf: &'a [u8],
    comps: &'a [Vec<u8>],
    name: &'a str,
}

/// Result of walking to a directory without following symlinks.
enum Lookup {
    Dir(OwnedFd),
    /// Some component does not exist (only when not creating).
    Missing,
    /// A component is a symlink or other non-directory; holds that component's path.
    Blocked(Vec<u8>),
}

/// Owner, mode, time and xattrs of one entry.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

struct Unpacker<'a> {
    root: OwnedFd,
    dir: &'a Path,
    whiteouts: Whiteouts,
    /// Overrides every entry's owner when set.
    owner: Option<(u32, u32)>,
    /// Paths this layer created (entries and implicit parents), joined with `/`.
    created: HashSet<Vec<u8>>,
    /// Directory times, applied at the end so creating their contents does not change them.
    dir_times: Vec<(Vec<Vec<u8>>, Timestamps)>,
    /// The last parent directory walked to: layers list siblings together.
    cache: Option<(Vec<u8>, OwnedFd)>,
    stats: LayerStats,
    entries: usize,
    buf: Vec<u8>,
}

fn invalid(name: &str, why: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::InvalidLayer(format!("entry {name:?}: {why}"))
}

fn corrupt(err: io::Error) -> SnapshotError {
    SnapshotError::CorruptTar(err)
}

impl Unpacker<'_> {
    fn io_err(
        &self,
        op: &'static str,
        comps: &[Vec<u8>],
        err: impl Into<io::Error>,
    ) -> SnapshotError {
        let mut path = self.dir.to_path_buf();
        for c in comps {
            path.push(os(c));
        }
        SnapshotError::Io {
            op,
            path,
            source: err.into(),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), SnapshotError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(SnapshotError::InvalidLayer(format!(
                "more than {MAX_ENTRIES} entries"
            )));
        }
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let comps = clean_path(&raw).map_err(|why| invalid(&name, why))?;
        if !SUPPORTED.contains(&kind) {
            return Err(invalid(
                &name,
                format_args!("unsupported entry type {kind:?}"),
            ));
        }

        if let Some((leaf, parent)) = comps.split_last() {
            if leaf.as_slice() == OPAQUE_MARKER {
                return self.opaque(parent, &name);
            }
            if comps[0].starts_with(AUFS_META_PREFIX) {
                return Ok(());
            }
            if let Some(target) = leaf.strip_prefix(WHITEOUT_PREFIX) {
                let meta = self.meta(entry, &name)?;
                return self.whiteout(parent, target, &meta, &name);
            }
        }
        let meta = self.meta(entry, &name)?;
        let Some((leaf, parent_comps)) = comps.split_last() else {
            if kind != tar::EntryType::Directory {
                return Err(invalid(&name, "the layer root can only be a directory"));
            }
            let root = self
                .root
                .try_clone()
                .map_err(|e| self.io_err("dup", &[], e))?;
            self.set_fd_meta(&root, &meta, &comps, &name, false)?;
            self.dir_times.push((Vec::new(), meta.times()));
            return Ok(());
        };
        let parent = match self.walk(parent_comps, true)? {
            Lookup::Dir(fd) => fd,
            Lookup::Blocked(at) => return Err(blocked(&name, &at)),
            Lookup::Missing => return Err(invalid(&name, "parent directory is missing")),
        };

        // A hardlink target is checked before anything is removed, so a link to itself fails cleanly.
        let link_target = if kind == tar::EntryType::Link {
            Some(self.hardlink_target(entry, &comps, &name)?)
        } else {
            None
        };

        // Replace what is there unless a directory meets a directory (then only metadata changes).
        let existing = match fsutil::lstat_at(&parent, os(leaf)) {
            Ok(st) => Some(fsutil::file_type(&st)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(self.io_err("lstat", &comps, e)),
        };
        let is_dir = kind == tar::EntryType::Directory;
        if let Some(ft) = existing {
            if !(is_dir && ft == FileType::Directory) {
                self.cache = None;
                fsutil::remove_all_at(parent.as_fd(), leaf)
                    .map_err(|e| self.io_err("remove", &comps, e))?;
            }
        }

        let at = Target {
            parent: &parent,
            leaf,
            comps: &comps,
            name: &name,
        };
        self.create_node(entry, kind, &at, &meta, existing.is_some(), link_target)?;
        self.created.insert(join(&comps));
        Ok(())
    }

    /// Creates the node for one entry at `at` (its old occupant already removed).
    fn create_node<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: tar::EntryType,
        at: &Target<'_>,
        meta: &Meta,
        existing: bool,
        link_target: Option<(OwnedFd, Vec<u8>)>,
    ) -> Result<(), SnapshotError> {
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.regular(entry, at.parent, at.leaf, at.comps, meta, at.name)?;
            }
            tar::EntryType::Directory => {
                if !existing {
                    rustix::fs::mkdirat(at.parent, os(at.leaf), Mode::from_raw_mode(0o700))
                        .map_err(|e| self.io_err("mkdir", at.comps, e))?;
                }
                let fd = fsutil::open_dir_at(at.parent, os(at.leaf))
                    .map_err(|e| self.io_err("open", at.comps, e))?;
                self.set_fd_meta(&fd, meta, at.comps, at.name, false)?;
                self.dir_times.push((at.comps.to_vec(), meta.times()));
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .ok_or_else(|| invalid(at.name, "symlink without a target"))?;
                if target.is_empty() || target.len() > MAX_ENTRY_NAME_BYTES || target.contains(&0) {
                    return Err(invalid(
                        at.name,
                        "symlink target is empty, too long or has a NUL byte",
                    ));
                }
                rustix::fs::symlinkat(os(&target), at.parent, os(at.leaf))
                    .map_err(|e| self.io_err("symlink", at.comps, e))?;
                // Docker's layer size is the lstat size of every non-directory, and a
                // symlink's lstat size is its target's length.
                self.stats.size_bytes += target.len() as u64;
                self.set_leaf_meta(at.parent, at.leaf, meta, at.comps, at.name, false)?;
            }
            tar::EntryType::Link => {
                if let Some((tparent, tleaf)) = link_target {
                    rustix::fs::linkat(
                        &tparent,
                        os(&tleaf),
                        at.parent,
                        os(at.leaf),
                        AtFlags::empty(),
                    )
                    .map_err(|e| self.io_err("link", at.comps, e))?;
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                // A fifo's device fields are often left blank; a device needs real numbers.
                let header = entry.header();
                let (major, minor) = if ft == FileType::Fifo {
                    (0, 0)
                } else {
                    let bad = |_| invalid(at.name, "device number is not a number");
                    let major = header.device_major().map_err(bad)?.unwrap_or(0);
                    let minor = header.device_minor().map_err(bad)?.unwrap_or(0);
                    (major, minor)
                };
                rustix::fs::mknodat(
                    at.parent,
                    os(at.leaf),
                    ft,
                    Mode::from_raw_mode(meta.mode),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(|e| self.io_err("mknod", at.comps, e))?;
                self.set_leaf_meta(at.parent, at.leaf, meta, at.comps, at.name, true)?;
            }
            other => {
                return Err(invalid(
                    at.name,
                    format_args!("unsupported entry type {other:?}"),
                ))
            }
        }
        Ok(())
    }

    /// Reads owner, mode, mtime (PAX `mtime` wins, with its fraction) and `SCHILY.xattr.*`.
    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        name: &str,
    ) -> Result<Meta, SnapshotError> {
        let header = entry.header();
        let uid = u32::try_from(header.uid().map_err(corrupt)?)
            .map_err(|_| invalid(name, "uid does not fit in 32 bits"))?;
        let gid = u32::try_from(header.gid().map_err(corrupt)?)
            .map_err(|_| invalid(name, "gid does not fit in 32 bits"))?;
        let (uid, gid) = self.owner.unwrap_or((uid, gid));
        let mode = header.mode().map_err(corrupt)? & 0o7777;
        let mut mtime = Timespec {
            tv_sec: i64::try_from(header.mtime().map_err(corrupt)?).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        let mut xattrs = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(corrupt)? {
            for ext in exts {
                let ext = ext.map_err(corrupt)?;
                let key = ext.key_bytes();
                if key == b"mtime" {
                    if let Some(t) = parse_pax_time(ext.value_bytes()) {
                        mtime = t;
                    }
                } else if let Some(xname) = key.strip_prefix(b"SCHILY.xattr.") {
                    if xname.starts_with(OVERLAY_XATTR_PREFIX) {
                        tracing::debug!("ignoring overlay xattr on {name:?} from a layer tar");
                        continue;
                    }
                    let value = ext.value_bytes();
                    if xname.is_empty() || xname.len() > 255 || xname.contains(&0) {
                        return Err(invalid(
                            name,
                            "xattr name is empty, too long or has a NUL byte",
                        ));
                    }
                    if value.len() > fsutil::MAX_XATTR_VALUE_BYTES {
                        return Err(invalid(name, "xattr value is larger than 64 KiB"));
                    }
                    if xattrs.len() >= MAX_XATTRS_PER_ENTRY {
                        return Err(invalid(
                            name,
                            format_args!("more than {MAX_XATTRS_PER_ENTRY} xattrs"),
                        ));
                    }
                    xattrs.push((xname.to_vec(), value.to_vec()));
                }
            }
        }
        Ok(Meta {
            uid,
            gid,
            mode,
            mtime,
            xattrs,
        })
    }

    /// Walks from the layer root to the directory `comps`, never following a symlink. With
    /// `create`, missing directories are made (0755 root, like Docker) and non-directories left by
    /// lower layers are replaced; a non-directory created by this layer is `Blocked`.
    fn walk(&mut self, comps: &[Vec<u8>], create: bool) -> Result<Lookup, SnapshotError> {
        let key = join(comps);
        if let Some((cached, fd)) = &self.cache {
            if *cached == key {
                let fd = fd.try_clone().map_err(|e| self.io_err("dup", comps, e))?;
                return Ok(Lookup::Dir(fd));
            }
        }
        let mut cur = self
            .root
            .try_clone()
            .map_err(|e| self.io_err("dup", &[], e))?;
        for (i, comp) in comps.iter().enumerate() {
            let next = match fsutil::open_dir_at(&cur, os(comp)) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    self.mkdir_implicit(&cur, comps, i)?;
                    fsutil::open_dir_at(&cur, os(comp))
                        .map_err(|e| self.io_err("open", &comps[..=i], e))?
                }
                Err(Errno::NOENT) => return Ok(Lookup::Missing),
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    let prefix = join(&comps[..=i]);
                    let from_lower =
                        self.whiteouts == Whiteouts::Delete && !self.created.contains(&prefix);
                    if !(create && from_lower) {
                        return Ok(Lookup::Blocked(prefix));
                    }
                    fsutil::remove_all_at(cur.as_fd(), comp)
                        .map_err(|e| self.io_err("remove", &comps[..=i], e))?;
                    self.mkdir_implicit(&cur, comps, i)?;
                    fsutil::open_dir_at(&cur, os(comp))
                        .map_err(|e| self.io_err("open", &comps[..=i], e))?
                }
                Err(e) => return Err(self.io_err("open", &comps[..=i], e)),
            };
            cur = next;
        }
        if let Ok(fd) = cur.try_clone() {
            self.cache = Some((key, fd));
        }
        Ok(Lookup::Dir(cur))
    }

    fn mkdir_implicit(
        &mut self,
        parent: &OwnedFd,
        comps: &[Vec<u8>],
        i: usize,
    ) -> Result<(), SnapshotError> {
        match rustix::fs::mkdirat(parent, os(&comps[i]), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(self.io_err("mkdir", &comps[..=i], e)),
        }
        self.created.insert(join(&comps[..=i]));
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        parent: &OwnedFd,
        leaf: &[u8],
        comps: &[Vec<u8>],
        meta: &Meta,
        name: &str,
    ) -> Result<(), SnapshotError> {
        let fd = rustix::fs::openat(
            parent,
            os(leaf),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.io_err("create", comps, e))?;
        let mut file = std::fs::File::from(fd);
        let expected = entry.size();
        let mut written: u64 = 0;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(corrupt(e)),
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| self.io_err("write", comps, e))?;
            written += n as u64;
        }
        if written != expected {
            return Err(corrupt(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("layer tar ends inside entry {name:?}"),
            )));
        }
        self.stats.size_bytes += written;
        self.set_fd_meta(&OwnedFd::from(file), meta, comps, name, true)?;
        Ok(())
    }

    /// Owner, then mode (chown clears setuid), then xattrs (chown and writes clear
    /// `security.capability`), then times, on an open regular file or directory.
    fn set_fd_meta(
        &self,
        fd: &OwnedFd,
        meta: &Meta,
        comps: &[Vec<u8>],
        name: &str,
        set_times: bool,
    ) -> Result<(), SnapshotError> {
        rustix::fs::fchown(
            fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(|e| self.io_err("chown", comps, e))?;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(meta.mode))
            .map_err(|e| self.io_err("chmod", comps, e))?;
        self.set_xattrs(&XattrTarget::Fd(fd.as_fd()), meta, comps, name)?;
        if set_times {
            rustix::fs::futimens(fd, &meta.times())
                .map_err(|e| self.io_err("utimens", comps, e))?;
        }
        Ok(())
    }

    /// The same for a symlink, device or fifo, addressed through its parent.
    fn set_leaf_meta(
        &self,
        parent: &OwnedFd,
        leaf: &[u8],
        meta: &Meta,
        comps: &[Vec<u8>],
        name: &str,
        chmod: bool,
    ) -> Result<(), SnapshotError> {
        rustix::fs::chownat(
            parent,
            os(leaf),
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.io_err("lchown", comps, e))?;
        if chmod {
            rustix::fs::chmodat(
                parent,
                os(leaf),
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .map_err(|e| self.io_err("chmod", comps, e))?;
        }
        if !meta.xattrs.is_empty() {
            let target = XattrTarget::leaf(parent.as_fd(), leaf)
                .map_err(|e| self.io_err("xattr", comps, e))?;
            self.set_xattrs(&target, meta, comps, name)?;
        }
        rustix::fs::utimensat(parent, os(leaf), &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io_err("lutimes", comps, e))?;
        Ok(())
    }

    fn set_xattrs(
        &self,
        target: &XattrTarget<'_>,
        meta: &Meta,
        comps: &[Vec<u8>],
        name: &str,
    ) -> Result<(), SnapshotError> {
        for (key, value) in &meta.xattrs {
            match target.set(key, value) {
                Ok(()) => {}
                // Docker skips xattrs the filesystem or namespace does not take.
                Err(Errno::NOTSUP) | Err(Errno::PERM) => tracing::debug!(
                    "skipping xattr {} on {name:?}: not supported here",
                    String::from_utf8_lossy(key)
                ),
                Err(e) => return Err(self.io_err("setxattr", comps, e)),
            }
        }
        Ok(())
    }

    /// Resolves a hardlink's target inside the layer dir: (its parent dir, its leaf name).
    fn hardlink_target<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        comps: &[Vec<u8>],
        name: &str,
    ) -> Result<(OwnedFd, Vec<u8>), SnapshotError> {
        let raw = entry
            .link_name_bytes()
            .map(|t| t.into_owned())
            .ok_or_else(|| invalid(name, "hardlink without a target"))?;
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let tcomps = clean_path(&raw)
            .map_err(|why| invalid(name, format_args!("hardlink target {shown:?}: {why}")))?;
        let Some((tleaf, tparent)) = tcomps.split_last() else {
            return Err(invalid(name, "hardlink to the layer root"));
        };
        if tcomps == comps {
            return Err(invalid(name, "hardlink to itself"));
        }
        let parent = match self.walk(tparent, false)? {
            Lookup::Dir(fd) => fd,
            Lookup::Missing => {
                return Err(invalid(
                    name,
                    format_args!("hardlink target {shown:?} does not exist in the layer"),
                ))
            }
            Lookup::Blocked(_) => {
                return Err(invalid(
                    name,
                    format_args!("hardlink target {shown:?} goes through a symlink"),
                ))
            }
        };
        match fsutil::lstat_at(&parent, os(tleaf)) {
            Ok(st) if fsutil::file_type(&st) == FileType::Directory => Err(invalid(
                name,
                format_args!("hardlink target {shown:?} is a directory"),
            )),
            Ok(_) => Ok((parent, tleaf.clone())),
            Err(Errno::NOENT) => Err(invalid(
                name,
                format_args!("hardlink target {shown:?} does not exist in the layer"),
            )),
            Err(e) => Err(self.io_err("lstat", &tcomps, e)),
        }
    }

    fn whiteout(
        &mut self,
        parent_comps: &[Vec<u8>],
        target: &[u8],
        meta: &Meta,
        name: &str,
    ) -> Result<(), SnapshotError> {
        if target.is_empty() || target == b"." || target == b".." {
            return Err(invalid(name, "whiteout names nothing"));
        }
        let mut comps = parent_comps.to_vec();
        comps.push(target.to_vec());
        match self.whiteouts {
            Whiteouts::Overlay => {
                let parent = match self.walk(parent_comps, true)? {
                    Lookup::Dir(fd) => fd,
                    Lookup::Blocked(at) => return Err(blocked(name, &at)),
                    Lookup::Missing => return Err(invalid(name, "parent directory is missing")),
                };
                self.cache = None;
                fsutil::remove_all_at(parent.as_fd(), target)
                    .map_err(|e| self.io_err("remove", &comps, e))?;
                rustix::fs::mknodat(
                    &parent,
                    os(target),
                    FileType::CharacterDevice,
                    Mode::empty(),
                    0,
                )
                .map_err(|e| self.io_err("mknod whiteout", &comps, e))?;
                rustix::fs::chownat(
                    &parent,
                    os(target),
                    Some(Uid::from_raw(meta.uid)),
                    Some(Gid::from_raw(meta.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.io_err("chown whiteout", &comps, e))?;
                self.created.insert(join(&comps));
            }
            Whiteouts::Delete => match self.walk(parent_comps, false)? {
                Lookup::Dir(parent) => {
                    self.cache = None;
                    fsutil::remove_all_at(parent.as_fd(), target)
                        .map_err(|e| self.io_err("remove", &comps, e))?;
                    self.created.remove(&join(&comps));
                }
                Lookup::Blocked(at) if self.created.contains(&at) => {
                    return Err(blocked(name, &at))
                }
                // Under a lower layer's non-directory there is nothing to delete.
                Lookup::Blocked(_) | Lookup::Missing => {}
            },
        }
        Ok(())
    }

    fn opaque(&mut self, dir_comps: &[Vec<u8>], name: &str) -> Result<(), SnapshotError> {
        match self.whiteouts {
            Whiteouts::Overlay => {
                let dir = match self.walk(dir_comps, true)? {
                    Lookup::Dir(fd) => fd,
                    Lookup::Blocked(at) => return Err(blocked(name, &at)),
                    Lookup::Missing => return Err(invalid(name, "directory is missing")),
                };
                XattrTarget::Fd(dir.as_fd())
                    .set(OVERLAY_OPAQUE_XATTR, b"y")
                    .map_err(|e| self.io_err("set opaque xattr on", dir_comps, e))?;
            }
            Whiteouts::Delete => {
                let dir = match self.walk(dir_comps, false)? {
                    Lookup::Dir(fd) => fd,
                    Lookup::Blocked(at) if self.created.contains(&at) => {
                        return Err(blocked(name, &at))
                    }
                    Lookup::Blocked(_) | Lookup::Missing => return Ok(()),
                };
                let names =
                    fsutil::read_names(&dir).map_err(|e| self.io_err("read dir", dir_comps, e))?;
                let prefix = join(dir_comps);
                for child in names {
                    let mut path = prefix.clone();
                    if !path.is_empty() {
                        path.push(b'/');
                    }
                    path.extend_from_slice(&child);
                    if !self.created.contains(&path) {
                        self.cache = None;
                        fsutil::remove_all_at(dir.as_fd(), &child)
                            .map_err(|e| self.io_err("remove", dir_comps, e))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Sets directory times, deepest last-listed first, now that their contents exist.
    fn finish(mut self) -> Result<LayerStats, SnapshotError> {
        let dir_times = std::mem::take(&mut self.dir_times);
        for (comps, times) in dir_times.iter().rev() {
            let fd = match comps.split_last() {
                None => self.root.try_clone().ok(),
                Some((leaf, parent)) => match self.walk(parent, false)? {
                    Lookup::Dir(p) => fsutil::open_dir_at(&p, os(leaf)).ok(),
                    _ => None,
                },
            };
            // A directory later replaced or whited out has no time left to set.
            if let Some(fd) = fd {
                rustix::fs::futimens(&fd, times).map_err(|e| self.io_err("utimens", comps, e))?;
            }
        }
        Ok(self.stats)
    }
}

fn blocked(name: &str, at: &[u8]) -> SnapshotError {
    invalid(
        name,
        format_args!(
            "{:?} is a symlink or not a directory; refusing to write through it",
            String::from_utf8_lossy(at)
        ),
    )
}

/// Parses a PAX time (`seconds[.fraction]`).
fn parse_pax_time(value: &[u8]) -> Option<Timespec> {
    let text = std::str::from_utf8(value).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let tv_sec: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let tv_nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some(Timespec { tv_sec, tv_nsec })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_cases() {
        let ok: &[(&[u8], &[&str])] = &[
            (b"etc/passwd", &["etc", "passwd"]),
            (b"/etc/passwd", &["etc", "passwd"]),
            (b"./etc/./passwd", &["etc", "passwd"]),
            (b"etc//x/", &["etc", "x"]),
            (b"./", &[]),
            (b"/", &[]),
            (b"a..b/..c", &["a..b", "..c"]),
        ];
        for (raw, want) in ok {
            let got = clean_path(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            let got: Vec<String> = got
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            assert_eq!(got, *want, "{}", String::from_utf8_lossy(raw));
        }
        let long_comp = vec![b'a'; 256];
        let deep = b"a/".repeat(MAX_PATH_DEPTH + 1);
        let long = vec![b'a'; MAX_ENTRY_NAME_BYTES + 1];
        let bad: &[(&[u8], &str)] = &[
            (b"../x", "'..'"),
            (b"../../x", "'..'"),
            (b"a/../../b", "'..'"),
            (b"/..", "'..'"),
            (b"a\0b", "NUL"),
            (&long_comp, "component"),
            (&deep, "deeper"),
            (&long, "longer"),
        ];
        for (raw, want) in bad {
            let err = clean_path(raw).expect_err("must be refused");
            assert!(err.contains(want), "{err} should mention {want}");
        }
    }

    #[test]
    fn pax_times() {
        let cases: &[(&str, Option<(i64, i64)>)] = &[
            ("1600000000", Some((1_600_000_000, 0))),
            ("1600000000.5", Some((1_600_000_000, 500_000_000))),
            (
                "1600000000.123456789123",
                Some((1_600_000_000, 123_456_789)),
            ),
            ("x", None),
            ("1.2x", None),
        ];
        for (text, want) in cases {
            let got = parse_pax_time(text.as_bytes()).map(|t| (t.tv_sec, t.tv_nsec));
            assert_eq!(got, *want, "{text}");
        }
    }
}
