//! Real containers through the shim and runc (as root): start-up, attach, stdin, tty, kill, wait,
//! the json-file log, exit.json and shutdown.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use estiba_shim::{
    read_exit_file, spawn_shim, AttachOptions, ShimArgs, ShimClient, ShimError, Status,
};

const RUNC: &str = "/usr/sbin/runc";
const BUSYBOX: &str = "/bin/busybox";

struct Fixture {
    dir: tempfile::TempDir,
    args: ShimArgs,
}

impl Fixture {
    fn new(name: &str, process_args: &[&str], tty: bool, stdin: bool) -> Fixture {
        assert!(
            rustix::process::geteuid().is_root(),
            "the shim tests create containers and need root"
        );
        assert!(
            Path::new(RUNC).exists(),
            "{RUNC} is required (Debian's runc package)"
        );
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is required (Debian's busybox-static package)"
        );
        let dir = tempfile::tempdir().unwrap();
        let id = format!("shimtest-{name}-{}", std::process::id());
        let bundle = dir.path().join("bundle");
        let bin = bundle.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        for applet in ["sh", "cat", "echo", "sleep", "stty", "true"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        for d in ["proc", "dev", "sys", "tmp"] {
            std::fs::create_dir_all(bundle.join("rootfs").join(d)).unwrap();
        }
        let caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"];
        let config = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": tty,
                "user": {"uid": 0, "gid": 0},
                "args": process_args,
                "env": ["PATH=/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "shimtest",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"},
                               {"type": "network"}],
                "cgroupsPath": format!("/estiba-shimtest-{id}"),
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/sys"]
            }
        });
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        let args = ShimArgs {
            id,
            bundle,
            state_dir: dir.path().join("state"),
            runtime: RUNC.into(),
            runtime_root: Some(dir.path().join("runc-root")),
            runtime_args: vec![],
            log_path: dir.path().join("ctr-json.log"),
            tty,
            stdin,
            log_max_size_bytes: None,
            log_max_files: None,
            start: false,
            hold_output: 0,
        };
        Fixture { dir, args }
    }

    fn spawn(&self) -> (u32, ShimClient) {
        let pid = spawn_shim(Path::new(env!("CARGO_BIN_EXE_estiba-shim")), &self.args).unwrap();
        (
            pid,
            ShimClient::for_state_dir(&self.args.state_dir).unwrap(),
        )
    }

    fn runc_state_dir(&self) -> PathBuf {
        self.dir.path().join("runc-root").join(&self.args.id)
    }

    fn log_records(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.args.log_path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(v["time"].as_str().unwrap().ends_with('Z'), "{l}");
                (
                    v["stream"].as_str().unwrap().to_owned(),
                    v["log"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Shutdown after the exit: the socket, the runtime's state and the shim process are gone.
    fn shutdown(&self, client: &ShimClient, shim_pid: u32) {
        client.shutdown().unwrap();
        assert!(!self.args.state_dir.join(estiba_shim::SOCKET_NAME).exists());
        assert!(!self.runc_state_dir().exists(), "runc state left behind");
        wait_for(|| !process_alive(shim_pid), "the shim to exit");
    }
}

impl Drop for Fixture {
    /// runc removes the container's cgroup; whatever a failed test left goes here. Each fixture
    /// has its own top-level cgroup: a shared parent removed by one test's drop raced another
    /// test's runc between its mkdir of the parent and of the child (ENOENT, seen in CI).
    fn drop(&mut self) {
        let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        for c in controllers.flatten() {
            let _ = std::fs::remove_dir(c.path().join(format!("estiba-shimtest-{}", self.args.id)));
        }
    }
}

fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has exited; its reaper is not ours to drive.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn ppid(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read_all(stream: &mut std::os::unix::net::UnixStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    out
}

/// Splits Docker stdcopy frames into (stream, payload) pairs.
fn frames(mut data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while !data.is_empty() {
        assert!(data.len() >= 8, "truncated frame header: {data:?}");
        assert_eq!(&data[1..4], &[0, 0, 0]);
        let len = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
        out.push((data[0], data[8..8 + len].to_vec()));
        data = &data[8 + len..];
    }
    out
}

fn stream_text(frames: &[(u8, Vec<u8>)], kind: u8) -> String {
    let bytes: Vec<u8> = frames
        .iter()
        .filter(|(k, _)| *k == kind)
        .flat_map(|(_, p)| p.clone())
        .collect();
    String::from_utf8(bytes).unwrap()
}

/// The log holds exactly "out" on stdout and "err" on stderr.
fn assert_out_and_err_logged(f: &Fixture) {
    let mut records = f.log_records();
    records.sort();
    assert_eq!(
        records,
        [
            ("stderr".to_owned(), "err\n".to_owned()),
            ("stdout".to_owned(), "out\n".to_owned())
        ]
    );
}

/// An attach to stdout and stderr, without stdin.
fn attach_output(client: &ShimClient) -> std::os::unix::net::UnixStream {
    client
        .attach(AttachOptions {
            stdin: false,
            stdout: true,
            stderr: true,
            stdin_once: false,
        })
        .unwrap()
}

#[test]
fn runs_attaches_logs_and_records_the_exit() {
    let f = Fixture::new(
        "echo",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        false,
        false,
    );
    let (shim_pid, client) = f.spawn();
    assert_ne!(
        ppid(shim_pid),
        std::process::id(),
        "the shim must not stay the spawner's child"
    );
    let pidfile = std::fs::read_to_string(f.args.state_dir.join("shim.pid")).unwrap();
    assert_eq!(pidfile, shim_pid.to_string());

    let state = client.state().unwrap();
    assert_eq!(state.status, Status::Created);
    assert!(state.pid > 1 && state.started_at.is_none() && state.exit_code.is_none());

    let mut attach = attach_output(&client);
    client.start().unwrap();
    let got = frames(&read_all(&mut attach));
    assert_eq!(stream_text(&got, 1), "out\n");
    assert_eq!(stream_text(&got, 2), "err\n");

    let exit = client.wait().unwrap();
    assert_eq!(exit.exit_code, 3);
    assert!(!exit.oom_killed);
    assert_eq!(
        read_exit_file(&f.args.state_dir).unwrap(),
        Some(exit.clone())
    );

    assert_out_and_err_logged(&f);

    let state = client.state().unwrap();
    assert_eq!(state.status, Status::Stopped);
    assert_eq!(state.exit_code, Some(3));
    assert_eq!(
        state.finished_at.as_deref(),
        Some(exit.finished_at.as_str())
    );
    assert!(state.started_at.is_some());
    // A second wait after the exit answers at once.
    assert_eq!(client.wait().unwrap(), exit);
    assert!(
        matches!(client.kill(15, false), Err(ShimError::Failed(m)) if m == "container is not running")
    );
    f.shutdown(&client, shim_pid);
}

#[test]
fn stdin_reaches_the_container_and_eof_closes_it() {
    let f = Fixture::new("cat", &["cat"], false, true);
    let (shim_pid, client) = f.spawn();
    let mut attach = client
        .attach(AttachOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stdin_once: true,
        })
        .unwrap();
    client.start().unwrap();
    attach.write_all(b"hello\n").unwrap();
    attach.shutdown(Shutdown::Write).unwrap();
    let got = frames(&read_all(&mut attach));
    assert_eq!(stream_text(&got, 1), "hello\n");
    assert_eq!(stream_text(&got, 2), "");
    assert_eq!(client.wait().unwrap().exit_code, 0);
    assert_eq!(
        f.log_records(),
        [("stdout".to_owned(), "hello\n".to_owned())]
    );
    f.shutdown(&client, shim_pid);
}

#[test]
fn tty_streams_raw_bytes_and_resizes() {
    let f = Fixture::new("tty", &["sh", "-c", "stty size; echo tty-ok"], true, false);
    let (shim_pid, client) = f.spawn();
    let mut attach = attach_output(&client);
    client.resize(30, 100).unwrap();
    client.start().unwrap();
    let out = String::from_utf8(read_all(&mut attach)).unwrap();
    assert_eq!(out, "30 100\r\ntty-ok\r\n");
    assert_eq!(client.wait().unwrap().exit_code, 0);
    let records = f.log_records();
    assert_eq!(
        records,
        [
            ("stdout".to_owned(), "30 100\r\n".to_owned()),
            ("stdout".to_owned(), "tty-ok\r\n".to_owned())
        ]
    );
    f.shutdown(&client, shim_pid);
}

#[test]
fn tty_stdin_is_echoed_and_read() {
    let f = Fixture::new("ttyin", &["sh", "-c", "read x; echo got:$x"], true, true);
    let (shim_pid, client) = f.spawn();
    let mut attach = client
        .attach(AttachOptions {
            stdin: true,
            stdout: true,
            stderr: false,
            stdin_once: true,
        })
        .unwrap();
    client.start().unwrap();
    attach.write_all(b"abc\n").unwrap();
    let out = String::from_utf8(read_all(&mut attach)).unwrap();
    // The pty echoes the input, then the shell answers.
    assert_eq!(out, "abc\r\ngot:abc\r\n");
    assert_eq!(client.wait().unwrap().exit_code, 0);
    f.shutdown(&client, shim_pid);
}

#[test]
fn kill_9_gives_137_and_the_shim_ignores_sigterm() {
    let f = Fixture::new("sleep", &["sleep", "100"], false, false);
    let (shim_pid, client) = f.spawn();
    client.start().unwrap();
    let state = client.state().unwrap();
    assert_eq!(state.status, Status::Running);
    assert!(process_alive(state.pid));
    assert_eq!(
        ppid(state.pid),
        shim_pid,
        "the shim is the init's parent (subreaper)"
    );

    let rss = vm_rss_kib(shim_pid);
    let status = std::fs::read_to_string(format!("/proc/{shim_pid}/status")).unwrap();
    let detail: Vec<&str> = status.lines().filter(|l| l.starts_with("Rss")).collect();
    eprintln!(
        "shim VmRSS while the container runs: {rss} KiB ({})",
        detail.join(", ")
    );
    let limit: u64 = std::env::var("ESTIBA_SHIM_MAX_RSS_KIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4096);
    assert!(rss <= limit, "shim VmRSS {rss} KiB over {limit} KiB");

    let term = rustix::process::Pid::from_raw(shim_pid as i32).unwrap();
    rustix::process::kill_process(term, rustix::process::Signal::TERM).unwrap();
    assert_eq!(
        client.state().unwrap().status,
        Status::Running,
        "SIGTERM must not stop the shim"
    );

    assert!(
        matches!(client.shutdown(), Err(ShimError::Failed(m)) if m == "container is still running")
    );
    client.kill(9, false).unwrap();
    let exit = client.wait().unwrap();
    assert_eq!(exit.exit_code, 137);
    assert!(!process_alive(state.pid));
    f.shutdown(&client, shim_pid);
}

#[test]
fn a_missing_executable_is_a_clear_error_and_leaves_nothing() {
    let f = Fixture::new("missing", &["/no/such/binary"], false, false);
    let err = spawn_shim(Path::new(env!("CARGO_BIN_EXE_estiba-shim")), &f.args).unwrap_err();
    let message = err.to_string();
    eprintln!("create error: {message}");
    assert!(matches!(err, ShimError::Failed(_)), "{err:?}");
    assert!(message.contains("/no/such/binary"), "{message}");
    assert!(message.contains("no such file or directory"), "{message}");
    assert!(!f.args.state_dir.join(estiba_shim::SOCKET_NAME).exists());
    assert!(!f.runc_state_dir().exists(), "runc state left behind");
}

#[test]
fn many_attach_streams_at_once_and_the_wait_comes_after_the_output() {
    let f = Fixture::new(
        "multi",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line$i; i=$((i+1)); done",
        ],
        false,
        false,
    );
    let (shim_pid, client) = f.spawn();
    let opts = AttachOptions {
        stdin: false,
        stdout: true,
        stderr: false,
        stdin_once: false,
    };
    let mut streams: Vec<_> = (0..3).map(|_| client.attach(opts).unwrap()).collect();
    client.start().unwrap();
    let exit = client.wait().unwrap();
    assert_eq!(exit.exit_code, 0);
    // Every line is in the log by the time wait answers.
    assert_eq!(f.log_records().len(), 200);
    let want: String = (0..200).map(|i| format!("line{i}\n")).collect();
    for s in &mut streams {
        assert_eq!(stream_text(&frames(&read_all(s)), 1), want);
    }
    f.shutdown(&client, shim_pid);
}

/// `--start`: `ready` means the process runs (the runtime's `run --detach`); `--hold-output 1`
/// keeps what it writes before the attach arrives for that attach, and for the log.
#[test]
fn start_at_spawn_holds_the_output_for_the_attach() {
    let mut f = Fixture::new(
        "hold",
        &["sh", "-c", "echo out; echo err >&2; exit 4"],
        false,
        false,
    );
    f.args.start = true;
    f.args.hold_output = 1;
    let (shim_pid, client) = f.spawn();
    let state = client.state().unwrap();
    assert!(state.started_at.is_some(), "{state:?}");
    assert!(
        matches!(client.start(), Err(ShimError::Failed(m)) if m.contains("already")),
        "a started container cannot be started again"
    );
    // The process has long written and exited; nothing is recorded while its output is held.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(client.state().unwrap().status, Status::Running);
    let mut attach = attach_output(&client);
    let got = frames(&read_all(&mut attach));
    assert_eq!(stream_text(&got, 1), "out\n");
    assert_eq!(stream_text(&got, 2), "err\n");
    assert_eq!(client.wait().unwrap().exit_code, 4);
    assert_out_and_err_logged(&f);
    f.shutdown(&client, shim_pid);
}

/// An attach that never comes holds the output for [`estiba_shim::HOLD_OUTPUT_LIMIT`] only:
/// then the log gets everything and the exit is recorded.
#[test]
fn held_output_is_read_when_the_attach_never_comes() {
    let mut f = Fixture::new(
        "hold-timeout",
        &["sh", "-c", "echo late; exit 2"],
        false,
        false,
    );
    f.args.start = true;
    f.args.hold_output = 1;
    let started = std::time::Instant::now();
    let (shim_pid, client) = f.spawn();
    assert_eq!(client.wait().unwrap().exit_code, 2);
    assert!(started.elapsed() >= estiba_shim::HOLD_OUTPUT_LIMIT);
    assert_eq!(
        f.log_records(),
        [("stdout".to_owned(), "late\n".to_owned())]
    );
    f.shutdown(&client, shim_pid);
}
