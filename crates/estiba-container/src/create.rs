//! `docker create`: merge the user's config with the image's, pick a name and an ID, prepare
//! the writable layer, and write the record.

use std::collections::BTreeMap;
use std::sync::Arc;

use estiba_oci::{ContainerOptions, ImageDefaults};

use crate::error::{internal, ContainerError};
use crate::model::{ContainerRecord, State, Status};
use crate::names;
use crate::service::{find, Container, ContainerService, CreateRequest, MAX_CONTAINERS};

/// Docker's default `/dev/shm` size, stored in HostConfig.ShmSize when none is given.
const DEFAULT_SHM_SIZE_BYTES: i64 = 64 * 1024 * 1024;
/// Generated names tried before giving up (Docker retries with a digit appended).
const NAME_ATTEMPTS: u32 = 10;

fn strings(v: Option<&serde_json::Value>) -> Option<Vec<String>> {
    v.and_then(|v| v.as_array()).map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    })
}

fn string(v: Option<&serde_json::Value>) -> String {
    v.and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

fn keys(v: Option<&serde_json::Value>) -> Vec<String> {
    v.and_then(|v| v.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The runtime defaults of an image config blob (`config` inside it).
pub(crate) fn image_defaults(config: &serde_json::Value) -> (ImageDefaults, ImageExtras) {
    let c = config.get("config");
    let get = |k: &str| c.and_then(|c| c.get(k));
    let defaults = ImageDefaults {
        env: strings(get("Env")).unwrap_or_default(),
        entrypoint: strings(get("Entrypoint")),
        cmd: strings(get("Cmd")),
        working_dir: string(get("WorkingDir")),
        user: string(get("User")),
        stop_signal: Some(string(get("StopSignal"))).filter(|s| !s.is_empty()),
        volumes: keys(get("Volumes")),
    };
    let labels = get("Labels")
        .and_then(|l| l.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let extras = ImageExtras {
        labels,
        exposed_ports: keys(get("ExposedPorts")),
        healthcheck: get("Healthcheck").filter(|h| !h.is_null()).cloned(),
    };
    (defaults, extras)
}

/// Image config fields that are not spec inputs.
pub(crate) struct ImageExtras {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) exposed_ports: Vec<String>,
    pub(crate) healthcheck: Option<serde_json::Value>,
}

fn validate_restart_policy(req: &CreateRequest) -> Result<(), ContainerError> {
    let p = &req.host.restart_policy;
    check_restart_policy(p)?;
    if req.host.auto_remove && !matches!(p.name.as_str(), "" | "no") {
        return Err(ContainerError::InvalidParameter(
            "can't create 'AutoRemove' container with restart policy".to_string(),
        ));
    }
    Ok(())
}

/// A restart policy's name and retry count, with Docker's errors (also used by `update`).
pub(crate) fn check_restart_policy(p: &crate::model::RestartPolicy) -> Result<(), ContainerError> {
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if p.maximum_retry_count != 0 {
                return Err(ContainerError::InvalidParameter(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                        .to_string(),
                ));
            }
        }
        "on-failure" => {
            if p.maximum_retry_count < 0 {
                return Err(ContainerError::InvalidParameter(
                    "invalid restart policy: maximum retry count cannot be negative".to_string(),
                ));
            }
        }
        other => {
            return Err(ContainerError::InvalidParameter(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )))
        }
    }
    Ok(())
}

