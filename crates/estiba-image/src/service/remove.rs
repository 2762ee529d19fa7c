//! Changing references and deleting images: tag, `docker rmi` (Docker's untag-vs-delete rules)
//! and prune. Records change in one transaction; files go after it commits.

use std::collections::HashSet;

use estiba_events::Event;
use estiba_store::{ImageRecord, Reader, WriteTx};

use super::filters::labels_match;
use super::{
    internal, now_rfc3339, refs_by_image, resolve, ImageError, ImageService, RemovedItem, Resolved,
};
use crate::digest::Digest;
use crate::reference::Reference;

pub(super) fn tag(
    svc: &ImageService,
    source: &str,
    repo: &str,
    tag: Option<&str>,
) -> Result<(), ImageError> {
    let _guard = svc.lock();
    let mut tx = svc.store.write().map_err(internal)?;
    let (mut img, _) = resolve(&tx, source)?;
    let target = Reference::parse_normalized(repo)
        .map_err(|e| ImageError::InvalidReference(e.to_string()))?;
    if target.digest().is_some() {
        return Err(ImageError::InvalidReference(
            "refusing to create a tag with a digest reference".to_string(),
        ));
    }
    if target.familiar_name() == "sha256" {
        return Err(ImageError::InvalidReference(
            "refusing to create an ambiguous tag using digest algorithm as name".to_string(),
        ));
    }
    let target = match tag.filter(|t| !t.is_empty()) {
        Some(t) => target
            .with_tag(t)
            .map_err(|e| ImageError::InvalidReference(e.to_string()))?,
        None => target.with_default_tag(),
    };
    tx.put_tag(&target.to_string(), &img.id).map_err(internal)?;
    img.last_tag_time = Some(now_rfc3339());
    tx.put_image(&img).map_err(internal)?;
    tx.commit().map_err(internal)?;
    svc.publish("tag", &img.id, &target.familiar_string());
    Ok(())
}

