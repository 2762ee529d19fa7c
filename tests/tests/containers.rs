//! Containers end to end through the real docker CLI: run, exit codes, ps, logs, stop, rm,
//! name conflicts, inspect, wait, kill, events, prune, live restore after `kill -9` of estibad.

use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, wait_until, Daemon};

/// No container, mount, shim state or cgroup of this daemon is left.
#[track_caller]
fn assert_clean(d: &Daemon) {
    let out = d.docker(&["ps", "-aq"]);
    out.ok();
    assert!(out.stdout.trim().is_empty(), "containers left: {out}");
    let left = d.leftovers_after(std::time::Duration::from_secs(10));
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn cgroup_exists(id: &str) -> bool {
    ["memory", "pids", "cpu", "unified"]
        .iter()
        .any(|c| std::path::Path::new(&format!("/sys/fs/cgroup/{c}/estiba/{id}")).exists())
}

#[test]
fn run_prints_output_and_returns_exit_codes() {
    let d = daemon_with_busybox();
    let out = d.docker(&["run", "--rm", "busybox", "echo", "hi"]);
    out.ok();
    assert_eq!(out.stdout, "hi\n");

    let out = d.docker(&[
        "run",
        "--name",
        "three",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    out.fails_with(3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    let state = d.docker(&["inspect", "three"]).json();
    let s = &state[0]["State"];
    assert_eq!(s["Status"], "exited");
    assert_eq!(s["ExitCode"], 3);
    assert_eq!(s["Running"], false);
    assert_eq!(state[0]["Name"], "/three");
    assert_eq!(state[0]["Path"], "sh");
    assert_eq!(
        state[0]["Config"]["Hostname"].as_str().unwrap(),
        &state[0]["Id"].as_str().unwrap()[..12]
    );
    let logs = d.docker(&["logs", "three"]);
    logs.ok();
    assert_eq!(
        (logs.stdout.as_str(), logs.stderr.as_str()),
        ("out\n", "err\n")
    );
    d.docker(&["rm", "three"]).ok();

    // The runtime's own words reach the user, and the CLI turns them into 127.
    let out = d.docker(&["run", "--rm", "--runtime", "runc", "busybox", "nosuchcmd"]);
    out.fails_with(127);
    assert!(out.stderr.contains("executable file not found"), "{out}");
    assert!(!out.stderr.contains("Error waiting"), "{out}");

    // The container sees its own hostname and is PID 1.
    let out = d.docker(&[
        "run",
        "--rm",
        "--hostname",
        "box",
        "busybox",
        "sh",
        "-c",
        "hostname; echo $$; cat /etc/hostname",
    ]);
    out.ok();
    assert_eq!(out.stdout, "box\n1\nbox\n");
    assert_clean(&d);
}

#[test]
fn run_interactive_feeds_piped_stdin_and_ends_it() {
    let d = daemon_with_busybox();
    // 300 KB: more than a pipe holds, so the shim queues and feeds it as the process reads;
    // `wc -c` only answers once stdin ended after the last byte.
    let input: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let out = d.run_with_stdin(
        estiba_e2e::Cli::Docker,
        &["run", "-i", "--rm", "busybox", "wc", "-c"],
        input,
    );
    out.ok();
    assert_eq!(out.stdout.trim(), "300000", "{out}");
    assert_clean(&d);
}

#[test]
fn detached_container_lifecycle() {
    let d = daemon_with_busybox();
    let id = d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo started; exec sleep 100",
    ]);
    id.ok();
    let id = id.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let ps = d.docker(&["ps", "--format", "{{.Names}} {{.Command}} {{.Status}}"]);
    ps.ok();
    assert!(
        ps.stdout
            .starts_with("web \"sh -c 'echo started; exec sleep 100'\" Up")
            || ps.stdout.starts_with("web \"sh -c"),
        "{ps}"
    );
    assert!(cgroup_exists(&id), "no cgroup for {id}");

    // A taken name is Docker's 409.
    let out = d.docker(&["run", "-d", "--name", "web", "busybox", "true"]);
    out.fails_with(125);
    assert!(out.stderr.contains(&format!("Conflict. The container name \"/web\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")), "{out}");

    assert!(wait_until(Duration::from_secs(10), || d
        .docker(&["logs", "web"])
        .stdout
        == "started\n"));

    // rm of a running container needs -f.
    let out = d.docker(&["rm", "web"]);
    out.fails_with(1);
    assert!(out.stderr.contains("cannot remove container \"/web\": container is running: stop the container before removing or force remove"), "{out}");

    let out = d.docker(&["stop", "-t", "1", "web"]);
    out.ok();
    assert_eq!(out.stdout, "web\n");
    let s = d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(s.stdout.trim(), "exited 137");
    assert!(!cgroup_exists(&id), "cgroup of {id} left after stop");
    let out = d.docker(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(out.stdout.starts_with("web Exited (137) "), "{out}");
    let out = d.docker(&["kill", "web"]);
    out.fails_with(1);
    assert!(
        out.stderr.contains(&format!(
            "Cannot kill container: web: container {id} is not running"
        )),
        "{out}"
    );

    // start again, then rm -f while it runs.
    d.docker(&["start", "web"]).ok();
    let s = d.docker(&["inspect", "-f", "{{.State.Running}}", "web"]);
    assert_eq!(s.stdout.trim(), "true");
    d.docker(&["rm", "-f", "web"]).ok();
    assert!(!cgroup_exists(&id));
    let out = d.docker(&["container", "inspect", "web"]);
    out.fails_with(1);
    assert!(out.stderr.contains("No such container: web"), "{out}");
    assert_clean(&d);
}

#[test]
fn wait_kill_events_and_prune() {
    let d = daemon_with_busybox();
    let id = d.docker(&["run", "-d", "busybox", "sleep", "100"]);
    id.ok();
    let id = id.stdout.trim().to_string();
    let name = d
        .docker(&["inspect", "-f", "{{.Name}}", &id])
        .stdout
        .trim()
        .trim_start_matches('/')
        .to_string();
    assert!(name.contains('_'), "generated name {name}");
    let waiter = d.command(estiba_e2e::Cli::Docker, &["wait", &id]);
    let waiter = std::thread::spawn(move || estiba_e2e::run_command(waiter, None));
    std::thread::sleep(Duration::from_millis(300));
    d.docker(&["kill", "-s", "KILL", &id]).ok();
    let waited = waiter.join().unwrap();
    waited.ok();
    assert_eq!(waited.stdout, "137\n");
    let out = d.docker(&["kill", "-s", "NOPE", &id]);
    assert!(out.code != 0);

    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .saturating_add(1)
        .to_string();
    let events = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=container",
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}",
    ]);
    events.ok();
    let actions: Vec<&str> = events.lines();
    assert!(actions.contains(&"create "), "{events}");
    assert!(actions.contains(&"start "), "{events}");
    assert!(actions.contains(&"die 137"), "{events}");

    d.docker(&["create", "--name", "unstarted", "busybox", "true"])
        .ok();
    let info = d.docker(&["info", "--format", "{{.Containers}} {{.ContainersStopped}}"]);
    assert_eq!(info.stdout.trim(), "2 2");
    // An image in use by a container cannot be removed without -f.
    let out = d.docker(&["rmi", "busybox"]);
    out.fails_with(1);
    assert!(
        out.stderr
            .contains("(must be forced) - image is being used by stopped container "),
        "{out}"
    );
    let out = d.docker(&["container", "prune", "-f"]);
    out.ok();
    assert!(out.stdout.contains(&id), "{out}");
    assert_clean(&d);
}

