//! `docker load` and `docker save`: archives in, layers unpacked, records committed at once;
//! records and blobs out as an OCI layout with `manifest.json`.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};

use estiba_snapshot::SnapshotError;
use estiba_store::{BlobRef, ImageRecord, LayerRecord, Reader};

use super::query::select_for_save;
use super::{internal, now_nano, ImageError, ImageService, LoadedItem};
use crate::archive::{self, ArchiveContents, ArchiveError, ImageToLoad, ImageToSave};
use crate::config::{parse_created, Compression};
use crate::content::COPY_BUFFER_BYTES;
use crate::digest::{chain_ids, Digest, HashingReader};
use crate::reference::Reference;

fn from_archive(e: ArchiveError) -> ImageError {
    match e {
        ArchiveError::Invalid(m) => ImageError::InvalidArchive(m),
        e => internal(e),
    }
}

pub(super) fn load(
    svc: &ImageService,
    tarball: &mut dyn Read,
    on_loaded: &mut dyn FnMut(&LoadedItem),
) -> Result<(), ImageError> {
    let _guard = svc.lock();
    let started = std::time::Instant::now();
    let mut contents =
        archive::read_archive(tarball, &svc.content, &svc.limits).map_err(from_archive)?;
    tracing::debug!(
        "load: archive streamed into the content store in {:?}",
        started.elapsed()
    );
    let mut created_snapshots: Vec<String> = Vec::new();
    match load_contents(svc, &contents, &mut created_snapshots) {
        Ok(loaded) => {
            tracing::debug!("load: done in {:?}", started.elapsed());
            // Files of the archive that no image uses (e.g. stray extras) are not kept.
            let used: HashSet<&str> = loaded.used_blobs.iter().map(String::as_str).collect();
            contents.new_blobs.retain(|d| !used.contains(d.as_str()));
            contents.discard(&svc.content);
            for (id, names) in &loaded.images {
                svc.publish("load", id, id);
                if names.is_empty() {
                    on_loaded(&LoadedItem::Id(id.clone()));
                }
                for n in names {
                    on_loaded(&LoadedItem::Tag(n.clone()));
                }
            }
            Ok(())
        }
        Err(e) => {
            for key in created_snapshots.iter().rev() {
                if let Err(err) = svc.snapshots.remove(key) {
                    tracing::warn!("remove snapshot {key} of a failed load: {err}");
                }
            }
            contents.discard(&svc.content);
            Err(e)
        }
    }
}

struct Loaded {
    /// (image ID, familiar tags) in archive order.
    images: Vec<(String, Vec<String>)>,
    used_blobs: Vec<String>,
}

