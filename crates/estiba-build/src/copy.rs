//! COPY and ADD without a container: the sources (from the context or a stage's root
//! filesystem) become a layer tar directly, entries sorted, plus a checksum of what was copied
//! (paths, content, mode, owner; never mtime) for the cache key.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::BuildError;
use estiba_api::glob::glob;

/// Most files one COPY takes.
const MAX_COPY_ENTRIES: usize = 1_000_000;

/// One COPY's resolved arguments.
#[derive(Debug, Clone)]
pub struct CopySpec {
    /// Source paths as written (expanded), relative to the source root.
    pub sources: Vec<String>,
    /// Absolute destination; a trailing `/` means a directory.
    pub dest: String,
    /// `--chown` as numbers; `None` keeps root (context) or the owner (another stage).
    pub chown: Option<(u64, u64)>,
    /// `--chmod` in octal.
    pub chmod: Option<u32>,
    /// Whether the sources come from the build context (owners become root).
    pub from_context: bool,
    /// ADD: a local tar archive (plain or gzip) is extracted into the destination directory.
    pub extract_archives: bool,
}

/// One file to put in the layer.
struct Item {
    /// Path in the layer, without a leading `/`.
    dest: String,
    src: PathBuf,
    meta: Metadata,
}

fn missing(src: &str, from_context: bool) -> BuildError {
    if from_context {
        BuildError::Step(format!(
            "COPY failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
        ))
    } else {
        BuildError::Step(format!("COPY failed: stat {src}: file does not exist"))
    }
}

