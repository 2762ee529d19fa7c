//! Go's `fmt` applied to decoded JSON values: `%v` printing (`[a b]`, `map[k:v]`, floats as
//! `%g`), `print`, `println` and `printf` with the common verbs, flags, width and precision.

use serde_json::{Number, Value};

/// Go's `%v` of a value; `None` is a nil interface.
pub(super) fn v_string(v: Option<&Value>) -> String {
    let mut out = String::new();
    write_v(&mut out, v);
    out
}

fn write_v(out: &mut String, v: Option<&Value>) {
    match v {
        None | Some(Value::Null) => out.push_str("<nil>"),
        Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::Number(n)) => out.push_str(&number_v(n)),
        Some(Value::String(s)) => out.push_str(s),
        Some(Value::Array(items)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, Some(item));
            }
            out.push(']');
        }
        Some(Value::Object(map)) => {
            out.push_str("map[");
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                write_v(out, map.get(key));
            }
            out.push(']');
        }
    }
}

/// The Go type a decoded JSON value would have, for `%!verb(type=value)` and type errors.
pub(super) fn go_type(v: Option<&Value>) -> &'static str {
    match v {
        None | Some(Value::Null) => "<nil>",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(n)) if n.is_f64() => "float64",
        Some(Value::Number(_)) => "int",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "[]interface {}",
        Some(Value::Object(_)) => "map[string]interface {}",
    }
}

fn number_v(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float_v(n.as_f64().unwrap_or_default())
    }
}

/// Go's `%v` of a float64: the shortest digits, in `%e` form when the exponent is below -4 or
/// at least 6 (strconv's rule for the shortest `%g`): `1.5`, `1e+06`, `1e-05`.
pub(super) fn float_v(f: f64) -> String {
    let (negative, digits, exp) = shortest_digits(f);
    if !(-4..6).contains(&exp) {
        let mut out = String::new();
        if negative {
            out.push('-');
        }
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&exponent(exp));
        out
    } else {
        // Rust's `Display` is the shortest round-trip decimal with no exponent, as Go's `%f`
        // with the shortest precision.
        format!("{f}")
    }
}

/// The shortest round-trip digits of `f` (no leading or trailing zeros) and its decimal
/// exponent, from Rust's `{:e}` (`1.2345e6`).
fn shortest_digits(f: f64) -> (bool, String, i32) {
    let s = format!("{:e}", f.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (
        f.is_sign_negative() && f != 0.0,
        digits,
        exp.parse().unwrap_or(0),
    )
}

/// Go's exponent suffix: `e+06`, `e-05`, `e+100`.
fn exponent(exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    format!("e{sign}{:02}", exp.unsigned_abs())
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
pub(super) fn sprint(args: &[Option<&Value>]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Some(Value::String(_)));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        write_v(&mut out, *arg);
        prev_string = is_string;
    }
    out
}

/// Go's `fmt.Sprintln`: spaces between all operands and a final newline.
pub(super) fn sprintln(args: &[Option<&Value>]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_v(&mut out, *arg);
    }
    out.push('\n');
    out
}

/// Go's `strconv.Quote`.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One `%` directive's flags, width and precision.
#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs docker formats use: `v s q d x X o b c f F e E g G t %`.
pub(super) fn sprintf(format: &str, args: &[Option<&Value>]) -> String {
    let mut out = String::new();
    let mut next_arg = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = number_or_star(&mut chars, args, &mut next_arg);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(number_or_star(&mut chars, args, &mut next_arg).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next_arg += 1;
        out.push_str(&format_one(verb, &spec, *arg));
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, arg) in args[next_arg..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match arg {
                None | Some(Value::Null) => out.push_str("<nil>"),
                Some(v) => out.push_str(&format!("{}={}", go_type(Some(v)), v_string(Some(v)))),
            }
        }
        out.push(')');
    }
    out
}

fn number_or_star(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    args: &[Option<&Value>],
    next_arg: &mut usize,
) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let n = args.get(*next_arg).and_then(|a| a.and_then(Value::as_u64));
        *next_arg += 1;
        return n.map(|n| n.min(1 << 16) as usize);
    }
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        // Bounded: Go caps widths too (at 1e6); nobody means more than this.
        n = Some((n.unwrap_or(0) * 10 + d as usize).min(1 << 16));
        chars.next();
    }
    n
}

fn bad_verb(verb: char, arg: Option<&Value>) -> String {
    match arg {
        None | Some(Value::Null) => format!("%!{verb}(<nil>)"),
        Some(v) => format!("%!{verb}({}={})", go_type(Some(v)), v_string(Some(v))),
    }
}

