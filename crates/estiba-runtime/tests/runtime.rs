//! End-to-end tests of the estiba-runtime binary, as root, with real namespaces, cgroups and
//! mounts: a busybox bundle in a temp dir, driven through runc's command-line contract the way
//! the shim drives it (the test process is a child subreaper and reaps the container itself).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use rustix::process::{Pid, WaitOptions};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_estiba-runtime");
const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "echo", "sleep", "cat", "id", "hostname", "ls", "true", "ps",
];
const MEMORY_LIMIT_BYTES: u64 = 64 * 1024 * 1024;
const PIDS_LIMIT: i64 = 50;
/// Bound on every wait for a condition.
const WAIT_LIMIT: Duration = Duration::from_secs(10);
/// cgroup v1 controllers the tests expect a container's directory in (this host is v1 hybrid).
const V1_CONTROLLERS: &[&str] = &["memory", "pids", "freezer", "cpu", "devices"];

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        assert!(
            rustix::process::geteuid().is_root(),
            "estiba-runtime tests need root (real namespaces and cgroups)"
        );
        assert!(
            Path::new(BUSYBOX).is_file(),
            "{BUSYBOX} missing: install Debian's busybox-static"
        );
        // Containers outlive the runtime invocation that created them: they are re-parented to
        // us, so we can reap them and read their exit status, as the shim does.
        let me = rustix::process::getpid();
        if let Err(e) = rustix::process::set_child_subreaper(Some(me)) {
            panic!("set child subreaper: {e}");
        }
    });
}

/// A bundle (busybox rootfs + config.json) and a private state root, removed on drop after the
/// container is force-deleted.
struct Bundle {
    dir: tempfile::TempDir,
    id: String,
}

impl Bundle {
    fn new(name: &str, args: &[&str]) -> Self {
        Self::with_spec(name, args, |_| {})
    }

    fn with_spec(name: &str, args: &[&str], tweak: impl FnOnce(&mut Value)) -> Self {
        setup();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let id = format!("{name}-{}", std::process::id());
        let rootfs = dir.path().join("bundle/rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
            fs::create_dir_all(rootfs.join(d)).unwrap_or_else(|e| panic!("mkdir {d}: {e}"));
        }
        fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap_or_else(|e| panic!("copy: {e}"));
        for a in APPLETS {
            symlink("busybox", rootfs.join("bin").join(a)).unwrap_or_else(|e| panic!("ln: {e}"));
        }
        fs::write(rootfs.join("etc/marker"), "estiba rootfs\n").unwrap_or_else(|e| panic!("{e}"));
        let mut spec = spec(&id, args);
        tweak(&mut spec);
        fs::write(dir.path().join("bundle/config.json"), spec.to_string())
            .unwrap_or_else(|e| panic!("write config.json: {e}"));
        Self { dir, id }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("pid")
    }

    fn cgroup(&self, controller: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(format!("estiba-test-{}", self.id))
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(self.root()).args(args);
        c
    }

