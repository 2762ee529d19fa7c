//! Docker's shell-word processing for Dockerfile arguments: quotes, the escape character,
//! and `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alternate}` (and their `-`/`+` forms
//! without the colon). Pure functions over a lookup, so they are tested without a build.

/// A bad substitution, Docker's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("failed to process \"{0}\": missing '}}' in expansion")]
    Unterminated(String),
    #[error("failed to process \"{0}\": unexpected end of statement while looking for matching double-quote")]
    Quote(String),
}

/// Expands and unquotes `s` as one word (whitespace kept).
pub fn word(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    Ok(process(s, lookup, escape, false)?.join(""))
}

/// Expands and unquotes `s`, split on unquoted whitespace.
pub fn words(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    process(s, lookup, escape, true)
}

/// Expands variables only, keeping quotes and other characters as written (heredoc content:
/// `\$` is a literal `$`).
pub fn vars_only(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '$' => i = dollar(&chars, i, lookup, &mut out, s)?,
            c if c == escape && chars.get(i) == Some(&'$') => {
                out.push('$');
                i += 1;
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn process(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
    split: bool,
) -> Result<Vec<String>, ExpandError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            c if split && c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                while i < chars.len() && chars[i] != '\'' {
                    cur.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(ExpandError::Quote(s.to_string()));
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                loop {
                    let Some(&d) = chars.get(i) else {
                        return Err(ExpandError::Quote(s.to_string()));
                    };
                    i += 1;
                    match d {
                        '"' => break,
                        '$' => i = dollar(&chars, i, lookup, &mut cur, s)?,
                        d if d == escape => match chars.get(i) {
                            Some(&n) if n == '"' || n == '$' || n == escape => {
                                cur.push(n);
                                i += 1;
                            }
                            _ => cur.push(d),
                        },
                        d => cur.push(d),
                    }
                }
            }
            '$' => {
                in_word = true;
                i = dollar(&chars, i, lookup, &mut cur, s)?;
            }
            c if c == escape => {
                in_word = true;
                if let Some(&n) = chars.get(i) {
                    cur.push(n);
                    i += 1;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word || !split {
        out.push(cur);
    }
    Ok(out)
}

/// Expands the variable after a `$` at `chars[i-1]`; returns the index after it.
fn dollar(
    chars: &[char],
    mut i: usize,
    lookup: &dyn Fn(&str) -> Option<String>,
    cur: &mut String,
    whole: &str,
) -> Result<usize, ExpandError> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if chars.get(i) == Some(&'{') {
        i += 1;
        let start = i;
        while i < chars.len() && is_name(chars[i]) {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        let value = lookup(&name);
        match chars.get(i) {
            Some('}') => {
                cur.push_str(&value.unwrap_or_default());
                Ok(i + 1)
            }
            Some(':') | Some('-') | Some('+') => {
                let colon = chars[i] == ':';
                if colon {
                    i += 1;
                }
                let op = *chars
                    .get(i)
                    .ok_or_else(|| ExpandError::Unterminated(whole.into()))?;
                i += 1;
                let wstart = i;
                let mut depth = 0;
                while i < chars.len() && !(chars[i] == '}' && depth == 0) {
                    match chars[i] {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(ExpandError::Unterminated(whole.into()));
                }
                let inner: String = chars[wstart..i].iter().collect();
                let inner = word(&inner, lookup, '\\')?;
                let set = match &value {
                    Some(v) => !(colon && v.is_empty()),
                    None => false,
                };
                match op {
                    '-' => cur.push_str(&if set {
                        value.unwrap_or_default()
                    } else {
                        inner
                    }),
                    '+' => {
                        if set {
                            cur.push_str(&inner);
                        }
                    }
                    _ => return Err(ExpandError::Unterminated(whole.into())),
                }
                Ok(i + 1)
            }
            _ => Err(ExpandError::Unterminated(whole.into())),
        }
    } else {
        let start = i;
        while i < chars.len() && is_name(chars[i]) {
            i += 1;
        }
        if start == i {
            cur.push('$');
            return Ok(i);
        }
        let name: String = chars[start..i].iter().collect();
        cur.push_str(&lookup(&name).unwrap_or_default());
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("1".into()),
            "E" => Some(String::new()),
            "S" => Some("x y".into()),
            _ => None,
        }
    }

    #[test]
    fn expansion_forms() {
        for (input, want) in [
            ("$A", "1"),
            ("${A}b", "1b"),
            ("${N:-d}", "d"),
            ("${E:-d}", "d"),
            ("${E-d}", ""),
            ("${A:-d}", "1"),
            ("${A:+alt}", "alt"),
            ("${N:+alt}", ""),
            ("${N:-${A}}", "1"),
            ("'$A'", "$A"),
            ("\"$A x\"", "1 x"),
            ("a\\$A", "a$A"),
            ("$", "$"),
            ("${S}", "x y"),
        ] {
            assert_eq!(word(input, &env, '\\').unwrap(), want, "{input}");
        }
    }

    #[test]
    fn splitting_and_errors() {
        assert_eq!(
            words("a=\"b c\" d=$A 'e f'", &env, '\\').unwrap(),
            vec!["a=b c", "d=1", "e f"]
        );
        assert_eq!(words("  ", &env, '\\').unwrap(), Vec::<String>::new());
        assert!(word("${A", &env, '\\').is_err());
        assert!(word("\"abc", &env, '\\').is_err());
    }
}