#[test]
fn containers_survive_a_daemon_crash() {
    let mut d = daemon_with_busybox();
    let id = d.docker(&[
        "run",
        "-d",
        "--name",
        "lr",
        "busybox",
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.1; done",
    ]);
    id.ok();
    let pid = d
        .docker(&["inspect", "-f", "{{.State.Pid}}", "lr"])
        .stdout
        .trim()
        .to_string();
    assert!(pid.parse::<u32>().unwrap() > 1);
    // One that exits while the daemon is away: its real exit code is found afterwards.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "short",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 7",
    ])
    .ok();
    d.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    d.restart();
    let after = d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "lr"]);
    assert_eq!(after.stdout.trim(), format!("running {pid}"));
    let lines = |d: &Daemon| d.docker(&["logs", "lr"]).stdout.lines().count();
    let before = lines(&d);
    assert!(
        wait_until(Duration::from_secs(10), || lines(&d) > before + 2),
        "log stopped growing"
    );
    assert!(wait_until(Duration::from_secs(10), || {
        d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "short",
        ])
        .stdout
        .trim()
            == "exited 7"
    }));
    d.docker(&["stop", "-t", "1", "lr"]).ok();
    let s = d.docker(&["inspect", "-f", "{{.State.Status}}", "lr"]);
    assert_eq!(s.stdout.trim(), "exited");
    d.docker(&["rm", "lr", "short"]).ok();
    assert_clean(&d);
}
