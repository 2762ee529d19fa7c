//! The builder: Dockerfile (parse-dockerfile for syntax) to image layers, RUN in containers,
//! a per-instruction cache, multi-stage.

use std::path::PathBuf;
use std::sync::Arc;

use estiba_container::ContainerService;
use estiba_events::EventBus;
use estiba_image::service::ImageService;

/// The builder.
pub struct Builder {
    #[allow(dead_code)]
    images: Arc<ImageService>,
    #[allow(dead_code)]
    containers: Arc<ContainerService>,
    #[allow(dead_code)]
    events: Arc<EventBus>,
    /// `<data-root>/builder`: cache mounts and build state.
    #[allow(dead_code)]
    root: PathBuf,
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
        })
    }
}
