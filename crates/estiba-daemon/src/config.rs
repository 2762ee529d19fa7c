//! Daemon configuration: dockerd's flag names, `daemon.json` with dockerd's keys, and how the two
//! merge (a key given both ways is an error, as in dockerd).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use serde_json::{Map, Value};

/// Where `daemon.json` is read from when `--config-file` is not given.
pub(crate) const DEFAULT_CONFIG_FILE: &str = "/etc/estiba/daemon.json";
pub(crate) const DEFAULT_DATA_ROOT: &str = "/var/lib/estiba";
pub(crate) const DEFAULT_EXEC_ROOT: &str = "/run/estiba";
/// The socket name under the exec-root when no `-H` is given.
pub(crate) const DEFAULT_SOCKET_NAME: &str = "estiba.sock";
/// A config file bigger than this is refused rather than read.
const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// Command-line flags, named as dockerd's.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "estibad",
    version,
    about = "Estiba daemon: serves the Docker Engine API"
)]
pub(crate) struct Flags {
    /// Daemon socket(s) to listen on: unix:///path or tcp://host:port (repeatable).
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub(crate) hosts: Vec<String>,
    /// Root directory of persistent state.
    #[arg(long, value_name = "PATH")]
    pub(crate) data_root: Option<PathBuf>,
    /// Root directory of execution state (sockets, shim state).
    #[arg(long, value_name = "PATH")]
    pub(crate) exec_root: Option<PathBuf>,
    /// Path of the daemon's PID file (default <exec-root>/estibad.pid).
    #[arg(short = 'p', long, value_name = "PATH")]
    pub(crate) pidfile: Option<PathBuf>,
    /// Daemon configuration file.
    #[arg(long, value_name = "PATH")]
    pub(crate) config_file: Option<PathBuf>,
    /// Logging level.
    #[arg(short = 'l', long, value_name = "LEVEL", value_parser = ["debug", "info", "warn", "error", "fatal"])]
    pub(crate) log_level: Option<String>,
    /// Enable debug mode.
    #[arg(short = 'D', long)]
    pub(crate) debug: bool,
    /// Registry that may be reached without TLS verification (repeatable).
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    pub(crate) insecure_registries: Vec<String>,
    /// Preferred registry mirror (repeatable).
    #[arg(long = "registry-mirror", value_name = "URL")]
    pub(crate) registry_mirrors: Vec<String>,
    /// Storage driver to use.
    #[arg(short = 's', long, value_name = "DRIVER", value_parser = ["overlay2", "vfs"])]
    pub(crate) storage_driver: Option<String>,
    /// Label for the daemon, key=value (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub(crate) labels: Vec<String>,
    /// Maximum concurrent layer downloads per pull.
    #[arg(long, value_name = "N")]
    pub(crate) max_concurrent_downloads: Option<u32>,
    /// Maximum concurrent layer uploads per push.
    #[arg(long, value_name = "N")]
    pub(crate) max_concurrent_uploads: Option<u32>,
    /// Default OCI runtime for containers
    #[arg(long = "default-runtime", value_name = "NAME")]
    pub(crate) default_runtime: Option<String>,
    /// Register an additional OCI compatible runtime (NAME=PATH)
    #[arg(long = "add-runtime", value_name = "NAME=PATH")]
    pub(crate) add_runtime: Vec<String>,
    /// Networking flags (command line only).
    #[command(flatten)]
    pub(crate) net: NetFlags,
}

