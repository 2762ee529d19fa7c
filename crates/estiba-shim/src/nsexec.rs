//! `exec` without the runtime, for containers estiba-runtime started with a precompiled seccomp
//! filter (Docker's default case).
//!
//! `estiba-runtime exec` costs ~6 ms before the process runs: the runtime's exec and start-up,
//! its state load, libcontainer's intermediate and init processes. What an exec needs is the
//! container's namespaces and cgroups, the process spec's user, capabilities, rlimits, cwd and
//! env, and the container's filter, and the shim has all of it at hand, so it does what runc's
//! `exec` does itself:
//!
//! 1. the shim reads the spec, the filter (`<runtime-root>/.bundles/<id>/seccomp.bpf`), opens
//!    the init's namespaces and the `cgroup.procs` files of its cgroups, and forks;
//! 2. the first child joins the cgroups (writing "0"), then the namespaces (the mount namespace
//!    last), and forks again, so that the second child is inside the pid namespace; it reports
//!    that pid and exits, and the second child is re-parented to the shim (a child subreaper);
//! 3. the second child takes its stdio, starts a session, applies rlimits and the umask,
//!    installs the filter while it is still root with every capability (as runc does without
//!    no_new_privs), drops the bounding set, switches to the user with its groups, changes to
//!    the cwd, sets its capabilities, and execs the command found along the spec's `PATH`.
//!    A failure before the exec is written to a close-on-exec pipe in runc's words.
//!
//! Anything else falls back to the runtime: a tty (the pty must come from the container's
//! devpts), a user or time namespace, an AppArmor or SELinux label, scheduler, I/O priority or
//! CPU affinity settings, a spec without capabilities, a frozen cgroup, a container without a
//! derived bundle (another runtime, no filter, a profile left to libcontainer).
//!
//! The module is one of the shim's three with `unsafe` code: `fork`, `_exit`, `execve` and
//! `close_range` have no safe wrapper.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use estiba_bpf::Filter;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{Pid, Resource, Rlimit, WaitOptions};
use rustix::thread::{CapabilitySet, CapabilitySets};
use serde::Deserialize;

use crate::runtime::Runtime;

/// Most bytes of a process spec read.
const MAX_PROCESS_BYTES: u64 = 16 * 1024 * 1024;
/// Most bytes of the container's /etc/passwd read for HOME.
const MAX_PASSWD_BYTES: u64 = 4 * 1024 * 1024;
/// Most bytes of an error message from a child.
const MAX_MESSAGE_BYTES: u64 = 4096;
/// How long the children may take to report (a cgroup frozen meanwhile would block them).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The namespaces an exec joins, the mount namespace last (after it, /proc is the container's).
const NAMESPACES: [&str; 6] = ["ipc", "uts", "net", "pid", "cgroup", "mnt"];
/// Namespaces that send the exec to the runtime when the container has its own.
const UNSUPPORTED_NAMESPACES: [&str; 2] = ["user", "time"];
/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// `statfs` type of a cgroup2 mount (linux/magic.h).
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
/// runc's default when the spec's env has no PATH.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    #[serde(default)]
    terminal: bool,
    #[serde(default)]
    user: User,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    cwd: String,
    #[serde(default)]
    capabilities: Option<Capabilities>,
    #[serde(default)]
    rlimits: Vec<RlimitSpec>,
    #[serde(default)]
    no_new_privileges: bool,
    #[serde(default)]
    apparmor_profile: String,
    #[serde(default)]
    selinux_label: String,
    #[serde(default)]
    oom_score_adj: Option<i32>,
    #[serde(default)]
    scheduler: Option<serde_json::Value>,
    #[serde(default)]
    io_priority: Option<serde_json::Value>,
    #[serde(default, rename = "execCPUAffinity")]
    exec_cpu_affinity: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct User {
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
    #[serde(default)]
    umask: Option<u32>,
    #[serde(default)]
    additional_gids: Vec<u32>,
}

#[derive(Deserialize, Default)]
struct Capabilities {
    #[serde(default)]
    bounding: Vec<String>,
    #[serde(default)]
    effective: Vec<String>,
    #[serde(default)]
    inheritable: Vec<String>,
    #[serde(default)]
    permitted: Vec<String>,
    #[serde(default)]
    ambient: Vec<String>,
}

#[derive(Deserialize)]
struct RlimitSpec {
    #[serde(rename = "type")]
    kind: String,
    hard: u64,
    soft: u64,
}

