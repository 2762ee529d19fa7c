//! Processes started in the running container with `exec`: their stdio (pipes or a pty), the
//! stream to the daemon (framed like attach, never logged), their exit and its waiters.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use estiba_shim::protocol::{error_line, ok_line, ExecExit};
use estiba_shim::ExecOptions;
use rustix::event::PollFlags;

use crate::jsonlog::Stream;
use crate::runtime::Runtime;
use crate::stdio::{self, StdinSink};

/// Most execs the shim tracks at once (running, or exited and not yet waited for).
pub(crate) const MAX_EXECS: usize = 128;
/// Longest exec id.
const MAX_EXEC_ID_BYTES: usize = 128;
/// How long output is drained after the process's exit before the exit is recorded anyway.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// Output is not read while the client has this much unsent.
const MAX_PENDING_BYTES: usize = 1024 * 1024;
/// Stdin from the client is not read while this much waits for the process.
const MAX_STDIN_PENDING_BYTES: usize = 256 * 1024;
/// One read from the process or the client.
const READ_CHUNK_BYTES: usize = 32 * 1024;
/// The console socket exec uses (execs are created one at a time, so one name is enough).
const CONSOLE_SOCKET_NAME: &str = "exec-console.sock";

/// Which of an exec's descriptors is ready.
#[derive(Clone, Copy)]
pub(crate) enum ExecFd {
    Out(Stream),
    Stdin,
    Conn,
}

