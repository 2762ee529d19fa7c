//! The per-container commands: stop, kill, restart, rm, pause, unpause, wait, rename, top, port,
//! logs, stats, container prune and container inspect.

use std::io::{BufRead as _, Read as _};

use hyper::Method;
use serde_json::Value;

use super::args::{
    ContainerInspectArgs, ContainerPruneArgs, KillArgs, LogsArgs, NamesArgs, RmArgs, StatsArgs,
    StopArgs, TopArgs,
};
use super::stream::copy_output;
use crate::args::{check_args, filters_json, Arity, InspectArgs};
use crate::client::{path_escape, query, ApiError, Client};
use crate::format::{header, row, Format};
use crate::output::out;
use crate::tabwriter::GoTabWriter;
use crate::units::{bytes_size, human_size, human_size_precision, truncate_id};
use crate::StatusError;

/// Calls `path_of(name)` for every name, printing the name on success (docker's pattern for
/// stop, kill, rm...); the daemon's errors are printed together at the end with exit 1.
async fn for_each(
    client: &mut Client,
    names: &[String],
    method: Method,
    path_of: impl Fn(&str) -> String,
) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for name in names {
        match client
            .call_json(method.clone(), &path_of(&path_escape(name)))
            .await
        {
            Ok(_) => out(&format!("{name}\n"))?,
            Err(e) if e.downcast_ref::<ApiError>().is_some() => errors.push(format!("{e:#}")),
            Err(e) => return Err(e),
        }
    }
    StatusError::from_errors(errors)
}

/// `stop` and `restart`.
pub(crate) async fn stop(client: &mut Client, a: StopArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    let action = if cmd.ends_with("restart") {
        "restart"
    } else {
        "stop"
    };
    let q = query(&[
        ("signal", a.signal.clone()),
        ("t", a.timeout.map(|t| t.to_string())),
    ]);
    for_each(client, &a.args, Method::POST, |n| {
        format!("/containers/{n}/{action}{q}")
    })
    .await
}

pub(crate) async fn kill(client: &mut Client, a: KillArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    let q = query(&[("signal", a.signal.clone())]);
    for_each(client, &a.args, Method::POST, |n| {
        format!("/containers/{n}/kill{q}")
    })
    .await
}

pub(crate) async fn rm(client: &mut Client, a: RmArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    let q = query(&[
        ("force", a.force.then(|| "1".to_owned())),
        ("link", a.link.then(|| "1".to_owned())),
        ("v", a.volumes.then(|| "1".to_owned())),
    ]);
    for_each(client, &a.args, Method::DELETE, |n| {
        format!("/containers/{n}{q}")
    })
    .await
}

/// `pause` and `unpause`.
pub(crate) async fn pause(client: &mut Client, a: NamesArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    let action = if cmd.ends_with("unpause") {
        "unpause"
    } else {
        "pause"
    };
    for_each(client, &a.args, Method::POST, |n| {
        format!("/containers/{n}/{action}")
    })
    .await
}

/// `wait`: each container's exit code, one per line.
pub(crate) async fn wait(client: &mut Client, a: NamesArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    let mut errors = Vec::new();
    for name in &a.args {
        match client
            .call_json(
                Method::POST,
                &format!("/containers/{}/wait", path_escape(name)),
            )
            .await
        {
            Ok(v) => out(&format!(
                "{}\n",
                v.get("StatusCode").and_then(Value::as_i64).unwrap_or(0)
            ))?,
            Err(e) if e.downcast_ref::<ApiError>().is_some() => errors.push(format!("{e:#}")),
            Err(e) => return Err(e),
        }
    }
    StatusError::from_errors(errors)
}

