//! `estiba build`: the context directory (filtered by `.dockerignore`) or a Dockerfile on
//! stdin, sent as a tar stream to `POST /build`; the progress printed as docker prints it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;
use hyper::Method;

use crate::args::{check_args, Arity};
use crate::client::{query, Client};
use crate::cmd::transfer::{display_json_messages, go_io_error, reader_body};
use crate::dockerignore::Matcher;

/// Largest Dockerfile read from stdin.
const MAX_STDIN_DOCKERFILE_BYTES: u64 = 4 << 20;
/// Largest `.dockerignore` read.
const MAX_DOCKERIGNORE_BYTES: u64 = 1 << 20;

#[derive(Args, Debug)]
pub(crate) struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", value_name = "list")]
    pub(crate) tags: Vec<String>,
    /// Name of the Dockerfile (Default is "PATH/Dockerfile")
    #[arg(short = 'f', long = "file", value_name = "string")]
    pub(crate) file: Option<String>,
    /// Set the target build stage to build.
    #[arg(long = "target", value_name = "string")]
    pub(crate) target: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "list")]
    pub(crate) build_args: Vec<String>,
    /// Set metadata for an image
    #[arg(long = "label", value_name = "list")]
    pub(crate) labels: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub(crate) no_cache: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    pub(crate) force_rm: bool,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long = "network", value_name = "string")]
    pub(crate) network: Option<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from", value_name = "strings")]
    pub(crate) cache_from: Vec<String>,
    /// Secret to expose to the build (format: "id=mysecret[,src=/local/secret]" or
    /// "id=mysecret,env=VAR")
    #[arg(long = "secret", value_name = "stringArray")]
    pub(crate) secrets: Vec<String>,
    #[arg(hide = true, value_name = "PATH | URL | -")]
    pub(crate) args: Vec<String>,
}

/// `K=V` pairs as a JSON object; a bare `K` takes the client's environment (or is dropped).
fn pairs_json(items: &[String], from_env: bool) -> String {
    let mut map = serde_json::Map::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) => {
                map.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
            None if from_env => {
                if let Ok(v) = std::env::var(item) {
                    map.insert(item.clone(), serde_json::Value::String(v));
                }
            }
            None => {
                map.insert(item.clone(), serde_json::Value::String(String::new()));
            }
        }
    }
    serde_json::Value::Object(map).to_string()
}

/// `--build-arg`s as JSON, with SOURCE_DATE_EPOCH from the environment unless given
/// (BuildKit's convention for reproducible builds).
fn build_args_json(items: &[String]) -> String {
    const EPOCH: &str = "SOURCE_DATE_EPOCH";
    let mut items = items.to_vec();
    let given = items
        .iter()
        .any(|i| i.split_once('=').map_or(i.as_str(), |(k, _)| k) == EPOCH);
    if !given && std::env::var_os(EPOCH).is_some() {
        items.push(EPOCH.to_string());
    }
    pairs_json(&items, true)
}

/// `estiba build [OPTIONS] PATH | -`.
pub(crate) async fn build(client: &mut Client, a: BuildArgs) -> anyhow::Result<()> {
    check_args("build", &a.args, Arity::Exactly(1))?;
    if !a.secrets.is_empty() {
        client.add_header("x-estiba-build-secrets", secrets_header(&a.secrets)?);
    }
    let source = a.args[0].clone();
    let (tar, dockerfile) = if source == "-" {
        let mut text = Vec::new();
        std::io::stdin()
            .take(MAX_STDIN_DOCKERFILE_BYTES)
            .read_to_end(&mut text)
            .context("reading the Dockerfile from stdin")?;
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "Dockerfile", &text[..])?;
        (Source::Memory(b.into_inner()?), "Dockerfile".to_string())
    } else {
        let dir = PathBuf::from(&source);
        if !dir.is_dir() {
            bail!("unable to prepare context: path {source:?} not found");
        }
        let (extra, name) = match &a.file {
            None => (None, "Dockerfile".to_string()),
            Some(f) => dockerfile_in(&dir, Path::new(f))?,
        };
        (Source::Dir(dir, extra), name)
    };
    let (mut writer, reader) = UnixStream::pair().context("creating the context pipe")?;
    let producer = std::thread::spawn(move || -> anyhow::Result<()> {
        match tar {
            Source::Memory(bytes) => writer.write_all(&bytes).map_err(anyhow::Error::from),
            Source::Dir(dir, extra) => write_context(&dir, extra, &mut writer),
        }
    });
    reader.set_nonblocking(true)?;
    let reader = tokio::net::UnixStream::from_std(reader)?;
    let q = query(&[
        ("dockerfile", Some(dockerfile)),
        ("target", a.target.clone()),
        ("buildargs", Some(build_args_json(&a.build_args))),
        ("labels", Some(pairs_json(&a.labels, false))),
        ("nocache", a.no_cache.then(|| "1".to_string())),
        ("q", a.quiet.then(|| "1".to_string())),
        ("rm", Some("1".to_string())),
        ("forcerm", a.force_rm.then(|| "1".to_string())),
        ("networkmode", a.network.clone()),
        (
            "cachefrom",
            (!a.cache_from.is_empty())
                .then(|| serde_json::Value::from(a.cache_from.clone()).to_string()),
        ),
    ]);
    let mut path = format!("/build{q}");
    for t in &a.tags {
        path.push_str(&format!("&t={}", url_escape(t)));
    }
    let resp = client
        .request(
            Method::POST,
            &path,
            reader_body(reader),
            Some("application/x-tar"),
        )
        .await;
    let sent = producer.join();
    let resp = resp?;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.context("sending the build context")),
        Err(_) => bail!("sending the build context failed"),
    }
    display_json_messages(resp.into_body()).await
}

