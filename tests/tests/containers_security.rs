//! Security and resources end to end through the real docker CLI: seccomp (Docker's default
//! profile, unconfined, a user profile, capability-conditional rules), no-new-privileges, users,
//! capabilities, read-only rootfs, tmpfs, ulimits, /dev/shm, cgroup limits, the OOM killer,
//! `docker update`, and the container's environment, working dir, hostname and hosts.

use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, wait_until, Daemon};

/// No container, container dir, shim state or cgroup of this daemon is left.
#[track_caller]
fn assert_clean(d: &Daemon, ids: &[String]) {
    let out = d.docker(&["ps", "-aq"]);
    out.ok();
    assert!(out.stdout.trim().is_empty(), "containers left: {out}");
    let left = d.leftovers_after(std::time::Duration::from_secs(10));
    assert!(left.is_empty(), "left behind: {left:?}");
    for id in ids {
        for c in ["memory", "pids", "cpu", "unified"] {
            let p = format!("/sys/fs/cgroup/{c}/estiba/{id}");
            assert!(
                wait_until(Duration::from_secs(10), || !std::path::Path::new(&p)
                    .exists()),
                "cgroup left: {p}"
            );
        }
    }
}

/// `docker run --rm busybox sh -c <script>` with `flags`, which must succeed; its stdout.
#[track_caller]
fn run_sh(d: &Daemon, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    let out = d.docker(&args);
    out.ok();
    out.stdout
}

/// The host's capability bounding set, as `/proc/self/status` prints it.
fn host_cap_bnd() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// Writes a user profile that refuses mkdir with EPERM under `dir`; its path and the
/// `--security-opt` naming it.
fn no_mkdir_profile(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let profile = dir.join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    (profile, opt)
}

