//! Starting a container: mount its rootfs, write the bundle (`config.json` from estiba-oci, and
//! the generated `/etc` files), spawn its shim (which runs the runtime's `create`), connect the
//! attaches that were waiting, then `start` — containerd's create/attach/start order, so no
//! output is lost to an attach that came first.

use std::path::Path;
use std::sync::Arc;

use estiba_oci::{
    CgroupnsMode, ContainerOptions, IpcMode, NetworkFiles, NetworkMode, PidMode, Resources,
    SpecInput, TmpfsMount, Ulimit, UtsMode,
};
use estiba_shim::{ShimArgs, ShimClient, ShimError};

use crate::error::{internal, ContainerError};
use crate::files;
use crate::model::{ContainerRecord, HostOptions, Status, ThrottleSetting};
use crate::service::{lock, remove_dir, Container, ContainerService, PendingAttach, StartOutcome};

/// Stack of a monitor thread: it only waits on a socket and updates a record.
const MONITOR_STACK_BYTES: usize = 256 * 1024;

/// A failed start: the error and the exit code Docker records for it.
struct StartFailure(ContainerError, i64);

fn fail(e: ContainerError) -> StartFailure {
    StartFailure(e, 128)
}

/// Docker's wrapping of a runtime's create error, with its status and exit code: 127 for a
/// missing executable, 126 for one that cannot be run (the docker CLI turns these into its own
/// exit code).
fn runtime_error(message: &str) -> StartFailure {
    let text = format!(
        "failed to create task for container: OCI runtime create failed: {message}: unknown"
    );
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
    {
        StartFailure(ContainerError::InvalidParameter(text), 127)
    } else if message.contains("permission denied") || message.contains("is a directory") {
        StartFailure(ContainerError::InvalidParameter(text), 126)
    } else {
        StartFailure(ContainerError::Internal(text), 128)
    }
}

fn no_new_privileges(security_opt: &[String]) -> bool {
    security_opt.iter().any(|o| {
        matches!(
            o.as_str(),
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"
        )
    })
}