/// Work left for after the commit.
#[derive(Default)]
struct Removal {
    items: Vec<RemovedItem>,
    /// (action, image ID) events to publish.
    events: Vec<(&'static str, String)>,
    /// Snapshot keys to remove, in order (top layers first).
    snapshots: Vec<String>,
    /// Blobs that may have lost their last reference.
    blobs: Vec<String>,
    reclaimed_bytes: u64,
}

/// (tag refs, digest refs) of one image, read inside the transaction.
fn refs_of(tx: &WriteTx, id: &str) -> Result<(Vec<Reference>, Vec<Reference>), ImageError> {
    Ok(refs_by_image(tx)?.remove(id).unwrap_or_default())
}

fn remove_ref(tx: &mut WriteTx, r: &Reference) -> Result<(), ImageError> {
    let key = r.to_string();
    if r.digest().is_some() && r.tag().is_none() {
        tx.remove_repo_digest(&key).map_err(internal)?;
    } else {
        tx.remove_tag(&key).map_err(internal)?;
    }
    Ok(())
}

/// Docker's `isSingleReference`: at most one tag, and every reference in one repository.
fn is_single_reference(tags: &[Reference], digests: &[Reference]) -> bool {
    if tags.len() + digests.len() <= 1 {
        return tags.len() + digests.len() == 1;
    }
    if tags.len() > 1 {
        return false;
    }
    let single = tags.first().or(digests.first());
    let names: HashSet<String> = tags.iter().chain(digests).map(Reference::name).collect();
    single.is_some_and(|s| names.len() == 1 && names.contains(&s.name()))
}

/// `docker rmi` with the service lock held. Returns the report and the bytes freed.
pub(super) fn remove_locked(
    svc: &ImageService,
    name: &str,
    force: bool,
    prune_parents: bool,
) -> Result<(Vec<RemovedItem>, u64), ImageError> {
    let mut tx = svc.store.write().map_err(internal)?;
    let (img, how) = resolve(&tx, name)?;
    let id = img.id.clone();
    let mut work = Removal::default();
    let (tags, digests) = refs_of(&tx, &id)?;
    let mut quiet = false;
    match how {
        Resolved::Reference(r) => {
            remove_ref(&mut tx, &r)?;
            work.items.push(RemovedItem::Untagged(r.familiar_string()));
            work.events.push(("untag", id.clone()));
            let mut remaining_tags: Vec<Reference> = tags.into_iter().filter(|t| t != &r).collect();
            let mut remaining_digests: Vec<Reference> =
                digests.into_iter().filter(|t| t != &r).collect();
            // Untagging the last tag of a repository also drops its digest references.
            let is_digest_ref = r.digest().is_some() && r.tag().is_none();
            if !is_digest_ref && !remaining_tags.iter().any(|t| t.name() == r.name()) {
                let mut keep = Vec::new();
                for d in remaining_digests {
                    if d.name() == r.name() {
                        remove_ref(&mut tx, &d)?;
                        work.items.push(RemovedItem::Untagged(d.familiar_string()));
                    } else {
                        keep.push(d);
                    }
                }
                remaining_digests = keep;
            }
            remaining_tags.retain(|t| t != &r);
            if !remaining_tags.is_empty() || !remaining_digests.is_empty() {
                tx.commit().map_err(internal)?;
                let items = work.items.clone();
                finish(svc, work);
                return Ok((items, 0));
            }
            check_container_conflicts(svc, &id, force)?;
            quiet = true;
        }
        Resolved::Id => {
            check_container_conflicts(svc, &id, force)?;
            if is_single_reference(&tags, &digests) {
                check_hard_conflicts(&tx, &id)?;
                for r in tags.iter().chain(&digests) {
                    remove_ref(&mut tx, r)?;
                    work.items.push(RemovedItem::Untagged(r.familiar_string()));
                    work.events.push(("untag", id.clone()));
                }
            }
        }
    }
    delete_image(&mut tx, &id, force, prune_parents, quiet, &mut work)?;
    tx.commit().map_err(internal)?;
    let items = work.items.clone();
    let reclaimed = work.reclaimed_bytes;
    finish(svc, work);
    Ok((items, reclaimed))
}

/// Docker's container conflicts: a running container's image cannot be deleted even with
/// force; a stopped container's only with force.
fn check_container_conflicts(svc: &ImageService, id: &str, force: bool) -> Result<(), ImageError> {
    match svc.used_by(id) {
        Some((container, true)) => Err(ImageError::Conflict(format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container {container}",
            short(id)
        ))),
        Some((container, false)) if !force => Err(ImageError::Conflict(format!(
            "conflict: unable to delete {} (must be forced) - image is being used by stopped container {container}",
            short(id)
        ))),
        _ => Ok(()),
    }
}

fn short(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.chars().take(12).collect()
}

fn children(tx: &WriteTx, id: &str) -> Result<Vec<ImageRecord>, ImageError> {
    Ok(tx
        .images()
        .map_err(internal)?
        .into_iter()
        .filter(|i| i.parent.as_deref() == Some(id))
        .collect())
}

fn check_hard_conflicts(tx: &WriteTx, id: &str) -> Result<(), ImageError> {
    if !children(tx, id)?.is_empty() {
        return Err(ImageError::Conflict(format!(
            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
            short(id)
        )));
    }
    Ok(())
}

/// Docker's `imageDeleteHelper`: conflicts, then references, the image, its unused layers and,
/// when pruning, its parent.
fn delete_image(
    tx: &mut WriteTx,
    id: &str,
    force: bool,
    prune_parents: bool,
    quiet: bool,
    work: &mut Removal,
) -> Result<(), ImageError> {
    let (tags, digests) = refs_of(tx, id)?;
    let dangling = tags.is_empty() && digests.is_empty();
    let conflict = match check_hard_conflicts(tx, id) {
        Err(e) => Some(e),
        Ok(()) if !force && !dangling => Some(ImageError::Conflict(format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            short(id)
        ))),
        Ok(()) => None,
    };
    if let Some(c) = conflict {
        if quiet {
            return Ok(());
        }
        return Err(c);
    }
    let Some(img) = tx.image(id).map_err(internal)? else {
        return Ok(());
    };
    for r in tags.iter().chain(&digests) {
        remove_ref(tx, r)?;
        work.items.push(RemovedItem::Untagged(r.familiar_string()));
        work.events.push(("untag", id.to_string()));
    }
    tx.remove_image(id).map_err(internal)?;
    work.items.push(RemovedItem::Deleted(id.to_string()));
    work.events.push(("delete", id.to_string()));
    work.blobs.push(id.to_string());
    if let Some(m) = &img.manifest {
        work.blobs.push(m.digest.clone());
    }
    let still_used: HashSet<String> = tx
        .images()
        .map_err(internal)?
        .into_iter()
        .flat_map(|i| i.chain_ids)
        .collect();
    for chain in img.chain_ids.iter().rev() {
        if still_used.contains(chain) {
            continue;
        }
        let Some(layer) = tx.layer(chain).map_err(internal)? else {
            continue;
        };
        tx.remove_layer(chain).map_err(internal)?;
        work.items.push(RemovedItem::Deleted(chain.clone()));
        work.reclaimed_bytes += layer.size_bytes;
        if let Ok(d) = Digest::parse(chain) {
            work.snapshots.push(d.hex().to_string());
        }
        if let Some(b) = layer.blob {
            work.blobs.push(b.digest);
        }
    }
    if prune_parents {
        if let Some(parent) = img.parent.as_deref() {
            if tx.image(parent).map_err(internal)?.is_some() {
                delete_image(tx, parent, false, true, true, work)?;
            }
        }
    }
    Ok(())
}

