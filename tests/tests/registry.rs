//! Pull and push against a real registry (Debian's docker-registry on 127.0.0.1), through the
//! real docker CLI and `estiba`: round trips, pull by digest, `docker run` of an image only in
//! the registry, and the refusals: missing repo or tag, tampered blob, oversized manifest.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use estiba_e2e::registry::RegistryProcess;
use estiba_e2e::testimg::{self, TestImage};
use estiba_e2e::{wait_until, Cli, Daemon};

/// A docker-registry process with its own storage; killed on drop.
struct Registry {
    _process: RegistryProcess,
    dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    fn start() -> Registry {
        Registry::start_with_auth(None)
    }

    /// A registry with htpasswd (bcrypt) basic auth for `user:password`.
    fn start_with_auth(user: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("estiba-registry-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let mut auth = String::new();
        if let Some((u, p)) = user {
            let htpasswd = dir.path().join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-Bbc"])
                .arg(&htpasswd)
                .args([u, p])
                .output()
                .expect("htpasswd must be installed (apache2-utils, scripts/deps.sh)");
            assert!(out.status.success(), "htpasswd failed");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: estiba-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        let process = RegistryProcess::start(dir.path(), &format!("127.0.0.1:{port}"), "", &auth);
        Registry {
            _process: process,
            dir,
            port,
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's access log (one line per request, as docker-registry writes it).
    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    fn blobs_dir(&self) -> PathBuf {
        self.dir.path().join("data/docker/registry/v2/blobs/sha256")
    }

    /// The registry's file for blob `digest` ("sha256:...").
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.blobs_dir().join(&hex[..2]).join(hex).join("data")
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn layered() -> TestImage {
    testimg::layered().expect("layered image")
}

fn busybox() -> TestImage {
    testimg::busybox().expect("busybox image")
}

fn cli_name(cli: Cli) -> &'static str {
    match cli {
        Cli::Docker => "docker",
        Cli::Estiba => "estiba",
    }
}

/// Loads `img`, tags it into the registry, pushes, removes it locally, pulls it back.
fn round_trip(cli: Cli, img: TestImage) {
    round_trip_with(cli, img, &[]);
}

/// [`round_trip`] through a daemon started with `daemon_args`.
fn round_trip_with(cli: Cli, img: TestImage, daemon_args: &[&str]) {
    let reg = Registry::start();
    let d = Daemon::start_with(daemon_args);
    let src = img.repo_tags[0].clone();
    let id = img.id();
    let layers = img.layers.len();
    d.load(&[&img]);
    let target = format!("{}/team/app-{}:1", reg.host(), cli_name(cli));
    d.run(cli, &["tag", &src, &target]).ok();
    let pushed = d.run(cli, &["push", &target]);
    pushed.ok();
    assert!(
        pushed.stdout.contains("1: digest: sha256:"),
        "push output: {pushed}"
    );
    d.run(cli, &["rmi", &target, &src]).ok();
    assert!(
        !d.image_ids().contains(&id),
        "image still present after rmi"
    );
    let pulled = d.run(cli, &["pull", &target]);
    pulled.ok();
    assert!(
        pulled
            .stdout
            .contains(&format!("Status: Downloaded newer image for {target}")),
        "pull output: {pulled}"
    );
    assert!(pulled.stdout.contains("Digest: sha256:"), "{pulled}");
    assert!(
        pulled
            .stdout
            .contains(&format!("1: Pulling from team/app-{}\n", cli_name(cli))),
        "{pulled}"
    );
    assert!(
        d.image_ids().contains(&id),
        "same image ID after the round trip"
    );
    let inspect = d.docker(&["image", "inspect", &target]);
    inspect.ok();
    let v = inspect.json();
    assert_eq!(
        v[0]["RootFS"]["Layers"].as_array().map(Vec::len),
        Some(layers)
    );
    let digests = v[0]["RepoDigests"].to_string();
    assert!(
        digests.contains(&format!(
            "{}/team/app-{}@sha256:",
            reg.host(),
            cli_name(cli)
        )),
        "{digests}"
    );
    // A second pull changes nothing.
    let again = d.run(cli, &["pull", &target]);
    again.ok();
    assert!(again.stdout.contains("Image is up to date for"), "{again}");
}

#[test]
fn docker_round_trip_single_layer() {
    round_trip(Cli::Docker, busybox());
}

#[test]
fn docker_round_trip_multi_layer() {
    round_trip(Cli::Docker, layered());
}

#[test]
fn estiba_round_trip_multi_layer() {
    round_trip(Cli::Estiba, layered());
}

/// On a terminal `estiba pull` draws its own live lines (indicatif): one per layer, redrawn in
/// place, ending on each layer's last status; without one it prints docker's plain lines.
#[test]
fn estiba_pull_draws_live_progress_on_a_terminal() {
    let reg = Registry::start();
    let d = Daemon::start();
    let img = layered();
    let target = format!("{}/team/live:1", reg.host());
    d.load(&[&img]);
    d.docker(&["tag", &img.repo_tags[0], &target]).ok();
    d.docker(&["push", &target]).ok();
    d.docker(&["rmi", &target, &img.repo_tags[0]]).ok();

    let estiba = estiba_e2e::binary("estiba");
    let shell = format!("{} -H {} pull {target}", estiba.display(), d.host());
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &shell, "/dev/null"])
        .env("DOCKER_CONFIG", d.dir().join("docker-config"));
    let out = estiba_e2e::run_command(cmd, None);
    out.ok();
    assert!(out.stdout.contains("\u{1b}["), "no live redraw: {out}");
    let complete = out.stdout.matches(": Pull complete").count();
    assert!(complete >= img.layers.len(), "{out}");
    assert!(
        out.stdout
            .contains(&format!("Status: Downloaded newer image for {target}")),
        "{out}"
    );

    d.docker(&["rmi", &target]).ok();
    let plain = d.estiba(&["pull", &target]);
    plain.ok();
    assert!(!plain.stdout.contains('\u{1b}'), "{plain}");
}

/// Layers upload concurrently (max-concurrent-uploads, 5 by default, as above); one at a
/// time gives the same image.
#[test]
fn round_trip_with_one_upload_at_a_time() {
    round_trip_with(Cli::Docker, layered(), &["--max-concurrent-uploads", "1"]);
}

/// Pushes `img` as `<reg>/<repo>:1`, returns the pushed manifest digest.
fn push(d: &Daemon, reg: &Registry, img: &TestImage, repo: &str) -> String {
    d.load(&[img]);
    let target = format!("{}/{repo}:1", reg.host());
    d.docker(&["tag", &img.repo_tags[0], &target]).ok();
    let out = d.docker(&["push", &target]);
    out.ok();
    let digest = out
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in {out}"))
        .to_string();
    d.docker(&["rmi", &target, &img.repo_tags[0]]).ok();
    digest
}

#[test]
fn pull_by_digest_and_run_of_a_missing_image() {
    let reg = Registry::start();
    let d = Daemon::start();
    let img = busybox();
    let digest = push(&d, &reg, &img, "bb");
    let by_digest = format!("{}/bb@{digest}", reg.host());
    let out = d.docker(&["pull", &by_digest]);
    out.ok();
    assert!(out.stdout.contains(&format!("Digest: {digest}")), "{out}");
    assert!(d.image_ids().contains(&img.id()));
    d.docker(&["rmi", &by_digest]).ok();
    assert!(!d.image_ids().contains(&img.id()));

    // docker run pulls what is missing.
    let name = format!("{}/bb:1", reg.host());
    let run = d.docker(&["run", "--rm", &name, "echo", "hello from the registry"]);
    run.ok();
    assert!(run.stdout.contains("hello from the registry"), "{run}");
    assert!(run.stderr.contains("Unable to find image"), "{run}");
    assert!(d.image_ids().contains(&img.id()));

    // So does estiba run.
    d.docker(&["rmi", &name]).ok();
    let run = d.estiba(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "echo",
        "estiba pulled",
    ]);
    run.ok();
    assert!(run.stdout.contains("estiba pulled"), "{run}");
    assert!(
        run.stderr
            .contains(&format!("Unable to find image '{name}' locally")),
        "{run}"
    );
    assert!(d.image_ids().contains(&img.id()));
}

#[test]
fn missing_repository_and_tag_are_not_found() {
    let reg = Registry::start();
    let d = Daemon::start();
    push(&d, &reg, &busybox(), "there");
    let missing_tag = d.docker(&["pull", &format!("{}/there:nope", reg.host())]);
    missing_tag.fails_with(1);
    assert!(
        missing_tag.stderr.contains(&format!(
            "manifest for {}/there:nope not found: manifest unknown",
            reg.host()
        )),
        "{missing_tag}"
    );
    let missing_repo = d.docker(&["pull", &format!("{}/nothere:1", reg.host())]);
    missing_repo.fails_with(1);
    assert!(missing_repo.stderr.contains("not found"), "{missing_repo}");
    let resp = d.api(
        "POST",
        &format!("/images/create?fromImage={}/nothere&tag=1", reg.host()),
        None,
    );
    assert_eq!(resp.status, 404, "{}", resp.text());
    assert!(d.image_ids().is_empty());
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_stored() {
    let reg = Registry::start();
    let d = Daemon::start();
    let img = layered();
    push(&d, &reg, &img, "tampered");
    let blobs_before = count_files(&d.content_dir());
    // Corrupt the top layer's blob in the registry's storage, keeping its size.
    let manifest = registry_manifest(&reg, "tampered", "1");
    let layer = manifest["layers"][2]["digest"]
        .as_str()
        .expect("layer digest")
        .to_string();
    let path = reg.blob_path(&layer);
    let mut bytes = std::fs::read(&path).expect("read blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).expect("write blob");

    let out = d.docker(&["pull", &format!("{}/tampered:1", reg.host())]);
    out.fails_with(1);
    assert!(
        out.stderr.contains("verification failed") || out.stdout.contains("verification failed"),
        "{out}"
    );
    assert!(d.image_ids().is_empty(), "no image after a bad blob");
    assert_eq!(count_files(&d.content_dir()), blobs_before, "no blob kept");
    assert!(d.log().len() < 10_000_000);
}

#[test]
fn basic_auth_login_push_pull_logout() {
    let reg = Registry::start_with_auth(Some(("alice", "s3cret")));
    let d = Daemon::start();
    let img = busybox();
    d.load(&[&img]);
    let target = format!("{}/private/bb:1", reg.host());
    d.docker(&["tag", &img.repo_tags[0], &target]).ok();

    let denied = d.docker(&["push", &target]);
    denied.fails_with(1);
    let wrong = d.docker(&["login", "-u", "alice", "-p", "wrong", &reg.host()]);
    wrong.fails_with(1);
    assert!(
        wrong.stderr.contains(&format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            reg.host()
        )),
        "{wrong}"
    );
    let login = d.docker(&["login", "-u", "alice", "-p", "s3cret", &reg.host()]);
    login.ok();
    assert!(login.stdout.contains("Login Succeeded"), "{login}");
    d.docker(&["push", &target]).ok();
    d.docker(&["rmi", &target]).ok();
    d.docker(&["pull", &target]).ok();
    d.docker(&["logout", &reg.host()]).ok();

    // estiba keeps credentials in the same config.json.
    let login = d.estiba(&["login", "-u", "alice", "-p", "s3cret", &reg.host()]);
    login.ok();
    let config =
        std::fs::read_to_string(d.dir().join("docker-config/config.json")).expect("config.json");
    // base64("alice:s3cret")
    assert!(config.contains("YWxpY2U6czNjcmV0"), "{config}");
    d.estiba(&["rmi", &target]).ok();
    d.estiba(&["pull", &target]).ok();
    assert!(d.image_ids().contains(&img.id()));
    let out = d.estiba(&["logout", &reg.host()]);
    out.ok();
    assert!(out.stdout.contains("Removing login credentials"), "{out}");
    d.estiba(&["rmi", &target]).ok();
    let denied = d.estiba(&["pull", &target]);
    assert_ne!(denied.code, 0, "{denied}");
    let wrong = d.estiba(&["login", "-u", "alice", "-p", "nope", &reg.host()]);
    assert_ne!(wrong.code, 0);
    assert!(wrong.stderr.contains("401 Unauthorized"), "{wrong}");
}

/// `img` as if built for `arch`: the same layers, a config saying another architecture.
fn for_arch(img: &TestImage, arch: &str, tag: &str) -> TestImage {
    let mut config: serde_json::Value = serde_json::from_slice(&img.config).expect("config");
    config["architecture"] = serde_json::json!(arch);
    TestImage {
        repo_tags: vec![tag.to_string()],
        layers: img.layers.clone(),
        config: serde_json::to_vec(&config).expect("encode"),
    }
}

/// A docker-credential-esttest helper in `dir` keeping one login in `dir/store/creds.json`
/// and logging its verbs to `dir/store/calls`.
fn write_cred_helper(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let script = r#"#!/bin/sh
store="$(dirname "$0")/store"
mkdir -p "$store"
echo "$1" >> "$store/calls"
case "$1" in
  store) cat > "$store/creds.json" ;;
  get)
    cat > /dev/null
    if [ -f "$store/creds.json" ]; then cat "$store/creds.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) cat > /dev/null; rm -f "$store/creds.json" ;;
  *) exit 1 ;;
