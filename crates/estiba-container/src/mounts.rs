//! A container's mounts across its life: planned and validated at create (nothing exists until
//! every mount is valid), volumes created and referenced once the container has an ID, turned
//! into spec binds and tmpfs mounts at start (copying image content into empty volumes), and
//! released at remove (`rm -v` and `--rm` take anonymous volumes with them).

use std::path::{Path, PathBuf};

use estiba_oci::{BindMount, Propagation, TmpfsMount};
use estiba_volume::{CreateVolume, VolumeError, ANONYMOUS_LABEL};

use crate::error::{internal, ContainerError};
use crate::model::{ContainerConfig, ContainerRecord, HostOptions};
use crate::mountspec::{self, MountKind, MountPoint};
use crate::service::{lock, ContainerService};

/// Most mounts one container may ask for (estiba-oci's bound on the spec's user mounts).
const MAX_MOUNTS: usize = 1024;
/// Most `--volumes-from` one container may name.
const MAX_VOLUMES_FROM: usize = 64;

/// `docker ps --filter volume=X`: a volume name or a mount destination (any of `filters`).
pub(crate) fn uses_volume(record: &ContainerRecord, filters: &[String]) -> bool {
    filters.is_empty()
        || record.mount_points.iter().any(|m| {
            filters
                .iter()
                .any(|f| (m.kind == MountKind::Volume && *f == m.name) || *f == m.destination)
        })
}

impl From<VolumeError> for ContainerError {
    fn from(e: VolumeError) -> Self {
        match e {
            VolumeError::NotFound(_) => ContainerError::PathNotFound(e.to_string()),
            VolumeError::InvalidCreate { .. } | VolumeError::InvalidParameter(_) => {
                ContainerError::InvalidParameter(e.to_string())
            }
            VolumeError::InUse { .. } | VolumeError::Conflict(_) => {
                ContainerError::Conflict(e.to_string())
            }
            other => internal(other),
        }
    }
}

fn duplicate(dest: &str) -> ContainerError {
    ContainerError::InvalidParameter(format!("Duplicate mount point: {dest}"))
}

fn propagation(p: &str) -> Propagation {
    match p {
        "private" => Propagation::Private,
        "shared" => Propagation::Shared,
        "rshared" => Propagation::Rshared,
        "slave" => Propagation::Slave,
        "rslave" => Propagation::Rslave,
        _ => Propagation::Rprivate,
    }
}

impl ContainerService {
    /// Every mount of a container being created, validated as dockerd does (moby's
    /// `registerMountPoints` order): `--volumes-from`, then binds and `--mount` (which replace
    /// what they share a destination with), then anonymous volumes for `Config.Volumes`.
    pub(crate) fn plan_mounts(
        &self,
        config: &ContainerConfig,
        host: &HostOptions,
    ) -> Result<Vec<MountPoint>, ContainerError> {
        let count = host.binds.len() + host.mounts.len() + config.volumes.len();
        if count > MAX_MOUNTS {
            return Err(ContainerError::InvalidParameter(format!(
                "too many mounts ({count}, at most {})",
                MAX_MOUNTS
            )));
        }
        if host.volumes_from.len() > MAX_VOLUMES_FROM {
            return Err(ContainerError::InvalidParameter(format!(
                "at most {MAX_VOLUMES_FROM} --volumes-from"
            )));
        }
        let mut from: Vec<MountPoint> = Vec::new();
        for spec in &host.volumes_from {
            let (name, rw) = mountspec::parse_volumes_from(spec)?;
            // dockerd answers 400 here, not 404 (which would make the docker CLI pull).
            let other = match self.get(name) {
                Ok(c) => c.snapshot(),
                Err(e @ ContainerError::NotFound(_)) => {
                    return Err(ContainerError::InvalidParameter(e.to_string()))
                }
                Err(e) => return Err(e),
            };
            for mut mp in other.mount_points {
                if let Some(rw) = rw {
                    mp.rw = rw;
                }
                from.retain(|m| m.destination != mp.destination);
                from.push(mp);
            }
        }
        let mut own: Vec<MountPoint> = Vec::new();
        for b in &host.binds {
            let mp = mountspec::parse_bind(b)?;
            if own.iter().any(|m| m.destination == mp.destination) {
                return Err(duplicate(&mp.destination));
            }
            own.push(mp);
        }
        for m in &host.mounts {
            let mp = mountspec::parse_mount(m)?;
            if own.iter().any(|o| o.destination == mp.destination) {
                return Err(duplicate(&mp.destination));
            }
            own.push(mp);
        }
        from.retain(|f| !own.iter().any(|o| o.destination == f.destination));
        let mut all = from;
        all.extend(own);
        for v in &config.volumes {
            let mp = mountspec::anonymous(v);
            if mp.destination == "/" {
                return Err(ContainerError::InvalidParameter(format!(
                    "invalid volume specification: '{v}': invalid mount config for type \"volume\": invalid specification: destination can't be '/'"
                )));
            }
            if !all.iter().any(|m| m.destination == mp.destination) {
                all.push(mp);
            }
        }
        Ok(all)
    }

