//! A stopped container's volumes and binds, bound into its rootfs view for the length of one
//! `docker cp`, as moby mounts them for archive calls: a copy into a volume's path then lands in
//! the volume, as it does while the container runs.
//!
//! Each destination is resolved inside the view with `RESOLVE_IN_ROOT` and the source bound onto
//! the resolved descriptor (`/proc/self/fd/N`), so a symlink in the rootfs never points a mount
//! outside it. Destinations that do not exist in the rootfs are skipped (nothing is created in
//! the container's layer by a copy). Unbound in reverse order, detached, when the guard drops.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::mount::{mount_bind_recursive, mount_remount, unmount, MountFlags, UnmountFlags};

use crate::error::{internal, ContainerError};
use crate::mountspec::{MountKind, MountPoint};
use crate::treetar::{fd_path, open_in_root, open_root};

/// The binds made in one view; undone on drop.
pub(crate) struct ViewBinds {
    root: PathBuf,
    destinations: Vec<String>,
}

impl Drop for ViewBinds {
    fn drop(&mut self) {
        let Ok(root) = open_root(&self.root) else {
            return;
        };
        for dest in self.destinations.iter().rev() {
            if let Ok(Some(fd)) = open_in_root(root.as_fd(), dest, true) {
                if let Err(e) = unmount(fd_path(fd.as_fd()), UnmountFlags::DETACH) {
                    tracing::warn!("unbind {dest} from {}: {e}", self.root.display());
                }
            }
        }
    }
}

/// Binds every volume and bind mount point of `points` into the view at `root`; `source` gives
/// the host directory of a volume by name.
pub(crate) fn bind_into_view(
    root: &Path,
    points: &[MountPoint],
    source: impl Fn(&str) -> Result<PathBuf, ContainerError>,
) -> Result<ViewBinds, ContainerError> {
    let mut sorted: Vec<&MountPoint> = points
        .iter()
        .filter(|m| m.kind != MountKind::Tmpfs)
        .collect();
    // Parents first, so a mount inside another volume lands on top of it.
    sorted.sort_by_key(|m| m.destination.split('/').filter(|c| !c.is_empty()).count());
    let mut binds = ViewBinds {
        root: root.to_path_buf(),
        destinations: Vec::new(),
    };
    let root_fd = open_root(root).map_err(internal)?;
    for mp in sorted {
        let src = match mp.kind {
            MountKind::Volume => source(&mp.name)?,
            _ => PathBuf::from(&mp.source),
        };
        if !src.exists() {
            continue;
        }
        let Some(dest) = open_in_root(root_fd.as_fd(), &mp.destination, true).map_err(internal)?
        else {
            continue;
        };
        let target = fd_path(dest.as_fd());
        mount_bind_recursive(&src, &target)
            .map_err(|e| internal(format!("bind {} for cp: {e}", mp.destination)))?;
        binds.destinations.push(mp.destination.clone());
        if !mp.rw {
            // Re-resolved: the descriptor still names the directory under the new mount.
            let top = open_in_root(root_fd.as_fd(), &mp.destination, true)
                .map_err(internal)?
                .ok_or_else(|| internal(format!("{} vanished", mp.destination)))?;
            mount_remount(
                fd_path(top.as_fd()),
                MountFlags::BIND | MountFlags::RDONLY,
                "",
            )
            .map_err(|e| internal(format!("read-only {} for cp: {e}", mp.destination)))?;
        }
    }
    Ok(binds)
}
