//! Edits of a step's layer tar before it is committed: entries dropped (the mount points a
//! `RUN --mount` made, which are no content of the image) and mtimes clamped
//! (SOURCE_DATE_EPOCH, atime and ctime cleared). Headers are edited in place and PAX and GNU
//! long-name records pass through with their entry, so nothing else about an entry changes.

use std::collections::BTreeSet;
use std::io::{self, Read, Seek, Write};

/// Largest PAX or long-name record carried over.
const MAX_META_BYTES: u64 = 1 << 20;

/// `/a/./b/../c/` to `/a/c` (lexical, never above `/`): the builder's one path cleaner.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// The header positions of the entries that only exist because of the mounts at `targets`
/// (absolute paths): anything at or under a target, and any directory on the way to a
/// target that holds nothing else of the layer.
pub fn hidden<R: Read + Seek>(layer: &mut R, targets: &[String]) -> io::Result<BTreeSet<u64>> {
    let mut drop = BTreeSet::new();
    if targets.is_empty() {
        return Ok(drop);
    }
    layer.rewind()?;
    let mut archive = tar::Archive::new(&mut *layer);
    let mut entries: Vec<(u64, String)> = Vec::new();
    for e in archive.entries_with_seek()? {
        let e = e?;
        let path = clean(&format!("/{}", e.path()?.to_string_lossy()));
        entries.push((e.raw_header_position(), path));
    }
    let under = |p: &str, dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
    let mut kept: Vec<&str> = Vec::new();
    for (pos, path) in &entries {
        if targets.iter().any(|t| under(path, t)) {
            drop.insert(*pos);
        } else if !targets.iter().any(|t| under(t, path)) {
            kept.push(path);
        }
    }
    // An ancestor of a target stays only if something kept lies under it.
    for (pos, path) in &entries {
        let ancestor = targets.iter().any(|t| under(t, path) && t != path);
        if ancestor && !kept.iter().any(|k| k.starts_with(&format!("{path}/"))) {
            drop.insert(*pos);
        }
    }
    layer.rewind()?;
    Ok(drop)
}

/// Copies the tar `input` to `out` without the entries whose header sits at a position in
/// `drop`, and with every mtime later than `epoch` set to it.
pub fn rewrite(
    input: &mut dyn Read,
    out: &mut dyn Write,
    epoch: Option<u64>,
    drop: &BTreeSet<u64>,
) -> io::Result<()> {
    let mut block = [0u8; 512];
    let mut pos = 0u64;
    // PAX and long-name records waiting for the entry they belong to.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        if !read_block(input, &mut block)? {
            // A tar that ends without its zero blocks: end it properly.
            return out.write_all(&[0u8; 1024]);
        }
        let at = pos;
        pos += 512;
        if block.iter().all(|&b| b == 0) {
            out.write_all(&[0u8; 1024])?;
            // Whatever follows the end marker is padding.
            io::copy(input, &mut io::sink())?;
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(&block);
        let size = header.entry_size()?;
        let padded = size.div_ceil(512) * 512;
        pos += padded;
        let meta = matches!(
            header.entry_type(),
            tar::EntryType::XHeader | tar::EntryType::GNULongName | tar::EntryType::GNULongLink
        );
        if meta {
            if padded > MAX_META_BYTES {
                return Err(io::Error::other("layer tar has an oversized header record"));
            }
            pending.extend_from_slice(&block);
            copy_exact(input, &mut pending, padded)?;
            continue;
        }
        if drop.contains(&at) {
            pending.clear();
            copy_exact(input, &mut io::sink(), padded)?;
            continue;
        }
        let mut edited = header.clone();
        if let Some(epoch) = epoch {
            if edited.mtime()? > epoch {
                edited.set_mtime(epoch);
            }
            if let Some(gnu) = edited.as_gnu_mut() {
                gnu.set_atime(0);
                gnu.set_ctime(0);
            }
            edited.set_cksum();
        }
        out.write_all(&pending)?;
        pending.clear();
        out.write_all(edited.as_bytes())?;
        copy_exact(input, out, padded)?;
    }
}

fn copy_exact(input: &mut dyn Read, out: &mut dyn Write, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut input.take(n), out)?;
    if copied != n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "layer tar ends inside an entry",
        ));
    }
    Ok(())
}

/// Reads one whole block; false at a clean end of input.
fn read_block(input: &mut dyn Read, block: &mut [u8; 512]) -> io::Result<bool> {
    let mut got = 0;
    while got < block.len() {
        match input.read(&mut block[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "layer tar ends inside a header",
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn clean_is_lexical_and_stays_under_the_root() {
        assert_eq!(clean("/a/./b/../c/"), "/a/c");
        assert_eq!(clean("/"), "/");
        assert_eq!(clean("../../etc"), "/etc");
        assert_eq!(clean("a//b"), "/a/b");
    }

    fn tar_of(entries: &[(&str, u64)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, mtime) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_mtime(*mtime);
            if name.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, name, io::empty()).unwrap();
            } else {
                h.set_size(3);
                b.append_data(&mut h, name, &b"abc"[..]).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    fn listing(tar: &[u8]) -> Vec<(String, u64)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let p = e.path().unwrap().display().to_string();
                (p, e.header().mtime().unwrap())
            })
            .collect()
    }

    #[test]
    fn mtimes_are_clamped_and_nothing_else_changes() {
        let long = format!("d/{}", "x".repeat(150));
        let input = tar_of(&[("a", 50), ("b", 5000), (long.as_str(), 9000)]);
        let mut out = Vec::new();
        rewrite(&mut &input[..], &mut out, Some(1000), &BTreeSet::new()).unwrap();
        assert_eq!(out.len(), input.len());
        assert_eq!(
            listing(&out),
            vec![("a".into(), 50), ("b".into(), 1000), (long, 1000)]
        );
        let mut same = Vec::new();
        rewrite(&mut &input[..], &mut same, None, &BTreeSet::new()).unwrap();
        assert_eq!(same, input);
    }

    #[test]
    fn mount_points_are_hidden() {
        let long_target = format!("/m/{}", "y".repeat(120));
        let input = tar_of(&[
            ("run/", 1),
            ("run/secrets/", 1),
            ("run/secrets/tok", 1),
            ("tmp/", 1),
            ("tmp/kept", 1),
            ("tmp/cache/", 1),
            ("m/", 1),
            (&format!("{}/", long_target.trim_start_matches('/')), 1),
            ("out", 1),
        ]);
        let targets = vec![
            "/run/secrets/tok".to_string(),
            "/tmp/cache".to_string(),
            long_target,
        ];
        let mut cur = Cursor::new(input);
        let drop = hidden(&mut cur, &targets).unwrap();
        let mut out = Vec::new();
        rewrite(&mut cur, &mut out, None, &drop).unwrap();
        let names: Vec<String> = listing(&out).into_iter().map(|(p, _)| p).collect();
        assert_eq!(names, vec!["tmp/", "tmp/kept", "out"]);
    }

    #[test]
    fn a_truncated_tar_is_an_error() {
        let input = tar_of(&[("a", 50)]);
        let r = rewrite(
            &mut &input[..700],
            &mut Vec::new(),
            Some(1),
            &BTreeSet::new(),
        );
        assert!(r.is_err());
        assert_eq!(clean("/a/./b/../c/"), "/a/c");
    }
}
