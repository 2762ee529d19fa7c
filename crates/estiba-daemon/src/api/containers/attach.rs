//! `POST /containers/{id}/attach`: the HTTP hijack. The answer is `101 UPGRADED`; the upgraded
//! connection is then spliced with the shim's attach socket (stdcopy frames without a TTY, raw
//! bytes with one — the shim already frames them as Docker does). An attach that comes before
//! start (the docker CLI's order) is held until start connects it, before the process runs.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use estiba_container::{Attach, LogOptions};
use estiba_shim::AttachOptions;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{blocking, stream_content_type};
use crate::api::{ApiError, Params, SharedState, Version};

pub(in crate::api) async fn attach(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
    Version(version): Version,
    mut req: Request,
) -> Result<Response, ApiError> {
    let detach_keys = match params.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(keys) => parse_detach_keys(keys).ok_or_else(|| {
            ApiError::bad_request(format!("Invalid detach keys ({keys}) provided"))
        })?,
        None => DEFAULT_DETACH_KEYS.to_vec(),
    };
    let options = AttachOptions {
        stdin: params.bool("stdin"),
        stdout: params.bool("stdout"),
        stderr: params.bool("stderr"),
        stdin_once: false,
    };
    // `logs=1` replays the log first; `stream=0` ends after it (docker-py's attach(logs=True)).
    let stream = params.get("stream").is_none() || params.bool("stream");
    let replay = params.bool("logs").then(|| LogOptions {
        stdout: options.stdout,
        stderr: options.stderr,
        ..Default::default()
    });
    let svc = std::sync::Arc::clone(&state.containers);
    let log_id = id.clone();
    let (record, attach) = blocking(&state, move |s| {
        let mut options = options;
        let record = s.inspect(&id)?;
        options.stdin_once = options.stdin && record.config.stdin_once;
        let attach = if stream {
            Some(s.attach(&id, options)?.1)
        } else {
            None
        };
        Ok((record, attach))
    })
    .await?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let content_type = stream_content_type(record.config.tty, version);
    // As moby: the detach sequence is only looked for on a TTY's input.
    let detach_keys = record.config.tty.then_some(detach_keys);
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("attach upgrade: {e}");
                return;
            }
        };
        let mut client = TokioIo::new(upgraded);
        if let Some(options) = replay {
            if let Err(e) = replay_log(&svc, &log_id, options, &mut client).await {
                tracing::debug!("attach log replay: {e}");
                let _ = client.shutdown().await;
                return;
            }
        }
        let shim = match attach {
            None => None,
            Some(Attach::Stream(s)) => Some(s),
            Some(Attach::Pending(rx)) => tokio::select! {
                s = rx => s.ok(),
                _ = shutdown.wait_for(|s| *s) => None,
            },
        };
        let Some(shim) = shim else {
            let _ = client.shutdown().await;
            return;
        };
        if let Err(e) = splice(client, shim, detach_keys).await {
            tracing::debug!("attach stream: {e}");
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    Ok(response.into_response())
}

/// Writes the container's log so far (framed as the attach stream is) to the client.
async fn replay_log<C>(
    svc: &std::sync::Arc<estiba_container::ContainerService>,
    id: &str,
    options: LogOptions,
    client: &mut C,
) -> std::io::Result<()>
where
    C: tokio::io::AsyncWrite + Unpin,
{
    let (writer, mut reader) = tokio::io::duplex(LOG_PIPE_BYTES);
    let mut writer = tokio_util::io::SyncIoBridge::new(writer);
    let (svc, id) = (std::sync::Arc::clone(svc), id.to_owned());
    let task = tokio::task::spawn_blocking(move || {
        let result = svc.logs(&id, &options, &mut writer);
        let _ = std::io::Write::flush(&mut writer);
        let _ = writer.shutdown();
        result
    });
    tokio::io::copy(&mut reader, client).await?;
    match task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(std::io::Error::other(e.to_string())),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// Pipe between the log reader and an attach's replay.
const LOG_PIPE_BYTES: usize = 64 * 1024;

/// Docker's default detach sequence: ctrl-p, ctrl-q.
const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];
/// Longest detach sequence accepted.
const MAX_DETACH_KEYS: usize = 16;

