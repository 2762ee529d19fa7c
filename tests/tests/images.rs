//! The image commands a user types, through the real docker CLI and through `estiba`: load,
//! images, inspect, history, tag, rmi (untag vs delete), save/load round trip, prune, system df,
//! events, version and info. Expected outputs are Docker's (checked against dockerd 20.10).

use std::io::BufRead;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use estiba_e2e::testimg::{self, ArchiveOptions, Compression, Format, TestImage};
use estiba_e2e::{Cli, Daemon};

/// Runs each scenario once per CLI: `docker::name` and `estiba::name`.
macro_rules! both_clis {
    ($($name:ident),* $(,)?) => {
        mod docker {
            $( #[test] fn $name() { super::$name(estiba_e2e::Cli::Docker) } )*
        }
        mod estiba {
            $( #[test] fn $name() { super::$name(estiba_e2e::Cli::Estiba) } )*
        }
    };
}

both_clis!(
    version_and_info,
    load_images_inspect_history,
    load_every_format_and_compression,
    tag_then_rmi_untags_before_it_deletes,
    rmi_and_inspect_unknown_image,
    save_then_load_keeps_ids,
    prune_removes_dangling_then_unused,
    system_df_counts_images,
    events_show_a_tag,
);

fn busybox() -> TestImage {
    testimg::busybox().expect("busybox image")
}

fn layered() -> TestImage {
    testimg::layered().expect("layered image")
}

fn path_str(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

fn version_and_info(cli: Cli) {
    let d = Daemon::start();
    let out = d.run(cli, &["version", "--format", "{{json .Server}}"]);
    out.ok();
    let server = out.json();
    assert!(
        server["ApiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{out}"
    );
    assert_eq!(server["Os"], "linux", "{out}");
    let out = d.run(
        cli,
        &[
            "info",
            "--format",
            "{{.DockerRootDir}}|{{.Driver}}|{{.Images}}",
        ],
    );
    out.ok();
    let line = out.stdout.trim();
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(fields.len(), 3, "{out}");
    assert_eq!(fields[0], path_str(&d.data_root()), "{out}");
    assert!(["overlay2", "vfs"].contains(&fields[1]), "{out}");
    assert_eq!(fields[2], "0", "{out}");
}

fn load_images_inspect_history(cli: Cli) {
    let d = Daemon::start();
    let bb = busybox();
    let tar = d.write_tarball("busybox.tar", &[&bb], ArchiveOptions::default());
    let out = d.run(cli, &["load", "-i", &path_str(&tar)]);
    out.ok();
    assert_eq!(out.stdout.trim(), "Loaded image: busybox:latest", "{out}");

    // docker images: Docker's header and one row.
    let out = d.run(cli, &["images"]);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines.len(), 2, "{out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"],
        "{out}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &row[..3],
        ["busybox", "latest", bb.short_id().as_str()],
        "{out}"
    );
    let size = testimg::human_size(testimg::docker_layer_size(&bb.layers[0]), 3);
    assert_eq!(row.last().copied(), Some(size.as_str()), "{out}");

    let out = d.run(cli, &["images", "-q"]);
    out.ok();
    assert_eq!(out.stdout.trim(), bb.short_id(), "{out}");
    let out = d.run(cli, &["images", "-q", "--no-trunc"]);
    out.ok();
    assert_eq!(out.stdout.trim(), bb.id(), "{out}");
    let out = d.run(
        cli,
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
    );
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        format!("busybox:latest {}", bb.short_id()),
        "{out}"
    );

    // docker image inspect: Docker's fields.
    let out = d.run(cli, &["image", "inspect", "busybox"]);
    out.ok();
    let all = out.json();
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{out}");
    let img = &all[0];
    assert_eq!(img["Id"], bb.id(), "{out}");
    assert_eq!(
        img["RepoTags"],
        serde_json::json!(["busybox:latest"]),
        "{out}"
    );
    assert_eq!(img["RootFS"]["Type"], "layers", "{out}");
    assert_eq!(
        img["RootFS"]["Layers"],
        serde_json::json!(bb.diff_ids()),
        "{out}"
    );
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["sh"]), "{out}");
    assert_eq!(img["Os"], "linux", "{out}");
    assert_eq!(img["Architecture"], testimg::recipes::go_arch(), "{out}");
    assert_eq!(img["Created"], "2024-01-01T00:00:00Z", "{out}");
    // Docker's size: file contents plus symlink target lengths, each inode once.
    let size_bytes = testimg::docker_layer_size(&bb.layers[0]);
    assert_eq!(img["Size"], size_bytes, "{out}");
    assert!(img["GraphDriver"]["Name"].is_string(), "{out}");
    assert!(img.get("Metadata").is_some(), "{out}");
    let out = d.run(cli, &["image", "inspect", "-f", "{{.Id}}", &bb.short_id()]);
    out.ok();
    assert_eq!(out.stdout.trim(), bb.id(), "{out}");
    let out = d.run(cli, &["image", "inspect", "-f", "{{.Id}}", &bb.id()]);
    out.ok();
    assert_eq!(out.stdout.trim(), bb.id(), "{out}");

    // docker history: newest first, the top line carries the ID.
    let out = d.run(cli, &["history", "busybox"]);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("IMAGE"), "{out}");
    assert!(lines[1].starts_with(&bb.short_id()), "{out}");
    assert!(lines[1].contains("CMD [\"sh\"]"), "{out}");
    assert!(lines[1].contains("0B"), "{out}");
    assert!(lines[2].starts_with("<missing>"), "{out}");
    assert!(lines[2].contains(&size), "{out}");
    let out = d.run(
        cli,
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}|{{.Size}}",
            "busybox",
        ],
    );
    out.ok();
    assert_eq!(
        out.lines(),
        [
            "CMD [\"sh\"]|0B",
            "ADD busybox-static / # estiba-testimg|1.98MB"
        ],
        "{out}"
    );

    // The layered image: four layers, the ENV/WORKDIR history entries without layers.
    let lay = layered();
    let tar = d.write_tarball("layered.tar", &[&lay], ArchiveOptions::default());
    d.run(cli, &["load", "-i", &path_str(&tar)]).ok();
    let out = d.run(cli, &["history", "-q", "estiba/layered"]);
    out.ok();
    assert_eq!(out.lines().len(), 7, "{out}");
    assert_eq!(out.lines()[0], lay.short_id(), "{out}");
    assert!(out.lines()[1..].iter().all(|l| *l == "<missing>"), "{out}");
    let out = d.run(
        cli,
        &[
            "image",
            "inspect",
            "-f",
            "{{json .RootFS.Layers}}|{{.Config.WorkingDir}}|{{json .Config.Labels}}",
            "estiba/layered",
        ],
    );
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        format!(
            "{}|/app|{{\"org.estiba.test\":\"layered\"}}",
            serde_json::json!(lay.diff_ids())
        ),
        "{out}"
    );
}

