//! The HTTP layer: version prefixes, Docker's response headers, routing, and request bounds.
//!
//! Every request goes through [`handle`]: it strips `/v1.NN`, refuses versions outside
//! 1.24..=1.51, hands the rest to the router, and stamps Docker's headers on the answer.

mod build;
mod containers;
mod error;
mod events;
mod filters;
mod images;
mod networks;
mod registry;
mod stream;
mod system;
mod volumes;

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, Response, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use estiba_api::ApiVersion;
use estiba_events::EventBus;
use estiba_image::service::ImageService;
use http_body_util::BodyExt;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::config::{Config, Reloadable};
use crate::host;
pub(crate) use error::ApiError;

/// Largest JSON request body accepted (container create, build options, ...).
pub(crate) const MAX_JSON_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Everything handlers share.
pub(crate) struct AppState {
    /// The configuration at start-up (the parts SIGHUP changes live in `reloadable`).
    pub(crate) config: Config,
    pub(crate) reloadable: RwLock<Reloadable>,
    pub(crate) events: Arc<EventBus>,
    pub(crate) images: Arc<ImageService>,
    pub(crate) containers: Arc<estiba_container::ContainerService>,
    pub(crate) volumes: Arc<estiba_volume::VolumeService>,
    #[allow(dead_code)] // until its endpoints land
    pub(crate) networks: Arc<estiba_net::NetworkService>,
    pub(crate) registry: Arc<estiba_registry::RegistryService>,
    pub(crate) builder: Arc<estiba_build::Builder>,
    /// Runtimes by name, as `/info` shows them.
    pub(crate) runtimes: std::collections::BTreeMap<String, estiba_container::RuntimeConfig>,
    /// `overlay2` or `vfs`.
    pub(crate) driver_name: &'static str,
    /// `[["Backing Filesystem", "extfs"], ...]` for `/info`.
    pub(crate) driver_status: Vec<[String; 2]>,
    pub(crate) engine_id: String,
    /// Flips to true when the daemon shuts down, so endless streams (events) end.
    pub(crate) shutdown: watch::Receiver<bool>,
    /// `/events` streams open now (`NEventsListener`).
    pub(crate) event_listeners: AtomicI64,
}

impl AppState {
    /// The current reloadable settings (a poisoned lock still holds a valid value).
    pub(crate) fn settings(&self) -> Reloadable {
        self.reloadable
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs a blocking image-service call on the blocking pool.
    async fn images<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&ImageService) -> Result<T, estiba_image::service::ImageError> + Send + 'static,
    {
        let images = Arc::clone(&self.images);
        match tokio::task::spawn_blocking(move || f(&images)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => {
                tracing::error!("image service task failed: {e}");
                Err(ApiError::internal(
                    "internal error: image service task failed",
                ))
            }
        }
    }
}

pub(crate) type SharedState = Arc<AppState>;

/// The routes, without version handling (see [`handle`]).
pub(crate) fn router(state: SharedState) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(events::events))
        .route("/system/df", get(system::df))
        .route("/images/json", get(images::list))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route("/images/prune", post(images::prune))
        .route(
            "/images/{*rest}",
            get(images::get_by_name)
                .post(images::post_by_name)
                .delete(images::remove),
        )
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/exec", post(containers::exec::exec_create))
        .route("/exec/{id}/start", post(containers::exec::exec_start))
        .route("/exec/{id}/json", get(containers::exec::exec_inspect))
        .route("/exec/{id}/resize", post(containers::exec::exec_resize))
        .route("/containers/{id}/top", get(containers::exec::top))
        .route("/containers/{id}/pause", post(containers::exec::pause))
        .route("/containers/{id}/unpause", post(containers::exec::unpause))
        .route("/containers/{id}/stats", get(containers::stats))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/update", post(containers::update::update))
        .route(
            "/containers/{id}/archive",
            get(containers::fs::archive_get)
                .head(containers::fs::archive_head)
                .put(containers::fs::archive_put),
        )
        .route("/containers/{id}/changes", get(containers::fs::changes))
        .route("/commit", post(containers::commit::commit))
        .route("/containers/{id}/export", get(containers::fs::export))
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        .merge(volumes::routes())
        .merge(networks::routes())
        .merge(registry::routes())
        .merge(build::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::page_not_found()
}

/// Splits `/v1.51/info` into `Some("1.51")` and `/info`. A path without a version prefix, or
/// with only a prefix (`/v1.51`), is returned unchanged.
pub(crate) fn split_version(path: &str) -> (Option<&str>, &str) {
    let Some(after_v) = path.strip_prefix("/v") else {
        return (None, path);
    };
    let end = after_v.find('/').unwrap_or(after_v.len());
    let (version, rest) = after_v.split_at(end);
    if version.is_empty()
        || rest.is_empty()
        || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return (None, path);
    }
    (Some(version), rest)
}

