//! Where blobs came from and went to (docker's distribution metadata, "v2metadata"): for each
//! layer blob the registry repositories known to hold it, so a push to another repository of
//! the same registry can mount it instead of uploading; and for an uncompressed layer the gzip
//! blob a push made of it, so the next push does not compress it again.
//!
//! One JSON file, `<data-root>/registry/provenance.json`, replaced atomically on each change;
//! bounded (repositories per blob, entries overall). Losing it only costs uploads.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Repositories remembered per blob (the most recent kept).
const MAX_REPOS_PER_BLOB: usize = 8;
/// Blobs remembered in all.
const MAX_BLOBS: usize = 10_000;
/// A provenance file larger than this is ignored (and rewritten).
const MAX_FILE_BYTES: u64 = 16 << 20;

/// A gzip blob a push made of an uncompressed layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Compressed {
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Data {
    /// Blob digest → "host:port/repo/path" repositories, oldest first.
    #[serde(default)]
    sources: BTreeMap<String, Vec<String>>,
    /// Uncompressed blob digest → its gzip form.
    #[serde(default)]
    compressed: BTreeMap<String, Compressed>,
}

/// The provenance store; without a directory it only remembers in memory.
pub(crate) struct Provenance {
    path: Option<PathBuf>,
    data: Mutex<Data>,
}

impl Provenance {
    pub(crate) fn open(dir: Option<PathBuf>) -> Provenance {
        let path = dir.map(|d| d.join("provenance.json"));
        let data = path
            .as_ref()
            .filter(|p| fs::metadata(p).is_ok_and(|m| m.len() <= MAX_FILE_BYTES))
            .and_then(|p| fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Provenance {
            path,
            data: Mutex::new(data),
        }
    }

    /// Repositories of `registry` ("127.0.0.1:5000") other than `repo` that hold `digest`,
    /// most recent first.
    pub(crate) fn sources(&self, digest: &str, registry: &str, repo: &str) -> Vec<String> {
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let prefix = format!("{registry}/");
        data.sources
            .get(digest)
            .map(|repos| {
                repos
                    .iter()
                    .rev()
                    .filter_map(|r| r.strip_prefix(&prefix))
                    .filter(|r| *r != repo)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Records that `registry/repo` holds each of `digests`.
    pub(crate) fn add_sources(&self, digests: &[String], registry: &str, repo: &str) {
        let full = format!("{registry}/{repo}");
        let mut data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        for d in digests {
            let repos = data.sources.entry(d.clone()).or_default();
            repos.retain(|r| *r != full);
            repos.push(full.clone());
            if repos.len() > MAX_REPOS_PER_BLOB {
                repos.remove(0);
            }
        }
        while data.sources.len() > MAX_BLOBS {
            let Some(first) = data.sources.keys().next().cloned() else {
                break;
            };
            data.sources.remove(&first);
        }
        self.save(&data);
    }

    pub(crate) fn compressed(&self, digest: &str) -> Option<Compressed> {
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        data.compressed.get(digest).cloned()
    }

    pub(crate) fn add_compressed(&self, digest: &str, gz: Compressed) {
        let mut data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        data.compressed.insert(digest.to_string(), gz);
        while data.compressed.len() > MAX_BLOBS {
            let Some(first) = data.compressed.keys().next().cloned() else {
                break;
            };
            data.compressed.remove(&first);
        }
        self.save(&data);
    }

    fn save(&self, data: &Data) {
        let Some(path) = &self.path else { return };
        let result = (|| -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("json.tmp");
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(data).map_err(std::io::Error::other)?)?;
            fs::rename(&tmp, path)
        })();
        if let Err(e) = result {
            tracing::warn!("save {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_per_registry_most_recent_first_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let p = Provenance::open(Some(dir.path().to_path_buf()));
        let d = "sha256:aa".to_string();
        p.add_sources(std::slice::from_ref(&d), "r:1", "a");
        p.add_sources(std::slice::from_ref(&d), "r:1", "b");
        p.add_sources(std::slice::from_ref(&d), "other:2", "c");
        assert_eq!(p.sources(&d, "r:1", "x"), vec!["b", "a"]);
        assert_eq!(p.sources(&d, "r:1", "b"), vec!["a"]);
        let again = Provenance::open(Some(dir.path().to_path_buf()));
        assert_eq!(again.sources(&d, "other:2", "x"), vec!["c"]);
        for i in 0..20 {
            p.add_sources(std::slice::from_ref(&d), "r:1", &format!("n{i}"));
        }
        assert_eq!(p.sources(&d, "r:1", "x").len(), MAX_REPOS_PER_BLOB);
    }
}