#[test]
fn seccomp_profiles_and_no_new_privileges() {
    let d = daemon_with_busybox();
    // Docker's default profile: filter mode, and unshare(2) is refused without CAP_SYS_ADMIN
    // even for a user namespace, which needs no capability.
    let script =
        "grep Seccomp: /proc/self/status; unshare -U true && echo unshared || echo refused";
    assert_eq!(run_sh(&d, &[], script), "Seccomp:\t2\nrefused\n");
    assert_eq!(
        run_sh(&d, &["--security-opt", "seccomp=unconfined"], script),
        "Seccomp:\t0\nunshared\n"
    );
    // The capability-conditional rules: CAP_SYS_ADMIN opens unshare.
    assert_eq!(
        run_sh(&d, &["--cap-add", "SYS_ADMIN"], script),
        "Seccomp:\t2\nunshared\n"
    );
    // The estiba CLI sends the same options.
    for (opt, want) in [
        ("seccomp=unconfined", "Seccomp:\t0\n"),
        ("no-new-privileges", "Seccomp:\t2\n"),
    ] {
        let out = d.estiba(&[
            "run",
            "--rm",
            "--security-opt",
            opt,
            "busybox",
            "grep",
            "Seccomp:",
            "/proc/self/status",
        ]);
        out.ok();
        assert_eq!(out.stdout, want, "{opt}");
    }
    // --privileged runs unconfined.
    assert_eq!(
        run_sh(&d, &["--privileged"], "grep Seccomp: /proc/self/status"),
        "Seccomp:\t0\n"
    );

    // A user profile: the docker CLI reads the file and sends its JSON.
    let dir = tempfile::tempdir().unwrap();
    let (profile, opt) = no_mkdir_profile(dir.path());
    let out = d.docker(&[
        "run",
        "--rm",
        "--security-opt",
        &opt,
        "busybox",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; unshare -U true && echo unshared; mkdir /x",
    ]);
    out.fails_with(1);
    assert_eq!(out.stdout, "Seccomp:\t2\nunshared\n", "{out}");
    assert!(
        out.stderr
            .contains("mkdir: can't create directory '/x': Operation not permitted"),
        "{out}"
    );

    // A broken profile fails at start, like dockerd.
    std::fs::write(&profile, r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = d.docker(&["run", "--rm", "--security-opt", &opt, "busybox", "true"]);
    out.fails_with(125);
    assert!(out.stderr.contains("seccomp profile"), "{out}");

    assert_eq!(
        run_sh(
            &d,
            &["--security-opt", "no-new-privileges"],
            "grep NoNewPrivs /proc/self/status"
        ),
        "NoNewPrivs:\t1\n"
    );
    assert_eq!(
        run_sh(&d, &[], "grep NoNewPrivs /proc/self/status"),
        "NoNewPrivs:\t0\n"
    );
    assert_clean(&d, &[]);
}

/// estiba-runtime installs a filter compiled ahead (and cached) right before exec, lifting
/// CAP_SYS_ADMIN and CAP_SETPCAP for that moment: the process that runs must see exactly the
/// capabilities and the filter it would have had otherwise, in `run` and in `exec`.
#[test]
fn precompiled_filter_leaves_capabilities_as_asked() {
    let d = daemon_with_busybox();
    let status = "grep -E 'Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp:' /proc/self/status; \
                  unshare -U true 2>/dev/null || echo refused";
    let root = "CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\n\
                CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n\
                CapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t2\nrefused\n";
    let nobody = "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\n\
                  CapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\n\
                  CapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t2\nrefused\n";
    assert_eq!(run_sh(&d, &[], status), root);
    assert_eq!(run_sh(&d, &["-u", "nobody"], status), nobody);
    // SETPCAP dropped by the user: it must not come back from the lift.
    assert_eq!(
        run_sh(
            &d,
            &["--cap-drop", "SETPCAP"],
            "grep -E 'CapEff|CapBnd' /proc/self/status"
        ),
        "CapEff:\t00000000a80424fb\nCapBnd:\t00000000a80424fb\n"
    );

    d.docker(&["run", "-d", "--name", "conf", "busybox", "sleep", "600"])
        .ok();
    let exec = |flags: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["conf", "sh", "-c", status]);
        let out = d.docker(&args);
        out.ok();
        out.stdout
    };
    assert_eq!(exec(&[]), root);
    assert_eq!(exec(&["-u", "nobody"]), nobody);
    // The container's own process too (pid 1: sleep, started under the filter).
    let out = d.docker(&[
        "exec",
        "conf",
        "grep",
        "-E",
        "Seccomp:|CapEff",
        "/proc/1/status",
    ]);
    out.ok();
    assert_eq!(out.stdout, "CapEff:\t00000000a80425fb\nSeccomp:\t2\n");
    d.docker(&["rm", "-f", "conf"]).ok();

    // A user profile is compiled and applied the same way, in exec as well.
    let dir = tempfile::tempdir().unwrap();
    let (_, opt) = no_mkdir_profile(dir.path());
    d.docker(&[
        "run",
        "-d",
        "--name",
        "conf2",
        "--security-opt",
        &opt,
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    let out = d.docker(&["exec", "conf2", "mkdir", "/x"]);
    out.fails_with(1);
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    d.docker(&["exec", "conf2", "touch", "/y"]).ok();
    d.docker(&["rm", "-f", "conf2"]).ok();
    assert_clean(&d, &[]);
}

#[test]
fn users_capabilities_and_filesystems() {
    let d = daemon_with_busybox();
    assert_eq!(
        run_sh(&d, &["-u", "nobody"], "id"),
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"
    );
    assert_eq!(run_sh(&d, &["-u", "1234:55"], "id -u; id -g"), "1234\n55\n");

    let caps = "grep CapEff /proc/self/status";
    let cases: &[(&[&str], &str)] = &[
        (&[], "CapEff:\t00000000a80425fb\n"),
        (&["--cap-drop", "ALL"], "CapEff:\t0000000000000000\n"),
        (
            &["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"],
            "CapEff:\t0000000000001000\n",
        ),
        (&["--cap-drop", "CHOWN"], "CapEff:\t00000000a80425fa\n"),
    ];
    for (flags, want) in cases {
        assert_eq!(run_sh(&d, flags, caps), *want, "{flags:?}");
    }
    // --privileged grants the host's whole bounding set (which may lack some capabilities).
    assert_eq!(
        run_sh(&d, &["--privileged"], caps),
        format!("CapEff:\t{}\n", host_cap_bnd())
    );
    let out = d.docker(&["run", "--rm", "--cap-add", "NOPE", "busybox", "true"]);
    out.fails_with(125);
    assert!(
        out.stderr.contains("unknown capability: \"CAP_NOPE\""),
        "{out}"
    );

    let out = d.docker(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    out.fails_with(1);
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert_eq!(
        run_sh(
            &d,
            &["--read-only", "--tmpfs", "/tmp"],
            "touch /tmp/x && grep ' /tmp ' /proc/mounts | cut -d' ' -f1-3"
        ),
        "tmpfs /tmp tmpfs\n"
    );
    assert_eq!(
        run_sh(&d, &["--ulimit", "nofile=100:200"], "ulimit -n; ulimit -Hn"),
        "100\n200\n"
    );
    assert_eq!(
        run_sh(&d, &[], "df -k /dev/shm | tail -1 | awk '{print $2}'"),
        "65536\n"
    );
    assert_eq!(
        run_sh(
            &d,
            &["--shm-size", "128m"],
            "df -k /dev/shm | tail -1 | awk '{print $2}'"
        ),
        "131072\n"
    );
    assert_clean(&d, &[]);
}

#[test]
fn environment_workdir_and_names() {
    let d = daemon_with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=1\n\nSPACED=a b\n").unwrap();
    let env_file = env_file.display().to_string();
    assert_eq!(
        run_sh(
            &d,
            &["-e", "A=x", "--env-file", &env_file, "-e", "FROM_FILE=2"],
            "echo \"$A|$FROM_FILE|$SPACED\""
        ),
        "x|2|a b\n"
    );
    assert_eq!(
        run_sh(&d, &["-w", "/a/b/c"], "pwd; ls -d /a/b/c"),
        "/a/b/c\n/a/b/c\n"
    );
    assert_eq!(
        run_sh(
            &d,
            &["--hostname", "box", "--domainname", "example.org"],
            "hostname; cat /etc/hostname; cat /proc/sys/kernel/domainname"
        ),
        "box\nbox\nexample.org\n"
    );
    let hosts = run_sh(
        &d,
        &["--add-host", "db:10.1.2.3", "--add-host", "cache:10.1.2.4"],
        "cat /etc/hosts",
    );
    assert!(hosts.contains("10.1.2.3\tdb\n"), "{hosts}");
    assert!(hosts.contains("10.1.2.4\tcache\n"), "{hosts}");
    assert!(hosts.contains("127.0.0.1\tlocalhost"), "{hosts}");
    assert_clean(&d, &[]);
}

/// The host-side cgroup v1 file of a container.
fn cgroup_file(controller: &str, id: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/estiba/{id}/{file}"))
        .unwrap_or_else(|e| panic!("{controller}/{file} of {id}: {e}"))
        .trim()
        .to_owned()
}

#[test]
fn cgroup_limits() {
    let d = daemon_with_busybox();
    let out = d.docker(&[
        "run",
        "-d",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--cpu-shares",
        "512",
        "busybox",
        "sleep",
        "300",
    ]);
    out.ok();
    let id = out.stdout.trim().to_owned();
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_period_us"), "100000");
    assert_eq!(cgroup_file("cpu", &id, "cpu.shares"), "512");
    assert_eq!(cgroup_file("pids", &id, "pids.max"), "50");
    let inspect = d.docker(&["inspect", &id]).json();
    let h = &inspect[0]["HostConfig"];
    assert_eq!(h["Memory"], 67108864);
    assert_eq!(h["NanoCpus"], 500000000);
    assert_eq!(h["PidsLimit"], 50);
    d.docker(&["rm", "-f", &id]).ok();
    // The container sees its own limits.
    assert_eq!(
        run_sh(
            &d,
            &["-m", "64m", "--pids-limit", "50"],
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
        ),
        "67108864\n50\n"
    );
    assert_clean(&d, &[id]);
}

#[test]
fn oom_killed_container() {
    let d = daemon_with_busybox();
    let out = d.docker(&[
        "run",
        "--name",
        "oom",
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 50m /dev/zero | tr '\\0' a); echo survived",
    ]);
    out.fails_with(137);
    assert!(!out.stdout.contains("survived"), "{out}");
    let inspect = d.docker(&["inspect", "oom"]).json();
    let state = &inspect[0]["State"];
    assert_eq!(state["OOMKilled"], true, "{state}");
    assert_eq!(state["ExitCode"], 137);
    let id = inspect[0]["Id"].as_str().unwrap_or_default().to_owned();
    d.docker(&["rm", "oom"]).ok();

    // A plain exit is not an OOM kill.
    let out = d.docker(&["run", "--name", "fine", "-m", "64m", "busybox", "true"]);
    out.ok();
    let inspect = d.docker(&["inspect", "fine"]).json();
    assert_eq!(inspect[0]["State"]["OOMKilled"], false);
    d.docker(&["rm", "fine"]).ok();
    assert_clean(&d, &[id]);
}

#[test]
fn update_running_and_stopped_containers() {
    let d = daemon_with_busybox();
    let out = d.docker(&["run", "-d", "-m", "64m", "busybox", "sleep", "300"]);
    out.ok();
    let id = out.stdout.trim().to_owned();
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "67108864"
    );

    // Within the old swap limit: only memory changes, on the running cgroup and in inspect.
    let out = d.docker(&["update", "-m", "100m", &id]);
    out.ok();
    assert_eq!(out.stdout.trim(), id);
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "104857600"
    );

    // Above it, Docker asks for the swap limit too.
    let out = d.docker(&["update", "-m", "300m", &id]);
    out.fails_with(1);
    assert!(
        out.stderr.contains(&format!(
            "Cannot update container {id}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
        )),
        "{out}"
    );
    d.docker(&[
        "update",
        "-m",
        "300m",
        "--memory-swap",
        "600m",
        "--cpus",
        "0.25",
        "--cpu-shares",
        "256",
        "--pids-limit",
        "30",
        "--restart",
        "on-failure:3",
        &id,
    ])
    .ok();
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "314572800"
    );
    if std::path::Path::new(&format!(
        "/sys/fs/cgroup/memory/estiba/{id}/memory.memsw.limit_in_bytes"
    ))
    .exists()
    {
        assert_eq!(
            cgroup_file("memory", &id, "memory.memsw.limit_in_bytes"),
            "629145600"
        );
    }
    assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_quota_us"), "25000");
    assert_eq!(cgroup_file("cpu", &id, "cpu.shares"), "256");
    assert_eq!(cgroup_file("pids", &id, "pids.max"), "30");
    let inspect = d.docker(&["inspect", &id]).json();
    let h = &inspect[0]["HostConfig"];
    assert_eq!(h["Memory"], 314572800);
    assert_eq!(h["MemorySwap"], 629145600);
    assert_eq!(h["NanoCpus"], 250000000);
    assert_eq!(h["CpuShares"], 256);
    assert_eq!(h["PidsLimit"], 30);
    assert_eq!(h["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(h["RestartPolicy"]["MaximumRetryCount"], 3);

    // Lowering below the current usage is the kernel's call; lowering a sane amount works,
    // and a conflicting CPU setting is refused with Docker's words.
    d.docker(&["update", "-m", "32m", &id]).ok();
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "33554432"
    );
    let out = d.docker(&["update", "--cpu-quota", "5000", &id]);
    out.fails_with(1);
    assert!(
        out.stderr
            .contains("CPU Quota cannot be updated as NanoCPUs has already been set"),
        "{out}"
    );

    // estiba update: the same flags, docker's output and exit codes.
    let out = d.estiba(&["update", "--pids-limit", "25", "--cpu-shares", "512", &id]);
    out.ok();
    assert_eq!(out.stdout.trim(), id);
    assert_eq!(cgroup_file("pids", &id, "pids.max"), "25");
    assert_eq!(cgroup_file("cpu", &id, "cpu.shares"), "512");
    let out = d.estiba(&["update", &id]);
    out.fails_with(1);
    assert!(
        out.stderr
            .contains("you must provide one or more flags when using this command"),
        "{out}"
    );
    let out = d.estiba(&["update", "--cpus", "lots", &id]);
    out.fails_with(125);
    assert!(
        out.stderr
            .contains("invalid argument \"lots\" for \"--cpus\" flag"),
        "{out}"
    );
    let out = d.estiba(&["update", "--pids-limit", "5", "nosuch"]);
    out.fails_with(1);
    assert!(out.stderr.contains("No such container: nosuch"), "{out}");

    // The raw API answers Docker's shape.
    let resp = d.api(
        "POST",
        &format!("/containers/{id}/update"),
        Some(br#"{"PidsLimit": 40}"#),
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(body, serde_json::json!({"Warnings": []}));
    assert_eq!(cgroup_file("pids", &id, "pids.max"), "40");
    let resp = d.api("POST", "/containers/nope/update", Some(b"{}"));
    assert_eq!(resp.status, 404);

    // A stopped container keeps the update and starts with it.
    d.docker(&["stop", "-t", "0", &id]).ok();
    d.docker(&["update", "-m", "48m", &id]).ok();
    d.docker(&["start", &id]).ok();
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "50331648"
    );
    d.docker(&["rm", "-f", &id]).ok();
    assert_clean(&d, &[id]);
}

/// The same settings reach runc, the alternative runtime, through the same spec.
#[test]
fn runc_runtime_gets_the_same_confinement() {
    let d = daemon_with_busybox();
    let runc = ["--runtime", "runc"];
    let script =
        "grep -E 'Seccomp:|CapEff|NoNewPrivs' /proc/self/status; unshare -U true || echo refused";
    assert_eq!(
        run_sh(&d, &runc, script),
        "CapEff:\t00000000a80425fb\nNoNewPrivs:\t0\nSeccomp:\t2\nrefused\n"
    );
    let mut flags = runc.to_vec();
    flags.extend_from_slice(&["--security-opt", "seccomp=unconfined", "--cap-drop", "ALL"]);
    flags.extend_from_slice(&["--security-opt", "no-new-privileges"]);
    assert_eq!(
        run_sh(
            &d,
            &flags,
            "grep -E 'Seccomp:|CapEff|NoNewPrivs' /proc/self/status"
        ),
        "CapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t0\n"
    );

    let out = d.docker(&[
        "run",
        "--runtime",
        "runc",
        "--name",
        "oom",
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 50m /dev/zero | tr '\\0' a)",
    ]);
    out.fails_with(137);
    let inspect = d.docker(&["inspect", "oom"]).json();
    assert_eq!(inspect[0]["State"]["OOMKilled"], true);
    d.docker(&["rm", "oom"]).ok();

    let out = d.docker(&[
        "run",
        "-d",
        "--runtime",
        "runc",
        "-m",
        "64m",
        "busybox",
        "sleep",
        "300",
    ]);
    out.ok();
    let id = out.stdout.trim().to_owned();
    d.docker(&["update", "-m", "100m", &id]).ok();
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "104857600"
    );
    d.docker(&["rm", "-f", &id]).ok();
    assert_clean(&d, &[id]);
}

