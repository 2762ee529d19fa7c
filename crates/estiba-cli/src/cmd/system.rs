//! `version`, `info` and `system df`.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::args::{check_args, Arity, DfArgs, InfoArgs, VersionArgs};
use crate::client::{Client, MAX_API_VERSION};
use crate::cmd::image::{image_header, image_rows};
use crate::format::{header, row, Format};
use crate::output::out;
use crate::tabwriter::GoTabWriter;
use crate::units::{
    ellipsis, human_duration, human_size, human_size_precision, now_unix_nanos, since, truncate_id,
};

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A JSON scalar as Go's fmt prints it (strings bare, null as empty).
fn scalar(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The client half of `version`, with docker's field names (for `--format`).
fn client_version(api_version: &str) -> Value {
    json!({
        "Platform": {"Name": ""},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api_version,
        "DefaultAPIVersion": MAX_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": "default",
    })
}

/// docker prints the server's RFC 3339 build time as Go's ANSIC in local time.
fn ansic(build_time: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(build_time) {
        Ok(t) => t
            .with_timezone(&chrono::Local)
            .format("%a %b %e %H:%M:%S %Y")
            .to_string(),
        Err(_) => build_time.to_owned(),
    }
}

/// docker's default `version` layout (tabwriter 20/1).
pub(crate) fn render_version(client: &Value, server: Option<&Value>) -> String {
    let mut t = String::new();
    let api = s(client, "ApiVersion");
    let default_api = s(client, "DefaultAPIVersion");
    let _ = writeln!(t, "Client:");
    let _ = writeln!(t, " Version:\t{}", s(client, "Version"));
    if api != default_api {
        let _ = writeln!(t, " API version:\t{api} (downgraded from {default_api})");
    } else {
        let _ = writeln!(t, " API version:\t{api}");
    }
    let os = s(client, "Os");
    let arch = s(client, "Arch");
    let _ = writeln!(t, " OS/Arch:\t{os}/{arch}");
    let _ = write!(t, " Context:\t{}", s(client, "Context"));
    if let Some(server) = server {
        let platform = server.get("Platform").map(|p| s(p, "Name")).unwrap_or("");
        let _ = write!(t, "\n\nServer:");
        if !platform.is_empty() {
            let _ = write!(t, " {platform}");
        }
        let synthesized;
        let components = match server.get("Components").and_then(Value::as_array) {
            Some(c) => c.as_slice(),
            None => {
                synthesized = [
                    json!({"Name": "Engine", "Version": s(server, "Version"), "Details": {
                        "ApiVersion": s(server, "ApiVersion"), "MinAPIVersion": s(server, "MinAPIVersion"),
                        "GoVersion": s(server, "GoVersion"), "GitCommit": s(server, "GitCommit"),
                        "BuildTime": s(server, "BuildTime"), "Os": s(server, "Os"), "Arch": s(server, "Arch"),
                        "Experimental": scalar(server.get("Experimental")),
                    }}),
                ];
                &synthesized[..]
            }
        };
        for c in components {
            let details = c.get("Details").cloned().unwrap_or(Value::Null);
            let d = |k: &str| scalar(details.get(k));
            let _ = write!(t, "\n {}:", s(c, "Name"));
            if s(c, "Name") == "Engine" {
                let _ = write!(t, "\n  Version:\t{}", s(c, "Version"));
                let _ = write!(
                    t,
                    "\n  API version:\t{} (minimum version {})",
                    d("ApiVersion"),
                    d("MinAPIVersion")
                );
                let _ = write!(t, "\n  Go version:\t{}", d("GoVersion"));
                let _ = write!(t, "\n  Git commit:\t{}", d("GitCommit"));
                let _ = write!(t, "\n  Built:\t{}", ansic(&d("BuildTime")));
                let _ = write!(t, "\n  OS/Arch:\t{}/{}", d("Os"), d("Arch"));
                let _ = write!(t, "\n  Experimental:\t{}", d("Experimental"));
            } else {
                let _ = write!(t, "\n  Version:\t{}", s(c, "Version"));
                if let Some(map) = details.as_object() {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    for k in keys {
                        let _ = write!(t, "\n  {k}:\t{}", scalar(map.get(k)));
                    }
                }
            }
        }
    }
    t.push('\n');
    let mut tw = GoTabWriter::new(20, 1);
    tw.push_str(&t);
    tw.finish()
}

/// `estiba version`.
pub(crate) async fn version(client: &mut Client, a: VersionArgs) -> anyhow::Result<()> {
    check_args("version", &a.args, Arity::None)?;
    let (api, negotiated) = match client.api_version().await {
        Ok(v) => (v, Ok(())),
        Err(e) => (MAX_API_VERSION.to_owned(), Err(e)),
    };
    let client_part = client_version(&api);
    let server = match negotiated {
        Ok(()) => client.get_json("/version").await,
        Err(e) => Err(e),
    };
    if let Some(format) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let data = json!({"Client": client_part, "Server": server.as_ref().ok()});
        let compiled = Format::new(format).map_err(|e| crate::StatusError {
            code: 64,
            message: e.to_string(),
        })?;
        out(&compiled.render(&Value::Null, &[data])?)?;
        return server.map(|_| ());
    }
    match server {
        Ok(server) => out(&render_version(&client_part, Some(&server))),
        Err(e) => {
            out(&render_version(&client_part, None))?;
            Err(e)
        }
    }
}

