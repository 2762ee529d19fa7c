//! `/containers/...`: create, start, stop, kill, restart, wait, attach, logs, list, inspect,
//! remove, prune. Handlers parse Docker's query and JSON, call the container service on the
//! blocking pool, and shape the answer; attach hijacks the connection (see `attach.rs`).

mod attach;
pub(super) mod commit;
mod convert;
pub(super) mod exec;
pub(super) mod fs;
mod stats;
pub(super) mod update;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use estiba_api::container::WaitExitError;
use estiba_api::{
    ApiVersion, ContainerCreateBody, ContainerCreateResponse, ContainerPruneResponse,
    ContainerWaitResponse,
};
use estiba_container::{
    ContainerError, ContainerService, ListFilters, LogOptions, StartOutcome, StopOutcome,
    WaitCondition,
};

use super::events::parse_time;
use super::filters::Filters;
use super::stream::{self, ChannelWriter, MidStreamError};
use super::{read_json, ApiError, Params, SharedState, Version};

pub(super) use attach::attach;
pub(super) use stats::{rename, stats};

/// Runs a blocking container-service call on the blocking pool.
async fn blocking<T, F>(state: &SharedState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Arc<ContainerService>) -> Result<T, ContainerError> + Send + 'static,
{
    let svc = Arc::clone(&state.containers);
    match tokio::task::spawn_blocking(move || f(&svc)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            tracing::error!("container service task failed: {e}");
            Err(ApiError::internal(
                "internal error: container service task failed",
            ))
        }
    }
}

fn empty(status: StatusCode) -> Response {
    status.into_response()
}

pub(super) async fn create(
    State(state): State<SharedState>,
    params: Params,
    body: Body,
) -> Result<Response, ApiError> {
    let body: ContainerCreateBody = read_json(body).await?;
    let name = params.get("name").unwrap_or_default().to_string();
    let req = convert::create_request(name, body);
    let (id, warnings) = blocking(&state, move |s| s.create(req)).await?;
    Ok((
        StatusCode::CREATED,
        Json(ContainerCreateResponse { id, warnings }),
    )
        .into_response())
}

pub(super) async fn start(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match blocking(&state, move |s| s.start(&id)).await? {
        StartOutcome::Started => Ok(empty(StatusCode::NO_CONTENT)),
        StartOutcome::AlreadyRunning => Ok(empty(StatusCode::NOT_MODIFIED)),
    }
}

fn timeout_param(params: &Params) -> Result<Option<i64>, ApiError> {
    match params.get("t").filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid value for t: {t}"))),
    }
}

pub(super) async fn stop(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let timeout = timeout_param(&params)?;
    let signal = params.get("signal").map(str::to_string);
    match blocking(&state, move |s| s.stop(&id, timeout, signal.as_deref())).await? {
        StopOutcome::Stopped => Ok(empty(StatusCode::NO_CONTENT)),
        StopOutcome::NotRunning => Ok(empty(StatusCode::NOT_MODIFIED)),
    }
}

pub(super) async fn restart(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let timeout = timeout_param(&params)?;
    let signal = params.get("signal").map(str::to_string);
    blocking(&state, move |s| s.restart(&id, timeout, signal.as_deref())).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub(super) async fn kill(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let signal = params.get("signal").map(str::to_string);
    let name = id.clone();
    match blocking(&state, move |s| s.kill(&id, signal.as_deref())).await {
        Ok(()) => Ok(empty(StatusCode::NO_CONTENT)),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(ApiError::not_found(format!(
            "Cannot kill container: {name}: {}",
            e.message
        ))),
        Err(e) => Err(e),
    }
}

pub(super) async fn remove(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let force = params.bool("force");
    let volumes = params.bool("v");
    blocking(&state, move |s| s.remove_with_volumes(&id, force, volumes)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub(super) async fn inspect(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let size = params.bool("size");
    let out = blocking(&state, move |s| {
        let record = s.inspect(&id)?;
        Ok(convert::inspect(s, &record, size))
    })
    .await?;
    Ok(Json(out).into_response())
}

pub(super) async fn list(
    State(state): State<SharedState>,
    params: Params,
) -> Result<Response, ApiError> {
    let filters = Filters::parse(params.get("filters").unwrap_or_default())?;
    filters.only(&[
        "status", "name", "id", "label", "ancestor", "exited", "volume", "health",
    ])?;
    for h in filters.get("health") {
        if !["starting", "healthy", "unhealthy", "none"].contains(&h.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unrecognised filter value for health: {h}"
            )));
        }
    }
    for s in filters.get("status") {
        if ![
            "created",
            "restarting",
            "running",
            "removing",
            "paused",
            "exited",
            "dead",
        ]
        .contains(&s.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "invalid filter 'status={s}'"
            )));
        }
    }
    let exited = filters
        .get("exited")
        .iter()
        .map(|e| {
            e.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid filter 'exited={e}'")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let limit = match params.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            Ok(_) => None,
            Err(_) => return Err(ApiError::bad_request(format!("invalid limit: {l}"))),
        },
        None => None,
    };
    let ancestors = filters.get("ancestor").to_vec();
    let mut f = ListFilters {
        all: params.bool("all"),
        limit,
        status: filters.get("status").to_vec(),
        name: filters.get("name").to_vec(),
        id: filters.get("id").to_vec(),
        label: filters.get("label").to_vec(),
        ancestor_ids: Vec::new(),
        exited,
        volume: filters.get("volume").to_vec(),
        health: filters.get("health").to_vec(),
    };
    let size = params.bool("size");
    let images = Arc::clone(&state.images);
    let rows = blocking(&state, move |s| {
        for a in &ancestors {
            // An unknown image matches no container; a known one matches by ID.
            f.ancestor_ids.push(
                images
                    .resolve_id(a)
                    .unwrap_or_else(|_| format!("unknown:{a}")),
            );
        }
        s.list(&f, size)
    })
    .await?;
    let now = chrono::Utc::now();
    let out: Vec<_> = rows
        .iter()
        .map(|r| {
            let mut row = convert::summary(r, now);
            row.ports = crate::api::networks::summary_ports(&state.networks, &r.record.id);
            row.network_settings =
                crate::api::networks::summary_networks(&state.networks, &r.record);
            row
        })
        .collect();
    Ok(Json(out).into_response())
}

