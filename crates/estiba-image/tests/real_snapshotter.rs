//! Component tests of the image service on the real snapshotter (`estiba_snapshot::detect`:
//! overlay when it mounts here, vfs otherwise) in a temp data-root.

use std::path::Path;
use std::sync::Arc;

use estiba_events::EventBus;
use estiba_image::digest::Digest;
use estiba_image::service::{ImageService, ImageServiceConfig, ListFilters};
use estiba_store::Store;

fn service(root: &Path) -> ImageService {
    let store = Arc::new(Store::open(&root.join("metadata.redb")).unwrap());
    let snaps = estiba_snapshot::detect(&root.join("snapshots"), None).unwrap();
    ImageService::open(
        store,
        Arc::from(snaps),
        Arc::new(EventBus::new()),
        ImageServiceConfig {
            content_root: root.join("content"),
        },
    )
    .unwrap()
}

fn entry(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).unwrap();
}

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (n, d) in files {
        entry(&mut b, n, d);
    }
    b.into_inner().unwrap()
}

/// A docker-archive with one image of these layers, tagged `tag`.
fn archive(layers: &[Vec<u8>], tag: &str) -> (Vec<u8>, String) {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| Digest::of_bytes(l).to_string())
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| serde_json::json!({"created_by": "x"})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let id = Digest::of_bytes(&config);
    let mut b = tar::Builder::new(Vec::new());
    let cfg = format!("{}.json", id.hex());
    entry(&mut b, &cfg, &config);
    let mut paths = Vec::new();
    for l in layers {
        let p = format!("{}/layer.tar", Digest::of_bytes(l).hex());
        entry(&mut b, &p, l);
        paths.push(p);
    }
    let manifest =
        serde_json::json!([{"Config": cfg, "RepoTags": [tag], "Layers": paths}]).to_string();
    entry(&mut b, "manifest.json", manifest.as_bytes());
    (b.into_inner().unwrap(), id.to_string())
}

fn find_file(root: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(p);
            } else if e.file_name() == name {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn shared_base_is_unpacked_once_and_survives_removal() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    let base = layer(&[("etc/base-marker", b"base layer bytes")]);
    let (a, a_id) = archive(&[base.clone(), layer(&[("a", b"a")])], "a:1");
    let (b, b_id) = archive(&[base, layer(&[("b", b"b")])], "b:1");
    for t in [&a, &b] {
        svc.load(&mut &t[..], &mut |_| {}).unwrap();
    }
    let snaps = dir.path().join("snapshots");
    let copies = find_file(&snaps, "base-marker");
    let driver = svc.inspect("a:1").unwrap().driver_name;
    if driver == "overlay2" {
        assert_eq!(copies.len(), 1, "base stored once: {copies:?}");
    }
    for c in &copies {
        assert_eq!(std::fs::read(c).unwrap(), b"base layer bytes");
    }
    let removed = svc.remove("a:1", false, false).unwrap();
    assert_eq!(removed.len(), 3, "{removed:?}");
    assert_eq!(svc.inspect("b:1").unwrap().summary.id, b_id);
    assert!(!find_file(&snaps, "base-marker").is_empty());
    assert!(find_file(&snaps, "a").is_empty());
    assert!(svc.inspect(&a_id).is_err());
    svc.remove("b:1", false, false).unwrap();
    assert!(find_file(&snaps, "base-marker").is_empty());
}

#[test]
fn escaping_layer_is_refused_and_nothing_remains() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    let mut evil = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..7].copy_from_slice(b"../../x");
    h.set_size(4);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    evil.append(&h, &b"evil"[..]).unwrap();
    let evil = evil.into_inner().unwrap();
    let (t, _) = archive(&[layer(&[("ok", b"ok")]), evil], "evil:1");
    let err = svc.load(&mut &t[..], &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, estiba_image::service::ImageError::InvalidArchive(_)),
        "{err:?}"
    );
    assert!(!err.to_string().contains("numeric field"), "{err}");
    assert!(svc.list(&ListFilters::default()).unwrap().is_empty());
    let blobs = std::fs::read_dir(dir.path().join("content/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
    assert!(find_file(dir.path(), "ok").is_empty());
    assert!(find_file(dir.path(), "x").is_empty());
}
