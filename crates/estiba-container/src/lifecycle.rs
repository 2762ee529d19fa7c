//! After start: exits (from the shim's `wait`), stop, kill, restart, remove, prune, and live
//! restore at daemon start-up.

use std::sync::Arc;
use std::time::Duration;

use estiba_shim::{ExitInfo, ShimClient};

use crate::error::{internal, ContainerError};
use crate::model::{ContainerRecord, Status};
use crate::service::{lock, remove_dir, Container, ContainerService, StopOutcome};

/// Docker's default stop timeout.
const DEFAULT_STOP_TIMEOUT_S: i64 = 10;
/// How long a SIGKILLed container may take to be reaped before we report a failure.
const KILL_WAIT: Duration = Duration::from_secs(30);
/// Longest a negative stop timeout ("wait forever") waits.
const MAX_STOP_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Linux signal names and numbers (x86-64/arm64 numbering).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Docker's `ParseSignal`: a number, or a name with or without `SIG`, any case.
pub fn parse_signal(s: &str) -> Result<i32, ContainerError> {
    let invalid = || ContainerError::InvalidParameter(format!("Invalid signal: {s}"));
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(invalid())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(rt) = name.strip_prefix("RTMIN+") {
        return rt
            .parse::<i32>()
            .ok()
            .filter(|n| (0..=30).contains(n))
            .map(|n| 34 + n)
            .ok_or_else(invalid);
    }
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(invalid)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl ContainerService {
    /// Waits on the shim for the container's exit, then records it. Runs on its own thread.
    pub(crate) fn monitor(self: Arc<Self>, c: Arc<Container>) {
        let state_dir = self.state_dir(&c.id);
        let exit = match ShimClient::for_state_dir(&state_dir).and_then(|cl| cl.wait()) {
            Ok(exit) => exit,
            Err(e) => {
                tracing::warn!("lost the shim of {}: {e}", c.id);
                match estiba_shim::read_exit_file(&state_dir) {
                    Ok(Some(exit)) => exit,
                    // The shim died before the container (it was killed): the runtime's
                    // forced delete kills what is left, and the exit is 128 + SIGKILL, as
                    // containerd reports a task whose shim died.
                    _ => ExitInfo {
                        exit_code: 137,
                        finished_at: now_rfc3339(),
                        oom_killed: false,
                    },
                }
            }
        };
        self.handle_exit(&c, exit);
    }

    /// Records an exit: the shim is told to go (runtime `delete`), the rootfs unmounted, the
    /// record updated, `die` published; then AutoRemove.
    pub(crate) fn handle_exit(self: &Arc<Self>, c: &Arc<Container>, exit: ExitInfo) {
        let guard = c.op_lock();
        let record = c.snapshot();
        if !record.state.status.is_running() {
            return;
        }
        let state_dir = self.state_dir(&c.id);
        let restart = self.restart_delay(c, &record, i64::from(exit.exit_code));
        // Counted from here until the removal below has released everything: a client that
        // saw the exit (not the removal) may stop the daemon, which must not leave the mount.
        let _releasing =
            (restart.is_none() && record.host.auto_remove).then(|| self.release_guard());
        // An AutoRemove container's shim, runtime state and rootfs are released by its
        // removal, after `wait` has been answered: the runtime's `delete` (cgroups) and the
        // overlay unmount (a sync of the upper filesystem) are the slow part of an exit.
        if restart.is_some() || !record.host.auto_remove {
            self.release_task(&record);
            let _ = self
                .snapshots
                .unmount(&self.container_dir(&c.id).join("rootfs"));
            remove_dir(&state_dir);
            self.net_teardown(&c.id);
        }
        // With AutoRemove the removal's commit follows at once and makes this one durable too:
        // one fdatasync less on the path of every `docker run --rm`.
        let removal_follows = restart.is_none() && record.host.auto_remove;
        let record = self.update_with(
            c,
            |r| {
                r.state.status = Status::Exited;
                if restart.is_some() {
                    r.state.status = Status::Restarting;
                    r.state.restart_count += 1;
                }
                r.state.pid = 0;
                r.state.exit_code = i64::from(exit.exit_code);
                r.state.finished_at = exit.finished_at.clone();
                r.state.oom_killed = exit.oom_killed;
            },
            true,
            !removal_follows,
        );
        if exit.oom_killed {
            self.publish(&record, "oom", &[]);
        }
        let code = exit.exit_code.to_string();
        self.publish(&record, "die", &[("exitCode", &code)]);
        self.mounts_stopped(&record);
        drop(guard);
        if let Some(delay) = restart {
            self.schedule_restart(Arc::clone(c), delay);
            return;
        }
        if record.host.auto_remove {
            if let Err(e) = self.remove_container(c) {
                tracing::warn!("auto-remove {}: {e}", c.id);
            }
        }
    }

    /// Tells the shim of an exited container to go (it runs the runtime's `delete`); deletes
    /// the runtime state itself when the shim is gone.
    pub(crate) fn release_task(&self, record: &ContainerRecord) {
        match ShimClient::for_state_dir(self.state_dir(&record.id)) {
            Ok(client) => {
                if let Err(e) = client.shutdown() {
                    tracing::warn!("shim shutdown of {}: {e}", record.id);
                    self.runtime_delete(record);
                }
            }
            Err(_) => self.runtime_delete(record),
        }
    }

    /// Deletes the runtime's state of a container whose shim is gone (it would have done it).
    fn runtime_delete(&self, record: &ContainerRecord) {
        let Some(runtime) = self.config.runtimes.get(&record.host.runtime) else {
            return;
        };
        let root = self
            .config
            .exec_root
            .join("runtime")
            .join(&record.host.runtime);
        let out = std::process::Command::new(&runtime.path)
            .arg("--root")
            .arg(&root)
            .args(&runtime.args)
            .args(["delete", "--force", &record.id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if let Err(e) = out {
            tracing::warn!("runtime delete {}: {e}", record.id);
        }
    }

    /// `docker kill`.
    pub fn kill(&self, name: &str, signal: Option<&str>) -> Result<(), ContainerError> {
        let signal = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => 9,
        };
        let c = self.get(name)?;
        if self.cancel_restart(&c) {
            return Ok(());
        }
        let record = c.snapshot();
        if !record.state.status.is_running() {
            return Err(ContainerError::Conflict(format!(
                "Cannot kill container: {name}: container {} is not running",
                record.id
            )));
        }
        let client = ShimClient::for_state_dir(self.state_dir(&c.id)).map_err(internal)?;
        client.kill(signal, false).map_err(internal)?;
        // A frozen process gets the signal once thawed, as Docker resumes after killing.
        self.thaw_if_paused(&c);
        self.publish(&record, "kill", &[("signal", &signal.to_string())]);
        Ok(())
    }

    /// `docker stop`: the stop signal, then SIGKILL after the timeout.
    pub fn stop(
        &self,
        name: &str,
        timeout_s: Option<i64>,
        signal: Option<&str>,
    ) -> Result<StopOutcome, ContainerError> {
        let c = self.get(name)?;
        if self.cancel_restart(&c) {
            self.publish(&c.snapshot(), "stop", &[]);
            return Ok(StopOutcome::Stopped);
        }
        let record = c.snapshot();
        if !record.state.status.is_running() {
            return Ok(StopOutcome::NotRunning);
        }
        let signal = match signal
            .filter(|s| !s.is_empty())
            .or(record.config.stop_signal.as_deref())
        {
            Some(s) => parse_signal(s)?,
            None => 15,
        };
        let timeout = timeout_s
            .or(record.config.stop_timeout_s)
            .unwrap_or(DEFAULT_STOP_TIMEOUT_S);
        self.update(&c, |r| r.state.has_been_manually_stopped = true, false);
        self.stop_container(&c, signal, timeout)?;
        self.publish(&c.snapshot(), "stop", &[]);
        Ok(StopOutcome::Stopped)
    }

    fn stop_container(
        &self,
        c: &Container,
        signal: i32,
        timeout_s: i64,
    ) -> Result<(), ContainerError> {
        let stopped = |r: &ContainerRecord| !r.state.status.is_running();
        self.thaw_if_paused(c);
        let record = c.snapshot();
        if let Ok(client) = ShimClient::for_state_dir(self.state_dir(&c.id)) {
            if signal != 9 {
                if client.kill(signal, false).is_ok() {
                    self.publish(&record, "kill", &[("signal", &signal.to_string())]);
                }
                let wait = if timeout_s < 0 {
                    MAX_STOP_WAIT
                } else {
                    Duration::from_secs(timeout_s.unsigned_abs())
                };
                if c.wait_for(wait, stopped) {
                    return Ok(());
                }
            }
            if client.kill(9, false).is_ok() {
                self.publish(&record, "kill", &[("signal", "9")]);
            }
        }
        if c.wait_for(KILL_WAIT, stopped) {
            Ok(())
        } else {
            Err(internal(format!(
                "container {} did not exit within {}s of SIGKILL",
                c.id,
                KILL_WAIT.as_secs()
            )))
        }
    }

    /// `docker restart`.
    pub fn restart(
        self: &Arc<Self>,
        name: &str,
        timeout_s: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), ContainerError> {
        self.stop(name, timeout_s, signal)?;
        self.start(name).map(|_| ())
    }

    /// `docker rm`.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), ContainerError> {
        let c = self.get(name)?;
        let mut record = c.snapshot();
        if record.state.status == Status::Restarting && !force {
            return Err(ContainerError::Conflict(format!(
                "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                record.id
            )));
        }
        if force {
            // No restart may race the removal.
            self.cancel_restart(&c);
            record = c.snapshot();
        }
        if record.state.status.is_running() {
            if !force {
                return Err(ContainerError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    record.name
                )));
            }
            self.stop_container(&c, 9, 0)?;
        }
        self.remove_container(&c)
    }

    /// Removes a stopped container: record first, then its files.
    pub(crate) fn remove_container(&self, c: &Container) -> Result<(), ContainerError> {
        let _op = c.op_lock();
        let record = c.snapshot();
        match record.state.status {
            s if s.is_running() => {
                return Err(ContainerError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    record.name
                )))
            }
            Status::Removing => {
                return Err(ContainerError::Conflict(format!(
                    "removal of container {} is already in progress",
                    record.name
                )))
            }
            _ => {}
        }
        lock(&c.record).state.status = Status::Removing;
        let _releasing = self.release_guard();
        // Before waiters are answered: a `docker run --rm -p 8080:80` that returned has freed
        // its port and address for the next one.
        self.net_teardown(&record.id);
        let mut tx = self.store.write().map_err(internal)?;
        tx.remove(crate::service::CONTAINERS, &record.id)
            .map_err(internal)?;
        tx.commit().map_err(internal)?;
        self.write_index().remove(&record.id);
        self.exec_forget_container(&record.id);
        // Before waiters are answered: `docker run --rm -v /x` returns with its anonymous
        // volume gone, as with dockerd.
        self.release_mounts(&record, record.host.auto_remove);
        lock(&c.pending_attaches).clear();
        c.changed.notify_all();
        c.watch.send_modify(|w| w.removed = true);
        self.publish(&record, "destroy", &[]);
        // The record is gone, so waiters (`docker run --rm`) are answered before the slow part:
        // the overlay unmount syncs the upper filesystem. A crash from here on leaves files
        // that no record names, which start-up garbage collection removes.
        let state_dir = self.state_dir(&record.id);
        if state_dir.exists() {
            // An AutoRemove container's exit left its shim and runtime state to this.
            self.release_task(&record);
        }
        let dir = self.container_dir(&record.id);
        let _ = self.snapshots.unmount(&dir.join("rootfs"));
        if let Err(e) = self.snapshots.remove(&record.snapshot_key) {
            tracing::warn!("remove snapshot {}: {e}", record.snapshot_key);
        }
        remove_dir(&dir);
        remove_dir(&state_dir);
        Ok(())
    }

    /// `docker container prune`: removes every stopped container matching `labels`
    /// (`key`, `key=value`, `!`-negated) created before `until_nano`; returns IDs and bytes.
    pub fn prune(
        &self,
        labels: &[String],
        until_nano: Option<i64>,
    ) -> Result<(Vec<String>, u64), ContainerError> {
        let candidates: Vec<Arc<Container>> = self.read_index().values().cloned().collect();
        let mut removed = Vec::new();
        let mut space = 0u64;
        for c in candidates {
            let record = c.snapshot();
            if record.state.status.is_running() || record.state.status == Status::Removing {
                continue;
            }
            if until_nano.is_some_and(|u| record.created_nano >= u) {
                continue;
            }
            let label_ok = labels.iter().all(|l| {
                let (neg, l) = match l.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, l.as_str()),
                };
                let has = match l.split_once('=') {
                    Some((k, v)) => record.config.labels.get(k).is_some_and(|x| x == v),
                    None => record.config.labels.contains_key(l),
                };
                has != neg
            });
            if !label_ok {
                continue;
            }
            let size = self.snapshots.usage(&record.snapshot_key).unwrap_or(0);
            match self.remove_container(&c) {
                Ok(()) => {
                    removed.push(record.id.clone());
                    space += size;
                }
                Err(e) => tracing::warn!("prune {}: {e}", record.id),
            }
        }
        Ok((removed, space))
    }

    /// Live restore: every container recorded as running gets its shim back, or, when the shim
    /// is gone, the exit it recorded.
    pub(crate) fn restore(self: &Arc<Self>) {
        let all: Vec<Arc<Container>> = self.read_index().values().cloned().collect();
        for c in all {
            let record = c.snapshot();
            if !record.state.status.is_running() && record.state.status != Status::Restarting {
                continue;
            }
            let state_dir = self.state_dir(&c.id);
            match ShimClient::for_state_dir(&state_dir) {
                Ok(_) => {
                    tracing::info!("restored container {} (shim alive)", c.id);
                    if record.state.status == Status::Restarting {
                        self.update(&c, |r| r.state.status = Status::Running, false);
                    }
                    // Health results go on from `starting`, as after dockerd's restore.
                    self.start_health_monitor(&c);
                    let service = Arc::clone(self);
                    let spawned = std::thread::Builder::new()
                        .name(format!("monitor-{}", crate::names::short_id(&c.id)))
                        .stack_size(256 * 1024)
                        .spawn(move || service.monitor(c));
                    if let Err(e) = spawned {
                        tracing::error!("cannot start a monitor thread: {e}");
                    }
                }
                Err(_) => {
                    let exit = match estiba_shim::read_exit_file(&state_dir) {
                        Ok(Some(exit)) => exit,
                        _ => ExitInfo {
                            exit_code: 255,
                            finished_at: now_rfc3339(),
                            oom_killed: false,
                        },
                    };
                    tracing::info!(
                        "container {} exited ({}) while the daemon was away",
                        c.id,
                        exit.exit_code
                    );
                    self.handle_exit(&c, exit);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_like_docker() {
        let cases: &[(&str, Option<i32>)] = &[
            ("9", Some(9)),
            ("KILL", Some(9)),
            ("SIGKILL", Some(9)),
            ("sigterm", Some(15)),
            ("usr1", Some(10)),
            ("SIGRTMIN+1", Some(35)),
            ("0", None),
            ("65", None),
            ("NOPE", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_signal(s).ok(), *want, "{s}");
        }
        assert_eq!(
            parse_signal("NOPE").unwrap_err().to_string(),
            "Invalid signal: NOPE"
        );
    }
}
