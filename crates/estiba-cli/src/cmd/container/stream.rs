//! The streams of a hijacked attach/exec connection and of `logs`: docker's stdcopy framing
//! (8-byte header: stream, 0, 0, 0, big-endian u32 length) or raw bytes for a TTY; our stdin fed
//! in from a thread; the terminal in raw mode while a TTY session runs; signals and resizes.

use std::io::Write as _;

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::client::Client;

/// How much of a stream is read at a time.
const CHUNK_BYTES: usize = 32 * 1024;
/// Chunks of our stdin that may wait for the daemon to take them.
const STDIN_QUEUE_CHUNKS: usize = 16;
/// Upper bound for a system-error frame's text.
const MAX_SYSERR_BYTES: usize = 64 * 1024;

/// Which of our outputs a frame goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    Stdout,
    Stderr,
}

/// A stream that is not docker's framing, or a system error the daemon put in it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DemuxError {
    UnknownStream(u8),
    System(String),
}

impl std::fmt::Display for DemuxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemuxError::UnknownStream(n) => write!(f, "Unrecognized input header: {n}"),
            DemuxError::System(m) => write!(f, "error from daemon in stream: {m}"),
        }
    }
}

impl std::error::Error for DemuxError {}

/// docker's `stdcopy.StdCopy` as a state machine: bytes in, (output, payload) slices out. Frames
/// may arrive split anywhere; payloads are passed on as they come, never buffered whole.
#[derive(Default)]
pub(crate) struct Demux {
    header: [u8; 8],
    header_len: usize,
    remaining: usize,
    stream: u8,
    syserr: Vec<u8>,
}

impl Demux {
    pub(crate) fn feed(
        &mut self,
        mut data: &[u8],
        out: &mut dyn FnMut(Output, &[u8]) -> std::io::Result<()>,
    ) -> anyhow::Result<()> {
        while !data.is_empty() {
            if self.remaining == 0 {
                let take = (8 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
                self.header_len += take;
                data = &data[take..];
                if self.header_len < 8 {
                    break;
                }
                self.header_len = 0;
                self.stream = self.header[0];
                if self.stream > 3 {
                    return Err(DemuxError::UnknownStream(self.stream).into());
                }
                let len = u32::from_be_bytes([
                    self.header[4],
                    self.header[5],
                    self.header[6],
                    self.header[7],
                ]);
                self.remaining = usize::try_from(len).unwrap_or(usize::MAX);
                if self.remaining == 0 {
                    continue;
                }
            }
            let take = self.remaining.min(data.len());
            let (payload, rest) = data.split_at(take);
            data = rest;
            self.remaining -= take;
            match self.stream {
                // docker writes what comes tagged as stdin to stdout.
                0 | 1 => out(Output::Stdout, payload)?,
                2 => out(Output::Stderr, payload)?,
                _ => {
                    let room = MAX_SYSERR_BYTES.saturating_sub(self.syserr.len());
                    self.syserr
                        .extend_from_slice(&payload[..payload.len().min(room)]);
                    if self.remaining == 0 {
                        let msg = String::from_utf8_lossy(&self.syserr).into_owned();
                        return Err(DemuxError::System(msg).into());
                    }
                }
            }
        }
        Ok(())
    }
}

fn write_out(which: Output, data: &[u8]) -> std::io::Result<()> {
    match which {
        Output::Stdout => {
            let mut o = std::io::stdout().lock();
            o.write_all(data)?;
            o.flush()
        }
        Output::Stderr => {
            let mut e = std::io::stderr().lock();
            e.write_all(data)?;
            e.flush()
        }
    }
}

/// Copies a container's output to ours until the daemon ends it: raw for a TTY, demultiplexed
/// otherwise.
pub(crate) async fn copy_output<R: AsyncRead + Unpin>(mut r: R, tty: bool) -> anyhow::Result<()> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut demux = Demux::default();
    loop {
        let n = r.read(&mut buf).await.context("reading from the daemon")?;
        if n == 0 {
            return Ok(());
        }
        if tty {
            write_out(Output::Stdout, &buf[..n])?;
        } else {
            demux.feed(&buf[..n], &mut write_out)?;
        }
    }
}

/// Our stdin as a bounded channel of chunks, read on a thread of its own (a blocking read must
/// not keep the runtime from exiting; the thread dies with the process).
pub(crate) fn stdin_chunks() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(STDIN_QUEUE_CHUNKS);
    std::thread::spawn(move || {
        use std::io::Read as _;
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Runs a hijacked session: our stdin to the container (when `send_stdin`), its output to ours.
/// Returns when the daemon closes the output.
pub(crate) async fn pump<S>(io: S, tty: bool, send_stdin: bool) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, mut wr) = tokio::io::split(io);
    let input = if send_stdin {
        let mut chunks = stdin_chunks();
        Some(tokio::spawn(async move {
            while let Some(chunk) = chunks.recv().await {
                if wr.write_all(&chunk).await.is_err() {
                    return;
                }
                let _ = wr.flush().await;
            }
            // End of our input: half-close so the container sees EOF on its stdin.
            let _ = wr.shutdown().await;
        }))
    } else {
        // Keep the write half open until the output ends.
        Some(tokio::spawn(async move {
            std::future::pending::<()>().await;
            drop(wr);
        }))
    };
    let result = copy_output(rd, tty).await;
    if let Some(task) = input {
        task.abort();
    }
    result
}