fn list_of(v: Option<&Value>) -> Vec<String> {
    match v.and_then(Value::as_array) {
        Some(a) => a.iter().map(|x| scalar(Some(x))).collect(),
        None => Vec::new(),
    }
}

/// docker's `prettyPrintServerInfo`, for the fields estibad and dockerd report.
pub(crate) fn render_server_info(info: &Value) -> (String, Vec<String>) {
    let mut t = String::new();
    let f = |k: &str| scalar(info.get(k));
    let line = |t: &mut String, label: &str, value: String| {
        let _ = writeln!(t, "{label} {value}");
    };
    let non_empty = |t: &mut String, label: &str, value: String| {
        if !value.is_empty() {
            let _ = writeln!(t, "{label} {value}");
        }
    };
    line(&mut t, " Containers:", f("Containers"));
    line(&mut t, "  Running:", f("ContainersRunning"));
    line(&mut t, "  Paused:", f("ContainersPaused"));
    line(&mut t, "  Stopped:", f("ContainersStopped"));
    line(&mut t, " Images:", f("Images"));
    non_empty(&mut t, " Server Version:", f("ServerVersion"));
    non_empty(&mut t, " Storage Driver:", f("Driver"));
    for key in ["DriverStatus", "SystemStatus"] {
        let indent = if key == "DriverStatus" { "  " } else { " " };
        for pair in info
            .get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let p = list_of(Some(pair));
            if p.len() >= 2 {
                let _ = writeln!(t, "{indent}{}: {}", p[0], p[1]);
            }
        }
    }
    non_empty(&mut t, " Logging Driver:", f("LoggingDriver"));
    non_empty(&mut t, " Cgroup Driver:", f("CgroupDriver"));
    non_empty(&mut t, " Cgroup Version:", f("CgroupVersion"));
    let plugins = info.get("Plugins").cloned().unwrap_or(Value::Null);
    let _ = writeln!(t, " Plugins:");
    line(
        &mut t,
        "  Volume:",
        list_of(plugins.get("Volume")).join(" "),
    );
    line(
        &mut t,
        "  Network:",
        list_of(plugins.get("Network")).join(" "),
    );
    let authz = list_of(plugins.get("Authorization"));
    if !authz.is_empty() {
        line(&mut t, "  Authorization:", authz.join(" "));
    }
    line(&mut t, "  Log:", list_of(plugins.get("Log")).join(" "));
    let cdi = list_of(info.get("CDISpecDirs"));
    if !cdi.is_empty() {
        let _ = writeln!(t, " CDI spec directories:");
        for dir in cdi {
            let _ = writeln!(t, "  {dir}");
        }
    }
    let swarm = info
        .get("Swarm")
        .map(|sw| s(sw, "LocalNodeState"))
        .unwrap_or("");
    line(&mut t, " Swarm:", swarm.to_owned());
    if let Some(runtimes) = info.get("Runtimes").and_then(Value::as_object) {
        if !runtimes.is_empty() {
            let names: Vec<&str> = runtimes.keys().map(String::as_str).collect();
            line(&mut t, " Runtimes:", names.join(" "));
            line(&mut t, " Default Runtime:", f("DefaultRuntime"));
        }
    }
    if s(info, "OSType") == "linux" {
        line(&mut t, " Init Binary:", f("InitBinary"));
        for (label, key) in [
            (" containerd version:", "ContainerdCommit"),
            (" runc version:", "RuncCommit"),
            (" init version:", "InitCommit"),
        ] {
            line(
                &mut t,
                label,
                info.get(key)
                    .map(|c| s(c, "ID").to_owned())
                    .unwrap_or_default(),
            );
        }
        let opts = list_of(info.get("SecurityOptions"));
        if !opts.is_empty() {
            let _ = writeln!(t, " Security Options:");
            for opt in opts {
                let mut name = String::new();
                let mut profile = None;
                for kv in opt.split(',') {
                    match kv.split_once('=') {
                        Some(("name", v)) => name = v.to_owned(),
                        Some(("profile", v)) => profile = Some(v.to_owned()),
                        _ => {}
                    }
                }
                let _ = writeln!(t, "  {name}");
                if let Some(p) = profile {
                    let _ = writeln!(t, "   Profile: {p}");
                }
            }
        }
    }
    non_empty(&mut t, " Kernel Version:", f("KernelVersion"));
    non_empty(&mut t, " Operating System:", f("OperatingSystem"));
    non_empty(&mut t, " OSType:", f("OSType"));
    non_empty(&mut t, " Architecture:", f("Architecture"));
    line(&mut t, " CPUs:", f("NCPU"));
    let mem = info.get("MemTotal").and_then(Value::as_f64).unwrap_or(0.0);
    line(&mut t, " Total Memory:", crate::units::bytes_size(mem));
    non_empty(&mut t, " Name:", f("Name"));
    non_empty(&mut t, " ID:", f("ID"));
    line(&mut t, " Docker Root Dir:", f("DockerRootDir"));
    let debug = info.get("Debug").and_then(Value::as_bool).unwrap_or(false);
    line(&mut t, " Debug Mode:", debug.to_string());
    if debug {
        line(&mut t, "  File Descriptors:", f("NFd"));
        line(&mut t, "  Goroutines:", f("NGoroutines"));
        line(&mut t, "  System Time:", f("SystemTime"));
        line(&mut t, "  EventsListeners:", f("NEventsListener"));
    }
    non_empty(&mut t, " HTTP Proxy:", f("HttpProxy"));
    non_empty(&mut t, " HTTPS Proxy:", f("HttpsProxy"));
    non_empty(&mut t, " No Proxy:", f("NoProxy"));
    let labels = list_of(info.get("Labels"));
    if !labels.is_empty() {
        let _ = writeln!(t, " Labels:");
        for l in labels {
            let _ = writeln!(t, "  {l}");
        }
    }
    line(
        &mut t,
        " Experimental:",
        info.get("ExperimentalBuild")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
    );
    if let Some(reg) = info.get("RegistryConfig").filter(|r| r.is_object()) {
        let cidrs = list_of(reg.get("InsecureRegistryCIDRs"));
        let indexes = reg.get("IndexConfigs").and_then(Value::as_object);
        if !cidrs.is_empty() || indexes.is_some_and(|m| !m.is_empty()) {
            let _ = writeln!(t, " Insecure Registries:");
            for cfg in indexes.into_iter().flat_map(|m| m.values()) {
                if !cfg.get("Secure").and_then(Value::as_bool).unwrap_or(false) {
                    let _ = writeln!(t, "  {}", s(cfg, "Name"));
                }
            }
            for c in cidrs {
                let _ = writeln!(t, "  {c}");
            }
        }
        let mirrors = list_of(reg.get("Mirrors"));
        if !mirrors.is_empty() {
            let _ = writeln!(t, " Registry Mirrors:");
            for m in mirrors {
                let _ = writeln!(t, "  {m}");
            }
        }
    }
    line(
        &mut t,
        " Live Restore Enabled:",
        info.get("LiveRestoreEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
    );
    non_empty(&mut t, " Product License:", f("ProductLicense"));
    t.push('\n');
    (t, list_of(info.get("Warnings")))
}

