//! The container filesystem end to end through the real docker CLI: `docker cp` both ways
//! (files, directories, ownership, errors), a hostile tar over `PUT /archive` that must not
//! escape the rootfs, `docker diff` and `docker export`.

use std::path::Path;
use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, token, wait_until, Cli, Daemon};

/// No container or mount of this daemon is left.
#[track_caller]
fn assert_clean(d: &Daemon) {
    let out = d.docker(&["ps", "-aq"]);
    out.ok();
    assert!(out.stdout.trim().is_empty(), "containers left: {out}");
    let left = d.leftovers_after(std::time::Duration::from_secs(10));
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Removes the named containers when dropped, so a failing test leaves no running container
/// (and shim) behind.
struct RemoveOnDrop<'a>(&'a Daemon, &'static [&'static str]);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        for name in self.1 {
            let _ = self.0.docker(&["rm", "-f", name]);
        }
    }
}

#[test]
fn cp_in_and_out_of_running_and_stopped_containers() {
    cp_round_trip(Cli::Docker);
}

#[test]
fn cp_in_and_out_of_running_and_stopped_containers_with_estiba() {
    cp_round_trip(Cli::Estiba);
}

fn cp_round_trip(cli: Cli) {
    let d = daemon_with_busybox();
    let _cleanup = RemoveOnDrop(&d, &["box", "cold"]);
    let work = tempfile::tempdir().expect("tempdir");
    let host_file = work.path().join("hello.txt");
    std::fs::write(&host_file, "hello from the host\n").expect("write");
    std::os::unix::fs::chown(&host_file, Some(1234), Some(2345)).expect("chown");
    let host_dir = work.path().join("tree");
    std::fs::create_dir_all(host_dir.join("sub")).expect("mkdir");
    std::fs::write(host_dir.join("sub/leaf"), "leaf\n").expect("write");

    // Running container.
    d.run(
        cli,
        &["run", "-d", "--name", "box", "busybox", "sleep", "300"],
    )
    .ok();
    d.run(
        cli,
        &["cp", host_file.to_str().unwrap_or_default(), "box:/tmp/"],
    )
    .ok();
    d.run(
        cli,
        &["cp", host_dir.to_str().unwrap_or_default(), "box:/srv"],
    )
    .ok();
    // diff and export work on a running container too.
    let out = d.run(cli, &["diff", "box"]);
    out.ok();
    for line in ["A /srv", "A /srv/sub/leaf", "C /tmp", "A /tmp/hello.txt"] {
        assert!(out.lines().contains(&line), "{line} missing: {out}");
    }
    let out = d.run(cli, &["export", "box"]);
    out.ok();

    let back = work.path().join("back");
    std::fs::create_dir(&back).expect("mkdir");
    d.run(
        cli,
        &[
            "cp",
            "box:/tmp/hello.txt",
            back.to_str().unwrap_or_default(),
        ],
    )
    .ok();
    let got = back.join("hello.txt");
    assert_eq!(
        std::fs::read_to_string(&got).expect("read"),
        "hello from the host\n"
    );
    // Ownership inside the container: the container's root without -a, kept with -a.
    d.run(
        cli,
        &[
            "cp",
            "-a",
            host_file.to_str().unwrap_or_default(),
            "box:/tmp/owned.txt",
        ],
    )
    .ok();
    assert_eq!(owner_in(&d, "box", "/tmp/hello.txt"), (0, 0));
    assert_eq!(owner_in(&d, "box", "/tmp/owned.txt"), (1234, 2345));

    d.run(
        cli,
        &[
            "cp",
            "box:/srv",
            back.join("srv").to_str().unwrap_or_default(),
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(back.join("srv/sub/leaf")).expect("read"),
        "leaf\n"
    );

    // Errors say what docker says.
    let out = d.run(cli, &["cp", "box:/nope", back.to_str().unwrap_or_default()]);
    out.fails_with(1);
    assert!(
        out.stderr
            .contains("Could not find the file /nope in container box"),
        "{out}"
    );
    let out = d.run(
        cli,
        &[
            "cp",
            host_file.to_str().unwrap_or_default(),
            "box:/no/such/dir/x",
        ],
    );
    out.fails_with(1);
    assert!(out.stderr.contains("Could not find the file /no"), "{out}");

    // Stopped container: the rootfs is mounted for the call only.
    d.run(cli, &["kill", "box"]).ok();
    d.run(cli, &["wait", "box"]).ok();
    d.run(
        cli,
        &[
            "cp",
            "box:/srv/sub/leaf",
            back.join("leaf2").to_str().unwrap_or_default(),
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(back.join("leaf2")).expect("read"),
        "leaf\n"
    );
    d.run(
        cli,
        &["cp", host_file.to_str().unwrap_or_default(), "box:/hello2"],
    )
    .ok();
    d.run(
        cli,
        &[
            "cp",
            "box:/hello2",
            back.join("hello2").to_str().unwrap_or_default(),
        ],
    )
    .ok();
    assert_eq!(
        std::fs::read_to_string(back.join("hello2")).expect("read"),
        "hello from the host\n"
    );
    d.run(cli, &["rm", "-f", "box"]).ok();

    d.run(
        cli,
        &["create", "--name", "cold", "busybox", "cat", "/hello2"],
    )
    .ok();
    d.run(
        cli,
        &["cp", host_file.to_str().unwrap_or_default(), "cold:/hello2"],
    )
    .ok();
    let out = d.run(cli, &["start", "-a", "cold"]);
    out.ok();
    assert_eq!(out.stdout, "hello from the host\n");
    d.run(cli, &["rm", "cold"]).ok();
    assert_clean(&d);
}

/// The owner of `path` in the container, from the tar `GET /archive` sends.
#[test]
fn cp_crosses_the_running_containers_volumes_and_tmpfs_mounts() {
    let d = daemon_with_busybox();
    let _cleanup = RemoveOnDrop(&d, &["vbox", "rovol", "rofs"]);
    let work = tempfile::tempdir().expect("tempdir");
    let host_file = work.path().join("into-volume.txt");
    std::fs::write(&host_file, "lands in the volume\n").expect("write");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "vbox",
        "-v",
        "cpdata:/data",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo in-tmpfs > /scratch/t; sleep 300",
    ])
    .ok();
    assert!(
        wait_until(std::time::Duration::from_secs(10), || {
            d.docker(&["exec", "vbox", "cat", "/scratch/t"]).stdout == "in-tmpfs\n"
        }),
        "the tmpfs file was never written"
    );

    // In: the file is in the volume, seen by the container and by another one mounting it.
    d.docker(&["cp", host_file.to_str().unwrap_or_default(), "vbox:/data/"])
        .ok();
    let out = d.docker(&["exec", "vbox", "cat", "/data/into-volume.txt"]);
    assert_eq!(out.stdout, "lands in the volume\n", "{out}");
    assert_eq!(
        in_volume(&d, "cpdata", "into-volume.txt"),
        "lands in the volume\n"
    );
    // ... and not in the container's own layer under the mount point.
    let out = d.docker(&["diff", "vbox"]);
    out.ok();
    assert!(!out.stdout.contains("into-volume"), "{out}");

    // Out: a file that only exists on the container's tmpfs.
    let back = work.path().join("back");
    std::fs::create_dir(&back).expect("mkdir");
    d.docker(&["cp", "vbox:/scratch/t", back.to_str().unwrap_or_default()])
        .ok();
    assert_eq!(
        std::fs::read_to_string(back.join("t")).expect("read"),
        "in-tmpfs\n"
    );

    // Stopped: the volume is bound into the view for the copy, so the file lands there too.
    d.docker(&["stop", "-t", "0", "vbox"]).ok();
    let second = work.path().join("while-stopped.txt");
    std::fs::write(&second, "stopped\n").expect("write");
    d.docker(&["cp", second.to_str().unwrap_or_default(), "vbox:/data/"])
        .ok();
    assert_eq!(in_volume(&d, "cpdata", "while-stopped.txt"), "stopped\n");
    let out = d.docker(&[
        "cp",
        "vbox:/data/into-volume.txt",
        back.to_str().unwrap_or_default(),
    ]);
    out.ok();
    assert_eq!(
        std::fs::read_to_string(back.join("into-volume.txt")).expect("read"),
        "lands in the volume\n"
    );
    // A read-only mount of a created container refuses the copy and keeps the volume as it was.
    d.docker(&[
        "create",
        "--name",
        "rovol",
        "-v",
        "cpdata:/ro:ro",
        "busybox",
    ])
    .ok();
    let out = d.docker(&[
        "cp",
        second.to_str().unwrap_or_default(),
        "rovol:/ro/again.txt",
    ]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("mounted volume is marked read-only"),
        "{out}"
    );
    // So does a read-only rootfs outside its mounts (moby's two refusals).
    d.docker(&["create", "--name", "rofs", "--read-only", "busybox"])
        .ok();
    let out = d.docker(&["cp", second.to_str().unwrap_or_default(), "rofs:/tmp/"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("container rootfs is marked read-only"),
        "{out}"
    );
    // A symlink that leads into the read-only mount is refused the same way (moby checks the
    // resolved path), running and stopped, instead of failing on the kernel's EROFS.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "rolink",
        "-v",
        "cpdata:/ro:ro",
        "busybox",
        "sh",
        "-c",
        "ln -s /ro /lnk && exec sleep 600",
    ])
    .ok();
    assert!(
        wait_until(Duration::from_secs(10), || {
            d.docker(&["exec", "rolink", "test", "-L", "/lnk"]).code == 0
        }),
        "the symlink was not made"
    );
    for state in ["running", "stopped"] {
        if state == "stopped" {
            d.docker(&["stop", "-t", "0", "rolink"]).ok();
        }
        let out = d.docker(&["cp", second.to_str().unwrap_or_default(), "rolink:/lnk/"]);
        assert_eq!(out.code, 1, "{state}: {out}");
        assert!(
            out.stderr.contains("mounted volume is marked read-only"),
            "{state}: {out}"
        );
    }
    let out = d.docker(&["run", "--rm", "-v", "cpdata:/v", "busybox", "ls", "/v"]);
    assert_eq!(
        out.lines(),
        ["into-volume.txt", "while-stopped.txt"],
        "{out}"
    );

    d.docker(&["rm", "-f", "vbox", "rovol", "rofs", "rolink"])
        .ok();
    d.docker(&["volume", "rm", "cpdata"]).ok();
    assert_clean(&d);
}

