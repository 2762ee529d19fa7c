//! The build cache as `/system/df` and `/build/prune` see it: one `exec.cachemount` record per
//! cache mount directory (its bytes are what a prune reclaims) and one `regular` record per
//! step cache entry (size 0: its image is counted with the images, and stays after a prune, as
//! with Docker's classic builder). Each cache mount has a sidecar `<dir>.json` with its ID,
//! creation time and use count.

use std::path::Path;
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::{mounts, BuildError, Builder};

/// Largest sidecar read.
const MAX_SIDECAR_BYTES: u64 = 64 << 10;

/// One cache mount on disk.
struct CacheMount {
    /// The directory's name (sha256 of the ID).
    name: String,
    id: String,
    bytes: u64,
    created: String,
    last_used: String,
    uses: u64,
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn sidecar(dir: &Path) -> std::path::PathBuf {
    dir.with_extension("json")
}

fn read_sidecar(dir: &Path) -> Value {
    use std::io::Read;
    let mut text = Vec::new();
    let ok = std::fs::File::open(sidecar(dir))
        .and_then(|f| f.take(MAX_SIDECAR_BYTES).read_to_end(&mut text))
        .is_ok();
    if !ok {
        return json!({});
    }
    serde_json::from_slice(&text).unwrap_or_else(|_| json!({}))
}

/// Records one use of the cache mount at `dir` (best effort: the count is informative).
pub(crate) fn note_use(dir: &Path, id: &str) {
    let old = read_sidecar(dir);
    let now = rfc3339(SystemTime::now());
    let v = json!({
        "ID": id,
        "CreatedAt": old.get("CreatedAt").and_then(Value::as_str).unwrap_or(&now),
        "LastUsedAt": now,
        "UsageCount": old.get("UsageCount").and_then(Value::as_u64).unwrap_or(0) + 1,
    });
    let tmp = dir.with_extension(format!("json-{:08x}", rand::random::<u32>()));
    let written =
        std::fs::write(&tmp, v.to_string()).and_then(|()| std::fs::rename(&tmp, sidecar(dir)));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!("cache mount {id}: {e}");
    }
}

impl Builder {
    fn cache_mount_list(&self) -> Vec<CacheMount> {
        let Ok(dir) = std::fs::read_dir(self.cache_root()) else {
            return Vec::new();
        };
        let mut out: Vec<CacheMount> = dir
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                // Half-made directories (`<hex>.new-*`) are not caches yet.
                if name.contains('.') {
                    return None;
                }
                let path = e.path();
                let meta = read_sidecar(&path);
                let made = e.metadata().and_then(|m| m.modified()).ok()?;
                let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
                Some(CacheMount {
                    id: text("ID").unwrap_or_default(),
                    bytes: estiba_volume::disk_usage(&path),
                    created: text("CreatedAt").unwrap_or_else(|| rfc3339(made)),
                    last_used: text("LastUsedAt").unwrap_or_else(|| rfc3339(made)),
                    uses: meta.get("UsageCount").and_then(Value::as_u64).unwrap_or(0),
                    name,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Names of the cache mount directories in use right now.
    fn busy_dirs(&self) -> Result<Vec<String>, BuildError> {
        let busy = self
            .cache_locks
            .busy
            .lock()
            .map_err(|_| BuildError::Internal("cache mount lock poisoned".into()))?;
        Ok(busy
            .iter()
            .map(|id| mounts::cache_dir(Path::new(""), id).display().to_string())
            .collect())
    }

    /// `/system/df`'s `BuildCache` records.
    pub fn disk_usage(&self) -> Result<Vec<Value>, BuildError> {
        let busy = self.busy_dirs()?;
        let mut out: Vec<Value> = self
            .cache_mount_list()
            .into_iter()
            .map(|c| {
                json!({
                    "ID": c.name,
                    "Parents": null,
                    "Type": "exec.cachemount",
                    "Description": format!("cached mount id={}", c.id),
                    "InUse": busy.contains(&c.name),
                    "Shared": false,
                    "Size": c.bytes,
                    "CreatedAt": c.created,
                    "LastUsedAt": c.last_used,
                    "UsageCount": c.uses,
                })
            })
            .collect();
        for (key, image, created) in self.images.build_cache_entries()? {
            out.push(json!({
                "ID": key,
                "Parents": null,
                "Type": "regular",
                "Description": format!("step cache of {image}"),
                "InUse": false,
                "Shared": true,
                "Size": 0,
                "CreatedAt": created,
                "LastUsedAt": created,
                "UsageCount": 1,
            }));
        }
        Ok(out)
    }

    /// Removes every cache mount not in use; returns their names and the bytes freed.
    pub fn prune_cache_mounts(&self) -> Result<(Vec<String>, u64), BuildError> {
        let busy = self.busy_dirs()?;
        let mut removed = Vec::new();
        let mut bytes = 0;
        for c in self.cache_mount_list() {
            if busy.contains(&c.name) {
                continue;
            }
            let path = self.cache_root().join(&c.name);
            std::fs::remove_dir_all(&path)
                .map_err(|e| BuildError::Internal(format!("remove {}: {e}", path.display())))?;
            let _ = std::fs::remove_file(sidecar(&path));
            removed.push(c.name);
            bytes += c.bytes;
        }
        Ok((removed, bytes))
    }
}
