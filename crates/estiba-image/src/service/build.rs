//! What the builder needs from the image store: an image's config as JSON, and the build
//! cache (instruction key -> image ID) in the `build_cache` table.

use std::path::Path;

use estiba_store::{tables, ImageRecord, Reader, Table, TagRecord};

use super::{internal, now_nano, resolve, ImageError, ImageService};
use crate::digest::Digest;
use crate::reference::Reference;

/// The `build_cache` table: cache key (a SHA-256 of parent, instruction and inputs) -> image ID.
const BUILD_CACHE: Table = Table::new("build_cache");
/// Largest image config read.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

impl ImageService {
    /// The full config blob of an image (by name or ID) and its ID.
    pub fn config_json(&self, name: &str) -> Result<(String, serde_json::Value), ImageError> {
        let read = self.store.read().map_err(internal)?;
        let (record, _) = resolve(&read, name)?;
        drop(read);
        let digest = Digest::parse(&record.id).map_err(internal)?;
        let raw = self
            .content
            .read_bounded(&digest, MAX_CONFIG_BYTES)
            .map_err(internal)?;
        let config = serde_json::from_slice(&raw)
            .map_err(|e| internal(format!("image config {}: {e}", record.id)))?;
        Ok((record.id, config))
    }

    /// Publishes the `tag` event and returns true when `repo[:tag]` already names the image
    /// `id`: a rebuild that gives the same image re-tags it without a write transaction (and
    /// its fsync); `LastTagTime` keeps the first tagging's time. False means: tag it with
    /// [`ImageService::tag`] (which also reports a bad reference).
    pub fn tag_is_current(
        &self,
        id: &str,
        repo: &str,
        tag: Option<&str>,
    ) -> Result<bool, ImageError> {
        let Ok(named) = Reference::parse_normalized(repo) else {
            return Ok(false);
        };
        let target = match tag.filter(|t| !t.is_empty()) {
            Some(t) => match named.with_tag(t) {
                Ok(r) => r,
                Err(_) => return Ok(false),
            },
            None => named.with_default_tag(),
        };
        if target.digest().is_some() || target.familiar_name() == "sha256" {
            return Ok(false);
        }
        let read = self.store.read().map_err(internal)?;
        let current: Option<TagRecord> = read
            .get(tables::TAGS, &target.to_string())
            .map_err(internal)?;
        if current.is_none_or(|t| t.image_id != id) {
            return Ok(false);
        }
        self.publish("tag", id, &target.familiar_string());
        Ok(true)
    }

    /// The image a cache key maps to, if that image still exists.
    pub fn build_cache_get(&self, key: &str) -> Result<Option<String>, ImageError> {
        let read = self.store.read().map_err(internal)?;
        let Some(id) = read.get::<String>(BUILD_CACHE, key).map_err(internal)? else {
            return Ok(None);
        };
        Ok(read.image(&id).map_err(internal)?.map(|_| id))
    }

    /// Whether `path` (absolute) exists in any layer of the image (whiteouts not consulted: a
    /// deleted path counts as present, which only makes the builder skip creating it).
    pub fn image_has_path(&self, id: &str, path: &str) -> Result<bool, ImageError> {
        let read = self.store.read().map_err(internal)?;
        let (record, _) = resolve(&read, id)?;
        let Some(top) = record.chain_ids.last() else {
            return Ok(false);
        };
        let top = Digest::parse(top).map_err(internal)?;
        let dirs = self.snapshots.dirs(top.hex()).map_err(internal)?;
        let rel = path.trim_start_matches('/');
        Ok(std::iter::once(&dirs.upper)
            .chain(dirs.lower.iter())
            .any(|d| std::fs::symlink_metadata(d.join(rel)).is_ok()))
    }

    /// The content of the regular file `path` (absolute) in the image, from the topmost layer
    /// that has it (a symlink or other type there reads as absent); at most `max` bytes.
    pub fn read_image_file(
        &self,
        id: &str,
        path: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, ImageError> {
        use std::io::Read;
        let read = self.store.read().map_err(internal)?;
        let (record, _) = resolve(&read, id)?;
        drop(read);
        let Some(top) = record.chain_ids.last() else {
            return Ok(None);
        };
        let top = Digest::parse(top).map_err(internal)?;
        let dirs = self.snapshots.dirs(top.hex()).map_err(internal)?;
        let rel = path.trim_start_matches('/');
        for d in std::iter::once(&dirs.upper).chain(dirs.lower.iter()) {
            // A symlink on the way would be followed on the host: such a path reads as absent.
            let mut dir = d.clone();
            let parents: Vec<&str> = rel.split('/').collect();
            let mut linked = false;
            for part in &parents[..parents.len().saturating_sub(1)] {
                dir.push(part);
                linked |= std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink());
            }
            if linked {
                return Ok(None);
            }
            let p = d.join(rel);
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if !meta.is_file() {
                return Ok(None);
            }
            let mut out = Vec::new();
            std::fs::File::open(&p)
                .and_then(|f| f.take(max).read_to_end(&mut out))
                .map_err(internal)?;
            return Ok(Some(out));
        }
        Ok(None)
    }

