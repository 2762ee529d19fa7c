//! `docker commit`: the container's writable layer, as a diff tar, becomes a new image on top
//! of the container's image, with the container's config (plus the user's overrides and
//! `--change` instructions) as the image's config.

use std::io::Seek;

use estiba_image::service::CommitRequest;
use serde_json::{json, Map, Value};

use crate::error::{internal, ContainerError};
use crate::model::{ContainerRecord, Status};
use crate::service::ContainerService;

/// Most `--change` instructions one commit takes.
pub(crate) const MAX_CHANGES_PER_COMMIT: usize = 256;

/// `POST /commit`'s options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: String,
    pub author: String,
    /// Dockerfile instructions (`CMD ["x"]`, `ENV A=b`, ...).
    pub changes: Vec<String>,
    /// The request body: a container config whose non-null fields override the container's.
    pub config: Option<Value>,
    /// Freeze a running container while its changes are read (`pause=1`, docker's default).
    pub pause: bool,
}

impl ContainerService {
    /// Commits the container's changes as a new image; returns its ID ("sha256:...").
    pub fn commit(&self, name: &str, opts: &CommitOptions) -> Result<String, ContainerError> {
        if opts.changes.len() > MAX_CHANGES_PER_COMMIT {
            return Err(ContainerError::InvalidParameter(format!(
                "too many changes (at most {MAX_CHANGES_PER_COMMIT})"
            )));
        }
        let c = self.get(name)?;
        let _op = c.op_lock();
        let record = c.snapshot();
        let mut config = image_config(&record);
        if let Some(Value::Object(over)) = &opts.config {
            if let Some(obj) = config.as_object_mut() {
                for (k, v) in over {
                    if !v.is_null() {
                        obj.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        for change in &opts.changes {
            apply_change(&mut config, change)?;
        }
        // Docker keeps the container's Cmd only when the user set neither Cmd nor Entrypoint.
        let user_sets = |key: &str, instr: &str| {
            opts.config
                .as_ref()
                .is_some_and(|c| c.get(key).is_some_and(|v| !v.is_null()))
                || opts.changes.iter().any(|c| {
                    c.trim_start()
                        .get(..instr.len())
                        .is_some_and(|w| w.eq_ignore_ascii_case(instr))
                })
        };
        if user_sets("Entrypoint", "ENTRYPOINT") && !user_sets("Cmd", "CMD") {
            if let Some(obj) = config.as_object_mut() {
                obj.insert("Cmd".into(), Value::Null);
            }
        }
        let dir = self.container_dir(&record.id);
        let path = dir.join(format!(".commit-{}", rand::random::<u64>()));
        let mut spool = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| internal(format!("create {}: {e}", path.display())))?;
        let _ = std::fs::remove_file(&path);
        // As moby: a running container is frozen while its writable layer is read, so the
        // image is one consistent state of it.
        let freeze = opts.pause && record.state.status == Status::Running;
        if freeze {
            self.runtime_op(&record, "pause")?;
        }
        let diffed = self.snapshots.diff(&record.snapshot_key, &mut spool);
        if freeze {
            if let Err(e) = self.runtime_op(&record, "resume") {
                tracing::warn!("cannot thaw {} after commit: {e}", record.id);
            }
        }
        diffed.map_err(internal)?;
        spool.rewind().map_err(internal)?;
        let req = CommitRequest {
            base_image_id: record.image_id.clone(),
            config,
            container_id: record.id.clone(),
            author: opts.author.clone(),
            comment: opts.comment.clone(),
            created_by: record.config.cmd.clone().unwrap_or_default().join(" "),
            repo: opts.repo.clone().filter(|r| !r.is_empty()),
            tag: opts.tag.clone().filter(|t| !t.is_empty()),
            created: None,
        };
        let id = self.images.commit(&req, &mut spool)?;
        self.publish(
            &record,
            "commit",
            &[("comment", opts.comment.as_str()), ("imageID", id.as_str())],
        );
        Ok(id)
    }
}

/// The container's config in the image config's form (Docker's `container.Config`), with
/// the fields Docker's commit merges from the container.
fn image_config(r: &ContainerRecord) -> Value {
    let c = &r.config;
    let set = |v: &[String]| -> Value {
        if v.is_empty() {
            Value::Null
        } else {
            Value::Object(v.iter().map(|k| (k.clone(), json!({}))).collect())
        }
    };
    // Docker merges only what an image can carry; the rest stays empty (no hostname, no
    // attach flags, no image name).
    let mut out = json!({
        "Hostname": "",
        "Domainname": "",
        "User": c.user,
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": if c.env.is_empty() { Value::Null } else { json!(c.env) },
        "Cmd": c.cmd,
        "Image": "",
        "Volumes": set(&c.volumes),
        "WorkingDir": c.working_dir,
        "Entrypoint": c.entrypoint,
        "OnBuild": Value::Null,
        "Labels": c.labels,
    });
    if let Some(obj) = out.as_object_mut() {
        if !c.exposed_ports.is_empty() {
            obj.insert("ExposedPorts".into(), set(&c.exposed_ports));
        }
        if let Some(s) = &c.stop_signal {
            obj.insert("StopSignal".into(), json!(s));
        }
        if let Some(h) = &c.healthcheck {
            obj.insert("Healthcheck".into(), h.clone());
        }
    }
    out
}

fn bad(msg: impl Into<String>) -> ContainerError {
    ContainerError::InvalidParameter(msg.into())
}

/// Applies one `--change` instruction (Docker's commit subset of the Dockerfile) to `config`.
fn apply_change(config: &mut Value, change: &str) -> Result<(), ContainerError> {
    let change = change.trim();
    let (word, rest) = change
        .split_once(char::is_whitespace)
        .map(|(w, r)| (w, r.trim()))
        .unwrap_or((change, ""));
    let instr = word.to_ascii_uppercase();
    let obj = config
        .as_object_mut()
        .ok_or_else(|| internal("config is not an object"))?;
    match instr.as_str() {
        "CMD" | "ENTRYPOINT" => {
            let v = command_form(rest)?;
            let key = if instr == "CMD" { "Cmd" } else { "Entrypoint" };
            obj.insert(key.into(), json!(v));
        }
        "ENV" => {
            let mut env: Vec<String> = obj
                .get("Env")
                .and_then(|e| serde_json::from_value(e.clone()).ok())
                .unwrap_or_default();
            for (k, v) in pairs(rest, "ENV")? {
                let prefix = format!("{k}=");
                let entry = format!("{k}={v}");
                match env.iter_mut().find(|e| e.starts_with(&prefix) || **e == k) {
                    Some(e) => *e = entry,
                    None => env.push(entry),
                }
            }
            obj.insert("Env".into(), json!(env));
        }
        "LABEL" => {
            let labels = obj
                .entry("Labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if !labels.is_object() {
                *labels = Value::Object(Map::new());
            }
            if let Some(m) = labels.as_object_mut() {
                for (k, v) in pairs(rest, "LABEL")? {
                    m.insert(k, json!(v));
                }
            }
        }
        "WORKDIR" => {
            if rest.is_empty() {
                return Err(bad("WORKDIR requires exactly one argument"));
            }
            let current = obj
                .get("WorkingDir")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_string();
            let dir = if rest.starts_with('/') {
                rest.to_string()
            } else {
                format!("{}/{rest}", current.trim_end_matches('/'))
            };
            obj.insert("WorkingDir".into(), json!(dir));
        }
        "USER" | "STOPSIGNAL" => {
            if rest.is_empty() {
                return Err(bad(format!("{instr} requires exactly one argument")));
            }
            let key = if instr == "USER" {
                "User"
            } else {
                "StopSignal"
            };
            obj.insert(key.into(), json!(rest));
        }
        "EXPOSE" | "VOLUME" => {
            let items: Vec<String> = if instr == "VOLUME" && rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|e| bad(format!("VOLUME: {e}")))?
            } else {
                rest.split_whitespace().map(str::to_string).collect()
            };
            if items.is_empty() {
                return Err(bad(format!("{instr} requires at least one argument")));
            }
            let key = if instr == "EXPOSE" {
                "ExposedPorts"
            } else {
                "Volumes"
            };
            let map = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if !map.is_object() {
                *map = Value::Object(Map::new());
            }
            if let Some(m) = map.as_object_mut() {
                for item in items {
                    let item = if instr == "EXPOSE" && !item.contains('/') {
                        format!("{item}/tcp")
                    } else {
                        item
                    };
                    m.insert(item, json!({}));
                }
            }
        }
        "ADD" | "ARG" | "COPY" | "FROM" | "HEALTHCHECK" | "MAINTAINER" | "ONBUILD" | "RUN"
        | "SHELL" => {
            return Err(bad(format!("{instr} is not a valid change command")));
        }
        _ => {
            return Err(bad(format!(
                "dockerfile parse error line 1: unknown instruction: {word}"
            )));
        }
    }
    Ok(())
}

/// `["a","b"]` (exec form) or `a b` (shell form, run by `/bin/sh -c`).
fn command_form(rest: &str) -> Result<Vec<String>, ContainerError> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(v);
        }
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

