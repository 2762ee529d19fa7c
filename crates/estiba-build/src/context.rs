//! The build context: the request's tar stream (plain or gzip, as docker sends it) unpacked
//! into a private directory. An entry that would land outside it (`../x`, an absolute path)
//! refuses the whole context.

use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path};

use crate::BuildError;

/// Most entries in one context.
const MAX_CONTEXT_ENTRIES: u64 = 1_000_000;
/// Most bytes of file content in one context.
const MAX_CONTEXT_BYTES: u64 = 64 << 30;

/// Unpacks the context tar from `input` into `dir` (which exists and is empty).
pub fn unpack(input: &mut dyn Read, dir: &Path) -> Result<(), BuildError> {
    let mut buffered = BufReader::with_capacity(64 * 1024, input);
    let head = buffered
        .fill_buf()
        .map_err(|e| BuildError::Context(format!("read build context: {e}")))?;
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    let entries = archive
        .entries()
        .map_err(|e| BuildError::Context(format!("read build context: {e}")))?;
    let (mut count, mut bytes) = (0u64, 0u64);
    for entry in entries {
        let mut entry =
            entry.map_err(|e| BuildError::Context(format!("read build context: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| BuildError::Context(format!("read build context: {e}")))?
            .into_owned();
        if !contained(&path) {
            return Err(BuildError::Context(format!(
                "invalid build context: the path {} is outside the context",
                path.display()
            )));
        }
        count += 1;
        bytes += entry.size();
        if count > MAX_CONTEXT_ENTRIES || bytes > MAX_CONTEXT_BYTES {
            return Err(BuildError::Context("build context is too large".into()));
        }
        entry
            .unpack_in(dir)
            .map_err(|e| BuildError::Context(format!("unpack {}: {e}", path.display())))?;
    }
    Ok(())
}

/// Relative, with no `..` element.
pub fn contained(path: &Path) -> bool {
    path.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(name: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(1);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut out = Vec::new();
        out.extend_from_slice(header.as_bytes());
        let mut block = vec![0u8; 512];
        block[0] = b'x';
        out.extend_from_slice(&block);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    #[test]
    fn escaping_entries_are_refused() {
        for (name, ok) in [
            (&b"a/b"[..], true),
            (b"../evil", false),
            (b"/abs", false),
            (b"a/../../x", false),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let result = unpack(&mut &tar_with(name)[..], dir.path());
            assert_eq!(result.is_ok(), ok, "{}", String::from_utf8_lossy(name));
            assert!(!dir.path().parent().unwrap().join("evil").exists());
        }
    }
}
