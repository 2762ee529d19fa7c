//! End-to-end tests live in `tests/tests/`; this library only holds their shared harness: a real
//! `estibad` on a temp socket, data-root and exec-root, the real docker CLI and `estiba` pointed
//! at it, a tiny HTTP client for the Engine API, and helpers to look at the data-root on disk.
//!
//! The harness panics with a clear message when something is wrong: it only runs inside tests.

pub mod build;
pub mod disk;
pub mod http;
pub mod registry;

use std::fs::File;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use estiba_testimg as testimg;

/// The real docker CLI these tests drive.
pub const DOCKER_CLI: &str = "/usr/local/bin/docker";

/// How long a daemon may take to answer its first `/_ping`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a daemon may take to exit after SIGTERM before it gets SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one CLI command may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// Where the workspace's binaries are: `target/<profile>/`, two levels above the test executable
/// (`target/<profile>/deps/<test>-<hash>`), or `$ESTIBA_BIN_DIR`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ESTIBA_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("no target dir above {}", exe.display()))
}

/// The path of workspace binary `name`, or a panic telling how to build it.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} is missing: build the workspace first: cargo build --workspace",
            path.display()
        );
    }
    path
}

/// The two command-line clients the tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cli {
    /// The real docker CLI, /usr/local/bin/docker.
    Docker,
    /// Our `estiba`, from the workspace's target dir.
    Estiba,
}

/// What a finished command printed and how it exited.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    pub command: String,
    pub stdout: String,
    pub stderr: String,
    /// The exit code; -1 when killed by a signal.
    pub code: i32,
}

impl CmdOutput {
    /// Panics (showing everything) unless the command exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "command failed: {self}");
        self
    }

    /// Panics unless the command failed with `code`.
    #[track_caller]
    pub fn fails_with(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit code {code}: {self}");
        self
    }

    /// Non-empty stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a prepared command to completion with a time bound, capturing stdout and stderr.
/// `stdin` is written from a thread (so a large input cannot deadlock against the output).
pub fn run_command(mut cmd: Command, stdin: Option<Vec<u8>>) -> CmdOutput {
    let command = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {command}: {e}"));
    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => Some(std::thread::spawn(move || {
            // The command may exit early (e.g. on a daemon error); EPIPE is not our failure.
            let _ = std::io::Write::write_all(&mut pipe, &data);
        })),
        _ => None,
    };
    let stdout = read_in_thread(child.stdout.take());
    let stderr = read_in_thread(child.stderr.take());
    let status = wait_bounded(&mut child, COMMAND_TIMEOUT)
        .unwrap_or_else(|| panic!("{command} did not finish within {COMMAND_TIMEOUT:?}"));
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    CmdOutput {
        command,
        stdout: join_reader(stdout),
        stderr: join_reader(stderr),
        code: status.code().unwrap_or(-1),
    }
}

fn read_in_thread<R: Read + Send + 'static>(
    pipe: Option<R>,
) -> Option<std::thread::JoinHandle<String>> {
    pipe.map(|mut pipe| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    })
}

fn join_reader(handle: Option<std::thread::JoinHandle<String>>) -> String {
    handle
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default()
}

/// Waits for a child up to `timeout`; kills it and returns None when it takes longer.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A random-enough token for names that must not collide between tests or runs.
pub fn token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// A running `estibad` with its own temp socket, data-root and exec-root. Dropping it stops the
/// daemon with SIGTERM and fails the test if it left mounts behind.
pub struct Daemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
    extra_args: Vec<String>,
    /// A command line that runs the daemon (its path and flags appended), e.g. a namespace
    /// set-up; empty to run it directly.
    wrapper: Vec<String>,
    starts: u32,
    /// This daemon's own bridge, subnets and nftables table (removed on drop).
    net: Option<NetArgs>,
}

/// Networking flags unique to one test daemon, so daemons running side by side never share a
/// bridge, a subnet or an nftables table.
#[derive(Debug, Clone)]
pub struct NetArgs {
    pub bridge: String,
    pub bip: String,
    pub pool: String,
    pub nft_table: String,
}

