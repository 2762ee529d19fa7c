//! The first process: re-exec the shim detached, relay its ready line, exit so that the shim is
//! reparented away from the daemon.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};
use estiba_shim::ShimArgs;

/// Longest ready line relayed.
const MAX_LINE_BYTES: usize = 64 * 1024;

pub(crate) fn relay(args: &ShimArgs) -> ExitCode {
    let (line, ok) = match relay_line(args) {
        Ok(line) => {
            let ok = line.starts_with("ready ");
            (line, ok)
        }
        Err(e) => (
            format!("error {}", format!("{e:#}").replace('\n', " ")),
            false,
        ),
    };
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

fn relay_line(args: &ShimArgs) -> Result<String> {
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
        .open(&log_path)
        .with_context(|| format!("open {}", log_path.display()))?;
    let exe = std::env::current_exe().context("find the shim binary")?;
    let mut child = Command::new(exe)
        .args(args.to_args())
        .arg("--daemonized")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(shim_log)
        .current_dir("/")
        .spawn()
        .context("start the shim")?;
    let mut buf = Vec::new();
    if let Some(out) = child.stdout.take() {
        // The shim prints exactly one line and then drops its end of the pipe.
        let mut chunk = [0u8; 1024];
        let mut out = out;
        while !buf.contains(&b'\n') && buf.len() < MAX_LINE_BYTES {
            match out.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("read the shim's ready line"),
            }
        }
    }
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = String::from_utf8_lossy(&buf[..end]).into_owned();
    if line.is_empty() {
        let status = child.wait().context("wait for the shim")?;
        anyhow::bail!(
            "shim exited before it was ready ({status}); see {}",
            log_path.display()
        );
    }
    Ok(line)
}