pub(crate) async fn rename(client: &mut Client, a: NamesArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::Exactly(2))?;
    let (old, new) = (&a.args[0], a.args[1].trim());
    if new.is_empty() {
        anyhow::bail!("Error: neither old nor new names may be empty");
    }
    let q = query(&[("name", Some(new.to_owned()))]);
    if let Err(e) = client
        .call_json(
            Method::POST,
            &format!("/containers/{}/rename{q}", path_escape(old)),
        )
        .await
    {
        return Err(StatusError {
            code: 1,
            message: format!("{e:#}\nError: failed to rename container named {old}"),
        }
        .into());
    }
    Ok(())
}

/// The `top` table: docker's tabwriter (min width 20, padding 3).
pub(crate) fn top_table(v: &Value) -> String {
    let mut tw = GoTabWriter::new(20, 3);
    let titles: Vec<&str> = v
        .get("Titles")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    tw.push_str(&titles.join("\t"));
    tw.push_str("\n");
    for p in v
        .get("Processes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let cells: Vec<&str> = p
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        tw.push_str(&cells.join("\t"));
        tw.push_str("\n");
    }
    tw.finish()
}

pub(crate) async fn top(client: &mut Client, a: TopArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    let ps_args = (a.args.len() > 1).then(|| a.args[1..].join(" "));
    let q = query(&[("ps_args", ps_args)]);
    let v = client
        .get_json(&format!("/containers/{}/top{q}", path_escape(&a.args[0])))
        .await?;
    out(&top_table(&v))
}

fn host_port(binding: &Value) -> String {
    let ip = binding.get("HostIp").and_then(Value::as_str).unwrap_or("");
    let port = binding
        .get("HostPort")
        .and_then(Value::as_str)
        .unwrap_or("");
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// `port`'s lines for a container's `NetworkSettings.Ports`, optionally one port ("80[/tcp]").
pub(crate) fn port_lines(ports: &Value, want: Option<&str>) -> Option<Vec<String>> {
    let map = ports.as_object();
    let mut lines = Vec::new();
    if let Some(want) = want {
        let key = if want.contains('/') {
            want.to_owned()
        } else {
            format!("{want}/tcp")
        };
        let bindings = map?.get(&key)?.as_array()?;
        if bindings.is_empty() {
            return None;
        }
        lines.extend(bindings.iter().map(host_port));
        return Some(lines);
    }
    let mut keys: Vec<&String> = map.map(|m| m.keys().collect()).unwrap_or_default();
    keys.sort_by_key(|k| {
        let (p, proto) = k.split_once('/').unwrap_or((k, ""));
        (p.parse::<u32>().unwrap_or(0), proto.to_owned())
    });
    for k in keys {
        for b in map
            .and_then(|m| m.get(k))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            lines.push(format!("{k} -> {}", host_port(b)));
        }
    }
    Some(lines)
}

pub(crate) async fn port(client: &mut Client, a: NamesArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    if a.args.len() > 2 {
        check_args(cmd, &a.args, Arity::AtMost(2))?;
    }
    let name = &a.args[0];
    let info = client
        .get_json(&format!("/containers/{}/json", path_escape(name)))
        .await?;
    let ports = info
        .pointer("/NetworkSettings/Ports")
        .cloned()
        .unwrap_or(Value::Null);
    let want = a.args.get(1).map(String::as_str);
    match port_lines(&ports, want) {
        Some(lines) => out(&lines.iter().map(|l| format!("{l}\n")).collect::<String>()),
        None => Err(StatusError {
            code: 1,
            message: format!(
                "Error: No public port '{}' published for {name}",
                want.unwrap_or("")
            ),
        }
        .into()),
    }
}

/// docker's `GetTimestamp`: a duration ("10m", "1h30m") before now, an RFC 3339 time, or a Unix
/// time passed on as it is.
pub(crate) fn timestamp(value: &str, now_unix: i64) -> String {
    if let Some(secs) = go_duration_secs(value) {
        return (now_unix - secs).to_string();
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        let nanos = t.timestamp_subsec_nanos();
        return if nanos == 0 {
            t.timestamp().to_string()
        } else {
            format!("{}.{nanos:09}", t.timestamp())
        };
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return t.and_utc().timestamp().to_string();
        }
    }
    value.to_owned()
}

