//! Restart policies, rename, `--init` and stats end to end through the real docker CLI.

use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, wait_until, Daemon};

/// No container, container dir or shim state of this daemon is left.
#[track_caller]
fn assert_clean(d: &Daemon) {
    let out = d.docker(&["ps", "-aq"]);
    out.ok();
    assert!(out.stdout.trim().is_empty(), "containers left: {out}");
    let left = d.leftovers_after(std::time::Duration::from_secs(10));
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// (Status, RestartCount) of a container.
fn state(d: &Daemon, name: &str) -> (String, i64) {
    let v = d.docker(&["inspect", name]).json();
    let s = &v[0]["State"];
    (
        s["Status"].as_str().unwrap_or_default().to_string(),
        v[0]["RestartCount"].as_i64().unwrap_or(-1),
    )
}

#[test]
fn on_failure_restarts_up_to_the_maximum_then_stays_exited() {
    let d = daemon_with_busybox();
    let since = unix_now().to_string();
    let out = d.docker(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:3",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    out.ok();
    // Back-offs of 100, 200 and 400 ms: well within the bound.
    let done = wait_until(Duration::from_secs(30), || {
        state(&d, "flaky") == ("exited".to_string(), 3)
    });
    assert!(done, "never settled: {:?}", state(&d, "flaky"));
    // No fourth restart comes later.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(state(&d, "flaky"), ("exited".to_string(), 3));
    let v = d.docker(&["inspect", "flaky"]).json();
    assert_eq!(v[0]["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(v[0]["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 3);
    assert_eq!(v[0]["State"]["ExitCode"], 1);
    assert_eq!(v[0]["State"]["Restarting"], false);

    let until = (unix_now() + 1).to_string();
    let events = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=flaky",
        "--format",
        "{{.Action}}",
    ]);
    events.ok();
    let actions: Vec<&str> = events.lines();
    let count = |a: &str| actions.iter().filter(|x| x.starts_with(a)).count();
    assert_eq!((count("start"), count("die")), (4, 4), "{actions:?}");

    // A user start resets the count.
    d.docker(&["start", "flaky"]).ok();
    let done = wait_until(Duration::from_secs(30), || {
        state(&d, "flaky") == ("exited".to_string(), 3)
    });
    assert!(done, "{:?}", state(&d, "flaky"));
    d.docker(&["rm", "flaky"]).ok();
    assert_clean(&d);
}

#[test]
fn always_restarts_with_backoff_until_stopped() {
    let d = daemon_with_busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        "busybox",
        "true",
    ])
    .ok();
    // After six quick exits the back-off is 3.2 s: the container sits in "restarting".
    let restarting = |d: &Daemon| {
        let v = d.docker(&["inspect", "loop"]).json();
        v[0]["State"]["Restarting"] == true && v[0]["RestartCount"].as_i64() >= Some(6)
    };
    let restarting_is_running = |d: &Daemon| {
        let v = d.docker(&["inspect", "loop"]).json();
        v[0]["State"]["Status"] == "restarting" && v[0]["State"]["Running"] == true
    };
    assert!(
        wait_until(Duration::from_secs(30), || restarting(&d)),
        "{:?}",
        state(&d, "loop")
    );
    assert!(restarting_is_running(&d));
    let out = d.docker(&["rm", "loop"]);
    out.fails_with(1);
    assert!(
        out.stderr
            .contains("You cannot remove a restarting container"),
        "{out}"
    );
    let ps = d.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.stdout.starts_with("loop Restarting (0) "), "{ps}");

    d.docker(&["stop", "loop"]).ok();
    let (status, count) = state(&d, "loop");
    assert_eq!(status, "exited");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(state(&d, "loop"), ("exited".to_string(), count));

    // A user start resets the count and the back-off.
    d.docker(&["start", "loop"]).ok();
    assert!(state(&d, "loop").1 < count);
    d.docker(&["rm", "-f", "loop"]).ok();
    assert_clean(&d);
}

