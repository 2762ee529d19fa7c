//! Image endpoints: list, inspect, history, tag, remove, prune, load and save.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use estiba_api::{
    ApiVersion, GraphDriverData, HistoryResponseItem, ImageConfig, ImageDeleteResponseItem,
    ImageInspect, ImageMetadata, ImagePruneResponse, ImageSummary, JsonMessage, RootFs,
};
use estiba_image::service::{self as svc, ImageDetails, ListFilters, LoadedItem, RemovedItem};

use super::filters::Filters;
use super::stream::{self, MidStreamError};
use super::system::wants_virtual_size;
use super::{ApiError, Params, SharedState, Version};

/// Go's zero time, which dockerd reports for an image that was never tagged.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// Most names one `docker save` may ask for.
const MAX_SAVE_NAMES: usize = 1024;

/// Domain summary -> wire summary for the client's API version.
pub(super) fn summary_to_api(
    s: &svc::ImageSummary,
    version: ApiVersion,
    shared_size: bool,
) -> ImageSummary {
    let size = i64::try_from(s.size_bytes).unwrap_or(i64::MAX);
    ImageSummary {
        id: s.id.clone(),
        parent_id: s.parent_id.clone(),
        repo_tags: s.repo_tags.clone(),
        repo_digests: s.repo_digests.clone(),
        created: s.created,
        size,
        shared_size: if shared_size { s.shared_size_bytes } else { -1 },
        virtual_size: wants_virtual_size(version).then_some(size),
        labels: s.labels.clone(),
        containers: s.containers,
    }
}

/// `GET /images/json`.
pub(super) async fn list(
    State(state): State<SharedState>,
    Version(version): Version,
    params: Params,
) -> Result<Json<Vec<ImageSummary>>, ApiError> {
    let mut filters = Filters::parse(params.get("filters").unwrap_or(""))?;
    // The pre-1.25 `filter=<reference>` parameter.
    if let Some(reference) = params.get("filter").filter(|r| !r.is_empty()) {
        filters.add("reference", reference);
    }
    filters.only(&["dangling", "label", "reference", "before", "since"])?;
    let single = |key: &str| -> Result<Option<String>, ApiError> {
        match filters.get(key) {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            _ => Err(ApiError::bad_request(format!(
                "invalid filter '{key}': only one value is allowed"
            ))),
        }
    };
    let list_filters = ListFilters {
        all: params.bool("all"),
        dangling: filters.bool_value("dangling")?,
        labels: filters.get("label").to_vec(),
        references: filters.get("reference").to_vec(),
        before: single("before")?,
        since: single("since")?,
    };
    let shared = params.bool("shared-size");
    let images = state.images(move |s| s.list(&list_filters)).await?;
    Ok(Json(
        images
            .iter()
            .map(|s| summary_to_api(s, version, shared))
            .collect(),
    ))
}

/// Routes `GET /images/{name}/json|history|get`, where the name may contain slashes.
pub(super) async fn get_by_name(
    State(state): State<SharedState>,
    Version(version): Version,
    Path(rest): Path<String>,
) -> Response {
    if let Some(name) = rest.strip_suffix("/json") {
        return inspect(state, version, name.to_string())
            .await
            .into_response();
    }
    if let Some(name) = rest.strip_suffix("/history") {
        return history(state, name.to_string()).await.into_response();
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(state, vec![name.to_string()]).await;
    }
    ApiError::page_not_found().into_response()
}

/// Routes `POST /images/{name}/tag`.
pub(super) async fn post_by_name(
    State(state): State<SharedState>,
    Path(rest): Path<String>,
    params: Params,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Some(name) = rest.strip_suffix("/push") {
        return super::registry::push(state, name.to_string(), params, headers).await;
    }
    match rest.strip_suffix("/tag") {
        Some(name) => tag(state, name.to_string(), params).await.into_response(),
        None => ApiError::page_not_found().into_response(),
    }
}

async fn inspect(
    state: SharedState,
    version: ApiVersion,
    name: String,
) -> Result<Json<ImageInspect>, ApiError> {
    let details = state.images(move |s| s.inspect(&name)).await?;
    Ok(Json(details_to_api(&details, version)))
}

