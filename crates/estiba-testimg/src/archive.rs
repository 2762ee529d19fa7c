//! Writers for the two tarball formats `docker load` accepts: the legacy docker-archive
//! (`manifest.json` + `<v1-id>/layer.tar` + `<config-hex>.json` + `repositories`) and the OCI
//! layout plus `manifest.json` that docker 25+ writes with `docker save`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::layer::FIXED_MTIME;
use crate::{sha256_digest, TestImage, TestImageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Legacy docker-archive, as docker before 25 saved.
    #[default]
    Docker,
    /// OCI image layout plus manifest.json, as docker 25+ saves.
    Oci,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArchiveOptions {
    pub format: Format,
    /// How each layer is compressed inside the archive (the archive itself is plain tar).
    pub compression: Compression,
}

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The OCI layer media type for a compression.
pub fn layer_media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// Compresses a layer deterministically (gzip header mtime 0, fixed levels).
pub fn compress(layer: &[u8], compression: Compression) -> Result<Vec<u8>, TestImageError> {
    match compression {
        Compression::None => Ok(layer.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::new(6));
            enc.write_all(layer).map_err(TestImageError::Write)?;
            enc.finish().map_err(TestImageError::Write)
        }
        Compression::Zstd => zstd::encode_all(layer, 3).map_err(TestImageError::Write),
    }
}

/// One file of an archive; the writer adds parent directory entries itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    pub path: String,
    pub data: Vec<u8>,
}

/// An OCI content descriptor.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciManifest {
    pub schema_version: u32,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct OciIndex {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

/// One entry of `manifest.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ManifestEntry {
    pub config: String,
    pub repo_tags: Vec<String>,
    pub layers: Vec<String>,
}

/// `busybox:latest` -> ("busybox", "latest"); a tag-less name gets `latest`.
pub fn split_tag(reference: &str) -> (&str, &str) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "latest"),
    }
}

