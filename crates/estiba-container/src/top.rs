//! `docker top`: the host's `ps` output, filtered to the processes in the container's cgroup
//! (moby's `parsePSOutput`).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{internal, ContainerError};
use crate::model::Status;
use crate::service::ContainerService;

/// Most bytes of `ps` output or of a `cgroup.procs` file read.
const MAX_READ_BYTES: u64 = 16 * 1024 * 1024;
/// Most `ps` arguments accepted.
const MAX_PS_ARGS: usize = 64;

/// `{"Titles":[...],"Processes":[[...]]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopResult {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

impl ContainerService {
    /// `GET /containers/{id}/top?ps_args=`.
    pub fn top(&self, name: &str, ps_args: &str) -> Result<TopResult, ContainerError> {
        let c = self.get(name)?;
        let record = c.snapshot();
        if !matches!(record.state.status, Status::Running | Status::Paused) || record.state.pid == 0
        {
            return Err(ContainerError::Conflict(format!(
                "Container {} is not running",
                record.id
            )));
        }
        let pids = cgroup_pids(record.state.pid)?;
        let ps_args = if ps_args.trim().is_empty() {
            "-ef"
        } else {
            ps_args
        };
        let args: Vec<&str> = ps_args.split_whitespace().collect();
        if args.len() > MAX_PS_ARGS {
            return Err(ContainerError::InvalidParameter(
                "too many ps arguments".into(),
            ));
        }
        let mut child = Command::new("ps")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| internal(format!("Error running ps: {e}")))?;
        let mut output = Vec::new();
        if let Some(out) = child.stdout.take() {
            out.take(MAX_READ_BYTES)
                .read_to_end(&mut output)
                .map_err(|e| internal(format!("Error running ps: {e}")))?;
        }
        let mut stderr = String::new();
        if let Some(err) = child.stderr.take() {
            let _ = err.take(64 * 1024).read_to_string(&mut stderr);
        }
        let status = child
            .wait()
            .map_err(|e| internal(format!("Error running ps: {e}")))?;
        if !status.success() {
            return Err(internal(format!("ps: {}: {}", stderr.trim(), status)));
        }
        parse_ps_output(&String::from_utf8_lossy(&output), &pids).map_err(ContainerError::Internal)
    }
}

/// The pids in the cgroup of `pid`: the v1 `pids` (else `memory`) controller's `cgroup.procs`,
/// else the unified hierarchy's.
fn cgroup_pids(pid: u32) -> Result<Vec<u32>, ContainerError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| internal(format!("read the cgroup of pid {pid}: {e}")))?;
    let mut candidates: Vec<PathBuf> = Vec::new();
    for wanted in ["pids", "memory"] {
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
            if let (Some(controllers), Some(path)) = (controllers, path) {
                if controllers.split(',').any(|c| c == wanted) {
                    candidates.push(PathBuf::from(format!("/sys/fs/cgroup/{wanted}{path}")));
                }
            }
        }
    }
    if let Some(path) = text.lines().find_map(|l| l.strip_prefix("0::")) {
        candidates.push(PathBuf::from(format!("/sys/fs/cgroup{path}")));
        candidates.push(PathBuf::from(format!("/sys/fs/cgroup/unified{path}")));
    }
    for dir in candidates {
        let Ok(file) = std::fs::File::open(dir.join("cgroup.procs")) else {
            continue;
        };
        let mut procs = String::new();
        if file.take(MAX_READ_BYTES).read_to_string(&mut procs).is_ok() {
            return Ok(procs
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect());
        }
    }
    Err(internal(format!("cannot find the cgroup of pid {pid}")))
}

/// moby's `parsePSOutput`: the header's fields are the titles; a row whose PID is in `pids` is
/// kept, its overhanging fields joined into the last column.
pub fn parse_ps_output(output: &str, pids: &[u32]) -> Result<TopResult, String> {
    let mut lines = output.split('\n');
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| "Couldn't find PID field in ps output".to_string())?;
    let mut processes = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid_field) = fields.get(pid_index) else {
            continue;
        };
        let pid: u32 = pid_field
            .parse()
            .map_err(|_| format!("Unexpected pid '{pid_field}'"))?;
        if !pids.contains(&pid) {
            continue;
        }
        let last = titles.len() - 1;
        let mut row: Vec<String> = fields.iter().take(last).map(|f| (*f).to_owned()).collect();
        row.push(fields.get(last..).map(|f| f.join(" ")).unwrap_or_default());
        processes.push(row);
    }
    Ok(TopResult { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_filtered_to_the_container() {
        let ps = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                  root           1       0  0 07:00 ?        00:00:01 /sbin/init\n\
                  root        2718    2698  0 07:34 ?        00:00:00 busybox sleep 100\n\
                  root        2719    2718  0 07:34 ?        00:00:00 sh\n";
        let cases: &[(&[u32], &[&str])] = &[
            (
                &[2718],
                &[
                    "root",
                    "2718",
                    "2698",
                    "0",
                    "07:34",
                    "?",
                    "00:00:00",
                    "busybox sleep 100",
                ],
            ),
            (&[], &[]),
        ];
        for (pids, want) in cases {
            let got = parse_ps_output(ps, pids).unwrap();
            assert_eq!(got.titles.len(), 8);
            assert_eq!(got.titles[7], "CMD");
            let first: Vec<&str> = got
                .processes
                .first()
                .map(|r| r.iter().map(String::as_str).collect())
                .unwrap_or_default();
            assert_eq!(first, *want);
        }
        assert_eq!(
            parse_ps_output(ps, &[2718, 2719]).unwrap().processes.len(),
            2
        );
        assert!(parse_ps_output("UID CMD\nroot x\n", &[1]).is_err());
        assert!(parse_ps_output("PID CMD\nabc x\n", &[1]).is_err());
    }
}
