//! The embedded DNS server of user-defined networks: UDP and TCP on 127.0.0.11:53 inside each
//! container's namespace, answering container names, aliases and short IDs of the networks the
//! container shares with them (and PTR queries for their addresses, as
//! `<name>.<network>`), and forwarding everything else to the upstream resolvers. A name has
//! its IPv4 addresses as A records and, on networks with IPv6, its IPv6 ones as AAAA records.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};

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
/// How long a TCP client may take to send a query.
const TCP_TIMEOUT: Duration = Duration::from_secs(2);
/// Most queries answered on one TCP connection.
const TCP_MAX_QUERIES: usize = 16;

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
            let udp = UdpSocket::bind((DNS_ADDR, 53))?;
            udp.set_nonblocking(true)?;
            let tcp = TcpListener::bind((DNS_ADDR, 53))?;
            tcp.set_nonblocking(true)?;
            Ok((udp, tcp))
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
    fn lookup(&self, container_id: &str, name: &str) -> Vec<IpAddr> {
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
                if !hit {
                    continue;
                }
                let ips = other.ip.map(IpAddr::V4).into_iter();
                for ip in ips.chain(other.ip6.map(IpAddr::V6)) {
                    if !out.contains(&ip) {
                        out.push(ip);
                    }
                }
            }
        }
        out
    }

    /// `<name>.<network>` of the container that has `ip` on a user-defined network shared with
    /// `container_id`.
    fn reverse(&self, container_id: &str, ip: IpAddr) -> Option<String> {
        let (_, mine) = self.container(container_id);
        for ep in &mine {
            let Ok(net) = self.get(&ep.network_id) else {
                continue;
            };
            if net.predefined {
                continue;
            }
            let eps = self.endpoints(Some(&net.id)).unwrap_or_default();
            let has = |o: &&crate::EndpointRecord| match ip {
                IpAddr::V4(v4) => o.ip == Some(v4),
                IpAddr::V6(v6) => o.ip6 == Some(v6),
            };
            if let Some(other) = eps.iter().find(has) {
                return Some(format!("{}.{}.", other.container_name, net.name));
            }
        }
        None
    }
}

fn serve(
    svc: Weak<NetworkService>,
    id: &str,
    (udp, tcp): &(UdpSocket, TcpListener),
    stop: &AtomicBool,
    upstream: &[SocketAddr],
) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: POLL.as_nanos().try_into().unwrap_or(500_000_000),
    };
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [
            PollFd::new(udp, PollFlags::IN),
            PollFd::new(tcp, PollFlags::IN),
        ];
        if poll(&mut fds, Some(&timeout)).is_err() {
            std::thread::sleep(POLL);
            continue;
        }
        let (udp_ready, tcp_ready) = (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
        let Some(svc) = svc.upgrade() else { return };
        if udp_ready {
            while let Ok((n, peer)) = udp.recv_from(&mut buf) {
                if let Some(answer) = answer(&svc, id, &buf[..n], upstream) {
                    let _ = udp.send_to(&answer, peer);
                }
            }
        }
        if tcp_ready {
            while let Ok((conn, _)) = tcp.accept() {
                serve_tcp(&svc, id, conn, upstream);
            }
        }
    }
}

