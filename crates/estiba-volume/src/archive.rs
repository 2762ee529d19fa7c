//! `estiba volume export` / `import`: a volume's content as a tar that keeps owners, modes,
//! times and extended attributes (as PAX `SCHILY.xattr.*` records, GNU tar's convention).

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

/// Most entries one import may hold.
pub const MAX_IMPORT_ENTRIES: usize = 1_000_000;
/// Longest entry name one import may hold.
pub const MAX_IMPORT_ENTRY_NAME_BYTES: usize = 4096;
/// Deepest directory nesting exported.
const MAX_DEPTH: usize = 256;

/// Writes `dir`'s content (the root directory itself as `./`) to `out`.
pub(crate) fn export(dir: &Path, out: &mut dyn Write) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    append(&mut b, dir, Path::new("."), 0)?;
    b.finish()
}

fn append(
    b: &mut tar::Builder<&mut dyn Write>,
    path: &Path,
    name: &Path,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other("directory tree too deep"));
    }
    let meta = fs::symlink_metadata(path)?;
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    if let Ok(names) = xattr::list(path) {
        for n in names {
            if let Ok(Some(v)) = xattr::get(path, &n) {
                pax.push((format!("SCHILY.xattr.{}", n.to_string_lossy()), v));
            }
        }
    }
    if !pax.is_empty() {
        b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    }
    b.append_path_with_name(path, name)?;
    if meta.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(path)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            append(b, &e.path(), &name.join(e.file_name()), depth + 1)?;
        }
    }
    Ok(())
}

/// Unpacks a tar into `dir` (which should be empty), keeping owners, modes and xattrs.
/// Entries that would land outside `dir` (`..`, absolute names, through symlinks) are refused
/// by tar's `unpack_in`.
pub(crate) fn import(dir: &Path, input: &mut dyn Read) -> io::Result<()> {
    let mut a = tar::Archive::new(input);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    a.set_unpack_xattrs(true);
    a.set_overwrite(true);
    let mut dirs = Vec::new();
    for (count, entry) in a.entries()?.enumerate() {
        if count >= MAX_IMPORT_ENTRIES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more than {MAX_IMPORT_ENTRIES} entries"),
            ));
        }
        let mut entry = entry.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if entry.path_bytes().len() > MAX_IMPORT_ENTRY_NAME_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "entry name too long",
            ));
        }
        if entry.header().entry_type().is_dir() {
            // Directory modes and times last, so a read-only directory can still be filled.
            dirs.push(entry);
            continue;
        }
        if !entry.unpack_in(dir)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("entry {:?} points outside the volume", entry.path()?),
            ));
        }
    }
    unpack_dirs(dir, dirs)
}

fn unpack_dirs<R: Read>(dir: &Path, mut dirs: Vec<tar::Entry<'_, R>>) -> io::Result<()> {
    // Deepest first, so a parent's times are set after its children are.
    dirs.sort_by_key(|e| std::cmp::Reverse(e.path_bytes().len()));
    for mut d in dirs {
        d.unpack_in(dir)?;
    }
    Ok(())
}
