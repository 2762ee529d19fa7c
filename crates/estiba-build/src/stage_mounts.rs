//! A RUN step's `--mount`s from parsing to the container: their part of the cache key (no
//! secret value), and, when the step really runs, the sources made ready (context paths
//! resolved inside the context, stage and image root filesystems mounted for the step, cache
//! directories leased, secrets written to a private directory) for the duration of the run.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::copy::{self, CopySpec};
use crate::mounts::{self, Kind, RunMount, Sharing};
use crate::parser::Instruction;
use crate::stage::{Run, State};
use crate::{BuildError, Builder, TempDir};

/// Longest a `sharing=locked` cache mount waits for another build.
const MAX_LOCK_WAIT: Duration = Duration::from_secs(24 * 3600);

/// One mount of a step, with the image its `from=` names.
#[derive(Debug, Clone)]
pub(crate) struct StepMount {
    pub m: RunMount,
    pub from_image: Option<String>,
}

/// Cache mounts in use by `sharing=locked` and `private` steps.
#[derive(Default)]
pub(crate) struct CacheLocks {
    pub(crate) busy: Mutex<std::collections::BTreeSet<String>>,
    freed: Condvar,
}

/// Cache IDs this step holds; released when dropped.
struct Lease<'b> {
    locks: &'b CacheLocks,
    ids: Vec<String>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.locks.busy.lock() {
            for id in &self.ids {
                busy.remove(id);
            }
        }
        self.locks.freed.notify_all();
    }
}

impl Lease<'_> {
    /// Takes `id`: waits for it (`locked`) or reports it busy (`private`: false).
    fn take(&mut self, id: &str, wait: bool) -> Result<bool, BuildError> {
        let poisoned = || BuildError::Internal("cache mount lock poisoned".into());
        let mut busy = self.locks.busy.lock().map_err(|_| poisoned())?;
        let start = std::time::Instant::now();
        while busy.contains(id) {
            if !wait {
                return Ok(false);
            }
            let left = MAX_LOCK_WAIT.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(BuildError::Step(format!("cache mount {id} stayed locked")));
            }
            busy = self
                .locks
                .freed
                .wait_timeout(busy, left)
                .map_err(|_| poisoned())?
                .0;
        }
        busy.insert(id.to_string());
        self.ids.push(id.to_string());
        Ok(true)
    }
}

/// What a prepared step holds until its container is gone.
pub(crate) struct Prepared<'b> {
    pub mounts: Vec<Value>,
    /// Mount targets, hidden from the layer.
    pub targets: Vec<String>,
    _temps: Vec<TempDir>,
    _lease: Lease<'b>,
}

