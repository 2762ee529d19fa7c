//! Pull: resolve the manifest (index → platform), fetch the config, download missing layers in
//! parallel straight into the content store (verified), unpack them in order, commit once.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::sync::{watch, Semaphore};

use estiba_image::config::{
    is_index_media_type, ImageConfig, Index, Manifest, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST,
    MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use estiba_image::digest::{chain_ids, Digest};
use estiba_image::reference::Reference;
use estiba_image::service::{LayerBlob, PullCommit, PulledLayer};

use crate::client::{error_message, read_bounded, Credentials, Session};
use crate::layer::{Fetcher, LayerJob};
use crate::{Progress, ProgressSender, RegistryError, RegistryService};

/// Manifests and indexes larger than this are refused (as containerd and docker do).
pub(crate) const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Image configs larger than this are refused.
const MAX_CONFIG_BYTES: usize = 8 << 20;
/// Layers per image (overlay's lowerdir limit is near this too).
const MAX_LAYERS: usize = 128;
/// Declared blob sizes above this are refused.
const MAX_BLOB_BYTES: u64 = 64 << 30;

/// What to pull.
pub struct PullRequest {
    /// Normalized reference with a tag or a digest.
    pub reference: Reference,
    /// "os/arch[/variant]"; the daemon's platform when None.
    pub platform: Option<String>,
    pub creds: Credentials,
}

const ACCEPT_MANIFESTS: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

fn sha256(bytes: &[u8]) -> Digest {
    let hex = hex::encode(Sha256::digest(bytes));
    // A 64-hex string always parses.
    Digest::from_hex(&hex).unwrap_or_else(|_| unreachable!())
}

fn invalid(m: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(m.into())
}

/// The daemon's platform as "linux/amd64".
fn host_platform() -> (String, String) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    ("linux".to_string(), arch.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Invalid(format!("task failed: {e}")))?
}

struct Fetched {
    bytes: Bytes,
    media_type: String,
    digest: Digest,
}

async fn fetch_manifest(
    s: &mut Session,
    r: &Reference,
    tag_or_digest: &str,
) -> Result<Fetched, RegistryError> {
    let url = s.url(&format!("manifests/{tag_or_digest}"));
    let resp = s
        .send(Method::GET, &url, Some(ACCEPT_MANIFESTS), Bytes::new(), &[])
        .await?;
    match resp.status() {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => {
            let msg = error_message(resp).await;
            return Err(RegistryError::NotFound(
                if msg.starts_with("name unknown") {
                    format!("repository {} not found: {msg}", r.familiar_name())
                } else {
                    format!("manifest for {} not found: {msg}", r.familiar_string())
                },
            ));
        }
        _ => {
            let msg = error_message(resp).await;
            return Err(invalid(format!(
                "fetch manifest of {}: {msg}",
                r.familiar_string()
            )));
        }
    }
    let header_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
    let bytes = read_bounded(resp, MAX_MANIFEST_BYTES)
        .await
        .map_err(|e| match e {
            RegistryError::TooLarge(n) => {
                invalid(format!("manifest too large: more than {n} bytes"))
            }
            e => e,
        })?;
    let digest = sha256(&bytes);
    if tag_or_digest.starts_with("sha256:") && digest.as_str() != tag_or_digest {
        return Err(invalid(format!(
            "manifest verification failed for digest {tag_or_digest}"
        )));
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default, rename = "mediaType")]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("invalid manifest: {e}")))?;
    let media_type = match (probe.media_type, header_type) {
        (Some(m), _) => m,
        (None, _) if probe.manifests.is_some() => MEDIA_OCI_INDEX.to_string(),
        (None, Some(h)) if h == MEDIA_DOCKER_MANIFEST || h == MEDIA_DOCKER_LIST => h,
        (None, _) => MEDIA_OCI_MANIFEST.to_string(),
    };
    Ok(Fetched {
        bytes,
        media_type,
        digest,
    })
}

