//! `docker build` end to end with the real docker CLI over the classic protocol
//! (DOCKER_BUILDKIT=0): every common instruction, docker's progress output, history, a failing
//! RUN, a missing COPY source, a syntax error, and a context that escapes itself.

use estiba_e2e::{
    build::context, build::docker_build, daemon_with_busybox, run_command, Cli, Daemon,
};

fn inspect(d: &Daemon, image: &str, format: &str) -> String {
    d.docker(&["image", "inspect", "--format", format, image])
        .ok()
        .stdout
        .trim()
        .to_string()
}

const EVERY: &str = r#"FROM busybox
ARG GREETING=hello
ENV APP_HOME=/srv/app \
    MODE=prod
WORKDIR $APP_HOME
COPY hello.txt ./
COPY dir/ /data/
RUN echo "$GREETING from $(pwd)" > out.txt && cat hello.txt
LABEL org.example.name="demo app" version=1
EXPOSE 8080 53/udp
USER 1000:1000
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /srv/app/out.txt"]
"#;

#[test]
fn every_instruction_with_docker_output_and_history() {
    let d = daemon_with_busybox();
    let ctx = context(
        &d,
        &[
            ("Dockerfile", EVERY),
            ("hello.txt", "hi from the context\n"),
            ("dir/a", "A"),
            ("dir/sub/b", "B"),
        ],
    );
    let out = docker_build(&d, &ctx, &["-t", "demo:1", "-t", "demo2"]);
    out.ok();
    let text = &out.stdout;
    assert!(text.contains("Step 1/12 : FROM busybox\n"), "{out}");
    assert!(text.contains("Step 6/12 : COPY dir/ /data/\n"), "{out}");
    assert!(text.contains(" ---> Running in "), "{out}");
    assert!(text.contains("hi from the context\n"), "{out}");
    assert!(text.contains("Successfully tagged demo:1\n"), "{out}");
    assert!(text.contains("Successfully tagged demo2:latest\n"), "{out}");
    let built = text
        .lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .expect("Successfully built line");
    assert_eq!(built.len(), 12);
    let id = inspect(&d, "demo:1", "{{.Id}}");
    assert!(id.starts_with(&format!("sha256:{built}")), "{id}");

    assert_eq!(inspect(&d, "demo:1", "{{.Config.WorkingDir}}"), "/srv/app");
    assert_eq!(inspect(&d, "demo:1", "{{.Config.User}}"), "1000:1000");
    assert_eq!(
        inspect(&d, "demo:1", "{{json .Config.Entrypoint}}"),
        r#"["/bin/sh","-c"]"#
    );
    assert_eq!(
        inspect(&d, "demo:1", "{{json .Config.Cmd}}"),
        r#"["cat /srv/app/out.txt"]"#
    );
    assert_eq!(
        inspect(
            &d,
            "demo:1",
            "{{index .Config.Labels \"org.example.name\"}}"
        ),
        "demo app"
    );
    assert_eq!(
        inspect(&d, "demo:1", "{{json .Config.ExposedPorts}}"),
        r#"{"53/udp":{},"8080/tcp":{}}"#
    );
    let env = inspect(&d, "demo:1", "{{json .Config.Env}}");
    assert!(
        env.contains("\"APP_HOME=/srv/app\"") && env.contains("\"MODE=prod\""),
        "{env}"
    );
    assert!(
        !env.contains("GREETING"),
        "build args are not persisted: {env}"
    );

    // The image runs: the RUN step saw the build arg and the WORKDIR.
    let run = d.docker(&["run", "--rm", "demo:1"]);
    assert_eq!(run.ok().stdout, "hello from /srv/app\n");
    let run = d.docker(&[
        "run",
        "--rm",
        "demo:1",
        "cat /data/a /data/sub/b /srv/app/hello.txt",
    ]);
    assert_eq!(run.ok().stdout, "AB".to_string() + "hi from the context\n");

    // One history entry per instruction after FROM, newest first, on top of busybox's.
    let base = d.docker(&["history", "-q", "busybox"]).ok().lines().len();
    let hist = d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "demo:1",
    ]);
    let lines = hist.ok().lines();
    assert_eq!(lines.len(), base + 11, "{hist}");
    assert!(lines[0].contains("CMD"), "{hist}");
    assert!(
        lines[5].starts_with("|1 GREETING=hello /bin/sh -c echo"),
        "{hist}"
    );
    assert!(lines[10].contains("ARG GREETING=hello"), "{hist}");
    // As dockerd 20.10 records them: EXPOSE's ports as written and sorted, COPY's label,
    // checksum and destination as written.
    assert_eq!(lines[3], "/bin/sh -c #(nop)  EXPOSE 53/udp 8080", "{hist}");
    assert!(
        lines[7].starts_with("/bin/sh -c #(nop) COPY file:") && lines[7].ends_with(" in ./ "),
        "{hist}"
    );
    assert!(
        lines[6].starts_with("/bin/sh -c #(nop) COPY dir:") && lines[6].ends_with(" in /data/ "),
        "{hist}"
    );
}

