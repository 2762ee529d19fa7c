//! Component tests of the image service against a temp data-root and an in-memory snapshotter.

use std::sync::Arc;

use estiba_events::EventBus;
use estiba_store::Store;

use super::*;
use crate::config::Compression;
use crate::testutil::{
    compress, docker_archive, oci_archive, tar_files, tar_of, FakeSnapshotter, TestImage,
};

struct Env {
    dir: tempfile::TempDir,
    snaps: Arc<FakeSnapshotter>,
    events: Arc<EventBus>,
    svc: ImageService,
}

fn open_in(dir: tempfile::TempDir, snaps: Arc<FakeSnapshotter>) -> Env {
    let store = Arc::new(Store::open(&dir.path().join("metadata.redb")).unwrap());
    let events = Arc::new(EventBus::new());
    let svc = ImageService::open(
        store,
        snaps.clone(),
        events.clone(),
        ImageServiceConfig {
            content_root: dir.path().join("content"),
        },
    )
    .unwrap();
    Env {
        dir,
        snaps,
        events,
        svc,
    }
}

fn env() -> Env {
    open_in(
        tempfile::tempdir().unwrap(),
        Arc::new(FakeSnapshotter::default()),
    )
}

impl Env {
    fn load(&self, data: &[u8]) -> Result<Vec<LoadedItem>, ImageError> {
        let mut out = Vec::new();
        self.svc
            .load(&mut &data[..], &mut |i| out.push(i.clone()))?;
        Ok(out)
    }

