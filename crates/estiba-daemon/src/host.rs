//! Facts about the host and this build, for `/version` and `/info`.

use std::io::Read;
use std::path::Path;

/// Files under /proc and /etc are small; anything bigger is not what we expect.
const MAX_PROC_FILE_BYTES: u64 = 64 * 1024;

pub(crate) const RUSTC_VERSION: &str = env!("ESTIBA_RUSTC_VERSION");
pub(crate) const GIT_COMMIT: &str = env!("ESTIBA_GIT_COMMIT");
const BUILD_UNIX: &str = env!("ESTIBA_BUILD_UNIX");
/// estibad's own version (the workspace version).
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The build time as dockerd prints it (RFC 3339 with nanoseconds).
pub(crate) fn build_time() -> String {
    BUILD_UNIX
        .parse::<i64>()
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, false))
        .unwrap_or_default()
}

/// Go's name for the architecture (`amd64`), as `/version` reports it.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

/// Kernel release, hostname and machine (`x86_64`) from uname.
pub(crate) struct Uname {
    pub(crate) kernel_version: String,
    pub(crate) hostname: String,
    pub(crate) machine: String,
}

pub(crate) fn uname() -> Uname {
    let u = rustix::system::uname();
    Uname {
        kernel_version: u.release().to_string_lossy().into_owned(),
        hostname: u.nodename().to_string_lossy().into_owned(),
        machine: u.machine().to_string_lossy().into_owned(),
    }
}

pub(crate) fn read_small(path: &Path) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_PROC_FILE_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// `PRETTY_NAME` and `VERSION_ID` of os-release.
pub(crate) fn os_release(text: &str) -> (String, String) {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let pretty = field("PRETTY_NAME");
    (
        if pretty.is_empty() {
            "Linux".to_string()
        } else {
            pretty
        },
        field("VERSION_ID"),
    )
}

/// `MemTotal` of /proc/meminfo, in bytes.
pub(crate) fn mem_total_bytes(meminfo: &str) -> i64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kb| kb.saturating_mul(1024))
        .unwrap_or(0)
}

/// "2" on a unified (cgroup v2) hierarchy, else "1".
pub(crate) fn cgroup_version(cgroup_root: &Path) -> &'static str {
    if cgroup_root.join("cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

pub(crate) fn ncpu() -> i64 {
    std::thread::available_parallelism()
        .map(|n| i64::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1)
}

/// Open file descriptors of this process.
pub(crate) fn open_fds() -> i64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| i64::try_from(d.count()).unwrap_or(0))
        .unwrap_or(0)
}

/// Threads of this process (reported where dockerd reports goroutines).
pub(crate) fn threads() -> i64 {
    read_small(Path::new("/proc/self/status"))
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Whether the kernel forwards IPv4 packets.
pub(crate) fn ipv4_forwarding() -> bool {
    read_small(Path::new("/proc/sys/net/ipv4/ip_forward")).is_some_and(|s| s.trim() == "1")
}

/// The engine's stable ID, kept in `<data-root>/engine-id` (a random UUID made on first start).
pub(crate) fn engine_id(data_root: &Path) -> std::io::Result<String> {
    let path = data_root.join("engine-id");
    if let Some(id) = read_small(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    let b: [u8; 16] = rand::random();
    let hex = hex_string(&b);
    // UUID version 4, variant 1.
    let id = format!(
        "{}-{}-4{}-{:x}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        (b[8] & 0x3) | 0x8,
        &hex[17..20],
        &hex[20..32]
    );
    let tmp = data_root.join("engine-id.tmp");
    std::fs::write(&tmp, &id)?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_files() {
        let os = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n";
        assert_eq!(
            os_release(os),
            (
                "Debian GNU/Linux 12 (bookworm)".to_string(),
                "12".to_string()
            )
        );
        assert_eq!(os_release(""), ("Linux".to_string(), String::new()));
        assert_eq!(
            mem_total_bytes("MemTotal:       24683656 kB\nMemFree: 1 kB\n"),
            24683656 * 1024
        );
        assert_eq!(mem_total_bytes("garbage"), 0);
    }

    #[test]
    fn engine_id_is_a_stable_uuid() {
        let dir = tempfile::tempdir().unwrap();
        let id = engine_id(dir.path()).unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_eq!(engine_id(dir.path()).unwrap(), id);
    }
}
