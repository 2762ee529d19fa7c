//! runc's wording for a container command that cannot be executed.
//!
//! libcontainer reports a failed execve as "executable 'X' not found in $PATH" (or "does not have
//! correct permissions"), wording the docker CLI does not know: it picks its exit code from
//! runc's wording (127 for "executable file not found" or "no such file or directory", 126 for
//! "permission denied"), so we look the command up in the container's rootfs the way runc's
//! `exec.LookPath` does after the chroot and say what runc would say.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use oci_spec::runtime::Spec;
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a path inside the rootfs turned out to be.
#[derive(Debug, PartialEq, Eq)]
enum Lookup {
    Missing,
    NotExecutable,
    Executable,
}

/// Stats `path` inside `rootfs`, resolving symlinks and `..` within the rootfs only.
fn lookup(rootfs: &Path, path: &str) -> Lookup {
    let Ok(root) = rustix::fs::open(rootfs, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()) else {
        return Lookup::Missing;
    };
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let Ok(fd) = rustix::fs::openat2(
        &root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) else {
        return Lookup::Missing;
    };
    match rustix::fs::fstat(&fd) {
        Ok(st) => {
            let mode = std::fs::Permissions::from_mode(st.st_mode).mode();
            if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && mode & 0o111 != 0 {
                Lookup::Executable
            } else {
                Lookup::NotExecutable
            }
        }
        Err(_) => Lookup::Missing,
    }
}

/// runc's message for the spec's command, when the command is what cannot be executed; None
/// when the command looks executable (the failure was something else).
pub(crate) fn describe(bundle: &Path, spec: &Spec) -> Option<String> {
    let process = spec.process().as_ref()?;
    let name = process.args().as_ref()?.first()?.clone();
    let root = spec.root().as_ref()?.path();
    let rootfs = if root.is_absolute() {
        root.to_path_buf()
    } else {
        bundle.join(root)
    };
    if name.contains('/') {
        let full = if name.starts_with('/') {
            name.clone()
        } else {
            format!("{}/{name}", process.cwd().display())
        };
        return match lookup(&rootfs, &full) {
            Lookup::Missing => Some(format!(
                "unable to start container process: exec: \"{name}\": stat {name}: no such file or directory"
            )),
            Lookup::NotExecutable => Some(format!(
                "unable to start container process: exec: \"{name}\": permission denied"
            )),
            Lookup::Executable => None,
        };
    }
    let path = process
        .env()
        .as_ref()
        .and_then(|env| env.iter().rev().find_map(|e| e.strip_prefix("PATH=")))
        .unwrap_or(DEFAULT_PATH)
        .to_owned();
    let found = path
        .split(':')
        .filter(|dir| !dir.is_empty())
        .any(|dir| lookup(&rootfs, &format!("{dir}/{name}")) == Lookup::Executable);
    (!found).then(|| {
        format!(
            "unable to start container process: exec: \"{name}\": executable file not found in $PATH"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(args: &[&str], rootfs: &Path) -> Spec {
        let mut spec = Spec::default();
        let mut process = spec.process().clone().unwrap_or_default();
        process.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        process.set_env(Some(vec!["PATH=/bin".to_string()]));
        spec.set_process(Some(process));
        let mut root = spec.root().clone().unwrap_or_default();
        root.set_path(rootfs.to_path_buf());
        spec.set_root(Some(root));
        spec
    }

    #[test]
    fn messages_follow_runc() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            rootfs.join("bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/data"), b"x").unwrap();
        // A symlink out of the rootfs must be resolved inside it, not on the host.
        std::os::unix::fs::symlink("/bin/sh", rootfs.join("bin/escape")).unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            ("tool", None),
            ("/bin/tool", None),
            (
                "nosuch",
                Some("exec: \"nosuch\": executable file not found in $PATH"),
            ),
            (
                "/no/such",
                Some("exec: \"/no/such\": stat /no/such: no such file or directory"),
            ),
            ("/etc", Some("exec: \"/etc\": permission denied")),
            ("/etc/data", Some("exec: \"/etc/data\": permission denied")),
            (
                "escape",
                Some("exec: \"escape\": executable file not found in $PATH"),
            ),
        ];
        for (cmd, want) in cases {
            let got = describe(dir.path(), &spec(&[cmd], &rootfs));
            match want {
                None => assert_eq!(got, None, "{cmd}"),
                Some(w) => assert_eq!(
                    got.as_deref(),
                    Some(format!("unable to start container process: {w}").as_str()),
                    "{cmd}"
                ),
            }
        }
    }
}
