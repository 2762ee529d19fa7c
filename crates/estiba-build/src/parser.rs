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
}

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
        instructions.push(instruction(start + 1, joined.trim())?);
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
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
