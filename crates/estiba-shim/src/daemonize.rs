//! The first process: fork the shim off, relay its ready line, exit so that the shim is
//! reparented away from the daemon.
//!
//! The shim proper is the forked child itself, not a re-exec of this binary: an exec of the
//! dynamically linked shim costs ~1.1 ms on the path of every `docker run`, and the relay is
//! single-threaded (nothing before this point starts a thread), so the child may go on running
//! Rust code after `fork`. This module and `trim.rs` are the crate's only `unsafe` code.
#![allow(unsafe_code)]

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::process::ExitCode;

use anyhow::{Context, Result};
use estiba_shim::ShimArgs;
use rustix::process::{Pid, WaitOptions};

/// Longest ready line relayed.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Which side of the fork this is.
enum Side {
    /// The relay: reads the shim's ready line from here.
    Relay { ready: OwnedFd, shim: Pid },
    /// The shim: its stdio is set up; go on as the daemonized shim.
    Shim,
}

pub(crate) fn relay(args: ShimArgs) -> ExitCode {
    let (ready, shim) = match fork_shim(&args) {
        Ok(Side::Shim) => return crate::server::main(args),
        Ok(Side::Relay { ready, shim }) => (ready, shim),
        Err(e) => return answer(format!("error {}", one_line(&e)), false),
    };
    match read_line(ready, shim, &args) {
        Ok(line) => {
            let ok = line.starts_with("ready ");
            answer(line, ok)
        }
        Err(e) => answer(format!("error {}", one_line(&e)), false),
    }
}

fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

fn answer(line: String, ok: bool) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(format!("{line}\n").as_bytes())
        .and_then(|()| out.flush());
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Forks; in the child, stdin is `/dev/null`, stdout the ready pipe, stderr `shim.log`, cwd `/`.
fn fork_shim(args: &ShimArgs) -> Result<Side> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.state_dir)
        .with_context(|| format!("create state dir {}", args.state_dir.display()))?;
    let log_path = args.state_file(estiba_shim::SHIM_LOG_NAME);
    let shim_log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&log_path)
        .with_context(|| format!("open {}", log_path.display()))?;
    let null = OpenOptions::new()
        .read(true)
        .open("/dev/null")
        .context("open /dev/null")?;
    let (ready_read, ready_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("ready pipe")?;
    std::io::stdout().flush().context("flush stdout")?;
    // SAFETY: the relay is single-threaded (main has started no thread, and neither does
    // argument parsing), so the child is a complete copy of the only thread and may run any
    // code; every descriptor it needs was opened above.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork the shim");
    }
    if pid == 0 {
        drop(ready_read);
        let redirected = rustix::stdio::dup2_stdin(&null)
            .and_then(|()| rustix::stdio::dup2_stdout(&ready_write))
            .and_then(|()| rustix::stdio::dup2_stderr(&shim_log))
            .and_then(|()| rustix::process::chdir("/"));
        if redirected.is_err() {
            // Nothing to report on: the relay sees EOF and says so.
            std::process::exit(1);
        }
        return Ok(Side::Shim);
    }
    drop(ready_write);
    let shim = Pid::from_raw(pid).context("fork returned a bad pid")?;
    Ok(Side::Relay {
        ready: ready_read,
        shim,
    })
}

fn read_line(ready: OwnedFd, shim: Pid, args: &ShimArgs) -> Result<String> {
    let mut out = std::fs::File::from(ready);
    let mut buf = Vec::new();
    // The shim prints exactly one line and then drops its end of the pipe.
    let mut chunk = [0u8; 1024];
    while !buf.contains(&b'\n') && buf.len() < MAX_LINE_BYTES {
        match out.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("read the shim's ready line"),
        }
    }
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = String::from_utf8_lossy(&buf[..end]).into_owned();
    if line.is_empty() {
        let status = rustix::process::waitpid(Some(shim), WaitOptions::empty())
            .context("wait for the shim")?
            .map(|(_, status)| status);
        anyhow::bail!(
            "shim exited before it was ready ({status:?}); see {}",
            args.state_file(estiba_shim::SHIM_LOG_NAME).display()
        );
    }
    Ok(line)
}