/// A source path cleaned lexically and kept inside the root, without its leading `/`.
fn clean_rel(p: &str) -> String {
    crate::layer::clean(p).trim_start_matches('/').to_string()
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The sources, wildcards expanded (in their last element), with the destination each maps to.
fn plan(root: &Path, spec: &CopySpec) -> Result<Vec<Item>, BuildError> {
    let mut roots: Vec<(String, PathBuf)> = Vec::new();
    let mut wildcard = false;
    for src in &spec.sources {
        let rel = clean_rel(src);
        let (dir, leaf) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
        if has_wildcard(leaf) {
            wildcard = true;
            let mut names: Vec<String> = fs::read_dir(root.join(dir))
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .filter_map(|e| e.file_name().into_string().ok())
                        .filter(|n| glob(leaf.as_bytes(), n.as_bytes()))
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            if names.is_empty() {
                return Err(missing(src, spec.from_context));
            }
            for n in names {
                let r = if dir.is_empty() {
                    n.clone()
                } else {
                    format!("{dir}/{n}")
                };
                roots.push((n, root.join(r)));
            }
        } else {
            let path = root.join(&rel);
            if fs::symlink_metadata(&path).is_err() {
                return Err(missing(src, spec.from_context));
            }
            let name = leaf.to_string();
            roots.push((name, path));
        }
    }
    let dest = spec
        .dest
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string();
    let dest_is_dir = spec.dest.ends_with('/') || spec.sources.len() > 1 || wildcard;
    let mut items = Vec::new();
    for (name, path) in roots {
        let meta = fs::symlink_metadata(&path)
            .map_err(|e| BuildError::Step(format!("COPY failed: {e}")))?;
        if meta.is_dir() {
            walk(&path, &dest, meta, &mut items)?;
        } else {
            let target = if dest_is_dir || dest.is_empty() {
                join(&dest, &name)
            } else {
                dest.clone()
            };
            items.push(Item {
                dest: target,
                src: path,
                meta,
            });
        }
    }
    items.sort_by(|a, b| a.dest.cmp(&b.dest));
    items.dedup_by(|a, b| a.dest == b.dest);
    Ok(items)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn walk(dir: &Path, dest: &str, meta: Metadata, items: &mut Vec<Item>) -> Result<(), BuildError> {
    if !dest.is_empty() {
        items.push(Item {
            dest: dest.to_string(),
            src: dir.to_path_buf(),
            meta,
        });
    }
    let io_err = |e: io::Error| BuildError::Step(format!("COPY failed: {}: {e}", dir.display()));
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = entry.path();
        let m = fs::symlink_metadata(&path).map_err(io_err)?;
        let target = join(dest, &name);
        if items.len() >= MAX_COPY_ENTRIES {
            return Err(BuildError::Step("COPY failed: too many files".into()));
        }
        if m.is_dir() {
            walk(&path, &target, m, items)?;
        } else {
            items.push(Item {
                dest: target,
                src: path,
                meta: m,
            });
        }
    }
    Ok(())
}

fn mode_of(spec: &CopySpec, meta: &Metadata) -> u32 {
    spec.chmod.unwrap_or(meta.mode() & 0o7777)
}

fn owner_of(spec: &CopySpec, meta: &Metadata) -> (u64, u64) {
    match spec.chown {
        Some(o) => o,
        None if spec.from_context => (0, 0),
        None => (u64::from(meta.uid()), u64::from(meta.gid())),
    }
}

/// The checksum of what `spec` copies from `root`: changes with any path, content, mode or
/// owner, not with mtimes.
pub fn checksum(root: &Path, spec: &CopySpec) -> Result<String, BuildError> {
    let items = plan(root, spec)?;
    let mut h = Sha256::new();
    for it in &items {
        let (uid, gid) = owner_of(spec, &it.meta);
        h.update(format!("{}\0{:o}\0{uid}:{gid}\0", it.dest, mode_of(spec, &it.meta)).as_bytes());
        let ft = it.meta.file_type();
        if ft.is_symlink() {
            let t = fs::read_link(&it.src)
                .map_err(|e| BuildError::Step(format!("COPY failed: {e}")))?;
            h.update(b"l");
            h.update(t.as_os_str().as_encoded_bytes());
        } else if ft.is_file() {
            h.update(b"f");
            let mut f =
                File::open(&it.src).map_err(|e| BuildError::Step(format!("COPY failed: {e}")))?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = f
                    .read(&mut buf)
                    .map_err(|e| BuildError::Step(format!("COPY failed: {e}")))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        } else {
            h.update(b"d");
        }
        h.update(b"\n");
    }
    Ok(hex::encode(h.finalize()))
}

/// Writes the layer tar of `spec` (sources under `root`) to `out`.
pub fn write_layer(root: &Path, spec: &CopySpec, out: &mut dyn Write) -> Result<(), BuildError> {
    let items = plan(root, spec)?;
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    let io_err = |e: io::Error| BuildError::Step(format!("COPY failed: {e}"));
    for it in &items {
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&it.meta, tar::HeaderMode::Complete);
        let (uid, gid) = owner_of(spec, &it.meta);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mode(mode_of(spec, &it.meta));
        let ft = it.meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&it.src).map_err(io_err)?;
            header.set_size(0);
            tar.append_link(&mut header, &it.dest, &target)
                .map_err(io_err)?;
        } else if ft.is_dir() {
            header.set_size(0);
            tar.append_data(&mut header, format!("{}/", it.dest), io::empty())
                .map_err(io_err)?;
        } else if ft.is_file() {
            if spec.extract_archives && is_archive(&it.src) {
                let dir = if spec.dest.ends_with('/') || it.dest.rsplit_once('/').is_none() {
                    spec.dest.trim_matches('/').to_string()
                } else {
                    it.dest
                        .rsplit_once('/')
                        .map(|(d, _)| d.to_string())
                        .unwrap_or_default()
                };
                extract_into(&mut tar, &it.src, &dir)?;
                continue;
            }
            let f = File::open(&it.src).map_err(io_err)?;
            tar.append_data(&mut header, &it.dest, f).map_err(io_err)?;
        }
    }
    tar.finish().map_err(io_err)?;
    Ok(())
}

