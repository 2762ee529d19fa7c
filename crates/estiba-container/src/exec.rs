//! `docker exec`: exec instances (created, started, exited), the OCI process spec they run
//! (derived from the container's own, as Docker does), and their start through the shim.
//!
//! Exec instances live in memory only, as in Docker: a daemon restart forgets them.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use estiba_shim::{ExecOptions, ShimClient};
use tokio::sync::watch;

use crate::error::{internal, ContainerError};
use crate::model::{ContainerRecord, Status};
use crate::service::{lock, ContainerService};

/// Most exec instances kept at once (Docker keeps them until the container goes).
pub(crate) const MAX_EXECS: usize = 10_000;

/// `POST /containers/{id}/exec`'s body, in domain form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
    pub detach_keys: String,
}

/// What `GET /exec/{id}/json` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecInfo {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub running: bool,
    /// Set once the process exited (or failed to start: 126).
    pub exit_code: Option<i64>,
    pub pid: u32,
    /// Started once (an exec runs at most once).
    pub started: bool,
}

/// One exec instance; `done` turns true once its exit code is known.
pub(crate) struct ExecEntry {
    info: Mutex<ExecInfo>,
    done: watch::Sender<bool>,
}

/// The exec instances of every container, by exec ID.
#[derive(Default)]
pub(crate) struct ExecTable {
    entries: Mutex<HashMap<String, Arc<ExecEntry>>>,
}

/// A started exec: its stream (stdcopy frames without a TTY, raw with one) and a receiver that
/// turns true once its exit code is recorded, so the caller can hold the stream until then.
pub struct ExecStream {
    pub info: ExecInfo,
    pub stream: UnixStream,
    pub done: watch::Receiver<bool>,
}

fn no_such_exec(id: &str) -> ContainerError {
    ContainerError::PathNotFound(format!("No such exec instance: {id}"))
}

fn not_running(id: &str) -> ContainerError {
    ContainerError::Conflict(format!("Container {id} is not running"))
}

impl ExecTable {
    fn get(&self, id: &str) -> Result<Arc<ExecEntry>, ContainerError> {
        lock(&self.entries)
            .get(id)
            .cloned()
            .ok_or_else(|| no_such_exec(id))
    }
}

