//! Descriptor-relative filesystem helpers: no-follow walks, xattrs, recursive removal, tree copy, du.
//!
//! Everything here works from an open directory descriptor plus one leaf name, so a path is never
//! resolved through a symlink that a layer planted.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{
    AtFlags, Dir, FileType, Gid, Mode, OFlags, Stat, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;

use crate::SnapshotError;

/// Maps an io error on `path` to [`SnapshotError::Io`].
pub(crate) fn io_err(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.to_owned();
    move |source| SnapshotError::Io { op, path, source }
}

/// Deepest directory nesting we walk when removing, copying or measuring a tree.
pub(crate) const MAX_TREE_DEPTH: usize = 1024;
/// Largest xattr value Linux allows (XATTR_SIZE_MAX).
pub(crate) const MAX_XATTR_VALUE_BYTES: usize = 65536;
/// Largest xattr name list we read for one inode (XATTR_LIST_MAX).
const MAX_XATTR_LIST_BYTES: usize = 65536;

/// Flags for opening a directory we will read or use as an `*at` base, never through a symlink.
pub(crate) fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens `path` (absolute, trusted: our own root) as a directory.
pub(crate) fn open_dir_path(path: &std::path::Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, dir_flags(), Mode::empty())?)
}

/// Opens directory `name` under `dir` without following a symlink at `name`.
pub(crate) fn open_dir_at(dir: impl AsFd, name: &OsStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(dir, name, dir_flags(), Mode::empty())
}

/// lstat of `name` relative to `dir`.
pub(crate) fn lstat_at(dir: impl AsFd, name: &OsStr) -> Result<Stat, Errno> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
}

/// The file type bits of a stat.
pub(crate) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// Permission bits including setuid, setgid and sticky.
pub(crate) fn perm_bits(st: &Stat) -> u32 {
    st.st_mode & 0o7777
}

