//! Image tarballs: reading what `docker load` accepts (docker-archive with `manifest.json`, OCI
//! layout with `index.json`, both optionally gzip/zstd compressed as a whole) and writing what
//! `docker save` produces since Docker 25 (OCI layout plus `manifest.json` and `repositories`).
//!
//! Reading streams: every file entry goes straight into the content store (hashed once while
//! written, verified against its `blobs/sha256/<hex>` name), only the small top-level JSON files
//! stay in memory. Images are resolved after the stream ends, because a docker-archive may put
//! `manifest.json` last. Every size, count and name length that comes from the archive is
//! bounded by [`LoadLimits`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};

use serde::de::DeserializeOwned;

use crate::config::{
    is_index_media_type, is_manifest_media_type, layer_media_type, ArchiveManifestEntry,
    Compression, Descriptor, ImageConfig, Index, Manifest, MEDIA_DOCKER_CONFIG, MEDIA_OCI_CONFIG,
    MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use crate::content::{ContentError, ContentStore, COPY_BUFFER_BYTES};
use crate::digest::Digest;

/// Annotation holding the full image name in an OCI index entry (containerd, Docker 25+).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// Annotation holding the tag (or a full reference) in an OCI index entry.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Bounds on everything an archive can make us do.
#[derive(Debug, Clone)]
pub struct LoadLimits {
    pub max_entries: usize,
    pub max_name_bytes: usize,
    /// manifest.json, index.json, configs, manifests.
    pub max_json_bytes: u64,
    pub max_layers_per_image: usize,
    pub max_images: usize,
    /// Any one file in the archive.
    pub max_blob_bytes: u64,
    /// The whole (decompressed) tarball.
    pub max_total_bytes: u64,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            max_entries: 100_000,
            max_name_bytes: 4096,
            max_json_bytes: 16 << 20,
            max_layers_per_image: 256,
            max_images: 10_000,
            max_blob_bytes: 64 << 30,
            max_total_bytes: 256 << 30,
        }
    }
}

/// What went wrong reading or writing an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive is broken or hostile (the message says how).
    #[error("{0}")]
    Invalid(String),
    /// Our side failed (disk full, I/O error in the content store).
    #[error("content store: {0}")]
    Content(#[source] ContentError),
    /// Writing the output stream failed (e.g. the client went away).
    #[error("write archive: {0}")]
    Write(#[source] io::Error),
}

fn invalid(msg: impl Into<String>) -> ArchiveError {
    ArchiveError::Invalid(msg.into())
}

/// Input problems become [`ArchiveError::Invalid`], store problems stay store problems.
fn from_content(name: &str, e: ContentError) -> ArchiveError {
    match e {
        ContentError::Read(e) => invalid(format!("unexpected end of archive reading {name}: {e}")),
        ContentError::DigestMismatch { expected, actual } => invalid(format!(
            "{name}: digest mismatch: expected {expected}, got {actual}"
        )),
        ContentError::SizeMismatch {
            expected_bytes,
            actual_bytes,
            ..
        } => invalid(format!(
            "{name}: size mismatch: expected {expected_bytes} bytes, got {actual_bytes}"
        )),
        ContentError::TooLarge { limit_bytes } => invalid(format!(
            "{name}: larger than the limit of {limit_bytes} bytes"
        )),
        ContentError::NotFound(d) => invalid(format!("{name}: blob {d} missing")),
        e @ ContentError::Io { .. } => ArchiveError::Content(e),
    }
}

/// A file of the archive, as stored in the content store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub digest: Digest,
    pub size_bytes: u64,
}

/// Everything a streamed archive left behind.
#[derive(Debug, Default)]
pub struct ArchiveContents {
    /// Regular files by normalized path.
    files: HashMap<String, StoredFile>,
    /// Symbolic and hard links by normalized path -> normalized target path.
    links: HashMap<String, String>,
    /// The small top-level metadata files, in memory.
    metadata: HashMap<String, Vec<u8>>,
    /// Blobs this archive added to the store (the caller deletes them if the load fails).
    pub new_blobs: Vec<Digest>,
}

const METADATA_FILES: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];

/// Normalizes an archive path: drops `./`, empty components and leading `/`; resolves `..`
/// lexically (never above the root). Archive paths are only map keys, never file system paths.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// A reader that fails once more than `limit` bytes came through.
struct LimitedReader<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.remaining {
            return Err(io::Error::other(format!(
                "archive larger than the limit of {} bytes",
                self.limit
            )));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Wraps `src` in a decompressor when it starts with gzip or zstd magic.
pub fn decompress<'a>(src: Box<dyn Read + 'a>) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(COPY_BUFFER_BYTES, src);
    let head = buffered.fill_buf()?;
    Ok(match Compression::detect(head) {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(buffered)?),
    })
}

