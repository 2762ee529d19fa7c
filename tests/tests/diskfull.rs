//! A full data-root disk: each write path (image load, container create, a container's own
//! writes, its json-file log) fails with a clear error, keeps nothing half-written, and the
//! daemon, its store and its running containers carry on once there is space again.
//!
//! The data-root is a small tmpfs of its own (mounted outside the daemon's temp dir, so the
//! harness's leftover-mount check still sees only what estibad mounted).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use estiba_e2e::{build, disk, testimg, wait_until, Daemon};

/// A tmpfs of `mib` MiB on a temp dir, unmounted when dropped (after the daemon, which must be
/// declared after it).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(mib: u64) -> SmallDisk {
        let dir = tempfile::Builder::new()
            .prefix("estiba-e2e-small-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let data = std::ffi::CString::new(format!("size={mib}m,mode=0711"))
            .unwrap_or_else(|e| panic!("mount options: {e}"));
        rustix::mount::mount(
            "tmpfs",
            dir.path(),
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            data.as_c_str(),
        )
        .unwrap_or_else(|e| panic!("mounting a {mib} MiB tmpfs: {e}"));
        SmallDisk { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Bytes still free on the tmpfs.
    fn free(&self) -> u64 {
        let st = rustix::fs::statvfs(self.dir.path()).unwrap_or_else(|e| panic!("statvfs: {e}"));
        st.f_bavail * st.f_frsize
    }

    /// Writes a filler file until the disk is full and returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("filler: {e}"));
        let chunk = vec![0x5au8; 256 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // A partial write can leave a last few bytes of room: fill them one by one.
        while file.write(&[0x5a]).is_ok_and(|n| n == 1) {}
        assert!(
            self.free() < 4096,
            "disk not full: {} bytes free",
            self.free()
        );
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.dir.path(), rustix::mount::UnmountFlags::DETACH);
    }
}

/// A daemon whose data-root is on `disk`, with busybox loaded.
fn daemon_on(disk: &SmallDisk) -> Daemon {
    let root = disk.root();
    let root = root.to_string_lossy();
    let d = Daemon::start_with(&["--data-root", &root]);
    let busybox = testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&busybox]);
    d
}

/// Waits until the free space is back to at least `before - slack` (removals may finish after
/// the answer) and returns the free space then.
#[track_caller]
fn assert_space_back(disk: &SmallDisk, before: u64, what: &str) {
    let slack = 512 * 1024;
    let back = wait_until(Duration::from_secs(10), || disk.free() + slack >= before);
    assert!(
        back,
        "{what}: {} bytes free, {before} before: something was kept",
        disk.free()
    );
}

/// Whether an error names the cause (the kernel's text, in Go's or Rust's capitalisation).
fn says_no_space(stderr: &str) -> bool {
    stderr.to_lowercase().contains("no space left on device")
}

#[test]
fn a_load_that_does_not_fit_fails_and_keeps_nothing() {
    let disk = SmallDisk::new(48);
    let d = daemon_on(&disk);
    let tags = d.image_tags();
    let big = testimg::big().unwrap_or_else(|e| panic!("big image: {e}"));
    let tarball = d.write_tarball("big.tar", &[&big], testimg::ArchiveOptions::default());
    let content_before = disk::walk(&d_content(&disk));
    let free_before = disk.free();

    let out = d.docker(&["load", "-i", &tarball.to_string_lossy()]);
    assert_ne!(out.code, 0, "a 75 MB image loaded onto a 48 MB disk: {out}");
    assert!(
        says_no_space(&out.stderr),
        "the error does not say why: {out}"
    );
    assert_eq!(d.image_tags(), tags, "a half image is listed");
    assert_space_back(&disk, free_before, "failed load");
    assert_eq!(
        disk::walk(&d_content(&disk)),
        content_before,
        "the failed load left blobs or temp files"
    );

    // The daemon and its store carry on: another image loads and runs, and a restart reads
    // the same store.
    let layered = testimg::layered().unwrap_or_else(|e| panic!("layered image: {e}"));
    d.load(&[&layered]);
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "estiba/layered",
        "cat",
        "/data/modified.txt",
    ]);
    assert_eq!(out.ok().stdout, "v2\n");
    let mut d = d;
    d.restart();
    assert_eq!(
        d.image_tags(),
        vec![
            "busybox:latest".to_owned(),
            "estiba/layered:latest".to_owned()
        ]
    );
}

/// The content store's directory on the small disk.
fn d_content(disk: &SmallDisk) -> PathBuf {
    disk.root().join("content")
}