/// Go's `time.ParseDuration`, whole seconds ("1h30m" -> 5400); a bare number is a time.
fn go_duration_secs(s: &str) -> Option<i64> {
    if s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    estiba_api::duration::parse_go_duration(s)
        .and_then(|nanos| i64::try_from(nanos / 1_000_000_000).ok())
}

pub(crate) async fn logs(client: &mut Client, a: LogsArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::Exactly(1))?;
    let name = &a.args[0];
    let info = client
        .get_json(&format!("/containers/{}/json", path_escape(name)))
        .await?;
    let tty = info
        .pointer("/Config/Tty")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let now = chrono::Utc::now().timestamp();
    let flag = |on: bool| on.then(|| "1".to_owned());
    let q = query(&[
        ("details", flag(a.details)),
        ("follow", flag(a.follow)),
        ("since", a.since.as_deref().map(|s| timestamp(s, now))),
        ("stderr", Some("1".to_owned())),
        ("stdout", Some("1".to_owned())),
        ("tail", Some(a.tail.clone())),
        ("timestamps", flag(a.timestamps)),
        ("until", a.until.as_deref().map(|s| timestamp(s, now))),
    ]);
    let resp = client
        .request(
            Method::GET,
            &format!("/containers/{}/logs{q}", path_escape(name)),
            crate::client::empty_body(),
            None,
        )
        .await?;
    let body = http_body_util::BodyStream::new(resp.into_body());
    let reader = tokio_util::io::StreamReader::new(futures_util::StreamExt::filter_map(
        body,
        |frame| async move {
            match frame {
                Ok(f) => f.into_data().ok().map(Ok::<_, std::io::Error>),
                Err(e) => Some(Err(std::io::Error::other(e))),
            }
        },
    ));
    copy_output(Box::pin(reader), tty).await
}

/// One stats sample as docker's stats context shows it.
pub(crate) fn stats_row(s: &Value, trunc: bool) -> Value {
    let num = |p: &str| s.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let cpu_delta =
        num("/cpu_stats/cpu_usage/total_usage") - num("/precpu_stats/cpu_usage/total_usage");
    let system_delta = num("/cpu_stats/system_cpu_usage") - num("/precpu_stats/system_cpu_usage");
    let mut online = num("/cpu_stats/online_cpus");
    if online == 0.0 {
        online = s
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map_or(0.0, |a| a.len() as f64);
    }
    let cpu = if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    };
    let usage = num("/memory_stats/usage");
    let cache = [
        "/memory_stats/stats/total_inactive_file",
        "/memory_stats/stats/inactive_file",
    ]
    .iter()
    .find_map(|p| s.pointer(p).and_then(Value::as_f64))
    .unwrap_or(0.0);
    let mem = if cache < usage { usage - cache } else { usage };
    let limit = num("/memory_stats/limit");
    let mem_perc = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(nets) = s.get("networks").and_then(Value::as_object) {
        for n in nets.values() {
            rx += n.get("rx_bytes").and_then(Value::as_f64).unwrap_or(0.0);
            tx += n.get("tx_bytes").and_then(Value::as_f64).unwrap_or(0.0);
        }
    }
    let (mut read, mut write) = (0.0, 0.0);
    for e in s
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let v = e.get("value").and_then(Value::as_f64).unwrap_or(0.0);
        match e
            .get("op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("read") => read += v,
            Some("write") => write += v,
            _ => {}
        }
    }
    let id = s.get("id").and_then(Value::as_str).unwrap_or("");
    let name = s.get("name").and_then(Value::as_str).unwrap_or("");
    let name = name.strip_prefix('/').unwrap_or(name);
    row(&[
        (
            "ID",
            if trunc {
                truncate_id(id)
            } else {
                id.to_owned()
            },
        ),
        (
            "Container",
            if trunc {
                truncate_id(id)
            } else {
                id.to_owned()
            },
        ),
        ("Name", name.to_owned()),
        ("CPUPerc", format!("{cpu:.2}%")),
        (
            "MemUsage",
            format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        ),
        ("MemPerc", format!("{mem_perc:.2}%")),
        (
            "NetIO",
            format!(
                "{} / {}",
                human_size_precision(rx, 3),
                human_size_precision(tx, 3)
            ),
        ),
        (
            "BlockIO",
            format!(
                "{} / {}",
                human_size_precision(read, 3),
                human_size_precision(write, 3)
            ),
        ),
        ("PIDs", format!("{}", num("/pids_stats/current") as u64)),
    ])
}