pub(super) async fn wait(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let condition = match params.get("condition").unwrap_or_default() {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: \"{other}\""
            )))
        }
    };
    let (_, rx) = state.containers.subscribe(&id).map_err(ApiError::from)?;
    let mut shutdown = state.shutdown.clone();
    // Headers go out now: the docker CLI waits for them before it starts the container.
    let body = futures_util::stream::once(async move {
        tokio::select! {
            r = estiba_container::wait(rx, condition) => {
                let resp = ContainerWaitResponse {
                    status_code: r.exit_code,
                    error: r.error.map(|message| WaitExitError { message }),
                };
                let mut line = serde_json::to_vec(&resp).unwrap_or_default();
                line.push(b'\n');
                Ok(Bytes::from(line))
            }
            _ = shutdown.wait_for(|s| *s) => Err(std::io::Error::other("daemon shutting down")),
        }
    });
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// The content type of a container's output stream, as dockerd 28 sends it.
pub(super) fn stream_content_type(tty: bool, version: ApiVersion) -> &'static str {
    if !tty && version >= ApiVersion::new(1, 42) {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}

pub(super) async fn logs(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
    Version(version): Version,
) -> Result<Response, ApiError> {
    let time = |key: &str| -> Result<Option<i64>, ApiError> {
        match params.get(key).filter(|v| !v.is_empty() && *v != "0") {
            None => Ok(None),
            Some(v) => parse_time(v).map(Some).map_err(ApiError::bad_request),
        }
    };
    let options = LogOptions {
        stdout: params.bool("stdout"),
        stderr: params.bool("stderr"),
        follow: params.bool("follow"),
        tail: match params.get("tail").unwrap_or("all") {
            "all" | "" => None,
            n => match n.parse::<i64>() {
                Ok(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => None,
            },
        },
        since_nano: time("since")?,
        until_nano: time("until")?,
        timestamps: params.bool("timestamps"),
    };
    if !options.stdout && !options.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let record = blocking(&state, {
        let id = id.clone();
        move |s| s.inspect(&id)
    })
    .await?;
    let content_type = stream_content_type(record.config.tty, version);
    let (tx, rx) = stream::channel();
    let svc = Arc::clone(&state.containers);
    tokio::task::spawn_blocking(move || {
        // An empty first chunk sends the headers before any log line exists (logs -f).
        if tx.blocking_send(Ok(Bytes::new())).is_err() {
            return;
        }
        let mut out = ChannelWriter::new(tx.clone());
        if let Err(e) = svc.logs(&id, &options, &mut out) {
            let _ = tx.blocking_send(Err(ApiError::from(e)));
            return;
        }
        let _ = std::io::Write::flush(&mut out);
    });
    Ok(stream::respond(rx, content_type, MidStreamError::Abort).await)
}

pub(super) async fn prune(
    State(state): State<SharedState>,
    params: Params,
) -> Result<Response, ApiError> {
    let filters = Filters::parse(params.get("filters").unwrap_or_default())?;
    filters.only(&["label", "label!", "until"])?;
    let mut labels = filters.get("label").to_vec();
    labels.extend(filters.get("label!").iter().map(|l| format!("!{l}")));
    let until = match filters.get("until").first() {
        Some(u) => Some(parse_time(u).map_err(ApiError::bad_request)?),
        None => None,
    };
    let (deleted, space) = blocking(&state, move |s| s.prune(&labels, until)).await?;
    Ok(Json(ContainerPruneResponse {
        containers_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: space,
    })
    .into_response())
}

pub(super) async fn resize(
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
    blocking(&state, move |s| s.resize(&id, h, w)).await?;
    Ok(empty(StatusCode::OK))
}
