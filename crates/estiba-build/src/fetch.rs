//! `ADD <url>`: a plain-HTTP GET (this build has no TLS stack: an `https://` source is an error
//! that says so), redirects followed, on the daemon's runtime from the build's blocking thread.
//! The body streams into the caller's reader; Docker's naming (the URL's last path element) and
//! `Last-Modified` as the file's mtime are worked out here.

use std::io::{self, Read};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::runtime::Handle;

use crate::BuildError;

/// Most bytes of an error response's body quoted in the error.
const MAX_ERROR_BODY: u64 = 1024;
/// Most redirects followed.
const MAX_REDIRECTS: usize = 10;
/// How long a download may go without a byte.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long connecting and getting the response head may take.
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether a COPY/ADD source is a URL (Docker: `http://`, `https://`).
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The file name Docker gives a download: the URL path's last element.
pub fn file_name(url: &str) -> Result<String, BuildError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| BuildError::Step(format!("ADD failed: invalid URL {url}: {e}")))?;
    let name = uri.path().rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." {
        return Err(BuildError::Step(format!(
            "cannot determine filename from url: {url}"
        )));
    }
    Ok(name.to_string())
}

/// A download in progress: its body as a blocking reader, and its `Last-Modified` (seconds).
pub struct Download {
    handle: Handle,
    body: Incoming,
    cur: Bytes,
    pub mtime: u64,
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while !self.cur.has_remaining() {
            let frame = self
                .handle
                .block_on(async { tokio::time::timeout(IDLE_TIMEOUT, self.body.frame()).await })
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "download stalled"))?;
            match frame {
                None => return Ok(0),
                Some(Err(e)) => return Err(io::Error::other(e)),
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data() {
                        self.cur = data;
                    }
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        self.cur.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

/// GETs `url`, following redirects; a status other than 2xx is an error naming it.
pub fn get(url: &str) -> Result<Download, BuildError> {
    let fail = |e: String| BuildError::Step(format!("ADD failed: {url}: {e}"));
    if url.starts_with("https://") {
        return Err(fail(
            "https is not supported by this builder (no TLS): use http, or download it first"
                .into(),
        ));
    }
    let handle = Handle::try_current().map_err(|_| fail("no async runtime".into()))?;
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut target = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let req = hyper::Request::get(target.as_str())
            .header("user-agent", "estiba-builder")
            .body(Empty::new())
            .map_err(|e| fail(e.to_string()))?;
        let resp = handle
            .block_on(async { tokio::time::timeout(HEAD_TIMEOUT, client.request(req)).await })
            .map_err(|_| fail("timed out".into()))?
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        if status.is_redirection() {
            let next = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| fail(format!("redirect ({status}) without a location")))?;
            target = absolute(&target, next);
            if !target.starts_with("http://") {
                return Err(fail(format!("redirected to {target}, which is not http")));
            }
            continue;
        }
        if !status.is_success() {
            // As Docker: the status and what the server said (here its first KiB).
            let mut body = Download {
                handle: handle.clone(),
                body: resp.into_body(),
                cur: Bytes::new(),
                mtime: 0,
            };
            let mut said = Vec::new();
            let _ = body.by_ref().take(MAX_ERROR_BODY).read_to_end(&mut said);
            return Err(BuildError::Step(format!(
                "ADD failed: failed to GET {url} with status {status}: {}",
                String::from_utf8_lossy(&said).trim()
            )));
        }
        let mtime = resp
            .headers()
            .get(hyper::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
            .map_or(0, |t| t.timestamp().max(0) as u64);
        return Ok(Download {
            handle,
            body: resp.into_body(),
            cur: Bytes::new(),
            mtime,
        });
    }
    Err(fail("too many redirects".into()))
}

/// A redirect's `Location` made absolute against the URL that answered it.
fn absolute(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        format!("{}{location}", &base[..host_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|&i| i >= host_end)
            .unwrap_or(host_end);
        format!("{}/{location}", &base[..dir_end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_redirects() {
        assert_eq!(file_name("http://h/a/b.tar.gz?x=1").unwrap(), "b.tar.gz");
        assert!(file_name("http://h/dir/").is_err());
        assert!(file_name("http://h").is_err());
        assert_eq!(absolute("http://h:1/a/b", "/c"), "http://h:1/c");
        assert_eq!(absolute("http://h:1/a/b", "c"), "http://h:1/a/c");
        assert_eq!(absolute("http://h:1/a/b", "http://x/y"), "http://x/y");
        assert!(get("https://example.invalid/x").is_err());
    }
}
