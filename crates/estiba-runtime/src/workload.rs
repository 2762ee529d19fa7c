//! Running a container's process under a precompiled seccomp filter (see `crate::seccomp`).
//!
//! libcontainer reads the spec from `<bundle>/config.json` and compiles the filter itself when
//! the spec has one. To hand it a spec without the profile, `create` writes a derived bundle
//! under the state root (`.bundles/<id>`): the same spec with `linux.seccomp` removed and the
//! rootfs made absolute, the compiled program beside it (`seccomp.bpf`) and a link to the
//! caller's bundle. libcontainer records the derived bundle as the container's, so `exec` finds
//! the program there too; `state` and `exec`'s process defaults read the caller's bundle.
//!
//! The filter is installed by our executor right before `execve`, where libcontainer would
//! install it with no_new_privs. Without no_new_privs (Docker's default) installing a filter
//! needs CAP_SYS_ADMIN, which libcontainer has already dropped by then; libcontainer installs
//! it before the drop. So the spec handed to libcontainer keeps CAP_SYS_ADMIN and CAP_SETPCAP
//! in the sets that lack them, and the executor installs the filter and then drops exactly
//! what was added (bounding, then effective, then permitted) before exec. The process that runs
//! the container's program has the capabilities the caller asked for, and the filter.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use caps::CapSet;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};
use oci_spec::runtime::{Capability, Process, Spec};

use crate::container;
use crate::seccomp::{self, Filter};

/// Derived bundles live here under the state root.
const BUNDLES_DIR: &str = ".bundles";
/// The link from a derived bundle to the caller's.
const ORIGINAL_LINK: &str = "original-bundle";
/// The compiled filter in a derived bundle.
const FILTER_FILE: &str = "seccomp.bpf";

/// The capabilities that must be there while the filter is installed.
const NEEDED: [(Capability, caps::Capability); 2] = [
    (Capability::SysAdmin, caps::Capability::CAP_SYS_ADMIN),
    (Capability::Setpcap, caps::Capability::CAP_SETPCAP),
];

/// Capabilities added to a process spec for the filter's installation, per set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Lift {
    bounding: Vec<caps::Capability>,
    effective: Vec<caps::Capability>,
    permitted: Vec<caps::Capability>,
}

impl Lift {
    /// Adds what installing a filter without no_new_privs needs to `process`; `None` when the
    /// process spec has no capabilities (libcontainer then leaves the runtime's own in place).
    pub(crate) fn apply(process: &mut Process) -> Option<Lift> {
        if process.no_new_privileges() == Some(true) {
            return Some(Lift::default());
        }
        let mut capabilities = process.capabilities().clone()?;
        let mut lift = Lift::default();
        let mut bounding = capabilities.bounding().clone().unwrap_or_default();
        let mut effective = capabilities.effective().clone().unwrap_or_default();
        let mut permitted = capabilities.permitted().clone().unwrap_or_default();
        for (oci, cap) in NEEDED {
            if bounding.insert(oci) {
                lift.bounding.push(cap);
            }
            if effective.insert(oci) {
                lift.effective.push(cap);
            }
            if permitted.insert(oci) {
                lift.permitted.push(cap);
            }
        }
        capabilities.set_bounding(Some(bounding));
        capabilities.set_effective(Some(effective));
        capabilities.set_permitted(Some(permitted));
        process.set_capabilities(Some(capabilities));
        Some(lift)
    }

    /// Drops what `apply` added. CAP_SETPCAP goes from the bounding set first, while it is
    /// still effective (dropping from the bounding set needs it).
    fn lower(&self) -> Result<(), caps::errors::CapsError> {
        for &cap in &self.bounding {
            caps::drop(None, CapSet::Bounding, cap)?;
        }
        for &cap in &self.effective {
            caps::drop(None, CapSet::Effective, cap)?;
        }
        for &cap in &self.permitted {
            caps::drop(None, CapSet::Permitted, cap)?;
        }
        Ok(())
    }
}

/// libcontainer's default executor with the filter installed (and the lift lowered) first.
#[derive(Clone)]
pub(crate) struct FilterExecutor {
    filter: Filter,
    lift: Lift,
}

