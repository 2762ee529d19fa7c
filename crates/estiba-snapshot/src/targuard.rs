//! A reader that follows a tar stream's block layout and refuses oversized extension headers.
//!
//! The tar crate reads PAX (`x`, `g`) and GNU long-name (`L`, `K`) entries whole into memory,
//! however large their header says they are. This wrapper sees every byte on its way to the tar
//! crate, recognises the header blocks, and fails the read before such an entry can grow past
//! [`MAX_EXTENSION_BYTES`].

use std::io::{self, Read};

/// Largest PAX or GNU long-name extension accepted (names are capped at 4 KiB later anyway).
pub const MAX_EXTENSION_BYTES: u64 = 1 << 20;

const BLOCK: u64 = 512;

pub(crate) struct HeaderGuard<R> {
    inner: R,
    /// Bytes passed through so far.
    pos: u64,
    /// Offset of the next header block.
    next: u64,
    block: [u8; 512],
    fill: usize,
    /// Collecting a PAX body: (bytes still expected, bytes so far).
    pax: Option<(u64, Vec<u8>)>,
    /// A PAX `size` record waiting for the entry it describes.
    pending_size: Option<u64>,
    /// GNU sparse extension blocks follow; then this much data.
    sparse_data: Option<u64>,
}

fn round_up(n: u64) -> io::Result<u64> {
    n.checked_add(BLOCK - 1)
        .map(|v| v & !(BLOCK - 1))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "tar entry size overflows"))
}

/// A tar numeric field: octal text, or GNU base-256 when the top bit is set.
fn numeric(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| *b != 0 && *b != b' ')
        .collect();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&text).ok()?, 8).ok()
}

/// The value of the `size` record in a PAX body, if any.
fn pax_size(body: &[u8]) -> Option<u64> {
    let mut rest = body;
    let mut found = None;
    while !rest.is_empty() {
        let space = rest.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        if len <= space || len > rest.len() {
            return found;
        }
        let record = &rest[space + 1..len];
        if let Some(value) = record.strip_prefix(b"size=") {
            let value = value.strip_suffix(b"\n").unwrap_or(value);
            found = std::str::from_utf8(value).ok()?.parse().ok();
        }
        rest = &rest[len..];
    }
    found
}

impl<R: Read> HeaderGuard<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            pos: 0,
            next: 0,
            block: [0; 512],
            fill: 0,
            pax: None,
            pending_size: None,
            sparse_data: None,
        }
    }

    fn observe(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.pos < self.next {
                let n = usize::try_from(self.next - self.pos)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                if let Some((left, body)) = &mut self.pax {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(n);
                    body.extend_from_slice(&bytes[..take]);
                    *left -= take as u64;
                    if *left == 0 {
                        self.pending_size = pax_size(body);
                        self.pax = None;
                    }
                }
                self.pos += n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (512 - self.fill).min(bytes.len());
            self.block[self.fill..self.fill + n].copy_from_slice(&bytes[..n]);
            self.fill += n;
            self.pos += n as u64;
            bytes = &bytes[n..];
            if self.fill == 512 {
                self.fill = 0;
                self.on_block()?;
            }
        }
        Ok(())
    }

    fn on_block(&mut self) -> io::Result<()> {
        let here = self.pos;
        if let Some(data) = self.sparse_data {
            // A GNU sparse extension block: more follow while its "isextended" byte is set.
            if self.block[504] == 0 {
                self.sparse_data = None;
                self.next = here + round_up(data)?;
            } else {
                self.next = here;
            }
            return Ok(());
        }
        if self.block.iter().all(|b| *b == 0) {
            self.next = here;
            return Ok(());
        }
        let kind = self.block[156];
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "tar header has a bad size field",
            )
        };
        let size = numeric(&self.block[124..136]).ok_or_else(bad)?;
        if matches!(kind, b'x' | b'g' | b'L' | b'K') {
            if size > MAX_EXTENSION_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "tar extension header of {size} bytes is larger than {MAX_EXTENSION_BYTES}"
                    ),
                ));
            }
            if kind == b'x' {
                self.pax = (size > 0).then(|| (size, Vec::new()));
                self.pending_size = None;
            }
            self.next = here + round_up(size)?;
            return Ok(());
        }
        let data = self.pending_size.take().unwrap_or(size);
        if kind == b'S' && self.block[482] != 0 {
            self.sparse_data = Some(data);
            self.next = here;
        } else {
            self.next = here + round_up(data)?;
        }
        Ok(())
    }
}

impl<R: Read> Read for HeaderGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"00000000012\0", Some(10)),
            (b"  777 \0\0\0\0\0\0", Some(0o777)),
            (b"\0\0\0\0\0\0\0\0\0\0\0\0", Some(0)),
            (&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], Some(256)),
            (b"0000000009x\0", None),
        ];
        for (field, want) in cases {
            assert_eq!(numeric(field), *want, "{field:?}");
        }
    }

    #[test]
    fn pax_size_records() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"12 size=100\n", Some(100)),
            (b"16 path=a/b/c/d\n12 size=200\n", Some(200)),
            (b"16 path=a/b/c/d\n", None),
            (b"garbage", None),
        ];
        for (body, want) in cases {
            assert_eq!(pax_size(body), *want, "{}", String::from_utf8_lossy(body));
        }
    }
}
