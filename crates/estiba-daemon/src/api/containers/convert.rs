//! Docker's JSON shapes to and from the container service's domain types.

use std::collections::BTreeMap;

use estiba_api::container::{
    ContainerConfig as ApiConfig, ContainerGraphDriver, ContainerState as ApiState, HostConfig,
    LogConfig, RestartPolicy as ApiRestartPolicy, SummaryHostConfig, Ulimit,
};
use estiba_api::{ContainerCreateBody, ContainerInspectResponse, ContainerSummary};
use estiba_container::model::ThrottleSetting;
use estiba_container::{
    ContainerConfig, ContainerRecord, ContainerService, CreateRequest, HostOptions, Limits,
    RestartPolicy, Summary, UlimitSetting,
};

/// Go's zero time, which Docker shows for times that never happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn set_of(map: Option<BTreeMap<String, serde_json::Value>>) -> Vec<String> {
    map.map(|m| m.into_keys().collect()).unwrap_or_default()
}

fn map_of(keys: &[String]) -> Option<BTreeMap<String, serde_json::Value>> {
    (!keys.is_empty()).then(|| {
        keys.iter()
            .map(|k| (k.clone(), serde_json::json!({})))
            .collect()
    })
}

/// The create body as a domain request.
pub(super) fn create_request(name: String, body: ContainerCreateBody) -> CreateRequest {
    let c = body.config;
    let h = body.host_config.unwrap_or_default();
    let (port_bindings, endpoints) =
        crate::api::networks::create_settings(&h, body.networking_config.as_ref());
    let config = ContainerConfig {
        hostname: c.hostname,
        domainname: c.domainname,
        user: c.user,
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: set_of(c.exposed_ports),
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: c.env.unwrap_or_default(),
        cmd: c.cmd,
        image: c.image,
        volumes: set_of(c.volumes),
        working_dir: c.working_dir,
        entrypoint: c.entrypoint,
        labels: c.labels,
        stop_signal: c.stop_signal.filter(|s| !s.is_empty()),
        stop_timeout_s: c.stop_timeout,
        healthcheck: c.healthcheck,
    };
    let host = HostOptions {
        binds: h.binds.unwrap_or_default(),
        log_driver: h.log_config.kind,
        log_options: h.log_config.config,
        network_mode: h.network_mode,
        port_bindings,
        publish_all_ports: h.publish_all_ports,
        links: h.links.clone().unwrap_or_default(),
        endpoints,
        restart_policy: RestartPolicy {
            name: h.restart_policy.name,
            maximum_retry_count: h.restart_policy.maximum_retry_count,
        },
        auto_remove: h.auto_remove,
        console_size: h.console_size,
        cap_add: h.cap_add.unwrap_or_default(),
        cap_drop: h.cap_drop.unwrap_or_default(),
        cgroupns_mode: h.cgroupns_mode,
        dns: h.dns,
        dns_options: h.dns_options,
        dns_search: h.dns_search,
        extra_hosts: h.extra_hosts.unwrap_or_default(),
        group_add: h.group_add.unwrap_or_default(),
        ipc_mode: h.ipc_mode,
        oom_score_adj: h.oom_score_adj,
        pid_mode: h.pid_mode,
        privileged: h.privileged,
        read_only: h.readonly_rootfs,
        security_opt: h.security_opt.unwrap_or_default(),
        tmpfs: h.tmpfs.unwrap_or_default(),
        uts_mode: h.uts_mode,
        shm_size_bytes: h.shm_size,
        sysctls: h.sysctls.unwrap_or_default(),
        runtime: h.runtime,
        limits: Limits {
            memory_bytes: h.memory,
            memory_swap_bytes: h.memory_swap,
            memory_reservation_bytes: h.memory_reservation,
            memory_swappiness: h.memory_swappiness.filter(|s| *s >= 0),
            oom_kill_disable: h.oom_kill_disable,
            nano_cpus: h.nano_cpus,
            cpu_shares: h.cpu_shares,
            cpu_period: h.cpu_period,
            cpu_quota: h.cpu_quota,
            cpuset_cpus: h.cpuset_cpus,
            cpuset_mems: h.cpuset_mems,
            pids_limit: h.pids_limit,
            blkio_weight: h.blkio_weight,
            blkio_device_read_bps: throttle_settings(&h.blkio_device_read_bps, "Rate"),
            blkio_device_write_bps: throttle_settings(&h.blkio_device_write_bps, "Rate"),
            blkio_device_read_iops: throttle_settings(&h.blkio_device_read_iops, "Rate"),
            blkio_device_write_iops: throttle_settings(&h.blkio_device_write_iops, "Rate"),
            blkio_weight_device: throttle_settings(&h.blkio_weight_device, "Weight"),
        },
        ulimits: h
            .ulimits
            .into_iter()
            .map(|u| UlimitSetting {
                name: u.name,
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
        masked_paths: h.masked_paths,
        readonly_paths: h.readonly_paths,
        init: h.init,
        mounts: h.mounts.unwrap_or_default(),
        volumes_from: h.volumes_from.unwrap_or_default(),
        devices: h
            .devices
            .iter()
            .map(|d| {
                let field = |k: &str| {
                    d.get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                estiba_container::model::DeviceMapping {
                    path_on_host: field("PathOnHost"),
                    path_in_container: field("PathInContainer"),
                    cgroup_permissions: field("CgroupPermissions"),
                }
            })
            .collect(),
        device_cgroup_rules: h.device_cgroup_rules.unwrap_or_default(),
        cgroup_parent: h.cgroup_parent,
        device_requests: h.device_requests.unwrap_or_default(),
    };
    CreateRequest { name, config, host }
}

/// `[{"Path": ..., "Rate"|"Weight": n}]` of the API's per-device block I/O settings.
fn throttle_settings(list: &[serde_json::Value], value_key: &str) -> Vec<ThrottleSetting> {
    list.iter()
        .map(|t| ThrottleSetting {
            path: t
                .get("Path")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
            value: t
                .get(value_key)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
        })
        .collect()
}

/// The API shape back, for inspect.
fn throttle_json(list: &[ThrottleSetting], value_key: &str) -> Vec<serde_json::Value> {
    list.iter()
        .map(|t| serde_json::json!({"Path": t.path, value_key: t.value}))
        .collect()
}

fn none_if_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// `Config` as inspect shows it.
pub(super) fn api_config(c: &ContainerConfig) -> ApiConfig {
    ApiConfig {
        hostname: c.hostname.clone(),
        domainname: c.domainname.clone(),
        user: c.user.clone(),
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: map_of(&c.exposed_ports),
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: none_if_empty(&c.env),
        cmd: c.cmd.clone(),
        healthcheck: c.healthcheck.clone(),
        args_escaped: None,
        image: c.image.clone(),
        volumes: map_of(&c.volumes),
        working_dir: c.working_dir.clone(),
        entrypoint: c.entrypoint.clone(),
        network_disabled: None,
        mac_address: None,
        on_build: None,
        labels: c.labels.clone(),
        stop_signal: c.stop_signal.clone(),
        stop_timeout: c.stop_timeout_s,
        shell: None,
    }
}

/// `HostConfig` as inspect shows it.
pub(super) fn api_host_config(h: &HostOptions) -> HostConfig {
    let l = &h.limits;
    let (masked, readonly) = if h.privileged {
        (None, None)
    } else {
        (
            Some(h.masked_paths.clone().unwrap_or_else(|| {
                estiba_oci::DEFAULT_MASKED_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })),
            Some(h.readonly_paths.clone().unwrap_or_else(|| {
                estiba_oci::DEFAULT_READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })),
        )
    };
    HostConfig {
        binds: none_if_empty(&h.binds),
        log_config: LogConfig {
            kind: h.log_driver.clone(),
            config: h.log_options.clone(),
        },
        network_mode: h.network_mode.clone(),
        port_bindings: crate::api::networks::api_port_bindings(h),
        publish_all_ports: h.publish_all_ports,
        links: none_if_empty(&h.links),
        restart_policy: ApiRestartPolicy {
            name: if h.restart_policy.name.is_empty() {
                "no".to_string()
            } else {
                h.restart_policy.name.clone()
            },
            maximum_retry_count: h.restart_policy.maximum_retry_count,
        },
        auto_remove: h.auto_remove,
        console_size: h.console_size,
        cap_add: none_if_empty(&h.cap_add),
        cap_drop: none_if_empty(&h.cap_drop),
        cgroupns_mode: h.cgroupns_mode.clone(),
        dns: h.dns.clone(),
        dns_options: h.dns_options.clone(),
        dns_search: h.dns_search.clone(),
        extra_hosts: none_if_empty(&h.extra_hosts),
        group_add: none_if_empty(&h.group_add),
        ipc_mode: h.ipc_mode.clone(),
        oom_score_adj: h.oom_score_adj,
        pid_mode: h.pid_mode.clone(),
        privileged: h.privileged,
        readonly_rootfs: h.read_only,
        security_opt: none_if_empty(&h.security_opt),
        tmpfs: (!h.tmpfs.is_empty()).then(|| h.tmpfs.clone()),
        uts_mode: h.uts_mode.clone(),
        shm_size: h.shm_size_bytes,
        sysctls: (!h.sysctls.is_empty()).then(|| h.sysctls.clone()),
        runtime: h.runtime.clone(),
        memory: l.memory_bytes,
        memory_swap: l.memory_swap_bytes,
        memory_reservation: l.memory_reservation_bytes,
        memory_swappiness: l.memory_swappiness,
        oom_kill_disable: Some(l.oom_kill_disable.unwrap_or(false)),
        nano_cpus: l.nano_cpus,
        cpu_shares: l.cpu_shares,
        cpu_period: l.cpu_period,
        cpu_quota: l.cpu_quota,
        cpuset_cpus: l.cpuset_cpus.clone(),
        cpuset_mems: l.cpuset_mems.clone(),
        pids_limit: l.pids_limit,
        blkio_weight: l.blkio_weight,
        blkio_device_read_bps: throttle_json(&l.blkio_device_read_bps, "Rate"),
        blkio_device_write_bps: throttle_json(&l.blkio_device_write_bps, "Rate"),
        blkio_device_read_iops: throttle_json(&l.blkio_device_read_iops, "Rate"),
        blkio_device_write_iops: throttle_json(&l.blkio_device_write_iops, "Rate"),
        blkio_weight_device: throttle_json(&l.blkio_weight_device, "Weight"),
        ulimits: h
            .ulimits
            .iter()
            .map(|u| Ulimit {
                name: u.name.clone(),
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
        masked_paths: masked,
        readonly_paths: readonly,
        init: h.init,
        mounts: (!h.mounts.is_empty()).then(|| h.mounts.clone()),
        volumes_from: none_if_empty(&h.volumes_from),
        devices: h
            .devices
            .iter()
            .map(|d| {
                serde_json::json!({
                    "PathOnHost": d.path_on_host,
                    "PathInContainer": d.path_in_container,
                    "CgroupPermissions": d.cgroup_permissions,
                })
            })
            .collect(),
        device_cgroup_rules: none_if_empty(&h.device_cgroup_rules),
        cgroup_parent: h.cgroup_parent.clone(),
        device_requests: (!h.device_requests.is_empty()).then(|| h.device_requests.clone()),
        ..Default::default()
    }
}

fn or_zero(t: &str) -> String {
    if t.is_empty() {
        ZERO_TIME.to_string()
    } else {
        t.to_string()
    }
}

/// `GET /containers/{id}/json`.
pub(super) fn inspect(
    svc: &ContainerService,
    r: &ContainerRecord,
    size: bool,
) -> ContainerInspectResponse {
    let s = &r.state;
    let (resolv, hostname, hosts) = svc.container_files(&r.id);
    let started = s.has_been_started;
    let mut graph = BTreeMap::new();
    if let Some(d) = svc.graph_dirs(r) {
        let lower: Vec<String> = d.lower.iter().map(|p| p.display().to_string()).collect();
        if !lower.is_empty() {
            graph.insert("LowerDir".to_string(), lower.join(":"));
        }
        if let Some(m) = d.merged {
            graph.insert("MergedDir".to_string(), m.display().to_string());
        }
        graph.insert("UpperDir".to_string(), d.upper.display().to_string());
        if let Some(w) = d.work {
            graph.insert("WorkDir".to_string(), w.display().to_string());
        }
    }
    let size_rw = size.then(|| {
        svc.size_rw(r)
            .map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX))
    });
    ContainerInspectResponse {
        id: r.id.clone(),
        created: r.created.clone(),
        path: r.path.clone(),
        args: r.args.clone(),
        state: ApiState {
            status: s.status.as_str().to_string(),
            // Docker counts a restarting container as running.
            running: s.status.is_running() || s.status == estiba_container::Status::Restarting,
            paused: s.status == estiba_container::Status::Paused,
            restarting: s.status == estiba_container::Status::Restarting,
            oom_killed: s.oom_killed,
            dead: s.status == estiba_container::Status::Dead,
            pid: i64::from(s.pid),
            exit_code: s.exit_code,
            error: s.error.clone(),
            started_at: or_zero(&s.started_at),
            finished_at: or_zero(&s.finished_at),
            health: s
                .health
                .as_ref()
                .map(|h| estiba_api::container::ContainerHealth {
                    status: h.status.clone(),
                    failing_streak: h.failing_streak,
                    log: h
                        .log
                        .iter()
                        .map(|l| estiba_api::container::ContainerHealthResult {
                            start: l.start.clone(),
                            end: l.end.clone(),
                            exit_code: l.exit_code,
                            output: l.output.clone(),
                        })
                        .collect(),
                }),
        },
        image: r.image_id.clone(),
        resolv_conf_path: if started {
            resolv.display().to_string()
        } else {
            String::new()
        },
        hostname_path: if started {
            hostname.display().to_string()
        } else {
            String::new()
        },
        hosts_path: if started {
            hosts.display().to_string()
        } else {
            String::new()
        },
        log_path: if started {
            svc.log_path(&r.id).display().to_string()
        } else {
            String::new()
        },
        name: format!("/{}", r.name),
        restart_count: s.restart_count,
        driver: r.driver.clone(),
        platform: "linux".to_string(),
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids: Some(svc.exec_ids(&r.id)).filter(|ids| !ids.is_empty()),
        host_config: api_host_config(&r.host),
        graph_driver: ContainerGraphDriver {
            data: graph,
            name: r.driver.clone(),
        },
        size_rw,
        size_root_fs: size.then(|| {
            svc.size_root_fs(r)
                .map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX))
        }),
        mounts: r
            .mount_points
            .iter()
            .map(crate::api::volumes::mount_json)
            .collect(),
        config: api_config(&r.config),
        network_settings: crate::api::networks::container_settings(svc.networks(), r),
    }
}

/// One row of `GET /containers/json`.
pub(super) fn summary(s: &Summary, now: chrono::DateTime<chrono::Utc>) -> ContainerSummary {
    let r = &s.record;
    let network = if r.host.network_mode == "default" {
        "bridge".to_string()
    } else {
        r.host.network_mode.clone()
    };
    ContainerSummary {
        id: r.id.clone(),
        names: vec![format!("/{}", r.name)],
        image: r.config.image.clone(),
        image_id: r.image_id.clone(),
        command: r.command(),
        created: r.created_nano.div_euclid(1_000_000_000),
        ports: Vec::new(),
        size_rw: s
            .size_rw_bytes
            .map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
        size_root_fs: s
            .size_root_fs_bytes
            .map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
        labels: r.config.labels.clone(),
        state: r.state.status.as_str().to_string(),
        status: estiba_container::status_string(&r.state, now),
        host_config: SummaryHostConfig {
            network_mode: network.clone(),
        },
        network_settings: serde_json::json!({ "Networks": {} }),
        mounts: r
            .mount_points
            .iter()
            .map(crate::api::volumes::mount_json)
            .collect(),
    }
}