/// `--device` and `--device-cgroup-rule`: the node appears where asked, the cgroup allows
/// exactly the permissions given, a directory maps every device under it, and bad input gets
/// dockerd's errors.
#[test]
fn devices_and_device_cgroup_rules() {
    let d = daemon_with_busybox();
    let run = |args: &[&str]| {
        let mut full = vec!["run", "--rm", "--network", "none"];
        full.extend_from_slice(args);
        d.docker(&full)
    };
    let out = run(&[
        "--device",
        "/dev/null:/dev/mynull",
        "busybox",
        "sh",
        "-c",
        "stat -c '%F %t:%T' /dev/mynull && echo x > /dev/mynull && echo wrote",
    ]);
    assert_eq!(out.ok().stdout, "character special file 1:3\nwrote\n");

    // /dev/loop-control (10:237) is outside Docker's default allow list: read-only as asked.
    let out = run(&[
        "--device",
        "/dev/loop-control:/dev/t:r",
        "busybox",
        "sh",
        "-c",
        "exec 3</dev/t && echo read-ok; (exec 4>/dev/t) 2>/dev/null || echo write-denied",
    ]);
    assert_eq!(out.ok().stdout, "read-ok\nwrite-denied\n");
    // Without the mapping, a node made by hand is refused by the device cgroup.
    let probe =
        "mknod /dev/t c 10 237 && (exec 3</dev/t) 2>/dev/null && echo opened || echo denied";
    let out = run(&["busybox", "sh", "-c", probe]);
    assert_eq!(out.ok().stdout, "denied\n");
    let out = run(&[
        "--device-cgroup-rule",
        "c 10:237 rm",
        "busybox",
        "sh",
        "-c",
        probe,
    ]);
    assert_eq!(out.ok().stdout, "opened\n");

    // A directory brings every device under it.
    let out = run(&["--device", "/dev/net", "busybox", "ls", "/dev/net"]);
    assert_eq!(out.ok().stdout, "tun\n");

    // The docker CLI exits 127 on "no such file or directory", with dockerd too.
    let out = run(&["--device", "/dev/estiba-nope", "busybox", "true"]);
    assert_eq!(out.code, 127, "{out}");
    assert!(
        out.stderr.contains(
            "error gathering device information while adding custom device \"/dev/estiba-nope\": no such file or directory"
        ),
        "{out}"
    );
    let body = br#"{"Image":"busybox","HostConfig":{"Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/n","CgroupPermissions":"rwx"}]}}"#;
    let resp = d.api("POST", "/containers/create", Some(body));
    assert_eq!(resp.status, 400);
    assert!(
        String::from_utf8_lossy(&resp.body).contains("/dev/null invalid device mode: rwx"),
        "{}",
        String::from_utf8_lossy(&resp.body)
    );
    let body = br#"{"Image":"busybox","HostConfig":{"DeviceCgroupRules":["c 1:11 rwx"]}}"#;
    let resp = d.api("POST", "/containers/create", Some(body));
    assert_eq!(resp.status, 400);
    assert!(
        String::from_utf8_lossy(&resp.body).contains("invalid device cgroup rule format"),
        "{}",
        String::from_utf8_lossy(&resp.body)
    );
    let left = d.docker(&["ps", "-aq"]);
    assert_eq!(left.ok().stdout, "", "refused creates left containers");

    // No device driver serves --gpus here: dockerd's error, not a container without GPUs.
    let out = run(&["--gpus", "all", "busybox", "true"]);
    assert_eq!(out.code, 125, "{out}");
    assert!(
        out.stderr
            .contains("could not select device driver \"\" with capabilities: [[gpu]]"),
        "{out}"
    );
}