fn read_bounded(r: &mut dyn Read, limit: u64, what: &str) -> Result<Vec<u8>, ArchiveError> {
    let mut buf = Vec::new();
    r.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| invalid(format!("unexpected end of archive reading {what}: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(invalid(format!(
            "{what} is larger than the limit of {limit} bytes"
        )));
    }
    Ok(buf)
}

/// The value of key `path` in a PAX extended header.
fn pax_path(data: &[u8]) -> Option<String> {
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp || len > rest.len() {
            return None;
        }
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(v) = record.strip_prefix(b"path=") {
            return String::from_utf8(v.to_vec()).ok();
        }
        rest = &rest[len..];
    }
    None
}

/// Streams a tarball into the content store. On error, blobs this call created are deleted.
pub fn read_archive(
    src: &mut dyn Read,
    content: &ContentStore,
    limits: &LoadLimits,
) -> Result<ArchiveContents, ArchiveError> {
    let mut out = ArchiveContents::default();
    match read_entries(src, content, limits, &mut out) {
        Ok(()) => Ok(out),
        Err(e) => {
            out.discard(content);
            Err(e)
        }
    }
}

fn read_entries(
    src: &mut dyn Read,
    content: &ContentStore,
    limits: &LoadLimits,
    out: &mut ArchiveContents,
) -> Result<(), ArchiveError> {
    let stream = decompress(Box::new(src))
        .map_err(|e| invalid(format!("unexpected end of archive: {e}")))?;
    let stream = LimitedReader {
        inner: stream,
        remaining: limits.max_total_bytes,
        limit: limits.max_total_bytes,
    };
    let mut archive = tar::Archive::new(stream);
    // Raw mode: we apply GNU long names and PAX paths ourselves, with a bound on their size.
    let entries = archive.entries().map_err(tar_error)?.raw(true);
    let mut long_name: Option<String> = None;
    let mut count = 0usize;
    let mut saw_entry = false;
    for entry in entries {
        let mut entry = entry.map_err(tar_error)?;
        saw_entry = true;
        count += 1;
        if count > limits.max_entries {
            return Err(invalid(format!(
                "archive has more than {} entries",
                limits.max_entries
            )));
        }
        let header = entry.header().clone();
        let kind = header.entry_type();
        let declared = header
            .entry_size()
            .map_err(|e| invalid(format!("invalid tar header: {e}")))?;
        if kind.is_gnu_longname() || kind.is_pax_local_extensions() {
            let max = if kind.is_pax_local_extensions() {
                64 * 1024
            } else {
                limits.max_name_bytes as u64
            };
            let data = read_bounded(&mut entry, max, "a long file name")?;
            long_name = if kind.is_gnu_longname() {
                let trimmed = data.strip_suffix(&[0]).unwrap_or(&data);
                Some(
                    String::from_utf8(trimmed.to_vec())
                        .map_err(|_| invalid("non-UTF-8 file name in archive"))?,
                )
            } else {
                pax_path(&data).or(long_name)
            };
            continue;
        }
        if kind.is_pax_global_extensions() || kind.is_gnu_longlink() {
            read_bounded(&mut entry, 64 * 1024, "an extension header")?;
            continue;
        }
        let raw_name = match long_name.take() {
            Some(n) => n,
            None => String::from_utf8(header.path_bytes().into_owned())
                .map_err(|_| invalid("non-UTF-8 file name in archive"))?,
        };
        if raw_name.len() > limits.max_name_bytes {
            return Err(invalid("file name in archive too long"));
        }
        let name = normalize(&raw_name);
        if kind.is_dir() {
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = header
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let target = if kind.is_symlink() {
                let base = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                normalize(&format!("{base}/{target}"))
            } else {
                normalize(&target)
            };
            out.links.insert(name, target);
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            continue;
        }
        if declared > limits.max_blob_bytes {
            return Err(invalid(format!(
                "{name}: size {declared} exceeds the limit of {} bytes",
                limits.max_blob_bytes
            )));
        }
        if METADATA_FILES.contains(&name.as_str()) {
            if declared > limits.max_json_bytes {
                return Err(invalid(format!(
                    "{name} is too large ({declared} bytes, limit {})",
                    limits.max_json_bytes
                )));
            }
            let data = read_bounded(&mut entry, limits.max_json_bytes, &name)?;
            if data.len() as u64 != declared {
                return Err(invalid(format!("unexpected end of archive reading {name}")));
            }
            out.metadata.insert(name, data);
            continue;
        }
        // Legacy v1 per-layer metadata: not needed, not stored.
        if name.ends_with("/json") || name.ends_with("/VERSION") {
            io::copy(&mut entry, &mut io::sink())
                .map_err(|e| invalid(format!("unexpected end of archive reading {name}: {e}")))?;
            continue;
        }
        let expected = name
            .strip_prefix("blobs/sha256/")
            .map(|hex| {
                Digest::from_hex(hex)
                    .map_err(|_| invalid(format!("{name}: not a sha256 blob name")))
            })
            .transpose()?;
        let got = content
            .ingest(
                &mut entry,
                expected.as_ref(),
                Some(declared),
                limits.max_blob_bytes,
            )
            .map_err(|e| match e {
                ContentError::SizeMismatch { .. } => {
                    invalid(format!("unexpected end of archive reading {name}"))
                }
                e => from_content(&name, e),
            })?;
        if got.created {
            out.new_blobs.push(got.digest.clone());
        }
        out.files.insert(
            name,
            StoredFile {
                digest: got.digest,
                size_bytes: got.size_bytes,
            },
        );
    }
    if !saw_entry {
        return Err(invalid("empty or invalid tar archive"));
    }
    Ok(())
}

