//! The local driver's options (`docker volume create --opt type=tmpfs --opt device=tmpfs
//! --opt o=size=64m`): validated at create, mounted with mount(2) on `_data` at first use.

use std::collections::BTreeMap;
use std::path::Path;

use rustix::mount::{MountFlags, UnmountFlags};

/// Option keys the local driver knows (dockerd's `validOpts`).
const VALID_KEYS: [&str; 3] = ["type", "device", "o"];
/// Longest option value accepted.
const MAX_OPTION_BYTES: usize = 4096;

/// dockerd's reason for an unknown option (the caller prefixes `create NAME: `).
pub(crate) fn validate_options(options: &BTreeMap<String, String>) -> Result<(), String> {
    for (k, v) in options {
        if !VALID_KEYS.contains(&k.as_str()) {
            return Err(format!("invalid option: {k:?}"));
        }
        if v.len() > MAX_OPTION_BYTES {
            return Err(format!("option {k:?} is too long"));
        }
    }
    if options.contains_key("device") != options.contains_key("type")
        && !o_words(options).any(|w| w == "bind")
    {
        return Err("missing required option: \"type\" and \"device\" go together".to_string());
    }
    Ok(())
}

fn o_words(options: &BTreeMap<String, String>) -> impl Iterator<Item = &str> {
    options
        .get("o")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .filter(|w| !w.is_empty())
}

/// mount(2) flags of the `o` words that are flags; the rest is the filesystem's data string.
fn split_o(options: &BTreeMap<String, String>) -> (MountFlags, String) {
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    for w in o_words(options) {
        match w {
            "ro" => flags |= MountFlags::RDONLY,
            "rw" => {}
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noexec" => flags |= MountFlags::NOEXEC,
            "noatime" => flags |= MountFlags::NOATIME,
            "bind" => flags |= MountFlags::BIND,
            "rbind" => flags |= MountFlags::BIND | MountFlags::REC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Whether `target` is a mount point (listed in this process's mountinfo).
pub(crate) fn is_mounted(target: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    // mountinfo shows resolved paths: a data-root reached through a symlink must match too.
    let target = std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf());
    let want = target.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| unescape(p) == want)
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let d = |k: usize| u32::from(b[i + k] - b'0');
            out.push(u8::try_from(d(1) * 64 + d(2) * 8 + d(3)).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mounts the options' filesystem on `target` unless something is mounted there already.
pub(crate) fn mount_options(
    options: &BTreeMap<String, String>,
    target: &Path,
) -> Result<(), std::io::Error> {
    if is_mounted(target) {
        return Ok(());
    }
    let (flags, data) = split_o(options);
    let device = options.get("device").map(String::as_str).unwrap_or("");
    let fstype = options.get("type").map(String::as_str).unwrap_or("");
    if flags.contains(MountFlags::BIND) {
        let rec = flags.contains(MountFlags::REC);
        let src = Path::new(device);
        if rec {
            rustix::mount::mount_bind_recursive(src, target)?;
        } else {
            rustix::mount::mount_bind(src, target)?;
        }
        if flags.contains(MountFlags::RDONLY) {
            rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")?;
        }
        return Ok(());
    }
    let data = std::ffi::CString::new(data)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    rustix::mount::mount(device, target, fstype, flags, data.as_c_str())?;
    Ok(())
}

/// Unmounts whatever the options mounted on `target`.
pub(crate) fn unmount_if_mounted(target: &Path) -> Result<(), std::io::Error> {
    if is_mounted(target) {
        rustix::mount::unmount(target, UnmountFlags::DETACH)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_as_docker() {
        assert!(validate_options(&opts(&[])).is_ok());
        assert!(validate_options(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m")
        ]))
        .is_ok());
        assert_eq!(
            validate_options(&opts(&[("foo", "bar")])).unwrap_err(),
            "invalid option: \"foo\""
        );
        assert!(validate_options(&opts(&[("device", "/x"), ("o", "bind")])).is_ok());
    }

    #[test]
    fn o_splits_flags_from_data() {
        let (f, d) = split_o(&opts(&[("o", "ro,size=1m,nosuid,uid=5")]));
        assert!(f.contains(MountFlags::RDONLY | MountFlags::NOSUID));
        assert_eq!(d, "size=1m,uid=5");
    }

    #[test]
    fn mountinfo_unescapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
