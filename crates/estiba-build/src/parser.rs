//! The Dockerfile's syntax (a small hand-written line parser, not parse-dockerfile: Docker's
//! classic rules fit in one screen): parser directives, `\` continuations (or the `escape`
//! directive's character), comments, instruction words, `--flag=value` options, JSON (exec)
//! versus shell form. Variables are expanded later, per instruction ([`crate::expand`]).

/// Largest Dockerfile accepted.
pub const MAX_DOCKERFILE_BYTES: usize = 4 << 20;
/// Most instructions in one Dockerfile.
pub const MAX_INSTRUCTIONS: usize = 10_000;

const KNOWN: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line of its first line.
    pub line: usize,
    /// Upper-cased keyword.
    pub cmd: String,
    /// `--name=value` options, in order (`--link` alone has the value "true").
    pub flags: Vec<(String, String)>,
    /// The text after the keyword and the options.
    pub rest: String,
    /// The exec form's argv when `rest` is a JSON array of strings.
    pub json: Option<Vec<String>>,
    /// The instruction as written, continuations joined (for `Step N/M : ...`).
    pub original: String,
    /// Here-documents of RUN, COPY and ADD (`<<EOF` ... `EOF`), in order.
    pub heredocs: Vec<Heredoc>,
}

/// One here-document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter (quotes removed): COPY's file name.
    pub name: String,
    /// The marker as written in the instruction (`<<-"EOF"`).
    pub marker: String,
    /// The lines between the marker's line and the delimiter, each ending in `\n`; leading
    /// tabs already removed for `<<-`.
    pub body: String,
    /// Variables are expanded in COPY's content unless the delimiter was quoted.
    pub expand: bool,
}

/// Most bytes of all here-documents of one instruction.
const MAX_HEREDOC_BYTES: usize = 4 << 20;

impl Instruction {
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

/// A syntax error, Docker's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    if text.len() > MAX_DOCKERFILE_BYTES {
        return Err(err(1, "Dockerfile is too large"));
    }
    let lines: Vec<&str> = text.lines().collect();
    let (escape, first) = directives(&lines)?;
    let mut instructions = Vec::new();
    let mut i = first;
    while i < lines.len() {
        let start = i;
        let trimmed = lines[i].trim();
        i += 1;
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut joined = String::new();
        let mut cur = lines[start].trim_start().to_string();
        loop {
            let t = cur.trim_end();
            match t.strip_suffix(escape) {
                Some(body) if i < lines.len() || !body.is_empty() => {
                    joined.push_str(body);
                    // Comment and empty lines inside a continuation are dropped, as Docker.
                    while i < lines.len() && is_skippable(lines[i]) {
                        i += 1;
                    }
                    if i >= lines.len() {
                        break;
                    }
                    cur = lines[i].to_string();
                    i += 1;
                }
                _ => {
                    joined.push_str(t);
                    break;
                }
            }
        }
        if instructions.len() >= MAX_INSTRUCTIONS {
            return Err(err(start + 1, "too many instructions"));
        }
        let mut ins = instruction(start + 1, joined.trim())?;
        if matches!(ins.cmd.as_str(), "RUN" | "COPY" | "ADD") && ins.json.is_none() {
            for (marker, name, strip, expand) in markers(&ins.rest) {
                let (body, next) = heredoc_body(&lines, i, &name, strip)
                    .ok_or_else(|| err(start + 1, format!("unterminated heredoc {name}")))?;
                i = next;
                ins.heredocs.push(Heredoc {
                    name,
                    marker,
                    body,
                    expand,
                });
            }
            let total: usize = ins.heredocs.iter().map(|h| h.body.len()).sum();
            if total > MAX_HEREDOC_BYTES {
                return Err(err(start + 1, "heredoc is too large"));
            }
        }
        instructions.push(ins);
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
}