    /// Runs a command that does not hand its stdio to a container.
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run estiba-runtime {args:?}: {e}"))
    }

    /// `create` with the container's stdout and stderr on one pipe; returns the read end and
    /// the runtime's exit status (the runtime exits once the container is created).
    fn create(&self) -> (std::process::ChildStdout, std::process::ExitStatus) {
        self.launch(&["create"])
    }

    /// `run --detach`: the container runs when it returns.
    fn run_detached(&self) -> (std::process::ChildStdout, std::process::ExitStatus) {
        self.launch(&["run", "--detach"])
    }

    /// `create` or `run` with the container's stdout as a pipe (returned) and the bundle's pid
    /// file; the runtime's stderr goes to `create.err`.
    fn launch(&self, sub: &[&str]) -> (std::process::ChildStdout, std::process::ExitStatus) {
        let bundle = self.bundle();
        let pid_file = self.pid_file();
        let err_file = self.dir.path().join("create.err");
        let err = fs::File::create(&err_file).unwrap_or_else(|e| panic!("create.err: {e}"));
        let mut child: Child = self
            .cmd(sub)
            .arg("--bundle")
            .arg(&bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn create: {e}"));
        let status = child.wait().unwrap_or_else(|e| panic!("wait {sub:?}: {e}"));
        let out = child
            .stdout
            .take()
            .unwrap_or_else(|| panic!("no stdout pipe"));
        if !status.success() {
            eprintln!(
                "{sub:?} failed: {}",
                fs::read_to_string(&err_file).unwrap_or_default()
            );
        }
        (out, status)
    }

    fn pid(&self) -> i32 {
        let raw = fs::read_to_string(self.pid_file()).unwrap_or_else(|e| panic!("pid file: {e}"));
        raw.trim()
            .parse()
            .unwrap_or_else(|e| panic!("pid {raw:?}: {e}"))
    }

    fn state(&self) -> Value {
        let out = self.run(&["state", &self.id]);
        assert!(
            out.status.success(),
            "state failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("state json: {e}"))
    }

    fn ok(&self, args: &[&str]) {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn wait_status(&self, want: &str) {
        let start = Instant::now();
        loop {
            let st = self.state();
            if st["status"] == want {
                return;
            }
            assert!(
                start.elapsed() < WAIT_LIMIT,
                "status never became {want}: {st}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.cmd(&["delete", "--force", &self.id]).output();
    }
}

/// Reaps the container's init (we are its subreaper) and returns its exit code.
fn reap(pid: i32) -> i32 {
    let pid = Pid::from_raw(pid).unwrap_or_else(|| panic!("bad pid {pid}"));
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < WAIT_LIMIT, "process {pid:?} did not exit");
        match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some((_, st))) => {
                if let Some(code) = st.exit_status() {
                    return code;
                }
                if let Some(sig) = st.terminating_signal() {
                    return 128 + sig;
                }
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("waitpid {pid:?}: {e}"),
        }
    }
}

fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    r.read_to_string(&mut s)
        .unwrap_or_else(|e| panic!("read: {e}"));
    s
}

/// A realistic OCI spec, close to what Docker generates for busybox.
fn spec(id: &str, args: &[&str]) -> Value {
    let caps = json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE"
    ]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=estiba-host"],
            "cwd": "/",
            "capabilities": { "bounding": caps, "effective": caps, "permitted": caps },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024u64, "soft": 1024u64 }],
            "noNewPrivileges": false
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "estiba-host",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] }
        ],
        "linux": {
            "cgroupsPath": format!("/estiba-test-{id}"),
            "resources": {
                "devices": [{ "allow": false, "access": "rwm" }],
                "memory": { "limit": MEMORY_LIMIT_BYTES },
                "pids": { "limit": PIDS_LIMIT }
            },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// Nothing of the container is left: state dir, cgroup dirs, mounts under the bundle.
fn assert_cleaned_up(b: &Bundle) {
    assert!(!b.root().join(&b.id).exists(), "state dir left behind");
    for c in V1_CONTROLLERS {
        assert!(
            !b.cgroup(c).exists(),
            "cgroup {} left behind",
            b.cgroup(c).display()
        );
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let bundle = b.bundle().display().to_string();
    assert!(
        !mountinfo.contains(&bundle),
        "mount under {bundle} left behind"
    );
}

#[test]
fn echo_runs_and_exit_code_is_collected() {
    let b = Bundle::new("echo", &["sh", "-c", "echo hi; exit 7"]);
    let (out, status) = b.create();
    assert!(status.success(), "create failed");
    assert_eq!(b.state()["status"], "created");
    assert_eq!(b.state()["pid"], b.pid());
    b.ok(&["start", &b.id]);
    let pid = b.pid();
    assert_eq!(read_all(out), "hi\n");
    assert_eq!(reap(pid), 7);
    let st = b.state();
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);
    b.ok(&["delete", &b.id]);
    assert_cleaned_up(&b);
}

#[test]
fn isolation_hostname_pid1_rootfs() {
    let b = Bundle::new(
        "iso",
        &["sh", "-c", "hostname; echo $$; cat /etc/marker; ls /"],
    );
    let (out, status) = b.create();
    assert!(status.success());
    b.ok(&["start", &b.id]);
    let pid = b.pid();
    let text = read_all(out);
    assert_eq!(reap(pid), 0);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"estiba-host"), "uts ns: {text}");
    assert_eq!(lines.get(1), Some(&"1"), "pid ns: {text}");
    assert_eq!(lines.get(2), Some(&"estiba rootfs"), "rootfs: {text}");
    // Only the bundle's rootfs is visible, not the host's /usr or /home.
    let root_entries: Vec<&str> = lines[3..]
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect();
    assert!(
        root_entries.contains(&"bin") && !root_entries.contains(&"usr"),
        "ls /: {text}"
    );
    b.ok(&["delete", &b.id]);
    assert_cleaned_up(&b);
}