esac
"#;
    let path = dir.join("docker-credential-esttest");
    std::fs::write(&path, script).expect("write helper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn credentials_go_through_the_creds_store_helper() {
    let reg = Registry::start_with_auth(Some(("alice", "s3cret")));
    let d = Daemon::start();
    let img = busybox();
    d.load(&[&img]);
    let target = format!("{}/private/helper:1", reg.host());
    d.docker(&["tag", &img.repo_tags[0], &target]).ok();
    let bin = d.dir().join("helper-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    write_cred_helper(&bin);
    let config_path = d.dir().join("docker-config/config.json");
    std::fs::create_dir_all(config_path.parent().expect("dir")).expect("mkdir");
    std::fs::write(&config_path, r#"{"credsStore": "esttest"}"#).expect("config");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |cli: Cli, args: &[&str]| {
        let mut cmd = d.command(cli, args);
        cmd.env("PATH", &path);
        estiba_e2e::run_command(cmd, None)
    };
    let calls = || std::fs::read_to_string(bin.join("store/calls")).unwrap_or_default();

    run(
        Cli::Estiba,
        &["login", "-u", "alice", "-p", "s3cret", &reg.host()],
    )
    .ok();
    let stored = std::fs::read_to_string(bin.join("store/creds.json")).expect("helper stored");
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("json");
    assert_eq!(stored["Username"], "alice");
    assert_eq!(stored["Secret"], "s3cret");
    assert_eq!(stored["ServerURL"], reg.host().as_str());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).expect("read")).expect("json");
    assert_eq!(
        config["auths"][reg.host().as_str()],
        serde_json::json!({}),
        "no secret in config.json"
    );
    assert_eq!(config["credsStore"], "esttest");
    run(Cli::Estiba, &["push", &target]).ok();
    assert!(calls().lines().any(|l| l == "get"), "{}", calls());

    let out = run(Cli::Estiba, &["logout", &reg.host()]);
    out.ok();
    assert!(out.stdout.contains("Removing login credentials"), "{out}");
    assert!(!bin.join("store/creds.json").exists(), "erased");
    assert!(calls().lines().any(|l| l == "erase"));
    d.docker(&["rmi", &target]).ok();
    let denied = run(Cli::Estiba, &["pull", &target]);
    assert_ne!(denied.code, 0, "no credentials: {denied}");

    // What docker's own CLI stores through the helper, estiba reads back.
    run(
        Cli::Docker,
        &["login", "-u", "alice", "-p", "s3cret", &reg.host()],
    )
    .ok();
    run(Cli::Estiba, &["pull", &target]).ok();
    assert!(d.image_ids().contains(&img.id()));

    // A helper that is not installed: docker's error, nothing done.
    std::fs::write(
        &config_path,
        r#"{"credHelpers": {"HOST": "missing"}}"#.replace("HOST", &reg.host()),
    )
    .expect("config");
    let missing = run(Cli::Estiba, &["pull", &target]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("docker-credential-missing"),
        "{missing}"
    );
}

