//! Applies rebuilt nftables chains off the response path. Each `nft -f` is an exec (5–15 ms
//! here, more on a busy machine); `network create` and `rm` only queue the new ruleset, and one
//! background thread applies the latest queued one (a burst of creates costs one exec).
//!
//! Invariant: anything that needs the rules in force (a container joining a bridge, publishing
//! ports, daemon teardown) calls [`NftWorker::flush`] first, which waits for every queued ruleset
//! and reports the last failure.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest wait for queued rulesets.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Default)]
struct State {
    /// Generation of the newest queued script, and the script (taken by the thread).
    queued: u64,
    script: Option<String>,
    /// Generation last applied (or failed).
    applied: u64,
    /// The failure of the last applied script.
    error: Option<String>,
    running: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The queue and its thread (started on first use, ends when idle).
#[derive(Default)]
pub(crate) struct NftWorker {
    shared: Arc<Shared>,
}

impl NftWorker {
    /// Queues `script`, replacing any queued one that has not started.
    pub(crate) fn queue(&self, script: String) {
        let mut st = self.shared.lock();
        st.queued += 1;
        st.script = Some(script);
        if st.running {
            return;
        }
        st.running = true;
        drop(st);
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("nft-sync".into())
            .spawn(move || work(&shared));
        if let Err(e) = spawned {
            tracing::warn!("start the nft thread: {e}; applying inline");
            work(&self.shared);
        }
    }

    /// Waits (bounded) until every queued script is applied; the last failure, if any.
    pub(crate) fn flush(&self) -> Result<(), String> {
        let end = Instant::now() + WAIT;
        let mut st = self.shared.lock();
        while st.applied < st.queued {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("nft: timed out applying the ruleset".into());
            }
            st = self
                .shared
                .cv
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        match &st.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

fn work(shared: &Shared) {
    loop {
        let (generation, script) = {
            let mut st = shared.lock();
            match st.script.take() {
                Some(s) => (st.queued, s),
                None => {
                    st.running = false;
                    shared.cv.notify_all();
                    return;
                }
            }
        };
        let result = crate::nft::run(&script);
        if let Err(e) = &result {
            tracing::warn!("apply nftables ruleset: {e}");
        }
        let mut st = shared.lock();
        st.applied = generation;
        st.error = result.err();
        shared.cv.notify_all();
    }
}
