//! The content store: immutable blobs addressed by digest under `<root>/blobs/sha256/<hex>`.
//!
//! A blob is written to a temp file under `<root>/ingest/`, hashed while written, verified
//! against the expected digest and size, fsynced and only then renamed into place (and the
//! directory fsynced), so a crash never leaves a half blob visible. Leftover temp files are
//! removed by [`ContentStore::open`].

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};

/// Copy buffer size: large reads and writes keep a load close to disk speed.
pub const COPY_BUFFER_BYTES: usize = 1 << 20;

/// What went wrong in the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading the source stream failed (e.g. a truncated upload).
    #[error("read blob data: {0}")]
    Read(#[source] io::Error),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected_bytes} bytes, got {actual_bytes}")]
    SizeMismatch {
        digest: Digest,
        expected_bytes: u64,
        actual_bytes: u64,
    },
    #[error("blob larger than the limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: u64 },
    #[error("blob {0} not found")]
    NotFound(Digest),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The result of an ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    pub digest: Digest,
    pub size_bytes: u64,
    /// False when an identical blob was already stored.
    pub created: bool,
}

/// A blob store rooted at `<data-root>/content`.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens the store, creating its directories and deleting unfinished ingests.
    pub fn open(root: &Path) -> Result<Self, ContentError> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
        if ingest.exists() {
            fs::remove_dir_all(&ingest).map_err(io_err("clean", &ingest))?;
        }
        fs::create_dir_all(&ingest).map_err(io_err("create", &ingest))?;
        Ok(ContentStore { blobs, ingest })
    }

    /// Where blob `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Streams `src` into the store. With `expected`, the data must hash to it (and have
    /// `expected_size` bytes, when given); nothing becomes visible otherwise. More than
    /// `limit_bytes` bytes is refused.
    pub fn ingest(
        &self,
        src: &mut dyn Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        limit_bytes: u64,
    ) -> Result<Ingested, ContentError> {
        if let Some(size) = expected_size {
            if size > limit_bytes {
                return Err(ContentError::TooLarge { limit_bytes });
            }
        }
        // A blob we already hold only needs verifying, not writing again.
        if let Some(d) = expected {
            if self.exists(d) {
                let mut w = HashingWriter::new(io::sink());
                copy_limited(src, &mut w, limit_bytes)?;
                let (_, actual, size) = w.finish();
                check(expected, expected_size, &actual, size)?;
                return Ok(Ingested {
                    digest: actual,
                    size_bytes: size,
                    created: false,
                });
            }
        }
        let tmp = self.ingest.join(format!("{:016x}", rand::random::<u64>()));
        let result = self.ingest_to(&tmp, src, expected, expected_size, limit_bytes);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn ingest_to(
        &self,
        tmp: &Path,
        src: &mut dyn Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        limit_bytes: u64,
    ) -> Result<Ingested, ContentError> {
        let file = File::create_new(tmp).map_err(io_err("create", tmp))?;
        let mut w = HashingWriter::new(file);
        copy_limited(src, &mut w, limit_bytes)?;
        let (file, actual, size) = w.finish();
        check(expected, expected_size, &actual, size)?;
        let dest = self.path(&actual);
        if dest.is_file() {
            drop(file);
            let _ = fs::remove_file(tmp);
            return Ok(Ingested {
                digest: actual,
                size_bytes: size,
                created: false,
            });
        }
        file.sync_all().map_err(io_err("fsync", tmp))?;
        drop(file);
        fs::rename(tmp, &dest).map_err(io_err("rename", &dest))?;
        sync_dir(&self.blobs)?;
        Ok(Ingested {
            digest: actual,
            size_bytes: size,
            created: true,
        })
    }

    /// Where a resumable download of blob `digest` lives while it is written; `tag` keeps two
    /// downloads of one blob for different purposes apart. Nothing there is visible as a blob.
    pub fn partial_path(&self, digest: &Digest, tag: &str) -> PathBuf {
        self.ingest.join(format!("partial-{}-{tag}", digest.hex()))
    }

    /// Moves a completely written download into place as blob `digest`: fsync, rename,
    /// directory fsync. The caller has verified that the file's bytes hash to `digest`.
    /// False (and the file removed) when the blob was stored already.
    pub fn commit_partial(
        &self,
        file: &File,
        path: &Path,
        digest: &Digest,
    ) -> Result<bool, ContentError> {
        let dest = self.path(digest);
        if dest.is_file() {
            let _ = fs::remove_file(path);
            return Ok(false);
        }
        file.sync_all().map_err(io_err("fsync", path))?;
        fs::rename(path, &dest).map_err(io_err("rename", &dest))?;
        sync_dir(&self.blobs)?;
        Ok(true)
    }

    /// Stores `bytes` (small metadata blobs such as configs and manifests).
    pub fn ingest_bytes(&self, bytes: &[u8]) -> Result<Ingested, ContentError> {
        let len = bytes.len() as u64;
        self.ingest(&mut &bytes[..], None, Some(len), len)
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ContentError::NotFound(digest.clone())
            } else {
                io_err("open", &path)(e)
            }
        })
    }

    /// Reads a whole blob that must not exceed `limit_bytes`.
    pub fn read_bounded(&self, digest: &Digest, limit_bytes: u64) -> Result<Vec<u8>, ContentError> {
        let path = self.path(digest);
        let file = self.open_blob(digest)?;
        let len = file.metadata().map_err(io_err("stat", &path))?.len();
        if len > limit_bytes {
            return Err(ContentError::TooLarge { limit_bytes });
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(limit_bytes.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(io_err("read", &path))?;
        if buf.len() as u64 > limit_bytes {
            return Err(ContentError::TooLarge { limit_bytes });
        }
        Ok(buf)
    }

    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        let path = self.path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(io_err("stat", &path)(e)),
        }
    }

    /// Deletes a blob; returns whether it existed.
    pub fn delete(&self, digest: &Digest) -> Result<bool, ContentError> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Every blob present (names that are not a valid digest are ignored).
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).map_err(io_err("list", &self.blobs))? {
            let entry = entry.map_err(io_err("list", &self.blobs))?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }
}

