//! Volumes end to end through the real docker CLI (and estiba's): named volumes that outlive
//! their containers, anonymous volumes (`-v /x`, an image's VOLUME) and `rm -v`/`--rm`, copy-up
//! of image content, read-only mounts, two containers sharing a volume at once, `volume rm` of
//! a volume in use, prune semantics, inspect's `Mounts`, and bad input. Expected texts are what
//! dockerd printed for the same commands.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use estiba_e2e::{daemon_with_busybox, testimg, wait_until, Daemon};

fn volume_names(d: &Daemon) -> Vec<String> {
    let out = d.docker(&["volume", "ls", "-q"]);
    out.ok();
    out.lines().iter().map(|s| s.to_string()).collect()
}

fn mountpoint(d: &Daemon, name: &str) -> PathBuf {
    let out = d.docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", name]);
    out.ok();
    PathBuf::from(out.stdout.trim())
}

#[test]
fn named_volume_outlives_its_container_and_rm_v_keeps_it() {
    let d = daemon_with_busybox();
    assert_eq!(
        d.docker(&["volume", "create", "data"]).ok().stdout,
        "data\n"
    );
    d.docker(&[
        "run",
        "--name",
        "cw",
        "-v",
        "data:/var/lib/db",
        "busybox",
        "sh",
        "-c",
        "echo kept > /var/lib/db/f",
    ])
    .ok();
    // rm -v removes anonymous volumes only: a named one stays.
    d.docker(&["rm", "-v", "cw"]).ok();
    assert_eq!(volume_names(&d), ["data"]);
    let out = d.docker(&["run", "--rm", "-v", "data:/d", "busybox", "cat", "/d/f"]);
    assert_eq!(out.ok().stdout, "kept\n");
    assert_eq!(
        std::fs::read_to_string(mountpoint(&d, "data").join("f")).unwrap(),
        "kept\n"
    );
    assert!(mountpoint(&d, "data").ends_with("volumes/data/_data"));
    // The estiba CLI sees and removes the same volume.
    let ls = d.estiba(&["volume", "ls"]);
    assert_eq!(ls.ok().stdout, "DRIVER    VOLUME NAME\nlocal     data\n");
    assert_eq!(d.estiba(&["volume", "rm", "data"]).ok().stdout, "data\n");
    assert!(volume_names(&d).is_empty());
}

