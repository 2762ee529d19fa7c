//! `docker run -t` / `-it` end to end: raw output through a pty, the window size reaching the
//! container (`POST /containers/{id}/resize`), and the exit code.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;

use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, run_command, wait_until, Daemon};

/// Runs `shell` under util-linux `script`, so the docker CLI has a terminal.
fn in_pty(d: &Daemon, shell: &str) -> estiba_e2e::CmdOutput {
    let mut cmd = Command::new("script");
    cmd.args(["-qec", shell, "/dev/null"])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir().join("docker-config"));
    run_command(cmd, None)
}

#[test]
fn run_it_gives_raw_output_the_terminal_size_and_the_exit_code() {
    let d = daemon_with_busybox();
    let out = in_pty(
        &d,
        "stty rows 33 cols 111; docker run -it --rm busybox sh -c 'stty size; echo a; exit 4'",
    );
    assert_eq!(out.code, 4, "{out}");
    // The container's pty turns \n into \r\n; the outer pty passes them through.
    assert!(out.stdout.contains("33 111\r\n"), "{out:?}");
    assert!(out.stdout.contains("a\r\n"), "{out:?}");

    // -t without -i: the CLI leaves the outer terminal cooked, so it adds its own \r, exactly as
    // with dockerd ("one\r\r\n"); the log keeps the container pty's raw "\r\n".
    let out = in_pty(
        &d,
        "docker run -t --name t1 busybox sh -c 'echo one; echo two'",
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout, "one\r\r\ntwo\r\r\n", "{out:?}");
    let logs = d.docker(&["logs", "t1"]);
    logs.ok();
    assert_eq!(logs.stdout, "one\r\ntwo\r\n");
    let v = d.docker(&["inspect", "t1"]).json();
    assert_eq!(v[0]["Config"]["Tty"], true);
    d.docker(&["rm", "t1"]).ok();
    assert!(d.docker(&["ps", "-aq"]).stdout.trim().is_empty());
}