#[test]
fn search_says_no_index_is_reachable() {
    let d = Daemon::start();
    let out = d.docker(&["search", "busybox"]);
    out.fails_with(1);
    assert!(
        out.stderr.contains("Error response from daemon")
            && out.stderr.contains("index.docker.io/v1/search?q=busybox")
            && out.stderr.contains("no registry index is reachable"),
        "{out}"
    );
    assert!(out.stdout.is_empty(), "no empty result table: {out}");
    let resp = d.api("GET", "/images/search", None);
    assert_eq!(resp.status, 400);
}

/// `img` with one more layer: a file of `bytes` incompressible bytes.
fn with_noise_layer(img: &TestImage, bytes: usize, tag: &str) -> TestImage {
    let mut rng = testimg::recipes::SplitMix64::new(0x5eed);
    let mut noise = vec![0u8; bytes];
    rng.fill(&mut noise);
    let mut layer = testimg::LayerBuilder::new();
    layer.dir("noise", 0o755).file("noise/blob", 0o644, noise);
    let layer = layer.finish().expect("layer");
    let mut config: serde_json::Value = serde_json::from_slice(&img.config).expect("config");
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("diff_ids")
        .push(serde_json::json!(testimg::sha256_digest(&layer)));
    if let Some(h) = config["history"].as_array_mut() {
        h.push(serde_json::json!({"created_by": "COPY noise /noise"}));
    }
    let mut layers = img.layers.clone();
    layers.push(layer);
    TestImage {
        repo_tags: vec![tag.to_string()],
        layers,
        config: serde_json::to_vec(&config).expect("encode"),
    }
}

