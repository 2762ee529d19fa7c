//! The images themselves: `busybox` (one layer), `layered` (busybox plus three layers exercising
//! whiteouts, opaque dirs, links, owners and modes) and `big` (one ~75 MB layer for benchmarks).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::layer::LayerBuilder;
use crate::{sha256_digest, TestImage, TestImageError};

/// Where Debian's busybox-static puts its binary.
pub const HOST_BUSYBOX: &str = "/bin/busybox";

/// `created` of every config and history entry (matches the tar mtimes).
pub const CREATED: &str = "2024-01-01T00:00:00Z";

/// Applets linked to `/bin/busybox` in the busybox layer.
pub const APPLETS: &[&str] = &[
    "ash",
    "awk",
    "basename",
    "cat",
    "chmod",
    "chown",
    "cp",
    "cut",
    "date",
    "dd",
    "df",
    "diff",
    "dirname",
    "du",
    "echo",
    "env",
    "expr",
    "false",
    "find",
    "free",
    "grep",
    "gunzip",
    "gzip",
    "head",
    "hexdump",
    "hostname",
    "httpd",
    "id",
    "ifconfig",
    "ip",
    "kill",
    "less",
    "ln",
    "ls",
    "md5sum",
    "mkdir",
    "more",
    "mount",
    "mv",
    "nc",
    "nslookup",
    "od",
    "ping",
    "printf",
    "ps",
    "pwd",
    "readlink",
    "realpath",
    "rm",
    "sed",
    "seq",
    "sh",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "tail",
    "tar",
    "tee",
    "test",
    "timeout",
    "top",
    "touch",
    "tr",
    "true",
    "umount",
    "uname",
    "uniq",
    "uptime",
    "vi",
    "watch",
    "wc",
    "wget",
    "which",
    "whoami",
    "xargs",
    "yes",
];

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bytes of the `big` image's single layer, roughly (busybox included).
pub const BIG_TARGET_BYTES: u64 = 75_000_000;

#[derive(Serialize)]
struct ImageConfig {
    architecture: String,
    config: RunConfig,
    created: &'static str,
    history: Vec<History>,
    os: &'static str,
    rootfs: RootFs,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    env: Vec<String>,
    cmd: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    working_dir: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
    created_by: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    comment: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    empty_layer: bool,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

/// The Go architecture name of this machine, as image configs spell it.
pub fn go_arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64".to_owned(),
        "aarch64" => "arm64".to_owned(),
        "x86" => "386".to_owned(),
        "powerpc64" => "ppc64le".to_owned(),
        other => other.to_owned(),
    }
}

fn history(created_by: &str, empty_layer: bool) -> History {
    History {
        created: CREATED,
        created_by: created_by.to_owned(),
        comment: String::new(),
        empty_layer,
    }
}

fn assemble(
    repo_tags: &[&str],
    layers: Vec<Vec<u8>>,
    config: RunConfig,
    history: Vec<History>,
) -> Result<TestImage, TestImageError> {
    let diff_ids = layers.iter().map(|l| sha256_digest(l)).collect();
    let config = ImageConfig {
        architecture: go_arch(),
        config,
        created: CREATED,
        history,
        os: "linux",
        rootfs: RootFs {
            kind: "layers",
            diff_ids,
        },
    };
    Ok(TestImage {
        repo_tags: repo_tags.iter().map(|t| (*t).to_owned()).collect(),
        layers,
        config: serde_json::to_vec(&config).map_err(TestImageError::Json)?,
    })
}

fn read_host(path: &str) -> Result<Vec<u8>, TestImageError> {
    std::fs::read(path).map_err(|source| TestImageError::ReadHost {
        path: Path::new(path).to_path_buf(),
        source,
    })
}

/// Adds the busybox root filesystem (binary, applet links, passwd, group, standard dirs).
fn add_busybox_rootfs(layer: &mut LayerBuilder) -> Result<(), TestImageError> {
    let busybox = read_host(HOST_BUSYBOX)?;
    for dir in [
        "bin", "dev", "etc", "home", "proc", "root", "sys", "usr", "usr/bin", "var",
    ] {
        layer.dir(dir, 0o755);
    }
    layer
        .dir("root", 0o700)
        .dir("tmp", 0o1777)
        .dir("var/tmp", 0o1777);
    layer.file("bin/busybox", 0o755, busybox);
    for applet in APPLETS {
        layer.symlink(&format!("bin/{applet}"), "busybox");
    }
    layer.file(
        "etc/passwd",
        0o644,
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    );
    layer.file("etc/group", 0o644, "root:x:0:\nnogroup:x:65534:\n");
    layer.file("etc/hostname", 0o644, "estiba\n");
    Ok(())
}

