//! `exec`: a new process in a running container's namespaces and cgroup. Like runc, the process
//! starts from the container's own process spec (user, env, cwd, capabilities, rlimits) with the
//! command-line flags applied on top, unless a whole process.json is given with `--process`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::ContainerStatus;
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::runtime::{Process, User};
use rustix::process::Pid;

use crate::cli::ExecArgs;
use crate::{container, reap, workload};

/// runc's exit status for a process killed by a signal: 128 + the signal number.
const SIGNAL_EXIT_OFFSET: i32 = 128;
/// Upper bound on the size of an exec command line built from flags.
const MAX_ARGS: usize = 64 * 1024;

/// Runs the process; returns its exit status (0 at once when detached).
pub(crate) fn exec(root: &Path, args: &ExecArgs) -> anyhow::Result<i32> {
    let c = container::load(root, &args.id)?;
    match c.status() {
        ContainerStatus::Running => {}
        ContainerStatus::Paused => bail!("cannot exec in a paused container"),
        _ => bail!("cannot exec in a stopped container"),
    }

    // The process spec always goes to libcontainer as a file: its flag path cannot express a
    // terminal, and defaults the user to root where runc keeps the container's user.
    let filter = workload::filter_of(&c.state.bundle)?;
    // The process spec built here lives in an anonymous memory file that libcontainer opens by
    // its /proc/self/fd path: no file to create (an inode on the state root's filesystem) and
    // none to remove.
    let mut _memfd = None;
    let (process_file, executor) = match (&args.process, filter) {
        (Some(p), None) => (p.clone(), None),
        (given, filter) => {
            let mut process = match given {
                Some(p) => read_process(p)?,
                None => {
                    let bundle = workload::original_bundle(&c.state.bundle);
                    let spec = container::read_spec(&bundle)?;
                    process_from_flags(spec.process().clone().unwrap_or_default(), args)?
                }
            };
            // A container with a precompiled filter runs its execs under it too (the derived
            // spec libcontainer reads has no profile).
            let executor = match filter {
                Some(filter) => {
                    let lift = workload::Lift::apply(&mut process).with_context(|| {
                        "exec process without capabilities in a container with a seccomp filter"
                    })?;
                    Some(workload::FilterExecutor::new(filter, lift))
                }
                None => None,
            };
            let json = serde_json::to_vec(&process).context("serialize exec process")?;
            let fd =
                rustix::fs::memfd_create("estiba-exec-process", rustix::fs::MemfdFlags::CLOEXEC)
                    .context("memfd_create for the exec process")?;
            let mut file = std::fs::File::from(fd);
            std::io::Write::write_all(&mut file, &json).context("write exec process")?;
            let path = PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&file)
            ));
            _memfd = Some(file);
            (path, executor)
        }
    };

    let mut builder = ContainerBuilder::new(args.id.clone(), SyscallType::default());
    if let Some(executor) = executor {
        builder = builder.with_executor(executor);
    }
    let built = builder
        .with_root_path(root)
        .and_then(|b| {
            b.with_console_socket(args.console_socket.as_ref())
                .with_pid_file(args.pid_file.as_ref())
        })
        .and_then(|b| b.with_preserved_fds(args.preserve_fds).validate_id())
        .and_then(|b| {
            b.as_tenant()
                .with_detach(args.detach)
                .with_process(Some(&process_file))
                .build()
        });
    let pid = match built {
        Ok(pid) => pid,
        Err(e) => {
            reap::reap_all_children();
            return Err(anyhow::Error::new(e).context("exec process"));
        }
    };
    reap::reap_helpers(pid.as_raw());
    if args.detach {
        return Ok(0);
    }
    let pid = Pid::from_raw(pid.as_raw()).context("exec returned an invalid pid")?;
    wait_exit_status(pid)
}

fn wait_exit_status(pid: Pid) -> anyhow::Result<i32> {
    loop {
        match rustix::process::waitpid(Some(pid), reap::wait_all()) {
            Ok(Some((_, status))) => {
                if let Some(code) = status.exit_status() {
                    return Ok(code);
                }
                if let Some(sig) = status.terminating_signal() {
                    return Ok(SIGNAL_EXIT_OFFSET + sig);
                }
            }
            Ok(None) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).context("wait for exec process"),
        }
    }
}

/// Most bytes of a process.json read.
const MAX_PROCESS_BYTES: u64 = 16 * 1024 * 1024;

/// A `--process` file.
fn read_process(path: &Path) -> anyhow::Result<Process> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PROCESS_BYTES + 1).read_to_end(&mut data))
        .with_context(|| format!("read process {}", path.display()))?;
    if data.len() as u64 > MAX_PROCESS_BYTES {
        bail!(
            "{} is larger than {MAX_PROCESS_BYTES} bytes",
            path.display()
        );
    }
    serde_json::from_slice(&data).with_context(|| format!("parse process {}", path.display()))
}

