//! The container's stdio: pipes, or a pty whose master the runtime sends over a console socket.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::Stdio;

use anyhow::{anyhow, Context, Result};
use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use rustix::pipe::{pipe_with, PipeFlags};

use crate::runtime::CreateStdio;

/// The shim's ends of the container's stdio.
pub(crate) struct ContainerIo {
    /// Read end of stdout, or the pty master (tty output is all "stdout").
    pub(crate) stdout: Option<OwnedFd>,
    /// Read end of stderr (none with a tty).
    pub(crate) stderr: Option<OwnedFd>,
    /// Write end of stdin, or a duplicate of the pty master (only with `--stdin`).
    pub(crate) stdin: Option<OwnedFd>,
    /// The pty master, for resizing (with a tty).
    pub(crate) pty: Option<OwnedFd>,
}

/// Pipes for a non-tty container; the runtime's ends are returned for `create`.
pub(crate) fn pipes(with_stdin: bool) -> Result<(ContainerIo, CreateStdio)> {
    let (io, child) = pipe_fds(with_stdin)?;
    Ok((io, create_stdio(child)))
}

/// The child's ends of [`pipe_fds`] as the runtime's stdio.
pub(crate) fn create_stdio(child: [OwnedFd; 3]) -> CreateStdio {
    let [stdin, stdout, stderr] = child;
    CreateStdio {
        stdin: Stdio::from(stdin),
        stdout: Stdio::from(stdout),
        stderr: Stdio::from(stderr),
    }
}

/// Pipes for a non-tty process: the shim's ends, and the child's (stdin, stdout, stderr;
/// `/dev/null` for stdin without `with_stdin`).
pub(crate) fn pipe_fds(with_stdin: bool) -> Result<(ContainerIo, [OwnedFd; 3])> {
    let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC).context("pipe for stdout")?;
    let (err_r, err_w) = pipe_with(PipeFlags::CLOEXEC).context("pipe for stderr")?;
    let (stdin, child_stdin) = if with_stdin {
        let (in_r, in_w) = pipe_with(PipeFlags::CLOEXEC).context("pipe for stdin")?;
        (Some(in_w), in_r)
    } else {
        let null = std::fs::File::open("/dev/null").context("open /dev/null")?;
        (None, OwnedFd::from(null))
    };
    for fd in [&out_r, &err_r].into_iter().chain(stdin.as_ref()) {
        rustix::io::ioctl_fionbio(fd, true).context("non-blocking stdio")?;
    }
    let io = ContainerIo {
        stdout: Some(out_r),
        stderr: Some(err_r),
        stdin,
        pty: None,
    };
    Ok((io, [child_stdin, out_w, err_w]))
}

/// The runtime's stdio when the container has a pty: nothing but stderr, captured in case the
/// runtime fails before it can write its json log.
pub(crate) fn tty_runtime_stdio() -> CreateStdio {
    CreateStdio {
        stdin: Stdio::null(),
        stdout: Stdio::null(),
        stderr: Stdio::piped(),
    }
}

/// Receives the pty master the runtime sent over the console socket during `create` (it is
/// queued in the socket, so this does not block once `create` has succeeded).
pub(crate) fn receive_pty(listener: &UnixListener, with_stdin: bool) -> Result<ContainerIo> {
    listener.set_nonblocking(true).context("console socket")?;
    let (conn, _) = listener
        .accept()
        .context("the runtime did not send the console")?;
    let mut name = [0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    recvmsg(
        &conn,
        &mut [IoSliceMut::new(&mut name)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .context("receive the console")?;
    let mut master = None;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            for fd in fds {
                master.get_or_insert(fd);
            }
        }
    }
    let master = master.ok_or_else(|| anyhow!("the runtime sent no console file descriptor"))?;
    rustix::io::ioctl_fionbio(&master, true).context("non-blocking console")?;
    let stdin = if with_stdin {
        Some(master.try_clone().context("dup console")?)
    } else {
        None
    };
    let stdout = master.try_clone().context("dup console")?;
    Ok(ContainerIo {
        stdout: Some(stdout),
        stderr: None,
        stdin,
        pty: Some(master),
    })
}

/// A container's (or an exec's) stdin as the shim feeds it: a non-blocking descriptor and the
/// bytes a client sent that the process has not taken yet.
pub(crate) struct StdinSink {
    fd: Option<OwnedFd>,
    pending: Vec<u8>,
    close_when_flushed: bool,
}

impl StdinSink {
    pub(crate) fn new(fd: Option<OwnedFd>) -> StdinSink {
        StdinSink {
            fd,
            pending: Vec::new(),
            close_when_flushed: false,
        }
    }

    /// Bytes waiting for the process to read them.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The descriptor to poll for writability, while bytes wait.
    pub(crate) fn waiting_fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd
            .as_ref()
            .filter(|_| !self.pending.is_empty())
            .map(|fd| fd.as_fd())
    }

    /// Queues what a client sent and writes as much as the process takes now.
    pub(crate) fn queue(&mut self, data: &[u8]) {
        if self.fd.is_some() && !data.is_empty() {
            self.pending.extend_from_slice(data);
            self.feed();
        }
    }

    /// Writes what is queued until the pipe is full; a closed reader drops the rest.
    pub(crate) fn feed(&mut self) {
        let Some(fd) = &self.fd else { return };
        while !self.pending.is_empty() {
            match rustix::io::write(fd, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => {
                    // The process closed its stdin (or exited): nothing more can go there.
                    self.close();
                    return;
                }
            }
        }
        if self.pending.is_empty() && self.close_when_flushed {
            self.fd = None;
        }
    }

    /// The client is done sending: stdin ends once what is queued is written.
    pub(crate) fn end_when_flushed(&mut self) {
        self.close_when_flushed = true;
        self.feed();
    }

    /// Closes stdin now, dropping what is queued.
    pub(crate) fn close(&mut self) {
        self.fd = None;
        self.pending.clear();
    }
}

/// Largest spec file read for its console size.
const MAX_SPEC_BYTES: u64 = 4 * 1024 * 1024;

/// Gives the pty the bundle's `process.consoleSize` (Docker's `ConsoleSize`, height and width),
/// which the runtime leaves alone, before the container's process runs, as runc does: the
/// client's first resize arrives after `start`, and a process that asks for its size sooner
/// would see 0x0. Best effort: a spec without a size leaves the pty as it is.
pub(crate) fn apply_console_size(pty: &OwnedFd, bundle: &std::path::Path) {
    use std::io::Read;
    let mut text = String::new();
    let read = std::fs::File::open(bundle.join("config.json"))
        .and_then(|f| f.take(MAX_SPEC_BYTES).read_to_string(&mut text));
    if read.is_err() {
        return;
    }
    let Ok(spec) = serde_json::from_str::<serde_json::Value>(&text) else {
        return;
    };
    let size = &spec["process"]["consoleSize"];
    let dim = |k: &str| size[k].as_u64().and_then(|v| u16::try_from(v).ok());
    if let (Some(height), Some(width)) = (dim("height"), dim("width")) {
        let ws = rustix::termios::Winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let _ = rustix::termios::tcsetwinsize(pty, ws);
    }
}
