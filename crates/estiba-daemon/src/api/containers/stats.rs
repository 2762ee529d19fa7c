//! `GET /containers/{id}/stats` (Docker's `StatsResponse`, one JSON per second when streaming)
//! and `POST /containers/{id}/rename`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use estiba_container::{BlkioEntry, CgroupSample, StatsSample};
use serde_json::{json, Value};

use super::super::stream::{self, MidStreamError};
use super::super::{ApiError, Params, SharedState};
use super::blocking;

/// Docker's collection interval.
const INTERVAL: Duration = Duration::from_secs(1);
/// Go's zero time, which Docker sends for a container that does not run.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn blkio(entries: &[BlkioEntry]) -> Value {
    entries
        .iter()
        .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
        .collect()
}

fn cpu(sample: Option<&CgroupSample>) -> Value {
    let Some(s) = sample else {
        return json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        });
    };
    let c = &s.cpu;
    let mut usage = json!({
        "total_usage": c.total_ns,
        "usage_in_kernelmode": c.kernel_ns,
        "usage_in_usermode": c.user_ns,
    });
    if !c.percpu_ns.is_empty() {
        usage["percpu_usage"] = json!(c.percpu_ns);
    }
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": c.system_ns,
        "online_cpus": c.online_cpus,
        "throttling_data": {
            "periods": c.throttling_periods,
            "throttled_periods": c.throttled_periods,
            "throttled_time": c.throttled_ns,
        },
    })
}

/// One `StatsResponse` frame: `now` with its time, `prev` the sample before (precpu_stats).
fn frame(now: &StatsSample, read: &str, prev: Option<(&CgroupSample, &str)>) -> Value {
    let sample = now.sample.as_ref();
    let blkio_names = [
        "io_service_bytes_recursive",
        "io_serviced_recursive",
        "io_queue_recursive",
        "io_service_time_recursive",
        "io_wait_time_recursive",
        "io_merged_recursive",
        "io_time_recursive",
        "sectors_recursive",
    ];
    let mut blkio_stats = serde_json::Map::new();
    for name in blkio_names {
        let value = match (sample, name) {
            (None, _) => Value::Null,
            (Some(s), "io_service_bytes_recursive") => blkio(&s.io_service_bytes),
            (Some(s), "io_serviced_recursive") => blkio(&s.io_serviced),
            (Some(_), _) => json!([]),
        };
        blkio_stats.insert(name.to_string(), value);
    }
    let memory_stats = match sample {
        None => json!({}),
        Some(s) => {
            let mut m = json!({
                "usage": s.memory_usage_bytes,
                "stats": s.memory_stats,
                "limit": s.memory_limit_bytes,
            });
            if s.memory_max_usage_bytes > 0 {
                m["max_usage"] = json!(s.memory_max_usage_bytes);
            }
            m
        }
    };
    let pids_stats = match sample {
        None => json!({}),
        Some(s) if s.pids_limit > 0 => json!({"current": s.pids_current, "limit": s.pids_limit}),
        Some(s) => json!({"current": s.pids_current}),
    };
    json!({
        "read": read,
        "preread": prev.map_or(ZERO_TIME, |(_, t)| t),
        "pids_stats": pids_stats,
        "blkio_stats": blkio_stats,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu(sample),
        "precpu_stats": cpu(prev.map(|(s, _)| s)),
        "memory_stats": memory_stats,
        "name": format!("/{}", now.name),
        "id": now.id,
    })
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn line(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

pub(in crate::api) async fn stats(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let streaming = params
        .get("stream")
        .is_none_or(|s| s != "0" && s != "false");
    let one_shot = params.bool("one-shot");
    // Resolve first, so an unknown container is a 404 rather than a broken stream.
    let first = {
        let id = id.clone();
        blocking(&state, move |s| s.stats(&id)).await?
    };
    let (tx, rx) = stream::channel();
    let svc = std::sync::Arc::clone(&state.containers);
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let mut current = (first, now_rfc3339());
        let mut prev: Option<(CgroupSample, String)> = None;
        // Without streaming, Docker primes the CPU numbers with a first sample a second
        // earlier, unless one-shot.
        let mut skip_first = !streaming && !one_shot;
        loop {
            let running = current.0.sample.is_some();
            if !skip_first || !running {
                let read = if running {
                    current.1.as_str()
                } else {
                    ZERO_TIME
                };
                let prev_ref = prev
                    .as_ref()
                    .filter(|_| running)
                    .map(|(s, t)| (s, t.as_str()));
                if tx
                    .send(Ok(line(&frame(&current.0, read, prev_ref))))
                    .await
                    .is_err()
                {
                    return;
                }
                if !streaming {
                    return;
                }
            }
            skip_first = false;
            tokio::select! {
                _ = tokio::time::sleep(INTERVAL) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            let id = current.0.id.clone();
            let svc = std::sync::Arc::clone(&svc);
            let next = match tokio::task::spawn_blocking(move || svc.stats(&id)).await {
                Ok(Ok(next)) => next,
                // Removed meanwhile: the stream ends, as Docker's does.
                _ => return,
            };
            prev = current.0.sample.take().map(|s| (s, current.1.clone()));
            current = (next, now_rfc3339());
        }
    });
    Ok(stream::respond(rx, "application/json", MidStreamError::Abort).await)
}

pub(in crate::api) async fn rename(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let new_name = params.get("name").unwrap_or_default().to_string();
    blocking(&state, move |s| s.rename(&id, &new_name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_container_frame_is_dockers_zero_frame() {
        let s = StatsSample {
            id: "abc".into(),
            name: "web".into(),
            sample: None,
        };
        let v = frame(&s, ZERO_TIME, None);
        assert_eq!(v["read"], ZERO_TIME);
        assert_eq!(v["name"], "/web");
        assert_eq!(v["memory_stats"], json!({}));
        assert_eq!(v["blkio_stats"]["io_service_bytes_recursive"], Value::Null);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
    }

    #[test]
    fn running_frame_carries_limits_and_precpu() {
        let mut sample = CgroupSample {
            memory_usage_bytes: 100,
            memory_limit_bytes: 64 << 20,
            pids_current: 2,
            ..Default::default()
        };
        sample.cpu.percpu_ns = vec![1, 2];
        sample.cpu.total_ns = 3;
        let s = StatsSample {
            id: "abc".into(),
            name: "web".into(),
            sample: Some(sample.clone()),
        };
        let v = frame(&s, "t1", Some((&sample, "t0")));
        assert_eq!(v["memory_stats"]["limit"], 64 << 20);
        assert_eq!(v["pids_stats"], json!({"current": 2}));
        assert_eq!(v["preread"], "t0");
        assert_eq!(
            v["precpu_stats"]["cpu_usage"]["percpu_usage"],
            json!([1, 2])
        );
        assert_eq!(v["blkio_stats"]["io_serviced_recursive"], json!([]));
    }
}