fn select_platform(index: &Index, platform: Option<&str>) -> Result<Digest, RegistryError> {
    let (os, arch) = host_platform();
    let mut want = (os, arch, None::<String>);
    if let Some(p) = platform.filter(|p| !p.is_empty()) {
        let parts: Vec<&str> = p.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|s| s.is_empty()) {
            return Err(RegistryError::BadRequest(format!(
                "\"{p}\": unknown operating system or architecture: invalid argument"
            )));
        }
        want = (
            parts[0].to_string(),
            parts[1].to_string(),
            parts.get(2).map(|v| v.to_string()),
        );
    }
    index
        .manifests
        .iter()
        .find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == want.0
                    && p.architecture == want.1
                    && (want.2.is_none() || p.variant == want.2)
            })
        })
        .map(|d| d.digest.clone())
        .ok_or_else(|| {
            RegistryError::NotFound(format!(
                "no matching manifest for {}/{} in the manifest list entries",
                want.0, want.1
            ))
        })
}

async fn fetch_config(s: &mut Session, m: &Manifest) -> Result<Bytes, RegistryError> {
    if m.config.size > MAX_CONFIG_BYTES as u64 {
        return Err(invalid(format!(
            "image config too large: {} bytes",
            m.config.size
        )));
    }
    let url = s.url(&format!("blobs/{}", m.config.digest));
    let resp = s.get_following(&url).await?;
    if resp.status() != StatusCode::OK {
        let msg = error_message(resp).await;
        return Err(invalid(format!(
            "fetch image config {}: {msg}",
            m.config.digest
        )));
    }
    let bytes = read_bounded(resp, MAX_CONFIG_BYTES).await?;
    if sha256(&bytes) != m.config.digest {
        return Err(invalid(format!(
            "image config verification failed for digest {}",
            m.config.digest
        )));
    }
    Ok(bytes)
}

/// What the layer fetches of one pull produced.
#[derive(Default)]
struct Got {
    /// Blobs this pull stored (removed again if it fails).
    created_blobs: Vec<Digest>,
    /// Layers this pull unpacked (undone if it fails).
    pulled: Vec<PulledLayer>,
    /// Layers another pull unpacked at the same time (that pull owns their undo).
    shared: Vec<PulledLayer>,
}

