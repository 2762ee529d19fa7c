//! Real registries for the registry tests: Debian's docker-registry with a config of the
//! test's choosing, and openssl for test CAs and signing keys.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait_until;

/// A docker-registry process; killed on drop.
pub struct RegistryProcess {
    child: Child,
}

impl RegistryProcess {
    /// Serves on `addr` ("127.0.0.1:5000") with its storage, config and log under `dir`;
    /// `http_extra` is indented under `http:` (e.g. a `tls:` block), `top_extra` appended at the
    /// top level (e.g. an `auth:` block). The request log goes to `<dir>/access.log`.
    pub fn start(dir: &Path, addr: &str, http_extra: &str, top_extra: &str) -> RegistryProcess {
        let yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{http_extra}{top_extra}",
            dir.join("data").display()
        );
        let config = dir.join("config.yml");
        std::fs::write(&config, yaml).unwrap_or_else(|e| panic!("write registry config: {e}"));
        let log = |name: &str| {
            std::fs::File::create(dir.join(name))
                .map(Stdio::from)
                .unwrap_or_else(|e| panic!("registry {name}: {e}"))
        };
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log("access.log"))
            .stderr(log("log"))
            .spawn()
            .unwrap_or_else(|e| panic!("docker-registry must be installed (scripts/deps.sh): {e}"));
        let registry = RegistryProcess { child };
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect(addr).is_ok()),
            "the registry did not listen on {addr}"
        );
        registry
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `openssl args...` in `dir`, failing the test on an error.
#[track_caller]
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl must be installed (scripts/deps.sh): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate and its RSA key (`<name>.crt`, `<name>.key`) in `dir`.
pub fn self_signed(dir: &Path, name: &str, subject: &str) {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &crt,
            "-days", "2", "-subj", subject,
        ],
    );
}
