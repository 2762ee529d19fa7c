//! Health checks (moby's `daemon/health.go`): a container whose config (or image) has a
//! `Healthcheck` gets one monitor thread per run that execs the probe every interval, keeps
//! the last five results, counts failures against the retries (not within the start period
//! while still starting), turns `starting` into `healthy` or `unhealthy`, and publishes
//! `health_status: <status>` on every change. When the run ends the status is left
//! `unhealthy`, as dockerd leaves it.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::ContainerError;
use crate::exec::ExecConfig;
use crate::model::{ContainerRecord, Status};
use crate::service::{Container, ContainerService};

/// moby's defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// Results kept in `State.Health.Log`.
const MAX_LOG_ENTRIES: usize = 5;
/// Bytes of a probe's output kept.
const MAX_OUTPUT_BYTES: usize = 4096;
/// The shortest interval, timeout or start period the API accepts (1 ms).
const MINIMUM_NANOS: i64 = 1_000_000;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthResult>,
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// A healthcheck ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probe {
    /// The command to exec (a `CMD-SHELL` test already wrapped in `/bin/sh -c`).
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: i64,
}

fn nanos(check: &serde_json::Value, key: &str) -> i64 {
    check
        .get(key)
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0)
}

fn duration_or(check: &serde_json::Value, key: &str, default: Duration) -> Duration {
    match u64::try_from(nanos(check, key)) {
        Ok(n) if n > 0 => Duration::from_nanos(n),
        _ => default,
    }
}

/// The probe of a container's `Healthcheck`; `None` without one, for `NONE` or an unknown
/// test type (dockerd runs nothing then either).
pub(crate) fn probe_of(check: Option<&serde_json::Value>) -> Option<Probe> {
    let check = check?;
    let test: Vec<String> = check
        .get("Test")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    let (kind, rest) = test.split_first()?;
    let cmd = match kind.as_str() {
        "CMD" if !rest.is_empty() => rest.to_vec(),
        "CMD-SHELL" if !rest.is_empty() => {
            vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.join(" ")]
        }
        _ => return None,
    };
    let retries = match nanos(check, "Retries") {
        n if n > 0 => n,
        _ => DEFAULT_RETRIES,
    };
    Some(Probe {
        cmd,
        interval: duration_or(check, "Interval", DEFAULT_INTERVAL),
        timeout: duration_or(check, "Timeout", DEFAULT_TIMEOUT),
        start_period: duration_or(check, "StartPeriod", Duration::ZERO),
        retries,
    })
}

