//! Snapshots: unpacked image layers and writable container layers on disk.
//!
//! A committed snapshot is one unpacked layer, keyed by the layer's chain ID (hex, no `sha256:`),
//! stored once under `<root>/<key>/` and shared by every image that has it. An active snapshot is
//! a writable layer on top of a committed chain, for a container or a build step.
//!
//! Two implementations share the [`Snapshotter`] trait: [`overlay::OverlaySnapshotter`] (layers
//! stay separate, whiteouts become overlay whiteouts) and [`vfs::VfsSnapshotter`] (every snapshot
//! is a full copy, for filesystems where overlay cannot mount). [`detect`] picks one.

pub mod apply;
mod fsutil;
mod layout;
mod mount;
pub mod overlay;
mod targuard;
mod tarwrite;
pub mod vfs;

pub use mount::unmount;
pub use targuard::MAX_EXTENSION_BYTES;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// What went wrong while unpacking or managing a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A tar entry tried to escape the layer directory or was otherwise not acceptable.
    #[error("invalid layer: {0}")]
    InvalidLayer(String),
    /// The tar stream itself was unreadable (truncated, corrupt).
    #[error("corrupt layer tar: {0}")]
    CorruptTar(#[source] std::io::Error),
    #[error("snapshot {0} does not exist")]
    NotFound(String),
    #[error("snapshot {0} already exists")]
    AlreadyExists(String),
    #[error("snapshot {key} is the parent of {child}")]
    InUse { key: String, child: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mount {target}: {source}")]
    Mount {
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A key that is not a plain name (`[A-Za-z0-9_.-]`, at most 128 bytes, no leading `.`).
    #[error("invalid snapshot key {0:?}")]
    InvalidKey(String),
    /// Layers and containers stack only on committed snapshots.
    #[error("snapshot {0} is active, not committed")]
    NotCommitted(String),
    /// Only an active snapshot has changes to diff.
    #[error("snapshot {0} is committed, not active")]
    NotActive(String),
    /// `--storage-driver` named something we do not have.
    #[error("unknown storage driver {0:?} (supported: overlay2, vfs)")]
    UnknownDriver(String),
    /// The root was written by another driver; switching would hide every snapshot in it.
    #[error("storage driver {requested} requested, but {root} holds {existing} snapshots")]
    DriverConflict {
        requested: String,
        existing: String,
        root: PathBuf,
    },
}

/// Facts about an unpacked layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerStats {
    /// Bytes of regular file content unpacked (Docker's layer "Size").
    pub size_bytes: u64,
}

/// One mount that makes a snapshot visible as a root filesystem (OCI-style: type, source, options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Directories behind a snapshot, for `GraphDriver.Data` in inspect output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotDirs {
    /// Lower layers, topmost first (empty for a base layer).
    pub lower: Vec<PathBuf>,
    /// The snapshot's own directory (the layer's content, or the writable upper for an active one).
    pub upper: PathBuf,
    /// overlay's work dir (active snapshots only).
    pub work: Option<PathBuf>,
    /// Where the merged view is mounted for active snapshots.
    pub merged: Option<PathBuf>,
}

/// The snapshotter boundary. Keys are plain strings: chain-ID hex for committed layers, a
/// container or build-step ID for active ones. Implementations persist each snapshot's parent
/// themselves, so a key alone names a whole chain.
pub trait Snapshotter: Send + Sync {
    /// `overlay2` or `vfs`: the name Docker shows as the storage driver.
    fn driver_name(&self) -> &'static str;

    /// Whether a committed or active snapshot `key` exists.
    fn exists(&self, key: &str) -> bool;

    /// Unpacks an uncompressed layer tar as committed snapshot `key` on top of `parent`.
    /// Atomic: on error nothing named `key` exists, and nothing was written outside the root.
    fn apply_layer(
        &self,
        key: &str,
        parent: Option<&str>,
        layer: &mut dyn Read,
    ) -> Result<LayerStats, SnapshotError>;

    /// Creates a writable snapshot `key` on top of committed `parent` (None: an empty rootfs).
    fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<MountSpec>, SnapshotError>;

    /// The mounts that show snapshot `key` as a filesystem.
    fn mounts(&self, key: &str) -> Result<Vec<MountSpec>, SnapshotError>;

    /// Mounts snapshot `key` at `target` (which must exist).
    fn mount(&self, key: &str, target: &Path) -> Result<(), SnapshotError>;

    /// Unmounts whatever `mount` put at `target`.
    fn unmount(&self, target: &Path) -> Result<(), SnapshotError>;

    /// Writes the changes of active snapshot `key` relative to its parent as a layer tar
    /// (deletions as `.wh.` whiteouts, opaque dirs as `.wh..wh..opq`), entries sorted.
    fn diff(&self, key: &str, out: &mut dyn Write) -> Result<LayerStats, SnapshotError>;

    /// Removes snapshot `key`. Refused while another snapshot has it as parent.
    fn remove(&self, key: &str) -> Result<(), SnapshotError>;

    /// Disk bytes used by the snapshot's own directory.
    fn usage(&self, key: &str) -> Result<u64, SnapshotError>;

    /// The directories behind `key`, for inspect's GraphDriver.Data.
    fn dirs(&self, key: &str) -> Result<SnapshotDirs, SnapshotError>;

    /// Every snapshot key present on disk.
    fn list(&self) -> Result<Vec<String>, SnapshotError>;

    /// Deletes leftovers of interrupted work (temp dirs from a crash). Called at start-up.
    fn cleanup(&self) -> Result<(), SnapshotError>;
}

/// Picks the driver: `requested` if given (`overlay2` or `vfs`), else the driver that already
/// wrote `root`, else overlay when a test mount under `root` succeeds, else vfs (with a log line
/// saying why). The choice is recorded in `root` so a restart keeps reading the same format.
pub fn detect(root: &Path, requested: Option<&str>) -> Result<Box<dyn Snapshotter>, SnapshotError> {
    let layout = layout::Layout::open(root)?;
    let recorded = layout.recorded_driver();
    let has_snapshots = !layout.list()?.is_empty();
    let name = match (requested, recorded) {
        (Some(req), _) if req != "overlay2" && req != "vfs" => {
            return Err(SnapshotError::UnknownDriver(req.to_owned()))
        }
        (Some(req), Some(rec)) if req != rec && has_snapshots => {
            return Err(SnapshotError::DriverConflict {
                requested: req.to_owned(),
                existing: rec,
                root: root.to_owned(),
            })
        }
        (Some(req), _) => req.to_owned(),
        (None, Some(rec)) if rec == "overlay2" || rec == "vfs" => rec,
        (None, _) => {
            let overlay = overlay::OverlaySnapshotter::new(root)?;
            match overlay.probe() {
                Ok(()) => "overlay2".to_owned(),
                Err(err) => {
                    tracing::warn!(
                        "overlay not supported on {}: {err}; falling back to vfs",
                        fsutil::fs_name(root)
                    );
                    "vfs".to_owned()
                }
            }
        }
    };
    let driver: Box<dyn Snapshotter> = if name == "overlay2" {
        let overlay = overlay::OverlaySnapshotter::new(root)?;
        if requested.is_some() {
            overlay.probe()?;
        }
        Box::new(overlay)
    } else {
        Box::new(vfs::VfsSnapshotter::new(root)?)
    };
    layout.record_driver(&name)?;
    Ok(driver)
}