fn load_every_format_and_compression(cli: Cli) {
    let d = Daemon::start();
    let lay = layered();
    let cases = [
        (Format::Docker, Compression::None, "docker-none"),
        (Format::Docker, Compression::Gzip, "docker-gzip"),
        (Format::Docker, Compression::Zstd, "docker-zstd"),
        (Format::Oci, Compression::None, "oci-none"),
        (Format::Oci, Compression::Gzip, "oci-gzip"),
        (Format::Oci, Compression::Zstd, "oci-zstd"),
    ];
    for (format, compression, tag) in cases {
        let image = lay.clone().with_tags([format!("estiba/layered:{tag}")]);
        let tar = d.write_tarball(
            &format!("{tag}.tar"),
            &[&image],
            ArchiveOptions {
                format,
                compression,
            },
        );
        // Through stdin too: `docker load < file`.
        let bytes = std::fs::read(&tar).expect("reading the tarball back");
        let out = d.run_with_stdin(cli, &["load"], bytes);
        out.ok();
        assert_eq!(
            out.stdout.trim(),
            format!("Loaded image: estiba/layered:{tag}"),
            "{out}"
        );
        let out = d.run(
            cli,
            &[
                "image",
                "inspect",
                "-f",
                "{{.Id}}",
                &format!("estiba/layered:{tag}"),
            ],
        );
        out.ok();
        assert_eq!(out.stdout.trim(), lay.id(), "{tag}: {out}");
    }
    // Six tags, one image.
    assert_eq!(d.image_ids(), [lay.id()]);
    assert_eq!(d.image_tags().len(), 6);
    // A whole-file gzip of an archive loads as well.
    let tar = d.write_tarball("plain.tar", &[&busybox()], ArchiveOptions::default());
    let plain = std::fs::read(&tar).expect("reading the tarball back");
    let gz = testimg::archive::compress(&plain, Compression::Gzip).expect("gzip");
    let out = d.run_with_stdin(cli, &["load", "-q"], gz);
    out.ok();
    assert_eq!(out.stdout.trim(), "Loaded image: busybox:latest", "{out}");
}

