//! The image service: load, list, inspect, history, tag, remove, prune, save, disk usage.
//!
//! Metadata lives in the redb store (one transaction per operation), blobs in the content store,
//! unpacked layers in the snapshotter. Order makes it crash-safe: a load writes blobs and
//! snapshots first and records them in one transaction last; a delete removes the records first
//! and the files after. Whatever a crash leaves unreferenced is collected by [`ImageService::open`].

mod build;
mod build_cache_from;
mod commit;
mod filters;
mod load;
mod pipe;
mod pull;
mod query;
mod remove;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

pub use commit::CommitRequest;
pub use pull::{LayerBlob, PullCommit, PullOutcome, PulledLayer, PushSource};

use estiba_events::{Event, EventBus};
use estiba_snapshot::{SnapshotDirs, Snapshotter};
use estiba_store::{ImageRecord, Reader, Store};

use crate::archive::LoadLimits;
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::reference::{is_image_id_prefix, Reference};

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

fn internal(e: impl std::fmt::Display) -> ImageError {
    ImageError::Internal(e.to_string())
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
    store: Arc<Store>,
    snapshots: Arc<dyn Snapshotter>,
    events: Arc<EventBus>,
    content: ContentStore,
    limits: LoadLimits,
    /// Serializes operations that add or remove blobs, snapshots or records, so "is this still
    /// referenced?" questions cannot race with a load adding a reference. Reads never take it.
    mutate: Mutex<()>,
    /// Who uses an image ID: `(short container ID, running)`, set by the container service.
    in_use: std::sync::RwLock<Option<InUseCheck>>,
}

/// Answers whether a container uses an image: `Some((short container ID, running))`.
pub type InUseCheck = Box<dyn Fn(&str) -> Option<(String, bool)> + Send + Sync>;

/// How a user-given name was resolved.
#[derive(Debug, Clone)]
pub(crate) enum Resolved {
    /// By a tag or digest reference (the full normalized reference).
    Reference(Reference),
    /// By an ID or ID prefix.
    Id,
}

impl ImageService {
    /// Opens the service; removes temp files and unreferenced blobs and snapshots left by a crash.
    pub fn open(
        store: Arc<Store>,
        snapshots: Arc<dyn Snapshotter>,
        events: Arc<EventBus>,
        config: ImageServiceConfig,
    ) -> Result<Self, ImageError> {
        let content = ContentStore::open(&config.content_root).map_err(internal)?;
        let service = ImageService {
            store,
            snapshots,
            events,
            content,
            limits: LoadLimits::default(),
            mutate: Mutex::new(()),
            in_use: std::sync::RwLock::new(None),
        };
        service.collect_garbage()?;
        Ok(service)
    }

    /// Replaces the load limits (tests use small ones).
    pub fn with_limits(mut self, limits: LoadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Installs the check `docker rmi` uses to refuse deleting an image a container uses
    /// (Docker's "image is being used by running/stopped container" conflicts).
    pub fn set_in_use_check(&self, check: InUseCheck) {
        *self.in_use.write().unwrap_or_else(|e| e.into_inner()) = Some(check);
    }

    /// The container using image `id`, if any (see [`ImageService::set_in_use_check`]).
    pub(crate) fn used_by(&self, id: &str) -> Option<(String, bool)> {
        let check = self.in_use.read().unwrap_or_else(|e| e.into_inner());
        check.as_ref().and_then(|f| f(id))
    }

    /// The content store (blobs by digest), for services that read image blobs.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic elsewhere cannot leave it inconsistent.
        self.mutate.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, action: &str, id: &str, name: &str) {
        self.events
            .publish(Event::now("image", action, id).attr("name", name));
    }

    /// Deletes blobs and layer snapshots no record refers to (leftovers of a crash).
    fn collect_garbage(&self) -> Result<(), ImageError> {
        let _guard = self.lock();
        if let Err(e) = self.snapshots.cleanup() {
            tracing::warn!("snapshot cleanup: {e}");
        }
        let r = self.store.read().map_err(internal)?;
        let images = r.images().map_err(internal)?;
        let layers = r.layers().map_err(internal)?;
        let mut blobs = std::collections::HashSet::new();
        for i in &images {
            blobs.insert(i.id.clone());
            if let Some(m) = &i.manifest {
                blobs.insert(m.digest.clone());
            }
        }
        let mut keys = std::collections::HashSet::new();
        for l in &layers {
            if let Some(b) = &l.blob {
                blobs.insert(b.digest.clone());
            }
            if let Ok(d) = Digest::parse(&l.chain_id) {
                keys.insert(d.hex().to_string());
            }
        }
        for d in self.content.list().map_err(internal)? {
            if !blobs.contains(d.as_str()) {
                tracing::info!("removing unreferenced blob {d}");
                if let Err(e) = self.content.delete(&d) {
                    tracing::warn!("remove blob {d}: {e}");
                }
            }
        }
        // Only chain-ID keys (64 hex) belong to the image store; other keys are left alone.
        let mut stray: Vec<String> = match self.snapshots.list() {
            Ok(list) => list
                .into_iter()
                .filter(|k| Digest::from_hex(k).is_ok() && !keys.contains(k))
                .collect(),
            Err(e) => {
                tracing::warn!("list snapshots: {e}");
                Vec::new()
            }
        };
        // A parent refuses removal while a child exists: retry until no progress.
        while !stray.is_empty() {
            let before = stray.len();
            stray.retain(|k| self.snapshots.remove(k).is_err());
            if stray.len() == before {
                tracing::warn!("could not remove stray snapshots {stray:?}");
                break;
            }
        }
        Ok(())
    }

