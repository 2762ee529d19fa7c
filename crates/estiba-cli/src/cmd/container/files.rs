//! The filesystem and image commands on a container: `cp`, `diff`, `export`, `commit`, and
//! `update` (the other container command that changes a container in place).

use std::io::IsTerminal as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use futures_util::TryStreamExt as _;
use http_body_util::BodyExt as _;
use hyper::Method;
use serde_json::{json, Value};

use super::args::{CommitArgs, CpArgs, ExportArgs, NamesArgs, UpdateArgs};
use super::create::{bytes_flag, int_flag, nano_cpus, FlagError};
use super::run::flag_error;
use crate::args::{check_args, Arity};
use crate::client::{path_escape, query, ApiError, Client};
use crate::cmd::transfer::{copy_body, reader_body, temp_path};
use crate::output::{out, stdout_is_terminal};
use crate::units::human_size;
use crate::StatusError;

/// Go's `os.ModeDir` in the path-stat header's `mode`.
const GO_MODE_DIR: u64 = 1 << 31;
/// Longest path-stat header accepted from the daemon.
const MAX_STAT_HEADER_BYTES: usize = 64 * 1024;
/// Pipe between the tar writer thread and the upload.
const PIPE_BYTES: usize = 256 * 1024;

/// `docker diff`: one line per change, `C`, `A` or `D` and the path.
pub(crate) async fn diff(client: &mut Client, a: NamesArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::Exactly(1))?;
    let changes = client
        .get_json(&format!("/containers/{}/changes", path_escape(&a.args[0])))
        .await?;
    let mut text = String::new();
    for c in changes.as_array().map(Vec::as_slice).unwrap_or_default() {
        let kind = match c.get("Kind").and_then(Value::as_i64) {
            Some(0) => 'C',
            Some(1) => 'A',
            Some(2) => 'D',
            _ => '?',
        };
        let path = c.get("Path").and_then(Value::as_str).unwrap_or_default();
        text.push_str(&format!("{kind} {path}\n"));
    }
    out(&text)
}

/// `docker export [-o file] CONTAINER`.
pub(crate) async fn export(client: &mut Client, a: ExportArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::Exactly(1))?;
    let output = a.output.clone().filter(|s| !s.is_empty());
    if output.is_none() && stdout_is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let resp = client
        .request(
            Method::GET,
            &format!("/containers/{}/export", path_escape(&a.args[0])),
            crate::client::empty_body(),
            None,
        )
        .await?;
    match output {
        None => copy_body(resp.into_body(), &mut tokio::io::stdout()).await,
        Some(target) => {
            let target = PathBuf::from(target);
            let tmp = temp_path(&target);
            let result = async {
                let mut file = tokio::fs::File::create(&tmp)
                    .await
                    .with_context(|| format!("failed to export container: {}", tmp.display()))?;
                copy_body(resp.into_body(), &mut file).await?;
                file.sync_all().await?;
                tokio::fs::rename(&tmp, &target)
                    .await
                    .with_context(|| format!("failed to export container: {}", target.display()))
            }
            .await;
            if result.is_err() {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            result
        }
    }
}

/// Splits `name[:tag]` as the docker CLI does before `/commit` (the tag is after the last `:`
/// that follows the last `/`).
fn split_repo_tag(reference: &str) -> (String, String) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (
            reference[..slash + i].to_owned(),
            reference[slash + i + 1..].to_owned(),
        ),
        None => (reference.to_owned(), String::new()),
    }
}

/// `docker commit [-a] [-c]... [-m] [-p] CONTAINER [REPOSITORY[:TAG]]`: prints the image ID.
pub(crate) async fn commit(client: &mut Client, a: CommitArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    if a.args.len() > 2 {
        check_args(cmd, &a.args, Arity::AtMost(2))?;
    }
    let (repo, tag) = a.args.get(1).map(|r| split_repo_tag(r)).unwrap_or_default();
    if repo.contains('@') {
        bail!("refusing to create a tag with a digest reference");
    }
    let mut pairs = vec![
        ("container", Some(a.args[0].clone())),
        ("repo", Some(repo)),
        ("tag", Some(tag)),
        ("comment", a.message.clone()),
        ("author", a.author.clone()),
        (
            "pause",
            Some(if a.pause.unwrap_or(true) { "1" } else { "0" }.to_owned()),
        ),
    ];
    for c in &a.change {
        pairs.push(("changes", Some(c.clone())));
    }
    let v = client
        .post_json(&format!("/commit{}", query(&pairs)), &json!({}))
        .await?;
    let id = v.get("Id").and_then(Value::as_str).unwrap_or_default();
    out(&format!("{id}\n"))
}