/// `k=v k2="v 2"` pairs, or the legacy `k v` form.
fn pairs(rest: &str, instr: &str) -> Result<Vec<(String, String)>, ContainerError> {
    let words = shell_words(rest);
    let Some(first) = words.first() else {
        return Err(bad(format!("{instr} requires at least one argument")));
    };
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if v.trim().is_empty() && instr == "ENV" {
            return Err(bad("ENV must have two arguments"));
        }
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(bad(format!("{instr} names can not be blank"))),
        })
        .collect()
}

/// Splits on whitespace, honouring double and single quotes and backslash escapes.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(ch);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_edit_the_config() {
        let base = || {
            json!({"Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"], "WorkingDir": "/srv",
                   "Labels": {}, "Volumes": null})
        };
        for (change, key, want) in [
            (r#"CMD ["echo","x"]"#, "Cmd", json!(["echo", "x"])),
            ("cmd echo hi", "Cmd", json!(["/bin/sh", "-c", "echo hi"])),
            (
                r#"ENTRYPOINT ["/bin/env"]"#,
                "Entrypoint",
                json!(["/bin/env"]),
            ),
            (
                "ENV A=2 B=\"x y\"",
                "Env",
                json!(["PATH=/bin", "A=2", "B=x y"]),
            ),
            (
                "ENV C hello world",
                "Env",
                json!(["PATH=/bin", "A=1", "C=hello world"]),
            ),
            ("LABEL a=b 'c d'=e", "Labels", json!({"a": "b", "c d": "e"})),
            ("WORKDIR sub", "WorkingDir", json!("/srv/sub")),
            ("WORKDIR /abs", "WorkingDir", json!("/abs")),
            ("USER nobody", "User", json!("nobody")),
            (
                "EXPOSE 80 53/udp",
                "ExposedPorts",
                json!({"80/tcp": {}, "53/udp": {}}),
            ),
            (r#"VOLUME ["/data"]"#, "Volumes", json!({"/data": {}})),
            ("VOLUME /a /b", "Volumes", json!({"/a": {}, "/b": {}})),
            ("STOPSIGNAL SIGINT", "StopSignal", json!("SIGINT")),
        ] {
            let mut config = base();
            apply_change(&mut config, change).unwrap_or_else(|e| panic!("{change}: {e}"));
            assert_eq!(config[key], want, "{change}");
        }
    }

    #[test]
    fn bad_changes_are_refused() {
        for (change, msg) in [
            ("RUN echo", "RUN is not a valid change command"),
            ("FOO bar", "unknown instruction: FOO"),
            ("ENV", "ENV requires at least one argument"),
            ("USER", "USER requires exactly one argument"),
        ] {
            let mut config = json!({});
            let err = apply_change(&mut config, change).expect_err(change);
            assert!(err.to_string().contains(msg), "{change}: {err}");
        }
    }
}
