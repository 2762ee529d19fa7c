//! `run`/`create` flags -> the `POST /containers/create` body, field for field as docker 28's CLI
//! sends it (captured from the real CLI; see the fixtures under `testdata/`).

use serde_json::{json, Map, Value};

use super::args::RunArgs;

/// Upper bound for an `--env-file` or a seccomp profile read from disk.
const MAX_FLAG_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Why the flags cannot become a create request, worded as docker words it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FlagError {
    /// A bad flag value: `invalid argument "x" for "--flag" flag: why` (printed with usage).
    Invalid {
        value: String,
        flag: &'static str,
        why: String,
    },
    /// Any other problem (unreadable file, conflicting options): printed as "estiba: why".
    Other(String),
}

impl FlagError {
    pub(crate) fn invalid(value: &str, flag: &'static str, why: impl Into<String>) -> FlagError {
        FlagError::Invalid {
            value: value.to_owned(),
            flag,
            why: why.into(),
        }
    }
}

/// What to send: the query (`?name=x`) and the JSON body.
#[derive(Debug)]
pub(crate) struct CreateRequest {
    pub(crate) query: String,
    pub(crate) body: Value,
}

/// The host the flags are read on: environment and files (injected so tests stay pure).
pub(crate) struct Host<'a> {
    pub(crate) env: &'a dyn Fn(&str) -> Option<String>,
    pub(crate) read_file: &'a dyn Fn(&str) -> std::io::Result<String>,
}

impl Host<'static> {
    /// The real environment and file system.
    pub(crate) fn real() -> Host<'static> {
        Host {
            env: &|k| std::env::var(k).ok(),
            read_file: &read_bounded,
        }
    }
}

fn read_bounded(path: &str) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut s = String::new();
    std::fs::File::open(path)?
        .take(MAX_FLAG_FILE_BYTES)
        .read_to_string(&mut s)?;
    Ok(s)
}

/// go-units `RAMInBytes`: "64m" -> 67108864 (binary multiples, case-insensitive, optional "b").
pub(crate) fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let value: f64 = num
        .parse()
        .ok()
        .filter(|_| !num.is_empty())
        .ok_or_else(|| format!("invalid size: '{s}'"))?;
    let suffix = suffix.to_ascii_lowercase();
    let unit = suffix
        .strip_suffix("ib")
        .or_else(|| suffix.strip_suffix('b'))
        .unwrap_or(&suffix);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(format!("invalid suffix: '{suffix}'")),
    };
    Ok((value * mult) as i64)
}

/// `--cpus 1.5` -> 1500000000 nano CPUs, exactly (no float rounding).
pub(crate) fn nano_cpus(s: &str) -> Result<i64, String> {
    let bad = || format!("failed to parse {s} as a rational number");
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac_trimmed = frac.trim_end_matches('0');
    if frac_trimmed.len() > 9 {
        return Err("value is too precise".to_owned());
    }
    let whole: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut nanos_frac: i64 = 0;
    for (i, c) in frac_trimmed.chars().enumerate() {
        let d = i64::from(c.to_digit(10).unwrap_or(0));
        nanos_frac += d * 10i64.pow(8 - u32::try_from(i).unwrap_or(8));
    }
    whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(nanos_frac))
        .ok_or_else(bad)
}

/// docker's `ValidateEnv`: "K" takes its value from our environment when set.
fn env_value(kv: &str, host: &Host<'_>) -> String {
    if kv.contains('=') {
        return kv.to_owned();
    }
    match (host.env)(kv) {
        Some(v) => format!("{kv}={v}"),
        None => kv.to_owned(),
    }
}