    fn blobs(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path().join("content/blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Everything observable about the store, to compare before and after a failed operation.
    fn state(&self) -> (Vec<String>, Vec<String>, Vec<ImageSummary>) {
        let all = ListFilters {
            all: true,
            ..Default::default()
        };
        (
            self.blobs(),
            self.snaps.keys(),
            self.svc.list(&all).unwrap(),
        )
    }

    fn events(&self) -> Vec<(String, String)> {
        self.events
            .subscribe()
            .0
            .into_iter()
            .map(|e| {
                (
                    e.action,
                    e.attributes.get("name").cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn tags(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .svc
            .list(&ListFilters::default())
            .unwrap()
            .into_iter()
            .flat_map(|s| s.repo_tags)
            .collect();
        t.sort();
        t
    }
}

fn base_layer() -> Vec<u8> {
    tar_of(&[
        ("bin/busybox", &[7u8; 3000][..]),
        ("etc/passwd", b"root:x:0:0"),
    ])
}

fn img(extra: &[u8], created: &str) -> TestImage {
    TestImage::new(
        vec![base_layer(), tar_of(&[("data", extra)])],
        created,
        &[("k", "v")],
    )
}

#[test]
fn load_docker_archive_then_list_inspect_history() {
    let e = env();
    let i = img(b"one", "2024-01-01T00:00:00Z");
    let loaded = e
        .load(&docker_archive(&[(&i, &["busybox:latest"])]))
        .unwrap();
    assert_eq!(loaded, vec![LoadedItem::Tag("busybox:latest".into())]);

    let list = e.svc.list(&ListFilters::default()).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, i.id());
    assert_eq!(list[0].repo_tags, vec!["busybox:latest"]);
    assert_eq!(list[0].size_bytes, 3000 + 10 + 3);
    assert_eq!(list[0].created, 1_704_067_200);
    assert_eq!(list[0].labels.get("k").map(String::as_str), Some("v"));

    let hex = i.id()[7..].to_string();
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        &i.id(),
        &hex,
        &hex[..5],
        &format!("sha256:{}", &hex[..8]),
    ] {
        let d = e
            .svc
            .inspect(name)
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(d.summary.id, i.id(), "{name}");
        assert_eq!(d.diff_ids.len(), 2);
        assert_eq!(d.os, "linux");
        assert_eq!(d.config["config"]["Cmd"][0], "sh");
        assert_eq!(d.driver_name, "vfs");
        assert!(d.dirs.is_some());
    }
    for (name, want) in [
        ("nope", "No such image: nope:latest"),
        ("busybox:1", "No such image: busybox:1"),
        ("UPPER", "invalid reference format"),
    ] {
        let err = e.svc.inspect(name).unwrap_err().to_string();
        assert!(err.starts_with(want), "{name}: {err}");
    }

    let h = e.svc.history("busybox").unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].id, i.id());
    assert_eq!(h[0].tags, vec!["busybox:latest"]);
    assert_eq!(h[0].size_bytes, 0, "empty_layer entry");
    assert_eq!(h[1].size_bytes, 3);
    assert_eq!(h[2].size_bytes, 3010);
    assert_eq!(h[2].id, "<missing>");
    assert_eq!(e.events(), vec![("load".to_string(), i.id())]);
}

#[test]
fn load_oci_layouts_with_compressed_layers() {
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let e = env();
        let i = img(b"oci", "2024-01-01T00:00:00Z");
        let tarball = compress(&oci_archive(&[(&i, &["me/bb:1"])], c), Compression::Gzip);
        assert_eq!(
            e.load(&tarball).unwrap(),
            vec![LoadedItem::Tag("me/bb:1".into())],
            "{c:?}"
        );
        assert_eq!(e.svc.inspect("me/bb:1").unwrap().summary.id, i.id());
        assert_eq!(e.snaps.keys().len(), 2);
    }
    let e = env();
    let i = img(b"untagged", "2024-01-01T00:00:00Z");
    assert_eq!(
        e.load(&oci_archive(&[(&i, &[])], Compression::Gzip))
            .unwrap(),
        vec![LoadedItem::Id(i.id())]
    );
    assert_eq!(
        e.svc
            .list(&ListFilters {
                dangling: Some(true),
                ..Default::default()
            })
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn save_then_load_gives_identical_ids() {
    let e = env();
    let a = img(b"a", "2024-01-01T00:00:00Z");
    let b = img(b"b", "2024-01-02T00:00:00Z");
    e.load(&oci_archive(
        &[(&a, &["a:1"]), (&b, &["b:1", "b:2"])],
        Compression::Gzip,
    ))
    .unwrap();
    let mut out = Vec::new();
    e.svc
        .save(&["a:1".to_string(), "b".to_string()], &mut out)
        .unwrap();
    let files = tar_files(&out);
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 2);

    let f = env();
    let loaded = f.load(&out).unwrap();
    assert_eq!(loaded.len(), 3, "{loaded:?}");
    assert_eq!(f.svc.inspect("a:1").unwrap().summary.id, a.id());
    assert_eq!(f.svc.inspect("b:2").unwrap().summary.id, b.id());
    assert_eq!(f.tags(), vec!["a:1", "b:1", "b:2"]);
    // 2 configs, 3 layers (shared base once), 2 manifests.
    assert_eq!(f.blobs().len(), 7);
    let saves = e.events().into_iter().filter(|(a, _)| a == "save").count();
    assert_eq!(saves, 2);
}

#[test]
fn shared_base_layer_is_stored_once_and_survives_removal() {
    let e = env();
    let a = img(b"a", "2024-01-01T00:00:00Z");
    let b = img(b"b", "2024-01-02T00:00:00Z");
    e.load(&docker_archive(&[(&a, &["a:1"])])).unwrap();
    e.load(&docker_archive(&[(&b, &["b:1"])])).unwrap();
    assert_eq!(
        e.snaps.applied.lock().unwrap().len(),
        3,
        "base unpacked once"
    );
    // 2 configs + base + two top layers.
    assert_eq!(e.blobs().len(), 5);
    let usage = e.svc.disk_usage().unwrap();
    assert_eq!(usage.layers_size_bytes, 3010 + 1 + 1);
    assert!(usage.images.iter().all(|i| i.shared_size_bytes == 3010));

    let removed = e.svc.remove("a:1", false, false).unwrap();
    assert_eq!(removed[0], RemovedItem::Untagged("a:1".into()));
    assert_eq!(removed[1], RemovedItem::Deleted(a.id()));
    assert_eq!(removed.len(), 3, "image and its own top layer: {removed:?}");
    assert_eq!(e.snaps.keys().len(), 2);
    assert_eq!(e.blobs().len(), 3);
    assert_eq!(e.svc.inspect("b:1").unwrap().summary.size_bytes, 3011);
    let mut out = Vec::new();
    e.svc.save(&["b:1".to_string()], &mut out).unwrap();

    e.svc.remove("b:1", false, false).unwrap();
    assert!(e.snaps.keys().is_empty());
    assert!(e.blobs().is_empty());
}

#[test]
fn hostile_loads_leave_the_store_unchanged() {
    let e = env();
    let good = img(b"good", "2024-01-01T00:00:00Z");
    e.load(&docker_archive(&[(&good, &["good:1"])])).unwrap();
    let before = e.state();

    let mut wrong_diff = img(b"x", "2024-01-01T00:00:00Z");
    wrong_diff.layers[1] = tar_of(&[("data", b"tampered")]);
    let escape = TestImage::new(
        vec![base_layer(), tar_of(&[("../../x", b"evil")])],
        "2024-01-01T00:00:00Z",
        &[],
    );
    let ok = img(b"fine", "2024-01-01T00:00:00Z");
    let two = docker_archive(&[(&ok, &["fine:1"]), (&escape, &["evil:1"])]);
    let gz_oci = oci_archive(&[(&wrong_diff, &["w:1"])], Compression::Gzip);
    let bad_tag = docker_archive(&[(&ok, &["UPPER:1"])]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "diff id mismatch (plain)",
            docker_archive(&[(&wrong_diff, &["w:1"])]),
            "diff ID mismatch",
        ),
        ("diff id mismatch (gzip)", gz_oci, "diff ID mismatch"),
        ("escaping entry after a good image", two, "escapes"),
        (
            "truncated",
            docker_archive(&[(&ok, &["t:1"])])[..4000].to_vec(),
            "unexpected end",
        ),
        ("bad tag", bad_tag, "invalid tag"),
    ];
    for (what, data, want) in cases {
        let err = e.load(&data).unwrap_err();
        assert!(
            matches!(err, ImageError::InvalidArchive(_)),
            "{what}: {err:?}"
        );
        assert!(err.to_string().contains(want), "{what}: {err}");
        assert_eq!(e.state(), before, "{what}");
    }
    assert_eq!(e.events().len(), 1, "only the good load published");
}

#[test]
fn tag_untag_and_docker_rmi_rules() {
    let e = env();
    let a = img(b"a", "2024-01-01T00:00:00Z");
    e.load(&docker_archive(&[(&a, &["a:1"])])).unwrap();
    e.svc.tag("a:1", "me/bb", Some("1")).unwrap();
    e.svc.tag(&a.id()[7..19], "other", None).unwrap();
    assert_eq!(e.tags(), vec!["a:1", "me/bb:1", "other:latest"]);
    assert!(e.svc.inspect("a:1").unwrap().last_tag_time.is_some());
    assert!(matches!(
        e.svc.tag("nope", "x", None),
        Err(ImageError::NotFound(_))
    ));
    assert!(matches!(
        e.svc.tag(
            "a:1",
            "x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            None
        ),
        Err(ImageError::InvalidReference(_))
    ));

    let short = &a.id()[7..19];
    let err = e.svc.remove(&a.id(), false, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")
    );
    assert!(matches!(err, ImageError::Conflict(_)));
    assert_eq!(
        e.svc.remove("me/bb:1", false, false).unwrap(),
        vec![RemovedItem::Untagged("me/bb:1".into())]
    );
    assert_eq!(
        e.svc.remove("other", false, false).unwrap(),
        vec![RemovedItem::Untagged("other:latest".into())]
    );
    // One tag left: removal by ID untags and deletes.
    let removed = e.svc.remove(&a.id()[7..15], false, false).unwrap();
    assert_eq!(removed[0], RemovedItem::Untagged("a:1".into()));
    assert_eq!(removed[1], RemovedItem::Deleted(a.id()));
    assert_eq!(removed.len(), 4);
    let actions: Vec<String> = e.events().into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        actions,
        vec!["load", "tag", "tag", "untag", "untag", "untag", "delete"]
    );
}

