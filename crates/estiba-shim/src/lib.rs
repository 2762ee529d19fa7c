//! estiba-shim: one small supervisor process per container, and the library the daemon uses to
//! talk to it.
//!
//! The shim owns the container's init process so that `estibad` can restart, or crash, without
//! touching any running container. It is single-threaded (std + `poll(2)`, no async runtime), never
//! forks from a multi-threaded process, and execs the OCI runtime for create/start/kill/delete so
//! that the runtime's code is never resident in the shim (target ≤ 1 MB RSS).
//!
//! # The contract (the daemon is written against exactly this)
//!
//! ```text
//! estiba-shim --id ID --bundle DIR --state-dir DIR --runtime PATH [--runtime-root DIR]
//!             [--runtime-arg ARG]... --log-path FILE [--tty] [--stdin]
//!             [--log-max-size BYTES --log-max-files N] [--start [--hold-output N]]
//! ```
//!
//! 1. **Start-up.** The daemon spawns `estiba-shim` and reads one line from its stdout:
//!    `ready <pid-of-shim>` or `error <message>`; then the process it spawned exits (0 after
//!    `ready`, non-zero after `error`) and must be reaped by the daemon. That first process only
//!    relays: it forks the real shim off (the child goes on as the shim, no second exec; a process
//!    started with `--daemonized` is the real shim directly) and exits, so the real shim is
//!    reparented to init (or the nearest subreaper) and is never the daemon's child. The real shim calls
//!    `setsid`, becomes a child subreaper, ignores SIGTERM/SIGINT/SIGHUP/SIGPIPE, has `/dev/null`
//!    as stdin/stdout (after the ready line) and `<state-dir>/shim.log` as stderr, cwd `/`.
//!    [`spawn_shim`] does all of this for the daemon.
//! 2. **Create.** Before answering `ready`, the shim binds `<state-dir>/shim.sock` (mode 0600),
//!    creates the container's stdio (pipes for stdout/stderr, and stdin with `--stdin`; with
//!    `--tty` a pty whose master the runtime sends over `<state-dir>/console.sock`) and runs
//!    `<runtime> [--root R] [ARG...] --log <state-dir>/runtime.log --log-format json create
//!    --bundle DIR --pid-file <state-dir>/init.pid [--console-socket S] ID`. A failure is reported
//!    as `error <the runtime's own error message>`, and nothing is left behind but the state dir's
//!    files. The shim writes its pid to `<state-dir>/shim.pid`. With `--start` it runs `run
//!    --detach` instead of `create` (the same flags): `ready` then means the container's process
//!    runs, and no `start` request follows. `--hold-output N` (with `--start`) leaves the
//!    container's output unread until N `attach` requests have come, at most
//!    [`HOLD_OUTPUT_LIMIT`], so that attaches the daemon held before the start lose nothing.
//! 3. **Protocol** on `<state-dir>/shim.sock`: one JSON request line per connection, one JSON reply
//!    line (see [`protocol::Request`]). Every reply has `"ok":true`, or `"ok":false,"error":".."`.
//!    - `{"op":"start"}` → `<runtime> start ID`.
//!    - `{"op":"state"}` → `{"ok":true,"status":"created|running|stopped","pid":N,
//!      "exit_code":N|null,"started_at":".."|null,"finished_at":".."|null,"oom_killed":bool}`.
//!    - `{"op":"kill","signal":N,"all":bool}` → `kill(2)` of the init (`all`: `<runtime> kill
//!      --all`). An error once the container has exited.
//!    - `{"op":"wait"}` → answered when the exit is recorded: `{"ok":true,"exit_code":N,
//!      "finished_at":"..","oom_killed":bool}`.
//!    - `{"op":"attach","stdin":bool,"stdout":bool,"stderr":bool,"stdin_once":bool}` → `{"ok":true}`
//!      then the connection is a raw stream. Output: for a non-tty container Docker's stdcopy
//!      frames (`[1|2,0,0,0, u32 BE length] payload`), for a tty container raw bytes. Input (with
//!      `stdin`): written to the container's stdin; the client's EOF closes the container's stdin
//!      when `stdin_once` (pipes only; a pty stays open). The shim closes the stream when the
//!      container's output ends (or its exit is recorded). Output produced while nobody is
//!      attached only goes to the log, so the daemon attaches *before* `start`. Many at once.
//!    - `{"op":"resize","height":N,"width":N}` → `TIOCSWINSZ` on the pty (error without `--tty`).
//!    - `{"op":"shutdown"}` → only after the exit is recorded: `<runtime> delete ID`, remove
//!      `shim.sock`, reply, exit. An error (and the shim stays) while the container runs or when
//!      delete fails.
//!    - `{"op":"exec","id":"..","process":"<path of a process.json>","tty":bool,"stdin":bool}`
//!      (the daemon passes a `/proc/<pid>/fd/<n>` path of a memfd it holds open) →
//!      `<runtime> exec --process P --detach --pid-file <state-dir>/exec-<id>.pid
//!      [--console-socket S] ID` with fresh pipes (or a pty) as the process's stdio; replies
//!      `{"ok":true,"pid":N}` and the connection becomes the process's stream, framed as for
//!      attach; with `stdin`, the client's EOF closes the process's stdin (pipes only). The
//!      stream closes once the process has exited and its output is drained (at most 2 s).
//!      Exec output never goes to the log. A failing runtime is an error reply with its message.
//!      Without a tty, in a container whose runtime left `<runtime-root>/.bundles/<ID>/seccomp.bpf`
//!      (estiba-runtime with a precompiled filter), the shim starts the process itself, as the
//!      runtime would (no runtime invocation, no pid file); errors keep runc's wording.
//!    - `{"op":"exec_wait","id":".."}` → `{"ok":true,"exit_code":N}` once the exec's exit is
//!      recorded; the exec is forgotten after its first wait is answered.
//!    - `{"op":"exec_resize","id":"..","height":N,"width":N}` → `TIOCSWINSZ` on the exec's pty.
//! 4. **Log.** Output goes to `--log-path` exactly as Docker's json-file driver writes it
//!    (`{"log":"hi\n","stream":"stdout","time":"<RFC3339Nano UTC>"}` per line; lines longer than
//!    16 KiB are split into partial records; tty output is `stdout`), rotated like Docker with
//!    `--log-max-size`/`--log-max-files` (`FILE.1`, `FILE.2`, ...).
//! 5. **Reaping.** SIGCHLD wakes the loop; every child is reaped; the init's status is recorded as
//!    its exit code, or 128+signal. OOM: the memory cgroup's `oom_kill` counter (v1
//!    `memory.oom_control`, v2 `memory.events`) read after the exit.
//! 6. **Exit record.** When the init has exited and its output is drained (at most 2 s after the
//!    exit), `<state-dir>/exit.json` (`{"exit_code":N,"finished_at":"..","oom_killed":bool}`) is
//!    written atomically *before* any waiter is answered; [`read_exit_file`] reads it. The shim
//!    keeps serving until `shutdown`.
//!
//! The state dir must be an absolute path short enough for a unix socket address
//! (`<state-dir>/console.sock` ≤ 107 bytes).