#[test]
fn push_gzips_chunks_large_layers_and_mounts_across_repositories() {
    let reg = Registry::start();
    let d = Daemon::start();
    // 34 MiB of noise: its gzip is over the 32 MiB chunk size.
    let img = with_noise_layer(&busybox(), 34 << 20, "noisy:1");
    d.load(&[&img]);
    let one = format!("{}/one/app:1", reg.host());
    d.docker(&["tag", "noisy:1", &one]).ok();
    let first = d.docker(&["push", &one]);
    first.ok();
    let log = reg.access_log();
    let patches = log
        .lines()
        .filter(|l| l.contains("\"PATCH /v2/one/app/blobs/uploads/") && l.contains("\" 202 "))
        .count();
    assert!(patches >= 2, "the big layer goes up in chunks: {log}");
    let manifest = registry_manifest(&reg, "one/app", "1");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 2);
    for (l, diff) in layers.iter().zip(img.diff_ids()) {
        assert_eq!(
            l["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "uncompressed layers are pushed gzipped"
        );
        assert_ne!(l["digest"].as_str(), Some(diff.as_str()));
    }

    // Another repository of the same registry: the layers are mounted, not uploaded.
    let two = format!("{}/two/app:1", reg.host());
    d.docker(&["tag", "noisy:1", &two]).ok();
    let second = d.docker(&["push", &two]);
    second.ok();
    assert_eq!(
        second.stdout.matches("Mounted from one/app").count(),
        2,
        "{second}"
    );
    assert!(second.stdout.contains("digest: sha256:"), "{second}");
    let log = reg.access_log();
    assert!(
        !log.contains("\"PATCH /v2/two/app/") && !log.contains("\"PUT /v2/two/app/blobs/"),
        "nothing uploaded to two/app: {log}"
    );
    assert!(log.contains("\"POST /v2/two/app/blobs/uploads/?mount=sha256:"));
    assert_eq!(
        registry_manifest(&reg, "two/app", "1")["layers"],
        manifest["layers"]
    );

    // What was pushed pulls back as the same image.
    d.docker(&["rmi", "noisy:1", &one, &two]).ok();
    d.docker(&["pull", &two]).ok();
    assert_eq!(d.image_ids(), vec![img.id()]);
    d.docker(&["run", "--rm", &two, "test", "-s", "/noise/blob"])
        .ok();
}

