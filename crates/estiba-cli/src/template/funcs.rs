//! Template values and functions: Go's builtins (`len`, `index`, `slice`, `not`, `eq`...,
//! `print`, `printf`, `println`, `html`, `js`, `urlquery`) and docker's (`json`, `split`,
//! `join`, `title`, `lower`, `upper`, `pad`, `truncate`). `and` and `or` short-circuit, so the
//! evaluator runs them itself.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::gofmt;

/// A value during execution. `Missing` is Go's invalid `reflect.Value`: what a missing map key
/// gives, printed as `<no value>`. Values borrowed from the data are not copied.
#[derive(Debug, Clone)]
pub(super) enum Val<'a> {
    Missing,
    Ref(&'a Value),
    Own(Value),
}

impl<'a> Val<'a> {
    /// The value, `None` when missing.
    pub(super) fn value(&self) -> Option<&Value> {
        match self {
            Val::Missing => None,
            Val::Ref(v) => Some(v),
            Val::Own(v) => Some(v),
        }
    }

    /// The value, `None` when missing or null (both are a nil interface to Go's functions).
    pub(super) fn non_nil(&self) -> Option<&Value> {
        self.value().filter(|v| !v.is_null())
    }

    /// Go's `truth`: false, 0, nil and empty strings, lists and maps are false.
    pub(super) fn truth(&self) -> bool {
        match self.value() {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
        }
    }
}

/// Why a function call failed; the evaluator adds Go's framing.
#[derive(Debug)]
pub(super) enum FuncError {
    /// `wrong number of args for NAME: want WANT got GOT`
    Args { want: &'static str, got: usize },
    /// `error calling NAME: MESSAGE`
    Call(String),
    /// Argument `index` does not have the type the function takes (Go's names: `string`,
    /// `int`, `[]string`); the evaluator words it after the argument's node.
    Type {
        index: usize,
        expected: &'static str,
    },
}

const NAMES: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "html", "js", "urlquery", "json", "split", "join", "title", "lower", "upper",
    "pad", "truncate",
];

/// True when `name` is a function templates may call.
pub(super) fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

fn want(n: usize, want: &'static str, args: &[Val<'_>]) -> Result<(), FuncError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(FuncError::Args {
            want,
            got: args.len(),
        })
    }
}

fn at_least(n: usize, want: &'static str, args: &[Val<'_>]) -> Result<(), FuncError> {
    if args.len() >= n {
        Ok(())
    } else {
        Err(FuncError::Args {
            want,
            got: args.len(),
        })
    }
}

fn string_arg<'v>(args: &'v [Val<'_>], index: usize) -> Result<&'v str, FuncError> {
    match args.get(index).and_then(Val::value) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(FuncError::Type {
            index,
            expected: "string",
        }),
    }
}