fn tag_then_rmi_untags_before_it_deletes(cli: Cli) {
    let d = Daemon::start();
    let bb = busybox();
    d.load(&[&bb]);
    d.run(cli, &["tag", "busybox", "me/bb:1"]).ok();
    d.run(cli, &["image", "tag", &bb.short_id(), "me/bb:2"])
        .ok();
    assert_eq!(d.image_tags(), ["busybox:latest", "me/bb:1", "me/bb:2"]);
    assert_eq!(d.image_ids(), [bb.id()]);

    // Removing a tag only untags.
    let out = d.run(cli, &["rmi", "me/bb:1"]);
    out.ok();
    assert_eq!(out.lines(), ["Untagged: me/bb:1"], "{out}");
    assert_eq!(d.image_ids(), [bb.id()]);

    // By ID while several tags point at it: Docker's 409 conflict, exit 1.
    let out = d.run(cli, &["rmi", &bb.short_id()]);
    out.fails_with(1);
    assert!(
        out.stderr.contains(&format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            bb.short_id()
        )),
        "{out}"
    );

    let out = d.run(cli, &["rmi", "me/bb:2"]);
    out.ok();
    assert_eq!(out.lines(), ["Untagged: me/bb:2"], "{out}");

    // The last tag: untagged and deleted, layers included.
    let out = d.run(cli, &["rmi", "busybox"]);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], "Untagged: busybox:latest", "{out}");
    assert_eq!(lines[1], format!("Deleted: {}", bb.id()), "{out}");
    assert!(lines.len() >= 2, "{out}");
    assert!(d.image_ids().is_empty());

    // rmi -f by ID removes every tag at once.
    d.load(&[&bb]);
    d.run(cli, &["tag", "busybox", "me/bb:3"]).ok();
    let out = d.run(cli, &["rmi", "-f", &bb.short_id()]);
    out.ok();
    let lines = out.lines();
    assert!(lines.contains(&"Untagged: busybox:latest"), "{out}");
    assert!(lines.contains(&"Untagged: me/bb:3"), "{out}");
    assert!(
        lines.contains(&format!("Deleted: {}", bb.id()).as_str()),
        "{out}"
    );
    assert!(d.image_ids().is_empty());
}

fn rmi_and_inspect_unknown_image(cli: Cli) {
    let d = Daemon::start();
    d.load(&[&busybox()]);
    let out = d.run(cli, &["rmi", "nosuch"]);
    out.fails_with(1);
    assert!(out.stderr.contains("No such image: nosuch:latest"), "{out}");
    let out = d.run(cli, &["image", "inspect", "nosuch"]);
    out.fails_with(1);
    assert!(out.stderr.contains("No such image: nosuch"), "{out}");
    let out = d.run(cli, &["tag", "nosuch", "other:1"]);
    out.fails_with(1);
    assert!(out.stderr.contains("No such image: nosuch"), "{out}");
    let out = d.run(cli, &["history", "nosuch"]);
    out.fails_with(1);
    assert!(out.stderr.contains("No such image: nosuch"), "{out}");
    // An invalid reference gets Docker's wording. (Docker 28's grammar reads an uppercase first
    // component as a registry host, so "UPPER/case" is valid there; an uppercase path is not.)
    let out = d.run(cli, &["tag", "busybox", "lower/CASE"]);
    out.fails_with(1);
    assert!(
        out.stderr.contains("invalid reference format") && out.stderr.contains("must be lowercase"),
        "{out}"
    );
    let resp = d.api("GET", "/v1.41/images/nosuch/json", None);
    assert_eq!(resp.status, 404, "{}", resp.text());
    assert_eq!(
        resp.message().as_deref(),
        Some("No such image: nosuch:latest"),
        "{}",
        resp.text()
    );
}

