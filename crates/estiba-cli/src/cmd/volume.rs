//! `estiba volume create|ls|inspect|rm|prune` as docker prints them, and estiba's
//! `volume export|import` (a volume's content as a tar that keeps owners, modes and xattrs).

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};

use crate::args::{check_args, filters_json, parse_filter, Arity};
use crate::client::{path_escape, query, ApiError, Client};
use crate::format::{header, row, Format};
use crate::output::{out, stdin_is_terminal, stdout_is_terminal};
use crate::StatusError;

#[derive(Subcommand, Debug)]
pub(crate) enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
    /// Write a volume's content as a tar archive (owners, modes and xattrs kept)
    Export(ExportArgs),
    /// Fill a new or empty volume from a tar archive written by export
    Import(ImportArgs),
}

#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// Specify volume driver name
    #[arg(
        short = 'd',
        long = "driver",
        value_name = "string",
        default_value = "local"
    )]
    driver: String,
    /// Set metadata for a volume
    #[arg(long = "label", value_name = "list")]
    label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", value_name = "string")]
    name: Option<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    opt: Vec<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct LsArgs {
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter", value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    /// Format output using a custom template
    #[arg(long = "format", value_name = "string")]
    format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format", value_name = "string")]
    format: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long = "force")]
    force: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "filter", value_parser = parse_filter)]
    filter: Vec<(String, String)>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    force: bool,
    #[arg(hide = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output", value_name = "string")]
    output: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ImportArgs {
    /// Read from a tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input", value_name = "string")]
    input: Option<String>,
    #[arg(hide = true)]
    args: Vec<String>,
}

/// `estiba volume <sub>`.
pub(crate) async fn volume(client: &mut Client, sub: VolumeCommand) -> anyhow::Result<()> {
    match sub {
        VolumeCommand::Create(a) => create(client, a).await,
        VolumeCommand::Ls(a) => ls(client, a).await,
        VolumeCommand::Inspect(a) => inspect(client, a).await,
        VolumeCommand::Rm(a) => rm(client, a).await,
        VolumeCommand::Prune(a) => prune(client, a).await,
        VolumeCommand::Export(a) => export(client, a).await,
        VolumeCommand::Import(a) => import(client, a).await,
    }
}

fn key_values(list: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    for item in list {
        let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
        m.insert(k.to_owned(), json!(v));
    }
    Value::Object(m)
}

async fn create(client: &mut Client, a: CreateArgs) -> anyhow::Result<()> {
    check_args("volume create", &a.args, Arity::AtMost(1))?;
    let name = match (a.name, a.args.first()) {
        (Some(n), Some(arg)) if &n != arg => bail!(
            "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
        ),
        (Some(n), _) => n,
        (None, Some(arg)) => arg.clone(),
        (None, None) => String::new(),
    };
    let body = json!({
        "Name": name, "Driver": a.driver,
        "DriverOpts": key_values(&a.opt), "Labels": key_values(&a.label),
    });
    let v = client.post_json("/volumes/create", &body).await?;
    out(&format!(
        "{}\n",
        v.get("Name").and_then(Value::as_str).unwrap_or_default()
    ))
}

const TABLE: &str = "table {{.Driver}}\t{{.Name}}";

fn labels_text(v: &Value) -> String {
    v.get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// docker's volume row: every field a `--format` may use.
fn volume_row(v: &Value) -> Value {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    row(&[
        ("Availability", "N/A".to_owned()),
        ("Driver", s("Driver")),
        ("Group", "N/A".to_owned()),
        ("Labels", labels_text(v)),
        ("Links", "N/A".to_owned()),
        ("Mountpoint", s("Mountpoint")),
        ("Name", s("Name")),
        ("Scope", s("Scope")),
        ("Size", "N/A".to_owned()),
        ("Status", "N/A".to_owned()),
    ])
}

async fn ls(client: &mut Client, a: LsArgs) -> anyhow::Result<()> {
    check_args("volume ls", &a.args, Arity::None)?;
    let q = query(&[("filters", filters_json(&a.filter))]);
    let list = client.get_json(&format!("/volumes{q}")).await?;
    let mut volumes: Vec<Value> = list
        .get("Volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    volumes.sort_by_key(|v| v.get("Name").and_then(Value::as_str).map(str::to_owned));
    let source = a
        .format
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "table".to_owned());
    let format = match (source.as_str(), a.quiet) {
        (_, true) => "{{.Name}}".to_owned(),
        ("table", false) => TABLE.to_owned(),
        (f, false) => f.to_owned(),
    };
    let head = header(&[
        ("Driver", "DRIVER"),
        ("Name", "VOLUME NAME"),
        ("Labels", "LABELS"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Scope", "SCOPE"),
        ("Links", "LINKS"),
        ("Size", "SIZE"),
    ]);
    let rows: Vec<Value> = volumes.iter().map(volume_row).collect();
    out(&Format::new(&format)?.render(&head, &rows)?)
}

async fn inspect(client: &mut Client, a: InspectArgs) -> anyhow::Result<()> {
    check_args("volume inspect", &a.args, Arity::AtLeast(1))?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.args {
        match client
            .get_bytes(&format!("/volumes/{}", path_escape(name)))
            .await
        {
            Ok(raw) => found.push(raw),
            Err(e) if e.downcast_ref::<ApiError>().is_some() => errors.push(format!("{e}")),
            Err(e) => return Err(e),
        }
    }
    crate::cmd::inspect::finish(a.format.as_deref(), &found, errors)
}

async fn rm(client: &mut Client, a: RmArgs) -> anyhow::Result<()> {
    check_args("volume rm", &a.args, Arity::AtLeast(1))?;
    let q = query(&[("force", a.force.then(|| "1".to_owned()))]);
    let mut errors = Vec::new();
    for name in &a.args {
        match client
            .call_json(
                Method::DELETE,
                &format!("/volumes/{}{q}", path_escape(name)),
            )
            .await
        {
            Ok(_) => out(&format!("{name}\n"))?,
            Err(e) if e.downcast_ref::<ApiError>().is_some() => errors.push(format!("{e}")),
            Err(e) => return Err(e),
        }
    }
    StatusError::from_errors(errors)
}

const ANONYMOUS_WARNING: &str = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?";
const ALL_WARNING: &str = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?";

/// The text docker prints for a volume prune report.
fn prune_report(report: &Value) -> String {
    let mut text = String::new();
    let deleted = report
        .get("VolumesDeleted")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if !deleted.is_empty() {
        text.push_str("Deleted Volumes:\n");
        for name in deleted {
            text.push_str(name.as_str().unwrap_or_default());
            text.push('\n');
        }
        text.push('\n');
    }
    let space = report
        .get("SpaceReclaimed")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        crate::units::human_size(space as f64)
    ));
    text
}