impl FilterExecutor {
    pub(crate) fn new(filter: Filter, lift: Lift) -> FilterExecutor {
        FilterExecutor { filter, lift }
    }
}

impl Executor for FilterExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        self.filter
            .install()
            .map_err(|e| ExecutorError::Other(format!("failed to initialize seccomp: {e}")))?;
        self.lift.lower().map_err(|e| {
            ExecutorError::Other(format!("failed to drop capabilities after seccomp: {e}"))
        })?;
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }

    fn setup_envs(&self, envs: HashMap<String, String>) -> Result<(), ExecutorSetEnvsError> {
        DefaultExecutor {}.setup_envs(envs)
    }
}

/// A derived bundle ready for libcontainer.
pub(crate) struct Prepared {
    pub(crate) bundle: PathBuf,
    pub(crate) executor: FilterExecutor,
}

/// Writes the derived bundle of `id` when `spec`'s profile can be compiled ahead; `None` leaves
/// the container to libcontainer as it is (no profile, a notify profile, no capabilities).
pub(crate) fn prepare(
    root: &Path,
    id: &str,
    bundle: &Path,
    spec: &Spec,
) -> anyhow::Result<Option<Prepared>> {
    let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    if !seccomp::precompilable(profile) {
        return Ok(None);
    }
    let mut derived = spec.clone();
    let mut process = derived.process().clone().unwrap_or_default();
    let Some(lift) = Lift::apply(&mut process) else {
        return Ok(None);
    };
    let filter = seccomp::filter_for(root, profile)?;
    derived.set_process(Some(process));
    if let Some(linux) = derived.linux_mut() {
        linux.set_seccomp(None);
    }
    let mut rootfs = derived.root().clone().unwrap_or_default();
    rootfs.set_path(container::rootfs_of(bundle, spec));
    derived.set_root(Some(rootfs));

    let dir = bundle_dir(root, id)?;
    remove(root, id);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("create {}", dir.display()))?;
    let written = serde_json::to_vec(&derived)
        .context("serialize the derived spec")
        .and_then(|json| fs::write(dir.join("config.json"), json).context("write the derived spec"))
        .and_then(|()| {
            fs::write(dir.join(FILTER_FILE), filter.to_bytes()).context("write the filter")
        })
        .and_then(|()| {
            std::os::unix::fs::symlink(bundle, dir.join(ORIGINAL_LINK))
                .context("link the original bundle")
        });
    if let Err(e) = written {
        remove(root, id);
        return Err(e.context(format!("derived bundle {}", dir.display())));
    }
    Ok(Some(Prepared {
        bundle: dir,
        executor: FilterExecutor::new(filter, lift),
    }))
}

fn bundle_dir(root: &Path, id: &str) -> anyhow::Result<PathBuf> {
    container::validate_id(id)?;
    Ok(root.join(BUNDLES_DIR).join(id))
}

/// Removes the derived bundle of `id`, if any.
pub(crate) fn remove(root: &Path, id: &str) {
    let Ok(dir) = bundle_dir(root, id) else {
        return;
    };
    match fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("remove derived bundle {}: {e}", dir.display()),
    }
}

/// The caller's bundle of a container whose recorded bundle is `recorded`.
pub(crate) fn original_bundle(recorded: &Path) -> PathBuf {
    fs::read_link(recorded.join(ORIGINAL_LINK)).unwrap_or_else(|_| recorded.to_path_buf())
}

/// Whether `recorded` is a derived bundle (it links to the caller's).
fn is_derived(recorded: &Path) -> bool {
    fs::symlink_metadata(recorded.join(ORIGINAL_LINK)).is_ok_and(|m| m.file_type().is_symlink())
}

/// The compiled filter of a container whose recorded bundle is `recorded`, when it has one.
pub(crate) fn filter_of(recorded: &Path) -> anyhow::Result<Option<Filter>> {
    if !is_derived(recorded) {
        return Ok(None);
    }
    let path = recorded.join(FILTER_FILE);
    match fs::read(&path) {
        Ok(bytes) => Filter::from_bytes(&bytes)
            .map(Some)
            .with_context(|| format!("read {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}
