//! Registry endpoints: `/images/create` (pull), push, `/auth`, `/distribution`, and
//! `/images/search`, which has no index to search.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use estiba_image::reference::Reference;
use estiba_registry::{Credentials, Progress, PullRequest, PushRequest, RegistryError};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::stream::{self, MidStreamError};
use super::{ApiError, Params, SharedState};

/// Progress lines buffered between the registry client and a slow HTTP client.
const PROGRESS_CHANNEL_LINES: usize = 64;

/// This module's routes, merged into [`super::router`].
pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/images/create", post(create))
        .route("/images/search", get(search))
        .route("/auth", post(auth))
        .route("/distribution/{*name}", get(distribution))
}

/// `GET /images/search`: docker searches the Docker Hub index (`index.docker.io/v1/search`),
/// which needs TLS and the internet; this daemon reaches neither, so it says so plainly
/// instead of an empty result that would read as "no such image".
async fn search(params: Params) -> Response {
    let Some(term) = params.get("term").filter(|t| !t.is_empty()) else {
        return ApiError::bad_request("the term parameter is required").into_response();
    };
    if term.len() > 1024 {
        return ApiError::bad_request("search term too long").into_response();
    }
    let limit = params.get("limit").unwrap_or("25");
    ApiError::internal(format!(
        "Get \"https://index.docker.io/v1/search?q={term}&n={limit}\": no registry index \
         is reachable: this daemon does not search Docker Hub (TLS registries are not \
         supported by this build)"
    ))
    .into_response()
}

