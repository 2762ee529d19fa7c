//! Test helpers: small layer tars, image configs and docker-archive / OCI-layout tarballs, and
//! an in-memory snapshotter that records what it was asked to unpack.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use estiba_snapshot::{LayerStats, MountSpec, SnapshotDirs, SnapshotError, Snapshotter};

use crate::config::{Compression, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST};
use crate::digest::Digest;

pub(crate) fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        // Raw name bytes: tests need names such as `../x` that `set_path` refuses.
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub(crate) fn compress(data: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(data, 1).unwrap(),
    }
}

/// An image made for a test: config bytes and its layer tars (uncompressed).
#[derive(Clone)]
pub(crate) struct TestImage {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
}

impl TestImage {
    pub(crate) fn new(layers: Vec<Vec<u8>>, created: &str, labels: &[(&str, &str)]) -> Self {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| Digest::of_bytes(l).to_string())
            .collect();
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let history: Vec<serde_json::Value> = (0..layers.len())
            .map(|i| serde_json::json!({"created": created, "created_by": format!("step {i}")}))
            .chain(std::iter::once(
                serde_json::json!({"created": created, "created_by": "CMD [\"sh\"]", "empty_layer": true}),
            ))
            .collect();
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "created": created,
            "config": {"Cmd": ["sh"], "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        TestImage {
            config: serde_json::to_vec(&config).unwrap(),
            layers,
        }
    }

    pub(crate) fn id(&self) -> String {
        Digest::of_bytes(&self.config).to_string()
    }
}

fn add(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).unwrap();
}

/// A docker-archive as dockerd 20.10 writes it (`manifest.json` last).
pub(crate) fn docker_archive(images: &[(&TestImage, &[&str])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    for (img, tags) in images {
        let cfg = format!("{}.json", Digest::of_bytes(&img.config).hex());
        add(&mut b, &cfg, &img.config);
        let mut layers = Vec::new();
        for l in &img.layers {
            let name = format!("{}/layer.tar", Digest::of_bytes(l).hex());
            add(&mut b, &name, l);
            layers.push(name);
        }
        manifest.push(serde_json::json!({"Config": cfg, "RepoTags": tags, "Layers": layers}));
    }
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}

/// An OCI layout tarball (index.json only, no manifest.json), layers compressed with `c`.
pub(crate) fn oci_archive(images: &[(&TestImage, &[&str])], c: Compression) -> Vec<u8> {
    oci_archive_with(images, c, c.oci_layer_media_type())
}

pub(crate) fn oci_archive_with(
    images: &[(&TestImage, &[&str])],
    c: Compression,
    layer_media_type: &str,
) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let mut index = Vec::new();
    for (img, tags) in images {
        let cd = Digest::of_bytes(&img.config);
        add(&mut b, &format!("blobs/sha256/{}", cd.hex()), &img.config);
        let mut layers = Vec::new();
        for l in &img.layers {
            let blob = compress(l, c);
            let d = Digest::of_bytes(&blob);
            add(&mut b, &format!("blobs/sha256/{}", d.hex()), &blob);
            layers.push(
                serde_json::json!({"mediaType": layer_media_type, "digest": d, "size": blob.len()}),
            );
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": cd, "size": img.config.len()},
            "layers": layers,
        }))
        .unwrap();
        let md = Digest::of_bytes(&manifest);
        add(&mut b, &format!("blobs/sha256/{}", md.hex()), &manifest);
        if tags.is_empty() {
            index.push(serde_json::json!({"mediaType": MEDIA_OCI_MANIFEST, "digest": md, "size": manifest.len()}));
        }
        for t in *tags {
            index.push(serde_json::json!({
                "mediaType": MEDIA_OCI_MANIFEST, "digest": md, "size": manifest.len(),
                "annotations": {"io.containerd.image.name": t, "org.opencontainers.image.ref.name": "x"},
            }));
        }
    }
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index});
    add(&mut b, "index.json", &serde_json::to_vec(&index).unwrap());
    b.into_inner().unwrap()
}

