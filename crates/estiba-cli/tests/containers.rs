//! End to end: the container commands of the `estiba` binary against a real `estibad` (from the
//! workspace's target dir) on a temporary socket and data-root, with an offline busybox image.
//! Needs root (namespaces, cgroups, overlay mounts) and the daemon's container API (issue 3).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{estiba, ok, start_daemon};

/// How long a condition (a container state) may take to become true.
const CONDITION_TIMEOUT: Duration = Duration::from_secs(20);

fn load_busybox(host: &str, dir: &Path) {
    let img = estiba_testimg::busybox()
        .unwrap_or_else(|e| panic!("making busybox: {e}"))
        .with_tags(["busybox:latest"]);
    let path = dir.join("busybox.tar");
    let file =
        std::fs::File::create(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    estiba_testimg::write_archive(&[&img], estiba_testimg::ArchiveOptions::default(), file)
        .unwrap_or_else(|e| panic!("writing archive: {e}"));
    ok(host, &["load", "-q", "-i", &path.to_string_lossy()]);
}

/// Polls `estiba args` until its output satisfies `pred` (bounded).
#[track_caller]
fn wait_for(host: &str, args: &[&str], pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + CONDITION_TIMEOUT;
    loop {
        let o = estiba(host, args);
        if o.code == 0 && pred(&o.stdout) {
            return o.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "estiba {args:?} never matched: {:?} {:?}",
            o.stdout,
            o.stderr
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn container_commands_against_estibad() {
    let d = start_daemon();
    let h = d.host.as_str();
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    load_busybox(h, work.path());

    // The daemon must implement the container API; a 501 means issue 3's daemon side is missing.
    let probe = estiba(h, &["create", "--network", "none", "busybox", "true"]);
    assert_eq!(
        probe.code, 0,
        "POST /containers/create is not available yet: {}",
        probe.stderr
    );
    let probe_id = probe.stdout.trim().to_owned();
    assert_eq!(probe_id.len(), 64, "{probe_id}");

    // run: output, the container's exit status, 125/126/127.
    let o = estiba(
        h,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    let o = estiba(
        h,
        &["run", "--rm", "--network", "none", "busybox", "nosuchcmd"],
    );
    assert_eq!(o.code, 127, "{}", o.stderr);
    assert!(
        o.stderr.starts_with("estiba: Error response from daemon: "),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .ends_with("\n\nRun 'estiba run --help' for more information\n"),
        "{}",
        o.stderr
    );
    let o = estiba(h, &["run", "--rm", "--network", "none", "busybox", "/etc"]);
    assert_eq!(o.code, 126, "{}", o.stderr);
    let o = estiba(h, &["run", "--rm", "nosuchimage:1", "true"]);
    assert_eq!(o.code, 125, "{}", o.stderr);
    assert!(
        o.stderr
            .starts_with("Unable to find image 'nosuchimage:1' locally\n"),
        "{}",
        o.stderr
    );
    let o = estiba(h, &["run", "--cpus", "abc", "busybox"]);
    assert_eq!(o.code, 125);
    assert!(o.stderr.starts_with(
        "invalid argument \"abc\" for \"--cpus\" flag: failed to parse abc as a rational number\n"
    ));

    // run -d, ps, logs, exec, top, stop, wait, rm.
    let id = ok(
        h,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "echo hello; echo oops >&2; while :; do sleep 1; done",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let ps = wait_for(h, &["ps"], |s| s.contains("Up "));
    let head = ps.lines().next().unwrap_or("");
    assert!(
        head.starts_with("CONTAINER ID   IMAGE     COMMAND                  CREATED "),
        "{ps}"
    );
    assert!(head.ends_with("   PORTS     NAMES"), "{ps}");
    let row = ps
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no row in {ps}"));
    assert!(
        row.starts_with(&format!(
            "{}   busybox   \"sh -c 'echo hello; …\"   ",
            &id[..12]
        )),
        "{ps}"
    );
    assert!(row.ends_with("   web"), "{ps}");
    assert_eq!(ok(h, &["ps", "-q"]), format!("{}\n", &id[..12]));
    assert_eq!(
        ok(h, &["ps", "--format", "{{.Names}} {{.State}}"]),
        "web running\n"
    );
    // The container may not have printed yet when `run -d` returns: wait (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut logs = estiba(h, &["logs", "web"]);
    while logs.stderr.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        logs = estiba(h, &["logs", "web"]);
    }
    assert_eq!(
        (logs.stdout.as_str(), logs.stderr.as_str()),
        ("hello\n", "oops\n")
    );
    let o = estiba(h, &["exec", "web", "sh", "-c", "echo ex; exit 5"]);
    assert_eq!((o.code, o.stdout.as_str()), (5, "ex\n"));
    assert!(ok(h, &["top", "web"]).starts_with("UID "));
    assert_eq!(ok(h, &["stop", "-t", "1", "web"]), "web\n");
    assert_eq!(ok(h, &["wait", "web"]), "137\n");
    assert!(ok(h, &["ps", "-a", "--format", "{{.Status}}"]).contains("Exited (137)"));
    let o = estiba(h, &["stop", "nosuch"]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (1, "Error response from daemon: No such container: nosuch\n")
    );
    assert_eq!(ok(h, &["rm", "web"]), "web\n");

    // create + start -a: the container's status is ours.
    ok(
        h,
        &[
            "create",
            "--network",
            "none",
            "--name",
            "once",
            "busybox",
            "sh",
            "-c",
            "echo started; exit 2",
        ],
    );
    let o = estiba(h, &["start", "-a", "once"]);
    assert_eq!((o.code, o.stdout.as_str()), (2, "started\n"));

    // container prune removes the stopped ones.
    let pruned = ok(h, &["container", "prune", "-f"]);
    assert!(pruned.starts_with("Deleted Containers:\n"), "{pruned}");
    assert!(pruned.contains(&probe_id), "{pruned}");
    assert_eq!(ok(h, &["ps", "-aq"]), "");
}
