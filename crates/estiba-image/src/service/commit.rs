//! `docker commit`: a container's diff layer on top of its image becomes a new image.
//!
//! The same path as a load, one layer long: the layer tar is ingested into the content store
//! (its digest is its diff ID: it is uncompressed), unpacked once as the snapshot of its chain
//! ID, and the new config (the parent's, with the diff ID and a history entry appended) is
//! written as a blob; the layer and image records commit in one transaction.

use std::io::Read;

use estiba_store::{BlobRef, ImageRecord, LayerRecord};

use super::load::snapshot_error;
use estiba_store::Reader;

use super::{internal, now_nano, resolve, ImageError, ImageService};
use crate::config::{parse_created, MEDIA_DOCKER_LAYER};
use crate::digest::{chain_ids, Digest};
use crate::reference::Reference;

/// What a commit writes besides the layer.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// The image the container was created from ("sha256:<hex>").
    pub base_image_id: String,
    /// The new image's `config` object (Docker's container config in image form).
    pub config: serde_json::Value,
    /// The container's ID, recorded as the config's `container`.
    pub container_id: String,
    pub author: String,
    pub comment: String,
    /// The history entry's `created_by` (the container's command).
    pub created_by: String,
    /// `repo` and optional tag to give the new image.
    pub repo: Option<String>,
    pub tag: Option<String>,
    /// The image's and history entry's `created` (RFC 3339); `None` for now. A build with
    /// SOURCE_DATE_EPOCH sets it so that two builds give the same config.
    pub created: Option<String>,
}

/// Largest layer a commit accepts.
const MAX_COMMIT_LAYER_BYTES: u64 = 1 << 40;
/// Largest base image config read.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

impl ImageService {
    /// Creates an image from `base` plus the layer tar `layer`; returns the new image ID.
    /// The tag is given after the image exists (a bad reference is refused before anything).
    pub fn commit(&self, req: &CommitRequest, layer: &mut dyn Read) -> Result<String, ImageError> {
        if let Some(repo) = req.repo.as_deref().filter(|r| !r.is_empty()) {
            let r = Reference::parse_normalized(repo)
                .map_err(|e| ImageError::InvalidReference(e.to_string()))?;
            if let Some(t) = req.tag.as_deref().filter(|t| !t.is_empty()) {
                r.with_tag(t)
                    .map_err(|e| ImageError::InvalidReference(e.to_string()))?;
            }
        }
        let id = self.commit_locked(req, layer)?;
        if let Some(repo) = req.repo.as_deref().filter(|r| !r.is_empty()) {
            self.tag(&id, repo, req.tag.as_deref())?;
        }
        Ok(id)
    }

    fn commit_locked(
        &self,
        req: &CommitRequest,
        layer: &mut dyn Read,
    ) -> Result<String, ImageError> {
        let _guard = self.lock();
        let read = self.store.read().map_err(internal)?;
        let (base, _) = resolve(&read, &req.base_image_id)?;
        drop(read);
        let base_digest = Digest::parse(&base.id).map_err(internal)?;
        let raw = self
            .content
            .read_bounded(&base_digest, MAX_CONFIG_BYTES)
            .map_err(internal)?;
        let mut config: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|e| internal(format!("image config {}: {e}", base.id)))?;

        let blob = self
            .content
            .ingest(layer, None, None, MAX_COMMIT_LAYER_BYTES)
            .map_err(internal)?;
        let diff_id = blob.digest.clone();
        let empty = diff_id == Digest::of_bytes(&[0u8; 1024]);
        let mut diff_ids: Vec<Digest> = base
            .diff_ids
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<_, _>>()
            .map_err(internal)?;
        let parent_chain = chain_ids(&diff_ids).last().cloned();
        let mut new_layer = None;
        if !empty {
            diff_ids.push(diff_id.clone());
            let chain = chain_ids(&diff_ids)
                .last()
                .cloned()
                .ok_or_else(|| internal("no chain ID"))?;
            let exists = self.store.read().map_err(internal)?.layer(chain.as_str());
            let known = exists.map_err(internal)?;
            let size_bytes = match known {
                Some(l) if self.snapshots.exists(chain.hex()) => l.size_bytes,
                _ => {
                    if self.snapshots.exists(chain.hex()) {
                        self.snapshots.remove(chain.hex()).map_err(internal)?;
                    }
                    let mut file = self.content.open_blob(&diff_id).map_err(internal)?;
                    self.snapshots
                        .apply_layer(
                            chain.hex(),
                            parent_chain.as_ref().map(Digest::hex),
                            &mut file,
                        )
                        .map_err(|e| snapshot_error(0, e))?
                        .size_bytes
                }
            };
            new_layer = Some(LayerRecord {
                chain_id: chain.to_string(),
                diff_id: diff_id.to_string(),
                parent: parent_chain.as_ref().map(Digest::to_string),
                size_bytes,
                blob: Some(BlobRef {
                    digest: diff_id.to_string(),
                    size_bytes: blob.size_bytes,
                    media_type: MEDIA_DOCKER_LAYER.to_string(),
                }),
            });
        }

