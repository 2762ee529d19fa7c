//! One test body run against every snapshotter (containerd's snapshotter testsuite idea): a
//! three-layer chain, a writable snapshot mounted for real, a diff, and removal. Needs root.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::{entries, temp_dirs, Layer, MountGuard, MTIME};
use estiba_snapshot::{SnapshotError, Snapshotter};

fn layer1() -> Vec<u8> {
    Layer::new()
        .dir("etc", 0o755)
        .file_full(
            "etc/passwd",
            b"root:x:0:0\n",
            0o644,
            0,
            0,
            &[("user.foo", b"bar")],
        )
        .file("etc/remove-me", b"bye")
        .file("etc/link-target", b"shared")
        .hardlink("etc/hard", "etc/link-target")
        .symlink("etc/sym", "passwd")
        .symlink("abs", "/etc/passwd")
        .dir("bin", 0o755)
        .file_full("bin/suid", b"#!suid", 0o4755, 1000, 1000, &[])
        .dir("opaque", 0o750)
        .file("opaque/old1", b"old")
        .dir("opaque/sub", 0o755)
        .file("opaque/sub/old2", b"old")
        .dir("data", 0o755)
        .file("data/file", b"v1")
        .dir("dev", 0o755)
        .fifo("dev/fifo", 0o640)
        .finish()
}

fn layer2() -> Vec<u8> {
    Layer::new()
        .dir("etc", 0o755)
        .file("etc/.wh.remove-me", b"")
        .dir("opaque", 0o750)
        .file("opaque/.wh..wh..opq", b"")
        .file("opaque/new", b"new")
        .dir("data", 0o755)
        .file("data/file", b"v2")
        .finish()
}

fn layer3() -> Vec<u8> {
    Layer::new()
        .dir("etc", 0o755)
        .file("etc/added", b"3")
        .chardev("dev/null", 1, 3)
        .finish()
}

fn apply(s: &dyn Snapshotter, key: &str, parent: Option<&str>, tar: &[u8]) -> u64 {
    s.apply_layer(key, parent, &mut &tar[..])
        .unwrap_or_else(|e| panic!("{}: apply {key}: {e}", s.driver_name()))
        .size_bytes
}