/// Whether a file starts like a tar (ustar magic at 257) or a gzip stream.
fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    head[..n].starts_with(&[0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar")
}

/// Copies the entries of the archive at `src` into `tar` under `dir` (ADD's extraction);
/// entries that would leave `dir` are refused.
fn extract_into<W: Write>(
    tar: &mut tar::Builder<W>,
    src: &Path,
    dir: &str,
) -> Result<(), BuildError> {
    let err = |e: io::Error| BuildError::Step(format!("ADD failed: {}: {e}", src.display()));
    let f = File::open(src).map_err(err)?;
    let mut buffered = io::BufReader::new(f);
    let gz = io::BufRead::fill_buf(&mut buffered)
        .map_err(err)?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        let path = entry.path().map_err(err)?.into_owned();
        if !crate::context::contained(&path) {
            return Err(BuildError::Step(format!(
                "ADD failed: {}: the entry {} is outside the destination",
                src.display(),
                path.display()
            )));
        }
        let rel = path.to_string_lossy().trim_end_matches('/').to_string();
        if rel.is_empty() || rel == "." {
            continue;
        }
        let name = join(dir, &rel);
        let mut header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(err)?
                    .unwrap_or_default()
                    .into_owned();
                tar.append_link(&mut header, &name, target).map_err(err)?;
            }
            tar::EntryType::Directory => {
                tar.append_data(&mut header, format!("{name}/"), io::empty())
                    .map_err(err)?;
            }
            _ => tar
                .append_data(&mut header, &name, &mut entry)
                .map_err(err)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn spec(sources: &[&str], dest: &str) -> CopySpec {
        CopySpec {
            sources: sources.iter().map(|s| s.to_string()).collect(),
            dest: dest.into(),
            chown: None,
            chmod: None,
            from_context: true,
            extract_archives: false,
        }
    }

    fn names(root: &Path, s: &CopySpec) -> Vec<String> {
        let mut buf = Vec::new();
        write_layer(root, s, &mut buf).unwrap();
        let mut a = tar::Archive::new(&buf[..]);
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn destinations_follow_docker() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a.txt"), "a").unwrap();
        fs::write(d.path().join("b.txt"), "b").unwrap();
        fs::create_dir(d.path().join("dir")).unwrap();
        fs::write(d.path().join("dir/c"), "c").unwrap();
        assert_eq!(names(d.path(), &spec(&["a.txt"], "/x")), vec!["x"]);
        assert_eq!(names(d.path(), &spec(&["a.txt"], "/x/")), vec!["x/a.txt"]);
        assert_eq!(
            names(d.path(), &spec(&["*.txt"], "/x")),
            vec!["x/a.txt", "x/b.txt"]
        );
        assert_eq!(names(d.path(), &spec(&["dir"], "/y")), vec!["y/", "y/c"]);
        assert_eq!(names(d.path(), &spec(&["../a.txt"], "/")), vec!["a.txt"]);
        assert!(write_layer(d.path(), &spec(&["nope"], "/x"), &mut Vec::new()).is_err());

        // ADD extracts a local archive into the destination directory.
        let mut inner = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        inner.append_data(&mut h, "in/f", &b"x"[..]).unwrap();
        fs::write(d.path().join("a.tar"), inner.into_inner().unwrap()).unwrap();
        let mut add = spec(&["a.tar"], "/opt/");
        add.extract_archives = true;
        assert_eq!(names(d.path(), &add), vec!["opt/in/f"]);
    }

    #[test]
    fn checksum_sees_content_and_mode_not_mtime() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a");
        fs::write(&f, "1").unwrap();
        let s = spec(&["a"], "/a");
        let first = checksum(d.path(), &s).unwrap();
        let t = filetime_now_minus(&f);
        assert_eq!(checksum(d.path(), &s).unwrap(), first, "mtime {t}");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        let moded = checksum(d.path(), &s).unwrap();
        assert_ne!(moded, first);
        fs::write(&f, "2").unwrap();
        assert_ne!(checksum(d.path(), &s).unwrap(), moded);
    }

    fn filetime_now_minus(f: &Path) -> bool {
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        File::options()
            .write(true)
            .open(f)
            .and_then(|h| h.set_modified(old))
            .is_ok()
    }
}
