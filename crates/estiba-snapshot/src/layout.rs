//! The on-disk layout both drivers share: one directory per snapshot key under the root.
//!
//! ```text
//! <root>/<key>/fs        the layer's content (committed) or the writable upper (active)
//! <root>/<key>/parent    the parent key (absent for a base layer or an empty rootfs)
//! <root>/<key>/active    present for active (writable) snapshots
//! <root>/<key>/size      regular-file bytes of a committed layer
//! <root>/tmp-*/          work in progress; renamed to <key> only when complete
//! <root>/.driver         the driver that wrote this root (overlay2 or vfs)
//! ```

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rustix::io::Errno;

use crate::fsutil::io_err;
use crate::{fsutil, SnapshotError};

/// Longest snapshot key accepted.
pub(crate) const MAX_KEY_BYTES: usize = 128;
/// Deepest parent chain followed (overlayfs itself stops at 500 lower layers).
pub(crate) const MAX_CHAIN_LEN: usize = 500;
const TMP_PREFIX: &str = "tmp-";
const PARENT_FILE: &str = "parent";
const ACTIVE_FILE: &str = "active";
const SIZE_FILE: &str = "size";
const DRIVER_FILE: &str = ".driver";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Layout {
    root: PathBuf,
    /// Serialises the short metadata steps (commit, remove) so a parent cannot vanish under a
    /// child being committed. Unpacking itself runs outside the lock.
    lock: Mutex<()>,
}

/// Checks that `key` is a plain name that cannot collide with our own bookkeeping.
pub(crate) fn check_key(key: &str) -> Result<(), SnapshotError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_BYTES
        && !key.starts_with('.')
        && !key.starts_with(TMP_PREFIX)
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::InvalidKey(key.to_owned()))
    }
}

impl Layout {
    /// Creates the root (mode 0700) if needed.
    pub(crate) fn open(root: &Path) -> Result<Self, SnapshotError> {
        std::fs::create_dir_all(root).map_err(io_err("create", root))?;
        rustix::fs::chmod(root, rustix::fs::Mode::from_raw_mode(0o700))
            .map_err(|e| io_err("chmod", root)(e.into()))?;
        Ok(Self {
            root: root.to_owned(),
            lock: Mutex::new(()),
        })
    }

