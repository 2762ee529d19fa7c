//! COPY and ADD without a container: the sources (from the context or a stage's root
//! filesystem) become a layer tar directly, entries sorted, plus a checksum of what was copied
//! (paths, content, mode, owner; never mtime) for the cache key.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::context::{self, Context};
use crate::BuildError;
use estiba_api::glob::glob;

/// Most files one COPY takes.
const MAX_COPY_ENTRIES: usize = 1_000_000;

/// One COPY's resolved arguments.
#[derive(Debug, Clone)]
pub struct CopySpec {
    /// Source paths as written (expanded), relative to the source root.
    pub sources: Vec<String>,
    /// Absolute destination; a trailing `/` means a directory.
    pub dest: String,
    /// `--chown` as numbers; `None` keeps root (context) or the owner (another stage).
    pub chown: Option<(u64, u64)>,
    /// `--chmod` in octal.
    pub chmod: Option<u32>,
    /// Whether the sources come from the build context (owners become root).
    pub from_context: bool,
    /// ADD: a local tar archive (plain or gzip) is extracted into the destination directory.
    pub extract_archives: bool,
    /// Sources under this top directory (ADD's downloads, heredocs) are never extracted.
    pub no_extract_under: Option<String>,
}

/// What a source tree says about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File,
    Symlink,
    Other,
}

/// One path's metadata in a source tree.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub kind: FileKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
}

/// A tree COPY reads from: the build context (in memory) or a stage's root filesystem.
/// Paths are relative keys (`a/b`, "" for the root) already resolved by [`Tree::stat`].
pub trait Tree {
    /// Resolves `path` inside the tree (symlinks on the way followed as if the tree were
    /// the root; the last one not followed): its key and metadata, `None` when missing.
    fn stat(&self, path: &str) -> Result<Option<(String, Meta)>, BuildError>;
    /// Names directly inside the directory `dir`.
    fn list(&self, dir: &str) -> Result<Vec<String>, BuildError>;
    /// Every descendant of the directory `dir`: its path below `dir`, and metadata.
    fn walk(
        &self,
        dir: &str,
        f: &mut dyn FnMut(String, Meta) -> Result<(), BuildError>,
    ) -> Result<(), BuildError>;
    /// A regular file's content.
    fn open(&self, key: &str) -> io::Result<Box<dyn Read + '_>>;
    /// A symlink's target.
    fn link(&self, key: &str) -> io::Result<PathBuf>;
    /// A digest of a regular file's content.
    fn digest(&self, key: &str) -> io::Result<[u8; 32]>;
}

fn not_found(key: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{key}: not in the context"),
    )
}

fn ctx_meta(e: &context::Entry) -> Meta {
    let (kind, size) = match &e.kind {
        context::Kind::Dir => (FileKind::Dir, 0),
        context::Kind::File { data, .. } => (FileKind::File, data.len()),
        context::Kind::Symlink(_) => (FileKind::Symlink, 0),
    };
    Meta {
        kind,
        mode: e.mode,
        uid: 0,
        gid: 0,
        mtime: e.mtime,
        size,
    }
}

const ROOT_META: Meta = Meta {
    kind: FileKind::Dir,
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtime: 0,
    size: 0,
};

impl Tree for Context {
    fn stat(&self, path: &str) -> Result<Option<(String, Meta)>, BuildError> {
        let Some(key) = self.resolve(path, false)? else {
            return Ok(None);
        };
        if key.is_empty() {
            return Ok(Some((key, ROOT_META)));
        }
        Ok(self.get(&key).map(|e| (key.clone(), ctx_meta(e))))
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, BuildError> {
        Ok(Context::list(self, dir))
    }

    fn walk(
        &self,
        dir: &str,
        f: &mut dyn FnMut(String, Meta) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let skip = if dir.is_empty() { 0 } else { dir.len() + 1 };
        for (k, e) in self.subtree(dir) {
            f(k[skip..].to_string(), ctx_meta(e))?;
        }
        Ok(())
    }

    fn open(&self, key: &str) -> io::Result<Box<dyn Read + '_>> {
        match self.get(key).map(|e| &e.kind) {
            Some(context::Kind::File { data, .. }) => Ok(Context::open(self, data)),
            _ => Err(not_found(key)),
        }
    }

