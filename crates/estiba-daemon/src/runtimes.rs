//! Which OCI runtimes containers can use: `estiba-runtime` (next to estibad) and `runc` (from
//! `PATH`). The default is `estiba-runtime` when its binary is there and answers `--version`,
//! else `runc`. daemon.json's `runtimes` adds more by name and `default-runtime` picks the
//! default, as in dockerd.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use estiba_container::RuntimeConfig;

use crate::config::RuntimeSpec;

/// A binary in the same directory as the running estibad.
pub(crate) fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn works(path: &PathBuf) -> bool {
    path.is_file()
        && Command::new(path)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// What is wrong with the configured runtimes; the messages are dockerd's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RuntimesError {
    #[error("runtime name '{0}' is reserved")]
    Reserved(String),
    #[error("specified default runtime '{0}' does not exist")]
    NoDefault(String),
}

/// The built-in runtimes plus those from daemon.json, and the default's name.
pub(crate) fn resolve(
    configured: &BTreeMap<String, RuntimeSpec>,
    default_runtime: Option<&str>,
) -> Result<(BTreeMap<String, RuntimeConfig>, String), RuntimesError> {
    let (mut runtimes, mut default) = detect();
    for (name, spec) in configured {
        if runtimes.contains_key(name) {
            return Err(RuntimesError::Reserved(name.clone()));
        }
        runtimes.insert(
            name.clone(),
            RuntimeConfig {
                path: spec.path.clone(),
                args: spec.args.clone(),
            },
        );
    }
    if let Some(name) = default_runtime {
        if !runtimes.contains_key(name) {
            return Err(RuntimesError::NoDefault(name.to_string()));
        }
        default = name.to_string();
    }
    Ok((runtimes, default))
}

/// The built-in runtimes and the default's name.
fn detect() -> (BTreeMap<String, RuntimeConfig>, String) {
    let mut runtimes = BTreeMap::new();
    let estiba = sibling("estiba-runtime");
    let estiba_works = works(&estiba);
    runtimes.insert(
        "estiba-runtime".to_string(),
        RuntimeConfig {
            path: estiba,
            args: Vec::new(),
        },
    );
    runtimes.insert(
        "runc".to_string(),
        RuntimeConfig {
            path: PathBuf::from("runc"),
            args: Vec::new(),
        },
    );
    let default = if estiba_works && std::env::var_os("ESTIBA_DEFAULT_RUNTIME").is_none() {
        "estiba-runtime"
    } else {
        "runc"
    };
    let default = std::env::var("ESTIBA_DEFAULT_RUNTIME")
        .ok()
        .filter(|r| runtimes.contains_key(r))
        .unwrap_or_else(|| default.to_string());
    (runtimes, default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> RuntimeSpec {
        RuntimeSpec {
            path: PathBuf::from(path),
            args: vec!["--a".to_string()],
        }
    }

    #[test]
    fn configured_runtimes_join_the_builtin_ones() {
        let mut configured = BTreeMap::new();
        configured.insert("myrunc".to_string(), spec("/usr/sbin/runc"));
        let (all, default) = resolve(&configured, Some("myrunc")).unwrap();
        assert_eq!(default, "myrunc");
        assert_eq!(all["myrunc"].path, PathBuf::from("/usr/sbin/runc"));
        assert_eq!(all["myrunc"].args, vec!["--a".to_string()]);
        assert!(all.contains_key("runc") && all.contains_key("estiba-runtime"));
    }

    #[test]
    fn errors_use_dockerd_wording() {
        let mut configured = BTreeMap::new();
        configured.insert("runc".to_string(), spec("/x"));
        let err = resolve(&configured, None).unwrap_err();
        assert_eq!(err.to_string(), "runtime name 'runc' is reserved");
        let err = resolve(&BTreeMap::new(), Some("nope")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "specified default runtime 'nope' does not exist"
        );
    }
}
