//! Deferred link deletion. The kernel's deletion of a veth or a bridge waits for an RCU grace
//! period (20–60 ms measured here), so `network rm` and container teardown take the link down
//! synchronously (routes and bridge FDB entries go at once) and leave the deletion itself to one
//! background thread.
//!
//! Invariants: a name stays in `pending` until its link is gone, and anything that creates a
//! link with a fixed name (a bridge) first waits for that name ([`Reaper::wait_for`]); veth names
//! are random. The daemon drains the queue before it exits ([`Reaper::drain`]).
//!
//! A daemon killed with deletions queued would leave those links behind (down, unreferenced)
//! for good: each queued name is also an empty file in `<exec-root>/net-pending/`, removed once
//! the link is gone, and the next start deletes what those files still name
//! ([`Reaper::sweep`]). The exec-root is runtime state: a reboot takes links and files alike.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::netlink::Netlink;

/// Longest wait for a pending deletion.
const WAIT: Duration = Duration::from_secs(10);
/// Most leftover links deleted at start.
const MAX_SWEEP: usize = 4096;

#[derive(Default)]
struct Shared {
    /// Link name → how many queued deletions name it.
    pending: Mutex<BTreeMap<String, usize>>,
    done: Condvar,
    /// Where queued names are recorded for a restart (`None`: nowhere, in unit tests).
    dir: Option<PathBuf>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, usize>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finish(&self, name: &str) {
        let mut p = self.lock();
        if let Some(n) = p.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                p.remove(name);
                if let Some(file) = self.record(name) {
                    let _ = std::fs::remove_file(file);
                }
            }
        }
        self.done.notify_all();
    }

    /// The file recording a queued deletion of `name` (a kernel link name: no `/`).
    fn record(&self, name: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        (!name.is_empty() && !name.contains('/') && name != "." && name != "..")
            .then(|| dir.join(name))
    }
}

/// The background deleter.
#[derive(Default)]
pub(crate) struct Reaper {
    shared: Arc<Shared>,
    tx: Mutex<Option<Sender<(String, u32)>>>,
}

impl Reaper {
    /// A reaper recording its queue in `dir` (created if missing).
    pub(crate) fn new(dir: PathBuf) -> Reaper {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!("create {}: {e}", dir.display());
        }
        Reaper {
            shared: Arc::new(Shared {
                dir: Some(dir),
                ..Shared::default()
            }),
            tx: Mutex::default(),
        }
    }

    /// Deletes the links a killed daemon left queued (named by the files in the directory).
    pub(crate) fn sweep(&self) {
        let Some(dir) = self.shared.dir.clone() else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut nl = Netlink::open().ok();
        for entry in entries.flatten().take(MAX_SWEEP) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(nl) = nl.as_mut() {
                match nl.link_index(&name) {
                    Ok(Some(index)) => match nl.del_link(index) {
                        Ok(()) => tracing::info!("deleted link {name} left by an earlier run"),
                        Err(e) => tracing::warn!("delete leftover link {name}: {e}"),
                    },
                    Ok(None) => {}
                    Err(e) => tracing::warn!("look up leftover link {name}: {e}"),
                }
            }
            let _ = std::fs::remove_file(entry.path());
        }
    }

    /// Takes link `index` (named `name`) down now and deletes it in the background.
    pub(crate) fn delete(&self, nl: &mut Netlink, name: &str, index: u32) {
        if let Err(e) = nl.set_down(index) {
            tracing::debug!("set {name} down: {e}");
        }
        if let Some(file) = self.shared.record(name) {
            if let Err(e) = std::fs::File::create(&file) {
                tracing::debug!("record {}: {e}", file.display());
            }
        }
        *self.shared.lock().entry(name.to_string()).or_default() += 1;
        let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if tx.is_none() {
            *tx = self.spawn();
        }
        let sent = tx
            .as_ref()
            .is_some_and(|t| t.send((name.to_string(), index)).is_ok());
        if !sent {
            // No thread: delete inline.
            let _ = nl.del_link(index);
            self.shared.finish(name);
        }
    }

    fn spawn(&self) -> Option<Sender<(String, u32)>> {
        let (tx, rx) = mpsc::channel::<(String, u32)>();
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name("net-reaper".into())
            .spawn(move || {
                let mut nl = Netlink::open().ok();
                for (name, index) in rx {
                    if nl.is_none() {
                        nl = Netlink::open().ok();
                    }
                    match nl.as_mut().map(|n| n.del_link(index)) {
                        Some(Ok(())) => {}
                        Some(Err(e)) => tracing::warn!("delete link {name}: {e}"),
                        None => tracing::warn!("delete link {name}: no netlink socket"),
                    }
                    shared.finish(&name);
                }
            })
            .map_err(|e| tracing::warn!("start the link reaper: {e}"))
            .ok()
            .map(|_| tx)
    }

    /// Waits (bounded) until no deletion of `name` is queued.
    pub(crate) fn wait_for(&self, name: &str) {
        self.wait_until(|p| !p.contains_key(name));
    }

    /// Waits (bounded) until every queued deletion is done.
    pub(crate) fn drain(&self) {
        self.wait_until(|p| p.is_empty());
    }

    fn wait_until(&self, ok: impl Fn(&BTreeMap<String, usize>) -> bool) {
        let end = Instant::now() + WAIT;
        let mut p = self.shared.lock();
        while !ok(&p) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!("links still being deleted: {:?}", p.keys());
                return;
            }
            p = self
                .shared
                .done
                .wait_timeout(p, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}
