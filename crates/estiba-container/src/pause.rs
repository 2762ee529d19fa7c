//! `docker pause` / `unpause`: the runtime's `pause`/`resume` (the cgroup freezer), run by the
//! daemon against the container's runtime state dir; stop and kill thaw a paused container.

use std::process::{Command, Stdio};

use crate::error::{internal, ContainerError};
use crate::model::{ContainerRecord, Status};
use crate::service::{Container, ContainerService};

/// Longest runtime error message passed on.
const MAX_MESSAGE_BYTES: usize = 4096;

impl ContainerService {
    /// `POST /containers/{id}/pause`.
    pub fn pause(&self, name: &str) -> Result<(), ContainerError> {
        let c = self.get(name)?;
        let _op = c.op_lock();
        let record = c.snapshot();
        match record.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is already paused",
                    record.id
                )))
            }
            _ => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is not running",
                    record.id
                )))
            }
        }
        self.runtime_op(&record, "pause")?;
        let record = self.update(&c, |r| r.state.status = Status::Paused, false);
        self.publish(&record, "pause", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/unpause`.
    pub fn unpause(&self, name: &str) -> Result<(), ContainerError> {
        let c = self.get(name)?;
        let _op = c.op_lock();
        let record = c.snapshot();
        if record.state.status != Status::Paused {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not paused",
                record.id
            )));
        }
        self.resume_locked(&c, &record)
    }

    /// Thaws a paused container so that a signal sent to it is delivered (stop, kill).
    pub(crate) fn thaw_if_paused(&self, c: &Container) {
        let _op = c.op_lock();
        let record = c.snapshot();
        if record.state.status == Status::Paused {
            if let Err(e) = self.resume_locked(c, &record) {
                tracing::warn!("cannot unpause container {}: {e}", record.id);
            }
        }
    }

    fn resume_locked(&self, c: &Container, record: &ContainerRecord) -> Result<(), ContainerError> {
        self.runtime_op(record, "resume")?;
        let record = self.update(
            c,
            |r| {
                if r.state.status == Status::Paused {
                    r.state.status = Status::Running;
                }
            },
            false,
        );
        self.publish(&record, "unpause", &[]);
        Ok(())
    }

    /// `<runtime> --root <exec-root>/runtime/<name> [ARGS] <op> <id>`; the error is the
    /// runtime's own message.
    pub(crate) fn runtime_op(
        &self,
        record: &ContainerRecord,
        op: &str,
    ) -> Result<(), ContainerError> {
        let runtime = self
            .config
            .runtimes
            .get(&record.host.runtime)
            .ok_or_else(|| internal(format!("unknown runtime {:?}", record.host.runtime)))?;
        let root = self
            .config
            .exec_root
            .join("runtime")
            .join(&record.host.runtime);
        let out = Command::new(&runtime.path)
            .arg("--root")
            .arg(&root)
            .args(&runtime.args)
            .args([op, record.id.as_str()])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| internal(format!("run {}: {e}", runtime.path.display())))?;
        if out.status.success() {
            return Ok(());
        }
        let mut message = String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " ");
        if message.is_empty() {
            message = format!("runtime {op} failed: {}", out.status);
        }
        let mut end = message.len().min(MAX_MESSAGE_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        Err(ContainerError::Internal(message))
    }
}
