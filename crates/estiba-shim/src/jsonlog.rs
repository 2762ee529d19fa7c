//! The container's log in Docker's json-file format, split into lines and rotated like Docker.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use estiba_shim::timefmt::rfc3339_nanos_trimmed;

/// A line longer than this is written as partial records of this size (Docker's copier buffer).
pub(crate) const MAX_RECORD_BYTES: usize = 16 * 1024;

/// Which of the container's output streams a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// The json-file log: pending partial lines per stream, the live file and its rotation policy.
pub(crate) struct JsonLog {
    path: PathBuf,
    file: File,
    size_bytes: u64,
    max_size_bytes: Option<u64>,
    max_files: u32,
    pending: [Vec<u8>; 2],
    record: Vec<u8>,
}

impl JsonLog {
    pub(crate) fn open(
        path: &Path,
        max_size_bytes: Option<u64>,
        max_files: Option<u32>,
    ) -> std::io::Result<JsonLog> {
        let file = open_log(path, false)?;
        let size_bytes = file.metadata()?.len();
        Ok(JsonLog {
            path: path.to_path_buf(),
            file,
            size_bytes,
            max_size_bytes,
            max_files: max_files.unwrap_or(1),
            pending: [Vec::new(), Vec::new()],
            record: Vec::with_capacity(512),
        })
    }

    /// Logs `data` read from `stream` at `now`: every complete line becomes one record; a rest
    /// longer than [`MAX_RECORD_BYTES`] is written as partial records; a shorter rest waits.
    pub(crate) fn write(
        &mut self,
        stream: Stream,
        data: &[u8],
        now: SystemTime,
    ) -> std::io::Result<()> {
        let mut pending = std::mem::take(&mut self.pending[stream.index()]);
        pending.extend_from_slice(data);
        let mut start = 0;
        let mut result = Ok(());
        while start < pending.len() {
            let rest = &pending[start..];
            let end = match rest.iter().position(|&b| b == b'\n') {
                Some(i) if i < MAX_RECORD_BYTES => i + 1,
                _ if rest.len() >= MAX_RECORD_BYTES => MAX_RECORD_BYTES,
                _ => break,
            };
            if let Err(e) = self.write_record(stream, &rest[..end], now) {
                result = Err(e);
            }
            start += end;
        }
        pending.drain(..start);
        self.pending[stream.index()] = pending;
        result
    }

    /// Writes what is left of `stream` (its end of file: a last line without a newline).
    pub(crate) fn finish(&mut self, stream: Stream, now: SystemTime) -> std::io::Result<()> {
        let rest = std::mem::take(&mut self.pending[stream.index()]);
        if rest.is_empty() {
            return Ok(());
        }
        self.write_record(stream, &rest, now)
    }

    fn write_record(
        &mut self,
        stream: Stream,
        line: &[u8],
        now: SystemTime,
    ) -> std::io::Result<()> {
        if let Some(max) = self.max_size_bytes {
            if self.size_bytes >= max {
                self.rotate()?;
            }
        }
        self.record.clear();
        encode_record(
            &mut self.record,
            line,
            stream.name(),
            &rfc3339_nanos_trimmed(now),
        );
        self.file.write_all(&self.record)?;
        self.size_bytes += self.record.len() as u64;
        Ok(())
    }

