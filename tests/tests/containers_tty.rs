//! `docker run -t` / `-it` end to end: raw output through a pty, the window size reaching the
//! container (`POST /containers/{id}/resize`), and the exit code.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;

use std::time::Duration;

use estiba_e2e::{run_command, testimg, wait_until, Daemon};

fn daemon_with_busybox() -> Daemon {
    let d = Daemon::start();
    let image = testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&image]);
    d
}

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
