//! The data-root lock (one daemon per data-root) and the PID file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustix::fs::{flock, FlockOperation};

/// The lock file's name inside the data-root.
pub(crate) const LOCK_FILE: &str = "estibad.lock";

/// Held for the daemon's whole life; the kernel drops the lock when the process dies, so a crash
/// never leaves a stale lock behind.
#[derive(Debug)]
pub(crate) struct DataRootLock {
    _file: File,
    path: PathBuf,
}

impl DataRootLock {
    /// Takes the lock without waiting; fails if another process holds it.
    pub(crate) fn acquire(data_root: &Path) -> Result<DataRootLock> {
        let path = data_root.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("open lock file {}", path.display()))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                let by = if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                };
                bail!(
                    "another estibad is already running with data-root {}{by}: {} is locked",
                    data_root.display(),
                    path.display()
                );
            }
            Err(e) => {
                return Err(std::io::Error::from(e))
                    .with_context(|| format!("lock {}", path.display()))
            }
        }
        // Record who holds it, for the message above; the lock itself is the flock.
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("write {}", path.display()))?;
        Ok(DataRootLock { _file: file, path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The PID file; removed when dropped.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes our PID to `path` (atomically, via a temp file and rename).
    pub(crate) fn create(path: &Path) -> Result<PidFile> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        let tmp = path.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{}\n", std::process::id()))
            .with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!("remove pid file {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_same_root_fails_until_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataRootLock::acquire(dir.path()).unwrap();
        // flock locks belong to the open file description, so a second open in the same process
        // conflicts just as another process would.
        let err = DataRootLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("another estibad is already running"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        DataRootLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn pid_file_written_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/estibad.pid");
        let pid = PidFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(pid);
        assert!(!path.exists());
    }
}