/// Lists the regular files of a tarball with their contents.
pub(crate) fn tar_files(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(data);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_file() {
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).unwrap();
            out.insert(name, buf);
        }
    }
    out
}

/// A snapshotter that keeps only facts in memory: what was applied on what, and file sizes.
/// Snapshot key -> (parent, entry names).
type Snaps = HashMap<String, (Option<String>, Vec<String>)>;

#[derive(Default)]
pub(crate) struct FakeSnapshotter {
    pub snaps: Mutex<Snaps>,
    pub applied: Mutex<Vec<String>>,
}

impl FakeSnapshotter {
    pub(crate) fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.snaps.lock().unwrap().keys().cloned().collect();
        k.sort();
        k
    }
}

impl Snapshotter for FakeSnapshotter {
    fn driver_name(&self) -> &'static str {
        "vfs"
    }
    fn exists(&self, key: &str) -> bool {
        self.snaps.lock().unwrap().contains_key(key)
    }
    fn apply_layer(
        &self,
        key: &str,
        parent: Option<&str>,
        layer: &mut dyn Read,
    ) -> Result<LayerStats, SnapshotError> {
        if let Some(p) = parent {
            if !self.exists(p) {
                return Err(SnapshotError::NotFound(p.to_string()));
            }
        }
        let mut size = 0;
        let mut names = Vec::new();
        let mut a = tar::Archive::new(layer);
        for e in a.entries().map_err(SnapshotError::CorruptTar)? {
            let mut e = e.map_err(SnapshotError::CorruptTar)?;
            let name = e
                .path()
                .map_err(SnapshotError::CorruptTar)?
                .to_string_lossy()
                .into_owned();
            if name.split('/').any(|c| c == "..") {
                return Err(SnapshotError::InvalidLayer(format!(
                    "{name} escapes the layer"
                )));
            }
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).map_err(SnapshotError::CorruptTar)?;
            // Like Docker's layer size: file bytes plus symlink target lengths.
            let link = e.link_name_bytes().map(|l| l.len()).unwrap_or(0);
            if e.header().entry_type().is_symlink() {
                size += link as u64;
            }
            size += buf.len() as u64;
            names.push(name);
        }
        let mut snaps = self.snaps.lock().unwrap();
        if snaps.contains_key(key) {
            return Err(SnapshotError::AlreadyExists(key.to_string()));
        }
        snaps.insert(key.to_string(), (parent.map(str::to_string), names));
        self.applied.lock().unwrap().push(key.to_string());
        Ok(LayerStats { size_bytes: size })
    }
    fn prepare(&self, _: &str, _: Option<&str>) -> Result<Vec<MountSpec>, SnapshotError> {
        unimplemented!()
    }
    fn mounts(&self, _: &str) -> Result<Vec<MountSpec>, SnapshotError> {
        unimplemented!()
    }
    fn mount(&self, _: &str, _: &Path) -> Result<(), SnapshotError> {
        unimplemented!()
    }
    fn unmount(&self, _: &Path) -> Result<(), SnapshotError> {
        unimplemented!()
    }
    fn diff(&self, _: &str, _: &mut dyn Write) -> Result<LayerStats, SnapshotError> {
        unimplemented!()
    }
    fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let mut snaps = self.snaps.lock().unwrap();
        if let Some((child, _)) = snaps.iter().find(|(_, (p, _))| p.as_deref() == Some(key)) {
            return Err(SnapshotError::InUse {
                key: key.to_string(),
                child: child.clone(),
            });
        }
        snaps
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| SnapshotError::NotFound(key.to_string()))
    }
    fn usage(&self, _: &str) -> Result<u64, SnapshotError> {
        Ok(0)
    }
    fn dirs(&self, key: &str) -> Result<SnapshotDirs, SnapshotError> {
        Ok(SnapshotDirs {
            upper: PathBuf::from("/fake").join(key),
            ..Default::default()
        })
    }
    fn list(&self) -> Result<Vec<String>, SnapshotError> {
        Ok(self.keys())
    }
    fn cleanup(&self) -> Result<(), SnapshotError> {
        Ok(())
    }
}
