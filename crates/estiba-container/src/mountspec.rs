//! Parsing and validating a container's mounts as dockerd does: the `-v` short form
//! (`HostConfig.Binds`), the `--mount` long form (`HostConfig.Mounts`), anonymous volumes
//! (`Config.Volumes`, an image's `VOLUME`) and `--volumes-from`, with dockerd's error messages.
//! Pure: nothing here touches the disk except checking that a `--mount` bind source exists.

use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::error::ContainerError;

/// Longest `-v`/`--mount` specification accepted.
const MAX_SPEC_BYTES: usize = 8192;

/// `bind`, `volume` or `tmpfs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    #[default]
    Bind,
    Volume,
    Tmpfs,
}

impl MountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Volume => "volume",
            MountKind::Tmpfs => "tmpfs",
        }
    }
}

/// One resolved mount of a container, kept in its record (moby's `MountPoint`); inspect's
/// `Mounts` is made from these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountPoint {
    pub kind: MountKind,
    /// The volume's name (volumes only).
    pub name: String,
    /// Host path of a bind (volumes get theirs from the volume service).
    pub source: String,
    pub destination: String,
    /// As inspect shows it: the short form's mode string, "z" for volumes by default.
    pub mode: String,
    pub rw: bool,
    /// "" for volumes and tmpfs; "rprivate" by default for binds.
    pub propagation: String,
    /// Fill an empty volume from the image (not `nocopy`).
    pub copy_data: bool,
    /// A generated volume that `rm -v` and `--rm` remove.
    pub anonymous: bool,
    /// `bind-recursive=disabled`.
    pub non_recursive: bool,
    /// A `-v` bind whose missing source is created at start (`--mount` refuses instead).
    pub create_source: bool,
    /// tmpfs options (`size=...,mode=...`).
    pub tmpfs_options: String,
    /// Driver options a `--mount volume-opt` gives a volume it creates.
    pub volume_options: std::collections::BTreeMap<String, String>,
    pub volume_labels: std::collections::BTreeMap<String, String>,
}

fn invalid(msg: impl Into<String>) -> ContainerError {
    ContainerError::InvalidParameter(msg.into())
}

/// moby's `invalid mount config for type "X": ...`.
fn config_error(kind: &str, msg: impl std::fmt::Display) -> ContainerError {
    invalid(format!("invalid mount config for type \"{kind}\": {msg}"))
}

fn check_destination(kind: &str, dest: &str) -> Result<(), ContainerError> {
    if dest.is_empty() {
        return Err(config_error(kind, "field Target must not be empty"));
    }
    if !dest.starts_with('/') {
        return Err(config_error(
            kind,
            format!("invalid mount path: '{dest}' mount path must be absolute"),
        ));
    }
    if dest == "/"
        || Path::new(dest)
            .components()
            .all(|c| c == Component::RootDir)
    {
        return Err(config_error(
            kind,
            "invalid specification: destination can't be '/'",
        ));
    }
    Ok(())
}

/// Cleans a path as Go's `filepath.Clean` does for absolute paths.
pub(crate) fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// The short form's mode words, checked as moby's `ValidMountMode`: at most one of each kind.
struct Mode {
    rw: bool,
    propagation: Option<String>,
    nocopy: bool,
}

fn parse_mode(mode: &str) -> Result<Mode, ContainerError> {
    let bad = || invalid(format!("invalid mode: {mode}"));
    let (mut rw_seen, mut label, mut prop, mut copy, mut consistency) = (0, 0, 0, 0, 0);
    let mut m = Mode {
        rw: true,
        propagation: None,
        nocopy: false,
    };
    for w in mode.split(',') {
        match w {
            "rw" => rw_seen += 1,
            "ro" => {
                rw_seen += 1;
                m.rw = false;
            }
            "z" | "Z" => label += 1,
            "nocopy" => {
                copy += 1;
                m.nocopy = true;
            }
            "consistent" | "cached" | "delegated" => consistency += 1,
            p if PROPAGATIONS.contains(&p) => {
                prop += 1;
                m.propagation = Some(p.to_string());
            }
            _ => return Err(bad()),
        }
    }
    if rw_seen > 1 || label > 1 || prop > 1 || copy > 1 || consistency > 1 {
        return Err(bad());
    }
    Ok(m)
}

