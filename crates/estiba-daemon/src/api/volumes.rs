//! `/volumes`: the volume endpoints (list, create, inspect, remove, prune), estiba's
//! `/volumes/{name}/export` and `/import`, and the JSON shapes of volumes and of a container's
//! `Mounts`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use estiba_api::ApiVersion;
use estiba_container::{MountKind, MountPoint};
use estiba_volume::{CreateVolume, Volume, VolumeError, VolumeService};
use serde::Deserialize;
use serde_json::{json, Value};

use super::filters::Filters;
use super::stream;
use super::{read_json, ApiError, Params, SharedState, Version};

/// This module's routes, merged into [`super::router`].
pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
        .route("/volumes/{name}/export", get(export))
        .route("/volumes/{name}/import", put(import))
}

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> Self {
        let status = match &e {
            VolumeError::NotFound(_) => StatusCode::NOT_FOUND,
            VolumeError::InvalidCreate { .. } | VolumeError::InvalidParameter(_) => {
                StatusCode::BAD_REQUEST
            }
            VolumeError::InUse { .. } | VolumeError::Conflict(_) => StatusCode::CONFLICT,
            VolumeError::Io { .. } | VolumeError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!("volume service: {e}");
        }
        ApiError::new(status, e.to_string())
    }
}

/// Runs a blocking volume-service call on the blocking pool.
async fn blocking<T, F>(state: &SharedState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&VolumeService) -> Result<T, VolumeError> + Send + 'static,
{
    let svc = Arc::clone(&state.volumes);
    match tokio::task::spawn_blocking(move || f(&svc)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => {
            tracing::error!("volume service task failed: {e}");
            Err(ApiError::internal(
                "internal error: volume service task failed",
            ))
        }
    }
}

fn null_if_empty(m: &BTreeMap<String, String>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        json!(m)
    }
}

/// A volume as `GET /volumes/{name}` shows it; `usage` adds `UsageData` (`system df`).
pub(super) fn volume_json(v: &Volume, usage: Option<(u64, usize)>) -> Value {
    let r = &v.record;
    let mut out = json!({
        "CreatedAt": r.created_at,
        "Driver": "local",
        "Labels": null_if_empty(&r.labels),
        "Mountpoint": v.mountpoint.display().to_string(),
        "Name": r.name,
        "Options": null_if_empty(&r.options),
        "Scope": "local",
    });
    if let (Some((size, refs)), Some(o)) = (usage, out.as_object_mut()) {
        o.insert(
            "UsageData".to_string(),
            json!({ "Size": size, "RefCount": refs }),
        );
    }
    out
}

/// One entry of a container's `Mounts` (inspect and `ps`), in dockerd's shape.
pub(super) fn mount_json(mp: &MountPoint) -> Value {
    match mp.kind {
        MountKind::Volume => json!({
            "Type": "volume", "Name": mp.name, "Source": mp.source,
            "Destination": mp.destination, "Driver": "local", "Mode": mp.mode,
            "RW": mp.rw, "Propagation": mp.propagation,
        }),
        kind => json!({
            "Type": kind.as_str(), "Source": mp.source, "Destination": mp.destination,
            "Mode": mp.mode, "RW": mp.rw, "Propagation": mp.propagation,
        }),
    }
}

fn matches(f: &Filters, v: &Volume) -> bool {
    let r = &v.record;
    let name_ok = match f.get("name") {
        [] => true,
        names => names.iter().any(|n| r.name.contains(n.as_str())),
    };
    name_ok && f.exact_match("driver", "local") && f.match_kv("label", &r.labels)
}

/// `GET /volumes`.
async fn list(State(state): State<SharedState>, params: Params) -> Result<Json<Value>, ApiError> {
    let f = Filters::parse(params.get("filters").unwrap_or(""))?;
    f.only(&["dangling", "name", "label", "driver"])?;
    let dangling = f.bool_value("dangling")?;
    let volumes = blocking(&state, |s| s.list()).await?;
    let out: Vec<Value> = volumes
        .iter()
        .filter(|v| matches(&f, v))
        .filter(|v| dangling.is_none_or(|d| d == v.record.users.is_empty()))
        .map(|v| volume_json(v, None))
        .collect();
    Ok(Json(json!({ "Volumes": out, "Warnings": null })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/create`.
async fn create(State(state): State<SharedState>, body: Body) -> Result<Response, ApiError> {
    let body: CreateBody = read_json(body).await?;
    if !matches!(body.driver.as_str(), "" | "local") {
        return Err(ApiError::not_found(format!(
            "error looking up volume plugin {0}: plugin \"{0}\" not found",
            body.driver
        )));
    }
    let req = CreateVolume {
        name: body.name,
        labels: body.labels.unwrap_or_default(),
        options: body.driver_opts.unwrap_or_default(),
    };
    let v = blocking(&state, move |s| s.create(req)).await?;
    Ok((StatusCode::CREATED, Json(volume_json(&v, None))).into_response())
}

/// `GET /volumes/{name}`.
async fn inspect(
    State(state): State<SharedState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let v = blocking(&state, move |s| s.get(&name)).await?;
    Ok(Json(volume_json(&v, None)))
}

/// `DELETE /volumes/{name}?force=`.
async fn remove(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let force = params.bool("force");
    blocking(&state, move |s| s.remove(&name, force)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /volumes/prune`: anonymous unused volumes, or all unused ones with `all=true`
/// (always all before API 1.42, as dockerd).
async fn prune(
    State(state): State<SharedState>,
    Version(version): Version,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f = Filters::parse(params.get("filters").unwrap_or(""))?;
    f.only(&["label", "label!", "all"])?;
    let all = f.bool_value("all")?.unwrap_or(false) || version < ApiVersion::new(1, 42);
    let keep_labels = f.get("label!").to_vec();
    let labels = f.clone();
    let (names, reclaimed) = blocking(&state, move |s| {
        let keep = |r: &estiba_volume::VolumeRecord| {
            !labels.match_kv("label", &r.labels)
                || keep_labels.iter().any(|l| match l.split_once('=') {
                    Some((k, v)) => r.labels.get(k).is_some_and(|x| x == v),
                    None => r.labels.contains_key(l.as_str()),
                })
        };
        s.prune(all, &keep)
    })
    .await?;
    Ok(Json(json!({
        "VolumesDeleted": if names.is_empty() { Value::Null } else { json!(names) },
        "SpaceReclaimed": reclaimed,
    })))
}

/// `GET /volumes/{name}/export` (estiba): the volume's content as a tar.
async fn export(State(state): State<SharedState>, Path(name): Path<String>) -> Response {
    let check = name.clone();
    if let Err(e) = blocking(&state, move |s| s.get(&check)).await {
        return e.into_response();
    }
    let volumes = Arc::clone(&state.volumes);
    stream::tar_response(move |out| volumes.export(&name, out).map_err(ApiError::from)).await
}

/// `PUT /volumes/{name}/import` (estiba): fills an empty (or new) volume from a tar.
async fn import(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let reader = stream::body_reader(body);
    blocking(&state, move |s| {
        let mut reader = reader;
        s.import(&name, &mut reader)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `system df` volume rows: every volume with its size and how many containers use it.
pub(super) async fn df_rows(state: &SharedState) -> Result<Vec<Value>, ApiError> {
    blocking(state, |s| {
        Ok(s.list()?
            .iter()
            .map(|v| {
                let size = s.usage_bytes(&v.record.name);
                volume_json(v, Some((size, v.record.users.len())))
            })
            .collect())
    })
    .await
}
