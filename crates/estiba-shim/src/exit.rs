//! The container's exit: its code, the OOM verdict from the memory cgroup, and the durable record.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use estiba_shim::ExitInfo;
use rustix::process::WaitStatus;

/// Docker's exit code for a wait status: the exit status, or 128 + the terminating signal.
pub(crate) fn exit_code(status: WaitStatus) -> i32 {
    if let Some(code) = status.exit_status() {
        code
    } else if let Some(sig) = status.terminating_signal() {
        128 + sig
    } else {
        // Stopped or continued is not an exit; callers only pass exits (waitpid without WUNTRACED).
        255
    }
}

/// Where the container's OOM-kill counter lives, found from the init's `/proc/<pid>/cgroup`.
pub(crate) fn oom_counter_path(init_pid: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{init_pid}/cgroup")).ok()?;
    oom_counter_path_from(
        &text,
        Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
    )
}

pub(crate) fn oom_counter_path_from(proc_cgroup: &str, unified_only: bool) -> Option<PathBuf> {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "memory") {
            return Some(PathBuf::from(format!(
                "/sys/fs/cgroup/memory{path}/memory.oom_control"
            )));
        }
        if unified_only && controllers.is_empty() {
            let path = path.trim_end_matches('/');
            return Some(PathBuf::from(format!("/sys/fs/cgroup{path}/memory.events")));
        }
    }
    None
}

/// Whether the counter file (v1 `memory.oom_control` or v2 `memory.events`) shows an OOM kill.
pub(crate) fn oom_killed(counter: Option<&Path>) -> bool {
    counter
        .and_then(|p| std::fs::read_to_string(p).ok())
        .is_some_and(|text| oom_kills(&text) > 0)
}

pub(crate) fn oom_kills(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("oom_kill "))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .next()
        .unwrap_or(0)
}

/// Writes `exit.json` so that it is either absent or complete: temp file, fsync, rename, fsync dir.
pub(crate) fn write_exit_file(state_dir: &Path, info: &ExitInfo) -> Result<()> {
    let tmp = state_dir.join(".exit.json.tmp");
    let data = serde_json::to_vec(info).context("encode exit record")?;
    let mut f = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(&data).context("write exit record")?;
    f.sync_all().context("fsync exit record")?;
    drop(f);
    std::fs::rename(&tmp, state_dir.join(estiba_shim::EXIT_FILE_NAME))
        .context("rename exit record")?;
    File::open(state_dir)
        .and_then(|d| d.sync_all())
        .context("fsync state dir")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_paths() {
        let v1 = "12:pids:/estiba/c1\n4:memory:/estiba-shimtest/c1\n0::/\n";
        let v2 = "0::/estiba/c1\n";
        let cases: &[(&str, bool, Option<&str>)] = &[
            (
                v1,
                false,
                Some("/sys/fs/cgroup/memory/estiba-shimtest/c1/memory.oom_control"),
            ),
            (
                "5:cpu,memory:/x\n",
                false,
                Some("/sys/fs/cgroup/memory/x/memory.oom_control"),
            ),
            (v2, true, Some("/sys/fs/cgroup/estiba/c1/memory.events")),
            ("0::/\n", true, Some("/sys/fs/cgroup/memory.events")),
            (v2, false, None),
            ("", true, None),
        ];
        for &(text, unified, want) in cases {
            assert_eq!(
                oom_counter_path_from(text, unified),
                want.map(PathBuf::from),
                "{text}"
            );
        }
        assert_eq!(
            oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"),
            2
        );
        assert_eq!(oom_kills("low 0\nhigh 0\nmax 1\noom 1\noom_kill 0\n"), 0);
        assert_eq!(oom_kills("oom_kill_disable 0\nunder_oom 0\n"), 0);
    }
}
