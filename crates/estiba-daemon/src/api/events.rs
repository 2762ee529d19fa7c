//! `GET /events`: past events (with `since`/`until`) then live ones, as JSON lines.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use estiba_api::{EventActor, EventMessage};
use estiba_events::Event;
use tokio::sync::{broadcast, mpsc};

use super::filters::Filters;
use super::{ApiError, Params, SharedState};

/// Lines buffered for a slow client before the stream waits for it.
const STREAM_LINES: usize = 64;
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// The filter keys `/events` accepts (dockerd's).
const EVENT_FILTER_KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// The wire form of a domain event.
pub(super) fn to_message(e: &Event) -> EventMessage {
    let (status, id, from) = match e.kind.as_str() {
        "container" => (
            e.action.clone(),
            e.actor_id.clone(),
            e.attributes.get("image").cloned().unwrap_or_default(),
        ),
        "image" => (e.action.clone(), e.actor_id.clone(), String::new()),
        _ => (String::new(), String::new(), String::new()),
    };
    EventMessage {
        status,
        id,
        from,
        kind: e.kind.clone(),
        action: e.action.clone(),
        actor: EventActor {
            id: e.actor_id.clone(),
            attributes: e.attributes.clone(),
        },
        scope: "local".to_string(),
        time: e.time_nano.div_euclid(NANOS_PER_SEC),
        time_nano: e.time_nano,
    }
}

/// `busybox:latest` -> `busybox`; leaves `host:5000/x` alone.
fn strip_tag(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    match name.rfind(':') {
        Some(i) if !name[i + 1..].contains('/') => &name[..i],
        _ => name,
    }
}

/// dockerd's event filter: every present key must match.
pub(super) fn include(f: &Filters, ev: &Event) -> bool {
    let attr = |k: &str| ev.attributes.get(k).map(String::as_str).unwrap_or("");
    let fuzzy_name = |kind: &str| {
        if !f.contains(kind) {
            return true;
        }
        f.fuzzy_match(kind, &ev.actor_id) || f.fuzzy_match(kind, attr("name"))
    };
    let event_ok = if ["health_status", "exec_create", "exec_start"]
        .iter()
        .any(|p| f.get("event").iter().any(|v| v == p))
    {
        f.fuzzy_match("event", &ev.action)
    } else {
        f.exact_match("event", &ev.action)
    };
    let image_ok = {
        let image_name = if ev.kind == "image" {
            attr("name")
        } else {
            attr("image")
        };
        !f.contains("image")
            || f.exact_match("image", &ev.actor_id)
            || f.exact_match("image", image_name)
            || f.exact_match("image", strip_tag(&ev.actor_id))
            || f.exact_match("image", strip_tag(image_name))
    };
    event_ok
        && f.exact_match("type", &ev.kind)
        && f.exact_match("scope", "local")
        && fuzzy_name("daemon")
        && fuzzy_name("container")
        && fuzzy_name("plugin")
        && (!f.contains("volume")
            || f.exact_match("volume", &ev.actor_id)
            || f.exact_match("volume", attr("name")))
        && (!f.contains("network")
            || f.fuzzy_match("network", &ev.actor_id)
            || f.fuzzy_match("network", attr("name")))
        && image_ok
        && fuzzy_name("node")
        && fuzzy_name("service")
        && fuzzy_name("secret")
        && fuzzy_name("config")
        && f.match_kv("label", &ev.attributes)
}