#[test]
fn oci_index_with_two_platforms() {
    let reg = Registry::start();
    let d = Daemon::start();
    let host_arch = testimg::recipes::go_arch();
    let other = if host_arch == "arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let native = for_arch(&busybox(), &host_arch, "multi/native:1");
    let foreign = for_arch(&busybox(), other, "multi/foreign:1");
    let native_digest = push(&d, &reg, &native, "multi");
    let foreign_digest = push(&d, &reg, &foreign, "multi");
    let entry = |digest: &str, arch: &str| {
        let m = registry_manifest(&reg, "multi", digest);
        serde_json::json!({
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": digest,
            "size": serde_json::to_vec(&m).expect("encode").len(),
            "platform": { "architecture": arch, "os": "linux" },
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&foreign_digest, other), entry(&native_digest, &host_arch)],
    });
    put_manifest(
        &reg,
        "multi",
        "idx",
        "application/vnd.oci.image.index.v1+json",
        &index,
    );

    let name = format!("{}/multi:idx", reg.host());
    d.docker(&["pull", &name]).ok();
    assert!(d.image_ids().contains(&native.id()), "native image pulled");
    assert!(!d.image_ids().contains(&foreign.id()));
    d.docker(&["rmi", &name]).ok();
    d.estiba(&["pull", "--platform", &format!("linux/{other}"), &name])
        .ok();
    assert!(
        d.image_ids().contains(&foreign.id()),
        "--platform picks the other entry"
    );
    let dist = d.api("GET", &format!("/distribution/{name}/json"), None);
    assert_eq!(dist.status, 200, "{}", dist.text());
    let v: serde_json::Value = serde_json::from_str(&dist.text()).expect("json");
    assert_eq!(
        v["Descriptor"]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(v["Platforms"].as_array().map(Vec::len), Some(2));
    let bad = d.estiba(&["pull", "--platform", "linux/s390x", &name]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("no matching manifest for linux/s390x"),
        "{bad}"
    );
}