#[test]
fn a_container_that_fills_the_disk_gets_enospc_and_frees_it_on_rm() {
    let disk = SmallDisk::new(32);
    let d = daemon_on(&disk);
    let free_before = disk.free();
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/fill bs=1M count=64 2>&1; echo rc=$?",
    ]);
    out.ok();
    assert!(
        out.stdout.contains("No space left on device") && out.stdout.contains("rc=1"),
        "{out}"
    );
    assert_space_back(&disk, free_before, "removed container");
    let out = d.docker(&["run", "--rm", "--network", "none", "busybox", "echo", "ok"]);
    assert_eq!(out.ok().stdout, "ok\n");
}

#[test]
fn create_on_a_full_disk_fails_clearly_and_the_store_survives() {
    let disk = SmallDisk::new(24);
    let mut d = daemon_on(&disk);
    let filler = disk.fill();

    let out = d.docker(&["create", "--name", "nope", "busybox", "true"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(says_no_space(&out.stderr), "{out}");
    let out = d.docker(&[
        "run",
        "--name",
        "nope",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert_eq!(out.code, 125, "{out}");
    assert!(says_no_space(&out.stderr), "{out}");
    let out = d.docker(&["ps", "-aq"]);
    assert_eq!(out.ok().stdout, "", "a half-created container is listed");

    std::fs::remove_file(&filler).unwrap_or_else(|e| panic!("removing the filler: {e}"));
    // The name is free and the daemon writes again, without a restart.
    let out = d.docker(&[
        "run",
        "--rm",
        "--name",
        "nope",
        "--network",
        "none",
        "busybox",
        "echo",
        "ok",
    ]);
    assert_eq!(out.ok().stdout, "ok\n");
    d.restart();
    assert_eq!(d.image_tags(), vec!["busybox:latest".to_owned()]);
    let out = d.docker(&["ps", "-aq"]);
    assert_eq!(out.ok().stdout, "");
}

/// The highest `line N` in a container's log.
fn last_line(d: &Daemon, name: &str) -> u64 {
    let out = d.docker(&["logs", name]);
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("line ")?.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_running_container_keeps_running_and_logging_across_a_full_disk() {
    let disk = SmallDisk::new(24);
    let d = daemon_on(&disk);
    d.docker(&[
        "run",
        "-d",
        "--name",
        "talker",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.02; done",
    ])
    .ok();
    assert!(
        wait_until(Duration::from_secs(10), || last_line(&d, "talker") >= 5),
        "no output: {}",
        d.docker(&["logs", "talker"])
    );

    let filler = disk.fill();
    let seen_full = last_line(&d, "talker");
    // Lines printed while the disk is full are lost (as with dockerd); the container must not
    // block on its output meanwhile.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_file(&filler).unwrap_or_else(|e| panic!("removing the filler: {e}"));

    // Logging resumes: a line printed well after the disk was full is in the log.
    assert!(
        wait_until(Duration::from_secs(10), || {
            last_line(&d, "talker") > seen_full + 25
        }),
        "the log did not resume after {seen_full}: {}\n--- daemon log ---\n{}",
        d.docker(&["logs", "--tail", "5", "talker"]),
        d.log()
    );
    let state = d.docker(&["inspect", "-f", "{{.State.Running}}", "talker"]);
    assert_eq!(state.ok().stdout, "true\n");
    let out = d.docker(&["stop", "-t", "1", "talker"]);
    out.ok();
    let code = d.docker(&["inspect", "-f", "{{.State.ExitCode}}", "talker"]);
    assert_eq!(code.ok().stdout, "137\n");
    d.docker(&["rm", "talker"]).ok();
}

#[test]
fn a_build_that_does_not_fit_fails_and_keeps_nothing() {
    let disk = SmallDisk::new(32);
    let d = daemon_on(&disk);
    let ctx = build::context(
        &d,
        &[("Dockerfile", "FROM busybox\nCOPY big /big\nRUN true\n")],
    );
    let mut noise = vec![0u8; 40 << 20];
    testimg::recipes::SplitMix64::new(7).fill(&mut noise);
    std::fs::write(ctx.join("big"), &noise).unwrap_or_else(|e| panic!("context file: {e}"));
    drop(noise);
    let free_before = disk.free();

    let out = build::docker_build(&d, &ctx, &["-t", "toobig"]);
    assert_ne!(out.code, 0, "a 40 MB COPY built on a 32 MB disk: {out}");
    assert!(
        says_no_space(&format!("{}{}", out.stdout, out.stderr)),
        "the error does not say why: {out}"
    );
    assert_eq!(d.image_tags(), vec!["busybox:latest".to_owned()]);
    assert_space_back(&disk, free_before, "failed build");

    std::fs::write(ctx.join("big"), "small now\n").unwrap_or_else(|e| panic!("{e}"));
    build::docker_build(&d, &ctx, &["-t", "fits"]).ok();
    let out = d.docker(&["run", "--rm", "--network", "none", "fits", "cat", "/big"]);
    assert_eq!(out.ok().stdout, "small now\n");
}