/// Largest secret file read.
const MAX_SECRET_BYTES: u64 = 512 << 10;

/// `--secret` values as the daemon's `X-Estiba-Build-Secrets` header: base64 of a JSON object
/// from ID to the base64 of the value (the classic protocol has no session to carry them).
fn secrets_header(specs: &[String]) -> anyhow::Result<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut map = serde_json::Map::new();
    for spec in specs {
        let (mut id, mut src, mut env) = (None, None, None);
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(v.to_string()),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", "file" | "env")) => {}
                _ => bail!("invalid secret {spec:?}: unexpected field {field:?}"),
            }
        }
        let id = match (id, &src, &env) {
            (Some(id), _, _) => id,
            (None, Some(s), _) => Path::new(s)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            (None, None, Some(e)) => e.clone(),
            (None, None, None) => bail!("invalid secret {spec:?}: id required"),
        };
        let value = match (src, env) {
            (Some(path), _) => {
                let mut v = Vec::new();
                std::fs::File::open(&path)
                    .with_context(|| format!("failed to open secret {id}: {path}"))?
                    .take(MAX_SECRET_BYTES + 1)
                    .read_to_end(&mut v)?;
                if v.len() as u64 > MAX_SECRET_BYTES {
                    bail!("secret {id} is too large");
                }
                v
            }
            (None, Some(var)) => std::env::var(&var)
                .with_context(|| format!("secret {id}: environment variable {var} is not set"))?
                .into_bytes(),
            (None, None) => match std::env::var(&id) {
                Ok(v) => v.into_bytes(),
                Err(_) => bail!("secret {id}: no src, and no environment variable {id}"),
            },
        };
        map.insert(id, serde_json::Value::String(b64.encode(value)));
    }
    Ok(b64.encode(serde_json::Value::Object(map).to_string()))
}

enum Source {
    Memory(Vec<u8>),
    /// The context dir and a Dockerfile from outside it (name in the tar, content).
    Dir(PathBuf, Option<ExtraFile>),
}

/// A file added to the context tar: its name and content.
type ExtraFile = (String, Vec<u8>);

/// The Dockerfile's name inside the context; one outside it is sent under a private name.
fn dockerfile_in(dir: &Path, file: &Path) -> anyhow::Result<(Option<ExtraFile>, String)> {
    let full = std::fs::canonicalize(file).map_err(|e| {
        anyhow::anyhow!(
            "unable to prepare context: {}: {}",
            file.display(),
            go_io_error(&e)
        )
    })?;
    let root = std::fs::canonicalize(dir)?;
    if let Ok(rel) = full.strip_prefix(&root) {
        return Ok((None, rel.to_string_lossy().into_owned()));
    }
    let text = std::fs::read(&full)?;
    let name = format!(".dockerfile.{:x}", std::process::id());
    Ok((Some((name.clone(), text)), name))
}

/// Writes the context dir as a tar, skipping what `.dockerignore` excludes (the Dockerfile and
/// `.dockerignore` itself are always sent, as docker does).
fn write_context(dir: &Path, extra: Option<ExtraFile>, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut ignore = String::new();
    if let Ok(f) = std::fs::File::open(dir.join(".dockerignore")) {
        f.take(MAX_DOCKERIGNORE_BYTES).read_to_string(&mut ignore)?;
    }
    let matcher = Matcher::parse(&ignore);
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(dir.join(&rel))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            let r = rel.join(&name);
            let shown = r.to_string_lossy().into_owned();
            let keep =
                !matcher.excluded(&shown) || shown == "Dockerfile" || shown == ".dockerignore";
            let path = dir.join(&r);
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                // An excluded directory may still hold an exception.
                if keep || matcher.has_exceptions() {
                    if keep {
                        tar.append_path_with_name(&path, &r)?;
                    }
                    stack.push(r);
                }
            } else if keep {
                tar.append_path_with_name(&path, &r)?;
            }
        }
    }
    if let Some((name, text)) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, &text[..])?;
    }
    tar.finish()?;
    Ok(())
}

fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn decode(header: &str) -> serde_json::Value {
        let b64 = base64::engine::general_purpose::STANDARD;
        let json = b64.decode(header).unwrap();
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&json).unwrap();
        let plain: serde_json::Map<String, serde_json::Value> = map
            .into_iter()
            .map(|(k, v)| {
                let bytes = b64.decode(v.as_str().unwrap()).unwrap();
                (k, String::from_utf8(bytes).unwrap().into())
            })
            .collect();
        plain.into()
    }

    #[test]
    fn secrets_from_files_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("npmrc");
        std::fs::write(&file, "token=abc").unwrap();
        let var = format!("ESTIBA_TEST_SECRET_{}", std::process::id());
        std::env::set_var(&var, "from-env");
        let specs = vec![
            format!("id=npm,src={}", file.display()),
            format!("src={}", file.display()),
            format!("id=e,env={var}"),
        ];
        let got = decode(&secrets_header(&specs).unwrap());
        assert_eq!(
            got,
            serde_json::json!({"npm": "token=abc", "npmrc": "token=abc", "e": "from-env"})
        );
        for bad in [
            "colour=red".to_string(),
            "id=x,src=/nonexistent/secret".to_string(),
            "id=ESTIBA_UNSET_SECRET_VAR".to_string(),
        ] {
            assert!(secrets_header(std::slice::from_ref(&bad)).is_err(), "{bad}");
        }
    }
}