const STATS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn stats_header() -> Value {
    header(&[
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ])
}

/// Upper bound for the refreshes of a streaming `stats` (about a day at one per second).
const MAX_STATS_REFRESHES: u32 = 86_400;

pub(crate) async fn stats(client: &mut Client, a: StatsArgs, _cmd: &str) -> anyhow::Result<()> {
    let format = a
        .format
        .clone()
        .filter(|f| !f.is_empty() && f != "table")
        .unwrap_or_else(|| STATS_TABLE.to_owned());
    let compiled = Format::new(&format)?;
    for round in 0..MAX_STATS_REFRESHES {
        let names: Vec<String> = if a.args.is_empty() {
            let q = query(&[("all", a.all.then(|| "1".to_owned()))]);
            let list = client.get_json(&format!("/containers/json{q}")).await?;
            list.as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter_map(|c| c.get("Id").and_then(Value::as_str).map(str::to_owned))
                .collect()
        } else {
            a.args.clone()
        };
        let mut rows = Vec::with_capacity(names.len());
        let mut errors = Vec::new();
        for n in &names {
            match client
                .get_json(&format!("/containers/{}/stats?stream=0", path_escape(n)))
                .await
            {
                Ok(s) => rows.push(stats_row(&s, !a.no_trunc)),
                Err(e) if e.downcast_ref::<ApiError>().is_some() => errors.push(format!("{e:#}")),
                Err(e) => return Err(e),
            }
        }
        StatusError::from_errors(errors)?;
        let text = compiled.render(&stats_header(), &rows)?;
        if a.no_stream {
            return out(&text);
        }
        // Clear the screen and draw again, as docker does on a terminal.
        out(&format!("\x1b[2J\x1b[H{text}"))?;
        if round + 1 < MAX_STATS_REFRESHES {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
    Ok(())
}

const PRUNE_WARNING: &str =
    "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?";

fn confirm(message: &str) -> anyhow::Result<bool> {
    out(&format!("{message} [y/N] "))?;
    let mut answer = String::new();
    // A yes/no answer is one short line.
    std::io::stdin().lock().take(1024).read_line(&mut answer)?;
    let answer = answer.trim();
    Ok(answer == "y" || answer == "Y")
}

/// The text docker prints after `container prune`.
pub(crate) fn prune_report(report: &Value) -> String {
    let mut text = String::new();
    let deleted = report
        .get("ContainersDeleted")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if !deleted.is_empty() {
        text.push_str("Deleted Containers:\n");
        for id in deleted.iter().filter_map(Value::as_str) {
            text.push_str(id);
            text.push('\n');
        }
        text.push('\n');
    }
    let reclaimed = report
        .get("SpaceReclaimed")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(reclaimed as f64)
    ));
    text
}

pub(crate) async fn prune(client: &mut Client, a: ContainerPruneArgs) -> anyhow::Result<()> {
    check_args("container prune", &a.args, Arity::None)?;
    if !a.force && !confirm(PRUNE_WARNING)? {
        return Ok(());
    }
    let q = query(&[("filters", filters_json(&a.filter))]);
    let report = client
        .call_json(Method::POST, &format!("/containers/prune{q}"))
        .await?;
    out(&prune_report(&report))
}

