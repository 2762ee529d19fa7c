//! Re-indents JSON text the way Go's `json.Indent` does, keeping the daemon's key order and
//! number/string spelling untouched (docker's `inspect` prints the raw server JSON this way).

/// Indents `src` (valid JSON) with `indent` per level; `[]` and `{}` stay on one line.
pub(crate) fn indent(src: &str, indent: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth: usize = 0;
    let mut need_indent = false;
    let mut in_string = false;
    let mut escaped = false;
    for ch in src.chars() {
        if in_string {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            }
            continue;
        }
        if ch.is_ascii_whitespace() {
            continue;
        }
        if need_indent && ch != ']' && ch != '}' {
            need_indent = false;
            depth += 1;
            newline(&mut out, indent, depth);
        }
        match ch {
            '"' => {
                in_string = true;
                out.push(ch);
            }
            '{' | '[' => {
                out.push(ch);
                // Delay the newline: an empty container stays "[]".
                need_indent = true;
            }
            ',' => {
                out.push(ch);
                newline(&mut out, indent, depth);
            }
            ':' => {
                out.push(ch);
                out.push(' ');
            }
            '}' | ']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, indent, depth);
                }
                out.push(ch);
            }
            _ => out.push(ch),
        }
    }
    out
}

fn newline(out: &mut String, indent: &str, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str(indent);
    }
}

#[cfg(test)]
mod tests {
    use super::indent;

    #[test]
    fn indents_like_go() {
        let cases: &[(&str, &str)] = &[
            ("[]", "[]"),
            ("{}", "{}"),
            (
                r#"[{"Id":"x","Tags":[],"Cfg":{"A":null,"B":[1,2]},"S":"a, \"b\": {c}"}]"#,
                "[\n    {\n        \"Id\": \"x\",\n        \"Tags\": [],\n        \"Cfg\": {\n            \"A\": null,\n            \"B\": [\n                1,\n                2\n            ]\n        },\n        \"S\": \"a, \\\"b\\\": {c}\"\n    }\n]",
            ),
            ("{ \"z\" : 1 , \"a\":2 }", "{\n    \"z\": 1,\n    \"a\": 2\n}"),
        ];
        for (src, want) in cases {
            assert_eq!(indent(src, "    "), *want, "src {src}");
        }
    }
}
