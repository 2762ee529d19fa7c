//! The daemonized shim: create the container, then one single-threaded poll loop that serves the
//! socket, pumps the container's output into the log and attach streams, feeds its stdin, reaps
//! children and records the exit.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use estiba_shim::protocol::{error_line, ok_line, Empty, MAX_LINE_BYTES};
use estiba_shim::timefmt::rfc3339_nanos_fixed;
use estiba_shim::{AttachOptions, ContainerState, ExitInfo, Request, ShimArgs, Status};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{Pid, Signal, WaitOptions};

use crate::exec::{Exec, ExecFd, MAX_EXECS};
use crate::exit;
use crate::jsonlog::{JsonLog, Stream};
use crate::runtime::Runtime;
use crate::stdio::{self, ContainerIo, StdinSink};

/// Most connections served at once; more are closed on accept.
const MAX_CONNS: usize = 256;
/// A connection that has not sent its request line by then is closed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long output is drained after the init's exit before the exit is recorded anyway.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// Output is not read while an attach client has this much unsent (Docker blocks the same way).
const MAX_ATTACH_PENDING_BYTES: usize = 1024 * 1024;
/// Stdin from clients is not read while this much waits for the container.
const MAX_STDIN_PENDING_BYTES: usize = 256 * 1024;
/// One read from the container or a client.
const READ_CHUNK_BYTES: usize = 32 * 1024;
/// Reads per output stream per loop turn, so one chatty stream cannot starve the socket.
const READS_PER_TURN: usize = 8;