/// The uncompressed busybox layer alone (shared, byte for byte, by `busybox` and `layered`).
pub fn busybox_layer() -> Result<Vec<u8>, TestImageError> {
    let mut layer = LayerBuilder::new();
    add_busybox_rootfs(&mut layer)?;
    // `root` is added twice (0755 then 0700): the last one wins.
    layer.finish_dedup()
}

fn busybox_history() -> Vec<History> {
    vec![
        history("ADD busybox-static / # estiba-testimg", false),
        history("CMD [\"sh\"]", true),
    ]
}

fn busybox_config() -> RunConfig {
    RunConfig {
        env: vec![PATH_ENV.to_owned()],
        cmd: vec!["sh".to_owned()],
        ..RunConfig::default()
    }
}

/// `busybox:latest`: one layer with Debian's static busybox and its applet symlinks.
pub fn busybox() -> Result<TestImage, TestImageError> {
    assemble(
        &["busybox:latest"],
        vec![busybox_layer()?],
        busybox_config(),
        busybox_history(),
    )
}

/// `count` distinct small images (`many/N:latest`, N from 0) for the list benchmark: they share
/// one tiny layer and differ by a label, so their IDs differ while the archive stays small.
pub fn many(count: usize) -> Result<Vec<TestImage>, TestImageError> {
    let mut layer = LayerBuilder::new();
    layer.file("hello.txt", 0o644, "hello\n");
    let layer = layer.finish()?;
    (0..count)
        .map(|i| {
            let mut config = busybox_config();
            config
                .labels
                .insert("org.estiba.bench.index".to_owned(), i.to_string());
            assemble(
                &[&format!("many/{i}:latest")],
                vec![layer.clone()],
                config,
                vec![history("ADD hello.txt / # estiba-testimg", false)],
            )
        })
        .collect()
}

/// `estiba/layered:latest`: busybox plus three layers.
///
/// Layer 2 adds `/data` (`deleted.txt`, `modified.txt` = "v1\n", `opaque/{a,b}.txt`, `keep.txt`,
/// `hard` a hardlink to `keep.txt`, `link` -> `modified.txt`, `owned` uid/gid 1000 mode 0640).
/// Layer 3 deletes `deleted.txt` (whiteout), makes `opaque/` opaque with only `c.txt`, rewrites
/// `modified.txt` to "v2\n" and deletes `/etc/hostname` from the busybox layer.
/// Layer 4 adds `/usr/local/bin/suid` (mode 04755) and `/app/README`.
/// An `ENV` history entry with `empty_layer` sits between layers 3 and 4.
pub fn layered() -> Result<TestImage, TestImageError> {
    let mut l2 = LayerBuilder::new();
    l2.dir("data", 0o755)
        .file(
            "data/deleted.txt",
            0o644,
            "this file is deleted in layer 3\n",
        )
        .file("data/modified.txt", 0o644, "v1\n")
        .dir("data/opaque", 0o755)
        .file("data/opaque/a.txt", 0o644, "a\n")
        .file("data/opaque/b.txt", 0o644, "b\n")
        .file("data/keep.txt", 0o644, "kept, and hardlinked as hard\n")
        .hardlink("data/keep.txt.hard", "data/keep.txt")
        .symlink("data/link", "modified.txt")
        .file_owned("data/owned", 0o640, 1000, 1000, "owned by 1000:1000\n");
    let mut l3 = LayerBuilder::new();
    l3.dir("data", 0o755)
        .whiteout("data/deleted.txt")
        .file("data/modified.txt", 0o644, "v2\n")
        .dir("data/opaque", 0o755)
        .opaque("data/opaque")
        .file("data/opaque/c.txt", 0o644, "c\n")
        .dir("etc", 0o755)
        .whiteout("etc/hostname");
    let mut l4 = LayerBuilder::new();
    l4.dir("app", 0o755)
        .file("app/README", 0o644, "estiba layered test image\n")
        .dir("usr", 0o755)
        .dir("usr/local", 0o755)
        .dir("usr/local/bin", 0o755)
        .file("usr/local/bin/suid", 0o4755, "#!/bin/sh\nid -u\n");
    let mut hist = busybox_history();
    hist.extend([
        history("COPY data /data # estiba-testimg", false),
        history(
            "RUN rm /data/deleted.txt /etc/hostname && ... # estiba-testimg",
            false,
        ),
        history("ENV ESTIBA_LAYERED=1", true),
        history("COPY app /app # estiba-testimg", false),
        history("WORKDIR /app", true),
    ]);
    let mut labels = BTreeMap::new();
    labels.insert("org.estiba.test".to_owned(), "layered".to_owned());
    let config = RunConfig {
        env: vec![PATH_ENV.to_owned(), "ESTIBA_LAYERED=1".to_owned()],
        cmd: vec!["sh".to_owned()],
        working_dir: "/app".to_owned(),
        labels,
    };
    assemble(
        &["estiba/layered:latest"],
        vec![busybox_layer()?, l2.finish()?, l3.finish()?, l4.finish()?],
        config,
        hist,
    )
}

