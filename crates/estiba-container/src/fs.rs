//! The container's filesystem from outside: `docker cp` (stat, archive out, extract in),
//! `docker diff` and `docker export`.
//!
//! A running container's rootfs is mounted at `<container-dir>/rootfs`; a stopped one is
//! mounted at `<container-dir>/fsview` for the length of the call. Either way the container's
//! op lock is held, so start, exit handling and removal never interleave with the mount.
//! Paths from the user are resolved inside the rootfs the way the kernel would with the rootfs
//! as `/` (Docker's FollowSymlinkInScope): `..` and absolute symlinks never leave it. Writes go
//! through estiba-snapshot's contained unpacker, which never follows a symlink.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use estiba_snapshot::apply::{apply_tar_in, Whiteouts};
use estiba_snapshot::SnapshotError;

use crate::error::{internal, ContainerError};
use crate::model::ContainerRecord;
use crate::service::ContainerService;
use crate::treetar::{append_children, append_fd, fd_path, open_in_root, open_root};

/// Most entries `docker diff` reports.
pub(crate) const MAX_CHANGES: usize = 1_000_000;

/// What `HEAD /containers/{id}/archive` reports (Docker's `PathStat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size_bytes: i64,
    /// Go's `os.FileMode` bits (type bits high, permissions low).
    pub mode: u32,
    /// RFC 3339 with trimmed nanoseconds, as Go's `RFC3339Nano`.
    pub mtime: String,
    /// For a symlink: its target resolved inside the container, as an absolute path.
    pub link_target: String,
}

/// One line of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// Docker's change kinds (`Kind` 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

impl ContainerService {
    /// Stats `path` inside the container (the last component is not followed).
    pub fn stat_path(&self, name: &str, path: &str) -> Result<PathStat, ContainerError> {
        self.with_view(name, |record, root| {
            let fd = open_in_root(root, path, false)
                .map_err(internal)?
                .ok_or_else(|| not_found(path, &record.name))?;
            stat_fd(root, fd.as_fd(), path).map_err(internal)
        })
    }

    /// Writes a tar of `path` (entries named from its base name) to `out`.
    pub fn archive_path(
        &self,
        name: &str,
        path: &str,
        out: &mut dyn Write,
    ) -> Result<(), ContainerError> {
        self.with_view(name, |record, root| {
            let fd = open_in_root(root, path, trailing_dot(path))
                .map_err(internal)?
                .ok_or_else(|| not_found(path, &record.name))?;
            let mut builder = tar::Builder::new(out);
            append_fd(&mut builder, fd.as_fd(), &base_name(path)).map_err(internal)?;
            builder
                .into_inner()
                .map_err(internal)?
                .flush()
                .map_err(internal)
        })
    }

    /// Unpacks the tar `archive` into the directory `path` inside the container, contained in
    /// its rootfs. Entries keep the tar's owners only with `copy_uid_gid` (`docker cp -a`);
    /// otherwise the container's root owns them, as Docker does.
    pub fn extract_to(
        &self,
        name: &str,
        path: &str,
        copy_uid_gid: bool,
        archive: &mut dyn Read,
    ) -> Result<(), ContainerError> {
        self.with_view(name, |record, root| {
            check_writable(record, path)?;
            let fd = open_in_root(root, path, true)
                .map_err(internal)?
                .ok_or_else(|| not_found(path, &record.name))?;
            let st = rustix::fs::fstat(&fd).map_err(internal)?;
            if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
                return Err(ContainerError::InvalidParameter(
                    "extraction point is not a directory".to_string(),
                ));
            }
            check_resolved_writable(root, fd.as_fd(), st.st_dev)?;
            // Reopened for reading through the descriptor: never through the path again.
            let dir = rustix::fs::openat(
                &fd,
                ".",
                rustix::fs::OFlags::RDONLY
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(internal)?;
            let owner = (!copy_uid_gid).then_some((0, 0));
            let shown = Path::new(path);
            match apply_tar_in(dir, shown, archive, Whiteouts::Delete, owner) {
                Ok(_) => Ok(()),
                Err(e @ (SnapshotError::InvalidLayer(_) | SnapshotError::CorruptTar(_))) => {
                    Err(ContainerError::InvalidParameter(e.to_string()))
                }
                Err(e) => Err(internal(e)),
            }
        })
    }

