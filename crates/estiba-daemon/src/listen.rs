//! Listening addresses (`-H`): parsing dockerd's host syntax and binding Unix and TCP sockets.

use std::io;
use std::net::TcpListener;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// dockerd's port for plain-text TCP.
const DEFAULT_TCP_PORT: u16 = 2375;
/// Mode of Unix sockets: owner and group may connect (access to the socket is access to root).
const SOCKET_MODE: u32 = 0o660;
/// The group that may use the socket, when it exists.
const SOCKET_GROUP: &str = "estiba";
/// /etc/group bigger than this is not read.
const MAX_GROUP_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A parsed `-H` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    Unix(PathBuf),
    /// `host:port`, ready for `TcpListener::bind`.
    Tcp(String),
}

impl Host {
    /// Parses `unix:///path`, `tcp://host:port`, `tcp://host`, `host:port`, `:port` or `/path`.
    pub(crate) fn parse(s: &str) -> Result<Host> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() || !path.starts_with('/') {
                bail!("invalid host {s:?}: unix socket path must be absolute");
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        let rest = match s.split_once("://") {
            Some(("tcp", rest)) => rest,
            Some((proto, _)) => {
                bail!("invalid host {s:?}: unsupported protocol {proto:?} (unix:// or tcp://)")
            }
            None => s,
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            bail!("invalid host {s:?}: tcp address must be host:port");
        }
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 literal without a port: "[::1]".
            Some((h, p)) if !p.contains(']') => (h, p),
            _ => (rest, ""),
        };
        let host = if host.is_empty() { "127.0.0.1" } else { host };
        let port = if port.is_empty() {
            DEFAULT_TCP_PORT
        } else {
            port.parse::<u16>()
                .with_context(|| format!("invalid host {s:?}: bad port {port:?}"))?
        };
        Ok(Host::Tcp(format!("{host}:{port}")))
    }
}

/// A bound listener, still in blocking std form (bound before the async runtime starts).
#[derive(Debug)]
pub(crate) enum Bound {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener, String),
}

/// Binds a Unix socket at `path` with mode 0660 and group `estiba` when it exists. A stale socket
/// file is removed: callers hold the data-root lock, so no live daemon of ours owns it.
pub(crate) fn bind_unix(path: &Path) -> Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("create socket directory {}", parent.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)
            .with_context(|| format!("remove stale socket {}", path.display()))?,
        Ok(_) => bail!("{} exists and is not a socket", path.display()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
    }
    // The umask keeps the socket from being world-connectable between bind and chmod.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(old);
    let listener = bound.with_context(|| format!("listen on {}", path.display()))?;
    if let Some(gid) = group_id(SOCKET_GROUP, Path::new("/etc/group")) {
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("chown {} to group {SOCKET_GROUP}", path.display()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(listener)
}

/// Looks `name` up in a group file.
pub(crate) fn group_id(name: &str, group_file: &Path) -> Option<u32> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(group_file)
        .ok()?
        .take(MAX_GROUP_FILE_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    parse_group_id(name, &text)
}

fn parse_group_id(name: &str, text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        fields.nth(1)?.parse().ok()
    })
}

/// Binds every host; Unix sockets get their mode and group.
pub(crate) fn bind_all(hosts: &[Host]) -> Result<Vec<Bound>> {
    let mut bound = Vec::with_capacity(hosts.len());
    for host in hosts {
        match host {
            Host::Unix(path) => bound.push(Bound::Unix(bind_unix(path)?, path.clone())),
            Host::Tcp(addr) => {
                let l =
                    TcpListener::bind(addr).with_context(|| format!("listen on tcp://{addr}"))?;
                tracing::warn!(
                    "binding to tcp://{addr} without TLS: anyone who can reach it has root access to this host"
                );
                bound.push(Bound::Tcp(l, addr.clone()));
            }
        }
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockerd_host_syntax() {
        let cases: &[(&str, Option<Host>)] = &[
            (
                "unix:///run/estiba/estiba.sock",
                Some(Host::Unix("/run/estiba/estiba.sock".into())),
            ),
            ("/tmp/s.sock", Some(Host::Unix("/tmp/s.sock".into()))),
            ("tcp://0.0.0.0:2376", Some(Host::Tcp("0.0.0.0:2376".into()))),
            ("tcp://127.0.0.1", Some(Host::Tcp("127.0.0.1:2375".into()))),
            ("tcp://:1234", Some(Host::Tcp("127.0.0.1:1234".into()))),
            (":4000", Some(Host::Tcp("127.0.0.1:4000".into()))),
            ("tcp://[::1]:80", Some(Host::Tcp("[::1]:80".into()))),
            ("localhost:9", Some(Host::Tcp("localhost:9".into()))),
            ("unix://relative", None),
            ("fd://", None),
            ("ssh://x", None),
            ("tcp://h:notaport", None),
            ("tcp://h:1/path", None),
        ];
        for (input, want) in cases {
            assert_eq!(Host::parse(input).ok(), *want, "input {input:?}");
        }
    }

    #[test]
    fn finds_group_ids() {
        let text = "root:x:0:\nestibax:x:5:\nestiba:x:998:alice,bob\nbroken\n";
        assert_eq!(parse_group_id("estiba", text), Some(998));
        assert_eq!(parse_group_id("root", text), Some(0));
        assert_eq!(parse_group_id("nobody", text), None);
        assert_eq!(parse_group_id("broken", text), None);
    }

    #[test]
    fn unix_socket_replaces_stale_socket_and_has_mode_0660() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/s.sock");
        drop(bind_unix(&path).unwrap());
        // The first listener is gone but its file stays: a stale socket.
        let l = bind_unix(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        drop(l);
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "x").unwrap();
        assert!(bind_unix(&plain).is_err());
        assert_eq!(std::fs::read(&plain).unwrap(), b"x");
    }
}
