//! The image-store side of `docker pull` and `docker push`: which layers exist, verified blob
//! ingest, unpacking a stored layer blob, one commit of config + manifest + tags; and reading an
//! image back as blobs for a push.

use std::io::{BufRead, BufReader, Read};

use estiba_store::{BlobRef, ImageRecord, LayerRecord, Reader};

use super::load::snapshot_error;
use super::{internal, now_nano, resolve, ImageError, ImageService};
use crate::config::{parse_created, Compression, ImageConfig};
use crate::content::{ContentError, Ingested, COPY_BUFFER_BYTES};
use crate::digest::{chain_ids, Digest};
use crate::reference::Reference;

/// A layer blob as a manifest describes it.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    pub digest: Digest,
    pub size_bytes: u64,
    pub media_type: String,
}

/// A layer unpacked by [`ImageService::unpack_pulled_layer`], not yet recorded.
#[derive(Debug, Clone)]
pub struct PulledLayer {
    record: LayerRecord,
}

/// Everything [`ImageService::commit_pull`] records in one transaction.
pub struct PullCommit<'a> {
    pub config: &'a [u8],
    pub config_digest: &'a Digest,
    pub manifest_digest: &'a Digest,
    pub manifest_size_bytes: u64,
    pub manifest_media_type: &'a str,
    /// Newly unpacked layers (layers that existed already are not repeated).
    pub layers: Vec<PulledLayer>,
    /// The tag to point at the image (none for a pull by digest).
    pub tag: Option<&'a Reference>,
    /// The repository reference ("127.0.0.1:5000/x") the digest is recorded under.
    pub repository: &'a Reference,
}

/// The result of a committed pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullOutcome {
    pub image_id: String,
    /// False when the tag already pointed at this image ("Image is up to date").
    pub changed: bool,
}

/// An image as blobs, for a push.
#[derive(Debug, Clone)]
pub struct PushSource {
    pub image_id: Digest,
    pub config_size_bytes: u64,
    pub layers: Vec<LayerBlob>,
}

fn content_error(e: ContentError) -> ImageError {
    match e {
        e @ (ContentError::DigestMismatch { .. }
        | ContentError::SizeMismatch { .. }
        | ContentError::TooLarge { .. }
        | ContentError::Read(_)) => ImageError::InvalidArchive(e.to_string()),
        e => internal(e),
    }
}

impl ImageService {
    /// Whether the layer with chain ID `chain` is recorded and unpacked.
    pub fn has_layer(&self, chain: &Digest) -> Result<bool, ImageError> {
        let r = self.store.read().map_err(internal)?;
        Ok(r.layer(chain.as_str()).map_err(internal)?.is_some()
            && self.snapshots.exists(chain.hex()))
    }

    /// The tag's image ID, if the tag exists.
    pub fn tagged_image(&self, reference: &Reference) -> Result<Option<String>, ImageError> {
        let r = self.store.read().map_err(internal)?;
        let key = reference.to_string();
        let tags = r.tags().map_err(internal)?;
        Ok(tags.into_iter().find(|(k, _)| *k == key).map(|(_, id)| id))
    }

    /// Streams a blob into the content store; it must hash to `digest` and have `size_bytes`
    /// bytes, else nothing is stored.
    pub fn ingest_blob(
        &self,
        src: &mut dyn Read,
        digest: &Digest,
        size_bytes: u64,
        limit_bytes: u64,
    ) -> Result<Ingested, ImageError> {
        self.content
            .ingest(src, Some(digest), Some(size_bytes), limit_bytes)
            .map_err(content_error)
    }

    /// Where a download of `blob` for layer `chain` is written until verified (kept across a
    /// failed attempt, so a retry resumes with a Range request).
    pub fn partial_blob_path(&self, blob: &Digest, chain: &Digest) -> std::path::PathBuf {
        self.content
            .partial_path(blob, chain.hex().get(..16).unwrap_or_default())
    }

    /// Makes a completely downloaded and verified file at `path` blob `digest`; true when the
    /// blob is new.
    pub fn commit_blob_file(
        &self,
        file: &std::fs::File,
        path: &std::path::Path,
        digest: &Digest,
    ) -> Result<bool, ImageError> {
        self.content
            .commit_partial(file, path, digest)
            .map_err(internal)
    }

    /// Unpacks the stored blob of layer `index` as snapshot `chain` on `parent`, verifying that
    /// it decompresses to `diff_id`. A failed unpack leaves no snapshot behind.
    pub fn unpack_pulled_layer(
        &self,
        index: usize,
        blob: &LayerBlob,
        chain: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
    ) -> Result<PulledLayer, ImageError> {
        let file = self.content.open_blob(&blob.digest).map_err(internal)?;
        let mut buffered = BufReader::with_capacity(COPY_BUFFER_BYTES, file);
        self.unpack_pulled_stream(index, blob, chain, parent, diff_id, &mut buffered)
    }

