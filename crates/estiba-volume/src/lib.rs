//! Volumes: the `local` driver (named and anonymous volumes under `<data-root>/volumes`).
//!
//! A volume is a record in the `volumes` table plus a directory `<root>/<name>/_data`. The
//! record is the source of truth (the directory is created after it, removed before it goes).
//! The record also holds the IDs of the containers that use the volume, so "in use" survives a
//! daemon restart without asking the container service. Driver options (`type`, `device`, `o`)
//! mount a filesystem on `_data` the first time a container starts with the volume.

mod archive;
mod copy;
mod driver;
mod name;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use estiba_events::{Event, EventBus};
use estiba_store::{Reader, Store, StoreError, Table};
use serde::{Deserialize, Serialize};

pub use archive::{MAX_IMPORT_ENTRIES, MAX_IMPORT_ENTRY_NAME_BYTES};
pub use copy::{components as path_components, resolve_in_root};
pub use copy::{copy_up, disk_usage};
pub use name::validate_name;

/// The label Docker 23+ puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
/// The volumes table: name -> [`VolumeRecord`].
pub const VOLUMES: Table = Table::new("volumes");
/// Most volumes one daemon keeps.
pub const MAX_VOLUMES: usize = 100_000;
/// Most labels or driver options on one volume.
pub const MAX_LABELS: usize = 256;

/// Opening the volume service failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A volume operation failed; messages are dockerd's.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A bad name or option (400).
    #[error("create {name}: {reason}")]
    InvalidCreate { name: String, reason: String },
    /// Bad input to another operation (400).
    #[error("{0}")]
    InvalidParameter(String),
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("remove {name}: volume is in use - [{}]", .users.join(", "))]
    InUse { name: String, users: Vec<String> },
    /// Something that is not the caller's fault (409 when it is a state conflict).
    #[error("{0}")]
    Conflict(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("volume metadata: {0}")]
    Store(#[from] StoreError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> VolumeError {
    let context = context.into();
    move |source| VolumeError::Io { context, source }
}

/// One volume as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeRecord {
    pub name: String,
    /// RFC 3339, seconds precision (Docker's `CreatedAt`).
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    /// Driver options (`type`, `device`, `o`); empty for a plain directory.
    pub options: BTreeMap<String, String>,
    /// IDs of the containers whose mounts name this volume.
    pub users: BTreeSet<String>,
}

impl VolumeRecord {
    /// Whether Docker would call it anonymous (prune's default set).
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// A volume as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub record: VolumeRecord,
    /// `<root>/<name>/_data`.
    pub mountpoint: PathBuf,
}

/// What `POST /volumes/create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateVolume {
    /// Empty for a generated (anonymous-style) name.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// The volume service.
pub struct VolumeService {
    store: Arc<Store>,
    events: Arc<EventBus>,
    root: PathBuf,
    /// Serialises read-modify-write of records and the directories that go with them.
    lock: Mutex<()>,
}

