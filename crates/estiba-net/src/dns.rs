//! The embedded DNS server of user-defined networks: a UDP socket on 127.0.0.11:53 inside each
//! container's namespace, answering container names, aliases and short IDs of the networks the
//! container shares with them, and forwarding everything else to the upstream resolvers.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

use crate::{internal, netns, NetError, NetworkService};

/// The address containers' resolv.conf names.
pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// Largest DNS datagram handled.
const MAX_DATAGRAM: usize = 4096;
/// How often a server checks whether it should stop.
const POLL: Duration = Duration::from_millis(500);
/// How long an upstream resolver may take.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// TTL of answers about containers (Docker's 600).
const TTL: u32 = 600;

/// The running servers, by container ID.
#[derive(Default)]
pub(crate) struct DnsServers(Mutex<HashMap<String, Arc<AtomicBool>>>);

impl DnsServers {
    /// Whether a container has a running server.
    pub(crate) fn has(&self, container_id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(container_id)
    }

    /// Stops a container's server (its thread ends within [`POLL`]).
    pub(crate) fn stop(&self, container_id: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flag) = map.remove(container_id) {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

/// Upstream nameservers: `--dns`, or the host's non-loopback ones.
pub(crate) fn upstreams(dns: &[String]) -> Vec<SocketAddr> {
    let mut list: Vec<String> = dns.to_vec();
    if list.is_empty() {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        list = text
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver"))
            .map(|s| s.trim().to_string())
            .collect();
    }
    list.iter()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .take(3)
        .collect()
}

impl NetworkService {
    /// Starts the DNS server inside the namespace at `path` for `container_id`.
    pub(crate) fn start_dns(
        self: &Arc<Self>,
        container_id: &str,
        path: &Path,
        upstream: Vec<SocketAddr>,
    ) -> Result<(), NetError> {
        let socket = netns::run_in(path, || {
            let s = UdpSocket::bind((DNS_ADDR, 53))?;
            s.set_read_timeout(Some(POLL))?;
            Ok(s)
        })
        .map_err(|e| internal(format!("embedded DNS: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        self.dns
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(container_id.to_string(), Arc::clone(&stop));
        let svc = Arc::downgrade(self);
        let id = container_id.to_string();
        std::thread::Builder::new()
            .name(format!("dns-{}", &id[..id.len().min(12)]))
            .spawn(move || serve(svc, &id, &socket, &stop, &upstream))
            .map_err(internal)?;
        Ok(())
    }

    /// The addresses `name` has for `container_id`: names, aliases and short IDs of containers
    /// on the user-defined networks it is on.
    fn lookup(&self, container_id: &str, name: &str) -> Vec<Ipv4Addr> {
        let (_, mine) = self.container(container_id);
        let mut out = Vec::new();
        for ep in &mine {
            let Ok(net) = self.get(&ep.network_id) else {
                continue;
            };
            if net.predefined {
                continue;
            }
            for other in self.endpoints(Some(&net.id)).unwrap_or_default() {
                let hit = other.container_name.eq_ignore_ascii_case(name)
                    || other.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                    || (name.len() == 12 && other.container_id.starts_with(name));
                if let (true, Some(ip)) = (hit, other.ip) {
                    if !out.contains(&ip) {
                        out.push(ip);
                    }
                }
            }
        }
        out
    }
}

fn serve(
    svc: Weak<NetworkService>,
    id: &str,
    socket: &UdpSocket,
    stop: &AtomicBool,
    upstream: &[SocketAddr],
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Some(svc) = svc.upgrade() else { return };
        let Some(answer) = answer(&svc, id, &buf[..n], upstream) else {
            continue;
        };
        let _ = socket.send_to(&answer, peer);
    }
}

/// The reply to one query: ours for container names, the upstream's otherwise.
fn answer(
    svc: &NetworkService,
    id: &str,
    query: &[u8],
    upstream: &[SocketAddr],
) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    if msg.message_type() != MessageType::Query {
        return None;
    }
    let q = msg.queries().first()?.clone();
    let name = q.name().to_ascii();
    let name = name.trim_end_matches('.');
    let ips = if name.contains('.') {
        Vec::new()
    } else {
        svc.lookup(id, name)
    };
    if ips.is_empty() {
        return forward(query, upstream).or_else(|| {
            let mut r = Message::error_msg(msg.id(), msg.op_code(), ResponseCode::ServFail);
            r.add_query(q.clone());
            r.to_vec().ok()
        });
    }
    let mut r = Message::new();
    r.set_id(msg.id())
        .set_message_type(MessageType::Response)
        .set_op_code(msg.op_code())
        .set_recursion_desired(msg.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    r.add_query(q.clone());
    if q.query_type() == RecordType::A || q.query_type() == RecordType::ANY {
        for ip in ips {
            r.add_answer(Record::from_rdata(q.name().clone(), TTL, RData::A(A(ip))));
        }
    }
    r.to_vec().ok()
}

fn forward(query: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    for server in upstream {
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        }
        .parse()
        .ok()?;
        let Ok(s) = UdpSocket::bind(bind) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(UPSTREAM_TIMEOUT));
        if s.send_to(query, server).is_err() {
            continue;
        }
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return Some(buf[..n].to_vec());
        }
    }
    None
}
