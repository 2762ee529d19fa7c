//! The real estibad binary: API basics over its Unix socket, the data-root lock, signals, config
//! errors, and the real docker CLI.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{try_request, Daemon};
use rustix::process::Signal;

#[test]
fn ping_version_headers_and_errors() {
    let d = Daemon::start("{}", &[]);

    let mode = std::fs::metadata(d.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode");

    for path in ["/_ping", "/v1.51/_ping", "/v1.24/_ping"] {
        let r = d.request("GET", path, b"");
        assert_eq!((r.status, r.text().as_str()), (200, "OK"), "{path}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(
            r.header("cache-control"),
            Some("no-cache, no-store, must-revalidate")
        );
        assert_eq!(r.header("pragma"), Some("no-cache"));
        assert_eq!(r.header("builder-version"), Some("1"));
    }
    let head = d.request("HEAD", "/_ping", b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("api-version"), Some("1.51"));

    let v = d.request("GET", "/v1.51/version", b"");
    assert_eq!(v.status, 200);
    for (name, want) in [
        ("api-version", "1.51"),
        ("ostype", "linux"),
        ("docker-experimental", "false"),
        ("content-type", "application/json"),
    ] {
        assert_eq!(v.header(name), Some(want), "header {name}");
    }
    let server = v.header("server").unwrap();
    assert!(
        server.starts_with("Docker/") && server.ends_with(" (linux)"),
        "{server}"
    );
    let json = v.json();
    assert_eq!(json["Platform"]["Name"], "Estiba Engine");
    assert_eq!(json["ApiVersion"], "1.51");
    assert_eq!(json["MinAPIVersion"], "1.24");
    assert_eq!(json["Components"][0]["Name"], "Engine");
    assert_eq!(json["Os"], "linux");
    assert_eq!(json["Arch"], "amd64");

    let cases: &[(&str, &str, &[u8], u16, &str)] = &[
        ("GET", "/nope", b"", 404, "page not found"),
        ("DELETE", "/version", b"", 404, "page not found"),
        (
            "GET",
            "/v1.52/version",
            b"",
            400,
            "client version 1.52 is too new. Maximum supported API version is 1.51",
        ),
        (
            "GET",
            "/v1.12/info",
            b"",
            400,
            "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version",
        ),
        ("GET", "/images/nosuchimage/json", b"", 404, "No such image: nosuchimage:latest"),
        ("GET", "/events?filters=garbage", b"", 400, "invalid filters: expected value at line 1 column 1"),
        ("GET", "/images/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D", b"", 400, "invalid filter 'bogus'"),
    ];
    for (method, path, body, status, message) in cases {
        let r = d.request(method, path, body);
        assert_eq!(r.status, *status, "{method} {path}: {}", r.text());
        assert_eq!(r.json()["message"], *message, "{method} {path}");
        assert_eq!(r.header("api-version"), Some("1.51"), "{method} {path}");
    }

    let bad_json = d.request("POST", "/v1.51/containers/create", b"{bad");
    assert_eq!(bad_json.status, 400);
    let message = bad_json.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("invalid JSON: key must be a string"),
        "{message}"
    );

    let big = vec![b' '; 9 * 1024 * 1024];
    let too_big = d.request("POST", "/containers/create", &big);
    assert_eq!(too_big.status, 413, "{}", too_big.text());
    assert!(too_big.json()["message"]
        .as_str()
        .unwrap()
        .contains("8388608"));

    let huge_header = "x".repeat(100 * 1024);
    let r = try_request(
        &d.socket(),
        "GET",
        "/_ping",
        &[("X-Big", &huge_header)],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 431);

    let info = d.request("GET", "/info", b"").json();
    assert_eq!(info["DockerRootDir"], d.data_root().display().to_string());
    assert_eq!(info["OSType"], "linux");
    assert!(["overlay2", "vfs"].contains(&info["Driver"].as_str().unwrap()));
    assert_eq!(info["Images"], 0);

    let df = d.request("GET", "/system/df", b"");
    assert_eq!(df.status, 200, "{}", df.text());
    assert_eq!(df.json()["Images"], serde_json::json!([]));
}

