//! Go `text/template`, the subset docker users write in `--format`, evaluated over
//! `serde_json::Value`: text and actions, fields, variables, pipelines, `if`/`else if`/`with`/
//! `range` (with `break`/`continue`), whitespace trimming, comments, Go's builtin functions and
//! docker's own (`json`, `join`, `split`, `title`, `lower`, `upper`, `pad`, `truncate`).
//!
//! Values print the way Go's `fmt` prints decoded JSON: `[a b]`, `map[k:v]`, floats as `%g`,
//! and a missing map key as `<no value>` (or an error, like `missingkey=error`, see
//! [`Template::missing_key_error`]). Errors read like Go's:
//! `template: :1: function "foo" not defined`,
//! `template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"`.
//!
//! `define`, `template` and `block` are not supported (docker formats never need them).

mod exec;
mod funcs;
mod gofmt;
mod lex;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::Value;

/// Largest output one execution may produce; a `range` over a huge number stops here.
pub(crate) const MAX_OUTPUT_BYTES: usize = 64 << 20;
/// Most `range` iterations one execution may run (an empty body over a huge number would
/// otherwise spin without ever reaching the output bound).
pub(crate) const MAX_RANGE_ITERATIONS: u64 = 10_000_000;
/// Deepest nesting of control structures and parentheses a template may have.
pub(crate) const MAX_NESTING: usize = 100;

/// A template that failed to parse or to execute; `Display` follows Go's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateError {
    /// The template text is not a valid template.
    Parse {
        /// 1-based line of the offending token.
        line: usize,
        /// What is wrong, in Go's words.
        message: String,
    },
    /// The template is valid but failed on this data.
    Exec {
        /// 1-based line of the node that failed.
        line: usize,
        /// 0-based byte column of the node within its line (Go's convention).
        col: usize,
        /// The node, as Go prints it (`.Foo`, `index .A 5`).
        context: String,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Parse { line, message } => write!(f, "template: :{line}: {message}"),
            TemplateError::Exec {
                line,
                col,
                context,
                message,
            } => write!(
                f,
                "template: :{line}:{col}: executing \"\" at <{context}>: {message}"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// A parsed template: parse once, execute once per row.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    source: String,
    nodes: Vec<parse::Node>,
    missing_key_error: bool,
    row_json_escapes_html: bool,
}

impl Template {
    /// Parses a template (Go's `template.New("").Funcs(docker's).Parse(text)`).
    pub(crate) fn parse(text: &str) -> Result<Template, TemplateError> {
        let items = lex::lex(text);
        let nodes = parse::parse(items).map_err(|e| parse_error(text, e.pos, e.message))?;
        Ok(Template {
            source: text.to_owned(),
            nodes,
            missing_key_error: false,
            row_json_escapes_html: false,
        })
    }

    /// Makes a missing map key an error (`map has no entry for key "X"`) rather than
    /// `<no value>`, like Go's `missingkey=error`, which `docker inspect` uses.
    #[allow(dead_code)] // part of the module's API; not every command wants it
    pub(crate) fn missing_key_error(mut self, on: bool) -> Template {
        self.missing_key_error = on;
        self
    }

    /// Makes `json` of the whole data (`{{json .}}` at the top) escape `<`, `>` and `&` as
    /// `\u003c`..., as docker's list rows do (they marshal themselves with `json.Marshal`);
    /// `{{json .Field}}` is unaffected, as in docker.
    #[allow(dead_code)] // part of the module's API; only list commands want it
    pub(crate) fn row_json_escapes_html(mut self, on: bool) -> Template {
        self.row_json_escapes_html = on;
        self
    }

    /// Runs the template with `data` as `.` and `$`.
    pub(crate) fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        let options = exec::Options {
            missing_key_error: self.missing_key_error,
            row_json_escapes_html: self.row_json_escapes_html,
        };
        exec::execute(&self.nodes, data, options).map_err(|e| {
            let (line, col) = line_col(&self.source, e.pos);
            TemplateError::Exec {
                line,
                col,
                context: e.context,
                message: e.message,
            }
        })
    }
}

/// Parses and runs a template in one go.
#[allow(dead_code)] // part of the module's API; callers with many rows use `Template`
pub(crate) fn render(template: &str, data: &Value) -> Result<String, TemplateError> {
    Template::parse(template)?.execute(data)
}

/// Docker's `table` prefix: returns the rest of a format that starts with `table` (leading
/// spaces removed; empty means "the default columns, as a table"), `None` otherwise.
pub(crate) fn parse_table(format: &str) -> Option<&str> {
    format
        .strip_prefix("table")
        .map(|rest| rest.trim_start_matches(' '))
}

/// Docker's formatter turns the two characters `\t` and `\n` of a format into a tab and a
/// newline before parsing it.
pub(crate) fn preprocess(format: &str) -> String {
    format.replace("\\t", "\t").replace("\\n", "\n")
}

fn parse_error(text: &str, pos: usize, message: String) -> TemplateError {
    TemplateError::Parse {
        line: line_col(text, pos).0,
        message,
    }
}

/// Go's `ErrorContext`: 1-based line, 0-based byte offset within the line.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = text.get(..pos).unwrap_or(text);
    let line = 1 + before.matches('\n').count();
    let col = match before.rfind('\n') {
        Some(nl) => pos - (nl + 1),
        None => pos,
    };
    (line, col)
}