fn details_to_api(d: &ImageDetails, version: ApiVersion) -> ImageInspect {
    let text = |key: &str| {
        d.config
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    // A config with a field of an unexpected type still inspects, without its Config.
    let config = d
        .config
        .get("config")
        .and_then(|c| serde_json::from_value::<ImageConfig>(c.clone()).ok())
        .unwrap_or_default();
    let mut data = BTreeMap::new();
    if let Some(dirs) = &d.dirs {
        if !dirs.lower.is_empty() {
            let lower: Vec<String> = dirs.lower.iter().map(|p| p.display().to_string()).collect();
            data.insert("LowerDir".to_string(), lower.join(":"));
        }
        data.insert("UpperDir".to_string(), dirs.upper.display().to_string());
        if let Some(work) = &dirs.work {
            data.insert("WorkDir".to_string(), work.display().to_string());
        }
        if let Some(merged) = &dirs.merged {
            data.insert("MergedDir".to_string(), merged.display().to_string());
        }
    }
    let size = i64::try_from(d.summary.size_bytes).unwrap_or(i64::MAX);
    ImageInspect {
        id: d.summary.id.clone(),
        repo_tags: d.summary.repo_tags.clone(),
        repo_digests: d.summary.repo_digests.clone(),
        parent: d.summary.parent_id.clone(),
        comment: text("comment"),
        created: (!d.created_rfc3339.is_empty()).then(|| d.created_rfc3339.clone()),
        docker_version: text("docker_version"),
        author: text("author"),
        config: Some(config),
        architecture: d.architecture.clone(),
        variant: d.variant.clone(),
        os: d.os.clone(),
        os_version: d
            .config
            .get("os.version")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        size,
        virtual_size: wants_virtual_size(version).then_some(size),
        graph_driver: GraphDriverData {
            name: d.driver_name.clone(),
            data,
        },
        root_fs: RootFs {
            kind: "layers".to_string(),
            layers: d.diff_ids.clone(),
        },
        metadata: ImageMetadata {
            last_tag_time: d
                .last_tag_time
                .clone()
                .unwrap_or_else(|| GO_ZERO_TIME.to_string()),
        },
    }
}

async fn history(
    state: SharedState,
    name: String,
) -> Result<Json<Vec<HistoryResponseItem>>, ApiError> {
    let entries = state.images(move |s| s.history(&name)).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| HistoryResponseItem {
                id: e.id,
                created: e.created,
                created_by: e.created_by,
                tags: (!e.tags.is_empty()).then_some(e.tags),
                size: i64::try_from(e.size_bytes).unwrap_or(i64::MAX),
                comment: e.comment,
            })
            .collect(),
    ))
}

async fn tag(state: SharedState, name: String, params: Params) -> Result<StatusCode, ApiError> {
    let repo = params.get("repo").unwrap_or_default().to_string();
    if repo.is_empty() {
        return Err(ApiError::bad_request(
            "repository name must have at least one component",
        ));
    }
    let tag = params
        .get("tag")
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    state
        .images(move |s| s.tag(&name, &repo, tag.as_deref()))
        .await?;
    Ok(StatusCode::CREATED)
}

fn removed_to_api(items: Vec<RemovedItem>) -> Vec<ImageDeleteResponseItem> {
    items
        .into_iter()
        .map(|i| match i {
            RemovedItem::Untagged(r) => ImageDeleteResponseItem::untagged(r),
            RemovedItem::Deleted(id) => ImageDeleteResponseItem::deleted(id),
        })
        .collect()
}