/// Checks a requested version against what estibad speaks, with dockerd's messages.
pub(crate) fn negotiate(requested: Option<&str>) -> Result<ApiVersion, ApiError> {
    let Some(requested) = requested else {
        return Ok(ApiVersion::CURRENT);
    };
    let version: ApiVersion = requested
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid API version: {requested}")))?;
    if version > ApiVersion::CURRENT {
        return Err(ApiError::bad_request(format!(
            "client version {requested} is too new. Maximum supported API version is {}",
            ApiVersion::CURRENT
        )));
    }
    if version < ApiVersion::MIN {
        return Err(ApiError::bad_request(format!(
            "client version {requested} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            ApiVersion::MIN
        )));
    }
    Ok(version)
}

/// The API version of the request being served (the one in its path, else the newest).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Version(pub ApiVersion);

impl<S: Send + Sync> FromRequestParts<S> for Version {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Version>()
            .copied()
            .unwrap_or(Version(ApiVersion::CURRENT)))
    }
}

/// Serves one request: version prefix, routing, Docker's headers.
pub(crate) async fn handle<B>(router: Router, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let (mut parts, body) = req.into_parts();
    let (requested, rest) = split_version(parts.uri.path());
    let mut response = match negotiate(requested) {
        Err(e) => e.into_response(),
        Ok(version) => {
            if requested.is_some() {
                let rest = match parts.uri.query() {
                    Some(q) => format!("{rest}?{q}"),
                    None => rest.to_string(),
                };
                match rest.parse::<Uri>() {
                    Ok(uri) => parts.uri = uri,
                    Err(_) => {
                        return stamp(ApiError::bad_request("invalid request path").into_response())
                    }
                }
            }
            parts.extensions.insert(Version(version));
            let req = Request::from_parts(parts, Body::new(body));
            match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
    };
    response = stamp(response);
    response
}

/// Adds the headers dockerd puts on every response.
fn stamp(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(
        "Api-Version",
        HeaderValue::from_static(estiba_api::API_VERSION),
    );
    headers.insert("Docker-Experimental", HeaderValue::from_static("false"));
    headers.insert("Ostype", HeaderValue::from_static("linux"));
    if let Ok(server) = HeaderValue::from_str(&format!("Docker/{} (linux)", host::VERSION)) {
        headers.insert("Server", server);
    }
    response
}

/// The query string as ordered pairs (repeated keys such as `names` kept).
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))?;
        Ok(Params(pairs))
    }
}

impl Params {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Docker's boolean parameters: absent, "", "0", "no", "false" and "none" are false.
    pub(crate) fn bool(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }
}

/// Reads a JSON request body of at most [`MAX_JSON_BODY_BYTES`]: 413 beyond, 400 with the
/// parser's message when it is not valid JSON of the expected shape.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_JSON_BODY_BYTES);
    let bytes = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {MAX_JSON_BODY_BYTES} bytes"),
            ))
        }
        Err(e) => return Err(ApiError::bad_request(format!("read request body: {e}"))),
    };
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix_is_split_once() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("/v1.51/info", Some("1.51"), "/info"),
            (
                "/v1.24/images/busybox/json",
                Some("1.24"),
                "/images/busybox/json",
            ),
            ("/v1.51/v1.51/info", Some("1.51"), "/v1.51/info"),
            ("/info", None, "/info"),
            ("/v1.51", None, "/v1.51"),
            ("/vabc/info", None, "/vabc/info"),
            ("/v/info", None, "/v/info"),
            ("/volumes", None, "/volumes"),
            ("/v1..2/x", Some("1..2"), "/x"),
        ];
        for (path, version, rest) in cases {
            assert_eq!(split_version(path), (*version, *rest), "path {path}");
        }
    }

    #[test]
    fn negotiation_uses_dockerd_messages() {
        let cases: &[(Option<&str>, Result<&str, &str>)] = &[
            (None, Ok("1.51")),
            (Some("1.51"), Ok("1.51")),
            (Some("1.24"), Ok("1.24")),
            (Some("1.41"), Ok("1.41")),
            (Some("1.52"), Err("client version 1.52 is too new. Maximum supported API version is 1.51")),
            (Some("2.0"), Err("client version 2.0 is too new. Maximum supported API version is 1.51")),
            (Some("1.12"), Err("client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version")),
            (Some("1.9"), Err("client version 1.9 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version")),
            (Some("1..2"), Err("invalid API version: 1..2")),
        ];
        for (requested, want) in cases {
            let got = negotiate(*requested)
                .map(|v| v.to_string())
                .map_err(|e| (e.status.as_u16(), e.message));
            let want = want.map(str::to_string).map_err(|m| (400, m.to_string()));
            assert_eq!(got, want, "requested {requested:?}");
        }
    }
}
