//! Running the OCI runtime binary (create, start, kill, delete) and extracting its error message.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

/// A runtime command that takes longer than this is killed (a frozen cgroup must not hang the shim).
const RUNTIME_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of the runtime's log or stderr read to find its error message.
const MAX_ERROR_READ_BYTES: u64 = 64 * 1024;
/// Longest error message passed on.
const MAX_MESSAGE_BYTES: usize = 4096;

/// How to invoke the runtime for one container.
pub(crate) struct Runtime {
    pub(crate) binary: PathBuf,
    /// Keeps the read-only view that `binary` points into alive (see `sealed`).
    pub(crate) _sealed: Option<crate::sealed::SealedBinary>,
    pub(crate) root: Option<PathBuf>,
    pub(crate) extra_args: Vec<String>,
    pub(crate) log: PathBuf,
    pub(crate) id: String,
}

/// The container's stdio as handed to `create`.
pub(crate) struct CreateStdio {
    pub(crate) stdin: Stdio,
    pub(crate) stdout: Stdio,
    pub(crate) stderr: Stdio,
}

impl Runtime {
    fn command(&self, subcommand: &[OsString]) -> Command {
        let mut cmd = Command::new(&self.binary);
        if let Some(root) = &self.root {
            cmd.arg("--root").arg(root);
        }
        cmd.args(&self.extra_args);
        cmd.arg("--log")
            .arg(&self.log)
            .args(["--log-format", "json"]);
        cmd.args(subcommand);
        cmd
    }

    /// `create --bundle B --pid-file P [--console-socket S] ID` with the container's stdio as the
    /// runtime's own: the init inherits it. With `start`, `run --detach` and the same flags: the
    /// container's process runs when it returns.
    pub(crate) fn create(
        &self,
        start: bool,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: CreateStdio,
    ) -> Result<()> {
        let mut sub: Vec<OsString> = if start {
            vec!["run".into(), "--detach".into()]
        } else {
            vec!["create".into()]
        };
        sub.extend([
            "--bundle".into(),
            bundle.into(),
            "--pid-file".into(),
            pid_file.into(),
        ]);
        if let Some(socket) = console_socket {
            sub.push("--console-socket".into());
            sub.push(socket.into());
        }
        sub.push(self.id.clone().into());
        let mut cmd = self.command(&sub);
        cmd.stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        self.run(cmd, if start { "run" } else { "create" })
    }

    /// `exec --process P --detach --pid-file F [--console-socket S] ID`: the process inherits
    /// `stdio` and, once the runtime exits, is reparented to the shim (a subreaper).
    pub(crate) fn exec(
        &self,
        process: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: CreateStdio,
    ) -> Result<()> {
        let mut sub: Vec<OsString> = vec![
            "exec".into(),
            "--process".into(),
            process.into(),
            "--detach".into(),
            "--pid-file".into(),
            pid_file.into(),
        ];
        if let Some(socket) = console_socket {
            sub.push("--console-socket".into());
            sub.push(socket.into());
        }
        sub.push(self.id.clone().into());
        let mut cmd = self.command(&sub);
        cmd.stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        self.run(cmd, "exec")
    }

    pub(crate) fn start(&self) -> Result<()> {
        self.simple(&["start".into(), self.id.clone().into()], "start")
    }

    pub(crate) fn kill(&self, signal: i32, all: bool) -> Result<()> {
        let mut sub: Vec<OsString> = vec!["kill".into()];
        if all {
            sub.push("--all".into());
        }
        sub.push(self.id.clone().into());
        sub.push(signal.to_string().into());
        self.simple(&sub, "kill")
    }

    pub(crate) fn delete(&self, force: bool) -> Result<()> {
        let mut sub: Vec<OsString> = vec!["delete".into()];
        if force {
            sub.push("--force".into());
        }
        sub.push(self.id.clone().into());
        self.simple(&sub, "delete")
    }

    fn simple(&self, sub: &[OsString], what: &str) -> Result<()> {
        let mut cmd = self.command(sub);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        self.run(cmd, what)
    }

    /// Runs `cmd` to completion (bounded by [`RUNTIME_TIMEOUT`]); on failure the error is the
    /// runtime's own message: the last error of its json log, else its stderr.
    fn run(&self, mut cmd: Command, what: &str) -> Result<()> {
        let log_offset = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run runtime {}", self.binary.display()))?;
        let status = wait_bounded(&mut child, RUNTIME_TIMEOUT)?;
        if status.success() {
            return Ok(());
        }
        let mut stderr = String::new();
        if let Some(err) = child.stderr.take() {
            let _ = err.take(MAX_ERROR_READ_BYTES).read_to_string(&mut stderr);
        }
        let message = last_log_error(&self.log, log_offset)
            .or_else(|| Some(stderr.trim().to_owned()).filter(|s| !s.is_empty()))
            .unwrap_or_else(|| format!("runtime {what} failed: {status}"));
        Err(anyhow!(truncate(message)))
    }
}

/// Waits for `child` with a pidfd, so the wait is exact and bounded without a busy loop.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    let pid = rustix::process::Pid::from_child(child);
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .context("pidfd_open of the runtime")?;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(anyhow!(
                "runtime did not finish within {}s",
                timeout.as_secs()
            ));
        }
        let ts = Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).context("poll on the runtime's pidfd"),
        }
    }
}

/// The `msg` of the last `"level":"error"` record written to the runtime's json log after `offset`.
fn last_log_error(log: &Path, offset: u64) -> Option<String> {
    let mut file = std::fs::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    let start = offset.max(len.saturating_sub(MAX_ERROR_READ_BYTES));
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut text = String::new();
    file.take(MAX_ERROR_READ_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    error_from_log_text(&text)
}

pub(crate) fn error_from_log_text(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| {
            matches!(
                v.get("level").and_then(|l| l.as_str()),
                Some("error" | "fatal")
            )
        })
        .filter_map(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_owned))
        .next_back()
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_from_the_runtime_log() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", None),
            (r#"{"level":"info","msg":"x","time":"t"}"#, None),
            (
                "{\"level\":\"warning\",\"msg\":\"w\"}\nnot json\n{\"level\":\"error\",\"msg\":\"first\"}\n\
                 {\"level\":\"error\",\"msg\":\"runc create failed: exec: \\\"nope\\\": executable file not found in $PATH\"}\n",
                Some("runc create failed: exec: \"nope\": executable file not found in $PATH"),
            ),
        ];
        for &(text, want) in cases {
            assert_eq!(error_from_log_text(text).as_deref(), want, "{text}");
        }
        assert_eq!(truncate("a\nb".into()), "a b");
        assert_eq!(truncate("é".repeat(3000)).len(), 4096);
    }
}
