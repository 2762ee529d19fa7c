//! The vfs driver: every snapshot is a full copy, for filesystems where overlay cannot mount.
//!
//! Committing a layer copies the parent's tree and applies the layer on the copy with real
//! deletions for whiteouts. An active snapshot is a copy too, shown by a bind mount; its diff is
//! computed by comparing it with the parent's tree (lstat fields, symlink targets and xattrs).

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{FileType, Stat};

use crate::apply::{self, Whiteouts};
use crate::fsutil::{self, io_err, os, XattrTarget};
use crate::layout::{check_key, Layout};
use crate::mount;
use crate::tarwrite::LayerWriter;
use crate::{LayerStats, MountSpec, SnapshotDirs, SnapshotError, Snapshotter};

/// Snapshots as plain directory copies.
pub struct VfsSnapshotter {
    layout: Layout,
}

impl VfsSnapshotter {
    /// Opens (creating if needed) the snapshot root.
    pub fn new(root: &Path) -> Result<Self, SnapshotError> {
        Ok(Self {
            layout: Layout::open(root)?,
        })
    }

    /// Makes `<tmp>/fs` as a copy of `parent`'s tree (or an empty 0755 dir).
    fn populate(&self, tmp: &Path, parent: Option<&str>) -> Result<(), SnapshotError> {
        let fs = tmp.join("fs");
        std::fs::create_dir(&fs).map_err(io_err("create", &fs))?;
        match parent {
            Some(parent) => {
                let src_path = self.layout.fs(parent);
                let src = fsutil::open_dir_path(&src_path).map_err(io_err("open", &src_path))?;
                let dst = fsutil::open_dir_path(&fs).map_err(io_err("open", &fs))?;
                fsutil::copy_tree(src.as_fd(), dst.as_fd()).map_err(io_err("copy into", &fs))
            }
            None => rustix::fs::chmod(&fs, rustix::fs::Mode::from_raw_mode(0o755))
                .map_err(|e| io_err("chmod", &fs)(e.into())),
        }
    }

    fn create(
        &self,
        key: &str,
        parent: Option<&str>,
        layer: Option<&mut dyn Read>,
    ) -> Result<LayerStats, SnapshotError> {
        check_key(key)?;
        if self.layout.exists(key) {
            return Err(SnapshotError::AlreadyExists(key.to_owned()));
        }
        if let Some(parent) = parent {
            self.layout.require_committed(parent)?;
        }
        let tmp = self.layout.temp_dir()?;
        let active = layer.is_none();
        let result = self.populate(&tmp, parent).and_then(|()| match layer {
            Some(layer) => apply::apply_tar(&tmp.join("fs"), layer, Whiteouts::Delete),
            None => Ok(LayerStats::default()),
        });
        match result {
            Ok(stats) => {
                let size = (!active).then_some(stats.size_bytes);
                self.layout
                    .commit(&tmp, key, parent, active, size, !active)?;
                Ok(stats)
            }
            Err(e) => {
                self.layout.discard(&tmp);
                Err(e)
            }
        }
    }
}