/// dockerd's networking flags, plus estibad's own.
#[derive(Debug, Clone, PartialEq, Eq, Default, clap::Args)]
pub(crate) struct NetFlags {
    /// Attach containers to this network bridge (`none`: no default bridge network).
    #[arg(short = 'b', long = "bridge", value_name = "NAME")]
    pub(crate) bridge: Option<String>,
    /// The default bridge's address and subnet, e.g. 172.17.0.1/16.
    #[arg(long = "bip", value_name = "CIDR")]
    pub(crate) bip: Option<String>,
    /// Pools user networks take their subnets from: base=CIDR,size=N (repeatable).
    #[arg(long = "default-address-pool", value_name = "POOL")]
    pub(crate) default_address_pools: Vec<String>,
    /// MTU of container interfaces.
    #[arg(long = "mtu", value_name = "BYTES")]
    pub(crate) mtu: Option<u32>,
    /// Enable IPv6 networking on the default bridge network.
    #[arg(long = "ipv6")]
    pub(crate) ipv6: bool,
    /// IPv6 subnet for the default bridge's containers (with --ipv6).
    #[arg(long = "fixed-cidr-v6", value_name = "CIDR")]
    pub(crate) fixed_cidr_v6: Option<String>,
    /// estibad: the nftables tables (families ip and ip6) this daemon owns.
    #[arg(long = "nft-table", value_name = "NAME", default_value = "estiba")]
    pub(crate) nft_table: String,
    /// estibad: on shutdown, delete this daemon's bridges and nftables table (throwaway daemons).
    #[arg(long = "net-cleanup-on-exit")]
    pub(crate) net_cleanup_on_exit: bool,
    /// estibad: Docker's per-registry certificate directories (`<dir>/<host:port>/ca.crt`,
    /// `client.cert`, `client.key`).
    #[arg(
        long = "registry-certs-dir",
        value_name = "DIR",
        default_value = "/etc/docker/certs.d"
    )]
    pub(crate) registry_certs_dir: std::path::PathBuf,
}

/// The flag id (clap's, from the field name) and the daemon.json key of every setting.
const KEYS: &[(&str, &str)] = &[
    ("hosts", "hosts"),
    ("data_root", "data-root"),
    ("exec_root", "exec-root"),
    ("pidfile", "pidfile"),
    ("log_level", "log-level"),
    ("debug", "debug"),
    ("insecure_registries", "insecure-registries"),
    ("registry_mirrors", "registry-mirrors"),
    ("storage_driver", "storage-driver"),
    ("labels", "labels"),
    ("max_concurrent_downloads", "max-concurrent-downloads"),
    ("max_concurrent_uploads", "max-concurrent-uploads"),
    ("default_runtime", "default-runtime"),
    ("bridge", "bridge"),
    ("bip", "bip"),
    ("default_address_pools", "default-address-pools"),
    ("mtu", "mtu"),
    ("ipv6", "ipv6"),
    ("fixed_cidr_v6", "fixed-cidr-v6"),
];

/// daemon.json keys that have no flag here.
const FILE_ONLY_KEYS: &[&str] = &["runtimes"];

/// Most runtimes daemon.json may register.
const MAX_RUNTIMES: usize = 64;
/// Most arguments one registered runtime may have.
const MAX_RUNTIME_ARGS: usize = 64;

/// One OCI runtime registered in daemon.json's `runtimes` (dockerd's format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuntimeSpec {
    /// The runtime binary (absolute, or looked up in `PATH`).
    pub(crate) path: PathBuf,
    /// Arguments put before every runtime command.
    pub(crate) args: Vec<String>,
}

/// Logging levels dockerd accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "fatal" => LogLevel::Fatal,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        }
    }
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) hosts: Vec<String>,
    pub(crate) data_root: PathBuf,
    pub(crate) exec_root: PathBuf,
    pub(crate) pidfile: PathBuf,
    /// The file settings came from, if one was read (reloaded on SIGHUP).
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) log_level: LogLevel,
    pub(crate) debug: bool,
    pub(crate) insecure_registries: Vec<String>,
    pub(crate) registry_mirrors: Vec<String>,
    pub(crate) storage_driver: Option<String>,
    pub(crate) labels: Vec<String>,
    pub(crate) max_concurrent_downloads: u32,
    pub(crate) max_concurrent_uploads: u32,
    /// Runtimes from daemon.json's `runtimes`, by name.
    pub(crate) runtimes: BTreeMap<String, RuntimeSpec>,
    /// daemon.json's `default-runtime`, if given.
    pub(crate) default_runtime: Option<String>,
    /// Networking flags.
    pub(crate) net: NetFlags,
}

