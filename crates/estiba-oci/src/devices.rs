//! Devices: Docker's default device-cgroup allow list, `--device-cgroup-rule`, and the host's
//! device nodes that a privileged container gets.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};
use thiserror::Error;

/// Most device nodes we list from the host's `/dev` (a busy host has a few hundred).
pub const MAX_HOST_DEVICES: usize = 16 * 1024;
/// Deepest directory level under `/dev` we descend into.
const MAX_DEV_DEPTH: usize = 8;

/// Why devices could not be listed or a rule was refused.
#[derive(Debug, Error)]
pub enum DeviceError {
    /// Docker's wording.
    #[error("invalid device cgroup rule format: '{0}'")]
    InvalidRule(String),
    #[error("list devices under {path}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("more than {MAX_HOST_DEVICES} device nodes under /dev")]
    TooMany,
    #[error("build device entry: {0}")]
    Build(String),
    /// moby's wording for a `--device` that cannot be read.
    #[error(
        "error gathering device information while adding custom device \"{path}\": {}",
        go_errno_text(source)
    )]
    Gather {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "error gathering device information while adding custom device \"{0}\": not a device node"
    )]
    NotADevice(String),
    /// moby's wording for a per-device block I/O setting on a path it cannot stat.
    #[error("stat {path}: {}", go_errno_text(source))]
    Stat {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The (major, minor) numbers of the device a path names (symlinks followed), for the
/// per-device block I/O settings (moby's `getBlkioThrottleDevices`).
pub fn device_numbers(path: &str) -> Result<(i64, i64), DeviceError> {
    let meta = std::fs::metadata(path).map_err(|source| DeviceError::Stat {
        path: path.to_owned(),
        source,
    })?;
    let rdev = meta.rdev();
    Ok((
        i64::from(rustix::fs::major(rdev)),
        i64::from(rustix::fs::minor(rdev)),
    ))
}

/// An I/O error as Go prints an errno ("no such file or directory"), for dockerd's messages.
fn go_errno_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup, DeviceError> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access(access.to_owned());
    if let Some(t) = typ {
        b = b.typ(t);
    }
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().map_err(|e| DeviceError::Build(e.to_string()))
}

/// Docker's default device cgroup: deny all; allow null, zero, full, urandom, tty and 5:1
/// (console); deny fuse (10:229). random, ptmx and the pts are the runtime's default devices.
pub fn default_device_rules() -> Result<Vec<LinuxDeviceCgroup>, DeviceError> {
    let c = Some(LinuxDeviceType::C);
    let mut rules = vec![rule(false, None, None, None, "rwm")?];
    for (major, minor) in [(1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1)] {
        rules.push(rule(true, c, Some(major), Some(minor), "rwm")?);
    }
    rules.push(rule(false, c, Some(10), Some(229), "rwm")?);
    Ok(rules)
}

/// The single rule of a privileged container: allow every device.
pub fn allow_all_devices_rule() -> Result<LinuxDeviceCgroup, DeviceError> {
    rule(true, None, None, None, "rwm")
}

