//! mount(2) and umount(2) for snapshots: overlay stacks and bind mounts.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};

use crate::SnapshotError;

/// mount(2) copies at most one page of option data, NUL included.
const MOUNT_DATA_MAX_BYTES: usize = 4095;

fn mount_err(target: &Path) -> impl FnOnce(Errno) -> SnapshotError + '_ {
    move |e| SnapshotError::Mount {
        target: target.to_owned(),
        source: e.into(),
    }
}

/// Whether this kernel's overlay knows the `index` option (we always turn it off, like Docker:
/// with it on, a lower layer cannot be shared by mounts with different uppers).
pub(crate) fn overlay_has_index() -> bool {
    Path::new("/sys/module/overlay/parameters/index").exists()
}

/// The option list for an overlay of `lowers` (topmost first), with `upper` = (upperdir, workdir)
/// for a writable mount.
pub(crate) fn overlay_options(lowers: &[String], upper: Option<(&str, &str)>) -> Vec<String> {
    let mut options = vec![format!("lowerdir={}", lowers.join(":"))];
    if let Some((upperdir, workdir)) = upper {
        options.push(format!("upperdir={upperdir}"));
        options.push(format!("workdir={workdir}"));
    }
    if overlay_has_index() {
        options.push("index=off".to_owned());
    }
    options
}

/// Characters overlay's option parser treats specially in a path.
fn needs_escape(path: &Path) -> bool {
    path.to_str().is_none_or(|s| s.contains([',', ':', '\\']))
}

fn open_path(path: &Path) -> Result<OwnedFd, SnapshotError> {
    rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SnapshotError::Io {
        op: "open",
        path: path.to_owned(),
        source: e.into(),
    })
}

/// Mounts an overlay of `lowers` (topmost first) at `target`, writable when `upper` is
/// (upperdir, workdir).
///
/// The option string must fit in one page. With ~128 layers of `<root>/<64 hex>/fs` absolute
/// paths it does not, so then every directory is passed as `/proc/self/fd/<n>` of an O_PATH
/// descriptor we hold across the call: ~18 bytes per layer whatever the root's length, no
/// chdir (process-wide in a threaded daemon) and no helper process. The kernel resolves each
/// magic link to the directory itself, so the mount keeps working after the descriptors close.
pub(crate) fn mount_overlay(
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<(), SnapshotError> {
    let text = |p: &Path| p.to_string_lossy().into_owned();
    let plain_lowers: Vec<String> = lowers.iter().map(|p| text(p)).collect();
    let plain_upper = upper.map(|(u, w)| (text(u), text(w)));
    let options = overlay_options(
        &plain_lowers,
        plain_upper.as_ref().map(|(u, w)| (u.as_str(), w.as_str())),
    )
    .join(",");
    let escapes = lowers.iter().any(|p| needs_escape(p))
        || upper.is_some_and(|(u, w)| needs_escape(u) || needs_escape(w));

    let mut held = Vec::new();
    let data = if options.len() <= MOUNT_DATA_MAX_BYTES && !escapes {
        options
    } else {
        let mut by_fd = |p: &Path| -> Result<String, SnapshotError> {
            let fd = open_path(p)?;
            let name = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
            held.push(fd);
            Ok(name)
        };
        let fd_lowers = lowers
            .iter()
            .map(|p| by_fd(p))
            .collect::<Result<Vec<_>, _>>()?;
        let fd_upper = match upper {
            Some((u, w)) => Some((by_fd(u)?, by_fd(w)?)),
            None => None,
        };
        let options = overlay_options(
            &fd_lowers,
            fd_upper.as_ref().map(|(u, w)| (u.as_str(), w.as_str())),
        )
        .join(",");
        if options.len() > MOUNT_DATA_MAX_BYTES {
            return Err(SnapshotError::Mount {
                target: target.to_owned(),
                source: std::io::Error::other(format!(
                    "{} layers do not fit in one overlay mount",
                    lowers.len()
                )),
            });
        }
        options
    };
    let data = std::ffi::CString::new(data).map_err(|_| SnapshotError::Mount {
        target: target.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    let result = rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    );
    drop(held);
    result.map_err(mount_err(target))
}

/// Bind-mounts `source` at `target`, read-only when asked.
pub(crate) fn mount_bind(
    source: &Path,
    target: &Path,
    readonly: bool,
) -> Result<(), SnapshotError> {
    rustix::mount::mount_bind(source, target).map_err(mount_err(target))?;
    if readonly {
        let remount =
            rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "");
        if let Err(e) = remount {
            let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
            return Err(mount_err(target)(e));
        }
    }
    Ok(())
}

/// Unmounts `target`; when it is busy, detaches it (it goes away once the last user leaves).
pub fn unmount(target: &Path) -> Result<(), SnapshotError> {
    match rustix::mount::unmount(target, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::BUSY) => {
            rustix::mount::unmount(target, UnmountFlags::DETACH).map_err(mount_err(target))
        }
        Err(e) => Err(mount_err(target)(e)),
    }
}
