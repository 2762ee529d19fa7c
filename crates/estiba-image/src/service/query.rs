//! Read-only operations: list, inspect, history, disk usage. Each runs in one read transaction;
//! list touches no file besides the database.

use std::collections::{HashMap, HashSet};

use estiba_store::{ImageRecord, Reader};

use super::filters::{labels_match, reference_matches};
use super::{
    internal, refs_by_image, resolve, HistoryEntry, ImageDetails, ImageError, ImageService,
    ImageSummary, ImagesDiskUsage, ListFilters, Resolved,
};
use crate::config::{parse_created, ImageConfig};
use crate::digest::Digest;
use crate::reference::Reference;

fn summary(img: &ImageRecord, tags: &[Reference], digests: &[Reference]) -> ImageSummary {
    ImageSummary {
        id: img.id.clone(),
        parent_id: img.parent.clone().unwrap_or_default(),
        repo_tags: tags.iter().map(Reference::familiar_string).collect(),
        repo_digests: digests.iter().map(Reference::familiar_string).collect(),
        created: img.created,
        size_bytes: img.size_bytes,
        shared_size_bytes: -1,
        labels: img.labels.clone(),
        containers: -1,
    }
}

/// Newest first, as dockerd sorts them.
fn sort_newest_first(images: &mut [ImageSummary], created_nano: &HashMap<String, i64>) {
    images.sort_by(|a, b| {
        let ka = created_nano.get(&a.id).copied().unwrap_or(0);
        let kb = created_nano.get(&b.id).copied().unwrap_or(0);
        kb.cmp(&ka).then_with(|| a.id.cmp(&b.id))
    });
}

pub(super) fn list(
    svc: &ImageService,
    filters: &ListFilters,
) -> Result<Vec<ImageSummary>, ImageError> {
    let r = svc.store.read().map_err(internal)?;
    let images = r.images().map_err(internal)?;
    let refs = refs_by_image(&r)?;
    let before = match &filters.before {
        Some(name) => Some(resolve(&r, name)?.0.created_nano),
        None => None,
    };
    let since = match &filters.since {
        Some(name) => Some(resolve(&r, name)?.0.created_nano),
        None => None,
    };
    let parents: HashSet<&str> = images.iter().filter_map(|i| i.parent.as_deref()).collect();
    let empty = (Vec::new(), Vec::new());
    let mut out = Vec::new();
    let mut created = HashMap::new();
    for img in &images {
        if before.is_some_and(|b| img.created_nano >= b)
            || since.is_some_and(|s| img.created_nano <= s)
        {
            continue;
        }
        if !labels_match(&filters.labels, &img.labels) {
            continue;
        }
        let (tags, digests) = refs.get(&img.id).unwrap_or(&empty);
        let dangling = tags.is_empty() && digests.is_empty();
        if let Some(want) = filters.dangling {
            if want != dangling {
                continue;
            }
        }
        let (tags, digests): (Vec<Reference>, Vec<Reference>) = if filters.references.is_empty() {
            (tags.clone(), digests.clone())
        } else {
            let keep = |r: &&Reference| filters.references.iter().any(|p| reference_matches(p, r));
            let t: Vec<Reference> = tags.iter().filter(keep).cloned().collect();
            let d: Vec<Reference> = digests.iter().filter(keep).cloned().collect();
            if t.is_empty() && d.is_empty() {
                continue;
            }
            (t, d)
        };
        // Untagged intermediate images (parents of others) only show with --all.
        if dangling && !filters.all && parents.contains(img.id.as_str()) {
            continue;
        }
        created.insert(img.id.clone(), img.created_nano);
        out.push(summary(img, &tags, &digests));
    }
    sort_newest_first(&mut out, &created);
    Ok(out)
}

fn read_config(svc: &ImageService, img: &ImageRecord) -> Result<Vec<u8>, ImageError> {
    let d = Digest::parse(&img.id).map_err(internal)?;
    svc.content
        .read_bounded(&d, svc.limits.max_json_bytes)
        .map_err(|e| internal(format!("image config of {}: {e}", img.id)))
}

pub(super) fn inspect(svc: &ImageService, name: &str) -> Result<ImageDetails, ImageError> {
    let r = svc.store.read().map_err(internal)?;
    let (img, _) = resolve(&r, name)?;
    let refs = refs_by_image(&r)?;
    drop(r);
    let empty = (Vec::new(), Vec::new());
    let (tags, digests) = refs.get(&img.id).unwrap_or(&empty);
    let bytes = read_config(svc, &img)?;
    let config: serde_json::Value = serde_json::from_slice(&bytes).map_err(internal)?;
    let dirs = img
        .chain_ids
        .last()
        .and_then(|c| Digest::parse(c).ok())
        .and_then(|c| svc.snapshots.dirs(c.hex()).ok());
    Ok(ImageDetails {
        summary: summary(&img, tags, digests),
        config,
        created_rfc3339: img.created_rfc3339.clone(),
        os: img.os.clone(),
        architecture: img.architecture.clone(),
        variant: img.variant.clone(),
        diff_ids: img.diff_ids.clone(),
        driver_name: svc.snapshots.driver_name().to_string(),
        dirs,
        last_tag_time: img.last_tag_time.clone(),
    })
}