impl ContainerService {
    /// `POST /containers/{id}/exec`: registers an exec instance; returns its ID.
    pub fn exec_create(&self, name: &str, config: ExecConfig) -> Result<String, ContainerError> {
        let c = self.get(name)?;
        let record = c.snapshot();
        check_runnable(&record, name)?;
        if config.cmd.is_empty() {
            return Err(ContainerError::InvalidParameter(
                "No exec command specified".into(),
            ));
        }
        // The start follows within milliseconds: let the cgroup grace period run from now.
        crate::cgroupwarm::warm();
        let id = crate::names::generate_id();
        let info = ExecInfo {
            id: id.clone(),
            container_id: record.id.clone(),
            config: config.clone(),
            ..Default::default()
        };
        {
            let mut entries = lock(&self.execs.entries);
            if entries.len() >= MAX_EXECS {
                // Forget the exits of execs that are done before refusing.
                entries.retain(|_, e| lock(&e.info).exit_code.is_none());
                if entries.len() >= MAX_EXECS {
                    return Err(internal("too many exec instances"));
                }
            }
            let (done, _) = watch::channel(false);
            entries.insert(
                id.clone(),
                Arc::new(ExecEntry {
                    info: Mutex::new(info),
                    done,
                }),
            );
        }
        let action = format!("exec_create: {}", config.cmd.join(" "));
        self.publish(&record, &action, &[("execID", &id)]);
        Ok(id)
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<ExecInfo, ContainerError> {
        Ok(lock(&self.execs.get(id)?.info).clone())
    }

    /// The IDs of a container's exec instances that have not exited (inspect's `ExecIDs`:
    /// Docker drops an exec from the container's list when it exits, yet keeps it inspectable).
    pub fn exec_ids(&self, container_id: &str) -> Vec<String> {
        let entries = lock(&self.execs.entries);
        let mut ids: Vec<String> = entries
            .values()
            .filter_map(|e| {
                let info = lock(&e.info);
                (info.container_id == container_id && info.exit_code.is_none())
                    .then(|| info.id.clone())
            })
            .collect();
        ids.sort();
        ids
    }

    /// Forgets the exec instances of a removed container.
    pub fn exec_forget_container(&self, container_id: &str) {
        lock(&self.execs.entries).retain(|_, e| lock(&e.info).container_id != container_id);
    }

    /// `POST /exec/{id}/resize`.
    pub fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ContainerError> {
        let entry = self.execs.get(id)?;
        let info = lock(&entry.info).clone();
        if !info.running {
            return Err(ContainerError::Conflict(format!(
                "Exec {id} is not running"
            )));
        }
        if !info.config.tty {
            return Ok(());
        }
        let client =
            ShimClient::for_state_dir(self.state_dir(&info.container_id)).map_err(internal)?;
        client.exec_resize(id, height, width).map_err(internal)
    }

    /// Drops an exec instance (the health checks' own, once their result is taken).
    pub(crate) fn exec_forget(&self, id: &str) {
        lock(&self.execs.entries).remove(id);
    }

    /// `POST /exec/{id}/start`: runs the process; the caller splices the stream. A runtime
    /// failure records exit code 126 (Docker's) and is returned as the error.
    pub fn exec_start(self: &Arc<Self>, id: &str) -> Result<ExecStream, ContainerError> {
        let entry = self.execs.get(id)?;
        let config = {
            let mut info = lock(&entry.info);
            if info.started {
                return Err(ContainerError::Conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            info.started = true;
            info.config.clone()
        };
        let container_id = lock(&entry.info).container_id.clone();
        let c = self.get(&container_id)?;
        let record = c.snapshot();
        let result = check_runnable(&record, &container_id).and_then(|()| {
            crate::cgroupwarm::warm();
            let state_dir = self.state_dir(&record.id);
            let process = self.exec_process(&record, &config)?;
            let json = serde_json::to_vec(&process).map_err(internal)?;
            // The spec goes to the runtime as an anonymous memory file it opens through this
            // process's /proc entry (kept open until the shim answers): no file to create and
            // remove in the state dir for every exec.
            let (_memfd, process_path) = memfd_with(&json)?;
            let client = ShimClient::for_state_dir(&state_dir).map_err(|_| not_running(&record.id));
            let started = client.and_then(|client| {
                client
                    .exec(ExecOptions {
                        id: id.to_owned(),
                        process: process_path.clone(),
                        tty: config.tty,
                        stdin: config.attach_stdin,
                    })
                    .map_err(|e| match e {
                        estiba_shim::ShimError::Failed(m) if m == "container is not running" => {
                            not_running(&record.id)
                        }
                        estiba_shim::ShimError::Failed(m) => ContainerError::Internal(format!(
                            "OCI runtime exec failed: {m}: unknown"
                        )),
                        other => internal(other),
                    })
                    .map(|(pid, stream)| (client, pid, stream))
            });
            started
        });
        let (client, pid, stream) = match result {
            Ok(started) => started,
            Err(e) => {
                {
                    let mut info = lock(&entry.info);
                    info.exit_code = Some(126);
                }
                entry.done.send_replace(true);
                return Err(e);
            }
        };
        let info = {
            let mut info = lock(&entry.info);
            info.running = true;
            info.pid = pid;
            info.clone()
        };
        let action = format!("exec_start: {}", config.cmd.join(" "));
        self.publish(&record, &action, &[("execID", id)]);
        let done = entry.done.subscribe();
        let service = Arc::clone(self);
        let exec_id = id.to_owned();
        let spawned = std::thread::Builder::new()
            .name("exec-wait".into())
            .spawn(move || {
                let code = client.exec_wait(&exec_id).map(i64::from).unwrap_or(-1);
                {
                    let mut info = lock(&entry.info);
                    info.running = false;
                    info.exit_code = Some(code);
                }
                entry.done.send_replace(true);
                let code = code.to_string();
                service.publish(
                    &record,
                    "exec_die",
                    &[("execID", &exec_id), ("exitCode", &code)],
                );
            });
        if let Err(e) = spawned {
            return Err(internal(format!("exec waiter: {e}")));
        }
        Ok(ExecStream { info, stream, done })
    }

    /// The container's own process spec with the exec's command, env, user, cwd and terminal.
    fn exec_process(
        &self,
        record: &ContainerRecord,
        config: &ExecConfig,
    ) -> Result<serde_json::Value, ContainerError> {
        /// Only the process of a spec: the rest (Docker's seccomp profile is most of its
        /// bytes) is skipped by the parser without being built.
        #[derive(serde::Deserialize)]
        struct ProcessOnly {
            process: Option<serde_json::Value>,
        }
        let dir = self.container_dir(&record.id);
        let bundle = std::fs::read(dir.join("config.json"))
            .map_err(|e| internal(format!("read the container's config.json: {e}")))?;
        let spec: ProcessOnly = serde_json::from_slice(&bundle).map_err(internal)?;
        let mut process = spec
            .process
            .ok_or_else(|| internal("the container's config.json has no process"))?;
        let base_env: Vec<String> = process
            .get("env")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let mut env = estiba_oci::replace_or_append_env(&base_env, &config.env);
        if config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        process["args"] = serde_json::json!(config.cmd);
        process["env"] = serde_json::json!(env);
        process["terminal"] = serde_json::json!(config.tty);
        if !config.working_dir.is_empty() {
            process["cwd"] = serde_json::json!(config.working_dir);
        }
        if !config.user.is_empty() {
            let user = estiba_oci::resolve_user(&dir.join("rootfs"), &config.user, &[])
                .map_err(|e| ContainerError::Internal(e.to_string()))?;
            process["user"] = serde_json::json!({
                "uid": user.uid,
                "gid": user.gid,
                "additionalGids": user.additional_gids,
            });
        }
        if config.privileged {
            let caps = serde_json::json!(self.host.bounding_capabilities);
            process["capabilities"] = serde_json::json!({
                "bounding": caps, "effective": caps, "permitted": caps,
            });
        }
        if let Some(obj) = process.as_object_mut() {
            obj.remove("consoleSize");
        }
        Ok(process)
    }
}

/// Exec needs a running, unpaused container (Docker's messages).
fn check_runnable(record: &ContainerRecord, name: &str) -> Result<(), ContainerError> {
    match record.state.status {
        Status::Running => Ok(()),
        Status::Paused => Err(ContainerError::Conflict(format!(
            "Container {name} is paused, unpause the container before exec"
        ))),
        _ => Err(not_running(&record.id)),
    }
}

/// An anonymous memory file holding `data`, and the path another process opens it by while the
/// file is kept open (`/proc/<our pid>/fd/<n>`).
fn memfd_with(data: &[u8]) -> Result<(std::fs::File, PathBuf), ContainerError> {
    use std::io::Write;
    let fd = rustix::fs::memfd_create("estiba-exec-process", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| internal(format!("memfd_create: {e}")))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(data)
        .map_err(|e| internal(format!("write the exec process: {e}")))?;
    let path = PathBuf::from(format!(
        "/proc/{}/fd/{}",
        std::process::id(),
        std::os::fd::AsRawFd::as_raw_fd(&file)
    ));
    Ok((file, path))
}
