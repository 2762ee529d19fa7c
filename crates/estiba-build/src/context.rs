//! The build context, read once from the request's tar stream (plain or gzip, as docker sends
//! it) into an index held in memory: each entry's type, mode and mtime, and for a file a
//! BLAKE3 digest of its content taken while it streams in. The content itself is kept in
//! memory for small files (a small budget), else in an unlinked spool file; nothing is written under the
//! context's own names unless a step needs a real directory (a `RUN --mount=type=bind` from
//! the context), so a fully cached build never touches the disk for it.
//!
//! An entry that would land outside the context (`../x`, an absolute path) or under a symlink
//! refuses the whole context; paths are resolved inside the index, so a symlink can never
//! point a step at a file outside the context.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::BuildError;

/// Most entries in one context.
const MAX_CONTEXT_ENTRIES: u64 = 1_000_000;
/// Most bytes of file content in one context.
const MAX_CONTEXT_BYTES: u64 = 64 << 30;
/// Most file content kept on the heap, and the largest file kept there. Small, because heap
/// memory freed after a build stays with the process (malloc keeps it: a 10 MB file on the
/// heap left the daemon ~10 MB larger for good).
const MAX_MEMORY_BYTES: u64 = 4 << 20;
const MAX_MEMORY_FILE_BYTES: u64 = 256 << 10;
/// Most file content kept in anonymous mappings of their own (transparent huge pages where
/// the kernel allows: 10 MB in ~1.4 ms, against ~4 ms for the spool file; unmapped, so given
/// back, when the build ends). The rest goes to the spool file (page cache).
const MAX_MAPPED_BYTES: u64 = 256 << 20;
/// Most bytes mapped by all builds at once; past it, files go to their build's spool.
const MAX_MAPPED_BYTES_ALL: u64 = 512 << 20;

/// Bytes mapped by all contexts alive now.
static MAPPED_NOW: AtomicU64 = AtomicU64::new(0);

/// A share of [`MAPPED_NOW`], given back when dropped.
#[derive(Debug)]
struct MapLease(u64);

impl MapLease {
    /// Takes `size` bytes of the all-builds allowance, or says no.
    fn take(size: u64) -> Option<MapLease> {
        MAPPED_NOW
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now + size <= MAX_MAPPED_BYTES_ALL).then_some(now + size)
            })
            .ok()
            .map(|_| MapLease(size))
    }
}

impl Drop for MapLease {
    fn drop(&mut self) {
        MAPPED_NOW.fetch_sub(self.0, Ordering::AcqRel);
    }
}

/// A file's content in an anonymous mapping, counted in [`MAPPED_NOW`] while it lives.
#[derive(Debug)]
struct Mapped {
    map: memmap2::Mmap,
    _lease: MapLease,
}
/// How much of a file is read before it is hashed.
const HASH_SLICE_BYTES: usize = 512 << 10;
/// Longest path or symlink target in the context.
const MAX_PATH_BYTES: usize = 4096;
/// Most symlinks followed while resolving one path.
const MAX_SYMLINKS: usize = 255;

/// Where a file's content is.
#[derive(Debug, Clone)]
enum Data {
    Memory(Arc<Vec<u8>>),
    Mapped(Arc<Mapped>),
    Spool {
        file: Arc<File>,
        offset: u64,
        len: u64,
    },
}

/// What an entry is.
#[derive(Debug, Clone)]
pub enum Kind {
    Dir,
    /// A regular file (a hard link shares its target's content) and its content's BLAKE3.
    File {
        digest: [u8; 32],
        data: DataRef,
    },
    Symlink(String),
}

/// A file's content handle (opaque outside this module).
#[derive(Debug, Clone)]
pub struct DataRef(Data);

impl DataRef {
    pub fn len(&self) -> u64 {
        match &self.0 {
            Data::Memory(v) => v.len() as u64,
            Data::Mapped(m) => m.map.len() as u64,
            Data::Spool { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One entry of the context.
#[derive(Debug, Clone)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits (with setuid, setgid, sticky).
    pub mode: u32,
    pub mtime: u64,
}

/// The context: entries by path (relative, clean, no leading `/`; the root is not listed).
pub struct Context {
    entries: BTreeMap<String, Entry>,
    /// The context written out on disk, made on first need.
    materialised: Mutex<Option<crate::TempDir>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("entries", &self.entries.len())
            .finish()
    }
}

fn ctx_err(e: impl std::fmt::Display) -> BuildError {
    BuildError::Context(format!("read build context: {e}"))
}

/// Relative, with no `..` element.
pub fn contained(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// `a/./b/` as `a/b`; `None` for a path that is not contained or not UTF-8.
fn clean_key(path: &Path) -> Option<String> {
    if !contained(path) {
        return None;
    }
    let parts: Option<Vec<&str>> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_str()),
            _ => None,
        })
        .collect();
    Some(parts?.join("/"))
}

