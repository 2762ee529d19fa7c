//! Hostile and broken `docker load` inputs: each gets a clear 4xx (the docker CLI exits 1 with
//! the message), `docker images` is unchanged, nothing is written outside the data-root, and
//! after a restart the content store and snapshots hold exactly what they held before.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use estiba_e2e::disk;
use estiba_e2e::testimg::{self, hostile};
use estiba_e2e::{token, Daemon};

macro_rules! hostile_cases {
    ($($name:ident => $case:literal),* $(,)?) => {
        $( #[test] fn $name() { check_case($case) } )*

        #[test]
        fn every_case_has_a_test() {
            let mut tested = vec![$($case),*];
            tested.sort();
            let mut known = hostile::CASES.to_vec();
            known.sort();
            assert_eq!(tested, known);
        }
    };
}

hostile_cases!(
    not_a_tar => "not-a-tar",
    truncated_tarball => "truncated",
    missing_layer => "missing-layer",
    layer_digest_mismatch => "layer-digest-mismatch",
    diffid_mismatch => "diffid-mismatch",
    dotdot_entry => "dotdot-entry",
    absolute_entry => "absolute-entry",
    absolute_symlink_then_write_through_it => "absolute-symlink-write",
    relative_symlink_then_write_through_it => "relative-symlink-write",
    hardlink_to_host_file => "hardlink-host-file",
    hardlink_to_host_file_then_write => "hardlink-write-through",
    dir_swapped_for_symlink => "dir-swapped-for-symlink",
    symlink_in_lower_layer_then_write_through_it => "cross-layer-symlink",
    unknown_media_type => "unknown-media-type",
    descriptor_claims_2_gib => "oversized-descriptor",
);

/// What the store looked like before a hostile load.
struct Before {
    ids: Vec<String>,
    tags: Vec<String>,
    content: BTreeSet<PathBuf>,
    snapshots: BTreeSet<PathBuf>,
}

fn snapshot_state(d: &Daemon) -> Before {
    Before {
        ids: d.image_ids(),
        tags: d.image_tags(),
        content: disk::walk(&d.content_dir()),
        snapshots: disk::walk(&d.snapshots_dir()),
    }
}

/// Top-level snapshot names that are not temp/in-progress state.
fn committed_snapshots(paths: &BTreeSet<PathBuf>) -> BTreeSet<String> {
    paths
        .iter()
        .filter(|p| p.components().count() == 1)
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|n| {
            let lower = n.to_ascii_lowercase();
            !(n.starts_with('.')
                || lower.contains("tmp")
                || lower.contains("temp")
                || lower.contains("partial")
                || lower.contains("ingest"))
        })
        .collect()
}

/// Fails if any file named with the escape marker exists outside a snapshot's own directory.
fn assert_nothing_escaped(d: &Daemon, token: &str, case: &str) {
    let marker = hostile::escape_marker(token);
    for outside in [
        PathBuf::from("/tmp").join(&marker),
        PathBuf::from("/").join(&marker),
        d.dir().parent().unwrap_or(Path::new("/")).join(&marker),
    ] {
        assert!(
            std::fs::symlink_metadata(&outside).is_err(),
            "{case}: {} was written outside the data-root",
            outside.display()
        );
    }
    let snapshots = d.snapshots_dir();
    for path in disk::walk(d.dir()) {
        if !path.to_string_lossy().contains(&marker) {
            continue;
        }
        let full = d.dir().join(&path);
        // Inside a snapshot, at least <key>/<something>/<marker>: contained, allowed.
        let contained = full
            .strip_prefix(&snapshots)
            .is_ok_and(|rel| rel.components().count() >= 3);
        assert!(
            contained,
            "{case}: {} escaped its layer directory",
            full.display()
        );
    }
}

