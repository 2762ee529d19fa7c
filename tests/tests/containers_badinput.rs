//! Bad input for containers: each case gives dockerd's error (checked against a reference
//! dockerd 20.10) and leaves no half-created container, container dir, snapshot or mount,
//! except where Docker itself leaves a created container (a start that fails, e.g. a bad user).
//! Also daemon.json's `runtimes` and `default-runtime` keys.

use estiba_e2e::{daemon_with_busybox, disk, testimg, wait_until, Cli, Daemon};

/// Names of all containers, sorted.
fn names(d: &Daemon) -> Vec<String> {
    let out = d.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    out.ok();
    let mut names: Vec<String> = out.lines().iter().map(|l| l.trim().to_string()).collect();
    names.sort();
    names
}

/// Entries of `dir` (none when it does not exist).
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Container dirs and `c-*` snapshot paths anywhere under the data-root and exec-root.
fn footprint(d: &Daemon) -> Vec<String> {
    let mut v = entries(&d.data_root().join("containers"));
    v.extend(entries(&d.exec_root().join("containers")));
    v.extend(
        disk::walk(&d.snapshots_dir())
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("c-"))
            })
            .map(|p| p.display().to_string()),
    );
    v.extend(
        disk::mounts_under(d.dir())
            .into_iter()
            .map(|p| format!("mount {}", p.display())),
    );
    v.sort();
    v
}

/// Runs `args` with both CLIs; each must fail with `code` and print `wording` on stderr, and
/// leave the set of containers and their on-disk footprint as they were.
#[track_caller]
fn refused(d: &Daemon, args: &[&str], code: i32, wording: &str) {
    for cli in [Cli::Docker, Cli::Estiba] {
        let before = (names(d), footprint(d));
        let out = d.run(cli, args);
        out.fails_with(code);
        assert!(
            out.stderr.contains(wording),
            "expected {wording:?} on stderr: {out}"
        );
        assert_eq!((names(d), footprint(d)), before, "left behind by {out}");
    }
}

#[test]
fn bad_create_input_is_refused_and_leaves_nothing() {
    let d = daemon_with_busybox();
    // dockerd: `docker: Error response from daemon: Invalid signal: NOPE`, 125.
    refused(
        &d,
        &["run", "--stop-signal", "NOPE", "busybox", "true"],
        125,
        "Error response from daemon: Invalid signal: NOPE",
    );
    // Current dockerd's wording (issue 3); the 20.10 reference says `Unknown runtime specified
    // nope` instead. Either way 125 and nothing created.
    refused(
        &d,
        &["run", "--runtime", "nope", "busybox", "true"],
        125,
        "Error response from daemon: unknown or invalid runtime name: nope",
    );
    refused(
        &d,
        &["run", "-w", "rel", "busybox", "true"],
        125,
        "the working directory 'rel' is invalid, it needs to be an absolute path",
    );
    refused(
        &d,
        &["run", "--name", "a/b", "busybox", "true"],
        125,
        "Invalid container name (a/b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
    );
    // The docker CLI refuses `-m -1` itself, before any request.
    let out = d.docker(&["run", "-m", "-1", "busybox", "true"]);
    out.fails_with(125);
    assert!(out.stderr.contains("invalid size: '-1'"), "{out}");
    // A missing image: dockerd tries to pull it; with no registry reachable the pull fails.
    refused(
        &d,
        &["run", "nosuch:1"],
        125,
        "Unable to find image 'nosuch:1' locally",
    );
    assert!(names(&d).is_empty());
    assert!(footprint(&d).is_empty(), "{:?}", footprint(&d));
}

#[test]
fn a_duplicate_name_is_a_conflict_and_keeps_the_first() {
    let d = daemon_with_busybox();
    d.docker(&["create", "--name", "dup", "busybox", "true"])
        .ok();
    let first = d.docker(&["inspect", "-f", "{{.Id}}", "dup"]);
    first.ok();
    let id = first.stdout.trim().to_string();
    let wording = format!(
        "Error response from daemon: Conflict. The container name \"/dup\" is already in use by \
         container \"{id}\". You have to remove (or rename) that container to be able to reuse \
         that name."
    );
    // docker 28's `create` exits 1 here (checked against the reference dockerd), and so
    // does estiba's.
    for cli in [Cli::Docker, Cli::Estiba] {
        let out = d.run(cli, &["create", "--name", "dup", "busybox", "true"]);
        out.fails_with(1);
        assert!(out.stderr.contains(&wording), "{out}");
    }
    assert_eq!(names(&d), vec!["dup".to_string()]);
    d.docker(&["rm", "dup"]).ok();
    assert!(footprint(&d).is_empty(), "{:?}", footprint(&d));
}

#[test]
fn unknown_signals_are_refused() {
    let d = daemon_with_busybox();
    d.docker(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "60"])
        .ok();
    for cli in [Cli::Docker, Cli::Estiba] {
        let out = d.run(cli, &["kill", "-s", "NOPE", "sleeper"]);
        out.fails_with(1);
        assert!(
            out.stderr
                .contains("Error response from daemon: Invalid signal: NOPE"),
            "{out}"
        );
        // API 1.42+ dockerd parses `stop`'s signal first: 400 `Invalid signal: NOPE` (the 1.41
        // reference has no signal parameter, so the CLI drops it there).
        let out = d.run(cli, &["stop", "-s", "NOPE", "sleeper"]);
        out.fails_with(1);
        assert!(out.stderr.contains("Invalid signal: NOPE"), "{out}");
    }
    let state = d.docker(&["inspect", "-f", "{{.State.Status}}", "sleeper"]);
    assert_eq!(state.stdout.trim(), "running", "{state}");
    d.docker(&["rm", "-f", "sleeper"]).ok();
    assert!(footprint(&d).is_empty(), "{:?}", footprint(&d));
}

