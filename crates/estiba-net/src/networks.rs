//! Network lifecycle: the predefined networks, create (IPAM, the Linux bridge), remove, prune,
//! and rebuilding the nftables chains.

use std::collections::BTreeMap;

use estiba_store::Reader;

use crate::ipam::{self, Cidr, Cidr6};
use crate::model::{NetworkRecord, NETWORKS};
use crate::netlink::{Netlink, NewLink};
use crate::nft::{self, BridgeRules};
use crate::{internal, CreateRequest, NetError, NetworkService, OpenError};

/// Longest network name accepted.
const MAX_NAME_LEN: usize = 128;

fn new_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= MAX_NAME_LEN
}

impl NetworkService {
    /// Makes `bridge`, `host` and `none` exist, brings the default bridge up and syncs nft.
    pub(crate) fn init_predefined(&self) -> Result<(), OpenError> {
        let _g = self.guard();
        let all = self.list()?;
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !all.iter().any(|n| n.name == name) {
                self.put(&NetworkRecord {
                    id: new_id(),
                    name: name.to_string(),
                    driver: driver.to_string(),
                    created: now(),
                    predefined: true,
                    ..Default::default()
                })?;
            }
        }
        let existing = all.iter().find(|n| n.name == "bridge").cloned();
        match (&self.config().bridge, existing) {
            (None, Some(old)) => self.delete_record(&old.id)?,
            (None, None) => {}
            (Some(br), old) => {
                let used = self.used_subnets(old.as_ref().map(|o| o.id.as_str()))?;
                let bip = match self.config().bip {
                    Some(b) => b,
                    None => match old.as_ref().and_then(gateway_cidr) {
                        Some(b) if old.as_ref().is_some_and(|o| &o.interface == br) => b,
                        _ => {
                            let pools = self.pools();
                            let s = ipam::pick_subnet(&pools, &used).ok_or_else(|| {
                                NetError::Forbidden("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into())
                            })?;
                            Cidr {
                                addr: s.nth(1).unwrap_or(s.addr),
                                prefix: s.prefix,
                            }
                        }
                    },
                };
                let mut options = BTreeMap::new();
                for (k, v) in [
                    ("com.docker.network.bridge.default_bridge", "true"),
                    ("com.docker.network.bridge.enable_icc", "true"),
                    ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                    ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                    ("com.docker.network.bridge.name", br.as_str()),
                    ("com.docker.network.driver.mtu", "1500"),
                ] {
                    options.insert(k.to_string(), v.to_string());
                }
                let v6 = self
                    .config()
                    .fixed_cidr_v6
                    .filter(|_| self.config().ipv6)
                    .and_then(|c| Some((c.network(), c.nth(1)?)));
                let rec = NetworkRecord {
                    id: old.as_ref().map_or_else(new_id, |o| o.id.clone()),
                    name: "bridge".to_string(),
                    enable_ipv6: self.config().ipv6,
                    subnet6: v6.map(|(s, _)| s.to_string()).unwrap_or_default(),
                    gateway6: v6.map(|(_, g)| g.to_string()).unwrap_or_default(),
                    driver: "bridge".to_string(),
                    created: old.as_ref().map_or_else(now, |o| o.created.clone()),
                    subnet: bip.network().to_string(),
                    gateway: bip.addr.to_string(),
                    interface: br.clone(),
                    predefined: true,
                    options,
                    mtu: self.config().mtu,
                    ..Default::default()
                };
                self.ensure_bridge(&rec)?;
                self.put(&rec)?;
            }
        }
        self.sync_nft()?;
        // At start-up the ruleset is applied before the daemon answers: a broken nft shows here.
        self.nft_flush()?;
        Ok(())
    }

    fn pools(&self) -> Vec<ipam::Pool> {
        if self.config().pools.is_empty() {
            ipam::Pool::defaults()
        } else {
            self.config().pools.clone()
        }
    }

    /// Subnets of other networks and of the host's routes (except our own bridges').
    fn used_subnets(&self, except: Option<&str>) -> Result<Vec<Cidr>, NetError> {
        let nets = self.list()?;
        let ours: Vec<Cidr> = nets
            .iter()
            .filter(|n| Some(n.id.as_str()) != except)
            .filter_map(|n| Cidr::parse(&n.subnet))
            .collect();
        let mut used = ours;
        used.extend(ipam::host_routes());
        Ok(used)
    }

    fn put(&self, rec: &NetworkRecord) -> Result<(), NetError> {
        let mut tx = self.store().write().map_err(internal)?;
        tx.put(NETWORKS, &rec.id, rec).map_err(internal)?;
        tx.commit().map_err(internal)
    }

