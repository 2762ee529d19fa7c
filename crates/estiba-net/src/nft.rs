//! NAT, port publishing and isolation with nftables, in this daemon's own table (the `nft`
//! binary; never touches other tables).
//!
//! Network-level rules (masquerade, isolation) live in chains that are rebuilt atomically when
//! a network comes or goes; published ports are elements of two maps, added and deleted one
//! container at a time, so no rule handle has to be remembered.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::ipam::Cidr;

/// One bridge's part of the ruleset.
pub(crate) struct BridgeRules {
    pub(crate) bridge: String,
    pub(crate) subnet: Cidr,
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
    if bridges.is_empty() {
        return format!("table ip {table} {{ }}\ndelete table ip {table}\n");
    }
    let mut s = format!(
        "table ip {table} {{
  map ports {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
  map ports_ip {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}
  chain publish {{ }}
  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
  chain output {{ type nat hook output priority -100; policy accept; }}
  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
  chain forward {{ type filter hook forward priority filter; policy accept; }}
}}
flush chain ip {table} publish
flush chain ip {table} prerouting
flush chain ip {table} output
flush chain ip {table} postrouting
flush chain ip {table} forward
add rule ip {table} publish dnat ip to ip daddr . meta l4proto . th dport map @ports_ip
add rule ip {table} publish dnat ip to meta l4proto . th dport map @ports
add rule ip {table} prerouting fib daddr type local jump publish
add rule ip {table} output fib daddr type local jump publish
"
    );
    let names: Vec<String> = bridges
        .iter()
        .map(|b| format!("\"{}\"", b.bridge))
        .collect();
    for b in bridges {
        let (br, net) = (&b.bridge, b.subnet.network());
        if b.masquerade && !b.internal {
            s.push_str(&format!(
                "add rule ip {table} postrouting ip saddr {net} oifname != \"{br}\" masquerade\n"
            ));
        }
        // Published ports reached from the host's loopback or from the same bridge (hairpin).
        s.push_str(&format!(
            "add rule ip {table} postrouting oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade\n\
             add rule ip {table} postrouting iifname \"{br}\" oifname \"{br}\" ct status dnat masquerade\n"
        ));
        if b.internal {
            s.push_str(&format!(
                "add rule ip {table} forward iifname \"{br}\" oifname != \"{br}\" drop\n\
                 add rule ip {table} forward oifname \"{br}\" iifname != \"{br}\" drop\n"
            ));
        }
        if names.len() > 1 {
            let others: Vec<&String> = names
                .iter()
                .filter(|n| **n != format!("\"{br}\""))
                .collect();
            let set = others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            s.push_str(&format!(
                "add rule ip {table} forward iifname \"{br}\" oifname {{ {set} }} drop\n\
                 add rule ip {table} forward oifname \"{br}\" iifname {{ {set} }} drop\n"
            ));
        }
    }
    s
}

fn elements(ports: &[PortMap]) -> (Vec<String>, Vec<String>) {
    let mut any = Vec::new();
    let mut by_ip = Vec::new();
    for p in ports {
        let v = format!(
            "{} . {} : {} . {}",
            p.proto, p.host_port, p.container_ip, p.container_port
        );
        if p.host_ip.is_empty() || p.host_ip == "0.0.0.0" {
            any.push(v);
        } else {
            by_ip.push(format!("{} . {v}", p.host_ip));
        }
    }
    (any, by_ip)
}

fn change(verb: &str, table: &str, ports: &[PortMap]) -> Result<(), String> {
    let (any, by_ip) = elements(ports);
    let mut s = String::new();
    if !any.is_empty() {
        s.push_str(&format!(
            "{verb} element ip {table} ports {{ {} }}\n",
            any.join(", ")
        ));
    }
    if !by_ip.is_empty() {
        s.push_str(&format!(
            "{verb} element ip {table} ports_ip {{ {} }}\n",
            by_ip.join(", ")
        ));
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

/// Removes the whole table (daemon teardown).
pub(crate) fn delete_table(table: &str) -> Result<(), String> {
    run(&format!("delete table ip {table}\n"))
}