fn load_contents(
    svc: &ImageService,
    contents: &ArchiveContents,
    created_snapshots: &mut Vec<String>,
) -> Result<Loaded, ImageError> {
    let images = archive::resolve(contents, &svc.content, &svc.limits).map_err(from_archive)?;
    if images.is_empty() {
        return Err(ImageError::InvalidArchive(
            "no images found in the archive".to_string(),
        ));
    }
    let mut tags_per_image: Vec<Vec<Reference>> = Vec::with_capacity(images.len());
    for image in &images {
        let mut refs = Vec::new();
        for t in &image.repo_tags {
            let r = Reference::parse_normalized(t)
                .map_err(|e| ImageError::InvalidArchive(format!("invalid tag {t:?}: {e}")))?;
            if r.digest().is_some() {
                return Err(ImageError::InvalidArchive(format!(
                    "invalid tag {t:?}: a digest is not a tag"
                )));
            }
            let r = r.with_default_tag();
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
        tags_per_image.push(refs);
    }

    let read = svc.store.read().map_err(internal)?;
    let mut pending: HashMap<String, LayerRecord> = HashMap::new();
    let mut records = Vec::with_capacity(images.len());
    let mut used_blobs = Vec::new();
    for image in &images {
        let diff_ids = image.parsed.rootfs.diff_ids.clone();
        let chains = chain_ids(&diff_ids);
        let mut size_bytes = 0u64;
        for (i, layer) in image.layers.iter().enumerate() {
            let chain = &chains[i];
            used_blobs.push(layer.blob.digest.to_string());
            if let Some(l) = pending.get(chain.as_str()) {
                size_bytes += l.size_bytes;
                continue;
            }
            if let Some(l) = read.layer(chain.as_str()).map_err(internal)? {
                if svc.snapshots.exists(chain.hex()) {
                    size_bytes += l.size_bytes;
                    continue;
                }
            }
            let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
            let record = apply_layer(
                svc,
                image,
                i,
                chain,
                parent,
                &diff_ids[i],
                created_snapshots,
            )?;
            size_bytes += record.size_bytes;
            pending.insert(chain.to_string(), record);
        }
        used_blobs.push(image.config.digest.to_string());
        if let Some((m, _)) = &image.manifest {
            used_blobs.push(m.digest.to_string());
        }
        let previous = read.image(image.config.digest.as_str()).map_err(internal)?;
        records.push(image_record(
            image, &diff_ids, &chains, size_bytes, previous,
        ));
    }
    drop(read);

    let mut tx = svc.store.write().map_err(internal)?;
    for l in pending.values() {
        tx.put_layer(l).map_err(internal)?;
    }
    let mut loaded = Vec::with_capacity(records.len());
    for (record, refs) in records.iter().zip(&tags_per_image) {
        tx.put_image(record).map_err(internal)?;
        let mut names = Vec::new();
        for r in refs {
            tx.put_tag(&r.to_string(), &record.id).map_err(internal)?;
            names.push(r.familiar_string());
        }
        loaded.push((record.id.clone(), names));
    }
    tx.commit().map_err(internal)?;
    Ok(Loaded {
        images: loaded,
        used_blobs,
    })
}

fn image_record(
    image: &ImageToLoad,
    diff_ids: &[Digest],
    chains: &[Digest],
    size_bytes: u64,
    previous: Option<ImageRecord>,
) -> ImageRecord {
    let c = &image.parsed;
    let (created, created_nano) = parse_created(c.created.as_deref());
    ImageRecord {
        id: image.config.digest.to_string(),
        config_size_bytes: image.config.size_bytes,
        manifest: image.manifest.as_ref().map(|(f, media)| BlobRef {
            digest: f.digest.to_string(),
            size_bytes: f.size_bytes,
            media_type: media.clone(),
        }),
        diff_ids: diff_ids.iter().map(Digest::to_string).collect(),
        chain_ids: chains.iter().map(Digest::to_string).collect(),
        created_rfc3339: c.created.clone().unwrap_or_default(),
        created,
        created_nano,
        size_bytes,
        last_tag_time: previous.as_ref().and_then(|p| p.last_tag_time.clone()),
        parent: previous
            .as_ref()
            .and_then(|p| p.parent.clone())
            .or_else(|| c.parent.clone().filter(|p| !p.is_empty())),
        labels: c
            .config
            .as_ref()
            .and_then(|cc| cc.labels.clone())
            .unwrap_or_default(),
        os: c.os.clone(),
        architecture: c.architecture.clone(),
        variant: c.variant.clone(),
        stored_nano: now_nano(),
    }
}

/// Unpacks layer `index` of `image` as snapshot `chain`, verifying its diff ID while it streams
/// from the content store (still in the page cache: it was written moments ago).
fn apply_layer(
    svc: &ImageService,
    image: &ImageToLoad,
    index: usize,
    chain: &Digest,
    parent: Option<&Digest>,
    diff_id: &Digest,
    created_snapshots: &mut Vec<String>,
) -> Result<LayerRecord, ImageError> {
    let layer = &image.layers[index];
    let key = chain.hex();
    if svc.snapshots.exists(key) {
        // A snapshot without a record is a leftover of an interrupted load: redo it.
        svc.snapshots.remove(key).map_err(internal)?;
    }
    let file = svc
        .content
        .open_blob(&layer.blob.digest)
        .map_err(internal)?;
    let mut buffered = BufReader::with_capacity(COPY_BUFFER_BYTES, file);
    let head = buffered.fill_buf().map_err(internal)?;
    let compression = Compression::detect(head);
    let mismatch = |actual: &Digest| {
        ImageError::InvalidArchive(format!(
            "layer {} of image {}: diff ID mismatch: config says {diff_id}, layer is {actual}",
            index + 1,
            image.config.digest
        ))
    };
    // An uncompressed blob was verified on ingest: its digest is its diff ID already.
    if compression == Compression::None && &layer.blob.digest != diff_id {
        return Err(mismatch(&layer.blob.digest));
    }
    let decoded: Box<dyn Read> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(buffered).map_err(internal)?),
    };
    let parent_key = parent.map(Digest::hex);
    let (stats, actual) = if compression == Compression::None {
        let mut reader = decoded;
        let stats = svc
            .snapshots
            .apply_layer(key, parent_key, &mut reader)
            .map_err(|e| snapshot_error(index, e))?;
        (stats, None)
    } else {
        let mut reader = HashingReader::new(decoded);
        let result = svc.snapshots.apply_layer(key, parent_key, &mut reader);
        let stats = result.map_err(|e| snapshot_error(index, e))?;
        created_snapshots.push(key.to_string());
        let (actual, _) = reader.finish_draining().map_err(|e| {
            ImageError::InvalidArchive(format!("layer {}: corrupt compressed data: {e}", index + 1))
        })?;
        (stats, Some(actual))
    };
    if compression == Compression::None {
        created_snapshots.push(key.to_string());
    }
    if let Some(actual) = actual {
        if &actual != diff_id {
            return Err(mismatch(&actual));
        }
    }
    Ok(LayerRecord {
        chain_id: chain.to_string(),
        diff_id: diff_id.to_string(),
        parent: parent.map(Digest::to_string),
        size_bytes: stats.size_bytes,
        blob: Some(BlobRef {
            digest: layer.blob.digest.to_string(),
            size_bytes: layer.blob.size_bytes,
            media_type: layer.media_type.clone(),
        }),
    })
}