/// The fully qualified name containerd and docker 25+ put in `io.containerd.image.name`.
pub fn qualified_name(reference: &str) -> String {
    let (repo, tag) = split_tag(reference);
    let first = repo.split('/').next().unwrap_or(repo);
    let has_domain =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let repo = if has_domain {
        repo.to_owned()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    format!("{repo}:{tag}")
}

fn hex_of(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, TestImageError> {
    serde_json::to_vec(value).map_err(TestImageError::Json)
}

/// The OCI manifest of an image (whose compressed layers are `blobs`, in order).
pub fn oci_manifest(image: &TestImage, blobs: &[Vec<u8>], compression: Compression) -> OciManifest {
    OciManifest {
        schema_version: 2,
        media_type: MEDIA_OCI_MANIFEST.to_owned(),
        config: Descriptor {
            media_type: MEDIA_OCI_CONFIG.to_owned(),
            digest: image.id(),
            size: image.config.len() as u64,
            annotations: BTreeMap::new(),
        },
        layers: blobs
            .iter()
            .map(|b| Descriptor {
                media_type: layer_media_type(compression).to_owned(),
                digest: sha256_digest(b),
                size: b.len() as u64,
                annotations: BTreeMap::new(),
            })
            .collect(),
    }
}

/// The files of an archive, before they are written as tar. Hostile-tarball makers edit these.
pub fn archive_files(
    images: &[&TestImage],
    options: ArchiveOptions,
) -> Result<Vec<ArchiveFile>, TestImageError> {
    archive_files_with(images, options, &mut |_, _| {})
}

/// Like [`archive_files`], letting `tweak` change each OCI manifest before it is serialised
/// (it is not called for the docker format).
pub fn archive_files_with(
    images: &[&TestImage],
    options: ArchiveOptions,
    tweak: &mut dyn FnMut(usize, &mut OciManifest),
) -> Result<Vec<ArchiveFile>, TestImageError> {
    match options.format {
        Format::Docker => docker_files(images, options.compression),
        Format::Oci => oci_files(images, options.compression, tweak),
    }
}

fn add_file(files: &mut BTreeMap<String, Vec<u8>>, path: String, data: Vec<u8>) {
    files.entry(path).or_insert(data);
}

fn repositories(images: &[&TestImage], top_ids: &[String]) -> Result<Vec<u8>, TestImageError> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (image, top) in images.iter().zip(top_ids) {
        for tag in &image.repo_tags {
            let (repo, tag) = split_tag(tag);
            repos
                .entry(repo.to_owned())
                .or_default()
                .insert(tag.to_owned(), top.clone());
        }
    }
    to_json(&repos)
}

fn docker_files(
    images: &[&TestImage],
    compression: Compression,
) -> Result<Vec<ArchiveFile>, TestImageError> {
    let mut files = BTreeMap::new();
    let mut manifest = Vec::new();
    let mut top_ids = Vec::new();
    for image in images {
        let mut parent = String::new();
        let mut layer_paths = Vec::new();
        for (i, (layer, diff_id)) in image.layers.iter().zip(image.diff_ids()).enumerate() {
            // A stable stand-in for docker's v1 IDs: the chain of diff IDs.
            let v1_id = hex::encode(Sha256::digest(format!("{parent} {diff_id}").as_bytes()));
            let mut v1_json = serde_json::json!({
                "id": v1_id,
                "created": crate::recipes::CREATED,
                "container_config": {"Cmd": null},
                "os": "linux",
            });
            if !parent.is_empty() {
                v1_json["parent"] = serde_json::Value::String(parent.clone());
            }
            if i + 1 == image.layers.len() {
                v1_json["config"] = serde_json::json!({"Cmd": ["sh"]});
            }
            add_file(&mut files, format!("{v1_id}/VERSION"), b"1.0".to_vec());
            add_file(&mut files, format!("{v1_id}/json"), to_json(&v1_json)?);
            if !files.contains_key(&format!("{v1_id}/layer.tar")) {
                add_file(
                    &mut files,
                    format!("{v1_id}/layer.tar"),
                    compress(layer, compression)?,
                );
            }
            layer_paths.push(format!("{v1_id}/layer.tar"));
            parent = v1_id;
        }
        let config_path = format!("{}.json", hex_of(&image.id()));
        add_file(&mut files, config_path.clone(), image.config.clone());
        manifest.push(ManifestEntry {
            config: config_path,
            repo_tags: image.repo_tags.clone(),
            layers: layer_paths,
        });
        top_ids.push(parent);
    }
    add_file(&mut files, "manifest.json".to_owned(), to_json(&manifest)?);
    add_file(
        &mut files,
        "repositories".to_owned(),
        repositories(images, &top_ids)?,
    );
    Ok(files
        .into_iter()
        .map(|(path, data)| ArchiveFile { path, data })
        .collect())
}

fn oci_files(
    images: &[&TestImage],
    compression: Compression,
    tweak: &mut dyn FnMut(usize, &mut OciManifest),
) -> Result<Vec<ArchiveFile>, TestImageError> {
    let mut files = BTreeMap::new();
    let mut manifest_json = Vec::new();
    let mut index = Vec::new();
    let mut top_ids = Vec::new();
    for (n, image) in images.iter().enumerate() {
        let blobs = image
            .layers
            .iter()
            .map(|l| compress(l, compression))
            .collect::<Result<Vec<_>, _>>()?;
        let mut manifest = oci_manifest(image, &blobs, compression);
        tweak(n, &mut manifest);
        for blob in blobs {
            add_file(
                &mut files,
                format!("blobs/sha256/{}", hex_of(&sha256_digest(&blob))),
                blob,
            );
        }
        add_file(
            &mut files,
            format!("blobs/sha256/{}", hex_of(&image.id())),
            image.config.clone(),
        );
        let manifest_bytes = to_json(&manifest)?;
        let manifest_digest = sha256_digest(&manifest_bytes);
        add_file(
            &mut files,
            format!("blobs/sha256/{}", hex_of(&manifest_digest)),
            manifest_bytes.clone(),
        );
        let descriptor = |annotations| Descriptor {
            media_type: MEDIA_OCI_MANIFEST.to_owned(),
            digest: manifest_digest.clone(),
            size: manifest_bytes.len() as u64,
            annotations,
        };
        if image.repo_tags.is_empty() {
            index.push(descriptor(BTreeMap::new()));
        }
        for tag in &image.repo_tags {
            let mut annotations = BTreeMap::new();
            annotations.insert("io.containerd.image.name".to_owned(), qualified_name(tag));
            annotations.insert(
                "org.opencontainers.image.ref.name".to_owned(),
                split_tag(tag).1.to_owned(),
            );
            index.push(descriptor(annotations));
        }
        manifest_json.push(ManifestEntry {
            config: format!("blobs/sha256/{}", hex_of(&image.id())),
            repo_tags: image.repo_tags.clone(),
            layers: manifest
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", hex_of(&l.digest)))
                .collect(),
        });
        top_ids.push(
            manifest
                .layers
                .last()
                .map(|l| hex_of(&l.digest).to_owned())
                .unwrap_or_default(),
        );
    }
    let index = OciIndex {
        schema_version: 2,
        media_type: MEDIA_OCI_INDEX,
        manifests: index,
    };
    add_file(&mut files, "index.json".to_owned(), to_json(&index)?);
    add_file(
        &mut files,
        "manifest.json".to_owned(),
        to_json(&manifest_json)?,
    );
    add_file(
        &mut files,
        "oci-layout".to_owned(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    add_file(
        &mut files,
        "repositories".to_owned(),
        repositories(images, &top_ids)?,
    );
    Ok(files
        .into_iter()
        .map(|(path, data)| ArchiveFile { path, data })
        .collect())
}

fn tar_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_mtime(FIXED_MTIME);
    header.set_size(size);
    header
}

/// Writes archive files as a plain tar, with a directory entry before each new directory.
/// Files must be sorted by path (as [`archive_files`] returns them) for the output to be stable.
pub fn write_files<W: Write>(files: &[ArchiveFile], out: W) -> Result<W, TestImageError> {
    let mut builder = tar::Builder::new(out);
    let mut dirs = BTreeSet::new();
    let tar_err = |name: &str| {
        let name = name.to_owned();
        move |source| TestImageError::Tar { name, source }
    };
    for file in files {
        let mut prefix = String::new();
        let parts: Vec<&str> = file.path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            prefix.push_str(part);
            prefix.push('/');
            if dirs.insert(prefix.clone()) {
                let mut header = tar_header(tar::EntryType::Directory, 0o755, 0);
                builder
                    .append_data(&mut header, &prefix, std::io::empty())
                    .map_err(tar_err(&prefix))?;
            }
        }
        let mut header = tar_header(tar::EntryType::Regular, 0o644, file.data.len() as u64);
        builder
            .append_data(&mut header, &file.path, file.data.as_slice())
            .map_err(tar_err(&file.path))?;
    }
    builder.into_inner().map_err(TestImageError::Write)
}

/// Writes `images` as one tarball `docker load` accepts.
pub fn write_archive<W: Write>(
    images: &[&TestImage],
    options: ArchiveOptions,
    out: W,
) -> Result<W, TestImageError> {
    write_files(&archive_files(images, options)?, out)
}

/// [`write_archive`] into memory.
pub fn archive_bytes(
    images: &[&TestImage],
    options: ArchiveOptions,
) -> Result<Vec<u8>, TestImageError> {
    write_archive(images, options, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Read;

    /// path -> content of every regular file of an archive; also checks every directory
    /// entry comes before its contents.
    fn files(tarball: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut dirs = BTreeSet::new();
        let mut archive = tar::Archive::new(tarball);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if let Some((parent, _)) = path.trim_end_matches('/').rsplit_once('/') {
                assert!(
                    dirs.contains(&format!("{parent}/")),
                    "{path} before its dir"
                );
            }
            if entry.header().entry_type().is_dir() {
                dirs.insert(path);
                continue;
            }
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.insert(path, data);
        }
        out
    }

    fn decompress(blob: &[u8], compression: Compression) -> Vec<u8> {
        let mut out = Vec::new();
        match compression {
            Compression::None => out = blob.to_vec(),
            Compression::Gzip => {
                flate2::read::GzDecoder::new(blob)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Compression::Zstd => out = zstd::decode_all(blob).unwrap(),
        }
        out
    }

    const ALL: [(Format, Compression); 6] = [
        (Format::Docker, Compression::None),
        (Format::Docker, Compression::Gzip),
        (Format::Docker, Compression::Zstd),
        (Format::Oci, Compression::None),
        (Format::Oci, Compression::Gzip),
        (Format::Oci, Compression::Zstd),
    ];

    #[test]
    fn archives_parse_back_to_the_images() {
        let images = [crate::busybox().unwrap(), crate::layered().unwrap()];
        let refs: Vec<&TestImage> = images.iter().collect();
        for (format, compression) in ALL {
            let options = ArchiveOptions {
                format,
                compression,
            };
            let bytes = archive_bytes(&refs, options).unwrap();
            assert_eq!(bytes, archive_bytes(&refs, options).unwrap(), "{options:?}");
            let files = files(&bytes);
            let manifest: serde_json::Value =
                serde_json::from_slice(&files["manifest.json"]).unwrap();
            let repositories: serde_json::Value =
                serde_json::from_slice(&files["repositories"]).unwrap();
            for (entry, image) in manifest.as_array().unwrap().iter().zip(&images) {
                let config = &files[entry["Config"].as_str().unwrap()];
                assert_eq!(config, &image.config);
                assert_eq!(entry["RepoTags"], serde_json::json!(image.repo_tags));
                let layers: Vec<Vec<u8>> = entry["Layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| decompress(&files[p.as_str().unwrap()], compression))
                    .collect();
                assert_eq!(layers, image.layers, "{options:?}");
                let (repo, tag) = split_tag(&image.repo_tags[0]);
                assert!(repositories[repo][tag].is_string());
            }
            // The shared busybox layer is stored once.
            let layer_files = files
                .keys()
                .filter(|p| p.ends_with("layer.tar") || p.starts_with("blobs/"))
                .count();
            let expected = match format {
                // 4 layers + 2 configs + 2 manifests
                Format::Oci => 8,
                Format::Docker => 4,
            };
            assert_eq!(layer_files, expected, "{options:?}");
            if format == Format::Oci {
                check_oci(&files, &images, compression);
            }
        }
    }

    fn check_oci(
        files: &BTreeMap<String, Vec<u8>>,
        images: &[TestImage],
        compression: Compression,
    ) {
        for (path, data) in files.iter().filter(|(p, _)| p.starts_with("blobs/")) {
            assert_eq!(sha256_digest(data)[7..], path[13..], "blob {path}");
        }
        let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
        let manifests = index["manifests"].as_array().unwrap();
        assert_eq!(manifests.len(), images.len());
        for (desc, image) in manifests.iter().zip(images) {
            let tag = &image.repo_tags[0];
            assert_eq!(
                desc["annotations"]["io.containerd.image.name"],
                qualified_name(tag)
            );
            let blob = &files[&format!("blobs/sha256/{}", &desc["digest"].as_str().unwrap()[7..])];
            assert_eq!(desc["size"], blob.len());
            let manifest: serde_json::Value = serde_json::from_slice(blob).unwrap();
            assert_eq!(manifest["config"]["digest"], image.id());
            assert_eq!(
                manifest["layers"][0]["mediaType"],
                layer_media_type(compression)
            );
        }
        assert_eq!(files["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
    }

    #[test]
    fn references_split_and_qualify_like_docker() {
        let cases = [
            (
                "busybox:latest",
                "busybox",
                "latest",
                "docker.io/library/busybox:latest",
            ),
            (
                "busybox",
                "busybox",
                "latest",
                "docker.io/library/busybox:latest",
            ),
            ("me/bb:1", "me/bb", "1", "docker.io/me/bb:1"),
            (
                "localhost:5000/x",
                "localhost:5000/x",
                "latest",
                "localhost:5000/x:latest",
            ),
            ("quay.io/a/b:v2", "quay.io/a/b", "v2", "quay.io/a/b:v2"),
        ];
        for (input, repo, tag, qualified) in cases {
            assert_eq!(split_tag(input), (repo, tag), "{input}");
            assert_eq!(qualified_name(input), qualified, "{input}");
        }
    }
}
