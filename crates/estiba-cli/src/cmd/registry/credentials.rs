//! Credentials as docker's CLI keeps them: in config.json's `auths` (base64 `user:pass`), or,
//! when `credHelpers` names a helper for the registry or `credsStore` names one for all, in a
//! `docker-credential-<name>` program on PATH, spoken to over stdin/stdout (`store` takes
//! `{"ServerURL","Username","Secret"}`, `get` and `erase` take the server address).

use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use serde_json::{json, Value};

/// Helper answers larger than this are refused.
const MAX_HELPER_OUTPUT_BYTES: u64 = 64 * 1024;

/// A user name and password (or identity token) for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Login {
    pub username: String,
    pub secret: String,
}

/// The helper configured for `server`, if any: `credHelpers[server]`, else `credsStore`.
fn helper_of(config: &Value, server: &str) -> Option<String> {
    let name = config["credHelpers"][server]
        .as_str()
        .or_else(|| config["credsStore"].as_str())?;
    // A name that could walk the filesystem is no helper name.
    (!name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
    .then(|| name.to_string())
}

/// Runs `docker-credential-<helper> <verb>` with `input`; its stdout, or an error with what it
/// printed.
fn run_helper(helper: &str, verb: &str, input: &str) -> anyhow::Result<(bool, String)> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("exec: \"{program}\": executable file not found in $PATH"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("write to {program}"))?;
    }
    let mut out = String::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_HELPER_OUTPUT_BYTES)
            .read_to_string(&mut out)
            .with_context(|| format!("read from {program}"))?;
    }
    let status = child
        .wait()
        .with_context(|| format!("wait for {program}"))?;
    Ok((status.success(), out.trim().to_string()))
}

/// The stored login for `server`, from its helper or from `auths`.
pub(crate) fn get(config: &Value, server: &str) -> anyhow::Result<Option<Login>> {
    if let Some(helper) = helper_of(config, server) {
        let (ok, out) = run_helper(&helper, "get", server)?;
        if !ok {
            // "credentials not found in native keychain" is not an error: anonymous access.
            if out.contains("credentials not found") {
                return Ok(None);
            }
            bail!("error getting credentials - err: {out}");
        }
        let v: Value = serde_json::from_str(&out)
            .with_context(|| format!("docker-credential-{helper}: invalid answer"))?;
        let username = v["Username"].as_str().unwrap_or_default().to_string();
        let secret = v["Secret"].as_str().unwrap_or_default().to_string();
        if username.is_empty() && secret.is_empty() {
            return Ok(None);
        }
        return Ok(Some(Login { username, secret }));
    }
    let Some(auth) = config["auths"][server]["auth"].as_str() else {
        return Ok(None);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()
        .and_then(|d| String::from_utf8(d).ok());
    Ok(decoded.and_then(|d| {
        d.split_once(':').map(|(u, p)| Login {
            username: u.to_string(),
            secret: p.to_string(),
        })
    }))
}

/// Stores a login: through the helper (config.json keeps an empty `auths` entry, as docker
/// does), else base64 in `auths`.
pub(crate) fn store(config: &mut Value, server: &str, login: &Login) -> anyhow::Result<()> {
    if !config["auths"].is_object() {
        config["auths"] = json!({});
    }
    if let Some(helper) = helper_of(config, server) {
        let input = json!({
            "ServerURL": server,
            "Username": login.username,
            "Secret": login.secret,
        });
        let (ok, out) = run_helper(&helper, "store", &input.to_string())?;
        if !ok {
            bail!("error storing credentials - err: {out}");
        }
        config["auths"][server] = json!({});
        return Ok(());
    }
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", login.username, login.secret));
    config["auths"][server] = json!({ "auth": auth });
    Ok(())
}

/// Removes the login of `server`; false when there was none.
pub(crate) fn erase(config: &mut Value, server: &str) -> anyhow::Result<bool> {
    let had_entry = config["auths"]
        .as_object_mut()
        .and_then(|m| m.remove(server))
        .is_some();
    if let Some(helper) = helper_of(config, server) {
        let (ok, out) = run_helper(&helper, "erase", server)?;
        if !ok && !out.contains("credentials not found") {
            bail!("error erasing credentials - err: {out}");
        }
        return Ok(had_entry || ok);
    }
    Ok(had_entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_choice_and_plain_auths() {
        let c = json!({"credsStore": "pass", "credHelpers": {"r:1": "ecr-login"}});
        assert_eq!(helper_of(&c, "r:1").as_deref(), Some("ecr-login"));
        assert_eq!(helper_of(&c, "other").as_deref(), Some("pass"));
        assert_eq!(helper_of(&json!({"credsStore": "../x"}), "r"), None);
        let mut plain = json!({});
        let login = Login {
            username: "u".into(),
            secret: "p:w".into(),
        };
        store(&mut plain, "r:1", &login).unwrap();
        assert_eq!(plain["auths"]["r:1"]["auth"], "dTpwOnc=");
        assert_eq!(get(&plain, "r:1").unwrap(), Some(login));
        assert!(erase(&mut plain, "r:1").unwrap());
        assert_eq!(get(&plain, "r:1").unwrap(), None);
    }
}
