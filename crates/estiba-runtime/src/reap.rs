//! Reaping what libcontainer leaves behind when an operation fails.
//!
//! A failed `exec` leaves the half-started process (already inside the container's pid
//! namespace) as our child. Left unreaped, it would be re-parented to the caller, a subreaper,
//! and the container's init could not finish dying until the caller reaped it: the kernel waits
//! for every process of a pid namespace before its init is gone.

use std::time::{Duration, Instant};

use rustix::process::WaitOptions;

/// Also wait for children whose exit signal is not SIGCHLD: libcontainer clones the container's
/// process with CLONE_PARENT and no exit signal.
pub(crate) fn wait_all() -> WaitOptions {
    WaitOptions::from_bits_retain(libc::__WALL as u32)
}

/// How long a failed operation waits for its children to exit.
const REAP_LIMIT: Duration = Duration::from_secs(2);
const REAP_POLL: Duration = Duration::from_millis(1);

/// Waits (bounded) until every child of this process has exited, and reaps them. Only for
/// failure paths: on success the container's processes are our children and must outlive us.
pub(crate) fn reap_all_children() {
    let start = Instant::now();
    loop {
        match rustix::process::wait(WaitOptions::NOHANG | wait_all()) {
            Ok(Some(_)) => continue,
            Ok(None) if start.elapsed() < REAP_LIMIT => std::thread::sleep(REAP_POLL),
            Ok(None) => {
                tracing::warn!("children still running {REAP_LIMIT:?} after a failure");
                return;
            }
            Err(rustix::io::Errno::INTR) => continue,
            // ECHILD: nothing left.
            Err(_) => return,
        }
    }
}

/// Reaps libcontainer's helper processes (the intermediate process that forked the container's
/// process) once an operation succeeded, leaving `keep`, the container's process, alone: its
/// exit status belongs to the caller. Without this the helpers would become zombie children of
/// the caller (a subreaper) for it to clean up.
pub(crate) fn reap_helpers(keep: i32) {
    let start = Instant::now();
    for pid in children() {
        if pid == keep {
            continue;
        }
        let Some(pid) = rustix::process::Pid::from_raw(pid) else {
            continue;
        };
        loop {
            match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG | wait_all()) {
                Ok(Some(_)) => break,
                Ok(None) if start.elapsed() < REAP_LIMIT => std::thread::sleep(REAP_POLL),
                Ok(None) => {
                    tracing::warn!("helper process {pid:?} still running; leaving it");
                    break;
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
    }
}

/// Our children, from /proc/self/task/*/children (one line of pids per thread).
fn children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for task in tasks.flatten() {
        let Ok(list) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        pids.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    pids
}