impl Snapshotter for VfsSnapshotter {
    fn driver_name(&self) -> &'static str {
        "vfs"
    }

    fn exists(&self, key: &str) -> bool {
        self.layout.exists(key)
    }

    fn apply_layer(
        &self,
        key: &str,
        parent: Option<&str>,
        layer: &mut dyn Read,
    ) -> Result<LayerStats, SnapshotError> {
        self.create(key, parent, Some(layer))
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<MountSpec>, SnapshotError> {
        self.create(key, parent, None)?;
        self.mounts(key)
    }

    fn mounts(&self, key: &str) -> Result<Vec<MountSpec>, SnapshotError> {
        self.layout.require(key)?;
        let rw = if self.layout.is_active(key) {
            "rw"
        } else {
            "ro"
        };
        Ok(vec![MountSpec {
            fstype: "bind".to_owned(),
            source: self.layout.fs(key).to_string_lossy().into_owned(),
            options: vec!["rbind".to_owned(), rw.to_owned()],
        }])
    }

    fn mount(&self, key: &str, target: &Path) -> Result<(), SnapshotError> {
        self.layout.require(key)?;
        mount::mount_bind(&self.layout.fs(key), target, !self.layout.is_active(key))
    }

    fn unmount(&self, target: &Path) -> Result<(), SnapshotError> {
        mount::unmount(target)
    }

    fn diff(&self, key: &str, out: &mut dyn Write) -> Result<LayerStats, SnapshotError> {
        self.layout.require(key)?;
        if !self.layout.is_active(key) {
            return Err(SnapshotError::NotActive(key.to_owned()));
        }
        let upper = self.layout.fs(key);
        let upper_fd = fsutil::open_dir_path(&upper).map_err(io_err("open", &upper))?;
        let lower_fd = match self.layout.parent(key)? {
            Some(parent) => {
                let p = self.layout.fs(&parent);
                Some(fsutil::open_dir_path(&p).map_err(io_err("open", &p))?)
            }
            None => None,
        };
        let mut writer = LayerWriter::new(out, &upper);
        let mut cmp = Compare {
            writer: &mut writer,
            base: &upper,
            pending: Vec::new(),
        };
        cmp.dir(
            upper_fd.as_fd(),
            lower_fd.as_ref().map(|f| f.as_fd()),
            &mut Vec::new(),
            0,
        )?;
        writer.finish()
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        self.layout.remove(key)
    }

    fn usage(&self, key: &str) -> Result<u64, SnapshotError> {
        self.layout.usage(key)
    }

    fn dirs(&self, key: &str) -> Result<SnapshotDirs, SnapshotError> {
        self.layout.require(key)?;
        Ok(SnapshotDirs {
            lower: Vec::new(),
            upper: self.layout.fs(key),
            work: None,
            merged: None,
        })
    }

    fn list(&self) -> Result<Vec<String>, SnapshotError> {
        self.layout.list()
    }

    fn cleanup(&self) -> Result<(), SnapshotError> {
        self.layout.cleanup()
    }
}

/// A directory whose entry is written only if something below it changed (so a changed file
/// always arrives with its parents' owners and modes, as an overlay upper would have them).
struct Pending {
    rel: Vec<u8>,
    parent: OwnedFd,
    name: Vec<u8>,
    st: Stat,
    written: bool,
}

struct Compare<'a, 'w> {
    writer: &'a mut LayerWriter<'w>,
    base: &'a Path,
    pending: Vec<Pending>,
}

impl Compare<'_, '_> {
    fn flush_pending(&mut self) -> Result<(), SnapshotError> {
        for p in self.pending.iter_mut().filter(|p| !p.written) {
            self.writer.add(&p.rel, p.parent.as_fd(), &p.name, &p.st)?;
            p.written = true;
        }
        Ok(())
    }

    fn emit(
        &mut self,
        rel: &[u8],
        dir: BorrowedFd<'_>,
        name: &[u8],
        st: &Stat,
    ) -> Result<(), SnapshotError> {
        self.flush_pending()?;
        self.writer.add(rel, dir, name, st)
    }

