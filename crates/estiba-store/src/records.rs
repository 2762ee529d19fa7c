//! Record types stored as JSON values in the metadata tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One image: everything `docker images` needs without touching any other file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// "sha256:<hex>" of the config blob; also the config blob's digest.
    pub id: String,
    /// Size of the config blob in bytes.
    pub config_size_bytes: u64,
    /// The manifest blob this image was loaded or pulled with, if it had one.
    #[serde(default)]
    pub manifest: Option<BlobRef>,
    /// Layer diff IDs, bottom first ("sha256:<hex>").
    pub diff_ids: Vec<String>,
    /// Chain IDs, bottom first; the last one names the image's top layer.
    pub chain_ids: Vec<String>,
    /// Config `created`, exactly as written there (RFC 3339), empty if absent.
    #[serde(default)]
    pub created_rfc3339: String,
    /// Config `created` as Unix seconds (0 if absent or unparsable).
    pub created: i64,
    /// Config `created` as Unix nanoseconds, for before/since ordering.
    #[serde(default)]
    pub created_nano: i64,
    /// Sum of the unpacked layer sizes.
    pub size_bytes: u64,
    /// When the image was last tagged (RFC 3339), None if never.
    #[serde(default)]
    pub last_tag_time: Option<String>,
    /// Parent image ID (images built locally), None otherwise.
    #[serde(default)]
    pub parent: Option<String>,
    /// `config.Labels` of the image config.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
    /// When this record was written (Unix nanoseconds).
    #[serde(default)]
    pub stored_nano: i64,
}

/// A blob in the content store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// "sha256:<hex>".
    pub digest: String,
    pub size_bytes: u64,
    pub media_type: String,
}

/// The value of the tags and repo-digest tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    pub image_id: String,
}

/// One unpacked layer, shared by every image whose chain contains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// "sha256:<hex>"; the snapshot key is the hex part.
    pub chain_id: String,
    /// "sha256:<hex>" of the uncompressed layer tar.
    pub diff_id: String,
    /// Chain ID of the layer below, None for a base layer.
    #[serde(default)]
    pub parent: Option<String>,
    /// Bytes of file content unpacked (Docker's layer size).
    pub size_bytes: u64,
    /// The layer tar as stored in the content store (possibly compressed), if kept.
    #[serde(default)]
    pub blob: Option<BlobRef>,
}