impl Config {
    /// The level logging runs at: `--debug` wins over `--log-level`, as in dockerd.
    pub(crate) fn effective_log_level(&self) -> LogLevel {
        if self.debug {
            LogLevel::Debug
        } else {
            self.log_level
        }
    }
}

/// What can go wrong reading the configuration; the message is dockerd's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("unable to configure the Docker daemon with file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("invalid value for {key}: {reason}")]
    Value { key: String, reason: String },
    #[error("{0}")]
    Flag(String),
}

/// Settings given explicitly on the command line, by daemon.json key, as JSON values.
pub(crate) type GivenFlags = BTreeMap<&'static str, Value>;

/// Parses the process arguments.
pub(crate) fn parse_args() -> (Flags, GivenFlags) {
    let matches = Flags::command().get_matches();
    match Flags::from_arg_matches(&matches) {
        Ok(flags) => {
            let given = given_flags(&flags, &matches);
            (flags, given)
        }
        Err(e) => e.exit(),
    }
}

/// The settings the user typed, so a file key that repeats one is a conflict.
pub(crate) fn given_flags(flags: &Flags, matches: &ArgMatches) -> GivenFlags {
    let mut given = GivenFlags::new();
    let all = flag_values(flags);
    for (id, key) in KEYS {
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            if let Some(v) = all.get(key) {
                given.insert(key, v.clone());
            }
        }
    }
    given
}

fn flag_values(flags: &Flags) -> BTreeMap<&'static str, Value> {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| Value::from(p.display().to_string()));
    let list = |v: &[String]| Value::from(v.to_vec());
    let mut m = BTreeMap::new();
    m.insert("hosts", list(&flags.hosts));
    m.insert("insecure-registries", list(&flags.insecure_registries));
    m.insert("registry-mirrors", list(&flags.registry_mirrors));
    m.insert("labels", list(&flags.labels));
    m.insert("debug", Value::from(flags.debug));
    crate::netconfig::flag_values(&flags.net, &mut m);
    let optional = [
        ("data-root", path(&flags.data_root)),
        ("exec-root", path(&flags.exec_root)),
        ("pidfile", path(&flags.pidfile)),
        ("log-level", flags.log_level.clone().map(Value::from)),
        (
            "storage-driver",
            flags.storage_driver.clone().map(Value::from),
        ),
        (
            "max-concurrent-downloads",
            flags.max_concurrent_downloads.map(Value::from),
        ),
        (
            "default-runtime",
            flags.default_runtime.clone().map(Value::from),
        ),
        (
            "max-concurrent-uploads",
            flags.max_concurrent_uploads.map(Value::from),
        ),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            m.insert(k, v);
        }
    }
    m
}