    fn link(&self, key: &str) -> io::Result<PathBuf> {
        match self.get(key).map(|e| &e.kind) {
            Some(context::Kind::Symlink(t)) => Ok(PathBuf::from(t)),
            _ => Err(not_found(key)),
        }
    }

    fn digest(&self, key: &str) -> io::Result<[u8; 32]> {
        match self.get(key).map(|e| &e.kind) {
            Some(context::Kind::File { digest, .. }) => Ok(*digest),
            _ => Err(not_found(key)),
        }
    }
}

/// The context with a few extra files (heredoc sources) under one private top directory.
pub struct Overlay<'c> {
    pub base: &'c Context,
    pub extra: &'c Context,
    /// The extra files' top directory (one path element).
    pub dir: &'c str,
}

impl Overlay<'_> {
    fn pick(&self, key: &str) -> &Context {
        let top = key.trim_start_matches('/').split('/').next().unwrap_or("");
        if top == self.dir {
            self.extra
        } else {
            self.base
        }
    }
}

impl Tree for Overlay<'_> {
    fn stat(&self, path: &str) -> Result<Option<(String, Meta)>, BuildError> {
        self.pick(path).stat(path)
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, BuildError> {
        Tree::list(self.pick(dir), dir)
    }
    fn walk(
        &self,
        dir: &str,
        f: &mut dyn FnMut(String, Meta) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        self.pick(dir).walk(dir, f)
    }
    fn open(&self, key: &str) -> io::Result<Box<dyn Read + '_>> {
        Tree::open(self.pick(key), key)
    }
    fn link(&self, key: &str) -> io::Result<PathBuf> {
        self.pick(key).link(key)
    }
    fn digest(&self, key: &str) -> io::Result<[u8; 32]> {
        self.pick(key).digest(key)
    }
}

/// A directory on disk (a stage's or an image's root filesystem).
pub struct FsTree<'p>(pub &'p Path);

fn fs_meta(m: &fs::Metadata) -> Meta {
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_file() {
        FileKind::File
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else {
        FileKind::Other
    };
    Meta {
        kind,
        mode: m.mode() & 0o7777,
        uid: u64::from(m.uid()),
        gid: u64::from(m.gid()),
        mtime: u64::try_from(m.mtime()).unwrap_or(0),
        size: if kind == FileKind::File { m.size() } else { 0 },
    }
}

impl FsTree<'_> {
    fn path(&self, key: &str) -> PathBuf {
        self.0.join(key)
    }

    fn walk_in(
        &self,
        dir: &Path,
        below: &str,
        f: &mut dyn FnMut(String, Meta) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let io_err =
            |e: io::Error| BuildError::Step(format!("COPY failed: {}: {e}", dir.display()));
        for entry in fs::read_dir(dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let m = fs_meta(&entry.metadata().map_err(io_err)?);
            let rel = join(below, &name);
            f(rel.clone(), m)?;
            if m.kind == FileKind::Dir {
                self.walk_in(&entry.path(), &rel, f)?;
            }
        }
        Ok(())
    }
}

impl Tree for FsTree<'_> {
    fn stat(&self, path: &str) -> Result<Option<(String, Meta)>, BuildError> {
        let clean = clean_rel(path);
        let (dir, leaf) = clean.rsplit_once('/').unwrap_or(("", clean.as_str()));
        let parent = estiba_volume::resolve_in_root(self.0, dir)
            .map_err(|e| BuildError::Step(format!("COPY failed: {path}: {e}")))?;
        let full = if leaf.is_empty() {
            parent
        } else {
            parent.join(leaf)
        };
        let Ok(m) = fs::symlink_metadata(&full) else {
            return Ok(None);
        };
        let key = full
            .strip_prefix(self.0)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Some((key, fs_meta(&m))))
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, BuildError> {
        Ok(fs::read_dir(self.path(dir))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default())
    }

    fn walk(
        &self,
        dir: &str,
        f: &mut dyn FnMut(String, Meta) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        self.walk_in(&self.path(dir), "", f)
    }

    fn open(&self, key: &str) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(File::open(self.path(key))?))
    }

    fn link(&self, key: &str) -> io::Result<PathBuf> {
        fs::read_link(self.path(key))
    }

    fn digest(&self, key: &str) -> io::Result<[u8; 32]> {
        let mut h = blake3::Hasher::new();
        io::copy(&mut File::open(self.path(key))?, &mut h)?;
        Ok(*h.finalize().as_bytes())
    }
}

