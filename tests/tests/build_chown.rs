//! COPY --chown with user and group names, resolved through the image's /etc/passwd and
//! /etc/group as Docker's classic builder does (output compared with dockerd 20.10), and a
//! name the image lacks.

use std::path::{Path, PathBuf};

use estiba_e2e::{run_command, testimg, Cli, CmdOutput, Daemon};

fn daemon_with_busybox() -> Daemon {
    let d = Daemon::start();
    let image = testimg::busybox().unwrap_or_else(|e| panic!("busybox image: {e}"));
    d.load(&[&image]);
    d
}

fn context(d: &Daemon, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir().join(format!("ctx-{}", estiba_e2e::token()));
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

fn docker_build(d: &Daemon, ctx: &Path, args: &[&str]) -> CmdOutput {
    let mut full = vec!["build"];
    full.extend_from_slice(args);
    full.push(ctx.to_str().unwrap());
    let mut cmd = d.command(Cli::Docker, &full);
    cmd.env("DOCKER_BUILDKIT", "0");
    run_command(cmd, None)
}

const DOCKERFILE: &str = "FROM busybox
RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1234:' >> /etc/group && echo 'staff2:x:77:' >> /etc/group
COPY --chown=app f /f
COPY --chown=app:staff2 f /g
RUN stat -c '%u:%g' /f /g
";

#[test]
fn chown_names_come_from_the_image() {
    let d = daemon_with_busybox();
    let ctx = context(&d, &[("Dockerfile", DOCKERFILE), ("f", "hi\n")]);
    let out = docker_build(&d, &ctx, &["-t", "own:1"]);
    out.ok();
    assert!(out.stdout.contains("1234:1234\n1234:77\n"), "{out}");

    let bad = context(
        &d,
        &[
            ("Dockerfile", "FROM busybox\nCOPY --chown=nobody2 f /h\n"),
            ("f", "x"),
        ],
    );
    let out = docker_build(&d, &bad, &["-t", "own:bad"]);
    assert_ne!(out.code, 0, "{out}");
    let want = "unable to convert uid/gid chown string to host mapping: can't find uid for user nobody2: no such user: nobody2";
    assert!(out.stderr.contains(want), "{out}");
    assert_ne!(d.docker(&["image", "inspect", "own:bad"]).code, 0);
}
