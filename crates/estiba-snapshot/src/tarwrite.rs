//! Writing a layer tar from files on disk: the output side of `diff`.
//!
//! Entries carry owner, mode, mtime and xattrs (as PAX `SCHILY.xattr.*`, the way Docker writes
//! them); a regular file met again through another hardlink becomes a hardlink entry.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, Stat};

use crate::apply::{OPAQUE_MARKER, OVERLAY_XATTR_PREFIX, WHITEOUT_PREFIX};
use crate::fsutil::{self, os, XattrTarget};
use crate::{LayerStats, SnapshotError};

pub(crate) struct LayerWriter<'w> {
    builder: tar::Builder<&'w mut dyn Write>,
    /// (dev, ino) of hardlinked regular files already written, with the name they went out under.
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: LayerStats,
    /// For error messages: the directory being diffed.
    base: &'w Path,
}

fn io_err(op: &'static str, base: &Path, rel: &[u8]) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = base.join(os(rel));
    move |source| SnapshotError::Io { op, path, source }
}

fn write_err(source: io::Error) -> SnapshotError {
    SnapshotError::Io {
        op: "write layer tar",
        path: "-".into(),
        source,
    }
}

/// One PAX record: `<len> <key>=<value>\n`, where len counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

impl<'w> LayerWriter<'w> {
    pub(crate) fn new(out: &'w mut dyn Write, base: &'w Path) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Complete);
        Self {
            builder,
            links: HashMap::new(),
            stats: LayerStats::default(),
            base,
        }
    }

    /// Adds the inode `name` inside `dir` (with stat `st`) as entry `rel`.
    pub(crate) fn add(
        &mut self,
        rel: &[u8],
        dir: BorrowedFd<'_>,
        name: &[u8],
        st: &Stat,
    ) -> Result<(), SnapshotError> {
        let ft = fsutil::file_type(st);
        let mut header = tar::Header::new_gnu();
        header.set_uid(u64::from(st.st_uid));
        header.set_gid(u64::from(st.st_gid));
        header.set_mode(fsutil::perm_bits(st));
        header.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        header.set_size(0);
        let key = (st.st_dev, st.st_ino);

        if ft == FileType::RegularFile && st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key).cloned() {
                header.set_entry_type(tar::EntryType::Link);
                return self
                    .builder
                    .append_link(&mut header, os(rel), os(&first))
                    .map_err(write_err);
            }
        }

        let file = if ft == FileType::RegularFile || ft == FileType::Directory {
            let flags = if ft == FileType::Directory {
                fsutil::dir_flags()
            } else {
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC
            };
            Some(
                rustix::fs::openat(dir, os(name), flags, Mode::empty())
                    .map_err(|e| io_err("open", self.base, rel)(e.into()))?,
            )
        } else {
            None
        };
        let xattrs = match &file {
            Some(fd) => XattrTarget::Fd(fd.as_fd()).all(),
            None => XattrTarget::leaf(dir, name).and_then(|t| t.all()),
        }
        .map_err(io_err("read xattrs of", self.base, rel))?;
        let mut pax = Vec::new();
        for (xname, value) in xattrs {
            if xname.starts_with(OVERLAY_XATTR_PREFIX) {
                continue;
            }
            let mut k = b"SCHILY.xattr.".to_vec();
            k.extend_from_slice(&xname);
            pax_record(&mut pax, &k, &value);
        }
        if !pax.is_empty() {
            let mut xh = tar::Header::new_ustar();
            xh.set_entry_type(tar::EntryType::XHeader);
            xh.set_mode(0o644);
            xh.set_size(pax.len() as u64);
            let _ = xh.set_path("PaxHeaders/entry");
            xh.set_cksum();
            self.builder
                .append(&xh, pax.as_slice())
                .map_err(write_err)?;
        }

        let mut path = rel.to_vec();
        match ft {
            FileType::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                path.push(b'/');
                self.builder
                    .append_data(&mut header, os(&path), io::empty())
                    .map_err(write_err)?;
            }
            FileType::RegularFile => {
                let size = u64::try_from(st.st_size).unwrap_or(0);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                let Some(fd) = file else {
                    return Ok(());
                };
                let mut counted = Exact {
                    inner: std::fs::File::from(fd).take(size),
                    left: size,
                };
                self.builder
                    .append_data(&mut header, os(&path), &mut counted)
                    .map_err(io_err("read", self.base, rel))?;
                self.stats.size_bytes += size;
                if st.st_nlink > 1 {
                    self.links.insert(key, rel.to_vec());
                }
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, os(name), Vec::new())
                    .map_err(|e| io_err("readlink", self.base, rel)(e.into()))?;
                header.set_entry_type(tar::EntryType::Symlink);
                self.builder
                    .append_link(&mut header, os(&path), os(target.as_bytes()))
                    .map_err(write_err)?;
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                header.set_entry_type(match ft {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                let rdev = st.st_rdev;
                header
                    .set_device_major(rustix::fs::major(rdev))
                    .map_err(write_err)?;
                header
                    .set_device_minor(rustix::fs::minor(rdev))
                    .map_err(write_err)?;
                self.builder
                    .append_data(&mut header, os(&path), io::empty())
                    .map_err(write_err)?;
            }
            // Sockets do not belong in a layer (Docker skips them too).
            _ => {}
        }
        Ok(())
    }

    /// Adds `.wh.<name>` in directory `parent_rel` (empty for the root).
    pub(crate) fn whiteout(
        &mut self,
        parent_rel: &[u8],
        name: &[u8],
        st: Option<&Stat>,
    ) -> Result<(), SnapshotError> {
        let mut leaf = WHITEOUT_PREFIX.to_vec();
        leaf.extend_from_slice(name);
        self.marker(parent_rel, &leaf, st)
    }

    /// Adds `.wh..wh..opq` in directory `dir_rel`.
    pub(crate) fn opaque(
        &mut self,
        dir_rel: &[u8],
        st: Option<&Stat>,
    ) -> Result<(), SnapshotError> {
        self.marker(dir_rel, OPAQUE_MARKER, st)
    }

    fn marker(
        &mut self,
        parent_rel: &[u8],
        leaf: &[u8],
        st: Option<&Stat>,
    ) -> Result<(), SnapshotError> {
        let mut path = parent_rel.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(leaf);
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(0);
        header.set_mode(0o600);
        header.set_uid(st.map(|s| u64::from(s.st_uid)).unwrap_or(0));
        header.set_gid(st.map(|s| u64::from(s.st_gid)).unwrap_or(0));
        header.set_mtime(st.and_then(|s| u64::try_from(s.st_mtime).ok()).unwrap_or(0));
        self.builder
            .append_data(&mut header, os(&path), io::empty())
            .map_err(write_err)
    }

    /// Writes the end-of-archive blocks.
    pub(crate) fn finish(mut self) -> Result<LayerStats, SnapshotError> {
        self.builder.finish().map_err(write_err)?;
        Ok(self.stats)
    }
}

/// A reader that fails if the file is shorter than its stat said (it changed under us), so the
/// tar never gets an entry whose data is shorter than its header.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while it was being added to the layer",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::pax_record;

    #[test]
    fn pax_record_lengths() {
        let cases: &[(&str, &str, &str)] = &[
            ("a", "b", "6 a=b\n"),
            (
                "SCHILY.xattr.user.foo",
                "bar",
                "29 SCHILY.xattr.user.foo=bar\n",
            ),
            ("k", "0123", "9 k=0123\n"),
            ("k", "01234", "11 k=01234\n"),
        ];
        for (key, value, want) in cases {
            let mut out = Vec::new();
            pax_record(&mut out, key.as_bytes(), value.as_bytes());
            assert_eq!(String::from_utf8_lossy(&out), *want);
            assert_eq!(
                out.len().to_string(),
                want.split(' ').next().unwrap_or_default()
            );
        }
    }
}