/// The body of `/containers/{id}/update` from the flags; `None` when no flag was given.
fn update_body(a: &UpdateArgs) -> Result<Option<Value>, FlagError> {
    let mut body = serde_json::Map::new();
    let mut set = |k: &str, v: Value| {
        body.insert(k.to_owned(), v);
    };
    if let Some(v) = int_flag(&a.blkio_weight, "--blkio-weight")? {
        set("BlkioWeight", json!(v));
    }
    if let Some(v) = int_flag(&a.cpu_period, "--cpu-period")? {
        set("CpuPeriod", json!(v));
    }
    if let Some(v) = int_flag(&a.cpu_quota, "--cpu-quota")? {
        set("CpuQuota", json!(v));
    }
    if let Some(v) = int_flag(&a.cpu_shares, "--cpu-shares")? {
        set("CpuShares", json!(v));
    }
    if let Some(c) = &a.cpus {
        let n = nano_cpus(c).map_err(|e| FlagError::invalid(c, "--cpus", e))?;
        set("NanoCpus", json!(n));
    }
    if let Some(v) = &a.cpuset_cpus {
        set("CpusetCpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set("CpusetMems", json!(v));
    }
    if a.memory.is_some() {
        set("Memory", json!(bytes_flag(&a.memory, "-m, --memory")?));
    }
    if a.memory_reservation.is_some() {
        let v = bytes_flag(&a.memory_reservation, "--memory-reservation")?;
        set("MemoryReservation", json!(v));
    }
    if a.memory_swap.is_some() {
        set(
            "MemorySwap",
            json!(bytes_flag(&a.memory_swap, "--memory-swap")?),
        );
    }
    if let Some(v) = int_flag(&a.pids_limit, "--pids-limit")? {
        set("PidsLimit", json!(v));
    }
    if let Some(r) = &a.restart {
        let (name, count) = match r.split_once(':') {
            Some((n, c)) => (
                n.to_owned(),
                c.parse::<i64>()
                    .map_err(|_| FlagError::Other(format!("invalid restart policy format: {r}")))?,
            ),
            None => (r.clone(), 0),
        };
        set(
            "RestartPolicy",
            json!({"Name": name, "MaximumRetryCount": count}),
        );
    }
    Ok((!body.is_empty()).then_some(Value::Object(body)))
}

/// `docker update [flags] CONTAINER...`: prints each name updated.
pub(crate) async fn update(client: &mut Client, a: UpdateArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::AtLeast(1))?;
    let Some(body) = update_body(&a).map_err(|e| flag_error(cmd, e))? else {
        bail!("you must provide one or more flags when using this command");
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for name in &a.args {
        let path = format!("/containers/{}/update", path_escape(name));
        match client.post_json(&path, &body).await {
            Ok(resp) => {
                out(&format!("{name}\n"))?;
                let listed = resp.get("Warnings").and_then(|w| w.as_array());
                let texts = listed.into_iter().flatten().filter_map(|w| w.as_str());
                warnings.extend(texts.map(str::to_owned));
            }
            Err(e) if e.downcast_ref::<ApiError>().is_some() => errors.push(format!("{e:#}")),
            Err(e) => return Err(e),
        }
    }
    // docker prints the daemon's warnings after the names, on stdout, without a prefix.
    if !warnings.is_empty() {
        out(&format!("{}\n", warnings.join("\n")))?;
    }
    StatusError::from_errors(errors)
}

/// One side of `docker cp`.
#[derive(Debug, PartialEq, Eq)]
enum CpEnd {
    Local(String),
    Container(String, String),
}

/// docker's `splitCpArg`: an absolute or `./` path is local, `name:path` is in a container.
fn split_cp_arg(arg: &str) -> CpEnd {
    if arg.starts_with('/') || arg.starts_with("./") || arg.starts_with("../") || arg == "." {
        return CpEnd::Local(arg.to_owned());
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => CpEnd::Container(c.to_owned(), p.to_owned()),
        _ => CpEnd::Local(arg.to_owned()),
    }
}

/// What the daemon says of a path in a container (`X-Docker-Container-Path-Stat`).
#[derive(Debug, Clone)]
struct PathStat {
    name: String,
    is_dir: bool,
}

fn parse_stat(header: Option<&hyper::header::HeaderValue>) -> anyhow::Result<PathStat> {
    let raw = header
        .map(|h| h.as_bytes())
        .filter(|b| b.len() <= MAX_STAT_HEADER_BYTES)
        .context("the daemon sent no path stat")?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .context("decoding the path stat")?;
    let v: Value = serde_json::from_slice(&json).context("decoding the path stat")?;
    Ok(PathStat {
        name: v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        is_dir: v.get("mode").and_then(Value::as_u64).unwrap_or(0) & GO_MODE_DIR != 0,
    })
}

/// The last component of a path as docker names it (`/a/b/` -> `b`, `/a/.` -> `.`).
fn base_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_owned();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
}

