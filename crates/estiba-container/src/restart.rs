//! Restart policies (`--restart no|always|unless-stopped|on-failure[:max]`), as moby's
//! restart manager: a container that exits on its own is restarted after a back-off that starts
//! at 100 ms, doubles on every restart up to a minute, and falls back to 100 ms once the container
//! ran for 10 s. An explicit stop or kill cancels restarting until the next user start; at daemon
//! start-up, containers whose policy says so are started again.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{ContainerRecord, RestartPolicy, Status};
use crate::service::{lock, Container, ContainerService};

/// The first back-off.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
/// The longest back-off.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// A container that ran this long starts over with the first back-off.
const RESET_AFTER: Duration = Duration::from_secs(10);
/// Stack of a restart thread: it waits on a condvar, then starts the container.
const RESTART_STACK_BYTES: usize = 256 * 1024;

/// The in-memory part of a container's restart manager.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// The last back-off used; zero before the first restart.
    timeout: Duration,
    /// Set by stop and kill: no restart until the next user start.
    pub(crate) canceled: bool,
}

/// moby's `RestartManager.ShouldRestart`: whether to restart, and after which delay. `backoff`
/// is advanced as moby advances it (even when the answer is no).
pub(crate) fn should_restart(
    policy: &RestartPolicy,
    backoff: &mut Backoff,
    restart_count: i64,
    exit_code: i64,
    manually_stopped: bool,
    ran_for: Duration,
) -> Option<Duration> {
    if matches!(policy.name.as_str(), "" | "no") || backoff.canceled {
        return None;
    }
    if ran_for >= RESET_AFTER {
        backoff.timeout = Duration::ZERO;
    }
    backoff.timeout = if backoff.timeout.is_zero() {
        DEFAULT_TIMEOUT
    } else {
        (backoff.timeout * 2).min(MAX_TIMEOUT)
    };
    let restart = match policy.name.as_str() {
        "always" => true,
        "unless-stopped" => !manually_stopped,
        "on-failure" => {
            let max = policy.maximum_retry_count;
            (max <= 0 || restart_count < max) && exit_code != 0
        }
        _ => false,
    };
    restart.then_some(backoff.timeout)
}

