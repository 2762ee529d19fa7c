//! The builder: a Dockerfile (parsed by [`parser`]) to an image, step by step as Docker's
//! classic builder: RUN in a throwaway container whose diff becomes the layer, COPY straight
//! from the context into a layer tar, metadata instructions as `empty_layer` history entries,
//! a per-instruction cache, multi-stage with `--target`. `.dockerignore` is the client's job
//! (the docker CLI filters the context it sends; `estiba build` does the same).

pub mod context;
pub mod copy;
mod df;
pub mod expand;
pub mod fetch;
pub mod layer;
pub mod mounts;
pub mod parser;
mod plan;
pub mod reproducible;
mod stage;
mod stage_chown;
mod stage_health;
mod stage_heredoc;
mod stage_mounts;
mod stage_onbuild;
mod stage_parallel;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use estiba_container::{ContainerError, ContainerService};
use estiba_events::EventBus;
use estiba_image::service::{ImageError, ImageService};

pub use plan::Plan;

/// `POST /build`'s options.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path inside the context ("" for `Dockerfile`).
    pub dockerfile: String,
    pub tags: Vec<String>,
    /// `--build-arg`: a `None` value means "from the client's environment" (unset here).
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub target: String,
    pub no_cache: bool,
    /// Remove intermediate containers after a successful step.
    pub rm: bool,
    /// Remove them even after a failed step.
    pub force_rm: bool,
    pub quiet: bool,
    pub network_mode: String,
    /// Values for `RUN --mount=type=secret` (the `X-Estiba-Build-Secrets` header).
    pub secrets: mounts::Secrets,
    /// `--cache-from` images (names or IDs; missing ones are skipped, as Docker does).
    pub cache_from: Vec<String>,
}

/// What the build reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A line (or chunk) of text: `{"stream": ...}`.
    Stream(String),
    /// The built image's ID: `{"aux": {"ID": ...}}`.
    Aux(String),
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] parser::ParseError),
    /// Bad input found before any step ran (the daemon answers 400).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Context(String),
    /// A step failed with this message.
    #[error("{0}")]
    Step(String),
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i64 },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("{0}")]
    Internal(String),
}

impl BuildError {
    /// The exit code a failing RUN reports (`errorDetail.code`).
    pub fn code(&self) -> Option<i64> {
        match self {
            BuildError::RunFailed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The builder.
pub struct Builder {
    images: Arc<ImageService>,
    containers: Arc<ContainerService>,
    #[allow(dead_code)] // build events are not published yet (Docker publishes none either)
    events: Arc<EventBus>,
    /// `<data-root>/builder`: unpacked contexts and layer spools.
    root: PathBuf,
    cache_locks: stage_mounts::CacheLocks,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("remove {}: {e}", self.0.display());
            }
        }
    }
}

impl Builder {
    pub fn new(
        images: Arc<ImageService>,
        containers: Arc<ContainerService>,
        events: Arc<EventBus>,
        root: PathBuf,
    ) -> Arc<Builder> {
        Arc::new(Builder {
            images,
            containers,
            events,
            root,
            cache_locks: Default::default(),
        })
    }

    fn temp_dir(&self, what: &str) -> Result<TempDir, BuildError> {
        let dir = self
            .root
            .join(format!("{what}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| BuildError::Internal(format!("create {}: {e}", dir.display())))?;
        Ok(TempDir(dir))
    }

    /// Runs a build from the context tar `context`; returns the image ID. Progress goes to
    /// `out`; a client that went away does not stop the build.
    pub fn build(
        &self,
        opts: &BuildOptions,
        context: &mut dyn Read,
        out: &mut dyn FnMut(Output),
    ) -> Result<String, BuildError> {
        // Spools and temporary directories go under the root.
        std::fs::create_dir_all(&self.root)
            .map_err(|e| BuildError::Internal(format!("create {}: {e}", self.root.display())))?;
        let ctx = context::Context::read(context, &self.root)?;
        let name = if opts.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            opts.dockerfile.as_str()
        };
        let rel = name.trim_start_matches('/');
        if !context::contained(std::path::Path::new(rel)) {
            return Err(BuildError::Invalid(format!(
                "Cannot locate specified Dockerfile: {name}"
            )));
        }
        let text = ctx
            .read_file(rel, parser::MAX_DOCKERFILE_BYTES)?
            .ok_or_else(|| {
                BuildError::Invalid(format!("Cannot locate specified Dockerfile: {name}"))
            })?;
        let text = String::from_utf8_lossy(&text);
        let dockerfile = parser::parse(&text)?;
        let plan = Plan::new(dockerfile, opts)?;
        let epoch = reproducible::epoch(
            opts.build_args
                .get(reproducible::SOURCE_DATE_EPOCH)
                .and_then(|v| v.as_deref()),
        )?;
        let mut run = stage::Run::new(self, opts, &plan, &ctx, out);
        run.epoch = epoch;
        run.cache_from = opts
            .cache_from
            .iter()
            .filter_map(|n| match self.images.resolve_id(n) {
                Ok(id) => Some(id),
                Err(e) => {
                    tracing::warn!("Could not look up {n} for cache resolution, skipping: {e}");
                    None
                }
            })
            .collect();
        let id = run.all()?;
        drop(run);
        let short = short_id(&id);
        out(Output::Aux(id.clone()));
        if opts.quiet {
            out(Output::Stream(format!("{id}\n")));
        } else {
            out(Output::Stream(format!("Successfully built {short}\n")));
        }
        for tag in &opts.tags {
            let (repo, t) = split_tag(tag);
            if !self.images.tag_is_current(&id, repo, t)? {
                self.images.tag(&id, repo, t)?;
            }
            if !opts.quiet {
                let shown = if t.is_none() {
                    format!("{tag}:latest")
                } else {
                    tag.clone()
                };
                out(Output::Stream(format!("Successfully tagged {shown}\n")));
            }
        }
        Ok(id)
    }
}

/// `repo[:tag]`, the tag being after the last `:` that follows the last `/`.
pub fn split_tag(r: &str) -> (&str, Option<&str>) {
    let slash = r.rfind('/').map_or(0, |i| i + 1);
    match r[slash..].rfind(':') {
        Some(i) => (&r[..slash + i], Some(&r[slash + i + 1..])),
        None => (r, None),
    }
}

/// The 12 hex characters Docker shows.
pub fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(split_tag("a"), ("a", None));
        assert_eq!(split_tag("a:1"), ("a", Some("1")));
        assert_eq!(split_tag("localhost:5000/a"), ("localhost:5000/a", None));
        assert_eq!(
            split_tag("localhost:5000/a:b"),
            ("localhost:5000/a", Some("b"))
        );
    }
}