async fn prune(client: &mut Client, a: PruneArgs) -> anyhow::Result<()> {
    check_args("volume prune", &a.args, Arity::None)?;
    let mut filters = a.filter.clone();
    if a.all {
        filters.push(("all".to_owned(), "true".to_owned()));
    }
    if !a.force
        && !crate::cmd::image::confirm(if a.all {
            ALL_WARNING
        } else {
            ANONYMOUS_WARNING
        })?
    {
        return Ok(());
    }
    let q = query(&[("filters", filters_json(&filters))]);
    let report = client
        .call_json(Method::POST, &format!("/volumes/prune{q}"))
        .await?;
    out(&prune_report(&report))
}

async fn export(client: &mut Client, a: ExportArgs) -> anyhow::Result<()> {
    check_args("volume export", &a.args, Arity::Exactly(1))?;
    let output = a.output.filter(|s| !s.is_empty());
    if output.is_none() && stdout_is_terminal() {
        bail!(
            "cowardly refusing to write a tar archive to a terminal. Use the -o flag or redirect"
        );
    }
    let name = path_escape(&a.args[0]);
    let resp = client
        .request(
            Method::GET,
            &format!("/volumes/{name}/export"),
            crate::client::empty_body(),
            None,
        )
        .await?;
    match output {
        None => crate::cmd::transfer::copy_body(resp.into_body(), &mut tokio::io::stdout()).await,
        Some(path) => {
            let mut file = tokio::fs::File::create(&path)
                .await
                .with_context(|| format!("create {path}"))?;
            crate::cmd::transfer::copy_body(resp.into_body(), &mut file).await?;
            file.sync_all().await?;
            Ok(())
        }
    }
}

async fn import(client: &mut Client, a: ImportArgs) -> anyhow::Result<()> {
    check_args("volume import", &a.args, Arity::Exactly(1))?;
    let body = match a.input.as_deref().filter(|s| !s.is_empty()) {
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("open {path}"))?;
            crate::cmd::transfer::reader_body(file)
        }
        None => {
            if stdin_is_terminal() {
                bail!("requested import from stdin, but stdin is a terminal");
            }
            crate::cmd::transfer::reader_body(tokio::io::stdin())
        }
    };
    let name = path_escape(&a.args[0]);
    client
        .request(
            Method::PUT,
            &format!("/volumes/{name}/import"),
            body,
            Some("application/x-tar"),
        )
        .await?;
    out(&format!("{}\n", a.args[0]))
}

/// `--mount` keys `volume-opt=k=v`, `volume-label=k=v` and `volume-driver=name` into the
/// mount's `VolumeOptions`.
pub(crate) fn mount_volume_option(
    volume_opts: &mut serde_json::Map<String, Value>,
    key: &str,
    value: &str,
) {
    let driver = volume_opts
        .entry("DriverConfig")
        .or_insert_with(|| json!({}));
    match key {
        "volume-driver" => driver["Name"] = json!(value),
        "volume-opt" => {
            let (k, v) = value.split_once('=').unwrap_or((value, ""));
            if driver.get("Options").is_none() {
                driver["Options"] = json!({});
            }
            driver["Options"][k] = json!(v);
        }
        _ => {
            let (k, v) = value.split_once('=').unwrap_or((value, ""));
            let labels = volume_opts.entry("Labels").or_insert_with(|| json!({}));
            labels[k] = json!(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_reports_as_docker() {
        assert_eq!(
            prune_report(&json!({"VolumesDeleted": ["n1", "ab"], "SpaceReclaimed": 0})),
            "Deleted Volumes:\nn1\nab\n\nTotal reclaimed space: 0B\n"
        );
        assert_eq!(
            prune_report(&json!({"VolumesDeleted": null, "SpaceReclaimed": 0})),
            "Total reclaimed space: 0B\n"
        );
    }

    #[test]
    fn rows_have_dockers_fields() {
        let v = json!({"Driver": "local", "Name": "n1", "Labels": {"a": "b"}, "Scope": "local",
            "Mountpoint": "/x"});
        let r = volume_row(&v);
        assert_eq!(r["Labels"], "a=b");
        assert_eq!(r["Links"], "N/A");
    }
}
