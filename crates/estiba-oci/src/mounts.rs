//! The spec's mount list: Docker's defaults, then the container's own mounts sorted by depth,
//! with `--read-only`, `--privileged`, `--ipc` and `--shm-size` applied as moby does.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};

use crate::options::{ContainerOptions, IpcMode, NetworkFiles, Propagation};
use crate::tmpfs::tmpfs_mount_options;
use crate::SpecError;

/// Docker's `/dev/shm` size when `--shm-size` is not given: 64 MiB.
pub const DEFAULT_SHM_SIZE_BYTES: i64 = 64 * 1024 * 1024;

/// Where `--init`'s binary appears inside the container.
pub const INIT_PATH_IN_CONTAINER: &str = "/sbin/docker-init";

/// Most mounts one container may have (binds, volumes, tmpfs together).
pub const MAX_USER_MOUNTS: usize = 1024;

/// A spec mount before conversion: easier to edit than oci-spec's builder output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub destination: String,
    pub typ: String,
    pub source: String,
    pub options: Vec<String>,
}

impl MountEntry {
    fn new(destination: &str, typ: &str, source: &str, options: &[&str]) -> MountEntry {
        MountEntry {
            destination: destination.to_owned(),
            typ: typ.to_owned(),
            source: source.to_owned(),
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    fn to_oci(&self) -> Result<Mount, SpecError> {
        MountBuilder::default()
            .destination(PathBuf::from(&self.destination))
            .typ(self.typ.clone())
            .source(PathBuf::from(&self.source))
            .options(self.options.clone())
            .build()
            .map_err(|e| SpecError::Build(e.to_string()))
    }
}

/// moby's default mounts, in order.
pub fn default_mounts() -> Vec<MountEntry> {
    vec![
        MountEntry::new("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        MountEntry::new(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        MountEntry::new(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        MountEntry::new(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        MountEntry::new(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        MountEntry::new(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        MountEntry::new(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777"],
        ),
    ]
}

/// A mount the container asked for (moby's `container.Mount`), before it becomes a spec entry.
#[derive(Debug, Clone)]
enum UserMount {
    Tmpfs {
        destination: String,
        options: String,
    },
    Bind {
        source: PathBuf,
        destination: String,
        writable: bool,
        propagation: Propagation,
        non_recursive: bool,
    },
}

impl UserMount {
    fn destination(&self) -> &str {
        match self {
            UserMount::Tmpfs { destination, .. } | UserMount::Bind { destination, .. } => {
                destination
            }
        }
    }
}

/// Number of components of a cleaned path, moby's sort key (`/` counts as one).
fn depth(destination: &str) -> usize {
    let comps = Path::new(destination)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .count();
    comps.max(1)
}

fn validate_destination(destination: &str) -> Result<(), SpecError> {
    let p = Path::new(destination);
    if !p.is_absolute() {
        return Err(SpecError::RelativeMountDestination(destination.to_owned()));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(SpecError::RelativeMountDestination(destination.to_owned()));
    }
    Ok(())
}

/// The container's own mounts in moby's order: IPC, tmpfs, binds/volumes, network files.
fn collect_user_mounts(
    opts: &ContainerOptions,
    files: &NetworkFiles,
) -> Result<Vec<UserMount>, SpecError> {
    let user_count = opts.tmpfs.len() + opts.binds.len();
    if user_count > MAX_USER_MOUNTS {
        return Err(SpecError::TooManyMounts(user_count));
    }

    // moby: IPC mounts, tmpfs, then binds/volumes sorted, then the network files; all sorted
    // again (stably here) by depth so that a parent is mounted before its children.
    let mut user: Vec<UserMount> = Vec::new();
    if let IpcMode::Host = opts.ipc {
        user.push(bind("/dev/shm".into(), "/dev/shm", true));
    } else if let IpcMode::Path { shm: Some(shm), .. } = &opts.ipc {
        user.push(bind(shm.clone(), "/dev/shm", true));
    }
    for t in &opts.tmpfs {
        validate_destination(&t.destination)?;
        user.push(UserMount::Tmpfs {
            destination: t.destination.clone(),
            options: t.options.clone(),
        });
    }
    let mut binds: Vec<UserMount> = Vec::new();
    for b in &opts.binds {
        validate_destination(&b.destination)?;
        binds.push(UserMount::Bind {
            source: b.source.clone(),
            destination: b.destination.clone(),
            writable: b.writable,
            propagation: b.propagation,
            non_recursive: b.non_recursive,
        });
    }
    binds.sort_by_key(|m| depth(m.destination()));
    // A user mount on one of the network files replaces the generated file.
    let user_has = |dest: &str, list: &[UserMount]| list.iter().any(|m| m.destination() == dest);
    let mut network = Vec::new();
    for (path, dest) in [
        (&files.resolv_conf, "/etc/resolv.conf"),
        (&files.hostname, "/etc/hostname"),
        (&files.hosts, "/etc/hosts"),
    ] {
        if let Some(path) = path {
            if !user_has(dest, &binds) {
                network.push(bind(path.clone(), dest, !opts.read_only));
            }
        }
    }
    user.extend(binds);
    user.extend(network);
    user.sort_by_key(|m| depth(m.destination()));
    Ok(user)
}

/// moby's default mounts minus those the user's replace, `/dev/shm` sized, `--init` added.
fn default_entries(
    opts: &ContainerOptions,
    user: &[UserMount],
    init_path: Option<&Path>,
) -> Vec<MountEntry> {
    let user_dest = |dest: &str| user.iter().any(|m| m.destination() == dest);
    let dev_mounted = user_dest("/dev");

    let mut defaults = default_mounts();
    if let (true, Some(init)) = (
        opts.init && matches!(opts.pid, crate::PidMode::Private),
        init_path,
    ) {
        defaults.push(MountEntry {
            destination: INIT_PATH_IN_CONTAINER.to_owned(),
            typ: "bind".to_owned(),
            source: init.display().to_string(),
            options: vec!["bind".to_owned(), "ro".to_owned()],
        });
    }
    let shm_size = opts.shm_size_bytes.unwrap_or(DEFAULT_SHM_SIZE_BYTES);
    let mut entries: Vec<MountEntry> = Vec::new();
    for mut m in defaults {
        if user_dest(&m.destination) {
            continue;
        }
        if dev_mounted && m.destination.starts_with("/dev/") {
            continue;
        }
        if m.destination == "/dev/shm" {
            if opts.ipc == IpcMode::None {
                continue;
            }
            m.options.push(format!("size={shm_size}"));
        }
        entries.push(m);
    }
    entries
}

/// The spec entries of the user's mounts, and the rootfs propagation they need.
fn user_entries(user: &[UserMount]) -> Result<(Vec<MountEntry>, Option<String>), SpecError> {
    let mut entries = Vec::new();
    let mut rootfs_propagation: Option<String> = None;
    for m in user {
        match m {
            UserMount::Tmpfs {
                destination,
                options,
            } => {
                let merged = tmpfs_mount_options(options)?;
                entries.push(MountEntry {
                    destination: destination.clone(),
                    typ: "tmpfs".to_owned(),
                    source: "tmpfs".to_owned(),
                    options: merged,
                });
            }
            UserMount::Bind {
                source,
                destination,
                writable,
                propagation,
                non_recursive,
            } => {
                match propagation {
                    Propagation::Shared | Propagation::Rshared => {
                        rootfs_propagation = Some("shared".to_owned());
                    }
                    Propagation::Slave | Propagation::Rslave
                        if rootfs_propagation.as_deref() != Some("shared") =>
                    {
                        // moby writes "rslave"; youki's libcontainer knows only "slave" (which it
                        // applies recursively), and runc and crun accept both.
                        rootfs_propagation = Some("slave".to_owned());
                    }
                    _ => {}
                }
                let mut options = vec![if *non_recursive { "bind" } else { "rbind" }.to_owned()];
                if !writable {
                    options.push("ro".to_owned());
                }
                options.push(propagation.as_str().to_owned());
                entries.push(MountEntry {
                    destination: destination.clone(),
                    typ: "bind".to_owned(),
                    source: source.display().to_string(),
                    options,
                });
            }
        }
    }
    Ok((entries, rootfs_propagation))
}

/// Builds the mount list and the rootfs propagation it requires (`None` = runtime default).
pub(crate) fn build_mounts(
    opts: &ContainerOptions,
    files: &NetworkFiles,
    init_path: Option<&Path>,
) -> Result<(Vec<Mount>, Option<String>), SpecError> {
    let user = collect_user_mounts(opts, files)?;
    let mut entries = default_entries(opts, &user, init_path);
    let first_user = entries.len();
    let (user_entries, rootfs_propagation) = user_entries(&user)?;
    entries.extend(user_entries);

    if opts.read_only {
        for m in entries.iter_mut().take(first_user) {
            let exempt = ["/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"];
            if !exempt.contains(&m.destination.as_str()) && !m.options.iter().any(|o| o == "ro") {
                m.options.push("ro".to_owned());
            }
        }
    }
    if opts.privileged {
        // Privileged containers get a writable /sys and cgroup tree.
        for m in entries.iter_mut() {
            if m.destination == "/sys" || m.typ == "cgroup" {
                m.options.retain(|o| o != "ro");
            }
        }
    }

    let mounts = entries
        .iter()
        .map(MountEntry::to_oci)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((mounts, rootfs_propagation))
}

fn bind(source: PathBuf, destination: &str, writable: bool) -> UserMount {
    UserMount::Bind {
        source,
        destination: destination.to_owned(),
        writable,
        propagation: Propagation::Rprivate,
        non_recursive: false,
    }
}
