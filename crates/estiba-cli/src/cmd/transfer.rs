//! `load` and `save`: image tarballs streamed to and from the daemon, never held in memory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use futures_util::TryStreamExt as _;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::Method;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::args::{check_args, Arity, LoadArgs, SaveArgs};
use crate::client::{query, Client, ReqBody};
use crate::output::{out, stdin_is_terminal, stdout_is_terminal};

/// Longest single JSON message we accept from a progress stream.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

pub(crate) fn reader_body<R: tokio::io::AsyncRead + Send + 'static>(reader: R) -> ReqBody {
    let stream =
        tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024).map_ok(Frame::data);
    StreamBody::new(stream).boxed_unsync()
}

/// Prints a docker JSON-message stream ({"stream":..}, {"status":..}, {"error":..}) as docker's
/// `jsonmessage.DisplayJSONMessagesStream` does without a terminal; an error message ends it.
pub(crate) async fn display_json_messages(body: Incoming) -> anyhow::Result<()> {
    display_messages(body, None).await
}

/// [`display_json_messages`], with a pull's or push's layers shown live on a terminal.
pub(crate) async fn display_transfer(body: Incoming) -> anyhow::Result<()> {
    if !stdout_is_terminal() {
        return display_messages(body, None).await;
    }
    let mut live = super::progress::LiveProgress::stdout();
    let result = display_messages(body, Some(&mut live)).await;
    live.finish();
    result
}

async fn display_messages(
    mut body: Incoming,
    mut live: Option<&mut super::progress::LiveProgress>,
) -> anyhow::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the daemon's response")?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        pending.extend_from_slice(&data);
        let consumed = print_complete_messages(&pending, live.as_deref_mut())?;
        pending.drain(..consumed);
        if pending.len() > MAX_MESSAGE_BYTES {
            bail!("a message from the daemon is larger than {MAX_MESSAGE_BYTES} bytes");
        }
    }
    if !pending.iter().all(u8::is_ascii_whitespace) {
        bail!("unexpected end of JSON input");
    }
    Ok(())
}

/// Prints every complete message in `buf` (as lines, or on the live display); returns how
/// many bytes were used.
fn print_complete_messages(
    buf: &[u8],
    mut live: Option<&mut super::progress::LiveProgress>,
) -> anyhow::Result<usize> {
    let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    let mut consumed = 0;
    let mut text = String::new();
    loop {
        match stream.next() {
            Some(Ok(msg)) => {
                consumed = stream.byte_offset();
                if let Some(err) = message_error(&msg) {
                    out(&text)?;
                    bail!("{err}");
                }
                match live.as_deref_mut() {
                    Some(live) => live.show(&msg),
                    None => text.push_str(&message_text(&msg)),
                }
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(e)) => bail!("decoding the daemon's progress stream: {e}"),
            None => break,
        }
    }
    out(&text)?;
    Ok(consumed)
}

fn message_error(msg: &Value) -> Option<String> {
    if let Some(detail) = msg.get("errorDetail") {
        if let Some(m) = detail.get("message").and_then(Value::as_str) {
            return Some(m.to_owned());
        }
    }
    msg.get("error").and_then(Value::as_str).map(str::to_owned)
}

/// The text one non-error message prints as.
pub(crate) fn message_text(msg: &Value) -> String {
    if let Some(s) = msg.get("stream").and_then(Value::as_str) {
        return s.to_owned();
    }
    let Some(status) = msg.get("status").and_then(Value::as_str) else {
        return String::new();
    };
    let mut line = String::new();
    if let Some(id) = msg
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        line.push_str(id);
        line.push_str(": ");
    }
    line.push_str(status);
    line.push('\n');
    line
}

