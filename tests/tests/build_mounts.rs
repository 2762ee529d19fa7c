//! `RUN --mount` on the classic protocol: a secret (from `estiba build --secret`) absent from
//! every layer and from the history, a cache mount kept across builds and removed by
//! `builder prune`, tmpfs and bind mounts (context, stage, rw), and no mount point left in a
//! layer.

use estiba_e2e::{
    build::context, build::docker_build, daemon_with_busybox, run_command, Cli, Daemon,
};

const SECRET: &str = "s3cret-Value-7f1d9c";

/// One saved layer: its entry paths and its raw bytes.
type SavedLayer = (Vec<String>, Vec<u8>);

/// Every layer of `image` (through `docker save`) with its entry paths, and the config.
fn saved(d: &Daemon, image: &str) -> (Vec<SavedLayer>, Vec<u8>) {
    let (layers, config) = estiba_e2e::build::saved_layers(d, image);
    let layers = layers
        .into_iter()
        .map(|bytes| {
            let names = tar::Archive::new(&bytes[..])
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect();
            (names, bytes)
        })
        .collect();
    (layers, config)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

const SECRET_DOCKERFILE: &str = r#"FROM busybox
RUN --mount=type=secret,id=tok grep -q "^s3cret-Value-7f1d" /run/secrets/tok && echo secret-seen && echo kept > /kept
RUN --mount=type=secret,id=tok,target=/etc/tokfile,mode=0440,uid=7,gid=8 stat -c '%a %u %g' /etc/tokfile
RUN --mount=type=secret,id=absent echo optional-skipped
"#;

#[test]
fn a_secret_is_in_no_layer_and_no_history() {
    let d = daemon_with_busybox();
    let ctx = context(&d, &[("Dockerfile", SECRET_DOCKERFILE)]);
    let file = d.dir().join("tok.txt");
    std::fs::write(&file, SECRET).unwrap();
    let src = format!("id=tok,src={}", file.display());
    let out = d.estiba(&[
        "build",
        "--secret",
        &src,
        "-t",
        "sec:1",
        ctx.to_str().unwrap(),
    ]);
    out.ok();
    assert!(out.stdout.contains("secret-seen"), "{out}");
    assert!(out.stdout.contains("440 7 8"), "{out}");
    assert!(out.stdout.contains("optional-skipped"), "{out}");

    let (layers, config) = saved(&d, "sec:1");
    assert!(!contains(&config, SECRET));
    let mut saw_kept = false;
    for (names, bytes) in &layers {
        assert!(!contains(bytes, SECRET), "secret in a layer: {names:?}");
        saw_kept |= names.iter().any(|n| n == "kept");
        for n in names {
            assert!(
                !n.starts_with("run/secrets"),
                "mount point in a layer: {names:?}"
            );
            assert!(n != "etc/tokfile", "mount point in a layer: {names:?}");
        }
    }
    assert!(saw_kept);
    let history = d
        .docker(&["history", "--no-trunc", "sec:1"])
        .ok()
        .stdout
        .clone();
    assert!(!history.contains(SECRET), "{history}");
    assert!(
        history.contains("grep -q \"^s3cret-Value-7f1d\" /run/secrets/tok"),
        "{history}"
    );

    // Built again with `--secret id=tok,env=VAR`: every step comes from the cache (the value is
    // no part of the key).
    let mut cmd = d.command(
        Cli::Estiba,
        &[
            "build",
            "--secret",
            "id=tok,env=TOK_VAR",
            "-t",
            "sec:2",
            ctx.to_str().unwrap(),
        ],
    );
    cmd.env("TOK_VAR", SECRET);
    let again = run_command(cmd, None);
    again.ok();
    assert_eq!(again.stdout.matches("Using cache").count(), 3, "{again}");

    // A required secret that the build lacks fails the step, and nothing is tagged.
    let ctx2 = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=secret,id=nope,required echo no\n",
        )],
    );
    let failed = docker_build(&d, &ctx2, &["-t", "sec:bad"]);
    assert_ne!(failed.code, 0, "{failed}");
    assert!(
        failed.stdout.contains("secret nope: not found")
            || failed.stderr.contains("secret nope: not found"),
        "{failed}"
    );
    assert_ne!(d.docker(&["image", "inspect", "sec:bad"]).code, 0);
}