#[test]
fn forced_removal_by_id_untags_everything() {
    let e = env();
    let a = img(b"a", "2024-01-01T00:00:00Z");
    e.load(&docker_archive(&[(&a, &["a:1", "b:1"])])).unwrap();
    let removed = e.svc.remove(&a.id(), true, false).unwrap();
    assert_eq!(
        removed[..3],
        [
            RemovedItem::Untagged("a:1".into()),
            RemovedItem::Untagged("b:1".into()),
            RemovedItem::Deleted(a.id())
        ]
    );
    assert!(e.blobs().is_empty());
}

#[test]
fn retagging_leaves_a_dangling_image_that_prune_removes() {
    let e = env();
    let old = img(b"old", "2024-01-01T00:00:00Z");
    let new = img(b"new", "2024-01-02T00:00:00Z");
    e.load(&docker_archive(&[(&old, &["x:1"])])).unwrap();
    e.load(&docker_archive(&[(&new, &["x:1"])])).unwrap();
    let all = e.svc.list(&ListFilters::default()).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, new.id(), "newest first");
    assert!(all[1].repo_tags.is_empty());
    let dangling = e
        .svc
        .list(&ListFilters {
            dangling: Some(true),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(dangling.len(), 1);
    assert_eq!(dangling[0].id, old.id());

    let since = e
        .svc
        .list(&ListFilters {
            since: Some(old.id()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(since.len(), 1);
    let before = e
        .svc
        .list(&ListFilters {
            before: Some("x:1".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(before[0].id, old.id());
    let refs = e
        .svc
        .list(&ListFilters {
            references: vec!["x*".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(refs.len(), 1);
    let labelled = e
        .svc
        .list(&ListFilters {
            labels: vec!["k=nope".into()],
            ..Default::default()
        })
        .unwrap();
    assert!(labelled.is_empty());

    // `until` before the image was created keeps it.
    let (items, _) = e.svc.prune(false, &[], Some(0)).unwrap();
    assert!(items.is_empty(), "{items:?}");
    let (items, reclaimed) = e.svc.prune(false, &[], Some(i64::MAX)).unwrap();
    assert_eq!(items[0], RemovedItem::Deleted(old.id()));
    assert_eq!(reclaimed, 3);
    assert_eq!(
        e.svc
            .list(&ListFilters {
                all: true,
                ..Default::default()
            })
            .unwrap()
            .len(),
        1
    );
    let (items, _) = e.svc.prune(true, &["!k".to_string()], None).unwrap();
    assert!(items.is_empty());
    let (items, reclaimed) = e.svc.prune(true, &[], None).unwrap();
    assert_eq!(items[0], RemovedItem::Untagged("x:1".into()));
    assert_eq!(reclaimed, 3013);
    assert!(e.blobs().is_empty());
    let prune = e
        .events
        .subscribe()
        .0
        .into_iter()
        .rev()
        .find(|ev| ev.action == "prune")
        .unwrap();
    assert_eq!(
        prune.attributes.get("reclaimed").map(String::as_str),
        Some("3013")
    );
    assert_eq!(prune.actor_id, "");
}

#[test]
fn ambiguous_id_prefix_is_not_found() {
    let e = env();
    let mut images = Vec::new();
    for n in 0..40 {
        images.push(img(format!("{n}").as_bytes(), "2024-01-01T00:00:00Z"));
    }
    let pairs: Vec<(&TestImage, &[&str])> = images.iter().map(|i| (i, &[][..])).collect();
    e.load(&docker_archive(&pairs)).unwrap();
    // 40 IDs over 16 first digits: some first digit is shared.
    let mut firsts: Vec<char> = images
        .iter()
        .map(|i| i.id().chars().nth(7).unwrap())
        .collect();
    firsts.sort();
    let dup = firsts.windows(2).find(|w| w[0] == w[1]).unwrap()[0];
    assert!(matches!(
        e.svc.inspect(&dup.to_string()),
        Err(ImageError::NotFound(_))
    ));
}

#[test]
fn open_collects_stray_blobs_and_snapshots() {
    let e = env();
    let a = img(b"a", "2024-01-01T00:00:00Z");
    e.load(&docker_archive(&[(&a, &["a:1"])])).unwrap();
    let before = e.state();
    std::fs::write(
        e.dir
            .path()
            .join("content/blobs/sha256")
            .join("ab".repeat(32)),
        b"stray",
    )
    .unwrap();
    std::fs::write(e.dir.path().join("content/ingest/tmp1"), b"half").unwrap();
    let stray_key = "cd".repeat(32);
    e.snaps
        .snaps
        .lock()
        .unwrap()
        .insert(stray_key.clone(), (None, Vec::new()));
    e.snaps
        .snaps
        .lock()
        .unwrap()
        .insert("container-1".into(), (None, Vec::new()));
    let Env {
        dir, snaps, svc, ..
    } = e;
    drop(svc);
    let e = open_in(dir, snaps);
    let (blobs, keys, list) = e.state();
    assert_eq!(blobs, before.0);
    assert_eq!(list, before.2);
    let mut want = before.1.clone();
    want.push("container-1".into());
    want.sort();
    assert_eq!(keys, want, "stray chain snapshot gone, foreign key kept");
    assert_eq!(
        std::fs::read_dir(e.dir.path().join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn loads_the_reference_dockerd_save_when_present() {
    let Ok(data) = std::fs::read("/tmp/ref-busybox-save.tar") else {
        eprintln!("skipping: /tmp/ref-busybox-save.tar not present on this machine");
        return;
    };
    let e = env();
    assert_eq!(
        e.load(&data).unwrap(),
        vec![LoadedItem::Tag("busybox:latest".into())]
    );
    let d = e.svc.inspect("busybox").unwrap();
    assert_eq!(
        d.summary.id,
        "sha256:09b23f020198c1955a16e31144c25f088110c041342dd8ea3f11fb1aab29076f"
    );
    assert_eq!(d.summary.size_bytes, 1_982_321, "same Size as dockerd");
    let h = e.svc.history("busybox").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].comment, "Imported from -");
}