/// After the commit: events, then snapshots and blobs nothing references any more.
fn finish(svc: &ImageService, work: Removal) {
    for (action, id) in &work.events {
        svc.publish(action, id, id);
    }
    for key in &work.snapshots {
        if let Err(e) = svc.snapshots.remove(key) {
            tracing::warn!("remove snapshot {key}: {e}");
        }
    }
    if work.blobs.is_empty() {
        return;
    }
    let referenced = match referenced_blobs(svc) {
        Ok(r) => r,
        Err(e) => {
            // Keeping a blob is safe; the next start-up GC collects it.
            tracing::warn!("list referenced blobs: {e}");
            return;
        }
    };
    for b in &work.blobs {
        if referenced.contains(b) {
            continue;
        }
        if let Ok(d) = Digest::parse(b) {
            if let Err(e) = svc.content.delete(&d) {
                tracing::warn!("remove blob {d}: {e}");
            }
        }
    }
}

fn referenced_blobs(svc: &ImageService) -> Result<HashSet<String>, ImageError> {
    let r = svc.store.read().map_err(internal)?;
    let mut out = HashSet::new();
    for i in r.images().map_err(internal)? {
        if let Some(m) = i.manifest {
            out.insert(m.digest);
        }
        out.insert(i.id);
    }
    for l in r.layers().map_err(internal)? {
        if let Some(b) = l.blob {
            out.insert(b.digest);
        }
    }
    Ok(out)
}

pub(super) fn prune(
    svc: &ImageService,
    all: bool,
    labels: &[String],
    until: Option<i64>,
) -> Result<(Vec<RemovedItem>, u64), ImageError> {
    let _guard = svc.lock();
    let r = svc.store.read().map_err(internal)?;
    let images = r.images().map_err(internal)?;
    let refs = refs_by_image(&r)?;
    drop(r);
    let parents: HashSet<String> = images.iter().filter_map(|i| i.parent.clone()).collect();
    let mut items = Vec::new();
    let mut reclaimed = 0u64;
    for img in &images {
        let (tags, digests) = refs.get(&img.id).cloned().unwrap_or_default();
        let untagged = tags.is_empty() && digests.is_empty();
        if !all && parents.contains(&img.id) {
            continue;
        }
        if untagged && parents.contains(&img.id) {
            continue;
        }
        if !labels_match(labels, &img.labels) {
            continue;
        }
        if until.is_some_and(|u| img.created_nano > u) {
            continue;
        }
        let names: Vec<String> = if untagged {
            vec![img.id.clone()]
        } else if all || tags.is_empty() {
            tags.iter()
                .chain(&digests)
                .map(Reference::to_string)
                .collect()
        } else {
            continue;
        };
        for name in names {
            match remove_locked(svc, &name, false, true) {
                Ok((removed, bytes)) => {
                    items.extend(removed);
                    reclaimed += bytes;
                }
                Err(ImageError::NotFound(_)) | Err(ImageError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    svc.events
        .publish(Event::now("image", "prune", "").attr("reclaimed", &reclaimed.to_string()));
    Ok((items, reclaimed))
}
