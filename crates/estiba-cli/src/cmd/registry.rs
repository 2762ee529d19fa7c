//! `pull`, `push`, `login`, `logout`: registry commands, with credentials kept in
//! `$DOCKER_CONFIG/config.json` (`auths`, base64 `user:pass`) or in the credential helpers it
//! names (`credsStore`, `credHelpers`), exactly as docker keeps them.

mod credentials;

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use base64::Engine as _;
use hyper::Method;
use serde_json::{json, Value};

use crate::args::{LoginArgs, LogoutArgs, PullArgs, PushArgs};
use crate::client::{empty_body, path_escape, query, Client};
use crate::cmd::transfer::display_transfer;
use crate::output::out;

/// config.json files larger than this are refused.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

fn config_path() -> PathBuf {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".docker")
        });
    dir.join("config.json")
}

fn read_config() -> anyhow::Result<Value> {
    let path = config_path();
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(json!({})),
        Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
    };
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES)
        .read_to_string(&mut text)
        .with_context(|| format!("read {}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))
}

fn write_config(v: &Value) -> anyhow::Result<()> {
    let path = config_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(v)?;
    std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))
}

/// The registry host of an image reference ("docker.io" when none).
fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "docker.io".to_string(),
    }
}

/// X-Registry-Auth for `server` from config.json or its credential helper, if logged in.
fn registry_auth(server: &str) -> anyhow::Result<Option<String>> {
    let config = read_config()?;
    let Some(login) = credentials::get(&config, server)? else {
        return Ok(None);
    };
    let body = json!({
        "username": login.username,
        "password": login.secret,
        "serveraddress": server,
    });
    Ok(Some(
        base64::engine::general_purpose::URL_SAFE.encode(body.to_string()),
    ))
}

/// Splits "name[:tag|@digest]" into the fromImage/tag pair the API takes.
fn split_reference(image: &str) -> (String, String) {
    if let Some((n, d)) = image.split_once('@') {
        return (n.to_string(), d.to_string());
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (
            image[..slash + i].to_string(),
            image[slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

pub(crate) async fn pull(client: &mut Client, a: PullArgs) -> anyhow::Result<()> {
    let (name, tag) = split_reference(&a.image);
    client.set_registry_auth(registry_auth(&registry_of(&a.image))?);
    let q = query(&[
        ("fromImage", Some(name)),
        ("tag", Some(tag)),
        ("platform", a.platform.clone()),
    ]);
    let resp = client
        .request(
            Method::POST,
            &format!("/images/create{q}"),
            empty_body(),
            None,
        )
        .await?;
    display_transfer(resp.into_body()).await?;
    if !a.quiet {
        out(&format!("{}\n", full_name(&a.image)))?;
    }
    Ok(())
}

/// docker prints the canonical name after a pull ("docker.io/library/busybox:latest").
fn full_name(image: &str) -> String {
    let with_tag =
        if image.contains('@') || image.rsplit('/').next().is_some_and(|l| l.contains(':')) {
            image.to_string()
        } else {
            format!("{image}:latest")
        };
    if registry_of(image) != "docker.io" || with_tag.starts_with("docker.io/") {
        with_tag
    } else if with_tag.contains('/') {
        format!("docker.io/{with_tag}")
    } else {
        format!("docker.io/library/{with_tag}")
    }
}

pub(crate) async fn push(client: &mut Client, a: PushArgs) -> anyhow::Result<()> {
    let (name, tag) = split_reference(&a.image);
    client.set_registry_auth(registry_auth(&registry_of(&a.image))?);
    let q = query(&[("tag", Some(tag))]);
    let resp = client
        .request(
            Method::POST,
            &format!("/images/{}/push{q}", path_escape(&name)),
            empty_body(),
            None,
        )
        .await?;
    display_transfer(resp.into_body()).await
}

pub(crate) async fn login(client: &mut Client, a: LoginArgs) -> anyhow::Result<()> {
    let Some(server) = a.server.clone() else {
        bail!("logging in to Docker Hub is not supported: give a registry address");
    };
    let Some(user) = a.username.clone().filter(|u| !u.is_empty()) else {
        bail!("Must provide --username with --password-stdin or --password");
    };
    let password = match (a.password.clone(), a.password_stdin) {
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut p)
                .context("read the password from stdin")?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (None, false) => bail!("Must provide --password or --password-stdin"),
    };
    let body = json!({ "username": user, "password": password, "serveraddress": server });
    let answer = client.post_json("/auth", &body).await?;
    let mut config = read_config()?;
    let login = credentials::Login {
        username: user,
        secret: password,
    };
    credentials::store(&mut config, &server, &login)?;
    write_config(&config)?;
    let status = answer["Status"].as_str().unwrap_or("Login Succeeded");
    out(&format!("{status}\n"))
}

pub(crate) async fn logout(_client: &mut Client, a: LogoutArgs) -> anyhow::Result<()> {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| "https://index.docker.io/v1/".to_string());
    let mut config = read_config()?;
    let removed = credentials::erase(&mut config, &server)?;
    if !removed {
        return out(&format!("Not logged in to {server}\n"));
    }
    write_config(&config)?;
    out(&format!("Removing login credentials for {server}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/x:1"), "127.0.0.1:5000");
        assert_eq!(registry_of("me/app"), "docker.io");
        assert_eq!(
            split_reference("127.0.0.1:5000/x:1"),
            ("127.0.0.1:5000/x".into(), "1".into())
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/x"),
            ("127.0.0.1:5000/x".into(), "latest".into())
        );
        assert_eq!(full_name("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full_name("127.0.0.1:5000/x:1"), "127.0.0.1:5000/x:1");
    }
}