impl ArchiveContents {
    /// Deletes the blobs this archive added (after a failed load).
    pub fn discard(&mut self, content: &ContentStore) {
        for d in self.new_blobs.drain(..) {
            if let Err(e) = content.delete(&d) {
                tracing::warn!("remove blob {d} of a failed load: {e}");
            }
        }
    }

    /// The stored file at `path`, following links (a bounded number of times).
    pub fn file(&self, path: &str) -> Option<&StoredFile> {
        let mut p = normalize(path);
        for _ in 0..16 {
            if let Some(f) = self.files.get(&p) {
                return Some(f);
            }
            p = self.links.get(&p)?.clone();
        }
        None
    }

    pub fn metadata(&self, name: &str) -> Option<&[u8]> {
        self.metadata.get(name).map(Vec::as_slice)
    }
}

/// A layer of an image about to be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerToLoad {
    /// The blob as stored (possibly compressed).
    pub blob: StoredFile,
    /// The declared media type (OCI), or the one matching the detected compression.
    pub media_type: String,
}

/// An image found in an archive, ready for the image service to unpack and record.
#[derive(Debug, Clone)]
pub struct ImageToLoad {
    /// The config blob; its digest is the image ID.
    pub config: StoredFile,
    pub config_bytes: Vec<u8>,
    pub parsed: ImageConfig,
    /// The manifest blob (OCI layouts), if any.
    pub manifest: Option<(StoredFile, String)>,
    pub layers: Vec<LayerToLoad>,
    /// References as written in the archive ("busybox:latest", "docker.io/library/x:1").
    pub repo_tags: Vec<String>,
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ArchiveError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("invalid {what}: {e}")))
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

/// Finds the images of a streamed archive: from `index.json` (OCI layout, validating media
/// types) and from `manifest.json` (docker-archive; it also contributes tags for images found
/// through the index).
pub fn resolve(
    contents: &ArchiveContents,
    content: &ContentStore,
    limits: &LoadLimits,
) -> Result<Vec<ImageToLoad>, ArchiveError> {
    let mut images: Vec<ImageToLoad> = Vec::new();
    let index = contents.metadata("index.json");
    let manifest = contents.metadata("manifest.json");
    if index.is_none() && manifest.is_none() {
        return Err(invalid(
            "invalid archive: neither manifest.json nor index.json found",
        ));
    }
    if let Some(bytes) = index {
        let index: Index = parse_json(bytes, "index.json")?;
        resolve_index(contents, content, limits, &index, 0, true, &mut images)?;
    }
    if let Some(bytes) = manifest {
        let entries: Vec<ArchiveManifestEntry> = parse_json(bytes, "manifest.json")?;
        if entries.len() > limits.max_images {
            return Err(invalid(format!(
                "manifest.json lists more than {} images",
                limits.max_images
            )));
        }
        for entry in entries {
            let config = contents
                .file(&entry.config)
                .ok_or_else(|| invalid(format!("config {} not found in archive", entry.config)))?
                .clone();
            let tags = entry.repo_tags.unwrap_or_default();
            if let Some(existing) = images.iter_mut().find(|i| i.config.digest == config.digest) {
                for t in tags {
                    if !existing.repo_tags.contains(&t) {
                        existing.repo_tags.push(t);
                    }
                }
                continue;
            }
            if entry.layers.len() > limits.max_layers_per_image {
                return Err(invalid(format!(
                    "image has {} layers, more than the limit of {}",
                    entry.layers.len(),
                    limits.max_layers_per_image
                )));
            }
            let mut layers = Vec::with_capacity(entry.layers.len());
            for path in &entry.layers {
                let blob = contents
                    .file(path)
                    .ok_or_else(|| invalid(format!("layer {path} not found in archive")))?
                    .clone();
                let media_type = detect_blob_compression(content, &blob.digest)?
                    .oci_layer_media_type()
                    .to_string();
                layers.push(LayerToLoad { blob, media_type });
            }
            let image = build_image(content, limits, config, None, layers, tags)?;
            images.push(image);
        }
    }
    if images.len() > limits.max_images {
        return Err(invalid(format!(
            "archive holds more than {} images",
            limits.max_images
        )));
    }
    Ok(images)
}

