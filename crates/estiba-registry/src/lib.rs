//! The distribution client: pull and push against registries, auth (bearer and basic), and the
//! daemon-side pull/push service that streams blobs into the image store.

use std::sync::Arc;

use estiba_events::EventBus;
use estiba_image::service::ImageService;

/// Registry settings (dockerd's flags and daemon.json keys).
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `--insecure-registry`: hosts or CIDRs reached over plain HTTP (127.0.0.0/8 always is).
    pub insecure_registries: Vec<String>,
    /// `--registry-mirror`: mirrors for docker.io.
    pub mirrors: Vec<String>,
    /// `max-concurrent-downloads` (Docker's default 3).
    pub max_concurrent_downloads: usize,
    /// `max-concurrent-uploads` (Docker's default 5).
    pub max_concurrent_uploads: usize,
}

/// The pull/push service.
pub struct RegistryService {
    #[allow(dead_code)]
    images: Arc<ImageService>,
    #[allow(dead_code)]
    events: Arc<EventBus>,
    #[allow(dead_code)]
    config: RegistryConfig,
}

impl RegistryService {
    pub fn new(
        images: Arc<ImageService>,
        events: Arc<EventBus>,
        config: RegistryConfig,
    ) -> Arc<RegistryService> {
        Arc::new(RegistryService {
            images,
            events,
            config,
        })
    }
}