    /// Docker's rotation: FILE.(n-2) → FILE.(n-1), ..., FILE → FILE.1, and a new FILE; with one
    /// file, FILE is truncated.
    fn rotate(&mut self) -> std::io::Result<()> {
        if self.max_files > 1 {
            let numbered = |i: u32| {
                let mut p = self.path.clone().into_os_string();
                p.push(format!(".{i}"));
                PathBuf::from(p)
            };
            match std::fs::remove_file(numbered(self.max_files - 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            for i in (2..self.max_files).rev() {
                match std::fs::rename(numbered(i - 1), numbered(i)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = open_log(&self.path, true)?;
        self.size_bytes = 0;
        Ok(())
    }
}

fn open_log(path: &Path, truncate: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).mode(0o640);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    options.open(path)
}

/// One json-file record, newline included: `{"log":"..","stream":"..","time":".."}`, the log
/// text escaped as Docker escapes it (`<`, `>`, `&` and control bytes as `\u00XX`, invalid UTF-8 as
/// U+FFFD, U+2028/U+2029 escaped).
pub(crate) fn encode_record(out: &mut Vec<u8>, log: &[u8], stream: &str, time: &str) {
    out.extend_from_slice(b"{");
    if !log.is_empty() {
        out.extend_from_slice(b"\"log\":");
        escape_json(out, log);
        out.push(b',');
    }
    out.extend_from_slice(b"\"stream\":");
    escape_json(out, stream.as_bytes());
    out.extend_from_slice(b",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

fn escape_json(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        // Go's decoder yields one U+FFFD per invalid byte.
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn records_escape_like_docker() {
        let cases: &[(&[u8], &str)] = &[
            (b"hi\n", r#"{"log":"hi\n","stream":"stdout","time":"T"}"#),
            (
                b"a\tb<&>\n",
                r#"{"log":"a\u0009b\u003c\u0026\u003e\n","stream":"stdout","time":"T"}"#,
            ),
            (
                b"q\"\\\r\x1b",
                r#"{"log":"q\"\\\r\u001b","stream":"stdout","time":"T"}"#,
            ),
            (
                b"\xff\xfeok\xc3\xa9",
                r#"{"log":"\ufffd\ufffdok\u00e9","stream":"stdout","time":"T"}"#,
            ),
            (
                "\u{2028}x".as_bytes(),
                r#"{"log":"\u2028x","stream":"stdout","time":"T"}"#,
            ),
            (b"", r#"{"stream":"stdout","time":"T"}"#),
        ];
        for &(log, want) in cases {
            let mut out = Vec::new();
            encode_record(&mut out, log, "stdout", "T");
            // é is written as raw UTF-8 by Docker; the expectation above spells it for readability.
            let want = want.replace("\\u00e9", "é");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{want}\n"),
                "{log:?}"
            );
        }
    }

    fn records(path: &Path) -> Vec<(String, String)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["log"].as_str().unwrap_or("").to_owned(),
                    v["stream"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn splits_lines_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut log = JsonLog::open(&path, None, None).unwrap();
        let t = UNIX_EPOCH + Duration::new(1_795_328_646, 943_004_209);
        log.write(Stream::Stdout, b"one\ntw", t).unwrap();
        log.write(Stream::Stderr, b"err\n", t).unwrap();
        log.write(Stream::Stdout, b"o\nthree", t).unwrap();
        let long = vec![b'x'; MAX_RECORD_BYTES + 10];
        log.write(Stream::Stderr, &long, t).unwrap();
        log.write(Stream::Stderr, b"\n", t).unwrap();
        log.finish(Stream::Stdout, t).unwrap();
        log.finish(Stream::Stderr, t).unwrap();
        let x = |n| "x".repeat(n);
        let want = vec![
            ("one\n".to_owned(), "stdout".to_owned()),
            ("err\n".into(), "stderr".into()),
            ("two\n".into(), "stdout".into()),
            (x(MAX_RECORD_BYTES), "stderr".into()),
            (format!("{}\n", x(10)), "stderr".into()),
            ("three".into(), "stdout".into()),
        ];
        assert_eq!(records(&path), want);
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.starts_with(
            r#"{"log":"one\n","stream":"stdout","time":"2026-11-22T06:24:06.943004209Z"}"#
        ));
    }

    #[test]
    fn rotates_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        // Each record is 72 bytes; max size 100 → two records per file.
        let mut log = JsonLog::open(&path, Some(100), Some(3)).unwrap();
        let t = UNIX_EPOCH + Duration::new(1_795_328_646, 1);
        for i in 0..7 {
            log.write(Stream::Stdout, format!("{i}\n").as_bytes(), t)
                .unwrap();
        }
        let logs = |p: &Path| records(p).into_iter().map(|(l, _)| l).collect::<Vec<_>>();
        assert_eq!(logs(&path), ["6\n"]);
        assert_eq!(logs(&dir.path().join("c-json.log.1")), ["4\n", "5\n"]);
        assert_eq!(logs(&dir.path().join("c-json.log.2")), ["2\n", "3\n"]);
        assert!(!dir.path().join("c-json.log.3").exists());

        let single = dir.path().join("s-json.log");
        let mut log = JsonLog::open(&single, Some(100), Some(1)).unwrap();
        for i in 0..5 {
            log.write(Stream::Stdout, format!("{i}\n").as_bytes(), t)
                .unwrap();
        }
        assert_eq!(logs(&single), ["4\n"]);
        assert!(!dir.path().join("s-json.log.1").exists());
    }
}