pub(crate) fn main(args: ShimArgs) -> ExitCode {
    let shim = match Shim::setup(&args) {
        Ok(shim) => shim,
        Err(e) => {
            let message = format!("{e:#}").replace('\n', " ");
            eprintln!("estiba-shim {}: {message}", args.id);
            // Clean up before reporting: the daemon may look at the state dir right after.
            let _ = std::fs::remove_file(args.state_file(estiba_shim::SOCKET_NAME));
            let _ = std::fs::remove_file(args.state_file(estiba_shim::CONSOLE_SOCKET_NAME));
            let _ = report(&format!("error {message}"));
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = report(&format!("ready {}", std::process::id())) {
        // Nobody is waiting for this container any more: take it down rather than orphan it.
        eprintln!(
            "estiba-shim {}: cannot report ready ({e}); deleting the container",
            args.id
        );
        let _ = shim.runtime.delete(true);
        let _ = std::fs::remove_file(args.state_file(estiba_shim::SOCKET_NAME));
        return ExitCode::FAILURE;
    }
    shim.run()
}

/// Prints the ready line, then points stdout at /dev/null so the relay (and the daemon) see EOF.
fn report(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes())?;
    out.flush()?;
    let null = std::fs::File::options().write(true).open("/dev/null")?;
    rustix::stdio::dup2_stdout(&null)?;
    Ok(())
}

/// Why a connection is open.
enum Phase {
    /// Reading the request line.
    Request(Vec<u8>),
    /// Waiting for the exit to be recorded.
    Wait,
    /// Streaming.
    Attach(Attach),
}

struct Attach {
    options: AttachOptions,
    /// The client can still send (no EOF yet).
    input_open: bool,
    /// Bytes not yet sent to the client.
    out: Vec<u8>,
    /// Close once `out` is sent: the container's output has ended.
    closing: bool,
}

struct Conn {
    stream: UnixStream,
    phase: Phase,
    deadline: Option<Instant>,
    dead: bool,
}

impl Conn {
    fn reply(&mut self, line: &[u8]) {
        // Replies are small and the socket is fresh: a short write means a broken client.
        if write_nonblocking(&mut self.stream, line) != Some(line.len()) {
            self.dead = true;
        }
    }

    /// Sends what it can of the attach buffer; closes when done and asked to.
    fn flush(&mut self) {
        if let Phase::Attach(a) = &mut self.phase {
            if !a.out.is_empty() {
                match write_nonblocking(&mut self.stream, &a.out) {
                    Some(n) => {
                        a.out.drain(..n);
                    }
                    None => self.dead = true,
                }
            }
            if a.closing && a.out.is_empty() {
                self.dead = true;
            }
        }
    }
}

/// Writes as much as the socket takes now; `None` when the peer is gone.
fn write_nonblocking(stream: &mut UnixStream, data: &[u8]) -> Option<usize> {
    let mut done = 0;
    while done < data.len() {
        match stream.write(&data[done..]) {
            Ok(0) => return None,
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(done)
}

#[derive(Clone, Copy)]
enum Token {
    Signal,
    Listener,
    Output(Stream),
    Stdin,
    Conn(usize),
    Exec(usize, ExecFd),
}

struct Exited {
    exit_code: i32,
    finished_at: String,
    drain_deadline: Instant,
}

struct Shim {
    args: ShimArgs,
    runtime: Runtime,
    listener: UnixListener,
    signals: UnixStream,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    stdin: StdinSink,
    pty: Option<OwnedFd>,
    log: JsonLog,
    conns: Vec<Conn>,
    init_pid: u32,
    oom_counter: Option<PathBuf>,
    started_at: Option<String>,
    exited: Option<Exited>,
    recorded: Option<ExitInfo>,
    done: bool,
    execs: Vec<Exec>,
    /// When the resident set was last trimmed (a period before start-up at first).
    last_trim: Instant,
    /// No event came since the last trim.
    trimmed: bool,
    /// `--hold-output`: the container's output stays unread until these attaches came.
    hold: Option<Hold>,
}

/// Attaches still awaited before the container's output is read, and until when at most.
#[derive(Debug, Clone, Copy)]
struct Hold {
    attaches: u32,
    until: Instant,
}

/// The resident set is trimmed (`trim.rs`) at most this often, and only when an event came
/// since the last trim.
const TRIM_INTERVAL: Duration = Duration::from_secs(1);

impl Shim {
    fn setup(args: &ShimArgs) -> Result<Shim> {
        rustix::process::setsid().context("setsid")?;
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .context("become a child subreaper")?;
        let (signals, signal_tx) = UnixStream::pair().context("signal pipe")?;
        signals.set_nonblocking(true).context("signal pipe")?;
        signal_tx.set_nonblocking(true).context("signal pipe")?;
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGCHLD, signal_tx)
            .context("handle SIGCHLD")?;
        // The daemon stops containers through the protocol; these must not kill the shim. A
        // handler (not SIG_IGN) so that the runtime and the container start with the default.
        let ignored = Arc::new(AtomicBool::new(false));
        for sig in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
        ] {
            signal_hook::flag::register(sig, Arc::clone(&ignored)).context("ignore signals")?;
        }
        std::fs::write(
            args.state_file(estiba_shim::SHIM_PID_NAME),
            std::process::id().to_string(),
        )
        .context("write shim.pid")?;

        let listener = bind_private(&args.state_file(estiba_shim::SOCKET_NAME))?;
        listener.set_nonblocking(true).context("shim socket")?;
        let log = JsonLog::open(&args.log_path, args.log_max_size_bytes, args.log_max_files)
            .with_context(|| format!("open log {}", args.log_path.display()))?;

        let sealed = match crate::sealed::seal(&args.runtime, &args.state_file("runtime.bin")) {
            Ok(sealed) => Some(sealed),
            Err(e) => {
                // The runtime then seals itself, as before.
                eprintln!("estiba-shim: no read-only view of the runtime binary: {e}");
                None
            }
        };
        let runtime = Runtime {
            binary: sealed
                .as_ref()
                .map_or_else(|| args.runtime.clone(), |s| s.path().to_path_buf()),
            _sealed: sealed,
            root: args.runtime_root.clone(),
            extra_args: args.runtime_args.clone(),
            log: args.state_file(estiba_shim::RUNTIME_LOG_NAME),
            id: args.id.clone(),
        };
        let pid_file = args.state_file(estiba_shim::INIT_PID_NAME);
        remove_if_exists(&pid_file)?;
        remove_if_exists(&args.state_file(estiba_shim::EXIT_FILE_NAME))?;
        let io = create(args, &runtime, &pid_file)?;
        let init_pid = match read_pid(&pid_file) {
            Ok(pid) => pid,
            Err(e) => {
                let _ = runtime.delete(true);
                return Err(e);
            }
        };
        Ok(Shim {
            args: args.clone(),
            runtime,
            listener,
            signals,
            stdout: io.stdout,
            stderr: io.stderr,
            stdin: StdinSink::new(io.stdin),
            pty: io.pty,
            log,
            conns: Vec::new(),
            init_pid,
            oom_counter: exit::oom_counter_path(init_pid),
            // `run --detach` returned: the process runs.
            started_at: args.start.then(|| rfc3339_nanos_fixed(SystemTime::now())),
            exited: None,
            recorded: None,
            done: false,
            execs: Vec::new(),
            // The first turn trims: start-up (argument parsing, the runtime's invocation) is
            // over and leaves pages the loop never touches again.
            last_trim: Instant::now()
                .checked_sub(TRIM_INTERVAL)
                .unwrap_or_else(Instant::now),
            trimmed: false,
            hold: (args.start && args.hold_output > 0).then(|| Hold {
                attaches: args.hold_output,
                until: Instant::now() + estiba_shim::HOLD_OUTPUT_LIMIT,
            }),
        })
    }

    fn run(mut self) -> ExitCode {
        while !self.done {
            if let Err(e) = self.turn() {
                eprintln!("estiba-shim {}: {e:#}", self.args.id);
                // poll itself failing is not recoverable; avoid a hot loop.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        ExitCode::SUCCESS
    }

    fn outputs_open(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }

    fn turn(&mut self) -> Result<()> {
        self.maybe_record_exit();
        let now = Instant::now();
        let mut timeout: Option<Duration> = None;
        let mut shorten = |deadline: Instant| {
            let left = deadline.saturating_duration_since(now);
            timeout = Some(timeout.map_or(left, |t| t.min(left)));
        };
        if let (Some(exited), None) = (&self.exited, &self.recorded) {
            shorten(exited.drain_deadline);
        }
        for conn in &self.conns {
            if let Some(d) = conn.deadline {
                shorten(d);
            }
        }
        for exec in &self.execs {
            if let Some(d) = exec.deadline() {
                shorten(d);
            }
        }
        // Trim right before blocking, so that only the pages from here to the poll come back
        // while the loop waits: once a second while events come (a busy container keeps only
        // the pages its events touch), then once more when they stop. An idle loop wakes up
        // for that last trim.
        if let Some(hold) = self.hold {
            if now >= hold.until {
                eprintln!(
                    "estiba-shim {}: {} attach(es) did not come; reading output",
                    self.args.id, hold.attaches
                );
                self.release_hold();
            } else {
                shorten(hold.until);
            }
        }
        let trim_now = !self.trimmed && now >= self.last_trim + TRIM_INTERVAL;
        if !self.trimmed && !trim_now {
            shorten(self.last_trim + TRIM_INTERVAL);
        }

        let backpressure = self.conns.iter().any(|c| match &c.phase {
            Phase::Attach(a) => a.out.len() >= MAX_ATTACH_PENDING_BYTES,
            _ => false,
        });
        let stdin_room = self.stdin.pending_len() < MAX_STDIN_PENDING_BYTES;
        let mut tokens: Vec<Token> = Vec::with_capacity(self.conns.len() + 5);
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(self.conns.len() + 5);
        tokens.push(Token::Signal);
        fds.push(PollFd::new(&self.signals, PollFlags::IN));
        tokens.push(Token::Listener);
        fds.push(PollFd::new(&self.listener, PollFlags::IN));
        if !backpressure && self.hold.is_none() {
            if let Some(fd) = &self.stdout {
                tokens.push(Token::Output(Stream::Stdout));
                fds.push(PollFd::new(fd, PollFlags::IN));
            }
            if let Some(fd) = &self.stderr {
                tokens.push(Token::Output(Stream::Stderr));
                fds.push(PollFd::new(fd, PollFlags::IN));
            }
        }
        if let Some(fd) = self.stdin.waiting_fd() {
            tokens.push(Token::Stdin);
            fds.push(PollFd::from_borrowed_fd(fd, PollFlags::OUT));
        }
        for (i, conn) in self.conns.iter().enumerate() {
            let flags = match &conn.phase {
                Phase::Request(_) => PollFlags::IN,
                Phase::Wait => PollFlags::empty(),
                Phase::Attach(a) => {
                    let mut f = PollFlags::empty();
                    if a.input_open && (!a.options.stdin || stdin_room) {
                        f |= PollFlags::IN;
                    }
                    if !a.out.is_empty() {
                        f |= PollFlags::OUT;
                    }
                    f
                }
            };
            tokens.push(Token::Conn(i));
            fds.push(PollFd::new(&conn.stream, flags));
        }
        for (i, exec) in self.execs.iter().enumerate() {
            for (which, fd, flags) in exec.poll_fds() {
                tokens.push(Token::Exec(i, which));
                fds.push(PollFd::from_borrowed_fd(fd, flags));
            }
        }
        let ts = timeout.map(|t| {
            Timespec::try_from(t).unwrap_or(Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            })
        });
        if trim_now {
            crate::trim::trim_resident_set();
            self.trimmed = true;
            self.last_trim = Instant::now();
        }
        match poll(&mut fds, ts.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).context("poll"),
        }
        let ready: Vec<(Token, PollFlags)> = tokens
            .into_iter()
            .zip(fds.iter().map(PollFd::revents))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        drop(fds);
        if !ready.is_empty() {
            self.trimmed = false;
        }

        for (token, revents) in ready {
            match token {
                Token::Signal => self.reap(),
                Token::Listener => self.accept(),
                Token::Output(stream) => self.pump_output(stream),
                Token::Stdin => self.stdin.feed(),
                Token::Conn(i) => self.serve(i, revents),
                Token::Exec(i, which) => {
                    if let Some(exec) = self.execs.get_mut(i) {
                        exec.ready(which, revents);
                    }
                }
            }
        }
        for exec in &mut self.execs {
            exec.maybe_record();
        }
        self.execs.retain(|e| !e.finished());
        if !self.outputs_open() {
            self.close_attach_streams();
        }
        let now = Instant::now();
        for conn in &mut self.conns {
            if conn.deadline.is_some_and(|d| now >= d) {
                conn.dead = true;
            }
        }
        self.conns.retain(|c| !c.dead);
        Ok(())
    }

    fn reap(&mut self) {
        let mut sink = [0u8; 64];
        while matches!((&self.signals).read(&mut sink), Ok(n) if n > 0) {}
        loop {
            // `wait`, not `waitpid(None)`: that is pid 0, our process group only, and the init has its own.
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    let raw = u32::try_from(pid.as_raw_nonzero().get()).unwrap_or(0);
                    if raw == self.init_pid && self.exited.is_none() {
                        self.exited = Some(Exited {
                            exit_code: exit::exit_code(status),
                            finished_at: rfc3339_nanos_fixed(SystemTime::now()),
                            drain_deadline: Instant::now() + DRAIN_AFTER_EXIT,
                        });
                    } else if let Some(exec) = self.execs.iter_mut().find(|e| e.pid == raw) {
                        exec.set_exited(exit::exit_code(status));
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }

    fn maybe_record_exit(&mut self) {
        let Some(exited) = &self.exited else { return };
        // Held output is still to be read: the attaches it waits for come soon, or the hold ends.
        if self.recorded.is_some()
            || self.hold.is_some()
            || (self.outputs_open() && Instant::now() < exited.drain_deadline)
        {
            return;
        }
        let info = ExitInfo {
            exit_code: exited.exit_code,
            finished_at: exited.finished_at.clone(),
            oom_killed: exit::oom_killed(self.oom_counter.as_deref()),
        };
        if let Err(e) = exit::write_exit_file(&self.args.state_dir, &info) {
            eprintln!("estiba-shim {}: {e:#}", self.args.id);
        }
        let line = ok_line(&info);
        for conn in &mut self.conns {
            if matches!(conn.phase, Phase::Wait) {
                conn.reply(&line);
                conn.dead = true;
            }
        }
        self.recorded = Some(info);
        self.close_attach_streams();
        self.stdin.close();
    }

    fn close_attach_streams(&mut self) {
        for conn in &mut self.conns {
            if let Phase::Attach(a) = &mut conn.phase {
                a.closing = true;
            }
            conn.flush();
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.conns.len() >= MAX_CONNS || stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.conns.push(Conn {
                        stream,
                        phase: Phase::Request(Vec::new()),
                        deadline: Some(Instant::now() + REQUEST_TIMEOUT),
                        dead: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    fn pump_output(&mut self, stream: Stream) {
        let mut buf = vec![0u8; READ_CHUNK_BYTES];
        for _ in 0..READS_PER_TURN {
            let fd = match stream {
                Stream::Stdout => self.stdout.as_ref(),
                Stream::Stderr => self.stderr.as_ref(),
            };
            let Some(fd) = fd else { return };
            match rustix::io::read(fd, &mut buf) {
                Ok(0) => return self.output_ended(stream),
                Ok(n) => self.distribute(stream, &buf[..n]),
                Err(rustix::io::Errno::AGAIN) => return,
                Err(rustix::io::Errno::INTR) => {}
                // EIO: the pty's other side is closed.
                Err(_) => return self.output_ended(stream),
            }
        }
    }

    fn output_ended(&mut self, stream: Stream) {
        if let Err(e) = self.log.finish(stream, SystemTime::now()) {
            eprintln!("estiba-shim {}: log: {e}", self.args.id);
        }
        match stream {
            Stream::Stdout => self.stdout = None,
            Stream::Stderr => self.stderr = None,
        }
    }

    fn distribute(&mut self, stream: Stream, data: &[u8]) {
        if let Err(e) = self.log.write(stream, data, SystemTime::now()) {
            eprintln!("estiba-shim {}: log: {e}", self.args.id);
        }
        let tty = self.args.tty;
        for conn in &mut self.conns {
            let Phase::Attach(a) = &mut conn.phase else {
                continue;
            };
            let wanted = match stream {
                Stream::Stdout => a.options.stdout,
                Stream::Stderr => a.options.stderr,
            };
            if !wanted || a.closing {
                continue;
            }
            if !tty {
                let kind = match stream {
                    Stream::Stdout => 1u8,
                    Stream::Stderr => 2u8,
                };
                let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
                a.out.extend_from_slice(&[kind, 0, 0, 0]);
                a.out.extend_from_slice(&len.to_be_bytes());
            }
            a.out.extend_from_slice(data);
            conn.flush();
        }
    }

    /// The client of an attach with `stdin_once` is done sending: the container's stdin ends too
    /// (a pty has no separate stdin to end, so it stays open).
    fn stdin_done(&mut self) {
        if self.pty.is_none() {
            self.stdin.end_when_flushed();
        }
    }

    fn serve(&mut self, i: usize, revents: PollFlags) {
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        match &mut conn.phase {
            Phase::Request(buf) => {
                let mut chunk = [0u8; 1024];
                match (&conn.stream).read(&mut chunk) {
                    Ok(0) => conn.dead = true,
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                            let rest = buf.split_off(pos + 1);
                            let line = std::mem::take(buf);
                            conn.deadline = None;
                            self.handle_request(i, &line, &rest);
                        } else if buf.len() >= MAX_LINE_BYTES {
                            conn.reply(&error_line("request line too long"));
                            conn.dead = true;
                        }
                    }
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(_) => conn.dead = true,
                }
            }
            Phase::Wait => {
                if revents.intersects(PollFlags::HUP | PollFlags::ERR) {
                    conn.dead = true;
                }
            }
            Phase::Attach(_) => self.serve_attach(i, revents),
        }
    }

    fn serve_attach(&mut self, i: usize, revents: PollFlags) {
        if revents.contains(PollFlags::IN) || revents.contains(PollFlags::HUP) {
            let mut chunk = vec![0u8; READ_CHUNK_BYTES];
            let Some(conn) = self.conns.get_mut(i) else {
                return;
            };
            let (stdin, stdin_once) = match &conn.phase {
                Phase::Attach(a) if a.input_open => (a.options.stdin, a.options.stdin_once),
                _ => (false, false),
            };
            let mut ended = false;
            let mut data = Vec::new();
            match (&conn.stream).read(&mut chunk) {
                Ok(0) => ended = true,
                Ok(n) => data.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => {
                    ended = true;
                    conn.dead = true;
                }
            }
            if ended {
                if let Phase::Attach(a) = &mut conn.phase {
                    a.input_open = false;
                }
            }
            if stdin {
                self.stdin.queue(&data);
                if ended && stdin_once {
                    self.stdin_done();
                }
            }
        }
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        if revents.contains(PollFlags::OUT) {
            conn.flush();
        }
        if revents.intersects(PollFlags::HUP | PollFlags::ERR) {
            conn.dead = true;
        }
    }

    fn handle_request(&mut self, i: usize, line: &[u8], rest: &[u8]) {
        let request: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => return self.finish(i, error_line(&format!("invalid request: {e}"))),
        };
        match request {
            Request::Start => {
                let reply = self.start().map(|()| ok_line(Empty {}));
                self.finish(i, reply.unwrap_or_else(|e| error_line(&format!("{e:#}"))));
            }
            Request::State => {
                let line = ok_line(self.state());
                self.finish(i, line);
            }
            Request::Kill { signal, all } => {
                let reply = self.kill(signal, all).map(|()| ok_line(Empty {}));
                self.finish(i, reply.unwrap_or_else(|e| error_line(&format!("{e:#}"))));
            }
            Request::Wait => match &self.recorded {
                Some(info) => {
                    let line = ok_line(info);
                    self.finish(i, line);
                }
                None => {
                    if let Some(conn) = self.conns.get_mut(i) {
                        conn.phase = Phase::Wait;
                    }
                }
            },
            Request::Attach(options) => self.attach(i, options, rest),
            Request::Resize { height, width } => {
                let reply = match &self.pty {
                    Some(pty) => {
                        let size = rustix::termios::Winsize {
                            ws_row: height,
                            ws_col: width,
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        match rustix::termios::tcsetwinsize(pty, size) {
                            Ok(()) => ok_line(Empty {}),
                            Err(e) => error_line(&format!("resize: {e}")),
                        }
                    }
                    None => error_line("the container has no tty"),
                };
                self.finish(i, reply);
            }
            Request::Shutdown => {
                let reply = self.shutdown().map(|()| ok_line(Empty {}));
                self.finish(i, reply.unwrap_or_else(|e| error_line(&format!("{e:#}"))));
            }
            Request::Exec(options) => self.exec(i, &options, rest),
            Request::ExecWait { id } => {
                let Some(exec) = self.execs.iter_mut().find(|e| e.id == id) else {
                    return self.finish(i, error_line(&format!("no such exec: {id}")));
                };
                let Some(conn) = self.conns.get_mut(i) else {
                    return;
                };
                // The exec answers its waiters itself; this loop forgets the connection.
                match conn.stream.try_clone() {
                    Ok(stream) => {
                        conn.dead = true;
                        exec.add_waiter(stream);
                    }
                    Err(e) => conn.reply(&error_line(&format!("exec wait: {e}"))),
                }
            }
            Request::ExecResize { id, height, width } => {
                let reply = match self.execs.iter().find(|e| e.id == id) {
                    Some(exec) => exec.resize(height, width),
                    None => error_line(&format!("no such exec: {id}")),
                };
                self.finish(i, reply);
            }
        }
    }

    /// Sends the reply and closes the connection.
    fn finish(&mut self, i: usize, line: Vec<u8>) {
        if let Some(conn) = self.conns.get_mut(i) {
            conn.reply(&line);
            conn.dead = true;
        }
    }

    fn status(&self) -> Status {
        if self.recorded.is_some() {
            Status::Stopped
        } else if self.started_at.is_some() {
            Status::Running
        } else {
            Status::Created
        }
    }

    fn state(&self) -> ContainerState {
        ContainerState {
            status: self.status(),
            pid: self.init_pid,
            exit_code: self.recorded.as_ref().map(|r| r.exit_code),
            started_at: self.started_at.clone(),
            finished_at: self.recorded.as_ref().map(|r| r.finished_at.clone()),
            oom_killed: self.recorded.as_ref().is_some_and(|r| r.oom_killed),
        }
    }

    fn start(&mut self) -> Result<()> {
        if self.exited.is_some() {
            bail!("container has already exited");
        }
        if self.started_at.is_some() {
            bail!("container is already running");
        }
        self.runtime.start()?;
        self.started_at = Some(rfc3339_nanos_fixed(SystemTime::now()));
        Ok(())
    }

    fn kill(&mut self, signal: i32, all: bool) -> Result<()> {
        if !(1..=64).contains(&signal) {
            bail!("invalid signal: {signal}");
        }
        if self.exited.is_some() {
            bail!("container is not running");
        }
        if all {
            return self.runtime.kill(signal, true);
        }
        // The init is our child and not yet reaped, so its pid cannot have been reused.
        match (
            Signal::from_named_raw(signal),
            Pid::from_raw(i32::try_from(self.init_pid).unwrap_or(0)),
        ) {
            (Some(sig), Some(pid)) => rustix::process::kill_process(pid, sig)
                .map_err(|e| anyhow!("kill {}: {e}", self.init_pid)),
            _ => self.runtime.kill(signal, false),
        }
    }

    /// Ends `--hold-output`: the output is read from the next turn on. A container that exited
    /// meanwhile gets its full drain period from now, so what it wrote reaches the log.
    fn release_hold(&mut self) {
        self.hold = None;
        if let Some(exited) = &mut self.exited {
            exited.drain_deadline = exited.drain_deadline.max(Instant::now() + DRAIN_AFTER_EXIT);
        }
    }

    fn attach(&mut self, i: usize, options: AttachOptions, rest: &[u8]) {
        self.attach_stream(i, options, rest);
        if let Some(hold) = &mut self.hold {
            hold.attaches = hold.attaches.saturating_sub(1);
            if hold.attaches == 0 {
                self.release_hold();
            }
        }
    }

    fn attach_stream(&mut self, i: usize, options: AttachOptions, rest: &[u8]) {
        let ended = self.recorded.is_some() || !self.outputs_open();
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        conn.reply(&ok_line(Empty {}));
        if conn.dead {
            return;
        }
        conn.phase = Phase::Attach(Attach {
            options,
            input_open: true,
            out: Vec::new(),
            closing: ended,
        });
        conn.flush();
        if options.stdin {
            self.stdin.queue(rest);
        }
    }

    /// Starts an exec; the connection becomes its stream (the exec owns a clone of it).
    fn exec(&mut self, i: usize, options: &estiba_shim::ExecOptions, rest: &[u8]) {
        if self.status() != Status::Running || self.exited.is_some() {
            return self.finish(i, error_line("container is not running"));
        }
        if self.execs.iter().any(|e| e.id == options.id) {
            return self.finish(i, error_line(&format!("exec {} exists", options.id)));
        }
        if self.execs.len() >= MAX_EXECS {
            // Make room by forgetting the oldest exit nobody asked for.
            match self.execs.iter().position(Exec::recorded) {
                Some(oldest) => {
                    self.execs.remove(oldest);
                }
                None => return self.finish(i, error_line("too many execs running")),
            }
        }
        let mut exec =
            match Exec::start(&self.runtime, &self.args.state_dir, self.init_pid, options) {
                Ok(exec) => exec,
                Err(e) => return self.finish(i, error_line(&format!("{e:#}"))),
            };
        let Some(conn) = self.conns.get_mut(i) else {
            return;
        };
        conn.reply(&ok_line(estiba_shim::ExecStarted { pid: exec.pid }));
        if !conn.dead {
            if let Ok(stream) = conn.stream.try_clone() {
                exec.set_conn(stream, rest);
            }
        }
        conn.dead = true;
        self.execs.push(exec);
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.recorded.is_none() {
            bail!("container is still running");
        }
        self.runtime.delete(false).context("delete")?;
        let _ = std::fs::remove_file(self.args.state_file(estiba_shim::SOCKET_NAME));
        self.done = true;
        Ok(())
    }
}

/// Creates the container's stdio and the container itself.
fn create(args: &ShimArgs, runtime: &Runtime, pid_file: &Path) -> Result<ContainerIo> {
    let bundle = args.bundle.as_path();
    if !args.tty {
        let (io, create_stdio) = stdio::pipes(args.stdin)?;
        runtime.create(args.start, bundle, pid_file, None, create_stdio)?;
        return Ok(io);
    }
    let console_path = args.state_file(estiba_shim::CONSOLE_SOCKET_NAME);
    let console = bind_private(&console_path)?;
    let created = runtime.create(
        args.start,
        bundle,
        pid_file,
        Some(&console_path),
        stdio::tty_runtime_stdio(),
    );
    let io = created.and_then(|()| stdio::receive_pty(&console, args.stdin));
    if let Ok(ContainerIo { pty: Some(pty), .. }) = &io {
        stdio::apply_console_size(pty, bundle);
    }
    drop(console);
    let _ = std::fs::remove_file(&console_path);
    if io.is_err() {
        let _ = runtime.delete(true);
    }
    io
}

/// Binds a unix socket only root can connect to (umask while binding, so there is no window).
pub(crate) fn bind_private(path: &Path) -> Result<UnixListener> {
    remove_if_exists(path)?;
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let bound = UnixListener::bind(path);
    rustix::process::umask(old);
    bound.with_context(|| format!("bind {}", path.display()))
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(e).with_context(|| format!("remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

pub(crate) fn read_pid(path: &Path) -> Result<u32> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 1 => Ok(pid),
        _ => Err(anyhow!(
            "invalid pid in {}: {:?}",
            path.display(),
            text.trim()
        )),
    }
}