fn check_merged(name: &str, m: &Path) {
    let read =
        |p: &str| std::fs::read(m.join(p)).unwrap_or_else(|e| panic!("{name}: read {p}: {e}"));
    assert_eq!(read("etc/passwd"), b"root:x:0:0\n", "{name}");
    assert_eq!(
        xattr::get(m.join("etc/passwd"), "user.foo").expect("getxattr"),
        Some(b"bar".to_vec()),
        "{name}: xattr kept"
    );
    assert!(
        !m.join("etc/remove-me").exists(),
        "{name}: whiteout deletes"
    );
    assert_eq!(read("data/file"), b"v2", "{name}: later layer wins");
    assert_eq!(read("etc/added"), b"3", "{name}");
    let mut opaque: Vec<String> = std::fs::read_dir(m.join("opaque"))
        .expect("opaque dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    opaque.sort();
    assert_eq!(opaque, ["new"], "{name}: opaque dir hides lower content");
    assert_eq!(
        std::fs::metadata(m.join("opaque"))
            .expect("opaque")
            .permissions()
            .mode()
            & 0o7777,
        0o750,
        "{name}"
    );

    let suid = std::fs::symlink_metadata(m.join("bin/suid")).expect("suid");
    assert_eq!((suid.uid(), suid.gid()), (1000, 1000), "{name}: owner kept");
    assert_eq!(suid.mode() & 0o7777, 0o4755, "{name}: setuid kept");
    assert_eq!(suid.mtime(), MTIME as i64, "{name}: mtime kept");
    let bin = std::fs::symlink_metadata(m.join("bin")).expect("bin");
    assert_eq!(
        bin.mtime(),
        MTIME as i64,
        "{name}: dir mtime set after its contents"
    );

    let a = std::fs::symlink_metadata(m.join("etc/hard")).expect("hard");
    let b = std::fs::symlink_metadata(m.join("etc/link-target")).expect("target");
    assert_eq!(a.ino(), b.ino(), "{name}: hardlink kept");
    assert_eq!(a.nlink(), 2, "{name}");
    assert_eq!(
        std::fs::read_link(m.join("etc/sym")).expect("sym").to_str(),
        Some("passwd")
    );
    assert_eq!(
        std::fs::read_link(m.join("abs")).expect("abs").to_str(),
        Some("/etc/passwd")
    );
    assert!(std::fs::symlink_metadata(m.join("dev/fifo"))
        .expect("fifo")
        .file_type()
        .is_fifo());
    let null = std::fs::symlink_metadata(m.join("dev/null")).expect("null");
    assert!(null.file_type().is_char_device(), "{name}");
    assert_eq!(
        null.rdev(),
        rustix::fs::makedev(1, 3),
        "{name}: device number kept"
    );
}

fn conformance(s: &dyn Snapshotter, base: &Path) {
    let name = s.driver_name();
    // Regular files plus symlink target lengths ("passwd", "/etc/passwd"), as Docker counts.
    assert_eq!(
        apply(s, "l1", None, &layer1()),
        11 + 3 + 6 + 6 + 3 + 3 + 2 + 6 + 11
    );
    apply(s, "l2", Some("l1"), &layer2());
    apply(s, "l3", Some("l2"), &layer3());
    assert!(matches!(
        s.apply_layer("l3", Some("l2"), &mut &layer3()[..]),
        Err(SnapshotError::AlreadyExists(_))
    ));
    assert!(matches!(
        s.apply_layer("lx", Some("nope"), &mut &layer3()[..]),
        Err(SnapshotError::NotFound(_))
    ));
    assert!(matches!(
        s.apply_layer("../evil", None, &mut &layer3()[..]),
        Err(SnapshotError::InvalidKey(_))
    ));
    assert_eq!(s.list().expect("list"), ["l1", "l2", "l3"]);
    assert!(s.usage("l1").expect("usage") > 0);

    let specs = s.prepare("ctr", Some("l3")).expect("prepare");
    assert_eq!(specs.len(), 1);
    let dirs = s.dirs("ctr").expect("dirs");
    if name == "overlay2" {
        assert_eq!(specs[0].fstype, "overlay");
        assert_eq!(dirs.lower.len(), 3, "ctr sits on three layers");
        assert!(dirs.work.is_some() && dirs.merged.is_some());
    }

    let mnt = base.join(format!("mnt-{name}"));
    std::fs::create_dir_all(&mnt).expect("mnt");
    let guard = MountGuard(mnt.clone());
    s.mount("ctr", &mnt).expect("mount");
    check_merged(name, &mnt);

    // A container's changes: one file written, one deleted.
    std::fs::write(mnt.join("new.txt"), b"hello").expect("write in container");
    std::fs::remove_file(mnt.join("etc/passwd")).expect("delete in container");
    let mut tar = Vec::new();
    let stats = s.diff("ctr", &mut tar).expect("diff");
    assert_eq!(stats.size_bytes, 5, "{name}");
    let got = entries(&tar);
    let find = |n: &str| got.iter().find(|(p, _, _)| p == n);
    let new = find("new.txt").unwrap_or_else(|| panic!("{name}: new.txt in {got:?}"));
    assert_eq!(
        (new.1, new.2.as_slice()),
        (tar::EntryType::Regular, &b"hello"[..])
    );
    assert!(
        find("etc/.wh.passwd").is_some(),
        "{name}: whiteout in {got:?}"
    );
    for unchanged in ["bin/suid", "data/file", "etc/added", "etc/hard"] {
        assert!(
            find(unchanged).is_none(),
            "{name}: {unchanged} did not change: {got:?}"
        );
    }
    s.unmount(&mnt).expect("unmount");
    drop(guard);

    // The diff is itself a layer: stacking it shows the container's view again.
    apply(s, "l4", Some("l3"), &tar);
    let ro = base.join(format!("ro-{name}"));
    std::fs::create_dir_all(&ro).expect("ro");
    let guard = MountGuard(ro.clone());
    s.mount("l4", &ro).expect("mount committed");
    assert_eq!(
        std::fs::read(ro.join("new.txt")).expect("new.txt"),
        b"hello"
    );
    assert!(
        !ro.join("etc/passwd").exists(),
        "{name}: deletion carried by the diff"
    );
    assert!(ro.join("etc/hard").exists(), "{name}");
    assert!(
        std::fs::write(ro.join("x"), b"x").is_err(),
        "{name}: committed view is read-only"
    );
    s.unmount(&ro).expect("unmount committed");
    drop(guard);

    assert!(matches!(s.remove("l2"), Err(SnapshotError::InUse { .. })));
    assert!(matches!(
        s.diff("l3", &mut Vec::new()),
        Err(SnapshotError::NotActive(_))
    ));
    for key in ["ctr", "l4", "l3", "l2", "l1"] {
        s.remove(key)
            .unwrap_or_else(|e| panic!("{name}: remove {key}: {e}"));
    }
    assert!(s.list().expect("list").is_empty());
    assert!(matches!(s.remove("l1"), Err(SnapshotError::NotFound(_))));
}

#[test]
fn conformance_all_drivers() {
    let base = tempfile::tempdir().expect("tempdir");
    for (name, s) in common::drivers(base.path()) {
        conformance(s.as_ref(), base.path());
        assert!(temp_dirs(
            &base
                .path()
                .join(if name == "vfs" { "vfs" } else { "overlay" })
        )
        .is_empty());
    }
}

/// An empty rootfs (no parent) can be prepared, mounted and written.
#[test]
fn prepare_without_parent() {
    let base = tempfile::tempdir().expect("tempdir");
    for (name, s) in common::drivers(base.path()) {
        s.prepare("scratch", None).expect("prepare");
        let mnt = base.path().join(format!("m-{name}"));
        std::fs::create_dir_all(&mnt).expect("mnt");
        let _guard = MountGuard(mnt.clone());
        s.mount("scratch", &mnt).expect("mount");
        std::fs::write(mnt.join("f"), b"x").expect("write");
        s.unmount(&mnt).expect("unmount");
        let mut tar = Vec::new();
        s.diff("scratch", &mut tar).expect("diff");
        let names: Vec<String> = entries(&tar).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["f"], "{name}");
        s.remove("scratch").expect("remove");
    }
}