/// docker's `ParseEnvFile`: comments and blank lines skipped; "K" without a value is taken from
/// our environment or dropped.
pub(crate) fn parse_env_file(path: &str, host: &Host<'_>) -> Result<Vec<String>, FlagError> {
    let text = (host.read_file)(path)
        .map_err(|e| FlagError::Other(format!("open {path}: {}", io_text(&e))))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(FlagError::Other(format!(
                "invalid environment variable: {line}"
            )));
        }
        if key.contains([' ', '\t']) {
            return Err(FlagError::Other(format!(
                "variable '{}' contains whitespaces (line {})",
                key.trim_end(),
                n + 1
            )));
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => {
                if let Some(v) = (host.env)(key) {
                    out.push(format!("{key}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// The text Go prints for an OS error ("no such file or directory").
pub(crate) fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.split_once(" (os error") {
        Some((msg, _)) => {
            let mut c = msg.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => String::new(),
            }
        }
        None => s,
    }
}

fn normalize_cap(c: &str) -> String {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

fn list_or_null(v: &[String]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

/// Splits "[ip:][host:]container[/proto]" (ip may be "[v6]").
fn split_port_spec(spec: &str) -> (String, String, String, String) {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_owned()),
        None => (spec, "tcp".to_owned()),
    };
    let (ip, rest) = if let Some(stripped) = rest.strip_prefix('[') {
        match stripped.split_once("]:") {
            Some((ip, r)) => (ip.to_owned(), r),
            None => (String::new(), rest),
        }
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() == 3 {
            (parts[0].to_owned(), &rest[parts[0].len() + 1..])
        } else {
            (String::new(), rest)
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h.to_owned(), c.to_owned()),
        None => (String::new(), rest.to_owned()),
    };
    (ip, host, container, proto)
}

fn port_range(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
    (a <= b && b <= 65535).then_some((a, b))
}

/// `-p` specs into ExposedPorts and PortBindings (docker's `nat.ParsePortSpecs`).
fn publish(
    specs: &[String],
    exposed: &mut Map<String, Value>,
    bindings: &mut Map<String, Value>,
) -> Result<(), FlagError> {
    for spec in specs {
        let (ip, host, container, proto) = split_port_spec(spec);
        let (c_start, c_end) = port_range(&container).ok_or_else(|| {
            FlagError::invalid(
                spec,
                "-p, --publish",
                format!("invalid containerPort: {container}"),
            )
        })?;
        let host_range = if host.is_empty() {
            None
        } else {
            Some(port_range(&host).ok_or_else(|| {
                FlagError::invalid(spec, "-p, --publish", format!("invalid hostPort: {host}"))
            })?)
        };
        for (i, port) in (c_start..=c_end).enumerate() {
            let key = format!("{port}/{}", proto.to_ascii_lowercase());
            let host_port = match host_range {
                None => String::new(),
                Some((h_start, h_end)) if c_end == c_start => {
                    if h_start == h_end {
                        h_start.to_string()
                    } else {
                        format!("{h_start}-{h_end}")
                    }
                }
                Some((h_start, _)) => (h_start + u32::try_from(i).unwrap_or(0)).to_string(),
            };
            exposed.insert(key.clone(), json!({}));
            let entry = bindings.entry(key).or_insert_with(|| json!([]));
            if let Value::Array(list) = entry {
                list.push(json!({"HostIp": ip, "HostPort": host_port}));
            }
        }
    }
    Ok(())
}

/// `--mount type=bind,src=/x,dst=/y[,readonly]` (the volumes issue validates the rest).
fn parse_mount(spec: &str) -> Result<Value, FlagError> {
    let mut m = Map::new();
    let mut kind = "volume".to_owned();
    let mut target = None;
    let mut tmpfs = Map::new();
    let mut volume_opts = Map::new();
    let mut bind_opts = Map::new();
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_owned())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let truthy = |v: &Option<String>| {
            v.as_deref()
                .is_none_or(|s| matches!(s, "1" | "true" | "True" | "TRUE"))
        };
        match (k.as_str(), v) {
            ("type", Some(v)) => kind = v,
            ("source" | "src", Some(v)) => {
                m.insert("Source".into(), json!(v));
            }
            ("target" | "dst" | "destination", Some(v)) => target = Some(v),
            ("readonly" | "ro", v) => {
                if truthy(&v) {
                    m.insert("ReadOnly".into(), json!(true));
                }
            }
            ("bind-propagation", Some(v)) => {
                bind_opts.insert("Propagation".into(), json!(v));
            }
            ("volume-nocopy", v) => {
                volume_opts.insert("NoCopy".into(), json!(truthy(&v)));
            }
            ("volume-subpath", Some(v)) => {
                volume_opts.insert("Subpath".into(), json!(v));
            }
            ("volume-opt" | "volume-label" | "volume-driver", Some(v)) => {
                crate::cmd::volume::mount_volume_option(&mut volume_opts, &k, &v);
            }
            ("bind-recursive", Some(v)) => {
                bind_opts.insert("NonRecursive".into(), json!(v == "disabled"));
            }
            ("bind-nonrecursive", v) => {
                bind_opts.insert("NonRecursive".into(), json!(truthy(&v)));
            }
            ("tmpfs-size", Some(v)) => {
                let n = ram_in_bytes(&v).map_err(|e| FlagError::invalid(spec, "--mount", e))?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            ("tmpfs-mode", Some(v)) => {
                let n = u32::from_str_radix(&v, 8).map_err(|_| {
                    FlagError::invalid(
                        spec,
                        "--mount",
                        format!("invalid value for tmpfs-mode: {v}"),
                    )
                })?;
                tmpfs.insert("Mode".into(), json!(n));
            }
            ("consistency", Some(v)) => {
                m.insert("Consistency".into(), json!(v));
            }
            (other, _) => {
                return Err(FlagError::invalid(
                    spec,
                    "--mount",
                    format!("unexpected key '{other}' in '{field}'"),
                ))
            }
        }
    }
    let target = target.ok_or_else(|| FlagError::invalid(spec, "--mount", "target is required"))?;
    m.insert("Type".into(), json!(kind));
    m.insert("Target".into(), json!(target));
    if !bind_opts.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind_opts));
    }
    if !volume_opts.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(volume_opts));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    Ok(Value::Object(m))
}

