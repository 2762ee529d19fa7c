//! The context index: refused entries, listing, in-context resolution, the spool.

use super::*;

/// A tar of (name, type, content or link target) entries, built by hand so that names the
/// tar crate's builder refuses (`../x`, `/abs`) can be written.
fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_mode(0o640);
        header.set_mtime(1_000);
        header.set_entry_type(*kind);
        if *kind == tar::EntryType::Regular {
            header.set_size(data.len() as u64);
        } else {
            header.set_size(0);
            if !data.is_empty() {
                header.as_old_mut().linkname[..data.len()].copy_from_slice(data);
            }
        }
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        if *kind == tar::EntryType::Regular {
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn read(t: &[u8], budget: u64) -> (tempfile::TempDir, Result<Context, BuildError>) {
    read_mapped(t, budget, 0)
}

fn read_mapped(
    t: &[u8],
    budget: u64,
    mapped: u64,
) -> (tempfile::TempDir, Result<Context, BuildError>) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Context::read_with(&mut &t[..], dir.path(), budget, mapped);
    (dir, ctx)
}

const F: tar::EntryType = tar::EntryType::Regular;
const L: tar::EntryType = tar::EntryType::Symlink;
const D: tar::EntryType = tar::EntryType::Directory;

#[test]
fn escaping_entries_are_refused() {
    for (name, ok) in [
        ("a/b", true),
        ("./a", true),
        ("../evil", false),
        ("/abs", false),
        ("a/../../x", false),
        ("a/../b", false),
    ] {
        let (dir, ctx) = read(&tar_of(&[(name, F, b"x")]), 1 << 20);
        assert_eq!(ctx.is_ok(), ok, "{name}");
        if let Err(e) = ctx {
            assert!(e.to_string().contains("outside the context"), "{e}");
        }
        // Nothing was written anywhere: not beside the spool directory, not in it.
        assert!(!dir.path().parent().unwrap().join("evil").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

#[test]
fn entries_under_a_symlink_or_a_file_are_refused() {
    let t = tar_of(&[("link", L, b"/etc"), ("link/passwd", F, b"x")]);
    let e = read(&t, 1 << 20).1.unwrap_err().to_string();
    assert!(e.contains("not a directory"), "{e}");
    let t = tar_of(&[("f", F, b"1"), ("f/g", F, b"2")]);
    assert!(read(&t, 1 << 20).1.is_err());
}

#[test]
fn listing_and_walking_follow_the_tree() {
    let t = tar_of(&[
        ("a", D, b""),
        ("a/x", F, b"1"),
        ("a.txt", F, b"2"),
        ("a/sub/y", F, b"3"),
        ("a/z", F, b"4"),
        ("b", F, b"5"),
    ]);
    let ctx = read(&t, 1 << 20).1.unwrap();
    assert_eq!(ctx.list(""), vec!["a", "a.txt", "b"]);
    assert_eq!(ctx.list("a"), vec!["sub", "x", "z"]);
    let sub: Vec<&String> = ctx.subtree("a").map(|(k, _)| k).collect();
    assert_eq!(sub, vec!["a/sub", "a/sub/y", "a/x", "a/z"]);
    // The implicit parent is a directory.
    assert!(matches!(ctx.get("a/sub").unwrap().kind, Kind::Dir));
}

#[test]
fn symlinks_resolve_inside_the_context() {
    let t = tar_of(&[
        ("etc", D, b""),
        ("etc/passwd", F, b"context's"),
        ("abs", L, b"/etc"),
        ("up", L, b"../../../etc"),
        ("loop", L, b"loop"),
        ("df", L, b"real.Dockerfile"),
        ("real.Dockerfile", F, b"FROM scratch\n"),
    ]);
    let ctx = read(&t, 1 << 20).1.unwrap();
    // An absolute or climbing target lands on the context's /etc, never the host's.
    assert_eq!(
        ctx.resolve("abs/passwd", false).unwrap().unwrap(),
        "etc/passwd"
    );
    assert_eq!(
        ctx.resolve("up/passwd", false).unwrap().unwrap(),
        "etc/passwd"
    );
    assert_eq!(
        ctx.read_file("abs/passwd", 100).unwrap().unwrap(),
        b"context's"
    );
    assert_eq!(ctx.resolve("abs/shadow", false).unwrap(), None);
    // The last element is followed only when asked.
    assert_eq!(ctx.resolve("abs", false).unwrap().unwrap(), "abs");
    assert_eq!(ctx.resolve("abs", true).unwrap().unwrap(), "etc");
    assert!(ctx.resolve("loop/x", false).is_err());
    assert_eq!(
        ctx.read_file("df", 100).unwrap().unwrap(),
        b"FROM scratch\n"
    );
    assert!(ctx.read_file("df", 3).is_err());
}

/// Tests that map content run one at a time: they check the all-builds count exactly.
static MAPS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn content_past_the_memory_budget_is_mapped_or_spooled_and_digests_match() {
    let _only = MAPS.lock().unwrap_or_else(|e| e.into_inner());
    let big = vec![7u8; 10_000];
    let t = tar_of(&[("small", F, b"abc"), ("big", F, &big), ("big2", F, &big)]);
    // The heap takes "small", a mapping "big", the spool "big2".
    let (dir, ctx) = read_mapped(&t, 5_000, 15_000);
    let ctx = ctx.unwrap();
    assert!(matches!(
        &ctx.get("big").unwrap().kind,
        Kind::File {
            data: DataRef(Data::Mapped(_)),
            ..
        }
    ));
    assert!(matches!(
        &ctx.get("big2").unwrap().kind,
        Kind::File {
            data: DataRef(Data::Spool { .. }),
            ..
        }
    ));
    for (name, want) in [("small", &b"abc"[..]), ("big", &big), ("big2", &big)] {
        let Kind::File { digest, data } = &ctx.get(name).unwrap().kind else {
            panic!("{name} is not a file");
        };
        let mut got = Vec::new();
        ctx.open(data).read_to_end(&mut got).unwrap();
        assert_eq!(got, want, "{name}");
        assert_eq!(digest, blake3::hash(want).as_bytes(), "{name}");
    }
    // The spool file is unlinked: nothing is left under its directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A truncated stream is an error, not a short file.
    let cut = &t[..512 + 512 + 512 + 2000];
    assert!(read(cut, 5_000).1.is_err());
}

#[test]
fn materialised_context_has_the_files() {
    use std::os::unix::fs::PermissionsExt;
    let t = tar_of(&[("d/f", F, b"hi"), ("d/l", L, b"f")]);
    let ctx = read(&t, 1 << 20).1.unwrap();
    let base = tempfile::tempdir().unwrap();
    let target = base.path().join("ctx");
    let make = || {
        std::fs::create_dir(&target).unwrap();
        Ok(crate::TempDir(target.clone()))
    };
    let dir = ctx.materialise(make).unwrap();
    assert_eq!(std::fs::read(dir.join("d/f")).unwrap(), b"hi");
    assert_eq!(std::fs::read_link(dir.join("d/l")).unwrap(), Path::new("f"));
    let mode = std::fs::metadata(dir.join("d/f"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    // A second call reuses it.
    assert_eq!(ctx.materialise(|| panic!("made twice")).unwrap(), dir);
    drop(ctx);
    assert!(!target.exists(), "removed with the context");
}

#[test]
fn mapped_bytes_are_given_back_with_the_context() {
    let _only = MAPS.lock().unwrap_or_else(|e| e.into_inner());
    let big = vec![9u8; 300_000];
    let t = tar_of(&[("big", F, &big)]);
    let ctx = read_mapped(&t, 0, 1 << 20).1.unwrap();
    assert!(matches!(
        &ctx.get("big").unwrap().kind,
        Kind::File {
            data: DataRef(Data::Mapped(_)),
            ..
        }
    ));
    assert_eq!(MAPPED_NOW.load(Ordering::Acquire), 300_000);
    drop(ctx);
    assert_eq!(MAPPED_NOW.load(Ordering::Acquire), 0);
    // A truncated file gives its share back too.
    let cut = &t[..512 + 1000];
    assert!(read_mapped(cut, 0, 1 << 20).1.is_err());
    assert_eq!(MAPPED_NOW.load(Ordering::Acquire), 0);
    // Past the all-builds allowance, a file goes to the spool.
    let hog = MapLease::take(MAX_MAPPED_BYTES_ALL - 100_000).unwrap();
    let ctx = read_mapped(&t, 0, 1 << 20).1.unwrap();
    assert!(matches!(
        &ctx.get("big").unwrap().kind,
        Kind::File {
            data: DataRef(Data::Spool { .. }),
            ..
        }
    ));
    drop(hog);
    assert_eq!(MAPPED_NOW.load(Ordering::Acquire), 0);
}
