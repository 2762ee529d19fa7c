//! Layers are stored once: busybox and the layered image share their base layer on disk, and
//! removing either leaves the other intact and readable. Also checks the unpacked layered image
//! shows what its layers say (whiteouts, opaque dir, owners, modes, links).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use estiba_e2e::disk;
use estiba_e2e::testimg::{self, recipes::HOST_BUSYBOX};
use estiba_e2e::Daemon;

/// Snapshot directories holding `bin/busybox` (there must be exactly one).
fn busybox_copies(d: &Daemon) -> Vec<PathBuf> {
    disk::find_tail(&d.snapshots_dir(), Path::new("bin/busybox"))
}

fn assert_busybox_readable(d: &Daemon) {
    let copies = busybox_copies(d);
    assert_eq!(
        copies.len(),
        1,
        "busybox stored {} times: {copies:?}",
        copies.len()
    );
    let host = std::fs::read(HOST_BUSYBOX).expect("reading the host busybox");
    let stored = std::fs::read(&copies[0]).expect("reading the stored busybox");
    assert!(
        stored == host,
        "the stored busybox differs from {HOST_BUSYBOX}"
    );
}

#[test]
fn shared_base_layer_is_stored_once_and_survives_removals() {
    let d = Daemon::start();
    let bb = testimg::busybox().expect("busybox");
    let lay = testimg::layered().expect("layered");
    let busybox_bytes = std::fs::metadata(HOST_BUSYBOX)
        .map(|m| m.len())
        .unwrap_or(0);

    d.load(&[&bb]);
    let snapshots_one = disk::walk(&d.snapshots_dir());
    let snap_bytes_one = disk::unique_file_bytes(&d.snapshots_dir());
    let content_bytes_one = disk::unique_file_bytes(&d.content_dir());
    assert!(
        snap_bytes_one >= busybox_bytes,
        "busybox not unpacked: {snap_bytes_one} bytes"
    );
    assert_busybox_readable(&d);

    d.load(&[&lay]);
    let snap_bytes_two = disk::unique_file_bytes(&d.snapshots_dir());
    let content_bytes_two = disk::unique_file_bytes(&d.content_dir());
    // Three small layers on top: a few KiB more, not another busybox.
    assert!(
        snap_bytes_two - snap_bytes_one < 64 * 1024,
        "snapshots grew by {} bytes when a layer was shared",
        snap_bytes_two - snap_bytes_one
    );
    assert!(
        content_bytes_two - content_bytes_one < 256 * 1024,
        "content grew by {} bytes when a layer was shared",
        content_bytes_two - content_bytes_one
    );
    assert_busybox_readable(&d);

    // Removing the layered image leaves busybox whole, and its own layers go.
    d.docker(&["rmi", "estiba/layered"]).ok();
    assert_busybox_readable(&d);
    let out = d.docker(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    out.ok();
    assert_eq!(out.stdout.trim(), bb.id());
    assert_eq!(
        disk::walk(&d.snapshots_dir()),
        snapshots_one,
        "layered's snapshots remain"
    );
    assert_eq!(disk::unique_file_bytes(&d.snapshots_dir()), snap_bytes_one);

    // The other way round: removing busybox keeps the base layer for the layered image.
    d.load(&[&lay]);
    d.docker(&["rmi", "busybox"]).ok();
    assert_busybox_readable(&d);
    let out = d.docker(&["image", "inspect", "-f", "{{.Id}}", "estiba/layered"]);
    out.ok();
    assert_eq!(out.stdout.trim(), lay.id());
    let out = d.docker(&["history", "-q", "estiba/layered"]);
    out.ok();
    assert_eq!(out.lines().len(), 7, "{out}");

    // And removing the last user removes the layer.
    d.docker(&["rmi", "estiba/layered"]).ok();
    assert!(
        busybox_copies(&d).is_empty(),
        "the base layer outlived every image"
    );
    let left = disk::unique_file_bytes(&d.snapshots_dir());
    assert!(
        left < 64 * 1024,
        "{left} bytes of snapshots outlived every image"
    );
    let blobs: Vec<_> = disk::files_with_sizes(&d.content_dir())
        .into_iter()
        .filter(|(p, _)| p.starts_with("blobs"))
        .collect();
    assert!(blobs.is_empty(), "blobs outlived every image: {blobs:?}");
}

/// Mounts the image read-only through overlay (lowerdirs only) or uses the vfs dir directly, and
/// runs `check` on the merged root.
fn with_rootfs(d: &Daemon, image: &str, check: impl FnOnce(&Path)) {
    let out = d.docker(&["image", "inspect", "-f", "{{json .GraphDriver}}", image]);
    out.ok();
    let driver = out.json();
    let data = &driver["Data"];
    let dir = |key: &str| data[key].as_str().map(str::to_owned);
    match driver["Name"].as_str() {
        Some("overlay2") => {
            let upper = dir("UpperDir").unwrap_or_else(|| panic!("no UpperDir: {out}"));
            let mut lowers = vec![upper];
            if let Some(lower) = dir("LowerDir") {
                lowers.extend(lower.split(':').map(str::to_owned));
            }
            let target = d.dir().join("check-mount");
            std::fs::create_dir_all(&target).expect("creating the mount point");
            let options = format!("lowerdir={}", lowers.join(":"));
            let mount = std::process::Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &options])
                .arg(&target)
                .output()
                .expect("running mount");
            assert!(
                mount.status.success(),
                "mount -o {options}: {}",
                String::from_utf8_lossy(&mount.stderr)
            );
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&target)));
            let umount = std::process::Command::new("umount").arg(&target).status();
            assert!(
                umount.is_ok_and(|s| s.success()),
                "umount {}",
                target.display()
            );
            if let Err(panic) = result {
                std::panic::resume_unwind(panic);
            }
        }
        Some("vfs") => {
            let root = dir("UpperDir")
                .or_else(|| dir("Dir"))
                .unwrap_or_else(|| panic!("vfs image without a directory: {out}"));
            check(Path::new(&root));
        }
        other => panic!("unknown storage driver {other:?}: {out}"),
    }
}

