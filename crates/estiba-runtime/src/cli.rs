//! Command-line shape of `estiba-runtime`: runc's global flags and subcommands, so that a caller
//! written for runc (or the OCI runtime command-line contract) drives this binary unchanged.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Where container state lives when `--root` is not given.
pub(crate) const DEFAULT_ROOT: &str = "/run/estiba/runtime";

#[derive(Parser, Debug)]
#[command(
    name = "estiba-runtime",
    version,
    about = "OCI runtime on youki's libcontainer, with runc's command-line contract"
)]
pub(crate) struct Cli {
    /// Directory holding the state of every container
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub(crate) root: PathBuf,

    /// Write log lines to this file instead of stderr
    #[arg(long, global = true)]
    pub(crate) log: Option<PathBuf>,

    /// Format of the log lines
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,

    /// Log debug messages as well
    #[arg(long, global = true)]
    pub(crate) debug: bool,

    /// Manage cgroups through systemd (not supported: refused)
    #[arg(long, global = true)]
    pub(crate) systemd_cgroup: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create a container whose process waits for `start`
    Create(CreateArgs),
    /// Run the user process of a created container
    Start(IdArg),
    /// Create and start a container in one go (only detached: `--detach` is required)
    Run(RunArgs),
    /// Print the state of a container as JSON
    State(IdArg),
    /// Send a signal to the container's init process (or to all its processes)
    Kill(KillArgs),
    /// Delete a container's resources and state
    Delete(DeleteArgs),
    /// Freeze every process of a container
    Pause(IdArg),
    /// Thaw every process of a paused container
    Resume(IdArg),
    /// List the processes of a container
    Ps(PsArgs),
    /// Run a new process inside a running container
    Exec(ExecArgs),
    /// Change the cgroup limits of a running container
    Update(UpdateArgs),
    /// Print what this runtime supports, as JSON
    Features,
}

#[derive(Args, Debug)]
pub(crate) struct IdArg {
    /// Container id
    pub(crate) id: String,
}

#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// Bundle directory (holding config.json)
    #[arg(short, long, default_value = ".")]
    pub(crate) bundle: PathBuf,
    /// Write the container process's pid to this file
    #[arg(long)]
    pub(crate) pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long)]
    pub(crate) console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long)]
    pub(crate) no_pivot: bool,
    /// Pass N extra file descriptors (from 3 up) to the container process
    #[arg(long, default_value_t = 0)]
    pub(crate) preserve_fds: i32,
    /// Container id
    pub(crate) id: String,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Return once the container's process runs (required: this runtime does not stay in the
    /// foreground as the container's parent)
    #[arg(short, long)]
    pub(crate) detach: bool,
    #[command(flatten)]
    pub(crate) create: CreateArgs,
}

#[derive(Args, Debug)]
pub(crate) struct KillArgs {
    /// Send the signal to every process in the container's cgroup
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Container id
    pub(crate) id: String,
    /// Signal name (TERM, SIGTERM) or number
    #[arg(default_value = "SIGTERM")]
    pub(crate) signal: String,
}

#[derive(Args, Debug)]
pub(crate) struct DeleteArgs {
    /// Kill the container first if it is still running
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Container id
    pub(crate) id: String,
}

#[derive(Args, Debug)]
pub(crate) struct PsArgs {
    /// Output format: table (ps -ef lines) or json (array of pids)
    #[arg(short, long, default_value = "table")]
    pub(crate) format: String,
    /// Container id
    pub(crate) id: String,
    /// Options passed to ps (table format only)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) ps_options: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ExecArgs {
    /// JSON file holding the OCI process to run (other process flags are then ignored)
    #[arg(short, long)]
    pub(crate) process: Option<PathBuf>,
    /// Allocate a pty (sent over --console-socket when detached)
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// Unix socket that receives the pty master
    #[arg(long)]
    pub(crate) console_socket: Option<PathBuf>,
    /// Do not wait for the process: exit once it runs
    #[arg(short, long)]
    pub(crate) detach: bool,
    /// Write the process's pid to this file
    #[arg(long)]
    pub(crate) pid_file: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long)]
    pub(crate) cwd: Option<PathBuf>,
    /// Extra environment variables, KEY=VALUE
    #[arg(short, long)]
    pub(crate) env: Vec<String>,
    /// uid[:gid] to run as
    #[arg(short, long)]
    pub(crate) user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long)]
    pub(crate) additional_gids: Vec<u32>,
    /// Add a capability to the process's sets
    #[arg(short, long)]
    pub(crate) cap: Vec<String>,
    /// Set no_new_privileges for the process
    #[arg(long)]
    pub(crate) no_new_privs: bool,
    /// Pass N extra file descriptors (from 3 up) to the process
    #[arg(long, default_value_t = 0)]
    pub(crate) preserve_fds: i32,
    /// Container id
    pub(crate) id: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct UpdateArgs {
    /// JSON file with OCI LinuxResources ("-" reads stdin)
    #[arg(short, long)]
    pub(crate) resources: PathBuf,
    /// Container id
    pub(crate) id: String,
}