        let created = req.created.clone().unwrap_or_else(|| {
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        });
        edit_config(&mut config, req, &created, &diff_ids, empty);
        let bytes = serde_json::to_vec(&config).map_err(internal)?;
        let stored = self.content.ingest_bytes(&bytes).map_err(internal)?;
        let id = stored.digest.to_string();
        let chains = chain_ids(&diff_ids);
        let (created_s, created_nano) = parse_created(Some(&created));
        let record = ImageRecord {
            id: id.clone(),
            config_size_bytes: stored.size_bytes,
            manifest: None,
            diff_ids: diff_ids.iter().map(Digest::to_string).collect(),
            chain_ids: chains.iter().map(Digest::to_string).collect(),
            created_rfc3339: created,
            created: created_s,
            created_nano,
            size_bytes: base.size_bytes + new_layer.as_ref().map_or(0, |l| l.size_bytes),
            last_tag_time: None,
            parent: Some(base.id.clone()),
            labels: config_labels(&config["config"]),
            os: base.os.clone(),
            architecture: base.architecture.clone(),
            variant: base.variant.clone(),
            stored_nano: now_nano(),
        };
        let mut tx = self.store.write().map_err(internal)?;
        if let Some(l) = &new_layer {
            tx.put_layer(l).map_err(internal)?;
        }
        tx.put_image(&record).map_err(internal)?;
        tx.commit().map_err(internal)?;
        Ok(id)
    }
}

/// The parent's config with the commit's config, author, comment, layer and history.
fn edit_config(
    config: &mut serde_json::Value,
    req: &CommitRequest,
    created: &str,
    diff_ids: &[Digest],
    empty_layer: bool,
) {
    use serde_json::{json, Value};
    let Some(obj) = config.as_object_mut() else {
        return;
    };
    obj.insert("config".into(), req.config.clone());
    obj.insert("container".into(), json!(req.container_id));
    obj.insert("created".into(), json!(created));
    if req.author.is_empty() {
        obj.remove("author");
    } else {
        obj.insert("author".into(), json!(req.author));
    }
    if req.comment.is_empty() {
        obj.remove("comment");
    } else {
        obj.insert("comment".into(), json!(req.comment));
    }
    obj.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": diff_ids.iter().map(Digest::to_string).collect::<Vec<_>>()}),
    );
    let mut entry = serde_json::Map::new();
    entry.insert("created".into(), json!(created));
    if !req.author.is_empty() {
        entry.insert("author".into(), json!(req.author));
    }
    entry.insert("created_by".into(), json!(req.created_by));
    if !req.comment.is_empty() {
        entry.insert("comment".into(), json!(req.comment));
    }
    if empty_layer {
        entry.insert("empty_layer".into(), json!(true));
    }
    match obj.get_mut("history") {
        Some(Value::Array(h)) => h.push(Value::Object(entry)),
        _ => {
            obj.insert("history".into(), Value::Array(vec![Value::Object(entry)]));
        }
    }
}

/// The `Labels` of a container config (the image config's `config`), as the record keeps them.
pub(super) fn config_labels(
    config: &serde_json::Value,
) -> std::collections::BTreeMap<String, String> {
    config["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_gets_layer_history_and_author() {
        let mut config = serde_json::json!({
            "architecture": "amd64",
            "config": {"Cmd": ["sh"]},
            "created": "2020-01-01T00:00:00Z",
            "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "ADD x"}],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
        });
        let req = CommitRequest {
            config: serde_json::json!({"Cmd": ["echo", "x"]}),
            container_id: "c1".into(),
            author: "me".into(),
            comment: "".into(),
            created_by: "sh -c touch /x".into(),
            ..Default::default()
        };
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        edit_config(
            &mut config,
            &req,
            "2026-01-01T00:00:00Z",
            &[a.clone(), b.clone()],
            false,
        );
        assert_eq!(config["config"]["Cmd"][1], "x");
        assert_eq!(config["author"], "me");
        assert!(config.get("comment").is_none());
        assert_eq!(config["rootfs"]["diff_ids"][1], b.to_string());
        assert_eq!(config["history"][1]["created_by"], "sh -c touch /x");
        assert_eq!(config["history"][1]["author"], "me");
        assert_eq!(config["container"], "c1");
        assert_eq!(config["architecture"], "amd64");
    }
}