    pub(crate) fn dir(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub(crate) fn fs(&self, key: &str) -> PathBuf {
        self.root.join(key).join("fs")
    }

    pub(crate) fn exists(&self, key: &str) -> bool {
        check_key(key).is_ok() && self.fs(key).is_dir()
    }

    /// Fails with NotFound unless `key` is a snapshot.
    pub(crate) fn require(&self, key: &str) -> Result<(), SnapshotError> {
        check_key(key)?;
        if self.exists(key) {
            Ok(())
        } else {
            Err(SnapshotError::NotFound(key.to_owned()))
        }
    }

    pub(crate) fn is_active(&self, key: &str) -> bool {
        self.dir(key).join(ACTIVE_FILE).exists()
    }

    /// Fails unless `key` is a committed snapshot (layers stack only on committed ones).
    pub(crate) fn require_committed(&self, key: &str) -> Result<(), SnapshotError> {
        self.require(key)?;
        if self.is_active(key) {
            return Err(SnapshotError::NotCommitted(key.to_owned()));
        }
        Ok(())
    }

    pub(crate) fn parent(&self, key: &str) -> Result<Option<String>, SnapshotError> {
        let path = self.dir(key).join(PARENT_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                check_key(&text)?;
                Ok(Some(text))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// `key` and its ancestors, `key` first.
    pub(crate) fn chain(&self, key: &str) -> Result<Vec<String>, SnapshotError> {
        self.require(key)?;
        let mut chain = vec![key.to_owned()];
        let mut cur = key.to_owned();
        while let Some(parent) = self.parent(&cur)? {
            if chain.len() >= MAX_CHAIN_LEN || chain.contains(&parent) {
                return Err(SnapshotError::InvalidKey(format!(
                    "{key}: parent chain is cyclic or longer than {MAX_CHAIN_LEN}"
                )));
            }
            self.require(&parent)?;
            chain.push(parent.clone());
            cur = parent;
        }
        Ok(chain)
    }

    /// A fresh, empty `tmp-*` directory.
    pub(crate) fn temp_dir(&self) -> Result<PathBuf, SnapshotError> {
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = self
                .root
                .join(format!("{TMP_PREFIX}{}-{nanos:x}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("create", &path)(e)),
            }
        }
    }

    /// Best-effort removal of a temp dir after a failure.
    pub(crate) fn discard(&self, tmp: &Path) {
        if let Err(e) = fsutil::remove_tree(tmp) {
            tracing::warn!("cannot remove {}: {e}", tmp.display());
        }
    }

    /// Writes the bookkeeping files into `tmp` and renames it to `<key>`. With `sync`, the
    /// filesystem is flushed first so a power cut cannot leave a committed layer half-written.
    /// On error `tmp` is gone and `<key>` is unchanged.
    pub(crate) fn commit(
        &self,
        tmp: &Path,
        key: &str,
        parent: Option<&str>,
        active: bool,
        size: Option<u64>,
        sync: bool,
    ) -> Result<(), SnapshotError> {
        let result = self.commit_inner(tmp, key, parent, active, size, sync);
        if result.is_err() {
            self.discard(tmp);
        }
        result
    }

    fn commit_inner(
        &self,
        tmp: &Path,
        key: &str,
        parent: Option<&str>,
        active: bool,
        size: Option<u64>,
        sync: bool,
    ) -> Result<(), SnapshotError> {
        if let Some(parent) = parent {
            let path = tmp.join(PARENT_FILE);
            std::fs::write(&path, parent).map_err(io_err("write", &path))?;
        }
        if active {
            let path = tmp.join(ACTIVE_FILE);
            std::fs::write(&path, b"").map_err(io_err("write", &path))?;
        }
        if let Some(size) = size {
            let path = tmp.join(SIZE_FILE);
            std::fs::write(&path, size.to_string()).map_err(io_err("write", &path))?;
        }
        if sync {
            let fd = fsutil::open_dir_path(tmp).map_err(io_err("open", tmp))?;
            rustix::fs::syncfs(fd.as_fd()).map_err(|e| io_err("sync", tmp)(e.into()))?;
        }
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(parent) = parent {
            self.require_committed(parent)?;
        }
        if self.exists(key) {
            return Err(SnapshotError::AlreadyExists(key.to_owned()));
        }
        let dest = self.dir(key);
        match std::fs::rename(tmp, &dest) {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    Errno::from_io_error(&e),
                    Some(Errno::EXIST) | Some(Errno::NOTEMPTY)
                ) =>
            {
                Err(SnapshotError::AlreadyExists(key.to_owned()))
            }
            Err(e) => Err(io_err("rename", &dest)(e)),
        }
    }

    /// Removes snapshot `key`, refused while another snapshot has it as parent. The directory is
    /// first renamed to a temp name, so a crash mid-removal leaves only a `tmp-*` for `cleanup`.
    pub(crate) fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let doomed = {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.require(key)?;
            for other in self.list()? {
                if other != key && self.parent(&other)?.as_deref() == Some(key) {
                    return Err(SnapshotError::InUse {
                        key: key.to_owned(),
                        child: other,
                    });
                }
            }
            let doomed = self.temp_dir()?;
            std::fs::remove_dir(&doomed).map_err(io_err("remove", &doomed))?;
            let dir = self.dir(key);
            std::fs::rename(&dir, &doomed).map_err(io_err("rename", &dir))?;
            doomed
        };
        fsutil::remove_tree(&doomed).map_err(io_err("remove", &doomed))
    }

    /// Every snapshot key present, sorted.
    pub(crate) fn list(&self) -> Result<Vec<String>, SnapshotError> {
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io_err("read dir", &self.root))? {
            let entry = entry.map_err(io_err("read dir", &self.root))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if self.exists(&name) {
                keys.push(name);
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Removes every `tmp-*` left by interrupted work, unmounting a probe mount first.
    pub(crate) fn cleanup(&self) -> Result<(), SnapshotError> {
        for entry in std::fs::read_dir(&self.root).map_err(io_err("read dir", &self.root))? {
            let entry = entry.map_err(io_err("read dir", &self.root))?;
            if !entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                continue;
            }
            let path = entry.path();
            let merged = path.join("merged");
            let _ = rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH);
            fsutil::remove_tree(&path).map_err(io_err("remove", &path))?;
        }
        Ok(())
    }

    pub(crate) fn usage(&self, key: &str) -> Result<u64, SnapshotError> {
        self.require(key)?;
        let dir = self.dir(key);
        let fd = fsutil::open_dir_path(&dir).map_err(io_err("open", &dir))?;
        fsutil::disk_usage(fd.as_fd()).map_err(io_err("measure", &dir))
    }

    /// The driver recorded in this root, if any.
    pub(crate) fn recorded_driver(&self) -> Option<String> {
        std::fs::read_to_string(self.root.join(DRIVER_FILE))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    pub(crate) fn record_driver(&self, name: &str) -> Result<(), SnapshotError> {
        let path = self.root.join(DRIVER_FILE);
        std::fs::write(&path, name).map_err(io_err("write", &path))
    }
}