/// Reads `daemon.json`. A missing file is fine only when it is the default one (`explicit` false).
pub(crate) fn read_file(
    path: &Path,
    explicit: bool,
) -> Result<Option<Map<String, Value>>, ConfigError> {
    let fail = |reason: String| ConfigError::File {
        path: path.to_path_buf(),
        reason,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => return Err(fail(format!("open {}: {}", path.display(), io_reason(&e)))),
    };
    let mut text = String::new();
    use std::io::Read;
    file.take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| fail(format!("read {}: {}", path.display(), io_reason(&e))))?;
    if text.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(fail(format!(
            "file is larger than {MAX_CONFIG_FILE_BYTES} bytes"
        )));
    }
    if text.trim().is_empty() {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(fail("the configuration must be a JSON object".to_string())),
        Err(e) if e.is_eof() => Err(fail("unexpected EOF".to_string())),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// `no such file or directory` rather than Rust's `No such file or directory (os error 2)`.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

/// Merges defaults, the file and the flags the user gave; refuses unknown keys and conflicts.
pub(crate) fn merge(
    flags: &Flags,
    given: &GivenFlags,
    file: Option<&Map<String, Value>>,
    file_path: Option<&Path>,
) -> Result<Config, ConfigError> {
    let path = file_path.map(Path::to_path_buf).unwrap_or_default();
    let empty = Map::new();
    let file = file.unwrap_or(&empty);

    let mut unknown: Vec<&str> = file
        .keys()
        .map(String::as_str)
        .filter(|k| !KEYS.iter().any(|(_, key)| key == k) && !FILE_ONLY_KEYS.contains(k))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(ConfigError::File {
            path,
            reason: format!(
                "the following directives don't match any configuration option: {}",
                unknown.join(", ")
            ),
        });
    }
    let conflicts: Vec<String> = KEYS
        .iter()
        .filter_map(|(_, key)| {
            let from_flag = given.get(key)?;
            let from_file = file.get(*key)?;
            Some(format!(
                "{key}: (from flag: {}, from file: {})",
                go_format(from_flag),
                go_format(from_file)
            ))
        })
        .collect();
    if !conflicts.is_empty() {
        return Err(ConfigError::File {
            path,
            reason: format!(
                "the following directives are specified both as a flag and in the configuration file: {}",
                conflicts.join(", ")
            ),
        });
    }

    let flag_values = flag_values(flags);
    // A flag value counts when it was given, or when it is a non-default value we cannot tell
    // apart (tests build `Flags` directly).
    let pick = |key: &str| -> Option<Value> {
        given
            .get(key)
            .cloned()
            .or_else(|| file.get(key).cloned())
            .or_else(|| flag_values.get(key).cloned().filter(is_set))
    };
    let string = |key: &str| -> Result<Option<String>, ConfigError> {
        match pick(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(key, "expected a string")),
        }
    };
    let strings = |key: &str| -> Result<Vec<String>, ConfigError> {
        match pick(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(bad(key, "expected a list of strings")),
                })
                .collect(),
            Some(_) => Err(bad(key, "expected a list of strings")),
        }
    };
    let number = |key: &str, default: u32| -> Result<u32, ConfigError> {
        match pick(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad(key, "expected a non-negative integer")),
            Some(_) => Err(bad(key, "expected a non-negative integer")),
        }
    };

    let data_root = string("data-root")?
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT));
    let exec_root = string("exec-root")?
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_EXEC_ROOT));
    for (key, p) in [("data-root", &data_root), ("exec-root", &exec_root)] {
        if !p.is_absolute() {
            return Err(bad(key, "must be an absolute path"));
        }
    }
    let pidfile = string("pidfile")?
        .map(PathBuf::from)
        .unwrap_or_else(|| exec_root.join("estibad.pid"));
    let log_level = match string("log-level")? {
        None => LogLevel::Info,
        Some(s) => LogLevel::parse(&s)
            .ok_or_else(|| bad("log-level", &format!("unknown log level {s:?}")))?,
    };
    let debug = match pick("debug") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(bad("debug", "expected a boolean")),
    };
    let storage_driver = string("storage-driver")?;
    if let Some(d) = &storage_driver {
        if d != "overlay2" && d != "vfs" {
            return Err(bad(
                "storage-driver",
                &format!("unknown driver {d:?} (overlay2 or vfs)"),
            ));
        }
    }
    let mut hosts = strings("hosts")?;
    if hosts.is_empty() {
        hosts.push(format!(
            "unix://{}",
            exec_root.join(DEFAULT_SOCKET_NAME).display()
        ));
    }
    let labels = strings("labels")?;
    for label in &labels {
        if !label.contains('=') {
            return Err(bad("labels", &format!("bad attribute format: {label}")));
        }
    }
    Ok(Config {
        net: crate::netconfig::merge_file(&flags.net, file)?,
        hosts,
        data_root,
        exec_root,
        pidfile,
        config_file: (!path.as_os_str().is_empty()).then_some(path),
        log_level,
        debug,
        insecure_registries: strings("insecure-registries")?,
        registry_mirrors: strings("registry-mirrors")?,
        storage_driver,
        labels,
        max_concurrent_downloads: number("max-concurrent-downloads", 3)?,
        max_concurrent_uploads: number("max-concurrent-uploads", 5)?,
        runtimes: add_runtimes(runtimes(file.get("runtimes"))?, &flags.add_runtime)?,
        default_runtime: string("default-runtime")?,
    })
}