#[test]
fn two_containers_share_a_volume_at_the_same_time() {
    let d = daemon_with_busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "ca",
        "-v",
        "shared:/s",
        "busybox",
        "sh",
        "-c",
        "echo from-a > /s/a; sleep 600",
    ])
    .ok();
    let data = mountpoint(&d, "shared");
    assert!(wait_until(Duration::from_secs(20), || data
        .join("a")
        .exists()));
    d.docker(&[
        "run",
        "-d",
        "--name",
        "cb",
        "-v",
        "shared:/s",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    // b reads what a wrote, a reads what b writes, while both run.
    assert_eq!(
        d.docker(&["exec", "cb", "cat", "/s/a"]).ok().stdout,
        "from-a\n"
    );
    d.docker(&["exec", "cb", "sh", "-c", "echo from-b > /s/b"])
        .ok();
    assert_eq!(
        d.docker(&["exec", "ca", "cat", "/s/b"]).ok().stdout,
        "from-b\n"
    );
    // In use by two containers: 409 with dockerd's message naming them.
    let out = d.docker(&["volume", "rm", "shared"]);
    out.fails_with(1);
    assert!(
        out.stderr
            .starts_with("Error response from daemon: remove shared: volume is in use - ["),
        "{out}"
    );
    let resp = d.api("DELETE", "/volumes/shared?force=1", None);
    assert_eq!(resp.status, 409);
    d.docker(&["rm", "-f", "ca", "cb"]).ok();
    d.docker(&["volume", "rm", "shared"]).ok();
    assert!(!data.exists());
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_with_rm() {
    let d = daemon_with_busybox();
    d.docker(&[
        "run",
        "--name",
        "cc",
        "-v",
        "/data",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/x",
    ])
    .ok();
    let names = volume_names(&d);
    assert_eq!(names.len(), 1);
    assert_eq!(names[0].len(), 64, "generated name: {names:?}");
    let labels = d.docker(&[
        "volume",
        "inspect",
        "--format",
        "{{json .Labels}}",
        &names[0],
    ]);
    assert_eq!(
        labels.ok().stdout,
        "{\"com.docker.volume.anonymous\":\"\"}\n"
    );
    // Mounts as dockerd shows an anonymous volume.
    let mounts = d.docker(&["inspect", "--format", "{{json .Mounts}}", "cc"]);
    let want = format!(
        "[{{\"Type\":\"volume\",\"Name\":\"{0}\",\"Source\":\"{1}\",\"Destination\":\"/data\",\"Driver\":\"local\",\"Mode\":\"\",\"RW\":true,\"Propagation\":\"\"}}]\n",
        names[0],
        mountpoint(&d, &names[0]).display()
    );
    assert_eq!(mounts.ok().stdout, want);
    d.docker(&["rm", "-v", "cc"]).ok();
    assert!(volume_names(&d).is_empty());
    // --rm takes the anonymous volume too, and a named one stays.
    d.docker(&[
        "run", "--rm", "-v", "/data", "-v", "keep:/k", "busybox", "true",
    ])
    .ok();
    assert_eq!(volume_names(&d), ["keep"]);
    // Plain rm keeps the anonymous volume (dangling now).
    d.docker(&["run", "--name", "cp", "-v", "/data", "busybox", "true"])
        .ok();
    d.docker(&["rm", "cp"]).ok();
    assert_eq!(volume_names(&d).len(), 2);
    let dangling = d.docker(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.ok().lines().len(), 2);
}

#[test]
fn image_content_is_copied_up_keeping_owners_and_modes() {
    let d = Daemon::start();
    let layered = testimg::layered().unwrap_or_else(|e| panic!("layered image: {e}"));
    d.load(&[&layered]);
    let image = layered.repo_tags[0].clone();
    // A named empty volume is filled from the image at its mount path.
    d.docker(&["run", "--rm", "-v", "cu:/data", &image, "true"])
        .ok();
    let data = mountpoint(&d, "cu");
    let owned = std::fs::symlink_metadata(data.join("owned")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (1000, 1000, 0o640)
    );
    assert_eq!(
        std::fs::read_to_string(data.join("modified.txt")).unwrap(),
        "v2\n"
    );
    assert!(
        !data.join("deleted.txt").exists(),
        "whiteouts are not copied"
    );
    assert_eq!(
        std::fs::read_link(data.join("link")).unwrap(),
        PathBuf::from("modified.txt")
    );
    // Not empty any more: a second container does not copy again over what changed.
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "cu:/data",
        &image,
        "sh",
        "-c",
        "rm /data/owned",
    ])
    .ok();
    d.docker(&["run", "--rm", "-v", "cu:/data", &image, "true"])
        .ok();
    assert!(!data.join("owned").exists());
    // nocopy opts out, with -v and with --mount.
    d.docker(&["run", "--rm", "-v", "nc:/data:nocopy", &image, "true"])
        .ok();
    assert_eq!(std::fs::read_dir(mountpoint(&d, "nc")).unwrap().count(), 0);
    d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=nc2,dst=/data,volume-nocopy",
        &image,
        "true",
    ])
    .ok();
    assert_eq!(std::fs::read_dir(mountpoint(&d, "nc2")).unwrap().count(), 0);
    // An image's VOLUME makes an anonymous volume, filled the same way.
    d.docker(&["run", "--name", "base", &image, "true"]).ok();
    d.docker(&["commit", "--change", "VOLUME /data", "base", "withvol:1"])
        .ok();
    d.docker(&["rm", "base"]).ok();
    d.docker(&["run", "--name", "cv", "withvol:1", "true"]).ok();
    let mounts = d.docker(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Name}} {{.Destination}}{{end}}",
        "cv",
    ]);
    let line = mounts.ok().stdout.trim().to_string();
    let (name, dest) = line.split_once(' ').unwrap();
    assert_eq!(dest, "/data");
    let owned = std::fs::symlink_metadata(mountpoint(&d, name).join("owned")).unwrap();
    assert_eq!((owned.uid(), owned.mode() & 0o7777), (1000, 0o640));
    d.docker(&["rm", "-v", "cv"]).ok();
    let left = d.docker(&["volume", "ls", "-q", "--filter", &format!("name={name}")]);
    assert!(left.ok().stdout.is_empty());
}

#[test]
fn read_only_mounts_refuse_writes() {
    let d = daemon_with_busybox();
    let dir = d.dir().join("bind-src");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), "host\n").unwrap();
    let src = format!("{}:/src:ro", dir.display());
    let mount_src = format!("type=bind,src={},dst=/m,readonly", dir.display());
    for flags in [
        vec!["-v", "data:/d:ro"],
        vec!["--mount", "type=volume,src=data,dst=/d,readonly"],
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags);
        args.extend(["busybox", "sh", "-c", "touch /d/x"]);
        let out = d.docker(&args);
        out.fails_with(1);
        assert_eq!(out.stderr, "touch: /d/x: Read-only file system\n");
    }
    for (flag, value, path) in [("-v", &src, "/src"), ("--mount", &mount_src, "/m")] {
        let script = format!("cat {path}/f; touch {path}/x");
        let out = d.docker(&["run", "--rm", flag, value, "busybox", "sh", "-c", &script]);
        out.fails_with(1);
        assert_eq!(out.stdout, "host\n");
        assert_eq!(
            out.stderr,
            format!("touch: {path}/x: Read-only file system\n")
        );
    }
    assert!(!dir.join("x").exists());
    // A writable bind writes through to the host.
    let rw = format!("{}:/src", dir.display());
    d.docker(&[
        "run",
        "--rm",
        "-v",
        &rw,
        "busybox",
        "sh",
        "-c",
        "echo back > /src/w",
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(dir.join("w")).unwrap(), "back\n");
    // -v creates a missing bind source (docker does), --mount refuses it.
    let missing = d.dir().join("made-by-v");
    let spec = format!("{}:/x", missing.display());
    d.docker(&["run", "--rm", "-v", &spec, "busybox", "true"])
        .ok();
    assert!(missing.is_dir());
}

