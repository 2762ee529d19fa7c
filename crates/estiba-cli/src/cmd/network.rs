//! `estiba network create|ls|inspect|rm|prune|connect|disconnect`.

use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use crate::args::{filters_json, parse_filter};
use crate::client::{path_escape, query, Client};
use crate::format::{header, row, Format};
use crate::output::out;
use crate::StatusError;

#[derive(Subcommand, Debug)]
pub(crate) enum NetworkCommand {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long = "driver", default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long = "subnet")]
    subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long = "gateway")]
    gateway: Vec<String>,
    /// Restrict external access to the network
    #[arg(long = "internal")]
    internal: bool,
    /// Enable manual container attachment
    #[arg(long = "attachable")]
    attachable: bool,
    /// Enable or disable IPv6 networking
    #[arg(long = "ipv6")]
    ipv6: bool,
    /// Set metadata on a network
    #[arg(long = "label")]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    name: String,
}

#[derive(Args, Debug)]
pub(crate) struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    /// Only display network IDs
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Format output using a custom template
    #[arg(long = "format")]
    format: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    format: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long = "force")]
    force: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    force: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long = "alias")]
    alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long = "ip")]
    ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long = "ip6")]
    ip6: Option<String>,
    network: String,
    container: String,
}

#[derive(Args, Debug)]
pub(crate) struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long = "force")]
    force: bool,
    network: String,
    container: String,
}

fn pairs(list: &[String]) -> serde_json::Map<String, Value> {
    list.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_owned(), json!(v))
        })
        .collect()
}

/// Runs one `network` subcommand.
pub(crate) async fn network(client: &mut Client, cmd: NetworkCommand) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Create(a) => create(client, a).await,
        NetworkCommand::Ls(a) => ls(client, a).await,
        NetworkCommand::Inspect(a) => inspect(client, a).await,
        NetworkCommand::Rm(a) => rm(client, a).await,
        NetworkCommand::Prune(a) => prune(client, a).await,
        NetworkCommand::Connect(a) => {
            let mut ep = json!({ "Aliases": a.alias });
            if a.ip.is_some() || a.ip6.is_some() {
                ep["IPAMConfig"] = ipam_config(a.ip.as_deref(), a.ip6.as_deref());
            }
            let body = json!({ "Container": a.container, "EndpointConfig": ep });
            let path = format!("/networks/{}/connect", path_escape(&a.network));
            client.post_json(&path, &body).await.map(|_| ())
        }
        NetworkCommand::Disconnect(a) => {
            let body = json!({ "Container": a.container, "Force": a.force });
            let path = format!("/networks/{}/disconnect", path_escape(&a.network));
            client.post_json(&path, &body).await.map(|_| ())
        }
    }
}

/// Whether `subnet` (`addr/prefix`, either family) contains the address `ip`.
fn subnet_contains(subnet: &str, ip: &str) -> bool {
    let Some((base, prefix)) = subnet.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u32>() else {
        return false;
    };
    match (
        base.parse::<std::net::IpAddr>(),
        ip.parse::<std::net::IpAddr>(),
    ) {
        (Ok(std::net::IpAddr::V4(b)), Ok(std::net::IpAddr::V4(i))) if prefix <= 32 => {
            let m = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(b) & m == u32::from(i) & m
        }
        (Ok(std::net::IpAddr::V6(b)), Ok(std::net::IpAddr::V6(i))) if prefix <= 128 => {
            let m = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(b) & m == u128::from(i) & m
        }
        _ => false,
    }
}

async fn create(client: &mut Client, a: CreateArgs) -> anyhow::Result<()> {
    // As docker's CLI: each --gateway goes with the --subnet that contains it.
    let config: Vec<Value> = a
        .subnet
        .iter()
        .map(|s| {
            let gw = a
                .gateway
                .iter()
                .find(|g| subnet_contains(s, g))
                .cloned()
                .unwrap_or_default();
            json!({ "Subnet": s, "Gateway": gw })
        })
        .collect();
    if let Some(g) = a
        .gateway
        .iter()
        .find(|g| !a.subnet.iter().any(|s| subnet_contains(s, g)))
    {
        anyhow::bail!("no matching subnet for gateway {g}");
    }
    let body = json!({
        "Name": a.name, "Driver": a.driver, "Internal": a.internal, "Attachable": a.attachable,
        "EnableIPv6": a.ipv6, "Labels": pairs(&a.label), "Options": pairs(&a.opt),
        "IPAM": { "Driver": "default", "Config": config },
    });
    let resp = client.post_json("/networks/create", &body).await?;
    out(&format!("{}\n", resp["Id"].as_str().unwrap_or("")))
}

