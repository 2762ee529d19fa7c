//! Starting a shim from the daemon and reading what a gone shim left behind.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};

use crate::client::ShimError;
use crate::protocol::ExitInfo;
use crate::ShimArgs;

/// How long [`spawn_shim`] waits for the ready line (it covers the runtime's `create`).
pub const SHIM_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest ready line read from the shim.
const MAX_READY_LINE_BYTES: usize = 64 * 1024;

/// Runs the shim binary at `shim`, waits for its `ready <pid>` line and returns the shim's pid.
/// `error <message>` becomes [`ShimError::Failed`] with the runtime's message. Blocking: call it
/// from a blocking thread. The process it spawns is reaped before this returns.
pub fn spawn_shim(shim: &Path, args: &ShimArgs) -> Result<u32, ShimError> {
    let mut child = Command::new(shim)
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| ShimError::Exec {
            path: shim.to_path_buf(),
            source,
        })?;
    let line = match child.stdout.take() {
        Some(mut out) => read_line(&mut out, SHIM_READY_TIMEOUT),
        None => Err(ShimError::Protocol("no stdout".into())),
    };
    if line.is_err() {
        // The relay's own shim notices the closed pipe and tears the container down.
        let _ = child.kill();
    }
    let status = child.wait().map_err(ShimError::Io)?;
    let line = line?;
    parse_ready(&line, status.success())
}

fn read_line(out: &mut std::process::ChildStdout, timeout: Duration) -> Result<String, ShimError> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ShimError::Timeout(timeout));
        }
        let ts = rustix::event::Timespec::try_from(left).unwrap_or(rustix::event::Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        let fd = out.as_fd();
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(ShimError::Io(e.into())),
        }
        match out.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ShimError::Io(e)),
        }
        if buf.len() > MAX_READY_LINE_BYTES {
            return Err(ShimError::Protocol("ready line too long".into()));
        }
    }
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

fn parse_ready(line: &str, exited_ok: bool) -> Result<u32, ShimError> {
    if let Some(message) = line.strip_prefix("error ") {
        return Err(ShimError::Failed(message.to_owned()));
    }
    match line.strip_prefix("ready ").map(str::parse::<u32>) {
        Some(Ok(pid)) if exited_ok && pid > 0 => Ok(pid),
        _ if line.is_empty() => Err(ShimError::Protocol(
            "shim exited without a ready line".into(),
        )),
        _ => Err(ShimError::Protocol(format!(
            "unexpected ready line: {line:?}"
        ))),
    }
}

/// Reads `<state-dir>/exit.json`: `Ok(None)` when the container has not exited (or the shim died
/// before recording it).
pub fn read_exit_file(state_dir: &Path) -> std::io::Result<Option<ExitInfo>> {
    let path = state_dir.join(crate::EXIT_FILE_NAME);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines() {
        assert_eq!(parse_ready("ready 1234", true).unwrap(), 1234);
        let cases: &[(&str, bool, &str)] = &[
            (
                "error exec: \"nope\": executable file not found in $PATH",
                false,
                "exec: \"nope\": executable file not found in $PATH",
            ),
            (
                "",
                false,
                "invalid reply from shim: shim exited without a ready line",
            ),
            (
                "ready x",
                true,
                "invalid reply from shim: unexpected ready line: \"ready x\"",
            ),
            (
                "ready 0",
                true,
                "invalid reply from shim: unexpected ready line: \"ready 0\"",
            ),
            (
                "ready 12",
                false,
                "invalid reply from shim: unexpected ready line: \"ready 12\"",
            ),
        ];
        for &(line, ok, want) in cases {
            assert_eq!(
                parse_ready(line, ok).unwrap_err().to_string(),
                want,
                "{line}"
            );
        }
    }
}
