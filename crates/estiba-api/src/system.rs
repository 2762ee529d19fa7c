//! `GET /version`, `GET /info` and `GET /system/df`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::de::null_default;
use crate::image::ImageSummary;

/// `Platform` of `/version`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlatformName {
    #[serde(rename = "Name", default)]
    pub name: String,
}

/// One element of `Components` of `/version`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentVersion {
    pub name: String,
    pub version: String,
    #[serde(default, deserialize_with = "null_default")]
    pub details: BTreeMap<String, String>,
}

/// `GET /version`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SystemVersion {
    pub platform: PlatformName,
    #[serde(deserialize_with = "null_default")]
    pub components: Vec<ComponentVersion>,
    pub version: String,
    pub api_version: String,
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    pub kernel_version: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub experimental: bool,
    pub build_time: String,
}

/// `Plugins` of `/info`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PluginsInfo {
    #[serde(deserialize_with = "null_default")]
    pub volume: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub network: Vec<String>,
    pub authorization: Option<Vec<String>>,
    #[serde(deserialize_with = "null_default")]
    pub log: Vec<String>,
}

/// One registry's settings in `RegistryConfig.IndexConfigs`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IndexInfo {
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub mirrors: Vec<String>,
    pub secure: bool,
    pub official: bool,
}

/// `RegistryConfig` of `/info`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RegistryServiceConfig {
    #[serde(rename = "InsecureRegistryCIDRs", deserialize_with = "null_default")]
    pub insecure_registry_cidrs: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub index_configs: BTreeMap<String, IndexInfo>,
    #[serde(deserialize_with = "null_default")]
    pub mirrors: Vec<String>,
}

/// One OCI runtime in `Runtimes` of `/info` (lower-case keys, as Docker sends them).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Runtime {
    #[serde(default)]
    pub path: String,
    #[serde(
        rename = "runtimeArgs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_args: Option<Vec<String>>,
}

/// A component's commit in `/info` (`ContainerdCommit`, `RuncCommit`, `InitCommit`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Commit {
    #[serde(rename = "ID", default)]
    pub id: String,
}

/// `Swarm` of `/info`; estiba has no swarm mode, so it is always inactive.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmInfo {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_addr: String,
    pub local_node_state: String,
    pub control_available: bool,
    pub error: String,
    pub remote_managers: Option<Vec<serde_json::Value>>,
}

/// `GET /info`: the fields `docker info` prints, with Docker's names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SystemInfo {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: i64,
    pub containers_running: i64,
    pub containers_paused: i64,
    pub containers_stopped: i64,
    pub images: i64,
    pub driver: String,
    #[serde(deserialize_with = "null_default")]
    pub driver_status: Vec<[String; 2]>,
    pub docker_root_dir: String,
    pub plugins: PluginsInfo,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub cpu_cfs_period: bool,
    pub cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    pub pids_limit: bool,
    pub oom_kill_disable: bool,
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    pub debug: bool,
    #[serde(rename = "NFd")]
    pub nfd: i64,
    /// dockerd's goroutine count; estibad reports its thread count.
    #[serde(rename = "NGoroutines")]
    pub ngoroutines: i64,
    pub system_time: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    #[serde(rename = "NEventsListener")]
    pub nevents_listener: i64,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    #[serde(rename = "NCPU")]
    pub ncpu: i64,
    pub mem_total: i64,
    pub index_server_address: String,
    pub registry_config: RegistryServiceConfig,
    pub http_proxy: String,
    pub https_proxy: String,
    pub no_proxy: String,
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub labels: Vec<String>,
    pub experimental_build: bool,
    pub server_version: String,
    #[serde(deserialize_with = "null_default")]
    pub runtimes: BTreeMap<String, Runtime>,
    pub default_runtime: String,
    pub swarm: SwarmInfo,
    pub live_restore_enabled: bool,
    pub isolation: String,
    pub init_binary: String,
    pub containerd_commit: Commit,
    pub runc_commit: Commit,
    pub init_commit: Commit,
    #[serde(deserialize_with = "null_default")]
    pub security_options: Vec<String>,
    /// dockerd sends null when there is nothing to warn about.
    pub warnings: Option<Vec<String>>,
}

/// `GET /system/df`. Containers, volumes and build cache stay raw JSON until those services exist.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SystemDataUsageResponse {
    pub layers_size: i64,
    #[serde(deserialize_with = "null_default")]
    pub images: Vec<ImageSummary>,
    #[serde(deserialize_with = "null_default")]
    pub containers: Vec<serde_json::Value>,
    #[serde(deserialize_with = "null_default")]
    pub volumes: Vec<serde_json::Value>,
    #[serde(deserialize_with = "null_default")]
    pub build_cache: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irregular_names_are_dockers() {
        let v = serde_json::to_value(SystemInfo::default()).unwrap();
        for key in [
            "ID",
            "NCPU",
            "NFd",
            "NGoroutines",
            "OSType",
            "OSVersion",
            "CPUShares",
            "CPUSet",
            "IPv4Forwarding",
            "NEventsListener",
            "DockerRootDir",
            "CgroupVersion",
            "RegistryConfig",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["Warnings"], serde_json::Value::Null);
        let ver = serde_json::to_value(SystemVersion::default()).unwrap();
        assert!(ver.get("MinAPIVersion").is_some());
        assert!(ver.get("Experimental").is_none());
        let df = serde_json::to_value(SystemDataUsageResponse::default()).unwrap();
        assert_eq!(df["BuildCache"], serde_json::json!([]));
    }

    #[test]
    fn reads_dockerd_20_version() {
        let raw = r#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"20.10.24+dfsg1","Details":{"ApiVersion":"1.41"}}],"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","GitCommit":"5d6db84","GoVersion":"go1.19.8","Os":"linux","Arch":"amd64","KernelVersion":"6.1","BuildTime":"2026-05-07T21:09:36.000000000+00:00"}"#;
        let v: SystemVersion = serde_json::from_str(raw).unwrap();
        assert_eq!(v.components[0].details["ApiVersion"], "1.41");
        assert_eq!(v.min_api_version, "1.12");
    }
}
