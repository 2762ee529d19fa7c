//! Reproducible builds: with SOURCE_DATE_EPOCH (a build arg, or `estiba build`'s environment)
//! two uncached builds of the same input give the same image ID, every layer mtime is clamped
//! and `created` comes from the epoch; a bad epoch is refused.

use estiba_e2e::{
    build::context, build::docker_build, daemon_with_busybox, run_command, Cli, Daemon,
};

const EPOCH: &str = "1700000000";
const EPOCH_TIME: &str = "2023-11-14T22:13:20Z";

fn image_id(d: &Daemon, name: &str) -> String {
    d.docker(&["image", "inspect", "--format", "{{.Id}}", name])
        .ok()
        .stdout
        .trim()
        .to_string()
}

/// Every entry (path, mtime) of every layer of `image`, through `docker save`.
fn layer_entries(d: &Daemon, image: &str) -> Vec<(String, u64)> {
    let mut entries = Vec::new();
    for bytes in estiba_e2e::build::saved_layers(d, image).0 {
        let mut inner = tar::Archive::new(&bytes[..]);
        for le in inner.entries().unwrap() {
            let le = le.unwrap();
            entries.push((
                le.path().unwrap().display().to_string(),
                le.header().mtime().unwrap(),
            ));
        }
    }
    entries
}

const DOCKERFILE: &str = "FROM busybox\nWORKDIR /app\nCOPY . /app/src/\nRUN mkdir -p /out/d && echo built > /out/d/f && ln -s f /out/d/l && touch /out/new\nENV A=b\n";

#[test]
fn two_epoch_builds_give_the_same_image() {
    let d = daemon_with_busybox();
    let ctx = context(
        &d,
        &[("Dockerfile", DOCKERFILE), ("a.txt", "a"), ("sub/b", "b")],
    );
    let arg = format!("SOURCE_DATE_EPOCH={EPOCH}");
    docker_build(&d, &ctx, &["--no-cache", "--build-arg", &arg, "-t", "r:1"]).ok();
    let first = image_id(&d, "r:1");
    // Touch the context so that its mtimes change too; only content counts.
    std::fs::write(ctx.join("a.txt"), "a").unwrap();
    docker_build(&d, &ctx, &["--no-cache", "--build-arg", &arg, "-t", "r:2"]).ok();
    assert_eq!(image_id(&d, "r:2"), first);

    // `estiba build` takes the epoch from its environment: the same image again.
    let mut cmd = d.command(
        Cli::Estiba,
        &[
            "build",
            "--no-cache",
            "-q",
            "-t",
            "r:3",
            ctx.to_str().unwrap(),
        ],
    );
    cmd.env("SOURCE_DATE_EPOCH", EPOCH);
    let out = run_command(cmd, None);
    out.ok();
    assert!(!out.stdout.contains("were not consumed"), "{out}");
    assert_eq!(image_id(&d, "r:3"), first);

    let created = d
        .docker(&["image", "inspect", "--format", "{{.Created}}", "r:1"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_eq!(created, EPOCH_TIME);
    let history = d
        .docker(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedAt}}|{{.CreatedBy}}",
            "r:1",
        ])
        .ok()
        .stdout
        .clone();
    // The first four lines are the build's steps (newest first), all at the epoch.
    for line in history.lines().take(4) {
        assert!(line.starts_with("2023-11-14T22:13:20"), "{history}");
    }

    let entries = layer_entries(&d, "r:1");
    let limit: u64 = EPOCH.parse().unwrap();
    for want in [
        "out/d/f",
        "out/d/l",
        "out/new",
        "app/src/a.txt",
        "app/src/sub/b",
    ] {
        assert!(
            entries.iter().any(|(p, _)| p == want),
            "{want}: {entries:?}"
        );
    }
    // The busybox layer keeps its own times; everything the build wrote is clamped.
    for (p, mtime) in &entries {
        if p.starts_with("out") || p.starts_with("app") {
            assert!(*mtime <= limit, "{p} has mtime {mtime}");
        }
    }

    // Without the epoch, the build differs (its times are now).
    docker_build(&d, &ctx, &["--no-cache", "-t", "r:4"]).ok();
    assert_ne!(image_id(&d, "r:4"), first);
}

#[test]
fn a_bad_epoch_is_refused() {
    let d = daemon_with_busybox();
    let ctx = context(&d, &[("Dockerfile", "FROM busybox\nRUN true\n")]);
    let before = d.image_ids();
    let out = docker_build(
        &d,
        &ctx,
        &["--build-arg", "SOURCE_DATE_EPOCH=soon", "-t", "bad"],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("invalid SOURCE_DATE_EPOCH: soon"),
        "{out}"
    );
    assert_eq!(d.image_ids(), before);
}
