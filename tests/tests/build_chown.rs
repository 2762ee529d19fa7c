//! COPY --chown with user and group names, resolved through the image's /etc/passwd and
//! /etc/group as Docker's classic builder does (output compared with dockerd 20.10), and a
//! name the image lacks.

use estiba_e2e::{build::context, build::docker_build, daemon_with_busybox};

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
