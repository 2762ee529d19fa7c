//! The shim's command line: parsed by the binary, produced by the daemon through the same type.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Longest container id the shim accepts.
pub const MAX_ID_BYTES: usize = 128;
/// Longest unix socket path (`sun_path` is 108 bytes with the terminating NUL).
pub const MAX_SOCKET_PATH_BYTES: usize = 107;
/// Most `--runtime-arg` values accepted.
pub const MAX_RUNTIME_ARGS: usize = 32;

/// Everything the shim needs to create and supervise one container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShimArgs {
    /// Container id, as given to the runtime.
    pub id: String,
    /// OCI bundle directory (holds `config.json`).
    pub bundle: PathBuf,
    /// Directory for the shim's socket, exit record, pid files and logs.
    pub state_dir: PathBuf,
    /// OCI runtime binary (path, or a name looked up in `PATH`).
    pub runtime: PathBuf,
    /// The runtime's `--root` state directory.
    pub runtime_root: Option<PathBuf>,
    /// Extra global runtime arguments, before the subcommand (e.g. `--systemd-cgroup`).
    pub runtime_args: Vec<String>,
    /// The json-file log.
    pub log_path: PathBuf,
    /// Give the container a pty.
    pub tty: bool,
    /// Keep the container's stdin open for attach.
    pub stdin: bool,
    /// Rotate the log when it reaches this size.
    pub log_max_size_bytes: Option<u64>,
    /// Number of log files kept when rotating (the live one included).
    pub log_max_files: Option<u32>,
    /// Start the container right away (the runtime's `run --detach`) instead of waiting for a
    /// `start` request after `create`.
    pub start: bool,
    /// With `start`: leave the container's output unread until this many attach requests have
    /// come (or [`crate::HOLD_OUTPUT_LIMIT`] has passed), so that attaches made before the start
    /// see its first bytes. The kernel's pipe (or pty) buffer holds them meanwhile.
    pub hold_output: u32,
}

/// Most attaches a shim can be told to wait for.
pub const MAX_HOLD_OUTPUT: u32 = 64;

/// A command line the shim cannot run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    /// A flag the shim does not know.
    #[error("unknown flag {0}")]
    UnknownFlag(String),
    /// A flag without its value.
    #[error("flag {0} needs a value")]
    MissingValue(String),
    /// A required flag is absent.
    #[error("missing required flag {0}")]
    Missing(&'static str),
    /// A value that does not parse or is out of bounds.
    #[error("invalid value for {flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
}

