//! Hostile and broken layers against every snapshotter: each is refused, leaves no snapshot and
//! no temp dir behind, and writes nothing outside the snapshot root. Needs root.

mod common;

use std::path::PathBuf;

use common::{temp_dirs, unique, Layer, MountGuard};
use estiba_snapshot::{SnapshotError, Snapshotter};
use tar::EntryType;

struct Case {
    what: &'static str,
    tar: Vec<u8>,
    /// Host paths that must not exist afterwards.
    host: Vec<PathBuf>,
    /// Expect CorruptTar rather than InvalidLayer.
    corrupt: bool,
}

fn cases() -> Vec<Case> {
    let u = unique("escape");
    let tmp_target = PathBuf::from("/tmp").join(&u);
    let root_target = PathBuf::from("/").join(&u);
    let truncated = {
        let full = Layer::new().file("big", &[7u8; 4096]).finish();
        full[..512 + 1000].to_vec()
    };
    vec![
        Case {
            what: "dot-dot entry",
            tar: Layer::new()
                .raw(
                    EntryType::Regular,
                    format!("../../tmp/{u}").as_bytes(),
                    b"",
                    b"x",
                )
                .finish(),
            host: vec![tmp_target.clone()],
            corrupt: false,
        },
        Case {
            what: "write through an absolute symlink",
            tar: Layer::new()
                .symlink("x", "/")
                .raw(EntryType::Regular, format!("x/{u}").as_bytes(), b"", b"x")
                .finish(),
            host: vec![root_target.clone()],
            corrupt: false,
        },
        Case {
            what: "write through an absolute symlink named with a leading slash",
            tar: Layer::new()
                .raw(EntryType::Symlink, b"/tmp/x", b"/", b"")
                .raw(
                    EntryType::Regular,
                    format!("/tmp/x/tmp/{u}").as_bytes(),
                    b"",
                    b"x",
                )
                .finish(),
            host: vec![tmp_target.clone()],
            corrupt: false,
        },
        Case {
            what: "write through a relative symlink that climbs out",
            tar: Layer::new()
                .raw(
                    EntryType::Symlink,
                    b"up",
                    b"../../../../../../../../..",
                    b"",
                )
                .raw(
                    EntryType::Regular,
                    format!("up/tmp/{u}").as_bytes(),
                    b"",
                    b"x",
                )
                .finish(),
            host: vec![tmp_target.clone()],
            corrupt: false,
        },
        Case {
            what: "directory swapped for a symlink",
            tar: Layer::new()
                .dir("d", 0o755)
                .file("d/ok", b"fine")
                .symlink("d", "/tmp")
                .raw(EntryType::Regular, format!("d/{u}").as_bytes(), b"", b"x")
                .finish(),
            host: vec![tmp_target.clone()],
            corrupt: false,
        },
        Case {
            what: "symlink deep in the path",
            tar: Layer::new()
                .dir("a", 0o755)
                .symlink("a/b", "/")
                .raw(
                    EntryType::Directory,
                    format!("a/b/tmp/{u}/").as_bytes(),
                    b"",
                    b"",
                )
                .finish(),
            host: vec![tmp_target.clone()],
            corrupt: false,
        },
        Case {
            what: "hardlink to an absolute host file",
            tar: Layer::new()
                .raw(EntryType::Link, b"pw", b"/etc/shadow", b"")
                .finish(),
            host: vec![],
            corrupt: false,
        },
        Case {
            what: "hardlink climbing out",
            tar: Layer::new()
                .raw(EntryType::Link, b"sh", b"../../etc/passwd", b"")
                .finish(),
            host: vec![],
            corrupt: false,
        },
        Case {
            what: "hardlink through a symlink",
            tar: Layer::new()
                .symlink("s", "/etc")
                .raw(EntryType::Link, b"pw", b"s/passwd", b"")
                .finish(),
            host: vec![],
            corrupt: false,
        },
        Case {
            what: "whiteout through a symlink",
            tar: Layer::new()
                .symlink("w", "/tmp")
                .raw(
                    EntryType::Regular,
                    format!("w/.wh.{u}").as_bytes(),
                    b"",
                    b"",
                )
                .finish(),
            host: vec![tmp_target.clone()],
            corrupt: false,
        },
        Case {
            what: "opaque marker through a symlink",
            tar: Layer::new()
                .symlink("o", "/tmp")
                .raw(EntryType::Regular, b"o/.wh..wh..opq", b"", b"")
                .finish(),
            host: vec![],
            corrupt: false,
        },
        Case {
            what: "truncated tar",
            tar: truncated,
            host: vec![],
            corrupt: true,
        },
    ]
}

