//! Push: upload the layers and config the registry lacks (see `upload`: HEAD, mount, monolithic
//! or chunked upload; uncompressed layers gzipped), then the manifest; record the pushed digest
//! and where the blobs now are.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};
use hyper::{Method, StatusCode};

use estiba_image::config::{
    layer_media_type, Compression, Descriptor, Manifest, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LAYER,
    MEDIA_DOCKER_LAYER_GZIP, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_CONFIG, MEDIA_OCI_MANIFEST,
};
use estiba_image::digest::Digest;
use estiba_image::reference::Reference;

use estiba_image::service::LayerBlob;

use crate::client::{error_message, Session};
use crate::provenance::Compressed;
use crate::upload::{self, upload, BlobFile, Skip, Uploaded};
use crate::{Credentials, Progress, ProgressSender, RegistryError, RegistryService};

/// What to push.
pub struct PushRequest {
    /// Normalized reference with a tag.
    pub reference: Reference,
    pub creds: Credentials,
}

fn invalid(m: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(m.into())
}

impl RegistryService {
    /// Pushes `reference` (which must name a local image) to its registry.
    pub async fn push(
        &self,
        req: PushRequest,
        progress: ProgressSender,
    ) -> Result<(), RegistryError> {
        let r = &req.reference;
        let tag = r
            .tag()
            .unwrap_or(estiba_image::reference::DEFAULT_TAG)
            .to_string();
        let images = Arc::clone(&self.images);
        let name = r.to_string();
        let source = tokio::task::spawn_blocking(move || images.push_source(&name))
            .await
            .map_err(|e| invalid(format!("task failed: {e}")))??;
        let base = self.endpoint(r)?;
        let mut s = self.session(
            r.domain(),
            base,
            r.path().to_string(),
            req.creds.clone(),
            true,
        )?;
        let _ = progress
            .send(Progress::line(format!(
                "The push refers to repository [{}]",
                r.trim()
            )))
            .await;
        // Settle auth (and reachability) with a cheap request before streaming bodies.
        let probe = s.url("tags/list");
        let resp = s.send(Method::GET, &probe, None, Bytes::new(), &[]).await?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized(error_message(resp).await));
        }
        for l in source.layers.iter().rev() {
            let _ = progress
                .send(Progress::of(short(&l.digest), "Preparing"))
                .await;
        }
        let registry = r.domain().to_string();
        // Up to max-concurrent-uploads layers at once (Docker's default 5), each with its own
        // copy of the session (auth is settled by the probe above); results keep layer order.
        let limit = self.config.max_concurrent_uploads.clamp(1, 32);
        let session = s.clone();
        let mut pushed: Vec<LayerBlob> = stream::iter(source.layers.iter().rev().cloned())
            .map(|l| {
                let mut s = session.clone();
                let progress = &progress;
                async move { self.push_layer(&mut s, r, &l, progress).await }
            })
            .buffered(limit)
            .try_collect()
            .await?;
        pushed.reverse();
        let config_path = self.images.content().path(&source.image_id);
        let config = BlobFile {
            path: &config_path,
            digest: &source.image_id,
            size: source.config_size_bytes,
            id: None,
        };
        let config_sources =
            self.provenance
                .sources(source.image_id.as_str(), r.domain(), r.path());
        upload(&mut s, &config, &config_sources, &progress).await?;
        let manifest = build_manifest(&source, &pushed)?;
        let bytes = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| invalid(format!("encode manifest: {e}")))?;
        let media = manifest.media_type.clone().unwrap_or_default();
        let url = s.url(&format!("manifests/{tag}"));
        let resp = s
            .send(
                Method::PUT,
                &url,
                None,
                Bytes::from(bytes.clone()),
                &[("content-type", media)],
            )
            .await?;
        if resp.status() != StatusCode::CREATED && resp.status() != StatusCode::OK {
            let msg = error_message(resp).await;
            return Err(invalid(format!("put manifest: {msg}")));
        }
        let mut digests: Vec<String> = pushed.iter().map(|l| l.digest.to_string()).collect();
        digests.push(source.image_id.to_string());
        self.provenance.add_sources(&digests, &registry, r.path());
        let images = Arc::clone(&self.images);
        let (repo, id) = (r.trim(), source.image_id.clone());
        let size = bytes.len() as u64;
        let digest = tokio::task::spawn_blocking(move || {
            let d = images.store_blob(&bytes)?;
            images.add_repo_digest(&repo, &d, &id)?;
            Ok::<_, estiba_image::service::ImageError>(d)
        })
        .await
        .map_err(|e| invalid(format!("task failed: {e}")))??;
        let _ = progress
            .send(Progress::line(format!(
                "{tag}: digest: {digest} size: {size}"
            )))
            .await;
        let _ = progress
            .send(Progress {
                aux: Some((tag, digest.to_string(), size)),
                ..Default::default()
            })
            .await;
        Ok(())
    }

    /// Pushes one layer (gzipped first when stored uncompressed); the blob the manifest lists.
    async fn push_layer(
        &self,
        s: &mut Session,
        r: &Reference,
        l: &LayerBlob,
        progress: &ProgressSender,
    ) -> Result<LayerBlob, RegistryError> {
        let id = short(&l.digest).to_string();
        let path = self.images.content().path(&l.digest);
        let stored = layer_media_type(&l.media_type);
        let sniffed =
            upload::sniff(&path).map_err(|e| invalid(format!("read blob {}: {e}", l.digest)))?;
        let mut gzipped = None;
        let mut blob = l.clone();
        if sniffed == Compression::None && stored != Some(Compression::Zstd) {
            blob.media_type = MEDIA_DOCKER_LAYER_GZIP.to_string();
            // A gzip form made by an earlier push: the registry may have it or mount it.
            let known = self
                .provenance
                .compressed(l.digest.as_str())
                .and_then(|c| Digest::parse(&c.digest).ok().map(|d| (d, c.size)));
            if let Some((d, size)) = known {
                let sources = self.provenance.sources(d.as_str(), r.domain(), r.path());
                match upload::skip(s, &d, &sources).await? {
                    Skip::Done(how) => {
                        blob.digest = d;
                        blob.size_bytes = size;
                        self.report(&id, how, progress).await;
                        return Ok(blob);
                    }
                    Skip::Upload(_) => {}
                }
            }
            let tmp = self.images.content().partial_path(&l.digest, "gzip");
            let src = path.clone();
            let gz = tokio::task::spawn_blocking(move || upload::gzip(&src, tmp))
                .await
                .map_err(|e| invalid(format!("task failed: {e}")))?
                .map_err(|e| invalid(format!("compress layer {}: {e}", l.digest)))?;
            self.provenance.add_compressed(
                l.digest.as_str(),
                Compressed {
                    digest: gz.digest.to_string(),
                    size: gz.size,
                },
            );
            blob.digest = gz.digest.clone();
            blob.size_bytes = gz.size;
            gzipped = Some(gz);
        }
        let file = gzipped.as_ref().map_or(path, |g| g.path.clone());
        let sources = self
            .provenance
            .sources(blob.digest.as_str(), r.domain(), r.path());
        let how = match upload::skip(s, &blob.digest, &sources).await? {
            Skip::Done(how) => how,
            Skip::Upload(session) => {
                let file = BlobFile {
                    path: &file,
                    digest: &blob.digest,
                    size: blob.size_bytes,
                    id: Some(&id),
                };
                upload::send(s, &file, session, progress).await?
            }
        };
        self.report(&id, how, progress).await;
        Ok(blob)
    }

    async fn report(&self, id: &str, how: Uploaded, progress: &ProgressSender) {
        let status = match how {
            Uploaded::Exists => "Layer already exists".to_string(),
            Uploaded::Mounted(from) => format!("Mounted from {from}"),
            Uploaded::Pushed => "Pushed".to_string(),
        };
        let _ = progress.send(Progress::of(id, status)).await;
    }
}