/// The entries' content while the stream is read: memory first, then the spool file.
struct Store<'d> {
    spool_dir: &'d Path,
    spool: Option<Arc<File>>,
    spool_len: u64,
    memory: u64,
    budget: u64,
    mapped: u64,
    map_budget: u64,
}

impl<'d> Store<'d> {
    /// An empty store: `budget` bytes on the heap, `map_budget` in mappings, the rest spooled
    /// in `spool_dir`.
    fn new(spool_dir: &'d Path, budget: u64, map_budget: u64) -> Store<'d> {
        Store {
            spool_dir,
            spool: None,
            spool_len: 0,
            memory: 0,
            budget,
            mapped: 0,
            map_budget,
        }
    }

    /// Reads `size` bytes from `r`, hashing them as they come; returns the digest and where
    /// they are kept.
    fn take(&mut self, r: &mut dyn Read, size: u64) -> Result<Kind, BuildError> {
        let mut hasher = blake3::Hasher::new();
        if size <= MAX_MEMORY_FILE_BYTES && self.memory + size <= self.budget {
            let mut buf = Vec::with_capacity(size as usize);
            r.take(size).read_to_end(&mut buf).map_err(ctx_err)?;
            if (buf.len() as u64) < size {
                return Err(ctx_err("unexpected end of the context"));
            }
            hasher.update(&buf);
            self.memory += size;
            let data = DataRef(Data::Memory(Arc::new(buf)));
            return Ok(Kind::File {
                digest: *hasher.finalize().as_bytes(),
                data,
            });
        }
        if size > 0 && self.mapped + size <= self.map_budget {
            if let Some(kind) = self.map(r, size)? {
                return Ok(kind);
            }
        }
        self.spill(&mut hasher, r, size, &[])
    }

    /// Reads `size` bytes into an anonymous mapping of their own; `None` when the kernel
    /// gives none (then the spool takes them).
    fn map(&mut self, r: &mut dyn Read, size: u64) -> Result<Option<Kind>, BuildError> {
        let Ok(len) = usize::try_from(size) else {
            return Ok(None);
        };
        let Some(lease) = MapLease::take(size) else {
            return Ok(None);
        };
        let Ok(mut m) = memmap2::MmapMut::map_anon(len) else {
            return Ok(None);
        };
        // Only advice: without huge pages it is still correct, only slower.
        let _ = m.advise(memmap2::Advice::HugePage);
        // Hashed slice by slice as the bytes come: the hash overlaps the transfer, so only
        // the last slice's hashing is left when the last byte arrives.
        let mut hasher = blake3::Hasher::new();
        for slice in m.chunks_mut(HASH_SLICE_BYTES) {
            r.read_exact(slice).map_err(ctx_err)?;
            hasher.update(slice);
        }
        let digest = *hasher.finalize().as_bytes();
        let m = Mapped {
            map: m.make_read_only().map_err(ctx_err)?,
            _lease: lease,
        };
        self.mapped += size;
        Ok(Some(Kind::File {
            digest,
            data: DataRef(Data::Mapped(Arc::new(m))),
        }))
    }

    /// Reads `r` to its end (at most the context's byte bound): in memory while the budget
    /// lasts, then spooled.
    fn take_all(&mut self, r: &mut dyn Read) -> Result<Kind, BuildError> {
        let room = self
            .budget
            .saturating_sub(self.memory)
            .min(MAX_MEMORY_FILE_BYTES);
        let mut buf = Vec::new();
        r.take(room + 1).read_to_end(&mut buf).map_err(ctx_err)?;
        let len = buf.len() as u64;
        if len <= room {
            return self.take(&mut &buf[..], len);
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&buf);
        self.spill(&mut hasher, r, MAX_CONTEXT_BYTES, &buf)
    }

    /// Writes `head` then up to `size` bytes of `r` (exactly `size` unless `head` is given,
    /// when the end of `r` ends it) to the spool.
    fn spill(
        &mut self,
        hasher: &mut blake3::Hasher,
        r: &mut dyn Read,
        size: u64,
        head: &[u8],
    ) -> Result<Kind, BuildError> {
        if self.spool.is_none() {
            let file = tempfile::tempfile_in(self.spool_dir).map_err(ctx_err)?;
            self.spool = Some(Arc::new(file));
        }
        let file = self.spool.clone().ok_or_else(|| ctx_err("no spool"))?;
        let mut spool: &File = &file;
        let offset = self.spool_len;
        spool.write_all(head).map_err(ctx_err)?;
        let until_eof = !head.is_empty();
        let mut written = head.len() as u64;
        let mut buf = vec![0u8; 256 * 1024];
        let mut left = size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = r.read(&mut buf[..want]).map_err(ctx_err)?;
            if n == 0 && until_eof {
                break;
            }
            if n == 0 {
                return Err(ctx_err("unexpected end of the context"));
            }
            hasher.update(&buf[..n]);
            spool.write_all(&buf[..n]).map_err(ctx_err)?;
            left -= n as u64;
            written += n as u64;
        }
        if until_eof && left == 0 {
            return Err(BuildError::Context("a source is too large".into()));
        }
        self.spool_len += written;
        Ok(Kind::File {
            digest: *hasher.finalize().as_bytes(),
            data: DataRef(Data::Spool {
                file,
                offset,
                len: written,
            }),
        })
    }
}