/// The heredoc markers among the words of `rest`: (marker, delimiter, strip tabs, expand).
/// A marker is a word `<<EOF`, `<<-EOF`, `<<'EOF'` or `<<"EOF"` (a leading fd number allowed).
fn markers(rest: &str) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    for word in rest.split_whitespace() {
        let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
        let Some(after) = w.strip_prefix("<<") else {
            continue;
        };
        if after.starts_with('<') {
            continue;
        }
        let (strip, after) = match after.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, after),
        };
        let quoted = after.len() >= 2
            && ((after.starts_with('\'') && after.ends_with('\''))
                || (after.starts_with('"') && after.ends_with('"')));
        let name = if quoted {
            &after[1..after.len() - 1]
        } else {
            after
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if valid {
            out.push((word.to_string(), name.to_string(), strip, !quoted));
        }
    }
    out
}

/// The heredoc starting at `lines[i]` up to the line `name`; returns it and the next line.
fn heredoc_body(lines: &[&str], mut i: usize, name: &str, strip: bool) -> Option<(String, usize)> {
    let mut body = String::new();
    while i < lines.len() {
        let line = if strip {
            lines[i].trim_start_matches('\t')
        } else {
            lines[i]
        };
        i += 1;
        if line == name {
            return Some((body, i));
        }
        body.push_str(line);
        body.push('\n');
    }
    None
}

fn is_skippable(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// `# escape=` and `# syntax=` at the very top; returns the escape and the first other line.
fn directives(lines: &[&str]) -> Result<(char, usize), ParseError> {
    let mut escape = '\\';
    for (n, line) in lines.iter().enumerate() {
        let Some(body) = line.trim().strip_prefix('#') else {
            return Ok((escape, n));
        };
        let Some((k, v)) = body.split_once('=') else {
            return Ok((escape, n));
        };
        let key = k.trim().to_ascii_lowercase();
        if key.contains(char::is_whitespace) {
            return Ok((escape, n));
        }
        match key.as_str() {
            "escape" => {
                escape = match v.trim() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(err(
                            n + 1,
                            format!("invalid escape token '{other}' does not match ` or \\"),
                        ))
                    }
                }
            }
            "syntax" | "check" => {}
            _ => return Ok((escape, n)),
        }
    }
    Ok((escape, lines.len()))
}

