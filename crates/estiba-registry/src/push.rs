//! Push: upload the layers and config the registry lacks (HEAD first, then a monolithic
//! streamed PUT), then the manifest, and record the pushed digest.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::LOCATION;
use hyper::{Method, StatusCode};

use estiba_image::config::{
    layer_media_type, Compression, Descriptor, Manifest, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LAYER,
    MEDIA_DOCKER_LAYER_GZIP, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_CONFIG, MEDIA_OCI_MANIFEST,
};
use estiba_image::digest::Digest;
use estiba_image::reference::Reference;

use crate::client::{error_message, ReqBody, Session};
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

/// Bytes between two "Pushing" lines.
const PROGRESS_STEP_BYTES: u64 = 512 * 1024;

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
        let mut s = Session::new(base, r.path().to_string(), req.creds.clone(), true);
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
        for l in source.layers.iter().rev() {
            let id = short(&l.digest);
            if self
                .upload(&mut s, &l.digest, l.size_bytes, Some(id), &progress)
                .await?
            {
                let _ = progress.send(Progress::of(id, "Pushed")).await;
            } else {
                let _ = progress
                    .send(Progress::of(id, "Layer already exists"))
                    .await;
            }
        }
        self.upload(
            &mut s,
            &source.image_id,
            source.config_size_bytes,
            None,
            &progress,
        )
        .await?;
        let manifest = build_manifest(&source)?;
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

    /// Uploads one blob unless the registry has it; true when it was uploaded.
    async fn upload(
        &self,
        s: &mut Session,
        digest: &Digest,
        size: u64,
        id: Option<&str>,
        progress: &ProgressSender,
    ) -> Result<bool, RegistryError> {
        let head = s.url(&format!("blobs/{digest}"));
        let resp = s.send(Method::HEAD, &head, None, Bytes::new(), &[]).await?;
        if resp.status() == StatusCode::OK {
            return Ok(false);
        }
        let start = s.url("blobs/uploads/");
        let resp = s
            .send(Method::POST, &start, None, Bytes::new(), &[])
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            let msg = error_message(resp).await;
            return Err(invalid(format!("start upload of {digest}: {msg}")));
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| invalid("upload answer without a Location"))?;
        let mut url = s.resolve(location);
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={digest}"));
        let body = self.blob_body(digest, size, id, progress).await?;
        let headers = [
            ("content-type", "application/octet-stream".to_string()),
            ("content-length", size.to_string()),
        ];
        let resp = s.send_stream(Method::PUT, &url, body, &headers).await?;
        if resp.status() != StatusCode::CREATED {
            let msg = error_message(resp).await;
            return Err(invalid(format!("upload {digest}: {msg}")));
        }
        Ok(true)
    }

    async fn blob_body(
        &self,
        digest: &Digest,
        size: u64,
        id: Option<&str>,
        progress: &ProgressSender,
    ) -> Result<ReqBody, RegistryError> {
        let path = self.images.content().path(digest);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| invalid(format!("open blob {digest}: {e}")))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        let tx = progress.clone();
        let id = id.map(str::to_string);
        let (mut done, mut reported) = (0u64, 0u64);
        let stream = stream.inspect_ok(move |chunk| {
            done += chunk.len() as u64;
            if let Some(id) = &id {
                if done - reported >= PROGRESS_STEP_BYTES || done == size {
                    reported = done;
                    let mut p = Progress::of(id, "Pushing");
                    p.detail = Some((done, size));
                    let _ = tx.try_send(p);
                }
            }
        });
        Ok(StreamBody::new(stream.map_ok(Frame::data)).boxed())
    }
}

fn short(d: &Digest) -> &str {
    d.hex().get(..12).unwrap_or_default()
}

/// A Docker schema 2 manifest for the image's blobs as stored (an OCI manifest when a layer is
/// zstd, which schema 2 cannot express).
fn build_manifest(source: &estiba_image::service::PushSource) -> Result<Manifest, RegistryError> {
    let zstd = source
        .layers
        .iter()
        .any(|l| layer_media_type(&l.media_type) == Some(Compression::Zstd));
    let layers = source
        .layers
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
