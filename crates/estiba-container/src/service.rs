//! The service object: the in-memory index of containers, lookups by ID, prefix or name,
//! state changes (persisted, broadcast), listing, and opening with live restore.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use estiba_events::{Event, EventBus};
use estiba_image::service::ImageService;
use estiba_shim::AttachOptions;
use estiba_snapshot::Snapshotter;
use estiba_store::{Reader, Store, Table};
use tokio::sync::{oneshot, watch};

use crate::error::{internal, ContainerError};
use crate::model::{ContainerConfig, ContainerRecord, HostOptions, Status};

/// The `containers` table: container ID -> [`ContainerRecord`].
pub(crate) const CONTAINERS: Table = Table::new("containers");

/// Most containers one daemon manages.
pub const MAX_CONTAINERS: usize = 100_000;

/// An OCI runtime binary and its extra global arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// An absolute path, or a name looked up in `PATH`.
    pub path: PathBuf,
    pub args: Vec<String>,
}

/// Where the service keeps things and which binaries it runs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `<data-root>`: container dirs go in `<data-root>/containers/<id>`.
    pub data_root: PathBuf,
    /// `<exec-root>`: shim state in `<exec-root>/containers/<short-id>`, runtime state in
    /// `<exec-root>/runtime/<name>`.
    pub exec_root: PathBuf,
    /// The `estiba-shim` binary.
    pub shim_binary: PathBuf,
    /// Runtimes by name.
    pub runtimes: BTreeMap<String, RuntimeConfig>,
    /// The name used when a container names none.
    pub default_runtime: String,
    /// `--init`'s binary, if one is configured.
    pub init_binary: Option<PathBuf>,
}

/// What the async side can observe of a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Watch {
    pub status: Status,
    pub exit_code: i64,
    /// Error of the last start or exit, "" if none.
    pub error: String,
    /// How many exits have been recorded since the daemon started.
    pub exits: u64,
    pub removed: bool,
}

/// `condition` of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

/// What a wait ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitResult {
    pub exit_code: i64,
    pub error: Option<String>,
}

/// An attach stream, now or once the container starts.
pub enum Attach {
    /// Connected to the running container's shim.
    Stream(UnixStream),
    /// Connected when the container next starts (before its process runs); the sender is
    /// dropped when that start fails or the container goes away.
    Pending(oneshot::Receiver<UnixStream>),
}

/// `docker create`'s input, in domain form.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// `?name=`; empty for a generated name.
    pub name: String,
    pub config: ContainerConfig,
    pub host: HostOptions,
}

/// `start`'s outcome: Docker answers 304 when the container already runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    Started,
    AlreadyRunning,
}

/// `stop`'s outcome: Docker answers 304 when it was not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    Stopped,
    NotRunning,
}

/// `docker ps` filters, already parsed.
#[derive(Debug, Clone, Default)]
pub struct ListFilters {
    pub all: bool,
    /// Most recently created first, at most this many (`-n`); implies `all`.
    pub limit: Option<usize>,
    pub status: Vec<String>,
    pub name: Vec<String>,
    pub id: Vec<String>,
    /// `key` or `key=value`.
    pub label: Vec<String>,
    /// Image IDs (full "sha256:...") the container must be from.
    pub ancestor_ids: Vec<String>,
    pub exited: Vec<i64>,
    /// `volume=`: a volume name or a mount destination.
    pub volume: Vec<String>,
    /// `health=`: starting, healthy, unhealthy or none.
    pub health: Vec<String>,
}

/// A row of `docker ps`.
#[derive(Debug, Clone)]
pub struct Summary {
    pub record: ContainerRecord,
    /// Bytes in the writable layer, when asked for.
    pub size_rw_bytes: Option<u64>,
    /// The writable layer plus the image's layers (`SizeRootFs`), when asked for.
    pub size_root_fs_bytes: Option<u64>,
}