    /// Unpacks layer `index` from its (compressed) blob bytes as they arrive, as snapshot
    /// `chain` on `parent`, verifying that it decompresses to `diff_id`. The snapshot stays
    /// unrecorded (invisible) until [`ImageService::commit_pull`]; a failed unpack leaves none.
    /// The caller verifies the blob digest of `src` and discards the layer on a mismatch.
    pub fn unpack_pulled_stream(
        &self,
        index: usize,
        blob: &LayerBlob,
        chain: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        src: &mut (dyn BufRead + Send),
    ) -> Result<PulledLayer, ImageError> {
        let key = chain.hex();
        {
            let _guard = self.lock();
            if self.snapshots.exists(key) {
                // A snapshot without a record is a leftover of an interrupted pull: redo it.
                self.snapshots.remove(key).map_err(internal)?;
            }
        }
        // Not under the lock: the source may be a network stream.
        let result = self.unpack_locked(index, key, parent, diff_id, src);
        match result {
            Ok(size_bytes) => Ok(PulledLayer {
                record: LayerRecord {
                    chain_id: chain.to_string(),
                    diff_id: diff_id.to_string(),
                    parent: parent.map(Digest::to_string),
                    size_bytes,
                    blob: Some(BlobRef {
                        digest: blob.digest.to_string(),
                        size_bytes: blob.size_bytes,
                        media_type: blob.media_type.clone(),
                    }),
                },
            }),
            Err(e) => {
                if self.snapshots.exists(key) {
                    if let Err(err) = self.snapshots.remove(key) {
                        tracing::warn!("remove snapshot {key} of a failed pull: {err}");
                    }
                }
                Err(e)
            }
        }
    }