fn int_arg(args: &[Val<'_>], index: usize) -> Result<i64, FuncError> {
    match args.get(index).and_then(Val::value) {
        Some(Value::Number(n)) if !n.is_f64() => n
            .as_i64()
            .ok_or_else(|| FuncError::Call(format!("integer {n} out of range"))),
        _ => Err(FuncError::Type {
            index,
            expected: "int",
        }),
    }
}

fn own<'a>(v: Value) -> Result<Val<'a>, FuncError> {
    Ok(Val::Own(v))
}

fn string<'a>(s: String) -> Result<Val<'a>, FuncError> {
    own(Value::String(s))
}

/// Calls function `name` (not `and`/`or`) with its evaluated arguments.
pub(super) fn call<'a>(name: &str, args: &[Val<'a>]) -> Result<Val<'a>, FuncError> {
    let nils = |args: &[Val<'_>]| -> Vec<Option<Value>> {
        args.iter().map(|a| a.non_nil().cloned()).collect()
    };
    match name {
        "not" => {
            want(1, "1", args)?;
            own(Value::Bool(!args[0].truth()))
        }
        "len" => {
            want(1, "1", args)?;
            let n = match args[0].non_nil() {
                None => return Err(FuncError::Call("len of nil pointer".into())),
                Some(Value::String(s)) => s.len(),
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                Some(v) => {
                    let t = gofmt::go_type(Some(v));
                    return Err(FuncError::Call(format!("len of type {t}")));
                }
            };
            own(Value::from(n))
        }
        "index" => {
            at_least(1, "at least 1", args)?;
            args[1..]
                .iter()
                .try_fold(args[0].clone(), |item, key| index(item, key))
        }
        "slice" => {
            at_least(1, "at least 1", args)?;
            slice(&args[0], &args[1..])
        }
        "print" | "println" | "printf" => {
            let values = nils(args);
            let refs: Vec<Option<&Value>> = values.iter().map(Option::as_ref).collect();
            match name {
                "print" => string(gofmt::sprint(&refs)),
                "println" => string(gofmt::sprintln(&refs)),
                _ => {
                    at_least(1, "at least 1", args)?;
                    let format = string_arg(args, 0)?;
                    string(gofmt::sprintf(format, &refs[1..]))
                }
            }
        }
        "eq" => {
            at_least(1, "at least 1", args)?;
            if args.len() == 1 {
                return Err(FuncError::Call("missing argument for comparison".into()));
            }
            let mut any = false;
            for other in &args[1..] {
                any |= equal(&args[0], other)?;
            }
            own(Value::Bool(any))
        }
        "ne" => {
            want(2, "2", args)?;
            own(Value::Bool(!equal(&args[0], &args[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(2, "2", args)?;
            let ord = compare(&args[0], &args[1])?;
            own(Value::Bool(match name {
                "lt" => ord == Ordering::Less,
                "le" => ord != Ordering::Greater,
                "gt" => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        "html" | "js" | "urlquery" => {
            let text = match args {
                [Val::Ref(Value::String(one))] => one.clone(),
                [Val::Own(Value::String(one))] => one.clone(),
                _ => {
                    let values = nils(args);
                    let refs: Vec<Option<&Value>> = values.iter().map(Option::as_ref).collect();
                    gofmt::sprint(&refs)
                }
            };
            string(match name {
                "html" => html_escape(&text),
                "js" => js_escape(&text),
                _ => query_escape(&text),
            })
        }
        "json" => {
            want(1, "1", args)?;
            string(json(args[0].value()))
        }
        "split" => {
            want(2, "2", args)?;
            let (s, sep) = (string_arg(args, 0)?, string_arg(args, 1)?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep).map(|p| Value::String(p.to_owned())).collect()
            };
            own(Value::Array(parts))
        }
        "join" => {
            want(2, "2", args)?;
            let Some(Value::Array(items)) = args[0].value() else {
                return Err(FuncError::Type {
                    index: 0,
                    expected: "[]string",
                });
            };
            let sep = string_arg(args, 1)?;
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) => s.clone(),
                    other => gofmt::v_string(Some(other)),
                })
                .collect();
            string(parts.join(sep))
        }
        "title" => {
            want(1, "1", args)?;
            string(title(string_arg(args, 0)?))
        }
        "lower" => {
            want(1, "1", args)?;
            string(string_arg(args, 0)?.to_lowercase())
        }
        "upper" => {
            want(1, "1", args)?;
            string(string_arg(args, 0)?.to_uppercase())
        }
        "pad" => {
            want(3, "3", args)?;
            let s = string_arg(args, 0)?;
            let before = spaces(int_arg(args, 1)?);
            let after = spaces(int_arg(args, 2)?);
            string(format!("{before}{s}{after}"))
        }
        "truncate" => {
            want(2, "2", args)?;
            let s = string_arg(args, 0)?;
            let n = usize::try_from(int_arg(args, 1)?).unwrap_or(0);
            let mut end = n.min(s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            string(s[..end].to_owned())
        }
        _ => Err(FuncError::Call(format!("function {name:?} not defined"))),
    }
}

/// `pad` widths come from the user; keep them sane.
fn spaces(n: i64) -> String {
    " ".repeat(usize::try_from(n).unwrap_or(0).min(1 << 16))
}

/// One step of `index`.
fn index<'a>(item: Val<'a>, key: &Val<'_>) -> Result<Val<'a>, FuncError> {
    fn step<'v>(item: &'v Value, key: &Val<'_>) -> Result<Option<&'v Value>, FuncError> {
        match item {
            Value::Array(items) => {
                let i = index_of(key, items.len())?;
                Ok(items.get(i))
            }
            Value::Object(map) => match key.value() {
                Some(Value::String(k)) => Ok(map.get(k)),
                _ => Err(FuncError::Call(format!(
                    "value has type {}; should be string",
                    gofmt::go_type(key.non_nil())
                ))),
            },
            Value::String(_) => Err(FuncError::Call("can't index item of type string".into())),
            Value::Null => Err(FuncError::Call("index of untyped nil".into())),
            other => Err(FuncError::Call(format!(
                "can't index item of type {}",
                gofmt::go_type(Some(other))
            ))),
        }
    }
    match item {
        Val::Missing => Err(FuncError::Call("index of untyped nil".into())),
        // Go indexes a string by byte and yields the byte as a number.
        Val::Ref(Value::String(s)) => {
            let i = index_of(key, s.len())?;
            Ok(Val::Own(Value::from(s.as_bytes()[i])))
        }
        Val::Own(Value::String(s)) => {
            let i = index_of(key, s.len())?;
            Ok(Val::Own(Value::from(s.as_bytes()[i])))
        }
        Val::Ref(v) => Ok(step(v, key)?.map_or(Val::Missing, Val::Ref)),
        Val::Own(v) => Ok(step(&v, key)?.map_or(Val::Missing, |v| Val::Own(v.clone()))),
    }
}

/// An integer index into something of length `len`: Go's "index out of range" check.
fn index_of(key: &Val<'_>, len: usize) -> Result<usize, FuncError> {
    let Some(Value::Number(n)) = key.value() else {
        return Err(FuncError::Call(format!(
            "cannot index slice/array with type {}",
            gofmt::go_type(key.non_nil())
        )));
    };
    match n.as_i64().and_then(|i| usize::try_from(i).ok()) {
        Some(i) if i < len => Ok(i),
        _ => Err(FuncError::Call(format!("index out of range: {n}"))),
    }
}

fn slice<'a>(item: &Val<'a>, indexes: &[Val<'_>]) -> Result<Val<'a>, FuncError> {
    if indexes.len() > 3 {
        return Err(FuncError::Call(format!(
            "too many slice indexes: {}",
            indexes.len()
        )));
    }
    let len = match item.non_nil() {
        None => return Err(FuncError::Call("slice of untyped nil".into())),
        Some(Value::String(s)) => {
            if indexes.len() == 3 {
                return Err(FuncError::Call("cannot 3-index slice a string".into()));
            }
            s.len()
        }
        Some(Value::Array(a)) => a.len(),
        Some(other) => {
            return Err(FuncError::Call(format!(
                "can't slice item of type {}",
                gofmt::go_type(Some(other))
            )))
        }
    };
    let mut bounds = [0, len];
    for (k, index) in indexes.iter().take(2).enumerate() {
        bounds[k] = index_of(index, len + 1)?;
    }
    if bounds[0] > bounds[1] {
        return Err(FuncError::Call(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        )));
    }
    match item.non_nil() {
        Some(Value::String(s)) => match s.get(bounds[0]..bounds[1]) {
            Some(part) => string(part.to_owned()),
            None => Err(FuncError::Call("slice splits a UTF-8 character".into())),
        },
        Some(Value::Array(a)) => own(Value::Array(a[bounds[0]..bounds[1]].to_vec())),
        _ => Ok(Val::Missing),
    }
}

/// The kinds Go's comparison functions tell apart.
#[derive(PartialEq)]
enum Kind {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Other,
}

fn kind(v: &Val<'_>) -> Kind {
    match v.non_nil() {
        None => Kind::Nil,
        Some(Value::Bool(_)) => Kind::Bool,
        Some(Value::Number(n)) if n.is_f64() => Kind::Float,
        Some(Value::Number(_)) => Kind::Int,
        Some(Value::String(_)) => Kind::String,
        Some(_) => Kind::Other,
    }
}

fn incompatible() -> FuncError {
    FuncError::Call("incompatible types for comparison".into())
}

/// Go's `eq` for two values.
fn equal(a: &Val<'_>, b: &Val<'_>) -> Result<bool, FuncError> {
    let (ka, kb) = (kind(a), kind(b));
    for (k, v) in [(&ka, a), (&kb, b)] {
        if *k == Kind::Other {
            let value = v.non_nil();
            return Err(FuncError::Call(format!(
                "non-comparable type {}: {}",
                gofmt::v_string(value),
                gofmt::go_type(value)
            )));
        }
    }
    if ka == Kind::Nil || kb == Kind::Nil {
        return Ok(ka == kb);
    }
    if ka != kb {
        return Err(incompatible());
    }
    Ok(match (ka, a.non_nil(), b.non_nil()) {
        (Kind::Int, Some(Value::Number(x)), Some(Value::Number(y))) => int_cmp(x, y).is_eq(),
        (_, x, y) => x == y,
    })
}

/// Go's ordering for `lt`, `le`, `gt`, `ge`: numbers of one kind, or strings.
fn compare(a: &Val<'_>, b: &Val<'_>) -> Result<Ordering, FuncError> {
    let (ka, kb) = (kind(a), kind(b));
    if !matches!(ka, Kind::Int | Kind::Float | Kind::String) {
        return Err(FuncError::Call("invalid type for comparison".into()));
    }
    if ka != kb {
        return Err(incompatible());
    }
    match (a.non_nil(), b.non_nil()) {
        (Some(Value::String(x)), Some(Value::String(y))) => Ok(x.cmp(y)),
        (Some(Value::Number(x)), Some(Value::Number(y))) if ka == Kind::Int => Ok(int_cmp(x, y)),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            let (x, y) = (
                x.as_f64().unwrap_or_default(),
                y.as_f64().unwrap_or_default(),
            );
            x.partial_cmp(&y).ok_or_else(incompatible)
        }
        _ => Err(incompatible()),
    }
}

fn int_cmp(x: &Number, y: &Number) -> Ordering {
    let wide = |n: &Number| -> i128 {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .unwrap_or(0)
    };
    wide(x).cmp(&wide(y))
}

/// docker's `json`: Go's encoder without HTML escaping, trailing newline removed.
fn json(v: Option<&Value>) -> String {
    let text = match v {
        None => "null".to_owned(),
        Some(v) => serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned()),
    };
    // Go escapes these two even without HTML escaping; serde_json does not.
    text.replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Go's (deprecated but docker-used) `strings.Title`.
fn title(s: &str) -> String {
    let is_separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphanumeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut out = String::with_capacity(s.len());
    let mut prev = ' ';
    for c in s.chars() {
        if is_separator(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || c.is_control() => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