/// One container in memory.
pub(crate) struct Container {
    pub(crate) id: String,
    pub(crate) record: Mutex<ContainerRecord>,
    /// Signalled on every state change, for blocking waiters.
    pub(crate) changed: Condvar,
    /// Held across start, exit handling and removal, so they never interleave.
    pub(crate) op: Mutex<()>,
    pub(crate) watch: watch::Sender<Watch>,
    pub(crate) pending_attaches: Mutex<Vec<PendingAttach>>,
    /// The restart policy's back-off (in memory, as moby's restart manager).
    pub(crate) restart: Mutex<crate::restart::Backoff>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent; a panic elsewhere does not poison it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Container {
    pub(crate) fn new(record: ContainerRecord) -> Arc<Container> {
        let (watch, _) = watch::channel(Watch {
            status: record.state.status,
            exit_code: record.state.exit_code,
            error: record.state.error.clone(),
            exits: 0,
            removed: false,
        });
        Arc::new(Container {
            id: record.id.clone(),
            record: Mutex::new(record),
            changed: Condvar::new(),
            op: Mutex::new(()),
            watch,
            pending_attaches: Mutex::new(Vec::new()),
            restart: Mutex::new(Default::default()),
        })
    }

    pub(crate) fn snapshot(&self) -> ContainerRecord {
        lock(&self.record).clone()
    }

    pub(crate) fn op_lock(&self) -> MutexGuard<'_, ()> {
        lock(&self.op)
    }

    /// Blocks until `done` holds for the record or `timeout` passes; returns whether it held.
    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&ContainerRecord) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut rec = lock(&self.record);
        loop {
            if done(&rec) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            rec = match self.changed.wait_timeout(rec, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// A removal releasing files; see [`ContainerService::drain_releases`].
pub(crate) struct ReleaseGuard<'a>(&'a ContainerService);

impl Drop for ReleaseGuard<'_> {
    fn drop(&mut self) {
        let (count, changed) = &self.0.releasing;
        let mut n = lock(count);
        *n = n.saturating_sub(1);
        changed.notify_all();
    }
}

/// The container service.
pub struct ContainerService {
    pub(crate) store: Arc<Store>,
    pub(crate) snapshots: Arc<dyn Snapshotter>,
    pub(crate) images: Arc<ImageService>,
    pub(crate) events: Arc<EventBus>,
    pub(crate) config: ServiceConfig,
    /// By ID. Creation and renames take the write lock, so names stay unique.
    pub(crate) containers: RwLock<BTreeMap<String, Arc<Container>>>,
    pub(crate) host: estiba_oci::HostInfo,
    /// `docker exec` instances (in memory only, as Docker).
    pub(crate) execs: crate::exec::ExecTable,
    /// Named and anonymous volumes (mounted at start, released at remove).
    pub(crate) volumes: Arc<estiba_volume::VolumeService>,
    /// Networks (a container joins them at start, leaves them at exit).
    pub(crate) networks: Arc<estiba_net::NetworkService>,
    /// Removals whose record is gone but whose files are still being released (unmount,
    /// shim, snapshot): shutdown waits for them, so a clean stop leaves no mount behind.
    pub(crate) releasing: (Mutex<usize>, Condvar),
    /// Shared self-binds made for bind propagation (see `propagation.rs`), unmounted when the
    /// last container binding them is removed.
    pub(crate) shared_binds: Mutex<std::collections::BTreeSet<PathBuf>>,
}

