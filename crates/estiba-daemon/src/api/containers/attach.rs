//! `POST /containers/{id}/attach`: the HTTP hijack. The answer is `101 UPGRADED`; the upgraded
//! connection is then spliced with the shim's attach socket (stdcopy frames without a TTY, raw
//! bytes with one — the shim already frames them as Docker does). An attach that comes before
//! start (the docker CLI's order) is held until start connects it, before the process runs.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use estiba_container::Attach;
use estiba_shim::AttachOptions;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use super::{blocking, stream_content_type};
use crate::api::{ApiError, Params, SharedState, Version};

pub(in crate::api) async fn attach(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
    Version(version): Version,
    mut req: Request,
) -> Result<Response, ApiError> {
    let options = AttachOptions {
        stdin: params.bool("stdin"),
        stdout: params.bool("stdout"),
        stderr: params.bool("stderr"),
        stdin_once: false,
    };
    let (record, attach) = blocking(&state, move |s| {
        let mut options = options;
        let record = s.inspect(&id)?;
        options.stdin_once = options.stdin && record.config.stdin_once;
        s.attach(&id, options)
    })
    .await?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let content_type = stream_content_type(record.config.tty, version);
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("attach upgrade: {e}");
                return;
            }
        };
        let shim = match attach {
            Attach::Stream(s) => Some(s),
            Attach::Pending(rx) => tokio::select! {
                s = rx => s.ok(),
                _ = shutdown.wait_for(|s| *s) => None,
            },
        };
        let mut client = TokioIo::new(upgraded);
        let Some(shim) = shim else {
            let _ = client.shutdown().await;
            return;
        };
        if let Err(e) = splice(client, shim).await {
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

/// Copies client → shim (stdin) and shim → client (output) until the output ends.
async fn splice<C>(client: C, shim: std::os::unix::net::UnixStream) -> std::io::Result<()>
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    shim.set_nonblocking(true)?;
    let shim = tokio::net::UnixStream::from_std(shim)?;
    let (mut shim_r, mut shim_w) = shim.into_split();
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let input = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_r, &mut shim_w).await;
        // The client's EOF reaches the shim, which closes stdin when stdin_once.
        let _ = shim_w.shutdown().await;
    });
    let result = tokio::io::copy(&mut shim_r, &mut client_w).await;
    let _ = client_w.shutdown().await;
    input.abort();
    result.map(|_| ())
}
