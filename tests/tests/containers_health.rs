//! Health checks end to end through the real docker CLI: `--health-*` flags, the status in
//! inspect and `docker ps`, the `health=` filter, `health_status` events, timeouts, and the
//! status a stopped container keeps.

use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, wait_until, Daemon};

fn health(d: &Daemon, name: &str) -> serde_json::Value {
    let out = d.docker(&["inspect", "-f", "{{json .State.Health}}", name]);
    out.ok();
    out.json()
}

fn status_of(d: &Daemon, name: &str) -> String {
    health(d, name)["Status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[track_caller]
fn wait_status(d: &Daemon, name: &str, want: &str) {
    assert!(
        wait_until(Duration::from_secs(15), || status_of(d, name) == want),
        "{name} never became {want}: {}",
        health(d, name)
    );
}

fn ps_status(d: &Daemon, name: &str) -> String {
    let filter = format!("name=^{name}$");
    let out = d.docker(&["ps", "--filter", &filter, "--format", "{{.Status}}"]);
    out.ok().stdout.trim().to_owned()
}

#[test]
fn health_moves_with_the_probe_and_shows_everywhere() {
    let d = daemon_with_busybox();
    let t0 = chrono_now_secs();
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--network",
        "none",
        "--health-cmd",
        "cat /tmp/ok",
        "--health-interval",
        "100ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "600",
    ]);
    let id = out.ok().stdout.trim().to_owned();
    let h = health(&d, "hc");
    assert!(
        ["starting", "unhealthy"].contains(&h["Status"].as_str().unwrap_or_default()),
        "{h}"
    );

    // Two failures in a row: unhealthy, with the probe's output and exit code in the log.
    wait_status(&d, "hc", "unhealthy");
    let h = health(&d, "hc");
    assert!(h["FailingStreak"].as_i64().unwrap_or(0) >= 2, "{h}");
    let last = &h["Log"][h["Log"].as_array().map_or(0, Vec::len).saturating_sub(1)];
    assert_eq!(last["ExitCode"], 1, "{h}");
    assert!(
        last["Output"]
            .as_str()
            .is_some_and(|o| o.contains("can't open '/tmp/ok'")),
        "{h}"
    );
    assert!(
        ps_status(&d, "hc").ends_with("(unhealthy)"),
        "{}",
        ps_status(&d, "hc")
    );

    d.docker(&["exec", "hc", "touch", "/tmp/ok"]).ok();
    wait_status(&d, "hc", "healthy");
    assert_eq!(health(&d, "hc")["FailingStreak"], 0);
    assert!(
        ps_status(&d, "hc").ends_with("(healthy)"),
        "{}",
        ps_status(&d, "hc")
    );
    let healthy = d.docker(&["ps", "-q", "--no-trunc", "--filter", "health=healthy"]);
    assert_eq!(healthy.ok().stdout.trim(), id);
    let unhealthy = d.docker(&["ps", "-q", "--filter", "health=unhealthy"]);
    assert_eq!(unhealthy.ok().stdout, "");
    let out = d.docker(&["ps", "--filter", "health=bogus"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("Unrecognised filter value for health: bogus"),
        "{out}"
    );

    let until = (chrono_now_secs() + 1).to_string();
    let events = d.docker(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &until,
        "--filter",
        "container=hc",
        "--format",
        "{{.Status}}",
    ]);
    let lines: Vec<String> = events
        .ok()
        .lines()
        .iter()
        .filter(|l| l.starts_with("health_status"))
        .map(|l| l.to_string())
        .collect();
    assert_eq!(
        lines,
        ["health_status: unhealthy", "health_status: healthy"],
        "{events}"
    );

    // A stopped container's health stays, marked unhealthy (as dockerd leaves it).
    d.docker(&["stop", "-t", "0", "hc"]).ok();
    wait_status(&d, "hc", "unhealthy");
    let none = d.docker(&["ps", "-aq", "--filter", "health=none"]);
    assert_eq!(none.ok().stdout, "");
    d.docker(&["rm", "hc"]).ok();
}

#[test]
fn a_probe_past_its_timeout_is_killed_and_fails() {
    let d = daemon_with_busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--network",
        "none",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    wait_status(&d, "slow", "unhealthy");
    let h = health(&d, "slow");
    assert_eq!(h["Log"][0]["ExitCode"], -1, "{h}");
    assert_eq!(
        h["Log"][0]["Output"], "Health check exceeded timeout (300ms)",
        "{h}"
    );
    // The timed-out probes do not pile up inside the container.
    let out = d.docker(&[
        "exec",
        "slow",
        "sh",
        "-c",
        "ps -o args | grep -c '^sleep 30$'",
    ]);
    let running: i64 = out.stdout.trim().parse().unwrap_or(99);
    assert!(running <= 1, "probes left running: {out}");
    d.docker(&["rm", "-f", "slow"]).ok();
}

#[test]
fn bad_healthcheck_settings_are_refused_and_none_disables() {
    let d = daemon_with_busybox();
    // The docker CLI checks its flags itself; the daemon checks what any client sends.
    let body = br#"{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"Retries":-1}}"#;
    let resp = d.api("POST", "/containers/create", Some(body));
    assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(&resp.body));
    assert!(
        String::from_utf8_lossy(&resp.body).contains("Retries in Healthcheck cannot be negative"),
        "{}",
        String::from_utf8_lossy(&resp.body)
    );
    let body = br#"{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"Interval":5000}}"#;
    let resp = d.api("POST", "/containers/create", Some(body));
    assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(&resp.body));
    assert!(
        String::from_utf8_lossy(&resp.body)
            .contains("Interval in Healthcheck cannot be less than 1ms"),
        "{}",
        String::from_utf8_lossy(&resp.body)
    );
    let out = d.docker(&["ps", "-aq"]);
    assert_eq!(out.ok().stdout, "", "a refused create left a container");

    d.docker(&[
        "run",
        "-d",
        "--name",
        "off",
        "--network",
        "none",
        "--no-healthcheck",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    let out = d.docker(&["inspect", "-f", "{{json .State.Health}}", "off"]);
    assert_eq!(out.ok().stdout.trim(), "null");
    let none = d.docker(&["ps", "-q", "--filter", "health=none"]);
    assert_eq!(none.ok().lines().len(), 1);
    d.docker(&["rm", "-f", "off"]).ok();
}

fn chrono_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
