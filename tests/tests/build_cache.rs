//! The build cache, multi-stage builds and `.dockerignore`, through the real docker CLI over
//! the classic protocol: a rebuild reuses every step without starting a container, a changed
//! file reruns only the steps from its COPY on, a changed build arg reruns the RUN steps after
//! its ARG, `--no-cache` reruns everything; `--target` builds only the stages it needs.

use estiba_e2e::{
    build::context, build::docker_build, daemon_with_busybox, run_command, Cli, Daemon,
};

/// The steps (by number) that printed " ---> Using cache".
fn cached_steps(out: &str) -> Vec<usize> {
    let mut step = 0;
    let mut cached = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("Step ") {
            step = rest.split('/').next().unwrap().parse().unwrap();
        } else if line == " ---> Using cache" {
            cached.push(step);
        }
    }
    cached
}

fn image_id(d: &Daemon, name: &str) -> String {
    let out = d.docker(&["image", "inspect", "--format", "{{.Id}}", name]);
    out.ok().stdout.trim().to_string()
}

const CACHED: &str = "FROM busybox\nARG V=1\nRUN echo one > /one\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy\nENV X=y\n";

#[test]
fn rebuild_hits_the_cache_and_a_changed_file_reruns_later_steps() {
    let d = daemon_with_busybox();
    let ctx = context(&d, &[("Dockerfile", CACHED), ("app.txt", "v1\n")]);
    let first = docker_build(&d, &ctx, &["-t", "c:1"]);
    assert!(first.ok().stdout.contains(" ---> Running in "), "{first}");
    assert_eq!(cached_steps(&first.stdout), Vec::<usize>::new(), "{first}");
    let id1 = image_id(&d, "c:1");

    let again = docker_build(&d, &ctx, &["-t", "c:2"]);
    assert_eq!(
        cached_steps(&again.ok().stdout),
        vec![2, 3, 4, 5, 6],
        "{again}"
    );
    assert!(
        !again.stdout.contains("Running in"),
        "no container on a cached rebuild: {again}"
    );
    assert_eq!(image_id(&d, "c:2"), id1);
    assert_eq!(d.docker(&["ps", "-aq"]).ok().stdout, "");

    // Same content, new mtime: still cached. New content: COPY and later rerun.
    std::fs::write(ctx.join("app.txt"), "v1\n").unwrap();
    let touched = docker_build(&d, &ctx, &["-t", "c:3"]);
    assert_eq!(
        cached_steps(&touched.ok().stdout),
        vec![2, 3, 4, 5, 6],
        "{touched}"
    );
    std::fs::write(ctx.join("app.txt"), "v2\n").unwrap();
    let changed = docker_build(&d, &ctx, &["-t", "c:4"]);
    assert_eq!(cached_steps(&changed.ok().stdout), vec![2, 3], "{changed}");
    let out = d.docker(&["run", "--rm", "c:4", "cat", "/copy"]);
    assert_eq!(out.ok().stdout, "v2\n");

    // A different build arg reruns the first RUN after its ARG (and so all later steps).
    let arg = docker_build(&d, &ctx, &["--build-arg", "V=2", "-t", "c:5"]);
    assert_eq!(cached_steps(&arg.ok().stdout), vec![2], "{arg}");
    let hist = d.docker(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "c:5"]);
    assert!(
        hist.ok()
            .stdout
            .contains("|1 V=2 /bin/sh -c echo one > /one"),
        "{hist}"
    );

    let fresh = docker_build(&d, &ctx, &["--no-cache", "-t", "c:6"]);
    assert_eq!(
        cached_steps(&fresh.ok().stdout),
        Vec::<usize>::new(),
        "{fresh}"
    );
}

const STAGES: &str = r#"FROM busybox AS build
RUN echo built > /artifact
FROM busybox AS broken
RUN exit 7
FROM busybox AS final
COPY --from=build /artifact /app/artifact
CMD ["cat", "/app/artifact"]
"#;

