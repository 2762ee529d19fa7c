//! One layer of a pull in one pass: the blob streams from the registry through a tee (which
//! appends it to a partial file in the content store's ingest area and hashes it) into
//! decompression, the diff-ID hash and the unpacker. Only when the whole blob hashed to its
//! digest is the partial file renamed into the content store; the snapshot stays unrecorded
//! until the pull commits. A broken connection keeps the partial file: the retry asks for the
//! rest with `Range: bytes=N-` and replays the kept bytes through the unpacker first.
//!
//! Two pulls that need the same layer at once share one fetch (the in-flight map): the second
//! waits for the first's result.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use http_body_util::BodyExt;
use hyper::StatusCode;
use sha2::{Digest as _, Sha256};
use tokio::sync::{watch, OnceCell, Semaphore};

use estiba_image::content::COPY_BUFFER_BYTES;
use estiba_image::digest::Digest;
use estiba_image::service::{ImageService, LayerBlob, PulledLayer};

use crate::client::{error_message, Session};
use crate::{Progress, ProgressSender, RegistryError};

/// "Downloading" lines are sent at most once per this many bytes.
const PROGRESS_STEP_BYTES: u64 = 512 * 1024;
/// Attempts of one blob after the first (docker retries 5 times, waiting 5 s, 10 s, ...; a
/// local daemon gives up sooner).
const MAX_RETRIES: u32 = 3;
/// The first pause before a retry; it doubles each time.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// One layer to fetch.
#[derive(Clone)]
pub(crate) struct LayerJob {
    pub index: usize,
    pub blob: LayerBlob,
    pub chain: Digest,
    pub parent: Option<Digest>,
    pub diff_id: Digest,
    /// The 12-hex ID of progress lines.
    pub short: String,
}

/// A fetched and unpacked (not yet recorded) layer.
#[derive(Clone)]
pub(crate) struct LayerDone {
    pub layer: PulledLayer,
    /// The blob was newly stored by this fetch.
    pub blob_created: bool,
    /// False for a waiter of another pull's fetch: that pull owns the layer's undo.
    pub owned: bool,
}

type Shared = Arc<OnceCell<Result<LayerDone, String>>>;

/// Fetches in progress, by blob digest and chain ID.
#[derive(Default)]
pub(crate) struct InFlight {
    map: Mutex<HashMap<String, Shared>>,
}

impl InFlight {
    fn cell(&self, key: &str) -> Shared {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry(key.to_string()).or_default())
    }

    fn done(&self, key: &str, cell: &Shared) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(key).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            map.remove(key);
        }
    }
}

/// What a fetch task needs.
pub(crate) struct Fetcher {
    pub images: Arc<ImageService>,
    pub session: Session,
    pub inflight: Arc<InFlight>,
    pub limit: Arc<Semaphore>,
    pub progress: ProgressSender,
    /// Becomes true once the parent layer is unpacked (None: no parent to wait for).
    pub parent_ready: Option<watch::Receiver<bool>>,
}

impl Fetcher {
    /// Fetches and unpacks `job`, or waits for a fetch of it already under way.
    pub(crate) async fn run(self, job: LayerJob) -> Result<LayerDone, RegistryError> {
        let key = format!("{} {}", job.blob.digest, job.chain);
        let inflight = Arc::clone(&self.inflight);
        let cell = inflight.cell(&key);
        let mut ran = false;
        let progress = self.progress.clone();
        let short = job.short.clone();
        let result = cell
            .get_or_init(|| {
                ran = true;
                async move { self.fetch(job).await.map_err(|e| e.to_string()) }
            })
            .await
            .clone();
        if ran {
            inflight.done(&key, &cell);
            return result.map_err(RegistryError::Invalid);
        }
        let mut done = result.map_err(RegistryError::Invalid)?;
        let _ = progress
            .send(Progress::of(&short, "Download complete"))
            .await;
        done.owned = false;
        done.blob_created = false;
        Ok(done)
    }