/// Capability sets as the kernel takes them.
struct Caps {
    bounding: CapabilitySet,
    sets: CapabilitySets,
    ambient: CapabilitySet,
}

/// Everything the children need, prepared before the fork.
struct Plan<'a> {
    cgroup_procs: Vec<OwnedFd>,
    namespaces: Vec<OwnedFd>,
    stdio: &'a [OwnedFd; 3],
    filter: Filter,
    no_new_privs: bool,
    rlimits: Vec<(Resource, Rlimit)>,
    oom_score_adj: Option<i32>,
    umask: u32,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    caps: Caps,
    cwd: CString,
    cwd_text: String,
    args: Vec<CString>,
    env: Vec<String>,
}

/// Starts the exec's process when this path applies: `Ok(None)` leaves it to the runtime, and
/// then nothing has been done.
pub(crate) fn try_start(
    runtime: &Runtime,
    init_pid: u32,
    process_path: &Path,
    stdio: &[OwnedFd; 3],
) -> Result<Option<u32>> {
    let Some(root) = &runtime.root else {
        return Ok(None);
    };
    let filter_path = root.join(".bundles").join(&runtime.id).join("seccomp.bpf");
    let filter = match std::fs::read(&filter_path) {
        Ok(bytes) => {
            Filter::from_bytes(&bytes).with_context(|| format!("read {}", filter_path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read {}", filter_path.display())),
    };
    let process = read_process(process_path)?;
    if process.terminal
        || !process.apparmor_profile.is_empty()
        || !process.selinux_label.is_empty()
        || process.scheduler.is_some()
        || process.io_priority.is_some()
        || process.exec_cpu_affinity.is_some()
    {
        return Ok(None);
    }
    let Some(capabilities) = &process.capabilities else {
        return Ok(None);
    };
    let proc_dir = PathBuf::from(format!("/proc/{init_pid}"));
    for ns in UNSUPPORTED_NAMESPACES {
        if !same_namespace(&proc_dir, ns)? {
            return Ok(None);
        }
    }
    let Some(cgroups) = cgroup_dirs(&proc_dir)? else {
        return Ok(None);
    };
    if cgroups.iter().any(|(dir, freezer)| *freezer && frozen(dir)) {
        return Ok(None);
    }
    if process.args.is_empty() {
        bail!("exec failed: unable to start container process: args must not be empty");
    }
    if !process.cwd.starts_with('/') {
        bail!(
            "exec failed: unable to start container process: cwd {:?} is not an absolute path",
            process.cwd
        );
    }
    let caps = Caps {
        bounding: cap_set(&capabilities.bounding)?,
        sets: CapabilitySets {
            effective: cap_set(&capabilities.effective)?,
            permitted: cap_set(&capabilities.permitted)?,
            inheritable: cap_set(&capabilities.inheritable)?,
        },
        ambient: cap_set(&capabilities.ambient)?,
    };
    let mut namespaces = Vec::with_capacity(NAMESPACES.len());
    for ns in NAMESPACES {
        if !same_namespace(&proc_dir, ns)? {
            let path = proc_dir.join("ns").join(ns);
            let file =
                std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
            namespaces.push(OwnedFd::from(file));
        }
    }
    let mut cgroup_procs = Vec::with_capacity(cgroups.len());
    for (dir, _) in &cgroups {
        let path = dir.join("cgroup.procs");
        match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(file) => cgroup_procs.push(OwnedFd::from(file)),
            // A hierarchy mounted somewhere this view does not reach: the runtime's own
            // discovery decides.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
        }
    }
    let rlimits = process
        .rlimits
        .iter()
        .map(|r| {
            let resource = resource(&r.kind)?;
            let limit = |v: u64| (v != u64::MAX).then_some(v);
            Ok((
                resource,
                Rlimit {
                    current: limit(r.soft),
                    maximum: limit(r.hard),
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let args = process
        .args
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| anyhow!("exec: argument with a NUL")))
        .collect::<Result<Vec<_>>>()?;
    if process.env.iter().any(|e| e.contains('\0')) {
        bail!("exec: environment variable with a NUL");
    }
    let plan = Plan {
        cgroup_procs,
        namespaces,
        stdio,
        filter,
        no_new_privs: process.no_new_privileges,
        rlimits,
        oom_score_adj: process.oom_score_adj,
        umask: process.user.umask.unwrap_or(0o022),
        uid: process.user.uid,
        gid: process.user.gid,
        groups: process.user.additional_gids.clone(),
        caps,
        cwd: CString::new(process.cwd.as_bytes()).map_err(|_| anyhow!("exec: cwd with a NUL"))?,
        cwd_text: process.cwd.clone(),
        args,
        env: process.env.clone(),
    };
    start(&plan).map(Some)
}

fn read_process(path: &Path) -> Result<Process> {
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PROCESS_BYTES + 1).read_to_end(&mut data))
        .with_context(|| format!("read process {}", path.display()))?;
    if data.len() as u64 > MAX_PROCESS_BYTES {
        bail!("process {} is too large", path.display());
    }
    serde_json::from_slice(&data).with_context(|| format!("parse process {}", path.display()))
}

/// Whether the init's namespace `ns` is the shim's own.
fn same_namespace(proc_dir: &Path, ns: &str) -> Result<bool> {
    let theirs = proc_dir.join("ns").join(ns);
    let theirs = match std::fs::metadata(&theirs) {
        Ok(m) => m,
        // A kernel without that namespace type: nobody has one of their own.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e).with_context(|| format!("stat {}", theirs.display())),
    };
    let ours = std::fs::metadata(format!("/proc/self/ns/{ns}"))
        .with_context(|| format!("stat /proc/self/ns/{ns}"))?;
    Ok(theirs.dev() == ours.dev() && theirs.ino() == ours.ino())
}

/// The host directories of the init's cgroups, one per hierarchy that is mounted here, and
/// whether that hierarchy can freeze (v1 `freezer`, or v2); `None` when one of its hierarchies
/// cannot be found (the runtime knows better then).
fn cgroup_dirs(proc_dir: &Path) -> Result<Option<Vec<(PathBuf, bool)>>> {
    let cgroups = std::fs::read_to_string(proc_dir.join("cgroup"))
        .with_context(|| format!("read {}/cgroup", proc_dir.display()))?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    let mut mounts = cgroup_mounts(&mountinfo);
    // A unified host (or a view where cgroup2 sits on /sys/fs/cgroup, over v1 mounts that
    // mountinfo still lists): only the v2 hierarchy counts, as for the runtime.
    let unified = rustix::fs::statfs(CGROUP_ROOT)
        .is_ok_and(|st| u64::try_from(st.f_type).ok() == Some(CGROUP2_SUPER_MAGIC));
    if unified {
        mounts.retain(|m| m.v2 && m.mountpoint == Path::new(CGROUP_ROOT));
    }
    let mut dirs = Vec::new();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let wanted: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
        if unified && !wanted.is_empty() {
            continue;
        }
        // The last mount of a hierarchy is the one on top.
        let mount = mounts.iter().rev().find(|m| {
            if wanted.is_empty() {
                m.v2
            } else {
                !m.v2 && wanted.iter().all(|c| m.options.iter().any(|o| o == c))
            }
        });
        let Some(mount) = mount else {
            // A v1 hierarchy nobody mounted (e.g. a named one): nothing to join there.
            if wanted.is_empty() {
                return Ok(None);
            }
            continue;
        };
        let Some(rel) = Path::new(path).strip_prefix(&mount.root).ok() else {
            return Ok(None);
        };
        let freezer = mount.v2 || wanted.contains(&"freezer");
        dirs.push((mount.mountpoint.join(rel), freezer));
    }
    Ok(Some(dirs))
}

struct CgroupMount {
    v2: bool,
    root: PathBuf,
    mountpoint: PathBuf,
    options: Vec<String>,
}

/// cgroup and cgroup2 mounts in a mountinfo, first mount of each first.
fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if fields.len() < 5 || right.len() < 3 {
            continue;
        }
        let v2 = match right[0] {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        out.push(CgroupMount {
            v2,
            root: PathBuf::from(unescape(fields[3])),
            mountpoint: PathBuf::from(unescape(fields[4])),
            options: right[2].split(',').map(str::to_owned).collect(),
        });
    }
    out
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let code = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok());
            if let Some(v) = code {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the cgroup at `dir` is frozen (v1 freezer or v2 `cgroup.events`).
fn frozen(dir: &Path) -> bool {
    if let Ok(state) = std::fs::read_to_string(dir.join("freezer.state")) {
        return state.trim() != "THAWED";
    }
    if let Ok(events) = std::fs::read_to_string(dir.join("cgroup.events")) {
        return events.lines().any(|l| l.trim() == "frozen 1");
    }
    false
}

fn cap_set(names: &[String]) -> Result<CapabilitySet> {
    let mut set = CapabilitySet::empty();
    for name in names {
        let bare = name.strip_prefix("CAP_").unwrap_or(name);
        let cap =
            CapabilitySet::from_name(bare).ok_or_else(|| anyhow!("unknown capability {name:?}"))?;
        set |= cap;
    }
    Ok(set)
}

fn resource(name: &str) -> Result<Resource> {
    Ok(match name {
        "RLIMIT_CPU" => Resource::Cpu,
        "RLIMIT_FSIZE" => Resource::Fsize,
        "RLIMIT_DATA" => Resource::Data,
        "RLIMIT_STACK" => Resource::Stack,
        "RLIMIT_CORE" => Resource::Core,
        "RLIMIT_RSS" => Resource::Rss,
        "RLIMIT_NPROC" => Resource::Nproc,
        "RLIMIT_NOFILE" => Resource::Nofile,
        "RLIMIT_MEMLOCK" => Resource::Memlock,
        "RLIMIT_AS" => Resource::As,
        "RLIMIT_LOCKS" => Resource::Locks,
        "RLIMIT_SIGPENDING" => Resource::Sigpending,
        "RLIMIT_MSGQUEUE" => Resource::Msgqueue,
        "RLIMIT_NICE" => Resource::Nice,
        "RLIMIT_RTPRIO" => Resource::Rtprio,
        "RLIMIT_RTTIME" => Resource::Rttime,
        other => bail!("unknown rlimit {other:?}"),
    })
}

/// Forks the first child and waits for the second one's pid and its exec (or its error).
fn start(plan: &Plan) -> Result<u32> {
    let (pid_read, pid_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("pipe")?;
    let (err_read, err_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("pipe")?;
    // SAFETY: the shim is single-threaded (std and poll(2), no thread is ever started), so the
    // child is a complete copy of the only thread; it only runs `first_child`, which never
    // returns.
    let first = unsafe { libc::fork() };
    if first < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if first == 0 {
        drop(pid_read);
        drop(err_read);
        first_child(plan, &pid_write, &err_write);
    }
    drop(pid_write);
    drop(err_write);
    let first = Pid::from_raw(first).context("fork returned a bad pid")?;
    let deadline = Instant::now() + START_TIMEOUT;
    let pid_bytes = read_all(&pid_read, 4, deadline);
    // The first child exits right after it wrote the pid (or failed).
    let _ = rustix::process::waitpid(Some(first), WaitOptions::empty());
    let message = read_all(&err_read, MAX_MESSAGE_BYTES as usize, deadline)?;
    let pid_bytes = pid_bytes?;
    let pid = <[u8; 4]>::try_from(pid_bytes.as_slice())
        .ok()
        .map(u32::from_ne_bytes)
        .filter(|&p| p > 0);
    if !message.is_empty() {
        // The second child, if there was one, has exited: the shim reaps it with the others.
        bail!("exec failed: {}", String::from_utf8_lossy(&message));
    }
    pid.ok_or_else(|| anyhow!("exec failed: the process did not start"))
}

/// Reads until EOF or `max` bytes; an error when the deadline passes first.
fn read_all(fd: &OwnedFd, max: usize, deadline: Instant) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 1024];
    while out.len() < max {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("exec: the process did not start within {START_TIMEOUT:?}");
        }
        let ts = Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e).context("poll"),
        }
        let want = chunk.len().min(max - out.len());
        match rustix::io::read(fd, &mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(e) => return Err(e).context("read"),
        }
    }
    Ok(out)
}

