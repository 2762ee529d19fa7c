//! Shared helpers for the snapshotter tests: a layer tar builder (including hostile raw entries)
//! and a guard that unmounts on drop, so a failing assertion never leaves a mount behind.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use estiba_snapshot::overlay::OverlaySnapshotter;
use estiba_snapshot::vfs::VfsSnapshotter;
use estiba_snapshot::Snapshotter;

pub const MTIME: u64 = 1_600_000_000;

/// Both implementations, each on its own root under `base`.
pub fn drivers(base: &Path) -> Vec<(&'static str, Box<dyn Snapshotter>)> {
    let overlay = OverlaySnapshotter::new(&base.join("overlay")).expect("overlay root");
    overlay
        .probe()
        .expect("these tests run as root on a filesystem where overlay mounts (CI does)");
    let vfs = VfsSnapshotter::new(&base.join("vfs")).expect("vfs root");
    vec![("overlay2", Box::new(overlay)), ("vfs", Box::new(vfs))]
}

/// A name no other test run uses, for host paths that must never appear.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("estiba-{tag}-{}-{nanos}", std::process::id())
}

/// Unmounts its path on drop (detached, errors ignored: it may already be unmounted).
pub struct MountGuard(pub PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = rustix_unmount(&self.0);
    }
}

fn rustix_unmount(path: &Path) -> Result<(), estiba_snapshot::SnapshotError> {
    estiba_snapshot::unmount(path)
}

fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Builds a layer tar in memory.
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(MTIME);
        h.set_size(0);
        h
    }

    pub fn dir(mut self, name: &str, mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0, 0);
        self.b
            .append_data(&mut h, name, std::io::empty())
            .expect("dir");
        self
    }

    pub fn file(self, name: &str, data: &[u8]) -> Self {
        self.file_full(name, data, 0o644, 0, 0, &[])
    }

    pub fn file_full(
        mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        xattrs: &[(&str, &[u8])],
    ) -> Self {
        if !xattrs.is_empty() {
            let mut pax = Vec::new();
            for (k, v) in xattrs {
                pax_record(&mut pax, &format!("SCHILY.xattr.{k}"), v);
            }
            let mut xh = tar::Header::new_ustar();
            xh.set_entry_type(tar::EntryType::XHeader);
            xh.set_size(pax.len() as u64);
            xh.set_path("PaxHeaders/x").expect("pax path");
            xh.set_cksum();
            self.b.append(&xh, pax.as_slice()).expect("pax");
        }
        let mut h = Self::header(tar::EntryType::Regular, mode, uid, gid);
        h.set_size(data.len() as u64);
        self.b.append_data(&mut h, name, data).expect("file");
        self
    }

    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0, 0);
        self.b.append_link(&mut h, name, target).expect("symlink");
        self
    }

    pub fn hardlink(mut self, name: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0, 0);
        self.b.append_link(&mut h, name, target).expect("hardlink");
        self
    }

    pub fn fifo(mut self, name: &str, mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Fifo, mode, 0, 0);
        self.b
            .append_data(&mut h, name, std::io::empty())
            .expect("fifo");
        self
    }

    pub fn chardev(mut self, name: &str, major: u32, minor: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Char, 0o666, 0, 0);
        h.set_device_major(major).expect("major");
        h.set_device_minor(minor).expect("minor");
        self.b
            .append_data(&mut h, name, std::io::empty())
            .expect("chardev");
        self
    }

    /// An entry written byte for byte, bypassing the tar crate's own path checks (`..`, absolute).
    pub fn raw(mut self, kind: tar::EntryType, name: &[u8], link: &[u8], data: &[u8]) -> Self {
        let mut h = Self::header(kind, 0o644, 0, 0);
        h.set_size(data.len() as u64);
        {
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..name.len()].copy_from_slice(name);
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_cksum();
        self.b.append(&h, data).expect("raw");
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().expect("finish")
    }
}

/// The entries of a layer tar: (name without trailing '/', type, content).
pub fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = String::from_utf8_lossy(&entry.path_bytes())
            .trim_end_matches('/')
            .to_owned();
        let kind = entry.header().entry_type();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).expect("data");
        out.push((name, kind, data));
    }
    out
}

/// `tmp-*` leftovers in a snapshot root.
pub fn temp_dirs(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("tmp-"))
                .collect()
        })
        .unwrap_or_default()
}