    async fn fetch(mut self, job: LayerJob) -> Result<LayerDone, RegistryError> {
        let stream = self.parent_ready.as_ref().is_none_or(|rx| *rx.borrow());
        let path = self.images.partial_blob_path(&job.blob.digest, &job.chain);
        let permit = Arc::clone(&self.limit).acquire_owned().await;
        let mut attempt = 0;
        let (layer, blob_created) = loop {
            match self.attempt(&job, &path, stream).await {
                Ok(done) => break done,
                Err(Attempt::Retry(e)) if attempt < MAX_RETRIES => {
                    tracing::info!("retrying blob {}: {e}", job.blob.digest);
                    let pause = RETRY_PAUSE * 2u32.pow(attempt);
                    attempt += 1;
                    let _ = self
                        .progress
                        .send(Progress::of(&job.short, "Retrying"))
                        .await;
                    tokio::time::sleep(pause).await;
                }
                Err(Attempt::Retry(e)) => {
                    return Err(RegistryError::Unreachable(format!(
                        "error pulling layer {}: {e}",
                        job.blob.digest
                    )))
                }
                Err(Attempt::Fatal(e)) => return Err(e),
            }
        };
        drop(permit);
        let _ = self
            .progress
            .send(Progress::of(&job.short, "Verifying Checksum"))
            .await;
        let _ = self
            .progress
            .send(Progress::of(&job.short, "Download complete"))
            .await;
        let layer = match layer {
            Some(l) => l,
            None => match self.unpack_stored(&job).await {
                Ok(l) => l,
                Err(e) => {
                    if blob_created {
                        // The pull fails: the blob it stored goes with it.
                        let images = Arc::clone(&self.images);
                        let digest = job.blob.digest.clone();
                        let _ = blocking(move || {
                            images.discard_pull(Vec::new(), &[digest]);
                            Ok(())
                        })
                        .await;
                    }
                    return Err(e);
                }
            },
        };
        Ok(LayerDone {
            layer,
            blob_created,
            owned: true,
        })
    }

    /// The two-pass path of a layer whose parent was not ready when its download began.
    async fn unpack_stored(&mut self, job: &LayerJob) -> Result<PulledLayer, RegistryError> {
        if let Some(rx) = self.parent_ready.as_mut() {
            if rx.wait_for(|ready| *ready).await.is_err() {
                return Err(RegistryError::Invalid(format!(
                    "layer {} not unpacked: a layer below it failed",
                    job.blob.digest
                )));
            }
        }
        let images = Arc::clone(&self.images);
        let j = job.clone();
        blocking(move || {
            images
                .unpack_pulled_layer(j.index, &j.blob, &j.chain, j.parent.as_ref(), &j.diff_id)
                .map_err(RegistryError::from)
        })
        .await
    }

    /// One GET of the blob (a Range request when part of it is kept), streamed through the
    /// tee and, when `unpack`, the unpacker.
    async fn attempt(
        &mut self,
        job: &LayerJob,
        path: &Path,
        unpack: bool,
    ) -> Result<(Option<PulledLayer>, bool), Attempt> {
        let total = job.blob.size_bytes;
        let mut offset = std::fs::metadata(path).map_or(0, |m| m.len());
        if offset >= total {
            // Complete but never verified, or longer than the blob: start over.
            let _ = std::fs::remove_file(path);
            offset = 0;
        }
        let url = self.session.url(&format!("blobs/{}", job.blob.digest));
        let headers = if offset > 0 {
            vec![("range", format!("bytes={offset}-"))]
        } else {
            Vec::new()
        };
        let resp = match self.session.get_following_with(&url, &headers).await {
            Ok(r) => r,
            Err(e @ RegistryError::Unreachable(_)) => return Err(Attempt::Retry(e)),
            Err(e) => return Err(Attempt::Fatal(e)),
        };
        match resp.status() {
            StatusCode::OK => offset = 0,
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                let range = resp
                    .headers()
                    .get(hyper::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !range.starts_with(&format!("bytes {offset}-")) {
                    let _ = std::fs::remove_file(path);
                    return Err(Attempt::Retry(invalid(format!(
                        "blob {}: unexpected Content-Range {range:?}",
                        job.blob.digest
                    ))));
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let _ = std::fs::remove_file(path);
                return Err(Attempt::Retry(invalid(format!(
                    "blob {}: range not satisfiable",
                    job.blob.digest
                ))));
            }
            status => {
                let msg = error_message(resp).await;
                let e = invalid(format!("fetch blob {}: {msg}", job.blob.digest));
                return Err(if status.is_server_error() {
                    Attempt::Retry(e)
                } else {
                    Attempt::Fatal(e)
                });
            }
        }
        let mut done = offset;
        let mut reported = 0u64;
        let tx = self.progress.clone();
        let id = job.short.clone();
        let body = resp
            .into_body()
            .into_data_stream()
            .map_err(io::Error::other)
            .inspect_ok(move |chunk| {
                done += chunk.len() as u64;
                if done - reported >= PROGRESS_STEP_BYTES || done == total {
                    reported = done;
                    let mut p = Progress::of(&id, "Downloading");
                    p.detail = Some((done, total));
                    let _ = tx.try_send(p);
                }
            });
        let net = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(body));
        let images = Arc::clone(&self.images);
        let (job, path) = (job.clone(), path.to_path_buf());
        tokio::task::spawn_blocking(move || stream_blob(&images, &job, &path, offset, net, unpack))
            .await
            .map_err(|e| Attempt::Fatal(invalid(format!("download task failed: {e}"))))?
    }
}