impl ContainerService {
    /// Opens the service: loads every record, then reconnects to the shims of running
    /// containers (live restore) and records the exits that happened while the daemon was away.
    pub fn open(
        store: Arc<Store>,
        snapshots: Arc<dyn Snapshotter>,
        images: Arc<ImageService>,
        events: Arc<EventBus>,
        volumes: Arc<estiba_volume::VolumeService>,
        networks: Arc<estiba_net::NetworkService>,
        config: ServiceConfig,
    ) -> Result<Arc<ContainerService>, ContainerError> {
        let host = estiba_oci::HostInfo::detect().map_err(internal)?;
        for dir in [
            config.data_root.join("containers"),
            config.exec_root.join("containers"),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| internal(format!("create {}: {e}", dir.display())))?;
        }
        let records: Vec<(String, ContainerRecord)> = store
            .read()
            .map_err(internal)?
            .scan(CONTAINERS, "")
            .map_err(internal)?;
        let mut map = BTreeMap::new();
        for (_, record) in records {
            map.insert(record.id.clone(), Container::new(record));
        }
        let service = Arc::new(ContainerService {
            store,
            snapshots,
            images,
            events,
            config,
            containers: RwLock::new(map),
            host,
            execs: Default::default(),
            volumes,
            networks,
            releasing: (Mutex::new(0), Condvar::new()),
            shared_binds: Mutex::new(Default::default()),
        });
        service.collect_garbage();
        service.restore();
        service.net_reconcile();
        service.start_by_policy();
        Ok(service)
    }

    /// Container snapshots (`c-<id>`) and directories without a record: leftovers of a crash
    /// between removing a record and its files.
    fn collect_garbage(&self) {
        let known: std::collections::HashSet<String> = self.read_index().keys().cloned().collect();
        if let Ok(keys) = self.snapshots.list() {
            for key in keys {
                if let Some(id) = key.strip_prefix("c-") {
                    if !known.contains(id) {
                        tracing::info!("removing snapshot {key} of a container without a record");
                        let _ = self
                            .snapshots
                            .unmount(&self.container_dir(id).join("rootfs"));
                        if let Err(e) = self.snapshots.remove(&key) {
                            tracing::warn!("remove snapshot {key}: {e}");
                        }
                    }
                }
            }
        }
        // Shims whose container has no record (a crash during an AutoRemove removal): let them
        // go, which also deletes their runtime state.
        if let Ok(entries) = std::fs::read_dir(self.config.exec_root.join("containers")) {
            for entry in entries.flatten() {
                let short = entry.file_name().to_string_lossy().into_owned();
                if known.iter().any(|id| id.starts_with(&short)) {
                    continue;
                }
                if let Ok(client) = estiba_shim::ShimClient::for_state_dir(entry.path()) {
                    tracing::info!("stopping the shim of a container without a record ({short})");
                    let _ = client.kill(9, true);
                    let _ = client.wait();
                    let _ = client.shutdown();
                }
                remove_dir(&entry.path());
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.config.data_root.join("containers")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.len() == 64 && !known.contains(&name) {
                    let _ = self.snapshots.unmount(&entry.path().join("rootfs"));
                    if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                        tracing::warn!("remove {}: {e}", entry.path().display());
                    }
                }
            }
        }
    }

    /// Waits, at most `timeout`, for removals still releasing files (daemon shutdown).
    pub fn drain_releases(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (count, changed) = &self.releasing;
        let mut n = lock(count);
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = match changed.wait_timeout(n, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }

    /// Counts a release in progress until the guard drops.
    pub(crate) fn release_guard(&self) -> ReleaseGuard<'_> {
        *lock(&self.releasing.0) += 1;
        ReleaseGuard(self)
    }

    pub(crate) fn read_index(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Container>>> {
        self.containers.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_index(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Container>>> {
        self.containers.write().unwrap_or_else(|e| e.into_inner())
    }

    /// `<data-root>/containers/<id>`.
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.config.data_root.join("containers").join(id)
    }

    /// `<exec-root>/containers/<short-id>`: short, so socket paths fit in `sun_path`.
    pub(crate) fn state_dir(&self, id: &str) -> PathBuf {
        self.config
            .exec_root
            .join("containers")
            .join(crate::names::short_id(id))
    }

    /// The json-file log of a container.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// Resolves a full ID, a name (with or without `/`) or a unique ID prefix, as Docker does.
    pub(crate) fn get(&self, name: &str) -> Result<Arc<Container>, ContainerError> {
        let index = self.read_index();
        find(&index, name).ok_or_else(|| ContainerError::NotFound(name.to_string()))
    }

    /// The record of one container.
    pub fn inspect(&self, name: &str) -> Result<ContainerRecord, ContainerError> {
        Ok(self.get(name)?.snapshot())
    }

    /// The full ID `name` resolves to.
    pub fn resolve_id(&self, name: &str) -> Result<String, ContainerError> {
        Ok(self.get(name)?.id.clone())
    }

    /// Writes the record to the database.
    pub(crate) fn persist(&self, record: &ContainerRecord) -> Result<(), ContainerError> {
        self.persist_with(record, true)
    }

    /// [`Self::persist`]; `synced: false` leaves the sync to the next commit (see
    /// `WriteTx::commit_unsynced`).
    fn persist_with(&self, record: &ContainerRecord, synced: bool) -> Result<(), ContainerError> {
        let mut tx = self.store.write().map_err(internal)?;
        tx.put(CONTAINERS, &record.id, record).map_err(internal)?;
        if synced {
            tx.commit().map_err(internal)
        } else {
            tx.commit_unsynced().map_err(internal)
        }
    }

    /// Changes a container's record, persists it, and tells every waiter.
    pub(crate) fn update(
        &self,
        c: &Container,
        change: impl FnOnce(&mut ContainerRecord),
        exited: bool,
    ) -> ContainerRecord {
        self.update_with(c, change, exited, true)
    }

    /// [`Self::update`]; `synced: false` when a durable commit follows at once (an exit that
    /// AutoRemove's removal commits right after: a crash between them finds the container
    /// running, asks its shim, and records the exit then).
    pub(crate) fn update_with(
        &self,
        c: &Container,
        change: impl FnOnce(&mut ContainerRecord),
        exited: bool,
        synced: bool,
    ) -> ContainerRecord {
        let record = {
            let mut rec = lock(&c.record);
            change(&mut rec);
            rec.clone()
        };
        if let Err(e) = self.persist_with(&record, synced) {
            tracing::error!("persist container {}: {e}", record.id);
        }
        c.changed.notify_all();
        c.watch.send_modify(|w| {
            w.status = record.state.status;
            w.exit_code = record.state.exit_code;
            w.error = record.state.error.clone();
            if exited {
                w.exits += 1;
            }
        });
        record
    }

    /// Publishes a container event with Docker's attributes (name, image, labels).
    pub(crate) fn publish(&self, record: &ContainerRecord, action: &str, extra: &[(&str, &str)]) {
        let mut event = Event::now("container", action, &record.id)
            .attr("name", &record.name)
            .attr("image", &record.config.image);
        for (k, v) in &record.config.labels {
            event = event.attr(k, v);
        }
        for (k, v) in extra {
            event = event.attr(k, v);
        }
        self.events.publish(event);
    }

    /// A receiver for the container's state changes, taken before the caller looks at it.
    pub fn subscribe(
        &self,
        name: &str,
    ) -> Result<(String, watch::Receiver<Watch>), ContainerError> {
        let c = self.get(name)?;
        Ok((c.id.clone(), c.watch.subscribe()))
    }

    /// Every container matching `filters`, newest first.
    pub fn list(&self, filters: &ListFilters, size: bool) -> Result<Vec<Summary>, ContainerError> {
        let mut records: Vec<ContainerRecord> =
            self.read_index().values().map(|c| c.snapshot()).collect();
        records.sort_by_key(|r| std::cmp::Reverse(r.created_nano));
        let all = filters.all || filters.limit.is_some() || !filters.status.is_empty();
        let mut out = Vec::new();
        let mut image_sizes = HashMap::new();
        for record in records {
            // Docker counts a restarting container as running.
            if !all
                && !record.state.status.is_running()
                && record.state.status != Status::Restarting
            {
                continue;
            }
            if !matches(&record, filters) {
                continue;
            }
            if filters.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            let size_rw_bytes = if size {
                self.snapshots.usage(&record.snapshot_key).ok()
            } else {
                None
            };
            let size_root_fs_bytes =
                size_rw_bytes.map(|rw| rw + self.image_size(&record.image_id, &mut image_sizes));
            out.push(Summary {
                record,
                size_rw_bytes,
                size_root_fs_bytes,
            });
        }
        Ok(out)
    }

    /// Counts (total, running, paused, stopped) for `/info`.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let index = self.read_index();
        let (mut running, mut paused) = (0, 0);
        for c in index.values() {
            match lock(&c.record).state.status {
                Status::Running | Status::Restarting => running += 1,
                Status::Paused => paused += 1,
                _ => {}
            }
        }
        let total = index.len();
        (total, running, paused, total - running - paused)
    }

    /// The containers using image `image_id`: (short container ID, running?) of the first, if
    /// any, for `docker rmi`'s conflict message.
    pub fn image_user(&self, image_id: &str) -> Option<(String, bool)> {
        let index = self.read_index();
        let mut stopped = None;
        for c in index.values() {
            let rec = lock(&c.record);
            if rec.image_id == image_id {
                if rec.state.status.is_running() {
                    return Some((crate::names::short_id(&rec.id).to_string(), true));
                }
                stopped.get_or_insert_with(|| crate::names::short_id(&rec.id).to_string());
            }
        }
        stopped.map(|id| (id, false))
    }

    /// Bytes in a container's writable layer.
    pub fn size_rw(&self, record: &ContainerRecord) -> Option<u64> {
        self.snapshots.usage(&record.snapshot_key).ok()
    }

    /// Bytes of the container's whole filesystem: its writable layer and its image's layers
    /// (moby's `SizeRootFs`).
    pub fn size_root_fs(&self, record: &ContainerRecord) -> Option<u64> {
        let rw = self.size_rw(record)?;
        Some(rw + self.image_size(&record.image_id, &mut HashMap::new()))
    }

    /// The unpacked size of an image (0 once it is gone), looked up once per image in `cache`.
    fn image_size(&self, image_id: &str, cache: &mut HashMap<String, u64>) -> u64 {
        *cache.entry(image_id.to_owned()).or_insert_with(|| {
            self.images
                .inspect(image_id)
                .map_or(0, |i| i.summary.size_bytes)
        })
    }

    /// The directories behind a container's snapshot, for inspect's GraphDriver.
    pub fn graph_dirs(&self, record: &ContainerRecord) -> Option<estiba_snapshot::SnapshotDirs> {
        self.snapshots.dirs(&record.snapshot_key).ok()
    }

    /// The storage driver's name.
    pub fn driver_name(&self) -> &'static str {
        self.snapshots.driver_name()
    }

    /// The runtime name a container without one gets.
    pub fn default_runtime(&self) -> &str {
        &self.config.default_runtime
    }

    /// Where a container's generated files are.
    pub fn container_files(&self, id: &str) -> (PathBuf, PathBuf, PathBuf) {
        let dir = self.container_dir(id);
        (
            dir.join("resolv.conf"),
            dir.join("hostname"),
            dir.join("hosts"),
        )
    }

    /// `POST /containers/{id}/resize`: the pty's window size (a no-op without a TTY, as Docker).
    pub fn resize(&self, name: &str, height: u16, width: u16) -> Result<(), ContainerError> {
        let c = self.get(name)?;
        let record = c.snapshot();
        if !record.state.status.is_running() {
            return Err(ContainerError::Conflict(format!(
                "cannot resize container {}: container {} is not running",
                name, record.id
            )));
        }
        if !record.config.tty {
            return Ok(());
        }
        let client =
            estiba_shim::ShimClient::for_state_dir(self.state_dir(&c.id)).map_err(internal)?;
        client.resize(height, width).map_err(internal)
    }

    /// Registers an attach: connected now when the container runs, else at its next start.
    pub fn attach(
        &self,
        name: &str,
        options: AttachOptions,
    ) -> Result<(ContainerRecord, Attach), ContainerError> {
        let c = self.get(name)?;
        let _op = c.op_lock();
        let record = c.snapshot();
        if record.state.status.is_running() {
            let client =
                estiba_shim::ShimClient::for_state_dir(self.state_dir(&c.id)).map_err(internal)?;
            let stream = client.attach(options).map_err(internal)?;
            self.publish(&record, "attach", &[]);
            return Ok((record, Attach::Stream(stream)));
        }
        let (tx, rx) = oneshot::channel();
        lock(&c.pending_attaches).push((options, tx));
        self.publish(&record, "attach", &[]);
        Ok((record, Attach::Pending(rx)))
    }
}

