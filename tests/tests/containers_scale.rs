//! Scale and leaks: 200 `docker run --rm busybox true` (in parallel batches) plus 20 detached
//! containers force-removed leave no mount, cgroup, shim, pty, state file or snapshot behind, and
//! estibad's open file descriptors come back to about where they started.

use std::path::{Path, PathBuf};
use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, disk, shims_of, wait_until, Daemon};

/// `docker run --rm` containers, run `BATCH` at a time.
const RUNS: usize = 200;
/// Detached containers (every fourth with a pty) removed with one `docker rm -f`.
const DETACHED: usize = 20;
const BATCH: usize = 8;
/// How many more fds estibad may hold at the end than before the runs (lazily opened files,
/// pooled connections); a per-container leak would show as hundreds.
const FD_SLACK: usize = 16;
/// How long teardown may take to settle after the last command returned.
const SETTLE: Duration = Duration::from_secs(20);

/// Entries of `dir` (none when it does not exist).
fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn fd_count(pid: u32) -> usize {
    entries(Path::new(&format!("/proc/{pid}/fd"))).len()
}

/// Entries of the host's /dev/pts. The runtime allocates a container's pty in the container's own
/// devpts instance, so this only catches ptys opened on the host (the daemon's or a shim's); a
/// leaked container pty master shows in the fd counts instead.
fn pts_count() -> usize {
    entries(Path::new("/dev/pts")).len()
}

/// Cgroup directories left for `ids` in any controller hierarchy.
fn cgroups_of(ids: &[String]) -> Vec<PathBuf> {
    let hierarchies = entries(Path::new("/sys/fs/cgroup"));
    let mut left = Vec::new();
    for id in ids {
        for h in &hierarchies {
            let dir = h.join("estiba").join(id);
            if dir.exists() {
                left.push(dir);
            }
        }
    }
    left
}

/// Everything this daemon left behind, one line per leak; empty when clean.
fn leaks(d: &Daemon, ids: &[String], pts_before: usize) -> Vec<String> {
    let mut out = Vec::new();
    for m in disk::mounts_under(d.dir()) {
        out.push(format!("mount {}", m.display()));
    }
    for c in cgroups_of(ids) {
        out.push(format!("cgroup {}", c.display()));
    }
    for (pid, cmdline) in shims_of(d.dir()) {
        out.push(format!("shim {pid}: {cmdline}"));
    }
    for dir in [
        d.data_root().join("containers"),
        d.exec_root().join("containers"),
    ] {
        for e in entries(&dir) {
            out.push(format!("state {}", e.display()));
        }
    }
    for e in d.runtime_state_left() {
        out.push(format!("runtime state {}", e.display()));
    }
    for e in entries(&d.snapshots_dir()) {
        let is_container = e
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("c-"));
        if is_container {
            out.push(format!("snapshot {}", e.display()));
        }
    }
    let pts = pts_count();
    if pts > pts_before {
        out.push(format!("/dev/pts: {pts} entries, {pts_before} before"));
    }
    out
}

/// Runs `jobs` on up to `BATCH` threads at a time; returns what each returned, in order.
fn in_batches<T: Send>(jobs: Vec<Box<dyn FnOnce() -> T + Send + '_>>) -> Vec<T> {
    let mut out = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        let batch: Vec<_> = jobs.by_ref().take(BATCH).collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = batch.into_iter().map(|job| s.spawn(job)).collect();
            for h in handles {
                out.push(h.join().unwrap_or_else(|_| panic!("a run thread panicked")));
            }
        });
    }
    out
}

#[test]
fn two_hundred_containers_leave_nothing_behind() {
    let d = daemon_with_busybox();
    let pid = d.pid().unwrap_or_else(|| panic!("estibad is not running"));
    // One run first so lazily opened state (databases, runtime registry) is in the baseline.
    d.docker(&["run", "--rm", "busybox", "true"]).ok();
    let fds_before = fd_count(pid);
    let pts_before = pts_count();

    let cid_dir = d.dir().join("cids");
    std::fs::create_dir_all(&cid_dir).unwrap_or_else(|e| panic!("creating {cid_dir:?}: {e}"));
    let d_ref = &d;
    let runs: Vec<Box<dyn FnOnce() -> String + Send + '_>> = (0..RUNS)
        .map(|i| {
            let cidfile = cid_dir.join(format!("run-{i}"));
            Box::new(move || {
                let cidfile_arg = cidfile.to_string_lossy().into_owned();
                let out =
                    d_ref.docker(&["run", "--rm", "--cidfile", &cidfile_arg, "busybox", "true"]);
                out.ok();
                std::fs::read_to_string(&cidfile)
                    .unwrap_or_else(|e| panic!("reading {cidfile:?}: {e}"))
                    .trim()
                    .to_owned()
            }) as Box<dyn FnOnce() -> String + Send + '_>
        })
        .collect();
    let mut ids = in_batches(runs);

    let detached: Vec<Box<dyn FnOnce() -> String + Send + '_>> = (0..DETACHED)
        .map(|i| {
            Box::new(move || {
                let mut args = vec!["run", "-d"];
                if i % 4 == 0 {
                    args.push("-t");
                }
                args.extend(["busybox", "sleep", "600"]);
                let out = d_ref.docker(&args);
                out.ok();
                out.stdout.trim().to_owned()
            }) as Box<dyn FnOnce() -> String + Send + '_>
        })
        .collect();
    let running = in_batches(detached);
    assert_eq!(d.docker(&["ps", "-q"]).lines().len(), DETACHED);
    assert!(
        !cgroups_of(&running).is_empty(),
        "running containers should have cgroups (the cgroup check would see nothing)"
    );
    assert_eq!(
        shims_of(d.dir()).len(),
        DETACHED,
        "one shim per running container"
    );
    let mut rm = vec!["rm", "-f"];
    rm.extend(running.iter().map(String::as_str));
    d.docker(&rm).ok();
    ids.extend(running);

    let out = d.docker(&["ps", "-aq"]);
    out.ok();
    assert!(out.stdout.trim().is_empty(), "containers left: {out}");
    let mut left = Vec::new();
    let settled = wait_until(SETTLE, || {
        left = leaks(&d, &ids, pts_before);
        left.is_empty()
    });
    assert!(
        settled,
        "left behind after {SETTLE:?}:\n{}",
        left.join("\n")
    );

    let mut fds_after = fd_count(pid);
    wait_until(SETTLE, || {
        fds_after = fd_count(pid);
        fds_after <= fds_before + FD_SLACK
    });
    eprintln!("estibad fds: {fds_before} before, {fds_after} after");
    assert!(
        fds_after <= fds_before + FD_SLACK,
        "estibad holds {fds_after} fds, {fds_before} before the runs"
    );
}
