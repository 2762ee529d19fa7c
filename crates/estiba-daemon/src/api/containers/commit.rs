//! `POST /commit`: a container's changes as a new image (`docker commit`).

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use estiba_container::CommitOptions;
use http_body_util::BodyExt;

use super::blocking;
use crate::api::{ApiError, Params, SharedState};

/// Largest config body accepted.
const MAX_COMMIT_BODY_BYTES: usize = 1 << 20;

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=`.
pub(in crate::api) async fn commit(
    State(state): State<SharedState>,
    params: Params,
    body: Body,
) -> Result<Response, ApiError> {
    let container = params
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("container name cannot be empty"))?
        .to_string();
    let bytes = match http_body_util::Limited::new(body, MAX_COMMIT_BODY_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => return Err(ApiError::bad_request(format!("read request body: {e}"))),
    };
    let config = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
        match v {
            serde_json::Value::Null => None,
            v @ serde_json::Value::Object(_) => Some(v),
            _ => {
                return Err(ApiError::bad_request(
                    "invalid JSON: config is not an object",
                ))
            }
        }
    };
    let opts = CommitOptions {
        repo: params.get("repo").map(str::to_string),
        tag: params.get("tag").map(str::to_string),
        comment: params.get("comment").unwrap_or_default().to_string(),
        author: params.get("author").unwrap_or_default().to_string(),
        changes: params.all("changes"),
        config,
        // Docker's default is to pause.
        pause: params
            .get("pause")
            .is_none_or(|p| !matches!(p, "0" | "false" | "False")),
    };
    let id = blocking(&state, move |s| s.commit(&container, &opts)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}