impl Context {
    /// Reads the context tar from `input`; content beyond the memory budget is spooled to an
    /// unlinked file in `spool_dir`.
    pub fn read(input: &mut dyn Read, spool_dir: &Path) -> Result<Context, BuildError> {
        Self::read_with(input, spool_dir, MAX_MEMORY_BYTES, MAX_MAPPED_BYTES)
    }

    fn read_with(
        input: &mut dyn Read,
        spool_dir: &Path,
        memory_budget: u64,
        map_budget: u64,
    ) -> Result<Context, BuildError> {
        let mut buffered = BufReader::with_capacity(256 * 1024, input);
        let head = buffered.fill_buf().map_err(ctx_err)?;
        let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let mut archive = tar::Archive::new(reader);
        let mut ctx = Context::empty();
        let mut store = Store::new(spool_dir, memory_budget, map_budget);
        let (mut count, mut bytes) = (0u64, 0u64);
        for entry in archive.entries().map_err(ctx_err)? {
            let mut entry = entry.map_err(ctx_err)?;
            let path = entry.path().map_err(ctx_err)?.into_owned();
            let Some(key) = clean_key(&path) else {
                return Err(BuildError::Context(format!(
                    "invalid build context: the path {} is outside the context",
                    path.display()
                )));
            };
            count += 1;
            bytes += entry.size();
            if count > MAX_CONTEXT_ENTRIES || bytes > MAX_CONTEXT_BYTES {
                return Err(BuildError::Context("build context is too large".into()));
            }
            if key.len() > MAX_PATH_BYTES {
                return Err(BuildError::Context(format!(
                    "invalid build context: a path is longer than {MAX_PATH_BYTES} bytes"
                )));
            }
            let header = entry.header();
            let mode = header.mode().map_err(ctx_err)? & 0o7777;
            let mtime = header.mtime().unwrap_or(0);
            let kind = match header.entry_type() {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    store.take(&mut entry, size)?
                }
                tar::EntryType::Symlink => Kind::Symlink(link_name(&entry)?),
                tar::EntryType::Link => {
                    let target = link_name(&entry)?;
                    let key = clean_key(Path::new(&target)).unwrap_or_default();
                    match ctx.entries.get(&key) {
                        Some(
                            e @ Entry {
                                kind: Kind::File { .. },
                                ..
                            },
                        ) => e.kind.clone(),
                        _ => {
                            return Err(BuildError::Context(format!(
                                "invalid build context: hard link {} to a missing file {target}",
                                path.display()
                            )))
                        }
                    }
                }
                // Devices, fifos and the like: never copied, as before.
                _ => continue,
            };
            if key.is_empty() {
                continue; // the root itself
            }
            ctx.insert(key, Entry { kind, mode, mtime })?;
        }
        Ok(ctx)
    }

    /// Adds an entry, with its missing parents as directories; an entry under a file or a
    /// symlink refuses the context (it could not be unpacked without leaving the context).
    fn insert(&mut self, key: String, entry: Entry) -> Result<(), BuildError> {
        let mut end = 0;
        while let Some(i) = key[end..].find('/') {
            end += i;
            let parent = &key[..end];
            match self.entries.get(parent) {
                None => {
                    let dir = Entry {
                        kind: Kind::Dir,
                        mode: 0o755,
                        mtime: entry.mtime,
                    };
                    self.entries.insert(parent.to_string(), dir);
                }
                Some(Entry {
                    kind: Kind::Dir, ..
                }) => {}
                Some(_) => {
                    return Err(BuildError::Context(format!(
                        "invalid build context: {key} is under {parent}, which is not a directory"
                    )))
                }
            }
            end += 1;
        }
        if !matches!(entry.kind, Kind::Dir) {
            // A later entry replaces an earlier directory: its content goes with it.
            let gone: Vec<String> = self.subtree(&key).map(|(k, _)| k.clone()).collect();
            for k in gone {
                self.entries.remove(&k);
            }
        }
        self.entries.insert(key, entry);
        Ok(())
    }

    /// The descendants of `dir` ("" for all), in path order.
    pub fn subtree<'s>(&'s self, dir: &str) -> impl Iterator<Item = (&'s String, &'s Entry)> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.entries
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k.is_empty())
    }

    /// The names directly inside `dir` ("" for the root), in order.
    pub fn list(&self, dir: &str) -> Vec<String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out = Vec::new();
        let mut from: Bound<String> = Bound::Included(prefix.clone());
        while let Some((k, _)) = self.entries.range((from, Bound::Unbounded)).next() {
            let Some(rest) = k.strip_prefix(prefix.as_str()) else {
                break;
            };
            match rest.find('/') {
                None => {
                    out.push(rest.to_string());
                    from = Bound::Excluded(k.clone());
                }
                // Inside a child directory: skip past its whole subtree (`/` + 1 is `0`).
                Some(i) => from = Bound::Included(format!("{prefix}{}0", &rest[..i])),
            }
        }
        out
    }

    /// The entry at `key` as stored (no symlink followed).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Resolves `path` inside the context: every symlink on the way is followed as if the
    /// context were the root (`..` stops there), the last one too when `follow_last`.
    /// Returns the resolved key ("" for the root), or `None` when something is missing.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<Option<String>, BuildError> {
        let mut pending: Vec<String> = estiba_volume::path_components(path);
        pending.reverse();
        let mut resolved: Vec<String> = Vec::new();
        let mut followed = 0;
        while let Some(c) = pending.pop() {
            if c == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(c);
            let key = resolved.join("/");
            let last = pending.is_empty();
            match self.entries.get(&key).map(|e| &e.kind) {
                None if last => return Ok(None),
                None | Some(Kind::File { .. }) if !last => return Ok(None),
                Some(Kind::Symlink(target)) if !last || follow_last => {
                    followed += 1;
                    if followed > MAX_SYMLINKS {
                        return Err(BuildError::Step(format!(
                            "{path}: too many levels of symbolic links"
                        )));
                    }
                    resolved.pop();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    let mut more = estiba_volume::path_components(target);
                    more.reverse();
                    pending.extend(more);
                }
                _ => {}
            }
        }
        Ok(Some(resolved.join("/")))
    }

    /// The content of the regular file at `path` (symlinks followed inside the context);
    /// `None` when there is none. Larger than `max` bytes is an error.
    pub fn read_file(&self, path: &str, max: usize) -> Result<Option<Vec<u8>>, BuildError> {
        let Some(key) = self.resolve(path, true)? else {
            return Ok(None);
        };
        let Some(Entry {
            kind: Kind::File { data, .. },
            ..
        }) = self.entries.get(&key)
        else {
            return Ok(None);
        };
        if data.len() > max as u64 {
            return Err(BuildError::Invalid(format!("{path} is too large")));
        }
        let mut out = Vec::new();
        self.open(data)
            .read_to_end(&mut out)
            .map_err(|e| BuildError::Context(format!("read {path}: {e}")))?;
        Ok(Some(out))
    }

    /// A reader of a file's content.
    pub fn open<'s>(&'s self, data: &'s DataRef) -> Box<dyn Read + 's> {
        match &data.0 {
            Data::Memory(v) => Box::new(&v[..]),
            Data::Mapped(m) => Box::new(&m.map[..]),
            Data::Spool { file, offset, len } => Box::new(SpoolReader {
                file,
                pos: *offset,
                end: offset + len,
            }),
        }
    }

    /// The context as a directory on disk (written on the first call, under `dir`, which
    /// is removed with it when the build ends).
    pub(crate) fn materialise(
        &self,
        dir: impl FnOnce() -> Result<crate::TempDir, BuildError>,
    ) -> Result<std::path::PathBuf, BuildError> {
        let mut slot = self
            .materialised
            .lock()
            .map_err(|_| BuildError::Internal("context lock poisoned".into()))?;
        if let Some(d) = slot.as_ref() {
            return Ok(d.0.clone());
        }
        let d = dir()?;
        self.write_out(&d.0)?;
        let path = d.0.clone();
        *slot = Some(d);
        Ok(path)
    }

    fn write_out(&self, root: &Path) -> Result<(), BuildError> {
        use std::os::unix::fs::PermissionsExt;
        let err = |p: &str, e: io::Error| BuildError::Context(format!("unpack {p}: {e}"));
        let mut dirs = Vec::new();
        for (key, e) in &self.entries {
            let path = root.join(key);
            match &e.kind {
                Kind::Dir => {
                    std::fs::create_dir(&path).map_err(|x| err(key, x))?;
                    dirs.push((path, e.mode));
                }
                Kind::Symlink(t) => {
                    std::os::unix::fs::symlink(t, &path).map_err(|x| err(key, x))?
                }
                Kind::File { data, .. } => {
                    let mut f = File::create(&path).map_err(|x| err(key, x))?;
                    io::copy(&mut self.open(data), &mut f).map_err(|x| err(key, x))?;
                    f.set_permissions(std::fs::Permissions::from_mode(e.mode))
                        .map_err(|x| err(key, x))?;
                    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.mtime);
                    f.set_modified(t).map_err(|x| err(key, x))?;
                }
            }
        }
        // Modes last: a read-only directory still took its files.
        for (path, mode) in dirs.into_iter().rev() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|x| err(&path.display().to_string(), x))?;
        }
        Ok(())
    }

    fn empty() -> Context {
        Context {
            entries: BTreeMap::new(),
            materialised: Mutex::new(None),
        }
    }

    /// A context of the given files only (heredoc bodies, downloads), all under `dir`, each
    /// read to its end (in memory within the budget, then spooled in `spool_dir`).
    pub fn of_files(
        dir: &str,
        spool_dir: &Path,
        files: Vec<ExtraFile<'_>>,
    ) -> Result<Context, BuildError> {
        let mut ctx = Context::empty();
        let mut store = Store::new(spool_dir, MAX_MEMORY_BYTES, MAX_MAPPED_BYTES);
        for mut f in files {
            let kind = store.take_all(&mut f.content)?;
            let key = format!("{dir}/{}", f.name);
            let Some(key) = clean_key(Path::new(&key)).filter(|k| k.matches('/').count() == 1)
            else {
                return Err(BuildError::Step(format!("invalid source name {}", f.name)));
            };
            let (mode, mtime) = (f.mode, f.mtime);
            ctx.insert(key, Entry { kind, mode, mtime })?;
        }
        Ok(ctx)
    }
}

/// One file of [`Context::of_files`].
pub struct ExtraFile<'r> {
    pub name: String,
    pub content: Box<dyn Read + 'r>,
    pub mode: u32,
    pub mtime: u64,
}

fn link_name(entry: &tar::Entry<'_, impl Read>) -> Result<String, BuildError> {
    let target = entry
        .link_name()
        .map_err(ctx_err)?
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_default();
    if target.len() > MAX_PATH_BYTES {
        return Err(BuildError::Context(format!(
            "invalid build context: a link target is longer than {MAX_PATH_BYTES} bytes"
        )));
    }
    Ok(target)
}

/// A window of the spool file.
struct SpoolReader<'f> {
    file: &'f File,
    pos: u64,
    end: u64,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "spool truncated",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
