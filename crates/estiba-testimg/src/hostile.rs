//! Hostile and broken tarballs for `docker load`: each must be refused with a clear 4xx (or, for
//! the few marked `must_refuse: false`, may load but must stay inside its layer directory), leave
//! the store unchanged and write nothing outside the data-root.
//!
//! Escapes aim at names containing [`escape_marker`] (under `/tmp`, or wherever a `..` climb
//! lands), so a test can look for them; the write-through-hardlink case aims at
//! [`victim_path`], a file the test creates first.

use std::io::Write;
use std::path::PathBuf;

use crate::archive::{
    archive_bytes, archive_files, archive_files_with, write_files, ArchiveOptions, Format,
};
use crate::layer::{LayerBuilder, FIXED_MTIME};
use crate::{busybox, TestImage, TestImageError};

/// A tarball that `docker load` must not accept (or must contain).
#[derive(Debug, Clone)]
pub struct HostileArchive {
    pub name: &'static str,
    /// One line saying what is wrong with it.
    pub what: &'static str,
    pub tarball: Vec<u8>,
    /// The issue demands a 4xx for this one; otherwise loading it is allowed if nothing escapes.
    pub must_refuse: bool,
}

/// Every case [`case`] knows, in a stable order.
pub const CASES: &[&str] = &[
    "not-a-tar",
    "truncated",
    "missing-layer",
    "layer-digest-mismatch",
    "diffid-mismatch",
    "dotdot-entry",
    "absolute-entry",
    "absolute-symlink-write",
    "relative-symlink-write",
    "hardlink-host-file",
    "hardlink-write-through",
    "dir-swapped-for-symlink",
    "cross-layer-symlink",
    "unknown-media-type",
    "oversized-descriptor",
];

/// The file name every escape attempt of `token` tries to create.
pub fn escape_marker(token: &str) -> String {
    format!("estiba-escape-{token}")
}

/// The host file the write-through-hardlink case tries to overwrite; the test creates it.
pub fn victim_path(token: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/estiba-victim-{token}"))
}

/// Enough `..` to reach `/` from any data-root.
const CLIMB: &str = "../../../../../../../../../../../..";

fn tag(name: &str) -> String {
    format!("hostile/{name}:latest")
}

/// A small base layer unique to the case, so a half-done load would leave a visible snapshot.
fn base_layer(name: &str) -> Result<Vec<u8>, TestImageError> {
    let mut layer = LayerBuilder::new();
    layer
        .dir("hostile", 0o755)
        .file("hostile/base.txt", 0o644, format!("base layer of {name}\n"));
    layer.finish()
}

