//! NAT, port publishing and isolation with nftables, in this daemon's own table (the `nft`
//! binary; never touches other tables).
//!
//! Network-level rules (masquerade, isolation) live in chains that are rebuilt atomically when
//! a network comes or goes; published ports are elements of two maps, added and deleted one
//! container at a time, so no rule handle has to be remembered.
//!
//! IPv6 has a table of its own (family ip6, same name) with the same chains for the networks
//! that have IPv6: masquerade, isolation and published ports to the containers' IPv6
//! addresses. It exists only while some network has IPv6.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

use crate::ipam::{Cidr, Cidr6};

/// One bridge's part of the ruleset.
pub(crate) struct BridgeRules {
    pub(crate) bridge: String,
    pub(crate) subnet: Cidr,
    /// The IPv6 subnet of a network with IPv6 enabled.
    pub(crate) subnet6: Option<Cidr6>,
    pub(crate) masquerade: bool,
    pub(crate) internal: bool,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortMap {
    pub proto: String,
    /// Empty for every address.
    pub host_ip: String,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    /// The container's IPv6 address on a network with IPv6: the port is published on the
    /// host's IPv6 addresses too.
    #[serde(default)]
    pub container_ip6: Option<Ipv6Addr>,
    pub container_port: u16,
}

/// Runs `nft -f -` with `script`.
pub(crate) fn run(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The script that creates the table (idempotent) and rebuilds its chains for `bridges`; with
/// no bridge, the script removes the table (this daemon then keeps none).
pub(crate) fn script(table: &str, bridges: &[BridgeRules]) -> String {
    let mut s = script4(table, bridges);
    s.push_str(&script6(table, bridges));
    s
}

/// `table` of `family` made to exist and deleted (deleting a missing table is an error).
fn drop_table(family: &str, table: &str) -> String {
    format!("table {family} {table} {{ }}\ndelete table {family} {table}\n")
}

/// `nft` set syntax for the other bridges than `br`, if any.
fn others(bridges: &[BridgeRules], br: &str) -> Option<String> {
    let names: Vec<String> = bridges
        .iter()
        .filter(|b| b.bridge != br)
        .map(|b| format!("\"{}\"", b.bridge))
        .collect();
    (!names.is_empty()).then(|| format!("{{ {} }}", names.join(", ")))
}

/// The table of `family` (ip or ip6) with its port maps (`<maps>`, `<maps>_ip`) and chains,
/// the chains emptied, and the rules that publish ports from the maps.
fn chains(family: &str, table: &str, maps: &str) -> String {
    let addr = if family == "ip6" {
        "ipv6_addr"
    } else {
        "ipv4_addr"
    };
    format!(
        "table {family} {table} {{
  map {maps} {{ type inet_proto . inet_service : {addr} . inet_service; }}
  map {maps}_ip {{ type {addr} . inet_proto . inet_service : {addr} . inet_service; }}
  chain publish {{ }}
  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
  chain output {{ type nat hook output priority -100; policy accept; }}
  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
  chain forward {{ type filter hook forward priority filter; policy accept; }}
}}
flush chain {family} {table} publish
flush chain {family} {table} prerouting
flush chain {family} {table} output
flush chain {family} {table} postrouting
flush chain {family} {table} forward
add rule {family} {table} publish dnat {family} to {family} daddr . meta l4proto . th dport map @{maps}_ip
add rule {family} {table} publish dnat {family} to meta l4proto . th dport map @{maps}
add rule {family} {table} prerouting fib daddr type local jump publish
add rule {family} {table} output fib daddr type local jump publish
"
    )
}

/// Traffic from `net` (a bridge's subnet) leaving by another interface takes the host's
/// address, unless the bridge is internal or its `enable_ip_masquerade` is false.
fn masquerade(family: &str, table: &str, b: &BridgeRules, net: impl std::fmt::Display) -> String {
    if !b.masquerade || b.internal {
        return String::new();
    }
    let br = &b.bridge;
    format!("add rule {family} {table} postrouting {family} saddr {net} oifname != \"{br}\" masquerade\n")
}

