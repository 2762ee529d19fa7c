//! Looking at a data-root on disk: file sets, byte counts that count hardlinks once, mounts.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The most entries a walk visits; a runaway tree fails the test rather than hanging it.
pub const MAX_WALK_ENTRIES: usize = 2_000_000;

/// Every path under `root` (files, dirs, symlinks; not following symlinks), relative to it.
/// A missing `root` is an empty set.
pub fn walk(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            assert!(
                out.len() < MAX_WALK_ENTRIES,
                "more than {MAX_WALK_ENTRIES} entries under {}",
                root.display()
            );
            if let Ok(rel) = path.strip_prefix(root) {
                out.insert(rel.to_path_buf());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    out
}

/// Only the regular files of [`walk`], with their sizes.
pub fn files_with_sizes(root: &Path) -> BTreeMap<PathBuf, u64> {
    walk(root)
        .into_iter()
        .filter_map(|rel| {
            let meta = std::fs::symlink_metadata(root.join(&rel)).ok()?;
            meta.file_type().is_file().then_some((rel, meta.len()))
        })
        .collect()
}

/// Bytes of regular-file content under `root`, each inode counted once (what `du -b` shows for
/// files, without directory sizes).
pub fn unique_file_bytes(root: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    for rel in walk(root) {
        if let Ok(meta) = std::fs::symlink_metadata(root.join(&rel)) {
            if meta.file_type().is_file() && seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    total
}

/// Bytes allocated on disk under `root` (st_blocks), each inode once, like `du -s` in bytes.
pub fn disk_usage_bytes(root: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    for rel in walk(root) {
        if let Ok(meta) = std::fs::symlink_metadata(root.join(&rel)) {
            if seen.insert((meta.dev(), meta.ino())) {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

/// Paths under `root` (within `max_depth` levels) whose tail is `rel`, e.g. every snapshot dir
/// holding `bin/busybox`.
pub fn find_tail(root: &Path, rel: &Path) -> Vec<PathBuf> {
    walk(root)
        .into_iter()
        .filter(|p| p.ends_with(rel))
        .map(|p| root.join(p))
        .collect()
}

/// Mount points at or under `dir` (from /proc/self/mountinfo), shallowest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| p.components().count());
    out.dedup();
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|oct| u8::from_str_radix(oct, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Resident memory of a process in KiB (VmRSS), if it is alive.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        let cases = [
            ("/a/b", "/a/b"),
            ("/a\\040b", "/a b"),
            ("/x\\011y\\134z", "/x\ty\\z"),
            ("/trailing\\", "/trailing\\"),
        ];
        for (input, want) in cases {
            assert_eq!(unescape_mountinfo(input), want, "{input}");
        }
    }

    #[test]
    fn hardlinked_bytes_count_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![0u8; 1000]).unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/c"), vec![0u8; 24]).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("l")).unwrap();
        assert_eq!(unique_file_bytes(dir.path()), 1024);
        let names: Vec<_> = walk(dir.path()).into_iter().collect();
        assert_eq!(
            names,
            ["a", "b", "d", "d/c", "l"].map(PathBuf::from).to_vec()
        );
        assert_eq!(
            find_tail(dir.path(), Path::new("d/c")),
            [dir.path().join("d/c")]
        );
    }
}