#[test]
fn the_seeds_backup_recipe() {
    let d = daemon_with_busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "db",
        "-v",
        "/data",
        "busybox",
        "sh",
        "-c",
        "echo row1 > /data/table; sleep 600",
    ])
    .ok();
    let backup = d.dir().join("backup");
    std::fs::create_dir_all(&backup).unwrap();
    let spec = format!("{}:/backup", backup.display());
    let vol = d.docker(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Source}}{{end}}",
        "db",
    ]);
    let source = PathBuf::from(vol.ok().stdout.trim());
    assert!(wait_until(Duration::from_secs(20), || source
        .join("table")
        .exists()));
    let out = d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "db",
        "-v",
        &spec,
        "busybox",
        "tar",
        "cvf",
        "/backup/backup.tar",
        "/data",
    ]);
    out.ok();
    assert_eq!(out.stdout, "data/\ndata/table\n");
    let tar = std::fs::read(backup.join("backup.tar")).unwrap();
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut names = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        if name == "data/table" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            assert_eq!(s, "row1\n");
        }
        names.push(name);
    }
    assert_eq!(names, ["data/", "data/table"]);
    // --rm of the backup container did not take db's anonymous volume (db still uses it).
    assert_eq!(volume_names(&d).len(), 1);
    // Restore into a new container with the same recipe reversed.
    d.docker(&[
        "run", "-d", "--name", "db2", "-v", "/data", "busybox", "sleep", "600",
    ])
    .ok();
    d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "db2",
        "-v",
        &spec,
        "busybox",
        "tar",
        "xf",
        "/backup/backup.tar",
    ])
    .ok();
    assert_eq!(
        d.docker(&["exec", "db2", "cat", "/data/table"]).ok().stdout,
        "row1\n"
    );
    // --volumes-from :ro makes the copied mounts read-only.
    let out = d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "db:ro",
        "busybox",
        "touch",
        "/data/x",
    ]);
    out.fails_with(1);
    assert_eq!(out.stderr, "touch: /data/x: Read-only file system\n");
    d.docker(&["rm", "-fv", "db", "db2"]).ok();
    assert!(volume_names(&d).is_empty());
}

