//! The build context as the builder reads it: symlinks resolve inside the context (never to
//! the daemon host's files), hard links the docker CLI sends as link entries copy their
//! target's content, and a context whose entry sits under a symlink is refused with nothing
//! built.

use std::os::unix::fs::symlink;

use estiba_e2e::{build::context, build::docker_build, daemon_with_busybox, run_command, Cli};

#[test]
fn symlinks_resolve_inside_the_context_and_hard_links_copy_content() {
    let d = daemon_with_busybox();
    let ctx = context(
        &d,
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY hostetc/hostname /h\nCOPY twin /twin\nCOPY sub/ /sub/\n",
            ),
            ("etc/hostname", "from the context\n"),
            ("original", "shared bytes\n"),
            ("sub/f", "f\n"),
        ],
    );
    // An absolute symlink: inside the context it names the context's etc, not the host's.
    symlink("/etc", ctx.join("hostetc")).unwrap();
    std::fs::hard_link(ctx.join("original"), ctx.join("twin")).unwrap();
    symlink("../../../../../etc/passwd", ctx.join("sub/up")).unwrap();
    let out = docker_build(&d, &ctx, &["-t", "links:1"]);
    out.ok();
    let run = |cmd: &str| {
        let o = d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "links:1",
            "sh",
            "-c",
            cmd,
        ]);
        o.ok().stdout.clone()
    };
    assert_eq!(run("cat /h"), "from the context\n");
    assert_eq!(run("cat /twin"), "shared bytes\n");
    // A symlink inside a copied directory is copied as the symlink it is.
    assert_eq!(run("readlink /sub/up"), "../../../../../etc/passwd\n");

    // A path through a symlink that leaves the context is clamped to its root, where there is
    // no such file: the host's /etc/passwd is never read.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY hostetc/passwd /p\n",
    )
    .unwrap();
    let failed = docker_build(&d, &ctx, &["-t", "links:2"]);
    assert_ne!(failed.code, 0, "{failed}");
    assert!(
        failed
            .stderr
            .contains("file not found in build context or excluded by .dockerignore"),
        "{failed}"
    );
    let tags = d.docker(&["images", "-q", "links:2"]);
    assert_eq!(tags.ok().stdout.trim(), "", "nothing tagged");
}

#[test]
fn an_entry_under_a_symlink_refuses_the_context() {
    let d = daemon_with_busybox();
    // A hand-made tar: `link -> /tmp`, then `link/planted` (which unpacking would write
    // through the link, outside the context).
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    tar.append_link(&mut h, "link", "/tmp").unwrap();
    for (name, body) in [
        ("link/planted", &b"x"[..]),
        ("Dockerfile", &b"FROM busybox\n"[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, body).unwrap();
    }
    let body = tar.into_inner().unwrap();
    let resp = d.api("POST", "/build?t=planted:1", Some(&body));
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.text().contains("not a directory"), "{}", resp.text());
    assert!(!std::path::Path::new("/tmp/planted").exists());
    let tags = d.docker(&["images", "-q", "planted:1"]);
    assert_eq!(tags.ok().stdout.trim(), "", "nothing built");
}

/// Byte `i` of the big test file: a pattern that never repeats at the offsets checked.
fn pattern(i: usize) -> u8 {
    ((i * 7 + i / 251) % 256) as u8
}

#[test]
fn a_large_file_copies_byte_for_byte() {
    let d = daemon_with_busybox();
    let ctx = context(
        &d,
        &[("Dockerfile", "FROM busybox\nCOPY big.bin /big.bin\n")],
    );
    // Past the heap budget for one file: it takes the mapped path.
    let size = 3 * 1024 * 1024 + 17;
    let bytes: Vec<u8> = (0..size).map(pattern).collect();
    std::fs::write(ctx.join("big.bin"), &bytes).unwrap();
    docker_build(&d, &ctx, &["-t", "big:1"]).ok();
    let mut script = String::from("wc -c < /big.bin;");
    let offsets = [0, 4095, 1 << 20, (2 << 20) + 3, size - 8];
    for off in offsets {
        script.push_str(&format!(
            " dd if=/big.bin bs=1 skip={off} count=8 2>/dev/null | od -An -tu1;"
        ));
    }
    let out = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "big:1",
        "sh",
        "-c",
        &script,
    ]);
    let mut want = format!("{size}\n");
    for off in offsets {
        let row: Vec<String> = (off..off + 8).map(|i| pattern(i).to_string()).collect();
        want.push_str(&row.join(" "));
        want.push('\n');
    }
    let got: Vec<String> = out
        .ok()
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(got.join("\n") + "\n", want);
}

#[test]
fn a_gzip_context_on_stdin_builds() {
    let d = daemon_with_busybox();
    let mut tar = tar::Builder::new(Vec::new());
    for (name, body) in [
        ("Dockerfile", &b"FROM busybox\nCOPY sub/f.txt /f.txt\n"[..]),
        ("sub/f.txt", &b"from a gzip context\n"[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, body).unwrap();
    }
    let plain = tar.into_inner().unwrap();
    let mut gzip = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = gzip.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut input, &plain));
    let gz = gzip.wait_with_output().unwrap().stdout;
    feeder.join().unwrap().unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    // `docker build - < ctx.tar.gz`: the CLI sends the compressed stream as it is.
    let mut cmd = d.command(Cli::Docker, &["build", "-t", "gz:1", "-"]);
    cmd.env("DOCKER_BUILDKIT", "0");
    let out = run_command(cmd, Some(gz));
    out.ok();
    let run = d.docker(&["run", "--rm", "--network", "none", "gz:1", "cat", "/f.txt"]);
    assert_eq!(run.ok().stdout, "from a gzip context\n");
}
