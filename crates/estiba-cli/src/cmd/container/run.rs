//! `run`, `create`, `start`, `attach` and `exec`: docker's order (create, attach, wait, start),
//! its exit codes (125 engine, 126 cannot invoke, 127 not found, else the container's status).

use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};

use super::args::{AttachArgs, ExecArgs, RunArgs, StartArgs};
use super::create::{create_request, parse_env_file, FlagError, Host};
use super::stream::{follow_resizes, proxy_signals, pump, terminal_size, RawTerminal};
use crate::args::{check_args, usage, Arity};
use crate::client::{path_escape, query, ApiError, Client};
use crate::output::{out, stdin_is_terminal, stdout_is_terminal};
use crate::StatusError;

/// How long to wait for the daemon to acknowledge a wait request before starting anyway.
const WAIT_REGISTER_TIMEOUT: Duration = Duration::from_secs(2);

fn run_error(cmd: &str, message: &str, code: u8) -> anyhow::Error {
    StatusError {
        code,
        message: format!("estiba: {message}\n\nRun 'estiba {cmd} --help' for more information"),
    }
    .into()
}

pub(crate) fn flag_error(cmd: &str, e: FlagError) -> anyhow::Error {
    match e {
        FlagError::Invalid { value, flag, why } => StatusError {
            code: 125,
            message: format!(
                "invalid argument \"{value}\" for \"{flag}\" flag: {why}\n\nUsage:  {}\n\nRun 'estiba {cmd} --help' for more information",
                usage(cmd)
            ),
        }
        .into(),
        FlagError::Other(m) => run_error(cmd, &m, 125),
    }
}

/// docker's `runStartContainerErr`: the exit status a failed start gets from its message.
pub(crate) fn start_error_code(message: &str) -> u8 {
    let m = message
        .strip_prefix("Error response from daemon: ")
        .unwrap_or(message);
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("system cannot find the file specified")
    {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        125
    }
}