/// `estiba info`.
pub(crate) async fn info(client: &mut Client, a: InfoArgs) -> anyhow::Result<()> {
    check_args("info", &a.args, Arity::None)?;
    let client_info = json!({"Debug": false, "Version": env!("CARGO_PKG_VERSION"), "Context": "default", "Plugins": [], "Warnings": null});
    if let Some(format) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let mut data = client.get_json("/info").await?;
        if let Some(map) = data.as_object_mut() {
            map.insert("ClientInfo".to_owned(), client_info);
        }
        let compiled = Format::new(format)?;
        return out(&compiled.render(&Value::Null, &[data])?);
    }
    let mut text = String::from("Client:\n");
    let _ = writeln!(text, " Version:    {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(text, " Context:    default");
    let _ = writeln!(text, " Debug Mode: false");
    text.push_str("\nServer:\n");
    let data = match client.get_json("/info").await {
        Ok(d) => d,
        Err(e) => {
            out(&text)?;
            return Err(e);
        }
    };
    let (server, warnings) = render_server_info(&data);
    text.push_str(&server);
    out(&text)?;
    for w in warnings {
        eprintln!("{w}");
    }
    Ok(())
}

fn reclaim(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size(reclaimable as f64),
            reclaimable * 100 / total
        )
    } else {
        human_size(reclaimable as f64)
    }
}