/// The content of `file` in `volume`, read by another container.
fn in_volume(d: &Daemon, volume: &str, file: &str) -> String {
    let out = d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/v"),
        "busybox",
        "cat",
        &format!("/v/{file}"),
    ]);
    out.ok();
    out.stdout
}

fn owner_in(d: &Daemon, container: &str, path: &str) -> (u64, u64) {
    let resp = d.api(
        "GET",
        &format!("/containers/{container}/archive?path={path}"),
        None,
    );
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert!(resp.header("X-Docker-Container-Path-Stat").is_some());
    let mut archive = tar::Archive::new(resp.body.as_slice());
    let mut entries = archive.entries().expect("entries");
    let entry = entries.next().expect("one entry").expect("entry");
    let h = entry.header();
    (h.uid().expect("uid"), h.gid().expect("gid"))
}

/// A tar with a raw name written straight into the header (the tar crate refuses `..`).
fn tar_entry(name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    {
        let raw = header.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

#[test]
fn hostile_tar_over_put_archive_stays_inside() {
    let d = daemon_with_busybox();
    d.docker(&["create", "--name", "victim", "busybox", "true"])
        .ok();
    let host_dir = tempfile::tempdir().expect("tempdir");
    let escape_name = format!("estiba-escape-{}", token());
    let host_target = Path::new("/tmp").join(&escape_name);
    let host_pwn = host_dir.path().join("pwned");

    let mut dotdot = tar_entry(
        &format!("../../../../../../../../tmp/{escape_name}"),
        tar::EntryType::Regular,
        None,
        b"x",
    );
    dotdot.extend_from_slice(&[0u8; 1024]);
    let resp = d.api("PUT", "/containers/victim/archive?path=/", Some(&dotdot));
    let body = String::from_utf8_lossy(&resp.body);
    assert_eq!(resp.status, 400, "{body}");
    assert!(body.contains("'..'"), "{body}");

    let mut link = tar_entry(
        "evil",
        tar::EntryType::Symlink,
        Some(host_dir.path().to_str().unwrap_or_default()),
        b"",
    );
    link.extend(tar_entry("evil/pwned", tar::EntryType::Regular, None, b"x"));
    link.extend_from_slice(&[0u8; 1024]);
    let resp = d.api("PUT", "/containers/victim/archive?path=/tmp", Some(&link));
    assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(&resp.body));

    // A destination that is a symlink out of the rootfs resolves inside it.
    let mut plain = tar_entry("dropped", tar::EntryType::Regular, None, b"y");
    plain.extend_from_slice(&[0u8; 1024]);
    let mut sym = tar_entry(
        "out",
        tar::EntryType::Symlink,
        Some(host_dir.path().to_str().unwrap_or_default()),
        b"",
    );
    sym.extend_from_slice(&[0u8; 1024]);
    let resp = d.api("PUT", "/containers/victim/archive?path=/", Some(&sym));
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let resp = d.api("PUT", "/containers/victim/archive?path=/out", Some(&plain));
    // The symlink's target does not exist inside the rootfs.
    assert_eq!(resp.status, 404, "{}", String::from_utf8_lossy(&resp.body));

    // An absolute symlink as the destination resolves inside the rootfs.
    let mut lnk = tar_entry("lnk", tar::EntryType::Symlink, Some("/tmp"), b"");
    lnk.extend_from_slice(&[0u8; 1024]);
    let resp = d.api("PUT", "/containers/victim/archive?path=/", Some(&lnk));
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    let resp = d.api("PUT", "/containers/victim/archive?path=/lnk", Some(&plain));
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert!(!Path::new("/tmp/dropped").exists());
    let resp = d.api("HEAD", "/containers/victim/archive?path=/tmp/dropped", None);
    assert_eq!(resp.status, 200);
    let resp = d.api("HEAD", "/containers/victim/archive?path=/lnk", None);
    let stat = resp
        .header("X-Docker-Container-Path-Stat")
        .expect("stat header")
        .to_string();
    let out = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(stat.as_bytes())?;
            c.wait_with_output()
        })
        .expect("base64 -d");
    let stat: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stat json");
    assert_eq!(stat["name"], "lnk");
    assert_eq!(stat["linkTarget"], "/tmp");
    assert_eq!(stat["mode"], (1u64 << 27) | 0o777);

    assert!(
        !host_target.exists(),
        "{} was written",
        host_target.display()
    );
    assert!(!host_pwn.exists(), "{} was written", host_pwn.display());
    assert!(!host_dir.path().join("dropped").exists());
    d.docker(&["rm", "victim"]).ok();
    assert_clean(&d);
}