/// One `-v SRC:DST[:MODE]` of `HostConfig.Binds` (moby's `linuxParser.ParseMountRaw`).
pub fn parse_bind(spec: &str) -> Result<MountPoint, ContainerError> {
    let spec_error = || invalid(format!("invalid volume specification: '{spec}'"));
    if spec.len() > MAX_SPEC_BYTES {
        return Err(spec_error());
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] if d.starts_with('/') => return Ok(anonymous(d)),
        [s, d] if parse_mode(d).is_err() => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(spec_error()),
    };
    if src.is_empty() || dst.is_empty() {
        return Err(spec_error());
    }
    let m = if mode.is_empty() {
        Mode {
            rw: true,
            propagation: None,
            nocopy: false,
        }
    } else {
        parse_mode(mode)?
    };
    let is_bind = src.starts_with('/');
    let kind = if is_bind { "bind" } else { "volume" };
    check_destination(kind, dst)
        .map_err(|e| invalid(format!("invalid volume specification: '{spec}': {e}")))?;
    if is_bind {
        if m.nocopy {
            return Err(invalid(format!("invalid mode: {mode}")));
        }
        Ok(MountPoint {
            kind: MountKind::Bind,
            source: clean(src),
            destination: clean(dst),
            mode: mode.to_string(),
            rw: m.rw,
            propagation: m.propagation.unwrap_or_else(|| "rprivate".to_string()),
            create_source: true,
            ..Default::default()
        })
    } else {
        if m.propagation.is_some() {
            return Err(invalid(format!(
                "invalid volume specification: '{spec}': invalid mount config for type \"volume\": field Propagation must not be specified"
            )));
        }
        estiba_volume::validate_name(src)
            .map_err(|reason| invalid(format!("create {src}: {reason}")))?;
        Ok(MountPoint {
            kind: MountKind::Volume,
            name: src.to_string(),
            destination: clean(dst),
            mode: if mode.is_empty() {
                "z".to_string()
            } else {
                mode.to_string()
            },
            rw: m.rw,
            copy_data: !m.nocopy,
            ..Default::default()
        })
    }
}

