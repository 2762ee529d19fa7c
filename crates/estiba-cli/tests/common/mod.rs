//! The harness shared by the CLI's end-to-end tests: a real `estibad` from the workspace's
//! target dir on a temporary socket and data-root, and a way to run the `estiba` binary.

#![allow(dead_code)] // each test binary uses its own subset

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the daemon may take to accept connections.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Out {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) code: i32,
}

pub(crate) fn estiba(host: &str, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_estiba"))
        .arg("-H")
        .arg(host)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running estiba {args:?}: {e}"));
    Out {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

#[track_caller]
pub(crate) fn ok(host: &str, args: &[&str]) -> String {
    let o = estiba(host, args);
    assert_eq!(
        o.code, 0,
        "estiba {args:?} failed: stdout {:?} stderr {:?}",
        o.stdout, o.stderr
    );
    o.stdout
}

/// A running estibad, killed (by its own pid) when dropped.
pub(crate) struct Daemon {
    child: Child,
    pub(crate) host: String,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Containers outlive estibad by design: remove them first, or a failed test leaves
        // them (and their shims and cgroups) running.
        let ids = estiba(&self.host, &["ps", "-aq"]).stdout;
        for id in ids.split_whitespace() {
            let _ = estiba(&self.host, &["rm", "-f", id]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn estibad_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("no target dir above {}", exe.display()));
    let path = dir.join("estibad");
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        path.display()
    );
    path
}

pub(crate) fn start_daemon() -> Daemon {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let sock = dir.path().join("estiba.sock");
    let host = format!("unix://{}", sock.display());
    let child = Command::new(estibad_path())
        .arg("-H")
        .arg(&host)
        .arg("--data-root")
        .arg(dir.path().join("data"))
        .arg("--exec-root")
        .arg(dir.path().join("run"))
        // No default bridge: these tests use --network none and leave no bridge or nft table.
        .args(["--bridge", "none"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting estibad: {e}"));
    let daemon = Daemon {
        child,
        host,
        _dir: dir,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    while UnixStream::connect(&sock).is_err() {
        assert!(
            Instant::now() < deadline,
            "estibad did not listen on {} within {START_TIMEOUT:?}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}