/// Access and modification times of a stat, with nanoseconds.
pub(crate) fn stat_times(st: &Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// The names in directory `dir`, without `.` and `..`, sorted bytewise.
pub(crate) fn read_names(dir: impl AsFd) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

/// Converts bytes to an `OsStr` for rustix path arguments.
pub(crate) fn os(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

/// Where an xattr operation applies: an open regular file or directory, or a leaf that must not be
/// opened (symlink, device, fifo), reached through its parent's descriptor via /proc.
pub(crate) enum XattrTarget<'a> {
    Fd(BorrowedFd<'a>),
    Leaf(CString),
}

impl<'a> XattrTarget<'a> {
    /// A leaf under `dir`, addressed as `/proc/self/fd/<dir>/<name>`: the magic link pins the
    /// directory, the leaf itself is never followed (we use the `l*xattr` calls).
    pub(crate) fn leaf(dir: BorrowedFd<'a>, name: &[u8]) -> io::Result<Self> {
        let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
        path.extend_from_slice(name);
        let path = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(Self::Leaf(path))
    }

    /// Names of every xattr on the target.
    pub(crate) fn list(&self) -> io::Result<Vec<Vec<u8>>> {
        for _ in 0..4 {
            let size = match self {
                Self::Fd(fd) => rustix::fs::flistxattr_query(fd),
                Self::Leaf(p) => rustix::fs::llistxattr_query(p.as_c_str()),
            };
            let size = match size {
                Ok(0) => return Ok(Vec::new()),
                Ok(n) => n.min(MAX_XATTR_LIST_BYTES),
                Err(Errno::NOTSUP) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut buf = vec![0u8; size];
            let got = match self {
                Self::Fd(fd) => rustix::fs::flistxattr(fd, &mut buf),
                Self::Leaf(p) => rustix::fs::llistxattr(p.as_c_str(), &mut buf),
            };
            match got {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf
                        .split(|b| *b == 0)
                        .filter(|n| !n.is_empty())
                        .map(<[u8]>::to_vec)
                        .collect());
                }
                // The list grew between the two calls: ask again.
                Err(Errno::RANGE) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Errno::RANGE.into())
    }

    /// The value of xattr `name`, None when absent.
    pub(crate) fn get(&self, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let name = os(name);
        let mut buf = vec![0u8; MAX_XATTR_VALUE_BYTES];
        let got = match self {
            Self::Fd(fd) => rustix::fs::fgetxattr(fd, name, &mut buf),
            Self::Leaf(p) => rustix::fs::lgetxattr(p.as_c_str(), name, &mut buf),
        };
        match got {
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(Errno::NODATA) | Err(Errno::NOTSUP) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets xattr `name` to `value`.
    pub(crate) fn set(&self, name: &[u8], value: &[u8]) -> Result<(), Errno> {
        let name = os(name);
        match self {
            Self::Fd(fd) => rustix::fs::fsetxattr(fd, name, value, XattrFlags::empty()),
            Self::Leaf(p) => rustix::fs::lsetxattr(p.as_c_str(), name, value, XattrFlags::empty()),
        }
    }

    /// Every (name, value) pair on the target.
    pub(crate) fn all(&self) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for name in self.list()? {
            if let Some(value) = self.get(&name)? {
                out.push((name, value));
            }
        }
        Ok(out)
    }
}

/// Removes `name` under `dir` and everything beneath it, never following symlinks and never
/// descending into another filesystem (a mount point below is an error, not something to empty).
/// A missing `name` is not an error.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    remove_all_inner(dir, name, 0)
}

fn remove_all_inner(dir: BorrowedFd<'_>, name: &[u8], depth: usize) -> io::Result<()> {
    let st = match lstat_at(dir, os(name)) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if file_type(&st) != FileType::Directory {
        return match rustix::fs::unlinkat(dir, os(name), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    if depth > MAX_TREE_DEPTH {
        return Err(io::Error::other("directory tree too deep to remove"));
    }
    let parent_dev = rustix::fs::fstat(dir)?.st_dev;
    if st.st_dev != parent_dev {
        return Err(io::Error::other(format!(
            "refusing to remove across a mount point at {}",
            String::from_utf8_lossy(name)
        )));
    }
    let child = open_dir_at(dir, os(name))?;
    for sub in read_names(&child)? {
        remove_all_inner(child.as_fd(), &sub, depth + 1)?;
    }
    drop(child);
    match rustix::fs::unlinkat(dir, os(name), AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes the directory at absolute `path` (our own, trusted) and everything in it.
pub(crate) fn remove_tree(path: &std::path::Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let parent = open_dir_path(parent)?;
    remove_all_at(parent.as_fd(), name.as_bytes())
}

/// Copies owner, permission bits, xattrs and times from `st`/`src` onto `dst`'s leaf `name`.
/// Owner goes first because chown clears setuid bits and `security.capability`.
pub(crate) fn copy_meta(
    st: &Stat,
    src: &XattrTarget<'_>,
    dst_dir: BorrowedFd<'_>,
    name: &[u8],
    dst: &XattrTarget<'_>,
) -> io::Result<()> {
    let ft = file_type(st);
    rustix::fs::chownat(
        dst_dir,
        os(name),
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if ft != FileType::Symlink {
        rustix::fs::chmodat(
            dst_dir,
            os(name),
            Mode::from_raw_mode(perm_bits(st)),
            AtFlags::empty(),
        )?;
    }
    for (key, value) in src.all()? {
        match dst.set(&key, &value) {
            Ok(()) => {}
            // Not every filesystem takes every namespace; Docker skips these too.
            Err(Errno::NOTSUP) | Err(Errno::PERM) => {
                tracing::debug!("skipping xattr {}", String::from_utf8_lossy(&key));
            }
            Err(e) => return Err(e.into()),
        }
    }
    rustix::fs::utimensat(
        dst_dir,
        os(name),
        &stat_times(st),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Copies the whole tree under `src` into the existing empty directory `dst`, preserving owners,
/// modes, xattrs, times, hardlinks (within the tree), symlinks, device nodes and fifos, and the
/// root directory's own metadata.
pub(crate) fn copy_tree(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_dir_contents(src, dst, dst, &mut Vec::new(), &mut links, 0)?;
    let st = rustix::fs::fstat(src)?;
    // The root has no leaf name of its own: set its metadata through the descriptor.
    rustix::fs::fchown(
        dst,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    rustix::fs::fchmod(dst, Mode::from_raw_mode(perm_bits(&st)))?;
    for (key, value) in XattrTarget::Fd(src).all()? {
        match XattrTarget::Fd(dst).set(&key, &value) {
            Ok(()) | Err(Errno::NOTSUP) | Err(Errno::PERM) => {}
            Err(e) => return Err(e.into()),
        }
    }
    rustix::fs::futimens(dst, &stat_times(&st))?;
    Ok(())
}

fn copy_dir_contents(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    dst_root: BorrowedFd<'_>,
    rel: &mut Vec<u8>,
    links: &mut HashMap<(u64, u64), Vec<u8>>,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_TREE_DEPTH {
        return Err(io::Error::other("directory tree too deep to copy"));
    }
    for name in read_names(src)? {
        let st = lstat_at(src, os(&name))?;
        let rel_len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(&name);
        let ft = file_type(&st);
        let key = (st.st_dev, st.st_ino);
        match ft {
            FileType::Directory => {
                rustix::fs::mkdirat(dst, os(&name), Mode::from_raw_mode(0o700))?;
                let s = open_dir_at(src, os(&name))?;
                let d = open_dir_at(dst, os(&name))?;
                copy_dir_contents(s.as_fd(), d.as_fd(), dst_root, rel, links, depth + 1)?;
                let sx = XattrTarget::Fd(s.as_fd());
                let dx = XattrTarget::Fd(d.as_fd());
                copy_meta(&st, &sx, dst, &name, &dx)?;
            }
            _ if ft != FileType::Directory && st.st_nlink > 1 && links.contains_key(&key) => {
                let first = links.get(&key).cloned().unwrap_or_default();
                rustix::fs::linkat(dst_root, os(&first), dst, os(&name), AtFlags::empty())?;
            }
            FileType::RegularFile => {
                let s = rustix::fs::openat(
                    src,
                    os(&name),
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let d = rustix::fs::openat(
                    dst,
                    os(&name),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let mut sf = std::fs::File::from(s);
                let mut df = std::fs::File::from(d);
                // std uses copy_file_range here, so this is a kernel-side copy (or reflink).
                io::copy(&mut sf, &mut df)?;
                let sx = XattrTarget::Fd(sf.as_fd());
                let dx = XattrTarget::Fd(df.as_fd());
                copy_meta(&st, &sx, dst, &name, &dx)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, os(&name), Vec::new())?;
                rustix::fs::symlinkat(target.as_c_str(), dst, os(&name))?;
                let sx = XattrTarget::leaf(src, &name)?;
                let dx = XattrTarget::leaf(dst, &name)?;
                copy_meta(&st, &sx, dst, &name, &dx)?;
            }
            other => {
                rustix::fs::mknodat(
                    dst,
                    os(&name),
                    other,
                    Mode::from_raw_mode(perm_bits(&st)),
                    st.st_rdev,
                )?;
                let sx = XattrTarget::leaf(src, &name)?;
                let dx = XattrTarget::leaf(dst, &name)?;
                copy_meta(&st, &sx, dst, &name, &dx)?;
            }
        }
        if ft != FileType::Directory && st.st_nlink > 1 && !links.contains_key(&key) {
            links.insert(key, rel.clone());
        }
        rel.truncate(rel_len);
    }
    Ok(())
}

/// Disk bytes used under directory `dir` (st_blocks based, each hardlinked inode once, the
/// directory itself included, other filesystems mounted below not counted).
pub(crate) fn disk_usage(dir: BorrowedFd<'_>) -> io::Result<u64> {
    let st = rustix::fs::fstat(dir)?;
    let mut seen = HashSet::new();
    let mut total = (st.st_blocks as u64).saturating_mul(512);
    du_inner(dir, st.st_dev, &mut seen, &mut total, 0)?;
    Ok(total)
}

fn du_inner(
    dir: BorrowedFd<'_>,
    dev: u64,
    seen: &mut HashSet<(u64, u64)>,
    total: &mut u64,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_TREE_DEPTH {
        return Err(io::Error::other("directory tree too deep to measure"));
    }
    for name in read_names(dir)? {
        let st = match lstat_at(dir, os(&name)) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        if st.st_dev != dev {
            continue;
        }
        if st.st_nlink > 1 && !seen.insert((st.st_dev, st.st_ino)) {
            continue;
        }
        *total = total.saturating_add((st.st_blocks as u64).saturating_mul(512));
        if file_type(&st) == FileType::Directory {
            let child = open_dir_at(dir, os(&name))?;
            du_inner(child.as_fd(), dev, seen, total, depth + 1)?;
        }
    }
    Ok(())
}

/// A readable name for the filesystem holding `path`, for log lines.
pub(crate) fn fs_name(path: &std::path::Path) -> String {
    let Ok(st) = rustix::fs::statfs(path) else {
        return "an unknown filesystem".to_owned();
    };
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as u64;
    let name = match magic {
        0xEF53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0xFF53_4D42 => "cifs",
        0x0102_1997 => "9p",
        _ => return format!("filesystem type {magic:#x}"),
    };
    name.to_owned()
}