#[test]
fn hostile_layers_are_refused_and_contained() {
    let base = tempfile::tempdir().expect("tempdir");
    // A host file a whiteout through a symlink would delete.
    let victim = PathBuf::from("/tmp").join(unique("victim"));
    std::fs::write(&victim, b"keep me").expect("victim");
    let _cleanup = RemoveOnDrop(victim.clone());
    let victim_tar = Layer::new()
        .symlink("v", "/tmp")
        .raw(
            EntryType::Regular,
            format!(
                "v/.wh.{}",
                victim.file_name().and_then(|n| n.to_str()).unwrap_or("")
            )
            .as_bytes(),
            b"",
            b"",
        )
        .finish();

    for (name, s) in common::drivers(base.path()) {
        let root = base
            .path()
            .join(if name == "vfs" { "vfs" } else { "overlay" });
        // A base layer to stack on, so both "on nothing" and "on a parent" are exercised.
        s.apply_layer(
            "base",
            None,
            &mut &Layer::new()
                .dir("etc", 0o755)
                .file("etc/passwd", b"p")
                .finish()[..],
        )
        .expect("base");
        let mut all = cases();
        all.push(Case {
            what: "whiteout deleting a host file",
            tar: victim_tar.clone(),
            host: vec![],
            corrupt: false,
        });
        for case in all {
            for parent in [None, Some("base")] {
                let key = "hostile";
                let err = s
                    .apply_layer(key, parent, &mut &case.tar[..])
                    .err()
                    .unwrap_or_else(|| panic!("{name}: {} was accepted", case.what));
                if case.corrupt {
                    assert!(
                        matches!(err, SnapshotError::CorruptTar(_)),
                        "{name}: {}: {err}",
                        case.what
                    );
                } else {
                    assert!(
                        matches!(err, SnapshotError::InvalidLayer(_)),
                        "{name}: {}: {err}",
                        case.what
                    );
                    assert!(
                        err.to_string().contains("entry \""),
                        "{name}: names the entry: {err}"
                    );
                }
                assert!(
                    !s.exists(key),
                    "{name}: {}: snapshot left behind",
                    case.what
                );
                assert_eq!(s.list().expect("list"), ["base"], "{name}: {}", case.what);
                assert!(
                    temp_dirs(&root).is_empty(),
                    "{name}: {}: temp dir left",
                    case.what
                );
                for p in &case.host {
                    assert!(!p.exists(), "{name}: {}: wrote {}", case.what, p.display());
                }
            }
        }
        assert_eq!(std::fs::read(&victim).expect("victim survives"), b"keep me");
        assert_eq!(
            std::fs::read("/etc/passwd").map(|b| b.is_empty()).ok(),
            Some(false)
        );
    }
}