fn put_manifest(reg: &Registry, repo: &str, tag: &str, media: &str, body: &serde_json::Value) {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), serde_json::to_vec(body).expect("encode")).expect("write");
    let out = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {media}"))
        .arg("--data-binary")
        .arg(format!("@{}", file.path().display()))
        .arg(format!("http://{}/v2/{repo}/manifests/{tag}", reg.host()))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "PUT manifest failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// What the cutting server saw and does.
#[derive(Default)]
struct CutState {
    /// The Range header of each layer GET (None: a plain GET).
    layer_ranges: Vec<Option<String>>,
    /// While true the server drops every connection unanswered (a dead registry).
    down: bool,
    /// Manifest GETs so far.
    manifest_gets: usize,
}

/// Serves one real image (manifest, config, one layer) as `cut/img:1`, answering Range
/// requests with 206. The first GET of the layer sends half the blob and drops the
/// connection, as a registry killed mid-blob would; with `die`, the server then stays down
/// (every connection dropped) until the test sets `down` back to false.
fn serve_cut_image(
    img: &TestImage,
    die: bool,
) -> (u16, std::sync::Arc<std::sync::Mutex<CutState>>) {
    serve_image(img, Behaviour::Cut { die })
}

/// How the test server sends the layer the first time it is asked for it.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Half the blob, then the connection drops (and with `die`, the server stays down).
    Cut { die: bool },
    /// Half the blob, then a wait until a second pull asked for the manifest, then the rest.
    Hold,
}

