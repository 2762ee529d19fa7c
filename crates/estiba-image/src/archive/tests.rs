//! Tests of archive reading and writing against a temp content store.

use super::*;
use crate::testutil::{
    compress, docker_archive, oci_archive, oci_archive_with, tar_files, tar_of, TestImage,
};

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let cs = ContentStore::open(&dir.path().join("content")).unwrap();
    (dir, cs)
}

fn sample() -> TestImage {
    TestImage::new(
        vec![tar_of(&[("bin/sh", b"shell")]), tar_of(&[("etc/x", b"x")])],
        "2024-01-02T03:04:05Z",
        &[],
    )
}

fn read(data: &[u8], cs: &ContentStore) -> Result<Vec<ImageToLoad>, ArchiveError> {
    read_with(data, cs, &LoadLimits::default())
}

fn read_with(
    data: &[u8],
    cs: &ContentStore,
    limits: &LoadLimits,
) -> Result<Vec<ImageToLoad>, ArchiveError> {
    let contents = read_archive(&mut &data[..], cs, limits)?;
    resolve(&contents, cs, limits)
}

#[test]
fn reads_both_formats_plain_and_compressed_as_a_whole() {
    let img = sample();
    let formats = [
        (
            "docker-archive",
            docker_archive(&[(&img, &["busybox:latest"])]),
        ),
        (
            "oci plain",
            oci_archive(
                &[(&img, &["docker.io/library/busybox:latest"])],
                Compression::None,
            ),
        ),
        (
            "oci gzip layers",
            oci_archive(&[(&img, &["busybox:latest"])], Compression::Gzip),
        ),
        (
            "oci zstd layers",
            oci_archive(&[(&img, &["busybox:latest"])], Compression::Zstd),
        ),
    ];
    for (what, tarball) in formats {
        for outer in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let (_dir, cs) = store();
            let images = read(&compress(&tarball, outer), &cs)
                .unwrap_or_else(|e| panic!("{what} {outer:?}: {e}"));
            assert_eq!(images.len(), 1, "{what}");
            assert_eq!(images[0].config.digest.to_string(), img.id(), "{what}");
            assert_eq!(images[0].layers.len(), 2, "{what}");
            assert_eq!(images[0].repo_tags.len(), 1, "{what}");
            assert_eq!(images[0].config_bytes, img.config, "{what}");
        }
    }
}

#[test]
fn reads_the_reference_dockerd_save_when_present() {
    let path = std::path::Path::new("/tmp/ref-busybox-save.tar");
    let Ok(data) = std::fs::read(path) else {
        eprintln!("skipping: {} not present on this machine", path.display());
        return;
    };
    let (_dir, cs) = store();
    let images = read(&data, &cs).unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].repo_tags, vec!["busybox:latest"]);
    assert_eq!(
        images[0].config.digest.to_string(),
        "sha256:09b23f020198c1955a16e31144c25f088110c041342dd8ea3f11fb1aab29076f"
    );
}

/// A tar whose only entry is a header claiming `size` bytes, followed by `body`.
fn lying_header(name: &str, size: u64, body: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[test]
fn hostile_archives_are_invalid_and_leave_no_blobs() {
    let img = sample();
    let good = docker_archive(&[(&img, &["x:1"])]);
    let mut bad_digest = Vec::new();
    {
        let mut b = tar::Builder::new(&mut bad_digest);
        let name = format!("blobs/sha256/{}", Digest::of_bytes(b"other").hex());
        let mut h = tar::Header::new_ustar();
        h.set_size(5);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &b"hello"[..]).unwrap();
        b.finish().unwrap();
    }
    let mut long_name = Vec::new();
    {
        let mut b = tar::Builder::new(&mut long_name);
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "a/".repeat(3000), &b"x"[..]).unwrap();
        b.finish().unwrap();
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "manifest.json claiming 2 GB",
            lying_header("manifest.json", 2 << 30, b"[]"),
            "too large",
        ),
        (
            "truncated layer",
            good[..good.len() / 2].to_vec(),
            "unexpected end",
        ),
        ("blob digest mismatch", bad_digest, "digest mismatch"),
        (
            "not a tar",
            b"hello world, this is not a tarball at all".repeat(20),
            "invalid",
        ),
        ("empty", Vec::new(), "empty or invalid"),
        (
            "long name",
            long_name,
            "long file name is larger than the limit",
        ),
        (
            "unknown media type",
            oci_archive_with(&[(&img, &["x:1"])], Compression::None, "application/x-evil"),
            "unsupported layer media type",
        ),
        (
            "no manifest",
            tar_of(&[("hello", b"x")]),
            "neither manifest.json nor index.json",
        ),
    ];
    for (what, data, want) in cases {
        let (_dir, cs) = store();
        let contents = read_archive(&mut &data[..], &cs, &LoadLimits::default());
        let err = match contents {
            Err(e) => e,
            Ok(mut c) => {
                let r = resolve(&c, &cs, &LoadLimits::default());
                c.discard(&cs);
                match r {
                    Err(e) => e,
                    Ok(_) => panic!("{what}: accepted"),
                }
            }
        };
        assert!(matches!(err, ArchiveError::Invalid(_)), "{what}: {err:?}");
        assert!(err.to_string().contains(want), "{what}: {err}");
        assert!(cs.list().unwrap().is_empty(), "{what}: blobs left behind");
    }
}

