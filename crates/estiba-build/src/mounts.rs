//! `RUN --mount` on the classic protocol, with BuildKit's syntax and defaults: `type=bind`
//! (from the context, a stage or an image; read-only unless `rw`, writes thrown away),
//! `type=cache` (a directory under `<data-root>/builder/cache-mounts` kept across builds,
//! `sharing=shared|private|locked`), `type=tmpfs` and `type=secret` (the value sent with the
//! build, bound read-only from a private file; never in a layer, the history or a cache key).
//! This module parses the option and turns it into a container mount; the caller hides the
//! mount points from the layer diff ([`crate::layer::hidden`]).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::BuildError;

/// Most `--mount` options on one RUN.
pub const MAX_MOUNTS: usize = 64;
/// Most secrets one build takes.
pub const MAX_SECRETS: usize = 100;
/// Most bytes of all secrets of one build.
pub const MAX_SECRET_BYTES: usize = 512 << 10;

/// A mount's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    /// A file with `content` (a `#!` heredoc script); never parsed from `--mount`.
    File,
}

/// How builds share one cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount=...` as written (variables already expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: Kind,
    /// Absolute path in the container.
    pub target: String,
    /// Path inside the context, stage or image (bind).
    pub source: String,
    /// bind: the stage or image to take `source` from (None: the context).
    pub from: Option<String>,
    /// cache and secret: the ID (cache: defaults to the target).
    pub id: String,
    pub readonly: bool,
    pub sharing: Sharing,
    /// secret: fail when the build has no such secret.
    pub required: bool,
    pub mode: Option<u32>,
    pub uid: u32,
    pub gid: u32,
    /// tmpfs: the size limit in bytes (0: none).
    pub size: u64,
    /// File: the content.
    pub content: Option<Vec<u8>>,
}

impl Default for RunMount {
    /// BuildKit's defaults before the type and the options: a read-only, shared bind.
    fn default() -> RunMount {
        RunMount {
            kind: Kind::Bind,
            target: String::new(),
            source: String::new(),
            from: None,
            id: String::new(),
            readonly: true,
            sharing: Sharing::Shared,
            required: false,
            mode: None,
            uid: 0,
            gid: 0,
            size: 0,
            content: None,
        }
    }
}

fn bad(msg: impl Into<String>) -> BuildError {
    BuildError::Step(msg.into())
}

fn truthy(key: &str, v: Option<&str>) -> Result<bool, BuildError> {
    match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(o) => Err(bad(format!("invalid value for {key}: {o}"))),
    }
}

/// Parses one `--mount` value (`type=cache,target=/root/.cache,...`).
pub fn parse(spec: &str) -> Result<RunMount, BuildError> {
    let mut m = RunMount::default();
    let fields: Vec<&str> = spec.split(',').filter(|f| !f.is_empty()).collect();
    // The type decides the defaults, wherever it is written.
    for f in &fields {
        if let Some(("type", t)) = f.split_once('=') {
            m.kind = match t {
                "bind" => Kind::Bind,
                "cache" => Kind::Cache,
                "tmpfs" => Kind::Tmpfs,
                "secret" => Kind::Secret,
                "ssh" => return Err(bad("ssh mounts are not supported by this builder")),
                o => return Err(bad(format!("unsupported mount type \"{o}\""))),
            };
        }
    }
    m.readonly = m.kind == Kind::Bind;
    for f in fields {
        let (k, v) = match f.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (f.to_ascii_lowercase(), None),
        };
        let val = || v.ok_or_else(|| bad(format!("invalid field '{f}' must be a key=value pair")));
        match k.as_str() {
            "type" => {}
            "target" | "dst" | "destination" => m.target = val()?.to_string(),
            "source" | "src" => m.source = val()?.to_string(),
            "from" => m.from = Some(val()?.to_string()),
            "id" => m.id = val()?.to_string(),
            "readonly" | "ro" => m.readonly = truthy(&k, v)?,
            "readwrite" | "rw" => m.readonly = !truthy(&k, v)?,
            "required" => m.required = truthy(&k, v)?,
            "sharing" => {
                m.sharing = match val()? {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    o => return Err(bad(format!("unsupported sharing value \"{o}\""))),
                }
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(val()?, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| bad(format!("invalid value for mode: {f}")))?,
                )
            }
            "uid" | "gid" => {
                let n: u32 = val()?
                    .parse()
                    .map_err(|_| bad(format!("invalid value for {k}: {f}")))?;
                if k == "uid" {
                    m.uid = n
                } else {
                    m.gid = n
                }
            }
            "size" if m.kind == Kind::Tmpfs => m.size = parse_size(val()?)?,
            _ => return Err(bad(format!("unexpected key '{k}' in '{f}'"))),
        }
    }
    finish(m)
}

