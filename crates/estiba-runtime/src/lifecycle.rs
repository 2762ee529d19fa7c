//! The OCI lifecycle operations: create, start, kill, delete, pause, resume.

use std::path::Path;

use anyhow::{bail, Context};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;

use crate::cli::{CreateArgs, DeleteArgs, KillArgs, RunArgs};
use crate::execerr;
use crate::signal::parse_signal;
use crate::{container, reap, workload};

/// Creates the container: namespaces, cgroup, rootfs, and an init process that waits for
/// `start`. Our stdio becomes the container process's stdio.
pub(crate) fn create(root: &Path, args: &CreateArgs) -> anyhow::Result<()> {
    create_container(root, args).map(drop)
}

/// `run --detach`: `create` and `start` in one process, which saves the caller a second run of
/// the runtime (its start-up and a load of the state) between the two. A start that fails
/// deletes what the create made.
pub(crate) fn run(root: &Path, args: &RunArgs) -> anyhow::Result<()> {
    if !args.detach {
        bail!("run without --detach is not supported: use create and start, or run --detach");
    }
    let mut c = create_container(root, &args.create)?;
    if let Err(e) = c.start() {
        let err = anyhow::Error::new(e).context("start container");
        if let Err(d) = c.delete(true) {
            tracing::warn!("delete {} after a failed start: {d}", args.create.id);
        }
        workload::remove(root, &args.create.id);
        reap::reap_all_children();
        return Err(err);
    }
    Ok(())
}

fn create_container(root: &Path, args: &CreateArgs) -> anyhow::Result<Container> {
    container::validate_id(&args.id)?;
    let bundle = args
        .bundle
        .canonicalize()
        .with_context(|| format!("bundle {}", args.bundle.display()))?;
    let config = bundle.join("config.json");
    if !config.is_file() {
        bail!(
            "bundle {} has no config.json: {} not found",
            bundle.display(),
            config.display()
        );
    }
    // Parsed here as well as in libcontainer, so that a bad spec gets its parse error (with line
    // and column) rather than libcontainer's bare "oci spec error".
    let spec = container::read_spec(&bundle)?;
    if container::exists(root, &args.id)? {
        bail!("container with id exists: {}", args.id);
    }
    let dir = container::container_dir(root, &args.id)?;
    let prepared = workload::prepare(root, &args.id, &bundle, &spec)?;
    let (init_bundle, executor) = match prepared {
        Some(p) => (p.bundle, Some(p.executor)),
        None => (bundle.clone(), None),
    };
    let mut builder = ContainerBuilder::new(args.id.clone(), SyscallType::default());
    if let Some(executor) = executor {
        builder = builder.with_executor(executor);
    }
    let result = builder
        .with_pid_file(args.pid_file.as_ref())
        .and_then(|b| b.with_root_path(root))
        .and_then(|b| {
            b.with_console_socket(args.console_socket.as_ref())
                .with_preserved_fds(args.preserve_fds)
                .validate_id()
        })
        .and_then(|b| {
            b.as_init(&init_bundle)
                .with_systemd(false)
                .with_detach(true)
                .with_no_pivot(args.no_pivot)
                .build()
        });
    match result {
        Ok(c) => {
            if let Some(pid) = c.pid() {
                reap::reap_helpers(pid.as_raw());
            }
            Ok(c)
        }
        Err(LibcontainerError::Exist) => bail!("container with id exists: {}", args.id),
        Err(e) => {
            // libcontainer cleans up failures once the process is being built, not those before
            // (saving its config, the console socket): leave nothing behind either way.
            reap::reap_all_children();
            cleanup_failed_create(root, &args.id, &dir);
            workload::remove(root, &args.id);
            // libcontainer's wording for a command it cannot execute is its own; say what runc
            // says, whose wording the docker CLI turns into exit codes 126 and 127.
            let err = anyhow::Error::new(e).context("create container");
            let text = format!("{err:#}");
            if text.contains("not found in $PATH")
                || text.contains("does not have correct permissions")
            {
                if let Some(msg) = container::read_spec(&bundle)
                    .ok()
                    .and_then(|spec| execerr::describe(&bundle, &spec))
                {
                    bail!("{msg}");
                }
            }
            Err(err)
        }
    }
}

fn cleanup_failed_create(root: &Path, id: &str, dir: &Path) {
    if !dir.exists() {
        return;
    }
    if let Ok(mut c) = container::load(root, id) {
        if c.delete(true).is_ok() {
            return;
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(
            "remove state dir {} after a failed create: {e}",
            dir.display()
        );
    }
}

pub(crate) fn start(root: &Path, id: &str) -> anyhow::Result<()> {
    let mut c = container::load(root, id)?;
    match c.status() {
        ContainerStatus::Created => {}
        ContainerStatus::Stopped => bail!("cannot start a container that has stopped"),
        ContainerStatus::Running => bail!("cannot start an already running container"),
        other => bail!(
            "cannot start a container in the {} state",
            status_name(other)
        ),
    }
    c.start().context("start container")
}

pub(crate) fn kill(root: &Path, args: &KillArgs) -> anyhow::Result<()> {
    let signal = parse_signal(&args.signal)?;
    let mut c = container::load(root, &args.id)?;
    let before = c.status();
    let stopped_all = args.all && before == ContainerStatus::Stopped;
    if !(before.can_kill() || stopped_all) {
        bail!("container not running");
    }
    c.kill(signal, args.all).context("kill container")?;
    // libcontainer records every successful kill as "stopped", even SIGUSR1 to a paused or
    // created container. The status is refreshed from /proc on every load, so putting back the
    // previous status is always right: a dead process still reads as stopped.
    c.set_status(before)
        .save()
        .context("save container state")?;
    Ok(())
}

pub(crate) fn delete(root: &Path, args: &DeleteArgs) -> anyhow::Result<()> {
    if args.force && !container::exists(root, &args.id)? {
        container::validate_id(&args.id)?;
        workload::remove(root, &args.id);
        return Ok(());
    }
    let mut c = container::load(root, &args.id)?;
    match c.status() {
        ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Creating
            if !args.force =>
        {
            bail!(
                "cannot delete container {} that is not stopped: {}",
                args.id,
                status_name(c.status())
            )
        }
        _ => {}
    }
    c.delete(args.force).context("delete container")?;
    workload::remove(root, &args.id);
    Ok(())
}

pub(crate) fn pause(root: &Path, id: &str) -> anyhow::Result<()> {
    let mut c = container::load(root, id)?;
    match c.status() {
        ContainerStatus::Running => c.pause().context("pause container"),
        ContainerStatus::Paused => bail!("container already paused"),
        _ => bail!("container not running"),
    }
}

pub(crate) fn resume(root: &Path, id: &str) -> anyhow::Result<()> {
    let mut c = container::load(root, id)?;
    match c.status() {
        ContainerStatus::Paused => c.resume().context("resume container"),
        _ => bail!("container not paused"),
    }
}

/// The status names of the OCI state (and runc's output).
pub(crate) fn status_name(s: ContainerStatus) -> &'static str {
    match s {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}