fn i(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The four summary rows of `system df`, as docker's disk-usage contexts compute them.
pub(crate) fn df_rows(du: &Value) -> Vec<Value> {
    let images = arr(du, "Images");
    let total = i(du, "LayersSize");
    let mut used = 0;
    for img in images {
        let (size, shared) = (
            i(img, "Size"),
            img.get("SharedSize").and_then(Value::as_i64).unwrap_or(-1),
        );
        if i(img, "Containers") != 0 && size != -1 && shared != -1 {
            used += size - shared;
        }
    }
    let images_row = row(&[
        ("Type", "Images".into()),
        ("TotalCount", images.len().to_string()),
        (
            "Active",
            images
                .iter()
                .filter(|m| i(m, "Containers") > 0)
                .count()
                .to_string(),
        ),
        ("Size", human_size(total as f64)),
        ("Reclaimable", reclaim(total - used, total)),
    ]);

    let containers = arr(du, "Containers");
    let active = |c: &&Value| {
        let state = s(c, "State");
        state.contains("running") || state.contains("paused") || state.contains("restarting")
    };
    let c_size: i64 = containers.iter().map(|c| i(c, "SizeRw")).sum();
    let c_reclaimable: i64 = containers
        .iter()
        .filter(|c| !active(c))
        .map(|c| i(c, "SizeRw"))
        .sum();
    let containers_row = row(&[
        ("Type", "Containers".into()),
        ("TotalCount", containers.len().to_string()),
        (
            "Active",
            containers.iter().filter(active).count().to_string(),
        ),
        ("Size", human_size(c_size as f64)),
        ("Reclaimable", reclaim(c_reclaimable, c_size)),
    ]);

    let volumes = arr(du, "Volumes");
    let usage = |v: &Value, k: &str| {
        v.get("UsageData")
            .and_then(|u| u.get(k))
            .and_then(Value::as_i64)
            .unwrap_or(-1)
    };
    let v_size: i64 = volumes
        .iter()
        .map(|v| usage(v, "Size"))
        .filter(|s| *s != -1)
        .sum();
    let v_reclaimable: i64 = volumes
        .iter()
        .filter(|v| usage(v, "RefCount") == 0)
        .map(|v| usage(v, "Size"))
        .filter(|s| *s != -1)
        .sum();
    let volumes_row = row(&[
        ("Type", "Local Volumes".into()),
        ("TotalCount", volumes.len().to_string()),
        (
            "Active",
            volumes
                .iter()
                .filter(|v| usage(v, "RefCount") > 0)
                .count()
                .to_string(),
        ),
        ("Size", human_size(v_size as f64)),
        ("Reclaimable", reclaim(v_reclaimable, v_size)),
    ]);

    let cache = arr(du, "BuildCache");
    let flag = |b: &Value, k: &str| b.get(k).and_then(Value::as_bool).unwrap_or(false);
    let b_size: i64 = cache
        .iter()
        .filter(|b| !flag(b, "Shared"))
        .map(|b| i(b, "Size"))
        .sum();
    let b_reclaimable: i64 = cache
        .iter()
        .filter(|b| !flag(b, "InUse") && !flag(b, "Shared"))
        .map(|b| i(b, "Size"))
        .sum();
    let cache_row = row(&[
        ("Type", "Build Cache".into()),
        ("TotalCount", cache.len().to_string()),
        (
            "Active",
            cache
                .iter()
                .filter(|b| flag(b, "InUse"))
                .count()
                .to_string(),
        ),
        ("Size", human_size(b_size as f64)),
        ("Reclaimable", human_size(b_reclaimable as f64)),
    ]);
    vec![images_row, containers_row, volumes_row, cache_row]
}

fn df_header() -> Value {
    header(&[
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ])
}

/// The rows of docker's verbose `system df`, one list per kind of object.
struct DfVerboseRows {
    images: Vec<Value>,
    containers: Vec<Value>,
    volumes: Vec<Value>,
    build_cache: Vec<Value>,
}

fn df_verbose_rows(du: &Value) -> DfVerboseRows {
    let now = now_unix_nanos();
    let images = image_rows(arr(du, "Images"), true, false, false);
    let containers = arr(du, "Containers")
        .iter()
        .map(|c| {
            let volumes = arr(c, "Mounts")
                .iter()
                .filter(|m| s(m, "Type") == "volume")
                .count();
            let names: Vec<String> = list_of(c.get("Names"))
                .iter()
                .map(|n| n.trim_start_matches('/').to_owned())
                .collect();
            row(&[
                ("ID", truncate_id(s(c, "Id"))),
                ("Image", s(c, "Image").to_owned()),
                ("Command", format!("\"{}\"", ellipsis(s(c, "Command"), 20))),
                ("LocalVolumes", volumes.to_string()),
                ("Size", human_size(i(c, "SizeRw") as f64)),
                ("RunningFor", since(i(c, "Created"), now)),
                ("Status", s(c, "Status").to_owned()),
                ("Names", names.join(",")),
            ])
        })
        .collect();
    let volumes = arr(du, "Volumes")
        .iter()
        .map(|v| {
            let u = v.get("UsageData").cloned().unwrap_or(Value::Null);
            let size = u.get("Size").and_then(Value::as_i64).unwrap_or(-1);
            let links = u.get("RefCount").and_then(Value::as_i64).unwrap_or(-1);
            row(&[
                ("Name", s(v, "Name").to_owned()),
                (
                    "Links",
                    if links == -1 {
                        "N/A".into()
                    } else {
                        links.to_string()
                    },
                ),
                (
                    "Size",
                    if size == -1 {
                        "N/A".into()
                    } else {
                        human_size(size as f64)
                    },
                ),
            ])
        })
        .collect();
    let ago = |ts: &str| match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => {
            let diff = (now - i128::from(t.timestamp_nanos_opt().unwrap_or(0))).max(0);
            format!(
                "{} ago",
                human_duration(std::time::Duration::from_nanos(
                    u64::try_from(diff).unwrap_or(0)
                ))
            )
        }
        Err(_) => String::new(),
    };
    let build_cache = arr(du, "BuildCache")
        .iter()
        .map(|b| {
            row(&[
                ("ID", truncate_id(s(b, "ID"))),
                ("CacheType", s(b, "Type").to_owned()),
                ("Size", human_size_precision(i(b, "Size") as f64, 3)),
                ("CreatedSince", ago(s(b, "CreatedAt"))),
                ("LastUsedSince", ago(s(b, "LastUsedAt"))),
                ("UsageCount", i(b, "UsageCount").to_string()),
                (
                    "Shared",
                    b.get("Shared")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string(),
                ),
            ])
        })
        .collect();
    DfVerboseRows {
        images,
        containers,
        volumes,
        build_cache,
    }
}

