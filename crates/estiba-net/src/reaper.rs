//! Deferred link deletion. The kernel's deletion of a veth or a bridge waits for an RCU grace
//! period (20–60 ms measured here), so `network rm` and container teardown take the link down
//! synchronously (routes and bridge FDB entries go at once) and leave the deletion itself to one
//! background thread.
//!
//! Invariants: a name stays in `pending` until its link is gone, and anything that creates a
//! link with a fixed name (a bridge) first waits for that name ([`Reaper::wait_for`]); veth names
//! are random. The daemon drains the queue before it exits ([`Reaper::drain`]).

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::netlink::Netlink;

/// Longest wait for a pending deletion.
const WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Shared {
    /// Link name → how many queued deletions name it.
    pending: Mutex<BTreeMap<String, usize>>,
    done: Condvar,
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
            }
        }
        self.done.notify_all();
    }
}

/// The background deleter.
#[derive(Default)]
pub(crate) struct Reaper {
    shared: Arc<Shared>,
    tx: Mutex<Option<Sender<(String, u32)>>>,
}

impl Reaper {
    /// Takes link `index` (named `name`) down now and deletes it in the background.
    pub(crate) fn delete(&self, nl: &mut Netlink, name: &str, index: u32) {
        if let Err(e) = nl.set_down(index) {
            tracing::debug!("set {name} down: {e}");
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
