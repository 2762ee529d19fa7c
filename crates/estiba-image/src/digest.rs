//! Content digests ("sha256:<64 hex>"), hashing readers and writers, and layer chain IDs.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A digest that is not "sha256:" followed by 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {0:?}: want sha256:<64 lowercase hex digits>")]
pub struct DigestError(pub String);

/// A validated sha256 digest, kept in its canonical text form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

const PREFIX: &str = "sha256:";

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Digest {
    /// Parses "sha256:<hex>".
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        match s.strip_prefix(PREFIX) {
            Some(hex) if is_hex64(hex) => Ok(Digest(s.to_string())),
            _ => Err(DigestError(truncate(s))),
        }
    }

    /// Builds a digest from its 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        if is_hex64(hex) {
            Ok(Digest(format!("{PREFIX}{hex}")))
        } else {
            Err(DigestError(truncate(hex)))
        }
    }

    /// The digest of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("{PREFIX}{}", hex::encode(h.finalize())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// The 12-digit short form Docker prints.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

/// A writer that hashes and counts everything passed through to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written_bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written_bytes: 0,
        }
    }

    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer, the digest and the byte count of everything written.
    pub fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest::from_hasher(self.hasher),
            self.written_bytes,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written_bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts everything read from `inner`.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    read_bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            read_bytes: 0,
        }
    }

    pub fn read_bytes(&self) -> u64 {
        self.read_bytes
    }

    /// Reads `inner` to its end (so trailing padding is hashed too), then returns the digest
    /// and the byte count.
    pub fn finish_draining(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest::from_hasher(self.hasher), self.read_bytes))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read_bytes += n as u64;
        Ok(n)
    }
}

/// Chain IDs for layers with these diff IDs, bottom first:
/// chainID(0) = diffID(0); chainID(n) = sha256(chainID(n-1) + " " + diffID(n)).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(parent) => Digest::of_bytes(format!("{parent} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_accepts_only_canonical_sha256() {
        let cases: &[(&str, bool)] = &[
            (EMPTY, true),
            (
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                false,
            ),
            ("sha256:e3b0", false),
            (
                "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                false,
            ),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                false,
            ),
            (
                "sha256:../../../../etc/passwd0000000000000000000000000000000000000000",
                false,
            ),
            ("", false),
        ];
        for (input, ok) in cases {
            assert_eq!(Digest::parse(input).is_ok(), *ok, "{input}");
        }
    }

    #[test]
    fn hashing_reader_and_writer_agree_with_of_bytes() {
        let data = b"hello world";
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(data).unwrap();
        let (buf, d, n) = w.finish();
        assert_eq!(buf, data);
        assert_eq!(n, 11);
        assert_eq!(d, Digest::of_bytes(data));
        let (d2, n2) = HashingReader::new(&data[..]).finish_draining().unwrap();
        assert_eq!((d2, n2), (d, 11));
        assert_eq!(Digest::of_bytes(b"").as_str(), EMPTY);
    }

    #[test]
    fn chain_ids_follow_the_oci_formula() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::of_bytes(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn serde_round_trip_validates() {
        let d: Digest = serde_json::from_str(&format!("\"{EMPTY}\"")).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{EMPTY}\""));
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }
}
