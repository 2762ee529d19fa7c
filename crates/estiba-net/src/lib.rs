//! Networks: IPAM, the bridge driver (veth, Linux bridge, nftables NAT and port maps), host,
//! none and container: modes, and the embedded DNS server.

use std::path::PathBuf;
use std::sync::Arc;

use estiba_events::EventBus;
use estiba_store::Store;

/// Where the network service keeps things.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// `<exec-root>`: network namespaces are bound under `<exec-root>/netns`.
    pub exec_root: PathBuf,
    /// `<data-root>`.
    pub data_root: PathBuf,
}

/// Opening the network service failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The network service.
pub struct NetworkService {
    #[allow(dead_code)]
    store: Arc<Store>,
    #[allow(dead_code)]
    events: Arc<EventBus>,
    #[allow(dead_code)]
    config: NetConfig,
}

impl NetworkService {
    /// Opens the service.
    pub fn open(
        store: Arc<Store>,
        events: Arc<EventBus>,
        config: NetConfig,
    ) -> Result<Arc<NetworkService>, OpenError> {
        let dir = config.exec_root.join("netns");
        std::fs::create_dir_all(&dir).map_err(|source| OpenError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        Ok(Arc::new(NetworkService {
            store,
            events,
            config,
        }))
    }
}