#[test]
fn sleeping_container_limits_kill_and_delete() {
    let b = Bundle::new("sleep", &["sleep", "100"]);
    let (_out, status) = b.create();
    assert!(status.success());
    b.ok(&["start", &b.id]);
    let st = b.state();
    assert_eq!(st["status"], "running");
    let pid = b.pid();
    assert_eq!(st["pid"], pid);
    assert!(
        st["rootfs"]
            .as_str()
            .is_some_and(|r| r.ends_with("/bundle/rootfs")),
        "{st}"
    );

    let limit = fs::read_to_string(b.cgroup("memory").join("memory.limit_in_bytes"))
        .unwrap_or_else(|e| panic!("memory cgroup: {e}"));
    assert_eq!(limit.trim(), MEMORY_LIMIT_BYTES.to_string());
    let pids_max = fs::read_to_string(b.cgroup("pids").join("pids.max"))
        .unwrap_or_else(|e| panic!("pids cgroup: {e}"));
    assert_eq!(pids_max.trim(), PIDS_LIMIT.to_string());
    let procs = fs::read_to_string(b.cgroup("memory").join("cgroup.procs")).unwrap_or_default();
    assert!(
        procs.lines().any(|l| l.trim() == pid.to_string()),
        "pid not in cgroup: {procs}"
    );

    // A running container cannot be deleted without --force.
    let out = b.run(&["delete", &b.id]);
    assert!(!out.status.success());
    // ps lists the container's init.
    let out = b.run(&["ps", "--format", "json", &b.id]);
    assert!(out.status.success());
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(pids, vec![pid]);

    b.ok(&["kill", &b.id, "TERM"]);
    // sleep as PID 1 has no TERM handler, so the kernel ignores TERM: KILL it.
    b.ok(&["kill", &b.id, "9"]);
    assert_eq!(reap(pid), 128 + 9);
    b.wait_status("stopped");
    let out = b.run(&["kill", &b.id, "KILL"]);
    assert!(
        !out.status.success(),
        "kill of a stopped container must fail"
    );
    b.ok(&["delete", &b.id]);
    assert_cleaned_up(&b);
}

#[test]
fn term_stops_a_shell_that_handles_it() {
    let b = Bundle::new(
        "term",
        &[
            "sh",
            "-c",
            "trap 'exit 143' TERM; echo ready; while true; do sleep 0.05; done",
        ],
    );
    let (out, status) = b.create();
    assert!(status.success());
    b.ok(&["start", &b.id]);
    let pid = b.pid();
    // PID 1 ignores signals it has no handler for: wait until the trap is in place.
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("read: {e}"));
    assert_eq!(line, "ready\n");
    b.ok(&["kill", &b.id, "SIGTERM"]);
    assert_eq!(reap(pid), 143);
    assert_eq!(b.state()["status"], "stopped");
    b.ok(&["delete", &b.id]);
    assert_cleaned_up(&b);
}

