//! Container shapes: create, inspect, list, wait, prune.
//!
//! The create body is read leniently, as dockerd does: every field has a default, `null` reads
//! as empty, unknown fields are ignored (the docker CLI sends many). Inspect is written in
//! dockerd 28's shape, `null`s included.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::de::null_default;

/// `Cmd`, `Entrypoint`, `Shell`: a list, a single string, or `null` (Docker's `StrSlice`).
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::One(s)) => Some(vec![s]),
        Some(Either::Many(v)) => Some(v),
    })
}

/// `Config` of create and inspect (Docker's `container.Config`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    pub image: String,
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub working_dir: String,
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    pub on_build: Option<Vec<String>>,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "str_slice"
    )]
    pub shell: Option<Vec<String>>,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(deserialize_with = "null_default")]
    pub config: BTreeMap<String, String>,
}

/// `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

/// One `--ulimit`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `HostConfig` of create and inspect, in dockerd's field order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    pub log_config: LogConfig,
    pub network_mode: String,
    #[serde(deserialize_with = "null_default")]
    pub port_bindings: BTreeMap<String, serde_json::Value>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub volume_driver: String,
    pub volumes_from: Option<Vec<String>>,
    pub console_size: [u64; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub cgroupns_mode: String,
    #[serde(deserialize_with = "null_default")]
    pub dns: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub dns_options: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub dns_search: Vec<String>,
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    pub ipc_mode: String,
    pub cgroup: String,
    pub links: Option<Vec<String>>,
    pub oom_score_adj: i64,
    pub pid_mode: String,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_opt: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub userns_mode: String,
    pub shm_size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<BTreeMap<String, String>>,
    pub runtime: String,
    pub isolation: String,
    pub cpu_shares: i64,
    pub memory: i64,
    pub nano_cpus: i64,
    pub cgroup_parent: String,
    pub blkio_weight: u16,
    #[serde(deserialize_with = "null_default")]
    pub blkio_weight_device: Vec<serde_json::Value>,
    #[serde(deserialize_with = "null_default")]
    pub blkio_device_read_bps: Vec<serde_json::Value>,
    #[serde(deserialize_with = "null_default")]
    pub blkio_device_write_bps: Vec<serde_json::Value>,
    #[serde(rename = "BlkioDeviceReadIOps", deserialize_with = "null_default")]
    pub blkio_device_read_iops: Vec<serde_json::Value>,
    #[serde(rename = "BlkioDeviceWriteIOps", deserialize_with = "null_default")]
    pub blkio_device_write_iops: Vec<serde_json::Value>,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    #[serde(deserialize_with = "null_default")]
    pub devices: Vec<serde_json::Value>,
    pub device_cgroup_rules: Option<Vec<String>>,
    pub device_requests: Option<Vec<serde_json::Value>>,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    pub pids_limit: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub ulimits: Vec<Ulimit>,
    pub cpu_count: i64,
    pub cpu_percent: i64,
    #[serde(rename = "IOMaximumIOps")]
    pub io_maximum_iops: u64,
    #[serde(rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: u64,
    /// `--mount` entries (moby's `mount.Mount`), kept as JSON: the container service parses them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<serde_json::Value>>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
}

/// The body of `POST /containers/create`: `Config` inline, plus `HostConfig` and
/// `NetworkingConfig`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerCreateBody {
    #[serde(flatten)]
    pub config: ContainerConfig,
    pub host_config: Option<HostConfig>,
    pub networking_config: Option<serde_json::Value>,
}

/// Answer of `POST /containers/create`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCreateResponse {
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub warnings: Vec<String>,
}

/// `State` of container inspect.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    /// Only for a container with a healthcheck.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<ContainerHealth>,
}

/// `State.Health` of container inspect.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerHealth {
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<ContainerHealthResult>,
}

/// One probe result in `State.Health.Log`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerHealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// `GraphDriver` of container inspect.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerGraphDriver {
    pub data: BTreeMap<String, String>,
    pub name: String,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspectResponse {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: ContainerGraphDriver,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub mounts: Vec<serde_json::Value>,
    pub config: ContainerConfig,
    pub network_settings: serde_json::Value,
}

/// One element of `GET /containers/json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: serde_json::Value,
    pub mounts: Vec<serde_json::Value>,
}

/// `HostConfig` of a container summary.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    pub network_mode: String,
}

/// `Error` of a wait response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitExitError {
    pub message: String,
}

/// Answer of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerWaitResponse {
    pub status_code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WaitExitError>,
}

/// Answer of `POST /containers/prune`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerPruneResponse {
    pub containers_deleted: Option<Vec<String>>,
    pub space_reclaimed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body_is_lenient() {
        let cases: &[(&str, Option<Vec<&str>>, &str)] = &[
            (
                r#"{"Image":"busybox","Cmd":["echo","hi"]}"#,
                Some(vec!["echo", "hi"]),
                "busybox",
            ),
            (
                r#"{"Image":"busybox","Cmd":"true","Bogus":1}"#,
                Some(vec!["true"]),
                "busybox",
            ),
            (
                r#"{"Image":"x","Cmd":null,"Labels":null,"HostConfig":null}"#,
                None,
                "x",
            ),
            (r#"{}"#, None, ""),
        ];
        for (body, cmd, image) in cases {
            let b: ContainerCreateBody = serde_json::from_str(body).unwrap();
            let want = cmd
                .as_ref()
                .map(|v| v.iter().map(|s| s.to_string()).collect());
            assert_eq!(b.config.cmd, want, "{body}");
            assert_eq!(b.config.image, *image, "{body}");
        }
        let b: ContainerCreateBody = serde_json::from_str(
            r#"{"Image":"b","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"},"Memory":1048576,"PidsLimit":null,"Ulimits":null}}"#,
        )
        .unwrap();
        let hc = b.host_config.unwrap();
        assert!(hc.auto_remove);
        assert_eq!(hc.restart_policy.name, "always");
        assert_eq!(hc.memory, 1_048_576);
        assert_eq!(hc.pids_limit, None);
    }

    #[test]
    fn wait_response_omits_empty_error() {
        let r = ContainerWaitResponse {
            status_code: 3,
            error: None,
        };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"StatusCode":3}"#);
    }
}