/// `HostConfig.Mounts[]` as the API sends it (moby's `mount.Mount`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct LongForm {
    #[serde(rename = "Type")]
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    bind_options: Option<BindOptions>,
    volume_options: Option<VolumeOptions>,
    tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct BindOptions {
    propagation: String,
    non_recursive: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct VolumeOptions {
    no_copy: bool,
    subpath: String,
    labels: Option<std::collections::BTreeMap<String, String>>,
    driver_config: Option<DriverConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DriverConfig {
    name: String,
    options: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TmpfsOptions {
    size_bytes: i64,
    mode: u32,
}

/// One `HostConfig.Mounts` entry (moby's `ValidateMountConfig` + `ParseMountSpec`).
pub fn parse_mount(value: &serde_json::Value) -> Result<MountPoint, ContainerError> {
    let m: LongForm = serde_json::from_value(value.clone())
        .map_err(|e| invalid(format!("invalid mount config: {e}")))?;
    let kind = m.kind.clone();
    if !matches!(kind.as_str(), "bind" | "volume" | "tmpfs") {
        return Err(invalid(format!(
            "invalid mount config for type \"{kind}\": mount type unknown"
        )));
    }
    check_destination(&kind, &m.target)?;
    let destination = clean(&m.target);
    match kind.as_str() {
        "bind" => long_bind(m, destination),
        "volume" => long_volume(m, destination),
        _ => long_tmpfs(m, destination),
    }
}

fn must_not(kind: &str, field: &str) -> ContainerError {
    config_error(kind, format!("field {field} must not be specified"))
}

fn long_bind(m: LongForm, destination: String) -> Result<MountPoint, ContainerError> {
    let kind = "bind";
    if m.source.is_empty() {
        return Err(config_error(kind, "field Source must not be empty"));
    }
    if m.volume_options.is_some() {
        return Err(must_not(kind, "VolumeOptions"));
    }
    if m.tmpfs_options.is_some() {
        return Err(must_not(kind, "TmpfsOptions"));
    }
    if !m.source.starts_with('/') {
        return Err(config_error(
            kind,
            format!(
                "invalid mount path: '{}' mount path must be absolute",
                m.source
            ),
        ));
    }
    let source = clean(&m.source);
    if std::fs::metadata(&source).is_err() {
        return Err(config_error(
            kind,
            format!("bind source path does not exist: {source}"),
        ));
    }
    let b = m.bind_options.unwrap_or_default();
    if !b.propagation.is_empty() && !PROPAGATIONS.contains(&b.propagation.as_str()) {
        return Err(config_error(
            kind,
            format!("invalid propagation mode: {}", b.propagation),
        ));
    }
    Ok(MountPoint {
        kind: MountKind::Bind,
        source,
        destination,
        rw: !m.read_only,
        propagation: if b.propagation.is_empty() {
            "rprivate".to_string()
        } else {
            b.propagation
        },
        non_recursive: b.non_recursive,
        ..Default::default()
    })
}

fn long_volume(m: LongForm, destination: String) -> Result<MountPoint, ContainerError> {
    let kind = "volume";
    if m.bind_options.is_some() {
        return Err(must_not(kind, "BindOptions"));
    }
    if m.tmpfs_options.is_some() {
        return Err(must_not(kind, "TmpfsOptions"));
    }
    let v = m.volume_options.unwrap_or_default();
    if !v.subpath.is_empty() {
        // Binding a path inside a volume safely needs the runtime to open it by descriptor
        // (moby's safepath); until then refuse rather than ignore it.
        return Err(config_error(
            kind,
            "volume subpaths are not supported by estiba",
        ));
    }
    let driver = v.driver_config.unwrap_or_default();
    if !matches!(driver.name.as_str(), "" | "local") {
        return Err(invalid(format!(
            "error looking up volume plugin {0}: plugin \"{0}\" not found",
            driver.name
        )));
    }
    if !m.source.is_empty() {
        estiba_volume::validate_name(&m.source)
            .map_err(|reason| invalid(format!("create {}: {reason}", m.source)))?;
    }
    Ok(MountPoint {
        kind: MountKind::Volume,
        anonymous: m.source.is_empty(),
        name: m.source,
        destination,
        mode: "z".to_string(),
        rw: !m.read_only,
        copy_data: !v.no_copy,
        volume_options: driver.options.unwrap_or_default(),
        volume_labels: v.labels.unwrap_or_default(),
        ..Default::default()
    })
}

fn long_tmpfs(m: LongForm, destination: String) -> Result<MountPoint, ContainerError> {
    let kind = "tmpfs";
    if !m.source.is_empty() {
        return Err(must_not(kind, "Source"));
    }
    if m.bind_options.is_some() {
        return Err(must_not(kind, "BindOptions"));
    }
    if m.volume_options.is_some() {
        return Err(must_not(kind, "VolumeOptions"));
    }
    let t = m.tmpfs_options.unwrap_or_default();
    if t.size_bytes < 0 {
        return Err(config_error(kind, "invalid tmpfs size"));
    }
    let mut opts = Vec::new();
    if t.size_bytes > 0 {
        opts.push(format!("size={}", t.size_bytes));
    }
    if t.mode != 0 {
        opts.push(format!("mode={:o}", t.mode & 0o7777));
    }
    if m.read_only {
        opts.push("ro".to_string());
    }
    Ok(MountPoint {
        kind: MountKind::Tmpfs,
        destination,
        rw: !m.read_only,
        tmpfs_options: opts.join(","),
        ..Default::default()
    })
}

/// An anonymous volume at `destination` (`-v /data`, `Config.Volumes`, an image's `VOLUME`).
pub fn anonymous(destination: &str) -> MountPoint {
    MountPoint {
        kind: MountKind::Volume,
        destination: clean(destination),
        rw: true,
        copy_data: true,
        anonymous: true,
        ..Default::default()
    }
}

/// `--volumes-from NAME[:ro|:rw]`: the container and the mode override.
pub fn parse_volumes_from(spec: &str) -> Result<(&str, Option<bool>), ContainerError> {
    match spec.split_once(':') {
        None => Ok((spec, None)),
        Some((name, "rw")) => Ok((name, Some(true))),
        Some((name, "ro")) => Ok((name, Some(false))),
        Some((_, mode)) => Err(invalid(format!("invalid mode: {mode}"))),
    }
}

#[cfg(test)]
#[path = "mountspec_tests.rs"]
mod tests;