fn check_case(name: &str) {
    let token = token();
    let case = hostile::case(name, &token).expect("building the hostile case");
    let victim = hostile::victim_path(&token);
    std::fs::write(&victim, "original\n").expect("creating the victim file");
    let _cleanup = RemoveOnDrop(victim.clone());
    let passwd_links = std::fs::metadata("/etc/passwd")
        .map(|m| m.nlink())
        .unwrap_or(0);

    let mut d = Daemon::start();
    d.load(&[&testimg::busybox().expect("busybox")]);
    let before = snapshot_state(&d);

    // The raw API first: a 4xx with Docker's {"message": ...}.
    let resp = d.api_with_headers(
        "POST",
        "/v1.41/images/load?quiet=1",
        &[("Content-Type", "application/x-tar")],
        Some(&case.tarball),
    );
    let refused = (400..500).contains(&resp.status);
    if case.must_refuse {
        assert!(
            refused,
            "{name} ({}): expected a 4xx, got {} {}",
            case.what,
            resp.status,
            resp.text()
        );
        let message = resp.message().unwrap_or_default();
        assert!(
            !message.trim().is_empty(),
            "{name}: a 4xx without a message: {}",
            resp.text()
        );
        // Clear means readable: no raw bytes of the input echoed back, a bounded length.
        assert!(
            message.len() <= 1024 && !message.chars().any(|c| c.is_control() || c == '\u{fffd}'),
            "{name}: the error message is not clear text: {message:?}"
        );
    } else {
        assert!(
            refused || resp.status == 200,
            "{name}: expected 200 or a 4xx, got {} {}",
            resp.status,
            resp.text()
        );
    }
    assert!(d.is_running(), "{name}: the daemon died\n{}", d.log());
    assert_nothing_escaped(&d, &token, name);
    assert_eq!(
        std::fs::read_to_string(&victim).ok().as_deref(),
        Some("original\n"),
        "{name}: the host file was written through a hardlink"
    );
    assert_eq!(
        std::fs::metadata("/etc/passwd")
            .map(|m| m.nlink())
            .unwrap_or(0),
        passwd_links,
        "{name}: /etc/passwd got a new hardlink"
    );

    if refused {
        // The docker CLI shows the error and exits 1.
        let path = d.dir().join("hostile.tar");
        std::fs::write(&path, &case.tarball).expect("writing the hostile tarball");
        let out = d.docker(&["load", "-i", &path.to_string_lossy()]);
        out.fails_with(1);
        assert!(!out.stderr.trim().is_empty(), "{name}: {out}");
        assert!(!out.stdout.contains("Loaded image"), "{name}: {out}");

        assert_eq!(d.image_ids(), before.ids, "{name}: images changed");
        assert_eq!(d.image_tags(), before.tags, "{name}: tags changed");
        let now = disk::walk(&d.snapshots_dir());
        assert_eq!(
            committed_snapshots(&now),
            committed_snapshots(&before.snapshots),
            "{name}: a snapshot of the failed load remains"
        );
        // Whatever temp state remains is collected by a restart.
        d.restart();
        let settled = estiba_e2e::wait_until(Duration::from_secs(10), || {
            disk::walk(&d.content_dir()) == before.content
                && disk::walk(&d.snapshots_dir()) == before.snapshots
        });
        assert!(
            settled,
            "{name}: after a restart the store differs from before the load\n\
             content added: {:?}\ncontent removed: {:?}\nsnapshots added: {:?}\nsnapshots removed: {:?}",
            disk::walk(&d.content_dir()).difference(&before.content).collect::<Vec<_>>(),
            before.content.difference(&disk::walk(&d.content_dir())).collect::<Vec<_>>(),
            disk::walk(&d.snapshots_dir()).difference(&before.snapshots).collect::<Vec<_>>(),
            before.snapshots.difference(&disk::walk(&d.snapshots_dir())).collect::<Vec<_>>(),
        );
        assert_eq!(
            d.image_ids(),
            before.ids,
            "{name}: images changed after restart"
        );
    }
}

/// Removes a host file when the test ends, passed or failed.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn manifest_json_of_100_mb_is_refused_without_eating_memory() {
    let d = Daemon::start();
    d.load(&[&testimg::busybox().expect("busybox")]);
    let before = snapshot_state(&d);
    let tarball = hostile::write_huge_manifest(Vec::new(), 100 * 1024 * 1024)
        .expect("making the huge manifest");
    let resp = d.api_with_headers(
        "POST",
        "/v1.41/images/load?quiet=1",
        &[("Content-Type", "application/x-tar")],
        Some(&tarball),
    );
    drop(tarball);
    assert!(
        (400..500).contains(&resp.status),
        "expected a 4xx, got {} {}",
        resp.status,
        resp.text()
    );
    let pid = d.pid().expect("daemon pid");
    let rss = disk::rss_kib(pid).expect("daemon RSS");
    assert!(
        rss < 96 * 1024,
        "estibad RSS is {rss} KiB after a 100 MB manifest"
    );
    assert_eq!(d.image_ids(), before.ids);
    assert_eq!(d.image_tags(), before.tags);
}