impl VolumeService {
    /// Opens the service with volumes under `<data_root>/volumes`.
    pub fn open(
        store: Arc<Store>,
        events: Arc<EventBus>,
        data_root: &Path,
    ) -> Result<Arc<VolumeService>, OpenError> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root).map_err(|source| OpenError::CreateDir {
            path: root.clone(),
            source,
        })?;
        // As dockerd: other users may traverse to a volume's _data but not list the volumes.
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o701));
        }
        Ok(Arc::new(VolumeService {
            store,
            events,
            root,
            lock: Mutex::new(()),
        }))
    }

    /// `<data-root>/volumes`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    fn volume(&self, record: VolumeRecord) -> Volume {
        Volume {
            mountpoint: self.data_dir(&record.name),
            record,
        }
    }

    fn publish(&self, action: &str, name: &str, attrs: &[(&str, &str)]) {
        let mut e = Event::now("volume", action, name).attr("driver", "local");
        for (k, v) in attrs {
            e = e.attr(k, v);
        }
        self.events.publish(e);
    }

    /// `docker volume create`: an existing volume of that name is returned as it is.
    pub fn create(&self, req: CreateVolume) -> Result<Volume, VolumeError> {
        let name = if req.name.is_empty() {
            hex::encode(rand::random::<[u8; 32]>())
        } else {
            req.name.clone()
        };
        let invalid = |reason: String| VolumeError::InvalidCreate {
            name: name.clone(),
            reason,
        };
        validate_name(&name).map_err(invalid)?;
        if req.labels.len() > MAX_LABELS || req.options.len() > MAX_LABELS {
            return Err(invalid(format!("at most {MAX_LABELS} labels and options")));
        }
        driver::validate_options(&req.options).map_err(invalid)?;
        let _g = self.guard();
        let mut tx = self.store.write()?;
        if let Some(existing) = tx.get::<VolumeRecord>(VOLUMES, &name)? {
            return Ok(self.volume(existing));
        }
        if tx.scan::<VolumeRecord>(VOLUMES, "")?.len() >= MAX_VOLUMES {
            return Err(VolumeError::Conflict(format!(
                "too many volumes (at most {MAX_VOLUMES})"
            )));
        }
        let record = VolumeRecord {
            name: name.clone(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels: req.labels,
            options: req.options,
            users: BTreeSet::new(),
        };
        tx.put(VOLUMES, &name, &record)?;
        let data = self.data_dir(&name);
        create_data_dir(&data)?;
        if let Err(e) = tx.commit() {
            let _ = std::fs::remove_dir_all(self.root.join(&name));
            return Err(e.into());
        }
        self.publish("create", &name, &[]);
        Ok(self.volume(record))
    }

    /// `docker volume inspect`.
    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        let tx = self.store.read()?;
        tx.get::<VolumeRecord>(VOLUMES, name)?
            .map(|r| self.volume(r))
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let tx = self.store.read()?;
        Ok(tx
            .scan::<VolumeRecord>(VOLUMES, "")?
            .into_iter()
            .map(|(_, r)| self.volume(r))
            .collect())
    }

    /// `docker volume rm`; `force` only makes a missing volume not an error (as dockerd).
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let _g = self.guard();
        let mut tx = self.store.write()?;
        let Some(record) = tx.get::<VolumeRecord>(VOLUMES, name)? else {
            return if force {
                Ok(())
            } else {
                Err(VolumeError::NotFound(name.to_string()))
            };
        };
        if !record.users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                users: record.users.iter().cloned().collect(),
            });
        }
        let data = self.data_dir(name);
        driver::unmount_if_mounted(&data)
            .map_err(|e| VolumeError::Conflict(format!("remove {name}: {e}")))?;
        tx.remove(VOLUMES, name)?;
        tx.commit()?;
        if let Err(e) = std::fs::remove_dir_all(self.root.join(name)) {
            tracing::warn!("remove volume directory of {name}: {e}");
        }
        self.publish("destroy", name, &[]);
        Ok(())
    }

    /// `POST /volumes/prune`: unused volumes that `keep` does not keep; anonymous ones only
    /// unless `all` (Docker 23+). Returns the names removed and the bytes reclaimed.
    pub fn prune(
        &self,
        all: bool,
        keep: &dyn Fn(&VolumeRecord) -> bool,
    ) -> Result<(Vec<String>, u64), VolumeError> {
        let mut names = Vec::new();
        let mut reclaimed = 0u64;
        for v in self.list()? {
            let r = &v.record;
            if !r.users.is_empty() || (!all && !r.is_anonymous()) || keep(r) {
                continue;
            }
            let size = self.usage_bytes(&r.name);
            match self.remove(&r.name, false) {
                Ok(()) => {
                    reclaimed = reclaimed.saturating_add(size);
                    names.push(r.name.clone());
                }
                // Taken by a container since the list: not unused any more.
                Err(VolumeError::InUse { .. } | VolumeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.events
            .publish(Event::now("volume", "prune", "").attr("reclaimed", &reclaimed.to_string()));
        Ok((names, reclaimed))
    }

    /// Records that `container_id` uses the volume (idempotent).
    pub fn acquire(&self, name: &str, container_id: &str) -> Result<(), VolumeError> {
        self.update_users(name, |u| {
            u.insert(container_id.to_string());
        })
    }

    /// Forgets that `container_id` uses the volume; a missing volume is fine.
    pub fn release(&self, name: &str, container_id: &str) -> Result<(), VolumeError> {
        match self.update_users(name, |u| {
            u.remove(container_id);
        }) {
            Err(VolumeError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    fn update_users(
        &self,
        name: &str,
        f: impl FnOnce(&mut BTreeSet<String>),
    ) -> Result<(), VolumeError> {
        let _g = self.guard();
        let mut tx = self.store.write()?;
        let mut record = tx
            .get::<VolumeRecord>(VOLUMES, name)?
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        f(&mut record.users);
        tx.put(VOLUMES, name, &record)?;
        tx.commit()?;
        Ok(())
    }

    /// Drops references of containers that no longer exist (a crash between a volume's
    /// reference and the container's record); returns how many were dropped.
    pub fn retain_users(&self, known: &BTreeSet<String>) -> Result<usize, VolumeError> {
        let _g = self.guard();
        let mut tx = self.store.write()?;
        let mut dropped = 0;
        for (name, mut record) in tx.scan::<VolumeRecord>(VOLUMES, "")? {
            let before = record.users.len();
            record.users.retain(|u| known.contains(u));
            if record.users.len() != before {
                dropped += before - record.users.len();
                tx.put(VOLUMES, &name, &record)?;
            }
        }
        tx.commit()?;
        Ok(dropped)
    }

    /// Makes the volume ready for a container that starts: mounts its driver options the first
    /// time, publishes `mount`; returns the directory to bind.
    pub fn mount(
        &self,
        name: &str,
        container_id: &str,
        destination: &str,
        read_write: bool,
        propagation: &str,
    ) -> Result<PathBuf, VolumeError> {
        let v = self.get(name)?;
        if !v.record.options.is_empty() {
            let _g = self.guard();
            driver::mount_options(&v.record.options, &v.mountpoint).map_err(|e| {
                VolumeError::Conflict(format!(
                    "error while mounting volume '{}': {e}",
                    v.mountpoint.display()
                ))
            })?;
        }
        self.publish(
            "mount",
            name,
            &[
                ("container", container_id),
                ("destination", destination),
                ("propagation", propagation),
                ("read/write", if read_write { "true" } else { "false" }),
            ],
        );
        Ok(v.mountpoint)
    }

    /// Publishes `unmount` for a container that stopped (the driver mount stays until rm).
    pub fn unmounted(&self, name: &str, container_id: &str) {
        self.publish("unmount", name, &[("container", container_id)]);
    }

    /// Copies `source` (a directory in a container's rootfs) into the volume if the volume is
    /// empty: Docker's copy-up of image content, keeping owners, modes and xattrs.
    pub fn populate(&self, name: &str, source: &Path) -> Result<bool, VolumeError> {
        let data = self.get(name)?.mountpoint;
        let _g = self.guard();
        copy::copy_up(source, &data).map_err(io(format!("copy image content into volume {name}")))
    }

    /// Bytes used under the volume's directory (`UsageData.Size`); 0 if unreadable.
    pub fn usage_bytes(&self, name: &str) -> u64 {
        copy::disk_usage(&self.data_dir(name))
    }

    /// Writes the volume's content as a tar (owners, modes, xattrs kept) to `out`.
    pub fn export(&self, name: &str, out: &mut dyn std::io::Write) -> Result<(), VolumeError> {
        let data = self.get(name)?.mountpoint;
        archive::export(&data, out).map_err(io(format!("export volume {name}")))
    }

    /// Fills an empty volume (created when missing) from a tar written by [`Self::export`].
    pub fn import(&self, name: &str, input: &mut dyn std::io::Read) -> Result<(), VolumeError> {
        let v = self.create(CreateVolume {
            name: name.to_string(),
            ..Default::default()
        })?;
        let _g = self.guard();
        // Unpacking by path is only safe while no container can change the tree under it.
        let users = self.get(name)?.record.users;
        if !users.is_empty() {
            let users: Vec<String> = users.into_iter().collect();
            return Err(VolumeError::Conflict(format!(
                "import {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        if !copy::is_empty_dir(&v.mountpoint).map_err(io(format!("read volume {name}")))? {
            return Err(VolumeError::Conflict(format!(
                "import {name}: volume is not empty"
            )));
        }
        archive::import(&v.mountpoint, input).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
                VolumeError::InvalidParameter(format!("import {name}: {e}"))
            }
            _ => VolumeError::Io {
                context: format!("import volume {name}"),
                source: e,
            },
        })
    }
}

fn create_data_dir(data: &Path) -> Result<(), VolumeError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(data).map_err(io(format!("create {}", data.display())))?;
    // Docker: the volume's own directory is root-only, _data is world-readable.
    if let Some(parent) = data.parent() {
        let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o701));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
