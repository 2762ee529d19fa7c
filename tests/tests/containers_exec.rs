//! `docker exec`, `docker top` and `docker pause`/`unpause` end to end through the real docker
//! CLI (and estiba's): output, exit codes, stdin, env/user/workdir, a TTY, errors, the freezer.

use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, wait_until, Cli, Daemon};

/// No container, container dir or shim state of this daemon is left.
#[track_caller]
fn assert_clean(d: &Daemon) {
    let out = d.docker(&["ps", "-aq"]);
    out.ok();
    assert!(out.stdout.trim().is_empty(), "containers left: {out}");
    let left = d.leftovers_after(std::time::Duration::from_secs(10));
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Removes the named containers when dropped, so a failing test leaves no container running.
struct RemoveOnDrop<'a>(&'a Daemon, &'static [&'static str]);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in self.1 {
                let _ = self.0.docker(&["rm", "-f", name]);
            }
        }
    }
}

fn run_web(d: &Daemon) -> String {
    let out = d.docker(&["run", "-d", "--name", "web", "busybox", "sleep", "600"]);
    out.ok();
    out.stdout.trim().to_string()
}

/// The container init's freezer state: v1 `freezer.state`, or v2 `cgroup.freeze` as FROZEN/THAWED.
fn freezer_state(pid: &str) -> String {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("cgroup of {pid}: {e}"));
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        if controllers.is_some_and(|c| c.split(',').any(|c| c == "freezer")) {
            let path = path.unwrap_or("");
            let file = format!("/sys/fs/cgroup/freezer{path}/freezer.state");
            return std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .trim()
                .to_string();
        }
    }
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("no cgroup for {pid}: {cgroup}"));
    let file = format!("/sys/fs/cgroup{path}/cgroup.freeze");
    match std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
    {
        "1" => "FROZEN".into(),
        _ => "THAWED".into(),
    }
}

#[test]
fn exec_output_exit_codes_stdin_env_user_workdir() {
    let d = daemon_with_busybox();
    let _cleanup = RemoveOnDrop(&d, &["web"]);
    let id = run_web(&d);
    for cli in [Cli::Docker, Cli::Estiba] {
        let out = d.run(cli, &["exec", "web", "echo", "hi"]);
        out.ok();
        assert_eq!(out.stdout, "hi\n", "{out}");
    }
    d.docker(&["exec", "web", "sh", "-c", "exit 5"])
        .fails_with(5);
    let out = d.docker(&["exec", "web", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    out.fails_with(3);
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );

    let out = d.run_with_stdin(
        Cli::Docker,
        &["exec", "-i", "web", "cat"],
        b"hello\nworld\n".to_vec(),
    );
    out.ok();
    assert_eq!(out.stdout, "hello\nworld\n");

    let out = d.docker(&[
        "exec",
        "-e",
        "A=b",
        "-e",
        "PATH=/bin",
        "-u",
        "1000:1001",
        "-w",
        "/tmp",
        "web",
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $A $PATH $HOSTNAME",
    ]);
    out.ok();
    let short = &id[..12];
    assert_eq!(out.stdout, format!("1000\n1001\n/tmp\nb /bin {short}\n"));

    // A TTY: output is raw, with the pty's line endings.
    let out = d.docker(&[
        "exec",
        "-t",
        "web",
        "sh",
        "-c",
        "echo tty; [ -t 1 ] && echo yes",
    ]);
    out.ok();
    assert_eq!(out.stdout, "tty\r\nyes\r\n");

    // A detached exec runs without anyone attached.
    d.docker(&["exec", "-d", "web", "sh", "-c", "echo done > /tmp/detached"])
        .ok();
    assert!(wait_until(Duration::from_secs(5), || {
        d.docker(&["exec", "web", "cat", "/tmp/detached"]).stdout == "done\n"
    }));

    // Docker's errors: the runtime's message, exit 126.
    let out = d.docker(&["exec", "web", "nosuch"]);
    out.fails_with(126);
    assert!(
        out.stdout.starts_with("OCI runtime exec failed: ")
            && out.stdout.contains("nosuch")
            && out.stdout.ends_with(": unknown\r\n"),
        "{out}"
    );
    let out = d.docker(&["exec", "-u", "nosuchuser", "web", "true"]);
    out.fails_with(126);
    assert!(
        out.stdout
            .contains("unable to find user nosuchuser: no matching entries in passwd file"),
        "{out}"
    );

    // Exec output never reaches the container's log; inspect lists the execs still running
    // (Docker drops exited ones), and an exited exec stays inspectable.
    let logs = d.docker(&["logs", "web"]);
    logs.ok();
    assert_eq!((logs.stdout.as_str(), logs.stderr.as_str()), ("", ""));
    let inspect = d.docker(&["inspect", "web"]).json();
    assert_eq!(inspect[0]["ExecIDs"], serde_json::Value::Null);
    d.docker(&["exec", "-d", "web", "sleep", "300"]).ok();
    let inspect = d.docker(&["inspect", "web"]).json();
    let ids = inspect[0]["ExecIDs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(ids.len(), 1, "{}", inspect[0]["ExecIDs"]);
    let exec_id = ids[0].as_str().unwrap_or_default();
    let resp = d.api("GET", &format!("/exec/{exec_id}/json"), None);
    assert_eq!(resp.status, 200);
    let exec: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(exec["Running"], true);
    assert_eq!(exec["ExitCode"], serde_json::Value::Null);
    assert_eq!(exec["ContainerID"], id.as_str());
    assert_eq!(exec["ProcessConfig"]["entrypoint"], "sleep");
    assert_eq!(
        exec["ProcessConfig"]["arguments"],
        serde_json::json!(["300"])
    );
    let pid = exec["Pid"].as_u64().unwrap_or(0);
    let top = d.docker(&["top", "web", "-o", "pid,args"]);
    let pid = pid.to_string();
    assert!(
        top.lines()
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [pid.as_str(), "sleep", "300"]),
        "{top}"
    );

    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let events = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--format",
        "{{.Action}}",
    ]);
    events.ok();
    for want in ["exec_create: echo hi", "exec_start: echo hi", "exec_die"] {
        assert!(events.lines().contains(&want), "{want}: {events}");
    }

    d.docker(&["rm", "-f", "web"]).ok();
    assert_clean(&d);
}