pub(super) fn history(svc: &ImageService, name: &str) -> Result<Vec<HistoryEntry>, ImageError> {
    let r = svc.store.read().map_err(internal)?;
    let (img, _) = resolve(&r, name)?;
    let refs = refs_by_image(&r)?;
    let mut layer_sizes = Vec::with_capacity(img.chain_ids.len());
    for c in &img.chain_ids {
        layer_sizes.push(
            r.layer(c)
                .map_err(internal)?
                .map(|l| l.size_bytes)
                .unwrap_or(0),
        );
    }
    drop(r);
    let config: ImageConfig = serde_json::from_slice(&read_config(svc, &img)?).map_err(internal)?;
    let mut out = Vec::with_capacity(config.history.len());
    let mut layer = 0usize;
    for h in &config.history {
        let size_bytes = if h.empty_layer {
            0
        } else {
            let s = *layer_sizes
                .get(layer)
                .ok_or_else(|| internal("too many non-empty layers in History section"))?;
            layer += 1;
            s
        };
        out.push(HistoryEntry {
            id: "<missing>".to_string(),
            created: parse_created(h.created.as_deref()).0,
            created_by: h.created_by.clone().unwrap_or_default(),
            tags: Vec::new(),
            size_bytes,
            comment: h.comment.clone().unwrap_or_default(),
        });
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.id = img.id.clone();
        top.tags = refs
            .get(&img.id)
            .map(|(t, _)| t.iter().map(Reference::familiar_string).collect())
            .unwrap_or_default();
    }
    Ok(out)
}

pub(super) fn disk_usage(svc: &ImageService) -> Result<ImagesDiskUsage, ImageError> {
    let r = svc.store.read().map_err(internal)?;
    let images = r.images().map_err(internal)?;
    let layers = r.layers().map_err(internal)?;
    let refs = refs_by_image(&r)?;
    drop(r);
    let sizes: HashMap<&str, u64> = layers
        .iter()
        .map(|l| (l.chain_id.as_str(), l.size_bytes))
        .collect();
    let mut users: HashMap<&str, usize> = HashMap::new();
    for img in &images {
        for c in &img.chain_ids {
            *users.entry(c.as_str()).or_default() += 1;
        }
    }
    let empty = (Vec::new(), Vec::new());
    let mut created = HashMap::new();
    let mut out = Vec::with_capacity(images.len());
    for img in &images {
        let (tags, digests) = refs.get(&img.id).unwrap_or(&empty);
        let mut s = summary(img, tags, digests);
        let shared: u64 = img
            .chain_ids
            .iter()
            .filter(|c| users.get(c.as_str()).copied().unwrap_or(0) > 1)
            .map(|c| sizes.get(c.as_str()).copied().unwrap_or(0))
            .sum();
        s.shared_size_bytes = i64::try_from(shared).unwrap_or(i64::MAX);
        s.containers = 0;
        created.insert(img.id.clone(), img.created_nano);
        out.push(s);
    }
    sort_newest_first(&mut out, &created);
    Ok(ImagesDiskUsage {
        layers_size_bytes: layers.iter().map(|l| l.size_bytes).sum(),
        images: out,
    })
}

/// Used by save: the images a list of names selects, with the tag references to record.
/// Mirrors Docker's `parseNames`: a bare repository name selects every tag of it.
pub(super) fn select_for_save(
    r: &impl Reader,
    names: &[String],
) -> Result<Vec<(ImageRecord, Vec<Reference>)>, ImageError> {
    let mut out: Vec<(ImageRecord, Vec<Reference>)> = Vec::new();
    let mut add = |img: ImageRecord, reference: Option<Reference>| {
        let pos = match out.iter().position(|(i, _)| i.id == img.id) {
            Some(p) => p,
            None => {
                out.push((img, Vec::new()));
                out.len() - 1
            }
        };
        if let Some(reference) = reference {
            if reference.tag().is_some()
                && reference.digest().is_none()
                && !out[pos].1.contains(&reference)
            {
                out[pos].1.push(reference);
            }
        }
    };
    for name in names {
        if let Ok(reference) = Reference::parse_normalized(name) {
            if reference.is_name_only() && !name.starts_with("sha256") {
                let prefix = format!("{}:", reference.name());
                let tagged: Vec<(String, estiba_store::TagRecord)> = r
                    .scan(estiba_store::tables::TAGS, &prefix)
                    .map_err(internal)?;
                if !tagged.is_empty() {
                    for (k, t) in tagged {
                        let Some(img) = r.image(&t.image_id).map_err(internal)? else {
                            continue;
                        };
                        add(img, Reference::parse_canonical(&k).ok());
                    }
                    continue;
                }
            }
        }
        let (img, how) = resolve(r, name)?;
        match how {
            Resolved::Reference(reference) => add(img, Some(reference)),
            Resolved::Id => add(img, None),
        }
    }
    Ok(out)
}