fn detect_blob_compression(
    content: &ContentStore,
    digest: &Digest,
) -> Result<Compression, ArchiveError> {
    let mut f = content.open_blob(digest).map_err(ArchiveError::Content)?;
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(ArchiveError::Content(ContentError::Io {
                    op: "read",
                    path: content.path(digest),
                    source: e,
                }))
            }
        }
    }
    Ok(Compression::detect(&head[..n]))
}

fn blob_in_archive<'a>(
    contents: &'a ArchiveContents,
    desc: &Descriptor,
) -> Result<&'a StoredFile, ArchiveError> {
    let path = format!("blobs/sha256/{}", desc.digest.hex());
    let f = contents
        .file(&path)
        .ok_or_else(|| invalid(format!("blob {} not found in archive", desc.digest)))?;
    if f.size_bytes != desc.size {
        return Err(invalid(format!(
            "blob {}: size {} does not match the descriptor's {}",
            desc.digest, f.size_bytes, desc.size
        )));
    }
    Ok(f)
}

fn read_json_blob<T: DeserializeOwned>(
    content: &ContentStore,
    limits: &LoadLimits,
    file: &StoredFile,
    what: &str,
) -> Result<(Vec<u8>, T), ArchiveError> {
    if file.size_bytes > limits.max_json_bytes {
        return Err(invalid(format!(
            "{what} {} is too large ({} bytes, limit {})",
            file.digest, file.size_bytes, limits.max_json_bytes
        )));
    }
    let bytes = content
        .read_bounded(&file.digest, limits.max_json_bytes)
        .map_err(|e| from_content(what, e))?;
    let parsed = parse_json(&bytes, what)?;
    Ok((bytes, parsed))
}

