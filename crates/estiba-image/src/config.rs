//! Serde types for the image formats: the image config (Docker/OCI), OCI manifests and indexes,
//! and the `manifest.json` entries of a docker-archive.
//!
//! The config blob's bytes are kept exactly as received (the image ID is their sha256); these
//! types only read facts out of it, they are never re-serialized into a stored config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_DOCKER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const MEDIA_OCI_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const MEDIA_OCI_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const MEDIA_OCI_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// How a layer tar is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Recognises gzip and zstd by their magic bytes; anything else is taken as plain.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI layer media type for a layer stored with this compression.
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::None => MEDIA_OCI_LAYER,
            Compression::Gzip => MEDIA_OCI_LAYER_GZIP,
            Compression::Zstd => MEDIA_OCI_LAYER_ZSTD,
        }
    }
}

/// The compression a layer media type declares, or None for a media type that is not a layer.
pub fn layer_media_type(media_type: &str) -> Option<Compression> {
    match media_type {
        MEDIA_OCI_LAYER | MEDIA_DOCKER_LAYER | MEDIA_OCI_NONDIST => Some(Compression::None),
        MEDIA_OCI_LAYER_GZIP
        | MEDIA_DOCKER_LAYER_GZIP
        | MEDIA_DOCKER_FOREIGN_GZIP
        | MEDIA_OCI_NONDIST_GZIP => Some(Compression::Gzip),
        MEDIA_OCI_LAYER_ZSTD | MEDIA_OCI_NONDIST_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

/// Whether a media type names an image manifest (OCI or Docker v2).
pub fn is_manifest_media_type(media_type: &str) -> bool {
    matches!(media_type, MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST)
}

/// Whether a media type names an index / manifest list.
pub fn is_index_media_type(media_type: &str) -> bool {
    matches!(media_type, MEDIA_OCI_INDEX | MEDIA_DOCKER_LIST)
}

/// The facts read from an image config (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default)]
    pub history: Vec<History>,
    /// Docker's legacy parent image ID (images built locally).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// The runtime defaults of an image (`config` in the image config).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// One `history` entry of an image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

/// An OCI descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index (OCI) or manifest list (Docker); also `index.json` of an OCI layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// One entry of a docker-archive `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveManifestEntry {
    /// Path of the config inside the archive.
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars inside the archive, bottom first.
    #[serde(default)]
    pub layers: Vec<String>,
    /// Descriptors of foreign layers, keyed by diff ID (docker writes it for Windows images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_sources: Option<BTreeMap<String, Descriptor>>,
}

/// An RFC 3339 time as (Unix seconds, Unix nanoseconds); (0, 0) when absent or unparsable.
pub fn parse_created(created: Option<&str>) -> (i64, i64) {
    created
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| (t.timestamp(), t.timestamp_nanos_opt().unwrap_or(0)))
        .unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUSYBOX_CONFIG: &str = r#"{"architecture":"amd64","config":{"Hostname":"","Env":null,"Cmd":["sh"],"Labels":{"a":"b"}},"created":"2026-11-22T06:24:16.505831294Z","docker_version":"20.10.24","history":[{"created":"2026-11-22T06:24:16.505831294Z","comment":"Imported from -"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:be978a04b6839d0df50897006393e08cef3a3aee7b74b711d0f312fb62bdfbf1"]}}"#;

    #[test]
    fn reads_a_docker_config() {
        let c: ImageConfig = serde_json::from_str(BUSYBOX_CONFIG).unwrap();
        assert_eq!(c.os, "linux");
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        let cc = c.config.unwrap();
        assert_eq!(cc.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(cc.labels.unwrap().get("a").map(String::as_str), Some("b"));
        assert_eq!(c.history[0].comment.as_deref(), Some("Imported from -"));
        assert_eq!(
            parse_created(c.created.as_deref()),
            (1_795_328_656, 1_795_328_656_505_831_294)
        );
    }

    #[test]
    fn rejects_bad_digests_and_negative_sizes() {
        let bad = [
            r#"{"mediaType":"x","digest":"sha256:00","size":1}"#,
            r#"{"mediaType":"x","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-1}"#,
        ];
        for b in bad {
            assert!(serde_json::from_str::<Descriptor>(b).is_err(), "{b}");
        }
    }

    #[test]
    fn media_types_and_magic() {
        let cases = [
            (MEDIA_OCI_LAYER, Some(Compression::None)),
            (MEDIA_DOCKER_LAYER_GZIP, Some(Compression::Gzip)),
            (MEDIA_OCI_LAYER_ZSTD, Some(Compression::Zstd)),
            ("application/x-unknown", None),
            (MEDIA_OCI_CONFIG, None),
        ];
        for (mt, want) in cases {
            assert_eq!(layer_media_type(mt), want, "{mt}");
        }
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"usr/"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
    }

    #[test]
    fn reads_archive_manifest() {
        let m: Vec<ArchiveManifestEntry> = serde_json::from_str(
            r#"[{"Config":"a.json","RepoTags":["busybox:latest"],"Layers":["x/layer.tar"]}]"#,
        )
        .unwrap();
        assert_eq!(m[0].layers, vec!["x/layer.tar"]);
    }
}