fn serve_image(
    img: &TestImage,
    behaviour: Behaviour,
) -> (u16, std::sync::Arc<std::sync::Mutex<CutState>>) {
    let layer = img.layers[0].clone();
    let sha = |b: &[u8]| testimg::sha256_digest(b);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": sha(&img.config), "size": img.config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
            "digest": sha(&layer), "size": layer.len(),
        }],
    }))
    .expect("encode");
    let routes = std::sync::Arc::new(vec![
        ("/v2/cut/img/manifests/1".to_string(), manifest),
        (
            format!("/v2/cut/img/blobs/{}", sha(&img.config)),
            img.config.clone(),
        ),
        (format!("/v2/cut/img/blobs/{}", sha(&layer)), layer.clone()),
    ]);
    let state = std::sync::Arc::new(std::sync::Mutex::new(CutState::default()));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let st = std::sync::Arc::clone(&state);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { break };
            if st.lock().expect("state").down {
                continue;
            }
            let (st, routes, layer) = (
                std::sync::Arc::clone(&st),
                std::sync::Arc::clone(&routes),
                layer.clone(),
            );
            std::thread::spawn(move || serve_one(conn, &st, &routes, &layer, behaviour));
        }
    });
    (port, state)
}

/// Answers one request of the test server.
fn serve_one(
    mut conn: TcpStream,
    st: &std::sync::Mutex<CutState>,
    routes: &[(String, Vec<u8>)],
    layer: &[u8],
    behaviour: Behaviour,
) {
    use std::io::{BufRead, BufReader, Write};
    let sha = |b: &[u8]| testimg::sha256_digest(b);
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut request = String::new();
    let _ = reader.read_line(&mut request);
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let path = request
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let Some((_, body)) = routes.iter().find(|(p, _)| *p == path) else {
        let _ = conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let is_layer = path.ends_with(&sha(layer));
    let ctype = if path.contains("/manifests/") {
        "application/vnd.docker.distribution.manifest.v2+json"
    } else {
        "application/octet-stream"
    };
    let from = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < body.len() && is_layer);
    let head = match from {
        Some(n) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Type: {ctype}\r\nContent-Range: bytes {n}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len() - 1,
            body.len(),
            body.len() - n
        ),
        None => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ),
    };
    let _ = conn.write_all(head.as_bytes());
    if path.contains("/manifests/") {
        st.lock().expect("state").manifest_gets += 1;
    }
    if is_layer {
        let first = {
            let mut s = st.lock().expect("state");
            s.layer_ranges.push(range.clone());
            s.layer_ranges.len() == 1
        };
        if first {
            let _ = conn.write_all(&body[..body.len() / 2]);
            match behaviour {
                Behaviour::Cut { die } => {
                    // Dropping the connection here is the registry dying mid-blob.
                    st.lock().expect("state").down = die;
                    return;
                }
                Behaviour::Hold => {
                    wait_until(Duration::from_secs(20), || {
                        st.lock().expect("state").manifest_gets >= 2
                    });
                    let _ = conn.write_all(&body[body.len() / 2..]);
                    return;
                }
            }
        }
    }
    let _ = conn.write_all(&body[from.unwrap_or(0)..]);
}