/// `--cgroup-parent`: the container's cgroup goes under the parent in every hierarchy, limits,
/// stats and update follow it there, and removal leaves only the parent.
#[test]
fn cgroup_parent_places_the_container() {
    let d = daemon_with_busybox();
    let parent = format!("estiba-e2e-{}", estiba_e2e::token());
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "parented",
        "--network",
        "none",
        "--cgroup-parent",
        &parent,
        "-m",
        "64m",
        "busybox",
        "sleep",
        "600",
    ]);
    let id = out.ok().stdout.trim().to_owned();
    let leaf = std::path::Path::new("/sys/fs/cgroup/memory")
        .join(&parent)
        .join(&id);
    let limit = |file: &str| std::fs::read_to_string(leaf.join(file)).unwrap_or_default();
    assert_eq!(limit("memory.limit_in_bytes"), "67108864\n");
    let out = d.docker(&["exec", "parented", "cat", "/proc/self/cgroup"]);
    assert!(
        out.ok()
            .stdout
            .contains(&format!(":memory:/{parent}/{id}\n")),
        "{out}"
    );
    let out = d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}",
        "parented",
    ]);
    assert!(out.ok().stdout.trim().ends_with("/ 64MiB"), "{out}");
    d.docker(&["update", "-m", "128m", "--memory-swap", "256m", "parented"])
        .ok();
    assert_eq!(limit("memory.limit_in_bytes"), "134217728\n");
    d.docker(&["rm", "-f", "parented"]).ok();
    assert!(
        wait_until(Duration::from_secs(10), || !leaf.exists()),
        "{} left behind",
        leaf.display()
    );
    // The parent stays, as with dockerd; the test removes it.
    for h in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::remove_dir(h.path().join(&parent));
    }

    let out = d.docker(&[
        "run",
        "--rm",
        "--cgroup-parent",
        "../../escape",
        "busybox",
        "true",
    ]);
    assert_eq!(out.code, 125, "{out}");
    assert!(
        out.stderr.contains("invalid cgroup parent: ../../escape"),
        "{out}"
    );
}

