//! `--cache-from` as Docker's classic builder does it: a step whose parent's history and
//! layers are a prefix of a cache-from image's, and whose `created_by` is that image's next
//! history entry, is served from the image: the image itself at its last entry, else an image
//! made of the parent plus that entry (and its layer, already in the store).

use estiba_store::{ImageRecord, Reader};
use serde_json::Value;

use super::{internal, now_nano, ImageError, ImageService};
use crate::config::parse_created;
use crate::digest::{chain_ids, Digest};

fn history(config: &Value) -> Vec<Value> {
    config["history"].as_array().cloned().unwrap_or_default()
}

fn diff_ids(config: &Value) -> Vec<String> {
    config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Docker's `isValidParent`: the parent's history and layers begin the target's.
fn valid_parent(parent: &Value, target: &Value) -> bool {
    let (ph, th) = (history(parent), history(target));
    let (pd, td) = (diff_ids(parent), diff_ids(target));
    if th.is_empty() {
        return false;
    }
    if ph.is_empty() && pd.is_empty() {
        return true;
    }
    ph.len() < th.len() && pd.len() <= td.len() && th.starts_with(&ph) && td.starts_with(&pd)
}

impl ImageService {
    /// The image `--cache-from` offers for the step `created_by` on `parent` with the
    /// resulting config `config`, if any of `sources` (image IDs) has it.
    pub fn cache_from_match(
        &self,
        parent: &str,
        sources: &[String],
        created_by: &str,
        config: &Value,
    ) -> Result<Option<String>, ImageError> {
        if sources.is_empty() {
            return Ok(None);
        }
        let (parent_id, pconf) = self.config_json(parent)?;
        let at = history(&pconf).len();
        for source in sources {
            let Ok((target_id, tconf)) = self.config_json(source) else {
                continue;
            };
            if !valid_parent(&pconf, &tconf) {
                continue;
            }
            let th = history(&tconf);
            if th[at]["created_by"].as_str() != Some(created_by) {
                continue;
            }
            if th.len() - 1 == at {
                return Ok(Some(target_id));
            }
            if let Some(id) = self.restore(&parent_id, &pconf, &tconf, at, config)? {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// An image of the parent plus the target's history entry `at` (and its layer).
    fn restore(
        &self,
        parent_id: &str,
        pconf: &Value,
        tconf: &Value,
        at: usize,
        config: &Value,
    ) -> Result<Option<String>, ImageError> {
        let th = history(tconf);
        let entry = th[at].clone();
        let mut diffs = diff_ids(pconf);
        if !entry["empty_layer"].as_bool().unwrap_or(false) {
            let index = th[..at]
                .iter()
                .filter(|h| !h["empty_layer"].as_bool().unwrap_or(false))
                .count();
            let Some(layer) = diff_ids(tconf).get(index).cloned() else {
                return Ok(None);
            };
            diffs.push(layer);
        }
        let digests: Vec<Digest> = diffs
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<_, _>>()
            .map_err(internal)?;
        let chains = chain_ids(&digests);
        let mut out = pconf.clone();
        let created = entry["created"].as_str().unwrap_or_default().to_string();
        let mut hist = history(pconf);
        hist.push(entry);
        if let Some(o) = out.as_object_mut() {
            o.insert("config".into(), config.clone());
            o.insert("history".into(), Value::Array(hist));
            o.insert("created".into(), Value::String(created.clone()));
            o.insert(
                "rootfs".into(),
                serde_json::json!({"type": "layers", "diff_ids": diffs}),
            );
            o.remove("container");
            match tconf.get("author") {
                Some(a) => o.insert("author".into(), a.clone()),
                None => o.remove("author"),
            };
        }
        let _guard = self.lock();
        let read = self.store.read().map_err(internal)?;
        let mut size_bytes = 0;
        for c in &chains {
            match read.layer(c.as_str()).map_err(internal)? {
                Some(l) => size_bytes += l.size_bytes,
                None => return Ok(None),
            }
        }
        let Some(parent) = read.image(parent_id).map_err(internal)? else {
            return Ok(None);
        };
        drop(read);
        let bytes = serde_json::to_vec(&out).map_err(internal)?;
        let stored = self.content.ingest_bytes(&bytes).map_err(internal)?;
        let id = stored.digest.to_string();
        let (created_s, created_nano) = parse_created(Some(&created));
        let record = ImageRecord {
            id: id.clone(),
            config_size_bytes: stored.size_bytes,
            manifest: None,
            diff_ids: diffs,
            chain_ids: chains.iter().map(Digest::to_string).collect(),
            created_rfc3339: created,
            created: created_s,
            created_nano,
            size_bytes,
            last_tag_time: None,
            parent: Some(parent.id.clone()),
            labels: super::commit::config_labels(config),
            os: parent.os.clone(),
            architecture: parent.architecture.clone(),
            variant: parent.variant.clone(),
            stored_nano: now_nano(),
        };
        let mut tx = self.store.write().map_err(internal)?;
        tx.put_image(&record).map_err(internal)?;
        tx.commit().map_err(internal)?;
        Ok(Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parents_must_be_a_prefix() {
        let h = |s: &str| json!({"created_by": s});
        let img =
            |hist: Vec<Value>, d: &[&str]| json!({"history": hist, "rootfs": {"diff_ids": d}});
        let parent = img(vec![h("a")], &["sha256:1"]);
        let target = img(vec![h("a"), h("b")], &["sha256:1", "sha256:2"]);
        assert!(valid_parent(&parent, &target));
        assert!(!valid_parent(&target, &parent));
        assert!(!valid_parent(&img(vec![h("x")], &["sha256:1"]), &target));
        assert!(!valid_parent(&img(vec![h("a")], &["sha256:9"]), &target));
        assert!(valid_parent(&img(vec![], &[]), &target));
        assert!(!valid_parent(&parent, &img(vec![], &[])));
    }
}
