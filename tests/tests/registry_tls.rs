//! A registry over TLS with a certificate from a test CA, on the host's non-loopback address
//! (127.0.0.0/8 is always insecure, i.e. plain HTTP, as in Docker): refused with an x509 error
//! until the CA is in the registry's certificate directory (Docker's
//! `/etc/docker/certs.d/<host:port>/ca.crt`, here a temp dir given to estibad), then push and
//! pull work over HTTPS.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use estiba_e2e::registry::{openssl, self_signed, RegistryProcess};
use estiba_e2e::testimg;
use estiba_e2e::Daemon;

/// The host's first global IPv4 address.
fn host_ip() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap_or_else(|e| panic!("ip addr: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no global IPv4 address on this host"))
}

/// A test CA and a server certificate for `ip` signed by it, in `dir`.
fn make_certs(dir: &Path, ip: &str) {
    self_signed(dir, "ca", "/CN=estiba test CA");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &format!("/CN={ip}"),
        ],
    );
    std::fs::write(dir.join("san.ext"), format!("subjectAltName=IP:{ip}\n"))
        .unwrap_or_else(|e| panic!("san.ext: {e}"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

/// docker-registry serving TLS on `ip` with the server certificate in `dir`.
fn start_tls_registry(dir: &Path, ip: &str) -> (RegistryProcess, String) {
    let port = TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port on {ip}: {e}"));
    let tls = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        dir.join("server.crt").display(),
        dir.join("server.key").display()
    );
    let addr = format!("{ip}:{port}");
    (RegistryProcess::start(dir, &addr, &tls, ""), addr)
}

#[test]
fn a_tls_registry_is_trusted_through_its_certs_dir() {
    let ip = host_ip();
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    make_certs(work.path(), &ip);
    let (_registry, reg_host) = start_tls_registry(work.path(), &ip);
    let certs = work.path().join("certs.d");
    std::fs::create_dir_all(&certs).unwrap_or_else(|e| panic!("{e}"));
    let certs_arg = certs.to_string_lossy().into_owned();
    let d = Daemon::start_with(&["--registry-certs-dir", &certs_arg]);
    let img = testimg::layered().unwrap_or_else(|e| panic!("layered image: {e}"));
    d.load(&[&img]);
    let target = format!("{}/tls/app:1", reg_host);
    d.docker(&["tag", &img.repo_tags[0], &target]).ok();

    // Not trusted yet: Docker's x509 error, nothing pushed.
    let out = d.docker(&["push", &target]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("x509: certificate signed by unknown authority"),
        "{out}"
    );

    // The CA in <certs-dir>/<host:port>/ca.crt: push and pull over HTTPS.
    let host_dir = certs.join(&reg_host);
    std::fs::create_dir_all(&host_dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(work.path().join("ca.crt"), host_dir.join("ca.crt"))
        .unwrap_or_else(|e| panic!("copy ca.crt: {e}"));
    let out = d.docker(&["push", &target]);
    assert!(out.ok().stdout.contains("1: digest: sha256:"), "{out}");
    d.docker(&["rmi", &target, &img.repo_tags[0]]).ok();
    let out = d.docker(&["pull", &target]);
    assert!(
        out.ok()
            .stdout
            .contains(&format!("Status: Downloaded newer image for {target}")),
        "{out}"
    );
    let id = d.docker(&["image", "inspect", "-f", "{{.Id}}", &target]);
    assert_eq!(id.ok().stdout.trim(), img.id());
}