    /// Runs `f` on the image's root filesystem, mounted read-write (changes are thrown away)
    /// at `target` (an empty directory) under the temporary snapshot `key`.
    pub fn with_rootfs<T>(
        &self,
        id: &str,
        key: &str,
        target: &Path,
        f: impl FnOnce(&Path) -> T,
    ) -> Result<T, ImageError> {
        let read = self.store.read().map_err(internal)?;
        let (record, _) = resolve(&read, id)?;
        drop(read);
        let top = match record.chain_ids.last() {
            Some(c) => Some(Digest::parse(c).map_err(internal)?),
            None => None,
        };
        self.snapshots
            .prepare(key, top.as_ref().map(Digest::hex))
            .map_err(internal)?;
        let mounted = self.snapshots.mount(key, target);
        let result = mounted.as_ref().ok().map(|()| f(target));
        if mounted.is_ok() {
            if let Err(e) = self.snapshots.unmount(target) {
                tracing::warn!("unmount {}: {e}", target.display());
            }
        }
        if let Err(e) = self.snapshots.remove(key) {
            tracing::warn!("remove snapshot {key}: {e}");
        }
        mounted.map_err(internal)?;
        result.ok_or_else(|| internal("rootfs not mounted"))
    }

    /// The empty image a `FROM scratch` stage starts from (no layers, an empty config), made
    /// once; its children are the stage's images, so listings treat it as intermediate.
    pub fn scratch_image(&self) -> Result<String, ImageError> {
        let config = serde_json::json!({
            "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            "config": {},
            "created": "1970-01-01T00:00:00Z",
            "history": [],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        let bytes = serde_json::to_vec(&config).map_err(internal)?;
        let _guard = self.lock();
        let stored = self.content.ingest_bytes(&bytes).map_err(internal)?;
        let id = stored.digest.to_string();
        if self
            .store
            .read()
            .map_err(internal)?
            .image(&id)
            .map_err(internal)?
            .is_some()
        {
            return Ok(id);
        }
        let record = ImageRecord {
            id: id.clone(),
            config_size_bytes: stored.size_bytes,
            manifest: None,
            diff_ids: Vec::new(),
            chain_ids: Vec::new(),
            created_rfc3339: "1970-01-01T00:00:00Z".into(),
            created: 0,
            created_nano: 0,
            size_bytes: 0,
            last_tag_time: None,
            parent: None,
            labels: Default::default(),
            os: "linux".into(),
            architecture: config["architecture"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            variant: None,
            stored_nano: now_nano(),
        };
        let mut tx = self.store.write().map_err(internal)?;
        tx.put_image(&record).map_err(internal)?;
        tx.commit().map_err(internal)?;
        Ok(id)
    }

    /// Forgets every cache entry (the images stay: dangling ones go with `image prune`, as
    /// with Docker's classic builder, whose cache is the image store); returns the keys.
    pub fn build_cache_prune(&self) -> Result<Vec<String>, ImageError> {
        let mut tx = self.store.write().map_err(internal)?;
        let entries: Vec<(String, String)> = tx.scan(BUILD_CACHE, "").map_err(internal)?;
        for (key, _) in &entries {
            tx.remove(BUILD_CACHE, key).map_err(internal)?;
        }
        tx.commit().map_err(internal)?;
        Ok(entries.into_iter().map(|(k, _)| k).collect())
    }

    /// Every cache entry whose image still exists: (key, image ID, the image's `created`).
    pub fn build_cache_entries(&self) -> Result<Vec<(String, String, String)>, ImageError> {
        let read = self.store.read().map_err(internal)?;
        let entries: Vec<(String, String)> = read.scan(BUILD_CACHE, "").map_err(internal)?;
        let mut out = Vec::new();
        for (key, id) in entries {
            if let Some(image) = read.image(&id).map_err(internal)? {
                out.push((key, id, image.created_rfc3339));
            }
        }
        Ok(out)
    }

    /// Records that `key` produced the image `id`.
    pub fn build_cache_put(&self, key: &str, id: &str) -> Result<(), ImageError> {
        let mut tx = self.store.write().map_err(internal)?;
        tx.put(BUILD_CACHE, key, id).map_err(internal)?;
        tx.commit().map_err(internal)
    }
}