/// Ends a child without running the shim's exit handlers or flushing its buffers.
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` only ends the calling process; nothing of ours runs after it.
    unsafe { libc::_exit(code) }
}

/// Joins the cgroups and namespaces, forks the second child, reports its pid.
fn first_child(plan: &Plan, pid_out: &OwnedFd, err_out: &OwnedFd) -> ! {
    // Before anything of the container can see this process: not dumpable, so a container
    // process without CAP_SYS_PTRACE can neither ptrace it nor open its /proc entries (the
    // descriptors it holds) before the exec, which makes the program dumpable again (runc does
    // the same, CVE-2016-9962).
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        fail(err_out, &format!("prctl(PR_SET_DUMPABLE): {e}"));
    }
    for fd in &plan.cgroup_procs {
        if let Err(e) = rustix::io::write(fd, b"0") {
            fail(
                err_out,
                &format!("unable to join the container's cgroup: {e}"),
            );
        }
    }
    for fd in &plan.namespaces {
        if let Err(e) = rustix::thread::move_into_link_name_space(fd.as_fd(), None) {
            fail(
                err_out,
                &format!("unable to join the container's namespaces: {e}"),
            );
        }
    }
    // SAFETY: this process is a single-threaded copy of the shim (see `start`); the child
    // runs `second_child`, which never returns.
    let second = unsafe { libc::fork() };
    if second < 0 {
        fail(
            err_out,
            &format!("fork: {}", std::io::Error::last_os_error()),
        );
    }
    if second == 0 {
        let err = second_child(plan, err_out);
        fail(
            err_out,
            &format!("unable to start container process: {err}"),
        );
    }
    let _ = rustix::io::write(pid_out, &second.to_ne_bytes());
    exit_now(0)
}

fn fail(err_out: &OwnedFd, message: &str) -> ! {
    let _ = rustix::io::write(err_out, message.as_bytes());
    exit_now(127)
}

/// Becomes the exec's process; returns only on failure, with runc's wording.
fn second_child(plan: &Plan, err_out: &OwnedFd) -> String {
    match setup_and_exec(plan, err_out) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn setup_and_exec(plan: &Plan, err_out: &OwnedFd) -> Result<std::convert::Infallible, String> {
    let [stdin, stdout, stderr] = plan.stdio;
    rustix::stdio::dup2_stdin(stdin)
        .and_then(|()| rustix::stdio::dup2_stdout(stdout))
        .and_then(|()| rustix::stdio::dup2_stderr(stderr))
        .map_err(|e| format!("set up stdio: {e}"))?;
    close_others_on_exec(err_out)?;
    rustix::process::setsid().map_err(|e| format!("setsid: {e}"))?;
    for (resource, limit) in &plan.rlimits {
        rustix::process::setrlimit(*resource, *limit)
            .map_err(|e| format!("error setting rlimit type {}: {e}", *resource as u32))?;
    }
    if let Some(adj) = plan.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("set oom_score_adj: {e}"))?;
    }
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(plan.umask));
    if !plan.no_new_privs {
        // Without no_new_privs the filter needs CAP_SYS_ADMIN: install it while we are root
        // with every capability, before the drop (runc's order).
        plan.filter
            .install()
            .map_err(|e| format!("error loading seccomp filter into kernel: {e}"))?;
    }
    for cap in CapabilitySet::all().iter() {
        if !plan.caps.bounding.contains(cap) {
            match rustix::thread::remove_capability_from_bounding_set(cap) {
                // A capability this kernel does not know.
                Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                Err(e) => return Err(format!("drop bounding capabilities: {e}")),
            }
        }
    }
    rustix::thread::set_keep_capabilities(true).map_err(|e| format!("keep caps: {e}"))?;
    let groups: Vec<rustix::process::Gid> = plan
        .groups
        .iter()
        .map(|&g| rustix::process::Gid::from_raw(g))
        .collect();
    rustix::thread::set_thread_groups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    let gid = rustix::process::Gid::from_raw(plan.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(|e| format!("setgid: {e}"))?;
    let uid = rustix::process::Uid::from_raw(plan.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(|e| format!("setuid: {e}"))?;
    rustix::thread::set_keep_capabilities(false).map_err(|e| format!("keep caps: {e}"))?;
    if let Err(e) = rustix::process::chdir(plan.cwd.as_c_str()) {
        return Err(format!(
            "chdir to cwd ({:?}) set in config.json failed: {}",
            plan.cwd_text,
            errno_text(e)
        ));
    }
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: plan.caps.sets.effective,
            permitted: plan.caps.sets.permitted,
            inheritable: plan.caps.sets.inheritable,
        },
    )
    .map_err(|e| format!("unable to apply caps: {e}"))?;
    for cap in plan.caps.ambient.iter() {
        rustix::thread::configure_capability_in_ambient_set(cap, true)
            .map_err(|e| format!("unable to apply ambient caps: {e}"))?;
    }
    let mut env = plan.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(plan.uid)));
    }
    if plan.no_new_privs {
        rustix::thread::set_no_new_privs(true).map_err(|e| format!("no_new_privs: {e}"))?;
        plan.filter
            .install()
            .map_err(|e| format!("error loading seccomp filter into kernel: {e}"))?;
    }
    let name = plan.args[0].to_string_lossy().into_owned();
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let program = look_path(&name, path_var)?;
    let env: Vec<CString> = env
        .into_iter()
        .filter_map(|e| CString::new(e).ok())
        .collect();
    let mut argv: Vec<*const libc::c_char> = plan.args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: `program`, `argv` and `envp` are NUL-terminated strings and NULL-terminated
    // arrays of pointers into `plan.args` and `env`, all alive across the call; execve only
    // returns on failure.
    unsafe { libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    let e = std::io::Error::last_os_error();
    Err(format!(
        "exec {}: {}",
        program.to_string_lossy(),
        e.raw_os_error()
            .map(|n| errno_text(rustix::io::Errno::from_raw_os_error(n)))
            .unwrap_or_else(|| e.to_string())
    ))
}

/// Marks every descriptor above stderr close-on-exec (the error pipe already is).
fn close_others_on_exec(err_out: &OwnedFd) -> Result<(), String> {
    debug_assert!(err_out.as_raw_fd() > 2);
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors; no memory
    // of ours is involved.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        return Err(format!("close_range: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Go's lower-case errno wording, as runc prints it.
fn errno_text(e: rustix::io::Errno) -> String {
    match e {
        rustix::io::Errno::NOENT => "no such file or directory".into(),
        rustix::io::Errno::ACCESS => "permission denied".into(),
        rustix::io::Errno::NOTDIR => "not a directory".into(),
        rustix::io::Errno::NOEXEC => "exec format error".into(),
        other => {
            let text = std::io::Error::from(other).to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}

/// The home directory of `uid` in the container's /etc/passwd, else "/" (runc's default).
fn home_of(uid: u32) -> String {
    let mut text = String::new();
    let read = std::fs::File::open("/etc/passwd")
        .and_then(|f| f.take(MAX_PASSWD_BYTES).read_to_string(&mut text));
    if read.is_err() {
        return "/".into();
    }
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 7 && fields[2].parse::<u32>() == Ok(uid)).then(|| fields[5])
        })
        .next()
        .filter(|h| !h.is_empty())
        .unwrap_or("/")
        .to_owned()
}

/// Go's `exec.LookPath` in the container, with runc's messages.
fn look_path(name: &str, path_var: &str) -> Result<CString, String> {
    let cstring = |p: &str| CString::new(p).map_err(|_| format!("exec: {name:?}: bad path"));
    if name.contains('/') {
        return match executable(Path::new(name)) {
            Ok(()) => cstring(name),
            Err(rustix::io::Errno::NOENT) => Err(format!(
                "exec: {name:?}: stat {name}: no such file or directory"
            )),
            Err(e) => Err(format!("exec: {name:?}: {}", errno_text(e))),
        };
    }
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = format!("{dir}/{name}");
        if executable(Path::new(&candidate)).is_ok() {
            return cstring(&candidate);
        }
    }
    Err(format!(
        "exec: {name:?}: executable file not found in $PATH"
    ))
}

/// A regular file with an execute bit (what Go's LookPath checks).
fn executable(path: &Path) -> Result<(), rustix::io::Errno> {
    let meta = std::fs::metadata(path).map_err(|e| {
        e.raw_os_error()
            .map_or(rustix::io::Errno::IO, rustix::io::Errno::from_raw_os_error)
    })?;
    if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        Ok(())
    } else {
        Err(rustix::io::Errno::ACCESS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_mounts_of_a_hybrid_host() {
        let mountinfo = "\
25 30 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
31 25 0:29 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids
";
        let mounts = cgroup_mounts(mountinfo);
        assert_eq!(mounts.len(), 4);
        assert!(mounts[0].v2);
        assert_eq!(mounts[0].mountpoint, Path::new("/sys/fs/cgroup/unified"));
        assert!(mounts[1].options.iter().any(|o| o == "name=systemd"));
        assert_eq!(mounts[3].mountpoint, Path::new("/sys/fs/cgroup/with space"));
    }

    #[test]
    fn capability_names_and_rlimits() {
        let set = cap_set(&["CAP_CHOWN".into(), "CAP_NET_BIND_SERVICE".into()]).unwrap();
        assert_eq!(set, CapabilitySet::CHOWN | CapabilitySet::NET_BIND_SERVICE);
        assert!(cap_set(&["CAP_NOPE".into()]).is_err());
        assert!(matches!(resource("RLIMIT_NOFILE"), Ok(Resource::Nofile)));
        assert!(resource("RLIMIT_X").is_err());
    }

    #[test]
    fn errno_wording_follows_go() {
        assert_eq!(
            errno_text(rustix::io::Errno::NOENT),
            "no such file or directory"
        );
        assert_eq!(
            errno_text(rustix::io::Errno::PERM),
            "operation not permitted"
        );
    }
}