/// The directory a path is in (`a` -> `.`, `/a` -> `/`).
fn dir_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => "/".to_owned(),
        Some(i) => trimmed[..i].to_owned(),
        None => ".".to_owned(),
    }
}

/// `docker cp`.
pub(crate) async fn cp(client: &mut Client, a: CpArgs, cmd: &str) -> anyhow::Result<()> {
    check_args(cmd, &a.args, Arity::Exactly(2))?;
    match (split_cp_arg(&a.args[0]), split_cp_arg(&a.args[1])) {
        (CpEnd::Container(c, src), CpEnd::Local(dst)) => {
            if src.is_empty() {
                bail!("source can not be empty");
            }
            copy_from_container(client, &a, &c, &src, &dst).await
        }
        (CpEnd::Local(src), CpEnd::Container(c, dst)) => {
            if dst.is_empty() {
                bail!("destination can not be empty");
            }
            copy_to_container(client, &a, &src, &c, &dst).await
        }
        (CpEnd::Container(..), CpEnd::Container(..)) => {
            bail!("copying between containers is not supported")
        }
        (CpEnd::Local(..), CpEnd::Local(..)) => {
            bail!("must specify at least one container source")
        }
    }
}

fn announce(a: &CpArgs, bytes: u64, dst: &str) {
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!("Successfully copied {} to {dst}", human_size(bytes as f64));
    }
}

async fn copy_from_container(
    client: &mut Client,
    a: &CpArgs,
    container: &str,
    src: &str,
    dst: &str,
) -> anyhow::Result<()> {
    let q = query(&[("path", Some(src.to_owned()))]);
    let resp = client
        .request(
            Method::GET,
            &format!("/containers/{}/archive{q}", path_escape(container)),
            crate::client::empty_body(),
            None,
        )
        .await?;
    let stat = parse_stat(resp.headers().get("x-docker-container-path-stat"))?;
    if dst == "-" {
        return copy_body(resp.into_body(), &mut tokio::io::stdout()).await;
    }
    let contents_only = stat.is_dir && (src.ends_with("/.") || src == ".");
    let (into, rebase) = match std::fs::metadata(dst) {
        Ok(m) if m.is_dir() => {
            let rebase = contents_only.then(String::new);
            (PathBuf::from(dst), rebase)
        }
        Ok(_) if stat.is_dir => {
            bail!("cannot copy directory: destination \"{dst}\" is not a directory")
        }
        Ok(_) => (PathBuf::from(dir_name(dst)), Some(base_name(dst))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dst.ends_with('/') && !stat.is_dir {
                bail!("destination \"{dst}\" must be a directory");
            }
            let parent = dir_name(dst);
            if !Path::new(&parent).is_dir() {
                bail!("destination directory \"{parent}\" does not exist");
            }
            (PathBuf::from(parent), Some(base_name(dst)))
        }
        Err(e) => bail!("{dst}: {e}"),
    };
    let reader = tokio_util::io::StreamReader::new(
        resp.into_body()
            .into_data_stream()
            .map_err(std::io::Error::other),
    );
    let sync = tokio_util::io::SyncIoBridge::new(reader);
    let (archive, src_base) = (a.archive, stat.name.clone());
    let bytes = tokio::task::spawn_blocking(move || {
        extract(sync, &into, &src_base, rebase.as_deref(), archive)
    })
    .await
    .context("copy task failed")??;
    announce(a, bytes, dst);
    Ok(())
}

