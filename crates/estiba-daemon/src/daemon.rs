//! Start-up, signals and shutdown: lock the data-root, bind sockets, open the services, serve
//! until SIGTERM/SIGINT, reload on SIGHUP, then clean up sockets and the PID file.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use estiba_events::{Event, EventBus};
use estiba_image::service::{ImageService, ImageServiceConfig};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::api::{self, AppState, SharedState};
use crate::config::{self, Config, Flags, GivenFlags, Reloadable};
use crate::listen::{self, Bound, Host};
use crate::lock::{DataRootLock, PidFile};
use crate::logging::LogHandle;
use crate::{host, runtimes, server};

/// Worker threads of the async runtime: the work is I/O-bound and blocking work has its own pool.
const WORKER_THREADS: usize = 2;
/// Most threads for blocking service calls (loads, saves, metadata reads) at once.
const MAX_BLOCKING_THREADS: usize = 16;
/// Idle blocking threads go away after this, so an idle daemon stays small.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Everything that must stay alive while serving, dropped (and cleaned up) at exit.
struct Held {
    _lock: DataRootLock,
    _pidfile: PidFile,
    sockets: Vec<PathBuf>,
}

impl Drop for Held {
    fn drop(&mut self) {
        for path in &self.sockets {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!("remove socket {}: {e}", path.display());
            }
        }
    }
}

fn create_dir(path: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .with_context(|| format!("create {}", path.display()))
}

/// Runs the daemon to completion.
pub(crate) fn run(flags: Flags, given: GivenFlags, config: Config, log: LogHandle) -> Result<()> {
    let hosts = config
        .hosts
        .iter()
        .map(|h| Host::parse(h))
        .collect::<Result<Vec<_>>>()?;
    // Traversable but not listable: the socket's own mode decides who may connect.
    create_dir(&config.data_root, 0o711)?;
    create_dir(&config.exec_root, 0o711)?;
    let lock = DataRootLock::acquire(&config.data_root)?;
    tracing::debug!("locked {}", lock.path().display());
    // A client may signal us as soon as the socket exists: from here on SIGTERM, SIGINT and
    // SIGHUP only set flags until the async handlers take over (their default is to die).
    let early_stop = Arc::new(AtomicBool::new(false));
    let early_hup = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (signal_hook::consts::SIGTERM, &early_stop),
        (signal_hook::consts::SIGINT, &early_stop),
        (signal_hook::consts::SIGHUP, &early_hup),
    ] {
        signal_hook::flag::register(sig, Arc::clone(flag)).context("install signal handlers")?;
    }
    // Bound before any thread exists: binding changes the process umask for a moment.
    let listeners = listen::bind_all(&hosts)?;
    let sockets = listeners
        .iter()
        .filter_map(|b| match b {
            Bound::Unix(_, p) => Some(p.clone()),
            Bound::Tcp(..) => None,
        })
        .collect();
    let pidfile = PidFile::create(&config.pidfile)?;
    // Read once, off the first container's start (kallsyms takes ~40 ms to read).
    std::thread::spawn(estiba_oci::kernel_runs_x32);
    let held = Held {
        _lock: lock,
        _pidfile: pidfile,
        sockets,
    };

    let events = Arc::new(EventBus::new());
    let store = estiba_store::Store::open(&config.data_root.join("metadata.redb"))
        .context("open metadata database")?;
    let snapshots = estiba_snapshot::detect(
        &config.data_root.join("snapshots"),
        config.storage_driver.as_deref(),
    )
    .context("set up the storage driver")?;
    let driver_name = snapshots.driver_name();
    let store = Arc::new(store);
    let snapshots: Arc<dyn estiba_snapshot::Snapshotter> = Arc::from(snapshots);
    let images = Arc::new(
        ImageService::open(
            Arc::clone(&store),
            Arc::clone(&snapshots),
            Arc::clone(&events),
            ImageServiceConfig {
                content_root: config.data_root.join("content"),
            },
        )
        .context("open the image service")?,
    );
    let (runtimes, default_runtime) =
        runtimes::resolve(&config.runtimes, config.default_runtime.as_deref())
            .context("configure runtimes")?;
    tracing::info!("default runtime: {default_runtime}");
    let volumes = estiba_volume::VolumeService::open(
        Arc::clone(&store),
        Arc::clone(&events),
        &config.data_root,
    )
    .context("open the volume service")?;
    let networks = estiba_net::NetworkService::open(
        Arc::clone(&store),
        Arc::clone(&events),
        crate::netconfig::net_config(&config)?,
    )
    .context("open the network service")?;
    let containers = estiba_container::ContainerService::open(
        store,
        snapshots,
        Arc::clone(&images),
        Arc::clone(&events),
        Arc::clone(&volumes),
        Arc::clone(&networks),
        estiba_container::ServiceConfig {
            data_root: config.data_root.clone(),
            exec_root: config.exec_root.clone(),
            shim_binary: runtimes::sibling("estiba-shim"),
            runtimes: runtimes.clone(),
            default_runtime,
            // `--init`'s docker-init: Debian's static tini runs in any rootfs.
            init_binary: init_binary(),
        },
    )
    .context("open the container service")?;
    containers.reconcile_volume_users();
    let weak = Arc::downgrade(&containers);
    images.set_in_use_check(Box::new(move |image_id| {
        weak.upgrade().and_then(|c| c.image_user(image_id))
    }));
    let engine_id = host::engine_id(&config.data_root).context("read the engine ID")?;
    let registry = estiba_registry::RegistryService::new(
        Arc::clone(&images),
        Arc::clone(&events),
        estiba_registry::RegistryConfig {
            insecure_registries: config.insecure_registries.clone(),
            mirrors: config.registry_mirrors.clone(),
            max_concurrent_downloads: config.max_concurrent_downloads as usize,
            max_concurrent_uploads: config.max_concurrent_uploads as usize,
            state_dir: Some(config.data_root.join("registry")),
            certs_dir: flags.net.registry_certs_dir.clone(),
        },
    );
    let builder = estiba_build::Builder::new(
        Arc::clone(&images),
        Arc::clone(&containers),
        Arc::clone(&events),
        config.data_root.join("builder"),
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state: SharedState = Arc::new(AppState {
        reloadable: RwLock::new(Reloadable::from(&config)),
        driver_status: driver_status(&config.data_root),
        config,
        events,
        images,
        containers,
        volumes,
        networks,
        registry,
        builder,
        runtimes,
        driver_name,
        engine_id,
        shutdown: shutdown_rx.clone(),
        event_listeners: AtomicI64::new(0),
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .thread_name("estibad")
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let result = runtime.block_on(async {
        let router = api::router(Arc::clone(&state));
        let serving = tokio::spawn(server::serve(listeners, router, shutdown_rx));
        tracing::info!(
            "estibad {} started (data-root {}, storage driver {})",
            host::VERSION,
            state.config.data_root.display(),
            state.driver_name
        );
        wait_for_signals(&state, &flags, &given, &log, &early_stop).await?;
        let _ = shutdown_tx.send(true);
        match serving.await {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!("server task failed: {e}")),
        }
    });
    // A container removal that already answered its waiters may still be unmounting.
    if !state.containers.drain_releases(Duration::from_secs(10)) {
        tracing::warn!("container removals still releasing files at shutdown");
    }
    if state.config.net.net_cleanup_on_exit {
        state.networks.teardown_all();
    }
    // Links taken down by a removal are deleted in the background: finish that.
    state.networks.drain();
    // Blocking work still running (a load) is abandoned; its writes are crash-safe.
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(held);
    tracing::info!("estibad stopped");
    result
}

/// Returns on SIGTERM or SIGINT; reloads the configuration on SIGHUP.
async fn wait_for_signals(
    state: &SharedState,
    flags: &Flags,
    given: &GivenFlags,
    log: &LogHandle,
    early_stop: &AtomicBool,
) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("install SIGHUP handler")?;
    if early_stop.load(Ordering::SeqCst) {
        tracing::info!("processing signal 'terminated' (received during start-up)");
        return Ok(());
    }
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("processing signal 'terminated'");
                return Ok(());
            }
            _ = int.recv() => {
                tracing::info!("processing signal 'interrupt'");
                return Ok(());
            }
            _ = hup.recv() => reload(state, flags, given, log),
        }
    }
}