/// `container inspect`: containers only.
pub(crate) async fn inspect(client: &mut Client, a: ContainerInspectArgs) -> anyhow::Result<()> {
    check_args("container inspect", &a.args, Arity::AtLeast(1))?;
    crate::cmd::inspect::inspect(
        client,
        InspectArgs {
            format: a.format,
            size: a.size,
            kind: Some("container".to_owned()),
            args: a.args,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stats_rows_follow_docker() {
        let s = json!({
            "id": "89d70be4841e7e276d8d903e37bb5d7abaa64ef62aeb4f60a31de13f5668bb86", "name": "/t1",
            "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000}, "system_cpu_usage": 100_000_000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000}, "system_cpu_usage": 0},
            "memory_stats": {"usage": 400_000, "limit": 25_275_645_952u64, "stats": {"total_inactive_file": 47_744}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 0}]},
            "pids_stats": {"current": 1}
        });
        let r = stats_row(&s, true);
        let want = [
            ("ID", "89d70be4841e"),
            ("Name", "t1"),
            ("CPUPerc", "2.00%"),
            ("MemUsage", "344KiB / 23.54GiB"),
            ("MemPerc", "0.00%"),
            ("NetIO", "1.5kB / 0B"),
            ("BlockIO", "4.1kB / 0B"),
            ("PIDs", "1"),
        ];
        for (k, v) in want {
            assert_eq!(r[k], v, "{k}");
        }
        let stopped = stats_row(&json!({"id": "f2eb8402af93581d", "name": "/t2"}), true);
        assert_eq!(stopped["MemUsage"], "0B / 0B");
        assert_eq!(stopped["CPUPerc"], "0.00%");
    }

    #[test]
    fn top_and_port_and_prune_output() {
        let top = json!({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
                         "Processes": [["root", "19837", "19815", "0", "07:18", "?", "00:00:00", "sleep 300"]]});
        assert_eq!(
            top_table(&top),
            "UID                 PID                 PPID                C                   STIME               TTY                 TIME                CMD\n\
             root                19837               19815               0                   07:18               ?                   00:00:00            sleep 300\n"
        );
        let ports = json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
                           "53/udp": null, "9000/udp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}]});
        assert_eq!(
            port_lines(&ports, None),
            Some(vec![
                "80/tcp -> 0.0.0.0:8080".to_owned(),
                "80/tcp -> [::]:8080".to_owned(),
                "9000/udp -> 127.0.0.1:9000".to_owned()
            ])
        );
        assert_eq!(
            port_lines(&ports, Some("80")),
            Some(vec!["0.0.0.0:8080".to_owned(), "[::]:8080".to_owned()])
        );
        assert_eq!(port_lines(&ports, Some("53/udp")), None);
        assert_eq!(port_lines(&ports, Some("81")), None);
        assert_eq!(
            prune_report(&json!({"ContainersDeleted": ["ab", "cd"], "SpaceReclaimed": 0})),
            "Deleted Containers:\nab\ncd\n\nTotal reclaimed space: 0B\n"
        );
        assert_eq!(
            prune_report(&json!({"ContainersDeleted": null, "SpaceReclaimed": 0})),
            "Total reclaimed space: 0B\n"
        );
    }

    #[test]
    fn log_timestamps() {
        let now = 1_795_400_000;
        let cases: &[(&str, &str)] = &[
            ("10m", "1795399400"),
            ("1h30m", "1795394600"),
            ("2026-11-22T07:18:02Z", "1795331882"),
            ("2026-11-22T07:18:02.5Z", "1795331882.500000000"),
            ("1795331882", "1795331882"),
        ];
        for (input, want) in cases {
            assert_eq!(timestamp(input, now), *want, "{input}");
        }
    }
}