    /// `docker diff`: the container's changes relative to its image, in path order.
    pub fn changes(&self, name: &str) -> Result<Vec<Change>, ContainerError> {
        let c = self.get(name)?;
        let _op = c.op_lock();
        let record = c.snapshot();
        let image = self.images.inspect(&record.image_id)?;
        let parent = crate::create::top_layer_key(&image.diff_ids)?;
        let view = self.container_dir(&record.id).join("imageview");
        std::fs::create_dir_all(&view)
            .map_err(|e| internal(format!("create {}: {e}", view.display())))?;
        let _ = self.snapshots.unmount(&view);
        if let Some(parent) = &parent {
            self.snapshots.mount(parent, &view).map_err(internal)?;
        }
        let result = self.changes_against(&record, &view);
        if parent.is_some() {
            if let Err(e) = self.snapshots.unmount(&view) {
                tracing::warn!("unmount {}: {e}", view.display());
            }
        }
        let _ = std::fs::remove_dir(&view);
        result
    }

    fn changes_against(
        &self,
        record: &ContainerRecord,
        lower: &Path,
    ) -> Result<Vec<Change>, ContainerError> {
        // The diff is spooled to a temp file: the snapshotter writes, the tar reader reads.
        let mut spool = tempfile_in(&self.container_dir(&record.id))?;
        self.snapshots
            .diff(&record.snapshot_key, &mut spool)
            .map_err(internal)?;
        use std::io::Seek;
        spool.rewind().map_err(internal)?;
        let mut archive = tar::Archive::new(spool);
        let mut entries = Vec::new();
        for entry in archive.entries().map_err(internal)? {
            let entry = entry.map_err(internal)?;
            let raw = entry.path_bytes().into_owned();
            let header = entry.header();
            entries.push(DiffEntry {
                path: String::from_utf8_lossy(&raw).into_owned(),
                is_dir: header.entry_type() == tar::EntryType::Directory,
                mode: header.mode().unwrap_or(0),
            });
            if entries.len() > MAX_CHANGES {
                return Err(internal("too many changes"));
            }
        }
        Ok(classify(&entries, |p| {
            let host = lower.join(p);
            std::fs::symlink_metadata(host)
                .ok()
                .map(|m| (m.is_dir(), m.permissions().mode() & 0o7777))
        }))
    }

