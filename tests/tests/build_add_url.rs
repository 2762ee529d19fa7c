//! `ADD <url>` through the docker CLI against a small HTTP server in the test: the download is
//! named after the URL's last path element (mode 0600, mtime from Last-Modified), a remote
//! archive is not extracted, redirects are followed, a rebuild with the same bytes is cached and
//! new bytes rerun the step, a 404 fails the build naming the status, COPY refuses a URL.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use estiba_e2e::{build::context, build::docker_build, daemon_with_busybox};

/// Serves `/files/hello.txt` (the shared content), `/files/arch.tar`, `/redirect` (to
/// hello.txt) and 404 for anything else, until the test process ends. Returns its port.
fn serve(hello: Arc<Mutex<String>>, archive: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok() && line.trim() != "" {
                line.clear();
            }
            let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, extra, body): (&str, String, Vec<u8>) = match path.as_str() {
                "/files/hello.txt" => (
                    "200 OK",
                    "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n".into(),
                    hello.lock().unwrap().clone().into_bytes(),
                ),
                "/files/arch.tar" => ("200 OK", String::new(), archive.clone()),
                "/redirect" => (
                    "302 Found",
                    "Location: /files/hello.txt\r\n".into(),
                    Vec::new(),
                ),
                _ => ("404 Not Found", String::new(), b"no\n".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    port
}

fn archive() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    tar.append_data(&mut h, "inner.txt", &b"x\n"[..]).unwrap();
    tar.into_inner().unwrap()
}

#[test]
fn add_downloads_a_url() {
    let d = daemon_with_busybox();
    let hello = Arc::new(Mutex::new("downloaded\n".to_string()));
    let port = serve(Arc::clone(&hello), archive());
    let base = format!("http://127.0.0.1:{port}");
    let dockerfile = format!(
        "FROM busybox\nADD {base}/files/hello.txt /dl/\nADD {base}/files/arch.tar /dl/\nADD {base}/redirect /renamed.txt\n"
    );
    let ctx = context(&d, &[("Dockerfile", &dockerfile)]);
    let first = docker_build(&d, &ctx, &["--network", "none", "-t", "url:1"]);
    first.ok();
    let sh = |image: &str, cmd: &str| {
        let o = d.docker(&["run", "--rm", "--network", "none", image, "sh", "-c", cmd]);
        o.ok().stdout.clone()
    };
    assert_eq!(
        sh(
            "url:1",
            "cat /dl/hello.txt; stat -c '%a %Y' /dl/hello.txt; ls /dl"
        ),
        "downloaded\n600 1445412480\narch.tar\nhello.txt\n"
    );
    assert_eq!(sh("url:1", "cat /renamed.txt"), "downloaded\n");
    let hist = d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "url:1",
    ]);
    // Each single download is recorded with its bare checksum, as Docker records it.
    let bare = hist
        .ok()
        .stdout
        .lines()
        .filter(|l| {
            let rest = l.strip_prefix("/bin/sh -c #(nop) ADD ").unwrap_or("");
            rest.len() > 64 && rest[..64].bytes().all(|b| b.is_ascii_hexdigit())
        })
        .count();
    assert_eq!(bare, 3, "{hist}");

    // Same bytes: every step cached. New bytes: the steps that fetch them rerun.
    let again = docker_build(&d, &ctx, &["--network", "none", "-t", "url:2"]);
    assert_eq!(
        again.ok().stdout.matches(" ---> Using cache").count(),
        3,
        "{again}"
    );
    *hello.lock().unwrap() = "changed\n".to_string();
    let changed = docker_build(&d, &ctx, &["--network", "none", "-t", "url:3"]);
    assert_eq!(
        changed.ok().stdout.matches(" ---> Using cache").count(),
        0,
        "{changed}"
    );
    assert_eq!(
        sh("url:3", "cat /dl/hello.txt /renamed.txt"),
        "changed\nchanged\n"
    );

    // A missing file fails the build with its status; COPY takes no URL.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nADD {base}/nope /x\n"),
    )
    .unwrap();
    let missing = docker_build(&d, &ctx, &["--network", "none", "-t", "url:4"]);
    assert_ne!(missing.code, 0, "{missing}");
    assert!(
        missing.stderr.contains(&format!(
            "ADD failed: failed to GET {base}/nope with status 404 Not Found: no"
        )),
        "{missing}"
    );
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nCOPY {base}/files/hello.txt /x\n"),
    )
    .unwrap();
    let copy = docker_build(&d, &ctx, &["--network", "none", "-t", "url:5"]);
    assert_ne!(copy.code, 0, "{copy}");
    assert!(
        copy.stderr
            .contains("COPY failed: source can't be a URL for COPY"),
        "{copy}"
    );
    let tags = d.docker(&["images", "-q", "url:4"]);
    assert_eq!(tags.ok().stdout.trim(), "");
    assert_eq!(d.docker(&["images", "-q", "url:5"]).ok().stdout.trim(), "");
}