    /// Compares directory `upper` with `lower` (None: nothing below), writing the changes.
    fn dir(
        &mut self,
        upper: BorrowedFd<'_>,
        lower: Option<BorrowedFd<'_>>,
        rel: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), SnapshotError> {
        if depth > fsutil::MAX_TREE_DEPTH {
            return Err(io_err("walk", self.base)(std::io::Error::other(
                "directory tree too deep",
            )));
        }
        let base = self.base;
        let mut names = fsutil::read_names(upper).map_err(io_err("read dir", base))?;
        let lower_names = match lower {
            Some(l) => fsutil::read_names(l).map_err(io_err("read dir", base))?,
            None => Vec::new(),
        };
        names.extend(lower_names.iter().cloned());
        names.sort();
        names.dedup();
        for name in names {
            let len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&name);
            let ust = stat_opt(upper, &name).map_err(io_err("lstat", base))?;
            let lst = match lower {
                Some(l) => stat_opt(l, &name).map_err(io_err("lstat", base))?,
                None => None,
            };
            match (ust, lst) {
                (None, Some(lst)) => {
                    self.flush_pending()?;
                    self.writer.whiteout(&rel[..len], &name, Some(&lst))?;
                }
                (Some(ust), lst) => {
                    let u_dir = fsutil::file_type(&ust) == FileType::Directory;
                    let l_dir = lst
                        .as_ref()
                        .is_some_and(|l| fsutil::file_type(l) == FileType::Directory);
                    let changed = match &lst {
                        None => true,
                        Some(lst) => differs(upper, lower, &name, &ust, lst)
                            .map_err(io_err("compare", base))?,
                    };
                    if u_dir {
                        let child = fsutil::open_dir_at(upper, os(&name))
                            .map_err(|e| io_err("open", base)(e.into()))?;
                        let lower_child = match (lower, l_dir) {
                            (Some(l), true) => Some(
                                fsutil::open_dir_at(l, os(&name))
                                    .map_err(|e| io_err("open", base)(e.into()))?,
                            ),
                            _ => None,
                        };
                        if changed {
                            self.emit(rel, upper, &name, &ust)?;
                        } else {
                            let parent = rustix::fs::openat(
                                upper,
                                ".",
                                fsutil::dir_flags(),
                                rustix::fs::Mode::empty(),
                            )
                            .map_err(|e| io_err("open", base)(e.into()))?;
                            self.pending.push(Pending {
                                rel: rel.clone(),
                                parent,
                                name: name.clone(),
                                st: ust,
                                written: false,
                            });
                        }
                        let pushed = !changed;
                        self.dir(
                            child.as_fd(),
                            lower_child.as_ref().map(|f| f.as_fd()),
                            rel,
                            depth + 1,
                        )?;
                        if pushed {
                            self.pending.pop();
                        }
                    } else if changed {
                        self.emit(rel, upper, &name, &ust)?;
                    }
                }
                (None, None) => {}
            }
            rel.truncate(len);
        }
        Ok(())
    }
}

fn stat_opt(dir: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<Option<Stat>> {
    match fsutil::lstat_at(dir, os(name)) {
        Ok(st) => Ok(Some(st)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether `name` changed between lower and upper: type, mode, owner, mtime, size, device
/// number, symlink target or xattrs.
fn differs(
    upper: BorrowedFd<'_>,
    lower: Option<BorrowedFd<'_>>,
    name: &[u8],
    u: &Stat,
    l: &Stat,
) -> std::io::Result<bool> {
    let Some(lower) = lower else {
        return Ok(true);
    };
    let ft = fsutil::file_type(u);
    if ft != fsutil::file_type(l)
        || u.st_mode != l.st_mode
        || u.st_uid != l.st_uid
        || u.st_gid != l.st_gid
        || u.st_mtime != l.st_mtime
        || u.st_mtime_nsec != l.st_mtime_nsec
        || u.st_rdev != l.st_rdev
        || (ft != FileType::Directory && u.st_size != l.st_size)
    {
        return Ok(true);
    }
    if ft == FileType::Symlink {
        let a = rustix::fs::readlinkat(upper, os(name), Vec::new())?;
        let b = rustix::fs::readlinkat(lower, os(name), Vec::new())?;
        if a != b {
            return Ok(true);
        }
    }
    let mut a = XattrTarget::leaf(upper, name)?.all()?;
    let mut b = XattrTarget::leaf(lower, name)?.all()?;
    a.sort();
    b.sort();
    Ok(a != b)
}