    fn unpack_locked(
        &self,
        index: usize,
        key: &str,
        parent: Option<&Digest>,
        diff_id: &Digest,
        buffered: &mut (dyn BufRead + Send),
    ) -> Result<u64, ImageError> {
        let head = buffered
            .fill_buf()
            .map_err(|e| ImageError::InvalidArchive(format!("layer {}: read: {e}", index + 1)))?;
        let compression = Compression::detect(head);
        let mut decoded: Box<dyn Read + Send + '_> = match compression {
            Compression::None => Box::new(buffered),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Box::new(zstd::Decoder::with_buffer(buffered).map_err(internal)?),
        };
        // Inflate and hash on one thread while the snapshotter writes files on this one.
        let (applied, hashed) = super::pipe::pipelined(&mut *decoded, |reader| {
            self.snapshots
                .apply_layer(key, parent.map(Digest::hex), reader)
        });
        let stats = applied.map_err(|e| snapshot_error(index, e))?;
        let (actual, _) = hashed.map_err(|e| {
            ImageError::InvalidArchive(format!("layer {}: corrupt compressed data: {e}", index + 1))
        })?;
        if &actual != diff_id {
            return Err(ImageError::InvalidArchive(format!(
                "layer {}: diff ID mismatch: config says {diff_id}, layer is {actual}",
                index + 1
            )));
        }
        Ok(stats.size_bytes)
    }

    /// Stores the config and manifest and records layers, image, tag and repo digest in one
    /// transaction. Every layer of the config must be unpacked by now.
    pub fn commit_pull(
        &self,
        c: PullCommit<'_>,
        manifest: &[u8],
    ) -> Result<PullOutcome, ImageError> {
        let parsed: ImageConfig = serde_json::from_slice(c.config)
            .map_err(|e| ImageError::InvalidArchive(format!("invalid image config: {e}")))?;
        let diff_ids = parsed.rootfs.diff_ids.clone();
        let chains = chain_ids(&diff_ids);
        let _guard = self.lock();
        let stored = self.content.ingest_bytes(c.config).map_err(internal)?;
        if &stored.digest != c.config_digest {
            return Err(ImageError::InvalidArchive(format!(
                "config digest mismatch: expected {}, got {}",
                c.config_digest, stored.digest
            )));
        }
        self.content.ingest_bytes(manifest).map_err(internal)?;
        let read = self.store.read().map_err(internal)?;
        let mut size_bytes = 0u64;
        for chain in &chains {
            if let Some(l) = c
                .layers
                .iter()
                .find(|l| l.record.chain_id == chain.as_str())
            {
                if !self.snapshots.exists(chain.hex()) {
                    return Err(internal(format!("layer {chain} vanished during the pull")));
                }
                size_bytes += l.record.size_bytes;
            } else if let Some(l) = read.layer(chain.as_str()).map_err(internal)? {
                size_bytes += l.size_bytes;
            } else {
                return Err(internal(format!("layer {chain} vanished during the pull")));
            }
        }
        let id = c.config_digest.to_string();
        let previous = read.image(&id).map_err(internal)?;
        let old_tag = match c.tag {
            Some(t) => {
                let key = t.to_string();
                let tags = read.tags().map_err(internal)?;
                tags.into_iter().find(|(k, _)| *k == key).map(|(_, id)| id)
            }
            None => None,
        };
        drop(read);
        let (created, created_nano) = parse_created(parsed.created.as_deref());
        let record = ImageRecord {
            id: id.clone(),
            config_size_bytes: stored.size_bytes,
            manifest: Some(BlobRef {
                digest: c.manifest_digest.to_string(),
                size_bytes: c.manifest_size_bytes,
                media_type: c.manifest_media_type.to_string(),
            }),
            diff_ids: diff_ids.iter().map(Digest::to_string).collect(),
            chain_ids: chains.iter().map(Digest::to_string).collect(),
            created_rfc3339: parsed.created.clone().unwrap_or_default(),
            created,
            created_nano,
            size_bytes,
            last_tag_time: previous.as_ref().and_then(|p| p.last_tag_time.clone()),
            parent: previous.as_ref().and_then(|p| p.parent.clone()),
            labels: parsed
                .config
                .as_ref()
                .and_then(|cc| cc.labels.clone())
                .unwrap_or_default(),
            os: parsed.os.clone(),
            architecture: parsed.architecture.clone(),
            variant: parsed.variant.clone(),
            stored_nano: now_nano(),
        };
        let mut tx = self.store.write().map_err(internal)?;
        for l in &c.layers {
            tx.put_layer(&l.record).map_err(internal)?;
        }
        tx.put_image(&record).map_err(internal)?;
        if let Some(t) = c.tag {
            tx.put_tag(&t.to_string(), &id).map_err(internal)?;
        }
        let digest_ref = format!("{}@{}", c.repository.name(), c.manifest_digest);
        tx.put_repo_digest(&digest_ref, &id).map_err(internal)?;
        tx.commit().map_err(internal)?;
        let changed = previous.is_none() || (c.tag.is_some() && old_tag.as_deref() != Some(&id));
        if changed {
            self.publish(
                "pull",
                &id,
                &c.tag.unwrap_or(c.repository).familiar_string(),
            );
        }
        Ok(PullOutcome {
            image_id: id,
            changed,
        })
    }

    /// The image `name` as blobs for a push: config, then layers bottom first as stored.
    pub fn push_source(&self, name: &str) -> Result<PushSource, ImageError> {
        let r = self.store.read().map_err(internal)?;
        let (img, _) = resolve(&r, name)?;
        let layers = stored_layer_blobs(&r, &img)?;
        Ok(PushSource {
            image_id: Digest::parse(&img.id).map_err(internal)?,
            config_size_bytes: img.config_size_bytes,
            layers,
        })
    }

    /// Records that `repository@digest` (a pushed manifest) is image `image_id`.
    pub fn add_repo_digest(
        &self,
        repository: &Reference,
        digest: &Digest,
        image_id: &Digest,
    ) -> Result<(), ImageError> {
        let _guard = self.lock();
        let mut tx = self.store.write().map_err(internal)?;
        tx.put_repo_digest(
            &format!("{}@{digest}", repository.name()),
            image_id.as_str(),
        )
        .map_err(internal)?;
        tx.commit().map_err(internal)
    }

    /// Stores a manifest this daemon wrote for a push, so the image keeps it.
    pub fn store_blob(&self, bytes: &[u8]) -> Result<Digest, ImageError> {
        Ok(self.content.ingest_bytes(bytes).map_err(internal)?.digest)
    }
}

impl ImageService {
    /// Undoes a failed pull: its unpacked (unrecorded) layers and the blobs it newly stored.
    pub fn discard_pull(&self, layers: Vec<PulledLayer>, blobs: &[Digest]) {
        let _guard = self.lock();
        for l in layers.iter().rev() {
            if let Ok(d) = Digest::parse(&l.record.chain_id) {
                if let Err(e) = self.snapshots.remove(d.hex()) {
                    tracing::warn!("remove snapshot {d} of a failed pull: {e}");
                }
            }
        }
        for b in blobs {
            if let Err(e) = self.content.delete(b) {
                tracing::warn!("remove blob {b} of a failed pull: {e}");
            }
        }
    }
}

/// The stored blob of each of `img`'s layers, bottom first (what push and save send).
pub(super) fn stored_layer_blobs(
    r: &impl Reader,
    img: &ImageRecord,
) -> Result<Vec<LayerBlob>, ImageError> {
    img.chain_ids
        .iter()
        .map(|c| {
            let layer = r
                .layer(c)
                .map_err(internal)?
                .ok_or_else(|| internal(format!("layer {c} of image {} missing", img.id)))?;
            let blob = layer.blob.ok_or_else(|| {
                internal(format!("layer {c} of image {} has no stored tar", img.id))
            })?;
            Ok(LayerBlob {
                digest: Digest::parse(&blob.digest).map_err(internal)?,
                size_bytes: blob.size_bytes,
                media_type: blob.media_type,
            })
        })
        .collect()
}