pub(crate) struct Exec {
    pub(crate) id: String,
    pub(crate) pid: u32,
    tty: bool,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    stdin: StdinSink,
    pty: Option<OwnedFd>,
    conn: Option<UnixStream>,
    conn_input_open: bool,
    out: Vec<u8>,
    exited: Option<(i32, Instant)>,
    exit_code: Option<i32>,
    waiters: Vec<UnixStream>,
    answered: bool,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_EXEC_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Exec {
    /// Starts the process with fresh stdio, itself (`crate::nsexec`) or with the runtime's
    /// `exec --detach`; the process is ours to reap.
    pub(crate) fn start(
        runtime: &Runtime,
        state_dir: &Path,
        init_pid: u32,
        opts: &ExecOptions,
    ) -> Result<Exec> {
        if !valid_id(&opts.id) {
            bail!("invalid exec id {:?}", opts.id);
        }
        if !opts.tty {
            let (io, child) = stdio::pipe_fds(opts.stdin)?;
            if let Some(pid) = crate::nsexec::try_start(runtime, init_pid, &opts.process, &child)? {
                return Ok(Exec::new(opts, pid, io));
            }
            let pid_file = state_dir.join(format!("exec-{}.pid", opts.id));
            crate::server::remove_if_exists(&pid_file)?;
            runtime.exec(&opts.process, &pid_file, None, stdio::create_stdio(child))?;
            let pid = crate::server::read_pid(&pid_file);
            let _ = std::fs::remove_file(&pid_file);
            return Ok(Exec::new(opts, pid.context("exec pid")?, io));
        }
        let pid_file = state_dir.join(format!("exec-{}.pid", opts.id));
        crate::server::remove_if_exists(&pid_file)?;
        let io = {
            let console_path = state_dir.join(CONSOLE_SOCKET_NAME);
            let console = crate::server::bind_private(&console_path)?;
            let io = runtime
                .exec(
                    &opts.process,
                    &pid_file,
                    Some(&console_path),
                    stdio::tty_runtime_stdio(),
                )
                .and_then(|()| stdio::receive_pty(&console, opts.stdin));
            drop(console);
            let _ = std::fs::remove_file(&console_path);
            io?
        };
        let pid = crate::server::read_pid(&pid_file);
        let _ = std::fs::remove_file(&pid_file);
        Ok(Exec::new(opts, pid.context("exec pid")?, io))
    }

    fn new(opts: &ExecOptions, pid: u32, io: stdio::ContainerIo) -> Exec {
        Exec {
            id: opts.id.clone(),
            pid,
            tty: opts.tty,
            stdout: io.stdout,
            stderr: io.stderr,
            stdin: StdinSink::new(io.stdin),
            pty: io.pty,
            conn: None,
            conn_input_open: true,
            out: Vec::new(),
            exited: None,
            exit_code: None,
            waiters: Vec::new(),
            answered: false,
        }
    }

    /// The stream to the daemon; `rest` is what the client sent after its request line.
    pub(crate) fn set_conn(&mut self, conn: UnixStream, rest: &[u8]) {
        self.conn = Some(conn);
        self.stdin.queue(rest);
    }

    /// The descriptors to poll and for what.
    pub(crate) fn poll_fds(&self) -> Vec<(ExecFd, BorrowedFd<'_>, PollFlags)> {
        let mut fds = Vec::with_capacity(4);
        if self.out.len() < MAX_PENDING_BYTES {
            if let Some(fd) = &self.stdout {
                fds.push((ExecFd::Out(Stream::Stdout), fd.as_fd(), PollFlags::IN));
            }
            if let Some(fd) = &self.stderr {
                fds.push((ExecFd::Out(Stream::Stderr), fd.as_fd(), PollFlags::IN));
            }
        }
        if let Some(fd) = self.stdin.waiting_fd() {
            fds.push((ExecFd::Stdin, fd, PollFlags::OUT));
        }
        if let Some(conn) = &self.conn {
            let mut flags = PollFlags::empty();
            if self.conn_input_open && self.stdin.pending_len() < MAX_STDIN_PENDING_BYTES {
                flags |= PollFlags::IN;
            }
            if !self.out.is_empty() {
                flags |= PollFlags::OUT;
            }
            fds.push((ExecFd::Conn, conn.as_fd(), flags));
        }
        fds
    }

    /// When the loop must wake up for this exec even if nothing is ready.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match (self.exited, self.exit_code) {
            (Some((_, deadline)), None) => Some(deadline),
            _ => None,
        }
    }

    pub(crate) fn ready(&mut self, fd: ExecFd, revents: PollFlags) {
        match fd {
            ExecFd::Out(stream) => self.pump_output(stream),
            ExecFd::Stdin => self.stdin.feed(),
            ExecFd::Conn => self.serve_conn(revents),
        }
    }

    fn pump_output(&mut self, stream: Stream) {
        let mut buf = vec![0u8; READ_CHUNK_BYTES];
        let fd = match stream {
            Stream::Stdout => self.stdout.as_ref(),
            Stream::Stderr => self.stderr.as_ref(),
        };
        let Some(fd) = fd else { return };
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => self.output_ended(stream),
            Ok(n) => {
                if self.conn.is_some() {
                    if !self.tty {
                        let kind = match stream {
                            Stream::Stdout => 1u8,
                            Stream::Stderr => 2u8,
                        };
                        let len = u32::try_from(n).unwrap_or(u32::MAX);
                        self.out.extend_from_slice(&[kind, 0, 0, 0]);
                        self.out.extend_from_slice(&len.to_be_bytes());
                    }
                    self.out.extend_from_slice(&buf[..n]);
                    self.flush();
                }
            }
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
            // EIO: the pty's other side is closed.
            Err(_) => self.output_ended(stream),
        }
    }

    fn output_ended(&mut self, stream: Stream) {
        match stream {
            Stream::Stdout => self.stdout = None,
            Stream::Stderr => self.stderr = None,
        }
    }

    fn flush(&mut self) {
        let Some(conn) = &mut self.conn else {
            self.out.clear();
            return;
        };
        let mut done = 0;
        let mut broken = false;
        while done < self.out.len() {
            match conn.write(&self.out[done..]) {
                Ok(0) => {
                    broken = true;
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        self.out.drain(..done);
        if broken {
            self.drop_conn();
        } else if self.exit_code.is_some() && self.out.is_empty() {
            // Recorded and everything sent: the stream ends here.
            self.conn = None;
        }
    }

    /// The client is gone: its output is discarded from now on and stdin ends.
    fn drop_conn(&mut self) {
        self.conn = None;
        self.out.clear();
        self.stdin_done();
    }

    fn serve_conn(&mut self, revents: PollFlags) {
        if revents.intersects(PollFlags::IN | PollFlags::HUP) && self.conn_input_open {
            let mut chunk = vec![0u8; READ_CHUNK_BYTES];
            let read = match &mut self.conn {
                Some(conn) => conn.read(&mut chunk),
                None => return,
            };
            match read {
                Ok(0) => {
                    self.conn_input_open = false;
                    self.stdin_done();
                }
                Ok(n) => self.stdin.queue(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => return self.drop_conn(),
            }
        }
        if revents.contains(PollFlags::OUT) {
            self.flush();
        }
        if revents.intersects(PollFlags::HUP | PollFlags::ERR) {
            self.drop_conn();
        }
    }

    /// The client finished sending: the process's stdin ends too (a pty has no separate stdin
    /// to end, so it stays open, as Docker does).
    fn stdin_done(&mut self) {
        if self.pty.is_none() {
            self.stdin.end_when_flushed();
        }
    }

    /// The process was reaped with `exit_code`.
    pub(crate) fn set_exited(&mut self, exit_code: i32) {
        if self.exited.is_none() {
            self.exited = Some((exit_code, Instant::now() + DRAIN_AFTER_EXIT));
        }
    }

    /// Records the exit once the output is drained (or the drain took too long): answers the
    /// waiters and ends the stream once what is pending is sent.
    pub(crate) fn maybe_record(&mut self) {
        let Some((code, deadline)) = self.exited else {
            return;
        };
        if self.exit_code.is_some() {
            return;
        }
        let drained = self.stdout.is_none() && self.stderr.is_none();
        if !drained && Instant::now() < deadline {
            return;
        }
        self.exit_code = Some(code);
        self.stdout = None;
        self.stderr = None;
        self.stdin.close();
        self.pty = None;
        self.answer_waiters();
        self.flush();
    }

    fn answer_waiters(&mut self) {
        let Some(exit_code) = self.exit_code else {
            return;
        };
        let line = ok_line(ExecExit { exit_code });
        for mut waiter in self.waiters.drain(..) {
            // A fresh socket takes a short line; a waiter that cannot is gone.
            let _ = waiter.write_all(&line);
            self.answered = true;
        }
    }

    pub(crate) fn add_waiter(&mut self, stream: UnixStream) {
        self.waiters.push(stream);
        self.answer_waiters();
    }

    pub(crate) fn resize(&self, height: u16, width: u16) -> Vec<u8> {
        let Some(pty) = &self.pty else {
            return error_line("the exec has no tty");
        };
        let size = rustix::termios::Winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        match rustix::termios::tcsetwinsize(pty, size) {
            Ok(()) => ok_line(estiba_shim::protocol::Empty {}),
            Err(e) => error_line(&format!("resize: {e}")),
        }
    }

    /// Exited, waited for and its stream closed: nothing refers to it any more.
    pub(crate) fn finished(&self) -> bool {
        self.exit_code.is_some() && self.answered && self.conn.is_none()
    }

    /// Exited and recorded (it may be dropped to make room when nobody waited for it).
    pub(crate) fn recorded(&self) -> bool {
        self.exit_code.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_ids() {
        for (id, ok) in [
            ("abc", true),
            ("a1_b.c-d", true),
            ("", false),
            ("../x", false),
            ("a b", false),
            (&"e".repeat(129), false),
        ] {
            assert_eq!(valid_id(id), ok, "{id}");
        }
    }
}