#[test]
fn policies_on_daemon_start() {
    let mut d = daemon_with_busybox();
    let run = |name: &str, policy: &str| {
        d.docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "busybox",
            "sleep",
            "1000",
        ])
        .ok();
    };
    run("always-stopped", "always");
    run("unless-stopped", "unless-stopped");
    run("unless-running", "unless-stopped");
    run("unless-killed", "unless-stopped");
    run("dies-while-away", "on-failure");
    d.docker(&["stop", "-t", "0", "always-stopped", "unless-stopped"])
        .ok();
    d.docker(&["kill", "unless-killed"]).ok();
    assert!(wait_until(Duration::from_secs(10), || state(
        &d,
        "unless-killed"
    )
    .0 == "exited"));
    // One container's process dies (SIGKILL, exit 137) while the daemon is down: live
    // restore records the exit and its policy restarts it.
    let pid = d
        .docker(&["inspect", "-f", "{{.State.Pid}}", "dies-while-away"])
        .stdout
        .trim()
        .to_string();
    assert!(pid.parse::<u32>().is_ok_and(|p| p > 1), "{pid}");
    let status = d.stop();
    assert!(status.is_some_and(|s| s.success()), "{}", d.log());
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .is_ok_and(|s| s.success());
    assert!(killed);
    assert!(wait_until(Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }));
    d.restart();
    assert!(
        wait_until(Duration::from_secs(30), || state(&d, "always-stopped").0
            == "running"),
        "{:?}\n{}",
        state(&d, "always-stopped"),
        d.log()
    );
    assert_eq!(state(&d, "unless-stopped").0, "exited");
    assert_eq!(state(&d, "unless-killed").0, "exited");
    assert_eq!(state(&d, "unless-running").0, "running");
    assert!(
        wait_until(Duration::from_secs(30), || state(&d, "dies-while-away")
            == ("running".to_string(), 1)),
        "{:?}\n{}",
        state(&d, "dies-while-away"),
        d.log()
    );
    d.docker(&[
        "rm",
        "-f",
        "always-stopped",
        "unless-stopped",
        "unless-running",
        "unless-killed",
        "dies-while-away",
    ])
    .ok();
    assert_clean(&d);
}

/// What a reboot leaves of a daemon's containers: no process, no mount, no cgroup, an empty
/// exec-root (a tmpfs in production); only the data-root survives.
fn simulate_reboot(d: &mut Daemon, ids: &[String]) {
    let mut pids = Vec::new();
    for id in ids {
        let pid = d.docker(&["inspect", "-f", "{{.State.Pid}}", id]).stdout;
        pids.extend(pid.trim().parse::<i32>().ok().filter(|p| *p > 1));
    }
    let state_dirs = std::fs::read_dir(d.exec_root().join("containers"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in &state_dirs {
        if let Ok(p) = std::fs::read_to_string(dir.join("shim.pid")) {
            pids.extend(p.trim().parse::<i32>().ok());
        }
    }
    d.kill9();
    for pid in &pids {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    assert!(wait_until(Duration::from_secs(10), || pids
        .iter()
        .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = d.dir().display().to_string();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&dir))
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in points {
        let _ = std::process::Command::new("umount")
            .args(["-l", m])
            .status();
    }
    for id in ids {
        for c in [
            "memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer",
        ] {
            let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{c}/estiba/{id}"));
        }
    }
    let _ = std::fs::remove_dir_all(d.exec_root());
    std::fs::create_dir_all(d.exec_root()).expect("recreate exec-root");
}

#[test]
fn a_host_reboot_brings_back_always_and_unless_stopped_containers() {
    let mut d = daemon_with_busybox();
    let mut ids = Vec::new();
    for (name, policy) in [
        ("always", "always"),
        ("unless", "unless-stopped"),
        ("plain", "no"),
    ] {
        let out = d.docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "busybox",
            "sleep",
            "1000",
        ]);
        out.ok();
        ids.push(out.stdout.trim().to_string());
    }
    simulate_reboot(&mut d, &ids);
    d.restart();
    for name in ["always", "unless"] {
        assert!(
            wait_until(Duration::from_secs(30), || state(&d, name).0 == "running"),
            "{name}: {:?}\n{}",
            state(&d, name),
            d.log()
        );
        let out = d.docker(&["exec", name, "true"]);
        out.ok();
    }
    // A container without a policy stays down, with the exit code Docker reports after a
    // reboot.
    assert_eq!(state(&d, "plain").0, "exited");
    let code = d.docker(&["inspect", "-f", "{{.State.ExitCode}}", "plain"]);
    assert_eq!(code.stdout.trim(), "255", "{code}\n{}", d.log());
    d.docker(&["rm", "-f", "always", "unless", "plain"]).ok();
    assert_clean(&d);
}

#[test]
fn rename_with_dockers_errors_and_event() {
    let d = daemon_with_busybox();
    d.docker(&["create", "--name", "one", "busybox", "true"])
        .ok();
    d.docker(&["create", "--name", "two", "busybox", "true"])
        .ok();
    let two_id = d.docker(&["inspect", "-f", "{{.Id}}", "two"]).stdout;

    let out = d.docker(&["rename", "one", "two"]);
    out.fails_with(1);
    assert!(
        out.stderr.contains(&format!(
            "Error when allocating new name: Conflict. The container name \"/two\" is already in use by container \"{}\"",
            two_id.trim()
        )),
        "{out}"
    );
    let out = d.api("POST", "/containers/one/rename?name=two", None);
    assert_eq!(out.status, 409);
    let out = d.docker(&["rename", "one", "one"]);
    out.fails_with(1);
    assert!(
        out.stderr
            .contains("Renaming a container with the same name as its current name"),
        "{out}"
    );
    let out = d.docker(&["rename", "one", "b@d"]);
    assert!(
        out.stderr.contains("Invalid container name (/b@d)"),
        "{out}"
    );
    let out = d.docker(&["rename", "nosuch", "x"]);
    assert!(out.stderr.contains("No such container: nosuch"), "{out}");

    let since = unix_now().to_string();
    d.docker(&["rename", "one", "three"]).ok();
    assert_eq!(
        d.docker(&["inspect", "-f", "{{.Name}}", "three"]).stdout,
        "/three\n"
    );
    d.docker(&["inspect", "one"]).fails_with(1);
    let until = (unix_now() + 1).to_string();
    let events = d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.oldName}}",
    ]);
    events.ok();
    assert!(events.lines().contains(&"rename three /one"), "{events}");
    // The estiba CLI says the same.
    let out = d.estiba(&["rename", "three", "two"]);
    out.fails_with(1);
    assert!(
        out.stderr.contains("is already in use by container"),
        "{out}"
    );
    d.estiba(&["rename", "three", "four"]).ok();
    d.docker(&["rm", "two", "four"]).ok();
    assert_clean(&d);
}

