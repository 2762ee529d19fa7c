//! Uploading one blob, as docker does: HEAD to skip what the registry has; a cross-repository
//! mount (`POST .../blobs/uploads/?mount=<digest>&from=<repo>`) when the blob is known to be in
//! another repository of the registry; else an upload session, monolithic (one PUT) for small
//! blobs and chunked (PATCH with Content-Range per chunk, then PUT) for large ones.
//! Uncompressed layers are gzipped first, like docker, and the gzip digest remembered.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::LOCATION;
use hyper::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use estiba_image::config::Compression;
use estiba_image::digest::{Digest, HashingWriter};

use crate::client::{error_message, ReqBody, Session};
use crate::{Progress, ProgressSender, RegistryError};

/// Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size.
pub(crate) const CHUNK_BYTES: u64 = 32 << 20;
/// Bytes between two "Pushing" lines.
const PROGRESS_STEP_BYTES: u64 = 512 * 1024;
/// Mount sources tried per blob.
const MAX_MOUNT_TRIES: usize = 3;

fn invalid(m: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(m.into())
}

/// How a blob reached the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Uploaded {
    Exists,
    Mounted(String),
    Pushed,
}

/// One blob to upload from a local file.
pub(crate) struct BlobFile<'a> {
    pub path: &'a Path,
    pub digest: &'a Digest,
    pub size: u64,
    /// The progress ID ("Pushing" lines); None for the config.
    pub id: Option<&'a str>,
}

/// Uploads `blob` unless the registry has it, trying mounts from `sources` first.
pub(crate) async fn upload(
    s: &mut Session,
    blob: &BlobFile<'_>,
    sources: &[String],
    progress: &ProgressSender,
) -> Result<Uploaded, RegistryError> {
    match skip(s, blob.digest, sources).await? {
        Skip::Done(how) => Ok(how),
        Skip::Upload(session) => send(s, blob, session, progress).await,
    }
}

/// Whether a blob needs its bytes sent.
pub(crate) enum Skip {
    /// The registry has it (now).
    Done(Uploaded),
    /// It must be uploaded, into this upload session when a failed mount opened one.
    Upload(Option<String>),
}

/// HEAD, then mounts from `sources`: what is left to do for blob `digest`.
pub(crate) async fn skip(
    s: &mut Session,
    digest: &Digest,
    sources: &[String],
) -> Result<Skip, RegistryError> {
    let head = s.url(&format!("blobs/{digest}"));
    let resp = s.send(Method::HEAD, &head, None, Bytes::new(), &[]).await?;
    if resp.status() == StatusCode::OK {
        return Ok(Skip::Done(Uploaded::Exists));
    }
    for from in sources.iter().take(MAX_MOUNT_TRIES) {
        let url = s.url(&format!("blobs/uploads/?mount={digest}&from={from}"));
        let resp = s.send(Method::POST, &url, None, Bytes::new(), &[]).await?;
        match resp.status() {
            StatusCode::CREATED => return Ok(Skip::Done(Uploaded::Mounted(from.clone()))),
            // The registry could not mount: it opened an ordinary upload instead.
            StatusCode::ACCEPTED => return Ok(Skip::Upload(Some(location(s, &resp)?))),
            _ => {}
        }
    }
    Ok(Skip::Upload(None))
}

/// Sends the bytes of `blob`: one PUT, or PATCH chunks and a closing PUT.
pub(crate) async fn send(
    s: &mut Session,
    blob: &BlobFile<'_>,
    session: Option<String>,
    progress: &ProgressSender,
) -> Result<Uploaded, RegistryError> {
    let digest = blob.digest;
    let mut url = match session {
        Some(u) => u,
        None => start(s, digest).await?,
    };
    if blob.size > CHUNK_BYTES {
        url = chunks(s, blob, url, progress).await?;
        let url = with_digest(&url, digest);
        let resp = s
            .send_stream(
                Method::PUT,
                &url,
                crate::client::full_body(Bytes::new()),
                &[],
            )
            .await?;
        return finished(resp, digest).await;
    }
    let body = file_body(blob.path, 0, blob.size, blob, progress).await?;
    let headers = [
        ("content-type", "application/octet-stream".to_string()),
        ("content-length", blob.size.to_string()),
    ];
    let url = with_digest(&url, digest);
    let resp = s.send_stream(Method::PUT, &url, body, &headers).await?;
    finished(resp, digest).await
}

