//! The `WWW-Authenticate: Bearer` token flow against a real registry: Debian's docker-registry
//! configured with `auth: token`, and a small token server run by this test that checks basic
//! credentials and signs RS256 JWTs (with openssl) whose x5c certificate is the registry's
//! root bundle. Login, push and pull go through tokens; a wrong password and an anonymous pull
//! are refused with the registry's words.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use estiba_e2e::registry::{openssl, self_signed, RegistryProcess};
use estiba_e2e::testimg;
use estiba_e2e::Daemon;

const USER: &str = "tokenuser";
const PASSWORD: &str = "s3cret-token";
const SERVICE: &str = "estiba-test-registry";
const ISSUER: &str = "estiba-test-issuer";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port: {e}"))
}

/// The token server: one thread answering `GET /token?...` until dropped.
struct TokenServer {
    stop: Arc<AtomicBool>,
    port: u16,
    issued: Arc<std::sync::Mutex<Vec<String>>>,
}

impl TokenServer {
    fn start(dir: PathBuf) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop2, issued2) = (Arc::clone(&stop), Arc::clone(&issued));
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &dir, &issued2),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TokenServer { stop, port, issued }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Answers one request: 401 without the right basic credentials when some are given, else a
/// token granting the requested scope to the user (or nothing to an anonymous caller).
fn serve(stream: TcpStream, dir: &Path, issued: &std::sync::Mutex<Vec<String>>) {
    let _ = stream.set_nonblocking(false);
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_owned());
            }
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or_default();
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let scopes: Vec<String> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(|s| {
            s.replace("%3A", ":")
                .replace("%2C", ",")
                .replace("%2F", "/")
        })
        .collect();
    let expected = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
    let (status, body) = match authorization.as_deref() {
        Some(a) if a != expected => (
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                .to_owned(),
        ),
        given => {
            let subject = if given.is_some() { USER } else { "" };
            let token = sign_token(dir, subject, if given.is_some() { &scopes } else { &[] });
            if let Ok(mut log) = issued.lock() {
                log.push(format!("{subject} {scopes:?}"));
            }
            (
                "200 OK",
                format!(r#"{{"token":"{token}","expires_in":300}}"#),
            )
        }
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// An RS256 JWT for `subject` granting `scopes` ("repository:team/app:pull,push").
fn sign_token(dir: &Path, subject: &str, scopes: &[String]) -> String {
    let der = std::fs::read(dir.join("token.der")).unwrap_or_default();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [STANDARD.encode(der)]});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name,
                "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let claims = serde_json::json!({"iss": ISSUER, "sub": subject, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", scopes.len()),
        "access": access});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("token.key"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(out.stdout))
}

/// docker-registry with `auth: token` pointing at the token server, whose signing
/// certificate (`token.crt`, also as `token.der` for the tokens' x5c) it trusts.
fn start_registry(dir: &Path, realm_port: u16) -> (RegistryProcess, u16) {
    self_signed(dir, "token", "/CN=estiba token signer");
    openssl(
        dir,
        &[
            "x509",
            "-in",
            "token.crt",
            "-outform",
            "DER",
            "-out",
            "token.der",
        ],
    );
    let port = free_port();
    let auth = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{realm_port}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
        dir.join("token.crt").display()
    );
    let registry = RegistryProcess::start(dir, &format!("127.0.0.1:{port}"), "", &auth);
    (registry, port)
}

#[test]
fn bearer_tokens_from_a_token_server_carry_login_push_and_pull() {
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let tokens = TokenServer::start(work.path().to_path_buf());
    let (_registry, port) = start_registry(work.path(), tokens.port);
    let host = format!("127.0.0.1:{port}");
    let d = Daemon::start();
    let img = testimg::layered().unwrap_or_else(|e| panic!("layered image: {e}"));
    d.load(&[&img]);
    let target = format!("{host}/team/app:1");
    d.docker(&["tag", &img.repo_tags[0], &target]).ok();

    // No login: the registry refuses the anonymous token's (empty) grant.
    let out = d.docker(&["push", &target]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("denied") || out.stderr.contains("unauthorized"),
        "{out}"
    );

    // A wrong password: the token server's 401, and docker login fails.
    let bad = d.run_with_stdin(
        estiba_e2e::Cli::Docker,
        &["login", &host, "-u", USER, "--password-stdin"],
        b"wrong\n".to_vec(),
    );
    assert_ne!(bad.code, 0, "{bad}");
    assert!(
        bad.stderr.contains("401 Unauthorized") || bad.stderr.contains("authentication required"),
        "{bad}"
    );

    let good = d.run_with_stdin(
        estiba_e2e::Cli::Docker,
        &["login", &host, "-u", USER, "--password-stdin"],
        format!("{PASSWORD}\n").into_bytes(),
    );
    assert!(
        good.code == 0 && good.stdout.contains("Login Succeeded"),
        "{good}\n--- registry log ---\n{}",
        std::fs::read_to_string(work.path().join("log")).unwrap_or_default()
    );

    let out = d.docker(&["push", &target]);
    assert!(out.ok().stdout.contains("1: digest: sha256:"), "{out}");
    d.docker(&["rmi", &target, &img.repo_tags[0]]).ok();
    let out = d.docker(&["pull", &target]);
    assert!(
        out.ok().stdout.contains("Status: Downloaded newer image"),
        "{out}"
    );
    let id = d.docker(&["image", "inspect", "-f", "{{.Id}}", &target]);
    assert_eq!(id.ok().stdout.trim(), img.id());

    // The tokens were asked for the repository with push and pull rights, as the user.
    let issued = tokens.issued.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(
        issued
            .iter()
            .any(|t| t.starts_with(USER) && t.contains("repository:team/app:pull,push")),
        "{issued:?}"
    );
}
