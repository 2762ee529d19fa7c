//! `--cache-from`: with the step cache pruned, a build that names an earlier image as cache
//! source takes every step from it (the last step is the image itself), a changed step and
//! those after it run, and without the flag nothing hits.

use estiba_e2e::{build::context, build::docker_build, daemon_with_busybox, Daemon};

fn id(d: &Daemon, name: &str) -> String {
    d.docker(&["image", "inspect", "-f", "{{.Id}}", name])
        .ok()
        .stdout
        .trim()
        .to_string()
}

const DOCKERFILE: &str =
    "FROM busybox\nRUN echo one > /one\nENV X=1\nCOPY f /f\nRUN echo two > /two\n";

#[test]
fn cache_from_an_image_serves_the_steps() {
    let d = daemon_with_busybox();
    let ctx = context(&d, &[("Dockerfile", DOCKERFILE), ("f", "content\n")]);
    docker_build(&d, &ctx, &["-t", "app:1"]).ok();
    d.docker(&["builder", "prune", "-f"]).ok();

    let out = docker_build(&d, &ctx, &["--cache-from", "app:1", "-t", "app:2"]);
    out.ok();
    assert_eq!(out.stdout.matches(" ---> Using cache").count(), 4, "{out}");
    assert!(!out.stdout.contains("Running in"), "{out}");
    assert_eq!(id(&d, "app:2"), id(&d, "app:1"));
    let two = d
        .docker(&["run", "--rm", "app:2", "cat", "/one", "/f", "/two"])
        .ok()
        .stdout
        .clone();
    assert_eq!(two, "one\ncontent\ntwo\n");

    // A changed last step: the first three come from app:1, the last runs.
    d.docker(&["builder", "prune", "-f"]).ok();
    let changed = DOCKERFILE.replace("echo two", "echo 2");
    std::fs::write(ctx.join("Dockerfile"), changed).unwrap();
    let out = docker_build(&d, &ctx, &["--cache-from", "app:1", "-t", "app:3"]);
    out.ok();
    assert_eq!(out.stdout.matches(" ---> Using cache").count(), 3, "{out}");
    assert_eq!(out.stdout.matches("Running in").count(), 1, "{out}");
    let three = d
        .docker(&["run", "--rm", "app:3", "cat", "/one", "/two"])
        .ok()
        .stdout
        .clone();
    assert_eq!(three, "one\n2\n");

    // Without --cache-from (and with an unknown cache source) nothing hits.
    d.docker(&["builder", "prune", "-f"]).ok();
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    let out = docker_build(&d, &ctx, &["--cache-from", "nope:1", "-t", "app:4"]);
    out.ok();
    assert!(!out.stdout.contains("Using cache"), "{out}");
}

const STAGES: &str =
    "FROM busybox AS build\nRUN echo x > /sum\nFROM busybox\nCOPY --from=build /sum /sum\nENV Y=1\n";

#[test]
fn copy_from_a_stage_is_recorded_as_docker_does_and_served_by_cache_from() {
    let d = daemon_with_busybox();
    let ctx = context(&d, &[("Dockerfile", STAGES)]);
    docker_build(&d, &ctx, &["-t", "final:1"]).ok();
    // History: `COPY file:<checksum> in /sum`, as Docker's classic builder records it.
    let hist = d.docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "final:1",
    ]);
    let copy_line = hist
        .ok()
        .stdout
        .lines()
        .find(|l| l.contains(" COPY "))
        .unwrap_or_default()
        .to_string();
    assert!(
        copy_line.starts_with("/bin/sh -c #(nop) COPY file:") && copy_line.ends_with(" in /sum "),
        "{hist}"
    );

    // With the step cache gone, the build stage reruns (final:1 does not hold its steps),
    // and the final stage's COPY --from and ENV come from final:1.
    d.docker(&["builder", "prune", "-f"]).ok();
    let out = docker_build(&d, &ctx, &["--cache-from", "final:1", "-t", "final:2"]);
    out.ok();
    assert_eq!(out.stdout.matches("Running in").count(), 1, "{out}");
    assert_eq!(out.stdout.matches(" ---> Using cache").count(), 2, "{out}");
    assert_eq!(id(&d, "final:2"), id(&d, "final:1"));
}