/// Parses one `--device-cgroup-rule` (`TYPE MAJOR:MINOR ACCESS`, `*` for any number).
pub fn parse_device_cgroup_rule(text: &str) -> Result<LinuxDeviceCgroup, DeviceError> {
    let invalid = || DeviceError::InvalidRule(text.to_owned());
    let fields: Vec<&str> = text.split(' ').collect();
    let [typ, numbers, access] = fields.as_slice() else {
        return Err(invalid());
    };
    let typ = match *typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(invalid()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(invalid)?;
    let number = |s: &str| -> Result<i64, DeviceError> {
        if s == "*" {
            return Ok(-1);
        }
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        s.parse().map_err(|_| invalid())
    };
    let access_ok = (1..=3).contains(&access.len()) && access.bytes().all(|b| b"rwm".contains(&b));
    if !access_ok {
        return Err(invalid());
    }
    rule(
        true,
        Some(typ),
        Some(number(major)?),
        Some(number(minor)?),
        access,
    )
}

fn device_from_path(path: &Path) -> Result<Option<LinuxDevice>, DeviceError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DeviceError::List {
                path: path.to_owned(),
                source,
            })
        }
    };
    let ft = meta.file_type();
    let typ = if ft.is_block_device() {
        LinuxDeviceType::B
    } else if ft.is_char_device() {
        LinuxDeviceType::C
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    LinuxDeviceBuilder::default()
        .path(path.to_owned())
        .typ(typ)
        .major(i64::from(rustix::fs::major(rdev)))
        .minor(i64::from(rustix::fs::minor(rdev)))
        .file_mode(meta.mode() & 0o7777)
        .uid(meta.uid())
        .gid(meta.gid())
        .build()
        .map(Some)
        .map_err(|e| DeviceError::Build(e.to_string()))
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<LinuxDevice>) -> Result<(), DeviceError> {
    let list_err = |source| DeviceError::List {
        path: dir.to_owned(),
        source,
    };
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
        .map_err(list_err)?
        .collect::<Result<_, _>>()
        .map_err(list_err)?;
    // Go's os.ReadDir returns entries sorted by name.
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let path = entry.path();
        let ft = entry.file_type().map_err(list_err)?;
        if ft.is_dir() {
            let skip = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
            if skip.iter().any(|s| name == *s) || depth >= MAX_DEV_DEPTH {
                continue;
            }
            walk(&path, depth + 1, out)?;
        } else if name == "console" {
            continue;
        } else if let Some(dev) = device_from_path(&path)? {
            if out.len() >= MAX_HOST_DEVICES {
                return Err(DeviceError::TooMany);
            }
            out.push(dev);
        }
    }
    Ok(())
}

/// The device nodes and cgroup rules of one `--device HOST[:CONTAINER[:PERMS]]` (moby's
/// `getDevicesFromPath`): a device node, or every device under a directory (mapped under
/// `in_container` by the same relative path); symlinks on the host path are followed.
pub fn devices_for_mapping(
    on_host: &str,
    in_container: &str,
    permissions: &str,
) -> Result<Vec<(LinuxDevice, LinuxDeviceCgroup)>, DeviceError> {
    let gather = |source: std::io::Error| DeviceError::Gather {
        path: on_host.to_owned(),
        source,
    };
    let resolved = std::fs::canonicalize(on_host).map_err(gather)?;
    let meta = std::fs::metadata(&resolved).map_err(gather)?;
    let target = if in_container.is_empty() {
        on_host
    } else {
        in_container
    };
    let with_rule = |mut dev: LinuxDevice, path: PathBuf| {
        let rule = rule(
            true,
            Some(dev.typ()),
            Some(dev.major()),
            Some(dev.minor()),
            permissions,
        )?;
        dev.set_path(path);
        Ok((dev, rule))
    };
    if meta.is_dir() {
        let mut found = Vec::new();
        walk(&resolved, 0, &mut found)?;
        return found
            .into_iter()
            .map(|dev| {
                let rel = dev
                    .path()
                    .strip_prefix(&resolved)
                    .unwrap_or(dev.path())
                    .to_owned();
                with_rule(dev, Path::new(target).join(rel))
            })
            .collect();
    }
    match device_from_path(&resolved)? {
        Some(dev) => Ok(vec![with_rule(dev, PathBuf::from(target))?]),
        None => Err(DeviceError::NotADevice(on_host.to_owned())),
    }
}

/// moby's check of a `--device` permission string: one to three of r, w, m.
pub fn valid_device_mode(mode: &str) -> bool {
    let mut seen = [false; 3];
    (1..=3).contains(&mode.len())
        && mode
            .bytes()
            .all(|b| match b"rwm".iter().position(|c| *c == b) {
                Some(i) if !seen[i] => {
                    seen[i] = true;
                    true
                }
                _ => false,
            })
}

