//! The overlay2 driver: each layer unpacked once into its own directory, stacked by overlayfs.
//!
//! A committed snapshot `<root>/<key>/fs` holds only its layer's changes, with whiteouts as 0:0
//! character devices and opaque directories marked `trusted.overlay.opaque=y`. An active snapshot
//! adds `work/` and `merged/`; its `fs/` is the overlay's upperdir.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use crate::apply::{self, Whiteouts, OVERLAY_OPAQUE_XATTR};
use crate::fsutil::{self, io_err, os, XattrTarget};
use crate::layout::{check_key, Layout};
use crate::mount;
use crate::tarwrite::LayerWriter;
use crate::{LayerStats, MountSpec, SnapshotDirs, SnapshotError, Snapshotter};

/// Lower dirs (topmost first) and, for a writable snapshot, (upperdir, workdir).
type StackSpec = (Vec<PathBuf>, Option<(PathBuf, PathBuf)>);

/// Snapshots stacked with overlayfs.
pub struct OverlaySnapshotter {
    layout: Layout,
}

impl OverlaySnapshotter {
    /// Opens (creating if needed) the snapshot root. Does not check that overlay mounts here:
    /// [`OverlaySnapshotter::probe`] does.
    pub fn new(root: &Path) -> Result<Self, SnapshotError> {
        Ok(Self {
            layout: Layout::open(root)?,
        })
    }

    /// Mounts a tiny overlay in a temp dir under the root and checks a lower file shows through.
    pub fn probe(&self) -> Result<(), SnapshotError> {
        let tmp = self.layout.temp_dir()?;
        let result = probe_in(&tmp);
        self.layout.discard(&tmp);
        result
    }

    /// The lower directories for an active snapshot on `parent` (topmost first), or the
    /// committed chain below `key`.
    fn lowers(&self, chain: &[String]) -> Vec<PathBuf> {
        chain.iter().map(|k| self.layout.fs(k)).collect()
    }

    fn spec(&self, key: &str) -> Result<StackSpec, SnapshotError> {
        let chain = self.layout.chain(key)?;
        if self.layout.is_active(key) {
            let dir = self.layout.dir(key);
            let mut lowers = self.lowers(&chain[1..]);
            if lowers.is_empty() {
                // overlay needs at least one lower layer: an empty rootfs gets an empty one.
                lowers.push(dir.join("empty"));
            }
            Ok((lowers, Some((dir.join("fs"), dir.join("work")))))
        } else {
            Ok((self.lowers(&chain), None))
        }
    }
}

fn probe_in(tmp: &Path) -> Result<(), SnapshotError> {
    for sub in ["lower", "upper", "work", "merged"] {
        let p = tmp.join(sub);
        std::fs::create_dir(&p).map_err(io_err("create", &p))?;
    }
    let marker = tmp.join("lower").join("probe");
    std::fs::write(&marker, b"x").map_err(io_err("write", &marker))?;
    let merged = tmp.join("merged");
    mount::mount_overlay(
        &[tmp.join("lower")],
        Some((&tmp.join("upper"), &tmp.join("work"))),
        &merged,
    )?;
    let visible = merged.join("probe").exists();
    mount::unmount(&merged)?;
    if visible {
        Ok(())
    } else {
        Err(SnapshotError::Mount {
            target: merged,
            source: std::io::Error::other("a lower file does not show through the overlay"),
        })
    }
}

