//! Creates the container's working directory inside its rootfs when the image lacks it, as
//! Docker does at start (0755, owned by root), without ever leaving the rootfs.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use thiserror::Error;

/// Most path components a working directory may have.
pub const MAX_WORKDIR_COMPONENTS: usize = 256;

/// Why the working directory could not be made.
#[derive(Debug, Error)]
pub enum WorkdirError {
    /// Docker's wording.
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    NotAbsolute(String),
    /// Docker's wording.
    #[error("Cannot mkdir: {0} is not a directory")]
    NotADirectory(String),
    #[error("working directory {0} has too many components")]
    TooDeep(String),
    #[error("create working directory {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Symlinks followed while resolving one working directory (the kernel's own limit).
const MAX_SYMLINKS: usize = 40;

fn open_dir_in_root(root: &OwnedFd, path: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::openat2(
        root,
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

fn components(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
}

/// Makes every missing directory of `cwd` (absolute, inside the container) under `rootfs`, like
/// Docker's `MkdirAll` on the path resolved in the rootfs's scope: symlinks on the way (even
/// dangling ones) are followed inside the rootfs, `..` stops at its root, and an existing
/// non-directory is refused.
pub fn ensure_working_dir(rootfs: &Path, cwd: &str) -> Result<(), WorkdirError> {
    if cwd.is_empty() {
        return Ok(());
    }
    if !cwd.starts_with('/') {
        return Err(WorkdirError::NotAbsolute(cwd.to_owned()));
    }
    let io = |source: Errno| WorkdirError::Io {
        path: cwd.to_owned(),
        source: source.into(),
    };
    let root: OwnedFd = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io)?;
    let mut pending: VecDeque<String> = components(cwd).collect();
    if pending.len() > MAX_WORKDIR_COMPONENTS {
        return Err(WorkdirError::TooDeep(cwd.to_owned()));
    }
    // `resolved` never holds a symlink: each one met is replaced by its target.
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        if resolved.len() + pending.len() > MAX_WORKDIR_COMPONENTS {
            return Err(WorkdirError::TooDeep(cwd.to_owned()));
        }
        let parent_path = format!("/{}", resolved.join("/"));
        // The kernel re-checks containment: a swapped-in symlink cannot lead out.
        let parent = open_dir_in_root(&root, &parent_path).map_err(|e| match e {
            Errno::NOTDIR => WorkdirError::NotADirectory(cwd.to_owned()),
            e => io(e),
        })?;
        match rustix::fs::statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => resolved.push(name),
                FileType::Symlink => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(io(Errno::LOOP));
                    }
                    let target =
                        rustix::fs::readlinkat(&parent, name.as_str(), Vec::new()).map_err(io)?;
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    for (i, c) in components(&target).enumerate() {
                        pending.insert(i, c);
                    }
                }
                _ => return Err(WorkdirError::NotADirectory(cwd.to_owned())),
            },
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&parent, name.as_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(io(e)),
                }
                resolved.push(name);
            }
            Err(e) => return Err(io(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_missing_directories() {
        let dir = tempfile::tempdir().unwrap();
        ensure_working_dir(dir.path(), "/srv/app/data").unwrap();
        let made = dir.path().join("srv/app/data");
        assert!(made.is_dir());
        let mode = std::fs::metadata(&made).unwrap().permissions().mode() & 0o777;
        // The process umask may clear bits, never add them.
        assert_eq!(mode & !0o755, 0);
        // Idempotent, and the empty cwd means "/".
        ensure_working_dir(dir.path(), "/srv/app/data").unwrap();
        ensure_working_dir(dir.path(), "").unwrap();
        ensure_working_dir(dir.path(), "/").unwrap();
    }

    #[test]
    fn symlinks_resolve_inside_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        // /work -> <outside> (absolute host path): inside the rootfs it means <rootfs>/<outside>.
        std::os::unix::fs::symlink(outside.path(), dir.path().join("work")).unwrap();
        ensure_working_dir(dir.path(), "/work/sub").unwrap();
        assert!(!outside.path().join("sub").exists(), "escaped to the host");
        let inner = dir
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("sub");
        assert!(inner.is_dir(), "{}", inner.display());

        // A `..` climb is clamped at the rootfs.
        std::os::unix::fs::symlink("../../../../../../..", dir.path().join("up")).unwrap();
        ensure_working_dir(dir.path(), "/up/escaped").unwrap();
        assert!(dir.path().join("escaped").is_dir());

        // A relative link to a missing directory: the target chain is made.
        std::os::unix::fs::symlink("opt/app", dir.path().join("app")).unwrap();
        ensure_working_dir(dir.path(), "/app/bin").unwrap();
        assert!(dir.path().join("opt/app/bin").is_dir());

        // A loop is an error, not a hang.
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        assert!(ensure_working_dir(dir.path(), "/loop/x").is_err());
    }

    #[test]
    fn errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        let cases = [
            (
                "rel/dir",
                "the working directory 'rel/dir' is invalid, it needs to be an absolute path",
            ),
            ("/file", "Cannot mkdir: /file is not a directory"),
            ("/file/sub", "Cannot mkdir: /file/sub is not a directory"),
        ];
        for (cwd, want) in cases {
            assert_eq!(
                ensure_working_dir(dir.path(), cwd).unwrap_err().to_string(),
                want
            );
        }
        let deep = "/d".repeat(MAX_WORKDIR_COMPONENTS + 1);
        assert!(matches!(
            ensure_working_dir(dir.path(), &deep),
            Err(WorkdirError::TooDeep(_))
        ));
    }
}