/// One file to put in the layer.
struct Item {
    /// Path in the layer, without a leading `/`.
    dest: String,
    /// Its key in the source tree.
    src: String,
    meta: Meta,
}

fn missing(src: &str, from_context: bool) -> BuildError {
    if from_context {
        BuildError::Step(format!(
            "COPY failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
        ))
    } else {
        BuildError::Step(format!("COPY failed: stat {src}: file does not exist"))
    }
}

/// A source path cleaned lexically and kept inside the root, without its leading `/`.
fn clean_rel(p: &str) -> String {
    crate::layer::clean(p).trim_start_matches('/').to_string()
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The sources, wildcards expanded (in their last element), with the destination each maps
/// to; and how Docker labels them in history: `file` or `dir` for one source, else `multi`.
fn plan(tree: &dyn Tree, spec: &CopySpec) -> Result<(Vec<Item>, &'static str), BuildError> {
    let mut roots: Vec<(String, String, Meta)> = Vec::new();
    let mut wildcard = false;
    for src in &spec.sources {
        let rel = clean_rel(src);
        let (dir, leaf) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
        if has_wildcard(leaf) {
            wildcard = true;
            let dir_key = match tree.stat(dir)? {
                Some((k, m)) if m.kind == FileKind::Dir => Some(k),
                _ => None,
            };
            let mut names: Vec<String> = dir_key
                .as_deref()
                .map(|d| tree.list(d))
                .transpose()?
                .unwrap_or_default()
                .into_iter()
                .filter(|n| glob(leaf.as_bytes(), n.as_bytes()))
                .collect();
            names.sort();
            if names.is_empty() {
                return Err(missing(src, spec.from_context));
            }
            for n in names {
                let r = join(dir_key.as_deref().unwrap_or(""), &n);
                let (key, meta) = tree
                    .stat(&r)?
                    .ok_or_else(|| missing(src, spec.from_context))?;
                roots.push((n, key, meta));
            }
        } else {
            let (key, meta) = tree
                .stat(&rel)?
                .ok_or_else(|| missing(src, spec.from_context))?;
            roots.push((leaf.to_string(), key, meta));
        }
    }
    let dest = spec
        .dest
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string();
    let dest_is_dir = spec.dest.ends_with('/') || spec.sources.len() > 1 || wildcard;
    let extra = |key: &str| {
        spec.no_extract_under
            .as_deref()
            .is_some_and(|d| key.split('/').next() == Some(d))
    };
    let label = match roots.as_slice() {
        // One download: Docker records its bare checksum.
        [(_, key, _)] if extra(key) => "",
        [(_, _, m)] if m.kind == FileKind::Dir => "dir",
        [_] => "file",
        _ => "multi",
    };
    let mut items = Vec::new();
    for (name, key, meta) in roots {
        if meta.kind == FileKind::Dir {
            if !dest.is_empty() {
                items.push(Item {
                    dest: dest.clone(),
                    src: key.clone(),
                    meta,
                });
            }
            tree.walk(&key, &mut |below, m| {
                if items.len() >= MAX_COPY_ENTRIES {
                    return Err(BuildError::Step("COPY failed: too many files".into()));
                }
                items.push(Item {
                    dest: join(&dest, &below),
                    src: join(&key, &below),
                    meta: m,
                });
                Ok(())
            })?;
        } else {
            let target = if dest_is_dir || dest.is_empty() {
                join(&dest, &name)
            } else {
                dest.clone()
            };
            items.push(Item {
                dest: target,
                src: key,
                meta,
            });
        }
    }
    items.sort_by(|a, b| a.dest.cmp(&b.dest));
    items.dedup_by(|a, b| a.dest == b.dest);
    Ok((items, label))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn mode_of(spec: &CopySpec, meta: &Meta) -> u32 {
    spec.chmod.unwrap_or(meta.mode)
}

fn owner_of(spec: &CopySpec, meta: &Meta) -> (u64, u64) {
    match spec.chown {
        Some(o) => o,
        None if spec.from_context => (0, 0),
        None => (meta.uid, meta.gid),
    }
}

/// The checksum of what `spec` copies from `tree`: changes with any path, content, mode or
/// owner, not with mtimes. Content enters as its BLAKE3 digest (for the context, taken as
/// it streamed in), the whole as SHA-256, labelled as Docker does (`file:`, `dir:`, `multi:`).
pub fn checksum(tree: &dyn Tree, spec: &CopySpec) -> Result<String, BuildError> {
    let (items, label) = plan(tree, spec)?;
    let mut h = Sha256::new();
    let err = |e: io::Error| BuildError::Step(format!("COPY failed: {e}"));
    for it in &items {
        let (uid, gid) = owner_of(spec, &it.meta);
        h.update(format!("{}\0{:o}\0{uid}:{gid}\0", it.dest, mode_of(spec, &it.meta)).as_bytes());
        match it.meta.kind {
            FileKind::Symlink => {
                h.update(b"l");
                h.update(
                    tree.link(&it.src)
                        .map_err(err)?
                        .as_os_str()
                        .as_encoded_bytes(),
                );
            }
            FileKind::File => {
                h.update(b"f");
                h.update(tree.digest(&it.src).map_err(err)?);
            }
            _ => h.update(b"d"),
        }
        h.update(b"\n");
    }
    let sum = hex::encode(h.finalize());
    Ok(if label.is_empty() {
        sum
    } else {
        format!("{label}:{sum}")
    })
}

/// Writes the layer tar of `spec` (sources in `tree`) to `out`.
pub fn write_layer(
    tree: &dyn Tree,
    spec: &CopySpec,
    out: &mut dyn Write,
) -> Result<(), BuildError> {
    let (items, _) = plan(tree, spec)?;
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    let io_err = |e: io::Error| BuildError::Step(format!("COPY failed: {e}"));
    for it in &items {
        let mut header = tar::Header::new_gnu();
        let (uid, gid) = owner_of(spec, &it.meta);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mode(mode_of(spec, &it.meta));
        header.set_mtime(it.meta.mtime);
        header.set_size(0);
        match it.meta.kind {
            FileKind::Symlink => {
                let target = tree.link(&it.src).map_err(io_err)?;
                header.set_entry_type(tar::EntryType::Symlink);
                tar.append_link(&mut header, &it.dest, &target)
                    .map_err(io_err)?;
            }
            FileKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                tar.append_data(&mut header, format!("{}/", it.dest), io::empty())
                    .map_err(io_err)?;
            }
            FileKind::File => {
                let extractable = spec.extract_archives
                    && spec
                        .no_extract_under
                        .as_deref()
                        .is_none_or(|d| it.src.split('/').next() != Some(d));
                if extractable && is_archive(tree, &it.src) {
                    let dir = if spec.dest.ends_with('/') || it.dest.rsplit_once('/').is_none() {
                        spec.dest.trim_matches('/').to_string()
                    } else {
                        it.dest
                            .rsplit_once('/')
                            .map(|(d, _)| d.to_string())
                            .unwrap_or_default()
                    };
                    let reader = tree.open(&it.src).map_err(io_err)?;
                    extract_into(&mut tar, reader, &it.src, &dir)?;
                    continue;
                }
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(it.meta.size);
                let f = tree.open(&it.src).map_err(io_err)?;
                tar.append_data(&mut header, &it.dest, f.take(it.meta.size))
                    .map_err(io_err)?;
            }
            FileKind::Other => {}
        }
    }
    tar.finish().map_err(io_err)?;
    Ok(())
}

/// Whether a file starts like a tar (ustar magic at 257) or a gzip stream.
fn is_archive(tree: &dyn Tree, key: &str) -> bool {
    let mut head = [0u8; 512];
    let Ok(f) = tree.open(key) else {
        return false;
    };
    let n = f.take(512).read(&mut head).unwrap_or(0);
    head[..n].starts_with(&[0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar")
}

/// Copies the entries of the archive `f` (the source `src`) into `tar` under `dir` (ADD's
/// extraction); entries that would leave `dir` are refused.
fn extract_into<W: Write>(
    tar: &mut tar::Builder<W>,
    f: Box<dyn Read + '_>,
    src: &str,
    dir: &str,
) -> Result<(), BuildError> {
    let err = |e: io::Error| BuildError::Step(format!("ADD failed: {src}: {e}"));
    let mut buffered = io::BufReader::new(f);
    let gz = io::BufRead::fill_buf(&mut buffered)
        .map_err(err)?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let path = entry.path().map_err(err)?.into_owned();
        if !crate::context::contained(&path) {
            return Err(BuildError::Step(format!(
                "ADD failed: {src}: the entry {} is outside the destination",
                path.display()
            )));
        }
        let rel = path.to_string_lossy().trim_end_matches('/').to_string();
        if rel.is_empty() || rel == "." {
            continue;
        }
        let name = join(dir, &rel);
        let mut header = entry.header().clone();
        // Empty numeric fields read as 0, as Go's archive/tar (and so Docker) reads them.
        let h = entry.header();
        header.set_uid(h.uid().unwrap_or(0));
        header.set_gid(h.gid().unwrap_or(0));
        header.set_mtime(h.mtime().unwrap_or(0));
        header.set_mode(h.mode().unwrap_or(0o644));
        match header.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(err)?
                    .unwrap_or_default()
                    .into_owned();
                tar.append_link(&mut header, &name, target).map_err(err)?;
            }
            tar::EntryType::Directory => {
                tar.append_data(&mut header, format!("{name}/"), io::empty())
                    .map_err(err)?;
            }
            _ => tar
                .append_data(&mut header, &name, &mut entry)
                .map_err(err)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn spec(sources: &[&str], dest: &str) -> CopySpec {
        CopySpec {
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: dest.into(),
            chown: None,
            chmod: None,
            from_context: true,
            extract_archives: false,
            no_extract_under: None,
        }
    }

    fn names(root: &Path, s: &CopySpec) -> Vec<String> {
        let mut buf = Vec::new();
        write_layer(&FsTree(root), s, &mut buf).unwrap();
        let mut a = tar::Archive::new(&buf[..]);
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn destinations_follow_docker() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a.txt"), "a").unwrap();
        fs::write(d.path().join("b.txt"), "b").unwrap();
        fs::create_dir(d.path().join("dir")).unwrap();
        fs::write(d.path().join("dir/c"), "c").unwrap();
        assert_eq!(names(d.path(), &spec(&["a.txt"], "/x")), vec!["x"]);
        assert_eq!(names(d.path(), &spec(&["a.txt"], "/x/")), vec!["x/a.txt"]);
        assert_eq!(
            names(d.path(), &spec(&["*.txt"], "/x")),
            vec!["x/a.txt", "x/b.txt"]
        );
        assert_eq!(names(d.path(), &spec(&["dir"], "/y")), vec!["y/", "y/c"]);
        assert_eq!(names(d.path(), &spec(&["../a.txt"], "/")), vec!["a.txt"]);
        assert!(write_layer(&FsTree(d.path()), &spec(&["nope"], "/x"), &mut Vec::new()).is_err());

        // ADD extracts a local archive into the destination directory.
        let mut inner = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        inner.append_data(&mut h, "in/f", &b"x"[..]).unwrap();
        fs::write(d.path().join("a.tar"), inner.into_inner().unwrap()).unwrap();
        let mut add = spec(&["a.tar"], "/opt/");
        add.extract_archives = true;
        assert_eq!(names(d.path(), &add), vec!["opt/in/f"]);
    }

    #[test]
    fn checksum_sees_content_and_mode_not_mtime() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a");
        fs::write(&f, "1").unwrap();
        let s = spec(&["a"], "/a");
        let first = checksum(&FsTree(d.path()), &s).unwrap();
        let t = filetime_now_minus(&f);
        assert_eq!(checksum(&FsTree(d.path()), &s).unwrap(), first, "mtime {t}");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        let moded = checksum(&FsTree(d.path()), &s).unwrap();
        assert_ne!(moded, first);
        fs::write(&f, "2").unwrap();
        assert_ne!(checksum(&FsTree(d.path()), &s).unwrap(), moded);
    }

    fn filetime_now_minus(f: &Path) -> bool {
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        File::options()
            .write(true)
            .open(f)
            .and_then(|h| h.set_modified(old))
            .is_ok()
    }
}