fn parse_ulimit(s: &str) -> Result<Value, FlagError> {
    let bad = || FlagError::invalid(s, "--ulimit", format!("invalid ulimit argument: {s}"));
    let (name, limits) = s.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let soft: i64 = soft.parse().map_err(|_| bad())?;
    let hard: i64 = hard.parse().map_err(|_| bad())?;
    if soft > hard {
        return Err(FlagError::invalid(
            s,
            "--ulimit",
            format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"),
        ));
    }
    Ok(json!({"Name": name, "Hard": hard, "Soft": soft}))
}

/// `seccomp=<file>` carries the profile itself, as docker's CLI sends it.
fn security_opts(opts: &[String], host: &Host<'_>) -> Result<Value, FlagError> {
    let mut out = Vec::with_capacity(opts.len());
    for opt in opts {
        let (k, v) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .unwrap_or((opt.as_str(), ""));
        if k == "seccomp" && v != "unconfined" && !v.is_empty() {
            let text = (host.read_file)(v).map_err(|e| {
                FlagError::Other(format!(
                    "opening seccomp profile ({v}) failed: {}",
                    io_text(&e)
                ))
            })?;
            let profile: Value = serde_json::from_str(&text).map_err(|e| {
                FlagError::Other(format!(
                    "compacting json for seccomp profile ({v}) failed: {e}"
                ))
            })?;
            out.push(format!("seccomp={profile}"));
        } else {
            out.push(opt.clone());
        }
    }
    Ok(list_or_null(&out))
}

pub(crate) fn int_flag(v: &Option<String>, flag: &'static str) -> Result<Option<i64>, FlagError> {
    match v {
        None => Ok(None),
        Some(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
            FlagError::invalid(
                s,
                flag,
                format!("strconv.ParseInt: parsing \"{s}\": invalid syntax"),
            )
        }),
    }
}

pub(crate) fn bytes_flag(v: &Option<String>, flag: &'static str) -> Result<i64, FlagError> {
    match v {
        None => Ok(0),
        Some(s) if flag == "--memory-swap" && s == "-1" => Ok(-1),
        Some(s) => ram_in_bytes(s).map_err(|e| FlagError::invalid(s, flag, e)),
    }
}