async fn finished(
    resp: hyper::Response<hyper::body::Incoming>,
    digest: &Digest,
) -> Result<Uploaded, RegistryError> {
    if resp.status() != StatusCode::CREATED {
        let msg = error_message(resp).await;
        return Err(invalid(format!("upload {digest}: {msg}")));
    }
    Ok(Uploaded::Pushed)
}

fn with_digest(url: &str, digest: &Digest) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}digest={digest}")
}

fn location(
    s: &Session,
    resp: &hyper::Response<hyper::body::Incoming>,
) -> Result<String, RegistryError> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| invalid("upload answer without a Location"))?;
    Ok(s.resolve(loc))
}

async fn start(s: &mut Session, digest: &Digest) -> Result<String, RegistryError> {
    let url = s.url("blobs/uploads/");
    let resp = s.send(Method::POST, &url, None, Bytes::new(), &[]).await?;
    if resp.status() != StatusCode::ACCEPTED {
        let msg = error_message(resp).await;
        return Err(invalid(format!("start upload of {digest}: {msg}")));
    }
    location(s, &resp)
}

/// PATCHes the blob in chunks; the registry's last Location.
async fn chunks(
    s: &mut Session,
    blob: &BlobFile<'_>,
    mut url: String,
    progress: &ProgressSender,
) -> Result<String, RegistryError> {
    let mut offset = 0u64;
    while offset < blob.size {
        let len = CHUNK_BYTES.min(blob.size - offset);
        let body = file_body(blob.path, offset, len, blob, progress).await?;
        let headers = [
            ("content-type", "application/octet-stream".to_string()),
            ("content-length", len.to_string()),
            ("content-range", format!("{offset}-{}", offset + len - 1)),
        ];
        let resp = s.send_stream(Method::PATCH, &url, body, &headers).await?;
        if resp.status() != StatusCode::ACCEPTED {
            let msg = error_message(resp).await;
            return Err(invalid(format!(
                "upload chunk {offset}-{} of {}: {msg}",
                offset + len - 1,
                blob.digest
            )));
        }
        url = location(s, &resp)?;
        offset += len;
    }
    Ok(url)
}

/// `len` bytes of `path` from `offset` as a request body, with "Pushing" progress.
async fn file_body(
    path: &Path,
    offset: u64,
    len: u64,
    blob: &BlobFile<'_>,
    progress: &ProgressSender,
) -> Result<ReqBody, RegistryError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| invalid(format!("open blob {}: {e}", blob.digest)))?;
    file.seek(io::SeekFrom::Start(offset))
        .await
        .map_err(|e| invalid(format!("seek blob {}: {e}", blob.digest)))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024);
    let tx = progress.clone();
    let id = blob.id.map(str::to_string);
    let size = blob.size;
    let (mut done, mut reported) = (offset, offset);
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

/// The compression of the blob file at `path`, from its first bytes.
pub(crate) fn sniff(path: &Path) -> io::Result<Compression> {
    let mut head = [0u8; 8];
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        let got = f.read(&mut head[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(Compression::detect(&head[..n]))
}

/// A gzip copy of an uncompressed layer, in a temp file removed on drop.
pub(crate) struct Gzipped {
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
}

impl Drop for Gzipped {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Gzips `src` into `dest` (fast level: pushes are bound by it), hashing the output.
pub(crate) fn gzip(src: &Path, dest: PathBuf) -> io::Result<Gzipped> {
    let input = std::fs::File::open(src)?;
    let out = std::fs::File::create(&dest)?;
    let mut gz = Gzipped {
        path: dest,
        digest: Digest::of_bytes(b""),
        size: 0,
    };
    let hashing = HashingWriter::new(io::BufWriter::with_capacity(1 << 20, out));
    let mut enc = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
    let mut reader = io::BufReader::with_capacity(1 << 20, input);
    io::copy(&mut reader, &mut enc)?;
    let hashing = enc.finish()?;
    let (mut buffered, digest, size) = hashing.finish();
    buffered.flush()?;
    gz.digest = digest;
    gz.size = size;
    Ok(gz)
}
