//! Turns a Docker container configuration into an OCI runtime spec (`config.json`) with
//! Docker's defaults, as moby's `daemon/oci_linux.go` does: namespaces, default mounts, masked
//! and read-only paths, the 14 default capabilities, devices, rlimits, resources, USER
//! resolution and the Entrypoint/Cmd/Env merge rules.
//!
//! Pure logic except for what the caller triggers explicitly: [`resolve_user`] (the image's
//! passwd/group) and [`ensure_working_dir`], which never leave the rootfs, and the host reads
//! [`HostInfo::detect`] and [`host_devices`].
//! No HTTP and no Docker JSON shapes live here; the API layer maps its types onto
//! [`ContainerOptions`] and [`ImageDefaults`].

pub mod caps;
pub mod command;
pub mod devices;
pub mod host;
pub mod mounts;
pub mod options;
pub mod seccomp;
pub mod spec;
pub mod tmpfs;
pub mod ulimit;
pub mod user;
pub mod workdir;

pub use command::{
    merge_command, merge_config_env, merge_entrypoint_cmd, merge_env, process_env,
    replace_or_append_env, MergedCommand, DEFAULT_PATH_ENV,
};
pub use devices::{
    device_numbers, devices_for_mapping, host_devices, parse_device_cgroup_rule, valid_device_mode,
    DeviceError,
};
pub use host::{HostError, HostInfo};
pub use mounts::{DEFAULT_SHM_SIZE_BYTES, INIT_PATH_IN_CONTAINER};
pub use oci_spec;
pub use options::{
    BindMount, CgroupnsMode, ContainerOptions, ImageDefaults, IpcMode, NetworkFiles, NetworkMode,
    PidMode, Propagation, Resources, SpecInput, TmpfsMount, UtsMode,
};
pub use seccomp::{kernel_runs_x32, seccomp_for, seccomp_for_choice, SeccompChoice, SeccompError};
pub use spec::{
    build_spec, validate_options, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, OCI_VERSION,
};
pub use tmpfs::TmpfsError;
pub use ulimit::{Ulimit, UlimitError};
pub use user::{resolve_user, resolve_user_from, ResolvedUser, UserError};
pub use workdir::{ensure_working_dir, WorkdirError};

use thiserror::Error;

/// Why a container's spec (or its command) could not be built.
#[derive(Debug, Error)]
pub enum SpecError {
    /// Docker's wording (moby 28).
    #[error("no command specified")]
    NoCommand,
    #[error(transparent)]
    Capability(#[from] caps::CapabilityError),
    #[error(transparent)]
    Ulimit(#[from] UlimitError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Tmpfs(#[from] TmpfsError),
    /// Docker's wording.
    #[error("invalid mount path: '{0}' mount path must be absolute")]
    RelativeMountDestination(String),
    #[error("too many mounts: {0}")]
    TooManyMounts(usize),
    #[error("invalid CPU shares ({0}): value must be a positive integer")]
    CpuShares(i64),
    #[error("invalid CPU period ({0}): value must be a positive integer")]
    CpuPeriod(i64),
    #[error("--init needs an init binary and none is configured")]
    NoInitBinary,
    #[error("build spec: {0}")]
    Build(String),
}

#[cfg(test)]
mod spec_tests;