#[test]
fn docker_cli_version_and_info() {
    let d = Daemon::start(
        "{}",
        &["--label", "tier=test", "--insecure-registry", "myreg:5000"],
    );
    let out = d.docker(&["version"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "docker version: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Server: Estiba Engine"), "{stdout}");
    assert!(
        stdout.contains("API version:      1.51 (minimum version 1.24)"),
        "{stdout}"
    );

    let out = d.docker(&["info"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "docker info: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("Docker Root Dir: {}", d.data_root().display())),
        "{stdout}"
    );
    assert!(stdout.contains("tier=test"), "{stdout}");
    assert!(stdout.contains("myreg:5000"), "{stdout}");

    let out = d.docker(&["images", "-q"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn second_daemon_on_same_data_root_is_refused() {
    let d = Daemon::start("{}", &[]);
    let other = d.dir.path().join("other.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_estibad"))
        .args([
            "--data-root",
            &d.data_root().display().to_string(),
            "--exec-root",
            &d.dir.path().join("exec2").display().to_string(),
            "-H",
            &format!("unix://{}", other.display()),
            "--config-file",
            &d.config_file().display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another estibad is already running"),
        "{stderr}"
    );
    assert!(
        !other.exists(),
        "the refused daemon must not have bound its socket"
    );
    // The first daemon is unaffected.
    assert_eq!(d.request("GET", "/_ping", b"").status, 200);
}

#[test]
fn sigterm_removes_socket_and_pidfile() {
    let mut d = Daemon::start("{}", &[]);
    assert!(std::fs::metadata(d.socket())
        .unwrap()
        .file_type()
        .is_socket());
    assert_eq!(
        std::fs::read_to_string(d.pidfile()).unwrap().trim(),
        d.pid().to_string()
    );
    d.signal(Signal::TERM);
    let (status, stderr) = d.wait_exit();
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(!d.socket().exists(), "socket left behind");
    assert!(!d.pidfile().exists(), "pid file left behind");

    // A restart on the same data-root works (the lock went with the process).
    let restarted = Daemon::start("{}", &[]);
    assert_eq!(restarted.request("GET", "/_ping", b"").status, 200);
}

#[test]
fn stale_socket_is_replaced_and_sighup_reloads() {
    let d = Daemon::start("{}", &[]);
    // Kill without cleanup: the socket file stays behind.
    let mut first = d;
    first.signal(Signal::KILL);
    let _ = first.wait_exit();
    assert!(first.socket().exists());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_estibad"))
        .args(first.args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    first.child = Some(child);
    let deadline = std::time::Instant::now() + common::START_TIMEOUT;
    while try_request(&first.socket(), "GET", "/_ping", &[], b"").is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "restart did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    std::fs::write(
        first.config_file(),
        r#"{"labels": ["reloaded=yes"], "registry-mirrors": ["https://mirror.example"]}"#,
    )
    .unwrap();
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    first.signal(Signal::HUP);
    let deadline = std::time::Instant::now() + common::START_TIMEOUT;
    loop {
        let info = first.request("GET", "/info", b"").json();
        if info["Labels"] == serde_json::json!(["reloaded=yes"]) {
            assert_eq!(
                info["RegistryConfig"]["Mirrors"],
                serde_json::json!(["https://mirror.example/"])
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "reload not applied: {info}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let until = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let filters = "%7B%22type%22%3A%5B%22daemon%22%5D%7D";
    let events = first.request(
        "GET",
        &format!("/v1.51/events?since={since}&until={until}&filters={filters}"),
        b"",
    );
    assert_eq!(events.status, 200);
    let lines: Vec<serde_json::Value> = events
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{}", events.text());
    assert_eq!(lines[0]["Type"], "daemon");
    assert_eq!(lines[0]["Action"], "reload");
    assert_eq!(
        lines[0]["Actor"]["Attributes"]["labels"],
        "[\"reloaded=yes\"]"
    );
}

#[test]
fn config_file_errors_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(Option<&str>, &[&str], &str)] = &[
        (
            Some(r#"{"bogus": 1}"#),
            &[],
            "the following directives don't match any configuration option: bogus",
        ),
        (
            Some(r#"{"debug": false}"#),
            &["-D"],
            "the following directives are specified both as a flag and in the configuration file: debug: (from flag: true, from file: false)",
        ),
        (None, &[], "no such file or directory"),
    ];
    for (i, (content, extra, want)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("daemon{i}.json"));
        if let Some(content) = content {
            std::fs::write(&file, content).unwrap();
        }
        let out = Command::new(env!("CARGO_BIN_EXE_estibad"))
            .args([
                "--data-root",
                &dir.path().join("data").display().to_string(),
            ])
            .args([
                "--exec-root",
                &dir.path().join("exec").display().to_string(),
            ])
            .args(["--config-file", &file.display().to_string()])
            .args(*extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "unable to configure the Docker daemon with file {}",
                file.display()
            )),
            "{stderr}"
        );
        assert!(stderr.contains(want), "{stderr}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before the config is valid"
    );
}

#[test]
fn live_events_stream_until_shutdown() {
    let mut d = Daemon::start("{}", &[]);
    let socket = d.socket();
    let reader = std::thread::spawn(move || {
        let filters = "%7B%22type%22%3A%5B%22daemon%22%5D%7D";
        try_request(
            &socket,
            "GET",
            &format!("/events?filters={filters}"),
            &[],
            b"",
        )
    });
    let deadline = std::time::Instant::now() + common::START_TIMEOUT;
    while d.request("GET", "/info", b"").json()["NEventsListener"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the events stream never opened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    d.signal(Signal::HUP);
    // The reload is published before the listener count could matter; wait for it in history.
    let deadline = std::time::Instant::now() + common::START_TIMEOUT;
    loop {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let until = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
        let r = d.request("GET", &format!("/events?since=0&until={until}"), b"");
        if r.text().contains("\"reload\"") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no reload event");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    d.signal(Signal::TERM);
    let (status, stderr) = d.wait_exit();
    assert!(status.success(), "exit {status}: {stderr}");
    let events = reader.join().unwrap().unwrap();
    assert_eq!(events.status, 200);
    assert_eq!(events.header("content-type"), Some("application/json"));
    let lines: Vec<serde_json::Value> = events
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{}", events.text());
    assert_eq!(lines[0]["Action"], "reload");
    assert_eq!(lines[0]["scope"], "local");
}