impl Run<'_> {
    /// The RUN's `--mount` flags, expanded and parsed, with `from=` resolved to image IDs;
    /// and their part of the cache key.
    pub(crate) fn step_mounts(
        &self,
        stage: usize,
        st: &State,
        ins: &Instruction,
    ) -> Result<(Vec<StepMount>, String), BuildError> {
        let mut out = Vec::new();
        let mut key = String::new();
        for (k, v) in &ins.flags {
            if k != "mount" {
                continue;
            }
            if out.len() >= mounts::MAX_MOUNTS {
                return Err(BuildError::Step("too many mounts".into()));
            }
            let m = mounts::parse(&self.expand_word(st, v)?)?;
            let from_image = match &m.from {
                Some(f) => Some(self.image_for(stage, f)?),
                None => None,
            };
            let sum = match (m.kind, &from_image) {
                (Kind::Bind, None) => Some(copy::checksum(self.ctx, &context_spec(&m.source))?),
                _ => None,
            };
            key.push_str(&mounts::key_part(&m, from_image.as_deref(), sum.as_deref()));
            key.push('\n');
            out.push(StepMount { m, from_image });
        }
        Ok((out, key))
    }

    /// Mounts the images of `from=` mounts one inside the other, then runs `f` with their roots.
    pub(crate) fn with_roots<T>(
        &self,
        images: &[String],
        roots: &mut Vec<PathBuf>,
        f: &mut dyn FnMut(&[PathBuf]) -> Result<T, BuildError>,
    ) -> Result<T, BuildError> {
        let Some((image, rest)) = images.split_first() else {
            return f(roots);
        };
        let mnt = self.b.temp_dir("mount")?;
        let key = format!("build-{:016x}", rand::random::<u64>());
        self.b.images.with_rootfs(image, &key, &mnt.0, |root| {
            roots.push(root.to_path_buf());
            let r = self.with_roots(rest, roots, f);
            roots.pop();
            r
        })?
    }

    /// Makes the sources of `list` ready; `roots[i]` is the root of the i-th `from=` image.
    pub(crate) fn prepare<'s>(
        &'s self,
        list: &[StepMount],
        roots: &[PathBuf],
    ) -> Result<Prepared<'s>, BuildError> {
        let mut p = Prepared {
            mounts: Vec::new(),
            targets: Vec::new(),
            _temps: Vec::new(),
            _lease: Lease {
                locks: &self.b.cache_locks,
                ids: Vec::new(),
            },
        };
        let mut next_root = roots.iter();
        for sm in list {
            let m = &sm.m;
            let value = match m.kind {
                Kind::Tmpfs => mounts::tmpfs(m),
                Kind::File => {
                    let dir = self.b.temp_dir("script")?;
                    let file = dir.0.join("script");
                    let content = m.content.as_deref().unwrap_or_default();
                    mounts::write_secret(&file, content, m)?;
                    p._temps.push(dir);
                    mounts::bind(&file, m, true)
                }
                Kind::Secret => match self.opts.secrets.get(&m.id) {
                    None if m.required => {
                        return Err(BuildError::Step(format!("secret {}: not found", m.id)))
                    }
                    None => continue,
                    Some(value) => {
                        let dir = self.b.temp_dir("secret")?;
                        let file = dir.0.join("value");
                        mounts::write_secret(&file, value, m)?;
                        p._temps.push(dir);
                        mounts::bind(&file, m, true)
                    }
                },
                Kind::Cache => {
                    let dir = self.cache_source(m, &mut p)?;
                    mounts::bind(&dir, m, m.readonly)
                }
                Kind::Bind => {
                    let root = match &sm.from_image {
                        Some(_) => next_root
                            .next()
                            .ok_or_else(|| BuildError::Internal("image not mounted".into()))?
                            .clone(),
                        // Only a step that runs needs the context on disk.
                        None => self.ctx.materialise(|| self.b.temp_dir("context"))?,
                    };
                    let src = estiba_volume::resolve_in_root(&root, &m.source)
                        .map_err(|e| BuildError::Step(format!("bind source {}: {e}", m.source)))?;
                    if std::fs::symlink_metadata(&src).is_err() {
                        return Err(BuildError::Step(format!(
                            "bind source \"{}\" not found",
                            m.source
                        )));
                    }
                    let src = if sm.from_image.is_none() && !m.readonly {
                        self.private_copy(&src, &mut p)?
                    } else {
                        src
                    };
                    mounts::bind(&src, m, m.readonly)
                }
            };
            p.mounts.push(value);
            p.targets.push(m.target.clone());
        }
        Ok(p)
    }

    /// A cache mount's directory: the shared one, or a throwaway one when a `private` mount
    /// finds it in use.
    fn cache_source(&self, m: &RunMount, p: &mut Prepared<'_>) -> Result<PathBuf, BuildError> {
        let dir = mounts::cache_dir(&self.b.cache_root(), &m.id);
        let own = match m.sharing {
            Sharing::Shared => true,
            Sharing::Locked => p._lease.take(&m.id, true)?,
            Sharing::Private => p._lease.take(&m.id, false)?,
        };
        if !own {
            let tmp = self.b.temp_dir("cache")?;
            let dir = tmp.0.join("c");
            mounts::ensure_cache_dir(&dir, m)?;
            p._temps.push(tmp);
            return Ok(dir);
        }
        std::fs::create_dir_all(self.b.cache_root())
            .map_err(|e| BuildError::Internal(format!("cache mounts: {e}")))?;
        mounts::ensure_cache_dir(&dir, m)?;
        crate::df::note_use(&dir, &m.id);
        Ok(dir)
    }

    /// A `rw` bind from the context: a copy, so that the step's writes go nowhere.
    fn private_copy(&self, src: &Path, p: &mut Prepared<'_>) -> Result<PathBuf, BuildError> {
        let tmp = self.b.temp_dir("bind")?;
        let err = |e: std::io::Error| BuildError::Internal(format!("bind copy: {e}"));
        let meta = std::fs::symlink_metadata(src).map_err(err)?;
        let dest = tmp.0.join("b");
        if meta.is_dir() {
            std::fs::create_dir(&dest).map_err(err)?;
            estiba_volume::copy_up(src, &dest).map_err(err)?;
        } else {
            std::fs::copy(src, &dest).map_err(err)?;
        }
        p._temps.push(tmp);
        Ok(dest)
    }
}

impl Builder {
    /// `<builder>/cache-mounts`: one directory per cache mount ID.
    pub(crate) fn cache_root(&self) -> PathBuf {
        self.root.join("cache-mounts")
    }
}

/// The copy spec whose checksum stands for a bind mount's context source.
fn context_spec(source: &str) -> CopySpec {
    let s = source.trim_start_matches('/');
    CopySpec {
        sources: vec![if s.is_empty() { ".".into() } else { s.into() }],
        dest: "/mnt/".into(),
        chown: None,
        chmod: None,
        from_context: true,
        extract_archives: false,
        no_extract_under: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_exclude_and_release() {
        let locks = CacheLocks::default();
        let mut first = Lease {
            locks: &locks,
            ids: Vec::new(),
        };
        assert!(first.take("c", false).unwrap());
        let mut second = Lease {
            locks: &locks,
            ids: Vec::new(),
        };
        // `private` finds it busy; `locked` waits until the first lease goes.
        assert!(!second.take("c", false).unwrap());
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let mut third = Lease {
                    locks: &locks,
                    ids: Vec::new(),
                };
                third.take("c", true).unwrap()
            });
            drop(first);
            assert!(waiter.join().unwrap());
        });
        assert!(second.take("c", false).unwrap());
    }
}
