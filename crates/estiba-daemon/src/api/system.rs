//! `/_ping`, `/version`, `/info`, `/system/df`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use estiba_api::{
    ApiVersion, Commit, ComponentVersion, ImageSummary, IndexInfo, PlatformName, PluginsInfo,
    RegistryServiceConfig, Runtime, SwarmInfo, SystemDataUsageResponse, SystemInfo, SystemVersion,
};
use estiba_image::service::ListFilters;

use super::images::summary_to_api;
use super::{ApiError, SharedState, Version};
use crate::host;

/// The product name `docker version` shows for the server.
pub(crate) const PLATFORM_NAME: &str = "Estiba Engine";

pub(super) async fn ping() -> Response {
    let mut r = (StatusCode::OK, "OK").into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    // The classic builder only: BuildKit would be "2".
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    r
}

pub(super) fn system_version() -> SystemVersion {
    let uname = host::uname();
    let details: BTreeMap<String, String> = [
        ("ApiVersion", estiba_api::API_VERSION),
        ("Arch", host::go_arch()),
        ("BuildTime", host::build_time().as_str()),
        ("Experimental", "false"),
        ("GitCommit", host::GIT_COMMIT),
        ("GoVersion", host::RUSTC_VERSION),
        ("KernelVersion", uname.kernel_version.as_str()),
        ("MinAPIVersion", estiba_api::MIN_API_VERSION),
        ("Os", "linux"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    SystemVersion {
        platform: PlatformName {
            name: PLATFORM_NAME.to_string(),
        },
        components: vec![ComponentVersion {
            name: "Engine".to_string(),
            version: host::VERSION.to_string(),
            details,
        }],
        version: host::VERSION.to_string(),
        api_version: estiba_api::API_VERSION.to_string(),
        min_api_version: estiba_api::MIN_API_VERSION.to_string(),
        git_commit: host::GIT_COMMIT.to_string(),
        go_version: host::RUSTC_VERSION.to_string(),
        os: "linux".to_string(),
        arch: host::go_arch().to_string(),
        kernel_version: uname.kernel_version,
        experimental: false,
        build_time: host::build_time(),
    }
}

pub(super) async fn version() -> Json<SystemVersion> {
    Json(system_version())
}

pub(super) async fn info(State(state): State<SharedState>) -> Json<SystemInfo> {
    let images = match state
        .images(|s| {
            s.list(&ListFilters {
                all: true,
                ..Default::default()
            })
        })
        .await
    {
        Ok(list) => i64::try_from(list.len()).unwrap_or(i64::MAX),
        Err(e) => {
            tracing::warn!("info: counting images: {}", e.message);
            0
        }
    };
    let settings = state.settings();
    let uname = host::uname();
    let (operating_system, os_version) =
        host::os_release(&host::read_small(Path::new("/etc/os-release")).unwrap_or_default());
    let cgroup_version = host::cgroup_version(Path::new("/sys/fs/cgroup"));
    let mut security_options = vec!["name=seccomp,profile=builtin".to_string()];
    if cgroup_version == "2" {
        security_options.push("name=cgroupns".to_string());
    }
    let mut warnings = Vec::new();
    for h in &state.config.hosts {
        if let Some(addr) = h.strip_prefix("tcp://") {
            warnings.push(format!(
                "WARNING: API is accessible on http://{addr} without encryption.\n         Access to the remote API is equivalent to root access on the host. Refer\n         to the 'Docker daemon attack surface' section in the documentation for\n         more information: https://docs.docker.com/go/attack-surface/"
            ));
        }
    }
    let runtimes = state
        .runtimes
        .iter()
        .map(|(name, r)| {
            (
                name.clone(),
                Runtime {
                    path: r.path.display().to_string(),
                    runtime_args: (!r.args.is_empty()).then(|| r.args.clone()),
                },
            )
        })
        .collect();
    let (total, running, paused, stopped) = state.containers.counts();
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    Json(SystemInfo {
        id: state.engine_id.clone(),
        containers: count(total),
        containers_running: count(running),
        containers_paused: count(paused),
        containers_stopped: count(stopped),
        images,
        driver: state.driver_name.to_string(),
        driver_status: state.driver_status.clone(),
        docker_root_dir: state.config.data_root.display().to_string(),
        plugins: PluginsInfo {
            volume: vec!["local".to_string()],
            network: ["bridge", "host", "null"].map(String::from).to_vec(),
            authorization: None,
            log: vec!["json-file".to_string()],
        },
        memory_limit: true,
        swap_limit: true,
        cpu_cfs_period: true,
        cpu_cfs_quota: true,
        cpu_shares: true,
        cpu_set: true,
        pids_limit: true,
        oom_kill_disable: cgroup_version == "1",
        ipv4_forwarding: host::ipv4_forwarding(),
        debug: settings.debug,
        nfd: host::open_fds(),
        ngoroutines: host::threads(),
        system_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        logging_driver: "json-file".to_string(),
        cgroup_driver: "cgroupfs".to_string(),
        cgroup_version: cgroup_version.to_string(),
        nevents_listener: state.event_listeners.load(Ordering::Relaxed),
        kernel_version: uname.kernel_version,
        operating_system,
        os_version,
        os_type: "linux".to_string(),
        architecture: uname.machine,
        ncpu: host::ncpu(),
        mem_total: host::mem_total_bytes(
            &host::read_small(Path::new("/proc/meminfo")).unwrap_or_default(),
        ),
        index_server_address: "https://index.docker.io/v1/".to_string(),
        registry_config: registry_config(&settings.insecure_registries, &settings.registry_mirrors),
        http_proxy: proxy_env("HTTP_PROXY"),
        https_proxy: proxy_env("HTTPS_PROXY"),
        no_proxy: proxy_env("NO_PROXY"),
        name: uname.hostname,
        labels: settings.labels,
        experimental_build: false,
        server_version: host::VERSION.to_string(),
        runtimes,
        default_runtime: state.containers.default_runtime().to_string(),
        swarm: SwarmInfo {
            local_node_state: "inactive".to_string(),
            ..Default::default()
        },
        live_restore_enabled: true,
        isolation: String::new(),
        init_binary: String::new(),
        containerd_commit: Commit::default(),
        runc_commit: Commit::default(),
        init_commit: Commit::default(),
        security_options,
        warnings: (!warnings.is_empty()).then_some(warnings),
    })
}

fn proxy_env(name: &str) -> String {
    std::env::var(name)
        .or_else(|_| std::env::var(name.to_ascii_lowercase()))
        .unwrap_or_default()
}

/// `RegistryConfig` as dockerd builds it: loopback is always insecure, CIDRs go in
/// `InsecureRegistryCIDRs`, host names get an insecure index entry, mirrors end with a slash.
pub(super) fn registry_config(insecure: &[String], mirrors: &[String]) -> RegistryServiceConfig {
    let mirrors: Vec<String> = mirrors
        .iter()
        .map(|m| {
            if m.ends_with('/') {
                m.clone()
            } else {
                format!("{m}/")
            }
        })
        .collect();
    let mut cidrs = vec!["127.0.0.0/8".to_string(), "::1/128".to_string()];
    let mut index_configs = BTreeMap::new();
    index_configs.insert(
        "docker.io".to_string(),
        IndexInfo {
            name: "docker.io".to_string(),
            mirrors: mirrors.clone(),
            secure: true,
            official: true,
        },
    );
    for entry in insecure {
        if entry.contains('/') {
            if !cidrs.contains(entry) {
                cidrs.push(entry.clone());
            }
        } else {
            index_configs.insert(
                entry.clone(),
                IndexInfo {
                    name: entry.clone(),
                    mirrors: Vec::new(),
                    secure: false,
                    official: false,
                },
            );
        }
    }
    RegistryServiceConfig {
        insecure_registry_cidrs: cidrs,
        index_configs,
        mirrors,
    }
}

pub(super) async fn df(
    State(state): State<SharedState>,
    Version(version): Version,
) -> Result<Json<SystemDataUsageResponse>, ApiError> {
    let usage = state.images(|s| s.disk_usage()).await?;
    let images: Vec<ImageSummary> = usage
        .images
        .iter()
        .map(|s| summary_to_api(s, version, true))
        .collect();
    Ok(Json(SystemDataUsageResponse {
        layers_size: i64::try_from(usage.layers_size_bytes).unwrap_or(i64::MAX),
        images,
        containers: Vec::new(),
        volumes: super::volumes::df_rows(&state).await?,
        build_cache: super::build::df_rows(&state).await?,
    }))
}

/// The API version a response is shaped for matters only below 1.44 (VirtualSize).
pub(super) fn wants_virtual_size(version: ApiVersion) -> bool {
    version < ApiVersion::new(1, 44)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_config_like_dockerd() {
        let rc = registry_config(
            &["10.0.0.0/8".to_string(), "myreg:5000".to_string()],
            &["https://mirror.example".to_string()],
        );
        assert_eq!(
            rc.insecure_registry_cidrs,
            ["127.0.0.0/8", "::1/128", "10.0.0.0/8"]
        );
        assert_eq!(rc.mirrors, ["https://mirror.example/"]);
        assert_eq!(
            rc.index_configs["docker.io"].mirrors,
            ["https://mirror.example/"]
        );
        assert!(!rc.index_configs["myreg:5000"].secure);
    }
}