    fn delete_record(&self, id: &str) -> Result<(), NetError> {
        let mut tx = self.store().write().map_err(internal)?;
        tx.remove(NETWORKS, id).map_err(internal)?;
        tx.commit().map_err(internal)
    }

    /// Creates the Linux bridge of a bridge network if missing, with its gateway address, up.
    pub(crate) fn ensure_bridge(&self, rec: &NetworkRecord) -> Result<(), NetError> {
        self.reaper().wait_for(&rec.interface);
        let mut nl = Netlink::open().map_err(internal)?;
        let index = match nl.link_index(&rec.interface).map_err(internal)? {
            Some(i) => i,
            None => {
                nl.add_link(&rec.interface, NewLink::Bridge, rec.mtu)
                    .map_err(|e| internal(format!("create bridge {}: {e}", rec.interface)))?;
                nl.link_index(&rec.interface)
                    .map_err(internal)?
                    .ok_or_else(|| internal(format!("bridge {} vanished", rec.interface)))?
            }
        };
        if let Some(gw) = gateway_cidr(rec) {
            nl.add_addr(index, gw.addr, gw.prefix).map_err(internal)?;
        }
        let v6 = rec.ipv6().zip(rec.gateway6.parse().ok());
        if let Some((subnet, gw)) = v6 {
            let _ = std::fs::write(
                format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", rec.interface),
                "0",
            );
            nl.add_addr6(index, gw, subnet.prefix).map_err(internal)?;
        }
        nl.set_up(index, None).map_err(internal)?;
        // Published ports on 127.0.0.1 are DNATed out of this bridge.
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv4/conf/{}/route_localnet", rec.interface),
            "1",
        );
        enable_ip_forward();
        if v6.is_some() {
            enable_ipv6_forward();
        }
        Ok(())
    }

    /// Queues the rebuild of this daemon's nftables chains from the bridge networks (applied in
    /// the background; [`NetworkService::nft_flush`] waits for it).
    pub(crate) fn sync_nft(&self) -> Result<(), NetError> {
        let rules: Vec<BridgeRules> = self
            .list()?
            .into_iter()
            .filter(|n| n.driver == "bridge")
            .filter_map(|n| {
                Some(BridgeRules {
                    subnet: Cidr::parse(&n.subnet)?,
                    subnet6: n.ipv6(),
                    masquerade: !n.option_false("com.docker.network.bridge.enable_ip_masquerade"),
                    internal: n.internal,
                    bridge: n.interface,
                })
            })
            .collect();
        // No bridge (`-b none` and no user bridges): the script drops the table.
        self.nft
            .queue(nft::script(&self.config().nft_table, &rules));
        Ok(())
    }

    /// `POST /networks/create`.
    pub fn create(&self, req: CreateRequest) -> Result<NetworkRecord, NetError> {
        if !valid_name(&req.name) {
            return Err(NetError::InvalidParameter(format!(
                "invalid name: \"{}\" includes invalid characters for a network name",
                req.name
            )));
        }
        let driver = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        if !matches!(driver.as_str(), "bridge" | "macvlan") {
            return Err(match driver.as_str() {
                "host" | "null" => NetError::Forbidden(format!(
                    "only one instance of \"{driver}\" network is allowed"
                )),
                _ => NetError::NotFound(format!("plugin \"{driver}\" not found")),
            });
        }
        let _g = self.guard();
        if self.list()?.iter().any(|n| n.name == req.name) {
            return Err(NetError::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let (subnet, gateway, user_subnet, gateway_given) = self.choose_subnet(&req)?;
        let v6 = self.choose_subnet6(&req)?;
        let id = new_id();
        let mut options = req.options.clone();
        let interface = match driver.as_str() {
            "macvlan" => options.get("parent").cloned().ok_or_else(|| {
                NetError::InvalidParameter(
                    "macvlan: the parent option (-o parent=<interface>) is required".into(),
                )
            })?,
            _ => options
                .get("com.docker.network.bridge.name")
                .cloned()
                .unwrap_or_else(|| format!("br-{}", &id[..12])),
        };
        if driver == "bridge" && interface.len() > 15 {
            return Err(NetError::InvalidParameter(format!(
                "bridge name {interface} is too long"
            )));
        }
        for key in [
            "com.docker.network.bridge.enable_icc",
            "com.docker.network.bridge.enable_ip_masquerade",
        ] {
            if let Some(v) = options.get(key) {
                if crate::model::parse_bool(v).is_none() {
                    // Docker answers 500 here.
                    return Err(NetError::Internal(format!(
                        "failed to parse {key} value: {v} (strconv.ParseBool: parsing \"{v}\": invalid syntax)"
                    )));
                }
            }
        }
        let mtu = match options.get("com.docker.network.driver.mtu") {
            Some(v) => Some(
                v.parse::<u32>()
                    .map_err(|_| NetError::InvalidParameter(format!("invalid MTU value: {v}")))?,
            ),
            None => self.config().mtu,
        };
        if driver == "macvlan" {
            options
                .entry("macvlan_mode".into())
                .or_insert_with(|| "bridge".into());
        }
        let rec = NetworkRecord {
            id,
            name: req.name,
            driver,
            created: now(),
            internal: req.internal,
            attachable: req.attachable,
            enable_ipv6: req.enable_ipv6,
            labels: req.labels,
            options,
            subnet: subnet.network().to_string(),
            gateway: gateway.to_string(),
            user_subnet,
            gateway_given,
            subnet6: v6
                .map(|(s, ..)| s.network().to_string())
                .unwrap_or_default(),
            gateway6: v6.map(|(_, g, _)| g.to_string()).unwrap_or_default(),
            gateway6_given: v6.is_some_and(|(.., given)| given),
            interface,
            mtu,
            predefined: false,
        };
        if rec.driver == "bridge" {
            if let Err(e) = self.ensure_bridge(&rec) {
                self.delete_bridge(&rec.interface);
                return Err(e);
            }
        }
        self.put(&rec)?;
        if rec.driver == "bridge" {
            if let Err(e) = self.sync_nft() {
                let _ = self.delete_record(&rec.id);
                self.delete_bridge(&rec.interface);
                return Err(e);
            }
        }
        self.publish("create", &rec, None);
        Ok(rec)
    }

    /// The IPv4 subnet and gateway: the user's (the first IPAM entry that is not IPv6), or the
    /// first free one of the pools. Also: whether the subnet and the gateway were given.
    fn choose_subnet(
        &self,
        req: &CreateRequest,
    ) -> Result<(Cidr, std::net::Ipv4Addr, bool, bool), NetError> {
        let used = self.used_subnets(None)?;
        let Some((subnet, gateway)) = req
            .ipam
            .iter()
            .find(|(s, _)| !s.is_empty() && !s.contains(':'))
        else {
            let s = ipam::pick_subnet(&self.pools(), &used).ok_or_else(|| {
                NetError::Forbidden("all predefined address pools have been fully subnetted".into())
            })?;
            return Ok((s, s.nth(1).unwrap_or(s.addr), false, false));
        };
        let cidr = Cidr::parse(subnet).ok_or_else(|| {
            NetError::InvalidParameter(format!(
                "Invalid subnet {subnet} : invalid CIDR address: {subnet}"
            ))
        })?;
        if cidr.prefix > 30 {
            return Err(NetError::InvalidParameter(format!(
                "invalid subnet {subnet}: too small"
            )));
        }
        let ours: Vec<Cidr> = self
            .list()?
            .iter()
            .filter_map(|n| Cidr::parse(&n.subnet))
            .collect();
        if ours.iter().any(|u| u.overlaps(cidr)) {
            return Err(NetError::Forbidden(
                "Pool overlaps with other one on this address space".into(),
            ));
        }
        let gw = if gateway.is_empty() {
            cidr.nth(1).unwrap_or(cidr.addr)
        } else {
            let g: std::net::Ipv4Addr = gateway.parse().map_err(|_| {
                NetError::InvalidParameter(format!("invalid gateway address {gateway}"))
            })?;
            if !cidr.contains(g) {
                return Err(NetError::Forbidden(format!(
                    "no matching subnet for gateway {gateway}"
                )));
            }
            g
        };
        Ok((cidr, gw, true, !gateway.is_empty()))
    }

    /// The IPv6 subnet and gateway of the IPAM entries, and whether the gateway was given.
    /// Docker 20.10 has no default IPv6 pool: `--ipv6` needs a `--subnet` of its own. A subnet
    /// given without `--ipv6` is kept (inspect shows it) and not used.
    fn choose_subnet6(
        &self,
        req: &CreateRequest,
    ) -> Result<Option<(Cidr6, std::net::Ipv6Addr, bool)>, NetError> {
        let Some((subnet, gateway)) = req.ipam.iter().find(|(s, _)| s.contains(':')) else {
            if req.enable_ipv6 {
                return Err(NetError::Forbidden(
                    "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network".into(),
                ));
            }
            return Ok(None);
        };
        let cidr = Cidr6::parse(subnet).ok_or_else(|| {
            NetError::InvalidParameter(format!(
                "Invalid subnet {subnet} : invalid CIDR address: {subnet}"
            ))
        })?;
        let taken = self
            .list()?
            .iter()
            .filter_map(|n| Cidr6::parse(&n.subnet6))
            .any(|u| u.overlaps(cidr));
        if taken {
            return Err(NetError::Forbidden(
                "Pool overlaps with other one on this address space".into(),
            ));
        }
        let gw = if gateway.is_empty() {
            cidr.nth(1).ok_or_else(|| {
                NetError::InvalidParameter(format!("invalid subnet {subnet}: too small"))
            })?
        } else {
            let g: std::net::Ipv6Addr = gateway.parse().map_err(|_| {
                NetError::InvalidParameter(format!("invalid gateway address {gateway}"))
            })?;
            if !cidr.contains(g) {
                return Err(NetError::Forbidden(format!(
                    "no matching subnet for gateway {gateway}"
                )));
            }
            g
        };
        Ok(Some((cidr, gw, !gateway.is_empty())))
    }

    /// Takes the bridge down (its routes go at once) and deletes it in the background.
    fn delete_bridge(&self, name: &str) {
        if let Ok(mut nl) = Netlink::open() {
            if let Ok(Some(i)) = nl.link_index(name) {
                self.reaper().delete(&mut nl, name, i);
            }
        }
    }

    /// `DELETE /networks/{id}`.
    pub fn remove(&self, key: &str) -> Result<(), NetError> {
        let _g = self.guard();
        let rec = self.get(key)?;
        if rec.predefined {
            return Err(NetError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                rec.name
            )));
        }
        if !self.endpoints(Some(&rec.id))?.is_empty() {
            return Err(NetError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                rec.name, rec.id
            )));
        }
        self.delete_record(&rec.id)?;
        if rec.driver == "bridge" {
            self.delete_bridge(&rec.interface);
            self.sync_nft()?;
        }
        self.publish("destroy", &rec, None);
        Ok(())
    }

    /// `POST /networks/prune`: removes user networks without endpoints that `keep` accepts.
    pub fn prune(&self, keep: impl Fn(&NetworkRecord) -> bool) -> Result<Vec<String>, NetError> {
        let mut removed = Vec::new();
        for n in self.list()? {
            if n.predefined || !keep(&n) || !self.endpoints(Some(&n.id))?.is_empty() {
                continue;
            }
            if self.remove(&n.id).is_ok() {
                removed.push(n.name);
            }
        }
        Ok(removed)
    }

    /// Graceful teardown for throwaway daemons (tests): bridges and the nftables table go.
    pub fn teardown_all(&self) {
        let mut ids: std::collections::BTreeSet<String> = self
            .endpoints(None)
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.container_id)
            .collect();
        ids.extend(self.sandbox_ids());
        for id in ids {
            self.teardown(&id);
        }
        if let Ok(nets) = self.list() {
            for n in nets.iter().filter(|n| n.driver == "bridge") {
                self.delete_bridge(&n.interface);
            }
        }
        let _ = self.nft_flush();
        let _ = nft::delete_table(&self.config().nft_table);
        self.reaper().drain();
    }

    /// Whether the store knows this network's ID (used by the reader of other modules).
    pub fn exists(&self, id: &str) -> bool {
        self.store()
            .read()
            .ok()
            .and_then(|t| t.get::<NetworkRecord>(NETWORKS, id).ok().flatten())
            .is_some()
    }
}

/// The gateway address with the subnet's prefix.
pub(crate) fn gateway_cidr(rec: &NetworkRecord) -> Option<Cidr> {
    let s = Cidr::parse(&rec.subnet)?;
    Some(Cidr {
        addr: rec.gateway.parse().ok()?,
        prefix: s.prefix,
    })
}

/// Turns IPv4 forwarding on if it is off (bridged containers need it), with a log line.
fn enable_ip_forward() {
    enable_forwarding(
        "/proc/sys/net/ipv4/ip_forward",
        "IPv4",
        "net.ipv4.ip_forward",
    );
}

/// Turns IPv6 forwarding on if it is off (a network with IPv6 routes its containers' traffic),
/// with a log line, as Docker does for `--ipv6` networks.
fn enable_ipv6_forward() {
    enable_forwarding(FORWARDING6, "IPv6", "net.ipv6.conf.all.forwarding");
}

const FORWARDING6: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

fn enable_forwarding(path: &str, family: &str, key: &str) {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "0") {
        match std::fs::write(path, "1") {
            Ok(()) => tracing::info!("enabled {family} forwarding ({key}=1) for bridge networks"),
            Err(e) => tracing::warn!("cannot enable {family} forwarding: {e}"),
        }
    }
}
