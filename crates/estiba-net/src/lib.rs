//! Networks: IPAM, the bridge driver (veth, Linux bridge, nftables NAT and port maps), host,
//! none and container: modes.

mod dns;
mod ipam;
mod model;
mod netlink;
mod netns;
mod nft;
mod nft_worker;
mod reaper;
mod sandbox;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use estiba_events::{Event, EventBus};
use estiba_store::{Reader, Store};

pub use dns::DNS_ADDR;
pub use ipam::{Cidr, Cidr6, Pool};
pub use model::{EndpointRecord, NetworkRecord, SandboxRecord};
pub use nft::PortMap;
pub use sandbox::{EndpointRequest, SandboxRequest};

use model::{ENDPOINTS, NETWORKS};

/// Where the network service keeps things, and the daemon's network flags.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// `<exec-root>`: network namespaces are bound under `<exec-root>/netns`.
    pub exec_root: PathBuf,
    /// `<data-root>`.
    pub data_root: PathBuf,
    /// `-b/--bridge`: the default bridge's interface; `None` for `-b none` (no default network).
    pub bridge: Option<String>,
    /// `--bip`: the default bridge's gateway address and subnet.
    pub bip: Option<Cidr>,
    /// `--default-address-pool` (Docker's defaults when empty).
    pub pools: Vec<Pool>,
    /// This daemon's nftables table (family ip).
    pub nft_table: String,
    /// `--mtu`.
    pub mtu: Option<u32>,
    /// `--ipv6`: the default bridge has IPv6.
    pub ipv6: bool,
    /// `--fixed-cidr-v6`: the default bridge's IPv6 subnet (its gateway is the first address).
    pub fixed_cidr_v6: Option<Cidr6>,
}

impl NetConfig {
    /// The defaults of a daemon with these roots.
    pub fn new(exec_root: PathBuf, data_root: PathBuf) -> NetConfig {
        NetConfig {
            exec_root,
            data_root,
            bridge: Some("estiba0".to_string()),
            bip: None,
            pools: Vec::new(),
            nft_table: "estiba".to_string(),
            mtu: None,
            ipv6: false,
            fixed_cidr_v6: None,
        }
    }
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
    #[error("networks: {0}")]
    Setup(#[from] NetError),
}

/// A network operation failed; the variants map to Docker's status codes.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Internal(String),
}

pub(crate) fn internal(e: impl std::fmt::Display) -> NetError {
    NetError::Internal(e.to_string())
}

/// What `POST /networks/create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// IPAM config entries: (subnet, gateway), as given.
    pub ipam: Vec<(String, String)>,
}

/// The network service.
pub struct NetworkService {
    store: Arc<Store>,
    events: Arc<EventBus>,
    config: NetConfig,
    /// Serializes network and endpoint changes (IPAM decisions read then write the store).
    lock: Mutex<()>,
    /// Embedded DNS servers of containers on user-defined networks.
    dns: dns::DnsServers,
    /// Links taken down and being deleted in the background.
    reaper: reaper::Reaper,
    /// Rebuilt nftables chains being applied in the background.
    nft: nft_worker::NftWorker,
}

impl NetworkService {
    /// Opens the service: the predefined networks, the default bridge and the nftables table.
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
        let reaper = reaper::Reaper::new(config.exec_root.join("net-pending"));
        reaper.sweep();
        let svc = Arc::new(NetworkService {
            store,
            events,
            config,
            lock: Mutex::new(()),
            dns: Default::default(),
            reaper,
            nft: Default::default(),
        });
        svc.init_predefined()?;
        Ok(svc)
    }

    pub(crate) fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (bounded) until links taken down are deleted; the daemon calls it before exiting.
    pub fn drain(&self) {
        self.reaper.drain();
    }

    /// Waits for queued nftables rulesets; their last failure.
    pub(crate) fn nft_flush(&self) -> Result<(), NetError> {
        self.nft.flush().map_err(internal)
    }

    pub(crate) fn reaper(&self) -> &reaper::Reaper {
        &self.reaper
    }

    pub(crate) fn config(&self) -> &NetConfig {
        &self.config
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn publish(&self, action: &str, net: &NetworkRecord, container: Option<&str>) {
        let mut e = Event::now("network", action, &net.id)
            .attr("name", &net.name)
            .attr("type", &net.driver);
        if let Some(c) = container {
            e = e.attr("container", c);
        }
        self.events.publish(e);
    }

    /// Every network.
    pub fn list(&self) -> Result<Vec<NetworkRecord>, NetError> {
        let tx = self.store.read().map_err(internal)?;
        Ok(tx
            .scan::<NetworkRecord>(NETWORKS, "")
            .map_err(internal)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Resolves a network by full ID, name, or unique ID prefix, as Docker does.
    pub fn get(&self, key: &str) -> Result<NetworkRecord, NetError> {
        let all = self.list()?;
        if let Some(n) = all.iter().find(|n| n.id == key) {
            return Ok(n.clone());
        }
        if let Some(n) = all.iter().find(|n| n.name == key) {
            return Ok(n.clone());
        }
        let prefixed: Vec<&NetworkRecord> = all
            .iter()
            .filter(|n| !key.is_empty() && n.id.starts_with(key))
            .collect();
        match prefixed.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(NetError::NotFound(format!("network {key} not found"))),
            _ => Err(NetError::NotFound(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                prefixed.len()
            ))),
        }
    }

    /// The endpoints of a network, or of every network when `network_id` is `None`.
    pub fn endpoints(&self, network_id: Option<&str>) -> Result<Vec<EndpointRecord>, NetError> {
        let tx = self.store.read().map_err(internal)?;
        Ok(tx
            .scan::<EndpointRecord>(ENDPOINTS, "")
            .map_err(internal)?
            .into_iter()
            .map(|(_, v)| v)
            .filter(|e| network_id.is_none_or(|n| e.network_id == n))
            .collect())
    }
}

mod networks;