/// The spec options of a container's host settings.
pub(crate) fn container_options(
    record: &ContainerRecord,
    host: &HostOptions,
) -> Result<ContainerOptions, ContainerError> {
    if let Some(request) = host.device_requests.first() {
        return Err(no_device_driver(request));
    }
    let network = match host.network_mode.as_str() {
        "host" => NetworkMode::Host,
        "none" => NetworkMode::None,
        _ => NetworkMode::Private,
    };
    let ipc = match host.ipc_mode.as_str() {
        "host" => IpcMode::Host,
        "none" => IpcMode::None,
        _ => IpcMode::Private,
    };
    let pid = if host.pid_mode == "host" {
        PidMode::Host
    } else {
        PidMode::Private
    };
    let uts = if host.uts_mode == "host" {
        UtsMode::Host
    } else {
        UtsMode::Private
    };
    let cgroupns = if host.cgroupns_mode == "private" {
        CgroupnsMode::Private
    } else {
        CgroupnsMode::Host
    };
    let l = &host.limits;
    let c = &record.config;
    Ok(ContainerOptions {
        cmd: None,
        entrypoint: None,
        env: c.env.clone(),
        user: c.user.clone(),
        hostname: c.hostname.clone(),
        domainname: c.domainname.clone(),
        tty: c.tty,
        open_stdin: c.open_stdin,
        working_dir: c.working_dir.clone(),
        cap_add: host.cap_add.clone(),
        cap_drop: host.cap_drop.clone(),
        privileged: host.privileged,
        read_only: host.read_only,
        tmpfs: host
            .tmpfs
            .iter()
            .map(|(d, o)| TmpfsMount {
                destination: d.clone(),
                options: o.clone(),
            })
            .collect(),
        shm_size_bytes: (host.shm_size_bytes > 0).then_some(host.shm_size_bytes),
        ulimits: host
            .ulimits
            .iter()
            .map(|u| Ulimit {
                name: u.name.clone(),
                soft: u.soft,
                hard: u.hard,
            })
            .collect(),
        no_new_privileges: no_new_privileges(&host.security_opt),
        init: host.init.unwrap_or(false),
        group_add: host.group_add.clone(),
        masked_paths: host.masked_paths.clone(),
        readonly_paths: host.readonly_paths.clone(),
        sysctls: host.sysctls.clone(),
        resources: Resources {
            memory_bytes: l.memory_bytes,
            memory_swap_bytes: l.memory_swap_bytes,
            memory_reservation_bytes: l.memory_reservation_bytes,
            memory_swappiness: l.memory_swappiness,
            oom_kill_disable: l.oom_kill_disable.unwrap_or(false),
            nano_cpus: l.nano_cpus,
            cpu_shares: l.cpu_shares,
            cpu_quota: l.cpu_quota,
            cpu_period: l.cpu_period,
            cpuset_cpus: l.cpuset_cpus.clone(),
            cpuset_mems: l.cpuset_mems.clone(),
            pids_limit: l.pids_limit,
            blkio_weight: l.blkio_weight,
            throttle_read_bps: throttles(&l.blkio_device_read_bps)?,
            throttle_write_bps: throttles(&l.blkio_device_write_bps)?,
            throttle_read_iops: throttles(&l.blkio_device_read_iops)?,
            throttle_write_iops: throttles(&l.blkio_device_write_iops)?,
            weight_device: throttles(&l.blkio_weight_device)?
                .into_iter()
                .map(|(major, minor, w)| (major, minor, u16::try_from(w).unwrap_or(u16::MAX)))
                .collect(),
        },
        // Filled at start by `start_mounts`, which needs the rootfs and the volume service.
        binds: Vec::new(),
        device_cgroup_rules: host.device_cgroup_rules.clone(),
        devices: host
            .devices
            .iter()
            .map(|d| {
                estiba_oci::devices_for_mapping(
                    &d.path_on_host,
                    &d.path_in_container,
                    &d.cgroup_permissions,
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ContainerError::InvalidParameter(e.to_string()))?
            .into_iter()
            .flatten()
            .collect(),
        network,
        ipc,
        pid,
        uts,
        cgroupns,
        oom_score_adj: i32::try_from(host.oom_score_adj).unwrap_or(0),
        console_size: (host.console_size != [0, 0])
            .then_some((host.console_size[0], host.console_size[1])),
    })
}

/// dockerd's refusal of a device request (`--gpus`) that no device driver serves: estiba has
/// none (dockerd needs the NVIDIA container toolkit for them).
fn no_device_driver(request: &serde_json::Value) -> ContainerError {
    let driver = request
        .get("Driver")
        .and_then(|d| d.as_str())
        .unwrap_or_default();
    let capabilities: Vec<Vec<String>> = request
        .get("Capabilities")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    // Go's %v of a [][]string: [[gpu] [compute utility]].
    let shown: Vec<String> = capabilities
        .iter()
        .map(|set| format!("[{}]", set.join(" ")))
        .collect();
    ContainerError::InvalidParameter(format!(
        "could not select device driver \"{driver}\" with capabilities: [{}]",
        shown.join(" ")
    ))
}

/// Per-device block I/O settings with their devices' numbers.
fn throttles(list: &[ThrottleSetting]) -> Result<Vec<(i64, i64, u64)>, ContainerError> {
    list.iter()
        .map(|t| {
            let (major, minor) = estiba_oci::device_numbers(&t.path)
                .map_err(|e| ContainerError::InvalidParameter(e.to_string()))?;
            Ok((major, minor, t.value))
        })
        .collect()
}

/// Docker's `--log-opt max-size` units: k, m, g (binary multiples).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1024),
        'm' => (&s[..s.len() - 1], 1024 * 1024),
        'g' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .map(|n| n.saturating_mul(mult))
}

impl ContainerService {
    /// `docker start`.
    pub fn start(self: &Arc<Self>, name: &str) -> Result<StartOutcome, ContainerError> {
        let c = self.get(name)?;
        let guard = c.op_lock();
        let record = c.snapshot();
        match record.state.status {
            Status::Running | Status::Paused | Status::Restarting => {
                return Ok(StartOutcome::AlreadyRunning)
            }
            Status::Removing | Status::Dead => {
                return Err(ContainerError::Conflict(
                    "container is marked for removal and cannot be started".to_string(),
                ))
            }
            Status::Created | Status::Exited => {}
        }
        self.reset_restart(&c);
        let record = c.snapshot();
        let result = self.start_locked(&c, record);
        drop(guard);
        if result.is_err() && c.snapshot().host.auto_remove {
            // Docker removes an AutoRemove container whose start failed.
            if let Err(e) = self.remove_container(&c) {
                tracing::warn!("auto-remove {}: {e}", c.id);
            }
        }
        result.map(|()| StartOutcome::Started)
    }

    /// Starts a container whose op lock the caller holds.
    pub(crate) fn start_locked(
        self: &Arc<Self>,
        c: &Arc<Container>,
        record: ContainerRecord,
    ) -> Result<(), ContainerError> {
        crate::cgroupwarm::warm();
        let dir = self.container_dir(&record.id);
        let rootfs = dir.join("rootfs");
        let state_dir = self.state_dir(&record.id);
        // Attaches made before the start (the op lock keeps new ones out until it ends): the
        // shim starts the process at once and holds its output until they are connected.
        let pending: Vec<_> = lock(&c.pending_attaches).drain(..).collect();
        let started = self
            .create_task(&record, &dir, &rootfs, &state_dir, pending.len())
            .and_then(|client| self.run_task(&record, client, pending));
        match started {
            Ok(pid) => {
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                let record = self.update(
                    c,
                    |r| {
                        r.state.status = Status::Running;
                        r.state.pid = pid;
                        r.state.started_at = now;
                        r.state.exit_code = 0;
                        r.state.error.clear();
                        r.state.oom_killed = false;
                        r.state.has_been_started = true;
                        r.state.has_been_manually_stopped = false;
                    },
                    false,
                );
                self.publish(&record, "start", &[]);
                self.spawn_monitor(Arc::clone(c));
                self.start_health_monitor(c);
                Ok(())
            }
            Err(StartFailure(e, exit_code)) => {
                self.net_teardown(&record.id);
                let _ = self.snapshots.unmount(&rootfs);
                remove_dir(&state_dir);
                lock(&c.pending_attaches).clear();
                let message = e.to_string();
                self.update(
                    c,
                    |r| {
                        r.state.error = message;
                        r.state.exit_code = exit_code;
                    },
                    false,
                );
                Err(e)
            }
        }
    }

    /// Mounts the rootfs, writes the bundle and spawns the shim, which creates and starts the
    /// container (runtime `run --detach`) and holds its output for `attaches` attaches.
    fn create_task(
        &self,
        record: &ContainerRecord,
        dir: &Path,
        rootfs: &Path,
        state_dir: &Path,
        attaches: usize,
    ) -> Result<ShimClient, StartFailure> {
        std::fs::create_dir_all(rootfs)
            .map_err(|e| fail(internal(format!("create {}: {e}", rootfs.display()))))?;
        // A crash may have left it mounted; mounting twice would stack.
        let _ = self.snapshots.unmount(rootfs);
        self.snapshots
            .mount(&record.snapshot_key, rootfs)
            .map_err(|e| fail(internal(e)))?;
        self.net_setup(record).map_err(fail)?;
        let spec = self.spec(record, dir, rootfs)?;
        let bundle_config = dir.join("config.json");
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| fail(internal(e)))?;
        write_file(&bundle_config, &json).map_err(fail)?;

        let runtime = self
            .config
            .runtimes
            .get(&record.host.runtime)
            .ok_or_else(|| {
                fail(ContainerError::InvalidParameter(format!(
                    "unknown or invalid runtime name: {}",
                    record.host.runtime
                )))
            })?;
        if state_dir.exists() {
            // A shim of an earlier run may still wait there (an AutoRemove exit whose removal
            // failed): let it go before its state is replaced.
            self.release_task(record);
        }
        remove_dir(state_dir);
        std::fs::create_dir_all(state_dir)
            .map_err(|e| fail(internal(format!("create {}: {e}", state_dir.display()))))?;
        let runtime_root = self
            .config
            .exec_root
            .join("runtime")
            .join(&record.host.runtime);
        let args = ShimArgs {
            id: record.id.clone(),
            bundle: dir.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            runtime: runtime.path.clone(),
            runtime_root: Some(runtime_root),
            runtime_args: runtime.args.clone(),
            log_path: self.log_path(&record.id),
            tty: record.config.tty,
            stdin: record.config.open_stdin,
            log_max_size_bytes: record
                .host
                .log_options
                .get("max-size")
                .and_then(|s| parse_size(s)),
            log_max_files: record
                .host
                .log_options
                .get("max-file")
                .and_then(|s| s.parse().ok()),
            start: true,
            hold_output: u32::try_from(attaches)
                .unwrap_or(u32::MAX)
                .min(estiba_shim::MAX_HOLD_OUTPUT),
        };
        match estiba_shim::spawn_shim(&self.config.shim_binary, &args) {
            Ok(_pid) => ShimClient::for_state_dir(state_dir).map_err(|e| fail(internal(e))),
            Err(ShimError::Failed(message)) => Err(runtime_error(&message)),
            Err(e) => Err(fail(internal(format!("start shim: {e}")))),
        }
    }

    /// Connects the attaches made before the start (the shim holds the output for them);
    /// returns the running process's pid.
    fn run_task(
        &self,
        record: &ContainerRecord,
        client: ShimClient,
        pending: Vec<PendingAttach>,
    ) -> Result<u32, StartFailure> {
        for (options, tx) in pending {
            match client.attach(options) {
                Ok(stream) => {
                    let _ = tx.send(stream);
                }
                Err(e) => tracing::warn!("attach to {}: {e}", record.id),
            }
        }
        match client.state() {
            Ok(state) => Ok(state.pid),
            Err(e) => {
                // The shim cannot tell us the process: kill whatever runs and let the shim go.
                let _ = client.kill(9, true);
                let _ = client.wait();
                let _ = client.shutdown();
                Err(match e {
                    ShimError::Failed(m) => runtime_error(&m),
                    other => fail(internal(other)),
                })
            }
        }
    }

    /// The OCI spec of a container whose rootfs is mounted.
    fn spec(
        &self,
        record: &ContainerRecord,
        dir: &Path,
        rootfs: &Path,
    ) -> Result<estiba_oci::oci_spec::runtime::Spec, StartFailure> {
        let mut options = container_options(record, &record.host).map_err(fail)?;
        let (binds, tmpfs) = self.start_mounts(record, rootfs).map_err(fail)?;
        options.binds = binds;
        options.tmpfs.extend(tmpfs);
        options.network = self.net_options(record, options.network).map_err(fail)?;
        let user = estiba_oci::resolve_user(rootfs, &record.config.user, &record.host.group_add)
            .map_err(|e| StartFailure(ContainerError::InvalidParameter(e.to_string()), 128))?;
        let cwd = if record.config.working_dir.is_empty() {
            "/".to_string()
        } else {
            record.config.working_dir.clone()
        };
        estiba_oci::ensure_working_dir(rootfs, &cwd)
            .map_err(|e| fail(ContainerError::InvalidParameter(e.to_string())))?;
        let env = estiba_oci::process_env(
            &record.config.env,
            &record.config.hostname,
            record.config.tty,
        );
        let (resolv, hostname, hosts) = self.container_files(&record.id);
        let host_network = record.host.network_mode == "host";
        write_file(
            &hostname,
            format!("{}\n", record.config.hostname).as_bytes(),
        )
        .map_err(fail)?;
        let hosts_text = files::hosts(&record.host.extra_hosts) + &self.net_hosts(record);
        write_file(&hosts, hosts_text.as_bytes()).map_err(fail)?;
        let resolv_text = self.net_resolv_conf(record).unwrap_or_else(|| {
            files::resolv_conf(
                &files::host_resolv_conf(),
                host_network,
                &record.host.dns,
                &record.host.dns_search,
                &record.host.dns_options,
            )
        });
        write_file(&resolv, resolv_text.as_bytes()).map_err(fail)?;
        let _ = dir;
        let host_devices = if record.host.privileged {
            estiba_oci::host_devices().map_err(|e| fail(internal(e)))?
        } else {
            Vec::new()
        };
        let seccomp = crate::security::seccomp(&options, &record.host.security_opt, &self.host)
            .map_err(fail)?;
        let input = SpecInput {
            container_id: record.id.clone(),
            rootfs: rootfs.to_path_buf(),
            user,
            args: std::iter::once(record.path.clone())
                .chain(record.args.iter().cloned())
                .collect(),
            env,
            cwd,
            hostname: record.config.hostname.clone(),
            options,
            network_files: NetworkFiles {
                resolv_conf: Some(resolv),
                hostname: (!host_network).then_some(hostname),
                hosts: Some(hosts),
            },
            cgroups_path: format!("/{}", record.cgroup_rel()),
            init_path: self.config.init_binary.clone(),
            seccomp,
            host_devices,
            host: self.host.clone(),
        };
        estiba_oci::build_spec(&input).map_err(|e| {
            let err = match e {
                estiba_oci::SpecError::Build(m) => internal(m),
                estiba_oci::SpecError::NoInitBinary => ContainerError::InvalidParameter(
                    "--init: no init binary: install Debian's tini package (/usr/bin/tini-static) or put docker-init next to estibad".to_string(),
                ),
                other => ContainerError::InvalidParameter(other.to_string()),
            };
            fail(err)
        })
    }

    fn spawn_monitor(self: &Arc<Self>, c: Arc<Container>) {
        let service = Arc::clone(self);
        let name = format!("monitor-{}", crate::names::short_id(&c.id));
        let spawned = std::thread::Builder::new()
            .name(name)
            .stack_size(MONITOR_STACK_BYTES)
            .spawn(move || service.monitor(c));
        if let Err(e) = spawned {
            tracing::error!("cannot start a monitor thread: {e}");
        }
    }
}

/// Writes a small file atomically (temp + rename), so a reader never sees half of it.
/// Writes a bundle file in place. Nothing reads these files before the start that writes them
/// hands the bundle to the runtime, and a start cut short rewrites them all, so no temporary and
/// rename: that cost a new inode per file and start (each one a bitmap scan on a busy ext4).
pub(crate) fn write_file(path: &Path, data: &[u8]) -> Result<(), ContainerError> {
    std::fs::write(path, data).map_err(|e| internal(format!("write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sizes() {
        let cases = [
            ("10m", Some(10 << 20)),
            ("1k", Some(1024)),
            ("5", Some(5)),
            ("2g", Some(2 << 30)),
            ("x", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_size(s), want, "{s}");
        }
    }

    #[test]
    fn runtime_errors_give_dockers_exit_codes() {
        let cases = [
            (
                "exec: \"nosuchcmd\": executable file not found in $PATH",
                127,
            ),
            ("exec: \"/etc\": permission denied", 126),
            ("something else", 128),
        ];
        for (m, code) in cases {
            let StartFailure(e, got) = runtime_error(m);
            assert_eq!(got, code, "{m}");
            assert!(e.to_string().contains(m));
        }
    }
}