/// Answers the length-prefixed queries of one TCP connection (RFC 7766), bounded in count and
/// time.
fn serve_tcp(svc: &NetworkService, id: &str, mut conn: TcpStream, upstream: &[SocketAddr]) {
    if conn.set_nonblocking(false).is_err()
        || conn.set_read_timeout(Some(TCP_TIMEOUT)).is_err()
        || conn.set_write_timeout(Some(TCP_TIMEOUT)).is_err()
    {
        return;
    }
    for _ in 0..TCP_MAX_QUERIES {
        let mut len = [0u8; 2];
        if conn.read_exact(&mut len).is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if conn.read_exact(&mut query).is_err() {
            return;
        }
        let Some(reply) = answer(svc, id, &query, upstream) else {
            return;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        let mut out = n.to_be_bytes().to_vec();
        out.extend_from_slice(&reply);
        if conn.write_all(&out).is_err() {
            return;
        }
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
    if q.query_type() == RecordType::PTR {
        let target = reverse_v4(name)
            .map(IpAddr::V4)
            .or_else(|| reverse_v6(name).map(IpAddr::V6))
            .and_then(|ip| svc.reverse(id, ip))
            .and_then(|n| Name::from_ascii(n).ok());
        return match target {
            Some(target) => {
                let mut r = reply_to(&msg);
                r.add_query(q.clone());
                r.add_answer(Record::from_rdata(
                    q.name().clone(),
                    TTL,
                    RData::PTR(PTR(target)),
                ));
                r.to_vec().ok()
            }
            None => forward(query, upstream).or_else(|| servfail(&msg)),
        };
    }
    let ips = if name.contains('.') {
        Vec::new()
    } else {
        svc.lookup(id, name)
    };
    if ips.is_empty() {
        return forward(query, upstream).or_else(|| servfail(&msg));
    }
    let mut r = reply_to(&msg);
    r.add_query(q.clone());
    let any = q.query_type() == RecordType::ANY;
    for ip in ips {
        let rdata = match ip {
            IpAddr::V4(v4) if any || q.query_type() == RecordType::A => RData::A(A(v4)),
            IpAddr::V6(v6) if any || q.query_type() == RecordType::AAAA => RData::AAAA(AAAA(v6)),
            _ => continue,
        };
        r.add_answer(Record::from_rdata(q.name().clone(), TTL, rdata));
    }
    r.to_vec().ok()
}

/// An authoritative, empty response to `msg`.
fn reply_to(msg: &Message) -> Message {
    let mut r = Message::new();
    r.set_id(msg.id())
        .set_message_type(MessageType::Response)
        .set_op_code(msg.op_code())
        .set_recursion_desired(msg.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(true);
    r
}

fn servfail(msg: &Message) -> Option<Vec<u8>> {
    let mut r = Message::error_msg(msg.id(), msg.op_code(), ResponseCode::ServFail);
    if let Some(q) = msg.queries().first() {
        r.add_query(q.clone());
    }
    r.to_vec().ok()
}

/// `4.3.2.1.in-addr.arpa` → 1.2.3.4.
fn reverse_v4(name: &str) -> Option<Ipv4Addr> {
    let rest = name
        .to_ascii_lowercase()
        .strip_suffix(".in-addr.arpa")?
        .to_string();
    let octets: Vec<u8> = rest
        .split('.')
        .map(|o| o.parse().ok())
        .collect::<Option<Vec<u8>>>()?;
    match octets.as_slice() {
        [d, c, b, a] => Some(Ipv4Addr::new(*a, *b, *c, *d)),
        _ => None,
    }
}

/// `b.a.9.8.….ip6.arpa` (32 nibbles, least significant first) → the address.
fn reverse_v6(name: &str) -> Option<Ipv6Addr> {
    let lower = name.to_ascii_lowercase();
    let rest = lower.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u32> = rest
        .split('.')
        .map(|n| match n.len() {
            1 => n.chars().next()?.to_digit(16),
            _ => None,
        })
        .collect::<Option<Vec<u32>>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let bits = nibbles
        .iter()
        .rev()
        .fold(0u128, |acc, n| (acc << 4) | u128::from(*n));
    Some(Ipv6Addr::from(bits))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_v4("2.0.18.172.in-addr.arpa"),
            Some(Ipv4Addr::new(172, 18, 0, 2))
        );
        assert_eq!(
            reverse_v4("2.0.18.172.IN-ADDR.ARPA"),
            Some(Ipv4Addr::new(172, 18, 0, 2))
        );
        for bad in [
            "0.18.172.in-addr.arpa",
            "x.0.18.172.in-addr.arpa",
            "2.0.18.172.ip6.arpa",
            "256.0.0.1.in-addr.arpa",
        ] {
            assert_eq!(reverse_v4(bad), None, "{bad}");
        }
    }

    #[test]
    fn reverse_names_v6() {
        let name = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.3.5.d.f.ip6.arpa";
        assert_eq!(reverse_v6(name), "fd53:1::2".parse().ok());
        assert_eq!(reverse_v6(&name.to_uppercase()), "fd53:1::2".parse().ok());
        assert_eq!(reverse_v6("2.0.ip6.arpa"), None);
        assert_eq!(reverse_v6(&name.replace("2.0.0", "20.0")), None);
        assert_eq!(reverse_v6("2.0.18.172.in-addr.arpa"), None);
    }
}
