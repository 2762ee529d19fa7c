//! Independent stages build side by side: each needed stage runs on its own thread as soon
//! as the stages it uses are built. The output stays Docker's sequential transcript: the
//! earliest unfinished stage streams live, later ones are held and released in stage order
//! (step numbers are fixed by the plan, so they read the same as a sequential build).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;

use crate::stage::Run;
use crate::{BuildError, Output};

/// What a stage thread reports.
enum Msg {
    Out(usize, Output),
    Done(usize, Result<(String, BTreeSet<String>), BuildError>),
}

impl Run<'_> {
    /// Whether the needed stages may run in parallel: more than one, every reference static.
    pub(crate) fn parallel_ok(&self) -> bool {
        self.plan.needed.len() > 1
            && self
                .plan
                .needed
                .iter()
                .all(|&i| self.plan.deps(i).is_some())
    }

    fn emit(&self, o: Output) {
        (self.out.borrow_mut())(o);
    }

    /// Builds the needed stages, each once its dependencies are built; returns the target's ID.
    pub(crate) fn stages_parallel(&mut self) -> Result<String, BuildError> {
        let needed = self.plan.needed.clone();
        let deps: BTreeMap<usize, Vec<usize>> = needed
            .iter()
            .map(|&i| (i, self.plan.deps(i).unwrap_or_default()))
            .collect();
        let mut offsets = BTreeMap::new();
        let mut step = self.step;
        for &i in &needed {
            offsets.insert(i, step);
            step += 1 + self.plan.stages[i].instructions.len();
        }
        let (b, opts, plan, ctx) = (self.b, self.opts, self.plan, self.ctx);
        let (tx, rx) = mpsc::channel::<Msg>();
        let mut failure: Option<(usize, BuildError)> = None;
        let mut buffers: BTreeMap<usize, Vec<Output>> = BTreeMap::new();
        std::thread::scope(|s| {
            let mut started = BTreeSet::new();
            let mut done = BTreeSet::new();
            let mut running = 0usize;
            let mut pos = 0usize;
            loop {
                for &i in &needed {
                    let ready = deps[&i].iter().all(|d| self.results[*d].is_some());
                    if failure.is_some() || started.contains(&i) || !ready {
                        continue;
                    }
                    started.insert(i);
                    running += 1;
                    let tx = tx.clone();
                    let (results, global) = (self.results.clone(), self.global.clone());
                    let (epoch, cache_from) = (self.epoch, self.cache_from.clone());
                    let offset = offsets[&i];
                    s.spawn(move || {
                        let out_tx = tx.clone();
                        let mut send = move |o: Output| {
                            let _ = out_tx.send(Msg::Out(i, o));
                        };
                        let mut run = Run::new(b, opts, plan, ctx, &mut send);
                        run.step = offset;
                        run.results = results;
                        run.global = global;
                        run.epoch = epoch;
                        run.cache_from = cache_from;
                        let r = run
                            .stage(i)
                            .map(|id| (id, std::mem::take(&mut run.consumed)));
                        drop(run);
                        let _ = tx.send(Msg::Done(i, r));
                    });
                }
                if running == 0 {
                    break;
                }
                let Ok(msg) = rx.recv() else { break };
                match msg {
                    Msg::Out(i, o) if needed.get(pos) == Some(&i) => self.emit(o),
                    Msg::Out(i, o) => buffers.entry(i).or_default().push(o),
                    Msg::Done(i, r) => {
                        running -= 1;
                        done.insert(i);
                        match r {
                            Ok((id, consumed)) => {
                                self.results[i] = Some(id);
                                self.consumed.extend(consumed);
                            }
                            Err(e) if failure.is_none() => failure = Some((i, e)),
                            Err(_) => {}
                        }
                        if failure.is_some() {
                            continue;
                        }
                        while needed.get(pos).is_some_and(|n| done.contains(n)) {
                            pos += 1;
                            if let Some(next) = needed.get(pos) {
                                for o in buffers.remove(next).unwrap_or_default() {
                                    self.emit(o);
                                }
                            }
                        }
                    }
                }
            }
        });
        if let Some((failed, e)) = failure {
            // The transcript up to the failing stage, in order, then the error.
            for &i in needed.iter().filter(|&&i| i <= failed) {
                for o in buffers.remove(&i).unwrap_or_default() {
                    self.emit(o);
                }
            }
            return Err(e);
        }
        self.step = step;
        let last = needed.last().copied().unwrap_or_default();
        self.results[last]
            .clone()
            .ok_or_else(|| BuildError::Internal("the target stage was not built".into()))
    }
}