/// The container's process spec with the exec flags applied, as runc's `exec` builds it.
fn process_from_flags(mut p: Process, args: &ExecArgs) -> anyhow::Result<Process> {
    if args.command.is_empty() {
        bail!("exec: no command given (pass a command or --process)");
    }
    if args.command.iter().map(String::len).sum::<usize>() > MAX_ARGS {
        bail!("exec: command line longer than {MAX_ARGS} bytes");
    }
    p.set_args(Some(args.command.clone()));
    p.set_terminal(Some(args.tty));
    p.set_console_size(None);
    if let Some(cwd) = &args.cwd {
        if !cwd.is_absolute() {
            bail!("cwd {} is not an absolute path", cwd.display());
        }
        p.set_cwd(cwd.clone());
    }
    let env = merge_env(p.env().clone().unwrap_or_default(), &args.env)?;
    p.set_env(Some(env));
    let mut user = p.user().clone();
    if let Some(spec) = &args.user {
        let (uid, gid) = parse_user(spec)?;
        user = User::default();
        user.set_uid(uid);
        user.set_gid(gid.unwrap_or(0));
    }
    if !args.additional_gids.is_empty() {
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend_from_slice(&args.additional_gids);
        user.set_additional_gids(Some(gids));
    }
    p.set_user(user);
    if args.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !args.cap.is_empty() {
        add_capabilities(&mut p, &args.cap)?;
    }
    Ok(p)
}

/// Replaces variables of the same name, appends new ones; every entry must be KEY=VALUE.
fn merge_env(mut env: Vec<String>, extra: &[String]) -> anyhow::Result<Vec<String>> {
    for kv in extra {
        let Some((key, _)) = kv.split_once('=') else {
            bail!("invalid environment variable {kv:?}: expected KEY=VALUE");
        };
        if key.is_empty() {
            bail!("invalid environment variable {kv:?}: empty name");
        }
        let prefix = format!("{key}=");
        match env.iter_mut().find(|e| e.starts_with(&prefix)) {
            Some(slot) => slot.clone_from(kv),
            None => env.push(kv.clone()),
        }
    }
    Ok(env)
}

/// `uid` or `uid:gid`, numbers only (names are resolved by the caller, as with runc).
fn parse_user(spec: &str) -> anyhow::Result<(u32, Option<u32>)> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = u
        .parse::<u32>()
        .map_err(|_| anyhow::anyhow!("invalid user {spec:?}: expected uid[:gid]"))?;
    let gid = g
        .map(|g| {
            g.parse::<u32>()
                .map_err(|_| anyhow::anyhow!("invalid user {spec:?}: expected uid[:gid]"))
        })
        .transpose()?;
    Ok((uid, gid))
}

fn add_capabilities(p: &mut Process, caps: &[String]) -> anyhow::Result<()> {
    use oci_spec::runtime::Capability;
    let mut set = p.capabilities().clone().unwrap_or_default();
    let mut bounding = set.bounding().clone().unwrap_or_default();
    let mut effective = set.effective().clone().unwrap_or_default();
    let mut permitted = set.permitted().clone().unwrap_or_default();
    for name in caps {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        let cap: Capability = serde_json::from_value(serde_json::Value::String(full))
            .map_err(|_| anyhow::anyhow!("unknown capability {name:?}"))?;
        bounding.insert(cap);
        effective.insert(cap);
        permitted.insert(cap);
    }
    set.set_bounding(Some(bounding))
        .set_effective(Some(effective))
        .set_permitted(Some(permitted));
    p.set_capabilities(Some(set));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        type Uid = (u32, Option<u32>);
        let cases: &[(&str, Option<Uid>)] = &[
            ("0", Some((0, None))),
            ("1000:100", Some((1000, Some(100)))),
            ("65534:65534", Some((65534, Some(65534)))),
            ("nobody", None),
            ("1:x", None),
            ("", None),
            ("-1", None),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_user(spec).ok(), *want, "user {spec:?}");
        }
    }

    #[test]
    fn env_merges_by_name() {
        let base = vec!["PATH=/bin".to_owned(), "A=1".to_owned()];
        let got = merge_env(base.clone(), &["A=2".into(), "B=3".into(), "C=".into()]).ok();
        assert_eq!(
            got,
            Some(vec![
                "PATH=/bin".into(),
                "A=2".into(),
                "B=3".into(),
                "C=".into()
            ])
        );
        assert!(merge_env(base.clone(), &["NOEQUALS".into()]).is_err());
        assert!(merge_env(base, &["=x".into()]).is_err());
    }
}
