//! The records the network service keeps in the metadata database.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::nft::PortMap;

/// Network ID -> [`NetworkRecord`].
pub(crate) const NETWORKS: estiba_store::Table = estiba_store::Table::new("networks");
/// `<container id>/<network id>` -> [`EndpointRecord`].
pub(crate) const ENDPOINTS: estiba_store::Table = estiba_store::Table::new("net_endpoints");
/// Container ID -> [`SandboxRecord`].
pub(crate) const SANDBOXES: estiba_store::Table = estiba_store::Table::new("net_sandboxes");

/// A network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// "bridge", "macvlan", "host" or "null".
    pub driver: String,
    pub created: String,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// `a.b.c.d/n` (empty for host and null).
    pub subnet: String,
    pub gateway: String,
    /// The subnet came from the user (`--subnet`): `--ip` is allowed on it.
    pub user_subnet: bool,
    /// The gateway came from the user (`--gateway`); inspect shows only such a gateway of a
    /// user's subnet.
    pub gateway_given: bool,
    /// The IPv6 subnet, `x::/n` (empty without one); used only with `enable_ipv6`, as Docker.
    pub subnet6: String,
    pub gateway6: String,
    pub gateway6_given: bool,
    /// The Linux bridge (bridge driver) or parent interface (macvlan).
    pub interface: String,
    pub mtu: Option<u32>,
    /// The default `bridge` network: no DNS, not removable, no isolation.
    pub predefined: bool,
}

impl NetworkRecord {
    /// The IPv6 subnet containers get addresses from (`None` unless IPv6 is enabled).
    pub fn ipv6(&self) -> Option<crate::ipam::Cidr6> {
        self.enable_ipv6
            .then(|| crate::ipam::Cidr6::parse(&self.subnet6))
            .flatten()
    }

    /// Whether driver option `key` is set to false (`enable_icc`, `enable_ip_masquerade`).
    pub fn option_false(&self, key: &str) -> bool {
        self.options
            .get(key)
            .is_some_and(|v| parse_bool(v) == Some(false))
    }
}

/// Go's `strconv.ParseBool`, which Docker uses for driver options.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A container's attachment to a network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointRecord {
    pub id: String,
    pub network_id: String,
    pub container_id: String,
    pub container_name: String,
    pub ip: Option<Ipv4Addr>,
    pub prefix: u8,
    /// The IPv6 address on a network with IPv6 enabled.
    pub ip6: Option<Ipv6Addr>,
    pub prefix6: u8,
    pub mac: String,
    pub aliases: Vec<String>,
    /// Asked for with `--ip` (shown as IPAMConfig).
    pub requested_ip: String,
    /// Asked for with `--ip6`.
    pub requested_ip6: String,
    /// Host side of the veth pair (empty for macvlan).
    pub host_if: String,
    /// Name inside the container (eth0, eth1, ...).
    pub if_name: String,
}

/// A container's network namespace and published ports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxRecord {
    pub container_id: String,
    pub netns: String,
    pub ports: Vec<PortMap>,
    /// `Ports` of inspect: exposed ports with no binding included.
    pub exposed: Vec<String>,
}