/// docker's verbose `system df` with `--format`: the template runs once on a context holding
/// the row lists (`{{json .Images}}`, `{{range .Volumes}}...`).
fn render_df_verbose_format(du: &Value, format: &str) -> anyhow::Result<String> {
    let rows = df_verbose_rows(du);
    let context = serde_json::json!({
        "Images": rows.images,
        "Containers": rows.containers,
        "Volumes": rows.volumes,
        "BuildCache": rows.build_cache,
    });
    Format::new(format)?.render(&Value::Null, &[context])
}

/// docker's verbose `system df`: one table per kind of object.
pub(crate) fn render_df_verbose(du: &Value) -> anyhow::Result<String> {
    let rows = df_verbose_rows(du);
    let mut t = String::from("Images space usage:\n\n");
    let images = Format::new("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}")?;
    t.push_str(&images.render(&image_header(), &rows.images)?);

    t.push_str("\nContainers space usage:\n\n");
    let containers = Format::new("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}")?;
    let c_header = header(&[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Size", "SIZE"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("Names", "NAMES"),
    ]);
    t.push_str(&containers.render(&c_header, &rows.containers)?);

    t.push_str("\nLocal Volumes space usage:\n\n");
    let volumes = Format::new("table {{.Name}}\t{{.Links}}\t{{.Size}}")?;
    t.push_str(&volumes.render(
        &header(&[
            ("Name", "VOLUME NAME"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
        ]),
        &rows.volumes,
    )?);

    let total: i64 = arr(du, "BuildCache")
        .iter()
        .filter(|b| !b.get("Shared").and_then(Value::as_bool).unwrap_or(false))
        .map(|b| i(b, "Size"))
        .sum();
    let _ = write!(t, "\nBuild cache usage: {}\n\n", human_size(total as f64));
    let bc = Format::new("table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}")?;
    let b_header = header(&[
        ("ID", "CACHE ID"),
        ("CacheType", "CACHE TYPE"),
        ("Size", "SIZE"),
        ("CreatedSince", "CREATED"),
        ("LastUsedSince", "LAST USED"),
        ("UsageCount", "USAGE"),
        ("Shared", "SHARED"),
    ]);
    t.push_str(&bc.render(&b_header, &rows.build_cache)?);
    Ok(t)
}

/// `estiba system df`.
pub(crate) async fn df(client: &mut Client, a: DfArgs) -> anyhow::Result<()> {
    check_args("system df", &a.args, Arity::None)?;
    let du = client.get_json("/system/df").await?;
    if a.verbose {
        return match a.format.as_deref().filter(|f| !f.is_empty()) {
            None => out(&render_df_verbose(&du)?),
            Some(format) => out(&render_df_verbose_format(&du, format)?),
        };
    }
    let format = a
        .format
        .clone()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| {
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".to_owned()
        });
    let format = if format == "table" {
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".to_owned()
    } else {
        format
    };
    let compiled = Format::new(&format)?;
    out(&compiled.render(&df_header(), &df_rows(&du))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_layout_matches_docker() {
        let client = client_version("1.41");
        let server = json!({"Platform":{"Name":""},"Components":[
            {"Name":"Engine","Version":"20.10.24+dfsg1","Details":{"ApiVersion":"1.41","Arch":"amd64","BuildTime":"2026-05-07T21:09:36.000000000+00:00","Experimental":"false","GitCommit":"5d6db84","GoVersion":"go1.19.8","MinAPIVersion":"1.12","Os":"linux"}},
            {"Name":"containerd","Version":"1.6.20~ds1","Details":{"GitCommit":"1.6.20~ds1-1+deb12u3"}}]});
        let text = render_version(&client, Some(&server));
        let want_tail = "\n\nServer:\n Engine:\n  Version:          20.10.24+dfsg1\n  API version:      1.41 (minimum version 1.12)\n  Go version:       go1.19.8\n  Git commit:       5d6db84\n";
        assert!(text.contains(want_tail), "{text}");
        assert!(
            text.contains(&format!(
                " API version:       1.41 (downgraded from {MAX_API_VERSION})\n"
            )),
            "{text}"
        );
        assert!(text.ends_with(" containerd:\n  Version:          1.6.20~ds1\n  GitCommit:        1.6.20~ds1-1+deb12u3\n"), "{text}");
        assert!(text.starts_with("Client:\n Version:           "), "{text}");
    }

    #[test]
    fn df_rows_like_docker() {
        let du = json!({"LayersSize": 1982321, "Images": [{"Id":"sha256:ab","RepoTags":["busybox:latest"],"Created":0,"Size":1982321,"SharedSize":0,"Containers":0}],
                        "Containers": [], "Volumes": [], "BuildCache": []});
        let text = Format::new(
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        )
        .and_then(|f| f.render(&df_header(), &df_rows(&du)))
        .ok();
        let want = "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
                    Images          1         0         1.982MB   1.982MB (100%)\n\
                    Containers      0         0         0B        0B\n\
                    Local Volumes   0         0         0B        0B\n\
                    Build Cache     0         0         0B        0B\n";
        assert_eq!(text.as_deref(), Some(want));
    }

    #[test]
    fn info_layout() {
        let info = json!({"Containers":0,"ContainersRunning":0,"ContainersPaused":0,"ContainersStopped":0,"Images":1,"Driver":"overlay2",
            "DriverStatus":[["Backing Filesystem","extfs"]],"Plugins":{"Volume":["local"],"Network":["bridge"],"Authorization":null,"Log":["json-file"]},
            "Swarm":{"LocalNodeState":"inactive"},"OSType":"linux","InitBinary":"","ContainerdCommit":{"ID":""},"RuncCommit":{"ID":""},"InitCommit":{"ID":""},
            "SecurityOptions":["name=seccomp,profile=default"],"NCPU":2,"MemTotal":25276063744u64,"Name":"vm","DockerRootDir":"/var/lib/estiba","Debug":false,
            "ExperimentalBuild":false,"RegistryConfig":{"InsecureRegistryCIDRs":["127.0.0.0/8"],"IndexConfigs":{"docker.io":{"Name":"docker.io","Secure":true}}},
            "LiveRestoreEnabled":false,"Warnings":["WARNING: x"]});
        let (text, warnings) = render_server_info(&info);
        let want = " Containers: 0\n  Running: 0\n  Paused: 0\n  Stopped: 0\n Images: 1\n Storage Driver: overlay2\n  Backing Filesystem: extfs\n Plugins:\n  Volume: local\n  Network: bridge\n  Log: json-file\n Swarm: inactive\n Init Binary: \n containerd version: \n runc version: \n init version: \n Security Options:\n  seccomp\n   Profile: default\n OSType: linux\n CPUs: 2\n Total Memory: 23.54GiB\n Name: vm\n Docker Root Dir: /var/lib/estiba\n Debug Mode: false\n Experimental: false\n Insecure Registries:\n  127.0.0.0/8\n Live Restore Enabled: false\n\n";
        assert_eq!(text, want);
        assert_eq!(warnings, vec!["WARNING: x".to_owned()]);
    }
}
