//! SOURCE_DATE_EPOCH (BuildKit's convention, as a build arg or in the client's environment):
//! every layer tar is rewritten with each entry's mtime clamped to the epoch (atime and ctime
//! cleared), and the image's and history's `created` set from it. The entries are already in
//! a fixed order (the snapshot diff walks parents before children, siblings sorted; COPY sorts
//! by destination), so two builds of the same input give the same bytes and the same image ID.

use std::io::{self, Read, Write};

use crate::BuildError;

/// The build arg (and environment variable) that asks for a reproducible build.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// Largest epoch accepted (year 9999), so that `created` stays a valid RFC 3339 time.
const MAX_EPOCH: i64 = 253_402_300_799;

/// The epoch a build asked for, if any; a value that is not a non-negative integer is refused.
pub fn epoch(value: Option<&str>) -> Result<Option<i64>, BuildError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match v.parse::<i64>() {
        Ok(n) if (0..=MAX_EPOCH).contains(&n) => Ok(Some(n)),
        _ => Err(BuildError::Invalid(format!(
            "invalid SOURCE_DATE_EPOCH: {v}"
        ))),
    }
}

/// The epoch as the RFC 3339 time of `created`.
pub fn created(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Copies the tar `input` to `out` with every mtime later than `epoch` set to `epoch` and the
/// GNU atime/ctime fields cleared. Headers are edited in place (PAX and GNU long-name records
/// pass through), so nothing else about an entry changes.
pub fn clamp_tar(input: &mut dyn Read, out: &mut dyn Write, epoch: u64) -> io::Result<()> {
    let mut block = [0u8; 512];
    loop {
        if !read_block(input, &mut block)? {
            // A tar that ends without its zero blocks: end it properly.
            out.write_all(&[0u8; 1024])?;
            return Ok(());
        }
        if block.iter().all(|&b| b == 0) {
            out.write_all(&block)?;
            return io::copy(input, out).map(|_| ());
        }
        let header = tar::Header::from_byte_slice(&block);
        let size = header.entry_size()?;
        let meta = matches!(
            header.entry_type(),
            tar::EntryType::XHeader
                | tar::EntryType::XGlobalHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        );
        let mut edited = header.clone();
        if !meta {
            if edited.mtime()? > epoch {
                edited.set_mtime(epoch);
            }
            if let Some(gnu) = edited.as_gnu_mut() {
                gnu.set_atime(0);
                gnu.set_ctime(0);
            }
            edited.set_cksum();
        }
        out.write_all(edited.as_bytes())?;
        let padded = size.div_ceil(512) * 512;
        let copied = io::copy(&mut input.take(padded), out)?;
        if copied != padded {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "layer tar ends inside an entry",
            ));
        }
    }
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

    fn tar_of(entries: &[(&str, u64)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, mtime) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(3);
            h.set_mtime(*mtime);
            b.append_data(&mut h, name, &b"abc"[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn mtimes_are_clamped_and_nothing_else_changes() {
        let long = format!("d/{}", "x".repeat(150));
        let input = tar_of(&[("a", 50), ("b", 5000), (long.as_str(), 9000)]);
        let mut out = Vec::new();
        clamp_tar(&mut &input[..], &mut out, 1000).unwrap();
        assert_eq!(out.len(), input.len());
        let mut a = tar::Archive::new(&out[..]);
        let got: Vec<(String, u64, Vec<u8>)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let p = e.path().unwrap().display().to_string();
                (p, e.header().mtime().unwrap(), data)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".to_string(), 50, b"abc".to_vec()),
                ("b".to_string(), 1000, b"abc".to_vec()),
                (long, 1000, b"abc".to_vec()),
            ]
        );
    }

    #[test]
    fn epochs_are_checked() {
        assert_eq!(epoch(None).unwrap(), None);
        assert_eq!(epoch(Some("")).unwrap(), None);
        assert_eq!(epoch(Some("0")).unwrap(), Some(0));
        assert_eq!(epoch(Some("1700000000")).unwrap(), Some(1_700_000_000));
        assert!(epoch(Some("-1")).is_err());
        assert!(epoch(Some("soon")).is_err());
        assert_eq!(created(0), "1970-01-01T00:00:00Z");
        assert_eq!(created(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn a_truncated_tar_is_an_error() {
        let input = tar_of(&[("a", 50)]);
        assert!(clamp_tar(&mut &input[..700], &mut Vec::new(), 1).is_err());
    }
}
