//! Volumes: the `local` driver (named and anonymous volumes under `<data-root>/volumes`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use estiba_events::EventBus;
use estiba_store::Store;

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

/// The volume service.
pub struct VolumeService {
    #[allow(dead_code)]
    store: Arc<Store>,
    #[allow(dead_code)]
    events: Arc<EventBus>,
    root: PathBuf,
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
        Ok(Arc::new(VolumeService {
            store,
            events,
            root,
        }))
    }

    /// `<data-root>/volumes`.
    pub fn root(&self) -> &Path {
        &self.root
    }
}