#[test]
fn a_registry_dying_mid_blob_leaves_nothing_and_a_retry_resumes() {
    let img = busybox();
    let (port, state) = serve_cut_image(&img, true);
    let d = Daemon::start();
    let name = format!("127.0.0.1:{port}/cut/img:1");
    let blobs = d.content_dir().join("blobs");
    let blobs_before = count_files(&blobs);
    let cut = d.docker(&["pull", &name]);
    cut.fails_with(1);
    assert!(
        cut.stderr.contains("error pulling layer"),
        "a clear error: {cut}"
    );
    assert_eq!(state.lock().expect("state").layer_ranges.len(), 1, "{cut}");
    assert!(d.image_ids().is_empty(), "no image after a cut blob: {cut}");
    assert_eq!(count_files(&blobs), blobs_before, "no blob kept");
    assert!(
        d.content_dir()
            .join("ingest")
            .read_dir()
            .is_ok_and(|mut rd| rd.next().is_some()),
        "the partial download is kept for a resume"
    );
    // The registry comes back: the pull resumes where the cut left off.
    state.lock().expect("state").down = false;
    let retry = d.docker(&["pull", &name]);
    retry.ok();
    assert!(d.image_ids().contains(&img.id()), "{retry}");
    let half = img.layers[0].len() / 2;
    let ranges = state.lock().expect("state").layer_ranges.clone();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(
        ranges[1].as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
    let run = d.docker(&["run", "--rm", &name, "cat", "/etc/hostname"]);
    run.ok();
}

#[test]
fn two_concurrent_pulls_fetch_the_layer_once() {
    let img = busybox();
    // The server holds the layer half-sent until the second pull asked for the manifest, so
    // the two pulls overlap for sure.
    let (port, state) = serve_image(&img, Behaviour::Hold);
    let d = Daemon::start();
    let name = format!("127.0.0.1:{port}/cut/img:1");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| d.docker(&["pull", &name]));
        let b = s.spawn(|| d.docker(&["pull", &name]));
        (a.join().expect("pull a"), b.join().expect("pull b"))
    });
    a.ok();
    b.ok();
    let st = state.lock().expect("state");
    assert_eq!(st.manifest_gets, 2, "both pulls asked for the manifest");
    assert_eq!(st.layer_ranges.len(), 1, "one GET of the layer: {a}\n{b}");
    drop(st);
    assert!(d.image_ids().contains(&img.id()));
    d.docker(&["run", "--rm", &name, "true"]).ok();
}

#[test]
fn a_connection_cut_mid_blob_is_resumed_within_the_pull() {
    let img = busybox();
    let (port, state) = serve_cut_image(&img, false);
    let d = Daemon::start();
    let name = format!("127.0.0.1:{port}/cut/img:1");
    let out = d.docker(&["pull", &name]);
    out.ok();
    assert!(d.image_ids().contains(&img.id()), "{out}");
    let half = img.layers[0].len() / 2;
    let ranges = state.lock().expect("state").layer_ranges.clone();
    assert_eq!(
        ranges,
        vec![None, Some(format!("bytes={half}-"))],
        "one cut GET, then one Range GET"
    );
    assert!(
        !d.content_dir()
            .join("ingest")
            .read_dir()
            .map(|mut rd| rd.next().is_some())
            .unwrap_or(false),
        "no partial download left behind"
    );
}

/// A tiny HTTP server that answers every manifest GET with `body` (no Content-Length, so the
/// client must bound its read), until dropped.
struct FakeRegistry {
    port: u16,
}

impl FakeRegistry {
    fn start(content_type: &'static str, body: Vec<u8>) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let body = std::sync::Arc::new(body);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                let body = std::sync::Arc::clone(&body);
                std::thread::spawn(move || {
                    use std::io::{BufRead, BufReader, Write};
                    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                    let mut request = String::new();
                    let _ = reader.read_line(&mut request);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    if request.starts_with("GET /v2/big/manifests/") {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
                        );
                        let _ = conn.write_all(head.as_bytes());
                        let _ = conn.write_all(&body);
                    } else {
                        let _ = conn.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                });
            }
        });
        FakeRegistry { port }
    }
}

#[test]
fn a_manifest_over_4_mib_is_refused() {
    // A valid schema 2 manifest padded past 4 MiB with an annotation.
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": format!("sha256:{}", "a".repeat(64)),
            "size": 10,
        },
        "layers": [],
        "annotations": { "pad": "x".repeat(5 << 20) },
    });
    let fake = FakeRegistry::start(
        "application/vnd.docker.distribution.manifest.v2+json",
        serde_json::to_vec(&manifest).expect("encode"),
    );
    let d = Daemon::start();
    let out = d.docker(&["pull", &format!("127.0.0.1:{}/big:1", fake.port)]);
    out.fails_with(1);
    assert!(out.stderr.contains("manifest too large"), "{out}");
    assert!(d.image_ids().is_empty());
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&p) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    n += 1;
                }
            }
        }
    }
    n
}

fn registry_manifest(reg: &Registry, repo: &str, tag: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            &format!("http://{}/v2/{repo}/manifests/{tag}", reg.host()),
        ])
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl manifest failed");
    serde_json::from_slice(&out.stdout).expect("manifest json")
}
