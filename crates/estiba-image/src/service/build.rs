//! What the builder needs from the image store: an image's config as JSON, and the build
//! cache (instruction key -> image ID) in the `build_cache` table.

use std::path::Path;

use estiba_store::{Reader, Table};

use super::{internal, resolve, ImageError, ImageService};
use crate::digest::Digest;

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

    /// Records that `key` produced the image `id`.
    pub fn build_cache_put(&self, key: &str, id: &str) -> Result<(), ImageError> {
        let mut tx = self.store.write().map_err(internal)?;
        tx.put(BUILD_CACHE, key, id).map_err(internal)?;
        tx.commit().map_err(internal)
    }
}
