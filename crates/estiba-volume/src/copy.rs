//! Copy-up of image content into an empty volume, and the small tree walks around it.
//!
//! Nothing here follows a symlink: the source path is resolved inside the container's rootfs
//! as the container would see it ([`resolve_in_root`]), then every entry is read with lstat and
//! symlinks are recreated as symlinks, so image content can never make the daemon read or
//! write outside the rootfs and the volume.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};

/// Symlinks followed while resolving one path (Linux's MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;
/// Deepest directory nesting copied or measured.
const MAX_DEPTH: usize = 256;

/// `path` (absolute, as seen inside the container) resolved under `root` with every symlink
/// interpreted relative to `root`, `..` never leaving it (moby's `FollowSymlinkInScope`).
pub fn resolve_in_root(root: &Path, path: &str) -> io::Result<PathBuf> {
    let mut pending: Vec<String> = components(path);
    pending.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut followed = 0;
    while let Some(c) = pending.pop() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = join(root, &resolved).join(&c);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(io::Error::other("too many levels of symbolic links"));
                }
                let target = fs::read_link(&candidate)?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            _ => resolved.push(c),
        }
    }
    Ok(join(root, &resolved))
}

/// The parts of `path` as a walk in scope takes them: normal names and `..`; `/`, `.` and
/// empty parts dropped. Shared with the builder's context, which resolves the same way.
pub fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

/// Whether `dir` has no entries.
pub(crate) fn is_empty_dir(dir: &Path) -> io::Result<bool> {
    Ok(fs::read_dir(dir)?.next().is_none())
}

/// Copies the content of `source` into `dest` if `dest` is empty and `source` a directory;
/// `dest` takes `source`'s owner and mode (moby's `copyOwnership`). Returns whether it copied.
///
/// The destination is written through descriptors only (`mkdirat`, `openat` with `O_NOFOLLOW`
/// and `O_EXCL`, `f*` calls for attributes): another container that shares the volume and
/// swaps a directory for a symlink mid-copy cannot redirect a write out of the volume.
pub fn copy_up(source: &Path, dest: &Path) -> io::Result<bool> {
    let Ok(meta) = fs::symlink_metadata(source) else {
        return Ok(false);
    };
    if !meta.is_dir() || !is_empty_dir(dest)? || is_empty_dir(source)? {
        return Ok(false);
    }
    let root = rustix::fs::open(dest, dir_flags(), Mode::empty())?;
    copy_dir_content(source, root.as_fd(), 0)?;
    set_attributes(source, root.as_fd(), &meta)?;
    Ok(true)
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn copy_dir_content(source: &Path, dest: BorrowedFd<'_>, depth: usize) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other("directory tree too deep"));
    }
    for entry in fs::read_dir(source)? {
        let entry = entry?;
        let name = entry.file_name();
        let from = entry.path();
        let meta = fs::symlink_metadata(&from)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            rustix::fs::mkdirat(dest, &name, Mode::from_raw_mode(0o700))?;
            let child = rustix::fs::openat(dest, &name, dir_flags(), Mode::empty())?;
            copy_dir_content(&from, child.as_fd(), depth + 1)?;
            set_attributes(&from, child.as_fd(), &meta)?;
        } else if ft.is_file() {
            let out = rustix::fs::openat(
                dest,
                &name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let src = rustix::fs::open(
                &from,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let mut out = File::from(out);
            io::copy(&mut File::from(src), &mut out)?;
            set_attributes(&from, out.as_fd(), &meta)?;
        } else if ft.is_symlink() {
            rustix::fs::symlinkat(fs::read_link(&from)?, dest, &name)?;
            link_attributes(dest, &name, &meta)?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() || ft.is_socket() {
            let kind = FileType::from_raw_mode(meta.mode());
            let mode = Mode::from_raw_mode(meta.mode() & 0o7777);
            rustix::fs::mknodat(dest, &name, kind, mode, meta.rdev())?;
            link_attributes(dest, &name, &meta)?;
        }
    }
    Ok(())
}

fn times(meta: &fs::Metadata) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    }
}

/// Owner, mode, xattrs and times of `from` onto the open `to`.
fn set_attributes(from: &Path, to: BorrowedFd<'_>, meta: &fs::Metadata) -> io::Result<()> {
    use rustix::fs::{Gid, Uid};
    rustix::fs::fchown(
        to,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
    )?;
    // After chown, which clears set-user-ID bits.
    rustix::fs::fchmod(to, Mode::from_raw_mode(meta.mode() & 0o7777))?;
    if let Ok(names) = xattr::list(from) {
        for name in names {
            if let Ok(Some(value)) = xattr::get(from, &name) {
                // A filesystem that refuses one (a security.* name) does not stop the copy.
                if let Err(e) = rustix::fs::fsetxattr(to, &*name, &value, XattrFlags::empty()) {
                    tracing::debug!("copy xattr {name:?}: {e}");
                }
            }
        }
    }
    rustix::fs::futimens(to, &times(meta))?;
    Ok(())
}

/// Owner and times of a symlink or device node created in `dir` (never followed).
fn link_attributes(dir: BorrowedFd<'_>, name: &OsStr, meta: &fs::Metadata) -> io::Result<()> {
    use rustix::fs::{Gid, Uid};
    rustix::fs::chownat(
        dir,
        name,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    rustix::fs::utimensat(dir, name, &times(meta), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Apparent bytes of the regular files under `dir`; 0 if unreadable.
pub fn disk_usage(dir: &Path) -> u64 {
    fn walk(dir: &Path, depth: usize) -> u64 {
        if depth > MAX_DEPTH {
            return 0;
        }
        let Ok(rd) = fs::read_dir(dir) else { return 0 };
        rd.filter_map(Result::ok)
            .map(|e| match e.path().symlink_metadata() {
                Ok(m) if m.is_dir() => walk(&e.path(), depth + 1),
                Ok(m) if m.is_file() => m.size(),
                _ => 0,
            })
            .sum()
    }
    walk(dir, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn resolution_stays_in_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("/real", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", r.join("escape")).unwrap();
        assert_eq!(resolve_in_root(r, "/abs/sub").unwrap(), r.join("real/sub"));
        assert_eq!(
            resolve_in_root(r, "/escape/passwd").unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(r, "/../../x").unwrap(), r.join("x"));
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, "/loop/x").is_err());
    }

    #[test]
    fn copy_up_keeps_modes_links_and_only_fills_empty() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let s = src.path();
        fs::create_dir(s.join("d")).unwrap();
        fs::write(s.join("d/f"), b"hello").unwrap();
        fs::set_permissions(s.join("d/f"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::set_permissions(s.join("d"), fs::Permissions::from_mode(0o711)).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", s.join("link")).unwrap();
        assert!(copy_up(s, dst.path()).unwrap());
        let d = dst.path();
        assert_eq!(fs::read(d.join("d/f")).unwrap(), b"hello");
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&d.join("d/f")), 0o640);
        assert_eq!(mode(&d.join("d")), 0o711);
        assert_eq!(
            fs::read_link(d.join("link")).unwrap(),
            Path::new("/etc/shadow")
        );
        // Not empty any more: a second copy-up does nothing.
        fs::write(s.join("new"), b"x").unwrap();
        assert!(!copy_up(s, d).unwrap());
        assert!(!d.join("new").exists());
        assert_eq!(disk_usage(d), 5);
    }
}
