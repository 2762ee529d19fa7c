//! `/networks`: the network endpoints, and the `NetworkSettings` of container inspect.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use estiba_net::{CreateRequest, EndpointRequest, NetError, NetworkRecord, NetworkService};
use serde::Deserialize;
use serde_json::{json, Value};

use super::filters::Filters;
use super::{read_json, ApiError, Params, SharedState};

/// This module's routes, merged into [`super::router`].
pub(super) fn routes() -> Router<SharedState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
        .route("/networks/{id}/", delete(remove))
}

impl From<NetError> for ApiError {
    fn from(e: NetError) -> Self {
        let status = match &e {
            NetError::NotFound(_) => StatusCode::NOT_FOUND,
            NetError::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            NetError::Conflict(_) => StatusCode::CONFLICT,
            NetError::Forbidden(_) => StatusCode::FORBIDDEN,
            NetError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!("network service: {e}");
        }
        ApiError::new(status, e.to_string())
    }
}

async fn net<T, F>(state: &SharedState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Arc<NetworkService>) -> Result<T, ApiError> + Send + 'static,
{
    let svc = Arc::clone(&state.networks);
    tokio::task::spawn_blocking(move || f(&svc))
        .await
        .map_err(|e| ApiError::internal(format!("network service task failed: {e}")))?
}

/// Docker's JSON of a network; `containers` for inspect.
fn network_json(svc: &NetworkService, n: &NetworkRecord, containers: bool) -> Value {
    // Docker shows the gateway of a user's subnet only when the user gave it too.
    let mut config = Vec::new();
    if !n.subnet.is_empty() {
        config.push(if n.user_subnet && !n.gateway_given {
            json!({ "Subnet": n.subnet })
        } else {
            json!({ "Subnet": n.subnet, "Gateway": n.gateway })
        });
    }
    if !n.subnet6.is_empty() {
        config.push(if n.gateway6_given {
            json!({ "Subnet": n.subnet6, "Gateway": n.gateway6 })
        } else {
            json!({ "Subnet": n.subnet6 })
        });
    }
    let mut eps = serde_json::Map::new();
    if containers {
        for e in svc.endpoints(Some(&n.id)).unwrap_or_default() {
            eps.insert(
                e.container_id.clone(),
                json!({
                    "Name": e.container_name,
                    "EndpointID": e.id,
                    "MacAddress": e.mac,
                    "IPv4Address": e.ip.map(|ip| format!("{ip}/{}", e.prefix)).unwrap_or_default(),
                    "IPv6Address": e.ip6.map(|ip| format!("{ip}/{}", e.prefix6)).unwrap_or_default(),
                }),
            );
        }
    }
    json!({
        "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local", "Driver": n.driver,
        "EnableIPv4": true, "EnableIPv6": n.enable_ipv6,
        "IPAM": { "Driver": "default", "Options": if n.predefined { Value::Null } else { json!({}) }, "Config": Value::Array(config) },
        "Internal": n.internal, "Attachable": n.attachable, "Ingress": false,
        "ConfigFrom": { "Network": "" }, "ConfigOnly": false,
        "Containers": eps, "Options": n.options, "Labels": n.labels,
    })
}

fn matches(f: &Filters, n: &NetworkRecord, has_endpoints: bool) -> Result<bool, ApiError> {
    let kind = if n.predefined { "builtin" } else { "custom" };
    Ok(
        (!f.contains("name") || f.get("name").iter().any(|v| n.name.contains(v.as_str())))
            && (!f.contains("id") || f.get("id").iter().any(|v| n.id.starts_with(v.as_str())))
            && (!f.contains("driver") || f.get("driver").contains(&n.driver))
            && (!f.contains("type") || f.get("type").iter().any(|v| v == kind))
            && f.match_kv("label", &n.labels)
            && match f.bool_value("dangling")? {
                Some(d) => d == (!has_endpoints && !n.predefined),
                None => true,
            },
    )
}

