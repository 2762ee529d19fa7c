//! Here-documents (BuildKit's syntax) through the classic protocol: `RUN <<EOF`, `<<-`, a
//! `#!` script, heredocs inside a command (several, quoted and not), `COPY <<EOF` with and
//! without variable expansion, and a heredoc that never ends.

use estiba_e2e::{build::context, build::docker_build, daemon_with_busybox, Daemon};

fn cat(d: &Daemon, image: &str, path: &str) -> String {
    d.docker(&["run", "--rm", image, "cat", path])
        .ok()
        .stdout
        .clone()
}

const DOCKERFILE: &str = r#"FROM busybox
ARG WHO=world
ENV GREETING=hello
RUN <<EOF
echo first > /a
echo second >> /a
EOF
RUN <<-EOT
	echo tabbed > /b
	EOT
RUN <<SCRIPT
#!/bin/sh
echo "script as $0" > /c
SCRIPT
RUN cat <<ONE >/d && cat <<'TWO' >>/d
one $GREETING
ONE
two $GREETING
TWO
COPY <<EOF /etc/greeting
$GREETING "$WHO" \$HOME
EOF
COPY <<'RAW' <<COOKED /files/
raw $GREETING
RAW
cooked $GREETING
COOKED
CMD ["sh"]
"#;

#[test]
fn heredocs_in_run_and_copy() {
    let d = daemon_with_busybox();
    let ctx = context(&d, &[("Dockerfile", DOCKERFILE)]);
    let out = docker_build(&d, &ctx, &["-t", "h:1"]);
    out.ok();
    assert!(out.stdout.contains("Step 4/10 : RUN <<EOF\n"), "{out}");
    assert_eq!(cat(&d, "h:1", "/a"), "first\nsecond\n");
    assert_eq!(cat(&d, "h:1", "/b"), "tabbed\n");
    assert_eq!(cat(&d, "h:1", "/c"), "script as /dev/pipes/SCRIPT\n");
    assert_eq!(cat(&d, "h:1", "/d"), "one hello\ntwo $GREETING\n");
    assert_eq!(cat(&d, "h:1", "/etc/greeting"), "hello \"world\" $HOME\n");
    assert_eq!(cat(&d, "h:1", "/files/RAW"), "raw $GREETING\n");
    assert_eq!(cat(&d, "h:1", "/files/COOKED"), "cooked hello\n");
    // The helper files never reach the image, and a rebuild is all cache hits.
    let ls = d
        .docker(&["run", "--rm", "h:1", "ls", "-a", "/"])
        .ok()
        .stdout
        .clone();
    assert!(!ls.contains(".estiba-heredoc"), "{ls}");
    let again = docker_build(&d, &ctx, &["-t", "h:2"]);
    again.ok();
    assert_eq!(again.stdout.matches("Using cache").count(), 9, "{again}");

    // A changed heredoc body misses the cache for that step.
    let changed = DOCKERFILE.replace("echo second", "echo 2nd");
    std::fs::write(ctx.join("Dockerfile"), changed).unwrap();
    docker_build(&d, &ctx, &["-t", "h:3"]).ok();
    assert_eq!(cat(&d, "h:3", "/a"), "first\n2nd\n");
}

#[test]
fn an_unterminated_heredoc_names_its_line() {
    let d = daemon_with_busybox();
    let ctx = context(
        &d,
        &[("Dockerfile", "FROM busybox\n\nRUN <<EOF\necho never\n")],
    );
    let out = docker_build(&d, &ctx, &["-t", "h:bad"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("dockerfile parse error line 3: unterminated heredoc EOF"),
        "{out}"
    );
}
