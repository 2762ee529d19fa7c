//! docker's `--format` handling: `table ...` templates with a header row and column alignment,
//! plain templates one line per row, and `json` as `{{json .}}`.

use anyhow::anyhow;
use serde_json::Value;

use crate::tabwriter::GoTabWriter;
use crate::template::{self, Template};

/// A compiled `--format` value.
pub(crate) struct Format {
    table: bool,
    template: Template,
}

impl Format {
    /// Compiles a format as docker's formatter does: "table" prefix stripped, "json" meaning
    /// `{{json .}}`, surrounding spaces trimmed, literal `\t` and `\n` turned into tab and newline.
    pub(crate) fn new(format: &str) -> anyhow::Result<Format> {
        let (table, body) = match template::parse_table(format) {
            Some(rest) => (true, rest),
            None if format == "json" => (false, "{{json .}}"),
            None => (false, format),
        };
        let body = template::preprocess(body.trim_matches(' '));
        let template = Template::parse(&body)
            .map_err(|e| anyhow!("template parsing error: {e}"))?
            // docker's row contexts are structs: a field that is not there is an error.
            .missing_key_error(true)
            // Go's json.Marshal of a row escapes <, > and & ("\u003cnone\u003e").
            .row_json_escapes_html(true);
        Ok(Format { table, template })
    }

    /// Renders every row (each followed by a newline); a table gets the header row rendered
    /// from `header` (field name -> column title) and aligned columns, even with no rows.
    pub(crate) fn render(&self, header: &Value, rows: &[Value]) -> anyhow::Result<String> {
        let mut body = String::with_capacity(rows.len() * 96);
        for row in rows {
            let line = self
                .template
                .execute(row)
                .map_err(|e| anyhow!("template parsing error: {e}"))?;
            body.push_str(&line);
            body.push('\n');
        }
        if !self.table {
            return Ok(body);
        }
        let mut tw = GoTabWriter::table();
        // A header that cannot render (a function docker would not call on it) is left empty.
        let head = self.template.execute(header).unwrap_or_default();
        tw.push_str(&head);
        tw.push_str("\n");
        tw.push_str(&body);
        Ok(tw.finish())
    }
}

/// Builds a JSON object of string fields, the shape docker's row contexts marshal to.
pub(crate) fn row(fields: &[(&str, String)]) -> Value {
    let mut map = serde_json::Map::with_capacity(fields.len());
    for (k, v) in fields {
        map.insert((*k).to_owned(), Value::String(v.clone()));
    }
    Value::Object(map)
}

/// A header object: field name -> column title.
pub(crate) fn header(fields: &[(&str, &str)]) -> Value {
    let mut map = serde_json::Map::with_capacity(fields.len());
    for (k, v) in fields {
        map.insert((*k).to_owned(), Value::String((*v).to_owned()));
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_header() -> Value {
        header(&[
            ("ID", "IMAGE ID"),
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("CreatedSince", "CREATED"),
            ("Size", "SIZE"),
        ])
    }

    fn busybox() -> Value {
        row(&[
            ("ID", "09b23f020198".to_owned()),
            ("Repository", "busybox".to_owned()),
            ("Tag", "latest".to_owned()),
            ("CreatedSince", "2 minutes ago".to_owned()),
            ("Size", "1.98MB".to_owned()),
        ])
    }

    #[test]
    fn renders_tables_and_plain_formats() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}",
                1,
                "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\nbusybox      latest    09b23f020198   2 minutes ago   1.98MB\n",
            ),
            (
                "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}",
                0,
                "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n",
            ),
            ("table {{.Repository}}\t{{.ID}}", 1, "REPOSITORY   IMAGE ID\nbusybox      09b23f020198\n"),
            ("{{.Repository}}\\t{{.ID}}", 2, "busybox\t09b23f020198\nbusybox\t09b23f020198\n"),
            ("  {{.ID}} ", 1, "09b23f020198\n"),
        ];
        for (fmt, n, want) in cases {
            let f = match Format::new(fmt) {
                Ok(f) => f,
                Err(e) => panic!("{fmt}: {e}"),
            };
            let rows = vec![busybox(); *n];
            assert_eq!(
                f.render(&image_header(), &rows).ok().as_deref(),
                Some(*want),
                "format {fmt}"
            );
        }
    }
}