fn format_one(verb: char, spec: &Spec, arg: Option<&Value>) -> String {
    let arg = arg.filter(|v| !v.is_null());
    // Lists and maps apply the verb to each element, as Go's fmt does.
    match arg {
        Some(Value::Array(items)) if verb != 'v' => {
            let parts: Vec<String> = items
                .iter()
                .map(|item| format_one(verb, spec, Some(item)))
                .collect();
            return format!("[{}]", parts.join(" "));
        }
        Some(Value::Object(map)) if verb != 'v' => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    let key = format_one(verb, spec, Some(&Value::String(k.clone())));
                    format!("{key}:{}", format_one(verb, spec, map.get(k)))
                })
                .collect();
            return format!("map[{}]", parts.join(" "));
        }
        _ => {}
    }
    let int = arg.and_then(|v| v.as_number()).filter(|n| !n.is_f64());
    let float = arg.and_then(|v| v.as_number()).filter(|n| n.is_f64());
    let (text, numeric) = match (verb, arg) {
        ('v', _) => match (int, float) {
            (Some(n), _) => (signed(number_v(n), spec), true),
            (_, Some(n)) => (signed(float_v(n.as_f64().unwrap_or_default()), spec), true),
            _ => (v_string(arg), false),
        },
        ('s', Some(Value::String(s))) => (truncate_chars(s, spec.precision), false),
        ('q', Some(Value::String(s))) => (quote(s), false),
        ('x' | 'X', Some(Value::String(s))) => {
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            (if verb == 'X' { hex.to_uppercase() } else { hex }, false)
        }
        ('t', Some(Value::Bool(b))) => (b.to_string(), false),
        ('d' | 'x' | 'X' | 'o' | 'b' | 'c' | 'q', _) if int.is_some() => {
            let n = int.map(number_v).unwrap_or_default();
            let value: i128 = n.parse().unwrap_or(0);
            let magnitude = value.unsigned_abs();
            let body = match verb {
                'd' => magnitude.to_string(),
                'x' => format!("{magnitude:x}"),
                'X' => format!("{magnitude:X}"),
                'o' => format!("{magnitude:o}"),
                'b' => format!("{magnitude:b}"),
                _ => {
                    let c = u32::try_from(value).ok().and_then(char::from_u32);
                    let c = c.unwrap_or('\u{FFFD}');
                    return pad(
                        if verb == 'q' {
                            format!("{c:?}")
                        } else {
                            c.to_string()
                        },
                        spec,
                        false,
                    );
                }
            };
            let prefix = match (spec.sharp, verb) {
                (true, 'x') => "0x",
                (true, 'X') => "0X",
                (true, 'o') => "0",
                _ => "",
            };
            let sign = if value < 0 { "-" } else { "" };
            (signed(format!("{sign}{prefix}{body}"), spec), true)
        }
        ('f' | 'F' | 'e' | 'E' | 'g' | 'G', _) if float.is_some() => {
            let f = float.and_then(Number::as_f64).unwrap_or_default();
            (signed(format_float(verb, f, spec.precision), spec), true)
        }
        _ => (bad_verb(verb, arg), false),
    };
    pad(text, spec, numeric)
}

fn signed(text: String, spec: &Spec) -> String {
    if text.starts_with('-') {
        text
    } else if spec.plus {
        format!("+{text}")
    } else if spec.space {
        format!(" {text}")
    } else {
        text
    }
}

fn truncate_chars(s: &str, precision: Option<usize>) -> String {
    match precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_owned(),
    }
}

fn format_float(verb: char, f: f64, precision: Option<usize>) -> String {
    let upper = verb.is_ascii_uppercase();
    let text = match verb.to_ascii_lowercase() {
        'f' => format!("{:.*}", precision.unwrap_or(6), f),
        'e' => exp_form(f, precision.unwrap_or(6)),
        _ => match precision {
            None => float_v(f),
            Some(p) => {
                let p = p.max(1);
                let rounded = exp_form(f, p - 1);
                let exp: i32 = rounded
                    .rsplit_once('e')
                    .and_then(|(_, e)| e.parse().ok())
                    .unwrap_or(0);
                if exp < -4 || exp >= p as i32 {
                    let (mantissa, e) = rounded.split_once('e').unwrap_or((&rounded, "+00"));
                    format!("{}e{e}", trim_zeros(mantissa))
                } else {
                    let decimals = (p as i32 - 1 - exp).max(0) as usize;
                    trim_zeros(&format!("{f:.decimals$}")).to_owned()
                }
            }
        },
    };
    if upper {
        text.to_uppercase()
    } else {
        text
    }
}

/// `%e` with `precision` digits after the point: `1.500000e+00`.
fn exp_form(f: f64, precision: usize) -> String {
    let s = format!("{f:.precision$e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => format!("{mantissa}{}", exponent(exp.parse().unwrap_or(0))),
        None => s,
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Width padding: spaces on the left (right with `-`), zeros after the sign for numbers
/// with `0`.
fn pad(text: String, spec: &Spec, numeric: bool) -> String {
    let Some(width) = spec.width else {
        return text;
    };
    let len = text.chars().count();
    if len >= width {
        return text;
    }
    let fill = width - len;
    if spec.minus {
        format!("{text}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sign, digits) = match text.strip_prefix(['-', '+', ' ']) {
            Some(rest) => (&text[..1], rest),
            None => ("", text.as_str()),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{text}", " ".repeat(fill))
    }
}
