//! Test and sample images made offline from Debian's busybox-static, written as docker-archive
//! or OCI-layout tarballs; also the hostile tarballs the test suite feeds to `docker load`.
//!
//! Everything is deterministic (fixed mtimes, sorted entries, canonical JSON), so an image's ID is
//! the same on every run on the same machine: `busybox()` twice gives byte-identical layers and
//! the same config digest.

pub mod archive;
pub mod hostile;
pub mod layer;
pub mod recipes;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

pub use archive::{write_archive, ArchiveOptions, Compression, Format};
pub use layer::LayerBuilder;
pub use recipes::{big, busybox, busybox_layer, layered, many};

/// What went wrong while making a test image.
#[derive(Debug, thiserror::Error)]
pub enum TestImageError {
    #[error("read {path}: {source}")]
    ReadHost {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("tar entry {name}: {source}")]
    Tar {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tar entry name {0:?} is longer than 100 bytes")]
    NameTooLong(String),
    #[error("write archive: {0}")]
    Write(#[source] std::io::Error),
    #[error("unknown hostile case {0:?}")]
    UnknownCase(String),
    #[error("encode json: {0}")]
    Json(#[source] serde_json::Error),
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An image in memory: uncompressed layer tars (bottom first), its config blob, and the tags it
/// is saved under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestImage {
    /// Familiar references as `docker images` shows them: `busybox:latest`, `estiba/layered:1`.
    pub repo_tags: Vec<String>,
    /// Uncompressed layer tarballs, bottom first; their digests are the config's diff IDs.
    pub layers: Vec<Vec<u8>>,
    /// The image config JSON exactly as stored; its digest is the image ID.
    pub config: Vec<u8>,
}

impl TestImage {
    /// The image ID as Docker shows it in full: `sha256:<hex of the config>`.
    pub fn id(&self) -> String {
        sha256_digest(&self.config)
    }

    /// The 12-hex short ID `docker images` prints.
    pub fn short_id(&self) -> String {
        self.id()
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect()
    }

    /// `sha256:<hex>` of each uncompressed layer, bottom first (RootFS.Layers).
    pub fn diff_ids(&self) -> Vec<String> {
        self.layers.iter().map(|l| sha256_digest(l)).collect()
    }

    /// The same image saved under other tags (the ID does not change).
    pub fn with_tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.repo_tags = tags.into_iter().map(Into::into).collect();
        self
    }
}

/// The size Docker reports for an unpacked layer (`docker images` SIZE, inspect `Size`): every
/// non-directory counted by its lstat size once per inode, so regular files by content,
/// symlinks by target length, hardlinks and whiteouts (0:0 char devices) as nothing more.
/// A layer tar that does not parse counts as 0.
pub fn docker_layer_size(layer: &[u8]) -> u64 {
    let mut archive = tar::Archive::new(layer);
    let Ok(entries) = archive.entries() else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let header = entry.header();
        let name = entry.path_bytes();
        let base = name.rsplit(|b| *b == b'/').next().unwrap_or(&name);
        if base.starts_with(b".wh.") {
            continue;
        }
        match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                total += header.size().unwrap_or(0)
            }
            tar::EntryType::Symlink => {
                total += entry.link_name_bytes().map_or(0, |l| l.len() as u64)
            }
            _ => {}
        }
    }
    total
}

/// Docker's human size (`units.HumanSizeWithPrecision`): decimal units, `precision` significant
/// digits, trailing zeros dropped: `human_size(1_982_919, 3)` is "1.98MB", with 4 "1.983MB".
pub fn human_size(bytes: u64, precision: usize) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    // Go's %.Ng: N significant digits, no trailing zeros.
    let int_digits = if size < 1.0 {
        1
    } else {
        (size.log10().floor() as usize) + 1
    };
    let decimals = precision.saturating_sub(int_digits);
    let mut text = format!("{size:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_match_docker() {
        let cases = [
            (0, 3, "0B"),
            (999, 3, "999B"),
            (1_982_919, 3, "1.98MB"),
            (1_982_919, 4, "1.983MB"),
            (1_982_380, 4, "1.982MB"),
            (1_000_000, 3, "1MB"),
            (75_123_456, 3, "75.1MB"),
            (146, 3, "146B"),
            (42, 3, "42B"),
            (3_965_000, 4, "3.965MB"),
        ];
        for (bytes, precision, want) in cases {
            assert_eq!(human_size(bytes, precision), want, "{bytes} {precision}");
        }
    }

    #[test]
    fn layer_sizes_count_links_like_docker() {
        let mut layer = LayerBuilder::new();
        layer
            .file("a", 0o644, vec![0u8; 100])
            .hardlink("b", "a")
            .symlink("c", "target")
            .dir("d", 0o755)
            .whiteout("d/gone")
            .opaque("d");
        assert_eq!(docker_layer_size(&layer.finish().unwrap()), 106);
    }
}