fn check(
    expected: Option<&Digest>,
    expected_size: Option<u64>,
    actual: &Digest,
    size: u64,
) -> Result<(), ContentError> {
    if let Some(e) = expected {
        if e != actual {
            return Err(ContentError::DigestMismatch {
                expected: e.clone(),
                actual: actual.clone(),
            });
        }
    }
    if let Some(s) = expected_size {
        if s != size {
            return Err(ContentError::SizeMismatch {
                digest: actual.clone(),
                expected_bytes: s,
                actual_bytes: size,
            });
        }
    }
    Ok(())
}

/// Copies `src` to `dst` with a large buffer, refusing more than `limit_bytes`.
/// Read errors are [`ContentError::Read`]; write errors are I/O errors of the store.
pub fn copy_limited(
    src: &mut dyn Read,
    dst: &mut dyn Write,
    limit_bytes: u64,
) -> Result<u64, ContentError> {
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];
    let mut total: u64 = 0;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ContentError::Read(e)),
        };
        total += n as u64;
        if total > limit_bytes {
            return Err(ContentError::TooLarge { limit_bytes });
        }
        dst.write_all(&buf[..n])
            .map_err(|source| ContentError::Io {
                op: "write",
                path: PathBuf::from("blob"),
                source,
            })?;
    }
}

fn sync_dir(dir: &Path) -> Result<(), ContentError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(&dir.path().join("content")).unwrap();
        (dir, cs)
    }

    fn ingest_files(dir: &Path) -> usize {
        fs::read_dir(dir.join("content/ingest")).unwrap().count()
    }

    #[test]
    fn ingest_verifies_and_stores_once() {
        let (dir, cs) = store();
        let data = b"layer bytes";
        let d = Digest::of_bytes(data);
        let got = cs.ingest(&mut &data[..], Some(&d), Some(11), 100).unwrap();
        assert_eq!(
            got,
            Ingested {
                digest: d.clone(),
                size_bytes: 11,
                created: true
            }
        );
        assert_eq!(fs::read(cs.path(&d)).unwrap(), data);
        let again = cs.ingest(&mut &data[..], Some(&d), None, 100).unwrap();
        assert!(!again.created);
        let again = cs.ingest(&mut &data[..], None, None, 100).unwrap();
        assert!(!again.created);
        assert_eq!(cs.list().unwrap(), vec![d.clone()]);
        assert_eq!(cs.size(&d).unwrap(), 11);
        assert_eq!(cs.read_bounded(&d, 11).unwrap(), data);
        assert!(matches!(
            cs.read_bounded(&d, 10),
            Err(ContentError::TooLarge { .. })
        ));
        assert!(cs.delete(&d).unwrap());
        assert!(!cs.delete(&d).unwrap());
        assert_eq!(ingest_files(dir.path()), 0);
    }

    #[test]
    fn bad_data_leaves_nothing_visible() {
        let (dir, cs) = store();
        let wrong = Digest::of_bytes(b"other");
        let cases: Vec<(Option<&Digest>, Option<u64>, u64, &str)> = vec![
            (Some(&wrong), None, 100, "digest"),
            (None, Some(3), 100, "size"),
            (None, None, 4, "limit"),
            (None, Some(1 << 40), 100, "declared size"),
        ];
        for (exp, size, limit, what) in cases {
            let r = cs.ingest(&mut &b"hello"[..], exp, size, limit);
            assert!(r.is_err(), "{what}");
        }
        assert!(cs.list().unwrap().is_empty());
        assert_eq!(ingest_files(dir.path()), 0);
    }

    #[test]
    fn truncated_source_is_a_read_error() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated"))
            }
        }
        let (_dir, cs) = store();
        assert!(matches!(
            cs.ingest(&mut Broken, None, None, 10),
            Err(ContentError::Read(_))
        ));
    }

    #[test]
    fn open_removes_stale_ingest_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("content");
        ContentStore::open(&root).unwrap();
        fs::write(root.join("ingest/stale"), b"half").unwrap();
        ContentStore::open(&root).unwrap();
        assert_eq!(ingest_files(dir.path()), 0);
    }
}