/// A block device of this host, as `/dev/<name>`.
fn some_block_device() -> String {
    std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| format!("/dev/{}", e.file_name().to_string_lossy()))
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| panic!("no block device under /sys/block"))
}

/// Per-device block I/O throttles land in the container's blkio cgroup; what the host's
/// cgroup cannot apply is discarded with dockerd's warning; an unknown device fails the start.
#[test]
fn block_io_throttles() {
    use std::os::unix::fs::MetadataExt;
    let d = daemon_with_busybox();
    let dev = some_block_device();
    let rdev = std::fs::metadata(&dev).map(|m| m.rdev()).unwrap_or(0);
    let numbers = format!("{}:{}", rustix::fs::major(rdev), rustix::fs::minor(rdev));
    let read_bps = format!("{dev}:1mb");
    let write_iops = format!("{dev}:50");
    let out = d.docker(&[
        "run", "--rm", "--network", "none", "--device-read-bps", &read_bps,
        "--device-write-iops", &write_iops, "busybox", "sh", "-c",
        "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device",
    ]);
    assert_eq!(
        out.ok().stdout,
        format!("{numbers} 1048576\n{numbers} 50\n")
    );

    if !std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight_device").exists() {
        let weight = format!("{dev}:200");
        let out = d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--blkio-weight-device",
            &weight,
            "busybox",
            "true",
        ]);
        assert_eq!(
            out.ok().stderr,
            "WARNING: Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.\n"
        );
    }

    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device-read-bps",
        "/dev/estiba-nope:1mb",
        "busybox",
        "true",
    ]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("stat /dev/estiba-nope: no such file or directory"),
        "{out}"
    );
}
