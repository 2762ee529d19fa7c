//! The image service: load, list, inspect, history, tag, remove, prune, save, disk usage.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use estiba_events::EventBus;
use estiba_snapshot::{SnapshotDirs, Snapshotter};
use estiba_store::Store;

/// Errors of image operations; the daemon maps each variant to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// 404 — message as Docker: "No such image: busybox:latest".
    #[error("No such image: {0}")]
    NotFound(String),
    /// 400 — a reference that does not parse, with Docker's wording.
    #[error("{0}")]
    InvalidReference(String),
    /// 400 — a tarball or layer that is broken or hostile; nothing of it was kept.
    #[error("{0}")]
    InvalidArchive(String),
    /// 409 — e.g. "conflict: unable to delete 0123456789ab (must be forced) - image is referenced in multiple repositories".
    #[error("{0}")]
    Conflict(String),
    /// 500 — anything else (disk full, I/O).
    #[error("{0}")]
    Internal(String),
}

/// One row of `docker images`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSummary {
    /// "sha256:<hex>" of the config blob.
    pub id: String,
    pub parent_id: String,
    /// Familiar-form references as Docker shows them ("busybox:latest", "me/bb:1", "127.0.0.1:5000/x:1").
    pub repo_tags: Vec<String>,
    /// "busybox@sha256:..." for images that came from (or went to) a registry or an OCI index.
    pub repo_digests: Vec<String>,
    /// Unix seconds of the config's `created`.
    pub created: i64,
    /// Sum of the unpacked layer sizes.
    pub size_bytes: u64,
    /// Bytes of layers shared with other images (-1 when not computed).
    pub shared_size_bytes: i64,
    pub labels: BTreeMap<String, String>,
    /// Number of containers using the image (-1 when not computed).
    pub containers: i64,
}

/// What `docker image inspect` shows, in domain form.
#[derive(Debug, Clone)]
pub struct ImageDetails {
    pub summary: ImageSummary,
    /// The raw image config JSON as stored (the daemon lifts Config, Author, etc. from it).
    pub config: serde_json::Value,
    /// RFC 3339 `created` exactly as in the config.
    pub created_rfc3339: String,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    /// Layer diff IDs, bottom first.
    pub diff_ids: Vec<String>,
    pub driver_name: String,
    pub dirs: Option<SnapshotDirs>,
    /// When the image was last tagged (Metadata.LastTagTime), RFC 3339; None if never.
    pub last_tag_time: Option<String>,
}

/// One line of `docker history`, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The image ID for the top entry of each known image, else "<missing>".
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size_bytes: u64,
    pub comment: String,
}

/// One line of the Untagged/Deleted report of `docker rmi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemovedItem {
    Untagged(String),
    Deleted(String),
}

/// Filters accepted by list (`docker images --filter`).
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    pub all: bool,
    pub dangling: Option<bool>,
    /// `label=key` or `label=key=value`, all must match.
    pub labels: Vec<String>,
    /// Glob patterns on familiar references (`busybox`, `bus*:lat*`).
    pub references: Vec<String>,
    /// Image references: only images created before / since these.
    pub before: Option<String>,
    pub since: Option<String>,
}

/// Progress of a load, one line per image loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadedItem {
    /// A tagged image: "busybox:latest".
    Tag(String),
    /// An untagged image, by ID.
    Id(String),
}

/// Disk usage of images for `/system/df`.
#[derive(Debug, Clone, Default)]
pub struct ImagesDiskUsage {
    pub layers_size_bytes: u64,
    pub images: Vec<ImageSummary>,
}

/// Where an image service keeps its things.
#[derive(Debug, Clone)]
pub struct ImageServiceConfig {
    /// `<data-root>/content`.
    pub content_root: PathBuf,
}

/// The image service. Synchronous: the daemon runs it on blocking threads.
pub struct ImageService {
    _store: Arc<Store>,
    _snapshots: Arc<dyn Snapshotter>,
    _events: Arc<EventBus>,
    _config: ImageServiceConfig,
}

impl ImageService {
    /// Opens the service; removes temp files and unreferenced blobs and snapshots left by a crash.
    pub fn open(
        store: Arc<Store>,
        snapshots: Arc<dyn Snapshotter>,
        events: Arc<EventBus>,
        config: ImageServiceConfig,
    ) -> Result<Self, ImageError> {
        Ok(ImageService {
            _store: store,
            _snapshots: snapshots,
            _events: events,
            _config: config,
        })
    }

    /// Loads a docker-archive or OCI-layout tarball (optionally gzip/zstd compressed as a whole).
    /// Either every image in it is stored, or nothing is (except verified blobs, which a later GC
    /// collects). `on_loaded` is called once per image, in order.
    pub fn load(
        &self,
        _tarball: &mut dyn Read,
        _on_loaded: &mut dyn FnMut(&LoadedItem),
    ) -> Result<(), ImageError> {
        todo!()
    }

    /// Writes the named images (references or IDs) as one tarball: OCI layout plus manifest.json,
    /// as docker 25+ does.
    pub fn save(&self, _names: &[String], _out: &mut dyn Write) -> Result<(), ImageError> {
        todo!()
    }

    pub fn list(&self, _filters: &ListFilters) -> Result<Vec<ImageSummary>, ImageError> {
        todo!()
    }

    /// Resolves a reference, a full or short ID, or "name@digest".
    pub fn inspect(&self, _name: &str) -> Result<ImageDetails, ImageError> {
        todo!()
    }

    pub fn history(&self, _name: &str) -> Result<Vec<HistoryEntry>, ImageError> {
        todo!()
    }

    /// Tags `source` as `repo[:tag]` (tag defaults to latest).
    pub fn tag(&self, _source: &str, _repo: &str, _tag: Option<&str>) -> Result<(), ImageError> {
        todo!()
    }

    /// `docker rmi`: untags a reference, or deletes an image by ID; `in_use` tells whether a
    /// container uses an image ID (containers come later; the daemon passes a closure).
    pub fn remove(
        &self,
        _name: &str,
        _force: bool,
        _no_prune: bool,
    ) -> Result<Vec<RemovedItem>, ImageError> {
        todo!()
    }

    /// Removes dangling images (all unused ones when `all`); returns what went and bytes freed.
    pub fn prune(
        &self,
        _all: bool,
        _labels: &[String],
    ) -> Result<(Vec<RemovedItem>, u64), ImageError> {
        todo!()
    }

    pub fn disk_usage(&self) -> Result<ImagesDiskUsage, ImageError> {
        todo!()
    }
}