fn api_error(e: RegistryError) -> ApiError {
    let status = match e {
        RegistryError::Image(i) => return ApiError::from(i),
        RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
        RegistryError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        RegistryError::BadRequest(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, e.to_string())
}

fn credentials(headers: &HeaderMap) -> Credentials {
    headers
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .and_then(Credentials::from_header)
        .unwrap_or_default()
}

fn progress_json(p: &Progress) -> Value {
    let mut v = json!({});
    if !p.status.is_empty() {
        v["status"] = json!(p.status);
    }
    if let Some(id) = &p.id {
        v["id"] = json!(id);
        v["progressDetail"] = json!({});
    }
    if let Some((current, total)) = p.detail {
        v["progressDetail"] = json!({ "current": current, "total": total });
    }
    if let Some((tag, digest, size)) = &p.aux {
        v["progressDetail"] = json!({});
        v["aux"] = json!({ "Tag": tag, "Digest": digest, "Size": size });
    }
    v
}

/// Runs `op` with a progress channel and streams its lines as Docker's JSON messages; an error
/// before the first line is a plain error response.
async fn progress_stream<F>(
    op: impl FnOnce(mpsc::Sender<Progress>) -> F + Send + 'static,
) -> Response
where
    F: std::future::Future<Output = Result<(), RegistryError>> + Send + 'static,
{
    let (tx, rx) = stream::channel();
    let (ptx, mut prx) = mpsc::channel::<Progress>(PROGRESS_CHANNEL_LINES);
    let work = tokio::spawn(op(ptx));
    tokio::spawn(async move {
        while let Some(p) = prx.recv().await {
            let mut line = serde_json::to_vec(&progress_json(&p)).unwrap_or_default();
            line.extend_from_slice(b"\r\n");
            // A client that went away only loses the progress lines; the operation completes.
            let _ = tx.send(Ok(Bytes::from(line))).await;
        }
        let result = match work.await {
            Ok(r) => r.map_err(api_error),
            Err(e) => Err(ApiError::internal(format!("task failed: {e}"))),
        };
        if let Err(e) = result {
            let _ = tx.send(Err(e)).await;
        }
    });
    stream::respond(rx, "application/json", MidStreamError::JsonLine).await
}

/// `POST /images/create?fromImage=x&tag=y&platform=z`: a pull (`fromSrc` imports are not
/// supported).
async fn create(State(state): State<SharedState>, params: Params, headers: HeaderMap) -> Response {
    let Some(from) = params.get("fromImage").filter(|s| !s.is_empty()) else {
        return ApiError::bad_request("fromImage or fromSrc is required").into_response();
    };
    let mut reference = match Reference::parse_normalized(from) {
        Ok(r) => r,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    if let Some(tag) = params.get("tag").filter(|t| !t.is_empty()) {
        let r = if tag.starts_with("sha256:") {
            reference.with_digest(tag)
        } else {
            reference.with_tag(tag)
        };
        reference = match r {
            Ok(r) => r,
            Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
        };
    }
    if reference.digest().is_none() {
        reference = reference.with_default_tag();
    }
    let req = PullRequest {
        reference,
        platform: params.get("platform").map(str::to_string),
        creds: credentials(&headers),
    };
    let registry = std::sync::Arc::clone(&state.registry);
    progress_stream(move |tx| async move { registry.pull(req, tx).await }).await
}

/// `POST /images/{name}/push?tag=t`, dispatched from the images wildcard route.
pub(super) async fn push(
    state: SharedState,
    name: String,
    params: Params,
    headers: HeaderMap,
) -> Response {
    let mut reference = match Reference::parse_normalized(&name) {
        Ok(r) => r,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    if let Some(tag) = params.get("tag").filter(|t| !t.is_empty()) {
        reference = match reference.with_tag(tag) {
            Ok(r) => r,
            Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
        };
    }
    let reference = reference.with_default_tag();
    let local = reference.to_string();
    if let Err(e) = state.images(move |s| s.resolve_id(&local)).await {
        let msg = format!(
            "An image does not exist locally with the tag: {}",
            reference.familiar_name()
        );
        return match e.status {
            StatusCode::NOT_FOUND => ApiError::not_found(msg).into_response(),
            _ => e.into_response(),
        };
    }
    let req = PushRequest {
        reference,
        creds: credentials(&headers),
    };
    let registry = std::sync::Arc::clone(&state.registry);
    progress_stream(move |tx| async move { registry.push(req, tx).await }).await
}

#[derive(serde::Deserialize)]
struct AuthBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    serveraddress: String,
}

/// `POST /auth`: checks the credentials against the registry, as `docker login` needs.
async fn auth(
    State(state): State<SharedState>,
    body: Result<Json<AuthBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if body.serveraddress.is_empty() {
        return Err(ApiError::bad_request(
            "logging in to Docker Hub is not supported: no registry reachable",
        ));
    }
    let creds = Credentials {
        username: body.username,
        password: body.password,
        identity_token: String::new(),
        server_address: body.serveraddress.clone(),
    };
    state
        .registry
        .login(&body.serveraddress, creds)
        .await
        .map_err(api_error)?;
    Ok(Json(
        json!({ "Status": "Login Succeeded", "IdentityToken": "" }),
    ))
}

/// `GET /distribution/{name}/json`: the manifest descriptor and platforms of a remote image.
async fn distribution(
    State(state): State<SharedState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let Some(name) = rest.strip_suffix("/json") else {
        return Err(ApiError::page_not_found());
    };
    let reference =
        Reference::parse_normalized(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let reference = if reference.digest().is_none() {
        reference.with_default_tag()
    } else {
        reference
    };
    let info = state
        .registry
        .inspect_remote(&reference, credentials(&headers))
        .await
        .map_err(api_error)?;
    let platforms: Vec<Value> = info
        .platforms
        .iter()
        .map(|(os, arch, variant)| {
            let mut p = json!({ "architecture": arch, "os": os });
            if let Some(v) = variant {
                p["variant"] = json!(v);
            }
            p
        })
        .collect();
    Ok(Json(json!({
        "Descriptor": {
            "mediaType": info.media_type,
            "digest": info.digest,
            "size": info.size_bytes,
        },
        "Platforms": platforms,
    })))
}
