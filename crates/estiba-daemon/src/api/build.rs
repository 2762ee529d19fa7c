//! `/build` and `/build/prune`: the classic builder protocol. The context tar streams into
//! the builder on a blocking thread; progress comes back as JSON lines (`stream`, `aux`, and
//! `errorDetail` with the failing RUN's exit code).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use estiba_build::{BuildError, BuildOptions, Output};
use serde_json::json;

use super::stream::{self, MidStreamError};
use super::{ApiError, Params, SharedState};

/// Most `t` parameters one build takes.
const MAX_TAGS: usize = 100;
/// Most bytes of the `buildargs` and `labels` JSON.
const MAX_JSON_PARAM_BYTES: usize = 1 << 20;

/// This module's routes, merged into [`super::router`].
pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(prune))
}

fn json_map<T: serde::de::DeserializeOwned + Default>(
    params: &Params,
    key: &str,
) -> Result<T, ApiError> {
    match params.get(key).filter(|v| !v.is_empty()) {
        None => Ok(T::default()),
        Some(v) if v.len() > MAX_JSON_PARAM_BYTES => {
            Err(ApiError::bad_request(format!("{key} is too large")))
        }
        Some(v) => serde_json::from_str(v)
            .map_err(|e| ApiError::bad_request(format!("error reading {key}: {e}"))),
    }
}

fn options(params: &Params) -> Result<BuildOptions, ApiError> {
    let tags = params.all("t");
    if tags.len() > MAX_TAGS {
        return Err(ApiError::bad_request(format!(
            "too many tags (at most {MAX_TAGS})"
        )));
    }
    for t in &tags {
        estiba_image::reference::Reference::parse_normalized(t)
            .map_err(|_| ApiError::bad_request(format!("invalid reference format: {t}")))?;
    }
    let labels: Option<BTreeMap<String, String>> = json_map(params, "labels")?;
    let build_args: Option<BTreeMap<String, Option<String>>> = json_map(params, "buildargs")?;
    Ok(BuildOptions {
        dockerfile: params.get("dockerfile").unwrap_or_default().to_string(),
        tags,
        build_args: build_args.unwrap_or_default(),
        labels: labels.unwrap_or_default(),
        target: params.get("target").unwrap_or_default().to_string(),
        no_cache: params.bool("nocache"),
        rm: params.get("rm").is_none() || params.bool("rm"),
        force_rm: params.bool("forcerm"),
        quiet: params.bool("q"),
        network_mode: params
            .get("networkmode")
            .filter(|m| *m != "default")
            .unwrap_or_default()
            .to_string(),
        secrets: Default::default(),
        cache_from: cache_from(params)?,
    })
}

/// The build's secrets: the classic protocol has no session, so `estiba build --secret` sends
/// them in this header (base64 of a JSON object from ID to base64 value), never in the URL.
const SECRETS_HEADER: &str = "x-estiba-build-secrets";

fn secrets(headers: &HeaderMap) -> Result<estiba_build::mounts::Secrets, ApiError> {
    let Some(v) = headers.get(SECRETS_HEADER) else {
        return Ok(Default::default());
    };
    let text = v
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid secrets header"))?;
    estiba_build::mounts::decode_secrets(text)
        .map(estiba_build::mounts::Secrets)
        .map_err(ApiError::bad_request)
}

/// Most `cachefrom` images.
const MAX_CACHE_FROM: usize = 100;

/// `cachefrom`: a JSON array of image names (older clients sent one name per parameter).
fn cache_from(params: &Params) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for v in params.all("cachefrom") {
        if v.len() > MAX_JSON_PARAM_BYTES {
            return Err(ApiError::bad_request("cachefrom is too large"));
        }
        match serde_json::from_str::<Vec<String>>(&v) {
            Ok(list) => out.extend(list),
            Err(_) if !v.is_empty() => out.push(v),
            Err(_) => {}
        }
    }
    if out.len() > MAX_CACHE_FROM {
        return Err(ApiError::bad_request(format!(
            "too many cachefrom images (at most {MAX_CACHE_FROM})"
        )));
    }
    Ok(out)
}

