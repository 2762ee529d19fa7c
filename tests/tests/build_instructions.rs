//! The instructions build.rs's Dockerfile leaves out, through the docker CLI: ARG before FROM,
//! SHELL, ADD of a local tar (extracted) and of a plain file, COPY with a wildcard and
//! --chmod, RUN in exec form, `${VAR:-x}` and `${VAR:+x}`, VOLUME, STOPSIGNAL, HEALTHCHECK,
//! each checked in the image config, its files or its history.

use estiba_e2e::{build::context, build::docker_build, daemon_with_busybox, Daemon};

const DOCKERFILE: &str = r#"ARG BASE=busybox
FROM ${BASE} AS base
SHELL ["/bin/sh", "-ec"]
ARG EMPTY
ENV NAME=estiba
ADD files.tar /opt/
ADD plain.txt /plain.txt
COPY --chmod=0600 *.conf /etc/app/
RUN ["/bin/sh", "-c", "echo exec form > /exec"]
RUN echo "${NAME:-none} ${EMPTY:-fallback} ${NAME:+set}${EMPTY:+never}" > /expanded
VOLUME ["/data"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=2 CMD true
"#;

fn inspect(d: &Daemon, format: &str) -> String {
    let out = d.docker(&["image", "inspect", "--format", format, "instr:1"]);
    out.ok().stdout.trim().to_string()
}

fn files_tar() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(9);
    h.set_mode(0o640);
    tar.append_data(&mut h, "in/f.txt", &b"from tar\n"[..])
        .unwrap();
    tar.into_inner().unwrap()
}

#[test]
fn the_remaining_instructions() {
    let d = daemon_with_busybox();
    let ctx = context(
        &d,
        &[
            ("Dockerfile", DOCKERFILE),
            ("plain.txt", "plain\n"),
            ("a.conf", "a\n"),
            ("b.conf", "b\n"),
            ("c.txt", "not copied\n"),
        ],
    );
    std::fs::write(ctx.join("files.tar"), files_tar()).unwrap();
    let out = docker_build(&d, &ctx, &["-t", "instr:1"]);
    out.ok();
    // The ARG before FROM is a step of its own, as in Docker's classic builder.
    assert!(
        out.stdout
            .contains("Step 1/13 : ARG BASE=busybox\nStep 2/13 : FROM ${BASE} AS base\n"),
        "{out}"
    );

    assert_eq!(
        inspect(&d, "{{json .Config.Shell}}"),
        r#"["/bin/sh","-ec"]"#
    );
    assert_eq!(inspect(&d, "{{json .Config.Volumes}}"), r#"{"/data":{}}"#);
    assert_eq!(inspect(&d, "{{.Config.StopSignal}}"), "SIGTERM");
    assert_eq!(
        inspect(&d, "{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD-SHELL","true"],"Interval":5000000000,"Retries":2}"#
    );

    let sh = |cmd: &str| {
        let o = d.docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "instr:1",
            "sh",
            "-c",
            cmd,
        ]);
        o.ok().stdout.clone()
    };
    // ADD extracted the tar (its modes kept) and copied the plain file as it is.
    assert_eq!(
        sh("cat /opt/in/f.txt; stat -c %a /opt/in/f.txt"),
        "from tar\n640\n"
    );
    assert_eq!(sh("cat /plain.txt; ls /opt"), "plain\nin\n");
    // The wildcard took both .conf files and nothing else, with --chmod's mode.
    assert_eq!(
        sh("ls /etc/app; stat -c %a /etc/app/a.conf /etc/app/b.conf"),
        "a.conf\nb.conf\n600\n600\n"
    );
    assert_eq!(sh("cat /exec"), "exec form\n");
    assert_eq!(sh("cat /expanded"), "estiba fallback set\n");

    let hist = d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "instr:1",
    ]);
    let text = hist.ok().stdout.clone();
    // Docker's records: the #(nop) marker after the stage's SHELL, Go's formatting of the
    // VOLUME and SHELL lists and of the health check, `file:` for a single source, `multi:`
    // for several.
    for want in [
        r#"/bin/sh -ec #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" '\x02'}"#,
        "/bin/sh -ec #(nop)  STOPSIGNAL SIGTERM",
        "/bin/sh -ec #(nop)  VOLUME [/data]",
        "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
        "/bin/sh -ec #(nop)  ARG EMPTY",
        "/bin/sh -ec #(nop) ADD file:",
        "/bin/sh -ec #(nop) COPY multi:",
        "/bin/sh -c echo exec form > /exec",
        r#"/bin/sh -ec echo "${NAME:-none} ${EMPTY:-fallback} ${NAME:+set}${EMPTY:+never}" > /expanded"#,
    ] {
        assert!(text.contains(want), "{want} not in:\n{text}");
    }
}