/// Adds `--add-runtime NAME=PATH` flags to daemon.json's runtimes; a name in both is an error,
/// as in dockerd.
fn add_runtimes(
    mut runtimes: BTreeMap<String, RuntimeSpec>,
    flags: &[String],
) -> Result<BTreeMap<String, RuntimeSpec>, ConfigError> {
    for flag in flags {
        let Some((name, path)) = flag
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
        else {
            return Err(ConfigError::Flag(format!(
                "invalid argument \"{flag}\" for \"--add-runtime\" flag: bad format: expected NAME=PATH"
            )));
        };
        if runtimes.contains_key(name) {
            return Err(ConfigError::Flag(format!(
                "runtime {name} is specified both as a flag and in the configuration file"
            )));
        }
        if runtimes.len() >= MAX_RUNTIMES {
            return Err(ConfigError::Flag(format!(
                "more than {MAX_RUNTIMES} runtimes"
            )));
        }
        runtimes.insert(
            name.to_owned(),
            RuntimeSpec {
                path: PathBuf::from(path),
                args: Vec::new(),
            },
        );
    }
    Ok(runtimes)
}

/// Parses daemon.json's `runtimes`: `{"name": {"path": "...", "runtimeArgs": ["..."]}}`.
fn runtimes(value: Option<&Value>) -> Result<BTreeMap<String, RuntimeSpec>, ConfigError> {
    const KEY: &str = "runtimes";
    let map = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(bad(KEY, "expected an object")),
    };
    if map.len() > MAX_RUNTIMES {
        return Err(bad(KEY, &format!("more than {MAX_RUNTIMES} runtimes")));
    }
    let mut out = BTreeMap::new();
    for (name, spec) in map {
        if name.is_empty() {
            return Err(bad(KEY, "runtime name must not be empty"));
        }
        let Value::Object(spec) = spec else {
            return Err(bad(KEY, &format!("runtime {name}: expected an object")));
        };
        if let Some(other) = spec
            .keys()
            .find(|k| !matches!(k.as_str(), "path" | "runtimeArgs"))
        {
            return Err(bad(KEY, &format!("runtime {name}: unknown key {other:?}")));
        }
        let path = match spec.get("path") {
            Some(Value::String(p)) if !p.is_empty() => PathBuf::from(p),
            _ => return Err(bad(KEY, &format!("runtime {name}: path is required"))),
        };
        let args = match spec.get("runtimeArgs") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.len() <= MAX_RUNTIME_ARGS => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(bad(KEY, &format!("runtime {name}: runtimeArgs must be strings"))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(bad(
                    KEY,
                    &format!("runtime {name}: runtimeArgs must be a list of at most {MAX_RUNTIME_ARGS} strings"),
                ))
            }
        };
        out.insert(name.clone(), RuntimeSpec { path, args });
    }
    Ok(out)
}

fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

fn bad(key: &str, reason: &str) -> ConfigError {
    ConfigError::Value {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

/// Formats a value as Go's `%v` does: strings bare, lists as `[a b]`.
fn go_format(v: &Value) -> String {
    struct Go<'a>(&'a Value);
    impl fmt::Display for Go<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.0 {
                Value::String(s) => f.write_str(s),
                Value::Array(items) => {
                    f.write_str("[")?;
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            f.write_str(" ")?;
                        }
                        write!(f, "{}", Go(item))?;
                    }
                    f.write_str("]")
                }
                other => write!(f, "{other}"),
            }
        }
    }
    Go(v).to_string()
}

/// Resolves the whole configuration from flags and the config file.
pub(crate) fn load(flags: &Flags, given: &GivenFlags) -> Result<Config, ConfigError> {
    let (path, explicit) = match &flags.config_file {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let file = read_file(&path, explicit)?;
    let file_path = file.as_ref().map(|_| path.as_path());
    merge(flags, given, file.as_ref(), file_path)
}

/// Settings SIGHUP may change while the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reloadable {
    pub(crate) log_level: LogLevel,
    pub(crate) debug: bool,
    pub(crate) labels: Vec<String>,
    pub(crate) insecure_registries: Vec<String>,
    pub(crate) registry_mirrors: Vec<String>,
    pub(crate) max_concurrent_downloads: u32,
    pub(crate) max_concurrent_uploads: u32,
}