#[test]
fn limits_on_layers_entries_and_images() {
    let img = sample();
    let tarball = docker_archive(&[(&img, &["x:1"])]);
    let cases: Vec<(LoadLimits, &str)> = vec![
        (
            LoadLimits {
                max_layers_per_image: 1,
                ..Default::default()
            },
            "more than the limit of 1",
        ),
        (
            LoadLimits {
                max_entries: 2,
                ..Default::default()
            },
            "more than 2 entries",
        ),
        (
            LoadLimits {
                max_images: 0,
                ..Default::default()
            },
            "more than 0 images",
        ),
        (
            LoadLimits {
                max_blob_bytes: 100,
                ..Default::default()
            },
            "exceeds the limit",
        ),
        (
            LoadLimits {
                max_total_bytes: 4096,
                ..Default::default()
            },
            "larger than the limit",
        ),
    ];
    for (limits, want) in cases {
        let (_dir, cs) = store();
        let err = read_with(&tarball, &cs, &limits).unwrap_err();
        assert!(err.to_string().contains(want), "{want}: {err}");
    }
}

#[test]
fn written_archive_has_docker_25_layout_and_reads_back() {
    let img = sample();
    let (_dir, cs) = store();
    let images = read(&docker_archive(&[(&img, &["busybox:latest"])]), &cs).unwrap();
    let save = ImageToSave {
        config: images[0].config.digest.clone(),
        config_size_bytes: images[0].config.size_bytes,
        layers: images[0]
            .layers
            .iter()
            .map(|l| {
                (
                    l.blob.digest.clone(),
                    l.blob.size_bytes,
                    l.media_type.clone(),
                )
            })
            .collect(),
        tags: vec![(
            "docker.io/library/busybox:latest".into(),
            "busybox".into(),
            "latest".into(),
        )],
    };
    let mut out = Vec::new();
    let mut open = |d: &Digest| std::fs::File::open(cs.path(d));
    write_archive(&mut out, &mut open, &[save]).unwrap();

    let files = tar_files(&out);
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["RepoTags"][0], "busybox:latest");
    let hex = Digest::parse(&img.id()).unwrap().hex().to_string();
    assert_eq!(manifest[0]["Config"], format!("blobs/sha256/{hex}"));
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let ann = &index["manifests"][0]["annotations"];
    assert_eq!(
        ann[ANNOTATION_IMAGE_NAME],
        "docker.io/library/busybox:latest"
    );
    assert_eq!(ann[ANNOTATION_REF_NAME], "latest");
    assert!(files.contains_key("oci-layout") && files.contains_key("repositories"));
    for (name, data) in &files {
        if let Some(h) = name.strip_prefix("blobs/sha256/") {
            assert_eq!(Digest::of_bytes(data).hex(), h, "{name}");
        }
    }

    let (_dir2, cs2) = store();
    let again = read(&out, &cs2).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].config.digest.to_string(), img.id());
    assert_eq!(
        again[0].repo_tags,
        vec!["docker.io/library/busybox:latest", "busybox:latest"]
    );
}

#[test]
fn normalize_paths() {
    let cases = [
        ("./manifest.json", "manifest.json"),
        ("/a//b/./c", "a/b/c"),
        ("a/../../../b", "b"),
        ("abc/../def/layer.tar", "def/layer.tar"),
    ];
    for (input, want) in cases {
        assert_eq!(normalize(input), want);
    }
}

#[test]
fn pax_path_parsing() {
    let rec = b"28 path=some/very/long/name\n21 uid=1000000000000\n";
    assert_eq!(pax_path(&rec[..]).as_deref(), Some("some/very/long/name"));
    assert_eq!(pax_path(b"99 path=x\n"), None);
}