impl RegistryService {
    /// Pulls an image; progress lines go to `progress`. Errors before the first line (a missing
    /// manifest) come back without any line sent, so the daemon can answer with a status code.
    pub async fn pull(
        &self,
        req: PullRequest,
        progress: ProgressSender,
    ) -> Result<(), RegistryError> {
        let r = &req.reference;
        let base = self.endpoint(r)?;
        let mut s = self.session(
            r.domain(),
            base,
            r.path().to_string(),
            req.creds.clone(),
            false,
        )?;
        let tag_or_digest = r
            .digest()
            .or(r.tag())
            .unwrap_or(estiba_image::reference::DEFAULT_TAG)
            .to_string();
        let mut fetched = fetch_manifest(&mut s, r, &tag_or_digest).await?;
        if is_index_media_type(&fetched.media_type) {
            let index: Index = serde_json::from_slice(&fetched.bytes)
                .map_err(|e| invalid(format!("invalid manifest list: {e}")))?;
            let d = select_platform(&index, req.platform.as_deref())?;
            fetched = fetch_manifest(&mut s, r, d.as_str()).await?;
            if is_index_media_type(&fetched.media_type) {
                return Err(invalid("nested manifest lists are not supported"));
            }
        }
        let manifest: Manifest = serde_json::from_slice(&fetched.bytes)
            .map_err(|e| invalid(format!("invalid manifest: {e}")))?;
        if manifest.layers.len() > MAX_LAYERS {
            return Err(invalid(format!("image has more than {MAX_LAYERS} layers")));
        }
        let _ = progress
            .send(Progress::of(
                &tag_or_digest,
                format!("Pulling from {}", r.path()),
            ))
            .await;
        let config = fetch_config(&mut s, &manifest).await?;
        let parsed: ImageConfig = serde_json::from_slice(&config)
            .map_err(|e| invalid(format!("invalid image config: {e}")))?;
        let diff_ids = parsed.rootfs.diff_ids.clone();
        if diff_ids.len() != manifest.layers.len() {
            return Err(invalid(format!(
                "manifest has {} layers, image config {} diff IDs",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let mut got = Got::default();
        let result = self
            .fetch_layers(&s, &manifest, &diff_ids, &progress, &mut got)
            .await;
        let Got {
            created_blobs,
            mut pulled,
            shared,
        } = got;
        let outcome = match result {
            Ok(()) => {
                self.commit(&req, &fetched, &manifest, config, &mut pulled, shared)
                    .await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(changed) => {
                let digests: Vec<String> = manifest
                    .layers
                    .iter()
                    .map(|l| l.digest.to_string())
                    .collect();
                self.provenance.add_sources(&digests, r.domain(), r.path());
                let _ = progress
                    .send(Progress::line(format!("Digest: {}", fetched.digest)))
                    .await;
                let name = r.familiar_string();
                let status = if changed {
                    format!("Status: Downloaded newer image for {name}")
                } else {
                    format!("Status: Image is up to date for {name}")
                };
                let _ = progress.send(Progress::line(status)).await;
                Ok(())
            }
            Err(e) => {
                let images = Arc::clone(&self.images);
                let _ = blocking(move || {
                    images.discard_pull(pulled, &created_blobs);
                    Ok(())
                })
                .await;
                Err(e)
            }
        }
    }

    async fn fetch_layers(
        &self,
        s: &Session,
        manifest: &Manifest,
        diff_ids: &[Digest],
        progress: &ProgressSender,
        got: &mut Got,
    ) -> Result<(), RegistryError> {
        let chains = chain_ids(diff_ids);
        let limit = Semaphore::new(self.config.max_concurrent_downloads.clamp(1, 32));
        let limit = Arc::new(limit);
        let mut tasks = Vec::with_capacity(manifest.layers.len());
        // Layer i unpacks while it downloads once layer i-1 is unpacked.
        let mut below: Option<watch::Receiver<bool>> = None;
        for (i, d) in manifest.layers.iter().enumerate() {
            if d.size > MAX_BLOB_BYTES {
                return Err(invalid(format!(
                    "layer {} too large: {} bytes",
                    d.digest, d.size
                )));
            }
            let short = d.digest.hex().get(..12).unwrap_or_default().to_string();
            let images = Arc::clone(&self.images);
            let chain = chains[i].clone();
            let exists =
                blocking(move || images.has_layer(&chain).map_err(RegistryError::from)).await?;
            if exists {
                let _ = progress.send(Progress::of(&short, "Already exists")).await;
                tasks.push(None);
                below = None;
                continue;
            }
            let _ = progress
                .send(Progress::of(&short, "Pulling fs layer"))
                .await;
            let job = LayerJob {
                index: i,
                blob: LayerBlob {
                    digest: d.digest.clone(),
                    size_bytes: d.size,
                    media_type: d.media_type.clone(),
                },
                chain: chains[i].clone(),
                parent: (i > 0).then(|| chains[i - 1].clone()),
                diff_id: diff_ids[i].clone(),
                short: short.clone(),
            };
            let (ready_tx, ready_rx) = watch::channel(false);
            let fetcher = Fetcher {
                images: Arc::clone(&self.images),
                session: s.clone(),
                inflight: Arc::clone(&self.inflight),
                limit: Arc::clone(&limit),
                progress: progress.clone(),
                parent_ready: below.replace(ready_rx),
            };
            let (tx, size) = (progress.clone(), d.size);
            let task = tokio::spawn(async move {
                let done = fetcher.run(job).await;
                if done.is_ok() {
                    let _ = ready_tx.send(true);
                    let mut p = Progress::of(&short, "Extracting");
                    p.detail = Some((size, size));
                    let _ = tx.send(p).await;
                    let _ = tx.send(Progress::of(&short, "Pull complete")).await;
                }
                done
            });
            tasks.push(Some(task));
        }
        let mut first_error = None;
        for (i, t) in tasks.into_iter().enumerate() {
            let Some(task) = t else { continue };
            let done = task
                .await
                .map_err(|e| invalid(format!("download task failed: {e}")))
                .and_then(|r| r);
            match done {
                Ok(d) => {
                    if d.blob_created {
                        got.created_blobs.push(manifest.layers[i].digest.clone());
                    }
                    if d.owned {
                        got.pulled.push(d.layer);
                    } else {
                        got.shared.push(d.layer);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn commit(
        &self,
        req: &PullRequest,
        fetched: &Fetched,
        manifest: &Manifest,
        config: Bytes,
        pulled: &mut Vec<PulledLayer>,
        shared: Vec<PulledLayer>,
    ) -> Result<bool, RegistryError> {
        let images = Arc::clone(&self.images);
        let mut layers = pulled.clone();
        layers.extend(shared);
        let tag = req
            .reference
            .digest()
            .is_none()
            .then(|| req.reference.clone());
        let repository = req.reference.trim();
        let (digest, mbytes, mtype) = (
            fetched.digest.clone(),
            fetched.bytes.clone(),
            fetched.media_type.clone(),
        );
        let config_digest = manifest.config.digest.clone();
        let outcome = blocking(move || {
            images
                .commit_pull(
                    PullCommit {
                        config: &config,
                        config_digest: &config_digest,
                        manifest_digest: &digest,
                        manifest_size_bytes: mbytes.len() as u64,
                        manifest_media_type: &mtype,
                        layers,
                        tag: tag.as_ref(),
                        repository: &repository,
                    },
                    &mbytes,
                )
                .map_err(RegistryError::from)
        })
        .await?;
        pulled.clear();
        Ok(outcome.changed)
    }
}

/// A remote image's manifest descriptor and platforms (`/distribution/{name}/json`).
pub struct RemoteInfo {
    pub media_type: String,
    pub digest: String,
    pub size_bytes: u64,
    /// (os, architecture, variant).
    pub platforms: Vec<(String, String, Option<String>)>,
}

impl RegistryService {
    /// Fetches the manifest of `r` without pulling anything.
    pub async fn inspect_remote(
        &self,
        r: &Reference,
        creds: Credentials,
    ) -> Result<RemoteInfo, RegistryError> {
        let base = self.endpoint(r)?;
        let mut s = self.session(r.domain(), base, r.path().to_string(), creds, false)?;
        let tag_or_digest = r
            .digest()
            .or(r.tag())
            .unwrap_or(estiba_image::reference::DEFAULT_TAG)
            .to_string();
        let f = fetch_manifest(&mut s, r, &tag_or_digest).await?;
        let platforms = if is_index_media_type(&f.media_type) {
            let index: Index = serde_json::from_slice(&f.bytes)
                .map_err(|e| invalid(format!("invalid manifest list: {e}")))?;
            index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .map(|p| (p.os.clone(), p.architecture.clone(), p.variant.clone()))
                .collect()
        } else {
            let m: Manifest = serde_json::from_slice(&f.bytes)
                .map_err(|e| invalid(format!("invalid manifest: {e}")))?;
            let config = fetch_config(&mut s, &m).await?;
            let c: ImageConfig = serde_json::from_slice(&config)
                .map_err(|e| invalid(format!("invalid image config: {e}")))?;
            vec![(c.os, c.architecture, c.variant)]
        };
        Ok(RemoteInfo {
            media_type: f.media_type,
            digest: f.digest.to_string(),
            size_bytes: f.bytes.len() as u64,
            platforms,
        })
    }
}