/// moby's `term.ToBytes`: comma-separated keys, each one character or `ctrl-<c>`.
fn parse_detach_keys(keys: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        let key = key.trim();
        let b = match key.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => match c.as_bytes()[0].to_ascii_lowercase() {
                c @ b'a'..=b'z' => c - b'a' + 1,
                b'@' => 0,
                c @ (b'[' | b'\\' | b']' | b'^' | b'_') => c - b'[' + 27,
                _ => return None,
            },
            Some(_) => return None,
            None if key.len() == 1 => key.as_bytes()[0],
            None => return None,
        };
        out.push(b);
    }
    (!out.is_empty() && out.len() <= MAX_DETACH_KEYS).then_some(out)
}

/// Matches the detach sequence across reads: bytes that may start it are held back until it
/// completes (detach) or breaks (they are passed on).
struct Detacher {
    keys: Vec<u8>,
    matched: usize,
}

impl Detacher {
    /// Filters one read into `out`; true when the sequence completed (the rest is dropped).
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

/// Copies the client's input to the shim until EOF or the detach sequence; true on detach.
async fn copy_input<R, W>(client: &mut R, shim: &mut W, keys: Option<Vec<u8>>) -> bool
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let Some(keys) = keys else {
        let _ = tokio::io::copy(client, shim).await;
        return false;
    };
    let mut detacher = Detacher { keys, matched: 0 };
    let mut buf = vec![0u8; 8192];
    let mut out = Vec::with_capacity(8192);
    loop {
        let n = match client.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        out.clear();
        let detached = detacher.feed(&buf[..n], &mut out);
        if !out.is_empty() && shim.write_all(&out).await.is_err() {
            return false;
        }
        if detached {
            return true;
        }
    }
}

/// Copies client → shim (stdin) and shim → client (output) until the output ends or the
/// client types the detach sequence (the container keeps running).
async fn splice<C>(
    client: C,
    shim: std::os::unix::net::UnixStream,
    detach_keys: Option<Vec<u8>>,
) -> std::io::Result<()>
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    shim.set_nonblocking(true)?;
    let shim = tokio::net::UnixStream::from_std(shim)?;
    let (mut shim_r, mut shim_w) = shim.into_split();
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (detached_tx, detached_rx) = tokio::sync::oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        if copy_input(&mut client_r, &mut shim_w, detach_keys).await {
            // Detach: stdin stays open for the container; only this attach ends.
            let _ = detached_tx.send(());
            return;
        }
        // The client's EOF reaches the shim, which closes stdin when stdin_once.
        let _ = shim_w.shutdown().await;
    });
    let result = tokio::select! {
        r = tokio::io::copy(&mut shim_r, &mut client_w) => r.map(|_| ()),
        Ok(()) = detached_rx => {
            tracing::debug!("attach: the client detached");
            Ok(())
        }
    };
    let _ = client_w.shutdown().await;
    input.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_moby() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q"), Some(vec![16, 17]));
        assert_eq!(parse_detach_keys("ctrl-x,a"), Some(vec![24, b'a']));
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_"), Some(vec![0, 31]));
        assert_eq!(parse_detach_keys("ctrl-1"), None);
        assert_eq!(parse_detach_keys("ab"), None);
    }

    #[test]
    fn detacher_holds_partial_matches_and_releases_broken_ones() {
        let mut d = Detacher {
            keys: vec![16, 17],
            matched: 0,
        };
        let mut out = Vec::new();
        assert!(!d.feed(b"ab\x10", &mut out));
        assert_eq!(out, b"ab");
        out.clear();
        assert!(!d.feed(b"c", &mut out));
        assert_eq!(out, b"\x10c");
        out.clear();
        assert!(!d.feed(b"\x10\x10", &mut out));
        assert_eq!(out, b"\x10");
        out.clear();
        assert!(d.feed(b"\x11rest", &mut out));
        assert!(out.is_empty());
    }
}
