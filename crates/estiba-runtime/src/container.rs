//! Finding containers: the state root, id validation, loading a container's libcontainer state
//! and its bundle's spec.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use libcontainer::container::Container;
use libcontainer::error::LibcontainerError;
use oci_spec::runtime::Spec;

/// config.json larger than this is refused rather than parsed.
const MAX_SPEC_BYTES: u64 = 16 * 1024 * 1024;
/// Longest container id accepted (runc has no limit; a path component has 255 bytes).
const MAX_ID_BYTES: usize = 1024;
/// How often a state file caught mid-write by another invocation is read again.
const STATE_READ_ATTEMPTS: u32 = 20;
const STATE_READ_RETRY: Duration = Duration::from_millis(2);

/// Creates the state root (0700) when missing and returns its canonical path.
pub(crate) fn prepare_root(root: &Path) -> anyhow::Result<PathBuf> {
    if !root.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .with_context(|| format!("create state root {}", root.display()))?;
    }
    root.canonicalize()
        .with_context(|| format!("resolve state root {}", root.display()))
}

/// Accepts what runc accepts: letters, digits, `_`, `+`, `-`, `.`; not `.` or `..`.
pub(crate) fn validate_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if !ok {
        bail!("invalid id format: {id}");
    }
    Ok(())
}

pub(crate) fn container_dir(root: &Path, id: &str) -> anyhow::Result<PathBuf> {
    validate_id(id)?;
    Ok(root.join(id))
}

pub(crate) fn exists(root: &Path, id: &str) -> anyhow::Result<bool> {
    Ok(container_dir(root, id)?.join("state.json").exists())
}

/// Loads a container, its status refreshed from /proc.
pub(crate) fn load(root: &Path, id: &str) -> anyhow::Result<Container> {
    let dir = container_dir(root, id)?;
    if !dir.join("state.json").exists() {
        bail!("container does not exist");
    }
    // libcontainer rewrites state.json in place (truncate, then write): a concurrent reader can
    // see it empty or half written, so a parse failure is retried a bounded number of times.
    let mut attempt = 0;
    loop {
        match Container::load(dir.clone()) {
            Ok(c) => return Ok(c),
            Err(LibcontainerError::State(
                libcontainer::container::state::StateError::ParseStateFile { .. },
            )) if attempt + 1 < STATE_READ_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(STATE_READ_RETRY);
            }
            Err(LibcontainerError::State(
                libcontainer::container::state::StateError::OpenStateFile { source, .. },
            )) if source.kind() == std::io::ErrorKind::NotFound => {
                bail!("container does not exist")
            }
            Err(e) => return Err(e).context("load container state"),
        }
    }
}

/// Reads `<bundle>/config.json`, bounded in size.
pub(crate) fn read_spec(bundle: &Path) -> anyhow::Result<Spec> {
    let path = bundle.join("config.json");
    let meta = fs::metadata(&path).with_context(|| format!("open {}", path.display()))?;
    if meta.len() > MAX_SPEC_BYTES {
        bail!(
            "{} is too large ({} bytes, limit {MAX_SPEC_BYTES})",
            path.display(),
            meta.len()
        );
    }
    let data = fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("parse {}", path.display()))
}

/// The container's rootfs as an absolute path (relative root.path is relative to the bundle).
pub(crate) fn rootfs_of(bundle: &Path, spec: &Spec) -> PathBuf {
    match spec.root() {
        Some(root) if root.path().is_absolute() => root.path().clone(),
        Some(root) => bundle.join(root.path()),
        None => bundle.join("rootfs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc_rules() {
        let cases: &[(&str, bool)] = &[
            ("abc", true),
            ("a-b_c.d+e", true),
            ("0123456789abcdef0123456789abcdef", true),
            ("", false),
            (".", false),
            ("..", false),
            ("../etc", false),
            ("a/b", false),
            ("a b", false),
            ("é", false),
        ];
        for (id, ok) in cases {
            assert_eq!(validate_id(id).is_ok(), *ok, "id {id:?}");
        }
        assert!(validate_id(&"a".repeat(MAX_ID_BYTES + 1)).is_err());
    }

    #[test]
    fn rootfs_is_resolved_against_the_bundle() {
        let mut spec = Spec::default();
        let bundle = Path::new("/b");
        let mut root = oci_spec::runtime::Root::default();
        root.set_path(PathBuf::from("rootfs"));
        spec.set_root(Some(root.clone()));
        assert_eq!(rootfs_of(bundle, &spec), PathBuf::from("/b/rootfs"));
        root.set_path(PathBuf::from("/abs/rfs"));
        spec.set_root(Some(root));
        assert_eq!(rootfs_of(bundle, &spec), PathBuf::from("/abs/rfs"));
    }
}