/// moby's create-time checks of a `Healthcheck`.
pub(crate) fn validate(check: Option<&serde_json::Value>) -> Result<(), ContainerError> {
    let Some(check) = check else {
        return Ok(());
    };
    for key in ["Interval", "Timeout", "StartPeriod"] {
        let n = nanos(check, key);
        if n != 0 && n < MINIMUM_NANOS {
            return Err(ContainerError::InvalidParameter(format!(
                "{key} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if nanos(check, "Retries") < 0 {
        return Err(ContainerError::InvalidParameter(
            "Retries in Healthcheck cannot be negative".to_owned(),
        ));
    }
    Ok(())
}

/// The user's `Healthcheck` over the image's, field by field (moby's `merge`): an empty test
/// and zero durations or retries take the image's.
pub(crate) fn merge(
    user: Option<serde_json::Value>,
    image: Option<serde_json::Value>,
) -> Option<serde_json::Value> {
    let (Some(mut user), Some(image)) = (user.clone(), image.clone()) else {
        return user.or(image);
    };
    let empty_test = user
        .get("Test")
        .and_then(serde_json::Value::as_array)
        .is_none_or(Vec::is_empty);
    if empty_test {
        user["Test"] = image.get("Test").cloned().unwrap_or_default();
    }
    for key in [
        "Interval",
        "Timeout",
        "StartPeriod",
        "StartInterval",
        "Retries",
    ] {
        if nanos(&user, key) == 0 {
            if let Some(v) = image.get(key) {
                user[key] = v.clone();
            }
        }
    }
    Some(user)
}

/// What one result does to the health (moby's `handleProbeResult`).
pub(crate) fn apply_result(
    health: &mut Health,
    result: HealthResult,
    probe: &Probe,
    since_start: Duration,
) {
    let ok = result.exit_code == 0;
    health.log.push(result);
    if health.log.len() > MAX_LOG_ENTRIES {
        let extra = health.log.len() - MAX_LOG_ENTRIES;
        health.log.drain(..extra);
    }
    if ok {
        health.failing_streak = 0;
        health.status = HEALTHY.to_owned();
        return;
    }
    // While starting, failures inside the start period do not count.
    if health.status == STARTING && since_start < probe.start_period {
        return;
    }
    health.failing_streak += 1;
    if health.failing_streak >= probe.retries {
        health.status = UNHEALTHY.to_owned();
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The payloads of a stdcopy stream, at most [`MAX_OUTPUT_BYTES`] kept, read until EOF or
/// `deadline`; whether the stream ended.
fn read_output(mut stream: UnixStream, deadline: Instant, out: &mut Vec<u8>) -> bool {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let ended = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break false;
        }
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => {
                // Headers are kept with the payload until the frame is whole; only the
                // first MAX_OUTPUT_BYTES of output matter, so stop collecting after that.
                if raw.len() < 2 * MAX_OUTPUT_BYTES + 16 {
                    raw.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break false,
        }
    };
    let mut rest = raw.as_slice();
    while rest.len() >= 8 && out.len() < MAX_OUTPUT_BYTES {
        let size = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let payload = &rest[8..rest.len().min(8 + size)];
        out.extend_from_slice(payload);
        rest = &rest[(8 + size).min(rest.len())..];
    }
    out.truncate(MAX_OUTPUT_BYTES);
    ended
}

impl ContainerService {
    /// Starts the health monitor of a container that just started (or was restored running).
    pub(crate) fn start_health_monitor(self: &Arc<Self>, c: &Arc<Container>) {
        let record = c.snapshot();
        let Some(probe) = probe_of(record.config.healthcheck.as_ref()) else {
            return;
        };
        let run = record.state.started_at.clone();
        self.update(
            c,
            |r| {
                let health = r.state.health.get_or_insert_with(Health::default);
                health.status = STARTING.to_owned();
                health.failing_streak = 0;
            },
            false,
        );
        let service = Arc::clone(self);
        let c = Arc::clone(c);
        let spawned = std::thread::Builder::new()
            .name(format!("health-{}", crate::names::short_id(&c.id)))
            .stack_size(256 * 1024)
            .spawn(move || service.health_loop(&c, &probe, &run));
        if let Err(e) = spawned {
            tracing::error!("cannot start the health monitor of {}: {e}", record.id);
        }
    }

    /// Probes every interval while the run that started at `run` goes on.
    fn health_loop(self: &Arc<Self>, c: &Arc<Container>, probe: &Probe, run: &str) {
        let same_run =
            |r: &ContainerRecord| r.state.status.is_running() && r.state.started_at == run;
        let started = Instant::now();
        loop {
            // Sleep the interval, waking early when the run ends.
            let ended = c.wait_for(probe.interval, |r| !same_run(r));
            if ended {
                break;
            }
            let result = self.run_probe(c, probe);
            let mut changed_to = None;
            let record = self.update(
                c,
                |r| {
                    if !same_run(r) {
                        return;
                    }
                    let health = r.state.health.get_or_insert_with(Health::default);
                    let before = health.status.clone();
                    apply_result(health, result, probe, started.elapsed());
                    if health.status != before {
                        changed_to = Some(health.status.clone());
                    }
                },
                false,
            );
            if let Some(status) = changed_to {
                self.publish(&record, &format!("health_status: {status}"), &[]);
            }
        }
        // dockerd leaves a stopped container's health unhealthy.
        self.update(
            c,
            |r| {
                if r.state.started_at == run && !r.state.status.is_running() {
                    if let Some(h) = r.state.health.as_mut() {
                        h.status = UNHEALTHY.to_owned();
                    }
                }
            },
            false,
        );
    }

    /// Execs the probe once, bounded by its timeout.
    fn run_probe(self: &Arc<Self>, c: &Container, probe: &Probe) -> HealthResult {
        let start = now();
        let failed = |output: String| HealthResult {
            start: start.clone(),
            end: now(),
            exit_code: -1,
            output,
        };
        let config = ExecConfig {
            cmd: probe.cmd.clone(),
            attach_stdout: true,
            attach_stderr: true,
            ..ExecConfig::default()
        };
        let exec_id = match self.exec_create(&c.id, config) {
            Ok(id) => id,
            Err(e) => return failed(e.to_string()),
        };
        let started = match self.exec_start(&exec_id) {
            Ok(s) => s,
            Err(e) => {
                self.exec_forget(&exec_id);
                return failed(e.to_string());
            }
        };
        let deadline = Instant::now() + probe.timeout;
        let mut output = Vec::new();
        let ended = read_output(started.stream, deadline, &mut output);
        let mut done = started.done;
        let finished = ended && wait_done(&mut done, deadline);
        if !finished {
            // Kill the probe: through a pidfd, so a PID reused since cannot be hit once
            // the exec is known to be finished.
            if let Some(pid) = i32::try_from(started.info.pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                if let Ok(fd) =
                    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                {
                    if !*done.borrow() {
                        let _ =
                            rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL);
                    }
                }
            }
            self.exec_forget(&exec_id);
            return failed(format!(
                "Health check exceeded timeout ({})",
                go_duration(probe.timeout)
            ));
        }
        let exit_code = self
            .exec_inspect(&exec_id)
            .ok()
            .and_then(|i| i.exit_code)
            .unwrap_or(-1);
        self.exec_forget(&exec_id);
        HealthResult {
            start,
            end: now(),
            exit_code,
            output: String::from_utf8_lossy(&output).into_owned(),
        }
    }
}

/// Waits (polling; the exit follows the stream's end within milliseconds) until the exec's
/// exit code is recorded or `deadline` passes.
fn wait_done(done: &mut tokio::sync::watch::Receiver<bool>, deadline: Instant) -> bool {
    loop {
        if *done.borrow_and_update() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A duration as Go prints it for whole seconds or milliseconds ("30s", "1.5s", "500ms").
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// `docker ps`' `health=` filter: `none` for a container without health.
pub(crate) fn health_filter_matches(record: &ContainerRecord, wanted: &[String]) -> bool {
    if wanted.is_empty() {
        return true;
    }
    let status = match (&record.state.health, record.state.status) {
        (Some(h), Status::Running | Status::Paused) => h.status.as_str(),
        (Some(h), _) if !h.status.is_empty() => h.status.as_str(),
        _ => "none",
    };
    wanted.iter().any(|w| w == status)
}

#[cfg(test)]
mod tests;