/// A small deterministic PRNG (splitmix64): the same bytes on every machine and run.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `lo..hi` (hi > lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "the",
    "package",
    "estiba",
    "layer",
    "config",
    "debian",
    "usr",
    "share",
    "doc",
    "lib",
    "copyright",
    "license",
    "daemon",
    "image",
    "overlay",
    "snapshot",
    "digest",
    "sha256",
    "tar",
    "manifest",
    "registry",
    "container",
    "runtime",
    "kernel",
    "mount",
    "namespace",
];

/// File content for the big image: text (compressible, like docs and scripts) or binary noise.
fn big_content(rng: &mut SplitMix64, size: usize, text: bool) -> Vec<u8> {
    if !text {
        let mut buf = vec![0u8; size];
        rng.fill(&mut buf);
        return buf;
    }
    let mut buf = Vec::with_capacity(size + 16);
    while buf.len() < size {
        let word = WORDS[(rng.next_u64() % WORDS.len() as u64) as usize];
        buf.extend_from_slice(word.as_bytes());
        buf.push(if rng.next_u64() % 10 == 0 {
            b'\n'
        } else {
            b' '
        });
    }
    buf.truncate(size);
    buf
}

/// `estiba/big:latest`: one layer of about 75 MB, busybox plus ~2,500-3,000 generated files of
/// mixed sizes (mostly small, a few of a megabyte), half text and half noise, in 60 directories.
pub fn big() -> Result<TestImage, TestImageError> {
    let mut layer = LayerBuilder::new();
    add_busybox_rootfs(&mut layer)?;
    let busybox_bytes = std::fs::metadata(HOST_BUSYBOX)
        .map(|m| m.len())
        .unwrap_or(0);
    let mut rng = SplitMix64::new(0x00E5_71BA);
    let mut total = busybox_bytes;
    layer
        .dir("usr/share", 0o755)
        .dir("usr/share/estiba-big", 0o755);
    const DIRS: u64 = 60;
    for d in 0..DIRS {
        layer.dir(&format!("usr/share/estiba-big/d{d:02}"), 0o755);
    }
    let mut n: u64 = 0;
    while total < BIG_TARGET_BYTES {
        let bucket = rng.range(0, 100);
        let size = match bucket {
            0..=69 => rng.range(256, 8 * 1024),
            70..=96 => rng.range(8 * 1024, 64 * 1024),
            _ => rng.range(64 * 1024, 1024 * 1024),
        };
        let text = n % 2 == 0;
        let ext = if text { "txt" } else { "bin" };
        let name = format!("usr/share/estiba-big/d{:02}/f{n:05}.{ext}", n % DIRS);
        let mode = if n % 7 == 0 { 0o755 } else { 0o644 };
        let content = big_content(&mut rng, size as usize, text);
        layer.file(&name, mode, content);
        total += size;
        n += 1;
    }
    assemble(
        &["estiba/big:latest"],
        vec![layer.finish_dedup()?],
        busybox_config(),
        vec![
            history("ADD rootfs / # estiba-testimg big", false),
            history("CMD [\"sh\"]", true),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// name -> (entry type, mode, uid, gid, link, content) of a layer tar.
    type Listing = BTreeMap<String, (tar::EntryType, u32, u64, u64, String, Vec<u8>)>;

    fn listing(layer: &[u8]) -> Listing {
        let mut out = BTreeMap::new();
        let mut archive = tar::Archive::new(layer);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let h = entry.header().clone();
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            let prev = out.insert(
                name.clone(),
                (
                    h.entry_type(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    link,
                    data,
                ),
            );
            assert!(prev.is_none(), "duplicate entry {name}");
        }
        out
    }

    #[test]
    fn busybox_layer_holds_the_host_binary_and_applets() {
        let image = busybox().unwrap();
        assert_eq!(image.layers.len(), 1);
        let l = listing(&image.layers[0]);
        assert_eq!(l["bin/busybox"].5, std::fs::read(HOST_BUSYBOX).unwrap());
        for applet in ["sh", "ls", "sleep", "wget", "httpd", "top", "id", "env"] {
            let e = &l[&format!("bin/{applet}")];
            assert_eq!((e.0, e.4.as_str()), (tar::EntryType::Symlink, "busybox"));
        }
        assert_eq!(l["tmp/"].1, 0o1777);
        assert_eq!(l["root/"].1, 0o700);
        assert!(String::from_utf8_lossy(&l["etc/passwd"].5).contains("nobody:x:65534"));
        let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
        assert_eq!(config["config"]["Cmd"], serde_json::json!(["sh"]));
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            image.diff_ids()[0].as_str()
        );
        assert_eq!(config["created"], CREATED);
    }

    #[test]
    fn images_are_deterministic() {
        let (a, b) = (busybox().unwrap(), busybox().unwrap());
        assert_eq!(a, b);
        let (a, b) = (layered().unwrap(), layered().unwrap());
        assert_eq!(a, b);
    }

    #[test]
    fn layered_shares_the_busybox_layer_and_has_the_tricky_entries() {
        let base = busybox().unwrap();
        let image = layered().unwrap();
        assert_eq!(image.layers.len(), 4);
        assert_eq!(image.layers[0], base.layers[0]);
        assert_eq!(image.diff_ids()[0], base.diff_ids()[0]);
        assert_ne!(image.id(), base.id());
        let l2 = listing(&image.layers[1]);
        let l3 = listing(&image.layers[2]);
        let l4 = listing(&image.layers[3]);
        use tar::EntryType as T;
        // (layer, name, type, mode, uid, gid, link)
        let cases: &[(&Listing, &str, T, u32, u64, u64, &str)] = &[
            (&l2, "data/owned", T::Regular, 0o640, 1000, 1000, ""),
            (&l2, "data/link", T::Symlink, 0o777, 0, 0, "modified.txt"),
            (
                &l2,
                "data/keep.txt.hard",
                T::Link,
                0o644,
                0,
                0,
                "data/keep.txt",
            ),
            (&l3, "data/.wh.deleted.txt", T::Regular, 0o644, 0, 0, ""),
            (&l3, "data/opaque/.wh..wh..opq", T::Regular, 0o644, 0, 0, ""),
            (&l3, "etc/.wh.hostname", T::Regular, 0o644, 0, 0, ""),
            (&l4, "usr/local/bin/suid", T::Regular, 0o4755, 0, 0, ""),
        ];
        for (layer, name, kind, mode, uid, gid, link) in cases {
            let e = &layer[*name];
            assert_eq!(
                (e.0, e.1, e.2, e.3, e.4.as_str()),
                (*kind, *mode, *uid, *gid, *link),
                "{name}"
            );
        }
        assert_eq!(l2["data/modified.txt"].5, b"v1\n");
        assert_eq!(l3["data/modified.txt"].5, b"v2\n");
        let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
        let history = config["history"].as_array().unwrap();
        let non_empty = history
            .iter()
            .filter(|h| h.get("empty_layer").is_none())
            .count();
        assert_eq!(non_empty, image.layers.len());
        assert!(history
            .iter()
            .any(|h| h["created_by"] == "ENV ESTIBA_LAYERED=1" && h["empty_layer"] == true));
    }

    #[test]
    fn big_is_about_75_mb_in_thousands_of_files() {
        let image = big().unwrap();
        assert_eq!(image.layers.len(), 1);
        let size = image.layers[0].len() as u64;
        assert!(
            (70_000_000..90_000_000).contains(&size),
            "big layer is {size} bytes"
        );
        let files = listing(&image.layers[0]).len();
        assert!((2_000..4_000).contains(&files), "{files} entries");
        assert_eq!(big().unwrap().id(), image.id());
    }
}
