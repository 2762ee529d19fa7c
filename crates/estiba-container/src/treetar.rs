//! Reaching paths inside a container's rootfs and writing them as tar, without ever following
//! a symlink out of it: paths are opened with `openat2(RESOLVE_IN_ROOT)` (the kernel resolves
//! `..` and symlinks as if the rootfs were `/`), trees are walked by descriptor with
//! `O_NOFOLLOW`. A running container can swap a directory for a symlink at any moment; neither
//! a path string nor a `stat`-then-open pair would be safe against that.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

/// Deepest directory tree written.
const MAX_TREE_DEPTH: usize = 512;

/// Opens the rootfs directory itself.
pub(crate) fn open_root(root: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens container path `path` inside `root` as an `O_PATH` descriptor; the last component is
/// followed only with `follow_last`. `Ok(None)` when it does not exist.
pub(crate) fn open_in_root(
    root: BorrowedFd<'_>,
    path: &str,
    follow_last: bool,
) -> io::Result<Option<OwnedFd>> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let mut flags = OFlags::PATH | OFlags::CLOEXEC;
    if !follow_last {
        flags |= OFlags::NOFOLLOW;
    }
    match rustix::fs::openat2(
        root,
        rel,
        flags,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The path through which an opened descriptor's directory can be handed to path-based code
/// (the magic link resolves to exactly the directory that was opened).
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> std::path::PathBuf {
    use std::os::fd::AsRawFd;
    std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Writes the object `fd` (an `O_PATH` descriptor) as entry `name`, and everything below it
/// when it is a directory.
pub(crate) fn append_fd<W: Write>(
    builder: &mut tar::Builder<W>,
    fd: BorrowedFd<'_>,
    name: &str,
) -> io::Result<()> {
    let st = rustix::fs::fstat(fd)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            let dir = reopen(fd, OFlags::RDONLY | OFlags::DIRECTORY)?;
            append_dir(builder, dir.as_fd(), name, &st, 0)
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(fd, "", Vec::new())?;
            let mut h = header(&st, tar::EntryType::Symlink);
            builder.append_link(&mut h, name, Path::new(&os(target.as_bytes())))
        }
        FileType::RegularFile => {
            let file = reopen(fd, OFlags::RDONLY)?;
            let mut h = header(&st, tar::EntryType::Regular);
            builder.append_data(&mut h, name, std::fs::File::from(file))
        }
        _ => append_special(builder, &st, name),
    }
}

/// Writes every entry below directory `dir` as `<prefix>/<name>` (no entry for `dir` itself).
pub(crate) fn append_children<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    prefix: &str,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_TREE_DEPTH {
        return Err(io::Error::other("directory tree too deep"));
    }
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    for n in names {
        let child = os(&n);
        let name = if prefix.is_empty() {
            child.to_string_lossy().into_owned()
        } else {
            format!("{prefix}/{}", child.to_string_lossy())
        };
        let st = match rustix::fs::statat(dir, &child, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Gone since the listing (a running container): nothing to write.
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let sub = match rustix::fs::openat(
                    dir,
                    &child,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(rustix::io::Errno::NOENT) => continue,
                    Err(e) => return Err(e.into()),
                };
                append_dir(builder, sub.as_fd(), &name, &st, depth + 1)?;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, &child, Vec::new())?;
                let mut h = header(&st, tar::EntryType::Symlink);
                builder.append_link(&mut h, &name, Path::new(&os(target.as_bytes())))?;
            }
            FileType::RegularFile => {
                let file = match rustix::fs::openat(
                    dir,
                    &child,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(rustix::io::Errno::NOENT) => continue,
                    Err(e) => return Err(e.into()),
                };
                // Size from the open file: it may have changed since the listing.
                let st = rustix::fs::fstat(&file)?;
                let mut h = header(&st, tar::EntryType::Regular);
                let file = std::fs::File::from(file);
                builder.append_data(&mut h, &name, io::Read::take(file, st.st_size as u64))?;
            }
            FileType::Socket => {}
            _ => append_special(builder, &st, &name)?,
        }
    }
    Ok(())
}

fn append_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    name: &str,
    st: &rustix::fs::Stat,
    depth: usize,
) -> io::Result<()> {
    let mut h = header(st, tar::EntryType::Directory);
    h.set_size(0);
    builder.append_data(&mut h, format!("{name}/"), io::empty())?;
    append_children(builder, dir, name, depth)
}

fn append_special<W: Write>(
    builder: &mut tar::Builder<W>,
    st: &rustix::fs::Stat,
    name: &str,
) -> io::Result<()> {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::CharacterDevice => tar::EntryType::Char,
        FileType::BlockDevice => tar::EntryType::Block,
        FileType::Fifo => tar::EntryType::Fifo,
        _ => return Ok(()),
    };
    let mut h = header(st, kind);
    h.set_size(0);
    if kind != tar::EntryType::Fifo {
        h.set_device_major(rustix::fs::major(st.st_rdev))?;
        h.set_device_minor(rustix::fs::minor(st.st_rdev))?;
    }
    builder.append_data(&mut h, name, io::empty())
}

/// A GNU header with the entry's owner, mode, time and size.
fn header(st: &rustix::fs::Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(if kind == tar::EntryType::Regular {
        u64::try_from(st.st_size).unwrap_or(0)
    } else {
        0
    });
    h
}

/// Reopens an `O_PATH` descriptor for reading, refusing to follow a symlink.
fn reopen(fd: BorrowedFd<'_>, flags: OFlags) -> io::Result<OwnedFd> {
    Ok(
        rustix::fs::openat(fd, ".", flags | OFlags::CLOEXEC, Mode::empty()).or_else(|e| {
            if e == rustix::io::Errno::NOTDIR {
                // Not a directory: reopen the file itself through its magic link.
                rustix::fs::open(fd_path(fd), flags | OFlags::CLOEXEC, Mode::empty())
            } else {
                Err(e)
            }
        })?,
    )
}

fn os(bytes: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes).to_os_string()
}
