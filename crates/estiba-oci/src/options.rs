//! The domain inputs: what the image says, what the user asked for, what the daemon prepared.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxSeccomp};

use crate::host::HostInfo;
use crate::ulimit::Ulimit;
use crate::user::ResolvedUser;

/// The parts of an image's config that shape a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    pub stop_signal: Option<String>,
    /// `VOLUME` destinations (anonymous volumes are the volume service's business).
    pub volumes: Vec<String>,
}

/// Which network namespace the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// A new namespace (bridge networks; loopback only until networking lands).
    #[default]
    Private,
    /// The host's namespace.
    Host,
    /// A new namespace that is never connected (`--network none`).
    None,
    /// Join an existing namespace (`--network container:x`, or one the network service made).
    Path(PathBuf),
}

/// Which IPC namespace the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum IpcMode {
    /// A new namespace with its own `/dev/shm` (Docker's default, also `shareable`).
    #[default]
    Private,
    /// The host's namespace and `/dev/shm`.
    Host,
    /// A new namespace without `/dev/shm`.
    None,
    /// Join another container's namespace; `shm` is the `/dev/shm` to bind, if any.
    Path { ns: PathBuf, shm: Option<PathBuf> },
}

/// Which PID namespace the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PidMode {
    #[default]
    Private,
    Host,
    Path(PathBuf),
}

/// Whether the container gets its own UTS namespace (hostname).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UtsMode {
    #[default]
    Private,
    Host,
}

/// Whether the container gets its own cgroup namespace (Docker: private on cgroup v2, host on
/// v1; the caller decides at create time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CgroupnsMode {
    #[default]
    Host,
    Private,
}

/// Mount propagation of a bind mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Propagation {
    Private,
    #[default]
    Rprivate,
    Shared,
    Rshared,
    Slave,
    Rslave,
}

impl Propagation {
    /// The option word in a spec mount.
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::Rprivate => "rprivate",
            Propagation::Shared => "shared",
            Propagation::Rshared => "rshared",
            Propagation::Slave => "slave",
            Propagation::Rslave => "rslave",
        }
    }
}

/// A bind mount (a `-v /host:/ctr`, a named volume's `_data`, `--mount type=bind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub writable: bool,
    pub propagation: Propagation,
    /// `bind-nonrecursive`: `bind` instead of `rbind`.
    pub non_recursive: bool,
}

/// A `--tmpfs DEST[:OPTIONS]` mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TmpfsMount {
    pub destination: String,
    /// Comma-separated, as given after the colon (`size=64m,mode=1777`); may be empty.
    pub options: String,
}

/// cgroup limits, with the Docker API's meaning of 0 (unset) and of negative values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub memory_bytes: i64,
    /// -1 is unlimited swap; the caller defaults it to twice `memory_bytes` at create time.
    pub memory_swap_bytes: i64,
    pub memory_reservation_bytes: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: bool,
    /// `--cpus` × 10⁹.
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    /// `None` is unset; 0 or negative is unlimited.
    pub pids_limit: Option<i64>,
    pub blkio_weight: u16,
    /// Per-device throttles as (major, minor, rate).
    pub throttle_read_bps: Vec<(i64, i64, u64)>,
    pub throttle_write_bps: Vec<(i64, i64, u64)>,
    pub throttle_read_iops: Vec<(i64, i64, u64)>,
    pub throttle_write_iops: Vec<(i64, i64, u64)>,
    /// Per-device weights as (major, minor, weight).
    pub weight_device: Vec<(i64, i64, u16)>,
}

/// What the user asked for (`docker run`/`create` flags, i.e. Config + HostConfig).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerOptions {
    /// Arguments after the image name; `None` or empty means the image's Cmd.
    pub cmd: Option<Vec<String>>,
    /// `--entrypoint`: `None` keeps the image's; `Some([""])` clears it (docker's
    /// `--entrypoint ""`).
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub user: String,
    pub hostname: String,
    pub domainname: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub working_dir: String,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub tmpfs: Vec<TmpfsMount>,
    /// `--shm-size`; `None` is Docker's 64 MiB.
    pub shm_size_bytes: Option<i64>,
    /// The container's ulimits, already merged with the daemon's `default-ulimits`.
    pub ulimits: Vec<Ulimit>,
    pub no_new_privileges: bool,
    pub init: bool,
    pub group_add: Vec<String>,
    /// `HostConfig.MaskedPaths`/`ReadonlyPaths`: `Some` replaces Docker's lists.
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    pub sysctls: BTreeMap<String, String>,
    pub resources: Resources,
    pub binds: Vec<BindMount>,
    pub device_cgroup_rules: Vec<String>,
    /// `--device` nodes and the cgroup rules that allow them (see
    /// [`crate::devices_for_mapping`]).
    pub devices: Vec<(LinuxDevice, LinuxDeviceCgroup)>,
    pub network: NetworkMode,
    pub ipc: IpcMode,
    pub pid: PidMode,
    pub uts: UtsMode,
    pub cgroupns: CgroupnsMode,
    pub oom_score_adj: i32,
    /// `ConsoleSize` (height, width) for a TTY.
    pub console_size: Option<(u64, u64)>,
}

/// Host paths of the files the daemon generated for the container, bind-mounted like Docker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkFiles {
    pub resolv_conf: Option<PathBuf>,
    pub hostname: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
}

/// Everything [`crate::build_spec`] needs; see [`crate::merge_command`], [`crate::merge_env`]
/// and [`crate::resolve_user`] for the merged fields.
#[derive(Debug, Clone, Default)]
pub struct SpecInput {
    pub container_id: String,
    /// The container's root filesystem (the overlay mount) on the host.
    pub rootfs: PathBuf,
    pub user: ResolvedUser,
    /// `process.args` before `--init`: the merged Entrypoint + Cmd.
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// The working directory; empty means `/`.
    pub cwd: String,
    pub hostname: String,
    pub options: ContainerOptions,
    pub network_files: NetworkFiles,
    /// `linux.cgroupsPath`, e.g. `/estiba/<id>` for cgroupfs.
    pub cgroups_path: String,
    /// Host path of the init binary bind-mounted at `/sbin/docker-init` when `options.init`.
    pub init_path: Option<PathBuf>,
    /// The seccomp profile chosen by the caller; ignored for privileged containers.
    pub seccomp: Option<LinuxSeccomp>,
    /// The host's device nodes, used only when privileged (see [`crate::host_devices`]).
    pub host_devices: Vec<LinuxDevice>,
    /// Facts about the host (capabilities, sysctls); see [`HostInfo::detect`].
    pub host: HostInfo,
}