/// Traffic from one of `br`'s containers to a published port of another, through the host
/// (hairpin), leaves with the host's address so the answer comes back the same way.
fn hairpin(family: &str, table: &str, br: &str) -> String {
    format!(
        "add rule {family} {table} postrouting iifname \"{br}\" oifname \"{br}\" ct status dnat masquerade\n"
    )
}

/// The forward rules of one bridge, the same in both families so IPv6 never reaches what IPv4
/// keeps apart: an `--internal` bridge talks only to itself, and no bridge talks to another.
fn forward_rules(family: &str, table: &str, b: &BridgeRules, bridges: &[BridgeRules]) -> String {
    let br = &b.bridge;
    let mut s = String::new();
    if b.internal {
        s.push_str(&format!(
            "add rule {family} {table} forward iifname \"{br}\" oifname != \"{br}\" drop\n\
             add rule {family} {table} forward oifname \"{br}\" iifname != \"{br}\" drop\n"
        ));
    }
    if let Some(set) = others(bridges, br) {
        s.push_str(&format!(
            "add rule {family} {table} forward iifname \"{br}\" oifname {set} drop\n\
             add rule {family} {table} forward oifname \"{br}\" iifname {set} drop\n"
        ));
    }
    s
}

/// The IPv6 table: only while some bridge has an IPv6 subnet. Isolation covers every bridge
/// (a bridge without IPv6 has no IPv6 address to route to, but costs two rules).
fn script6(table: &str, bridges: &[BridgeRules]) -> String {
    if !bridges.iter().any(|b| b.subnet6.is_some()) {
        return drop_table("ip6", table);
    }
    let mut s = chains("ip6", table, "ports6");
    for b in bridges {
        let br = &b.bridge;
        if let Some(net) = b.subnet6.map(Cidr6::network) {
            s.push_str(&masquerade("ip6", table, b, net));
            s.push_str(&hairpin("ip6", table, br));
        }
        s.push_str(&forward_rules("ip6", table, b, bridges));
    }
    s
}

/// The IPv4 table.
fn script4(table: &str, bridges: &[BridgeRules]) -> String {
    if bridges.is_empty() {
        return drop_table("ip", table);
    }
    let mut s = chains("ip", table, "ports");
    for b in bridges {
        let (br, net) = (&b.bridge, b.subnet.network());
        s.push_str(&masquerade("ip", table, b, net));
        // Published ports reached from the host's loopback or from the same bridge (hairpin).
        s.push_str(&format!(
            "add rule ip {table} postrouting oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade\n"
        ));
        s.push_str(&hairpin("ip", table, br));
        s.push_str(&forward_rules("ip", table, b, bridges));
    }
    s
}

/// The elements of the maps `ports`, `ports_ip` (table ip), `ports6` and `ports6_ip`
/// (table ip6), in that order. A port on every address is published on IPv6 too when the
/// container has an IPv6 address; one on an IPv4 (IPv6) address only on that family.
fn elements(ports: &[PortMap]) -> [Vec<String>; 4] {
    let mut out: [Vec<String>; 4] = Default::default();
    for p in ports {
        let v4 = format!(
            "{} . {} : {} . {}",
            p.proto, p.host_port, p.container_ip, p.container_port
        );
        let v6 = p.container_ip6.map(|ip6| {
            format!(
                "{} . {} : {ip6} . {}",
                p.proto, p.host_port, p.container_port
            )
        });
        match p.host_ip.as_str() {
            "" => {
                out[0].push(v4);
                out[2].extend(v6);
            }
            "0.0.0.0" => out[0].push(v4),
            "::" => out[2].extend(v6),
            ip if ip.contains(':') => out[3].extend(v6.map(|v| format!("{ip} . {v}"))),
            ip => out[1].push(format!("{ip} . {v4}")),
        }
    }
    out
}

