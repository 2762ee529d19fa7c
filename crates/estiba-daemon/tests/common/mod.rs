//! A real `estibad` on a temp socket, data-root and exec-root, plus a tiny HTTP/1.1 client over
//! the Unix socket (raw bytes, so tests see exactly what the daemon sends).

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon gets to start or stop.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
}

impl Daemon {
    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("exec")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("estiba.sock")
    }

    pub fn pidfile(&self) -> PathBuf {
        self.exec_root().join("estibad.pid")
    }

    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("daemon.json")
    }

    /// The arguments that point a daemon at this instance's directories.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--data-root".into(),
            self.data_root().display().to_string(),
            "--exec-root".into(),
            self.exec_root().display().to_string(),
            "-H".into(),
            format!("unix://{}", self.socket().display()),
            "--config-file".into(),
            self.config_file().display().to_string(),
            // No default bridge, so no bridge or nft table is shared or left behind.
            "--bridge".into(),
            "none".into(),
        ]
    }

    /// Starts estibad with `extra` arguments and waits until its socket answers /_ping.
    pub fn start(config_json: &str, extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut d = Daemon { dir, child: None };
        std::fs::write(d.config_file(), config_json).expect("write daemon.json");
        let child = Command::new(env!("CARGO_BIN_EXE_estibad"))
            .args(d.args())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn estibad");
        d.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(r) = try_request(&d.socket(), "GET", "/_ping", &[], b"") {
                if r.status == 200 {
                    return d;
                }
            }
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let mut err = String::new();
                if let Some(mut e) = d.child.as_mut().and_then(|c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("estibad exited during start-up with {status}: {err}");
            }
            assert!(
                Instant::now() < deadline,
                "estibad did not answer within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        let id = self.child.as_ref().expect("running").id();
        i32::try_from(id).expect("pid fits i32")
    }

    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("non-zero pid");
        rustix::process::kill_process(pid, sig).expect("send signal");
    }

    /// Waits (bounded) for the daemon to exit; returns its status and stderr.
    pub fn wait_exit(&mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return (status, err);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("estibad did not exit within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Response {
        try_request(&self.socket(), method, path, &[], body).expect("request")
    }

    /// Runs the real docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(docker_cli())
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .output()
            .expect("run docker CLI")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The real docker CLI; these tests need it and say so.
pub fn docker_cli() -> &'static str {
    let path = "/usr/local/bin/docker";
    assert!(
        Path::new(path).exists(),
        "these tests drive the real docker CLI, expected at {path}"
    );
    path
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh connection (`Connection: close`), body written from a thread so a
/// server that answers early (413) is still read.
pub fn try_request(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: estiba\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut writer = stream.try_clone()?;
    let body = body.to_vec();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A server that answers without reading the whole body (413, 431) resets the
            // connection after its response; what it sent is already here.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let _ = sender.join();
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], head_only: bool) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("header not utf-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