impl ShimArgs {
    /// Parses the arguments after the program name; the flag says whether `--daemonized` was
    /// present (an internal flag: the re-executed shim process).
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<(ShimArgs, bool), ArgsError> {
        let mut out = ShimArgs::default();
        let mut daemonized = false;
        let (mut id, mut bundle, mut state_dir, mut runtime, mut log_path) =
            (None, None, None, None, None);
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let flag = flag.to_string_lossy().into_owned();
            let mut value = |name: &str| -> Result<OsString, ArgsError> {
                it.next()
                    .ok_or_else(|| ArgsError::MissingValue(name.to_owned()))
            };
            match flag.as_str() {
                "--id" => id = Some(utf8("--id", value(&flag)?)?),
                "--bundle" => bundle = Some(PathBuf::from(value(&flag)?)),
                "--state-dir" => state_dir = Some(PathBuf::from(value(&flag)?)),
                "--runtime" => runtime = Some(PathBuf::from(value(&flag)?)),
                "--runtime-root" => out.runtime_root = Some(PathBuf::from(value(&flag)?)),
                "--runtime-arg" => {
                    let arg = utf8("--runtime-arg", value(&flag)?)?;
                    if out.runtime_args.len() >= MAX_RUNTIME_ARGS {
                        return Err(invalid("--runtime-arg", "too many"));
                    }
                    out.runtime_args.push(arg);
                }
                "--log-path" => log_path = Some(PathBuf::from(value(&flag)?)),
                "--log-max-size" => {
                    let v = utf8("--log-max-size", value(&flag)?)?;
                    let n: u64 = v.parse().map_err(|_| invalid("--log-max-size", &v))?;
                    if n == 0 {
                        return Err(invalid("--log-max-size", "must be positive"));
                    }
                    out.log_max_size_bytes = Some(n);
                }
                "--log-max-files" => {
                    let v = utf8("--log-max-files", value(&flag)?)?;
                    let n: u32 = v.parse().map_err(|_| invalid("--log-max-files", &v))?;
                    if n == 0 || n > 1000 {
                        return Err(invalid("--log-max-files", "must be between 1 and 1000"));
                    }
                    out.log_max_files = Some(n);
                }
                "--hold-output" => {
                    let v = utf8("--hold-output", value(&flag)?)?;
                    let n: u32 = v.parse().map_err(|_| invalid("--hold-output", &v))?;
                    if n > MAX_HOLD_OUTPUT {
                        return Err(invalid("--hold-output", "too many attaches"));
                    }
                    out.hold_output = n;
                }
                "--start" => out.start = true,
                "--tty" => out.tty = true,
                "--stdin" => out.stdin = true,
                "--daemonized" => daemonized = true,
                _ => return Err(ArgsError::UnknownFlag(flag)),
            }
        }
        out.id = id.ok_or(ArgsError::Missing("--id"))?;
        out.bundle = bundle.ok_or(ArgsError::Missing("--bundle"))?;
        out.state_dir = state_dir.ok_or(ArgsError::Missing("--state-dir"))?;
        out.runtime = runtime.ok_or(ArgsError::Missing("--runtime"))?;
        out.log_path = log_path.ok_or(ArgsError::Missing("--log-path"))?;
        out.validate()?;
        Ok((out, daemonized))
    }

    /// Checks the bounds the shim relies on.
    pub fn validate(&self) -> Result<(), ArgsError> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= MAX_ID_BYTES
            && !self.id.starts_with(['-', '.'])
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !id_ok {
            return Err(invalid("--id", "expected 1 to 128 of [A-Za-z0-9_.-]"));
        }
        for (flag, path) in [
            ("--bundle", &self.bundle),
            ("--state-dir", &self.state_dir),
            ("--log-path", &self.log_path),
        ] {
            if !path.is_absolute() {
                return Err(invalid(flag, "must be an absolute path"));
            }
        }
        let longest = self.state_dir.join(crate::CONSOLE_SOCKET_NAME);
        if longest.as_os_str().len() > MAX_SOCKET_PATH_BYTES {
            return Err(invalid("--state-dir", "too long for a unix socket path"));
        }
        if self.log_max_files.is_some() && self.log_max_size_bytes.is_none() {
            return Err(invalid("--log-max-files", "needs --log-max-size"));
        }
        if self.hold_output > 0 && !self.start {
            return Err(invalid("--hold-output", "needs --start"));
        }
        Ok(())
    }

    /// The command line that [`ShimArgs::parse`] turns back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        let mut push = |flag: &str, value: &Path| {
            v.push(flag.into());
            v.push(value.as_os_str().to_owned());
        };
        push("--id", Path::new(&self.id));
        push("--bundle", &self.bundle);
        push("--state-dir", &self.state_dir);
        push("--runtime", &self.runtime);
        if let Some(root) = &self.runtime_root {
            push("--runtime-root", root);
        }
        for arg in &self.runtime_args {
            push("--runtime-arg", Path::new(arg));
        }
        push("--log-path", &self.log_path);
        if let Some(n) = self.log_max_size_bytes {
            push("--log-max-size", Path::new(&n.to_string()));
        }
        if let Some(n) = self.log_max_files {
            push("--log-max-files", Path::new(&n.to_string()));
        }
        if self.hold_output > 0 {
            push("--hold-output", Path::new(&self.hold_output.to_string()));
        }
        if self.tty {
            v.push("--tty".into());
        }
        if self.stdin {
            v.push("--stdin".into());
        }
        if self.start {
            v.push("--start".into());
        }
        v
    }

    /// `<state-dir>/<name>`.
    pub fn state_file(&self, name: &str) -> PathBuf {
        self.state_dir.join(name)
    }
}