#[test]
fn resize_reaches_a_running_tty_container() {
    let d = daemon_with_busybox();
    d.docker(&[
        "run",
        "-dt",
        "--name",
        "tt",
        "busybox",
        "sh",
        "-c",
        "while true; do stty size; sleep 0.2; done",
    ])
    .ok();
    let resp = d.api("POST", "/containers/tt/resize?h=21&w=77", None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resized = wait_until(Duration::from_secs(10), || {
        d.docker(&["logs", "tt"]).stdout.contains("21 77\r\n")
    });
    assert!(resized, "{}", d.docker(&["logs", "tt"]).stdout);
    let resp = d.api("POST", "/containers/nosuch/resize?h=1&w=1", None);
    assert_eq!(resp.status, 404);
    d.docker(&["rm", "-f", "tt"]).ok();
    assert!(d.docker(&["ps", "-aq"]).stdout.trim().is_empty());
}

#[test]
fn attach_to_a_tty_container_is_a_raw_stream() {
    let d = daemon_with_busybox();
    let id = d.docker(&[
        "create",
        "-t",
        "busybox",
        "sh",
        "-c",
        "printf 'a\\tb\\n'; exit 5",
    ]);
    id.ok();
    let id = id.stdout.trim().to_string();
    let mut conn = UnixStream::connect(d.socket()).unwrap_or_else(|e| panic!("connect: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap_or_else(|e| panic!("timeout: {e}"));
    let request = format!(
        "POST /containers/{id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\n\
         Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    );
    conn.write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("write: {e}"));
    // The response head, byte by byte up to the blank line.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        conn.read_exact(&mut byte)
            .unwrap_or_else(|e| panic!("head: {e}"));
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/vnd.docker.raw-stream"),
        "{head}"
    );
    d.docker(&["start", &id]).ok();
    let mut body = Vec::new();
    conn.read_to_end(&mut body)
        .unwrap_or_else(|e| panic!("body: {e}"));
    // No 8-byte multiplexing headers: the pty's bytes as they are, \n turned into \r\n.
    assert_eq!(body, b"a\tb\r\n", "{:?}", String::from_utf8_lossy(&body));
    let code = d.docker(&["wait", &id]);
    assert_eq!(code.stdout.trim(), "5");
    d.docker(&["rm", &id]).ok();
    assert!(d.docker(&["ps", "-aq"]).stdout.trim().is_empty());
}

/// Opens a hijacked attach with stdin to container `id`; returns the stream after the 101.
fn attach_stdin(d: &Daemon, id: &str, query: &str) -> UnixStream {
    raw_attach(d, id, &format!("stream=1&stdin=1&stdout=1&stderr=1{query}"))
}

/// Opens a hijacked attach with `query`; returns the stream after the 101.
fn raw_attach(d: &Daemon, id: &str, query: &str) -> UnixStream {
    let mut conn = UnixStream::connect(d.socket()).unwrap_or_else(|e| panic!("connect: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap_or_else(|e| panic!("timeout: {e}"));
    let request = format!(
        "POST /containers/{id}/attach?{query} HTTP/1.1\r\n\
         Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    );
    conn.write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        conn.read_exact(&mut byte)
            .unwrap_or_else(|e| panic!("head: {e}"));
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    conn
}

#[test]
fn detach_keys_end_the_attach_and_keep_the_container() {
    let d = daemon_with_busybox();
    d.docker(&["run", "-dit", "--name", "dk", "busybox", "sh"])
        .ok();
    for (query, keys) in [
        ("", &b"\x10\x11"[..]),
        ("&detachKeys=ctrl-x,y", &b"\x18y"[..]),
    ] {
        let mut conn = attach_stdin(&d, "dk", query);
        // A half sequence followed by something else is passed on as typed.
        let mut input = b"echo mark-".to_vec();
        input.push(keys[0]);
        input.extend_from_slice(b"-done\n");
        conn.write_all(&input)
            .unwrap_or_else(|e| panic!("write: {e}"));
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let echoed = wait_until(Duration::from_secs(10), || {
            match conn.read(&mut buf) {
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) => panic!("read: {e}"),
            }
            String::from_utf8_lossy(&seen).contains("-done\r\n")
        });
        assert!(echoed, "{:?}", String::from_utf8_lossy(&seen));
        conn.write_all(keys)
            .unwrap_or_else(|e| panic!("write: {e}"));
        // The daemon ends this attach: the stream reaches EOF.
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest)
            .unwrap_or_else(|e| panic!("the attach did not end: {e}"));
        let state = d.docker(&["inspect", "-f", "{{.State.Running}}", "dk"]);
        assert_eq!(state.stdout.trim(), "true", "{state}");
    }
    let resp = d.api(
        "POST",
        "/containers/dk/attach?stream=1&stdin=1&detachKeys=ctrl-99",
        None,
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(
        resp.text().contains("Invalid detach keys"),
        "{}",
        resp.text()
    );
    d.docker(&["rm", "-f", "dk"]).ok();
    assert!(d.docker(&["ps", "-aq"]).stdout.trim().is_empty());
}

#[test]
fn attach_with_logs_replays_the_log_first() {
    let d = daemon_with_busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "echo before; sleep 300",
    ])
    .ok();
    assert!(wait_until(Duration::from_secs(10), || d
        .docker(&["logs", "lg"])
        .stdout
        .contains("before")));
    // stream=0&logs=1: the log so far, framed (stdout is stream 1), then the end.
    let mut conn = raw_attach(&d, "lg", "logs=1&stream=0&stdout=1&stderr=1");
    let mut body = Vec::new();
    conn.read_to_end(&mut body)
        .unwrap_or_else(|e| panic!("body: {e}"));
    let mut want = vec![1u8, 0, 0, 0, 0, 0, 0, 7];
    want.extend_from_slice(b"before\n");
    assert_eq!(body, want, "{:?}", String::from_utf8_lossy(&body));
    d.docker(&["rm", "-f", "lg"]).ok();
}
