//! `docker exec`, `top`, `pause`/`unpause`: `POST /containers/{id}/exec`, `POST /exec/{id}/start`
//! (a hijack like attach: 101, then the shim's stream; held open until the exit code is
//! recorded so that the client's inspect right after sees it), `GET /exec/{id}/json`,
//! `POST /exec/{id}/resize`, `GET /containers/{id}/top`, `POST /containers/{id}/pause|unpause`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use estiba_container::{ExecConfig, ExecInfo};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{blocking, empty, stream_content_type};
use crate::api::{read_json, ApiError, Params, SharedState, Version};

/// How long a finished stream waits for the exec's exit code before it closes anyway.
const EXIT_CODE_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecCreateBody {
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    user: String,
    working_dir: String,
    tty: bool,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    privileged: bool,
    detach_keys: String,
}

#[derive(Debug, Serialize)]
struct IdResponse {
    #[serde(rename = "Id")]
    id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStartBody {
    detach: bool,
}

#[derive(Debug, Serialize)]
struct ProcessConfig {
    arguments: Vec<String>,
    entrypoint: String,
    privileged: bool,
    tty: bool,
    user: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExecInspect {
    #[serde(rename = "ID")]
    id: String,
    running: bool,
    exit_code: Option<i64>,
    process_config: ProcessConfig,
    open_stdin: bool,
    open_stderr: bool,
    open_stdout: bool,
    can_remove: bool,
    #[serde(rename = "ContainerID")]
    container_id: String,
    detach_keys: String,
    pid: u32,
}

fn inspect_json(info: ExecInfo) -> ExecInspect {
    let mut cmd = info.config.cmd.into_iter();
    ExecInspect {
        id: info.id,
        running: info.running,
        exit_code: info.exit_code,
        process_config: ProcessConfig {
            entrypoint: cmd.next().unwrap_or_default(),
            arguments: cmd.collect(),
            privileged: info.config.privileged,
            tty: info.config.tty,
            user: info.config.user,
        },
        open_stdin: info.config.attach_stdin,
        open_stderr: info.config.attach_stderr,
        open_stdout: info.config.attach_stdout,
        can_remove: false,
        container_id: info.container_id,
        detach_keys: info.config.detach_keys,
        pid: info.pid,
    }
}

pub(in crate::api) async fn exec_create(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let body: ExecCreateBody = read_json(body).await?;
    let config = ExecConfig {
        cmd: body.cmd.unwrap_or_default(),
        env: body.env.unwrap_or_default(),
        user: body.user,
        working_dir: body.working_dir,
        tty: body.tty,
        attach_stdin: body.attach_stdin,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        privileged: body.privileged,
        detach_keys: body.detach_keys,
    };
    let exec_id = blocking(&state, move |s| s.exec_create(&id, config)).await?;
    Ok((StatusCode::CREATED, Json(IdResponse { id: exec_id })).into_response())
}

pub(in crate::api) async fn exec_inspect(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let info = blocking(&state, move |s| s.exec_inspect(&id)).await?;
    Ok(Json(inspect_json(info)).into_response())
}

pub(in crate::api) async fn exec_resize(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let dim = |k: &str| -> Result<u16, ApiError> {
        params
            .get(k)
            .unwrap_or("0")
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid value for {k}")))
    };
    let (h, w) = (dim("h")?, dim("w")?);
    blocking(&state, move |s| s.exec_resize(&id, h, w)).await?;
    Ok(empty(StatusCode::OK))
}

pub(in crate::api) async fn exec_start(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Version(version): Version,
    mut req: Request,
) -> Result<Response, ApiError> {
    let body = std::mem::take(req.body_mut());
    let start: ExecStartBody = read_json(body).await?;
    let exec_id = id.clone();
    let info = blocking(&state, move |s| s.exec_inspect(&exec_id)).await?;
    let tty = info.config.tty;
    if start.detach {
        let started = blocking(&state, move |s| s.exec_start(&id)).await?;
        // Nobody reads the output of a detached exec; drain it so the process never blocks.
        tokio::spawn(async move {
            if let Ok(shim) = into_tokio(started.stream) {
                let mut shim = shim;
                let _ = tokio::io::copy(&mut shim, &mut tokio::io::sink()).await;
            }
        });
        return Ok(empty(StatusCode::OK));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let started = blocking(&state, move |s| s.exec_start(&id)).await;
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("exec upgrade: {e}");
                return;
            }
        };
        let mut client = TokioIo::new(upgraded);
        match started {
            Ok(started) => {
                if let Err(e) = splice(client, started).await {
                    tracing::debug!("exec stream: {e}");
                }
            }
            Err(e) => {
                // Docker writes a start failure into the stream, as stdout.
                let message = format!("{}\r\n", e.message);
                let _ = client.write_all(&frame(tty, message.as_bytes())).await;
                let _ = client.shutdown().await;
            }
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(stream_content_type(tty, version)),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    Ok(response.into_response())
}

/// One stdout frame (raw bytes with a TTY).
fn frame(tty: bool, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    if !tty {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&[1, 0, 0, 0]);
        out.extend_from_slice(&len.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn into_tokio(stream: std::os::unix::net::UnixStream) -> std::io::Result<tokio::net::UnixStream> {
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

/// Client → shim (stdin) and shim → client (output); once the output ends, waits for the exit
/// code to be recorded before closing the client's stream.
async fn splice<C>(client: C, started: estiba_container::ExecStream) -> std::io::Result<()>
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut done = started.done;
    let shim = into_tokio(started.stream)?;
    let (mut shim_r, mut shim_w) = shim.into_split();
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match client_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if shim_w.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        // The client's EOF reaches the shim, which closes the process's stdin.
        let _ = shim_w.shutdown().await;
    });
    let result = tokio::io::copy(&mut shim_r, &mut client_w).await;
    let _ = tokio::time::timeout(EXIT_CODE_WAIT, done.wait_for(|d| *d)).await;
    let _ = client_w.shutdown().await;
    input.abort();
    result.map(|_| ())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TopResponse {
    titles: Vec<String>,
    processes: Vec<Vec<String>>,
}

pub(in crate::api) async fn top(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let ps_args = params.get("ps_args").unwrap_or_default().to_string();
    let top = blocking(&state, move |s| s.top(&id, &ps_args)).await?;
    Ok(Json(TopResponse {
        titles: top.titles,
        processes: top.processes,
    })
    .into_response())
}

pub(in crate::api) async fn pause(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(&state, move |s| s.pause(&id)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub(in crate::api) async fn unpause(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(&state, move |s| s.unpause(&id)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