/// BuildKit's defaults and checks once every field is read.
fn finish(mut m: RunMount) -> Result<RunMount, BuildError> {
    if m.kind == Kind::Secret {
        if m.id.is_empty() && m.target.is_empty() {
            return Err(bad("secret mount requires an id or a target"));
        }
        if m.id.is_empty() {
            m.id = m.target.rsplit('/').next().unwrap_or_default().to_string();
        }
        if m.target.is_empty() {
            m.target = format!("/run/secrets/{}", m.id);
        }
    }
    if m.target.is_empty() {
        return Err(bad("mount target not set"));
    }
    if !m.target.starts_with('/') {
        m.target = format!("/{}", m.target);
    }
    m.target = crate::layer::clean(&m.target);
    if m.target == "/" {
        return Err(bad("a mount cannot cover /"));
    }
    if m.kind == Kind::Cache && m.id.is_empty() {
        m.id = m.target.clone();
    }
    if m.from.is_some() && m.kind != Kind::Bind {
        return Err(bad(
            "from= is only supported on bind mounts by this builder",
        ));
    }
    Ok(m)
}

/// go-units' RAMInBytes: a number with an optional b, k, m, g suffix (binary multiples).
fn parse_size(s: &str) -> Result<u64, BuildError> {
    let lower = s.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[digits.len()..];
    let mult: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad(format!("invalid size: '{s}'"))),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| bad(format!("invalid size: '{s}'")))
}

/// What goes into the step's cache key for this mount: everything but a secret's value.
pub fn key_part(m: &RunMount, from_id: Option<&str>, context_sum: Option<&str>) -> String {
    format!(
        "{:?}|{}|{}|{}|{}|{}|{:?}|{}|{:?}|{}:{}|{}|{}",
        m.kind,
        m.target,
        m.source,
        from_id.unwrap_or_default(),
        m.id,
        m.readonly,
        m.sharing,
        m.required,
        m.mode,
        m.uid,
        m.gid,
        m.size,
        context_sum.unwrap_or_default()
    )
}

/// The build's secrets by ID; `Debug` shows the IDs only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(pub BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    pub fn get(&self, id: &str) -> Option<&Vec<u8>> {
        self.0.get(id)
    }
}

/// Decodes the build's secrets as the `X-Estiba-Build-Secrets` header carries them: base64 of a
/// JSON object from ID to the base64 of the value.
pub fn decode_secrets(header: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw = b64
        .decode(header.trim())
        .map_err(|e| format!("invalid secrets header: {e}"))?;
    let map: BTreeMap<String, String> =
        serde_json::from_slice(&raw).map_err(|e| format!("invalid secrets header: {e}"))?;
    if map.len() > MAX_SECRETS {
        return Err(format!("too many secrets (at most {MAX_SECRETS})"));
    }
    let mut out = BTreeMap::new();
    let mut total = 0;
    for (id, v) in map {
        if !valid_id(&id) {
            return Err(format!("invalid secret id: {id:?}"));
        }
        let value = b64
            .decode(v)
            .map_err(|e| format!("invalid value of secret {id}: {e}"))?;
        total += value.len();
        if total > MAX_SECRET_BYTES {
            return Err(format!(
                "secrets are too large (at most {MAX_SECRET_BYTES} bytes)"
            ));
        }
        out.insert(id, value);
    }
    Ok(out)
}

/// Encodes secrets for the header (the client's side of [`decode_secrets`]).
pub fn encode_secrets(secrets: &BTreeMap<String, Vec<u8>>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let map: BTreeMap<&String, String> = secrets.iter().map(|(k, v)| (k, b64.encode(v))).collect();
    b64.encode(serde_json::to_vec(&map).unwrap_or_default())
}

/// A secret or cache ID: 1..=256 characters of `[A-Za-z0-9._/-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
}

/// The directory of cache mount `id` under `root` (`<builder>/cache-mounts`).
pub fn cache_dir(root: &Path, id: &str) -> PathBuf {
    root.join(hex::encode(Sha256::digest(id.as_bytes())))
}