impl NetArgs {
    /// Fresh values, unless the caller already chose its own bridge.
    fn unique(args: &[String]) -> Option<NetArgs> {
        if args.iter().any(|a| a == "-b" || a.starts_with("--bridge")) {
            return None;
        }
        let hex = token();
        let n = u32::from_str_radix(&hex[..8], 16).unwrap_or(0);
        // 10.128-254.x.1/24 for the default bridge; a 10.1-127.0.0/16 pool for user networks
        // (subnets already routed on the host, e.g. another daemon's, are skipped).
        let (a, b) = (128 + n % 127, (n >> 8) % 256);
        let pool = 1 + (n >> 16) % 127;
        Some(NetArgs {
            bridge: format!("es{}", &hex[..10]),
            bip: format!("10.{a}.{b}.1/24"),
            pool: format!("base=10.{pool}.0.0/16,size=24"),
            nft_table: format!("estiba_{}", &hex[..12]),
        })
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--bridge".into(),
            self.bridge.clone(),
            "--bip".into(),
            self.bip.clone(),
            "--default-address-pool".into(),
            self.pool.clone(),
            "--nft-table".into(),
            self.nft_table.clone(),
            "--net-cleanup-on-exit".into(),
        ]
    }

    /// Removes the bridge and table (a daemon that was SIGKILLed could not).
    fn cleanup(&self) {
        let quiet = |cmd: &mut Command| {
            let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
        };
        quiet(Command::new("ip").args(["link", "del", &self.bridge]));
        quiet(Command::new("nft").args(["delete", "table", "ip", &self.nft_table]));
    }
}

impl Daemon {
    /// Starts a daemon and waits until it answers `/_ping`.
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// Starts a daemon with extra flags (e.g. `--storage-driver vfs`).
    pub fn start_with(extra_args: &[&str]) -> Daemon {
        Daemon::start_wrapped(&[], extra_args)
    }

    /// Starts a daemon through `wrapper` (a command line that must end by exec'ing its
    /// arguments, so the daemon keeps the wrapper's PID), with extra flags.
    pub fn start_wrapped(wrapper: &[&str], extra_args: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("estiba-e2e-")
            .tempdir()
            .unwrap_or_else(|e| panic!("creating a temp dir: {e}"));
        let docker_config = dir.path().join("docker-config");
        std::fs::create_dir_all(&docker_config)
            .unwrap_or_else(|e| panic!("creating {}: {e}", docker_config.display()));
        let mut args: Vec<String> = extra_args.iter().map(|s| (*s).to_owned()).collect();
        let net = NetArgs::unique(&args);
        if let Some(net) = &net {
            args.extend(net.args());
        }
        let mut daemon = Daemon {
            dir,
            child: None,
            extra_args: args,
            wrapper: wrapper.iter().map(|s| (*s).to_owned()).collect(),
            starts: 0,
            net,
        };
        daemon.spawn();
        daemon
    }

