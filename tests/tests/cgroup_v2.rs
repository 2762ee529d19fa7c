//! Containers on a cgroup v2 (unified) host. This machine boots a v1 hybrid, so the test runs
//! estibad in a private mount namespace whose `/sys/fs/cgroup` is the unified hierarchy, which
//! holds only the controllers no v1 hierarchy has taken (none of memory, cpu, pids here): all
//! that needs no controller (create, start, exec, top, pause through `cgroup.freeze`, stop,
//! rm) must work, and the limits the host cannot apply are discarded with Docker's warnings,
//! as dockerd does on such a host.
//!
//! Live restore is not exercised here: a restarted daemon would get a new mount namespace.

use std::path::PathBuf;
use std::time::Duration;

use estiba_e2e::{testimg, wait_until, Cli, Daemon};

/// Runs the daemon with the unified hierarchy on `/sys/fs/cgroup`, in a mount namespace of
/// its own (shims and containers inherit it).
const UNIFIED: &[&str] = &[
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    "mount -t cgroup2 none /sys/fs/cgroup && exec \"$0\" \"$@\"",
];

/// Where the host has the unified hierarchy mounted (`/sys/fs/cgroup/unified` on a hybrid).
fn host_unified() -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_else(|e| panic!("reading mountinfo: {e}"));
    mountinfo
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            right
                .starts_with("cgroup2 ")
                .then(|| PathBuf::from(mount_point))
        })
        .unwrap_or_else(|| panic!("no cgroup2 mount on this host:\n{mountinfo}"))
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn containers_run_pause_and_go_on_a_unified_hierarchy() {
    let d = Daemon::start_wrapped(UNIFIED, &[]);
    let busybox = testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&busybox]);

    // The runtime took the v2 path: the container sees a cgroup2 /sys/fs/cgroup.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "test -f /sys/fs/cgroup/cgroup.controllers && grep -c ' /sys/fs/cgroup cgroup2 ' /proc/mounts",
    ]);
    assert_eq!(out.ok().stdout, "1\n");

    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "v2",
        "--network",
        "none",
        "busybox",
        "sleep",
        "600",
    ]);
    let id = out.ok().stdout.trim().to_owned();
    let cgroup = host_unified().join("estiba").join(&id);
    let pid = d.docker(&["inspect", "-f", "{{.State.Pid}}", "v2"]);
    let pid = pid.ok().stdout.trim().to_owned();
    assert!(
        read(&cgroup.join("cgroup.procs")).lines().any(|l| l == pid),
        "init {pid} is not in {}",
        cgroup.display()
    );

    let top = d.docker(&["top", "v2"]);
    assert!(top.ok().stdout.contains("sleep 600"), "{top}");
    let out = d.docker(&["exec", "v2", "echo", "exec-ok"]);
    assert_eq!(out.ok().stdout, "exec-ok\n");

    d.docker(&["pause", "v2"]).ok();
    assert_eq!(read(&cgroup.join("cgroup.freeze")), "1\n");
    assert!(
        wait_until(Duration::from_secs(5), || {
            read(&cgroup.join("cgroup.events")).contains("frozen 1")
        }),
        "not frozen: {}",
        read(&cgroup.join("cgroup.events"))
    );
    let status = d.docker(&["inspect", "-f", "{{.State.Status}}", "v2"]);
    assert_eq!(status.ok().stdout, "paused\n");
    d.docker(&["unpause", "v2"]).ok();
    assert_eq!(read(&cgroup.join("cgroup.freeze")), "0\n");
    d.docker(&["stats", "--no-stream", "v2"]).ok();

    // Limits without a controller here: Docker's warnings, and the container runs anyway.
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-m",
        "64m",
        "--pids-limit",
        "20",
        "busybox",
        "echo",
        "ran",
    ]);
    assert_eq!(out.ok().stdout, "ran\n");
    assert_eq!(
        out.stderr,
        "WARNING: Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.\n\
         WARNING: Your kernel does not support pids limit capabilities or the cgroup is not mounted. PIDs limit discarded.\n"
    );

    // docker update the same way: warned, discarded, the container untouched.
    for cli in [Cli::Docker, Cli::Estiba] {
        let out = d.run(cli, &["update", "--pids-limit", "20", "v2"]);
        assert_eq!(
            out.ok().stdout,
            "v2\nYour kernel does not support pids limit capabilities or the cgroup is not mounted. PIDs limit discarded.\n"
        );
    }
    let limit = d.docker(&["inspect", "-f", "{{.HostConfig.PidsLimit}}", "v2"]);
    assert_eq!(
        limit.ok().stdout,
        "<nil>\n",
        "the discarded limit was recorded"
    );
    d.docker(&["stop", "-t", "1", "v2"]).ok();
    let code = d.docker(&["inspect", "-f", "{{.State.ExitCode}}", "v2"]);
    assert_eq!(code.ok().stdout, "137\n");
    d.docker(&["rm", "v2"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || !cgroup.exists()),
        "{} left behind",
        cgroup.display()
    );
}