pub(super) fn snapshot_error(index: usize, e: SnapshotError) -> ImageError {
    match e {
        SnapshotError::InvalidLayer(_) | SnapshotError::CorruptTar(_) => {
            ImageError::InvalidArchive(format!("layer {}: {e}", index + 1))
        }
        e => internal(format!("unpack layer {}: {e}", index + 1)),
    }
}

pub(super) fn save(
    svc: &ImageService,
    names: &[String],
    out: &mut dyn Write,
) -> Result<(), ImageError> {
    let mut to_save = Vec::new();
    let mut files: HashMap<Digest, File> = HashMap::new();
    let ids: Vec<String>;
    {
        // Open every blob under the lock: an open file stays readable even if a concurrent
        // delete unlinks it, so the lock is not held while a slow client reads the tarball.
        let _guard = svc.lock();
        let r = svc.store.read().map_err(internal)?;
        let selected = select_for_save(&r, names)?;
        ids = selected.iter().map(|(i, _)| i.id.clone()).collect();
        for (img, refs) in selected {
            let config = Digest::parse(&img.id).map_err(internal)?;
            let layers: Vec<(Digest, u64, String)> = super::pull::stored_layer_blobs(&r, &img)?
                .into_iter()
                .map(|b| (b.digest, b.size_bytes, b.media_type))
                .collect();
            for d in std::iter::once(&config).chain(layers.iter().map(|(d, _, _)| d)) {
                if !files.contains_key(d) {
                    files.insert(d.clone(), svc.content.open_blob(d).map_err(internal)?);
                }
            }
            let tags = refs
                .iter()
                .filter_map(|r| {
                    r.tag()
                        .map(|t| (r.to_string(), r.familiar_name(), t.to_string()))
                })
                .collect();
            to_save.push(ImageToSave {
                config,
                config_size_bytes: img.config_size_bytes,
                layers,
                tags,
            });
        }
    }
    let mut open = |d: &Digest| -> io::Result<File> {
        files
            .remove(d)
            .ok_or_else(|| io::Error::other(format!("blob {d} not opened")))
    };
    archive::write_archive(out, &mut open, &to_save).map_err(|e| match e {
        ArchiveError::Write(e) => internal(format!("write tarball: {e}")),
        e => internal(e),
    })?;
    for id in ids {
        svc.publish("save", &id, &id);
    }
    Ok(())
}