/// Removes a host file the test planted, even when an assertion fails.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An absolute hardlink target names a path inside the layer (Docker joins it to the root): on
/// vfs, where the parent's files are present, it links to the snapshot's own file, not the host's.
#[test]
fn absolute_hardlink_resolves_inside() {
    use std::os::unix::fs::MetadataExt;
    let base = tempfile::tempdir().expect("tempdir");
    let s = estiba_snapshot::vfs::VfsSnapshotter::new(&base.path().join("vfs")).expect("vfs");
    let l1 = Layer::new()
        .dir("etc", 0o755)
        .file("etc/passwd", b"p")
        .finish();
    let l2 = Layer::new()
        .raw(EntryType::Link, b"pw", b"/etc/passwd", b"")
        .finish();
    s.apply_layer("l1", None, &mut &l1[..]).expect("l1");
    s.apply_layer("l2", Some("l1"), &mut &l2[..]).expect("l2");
    let fs = base.path().join("vfs/l2/fs");
    let pw = std::fs::metadata(fs.join("pw")).expect("pw");
    assert_eq!(
        pw.ino(),
        std::fs::metadata(fs.join("etc/passwd")).expect("own").ino()
    );
    assert_ne!(
        pw.ino(),
        std::fs::metadata("/etc/passwd").expect("host").ino()
    );
}

/// A symlink from a lower layer is not a way out either: a later layer writing under it stays
/// inside the snapshot (overlay: its own dir; vfs: the symlink is replaced by a directory).
#[test]
fn lower_layer_symlink_is_contained() {
    let base = tempfile::tempdir().expect("tempdir");
    let u = unique("lower");
    for (name, s) in common::drivers(base.path()) {
        let l1 = Layer::new().symlink("lib", "/tmp").finish();
        let l2 = Layer::new().file(&format!("lib/{u}"), b"inside").finish();
        s.apply_layer("l1", None, &mut &l1[..]).expect("l1");
        s.apply_layer("l2", Some("l1"), &mut &l2[..]).expect("l2");
        assert!(
            !PathBuf::from("/tmp").join(&u).exists(),
            "{name}: wrote to the host"
        );
        s.prepare("c", Some("l2")).expect("prepare");
        let mnt = base.path().join(format!("m-{name}"));
        std::fs::create_dir_all(&mnt).expect("mnt");
        let _guard = MountGuard(mnt.clone());
        s.mount("c", &mnt).expect("mount");
        let lib = std::fs::symlink_metadata(mnt.join("lib")).expect("lib");
        assert!(
            lib.is_dir(),
            "{name}: the upper directory covers the lower symlink"
        );
        assert_eq!(
            std::fs::read(mnt.join("lib").join(&u)).expect("file"),
            b"inside"
        );
        s.unmount(&mnt).expect("unmount");
    }
}

/// Long names (GNU `L` entries and PAX `path`) unpack; an extension header larger than
/// MAX_EXTENSION_BYTES is refused before the tar reader buffers it.
#[test]
fn long_names_ok_huge_extension_refused() {
    let base = tempfile::tempdir().expect("tempdir");
    let long = format!("{}/{}", "d".repeat(150), "f".repeat(200));
    let ok = Layer::new().file(&long, b"deep").finish();
    let mut huge_pax = Vec::new();
    {
        let body = vec![b'a'; (estiba_snapshot::MAX_EXTENSION_BYTES + 1024) as usize];
        let mut b = tar::Builder::new(&mut huge_pax);
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_size(body.len() as u64);
        h.set_path("PaxHeaders/x").expect("path");
        h.set_cksum();
        b.append(&h, body.as_slice()).expect("pax");
        let mut f = tar::Header::new_gnu();
        f.set_size(1);
        f.set_mode(0o644);
        b.append_data(&mut f, "f", &b"x"[..]).expect("file");
        b.finish().expect("finish");
    }
    for (name, s) in common::drivers(base.path()) {
        s.apply_layer("ok", None, &mut &ok[..]).expect("long names");
        let root = base
            .path()
            .join(if name == "vfs" { "vfs" } else { "overlay" });
        assert_eq!(
            std::fs::read(root.join("ok/fs").join(&long)).expect("file"),
            b"deep"
        );
        let err = s
            .apply_layer("huge", None, &mut &huge_pax[..])
            .expect_err("huge pax");
        assert!(matches!(err, SnapshotError::CorruptTar(_)), "{name}: {err}");
        assert!(
            err.to_string().contains("extension header"),
            "{name}: {err}"
        );
        assert!(!s.exists("huge") && temp_dirs(&root).is_empty(), "{name}");
    }
}