/// An image of `layers` (config diff IDs computed from them) tagged `hostile/<name>:latest`.
fn image(name: &str, layers: Vec<Vec<u8>>) -> Result<TestImage, TestImageError> {
    let diff_ids: Vec<String> = layers.iter().map(|l| crate::sha256_digest(l)).collect();
    let history: Vec<serde_json::Value> = layers
        .iter()
        .map(|_| serde_json::json!({"created": crate::recipes::CREATED, "created_by": name}))
        .collect();
    let config = serde_json::json!({
        "architecture": crate::recipes::go_arch(),
        "config": {"Cmd": ["sh"]},
        "created": crate::recipes::CREATED,
        "history": history,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    Ok(TestImage {
        repo_tags: vec![tag(name)],
        layers,
        config: serde_json::to_vec(&config).map_err(TestImageError::Json)?,
    })
}

/// base layer + one hostile layer whose entries keep their order.
fn with_payload(
    name: &str,
    build: impl FnOnce(&mut LayerBuilder),
) -> Result<TestImage, TestImageError> {
    let mut payload = LayerBuilder::new().keep_order();
    build(&mut payload);
    image(name, vec![base_layer(name)?, payload.finish()?])
}

fn docker(image: &TestImage) -> Result<Vec<u8>, TestImageError> {
    archive_bytes(&[image], ArchiveOptions::default())
}

const OCI: ArchiveOptions = ArchiveOptions {
    format: Format::Oci,
    compression: crate::archive::Compression::None,
};

/// Builds hostile case `name` (one of [`CASES`]) aiming its escapes at `token`'s marker.
pub fn case(name: &str, token: &str) -> Result<HostileArchive, TestImageError> {
    let marker = escape_marker(token);
    let (name, what, tarball, must_refuse): (&'static str, &'static str, Vec<u8>, bool) = match name
    {
        "not-a-tar" => {
            let mut noise = vec![0u8; 64 * 1024];
            crate::recipes::SplitMix64::new(7).fill(&mut noise);
            ("not-a-tar", "64 KiB of noise", noise, true)
        }
        "truncated" => {
            let mut bytes = docker(&busybox()?.with_tags([tag("truncated")]))?;
            bytes.truncate(bytes.len() / 2);
            ("truncated", "a busybox archive cut in half", bytes, true)
        }
        "missing-layer" => {
            let img = with_payload("missing-layer", |l| {
                l.file("ok", 0o644, "ok\n");
            })?;
            let files = archive_files(&[&img], ArchiveOptions::default())?;
            let last_layer = files
                .iter()
                .rposition(|f| f.path.ends_with("/layer.tar"))
                .unwrap_or(0);
            let files: Vec<_> = files
                .into_iter()
                .enumerate()
                .filter(|(i, _)| *i != last_layer)
                .map(|(_, f)| f)
                .collect();
            (
                "missing-layer",
                "manifest.json names a layer.tar the archive lacks",
                write_files(&files, Vec::new())?,
                true,
            )
        }
        "layer-digest-mismatch" => {
            let img = with_payload("layer-digest-mismatch", |l| {
                l.file("claimed", 0o644, "the content the digest is of\n");
            })?;
            let mut files = archive_files(&[&img], OCI)?;
            let mut other = LayerBuilder::new();
            other.file("claimed", 0o644, "other content under the same name\n");
            let other = other.finish()?;
            let payload_digest = crate::sha256_digest(&img.layers[1]);
            let blob = format!(
                "blobs/sha256/{}",
                payload_digest.trim_start_matches("sha256:")
            );
            for f in files.iter_mut().filter(|f| f.path == blob) {
                f.data = other.clone();
            }
            (
                "layer-digest-mismatch",
                "an OCI layer blob whose content does not hash to its name and descriptor",
                write_files(&files, Vec::new())?,
                true,
            )
        }
        "diffid-mismatch" => {
            let claimed = with_payload("diffid-mismatch", |l| {
                l.file("claimed", 0o644, "the content the config's diff_id is of\n");
            })?;
            let mut actual = LayerBuilder::new();
            actual.file("claimed", 0o644, "something else\n");
            let img = TestImage {
                layers: vec![claimed.layers[0].clone(), actual.finish()?],
                ..claimed
            };
            (
                "diffid-mismatch",
                "a docker-archive layer.tar whose digest is not the config's diff_id",
                docker(&img)?,
                true,
            )
        }
        "dotdot-entry" => {
            let img = with_payload("dotdot-entry", |l| {
                l.file(&format!("../../{marker}"), 0o644, "escaped\n");
                l.file(&format!("{CLIMB}/tmp/{marker}"), 0o644, "escaped\n");
            })?;
            ("dotdot-entry", "entries named ../../x", docker(&img)?, true)
        }
        "absolute-entry" => {
            let img = with_payload("absolute-entry", |l| {
                l.file(&format!("/tmp/{marker}"), 0o644, "escaped\n");
            })?;
            (
                "absolute-entry",
                "an entry named /tmp/x (may load as tmp/x, must not escape)",
                docker(&img)?,
                false,
            )
        }
        "absolute-symlink-write" => {
            let img = with_payload("absolute-symlink-write", |l| {
                l.symlink("escape", "/");
                l.file(&format!("escape/tmp/{marker}"), 0o644, "escaped\n");
            })?;
            (
                "absolute-symlink-write",
                "symlink escape -> / then a file written through escape/tmp/x",
                docker(&img)?,
                true,
            )
        }
        "relative-symlink-write" => {
            let img = with_payload("relative-symlink-write", |l| {
                l.symlink("escape", CLIMB);
                l.file(&format!("escape/tmp/{marker}"), 0o644, "escaped\n");
            })?;
            (
                "relative-symlink-write",
                "symlink escape -> ../../.. then a file written through it",
                docker(&img)?,
                true,
            )
        }
        "hardlink-host-file" => {
            let img = with_payload("hardlink-host-file", |l| {
                l.hardlink("passwd", "/etc/passwd");
                l.hardlink("passwd2", &format!("{CLIMB}/etc/passwd"));
            })?;
            (
                "hardlink-host-file",
                "hardlinks to /etc/passwd and ../../etc/passwd",
                docker(&img)?,
                true,
            )
        }
        "hardlink-write-through" => {
            let victim = victim_path(token);
            let victim = victim.to_string_lossy().into_owned();
            let img = with_payload("hardlink-write-through", |l| {
                l.hardlink("victim", &victim);
                l.file("victim", 0o644, "overwritten through a hardlink\n");
            })?;
            (
                "hardlink-write-through",
                "a hardlink to a host file, then a regular file of the same name",
                docker(&img)?,
                true,
            )
        }
        "dir-swapped-for-symlink" => {
            let img = with_payload("dir-swapped-for-symlink", |l| {
                l.dir("d", 0o755);
                l.file("d/ok", 0o644, "fine\n");
                l.symlink("d", "/tmp");
                l.file(&format!("d/{marker}"), 0o644, "escaped\n");
            })?;
            (
                "dir-swapped-for-symlink",
                "a directory replaced by a symlink to /tmp, then a file written into it",
                docker(&img)?,
                true,
            )
        }
        "cross-layer-symlink" => {
            let mut l1 = LayerBuilder::new();
            l1.symlink("escape", "/");
            let mut l2 = LayerBuilder::new().keep_order();
            l2.dir("escape/tmp", 0o755)
                .file(&format!("escape/tmp/{marker}"), 0o644, "escaped\n");
            let img = image("cross-layer-symlink", vec![l1.finish()?, l2.finish()?])?;
            (
                "cross-layer-symlink",
                "layer 1 has escape -> /, layer 2 writes escape/tmp/x (may load, must not escape)",
                docker(&img)?,
                false,
            )
        }
        "unknown-media-type" => {
            let img = with_payload("unknown-media-type", |l| {
                l.file("ok", 0o644, "ok\n");
            })?;
            let files = archive_files_with(&[&img], OCI, &mut |_, m| {
                if let Some(layer) = m.layers.last_mut() {
                    layer.media_type = "application/vnd.estiba.unknown.layer.v1".to_owned();
                }
            })?;
            (
                "unknown-media-type",
                "an OCI manifest with an unknown layer media type",
                write_files(&files, Vec::new())?,
                true,
            )
        }
        "oversized-descriptor" => {
            let img = with_payload("oversized-descriptor", |l| {
                l.file("ok", 0o644, "ok\n");
            })?;
            let files = archive_files_with(&[&img], OCI, &mut |_, m| {
                if let Some(layer) = m.layers.last_mut() {
                    layer.size = 2_147_483_648;
                }
            })?;
            (
                "oversized-descriptor",
                "an OCI manifest claiming a 2 GiB layer that is a few KiB",
                write_files(&files, Vec::new())?,
                true,
            )
        }
        other => return Err(TestImageError::UnknownCase(other.to_owned())),
    };
    Ok(HostileArchive {
        name,
        what,
        tarball,
        must_refuse,
    })
}

/// Writes a tarball whose `manifest.json` is `size_bytes` of syntactically valid JSON (one
/// enormous tag), streamed so it needs no memory. A loader must refuse it without reading it all
/// into memory.
pub fn write_huge_manifest<W: Write>(mut out: W, size_bytes: u64) -> Result<W, TestImageError> {
    const HEAD: &[u8] = br#"[{"Config":"0.json","RepoTags":["hostile/huge:"#;
    const TAIL: &[u8] = br#""],"Layers":[]}]"#;
    let fill = size_bytes.saturating_sub((HEAD.len() + TAIL.len()) as u64);
    let total = HEAD.len() as u64 + fill + TAIL.len() as u64;
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_mtime(FIXED_MTIME);
    header.set_size(total);
    header
        .set_path("manifest.json")
        .map_err(|source| TestImageError::Tar {
            name: "manifest.json".to_owned(),
            source,
        })?;
    header.set_cksum();
    let write = |out: &mut W, bytes: &[u8]| out.write_all(bytes).map_err(TestImageError::Write);
    write(&mut out, header.as_bytes())?;
    write(&mut out, HEAD)?;
    let chunk = vec![b'a'; 64 * 1024];
    let mut left = fill;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        write(&mut out, &chunk[..n])?;
        left -= n as u64;
    }
    write(&mut out, TAIL)?;
    let pad = (512 - (total % 512) as usize) % 512;
    write(&mut out, &vec![0u8; pad + 1024])?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Names of the entries of a tarball (outer or layer), as written.
    fn names(tarball: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tarball);
        archive
            .entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect()
    }

    fn file(tarball: &[u8], path: &str) -> Vec<u8> {
        let mut archive = tar::Archive::new(tarball);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path_bytes().as_ref() == path.as_bytes() {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                return data;
            }
        }
        panic!("{path} not in tarball");
    }

    #[test]
    fn every_case_builds_and_is_deterministic() {
        for name in CASES {
            let a = case(name, "t0k3n").unwrap();
            let b = case(name, "t0k3n").unwrap();
            assert_eq!(a.name, *name);
            assert_eq!(a.tarball, b.tarball, "{name} is not deterministic");
        }
        assert!(matches!(
            case("nope", "x"),
            Err(TestImageError::UnknownCase(_))
        ));
    }

    #[test]
    fn payload_layers_say_what_they_claim() {
        // (case, the payload layer's entry names, in order)
        let cases: &[(&str, &[&str])] = &[
            (
                "dotdot-entry",
                &[
                    "../../estiba-escape-T",
                    "../../../../../../../../../../../../tmp/estiba-escape-T",
                ],
            ),
            (
                "absolute-symlink-write",
                &["escape", "escape/tmp/estiba-escape-T"],
            ),
            ("hardlink-host-file", &["passwd", "passwd2"]),
            ("hardlink-write-through", &["victim", "victim"]),
            (
                "dir-swapped-for-symlink",
                &["d/", "d/ok", "d", "d/estiba-escape-T"],
            ),
        ];
        for (name, want) in cases {
            let archive = case(name, "T").unwrap().tarball;
            let manifest: serde_json::Value =
                serde_json::from_slice(&file(&archive, "manifest.json")).unwrap();
            let layer_path = manifest[0]["Layers"][1].as_str().unwrap();
            let layer = file(&archive, layer_path);
            assert_eq!(names(&layer), *want, "{name}");
        }
    }

    #[test]
    fn oci_cases_carry_their_lie() {
        let archive = case("oversized-descriptor", "T").unwrap().tarball;
        let index: serde_json::Value =
            serde_json::from_slice(&file(&archive, "index.json")).unwrap();
        let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
        let manifest_path = format!("blobs/sha256/{}", &manifest_digest[7..]);
        let manifest: serde_json::Value =
            serde_json::from_slice(&file(&archive, &manifest_path)).unwrap();
        assert_eq!(manifest["layers"][1]["size"], 2_147_483_648u64);

        let archive = case("layer-digest-mismatch", "T").unwrap().tarball;
        let manifest: serde_json::Value =
            serde_json::from_slice(&file(&archive, "manifest.json")).unwrap();
        let layer_path = manifest[0]["Layers"][1].as_str().unwrap();
        let blob = file(&archive, layer_path);
        assert_ne!(crate::sha256_digest(&blob)[7..], layer_path[13..]);
    }

    #[test]
    fn truncated_is_shorter_than_a_tar_can_be() {
        let archive = case("truncated", "T").unwrap().tarball;
        let mut tar = tar::Archive::new(archive.as_slice());
        let result: Result<Vec<_>, _> = tar
            .entries()
            .unwrap()
            .map(|e| e.and_then(|mut e| std::io::copy(&mut e, &mut std::io::sink())))
            .collect();
        assert!(result.is_err());
    }

    #[test]
    fn huge_manifest_is_the_size_asked_and_valid_json() {
        let out = write_huge_manifest(Vec::new(), 100_000).unwrap();
        let manifest = file(&out, "manifest.json");
        assert_eq!(manifest.len(), 100_000);
        let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(parsed[0]["Config"], "0.json");
    }
}