#[test]
fn diff_lists_added_changed_deleted() {
    diff_check(Cli::Docker);
}

#[test]
fn diff_lists_added_changed_deleted_with_estiba() {
    diff_check(Cli::Estiba);
}

fn diff_check(cli: Cli) {
    let d = daemon_with_busybox();
    d.run(
        cli,
        &[
            "run",
            "--name",
            "changer",
            "busybox",
            "sh",
            "-c",
            "touch /new; rm /etc/passwd; mkdir -p /tmp/d; echo hi > /tmp/d/f",
        ],
    )
    .ok();
    // Its sizes: the writable layer, and with the image's layers (`SizeRootFs`, ps' virtual).
    let json = |path: &str| -> serde_json::Value {
        let resp = d.api("GET", path, None);
        assert_eq!(resp.status, 200, "{path}");
        serde_json::from_slice(&resp.body).unwrap_or_default()
    };
    let c = json("/containers/changer/json?size=1");
    let image_size = json("/images/busybox/json")["Size"].as_i64().unwrap_or(0);
    let rw = c["SizeRw"].as_i64().unwrap_or(-1);
    assert!(rw > 0 && image_size > 0, "{c}");
    assert_eq!(c["SizeRootFs"].as_i64(), Some(rw + image_size), "{c}");
    let listed = json("/containers/json?all=1&size=1");
    assert_eq!(
        listed[0]["SizeRootFs"].as_i64(),
        Some(rw + image_size),
        "{listed}"
    );

    let out = d.run(cli, &["diff", "changer"]);
    out.ok();
    assert_eq!(
        out.lines(),
        [
            "C /etc",
            "D /etc/passwd",
            "A /new",
            "C /tmp",
            "A /tmp/d",
            "A /tmp/d/f"
        ],
        "{out}"
    );
    let out = d.run(cli, &["diff", "nosuch"]);
    out.fails_with(1);
    assert!(out.stderr.contains("No such container: nosuch"), "{out}");
    d.run(cli, &["rm", "changer"]).ok();
    assert_clean(&d);
}