/// Every block and character device under `dir` (the host's `/dev` for `--privileged`), as
/// containerd's `HostDevices` lists them: no `pts`, `shm`, `fd`, `mqueue`, no `console`, no
/// symlinks, sorted by name within each directory.
pub fn host_devices_under(dir: &Path) -> Result<Vec<LinuxDevice>, DeviceError> {
    let mut out = Vec::new();
    walk(dir, 0, &mut out)?;
    Ok(out)
}

/// [`host_devices_under`] `/dev`.
pub fn host_devices() -> Result<Vec<LinuxDevice>, DeviceError> {
    host_devices_under(Path::new("/dev"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_match_docker() {
        let json = serde_json::to_value(default_device_rules().unwrap()).unwrap();
        let want = serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
        ]);
        assert_eq!(json, want);
    }

    #[test]
    fn cgroup_rule_table() {
        let ok = [
            ("c 1:3 mr", ("c", 1, 3, "mr")),
            ("b *:* rwm", ("b", -1, -1, "rwm")),
            ("a 7:* w", ("a", 7, -1, "w")),
        ];
        for (input, (typ, major, minor, access)) in ok {
            let json = serde_json::to_value(parse_device_cgroup_rule(input).unwrap()).unwrap();
            assert_eq!(
                json,
                serde_json::json!({"allow": true, "type": typ, "major": major, "minor": minor, "access": access}),
                "{input}"
            );
        }
        for bad in [
            "",
            "c 1:3",
            "x 1:3 r",
            "c 1-3 r",
            "c 1:3 rx",
            "c 1:3 rwmr",
            "c a:3 r",
            "c 1:3  r",
        ] {
            let err = parse_device_cgroup_rule(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid device cgroup rule format: '{bad}'")
            );
        }
    }

    #[test]
    fn host_devices_include_null_and_skip_links() {
        let devs = host_devices().unwrap();
        let json = serde_json::to_value(&devs).unwrap();
        let null = json
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["path"] == "/dev/null")
            .expect("/dev/null listed");
        assert_eq!(
            (
                null["type"].as_str(),
                null["major"].as_i64(),
                null["minor"].as_i64()
            ),
            (Some("c"), Some(1), Some(3))
        );
        assert!(devs.iter().all(|d| !d.path().starts_with("/dev/pts")));
        assert!(devs.iter().all(|d| d.path() != Path::new("/dev/console")));
        // /dev/stdin is a symlink: never listed.
        assert!(devs.iter().all(|d| d.path() != Path::new("/dev/stdin")));
    }

    #[test]
    fn device_mappings_as_moby_gathers_them() {
        let got = devices_for_mapping("/dev/null", "/dev/mynull", "rw").unwrap();
        assert_eq!(got.len(), 1);
        let (dev, rule) = &got[0];
        assert_eq!(dev.path(), Path::new("/dev/mynull"));
        assert_eq!((dev.major(), dev.minor()), (1, 3));
        assert_eq!(rule.access().as_deref(), Some("rw"));
        assert_eq!((rule.major(), rule.minor()), (Some(1), Some(3)));

        let same = devices_for_mapping("/dev/null", "", "rwm").unwrap();
        assert_eq!(same[0].0.path(), Path::new("/dev/null"));

        let err = devices_for_mapping("/dev/estiba-nope", "", "rwm").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error gathering device information while adding custom device \"/dev/estiba-nope\": no such file or directory"
        );
        assert!(matches!(
            devices_for_mapping("/etc/hostname", "", "rwm"),
            Err(DeviceError::NotADevice(_))
        ));

        for ok in ["r", "rw", "rwm", "mwr", "m"] {
            assert!(valid_device_mode(ok), "{ok}");
        }
        for bad in ["", "rwx", "rr", "rwmr", "R"] {
            assert!(!valid_device_mode(bad), "{bad}");
        }
    }
}