#[test]
fn multi_stage_builds_only_what_the_target_needs() {
    let d = daemon_with_busybox();
    let ctx = context(&d, &[("Dockerfile", STAGES)]);
    let out = docker_build(&d, &ctx, &["-t", "ms"]);
    out.ok();
    assert!(
        !out.stdout.contains("exit 7"),
        "the broken stage is not needed: {out}"
    );
    assert!(out.stdout.contains("Step 5/5 : CMD"), "{out}");
    assert_eq!(d.docker(&["run", "--rm", "ms"]).ok().stdout, "built\n");

    let out = docker_build(&d, &ctx, &["--target", "build", "-t", "ms-build"]);
    out.ok();
    assert!(out.stdout.contains("Step 2/2 : RUN echo built"), "{out}");
    let run = d.docker(&["run", "--rm", "ms-build", "cat", "/artifact"]);
    assert_eq!(run.ok().stdout, "built\n");

    let out = docker_build(&d, &ctx, &["--target", "broken", "-t", "ms-broken"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("returned a non-zero code: 7"), "{out}");
    let out = docker_build(&d, &ctx, &["--target", "nope"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("failed to reach build target nope in Dockerfile"),
        "{out}"
    );
}

#[test]
fn dockerignore_with_an_exception() {
    let d = daemon_with_busybox();
    let ctx = context(
        &d,
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY . /ctx\nRUN find /ctx -type f | sort\n",
            ),
            (".dockerignore", "*.md\n!README.md\nsecrets\n"),
            ("README.md", "r"),
            ("NOTES.md", "n"),
            ("secrets/key", "k"),
            ("src/main.c", "m"),
        ],
    );
    let out = docker_build(&d, &ctx, &["-t", "ign"]);
    let listing = out.ok().stdout.clone();
    assert!(listing.contains("/ctx/README.md\n"), "{out}");
    assert!(listing.contains("/ctx/src/main.c\n"), "{out}");
    assert!(!listing.contains("NOTES.md"), "{out}");
    assert!(!listing.contains("secrets"), "{out}");
}

#[test]
fn scratch_stage_holds_only_the_copied_file() {
    let d = daemon_with_busybox();
    let ctx = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox AS build\nRUN echo built > /artifact\nFROM scratch\nCOPY --from=build /artifact /artifact\nCMD [\"/artifact\"]\n",
        )],
    );
    docker_build(&d, &ctx, &["-t", "scr"]).ok();
    let layers = d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{len .RootFS.Layers}}",
        "scr",
    ]);
    assert_eq!(layers.ok().stdout, "1\n");
    d.docker(&["create", "--name", "scr-c", "scr"]).ok();
    let mut cmd = d.command(Cli::Docker, &["cp", "scr-c:/artifact", "-"]);
    cmd.env("DOCKER_BUILDKIT", "0");
    let out = run_command(cmd, None);
    assert!(out.ok().stdout.contains("built\n"), "{out}");
    // As docker: the `build` stage's image stays as one dangling image; the empty base a
    // scratch stage starts from is an intermediate image and not listed.
    let images = d.docker(&["images", "--format", "{{.Repository}}"]);
    let mut names = images.ok().lines();
    names.sort();
    assert_eq!(names, ["<none>", "busybox", "scr"], "{images}");
}

#[test]
fn a_rebuild_under_the_same_tag_keeps_it_and_reports_the_tag() {
    let d = daemon_with_busybox();
    let ctx = context(&d, &[("Dockerfile", "FROM busybox\nENV A=1\n")]);
    docker_build(&d, &ctx, &["-t", "same:1"]).ok();
    let id = image_id(&d, "same:1");
    let again = docker_build(&d, &ctx, &["-t", "same:1"]);
    assert!(
        again.ok().stdout.contains("Successfully tagged same:1\n"),
        "{again}"
    );
    assert_eq!(image_id(&d, "same:1"), id);
    // The unchanged tag is not rewritten, but each build still reports it, as Docker does.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .saturating_add(1)
        .to_string();
    let events = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=image",
        "--filter",
        "event=tag",
        "--format",
        "{{.Actor.ID}} {{.Actor.Attributes.name}}",
    ]);
    let want = format!("{id} same:1");
    let lines = events.ok().lines();
    assert_eq!(lines.iter().filter(|l| **l == want).count(), 2, "{events}");
}
