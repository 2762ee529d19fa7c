//! `inspect` and `image inspect`: the daemon's JSON, indented like docker, or a template per object.

use bytes::Bytes;

use crate::args::{check_args, Arity, ImageInspectArgs, InspectArgs};
use crate::client::{path_escape, ApiError, Client};
use crate::format::Format;
use crate::jsonindent::indent;
use crate::output::out;
use crate::StatusError;

/// Renders found objects as docker's inspector does: a JSON array indented by four spaces, the
/// raw object for `--format json`, or the template's output, one line per object.
pub(crate) fn render(format: Option<&str>, raw: &[Bytes]) -> anyhow::Result<String> {
    let format = format.unwrap_or("").trim();
    if format.is_empty() {
        if raw.is_empty() {
            return Ok("[]\n".to_owned());
        }
        let mut joined = String::from("[");
        for (i, r) in raw.iter().enumerate() {
            if i > 0 {
                joined.push(',');
            }
            joined.push_str(String::from_utf8_lossy(r).trim());
        }
        joined.push(']');
        let mut text = indent(&joined, "    ");
        text.push('\n');
        return Ok(text);
    }
    let mut text = String::new();
    if format == "json" {
        text.push('[');
        for (i, r) in raw.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(String::from_utf8_lossy(r).trim());
        }
        text.push_str("]\n");
        return Ok(text);
    }
    // docker exits 64 when an inspect template does not parse.
    let compiled = Format::new(format).map_err(|e| StatusError {
        code: 64,
        message: e.to_string(),
    })?;
    let mut values = Vec::with_capacity(raw.len());
    for r in raw {
        values.push(serde_json::from_slice::<serde_json::Value>(r)?);
    }
    let header = serde_json::Value::Null;
    text.push_str(&compiled.render(&header, &values)?);
    Ok(text)
}

pub(crate) fn finish(
    format: Option<&str>,
    found: &[Bytes],
    errors: Vec<String>,
) -> anyhow::Result<()> {
    out(&render(format, found)?)?;
    StatusError::from_errors(errors)
}

/// `estiba image inspect IMAGE...`.
pub(crate) async fn image_inspect(client: &mut Client, a: ImageInspectArgs) -> anyhow::Result<()> {
    check_args("image inspect", &a.args, Arity::AtLeast(1))?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.args {
        match client
            .get_bytes(&format!("/images/{}/json", path_escape(name)))
            .await
        {
            Ok(raw) => found.push(raw),
            Err(e) if e.downcast_ref::<ApiError>().is_some() => errors.push(format!("{e}")),
            Err(e) => return Err(e),
        }
    }
    finish(a.format.as_deref(), &found, errors)
}

/// `estiba inspect NAME...`: a container or an image ("Error: No such object: x" otherwise).
pub(crate) async fn inspect(client: &mut Client, a: InspectArgs) -> anyhow::Result<()> {
    check_args("inspect", &a.args, Arity::AtLeast(1))?;
    let kinds: &[&str] = match a.kind.as_deref() {
        None | Some("") => &["container", "image"],
        Some("container") => &["container"],
        Some("image") => &["image"],
        Some(other) => anyhow::bail!("\"{other}\" is not a valid value for --type"),
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    'names: for name in &a.args {
        for kind in kinds {
            let path = match *kind {
                "container" => {
                    let size = if a.size { "?size=1" } else { "" };
                    format!("/containers/{}/json{size}", path_escape(name))
                }
                _ => format!("/images/{}/json", path_escape(name)),
            };
            match client.get_bytes(&path).await {
                Ok(raw) => {
                    found.push(raw);
                    continue 'names;
                }
                Err(e) => match e.downcast_ref::<ApiError>() {
                    Some(api) if api.is_not_found() => continue,
                    Some(_) => {
                        errors.push(format!("{e}"));
                        continue 'names;
                    }
                    None => return Err(e),
                },
            }
        }
        errors.push(match a.kind.as_deref() {
            Some("image") => format!("Error: No such image: {name}"),
            Some("container") => format!("Error: No such container: {name}"),
            _ => format!("Error: No such object: {name}"),
        });
    }
    finish(a.format.as_deref(), &found, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_docker_inspect() {
        let raw = vec![Bytes::from_static(
            br#"{"Id":"sha256:ab","RepoTags":["busybox:latest"],"RepoDigests":[]}"#,
        )];
        let want = "[\n    {\n        \"Id\": \"sha256:ab\",\n        \"RepoTags\": [\n            \"busybox:latest\"\n        ],\n        \"RepoDigests\": []\n    }\n]\n";
        assert_eq!(render(None, &raw).ok().as_deref(), Some(want));
        assert_eq!(render(None, &[]).ok().as_deref(), Some("[]\n"));
        assert_eq!(
            render(Some("json"), &raw).ok().as_deref(),
            Some("[{\"Id\":\"sha256:ab\",\"RepoTags\":[\"busybox:latest\"],\"RepoDigests\":[]}]\n")
        );
        assert_eq!(
            render(Some("{{.Id}}"), &[raw[0].clone(), raw[0].clone()])
                .ok()
                .as_deref(),
            Some("sha256:ab\nsha256:ab\n")
        );
    }
}