fn utf8(flag: &'static str, v: OsString) -> Result<String, ArgsError> {
    v.into_string()
        .map_err(|_| invalid(flag, "not valid UTF-8"))
}

fn invalid(flag: &'static str, reason: &str) -> ArgsError {
    ArgsError::Invalid {
        flag,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<(ShimArgs, bool), ArgsError> {
        ShimArgs::parse(line.split_whitespace().map(OsString::from))
    }

    const BASE: &str =
        "--id c1 --bundle /b --state-dir /s --runtime runc --log-path /l/c1-json.log";

    #[test]
    fn round_trip() {
        let full = ShimArgs {
            id: "c1".into(),
            bundle: "/b".into(),
            state_dir: "/s".into(),
            runtime: "/usr/sbin/runc".into(),
            runtime_root: Some("/run/estiba/runc".into()),
            runtime_args: vec!["--systemd-cgroup".into(), "--debug".into()],
            log_path: "/l".into(),
            tty: true,
            stdin: true,
            log_max_size_bytes: Some(1024),
            log_max_files: Some(3),
            start: true,
            hold_output: 2,
        };
        let minimal = ShimArgs {
            runtime_root: None,
            runtime_args: vec![],
            tty: false,
            stdin: false,
            log_max_size_bytes: None,
            log_max_files: None,
            start: false,
            hold_output: 0,
            ..full.clone()
        };
        for args in [full, minimal] {
            assert_eq!(
                ShimArgs::parse(args.to_args()).unwrap(),
                (args.clone(), false)
            );
            let mut d = args.to_args();
            d.push("--daemonized".into());
            assert_eq!(ShimArgs::parse(d).unwrap(), (args, true));
        }
    }

    #[test]
    fn rejects() {
        let long_dir = format!("/{}", "d".repeat(100));
        let cases: Vec<(String, ArgsError)> = vec![
            (
                format!("{BASE} --bogus"),
                ArgsError::UnknownFlag("--bogus".into()),
            ),
            (
                format!("{BASE} --runtime-root"),
                ArgsError::MissingValue("--runtime-root".into()),
            ),
            (
                "--id c1 --bundle /b --state-dir /s --log-path /l".into(),
                ArgsError::Missing("--runtime"),
            ),
            (
                BASE.replace("c1 ", "a/b "),
                invalid("--id", "expected 1 to 128 of [A-Za-z0-9_.-]"),
            ),
            (
                BASE.replace("c1 ", "-x "),
                invalid("--id", "expected 1 to 128 of [A-Za-z0-9_.-]"),
            ),
            (
                BASE.replace("/b", "b"),
                invalid("--bundle", "must be an absolute path"),
            ),
            (
                BASE.replace("/s", &long_dir),
                invalid("--state-dir", "too long for a unix socket path"),
            ),
            (
                format!("{BASE} --log-max-size 0"),
                invalid("--log-max-size", "must be positive"),
            ),
            (
                format!("{BASE} --log-max-size 1k"),
                invalid("--log-max-size", "1k"),
            ),
            (
                format!("{BASE} --log-max-files 2"),
                invalid("--log-max-files", "needs --log-max-size"),
            ),
            (
                format!("{BASE} --hold-output 1"),
                invalid("--hold-output", "needs --start"),
            ),
            (
                format!("{BASE} --start --hold-output 65"),
                invalid("--hold-output", "too many attaches"),
            ),
            (
                format!("{BASE} --start --hold-output -1"),
                invalid("--hold-output", "-1"),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(&line).unwrap_err(), want, "{line}");
        }
        assert!(parse(BASE).is_ok());
    }
}
