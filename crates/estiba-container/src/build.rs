//! What the builder needs from containers: run one `RUN` step in a throwaway container
//! (its output streamed as it comes), and read the container's writable layer as a diff tar.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{internal, ContainerError};
use crate::logs::LogOptions;
use crate::model::{ContainerConfig, HostOptions};
use crate::service::{ContainerService, CreateRequest};

/// Longest one `RUN` step may run.
const MAX_RUN_DURATION: Duration = Duration::from_secs(24 * 3600);

/// One `RUN` step.
#[derive(Debug, Clone, Default)]
pub struct BuildRun {
    /// The image to run in ("sha256:...").
    pub image_id: String,
    /// The full argv (the shell form already wrapped in the stage's SHELL).
    pub argv: Vec<String>,
    /// `K=V`, merged over the image's environment.
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    /// `networkmode` of the build ("" for the daemon's default).
    pub network_mode: String,
    /// `RUN --mount`s in `HostConfig.Mounts` form.
    pub mounts: Vec<serde_json::Value>,
}

/// Strips the stdcopy frame headers (stream byte, 3 zeros, big-endian length) of a
/// multiplexed log stream, passing the payloads through.
struct Demux<'a> {
    out: &'a mut dyn Write,
    header: [u8; 8],
    have: usize,
    left: usize,
}

impl Write for Demux<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            if self.left == 0 {
                let n = (8 - self.have).min(rest.len());
                self.header[self.have..self.have + n].copy_from_slice(&rest[..n]);
                self.have += n;
                rest = &rest[n..];
                if self.have == 8 {
                    let len = [
                        self.header[4],
                        self.header[5],
                        self.header[6],
                        self.header[7],
                    ];
                    self.left = u32::from_be_bytes(len) as usize;
                    self.have = 0;
                }
                continue;
            }
            let n = self.left.min(rest.len());
            self.out.write_all(&rest[..n])?;
            self.left -= n;
            rest = &rest[n..];
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl ContainerService {
    /// Creates and runs a container for `run`, streaming its stdout and stderr to `out`;
    /// returns the container's ID and exit code. The caller removes the container.
    pub fn build_run(
        self: &Arc<Self>,
        run: &BuildRun,
        on_created: &mut dyn FnMut(&str),
        out: &mut dyn Write,
    ) -> Result<(String, i64), ContainerError> {
        let req = CreateRequest {
            name: String::new(),
            config: ContainerConfig {
                image: run.image_id.clone(),
                cmd: Some(run.argv.clone()),
                // `[""]` clears the image's entrypoint, as `--entrypoint ""`.
                entrypoint: Some(vec![String::new()]),
                env: run.env.clone(),
                working_dir: run.working_dir.clone(),
                user: run.user.clone(),
                attach_stdout: true,
                attach_stderr: true,
                ..Default::default()
            },
            host: HostOptions {
                network_mode: run.network_mode.clone(),
                mounts: run.mounts.clone(),
                ..Default::default()
            },
        };
        let (id, _) = self.create(req)?;
        on_created(&id);
        if let Err(e) = self.start(&id) {
            return Err(self.remove_after(&id, e));
        }
        let opts = LogOptions {
            stdout: true,
            stderr: true,
            follow: true,
            ..Default::default()
        };
        // The log stream is multiplexed (8-byte frame headers): the build wants the text.
        let mut demux = Demux {
            out,
            header: [0; 8],
            have: 0,
            left: 0,
        };
        if let Err(e) = self.logs(&id, &opts, &mut demux) {
            return Err(self.remove_after(&id, e));
        }
        let c = self.get(&id)?;
        if !c.wait_for(MAX_RUN_DURATION, |r| !r.state.status.is_running()) {
            let _ = self.kill(&id, Some("KILL"));
            return Err(self.remove_after(&id, internal("RUN step timed out")));
        }
        let code = c.snapshot().state.exit_code;
        Ok((id, code))
    }

    /// Writes the container's changes (a layer tar, deletions as whiteouts) to `out`.
    pub fn build_diff(&self, id: &str, out: &mut dyn Write) -> Result<(), ContainerError> {
        let record = self.get(id)?.snapshot();
        self.snapshots
            .diff(&record.snapshot_key, out)
            .map(|_| ())
            .map_err(internal)
    }

    fn remove_after(&self, id: &str, e: ContainerError) -> ContainerError {
        if let Err(r) = self.remove(id, true) {
            tracing::warn!("remove build container {id}: {r}");
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_stripped_however_they_are_split() {
        let mut framed = vec![1, 0, 0, 0, 0, 0, 0, 4];
        framed.extend_from_slice(b"one\n");
        framed.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 3]);
        framed.extend_from_slice(b"two");
        for chunk in [1, 3, 8, 100] {
            let mut got = Vec::new();
            let mut d = Demux {
                out: &mut got,
                header: [0; 8],
                have: 0,
                left: 0,
            };
            for part in framed.chunks(chunk) {
                d.write_all(part).unwrap();
            }
            assert_eq!(got, b"one\ntwo", "chunks of {chunk}");
        }
    }
}