impl ContainerService {
    /// Creates a container; returns its ID and Docker's warnings.
    pub fn create(
        self: &Arc<Self>,
        mut req: CreateRequest,
    ) -> Result<(String, Vec<String>), ContainerError> {
        // `docker run` starts it within milliseconds: let the cgroup grace period run from now.
        crate::cgroupwarm::warm();
        if req.config.image.is_empty() {
            return Err(ContainerError::InvalidParameter(
                "config cannot be empty in order to create a container".to_string(),
            ));
        }
        if !req.name.is_empty() {
            req.name = names::validate_name(&req.name)
                .ok_or_else(|| {
                    ContainerError::InvalidParameter(format!(
                        "Invalid container name ({}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                        req.name
                    ))
                })?
                .to_string();
        }
        validate_restart_policy(&req)?;
        crate::security::validate_security_opts(&req.host.security_opt)?;
        if req.host.runtime.is_empty() {
            req.host.runtime = self.config.default_runtime.clone();
        }
        if !self.config.runtimes.contains_key(&req.host.runtime) {
            return Err(ContainerError::InvalidParameter(format!(
                "unknown or invalid runtime name: {}",
                req.host.runtime
            )));
        }
        if let Some(signal) = &req.config.stop_signal {
            crate::lifecycle::parse_signal(signal)?;
        }
        // dockerd refuses a relative working dir at create, before anything exists.
        let wd = &req.config.working_dir;
        if !wd.is_empty() && !wd.starts_with('/') {
            return Err(ContainerError::InvalidParameter(format!(
                "the working directory '{wd}' is invalid, it needs to be an absolute path"
            )));
        }
        let limits = &req.host.limits;
        // dockerd: any non-zero limit under 6MB, negative ones included.
        if limits.memory_bytes != 0 && limits.memory_bytes < 6 * 1024 * 1024 {
            return Err(ContainerError::InvalidParameter(
                "Minimum memory limit allowed is 6MB".to_string(),
            ));
        }
        if limits.nano_cpus < 0 {
            return Err(ContainerError::InvalidParameter(
                "invalid value for NanoCPUs: must be a positive integer".to_string(),
            ));
        }
        // The API takes 0 and negative values for "no PIDs limit" (moby's
        // adaptContainerSettings): none is written at all, so a host without the controller
        // runs the container.
        if req.host.limits.pids_limit.is_some_and(|n| n <= 0) {
            req.host.limits.pids_limit = None;
        }
        crate::health::validate(req.config.healthcheck.as_ref())?;
        for d in &mut req.host.devices {
            if d.cgroup_permissions.is_empty() {
                d.cgroup_permissions = "rwm".to_owned();
            }
            if !estiba_oci::valid_device_mode(&d.cgroup_permissions) {
                return Err(ContainerError::InvalidParameter(format!(
                    "{} invalid device mode: {}",
                    d.path_on_host, d.cgroup_permissions
                )));
            }
        }
        let parent = &req.host.cgroup_parent;
        if parent.split('/').any(|c| c == "..") || parent.contains('\0') {
            return Err(ContainerError::InvalidParameter(format!(
                "invalid cgroup parent: {parent}"
            )));
        }
        for rule in &req.host.device_cgroup_rules {
            estiba_oci::parse_device_cgroup_rule(rule)
                .map_err(|e| ContainerError::InvalidParameter(e.to_string()))?;
        }
        let warnings = crate::sysinfo::adapt_limits(
            &mut req.host.limits,
            crate::sysinfo::CgroupSupport::host(),
        )?;

        let image = self.images.inspect(&req.config.image)?;
        let image_id = image.summary.id.clone();
        let (defaults, extras) = image_defaults(&image.config);
        let parent = top_layer_key(&image.diff_ids)?;

        let opts = ContainerOptions {
            cmd: req.config.cmd.clone(),
            entrypoint: req.config.entrypoint.clone(),
            ..Default::default()
        };
        let merged = estiba_oci::merge_entrypoint_cmd(&defaults, &opts)
            .map_err(|e| ContainerError::InvalidParameter(e.to_string()))?;

        let mut config = req.config.clone();
        config.env = estiba_oci::merge_config_env(&defaults.env, &req.config.env);
        config.cmd = merged.cmd.clone();
        config.entrypoint = merged.entrypoint.clone();
        if config.working_dir.is_empty() {
            config.working_dir = defaults.working_dir.clone();
        }
        if config.user.is_empty() {
            config.user = defaults.user.clone();
        }
        let mut labels = extras.labels;
        labels.extend(std::mem::take(&mut config.labels));
        config.labels = labels;
        if config.stop_signal.is_none() {
            config.stop_signal = defaults.stop_signal.clone();
        }
        for v in &defaults.volumes {
            if !config.volumes.contains(v) {
                config.volumes.push(v.clone());
            }
        }
        for p in &extras.exposed_ports {
            if !config.exposed_ports.contains(p) {
                config.exposed_ports.push(p.clone());
            }
        }
        config.healthcheck = crate::health::merge(config.healthcheck.take(), extras.healthcheck);

        let mut host = req.host.clone();
        if host.shm_size_bytes == 0 {
            host.shm_size_bytes = DEFAULT_SHM_SIZE_BYTES;
        }
        if host.network_mode.is_empty() {
            host.network_mode = "default".to_string();
        }
        self.net_check(&host)?;
        if host.ipc_mode.is_empty() {
            host.ipc_mode = "private".to_string();
        }
        if host.cgroupns_mode.is_empty() {
            host.cgroupns_mode = if cgroup_v2() { "private" } else { "host" }.to_string();
        }
        if host.log_driver.is_empty() {
            host.log_driver = "json-file".to_string();
        }
        if host.limits.memory_bytes > 0 && host.limits.memory_swap_bytes == 0 {
            host.limits.memory_swap_bytes = host.limits.memory_bytes.saturating_mul(2);
        }

        let mount_plan = self.plan_mounts(&config, &host)?;

        let now = chrono::Utc::now();
        let mut index = self.write_index();
        if index.len() >= MAX_CONTAINERS {
            return Err(ContainerError::Conflict(format!(
                "too many containers (at most {MAX_CONTAINERS})"
            )));
        }
        let name = if req.name.is_empty() {
            let mut attempt = 0;
            loop {
                let n = names::generate_name(attempt);
                if find(&index, &n).map(|c| c.snapshot().name) != Some(n.clone()) {
                    break n;
                }
                attempt += 1;
                if attempt >= NAME_ATTEMPTS {
                    return Err(internal("could not generate a unique container name"));
                }
            }
        } else {
            if let Some(c) = index.values().find(|c| c.snapshot().name == req.name) {
                return Err(ContainerError::Conflict(format!(
                    "Conflict. The container name \"/{}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    req.name, c.id
                )));
            }
            req.name.clone()
        };
        let id = loop {
            let id = names::generate_id();
            let short = names::short_id(&id);
            if !index.keys().any(|k| k.starts_with(short)) {
                break id;
            }
        };
        if config.hostname.is_empty() {
            config.hostname = names::short_id(&id).to_string();
        }

        let mount_points = self.create_mounts(&id, mount_plan)?;
        let snapshot_key = format!("c-{id}");
        let record = ContainerRecord {
            id: id.clone(),
            name,
            created: now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            created_nano: now.timestamp_nanos_opt().unwrap_or(0),
            path: merged.path.clone(),
            args: merged.args.clone(),
            image_id,
            config,
            host,
            state: State {
                status: Status::Created,
                ..Default::default()
            },
            snapshot_key: snapshot_key.clone(),
            driver: self.snapshots.driver_name().to_string(),
            mount_points,
        };
        // Record first: a crash after it leaves a container without files, which start
        // recreates; the other order would leave files nothing names.
        if let Err(e) = self.persist(&record) {
            self.release_mounts(&record, true);
            return Err(e);
        }
        let dir = self.container_dir(&id);
        let prepared = std::fs::create_dir_all(&dir)
            .map_err(|e| internal(format!("create {}: {e}", dir.display())))
            .and_then(|()| {
                self.snapshots
                    .prepare(&snapshot_key, parent.as_deref())
                    .map_err(internal)
            });
        if let Err(e) = prepared {
            if let Ok(mut tx) = self.store.write() {
                let _ = tx.remove(crate::service::CONTAINERS, &id);
                let _ = tx.commit();
            }
            crate::service::remove_dir(&dir);
            self.release_mounts(&record, true);
            return Err(e);
        }
        index.insert(id.clone(), Container::new(record.clone()));
        drop(index);
        self.publish(&record, "create", &[]);
        Ok((id, warnings))
    }
}

/// The snapshot key of the image's top layer: the hex of its chain ID.
pub(crate) fn top_layer_key(diff_ids: &[String]) -> Result<Option<String>, ContainerError> {
    use estiba_image::digest::{chain_ids, Digest};
    let diffs = diff_ids
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    Ok(chain_ids(&diffs).last().map(|d| d.hex().to_string()))
}

/// Whether the host runs the unified cgroup hierarchy only.
pub(crate) fn cgroup_v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}