    /// Loads a docker-archive or OCI-layout tarball (optionally gzip/zstd compressed as a whole).
    /// Either every image in it is stored, or nothing is (except verified blobs, which a later GC
    /// collects). `on_loaded` is called once per image, in order.
    pub fn load(
        &self,
        tarball: &mut dyn Read,
        on_loaded: &mut dyn FnMut(&LoadedItem),
    ) -> Result<(), ImageError> {
        load::load(self, tarball, on_loaded)
    }

    /// Writes the named images (references or IDs) as one tarball: OCI layout plus manifest.json,
    /// as docker 25+ does.
    pub fn save(&self, names: &[String], out: &mut dyn Write) -> Result<(), ImageError> {
        load::save(self, names, out)
    }

    pub fn list(&self, filters: &ListFilters) -> Result<Vec<ImageSummary>, ImageError> {
        query::list(self, filters)
    }

    /// Resolves a reference, a full or short ID, or "name@digest".
    pub fn inspect(&self, name: &str) -> Result<ImageDetails, ImageError> {
        query::inspect(self, name)
    }

    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, ImageError> {
        query::history(self, name)
    }

    /// The image ID ("sha256:<hex>") a name resolves to.
    pub fn resolve_id(&self, name: &str) -> Result<String, ImageError> {
        let r = self.store.read().map_err(internal)?;
        Ok(resolve(&r, name)?.0.id)
    }

    /// Tags `source` as `repo[:tag]` (tag defaults to latest).
    pub fn tag(&self, source: &str, repo: &str, tag: Option<&str>) -> Result<(), ImageError> {
        remove::tag(self, source, repo, tag)
    }

    /// `docker rmi`: untags a reference, or deletes an image by ID (Docker's rules).
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        no_prune: bool,
    ) -> Result<Vec<RemovedItem>, ImageError> {
        let _guard = self.lock();
        remove::remove_locked(self, name, force, !no_prune).map(|(items, _)| items)
    }

    /// Removes dangling images (all unused ones when `all`); returns what went and bytes freed.
    /// `labels`: `key` or `key=value` must match; prefixed with `!`, must not match.
    /// `docker image prune`: dangling images (or every unused one with `all`) with the labels,
    /// created before `until` (Unix nanoseconds) when given.
    pub fn prune(
        &self,
        all: bool,
        labels: &[String],
        until: Option<i64>,
    ) -> Result<(Vec<RemovedItem>, u64), ImageError> {
        remove::prune(self, all, labels, until)
    }

    pub fn disk_usage(&self) -> Result<ImagesDiskUsage, ImageError> {
        query::disk_usage(self)
    }
}

/// The "No such image" error for a name, worded as Docker does.
fn not_found(name: &str) -> ImageError {
    match Reference::parse_normalized(name) {
        Ok(r) if !name.starts_with("sha256:") => {
            ImageError::NotFound(r.with_default_tag().familiar_string())
        }
        _ => ImageError::NotFound(name.to_string()),
    }
}

/// Resolves a name as Docker's `GetImage` does: a full ID, then a reference (tag or digest),
/// then an unambiguous ID prefix.
pub(crate) fn resolve(r: &impl Reader, name: &str) -> Result<(ImageRecord, Resolved), ImageError> {
    let full_id = if let Some(hex) = name.strip_prefix("sha256:") {
        Digest::from_hex(hex).ok()
    } else {
        Digest::from_hex(name).ok()
    };
    if let Some(id) = full_id {
        return match r.image(id.as_str()).map_err(internal)? {
            Some(img) => Ok((img, Resolved::Id)),
            None => Err(ImageError::NotFound(name.to_string())),
        };
    }
    let parsed = Reference::parse_normalized(name);
    if let Ok(reference) = &parsed {
        let reference = reference.clone().with_default_tag();
        let key = reference.to_string();
        let hit = if reference.digest().is_some() {
            r.get::<estiba_store::TagRecord>(estiba_store::tables::DIGESTS, &key)
        } else {
            r.get::<estiba_store::TagRecord>(estiba_store::tables::TAGS, &key)
        }
        .map_err(internal)?;
        if let Some(t) = hit {
            if let Some(img) = r.image(&t.image_id).map_err(internal)? {
                return Ok((img, Resolved::Reference(reference)));
            }
        }
    }
    if is_image_id_prefix(name) {
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        let mut hits = r
            .scan::<ImageRecord>(estiba_store::tables::IMAGES, &format!("sha256:{hex}"))
            .map_err(internal)?;
        if hits.len() == 1 {
            if let Some((_, img)) = hits.pop() {
                return Ok((img, Resolved::Id));
            }
        }
        return Err(not_found(name));
    }
    match parsed {
        Ok(_) => Err(not_found(name)),
        Err(e) => Err(ImageError::InvalidReference(e.to_string())),
    }
}

/// (tag references, digest references) of one image.
pub(crate) type ImageRefs = (Vec<Reference>, Vec<Reference>);

/// Tag and digest references of every image, by image ID.
pub(crate) fn refs_by_image(r: &impl Reader) -> Result<BTreeMap<String, ImageRefs>, ImageError> {
    let mut out: BTreeMap<String, ImageRefs> = BTreeMap::new();
    for (k, id) in r.tags().map_err(internal)? {
        if let Ok(reference) = Reference::parse_canonical(&k) {
            out.entry(id).or_default().0.push(reference);
        }
    }
    for (k, id) in r.repo_digests().map_err(internal)? {
        if let Ok(reference) = Reference::parse_canonical(&k) {
            out.entry(id).or_default().1.push(reference);
        }
    }
    Ok(out)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn now_nano() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

#[cfg(test)]
mod tests;
