//! Here-documents (BuildKit's syntax, on the classic protocol). `RUN <<EOF` alone runs the
//! content with the stage's shell (or, when it starts with `#!`, as an executable file bound
//! at `/dev/pipes/<name>`); a RUN with heredocs inside a command gives the whole text to the
//! shell, which reads them itself. `COPY <<EOF /dest` copies the content as a file named after
//! the delimiter, variables expanded unless the delimiter was quoted.

use crate::context::{Context, ExtraFile};
use crate::mounts::{Kind, RunMount};
use crate::parser::Instruction;
use crate::stage::{Run, State};
use crate::stage_mounts::StepMount;
use crate::BuildError;

/// Where a `#!` heredoc script is bound in the RUN container (a tmpfs: no trace in the layer).
const SCRIPT_DIR: &str = "/dev/pipes";

/// A shell-form RUN with heredocs: its argv, what history shows, and a script to bind.
pub(crate) fn run_argv(
    shell: &[String],
    ins: &Instruction,
) -> Option<(Vec<String>, String, Option<StepMount>)> {
    let first = ins.heredocs.first()?;
    if ins.json.is_some() {
        return None;
    }
    if ins.heredocs.len() == 1 && ins.rest.trim() == first.marker {
        if first.body.starts_with("#!") {
            let target = format!("{SCRIPT_DIR}/{}", first.name);
            let shown = format!("{target} <<{}\n{}{}", first.name, first.body, first.name);
            let m = StepMount {
                m: script_mount(&target, first.body.as_bytes()),
                from_image: None,
            };
            return Some((vec![target], shown, Some(m)));
        }
        let mut argv = shell.to_vec();
        argv.push(first.body.clone());
        let shown = argv.join(" ");
        return Some((argv, shown, None));
    }
    let mut script = ins.rest.clone();
    script.push('\n');
    for h in &ins.heredocs {
        script.push_str(&h.body);
        script.push_str(&h.name);
        script.push('\n');
    }
    let mut argv = shell.to_vec();
    argv.push(script);
    let shown = argv.join(" ");
    Some((argv, shown, None))
}

/// A read-only executable file with `content` at `target`.
fn script_mount(target: &str, content: &[u8]) -> RunMount {
    RunMount {
        kind: Kind::File,
        target: target.to_string(),
        mode: Some(0o755),
        content: Some(content.to_vec()),
        ..RunMount::default()
    }
}

/// Heredoc bodies and downloads as an extra context, and the top directory they are under.
pub(crate) type HeredocFiles = Option<(String, Context)>;

impl Run<'_> {
    /// COPY/ADD sources with heredoc markers and (ADD's) URLs replaced by files of a small
    /// extra context, all under one private top directory (returned with it). A download is
    /// named after the URL's last path element, mode 0600, its mtime from `Last-Modified`.
    pub(crate) fn extra_sources(
        &self,
        st: &State,
        ins: &Instruction,
        sources: &[String],
    ) -> Result<(Vec<String>, HeredocFiles), BuildError> {
        let urls = ins.cmd == "ADD" && sources.iter().any(|s| crate::fetch::is_url(s));
        if ins.heredocs.is_empty() && !urls {
            return Ok((sources.to_vec(), None));
        }
        let rel = format!(".estiba-sources-{:016x}", rand::random::<u64>());
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let mut files = Vec::new();
        let mut out = Vec::new();
        let mut pending = ins.heredocs.iter().peekable();
        for src in sources {
            if urls && crate::fetch::is_url(src) {
                let name = crate::fetch::file_name(src)?;
                let download = crate::fetch::get(src)?;
                let mtime = download.mtime;
                out.push(format!("{rel}/{name}"));
                files.push(ExtraFile {
                    name,
                    content: Box::new(download),
                    mode: 0o600,
                    mtime,
                });
                continue;
            }
            let marker = match pending.peek() {
                Some(h) => self.expand_word(st, &h.marker)?,
                None => String::new(),
            };
            let Some(h) = pending.next_if(|_| !marker.is_empty() && *src == marker) else {
                out.push(src.clone());
                continue;
            };
            let content = if h.expand {
                self.expand_content(st, &h.body)?
            } else {
                h.body.clone()
            };
            out.push(format!("{rel}/{}", h.name));
            files.push(ExtraFile {
                name: h.name.clone(),
                content: Box::new(std::io::Cursor::new(content.into_bytes())),
                mode: 0o644,
                mtime: now,
            });
        }
        let extra = Context::of_files(&rel, &self.b.root, files)?;
        Ok((out, Some((rel, extra))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn ins(text: &str) -> Instruction {
        parse(text).unwrap().instructions.remove(0)
    }

    #[test]
    fn run_forms() {
        let sh = vec!["/bin/sh".to_string(), "-c".to_string()];
        let (argv, _, m) = run_argv(&sh, &ins("RUN <<EOF\necho a\necho b\nEOF\n")).unwrap();
        assert_eq!(argv, vec!["/bin/sh", "-c", "echo a\necho b\n"]);
        assert!(m.is_none());
        let (argv, _, _) = run_argv(&sh, &ins("RUN cat <<A >/x\none\nA\n")).unwrap();
        assert_eq!(argv[2], "cat <<A >/x\none\nA\n");
        let (argv, shown, m) = run_argv(&sh, &ins("RUN <<PY\n#!/bin/sh\necho hi\nPY\n")).unwrap();
        assert_eq!(argv, vec!["/dev/pipes/PY"]);
        assert!(shown.contains("echo hi"));
        assert_eq!(m.unwrap().m.content.unwrap(), b"#!/bin/sh\necho hi\n");
        assert!(run_argv(&sh, &ins("RUN echo plain\n")).is_none());
    }
}