/// Builds the create request. `detach` is run's `-d`; `console` is the terminal size for `-t`.
pub(crate) fn create_request(
    a: &RunArgs,
    detach: bool,
    console: [u16; 2],
    host: &Host<'_>,
) -> Result<CreateRequest, FlagError> {
    let image = a.args.first().cloned().unwrap_or_default();
    let cmd: Vec<String> = a.args.iter().skip(1).cloned().collect();

    let (mut attach_in, mut attach_out, mut attach_err) = (false, false, false);
    for s in &a.attach {
        match s.to_ascii_lowercase().as_str() {
            "stdin" => attach_in = true,
            "stdout" => attach_out = true,
            "stderr" => attach_err = true,
            _ => {
                return Err(FlagError::invalid(
                    s,
                    "-a, --attach",
                    "valid streams are STDIN, STDOUT and STDERR",
                ))
            }
        }
    }
    if a.interactive {
        attach_in = true;
    }
    if a.attach.is_empty() {
        attach_out = true;
        attach_err = true;
    }
    let mut stdin_once = a.interactive && attach_in;
    if detach {
        if !a.attach.is_empty() {
            return Err(FlagError::Other(
                "conflicting options: cannot specify both --attach and --detach".to_owned(),
            ));
        }
        (attach_in, attach_out, attach_err, stdin_once) = (false, false, false, false);
    }
    let restart = a.restart.clone().unwrap_or_default();
    if a.rm && !restart.is_empty() && restart != "no" {
        return Err(FlagError::Other(
            "conflicting options: cannot specify both --restart and --rm".to_owned(),
        ));
    }
    let (restart_name, retries) = match restart.split_once(':') {
        Some((n, c)) => (
            n.to_owned(),
            c.parse::<i64>().map_err(|_| {
                FlagError::invalid(
                    &restart,
                    "--restart",
                    format!("maximum retry count must be an integer: {c}"),
                )
            })?,
        ),
        None if restart.is_empty() => ("no".to_owned(), 0),
        None => (restart.clone(), 0),
    };

    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(parse_env_file(f, host)?);
    }
    for e in &a.env {
        env.push(env_value(e, host));
    }

    let mut labels = Map::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_owned(), json!(v));
    }

    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for v in &a.volume {
        if v.contains(':') {
            binds.push(v.clone());
        } else {
            volumes.insert(v.clone(), json!({}));
        }
    }
    let mut mounts = Vec::new();
    for m in &a.mount {
        mounts.push(parse_mount(m)?);
    }
    let mut tmpfs = Map::new();
    for t in &a.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(path.to_owned(), json!(opts));
    }

    let mut exposed = Map::new();
    let mut bindings = Map::new();
    publish(&a.publish, &mut exposed, &mut bindings)?;
    for e in &a.expose {
        let (ports, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        let (start, end) = port_range(ports).ok_or_else(|| {
            FlagError::invalid(
                e,
                "--expose",
                format!("invalid range format for --expose: {e}"),
            )
        })?;
        for p in start..=end {
            exposed.insert(format!("{p}/{proto}"), json!({}));
        }
    }

    let mut ulimits = Vec::new();
    for u in &a.ulimit {
        ulimits.push(parse_ulimit(u)?);
    }
    let nano_cpus = match &a.cpus {
        Some(c) => nano_cpus(c).map_err(|e| FlagError::invalid(c, "--cpus", e))?,
        None => 0,
    };
    let memory = bytes_flag(&a.memory, "-m, --memory")?;
    let memory_reservation = bytes_flag(&a.memory_reservation, "--memory-reservation")?;
    let memory_swap = bytes_flag(&a.memory_swap, "--memory-swap")?;
    let shm_size = bytes_flag(&a.shm_size, "--shm-size")?;
    let pids_limit = int_flag(&a.pids_limit, "--pids-limit")?.unwrap_or(0);
    let cpu_shares = int_flag(&a.cpu_shares, "-c, --cpu-shares")?.unwrap_or(0);
    let stop_timeout = int_flag(&a.stop_timeout, "--stop-timeout")?;

    let mut log_config = Map::new();
    for o in &a.log_opt {
        let (k, v) = o.split_once('=').ok_or_else(|| {
            FlagError::invalid(
                o,
                "--log-opt",
                format!("invalid key value pair format in log-opt: {o}"),
            )
        })?;
        log_config.insert(k.to_owned(), json!(v));
    }

    let network = a.network.clone().unwrap_or_else(|| "default".to_owned());
    let endpoints = if network == "default" {
        json!({"default": {
            "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "", "DriverOpts": null,
            "GwPriority": 0, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": null
        }})
    } else {
        json!({})
    };
    let endpoints = crate::cmd::network::endpoints_config(
        &network,
        endpoints,
        &a.network_alias,
        a.ip.as_deref(),
        a.ip6.as_deref(),
    );

    let entrypoint = match a.entrypoint.as_deref() {
        None => Value::Null,
        Some(e) => json!([e]),
    };

    let mut hc = json!({
        "Binds": list_or_null(&binds),
        "ContainerIDFile": "",
        "LogConfig": {"Type": a.log_driver.clone().unwrap_or_default(), "Config": log_config},
        "NetworkMode": network,
        "PortBindings": bindings,
        "RestartPolicy": {"Name": restart_name, "MaximumRetryCount": retries},
        "AutoRemove": a.rm,
        "VolumeDriver": "",
        "VolumesFrom": list_or_null(&a.volumes_from),
        "ConsoleSize": console,
        "CapAdd": list_or_null(&a.cap_add.iter().map(|c| normalize_cap(c)).collect::<Vec<_>>()),
        "CapDrop": list_or_null(&a.cap_drop.iter().map(|c| normalize_cap(c)).collect::<Vec<_>>()),
        "CgroupnsMode": "",
        "Dns": a.dns,
        "DnsOptions": a.dns_option,
        "DnsSearch": a.dns_search,
        "ExtraHosts": list_or_null(&a.add_host),
        "GroupAdd": list_or_null(&a.group_add),
        "IpcMode": "",
        "Cgroup": "",
        "Links": list_or_null(&a.link),
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": a.privileged,
        "PublishAllPorts": a.publish_all,
        "ReadonlyRootfs": a.read_only,
        "SecurityOpt": security_opts(&a.security_opt, host)?,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": shm_size,
        "Isolation": "",
        "CpuShares": cpu_shares,
        "Memory": memory,
        "NanoCpus": nano_cpus,
    });
    let resources = json!({
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": a.cpuset_cpus.clone().unwrap_or_default(),
        "CpusetMems": "",
        "Devices": [],
        "DeviceCgroupRules": null,
        "DeviceRequests": null,
        "MemoryReservation": memory_reservation,
        "MemorySwap": memory_swap,
        "MemorySwappiness": -1,
        "OomKillDisable": false,
        "PidsLimit": pids_limit,
        "Ulimits": ulimits,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": null,
        "ReadonlyPaths": null,
    });
    if let (Value::Object(m), Value::Object(r)) = (&mut hc, resources) {
        m.extend(r);
        if !tmpfs.is_empty() {
            m.insert("Tmpfs".into(), Value::Object(tmpfs));
        }
        if let Some(r) = &a.runtime {
            m.insert("Runtime".into(), json!(r));
        }
        if !mounts.is_empty() {
            m.insert("Mounts".into(), json!(mounts));
        }
        if a.init {
            m.insert("Init".into(), json!(true));
        }
    }

    let mut body = json!({
        "Hostname": a.hostname.clone().unwrap_or_default(),
        "Domainname": "",
        "User": a.user.clone().unwrap_or_default(),
        "AttachStdin": attach_in,
        "AttachStdout": attach_out,
        "AttachStderr": attach_err,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": stdin_once,
        "Env": list_or_null(&env),
        "Cmd": list_or_null(&cmd),
        "Image": image,
        "Volumes": volumes,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Entrypoint": entrypoint,
        "OnBuild": null,
        "Labels": labels,
        "HostConfig": hc,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    });
    if let Value::Object(m) = &mut body {
        if !exposed.is_empty() {
            m.insert("ExposedPorts".into(), Value::Object(exposed));
        }
        if let Some(s) = &a.stop_signal {
            m.insert("StopSignal".into(), json!(s));
        }
        if let Some(t) = stop_timeout {
            m.insert("StopTimeout".into(), json!(t));
        }
    }
    let query = crate::client::query(&[("name", a.name.clone())]);
    Ok(CreateRequest { query, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    use crate::args::{Cli, Command};

    fn parse(argv: &[&str]) -> (RunArgs, bool) {
        let mut full = vec!["estiba"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(&full).map(|c| c.command) {
            Ok(Command::Run(a)) => {
                let d = a.detach;
                (a, d)
            }
            Ok(Command::Create(a)) => (a, false),
            other => panic!("{argv:?}: {other:?}"),
        }
    }

    fn test_host() -> Host<'static> {
        Host {
            env: &|k| (k == "B_SET").then(|| "bval".to_owned()),
            read_file: &|p| match p {
                "envf" => Ok(include_str!("testdata/envf").to_owned()),
                _ => Err(std::io::Error::from_raw_os_error(2)),
            },
        }
    }

    /// Each case: the flags given to docker 28 and the body it sent (captured from the real CLI).
    #[test]
    fn create_bodies_match_docker() {
        let cases: &[(&[&str], &str, &str)] = &[
            (
                &["create", "busybox", "echo", "hi"],
                "",
                include_str!("testdata/plain.json"),
            ),
            (
                &[
                    "create",
                    "--name",
                    "web",
                    "-e",
                    "X=1",
                    "--env-file",
                    "envf",
                    "-w",
                    "/tmp",
                    "-u",
                    "nobody",
                    "--entrypoint",
                    "/bin/sh",
                    "-h",
                    "hh",
                    "-l",
                    "a=b",
                    "-l",
                    "c",
                    "--network",
                    "none",
                    "-m",
                    "64m",
                    "--cpus",
                    "0.5",
                    "--pids-limit",
                    "50",
                    "--restart",
                    "on-failure:3",
                    "--init",
                    "--read-only",
                    "--tmpfs",
                    "/tmp",
                    "--tmpfs",
                    "/run:size=1m",
                    "--cap-add",
                    "NET_ADMIN",
                    "--cap-drop",
                    "ALL",
                    "--privileged",
                    "--security-opt",
                    "no-new-privileges",
                    "--ulimit",
                    "nofile=1024:2048",
                    "--shm-size",
                    "128m",
                    "-v",
                    "/a:/b:ro",
                    "-v",
                    "vol:/c",
                    "--mount",
                    "type=bind,src=/x,dst=/y",
                    "-p",
                    "8080:80",
                    "-p",
                    "53/udp",
                    "--add-host",
                    "h:1.2.3.4",
                    "--dns",
                    "8.8.8.8",
                    "--stop-signal",
                    "SIGUSR1",
                    "--stop-timeout",
                    "5",
                    "--runtime",
                    "runc",
                    "-i",
                    "-t",
                    "busybox",
                    "-c",
                    "echo hi",
                ],
                "?name=web",
                include_str!("testdata/full.json"),
            ),
            (
                &[
                    "run",
                    "-d",
                    "--rm",
                    "--network",
                    "host",
                    "busybox",
                    "sleep",
                    "5",
                ],
                "",
                include_str!("testdata/rund.json"),
            ),
            (
                &[
                    "run",
                    "--network",
                    "none",
                    "-e",
                    "UNSET_VAR",
                    "-e",
                    "Y=",
                    "--entrypoint",
                    "",
                    "-p",
                    "127.0.0.1:8000-8001:80-81/tcp",
                    "busybox",
                ],
                "",
                include_str!("testdata/runfg.json"),
            ),
            (
                &[
                    "run",
                    "-i",
                    "--network",
                    "bridge",
                    "-l",
                    "x=y",
                    "--restart",
                    "always",
                    "--memory",
                    "1g",
                    "--cpus",
                    "1.5",
                    "--ulimit",
                    "nproc=10",
                    "--security-opt",
                    "seccomp=unconfined",
                    "--cap-add",
                    "sys_admin",
                    "busybox",
                    "sh",
                ],
                "",
                include_str!("testdata/runi.json"),
            ),
            (
                &[
                    "run",
                    "-a",
                    "stdout",
                    "--network",
                    "none",
                    "--restart",
                    "unless-stopped",
                    "busybox",
                    "true",
                ],
                "",
                include_str!("testdata/runa.json"),
            ),
            (
                &[
                    "create",
                    "--network",
                    "mynet",
                    "-p",
                    "80",
                    "-p",
                    "9000:9000/udp",
                    "--cap-add",
                    "all",
                    "--cap-drop",
                    "chown",
                    "--tmpfs",
                    "/x:rw,noexec",
                    "busybox",
                ],
                "",
                include_str!("testdata/net.json"),
            ),
            (
                &[
                    "create",
                    "-h",
                    "a.b.c",
                    "-v",
                    "/data",
                    "-a",
                    "stdin",
                    "-a",
                    "STDERR",
                    "--expose",
                    "90-91",
                    "--log-driver",
                    "json-file",
                    "--log-opt",
                    "max-size=1m",
                    "--memory-swap",
                    "-1",
                    "--mount",
                    "type=volume,dst=/v,readonly",
                    "--mount",
                    "type=tmpfs,dst=/t,tmpfs-size=1024",
                    "--security-opt",
                    "seccomp=unconfined",
                    "-e",
                    "A B=1",
                    "busybox",
                ],
                "",
                include_str!("testdata/misc.json"),
            ),
        ];
        for (argv, want_query, want_body) in cases {
            let (a, detach) = parse(argv);
            let req = match create_request(&a, detach, [0, 0], &test_host()) {
                Ok(r) => r,
                Err(e) => panic!("{argv:?}: {e:?}"),
            };
            let want: Value = match serde_json::from_str(want_body) {
                Ok(v) => v,
                Err(e) => panic!("fixture for {argv:?}: {e}"),
            };
            assert_eq!(req.query, *want_query, "{argv:?}");
            assert_eq!(req.body, want, "{argv:?}\n got {}\nwant {}", req.body, want);
        }
    }

    #[test]
    fn bad_flags_are_worded_like_docker() {
        let cases: &[(&[&str], FlagError)] = &[
            (
                &["create", "--cpus", "abc", "busybox"],
                FlagError::invalid("abc", "--cpus", "failed to parse abc as a rational number"),
            ),
            (
                &["create", "--cpus", "1.1234567891", "busybox"],
                FlagError::invalid("1.1234567891", "--cpus", "value is too precise"),
            ),
            (
                &["create", "-m", "12x", "busybox"],
                FlagError::invalid("12x", "-m, --memory", "invalid suffix: 'x'"),
            ),
            (
                &["create", "-a", "foo", "busybox"],
                FlagError::invalid(
                    "foo",
                    "-a, --attach",
                    "valid streams are STDIN, STDOUT and STDERR",
                ),
            ),
            (
                &["create", "--ulimit", "nofile", "busybox"],
                FlagError::invalid("nofile", "--ulimit", "invalid ulimit argument: nofile"),
            ),
            (
                &["create", "--mount", "type=bind", "busybox"],
                FlagError::invalid("type=bind", "--mount", "target is required"),
            ),
            (
                &["run", "--rm", "--restart", "always", "busybox"],
                FlagError::Other(
                    "conflicting options: cannot specify both --restart and --rm".into(),
                ),
            ),
            (
                &["create", "--env-file", "/nonexist", "busybox"],
                FlagError::Other("open /nonexist: no such file or directory".into()),
            ),
        ];
        for (argv, want) in cases {
            let (a, detach) = parse(argv);
            let got = create_request(&a, detach, [0, 0], &test_host()).err();
            assert_eq!(got.as_ref(), Some(want), "{argv:?}");
        }
    }

    #[test]
    fn sizes_and_cpus() {
        let sizes: &[(&str, Result<i64, String>)] = &[
            ("64m", Ok(64 << 20)),
            ("1g", Ok(1 << 30)),
            ("128MB", Ok(128 << 20)),
            ("10KiB", Ok(10 << 10)),
            ("512", Ok(512)),
            ("1.5k", Ok(1536)),
            ("x", Err("invalid size: 'x'".into())),
        ];
        for (s, want) in sizes {
            assert_eq!(ram_in_bytes(s), *want, "{s}");
        }
        let cpus: &[(&str, Option<i64>)] = &[
            ("0.5", Some(500_000_000)),
            ("1.5", Some(1_500_000_000)),
            ("2", Some(2_000_000_000)),
            (".25", Some(250_000_000)),
            ("0.000000001", Some(1)),
            ("1e3", None),
            ("-1", None),
        ];
        for (s, want) in cpus {
            assert_eq!(nano_cpus(s).ok(), *want, "{s}");
        }
    }
}
