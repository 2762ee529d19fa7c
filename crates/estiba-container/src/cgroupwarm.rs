//! Hides the kernel's cgroup-migration grace period behind the daemon's own start-up work.
//!
//! Moving a process into a cgroup (the runtime writes the container's first process to
//! `cgroup.procs`, for `start` and for every `exec`) takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing. When no such write happened in the last few
//! milliseconds, that waits for a full RCU grace period: 6 to 10 ms here, measured as the largest
//! single wait of a `docker run` (a second write right after costs 0.05 ms). So when a start or
//! an exec begins, a thread moves the daemon into the cgroup it is already in (a no-op move that
//! takes the same lock): the grace period then elapses while the daemon mounts the rootfs, writes
//! the bundle and spawns the shim and the runtime, and the runtime's own write finds it passed.
//! An optimisation only: every failure is ignored.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Starts the no-op move on a thread of its own, unless one is already under way.
pub(crate) fn warm() {
    static BUSY: AtomicBool = AtomicBool::new(false);
    let Some(procs) = own_procs_file() else {
        return;
    };
    if BUSY.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cgroup-warm".into())
        .spawn(move || {
            let _ = std::fs::write(procs, std::process::id().to_string());
            BUSY.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        BUSY.store(false, Ordering::Release);
    }
}

/// The `cgroup.procs` of the cgroup this process is in: in the v1 `pids` hierarchy, or in the
/// unified hierarchy (mounted on /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).
fn own_procs_file() -> Option<&'static PathBuf> {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        candidates(&own).into_iter().find(|p| p.exists())
    })
    .as_ref()
}

/// Where `cgroup.procs` may be for each line of `/proc/self/cgroup`, in order of preference.
fn candidates(proc_self_cgroup: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if path.split('/').any(|c| c == "..") {
            continue;
        }
        if controllers.split(',').any(|c| c == "pids") {
            out.push(PathBuf::from("/sys/fs/cgroup/pids").join(path));
        } else if id == "0" && controllers.is_empty() {
            out.push(PathBuf::from("/sys/fs/cgroup").join(path));
            out.push(PathBuf::from("/sys/fs/cgroup/unified").join(path));
        }
    }
    out.into_iter().map(|d| d.join("cgroup.procs")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_cover_v1_hybrid_and_v2_hosts() {
        let v1 = "9:name=systemd:/\n8:pids:/system.slice/estibad.service\n7:blkio:/\n0::/\n";
        assert_eq!(
            candidates(v1),
            [
                "/sys/fs/cgroup/pids/system.slice/estibad.service/cgroup.procs",
                "/sys/fs/cgroup/cgroup.procs",
                "/sys/fs/cgroup/unified/cgroup.procs",
            ]
            .map(PathBuf::from)
        );
        let v2 = "0::/user.slice/session-1.scope\n";
        assert_eq!(
            candidates(v2)[0],
            PathBuf::from("/sys/fs/cgroup/user.slice/session-1.scope/cgroup.procs")
        );
        assert!(candidates("8:pids:/../../etc\nbogus\n").is_empty());
    }

    #[test]
    fn this_process_finds_its_own_cgroup() {
        // Every Linux host running the tests has one of the three layouts.
        assert!(own_procs_file().is_some());
    }
}