/// How long the container ran, from its record's `started_at` to now.
fn ran_for(record: &ContainerRecord) -> Duration {
    chrono::DateTime::parse_from_rfc3339(&record.state.started_at)
        .ok()
        .and_then(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .unwrap_or(Duration::ZERO)
}

impl ContainerService {
    /// Called with the op lock held when a running container exited: the back-off before its
    /// restart, or `None` when its policy says it stays stopped.
    pub(crate) fn restart_delay(
        &self,
        c: &Container,
        record: &ContainerRecord,
        exit_code: i64,
    ) -> Option<Duration> {
        let mut backoff = lock(&c.restart);
        should_restart(
            &record.host.restart_policy,
            &mut backoff,
            record.state.restart_count,
            exit_code,
            record.state.has_been_manually_stopped,
            ran_for(record),
        )
    }

    /// Restarts a container (status `restarting`) after `delay`, unless it is stopped or
    /// removed meanwhile.
    pub(crate) fn schedule_restart(self: &Arc<Self>, c: Arc<Container>, delay: Duration) {
        let service = Arc::clone(self);
        let waiting = Arc::clone(&c);
        let spawned = std::thread::Builder::new()
            .name(format!("restart-{}", crate::names::short_id(&c.id)))
            .stack_size(RESTART_STACK_BYTES)
            .spawn(move || {
                // Woken early by any state change (stop, remove).
                c.wait_for(delay, |r| r.state.status != Status::Restarting);
                service.restart_now(&c);
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start a restart thread: {e}");
            self.update(&waiting, |r| r.state.status = Status::Exited, false);
        }
    }

    fn restart_now(self: &Arc<Self>, c: &Arc<Container>) {
        let _op = c.op_lock();
        let record = c.snapshot();
        if record.state.status != Status::Restarting || lock(&c.restart).canceled {
            return;
        }
        if let Err(e) = self.start_locked(c, record) {
            tracing::warn!("restart container {}: {e}", c.id);
            self.update(c, |r| r.state.status = Status::Exited, false);
        }
    }

    /// Stop, kill and forced removal (moby's `ExitOnNext`): no restart until the next user
    /// start, the container counts as stopped by the user (`unless-stopped` stays down across
    /// daemon restarts), and one waiting to be restarted becomes exited at once. Returns
    /// whether it was waiting.
    pub(crate) fn cancel_restart(&self, c: &Container) -> bool {
        lock(&c.restart).canceled = true;
        let _op = c.op_lock();
        let waiting = c.snapshot().state.status == Status::Restarting;
        self.update(
            c,
            |r| {
                r.state.has_been_manually_stopped = true;
                if waiting {
                    r.state.status = Status::Exited;
                }
            },
            false,
        );
        waiting
    }

    /// A user start: the restart count and back-off start over.
    pub(crate) fn reset_restart(&self, c: &Container) {
        *lock(&c.restart) = Backoff::default();
        self.update(c, |r| r.state.restart_count = 0, false);
    }

    /// At daemon start-up: starts the stopped containers whose policy restarts them (moby's
    /// `ShouldRestart` on restore: `always` even after a stop, `unless-stopped` unless stopped
    /// by the user, `on-failure` after a failure with retries left), and those that were
    /// waiting for a restart when the daemon went away.
    pub(crate) fn start_by_policy(self: &Arc<Self>) {
        let all: Vec<Arc<Container>> = self.read_index().values().cloned().collect();
        let mut due = Vec::new();
        for c in all {
            let record = c.snapshot();
            let wanted = match record.state.status {
                Status::Restarting => true,
                Status::Exited if record.state.has_been_started => {
                    let mut fresh = Backoff::default();
                    let policy = &record.host.restart_policy;
                    policy.name == "always"
                        || should_restart(
                            policy,
                            &mut fresh,
                            record.state.restart_count,
                            record.state.exit_code,
                            record.state.has_been_manually_stopped,
                            Duration::ZERO,
                        )
                        .is_some()
                }
                _ => false,
            };
            if wanted {
                due.push(c);
            }
        }
        if due.is_empty() {
            return;
        }
        let service = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("restart-policies".into())
            .spawn(move || {
                for c in due {
                    let _op = c.op_lock();
                    let record = c.snapshot();
                    if record.state.status.is_running() {
                        continue;
                    }
                    tracing::info!("starting container {} (restart policy)", c.id);
                    if let Err(e) = service.start_locked(&c, record) {
                        tracing::warn!("restart container {}: {e}", c.id);
                        service.update(&c, |r| r.state.status = Status::Exited, false);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the restart-policy thread: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn policies_like_moby() {
        // (policy, max, restart count, exit code, manually stopped, restart?)
        let cases = [
            ("", 0, 0, 1, false, false),
            ("no", 0, 0, 1, false, false),
            ("always", 0, 5, 0, false, true),
            ("always", 0, 0, 0, true, true),
            ("unless-stopped", 0, 0, 0, false, true),
            ("unless-stopped", 0, 0, 0, true, false),
            ("on-failure", 0, 100, 1, false, true),
            ("on-failure", 0, 0, 0, false, false),
            ("on-failure", 3, 2, 1, false, true),
            ("on-failure", 3, 3, 1, false, false),
        ];
        for (name, max, count, code, stopped, want) in cases {
            let mut b = Backoff::default();
            let got = should_restart(
                &policy(name, max),
                &mut b,
                count,
                code,
                stopped,
                Duration::ZERO,
            );
            assert_eq!(
                got.is_some(),
                want,
                "{name}:{max} count {count} exit {code} stopped {stopped}"
            );
        }
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let p = policy("always", 0);
        let mut b = Backoff::default();
        let mut delays = Vec::new();
        for _ in 0..12 {
            delays.push(should_restart(&p, &mut b, 0, 0, false, Duration::ZERO).unwrap());
        }
        assert_eq!(delays[0], Duration::from_millis(100));
        assert_eq!(delays[1], Duration::from_millis(200));
        assert_eq!(delays[3], Duration::from_millis(800));
        assert_eq!(delays[11], MAX_TIMEOUT);
        let after_long_run = should_restart(&p, &mut b, 0, 0, false, RESET_AFTER).unwrap();
        assert_eq!(after_long_run, DEFAULT_TIMEOUT);
        b.canceled = true;
        assert_eq!(
            should_restart(&p, &mut b, 0, 0, false, Duration::ZERO),
            None
        );
    }
}
