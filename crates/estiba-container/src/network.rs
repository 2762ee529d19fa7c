//! A container's networking at start and exit: the network service's namespace and endpoints,
//! `container:<id>` mode, and the /etc/hosts lines for its addresses and links.

use std::path::PathBuf;

use estiba_net::{EndpointRequest, NetError, SandboxRequest};
use estiba_oci::NetworkMode;

use crate::error::ContainerError;
use crate::model::ContainerRecord;
use crate::service::ContainerService;

/// The network service's errors as the container service's.
pub(crate) fn net_error(e: NetError) -> ContainerError {
    match e {
        NetError::NotFound(m) | NetError::InvalidParameter(m) => {
            ContainerError::InvalidParameter(m)
        }
        NetError::Conflict(m) | NetError::Forbidden(m) => ContainerError::Conflict(m),
        NetError::Internal(m) => ContainerError::Internal(m),
    }
}

/// Whether the mode joins networks of the network service (not host, none or container:).
fn uses_networks(mode: &str) -> bool {
    !matches!(mode, "host" | "none") && !mode.starts_with("container:")
}

/// The network-service request of a container.
pub(crate) fn sandbox_request(record: &ContainerRecord) -> SandboxRequest {
    let h = &record.host;
    SandboxRequest {
        container_id: record.id.clone(),
        container_name: record.name.clone(),
        network: h.network_mode.clone(),
        endpoints: h
            .endpoints
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    EndpointRequest {
                        aliases: v.aliases.clone(),
                        ipv4: v.ipv4_address.clone(),
                        ipv6: v.ipv6_address.clone(),
                    },
                )
            })
            .collect(),
        port_bindings: h
            .port_bindings
            .iter()
            .map(|(k, v)| {
                let b = v
                    .iter()
                    .map(|b| (b.host_ip.clone(), b.host_port.clone()))
                    .collect();
                (k.clone(), b)
            })
            .collect(),
        publish_all: h.publish_all_ports,
        exposed: record.config.exposed_ports.clone(),
        dns: h.dns.clone(),
    }
}

impl ContainerService {
    /// The network service (for inspect's `NetworkSettings`).
    pub fn networks(&self) -> &estiba_net::NetworkService {
        &self.networks
    }

    /// Before the runtime's create: the namespace and endpoints of bridge/user networks.
    pub(crate) fn net_setup(&self, record: &ContainerRecord) -> Result<(), ContainerError> {
        if !uses_networks(&record.host.network_mode) {
            return Ok(());
        }
        self.networks
            .setup(&sandbox_request(record))
            .map(|_| ())
            .map_err(net_error)
    }

    /// The spec's network namespace: the service's, or the other container's for `container:`.
    pub(crate) fn net_options(
        &self,
        record: &ContainerRecord,
        current: NetworkMode,
    ) -> Result<NetworkMode, ContainerError> {
        let mode = record.host.network_mode.as_str();
        if let Some(other) = mode.strip_prefix("container:") {
            let c = self.get(other)?;
            let r = c.snapshot();
            if !r.state.status.is_running() || r.state.pid == 0 {
                return Err(ContainerError::Conflict(format!(
                    "cannot join network namespace of a non running container: container {} is {}",
                    r.id,
                    r.state.status.as_str()
                )));
            }
            return Ok(NetworkMode::Path(PathBuf::from(format!(
                "/proc/{}/ns/net",
                r.state.pid
            ))));
        }
        if uses_networks(mode) {
            return Ok(NetworkMode::Path(self.networks.netns_path(&record.id)));
        }
        Ok(current)
    }

    /// At create: the networks exist and `--ip` fits its network.
    pub(crate) fn net_check(&self, host: &crate::model::HostOptions) -> Result<(), ContainerError> {
        if !uses_networks(&host.network_mode) {
            return Ok(());
        }
        self.networks
            .validate(&host.network_mode, "", "")
            .map_err(net_error)?;
        for (name, ep) in &host.endpoints {
            self.networks
                .validate(name, &ep.ipv4_address, &ep.ipv6_address)
                .map_err(net_error)?;
        }
        Ok(())
    }

    /// After exit or a failed start: endpoints, ports and namespace go.
    pub(crate) fn net_teardown(&self, id: &str) {
        self.networks.teardown(id);
    }

    /// Daemon start: networking of containers that are no longer running is released.
    pub(crate) fn net_reconcile(&self) {
        let running = self
            .read_index()
            .values()
            .map(|c| c.snapshot())
            .filter(|r| r.state.status.is_running())
            .map(|r| r.id)
            .collect();
        self.networks.reconcile(&running);
    }

    /// resolv.conf of a container on a user-defined network: the embedded DNS server.
    pub(crate) fn net_resolv_conf(&self, record: &ContainerRecord) -> Option<String> {
        let (_, eps) = self.networks.container(&record.id);
        let user = eps.iter().any(|e| {
            self.networks
                .get(&e.network_id)
                .is_ok_and(|n| !n.predefined)
        });
        if !user {
            return None;
        }
        let h = &record.host;
        let mut out = String::new();
        let search: Vec<String> = if h.dns_search.is_empty() {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            host.lines()
                .filter_map(|l| l.strip_prefix("search "))
                .flat_map(|l| l.split_whitespace().map(str::to_string))
                .collect()
        } else {
            h.dns_search.iter().filter(|s| *s != ".").cloned().collect()
        };
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        }
        out.push_str(&format!("nameserver {}\n", estiba_net::DNS_ADDR));
        let mut options = vec!["ndots:0".to_string()];
        options.extend(h.dns_options.iter().cloned());
        out.push_str(&format!("options {}\n", options.join(" ")));
        Some(out)
    }

    /// Extra /etc/hosts lines: the container's own addresses, then `--link` targets.
    pub(crate) fn net_hosts(&self, record: &ContainerRecord) -> String {
        let mut out = String::new();
        let (_, eps) = self.networks.container(&record.id);
        for ep in &eps {
            if let Some(ip) = ep.ip {
                out.push_str(&format!("{ip}\t{}\n", record.config.hostname));
            }
            if let Some(ip6) = ep.ip6 {
                out.push_str(&format!("{ip6}\t{}\n", record.config.hostname));
            }
        }
        for link in &record.host.links {
            let (target, alias) = link.split_once(':').unwrap_or((link, link));
            let Ok(c) = self.get(target) else { continue };
            let r = c.snapshot();
            let (_, teps) = self.networks.container(&r.id);
            if let Some(ip) = teps.iter().find_map(|e| e.ip) {
                let name = r.name.trim_start_matches('/');
                let mut names = vec![alias.trim_start_matches('/').to_string()];
                if name != names[0] {
                    names.push(name.to_string());
                }
                names.push(r.config.hostname.clone());
                out.push_str(&format!("{ip}\t{}\n", names.join(" ")));
            }
        }
        out
    }
}
