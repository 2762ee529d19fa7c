//! The container service: creates containers from images, starts each one under its own
//! `estiba-shim`, follows their lifecycle, keeps their records in the metadata database and
//! finds them again after a daemon restart (live restore).
//!
//! Synchronous like the other services: the daemon calls it from blocking threads. Waiting for
//! a state change has two faces: a `Condvar` for blocking callers (stop, remove) and a tokio
//! `watch` channel for the async HTTP layer (`wait`), both fed by the same state updates.
//!
//! Architecture invariants relied on here:
//! - A container outlives the daemon: the shim, not estibad, is the parent of the container's
//!   process; estibad only talks to it through `<exec-root>/containers/<short-id>/shim.sock`.
//! - Metadata first: a record is written before anything it names exists on disk is used, and
//!   removed before the files it names, so a crash leaves garbage, never a dangling record.
//! - Container snapshots are keyed `c-<id>`, never 64 hex (the image GC owns those keys).

mod build;
mod cgroupwarm;
mod commit;
mod create;
mod error;
mod exec;
mod files;
mod fs;
mod fsbinds;
pub mod health;
mod lifecycle;
mod logs;
pub mod model;
mod mounts;
pub mod mountspec;
pub mod names;
mod network;
mod pause;
mod propagation;
mod rename;
mod restart;
mod security;
mod service;
mod start;
mod stats;
mod status;
mod sysinfo;
mod top;
mod treetar;
mod update;

pub use build::BuildRun;
pub use commit::CommitOptions;
pub use error::ContainerError;
pub use exec::{ExecConfig, ExecInfo, ExecStream};
pub use fs::{Change, ChangeKind, PathStat};
pub use lifecycle::parse_signal;
pub use logs::{LogOptions, LogStream};
pub use model::{
    ContainerConfig, ContainerRecord, HostOptions, Limits, RestartPolicy, State, Status,
    UlimitSetting,
};
pub use mountspec::{MountKind, MountPoint};
pub use service::{
    wait, Attach, ContainerService, CreateRequest, ListFilters, RuntimeConfig, ServiceConfig,
    StartOutcome, StopOutcome, Summary, WaitCondition, WaitResult, Watch, MAX_CONTAINERS,
};
pub use stats::{BlkioEntry, CgroupSample, CpuSample, StatsSample};
pub use status::{human_duration, status_string};
pub use top::{parse_ps_output, TopResult};
pub use update::ResourceUpdate;