#[test]
fn exec_with_runc_has_dockers_wording() {
    let d = daemon_with_busybox();
    let _cleanup = RemoveOnDrop(&d, &["rc"]);
    let run = d.docker(&[
        "run",
        "-d",
        "--runtime",
        "runc",
        "--name",
        "rc",
        "busybox",
        "sleep",
        "600",
    ]);
    run.ok();
    let out = d.docker(&["exec", "rc", "echo", "hi"]);
    out.ok();
    assert_eq!(out.stdout, "hi\n");
    let out = d.docker(&["exec", "rc", "sh", "-c", "exit 7"]);
    out.fails_with(7);
    let out = d.docker(&["exec", "rc", "nosuch"]);
    out.fails_with(126);
    assert_eq!(
        out.stdout,
        "OCI runtime exec failed: exec failed: unable to start container process: exec: \
         \"nosuch\": executable file not found in $PATH: unknown\r\n"
    );
    d.docker(&["pause", "rc"]).ok();
    let state = d.docker(&["inspect", "-f", "{{.State.Status}}", "rc"]);
    assert_eq!(state.stdout, "paused\n");
    d.docker(&["unpause", "rc"]).ok();
    let top = d.docker(&["top", "rc"]);
    top.ok();
    assert_eq!(top.lines().len(), 2, "{top}");
    d.docker(&["rm", "-f", "rc"]).ok();
    assert_clean(&d);
}