/// Re-reads the configuration file and applies what can change while running, like dockerd.
fn reload(state: &SharedState, flags: &Flags, given: &GivenFlags, log: &LogHandle) {
    tracing::info!("got signal to reload configuration");
    let new = match config::load(flags, given) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload: {e}; keeping the current configuration");
            return;
        }
    };
    for (what, old, new) in [
        (
            "data-root",
            state.config.data_root.display().to_string(),
            new.data_root.display().to_string(),
        ),
        (
            "exec-root",
            state.config.exec_root.display().to_string(),
            new.exec_root.display().to_string(),
        ),
        ("hosts", state.config.hosts.join(","), new.hosts.join(",")),
        (
            "storage-driver",
            format!("{:?}", state.config.storage_driver),
            format!("{:?}", new.storage_driver),
        ),
    ] {
        if old != new {
            tracing::warn!("reload: {what} changed; it takes effect only after a restart");
        }
    }
    let settings = Reloadable::from(&new);
    log.set(new.effective_log_level());
    {
        let mut current = state.reloadable.write().unwrap_or_else(|e| e.into_inner());
        *current = settings.clone();
    }
    let attributes = settings.event_attributes();
    let summary: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tracing::info!("reloaded configuration: {}", summary.join(" "));
    let mut event =
        Event::now("daemon", "reload", &state.engine_id).attr("name", &host::uname().hostname);
    for (k, v) in &attributes {
        event = event.attr(k, v);
    }
    state.events.publish(event);
}

/// `DriverStatus` of `/info`: the filesystem under the data-root, as dockerd names it.
fn driver_status(data_root: &Path) -> Vec<[String; 2]> {
    let fs = match rustix::fs::statfs(data_root) {
        Ok(s) => match s.f_type as u64 {
            0xEF53 => "extfs",
            0x5846_5342 => "xfs",
            0x9123_683E => "btrfs",
            0x0102_1994 => "tmpfs",
            0x794C_7630 => "overlayfs",
            0x2FC1_2FC1 => "zfs",
            _ => "<unknown>",
        },
        Err(_) => "<unknown>",
    };
    vec![["Backing Filesystem".to_string(), fs.to_string()]]
}

/// `--init`'s binary: a `docker-init` next to estibad, else Debian's static tini.
fn init_binary() -> Option<PathBuf> {
    let found = [
        runtimes::sibling("docker-init"),
        PathBuf::from("/usr/bin/tini-static"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    if found.is_none() {
        tracing::warn!("no init binary (install Debian's tini package): --init will fail");
    }
    found
}