#[test]
fn exec_into_a_running_container() {
    let b = Bundle::new("exec", &["sleep", "100"]);
    let (_out, status) = b.create();
    assert!(status.success());
    b.ok(&["start", &b.id]);
    let pid = b.pid();

    let out = b.run(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "echo from-exec $(hostname); exit 3",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from-exec estiba-host\n"
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = b.run(&[
        "exec",
        "--env",
        "X=42",
        "--cwd",
        "/etc",
        "--user",
        "1000:1000",
        &b.id,
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u):$(id -g)",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "42 /etc 1000:1000\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A process spec file (what a shim passes) and --detach with a pid file.
    let process = json!({
        "terminal": false, "user": {"uid": 0, "gid": 0}, "cwd": "/",
        "args": ["sleep", "30"], "env": ["PATH=/bin"]
    });
    let pfile = b.dir.path().join("process.json");
    fs::write(&pfile, process.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let exec_pid_file = b.dir.path().join("exec.pid");
    let out = b
        .cmd(&["exec", "--detach", "--process"])
        .arg(&pfile)
        .arg("--pid-file")
        .arg(&exec_pid_file)
        .arg(&b.id)
        // The detached process inherits these: a pipe would stay open as long as it runs.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("exec: {e}"));
    assert!(out.success(), "exec -d failed");
    let exec_pid: i32 = fs::read_to_string(&exec_pid_file)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("exec pid: {e}"));
    let out = b.run(&["ps", "--format", "json", &b.id]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(
        pids.contains(&exec_pid) && pids.contains(&pid),
        "ps: {pids:?}"
    );

    let out = b.run(&["exec", &b.id, "no-such-binary"]);
    assert!(!out.status.success());

    b.ok(&["kill", "--all", &b.id, "KILL"]);
    // The init of a pid namespace only finishes dying once every other process in it has been
    // reaped, so the exec'd process (re-parented to us) goes first.
    assert_eq!(reap(exec_pid), 137);
    assert_eq!(reap(pid), 137);
    b.ok(&["delete", &b.id]);
    assert_cleaned_up(&b);
}

#[test]
fn pause_and_resume_freeze_the_cgroup() {
    let b = Bundle::new("pause", &["sleep", "100"]);
    let (_out, status) = b.create();
    assert!(status.success());
    b.ok(&["start", &b.id]);
    let pid = b.pid();
    b.ok(&["pause", &b.id]);
    assert_eq!(b.state()["status"], "paused");
    let frozen = fs::read_to_string(b.cgroup("freezer").join("freezer.state")).unwrap_or_default();
    assert_eq!(frozen.trim(), "FROZEN");
    // A signal other than KILL does not make a paused container look stopped.
    b.ok(&["kill", &b.id, "USR2"]);
    assert_eq!(b.state()["status"], "paused");
    b.ok(&["resume", &b.id]);
    assert_eq!(b.state()["status"], "running");
    let thawed = fs::read_to_string(b.cgroup("freezer").join("freezer.state")).unwrap_or_default();
    assert_eq!(thawed.trim(), "THAWED");
    let out = b.run(&["resume", &b.id]);
    assert!(
        !out.status.success(),
        "resume of a running container must fail"
    );
    b.ok(&["delete", "--force", &b.id]);
    assert_eq!(reap(pid), 137);
    assert_cleaned_up(&b);
}

#[test]
fn update_changes_limits_of_a_running_container() {
    let b = Bundle::new("update", &["sleep", "100"]);
    let (_out, status) = b.create();
    assert!(status.success());
    b.ok(&["start", &b.id]);
    let pid = b.pid();
    let res = b.dir.path().join("resources.json");
    fs::write(
        &res,
        json!({"memory": {"limit": 33554432}, "pids": {"limit": 20}}).to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    b.ok(&["update", "--resources", &res.display().to_string(), &b.id]);
    let limit =
        fs::read_to_string(b.cgroup("memory").join("memory.limit_in_bytes")).unwrap_or_default();
    assert_eq!(limit.trim(), "33554432");
    let pids_max = fs::read_to_string(b.cgroup("pids").join("pids.max")).unwrap_or_default();
    assert_eq!(pids_max.trim(), "20");
    b.ok(&["delete", "--force", &b.id]);
    assert_eq!(reap(pid), 137);
    assert_cleaned_up(&b);
}

#[test]
fn created_container_can_be_deleted_without_start() {
    let b = Bundle::new("created", &["echo", "never"]);
    let (out, status) = b.create();
    assert!(status.success());
    let pid = b.pid();
    b.ok(&["delete", &b.id]);
    assert_eq!(reap(pid), 137);
    assert_eq!(read_all(out), "", "the process must never have run");
    assert_cleaned_up(&b);
}

#[test]
fn errors_are_clear_and_leave_nothing_behind() {
    let b = Bundle::new("errors", &["sleep", "100"]);
    let (_out, status) = b.create();
    assert!(status.success());
    let pid = b.pid();

    // Same id again.
    let (_out2, status) = b.create();
    assert!(!status.success());
    let log = b.dir.path().join("log.json");
    let out = b
        .cmd(&["--log"])
        .arg(&log)
        .args(["--log-format", "json", "create", "--bundle"])
        .arg(b.bundle())
        .arg(&b.id)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("create: {e}"));
    assert_eq!(out.status.code(), Some(1));
    let last = fs::read_to_string(&log).unwrap_or_default();
    let last: Value = last
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no json log line in {last:?}"));
    assert_eq!(last["level"], "error");
    assert_eq!(last["msg"], format!("container with id exists: {}", b.id));
    assert!(last["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    // The first container is untouched.
    assert_eq!(b.state()["status"], "created");

    // Unknown id.
    let out = b.run(&["state", "no-such-container"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("level=error msg=\"container does not exist\""),
        "{stderr}"
    );
    for cmd in ["start", "kill", "pause", "resume", "delete"] {
        let out = b.run(&[cmd, "no-such-container"]);
        assert!(
            !out.status.success(),
            "{cmd} of an unknown container must fail"
        );
    }
    let out = b.run(&["delete", "--force", "no-such-container"]);
    assert!(
        out.status.success(),
        "delete --force of an unknown container succeeds, as runc"
    );

    // Bad ids, unknown signals.
    let out = b.run(&["state", "../etc"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid id format"));
    let out = b.run(&["kill", &b.id, "NOPE"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown signal"));
    let out = b.run(&["--systemd-cgroup", "state", &b.id]);
    assert!(!out.status.success());

    // A bundle without config.json.
    let empty = b.dir.path().join("empty-bundle");
    fs::create_dir_all(&empty).unwrap_or_else(|e| panic!("{e}"));
    let out = b
        .cmd(&["create", "--bundle"])
        .arg(&empty)
        .arg("other-id")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("create: {e}"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has no config.json"), "{stderr}");
    assert!(!b.root().join("other-id").exists());

    // A command that does not exist in the rootfs fails at create, leaving nothing.
    let bad = Bundle::new("badcmd", &["/no/such/binary"]);
    let out = bad
        .cmd(&["create", "--bundle"])
        .arg(bad.bundle())
        .arg(&bad.id)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("create: {e}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/no/such/binary"), "{stderr}");
    assert_cleaned_up(&bad);

    b.ok(&["delete", &b.id]);
    assert_eq!(reap(pid), 137);
    assert_cleaned_up(&b);
}

#[test]
fn features_reports_cgroup_support() {
    let out = Command::new(BIN)
        .arg("features")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["linux"]["cgroup"]["v1"], true);
    assert!(v["linux"]["namespaces"]
        .as_array()
        .is_some_and(|n| n.contains(&json!("pid"))));
}

/// Receives one file descriptor sent with SCM_RIGHTS, as a shim receives the pty master.
fn recv_fd(conn: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::mem::MaybeUninit;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut data = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut data)];
    rustix::net::recvmsg(conn, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
        .unwrap_or_else(|e| panic!("recvmsg: {e}"));
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                return fd;
            }
        }
    }
    panic!("no fd received over the console socket");
}

#[test]
fn terminal_master_is_sent_over_the_console_socket() {
    let b = Bundle::with_spec("tty", &["sh", "-c", "tty; echo via-pty"], |spec| {
        spec["process"]["terminal"] = json!(true);
    });
    let sock = b.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock)
        .unwrap_or_else(|e| panic!("bind console socket: {e}"));
    let status = b
        .cmd(&["create", "--bundle"])
        .arg(b.bundle())
        .arg("--pid-file")
        .arg(b.pid_file())
        .arg("--console-socket")
        .arg(&sock)
        .arg(&b.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("create: {e}"));
    assert!(status.success(), "create with a console socket failed");
    let (conn, _) = listener.accept().unwrap_or_else(|e| panic!("accept: {e}"));
    let master = fs::File::from(recv_fd(&conn));
    b.ok(&["start", &b.id]);
    let pid = b.pid();
    assert_eq!(reap(pid), 0);
    // Reading the master after the slave side closed ends with EIO: keep what came before.
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    let mut master = master;
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    assert_eq!(text, "/dev/pts/0\r\nvia-pty\r\n");
    b.ok(&["delete", &b.id]);
    assert_cleaned_up(&b);
}

/// A spec's seccomp profile is compiled once into the state root's cache and installed in the
/// container's init and in each exec (a process file's too); `state` reports the caller's
/// bundle, and `delete` leaves no derived bundle behind.
#[test]
fn seccomp_filter_is_compiled_ahead_and_applied_to_init_and_execs() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
    });
    let b = Bundle::with_spec(
        "seccomp",
        &[
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; mkdir /x 2>&1; sleep 100",
        ],
        |spec| spec["linux"]["seccomp"] = profile,
    );
    let (mut out, status) = b.create();
    assert!(status.success(), "create failed");
    assert_eq!(b.state()["bundle"], b.bundle().display().to_string());
    let derived = b.root().join(".bundles").join(&b.id);
    assert!(derived.join("config.json").is_file());
    let cached: Vec<_> = fs::read_dir(b.root().join(".seccomp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(cached.len(), 1, "{cached:?}");
    b.ok(&["start", &b.id]);
    let mut first = String::new();
    let mut buf = [0u8; 256];
    while first.lines().count() < 2 {
        let n = out.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "init output ended early: {first:?}");
        first.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(
        first,
        "Seccomp:\t2\nmkdir: can't create directory '/x': Operation not permitted\n"
    );

    let out = b.run(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "mkdir /y || echo refused; touch /z && echo ok",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "refused\nok\n");
    let process = json!({
        "terminal": false, "user": {"uid": 0, "gid": 0}, "cwd": "/",
        "args": ["sh", "-c", "mkdir /w"], "env": ["PATH=/bin"],
        "capabilities": { "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"] }
    });
    let pfile = b.dir.path().join("process.json");
    fs::write(&pfile, process.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let out = b
        .cmd(&["exec", "--process"])
        .arg(&pfile)
        .arg(&b.id)
        .output()
        .unwrap_or_else(|e| panic!("exec: {e}"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );

    b.ok(&["kill", &b.id, "KILL"]);
    reap(b.pid());
    b.ok(&["delete", &b.id]);
    assert!(!derived.exists(), "derived bundle left behind");
    assert_cleaned_up(&b);
}

/// `run --detach` creates and starts in one invocation; a command that cannot run leaves
/// nothing behind, and `run` without `--detach` is refused.
#[test]
fn run_detached_creates_and_starts_at_once() {
    let b = Bundle::new("run", &["sh", "-c", "echo started; exit 5"]);
    let (out, status) = b.run_detached();
    assert!(status.success(), "run --detach failed");
    let pid = b.pid();
    assert_eq!(read_all(out), "started\n");
    assert_eq!(reap(pid), 5);
    assert_eq!(b.state()["status"], "stopped");
    b.ok(&["delete", &b.id]);
    assert_cleaned_up(&b);

    let b = Bundle::new("run-missing", &["no-such-binary"]);
    let (_out, status) = b.run_detached();
    assert!(!status.success());
    let err = fs::read_to_string(b.dir.path().join("create.err")).unwrap_or_default();
    assert!(err.contains("no-such-binary"), "{err}");
    assert!(!b.run(&["state", &b.id]).status.success());
    assert!(!b.root().join(".bundles").join(&b.id).exists());
    assert_cleaned_up(&b);

    let out = b.run(&["run", "--bundle", &b.bundle().display().to_string(), &b.id]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--detach"),
        "{out:?}"
    );
}