/// `docker exec -it` from a real terminal (script(1) gives the CLI a pty): input typed into
/// the shell, a pty inside, TERM set, the shell's exit code.
#[test]
fn exec_interactive_tty() {
    let d = daemon_with_busybox();
    let _cleanup = RemoveOnDrop(&d, &["web"]);
    run_web(&d);
    let inner = d.command(Cli::Docker, &["exec", "-it", "web", "sh"]);
    let mut cmd = std::process::Command::new("script");
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let docker = inner.get_program().to_string_lossy().into_owned();
    cmd.args(["-qec", &format!("{docker} exec -it web sh"), "/dev/null"]);
    let out = estiba_e2e::run_command(
        cmd,
        Some(b"echo TERM=$TERM; tty; echo typed; exit 3\n".to_vec()),
    );
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stdout.contains("TERM=xterm\r\n"), "{out}");
    assert!(out.stdout.contains("/dev/pts/"), "{out}");
    assert!(out.stdout.contains("typed\r\n"), "{out}");

    // POST /exec/{id}/resize reaches the exec's pty.
    d.docker(&[
        "exec",
        "-dt",
        "web",
        "sh",
        "-c",
        "while [ -z \"$(stty size 2>/dev/null)\" ]; do sleep 0.1; done; stty size > /tmp/size; sleep 300",
    ])
    .ok();
    let inspect = d.docker(&["inspect", "web"]).json();
    let exec_id = inspect[0]["ExecIDs"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let resp = d.api("POST", &format!("/exec/{exec_id}/resize?h=30&w=100"), None);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert!(wait_until(Duration::from_secs(5), || {
        d.docker(&["exec", "web", "cat", "/tmp/size"]).stdout == "30 100\n"
    }));
    d.docker(&["rm", "-f", "web"]).ok();
    assert_clean(&d);
}

#[test]
fn exec_into_a_stopped_container_is_a_conflict() {
    let d = daemon_with_busybox();
    let id = d.docker(&["create", "--name", "idle", "busybox", "sleep", "5"]);
    id.ok();
    let id = id.stdout.trim().to_string();
    let out = d.docker(&["exec", "idle", "true"]);
    out.fails_with(1);
    assert_eq!(
        out.stderr.trim(),
        format!("Error response from daemon: Container {id} is not running")
    );
    let resp = d.api(
        "POST",
        "/containers/idle/exec",
        Some(br#"{"Cmd":["true"],"AttachStdout":true}"#),
    );
    assert_eq!(resp.status, 409, "{}", String::from_utf8_lossy(&resp.body));
    let resp = d.api("GET", "/exec/nosuch/json", None);
    assert_eq!(resp.status, 404, "{}", String::from_utf8_lossy(&resp.body));
    d.docker(&["rm", "idle"]).ok();
    assert_clean(&d);
}

#[test]
fn top_lists_the_container_processes() {
    let d = daemon_with_busybox();
    let _cleanup = RemoveOnDrop(&d, &["web"]);
    run_web(&d);
    let pid = d.docker(&["inspect", "-f", "{{.State.Pid}}", "web"]);
    pid.ok();
    let pid = pid.stdout.trim().to_string();
    let out = d.docker(&["top", "web"]);
    out.ok();
    let lines = out.lines();
    assert!(lines[0].starts_with("UID "), "{out}");
    assert!(lines[0].trim_end().ends_with("CMD"), "{out}");
    assert_eq!(lines.len(), 2, "only the sleep: {out}");
    assert!(
        lines[1].contains(&pid) && lines[1].trim_end().ends_with("sleep 600"),
        "{out}"
    );

    let out = d.docker(&["top", "web", "-o", "pid,comm"]);
    out.ok();
    let rows: Vec<Vec<&str>> = out
        .lines()
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![vec!["PID", "COMMAND"], vec![pid.as_str(), "sleep"]]
    );

    d.docker(&["stop", "-t", "1", "web"]).ok();
    let out = d.docker(&["top", "web"]);
    out.fails_with(1);
    assert!(out.stderr.contains("is not running"), "{out}");
    d.docker(&["rm", "web"]).ok();
    assert_clean(&d);
}

