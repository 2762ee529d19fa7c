//! `docker logs`: reads the json-file log the shim writes (rotated files included), filters and
//! frames it (Docker's stdcopy frames without a TTY, raw bytes with one), and follows it while
//! the container runs.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ContainerError;
use crate::service::ContainerService;

/// Longest log line read (the shim splits records at 16 KiB; JSON escaping can grow them).
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// How often a follower looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Most rotated files looked at.
const MAX_ROTATED_FILES: u32 = 100;

/// Which output a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// The query of `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    /// Only the last N records (`None`: all).
    pub tail: Option<usize>,
    /// Unix nanoseconds; records before are skipped.
    pub since_nano: Option<i64>,
    /// Unix nanoseconds; records after are skipped.
    pub until_nano: Option<i64>,
    pub timestamps: bool,
}

#[derive(Deserialize)]
struct Record {
    log: String,
    stream: String,
    time: String,
}

struct Entry {
    stream: LogStream,
    time: String,
    time_nano: i64,
    log: String,
}

fn parse_line(line: &[u8]) -> Option<Entry> {
    let r: Record = serde_json::from_slice(line).ok()?;
    let stream = match r.stream.as_str() {
        "stderr" => LogStream::Stderr,
        _ => LogStream::Stdout,
    };
    let time_nano = chrono::DateTime::parse_from_rfc3339(&r.time)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or(0);
    Some(Entry {
        stream,
        time: r.time,
        time_nano,
        log: r.log,
    })
}

/// Writes one record in Docker's framing.
fn write_entry(out: &mut dyn Write, e: &Entry, tty: bool, timestamps: bool) -> std::io::Result<()> {
    let mut payload = Vec::with_capacity(e.log.len() + 40);
    if timestamps {
        payload.extend_from_slice(e.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(e.log.as_bytes());
    if !tty {
        let kind = match e.stream {
            LogStream::Stdout => 1u8,
            LogStream::Stderr => 2u8,
        };
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let mut header = [kind, 0, 0, 0, 0, 0, 0, 0];
        header[4..].copy_from_slice(&len.to_be_bytes());
        out.write_all(&header)?;
    }
    out.write_all(&payload)
}

/// The log files oldest first: `FILE.N` … `FILE.1`, then `FILE`.
fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for n in (1..=MAX_ROTATED_FILES).rev() {
        let p = PathBuf::from(format!("{}.{n}", path.display()));
        if p.exists() {
            files.push(p);
        }
    }
    files.push(path.to_path_buf());
    files
}

/// Reads one line of at most [`MAX_LINE_BYTES`]; `Ok(false)` at EOF with nothing pending.
fn read_line<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let n = std::io::Read::take(reader, MAX_LINE_BYTES as u64).read_until(b'\n', buf)?;
    Ok(n > 0)
}

impl ContainerService {
    /// Streams a container's log to `out` (blocking; ends when the log is read and, with
    /// `follow`, when the container has stopped, or when `out` fails).
    pub fn logs(
        &self,
        name: &str,
        options: &LogOptions,
        out: &mut dyn Write,
    ) -> Result<(), ContainerError> {
        let c = self.get(name)?;
        let record = c.snapshot();
        let tty = record.config.tty;
        let path = self.log_path(&record.id);
        let wanted = |e: &Entry| {
            (match e.stream {
                LogStream::Stdout => options.stdout,
                LogStream::Stderr => options.stderr,
            }) && options.since_nano.is_none_or(|s| e.time_nano >= s)
        };
        let past_until = |e: &Entry| options.until_nano.is_some_and(|u| e.time_nano > u);
        let io_done = |_e: std::io::Error| ();
        let mut tail: VecDeque<Entry> = VecDeque::new();
        let mut line = Vec::new();
        let mut current: Option<(BufReader<File>, u64)> = None;
        let files = log_files(&path);
        let last = files.len().saturating_sub(1);
        for (i, file) in files.into_iter().enumerate() {
            let Ok(f) = File::open(&file) else { continue };
            let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
            let mut reader = BufReader::new(f);
            loop {
                line.clear();
                match read_line(&mut reader, &mut line) {
                    Ok(true) if line.ends_with(b"\n") => {}
                    _ => break,
                }
                let Some(entry) = parse_line(&line) else {
                    continue;
                };
                if past_until(&entry) {
                    return Ok(());
                }
                if !wanted(&entry) {
                    continue;
                }
                match options.tail {
                    Some(0) => {}
                    Some(n) => {
                        if tail.len() == n {
                            tail.pop_front();
                        }
                        tail.push_back(entry);
                    }
                    None => {
                        if write_entry(out, &entry, tty, options.timestamps)
                            .map_err(io_done)
                            .is_err()
                        {
                            return Ok(());
                        }
                    }
                }
            }
            if i == last {
                // Back to the start of an unfinished line, so following reads it whole.
                let pos = reader.stream_position().unwrap_or(0) - line.len() as u64;
                let _ = reader.seek(SeekFrom::Start(pos));
                current = Some((reader, ino));
            }
        }
        for entry in tail.drain(..) {
            if write_entry(out, &entry, tty, options.timestamps).is_err() {
                return Ok(());
            }
        }
        if out.flush().is_err() || !options.follow {
            return Ok(());
        }
        // Follow: new lines of the live file; a rotation (new inode) reopens it.
        loop {
            let running = c.snapshot().state.status.is_running();
            let mut progressed = false;
            if let Some((reader, _)) = current.as_mut() {
                loop {
                    line.clear();
                    let before = reader.stream_position().unwrap_or(0);
                    match read_line(reader, &mut line) {
                        Ok(true) if line.ends_with(b"\n") => {}
                        _ => {
                            let _ = reader.seek(SeekFrom::Start(before));
                            break;
                        }
                    }
                    progressed = true;
                    let Some(entry) = parse_line(&line) else {
                        continue;
                    };
                    if past_until(&entry) {
                        return Ok(());
                    }
                    if wanted(&entry) && write_entry(out, &entry, tty, options.timestamps).is_err()
                    {
                        return Ok(());
                    }
                }
            }
            if progressed && out.flush().is_err() {
                return Ok(());
            }
            let ino_now = std::fs::metadata(&path).map(|m| m.ino()).ok();
            let rotated = match (&current, ino_now) {
                (Some((_, ino)), Some(now)) => *ino != now,
                (None, Some(_)) => true,
                _ => false,
            };
            if rotated {
                if let Ok(f) = File::open(&path) {
                    let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                    current = Some((BufReader::new(f), ino));
                    continue;
                }
            }
            if !running && !progressed {
                return Ok(());
            }
            if !progressed {
                std::thread::sleep(FOLLOW_POLL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_timestamps() {
        let e = parse_line(
            br#"{"log":"hi\n","stream":"stderr","time":"2026-11-22T06:24:06.943004209Z"}"#,
        )
        .unwrap();
        let cases: &[(bool, bool, &[u8])] = &[
            (false, false, b"\x02\x00\x00\x00\x00\x00\x00\x03hi\n"),
            (true, false, b"hi\n"),
            (true, true, b"2026-11-22T06:24:06.943004209Z hi\n"),
        ];
        for (tty, ts, want) in cases {
            let mut out = Vec::new();
            write_entry(&mut out, &e, *tty, *ts).unwrap();
            assert_eq!(&out, want);
        }
        assert!(parse_line(b"not json").is_none());
    }
}
