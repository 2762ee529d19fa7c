//! A container's network namespace: endpoints (veth or macvlan, addresses, routes), published
//! ports, and their teardown.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;

use estiba_store::Reader;

use crate::ipam::{self, Cidr};
use crate::model::{EndpointRecord, NetworkRecord, SandboxRecord, ENDPOINTS, SANDBOXES};
use crate::netlink::{Netlink, NewLink};
use crate::nft::{self, PortMap};
use crate::{internal, netns, NetError, NetworkService};

/// First and last port of the ephemeral range `-P` draws from.
const EPHEMERAL: (u16, u16) = (32768, 60999);

/// One network a container asks to join (`EndpointsConfig`).
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ipv4: String,
    /// `--ip6`.
    pub ipv6: String,
}

/// What a container's start needs from the network service.
#[derive(Debug, Clone, Default)]
pub struct SandboxRequest {
    pub container_id: String,
    pub container_name: String,
    /// The network mode's network (name or ID; "default" is `bridge`).
    pub network: String,
    /// `NetworkingConfig.EndpointsConfig`, by network name or ID.
    pub endpoints: BTreeMap<String, EndpointRequest>,
    /// `"80/tcp"` -> [(host ip, host port)].
    pub port_bindings: BTreeMap<String, Vec<(String, String)>>,
    pub publish_all: bool,
    /// `ExposedPorts`.
    pub exposed: Vec<String>,
    /// `--dns`: where the embedded DNS server forwards (the host's resolvers when empty).
    pub dns: Vec<String>,
}

fn ep_key(container: &str, network: &str) -> String {
    format!("{container}/{network}")
}

fn random_if(prefix: &str) -> String {
    use rand::Rng;
    let n: u32 = rand::rng().random();
    format!("{prefix}{n:08x}")
}

fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn mac_string(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl NetworkService {
    /// The path of a container's namespace file.
    pub fn netns_path(&self, container_id: &str) -> PathBuf {
        self.config().exec_root.join("netns").join(container_id)
    }

    /// Makes the container's namespace and joins its networks; returns the namespace's path.
    pub fn setup(self: &Arc<Self>, req: &SandboxRequest) -> Result<PathBuf, NetError> {
        self.teardown(&req.container_id);
        let primary = if req.network == "default" {
            "bridge"
        } else {
            req.network.as_str()
        };
        let net = self.get(primary)?;
        let mut nets = vec![(net, req.endpoints.get(primary).cloned().unwrap_or_default())];
        for (name, ep) in &req.endpoints {
            let n = self.get(name)?;
            if n.id != nets[0].0.id && n.name != primary {
                nets.push((n, ep.clone()));
            }
        }
        let path = self.netns_path(&req.container_id);
        let mut result = self.setup_in(req, &path, &nets);
        if result.is_ok() && nets.iter().any(|(n, _)| !n.predefined) {
            result = self.start_dns(&req.container_id, &path, crate::dns::upstreams(&req.dns));
        }
        if result.is_err() {
            self.teardown(&req.container_id);
        }
        result.map(|()| path)
    }

    fn setup_in(
        &self,
        req: &SandboxRequest,
        path: &std::path::Path,
        nets: &[(NetworkRecord, EndpointRequest)],
    ) -> Result<(), NetError> {
        let _ = netns::remove(path);
        // No record before the namespace: a crash here leaves a file under <exec-root>/netns
        // that start-up reconciliation finds by name.
        let mut ns_nl = netns::create(path).map_err(|e| internal(format!("create netns: {e}")))?;
        let mut first = (None, None);
        for (i, (net, ep)) in nets.iter().enumerate() {
            let rec = self.join(&mut ns_nl, path, req, net, ep, i, i == 0)?;
            if i == 0 {
                first = (rec.ip, rec.ip6);
            }
        }
        if nets[0].0.driver != "bridge" {
            first = (None, None);
        }
        self.publish_ports(req, path, first.0, first.1)
    }

    /// Allocates and wires one endpoint. `gateway`: this network holds the default route.
    #[allow(clippy::too_many_arguments)]
    fn join(
        &self,
        ns_nl: &mut Netlink,
        path: &std::path::Path,
        req: &SandboxRequest,
        net: &NetworkRecord,
        ep: &EndpointRequest,
        index: usize,
        gateway: bool,
    ) -> Result<EndpointRecord, NetError> {
        if net.driver != "bridge" && net.driver != "macvlan" {
            return Err(NetError::InvalidParameter(format!(
                "container cannot be connected to network {}",
                net.name
            )));
        }
        if net.driver == "bridge" {
            // The bridge's rules (queued by network create) are in force before it is used.
            self.nft_flush()?;
        }
        let rec = self.allocate(req, net, ep, index)?;
        let ip = rec.ip.ok_or_else(|| internal("no address"))?;
        let subnet = Cidr::parse(&net.subnet).ok_or_else(|| internal("bad subnet"))?;
        let ns = std::fs::File::open(path).map_err(internal)?;
        let mut host = Netlink::open().map_err(internal)?;
        let mac = mac_for(ip);
        if net.driver == "bridge" {
            let br = host
                .link_index(&net.interface)
                .map_err(internal)?
                .ok_or_else(|| internal(format!("bridge {} is missing", net.interface)))?;
            host.add_link(
                &rec.host_if,
                NewLink::Veth {
                    peer: &rec.if_name,
                    peer_ns: ns.as_fd(),
                    peer_mac: mac,
                },
                net.mtu,
            )
            .map_err(|e| internal(format!("create veth: {e}")))?;
            let h = host
                .link_index(&rec.host_if)
                .map_err(internal)?
                .ok_or_else(|| internal("veth vanished"))?;
            host.set_up(h, Some(br)).map_err(internal)?;
            if net.option_false("com.docker.network.bridge.enable_icc") {
                host.set_port_isolated(h)
                    .map_err(|e| internal(format!("isolate {}: {e}", rec.host_if)))?;
            }
        } else {
            let parent = host
                .link_index(&net.interface)
                .map_err(internal)?
                .ok_or_else(|| {
                    NetError::InvalidParameter(format!(
                        "parent interface {} not found",
                        net.interface
                    ))
                })?;
            host.add_link(
                &rec.if_name,
                NewLink::Macvlan {
                    parent,
                    ns: ns.as_fd(),
                    mac,
                },
                net.mtu,
            )
            .map_err(|e| internal(format!("create macvlan: {e}")))?;
        }
        let i = ns_nl
            .link_index(&rec.if_name)
            .map_err(internal)?
            .ok_or_else(|| internal("interface missing in the container"))?;
        ns_nl.add_addr(i, ip, subnet.prefix).map_err(internal)?;
        match rec.ip6 {
            Some(ip6) => ns_nl.add_addr6(i, ip6, rec.prefix6).map_err(internal)?,
            None => ns_nl.no_ipv6_autoconf(i).map_err(internal)?,
        }
        ns_nl.set_up(i, None).map_err(internal)?;
        if gateway && !net.internal {
            if let Ok(gw) = net.gateway.parse::<Ipv4Addr>() {
                ns_nl.add_default_route(IpAddr::V4(gw)).map_err(internal)?;
            }
            if let (Some(_), Ok(gw)) = (rec.ip6, net.gateway6.parse::<Ipv6Addr>()) {
                ns_nl.add_default_route(IpAddr::V6(gw)).map_err(internal)?;
            }
        }
        self.publish("connect", net, Some(&req.container_id));
        Ok(rec)
    }

    /// Checks, at container create, that a network exists and `ipv4` and `ipv6` (if any) fit it.
    pub fn validate(&self, network: &str, ipv4: &str, ipv6: &str) -> Result<(), NetError> {
        let net = self.get(if network == "default" {
            "bridge"
        } else {
            network
        })?;
        if !ipv6.is_empty() {
            check_ipv6(&net, ipv6)?;
        }
        if ipv4.is_empty() {
            return Ok(());
        }
        if !net.user_subnet {
            return Err(NetError::InvalidParameter(
                "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
            ));
        }
        let subnet = Cidr::parse(&net.subnet).ok_or_else(|| internal("bad subnet"))?;
        let ip: Ipv4Addr = ipv4
            .parse()
            .map_err(|_| NetError::InvalidParameter(format!("invalid IPv4 address: {ipv4}")))?;
        if !subnet.contains(ip) {
            return Err(NetError::InvalidParameter(format!(
                "invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {ip}"
            )));
        }
        Ok(())
    }

    /// Picks the endpoint's address and records it (under the service lock).
    fn allocate(
        &self,
        req: &SandboxRequest,
        net: &NetworkRecord,
        ep: &EndpointRequest,
        index: usize,
    ) -> Result<EndpointRecord, NetError> {
        let _g = self.guard();
        let subnet = Cidr::parse(&net.subnet).ok_or_else(|| internal("bad subnet"))?;
        let others = self.endpoints(Some(&net.id))?;
        let mut taken: BTreeSet<Ipv4Addr> = others.iter().filter_map(|e| e.ip).collect();
        if let Ok(gw) = net.gateway.parse() {
            taken.insert(gw);
        }
        let ip = if ep.ipv4.is_empty() {
            ipam::lowest_free(subnet, &taken).ok_or_else(|| {
                NetError::Forbidden(format!(
                    "no available IPv4 addresses on this network's address pools: {} ({})",
                    net.name, net.id
                ))
            })?
        } else {
            if !net.user_subnet {
                return Err(NetError::InvalidParameter(
                    "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
                ));
            }
            let ip: Ipv4Addr = ep.ipv4.parse().map_err(|_| {
                NetError::InvalidParameter(format!("invalid IPv4 address: {}", ep.ipv4))
            })?;
            if !subnet.contains(ip) || ip == subnet.network().addr || ip == subnet.broadcast() {
                return Err(NetError::InvalidParameter(format!(
                    "invalid endpoint settings:\nno configured subnet or ip-range contain the IP address {ip}"
                )));
            }
            if taken.contains(&ip) {
                return Err(NetError::Forbidden("Address already in use".into()));
            }
            ip
        };
        let ip6 = allocate6(net, &others, &ep.ipv6)?;
        let prefix6 = net.ipv6().map_or(0, |s| s.prefix);
        let mut aliases = ep.aliases.clone();
        if net.name != "bridge" {
            aliases.retain(|a| !a.is_empty());
        }
        let rec = EndpointRecord {
            id: {
                use rand::Rng;
                let mut r = rand::rng();
                (0..32)
                    .map(|_| format!("{:02x}", r.random::<u8>()))
                    .collect()
            },
            network_id: net.id.clone(),
            container_id: req.container_id.clone(),
            container_name: req.container_name.clone(),
            ip: Some(ip),
            prefix: subnet.prefix,
            ip6,
            prefix6,
            requested_ip6: ep.ipv6.clone(),
            mac: mac_string(mac_for(ip)),
            aliases,
            requested_ip: ep.ipv4.clone(),
            host_if: if net.driver == "bridge" {
                random_if("veth")
            } else {
                String::new()
            },
            if_name: format!("eth{index}"),
        };
        let mut tx = self.store().write().map_err(internal)?;
        tx.put(ENDPOINTS, &ep_key(&req.container_id, &net.id), &rec)
            .map_err(internal)?;
        if index == 0 && self.container(&req.container_id).0.is_none() {
            // Without ports the sandbox record is final now: one commit (fsync) instead of two.
            if let Some(sb) = portless_sandbox(req, &self.netns_path(&req.container_id)) {
                tx.put(SANDBOXES, &req.container_id, &sb)
                    .map_err(internal)?;
            }
        }
        tx.commit().map_err(internal)?;
        Ok(rec)
    }

    /// Resolves `-p`/`-P` to concrete ports, checks they are free, and publishes them.
    fn publish_ports(
        &self,
        req: &SandboxRequest,
        path: &std::path::Path,
        ip: Option<Ipv4Addr>,
        ip6: Option<Ipv6Addr>,
    ) -> Result<(), NetError> {
        let _g = self.guard();
        let in_use: BTreeSet<(String, u16)> = self
            .sandboxes()?
            .into_iter()
            .flat_map(|s| s.ports)
            .map(|p| (p.proto, p.host_port))
            .collect();
        let mut bindings = req.port_bindings.clone();
        if ip.is_none() {
            bindings.clear();
        }
        if req.publish_all && ip.is_some() {
            for e in &req.exposed {
                bindings
                    .entry(e.clone())
                    .or_insert_with(|| vec![(String::new(), String::new())]);
            }
        }
        let mut ports = Vec::new();
        let mut exposed: BTreeSet<String> = req.exposed.iter().cloned().collect();
        for (spec, hosts) in &bindings {
            exposed.insert(spec.clone());
            let (port, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
            let container_port: u16 = port.parse().map_err(|_| {
                NetError::InvalidParameter(format!("invalid port specification: \"{spec}\""))
            })?;
            for (host_ip, host_port) in hosts {
                let hp = if host_port.is_empty() {
                    pick_port(proto, &in_use, &ports)?
                } else {
                    let hp: u16 = host_port.parse().map_err(|_| {
                        NetError::InvalidParameter(format!(
                            "invalid port specification: \"{host_port}\""
                        ))
                    })?;
                    let addr = if host_ip.is_empty() {
                        "0.0.0.0".to_string()
                    } else if host_ip.contains(':') {
                        format!("[{host_ip}]")
                    } else {
                        host_ip.clone()
                    };
                    if in_use.contains(&(proto.to_string(), hp)) || !port_free(proto, &addr, hp) {
                        return Err(NetError::Internal(format!(
                            "driver failed programming external connectivity on endpoint {}: Bind for {addr}:{hp} failed: port is already allocated",
                            req.container_name
                        )));
                    }
                    hp
                };
                let Some(container_ip) = ip else { continue };
                ports.push(PortMap {
                    proto: proto.to_string(),
                    host_ip: host_ip.clone(),
                    host_port: hp,
                    container_ip,
                    container_ip6: ip6,
                    container_port,
                });
            }
        }
        let sb = SandboxRecord {
            container_id: req.container_id.clone(),
            netns: path.display().to_string(),
            ports,
            exposed: exposed.into_iter().collect(),
        };
        if portless_sandbox(req, path).as_ref() == Some(&sb) {
            // Already recorded with the first endpoint.
            return Ok(());
        }
        // Recorded before the rules exist, so a failure or crash in between is torn down.
        let mut tx = self.store().write().map_err(internal)?;
        tx.put(SANDBOXES, &req.container_id, &sb)
            .map_err(internal)?;
        tx.commit().map_err(internal)?;
        nft::add_ports(&self.config().nft_table, &sb.ports).map_err(internal)
    }

    pub(crate) fn sandbox_ids(&self) -> Vec<String> {
        self.sandboxes()
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.container_id)
            .collect()
    }

    fn sandboxes(&self) -> Result<Vec<SandboxRecord>, NetError> {
        let tx = self.store().read().map_err(internal)?;
        Ok(tx
            .scan::<SandboxRecord>(SANDBOXES, "")
            .map_err(internal)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// A container's sandbox and endpoints (for inspect).
    pub fn container(&self, container_id: &str) -> (Option<SandboxRecord>, Vec<EndpointRecord>) {
        let Ok(tx) = self.store().read() else {
            return (None, Vec::new());
        };
        let sb = tx
            .get::<SandboxRecord>(SANDBOXES, container_id)
            .ok()
            .flatten();
        let eps = tx
            .scan::<EndpointRecord>(ENDPOINTS, &format!("{container_id}/"))
            .map(|v| v.into_iter().map(|(_, e)| e).collect())
            .unwrap_or_default();
        (sb, eps)
    }

    /// Removes a container's ports, endpoints and namespace; nothing left is not an error.
    pub fn teardown(&self, container_id: &str) {
        self.dns.stop(container_id);
        let (sb, eps) = self.container(container_id);
        if sb.is_none() && eps.is_empty() {
            let path = self.netns_path(container_id);
            if path.exists() {
                let _ = netns::remove(&path);
            }
            return;
        }
        if let Some(sb) = &sb {
            if let Err(e) = nft::delete_ports(&self.config().nft_table, &sb.ports) {
                tracing::warn!("unpublish ports of {container_id}: {e}");
            }
        }
        let mut host = Netlink::open().ok();
        for ep in &eps {
            if let (Some(nl), false) = (host.as_mut(), ep.host_if.is_empty()) {
                if let Ok(Some(i)) = nl.link_index(&ep.host_if) {
                    self.reaper().delete(nl, &ep.host_if, i);
                }
            }
        }
        // A macvlan lives only inside the namespace, whose destruction is asynchronous: delete it
        // now so its MAC is free on the parent for the next container.
        if eps.iter().any(|e| e.host_if.is_empty()) {
            if let Ok(mut nl) = netns::enter(&self.netns_path(container_id)) {
                for ep in eps.iter().filter(|e| e.host_if.is_empty()) {
                    if let Ok(Some(i)) = nl.link_index(&ep.if_name) {
                        let _ = nl.del_link(i);
                    }
                }
            }
        }
        if let Err(e) = netns::remove(&self.netns_path(container_id)) {
            tracing::warn!("remove netns of {container_id}: {e}");
        }
        let _g = self.guard();
        if let Ok(mut tx) = self.store().write() {
            for ep in &eps {
                let _ = tx.remove(ENDPOINTS, &ep_key(container_id, &ep.network_id));
            }
            let _ = tx.remove(SANDBOXES, container_id);
            let _ = tx.commit();
        }
        drop(_g);
        for ep in &eps {
            if let Ok(net) = self.get(&ep.network_id) {
                self.publish("disconnect", &net, Some(container_id));
            }
        }
    }

    /// Daemon start: sandboxes of containers not in `running` are released.
    pub fn reconcile(self: &Arc<Self>, running: &BTreeSet<String>) {
        let mut ids: BTreeSet<String> = self
            .sandboxes()
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.container_id)
            .collect();
        ids.extend(
            self.endpoints(None)
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.container_id),
        );
        if let Ok(dir) = std::fs::read_dir(self.config().exec_root.join("netns")) {
            ids.extend(
                dir.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
        for id in ids.difference(running) {
            self.teardown(id);
        }
        // Live restore: DNS servers of running containers on user-defined networks.
        for sb in self.sandboxes().unwrap_or_default() {
            let (_, eps) = self.container(&sb.container_id);
            let user = eps
                .iter()
                .any(|e| self.get(&e.network_id).is_ok_and(|n| !n.predefined));
            if user && running.contains(&sb.container_id) {
                let path = PathBuf::from(&sb.netns);
                if let Err(e) = self.start_dns(&sb.container_id, &path, crate::dns::upstreams(&[]))
                {
                    tracing::warn!("restore DNS of {}: {e}", sb.container_id);
                }
            }
        }
    }

    /// Joins a running container's namespace to one more network (`network connect`).
    pub fn connect(
        self: &Arc<Self>,
        network: &str,
        req: &SandboxRequest,
        ep: &EndpointRequest,
    ) -> Result<(), NetError> {
        let net = self.get(network)?;
        let (sb, eps) = self.container(&req.container_id);
        let Some(sb) = sb else {
            return Err(NetError::Conflict(format!(
                "container {} is not running",
                req.container_id
            )));
        };
        if eps.iter().any(|e| e.network_id == net.id) {
            return Err(NetError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                req.container_name, net.name
            )));
        }
        let index = (0..)
            .find(|i| !eps.iter().any(|e| e.if_name == format!("eth{i}")))
            .unwrap_or(eps.len());
        let path = PathBuf::from(&sb.netns);
        let mut ns_nl = netns::enter(&path).map_err(internal)?;
        match self.join(&mut ns_nl, &path, req, &net, ep, index, eps.is_empty()) {
            Ok(_) if !net.predefined && !self.dns.has(&req.container_id) => {
                self.start_dns(&req.container_id, &path, crate::dns::upstreams(&req.dns))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                self.drop_endpoint(&req.container_id, &net.id);
                Err(e)
            }
        }
    }

    fn drop_endpoint(&self, container_id: &str, network_id: &str) -> Option<EndpointRecord> {
        let (_, eps) = self.container(container_id);
        let ep = eps.into_iter().find(|e| e.network_id == network_id)?;
        if !ep.host_if.is_empty() {
            if let Ok(mut nl) = Netlink::open() {
                if let Ok(Some(i)) = nl.link_index(&ep.host_if) {
                    let _ = nl.del_link(i);
                }
            }
        }
        let _g = self.guard();
        if let Ok(mut tx) = self.store().write() {
            let _ = tx.remove(ENDPOINTS, &ep_key(container_id, network_id));
            let _ = tx.commit();
        }
        Some(ep)
    }

    /// Removes a running container from a network (`network disconnect`).
    pub fn disconnect(&self, network: &str, container_id: &str) -> Result<(), NetError> {
        let net = self.get(network)?;
        let (sb, eps) = self.container(container_id);
        if !eps.iter().any(|e| e.network_id == net.id) {
            return Err(NetError::Forbidden(format!(
                "container {container_id} is not connected to network {}",
                net.name
            )));
        }
        if let Some(sb) = sb {
            if let Some(ep) = eps.iter().find(|e| e.network_id == net.id) {
                let gone: Vec<PortMap> = sb
                    .ports
                    .iter()
                    .filter(|p| Some(p.container_ip) == ep.ip)
                    .cloned()
                    .collect();
                let _ = nft::delete_ports(&self.config().nft_table, &gone);
                if !ep.if_name.is_empty() && ep.host_if.is_empty() {
                    if let Ok(mut nl) = netns::enter(std::path::Path::new(&sb.netns)) {
                        if let Ok(Some(i)) = nl.link_index(&ep.if_name) {
                            let _ = nl.del_link(i);
                        }
                    }
                }
            }
        }
        self.drop_endpoint(container_id, &net.id);
        self.publish("disconnect", &net, Some(container_id));
        Ok(())
    }
}

/// The IPv6 address of a new endpoint of `net` (`None` without IPv6): `requested` (`--ip6`) if
/// valid and free, else the lowest free one. `others`: the network's endpoints.
fn allocate6(
    net: &NetworkRecord,
    others: &[EndpointRecord],
    requested: &str,
) -> Result<Option<Ipv6Addr>, NetError> {
    // Checked first: it also refuses `--ip6` on a network without IPv6.
    let requested = (!requested.is_empty())
        .then(|| check_ipv6(net, requested))
        .transpose()?;
    let Some(subnet6) = net.ipv6() else {
        return Ok(None);
    };
    let mut taken: BTreeSet<Ipv6Addr> = others.iter().filter_map(|e| e.ip6).collect();
    if let Ok(gw) = net.gateway6.parse() {
        taken.insert(gw);
    }
    match requested {
        Some(ip) if taken.contains(&ip) => {
            Err(NetError::Forbidden("Address already in use".into()))
        }
        Some(ip) => Ok(Some(ip)),
        None => ipam::lowest_free6(subnet6, &taken)
            .map(Some)
            .ok_or_else(|| {
                NetError::Forbidden(format!(
                    "no available IPv6 addresses on this network's address pools: {} ({})",
                    net.name, net.id
                ))
            }),
    }
}

/// `ipv6` parsed, inside `net`'s IPv6 subnet; Docker's errors otherwise.
fn check_ipv6(net: &NetworkRecord, ipv6: &str) -> Result<Ipv6Addr, NetError> {
    let ip: Ipv6Addr = ipv6
        .parse()
        .map_err(|_| NetError::InvalidParameter(format!("invalid IPv6 address: {ipv6}")))?;
    let Some(subnet) = net.ipv6() else {
        return Err(NetError::InvalidParameter(
            "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
        ));
    };
    if !subnet.contains(ip) || ip == subnet.network().addr {
        return Err(NetError::InvalidParameter(format!(
            "Invalid address {ip}: It does not belong to any of this network's subnets"
        )));
    }
    Ok(ip)
}

/// The sandbox record of a container that publishes no port (`None` when it does).
fn portless_sandbox(req: &SandboxRequest, path: &std::path::Path) -> Option<SandboxRecord> {
    if !req.port_bindings.is_empty() || req.publish_all {
        return None;
    }
    let exposed: BTreeSet<String> = req.exposed.iter().cloned().collect();
    Some(SandboxRecord {
        container_id: req.container_id.clone(),
        netns: path.display().to_string(),
        ports: Vec::new(),
        exposed: exposed.into_iter().collect(),
    })
}

fn port_free(proto: &str, addr: &str, port: u16) -> bool {
    let a = format!("{addr}:{port}");
    match proto {
        "udp" => std::net::UdpSocket::bind(&a).is_ok(),
        _ => std::net::TcpListener::bind(&a).is_ok(),
    }
}

fn pick_port(
    proto: &str,
    in_use: &BTreeSet<(String, u16)>,
    chosen: &[PortMap],
) -> Result<u16, NetError> {
    (EPHEMERAL.0..=EPHEMERAL.1)
        .find(|p| {
            !in_use.contains(&(proto.to_string(), *p))
                && !chosen.iter().any(|c| c.proto == proto && c.host_port == *p)
                && port_free(proto, "0.0.0.0", *p)
        })
        .ok_or_else(|| NetError::Internal("no free port in the ephemeral range".into()))
}