pub mod args;
pub mod client;
pub mod protocol;
mod spawn;
pub mod timefmt;

pub use args::{ArgsError, ShimArgs, MAX_HOLD_OUTPUT};
pub use client::{ShimClient, ShimError};
pub use protocol::{
    AttachOptions, ContainerState, ExecExit, ExecOptions, ExecStarted, ExitInfo, Request, Status,
};
pub use spawn::{read_exit_file, spawn_shim, SHIM_READY_TIMEOUT};

/// Name of the shim's listening socket inside the state dir.
pub const SOCKET_NAME: &str = "shim.sock";
/// How long `--hold-output` waits for its attaches before the output is read anyway.
pub const HOLD_OUTPUT_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Name of the exit record inside the state dir.
pub const EXIT_FILE_NAME: &str = "exit.json";
/// Name of the runtime's json log inside the state dir.
pub const RUNTIME_LOG_NAME: &str = "runtime.log";
/// Name of the file holding the container init's pid (written by the runtime).
pub const INIT_PID_NAME: &str = "init.pid";
/// Name of the file holding the shim's own pid.
pub const SHIM_PID_NAME: &str = "shim.pid";
/// Name of the shim's own diagnostics log (its stderr).
pub const SHIM_LOG_NAME: &str = "shim.log";
/// Name of the console socket the runtime sends the pty master over.
pub const CONSOLE_SOCKET_NAME: &str = "console.sock";