async fn list(State(state): State<SharedState>, params: Params) -> Result<Json<Value>, ApiError> {
    let filters = Filters::parse(params.get("filters").unwrap_or(""))?;
    filters.only(&["name", "id", "driver", "type", "label", "dangling", "scope"])?;
    net(&state, move |s| {
        let mut out = Vec::new();
        for n in s.list()? {
            let used = !s.endpoints(Some(&n.id))?.is_empty();
            if matches(&filters, &n, used)? {
                out.push(network_json(s, &n, false));
            }
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

async fn inspect(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    net(&state, move |s| {
        let n = s.get(&id)?;
        Ok(Json(network_json(s, &n, true)))
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: String,
    gateway: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    config: Option<Vec<IpamConfig>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    internal: bool,
    attachable: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    options: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

async fn create(State(state): State<SharedState>, body: Body) -> Result<Response, ApiError> {
    let b: CreateBody = read_json(body).await?;
    if b.name.is_empty() {
        return Err(ApiError::bad_request("invalid name: name cannot be empty"));
    }
    let req = CreateRequest {
        name: b.name,
        driver: b.driver,
        internal: b.internal,
        attachable: b.attachable,
        enable_ipv6: b.enable_ipv6.unwrap_or(false),
        labels: b.labels.unwrap_or_default(),
        options: b.options.unwrap_or_default(),
        ipam: b
            .ipam
            .and_then(|i| i.config)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.subnet, c.gateway))
            .collect(),
    };
    let rec = net(&state, move |s| Ok(s.create(req)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "Id": rec.id, "Warning": "" })),
    )
        .into_response())
}

async fn remove(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    net(&state, move |s| Ok(s.remove(&id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn prune(State(state): State<SharedState>, params: Params) -> Result<Json<Value>, ApiError> {
    let filters = Filters::parse(params.get("filters").unwrap_or(""))?;
    filters.only(&["label", "label!", "until"])?;
    let until = match filters.get("until").first() {
        Some(u) => Some(super::events::parse_time(u).map_err(ApiError::bad_request)?),
        None => None,
    };
    // Networks created after `until` stay (moby's prune).
    let old_enough = move |n: &NetworkRecord| {
        until.is_none_or(|u| {
            chrono::DateTime::parse_from_rfc3339(&n.created)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
                .is_some_and(|created| created <= u)
        })
    };
    let removed = net(&state, move |s| {
        Ok(s.prune(|n| f_label(&filters, n) && old_enough(n))?)
    })
    .await?;
    Ok(Json(json!({ "NetworksDeleted": removed })))
}

fn f_label(f: &Filters, n: &NetworkRecord) -> bool {
    f.match_kv("label", &n.labels)
        && !(f.contains("label!")
            && f.get("label!").iter().any(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                n.labels.get(k).is_some_and(|x| v.is_empty() || x == v)
            }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointIpam {
    #[serde(rename = "IPv4Address")]
    ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    ipv6_address: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointConfig {
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpam>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointConfig>,
}

async fn connect(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let b: ConnectBody = read_json(body).await?;
    let containers = Arc::clone(&state.containers);
    let record = tokio::task::spawn_blocking(move || containers.inspect(&b.container))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let ep = b.endpoint_config.unwrap_or_default();
    let ipam = ep.ipam_config.unwrap_or_default();
    let ep = EndpointRequest {
        aliases: ep.aliases.unwrap_or_default(),
        ipv4: ipam.ipv4_address,
        ipv6: ipam.ipv6_address,
    };
    net(&state, move |s| {
        let mut req = estiba_net::SandboxRequest {
            container_id: record.id.clone(),
            container_name: record.name.clone(),
            ..Default::default()
        };
        req.network = id.clone();
        Ok(s.connect(&id, &req, &ep)?)
    })
    .await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DisconnectBody {
    container: String,
}

async fn disconnect(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let b: DisconnectBody = read_json(body).await?;
    let containers = Arc::clone(&state.containers);
    let cid = tokio::task::spawn_blocking(move || containers.resolve_id(&b.container))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    net(&state, move |s| Ok(s.disconnect(&id, &cid)?)).await?;
    Ok(StatusCode::OK)
}

/// `NetworkSettings` of container inspect, shaped as Docker's.
pub(crate) fn container_settings(
    svc: &NetworkService,
    r: &estiba_container::ContainerRecord,
) -> Value {
    let (sb, eps) = svc.container(&r.id);
    let mut networks = serde_json::Map::new();
    let mode = match r.host.network_mode.as_str() {
        "default" | "" => "bridge",
        m => m,
    };
    let mut top = json!({
        "Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": false,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": {},
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null, "EndpointID": "",
        "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
    });
    let entry = |name: &str,
                 net: Option<&NetworkRecord>,
                 ep: Option<&estiba_net::EndpointRecord>| {
        let cfg = r.host.endpoints.get(name);
        let aliases: Vec<String> = cfg.map(|c| c.aliases.clone()).unwrap_or_default();
        let user = net.is_some_and(|n| !n.predefined);
        let mut dns: Vec<String> = Vec::new();
        if user {
            dns.push(r.name.clone());
            dns.extend(aliases.iter().cloned());
            dns.push(r.id.chars().take(12).collect());
        }
        json!({
            "IPAMConfig": cfg.filter(|c| !c.ipv4_address.is_empty() || !c.ipv6_address.is_empty()).map(|c| {
                let mut m = serde_json::Map::new();
                for (k, v) in [("IPv4Address", &c.ipv4_address), ("IPv6Address", &c.ipv6_address)] {
                    if !v.is_empty() {
                        m.insert(k.to_string(), json!(v));
                    }
                }
                Value::Object(m)
            }),
            "Links": null,
            "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
            "MacAddress": ep.map(|e| e.mac.clone()).unwrap_or_default(),
            "DriverOpts": null, "GwPriority": 0,
            "NetworkID": net.map(|n| n.id.clone()).unwrap_or_default(),
            "EndpointID": ep.map(|e| e.id.clone()).unwrap_or_default(),
            "Gateway": if ep.is_some() { net.map(|n| n.gateway.clone()).unwrap_or_default() } else { String::new() },
            "IPAddress": ep.and_then(|e| e.ip).map(|ip| ip.to_string()).unwrap_or_default(),
            "IPPrefixLen": ep.map(|e| e.prefix).unwrap_or(0),
            "IPv6Gateway": if ep.is_some_and(|e| e.ip6.is_some()) { net.map(|n| n.gateway6.clone()).unwrap_or_default() } else { String::new() },
            "GlobalIPv6Address": ep.and_then(|e| e.ip6).map(|ip| ip.to_string()).unwrap_or_default(),
            "GlobalIPv6PrefixLen": ep.and_then(|e| e.ip6.map(|_| e.prefix6)).unwrap_or(0),
            "DNSNames": if dns.is_empty() { Value::Null } else { json!(dns) },
        })
    };
    for ep in &eps {
        if let Ok(n) = svc.get(&ep.network_id) {
            if n.name == "bridge" {
                for k in [
                    "EndpointID",
                    "Gateway",
                    "IPAddress",
                    "MacAddress",
                    "IPv6Gateway",
                    "GlobalIPv6Address",
                    "GlobalIPv6PrefixLen",
                ] {
                    top[k] = entry("bridge", Some(&n), Some(ep))[k].clone();
                }
                top["IPPrefixLen"] = json!(ep.prefix);
            }
            networks.insert(n.name.clone(), entry(&n.name, Some(&n), Some(ep)));
        }
    }
    if eps.is_empty() && !mode.starts_with("container:") {
        let n = svc.get(mode).ok();
        let name = n.as_ref().map_or(mode.to_string(), |n| n.name.clone());
        networks.insert(name.clone(), entry(&name, n.as_ref(), None));
        for extra in r.host.endpoints.keys().filter(|k| **k != name) {
            let n = svc.get(extra).ok();
            networks.insert(extra.clone(), entry(extra, n.as_ref(), None));
        }
    }
    if let Some(sb) = sb {
        top["SandboxID"] = json!(r.id);
        top["SandboxKey"] = json!(sb.netns);
        let mut ports = serde_json::Map::new();
        for e in &sb.exposed {
            ports.insert(e.clone(), Value::Null);
        }
        for p in &sb.ports {
            let key = format!("{}/{}", p.container_port, p.proto);
            let ip = if p.host_ip.is_empty() {
                "0.0.0.0".to_string()
            } else {
                p.host_ip.clone()
            };
            let b = json!({ "HostIp": ip, "HostPort": p.host_port.to_string() });
            match ports.get_mut(&key) {
                Some(Value::Array(a)) => a.push(b),
                _ => {
                    ports.insert(key, json!([b]));
                }
            }
        }
        top["Ports"] = Value::Object(ports);
    }
    top["Networks"] = Value::Object(networks);
    top
}

/// `NetworkSettings` of a container list row: the networks, with their endpoints.
pub(crate) fn summary_networks(
    svc: &NetworkService,
    r: &estiba_container::ContainerRecord,
) -> Value {
    let full = container_settings(svc, r);
    json!({ "Networks": full["Networks"].clone() })
}

/// `Ports` of a container list row.
pub(crate) fn summary_ports(svc: &NetworkService, id: &str) -> Vec<Value> {
    let (sb, _) = svc.container(id);
    sb.map(|sb| {
        sb.ports
            .iter()
            .map(|p| {
                json!({
                    "IP": if p.host_ip.is_empty() { "0.0.0.0" } else { p.host_ip.as_str() },
                    "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto,
                })
            })
            .collect()
    })
    .unwrap_or_default()
}

/// `HostConfig.PortBindings` and `NetworkingConfig.EndpointsConfig` of a create body.
pub(crate) fn create_settings(
    h: &estiba_api::container::HostConfig,
    networking: Option<&Value>,
) -> (
    BTreeMap<String, Vec<estiba_container::model::PortBindingSetting>>,
    BTreeMap<String, estiba_container::model::EndpointSetting>,
) {
    let mut ports = BTreeMap::new();
    for (k, v) in &h.port_bindings {
        let list = v
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|b| estiba_container::model::PortBindingSetting {
                        host_ip: b["HostIp"].as_str().unwrap_or("").to_string(),
                        host_port: b["HostPort"].as_str().unwrap_or("").to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let key = if k.contains('/') {
            k.clone()
        } else {
            format!("{k}/tcp")
        };
        ports.insert(key, list);
    }
    let mut endpoints = BTreeMap::new();
    if let Some(Value::Object(eps)) = networking.map(|n| &n["EndpointsConfig"]) {
        for (name, ep) in eps {
            let aliases = ep["Aliases"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let ip = ep["IPAMConfig"]["IPv4Address"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let ip6 = ep["IPAMConfig"]["IPv6Address"]
                .as_str()
                .unwrap_or("")
                .to_string();
            // The CLI names the default network "default".
            let name = if name == "default" {
                "bridge"
            } else {
                name.as_str()
            };
            endpoints.insert(
                name.to_string(),
                estiba_container::model::EndpointSetting {
                    aliases,
                    ipv4_address: ip,
                    ipv6_address: ip6,
                },
            );
        }
    }
    (ports, endpoints)
}

/// `HostConfig.PortBindings` of inspect.
pub(crate) fn api_port_bindings(h: &estiba_container::HostOptions) -> BTreeMap<String, Value> {
    h.port_bindings
        .iter()
        .map(|(k, v)| {
            let list: Vec<Value> = v
                .iter()
                .map(|b| json!({ "HostIp": b.host_ip, "HostPort": b.host_port }))
                .collect();
            (k.clone(), Value::Array(list))
        })
        .collect()
}