/// "busybox" -> "busybox:latest", as docker names the image it could not find.
pub(crate) fn with_default_tag(image: &str) -> String {
    if image.contains('@') {
        return image.to_owned();
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    if image[slash..].contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// Pulls `image` as docker run does when it is missing, progress to stderr.
async fn pull(client: &mut Client, image: &str) -> anyhow::Result<()> {
    let reference = with_default_tag(image);
    let (name, tag) = match reference.split_once('@') {
        Some((n, d)) => (n.to_owned(), d.to_owned()),
        None => {
            let slash = reference.rfind('/').map_or(0, |i| i + 1);
            match reference[slash..].rfind(':') {
                Some(i) => (
                    reference[..slash + i].to_owned(),
                    reference[slash + i + 1..].to_owned(),
                ),
                None => (reference.clone(), "latest".to_owned()),
            }
        }
    };
    let q = query(&[("fromImage", Some(name)), ("tag", Some(tag))]);
    let resp = client
        .request(
            Method::POST,
            &format!("/images/create{q}"),
            crate::client::empty_body(),
            None,
        )
        .await?;
    let bytes = crate::client::read_limited(resp.into_body(), 64 * 1024 * 1024).await?;
    for line in bytes.split(|b| *b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if let Some(e) = msg.get("error").and_then(Value::as_str) {
            anyhow::bail!("{e}");
        }
        if let Some(status) = msg.get("status").and_then(Value::as_str) {
            match msg.get("id").and_then(Value::as_str) {
                Some(id) => eprintln!("{id}: {status}"),
                None => eprintln!("{status}"),
            }
        }
    }
    Ok(())
}

/// Creates the container (pulling a missing image once), prints the daemon's warnings, returns
/// the ID.
async fn create(
    client: &mut Client,
    a: &RunArgs,
    detach: bool,
    cmd: &str,
) -> anyhow::Result<String> {
    let console = if a.tty {
        terminal_size().map_or([0, 0], |(h, w)| [h, w])
    } else {
        [0, 0]
    };
    let req = create_request(a, detach, console, &Host::real()).map_err(|e| flag_error(cmd, e))?;
    let image = a.args.first().cloned().unwrap_or_default();
    let path = format!("/containers/create{}", req.query);
    let mut pulled = false;
    let resp = loop {
        match client.post_json(&path, &req.body).await {
            Ok(v) => break v,
            Err(e) => {
                let missing = e
                    .downcast_ref::<ApiError>()
                    .is_some_and(|api| api.is_not_found() && api.message.contains("No such image"));
                if !missing || pulled {
                    // docker run reports a failed create as its own error (125); docker create
                    // prints the daemon's message alone and exits 1.
                    if cmd.ends_with("create") && e.downcast_ref::<ApiError>().is_some() {
                        return Err(StatusError {
                            code: 1,
                            message: format!("{e:#}"),
                        }
                        .into());
                    }
                    return Err(run_error(cmd, &format!("{e:#}"), 125));
                }
                eprintln!(
                    "Unable to find image '{}' locally",
                    with_default_tag(&image)
                );
                pull(client, &image)
                    .await
                    .map_err(|e| run_error(cmd, &format!("{e:#}"), 125))?;
                pulled = true;
            }
        }
    };
    for w in resp
        .get("Warnings")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    resp.get("Id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| run_error(cmd, "the daemon's answer has no container ID", 125))
}

/// A wait request that the daemon has acknowledged (its headers arrived), still running.
struct Waiter {
    task: tokio::task::JoinHandle<anyhow::Result<Value>>,
}

impl Waiter {
    /// Sends `POST /containers/{id}/wait?condition=...` and returns once the daemon answered with
    /// headers (docker's daemon sends them at once), or after a bounded wait.
    async fn start(client: &Client, id: &str, condition: &str) -> Waiter {
        let mut client = client.fork();
        let path = format!("/containers/{id}/wait?condition={condition}");
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let resp = client
                .request(Method::POST, &path, crate::client::empty_body(), None)
                .await;
            let _ = ready_tx.send(());
            let resp = resp?;
            let bytes = crate::client::read_limited(resp.into_body(), 1024 * 1024).await?;
            Ok(serde_json::from_slice::<Value>(&bytes)?)
        });
        let _ = tokio::time::timeout(WAIT_REGISTER_TIMEOUT, ready_rx).await;
        Waiter { task }
    }

    /// The container's exit status (docker's 125 when waiting failed).
    async fn status(self) -> anyhow::Result<i64> {
        let result = match self.task.await {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!("{e}")),
        };
        match result {
            Ok(v) => {
                if let Some(msg) = v
                    .get("Error")
                    .and_then(|e| e.get("Message"))
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty())
                {
                    eprintln!("Error waiting for container: {msg}");
                    return Ok(125);
                }
                Ok(v.get("StatusCode").and_then(Value::as_i64).unwrap_or(0))
            }
            Err(e) => {
                eprintln!("Error waiting for container: {e:#}");
                Ok(125)
            }
        }
    }
}

fn exit_with(status: i64) -> anyhow::Result<()> {
    if status == 0 {
        return Ok(());
    }
    Err(StatusError {
        code: u8::try_from(status.rem_euclid(256)).unwrap_or(125),
        message: String::new(),
    }
    .into())
}

fn attach_query(stdin: bool, stdout: bool, stderr: bool, detach_keys: Option<&str>) -> String {
    let flag = |on: bool| on.then(|| "1".to_owned());
    query(&[
        ("detachKeys", detach_keys.map(str::to_owned)),
        ("stderr", flag(stderr)),
        ("stdin", flag(stdin)),
        ("stdout", flag(stdout)),
        ("stream", Some("1".to_owned())),
    ])
}