fn save_then_load_keeps_ids(cli: Cli) {
    let d = Daemon::start();
    let bb = busybox();
    let lay = layered();
    d.load(&[&bb, &lay]);
    let saved = d.dir().join("saved.tar");
    let out = d.run(
        cli,
        &[
            "save",
            "-o",
            &path_str(&saved),
            "busybox",
            "estiba/layered:latest",
        ],
    );
    out.ok();
    // docker 25+ layout: OCI index plus manifest.json, every blob named by its digest.
    let files = tar_files(&saved);
    for name in ["index.json", "manifest.json", "oci-layout"] {
        assert!(
            files.contains_key(name),
            "{name} missing from save: {:?}",
            files.keys()
        );
    }
    for (name, data) in files.iter().filter(|(n, _)| n.starts_with("blobs/sha256/")) {
        assert_eq!(
            testimg::sha256_digest(data)[7..],
            name[13..],
            "blob {name} does not match its digest"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&files["manifest.json"]).expect("manifest.json is JSON");
    let mut tags: Vec<String> = manifest
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["RepoTags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    tags.sort();
    assert_eq!(tags, ["busybox:latest", "estiba/layered:latest"]);
    // The busybox layer is in the tarball once.
    let busybox_layer = format!("blobs/sha256/{}", &bb.diff_ids()[0][7..]);
    assert!(files.contains_key(&busybox_layer), "{:?}", files.keys());

    // `docker save` to stdout gives the same bytes as -o.
    let out = d.run(cli, &["save", "busybox"]);
    out.ok();
    assert!(
        out.stdout.len() > 1_000_000 || !out.stdout.is_empty(),
        "{out}"
    );

    d.run(cli, &["rmi", "busybox", "estiba/layered"]).ok();
    assert!(d.image_ids().is_empty());
    let out = d.run(cli, &["load", "-i", &path_str(&saved)]);
    out.ok();
    let mut loaded = out.lines();
    loaded.sort();
    assert_eq!(
        loaded,
        [
            "Loaded image: busybox:latest",
            "Loaded image: estiba/layered:latest"
        ],
        "{out}"
    );
    let mut want = vec![bb.id(), lay.id()];
    want.sort();
    assert_eq!(d.image_ids(), want);
    let out = d.run(
        cli,
        &["image", "inspect", "-f", "{{.Id}}", "estiba/layered"],
    );
    out.ok();
    assert_eq!(out.stdout.trim(), lay.id());

    // Saving an image by ID writes it untagged; loading that gives the same ID back.
    let by_id = d.dir().join("by-id.tar");
    d.run(cli, &["save", "-o", &path_str(&by_id), &bb.short_id()])
        .ok();
    d.run(cli, &["rmi", "busybox"]).ok();
    let out = d.run(cli, &["load", "-i", &path_str(&by_id)]);
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        format!("Loaded image ID: {}", bb.id()),
        "{out}"
    );
}

/// path -> content of every regular file of a tarball on disk.
fn tar_files(path: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).expect("opening the saved tarball");
    let mut archive = tar::Archive::new(file);
    let mut out = std::collections::BTreeMap::new();
    for entry in archive.entries().expect("reading the saved tarball") {
        let mut entry = entry.expect("a tar entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("reading a tar entry");
        out.insert(name, data);
    }
    out
}

fn prune_removes_dangling_then_unused(cli: Cli) {
    let d = Daemon::start();
    let bb = busybox().with_tags(["app:1"]);
    let lay = layered().with_tags(["app:1"]);
    d.load(&[&bb]);
    // Loading another image under the same tag leaves busybox dangling, as in Docker.
    d.load(&[&lay]);
    assert_eq!(d.image_tags(), ["<none>:<none>", "app:1"]);
    let out = d.run(
        cli,
        &["images", "--filter", "dangling=true", "-q", "--no-trunc"],
    );
    out.ok();
    assert_eq!(out.stdout.trim(), bb.id(), "{out}");

    let out = d.run(cli, &["image", "prune", "-f"]);
    out.ok();
    assert!(out.stdout.contains("Deleted Images:"), "{out}");
    assert!(
        out.stdout.contains(&format!("deleted: {}", bb.id())),
        "{out}"
    );
    assert!(out.stdout.contains("Total reclaimed space:"), "{out}");
    assert_eq!(d.image_ids(), [lay.id()]);
    // Its shared busybox layer is still there for the layered image.
    let out = d.run(cli, &["image", "inspect", "-f", "{{.Id}}", "app:1"]);
    out.ok();

    // Nothing dangling left: prune removes nothing.
    let out = d.run(cli, &["image", "prune", "-f"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "Total reclaimed space: 0B", "{out}");

    // `until` keeps what was created after the cut-off: the image's config dates from
    // years ago, so a ten-year window keeps it and a one-hour one does not.
    let out = d.run(
        cli,
        &["image", "prune", "-a", "-f", "--filter", "until=87600h"],
    );
    out.ok();
    assert_eq!(out.stdout.trim(), "Total reclaimed space: 0B", "{out}");
    assert_eq!(d.image_ids(), [lay.id()]);

    // -a removes unused tagged images too.
    let out = d.run(cli, &["image", "prune", "-a", "-f", "--filter", "until=1h"]);
    out.ok();
    assert!(out.stdout.contains("untagged: app:1"), "{out}");
    assert!(
        out.stdout.contains(&format!("deleted: {}", lay.id())),
        "{out}"
    );
    assert!(d.image_ids().is_empty());
}

fn system_df_counts_images(cli: Cli) {
    let d = Daemon::start();
    let out = d.run(
        cli,
        &[
            "system",
            "df",
            "--format",
            "{{.Type}}|{{.TotalCount}}|{{.Size}}",
        ],
    );
    out.ok();
    assert_eq!(out.lines()[0], "Images|0|0B", "{out}");
    let (bb, lay) = (busybox(), layered());
    d.load(&[&bb, &lay]);
    // The shared layer counts once.
    let total: u64 = lay
        .layers
        .iter()
        .map(|l| testimg::docker_layer_size(l))
        .sum();
    assert_eq!(bb.layers[0], lay.layers[0]);
    let out = d.run(cli, &["system", "df"]);
    out.ok();
    let lines = out.lines();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{out}"
    );
    let images: Vec<&str> = lines[1].split_whitespace().collect();
    let total = testimg::human_size(total, 4);
    assert_eq!(&images[..4], ["Images", "2", "0", total.as_str()], "{out}");
    let out = d.run(cli, &["system", "df", "-v", "--format", "{{json .Images}}"]);
    out.ok();
    let verbose = out.json();
    let rows = verbose.as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 2, "{out}");
}