/// `DELETE /images/{name}`.
pub(super) async fn remove(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Json<Vec<ImageDeleteResponseItem>>, ApiError> {
    let force = params.bool("force");
    let no_prune = params.bool("noprune");
    let removed = state
        .images(move |s| s.remove(&name, force, no_prune))
        .await?;
    Ok(Json(removed_to_api(removed)))
}

/// `POST /images/prune`.
pub(super) async fn prune(
    State(state): State<SharedState>,
    params: Params,
) -> Result<Json<ImagePruneResponse>, ApiError> {
    let filters = Filters::parse(params.get("filters").unwrap_or(""))?;
    filters.only(&["dangling", "label", "until"])?;
    let until = match filters.get("until").first() {
        Some(u) => Some(super::events::parse_time(u).map_err(ApiError::bad_request)?),
        None => None,
    };
    // `dangling=false` is `docker image prune --all`.
    let all = filters.bool_value("dangling")? == Some(false);
    let labels = filters.get("label").to_vec();
    let (removed, space) = state.images(move |s| s.prune(all, &labels, until)).await?;
    let deleted = removed_to_api(removed);
    Ok(Json(ImagePruneResponse {
        images_deleted: (!deleted.is_empty()).then_some(deleted),
        space_reclaimed: space,
    }))
}

/// The most of a load's unread body read before the answer ends.
const DRAIN_LOAD_UNREAD_BYTES: u64 = 8 << 30;

/// `POST /images/load`: the tarball streams from the request into the image service; the
/// answer is dockerd's JSON lines, `{"stream":"Loaded image: busybox:latest\n"}`.
pub(super) async fn load(State(state): State<SharedState>, body: Body) -> Response {
    let (tx, rx) = stream::channel();
    let images = Arc::clone(&state.images);
    let reader = stream::body_reader(body);
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let progress = tx.clone();
        let mut on_loaded = |item: &LoadedItem| {
            let text = match item {
                LoadedItem::Tag(t) => format!("Loaded image: {t}\n"),
                LoadedItem::Id(id) => format!("Loaded image ID: {id}\n"),
            };
            let mut line = serde_json::to_vec(&JsonMessage::stream(text)).unwrap_or_default();
            line.extend_from_slice(b"\r\n");
            // A client that went away only loses the progress lines; the load completes.
            let _ = progress.blocking_send(Ok(Bytes::from(line)));
        };
        let result = images.load(&mut reader, &mut on_loaded);
        // Read what the client is still sending (a full disk fails a load half-way; a tar
        // read to its end-of-archive block leaves the rest of its padding): a connection
        // closed on a client mid-write shows it "broken pipe", not our answer.
        let _ = std::io::copy(
            &mut std::io::Read::take(&mut reader, DRAIN_LOAD_UNREAD_BYTES),
            &mut std::io::sink(),
        );
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(ApiError::from(e)));
        }
    });
    stream::respond(rx, "application/json", MidStreamError::JsonLine).await
}

/// `GET /images/get?names=a&names=b`.
pub(super) async fn save_many(State(state): State<SharedState>, params: Params) -> Response {
    save(state, params.all("names")).await
}

/// Streams the tarball `ImageService::save` writes; an unknown name is a 404 before any byte.
async fn save(state: SharedState, names: Vec<String>) -> Response {
    if names.is_empty() {
        return ApiError::bad_request("no images specified").into_response();
    }
    if names.len() > MAX_SAVE_NAMES {
        return ApiError::bad_request(format!("too many images (at most {MAX_SAVE_NAMES})"))
            .into_response();
    }
    let images = Arc::clone(&state.images);
    stream::tar_response(move |out| images.save(&names, out).map_err(ApiError::from)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use estiba_snapshot::SnapshotDirs;

    fn details() -> ImageDetails {
        ImageDetails {
            summary: svc::ImageSummary {
                id: "sha256:abc".into(),
                parent_id: String::new(),
                repo_tags: vec!["busybox:latest".into()],
                repo_digests: vec![],
                created: 1,
                size_bytes: 10,
                shared_size_bytes: -1,
                labels: BTreeMap::new(),
                containers: -1,
            },
            config: serde_json::json!({
                "author": "me",
                "comment": "Imported from -",
                "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Hostname": "dropped"},
            }),
            created_rfc3339: "2026-11-22T06:24:16.505831294Z".into(),
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            diff_ids: vec!["sha256:l1".into()],
            driver_name: "overlay2".into(),
            dirs: Some(SnapshotDirs {
                lower: vec!["/d/a".into(), "/d/b".into()],
                upper: "/d/c".into(),
                work: None,
                merged: None,
            }),
            last_tag_time: None,
        }
    }

    #[test]
    fn inspect_has_dockers_fields() {
        let v = serde_json::to_value(details_to_api(&details(), ApiVersion::CURRENT)).unwrap();
        assert_eq!(
            v["Config"],
            serde_json::json!({"Cmd": ["sh"], "Env": ["PATH=/bin"]})
        );
        assert_eq!(v["Author"], "me");
        assert_eq!(v["Comment"], "Imported from -");
        assert_eq!(v["GraphDriver"]["Data"]["LowerDir"], "/d/a:/d/b");
        assert_eq!(
            v["RootFS"],
            serde_json::json!({"Type": "layers", "Layers": ["sha256:l1"]})
        );
        assert_eq!(v["Metadata"]["LastTagTime"], GO_ZERO_TIME);
        assert!(v.get("VirtualSize").is_none());
        let old = serde_json::to_value(details_to_api(&details(), ApiVersion::new(1, 43))).unwrap();
        assert_eq!(old["VirtualSize"], 10);
    }
}