#[test]
fn a_cache_mount_outlives_builds_until_pruned() {
    let d = daemon_with_busybox();
    let df = "FROM busybox\nRUN --mount=type=cache,target=/var/cache/app,id=app echo run >> /var/cache/app/log && echo \"runs=$(wc -l < /var/cache/app/log)\" && echo done > /built\n";
    let ctx = context(&d, &[("Dockerfile", df)]);
    let first = docker_build(&d, &ctx, &["--no-cache", "-t", "c:1"]);
    first.ok();
    assert!(first.stdout.contains("runs=1"), "{first}");
    let second = docker_build(&d, &ctx, &["--no-cache", "-t", "c:2"]);
    second.ok();
    assert!(second.stdout.contains("runs=2"), "{second}");
    let (layers, _) = saved(&d, "c:2");
    let last = &layers.last().unwrap().0;
    assert_eq!(last, &vec!["built".to_string()], "{layers:?}");

    // system df: one cache mount record (8 bytes of log, used twice) and the step entries;
    // the sizes add up to what a prune reclaims.
    let df = d.api("GET", "/system/df", None);
    assert_eq!(df.status, 200);
    let df: serde_json::Value = serde_json::from_slice(&df.body).unwrap();
    let records = df["BuildCache"].as_array().unwrap().clone();
    let mounts: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["Type"] == "exec.cachemount")
        .collect();
    assert_eq!(mounts.len(), 1, "{df}");
    assert_eq!(mounts[0]["Size"], 8, "{df}");
    assert_eq!(mounts[0]["UsageCount"], 2, "{df}");
    assert_eq!(mounts[0]["Description"], "cached mount id=app", "{df}");
    assert!(records.iter().any(|r| r["Type"] == "regular"), "{df}");
    let total: u64 = records.iter().map(|r| r["Size"].as_u64().unwrap()).sum();
    let summary = d.docker(&["system", "df"]).ok().stdout.clone();
    let line = summary
        .lines()
        .find(|l| l.starts_with("Build Cache"))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(line.contains("8B"), "{summary}");
    let verbose = d.docker(&["system", "df", "-v"]).ok().stdout.clone();
    assert!(verbose.contains("exec.cachemount"), "{verbose}");

    let pruned = d.api("POST", "/build/prune", None);
    assert_eq!(pruned.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&pruned.body).unwrap();
    assert_eq!(body["SpaceReclaimed"].as_u64().unwrap(), total, "{body}");
    assert_eq!(
        body["CachesDeleted"].as_array().unwrap().len(),
        records.len(),
        "{body}"
    );
    let df = d.api("GET", "/system/df", None);
    let df: serde_json::Value = serde_json::from_slice(&df.body).unwrap();
    assert_eq!(df["BuildCache"], serde_json::json!([]), "{df}");
    let third = docker_build(&d, &ctx, &["--no-cache", "-t", "c:3"]);
    third.ok();
    assert!(third.stdout.contains("runs=1"), "{third}");
}

const BIND_DOCKERFILE: &str = r#"FROM busybox AS base
RUN mkdir -p /opt && echo from-stage > /opt/stage.txt
FROM busybox
RUN --mount=type=tmpfs,target=/scratch,size=1m grep -q ' /scratch tmpfs ' /proc/mounts && echo big > /scratch/x && echo tmpfs-ok
RUN --mount=type=bind,source=data,target=/data cat /data/a.txt > /copied && ! touch /data/new 2>/dev/null && echo ro-ok
RUN --mount=type=bind,source=data,target=/data,rw echo w > /data/new && echo rw-ok
RUN --mount=type=bind,from=base,source=/opt,target=/s cat /s/stage.txt
RUN --mount=type=bind,source=data/a.txt,target=/one.txt cat /one.txt
"#;

#[test]
fn tmpfs_and_bind_mounts_work_and_leave_no_trace() {
    let d = daemon_with_busybox();
    let ctx = context(
        &d,
        &[
            ("Dockerfile", BIND_DOCKERFILE),
            ("data/a.txt", "context-data\n"),
        ],
    );
    let out = docker_build(&d, &ctx, &["-t", "b:1"]);
    out.ok();
    for want in ["tmpfs-ok", "ro-ok", "rw-ok", "from-stage", "context-data"] {
        assert!(out.stdout.contains(want), "{want}: {out}");
    }
    // The rw bind's write went nowhere.
    assert!(!ctx.join("data/new").exists());
    let (layers, _) = saved(&d, "b:1");
    let all: Vec<&String> = layers.iter().flat_map(|(n, _)| n).collect();
    assert!(all.iter().any(|n| *n == "copied"), "{all:?}");
    for n in &all {
        assert!(
            !(n.starts_with("scratch")
                || n.starts_with("data")
                || n.starts_with("s/")
                || *n == "s"
                || *n == "one.txt"),
            "mount point {n} in a layer: {all:?}"
        );
    }

    // A bind source outside the context is refused, as is a missing one.
    let ctx2 = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=bind,source=nope,target=/x true\n",
        )],
    );
    let bad = docker_build(&d, &ctx2, &["-t", "b:bad"]);
    assert_ne!(bad.code, 0, "{bad}");
    assert!(
        bad.stdout.contains("not found") || bad.stderr.contains("not found"),
        "{bad}"
    );

    // RUN --network=host needs the build's own --network host (BuildKit's entitlement).
    let ctx3 = context(
        &d,
        &[("Dockerfile", "FROM busybox\nRUN --network=host true\n")],
    );
    let host = docker_build(&d, &ctx3, &["-t", "b:host"]);
    assert_ne!(host.code, 0, "{host}");
    assert!(
        host.stderr.contains("network.host is not allowed"),
        "{host}"
    );
}

#[test]
fn a_malformed_secrets_header_is_refused_and_builds_nothing() {
    let d = daemon_with_busybox();
    let mut tar = tar::Builder::new(Vec::new());
    let dockerfile = b"FROM busybox\nRUN --mount=type=secret,id=tok true\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(dockerfile.len() as u64);
    h.set_mode(0o644);
    tar.append_data(&mut h, "Dockerfile", &dockerfile[..])
        .expect("tar");
    let body = tar.into_inner().expect("tar");
    let before = d.image_ids();
    for (header, want) in [
        ("!!not-base64!!", "invalid secrets header"),
        // base64 of JSON whose value is not base64.
        ("eyJ0b2siOiIhISJ9", "invalid value of secret tok"),
        // base64 of {"a b":"eA=="}: an ID with a space.
        ("eyJhIGIiOiJlQT09In0=", "invalid secret id"),
    ] {
        let resp = d.api_with_headers(
            "POST",
            "/build?t=nosecret",
            &[
                ("Content-Type", "application/x-tar"),
                ("X-Estiba-Build-Secrets", header),
            ],
            Some(&body),
        );
        let text = String::from_utf8_lossy(&resp.body);
        assert_eq!(resp.status, 400, "{header}: {text}");
        assert!(text.contains(want), "{header}: {text}");
    }
    assert_eq!(d.image_ids(), before);
}
