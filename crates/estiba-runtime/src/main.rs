//! estiba-runtime: an OCI runtime on youki's libcontainer with runc's command-line contract
//! (global flags, subcommands, exit codes, `--log` lines), so the shim drives it, runc or crun
//! the same way.

mod cgroup;
mod cli;
mod container;
mod exec;
mod execerr;
mod features;
mod lifecycle;
mod log;
mod reap;
mod seccomp;
mod signal;
mod state;
mod workload;

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::log::Logger;

fn main() -> ExitCode {
    let cli = Cli::parse();

    let logger = match Logger::new(cli.log.as_deref(), cli.log_format) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("estiba-runtime: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if cli.debug {
        logger.install_tracing(tracing::Level::DEBUG);
    }

    // A process that enters the container can be attacked through /proc/self/exe
    // (CVE-2019-5736): run from a sealed in-memory copy of ourselves. Only create and exec put a
    // process of ours inside a container, and the copy costs a few milliseconds. The failure
    // goes to the --log file: for create, our stderr is the container's, which nobody reads
    // as the runtime's error.
    // A binary on a read-only mount (estiba-shim runs us from a detached read-only bind of
    // ourselves) cannot be written through /proc/self/exe either: no copy is needed then.
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) && !exe_is_read_only()
    {
        if let Err(e) = pentacle::ensure_sealed() {
            logger.write("error", &format!("failed to seal /proc/self/exe: {e}"));
            return ExitCode::FAILURE;
        }
    }

    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            logger.write("error", &format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Whether our executable lives on a read-only mount (or is already a sealed copy).
fn exe_is_read_only() -> bool {
    rustix::fs::statvfs("/proc/self/exe")
        .is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// Runs the command; the value is the exit status (the exec'd process's status for `exec`).
fn run(cli: &Cli) -> anyhow::Result<u8> {
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup is not supported: estiba-runtime manages cgroups through cgroupfs");
    }
    if let Command::Features = cli.command {
        println!("{}", serde_json::to_string_pretty(&features::features())?);
        return Ok(0);
    }
    let root = container::prepare_root(&cli.root)?;
    match &cli.command {
        Command::Create(args) => lifecycle::create(&root, args)?,
        Command::Start(a) => lifecycle::start(&root, &a.id)?,
        Command::Run(args) => lifecycle::run(&root, args)?,
        Command::State(a) => {
            let st = state::state(&root, &a.id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&st).context("encode state")?
            );
        }
        Command::Kill(args) => lifecycle::kill(&root, args)?,
        Command::Delete(args) => lifecycle::delete(&root, args)?,
        Command::Pause(a) => lifecycle::pause(&root, &a.id)?,
        Command::Resume(a) => lifecycle::resume(&root, &a.id)?,
        Command::Ps(args) => {
            print!(
                "{}",
                cgroup::ps(&root, &args.id, &args.format, &args.ps_options)?
            );
        }
        Command::Exec(args) => {
            let status = exec::exec(&root, args)?;
            return Ok(u8::try_from(status).unwrap_or(u8::MAX));
        }
        Command::Update(args) => cgroup::update(&root, &args.id, &args.resources)?,
        Command::Features => {}
    }
    Ok(0)
}