/// An attach made while the container was not running, connected at its next start.
pub(crate) type PendingAttach = (AttachOptions, oneshot::Sender<UnixStream>);

/// Docker's lookup order: full ID, exact name, unique ID prefix.
pub(crate) fn find(index: &BTreeMap<String, Arc<Container>>, name: &str) -> Option<Arc<Container>> {
    if name.is_empty() {
        return None;
    }
    if let Some(c) = index.get(name) {
        return Some(Arc::clone(c));
    }
    let bare = name.strip_prefix('/').unwrap_or(name);
    if let Some(c) = index.values().find(|c| lock(&c.record).name == bare) {
        return Some(Arc::clone(c));
    }
    let mut found = index
        .range(name.to_string()..)
        .take_while(|(id, _)| id.starts_with(name));
    match (found.next(), found.next()) {
        (Some((_, c)), None) => Some(Arc::clone(c)),
        _ => None,
    }
}

fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(filter),
    }
}

fn matches(record: &ContainerRecord, f: &ListFilters) -> bool {
    if !f.status.is_empty() && !f.status.iter().any(|s| s == record.state.status.as_str()) {
        return false;
    }
    if !f.name.is_empty() && !f.name.iter().any(|n| name_matches(&record.name, n)) {
        return false;
    }
    if !f.id.is_empty() && !f.id.iter().any(|p| record.id.starts_with(p.as_str())) {
        return false;
    }
    if !f
        .label
        .iter()
        .all(|l| label_matches(&record.config.labels, l))
    {
        return false;
    }
    if !f.ancestor_ids.is_empty() && !f.ancestor_ids.iter().any(|a| a == &record.image_id) {
        return false;
    }
    if !crate::mounts::uses_volume(record, &f.volume) {
        return false;
    }
    if !crate::health::health_filter_matches(record, &f.health) {
        return false;
    }
    let exited_ok = f.exited.is_empty()
        || (record.state.status == Status::Exited && f.exited.contains(&record.state.exit_code));
    if !exited_ok {
        return false;
    }
    true
}