/// The terminal in raw mode until dropped (restored even when the command fails).
pub(crate) struct RawTerminal {
    saved: Option<rustix::termios::Termios>,
}

impl RawTerminal {
    /// Puts stdin's terminal in raw mode; does nothing when stdin is not a terminal.
    pub(crate) fn enable() -> RawTerminal {
        let stdin = std::io::stdin();
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        raw.make_raw();
        if rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).is_err()
        {
            return RawTerminal { saved: None };
        }
        RawTerminal { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}

/// Our terminal's size as (rows, columns), when stdout is a terminal.
pub(crate) fn terminal_size() -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sends our terminal size to `resize_path` ("/containers/x/resize") now and on every SIGWINCH.
pub(crate) fn follow_resizes(client: &Client, resize_path: String) -> tokio::task::JoinHandle<()> {
    let mut client = client.fork();
    tokio::spawn(async move {
        resize_once(&mut client, &resize_path).await;
        let Ok(mut winch) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while winch.recv().await.is_some() {
            resize_once(&mut client, &resize_path).await;
        }
    })
}

async fn resize_once(client: &mut Client, resize_path: &str) {
    if let Some((h, w)) = terminal_size() {
        let p = format!("{resize_path}?h={h}&w={w}");
        let _ = client.call_json(hyper::Method::POST, &p).await;
    }
}

/// docker's `--sig-proxy`: the signals we receive are sent to the container through `/kill`.
pub(crate) fn proxy_signals(client: &Client, id: String) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds: [(SignalKind, &str); 6] = [
        (SignalKind::interrupt(), "INT"),
        (SignalKind::terminate(), "TERM"),
        (SignalKind::hangup(), "HUP"),
        (SignalKind::quit(), "QUIT"),
        (SignalKind::user_defined1(), "USR1"),
        (SignalKind::user_defined2(), "USR2"),
    ];
    let client = client.fork();
    tokio::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<&'static str>(8);
        for (kind, name) in kinds {
            let Ok(mut s) = signal(kind) else { continue };
            let tx = tx.clone();
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    if tx.send(name).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut client = client;
        while let Some(name) = rx.recv().await {
            let path = format!("/containers/{id}/kill?signal={name}");
            let _ = client.call_json(hyper::Method::POST, &path).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![stream, 0, 0, 0];
        v.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(0).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn run(chunks: &[Vec<u8>]) -> (Vec<(Output, Vec<u8>)>, Option<String>) {
        let mut demux = Demux::default();
        let mut got: Vec<(Output, Vec<u8>)> = Vec::new();
        let mut push = |o: Output, d: &[u8]| {
            match got.last_mut() {
                Some((last, buf)) if *last == o => buf.extend_from_slice(d),
                _ => got.push((o, d.to_vec())),
            }
            Ok(())
        };
        for c in chunks {
            if let Err(e) = demux.feed(c, &mut push) {
                return (got, Some(e.to_string()));
            }
        }
        (got, None)
    }

    #[test]
    fn demultiplexes_like_stdcopy() {
        let all: Vec<u8> = [
            frame(1, b"hello\n"),
            frame(2, b"oops\n"),
            frame(1, b""),
            frame(0, b"in"),
        ]
        .concat();
        let expected = vec![
            (Output::Stdout, b"hello\n".to_vec()),
            (Output::Stderr, b"oops\n".to_vec()),
            (Output::Stdout, b"in".to_vec()),
        ];
        // Whole, split at every byte boundary, and byte by byte.
        assert_eq!(run(std::slice::from_ref(&all)), (expected.clone(), None));
        for cut in 0..all.len() {
            let parts = vec![all[..cut].to_vec(), all[cut..].to_vec()];
            assert_eq!(run(&parts), (expected.clone(), None), "cut at {cut}");
        }
        let bytes: Vec<Vec<u8>> = all.iter().map(|b| vec![*b]).collect();
        assert_eq!(run(&bytes), (expected, None));
    }

    #[test]
    fn reports_bad_streams_and_system_errors() {
        let cases: &[(Vec<u8>, &str)] = &[
            (frame(7, b"x"), "Unrecognized input header: 7"),
            (
                [frame(1, b"a"), frame(3, b"exec failed")].concat(),
                "error from daemon in stream: exec failed",
            ),
        ];
        for (input, want) in cases {
            let (_, err) = run(std::slice::from_ref(input));
            assert_eq!(err.as_deref(), Some(*want));
        }
    }
}
