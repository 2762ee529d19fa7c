//! Domain types of a container: what the user asked for (config and host options), its state,
//! and the record kept in the metadata database.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What runs in the container, after merging with the image (Docker's `Config`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub exposed_ports: Vec<String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    /// The image as the user named it ("busybox").
    pub image: String,
    pub volumes: Vec<String>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub stop_timeout_s: Option<i64>,
    /// The user's healthcheck merged over the image's (the API's JSON shape; see `health`).
    pub healthcheck: Option<serde_json::Value>,
}

/// `--restart`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    /// "", "no", "always", "unless-stopped", "on-failure".
    pub name: String,
    pub maximum_retry_count: i64,
}

/// cgroup limits as the API gives them (0 means unset).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub memory_bytes: i64,
    pub memory_swap_bytes: i64,
    pub memory_reservation_bytes: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub pids_limit: Option<i64>,
    pub blkio_weight: u16,
    /// `--device-read-bps`, `--device-write-bps`, `--device-read-iops`,
    /// `--device-write-iops`: (device path, rate) pairs.
    pub blkio_device_read_bps: Vec<ThrottleSetting>,
    pub blkio_device_write_bps: Vec<ThrottleSetting>,
    pub blkio_device_read_iops: Vec<ThrottleSetting>,
    pub blkio_device_write_iops: Vec<ThrottleSetting>,
    /// `--blkio-weight-device`: (device path, weight) pairs.
    pub blkio_weight_device: Vec<ThrottleSetting>,
}

/// One per-device block I/O setting: a rate (bytes or operations per second) or a weight.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottleSetting {
    pub path: String,
    pub value: u64,
}

/// One `--ulimit name=soft:hard`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UlimitSetting {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// How the container relates to the host (Docker's `HostConfig`, the parts estiba honours).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostOptions {
    pub binds: Vec<String>,
    pub log_driver: String,
    pub log_options: BTreeMap<String, String>,
    pub network_mode: String,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub console_size: [u64; 2],
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub cgroupns_mode: String,
    pub dns: Vec<String>,
    pub dns_options: Vec<String>,
    pub dns_search: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub group_add: Vec<String>,
    pub ipc_mode: String,
    pub oom_score_adj: i64,
    pub pid_mode: String,
    pub privileged: bool,
    pub read_only: bool,
    pub security_opt: Vec<String>,
    pub tmpfs: BTreeMap<String, String>,
    pub uts_mode: String,
    pub shm_size_bytes: i64,
    pub sysctls: BTreeMap<String, String>,
    /// The runtime's name ("runc", "estiba-runtime").
    pub runtime: String,
    pub limits: Limits,
    pub ulimits: Vec<UlimitSetting>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    pub init: Option<bool>,
    /// `HostConfig.Mounts` as given (`--mount`); parsed into mount points at create.
    pub mounts: Vec<serde_json::Value>,
    /// `HostConfig.VolumesFrom` (`--volumes-from NAME[:ro|:rw]`).
    pub volumes_from: Vec<String>,
    /// `--device`.
    pub devices: Vec<DeviceMapping>,
    /// `--device-cgroup-rule`.
    pub device_cgroup_rules: Vec<String>,
    /// `--cgroup-parent`: the container's cgroup goes under it instead of `/estiba`.
    pub cgroup_parent: String,
    /// `--gpus` and other `DeviceRequests` (the API's JSON shape); no driver serves them.
    pub device_requests: Vec<serde_json::Value>,
    /// `PortBindings`: `"80/tcp"` -> bindings.
    pub port_bindings: BTreeMap<String, Vec<PortBindingSetting>>,
    /// `-P`.
    pub publish_all_ports: bool,
    /// `--link`.
    pub links: Vec<String>,
    /// `NetworkingConfig.EndpointsConfig`, by network name.
    pub endpoints: BTreeMap<String, EndpointSetting>,
}

/// One `--device HOST[:CONTAINER[:PERMISSIONS]]` (Docker's `DeviceMapping`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// One host binding of a published port.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PortBindingSetting {
    pub host_ip: String,
    pub host_port: String,
}

/// What a container asks of one network (`--network-alias`, `--ip`, `--ip6`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointSetting {
    pub aliases: Vec<String>,
    pub ipv4_address: String,
    pub ipv6_address: String,
}

/// Lifecycle states, named as Docker names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether a container process exists (a shim supervises it).
    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// The mutable state of a container.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub status: Status,
    pub pid: u32,
    pub exit_code: i64,
    pub error: String,
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds; "" when never started.
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: i64,
    /// Set by an explicit stop, so `unless-stopped`/`always` do not restart it.
    pub has_been_manually_stopped: bool,
    /// Started at least once (restart policies apply only then).
    pub has_been_started: bool,
    /// `State.Health`, for a container with a healthcheck.
    pub health: Option<crate::health::Health>,
}

/// A container as stored in the `containers` table (keyed by ID).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerRecord {
    /// 64 hex characters.
    pub id: String,
    /// Without the leading slash.
    pub name: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// Unix nanoseconds, for ordering and `before`/`since`.
    pub created_nano: i64,
    /// The process as it runs: `path` then `args`.
    pub path: String,
    pub args: Vec<String>,
    /// "sha256:<hex>".
    pub image_id: String,
    pub config: ContainerConfig,
    pub host: HostOptions,
    pub state: State,
    /// The snapshot holding the container's writable layer.
    pub snapshot_key: String,
    /// Storage driver name at create time.
    pub driver: String,
    /// Binds, volumes and `--mount` tmpfs, resolved at create (inspect's `Mounts`).
    pub mount_points: Vec<crate::mountspec::MountPoint>,
}

impl ContainerRecord {
    /// The container's cgroup relative to each hierarchy's root: `estiba/<id>`, or
    /// `<cgroup-parent>/<id>` (the runtime's `cgroupsPath` is this with a leading slash).
    pub fn cgroup_rel(&self) -> String {
        let parent = self.host.cgroup_parent.trim_matches('/');
        if parent.is_empty() {
            format!("estiba/{}", self.id)
        } else {
            format!("{parent}/{}", self.id)
        }
    }

    /// `docker ps`' COMMAND as moby builds it: the path and arguments joined by spaces, an
    /// argument that contains a space wrapped in single quotes (`sh -c 'echo hi; exit 3'`).
    pub fn command(&self) -> String {
        std::iter::once(self.path.clone())
            .chain(self.args.iter().map(|a| {
                if a.contains(' ') {
                    format!("'{a}'")
                } else {
                    a.clone()
                }
            }))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