    /// Creates the volumes a plan names (anonymous ones get a generated name and Docker's
    /// label) and records `id` as their user. On error, undoes what it did.
    pub(crate) fn create_mounts(
        &self,
        id: &str,
        plan: Vec<MountPoint>,
    ) -> Result<Vec<MountPoint>, ContainerError> {
        let mut done: Vec<MountPoint> = Vec::new();
        let mut created: Vec<String> = Vec::new();
        for mut mp in plan {
            if mp.kind == MountKind::Volume {
                let r = self.reference_volume(id, &mut mp, &mut created);
                if let Err(e) = r {
                    for d in &done {
                        if d.kind == MountKind::Volume {
                            let _ = self.volumes.release(&d.name, id);
                        }
                    }
                    for name in &created {
                        let _ = self.volumes.release(name, id);
                        let _ = self.volumes.remove(name, false);
                    }
                    return Err(e);
                }
            }
            done.push(mp);
        }
        Ok(done)
    }

    fn reference_volume(
        &self,
        id: &str,
        mp: &mut MountPoint,
        created: &mut Vec<String>,
    ) -> Result<(), ContainerError> {
        let existed = !mp.name.is_empty() && self.volumes.get(&mp.name).is_ok();
        if !existed {
            let mut labels = std::mem::take(&mut mp.volume_labels);
            if mp.anonymous {
                labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
            }
            let v = self.volumes.create(CreateVolume {
                name: mp.name.clone(),
                labels,
                options: std::mem::take(&mut mp.volume_options),
            })?;
            mp.name = v.record.name.clone();
            created.push(mp.name.clone());
        }
        let v = self.volumes.get(&mp.name)?;
        mp.source = v.mountpoint.display().to_string();
        self.volumes.acquire(&mp.name, id)?;
        Ok(())
    }

    /// At start: the spec's binds and tmpfs mounts. Volumes are mounted by their driver and,
    /// when empty, filled with the image's content at their destination.
    pub(crate) fn start_mounts(
        &self,
        record: &ContainerRecord,
        rootfs: &Path,
    ) -> Result<(Vec<BindMount>, Vec<TmpfsMount>), ContainerError> {
        let legacy;
        let points = if record.mount_points.is_empty() && !record.host.binds.is_empty() {
            // A record from before mount points were stored: its binds were host paths.
            legacy = record
                .host
                .binds
                .iter()
                .map(|b| mountspec::parse_bind(b))
                .collect::<Result<Vec<_>, _>>()?;
            &legacy
        } else {
            &record.mount_points
        };
        let mut binds = Vec::new();
        let mut tmpfs = Vec::new();
        for mp in points {
            match mp.kind {
                MountKind::Tmpfs => tmpfs.push(TmpfsMount {
                    destination: mp.destination.clone(),
                    options: mp.tmpfs_options.clone(),
                }),
                MountKind::Bind => binds.push(self.start_bind(mp)?),
                MountKind::Volume => {
                    let data = self.volumes.mount(
                        &mp.name,
                        &record.id,
                        &mp.destination,
                        mp.rw,
                        &mp.propagation,
                    )?;
                    if mp.copy_data {
                        let src = estiba_volume::resolve_in_root(rootfs, &mp.destination)
                            .map_err(internal)?;
                        self.volumes.populate(&mp.name, &src)?;
                    }
                    binds.push(BindMount {
                        source: data,
                        destination: mp.destination.clone(),
                        writable: mp.rw,
                        propagation: Propagation::Rprivate,
                        non_recursive: false,
                    });
                }
            }
        }
        Ok((binds, tmpfs))
    }