fn short(d: &Digest) -> &str {
    d.hex().get(..12).unwrap_or_default()
}

/// A Docker schema 2 manifest for the image's blobs as stored (an OCI manifest when a layer is
/// zstd, which schema 2 cannot express).
fn build_manifest(
    source: &estiba_image::service::PushSource,
    pushed: &[LayerBlob],
) -> Result<Manifest, RegistryError> {
    let zstd = pushed
        .iter()
        .any(|l| layer_media_type(&l.media_type) == Some(Compression::Zstd));
    let layers = pushed
        .iter()
        .map(|l| {
            let compression = layer_media_type(&l.media_type).unwrap_or(Compression::None);
            let media_type = if zstd {
                compression.oci_layer_media_type().to_string()
            } else if compression == Compression::Gzip {
                MEDIA_DOCKER_LAYER_GZIP.to_string()
            } else {
                MEDIA_DOCKER_LAYER.to_string()
            };
            Descriptor {
                media_type,
                digest: l.digest.clone(),
                size: l.size_bytes,
                annotations: None,
                platform: None,
            }
        })
        .collect();
    Ok(Manifest {
        schema_version: 2,
        media_type: Some(
            if zstd {
                MEDIA_OCI_MANIFEST
            } else {
                MEDIA_DOCKER_MANIFEST
            }
            .to_string(),
        ),
        config: Descriptor {
            media_type: if zstd {
                MEDIA_OCI_CONFIG
            } else {
                MEDIA_DOCKER_CONFIG
            }
            .to_string(),
            digest: source.image_id.clone(),
            size: source.config_size_bytes,
            annotations: None,
            platform: None,
        },
        layers,
        annotations: None,
    })
}
