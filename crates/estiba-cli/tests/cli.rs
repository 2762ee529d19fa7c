//! End to end: the `estiba` binary against a real `estibad` (from the workspace's target dir) on a
//! temporary socket and data-root, and against a fake engine that only speaks API 1.41.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use common::{estiba, ok, start_daemon};

fn write_busybox(path: &Path, tags: &[&str]) -> estiba_testimg::TestImage {
    let img = estiba_testimg::busybox()
        .unwrap_or_else(|e| panic!("making busybox: {e}"))
        .with_tags(tags.iter().copied());
    let file =
        std::fs::File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    estiba_testimg::write_archive(&[&img], estiba_testimg::ArchiveOptions::default(), file)
        .unwrap_or_else(|e| panic!("writing archive: {e}"));
    img
}

#[test]
fn image_commands_against_estibad() {
    let d = start_daemon();
    let h = d.host.as_str();
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let tar = work.path().join("busybox.tar");
    let img = write_busybox(&tar, &["busybox:latest"]);
    let tar_s = tar.to_string_lossy().into_owned();

    assert_eq!(
        ok(h, &["load", "-i", &tar_s]),
        "Loaded image: busybox:latest\n"
    );

    // The table: docker's columns, padding and sizes.
    let size = estiba_testimg::human_size(estiba_testimg::docker_layer_size(&img.layers[0]), 3);
    let table = ok(h, &["images"]);
    let mut lines = table.lines();
    let head = lines.next().unwrap_or("");
    assert!(
        head.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED "),
        "{table}"
    );
    assert!(head.ends_with("   SIZE"), "{table}");
    let row = lines
        .next()
        .unwrap_or_else(|| panic!("no image row in {table}"));
    assert!(
        row.starts_with(&format!("busybox      latest    {}   ", img.short_id())),
        "{table}"
    );
    assert!(row.ends_with(&format!("   {size}")), "{table}");
    assert_eq!(lines.next(), None);
    assert_eq!(ok(h, &["images", "-q"]), format!("{}\n", img.short_id()));
    assert_eq!(
        ok(h, &["images", "-q", "--no-trunc"]),
        format!("{}\n", img.id())
    );

    // Inspect: docker's 4-space JSON array; a missing image is reported after what was found.
    let inspect = ok(h, &["image", "inspect", "busybox"]);
    assert!(
        inspect.starts_with("[\n    {\n        \"Id\": \""),
        "{inspect}"
    );
    let parsed: serde_json::Value =
        serde_json::from_str(&inspect).unwrap_or_else(|e| panic!("inspect is not JSON: {e}"));
    assert_eq!(parsed[0]["Id"], img.id().as_str());
    let missing = estiba(h, &["image", "inspect", "busybox", "nope"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stdout.starts_with("[\n    {"), "{}", missing.stdout);
    assert!(
        missing
            .stderr
            .starts_with("Error response from daemon: No such image: nope"),
        "{}",
        missing.stderr
    );
    let not_found = estiba(h, &["inspect", "nope"]);
    assert_eq!(
        (
            not_found.code,
            not_found.stdout.as_str(),
            not_found.stderr.as_str()
        ),
        (1, "[]\n", "Error: No such object: nope\n")
    );

    // Tag, list with several tags, untag; errors do not stop the other names.
    ok(h, &["tag", "busybox", "me/bb:1"]);
    let repos = ok(
        h,
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
    );
    let mut repos: Vec<&str> = repos.lines().collect();
    repos.sort_unstable();
    assert_eq!(
        repos,
        vec![
            format!("busybox:latest {}", img.short_id()),
            format!("me/bb:1 {}", img.short_id())
        ]
    );
    let rmi = estiba(h, &["rmi", "nope", "me/bb:1"]);
    assert_eq!(rmi.code, 1);
    assert_eq!(rmi.stdout, "Untagged: me/bb:1\n");
    assert!(
        rmi.stderr
            .starts_with("Error response from daemon: No such image: nope"),
        "{}",
        rmi.stderr
    );

    let history = ok(h, &["history", "busybox"]);
    assert!(history.starts_with("IMAGE          CREATED"), "{history}");
    assert!(history.contains(&img.short_id()), "{history}");

    let df = ok(h, &["system", "df"]);
    let firsts: Vec<&str> = df
        .lines()
        .map(|l| l.split("  ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        firsts,
        vec![
            "TYPE",
            "Images",
            "Containers",
            "Local Volumes",
            "Build Cache"
        ],
        "{df}"
    );

    // Save, delete, load again: the same image comes back.
    let saved = work.path().join("saved.tar");
    ok(h, &["save", "-o", &saved.to_string_lossy(), "busybox"]);
    let removed = ok(h, &["rmi", "busybox"]);
    assert!(
        removed.starts_with(&format!(
            "Untagged: busybox:latest\nDeleted: {}\n",
            img.id()
        )),
        "{removed}"
    );
    assert_eq!(ok(h, &["images", "-q"]), "");
    assert_eq!(
        ok(h, &["load", "-i", &saved.to_string_lossy()]),
        "Loaded image: busybox:latest\n"
    );
    assert_eq!(
        ok(h, &["images", "-q", "--no-trunc"]),
        format!("{}\n", img.id())
    );

    // Events of what happened above, in docker's line format; the window closes a second ahead.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 2)
    .to_string();
    let events = ok(h, &["events", "--since", "10m", "--until", &until]);
    assert!(
        events
            .lines()
            .any(|l| l.contains(&format!(" image tag {} (name=me/bb:1)", img.id()))),
        "{events}"
    );

    let prune = ok(h, &["image", "prune", "-f"]);
    assert!(prune.ends_with("Total reclaimed space: 0B\n"), "{prune}");
}

#[test]
fn usage_and_connection_errors() {
    let cases: &[(&[&str], i32, &str)] = &[
        (&["images", "--bogus"], 125, "unknown flag: --bogus\n\nUsage:  estiba images [OPTIONS] [REPOSITORY[:TAG]]\n"),
        (&["image", "prune", "-x"], 125, "unknown shorthand flag: 'x' in -x\n"),
        (&["images", "a", "b"], 1, "estiba: 'estiba images' requires at most 1 argument\n"),
        (&["tag", "x"], 1, "estiba: 'estiba tag' requires 2 arguments\n"),
        (&["rmi"], 1, "estiba: 'estiba rmi' requires at least 1 argument\n"),
        (&["bogus"], 1, "estiba: unknown command: estiba bogus\n"),
        (&["images"], 1, "Cannot connect to the estiba daemon at unix:///nonexistent/estiba.sock. Is the estiba daemon running?\n"),
    ];
    for (args, code, stderr_start) in cases {
        let o = estiba("unix:///nonexistent/estiba.sock", args);
        assert_eq!(o.code, *code, "{args:?}: {}", o.stderr);
        assert!(
            o.stderr.starts_with(stderr_start),
            "{args:?}: {:?}",
            o.stderr
        );
        assert_eq!(o.stdout, "", "{args:?}");
    }
}

/// Serves `/_ping` with `Api-Version: 1.41`, then answers one request with an empty image list
/// and reports its request line.
fn fake_engine(listener: UnixListener) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let Ok((stream, _)) = listener.accept() else {
            return seen;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(stream);
        for _ in 0..2 {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                break;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let body = if request_line.contains("/_ping") {
                "OK"
            } else {
                "[]"
            };
            let resp = format!("HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let _ = reader.get_mut().write_all(resp.as_bytes());
            seen.push(request_line.trim_end().to_owned());
        }
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        seen
    })
}

#[test]
fn negotiates_down_to_an_older_engine() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let sock = dir.path().join("old.sock");
    let listener = UnixListener::bind(&sock).unwrap_or_else(|e| panic!("bind: {e}"));
    let server = fake_engine(listener);
    let out = ok(&format!("unix://{}", sock.display()), &["images", "-a"]);
    assert_eq!(out, "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n");
    let seen = server.join().unwrap_or_default();
    assert_eq!(
        seen,
        vec![
            "GET /_ping HTTP/1.1".to_owned(),
            "GET /v1.41/images/json?all=1 HTTP/1.1".to_owned()
        ]
    );
}