fn line(v: &serde_json::Value) -> Bytes {
    let mut l = serde_json::to_vec(v).unwrap_or_default();
    l.extend_from_slice(b"\r\n");
    Bytes::from(l)
}

/// Most context bytes read and dropped after a build failed before reading them all.
const MAX_DRAIN_BYTES: u64 = 1 << 30;

/// Body chunks read ahead of the builder.
const READ_AHEAD_CHUNKS: usize = 16;

/// The request body as a blocking reader, read ahead by a task: the socket keeps being read
/// while the builder hashes what came before (a reader that polls the body itself leaves
/// the socket idle in between, and pays a thread wake-up per chunk). The task stops when the
/// reader is dropped.
struct ReadAhead {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
}

impl ReadAhead {
    fn new(body: Body) -> ReadAhead {
        use futures_util::StreamExt;
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD_CHUNKS);
        tokio::spawn(async move {
            let mut frames = body.into_data_stream();
            while let Some(item) = frames.next().await {
                let item = item.map_err(std::io::Error::other);
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        ReadAhead {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl std::io::Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.cur = chunk?,
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// `POST /build`.
async fn build(
    State(state): State<SharedState>,
    headers: HeaderMap,
    params: Params,
    body: Body,
) -> Response {
    let opts = match options(&params).and_then(|mut o| {
        o.secrets = secrets(&headers)?;
        Ok(o)
    }) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let (tx, rx) = stream::channel();
    let builder = Arc::clone(&state.builder);
    let reader = ReadAhead::new(body);
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        let mut sent = false;
        let progress = tx.clone();
        let mut out = |o: Output| {
            let v = match o {
                Output::Stream(s) => json!({ "stream": s }),
                Output::Aux(id) => json!({ "aux": { "ID": id } }),
            };
            sent = true;
            // A client that went away only loses the progress; the build completes.
            let _ = progress.blocking_send(Ok(line(&v)));
        };
        let result = builder.build(&opts, &mut reader, &mut out);
        let Err(e) = result else { return };
        // The client is still writing the context: answering (and closing) before it is done
        // makes its write fail with EPIPE instead of showing our error, so the rest is read
        // and dropped first (docker reads the whole context too), up to a bound.
        let _ = std::io::copy(
            &mut std::io::Read::take(&mut reader, MAX_DRAIN_BYTES),
            &mut std::io::sink(),
        );
        let early = matches!(
            e,
            BuildError::Parse(_) | BuildError::Invalid(_) | BuildError::Context(_)
        );
        if early && !sent {
            let _ = tx.blocking_send(Err(ApiError::bad_request(e.to_string())));
            return;
        }
        let message = e.to_string();
        let mut detail = json!({ "message": message });
        if let Some(code) = e.code() {
            detail["code"] = json!(code);
        }
        let _ = tx.blocking_send(Ok(line(
            &json!({ "errorDetail": detail, "error": message }),
        )));
    });
    stream::respond(rx, "application/json", MidStreamError::JsonLine).await
}

/// `/system/df`'s `BuildCache` rows (cache mounts and step cache entries).
pub(super) async fn df_rows(state: &SharedState) -> Result<Vec<serde_json::Value>, ApiError> {
    let builder = Arc::clone(&state.builder);
    tokio::task::spawn_blocking(move || builder.disk_usage())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `POST /build/prune`: forgets the build cache (the images it named stay, as with Docker's
/// classic builder; `image prune` removes the dangling ones) and removes the cache mounts,
/// whose bytes are the space reclaimed.
async fn prune(State(state): State<SharedState>) -> Response {
    let images = Arc::clone(&state.images);
    let builder = Arc::clone(&state.builder);
    let result = tokio::task::spawn_blocking(move || {
        let mut keys = images.build_cache_prune().map_err(ApiError::from)?;
        let (mounts, bytes) = builder
            .prune_cache_mounts()
            .map_err(|e| ApiError::internal(e.to_string()))?;
        keys.extend(mounts);
        Ok::<_, ApiError>((keys, bytes))
    })
    .await;
    match result {
        Ok(Ok((keys, bytes))) => {
            axum::Json(json!({ "CachesDeleted": keys, "SpaceReclaimed": bytes })).into_response()
        }
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}