#[test]
fn a_bad_user_fails_at_start_and_leaves_a_created_container() {
    let d = daemon_with_busybox();
    // dockerd 20.10: `docker run -u nosuchuser` exits 125 with the message below and, like
    // any failed start, leaves the container in state "created".
    for (cli, name) in [(Cli::Docker, "baduser1"), (Cli::Estiba, "baduser2")] {
        let out = d.run(
            cli,
            &["run", "--name", name, "-u", "nosuchuser", "busybox", "true"],
        );
        out.fails_with(125);
        assert!(
            out.stderr
                .contains("unable to find user nosuchuser: no matching entries in passwd file"),
            "{out}"
        );
        let state = d.docker(&["inspect", "-f", "{{.State.Status}}", name]);
        assert_eq!(state.stdout.trim(), "created", "{state}");
    }
    d.docker(&["rm", "baduser1", "baduser2"]).ok();
    assert!(names(&d).is_empty());
    assert!(footprint(&d).is_empty(), "{:?}", footprint(&d));
}

#[test]
fn bad_create_bodies_are_refused() {
    let d = daemon_with_busybox();
    let create = |body: &[u8]| d.api("POST", "/containers/create", Some(body));
    // dockerd: 400 `Minimum memory limit allowed is 6MB`.
    let r = create(br#"{"Image":"busybox","HostConfig":{"Memory":-5}}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.message().as_deref(),
        Some("Minimum memory limit allowed is 6MB")
    );
    // Malformed JSON: dockerd 20.10 answers 500 `unexpected EOF`; newer ones 400. A client
    // error is the right answer.
    let r = create(br#"{"Image":"busybox","#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.message().is_some_and(|m| !m.is_empty()), "{}", r.text());
    // An oversized body is refused before it is parsed.
    let mut big = br#"{"Image":"busybox","Cmd":[""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024 * 1024));
    big.extend(br#""]}"#);
    let r = create(&big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(names(&d).is_empty());
    assert!(footprint(&d).is_empty(), "{:?}", footprint(&d));
}

#[test]
fn runtimes_from_daemon_json_run_containers() {
    let conf = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = conf.path().join("daemon.json");
    std::fs::write(
        &file,
        r#"{"runtimes": {"myrunc": {"path": "/usr/sbin/runc", "runtimeArgs": ["--log-format", "json"]}}, "default-runtime": "myrunc"}"#,
    )
    .unwrap_or_else(|e| panic!("write daemon.json: {e}"));
    let file = file.display().to_string();
    let d = Daemon::start_with(&["--config-file", &file]);
    let image = testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&image]);
    for (cli, name, extra) in [
        (Cli::Docker, "viaflag", vec!["--runtime", "myrunc"]),
        (Cli::Estiba, "viadefault", vec![]),
    ] {
        let mut args = vec!["run", "--name", name];
        args.extend(extra);
        args.extend(["busybox", "echo", "hello from myrunc"]);
        let out = d.run(cli, &args);
        out.ok();
        assert_eq!(out.stdout.trim(), "hello from myrunc", "{out}");
        let rt = d.docker(&["inspect", "-f", "{{.HostConfig.Runtime}}", name]);
        assert_eq!(rt.stdout.trim(), "myrunc", "{rt}");
    }
    d.docker(&["rm", "viaflag", "viadefault"]).ok();
    assert!(footprint(&d).is_empty(), "{:?}", footprint(&d));
}

#[test]
fn runtimes_from_flags_run_containers() {
    let d = Daemon::start_with(&[
        "--add-runtime",
        "flagrunc=/usr/sbin/runc",
        "--default-runtime",
        "flagrunc",
    ]);
    let image = testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&image]);
    let out = d.docker(&["run", "--name", "byflag", "busybox", "echo", "via runc"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "via runc", "{out}");
    let rt = d.docker(&["inspect", "-f", "{{.HostConfig.Runtime}}", "byflag"]);
    assert_eq!(rt.stdout.trim(), "flagrunc", "{rt}");
    let info = d.docker(&["info", "-f", "{{.DefaultRuntime}}"]);
    assert_eq!(info.stdout.trim(), "flagrunc", "{info}");
    d.docker(&["rm", "byflag"]).ok();
    assert!(footprint(&d).is_empty(), "{:?}", footprint(&d));
}

#[test]
fn a_runtime_that_is_a_wrapper_script_runs_containers() {
    // Wrappers around runc are common (they add flags or hooks); the shim runs them by path.
    let dir = tempfile::tempdir().expect("tempdir");
    let (wrapper, marker) = estiba_e2e::runtime_wrapper(
        dir.path(),
        "runc-wrapper",
        std::path::Path::new("/usr/sbin/runc"),
    );
    let d = Daemon::start_with(&["--add-runtime", &format!("wrapped={}", wrapper.display())]);
    let image = testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&image]);
    let out = d.docker(&[
        "run",
        "--rm",
        "--runtime",
        "wrapped",
        "busybox",
        "echo",
        "wrapped",
    ]);
    out.ok();
    assert_eq!(out.stdout.trim(), "wrapped", "{out}");
    let calls = std::fs::read_to_string(&marker).expect("the wrapper ran");
    // A start is one `run --detach` (create and start in one invocation, as runc offers).
    assert!(
        calls.lines().any(|l| l.contains(" run --detach ")),
        "{calls}"
    );
    // --rm answers before the removal has unmounted and deleted everything.
    assert!(
        wait_until(std::time::Duration::from_secs(10), || footprint(&d)
            .is_empty()),
        "{:?}",
        footprint(&d)
    );
}