#[test]
fn failing_run_reports_step_and_code_and_tags_nothing() {
    let d = daemon_with_busybox();
    let ctx = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo before\nRUN exit 3\nRUN echo never\n",
        )],
    );
    let out = docker_build(&d, &ctx, &["-t", "broken"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stdout.contains("Step 3/4 : RUN exit 3\n"), "{out}");
    assert!(!out.stdout.contains("never"), "{out}");
    assert!(
        out.stderr
            .contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
        "{out}"
    );
    assert!(!d.image_tags().iter().any(|t| t.starts_with("broken")));
}

#[test]
fn bad_dockerfiles_and_contexts_are_refused() {
    let d = daemon_with_busybox();
    let ctx = context(&d, &[("Dockerfile", "FROM busybox\n\nFOO bar\n")]);
    let out = docker_build(&d, &ctx, &["-t", "x"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("dockerfile parse error line 3: unknown instruction: FOO"),
        "{out}"
    );
    // An option the instruction does not take is a parse error too, before any step runs.
    let ctx = context(&d, &[("Dockerfile", "FROM busybox\nCOPY --bogus a /a\n")]);
    let out = docker_build(&d, &ctx, &["-t", "x"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("dockerfile parse error line 2: Unknown flag: bogus"),
        "{out}"
    );
    assert!(!out.stdout.contains("Step 1/"), "{out}");
    let ctx = context(&d, &[("Dockerfile", "FROM busybox\nCOPY missing.txt /x\n")]);
    let out = docker_build(&d, &ctx, &["-t", "x"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains(
            "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: file does not exist"
        ),
        "{out}"
    );
    assert!(!d.image_tags().iter().any(|t| t.starts_with("x:")));

    // A context tar with a ../ entry, straight over the API.
    let mut tar = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar);
        let df = b"FROM busybox\n";
        let mut h = tar::Header::new_gnu();
        h.set_size(df.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
        let mut h = tar::Header::new_old();
        let name = b"../escape";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        b.finish().unwrap();
    }
    let resp = d.api("POST", "/build?t=esc", Some(&tar));
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(
        resp.text().contains("outside the context"),
        "{}",
        resp.text()
    );
    assert!(!d.dir().join("escape").exists());
    assert!(!d.image_tags().iter().any(|t| t.starts_with("esc")));
}

#[test]
fn quiet_build_and_dockerfile_on_stdin() {
    let d = daemon_with_busybox();
    let mut cmd = d.command(Cli::Docker, &["build", "-q", "-t", "fromstdin", "-"]);
    cmd.env("DOCKER_BUILDKIT", "0");
    let out = run_command(
        cmd,
        Some(b"FROM busybox\nLABEL via=stdin\nRUN echo noisy\n".to_vec()),
    );
    let id = inspect(&d, "fromstdin", "{{.Id}}");
    assert_eq!(out.ok().stdout, format!("{id}\n"), "-q prints only the ID");
    assert_eq!(inspect(&d, "fromstdin", "{{.Config.Labels.via}}"), "stdin");
}
