//! The container filesystem endpoints: `/containers/{id}/archive` (GET, HEAD, PUT: `docker
//! cp`), `/changes` (`docker diff`) and `/export` (`docker export`). Tarballs stream both ways
//! through bounded channels; nothing is buffered whole.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use estiba_container::{ContainerService, PathStat};
use serde::Serialize;

use super::blocking;
use crate::api::stream;
use crate::api::{ApiError, Params, SharedState};

/// The header carrying a path's stat, base64 JSON.
const PATH_STAT_HEADER: &str = "x-docker-container-path-stat";

/// Docker's `container.PathStat`.
#[derive(Serialize)]
struct PathStatBody<'a> {
    name: &'a str,
    size: i64,
    mode: u32,
    mtime: &'a str,
    #[serde(rename = "linkTarget")]
    link_target: &'a str,
}

/// Docker's `container.FilesystemChange`.
#[derive(Serialize)]
struct ChangeBody {
    #[serde(rename = "Path")]
    path: String,
    #[serde(rename = "Kind")]
    kind: u8,
}

fn path_param(params: &Params) -> Result<String, ApiError> {
    match params.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request("path cannot be empty")),
    }
}

fn stat_header(stat: &PathStat) -> Result<HeaderValue, ApiError> {
    let json = serde_json::to_vec(&PathStatBody {
        name: &stat.name,
        size: stat.size_bytes,
        mode: stat.mode,
        mtime: &stat.mtime,
        link_target: &stat.link_target,
    })
    .map_err(|e| ApiError::internal(format!("encode path stat: {e}")))?;
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(&json))
        .map_err(|e| ApiError::internal(format!("encode path stat: {e}")))
}

/// `HEAD /containers/{id}/archive?path=`.
pub(in crate::api) async fn archive_head(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let path = path_param(&params)?;
    let stat = blocking(&state, move |s| s.stat_path(&id, &path)).await?;
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(
        HeaderName::from_static(PATH_STAT_HEADER),
        stat_header(&stat)?,
    );
    Ok(response)
}

/// `GET /containers/{id}/archive?path=`: the stat header, then the tar stream.
pub(in crate::api) async fn archive_get(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let path = path_param(&params)?;
    let (id2, path2) = (id.clone(), path.clone());
    let stat = blocking(&state, move |s| s.stat_path(&id2, &path2)).await?;
    let header = stat_header(&stat)?;
    let mut response = stream_tar(&state, move |s, out| s.archive_path(&id, &path, out)).await;
    if response.status().is_success() {
        response
            .headers_mut()
            .insert(HeaderName::from_static(PATH_STAT_HEADER), header);
    }
    Ok(response)
}

/// How much of a refused upload is read before the error answer (Go's net/http reads 256 KiB).
const DRAIN_UNREAD_BYTES: u64 = 1 << 20;

/// `PUT /containers/{id}/archive?path=`: unpacks the body's tar into the directory `path`.
pub(in crate::api) async fn archive_put(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
    body: Body,
) -> Result<Response, ApiError> {
    let path = path_param(&params)?;
    let copy_uid_gid = matches!(params.get("copyUIDGID"), Some("1" | "true" | "True"));
    let mut reader = stream::body_reader(body);
    blocking(&state, move |s| {
        let result = s.extract_to(&id, &path, copy_uid_gid, &mut reader);
        // Read (a bounded part of) what the client is still sending before answering, as
        // Go's net/http does: closing on a client mid-write makes it see "broken pipe"
        // instead of our answer. A tar read to its end-of-archive block still leaves the
        // second zero block and the chunked trailer unread, so this holds for success too.
        let _ = std::io::copy(
            &mut std::io::Read::take(&mut reader, DRAIN_UNREAD_BYTES),
            &mut std::io::sink(),
        );
        result
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /containers/{id}/changes`.
pub(in crate::api) async fn changes(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let changes = blocking(&state, move |s| s.changes(&id)).await?;
    let body: Vec<ChangeBody> = changes
        .into_iter()
        .map(|c| ChangeBody {
            path: c.path,
            kind: c.kind as u8,
        })
        .collect();
    Ok(Json(body).into_response())
}

/// `GET /containers/{id}/export`.
pub(in crate::api) async fn export(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // An unknown container is a 404 before any byte.
    let id2 = id.clone();
    blocking(&state, move |s| s.resolve_id(&id2)).await?;
    Ok(stream_tar(&state, move |s, out| s.export(&id, out)).await)
}

/// Runs a tar-writing service call on the blocking pool and streams what it writes.
async fn stream_tar<F>(state: &SharedState, f: F) -> Response
where
    F: FnOnce(
            &ContainerService,
            &mut dyn std::io::Write,
        ) -> Result<(), estiba_container::ContainerError>
        + Send
        + 'static,
{
    let svc = Arc::clone(&state.containers);
    stream::tar_response(move |out| f(&svc, out).map_err(ApiError::from)).await
}
