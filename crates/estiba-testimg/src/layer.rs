//! A deterministic layer-tar builder: fixed mtimes, explicit owners and modes, sorted entries,
//! and raw names and link targets (so hostile layers can say `../../x` or `/etc/passwd`).

use crate::TestImageError;

/// Every entry's mtime: 2024-01-01T00:00:00Z, so two runs give byte-identical tarballs.
pub const FIXED_MTIME: u64 = 1_704_067_200;

/// The longest name a plain ustar `name` field holds (we never need the prefix field).
const MAX_NAME_BYTES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    Hardlink,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
    link: String,
    data: Vec<u8>,
}

/// Collects entries, then writes them as one uncompressed tar.
///
/// Entries are sorted by name when the layer is finished (hardlink targets must therefore sort
/// before their links, which holds for every recipe here), unless [`LayerBuilder::keep_order`]
/// asked for the insertion order, which hostile layers need ("symlink, then write through it").
#[derive(Debug, Clone, Default)]
pub struct LayerBuilder {
    entries: Vec<Entry>,
    keep_order: bool,
}

impl LayerBuilder {
    pub fn new() -> Self {
        LayerBuilder::default()
    }

    /// Writes entries in the order they were added instead of sorting them.
    pub fn keep_order(mut self) -> Self {
        self.keep_order = true;
        self
    }

    fn push(&mut self, name: &str, kind: Kind, mode: u32, link: &str, data: Vec<u8>) -> &mut Self {
        self.entries.push(Entry {
            name: name.to_owned(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            link: link.to_owned(),
            data,
        });
        self
    }

    /// A directory (the trailing `/` is added).
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let name = format!("{}/", path.trim_end_matches('/'));
        self.push(&name, Kind::Dir, mode, "", Vec::new())
    }

    pub fn file(&mut self, path: &str, mode: u32, data: impl Into<Vec<u8>>) -> &mut Self {
        self.push(path, Kind::File, mode, "", data.into())
    }

    /// A regular file with a non-root owner.
    pub fn file_owned(
        &mut self,
        path: &str,
        mode: u32,
        uid: u64,
        gid: u64,
        data: impl Into<Vec<u8>>,
    ) -> &mut Self {
        self.push(path, Kind::File, mode, "", data.into());
        if let Some(last) = self.entries.last_mut() {
            last.uid = uid;
            last.gid = gid;
        }
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.push(path, Kind::Symlink, 0o777, target, Vec::new())
    }

    /// A hardlink to `target`, a name inside the same layer (or, for hostile layers, anything).
    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.push(path, Kind::Hardlink, 0o644, target, Vec::new())
    }

    /// An AUFS-style whiteout deleting `path` from the layers below: `dir/.wh.name`.
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        let name = match path.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/.wh.{base}"),
            None => format!(".wh.{path}"),
        };
        self.push(&name, Kind::File, 0o644, "", Vec::new())
    }

    /// Marks `dir` opaque: nothing from the layers below shows through it.
    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        let name = format!("{}/.wh..wh..opq", dir.trim_end_matches('/'));
        self.push(&name, Kind::File, 0o644, "", Vec::new())
    }

    /// Number of entries added so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Like [`LayerBuilder::finish`], after dropping earlier entries of a repeated name (the last
    /// one added wins), so recipes can re-add a directory with another mode.
    pub fn finish_dedup(mut self) -> Result<Vec<u8>, TestImageError> {
        let mut seen = std::collections::HashSet::new();
        let mut kept: Vec<Entry> = Vec::with_capacity(self.entries.len());
        for entry in self.entries.into_iter().rev() {
            if seen.insert(entry.name.clone()) {
                kept.push(entry);
            }
        }
        kept.reverse();
        self.entries = kept;
        self.finish()
    }

    /// Writes the tar (with its two zero end blocks) and returns its bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, TestImageError> {
        if !self.keep_order {
            self.entries.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let mut builder = tar::Builder::new(Vec::new());
        for entry in &self.entries {
            let header = header_for(entry)?;
            builder
                .append(&header, entry.data.as_slice())
                .map_err(|source| TestImageError::Tar {
                    name: entry.name.clone(),
                    source,
                })?;
        }
        builder.into_inner().map_err(|source| TestImageError::Tar {
            name: "<end of archive>".to_owned(),
            source,
        })
    }
}

fn header_for(entry: &Entry) -> Result<tar::Header, TestImageError> {
    let tar_err = |source| TestImageError::Tar {
        name: entry.name.clone(),
        source,
    };
    let mut header = tar::Header::new_ustar();
    let name = entry.name.as_bytes();
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(TestImageError::NameTooLong(entry.name.clone()));
    }
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_mode(entry.mode);
    header.set_uid(entry.uid);
    header.set_gid(entry.gid);
    header.set_mtime(FIXED_MTIME);
    header.set_size(entry.data.len() as u64);
    header.set_entry_type(match entry.kind {
        Kind::Dir => tar::EntryType::Directory,
        Kind::File => tar::EntryType::Regular,
        Kind::Symlink => tar::EntryType::Symlink,
        Kind::Hardlink => tar::EntryType::Link,
    });
    if !entry.link.is_empty() {
        if entry.link.len() > MAX_NAME_BYTES {
            return Err(TestImageError::NameTooLong(entry.link.clone()));
        }
        header
            .set_link_name_literal(entry.link.as_bytes())
            .map_err(tar_err)?;
    }
    header.set_cksum();
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, entry type, mode, uid, link target) of every entry of a tar, in order.
    fn list(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, u32, u64, String)> {
        let mut archive = tar::Archive::new(tar_bytes);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            out.push((
                String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
                header.entry_type(),
                header.mode().unwrap(),
                header.uid().unwrap(),
                entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default(),
            ));
        }
        out
    }

    #[test]
    fn entries_are_sorted_and_typed() {
        let mut layer = LayerBuilder::new();
        layer
            .file("b/file", 0o640, "x")
            .dir("b", 0o755)
            .symlink("a-link", "/b/file")
            .hardlink("b/hard", "b/file")
            .whiteout("c/gone")
            .opaque("d")
            .file_owned("e", 0o4755, 1000, 1000, "y");
        let got = list(&layer.finish().unwrap());
        use tar::EntryType as T;
        let want = [
            ("a-link", T::Symlink, 0o777, 0, "/b/file"),
            ("b/", T::Directory, 0o755, 0, ""),
            ("b/file", T::Regular, 0o640, 0, ""),
            ("b/hard", T::Link, 0o644, 0, "b/file"),
            ("c/.wh.gone", T::Regular, 0o644, 0, ""),
            ("d/.wh..wh..opq", T::Regular, 0o644, 0, ""),
            ("e", T::Regular, 0o4755, 1000, ""),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(n, t, m, u, l)| (n.to_string(), *t, *m, *u, l.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn hostile_names_are_written_verbatim_in_order() {
        let mut layer = LayerBuilder::new().keep_order();
        layer
            .symlink("z", "/")
            .file("z/tmp/x", 0o644, "x")
            .file("../../x", 0o644, "y");
        let names: Vec<String> = list(&layer.finish().unwrap())
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, ["z", "z/tmp/x", "../../x"]);
    }

    #[test]
    fn over_long_names_are_refused() {
        let mut layer = LayerBuilder::new();
        layer.file(&"a".repeat(101), 0o644, "");
        assert!(matches!(
            layer.finish(),
            Err(TestImageError::NameTooLong(_))
        ));
    }
}