fn instruction(line: usize, text: &str) -> Result<Instruction, ParseError> {
    let (word, rest) = text
        .split_once(char::is_whitespace)
        .map(|(w, r)| (w, r.trim_start()))
        .unwrap_or((text, ""));
    let cmd = word.to_ascii_uppercase();
    if !KNOWN.contains(&cmd.as_str()) {
        return Err(err(line, format!("unknown instruction: {word}")));
    }
    let mut flags = Vec::new();
    let mut rest = rest;
    if matches!(
        cmd.as_str(),
        "ADD" | "COPY" | "FROM" | "RUN" | "HEALTHCHECK"
    ) {
        while let Some(opt) = rest.strip_prefix("--") {
            let (w, r) = opt
                .split_once(char::is_whitespace)
                .map(|(w, r)| (w, r.trim_start()))
                .unwrap_or((opt, ""));
            let (k, v) = w.split_once('=').unwrap_or((w, "true"));
            flags.push((k.to_string(), v.to_string()));
            rest = r;
        }
    }
    let json = rest
        .starts_with('[')
        .then(|| serde_json::from_str::<Vec<String>>(rest).ok())
        .flatten();
    if rest.is_empty() && !matches!(cmd.as_str(), "CMD" | "ENTRYPOINT" | "RUN") {
        let message = match cmd.as_str() {
            "FROM" => "FROM requires either one or three arguments".to_string(),
            "COPY" | "ADD" => format!("{cmd} requires at least two arguments"),
            _ => format!("{cmd} requires at least one argument"),
        };
        return Err(err(line, message));
    }
    Ok(Instruction {
        line,
        cmd,
        flags,
        rest: rest.to_string(),
        json,
        original: text.to_string(),
        heredocs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(text: &str) -> Vec<(usize, String, String)> {
        parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .instructions
            .into_iter()
            .map(|i| (i.line, i.cmd, i.rest))
            .collect()
    }

    #[test]
    fn continuations_comments_and_forms() {
        type Case<'a> = (&'a str, &'a [(usize, &'a str, &'a str)]);
        let cases: &[Case] = &[
            (
                "FROM busybox\nRUN echo hi\n",
                &[(1, "FROM", "busybox"), (2, "RUN", "echo hi")],
            ),
            (
                "from a\n# c\n\nrun echo a \\\n  # inner\n  && echo b\n",
                &[(1, "FROM", "a"), (4, "RUN", "echo a   && echo b")],
            ),
            (
                "# escape=`\nFROM a\nRUN echo `\n x\n",
                &[(2, "FROM", "a"), (3, "RUN", "echo  x")],
            ),
            (
                "FROM a\nCMD [\"sh\", \"-c\"]\n",
                &[(1, "FROM", "a"), (2, "CMD", "[\"sh\", \"-c\"]")],
            ),
        ];
        for (text, want) in cases {
            let got = cmds(text);
            let want: Vec<_> = want
                .iter()
                .map(|(l, c, r)| (*l, c.to_string(), r.to_string()))
                .collect();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn flags_and_json() {
        let df = parse("COPY --from=build --chown=1:2 /a /b\nCMD [\"x\",\"y\"]\nRUN [bad").unwrap();
        let copy = &df.instructions[0];
        assert_eq!(copy.flag("from"), Some("build"));
        assert_eq!(copy.flag("chown"), Some("1:2"));
        assert_eq!(copy.rest, "/a /b");
        assert_eq!(df.instructions[1].json, Some(vec!["x".into(), "y".into()]));
        assert_eq!(df.instructions[2].json, None);
    }

    #[test]
    fn heredocs() {
        let text = "FROM a\nRUN <<EOF\necho $A\n\nEOF\nCOPY <<-'X' <<Y /d/\n\tone\nX\n\ttwo\nY\nRUN cat <<<no\nLABEL a=b\n";
        let df = parse(text).unwrap();
        let cmds: Vec<&str> = df.instructions.iter().map(|i| i.cmd.as_str()).collect();
        assert_eq!(cmds, vec!["FROM", "RUN", "COPY", "RUN", "LABEL"]);
        let run = &df.instructions[1].heredocs;
        assert_eq!(run.len(), 1);
        assert_eq!(
            (run[0].name.as_str(), run[0].body.as_str(), run[0].expand),
            ("EOF", "echo $A\n\n", true)
        );
        let copy = &df.instructions[2].heredocs;
        assert_eq!(
            (copy[0].name.as_str(), copy[0].body.as_str(), copy[0].expand),
            ("X", "one\n", false)
        );
        assert_eq!(
            (copy[1].name.as_str(), copy[1].body.as_str(), copy[1].expand),
            ("Y", "\ttwo\n", true)
        );
        assert_eq!(df.instructions[4].line, 12);
        let e = parse("FROM a\nRUN <<EOF\nnever ends\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error line 2: unterminated heredoc EOF"
        );
    }

    #[test]
    fn errors_name_the_line() {
        for (text, want) in [
            (
                "FROM a\n\nFOO bar\n",
                "dockerfile parse error line 3: unknown instruction: FOO",
            ),
            (
                "FROM\n",
                "dockerfile parse error line 1: FROM requires either one or three arguments",
            ),
            (
                "FROM a\nCOPY\n",
                "dockerfile parse error line 2: COPY requires at least two arguments",
            ),
            (
                "# escape=x\nFROM a",
                "dockerfile parse error line 1: invalid escape token 'x' does not match ` or \\",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), want, "{text}");
        }
    }
}
