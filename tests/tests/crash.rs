//! Crashes: a daemon killed with SIGKILL in the middle of a load (after a restart no half
//! image is visible, the image loaded before is intact, and the stray blobs, temp files and
//! snapshots of the interrupted load are collected), and a shim killed with SIGKILL.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use estiba_e2e::disk;
use estiba_e2e::testimg::{self, ArchiveOptions};
use estiba_e2e::{daemon_with_busybox, shims_of, wait_until, Cli, Daemon};

#[test]
fn sigkill_during_load_leaves_no_image_and_no_strays() {
    let big = testimg::big().expect("big image");
    let tarball =
        testimg::archive::archive_bytes(&[&big], ArchiveOptions::default()).expect("big tarball");
    drop(big);
    let bb = testimg::busybox().expect("busybox");

    let mut d = Daemon::start();
    d.load(&[&bb]);
    let content_before = disk::walk(&d.content_dir());
    let snapshots_before = disk::walk(&d.snapshots_dir());
    let root_bytes_before = disk::disk_usage_bytes(&d.data_root());

    // Stream the tarball slowly through docker load's stdin.
    let mut load = d
        .command(Cli::Docker, &["load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning docker load");
    let mut stdin = load.stdin.take().expect("docker load stdin");
    let chunk = 256 * 1024;
    let mut sent = 0;
    // First 60% at full speed, then trickle until the daemon has written something to disk.
    let fast = tarball.len() * 6 / 10;
    while sent < fast {
        let end = (sent + chunk).min(fast);
        if stdin.write_all(&tarball[sent..end]).is_err() {
            break;
        }
        sent = end;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && disk::disk_usage_bytes(&d.data_root()) < root_bytes_before + 4 * 1024 * 1024
        && sent < tarball.len() - chunk
    {
        if stdin.write_all(&tarball[sent..sent + chunk]).is_err() {
            break;
        }
        sent += chunk;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        sent < tarball.len(),
        "the whole tarball went through before the kill"
    );
    let grown = disk::disk_usage_bytes(&d.data_root()).saturating_sub(root_bytes_before);
    eprintln!(
        "killing estibad after {sent} of {} bytes; the data-root grew by {grown} bytes",
        tarball.len()
    );
    d.kill9();
    drop(stdin);
    let status = estiba_e2e::wait_bounded(&mut load, Duration::from_secs(30))
        .expect("docker load did not end after the daemon died");
    assert!(
        !status.success(),
        "docker load succeeded with a dead daemon"
    );

    d.restart();
    // No half-visible image: only busybox.
    assert_eq!(d.image_ids(), [bb.id()]);
    assert_eq!(d.image_tags(), ["busybox:latest"]);
    let out = d.docker(&["image", "inspect", "estiba/big"]);
    out.fails_with(1);
    let out = d.docker(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    out.ok();
    assert_eq!(out.stdout.trim(), bb.id());

    // The interrupted load's blobs, temp files and snapshots are gone.
    let collected = wait_until(Duration::from_secs(10), || {
        disk::walk(&d.content_dir()) == content_before
            && disk::walk(&d.snapshots_dir()) == snapshots_before
    });
    let content_now = disk::walk(&d.content_dir());
    let snapshots_now = disk::walk(&d.snapshots_dir());
    assert!(
        collected,
        "strays after restart\ncontent: {} files before, {} now: added {:?}\nsnapshots: {} before, {} now: added {:?}",
        content_before.len(),
        content_now.len(),
        content_now.difference(&content_before).take(20).collect::<Vec<_>>(),
        snapshots_before.len(),
        snapshots_now.len(),
        snapshots_now.difference(&snapshots_before).take(20).collect::<Vec<_>>(),
    );

    // And the same tarball loads completely afterwards.
    let out = d.run_with_stdin(Cli::Docker, &["load"], tarball);
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        "Loaded image: estiba/big:latest",
        "{out}"
    );
}

/// The (single) shim process of container `id`.
fn shim_pid(id: &str) -> i32 {
    let shims = shims_of(std::path::Path::new(id));
    assert_eq!(shims.len(), 1, "shims of {id}: {shims:?}");
    shims[0]
        .0
        .parse()
        .unwrap_or_else(|e| panic!("pid {:?}: {e}", shims[0].0))
}

fn kill9(pid: i32) {
    let pid = rustix::process::Pid::from_raw(pid).unwrap_or_else(|| panic!("pid {pid}"));
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)
        .unwrap_or_else(|e| panic!("kill -9 {pid:?}: {e}"));
}

/// Whether `pid` is gone or a zombie (this machine's PID 1 may reap late).
fn dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// A shim killed with SIGKILL takes its container with it, as containerd does when a shim
/// dies: the container shows Exited (137), nothing of it keeps running or stays behind, and a
/// restart policy brings it back.
#[test]
fn a_killed_shim_ends_its_container_with_137_and_leaves_nothing() {
    let d = daemon_with_busybox();
    let out = d.docker(&["run", "-d", "--network", "none", "busybox", "sleep", "600"]);
    let id = out.ok().stdout.trim().to_owned();
    let init = d.docker(&["inspect", "-f", "{{.State.Pid}}", &id]);
    let init = init.ok().stdout.trim().to_owned();

    kill9(shim_pid(&id));
    let status = || {
        let out = d.docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &id,
        ]);
        out.stdout.trim().to_owned()
    };
    assert!(
        wait_until(Duration::from_secs(10), || status() == "exited 137"),
        "after the shim's death: {}\n--- log ---\n{}",
        status(),
        d.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || dead(&init)),
        "the container's init {init} outlived its shim"
    );
    d.docker(&["rm", &id]).ok();
    let left = d.leftovers_after(Duration::from_secs(10));
    assert!(left.is_empty(), "left behind: {left:?}");

    // With a restart policy the container comes back, under a new shim.
    let out = d.docker(&[
        "run",
        "-d",
        "--restart",
        "always",
        "--network",
        "none",
        "busybox",
        "sleep",
        "600",
    ]);
    let id = out.ok().stdout.trim().to_owned();
    let first = shim_pid(&id);
    kill9(first);
    let back = || {
        let out = d.docker(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", &id]);
        out.stdout.trim() == "running 1"
            && shims_of(std::path::Path::new(&id))
                .iter()
                .any(|(pid, _)| *pid != first.to_string())
    };
    assert!(
        wait_until(Duration::from_secs(15), back),
        "not restarted: {}",
        d.docker(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}}", &id])
    );
    d.docker(&["rm", "-f", &id]).ok();
}
