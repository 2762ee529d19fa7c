//! Blocking client of the shim socket: one connection per request.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::protocol::{
    AttachOptions, ContainerState, Empty, ExecExit, ExecOptions, ExecStarted, ExitInfo, Request,
    MAX_LINE_BYTES,
};

/// How long a request other than `wait` may take before the client gives up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors of talking to a shim, or of starting one.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The shim's socket cannot be reached (the shim is gone, or never started).
    #[error("cannot connect to shim at {path}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The connection broke or timed out.
    #[error("shim connection failed")]
    Io(#[source] std::io::Error),
    /// The shim answered something that is not the protocol.
    #[error("invalid reply from shim: {0}")]
    Protocol(String),
    /// The shim refused or failed the request; the message is meant for the user.
    #[error("{0}")]
    Failed(String),
    /// The shim binary could not be run.
    #[error("cannot run shim {path}")]
    Exec {
        /// The binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The shim did not print its ready line in time.
    #[error("shim did not become ready within {0:?}")]
    Timeout(Duration),
}

/// Talks to one shim through `<state-dir>/shim.sock`.
#[derive(Debug, Clone)]
pub struct ShimClient {
    path: PathBuf,
}

impl ShimClient {
    /// A client for the shim listening at `path` (each call opens its own connection).
    pub fn connect(path: impl AsRef<Path>) -> Result<ShimClient, ShimError> {
        let path = path.as_ref().to_path_buf();
        // Fail early when nothing listens; the probe connection is closed at once.
        UnixStream::connect(&path).map_err(|source| ShimError::Connect {
            path: path.clone(),
            source,
        })?;
        Ok(ShimClient { path })
    }

    /// A client for the shim of the container whose state dir is `state_dir`.
    pub fn for_state_dir(state_dir: impl AsRef<Path>) -> Result<ShimClient, ShimError> {
        ShimClient::connect(state_dir.as_ref().join(crate::SOCKET_NAME))
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the created container.
    pub fn start(&self) -> Result<(), ShimError> {
        self.call::<Empty>(&Request::Start, Some(REQUEST_TIMEOUT))
            .map(|_| ())
    }

    /// The container's state.
    pub fn state(&self) -> Result<ContainerState, ShimError> {
        self.call(&Request::State, Some(REQUEST_TIMEOUT))
    }

    /// Sends `signal` to the init, or with `all` to every process of the container.
    pub fn kill(&self, signal: i32, all: bool) -> Result<(), ShimError> {
        self.call::<Empty>(&Request::Kill { signal, all }, Some(REQUEST_TIMEOUT))
            .map(|_| ())
    }

    /// Blocks until the container's exit is recorded.
    pub fn wait(&self) -> Result<ExitInfo, ShimError> {
        self.call(&Request::Wait, None)
    }

    /// Opens an attach stream (see the crate docs for its framing). The stream has no timeouts.
    pub fn attach(&self, options: AttachOptions) -> Result<UnixStream, ShimError> {
        let mut stream = self.open(Some(REQUEST_TIMEOUT))?;
        send(&mut stream, &Request::Attach(options))?;
        read_reply::<Empty>(&mut stream)?;
        stream.set_read_timeout(None).map_err(ShimError::Io)?;
        stream.set_write_timeout(None).map_err(ShimError::Io)?;
        Ok(stream)
    }

    /// Sets the pty's window size.
    pub fn resize(&self, height: u16, width: u16) -> Result<(), ShimError> {
        self.call::<Empty>(&Request::Resize { height, width }, Some(REQUEST_TIMEOUT))
            .map(|_| ())
    }

    /// Deletes the exited container from the runtime and stops the shim.
    pub fn shutdown(&self) -> Result<(), ShimError> {
        self.call::<Empty>(&Request::Shutdown, Some(REQUEST_TIMEOUT))
            .map(|_| ())
    }

    /// Starts a process in the container; returns its pid and its stdio stream (no timeouts).
    pub fn exec(&self, options: ExecOptions) -> Result<(u32, UnixStream), ShimError> {
        let mut stream = self.open(Some(REQUEST_TIMEOUT))?;
        send(&mut stream, &Request::Exec(options))?;
        let started: ExecStarted = read_reply(&mut stream)?;
        stream.set_read_timeout(None).map_err(ShimError::Io)?;
        stream.set_write_timeout(None).map_err(ShimError::Io)?;
        Ok((started.pid, stream))
    }

    /// Blocks until exec `id`'s exit is recorded; returns its exit code.
    pub fn exec_wait(&self, id: &str) -> Result<i32, ShimError> {
        let exit: ExecExit = self.call(&Request::ExecWait { id: id.to_owned() }, None)?;
        Ok(exit.exit_code)
    }

    /// Sets the window size of exec `id`'s pty.
    pub fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ShimError> {
        let request = Request::ExecResize {
            id: id.to_owned(),
            height,
            width,
        };
        self.call::<Empty>(&request, Some(REQUEST_TIMEOUT))
            .map(|_| ())
    }

    fn open(&self, timeout: Option<Duration>) -> Result<UnixStream, ShimError> {
        let stream = UnixStream::connect(&self.path).map_err(|source| ShimError::Connect {
            path: self.path.clone(),
            source,
        })?;
        stream.set_read_timeout(timeout).map_err(ShimError::Io)?;
        stream.set_write_timeout(timeout).map_err(ShimError::Io)?;
        Ok(stream)
    }

    fn call<T: DeserializeOwned>(
        &self,
        request: &Request,
        timeout: Option<Duration>,
    ) -> Result<T, ShimError> {
        let mut stream = self.open(timeout)?;
        send(&mut stream, request)?;
        read_reply(&mut stream)
    }
}

fn send(stream: &mut UnixStream, request: &Request) -> Result<(), ShimError> {
    let mut line = serde_json::to_vec(request).map_err(|e| ShimError::Protocol(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(ShimError::Io)
}

/// Reads the reply line byte by byte so that nothing after it (an attach stream) is consumed.
fn read_reply<T: DeserializeOwned>(stream: &mut UnixStream) -> Result<T, ShimError> {
    let mut line = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => {
                return Err(ShimError::Protocol(
                    "connection closed before the reply".into(),
                ))
            }
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ShimError::Io(e)),
        }
        if line.len() >= MAX_LINE_BYTES {
            return Err(ShimError::Protocol("reply line too long".into()));
        }
    }
    parse_reply(&line)
}

fn parse_reply<T: DeserializeOwned>(line: &[u8]) -> Result<T, ShimError> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| ShimError::Protocol(e.to_string()))?;
    match value.get("ok").and_then(serde_json::Value::as_bool) {
        Some(true) => serde_json::from_value(value).map_err(|e| ShimError::Protocol(e.to_string())),
        Some(false) => {
            let msg = value
                .get("error")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("unknown error");
            Err(ShimError::Failed(msg.to_owned()))
        }
        None => Err(ShimError::Protocol("reply without \"ok\"".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        let exit: ExitInfo = parse_reply(
            br#"{"ok":true,"exit_code":3,"finished_at":"2026-11-22T06:24:06.943004209Z","oom_killed":false}"#,
        )
        .unwrap();
        assert_eq!(exit.exit_code, 3);
        match parse_reply::<Empty>(br#"{"ok":false,"error":"container is not running"}"#) {
            Err(ShimError::Failed(m)) => assert_eq!(m, "container is not running"),
            other => panic!("{other:?}"),
        }
        for bad in [&b"{}"[..], b"nope", br#"{"ok":true}"#] {
            assert!(matches!(
                parse_reply::<ExitInfo>(bad),
                Err(ShimError::Protocol(_))
            ));
        }
    }
}