/// Docker caps images at 128 layers; the whole stack must mount despite mount(2)'s one-page
/// option limit.
#[test]
fn long_chain_mounts() {
    let base = tempfile::tempdir().expect("tempdir");
    for (name, s) in common::drivers(base.path()) {
        let mut parent: Option<String> = None;
        for i in 0..130 {
            let key = format!("{i:0>64}");
            let tar = Layer::new().file(&format!("f{i}"), b"x").finish();
            s.apply_layer(&key, parent.as_deref(), &mut &tar[..])
                .unwrap_or_else(|e| panic!("{name}: layer {i}: {e}"));
            parent = Some(key);
        }
        let top = parent.expect("top");
        s.prepare("c", Some(&top)).expect("prepare");
        let mnt = base.path().join(format!("m-{name}"));
        std::fs::create_dir_all(&mnt).expect("mnt");
        let _guard = MountGuard(mnt.clone());
        s.mount("c", &mnt)
            .unwrap_or_else(|e| panic!("{name}: mount 130 layers: {e}"));
        assert!(
            mnt.join("f0").exists() && mnt.join("f129").exists(),
            "{name}"
        );
        s.unmount(&mnt).expect("unmount");
    }
}

#[test]
fn detect_picks_and_remembers() {
    let base = tempfile::tempdir().expect("tempdir");
    let root = base.path().join("snapshots");
    assert!(matches!(
        estiba_snapshot::detect(&root, Some("zfs")),
        Err(SnapshotError::UnknownDriver(_))
    ));
    let s = estiba_snapshot::detect(&root, Some("vfs")).expect("vfs");
    assert_eq!(s.driver_name(), "vfs");
    s.apply_layer("a", None, &mut &Layer::new().file("f", b"x").finish()[..])
        .expect("apply");
    // The root now holds vfs snapshots: auto-detection keeps vfs, overlay2 is refused.
    assert_eq!(
        estiba_snapshot::detect(&root, None)
            .expect("detect")
            .driver_name(),
        "vfs"
    );
    assert!(matches!(
        estiba_snapshot::detect(&root, Some("overlay2")),
        Err(SnapshotError::DriverConflict { .. })
    ));

    let fresh = base.path().join("fresh");
    let s = estiba_snapshot::detect(&fresh, None).expect("detect");
    assert_eq!(
        s.driver_name(),
        "overlay2",
        "overlay mounts on this test filesystem"
    );
    assert!(temp_dirs(&fresh).is_empty(), "the probe cleans up");
}

#[test]
fn cleanup_removes_leftovers() {
    let base = tempfile::tempdir().expect("tempdir");
    for (name, s) in common::drivers(base.path()) {
        let root = base
            .path()
            .join(if name == "vfs" { "vfs" } else { "overlay" });
        std::fs::create_dir_all(root.join("tmp-crashed/fs/x")).expect("leftover");
        s.apply_layer(
            "keep",
            None,
            &mut &Layer::new().file("f", b"x").finish()[..],
        )
        .expect("apply");
        s.cleanup().expect("cleanup");
        assert!(temp_dirs(&root).is_empty(), "{name}");
        assert!(s.exists("keep"), "{name}");
    }
}