impl Snapshotter for OverlaySnapshotter {
    fn driver_name(&self) -> &'static str {
        "overlay2"
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
        check_key(key)?;
        if self.layout.exists(key) {
            return Err(SnapshotError::AlreadyExists(key.to_owned()));
        }
        if let Some(parent) = parent {
            self.layout.require_committed(parent)?;
        }
        let tmp = self.layout.temp_dir()?;
        let fs = tmp.join("fs");
        let stats = std::fs::create_dir(&fs)
            .map_err(io_err("create", &fs))
            .and_then(|()| apply::apply_tar(&fs, layer, Whiteouts::Overlay));
        match stats {
            Ok(stats) => {
                self.layout
                    .commit(&tmp, key, parent, false, Some(stats.size_bytes), true)?;
                Ok(stats)
            }
            Err(e) => {
                self.layout.discard(&tmp);
                Err(e)
            }
        }
    }

    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<MountSpec>, SnapshotError> {
        check_key(key)?;
        if self.layout.exists(key) {
            return Err(SnapshotError::AlreadyExists(key.to_owned()));
        }
        if let Some(parent) = parent {
            self.layout.require_committed(parent)?;
        }
        let tmp = self.layout.temp_dir()?;
        let mut subs = vec!["fs", "work", "merged"];
        if parent.is_none() {
            subs.push("empty");
        }
        for sub in subs {
            let p = tmp.join(sub);
            if let Err(e) = std::fs::create_dir(&p) {
                self.layout.discard(&tmp);
                return Err(io_err("create", &p)(e));
            }
        }
        // The upper's root is the container's `/`: 0755 like an image root.
        let fs = tmp.join("fs");
        rustix::fs::chmod(&fs, rustix::fs::Mode::from_raw_mode(0o755))
            .map_err(|e| io_err("chmod", &fs)(e.into()))?;
        self.layout.commit(&tmp, key, parent, true, None, false)?;
        self.mounts(key)
    }

    fn mounts(&self, key: &str) -> Result<Vec<MountSpec>, SnapshotError> {
        let (lowers, upper) = self.spec(key)?;
        if upper.is_none() && lowers.len() == 1 {
            return Ok(vec![MountSpec {
                fstype: "bind".to_owned(),
                source: lowers[0].to_string_lossy().into_owned(),
                options: vec!["ro".to_owned(), "rbind".to_owned()],
            }]);
        }
        let lowers: Vec<String> = lowers
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let upper = upper.map(|(u, w)| {
            (
                u.to_string_lossy().into_owned(),
                w.to_string_lossy().into_owned(),
            )
        });
        Ok(vec![MountSpec {
            fstype: "overlay".to_owned(),
            source: "overlay".to_owned(),
            options: mount::overlay_options(
                &lowers,
                upper.as_ref().map(|(u, w)| (u.as_str(), w.as_str())),
            ),
        }])
    }

    fn mount(&self, key: &str, target: &Path) -> Result<(), SnapshotError> {
        let (lowers, upper) = self.spec(key)?;
        match upper {
            None if lowers.len() == 1 => mount::mount_bind(&lowers[0], target, true),
            None => mount::mount_overlay(&lowers, None, target),
            Some((u, w)) => mount::mount_overlay(&lowers, Some((&u, &w)), target),
        }
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
        let fd = fsutil::open_dir_path(&upper).map_err(io_err("open", &upper))?;
        let mut writer = LayerWriter::new(out, &upper);
        walk_upper(&mut writer, fd.as_fd(), &upper, &mut Vec::new(), 0)?;
        writer.finish()
    }

    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        self.layout.require(key)?;
        if self.layout.is_active(key) {
            // Whatever is still mounted on our own merged dir goes first (never remove through it).
            let _ = mount::unmount(&self.layout.dir(key).join("merged"));
        }
        self.layout.remove(key)
    }

    fn usage(&self, key: &str) -> Result<u64, SnapshotError> {
        self.layout.usage(key)
    }

    fn dirs(&self, key: &str) -> Result<SnapshotDirs, SnapshotError> {
        let chain = self.layout.chain(key)?;
        let dir = self.layout.dir(key);
        let active = self.layout.is_active(key);
        Ok(SnapshotDirs {
            lower: self.lowers(&chain[1..]),
            upper: dir.join("fs"),
            work: active.then(|| dir.join("work")),
            merged: active.then(|| dir.join("merged")),
        })
    }

    fn list(&self) -> Result<Vec<String>, SnapshotError> {
        self.layout.list()
    }

    fn cleanup(&self) -> Result<(), SnapshotError> {
        self.layout.cleanup()
    }
}

/// Writes every entry of an overlay upper dir, parents before children, siblings sorted:
/// 0:0 character devices become `.wh.<name>`, opaque directories get `.wh..wh..opq`.
fn walk_upper(
    writer: &mut LayerWriter<'_>,
    dir: BorrowedFd<'_>,
    base: &Path,
    rel: &mut Vec<u8>,
    depth: usize,
) -> Result<(), SnapshotError> {
    if depth > fsutil::MAX_TREE_DEPTH {
        return Err(SnapshotError::Io {
            op: "walk",
            path: base.join(os(rel)),
            source: std::io::Error::other("directory tree too deep"),
        });
    }
    let names = fsutil::read_names(dir).map_err(io_err("read dir", base))?;
    for name in names {
        let st = fsutil::lstat_at(dir, os(&name)).map_err(|e| io_err("lstat", base)(e.into()))?;
        let ft = fsutil::file_type(&st);
        let len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(&name);
        if ft == FileType::CharacterDevice && st.st_rdev == 0 {
            writer.whiteout(&rel[..len], &name, Some(&st))?;
        } else {
            writer.add(rel, dir, &name, &st)?;
            if ft == FileType::Directory {
                let child = fsutil::open_dir_at(dir, os(&name))
                    .map_err(|e| io_err("open", base)(e.into()))?;
                let opaque = XattrTarget::Fd(child.as_fd())
                    .get(OVERLAY_OPAQUE_XATTR)
                    .map_err(io_err("read xattr", base))?;
                if opaque.as_deref() == Some(b"y") {
                    writer.opaque(rel, Some(&st))?;
                }
                walk_upper(writer, child.as_fd(), base, rel, depth + 1)?;
            }
        }
        rel.truncate(len);
    }
    Ok(())
}