    /// `docker export`: a tar of the whole rootfs, streamed to `out`.
    pub fn export(&self, name: &str, out: &mut dyn Write) -> Result<(), ContainerError> {
        self.with_rootfs(name, |_, root| {
            let dir = rustix::fs::open(
                root,
                rustix::fs::OFlags::RDONLY
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(internal)?;
            let mut builder = tar::Builder::new(out);
            append_children(&mut builder, dir.as_fd(), "", 0).map_err(internal)?;
            builder
                .into_inner()
                .map_err(internal)?
                .flush()
                .map_err(internal)
        })
    }

    /// Runs `f` with a descriptor of the container's `/` as its processes see it, under the
    /// container's op lock: for a running container, `/proc/<init>/root`, so that volumes,
    /// binds and tmpfs mounts are crossed as inside the container (`docker cp` into a volume
    /// lands in the volume, not in the rootfs underneath); for a stopped one, its rootfs with
    /// its volumes and binds bound in for the call (`fsbinds`).
    fn with_view<T>(
        &self,
        name: &str,
        f: impl FnOnce(&ContainerRecord, BorrowedFd<'_>) -> Result<T, ContainerError>,
    ) -> Result<T, ContainerError> {
        let c = self.get(name)?;
        let _op = c.op_lock();
        let record = c.snapshot();
        if record.state.status.is_running() {
            if let Some(root) = running_root(&record) {
                return f(&record, root.as_fd());
            }
        }
        drop(_op);
        self.with_rootfs(name, |record, root| {
            // Stopped (or it just exited): its volumes and binds are bound into the view.
            let _binds = if record.state.status.is_running() {
                None
            } else {
                Some(crate::fsbinds::bind_into_view(
                    root,
                    &record.mount_points,
                    |volume| Ok(self.volumes.get(volume)?.mountpoint),
                )?)
            };
            let root = open_root(root).map_err(internal)?;
            f(record, root.as_fd())
        })
    }

    /// Runs `f` with the container's rootfs mounted, under the container's op lock.
    fn with_rootfs<T>(
        &self,
        name: &str,
        f: impl FnOnce(&ContainerRecord, &Path) -> Result<T, ContainerError>,
    ) -> Result<T, ContainerError> {
        let c = self.get(name)?;
        let _op = c.op_lock();
        let record = c.snapshot();
        let dir = self.container_dir(&record.id);
        if record.state.status.is_running() {
            return f(&record, &dir.join("rootfs"));
        }
        let view = dir.join("fsview");
        std::fs::create_dir_all(&view)
            .map_err(|e| internal(format!("create {}: {e}", view.display())))?;
        // A crash may have left it mounted; mounting twice would stack.
        let _ = self.snapshots.unmount(&view);
        self.snapshots
            .mount(&record.snapshot_key, &view)
            .map_err(internal)?;
        let result = f(&record, &view);
        if let Err(e) = self.snapshots.unmount(&view) {
            tracing::warn!("unmount {}: {e}", view.display());
        }
        let _ = std::fs::remove_dir(&view);
        result
    }
}

/// Docker's refusals before a copy into the container: a path in a read-only mount, or outside
/// every mount of a container whose rootfs is read-only (moby's `checkIfPathIsInAVolume`,
/// lexically on the cleaned path).
fn check_writable(record: &ContainerRecord, path: &str) -> Result<(), ContainerError> {
    let clean = crate::mountspec::clean(path);
    let under = |dest: &str| {
        let dest = crate::mountspec::clean(dest);
        dest == "/" || clean == dest || clean.starts_with(&format!("{dest}/"))
    };
    let mut to_volume = false;
    for mp in record.mount_points.iter().filter(|m| under(&m.destination)) {
        if !mp.rw {
            return Err(ContainerError::InvalidParameter(
                "mounted volume is marked read-only".to_string(),
            ));
        }
        to_volume = true;
    }
    if !to_volume && record.host.read_only {
        return Err(ContainerError::InvalidParameter(
            "container rootfs is marked read-only".to_string(),
        ));
    }
    Ok(())
}

/// The same refusals for where `path` really leads: a symlink can take a lexically writable
/// path into a read-only mount (moby checks the path after resolving it in the container). The
/// opened directory's own mount says whether it is read-only; its device tells the rootfs from
/// a volume or bind.
fn check_resolved_writable(
    root: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    dir_dev: u64,
) -> Result<(), ContainerError> {
    let vfs = rustix::fs::fstatvfs(dir).map_err(internal)?;
    if !vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return Ok(());
    }
    let root_dev = rustix::fs::fstat(root).map_err(internal)?.st_dev;
    Err(ContainerError::InvalidParameter(if dir_dev == root_dev {
        "container rootfs is marked read-only".to_string()
    } else {
        "mounted volume is marked read-only".to_string()
    }))
}

/// `/proc/<pid>/root` of a running container's init, checked to still belong to the container
/// (its cgroup names the container's ID) after the descriptor is held, so a reused PID is never
/// mistaken for it. `None` when the process is gone or is not the container's.
fn running_root(record: &ContainerRecord) -> Option<std::os::fd::OwnedFd> {
    use rustix::fs::{openat, Mode, OFlags};
    if record.state.pid == 0 {
        return None;
    }
    let proc = rustix::fs::open(
        format!("/proc/{}", record.state.pid),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let root = openat(
        &proc,
        "root",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let cgroup = openat(
        &proc,
        "cgroup",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut text = String::new();
    std::fs::File::from(cgroup)
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    text.contains(&record.id).then_some(root)
}

/// Mount points the runtime creates in the writable layer (Docker keeps them in an init layer
/// below it, so `docker diff` never shows them).
const RUNTIME_MOUNT_POINTS: &[&str] = &[
    ".dockerenv",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "etc/mtab",
    "dev",
    "dev/pts",
    "dev/shm",
    "dev/console",
    "proc",
    "sys",
];

/// One entry of the container's diff tar.
struct DiffEntry {
    path: String,
    is_dir: bool,
    mode: u32,
}

/// Turns diff entries (sorted, parents first) into Docker's change list: whiteouts are
/// deletions, entries absent below are additions, the rest modifications; a directory that
/// only holds changes but looks the same as below is reported once, as its children's parent.
fn classify(entries: &[DiffEntry], below: impl Fn(&str) -> Option<(bool, u32)>) -> Vec<Change> {
    let mut out = Vec::new();
    let mut changed_dirs = std::collections::HashSet::new();
    for e in entries {
        let rel = e.path.trim_start_matches("./").trim_end_matches('/');
        if rel.is_empty() {
            continue;
        }
        let (dir, file) = match rel.rsplit_once('/') {
            Some((d, f)) => (d, f),
            None => ("", rel),
        };
        if file == ".wh..wh..opq" {
            continue;
        }
        let (path, kind) = if let Some(orig) = file.strip_prefix(".wh.") {
            (join_abs(dir, orig), ChangeKind::Deleted)
        } else {
            let kind = match below(rel) {
                None => ChangeKind::Added,
                Some((is_dir, mode)) => {
                    // A directory's mtime changes with any child: it shows as its changed
                    // children's parent instead (Docker's result for the usual cases, without
                    // the noise of the mount points the runtime creates).
                    if is_dir && e.is_dir && mode == e.mode & 0o7777 {
                        // Only a parent of changes: listed when an added or deleted child needs it.
                        continue;
                    }
                    ChangeKind::Modified
                }
            };
            if kind == ChangeKind::Added && RUNTIME_MOUNT_POINTS.contains(&rel) {
                continue;
            }
            (format!("/{rel}"), kind)
        };
        if e.is_dir && kind != ChangeKind::Deleted {
            changed_dirs.insert(path.clone());
        }
        if kind != ChangeKind::Modified {
            let parent = match path.rsplit_once('/') {
                Some(("", _)) | None => String::new(),
                Some((p, _)) => p.to_string(),
            };
            if !parent.is_empty() && changed_dirs.insert(parent.clone()) {
                out.push(Change {
                    path: parent,
                    kind: ChangeKind::Modified,
                });
            }
        }
        out.push(Change { path, kind });
    }
    out
}

fn join_abs(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        format!("/{name}")
    } else {
        format!("/{dir}/{name}")
    }
}

/// An anonymous temp file in `dir` (gone when closed).
fn tempfile_in(dir: &Path) -> Result<std::fs::File, ContainerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(format!(".diff-{}", rand::random::<u64>()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| internal(format!("create {}: {e}", path.display())))?;
    let _ = std::fs::remove_file(&path);
    Ok(file)
}

fn not_found(path: &str, container: &str) -> ContainerError {
    ContainerError::PathNotFound(format!(
        "Could not find the file {path} in container {container}"
    ))
}

/// Whether the user asked for a directory's contents (`/dir/.` or `/dir/`), so a final
/// symlink is followed.
fn trailing_dot(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.")
}

/// The name Docker gives a path's tar entries: its last component ("/" for the root).
fn base_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/').trim_end_matches("/.");
    match trimmed.rsplit('/').next() {
        Some("" | ".") | None => ".".to_string(),
        Some(b) => b.to_string(),
    }
}

/// Stats the object `fd` for `docker cp`.
fn stat_fd(root: BorrowedFd<'_>, fd: BorrowedFd<'_>, path: &str) -> std::io::Result<PathStat> {
    let st = rustix::fs::fstat(fd)?;
    let link_target =
        if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink {
            // Where the link leads inside the container: the followed object's host path, made
            // relative to the rootfs' host path.
            let root_host = std::fs::read_link(fd_path(root))?;
            match open_in_root(root, path, true)? {
                Some(target) => {
                    let host = std::fs::read_link(fd_path(target.as_fd()))?;
                    let rel = host.strip_prefix(&root_host).unwrap_or(&host);
                    format!("/{}", rel.display())
                }
                None => String::new(),
            }
        } else {
            String::new()
        };
    Ok(PathStat {
        name: base_name(path),
        size_bytes: st.st_size,
        mode: go_file_mode(st.st_mode),
        mtime: go_rfc3339_nano(st.st_mtime, st.st_mtime_nsec as i64),
        link_target,
    })
}

/// Converts `st_mode` to Go's `os.FileMode` bits.
pub(crate) fn go_file_mode(st_mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut mode = st_mode & 0o777;
    mode |= match st_mode & 0o170000 {
        0o040000 => DIR,
        0o120000 => SYMLINK,
        0o010000 => PIPE,
        0o140000 => SOCKET,
        0o020000 => DEVICE | CHAR,
        0o060000 => DEVICE,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        mode |= SETUID;
    }
    if st_mode & 0o2000 != 0 {
        mode |= SETGID;
    }
    if st_mode & 0o1000 != 0 {
        mode |= STICKY;
    }
    mode
}

/// Go's `time.RFC3339Nano` in UTC: fractional seconds with trailing zeros trimmed.
pub(crate) fn go_rfc3339_nano(secs: i64, nanos: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp(secs, nanos.clamp(0, 999_999_999) as u32) else {
        return String::new();
    };
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos <= 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_modes() {
        for (st, go) in [
            (0o040755, 2147484141u32),
            (0o100644, 0o644),
            (0o120777, (1 << 27) | 0o777),
            (0o104755, (1 << 23) | 0o755),
            (0o041777, (1 << 31) | (1 << 20) | 0o777),
            (0o020666, (1 << 26) | (1 << 21) | 0o666),
        ] {
            assert_eq!(go_file_mode(st), go, "{st:o}");
        }
    }

    #[test]
    fn go_times() {
        for (s, n, want) in [
            (0, 0, "1970-01-01T00:00:00Z"),
            (1_795_333_273, 888_230_609, "2026-11-22T07:41:13.888230609Z"),
            (1_795_333_273, 500_000_000, "2026-11-22T07:41:13.5Z"),
        ] {
            assert_eq!(go_rfc3339_nano(s, n), want);
        }
    }

    #[test]
    fn base_names() {
        for (p, want) in [
            ("/etc/passwd", "passwd"),
            ("/tmp/d/", "d"),
            ("/tmp/d/.", "d"),
            ("/", "."),
            ("rel", "rel"),
        ] {
            assert_eq!(base_name(p), want, "{p}");
        }
    }

    #[test]
    fn resolution_stays_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("real/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let root_fd = open_root(root).unwrap();
        let root_host = std::fs::canonicalize(root).unwrap();
        for (path, follow, want) in [
            ("/abs/sub", false, Some("real/sub")),
            ("/abs", false, Some("abs")),
            ("/abs", true, Some("real")),
            ("/real/up/etc", false, Some("etc")),
            ("/../../etc", false, Some("etc")),
            ("/missing/x", false, None),
        ] {
            let got = open_in_root(root_fd.as_fd(), path, follow).unwrap();
            let got = got.map(|fd| std::fs::read_link(fd_path(fd.as_fd())).unwrap());
            assert_eq!(got, want.map(|w| root_host.join(w)), "{path}");
        }
        assert!(open_in_root(root_fd.as_fd(), "/loop/x", false).is_err());
    }

    fn entry(path: &str, is_dir: bool) -> DiffEntry {
        DiffEntry {
            path: path.to_string(),
            is_dir,
            mode: 0o755,
        }
    }

    #[test]
    fn classifies_like_docker() {
        let entries = [
            entry("etc/", true),
            entry("etc/.wh.passwd", false),
            entry("etc/hosts", false),
            entry("new", false),
            entry("tmp/", true),
            entry("tmp/d/", true),
            entry("tmp/d/f", false),
            entry("usr/", true),
            entry("usr/bin/", true),
            entry("usr/bin/env", false),
        ];
        // tmp's mode differs below (1777 vs 755 in the diff); usr/bin/env exists below;
        // etc/hosts is a runtime mount point.
        let below = |p: &str| match p {
            "etc" | "usr" | "usr/bin" | "usr/bin/env" => Some((p != "usr/bin/env", 0o755)),
            "tmp" => Some((true, 0o1777)),
            _ => None,
        };
        let got: Vec<String> = classify(&entries, below)
            .into_iter()
            .map(|c| format!("{:?} {}", c.kind, c.path))
            .collect();
        assert_eq!(
            got,
            [
                "Modified /etc",
                "Deleted /etc/passwd",
                "Added /new",
                "Modified /tmp",
                "Added /tmp/d",
                "Added /tmp/d/f",
                "Modified /usr/bin/env",
            ]
        );
    }
}