/// `estiba run`.
pub(crate) async fn run(client: &mut Client, a: RunArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    let body =
        create_request(&a, a.detach, [0, 0], &Host::real()).map_err(|e| flag_error(cmd, e))?;
    let cfg = &body.body;
    let flag = |k: &str| cfg.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (attach_in, attach_out, attach_err) = (
        flag("AttachStdin"),
        flag("AttachStdout"),
        flag("AttachStderr"),
    );
    if a.tty && attach_in && !stdin_is_terminal() {
        return Err(StatusError {
            code: 1,
            message: "the input device is not a TTY".to_owned(),
        }
        .into());
    }
    let id = create(client, &a, a.detach, cmd).await?;
    if a.detach {
        if let Err(e) = client
            .call_json(Method::POST, &format!("/containers/{id}/start"))
            .await
        {
            let msg = format!("{e:#}");
            return Err(run_error(cmd, &msg, start_error_code(&msg)));
        }
        return out(&format!("{id}\n"));
    }

    let session = if attach_in || attach_out || attach_err {
        let q = attach_query(attach_in, attach_out, attach_err, a.detach_keys.as_deref());
        Some(
            client
                .hijack(&format!("/containers/{id}/attach{q}"), None)
                .await
                .map_err(|e| run_error(cmd, &format!("{e:#}"), 125))?,
        )
    } else {
        None
    };
    let waiter = Waiter::start(client, &id, if a.rm { "removed" } else { "next-exit" }).await;
    if let Err(e) = client
        .call_json(Method::POST, &format!("/containers/{id}/start"))
        .await
    {
        drop(session);
        let msg = format!("{e:#}");
        if a.rm {
            let _ = waiter.status().await;
        }
        return Err(run_error(cmd, &msg, start_error_code(&msg)));
    }
    let resizer = (a.tty && stdout_is_terminal())
        .then(|| follow_resizes(client, format!("/containers/{id}/resize")));
    let proxy = (a.sig_proxy && !a.tty).then(|| proxy_signals(client, id.clone()));
    if let Some(io) = session {
        let _raw = (a.tty && attach_in).then(RawTerminal::enable);
        pump(io, a.tty, attach_in).await?;
    }
    let status = waiter.status().await?;
    for task in [resizer, proxy].into_iter().flatten() {
        task.abort();
    }
    exit_with(status)
}

/// `estiba create`: prints the new container's ID.
pub(crate) async fn create_cmd(client: &mut Client, a: RunArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    let id = create(client, &a, false, cmd).await?;
    out(&format!("{id}\n"))
}

async fn container_tty(client: &mut Client, name: &str) -> anyhow::Result<(String, bool, bool)> {
    let info = client
        .get_json(&format!("/containers/{}/json", path_escape(name)))
        .await?;
    let id = info
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or(name)
        .to_owned();
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let running = info
        .pointer("/State/Running")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((id, tty, running))
}

/// `estiba start`: several containers, or one attached with -a/-i.
pub(crate) async fn start(client: &mut Client, a: StartArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    if a.attach || a.interactive {
        if a.args.len() > 1 {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        }
        let (id, tty, _) = container_tty(client, &a.args[0]).await?;
        let q = attach_query(a.interactive, true, true, a.detach_keys.as_deref());
        let io = client
            .hijack(&format!("/containers/{id}/attach{q}"), None)
            .await?;
        let waiter = Waiter::start(client, &id, "next-exit").await;
        client
            .call_json(Method::POST, &format!("/containers/{id}/start"))
            .await?;
        let resizer = (tty && stdout_is_terminal())
            .then(|| follow_resizes(client, format!("/containers/{id}/resize")));
        let proxy = (!tty).then(|| proxy_signals(client, id.clone()));
        {
            let _raw = (tty && a.interactive).then(RawTerminal::enable);
            pump(io, tty, a.interactive).await?;
        }
        let status = waiter.status().await?;
        for task in [resizer, proxy].into_iter().flatten() {
            task.abort();
        }
        return exit_with(status);
    }
    let mut failed = Vec::new();
    for name in &a.args {
        match client
            .call_json(
                Method::POST,
                &format!("/containers/{}/start", path_escape(name)),
            )
            .await
        {
            Ok(_) => out(&format!("{name}\n"))?,
            Err(e) if e.downcast_ref::<ApiError>().is_some() => {
                eprintln!("{e:#}");
                failed.push(name.clone());
            }
            Err(e) => return Err(e),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StatusError {
            code: 1,
            message: format!("Error: failed to start containers: {}", failed.join(", ")),
        }
        .into())
    }
}