    fn start_bind(&self, mp: &MountPoint) -> Result<BindMount, ContainerError> {
        let source = PathBuf::from(&mp.source);
        if mp.create_source && std::fs::symlink_metadata(&source).is_err() {
            std::fs::create_dir_all(&source)
                .map_err(|e| internal(format!("create bind source {}: {e}", source.display())))?;
        }
        let prop = propagation(&mp.propagation);
        if !matches!(prop, Propagation::Private | Propagation::Rprivate) {
            let made = crate::propagation::ensure_shared(&source).map_err(|e| {
                internal(format!(
                    "make {} a shared mount for {} propagation: {e}",
                    source.display(),
                    mp.propagation
                ))
            })?;
            if let Some(path) = made {
                lock(&self.shared_binds).insert(path);
            }
        }
        Ok(BindMount {
            source,
            destination: mp.destination.clone(),
            writable: mp.rw,
            propagation: prop,
            non_recursive: mp.non_recursive,
        })
    }

    /// `unmount` events for a container that stopped.
    pub(crate) fn mounts_stopped(&self, record: &ContainerRecord) {
        for mp in &record.mount_points {
            if mp.kind == MountKind::Volume {
                self.volumes.unmounted(&mp.name, &record.id);
            }
        }
    }

    /// At remove: forgets the container's volume references; with `remove_anonymous` also
    /// removes its anonymous volumes that nothing else uses (as dockerd, silently otherwise).
    pub(crate) fn release_mounts(&self, record: &ContainerRecord, remove_anonymous: bool) {
        self.release_self_binds(record);
        for mp in &record.mount_points {
            if mp.kind != MountKind::Volume {
                continue;
            }
            if let Err(e) = self.volumes.release(&mp.name, &record.id) {
                tracing::warn!("release volume {} of {}: {e}", mp.name, record.id);
                continue;
            }
            if remove_anonymous && mp.anonymous {
                match self.volumes.remove(&mp.name, true) {
                    Ok(()) | Err(VolumeError::InUse { .. }) => {}
                    Err(e) => tracing::warn!("remove anonymous volume {}: {e}", mp.name),
                }
            }
        }
    }

    /// Unmounts the shared self-binds this container's binds needed, unless another container
    /// binds the same source.
    fn release_self_binds(&self, record: &ContainerRecord) {
        let sources: Vec<PathBuf> = record
            .mount_points
            .iter()
            .filter(|mp| mp.kind == MountKind::Bind)
            .filter_map(|mp| std::fs::canonicalize(&mp.source).ok())
            .collect();
        let mut made = lock(&self.shared_binds);
        for source in sources {
            if !made.contains(&source) {
                continue;
            }
            let in_use = self.read_index().values().any(|c| {
                c.id != record.id
                    && c.snapshot().mount_points.iter().any(|mp| {
                        mp.kind == MountKind::Bind
                            && std::fs::canonicalize(&mp.source).ok().as_ref() == Some(&source)
                    })
            });
            if !in_use {
                crate::propagation::release_self_bind(&source);
                made.remove(&source);
            }
        }
    }

    /// At start-up: volume references of containers that do not exist any more are dropped.
    pub fn reconcile_volume_users(&self) {
        let known: std::collections::BTreeSet<String> = self.read_index().keys().cloned().collect();
        match self.volumes.retain_users(&known) {
            Ok(0) => {}
            Ok(n) => tracing::info!("dropped {n} volume references of missing containers"),
            Err(e) => tracing::warn!("reconcile volume references: {e}"),
        }
    }

    /// `docker rm [-v]`.
    pub fn remove_with_volumes(
        &self,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), ContainerError> {
        let record = self.get(name)?.snapshot();
        self.remove(name, force)?;
        if volumes {
            self.release_mounts(&record, true);
        }
        Ok(())
    }
}