#[test]
fn export_streams_the_whole_rootfs() {
    export_check(Cli::Docker);
}

#[test]
fn export_streams_the_whole_rootfs_with_estiba() {
    export_check(Cli::Estiba);
}

fn export_check(cli: Cli) {
    let d = daemon_with_busybox();
    d.run(cli, &["create", "--name", "exp", "busybox", "true"])
        .ok();
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("exp.tar");
    d.run(
        cli,
        &["export", "-o", file.to_str().unwrap_or_default(), "exp"],
    )
    .ok();
    let f = std::fs::File::open(&file).expect("open");
    let names: Vec<String> = tar::Archive::new(f)
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    d.run(cli, &["rm", "exp"]).ok();
    assert_clean(&d);
}

#[test]
fn commit_makes_a_runnable_image() {
    commit_check(Cli::Docker);
}

#[test]
fn commit_makes_a_runnable_image_with_estiba() {
    commit_check(Cli::Estiba);
}

fn commit_check(cli: Cli) {
    let d = daemon_with_busybox();
    d.run(
        cli,
        &[
            "run",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "echo committed > /new-file",
        ],
    )
    .ok();
    let out = d.run(
        cli,
        &[
            "commit",
            "-a",
            "me <me@x>",
            "-m",
            "first",
            "web",
            "me/img:1",
        ],
    );
    out.ok();
    let id = out.stdout.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    let out = d.run(cli, &["run", "--rm", "me/img:1", "cat", "/new-file"]);
    out.ok();
    assert_eq!(out.stdout, "committed\n");
    let out = d.run(
        cli,
        &[
            "image",
            "inspect",
            "-f",
            "{{.Author}}|{{.Comment}}|{{len .RootFS.Layers}}|{{.Config.Cmd}}",
            "me/img:1",
        ],
    );
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        "me <me@x>|first|2|[sh -c echo committed > /new-file]"
    );
    let out = d.run(
        cli,
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}",
            "me/img:1",
        ],
    );
    out.ok();
    assert_eq!(
        out.lines().first().copied(),
        Some("sh -c echo committed > /new-file"),
        "{out}"
    );

    // --change rewrites the config.
    d.run(
        cli,
        &[
            "commit",
            "--change",
            r#"CMD ["echo","x"]"#,
            "--change",
            "ENV GREETING=hello",
            "web",
            "me/img:2",
        ],
    )
    .ok();
    let out = d.run(cli, &["run", "--rm", "me/img:2"]);
    out.ok();
    assert_eq!(out.stdout, "x\n");
    let out = d.run(
        cli,
        &["run", "--rm", "me/img:2", "sh", "-c", "echo $GREETING"],
    );
    out.ok();
    assert_eq!(out.stdout, "hello\n");
    let out = d.run(cli, &["commit", "--change", "RUN echo", "web", "me/img:3"]);
    out.fails_with(1);
    assert!(
        out.stderr.contains("RUN is not a valid change command"),
        "{out}"
    );

    // A running container is frozen for the commit (pause is the default) and thawed after;
    // --pause=false leaves it alone.
    let out = d.run(
        cli,
        &[
            "run",
            "-d",
            "--name",
            "live",
            "busybox",
            "sh",
            "-c",
            "echo up > /up; sleep 300",
        ],
    );
    out.ok();
    let live_id = out.stdout.trim().to_owned();
    let written = wait_until(std::time::Duration::from_secs(10), || {
        d.run(cli, &["exec", "live", "cat", "/up"]).code == 0
    });
    assert!(written, "the container never wrote /up");
    for args in [
        &["commit", "live", "me/live:1"][..],
        &["commit", "--pause=false", "live", "me/live:2"],
    ] {
        d.run(cli, args).ok();
        let freezer = format!("/sys/fs/cgroup/freezer/estiba/{live_id}/freezer.state");
        if let Ok(state) = std::fs::read_to_string(&freezer) {
            assert_eq!(state.trim(), "THAWED", "{args:?}");
        }
        let out = d.run(cli, &["exec", "live", "cat", "/up"]);
        out.ok();
        assert_eq!(out.stdout, "up\n");
    }
    let out = d.run(cli, &["run", "--rm", "me/live:1", "cat", "/up"]);
    out.ok();
    assert_eq!(out.stdout, "up\n");
    d.run(cli, &["rm", "-f", "live"]).ok();

    d.run(cli, &["rm", "web"]).ok();
    d.run(
        cli,
        &["rmi", "me/img:1", "me/img:2", "me/live:1", "me/live:2"],
    )
    .ok();
    assert_clean(&d);
}
