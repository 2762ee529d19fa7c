//! Image shapes: `GET /images/json`, `GET /images/{name}/json`, history, delete and prune.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::de::null_default;

/// One element of `GET /images/json` (and of `Images` in `/system/df`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    #[serde(default)]
    pub parent_id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub repo_tags: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub size: i64,
    /// -1 unless the client asked for shared sizes.
    #[serde(default)]
    pub shared_size: i64,
    /// Same as `Size`; sent only to clients below API 1.44, which dropped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    /// -1 unless computed.
    #[serde(default)]
    pub containers: i64,
}

/// The runtime defaults an image carries (`Config` of image inspect; Docker's
/// `DockerOCIImageConfig`): every field is omitted when empty, as dockerd 28 does.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "empty")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "empty")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "empty")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// dockerd 28 omits empty strings from an image's `Config`.
fn empty(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

/// `GraphDriver` of image inspect.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriverData {
    pub name: String,
    /// `LowerDir`, `MergedDir`, `UpperDir`, `WorkDir`.
    #[serde(default, deserialize_with = "null_default")]
    pub data: BTreeMap<String, String>,
}

/// `RootFS` of image inspect.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, deserialize_with = "null_default")]
    pub layers: Vec<String>,
}

/// `Metadata` of image inspect.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageMetadata {
    /// RFC 3339; Docker sends Go's zero time `0001-01-01T00:00:00Z` for a never-tagged image.
    #[serde(default)]
    pub last_tag_time: String,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub repo_tags: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub repo_digests: Vec<String>,
    /// Deprecated in 1.51 (legacy builder only), still sent.
    #[serde(default)]
    pub parent: String,
    #[serde(default)]
    pub comment: String,
    /// RFC 3339 with nanoseconds, as in the image config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Deprecated in 1.51, still sent.
    #[serde(default)]
    pub docker_version: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub config: Option<ImageConfig>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default)]
    pub size: i64,
    /// Sent only to clients below API 1.44.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_size: Option<i64>,
    #[serde(default)]
    pub graph_driver: GraphDriverData,
    #[serde(rename = "RootFS", default)]
    pub root_fs: RootFs,
    #[serde(default)]
    pub metadata: ImageMetadata,
}

/// One element of `GET /images/{name}/history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryResponseItem {
    /// The image ID, or `<missing>` for layers that are not an image of their own here.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    #[serde(default)]
    pub created_by: String,
    /// dockerd sends null for an entry without tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    pub size: i64,
    #[serde(default)]
    pub comment: String,
}

/// One element of the `DELETE /images/{name}` response: exactly one of the two is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageDeleteResponseItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

impl ImageDeleteResponseItem {
    pub fn untagged(reference: impl Into<String>) -> Self {
        ImageDeleteResponseItem {
            untagged: Some(reference.into()),
            deleted: None,
        }
    }

    pub fn deleted(id: impl Into<String>) -> Self {
        ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(id.into()),
        }
    }
}

/// `POST /images/prune`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImagePruneResponse {
    /// dockerd sends null when nothing was deleted.
    #[serde(default)]
    pub images_deleted: Option<Vec<ImageDeleteResponseItem>>,
    pub space_reclaimed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_dockerd_20_output() {
        // Captured from the reference dockerd 20.10: null Labels and RepoDigests are accepted.
        let raw = r#"{"Containers":-1,"Created":1795328656,"Id":"sha256:09b2","Labels":null,"ParentId":"","RepoDigests":null,"RepoTags":["busybox:latest"],"SharedSize":-1,"Size":1982321,"VirtualSize":1982321}"#;
        let s: ImageSummary = serde_json::from_str(raw).unwrap();
        assert_eq!(s.repo_tags, ["busybox:latest"]);
        assert!(s.labels.is_empty() && s.repo_digests.is_empty());
        assert_eq!(s.virtual_size, Some(1982321));
    }

    #[test]
    fn field_names_are_dockers() {
        let summary = ImageSummary {
            id: "sha256:1".into(),
            shared_size: -1,
            containers: -1,
            ..Default::default()
        };
        let v = serde_json::to_value(&summary).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Containers",
                "Created",
                "Id",
                "Labels",
                "ParentId",
                "RepoDigests",
                "RepoTags",
                "SharedSize",
                "Size"
            ]
        );
        let inspect = serde_json::to_value(ImageInspect::default()).unwrap();
        for key in ["RootFS", "GraphDriver", "Metadata", "DockerVersion", "Os"] {
            assert!(inspect.get(key).is_some(), "missing {key}");
        }
        let del = serde_json::to_string(&[
            ImageDeleteResponseItem::untagged("busybox:latest"),
            ImageDeleteResponseItem::deleted("sha256:1"),
        ])
        .unwrap();
        assert_eq!(
            del,
            r#"[{"Untagged":"busybox:latest"},{"Deleted":"sha256:1"}]"#
        );
        let prune = serde_json::to_string(&ImagePruneResponse::default()).unwrap();
        assert_eq!(prune, r#"{"ImagesDeleted":null,"SpaceReclaimed":0}"#);
    }
}
