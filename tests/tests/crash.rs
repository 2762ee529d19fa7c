//! A daemon killed with SIGKILL in the middle of a load: after a restart no half image is
//! visible, the image loaded before is intact, and the stray blobs, temp files and snapshots
//! of the interrupted load are collected.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use estiba_e2e::disk;
use estiba_e2e::testimg::{self, ArchiveOptions};
use estiba_e2e::{wait_until, Cli, Daemon};

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
