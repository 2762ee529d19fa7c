//! Making a bind source shared so `shared`/`rshared`/`slave`/`rslave` binds propagate even on a
//! host whose `/` is a private mount (where dockerd refuses: "path ... is mounted on / but it
//! is not a shared mount"). The source is bind-mounted onto itself and that mount made shared;
//! the rest of the host's mount table is left as it was.

use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::MountPropagationFlags;

/// One line of `/proc/self/mountinfo`, the parts needed here.
struct MountInfo {
    mount_point: PathBuf,
    shared: bool,
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn mountinfo() -> io::Result<Vec<MountInfo>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let optional = fields.get(6..sep)?;
            Some(MountInfo {
                mount_point: PathBuf::from(unescape(fields.get(4)?)),
                shared: optional.iter().any(|o| o.starts_with("shared:")),
            })
        })
        .collect())
}

/// The innermost mount containing `path` (the last one listed wins, as it is on top).
fn containing(mounts: &[MountInfo], path: &Path) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, m) in mounts.iter().enumerate() {
        if path.starts_with(&m.mount_point) {
            let better = best.is_none_or(|b| {
                m.mount_point.components().count() >= mounts[b].mount_point.components().count()
            });
            if better {
                best = Some(i);
            }
        }
    }
    best
}

/// Makes sure `source` lies in a shared mount, creating a shared self-bind when it does not;
/// returns the path of a self-bind it created (the caller unmounts it when no container
/// needs it any more, see [`release_self_bind`]).
pub(crate) fn ensure_shared(source: &Path) -> io::Result<Option<PathBuf>> {
    let source = std::fs::canonicalize(source)?;
    let mounts = mountinfo()?;
    let Some(i) = containing(&mounts, &source) else {
        return Err(io::Error::other("no mount contains it"));
    };
    if mounts[i].shared {
        return Ok(None);
    }
    let created = mounts[i].mount_point != source;
    if created {
        rustix::mount::mount_bind_recursive(&source, &source)?;
    }
    rustix::mount::mount_change(
        &source,
        MountPropagationFlags::SHARED | MountPropagationFlags::REC,
    )?;
    Ok(created.then_some(source))
}

/// Unmounts a self-bind made by [`ensure_shared`] (detached: a container of another daemon
/// may still hold it through its own mount namespace).
pub(crate) fn release_self_bind(path: &Path) {
    if let Err(e) = rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        tracing::warn!("unmount the shared self-bind {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn innermost_mount_wins() {
        let m = |p: &str, shared| MountInfo {
            mount_point: PathBuf::from(p),
            shared,
        };
        let mounts = vec![m("/", false), m("/tmp", true), m("/tmp/x", false)];
        assert_eq!(containing(&mounts, Path::new("/tmp/y/z")), Some(1));
        assert_eq!(containing(&mounts, Path::new("/tmp/x/z")), Some(2));
        assert_eq!(containing(&mounts, Path::new("/tmpfoo")), Some(0));
    }
}