fn resolve_index(
    contents: &ArchiveContents,
    content: &ContentStore,
    limits: &LoadLimits,
    index: &Index,
    depth: usize,
    top: bool,
    images: &mut Vec<ImageToLoad>,
) -> Result<(), ArchiveError> {
    if depth > 4 {
        return Err(invalid("image indexes nested too deeply"));
    }
    if index.manifests.len() > limits.max_images {
        return Err(invalid(format!(
            "index lists more than {} manifests",
            limits.max_images
        )));
    }
    let mut candidates: Vec<&Descriptor> = index.manifests.iter().collect();
    if !top {
        // A multi-platform index nested inside: load this host's platform only.
        let arch = host_arch();
        candidates.retain(|d| match &d.platform {
            Some(p) => p.os == "linux" && p.architecture == arch,
            None => true,
        });
        candidates.truncate(1);
        if candidates.is_empty() {
            return Err(invalid(format!(
                "no image for platform linux/{arch} in the archive's index"
            )));
        }
    }
    for desc in candidates {
        let mut tags = Vec::new();
        if let Some(ann) = &desc.annotations {
            if let Some(n) = ann.get(ANNOTATION_IMAGE_NAME) {
                tags.push(n.clone());
            } else if let Some(n) = ann.get(ANNOTATION_REF_NAME) {
                // A bare tag ("latest") names no repository; only a full reference is usable.
                if n.contains('/') || n.contains(':') {
                    tags.push(n.clone());
                }
            }
        }
        if is_index_media_type(&desc.media_type) {
            let file = blob_in_archive(contents, desc)?;
            let (_, nested): (_, Index) = read_json_blob(content, limits, file, "image index")?;
            let before = images.len();
            resolve_index(contents, content, limits, &nested, depth + 1, false, images)?;
            for img in &mut images[before..] {
                img.repo_tags.extend(tags.iter().cloned());
            }
            continue;
        }
        if !is_manifest_media_type(&desc.media_type) {
            return Err(invalid(format!(
                "unsupported media type {} in index",
                desc.media_type
            )));
        }
        let mfile = blob_in_archive(contents, desc)?.clone();
        let (_, manifest): (_, Manifest) = read_json_blob(content, limits, &mfile, "manifest")?;
        if manifest.config.media_type != MEDIA_OCI_CONFIG
            && manifest.config.media_type != MEDIA_DOCKER_CONFIG
        {
            return Err(invalid(format!(
                "unsupported config media type {}",
                manifest.config.media_type
            )));
        }
        let config = blob_in_archive(contents, &manifest.config)?.clone();
        if let Some(existing) = images.iter_mut().find(|i| i.config.digest == config.digest) {
            for t in tags {
                if !existing.repo_tags.contains(&t) {
                    existing.repo_tags.push(t);
                }
            }
            continue;
        }
        if manifest.layers.len() > limits.max_layers_per_image {
            return Err(invalid(format!(
                "image has {} layers, more than the limit of {}",
                manifest.layers.len(),
                limits.max_layers_per_image
            )));
        }
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for l in &manifest.layers {
            if layer_media_type(&l.media_type).is_none() {
                return Err(invalid(format!(
                    "unsupported layer media type {}",
                    l.media_type
                )));
            }
            let blob = blob_in_archive(contents, l)?.clone();
            layers.push(LayerToLoad {
                blob,
                media_type: l.media_type.clone(),
            });
        }
        let media = desc.media_type.clone();
        images.push(build_image(
            content,
            limits,
            config,
            Some((mfile, media)),
            layers,
            tags,
        )?);
    }
    Ok(())
}

fn build_image(
    content: &ContentStore,
    limits: &LoadLimits,
    config: StoredFile,
    manifest: Option<(StoredFile, String)>,
    layers: Vec<LayerToLoad>,
    repo_tags: Vec<String>,
) -> Result<ImageToLoad, ArchiveError> {
    let (config_bytes, parsed): (_, ImageConfig) =
        read_json_blob(content, limits, &config, "image config")?;
    if parsed.rootfs.diff_ids.len() != layers.len() {
        return Err(invalid(format!(
            "image config {} lists {} layers but the archive has {}",
            config.digest,
            parsed.rootfs.diff_ids.len(),
            layers.len()
        )));
    }
    Ok(ImageToLoad {
        config,
        config_bytes,
        parsed,
        manifest,
        layers,
        repo_tags,
    })
}

/// One image to write with [`write_archive`].
#[derive(Debug, Clone)]
pub struct ImageToSave {
    pub config: Digest,
    pub config_size_bytes: u64,
    /// Layer blobs (digest, size, media type), bottom first.
    pub layers: Vec<(Digest, u64, String)>,
    /// Tags to record: (full reference "docker.io/library/busybox:latest",
    /// familiar name "busybox", tag "latest").
    pub tags: Vec<(String, String, String)>,
}

fn append(
    builder: &mut tar::Builder<&mut dyn Write>,
    path: &str,
    size: u64,
    data: &mut dyn Read,
) -> Result<(), ArchiveError> {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, path, data)
        .map_err(ArchiveError::Write)
}

fn append_dir(builder: &mut tar::Builder<&mut dyn Write>, path: &str) -> Result<(), ArchiveError> {
    let mut header = tar::Header::new_ustar();
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Directory);
    builder
        .append_data(&mut header, path, io::empty())
        .map_err(ArchiveError::Write)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ArchiveError> {
    serde_json::to_vec(v).map_err(|e| ArchiveError::Write(io::Error::other(e)))
}

