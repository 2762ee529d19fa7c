//! Mount kinds and volume features end to end: tmpfs (`--tmpfs`, `--mount type=tmpfs`) and
//! its size limit, bind propagation on a host whose `/` is private, the local driver's options
//! (`--opt type=tmpfs`, a bind device), inspect's `Mounts` and `HostConfig.Mounts` as dockerd
//! shows them, volume events, `system df -v`, references across a daemon restart, the volume
//! API's filters, and estiba's `volume export`/`import`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, wait_until, Cli, Daemon};

fn mountpoint(d: &Daemon, name: &str) -> PathBuf {
    let out = d.docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", name]);
    out.ok();
    PathBuf::from(out.stdout.trim())
}

/// Unmounts (lazily) every mount at or under `root` when dropped, so a failed test leaves no
/// mount behind on the host.
struct Unmounter(PathBuf);

impl Drop for Unmounter {
    fn drop(&mut self) {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<PathBuf> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
            .filter(|p| p.starts_with(&self.0))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in points {
            let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

fn mount_tmpfs(target: &Path) {
    std::fs::create_dir_all(target).unwrap();
    rustix::mount::mount(
        "tmpfs",
        target,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", target.display()));
}

#[test]
fn tmpfs_mounts_enforce_their_size_and_mode() {
    let d = daemon_with_busybox();
    let script = "dd if=/dev/zero of=/t/f bs=1k count=2048 2>/dev/null || echo full; stat -c %a /t";
    for flags in [
        vec!["--tmpfs", "/t:size=1m,mode=1777"],
        vec!["--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1777"],
    ] {
        let mut args = vec!["run", "--rm", "--read-only"];
        args.extend(flags.iter().copied());
        args.extend(["busybox", "sh", "-c", script]);
        let out = d.docker(&args);
        assert_eq!(out.ok().stdout, "full\n1777\n", "{flags:?}");
    }
    // --read-only leaves the tmpfs writable, the rootfs not.
    let out = d.docker(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/run",
        "busybox",
        "sh",
        "-c",
        "touch /run/ok && touch /nope",
    ]);
    out.fails_with(1);
    assert_eq!(out.stderr, "touch: /nope: Read-only file system\n");
    // A read-only --mount tmpfs.
    let out = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,dst=/t,readonly",
        "busybox",
        "touch",
        "/t/x",
    ]);
    out.fails_with(1);
    assert_eq!(out.stderr, "touch: /t/x: Read-only file system\n");
}

#[test]
fn inspect_mounts_are_shaped_as_dockerd_shows_them() {
    let d = daemon_with_busybox();
    let src = d.dir().join("vsrc");
    std::fs::create_dir_all(&src).unwrap();
    let s = src.display().to_string();
    d.docker(&[
        "create",
        "--name",
        "m1",
        "-v",
        &format!("{s}:/b:ro"),
        "-v",
        "data:/c:nocopy,ro",
        "--mount",
        "type=volume,src=nv,dst=/f,readonly,volume-nocopy",
        "--mount",
        "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1777",
        "--mount",
        &format!("type=bind,src={s},dst=/g,bind-propagation=rslave"),
        "busybox",
        "true",
    ])
    .ok();
    let root = mountpoint(&d, "data");
    let vroot = root
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .display()
        .to_string();
    let out = d.docker(&["inspect", "--format", "{{json .Mounts}}", "m1"]);
    let want = format!(
        "[{{\"Type\":\"bind\",\"Source\":\"{s}\",\"Destination\":\"/b\",\"Mode\":\"ro\",\"RW\":false,\"Propagation\":\"rprivate\"}},\
{{\"Type\":\"volume\",\"Name\":\"data\",\"Source\":\"{vroot}/data/_data\",\"Destination\":\"/c\",\"Driver\":\"local\",\"Mode\":\"nocopy,ro\",\"RW\":false,\"Propagation\":\"\"}},\
{{\"Type\":\"volume\",\"Name\":\"nv\",\"Source\":\"{vroot}/nv/_data\",\"Destination\":\"/f\",\"Driver\":\"local\",\"Mode\":\"z\",\"RW\":false,\"Propagation\":\"\"}},\
{{\"Type\":\"tmpfs\",\"Source\":\"\",\"Destination\":\"/t\",\"Mode\":\"\",\"RW\":true,\"Propagation\":\"\"}},\
{{\"Type\":\"bind\",\"Source\":\"{s}\",\"Destination\":\"/g\",\"Mode\":\"\",\"RW\":true,\"Propagation\":\"rslave\"}}]\n"
    );
    // The docker CLI sends -v binds from a Go map, so their order varies from run to run
    // (dockerd's own Mounts order is a map's too): compare the mounts by destination.
    let by_destination = |text: &str| {
        let mut v: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
        v.sort_by_key(|m| m["Destination"].as_str().unwrap_or_default().to_owned());
        v
    };
    assert_eq!(by_destination(&out.ok().stdout), by_destination(&want));
    let out = d.docker(&["inspect", "--format", "{{json .HostConfig.Mounts}}", "m1"]);
    assert_eq!(
        out.ok().stdout,
        format!("[{{\"Type\":\"volume\",\"Source\":\"nv\",\"Target\":\"/f\",\"ReadOnly\":true,\"VolumeOptions\":{{\"NoCopy\":true,\"DriverConfig\":{{}}}}}},{{\"Type\":\"tmpfs\",\"Target\":\"/t\",\"TmpfsOptions\":{{\"SizeBytes\":67108864,\"Mode\":1023}}}},{{\"Type\":\"bind\",\"Source\":\"{s}\",\"Target\":\"/g\",\"BindOptions\":{{\"Propagation\":\"rslave\"}}}}]\n")
    );
    // A created container already holds its volumes.
    let out = d.docker(&["volume", "rm", "nv"]);
    out.fails_with(1);
    d.docker(&["rm", "m1"]).ok();
    d.docker(&["volume", "rm", "nv", "data"]).ok();
}

#[test]
fn bind_propagation_works_although_the_host_root_is_private() {
    let d = daemon_with_busybox();
    let src = d.dir().join("prop");
    std::fs::create_dir_all(&src).unwrap();
    let _guard = Unmounter(src.clone());
    let s = src.display().to_string();
    // rslave: a mount made on the host after start appears in the container.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "slave",
        "-v",
        &format!("{s}:/mnt:rslave"),
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    mount_tmpfs(&src.join("late"));
    std::fs::write(src.join("late/f"), "from host\n").unwrap();
    assert_eq!(
        d.docker(&["exec", "slave", "cat", "/mnt/late/f"])
            .ok()
            .stdout,
        "from host\n"
    );
    // rshared: a mount made in the container appears on the host.
    d.docker(&[
        "run",
        "-d",
        "--privileged",
        "--name",
        "shared",
        "--mount",
        &format!("type=bind,src={s},dst=/mnt,bind-propagation=rshared"),
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    d.docker(&[
        "exec",
        "shared",
        "sh",
        "-c",
        "mkdir -p /mnt/inner && mount -t tmpfs tmpfs /mnt/inner && echo from ctr > /mnt/inner/g",
    ])
    .ok();
    assert!(wait_until(Duration::from_secs(10), || src
        .join("inner/g")
        .exists()));
    assert_eq!(
        std::fs::read_to_string(src.join("inner/g")).unwrap(),
        "from ctr\n"
    );
    // rprivate (the default): the container's mount stays inside.
    d.docker(&[
        "run",
        "-d",
        "--privileged",
        "--name",
        "private",
        "-v",
        &format!("{s}:/mnt"),
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    d.docker(&[
        "exec",
        "private",
        "sh",
        "-c",
        "mkdir -p /mnt/hidden && mount -t tmpfs tmpfs /mnt/hidden && touch /mnt/hidden/h",
    ])
    .ok();
    assert!(!src.join("hidden/h").exists());
    d.docker(&["rm", "-f", "slave", "shared", "private"]).ok();
    // The shared self-bind made for them goes with the last of them, and what the shared
    // container mounted under it with it.
    let left = estiba_e2e::disk::mounts_under(&src);
    assert!(
        left.is_empty(),
        "mounts left under the bind source: {left:?}"
    );
}

#[test]
fn local_driver_options_mount_a_tmpfs_or_a_bind_device() {
    let d = daemon_with_busybox();
    let _guard = Unmounter(d.data_root().join("volumes"));
    d.docker(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m",
        "--label",
        "k=v",
        "tv",
    ])
    .ok();
    let out = d.docker(&[
        "volume",
        "inspect",
        "--format",
        "{{json .Options}} {{json .Labels}}",
        "tv",
    ]);
    assert_eq!(
        out.ok().stdout,
        "{\"device\":\"tmpfs\",\"o\":\"size=2m\",\"type\":\"tmpfs\"} {\"k\":\"v\"}\n"
    );
    let out = d.docker(&["run", "--rm", "-v", "tv:/t", "busybox", "sh", "-c", "dd if=/dev/zero of=/t/f bs=1k count=4096 2>/dev/null || echo full; grep ' /t ' /proc/mounts | cut -d' ' -f3"]);
    assert_eq!(out.ok().stdout, "full\ntmpfs\n");
    let dev = d.dir().join("device");
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dev.join("hello"), "on the device\n").unwrap();
    d.docker(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        &format!("device={}", dev.display()),
        "-o",
        "o=bind",
        "bv",
    ])
    .ok();
    let out = d.docker(&["run", "--rm", "-v", "bv:/b", "busybox", "cat", "/b/hello"]);
    assert_eq!(out.ok().stdout, "on the device\n");
    // --mount volume-opt creates a volume with options.
    d.docker(&["run", "--rm", "--mount", "type=volume,src=mv,dst=/m,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=3m", "busybox", "true"]).ok();
    let out = d.docker(&["volume", "inspect", "--format", "{{.Options.o}}", "mv"]);
    assert_eq!(out.ok().stdout, "size=3m\n");
    d.docker(&["volume", "rm", "tv", "bv", "mv"]).ok();
    assert_eq!(
        std::fs::read_to_string(dev.join("hello")).unwrap(),
        "on the device\n"
    );
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !info.contains(&d.data_root().join("volumes").display().to_string()),
        "a driver mount was left"
    );
}

#[test]
fn export_import_round_trip_keeps_owners_modes_and_xattrs() {
    let d = daemon_with_busybox();
    d.docker(&["run", "--rm", "-v", "src:/v", "busybox", "sh", "-c", "mkdir /v/dir && echo payload > /v/dir/f && chown 1234:567 /v/dir/f && chmod 4750 /v/dir/f && ln -s dir/f /v/link && chmod 700 /v/dir"]).ok();
    let data = mountpoint(&d, "src");
    rustix::fs::setxattr(
        data.join("dir/f"),
        "user.estiba",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap_or_else(|e| panic!("user xattrs on the data-root's filesystem: {e}"));
    let tar = d.dir().join("v.tar");
    d.estiba(&["volume", "export", "-o", &tar.display().to_string(), "src"])
        .ok();
    let bytes = std::fs::read(&tar).unwrap();
    let out = d.run_with_stdin(Cli::Estiba, &["volume", "import", "dst"], bytes.clone());
    assert_eq!(out.ok().stdout, "dst\n");
    let copy = mountpoint(&d, "dst");
    let m = std::fs::symlink_metadata(copy.join("dir/f")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 567, 0o4750));
    assert_eq!(
        std::fs::symlink_metadata(copy.join("dir")).unwrap().mode() & 0o7777,
        0o700
    );
    assert_eq!(
        std::fs::read_link(copy.join("link")).unwrap(),
        PathBuf::from("dir/f")
    );
    let mut value = [0u8; 16];
    let n = rustix::fs::getxattr(copy.join("dir/f"), "user.estiba", &mut value[..])
        .unwrap_or_else(|e| panic!("xattr not imported: {e}"));
    assert_eq!(&value[..n], b"kept");
    let out = d.docker(&["run", "--rm", "-v", "dst:/v", "busybox", "cat", "/v/link"]);
    assert_eq!(out.ok().stdout, "payload\n");
    // Importing into a volume that has content is refused and changes nothing.
    let out = d.run_with_stdin(Cli::Estiba, &["volume", "import", "dst"], bytes);
    out.fails_with(1);
    assert_eq!(
        out.stderr,
        "Error response from daemon: import dst: volume is not empty\n"
    );
    // A tar whose entry climbs out of the volume is refused.
    let evil = evil_tar();
    let out = d.run_with_stdin(Cli::Estiba, &["volume", "import", "evil"], evil);
    out.fails_with(1);
    assert!(out.stderr.contains("points outside the volume"), "{out}");
    assert!(!mountpoint(&d, "evil")
        .parent()
        .unwrap()
        .join("escaped")
        .exists());
    let out = d.estiba(&["volume", "export", "nope"]);
    out.fails_with(1);
    assert_eq!(
        out.stderr,
        "Error response from daemon: get nope: no such volume\n"
    );
}

fn evil_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.as_old_mut().name[..10].copy_from_slice(b"../escaped");
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn events_df_filters_and_references_across_a_restart() {
    let mut d = daemon_with_busybox();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    d.docker(&["volume", "create", "--label", "team=db", "ev"])
        .ok();
    d.docker(&[
        "run",
        "--name",
        "user",
        "-v",
        "ev:/e",
        "busybox",
        "sh",
        "-c",
        "echo 12345 > /e/f",
    ])
    .ok();
    // Filters of GET /volumes.
    let ls = |f: &str| {
        d.docker(&["volume", "ls", "-q", "--filter", f])
            .ok()
            .stdout
            .clone()
    };
    assert_eq!(ls("label=team=db"), "ev\n");
    assert_eq!(ls("label=team=web"), "");
    assert_eq!(ls("name=e"), "ev\n");
    assert_eq!(ls("driver=local"), "ev\n");
    assert_eq!(ls("dangling=false"), "ev\n");
    assert_eq!(ls("dangling=true"), "");
    // docker ps --filter volume= by name or by destination.
    for (f, n) in [("volume=ev", 1), ("volume=/e", 1), ("volume=other", 0)] {
        let out = d.docker(&["ps", "-aq", "--filter", f]);
        assert_eq!(out.ok().lines().len(), n, "{f}");
    }
    let out = d.docker(&["system", "df", "-v"]);
    let text = out.ok().stdout.clone();
    assert!(text.contains("Local Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\nev            1         6B\n"), "{text}");
    let end = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let out = d.docker(&[
        "events",
        "--since",
        &start,
        "--until",
        &end,
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    let actions: Vec<String> = out.ok().lines().iter().map(|s| s.to_string()).collect();
    assert_eq!(actions, ["create ev", "mount ev", "unmount ev"]);
    // References survive a daemon restart: still in use.
    d.restart();
    let out = d.docker(&["volume", "rm", "ev"]);
    out.fails_with(1);
    assert!(out.stderr.contains("volume is in use"), "{out}");
    d.docker(&["rm", "user"]).ok();
    d.docker(&["volume", "rm", "ev"]).ok();
    let out = d.docker(&["volume", "ls", "-q"]);
    assert!(out.ok().stdout.is_empty());
}

#[test]
fn every_short_and_long_form_key_is_accepted() {
    let d = daemon_with_busybox();
    let src = d.dir().join("keys");
    std::fs::create_dir_all(&src).unwrap();
    let _guard = Unmounter(src.clone());
    std::fs::write(src.join("top"), "top\n").unwrap();
    let s = src.display().to_string();
    // Short-form modes: rw, z, Z (accepted, no SELinux here), and each propagation.
    for mode in [
        "rw", "rw,z", "Z", "private", "rprivate", "shared", "rshared", "slave", "rslave",
    ] {
        let spec = format!("{s}:/m:{mode}");
        let out = d.docker(&[
            "run",
            "--rm",
            "-v",
            &spec,
            "busybox",
            "sh",
            "-c",
            "cat /m/top && touch /m/w",
        ]);
        assert_eq!(out.ok().stdout, "top\n", "{mode}");
    }
    // Volume modes: rw, z, Z, nocopy, combined.
    for mode in ["rw", "z", "Z,rw", "nocopy", "rw,nocopy,z"] {
        let spec = format!("named:/n:{mode}");
        d.docker(&["run", "--rm", "-v", &spec, "busybox", "touch", "/n/ok"])
            .ok();
    }
    // Long-form key spellings: source/target/destination, ro=true, readonly=false.
    let out = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,source={s},target=/a,ro=true"),
        "--mount",
        "type=volume,source=named,destination=/b,readonly=false",
        "busybox",
        "sh",
        "-c",
        "touch /b/w && cat /a/top && touch /a/x",
    ]);
    out.fails_with(1);
    assert_eq!(out.stdout, "top\n");
    assert_eq!(out.stderr, "touch: /a/x: Read-only file system\n");
    // bind-recursive=disabled: a mount below the source is not carried into the container.
    mount_tmpfs(&src.join("sub"));
    std::fs::write(src.join("sub/inner"), "inner\n").unwrap();
    let script = "ls /r/sub";
    let rec = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={s},dst=/r"),
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(rec.ok().stdout, "inner\n");
    let flat = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={s},dst=/r,bind-recursive=disabled"),
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(flat.ok().stdout, "");
    d.docker(&["volume", "rm", "named"]).ok();
}