#[test]
fn layered_image_unpacks_to_what_its_layers_say() {
    check_layered_unpack(Daemon::start());
}

#[test]
fn layered_image_unpacks_on_vfs_too() {
    let d = Daemon::start_with(&["--storage-driver", "vfs"]);
    let out = d.docker(&["info", "--format", "{{.Driver}}"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "vfs", "{out}");
    check_layered_unpack(d);
}

fn check_layered_unpack(d: Daemon) {
    d.load(&[&testimg::layered().expect("layered")]);
    with_rootfs(&d, "estiba/layered", |root| {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
        let meta = |p: &str| {
            std::fs::symlink_metadata(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
        };
        assert_eq!(
            read("data/modified.txt").as_deref(),
            Some("v2\n"),
            "modified file"
        );
        assert!(!root.join("data/deleted.txt").exists(), "whiteout ignored");
        assert!(
            !root.join("etc/hostname").exists(),
            "whiteout of a lower-layer file ignored"
        );
        assert!(root.join("etc/passwd").exists());
        let mut opaque: Vec<String> = std::fs::read_dir(root.join("data/opaque"))
            .expect("reading the opaque dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        opaque.sort();
        assert_eq!(opaque, ["c.txt"], "opaque directory shows lower entries");
        let owned = meta("data/owned");
        assert_eq!((owned.uid(), owned.gid()), (1000, 1000));
        assert_eq!(owned.permissions().mode() & 0o7777, 0o640);
        assert_eq!(
            meta("usr/local/bin/suid").permissions().mode() & 0o7777,
            0o4755
        );
        assert_eq!(
            std::fs::read_link(root.join("data/link")).ok(),
            Some(PathBuf::from("modified.txt"))
        );
        let keep = meta("data/keep.txt");
        let hard = meta("data/keep.txt.hard");
        assert_eq!(keep.nlink(), 2, "hardlink lost");
        assert_eq!((keep.dev(), keep.ino()), (hard.dev(), hard.ino()));
        assert_eq!(meta("tmp").permissions().mode() & 0o7777, 0o1777);
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).ok(),
            Some(PathBuf::from("busybox"))
        );
        assert_eq!(
            meta("data/modified.txt").mtime(),
            1_704_067_200,
            "mtime not kept"
        );
    });
}