/// How an attempt failed: a broken connection is worth a retry, bad data is not.
enum Attempt {
    Retry(RegistryError),
    Fatal(RegistryError),
}

fn invalid(m: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(m.into())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| invalid(format!("task failed: {e}")))?
}

/// The blocking half of an attempt: tee, unpack, verify, store.
fn stream_blob(
    images: &ImageService,
    job: &LayerJob,
    path: &PathBuf,
    offset: u64,
    net: impl Read + Send,
    unpack: bool,
) -> Result<(Option<PulledLayer>, bool), Attempt> {
    let fatal = |what: &str, e: io::Error| {
        Attempt::Fatal(invalid(format!("{what} {}: {e}", path.display())))
    };
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| fatal("open", e))?;
    out.set_len(offset).map_err(|e| fatal("truncate", e))?;
    let prefix = if offset > 0 {
        Some(File::open(path).map_err(|e| fatal("open", e))?.take(offset))
    } else {
        None
    };
    let tee = Tee {
        prefix,
        net,
        out,
        hasher: Sha256::new(),
        count: 0,
        limit: job.blob.size_bytes,
        net_error: None,
    };
    let mut reader = BufReader::with_capacity(COPY_BUFFER_BYTES, tee);
    let layer = unpack.then(|| {
        images.unpack_pulled_stream(
            job.index,
            &job.blob,
            &job.chain,
            job.parent.as_ref(),
            &job.diff_id,
            &mut reader,
        )
    });
    // Hash whatever the unpacker left (tar padding, or everything after a failed unpack).
    let drained = io::copy(&mut reader, &mut io::sink());
    let tee = reader.into_inner();
    let undo = |l: Option<PulledLayer>| {
        if let Some(l) = l {
            images.discard_pull(vec![l], &[]);
        }
    };
    if let Some(e) = tee.net_error {
        undo(layer.and_then(Result::ok));
        return Err(Attempt::Retry(RegistryError::Unreachable(format!(
            "read blob: {e}"
        ))));
    }
    let digest = Digest::from_hex(&hex::encode(tee.hasher.clone().finalize()))
        .map_err(|e| Attempt::Fatal(invalid(e.to_string())));
    let verified = drained.is_ok()
        && tee.count == job.blob.size_bytes
        && digest.as_ref().is_ok_and(|d| *d == job.blob.digest);
    if !verified {
        undo(layer.and_then(Result::ok));
        let _ = std::fs::remove_file(path);
        let why = match drained {
            Err(e) => e.to_string(),
            Ok(_) => format!(
                "got {} bytes hashing to {}",
                tee.count,
                digest.map_or_else(|_| "?".to_string(), |d| d.to_string())
            ),
        };
        return Err(Attempt::Fatal(invalid(format!(
            "filesystem layer verification failed for digest {}: {why}",
            job.blob.digest
        ))));
    }
    let layer = match layer {
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            let _ = std::fs::remove_file(path);
            return Err(Attempt::Fatal(e.into()));
        }
        None => None,
    };
    match images.commit_blob_file(&tee.out, path, &job.blob.digest) {
        Ok(created) => Ok((layer, created)),
        Err(e) => {
            undo(layer);
            Err(Attempt::Fatal(e.into()))
        }
    }
}

/// Reads the kept prefix of a blob, then the network; hashes and counts every byte and
/// appends the network's bytes to the partial file.
struct Tee<R> {
    prefix: Option<io::Take<File>>,
    net: R,
    out: File,
    hasher: Sha256,
    count: u64,
    limit: u64,
    /// The network read that failed (a retry may resume).
    net_error: Option<io::Error>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(p) = self.prefix.as_mut() {
            let n = p.read(buf)?;
            if n > 0 {
                self.hasher.update(&buf[..n]);
                self.count += n as u64;
                return Ok(n);
            }
            self.prefix = None;
        }
        let n = match self.net.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.net_error = Some(e);
                return Err(copy);
            }
        };
        if n == 0 && self.count < self.limit {
            let e = io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed early");
            self.net_error = Some(io::Error::new(e.kind(), e.to_string()));
            return Err(e);
        }
        if self.count + n as u64 > self.limit {
            return Err(io::Error::other(format!(
                "blob larger than its declared {} bytes",
                self.limit
            )));
        }
        self.out.write_all(&buf[..n])?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
