//! Wire types of the shim socket protocol: one JSON request line, one JSON reply line.

use serde::{Deserialize, Serialize};

/// Longest request or reply line either side accepts, newline included.
pub const MAX_LINE_BYTES: usize = 4096;

/// A request to the shim; serialized as `{"op":"<name>", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start the created container.
    Start,
    /// Report the container's state.
    State,
    /// Send a signal to the init (or, with `all`, to every process of the container).
    Kill {
        /// Signal number.
        signal: i32,
        /// Signal every process through the runtime's `kill --all`.
        #[serde(default)]
        all: bool,
    },
    /// Reply once the container's exit is recorded.
    Wait,
    /// Turn the connection into the container's stdio stream.
    Attach(AttachOptions),
    /// Set the pty's window size.
    Resize {
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// Delete the exited container from the runtime and stop the shim.
    Shutdown,
    /// Run a process in the running container (`<runtime> exec --detach`); the reply carries
    /// its pid, then the connection is the process's stdio stream, framed as for attach.
    Exec(ExecOptions),
    /// Reply with the exit code of exec `id` once it is recorded.
    ExecWait {
        /// The exec's id, as given to `exec`.
        id: String,
    },
    /// Set the window size of exec `id`'s pty.
    ExecResize {
        /// The exec's id.
        id: String,
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
}

/// What `exec` runs and how its stdio is connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOptions {
    /// The daemon's id for the exec (at most 128 bytes of `[0-9a-zA-Z_.-]`).
    pub id: String,
    /// An OCI process spec (JSON) for `<runtime> exec --process`.
    pub process: std::path::PathBuf,
    /// Give the process a pty (output raw instead of stdcopy frames).
    #[serde(default)]
    pub tty: bool,
    /// Bytes the client sends go to the process's stdin; the client's EOF closes it.
    #[serde(default)]
    pub stdin: bool,
}

/// Reply to `exec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStarted {
    /// Pid of the process in the shim's pid namespace.
    pub pid: u32,
}

/// Reply to `exec_wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecExit {
    /// Exit status, or 128 + the signal that killed the process.
    pub exit_code: i32,
}

/// What an attach connection carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachOptions {
    /// Bytes the client sends go to the container's stdin.
    #[serde(default)]
    pub stdin: bool,
    /// The container's stdout is sent to the client.
    #[serde(default)]
    pub stdout: bool,
    /// The container's stderr is sent to the client.
    #[serde(default)]
    pub stderr: bool,
    /// The client's EOF closes the container's stdin.
    #[serde(default)]
    pub stdin_once: bool,
}

/// Lifecycle state as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created by the runtime, not started.
    Created,
    /// Started, init not yet exited (or its exit not yet recorded).
    Running,
    /// Exit recorded.
    Stopped,
}

/// Reply to `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    /// Lifecycle state.
    pub status: Status,
    /// Pid of the container's init in the shim's pid namespace.
    pub pid: u32,
    /// Exit code once stopped.
    pub exit_code: Option<i32>,
    /// RFC 3339 time with nanoseconds of a successful start.
    pub started_at: Option<String>,
    /// RFC 3339 time with nanoseconds of the init's exit.
    pub finished_at: Option<String>,
    /// Whether the kernel OOM killer killed a process of the container.
    pub oom_killed: bool,
}

/// Reply to `wait`, and the content of `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit status, or 128 + the signal that killed the init.
    pub exit_code: i32,
    /// RFC 3339 time with nanoseconds of the init's exit.
    pub finished_at: String,
    /// Whether the kernel OOM killer killed a process of the container.
    pub oom_killed: bool,
}

/// `{"ok":true, ...body}`.
#[derive(Debug, Serialize)]
pub struct OkReply<T: Serialize> {
    /// Always true.
    pub ok: bool,
    /// The op's fields, flattened.
    #[serde(flatten)]
    pub body: T,
}

/// `{"ok":false,"error":".."}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorReply {
    /// Always false.
    pub ok: bool,
    /// What went wrong, for the user.
    pub error: String,
}

/// Serializes a successful reply line (newline included).
pub fn ok_line<T: Serialize>(body: T) -> Vec<u8> {
    let mut line = serde_json::to_vec(&OkReply { ok: true, body })
        .unwrap_or_else(|_| b"{\"ok\":true}".to_vec());
    line.push(b'\n');
    line
}

/// Serializes an error reply line (newline included).
pub fn error_line(message: &str) -> Vec<u8> {
    let reply = ErrorReply {
        ok: false,
        error: message.to_owned(),
    };
    let mut line = serde_json::to_vec(&reply)
        .unwrap_or_else(|_| b"{\"ok\":false,\"error\":\"internal error\"}".to_vec());
    line.push(b'\n');
    line
}

/// An empty body for replies that carry nothing but `ok`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_on_the_wire() {
        let cases: &[(&str, Request)] = &[
            (r#"{"op":"start"}"#, Request::Start),
            (r#"{"op":"state"}"#, Request::State),
            (
                r#"{"op":"kill","signal":15,"all":false}"#,
                Request::Kill {
                    signal: 15,
                    all: false,
                },
            ),
            (
                r#"{"op":"kill","signal":9}"#,
                Request::Kill {
                    signal: 9,
                    all: false,
                },
            ),
            (r#"{"op":"wait"}"#, Request::Wait),
            (
                r#"{"op":"attach","stdin":true,"stdout":true,"stderr":false}"#,
                Request::Attach(AttachOptions {
                    stdin: true,
                    stdout: true,
                    stderr: false,
                    stdin_once: false,
                }),
            ),
            (
                r#"{"op":"resize","height":24,"width":80}"#,
                Request::Resize {
                    height: 24,
                    width: 80,
                },
            ),
            (r#"{"op":"shutdown"}"#, Request::Shutdown),
            (
                r#"{"op":"exec","id":"e1","process":"/s/e1.json","tty":true}"#,
                Request::Exec(ExecOptions {
                    id: "e1".into(),
                    process: "/s/e1.json".into(),
                    tty: true,
                    stdin: false,
                }),
            ),
            (
                r#"{"op":"exec_wait","id":"e1"}"#,
                Request::ExecWait { id: "e1".into() },
            ),
            (
                r#"{"op":"exec_resize","id":"e1","height":2,"width":3}"#,
                Request::ExecResize {
                    id: "e1".into(),
                    height: 2,
                    width: 3,
                },
            ),
        ];
        for (wire, want) in cases {
            let got: Request = serde_json::from_str(wire).unwrap();
            assert_eq!(&got, want, "{wire}");
            let back: Request = serde_json::from_slice(&serde_json::to_vec(want).unwrap()).unwrap();
            assert_eq!(&back, want);
        }
        for bad in [
            r#"{"op":"exec"}"#,
            r#"{"signal":9}"#,
            r#"{"op":"kill"}"#,
            "[]",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reply_lines() {
        assert_eq!(ok_line(Empty {}), b"{\"ok\":true}\n");
        assert_eq!(
            error_line("no \"x\""),
            b"{\"ok\":false,\"error\":\"no \\\"x\\\"\"}\n"
        );
        let state = ContainerState {
            status: Status::Created,
            pid: 42,
            exit_code: None,
            started_at: None,
            finished_at: None,
            oom_killed: false,
        };
        assert_eq!(
            String::from_utf8(ok_line(&state)).unwrap(),
            "{\"ok\":true,\"status\":\"created\",\"pid\":42,\"exit_code\":null,\
             \"started_at\":null,\"finished_at\":null,\"oom_killed\":false}\n"
        );
    }
}