/// Rewrites an archive path whose first component is `from` to start with `to` ("" drops it);
/// refuses absolute paths and `..`.
fn rebased(path: &Path, from: &str, to: Option<&str>) -> anyhow::Result<PathBuf> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_os_string()),
            Component::CurDir => {}
            _ => bail!("refusing archive entry {}", path.display()),
        }
    }
    if let (Some(to), Some(first)) = (to, parts.first()) {
        if first == from {
            if to.is_empty() {
                parts.remove(0);
            } else {
                parts[0] = to.into();
            }
        }
    }
    Ok(parts.iter().collect())
}

/// Refuses a target whose parent inside `root` is a symlink, so an archive cannot plant a link
/// and then write through it.
fn check_no_symlink_parents(root: &Path, rel: &Path) -> anyhow::Result<()> {
    let mut at = root.to_path_buf();
    let parents: Vec<_> = rel.components().collect();
    for c in parents.iter().take(parents.len().saturating_sub(1)) {
        at.push(c);
        if let Ok(m) = std::fs::symlink_metadata(&at) {
            if m.file_type().is_symlink() {
                bail!("refusing to write through symlink {}", at.display());
            }
        }
    }
    Ok(())
}

/// Unpacks a `docker cp` archive into `into`, renaming its top entry; returns the bytes copied.
fn extract(
    reader: impl std::io::Read,
    into: &Path,
    src_base: &str,
    rebase: Option<&str>,
    preserve_owners: bool,
) -> anyhow::Result<u64> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(preserve_owners);
    archive.set_overwrite(true);
    let mut total = 0u64;
    for entry in archive.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let rel = rebased(&entry.path()?, src_base, rebase)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        check_no_symlink_parents(into, &rel)?;
        total += entry.header().size().unwrap_or(0);
        let target = into.join(&rel);
        if let Ok(m) = std::fs::symlink_metadata(&target) {
            if m.is_dir() && !entry.header().entry_type().is_dir() {
                bail!(
                    "cannot overwrite directory \"{}\" with non-directory",
                    target.display()
                );
            }
        }
        entry
            .unpack(&target)
            .with_context(|| format!("extracting {}", target.display()))?;
    }
    Ok(total)
}

async fn copy_to_container(
    client: &mut Client,
    a: &CpArgs,
    src: &str,
    container: &str,
    dst: &str,
) -> anyhow::Result<()> {
    let escaped = path_escape(container);
    if src == "-" {
        let body = reader_body(tokio::io::stdin());
        put_archive(client, &escaped, dst, a.archive, body).await?;
        return Ok(());
    }
    let meta = if a.follow_link {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .map_err(|e| anyhow::anyhow!("lstat {src}: {}", crate::cmd::transfer::go_io_error(&e)))?;
    let contents_only = meta.is_dir() && (src.ends_with("/.") || src == ".");
    let head = client
        .request(
            Method::HEAD,
            &format!(
                "/containers/{escaped}/archive{}",
                query(&[("path", Some(dst.to_owned()))])
            ),
            crate::client::empty_body(),
            None,
        )
        .await;
    let (dir, top_name) = match head {
        Ok(resp) => {
            let stat = parse_stat(resp.headers().get("x-docker-container-path-stat"))?;
            if stat.is_dir {
                let top = if contents_only {
                    String::new()
                } else {
                    base_name(src)
                };
                (dst.to_owned(), top)
            } else if meta.is_dir() {
                bail!("cannot copy directory: destination \"{container}:{dst}\" is not a directory")
            } else {
                (dir_name(dst), base_name(dst))
            }
        }
        Err(e)
            if e.downcast_ref::<ApiError>()
                .is_some_and(|e| e.is_not_found()) =>
        {
            if dst.ends_with('/') && !meta.is_dir() {
                bail!("destination \"{container}:{dst}\" must be a directory");
            }
            (dir_name(dst), base_name(dst))
        }
        Err(e) => return Err(e),
    };
    let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let sync = tokio_util::io::SyncIoBridge::new(writer);
    let (src_path, follow) = (PathBuf::from(src), a.follow_link);
    let writer_task = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let mut builder = tar::Builder::new(sync);
        builder.follow_symlinks(false);
        let bytes = append_tree(&mut builder, &src_path, &top_name, follow)?;
        let mut sync = builder.into_inner().context("writing the archive")?;
        std::io::Write::flush(&mut sync)?;
        sync.shutdown()?;
        Ok(bytes)
    });
    let uploaded = put_archive(client, &escaped, &dir, a.archive, reader_body(reader)).await;
    let bytes = writer_task.await.context("copy task failed")?;
    uploaded?;
    let bytes = bytes?;
    announce(a, bytes, &format!("{container}:{dst}"));
    Ok(())
}