/// Parses `since`/`until`: Unix seconds with an optional fraction (what the docker CLI sends),
/// RFC 3339, or a Go duration before now ("24h", "1h30m", as prune's `until` filter takes it,
/// moby's `GetTimestamp`). Returns nanoseconds since the epoch.
pub(super) fn parse_time(value: &str) -> Result<i64, String> {
    let value = value.trim();
    if let Some(ago) = go_duration_nanos(value) {
        return Ok(now_nanos().saturating_sub(ago));
    }
    if value.contains('T') || value.contains('-') && !value.starts_with('-') {
        return chrono::DateTime::parse_from_rfc3339(value)
            .map_err(|e| format!("invalid time {value:?}: {e}"))?
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("time {value:?} is out of range"));
    }
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs
        .parse()
        .map_err(|_| format!("invalid time {value:?}: expected seconds since the epoch"))?;
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid time {value:?}: bad fraction"));
        }
        let digits: i64 = frac
            .parse()
            .map_err(|_| format!("invalid time {value:?}"))?;
        digits * 10_i64.pow(9 - u32::try_from(frac.len()).unwrap_or(9))
    };
    secs.checked_mul(NANOS_PER_SEC)
        .and_then(|s| s.checked_add(nanos))
        .ok_or_else(|| format!("time {value:?} is out of range"))
}