#[test]
fn pause_freezes_and_unpause_thaws() {
    let d = daemon_with_busybox();
    let _cleanup = RemoveOnDrop(&d, &["web"]);
    let id = run_web(&d);
    let pid = d.docker(&["inspect", "-f", "{{.State.Pid}}", "web"]);
    pid.ok();
    let pid = pid.stdout.trim().to_string();
    assert_eq!(freezer_state(&pid), "THAWED");

    d.docker(&["pause", "web"]).ok();
    assert_eq!(freezer_state(&pid), "FROZEN");
    let state = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "web",
    ]);
    assert_eq!(state.stdout, "paused true\n");
    let ps = d.docker(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.stdout.trim().ends_with("(Paused)"), "{ps}");
    let out = d.docker(&["pause", "web"]);
    out.fails_with(1);
    assert!(
        out.stderr
            .contains(&format!("Container {id} is already paused")),
        "{out}"
    );
    let out = d.docker(&["exec", "web", "true"]);
    out.fails_with(1);
    assert!(
        out.stderr
            .contains("Container web is paused, unpause the container before exec"),
        "{out}"
    );

    d.run(Cli::Estiba, &["unpause", "web"]).ok();
    assert_eq!(freezer_state(&pid), "THAWED");
    let state = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "web",
    ]);
    assert_eq!(state.stdout, "running false\n");
    let out = d.docker(&["unpause", "web"]);
    out.fails_with(1);
    assert!(
        out.stderr
            .contains(&format!("Container {id} is not paused")),
        "{out}"
    );

    // Stop and kill thaw a paused container first, as Docker.
    d.docker(&["pause", "web"]).ok();
    d.docker(&["stop", "-t", "1", "web"]).ok();
    let state = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(state.stdout, "exited 137\n");
    d.docker(&["start", "web"]).ok();
    d.docker(&["pause", "web"]).ok();
    d.docker(&["kill", "web"]).ok();
    d.docker(&["wait", "web"]).ok();

    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let events = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--format",
        "{{.Action}}",
    ]);
    events.ok();
    assert!(events.lines().contains(&"pause"), "{events}");
    assert!(events.lines().contains(&"unpause"), "{events}");
    d.docker(&["rm", "web"]).ok();
    assert_clean(&d);
}