/// Writes images as Docker 25+ does: an OCI layout (`oci-layout`, `index.json`,
/// `blobs/sha256/…`) plus `manifest.json` and `repositories` for older loaders.
/// `open` yields each blob (configs and layers) once, positioned at its start.
pub fn write_archive(
    out: &mut dyn Write,
    open: &mut dyn FnMut(&Digest) -> io::Result<std::fs::File>,
    images: &[ImageToSave],
) -> Result<(), ArchiveError> {
    let mut builder = tar::Builder::new(out);
    let mut written: BTreeSet<Digest> = BTreeSet::new();
    let mut index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_OCI_INDEX.to_string()),
        manifests: Vec::new(),
        annotations: None,
    };
    let mut manifest_json: Vec<ArchiveManifestEntry> = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    append_dir(&mut builder, "blobs")?;
    append_dir(&mut builder, "blobs/sha256")?;
    for image in images {
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: MEDIA_OCI_CONFIG.to_string(),
                digest: image.config.clone(),
                size: image.config_size_bytes,
                annotations: None,
                platform: None,
            },
            layers: image
                .layers
                .iter()
                .map(|(d, s, m)| Descriptor {
                    media_type: m.clone(),
                    digest: d.clone(),
                    size: *s,
                    annotations: None,
                    platform: None,
                })
                .collect(),
            annotations: None,
        };
        let manifest_bytes = to_json(&manifest)?;
        let manifest_digest = Digest::of_bytes(&manifest_bytes);
        let mut blobs: Vec<(Digest, u64)> = vec![(image.config.clone(), image.config_size_bytes)];
        blobs.extend(image.layers.iter().map(|(d, s, _)| (d.clone(), *s)));
        for (digest, size) in blobs {
            if !written.insert(digest.clone()) {
                continue;
            }
            let mut f = open(&digest).map_err(ArchiveError::Write)?;
            let on_disk = f.metadata().map_err(ArchiveError::Write)?.len();
            if on_disk != size {
                return Err(ArchiveError::Write(io::Error::other(format!(
                    "blob {digest} has {on_disk} bytes, expected {size}"
                ))));
            }
            let mut limited = (&mut f).take(size);
            append(
                &mut builder,
                &format!("blobs/sha256/{}", digest.hex()),
                size,
                &mut limited,
            )?;
        }
        if written.insert(manifest_digest.clone()) {
            append(
                &mut builder,
                &format!("blobs/sha256/{}", manifest_digest.hex()),
                manifest_bytes.len() as u64,
                &mut &manifest_bytes[..],
            )?;
        }
        let descriptor = |annotations| Descriptor {
            media_type: MEDIA_OCI_MANIFEST.to_string(),
            digest: manifest_digest.clone(),
            size: manifest_bytes.len() as u64,
            annotations,
            platform: None,
        };
        if image.tags.is_empty() {
            index.manifests.push(descriptor(None));
        }
        for (full, familiar, tag) in &image.tags {
            let mut ann = BTreeMap::new();
            ann.insert(ANNOTATION_IMAGE_NAME.to_string(), full.clone());
            ann.insert(ANNOTATION_REF_NAME.to_string(), tag.clone());
            index.manifests.push(descriptor(Some(ann)));
            if let Some((top, _, _)) = image.layers.last() {
                repositories
                    .entry(familiar.clone())
                    .or_default()
                    .insert(tag.clone(), top.hex().to_string());
            }
        }
        manifest_json.push(ArchiveManifestEntry {
            config: format!("blobs/sha256/{}", image.config.hex()),
            repo_tags: Some(
                image
                    .tags
                    .iter()
                    .map(|(_, name, tag)| format!("{name}:{tag}"))
                    .collect(),
            ),
            layers: image
                .layers
                .iter()
                .map(|(d, _, _)| format!("blobs/sha256/{}", d.hex()))
                .collect(),
            layer_sources: None,
        });
    }
    let files: [(&str, Vec<u8>); 4] = [
        ("index.json", to_json(&index)?),
        ("manifest.json", to_json(&manifest_json)?),
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("repositories", to_json(&repositories)?),
    ];
    for (name, bytes) in files {
        append(&mut builder, name, bytes.len() as u64, &mut &bytes[..])?;
    }
    builder.finish().map_err(ArchiveError::Write)?;
    let out = builder.into_inner().map_err(ArchiveError::Write)?;
    out.flush().map_err(ArchiveError::Write)
}

/// The tar crate quotes header bytes in some errors (a checksum field of a file that is not a
/// tar); a user gets readable text, never the raw bytes of their input.
fn tar_error(e: io::Error) -> ArchiveError {
    let text = e.to_string();
    if e.kind() == io::ErrorKind::UnexpectedEof {
        invalid("invalid tar archive: unexpected EOF")
    } else if text.len() > 200 || text.chars().any(|c| c.is_control() || c == '\u{fffd}') {
        invalid("invalid tar archive: invalid tar header")
    } else {
        invalid(format!("invalid tar archive: {text}"))
    }
}

#[cfg(test)]
mod tests;