/// An I/O error in Go's words ("no such file or directory"), as docker prints it.
pub(crate) fn go_io_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => &text[..i],
        None => text.as_str(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `estiba load [-i file] [-q]`.
pub(crate) async fn load(client: &mut Client, a: LoadArgs) -> anyhow::Result<()> {
    check_args("load", &a.args, Arity::None)?;
    let body = match a.input.as_deref().filter(|s| !s.is_empty()) {
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| anyhow::anyhow!("open {path}: {}", go_io_error(&e)))?;
            reader_body(file)
        }
        None => {
            if stdin_is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            reader_body(tokio::io::stdin())
        }
    };
    // Progress bars only make sense on a terminal; docker asks for quiet output otherwise.
    let quiet = a.quiet || !stdout_is_terminal();
    let q = query(&[("quiet", Some(if quiet { "1" } else { "0" }.to_owned()))]);
    let resp = client
        .request(
            Method::POST,
            &format!("/images/load{q}"),
            body,
            Some("application/x-tar"),
        )
        .await?;
    let is_json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        return display_json_messages(resp.into_body()).await;
    }
    let mut body = resp.into_body();
    let mut stdout = tokio::io::stdout();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.context("reading the daemon's response")?.into_data() {
            stdout.write_all(&data).await?;
        }
    }
    stdout.flush().await?;
    Ok(())
}

/// A temporary file beside `target`, renamed over it once complete (docker's CopyToFile).
pub(crate) fn temp_path(target: &Path) -> PathBuf {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.estiba-tmp-{}", std::process::id()))
}

pub(crate) async fn copy_body<W: tokio::io::AsyncWrite + Unpin>(
    mut body: Incoming,
    w: &mut W,
) -> anyhow::Result<()> {
    while let Some(frame) = body.frame().await {
        let frame = frame.context("reading the image archive from the daemon")?;
        if let Ok(data) = frame.into_data() {
            w.write_all(&data).await?;
        }
    }
    w.flush().await?;
    Ok(())
}

/// `estiba save [-o file] IMAGE...`.
pub(crate) async fn save(client: &mut Client, a: SaveArgs, path: &str) -> anyhow::Result<()> {
    check_args(path, &a.args, Arity::AtLeast(1))?;
    let output = a.output.clone().filter(|s| !s.is_empty());
    if output.is_none() && stdout_is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let pairs: Vec<(&str, Option<String>)> =
        a.args.iter().map(|n| ("names", Some(n.clone()))).collect();
    let q = query(&pairs);
    let resp = client
        .request(
            Method::GET,
            &format!("/images/get{q}"),
            crate::client::empty_body(),
            None,
        )
        .await?;
    match output {
        None => {
            let mut stdout = tokio::io::stdout();
            copy_body(resp.into_body(), &mut stdout).await
        }
        Some(target) => {
            let target = PathBuf::from(target);
            let tmp = temp_path(&target);
            let result = async {
                let mut file = tokio::fs::File::create(&tmp).await.with_context(|| {
                    format!(
                        "failed to save image: unable to create file {}",
                        tmp.display()
                    )
                })?;
                copy_body(resp.into_body(), &mut file).await?;
                file.sync_all().await?;
                tokio::fs::rename(&tmp, &target).await.with_context(|| {
                    format!("failed to save image: unable to write {}", target.display())
                })
            }
            .await;
            if result.is_err() {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn message_texts() {
        let cases: &[(Value, &str)] = &[
            (
                json!({"stream": "Loaded image: busybox:latest\n"}),
                "Loaded image: busybox:latest\n",
            ),
            (
                json!({"status": "Loading layer", "id": "be978a04b683"}),
                "be978a04b683: Loading layer\n",
            ),
            (json!({"status": "Done"}), "Done\n"),
            (json!({"other": 1}), ""),
        ];
        for (msg, want) in cases {
            assert_eq!(message_text(msg), *want);
        }
        assert_eq!(
            message_error(&json!({"errorDetail": {"message": "boom"}, "error": "boom2"}))
                .as_deref(),
            Some("boom")
        );
        assert_eq!(
            message_error(&json!({"error": "boom2"})).as_deref(),
            Some("boom2")
        );
    }

    #[test]
    fn io_errors_read_like_go() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(go_io_error(&e), "no such file or directory");
        let e = std::io::Error::from_raw_os_error(13);
        assert_eq!(go_io_error(&e), "permission denied");
    }

    #[test]
    fn temp_files_sit_beside_the_target() {
        let p = temp_path(Path::new("/tmp/out.tar"));
        assert_eq!(p.parent(), Some(Path::new("/tmp")));
        let p = temp_path(Path::new("out.tar"));
        assert_eq!(p.parent(), Some(Path::new(".")));
    }
}
