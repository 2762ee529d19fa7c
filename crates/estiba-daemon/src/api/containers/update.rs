//! `POST /containers/{id}/update`: Docker's `UpdateConfig` (resources and restart policy) onto
//! the container service; answers `{"Warnings": [...]}`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use estiba_container::{ResourceUpdate, RestartPolicy};
use serde::{Deserialize, Serialize};

use super::super::{read_json, ApiError, SharedState};
use super::blocking;

/// The fields of Docker's `UpdateConfig` that estiba applies; others are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateBody {
    memory: i64,
    memory_swap: i64,
    memory_reservation: i64,
    nano_cpus: i64,
    cpu_shares: i64,
    cpu_period: i64,
    cpu_quota: i64,
    cpuset_cpus: String,
    cpuset_mems: String,
    pids_limit: Option<i64>,
    blkio_weight: u16,
    restart_policy: Option<estiba_api::container::RestartPolicy>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateResponse {
    warnings: Vec<String>,
}

pub(in crate::api) async fn update(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let b: UpdateBody = read_json(body).await?;
    let req = ResourceUpdate {
        memory_bytes: b.memory,
        memory_swap_bytes: b.memory_swap,
        memory_reservation_bytes: b.memory_reservation,
        nano_cpus: b.nano_cpus,
        cpu_shares: b.cpu_shares,
        cpu_period: b.cpu_period,
        cpu_quota: b.cpu_quota,
        cpuset_cpus: b.cpuset_cpus,
        cpuset_mems: b.cpuset_mems,
        pids_limit: b.pids_limit,
        blkio_weight: b.blkio_weight,
        restart_policy: b.restart_policy.map(|p| RestartPolicy {
            name: p.name,
            maximum_retry_count: p.maximum_retry_count,
        }),
    };
    let warnings = blocking(&state, move |s| s.update_resources(&id, req)).await?;
    Ok(Json(UpdateResponse { warnings }).into_response())
}