/// A Go duration ("1h30m", "-2m"; not "0", which is a time), in nanoseconds.
fn go_duration_nanos(value: &str) -> Option<i64> {
    if value == "0" {
        return None;
    }
    estiba_api::duration::parse_go_duration(value).and_then(|n| i64::try_from(n).ok())
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn encode(ev: &Event) -> Bytes {
    let mut line = serde_json::to_vec(&to_message(ev)).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Counts an open `/events` stream for `/info`'s NEventsListener.
struct ListenerGuard(SharedState);

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        self.0.event_listeners.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) async fn events(
    State(state): State<SharedState>,
    params: Params,
) -> Result<Response, ApiError> {
    let filters = Filters::parse(params.get("filters").unwrap_or(""))?;
    filters.only(EVENT_FILTER_KEYS)?;
    let time = |key: &str| -> Result<Option<i64>, ApiError> {
        match params.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_time(v).map(Some).map_err(ApiError::bad_request),
        }
    };
    let since = time("since")?;
    let until = time("until")?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(ApiError::bad_request(format!(
                "since time ({}) cannot be after until time ({})",
                params.get("since").unwrap_or_default(),
                params.get("until").unwrap_or_default()
            )));
        }
    }

    let (past, live) = state.events.subscribe();
    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_LINES);
    state.event_listeners.fetch_add(1, Ordering::Relaxed);
    let guard = ListenerGuard(Arc::clone(&state));
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let _guard = guard;
        run_stream(past, live, &filters, since, until, tx, &mut shutdown).await;
    });

    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn run_stream(
    past: Vec<Event>,
    mut live: broadcast::Receiver<Event>,
    filters: &Filters,
    since: Option<i64>,
    until: Option<i64>,
    tx: mpsc::Sender<Bytes>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) {
    let in_window = |ev: &Event| {
        since.is_none_or(|s| ev.time_nano >= s) && until.is_none_or(|u| ev.time_nano <= u)
    };
    // dockerd replays history only when the client gave a time window.
    if since.is_some() || until.is_some() {
        for ev in past.iter().filter(|e| in_window(e) && include(filters, e)) {
            if tx.send(encode(ev)).await.is_err() {
                return;
            }
        }
    }
    let deadline = until.map(|u| {
        let wait_ns = u.saturating_sub(now_nanos()).max(0);
        tokio::time::Instant::now() + Duration::from_nanos(u64::try_from(wait_ns).unwrap_or(0))
    });
    if *shutdown.borrow() {
        return;
    }
    loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => return,
            _ = shutdown.changed() => return,
            _ = tx.closed() => return,
            received = live.recv() => match received {
                Ok(ev) => {
                    if in_window(&ev) && include(filters, &ev) && tx.send(encode(&ev)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("events: a slow client missed {n} events");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        let mut e = Event::now(kind, action, id);
        for (k, v) in attrs {
            e = e.attr(k, v);
        }
        e
    }

    #[test]
    fn filters_like_dockerd() {
        let tag = ev("image", "tag", "sha256:abc", &[("name", "busybox:latest")]);
        let start = ev(
            "container",
            "start",
            "c0ffee",
            &[("name", "web"), ("image", "nginx:1"), ("tier", "front")],
        );
        let exec = ev("container", "exec_start: sh", "c0ffee", &[("name", "web")]);
        let reload = ev("daemon", "reload", "D-ID", &[("name", "host1")]);
        let cases: &[(&str, [bool; 4])] = &[
            ("", [true, true, true, true]),
            (r#"{"type":["image"]}"#, [true, false, false, false]),
            (r#"{"type":["image","daemon"]}"#, [true, false, false, true]),
            (r#"{"event":["tag"]}"#, [true, false, false, false]),
            (r#"{"event":["exec_start"]}"#, [false, false, true, false]),
            (r#"{"image":["busybox"]}"#, [true, false, false, false]),
            (
                r#"{"image":["busybox:latest"]}"#,
                [true, false, false, false],
            ),
            (r#"{"image":["nginx"]}"#, [false, true, false, false]),
            (r#"{"container":["web"]}"#, [false, true, true, false]),
            (r#"{"container":["c0f"]}"#, [false, true, true, false]),
            (r#"{"label":["tier=front"]}"#, [false, true, false, false]),
            (r#"{"label":["tier"]}"#, [false, true, false, false]),
            (r#"{"daemon":["host1"]}"#, [false, false, false, true]),
            (r#"{"scope":["swarm"]}"#, [false, false, false, false]),
        ];
        for (raw, want) in cases {
            let f = Filters::parse(raw).unwrap();
            let got = [&tag, &start, &exec, &reload].map(|e| include(&f, e));
            assert_eq!(got, *want, "filters {raw}");
        }
    }

    #[test]
    fn times_parse_like_dockerd() {
        let cases: &[(&str, Result<i64, ()>)] = &[
            ("1795328841", Ok(1_795_328_841_000_000_000)),
            ("1795328841.5", Ok(1_795_328_841_500_000_000)),
            ("1795328841.000000001", Ok(1_795_328_841_000_000_001)),
            ("2026-11-22T06:27:13Z", Ok(1_795_328_833_000_000_000)),
            ("2026-11-22T07:27:13+01:00", Ok(1_795_328_833_000_000_000)),
            ("abc", Err(())),
            ("1.x", Err(())),
            ("1.0000000001", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_time(input).map_err(|_| ()), *want, "input {input}");
        }
        let hour = 3_600_000_000_000;
        assert_eq!(go_duration_nanos("1h"), Some(hour));
        assert_eq!(go_duration_nanos("1h30m"), Some(hour * 3 / 2));
        assert_eq!(go_duration_nanos("1.5h"), Some(hour * 3 / 2));
        assert_eq!(go_duration_nanos("-2m"), Some(-120_000_000_000));
        assert_eq!(go_duration_nanos("300ms"), Some(300_000_000));
        for bad in ["", "0", "12", "1x", "h", "1h2", "1..5s"] {
            assert_eq!(go_duration_nanos(bad), None, "{bad}");
        }
        let then = parse_time("24h").expect("a duration");
        let ago = now_nanos() - then;
        assert!(
            (24 * hour..24 * hour + 60_000_000_000).contains(&ago),
            "{ago}"
        );
    }

    #[test]
    fn image_events_carry_deprecated_fields() {
        let m = to_message(&ev("image", "tag", "sha256:abc", &[("name", "x:1")]));
        assert_eq!(
            (m.status.as_str(), m.id.as_str(), m.from.as_str()),
            ("tag", "sha256:abc", "")
        );
        let m = to_message(&ev("daemon", "reload", "ID", &[]));
        let v = serde_json::to_value(&m).unwrap();
        assert!(v.get("status").is_none() && v.get("id").is_none());
        assert_eq!(v["scope"], "local");
        assert_eq!(strip_tag("host:5000/x"), "host:5000/x");
        assert_eq!(strip_tag("host:5000/x:1"), "host:5000/x");
    }
}
