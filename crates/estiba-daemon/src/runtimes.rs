//! Which OCI runtimes containers can use: `estiba-runtime` (next to estibad) and `runc` (from
//! `PATH`). The default is `estiba-runtime` when its binary is there and answers `--version`,
//! else `runc`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use estiba_container::RuntimeConfig;

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

/// The known runtimes and the default's name.
pub(crate) fn detect() -> (BTreeMap<String, RuntimeConfig>, String) {
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