fn events_show_a_tag(cli: Cli) {
    let d = Daemon::start();
    let bb = busybox();
    d.load(&[&bb]);
    let since = chrono_free_now();
    let mut events = d
        .command(cli, &["events", "--filter", "type=image"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning events");
    let (tx, rx) = mpsc::channel();
    let stdout = events.stdout.take().expect("events stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The subscription starts some time after spawn: tag until an event shows up (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut line = None;
    let mut n = 0;
    while Instant::now() < deadline && line.is_none() {
        n += 1;
        d.run(cli, &["tag", "busybox", &format!("me/bb:{n}")]).ok();
        line = rx.recv_timeout(Duration::from_millis(300)).ok();
    }
    let _ = events.kill();
    let _ = events.wait();
    let line = line.unwrap_or_else(|| panic!("no event within 20 s\n{}", d.log()));
    // Docker: "<time> image tag sha256:<id> (name=me/bb:N)".
    assert!(
        line.contains(&format!(" image tag {} (name=me/bb:", bb.id())),
        "{line}"
    );

    // And the same event from /events with since/until, as JSON.
    let until = chrono_free_now() + 1;
    let resp = d.api(
        "GET",
        &format!("/v1.41/events?since={since}&until={until}&filters=%7B%22type%22%3A%5B%22image%22%5D%7D"),
        None,
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let text = resp.text();
    // The load before `since` may or may not be included (same second): look for the tag.
    let first: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["Action"] == "tag")
        .unwrap_or_else(|| panic!("no tag event in {text}"));
    assert_eq!(first["Type"], "image", "{text}");
    assert_eq!(first["Action"], "tag", "{text}");
    assert_eq!(first["Actor"]["ID"], bb.id(), "{text}");
    assert_eq!(first["Actor"]["Attributes"]["name"], "me/bb:1", "{text}");
}

/// Unix seconds now.
fn chrono_free_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The README's sample image comes from `estiba-mkimage`; it must be the image the tests use.
#[test]
fn mkimage_tarballs_load_with_the_expected_ids() {
    let d = Daemon::start();
    let mkimage = estiba_e2e::binary("estiba-mkimage");
    let cases = [
        (vec!["busybox"], busybox().id(), "busybox:latest"),
        (
            vec![
                "layered",
                "--format",
                "oci",
                "--compression",
                "zstd",
                "--tag",
                "x/y:z",
            ],
            layered().id(),
            "x/y:z",
        ),
    ];
    for (args, id, tag) in cases {
        let out_path = d.dir().join("mk.tar");
        let status = std::process::Command::new(&mkimage)
            .args(&args)
            .arg("-o")
            .arg(&out_path)
            .status()
            .expect("running estiba-mkimage");
        assert!(status.success(), "estiba-mkimage {args:?}");
        let out = d.docker(&["load", "-i", &path_str(&out_path)]);
        out.ok();
        assert_eq!(out.stdout.trim(), format!("Loaded image: {tag}"), "{out}");
        let out = d.docker(&["image", "inspect", "-f", "{{.Id}}", tag]);
        out.ok();
        assert_eq!(out.stdout.trim(), id, "{args:?}");
    }
}