/// Creates a cache mount's directory the first time, with the mount's owner and mode.
pub fn ensure_cache_dir(dir: &Path, m: &RunMount) -> Result<(), BuildError> {
    let err = |e: std::io::Error| BuildError::Internal(format!("cache mount {}: {e}", m.id));
    if dir.is_dir() {
        return Ok(());
    }
    let tmp = dir.with_extension(format!("new-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&tmp).map_err(err)?;
    std::fs::set_permissions(
        &tmp,
        std::fs::Permissions::from_mode(m.mode.unwrap_or(0o755)),
    )
    .map_err(err)?;
    std::os::unix::fs::chown(&tmp, Some(m.uid), Some(m.gid)).map_err(err)?;
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir(&tmp);
        if !dir.is_dir() {
            return Err(err(e));
        }
    }
    Ok(())
}

/// Writes a secret's value to `path` (in a private directory) with the mount's mode and owner.
pub fn write_secret(path: &Path, value: &[u8], m: &RunMount) -> Result<(), BuildError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| BuildError::Internal(format!("secret {}: {e}", m.id));
    if let Some(dir) = path.parent() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    // Created private: the value is never readable by others, even for a moment.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(value))
        .map_err(err)?;
    std::fs::set_permissions(
        path,
        std::fs::Permissions::from_mode(m.mode.unwrap_or(0o400)),
    )
    .map_err(err)?;
    std::os::unix::fs::chown(path, Some(m.uid), Some(m.gid)).map_err(err)
}

/// The container mount (`HostConfig.Mounts` form) of a bind-like mount at `m.target`.
pub fn bind(source: &Path, m: &RunMount, readonly: bool) -> Value {
    json!({
        "Type": "bind",
        "Source": source.to_string_lossy(),
        "Target": m.target,
        "ReadOnly": readonly,
    })
}

/// The container mount of a tmpfs mount.
pub fn tmpfs(m: &RunMount) -> Value {
    let mut v = json!({"Type": "tmpfs", "Target": m.target});
    if m.size > 0 {
        v["TmpfsOptions"] = json!({"SizeBytes": m.size});
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_buildkit() {
        let s = parse("type=secret,id=npmrc").unwrap();
        assert_eq!(s.target, "/run/secrets/npmrc");
        assert!(!s.required && s.mode.is_none());
        let s = parse("type=secret,target=/root/.npmrc,required").unwrap();
        assert_eq!((s.id.as_str(), s.required), (".npmrc", true));
        let c = parse("type=cache,target=/root/.cache/,sharing=locked,mode=0700,uid=5").unwrap();
        assert_eq!(c.id, "/root/.cache");
        assert_eq!(
            (c.sharing, c.mode, c.uid, c.readonly),
            (Sharing::Locked, Some(0o700), 5, false)
        );
        let b = parse("target=/src,source=sub,rw").unwrap();
        assert_eq!(
            (b.kind, b.readonly, b.source.as_str()),
            (Kind::Bind, false, "sub")
        );
        assert!(parse("from=build,target=/x").unwrap().readonly);
        let t = parse("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(t.size, 64 << 20);
    }

    #[test]
    fn bad_options_are_refused() {
        for (spec, want) in [
            ("type=secret", "requires an id or a target"),
            ("type=cache", "mount target not set"),
            (
                "type=cache,target=/x,sharing=odd",
                "unsupported sharing value",
            ),
            ("type=nope,target=/x", "unsupported mount type"),
            ("type=bind,target=/x,colour=red", "unexpected key 'colour'"),
            ("type=tmpfs,target=/x,size=lots", "invalid size"),
            ("type=ssh", "ssh mounts are not supported"),
            ("type=tmpfs,target=/", "cannot cover /"),
        ] {
            let e = parse(spec).unwrap_err().to_string();
            assert!(e.contains(want), "{spec}: {e}");
        }
    }

    #[test]
    fn secrets_round_trip_and_are_bounded() {
        let mut s = BTreeMap::new();
        s.insert("tok".to_string(), b"s3cr\x00t".to_vec());
        assert_eq!(decode_secrets(&encode_secrets(&s)).unwrap(), s);
        assert_eq!(format!("{:?}", Secrets(s)), "[\"tok\"]");
        assert!(decode_secrets("!!").is_err());
        let mut bad = BTreeMap::new();
        bad.insert("a b".to_string(), b"x".to_vec());
        assert!(decode_secrets(&encode_secrets(&bad)).is_err());
        let mut big = BTreeMap::new();
        big.insert("big".to_string(), vec![0u8; MAX_SECRET_BYTES + 1]);
        assert!(decode_secrets(&encode_secrets(&big)).is_err());
    }
}