#[test]
fn prune_takes_only_unused_anonymous_volumes_unless_all() {
    let d = daemon_with_busybox();
    d.docker(&["volume", "create", "named"]).ok();
    d.docker(&["run", "--name", "keep", "-v", "/inuse", "busybox", "true"])
        .ok();
    d.docker(&["run", "--name", "gone", "-v", "/unused", "busybox", "true"])
        .ok();
    d.docker(&["rm", "gone"]).ok();
    let unused = volume_names(&d)
        .into_iter()
        .find(|n| {
            n.len() == 64 && {
                let r = d.docker(&[
                    "volume",
                    "ls",
                    "-q",
                    "--filter",
                    "dangling=true",
                    "--filter",
                    &format!("name={n}"),
                ]);
                !r.stdout.trim().is_empty()
            }
        })
        .unwrap();
    let out = d.docker(&["volume", "prune", "-f"]);
    assert_eq!(
        out.ok().stdout,
        format!("Deleted Volumes:\n{unused}\n\nTotal reclaimed space: 0B\n")
    );
    assert_eq!(volume_names(&d).len(), 2, "named and in-use stay");
    let out = d.docker(&["volume", "prune", "-af"]);
    assert_eq!(
        out.ok().stdout,
        "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n"
    );
    assert_eq!(volume_names(&d).len(), 1, "the one in use stays");
    // The estiba CLI asks first and does nothing on "n".
    d.docker(&["rm", "-v", "keep"]).ok();
    d.docker(&["volume", "create", "again"]).ok();
    let out = d.run_with_stdin(
        estiba_e2e::Cli::Estiba,
        &["volume", "prune", "-a"],
        b"n\n".to_vec(),
    );
    assert_eq!(
        out.ok().stdout,
        "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(volume_names(&d), ["again"]);
}

#[test]
fn bad_input_gets_dockers_errors_and_creates_nothing() {
    let d = daemon_with_busybox();
    let out = d.docker(&["volume", "create", "a/b"]);
    out.fails_with(1);
    assert_eq!(
        out.stderr,
        "Error response from daemon: create a/b: \"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path\n"
    );
    let out = d.docker(&["volume", "create", "a"]);
    out.fails_with(1);
    assert_eq!(
        out.stderr,
        "Error response from daemon: create a: volume name is too short, names should be at least two alphanumeric characters\n"
    );
    let out = d.docker(&["volume", "create", "-o", "foo=bar", "v2"]);
    out.fails_with(1);
    assert_eq!(
        out.stderr,
        "Error response from daemon: create v2: invalid option: \"foo\"\n"
    );
    let missing = d.dir().join("nonexistent");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--mount".into(), "type=volume,src=x,dst=/d,foo=bar".into()],
            "invalid argument \"type=volume,src=x,dst=/d,foo=bar\" for \"--mount\" flag: unexpected key 'foo' in 'foo=bar'\n".into(),
        ),
        (
            vec!["--mount".into(), format!("type=bind,src={},dst=/d", missing.display())],
            format!("docker: Error response from daemon: invalid mount config for type \"bind\": bind source path does not exist: {}\n", missing.display()),
        ),
        (
            vec!["-v".into(), "/tmp:relative".into()],
            "docker: Error response from daemon: invalid volume specification: '/tmp:relative': invalid mount config for type \"bind\": invalid mount path: 'relative' mount path must be absolute\n".into(),
        ),
        (
            vec!["--mount".into(), "type=volume,src=x,dst=d".into()],
            "docker: Error response from daemon: invalid mount config for type \"volume\": invalid mount path: 'd' mount path must be absolute\n".into(),
        ),
        (
            vec!["-v".into(), "a/b:/d".into()],
            "docker: Error response from daemon: create a/b: \"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path\n".into(),
        ),
        (
            vec!["-v".into(), "okname:/d:bogus".into()],
            "docker: Error response from daemon: invalid mode: bogus\n".into(),
        ),
        (
            vec!["-v".into(), "okname:/d".into(), "-v".into(), "other:/d".into()],
            "docker: Error response from daemon: Duplicate mount point: /d\n".into(),
        ),
        (
            vec!["--volumes-from".into(), "nosuch".into()],
            "docker: Error response from daemon: No such container: nosuch\n".into(),
        ),
    ];
    for (flags, want) in cases {
        let mut args: Vec<&str> = vec!["run", "--rm"];
        args.extend(flags.iter().map(String::as_str));
        // A valid volume beside the bad one must not be created either.
        args.extend(["-v", "sidecar:/side", "busybox", "true"]);
        let out = d.docker(&args);
        out.fails_with(125);
        let first = out
            .stderr
            .split("\n\n")
            .next()
            .unwrap_or_default()
            .to_string()
            + "\n";
        let first = if first.contains("Usage:") {
            out.stderr.lines().next().unwrap().to_string() + "\n"
        } else {
            first
        };
        assert_eq!(first, want, "{flags:?}");
        assert!(volume_names(&d).is_empty(), "{flags:?} left volumes");
        assert!(
            d.docker(&["ps", "-aq"]).ok().stdout.is_empty(),
            "{flags:?} left a container"
        );
    }
    assert!(!missing.exists());
    // Through the API: an anonymous volume on / and a malformed --mount body.
    for (body, want) in [
        (
            r#"{"Image":"busybox","Volumes":{"/":{}}}"#,
            "destination can't be '/'",
        ),
        (
            r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Source":"ok1","Target":"/d","TmpfsOptions":{}}]}}"#,
            "invalid mount config for type \"volume\": field TmpfsOptions must not be specified",
        ),
    ] {
        let resp = d.api("POST", "/containers/create", Some(body.as_bytes()));
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        let text = v["message"].as_str().unwrap_or_default().to_string();
        assert_eq!(resp.status, 400, "{body}: {text}");
        assert!(text.contains(want), "{body}: {text}");
    }
    assert!(volume_names(&d).is_empty());
    assert!(d.docker(&["ps", "-aq"]).ok().stdout.is_empty());
    // Unknown volumes: 404 with dockerd's text.
    let out = d.docker(&["volume", "inspect", "nope"]);
    out.fails_with(1);
    assert_eq!(out.stdout, "[]\n");
    assert_eq!(
        out.stderr,
        "Error response from daemon: get nope: no such volume\n"
    );
    let out = d.docker(&["volume", "rm", "nope"]);
    out.fails_with(1);
    assert_eq!(
        out.stderr,
        "Error response from daemon: get nope: no such volume\n"
    );
    assert_eq!(
        d.docker(&["volume", "rm", "-f", "nope"]).ok().stdout,
        "nope\n"
    );
}
