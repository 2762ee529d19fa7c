//! Component tests of the service against a temp data-root.

use super::*;

fn service() -> (tempfile::TempDir, Arc<VolumeService>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("metadata.redb")).unwrap());
    let svc = VolumeService::open(store, Arc::new(EventBus::new()), dir.path()).unwrap();
    (dir, svc)
}

fn named(name: &str) -> CreateVolume {
    CreateVolume {
        name: name.to_string(),
        ..Default::default()
    }
}

#[test]
fn create_is_idempotent_and_rm_refuses_in_use() {
    let (_d, svc) = service();
    let v = svc.create(named("data")).unwrap();
    assert!(v.mountpoint.is_dir());
    assert!(v.mountpoint.ends_with("volumes/data/_data"));
    let again = svc.create(named("data")).unwrap();
    assert_eq!(again.record.created_at, v.record.created_at);
    svc.acquire("data", "c1").unwrap();
    let e = svc.remove("data", true).unwrap_err();
    assert_eq!(e.to_string(), "remove data: volume is in use - [c1]");
    svc.release("data", "c1").unwrap();
    svc.remove("data", false).unwrap();
    assert!(!v.mountpoint.exists());
    assert_eq!(
        svc.remove("data", false).unwrap_err().to_string(),
        "get data: no such volume"
    );
    svc.remove("data", true).unwrap();
}

#[test]
fn bad_names_create_nothing() {
    let (_d, svc) = service();
    let e = svc.create(named("a/b")).unwrap_err();
    assert!(e
        .to_string()
        .starts_with("create a/b: \"a/b\" includes invalid characters"));
    assert!(svc.list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(svc.root()).unwrap().count(), 0);
}

#[test]
fn prune_takes_only_unused_anonymous_unless_all() {
    let (_d, svc) = service();
    svc.create(named("keepme")).unwrap();
    let mut anon = CreateVolume::default();
    anon.labels
        .insert(ANONYMOUS_LABEL.to_string(), String::new());
    let a = svc.create(anon.clone()).unwrap().record.name;
    let b = svc.create(anon).unwrap().record.name;
    svc.acquire(&b, "c1").unwrap();
    let (gone, _) = svc.prune(false, &|_| false).unwrap();
    assert_eq!(gone, vec![a]);
    let (gone, _) = svc.prune(true, &|_| false).unwrap();
    assert_eq!(gone, vec!["keepme".to_string()]);
    assert_eq!(svc.list().unwrap().len(), 1);
}

#[test]
fn export_import_round_trip() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (_d, svc) = service();
    let v = svc.create(named("src")).unwrap();
    let m = &v.mountpoint;
    std::fs::create_dir(m.join("dir")).unwrap();
    std::fs::write(m.join("dir/file"), b"payload").unwrap();
    std::fs::set_permissions(m.join("dir/file"), std::fs::Permissions::from_mode(0o4750)).unwrap();
    rustix::fs::chown(
        m.join("dir/file").as_path(),
        Some(rustix::fs::Uid::from_raw(1234)),
        Some(rustix::fs::Gid::from_raw(567)),
    )
    .unwrap();
    std::fs::set_permissions(m.join("dir/file"), std::fs::Permissions::from_mode(0o4750)).unwrap();
    let has_xattr = xattr::set(m.join("dir/file"), "user.estiba", b"v1").is_ok();
    std::os::unix::fs::symlink("../dir/file", m.join("link")).unwrap();
    let mut tar = Vec::new();
    svc.export("src", &mut tar).unwrap();
    svc.import("dst", &mut tar.as_slice()).unwrap();
    let n = svc.get("dst").unwrap().mountpoint;
    assert_eq!(std::fs::read(n.join("dir/file")).unwrap(), b"payload");
    let meta = std::fs::symlink_metadata(n.join("dir/file")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1234, 567, 0o4750)
    );
    assert_eq!(
        std::fs::read_link(n.join("link")).unwrap(),
        Path::new("../dir/file")
    );
    if has_xattr {
        assert_eq!(
            xattr::get(n.join("dir/file"), "user.estiba")
                .unwrap()
                .as_deref(),
            Some(&b"v1"[..])
        );
    }
    // Importing again into the now non-empty volume is refused and changes nothing.
    let e = svc.import("dst", &mut tar.as_slice()).unwrap_err();
    assert_eq!(e.to_string(), "import dst: volume is not empty");
}

#[test]
fn import_refuses_escaping_entries() {
    let (_d, svc) = service();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    // `set_path` refuses `..`, so write the raw name.
    h.as_old_mut().name[..9].copy_from_slice(b"../evil12");
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let data = b.into_inner().unwrap();
    let e = svc.import("imp", &mut data.as_slice()).unwrap_err();
    assert!(e.to_string().contains("outside the volume"), "{e}");
    assert!(!svc.root().join("imp/evil12").exists());
}

#[test]
fn references_of_missing_containers_are_dropped() {
    let (_d, svc) = service();
    svc.create(named("held")).unwrap();
    svc.acquire("held", "alive").unwrap();
    svc.acquire("held", "gone").unwrap();
    let known = ["alive".to_string()].into_iter().collect();
    assert_eq!(svc.retain_users(&known).unwrap(), 1);
    let users: Vec<String> = svc.get("held").unwrap().record.users.into_iter().collect();
    assert_eq!(users, ["alive"]);
}