/// An exec in a container that estiba-runtime started with a precompiled filter is started by
/// the shim itself (no runtime invocation); a tty exec and a container without a filter still
/// go through the runtime. Both give the same process: user, groups, capabilities, filter,
/// cgroup, namespaces, cwd, HOME, rlimits.
#[test]
fn exec_without_the_runtime_when_the_shim_can() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (wrapper, calls) = estiba_e2e::runtime_wrapper(
        dir.path(),
        "estiba-runtime-wrapper",
        &estiba_e2e::binary("estiba-runtime"),
    );
    let d = Daemon::start_with(&["--add-runtime", &format!("wrapped={}", wrapper.display())]);
    let image = estiba_e2e::testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&image]);
    let _cleanup = RemoveOnDrop(&d, &["fast", "slow"]);
    for (name, extra) in [
        ("fast", &[][..]),
        ("slow", &["--security-opt", "seccomp=unconfined"][..]),
    ] {
        let mut args = vec![
            "run",
            "-d",
            "--runtime",
            "wrapped",
            "--name",
            name,
            "--ulimit",
            "nofile=1234:2345",
            "--cap-add",
            "NET_ADMIN",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sleep", "600"]);
        d.docker(&args).ok();
    }
    let exec_calls = || {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" exec "))
            .count()
    };

    let probe = "id; ulimit -n; ulimit -Hn; pwd; echo $HOME; \
                 grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status; \
                 cat /proc/self/cgroup | sort; ls -l /proc/self/ns | sed 's/.*-> //' | sort";
    let host_view = |name: &str, user: &[&str]| {
        let mut args = vec!["exec", "-w", "/tmp"];
        args.extend_from_slice(user);
        args.extend_from_slice(&[name, "sh", "-c", probe]);
        let out = d.docker(&args);
        out.ok();
        out.stdout
    };
    // What the init has: namespaces and cgroups an exec must share.
    let init_ns = d.docker(&[
        "exec",
        "fast",
        "sh",
        "-c",
        "ls -l /proc/1/ns | sed 's/.*-> //' | sort; cat /proc/1/cgroup | sort",
    ]);
    init_ns.ok();
    assert_eq!(exec_calls(), 0, "the shim ran the runtime for an exec");

    let root = host_view("fast", &[]);
    assert!(root.starts_with("uid=0(root) gid=0(root)"), "{root}");
    assert!(root.contains("\n1234\n2345\n/tmp\n/root\n"), "{root}");
    assert!(root.contains("Seccomp:\t2\n"), "{root}");
    assert!(root.contains("NoNewPrivs:\t0\n"), "{root}");
    let caps = |out: &str, set: &str| -> u64 {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{set}:\t")))
            .unwrap_or_else(|| panic!("no {set} in {out}"));
        u64::from_str_radix(line, 16).unwrap_or_else(|e| panic!("{set} {line}: {e}"))
    };
    const NET_ADMIN: u64 = 1 << 12;
    const SYS_ADMIN: u64 = 1 << 21;
    const SETPCAP: u64 = 1 << 8;
    for set in ["CapBnd", "CapEff", "CapPrm"] {
        assert_ne!(caps(&root, set) & NET_ADMIN, 0, "{set} in {root}");
        assert_eq!(caps(&root, set) & SYS_ADMIN, 0, "{set} in {root}");
    }
    assert_ne!(caps(&root, "CapBnd") & SETPCAP, 0, "{root}");
    assert_eq!(exec_calls(), 0, "the shim ran the runtime for an exec");
    // The same process through the runtime (a container without a filter), the filter, the
    // namespaces and the cgroup paths aside.
    let slow = host_view("slow", &[]);
    assert_eq!(
        exec_calls(),
        1,
        "an exec without a filter goes through the runtime"
    );
    let comparable = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with("Seccomp") && !l.contains(":[") && !l.contains(":/"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(comparable(&root), comparable(&slow));
    // Namespaces and cgroups are the init's.
    for line in init_ns.stdout.lines() {
        assert!(root.contains(line), "{line} missing from\n{root}");
    }
    // A user: its groups, no capabilities left, HOME from the container's /etc/passwd.
    let nobody = host_view("fast", &["-u", "nobody"]);
    let nobody_slow = host_view("slow", &["-u", "nobody"]);
    assert!(
        nobody.starts_with("uid=65534(nobody) gid=65534(nogroup)"),
        "{nobody}"
    );
    assert_eq!(caps(&nobody, "CapEff"), 0, "{nobody}");
    assert_eq!(caps(&nobody, "CapPrm"), 0, "{nobody}");
    assert_eq!(comparable(&nobody), comparable(&nobody_slow));
    assert_eq!(exec_calls(), 2);

    // runc's errors, from the shim.
    let out = d.docker(&["exec", "fast", "nosuch"]);
    out.fails_with(126);
    assert_eq!(
        out.stdout,
        "OCI runtime exec failed: exec failed: unable to start container process: exec: \
         \"nosuch\": executable file not found in $PATH: unknown\r\n"
    );
    let out = d.docker(&["exec", "-w", "/nonexistent", "fast", "true"]);
    out.fails_with(126);
    assert!(
        out.stdout.contains(
            "chdir to cwd (\"/nonexistent\") set in config.json failed: no such file or directory"
        ),
        "{out}"
    );
    let out = d.docker(&["exec", "fast", "/etc/passwd"]);
    out.fails_with(126);
    assert!(
        out.stdout
            .contains("exec: \"/etc/passwd\": permission denied"),
        "{out}"
    );
    // Exit codes, stdin, output on both streams.
    let out = d.docker(&["exec", "fast", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    out.fails_with(3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    let out = d.run_with_stdin(
        Cli::Docker,
        &["exec", "-i", "fast", "cat"],
        b"piped\n".to_vec(),
    );
    out.ok();
    assert_eq!(out.stdout, "piped\n");
    assert_eq!(exec_calls(), 2, "the shim ran the runtime for an exec");
    // A tty exec goes through the runtime (its pty comes from the container's devpts).
    let out = d.docker(&["exec", "-t", "fast", "true"]);
    out.ok();
    assert_eq!(exec_calls(), 3);
    // A paused container: Docker's conflict, and the shim does not hang on the frozen cgroup.
    d.docker(&["pause", "fast"]).ok();
    let out = d.docker(&["exec", "fast", "true"]);
    out.fails_with(1);
    d.docker(&["unpause", "fast"]).ok();
    d.docker(&["exec", "fast", "true"]).ok();
    d.docker(&["rm", "-f", "fast", "slow"]).ok();
    assert_clean(&d);
}