fn change(verb: &str, table: &str, ports: &[PortMap]) -> Result<(), String> {
    let mut s = String::new();
    let maps = [
        ("ip", "ports"),
        ("ip", "ports_ip"),
        ("ip6", "ports6"),
        ("ip6", "ports6_ip"),
    ];
    for ((family, map), elems) in maps.iter().zip(elements(ports)) {
        if !elems.is_empty() {
            s.push_str(&format!(
                "{verb} element {family} {table} {map} {{ {} }}\n",
                elems.join(", ")
            ));
        }
    }
    if s.is_empty() {
        return Ok(());
    }
    run(&s)
}

/// Publishes `ports`.
pub(crate) fn add_ports(table: &str, ports: &[PortMap]) -> Result<(), String> {
    change("add", table, ports)
}

/// Withdraws `ports`.
pub(crate) fn delete_ports(table: &str, ports: &[PortMap]) -> Result<(), String> {
    change("delete", table, ports)
}

/// Removes the tables (daemon teardown); a missing one is not an error.
pub(crate) fn delete_table(table: &str) -> Result<(), String> {
    run(&format!(
        "{}{}",
        drop_table("ip", table),
        drop_table("ip6", table)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridges() -> Vec<BridgeRules> {
        vec![
            BridgeRules {
                bridge: "esv4only".into(),
                subnet: Cidr::parse("10.250.3.0/24").unwrap(),
                subnet6: None,
                masquerade: true,
                internal: true,
            },
            BridgeRules {
                bridge: "esv6".into(),
                subnet: Cidr::parse("10.119.0.0/24").unwrap(),
                subnet6: Cidr6::parse("fd5e:1::/64"),
                masquerade: true,
                internal: false,
            },
        ]
    }

    /// The rebuilt ruleset, the port elements and the teardown are accepted by `nft --check`
    /// (which asks the kernel; needs root, as CI is).
    #[test]
    fn scripts_pass_nft_check() {
        let table = format!("estiba_ut{}", std::process::id());
        let s = script(&table, &bridges());
        assert!(
            s.contains("table ip6 ") && s.contains("saddr fd5e:1::/64"),
            "{s}"
        );
        let check = |s: &str| {
            let mut child = Command::new("nft")
                .args(["-c", "-f", "-"])
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{s}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        check(&s);
        let v4only = script(&table, &bridges()[..1]);
        assert!(v4only.contains("delete table ip6"), "{v4only}");
        check(&v4only);
    }

    #[test]
    fn port_elements_by_family() {
        let p = |host_ip: &str, ip6: Option<&str>| PortMap {
            proto: "tcp".into(),
            host_ip: host_ip.into(),
            host_port: 8080,
            container_ip: Ipv4Addr::new(10, 0, 0, 2),
            container_ip6: ip6.map(|i| i.parse().unwrap()),
            container_port: 80,
        };
        let e = elements(&[p("", Some("fd5e::2")), p("", None)]);
        assert_eq!(e[0].len(), 2);
        assert_eq!(e[2], vec!["tcp . 8080 : fd5e::2 . 80".to_string()]);
        let e = elements(&[p("0.0.0.0", Some("fd5e::2")), p("::", Some("fd5e::2"))]);
        assert_eq!((e[0].len(), e[2].len()), (1, 1));
        let e = elements(&[
            p("fd00::2", Some("fd5e::2")),
            p("10.1.1.1", Some("fd5e::2")),
        ]);
        assert_eq!(
            e[3],
            vec!["fd00::2 . tcp . 8080 : fd5e::2 . 80".to_string()]
        );
        assert_eq!(
            e[1],
            vec!["10.1.1.1 . tcp . 8080 : 10.0.0.2 . 80".to_string()]
        );
    }
}