/// `PUT /containers/{id}/archive?path=dir`.
async fn put_archive(
    client: &mut Client,
    escaped_container: &str,
    dir: &str,
    copy_uid_gid: bool,
    body: crate::client::ReqBody,
) -> anyhow::Result<()> {
    let q = query(&[
        ("path", Some(dir.to_owned())),
        ("noOverwriteDirNonDir", Some("true".to_owned())),
        ("copyUIDGID", copy_uid_gid.then(|| "true".to_owned())),
    ]);
    let path = format!("/containers/{escaped_container}/archive{q}");
    client
        .request(Method::PUT, &path, body, Some("application/x-tar"))
        .await?;
    Ok(())
}

/// Appends `src` as `name` (its contents at the top when `name` is empty); returns the bytes.
fn append_tree<W: std::io::Write>(
    builder: &mut tar::Builder<W>,
    src: &Path,
    name: &str,
    follow_top: bool,
) -> anyhow::Result<u64> {
    let meta = if follow_top {
        std::fs::metadata(src)?
    } else {
        std::fs::symlink_metadata(src)?
    };
    if !meta.is_dir() {
        if meta.is_file() {
            let mut f = std::fs::File::open(src)?;
            builder.append_file(name, &mut f)?;
        } else {
            builder.append_path_with_name(src, name)?;
        }
        return Ok(meta.len());
    }
    let mut total = 0;
    let mut stack = vec![(src.to_path_buf(), PathBuf::from(name))];
    while let Some((dir, rel)) = stack.pop() {
        if !rel.as_os_str().is_empty() {
            builder.append_dir(&rel, &dir)?;
        }
        let mut children: Vec<_> = std::fs::read_dir(&dir)?
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(|e| e.path())
            .collect();
        children.sort();
        for child in children {
            let child_rel = rel.join(child.file_name().unwrap_or_default());
            let m = std::fs::symlink_metadata(&child)?;
            if m.is_dir() {
                stack.push((child, child_rel));
            } else {
                total += m.len();
                builder.append_path_with_name(&child, &child_rel)?;
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args_split_like_docker() {
        let cases = [
            ("/tmp/x", CpEnd::Local("/tmp/x".into())),
            ("./a:b", CpEnd::Local("./a:b".into())),
            ("c1:/etc", CpEnd::Container("c1".into(), "/etc".into())),
            ("file", CpEnd::Local("file".into())),
            ("-", CpEnd::Local("-".into())),
        ];
        for (arg, want) in cases {
            assert_eq!(split_cp_arg(arg), want, "{arg}");
        }
    }

    #[test]
    fn repo_and_tag() {
        let cases = [
            ("app", ("app", "")),
            ("app:1", ("app", "1")),
            ("127.0.0.1:5000/app", ("127.0.0.1:5000/app", "")),
            ("127.0.0.1:5000/app:2", ("127.0.0.1:5000/app", "2")),
        ];
        for (r, (repo, tag)) in cases {
            assert_eq!(split_repo_tag(r), (repo.to_owned(), tag.to_owned()), "{r}");
        }
    }

    #[test]
    fn rebase_renames_the_top_entry_and_refuses_escapes() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            rebased(&p("etc/hosts"), "etc", Some("x")).ok(),
            Some(p("x/hosts"))
        );
        assert_eq!(
            rebased(&p("etc/hosts"), "etc", Some("")).ok(),
            Some(p("hosts"))
        );
        assert_eq!(rebased(&p("etc"), "etc", None).ok(), Some(p("etc")));
        assert!(rebased(&p("../x"), "etc", None).is_err());
        assert!(rebased(&p("/x"), "etc", None).is_err());
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(dir_name("a"), ".");
        assert_eq!(dir_name("/a"), "/");
    }
}