/// Docker's name filter is an unanchored regular expression on "/name"; we support the common
/// forms: a substring, `^` and `$` anchors.
fn name_matches(name: &str, pattern: &str) -> bool {
    let full = format!("/{name}");
    let (anchored_start, p) = match pattern.strip_prefix('^') {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    let (anchored_end, p) = match p.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, p),
    };
    match (anchored_start, anchored_end) {
        (true, true) => full == p || name == p,
        (true, false) => full.starts_with(p) || name.starts_with(p),
        (false, true) => full.ends_with(p),
        (false, false) => full.contains(p),
    }
}

/// Removes a directory tree, ignoring one that is already gone.
pub(crate) fn remove_dir(path: &Path) {
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("remove {}: {e}", path.display()),
    }
}

/// Waits for `condition` on a receiver taken (with [`ContainerService::subscribe`]) before the
/// request was answered, so no change in between is missed.
pub async fn wait(mut rx: watch::Receiver<Watch>, condition: WaitCondition) -> WaitResult {
    let start = rx.borrow_and_update().clone();
    // A removed container's start error was already reported by start itself (the docker
    // CLI would print it twice).
    let result = |w: &Watch| WaitResult {
        exit_code: w.exit_code,
        error: (!w.error.is_empty() && condition != WaitCondition::Removed)
            .then(|| w.error.clone()),
    };
    if condition == WaitCondition::NotRunning && !start.status.is_running() {
        return result(&start);
    }
    loop {
        let now = rx.borrow_and_update().clone();
        let done = match condition {
            WaitCondition::NotRunning => !now.status.is_running(),
            WaitCondition::NextExit => now.exits > start.exits || now.removed,
            WaitCondition::Removed => now.removed,
        };
        if done {
            return result(&now);
        }
        if rx.changed().await.is_err() {
            // The container is gone from memory: it was removed.
            return result(&rx.borrow().clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_filter_forms() {
        let cases = [
            ("web", "web", true),
            ("web", "we", true),
            ("web", "^/web$", true),
            ("web", "^web$", true),
            ("web2", "^/web$", false),
            ("myweb", "^web", false),
            ("web", "x", false),
        ];
        for (name, pattern, want) in cases {
            assert_eq!(name_matches(name, pattern), want, "{name} {pattern}");
        }
    }

    #[test]
    fn lookup_by_id_name_and_prefix() {
        let mut index = BTreeMap::new();
        for (id, name) in [("abc123", "web"), ("abd456", "db"), ("f00", "abc")] {
            let rec = ContainerRecord {
                id: id.into(),
                name: name.into(),
                ..Default::default()
            };
            index.insert(id.to_string(), Container::new(rec));
        }
        let cases = [
            ("abc123", Some("abc123")),
            ("web", Some("abc123")),
            ("/db", Some("abd456")),
            ("abc", Some("f00")),
            ("abd", Some("abd456")),
            ("ab", None),
            ("zzz", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(
                find(&index, name).map(|c| c.id.clone()).as_deref(),
                want,
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn wait_conditions() {
        let (tx, _) = watch::channel(Watch {
            status: Status::Running,
            ..Default::default()
        });
        let next = tokio::spawn(wait(tx.subscribe(), WaitCondition::NextExit));
        let removed = tokio::spawn(wait(tx.subscribe(), WaitCondition::Removed));
        tokio::task::yield_now().await;
        tx.send_modify(|w| {
            w.status = Status::Exited;
            w.exit_code = 3;
            w.exits += 1;
        });
        assert_eq!(next.await.unwrap().exit_code, 3);
        // not-running answers at once for a stopped container.
        assert_eq!(
            wait(tx.subscribe(), WaitCondition::NotRunning)
                .await
                .exit_code,
            3
        );
        tx.send_modify(|w| {
            w.removed = true;
            w.error = "boom".into();
        });
        let r = removed.await.unwrap();
        assert_eq!((r.exit_code, r.error), (3, None));
    }
}