    /// The temp dir holding everything of this daemon.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir().join("estiba.sock")
    }

    /// `unix://<socket>`, for DOCKER_HOST and -H.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir().join("root")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir().join("exec")
    }

    /// What removed containers may leave behind: container dirs, shim state dirs and mounts
    /// under this daemon's dir. A removal answers its waiters (`docker run --rm`) before it
    /// unmounts and deletes, so this waits up to `timeout` for them to go and returns what
    /// is still there.
    pub fn leftovers_after(&self, timeout: Duration) -> Vec<String> {
        let scan = || {
            let mut left: Vec<String> = Vec::new();
            for dir in [
                self.data_root().join("containers"),
                self.exec_root().join("containers"),
            ] {
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    left.extend(entries.flatten().map(|e| e.path().display().to_string()));
                }
            }
            left.extend(
                self.runtime_state_left()
                    .into_iter()
                    .map(|p| p.display().to_string()),
            );
            left.extend(
                disk::mounts_under(self.dir())
                    .into_iter()
                    .map(|p| format!("mount {}", p.display())),
            );
            left
        };
        let mut left = scan();
        wait_until(timeout, || {
            left = scan();
            left.is_empty()
        });
        left
    }

    /// What the OCI runtimes keep per container under `<exec-root>/runtime/<name>`: the state
    /// directories and estiba-runtime's derived bundles (`.bundles/<id>`); not its cache of
    /// compiled seccomp filters (`.seccomp`), which outlives containers.
    pub fn runtime_state_left(&self) -> Vec<PathBuf> {
        let list = |dir: &Path| -> Vec<std::fs::DirEntry> {
            std::fs::read_dir(dir)
                .map(|d| d.flatten().collect())
                .unwrap_or_default()
        };
        let mut left = Vec::new();
        for runtime in list(&self.exec_root().join("runtime")) {
            for e in list(&runtime.path()) {
                match e.file_name().to_str() {
                    Some(".seccomp") => {}
                    Some(".bundles") => left.extend(list(&e.path()).iter().map(|b| b.path())),
                    _ => left.push(e.path()),
                }
            }
        }
        left
    }

    /// `<data-root>/content`.
    pub fn content_dir(&self) -> PathBuf {
        self.data_root().join("content")
    }

    /// `<data-root>/snapshots`.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.data_root().join("snapshots")
    }

    /// The daemon's combined stdout and stderr so far (all runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("estibad.log")).unwrap_or_default()
    }

    /// This daemon's networking flags (None when the test chose its own `--bridge`).
    pub fn net(&self) -> Option<&NetArgs> {
        self.net.as_ref()
    }

    /// The daemon's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the daemon process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn spawn(&mut self) {
        let estibad = binary("estibad");
        self.starts += 1;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir().join("estibad.log"))
            .unwrap_or_else(|e| panic!("opening the daemon log: {e}"));
        let log2 = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cloning the daemon log: {e}"));
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&estibad);
                cmd
            }
            None => Command::new(&estibad),
        };
        cmd.arg("-H").arg(self.host());
        // A test may put the data-root elsewhere (e.g. on a small disk of its own).
        if !self.extra_args.iter().any(|a| a == "--data-root") {
            cmd.arg("--data-root").arg(self.data_root());
        }
        cmd.arg("--exec-root")
            .arg(self.exec_root())
            .arg("--pidfile")
            .arg(self.exec_root().join("estibad.pid"))
            .args(&self.extra_args)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", estibad.display()));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if self.ping() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!(
                    "estibad exited with {status} before answering /_ping\n--- log ---\n{}",
                    self.log()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                panic!(
                    "estibad did not answer /_ping within {START_TIMEOUT:?}\n--- log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether `GET /_ping` answers 200 "OK" right now.
    pub fn ping(&self) -> bool {
        let Ok(stream) = UnixStream::connect(self.socket()) else {
            return false;
        };
        matches!(
            http::request_on(stream, "GET", "/_ping", &[], None),
            Ok(resp) if resp.status == 200 && resp.body == b"OK"
        )
    }

    /// One Engine API request (`path` without a version prefix is fine).
    pub fn api(&self, method: &str, path: &str, body: Option<&[u8]>) -> http::Response {
        self.api_with_headers(method, path, &[], body)
    }

    pub fn api_with_headers(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> http::Response {
        let stream = UnixStream::connect(self.socket())
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.socket().display()));
        http::request_on(stream, method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n--- log ---\n{}", self.log()))
    }

    /// Stops the daemon with SIGTERM (SIGKILL after [`STOP_TIMEOUT`]); returns how it exited.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        );
        wait_bounded(&mut child, STOP_TIMEOUT)
    }

    /// Kills the daemon with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again on the same data-root, exec-root and socket.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            let status = self.stop();
            assert!(
                status.is_some_and(|s| s.success()),
                "estibad did not exit cleanly on SIGTERM: {status:?}\n--- log ---\n{}",
                self.log()
            );
        }
        self.spawn();
    }

    /// A command for `cli` pointed at this daemon (DOCKER_HOST, a private DOCKER_CONFIG).
    pub fn command(&self, cli: Cli, args: &[&str]) -> Command {
        let mut cmd = match cli {
            Cli::Docker => Command::new(DOCKER_CLI),
            Cli::Estiba => {
                let mut cmd = Command::new(binary("estiba"));
                cmd.arg("-H").arg(self.host());
                cmd
            }
        };
        cmd.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_TLS_VERIFY")
            .env("NO_COLOR", "1")
            .current_dir(self.dir());
        cmd
    }

    /// Runs `cli args...` to completion.
    pub fn run(&self, cli: Cli, args: &[&str]) -> CmdOutput {
        run_command(self.command(cli, args), None)
    }

    /// Runs `cli args...` with `stdin` as its standard input.
    pub fn run_with_stdin(&self, cli: Cli, args: &[&str], stdin: Vec<u8>) -> CmdOutput {
        run_command(self.command(cli, args), Some(stdin))
    }

    pub fn docker(&self, args: &[&str]) -> CmdOutput {
        self.run(Cli::Docker, args)
    }

    pub fn estiba(&self, args: &[&str]) -> CmdOutput {
        self.run(Cli::Estiba, args)
    }

    /// `docker inspect -f format object`, trimmed; panics if the command fails.
    #[track_caller]
    pub fn inspect_format(&self, format: &str, object: &str) -> String {
        self.docker(&["inspect", "-f", format, object])
            .ok()
            .stdout
            .trim()
            .to_owned()
    }

    /// Writes `images` as a tarball in the temp dir and returns its path.
    pub fn write_tarball(
        &self,
        file_name: &str,
        images: &[&testimg::TestImage],
        options: testimg::ArchiveOptions,
    ) -> PathBuf {
        let path = self.dir().join(file_name);
        let bytes = testimg::archive::archive_bytes(images, options)
            .unwrap_or_else(|e| panic!("making {file_name}: {e}"));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Loads `images` (docker-archive, uncompressed) through the docker CLI and checks it worked.
    #[track_caller]
    pub fn load(&self, images: &[&testimg::TestImage]) {
        let path = self.write_tarball(
            &format!("load-{}.tar", token()),
            images,
            testimg::ArchiveOptions::default(),
        );
        let path = path.to_string_lossy().into_owned();
        self.docker(&["load", "-i", &path]).ok();
    }

    /// Full IDs of every image (`docker images -a -q --no-trunc`), sorted and deduplicated.
    pub fn image_ids(&self) -> Vec<String> {
        let out = self.docker(&["images", "-a", "-q", "--no-trunc"]);
        out.ok();
        let mut ids: Vec<String> = out.lines().iter().map(|s| s.trim().to_owned()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Every `repo:tag` shown by `docker images`, sorted.
    pub fn image_tags(&self) -> Vec<String> {
        let out = self.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        out.ok();
        let mut tags: Vec<String> = out.lines().iter().map(|s| s.trim().to_owned()).collect();
        tags.sort();
        tags
    }
}

impl Daemon {
    /// Force-removes every container, best effort and without panicking: containers outlive
    /// the daemon by design, so a test that fails half-way would otherwise leave them running.
    fn remove_all_containers(&self) {
        if self.child.is_none() {
            return;
        }
        let request = |method: &str, path: &str| {
            let stream = UnixStream::connect(self.socket()).ok()?;
            http::request_on(stream, method, path, &[], None).ok()
        };
        let Some(list) = request("GET", "/containers/json?all=1") else {
            return;
        };
        if list.status != 200 {
            return;
        }
        let ids: Vec<String> = serde_json::from_slice::<serde_json::Value>(&list.body)
            .ok()
            .as_ref()
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.get("Id").and_then(|v| v.as_str()).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for id in ids {
            let _ = request("DELETE", &format!("/containers/{id}?force=1&v=1"));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.remove_all_containers();
        }
        let status = self.stop();
        if let Some(net) = &self.net {
            net.cleanup();
        }
        let leftover = disk::mounts_under(self.dir());
        for mount in leftover.iter().rev() {
            let _ = rustix::mount::unmount(mount, rustix::mount::UnmountFlags::DETACH);
        }
        if std::thread::panicking() {
            return;
        }
        if !leftover.is_empty() {
            panic!(
                "estibad left mounts under {}: {leftover:?}\n--- log ---\n{}",
                self.dir().display(),
                self.log()
            );
        }
        if let Some(status) = status {
            assert!(
                status.success(),
                "estibad exited with {status} on SIGTERM\n--- log ---\n{}",
                self.log()
            );
        }
    }
}

/// Fails loudly when docker-py is missing (CI installs it; a silent skip would hide that).
pub fn require_docker_py() {
    let out = run_command(
        {
            let mut cmd = Command::new("python3");
            cmd.args(["-c", "import docker"]);
            cmd
        },
        None,
    );
    assert_eq!(
        out.code, 0,
        "docker-py is missing: pip install docker\n{out}"
    );
}

/// (pid, command line) of every estiba-shim process whose command line mentions `dir` (a
/// daemon's temp dir, or a container ID).
pub fn shims_of(dir: &Path) -> Vec<(String, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.to_owned();
            pid.parse::<u32>().ok()?;
            let raw = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
            (cmdline.contains("estiba-shim") && cmdline.contains(&needle)).then_some((pid, cmdline))
        })
        .collect()
}

/// A daemon with the offline busybox image loaded, as most end-to-end tests start.
/// Writes `<dir>/<name>`, an OCI runtime that appends its arguments (one line per call) to
/// `<dir>/calls` and then execs `runtime`; returns the wrapper's path and the calls file's.
pub fn runtime_wrapper(dir: &Path, name: &str, runtime: &Path) -> (PathBuf, PathBuf) {
    let wrapper = dir.join(name);
    let calls = dir.join("calls");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec {} \"$@\"\n",
            calls.display(),
            runtime.display()
        ),
    )
    .expect("write the runtime wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod the runtime wrapper");
    (wrapper, calls)
}

pub fn daemon_with_busybox() -> Daemon {
    let d = Daemon::start();
    let image = testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&image]);
    d
}