impl From<&Config> for Reloadable {
    fn from(c: &Config) -> Self {
        Reloadable {
            log_level: c.log_level,
            debug: c.debug,
            labels: c.labels.clone(),
            insecure_registries: c.insecure_registries.clone(),
            registry_mirrors: c.registry_mirrors.clone(),
            max_concurrent_downloads: c.max_concurrent_downloads,
            max_concurrent_uploads: c.max_concurrent_uploads,
        }
    }
}

impl Reloadable {
    /// The attributes of the daemon `reload` event, named as dockerd names them.
    pub(crate) fn event_attributes(&self) -> Vec<(&'static str, String)> {
        let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
        vec![
            ("debug", self.debug.to_string()),
            ("insecure-registries", json(&self.insecure_registries)),
            ("labels", json(&self.labels)),
            ("log-level", self.log_level.as_str().to_string()),
            (
                "max-concurrent-downloads",
                self.max_concurrent_downloads.to_string(),
            ),
            (
                "max-concurrent-uploads",
                self.max_concurrent_uploads.to_string(),
            ),
            ("registry-mirrors", json(&self.registry_mirrors)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(args: &[&str]) -> (Flags, GivenFlags) {
        let mut argv = vec!["estibad"];
        argv.extend_from_slice(args);
        let matches = Flags::command().try_get_matches_from(argv).unwrap();
        let flags = Flags::from_arg_matches(&matches).unwrap();
        let given = given_flags(&flags, &matches);
        (flags, given)
    }

    fn merged(args: &[&str], file: Option<Value>) -> Result<Config, String> {
        let (flags, given) = parse(args);
        let file = file.map(|v| v.as_object().cloned().unwrap());
        merge(
            &flags,
            &given,
            file.as_ref(),
            Some(Path::new("/etc/d.json")),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn runtimes_key() {
        let ok = merged(
            &[],
            Some(json!({
                "runtimes": {"myrunc": {"path": "/usr/sbin/runc", "runtimeArgs": ["--debug"]}},
                "default-runtime": "myrunc"
            })),
        )
        .unwrap();
        assert_eq!(
            ok.runtimes.get("myrunc"),
            Some(&RuntimeSpec {
                path: PathBuf::from("/usr/sbin/runc"),
                args: vec!["--debug".to_string()],
            })
        );
        assert_eq!(ok.default_runtime.as_deref(), Some("myrunc"));
        let cases = [
            (json!({"runtimes": []}), "expected an object"),
            (
                json!({"runtimes": {"x": {}}}),
                "runtime x: path is required",
            ),
            (json!({"runtimes": {"x": {"path": ""}}}), "path is required"),
            (
                json!({"runtimes": {"x": {"path": "/a", "args": []}}}),
                "unknown key \"args\"",
            ),
            (
                json!({"runtimes": {"x": {"path": "/a", "runtimeArgs": [1]}}}),
                "runtimeArgs must be strings",
            ),
            (json!({"default-runtime": 3}), "expected a string"),
        ];
        for (file, want) in cases {
            let err = merged(&[], Some(file.clone())).unwrap_err();
            assert!(err.contains(want), "{file}: {err}");
        }
    }

    #[test]
    fn runtime_flags() {
        let ok = merged(
            &[
                "--add-runtime",
                "crun=/usr/bin/crun",
                "--default-runtime",
                "crun",
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            ok.runtimes.get("crun").map(|r| r.path.clone()),
            Some(PathBuf::from("/usr/bin/crun"))
        );
        assert_eq!(ok.default_runtime.as_deref(), Some("crun"));
        let err = merged(
            &["--default-runtime", "a"],
            Some(json!({"default-runtime": "b"})),
        )
        .unwrap_err();
        assert!(
            err.contains("default-runtime: (from flag: a, from file: b)"),
            "{err}"
        );
        let err = merged(
            &["--add-runtime", "x=/a"],
            Some(json!({"runtimes": {"x": {"path": "/b"}}})),
        )
        .unwrap_err();
        assert!(err.contains("runtime x is specified both"), "{err}");
        let err = merged(&["--add-runtime", "nopath"], None).unwrap_err();
        assert!(err.contains("expected NAME=PATH"), "{err}");
    }

    #[test]
    fn defaults() {
        let c = merged(&[], None).unwrap();
        assert_eq!(c.hosts, ["unix:///run/estiba/estiba.sock"]);
        assert_eq!(c.data_root, Path::new("/var/lib/estiba"));
        assert_eq!(c.pidfile, Path::new("/run/estiba/estibad.pid"));
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(
            (c.max_concurrent_downloads, c.max_concurrent_uploads),
            (3, 5)
        );
    }

    #[test]
    fn flags_and_file_merge() {
        let cases: Vec<(&[&str], Option<Value>, &str)> = vec![
            (
                &["--exec-root", "/tmp/x"],
                None,
                "hosts=[\"unix:///tmp/x/estiba.sock\"] pid=/tmp/x/estibad.pid",
            ),
            (
                &["-H", "tcp://127.0.0.1:2375", "-H", "unix:///s"],
                Some(json!({"exec-root": "/e", "debug": true})),
                "hosts=[\"tcp://127.0.0.1:2375\", \"unix:///s\"] pid=/e/estibad.pid",
            ),
            (
                &["--pidfile", "/p"],
                Some(json!({"hosts": ["unix:///f"]})),
                "hosts=[\"unix:///f\"] pid=/p",
            ),
        ];
        for (args, file, want) in cases {
            let c = merged(args, file).unwrap();
            let got = format!("hosts={:?} pid={}", c.hosts, c.pidfile.display());
            assert_eq!(got, want, "args {args:?}");
        }
        let c = merged(&[], Some(json!({"debug": true, "log-level": "warn"}))).unwrap();
        assert_eq!(c.effective_log_level(), LogLevel::Debug);
    }

    #[test]
    fn errors_use_dockerd_wording() {
        let cases: Vec<(&[&str], Value, &str)> = vec![
            (
                &[],
                json!({"other": 1, "bogus": 2}),
                "unable to configure the Docker daemon with file /etc/d.json: the following directives don't match any configuration option: bogus, other",
            ),
            (
                &["-D", "--log-level", "debug"],
                json!({"debug": false, "log-level": "info"}),
                "unable to configure the Docker daemon with file /etc/d.json: the following directives are specified both as a flag and in the configuration file: log-level: (from flag: debug, from file: info), debug: (from flag: true, from file: false)",
            ),
            (
                &["--insecure-registry", "a:5000"],
                json!({"insecure-registries": ["b", "c"]}),
                "unable to configure the Docker daemon with file /etc/d.json: the following directives are specified both as a flag and in the configuration file: insecure-registries: (from flag: [a:5000], from file: [b c])",
            ),
            (&[], json!({"debug": "yes"}), "invalid value for debug: expected a boolean"),
            (
                &[],
                json!({"storage-driver": "zfs"}),
                "invalid value for storage-driver: unknown driver \"zfs\" (overlay2 or vfs)",
            ),
            (&[], json!({"data-root": "rel"}), "invalid value for data-root: must be an absolute path"),
            (&[], json!({"labels": ["nokey"]}), "invalid value for labels: bad attribute format: nokey"),
        ];
        for (args, file, want) in cases {
            assert_eq!(merged(args, Some(file)).unwrap_err(), want, "args {args:?}");
        }
    }

    #[test]
    fn config_file_reading() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        assert!(read_file(&missing, false).unwrap().is_none());
        let err = read_file(&missing, true).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "unable to configure the Docker daemon with file {0}: open {0}: no such file or directory",
                missing.display()
            )
        );
        let truncated = dir.path().join("t.json");
        std::fs::write(&truncated, "{\"debug\": ").unwrap();
        assert!(read_file(&truncated, true)
            .unwrap_err()
            .to_string()
            .ends_with(": unexpected EOF"));
        let empty = dir.path().join("e.json");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(read_file(&empty, true).unwrap(), Some(Map::new()));
    }
}