#[test]
fn init_runs_docker_init_as_pid_1() {
    let d = daemon_with_busybox();
    let out = d.docker(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,args"]);
    out.ok();
    let pid1 = out
        .lines()
        .into_iter()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_default()
        .to_string();
    assert!(pid1.contains("/sbin/docker-init"), "{out}");
    assert!(
        out.lines()
            .iter()
            .any(|l| l.contains("ps -o pid,args") && l.split_whitespace().next() != Some("1")),
        "{out}"
    );
    // Without --init the command itself is PID 1.
    let out = d.docker(&["run", "--rm", "busybox", "ps", "-o", "pid,args"]);
    out.ok();
    assert!(
        out.lines()
            .iter()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("ps -o pid,args")),
        "{out}"
    );
    assert_clean(&d);
}

#[test]
fn stats_show_the_memory_limit_and_stream_one_frame_per_second() {
    let d = daemon_with_busybox();
    d.docker(&[
        "run", "-d", "--name", "st", "-m", "64m", "busybox", "sleep", "1000",
    ])
    .ok();
    let out = d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        "st",
    ]);
    out.ok();
    let line = out.stdout.trim();
    assert!(line.starts_with("st "), "{out}");
    assert!(line.contains("/ 64MiB"), "{out}");
    assert!(line.ends_with(" 1"), "{out}");

    let resp = d.api("GET", "/containers/st/stats?stream=false", None);
    assert_eq!(resp.status, 200);
    let v = resp.json();
    assert_eq!(v["memory_stats"]["limit"], 64 * 1024 * 1024);
    assert!(v["memory_stats"]["usage"].as_u64().unwrap_or(0) > 0, "{v}");
    assert!(
        v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert!(
        v["cpu_stats"]["online_cpus"].as_u64().unwrap_or(0) >= 1,
        "{v}"
    );
    assert_ne!(v["preread"], "0001-01-01T00:00:00Z", "{v}");
    assert_eq!(v["name"], "/st");
    assert_eq!(v["pids_stats"]["current"], 1);

    // Streaming: a frame at once, then one per second; each preread is the previous read.
    let resp = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "2.5",
            "--unix-socket",
            &d.socket().display().to_string(),
            "http://x/containers/st/stats",
        ])
        .output();
    let resp = resp.unwrap_or_else(|e| panic!("curl: {e}"));
    let frames: Vec<serde_json::Value> = String::from_utf8_lossy(&resp.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!((2..=4).contains(&frames.len()), "{} frames", frames.len());
    assert_eq!(frames[1]["preread"], frames[0]["read"]);

    let out = d.estiba(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}}",
        "st",
    ]);
    out.ok();
    assert!(out.stdout.trim().ends_with("/ 64MiB"), "{out}");

    // The same through runc, and a stopped container's all-zero frame.
    d.docker(&[
        "run",
        "-d",
        "--runtime",
        "runc",
        "--name",
        "st2",
        "-m",
        "32m",
        "busybox",
        "sleep",
        "1000",
    ])
    .ok();
    d.docker(&["create", "--name", "st3", "busybox", "true"])
        .ok();
    let out = d.docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}}",
        "st2",
        "st3",
    ]);
    out.ok();
    let lines = out.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("st2 ") && l.ends_with("/ 32MiB")),
        "{out}"
    );
    assert!(lines.contains(&"st3 0B / 0B"), "{out}");
    let v = d
        .api("GET", "/containers/st3/stats?stream=false", None)
        .json();
    assert_eq!(v["read"], "0001-01-01T00:00:00Z");

    d.docker(&["rm", "-f", "st", "st2", "st3"]).ok();
    let resp = d.api("GET", "/containers/st/stats?stream=false", None);
    assert_eq!(resp.status, 404);
    assert_clean(&d);
}