async fn ls(client: &mut Client, a: LsArgs) -> anyhow::Result<()> {
    let q = query(&[("filters", filters_json(&a.filter))]);
    let list = client.get_json(&format!("/networks{q}")).await?;
    let mut rows: Vec<&Value> = list
        .as_array()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    rows.sort_by_key(|n| n["Name"].as_str().unwrap_or("").to_owned());
    let id = |n: &Value| {
        let id = n["Id"].as_str().unwrap_or("").to_owned();
        if a.no_trunc {
            id
        } else {
            id.chars().take(12).collect()
        }
    };
    if a.quiet {
        let text: String = rows.iter().map(|n| format!("{}\n", id(n))).collect();
        return out(&text);
    }
    let format = a
        .format
        .clone()
        .unwrap_or_else(|| "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".to_owned());
    let f = Format::new(&format)?;
    let values: Vec<Value> = rows
        .iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap_or("").to_owned();
            row(&[
                ("ID", id(n)),
                ("Name", s("Name")),
                ("Driver", s("Driver")),
                ("Scope", s("Scope")),
                (
                    "IPv6",
                    n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
                ),
                (
                    "Internal",
                    n["Internal"].as_bool().unwrap_or(false).to_string(),
                ),
                ("CreatedAt", s("Created")),
            ])
        })
        .collect();
    let head = header(&[
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("CreatedAt", "CREATED"),
    ]);
    out(&f.render(&head, &values)?)
}

async fn inspect(client: &mut Client, a: InspectArgs) -> anyhow::Result<()> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match client
            .get_bytes(&format!("/networks/{}", path_escape(name)))
            .await
        {
            Ok(b) => found.push(b),
            Err(e) => errors.push(format!("Error response from daemon: {e}")),
        }
    }
    out(&crate::cmd::inspect::render(a.format.as_deref(), &found)?)?;
    StatusError::from_errors(errors)
}

async fn rm(client: &mut Client, a: RmArgs) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for name in &a.names {
        match client
            .call_json(Method::DELETE, &format!("/networks/{}", path_escape(name)))
            .await
        {
            Ok(_) => out(&format!("{name}\n"))?,
            Err(e) if a.force && e.to_string().contains("not found") => {}
            Err(e) => errors.push(format!("Error response from daemon: {e}")),
        }
    }
    StatusError::from_errors(errors)
}

async fn prune(client: &mut Client, a: PruneArgs) -> anyhow::Result<()> {
    if !a.force {
        out("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ")?;
        let mut answer = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::io::stdin(), 1024),
            &mut answer,
        )?;
        if !matches!(answer.trim(), "y" | "Y") {
            return Ok(());
        }
    }
    let q = query(&[("filters", filters_json(&a.filter))]);
    let report = client
        .call_json(Method::POST, &format!("/networks/prune{q}"))
        .await?;
    let names: Vec<&str> = report["NetworksDeleted"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if names.is_empty() {
        return Ok(());
    }
    out(&format!("Deleted Networks:\n{}\n", names.join("\n")))
}

/// `NetworkingConfig.EndpointsConfig` of run/create: `--network-alias` and `--ip` apply to the
/// `--network` network, as docker's.
pub(crate) fn endpoints_config(
    network: &str,
    mut endpoints: Value,
    aliases: &[String],
    ip: Option<&str>,
    ip6: Option<&str>,
) -> Value {
    if aliases.is_empty() && ip.is_none() && ip6.is_none() {
        return endpoints;
    }
    let mut ep = json!({});
    if !aliases.is_empty() {
        ep["Aliases"] = json!(aliases);
    }
    if ip.is_some() || ip6.is_some() {
        ep["IPAMConfig"] = ipam_config(ip, ip6);
    }
    endpoints[network] = ep;
    endpoints
}

/// An endpoint's `IPAMConfig` with the addresses given.
fn ipam_config(ip: Option<&str>, ip6: Option<&str>) -> Value {
    let mut c = json!({});
    if let Some(ip) = ip {
        c["IPv4Address"] = json!(ip);
    }
    if let Some(ip6) = ip6 {
        c["IPv6Address"] = json!(ip6);
    }
    c
}