/// `estiba attach`: the container's streams until it exits (or the daemon detaches us).
pub(crate) async fn attach(client: &mut Client, a: AttachArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::Exactly(1))?;
    let (id, tty, running) = container_tty(client, &a.args[0]).await?;
    if !running {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    let stdin = !a.no_stdin;
    if tty && stdin && !stdin_is_terminal() {
        return Err(StatusError {
            code: 1,
            message: "the input device is not a TTY".to_owned(),
        }
        .into());
    }
    let q = attach_query(stdin, true, true, a.detach_keys.as_deref());
    let io = client
        .hijack(&format!("/containers/{id}/attach{q}"), None)
        .await?;
    let waiter = Waiter::start(client, &id, "not-running").await;
    let resizer = (tty && stdout_is_terminal())
        .then(|| follow_resizes(client, format!("/containers/{id}/resize")));
    let proxy = (a.sig_proxy && !tty).then(|| proxy_signals(client, id.clone()));
    {
        let _raw = (tty && stdin).then(RawTerminal::enable);
        pump(io, tty, stdin).await?;
    }
    for task in [resizer, proxy].into_iter().flatten() {
        task.abort();
    }
    // Detached with the detach keys: the container still runs and we exit 0.
    let (_, _, still_running) = container_tty(client, &id).await?;
    if still_running {
        waiter.task.abort();
        return Ok(());
    }
    let status = waiter.status().await?;
    exit_with(status)
}

/// `estiba exec`.
pub(crate) async fn exec(client: &mut Client, a: ExecArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(2))?;
    let container = &a.args[0];
    let host = Host::real();
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(parse_env_file(f, &host).map_err(|e| flag_error(cmd, e))?);
    }
    for e in &a.env {
        env.push(if e.contains('=') {
            e.clone()
        } else {
            match std::env::var(e) {
                Ok(v) => format!("{e}={v}"),
                Err(_) => e.clone(),
            }
        });
    }
    if a.tty && a.interactive && !stdin_is_terminal() {
        return Err(StatusError {
            code: 1,
            message: "the input device is not a TTY".to_owned(),
        }
        .into());
    }
    let console = if a.tty {
        terminal_size().map(|(h, w)| json!([h, w]))
    } else {
        None
    };
    let mut body = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": a.interactive && !a.detach,
        "AttachStderr": !a.detach,
        "AttachStdout": !a.detach,
        "Detach": a.detach,
        "DetachKeys": a.detach_keys.clone().unwrap_or_default(),
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": a.args[1..],
    });
    if let (Some(c), Value::Object(m)) = (&console, &mut body) {
        m.insert("ConsoleSize".into(), c.clone());
    }
    let created = client
        .post_json(
            &format!("/containers/{}/exec", path_escape(container)),
            &body,
        )
        .await?;
    let exec_id = created
        .get("Id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("exec ID empty"))?
        .to_owned();
    let mut start = json!({"Detach": a.detach, "Tty": a.tty});
    if let (Some(c), Value::Object(m)) = (&console, &mut start) {
        m.insert("ConsoleSize".into(), c.clone());
    }
    if a.detach {
        client
            .post_json(&format!("/exec/{exec_id}/start"), &start)
            .await?;
        return Ok(());
    }
    let io = client
        .hijack(&format!("/exec/{exec_id}/start"), Some(&start))
        .await?;
    let resizer = (a.tty && stdout_is_terminal())
        .then(|| follow_resizes(client, format!("/exec/{exec_id}/resize")));
    {
        let _raw = (a.tty && a.interactive).then(RawTerminal::enable);
        pump(io, a.tty, a.interactive).await?;
    }
    if let Some(r) = resizer {
        r.abort();
    }
    let info = client.get_json(&format!("/exec/{exec_id}/json")).await?;
    exit_with(info.get("ExitCode").and_then(Value::as_i64).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_map_to_docker_exit_codes() {
        let cases: &[(&str, u8)] = &[
            ("Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH: unknown", 127),
            ("Error response from daemon: exec: \"/x\": stat /x: no such file or directory", 127),
            ("Error response from daemon: unable to start container process: exec: \"/etc\": permission denied: unknown", 126),
            ("Error response from daemon: exec: \"/etc\": is a directory", 126),
            ("Error response from daemon: cannot join network of a non running container", 125),
        ];
        for (msg, want) in cases {
            assert_eq!(start_error_code(msg), *want, "{msg}");
        }
    }

    #[test]
    fn default_tags_and_attach_queries() {
        let cases: &[(&str, &str)] = &[
            ("busybox", "busybox:latest"),
            ("busybox:1", "busybox:1"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("x@sha256:ab", "x@sha256:ab"),
        ];
        for (i, want) in cases {
            assert_eq!(with_default_tag(i), *want);
        }
        assert_eq!(
            attach_query(true, true, true, None),
            "?stderr=1&stdin=1&stdout=1&stream=1"
        );
        assert_eq!(attach_query(false, true, false, None), "?stdout=1&stream=1");
    }
}
